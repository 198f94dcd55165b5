// `bitnet inspect FILE`: metadata, tensor table (type, shape, bytes) and checks (all-zero tensors, non-ternary
// codes, NaN/Inf in scales) of a GGUF file, a .safetensors file, an index .json or an HF directory.
#include <bitnet/model_files.h>
#include <fmt/format.h>

#include "commands.h"

namespace bitnet::cli {

namespace {
std::string human_bytes(uint64_t b) {
  if (b >= (1ull << 30)) return fmt::format("{:.2f} GiB", b / double(1ull << 30));
  if (b >= (1ull << 20)) return fmt::format("{:.2f} MiB", b / double(1ull << 20));
  if (b >= (1ull << 10)) return fmt::format("{:.1f} KiB", b / double(1ull << 10));
  return fmt::format("{} B", b);
}

void print_text(const nlohmann::json& r, bool all_metadata) {
  fmt::print("{}: {}", r["path"].get<std::string>(), r["format"].get<std::string>());
  if (r.contains("version")) fmt::print(" v{}, alignment {}", r["version"].get<int>(), r["alignment"].get<int>());
  if (r.contains("shards")) fmt::print(", {} shard(s)", r["shards"].get<int>());
  fmt::print("\n");
  if (r.contains("detected")) fmt::print("detected: {}\n", r["detected"].get<std::string>());
  if (r.contains("config")) fmt::print("config: {}\n", r["config"].dump());
  fmt::print("\nmetadata ({} entries):\n", r["metadata"].size());
  for (const auto& [k, v] : r["metadata"].items()) {
    std::string value = v.is_object() && v.contains("value") ? v["value"].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                                                             : v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (!all_metadata && value.size() > 100) value = value.substr(0, 97) + "...";
    fmt::print("  {:<44} {}\n", k, value);
  }
  uint64_t total = 0;
  fmt::print("\n{:<48} {:<8} {:<18} {:>12}\n", "tensor", "type", "shape", "bytes");
  for (const auto& t : r["tensors"]) {
    total += t["bytes"].get<uint64_t>();
    fmt::print("{:<48} {:<8} {:<18} {:>12}\n", t["name"].get<std::string>(), t["type"].get<std::string>(),
               t["shape"].dump(), t["bytes"].get<uint64_t>());
  }
  fmt::print("{} tensors, {}\n", r["tensors"].size(), human_bytes(total));
  const auto& p = r["problems"];
  if (p.empty()) {
    fmt::print("\nchecks: no all-zero tensors, no non-ternary codes, no NaN/Inf scales\n");
  } else {
    fmt::print("\nPROBLEMS ({}):\n", p.size());
    for (const auto& x : p) fmt::print("  {}\n", x.get<std::string>());
  }
}
}  // namespace

void add_inspect_command(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("inspect", "Show a model file's metadata, tensors and problems (GGUF, safetensors, HF dir); exits 2 when it finds problems");
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto all = std::make_shared<bool>(false);
  cmd->add_option("FILE", *path, "GGUF file, .safetensors file, model.safetensors.index.json or HF directory")->required();
  cmd->add_flag("--json", *json, "Print the report as JSON");
  cmd->add_flag("--all-metadata", *all, "Do not shorten long metadata values");
  cmd->callback([&selected, path, json, all] {
    selected = [path, json, all]() {
      const nlohmann::json r = inspect_model(*path);
      if (*json) fmt::print("{}\n", r.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
      else print_text(r, *all);
      return r["problems"].empty() ? 0 : 2;
    };
  });
}

}  // namespace bitnet::cli
