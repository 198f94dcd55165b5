#pragma once
// Internal: data-parallel gradient buckets (bitnet/distributed.h). The parameters are grouped, in reverse order
// (the order the backward pass finishes them, as PyTorch's DDP does), into flat buckets of about
// `bucket_bytes`. When the last gradient of a bucket is final, the bucket is copied into its buffer and its
// sum across ranks starts; the backward pass goes on meanwhile. finish() waits and writes the mean back.
#include <bitnet/autograd.h>
#include <bitnet/distributed.h>

#include <unordered_map>
#include <vector>

namespace bitnet::train {

class GradientBuckets {
 public:
  GradientBuckets(const std::vector<autograd::Var>& params, Communicator& comm, int64_t bucket_bytes);
  // Before the backward pass whose gradients are to be reduced.
  void reset();
  // The backward pass's callback: `leaf`'s gradient is final for this pass.
  void ready(const autograd::VarImpl* leaf);
  // Starts the buckets not started (gradients that never became ready: unused parameters), waits for every
  // sum, and sets each gradient to the mean across ranks.
  void finish();
  size_t buckets() const { return buckets_.size(); }

 private:
  struct Bucket {
    std::vector<autograd::Var> params;
    std::vector<int64_t> offsets;
    std::vector<float> buffer;
    size_t waiting = 0;  // parameters whose gradient is not final yet
    bool started = false;
  };
  void start(Bucket& b);
  Communicator& comm_;
  std::vector<Bucket> buckets_;
  std::unordered_map<const autograd::VarImpl*, size_t> bucket_of_;
};

}  // namespace bitnet::train
