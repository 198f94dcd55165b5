// Data-parallel gradient buckets (see grad_buckets.h).
#include "train/grad_buckets.h"

#include <bitnet/error.h>

#include <algorithm>
#include <cstring>

namespace bitnet::train {

GradientBuckets::GradientBuckets(const std::vector<autograd::Var>& params, Communicator& comm, int64_t bucket_bytes)
    : comm_(comm) {
  BITNET_CHECK(bucket_bytes > 0, "[train] the gradient bucket size must be positive, got {}", bucket_bytes);
  Bucket current;
  int64_t floats = 0;
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    current.params.push_back(*it);
    current.offsets.push_back(floats);
    floats += it->numel();
    if (floats * 4 >= bucket_bytes) {
      current.buffer.resize(static_cast<size_t>(floats));
      buckets_.push_back(std::move(current));
      current = Bucket{};
      floats = 0;
    }
  }
  if (!current.params.empty()) {
    current.buffer.resize(static_cast<size_t>(floats));
    buckets_.push_back(std::move(current));
  }
  for (size_t b = 0; b < buckets_.size(); ++b)
    for (const auto& p : buckets_[b].params) bucket_of_[p.impl().get()] = b;
}

void GradientBuckets::reset() {
  for (Bucket& b : buckets_) {
    b.waiting = b.params.size();
    b.started = false;
  }
}

void GradientBuckets::start(Bucket& b) {
  for (size_t i = 0; i < b.params.size(); ++i) {
    const Tensor& g = b.params[i].grad();
    float* dst = b.buffer.data() + b.offsets[i];
    const int64_t n = b.params[i].numel();
    if (g.defined()) {
      const Tensor c = g.contiguous();
      std::memcpy(dst, c.data(), static_cast<size_t>(n) * 4);
    } else {
      std::fill(dst, dst + n, 0.0f);  // a parameter this rank's batch did not reach contributes zero
    }
  }
  comm_.start_sum(b.buffer.data(), static_cast<int64_t>(b.buffer.size()));
  b.started = true;
}

void GradientBuckets::ready(const autograd::VarImpl* leaf) {
  const auto it = bucket_of_.find(leaf);
  if (it == bucket_of_.end()) return;  // a leaf that is not a trained parameter
  Bucket& b = buckets_[it->second];
  if (b.waiting > 0 && --b.waiting == 0 && !b.started) start(b);
  comm_.progress();
}

void GradientBuckets::finish() {
  for (Bucket& b : buckets_)
    if (!b.started) start(b);
  comm_.wait_all();
  const float inv = 1.0f / static_cast<float>(comm_.size());
  for (Bucket& b : buckets_)
    for (size_t i = 0; i < b.params.size(); ++i) {
      autograd::Var& p = b.params[i];
      Tensor g = Tensor::empty(p.shape(), DType::f32);
      const float* src = b.buffer.data() + b.offsets[i];
      float* dst = static_cast<float*>(g.data());
      for (int64_t k = 0; k < p.numel(); ++k) dst[k] = src[k] * inv;
      p.set_grad(std::move(g));
    }
}

}  // namespace bitnet::train
