// The transformer forward pass over a batch of tokens (BitNet b1.58: RMSNorm fused with int8 quantization,
// ternary projections, half-split RoPE, GQA attention over an f16 or q8_0 cache, SubLN, gated ReLU^2 / SiLU FFN).
#include <bitnet/engine.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/vector.h"
#include "runtime/kv_cache_codec.h"

namespace bitnet {

using kernels::BinaryOp;
using kernels::UnaryOp;

Engine::Engine(const Model& model, int64_t n_ctx, int n_seq, int64_t max_batch, ThreadPool* pool, KvCacheTypes kv)
    : model_(model), pool_(pool != nullptr ? *pool : default_pool()), n_ctx_(n_ctx), max_batch_(max_batch),
      n_seq_(n_seq), kv_types_(kv) {
  const TransformerConfig& c = model.config();
  BITNET_CHECK(n_ctx > 0 && n_seq > 0 && max_batch > 0, "[engine] context, sequences and batch must be positive");
  BITNET_CHECK(static_cast<int64_t>(model.layers().size()) == c.layers, "[engine] the model has no weights");
  q_dim_ = c.heads * c.head_dim;
  kv_dim_ = c.kv_heads * c.head_dim;
  k_plane_bytes_ = k_layout().bytes(n_ctx);
  v_plane_bytes_ = v_layout().bytes(n_ctx);
  const auto planes = static_cast<size_t>(c.layers * n_seq * c.kv_heads);
  k_cache_.assign(planes * static_cast<size_t>(k_plane_bytes_), 0);
  v_cache_.assign(planes * static_cast<size_t>(v_plane_bytes_), 0);
  rope_cos_.resize(static_cast<size_t>(n_ctx * (c.head_dim / 2)));
  rope_sin_.resize(rope_cos_.size());
  fill_rope_tables(0);
  auto scratch = [&](AlignedVector<float>& v, int64_t width) { v.assign(static_cast<size_t>(max_batch * width), 0.0f); };
  scratch(x_, c.hidden);
  scratch(q_, q_dim_);
  scratch(k_, kv_dim_);
  scratch(v_, kv_dim_);
  scratch(o_, q_dim_);
  scratch(gate_, c.ffn);
  scratch(up_, c.ffn);
  scratch(tmp_, std::max(c.hidden, c.ffn));
  logits_.assign(static_cast<size_t>(c.vocab), 0.0f);
  eval_batch_.reserve(static_cast<size_t>(max_batch));
  allocate_attention_scratch();
  qa_.resize(max_batch, std::max({c.hidden, c.ffn, q_dim_}));  // the largest row, so later resizes never allocate
}

// RoPE tables as transformers computes them, in f32: angle = pos * inv_freq (rope.h), cos and sin times the
// attention factor (yarn).
void Engine::fill_rope_row(int64_t pos) {
  const int64_t half = model_.config().head_dim / 2;
  float* cs = rope_cos_.data() + pos * half;
  float* sn = rope_sin_.data() + pos * half;
  for (int64_t i = 0; i < half; ++i) {
    const float angle = static_cast<float>(pos) * rope_freq_.inv_freq[static_cast<size_t>(i)];
    cs[i] = std::cos(angle) * rope_freq_.attention_factor;
    sn[i] = std::sin(angle) * rope_freq_.attention_factor;
  }
}

void Engine::fill_rope_tables(int64_t seq_len) {
  const TransformerConfig& c = model_.config();
  rope_freq_ = c.rope(seq_len);
  rope_seq_len_ = std::max(seq_len, c.context);
  for (int64_t p = 0; p < n_ctx_; ++p) fill_rope_row(p);
}

// Dynamic NTK scaling depends on the longest sequence a forward pass sees: transformers recomputes its inv_freq
// when a batch reaches past the longest so far (beyond the trained context), and goes back to the original one
// below the trained context; keys already cached keep the rotation they were stored with. While grown, the
// frequencies change from step to step, so only the rows of this batch's positions are computed, not the table.
void Engine::update_dynamic_rope(std::span<const BatchToken> batch) {
  const TransformerConfig& c = model_.config();
  if (c.rope_scaling.type != RopeType::dynamic || n_ctx_ <= c.context) return;
  int64_t seq_len = 0;
  for (const BatchToken& t : batch) seq_len = std::max<int64_t>(seq_len, t.pos + 1);
  if (seq_len < c.context && rope_seq_len_ > c.context) {
    fill_rope_tables(c.context);  // reset: rows written while grown are stale
    return;
  }
  if (seq_len > rope_seq_len_) {  // growth
    rope_freq_ = c.rope(seq_len);
    rope_seq_len_ = seq_len;
  }
  if (rope_seq_len_ > c.context)
    for (const BatchToken& t : batch) fill_rope_row(t.pos);
}

// q8_0 planes are tiled for attention's integer kernels; f16 planes are rows.
detail::KvPlane Engine::k_layout() const {
  const bool q8 = kv_types_.k == KvCacheType::q8_0;
  return {kv_types_.k, model_.config().head_dim, q8 ? detail::KvForm::key_tiles : detail::KvForm::rows};
}
detail::KvPlane Engine::v_layout() const {
  const bool q8 = kv_types_.v == KvCacheType::q8_0;
  return {kv_types_.v, model_.config().head_dim, q8 ? detail::KvForm::value_tiles : detail::KvForm::rows};
}

// Saved cache layout: kSequenceMagic, layers, kv_dim, n_tokens (int64 each), then per layer the K rows and the
// V rows of positions 0..n_tokens-1 (f16, kv_dim each: the KV heads' values one after the other). A cache of
// another type is saved as kSequenceMagic3 with two more int64 (the K and V types, KvCacheType values) and its rows
// in that type, each head's values encoded on their own (kv_cache_row_bytes). kSequenceMagic2 is the same with
// q8_0 blocks laid along the whole row (engines before 2026-12-06): the same bytes when every head starts on a
// block (head_dim a multiple of 32), and only then read.
namespace {
constexpr int64_t kSequenceMagic = 0x3156'4B'4E'54'42;   // "BTNKV1" (little-endian bytes), the format's version
constexpr int64_t kSequenceMagic2 = 0x3256'4B'4E'54'42;  // "BTNKV2"
constexpr int64_t kSequenceMagic3 = 0x3356'4B'4E'54'42;  // "BTNKV3"
constexpr size_t kSequenceHeader = 4 * sizeof(int64_t);
constexpr size_t kSequenceHeader2 = 6 * sizeof(int64_t);
}  // namespace

void Engine::shift_sequence(int seq, int64_t keep, int64_t discard, int64_t n_past) {
  const TransformerConfig& c = model_.config();
  BITNET_CHECK(seq >= 0 && seq < n_seq_, "[engine] shift_sequence: sequence {} out of range (0..{})", seq, n_seq_ - 1);
  BITNET_CHECK(keep >= 0 && discard > 0 && keep + discard <= n_past && n_past <= n_ctx_,
               "[engine] shift_sequence: keep {} + discard {} must fit the {} positions held (context {})", keep,
               discard, n_past, n_ctx_);
  BITNET_CHECK(!backend_, "[engine] shift_sequence: the cache lives on the {} backend", backend_ ? backend_->name() : "");
  BITNET_CHECK(c.rope_scaling.type != RopeType::dynamic,
               "[engine] shift_sequence: dynamic NTK RoPE rotates by the sequence length; its cache cannot be shifted");
  const int64_t d = c.head_dim, half = d / 2;
  std::vector<float> cs(static_cast<size_t>(half)), sn(static_cast<size_t>(half)), x(static_cast<size_t>(d));
  std::vector<uint8_t> row(static_cast<size_t>(v_layout().row_bytes()));
  for (int64_t i = 0; i < half; ++i) {  // R(-discard), without the attention factor (the keys carry it already)
    const double angle = -static_cast<double>(discard) * rope_freq_.inv_freq[static_cast<size_t>(i)];
    cs[static_cast<size_t>(i)] = static_cast<float>(std::cos(angle));
    sn[static_cast<size_t>(i)] = static_cast<float>(std::sin(angle));
  }
  const int64_t moved = n_past - keep - discard;
  const detail::KvPlane kp = k_layout(), vp = v_layout();
  for (int64_t l = 0; l < c.layers; ++l)
    for (int64_t h = 0; h < c.kv_heads; ++h) {
      uint8_t* keys = k_plane(l, seq, h);
      for (int64_t p = keep + discard; p < n_past; ++p) {
        detail::kv_decode_at(kp, keys, p, x.data());
        for (int64_t i = 0; i < half; ++i) {
          const float a = x[static_cast<size_t>(i)], b = x[static_cast<size_t>(i + half)];
          x[static_cast<size_t>(i)] = a * cs[static_cast<size_t>(i)] - b * sn[static_cast<size_t>(i)];
          x[static_cast<size_t>(i + half)] = b * cs[static_cast<size_t>(i)] + a * sn[static_cast<size_t>(i)];
        }
        detail::kv_encode_at(kp, x.data(), keys, p - discard);
      }
      // Value rows: a head's positions lie together, so they move in one piece; tiled values one row at a time.
      uint8_t* values = v_plane(l, seq, h);
      if (vp.form == detail::KvForm::rows) {
        std::memmove(values + vp.offset(keep), values + vp.offset(keep + discard),
                     static_cast<size_t>(vp.span(keep, moved)));
        continue;
      }
      for (int64_t p = keep + discard; p < n_past; ++p) {
        detail::kv_get_row(vp, values, p, row.data());
        detail::kv_put_row(vp, row.data(), values, p - discard);
      }
    }
}

std::vector<uint8_t> Engine::save_sequence(int seq, int64_t n_tokens) const {
  const TransformerConfig& c = model_.config();
  BITNET_CHECK(seq >= 0 && seq < n_seq_, "[engine] save_sequence: sequence {} out of range (0..{})", seq, n_seq_ - 1);
  BITNET_CHECK(n_tokens >= 0 && n_tokens <= n_ctx_, "[engine] save_sequence: {} tokens do not fit the context of {}",
               n_tokens, n_ctx_);
  BITNET_CHECK(!backend_, "[engine] save_sequence: the cache lives on the {} backend", backend_ ? backend_->name() : "");
  BITNET_CHECK(c.rope_scaling.type != RopeType::dynamic || n_ctx_ <= c.context,
               "[engine] save_sequence: dynamic NTK RoPE past the trained context ({} > {}) depends on the history",
               n_ctx_, c.context);
  const auto rows = static_cast<size_t>(n_tokens);
  const detail::KvPlane kp = k_layout(), vp = v_layout();
  const auto k_row = static_cast<size_t>(c.kv_heads * kp.row_bytes());
  const auto v_row = static_cast<size_t>(c.kv_heads * vp.row_bytes());
  const bool f16 = kv_types_.k == KvCacheType::f16 && kv_types_.v == KvCacheType::f16;
  const size_t header_bytes = f16 ? kSequenceHeader : kSequenceHeader2;
  std::vector<uint8_t> out(header_bytes + static_cast<size_t>(c.layers) * rows * (k_row + v_row));
  const int64_t header[6] = {f16 ? kSequenceMagic : kSequenceMagic3, c.layers, kv_dim_, n_tokens,
                             static_cast<int64_t>(kv_types_.k), static_cast<int64_t>(kv_types_.v)};
  std::memcpy(out.data(), header, header_bytes);
  uint8_t* dst = out.data() + header_bytes;
  // Position by position, each row the KV heads' values in turn (the cache keeps each head's positions together).
  for (int64_t l = 0; l < c.layers; ++l)
    for (const bool keys : {true, false}) {
      const detail::KvPlane& plane = keys ? kp : vp;
      for (int64_t p = 0; p < n_tokens; ++p)
        for (int64_t h = 0; h < c.kv_heads; ++h, dst += plane.row_bytes())
          detail::kv_get_row(plane, Engine::plane(*this, keys, l, seq, h), p, dst);
    }
  return out;
}

void Engine::load_sequence(int seq, std::span<const uint8_t> bytes) {
  const TransformerConfig& c = model_.config();
  BITNET_CHECK(seq >= 0 && seq < n_seq_, "[engine] load_sequence: sequence {} out of range (0..{})", seq, n_seq_ - 1);
  BITNET_CHECK(!backend_, "[engine] load_sequence: the cache lives on the {} backend", backend_ ? backend_->name() : "");
  BITNET_CHECK(bytes.size() >= kSequenceHeader, "[engine] load_sequence: {} bytes is shorter than the {}-byte header",
               bytes.size(), kSequenceHeader);
  int64_t header[6] = {0, 0, 0, 0, static_cast<int64_t>(KvCacheType::f16), static_cast<int64_t>(KvCacheType::f16)};
  std::memcpy(header, bytes.data(), kSequenceHeader);
  BITNET_CHECK(header[0] == kSequenceMagic || header[0] == kSequenceMagic2 || header[0] == kSequenceMagic3,
               "[engine] load_sequence: not a saved sequence (bad magic)");
  const size_t header_bytes = header[0] == kSequenceMagic ? kSequenceHeader : kSequenceHeader2;
  BITNET_CHECK(bytes.size() >= header_bytes, "[engine] load_sequence: {} bytes is shorter than the {}-byte header",
               bytes.size(), header_bytes);
  std::memcpy(header, bytes.data(), header_bytes);
  for (auto [name, saved, mine] : {std::tuple{"K", header[4], kv_types_.k}, std::tuple{"V", header[5], kv_types_.v}})
    BITNET_CHECK(saved == static_cast<int64_t>(mine),
                 "[engine] load_sequence: saved with a {} cache of type {}, this engine's is {}", name,
                 saved == static_cast<int64_t>(KvCacheType::f16)    ? "f16"
                 : saved == static_cast<int64_t>(KvCacheType::q8_0) ? "q8_0"
                                                                     : fmt::format("#{}", saved),
                 kv_cache_type_name(mine));
  BITNET_CHECK(header[1] == c.layers, "[engine] load_sequence: saved with {} layers, this model has {}", header[1],
               c.layers);
  BITNET_CHECK(header[2] == kv_dim_, "[engine] load_sequence: saved with a KV width of {}, this model has {}",
               header[2], kv_dim_);
  const int64_t n_tokens = header[3];
  BITNET_CHECK(n_tokens >= 0 && n_tokens <= n_ctx_, "[engine] load_sequence: {} saved tokens do not fit the context of {}",
               n_tokens, n_ctx_);
  BITNET_CHECK(header[0] != kSequenceMagic2 || c.head_dim % kernels::kQ8Block == 0 ||
                   (kv_types_.k != KvCacheType::q8_0 && kv_types_.v != KvCacheType::q8_0),
               "[engine] load_sequence: saved by an older engine, whose q8_0 cache laid its blocks along the whole "
               "row; with heads of {} values (not a multiple of 32) it cannot be read: save it again",
               c.head_dim);
  const auto rows = static_cast<size_t>(n_tokens);
  const detail::KvPlane kp = k_layout(), vp = v_layout();
  const auto k_row = static_cast<size_t>(c.kv_heads * kp.row_bytes());
  const auto v_row = static_cast<size_t>(c.kv_heads * vp.row_bytes());
  const size_t want = header_bytes + static_cast<size_t>(c.layers) * rows * (k_row + v_row);
  BITNET_CHECK(bytes.size() == want, "[engine] load_sequence: {} bytes, expected {} for {} tokens", bytes.size(),
               want, n_tokens);
  const uint8_t* src = bytes.data() + header_bytes;
  for (int64_t l = 0; l < c.layers; ++l)
    for (const bool keys : {true, false}) {
      const detail::KvPlane& plane = keys ? kp : vp;
      for (int64_t p = 0; p < n_tokens; ++p)
        for (int64_t h = 0; h < c.kv_heads; ++h, src += plane.row_bytes())
          detail::kv_put_row(plane, src, Engine::plane(*this, keys, l, seq, h), p);
    }
}

// Half-split ("rotate_half", NeoX) pairing: element i rotates with element i + d/2 inside each head.
void Engine::rope(float* v, int64_t heads, int32_t pos) const {
  const int64_t d = model_.config().head_dim, half = d / 2;
  const float* cs = rope_cos_.data() + pos * half;
  const float* sn = rope_sin_.data() + pos * half;
  for (int64_t h = 0; h < heads; ++h) {
    float* x = v + h * d;
    for (int64_t i = 0; i < half; ++i) {
      const float a = x[i], b = x[i + half];
      x[i] = a * cs[i] - b * sn[i];
      x[i + half] = b * cs[i] + a * sn[i];
    }
  }
}

void Engine::embed(std::span<const BatchToken> batch) {
  const TransformerConfig& c = model_.config();
  const Tensor& e = model_.embedding();
  const auto& k = kernels::vector_kernels();
  for (size_t t = 0; t < batch.size(); ++t) {
    const int32_t id = batch[t].token;
    BITNET_CHECK(id >= 0 && id < c.vocab, "[engine] token id {} is outside the vocabulary (0..{})", id, c.vocab - 1);
    float* dst = x_.data() + static_cast<int64_t>(t) * c.hidden;
    if (e.dtype() == DType::f16) {
      k.f16_to_f32(static_cast<const uint16_t*>(e.data()) + static_cast<int64_t>(id) * c.hidden, dst, c.hidden);
    } else {
      std::memcpy(dst, static_cast<const float*>(e.data()) + static_cast<int64_t>(id) * c.hidden, c.hidden * 4);
    }
  }
}

void Engine::decode(std::span<const BatchToken> batch, float* logits, float* hidden) {
  const TransformerConfig& c = model_.config();
  const auto T = static_cast<int64_t>(batch.size());
  BITNET_CHECK(T > 0 && T <= max_batch_, "[engine] batch of {} tokens (1..{} allowed)", T, max_batch_);
  for (const BatchToken& bt : batch) {
    BITNET_CHECK(bt.seq >= 0 && bt.seq < n_seq_, "[engine] sequence {} out of range (0..{})", bt.seq, n_seq_ - 1);
    BITNET_CHECK(bt.pos >= 0 && bt.pos < n_ctx_, "[engine] position {} is outside the context of {}", bt.pos, n_ctx_);
  }
  if (backend_) {
    BITNET_CHECK(hidden == nullptr, "[engine] hidden states (embeddings) are computed on the CPU only, not on {}",
                 backend_->name());
    backend_->decode(batch, logits);
    return;
  }
  const auto& vk = kernels::vector_kernels();
  const auto add = vk.binary[static_cast<int>(BinaryOp::add)];
  const auto mul = vk.binary[static_cast<int>(BinaryOp::mul)];
  const auto act = vk.unary[static_cast<int>(c.activation == FfnActivation::relu2 ? UnaryOp::relu2 : UnaryOp::silu)];
  const float eps = c.norm_eps;
  update_dynamic_rope(batch);
  embed(batch);
  // Prefill: the per-token work between the matmuls (norms, RoPE, cache writes, gating, residuals) is split
  // over the pool too; for one token it runs on this thread (a parallel region would cost more than the work).
  ThreadPool* rows_pool = T > 1 ? &pool_ : nullptr;
  auto per_token = [&](auto&& fn) {
    if (T > 1) {
      pool_.parallel_for(T, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) fn(t);
      });
    } else {
      fn(0);
    }
  };
  const detail::KvPlane kp = k_layout(), vp = v_layout();
  for (int64_t l = 0; l < c.layers; ++l) {
    const LayerWeights& w = model_.layers()[static_cast<size_t>(l)];
    // Attention block.
    rms_norm_quantize_activations(x_.data(), w.attn_norm.data(), eps, T, c.hidden, c.hidden, qa_, rows_pool);
    const TernaryProduct qkv[] = {{&w.wq, q_.data(), q_dim_}, {&w.wk, k_.data(), kv_dim_}, {&w.wv, v_.data(), kv_dim_}};
    ternary_matmul(qkv, qa_, pool_);
    per_token([&](int64_t t) {
      const BatchToken& bt = batch[static_cast<size_t>(t)];
      rope(q_.data() + t * q_dim_, c.heads, bt.pos);
      rope(k_.data() + t * kv_dim_, c.kv_heads, bt.pos);
      for (int64_t h = 0; h < c.kv_heads; ++h) {
        const int64_t at = t * kv_dim_ + h * c.head_dim;
        detail::kv_encode_at(kp, k_.data() + at, k_plane(l, bt.seq, h), bt.pos);
        detail::kv_encode_at(vp, v_.data() + at, v_plane(l, bt.seq, h), bt.pos);
      }
    });
    attention(l, batch);
    if (c.sub_norms) {
      rms_norm_quantize_activations(o_.data(), w.attn_sub_norm.data(), eps, T, q_dim_, q_dim_, qa_, rows_pool);
    } else {
      quantize_activations(o_.data(), T, q_dim_, q_dim_, qa_, rows_pool);
    }
    ternary_matmul(w.wo, qa_, tmp_.data(), c.hidden, pool_);
    per_token([&](int64_t t) { add(x_.data() + t * c.hidden, tmp_.data() + t * c.hidden, x_.data() + t * c.hidden, c.hidden); });
    // Feed-forward block.
    rms_norm_quantize_activations(x_.data(), w.ffn_norm.data(), eps, T, c.hidden, c.hidden, qa_, rows_pool);
    const TernaryProduct gate_up[] = {{&w.w_gate, gate_.data(), c.ffn}, {&w.w_up, up_.data(), c.ffn}};
    ternary_matmul(gate_up, qa_, pool_);
    per_token([&](int64_t t) {
      float* g = gate_.data() + t * c.ffn;
      act(g, g, c.ffn);
      mul(g, up_.data() + t * c.ffn, g, c.ffn);
    });
    if (c.sub_norms) {
      rms_norm_quantize_activations(gate_.data(), w.ffn_sub_norm.data(), eps, T, c.ffn, c.ffn, qa_, rows_pool);
    } else {
      quantize_activations(gate_.data(), T, c.ffn, c.ffn, qa_, rows_pool);
    }
    ternary_matmul(w.w_down, qa_, tmp_.data(), c.hidden, pool_);
    per_token([&](int64_t t) { add(x_.data() + t * c.hidden, tmp_.data() + t * c.hidden, x_.data() + t * c.hidden, c.hidden); });
  }
  // Final norm and the output head, for the tokens that want logits: their normed rows are gathered and go
  // through the head as one matrix product, so the head's weights are read once for the whole batch (several
  // sequences decoding together). Each row's result is the same as alone: the kernels accumulate per row.
  int64_t n_out = 0;
  float* h = tmp_.data();  // max_batch x max(hidden, ffn) floats: room for every row
  for (int64_t t = 0; t < T; ++t) {
    if (!batch[static_cast<size_t>(t)].logits) continue;
    vk.rms_norm_row(x_.data() + t * c.hidden, model_.output_norm().data(), h + n_out * c.hidden, c.hidden, eps);
    ++n_out;
  }
  if (n_out == 0) return;
  if (hidden != nullptr) std::copy(h, h + n_out * c.hidden, hidden);
  if (logits == nullptr) return;
  if (model_.head_type() != HeadType::f16) {
    quantize_activations(h, n_out, c.hidden, c.hidden, qa_, n_out > 1 ? &pool_ : nullptr);
    if (model_.head_type() == HeadType::int8) {
      int8_matmul(model_.head_int8(), qa_, logits, c.vocab, pool_);
    } else {
      int4_matmul(model_.head_int4(), qa_, logits, c.vocab, pool_);
    }
  } else {
    f16_matmul(model_.head_f16(), h, n_out, c.hidden, logits, c.vocab, pool_);
  }
}

