// Packing ternary weights into the kernel layout, and the threaded ternary x int8 matrix multiply.
#include <bitnet/ternary.h>
#include <bitnet/thread_pool.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "kernels/ternary.h"
#include "kernels/ternary_base3.h"

namespace bitnet {

using kernels::kTernaryBlock;
using kernels::kTernaryBlockBytes;

TernaryPacking parse_ternary_packing(std::string_view name) {
  for (TernaryPacking p : {TernaryPacking::two_bit, TernaryPacking::base3})
    if (name == ternary_packing_name(p)) return p;
  fail("[ternary] unknown packing '{}': use 2bit or base3", name);
}

std::string_view ternary_packing_name(TernaryPacking packing) {
  return packing == TernaryPacking::base3 ? "base3" : "2bit";
}

bool base3_decodes_fast() { return kernels::ternary_family().get().base3_decodes_fast; }

namespace {

// Block b (256 weights) of a row in the 2-bit block format: byte j holds elements j, j+64, j+128, j+192 (2 bits
// each, code = w + 1). `block` starts as code 1 everywhere, which the elements past `cols` keep.
void pack_block_2bit(const int8_t* row, int64_t cols, int64_t b, uint8_t* block) {
  const int64_t k0 = b * kTernaryBlock;
  if (k0 + kTernaryBlock <= cols) {
    const int8_t* v = row + k0;
    // Built in a local array and copied: stores through `block` could alias `v`, and would not vectorize.
    uint8_t packed[64];
    for (int j = 0; j < 64; ++j)
      packed[j] = static_cast<uint8_t>((v[j] + 1) | ((v[j + 64] + 1) << 2) | ((v[j + 128] + 1) << 4) |
                                       ((v[j + 192] + 1) << 6));
    std::memcpy(block, packed, 64);
  } else {  // the last, partial block
    for (int64_t k = k0; k < cols; ++k) {
      const int64_t e = k - k0;
      const int shift = static_cast<int>(2 * (e / 64));
      uint8_t& byte = block[e % 64];
      byte = static_cast<uint8_t>((byte & ~(3u << shift)) | (static_cast<unsigned>(row[k] + 1) << shift));
    }
  }
}

// Row n in the 2-bit layout (kernels/ternary.h).
void pack_row_2bit(const int8_t* row, int64_t cols, int64_t n, int64_t k_blocks, uint8_t* data) {
  for (int64_t b = 0; b < k_blocks; ++b)
    pack_block_2bit(row, cols, b, data + kernels::ternary_block_offset(n, b, k_blocks));
}

// Row n in the base-3 layout (kernels/ternary_base3.h); row == nullptr packs a row of zeros (a padding row).
void pack_row_base3(const int8_t* row, int64_t cols, int64_t n, int64_t k_blocks, uint8_t* data) {
  using namespace kernels;
  const int64_t supers = base3_superblocks(k_blocks);
  const auto encode = ternary_family().get().encode_base3;
  for (int64_t s = 0; s < supers; ++s) {
    const int64_t k0 = s * kBase3SuperWeights;
    // The code tuple c0 + 3 c1 + 9 c2 + 27 c3 + 81 c4 of each byte (at most 242, so a byte), then its byte.
    uint8_t tuple[kBase3SuperBytes];
    if (row != nullptr && k0 + kBase3SuperWeights <= cols) {
      const int8_t* v = row + k0;
      for (int j = 0; j < kBase3SuperBytes; ++j)
        tuple[j] = static_cast<uint8_t>((v[j] + 1) + 3 * (v[j + 256] + 1) + 9 * (v[j + 512] + 1) +
                                        27 * (v[j + 768] + 1) + 81 * (v[j + 1024] + 1));
    } else {  // past `cols` (or a padding row) the code is 1
      for (int j = 0; j < kBase3SuperBytes; ++j) {
        int t = 0;
        for (int i = 4; i >= 0; --i) {
          const int64_t k = k0 + j + 256 * i;
          t = 3 * t + (row != nullptr && k < cols ? row[k] + 1 : 1);
        }
        tuple[j] = static_cast<uint8_t>(t);
      }
    }
    uint8_t* out = data + base3_super_offset(n, s, k_blocks);
    for (int q = 0; q < kBase3SuperBytes / 64; ++q) encode(tuple + 64 * q, out + q * kBase3PieceStride, 64);
  }
  if (row == nullptr) return;  // the tail blocks already hold code 1
  for (int64_t t = 0; t < base3_tail_blocks(k_blocks); ++t)
    pack_block_2bit(row, cols, kBase3Blocks * supers + t, data + base3_tail_offset(n, t, k_blocks));
}

int64_t matrix_bytes(TernaryPacking packing, int64_t rows, int64_t k_blocks) {
  return packing == TernaryPacking::base3 ? kernels::base3_matrix_bytes(rows, k_blocks)
                                          : kernels::ternary_matrix_bytes(rows, k_blocks);
}

}  // namespace

TernaryMatrix TernaryMatrix::pack(const int8_t* values, int64_t rows, int64_t cols, float scale,
                                  TernaryPacking packing) {
  BITNET_CHECK(rows > 0 && cols > 0 && cols <= kernels::kMaxTernaryK,
               "[ternary] need rows > 0 and 0 < cols <= {}, got {} x {}", kernels::kMaxTernaryK, rows, cols);
  BITNET_CHECK(std::isfinite(scale), "[ternary] weight scale is {}, not a finite number", scale);
  TernaryMatrix m;
  m.rows_ = rows;
  m.cols_ = cols;
  m.k_blocks_ = (cols + kTernaryBlock - 1) / kTernaryBlock;
  m.packing_ = packing;
  m.scale_ = scale;
  const auto bytes = static_cast<size_t>(matrix_bytes(packing, rows, m.k_blocks_));
  // Counted (memory_stats) and, when large, on huge pages: see aligned_alloc_counted.
  m.data_ = std::shared_ptr<uint8_t[]>(static_cast<uint8_t*>(aligned_alloc_counted(bytes)),
                                       [bytes](uint8_t* p) { aligned_free_counted(p, bytes); });
  // Code 1 (weight 0) in every 2-bit position: the padding past `cols` and past `rows` stays so.
  std::memset(m.data_.get(), 0x55, bytes);
  const int64_t k_blocks = m.k_blocks_;
  uint8_t* data = m.data_.get();
  const auto pack_row = packing == TernaryPacking::base3 ? pack_row_base3 : pack_row_2bit;
  if (packing == TernaryPacking::base3)  // the padding rows' superblocks (their bytes are not 0x55)
    for (int64_t n = rows; n % kernels::kTernaryRowGroup != 0; ++n) pack_row_base3(nullptr, cols, n, k_blocks, data);
  // Rows are independent, so the pool packs them in parallel (a 2B4T model has 2 billion weights to pack).
  std::atomic<int64_t> bad_row{-1};
  default_pool().parallel_for(rows, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const int8_t* row = values + n * cols;
      uint8_t bad = 0;  // a byte, not a bool, so the test vectorizes
      for (int64_t k = 0; k < cols; ++k) bad |= static_cast<uint8_t>(row[k] + 1) > 2;
      if (bad) {
        bad_row.store(n);
        continue;
      }
      pack_row(row, cols, n, k_blocks, data);
    }
  }, 16);
  if (const int64_t n = bad_row.load(); n >= 0) {
    for (int64_t k = 0; k < cols; ++k)
      if (values[n * cols + k] < -1 || values[n * cols + k] > 1)
        fail("[ternary] value {} at row {}, column {} is not -1, 0 or +1", values[n * cols + k], n, k);
  }
  return m;
}

