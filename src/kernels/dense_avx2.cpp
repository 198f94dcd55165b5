// The avx2 variant of the dense kernel family (see dense_x86_256_impl.h).
#define BITNET_VARIANT avx2
#include "kernels/dense_x86_256_impl.h"
