// Repacking the CPU ternary layout into the GPU layout (see gpu_layout.h), its decoder, and a host reference of
// the GPU kernels' arithmetic.
#include "cuda/gpu_layout.h"

#include <bitnet/error.h>

#include <cstring>

#include "kernels/ternary.h"

namespace bitnet::cuda {

GpuTernary pack_gpu_ternary(std::span<const TernaryMatrix* const> parts_in) {
  BITNET_CHECK(!parts_in.empty(), "[cuda] nothing to pack");
  // The GPU layout is made from the CPU's 2-bit one: base-3 matrices are repacked first.
  std::vector<TernaryMatrix> two_bit;
  std::vector<const TernaryMatrix*> parts;
  two_bit.reserve(parts_in.size());
  for (const TernaryMatrix* p : parts_in) {
    if (p->packing() == TernaryPacking::two_bit) {
      parts.push_back(p);
    } else {
      two_bit.push_back(p->repack(TernaryPacking::two_bit));
      parts.push_back(&two_bit.back());
    }
  }
  GpuTernary g;
  g.cols = parts[0]->cols();
  const int64_t k_blocks = parts[0]->k_blocks();
  for (const TernaryMatrix* p : parts) {
    BITNET_CHECK(p->cols() == g.cols, "[cuda] fused matrices need one column count, got {} and {}", g.cols, p->cols());
    g.rows += p->rows();
  }
  g.k_pad = k_blocks * kernels::kTernaryBlock;
  static_assert(kernels::kTernaryBlock == 4 * kChunkWeights, "one CPU block is four GPU chunks");
  const int64_t n_chunks = g.n_chunks();
  const int64_t groups = (g.rows + kGpuRowGroup - 1) / kGpuRowGroup;
  g.data.assign(static_cast<size_t>(groups * kGpuRowGroup * n_chunks * kChunkBytes), 0x55);  // code 1 everywhere
  g.tensor_scale.resize(static_cast<size_t>(g.rows));
  g.row_scale.resize(static_cast<size_t>(g.rows));
  int64_t n = 0;
  for (const TernaryMatrix* p : parts) {
    const uint8_t* src = p->data();
    for (int64_t r = 0; r < p->rows(); ++r, ++n) {
      g.tensor_scale[static_cast<size_t>(n)] = p->scale();
      g.row_scale[static_cast<size_t>(n)] = p->row_scales().empty() ? 1.0f : p->row_scales()[static_cast<size_t>(r)];
      for (int64_t b = 0; b < k_blocks; ++b) {
        // CPU byte j of block b holds element 64 s + j at bits 2s; GPU chunk 4b + s, byte i holds chunk element
        // 16 q + i (= block element 64 s + 16 q + i, CPU byte 16 q + i) at bits 2q.
        const uint8_t* blk = src + kernels::ternary_block_offset(r, b, k_blocks);
        for (int s = 0; s < 4; ++s) {
          uint8_t* dst = g.data.data() + gpu_chunk_offset(n, 4 * b + s, n_chunks);
          for (int i = 0; i < 16; ++i) {
            unsigned byte = 0;
            for (int q = 0; q < 4; ++q) byte |= ((blk[16 * q + i] >> (2 * s)) & 3u) << (2 * q);
            dst[i] = static_cast<uint8_t>(byte);
          }
        }
      }
    }
  }
  return g;
}

GpuTernary pack_gpu_ternary(const TernaryMatrix& m) {
  const TernaryMatrix* one[] = {&m};
  return pack_gpu_ternary(one);
}

std::vector<int8_t> unpack_gpu_ternary(const GpuTernary& m) {
  std::vector<int8_t> out(static_cast<size_t>(m.rows * m.cols));
  for (int64_t n = 0; n < m.rows; ++n)
    for (int64_t k = 0; k < m.cols; ++k) {
      const int64_t e = k % kChunkWeights;
      const uint8_t byte = m.data[static_cast<size_t>(gpu_chunk_offset(n, k / kChunkWeights, m.n_chunks()) + e % 16)];
      out[static_cast<size_t>(n * m.cols + k)] = static_cast<int8_t>(((byte >> (2 * (e / 16))) & 3) - 1);
    }
  return out;
}

void gpu_ternary_reference(const GpuTernary& m, const int8_t* x, int64_t x_stride, const int32_t* x_sum,
                           const float* dequant, int64_t tokens, float* y, int64_t y_stride, bool accumulate) {
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t n = 0; n < m.rows; ++n) {
      int32_t acc = 0;
      for (int64_t c = 0; c < m.n_chunks(); ++c) {
        uint32_t w[4], xw[16];
        std::memcpy(w, m.data.data() + gpu_chunk_offset(n, c, m.n_chunks()), sizeof w);
        std::memcpy(xw, x + t * x_stride + c * kChunkWeights, sizeof xw);
        acc = chunk_dot(w, xw, acc);
      }
      const auto i = static_cast<size_t>(n);
      float v = static_cast<float>(acc - x_sum[t]) * (dequant[t] * m.tensor_scale[i]) * m.row_scale[i];
      float& out = y[t * y_stride + n];
      out = accumulate ? out + v : v;
    }
}

}  // namespace bitnet::cuda
