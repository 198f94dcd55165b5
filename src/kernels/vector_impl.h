// Internal: the body of the vector kernel family, included once per ISA file with
//   BITNET_VARIANT      the namespace (ref, avx2, avx512, neon)
//   BITNET_VECTOR_FAST  0: libm and plain loops (the reference); 1: branch-free polynomial math and
//                       `omp simd` loops that the compiler vectorizes for the file's target flags.
// No include guard on purpose. Each file's flags decide the instructions; nothing here tests for an ISA
// except the F16C conversion fast path.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include <bitnet/dtype.h>

#include "kernels/vector.h"

#if defined(__F16C__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#if BITNET_VECTOR_FAST
#define BITNET_PRAGMA(x) _Pragma(#x)
#define BITNET_SIMD _Pragma("omp simd")
#define BITNET_SIMD_SUM(v) BITNET_PRAGMA(omp simd reduction(+ : v))
#else
#define BITNET_SIMD
#define BITNET_SIMD_SUM(v)
#endif

namespace bitnet::kernels::BITNET_VARIANT {
namespace {

#if BITNET_VECTOR_FAST
// exp(x) for float: n = round(x / ln2), r = x - n ln2, a degree-7 polynomial for e^r, scaled by 2^n built in
// the exponent bits. About 1 ulp over the normal range; branch-free so that it vectorizes.
inline float exp_f(float x) {
  const float xc = x < -87.33654f ? -87.33654f : (x > 88.72283f ? 88.72283f : (x != x ? 0.0f : x));
  const float n = std::nearbyint(xc * 1.44269504088896341f);
  // ln2 in two parts: n * hi is exact, so subtracting it first loses nothing.
  const float r = std::fma(n, -1.428606765330187e-06f, std::fma(n, -0.693145751953125f, xc));
  // Cephes' minimax polynomial for e^r - 1 - r on |r| <= ln2 / 2.
  float p = 1.9875691500e-4f;
  p = std::fma(p, r, 1.3981999507e-3f);
  p = std::fma(p, r, 8.3334519073e-3f);
  p = std::fma(p, r, 4.1665795894e-2f);
  p = std::fma(p, r, 1.6666665459e-1f);
  p = std::fma(p, r, 5.0000001201e-1f);
  p = std::fma(p * r, r, r) + 1.0f;
  const float scale = std::bit_cast<float>(static_cast<int32_t>(n + 127.0f) << 23);
  float y = p * scale;
  y = x > 88.72283f ? std::numeric_limits<float>::infinity() : y;
  y = x < -87.33654f ? 0.0f : y;
  return x != x ? x : y;
}
// tanh: odd minimax polynomial near 0 (where 1 - e^-2x cancels), 1 - 2 / (e^2x + 1) elsewhere.
inline float tanh_f(float x) {
  const float ax = std::fabs(x);
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = std::fma(p, z, 2.06390887954e-2f);
  p = std::fma(p, z, -5.37397155531e-2f);
  p = std::fma(p, z, 1.33314422036e-1f);
  p = std::fma(p, z, -3.33332819422e-1f);
  const float small = std::fma(p * z, x, x);
  const float e = exp_f(2.0f * (ax < 9.1f ? ax : 9.1f));
  const float large = std::copysign(1.0f - 2.0f / (e + 1.0f), x);
  const float y = ax < 0.625f ? small : large;
  return x != x ? x : y;
}
// erfc(z) for z >= 0 by the Chebyshev fit of Numerical Recipes (erfcc): relative error < 1.2e-7
// everywhere, so GELU stays accurate for negative inputs, where 1 + erf(x) would cancel.
inline float erfc_pos_f(float z) {
  const float t = 1.0f / std::fma(0.5f, z, 1.0f);
  float p = 0.17087277f;
  p = std::fma(p, t, -0.82215223f);
  p = std::fma(p, t, 1.48851587f);
  p = std::fma(p, t, -1.13520398f);
  p = std::fma(p, t, 0.27886807f);
  p = std::fma(p, t, -0.18628806f);
  p = std::fma(p, t, 0.09678418f);
  p = std::fma(p, t, 0.37409196f);
  p = std::fma(p, t, 1.00002368f);
  p = std::fma(p, t, -1.26551223f);
  return t * exp_f(p - z * z);
}
// 1 + erf(z) = erfc(-z), without cancellation on either side.
inline float one_plus_erf_f(float z) {
  const float e = erfc_pos_f(std::fabs(z));
  return z < 0.0f ? e : 2.0f - e;
}
inline float log_f(float x) { return std::log(x); }  // not on a hot path; libm is exact enough
#else
inline float exp_f(float x) { return std::exp(x); }
inline float tanh_f(float x) { return std::tanh(x); }
inline float one_plus_erf_f(float z) { return std::erfc(-z); }
inline float log_f(float x) { return std::log(x); }
#endif

inline float sigmoid_f(float x) { return 1.0f / (1.0f + exp_f(-x)); }

// NumPy's maximum/minimum propagate NaN.
inline float max_nan(float a, float b) { return a != a ? a : (b != b ? b : (a > b ? a : b)); }
inline float min_nan(float a, float b) { return a != a ? a : (b != b ? b : (a < b ? a : b)); }

template <BinaryOp Op>
inline float apply_binary(float a, float b) {
  if constexpr (Op == BinaryOp::add) return a + b;
  if constexpr (Op == BinaryOp::sub) return a - b;
  if constexpr (Op == BinaryOp::mul) return a * b;
  if constexpr (Op == BinaryOp::div) return a / b;
  if constexpr (Op == BinaryOp::pow) return std::pow(a, b);
  if constexpr (Op == BinaryOp::maximum) return max_nan(a, b);
  if constexpr (Op == BinaryOp::minimum) return min_nan(a, b);
}

template <UnaryOp Op>
inline float apply_unary(float x) {
  if constexpr (Op == UnaryOp::neg) return -x;
  if constexpr (Op == UnaryOp::abs) return std::fabs(x);
  if constexpr (Op == UnaryOp::sqrt) return std::sqrt(x);
  if constexpr (Op == UnaryOp::exp) return exp_f(x);
  if constexpr (Op == UnaryOp::log) return log_f(x);
  if constexpr (Op == UnaryOp::relu) return x > 0.0f ? x : (x != x ? x : 0.0f);
  if constexpr (Op == UnaryOp::relu2) {
    const float r = x > 0.0f ? x : (x != x ? x : 0.0f);
    return r * r;
  }
  if constexpr (Op == UnaryOp::gelu) return 0.5f * x * one_plus_erf_f(x * 0.70710678118654752f);
  if constexpr (Op == UnaryOp::silu) return x * sigmoid_f(x);
  if constexpr (Op == UnaryOp::sigmoid) return sigmoid_f(x);
  if constexpr (Op == UnaryOp::tanh) return tanh_f(x);
}

template <BinaryOp Op>
void binary(const float* a, const float* b, float* out, int64_t n) {
  BITNET_SIMD for (int64_t i = 0; i < n; ++i) out[i] = apply_binary<Op>(a[i], b[i]);
}
template <BinaryOp Op>
void binary_scalar(const float* a, float b, float* out, int64_t n) {
  BITNET_SIMD for (int64_t i = 0; i < n; ++i) out[i] = apply_binary<Op>(a[i], b);
}
template <UnaryOp Op>
void unary(const float* x, float* out, int64_t n) {
  BITNET_SIMD for (int64_t i = 0; i < n; ++i) out[i] = apply_unary<Op>(x[i]);
}

double sum(const float* x, int64_t n) {
  double acc = 0.0;
  BITNET_SIMD_SUM(acc) for (int64_t i = 0; i < n; ++i) acc += static_cast<double>(x[i]);
  return acc;
}

double sum_sq_dev(const float* x, double center, int64_t n) {
  double acc = 0.0;
  BITNET_SIMD_SUM(acc) for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - center;
    acc += d * d;
  }
  return acc;
}

template <bool IsMax>
float extreme(const float* x, int64_t n) {
  float m = IsMax ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
  int nan = 0;
#if BITNET_VECTOR_FAST
  if constexpr (IsMax) {
    _Pragma("omp simd reduction(max : m) reduction(| : nan)") for (int64_t i = 0; i < n; ++i) {
      m = x[i] > m ? x[i] : m;
      nan |= x[i] != x[i];
    }
  } else {
    _Pragma("omp simd reduction(min : m) reduction(| : nan)") for (int64_t i = 0; i < n; ++i) {
      m = x[i] < m ? x[i] : m;
      nan |= x[i] != x[i];
    }
  }
#else
  for (int64_t i = 0; i < n; ++i) {
    if (x[i] != x[i]) nan = 1;
    else if (IsMax ? x[i] > m : x[i] < m) m = x[i];
  }
#endif
  return nan ? std::numeric_limits<float>::quiet_NaN() : m;
}

void softmax_row(const float* x, float* out, int64_t n) {
  const float m = extreme<true>(x, n);
  double total = 0.0;
  BITNET_SIMD_SUM(total) for (int64_t i = 0; i < n; ++i) {
    out[i] = exp_f(x[i] - m);
    total += static_cast<double>(out[i]);
  }
  const auto inv = static_cast<float>(1.0 / total);
  BITNET_SIMD for (int64_t i = 0; i < n; ++i) out[i] *= inv;
}

void log_softmax_row(const float* x, float* out, int64_t n) {
  const float m = extreme<true>(x, n);
  double total = 0.0;
  BITNET_SIMD_SUM(total) for (int64_t i = 0; i < n; ++i) total += static_cast<double>(exp_f(x[i] - m));
  const auto shift = static_cast<float>(static_cast<double>(m) + std::log(total));
  BITNET_SIMD for (int64_t i = 0; i < n; ++i) out[i] = x[i] - shift;
}

void rms_norm_row(const float* x, const float* w, float* out, int64_t n, float eps) {
  const double ms = sum_sq_dev(x, 0.0, n) / static_cast<double>(n);
  const auto scale = static_cast<float>(1.0 / std::sqrt(ms + static_cast<double>(eps)));
  if (w != nullptr) {
    BITNET_SIMD for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
  } else {
    BITNET_SIMD for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale;
  }
}

// Rows of f32 or f16: 16 values of a row as f32 (f16 converts exactly, so either gives the same products).
inline void load16(const float* p, float* out) {
  BITNET_SIMD for (int l = 0; l < 16; ++l) out[l] = p[l];
}
inline void load16(const uint16_t* p, float* out) {
#if defined(__AVX512F__)
  // The zero-masked form: GCC 12's plain _mm512_cvtph_ps warns of an uninitialized temporary.
  _mm512_storeu_ps(out, _mm512_maskz_cvtph_ps(0xffff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))));
