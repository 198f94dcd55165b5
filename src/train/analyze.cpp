// Per-layer quantization diagnostics: weight and output error (MSE, SQNR, cosine), zeros, flips.
#include <bitnet/analyze.h>
#include <bitnet/error.h>
#include <bitnet/ops.h>

#include <algorithm>
#include <cmath>

namespace bitnet::train {

namespace {

int sign_class(float v) { return v > 0.0f ? 1 : (v < 0.0f ? -1 : 0); }

}  // namespace

std::vector<LayerAnalysis> analyze_model(const nn::CausalLM& lm, const Tensor& sample_ids, const nn::CausalLM* earlier) {
  const auto layers = named_bit_linears(lm);
  std::vector<std::pair<std::string, std::shared_ptr<nn::BitLinear>>> before;
  if (earlier) {
    before = named_bit_linears(*earlier);
    BITNET_CHECK(before.size() == layers.size(), "[analyze] the earlier model has {} projections, this one {}",
                 before.size(), layers.size());
  }
  // One forward pass collects every projection's input.
  std::vector<Tensor> inputs(layers.size());
  for (size_t i = 0; i < layers.size(); ++i) layers[i].second->capture_input(&inputs[i]);
  {
    autograd::NoGradGuard no_grad;
    lm.forward(sample_ids);
  }
  for (const auto& [name, layer] : layers) layer->capture_input(nullptr);

  std::vector<LayerAnalysis> out;
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& [name, layer] = layers[i];
    const nn::BitLinearOptions& o = layer->options();
    const Tensor& w = layer->weight.value();
    const Tensor wq = nn::fake_quantize(w, o.weight_quant).contiguous();
    LayerAnalysis a;
    a.name = name;
    a.rows = w.size(0);
    a.cols = w.size(1);
    a.weight_quant = o.weight_quant.str();
    a.act_quant = o.act_quant.str();
    a.weight = quant_error(w, wq);
    const float* q = wq.data_as<float>();
    int64_t zeros = 0;
    for (int64_t k = 0; k < wq.numel(); ++k) zeros += q[k] == 0.0f;
    a.zero_fraction = static_cast<double>(zeros) / static_cast<double>(wq.numel());
    if (earlier) {
      const Tensor& w0 = before[i].second->weight.value();
      BITNET_CHECK(w0.shape() == w.shape(), "[analyze] {}: earlier weight is {}, now {}", name, w0.str(), w.str());
      const Tensor q0 = nn::fake_quantize(w0, before[i].second->options().weight_quant).contiguous();
      const float* p0 = q0.data_as<float>();
      a.flips = 0;
      for (int64_t k = 0; k < wq.numel(); ++k) a.flips += sign_class(q[k]) != sign_class(p0[k]);
      a.flip_fraction = static_cast<double>(a.flips) / static_cast<double>(wq.numel());
    }
    // Outputs on the collected inputs [B, T, in] -> [B*T, in].
    const Tensor x = inputs[i].contiguous().reshape({inputs[i].numel() / a.cols, a.cols});
    const Tensor xq = nn::fake_quantize(x, o.act_quant);
    const Tensor y_fp = matmul(x, w.transpose(0, 1));
    const Tensor y_q = matmul(xq, wq.transpose(0, 1));
    a.output = quant_error(y_fp, y_q);
    out.push_back(std::move(a));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const LayerAnalysis& a, const LayerAnalysis& b) { return a.output.sqnr_db < b.output.sqnr_db; });
  return out;
}

std::string format_analysis(const std::vector<LayerAnalysis>& layers) {
  std::string s = fmt::format("{:<4} {:<34} {:>11} {:>10} {:>8} {:>7} {:>10} {:>8} {:>7} {:>6} {:>14}\n", "rank",
                              "layer", "shape", "w MSE", "w SQNR", "w cos", "out MSE", "out SQNR", "out cos",
                              "zeros", "flips");
  int rank = 1;
  for (const auto& a : layers) {
    const std::string flips =
        a.flips < 0 ? "-" : fmt::format("{} ({:.2f}%)", a.flips, 100.0 * a.flip_fraction);
    s += fmt::format("{:<4} {:<34} {:>11} {:>10.3e} {:>8.2f} {:>7.4f} {:>10.3e} {:>8.2f} {:>7.4f} {:>5.1f}% {:>14}\n",
                     rank++, a.name, fmt::format("{}x{}", a.rows, a.cols), a.weight.mse, a.weight.sqnr_db,
                     a.weight.cosine, a.output.mse, a.output.sqnr_db, a.output.cosine, 100.0 * a.zero_fraction, flips);
  }
  return s;
}

}  // namespace bitnet::train
