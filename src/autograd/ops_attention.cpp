// Rotary position embedding and causal grouped-query attention, each with a hand-written backward.
#include <bitnet/autograd.h>

#include <cmath>

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

// Softmax over the causal part of each [T, T] score matrix (columns j <= row i); the rest is exactly 0.
Tensor causal_softmax(const Tensor& s_in) {
  const Tensor s = f32c(s_in);
  const int64_t t_len = s.size(-1);
  const int64_t mats = t_len == 0 ? 0 : s.numel() / (t_len * t_len);
  Tensor p = Tensor::empty(s.shape());
  const float* ps = s.data_as<float>();
  float* pp = p.data_as<float>();
  for (int64_t m = 0; m < mats; ++m)
    for (int64_t i = 0; i < t_len; ++i) {
      const float* row = ps + (m * t_len + i) * t_len;
      float* out = pp + (m * t_len + i) * t_len;
      float mx = row[0];
      for (int64_t j = 1; j <= i; ++j) mx = std::max(mx, row[j]);
      double total = 0.0;
      for (int64_t j = 0; j <= i; ++j) {
        out[j] = std::exp(row[j] - mx);
        total += out[j];
      }
      const auto inv = static_cast<float>(1.0 / total);
      for (int64_t j = 0; j <= i; ++j) out[j] *= inv;
      for (int64_t j = i + 1; j < t_len; ++j) out[j] = 0.0f;
    }
  return p;
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

Var causal_attention(const Var& q, const Var& k, const Var& v) {
  BITNET_CHECK(q.ndim() == 4 && k.ndim() == 4 && v.ndim() == 4,
               "[causal_attention] expects q, k, v of shape [batch, heads, seq, head_dim], got {}, {}, {}",
               shape_str(q.shape()), shape_str(k.shape()), shape_str(v.shape()));
  const int64_t b = q.size(0), hq = q.size(1), t_len = q.size(2), d = q.size(3), hkv = k.size(1);
  BITNET_CHECK(k.shape() == v.shape() && k.size(0) == b && k.size(2) == t_len && k.size(3) == d,
               "[causal_attention] k and v must be [{}, Hkv, {}, {}], got {} and {}", b, t_len, d, shape_str(k.shape()),
               shape_str(v.shape()));
  BITNET_CHECK(hkv > 0 && hq % hkv == 0, "[causal_attention] query heads ({}) must be a multiple of key/value heads ({})",
               hq, hkv);
  const int64_t group = hq / hkv;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  // Query heads grouped per key/value head: [B, Hkv, G, T, D] against [B, Hkv, 1, T, D] (broadcast, no copy).
  const Tensor q5 = f32c(q.value()).reshape({b, hkv, group, t_len, d});
  const Tensor k5 = f32c(k.value()).unsqueeze(2);
  const Tensor v5 = f32c(v.value()).unsqueeze(2);
  const Tensor p = causal_softmax(B::mul(B::matmul(q5, k5.transpose(-2, -1)), scale));
  const Tensor o = B::matmul(p, v5).reshape({b, hq, t_len, d});
  return make_result(o, "causal_attention", {q, k, v}, [q5, k5, v5, p, scale, b, hq, hkv, group, t_len, d](
                                                           const Tensor& g) {
    const Tensor g5 = f32c(g).reshape({b, hkv, group, t_len, d});
    const Tensor dv = B::sum(B::matmul(p.transpose(-2, -1), g5), {2});
    const Tensor dp = B::matmul(g5, v5.transpose(-2, -1));
    // Softmax backward; masked entries have p == 0 and so get no gradient.
    const Tensor ds = B::mul(B::mul(p, B::sub(dp, B::sum(B::mul(dp, p), {-1}, true))), scale);
    const Tensor dq = B::matmul(ds, k5).reshape({b, hq, t_len, d});
    const Tensor dk = B::sum(B::matmul(ds.transpose(-2, -1), q5), {2});
    return std::vector<Tensor>{dq, dk, dv};
  });
}

}  // namespace bitnet::autograd
