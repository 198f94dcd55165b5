// The training step: schedule, lambda, micro-batches with gradient accumulation, data parallelism across ranks
// (gradients averaged in buckets during the last backward pass), clipping, AdamW.
#include <bitnet/train.h>

#include <limits>

#include "train/grad_buckets.h"

namespace bitnet::train {

Trainer::Trainer(nn::CausalLM& model, const TokenBatcher& data, TrainOptions options, Communicator* comm)
    : model_(model), data_(data), options_(std::move(options)),
      optimizer_(optim::default_param_groups(model), options_.adam), comm_(comm) {
  BITNET_CHECK(options_.total_steps > 0 && options_.grad_accum > 0,
               "[Trainer] total_steps and grad_accum must be positive, got {} and {}", options_.total_steps,
               options_.grad_accum);
  BITNET_CHECK(options_.clip_norm >= 0.0, "[Trainer] clip_norm must be >= 0 (0 disables), got {}", options_.clip_norm);
  BITNET_CHECK(static_cast<bool>(options_.schedule), "[Trainer] a schedule is required");
  if (comm_ != nullptr && comm_->size() > 1) {
    BITNET_CHECK(data_.batch_size() % comm_->size() == 0,
                 "[train] data.batch_size {} does not split across {} ranks: it is the global batch, each rank takes "
                 "batch_size / ranks rows (use a multiple of {})", data_.batch_size(), comm_->size(), comm_->size());
    buckets_ = std::make_unique<GradientBuckets>(model_.parameters(), *comm_, options_.bucket_bytes);
    comm_->ordered = options_.ordered_reduction;
  }
}

Trainer::~Trainer() = default;

StepResult Trainer::step() {
  BITNET_CHECK(!done(), "[Trainer] all {} steps are done", options_.total_steps);
  const int64_t s = state_.step;
  const ScheduleValues sv = options_.schedule(s);
  optimizer_.set_lr(sv.lr);
  optimizer_.set_weight_decay(sv.weight_decay);
  model_.set_quant_lambda(options_.quant_lambda(s));
  model_.train();
  optimizer_.zero_grad();
  const int ranks = buckets_ ? comm_->size() : 1;
  const int64_t rows = data_.batch_size() / ranks, first_row = buckets_ ? comm_->rank() * rows : 0;
  double total = 0.0;
  for (int64_t m = 0; m < options_.grad_accum; ++m) {
    const Batch b = data_.batch(s * options_.grad_accum + m, first_row, rows);
    autograd::Var loss = model_.loss(b.inputs, b.targets);
    total += loss.item();
    if (options_.grad_accum > 1) loss = loss * (1.0 / static_cast<double>(options_.grad_accum));
    if (buckets_ && m + 1 == options_.grad_accum) {
      // The last micro-batch: each bucket's sum across ranks starts as soon as its gradients are final.
      buckets_->reset();
      loss.backward(Tensor::ones(loss.shape()), [this](const autograd::VarImpl* leaf) { buckets_->ready(leaf); });
    } else {
      loss.backward();
    }
  }
  if (buckets_) {
    buckets_->finish();  // every gradient is now the mean over the ranks
    total = comm_->sum(total) / static_cast<double>(ranks);
  }
  const double max_norm = options_.clip_norm > 0.0 ? options_.clip_norm : std::numeric_limits<double>::infinity();
  const double norm = optim::clip_grad_norm(model_.parameters(), max_norm);
  optimizer_.step();
  ++state_.step;
  state_.optimizer_step = optimizer_.step_count();
  return {s, total / static_cast<double>(options_.grad_accum), norm, sv.lr, sv.weight_decay};
}

double Trainer::evaluate(const TokenBatcher& data, int64_t batches) const {
  BITNET_CHECK(batches > 0, "[Trainer] evaluate needs at least one batch, got {}", batches);
  autograd::NoGradGuard no_grad;
  double total = 0.0;
  for (int64_t i = 0; i < batches; ++i) {
    const Batch b = data.batch(i);
    total += model_.loss(b.inputs, b.targets).item();
  }
  return total / static_cast<double>(batches);
}

}  // namespace bitnet::train
