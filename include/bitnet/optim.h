#pragma once
// Optimizers for training: AdamW with parameter groups (decoupled weight decay, applied only to the groups
// that ask for it) and global-norm gradient clipping.
#include <bitnet/nn.h>

#include <map>
#include <string>
#include <vector>

namespace bitnet::optim {

struct ParamGroup {
  std::string name;
  std::vector<nn::NamedParameter> params;
  bool weight_decay = true;  // false: the group never decays (norm gains, embeddings)
};

// Two groups: "decay" (projection and lm_head weights) and "no_decay" (norm gains and embeddings), the
// usual LLaMA / BitNet split.
std::vector<ParamGroup> default_param_groups(const nn::Module& model);

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;  // for groups with weight_decay = true
};

// AdamW as torch.optim.AdamW computes it (f32 state, bias-corrected, eps added after the square root):
//   p *= 1 - lr * wd;  m += (1 - b1)(g - m);  v = b2 v + (1 - b2) g^2
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// t counts optimizer steps; a parameter without a gradient in a step is left untouched.
class AdamW {
 public:
  AdamW(std::vector<ParamGroup> groups, AdamWOptions options = {});

  void step();
  void zero_grad();
  void set_lr(double lr) { options_.lr = lr; }
  void set_weight_decay(double wd) { options_.weight_decay = wd; }
  const AdamWOptions& options() const { return options_; }
  int64_t step_count() const { return step_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }

  // The moment estimates by name ("exp_avg.<param>", "exp_avg_sq.<param>") for checkpoints.
  std::map<std::string, Tensor> state_dict() const;
  void load_state_dict(const std::map<std::string, Tensor>& state, int64_t step_count);

 private:
  struct Slot {
    Tensor exp_avg, exp_avg_sq;
  };
  std::vector<ParamGroup> groups_;
  std::vector<std::vector<Slot>> slots_;  // per group, per parameter
  AdamWOptions options_;
  int64_t step_ = 0;
};

// Scales every gradient by min(1, max_norm / (norm + 1e-6)), norm being the global L2 norm over all of them
// (torch.nn.utils.clip_grad_norm_). Returns the norm before clipping. Parameters without a gradient count 0.
double clip_grad_norm(const std::vector<autograd::Var>& params, double max_norm);

}  // namespace bitnet::optim
