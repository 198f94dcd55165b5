// `bitnet make-model`: a GGUF file with random ternary weights at a real model's shape, for benchmarks and
// tests (`bitnet bench -m` on it measures the engine without the real weights). With `--vocab` the file also
// carries a real tokenizer (the tokenizer.* keys of a vocab GGUF, as llama.cpp ships them), so `bitnet run`,
// the server and the Python package work on it end to end; the text it generates is gibberish.
#include <bitnet/error.h>
#include <bitnet/gguf.h>
#include <bitnet/model.h>
#include <bitnet/model_config.h>
#include <bitnet/model_files.h>
#include <bitnet/tokenizer.h>
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "commands.h"
#include "progress.h"

namespace bitnet::cli {
namespace {

// The tokenizer.* metadata of a vocab GGUF (or of a Hugging Face tokenizer.json, converted as `bitnet convert`
// converts one), and the vocabulary size it defines.
std::vector<std::pair<std::string, GgufValue>> tokenizer_keys(const std::string& path, int64_t& vocab) {
  if (std::filesystem::is_directory(path) || path.ends_with(".json")) {
    const std::filesystem::path dir = std::filesystem::is_directory(path) ? std::filesystem::path(path)
                                                                           : std::filesystem::path(path).parent_path();
    BITNET_CHECK(std::filesystem::path(path).filename() == "tokenizer.json" || std::filesystem::is_directory(path),
                 "[{}] --vocab takes a vocab GGUF, a tokenizer.json or the directory holding it", path);
    const auto tok = Tokenizer::from_hf(dir.string());  // bos / eos from tokenizer_config.json when it is there
    ModelConfig cfg;
    cfg.vocab_size = tok->vocab_size();
    if (tok->bos_id() >= 0) cfg.bos_token_id = tok->bos_id();
    if (tok->eos_id() >= 0) cfg.eos_token_ids = {tok->eos_id()};
    vocab = cfg.vocab_size;
    return hf_tokenizer_to_gguf(dir.string(), cfg, nullptr);
  }
  const GgufFile file = GgufFile::open(path);
  std::vector<std::pair<std::string, GgufValue>> keys;
  for (const auto& [key, value] : file.metadata())
    if (key.starts_with("tokenizer.")) keys.emplace_back(key, value);
  const GgufValue* tokens = file.find("tokenizer.ggml.tokens");
  BITNET_CHECK(tokens && tokens->type == GgufValueType::array && tokens->elem_type == GgufValueType::string,
               "[{}] tokenizer.ggml.tokens: missing or not an array of strings; --vocab needs a vocab GGUF", path);
  vocab = static_cast<int64_t>(tokens->count);
  return keys;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  BITNET_CHECK(in.good(), "[{}] cannot open the chat template file", path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

void add_make_model_command(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("make-model", "Write a random-weight model of a real model's shape as GGUF");
  struct Options {
    std::string arch = "bitnet-b1.58-2b4t";
    std::string output;
    std::string type = "i2_s";
    std::string vocab;
    std::string chat_template;
    uint64_t seed = 1;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("--arch", o->arch, "Shape: bitnet-b1.58-2b4t (the real model's) or tiny (tests, examples)")
      ->check(CLI::IsMember({"bitnet-b1.58-2b4t", "tiny"}));
  cmd->add_option("output", o->output, "Output GGUF file")->required();
  cmd->add_option("-t,--type", o->type, "Ternary type of the projections")->check(CLI::IsMember({"i2_s", "tq2_0", "tq1_0"}));
  cmd->add_option("--vocab", o->vocab,
                  "Copy the tokenizer of this vocab GGUF, or convert a Hugging Face tokenizer.json (file or directory); "
                  "its size sets the vocabulary")
      ->check(CLI::ExistingPath);
  cmd->add_option("--chat-template", o->chat_template, "Jinja chat template file to store as tokenizer.chat_template")
      ->check(CLI::ExistingFile);
  cmd->add_option("--seed", o->seed, "Random seed");
  cmd->callback([&selected, o] {
    selected = [o] {
      const auto t0 = std::chrono::steady_clock::now();
      TransformerConfig config = TransformerConfig::bitnet_2b4t();
      std::vector<std::pair<std::string, GgufValue>> extra;
      int64_t vocab = config.vocab;
      if (!o->vocab.empty()) extra = tokenizer_keys(o->vocab, vocab);
      if (!o->chat_template.empty()) {
        std::erase_if(extra, [](const auto& kv) { return kv.first == "tokenizer.chat_template"; });
        extra.emplace_back("tokenizer.chat_template", GgufValue::string(read_text(o->chat_template)));
      }
      if (o->arch == "tiny") {
        config = TransformerConfig::tiny(o->vocab.empty() ? 32000 : vocab);
      } else {
        config.vocab = vocab;
      }
      Progress bar("make-model", "layers");
      Model m = Model::random(config, o->seed, HeadType::f16, [&](int64_t d, int64_t t) { bar.update(d, t); });
      m.description = "random " + o->arch;
      m.save_gguf(o->output, parse_ggml_type(o->type), extra);
      fmt::print("wrote {} ({} layers, {:.2f} B parameters, vocab {}, {}{}) in {:.1f} s\n", o->output,
                 m.config().layers, m.parameter_count() / 1e9, m.config().vocab, o->type,
                 o->vocab.empty() ? ", no tokenizer" : "",
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      return 0;
    };
  });
}

}  // namespace bitnet::cli
