// Decoding a token allocates nothing: every heap allocation of the process goes through the replaced global
// operator new (and the library's own counted allocator), and a warmed-up decode step makes none.
#include <bitnet/engine.h>
#include <bitnet/memory.h>
#include <bitnet/thread_pool.h>
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
  c.context = 300;
  // Every head type with the f16 cache, and the q8_0 cache (K, V or both).
  const KvCacheTypes f16{}, q8k{KvCacheType::q8_0, KvCacheType::f16}, q8v{KvCacheType::f16, KvCacheType::q8_0},
      q8{KvCacheType::q8_0, KvCacheType::q8_0};
  for (auto [head, kv] : {std::pair{HeadType::f16, f16}, std::pair{HeadType::int8, f16}, std::pair{HeadType::int4, f16},
                          std::pair{HeadType::f16, q8k}, std::pair{HeadType::f16, q8v}, std::pair{HeadType::int4, q8}}) {
    const Model m = Model::random(c, 1, head);
    // 2 sequences (attention splits each one's context into ranges once it spans several 128-position units,
    // and folds their partials in a second pass) and 8 (the projections' multi-token tiles, no split), decoded
    // past two unit boundaries. Two threads, whatever the machine: the split needs fewer items than 4 per thread.
    ThreadPool pool(2);
    for (int n_seq : {2, 8}) {
      Engine e(m, c.context, n_seq, 8, &pool, kv);
      std::vector<float> logits(static_cast<size_t>(n_seq * c.vocab));
      std::vector<BatchToken> step;
      for (int s = 0; s < n_seq; ++s) step.push_back({s + 1, 0, s, true});
      e.decode(step, logits.data());  // warm-up: first use of the kernels, thread pool and scratch
      for (int32_t pos = 1; pos < 280; ++pos) {
        for (int s = 0; s < n_seq; ++s) step[static_cast<size_t>(s)] = {(pos * (2 * s + 1)) % 300, pos, s, true};
        const long news = g_news.load();
        const int64_t counted = memory_stats().allocations;
        e.decode(step, logits.data());
        ASSERT_EQ(g_news.load(), news) << "operator new during decode at position " << pos << ", " << n_seq << " sequences";
        ASSERT_EQ(memory_stats().allocations, counted)
            << "counted allocation during decode at position " << pos << ", " << n_seq << " sequences";
      }
    }
  }
}

}  // namespace
}  // namespace bitnet

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
