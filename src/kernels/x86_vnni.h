#pragma once
// Internal: AVX-512 VNNI's vpdpbusd as an asm statement, for the ternary kernels' many-accumulator loops:
// vpdpbusd tied to a named accumulator. With _mm512_dpbusd_epi32 GCC 12 copies most of the 16 accumulators to
// other registers and the stack around each product, and so it does with the asm on array elements; 16 named
// variables stay in registers (checked in the disassembly).
#define BITNET_DPBUSD(acc, a, b) asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b))

