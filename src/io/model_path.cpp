// Resolving a user's model path (model_files.h) before anything is opened, so that every command, the server
// and Python accept the same spellings and refuse the same things with the same words.
#include <bitnet/error.h>
#include <bitnet/model_files.h>

#include <cstring>
#include <filesystem>
#include <fstream>

namespace bitnet {

namespace fs = std::filesystem;

namespace {
bool has_gguf_magic(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  char magic[4] = {};
  return f.read(magic, 4) && std::memcmp(magic, "GGUF", 4) == 0;
}
}  // namespace

ModelPath resolve_model_path(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) fail("[model] '{}' does not exist", path);
  if (fs::is_directory(st)) {
    if (!fs::is_regular_file(fs::path(path) / "config.json", ec))
      fail("[model] '{}' is a directory without config.json; expected a Hugging Face checkpoint directory "
           "(config.json + *.safetensors) or a .gguf file", path);
    return {ModelPath::Kind::hf_dir, path};
  }
  if (!fs::is_regular_file(st))
    fail("[model] '{}' is not a regular file or directory (a FIFO, socket or device cannot be a model)", path);
  const fs::path p(path);
  const std::string name = p.filename().string();
  if (has_gguf_magic(p)) return {ModelPath::Kind::gguf, path};
  if (name.ends_with(".gguf")) fail("[model] '{}' does not start with the GGUF magic; it is not a GGUF file", path);
  if (name.ends_with(".onnx")) return {ModelPath::Kind::onnx, path};
  if (name == "config.json" || name.ends_with(".safetensors") || name.ends_with(".safetensors.index.json")) {
    const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
    if (!fs::is_regular_file(dir / "config.json", ec))
      fail("[model] '{}' is part of a Hugging Face checkpoint, but '{}' has no config.json", path, dir.string());
    return {ModelPath::Kind::hf_dir, dir.string()};
  }
  fail("[model] '{}' is neither a GGUF file, an ONNX file (.onnx) nor a Hugging Face checkpoint (a directory with "
       "config.json and *.safetensors)", path);
}

}  // namespace bitnet
