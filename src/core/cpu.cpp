#include <bitnet/cpu.h>
#include <bitnet/error.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "kernels/dispatch.h"

#if defined(__x86_64__)
#include <cpuid.h>
#elif defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace bitnet {

namespace {

#if defined(__x86_64__)
uint64_t read_xcr0() {
  uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

void detect_x86(CpuFeatures& f) {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return;
  f.sse42 = (c >> 20) & 1;
  f.fma = (c >> 12) & 1;
  f.f16c = (c >> 29) & 1;
  const bool osxsave = (c >> 27) & 1;
  const bool avx = (c >> 28) & 1;
  // The OS must save the vector state: XMM|YMM for AVX, plus opmask|ZMM_Hi256|Hi16_ZMM for AVX-512.
  const uint64_t xcr0 = osxsave ? read_xcr0() : 0;
  const bool os_avx = avx && (xcr0 & 0x6) == 0x6;
  const bool os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;
  if (!os_avx) f.fma = f.f16c = false;
  unsigned leaf7_subleaves = 0;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    leaf7_subleaves = a;  // the highest subleaf of leaf 7
    f.avx2 = os_avx && ((b >> 5) & 1);
    f.avx512f = os_avx512 && ((b >> 16) & 1);
    f.avx512dq = os_avx512 && ((b >> 17) & 1);
    f.avx512bw = os_avx512 && ((b >> 30) & 1);
    f.avx512vl = os_avx512 && ((b >> 31) & 1);
    f.avx512vbmi = os_avx512 && ((c >> 1) & 1);
    f.avx512vnni = os_avx512 && ((c >> 11) & 1);
  }
  if (leaf7_subleaves >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d)) {
    f.avxvnni = os_avx && ((a >> 4) & 1);
    f.avx512bf16 = os_avx512 && ((a >> 5) & 1);
  }
  // Brand string: leaves 0x80000002..4.
  char brand[49] = {};
  if (__get_cpuid(0x80000000, &a, &b, &c, &d) && a >= 0x80000004) {
    for (unsigned leaf = 0; leaf < 3; ++leaf) {
      unsigned r[4];
      __get_cpuid(0x80000002 + leaf, &r[0], &r[1], &r[2], &r[3]);
      std::memcpy(brand + leaf * 16, r, 16);
    }
  }
  f.brand = brand;
  while (!f.brand.empty() && f.brand.back() == ' ') f.brand.pop_back();
  while (!f.brand.empty() && f.brand.front() == ' ') f.brand.erase(f.brand.begin());
}
#elif defined(__aarch64__)
void detect_arm(CpuFeatures& f) {
  const unsigned long hw = getauxval(AT_HWCAP);
  const unsigned long hw2 = getauxval(AT_HWCAP2);
  f.neon = (hw & HWCAP_ASIMD) != 0;
  f.dotprod = (hw & HWCAP_ASIMDDP) != 0;
#ifdef HWCAP2_I8MM
  f.i8mm = (hw2 & HWCAP2_I8MM) != 0;
#endif
  (void)hw2;
  f.brand = "aarch64";
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
  f.logical_cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
#if defined(__x86_64__)
  detect_x86(f);
#elif defined(__aarch64__)
  detect_arm(f);
#endif
  return f;
}

std::atomic<uint64_t> g_epoch{0};
std::mutex g_force_mutex;
std::optional<Isa> g_forced;
bool g_forced_set = false;  // force_isa() was called (overrides the environment)

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

