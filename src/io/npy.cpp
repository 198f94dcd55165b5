// .npy writer (numpy.lib.format, version 1.0): magic, header length, a Python dict literal padded with spaces
// to a multiple of 64 bytes (ending in '\n'), then the raw data.
#include <bitnet/error.h>
#include <bitnet/npy.h>
#include <fmt/format.h>

#include <bit>
#include <cstdio>
#include <filesystem>

namespace bitnet {

namespace {
void write_npy(const std::string& path, const std::vector<int64_t>& shape, std::string_view descr, const void* bytes,
               size_t elem_size, size_t count) {
  static_assert(std::endian::native == std::endian::little, "the header says '<'");
  int64_t n = 1;
  std::string dims;
  for (int64_t d : shape) {
    BITNET_CHECK(d >= 0, "[npy] '{}': negative dimension {}", path, d);
    n *= d;
    dims += fmt::format("{}, ", d);
  }
  if (shape.size() > 1) dims.resize(dims.size() - 1);  // "(3, 4)" but "(3,)"
  BITNET_CHECK(n == static_cast<int64_t>(count), "[npy] '{}': shape holds {} values, data {}", path, n, count);
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}", descr, dims);
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  BITNET_CHECK(f != nullptr, "[npy] cannot create '{}'", tmp);
  const auto len = static_cast<uint16_t>(header.size());
  const unsigned char preamble[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<unsigned char>(len & 0xFF),
                                      static_cast<unsigned char>(len >> 8)};
  bool ok = std::fwrite(preamble, 1, 10, f) == 10 && std::fwrite(header.data(), 1, header.size(), f) == header.size() &&
            std::fwrite(bytes, elem_size, count, f) == count;
  ok = (std::fclose(f) == 0) && ok;
  std::error_code ec;
  if (!ok) {
    std::filesystem::remove(tmp, ec);
    fail("[npy] writing '{}' failed (disk full?)", path);
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    fail("[npy] cannot move '{}' into place as '{}'", tmp, path);
  }
}
}  // namespace

void write_npy_f32(const std::string& path, const std::vector<int64_t>& shape, std::span<const float> data) {
  write_npy(path, shape, "<f4", data.data(), sizeof(float), data.size());
}

void write_npy_i32(const std::string& path, const std::vector<int64_t>& shape, std::span<const int32_t> data) {
  write_npy(path, shape, "<i4", data.data(), sizeof(int32_t), data.size());
}

}  // namespace bitnet
