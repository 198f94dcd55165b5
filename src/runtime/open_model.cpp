// open_model: model + tokenizer from one path (open_model.h).
#include <bitnet/error.h>
#include <bitnet/gguf.h>
#include <bitnet/model_files.h>
#include <bitnet/open_model.h>
#include <fmt/format.h>

namespace bitnet {

OpenedModel open_model(const std::string& path, const LoadOptions& options) {
  const ModelPath where = resolve_model_path(path);
  OpenedModel m;
  m.model = std::make_unique<Model>(Model::load(where.path, options, &m.notes));
  m.tokenizer = where.kind == ModelPath::Kind::gguf ? Tokenizer::from_gguf(GgufFile::open(where.path))
                                                    : Tokenizer::from_hf(where.path);
  const int64_t vocab = m.model->config().vocab, tokens = m.tokenizer->vocab_size();
  BITNET_CHECK(tokens <= vocab, "[model] '{}': the tokenizer has {} tokens but the model's vocabulary only {} rows",
               path, tokens, vocab);
  if (tokens < vocab)
    m.notes.push_back(fmt::format("the model's vocabulary has {} rows, the tokenizer {} tokens: ids {}..{} have no "
                                  "token and are never sampled",
                                  vocab, tokens, tokens, vocab - 1));
  return m;
}

}  // namespace bitnet
