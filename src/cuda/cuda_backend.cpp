// The CUDA engine backend (see cuda_backend.h): weight upload, buffers, and the per-layer kernel sequence,
// the same computation as runtime/engine.cpp in the same order.
#include "cuda/cuda_backend.h"

#include <bitnet/error.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "cuda/gpu_layout.h"
#include "kernels/ternary.h"

namespace bitnet::cuda {

namespace {

constexpr int kGraphMaxTokens = kGemvMaxTokens;  // decode shapes captured as graphs
constexpr int kHeadChunk = 8;                    // logits rows per head pass (pinned staging rows)

int64_t pad_k(int64_t k) { return (k + kGpuKAlign - 1) / kGpuKAlign * kGpuKAlign; }

template <class T>
std::span<const T> as_span(const std::vector<T>& v) { return {v.data(), v.size()}; }

size_t packed_bytes(int64_t rows, int64_t cols) {
  return static_cast<size_t>((rows + kGpuRowGroup - 1) / kGpuRowGroup * kGpuRowGroup * pad_k(cols) / 4);
}

void upload_matrix(DevMatrix& d, std::span<const TernaryMatrix* const> parts, const char* what) {
  const GpuTernary g = pack_gpu_ternary(parts);
  d.data.allocate(g.data.size(), what);
  d.data.upload(as_span(g.data));
  d.scales.allocate(2 * g.rows * sizeof(float), what);
  d.scales.upload(as_span(g.tensor_scale));
  d.scales.upload(as_span(g.row_scale), g.rows * sizeof(float));
  d.view = {d.data.as<uint8_t>(), d.scales.as<float>(), d.scales.as<float>() + g.rows, g.rows, g.k_pad};
}

}  // namespace

CudaBackend::CudaBackend(const Model& model, int64_t n_ctx, int n_seq, int64_t max_batch, int device)
    : model_(model), device_(device), n_ctx_(n_ctx), max_batch_(max_batch), n_seq_(n_seq) {
  const TransformerConfig& c = model.config();
  BITNET_CHECK(model.head_type() != HeadType::int4,
               "[cuda] the int4 output head has no CUDA kernel yet: load the model with the f16 or int8 head");
  BITNET_CUDA_CHECK(cudaSetDevice(device));
  cudaDeviceProp prop{};
  BITNET_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  BITNET_CHECK(prop.major >= 8, "[cuda] GPU {} ({}) has compute capability {}.{}; the kernels need 8.0 or newer "
               "(int8 mma.sync m16n8k32)", device, prop.name, prop.major, prop.minor);
  name_ = fmt::format("CUDA {}", prop.name);
  q_dim_ = c.heads * c.head_dim;
  kv_dim_ = c.kv_heads * c.head_dim;
  qkv_dim_ = q_dim_ + 2 * kv_dim_;
  act_k_pad_ = pad_k(std::max({c.hidden, c.ffn, q_dim_}));
  attention_prepare(n_ctx, static_cast<int>(c.head_dim));

  // Say up front when the model does not fit, instead of failing on the n-th allocation.
  const bool f16_head = model.head_type() == HeadType::f16;
  const bool tied = f16_head && model.head_f16().storage() == model.embedding().storage() &&
                    model.head_f16().data() == model.embedding().data() && model.embedding().dtype() == DType::f16;
  size_t need = static_cast<size_t>(c.layers) *
                (packed_bytes(qkv_dim_, c.hidden) + packed_bytes(c.hidden, q_dim_) + packed_bytes(2 * c.ffn, c.hidden) +
                 packed_bytes(c.hidden, c.ffn));
  need += model.embedding().nbytes() + (f16_head ? (tied ? 0 : model.head_f16().nbytes()) : model.head_int8().bytes());
  const size_t cache = static_cast<size_t>(c.layers * n_seq * n_ctx * kv_dim_) * sizeof(uint16_t);
  need += 2 * cache + static_cast<size_t>(max_batch * (c.hidden + qkv_dim_ + q_dim_ + 2 * c.ffn + act_k_pad_) * 4);
  size_t free_b = 0, total_b = 0;
  BITNET_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  BITNET_CHECK(need <= free_b, "[cuda] the model, a KV cache of {} x {} positions and the scratch need {:.2f} GiB on GPU "
               "{} ({}), which has {:.2f} GiB free of {:.2f} GiB; use a smaller -c or a smaller model",
               n_seq, n_ctx, need / 1073741824.0, device, prop.name, free_b / 1073741824.0, total_b / 1073741824.0);

  BITNET_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  layers_.resize(static_cast<size_t>(c.layers));
  for (int64_t l = 0; l < c.layers; ++l) {
    const LayerWeights& w = model.layers()[static_cast<size_t>(l)];
    Layer& d = layers_[static_cast<size_t>(l)];
    const TernaryMatrix* qkv[] = {&w.wq, &w.wk, &w.wv};
    const TernaryMatrix* wo[] = {&w.wo};
    const TernaryMatrix* gu[] = {&w.w_gate, &w.w_up};
    const TernaryMatrix* down[] = {&w.w_down};
    upload_matrix(d.qkv, qkv, "q|k|v projection");
    upload_matrix(d.wo, wo, "output projection");
    upload_matrix(d.gate_up, gu, "gate|up projection");
    upload_matrix(d.down, down, "down projection");
    std::vector<float> norms;
    auto append = [&](const std::vector<float>& v, int64_t n) {
      if (v.empty()) norms.resize(norms.size() + static_cast<size_t>(n), 1.0f);  // unused (no sub-norm)
      else norms.insert(norms.end(), v.begin(), v.end());
    };
    append(w.attn_norm, c.hidden);
    append(w.attn_sub_norm, q_dim_);
    append(w.ffn_norm, c.hidden);
    append(w.ffn_sub_norm, c.ffn);
    d.norms.allocate(norms.size() * sizeof(float), "norm weights");
    d.norms.upload(as_span(norms));
  }
  const Tensor emb = model.embedding().contiguous();
  embedding_f16_ = emb.dtype() == DType::f16;
  BITNET_CHECK(embedding_f16_ || emb.dtype() == DType::f32, "[cuda] embedding of type {} (f16 or f32 expected)",
               dtype_name(emb.dtype()));
  embedding_.allocate(emb.nbytes(), "token embedding");
  embedding_.upload(std::span<const uint8_t>(static_cast<const uint8_t*>(emb.data()), emb.nbytes()));
  embedding_ptr_ = embedding_.get();
  if (f16_head) {
    if (tied) {
      head_f16_ptr_ = embedding_.as<uint16_t>();
    } else {
      const Tensor h = model.head_f16().contiguous();
      head_f16_.allocate(h.nbytes(), "f16 output head");
      head_f16_.upload(std::span<const uint8_t>(static_cast<const uint8_t*>(h.data()), h.nbytes()));
      head_f16_ptr_ = head_f16_.as<uint16_t>();
    }
  } else {
    const Int8Matrix& h = model.head_int8();
    BITNET_CHECK(h.k_pad() == pad_k(c.hidden), "[cuda] int8 head padded to {}, expected {}", h.k_pad(), pad_k(c.hidden));
    const std::vector<uint8_t> rows = h.row_major();  // the CPU layout interleaves rows; the GPU's does not
    head_i8_.allocate(rows.size(), "int8 output head");
    head_i8_.upload(std::span<const uint8_t>(rows.data(), rows.size()));
    head_i8_scales_.allocate(h.row_scales().size() * sizeof(float), "int8 head scales");
    head_i8_scales_.upload(as_span(h.row_scales()));
  }
  output_norm_.allocate(model.output_norm().size() * sizeof(float), "output norm");
  output_norm_.upload(as_span(model.output_norm()));

  k_cache_.allocate(cache, "K cache");
  v_cache_.allocate(cache, "V cache");
  // RoPE tables exactly as the CPU engine computes them (same frequencies, same expressions, same libm). Dynamic
  // NTK scaling past the model's context would need the tables refilled per batch, which this backend does not do.
  BITNET_CHECK(c.rope_scaling.type != RopeType::dynamic || n_ctx <= c.context,
               "[cuda] dynamic RoPE scaling with a context ({}) beyond the model's ({}) is not implemented on CUDA; "
               "use the CPU or -c {}", n_ctx, c.context, c.context);
  const RopeFrequencies freq = c.rope();
  const int64_t half = c.head_dim / 2;
  std::vector<float> cos_t(static_cast<size_t>(n_ctx * half)), sin_t(cos_t.size());
  for (int64_t i = 0; i < half; ++i) {
    for (int64_t p = 0; p < n_ctx; ++p) {
      const float angle = static_cast<float>(p) * freq.inv_freq[static_cast<size_t>(i)];
      cos_t[static_cast<size_t>(p * half + i)] = std::cos(angle) * freq.attention_factor;
      sin_t[static_cast<size_t>(p * half + i)] = std::sin(angle) * freq.attention_factor;
    }
  }
  rope_cos_.allocate(cos_t.size() * sizeof(float), "RoPE table");
  rope_sin_.allocate(sin_t.size() * sizeof(float), "RoPE table");
  rope_cos_.upload(as_span(cos_t));
  rope_sin_.upload(as_span(sin_t));

  const auto mb = static_cast<size_t>(max_batch);
  x_.allocate(mb * c.hidden * sizeof(float), "activations");
  qkv_.allocate(mb * qkv_dim_ * sizeof(float), "q|k|v activations");
  o_.allocate(mb * q_dim_ * sizeof(float), "attention output");
  gu_.allocate(mb * 2 * c.ffn * sizeof(float), "gate|up activations");
  q8_.allocate(mb * act_k_pad_, "int8 activations");
  dequant_.allocate(mb * sizeof(float), "activation scales");
  sums_.allocate(mb * sizeof(int32_t), "activation sums");
  h_.allocate(kHeadChunk * c.hidden * sizeof(float), "head input");
  logits_dev_.allocate(kHeadChunk * c.vocab * sizeof(float), "logits");
  meta_.allocate(4 * mb * sizeof(int32_t), "batch metadata");
  BITNET_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&meta_host_), 4 * mb * sizeof(int32_t), cudaHostAllocDefault));
  std::memset(meta_host_, 0, 4 * mb * sizeof(int32_t));
  BITNET_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&logits_host_), kHeadChunk * c.vocab * sizeof(float),
                                  cudaHostAllocDefault));
}

