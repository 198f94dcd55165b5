#pragma once
// Internal: RFC 4648 base64 for the GGUF metadata the exporter keeps in an ONNX metadata_props string (which
// readers treat as text).
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet::onnx_io {

std::string base64_encode(std::span<const std::byte> bytes);
// nullopt when `text` is not padded base64.
std::optional<std::vector<std::byte>> base64_decode(std::string_view text);

}  // namespace bitnet::onnx_io
