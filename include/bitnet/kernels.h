#pragma once
// What the kernel dispatcher chose: one entry per kernel family, for `bitnet info` and benchmarks.
#include <bitnet/cpu.h>

#include <string>
#include <vector>

namespace bitnet {

struct KernelFamilyInfo {
  std::string name;
  Isa selected;                // the variant calls go to
  std::vector<Isa> runnable;   // the variants compiled in that this CPU can run
};
std::vector<KernelFamilyInfo> kernel_families();

}  // namespace bitnet
