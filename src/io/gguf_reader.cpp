// GGUF reader: every count, length, offset and size read from the file is checked against the bytes that are
// actually there before it is used, so a hostile file yields a bitnet::Error and never a crash or an
// allocation sized by the file (see ../shared/specs/reliability.md for the llama.cpp CVEs this guards against).
#include <bitnet/error.h>
#include <bitnet/gguf.h>

#include <algorithm>
#include <limits>

#include "io/byte_reader.h"

namespace bitnet {

namespace {
constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint32_t kDefaultAlignment = 32;

class Parser {
 public:
  Parser(std::span<const std::byte> bytes, const std::string& file, const GgufLimits& limits)
      : r_(bytes, file), file_(file), limits_(limits) {}

  io::ByteReader& r() { return r_; }

  std::string read_string(std::string_view field, uint64_t max_len) {
    const auto len = r_.read<uint64_t>(field);
    if (len > max_len)
      fail("{}: {} has length {} at byte {}; expected at most {}", file_, field, len, r_.offset() - 8, max_len);
    r_.need(len, field);  // before allocating: the string must be in the file
    const auto s = r_.take(len, field);
    return std::string(reinterpret_cast<const char*>(s.data()), s.size());
  }

  GgufValueType read_type(std::string_view field) {
    const auto t = r_.read<uint32_t>(field);
    if (t > static_cast<uint32_t>(GgufValueType::f64))
      fail("{}: {} has value type {}; expected 0..12 (u8 ... f64)", file_, field, t);
    return static_cast<GgufValueType>(t);
  }

  GgufValue read_value(GgufValueType type, const std::string& key, size_t depth) {
    GgufValue v;
    v.type = type;
    if (type == GgufValueType::string) {
      v.str = read_string(fmt::format("the string value of '{}'", key), limits_.max_string);
      return v;
    }
    if (type != GgufValueType::array) {
      const size_t n = gguf_scalar_size(type);
      const auto s = r_.take(n, fmt::format("the {} value of '{}'", gguf_value_type_name(type), key));
      std::memcpy(&v.bits, s.data(), n);
      if (type == GgufValueType::boolean && v.bits > 1)
        fail("{}: bool value of '{}' is {}; expected 0 or 1", file_, key, v.bits);
      return v;
    }
    if (depth >= limits_.max_depth)
      fail("{}: array '{}' nests deeper than {} levels", file_, key, limits_.max_depth);
    v.elem_type = read_type(fmt::format("the element type of array '{}'", key));
    v.count = r_.read<uint64_t>(fmt::format("the length of array '{}'", key));
    // Every element takes at least this many bytes in the file; checking the count against what is left
    // bounds every allocation below by the file size.
    const uint64_t min_elem = v.elem_type == GgufValueType::string  ? 8
                              : v.elem_type == GgufValueType::array ? 12
                                                                    : gguf_scalar_size(v.elem_type);
    if (v.count > r_.remaining() / min_elem)
      fail("{}: array '{}' claims {} elements of {} at byte {}, but only {} bytes remain", file_, key, v.count,
           gguf_value_type_name(v.elem_type), r_.offset() - 8, r_.remaining());
    if (v.elem_type == GgufValueType::string) {
      v.strings.reserve(v.count);
      for (uint64_t i = 0; i < v.count; ++i)
        v.strings.push_back(read_string(fmt::format("element {} of array '{}'", i, key), limits_.max_string));
    } else if (v.elem_type == GgufValueType::array) {
      v.arrays.reserve(v.count);
      for (uint64_t i = 0; i < v.count; ++i)
        v.arrays.push_back(read_value(GgufValueType::array, fmt::format("{}[{}]", key, i), depth + 1));
    } else {
      const auto s = r_.take(v.count * min_elem, fmt::format("the elements of array '{}'", key));
      v.raw.assign(s.begin(), s.end());
      if (v.elem_type == GgufValueType::boolean)
        for (uint64_t i = 0; i < v.count; ++i)
          if (static_cast<uint8_t>(v.raw[i]) > 1)
            fail("{}: element {} of bool array '{}' is {}; expected 0 or 1", file_, i, key,
                 static_cast<unsigned>(v.raw[i]));
    }
    return v;
  }

