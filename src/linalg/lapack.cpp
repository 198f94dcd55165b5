// SVD, QR, Cholesky, solve and inverse through LAPACKE (row-major, f32).
#include <bitnet/linalg.h>
#include <lapacke.h>

#include <cmath>

#include "ops/ops_util.h"

namespace bitnet::linalg {

namespace {

// A private row-major f32 copy of a 2-D float tensor (LAPACK overwrites its input), checked finite.
Tensor working_copy(const Tensor& a, std::string_view op) {
  detail::check_defined(a, op);
  detail::check_floating(a, op);
  BITNET_CHECK(a.ndim() == 2, "[{}] expects a 2-d matrix, got {}", op, a.str());
  Tensor w = a.to(DType::f32).clone();
  const float* p = w.data_as<float>();
  for (int64_t i = 0, n = w.numel(); i < n; ++i)
    BITNET_CHECK(std::isfinite(p[i]), "[{}] the matrix contains NaN or Inf (element {})", op, i);
  BITNET_CHECK(w.size(0) <= INT32_MAX && w.size(1) <= INT32_MAX, "[{}] matrix too large for LAPACK", op);
  return w;
}

void check_square(const Tensor& a, std::string_view op) {
  BITNET_CHECK(a.size(0) == a.size(1), "[{}] expects a square matrix, got {}", op, shape_str(a.shape()));
}

void check_info(lapack_int info, std::string_view op, std::string_view routine) {
  BITNET_CHECK(info >= 0, "[{}] {} rejected argument {} (a bug in bitnet)", op, routine, -info);
}

}  // namespace

SvdResult svd(const Tensor& a_in, bool full_matrices) {
  Tensor a = working_copy(a_in, "svd");
  const auto m = static_cast<lapack_int>(a.size(0)), n = static_cast<lapack_int>(a.size(1));
  const lapack_int k = std::min(m, n);
  const lapack_int ucols = full_matrices ? m : k, vrows = full_matrices ? n : k;
  SvdResult r{Tensor::empty({m, ucols}), Tensor::empty({k}), Tensor::empty({vrows, n})};
  if (k == 0) return r;
  const lapack_int info =
      LAPACKE_sgesdd(LAPACK_ROW_MAJOR, full_matrices ? 'A' : 'S', m, n, a.data_as<float>(), n,
                     r.s.data_as<float>(), r.u.data_as<float>(), ucols, r.vt.data_as<float>(), n);
  check_info(info, "svd", "sgesdd");
  BITNET_CHECK(info == 0, "[svd] did not converge ({} superdiagonals)", info);
  return r;
}

QrResult qr(const Tensor& a_in) {
  Tensor a = working_copy(a_in, "qr");
  const auto m = static_cast<lapack_int>(a.size(0)), n = static_cast<lapack_int>(a.size(1));
  const lapack_int k = std::min(m, n);
  std::vector<float> tau(static_cast<size_t>(std::max<lapack_int>(k, 1)));
  check_info(LAPACKE_sgeqrf(LAPACK_ROW_MAJOR, m, n, a.data_as<float>(), n, tau.data()), "qr", "sgeqrf");
  // R: the upper triangle of the first k rows.
  Tensor r = Tensor::zeros({k, n});
  for (lapack_int i = 0; i < k; ++i)
    for (lapack_int j = i; j < n; ++j) r.data_as<float>()[i * n + j] = a.data_as<float>()[i * n + j];
  // Q: the first k columns, formed from the reflectors.
  Tensor q = a.slice(1, 0, k).clone();
  if (k > 0)
    check_info(LAPACKE_sorgqr(LAPACK_ROW_MAJOR, m, k, k, q.data_as<float>(), k, tau.data()), "qr", "sorgqr");
  return {q, r};
}

Tensor cholesky(const Tensor& a_in) {
  Tensor a = working_copy(a_in, "cholesky");
  check_square(a, "cholesky");
  const auto n = static_cast<lapack_int>(a.size(0));
  float* p = a.data_as<float>();
  for (lapack_int i = 0; i < n; ++i)
    for (lapack_int j = 0; j < i; ++j) {
      const float x = p[i * n + j], y = p[j * n + i];
      BITNET_CHECK(std::fabs(x - y) <= 1e-5f * std::max({1.0f, std::fabs(x), std::fabs(y)}),
                   "[cholesky] the matrix is not symmetric: A[{},{}] = {} but A[{},{}] = {}", i, j, x, j, i, y);
    }
  const lapack_int info = LAPACKE_spotrf(LAPACK_ROW_MAJOR, 'L', n, p, n);
  check_info(info, "cholesky", "spotrf");
  BITNET_CHECK(info == 0,
               "[cholesky] the matrix is not positive definite (the leading minor of order {} is not positive)",
               info);
  for (lapack_int i = 0; i < n; ++i)
    for (lapack_int j = i + 1; j < n; ++j) p[i * n + j] = 0.0f;  // clear the untouched upper triangle
  return a;
}

Tensor solve(const Tensor& a_in, const Tensor& b_in) {
  Tensor a = working_copy(a_in, "solve");
  check_square(a, "solve");
  detail::check_defined(b_in, "solve");
  const bool vector = b_in.ndim() == 1;
  BITNET_CHECK(b_in.ndim() == 1 || b_in.ndim() == 2, "[solve] b must be [n] or [n, k], got {}", b_in.str());
  Tensor b = working_copy(vector ? b_in.unsqueeze(1) : b_in, "solve");
  BITNET_CHECK(b.size(0) == a.size(0), "[solve] a is {} but b has {} rows", shape_str(a.shape()), b.size(0));
  const auto n = static_cast<lapack_int>(a.size(0)), nrhs = static_cast<lapack_int>(b.size(1));
  std::vector<lapack_int> ipiv(static_cast<size_t>(std::max<lapack_int>(n, 1)));
  const lapack_int info = LAPACKE_sgesv(LAPACK_ROW_MAJOR, n, nrhs, a.data_as<float>(), n, ipiv.data(),
                                        b.data_as<float>(), std::max<lapack_int>(nrhs, 1));
  check_info(info, "solve", "sgesv");
  BITNET_CHECK(info == 0, "[solve] the matrix is singular (U[{0},{0}] is exactly zero)", info - 1);
  return vector ? b.squeeze(1) : b;
}

Tensor inverse(const Tensor& a_in) {
  Tensor a = working_copy(a_in, "inverse");
  check_square(a, "inverse");
  const auto n = static_cast<lapack_int>(a.size(0));
  if (n == 0) return a;
  std::vector<lapack_int> ipiv(static_cast<size_t>(n));
  lapack_int info = LAPACKE_sgetrf(LAPACK_ROW_MAJOR, n, n, a.data_as<float>(), n, ipiv.data());
  check_info(info, "inverse", "sgetrf");
  BITNET_CHECK(info == 0, "[inverse] the matrix is singular (U[{0},{0}] is exactly zero)", info - 1);
  info = LAPACKE_sgetri(LAPACK_ROW_MAJOR, n, a.data_as<float>(), n, ipiv.data());
  check_info(info, "inverse", "sgetri");
  return a;
}

}  // namespace bitnet::linalg
