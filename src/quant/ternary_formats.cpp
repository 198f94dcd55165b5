// File layouts of ternary weights <-> canonical int8 values + one f32 scale. Layout facts: formats.md §2.1
// (HF packed), §2.4 (TQ1_0 / TQ2_0, as in ggml-quants.c and gguf-py), §2.5 (I2_S, x86 128-element blocks).
#include <bitnet/dtype.h>
#include <bitnet/error.h>
#include <bitnet/ternary_formats.h>
#include <bitnet/thread_pool.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

namespace bitnet {

namespace {
constexpr int64_t kQK = 256;             // TQ block elements
constexpr int64_t kTq2Bytes = 66;        // qs[64], fp16 d
constexpr int64_t kTq1Bytes = 54;        // qs[48], qh[4], fp16 d
constexpr int64_t kI2Block = 128;        // x86 I2_S block (32 bytes)
constexpr int64_t kI2Tail = 32;          // f32 scale + 28 zero bytes

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
void store_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }

uint8_t code_of(int8_t v, int64_t i) {
  if (v < -1 || v > 1) fail("[ternary] value {} at element {} is not in {{-1, 0, +1}}", int(v), i);
  return static_cast<uint8_t>(v + 1);
}

// Codes (0..3, value = code - 1) and per-block scales of any layout; what strict and lenient readers share.
struct Codes {
  std::vector<uint8_t> code;
  std::vector<float> block_scale;  // TQ: per block; I2_S: one; hf_u8: none
};

// Blocks are independent, so the pool decodes them in parallel (a 2B4T model has 2 billion weights to load).
template <class F>
void for_each_block(int64_t blocks, F&& decode_block) {
  default_pool().parallel_for(blocks, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) decode_block(b);
  });
}

// TQ1_0's trit k of each of `count` bytes: the byte times 3^k wraps mod 256 on purpose (the format's fixed-point
// trick), and the top of that times 3 is the trit. One loop per k with a constant multiplier, so that it vectorizes.
template <unsigned kPow3>
void tq1_trits(const uint8_t* q, uint8_t* out, int count) {
  for (int m = 0; m < count; ++m) out[m] = static_cast<uint8_t>((static_cast<uint8_t>(q[m] * kPow3) * 3u) >> 8);
}

// Into `code` (rows x cols bytes, which the caller sized after ternary_nbytes); returns the block scales. Each
// layout's loops run over whole 32-byte groups with no division inside, which the compiler vectorizes.
std::vector<float> decode_into(TernaryFormat f, std::span<const uint8_t> bytes, int64_t rows, int64_t cols,
                               uint8_t* code) {
  const int64_t n = rows * cols;
  std::vector<float> scales;  // TQ: per block; I2_S: one; hf_u8: none
  const uint8_t* in = bytes.data();
  switch (f) {
    case TernaryFormat::hf_u8: {
      const int64_t R = rows / 4;
      for_each_block(R, [&](int64_t r) {  // byte row r holds rows r, r + R, r + 2R, r + 3R
        const uint8_t* b = in + r * cols;
        for (int i = 0; i < 4; ++i) {
          uint8_t* out = code + (r + i * R) * cols;
          for (int64_t k = 0; k < cols; ++k) out[k] = (b[k] >> (2 * i)) & 3;
        }
      });
      break;
    }
    case TernaryFormat::tq2_0: {
      scales.resize(static_cast<size_t>(n / kQK));
      for_each_block(n / kQK, [&](int64_t blk) {
        const uint8_t* q = in + blk * kTq2Bytes;
        uint8_t* out = code + blk * kQK;
        // Element 128 h + 32 l + m is bits 2l of byte 32 h + m.
        for (int h = 0; h < 2; ++h)
          for (int l = 0; l < 4; ++l)
            for (int m = 0; m < 32; ++m) out[128 * h + 32 * l + m] = (q[32 * h + m] >> (2 * l)) & 3;
        scales[static_cast<size_t>(blk)] = f16_to_f32(load_u16(q + 64));
      });
      break;
    }
    case TernaryFormat::tq1_0: {
      scales.resize(static_cast<size_t>(n / kQK));
      for_each_block(n / kQK, [&](int64_t blk) {
        const uint8_t* q = in + blk * kTq1Bytes;
        uint8_t* out = code + blk * kQK;
        // Bytes 0-31 hold elements m + 32 k (k = 0..4), bytes 32-47 elements 160 + m + 16 k, bytes 48-51 elements
        // 240 + j + 4 k (k = 0..3).
        auto trits_0_to_3 = [&](const uint8_t* src, uint8_t* dst, int count) {
          tq1_trits<1>(src, dst, count);
          tq1_trits<3>(src, dst + count, count);
          tq1_trits<9>(src, dst + 2 * count, count);
          tq1_trits<27>(src, dst + 3 * count, count);
          return dst + 4 * count;
        };
        tq1_trits<81>(q, trits_0_to_3(q, out, 32), 32);
        tq1_trits<81>(q + 32, trits_0_to_3(q + 32, out + 160, 16), 16);
        trits_0_to_3(q + 48, out + 240, 4);
        scales[static_cast<size_t>(blk)] = f16_to_f32(load_u16(q + 52));
      });
      break;
    }
    case TernaryFormat::i2_s: {
      for_each_block(n / kI2Block, [&](int64_t blk) {
        const uint8_t* q = in + blk * 32;
        uint8_t* out = code + blk * kI2Block;
        // Element 32 g + m is bits 6 - 2g of byte m.
        for (int g = 0; g < 4; ++g)
          for (int m = 0; m < 32; ++m) out[32 * g + m] = (q[m] >> (6 - 2 * g)) & 3;
      });
      float scale;
      std::memcpy(&scale, in + n / 4, 4);
      scales.push_back(scale);
      break;
    }
  }
  return scales;
}

