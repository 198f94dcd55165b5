#pragma once
// Internal: a temporary GGUF that a Hugging Face directory or an ONNX file is converted into before the engine
// maps it (Model::load_hf, open_model). The name is unlinked when the scope ends; a mapping outlives it.
#include <bitnet/error.h>
#include <bitnet/model_files.h>

#include <cstdlib>
#include <string>
#include <unistd.h>

namespace bitnet {

struct TempGguf {
  std::string path;
  TempGguf() {
    const char* dir = std::getenv("TMPDIR");
    std::string pattern = std::string(dir && *dir ? dir : "/tmp") + "/bitnet-model-XXXXXX.gguf";
    const int fd = ::mkstemps(pattern.data(), 5);
    BITNET_CHECK(fd >= 0, "[model] cannot create a temporary file '{}' to convert the model into", pattern);
    ::close(fd);
    path = pattern;
  }
  ~TempGguf() { ::unlink(path.c_str()); }
  TempGguf(const TempGguf&) = delete;
  TempGguf& operator=(const TempGguf&) = delete;
};

// A Hugging Face directory or an ONNX file converted into `out` the way the engine loads it (src/model/
// model_hf.cpp): I2_S projections (one f32 scale per tensor, exactly the source's), latent weights ternarized
// (a directory's caller has checked it is a BitNet checkpoint; an ONNX file's `quantize` is the user's
// --quantize), a directory's BF16 embedding as F16, F16 and F32 kept.
ConvertSummary convert_for_loading(const ModelPath& source, const std::string& out, bool quantize);

}  // namespace bitnet
