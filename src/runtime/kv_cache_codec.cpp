// The KV cache's row formats (kv_cache_codec.h).
#include "runtime/kv_cache_codec.h"

#include <bitnet/dtype.h>
#include <bitnet/error.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/attention_q8.h"
#include "kernels/vector.h"

namespace bitnet {

std::string_view kv_cache_type_name(KvCacheType t) { return t == KvCacheType::q8_0 ? "q8_0" : "f16"; }

KvCacheType parse_kv_cache_type(std::string_view name) {
  if (name == "f16") return KvCacheType::f16;
  if (name == "q8_0") return KvCacheType::q8_0;
  fail("[engine] KV cache type '{}' is not supported (accepted: f16, q8_0)", name);
}

int64_t kv_cache_row_bytes(KvCacheType type, int64_t kv_heads, int64_t head_dim) {
  return kv_heads * detail::kv_values_bytes(type, head_dim);
}

namespace detail {

int64_t kv_values_bytes(KvCacheType type, int64_t n) {
  return type == KvCacheType::q8_0 ? (n + kQ8Block - 1) / kQ8Block * kQ8BlockBytes : n * 2;
}

void kv_encode(KvCacheType type, const float* x, int64_t n, uint8_t* row) {
  if (type == KvCacheType::f16) {
    kernels::vector_kernels().f32_to_f16(x, reinterpret_cast<uint16_t*>(row), n);
    return;
  }
  for (int64_t b = 0; b < n; b += kQ8Block, row += kQ8BlockBytes) {
    const int64_t len = std::min(kQ8Block, n - b);
    // A NaN or infinite value (a broken model) is stored as 0 and left out of the scale: converting it to int8
    // would be undefined.
    float amax = 0.0f;
    for (int64_t j = 0; j < len; ++j)
      if (std::isfinite(x[b + j])) amax = std::max(amax, std::fabs(x[b + j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t dh = f32_to_f16(d);
    std::memcpy(row, &dh, 2);
    auto* q = reinterpret_cast<int8_t*>(row + 2);
    for (int64_t j = 0; j < len; ++j)
      q[j] = std::isfinite(x[b + j]) ? static_cast<int8_t>(std::round(x[b + j] * id)) : int8_t{0};
    for (int64_t j = len; j < kQ8Block; ++j) q[j] = 0;
  }
}

namespace {
// A tiled plane's row put and get (kernels/attention_q8.h), and the bytes of one segment of its tile.
struct TileAccess {
  void (*put)(const uint8_t* row, int64_t head_dim, uint8_t* tile, int64_t lane);
  void (*get)(const uint8_t* tile, int64_t lane, int64_t head_dim, uint8_t* row);
  int64_t segment_bytes;
};
TileAccess tile_access(KvForm form) {
  if (form == KvForm::key_tiles)
    return {kernels::q8_key_tile_put, kernels::q8_key_tile_get, kernels::kQ8KeyTileSegmentBytes};
  return {kernels::q8_value_tile_put, kernels::q8_value_tile_get, kernels::kQ8ValueTileSegmentBytes};
}
}  // namespace

// A tiled plane's position goes through one q8_0 block at a time (no scratch to allocate on the decode path).
void kv_encode_at(const KvPlane& plane, const float* x, uint8_t* base, int64_t pos) {
  uint8_t* at = base + plane.offset(pos);
  if (plane.form == KvForm::rows) {
    kv_encode(plane.type, x, plane.head_dim, at);
    return;
  }
  const TileAccess tiles = tile_access(plane.form);
  const int64_t lane = pos % plane.tile_rows();
  for (int64_t s = 0; s < kernels::q8_segments(plane.head_dim); ++s) {
    uint8_t block[kQ8BlockBytes];
    kv_encode(KvCacheType::q8_0, x + s * kQ8Block, kernels::q8_segment_length(plane.head_dim, s), block);
    tiles.put(block, kQ8Block, at + s * tiles.segment_bytes, lane);
  }
}

void kv_decode_at(const KvPlane& plane, const uint8_t* base, int64_t pos, float* x) {
  const uint8_t* at = base + plane.offset(pos);
  if (plane.form == KvForm::rows) {
    kv_decode(plane.type, at, 0, plane.head_dim, x);
    return;
  }
  const TileAccess tiles = tile_access(plane.form);
  const int64_t lane = pos % plane.tile_rows();
  for (int64_t s = 0; s < kernels::q8_segments(plane.head_dim); ++s) {
    uint8_t block[kQ8BlockBytes];
    tiles.get(at + s * tiles.segment_bytes, lane, kQ8Block, block);
    kv_decode(KvCacheType::q8_0, block, 0, kernels::q8_segment_length(plane.head_dim, s), x + s * kQ8Block);
  }
}

void kv_get_row(const KvPlane& plane, const uint8_t* base, int64_t pos, uint8_t* row) {
  const uint8_t* at = base + plane.offset(pos);
  if (plane.form == KvForm::rows) std::memcpy(row, at, static_cast<size_t>(plane.row_bytes()));
  else tile_access(plane.form).get(at, pos % plane.tile_rows(), plane.head_dim, row);
}

void kv_put_row(const KvPlane& plane, const uint8_t* row, uint8_t* base, int64_t pos) {
  uint8_t* at = base + plane.offset(pos);
  if (plane.form == KvForm::rows) std::memcpy(at, row, static_cast<size_t>(plane.row_bytes()));
  else tile_access(plane.form).put(row, plane.head_dim, at, pos % plane.tile_rows());
}

void kv_decode_rows(KvCacheType type, const uint8_t* rows, int64_t n_rows, int64_t row_bytes, int64_t first,
                    int64_t n, float* out) {
  const kernels::VectorKernels& k = kernels::vector_kernels();
  (type == KvCacheType::f16 ? k.f16_rows_to_f32 : k.q8_0_rows_to_f32)(rows, n_rows, row_bytes, first, n, out);
}

}  // namespace detail
}  // namespace bitnet
