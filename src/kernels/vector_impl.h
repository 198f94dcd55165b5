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

#include "kernels/q8_0_block.h"
#include "kernels/vector.h"

#if defined(__F16C__) || defined(__AVX2__) || defined(__AVX512F__)
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

#if defined(__AVX512F__)
// exp_f for 16 lanes with the same n, r and polynomial, 2^n applied by vscalefps, which also gives 0 far below,
// infinity far above and keeps NaN: no blends. The clamp keeps n finite (x = -inf would make r NaN); max and min
// take x second, so a NaN passes through. Zero-masked forms: GCC 12's plain ones warn of an uninitialized temporary.
inline __m512 exp16(__m512 x) {
  x = _mm512_maskz_min_ps(0xffff, _mm512_set1_ps(89.0f), _mm512_maskz_max_ps(0xffff, _mm512_set1_ps(-104.0f), x));
  const __m512 n = _mm512_maskz_roundscale_ps(0xffff, _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                               _MM_FROUND_TO_NEAREST_INT);
  const __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-1.428606765330187e-06f),
                                   _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693145751953125f), x));
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0f));
  return _mm512_maskz_scalef_ps(0xffff, p, n);
}

// Attention's softmax runs this once per (query, unit of 128 scores); exp_f's clamps and blends were most of its
// time.
double exp_shifted_sum(const float* x, float m, float* out, int64_t n) {
  __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
  const __m512 shift = _mm512_set1_ps(m);
  for (int64_t i = 0; i < n; i += 16) {
    const auto in = static_cast<__mmask16>(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1u);
    const __m512 e = _mm512_maskz_mov_ps(in, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(in, x + i), shift)));
    _mm512_mask_storeu_ps(out + i, in, e);
    lo = _mm512_add_pd(lo, _mm512_maskz_cvtps_pd(0xff, _mm512_maskz_extractf32x8_ps(0xff, e, 0)));
    hi = _mm512_add_pd(hi, _mm512_maskz_cvtps_pd(0xff, _mm512_maskz_extractf32x8_ps(0xff, e, 1)));
  }
  alignas(64) double lanes[8];
  _mm512_store_pd(lanes, _mm512_add_pd(lo, hi));
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}
#elif defined(__AVX2__) && BITNET_VECTOR_FAST
// exp_f for 8 lanes, operation for operation (so bit for bit), the out-of-range and NaN cases as blends. The max
// takes x first, so a NaN becomes the bound (then blended back to NaN).
inline __m256 exp8(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.33654f), hi = _mm256_set1_ps(88.72283f);
  const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-1.428606765330187e-06f),
                                   _mm256_fmadd_ps(n, _mm256_set1_ps(-0.693145751953125f), xc));
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), _mm256_set1_ps(1.0f));
  const __m256i bits = _mm256_slli_epi32(_mm256_cvttps_epi32(_mm256_add_ps(n, _mm256_set1_ps(127.0f))), 23);
  __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
  y = _mm256_blendv_ps(y, _mm256_set1_ps(std::numeric_limits<float>::infinity()), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
  y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

// As the AVX-512 one: `omp simd` left the double sum (and so the whole loop) scalar, a fifth of a decode step's
// time at depth 4096 on an AVX2 host. The sum is in 8 double lanes (4 per half), then pairwise.
double exp_shifted_sum(const float* x, float m, float* out, int64_t n) {
  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
  const __m256 shift = _mm256_set1_ps(m);
  auto add = [&](__m256 e) {
    lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  };
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), shift));
    _mm256_storeu_ps(out + i, e);
    add(e);
  }
  if (i < n) {  // the tail masked (a masked store costs about 14 cycles on Zen 3: not in the loop)
    const __m256i in = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n - i)),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_maskload_ps(x + i, in), shift)), _mm256_castsi256_ps(in));
    _mm256_maskstore_ps(out + i, in, e);
    add(e);
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, _mm256_add_pd(lo, hi));
  return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}
#else
double exp_shifted_sum(const float* x, float m, float* out, int64_t n) {
  double total = 0.0;
  BITNET_SIMD_SUM(total) for (int64_t i = 0; i < n; ++i) {
    out[i] = exp_f(x[i] - m);
    total += static_cast<double>(out[i]);
  }
  return total;
}
#endif

