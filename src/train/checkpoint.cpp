// Training checkpoints in safetensors: a minimal private f32 writer/reader (8-byte little-endian header
// length, JSON header, raw data) kept small so the project's full IO can replace it later.
#include <bitnet/train.h>

#include <charconv>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/json_util.h"

namespace bitnet::train {

namespace {
constexpr const char* kFormat = "bitnet-train-checkpoint-v1";
constexpr const char* kOptimizerPrefix = "optimizer.";
// A header larger than this is not one we wrote; refusing it bounds the allocation on a corrupt file.
constexpr uint64_t kMaxHeader = 100u << 20;
}  // namespace

void write_safetensors_f32(const std::string& path, const std::map<std::string, Tensor>& tensors,
                           const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  std::vector<Tensor> data;
  for (const auto& [name, t] : tensors) {
    BITNET_CHECK(name != "__metadata__", "[checkpoint] a tensor may not be called __metadata__");
    const Tensor c = t.to(DType::f32).contiguous();
    const uint64_t bytes = c.nbytes();
    header[name] = {{"dtype", "F32"}, {"shape", c.shape()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(c);
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned

  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    BITNET_CHECK(out.good(), "[checkpoint] cannot open '{}' for writing", tmp);
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(static_cast<uint64_t>(text.size()) >> (8 * i));
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& t : data) out.write(static_cast<const char*>(t.data()), static_cast<std::streamsize>(t.nbytes()));
    out.flush();
    BITNET_CHECK(out.good(), "[checkpoint] writing '{}' failed (disk full?)", tmp);
  }
  // Written under a temporary name and renamed, so an interrupted save never leaves a torn checkpoint.
  BITNET_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "[checkpoint] cannot rename '{}' to '{}'", tmp, path);
}

std::map<std::string, Tensor> read_safetensors_f32(const std::string& path,
                                                   std::map<std::string, std::string>* metadata) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  BITNET_CHECK(in.good(), "[checkpoint] cannot open '{}'", path);
  const auto size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  BITNET_CHECK(size >= 8, "[checkpoint] '{}' is {} bytes, too short for a safetensors file", path, size);
  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= static_cast<uint64_t>(len[i]) << (8 * i);
  BITNET_CHECK(header_len <= kMaxHeader && header_len <= size - 8,
               "[checkpoint] '{}': header length {} exceeds the file ({} bytes)", path, header_len, size);
  std::string text(header_len, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_len));
  const uint64_t data_start = 8 + header_len, data_len = size - data_start;
  // Strict (duplicate keys, nesting deeper than 8 levels: a header has 3) so that nothing later recurses deep.
  const nlohmann::json header = io::parse_json_strict(text, fmt::format("[checkpoint] '{}': header", path), 8);
  BITNET_CHECK(header.is_object(), "[checkpoint] '{}': the header is not a JSON object", path);
  std::map<std::string, Tensor> out;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (metadata)
        for (const auto& [k, v] : entry.items()) (*metadata)[k] = v.is_string() ? v.get<std::string>() : v.dump();
      continue;
    }
    try {
      BITNET_CHECK(entry.at("dtype").get<std::string>() == "F32",
                   "[checkpoint] '{}': tensor '{}' has dtype {}, only F32 is supported here", path, name,
                   entry.at("dtype").dump());
      const Shape shape = entry.at("shape").get<Shape>();
      const auto offsets = entry.at("data_offsets").get<std::vector<uint64_t>>();
      BITNET_CHECK(offsets.size() == 2 && offsets[0] <= offsets[1] && offsets[1] <= data_len,
                   "[checkpoint] '{}': tensor '{}' has data_offsets {} outside the {} data bytes", path, name,
                   entry.at("data_offsets").dump(), data_len);
      uint64_t numel = 1;
      for (int64_t d : shape) {
        BITNET_CHECK(d >= 0 && (d == 0 || numel <= (UINT64_MAX / 4) / static_cast<uint64_t>(d)),
                     "[checkpoint] '{}': tensor '{}' has an invalid shape {}", path, name, shape_str(shape));
        numel *= static_cast<uint64_t>(d);
      }
      BITNET_CHECK(numel * 4 == offsets[1] - offsets[0],
                   "[checkpoint] '{}': tensor '{}' of shape {} needs {} bytes, its offsets span {}", path, name,
                   shape_str(shape), numel * 4, offsets[1] - offsets[0]);
      std::vector<char> bytes(offsets[1] - offsets[0]);
      in.seekg(static_cast<std::streamoff>(data_start + offsets[0]));
      in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      BITNET_CHECK(in.good(), "[checkpoint] '{}': reading tensor '{}' failed", path, name);
      out.emplace(name, Tensor::from_bytes(bytes.data(), shape, DType::f32));
    } catch (const nlohmann::json::exception& e) {
      fail("[checkpoint] '{}': tensor '{}' has a malformed entry ({})", path, name, e.what());
    }
  }
  return out;
}

void save_checkpoint(const std::string& path, const nn::Module& model, const optim::AdamW& optimizer,
                     const TrainState& state) {
  std::map<std::string, Tensor> tensors = model.state_dict();
  for (auto& [name, t] : optimizer.state_dict()) tensors.emplace(kOptimizerPrefix + name, t);
  write_safetensors_f32(path, tensors,
                        {{"format", kFormat},
                         {"step", std::to_string(state.step)},
                         {"optimizer_step", std::to_string(state.optimizer_step)}});
}

std::map<std::string, Tensor> load_checkpoint_weights(const std::string& path, int64_t* step) {
  std::map<std::string, std::string> meta;
  std::map<std::string, Tensor> tensors = read_safetensors_f32(path, &meta);
  BITNET_CHECK(meta["format"] == kFormat || meta["format"] == "bitnet-trained-latent-f32",
               "[checkpoint] '{}' is neither a bitnet training checkpoint nor a trained model.safetensors (format '{}')",
               path, meta["format"]);
  if (step) {
    *step = -1;
    if (meta.count("step")) {
      const std::string& text = meta.at("step");
      int64_t v = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      BITNET_CHECK(ec == std::errc() && end == text.data() + text.size() && v >= 0,
                   "[checkpoint] '{}': metadata 'step' is '{}', not a step count", path, text.substr(0, 40));
      *step = v;
    }
  }
  for (auto it = tensors.begin(); it != tensors.end();)
    it = it->first.rfind(kOptimizerPrefix, 0) == 0 ? tensors.erase(it) : std::next(it);
  return tensors;
}

TrainState load_checkpoint(const std::string& path, nn::Module& model, optim::AdamW& optimizer) {
  std::map<std::string, std::string> meta;
  std::map<std::string, Tensor> tensors = read_safetensors_f32(path, &meta);
  BITNET_CHECK(meta["format"] == kFormat, "[checkpoint] '{}' is not a bitnet training checkpoint (format '{}', expected '{}')",
               path, meta["format"], kFormat);
  std::map<std::string, Tensor> params, moments;
  const std::string prefix = kOptimizerPrefix;
  for (auto& [name, t] : tensors) {
    if (name.rfind(prefix, 0) == 0)
      moments.emplace(name.substr(prefix.size()), t);
    else
      params.emplace(name, t);
  }
  TrainState state;
  try {
    state.step = std::stoll(meta.at("step"));
    state.optimizer_step = std::stoll(meta.at("optimizer_step"));
  } catch (const std::exception&) {
    fail("[checkpoint] '{}': the metadata lacks valid 'step' / 'optimizer_step' counters", path);
  }
  model.load_state_dict(params);
  optimizer.load_state_dict(moments, state.optimizer_step);
  return state;
}

}  // namespace bitnet::train
