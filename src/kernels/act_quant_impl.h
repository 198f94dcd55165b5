// Internal: the body of the activation-quantization family, included once per ISA file with BITNET_VARIANT
// (namespace) and BITNET_ACT_SIMD (0 for the scalar reference, 1 for `omp simd` loops the compiler vectorizes
// for the file's flags). No include guard on purpose.
#include <cmath>
#include <cstdint>

#include "kernels/act_quant.h"

#if BITNET_ACT_SIMD
#define BITNET_PRAGMA(x) _Pragma(#x)
#define BITNET_SIMD_REDUCE(op, v) BITNET_PRAGMA(omp simd reduction(op : v))
#define BITNET_SIMD _Pragma("omp simd")
#else
#define BITNET_SIMD_REDUCE(op, v)
#define BITNET_SIMD
#endif

namespace bitnet::kernels::BITNET_VARIANT {
namespace {

inline float quant_value(float v) {
  const float r = std::nearbyint(v);  // round half to even (the default rounding mode), like torch.round
  return r < -128.0f ? -128.0f : (r > 127.0f ? 127.0f : r);
}

float absmax(const float* x, int64_t n) {
  float m = 0.0f;
  BITNET_SIMD_REDUCE(max, m) for (int64_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    m = a > m ? a : m;
  }
  return m;
}

int32_t quantize(const float* x, int64_t n, float s, int8_t* q) {
  int32_t total = 0;
  BITNET_SIMD_REDUCE(+, total) for (int64_t i = 0; i < n; ++i) {
    const auto v = static_cast<int32_t>(quant_value(x[i] * s));
    q[i] = static_cast<int8_t>(v);
    total += v;
  }
  return total;
}

// 16 partial sums: lane l takes elements l, l+16, l+32, ...; combined pairwise in a fixed order.
double sum_squares(const float* x, int64_t n) {
  double part[16] = {};
  const int64_t full = n / 16 * 16;
  for (int64_t i = 0; i < full; i += 16) {
    BITNET_SIMD for (int l = 0; l < 16; ++l) {
      const double v = x[i + l];
      part[l] += v * v;
    }
  }
  for (int64_t i = full; i < n; ++i) {
    const double v = x[i];
    part[i - full] += v * v;
  }
  for (int width = 8; width >= 1; width /= 2)
    for (int l = 0; l < width; ++l) part[l] += part[l + width];
  return part[0];
}

float absmax_normed(const float* x, const float* g, float inv, int64_t n) {
  float m = 0.0f;
  BITNET_SIMD_REDUCE(max, m) for (int64_t i = 0; i < n; ++i) {
    const float a = std::fabs((x[i] * inv) * g[i]);
    m = a > m ? a : m;
  }
  return m;
}

int32_t quantize_normed(const float* x, const float* g, float inv, int64_t n, float s, int8_t* q) {
  int32_t total = 0;
  BITNET_SIMD_REDUCE(+, total) for (int64_t i = 0; i < n; ++i) {
    const auto v = static_cast<int32_t>(quant_value(((x[i] * inv) * g[i]) * s));
    q[i] = static_cast<int8_t>(v);
    total += v;
  }
  return total;
}

}  // namespace

extern const ActQuantKernels kActQuantKernels;
const ActQuantKernels kActQuantKernels = {absmax, quantize, sum_squares, absmax_normed, quantize_normed};

}  // namespace bitnet::kernels::BITNET_VARIANT

#undef BITNET_SIMD_REDUCE
#undef BITNET_SIMD
#ifdef BITNET_PRAGMA
#undef BITNET_PRAGMA
#endif
