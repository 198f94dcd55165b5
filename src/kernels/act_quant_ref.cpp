// The ref variant of the activation-quantization family (see act_quant_impl.h).
#define BITNET_VARIANT ref
#define BITNET_ACT_SIMD 0
#include "kernels/act_quant_impl.h"
