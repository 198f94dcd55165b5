#pragma once
// Dense linear algebra on 2-D f32 tensors through LAPACKE (OpenBLAS). Inputs may be any float dtype or
// view; results are new contiguous f32 tensors.
#include <bitnet/tensor.h>

namespace bitnet::linalg {

struct SvdResult {
  Tensor u;   // [m, k] (k = min(m, n)), or [m, m] with full_matrices
  Tensor s;   // [k], descending
  Tensor vt;  // [k, n], or [n, n] with full_matrices
};
SvdResult svd(const Tensor& a, bool full_matrices = false);

struct QrResult {
  Tensor q;  // [m, k] with orthonormal columns
  Tensor r;  // [k, n] upper triangular
};
QrResult qr(const Tensor& a);

// Lower-triangular L with A = L Lᵀ; throws when A is not symmetric positive definite.
Tensor cholesky(const Tensor& a);
// X with A X = B; b is [n] or [n, k]. Throws when A is singular.
Tensor solve(const Tensor& a, const Tensor& b);
Tensor inverse(const Tensor& a);

}  // namespace bitnet::linalg