void check_size(TernaryFormat f, std::span<const uint8_t> bytes, int64_t rows, int64_t cols) {
  const uint64_t need = ternary_nbytes(f, rows, cols);
  if (bytes.size() != need)
    fail("[ternary] {} [{}, {}] needs {} bytes, got {}", ternary_format_name(f), rows, cols, need, bytes.size());
}

Codes decode(TernaryFormat f, std::span<const uint8_t> bytes, int64_t rows, int64_t cols) {
  check_size(f, bytes, rows, cols);
  Codes c;
  c.code.resize(static_cast<size_t>(rows * cols));
  c.block_scale = decode_into(f, bytes, rows, cols, c.code.data());
  return c;
}
}  // namespace

std::string_view ternary_format_name(TernaryFormat f) {
  switch (f) {
    case TernaryFormat::hf_u8: return "HF packed uint8";
    case TernaryFormat::tq1_0: return "TQ1_0";
    case TernaryFormat::tq2_0: return "TQ2_0";
    case TernaryFormat::i2_s: return "I2_S";
  }
  return "?";
}

uint64_t ternary_nbytes(TernaryFormat f, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0 || rows > (int64_t(1) << 40) / cols)
    fail("[ternary] {}: shape [{}, {}] must be positive and below 2^40 elements", ternary_format_name(f), rows, cols);
  const int64_t n = rows * cols;
  switch (f) {
    case TernaryFormat::hf_u8:
      if (rows % 4 != 0) fail("[ternary] HF packed uint8 needs rows (output features) divisible by 4, got {}", rows);
      return static_cast<uint64_t>(n / 4);
    case TernaryFormat::tq2_0:
    case TernaryFormat::tq1_0:
      if (cols % kQK != 0)
        fail("[ternary] {} needs cols (input features) divisible by 256, got {}", ternary_format_name(f), cols);
      return static_cast<uint64_t>(n / kQK * (f == TernaryFormat::tq2_0 ? kTq2Bytes : kTq1Bytes));
    case TernaryFormat::i2_s:
      if (n % kI2Block != 0) fail("[ternary] I2_S needs rows*cols divisible by 128, got {}", n);
      return static_cast<uint64_t>(n / 4 + kI2Tail);
  }
  return 0;
}

