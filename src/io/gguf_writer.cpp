// GGUF writer: header, metadata and tensor table first (offsets are known from the declared sizes), then the
// tensor data streamed one tensor at a time, each padded to the alignment.
#include <bitnet/error.h>
#include <bitnet/gguf.h>

#include <cerrno>
#include <cstring>
#include <set>

namespace bitnet {

namespace {
constexpr uint32_t kMagic = 0x46554747;
constexpr uint32_t kVersion = 3;

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }
}  // namespace

GgufWriter::GgufWriter(uint32_t alignment) : alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    fail("[gguf writer] alignment {} must be a power of two", alignment);
  if (alignment != 32) kv_.emplace_back("general.alignment", GgufValue::u32(alignment));
}

GgufWriter::~GgufWriter() {
  if (out_) std::fclose(out_);
}

void GgufWriter::set(std::string key, GgufValue value) {
  if (out_) fail("[gguf writer] metadata '{}' set after write_header()", key);
  if (key.empty()) fail("[gguf writer] empty metadata key");
  if (key == "general.alignment")
    fail("[gguf writer] set general.alignment through the GgufWriter constructor, so offsets and the key agree");
  for (const auto& [k, v] : kv_)
    if (k == key) fail("[gguf writer] duplicate metadata key '{}'", key);
  if (value.type == GgufValueType::array && value.elem_type == GgufValueType::array && value.arrays.size() != value.count)
    fail("[gguf writer] array '{}' is inconsistent", key);
  kv_.emplace_back(std::move(key), std::move(value));
}

uint64_t GgufWriter::add_tensor(std::string name, std::vector<int64_t> dims, GgmlType type) {
  if (out_) fail("[gguf writer] tensor '{}' added after write_header()", name);
  if (name.empty() || name.size() >= 64)
    fail("[gguf writer] tensor name '{}' must be 1..63 bytes (ggml's GGML_MAX_NAME)", name);
  if (dims.empty() || dims.size() > 4) fail("[gguf writer] tensor '{}' needs 1..4 dims, got {}", name, dims.size());
  for (const auto& t : tensors_)
    if (t.name == name) fail("[gguf writer] duplicate tensor name '{}'", name);
  GgufTensorInfo t;
  t.name = std::move(name);
  t.dims = std::move(dims);
  t.type = type;
  t.type_id = static_cast<uint32_t>(type);
  try {
    t.nbytes = ggml_nbytes(type, t.dims);
  } catch (const Error& e) {
    fail("[gguf writer] tensor '{}': {}", t.name, e.what());
  }
  t.offset = data_bytes_;
  data_bytes_ = align_up(data_bytes_ + t.nbytes, alignment_);
  tensors_.push_back(t);
  return t.nbytes;
}

void GgufWriter::put(const void* data, size_t n) {
  if (n != 0 && std::fwrite(data, 1, n, out_) != n) fail("[gguf writer] {}: write failed: {}", path_, std::strerror(errno));
}

namespace {
template <class F>
void put_string(F&& put, const std::string& s) {
  const uint64_t n = s.size();
  put(&n, 8);
  put(s.data(), s.size());
}
template <class F>
void put_value(F&& put, const GgufValue& v) {
  switch (v.type) {
    case GgufValueType::string: put_string(put, v.str); return;
    case GgufValueType::array: {
      const auto et = static_cast<uint32_t>(v.elem_type);
      put(&et, 4);
      put(&v.count, 8);
      if (v.elem_type == GgufValueType::string) {
        for (const auto& s : v.strings) put_string(put, s);
      } else if (v.elem_type == GgufValueType::array) {
        for (const auto& a : v.arrays) put_value(put, a);
      } else {
        put(v.raw.data(), v.raw.size());
      }
      return;
    }
    default: put(&v.bits, gguf_scalar_size(v.type)); return;
  }
}
}  // namespace

void GgufWriter::write_header(const std::string& path) {
  if (out_) fail("[gguf writer] write_header() called twice");
  path_ = path;
  out_ = std::fopen(path.c_str(), "wb");
  if (!out_) fail("[gguf writer] cannot create '{}': {}", path, std::strerror(errno));
  auto put = [this](const void* d, size_t n) { this->put(d, n); };
  uint64_t pos = 0;
  auto counted = [&](const void* d, size_t n) { put(d, n); pos += n; };
  const uint32_t magic = kMagic, version = kVersion;
  const uint64_t n_tensors = tensors_.size(), n_kv = kv_.size();
  counted(&magic, 4);
  counted(&version, 4);
  counted(&n_tensors, 8);
  counted(&n_kv, 8);
  for (const auto& [k, v] : kv_) {
    put_string(counted, k);
    const auto t = static_cast<uint32_t>(v.type);
    counted(&t, 4);
    put_value(counted, v);
  }
  for (const auto& t : tensors_) {
    put_string(counted, t.name);
    const auto nd = static_cast<uint32_t>(t.dims.size());
    counted(&nd, 4);
    for (int64_t d : t.dims) counted(&d, 8);
    counted(&t.type_id, 4);
    counted(&t.offset, 8);
  }
  static const char kZeros[4096] = {};
  const uint64_t pad = align_up(pos, alignment_) - pos;
  for (uint64_t left = pad; left > 0;) {
    const size_t n = std::min<uint64_t>(left, sizeof(kZeros));
    put(kZeros, n);
    left -= n;
  }
}

void GgufWriter::write_tensor(std::span<const std::byte> bytes) {
  if (!out_) fail("[gguf writer] write_tensor() before write_header()");
  if (next_ >= tensors_.size()) fail("[gguf writer] {}: more tensors written than declared ({})", path_, tensors_.size());
  const auto& t = tensors_[next_];
  if (bytes.size() != t.nbytes)
    fail("[gguf writer] {}: tensor '{}' ({} [{}]) needs {} bytes, got {}", path_, t.name, ggml_type_name(t.type),
         fmt::join(t.dims, ", "), t.nbytes, bytes.size());
  put(bytes.data(), bytes.size());
  static const char kZeros[4096] = {};
  uint64_t pad = align_up(t.nbytes, alignment_) - t.nbytes;
  while (pad > 0) {
    const size_t n = std::min<uint64_t>(pad, sizeof(kZeros));
    put(kZeros, n);
    pad -= n;
  }
  ++next_;
}

void GgufWriter::finish() {
  if (!out_) fail("[gguf writer] finish() before write_header()");
  if (next_ != tensors_.size())
    fail("[gguf writer] {}: {} of {} tensors written", path_, next_, tensors_.size());
  const bool ok = std::fflush(out_) == 0;
  const bool closed = std::fclose(out_) == 0;
  out_ = nullptr;
  if (!ok || !closed) fail("[gguf writer] {}: cannot finish writing: {}", path_, std::strerror(errno));
}

}  // namespace bitnet