CudaBackend::~CudaBackend() {
  (void)cudaSetDevice(device_);
  for (auto& [key, exec] : graphs_) (void)cudaGraphExecDestroy(exec);
  if (meta_host_ != nullptr) (void)cudaFreeHost(meta_host_);
  if (logits_host_ != nullptr) (void)cudaFreeHost(logits_host_);
  if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
}

void CudaBackend::enqueue_layers(int tokens) {
  const TransformerConfig& c = model_.config();
  const auto mb = static_cast<size_t>(max_batch_);
  BITNET_CUDA_CHECK(cudaMemcpyAsync(meta_.get(), meta_host_, 4 * mb * sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
  const int32_t* meta = meta_.as<int32_t>();
  const DevBatch batch{meta, meta + mb, meta + 2 * mb, tokens};
  const DevKvCache cache{k_cache_.as<uint16_t>(), v_cache_.as<uint16_t>(), n_seq_, n_ctx_, kv_dim_};
  float* x = x_.as<float>();
  float* qkv = qkv_.as<float>();
  float* o = o_.as<float>();
  float* gu = gu_.as<float>();
  const DevActs acts_h{q8_.as<int8_t>(), dequant_.as<float>(), sums_.as<int32_t>(), pad_k(c.hidden)};
  const DevActs acts_q{q8_.as<int8_t>(), dequant_.as<float>(), sums_.as<int32_t>(), pad_k(q_dim_)};
  const DevActs acts_f{q8_.as<int8_t>(), dequant_.as<float>(), sums_.as<int32_t>(), pad_k(c.ffn)};
  auto quant = [&](float* in, int64_t stride, int64_t k, const float* g, const DevActs& a, const float* up = nullptr,
                   GateAct act = GateAct::none) {
    NormQuantArgs q;
    q.x = in;
    q.x_stride = stride;
    q.up = up;
    q.up_stride = stride;
    q.act = act;
    q.g = g;
    q.eps = c.norm_eps;
    q.rows = tokens;
    q.k = k;
    q.q = q8_.as<int8_t>();
    q.k_pad = a.k_pad;
    q.dequant = dequant_.as<float>();
    q.sums = sums_.as<int32_t>();
    norm_quant(q, stream_);
  };
  embed(embedding_ptr_, embedding_f16_, batch, c.hidden, x, stream_);
  const GateAct act = c.activation == FfnActivation::relu2 ? GateAct::relu2 : GateAct::silu;
  for (int64_t l = 0; l < c.layers; ++l) {
    Layer& w = layers_[static_cast<size_t>(l)];
    const float* attn_norm = w.norms.as<float>();
    const float* attn_sub = attn_norm + c.hidden;
    const float* ffn_norm = attn_sub + q_dim_;
    const float* ffn_sub = ffn_norm + c.hidden;
    quant(x, c.hidden, c.hidden, attn_norm, acts_h);
    ternary_matmul(w.qkv.view, acts_h, tokens, qkv, qkv_dim_, false, stream_);
    rope_kv(qkv, qkv_dim_, batch, static_cast<int>(c.heads), static_cast<int>(c.kv_heads), static_cast<int>(c.head_dim),
            rope_cos_.as<float>(), rope_sin_.as<float>(), cache, l, stream_);
    attention(qkv, qkv_dim_, batch, static_cast<int>(c.heads), static_cast<int>(c.kv_heads),
              static_cast<int>(c.head_dim), cache, l, o, q_dim_, stream_);
    quant(o, q_dim_, q_dim_, c.sub_norms ? attn_sub : nullptr, acts_q);
    ternary_matmul(w.wo.view, acts_q, tokens, x, c.hidden, true, stream_);
    quant(x, c.hidden, c.hidden, ffn_norm, acts_h);
    ternary_matmul(w.gate_up.view, acts_h, tokens, gu, 2 * c.ffn, false, stream_);
    quant(gu, 2 * c.ffn, c.ffn, c.sub_norms ? ffn_sub : nullptr, acts_f, gu + c.ffn, act);
    ternary_matmul(w.down.view, acts_f, tokens, x, c.hidden, true, stream_);
  }
}

void CudaBackend::enqueue_head(int first, int count) {
  const TransformerConfig& c = model_.config();
  const int32_t* rows = meta_.as<int32_t>() + 3 * max_batch_ + first;
  float* logits = logits_dev_.as<float>();
  if (model_.head_type() == HeadType::int8) {
    NormQuantArgs q;
    q.x = x_.as<float>();
    q.x_stride = c.hidden;
    q.g = output_norm_.as<float>();
    q.eps = c.norm_eps;
    q.row_index = rows;
    q.rows = count;
    q.k = c.hidden;
    q.q = q8_.as<int8_t>();
    q.k_pad = pad_k(c.hidden);
    q.dequant = dequant_.as<float>();
    q.sums = sums_.as<int32_t>();
    norm_quant(q, stream_);
    const DevActs a{q8_.as<int8_t>(), dequant_.as<float>(), sums_.as<int32_t>(), pad_k(c.hidden)};
    head_int8(head_i8_.as<uint8_t>(), head_i8_scales_.as<float>(), c.vocab, a, count, logits, c.vocab, stream_);
  } else {
    rms_norm_rows(x_.as<float>(), c.hidden, rows, count, output_norm_.as<float>(), c.norm_eps, c.hidden, h_.as<float>(),
                  stream_);
    head_f16(head_f16_ptr_, c.vocab, c.hidden, h_.as<float>(), count, logits, c.vocab, stream_);
  }
  BITNET_CUDA_CHECK(cudaMemcpyAsync(logits_host_, logits, static_cast<size_t>(count * c.vocab) * sizeof(float),
                                    cudaMemcpyDeviceToHost, stream_));
}

cudaGraphExec_t CudaBackend::graph_for(int tokens, int n_logits) {
  const auto key = std::make_pair(tokens, n_logits);
  if (auto it = graphs_.find(key); it != graphs_.end()) return it->second;
  // Captured once per shape: the kernels read tokens / positions / sequences from meta_, which the graph's
  // first node copies from the pinned meta_host_ on every replay, so one graph serves every step of its shape.
  BITNET_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  cudaGraph_t graph = nullptr;
  try {
    enqueue_layers(tokens);
    if (n_logits > 0) enqueue_head(0, n_logits);
  } catch (...) {
    (void)cudaStreamEndCapture(stream_, &graph);
    if (graph != nullptr) (void)cudaGraphDestroy(graph);
    throw;
  }
  BITNET_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
  (void)cudaGraphDestroy(graph);
  BITNET_CUDA_CHECK(e);
  graphs_[key] = exec;
  return exec;
}

void CudaBackend::decode(std::span<const BatchToken> batch, float* logits) {
  const TransformerConfig& c = model_.config();
  const auto tokens = static_cast<int>(batch.size());
  BITNET_CHECK(tokens > 0 && tokens <= max_batch_, "[cuda] batch of {} tokens (1..{} allowed)", tokens, max_batch_);
  BITNET_CUDA_CHECK(cudaSetDevice(device_));
  const auto mb = static_cast<size_t>(max_batch_);
  int n_logits = 0;
  for (int t = 0; t < tokens; ++t) {
    const BatchToken& bt = batch[static_cast<size_t>(t)];
    BITNET_CHECK(bt.token >= 0 && bt.token < c.vocab, "[engine] token id {} is outside the vocabulary (0..{})", bt.token,
                 c.vocab - 1);
    meta_host_[t] = bt.token;
    meta_host_[mb + t] = bt.pos;
    meta_host_[2 * mb + t] = bt.seq;
    if (bt.logits) meta_host_[3 * mb + n_logits++] = t;
  }
  const size_t row_bytes = static_cast<size_t>(c.vocab) * sizeof(float);
  if (use_graphs_ && tokens <= kGraphMaxTokens && n_logits <= kHeadChunk) {
    BITNET_CUDA_CHECK(cudaGraphLaunch(graph_for(tokens, n_logits), stream_));
    BITNET_CUDA_CHECK(cudaStreamSynchronize(stream_));
    std::memcpy(logits, logits_host_, n_logits * row_bytes);
    return;
  }
  enqueue_layers(tokens);
  if (n_logits == 0) BITNET_CUDA_CHECK(cudaStreamSynchronize(stream_));
  for (int first = 0; first < n_logits; first += kHeadChunk) {
    const int count = std::min(kHeadChunk, n_logits - first);
    enqueue_head(first, count);
    BITNET_CUDA_CHECK(cudaStreamSynchronize(stream_));
    std::memcpy(logits + static_cast<size_t>(first) * c.vocab, logits_host_, count * row_bytes);
  }
}

}  // namespace bitnet::cuda
