// The ref variant of the n-bit weight kernel family (see nbit_impl.h).
#define BITNET_VARIANT ref
#define BITNET_NBIT_SIMD 0
#include "kernels/nbit_impl.h"
