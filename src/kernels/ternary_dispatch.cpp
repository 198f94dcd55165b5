// Variant tables of the ternary, activation-quantization, dense and n-bit kernel families.
#include <bitnet/cpu.h>

#include "kernels/act_quant.h"
#include "kernels/dense.h"
#include "kernels/nbit.h"
#include "kernels/ternary.h"
#include "kernels/ternary_base3.h"

namespace bitnet::kernels {

namespace ref {
extern const TernaryKernels kTernaryKernels;
extern const NbitKernels kNbitKernels;
extern const DenseKernels kDenseKernels;
extern const ActQuantKernels kActQuantKernels;
}  // namespace ref
#if defined(__x86_64__)
namespace avx2 {
extern const TernaryKernels kTernaryKernels;
extern const NbitKernels kNbitKernels;
extern const DenseKernels kDenseKernels;
extern const ActQuantKernels kActQuantKernels;
}  // namespace avx2
namespace avxvnni {
void gemm(const TernaryGemmArgs& a);
extern const DenseKernels kDenseKernels;
}  // namespace avxvnni
namespace avx512 {
extern const TernaryKernels kTernaryKernels;
extern const NbitKernels kNbitKernels;
extern const DenseKernels kDenseKernels;
extern const ActQuantKernels kActQuantKernels;
}  // namespace avx512
#endif
#if defined(__aarch64__)
namespace neon {
extern const TernaryKernels kTernaryKernels;
extern const NbitKernels kNbitKernels;
extern const DenseKernels kDenseKernels;
extern const ActQuantKernels kActQuantKernels;
}  // namespace neon
#endif

#if defined(__x86_64__)
// The AVX-512 variant's base-3 kernel also needs VBMI (vpermi2b); a CPU with VNNI but not VBMI (Cascade Lake)
// runs the 2-bit layout with AVX-512 and the base-3 one with AVX2.
const TernaryKernels* avx512_ternary() {
  if (!cpu_features().avx512vnni) return nullptr;
  static const TernaryKernels without_vbmi = {avx512::kTernaryKernels.gemm, avx2::kTernaryKernels.gemm_base3,
                                              ref::encode_base3, false};
  return cpu_features().avx512vbmi ? &avx512::kTernaryKernels : &without_vbmi;
}
// The AVX-VNNI variant of the ternary family: its own 2-bit kernel, AVX2's base-3 ones (AVX2's table is
// constant-initialized, so reading it here is safe at any time).
const TernaryKernels* avxvnni_ternary() {
  static const TernaryKernels table = {avxvnni::gemm, avx2::kTernaryKernels.gemm_base3,
                                       avx2::kTernaryKernels.encode_base3, false};
  return &table;
}
#endif

const Family<TernaryKernels>& ternary_family() {
  // The AVX-512 variant uses VNNI (vpdpbusd) and the NEON one SDOT: without them, the next variant serves.
  static const Family<TernaryKernels> family("ternary", {
      &ref::kTernaryKernels,
#if defined(__x86_64__)
      &avx2::kTernaryKernels, avx512_ternary(), nullptr, avxvnni_ternary(),
#elif defined(__aarch64__)
      nullptr, nullptr, cpu_features().dotprod ? &neon::kTernaryKernels : nullptr,
#else
      nullptr, nullptr, nullptr,
#endif
  });
  return family;
}

const Family<ActQuantKernels>& act_quant_family() {
  static const Family<ActQuantKernels> family("act_quant", {
      &ref::kActQuantKernels,
#if defined(__x86_64__)
      &avx2::kActQuantKernels, &avx512::kActQuantKernels, nullptr,
#elif defined(__aarch64__)
      nullptr, nullptr, &neon::kActQuantKernels,
#else
      nullptr, nullptr, nullptr,
#endif
  });
  return family;
}

const Family<DenseKernels>& dense_family() {
  // The AVX-512 int8 kernel uses VNNI and the NEON one SDOT.
  static const Family<DenseKernels> family("dense", {
      &ref::kDenseKernels,
#if defined(__x86_64__)
      &avx2::kDenseKernels, cpu_features().avx512vnni ? &avx512::kDenseKernels : nullptr, nullptr,
      &avxvnni::kDenseKernels,
#elif defined(__aarch64__)
      nullptr, nullptr, cpu_features().dotprod ? &neon::kDenseKernels : nullptr,
#else
      nullptr, nullptr, nullptr,
#endif
  });
  return family;
}

const Family<NbitKernels>& nbit_family() {
  static const Family<NbitKernels> family("nbit", {
      &ref::kNbitKernels,
#if defined(__x86_64__)
      &avx2::kNbitKernels, &avx512::kNbitKernels, nullptr,
#elif defined(__aarch64__)
      nullptr, nullptr, &neon::kNbitKernels,
#else
      nullptr, nullptr, nullptr,
#endif
  });
  return family;
}

}  // namespace bitnet::kernels
