#pragma once
// What a bitnet.Llama holds: the model, its tokenizer and an engine with a KV cache, loaded from one GGUF file.
// Generation goes through bitnet::generate(); one generation runs at a time per model (the engine has one
// sequence slot), and a second one raises instead of waiting, so a forgotten stream cannot deadlock its thread.
#include <bitnet/chat_template.h>
#include <bitnet/embedding.h>
#include <bitnet/engine.h>
#include <bitnet/generate.h>
#include <bitnet/model.h>
#include <bitnet/thread_pool.h>
#include <bitnet/tokenizer.h>

#include <functional>
#include <memory>
#include <atomic>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace bitnet::python {

class LlamaCore {
 public:
  // n_ctx <= 0 takes the model's trained context length; n_threads <= 0 the default thread count.
  // `path`: a GGUF file or a Hugging Face checkpoint (open_model.h); quantize: ternarize a full-precision one.
  // packing: the ternary weights' layout (LoadOptions::packing; unset: automatic).
  LlamaCore(const std::string& path, int64_t n_ctx, int64_t n_batch, int n_threads, HeadType head, bool quantize,
            KvCacheTypes kv = {}, std::optional<TernaryPacking> packing = std::nullopt);

  const Model& model() const { return *model_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  int64_t context() const { return engine_->context(); }
  int threads() const { return pool_->size(); }
  const std::string& path() const { return path_; }
  const std::vector<std::string>& load_notes() const { return notes_; }

  std::vector<int32_t> tokenize(std::string_view text, bool add_bos, bool special) const;
  // Bytes (not necessarily whole UTF-8 characters when the ids cut one).
  std::string detokenize(const std::vector<int32_t>& ids, bool special) const;
  // The model's chat template applied to messages (BitNet 2B4T's format when the file has no template).
  std::string apply_chat_template(const std::vector<ChatMessage>& messages, bool add_generation_prompt);

  // The right to run one generation on the engine, held from reserve() until destroyed. An atomic flag, not a
  // mutex: a stream reserves in the caller's thread and releases in its worker thread.
  class Slot {
   public:
    explicit Slot(LlamaCore& core);  // raises when another generation holds the engine
    ~Slot();
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

   private:
    LlamaCore& core_;
  };

  // Evaluates `tokens` at positions start_pos.. of the engine's cache and writes their logits to `logits`
  // ([tokens, vocab] when all, else [1, vocab] for the last one). Ids and positions are checked.
  void eval(const Slot& slot, const std::vector<int32_t>& tokens, int64_t start_pos, bool all, float* logits);

  // The text's embedding (embedding.h): tokens as the model's files ask (BOS when they do), cut to the context
  // when `truncate`, else an error when longer; pooled and normalized (norm -1: not). The cache is overwritten.
  Embeddings embed(const Slot& slot, std::string_view text, Pooling pooling, int norm, bool truncate);

  // Moves the engine's forward pass to GPU 0 (cuda.h: < 0 every layer); throws naming what is missing (no CUDA
  // backend in this build, no device, too little memory, a layer split).
  void offload(int gpu_layers);

  // Runs bitnet::generate on this model's engine (the caller holds a Slot), reusing the longest common prefix of
  // the prompt with cached_tokens() (llama-cpp-python's prefix reuse) unless the model's RoPE forbids it; on
  // return cached_tokens() holds what the cache now holds (empty after an error).
  GenerateResult generate(const Slot& slot, std::string_view prompt, const GenerateOptions& options,
                          const std::function<bool(std::string_view)>& on_text = nullptr);

  // The tokens the engine's cache holds at positions 0..n-1, as the last eval, generation or set_cached_tokens
  // left them (llama-cpp-python's input_ids[:n_tokens]). set_cached_tokens only states what the cache holds (it
  // evaluates nothing): the caller promises those positions were evaluated with those tokens.
  const std::vector<int32_t>& cached_tokens(const Slot&) const { return cached_; }
  void set_cached_tokens(const Slot&, std::vector<int32_t> tokens);
  // Whether a generation may reuse a cached prefix (not with dynamic NTK RoPE past the trained context, whose
  // rotation of cached keys depends on the longest sequence seen).
  bool prefix_reuse() const { return reuse_ok_; }

  // The cache's first n positions as bytes (Engine::save_sequence) and back; load also sets cached_tokens.
  std::vector<uint8_t> save_cache(const Slot&, int64_t n) const;
  void load_cache(const Slot&, std::span<const uint8_t> bytes, std::vector<int32_t> tokens);

 private:
  std::string path_;
  std::vector<std::string> notes_;  // what loading decided (open_model.h)
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  // The engine's own pool (llama-cpp-python's n_threads is per model): an engine keeps a reference to its pool,
  // so it must not use the process-wide one, which set_num_threads replaces.
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<Engine> engine_;  // refers to model_ and pool_: declared after them
  std::optional<ChatTemplate> chat_template_;  // parsed on first use
  std::atomic<bool> busy_{false};
  std::vector<int32_t> cached_;  // what the cache holds (see cached_tokens)
  bool reuse_ok_ = true;
};

}  // namespace bitnet::python
