// Model + tokenizer + engine behind bitnet.Llama (see llama_core.h).
#include "llama_core.h"

#include <bitnet/gguf.h>
#include <bitnet/open_model.h>

#include <algorithm>

#include "pool_guard.h"

namespace bitnet::python {

namespace {
// Loading repacks weights on the process-wide pool: hold it against set_num_threads meanwhile.
OpenedModel open(const std::string& path, HeadType head, bool quantize) {
  PoolUse use;
  return open_model(path, LoadOptions{head, quantize});
}
}  // namespace

LlamaCore::LlamaCore(const std::string& path, int64_t n_ctx, int64_t n_batch, int n_threads, HeadType head,
                     bool quantize)
    : path_(path) {
  OpenedModel opened = open(path, head, quantize);
  notes_ = std::move(opened.notes);
  model_ = std::move(opened.model);
  tokenizer_ = std::move(opened.tokenizer);
  BITNET_CHECK(n_batch > 0, "[llama] n_batch must be positive, got {}", n_batch);
  const int64_t ctx = n_ctx > 0 ? n_ctx : model_->config().context;
  pool_ = std::make_unique<ThreadPool>(n_threads > 0 ? n_threads : default_thread_count());
  engine_ = std::make_unique<Engine>(*model_, ctx, 1, n_batch, pool_.get());
}

void LlamaCore::eval(const Slot&, const std::vector<int32_t>& tokens, int64_t start_pos, bool all, float* logits) {
  const int64_t vocab = model_->config().vocab, n = static_cast<int64_t>(tokens.size());
  BITNET_CHECK(n > 0, "[llama] eval of an empty token list");
  BITNET_CHECK(start_pos >= 0 && start_pos + n <= engine_->context(),
               "[llama] eval of {} tokens at position {} does not fit the context of {} (reset() or a larger n_ctx)",
               n, start_pos, engine_->context());
  for (int32_t t : tokens) BITNET_CHECK(t >= 0 && t < vocab, "[llama] token id {} is outside the vocabulary of {}", t, vocab);
  if (all) {
    engine_->eval_all(0, tokens, static_cast<int32_t>(start_pos), logits);
  } else {
    const float* last = engine_->eval(0, tokens, static_cast<int32_t>(start_pos));
    std::copy(last, last + vocab, logits);
  }
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

Embeddings LlamaCore::embed(const Slot&, std::string_view text, Pooling pooling, int norm, bool truncate) {
  std::vector<int32_t> ids = tokenizer_->encode(text, tokenizer_->add_bos_default(), /*parse_special=*/true);
  if (truncate && static_cast<int64_t>(ids.size()) > engine_->context()) ids.resize(static_cast<size_t>(engine_->context()));
  return embed_tokens(*engine_, ids, pooling, norm);
}

GenerateResult LlamaCore::generate(const Slot&, std::string_view prompt, const GenerateOptions& options,
                                   const std::function<bool(std::string_view)>& on_text) {
  return bitnet::generate(*engine_, *tokenizer_, prompt, options, on_text);
}

}  // namespace bitnet::python
