#include <bitnet/kernels.h>

#include "kernels/act_quant.h"
#include "kernels/attention_q8.h"
#include "kernels/dense.h"
#include "kernels/nbit.h"
#include "kernels/ternary.h"
#include "kernels/train.h"
#include "kernels/vector.h"

namespace bitnet {

namespace {
template <class Table>
KernelFamilyInfo describe(const kernels::Family<Table>& family) {
  return {std::string(family.name()), family.selected(), family.runnable()};
}
}  // namespace

std::vector<KernelFamilyInfo> kernel_families() { return {describe(kernels::vector_family()), describe(kernels::act_quant_family()),
          describe(kernels::ternary_family()), describe(kernels::dense_family()),
          describe(kernels::nbit_family()), describe(kernels::train_family()),
          describe(kernels::attention_q8_family())}; }

}  // namespace bitnet
