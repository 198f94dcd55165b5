// Per-token int8 activation quantization (BitNet b1.58 absmax), plain and fused with RMSNorm.
#include <bitnet/error.h>
#include <bitnet/quant.h>

#include <cmath>
#include <cstring>

#include "kernels/act_quant.h"
#include "kernels/ternary.h"

namespace bitnet {

void QuantizedActivations::resize(int64_t tokens, int64_t k) {
  BITNET_CHECK(tokens >= 0 && k > 0 && k <= kernels::kMaxTernaryK,
               "[quantize_activations] need tokens >= 0 and 0 < k <= {}, got tokens={} k={}", kernels::kMaxTernaryK,
               tokens, k);
  tokens_ = tokens;
  k_ = k;
  k_pad_ = (k + kernels::kTernaryBlock - 1) / kernels::kTernaryBlock * kernels::kTernaryBlock;
  const auto need = static_cast<size_t>(tokens * k_pad_);
  if (q_.size() < need) q_.resize(need);
  if (dequant_.size() < static_cast<size_t>(tokens)) {
    dequant_.resize(static_cast<size_t>(tokens));
    sums_.resize(static_cast<size_t>(tokens));
  }
}

namespace {
// 127 / max(max|x|, 1e-5), and the dequant factor stored beside it (its reciprocal, as the reference divides).
float act_scale(float absmax) { return 127.0f / std::max(absmax, kernels::kActQuantMaxFloor); }

void finish_row(QuantizedActivations& out, int64_t t, float s, int32_t sum) {
  std::memset(out.row(t) + out.k(), 0, static_cast<size_t>(out.k_pad() - out.k()));
  out.dequant()[t] = 1.0f / s;
  out.sums()[t] = sum;
}
}  // namespace

namespace {

// Runs fn(t0, t1) over the tokens, on the pool when there is one and more than one token.
template <typename F>
void over_tokens(int64_t tokens, ThreadPool* pool, F&& fn) {
  if (pool != nullptr && tokens > 1) {
    pool->parallel_for(tokens, fn);
  } else {
    fn(0, tokens);
  }
}

}  // namespace

void quantize_activations(const float* x, int64_t tokens, int64_t k, int64_t x_stride, QuantizedActivations& out,
                          ThreadPool* pool, float* scales) {
  out.resize(tokens, k);
  const auto& kq = kernels::act_quant_family().get();
  over_tokens(tokens, pool, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* row = x + t * x_stride;
      const float s = act_scale(kq.absmax(row, k));
      if (scales != nullptr) scales[t] = s;
      finish_row(out, t, s, kq.quantize(row, k, s, out.row(t)));
    }
  });
}

void rms_norm_quantize_activations(const float* x, const float* g, float eps, int64_t tokens, int64_t k,
                                   int64_t x_stride, QuantizedActivations& out, ThreadPool* pool) {
  BITNET_CHECK(eps >= 0.0f, "[rms_norm_quantize] eps must be non-negative, got {}", eps);
  out.resize(tokens, k);
  const auto& kq = kernels::act_quant_family().get();
  over_tokens(tokens, pool, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* row = x + t * x_stride;
      const double mean_sq = kq.sum_squares(row, k) / static_cast<double>(k);
      const auto inv = static_cast<float>(1.0 / std::sqrt(mean_sq + static_cast<double>(eps)));
      const float s = act_scale(kq.absmax_normed(row, g, inv, k));
      finish_row(out, t, s, kq.quantize_normed(row, g, inv, k, s, out.row(t)));
    }
  });
}

}  // namespace bitnet