#elif defined(__F16C__)
  _mm256_storeu_ps(out, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  _mm256_storeu_ps(out + 8, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8))));
#else
  for (int l = 0; l < 16; ++l) out[l] = f16_to_f32(p[l]);
#endif
}
inline float load1(const float* p) { return *p; }
inline float load1(const uint16_t* p) { return f16_to_f32(*p); }

// Lane l of 16 sums the products of elements i = l (mod 16) in order; then the lanes are added pairwise
// (l + 8, + 4, + 2, + 1). Every variant computes exactly this, so they agree bit for bit and a row's score does
// not depend on which rows it is computed with. R rows at a time share the loads of x.
template <int R, class T>
void dot_rows_tile(const T* rows, int64_t stride, const float* x, int64_t n, float* out) {
  constexpr int64_t kLanes = 16;
  float acc[R][kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int r = 0; r < R; ++r) {
      float row[kLanes];
      load16(rows + r * stride + i, row);
      BITNET_SIMD for (int64_t l = 0; l < kLanes; ++l) acc[r][l] += row[l] * x[i + l];
    }
  for (int r = 0; r < R; ++r) {
    for (int64_t l = 0; i + l < n; ++l) acc[r][l] += load1(rows + r * stride + i + l) * x[i + l];
    float* a = acc[r];  // the pairwise tree, one fixed width per step so that each step vectorizes
    BITNET_SIMD for (int64_t l = 0; l < 8; ++l) a[l] += a[l + 8];
    BITNET_SIMD for (int64_t l = 0; l < 4; ++l) a[l] += a[l + 4];
    a[0] += a[2];
    a[1] += a[3];
    out[r] = a[0] + a[1];
  }
}

