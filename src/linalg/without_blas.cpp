// Builds without OpenBLAS (BITNET_WITH_BLAS=OFF, e.g. the Arm cross build that tests the NEON kernels):
// the BLAS/LAPACK operations exist and say how to get them.
#include <bitnet/linalg.h>
#include <bitnet/ops.h>

namespace bitnet {

namespace {
[[noreturn]] void no_blas(std::string_view op) {
  fail("[{}] this build has no BLAS/LAPACK; rebuild with -DBITNET_WITH_BLAS=ON", op);
}
}  // namespace

Tensor matmul(const Tensor&, const Tensor&) { no_blas("matmul"); }

namespace linalg {
SvdResult svd(const Tensor&, bool) { no_blas("svd"); }
QrResult qr(const Tensor&) { no_blas("qr"); }
Tensor cholesky(const Tensor&) { no_blas("cholesky"); }
Tensor solve(const Tensor&, const Tensor&) { no_blas("solve"); }
Tensor inverse(const Tensor&) { no_blas("inverse"); }
}  // namespace linalg

}  // namespace bitnet
