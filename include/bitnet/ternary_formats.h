#pragma once
// Byte-exact conversions between the FILE layouts of ternary weights and one canonical form (formats.md §2):
//   canonical: int8 values in {-1, 0, +1}, row-major [rows, cols] (PyTorch [out, in]: rows = N, cols = K),
//              plus one f32 `scale` with W ≈ values · scale (the multiply convention, scale = mean|W|).
//   HF packed uint8 [rows/4, cols]: 4 codes per byte along the output axis, code = w + 1, row r + i·rows/4 at
//              bit shift 2i; `weight_scale` multiplies or divides depending on the checkpoint.
//   TQ2_0 / TQ1_0 (llama.cpp): 256-element blocks along cols with an fp16 per-block scale d.
//   I2_S (bitnet.cpp): 2-bit codes in 128-element blocks of the flattened tensor, then a 32-byte tail whose
//              first 4 bytes are the f32 scale.
// Kernel layouts are built from the canonical form by src/quant (not here).
#include <bitnet/model_config.h>

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace bitnet {

enum class TernaryFormat : uint8_t { hf_u8, tq1_0, tq2_0, i2_s };
std::string_view ternary_format_name(TernaryFormat f);

struct TernaryTensor {
  int64_t rows = 0, cols = 0;
  std::vector<int8_t> values;  // rows * cols, each -1, 0 or +1
  float scale = 0.0f;          // W ≈ values * scale
};

// Bytes each layout takes for a [rows, cols] tensor; throws when the shape does not fit the layout
// (hf_u8: rows % 4; tq*: cols % 256; i2_s: rows*cols % 128).
uint64_t ternary_nbytes(TernaryFormat f, int64_t rows, int64_t cols);

// Packs canonical values (throws on a value outside {-1,0,1}). For TQ*, blocks with a non-zero value store
// d = fp16(scale), all-zero blocks store d = 0 (as llama.cpp's quantizer does). hf_u8 ignores `scale`.
std::vector<uint8_t> pack_ternary(TernaryFormat f, std::span<const int8_t> values, int64_t rows, int64_t cols,
                                  float scale);
// Unpacks, strictly: invalid codes (2-bit code 3, TQ1_0 trits that decode to 3) and TQ tensors whose non-zero
// blocks disagree on d are errors, since they have no canonical form. TQ scale = the common d (0 if all blocks
// are zero); I2_S scale = the tail f32; hf_u8 scale = 0 (the checkpoint stores it separately).
TernaryTensor unpack_ternary(TernaryFormat f, std::span<const uint8_t> bytes, int64_t rows, int64_t cols);
// The same into `out`, reusing its values' capacity: a loader that unpacks tensor after tensor through one
// TernaryTensor allocates (and faults in) the largest once, instead of a fresh rows x cols buffer for each.
void unpack_ternary(TernaryFormat f, std::span<const uint8_t> bytes, int64_t rows, int64_t cols, TernaryTensor& out);

// Values as floats (value · block scale), for layouts whose blocks carry different scales. Code 3 is an error.
std::vector<float> dequantize_ternary(TernaryFormat f, std::span<const uint8_t> bytes, int64_t rows, int64_t cols);

// Lenient scan for `bitnet inspect`: counts what unpack_ternary would reject.
struct TernaryReport {
  int64_t numel = 0;
  int64_t zeros = 0;          // elements whose value is 0
  int64_t invalid_codes = 0;  // code 3 / out-of-range trits
  int64_t nonfinite_scales = 0;
  int64_t distinct_scales = 0;  // distinct non-zero block scales (TQ*), 1 for I2_S
  float scale = 0.0f;           // the first non-zero scale
};
TernaryReport inspect_ternary(TernaryFormat f, std::span<const uint8_t> bytes, int64_t rows, int64_t cols);

// HF `weight_scale` <-> canonical multiplier.
float hf_scale_to_canonical(float weight_scale, ScaleConvention c);
float canonical_to_hf_scale(float scale, ScaleConvention c);

// Absmean ternarization of latent weights, the reference formula (transformers WeightQuant, microsoft/BitNet
// convert_checkpoint.py), in f32:  s = 1 / max(mean|W|, 1e-5);  W_t = clamp(round_half_even(W · s), -1, 1).
// Returned scale = max(mean|W|, 1e-5). mean|W| is accumulated in f64 then rounded to f32 (torch's f32
// reduction order is not specified, so the last bit of the mean may differ from torch on large tensors).
TernaryTensor quantize_absmean(std::span<const float> w, int64_t rows, int64_t cols);
TernaryTensor quantize_absmean_bf16(std::span<const uint16_t> w_bf16, int64_t rows, int64_t cols);

// If every value is 0 or ±s for one s > 0 (an already-ternarized float tensor), returns true and the values/scale.
bool detect_ternary_float(std::span<const float> w, int64_t rows, int64_t cols, TernaryTensor* out);

}  // namespace bitnet
