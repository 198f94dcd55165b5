#pragma once
// The training loop's pieces: learning-rate / weight-decay schedules (BitNet's two-stage recipe and
// cosine), the lambda phase-in schedule for converting a full-precision model, a token batcher whose order
// is a pure function of (seed, step), checkpoints that resume bit-exactly, and a Trainer that ties them
// together with gradient accumulation and clipping. Recipe and sources: ../shared/specs/training.md §1.2.
#include <bitnet/distributed.h>
#include <bitnet/nn.h>
#include <bitnet/optim.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace bitnet::train {

struct ScheduleValues {
  double lr;
  double weight_decay;
};
// A per-step schedule (step counts optimizer steps from 0), as ggml-opt's get_opt_pars callback.
using Schedule = std::function<ScheduleValues(int64_t step)>;

enum class DecayShape : uint8_t { linear, cosine };

// BitNet b1.58's two-stage schedule. Stage 1 (step < boundary * total): linear warmup to peak_lr over
// warmup_steps, then decay (linear or cosine) to stage1_end_ratio * peak_lr at the boundary; weight decay
// stage1_wd. Stage 2: the rate restarts at stage2_ratio * peak_lr (the "drop to 2/3" of the Training Tips)
// and decays to final_ratio * peak_lr at the last step; weight decay stage2_wd (0: let it converge).
struct TwoStageSchedule {
  double peak_lr = 1.5e-3;
  int64_t warmup_steps = 375;
  int64_t total_steps = 10000;
  double boundary = 0.5;
  double stage1_end_ratio = 1.0;
  double stage2_ratio = 2.0 / 3.0;
  double final_ratio = 0.01;
  DecayShape shape = DecayShape::linear;
  double stage1_wd = 0.1;
  double stage2_wd = 0.0;
  // Stage-1 weight decay: constant (the Training Tips PDF), or cosine as in the 2B4T report (§3.1.2, "a cosine
  // schedule peaking at 0.1"): stage1_wd * (1 + cos(pi * step / boundary_step)) / 2, from the peak at step 0
  // towards 0 at the boundary, where stage 2's value takes over.
  bool stage1_wd_cosine = false;

  int64_t boundary_step() const;
  ScheduleValues operator()(int64_t step) const;
  void validate() const;
};

// Linear warmup to peak_lr, then cosine decay to min_lr at total_steps; constant weight decay.
struct CosineSchedule {
  double peak_lr = 1e-3;
  int64_t warmup_steps = 100;
  int64_t total_steps = 10000;
  double min_lr = 0.0;
  double weight_decay = 0.1;

  ScheduleValues operator()(int64_t step) const;
  void validate() const;
};

// Lambda for phasing quantization in (HF "extreme quantization" blog): linear min(step / warmup, 1);
// exponential (e^(k t) - 1) / (e^k - 1); sigmoid 1 / (1 + e^(-k (t - 1/2))) rescaled to hit 0 and 1, with
// t = step / warmup clamped to [0, 1]. warmup_steps = 0 means fully quantized from step 0.
enum class LambdaShape : uint8_t { linear, exponential, sigmoid };
struct LambdaSchedule {
  int64_t warmup_steps = 0;
  LambdaShape shape = LambdaShape::linear;
  double k = 8.0;
  float operator()(int64_t step) const;
};

// Windows of seq_len + 1 tokens (inputs and next-token targets) cut from one token stream at stride
// seq_len. Each epoch visits every window once in an order shuffled from (seed, epoch), so batch(step)
// is a pure function: resuming at a step needs no data-loader state. Not thread-safe (it caches the
// current epoch's order).
struct Batch {
  Tensor inputs;   // i32 [batch, seq_len]
  Tensor targets;  // i32 [batch, seq_len]
};
class TokenBatcher {
 public:
  TokenBatcher(std::vector<int32_t> tokens, int64_t batch_size, int64_t seq_len, uint64_t seed);
  Batch batch(int64_t index) const;
  // Rows [row_begin, row_begin + rows) of batch(index): one rank's share of the global batch under data
  // parallelism, the same windows batch(index) holds there.
  Batch batch(int64_t index, int64_t row_begin, int64_t rows) const;
  int64_t windows() const { return windows_; }
  int64_t batch_size() const { return batch_size_; }
  int64_t seq_len() const { return seq_len_; }

