// The attention_q8 kernels (kernels/attention_q8.h): the span's segments, the query rounding, the key and value
// tiles, every variant bit for bit against the reference on awkward sizes (heads that end mid-block, rows not a
// multiple of 16 or 32, stale rows in the last tile, query counts not a multiple of 4), the reference against float
// math on the dequantized values, and a value that is not finite showing in the output.
#include <bitnet/cpu.h>
#include <bitnet/dtype.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/attention_q8.h"
#include "test_util.h"

namespace bitnet {
namespace {

using kernels::kQ8Block;
using kernels::kQ8BlockBytes;
using kernels::Q8Span;

// Rows of q8_0 blocks covering `values` values: random codes in [-127, 127], random scales in [2^-10, 2^-5).
struct Q8Rows {
  int64_t n_rows, values, row_bytes;
  std::vector<uint8_t> bytes;
  Q8Rows(int64_t rows, int64_t vals, std::mt19937& rng)
      : n_rows(rows), values(vals), row_bytes((vals + kQ8Block - 1) / kQ8Block * kQ8BlockBytes),
        bytes(static_cast<size_t>(rows * row_bytes)) {
    std::uniform_int_distribution<int> code(-127, 127);
    std::uniform_real_distribution<float> exponent(-10.0f, -5.0f);
    for (auto& b : bytes) b = static_cast<uint8_t>(code(rng));
    for (int64_t j = 0; j < rows; ++j)
      for (int64_t b = 0; b < row_bytes / kQ8BlockBytes; ++b) {
        const uint16_t half = f32_to_f16(std::exp2(exponent(rng)));
        std::memcpy(bytes.data() + j * row_bytes + b * kQ8BlockBytes, &half, 2);
      }
  }
  // Value i of row j: its block's scale, its code, and their product.
  float scale(int64_t j, int64_t i) const {
    uint16_t half;
    std::memcpy(&half, bytes.data() + j * row_bytes + i / kQ8Block * kQ8BlockBytes, 2);
    return f16_to_f32(half);
  }
  int code(int64_t j, int64_t i) const {
    const uint8_t* block = bytes.data() + j * row_bytes + i / kQ8Block * kQ8BlockBytes;
    return reinterpret_cast<const int8_t*>(block + 2)[i % kQ8Block];
  }
  float value(int64_t j, int64_t i) const { return static_cast<float>(code(j, i)) * scale(j, i); }
};

struct Rounded {
  std::vector<int8_t> codes;
  std::vector<float> scales;
  std::vector<int32_t> sums;
  Rounded(const std::vector<float>& x, int64_t g, Q8Span span, float score_scale)
      : codes(static_cast<size_t>(g * span.segments() * kQ8Block)), scales(static_cast<size_t>(g * span.segments())),
        sums(scales.size()) {
    kernels::quantize_queries(x.data(), g, span, score_scale, view());
  }
  kernels::Q8Queries view() { return {codes.data(), scales.data(), sums.data()}; }
};

std::vector<float> uniform(size_t n, float lo, float hi, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

bool same_bits(float a, float b) {
  return std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b) || (a != a && b != b);
}

// Spans (first, n) of rows of `values` values: whole blocks, heads that begin and end mid-block, short heads.
struct SpanCase {
  int64_t first, n, values;
};
const SpanCase kSpans[] = {{256, 128, 640}, {0, 128, 128}, {48, 24, 96}, {100, 100, 400},
                           {5, 3, 40},      {30, 70, 100}, {64, 64, 128}};

TEST(AttentionQ8Span, SegmentsTileTheHeadOneBlockEach) {
  for (const SpanCase& c : kSpans) {
    const Q8Span span{c.first, c.n};
    int64_t covered = 0;
    for (int64_t s = 0; s < span.segments(); ++s) {
      EXPECT_EQ(span.start(s), covered) << c.first << "+" << c.n << " segment " << s;
      EXPECT_GT(span.length(s), 0);
      EXPECT_EQ(span.block(s), (c.first + span.start(s)) / kQ8Block);
      EXPECT_EQ(span.offset(s), (c.first + span.start(s)) % kQ8Block);
      EXPECT_LE(span.offset(s) + span.length(s), kQ8Block);
      covered += span.length(s);
    }
    EXPECT_EQ(covered, c.n);
  }
}

TEST(AttentionQ8Queries, RoundLikeTheCacheBlocksAndFoldTheScoreScale) {
  std::mt19937 rng(3);
  const Q8Span span{48, 24};  // segments of 16 and 8
  std::vector<float> x = uniform(2 * 24, -2.0f, 2.0f, rng);
  x[20] = 0.0f;
  Rounded r(x, 2, span, 0.25f);
  ASSERT_EQ(span.segments(), 2);
  for (int64_t q = 0; q < 2; ++q)
    for (int64_t s = 0; s < 2; ++s) {
      float amax = 0.0f;
      for (int64_t i = 0; i < span.length(s); ++i) amax = std::max(amax, std::fabs(x[q * 24 + span.start(s) + i]));
      const float e = amax / 127.0f;
      EXPECT_EQ(r.scales[q * 2 + s], e * 0.25f);
      int32_t sum = 0;
      for (int64_t i = 0; i < kQ8Block; ++i) {
        const int8_t want = i < span.length(s) ? static_cast<int8_t>(std::round(x[q * 24 + span.start(s) + i] / e)) : 0;
        EXPECT_NEAR(r.codes[(q * 2 + s) * kQ8Block + i], want, 1) << q << " " << s << " " << i;  // x / e vs x * (1 / e)
        sum += r.codes[(q * 2 + s) * kQ8Block + i];
      }
      EXPECT_EQ(r.sums[q * 2 + s], sum);
    }
  x[3] = std::numeric_limits<float>::infinity();
  Rounded bad(x, 2, span, 0.25f);
  EXPECT_TRUE(std::isnan(bad.scales[0]));
  EXPECT_FALSE(std::isnan(bad.scales[1]));
  for (int64_t i = 0; i < kQ8Block; ++i) EXPECT_EQ(bad.codes[i], 0);
}

TEST(AttentionQ8Queries, RoundHalfAwayFromZeroAsTheCache) {
  // max|x| = 127, so the scale is 1 and the codes are the values rounded: ties go away from zero.
  const std::vector<float> x = {127.0f, 2.5f, -3.5f, 0.5f, -0.5f, 1.49999988f, -1.49999988f, 0.49999997f,
                                -126.5f, 4.0f, -0.0f, 99.5f};
  const int8_t want[] = {127, 3, -4, 1, -1, 1, -1, 0, -127, 4, 0, 100};
  Rounded r(x, 1, Q8Span{0, static_cast<int64_t>(x.size())}, 1.0f);
  ASSERT_EQ(r.scales[0], 1.0f);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(r.codes[i], want[i]) << x[i];
}

// The two tile layouts (kernels/attention_q8.h): rows per tile, bytes per tile and per segment, the row put/get,
// and where the code of value i % 32 of row `lane` sits in its segment (after the scales, lane l's at 2 l).
struct TileLayout {
  const char* name;
  int64_t rows;
  int64_t (*tile_bytes)(int64_t head_dim);
  int64_t segment_bytes;
  void (*put)(const uint8_t* row, int64_t head_dim, uint8_t* tile, int64_t lane);
  void (*get)(const uint8_t* tile, int64_t lane, int64_t head_dim, uint8_t* row);
  int64_t (*code_byte)(int64_t lane, int64_t i);
};
// Keys: dword (i % 32) / 4 of the segment's codes holds the 16 rows' dwords in order.
const TileLayout kKeyTiles = {
    "key", kernels::kQ8KeyTileRows, kernels::q8_key_tile_bytes, kernels::kQ8KeyTileSegmentBytes,
    kernels::q8_key_tile_put, kernels::q8_key_tile_get,
    [](int64_t lane, int64_t i) { return kernels::kQ8KeyTileScaleBytes + (i % 32) / 4 * 64 + lane * 4 + i % 4; }};
// Values: the line of rows (lane & ~1, lane | 1), byte 2 (i % 32) + lane % 2.
const TileLayout kValueTiles = {
    "value", kernels::kQ8ValueTileRows, kernels::q8_value_tile_bytes, kernels::kQ8ValueTileSegmentBytes,
    kernels::q8_value_tile_put, kernels::q8_value_tile_get,
    [](int64_t lane, int64_t i) { return kernels::kQ8ValueTileScaleBytes + lane / 2 * 64 + 2 * (i % 32) + lane % 2; }};

// Rows of a head (from value 0) as tiles; the last tile's lanes past the rows hold random codes and NaN scales
// (stale positions), which the kernels must neither store nor mix into the others.
std::vector<uint8_t> as_tiles(const TileLayout& layout, const Q8Rows& rows, std::mt19937& rng) {
  const int64_t tiles = (rows.n_rows + layout.rows - 1) / layout.rows, tile_bytes = layout.tile_bytes(rows.values);
  std::vector<uint8_t> out(static_cast<size_t>(tiles * tile_bytes));
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : out) b = static_cast<uint8_t>(byte(rng));
  const uint16_t nan = 0x7e00;
  for (int64_t s = 0; s < kernels::q8_segments(rows.values); ++s)
    for (int64_t lane = 0; lane < layout.rows; ++lane)
      std::memcpy(out.data() + (tiles - 1) * tile_bytes + s * layout.segment_bytes + 2 * lane, &nan, 2);
  for (int64_t j = 0; j < rows.n_rows; ++j)
    layout.put(rows.bytes.data() + j * rows.row_bytes, rows.values, out.data() + j / layout.rows * tile_bytes,
               j % layout.rows);
  return out;
}

TEST(AttentionQ8Tiles, HoldTheRowsTransposedAndGiveThemBack) {
  std::mt19937 rng(4);
  for (const TileLayout& layout : {kKeyTiles, kValueTiles})
    for (int64_t values : {int64_t{24}, int64_t{100}, int64_t{128}}) {
      const Q8Rows rows(45, values, rng);
      const std::vector<uint8_t> tiles = as_tiles(layout, rows, rng);
      const int64_t tile_bytes = layout.tile_bytes(values);
      ASSERT_EQ(tile_bytes, layout.rows * rows.row_bytes) << layout.name;
      for (int64_t j = 0; j < rows.n_rows; ++j) {
        const uint8_t* tile = tiles.data() + j / layout.rows * tile_bytes;
        const int64_t lane = j % layout.rows;
        std::vector<uint8_t> back(static_cast<size_t>(rows.row_bytes));
        layout.get(tile, lane, values, back.data());
        ASSERT_EQ(0, std::memcmp(back.data(), rows.bytes.data() + j * rows.row_bytes, back.size()))
            << layout.name << " " << values << " " << j;
        // Value i's code sits in segment i / 32 at code_byte; its scale in the segment's scales.
        for (int64_t i = 0; i < values; ++i) {
          const uint8_t* seg = tile + i / 32 * layout.segment_bytes;
          ASSERT_EQ(static_cast<int8_t>(seg[layout.code_byte(lane, i)]), rows.code(j, i)) << layout.name;
          uint16_t half;
          std::memcpy(&half, seg + 2 * lane, 2);
          ASSERT_EQ(f16_to_f32(half), rows.scale(j, i)) << layout.name;
        }
      }
    }
}

class AttentionQ8Variant : public ::testing::TestWithParam<Isa> {};

// The variants run with a stream of lines to prefetch (kernels::PrefetchLines; here their own tiles again) and the
// reference without one: the same bits show that the hint changes nothing, and the stream must have been taken
// forward, never past its end.
kernels::PrefetchLines lines_of(const std::vector<uint8_t>& buffer) {
  const auto begin = reinterpret_cast<uintptr_t>(buffer.data());
  return {begin, begin + buffer.size()};
}
void expect_taken(const kernels::PrefetchLines& lines, const std::vector<uint8_t>& buffer) {
  const auto begin = reinterpret_cast<uintptr_t>(buffer.data());
  EXPECT_GT(lines.next, begin) << "no line taken";
  EXPECT_LT(lines.next, begin + buffer.size() + 64) << "taken past the end";
}

TEST_P(AttentionQ8Variant, ScoresMatchTheReferenceAndFloatMath) {
  const auto* variant = kernels::attention_q8_family().variant(GetParam());
  const auto* ref = kernels::attention_q8_family().variant(Isa::ref);
  if (variant == nullptr) GTEST_SKIP() << isa_name(GetParam()) << " is not runnable on this CPU";
  std::mt19937 rng(5);
  for (int64_t head_dim : {128, 24, 100, 3, 70, 64, 48})
    for (int64_t n_rows : {1, 5, 8, 16, 17, 32, 45})
      for (int64_t g : {1, 2, 3, 4, 5, 6}) {
        const Q8Rows rows(n_rows, head_dim, rng);
        const std::vector<uint8_t> tiles = as_tiles(kKeyTiles, rows, rng);
        const Q8Span span{0, head_dim};
        const std::vector<float> x = uniform(static_cast<size_t>(g * head_dim), -1.0f, 1.0f, rng);
        Rounded r(x, g, span, 0.125f);
        const int64_t stride = n_rows + 3;
        std::vector<float> want(static_cast<size_t>(g * stride), -7.0f), got = want;
        ref->scores(tiles.data(), n_rows, head_dim, r.view(), g, want.data(), stride, nullptr);
        kernels::PrefetchLines lines = lines_of(tiles);
        variant->scores(tiles.data(), n_rows, head_dim, r.view(), g, got.data(), stride, &lines);
        expect_taken(lines, tiles);
        for (int64_t q = 0; q < g; ++q)
          for (int64_t j = 0; j < stride; ++j) {
            const auto at = static_cast<size_t>(q * stride + j);
            ASSERT_TRUE(same_bits(got[at], want[at]))
                << "head " << head_dim << " rows " << n_rows << " g " << g << " q " << q << " j " << j;
            if (j >= n_rows) {
              ASSERT_EQ(want[at], -7.0f);  // untouched
              continue;
            }
            // The reference against the dequantized key and rounded query, in double.
            double dot = 0.0, mag = 0.0;
            for (int64_t s = 0; s < span.segments(); ++s)
              for (int64_t i = 0; i < span.length(s); ++i) {
                const double k = rows.value(j, span.start(s) + i);
                const double qv = static_cast<double>(r.codes[(q * span.segments() + s) * kQ8Block + i]) *
                                  r.scales[q * span.segments() + s];
                dot += k * qv;
                mag += std::fabs(k * qv);
              }
            ASSERT_NEAR(want[at], dot, 1e-6 * mag + 1e-30) << "head " << head_dim << " j " << j;
            // And against the unrounded query: within the query's rounding (half a step per value).
            double exact = 0.0, bound = 0.0;
            for (int64_t i = 0; i < head_dim; ++i) {
              const double k = rows.value(j, i);
              exact += k * x[static_cast<size_t>(q * head_dim + i)] * 0.125;
              bound += std::fabs(k) * 0.125 * (1.0 / 254.0);
            }
            ASSERT_NEAR(want[at], exact, bound + 1e-6 * mag);
          }
      }
}

TEST_P(AttentionQ8Variant, WeightedSumMatchesTheReferenceAndFloatMath) {
  const auto* variant = kernels::attention_q8_family().variant(GetParam());
  const auto* ref = kernels::attention_q8_family().variant(Isa::ref);
  if (variant == nullptr) GTEST_SKIP() << isa_name(GetParam()) << " is not runnable on this CPU";
  std::mt19937 rng(9);
  for (int64_t head_dim : {128, 24, 100, 3, 70, 64, 48})
    for (int64_t n_rows : {1, 5, 17, 32, 45, 128})
      for (int64_t g : {1, 2, 3, 4, 5, 6}) {
        const Q8Rows rows(n_rows, head_dim, rng);
        const std::vector<uint8_t> tiles = as_tiles(kValueTiles, rows, rng);
        const int64_t a_stride = n_rows + 2;
        std::vector<float> a = uniform(static_cast<size_t>(g * a_stride), 0.0f, 1.0f, rng);
        a[0] = 0.0f;
        if (g > 1) std::fill(a.begin() + a_stride, a.begin() + 2 * a_stride, 0.0f);  // an all-zero query
        const std::vector<float> y0 = uniform(static_cast<size_t>(g * head_dim), -1.0f, 1.0f, rng);
        std::vector<float> want = y0, got = y0;
        ref->weighted_sum(a.data(), a_stride, tiles.data(), n_rows, head_dim, want.data(), g, nullptr);
        kernels::PrefetchLines lines = lines_of(tiles);
        variant->weighted_sum(a.data(), a_stride, tiles.data(), n_rows, head_dim, got.data(), g, &lines);
        expect_taken(lines, tiles);
        for (int64_t q = 0; q < g; ++q)
          for (int64_t i = 0; i < head_dim; ++i) {
            const auto at = static_cast<size_t>(q * head_dim + i);
            ASSERT_TRUE(same_bits(got[at], want[at]))
                << "head " << head_dim << " rows " << n_rows << " g " << g << " q " << q << " i " << i;
            // 15-bit weights per group of 32 rows: each weight a_j x d_j is off by at most half a step of the
            // group's largest, which the value's code multiplies.
            double sum = y0[at], bound = 0.0;
            for (int64_t j0 = 0; j0 < n_rows; j0 += kernels::kQ8SumRows) {
              const int64_t j1 = std::min(n_rows, j0 + kernels::kQ8SumRows);
              double top = 0.0, codes = 0.0;
              for (int64_t j = j0; j < j1; ++j) {
                const double w = static_cast<double>(a[static_cast<size_t>(q * a_stride + j)]);
                sum += w * rows.value(j, i);
                top = std::max(top, w * rows.scale(j, i));
                codes += std::abs(rows.code(j, i));
              }
              bound += 0.5 * top / 32767.0 * codes;
            }
            ASSERT_NEAR(want[at], sum, bound * 1.01 + 1e-6 * (1.0 + std::fabs(sum)))
                << "head " << head_dim << " q " << q;
          }
      }
}

TEST_P(AttentionQ8Variant, ANonFiniteInputShowsInTheOutput) {
  const auto* variant = kernels::attention_q8_family().variant(GetParam());
  if (variant == nullptr) GTEST_SKIP() << isa_name(GetParam()) << " is not runnable on this CPU";
  std::mt19937 rng(13);
  const Q8Rows rows(20, 128, rng);
  const Q8Span span{0, 128};
  std::vector<float> x = uniform(2 * 128, -1.0f, 1.0f, rng);
  x[40] = std::numeric_limits<float>::quiet_NaN();  // query 0, segment 1
  Rounded r(x, 2, span, 1.0f);
  std::vector<float> scores(2 * 20);
  const std::vector<uint8_t> tiles = as_tiles(kKeyTiles, rows, rng);
  variant->scores(tiles.data(), 20, 128, r.view(), 2, scores.data(), 20, nullptr);
  for (int64_t j = 0; j < 20; ++j) {
    EXPECT_TRUE(std::isnan(scores[static_cast<size_t>(j)])) << j;
    EXPECT_TRUE(std::isfinite(scores[static_cast<size_t>(20 + j)])) << j;
  }
  std::vector<float> a = uniform(2 * 20, 0.0f, 1.0f, rng);
  a[7] = std::numeric_limits<float>::infinity();  // query 0, first group
  std::vector<float> y(2 * 128, 0.0f);
  const std::vector<uint8_t> value_tiles = as_tiles(kValueTiles, rows, rng);
  variant->weighted_sum(a.data(), 20, value_tiles.data(), 20, 128, y.data(), 2, nullptr);
  for (int64_t i = 0; i < 128; ++i) {
    EXPECT_TRUE(std::isnan(y[static_cast<size_t>(i)])) << i;
    EXPECT_TRUE(std::isfinite(y[static_cast<size_t>(128 + i)])) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, AttentionQ8Variant, ::testing::Values(Isa::ref, Isa::avx2, Isa::avxvnni, Isa::avx512, Isa::neon),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

}  // namespace
}  // namespace bitnet
