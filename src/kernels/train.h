#pragma once
// Internal: the "train" kernel family: the elementwise loops of a quantization-aware training step that
// run over every weight or activation each step (ternary codes, their f32 operands, the AdamW update).
// One template (train_impl.h) compiled with each ISA's flags, FMA contraction off, so that every variant
// gives the reference's bits: each element is the same sequence of IEEE operations.
#include <cstdint>

#include "kernels/dispatch.h"

namespace bitnet::kernels {

struct AdamWArgs {
  float decay;         // 1 - lr * weight_decay
  float one_minus_b1;  // 1 - beta1
  float b2;            // beta2
  float one_minus_b2;  // 1 - beta2
  float bc2_sqrt;      // sqrt(1 - beta2^t)
  float eps;
  float step_size;     // lr / (1 - beta1^t)
};

struct TrainKernels {
  // codes[i] = clamp(round_half_even(w[i] * inv), -1, 1): absmean ternary quantization at scale 1 / inv.
  void (*ternary_codes)(const float* w, int64_t n, float inv, int8_t* codes);
  // out[i] = q[i] / inv: the f32 value of a quantized code, divided as the reference divides.
  void (*codes_to_f32)(const int8_t* q, int64_t n, float inv, float* out);
  // torch.optim.AdamW's update of p, exp_avg m and exp_avg_sq v from gradient g, in f32.
  void (*adamw)(float* p, const float* g, float* m, float* v, int64_t n, const AdamWArgs& a);
};

const Family<TrainKernels>& train_family();
inline const TrainKernels& train_kernels() { return train_family().get(); }

}  // namespace bitnet::kernels
