// The basic layers: Linear, BitLinear (QAT with STE), Embedding, RMSNorm.
#include <bitnet/nn.h>

#include "nn/ternary_linear.h"

namespace bitnet::nn {

Linear::Linear(int64_t in_features, int64_t out_features, InitRng& rng, double init_std) {
  BITNET_CHECK(in_features > 0 && out_features > 0, "[Linear] features must be positive, got in={} out={}",
               in_features, out_features);
  weight = register_parameter("weight", rng.normal_tensor({out_features, in_features}, init_std), ParamKind::weight);
}

Var Linear::forward(const Var& x) const { return autograd::linear(x, weight); }

BitLinear::BitLinear(int64_t in_features, int64_t out_features, InitRng& rng, BitLinearOptions options)
    : options_(options) {
  BITNET_CHECK(in_features > 0 && out_features > 0, "[BitLinear] features must be positive, got in={} out={}",
               in_features, out_features);
  options_.weight_quant.validate();
  options_.act_quant.validate();
  weight = register_parameter("weight", rng.normal_tensor({out_features, in_features}, options.init_std),
                              ParamKind::weight);
  if (options_.with_norm) norm_weight = register_parameter("norm.weight", Tensor::ones({in_features}), ParamKind::norm);
}

void BitLinear::set_quant_lambda(float lambda) {
  BITNET_CHECK(lambda >= 0.0f && lambda <= 1.0f, "[BitLinear] quant lambda must be in [0, 1], got {}", lambda);
  lambda_ = lambda;
}

Var BitLinear::forward(const Var& x) const {
  const Var xn = options_.with_norm ? autograd::rms_norm(x, norm_weight, options_.norm_eps) : x;
  if (capture_) *capture_ = xn.value();
  if (detail::int8_ternary_path(options_, lambda_, weight.size(1))) return detail::int8_ternary_linear(xn, weight);
  const Var xq = fake_quantize(xn, options_.act_quant, lambda_);
  const Var wq = fake_quantize(weight, options_.weight_quant, lambda_);
  return autograd::linear(xq, wq);
}

Embedding::Embedding(int64_t vocab, int64_t dim, InitRng& rng, double init_std) {
  BITNET_CHECK(vocab > 0 && dim > 0, "[Embedding] vocab and dim must be positive, got {} and {}", vocab, dim);
  weight = register_parameter("weight", rng.normal_tensor({vocab, dim}, init_std), ParamKind::embedding);
}

Var Embedding::forward(const Tensor& ids) const { return autograd::embedding(weight, ids); }

RMSNorm::RMSNorm(int64_t dim, float eps_) : eps(eps_) {
  BITNET_CHECK(dim > 0, "[RMSNorm] dim must be positive, got {}", dim);
  weight = register_parameter("weight", Tensor::ones({dim}), ParamKind::norm);
}

Var RMSNorm::forward(const Var& x) const { return autograd::rms_norm(x, weight, eps); }

}  // namespace bitnet::nn
