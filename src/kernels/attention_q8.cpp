// The attention_q8 family's variant table, and the query quantizer every variant shares.
#include "kernels/attention_q8.h"

#include <bitnet/cpu.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace bitnet::kernels {

namespace ref { extern const AttentionQ8Kernels kAttentionQ8Kernels; }
#if defined(__x86_64__)
namespace avx2 { extern const AttentionQ8Kernels kAttentionQ8Kernels; }
namespace avx512 { extern const AttentionQ8Kernels kAttentionQ8Kernels; }
namespace avxvnni { extern const AttentionQ8Kernels kAttentionQ8Kernels; }
#endif
#if defined(__aarch64__)
namespace neon { extern const AttentionQ8Kernels kAttentionQ8Kernels; }
#endif

const Family<AttentionQ8Kernels>& attention_q8_family() {
  static const Family<AttentionQ8Kernels> family("attention_q8", {
      &ref::kAttentionQ8Kernels,
#if defined(__x86_64__)
      // The avx512 variant is the VNNI one; without VNNI the CPU gets the next variant down.
      &avx2::kAttentionQ8Kernels, cpu_features().avx512vnni ? &avx512::kAttentionQ8Kernels : nullptr, nullptr,
      &avxvnni::kAttentionQ8Kernels,
#elif defined(__aarch64__)
      // The neon variant's scores use sdot (the dot product extension).
      nullptr, nullptr, cpu_features().dotprod ? &neon::kAttentionQ8Kernels : nullptr,
#else
      nullptr, nullptr, nullptr,
#endif
  });
  return family;
}

void q8_key_tile_put(const uint8_t* row, int64_t head_dim, uint8_t* tile, int64_t lane) {
  for (int64_t s = 0; s < q8_segments(head_dim); ++s) {
    const uint8_t* block = row + s * kQ8BlockBytes;
    uint8_t* seg = tile + s * kQ8KeyTileSegmentBytes;
    std::memcpy(seg + 2 * lane, block, 2);
    for (int64_t k = 0; k < kQ8Block / 4; ++k)
      std::memcpy(seg + kQ8KeyTileScaleBytes + 64 * k + 4 * lane, block + 2 + 4 * k, 4);
  }
}

void q8_key_tile_get(const uint8_t* tile, int64_t lane, int64_t head_dim, uint8_t* row) {
  for (int64_t s = 0; s < q8_segments(head_dim); ++s) {
    uint8_t* block = row + s * kQ8BlockBytes;
    const uint8_t* seg = tile + s * kQ8KeyTileSegmentBytes;
    std::memcpy(block, seg + 2 * lane, 2);
    for (int64_t k = 0; k < kQ8Block / 4; ++k)
      std::memcpy(block + 2 + 4 * k, seg + kQ8KeyTileScaleBytes + 64 * k + 4 * lane, 4);
  }
}

void q8_value_tile_put(const uint8_t* row, int64_t head_dim, uint8_t* tile, int64_t lane) {
  for (int64_t s = 0; s < q8_segments(head_dim); ++s) {
    const uint8_t* block = row + s * kQ8BlockBytes;
    uint8_t* seg = tile + s * kQ8ValueTileSegmentBytes;
    std::memcpy(seg + 2 * lane, block, 2);
    uint8_t* line = seg + kQ8ValueTileScaleBytes + (lane / 2) * 64 + lane % 2;
    for (int64_t c = 0; c < kQ8Block; ++c) line[2 * c] = block[2 + c];
  }
}

void q8_value_tile_get(const uint8_t* tile, int64_t lane, int64_t head_dim, uint8_t* row) {
  for (int64_t s = 0; s < q8_segments(head_dim); ++s) {
    uint8_t* block = row + s * kQ8BlockBytes;
    const uint8_t* seg = tile + s * kQ8ValueTileSegmentBytes;
    std::memcpy(block, seg + 2 * lane, 2);
    const uint8_t* line = seg + kQ8ValueTileScaleBytes + (lane / 2) * 64 + lane % 2;
    for (int64_t c = 0; c < kQ8Block; ++c) block[2 + c] = line[2 * c];
  }
}

namespace {
// std::round (half away from zero) for |x| < 2^31, inline: libm's roundf is a call per value on baseline x86. The
// truncation and x - t are exact, so the tie test is too.
inline int32_t round_half_away(float x) {
  const auto t = static_cast<int32_t>(x);
  const float frac = x - static_cast<float>(t);
  return t + (frac >= 0.5f) - (frac <= -0.5f);
}
}  // namespace

void quantize_queries(const float* x, int64_t g, Q8Span span, float score_scale, const Q8Queries& out) {
  const int64_t segs = span.segments();
  for (int64_t q = 0; q < g; ++q)
    for (int64_t s = 0; s < segs; ++s) {
      const float* v = x + q * span.n + span.start(s);
      const int64_t len = span.length(s), at = q * segs + s;
      float amax = 0.0f;
      bool finite = true;
      for (int64_t i = 0; i < len; ++i) {
        if (std::isfinite(v[i])) amax = std::max(amax, std::fabs(v[i]));
        else finite = false;
      }
      // As the cache's blocks: e = max|x| / 127, codes round(x / e) (half away from zero), 0 for an all-zero
      // segment. A value that is not finite makes the segment's scale NaN, so every score it touches shows it.
      const float e = amax / 127.0f, inv = e != 0.0f ? 1.0f / e : 0.0f;
      int8_t* codes = out.codes + at * kQ8Block;
      int32_t sum = 0;
      for (int64_t i = 0; i < kQ8Block; ++i) {
        codes[i] = i < len && finite ? static_cast<int8_t>(round_half_away(v[i] * inv)) : int8_t{0};
        sum += codes[i];
      }
      out.scales[at] = finite ? e * score_scale : std::numeric_limits<float>::quiet_NaN();
      out.sums[at] = sum;
    }
}

}  // namespace bitnet::kernels
