// The ref variant of the train kernel family (see train_impl.h).
#define BITNET_VARIANT ref
#include "kernels/train_impl.h"
