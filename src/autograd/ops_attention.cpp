// Rotary position embedding and causal grouped-query attention, each with a hand-written backward.
#include <bitnet/autograd.h>
#include <bitnet/thread_pool.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "kernels/vector.h"

namespace bitnet::autograd {

namespace B = ::bitnet;

namespace {
Tensor f32c(const Tensor& t) { return t.to(DType::f32).contiguous(); }

// cos and sin of (start_pos + t) * theta^(-2i/D) for t < T, i < D/2, as [T, D/2] tables.
void rope_tables(int64_t t_len, int64_t d, double theta, int64_t start_pos, std::vector<float>& cos_t,
                 std::vector<float>& sin_t) {
  const int64_t half = d / 2;
  cos_t.resize(static_cast<size_t>(t_len * half));
  sin_t.resize(cos_t.size());
  for (int64_t t = 0; t < t_len; ++t)
    for (int64_t i = 0; i < half; ++i) {
      const double inv_freq = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(d));
      const double angle = static_cast<double>(start_pos + t) * inv_freq;
      cos_t[static_cast<size_t>(t * half + i)] = static_cast<float>(std::cos(angle));
      sin_t[static_cast<size_t>(t * half + i)] = static_cast<float>(std::sin(angle));
    }
}

// Rotates each (i, i + D/2) pair of x [B, T, H, D] by +angle (forward) or -angle (its transpose, the backward).
Tensor rotate(const Tensor& x_in, const std::vector<float>& cos_t, const std::vector<float>& sin_t, bool inverse) {
  const Tensor x = f32c(x_in);
  const int64_t b = x.size(0), t_len = x.size(1), h = x.size(2), d = x.size(3), half = d / 2;
  Tensor out = Tensor::empty(x.shape());
  const float* px = x.data_as<float>();
  float* po = out.data_as<float>();
  const float sign = inverse ? -1.0f : 1.0f;
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t t = 0; t < t_len; ++t)
      for (int64_t hi = 0; hi < h; ++hi) {
        const int64_t base = ((bi * t_len + t) * h + hi) * d;
        for (int64_t i = 0; i < half; ++i) {
          const float c = cos_t[static_cast<size_t>(t * half + i)];
          const float s = sign * sin_t[static_cast<size_t>(t * half + i)];
          const float x1 = px[base + i], x2 = px[base + i + half];
          po[base + i] = x1 * c - x2 * s;
          po[base + i + half] = x2 * c + x1 * s;
        }
      }
  return out;
}

// Head h of batch b as a [T, D] view (no copy) of q, k, v or their gradients, in either layout.
Tensor head_view(const Tensor& t, int64_t b, int64_t h, bool seq_major) {
  const Tensor tb = t.select(0, b);
  return seq_major ? tb.select(1, h) : tb.select(0, h);
}

// p [T, T] = causal softmax of s * scale, in place: row i keeps columns j <= i, the rest is exactly 0.
void causal_softmax_rows(float* p, int64_t t_len, float scale) {
  const auto& vk = kernels::vector_kernels();
  for (int64_t i = 0; i < t_len; ++i) {
    float* row = p + i * t_len;
    vk.binary_scalar[static_cast<int>(kernels::BinaryOp::mul)](row, scale, row, i + 1);
    vk.softmax_row(row, row, i + 1);
    std::fill(row + i + 1, row + t_len, 0.0f);
  }
}

// ds = p * (dp - rowsum(dp * p)) * scale, in place in dp. Masked entries have p == 0 and get 0.
void softmax_backward_rows(const float* p, float* dp, int64_t t_len, float scale) {
  for (int64_t i = 0; i < t_len; ++i) {
    const float* pr = p + i * t_len;
    float* dr = dp + i * t_len;
    double dot = 0.0;
    for (int64_t j = 0; j <= i; ++j) dot += static_cast<double>(dr[j]) * pr[j];
    const auto c = static_cast<float>(dot);
    for (int64_t j = 0; j <= i; ++j) dr[j] = pr[j] * (dr[j] - c) * scale;
    std::fill(dr + i + 1, dr + t_len, 0.0f);
  }
}

}  // namespace

Var rope(const Var& x, double theta, int64_t start_pos) {
  BITNET_CHECK(x.ndim() == 4, "[rope] expects x of shape [batch, seq, heads, head_dim], got {}", shape_str(x.shape()));
  BITNET_CHECK(x.size(3) % 2 == 0, "[rope] head_dim must be even, got {}", x.size(3));
  BITNET_CHECK(theta > 0.0, "[rope] theta must be positive, got {}", theta);
  auto cos_t = std::make_shared<std::vector<float>>();
  auto sin_t = std::make_shared<std::vector<float>>();
  rope_tables(x.size(1), x.size(3), theta, start_pos, *cos_t, *sin_t);
  return make_result(rotate(x.value(), *cos_t, *sin_t, false), "rope", {x}, [cos_t, sin_t](const Tensor& g) {
    return std::vector<Tensor>{rotate(g, *cos_t, *sin_t, true)};
  });
}

