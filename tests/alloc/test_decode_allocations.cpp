// Decoding a token allocates nothing: every heap allocation of the process goes through the replaced global
// operator new (and the library's own counted allocator), and a warmed-up decode step makes none.
#include <bitnet/engine.h>
#include <bitnet/memory.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<long> g_news{0};
}

void* operator new(std::size_t n) {
  g_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace bitnet {
namespace {

TEST(DecodeAllocations, AWarmDecodeStepAllocatesNothing) {
  TransformerConfig c;
  c.arch = "bitnet-b1.58";
  c.vocab = 300;
  c.hidden = 256;
  c.ffn = 512;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;
  c.head_dim = 64;
  c.context = 64;
  // Every head type with the f16 cache, and the q8_0 cache (K, V or both).
  const KvCacheTypes f16{}, q8k{KvCacheType::q8_0, KvCacheType::f16}, q8v{KvCacheType::f16, KvCacheType::q8_0},
      q8{KvCacheType::q8_0, KvCacheType::q8_0};
  for (auto [head, kv] : {std::pair{HeadType::f16, f16}, std::pair{HeadType::int8, f16}, std::pair{HeadType::int4, f16},
                          std::pair{HeadType::f16, q8k}, std::pair{HeadType::f16, q8v}, std::pair{HeadType::int4, q8}}) {
    const Model m = Model::random(c, 1, head);
    Engine e(m, 64, 2, 8, nullptr, kv);
    std::vector<float> logits(static_cast<size_t>(2 * c.vocab));
    std::vector<BatchToken> step = {{1, 0, 0, true}, {2, 0, 1, true}};
    e.decode(step, logits.data());  // warm-up: first use of the kernels, thread pool and scratch
    for (int32_t pos = 1; pos < 20; ++pos) {
      step[0] = {static_cast<int32_t>(pos % 300), pos, 0, true};
      step[1] = {static_cast<int32_t>((pos * 7) % 300), pos, 1, true};
      const long news = g_news.load();
      const int64_t counted = memory_stats().allocations;
      e.decode(step, logits.data());
      ASSERT_EQ(g_news.load(), news) << "operator new during decode at position " << pos;
      ASSERT_EQ(memory_stats().allocations, counted) << "counted allocation during decode at position " << pos;
    }
  }
}

}  // namespace
}  // namespace bitnet

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
