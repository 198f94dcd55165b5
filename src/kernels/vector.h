#pragma once
// Internal: the "vector" kernel family: contiguous f32 loops behind the tensor ops (elementwise arithmetic,
// activations, row reductions, softmax, RMSNorm) and the f16/bf16 conversions. The ISA variants are one
// template (vector_impl.h) compiled with each ISA's flags; the ref variant uses libm and plain loops, the
// others polynomial exp/erf/tanh that vectorize (within ~2 ulp-scale tolerance of ref, see the tests).
#include <cstdint>

#include "kernels/dispatch.h"

namespace bitnet::kernels {

enum class BinaryOp { add, sub, mul, div, pow, maximum, minimum };
inline constexpr int kBinaryOpCount = 7;
enum class UnaryOp { neg, abs, sqrt, exp, log, relu, relu2, gelu, silu, sigmoid, tanh };
inline constexpr int kUnaryOpCount = 11;

struct VectorKernels {
  void (*binary[kBinaryOpCount])(const float* a, const float* b, float* out, int64_t n);
  void (*binary_scalar[kBinaryOpCount])(const float* a, float b, float* out, int64_t n);
  void (*unary[kUnaryOpCount])(const float* x, float* out, int64_t n);
  // Row reductions accumulate in double so that long rows stay accurate.
  double (*sum)(const float* x, int64_t n);
  double (*sum_sq_dev)(const float* x, double center, int64_t n);  // sum((x - center)^2)
  float (*max)(const float* x, int64_t n);  // NaN if any element is NaN (as NumPy)
  float (*min)(const float* x, int64_t n);
  // out[i] = e^(x[i] - m), and their sum (a softmax's numerators and denominator, for the caller's largest m).
  double (*exp_shifted_sum)(const float* x, float m, float* out, int64_t n);
  // y[i] = y[i] * a + x[i] * b (two products and a sum, each rounded: no fused multiply-add in any variant).
  void (*scale_add)(float* y, float a, const float* x, float b, int64_t n);
  void (*softmax_row)(const float* x, float* out, int64_t n);
  void (*log_softmax_row)(const float* x, float* out, int64_t n);
  // out = x / sqrt(mean(x^2) + eps) * w; w may be null.
  void (*rms_norm_row)(const float* x, const float* w, float* out, int64_t n, float eps);
  // Attention's two products over cached rows (row j at rows + j * stride, n floats each), for g queries at
  // once (contiguous, n floats each): out[q * out_stride + j] = rows[j] . x_q (query-key scores), and
  // y_q += sum_j a[q * a_stride + j] * rows[j] for g outputs y_q (contiguous; the weighted sum of values).
  // Both are specified operation by operation with fused multiply-adds (vector_impl.h): every variant gives the
  // same bits, whatever g.
  void (*dot_rows)(const float* rows, int64_t n_rows, int64_t stride, const float* x, int64_t g, int64_t n, float* out,
                   int64_t out_stride);
  void (*axpy_rows)(const float* a, int64_t a_stride, const float* rows, int64_t n_rows, int64_t stride, float* y,
                    int64_t g, int64_t n);
  // The same two on rows of f16 values, each converted to f32 (exactly) as it is read: the same bits as
  // converting the rows first, without the converted copy (decode reads its f16 cache so).
  void (*dot_rows_f16)(const uint16_t* rows, int64_t n_rows, int64_t stride, const float* x, int64_t g, int64_t n,
                       float* out, int64_t out_stride);
  void (*axpy_rows_f16)(const float* a, int64_t a_stride, const uint16_t* rows, int64_t n_rows, int64_t stride,
                        float* y, int64_t g, int64_t n);
  void (*f32_to_f16)(const float* x, uint16_t* out, int64_t n);
  void (*f16_to_f32)(const uint16_t* x, float* out, int64_t n);
  void (*f32_to_bf16)(const float* x, uint16_t* out, int64_t n);
  void (*bf16_to_f32)(const uint16_t* x, float* out, int64_t n);
  // Rows of a KV cache, row j at rows + j * row_bytes: values [first, first + n) of each of n_rows rows, to out
  // as rows of n floats. f16 values, or GGML q8_0 blocks (an f16 scale d, then 32 int8 q; value = q * d) from
  // the row's start.
  void (*f16_rows_to_f32)(const uint8_t* rows, int64_t n_rows, int64_t row_bytes, int64_t first, int64_t n, float* out);
  void (*q8_0_rows_to_f32)(const uint8_t* rows, int64_t n_rows, int64_t row_bytes, int64_t first, int64_t n, float* out);
};

const Family<VectorKernels>& vector_family();
inline const VectorKernels& vector_kernels() { return vector_family().get(); }

}  // namespace bitnet::kernels
