#pragma once
// NumPy's .npy format (version 1.0), for arrays the CLI hands to Python users: little-endian float32 or int32, C order.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace bitnet {

// Writes `data` (product of `shape` floats) to `path`, replacing it atomically (a temporary file renamed into
// place, so an interrupted write never leaves a truncated array under the name). Throws naming the path.
void write_npy_f32(const std::string& path, const std::vector<int64_t>& shape, std::span<const float> data);
void write_npy_i32(const std::string& path, const std::vector<int64_t>& shape, std::span<const int32_t> data);

}  // namespace bitnet
