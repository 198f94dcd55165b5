// The avxvnni variant of the attention_q8 kernel family: the AVX2 kernels with AVX-VNNI's vpdpbusd and vpdpwssd
// (see attention_q8_impl.h).
#define BITNET_VARIANT avxvnni
#include "kernels/attention_q8_impl.h"
