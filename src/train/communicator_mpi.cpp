// The MPI communicator (bitnet/distributed.h): nonblocking all-reduces of float buckets (MPI_Iallreduce, in
// place), driven forward by MPI_Testall from the backward pass, and waited for with a deadline instead of
// MPI_Wait, so a dead or stuck rank ends the job with a message rather than a hang.
#include <bitnet/distributed.h>
#include <bitnet/error.h>
// The C API only: Open MPI and MPICH otherwise pull in their deprecated C++ bindings, which need another library.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "train/communicator_common.h"

namespace bitnet::train {

namespace {

double timeout_from_env() {
  const char* v = std::getenv("BITNET_COLLECTIVE_TIMEOUT");
  if (v == nullptr || *v == '\0') return 300.0;
  char* end = nullptr;
  const double t = std::strtod(v, &end);
  BITNET_CHECK(end != v && *end == '\0' && t > 0.0, "BITNET_COLLECTIVE_TIMEOUT must be a positive number of seconds, got '{}'", v);
  return t;
}

class MpiWorld final : public Communicator {
 public:
  MpiWorld() {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    // Errors come back as codes (and become bitnet::Error) instead of aborting inside MPI.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    timeout_s = timeout_from_env();
  }
  ~MpiWorld() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  void start_sum(float* data, int64_t n) override {
    BITNET_CHECK(n >= 0 && n <= INT32_MAX / size_, "[mpi] a bucket of {} floats is too large for one MPI call", n);
    MPI_Request r;
    if (ordered) {
      gathers_.push_back({data, n, std::vector<float>(static_cast<size_t>(n * size_))});
      check(MPI_Iallgather(data, static_cast<int>(n), MPI_FLOAT, gathers_.back().all.data(), static_cast<int>(n), MPI_FLOAT,
                           MPI_COMM_WORLD, &r), "MPI_Iallgather");
    } else {
      check(MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &r), "MPI_Iallreduce");
    }
    pending_.push_back(r);
  }
  void progress() override {
    if (pending_.empty()) return;
    int done = 0;
    check(MPI_Testall(static_cast<int>(pending_.size()), pending_.data(), &done, MPI_STATUSES_IGNORE), "MPI_Testall");
    if (done) pending_.clear();
  }
  void wait_all() override {
    wait(pending_, ordered ? "the gradient all-gather" : "the gradient all-reduce");
    pending_.clear();
    for (Gathered& g : gathers_) {
      // Rank 0's values, then each next rank's added in turn: the order of accumulation in one process.
      std::copy(g.all.begin(), g.all.begin() + g.n, g.data);
      for (int r = 1; r < size_; ++r) {
        const float* src = g.all.data() + static_cast<int64_t>(r) * g.n;
        for (int64_t i = 0; i < g.n; ++i) g.data[i] += src[i];
      }
    }
    gathers_.clear();
  }
  double sum(double value) override {
    MPI_Request r;
    check(MPI_Iallreduce(MPI_IN_PLACE, &value, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &r), "MPI_Iallreduce");
    std::vector<MPI_Request> one{r};
    wait(one, "the loss all-reduce");
    return value;
  }
  void barrier() override {
    MPI_Request r;
    check(MPI_Ibarrier(MPI_COMM_WORLD, &r), "MPI_Ibarrier");
    std::vector<MPI_Request> one{r};
    wait(one, "a barrier");
  }

 private:
  int rank_ = 0, size_ = 1;
  std::vector<MPI_Request> pending_;
  struct Gathered {
    float* data;
    int64_t n;
    std::vector<float> all;  // every rank's n values, rank by rank
  };
  std::vector<Gathered> gathers_;

  void check(int code, const char* call) const {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(code, text, &len);
    fail("[mpi] rank {} of {}: {} failed: {}", rank_, size_, call, std::string(text, static_cast<size_t>(len)));
  }

  // Polls until every request completes or the deadline passes: MPI_Wait would block forever on a dead peer.
  void wait(std::vector<MPI_Request>& requests, const char* what) {
    if (requests.empty()) return;
    const auto start = std::chrono::steady_clock::now();
    auto waited = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
    int spins = 0;
    for (;;) {
      int done = 0;
      check(MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE), "MPI_Testall");
      if (done) break;
      if (waited() > timeout_s)
        fail("[mpi] rank {} of {}: {} did not complete in {:.0f} s (BITNET_COLLECTIVE_TIMEOUT): another rank has died "
             "or stopped; ending the job", rank_, size_, what, timeout_s);
      if (++spins > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    wait_seconds += waited();
  }
};

}  // namespace

bool mpi_built() { return true; }

Communicator& world() {
  static const bool use_mpi = launched_ranks() > 1;
  if (use_mpi) {
    static MpiWorld mpi;
    return mpi;
  }
  static SingleProcess single;
  return single;
}

void abort_job(int code) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized && world().size() > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

}  // namespace bitnet::train
