#pragma once
// Internal: contiguous dtype conversion through the vector kernels where a fast path exists.
#include <bitnet/dtype.h>

#include <cstddef>
#include <cstdint>

namespace bitnet::kernels {

// Converts n contiguous elements; returns false (doing nothing) when no fast path covers the pair.
bool convert_contiguous(const std::byte* src, DType src_type, std::byte* dst, DType dst_type, int64_t n);

}  // namespace bitnet::kernels
