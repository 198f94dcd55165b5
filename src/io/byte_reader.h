#pragma once
// A bounds-checked little-endian cursor over untrusted bytes. Every read checks the remaining length first and
// throws bitnet::Error naming the file, the field being read and the offset: a short or hostile file can never
// make a parser read past its end.
#include <bitnet/error.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace bitnet::io {

static_assert(std::endian::native == std::endian::little, "file readers assume a little-endian host");

class ByteReader {
 public:
  ByteReader(std::span<const std::byte> bytes, std::string_view file) : bytes_(bytes), file_(file) {}

  uint64_t offset() const { return pos_; }
  uint64_t remaining() const { return bytes_.size() - pos_; }
  std::string_view file() const { return file_; }

  template <class T>
  T read(std::string_view field) {
    need(sizeof(T), field);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::span<const std::byte> take(uint64_t n, std::string_view field) {
    need(n, field);
    auto s = bytes_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  void need(uint64_t n, std::string_view field) const {
    if (n > remaining())
      fail("{}: truncated at byte {} reading {}: need {} bytes, {} left in the file", file_, pos_, field, n,
           remaining());
  }

 private:
  std::span<const std::byte> bytes_;
  std::string_view file_;
  uint64_t pos_ = 0;
};

// Overflow-checked arithmetic for sizes computed from file fields.
inline bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }
inline bool add_overflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_add_overflow(a, b, out); }

}  // namespace bitnet::io
