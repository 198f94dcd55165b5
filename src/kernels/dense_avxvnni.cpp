// The avxvnni variant of the dense kernel family: the AVX2 kernels with AVX-VNNI's vpdpbusd for the int8 and int4
// heads (see dense_x86_256_impl.h).
#define BITNET_VARIANT avxvnni
#include "kernels/dense_x86_256_impl.h"
