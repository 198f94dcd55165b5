// Quantization error metrics and the storage cost of each packing.
#include <bitnet/quant.h>

#include <cmath>
#include <limits>

namespace bitnet {

QuantError quant_error(const Tensor& x, const Tensor& x_hat) {
  BITNET_CHECK(x.defined() && x_hat.defined() && x.numel() == x_hat.numel(),
               "[quant_error] x and x_hat must have the same number of elements");
  const auto a = x.to_vector(), b = x_hat.to_vector();
  double sxx = 0, syy = 0, sxy = 0, see = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double u = a[i], v = b[i];
    sxx += u * u;
    syy += v * v;
    sxy += u * v;
    see += (u - v) * (u - v);
  }
  QuantError e;
  const auto n = static_cast<double>(std::max<size_t>(a.size(), 1));
  e.mse = see / n;
  e.sqnr_db = see == 0 ? std::numeric_limits<double>::infinity() : 10.0 * std::log10(sxx / see);
  e.cosine = sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : (sxx == syy ? 1.0 : 0.0);
  e.relative_error = sxx > 0 ? std::sqrt(see / sxx) : (see == 0 ? 0.0 : std::numeric_limits<double>::infinity());
  return e;
}

std::vector<PackingInfo> packing_bits_per_weight(int64_t cols) {
  BITNET_CHECK(cols > 0, "[packing] row length must be positive, got {}", cols);
  const double c = static_cast<double>(cols);
  const double padded256 = std::ceil(c / 256.0) * 256.0;
  return {
      {"bitnet native (2-bit codes, 256-weight blocks, f32 scale per tensor)", 2.0 * padded256 / c},
      {"HF packed uint8 (4 codes per byte)", 2.0},
      {"I2_S (bitnet.cpp, 2-bit codes, f32 scale per tensor)", 2.0},
      {"TQ2_0 (llama.cpp, 66 bytes per 256)", 66.0 * 8.0 * padded256 / 256.0 / c},
      {"TQ1_0 (llama.cpp, 54 bytes per 256)", 54.0 * 8.0 * padded256 / 256.0 / c},
      {"TL2 (bitnet.cpp LUT, 5 bits per 3 weights)", 5.0 / 3.0},
      {"int8 (f32 scale per row)", 8.0 + 32.0 / c},
      {"Q8_0 (34 bytes per 32)", 8.5},
      {"int4 (f32 scale per group of 32)", 4.0 + 1.0},
      {"f16 / bf16", 16.0},
      {"f32", 32.0},
  };
}

}  // namespace bitnet
