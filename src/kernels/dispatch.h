#pragma once
// Internal: a kernel family is a table of function pointers per instruction-set variant. Every variant is
// compiled into the binary (each ISA file with its own target flags); the family picks, on first use and
// again after force_isa(), the best variant this CPU runs, or the one BITNET_ISA names.
#include <bitnet/cpu.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>
#include <vector>

namespace bitnet::kernels {

// Bumped by force_isa() so that families choose again.
uint64_t isa_epoch();

// The variant to use among those compiled: the preferred ISA, else the next best below it.
Isa choose_variant(const std::array<bool, kIsaCount>& compiled);

template <class Table>
class Family {
 public:
  Family(std::string_view name, std::array<const Table*, kIsaCount> variants)
      : name_(name), variants_(variants) {}

  const Table& get() const {
    const uint64_t epoch = isa_epoch();
    if (epoch != epoch_.load(std::memory_order_acquire)) {
      selected_.store(choose_variant(compiled()), std::memory_order_relaxed);
      epoch_.store(epoch, std::memory_order_release);
    }
    return *variants_[static_cast<size_t>(selected_.load(std::memory_order_relaxed))];
  }
  Isa selected() const {
    get();
    return selected_.load(std::memory_order_relaxed);
  }
  // The table of one variant, or nullptr when this binary lacks it or this CPU cannot run it.
  const Table* variant(Isa isa) const {
    return isa_supported(isa) ? variants_[static_cast<size_t>(isa)] : nullptr;
  }
  // Variants this CPU can run (always includes ref).
  std::vector<Isa> runnable() const {
    std::vector<Isa> out;
    for (int i = 0; i < kIsaCount; ++i)
      if (variant(static_cast<Isa>(i)) != nullptr) out.push_back(static_cast<Isa>(i));
    return out;
  }
  std::string_view name() const { return name_; }

 private:
  std::array<bool, kIsaCount> compiled() const {
    std::array<bool, kIsaCount> c{};
    for (int i = 0; i < kIsaCount; ++i) c[static_cast<size_t>(i)] = variants_[static_cast<size_t>(i)] != nullptr;
    return c;
  }
  std::string_view name_;
  std::array<const Table*, kIsaCount> variants_;
  mutable std::atomic<uint64_t> epoch_{~uint64_t{0}};
  mutable std::atomic<Isa> selected_{Isa::ref};
};

}  // namespace bitnet::kernels