const float* Engine::eval(int seq, std::span<const int32_t> tokens, int32_t start_pos) {
  BITNET_CHECK(!tokens.empty(), "[engine] eval of an empty token list");
  std::vector<BatchToken>& batch = eval_batch_;
  for (size_t i = 0; i < tokens.size();) {
    batch.clear();
    for (; i < tokens.size() && static_cast<int64_t>(batch.size()) < max_batch_; ++i)
      batch.push_back({tokens[i], static_cast<int32_t>(start_pos + static_cast<int64_t>(i)), seq, i + 1 == tokens.size()});
    decode(batch, logits_.data());
  }
  return logits_.data();
}

// Every position of `tokens` marked for output, in chunks of max_batch; `out(first)` is where chunk rows go.
template <class Out>
void Engine::eval_every_position(int seq, std::span<const int32_t> tokens, int32_t start_pos, Out out) {
  BITNET_CHECK(!tokens.empty(), "[engine] eval of an empty token list");
  std::vector<BatchToken>& batch = eval_batch_;
  for (size_t i = 0; i < tokens.size();) {
    const size_t first = i;
    batch.clear();
    for (; i < tokens.size() && static_cast<int64_t>(batch.size()) < max_batch_; ++i)
      batch.push_back({tokens[i], static_cast<int32_t>(start_pos + static_cast<int64_t>(i)), seq, true});
    out(batch, static_cast<int64_t>(first));
  }
}

void Engine::eval_all(int seq, std::span<const int32_t> tokens, int32_t start_pos, float* logits) {
  const int64_t vocab = model_.config().vocab;
  eval_every_position(seq, tokens, start_pos, [&](std::span<const BatchToken> b, int64_t first) {
    decode(b, logits + first * vocab);
  });
}

void Engine::eval_hidden(int seq, std::span<const int32_t> tokens, int32_t start_pos, float* hidden) {
  const int64_t dim = model_.config().hidden;
  eval_every_position(seq, tokens, start_pos, [&](std::span<const BatchToken> b, int64_t first) {
    decode(b, nullptr, hidden + first * dim);
  });
}

}  // namespace bitnet
