#pragma once
// CPU feature detection and the instruction-set variants that kernels are compiled for. Every variant is in
// the same binary; the best one the CPU supports is chosen at run time, or the one BITNET_ISA names.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet {

struct CpuFeatures {
  std::string brand;
  int logical_cpus = 1;
  // x86
  bool sse42 = false, avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512vnni = false, avx512vbmi = false, avx512bf16 = false;
  bool avxvnni = false;  // AVX-VNNI: vpdpbusd on ymm in the VEX form (Alder Lake and later client cores, Zen 5)
  // Arm
  bool neon = false, dotprod = false, i8mm = false;
};
// Detected once (cpuid + the OS's saved-state mask on x86, HWCAP on Arm).
const CpuFeatures& cpu_features();
// "avx2 fma f16c avx512f ..." for the features present.
std::string cpu_feature_list(const CpuFeatures& features);

// Kernel variants. avx2 needs AVX2+FMA+F16C; avxvnni needs those and AVX-VNNI (the families with no avxvnni
// kernels of their own run their avx2 ones); avx512 needs AVX-512 F/BW/VL/DQ (families that use VNNI or VBMI check
// those features themselves); neon needs Advanced SIMD. From the best down: avx512, avxvnni, avx2, ref.
enum class Isa { ref, avx2, avx512, neon, avxvnni };
inline constexpr int kIsaCount = 5;
std::string_view isa_name(Isa isa);
std::optional<Isa> parse_isa(std::string_view name);
// True when this CPU can run the variant and this binary contains it.
bool isa_supported(Isa isa);
// The variant kernels use: BITNET_ISA when set (an error if the CPU cannot run it), else the best supported.
Isa preferred_isa();
// Overrides BITNET_ISA for this process (tests and benchmarks); nullopt restores automatic choice.
// Kernel families choose again on their next call.
void force_isa(std::optional<Isa> isa);

}  // namespace bitnet
