// The communicator of a build without MPI (bitnet/distributed.h): one process. Launched by mpirun with more
// ranks it refuses, since every rank would otherwise train the whole model on its own and overwrite the others'
// files.
#include <bitnet/error.h>

#include "train/communicator_common.h"

namespace bitnet::train {

bool mpi_built() { return false; }

Communicator& world() {
  static SingleProcess single;
  const int ranks = launched_ranks();
  BITNET_CHECK(ranks <= 1,
               "[train] launched as one of {} ranks, but this build has no MPI: install libopenmpi-dev (scripts/setup.sh "
               "does) and rebuild", ranks);
  return single;
}

void abort_job(int) {}

}  // namespace bitnet::train
