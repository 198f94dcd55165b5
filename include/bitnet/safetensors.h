#pragma once
// Hugging Face safetensors: a validating reader (tensor bytes stay in the mmap'd file), a streaming writer,
// and sharded checkpoints (model.safetensors.index.json). Layout: ../shared/specs/formats.md §2.2.
#include <bitnet/memory.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bitnet {

// The dtypes safetensors defines (F8/F4 MX types are not accepted).
enum class StDType : uint8_t { boolean, u8, i8, i16, u16, f16, bf16, i32, u32, f32, f64, i64, u64 };
std::string_view st_dtype_name(StDType dtype);  // "BF16"
size_t st_dtype_size(StDType dtype);
StDType parse_st_dtype(std::string_view name);  // throws listing the accepted names

struct StTensorInfo {
  std::string name;
  StDType dtype = StDType::f32;
  std::vector<int64_t> shape;  // PyTorch order; [] is a scalar
  uint64_t begin = 0, end = 0;  // data_offsets, relative to the data buffer
  int64_t numel() const;
  uint64_t nbytes() const { return end - begin; }
};

struct SafetensorsLimits {
  uint64_t max_header = 100'000'000;  // the format's own limit
  int max_json_depth = 16;
};

class SafetensorsFile {
 public:
  // Maps and validates: header length, '{', JSON, no duplicate keys, known dtypes, dtype × shape ==
  // end − begin, and offsets that tile the data buffer exactly (no hole, no overlap, nothing after).
  static SafetensorsFile open(const std::string& path, const SafetensorsLimits& limits = {});
  static SafetensorsFile from_bytes(std::span<const std::byte> bytes, std::string name,
                                    const SafetensorsLimits& limits = {});

  const std::string& path() const { return path_; }
  const std::vector<StTensorInfo>& tensors() const { return tensors_; }  // in file-offset order
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const StTensorInfo* find(std::string_view name) const;
  const StTensorInfo& tensor(std::string_view name) const;  // throws naming the file when absent
  std::span<const std::byte> data(const StTensorInfo& info) const;
  uint64_t header_size() const { return header_size_; }
  std::shared_ptr<MappedFile> mapping() const { return file_; }  // null for from_bytes

 private:
  std::string path_;
  std::shared_ptr<MappedFile> file_;
  std::span<const std::byte> bytes_;
  uint64_t header_size_ = 0;
  std::vector<StTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
  void parse(const SafetensorsLimits& limits);
};

// A checkpoint that is one model.safetensors or several shards named by model.safetensors.index.json.
class SafetensorsModel {
 public:
  // `path`: a directory (uses model.safetensors.index.json if present, else model.safetensors), an index file,
  // or one .safetensors file. Every shard is opened and validated; the index must name only existing shards and
  // tensors that those shards hold, and no tensor may appear in two shards.
  static SafetensorsModel open(const std::string& path);

  struct Entry {
    const SafetensorsFile* file;
    const StTensorInfo* info;
  };
  const std::vector<std::string>& names() const { return names_; }  // sorted
  const Entry* find(std::string_view name) const;
  const Entry& tensor(std::string_view name) const;
  std::span<const std::byte> data(const Entry& e) const { return e.file->data(*e.info); }
  const std::vector<std::unique_ptr<SafetensorsFile>>& shards() const { return shards_; }
  const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, Entry, std::less<>> entries_;
  std::vector<std::string> names_;
};

// Streaming writer: declare tensors, write_header(), then write() each tensor's bytes in declared order.
class SafetensorsWriter {
 public:
  SafetensorsWriter() = default;
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  void set_metadata(std::string key, std::string value);
  void add_tensor(std::string name, StDType dtype, std::vector<int64_t> shape);
  void write_header(const std::string& path);
  void write(std::span<const std::byte> bytes);
  void finish();

 private:
  std::map<std::string, std::string> metadata_;
  std::vector<StTensorInfo> tensors_;
  uint64_t data_bytes_ = 0;
  std::string path_;
  std::FILE* out_ = nullptr;
  size_t next_ = 0;
};

}  // namespace bitnet
