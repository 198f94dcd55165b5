// The avx2 variant of the activation-quantization family (see act_quant_impl.h).
#define BITNET_VARIANT avx2
#define BITNET_ACT_SIMD 1
#include "kernels/act_quant_impl.h"
