#include <bitnet/cpu.h>
#include <bitnet/error.h>
#include <bitnet/kernels.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace bitnet {
namespace {

TEST(Cpu, FeaturesAgreeWithTheKernel) {
  const CpuFeatures& f = cpu_features();
  EXPECT_GE(f.logical_cpus, 1);
#if defined(__x86_64__)
  // /proc/cpuinfo is the kernel's own reading of cpuid: our detection must agree with it.
  std::ifstream info("/proc/cpuinfo");
  if (!info) GTEST_SKIP() << "/proc/cpuinfo unavailable";
  std::string line, flags;
  while (std::getline(info, line))
    if (line.rfind("flags", 0) == 0) {
      flags = line + " ";
      break;
    }
  auto has = [&](const char* name) { return flags.find(std::string(" ") + name + " ") != std::string::npos; };
  EXPECT_EQ(f.avx2, has("avx2"));
  EXPECT_EQ(f.fma, has("fma"));
  EXPECT_EQ(f.f16c, has("f16c"));
  EXPECT_EQ(f.avx512f, has("avx512f"));
  EXPECT_EQ(f.avx512bw, has("avx512bw"));
  EXPECT_EQ(f.avx512vnni, has("avx512_vnni"));
  EXPECT_EQ(f.avx512vbmi, has("avx512vbmi"));
  EXPECT_EQ(f.avx512bf16, has("avx512_bf16"));
  EXPECT_EQ(f.avxvnni, has("avx_vnni"));
  EXPECT_FALSE(f.neon);
#endif
}

TEST(Cpu, IsaNamesAndForcing) {
  EXPECT_EQ(parse_isa("avx512"), Isa::avx512);
  EXPECT_EQ(parse_isa("sse"), std::nullopt);
  EXPECT_TRUE(isa_supported(Isa::ref));
  EXPECT_EQ(parse_isa("avxvnni"), Isa::avxvnni);
  for (Isa isa : {Isa::ref, Isa::avx2, Isa::avxvnni, Isa::avx512, Isa::neon}) {
    if (!isa_supported(isa)) {
      EXPECT_THROW(force_isa(isa), Error);
      continue;
    }
    force_isa(isa);
    EXPECT_EQ(preferred_isa(), isa);
    for (const auto& family : kernel_families()) {
      // Only the ternary, dense and attention_q8 families have AVX-VNNI kernels; the others run their AVX2 ones.
      const bool own = isa != Isa::avxvnni || family.name == "ternary" || family.name == "dense" ||
                       family.name == "attention_q8";
      EXPECT_EQ(family.selected, own ? isa : Isa::avx2) << family.name;
    }
  }
  force_isa(std::nullopt);
  const Isa best = preferred_isa();
  EXPECT_TRUE(isa_supported(best));
  for (Isa isa : {Isa::avx512, Isa::avxvnni, Isa::avx2, Isa::neon})
    if (isa_supported(isa)) {
      EXPECT_EQ(best, isa);  // the best supported variant is chosen by default
      break;
    }
}

}  // namespace
}  // namespace bitnet
