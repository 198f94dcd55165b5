// Pooled, normalized final hidden states (see include/bitnet/embedding.h).
#include <bitnet/embedding.h>
#include <bitnet/error.h>

#include <algorithm>
#include <cmath>

namespace bitnet {

Pooling parse_pooling(std::string_view name) {
  if (name == "none") return Pooling::none;
  if (name == "mean") return Pooling::mean;
  if (name == "cls") return Pooling::cls;
  if (name == "last") return Pooling::last;
  throw Error(fmt::format("[embedding] unknown pooling '{}' (none, mean, cls, last)", name));
}

const char* pooling_name(Pooling p) {
  switch (p) {
    case Pooling::none: return "none";
    case Pooling::mean: return "mean";
    case Pooling::cls: return "cls";
    case Pooling::last: return "last";
  }
  return "?";
}

void normalize_embedding(std::span<float> v, int norm) {
  if (norm < 0) return;
  double sum = 0;
  if (norm == 0) {
    for (const float x : v) sum = std::max(sum, std::fabs(static_cast<double>(x)));
    sum /= 32760.0;
  } else if (norm == 2) {
    for (const float x : v) sum += static_cast<double>(x) * x;
    sum = std::sqrt(sum);
  } else {
    for (const float x : v) sum += std::pow(std::fabs(static_cast<double>(x)), norm);
    sum = std::pow(sum, 1.0 / norm);
  }
  const double scale = sum > 0 ? 1.0 / sum : 0.0;
  for (float& x : v) x = static_cast<float>(x * scale);
}

Embeddings embed_tokens(Engine& engine, std::span<const int32_t> tokens, Pooling pooling, int norm, int seq) {
  BITNET_CHECK(!tokens.empty(), "[embedding] the text encodes to no tokens");
  BITNET_CHECK(static_cast<int64_t>(tokens.size()) <= engine.context(),
               "[embedding] the text has {} tokens but the context holds {}", tokens.size(), engine.context());
  const int64_t dim = engine.model().config().hidden;
  const auto n = static_cast<int64_t>(tokens.size());
  std::vector<float> hidden(static_cast<size_t>(n * dim));
  engine.eval_hidden(seq, tokens, 0, hidden.data());
  Embeddings e;
  e.dim = dim;
  e.tokens = static_cast<int>(n);
  switch (pooling) {
    case Pooling::none:
      e.rows = n;
      e.values = std::move(hidden);
      break;
    case Pooling::mean: {
      e.rows = 1;
      std::vector<double> acc(static_cast<size_t>(dim), 0.0);
      for (int64_t t = 0; t < n; ++t)
        for (int64_t d = 0; d < dim; ++d) acc[static_cast<size_t>(d)] += hidden[static_cast<size_t>(t * dim + d)];
      e.values.resize(static_cast<size_t>(dim));
      for (int64_t d = 0; d < dim; ++d) e.values[static_cast<size_t>(d)] = static_cast<float>(acc[static_cast<size_t>(d)] / n);
      break;
    }
    case Pooling::cls:
    case Pooling::last: {
      e.rows = 1;
      const int64_t t = pooling == Pooling::cls ? 0 : n - 1;
      e.values.assign(hidden.begin() + t * dim, hidden.begin() + (t + 1) * dim);
      break;
    }
  }
  for (int64_t r = 0; r < e.rows; ++r) normalize_embedding(std::span<float>(e.values).subspan(static_cast<size_t>(r * dim), static_cast<size_t>(dim)), norm);
  return e;
}

}  // namespace bitnet
