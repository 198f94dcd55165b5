// The neon variant of the n-bit weight kernel family (see nbit_impl.h).
#define BITNET_VARIANT neon
#define BITNET_NBIT_SIMD 1
#include "kernels/nbit_impl.h"
