// The avx512 variant of the attention_q8 kernel family (see attention_q8_impl.h).
#define BITNET_VARIANT avx512
#include "kernels/attention_q8_impl.h"
