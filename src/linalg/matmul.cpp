// f32 matrix products through CBLAS (OpenBLAS), with NumPy matmul semantics.
#include <cblas.h>

#include "ops/ops_util.h"

namespace bitnet {

namespace {

// How BLAS can read a 2-D view without copying it: row-major as is, or as the transpose of a row-major
// matrix. Strides of size-1 dims do not matter and are normalized first.
struct BlasOperand {
  const float* data;
  CBLAS_TRANSPOSE trans;
  int64_t ld;
};

bool blas_view(const Tensor& m, BlasOperand& op) {
  const int64_t rows = m.size(0), cols = m.size(1);
  int64_t s0 = m.strides()[0], s1 = m.strides()[1];
  if (cols == 1) s1 = 1;
  if (rows == 1) s0 = std::max<int64_t>(cols, 1) * s1;
  op.data = m.data_as<float>();
  if (s1 == 1 && s0 >= std::max<int64_t>(cols, 1)) {
    op.trans = CblasNoTrans;
    op.ld = s0;
    return true;
  }
  if (s0 == 1 && s1 >= std::max<int64_t>(rows, 1)) {
    op.trans = CblasTrans;
    op.ld = s1;
    return true;
  }
  return false;
}

void gemm_2d(const Tensor& a, const Tensor& b, float* out, int64_t ldc) {
  const int64_t m = a.size(0), k = a.size(1), n = b.size(1);
  if (m == 0 || n == 0) return;
  Tensor ac = a, bc = b;
  BlasOperand oa{}, ob{};
  if (!blas_view(ac, oa)) {
    ac = a.clone();
    blas_view(ac, oa);
  }
  if (!blas_view(bc, ob)) {
    bc = b.clone();
    blas_view(bc, ob);
  }
  BITNET_CHECK(m <= INT32_MAX && n <= INT32_MAX && k <= INT32_MAX && oa.ld <= INT32_MAX && ob.ld <= INT32_MAX,
               "[matmul] dimensions exceed the 32-bit BLAS interface");
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) out[i * ldc + j] = 0.0f;
    return;
  }
  // One thread pool owns the cores: OpenBLAS runs single-threaded (set once) and large products are split
  // over our pool. Two pools of spinning threads on the same cores slowed training 3.4x (measured).
  static const bool single_threaded_blas = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)single_threaded_blas;
  // A row block of A is rows r0.. (row-major) or columns r0.. of the stored transpose; same for B's columns.
  auto block = [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
    const float* pa = oa.data + (oa.trans == CblasNoTrans ? r0 * oa.ld : r0);
    const float* pb = ob.data + (ob.trans == CblasNoTrans ? c0 : c0 * ob.ld);
    cblas_sgemm(CblasRowMajor, oa.trans, ob.trans, static_cast<int>(r1 - r0), static_cast<int>(c1 - c0),
                static_cast<int>(k), 1.0f, pa, static_cast<int>(oa.ld), pb, static_cast<int>(ob.ld), 0.0f,
                out + r0 * ldc + c0, static_cast<int>(ldc));
  };
  ThreadPool& pool = default_pool();
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  if (pool.size() == 1 || flops < 4e6) {
    block(0, m, 0, n);
  } else if (m >= 16 * pool.size()) {
    // One block per thread: each sgemm call packs all of B (or A) again, so more blocks only add packing
    // and smaller, less efficient kernel calls. (The pool makes floor(m / min_chunk) blocks at most.)
    pool.parallel_for(m, [&](int64_t r0, int64_t r1) { block(r0, r1, 0, n); }, m / pool.size());
  } else {
    pool.parallel_for(n, [&](int64_t c0, int64_t c1) { block(0, m, c0, c1); }, std::max<int64_t>(1, n / pool.size()));
  }
}

}  // namespace

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  detail::check_defined(a_in, "matmul");
  detail::check_defined(b_in, "matmul");
  detail::check_floating(a_in, "matmul");
  detail::check_floating(b_in, "matmul");
  BITNET_CHECK(a_in.ndim() >= 1 && b_in.ndim() >= 1, "[matmul] operands must have at least 1 dim, got {} and {}",
               a_in.str(), b_in.str());
  Tensor a = a_in.to(DType::f32), b = b_in.to(DType::f32);
  const bool squeeze_a = a.ndim() == 1, squeeze_b = b.ndim() == 1;
  if (squeeze_a) a = a.unsqueeze(0);
  if (squeeze_b) b = b.unsqueeze(1);
  BITNET_CHECK(a.size(-1) == b.size(-2), "[matmul] inner dimensions differ: {} @ {} ({} vs {})",
               shape_str(a_in.shape()), shape_str(b_in.shape()), a.size(-1), b.size(-2));
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  const Shape batch_a(a.shape().begin(), a.shape().end() - 2), batch_b(b.shape().begin(), b.shape().end() - 2);
  const Shape batch = broadcast_shapes(batch_a, batch_b, "matmul");
  Shape out_shape = batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  Tensor out = Tensor::empty(out_shape, DType::f32);

  Shape full_a = batch, full_b = batch;
  full_a.insert(full_a.end(), {m, k});
  full_b.insert(full_b.end(), {k, n});
  const Tensor ab = a.broadcast_to(full_a), bb = b.broadcast_to(full_b);
  const int64_t batches = shape_numel(batch);
  float* po = out.data_as<float>();
  for (int64_t i = 0; i < batches; ++i) {
    // The 2-D operands of batch i: select the batch index along each leading dim.
    Tensor ai = ab, bi = bb;
    int64_t rest = i;
    for (size_t d = batch.size(); d-- > 0;) {
      const int64_t idx = rest % batch[d];
      rest /= batch[d];
      ai = ai.select(static_cast<int64_t>(d), idx);
      bi = bi.select(static_cast<int64_t>(d), idx);
    }
    gemm_2d(ai, bi, po + i * m * n, n == 0 ? 1 : n);
  }
  if (squeeze_a) out = out.squeeze(-2);
  if (squeeze_b) out = out.squeeze(-1);
  return out;
}

}  // namespace bitnet
