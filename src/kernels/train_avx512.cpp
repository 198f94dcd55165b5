// The avx512 variant of the train kernel family (see train_impl.h).
#define BITNET_VARIANT avx512
#include "kernels/train_impl.h"
