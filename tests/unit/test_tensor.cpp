#include <bitnet/ops.h>
#include <bitnet/tensor.h>
#include <gtest/gtest.h>

#include <random>

#include "test_util.h"

namespace bitnet {
namespace {

Tensor iota(const Shape& shape) { return Tensor::arange(shape_numel(shape)).view(shape); }

TEST(Tensor, CreationAndProperties) {
  Tensor t = Tensor::zeros({2, 3, 4});
  EXPECT_EQ(t.ndim(), 3);
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.strides(), (Strides{12, 4, 1}));
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data()) % kAlignment, 0u);
  EXPECT_EQ(Tensor::full({2}, 3.5, DType::bf16).at({1}), 3.5);
  EXPECT_EQ(Tensor::scalar(7, DType::i32).item(), 7);
  EXPECT_EQ(Tensor::ones({}, DType::u8).ndim(), 0);
  EXPECT_THROW(Tensor::empty({2, -1}), Error);
  EXPECT_THROW(Tensor::from_vector({1, 2, 3}, {2, 2}), Error);
  EXPECT_EQ(t.str(), "Tensor(f32, [2, 3, 4])");
}

TEST(Tensor, SliceSelectTranspose) {
  Tensor t = iota({4, 5});
  Tensor s = t.slice(1, 1, 5, 2);  // columns 1, 3
  EXPECT_EQ(s.shape(), (Shape{4, 2}));
  EXPECT_FALSE(s.is_contiguous());
  EXPECT_EQ(s.at({2, 1}), 13);
  EXPECT_EQ(t.slice(0, -2, 100).shape(), (Shape{2, 5}));  // Python clamping
  EXPECT_EQ(t.slice(0, 3, 1).numel(), 0);
  EXPECT_EQ(t.select(1, -1).at({3}), 19);
  Tensor tt = t.t();
  EXPECT_EQ(tt.shape(), (Shape{5, 4}));
  EXPECT_EQ(tt.at({4, 1}), 9);
  EXPECT_EQ(tt.storage(), t.storage());  // a view, not a copy
  Tensor c = tt.contiguous();
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_EQ(c.at({4, 1}), 9);
  EXPECT_NE(c.storage(), t.storage());
  EXPECT_THROW(t.slice(2, 0, 1), Error);
  EXPECT_THROW(t.select(0, 4), Error);
}

TEST(Tensor, PermuteSqueezeUnsqueezeBroadcast) {
  Tensor t = iota({2, 1, 3});
  Tensor p = t.permute({2, 0, 1});
  EXPECT_EQ(p.shape(), (Shape{3, 2, 1}));
  EXPECT_EQ(p.at({2, 1, 0}), 5);
  EXPECT_THROW(t.permute({0, 0, 1}), Error);
  EXPECT_EQ(t.squeeze().shape(), (Shape{2, 3}));
  EXPECT_EQ(t.squeeze(1).shape(), (Shape{2, 3}));
  EXPECT_THROW(t.squeeze(0), Error);
  EXPECT_EQ(t.unsqueeze(0).shape(), (Shape{1, 2, 1, 3}));
  EXPECT_EQ(t.unsqueeze(-1).shape(), (Shape{2, 1, 3, 1}));
  EXPECT_EQ(t.unsqueeze(-1).at({1, 0, 2, 0}), 5);
  Tensor b = t.broadcast_to({4, 2, 5, 3});
  EXPECT_EQ(b.strides()[0], 0);
  EXPECT_EQ(b.at({3, 1, 4, 2}), 5);
  EXPECT_THROW(t.broadcast_to({2, 2, 2}), Error);
  EXPECT_EQ(broadcast_shapes({5, 1, 3}, {4, 1}), (Shape{5, 4, 3}));
  try {
    broadcast_shapes({2, 3}, {4}, "add");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[add] shapes [2, 3] and [4] do not broadcast"), std::string::npos);
  }
}

TEST(Tensor, ViewAndReshape) {
  Tensor t = iota({2, 6});
  EXPECT_EQ(t.view({3, -1}).shape(), (Shape{3, 4}));
  EXPECT_EQ(t.view({3, -1}).storage(), t.storage());
  EXPECT_THROW(t.view({5, -1}), Error);
  EXPECT_THROW(t.t().view({12}), Error);  // not contiguous: view refuses
  Tensor r = t.t().reshape({12});         // reshape copies
  EXPECT_EQ(r.at({1}), 6);
  EXPECT_EQ(r.at({2}), 1);
}

TEST(Tensor, ContiguousCopiesEveryLayout) {
  std::mt19937 rng(1);
  for (int trial = 0; trial < 50; ++trial) {
    std::uniform_int_distribution<int64_t> dim(1, 5);
    Shape shape = {dim(rng), dim(rng), dim(rng)};
    Tensor t = test::random_tensor(shape, rng);
    Tensor v = t.permute({2, 0, 1}).slice(1, 0, shape[0], 2);
    for (DType dt : {DType::f32, DType::f16, DType::bf16, DType::i32}) {
      Tensor c = v.to(dt).contiguous();
      test::for_each_index(v.shape(), [&](const std::vector<int64_t>& idx) {
        const double want = Tensor::scalar(v.at(std::span<const int64_t>(idx)), dt).item();
        ASSERT_EQ(c.at(std::span<const int64_t>(idx)), want);
      });
    }
  }
}

TEST(Tensor, CopyFromBroadcastsAndConverts) {
  Tensor dst = Tensor::zeros({3, 2}, DType::bf16);
  dst.copy_from(Tensor::from_vector({1.5f, -2.0f}, {2}));
  EXPECT_EQ(dst.at({2, 0}), 1.5);
  EXPECT_EQ(dst.at({1, 1}), -2.0);
  EXPECT_THROW(dst.copy_from(Tensor::zeros({3})), Error);
}

TEST(Tensor, WrapAndReadOnly) {
  float buffer[6] = {1, 2, 3, 4, 5, 6};
  Tensor w = Tensor::wrap(buffer, {2, 3}, DType::f32);
  w.set({1, 2}, 60);
  EXPECT_EQ(buffer[5], 60);
  Tensor ro = Tensor::wrap(buffer, {6}, DType::f32, /*read_only=*/true);
  EXPECT_TRUE(ro.read_only());
  EXPECT_THROW(ro.data(), Error);
  EXPECT_EQ(static_cast<const Tensor&>(ro).data_as<float>()[0], 1.0f);
  EXPECT_EQ(add(ro, 1.0).at({0}), 2.0);  // ops read read-only tensors
  EXPECT_FALSE(ro.clone().read_only());
}

}  // namespace
}  // namespace bitnet
