#pragma once
// Internal: a temporary GGUF that a Hugging Face directory or an ONNX file is converted into before the engine
// maps it (Model::load_hf, open_model). The name is unlinked when the scope ends; a mapping outlives it.
#include <bitnet/error.h>

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

}  // namespace bitnet
