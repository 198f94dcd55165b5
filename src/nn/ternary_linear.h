#pragma once
// Internal: BitLinear's fully quantized forward (lambda = 1, ternary per-tensor weights, int8 per-token
// activations) on the inference engine's int8 x ternary kernels instead of an f32 GEMM of fake-quantized
// operands. The backward is the straight-through estimator's, exactly as in the fake-quantized path.
#include <bitnet/autograd.h>
#include <bitnet/nn.h>

namespace bitnet::nn::detail {

// Whether BitLinear with these options, at this lambda, takes the integer path.
bool int8_ternary_path(const BitLinearOptions& options, float lambda, int64_t in_features);

// y = Qa(x) Qw(w)^T for x [..., in] and w [out, in]: the products summed exactly in int32 and scaled once.
// Gradients: dx = g Qw(w) and dw = g^T Qa(x), with Qa and Qw the f32 fake-quantized operands (STE).
autograd::Var int8_ternary_linear(const autograd::Var& x, const autograd::Var& w);

}  // namespace bitnet::nn::detail
