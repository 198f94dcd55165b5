// Activations, softmax, RMSNorm, cross-entropy and embedding lookup. Forwards go through bitnet ops; the
// backwards that have no op to lean on are plain loops over contiguous f32 rows, reductions in double.
#include <bitnet/autograd.h>

#include <cmath>

#include "ops/ops_util.h"

namespace bitnet::autograd {

namespace B = ::bitnet;

namespace {
Tensor f32c(const Tensor& t) { return t.to(DType::f32).contiguous(); }

// grad_in[i] = g[i] * d(x[i]) for an elementwise activation whose derivative is `deriv(x)`.
template <class Deriv>
Tensor unary_backward(const Tensor& x, const Tensor& g_in, Deriv deriv) {
  const Tensor xc = f32c(x), g = f32c(g_in);
  Tensor out = Tensor::empty(x.shape());
  const float* px = xc.data_as<float>();
  const float* pg = g.data_as<float>();
  float* po = out.data_as<float>();
  detail::parallel_elements(x.numel(), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) po[i] = pg[i] * deriv(px[i]);
  });
  return out;
}

int64_t row_count(const Tensor& t) { return t.ndim() == 0 || t.size(-1) == 0 ? 0 : t.numel() / t.size(-1); }
}  // namespace

Var relu(const Var& x) {
  const Tensor vx = x.value();
  return make_result(B::relu(vx), "relu", {x}, [vx](const Tensor& g) {
    return std::vector<Tensor>{unary_backward(vx, g, [](float v) { return v > 0.0f ? 1.0f : 0.0f; })};
  });
}

Var relu2(const Var& x) {
  const Tensor vx = x.value();
  return make_result(B::relu2(vx), "relu2", {x}, [vx](const Tensor& g) {
    return std::vector<Tensor>{unary_backward(vx, g, [](float v) { return v > 0.0f ? 2.0f * v : 0.0f; })};
  });
}

Var silu(const Var& x) {
  const Tensor vx = x.value();
  return make_result(B::silu(vx), "silu", {x}, [vx](const Tensor& g) {
    return std::vector<Tensor>{unary_backward(vx, g, [](float v) {
      const double s = 1.0 / (1.0 + std::exp(-static_cast<double>(v)));
      return static_cast<float>(s * (1.0 + v * (1.0 - s)));
    })};
  });
}

Var sigmoid(const Var& x) {
  const Tensor vx = x.value();
  return make_result(B::sigmoid(vx), "sigmoid", {x}, [vx](const Tensor& g) {
    return std::vector<Tensor>{unary_backward(vx, g, [](float v) {
      const double s = 1.0 / (1.0 + std::exp(-static_cast<double>(v)));
      return static_cast<float>(s * (1.0 - s));
    })};
  });
}

Var softmax(const Var& x, int64_t axis) {
  Tensor y = B::softmax(x.value(), axis);
  return make_result(y, "softmax", {x}, [y, axis](const Tensor& g) {
    // dx = y * (g - sum(g * y))
    const Tensor dot = B::sum(B::mul(g, y), {axis}, true);
    return std::vector<Tensor>{B::mul(y, B::sub(g, dot))};
  });
}

Var log_softmax(const Var& x, int64_t axis) {
  Tensor y = B::log_softmax(x.value(), axis);
  return make_result(y, "log_softmax", {x}, [y, axis](const Tensor& g) {
    // dx = g - softmax(x) * sum(g)
    const Tensor total = B::sum(g, {axis}, true);
    return std::vector<Tensor>{B::sub(g, B::mul(B::exp(y), total))};
  });
}

