#pragma once
// Finite-difference gradient checking for autograd tests. The function under test is reduced to the scalar
// L = sum(f(inputs) * R) with a fixed random R, so every output element's gradient path is exercised; L is
// summed in double to keep the finite differences clean of f32 summation noise.
#include <bitnet/autograd.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "test_util.h"

namespace bitnet::test {

using GradFn = std::function<autograd::Var(const std::vector<autograd::Var>&)>;

struct GradCheckOptions {
  double eps = 1e-3;   // central difference step
  double atol = 1e-3;  // absolute tolerance
  double rtol = 2e-3;  // relative tolerance (of the larger magnitude)
};

inline double weighted_sum(const Tensor& out, const std::vector<float>& r) {
  const std::vector<float> v = out.to_vector();
  double s = 0.0;
  for (size_t i = 0; i < v.size(); ++i) s += static_cast<double>(v[i]) * r[i];
  return s;
}

// Checks d L / d input for every element of every input against central differences. Returns the largest
// absolute difference seen (the test also fails on the first element outside the tolerance).
inline double check_gradients(const GradFn& f, std::vector<Tensor> inputs, std::mt19937& rng,
                              GradCheckOptions opt = {}, const std::string& what = "") {
  for (auto& t : inputs) t = t.contiguous().clone();
  std::vector<autograd::Var> vars;
  for (const auto& t : inputs) vars.push_back(autograd::Var::parameter(t));
  autograd::Var out = f(vars);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> r(static_cast<size_t>(out.numel()));
  for (auto& x : r) x = dist(rng);
  out.backward(Tensor::from_vector(r, out.shape()));

  double worst = 0.0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor analytic = vars[i].grad();
    EXPECT_TRUE(analytic.defined()) << what << ": input " << i << " got no gradient";
    if (!analytic.defined()) continue;
    float* p = inputs[i].data_as<float>();
    for (int64_t j = 0; j < inputs[i].numel(); ++j) {
      const float saved = p[j];
      auto loss_at = [&](double delta) {
        p[j] = static_cast<float>(saved + delta);
        autograd::NoGradGuard no_grad;
        std::vector<autograd::Var> cvars;
        for (const auto& t : inputs) cvars.push_back(autograd::Var(t));
        return weighted_sum(f(cvars).value(), r);
      };
      // The perturbation actually applied in f32, so the quotient divides by the true step.
      const double up = static_cast<float>(saved + opt.eps) - static_cast<double>(saved);
      const double down = static_cast<double>(saved) - static_cast<float>(saved - opt.eps);
      const double numeric = (loss_at(opt.eps) - loss_at(-opt.eps)) / (up + down);
      p[j] = saved;
      const double a = analytic.data_as<float>()[j];
      const double diff = std::fabs(a - numeric);
      worst = std::max(worst, diff);
      if (diff > opt.atol + opt.rtol * std::max(std::fabs(a), std::fabs(numeric))) {
        ADD_FAILURE() << what << ": input " << i << " element " << j << ": analytic " << a << " vs numeric "
                      << numeric;
        return worst;
      }
    }
  }
  return worst;
}

// Random values kept at least `gap` away from zero: activations with a kink at 0 (relu) have no
// derivative there, and a finite difference across the kink is meaningless.
inline Tensor random_away_from_zero(const Shape& shape, std::mt19937& rng, float gap = 0.05f) {
  Tensor t = random_tensor(shape, rng);
  float* p = t.data_as<float>();
  for (int64_t i = 0; i < t.numel(); ++i)
    if (std::fabs(p[i]) < gap) p[i] = p[i] < 0 ? -gap - 0.1f : gap + 0.1f;
  return t;
}

}  // namespace bitnet::test
