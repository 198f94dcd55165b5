#pragma once
// The inference engine: a batch of tokens from one or several sequences through the transformer, with a
// preallocated KV cache (f16 or q8_0) per sequence. Prefill runs all prompt tokens through the GEMM path at once;
// decode runs one token per sequence through the same code (the kernels' GEMV case). After construction a
// decode step allocates nothing.
#include <bitnet/memory.h>
#include <bitnet/model.h>
#include <bitnet/quant.h>
#include <bitnet/thread_pool.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace bitnet {

struct BatchToken {
  int32_t token = 0;
  int32_t pos = 0;      // position in its sequence (0-based); the cache must hold positions 0..pos-1 already
  int32_t seq = 0;      // which sequence (KV cache slot)
  bool logits = false;  // compute this token's logits
};

namespace detail {
struct KvPlane;  // where a KV head's positions lie in the cache (runtime/kv_cache_codec.h)
}

// A backend that runs the whole forward pass elsewhere (the CUDA backend, include/bitnet/cuda.h). Once one is
// attached, decode() checks the batch as usual and hands it over; the CPU path is not used.
class EngineBackend {
 public:
  virtual ~EngineBackend() = default;
  virtual void decode(std::span<const BatchToken> batch, float* logits) = 0;
  virtual std::string name() const = 0;
};

// The KV cache's element type (llama.cpp's -ctk / -ctv): f16, or q8_0 (GGML's blocks of 32 int8 values with an
// f16 scale: 8.5 bits per value, about half the memory and half the bytes attention reads per token).
enum class KvCacheType : uint8_t { f16, q8_0 };
std::string_view kv_cache_type_name(KvCacheType t);
KvCacheType parse_kv_cache_type(std::string_view name);  // "f16" or "q8_0"; anything else throws naming both
// One position's K (or V) in one layer: kv_heads heads of head_dim values, each head stored on its own (q8_0: in
// blocks of 32 from the head's first value, the last one shorter when head_dim is not a multiple of 32).
int64_t kv_cache_row_bytes(KvCacheType type, int64_t kv_heads, int64_t head_dim);
struct KvCacheTypes {
  KvCacheType k = KvCacheType::f16, v = KvCacheType::f16;
};

class Engine {
 public:
  // n_ctx: positions per sequence; n_seq: sequences (cache slots); max_batch: tokens per decode() call.
  // kv: the cache's element types.
  Engine(const Model& model, int64_t n_ctx, int n_seq = 1, int64_t max_batch = 512, ThreadPool* pool = nullptr,
         KvCacheTypes kv = {});

  // Runs the batch; writes the logits of the tokens marked `logits`, in batch order, to `logits`
  // ([count, vocab] floats). Tokens of one sequence must come in position order. With `hidden`, the same
  // tokens' final hidden states (after the output norm: what the head reads, llama.cpp's embeddings) go there
  // as [count, hidden] floats, and `logits` may be null to skip the head. Hidden states come from the CPU path
  // only (a backend refuses them).
  void decode(std::span<const BatchToken> batch, float* logits, float* hidden = nullptr);
  // One sequence: evaluates `tokens` at positions start_pos.. (in chunks of max_batch) and returns the logits
  // of the last one (valid until the next call).
  const float* eval(int seq, std::span<const int32_t> tokens, int32_t start_pos);
  // The same, keeping every position's logits: `logits` receives [tokens.size(), vocab] floats.
  void eval_all(int seq, std::span<const int32_t> tokens, int32_t start_pos, float* logits);
  // Every position's final hidden state ([tokens.size(), hidden] floats), without the head.
  void eval_hidden(int seq, std::span<const int32_t> tokens, int32_t start_pos, float* hidden);

  // A sequence's cache as bytes: positions 0..n_tokens-1 of every layer's K and V (in the cache's types), after a
  // header naming the shape, so that load_sequence() restores it and the next eval() continues exactly
  // (llama-cpp-python's save_state / load_state). load_sequence checks the header against this engine (layers, KV
  // width, context, cache types) and names the mismatch; the positions past the saved ones are left as they are.
  // CPU cache only (a backend keeps its own), and not with dynamic NTK RoPE past the trained context (the tables
  // depend on the history).
  std::vector<uint8_t> save_sequence(int seq, int64_t n_tokens) const;
  // Context shift (llama.cpp's): forgets positions [keep, keep + discard) of `seq` and moves positions
  // [keep + discard, n_past) down by `discard`; their keys are rotated back by `discard` positions (RoPE is a
  // rotation: R(p - d) = R(-d) R(p)), values move as they are. The sequence then holds n_past - discard positions.
  // CPU cache only; refused for dynamic NTK RoPE (its rotation depends on the sequence length).
  void shift_sequence(int seq, int64_t keep, int64_t discard, int64_t n_past);
  void load_sequence(int seq, std::span<const uint8_t> bytes);

