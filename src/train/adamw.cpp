// AdamW with parameter groups, and global-norm gradient clipping.
#include <bitnet/optim.h>

#include <cmath>

#include "kernels/train.h"
#include "kernels/vector.h"
#include "ops/ops_util.h"

namespace bitnet::optim {

std::vector<ParamGroup> default_param_groups(const nn::Module& model) {
  ParamGroup decay{"decay", {}, true}, no_decay{"no_decay", {}, false};
  for (auto& p : model.named_parameters()) (p.kind == nn::ParamKind::weight ? decay : no_decay).params.push_back(p);
  std::vector<ParamGroup> out;
  for (auto* g : {&decay, &no_decay})
    if (!g->params.empty()) out.push_back(std::move(*g));
  return out;
}

AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions options) : groups_(std::move(groups)), options_(options) {
  BITNET_CHECK(options.lr >= 0.0 && options.eps > 0.0 && options.weight_decay >= 0.0,
               "[AdamW] needs lr >= 0, eps > 0, weight_decay >= 0; got lr={} eps={} weight_decay={}", options.lr,
               options.eps, options.weight_decay);
  BITNET_CHECK(options.beta1 >= 0.0 && options.beta1 < 1.0 && options.beta2 >= 0.0 && options.beta2 < 1.0,
               "[AdamW] betas must be in [0, 1), got ({}, {})", options.beta1, options.beta2);
  for (const auto& g : groups_) {
    std::vector<Slot> s;
    for (const auto& p : g.params) s.push_back({Tensor::zeros(p.var.shape()), Tensor::zeros(p.var.shape())});
    slots_.push_back(std::move(s));
  }
}

void AdamW::zero_grad() {
  for (auto& g : groups_)
    for (auto& p : g.params) p.var.zero_grad();
}

void AdamW::step() {
  ++step_;
  const double bc1 = 1.0 - std::pow(options_.beta1, static_cast<double>(step_));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(options_.beta2, static_cast<double>(step_)));
  kernels::AdamWArgs args{};
  args.step_size = static_cast<float>(options_.lr / bc1);
  args.b2 = static_cast<float>(options_.beta2);
  args.one_minus_b1 = static_cast<float>(1.0 - options_.beta1);
  args.one_minus_b2 = static_cast<float>(1.0 - options_.beta2);
  args.eps = static_cast<float>(options_.eps);
  args.bc2_sqrt = static_cast<float>(bc2_sqrt);
  const auto& k = kernels::train_kernels();
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    args.decay = static_cast<float>(1.0 - options_.lr * (groups_[gi].weight_decay ? options_.weight_decay : 0.0));
    for (size_t pi = 0; pi < groups_[gi].params.size(); ++pi) {
      autograd::Var& var = groups_[gi].params[pi].var;
      if (!var.grad().defined()) continue;
      Tensor value = var.value();
      BITNET_CHECK(value.is_contiguous(), "[AdamW] parameter '{}' must be contiguous", groups_[gi].params[pi].name);
      float* p = value.data_as<float>();
      const float* g = var.grad().data_as<float>();
      float* m = slots_[gi][pi].exp_avg.data_as<float>();
      float* v = slots_[gi][pi].exp_avg_sq.data_as<float>();
      // Elementwise, so the split across threads cannot change a result.
      detail::parallel_elements(value.numel(), [&](int64_t begin, int64_t end) {
        k.adamw(p + begin, g + begin, m + begin, v + begin, end - begin, args);
      });
    }
  }
}

std::map<std::string, Tensor> AdamW::state_dict() const {
  std::map<std::string, Tensor> out;
  for (size_t gi = 0; gi < groups_.size(); ++gi)
    for (size_t pi = 0; pi < groups_[gi].params.size(); ++pi) {
      out.emplace("exp_avg." + groups_[gi].params[pi].name, slots_[gi][pi].exp_avg.clone());
      out.emplace("exp_avg_sq." + groups_[gi].params[pi].name, slots_[gi][pi].exp_avg_sq.clone());
    }
  return out;
}

void AdamW::load_state_dict(const std::map<std::string, Tensor>& state, int64_t step_count) {
  BITNET_CHECK(step_count >= 0, "[AdamW] step count must be non-negative, got {}", step_count);
  for (size_t gi = 0; gi < groups_.size(); ++gi)
    for (size_t pi = 0; pi < groups_[gi].params.size(); ++pi) {
      const std::string& name = groups_[gi].params[pi].name;
      for (auto [key, dst] : {std::pair{"exp_avg." + name, &slots_[gi][pi].exp_avg},
                              std::pair{"exp_avg_sq." + name, &slots_[gi][pi].exp_avg_sq}}) {
        auto it = state.find(key);
        BITNET_CHECK(it != state.end(), "[AdamW] the optimizer state has no '{}'", key);
        BITNET_CHECK(it->second.shape() == dst->shape(), "[AdamW] '{}' has shape {}, expected {}", key,
                     shape_str(it->second.shape()), shape_str(dst->shape()));
        dst->copy_from(it->second);
      }
    }
  step_ = step_count;
}

double clip_grad_norm(const std::vector<autograd::Var>& params, double max_norm) {
  BITNET_CHECK(max_norm > 0.0, "[clip_grad_norm] max_norm must be positive, got {}", max_norm);
  // Each gradient's sum of squares in double by the vector kernel (a fixed order of partial sums, whatever
  // the threads), added in parameter order.
  const auto& vk = kernels::vector_kernels();
  double ss = 0.0;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    ss += vk.sum_sq_dev(p.grad().data_as<float>(), 0.0, p.grad().numel());
  }
  const double norm = std::sqrt(ss);
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0) {
    const auto c = static_cast<float>(coef);
    for (const auto& p : params) {
      if (!p.grad().defined()) continue;
      Tensor g = p.grad();
      float* d = g.data_as<float>();
      detail::parallel_elements(g.numel(), [&](int64_t begin, int64_t end) {
        vk.binary_scalar[static_cast<int>(kernels::BinaryOp::mul)](d + begin, c, d + begin, end - begin);
      });
    }
  }
  return norm;
}

}  // namespace bitnet::optim
