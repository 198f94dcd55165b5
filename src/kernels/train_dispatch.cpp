#include "kernels/train.h"

namespace bitnet::kernels {

namespace ref { extern const TrainKernels kTrainKernels; }
#if defined(__x86_64__)
namespace avx2 { extern const TrainKernels kTrainKernels; }
namespace avx512 { extern const TrainKernels kTrainKernels; }
#endif
#if defined(__aarch64__)
namespace neon { extern const TrainKernels kTrainKernels; }
#endif

const Family<TrainKernels>& train_family() {
  static const Family<TrainKernels> family("train_f32", {
      &ref::kTrainKernels,
#if defined(__x86_64__)
      &avx2::kTrainKernels, &avx512::kTrainKernels, nullptr,
#elif defined(__aarch64__)
      nullptr, nullptr, &neon::kTrainKernels,
#else
      nullptr, nullptr, nullptr,
#endif
  });
  return family;
}

}  // namespace bitnet::kernels