std::vector<uint8_t> pack_ternary(TernaryFormat f, std::span<const int8_t> values, int64_t rows, int64_t cols,
                                  float scale) {
  const uint64_t nbytes = ternary_nbytes(f, rows, cols);
  const int64_t n = rows * cols;
  if (static_cast<int64_t>(values.size()) != n)
    fail("[ternary] {} [{}, {}] needs {} values, got {}", ternary_format_name(f), rows, cols, n, values.size());
  std::vector<uint8_t> out(nbytes, 0);
  switch (f) {
    case TernaryFormat::hf_u8: {
      const int64_t R = rows / 4;
      for (int64_t r = 0; r < R; ++r)
        for (int64_t k = 0; k < cols; ++k) {
          uint8_t b = 0;
          for (int i = 0; i < 4; ++i) {
            const int64_t idx = (r + i * R) * cols + k;
            b |= static_cast<uint8_t>(code_of(values[idx], idx) << (2 * i));
          }
          out[r * cols + k] = b;
        }
      break;
    }
    case TernaryFormat::tq2_0: {
      const uint16_t d = f32_to_f16(scale);
      for (int64_t blk = 0; blk < n / kQK; ++blk) {
        uint8_t* q = out.data() + blk * kTq2Bytes;
        bool any = false;
        for (int e = 0; e < kQK; ++e) {
          const int64_t idx = blk * kQK + e;
          const uint8_t code = code_of(values[idx], idx);
          any |= code != 1;
          q[32 * (e / 128) + e % 32] |= static_cast<uint8_t>(code << (2 * ((e % 128) / 32)));
        }
        store_u16(q + 64, any ? d : 0);
      }
      break;
    }
    case TernaryFormat::tq1_0: {
      const uint16_t d = f32_to_f16(scale);
      auto scaled = [](unsigned q) { return static_cast<uint8_t>((q * 256 + 242) / 243); };
      for (int64_t blk = 0; blk < n / kQK; ++blk) {
        uint8_t* q = out.data() + blk * kTq1Bytes;
        const int8_t* v = values.data() + blk * kQK;
        bool any = false;
        auto t = [&](int e) {
          const uint8_t code = code_of(v[e], blk * kQK + e);
          any |= code != 1;
          return unsigned(code);
        };
        for (int m = 0; m < 32; ++m)
          q[m] = scaled(t(m) * 81 + t(m + 32) * 27 + t(m + 64) * 9 + t(m + 96) * 3 + t(m + 128));
        for (int m = 0; m < 16; ++m)
          q[32 + m] = scaled(t(160 + m) * 81 + t(176 + m) * 27 + t(192 + m) * 9 + t(208 + m) * 3 + t(224 + m));
        for (int j = 0; j < 4; ++j)
          q[48 + j] = scaled(t(240 + j) * 81 + t(244 + j) * 27 + t(248 + j) * 9 + t(252 + j) * 3);
        store_u16(q + 52, any ? d : 0);
      }
      break;
    }
    case TernaryFormat::i2_s: {
      for (int64_t blk = 0; blk < n / kI2Block; ++blk) {
        uint8_t* q = out.data() + blk * 32;
        for (int j = 0; j < kI2Block; ++j) {
          const int64_t idx = blk * kI2Block + j;
          q[j % 32] |= static_cast<uint8_t>(code_of(values[idx], idx) << (6 - 2 * (j / 32)));
        }
      }
      std::memcpy(out.data() + n / 4, &scale, 4);
      break;
    }
  }
  return out;
}

TernaryTensor unpack_ternary(TernaryFormat f, std::span<const uint8_t> bytes, int64_t rows, int64_t cols) {
  TernaryTensor t;
  unpack_ternary(f, bytes, rows, cols, t);
  return t;
}

void unpack_ternary(TernaryFormat f, std::span<const uint8_t> bytes, int64_t rows, int64_t cols, TernaryTensor& t) {
  check_size(f, bytes, rows, cols);
  t.rows = rows;
  t.cols = cols;
  t.scale = 0.0f;
  // The codes are decoded into the values' own bytes and turned into values in place (code - 1): no second
  // buffer of rows x cols bytes to allocate and fault in for each tensor.
  t.values.resize(static_cast<size_t>(rows * cols));
  uint8_t* const code = reinterpret_cast<uint8_t*>(t.values.data());
  const std::vector<float> block_scale = decode_into(f, bytes, rows, cols, code);
  // In parallel, as decode; the error names the first code 3 (the smallest index any chunk found).
  std::atomic<int64_t> first_bad{std::numeric_limits<int64_t>::max()};
  default_pool().parallel_for(rows * cols, [&](int64_t i0, int64_t i1) {
    uint8_t* const p = code;  // a local copy: through the capture, each store could change it (no vectorizing)
    uint8_t bad = 0;
    for (int64_t i = i0; i < i1; ++i) {
      bad |= p[i] == 3;
      p[i] = static_cast<uint8_t>(p[i] - 1);  // 0, 1, 2 -> the bytes of -1, 0, +1
    }
    if (!bad) return;
    for (int64_t i = i0; i < i1; ++i)
      if (p[i] == 2) {  // code 3, less 1
        int64_t seen = first_bad.load();
        while (i < seen && !first_bad.compare_exchange_weak(seen, i)) {
        }
        return;
      }
  }, int64_t{1} << 16);
  if (const int64_t i = first_bad.load(); i != std::numeric_limits<int64_t>::max())
    fail("[ternary] {}: element {} (row {}, col {}) has code 3, which is not a ternary value", ternary_format_name(f),
         i, i / cols, i % cols);
  if (f == TernaryFormat::i2_s) {
    t.scale = block_scale[0];
  } else if (f != TernaryFormat::hf_u8) {
    // One canonical scale: every block holding a non-zero value must carry the same d. Which blocks hold one is
    // found in parallel, the scales compared in block order.
    const int64_t blocks = static_cast<int64_t>(block_scale.size());
    std::vector<uint8_t> any(static_cast<size_t>(blocks));
    for_each_block(blocks, [&](int64_t b) {
      const int8_t* block = t.values.data() + b * kQK;
      int8_t nonzero = 0;
      for (int64_t e = 0; e < kQK; ++e) nonzero |= block[e];
      any[static_cast<size_t>(b)] = static_cast<uint8_t>(nonzero != 0);
    });
    for (int64_t b = 0; b < blocks; ++b) {
      if (!any[static_cast<size_t>(b)]) continue;
      const float d = block_scale[static_cast<size_t>(b)];
      if (t.scale == 0.0f) t.scale = d;
      else if (!(d == t.scale))
        fail("[ternary] {}: block {} has scale {} but an earlier block has {}; a tensor with per-block scales has no "
             "single-scale ternary form", ternary_format_name(f), b, d, t.scale);
    }
  }
}

