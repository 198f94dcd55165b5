#pragma once
// Internal: an empty asm statement that takes a vector and gives it back in a register, for the x86 kernel files.
// GCC 12 otherwise (a) folds a loaded value into every instruction that uses it, as a memory operand (the f16
// head's FMAs ran at 1.27 per cycle on Zen 3 so, 1.66 from a register), and (b) reassociates an unrolled chain of
// integer adds into a tree and spills its terms (the q8_0 scores spilled every product). Passing the value through
// here pins it: a loaded value stays one register, a sum stays one chain of adds. `static` on purpose, as in
// x86_hsum.h: each ISA file gets its own copy.
#include <immintrin.h>

namespace bitnet::kernels {

static inline void in_register(__m256& v) { asm("" : "+x"(v)); }
static inline void in_register(__m256i& v) { asm("" : "+x"(v)); }

}  // namespace bitnet::kernels