Var rms_norm(const Var& x, const Var& weight, float eps) {
  BITNET_CHECK(x.ndim() >= 1, "[autograd::rms_norm] needs at least 1 dim, got a scalar");
  const bool has_w = weight.defined();
  const int64_t n = x.size(-1);
  if (has_w)
    BITNET_CHECK(weight.ndim() == 1 && weight.size(0) == n, "[autograd::rms_norm] weight must have shape [{}], got {}",
                 n, shape_str(weight.shape()));
  const Tensor vx = f32c(x.value());
  const Tensor vw = has_w ? f32c(weight.value()) : Tensor();
  Tensor y = B::rms_norm(vx, vw, eps);
  std::vector<Var> inputs{x};
  if (has_w) inputs.push_back(weight);
  const bool need_w = has_w && weight.requires_grad();
  return make_result(y, "rms_norm", std::move(inputs), [vx, vw, has_w, need_w, eps, n](const Tensor& g_in) {
    // With r = 1/sqrt(mean(x^2) + eps) and u = g * w: dx = r u - x r^3 mean(u x); dw = sum_rows g x r.
    const Tensor g = f32c(g_in);
    Tensor dx = Tensor::empty(vx.shape());
    Tensor dw = need_w ? Tensor::zeros({n}) : Tensor();
    const float* px = vx.data_as<float>();
    const float* pg = g.data_as<float>();
    const float* pw = has_w ? vw.data_as<float>() : nullptr;
    float* pdx = dx.data_as<float>();
    float* pdw = need_w ? dw.data_as<float>() : nullptr;
    const int64_t rows = row_count(vx);
    // Rows in fixed blocks, so that dw's partial sums (one per block, added in block order) do not depend on
    // the number of threads; dx rows are independent.
    constexpr int64_t kBlockRows = 32;
    const int64_t blocks = (rows + kBlockRows - 1) / kBlockRows;
    std::vector<double> acc_w(need_w ? static_cast<size_t>(blocks * n) : 0, 0.0);
    parallel_for(blocks, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        double* acc = need_w ? acc_w.data() + b * n : nullptr;
        for (int64_t r = b * kBlockRows; r < std::min(rows, (b + 1) * kBlockRows); ++r) {
          const float* xr = px + r * n;
          const float* gr = pg + r * n;
          double ss = 0.0, dot = 0.0;
          for (int64_t i = 0; i < n; ++i) {
            ss += static_cast<double>(xr[i]) * xr[i];
            dot += static_cast<double>(gr[i]) * (pw ? pw[i] : 1.0f) * xr[i];
          }
          const double rinv = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
          const double k = rinv * rinv * rinv * dot / static_cast<double>(n);
          for (int64_t i = 0; i < n; ++i) {
            const double u = static_cast<double>(gr[i]) * (pw ? pw[i] : 1.0f);
            pdx[r * n + i] = static_cast<float>(rinv * u - xr[i] * k);
            if (acc != nullptr) acc[i] += static_cast<double>(gr[i]) * xr[i] * rinv;
          }
        }
      }
    });
    for (int64_t i = 0; i < (need_w ? n : 0); ++i) {
      double total = 0.0;
      for (int64_t b = 0; b < blocks; ++b) total += acc_w[static_cast<size_t>(b * n + i)];
      pdw[i] = static_cast<float>(total);
    }
    std::vector<Tensor> out{dx};
    if (has_w) out.push_back(dw);
    return out;
  });
}