void scale_add(float* y, float a, const float* x, float b, int64_t n) {
  BITNET_SIMD for (int64_t i = 0; i < n; ++i) y[i] = y[i] * a + x[i] * b;
}

void softmax_row(const float* x, float* out, int64_t n) {
  const float m = extreme<true>(x, n);
  const double total = exp_shifted_sum(x, m, out, n);
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

// --- attention's two products over cached rows ---------------------------------------------------------------
// dot_rows: lane l of 16 accumulates fma(row[i], x[i], acc) over i = l (mod 16) in order, from 0; then the lanes
// are added pairwise (l + 8, + 4, + 2, + 1). axpy_rows: y[i] = fma(a[j], row_j[i], y[i]) for j in order. Every
// variant computes exactly this (the x86 ones with intrinsics that keep the accumulators in registers), so they
// agree bit for bit, and a row's score or a pair's sum does not depend on how many queries share the call.
constexpr int64_t kDotLanes = 16;
constexpr int64_t kMaxQueries = 4;  // queries (or outputs) per pass over the rows

// Rows are read through two kinds of handle: f32 or f16 pointers. row_at(rows, j, stride) is row j (stride in
// elements); row + i moves along the row; value_at(row, i) is element i as f32. f16 converts exactly, so both
// kinds give the products of the converted rows.
template <class T>
const T* row_at(const T* rows, int64_t j, int64_t stride) { return rows + j * stride; }
inline float value_at(const float* r, int64_t i) { return r[i]; }
inline float value_at(const uint16_t* r, int64_t i) { return f16_to_f32(r[i]); }
// W values of a row from r on as f32, into out, the lanes below `lanes` only (the rest 0): the fallback when a
// vector load does not fit (a tail).
template <int W, class R>
void values_into(R r, int64_t lanes, float* out) {
  for (int l = 0; l < W; ++l) out[l] = l < lanes ? value_at(r, l) : 0.0f;
}

inline float lane_tree(float* a) {
  for (int64_t l = 0; l < 8; ++l) a[l] += a[l + 8];
  for (int64_t l = 0; l < 4; ++l) a[l] += a[l + 4];
  a[0] += a[2];
  a[1] += a[3];
  return a[0] + a[1];
}

#if defined(__AVX512F__)
inline float lane_tree(__m512 v) {
  // Zero-masked extracts: GCC 12's plain extract (and the cast, built on it) warns of an uninitialized temporary.
  const __m256 low = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xff, _mm512_castps_pd(v), 0));
  const __m256 high = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xff, _mm512_castps_pd(v), 1));
  const __m256 v8 = _mm256_add_ps(low, high);
  const __m128 v4 = _mm_add_ps(_mm256_castps256_ps128(v8), _mm256_extractf128_ps(v8, 1));
  const __m128 v2 = _mm_add_ps(v4, _mm_movehl_ps(v4, v4));
  return _mm_cvtss_f32(_mm_add_ss(v2, _mm_shuffle_ps(v2, v2, 1)));
}
// 16 values of a row of f32 or f16 (converted exactly) as f32; the masked form reads only the lanes in m.
inline __m512 row16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 row16(const uint16_t* p) {
  // The zero-masked form: GCC 12's plain _mm512_cvtph_ps warns of an uninitialized temporary.
  return _mm512_maskz_cvtph_ps(0xffff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline __m512 row16(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
inline __m512 row16(const uint16_t* p, __mmask16 m) { return _mm512_maskz_cvtph_ps(m, _mm256_maskz_loadu_epi16(m, p)); }
template <int G, class R>
void dot_rows_pass(R rows, int64_t n_rows, int64_t stride, const float* x, int64_t n, float* out,
                   int64_t out_stride) {
  const int64_t full = n / kDotLanes * kDotLanes;
  const auto tail = static_cast<__mmask16>((1u << (n - full)) - 1u);
  for (int64_t j = 0; j < n_rows; ++j) {
    const auto row = row_at(rows, j, stride);
    __m512 acc[G];
    for (int q = 0; q < G; ++q) acc[q] = _mm512_setzero_ps();
    for (int64_t i = 0; i < full; i += kDotLanes) {
      const __m512 r = row16(row + i);
      for (int q = 0; q < G; ++q) acc[q] = _mm512_fmadd_ps(r, _mm512_loadu_ps(x + q * n + i), acc[q]);
    }
    if (tail != 0) {
      const __m512 r = row16(row + full, tail);
      for (int q = 0; q < G; ++q)
        acc[q] = _mm512_mask3_fmadd_ps(r, _mm512_maskz_loadu_ps(tail, x + q * n + full), acc[q], tail);
    }
    for (int q = 0; q < G; ++q) out[q * out_stride + j] = lane_tree(acc[q]);
  }
}
template <int G, class R>
void axpy_rows_pass(const float* a, int64_t a_stride, R rows, int64_t n_rows, int64_t stride, float* y,
                    int64_t n) {
  constexpr int64_t kStrip = 4 * kDotLanes;
  int64_t i = 0;
  for (; i + kStrip <= n; i += kStrip) {
    __m512 acc[G][4];
    for (int q = 0; q < G; ++q)
      for (int k = 0; k < 4; ++k) acc[q][k] = _mm512_loadu_ps(y + q * n + i + k * kDotLanes);
    for (int64_t j = 0; j < n_rows; ++j) {
      __m512 r[4];
      for (int k = 0; k < 4; ++k) r[k] = row16(row_at(rows, j, stride) + (i + k * kDotLanes));
      for (int q = 0; q < G; ++q) {
        const __m512 w = _mm512_set1_ps(a[q * a_stride + j]);
        for (int k = 0; k < 4; ++k) acc[q][k] = _mm512_fmadd_ps(w, r[k], acc[q][k]);
      }
    }
    for (int q = 0; q < G; ++q)
      for (int k = 0; k < 4; ++k) _mm512_storeu_ps(y + q * n + i + k * kDotLanes, acc[q][k]);
  }
  for (; i < n; i += kDotLanes) {  // 16 (or fewer) at a time
    const auto m = static_cast<__mmask16>(n - i >= kDotLanes ? 0xffffu : (1u << (n - i)) - 1u);
    __m512 acc[G];
    for (int q = 0; q < G; ++q) acc[q] = _mm512_maskz_loadu_ps(m, y + q * n + i);
    for (int64_t j = 0; j < n_rows; ++j) {
      const __m512 r = row16(row_at(rows, j, stride) + i, m);
      for (int q = 0; q < G; ++q) acc[q] = _mm512_fmadd_ps(_mm512_set1_ps(a[q * a_stride + j]), r, acc[q]);
    }
    for (int q = 0; q < G; ++q) _mm512_mask_storeu_ps(y + q * n + i, m, acc[q]);
  }
}
#elif defined(__AVX2__) && defined(__FMA__)
// 16 lanes as two halves: lanes 0-7 and 8-15.
inline float lane_tree(__m256 lo, __m256 hi) {
  const __m256 v8 = _mm256_add_ps(lo, hi);
  const __m128 v4 = _mm_add_ps(_mm256_castps256_ps128(v8), _mm256_extractf128_ps(v8, 1));
  const __m128 v2 = _mm_add_ps(v4, _mm_movehl_ps(v4, v4));
  return _mm_cvtss_f32(_mm_add_ss(v2, _mm_shuffle_ps(v2, v2, 1)));
}
// Lanes [0, k) set: masked loads read zeros elsewhere, and blending keeps the other lanes' sums as they were.
inline __m256i lanes_below(int64_t k) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(k)), idx);
}
// 8 values of a row of f32 or f16 (converted exactly) as f32; the masked form reads only the lanes in m.
inline __m256 row8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 row8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
// The masked forms: m sets the lowest lanes (lanes_below).
inline __m256 row8(const float* p, __m256i m) { return _mm256_maskload_ps(p, m); }
template <class R>
__m256 row8(R p, __m256i m) {
  alignas(32) int32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), m);
  int64_t k = 0;
  while (k < 8 && lanes[k] != 0) ++k;
  alignas(32) float v[8];
  values_into<8>(p, k, v);
  return _mm256_load_ps(v);
}
template <int G, class R>
void dot_rows_pass(R rows, int64_t n_rows, int64_t stride, const float* x, int64_t n, float* out,
                   int64_t out_stride) {
  const int64_t full = n / kDotLanes * kDotLanes, rest = n - full;
  const __m256i m_lo = lanes_below(rest), m_hi = lanes_below(rest - 8);
  for (int64_t j = 0; j < n_rows; ++j) {
    const auto row = row_at(rows, j, stride);
    __m256 lo[G], hi[G];
    for (int q = 0; q < G; ++q) lo[q] = hi[q] = _mm256_setzero_ps();
    for (int64_t i = 0; i < full; i += kDotLanes) {
      const __m256 r0 = row8(row + i), r1 = row8(row + i + 8);
      for (int q = 0; q < G; ++q) {
        lo[q] = _mm256_fmadd_ps(r0, _mm256_loadu_ps(x + q * n + i), lo[q]);
        hi[q] = _mm256_fmadd_ps(r1, _mm256_loadu_ps(x + q * n + i + 8), hi[q]);
      }
    }
    if (rest != 0) {
      const __m256 r0 = row8(row + full, m_lo), r1 = row8(row + full + 8, m_hi);
      for (int q = 0; q < G; ++q) {
        const __m256 f0 = _mm256_fmadd_ps(r0, _mm256_maskload_ps(x + q * n + full, m_lo), lo[q]);
        const __m256 f1 = _mm256_fmadd_ps(r1, _mm256_maskload_ps(x + q * n + full + 8, m_hi), hi[q]);
        lo[q] = _mm256_blendv_ps(lo[q], f0, _mm256_castsi256_ps(m_lo));
        hi[q] = _mm256_blendv_ps(hi[q], f1, _mm256_castsi256_ps(m_hi));
      }
    }
    for (int q = 0; q < G; ++q) out[q * out_stride + j] = lane_tree(lo[q], hi[q]);
  }
}
template <int G, class R>
void axpy_rows_pass(const float* a, int64_t a_stride, R rows, int64_t n_rows, int64_t stride, float* y,
                    int64_t n) {
  constexpr int64_t kStrip = 32;
  int64_t i = 0;
  for (; i + kStrip <= n; i += kStrip) {
    __m256 acc[G][4];
    for (int q = 0; q < G; ++q)
      for (int k = 0; k < 4; ++k) acc[q][k] = _mm256_loadu_ps(y + q * n + i + k * 8);
    for (int64_t j = 0; j < n_rows; ++j) {
      __m256 r[4];
      for (int k = 0; k < 4; ++k) r[k] = row8(row_at(rows, j, stride) + (i + k * 8));
      for (int q = 0; q < G; ++q) {
        const __m256 w = _mm256_set1_ps(a[q * a_stride + j]);
        for (int k = 0; k < 4; ++k) acc[q][k] = _mm256_fmadd_ps(w, r[k], acc[q][k]);
      }
    }
    for (int q = 0; q < G; ++q)
      for (int k = 0; k < 4; ++k) _mm256_storeu_ps(y + q * n + i + k * 8, acc[q][k]);
  }
  for (; i < n; ++i)
    for (int q = 0; q < G; ++q) {
      float acc = y[q * n + i];
      for (int64_t j = 0; j < n_rows; ++j) acc = std::fma(a[q * a_stride + j], value_at(row_at(rows, j, stride), i), acc);
      y[q * n + i] = acc;
    }
}
#else
template <int G, class R>
void dot_rows_pass(R rows, int64_t n_rows, int64_t stride, const float* x, int64_t n, float* out,
                   int64_t out_stride) {
  for (int64_t j = 0; j < n_rows; ++j) {
    const auto row = row_at(rows, j, stride);
    for (int q = 0; q < G; ++q) {
      const float* xq = x + q * n;
      float acc[kDotLanes] = {};
      int64_t i = 0;
      for (; i + kDotLanes <= n; i += kDotLanes)
        BITNET_SIMD for (int64_t l = 0; l < kDotLanes; ++l) acc[l] = std::fma(value_at(row, i + l), xq[i + l], acc[l]);
      for (int64_t l = 0; i + l < n; ++l) acc[l] = std::fma(value_at(row, i + l), xq[i + l], acc[l]);
      out[q * out_stride + j] = lane_tree(acc);
    }
  }
}
template <int G, class R>
void axpy_rows_pass(const float* a, int64_t a_stride, R rows, int64_t n_rows, int64_t stride, float* y,
                    int64_t n) {
  for (int q = 0; q < G; ++q)
    for (int64_t j = 0; j < n_rows; ++j) {
      const float aj = a[q * a_stride + j];
      const auto row = row_at(rows, j, stride);
      float* yq = y + q * n;
      BITNET_SIMD for (int64_t i = 0; i < n; ++i) yq[i] = std::fma(aj, value_at(row, i), yq[i]);
    }
}
#endif

