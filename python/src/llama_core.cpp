// Model + tokenizer + engine behind bitnet.Llama (see llama_core.h).
#include "llama_core.h"

#include <bitnet/cuda.h>
#include <bitnet/gguf.h>
#include <bitnet/open_model.h>
#include <bitnet/rope.h>

#include <algorithm>

#include "pool_guard.h"

namespace bitnet::python {

namespace {
// Loading repacks weights on the process-wide pool: hold it against set_num_threads meanwhile.
OpenedModel open(const std::string& path, HeadType head, bool quantize, std::optional<TernaryPacking> packing) {
  PoolUse use;
  return open_model(path, LoadOptions{head, quantize, {}, packing});
}
}  // namespace

LlamaCore::LlamaCore(const std::string& path, int64_t n_ctx, int64_t n_batch, int n_threads, HeadType head,
                     bool quantize, KvCacheTypes kv, std::optional<TernaryPacking> packing)
    : path_(path) {
  OpenedModel opened = open(path, head, quantize, packing);
  notes_ = std::move(opened.notes);
  model_ = std::move(opened.model);
  tokenizer_ = std::move(opened.tokenizer);
  BITNET_CHECK(n_batch > 0, "[llama] n_batch must be positive, got {}", n_batch);
  const int64_t ctx = n_ctx > 0 ? n_ctx : model_->config().context;
  pool_ = std::make_unique<ThreadPool>(n_threads > 0 ? n_threads : default_thread_count());
  engine_ = std::make_unique<Engine>(*model_, ctx, 1, n_batch, pool_.get(), kv);
  const TransformerConfig& c = model_->config();
  reuse_ok_ = c.rope_scaling.type != RopeType::dynamic || ctx <= c.context;
}

void LlamaCore::eval(const Slot&, const std::vector<int32_t>& tokens, int64_t start_pos, bool all, float* logits) {
  const int64_t vocab = model_->config().vocab, n = static_cast<int64_t>(tokens.size());
  BITNET_CHECK(n > 0, "[llama] eval of an empty token list");
  BITNET_CHECK(start_pos >= 0 && start_pos + n <= engine_->context(),
               "[llama] eval of {} tokens at position {} does not fit the context of {} (reset() or a larger n_ctx)",
               n, start_pos, engine_->context());
  for (int32_t t : tokens) BITNET_CHECK(t >= 0 && t < vocab, "[llama] token id {} is outside the vocabulary of {}", t, vocab);
  // Positions from start_pos on are overwritten: forget them first, so that an error leaves no stale claim.
  if (static_cast<int64_t>(cached_.size()) > start_pos) cached_.resize(static_cast<size_t>(start_pos));
  const bool contiguous = static_cast<int64_t>(cached_.size()) == start_pos;
  if (all) {
    engine_->eval_all(0, tokens, static_cast<int32_t>(start_pos), logits);
  } else {
    const float* last = engine_->eval(0, tokens, static_cast<int32_t>(start_pos));
    std::copy(last, last + vocab, logits);
  }
  if (contiguous) cached_.insert(cached_.end(), tokens.begin(), tokens.end());
}

void LlamaCore::set_cached_tokens(const Slot&, std::vector<int32_t> tokens) {
  BITNET_CHECK(static_cast<int64_t>(tokens.size()) <= engine_->context(),
               "[llama] {} cached tokens do not fit the context of {}", tokens.size(), engine_->context());
  cached_ = std::move(tokens);
}

std::vector<uint8_t> LlamaCore::save_cache(const Slot&, int64_t n) const { return engine_->save_sequence(0, n); }

void LlamaCore::load_cache(const Slot&, std::span<const uint8_t> bytes, std::vector<int32_t> tokens) {
  cached_.clear();
  engine_->load_sequence(0, bytes);
  BITNET_CHECK(bytes.size() >= 32, "[llama] load_state: truncated state");
  int64_t n = 0;  // Engine::save_sequence's header: magic, layers, kv_dim, n_tokens (int64 each)
  std::copy_n(bytes.data() + 24, sizeof(n), reinterpret_cast<uint8_t*>(&n));
  BITNET_CHECK(static_cast<int64_t>(tokens.size()) == n, "[llama] load_state: {} tokens for a cache of {} positions",
               tokens.size(), n);
  cached_ = std::move(tokens);
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
  cached_.clear();  // the cache is overwritten
  return embed_tokens(*engine_, ids, pooling, norm);
}

void LlamaCore::offload(int gpu_layers) { cuda::offload(*engine_, gpu_layers); }

GenerateResult LlamaCore::generate(const Slot&, std::string_view prompt, const GenerateOptions& options,
                                   const std::function<bool(std::string_view)>& on_text) {
  GenerateOptions o = options;
  if (!reuse_ok_) cached_.clear();
  o.cached = &cached_;  // empty: nothing to reuse; updated to what the cache holds afterwards
  try {
    return bitnet::generate(*engine_, *tokenizer_, prompt, o, on_text);
  } catch (...) {
    cached_.clear();  // the cache may hold part of a prompt: claim nothing
    throw;
  }
}

}  // namespace bitnet::python
