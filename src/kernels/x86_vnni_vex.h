#pragma once
// Internal: AVX-VNNI's vpdpbusd (the VEX form, on 256-bit registers), for the avxvnni kernel files. As in
// x86_vnni.h, an asm statement tied to its accumulator: GCC 12 copies accumulators around the intrinsic. The
// activations b are read from memory by the instruction itself ("m": any alignment; given the choice of a
// register, GCC 12 loaded them with vmovdqa, ignoring __m256i_u's alignment of 1). "x": ymm0-15, the registers a
// VEX encoding can name. ("%{vex%}": the {vex} prefix, its braces escaped from the asm template.)
#define BITNET_DPBUSD_VEX(acc, a, b) asm("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(a), "m"(b))