 private:
  io::ByteReader r_;
  const std::string& file_;
  const GgufLimits& limits_;
};

bool is_bitnet_cpp_file(const GgufFile& f, std::string* why) {
  const std::string arch = f.architecture();
  if (arch.rfind("bitnet", 0) == 0) {
    *why = fmt::format("general.architecture = {}", arch);
    return true;
  }
  if (const GgufValue* ft = f.find("general.file_type"); ft && ft->as_int() == 40) {
    *why = "general.file_type = 40 (bitnet.cpp MOSTLY_I2_S)";
    return true;
  }
  return false;
}
}  // namespace

using io::ByteReader;

GgufFile GgufFile::open(const std::string& path, const GgufLimits& limits) {
  GgufFile f;
  f.path_ = path;
  f.file_ = MappedFile::open(path);
  f.bytes_ = std::span<const std::byte>(f.file_->data(), f.file_->size());
  f.parse(limits);
  return f;
}

GgufFile GgufFile::from_bytes(std::span<const std::byte> bytes, std::string name, const GgufLimits& limits) {
  GgufFile f;
  f.path_ = std::move(name);
  f.bytes_ = bytes;
  f.parse(limits);
  return f;
}

void GgufFile::parse(const GgufLimits& limits) {
  const std::string& file = path_;
  Parser p(bytes_, file, limits);
  ByteReader& r = p.r();

  if (bytes_.size() < 4) fail("{}: {} bytes is too short for a GGUF file (magic 'GGUF' expected)", file, bytes_.size());
  const auto magic = r.read<uint32_t>("magic");
  if (magic != kMagic) fail("{}: bad magic 0x{:08x}; expected 0x{:08x} ('GGUF')", file, magic, kMagic);
  version_ = r.read<uint32_t>("version");
  if (version_ == 0x03000000 || version_ == 0x02000000)
    fail("{}: version field reads {:#x}: a big-endian GGUF, which is not supported", file, version_);
  if (version_ == 1) fail("{}: GGUF version 1 (32-bit counts) is not supported; expected version 2 or 3", file);
  if (version_ < 2 || version_ > 3) fail("{}: GGUF version {}; expected 2 or 3", file, version_);
  const auto n_tensors = r.read<uint64_t>("tensor_count");
  const auto n_kv = r.read<uint64_t>("metadata_kv_count");
  // A key-value pair needs at least 8 (key length) + 1 (key) + 4 (type) + 1 bytes; a tensor info at least
  // 8 + 1 + 4 + 8 + 4 + 8. Larger counts cannot be in the file: reject before reserving anything.
  if (n_kv > r.remaining() / 14)
    fail("{}: metadata_kv_count is {}, but the {} remaining bytes hold at most {}", file, n_kv, r.remaining(),
         r.remaining() / 14);
  if (n_tensors > r.remaining() / 33)
    fail("{}: tensor_count is {}, but the {} remaining bytes hold at most {}", file, n_tensors, r.remaining(),
         r.remaining() / 33);

  kv_.reserve(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = p.read_string(fmt::format("the key of metadata entry {}", i), 65535);
    if (key.empty()) fail("{}: metadata entry {} has an empty key", file, i);
    const GgufValueType type = p.read_type(fmt::format("the value type of '{}'", key));
    GgufValue v = p.read_value(type, key, 0);
    if (kv_index_.count(key)) fail("{}: duplicate metadata key '{}'", file, key);
    kv_index_.emplace(key, kv_.size());
    kv_.emplace_back(std::move(key), std::move(v));
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (a->type != GgufValueType::u32)
      fail("{}: general.alignment has type {}; expected u32", file, gguf_value_type_name(a->type));
    const auto align = static_cast<uint32_t>(a->bits);
    if (align == 0 || (align & (align - 1)) != 0 || align > limits.max_alignment)
      fail("{}: general.alignment is {}; expected a power of two between 1 and {}", file, align, limits.max_alignment);
    alignment_ = align;
  } else {
    alignment_ = kDefaultAlignment;
  }

  // Tensor ids whose meaning depends on the producer: 36 is bitnet.cpp's I2_S, retired upstream.
  std::string bitnet_why;
  const bool bitnet_cpp = is_bitnet_cpp_file(*this, &bitnet_why);
  const std::string arch = architecture();

  tensors_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = p.read_string(fmt::format("the name of tensor {}", i), limits.max_tensor_name);
    if (t.name.empty()) fail("{}: tensor {} has an empty name", file, i);
    const auto n_dims = r.read<uint32_t>(fmt::format("n_dims of tensor '{}'", t.name));
    if (n_dims < 1 || n_dims > 4) fail("{}: tensor '{}' has n_dims {}; expected 1..4", file, t.name, n_dims);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const auto dim = r.read<uint64_t>(fmt::format("dims[{}] of tensor '{}'", d, t.name));
      if (dim == 0 || dim > uint64_t(INT64_MAX))
        fail("{}: tensor '{}' dims[{}] is {}; expected 1..2^63-1", file, t.name, d, dim);
      if (io::mul_overflows(numel, dim, &numel) || numel > uint64_t(INT64_MAX))
        fail("{}: tensor '{}' element count overflows 64 bits (dims {})", file, t.name,
             fmt::join(t.dims, ", "), dim);
      t.dims.push_back(static_cast<int64_t>(dim));
    }
    t.type_id = r.read<uint32_t>(fmt::format("the type of tensor '{}'", t.name));
    // bitnet.cpp's LUT layouts TL1 (38) and TL2 (39; upstream MXFP4) are tiled for kernels generated per model
    // shape: there is no portable way to read them, so say so instead of misreading 39 as MXFP4.
    if (bitnet_cpp && (t.type_id == 38 || (t.type_id == 39 && arch != "bitnet")))
      fail("{}: tensor '{}' has type id {}, bitnet.cpp's {} lookup-table layout ({}), which is tied to kernels "
           "generated for one model shape and not supported; use the model's I2_S or TQ1_0/TQ2_0 GGUF", file, t.name,
           t.type_id, t.type_id == 38 ? "TL1" : "TL2", bitnet_why);
    const auto info = ggml_type_info(t.type_id);
    if (!info)
      fail("{}: tensor '{}' has type id {}, which is unknown or retired (expected a ggml type such as F32=0, "
           "F16=1, Q8_0=8, BF16=30, TQ1_0=34, TQ2_0=35, or bitnet.cpp's I2_S=36)", file, t.name, t.type_id);
    if (t.type_id == static_cast<uint32_t>(GgmlType::i2_s)) {
      if (!bitnet_cpp)
        fail("{}: tensor '{}' has type id 36, which is bitnet.cpp's I2_S only in bitnet.cpp files (upstream "
             "retired it); this file has neither general.architecture = bitnet* nor general.file_type = 40",
             file, t.name);
      if (detection_note_.empty())
        detection_note_ = fmt::format("type id 36 read as bitnet.cpp I2_S (x86 128-element layout) because {}",
                                      bitnet_why);
    }
    t.type = static_cast<GgmlType>(t.type_id);
    try {
      t.nbytes = ggml_nbytes(t.type, t.dims);
    } catch (const Error& e) {
      fail("{}: tensor '{}' ({} [{}]): {}", file, t.name, info->name, fmt::join(t.dims, ", "), e.what());
    }
    t.offset = r.read<uint64_t>(fmt::format("the data offset of tensor '{}'", t.name));
    if (t.offset % alignment_ != 0)
      fail("{}: tensor '{}' data offset {} is not a multiple of the alignment {}", file, t.name, t.offset, alignment_);
    if (tensor_index_.count(t.name)) fail("{}: duplicate tensor name '{}'", file, t.name);
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment.
  const uint64_t end_of_infos = r.offset();
  data_offset_ = (end_of_infos + alignment_ - 1) / alignment_ * alignment_;
  const uint64_t size = bytes_.size();
  if (!tensors_.empty() && data_offset_ > size)
    fail("{}: tensor data section would start at byte {}, past the end of the {}-byte file", file, data_offset_, size);
  const uint64_t data_size = data_offset_ <= size ? size - data_offset_ : 0;
  for (const auto& t : tensors_) {
    uint64_t end = 0;
    if (io::add_overflows(t.offset, t.nbytes, &end) || end > data_size)
      fail("{}: tensor '{}' data [{}, +{}) runs past the end of the data section ({} bytes from byte {})", file,
           t.name, t.offset, t.nbytes, data_size, data_offset_);
  }
  // No two tensors may share bytes.
  std::vector<const GgufTensorInfo*> order;
  order.reserve(tensors_.size());
  for (const auto& t : tensors_) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < order.size(); ++i)
    if (order[i - 1]->offset + order[i - 1]->nbytes > order[i]->offset)
      fail("{}: tensors '{}' (bytes {}..{}) and '{}' (from byte {}) overlap", file, order[i - 1]->name,
           order[i - 1]->offset, order[i - 1]->offset + order[i - 1]->nbytes, order[i]->name, order[i]->offset);
}

