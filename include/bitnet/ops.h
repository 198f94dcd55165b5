#pragma once
// Tensor operations with NumPy semantics: broadcasting, type promotion (see promote_types), reductions
// with keepdims. Every op accepts non-contiguous views. Float math runs in f32 (f16/bf16 inputs are
// computed in f32 and rounded back); contiguous f32 inputs take the vectorized, multi-threaded path.
#include <bitnet/tensor.h>

#include <optional>
#include <vector>

namespace bitnet {

// --- elementwise arithmetic (broadcasting) -----------------------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);  // true division: integer inputs give f32
Tensor pow(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
// Scalar forms: the scalar takes the tensor's dtype (a float scalar with an integer tensor gives f32).
Tensor add(const Tensor& a, double s);
Tensor sub(const Tensor& a, double s);
Tensor mul(const Tensor& a, double s);
Tensor div(const Tensor& a, double s);
Tensor pow(const Tensor& a, double s);
Tensor neg(const Tensor& a);
Tensor abs(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator+(const Tensor& a, double s) { return add(a, s); }
inline Tensor operator-(const Tensor& a, double s) { return sub(a, s); }
inline Tensor operator*(const Tensor& a, double s) { return mul(a, s); }
inline Tensor operator/(const Tensor& a, double s) { return div(a, s); }
inline Tensor operator-(const Tensor& a) { return neg(a); }

// --- comparisons and selection: results are u8 holding 0 or 1 ----------------------------------------------
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
// Elements of a where cond is non-zero, else of b; all three broadcast together.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

// --- reductions: `axes` empty means all axes; negative axes count from the end ------------------------------
// Results are f32 for float inputs; sum of integers is i32 (wrapping, as NumPy's int32 does).
using Axes = std::vector<int64_t>;
Tensor sum(const Tensor& x, const Axes& axes = {}, bool keepdims = false);
Tensor mean(const Tensor& x, const Axes& axes = {}, bool keepdims = false);
Tensor var(const Tensor& x, const Axes& axes = {}, bool keepdims = false, int64_t ddof = 0);
Tensor std(const Tensor& x, const Axes& axes = {}, bool keepdims = false, int64_t ddof = 0);
Tensor min(const Tensor& x, const Axes& axes = {}, bool keepdims = false);
Tensor max(const Tensor& x, const Axes& axes = {}, bool keepdims = false);
// Index (i32) of the first maximum along `axis`, or into the flattened tensor when axis is nullopt.
Tensor argmax(const Tensor& x, std::optional<int64_t> axis = std::nullopt, bool keepdims = false);

// --- activations (float dtypes; result has the input's dtype) ------------------------------------------------
Tensor relu(const Tensor& x);
Tensor relu2(const Tensor& x);  // relu(x)^2, BitNet b1.58's FFN activation
Tensor gelu(const Tensor& x);   // exact: 0.5 x (1 + erf(x / sqrt 2)), PyTorch's default
Tensor silu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor softmax(const Tensor& x, int64_t axis = -1);
Tensor log_softmax(const Tensor& x, int64_t axis = -1);
// x / sqrt(mean(x^2 over the last axis) + eps) * weight; weight (shape [last]) is optional.
Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps = 1e-6f);
Tensor rms_norm(const Tensor& x, float eps = 1e-6f);

// --- matrix products through BLAS (f32; other float dtypes are converted) -----------------------------------
// NumPy matmul semantics: 2-D x 2-D; batched with broadcast batch dims; 1-D operands promoted and squeezed.
Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace bitnet
