#pragma once
// Data-parallel training across processes: `mpirun -np N bitnet train -c run.json`. Every rank holds the whole
// model and optimizer, reads its own rows of each global batch, and the gradients are summed across ranks in
// buckets while the backward pass still runs (as PyTorch's DistributedDataParallel does), so every rank takes
// the same optimizer step. MPI (Open MPI from Debian) carries the sums; a build without it trains alone and
// refuses to run under mpirun with more than one rank.
#include <cstdint>
#include <string>

namespace bitnet::train {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "mpi" or "single process"

  // Starts summing `n` floats at `data` across ranks, in place; the data must stay put until wait_all().
  virtual void start_sum(float* data, int64_t n) = 0;
  // Lets started sums progress (called between backward steps, so communication overlaps computation).
  virtual void progress() = 0;
  // Waits for every started sum. Throws bitnet::Error when they do not finish within the timeout (a rank died
  // or hangs), naming this rank, the operation and the time waited.
  virtual void wait_all() = 0;
  // The sum across ranks of one number (losses for the log), blocking, with the same timeout.
  virtual double sum(double value) = 0;
  // Every rank reaches this point (or the timeout throws).
  virtual void barrier() = 0;

  // Sums in rank order, ((x0 + x1) + x2) + ..., on every rank (an all-gather, then the additions here; N times
  // the traffic of an all-reduce): bit for bit what one process accumulating the ranks' micro-batches in order
  // computes. Off: MPI's all-reduce, whose order is its own (for 2 ranks the same, x0 + x1 being x1 + x0).
  bool ordered = false;
  // Seconds a collective operation may take before it is declared dead (BITNET_COLLECTIVE_TIMEOUT, default 300).
  double timeout_s = 300.0;
  // Seconds spent waiting in wait_all() / sum() (the communication that did not overlap with computation).
  double wait_seconds = 0.0;
};

// This process's communicator: MPI's world when launched by mpirun (or srun) with more than one rank, a single
// process otherwise. MPI is initialized on first use and finalized at exit.
Communicator& world();
// Whether this build has MPI (libopenmpi-dev found at configure time).
bool mpi_built();
// Ends every rank of the job after an error on this one (MPI_Abort), so that none waits forever; a no-op
// without MPI or with one rank.
void abort_job(int code);

}  // namespace bitnet::train
