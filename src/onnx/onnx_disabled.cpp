// The ONNX API of a build without ONNX (Debian libonnx-dev / libprotobuf-dev not found, or the Arm cross
// build): every entry point says how to get it.
#include <bitnet/error.h>
#include <bitnet/onnx.h>

#include "io/convert_internal.h"

namespace bitnet {

namespace {
[[noreturn]] void not_built(const std::string& what) {
  fail("[onnx] {}: this build has no ONNX support; install libonnx-dev, libprotobuf-dev and protobuf-compiler "
       "(scripts/setup.sh does) and rebuild", what);
}
}  // namespace

bool onnx_built() { return false; }

OnnxExportSummary export_onnx(const std::string&, const std::string& out_path, const OnnxExportOptions&) {
  not_built(out_path);
}

std::optional<GgmlType> onnx_source_ternary_type(const std::string& path) { not_built(path); }

namespace convert_detail {
void convert_onnx(const std::string& input, const std::string&, const ConvertOptions&, ConvertSummary&) {
  not_built(input);
}
}  // namespace convert_detail

}  // namespace bitnet
