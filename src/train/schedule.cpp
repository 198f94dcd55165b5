// Learning-rate / weight-decay schedules and the quantization lambda schedule.
#include <bitnet/train.h>

#include <algorithm>
#include <cmath>
#include <numbers>

namespace bitnet::train {

namespace {
// From a at t = 0 to b at t = 1.
double interpolate(double a, double b, double t, DecayShape shape) {
  t = std::clamp(t, 0.0, 1.0);
  if (shape == DecayShape::linear) return a + (b - a) * t;
  return b + (a - b) * 0.5 * (1.0 + std::cos(std::numbers::pi * t));
}
}  // namespace

int64_t TwoStageSchedule::boundary_step() const {
  return static_cast<int64_t>(std::llround(boundary * static_cast<double>(total_steps)));
}

void TwoStageSchedule::validate() const {
  BITNET_CHECK(total_steps > 1 && peak_lr > 0.0, "[TwoStageSchedule] needs total_steps > 1 and peak_lr > 0, got {} and {}",
               total_steps, peak_lr);
  BITNET_CHECK(boundary > 0.0 && boundary < 1.0, "[TwoStageSchedule] boundary must be in (0, 1), got {}", boundary);
  BITNET_CHECK(warmup_steps >= 0 && warmup_steps < boundary_step(),
               "[TwoStageSchedule] warmup_steps ({}) must end before the stage boundary (step {})", warmup_steps,
               boundary_step());
}

ScheduleValues TwoStageSchedule::operator()(int64_t step) const {
  validate();
  const int64_t b = boundary_step();
  if (step < b) {
    const double wd = stage1_wd_cosine ? interpolate(stage1_wd, 0.0, static_cast<double>(step) / static_cast<double>(b),
                                                     DecayShape::cosine)
                                       : stage1_wd;
    if (step < warmup_steps)
      return {peak_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps), wd};
    const double t = static_cast<double>(step - warmup_steps) / static_cast<double>(std::max<int64_t>(1, b - warmup_steps));
    return {interpolate(peak_lr, stage1_end_ratio * peak_lr, t, shape), wd};
  }
  const double t = static_cast<double>(step - b) / static_cast<double>(std::max<int64_t>(1, total_steps - 1 - b));
  return {interpolate(stage2_ratio * peak_lr, final_ratio * peak_lr, t, shape), stage2_wd};
}

void CosineSchedule::validate() const {
  BITNET_CHECK(total_steps > 0 && peak_lr > 0.0 && min_lr >= 0.0 && warmup_steps >= 0 && warmup_steps < total_steps,
               "[CosineSchedule] needs peak_lr > 0, min_lr >= 0 and 0 <= warmup_steps < total_steps; got {}, {}, {}, {}",
               peak_lr, min_lr, warmup_steps, total_steps);
}

ScheduleValues CosineSchedule::operator()(int64_t step) const {
  validate();
  if (step < warmup_steps)
    return {peak_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps), weight_decay};
  const double t =
      static_cast<double>(step - warmup_steps) / static_cast<double>(std::max<int64_t>(1, total_steps - 1 - warmup_steps));
  return {interpolate(peak_lr, min_lr, t, DecayShape::cosine), weight_decay};
}

float LambdaSchedule::operator()(int64_t step) const {
  if (warmup_steps <= 0) return 1.0f;
  const double t = std::clamp(static_cast<double>(step) / static_cast<double>(warmup_steps), 0.0, 1.0);
  switch (shape) {
    case LambdaShape::linear: return static_cast<float>(t);
    case LambdaShape::exponential: return static_cast<float>(std::expm1(k * t) / std::expm1(k));
    case LambdaShape::sigmoid: {
      auto s = [this](double x) { return 1.0 / (1.0 + std::exp(-k * (x - 0.5))); };
      return static_cast<float>(std::clamp((s(t) - s(0.0)) / (s(1.0) - s(0.0)), 0.0, 1.0));
    }
  }
  return 1.0f;
}

}  // namespace bitnet::train