TernaryMatrix TernaryMatrix::pack(const TernaryWeights& w, TernaryPacking packing) {
  BITNET_CHECK(w.granularity != Granularity::per_group,
               "[ternary] per-group scales cannot be applied after the integer dot product; use per_tensor or "
               "per_channel for inference");
  if (w.granularity == Granularity::per_tensor) return pack(w.values.data(), w.rows, w.cols, w.scales.at(0), packing);
  TernaryMatrix m = pack(w.values.data(), w.rows, w.cols, 1.0f, packing);
  m.row_scales_ = w.scales;
  return m;
}

TernaryMatrix TernaryMatrix::quantize(const Tensor& weights, TernaryPacking packing) {
  return pack(quantize_ternary(weights), packing);
}

TernaryMatrix TernaryMatrix::repack(TernaryPacking packing) const {
  if (packing == packing_ || rows_ == 0) return *this;
  TernaryMatrix m = pack(unpack().data(), rows_, cols_, scale_, packing);
  m.row_scales_ = row_scales_;
  return m;
}

size_t TernaryMatrix::bytes() const { return static_cast<size_t>(matrix_bytes(packing_, rows_, k_blocks_)); }

std::vector<int8_t> TernaryMatrix::unpack() const {
  using namespace kernels;
  std::vector<int8_t> out(static_cast<size_t>(rows_ * cols_));
  const int64_t supers = packing_ == TernaryPacking::base3 ? base3_superblocks(k_blocks_) : 0;
  for (int64_t n = 0; n < rows_; ++n) {
    int8_t* row = out.data() + n * cols_;
    int64_t k = 0;
    for (; k < std::min(cols_, supers * kBase3SuperWeights); ++k) {
      const int64_t e = k % kBase3SuperWeights;
      const uint8_t byte =
          data_[static_cast<size_t>(base3_byte_offset(n, k / kBase3SuperWeights, e % kBase3SuperBytes, k_blocks_))];
      row[k] = static_cast<int8_t>(base3_decode(kBase3, byte)[static_cast<size_t>(e / kBase3SuperBytes)] - 1);
    }
    for (; k < cols_; ++k) {  // 2-bit blocks: the whole row, or base3's tail
      const int64_t b = k / kTernaryBlock, e = k % kTernaryBlock;
      const int64_t at = packing_ == TernaryPacking::base3 ? base3_tail_offset(n, b - kBase3Blocks * supers, k_blocks_)
                                                           : ternary_block_offset(n, b, k_blocks_);
      const int code = (data_[static_cast<size_t>(at + e % 64)] >> (2 * (e / 64))) & 3;
      row[k] = static_cast<int8_t>(code - 1);
    }
  }
  return out;
}

