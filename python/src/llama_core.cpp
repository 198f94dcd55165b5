// Model + tokenizer + engine behind bitnet.Llama (see llama_core.h).
#include "llama_core.h"

#include <bitnet/gguf.h>

#include "pool_guard.h"

namespace bitnet::python {

namespace {
// Loading repacks weights on the process-wide pool: hold it against set_num_threads meanwhile.
Model load_model(const std::string& path, HeadType head) {
  PoolUse use;
  return Model::load_gguf(path, head);
}
}  // namespace

LlamaCore::LlamaCore(const std::string& path, int64_t n_ctx, int64_t n_batch, int n_threads, HeadType head)
    : path_(path), model_(load_model(path, head)), tokenizer_(Tokenizer::from_gguf(GgufFile::open(path))) {
  BITNET_CHECK(tokenizer_->vocab_size() <= model_.config().vocab,
               "[llama] '{}': the tokenizer has {} tokens but the model {}", path, tokenizer_->vocab_size(),
               model_.config().vocab);
  BITNET_CHECK(n_batch > 0, "[llama] n_batch must be positive, got {}", n_batch);
  const int64_t ctx = n_ctx > 0 ? n_ctx : model_.config().context;
  pool_ = std::make_unique<ThreadPool>(n_threads > 0 ? n_threads : default_thread_count());
  engine_ = std::make_unique<Engine>(model_, ctx, 1, n_batch, pool_.get());
}

std::vector<int32_t> LlamaCore::tokenize(std::string_view text, bool add_bos, bool special) const {
  return tokenizer_->encode(text, add_bos, special);
}

std::string LlamaCore::detokenize(const std::vector<int32_t>& ids, bool special) const {
  return tokenizer_->decode(ids, /*skip_special=*/!special);
}

std::string LlamaCore::apply_chat_template(const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  const Tokenizer& tok = *tokenizer_;
  const std::string bos = tok.bos_id() >= 0 ? tok.token_to_piece(tok.bos_id()) : "";
  const std::string eos = tok.eos_id() >= 0 ? tok.token_to_piece(tok.eos_id()) : "";
  if (tok.chat_template().empty()) return render_bitnet_chat(messages, bos, add_generation_prompt);
  if (!chat_template_) chat_template_.emplace(tok.chat_template());
  return chat_template_->render(messages, {bos, eos, add_generation_prompt});
}

LlamaCore::Slot::Slot(LlamaCore& core) : core_(core) {
  BITNET_CHECK(!core_.busy_.exchange(true),
               "[llama] a generation is already running on this model (read the previous stream to its end or close "
               "it first)");
}

LlamaCore::Slot::~Slot() { core_.busy_.store(false); }

GenerateResult LlamaCore::generate(const Slot&, std::string_view prompt, const GenerateOptions& options,
                                   const std::function<bool(std::string_view)>& on_text) {
  return bitnet::generate(*engine_, *tokenizer_, prompt, options, on_text);
}

}  // namespace bitnet::python
