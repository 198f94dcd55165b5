#pragma once
// Memory: 64-byte aligned allocation with live/peak/count statistics, a bump arena for scratch buffers, and
// read-only memory-mapped files (so a model file costs no copy).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet {

inline constexpr size_t kAlignment = 64;  // one cache line; also the widest vector register (zmm)

// Counters of the library's own allocations (tensor storage and arena blocks, not mmap'd files).
struct MemoryStats {
  int64_t live_bytes = 0;        // bytes allocated and not yet freed
  int64_t peak_bytes = 0;        // highest live_bytes since start or the last reset_peak_memory()
  int64_t allocations = 0;       // allocation calls since start
  int64_t live_allocations = 0;  // allocations not yet freed
};
MemoryStats memory_stats();
void reset_peak_memory();

// Aligned allocation that the counters see. bytes == 0 returns a valid unique pointer. Throws bitnet::Error
// when the system refuses. Freed blocks of 1 MiB or more are kept in a cache (at most 1 GiB) and reused,
// because fresh pages cost a page fault each; the counters count them as freed.
void* aligned_alloc_counted(size_t bytes, size_t alignment = kAlignment);
void aligned_free_counted(void* ptr, size_t bytes);
// The same as a standard allocator, for containers (blocks of 2 MiB or more on transparent huge pages).
template <class T>
struct CountedAllocator {
  using value_type = T;
  CountedAllocator() = default;
  template <class U>
  CountedAllocator(const CountedAllocator<U>&) {}  // NOLINT(google-explicit-constructor): rebinding
  T* allocate(size_t n) { return static_cast<T*>(aligned_alloc_counted(n * sizeof(T))); }
  void deallocate(T* p, size_t n) { aligned_free_counted(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const CountedAllocator<U>&) const {
    return true;
  }
};
// A vector on kAlignment: for buffers that kernels stream with wide loads. (malloc aligns to 16 bytes, so half of
// the 32-byte loads from a std::vector cross a cache line, which cost the AVX2 ternary tiles a fifth of their speed.)
template <class T>
using AlignedVector = std::vector<T, CountedAllocator<T>>;
// Bytes held by the cache of freed large blocks, and a way to return them to the system.
size_t cached_memory_bytes();
void release_cached_memory();

// Bump allocator over one aligned block: alloc() is a pointer increment, reset() frees everything at once.
// Used for scratch buffers so that a hot loop allocates nothing. Not thread-safe: one arena per thread.
class Arena {
 public:
  explicit Arena(size_t capacity_bytes);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // Throws bitnet::Error if the arena cannot hold `bytes` more (the message says by how much).
  void* alloc(size_t bytes, size_t alignment = kAlignment);
  template <class T>
  T* alloc_array(size_t count) {
    return static_cast<T*>(alloc(count * sizeof(T), alignof(T) > kAlignment ? alignof(T) : kAlignment));
  }
  void reset() { used_ = 0; }

  size_t capacity() const { return capacity_; }
  size_t used() const { return used_; }
  size_t high_water() const { return high_water_; }  // most bytes ever in use at once

 private:
  std::byte* base_;
  size_t capacity_;
  size_t used_ = 0;
  size_t high_water_ = 0;
};

// Drops the pages of a read-only file mapping's byte range from this process's resident set (they come back
// from the file if touched again): once a loader or converter has copied a tensor out of a mapped file, its
// pages need not count against the process. Only whole pages inside the range are dropped.
void release_mapped_pages(const void* data, size_t bytes);

// Memory the system can still give this process (MemAvailable, bounded by a cgroup limit when one is set);
// 0 when it cannot be read. check_memory_for() throws "WHAT needs N GiB but only M GiB are available" before
// an allocation that cannot succeed (a file or config that asks for more than the machine has).
uint64_t available_memory_bytes();
void check_memory_for(uint64_t bytes, std::string_view what);

// A whole file mapped read-only. Shared by every tensor that views it; unmapped when the last one goes.
class MappedFile {
 public:
  // Throws bitnet::Error naming the path when the file cannot be opened or mapped.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, const std::byte* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  const std::byte* data_;
  size_t size_;
};

// The bytes behind a tensor: owned aligned memory, a region of a mapped file, or memory owned elsewhere.
class Storage {
 public:
  static std::shared_ptr<Storage> allocate(size_t bytes);
  static std::shared_ptr<Storage> mapped(std::shared_ptr<MappedFile> file, size_t offset, size_t bytes);
  // Memory the caller keeps alive for as long as any tensor uses it (e.g. an Arena block).
  static std::shared_ptr<Storage> external(void* data, size_t bytes, bool read_only);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  std::byte* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  bool read_only() const { return read_only_; }

 private:
  enum class Kind { owned, mapped, external };
  Storage(Kind kind, std::byte* data, size_t bytes, bool read_only, std::shared_ptr<MappedFile> file)
      : kind_(kind), data_(data), bytes_(bytes), read_only_(read_only), file_(std::move(file)) {}
  Kind kind_;
  std::byte* data_;
  size_t bytes_;
  bool read_only_;
  std::shared_ptr<MappedFile> file_;  // keeps a mapping alive
};

}  // namespace bitnet