 private:
  const std::vector<int64_t>& order(int64_t epoch) const;
  std::vector<int32_t> tokens_;
  int64_t batch_size_, seq_len_, windows_;
  uint64_t seed_;
  mutable int64_t cached_epoch_ = -1;
  mutable std::vector<int64_t> cached_order_;
};

// Checkpoints: one safetensors file (f32 tensors) holding the model parameters under their state-dict
// names and the optimizer moments under "optimizer.exp_avg.<name>" / "optimizer.exp_avg_sq.<name>", with
// the step counters in the header's __metadata__. Everything a step depends on is in it, so a resumed run is bit-identical.
struct TrainState {
  int64_t step = 0;            // optimizer steps done
  int64_t optimizer_step = 0;  // AdamW's t (equal to step unless the optimizer was swapped)
};
void save_checkpoint(const std::string& path, const nn::Module& model, const optim::AdamW& optimizer,
                     const TrainState& state);
TrainState load_checkpoint(const std::string& path, nn::Module& model, optim::AdamW& optimizer);
// The model's latent weights by state-dict name from a training checkpoint (optimizer moments dropped) or a
// run's final model.safetensors; `step` (optional) gets the checkpoint's step, -1 for model.safetensors.
std::map<std::string, Tensor> load_checkpoint_weights(const std::string& path, int64_t* step = nullptr);

// A small private safetensors codec for f32 tensors (the checkpoint format); the project's full IO lives
// in bitnet::io. Throws bitnet::Error naming the file on anything malformed.
void write_safetensors_f32(const std::string& path, const std::map<std::string, Tensor>& tensors,
                           const std::map<std::string, std::string>& metadata);
std::map<std::string, Tensor> read_safetensors_f32(const std::string& path, std::map<std::string, std::string>* metadata);

struct TrainOptions {
  int64_t total_steps = 1000;
  int64_t grad_accum = 1;   // micro-batches per optimizer step (their losses are averaged)
  double clip_norm = 1.0;   // 0 disables clipping
  Schedule schedule = TwoStageSchedule{};
  LambdaSchedule quant_lambda;  // warmup_steps 0: fully quantized throughout
  optim::AdamWOptions adam;
  // Data parallelism (bitnet/distributed.h): gradients are summed across ranks in buckets of about this size.
  int64_t bucket_bytes = int64_t{25} << 20;
  // Sum the ranks' gradients in rank order (Communicator::ordered): bit for bit one process accumulating them.
  bool ordered_reduction = false;
};

struct StepResult {
  int64_t step;      // the optimizer step just taken (0-based)
  double loss;       // mean over the micro-batches
  double grad_norm;  // before clipping
  double lr;
  double weight_decay;
};

class GradientBuckets;

class Trainer {
 public:
  // The model and batcher must outlive the trainer. Optimizer groups: optim::default_param_groups.
  // `comm` (optional, must outlive the trainer): data parallelism across its ranks. Each rank takes rows
  // [rank * b, (rank + 1) * b) of every global batch (b = batch_size / ranks), the gradients are averaged across
  // ranks while the last micro-batch's backward pass runs, and every rank takes the same optimizer step: the
  // run computes what one process computes with the whole batch.
  Trainer(nn::CausalLM& model, const TokenBatcher& data, TrainOptions options, Communicator* comm = nullptr);
  ~Trainer();
  StepResult step();
  int64_t steps_done() const { return state_.step; }
  bool done() const { return state_.step >= options_.total_steps; }
  // Mean loss over `batches` batches of `data` (no graph, no update).
  double evaluate(const TokenBatcher& data, int64_t batches) const;
  void save(const std::string& path) const { save_checkpoint(path, model_, optimizer_, state_); }
  void load(const std::string& path) { state_ = load_checkpoint(path, model_, optimizer_); }
  optim::AdamW& optimizer() { return optimizer_; }

 private:
  nn::CausalLM& model_;
  const TokenBatcher& data_;
  TrainOptions options_;
  optim::AdamW optimizer_;
  TrainState state_;
  Communicator* comm_ = nullptr;
  std::unique_ptr<GradientBuckets> buckets_;
};

}  // namespace bitnet::train