Var causal_attention(const Var& q, const Var& k, const Var& v, bool seq_major) {
  BITNET_CHECK(q.ndim() == 4 && k.ndim() == 4 && v.ndim() == 4,
               "[causal_attention] expects 4-D q, k, v ([batch, {}]), got {}, {}, {}",
               seq_major ? "seq, heads, head_dim" : "heads, seq, head_dim", shape_str(q.shape()), shape_str(k.shape()),
               shape_str(v.shape()));
  const int64_t seq_dim = seq_major ? 1 : 2, head_dim = seq_major ? 2 : 1;
  const int64_t b = q.size(0), hq = q.size(head_dim), t_len = q.size(seq_dim), d = q.size(3), hkv = k.size(head_dim);
  BITNET_CHECK(k.shape() == v.shape() && k.size(0) == b && k.size(seq_dim) == t_len && k.size(3) == d,
               "[causal_attention] k and v must match q's batch ({}), seq ({}) and head_dim ({}), got {} and {}", b,
               t_len, d, shape_str(k.shape()), shape_str(v.shape()));
  BITNET_CHECK(hkv > 0 && hq % hkv == 0, "[causal_attention] query heads ({}) must be a multiple of key/value heads ({})",
               hq, hkv);
  const int64_t group = hq / hkv;
  const auto scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  const Tensor vq = f32c(q.value()), vk = f32c(k.value()), vv = f32c(v.value());
  // One task per (batch, key/value head): its query heads share K and V, and their gradients add into the
  // same dK and dV, so no two tasks write the same memory. The per-head products are small GEMMs on views.
  Tensor o = Tensor::empty(q.shape());
  auto probs = std::make_shared<std::vector<Tensor>>(static_cast<size_t>(b * hq));  // [T, T] per (batch, head)
  parallel_for(b * hkv, [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t bi = u / hkv, kv = u % hkv;
      const Tensor kh = head_view(vk, bi, kv, seq_major), vh = head_view(vv, bi, kv, seq_major);
      for (int64_t h = kv * group; h < (kv + 1) * group; ++h) {
        Tensor p = B::matmul(head_view(vq, bi, h, seq_major), kh.t());
        causal_softmax_rows(p.data_as<float>(), t_len, scale);
        head_view(o, bi, h, seq_major).copy_from(B::matmul(p, vh));
        (*probs)[static_cast<size_t>(bi * hq + h)] = std::move(p);
      }
    }
  });
  return make_result(o, "causal_attention", {q, k, v}, [vq, vk, vv, probs, scale, b, hq, hkv, group, t_len, seq_major](
                                                           const Tensor& g_in) {
    const Tensor g = f32c(g_in);
    Tensor dq = Tensor::empty(vq.shape()), dk = Tensor::empty(vk.shape()), dv = Tensor::empty(vv.shape());
    parallel_for(b * hkv, [&](int64_t u0, int64_t u1) {
      for (int64_t u = u0; u < u1; ++u) {
        const int64_t bi = u / hkv, kv = u % hkv;
        const Tensor kh = head_view(vk, bi, kv, seq_major), vh = head_view(vv, bi, kv, seq_major);
        Tensor dk_acc, dv_acc;
        for (int64_t h = kv * group; h < (kv + 1) * group; ++h) {
          const Tensor& p = (*probs)[static_cast<size_t>(bi * hq + h)];
          const Tensor gh = head_view(g, bi, h, seq_major), qh = head_view(vq, bi, h, seq_major);
          const Tensor dvh = B::matmul(p.t(), gh);
          Tensor ds = B::matmul(gh, vh.t());
          softmax_backward_rows(p.data_as<float>(), ds.data_as<float>(), t_len, scale);
          head_view(dq, bi, h, seq_major).copy_from(B::matmul(ds, kh));
          const Tensor dkh = B::matmul(ds.t(), qh);
          dk_acc = dk_acc.defined() ? B::add(dk_acc, dkh) : dkh;
          dv_acc = dv_acc.defined() ? B::add(dv_acc, dvh) : dvh;
        }
        head_view(dk, bi, kv, seq_major).copy_from(dk_acc);
        head_view(dv, bi, kv, seq_major).copy_from(dv_acc);
      }
    });
    return std::vector<Tensor>{dq, dk, dv};
  });
}

}  // namespace bitnet::autograd
