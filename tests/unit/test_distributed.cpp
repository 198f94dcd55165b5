// Data parallelism's pieces that run in one process: the backward pass's leaf_ready callback (each leaf once,
// when its gradient is final) and the gradient buckets (packed in reverse parameter order, summed by the
// communicator, written back as the mean). The ranks themselves are tested under mpirun (tests/mpi).
#include <bitnet/autograd.h>
#include <bitnet/distributed.h>
#include <gtest/gtest.h>

#include <map>

#include "train/grad_buckets.h"

namespace bitnet::train {
namespace {

using autograd::Var;

Tensor filled(const Shape& shape, float start) {
  Tensor t = Tensor::empty(shape, DType::f32);
  for (int64_t i = 0; i < t.numel(); ++i) static_cast<float*>(t.data())[i] = start + 0.25f * static_cast<float>(i);
  return t;
}

TEST(Distributed, LeafReadyReportsEachLeafOnceWithItsFinalGradient) {
  const Var w = Var::parameter(filled({3}, 1.0f));
  const Var b = Var::parameter(filled({3}, -1.0f));
  const Var unused = Var::parameter(filled({3}, 0.0f));
  const Var x(filled({3}, 2.0f)), y(filled({3}, -0.5f));
  // w is used twice: it is ready only after both uses have passed their gradient back.
  const Var loss = autograd::sum(autograd::add(autograd::add(autograd::mul(w, x), autograd::mul(w, y)), autograd::mul(b, b)));
  std::map<const autograd::VarImpl*, std::vector<float>> seen;
  loss.backward(Tensor::ones(loss.shape()), [&](const autograd::VarImpl* leaf) {
    EXPECT_EQ(seen.count(leaf), 0u) << "reported twice";
    const float* g = static_cast<const float*>(leaf->grad.data());
    seen[leaf] = std::vector<float>(g, g + leaf->grad.numel());
  });
  ASSERT_EQ(seen.size(), 2u);  // w and b; the unused parameter is never reached
  for (const Var& p : {w, b}) {
    const auto& at_report = seen.at(p.impl().get());
    const float* final_grad = static_cast<const float*>(p.grad().data());
    for (int64_t i = 0; i < 3; ++i) EXPECT_EQ(at_report[static_cast<size_t>(i)], final_grad[i]);
  }
  EXPECT_FLOAT_EQ(static_cast<const float*>(w.grad().data())[0], 2.0f - 0.5f);
  EXPECT_FALSE(unused.grad().defined());
}

// Two ranks whose gradients are this rank's times `other`: sums are (1 + other) x, the mean (1 + other) / 2 x.
class FakeTwoRanks final : public Communicator {
 public:
  explicit FakeTwoRanks(float other) : other_(other) {}
  int rank() const override { return 0; }
  int size() const override { return 2; }
  std::string backend() const override { return "fake"; }
  void start_sum(float* data, int64_t n) override {
    sizes.push_back(n);
    for (int64_t i = 0; i < n; ++i) data[i] *= 1.0f + other_;
  }
  void progress() override {}
  void wait_all() override {}
  double sum(double v) override { return v * (1.0 + other_); }
  void barrier() override {}
  std::vector<int64_t> sizes;

 private:
  float other_;
};

TEST(Distributed, BucketsPackInReverseOrderAndWriteTheMeanBack) {
  std::vector<Var> params;
  for (int i = 0; i < 5; ++i) params.push_back(Var::parameter(filled({10 + i}, static_cast<float>(i))));
  for (size_t i = 0; i + 1 < params.size(); ++i) params[i].set_grad(filled(params[i].shape(), 0.5f * static_cast<float>(i)));
  // params[4] has no gradient (no batch row reached it): it contributes zeros and gets a zero mean.
  FakeTwoRanks comm(3.0f);
  GradientBuckets buckets(params, comm, /*bucket_bytes=*/100);  // a bucket closes at 25 floats or more
  buckets.reset();
  // The backward pass finishes the last parameters first; buckets start as they fill.
  for (auto it = params.rbegin(); it != params.rend(); ++it) buckets.ready(it->impl().get());
  buckets.finish();
  // 14 + 13 floats reach 100 bytes and close the first bucket; 12 + 11 + 10 the second.
  EXPECT_EQ(buckets.buckets(), 2u);
  EXPECT_EQ(comm.sizes, (std::vector<int64_t>{14 + 13, 12 + 11 + 10}));
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor want = i + 1 < params.size() ? filled(params[i].shape(), 0.5f * static_cast<float>(i)) : Tensor::zeros(params[i].shape());
    for (int64_t k = 0; k < params[i].numel(); ++k)
      EXPECT_EQ(static_cast<const float*>(params[i].grad().data())[k], 2.0f * static_cast<const float*>(want.data())[k])
          << "param " << i << " element " << k;  // mean of x and 3x
  }
}

TEST(Distributed, OneProcessAloneIsTheWorld) {
  // Without mpirun (or with one rank) the world is this process: sums are the value itself.
  Communicator& w = world();
  EXPECT_EQ(w.size(), 1);
  EXPECT_EQ(w.rank(), 0);
  EXPECT_EQ(w.sum(2.5), 2.5);
}

}  // namespace
}  // namespace bitnet::train