std::string cpu_feature_list(const CpuFeatures& f) {
  std::string out;
  auto add = [&](bool present, const char* name) {
    if (!present) return;
    if (!out.empty()) out += ' ';
    out += name;
  };
  add(f.sse42, "sse4.2");
  add(f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.f16c, "f16c");
  add(f.avx512f, "avx512f");
  add(f.avx512bw, "avx512bw");
  add(f.avx512vl, "avx512vl");
  add(f.avx512dq, "avx512dq");
  add(f.avx512vnni, "avx512vnni");
  add(f.avx512vbmi, "avx512vbmi");
  add(f.avx512bf16, "avx512bf16");
  add(f.avxvnni, "avxvnni");
  add(f.neon, "neon");
  add(f.dotprod, "dotprod");
  add(f.i8mm, "i8mm");
  return out.empty() ? "(none)" : out;
}

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::ref: return "ref";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    case Isa::neon: return "neon";
    case Isa::avxvnni: return "avxvnni";
  }
  return "?";
}

std::optional<Isa> parse_isa(std::string_view name) {
  for (int i = 0; i < kIsaCount; ++i)
    if (isa_name(static_cast<Isa>(i)) == name) return static_cast<Isa>(i);
  return std::nullopt;
}

bool isa_supported(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::ref: return true;
#if defined(__x86_64__)
    case Isa::avx2: return f.avx2 && f.fma && f.f16c;
    case Isa::avxvnni: return f.avx2 && f.fma && f.f16c && f.avxvnni;
    case Isa::avx512: return f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.fma && f.f16c;
#else
    case Isa::avx2:
    case Isa::avxvnni:
    case Isa::avx512: return false;
#endif
#if defined(__aarch64__)
    case Isa::neon: return f.neon;
#else
    case Isa::neon: return false;
#endif
  }
  return false;
}

namespace {
Isa best_supported() {
  for (Isa isa : {Isa::avx512, Isa::avxvnni, Isa::avx2, Isa::neon})
    if (isa_supported(isa)) return isa;
  return Isa::ref;
}

std::optional<Isa> env_isa() {
  const char* env = std::getenv("BITNET_ISA");
  if (env == nullptr || *env == '\0') return std::nullopt;
  const auto isa = parse_isa(env);
  BITNET_CHECK(isa.has_value(), "[cpu] BITNET_ISA='{}' is not one of ref, avx2, avxvnni, avx512, neon", env);
  BITNET_CHECK(isa_supported(*isa), "[cpu] BITNET_ISA={} but this CPU or build cannot run it (CPU has: {})", env,
               cpu_feature_list(cpu_features()));
  return isa;
}
}  // namespace

Isa preferred_isa() {
  std::lock_guard lock(g_force_mutex);
  if (g_forced_set) return g_forced.value_or(best_supported());
  static const std::optional<Isa> from_env = env_isa();
  return from_env.value_or(best_supported());
}

void force_isa(std::optional<Isa> isa) {
  BITNET_CHECK(!isa || isa_supported(*isa), "[cpu] cannot force {}: this CPU or build cannot run it",
               isa_name(*isa));
  {
    std::lock_guard lock(g_force_mutex);
    g_forced = isa;
    g_forced_set = isa.has_value();
  }
  g_epoch.fetch_add(1, std::memory_order_release);
}

namespace kernels {
uint64_t isa_epoch() { return g_epoch.load(std::memory_order_acquire); }

Isa choose_variant(const std::array<bool, kIsaCount>& compiled) {
  const Isa want = preferred_isa();
  // From the preferred variant down: avx512 -> avxvnni -> avx2 -> ref, neon -> ref.
  Isa order[3] = {Isa::ref, Isa::ref, Isa::ref};
  if (want == Isa::avx512) order[0] = Isa::avx512, order[1] = Isa::avxvnni, order[2] = Isa::avx2;
  if (want == Isa::avxvnni) order[0] = Isa::avxvnni, order[1] = Isa::avx2;
  if (want == Isa::avx2) order[0] = Isa::avx2;
  if (want == Isa::neon) order[0] = Isa::neon;
  for (Isa isa : order)
    if (compiled[static_cast<size_t>(isa)] && isa_supported(isa)) return isa;
  return Isa::ref;
}
}  // namespace kernels

}  // namespace bitnet
