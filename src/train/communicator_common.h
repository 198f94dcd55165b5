#pragma once
// Internal: what both communicators share (bitnet/distributed.h): the single-process one, and how a launch by a
// process manager with several ranks is recognised.
#include <bitnet/distributed.h>

#include <cstdlib>

namespace bitnet::train {

// Launched by a process manager with more than one rank (Open MPI, MPICH/Hydra, PMIx, Slurm's srun).
inline int launched_ranks() {
  for (const char* k : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS"})
    if (const char* v = std::getenv(k); v != nullptr && *v != '\0') return std::atoi(v);
  return 1;
}

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "single process"; }
  void start_sum(float*, int64_t) override {}
  void progress() override {}
  void wait_all() override {}
  double sum(double value) override { return value; }
  void barrier() override {}
};

}  // namespace bitnet::train
