#pragma once
// Ternary matrices in the kernel's own layout, and the ternary x int8 matrix multiply (BitLinear's core).
#include <bitnet/quant.h>
#include <bitnet/tensor.h>
#include <bitnet/thread_pool.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace bitnet {

// How the kernels hold ternary weights in memory:
//   two_bit: 2-bit codes, 256-weight blocks of 64 bytes (src/kernels/ternary.h), the fastest to decode;
//   base3:   five weights per byte (1.6 bits per weight; src/kernels/ternary_base3.h), 20% fewer bytes to
//            store and to stream per token, for a costlier decode (cheap with AVX-512 VBMI only).
// Both give bit-identical results.
enum class TernaryPacking { two_bit, base3 };
TernaryPacking parse_ternary_packing(std::string_view name);  // "2bit" or "base3"; anything else throws naming them
std::string_view ternary_packing_name(TernaryPacking packing);
// Whether the ternary kernel this CPU runs (after BITNET_ISA / force_isa) decodes base3 fast enough that its
// fewer bytes make decode faster: AVX-512 with VBMI. Elsewhere base3 saves memory and costs speed.
bool base3_decodes_fast();

// Weights {-1, 0, +1} repacked once (at load time) into one of the kernels' layouts (TernaryPacking). One
// dequant scale per tensor, and optionally one per output row (per-channel quantization).
class TernaryMatrix {
 public:
  TernaryMatrix() = default;
  // values: rows * cols int8 in {-1, 0, +1} (anything else is an error naming the offending index).
  static TernaryMatrix pack(const int8_t* values, int64_t rows, int64_t cols, float scale,
                            TernaryPacking packing = TernaryPacking::two_bit);
  // Per-tensor or per-channel scales.
  static TernaryMatrix pack(const TernaryWeights& weights, TernaryPacking packing = TernaryPacking::two_bit);
  // Absmean-quantizes float weights [rows, cols] (per tensor, as BitNet b1.58) and packs them.
  static TernaryMatrix quantize(const Tensor& weights, TernaryPacking packing = TernaryPacking::two_bit);
  // The same weights and scales in `packing` (this matrix itself when it already is).
  TernaryMatrix repack(TernaryPacking packing) const;

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  int64_t k_blocks() const { return k_blocks_; }  // K_pad / 256, in both packings (the activations' padding)
  TernaryPacking packing() const { return packing_; }
  float scale() const { return scale_; }
  const std::vector<float>& row_scales() const { return row_scales_; }  // empty unless per channel
  const uint8_t* data() const { return data_.get(); }
  size_t bytes() const;  // storage, padding included
  std::vector<int8_t> unpack() const;  // back to rows * cols values

 private:
  int64_t rows_ = 0, cols_ = 0, k_blocks_ = 0;
  TernaryPacking packing_ = TernaryPacking::two_bit;
  float scale_ = 1.0f;
  std::vector<float> row_scales_;
  std::shared_ptr<uint8_t[]> data_;
};

// y[t * y_stride + n] = (sum_k W[n, k] * q[t, k]) * dequant[t] * scale (* row_scale[n]), for all tokens t of x
// and rows n of w, split over the pool's threads by output rows. x.k() must equal w.cols().
void ternary_matmul(const TernaryMatrix& w, const QuantizedActivations& x, float* y, int64_t y_stride,
                    ThreadPool& pool = default_pool());

// Several products of the same activations (q/k/v, gate/up) in one parallel region: the threads work through
// the matrices' rows as one list, so a small matrix (k, v) costs no region of its own and no thread idles at
// its end. Each output is exactly what ternary_matmul gives. At most 4 products.
struct TernaryProduct {
  const TernaryMatrix* w;
  float* y;
  int64_t y_stride;
};
void ternary_matmul(std::span<const TernaryProduct> products, const QuantizedActivations& x,
                    ThreadPool& pool = default_pool());

// BitLinear inference: quantizes x [..., cols] (f32 or convertible) per token and multiplies: [..., rows].
Tensor bitlinear(const Tensor& x, const TernaryMatrix& w);

}  // namespace bitnet
