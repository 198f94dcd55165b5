#pragma once
// Host-side launchers of the CUDA kernels (each family in its own k_*.cu file). Pointers are device pointers;
// every launcher enqueues on `stream` and checks the launch. Shapes are validated by the callers (the engine and
// the tests), the kernels only index.
#include <cuda_runtime.h>

#include <cstdint>

namespace bitnet::cuda {

// A ternary matrix in the GPU layout (gpu_layout.h) on the device.
struct DevTernary {
  const uint8_t* w = nullptr;
  const float* tensor_scale = nullptr;  // per row
  const float* row_scale = nullptr;     // per row
  int64_t rows = 0, k_pad = 0;
};

// Per-token int8 activations: rows of k_pad bytes (zero past k), the dequant factor and the sum of each row.
struct DevActs {
  const int8_t* q = nullptr;
  const float* dequant = nullptr;
  const int32_t* sums = nullptr;
  int64_t k_pad = 0;
};

// y[t * y_stride + n] (+)= (float(sum_k W[n,k] q[t,k]) * (dequant[t] * tensor_scale[n])) * row_scale[n]:
// bit-identical to the CPU's ternary_matmul (+ the residual add when accumulate).
inline constexpr int kGemvMaxTokens = 8;
void ternary_gemv(const DevTernary& w, const DevActs& x, int tokens, float* y, int64_t y_stride, bool accumulate,
                  cudaStream_t stream);  // tokens <= kGemvMaxTokens: dp4a, one warp per 4-row group
void ternary_gemm(const DevTernary& w, const DevActs& x, int tokens, float* y, int64_t y_stride, bool accumulate,
                  cudaStream_t stream);  // any tokens: 2-bit -> int8 in shared memory, int8 mma.sync
void ternary_matmul(const DevTernary& w, const DevActs& x, int tokens, float* y, int64_t y_stride, bool accumulate,
                    cudaStream_t stream);  // picks one of the two

enum class GateAct { none = 0, relu2 = 1, silu = 2 };

// Per-token int8 quantization of rows of k floats, optionally after RMSNorm (g != nullptr) and optionally of a
// gated input act(x) * up (act != none; the product is written back over x). Rows are read at row_index[j]
// (nullptr: j) and written at j. Matches rms_norm_quantize_activations / quantize_activations on the CPU.
struct NormQuantArgs {
  float* x = nullptr;
  int64_t x_stride = 0;
  const float* up = nullptr;  // gated input only
  int64_t up_stride = 0;
  GateAct act = GateAct::none;
  const float* g = nullptr;   // RMSNorm weight, or nullptr: plain quantization
  float eps = 0;
  const int32_t* row_index = nullptr;
  int rows = 0;
  int64_t k = 0;
  int8_t* q = nullptr;        // rows x k_pad
  int64_t k_pad = 0;
  float* dequant = nullptr;
  int32_t* sums = nullptr;
};
void norm_quant(const NormQuantArgs& a, cudaStream_t stream);

// out[j] = rms_norm(x[row_index[j]]) * g (f32), as the CPU's rms_norm_row (before the f16 head).
void rms_norm_rows(const float* x, int64_t x_stride, const int32_t* row_index, int rows, const float* g, float eps,
                   int64_t k, float* out, cudaStream_t stream);

// Per-token metadata of a batch on the device.
struct DevBatch {
  const int32_t* token = nullptr;
  const int32_t* pos = nullptr;
  const int32_t* seq = nullptr;
  int tokens = 0;
};

// The f16 KV cache of all layers: [layer][seq][pos][kv_dim].
struct DevKvCache {
  uint16_t* k = nullptr;
  uint16_t* v = nullptr;
  int n_seq = 0;
  int64_t n_ctx = 0;
  int64_t kv_dim = 0;
};

// Half-split RoPE on q and k (rows of qkv: q_dim | kv_dim | kv_dim floats) and the f16 store of k and v into the
// cache at each token's (seq, pos). rope_cos/sin: [n_ctx][head_dim / 2], the CPU engine's own tables.
void rope_kv(float* qkv, int64_t qkv_stride, const DevBatch& b, int heads, int kv_heads, int head_dim,
             const float* rope_cos, const float* rope_sin, const DevKvCache& cache, int64_t layer,
             cudaStream_t stream);

// Causal GQA attention of each batch token over its sequence's cache positions 0..pos: o[t][h * d ..].
// head_dim must be a multiple of 64 and at most 256 (checked by the engine).
void attention(const float* qkv, int64_t qkv_stride, const DevBatch& b, int heads, int kv_heads, int head_dim,
               const DevKvCache& cache, int64_t layer, float* o, int64_t o_stride, cudaStream_t stream);
// Dynamic shared memory the attention kernel needs for a context of n_ctx (sets the kernel's limit; throws
// when the device cannot give it).
void attention_prepare(int64_t n_ctx, int head_dim);

// x[t] = embedding[token[t]] as f32; the embedding is f16 (is_f16) or f32, [vocab, hidden].
void embed(const void* embedding, bool is_f16, const DevBatch& b, int64_t hidden, float* x, cudaStream_t stream);

// y[j * y_stride + n] = sum_k w[n, k] h[j, k] for f16 w [rows, k] (rows contiguous), f32 accumulation.
void head_f16(const uint16_t* w, int64_t rows, int64_t k, const float* h, int tokens, float* y, int64_t y_stride,
              cudaStream_t stream);
// y[j * y_stride + n] = (float(sum_k W[n,k] q[j,k]) * dequant[j]) * row_scale[n] for the int8 head (weights
// stored +128 as u8, rows of k_pad): bit-identical to the CPU's int8_matmul.
void head_int8(const uint8_t* w, const float* row_scale, int64_t rows, const DevActs& x, int tokens, float* y,
               int64_t y_stride, cudaStream_t stream);

void check_launch(const char* what);  // throws bitnet::Error on a launch error

}  // namespace bitnet::cuda
