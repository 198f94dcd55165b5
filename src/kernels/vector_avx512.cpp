// The avx512 variant of the vector kernel family (see vector_impl.h).
#define BITNET_VARIANT avx512
#define BITNET_VECTOR_FAST 1
#include "kernels/vector_impl.h"
