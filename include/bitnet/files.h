#pragma once
// Reading a user's input file safely: only a regular file (a FIFO, device or /dev/zero is refused by name, never
// read forever), and never more than a stated size (refused before anything is read).
#include <cstdint>
#include <string>

namespace bitnet {

std::string read_regular_file(const std::string& path, uint64_t max_bytes);

}  // namespace bitnet
