// Deterministic batches of next-token windows: the order is a pure function of (seed, epoch).
#include <bitnet/train.h>

namespace bitnet::train {

TokenBatcher::TokenBatcher(std::vector<int32_t> tokens, int64_t batch_size, int64_t seq_len, uint64_t seed)
    : tokens_(std::move(tokens)), batch_size_(batch_size), seq_len_(seq_len), windows_(0), seed_(seed) {
  BITNET_CHECK(batch_size > 0 && seq_len > 0, "[TokenBatcher] batch_size and seq_len must be positive, got {} and {}",
               batch_size, seq_len);
  windows_ = tokens_.empty() ? 0 : (static_cast<int64_t>(tokens_.size()) - 1) / seq_len;
  BITNET_CHECK(windows_ > 0, "[TokenBatcher] {} tokens are too few for one window of seq_len + 1 = {} tokens",
               tokens_.size(), seq_len + 1);
}

const std::vector<int64_t>& TokenBatcher::order(int64_t epoch) const {
  if (epoch != cached_epoch_) {
    cached_order_.resize(static_cast<size_t>(windows_));
    for (int64_t i = 0; i < windows_; ++i) cached_order_[static_cast<size_t>(i)] = i;
    // Fisher-Yates with a generator that gives the same numbers on every platform.
    nn::InitRng rng(seed_ * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(epoch));
    for (int64_t i = windows_ - 1; i > 0; --i) {
      const auto j = static_cast<int64_t>(rng.next_u64() % static_cast<uint64_t>(i + 1));
      std::swap(cached_order_[static_cast<size_t>(i)], cached_order_[static_cast<size_t>(j)]);
    }
    cached_epoch_ = epoch;
  }
  return cached_order_;
}

Batch TokenBatcher::batch(int64_t index) const { return batch(index, 0, batch_size_); }

Batch TokenBatcher::batch(int64_t index, int64_t row_begin, int64_t rows) const {
  BITNET_CHECK(index >= 0, "[TokenBatcher] batch index must be non-negative, got {}", index);
  BITNET_CHECK(row_begin >= 0 && rows > 0 && row_begin + rows <= batch_size_,
               "[TokenBatcher] rows {}..{} are outside a batch of {}", row_begin, row_begin + rows, batch_size_);
  Batch b{Tensor::empty({rows, seq_len_}, DType::i32), Tensor::empty({rows, seq_len_}, DType::i32)};
  int32_t* in = b.inputs.data_as<int32_t>();
  int32_t* tg = b.targets.data_as<int32_t>();
  for (int64_t k = 0; k < rows; ++k) {
    const int64_t g = index * batch_size_ + row_begin + k;
    const int64_t w = order(g / windows_)[static_cast<size_t>(g % windows_)];
    const int32_t* src = tokens_.data() + w * seq_len_;
    std::copy(src, src + seq_len_, in + k * seq_len_);
    std::copy(src + 1, src + seq_len_ + 1, tg + k * seq_len_);
  }
  return b;
}

}  // namespace bitnet::train
