// The avx2 variant of the train kernel family (see train_impl.h).
#define BITNET_VARIANT avx2
#include "kernels/train_impl.h"
