// The neon variant of the train kernel family (see train_impl.h).
#define BITNET_VARIANT neon
#include "kernels/train_impl.h"
