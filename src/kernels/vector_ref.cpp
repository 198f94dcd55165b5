// The ref variant of the vector kernel family (see vector_impl.h).
#define BITNET_VARIANT ref
#define BITNET_VECTOR_FAST 0
#include "kernels/vector_impl.h"