template <class T>
void dot_rows(const T* rows, int64_t n_rows, int64_t stride, const float* x, int64_t n, float* out) {
  int64_t j = 0;
  for (; j + 4 <= n_rows; j += 4) dot_rows_tile<4>(rows + j * stride, stride, x, n, out + j);
  for (; j < n_rows; ++j) dot_rows_tile<1>(rows + j * stride, stride, x, n, out + j);
}

// Strips of y stay in registers across all rows; each element still sees the rows in order 0, 1, ..., one
// multiply and one add each (no contraction), so every variant gives the same bits as the reference.
template <class T>
void axpy_rows(const float* a, const T* rows, int64_t n_rows, int64_t stride, float* y, int64_t n) {
  int64_t i = 0;
#if BITNET_VECTOR_FAST
  constexpr int64_t kStrip = 64;
  for (; i + kStrip <= n; i += kStrip) {
    float acc[kStrip];
    BITNET_SIMD for (int64_t k = 0; k < kStrip; ++k) acc[k] = y[i + k];
    for (int64_t j = 0; j < n_rows; ++j) {
      const float aj = a[j];
      float r[kStrip];
      for (int64_t q = 0; q < kStrip; q += 16) load16(rows + j * stride + i + q, r + q);
      BITNET_SIMD for (int64_t k = 0; k < kStrip; ++k) acc[k] += aj * r[k];
    }
    BITNET_SIMD for (int64_t k = 0; k < kStrip; ++k) y[i + k] = acc[k];
  }
#endif
  for (; i < n; ++i) {
    float acc = y[i];
    for (int64_t j = 0; j < n_rows; ++j) acc += a[j] * load1(rows + j * stride + i);
    y[i] = acc;
  }
}

