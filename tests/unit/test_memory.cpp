#include <bitnet/memory.h>
#include <bitnet/tensor.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace bitnet {
namespace {

TEST(Memory, CountersFollowTensorLifetimes) {
  const MemoryStats before = memory_stats();
  reset_peak_memory();
  {
    Tensor a = Tensor::empty({1000}, DType::f32);
    Tensor b = Tensor::empty({250}, DType::i32);
    const MemoryStats during = memory_stats();
    EXPECT_EQ(during.live_bytes - before.live_bytes, 5000);
    EXPECT_EQ(during.live_allocations - before.live_allocations, 2);
    EXPECT_EQ(during.allocations - before.allocations, 2);
    Tensor view = a.slice(0, 10, 20);  // views allocate nothing
    EXPECT_EQ(memory_stats().allocations, during.allocations);
  }
  const MemoryStats after = memory_stats();
  EXPECT_EQ(after.live_bytes, before.live_bytes);
  EXPECT_GE(after.peak_bytes, before.live_bytes + 5000);
}

TEST(Memory, ArenaBumpsAlignsAndResets) {
  Arena arena(4096);
  const MemoryStats s0 = memory_stats();
  void* a = arena.alloc(10);
  void* b = arena.alloc(100);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % kAlignment, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b) % kAlignment, 0u);
  EXPECT_EQ(static_cast<std::byte*>(b) - static_cast<std::byte*>(a), 64);
  EXPECT_EQ(arena.used(), 164u);
  Tensor t = Tensor::from_arena(arena, {8, 8});
  EXPECT_EQ(memory_stats().allocations, s0.allocations);  // scratch tensors cost no allocation
  EXPECT_EQ(t.numel(), 64);
  arena.reset();
  EXPECT_EQ(arena.used(), 0u);
  EXPECT_EQ(arena.high_water(), 192u + 256u);
  EXPECT_EQ(arena.alloc(1), a);
  try {
    arena.alloc(5000);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("out of scratch space"), std::string::npos);
  }
}

TEST(Memory, MappedFileViewsWithoutCopy) {
  char path[] = "/tmp/bitnet_mmap_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const float values[4] = {1.5f, -2.0f, 3.25f, 4.0f};
  ASSERT_EQ(write(fd, "hdr!", 4), 4);
  ASSERT_EQ(write(fd, values, sizeof values), static_cast<ssize_t>(sizeof values));
  close(fd);
  auto file = MappedFile::open(path);
  EXPECT_EQ(file->size(), 20u);
  const int64_t allocations = memory_stats().allocations;
  Tensor t = Tensor::from_mapped(file, 4, {2, 2}, DType::f32);
  EXPECT_EQ(memory_stats().allocations, allocations);
  EXPECT_TRUE(t.read_only());
  EXPECT_EQ(t.at({1, 0}), 3.25);
  EXPECT_EQ(static_cast<const void*>(static_cast<const Tensor&>(t).data()), file->data() + 4);
  EXPECT_THROW(Tensor::from_mapped(file, 8, {4}, DType::f32), Error);  // past the end
  file.reset();                                                         // the tensor keeps the mapping
  EXPECT_EQ(t.at({0, 1}), -2.0);
  std::remove(path);
  try {
    MappedFile::open("/nonexistent/model.gguf");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.gguf"), std::string::npos);
  }
  EXPECT_THROW(MappedFile::open("/tmp"), Error);
}

}  // namespace
}  // namespace bitnet

namespace bitnet {
namespace {

TEST(Memory, LargeFreedBlocksAreReusedAndReleasable) {
  release_cached_memory();
  const int64_t live = memory_stats().live_bytes;
  const void* first = nullptr;
  {
    Tensor big = Tensor::empty({1 << 20});  // 4 MiB
    first = big.data();
  }
  EXPECT_EQ(memory_stats().live_bytes, live);  // cached blocks do not count as live
  EXPECT_GE(cached_memory_bytes(), size_t{4} << 20);
  {
    Tensor again = Tensor::empty({(1 << 20) - 3});  // a similar size reuses the block
    EXPECT_EQ(again.data(), first);
    EXPECT_EQ(cached_memory_bytes(), 0u);
  }
  release_cached_memory();
  EXPECT_EQ(cached_memory_bytes(), 0u);
}

}  // namespace
}  // namespace bitnet
