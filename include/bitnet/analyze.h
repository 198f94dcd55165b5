#pragma once
// Quantization diagnostics of a trained model (latent weights, e.g. a training checkpoint), per BitLinear:
// how far the quantized weights are from the latent ones, how far the layer's quantized output is from its
// full-precision output on sample inputs, the share of zero weights, and how many ternary weights flipped
// since an earlier checkpoint (training.md §4: the flip rate is the key diagnostic of LR / WD trouble).
#include <bitnet/nn.h>
#include <bitnet/quant.h>

#include <string>
#include <vector>

namespace bitnet::train {

struct LayerAnalysis {
  std::string name;  // "model.layers.0.self_attn.q_proj"
  int64_t rows = 0, cols = 0;
  std::string weight_quant, act_quant;
  QuantError weight;     // latent W vs fake-quantized Q(W)
  QuantError output;     // x W^T vs Qa(x) Q(W)^T, x = the layer's inputs on the sample tokens
  double zero_fraction = 0.0;  // quantized weights that are 0
  int64_t flips = -1;          // weights whose sign class (-, 0, +) changed since the earlier model; -1: none given
  double flip_fraction = 0.0;
};

// Layers ranked by sensitivity: lowest output SQNR first. `sample_ids` i32 [batch, seq] run through the model
// (its own quantized forward) to collect each layer's inputs. `earlier` (optional) is the same architecture
// at an earlier checkpoint. For ternary weights the sign class is the ternary code, so flips counts changed
// ternary weights exactly.
std::vector<LayerAnalysis> analyze_model(const nn::CausalLM& lm, const Tensor& sample_ids,
                                         const nn::CausalLM* earlier = nullptr);

// Every BitLinear of the model with its name ("model.layers.0.self_attn.q_proj"), in layer order.
std::vector<std::pair<std::string, std::shared_ptr<nn::BitLinear>>> named_bit_linears(const nn::CausalLM& lm);

// The sign class (-, 0, +) of every quantized weight of every BitLinear, in order, 2 bits each (a 2B-parameter
// model's snapshot is 0.6 GB, not 2.4); two of them give the share of weights that flipped between them (the
// trainer logs it every log interval).
struct SignClasses {
  std::vector<uint8_t> packed;  // four weights per byte, the unused end of the last byte zero
  int64_t count = 0;
};
SignClasses quantized_sign_classes(const nn::CausalLM& lm);
double flipped_fraction(const SignClasses& before, const SignClasses& now);

// A fixed-width table, one row per layer in the given order.
std::string format_analysis(const std::vector<LayerAnalysis>& layers);

}  // namespace bitnet::train
