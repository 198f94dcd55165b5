// open_model: model + tokenizer from one path (open_model.h).
#include <bitnet/error.h>
#include <bitnet/gguf.h>
#include <bitnet/model_files.h>
#include <bitnet/open_model.h>
#include <bitnet/model_config.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>

#include "io/temp_gguf.h"

namespace bitnet {

namespace {
// config.json and generation_config.json name the ids generation ends on (Llama-3-Instruct: <|eot_id|> besides
// <|end_of_text|>); sampling defaults there are reported, not applied (the llama.cpp defaults and flags rule).
void add_hf_generation_settings(const std::string& dir, int64_t tokens, Tokenizer& tok, std::vector<std::string>& notes) {
  namespace fs = std::filesystem;
  std::vector<int64_t> eos = load_model_config(dir).eos_token_ids;
  const fs::path gen = fs::path(dir) / "generation_config.json";
  std::error_code ec;
  if (fs::is_regular_file(gen, ec)) {
    const GenerationConfig g = load_generation_config(gen.string());
    eos.insert(eos.end(), g.eos_token_ids.begin(), g.eos_token_ids.end());
    std::vector<std::string> suggested;
    if (g.do_sample && !*g.do_sample) suggested.emplace_back("greedy (--temp 0)");
    if (g.temperature && (!g.do_sample || *g.do_sample)) suggested.push_back(fmt::format("--temp {}", *g.temperature));
    if (g.top_p && (!g.do_sample || *g.do_sample)) suggested.push_back(fmt::format("--top-p {}", *g.top_p));
    if (g.top_k && (!g.do_sample || *g.do_sample)) suggested.push_back(fmt::format("--top-k {}", *g.top_k));
    if (g.repetition_penalty) suggested.push_back(fmt::format("--repeat-penalty {}", *g.repetition_penalty));
    if (!suggested.empty())
      notes.push_back(fmt::format("{} suggests {}; the sampling flags (llama.cpp's defaults unless given) decide",
                                  gen.string(), fmt::join(suggested, ", ")));
  }
  for (int64_t id : eos)
    if (id < tokens) tok.add_eog(static_cast<int32_t>(id));
}
}  // namespace

OpenedModel open_model(const std::string& path, const LoadOptions& options) {
  const ModelPath where = resolve_model_path(path);
  OpenedModel m;
  if (where.kind == ModelPath::Kind::onnx) {
    // Converted once into a temporary GGUF that holds the weights and the tokenizer (bitnet/onnx.h).
    const TempGguf tmp;
    m.notes = convert_for_loading(where, tmp.path, options.quantize).notes;
    m.model = std::make_unique<Model>(Model::load_gguf(tmp.path, LoadOptions{options.head, true, options.progress, options.packing}));
    m.model->description = std::filesystem::path(where.path).filename().string();
    m.tokenizer = Tokenizer::from_gguf(GgufFile::open(tmp.path));
  } else {
    m.model = std::make_unique<Model>(Model::load(where.path, options, &m.notes));
    m.tokenizer = where.kind == ModelPath::Kind::gguf ? Tokenizer::from_gguf(GgufFile::open(where.path))
                                                      : Tokenizer::from_hf(where.path);
  }
  const int64_t vocab = m.model->config().vocab, tokens = m.tokenizer->vocab_size();
  BITNET_CHECK(tokens <= vocab, "[model] '{}': the tokenizer has {} tokens but the model's vocabulary only {} rows",
               path, tokens, vocab);
  if (where.kind == ModelPath::Kind::hf_dir) add_hf_generation_settings(where.path, tokens, *m.tokenizer, m.notes);
  // A torch.onnx export carries its Hugging Face files beside it (config.json, generation_config.json).
  if (const auto dir = std::filesystem::path(where.path).parent_path();
      where.kind == ModelPath::Kind::onnx && std::filesystem::exists(dir / "config.json"))
    add_hf_generation_settings(dir.string(), tokens, *m.tokenizer, m.notes);
  if (tokens < vocab)
    m.notes.push_back(fmt::format("the model's vocabulary has {} rows, the tokenizer {} tokens: ids {}..{} have no "
                                  "token and are never sampled",
                                  vocab, tokens, tokens, vocab - 1));
  return m;
}

}  // namespace bitnet