const GgufValue* GgufFile::find(std::string_view key) const {
  const auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufValue& GgufFile::at(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) fail("{}: metadata key '{}' is missing", path_, key);
  return *v;
}

std::string GgufFile::get_string(std::string_view key) const {
  const GgufValue& v = at(key);
  if (v.type != GgufValueType::string)
    fail("{}: metadata '{}' has type {}; expected string", path_, key, gguf_value_type_name(v.type));
  return v.str;
}

int64_t GgufFile::get_int(std::string_view key) const {
  const auto i = at(key).as_int();
  if (!i) fail("{}: metadata '{}' has type {}; expected an integer", path_, key, gguf_value_type_name(at(key).type));
  return *i;
}

double GgufFile::get_float(std::string_view key) const {
  const auto f = at(key).as_float();
  if (!f) fail("{}: metadata '{}' has type {}; expected a number", path_, key, gguf_value_type_name(at(key).type));
  return *f;
}

std::string GgufFile::architecture() const {
  const GgufValue* v = find("general.architecture");
  return v && v->type == GgufValueType::string ? v->str : std::string();
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensorInfo& GgufFile::tensor(std::string_view name) const {
  const GgufTensorInfo* t = find_tensor(name);
  if (!t) fail("{}: no tensor named '{}'", path_, name);
  return *t;
}

std::span<const std::byte> GgufFile::tensor_data(const GgufTensorInfo& info) const {
  return bytes_.subspan(data_offset_ + info.offset, info.nbytes);  // bounds checked in parse()
}

}  // namespace bitnet