Var cross_entropy(const Var& logits, const Tensor& targets_in) {
  BITNET_CHECK(logits.ndim() >= 1, "[cross_entropy] logits need a class axis, got a scalar");
  BITNET_CHECK(!is_floating(targets_in.dtype()), "[cross_entropy] targets must be integer class ids, got {}",
               targets_in.str());
  const int64_t v = logits.size(-1);
  const Tensor vx = f32c(logits.value());
  const int64_t rows = row_count(vx);
  BITNET_CHECK(targets_in.numel() == rows,
               "[cross_entropy] {} targets for {} rows of logits {} (targets must have the logits' shape without "
               "the class axis)",
               targets_in.numel(), rows, shape_str(logits.shape()));
  const Tensor t = targets_in.to(DType::i32).contiguous();
  const int32_t* pt = t.data_as<int32_t>();
  const float* px = vx.data_as<float>();
  // Per-row log-sum-exp, kept for the backward.
  auto lse = std::make_shared<std::vector<double>>(static_cast<size_t>(rows));
  double total = 0.0;
  int64_t count = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = px + r * v;
    double m = -INFINITY;
    for (int64_t i = 0; i < v; ++i) m = std::max(m, static_cast<double>(xr[i]));
    double s = 0.0;
    for (int64_t i = 0; i < v; ++i) s += std::exp(static_cast<double>(xr[i]) - m);
    (*lse)[static_cast<size_t>(r)] = m + std::log(s);
    if (pt[r] < 0) continue;
    BITNET_CHECK(pt[r] < v, "[cross_entropy] target {} at row {} is out of range for {} classes", pt[r], r, v);
    total += (*lse)[static_cast<size_t>(r)] - xr[pt[r]];
    ++count;
  }
  BITNET_CHECK(count > 0, "[cross_entropy] every target is ignored (< 0); there is nothing to average");
  const double loss = total / static_cast<double>(count);
  return make_result(Tensor::scalar(loss), "cross_entropy", {logits}, [vx, t, lse, rows, v, count](const Tensor& g) {
    // d loss / d x = (softmax(x) - onehot(target)) / count on rows with a target, 0 on ignored rows.
    const double scale = g.item() / static_cast<double>(count);
    Tensor dx = Tensor::empty(vx.shape());
    const float* px = vx.data_as<float>();
    const int32_t* pt = t.data_as<int32_t>();
    float* pd = dx.data_as<float>();
    for (int64_t r = 0; r < rows; ++r) {
      float* dr = pd + r * v;
      if (pt[r] < 0) {
        for (int64_t i = 0; i < v; ++i) dr[i] = 0.0f;
        continue;
      }
      const double l = (*lse)[static_cast<size_t>(r)];
      for (int64_t i = 0; i < v; ++i) {
        const double p = std::exp(static_cast<double>(px[r * v + i]) - l);
        dr[i] = static_cast<float>(scale * (p - (i == pt[r] ? 1.0 : 0.0)));
      }
    }
    return std::vector<Tensor>{dx};
  });
}

Var embedding(const Var& weight, const Tensor& ids_in) {
  BITNET_CHECK(weight.ndim() == 2, "[embedding] weight must be [vocab, dim], got {}", shape_str(weight.shape()));
  BITNET_CHECK(!is_floating(ids_in.dtype()), "[embedding] ids must be integer token ids, got {}", ids_in.str());
  const int64_t vocab = weight.size(0), dim = weight.size(1);
  const Tensor ids = ids_in.to(DType::i32).contiguous();
  const Tensor w = f32c(weight.value());
  Shape out_shape = ids.shape();
  out_shape.push_back(dim);
  Tensor out = Tensor::empty(out_shape);
  const int32_t* pi = ids.data_as<int32_t>();
  const float* pw = w.data_as<float>();
  float* po = out.data_as<float>();
  const int64_t n = ids.numel();
  for (int64_t r = 0; r < n; ++r) {
    BITNET_CHECK(pi[r] >= 0 && pi[r] < vocab, "[embedding] token id {} at position {} is outside the vocabulary [0, {})",
                 pi[r], r, vocab);
    std::copy(pw + pi[r] * dim, pw + (pi[r] + 1) * dim, po + r * dim);
  }
  return make_result(out, "embedding", {weight}, [ids, vocab, dim, n](const Tensor& g_in) {
    // Scatter-add: a token that appears several times collects the sum of its rows' gradients.
    const Tensor g = f32c(g_in);
    Tensor dw = Tensor::zeros({vocab, dim});
    const int32_t* pi = ids.data_as<int32_t>();
    const float* pg = g.data_as<float>();
    float* pd = dw.data_as<float>();
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = 0; j < dim; ++j) pd[pi[r] * dim + j] += pg[r * dim + j];
    return std::vector<Tensor>{dw};
  });
}

}  // namespace bitnet::autograd