void ternary_matmul(const TernaryMatrix& w, const QuantizedActivations& x, float* y, int64_t y_stride,
                    ThreadPool& pool) {
  const TernaryProduct one{&w, y, y_stride};
  ternary_matmul(std::span<const TernaryProduct>(&one, 1), x, pool);
}

void ternary_matmul(std::span<const TernaryProduct> products, const QuantizedActivations& x, ThreadPool& pool) {
  constexpr size_t kMaxProducts = 4;
  constexpr int64_t kStackTokens = 64;
  BITNET_CHECK(!products.empty() && products.size() <= kMaxProducts, "[ternary_matmul] 1 to {} products, got {}",
               kMaxProducts, products.size());
  for (const TernaryProduct& p : products) {
    BITNET_CHECK(x.k() == p.w->cols(), "[ternary_matmul] activations have {} columns but the weights {}", x.k(),
                 p.w->cols());
    BITNET_CHECK(x.k_pad() == p.w->k_blocks() * kTernaryBlock, "[ternary_matmul] activation padding mismatch");
  }
  const int64_t tokens = x.tokens();
  if (tokens == 0) return;
  // The per-token output scale of each product, computed once so every kernel variant rounds identically (on
  // the stack for decode-sized batches: a decode step allocates nothing).
  float scale_stack[kMaxProducts * kStackTokens];
  std::vector<float> scale_heap;
  float* scales = scale_stack;
  if (tokens > kStackTokens) {
    scale_heap.resize(products.size() * static_cast<size_t>(tokens));
    scales = scale_heap.data();
  }
  // Rows are handed out in units of 16 (whole 4-row tiles), the products' units one after the other.
  int64_t first_unit[kMaxProducts + 1] = {0};
  for (size_t i = 0; i < products.size(); ++i) {
    for (int64_t t = 0; t < tokens; ++t) scales[i * tokens + t] = x.dequant()[t] * products[i].w->scale();
    first_unit[i + 1] = first_unit[i] + (products[i].w->rows() + 15) / 16;
  }
  const auto& k = kernels::ternary_family().get();
  const int64_t units = first_unit[products.size()];
  // One token (decode's GEMV, bound by the weights' stream from DRAM): each thread streams one share of the rows,
  // and a thread done early takes the back half of the largest share left (parallel_for_shares). The pool's
  // default of 8 smaller chunks per thread, claimed in turn, made 12 layers of the 2B4T GEMVs 15-20% slower on
  // this VM's fast minutes (TernaryDecodeLayers, docs/kernels.md); one fixed chunk per thread streamed as well
  // but made a region wait for a thread preempted in its chunk (decode with 3 threads on the 2 cores: 41.5
  // against 44.7 t/s with shares). Several tokens are compute-bound and keep the smaller chunks, which balance
  // the threads.
  auto body = [&](int64_t u0, int64_t u1) {
    for (size_t i = 0; i < products.size(); ++i) {
      const int64_t b = std::max(u0, first_unit[i]), e = std::min(u1, first_unit[i + 1]);
      if (b >= e) continue;
      const TernaryProduct& p = products[i];
      const TernaryMatrix& w = *p.w;
      const auto gemm = w.packing() == TernaryPacking::base3 ? k.gemm_base3 : k.gemm;
      kernels::TernaryGemmArgs part{w.data(), w.k_blocks(), x.row(0), x.k_pad(), x.sums(), scales + i * tokens,
                                    p.y, p.y_stride, (b - first_unit[i]) * 16,
                                    std::min((e - first_unit[i]) * 16, w.rows()), tokens};
      gemm(part);
      const auto& row_scales = w.row_scales();
      if (!row_scales.empty())
        for (int64_t t = 0; t < tokens; ++t)
          for (int64_t n = part.row_begin; n < part.row_end; ++n)
            p.y[t * p.y_stride + n] *= row_scales[static_cast<size_t>(n)];
    }
  };
  if (tokens == 1) {
    pool.parallel_for_shares(units, body);
  } else {
    pool.parallel_for(units, body);
  }
}

Tensor bitlinear(const Tensor& x, const TernaryMatrix& w) {
  BITNET_CHECK(x.defined() && x.ndim() >= 1 && x.size(-1) == w.cols(),
               "[bitlinear] input {} does not end in the weight's {} columns", x.defined() ? x.str() : "undefined",
               w.cols());
  const Tensor in = x.to(DType::f32).contiguous();
  const int64_t tokens = in.numel() / w.cols();
  QuantizedActivations q;
  quantize_activations(in.data_as<float>(), tokens, w.cols(), w.cols(), q);
  Shape out_shape = x.shape();
  out_shape.back() = w.rows();
  Tensor out = Tensor::empty(out_shape);
  ternary_matmul(w, q, out.data_as<float>(), w.rows());
  return out;
}

}  // namespace bitnet
