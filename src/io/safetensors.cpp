// safetensors reader, writer and sharded-checkpoint index. The reader enforces what the format promises
// (header <= 100 MB starting with '{', no duplicate keys, dtype x shape == byte range, offsets tiling the data
// buffer with no hole or overlap), the checks whose absence the Trail of Bits audit flagged.
#include <bitnet/error.h>
#include <bitnet/safetensors.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "io/byte_reader.h"
#include "io/json_util.h"

namespace bitnet {

namespace {
struct StRow {
  StDType dtype;
  std::string_view name;
  size_t size;
};
constexpr std::array<StRow, 13> kStTypes = {{
    {StDType::boolean, "BOOL", 1}, {StDType::u8, "U8", 1},     {StDType::i8, "I8", 1},
    {StDType::i16, "I16", 2},      {StDType::u16, "U16", 2},   {StDType::f16, "F16", 2},
    {StDType::bf16, "BF16", 2},    {StDType::i32, "I32", 4},   {StDType::u32, "U32", 4},
    {StDType::f32, "F32", 4},      {StDType::f64, "F64", 8},   {StDType::i64, "I64", 8},
    {StDType::u64, "U64", 8},
}};
}  // namespace

std::string_view st_dtype_name(StDType dtype) { return kStTypes[static_cast<size_t>(dtype)].name; }
size_t st_dtype_size(StDType dtype) { return kStTypes[static_cast<size_t>(dtype)].size; }
StDType parse_st_dtype(std::string_view name) {
  std::string names;
  for (const auto& row : kStTypes) {
    if (row.name == name) return row.dtype;
    names += names.empty() ? "" : ", ";
    names += row.name;
  }
  fail("unknown safetensors dtype '{}'; expected one of {}", name, names);
}

int64_t StTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// ---- reader ---------------------------------------------------------------------------------------------------
SafetensorsFile SafetensorsFile::open(const std::string& path, const SafetensorsLimits& limits) {
  SafetensorsFile f;
  f.path_ = path;
  f.file_ = MappedFile::open(path);
  f.bytes_ = std::span<const std::byte>(f.file_->data(), f.file_->size());
  f.parse(limits);
  return f;
}

SafetensorsFile SafetensorsFile::from_bytes(std::span<const std::byte> bytes, std::string name,
                                            const SafetensorsLimits& limits) {
  SafetensorsFile f;
  f.path_ = std::move(name);
  f.bytes_ = bytes;
  f.parse(limits);
  return f;
}

void SafetensorsFile::parse(const SafetensorsLimits& limits) {
  using nlohmann::json;
  const std::string& file = path_;
  io::ByteReader r(bytes_, file);
  header_size_ = r.read<uint64_t>("the header length (u64 at byte 0)");
  if (header_size_ > limits.max_header)
    fail("{}: header length is {} bytes; expected at most {} (safetensors HeaderTooLarge)", file, header_size_,
         limits.max_header);
  if (header_size_ < 2) fail("{}: header length is {}; a JSON object needs at least 2 bytes", file, header_size_);
  const auto header = r.take(header_size_, "the JSON header");
  if (header[0] != std::byte{'{'}) fail("{}: the JSON header must start with '{{', found byte 0x{:02x}", file,
                                       static_cast<unsigned>(header[0]));
  const json j = io::parse_json_strict(std::string_view(reinterpret_cast<const char*>(header.data()), header.size()),
                                       file, limits.max_json_depth);
  if (!j.is_object()) fail("{}: the header is JSON {}; expected an object", file, io::json_type_name(j));
  const uint64_t buffer_size = r.remaining();

  for (const auto& [name, entry] : j.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) fail("{}: __metadata__ is {}; expected an object of strings", file, io::json_type_name(entry));
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) fail("{}: __metadata__[\"{}\"] is {}; expected a string", file, k, io::json_type_name(v));
        metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    if (name.empty()) fail("{}: a tensor has an empty name", file);
    if (!entry.is_object()) fail("{}: tensor '{}' is {}; expected an object", file, name, io::json_type_name(entry));
    StTensorInfo t;
    t.name = name;
    const auto dt = entry.find("dtype");
    if (dt == entry.end() || !dt->is_string()) fail("{}: tensor '{}' has no string 'dtype'", file, name);
    try {
      t.dtype = parse_st_dtype(dt->get<std::string>());
    } catch (const Error& e) {
      fail("{}: tensor '{}': {}", file, name, e.what());
    }
    const auto sh = entry.find("shape");
    if (sh == entry.end() || !sh->is_array()) fail("{}: tensor '{}' has no 'shape' array", file, name);
    if (sh->size() > 8) fail("{}: tensor '{}' has {} dimensions; expected at most 8", file, name, sh->size());
    uint64_t numel = 1;
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0))
        fail("{}: tensor '{}' shape {} has an entry that is not a non-negative integer", file, name, sh->dump());
      const auto v = d.get<uint64_t>();
      if (io::mul_overflows(numel, v, &numel) || numel > uint64_t(INT64_MAX))
        fail("{}: tensor '{}' shape {} overflows 64 bits", file, name, sh->dump());
      t.shape.push_back(static_cast<int64_t>(v));
    }
    const auto off = entry.find("data_offsets");
    if (off == entry.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned())
      fail("{}: tensor '{}' needs 'data_offsets' [begin, end] of non-negative integers", file, name);
    t.begin = (*off)[0].get<uint64_t>();
    t.end = (*off)[1].get<uint64_t>();
    uint64_t nbytes = 0;
    if (io::mul_overflows(numel, st_dtype_size(t.dtype), &nbytes))
      fail("{}: tensor '{}' byte size overflows 64 bits", file, name);
    if (t.end < t.begin || t.end - t.begin != nbytes)
      fail("{}: tensor '{}' is {} {} = {} bytes, but data_offsets [{}, {}] span {} (safetensors TensorInvalidInfo)",
           file, name, st_dtype_name(t.dtype), sh->dump(), nbytes, t.begin, t.end,
           t.end >= t.begin ? fmt::format("{}", t.end - t.begin) : std::string("a negative range"));
    if (t.end > buffer_size)
      fail("{}: tensor '{}' data_offsets [{}, {}] run past the {}-byte data buffer", file, name, t.begin, t.end,
           buffer_size);
    tensors_.push_back(std::move(t));
  }
  // The tensors must tile the data buffer: sorted by offset, each starts where the previous one ended, and the
  // last one ends at the end of the file (no hidden bytes, no overlap: no polyglot files).
  std::sort(tensors_.begin(), tensors_.end(), [](const StTensorInfo& a, const StTensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expect = 0;
  for (const auto& t : tensors_) {
    if (t.begin != expect)
      fail("{}: tensor '{}' starts at data offset {}, expected {} ({} the previous tensor: safetensors requires a "
           "buffer with no holes or overlaps)", file, t.name, t.begin, expect, t.begin < expect ? "overlapping" : "a gap after");
    expect = t.end;
  }
  if (expect != buffer_size)
    fail("{}: tensors cover {} bytes of the {}-byte data buffer; expected all of it (MetadataIncompleteBuffer)", file,
         expect, buffer_size);
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

const StTensorInfo* SafetensorsFile::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const StTensorInfo& SafetensorsFile::tensor(std::string_view name) const {
  const StTensorInfo* t = find(name);
  if (!t) fail("{}: no tensor named '{}'", path_, name);
  return *t;
}

std::span<const std::byte> SafetensorsFile::data(const StTensorInfo& info) const {
  return bytes_.subspan(8 + header_size_ + info.begin, info.nbytes());  // bounds checked in parse()
}

// ---- sharded model --------------------------------------------------------------------------------------------
SafetensorsModel SafetensorsModel::open(const std::string& path) {
  namespace fs = std::filesystem;
  SafetensorsModel m;
  fs::path p(path);
  fs::path index;
  std::error_code ec;
  if (fs::is_directory(p, ec)) {
    if (fs::exists(p / "model.safetensors.index.json", ec)) index = p / "model.safetensors.index.json";
    else if (fs::exists(p / "model.safetensors", ec)) p = p / "model.safetensors";
    else fail("{}: no model.safetensors or model.safetensors.index.json in this directory", path);
  } else if (p.extension() == ".json") {
    index = p;
  }
  auto add_shard = [&](const fs::path& file) -> const SafetensorsFile* {
    for (const auto& s : m.shards_)
      if (s->path() == file.string()) return s.get();
    m.shards_.push_back(std::make_unique<SafetensorsFile>(SafetensorsFile::open(file.string())));
    const SafetensorsFile* shard = m.shards_.back().get();
    for (const auto& t : shard->tensors()) {
      if (m.entries_.count(t.name))
        fail("{}: tensor '{}' appears in two shards ({} and {})", path, t.name, m.entries_.at(t.name).file->path(),
             shard->path());
      m.entries_.emplace(t.name, Entry{shard, &t});
    }
    return shard;
  };
  if (index.empty()) {
    m.source_ = p.string();
    add_shard(p);
  } else {
    m.source_ = index.string();
    const nlohmann::json j = io::parse_json_strict(io::read_text_file(index.string()), index.string());
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      fail("{}: expected an object with a \"weight_map\" object", index.string());
    std::vector<std::pair<std::string, std::string>> wanted;
    for (const auto& [name, file] : j["weight_map"].items()) {
      if (!file.is_string()) fail("{}: weight_map[\"{}\"] is not a string", index.string(), name);
      const std::string f = file.get<std::string>();
      // Shards are siblings of the index: a path that leaves the directory is refused.
      if (f.empty() || f.find('/') != std::string::npos || f.find('\\') != std::string::npos || f == "." || f == "..")
        fail("{}: weight_map[\"{}\"] = \"{}\"; expected a file name in the same directory", index.string(), name, f);
      wanted.emplace_back(name, f);
    }
    for (const auto& [name, f] : wanted) {
      const SafetensorsFile* shard = add_shard(index.parent_path() / f);
      if (!shard->find(name))
        fail("{}: weight_map says tensor '{}' is in {}, but that shard has no such tensor", index.string(), name, f);
    }
  }
  for (const auto& [name, e] : m.entries_) m.names_.push_back(name);
  return m;
}

const SafetensorsModel::Entry* SafetensorsModel::find(std::string_view name) const {
  const auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

const SafetensorsModel::Entry& SafetensorsModel::tensor(std::string_view name) const {
  const Entry* e = find(name);
  if (!e) fail("{}: no tensor named '{}'", source_, name);
  return *e;
}

// ---- writer ---------------------------------------------------------------------------------------------------
SafetensorsWriter::~SafetensorsWriter() {
  if (out_) std::fclose(out_);
}

void SafetensorsWriter::set_metadata(std::string key, std::string value) { metadata_[std::move(key)] = std::move(value); }

void SafetensorsWriter::add_tensor(std::string name, StDType dtype, std::vector<int64_t> shape) {
  if (out_) fail("[safetensors writer] tensor '{}' added after write_header()", name);
  if (name.empty() || name == "__metadata__") fail("[safetensors writer] invalid tensor name '{}'", name);
  for (const auto& t : tensors_)
    if (t.name == name) fail("[safetensors writer] duplicate tensor name '{}'", name);
  uint64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0) fail("[safetensors writer] tensor '{}' has a negative dimension", name);
    if (io::mul_overflows(numel, uint64_t(d), &numel)) fail("[safetensors writer] tensor '{}' is too large", name);
  }
  StTensorInfo t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.begin = data_bytes_;
  t.end = data_bytes_ + numel * st_dtype_size(dtype);
  data_bytes_ = t.end;
  tensors_.push_back(std::move(t));
}

void SafetensorsWriter::write_header(const std::string& path) {
  if (out_) fail("[safetensors writer] write_header() called twice");
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  if (!metadata_.empty()) j["__metadata__"] = metadata_;
  for (const auto& t : tensors_)
    j[t.name] = {{"dtype", st_dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {t.begin, t.end}}};
  std::string header = j.dump();
  header.resize((header.size() + 7) / 8 * 8, ' ');  // pad with spaces so the data buffer starts 8-aligned
  path_ = path;
  out_ = std::fopen(path.c_str(), "wb");
  if (!out_) fail("[safetensors writer] cannot create '{}': {}", path, std::strerror(errno));
  const uint64_t n = header.size();
  if (std::fwrite(&n, 8, 1, out_) != 1 || std::fwrite(header.data(), 1, n, out_) != n)
    fail("[safetensors writer] {}: write failed: {}", path_, std::strerror(errno));
}

void SafetensorsWriter::write(std::span<const std::byte> bytes) {
  if (!out_) fail("[safetensors writer] write() before write_header()");
  if (next_ >= tensors_.size()) fail("[safetensors writer] {}: more tensors written than declared", path_);
  const auto& t = tensors_[next_];
  if (bytes.size() != t.nbytes())
    fail("[safetensors writer] {}: tensor '{}' needs {} bytes, got {}", path_, t.name, t.nbytes(), bytes.size());
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), out_) != bytes.size())
    fail("[safetensors writer] {}: write failed: {}", path_, std::strerror(errno));
  ++next_;
}

void SafetensorsWriter::finish() {
  if (!out_) fail("[safetensors writer] finish() before write_header()");
  if (next_ != tensors_.size()) fail("[safetensors writer] {}: {} of {} tensors written", path_, next_, tensors_.size());
  const bool ok = std::fflush(out_) == 0;
  const bool closed = std::fclose(out_) == 0;
  out_ = nullptr;
  if (!ok || !closed) fail("[safetensors writer] {}: cannot finish writing: {}", path_, std::strerror(errno));
}

}  // namespace bitnet