// --- conversions -----------------------------------------------------------------------------------------
void f32_to_f16_row(const float* x, uint16_t* out, int64_t n) {
  int64_t i = 0;
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
  for (; i < n; ++i) out[i] = f32_to_f16(x[i]);
}
void f16_to_f32_row(const uint16_t* x, float* out, int64_t n) {
  int64_t i = 0;
#if defined(__F16C__)
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
#endif
  for (; i < n; ++i) out[i] = f16_to_f32(x[i]);
}
void f32_to_bf16_row(const float* x, uint16_t* out, int64_t n) {
  // Same rounding as bitnet::f32_to_bf16, written branch-free so that it vectorizes.
  BITNET_SIMD for (int64_t i = 0; i < n; ++i) {
    const uint32_t b = std::bit_cast<uint32_t>(x[i]);
    const bool nan = (b & 0x7fffffffu) > 0x7f800000u;
    const auto rounded = static_cast<uint16_t>((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
    out[i] = nan ? static_cast<uint16_t>((b >> 16) | 0x0040u) : rounded;
  }
}
void q8_0_to_f32_row(const uint8_t* blocks, int64_t first, int64_t n, float* out) {
  constexpr int64_t kBlock = 32, kBytes = 34;
  for (int64_t i = first; i < first + n;) {
    const uint8_t* block = blocks + i / kBlock * kBytes;
    const int64_t j0 = i % kBlock, len = std::min(kBlock - j0, first + n - i);
    const auto bits = static_cast<uint16_t>(block[0] | (block[1] << 8));
#if defined(__F16C__)
    const float d = _cvtsh_ss(bits);
#else
    const float d = f16_to_f32(bits);
#endif
    const auto* q = reinterpret_cast<const int8_t*>(block + 2) + j0;
    float* o = out + (i - first);
    if (len == kBlock) {
      BITNET_SIMD for (int64_t j = 0; j < kBlock; ++j) o[j] = static_cast<float>(q[j]) * d;
    } else {
      for (int64_t j = 0; j < len; ++j) o[j] = static_cast<float>(q[j]) * d;
    }
    i += len;
  }
}
void bf16_to_f32_row(const uint16_t* x, float* out, int64_t n) {
  BITNET_SIMD for (int64_t i = 0; i < n; ++i) out[i] = std::bit_cast<float>(static_cast<uint32_t>(x[i]) << 16);
}

}  // namespace

extern const VectorKernels kVectorKernels;
const VectorKernels kVectorKernels = {
    {binary<BinaryOp::add>, binary<BinaryOp::sub>, binary<BinaryOp::mul>, binary<BinaryOp::div>,
     binary<BinaryOp::pow>, binary<BinaryOp::maximum>, binary<BinaryOp::minimum>},
    {binary_scalar<BinaryOp::add>, binary_scalar<BinaryOp::sub>, binary_scalar<BinaryOp::mul>,
     binary_scalar<BinaryOp::div>, binary_scalar<BinaryOp::pow>, binary_scalar<BinaryOp::maximum>,
     binary_scalar<BinaryOp::minimum>},
    {unary<UnaryOp::neg>, unary<UnaryOp::abs>, unary<UnaryOp::sqrt>, unary<UnaryOp::exp>, unary<UnaryOp::log>,
     unary<UnaryOp::relu>, unary<UnaryOp::relu2>, unary<UnaryOp::gelu>, unary<UnaryOp::silu>,
     unary<UnaryOp::sigmoid>, unary<UnaryOp::tanh>},
    sum,
    sum_sq_dev,
    extreme<true>,
    extreme<false>,
    softmax_row,
    log_softmax_row,
    rms_norm_row,
    dot_rows<float>,
    axpy_rows<float>,
    dot_rows<uint16_t>,
    axpy_rows<uint16_t>,
    f32_to_f16_row,
    f16_to_f32_row,
    f32_to_bf16_row,
    bf16_to_f32_row,
    q8_0_to_f32_row,
};

}  // namespace bitnet::kernels::BITNET_VARIANT

#undef BITNET_PRAGMA
#undef BITNET_SIMD
#undef BITNET_SIMD_SUM