// g queries at a time, at most kMaxQueries per pass over the rows: pass.template operator()<k>(q0) runs queries
// [q0, q0 + k) with k a compile-time count (the accumulators stay in registers).
template <class Pass>
void by_passes(int64_t g, Pass&& pass) {
  for (int64_t q0 = 0; q0 < g; q0 += kMaxQueries) {
    switch (std::min(kMaxQueries, g - q0)) {
      case 1: pass.template operator()<1>(q0); break;
      case 2: pass.template operator()<2>(q0); break;
      case 3: pass.template operator()<3>(q0); break;
      default: pass.template operator()<4>(q0); break;
    }
  }
}
template <class R>
void dot_rows(R rows, int64_t n_rows, int64_t stride, const float* x, int64_t g, int64_t n, float* out,
              int64_t out_stride) {
  by_passes(g, [&]<int G>(int64_t q0) {
    dot_rows_pass<G, R>(rows, n_rows, stride, x + q0 * n, n, out + q0 * out_stride, out_stride);
  });
}
template <class R>
void axpy_rows(const float* a, int64_t a_stride, R rows, int64_t n_rows, int64_t stride, float* y,
               int64_t g, int64_t n) {
  by_passes(g, [&]<int G>(int64_t q0) {
    axpy_rows_pass<G, R>(a + q0 * a_stride, a_stride, rows, n_rows, stride, y + q0 * n, n);
  });
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
  for (int64_t i = first; i < first + n;) {
    const uint8_t* block = blocks + i / kQ8Block * kQ8BlockBytes;
    const int64_t j0 = i % kQ8Block, len = std::min(kQ8Block - j0, first + n - i);
    const auto bits = static_cast<uint16_t>(block[0] | (block[1] << 8));
#if defined(__F16C__)
    const float d = _cvtsh_ss(bits);
#else
    const float d = f16_to_f32(bits);
#endif
    const auto* q = reinterpret_cast<const int8_t*>(block + 2) + j0;
    float* o = out + (i - first);
    if (len == kQ8Block) {
      BITNET_SIMD for (int64_t j = 0; j < kQ8Block; ++j) o[j] = static_cast<float>(q[j]) * d;
    } else {
      for (int64_t j = 0; j < len; ++j) o[j] = static_cast<float>(q[j]) * d;
    }
    i += len;
  }
}
void f16_rows_to_f32(const uint8_t* rows, int64_t n_rows, int64_t row_bytes, int64_t first, int64_t n, float* out) {
  for (int64_t j = 0; j < n_rows; ++j)
    f16_to_f32_row(reinterpret_cast<const uint16_t*>(rows + j * row_bytes) + first, out + j * n, n);
}
void q8_0_rows_to_f32(const uint8_t* rows, int64_t n_rows, int64_t row_bytes, int64_t first, int64_t n, float* out) {
  for (int64_t j = 0; j < n_rows; ++j) q8_0_to_f32_row(rows + j * row_bytes, first, n, out + j * n);
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
    exp_shifted_sum,
    scale_add,
    softmax_row,
    log_softmax_row,
    rms_norm_row,
    dot_rows<const float*>,
    axpy_rows<const float*>,
    dot_rows<const uint16_t*>,
    axpy_rows<const uint16_t*>,
    f32_to_f16_row,
    f16_to_f32_row,
    f32_to_bf16_row,
    bf16_to_f32_row,
    f16_rows_to_f32,
    q8_0_rows_to_f32,
};

}  // namespace bitnet::kernels::BITNET_VARIANT

#undef BITNET_PRAGMA
#undef BITNET_SIMD
#undef BITNET_SIMD_SUM