std::vector<float> dequantize_ternary(TernaryFormat f, std::span<const uint8_t> bytes, int64_t rows, int64_t cols) {
  const Codes c = decode(f, bytes, rows, cols);
  std::vector<float> out(c.code.size());
  for (size_t i = 0; i < c.code.size(); ++i) {
    if (c.code[i] == 3) fail("[ternary] {}: element {} has code 3, which is not a ternary value", ternary_format_name(f), i);
    const float s = f == TernaryFormat::hf_u8 ? 1.0f : f == TernaryFormat::i2_s ? c.block_scale[0]
                                                                              : c.block_scale[i / kQK];
    out[i] = static_cast<float>(int(c.code[i]) - 1) * s;
  }
  return out;
}

TernaryReport inspect_ternary(TernaryFormat f, std::span<const uint8_t> bytes, int64_t rows, int64_t cols) {
  const Codes c = decode(f, bytes, rows, cols);
  TernaryReport r;
  r.numel = rows * cols;
  for (uint8_t code : c.code) {
    r.zeros += code == 1;
    r.invalid_codes += code == 3;
  }
  std::set<uint32_t> distinct;
  for (float s : c.block_scale) {
    if (!std::isfinite(s)) ++r.nonfinite_scales;
    if (s != 0.0f) {
      uint32_t bits;
      std::memcpy(&bits, &s, 4);
      distinct.insert(bits);
      if (r.scale == 0.0f) r.scale = s;
    }
  }
  r.distinct_scales = static_cast<int64_t>(distinct.size());
  return r;
}

float hf_scale_to_canonical(float weight_scale, ScaleConvention c) {
  return c == ScaleConvention::multiply ? weight_scale : 1.0f / weight_scale;
}
float canonical_to_hf_scale(float scale, ScaleConvention c) {
  return c == ScaleConvention::multiply ? scale : 1.0f / scale;
}

namespace {
template <class Load>
TernaryTensor absmean(int64_t n, int64_t rows, int64_t cols, Load load) {
  if (rows <= 0 || cols <= 0 || rows * cols != n)
    fail("[quantize_absmean] shape [{}, {}] does not match {} values", rows, cols, n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += std::fabs(static_cast<double>(load(i)));
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  if (!std::isfinite(mean)) fail("[quantize_absmean] mean |W| is {} (the weights hold NaN or Inf)", mean);
  TernaryTensor t;
  t.rows = rows;
  t.cols = cols;
  t.scale = std::max(mean, 1e-5f);
  const float s = 1.0f / t.scale;
  t.values.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const float q = std::nearbyint(load(i) * s);  // default rounding mode: half to even, like torch.round
    t.values[i] = static_cast<int8_t>(q > 1.0f ? 1 : q < -1.0f ? -1 : q);
  }
  return t;
}
}  // namespace

TernaryTensor quantize_absmean(std::span<const float> w, int64_t rows, int64_t cols) {
  return absmean(static_cast<int64_t>(w.size()), rows, cols, [&](int64_t i) { return w[i]; });
}

TernaryTensor quantize_absmean_bf16(std::span<const uint16_t> w, int64_t rows, int64_t cols) {
  return absmean(static_cast<int64_t>(w.size()), rows, cols, [&](int64_t i) { return bf16_to_f32(w[i]); });
}

bool detect_ternary_float(std::span<const float> w, int64_t rows, int64_t cols, TernaryTensor* out) {
  if (rows * cols != static_cast<int64_t>(w.size())) return false;
  float s = 0.0f;
  for (float x : w) {
    const float a = std::fabs(x);
    if (a == 0.0f) continue;
    if (s == 0.0f) s = a;
    else if (a != s) return false;
  }
  if (!std::isfinite(s)) return false;
  if (out) {
    out->rows = rows;
    out->cols = cols;
    out->scale = s;
    out->values.resize(w.size());
    for (size_t i = 0; i < w.size(); ++i) out->values[i] = w[i] > 0 ? 1 : w[i] < 0 ? -1 : 0;
  }
  return true;
}

}  // namespace bitnet
