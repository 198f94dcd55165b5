// `bitnet models`: the published ternary models this project knows (models/known_models.json, compiled in), with
// what they need and whether this engine runs them, and which are already in the Hugging Face cache.
#include <bitnet/error.h>
#include <bitnet/hub.h>
#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "commands.h"

namespace bitnet::cli {

namespace {

std::string count_text(const nlohmann::json& v, double unit, const char* suffix) {
  if (!v.is_number()) return "?";
  return fmt::format("{:.2f}{}", v.get<double>() / unit, suffix);
}

std::string text_of(const nlohmann::json& m, const char* key) {
  return m.contains(key) && m[key].is_string() ? m[key].get<std::string>() : std::string("?");
}

// Whether a snapshot of the repository is in the cache (any revision).
bool cached(const hub::HubConfig& config, const std::string& repo) {
  std::error_code ec;
  const auto snapshots = hub::repo_cache_dir(config, repo) / "snapshots";
  return std::filesystem::is_directory(snapshots, ec) && !std::filesystem::is_empty(snapshots, ec);
}

}  // namespace

void add_models_command(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("models", "The published ternary models: files, size, architecture, license, and "
                                           "whether this engine runs them (bitnet pull / -hf fetch them)");
  struct Options {
    std::string repo;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("repo", o->repo, "Show one model in full (ORG/NAME)");
  cmd->add_flag("--json", o->json, "The list as JSON (the data file itself, with a 'cached' field per model)");
  cmd->callback([&selected, o] {
    selected = [o] {
      nlohmann::json data = nlohmann::json::parse(hub::known_models_json());
      const hub::HubConfig config = hub::HubConfig::from_environment();
      nlohmann::json& models = data["models"];
      for (auto& m : models) m["cached"] = cached(config, text_of(m, "repo"));
      if (!o->repo.empty()) {
        for (const auto& m : models)
          if (text_of(m, "repo") == o->repo) {
            if (o->json) {
              fmt::print("{}\n", m.dump(2));
            } else {
              for (const auto& [k, v] : m.items())
                fmt::print("{:<22} {}\n", k + ":", v.is_string() ? v.get<std::string>() : v.dump());
            }
            return 0;
          }
        std::vector<std::string> names;
        for (const auto& m : models) names.push_back(text_of(m, "repo"));
        const std::string close = did_you_mean(o->repo, names);
        fail("[models] '{}' is not in the known-model list{}; bitnet models lists them (any other repository can "
             "still be tried with bitnet pull / -hf)", o->repo, close.empty() ? "" : " (did you mean " + close + "?)");
      }
      if (o->json) {
        fmt::print("{}\n", data.dump(2));
        return 0;
      }
      fmt::print("| {:<44} | {:>7} | {:>9} | {:<24} | {:<18} | {:<4} | {:<6} |\n", "repository", "params", "download",
                 "architecture", "license", "runs", "cached");
      fmt::print("|{:-<46}|{:->9}|{:->11}|{:-<26}|{:-<20}|{:-<6}|{:-<8}|\n", "", "", "", "", "", "", "");
      for (const auto& m : models) {
        const std::string arch = text_of(m, "arch");
        fmt::print("| {:<44} | {:>7} | {:>9} | {:<24} | {:<18} | {:<4} | {:<6} |\n", text_of(m, "repo"),
                   count_text(m.value("parameters", nlohmann::json()), 1e9, "B"),
                   count_text(m.value("download_bytes", nlohmann::json()), 1e9, " GB"), arch, text_of(m, "license"),
                   m.value("runs", false) ? "yes" : "no", m["cached"].get<bool>() ? "yes" : "");
      }
      fmt::print("\nbitnet models ORG/NAME shows one model in full (files, how to run it, source).\n");
      return 0;
    };
  });
}

}  // namespace bitnet::cli