  const Model& model() const { return model_; }
  int64_t context() const { return n_ctx_; }
  int sequences() const { return n_seq_; }
  int64_t max_batch() const { return max_batch_; }
  KvCacheTypes kv_cache_types() const { return kv_types_; }
  int64_t kv_cache_bytes() const { return static_cast<int64_t>(k_cache_.size() + v_cache_.size()); }
  // Hands every later decode() to `backend` (nullptr: back to the CPU path).
  void set_backend(std::unique_ptr<EngineBackend> backend) { backend_ = std::move(backend); }
  const EngineBackend* backend() const { return backend_.get(); }

 private:
  // Attention (engine_attention.cpp): one item = a KV head (with its whole group of query heads) x a block of
  // one sequence's batch tokens x a range of units (fixed spans of cached positions, each softmaxed on its own
  // and folded in position order); `cost` = dot products, to share out items. A `split` item is one of several
  // that cover a block's context: its units' partial results go to attn_partials_ and are folded afterwards.
  struct AttentionItem {
    int32_t first, count;  // batch tokens [first, first + count)
    int32_t kv_head;
    int32_t unit0, unit1;  // units [unit0, unit1)
    bool split;
    int64_t cost;
  };
  void attention(int64_t layer, std::span<const BatchToken> batch);
  void plan_attention(std::span<const BatchToken> batch);
  void allocate_attention_scratch();
  template <class Out>
  void eval_every_position(int seq, std::span<const int32_t> tokens, int32_t start_pos, Out out);
  void embed(std::span<const BatchToken> batch);
  void rope(float* v, int64_t heads, int32_t pos) const;
  void fill_rope_tables(int64_t seq_len);
  void fill_rope_row(int64_t pos);  // from rope_freq_
  void update_dynamic_rope(std::span<const BatchToken> batch);
  // KV head kvh's plane of (layer, seq): its positions' keys or values (kv_cache_codec.h says where each lies).
  // One definition for the const engine (save_sequence) and the others.
  template <class Self>
  static auto* plane(Self& self, bool keys, int64_t layer, int seq, int64_t kvh) {
    const int64_t index = (layer * self.n_seq_ + seq) * self.model_.config().kv_heads + kvh;
    return keys ? self.k_cache_.data() + index * self.k_plane_bytes_
                : self.v_cache_.data() + index * self.v_plane_bytes_;
  }
  uint8_t* k_plane(int64_t layer, int seq, int64_t kvh) { return plane(*this, true, layer, seq, kvh); }
  uint8_t* v_plane(int64_t layer, int seq, int64_t kvh) { return plane(*this, false, layer, seq, kvh); }
  detail::KvPlane k_layout() const;
  detail::KvPlane v_layout() const;

  const Model& model_;
  ThreadPool& pool_;
  int64_t n_ctx_, max_batch_;
  int n_seq_;
  int64_t q_dim_, kv_dim_;
  KvCacheTypes kv_types_;
  int64_t k_plane_bytes_ = 0, v_plane_bytes_ = 0;  // one KV head's n_ctx positions
  // [layer][seq][kv head][plane]: each head's positions lie together, so that attention, which reads one KV head at
  // a time, streams them in order. An f16 plane holds rows; a q8_0 plane (blocks of 32 from the head's first value)
  // holds tiles laid out for attention's kernels (kernels/attention_q8.h): keys 16 positions transposed for the
  // scores' vector lanes, values 32 positions with each pair of rows interleaved for the weighted sum.
  AlignedVector<uint8_t> k_cache_, v_cache_;
  AlignedVector<float> rope_cos_, rope_sin_;  // [pos][head_dim / 2]
  RopeFrequencies rope_freq_;                 // the frequencies the tables hold (dynamic NTK: the current ones)
  int64_t rope_seq_len_ = 0;                  // the sequence length they were computed for (dynamic NTK)
  // Scratch for max_batch tokens, aligned for the kernels' wide loads (the head's, attention's).
  AlignedVector<float> x_, q_, k_, v_, o_, gate_, up_, tmp_, logits_;
  AlignedVector<float> attn_rows_;      // [threads][chunk rows][head_dim]: cached keys or values as f32
  AlignedVector<float> attn_scores_;    // [threads][block tokens x group heads][unit]: a unit's scores, then weights
  AlignedVector<float> attn_unit_;      // [threads]: one unit's partials, the pairs' [2] headers then [head_dim] values
  AlignedVector<float> attn_state_;     // [threads][block tokens x group heads][2]: the folded max and sum
  AlignedVector<float> attn_partials_;  // [split tokens][heads][units of n_ctx][2 + head_dim]: split items' units
  // [threads][block tokens x group heads][segments]: the queries rounded to int8 against q8_0 keys
  // (kernels/attention_q8.h): 32 codes, a scale and a code sum per segment.
  AlignedVector<int8_t> attn_query_codes_;
  std::vector<float> attn_query_scales_;
  std::vector<int32_t> attn_query_sums_;
  std::vector<AttentionItem> attn_items_;
  QuantizedActivations qa_;
  std::vector<BatchToken> eval_batch_;
  std::unique_ptr<EngineBackend> backend_;
};

}  // namespace bitnet
