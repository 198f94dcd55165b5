// BitLinear's forward on the int8 x ternary kernels. The fake-quantized path multiplies two f32 matrices of
// quantized values; here the weights are packed once per forward (as the engine packs them at load) and the
// activations quantized per token, so the forward reads 2-bit weights and int8 activations and a third of a
// training step's GEMM work runs at integer speed. The backward needs the f32 quantized operands, which it
// rebuilds from the int8 codes with the same division as fake_quantize, so its gradients are the same bits.
#include "nn/ternary_linear.h"

#include <bitnet/quant.h>
#include <bitnet/ternary.h>

#include <memory>
#include <vector>

#include "kernels/ternary.h"
#include "kernels/train.h"
#include "nn/quant_math.h"
#include "ops/ops_util.h"

namespace bitnet::nn::detail {

namespace {

// What the forward keeps for the backward: int8 codes and their scales, a quarter of the f32 operands.
struct Saved {
  QuantizedActivations x;      // per-token codes (rows padded to k_pad)
  std::vector<float> x_scale;  // per token: s = 127 / max|x|; the operand is q / s
  std::vector<int8_t> w_codes; // [out, in] in {-1, 0, 1}
  float w_inv = 1.0f;          // 1 / mean|w|; the operand is code / w_inv
  int64_t tokens = 0, in = 0, out = 0;
};

// Fake-quantized weights in f32 [out, in]: code / inv, as fake_quantize computes them.
Tensor weight_operand(const Saved& s) {
  Tensor w = Tensor::empty({s.out, s.in});
  float* pw = w.data_as<float>();
  const int8_t* codes = s.w_codes.data();
  const auto& k = kernels::train_kernels();
  bitnet::detail::parallel_elements(w.numel(), [&](int64_t b, int64_t e) { k.codes_to_f32(codes + b, e - b, s.w_inv, pw + b); });
  return w;
}

// Fake-quantized activations in f32 [tokens, in]: q / s per token.
Tensor activation_operand(const Saved& s) {
  Tensor x = Tensor::empty({s.tokens, s.in});
  float* px = x.data_as<float>();
  const int64_t in = s.in;
  const auto& k = kernels::train_kernels();
  bitnet::detail::parallel_rows(s.tokens, in, [&k, &s, px, in](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) k.codes_to_f32(s.x.row(t), in, s.x_scale[static_cast<size_t>(t)], px + t * in);
  });
  return x;
}

}  // namespace

bool int8_ternary_path(const BitLinearOptions& options, float lambda, int64_t in_features) {
  const QuantSpec& w = options.weight_quant;
  const QuantSpec& a = options.act_quant;
  return lambda == 1.0f && w.scheme == QuantScheme::ternary && w.granularity == Granularity::per_tensor &&
         a.scheme == QuantScheme::symmetric && a.bits == 8 && a.granularity == Granularity::per_row &&
         in_features <= kernels::kMaxTernaryK;
}

autograd::Var int8_ternary_linear(const autograd::Var& x, const autograd::Var& w) {
  BITNET_CHECK(w.ndim() == 2, "[bitlinear] weight must be [out, in], got {}", shape_str(w.shape()));
  BITNET_CHECK(x.ndim() >= 1 && x.size(-1) == w.size(1), "[bitlinear] input {} does not end in in_features = {}",
               shape_str(x.shape()), w.size(1));
  auto saved = std::make_shared<Saved>();
  Saved& s = *saved;
  s.in = w.size(1);
  s.out = w.size(0);
  const Tensor xv = x.value().to(DType::f32).contiguous();
  s.tokens = xv.numel() / s.in;
  s.x_scale.resize(static_cast<size_t>(s.tokens));
  quantize_activations(xv.data_as<float>(), s.tokens, s.in, s.in, s.x, &default_pool(), s.x_scale.data());

  const Tensor wv = w.value().to(DType::f32).contiguous();
  const float* pw = wv.data_as<float>();
  s.w_inv = ternary_inverse_scale(pw, wv.numel());
  s.w_codes.resize(static_cast<size_t>(wv.numel()));
  int8_t* codes = s.w_codes.data();
  const auto& k = kernels::train_kernels();
  bitnet::detail::parallel_elements(wv.numel(), [&](int64_t b, int64_t e) { k.ternary_codes(pw + b, e - b, s.w_inv, codes + b); });
  const TernaryMatrix packed = TernaryMatrix::pack(codes, s.out, s.in, 1.0f / s.w_inv);

  Shape out_shape = x.shape();
  out_shape.back() = s.out;
  Tensor y = Tensor::empty(out_shape);
  ternary_matmul(packed, s.x, y.data_as<float>(), s.out);

  const Shape x_shape = x.shape();
  const bool gx = x.requires_grad(), gw = w.requires_grad();
  return autograd::make_result(std::move(y), "bitlinear_int8", {x, w}, [saved, x_shape, gx, gw](const Tensor& g) {
    const Tensor g2 = g.contiguous().reshape({saved->tokens, saved->out});
    return std::vector<Tensor>{gx ? bitnet::matmul(g2, weight_operand(*saved)).reshape(x_shape) : Tensor(),
                               gw ? bitnet::matmul(g2.t(), activation_operand(*saved)) : Tensor()};
  });
}

}  // namespace bitnet::nn::detail
