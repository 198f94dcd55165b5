// Which files of a repository make the model (hub.h, choose_model_files): one GGUF file, or a Hugging Face
// checkpoint directory.
#include <bitnet/error.h>
#include <bitnet/hub.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <fnmatch.h>
#include <string_view>

namespace bitnet::hub {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool at_root(const std::string& name) { return name.find('/') == std::string::npos; }
bool is_gguf(const std::string& name) { return lower(name).ends_with(".gguf"); }
// Vision projectors ship beside language models in GGUF repositories; they are not a model to run.
bool is_language_gguf(const std::string& name) { return is_gguf(name) && lower(name).find("mmproj") == std::string::npos; }

// The files a Hugging Face checkpoint directory is opened from (model_hf.cpp, load_hf.cpp, chat templates).
bool is_checkpoint_file(const std::string& name) {
  static constexpr std::array<std::string_view, 10> kNames = {
      "config.json",           "generation_config.json", "tokenizer.json",    "tokenizer.model",
      "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "chat_template.jinja",
      "chat_template.json",    "model.safetensors.index.json"};
  if (!at_root(name)) return false;
  if (std::find(kNames.begin(), kNames.end(), name) != kNames.end()) return true;
  return name.ends_with(".safetensors") || name.ends_with(".safetensors.index.json");
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "(none)" : out;
}

ModelFiles checkpoint(const std::string& repo, const std::vector<RepoFile>& listing) {
  ModelFiles m;
  for (const auto& f : listing)
    if (is_checkpoint_file(f.name)) m.files.push_back(f.name);
  const bool has_config = std::find(m.files.begin(), m.files.end(), "config.json") != m.files.end();
  const bool has_weights = std::any_of(m.files.begin(), m.files.end(), [](const std::string& n) { return n.ends_with(".safetensors"); });
  if (!has_config || !has_weights) {
    std::vector<std::string> all;
    for (const auto& f : listing) all.push_back(f.name);
    fail("[hub] {} has neither a GGUF file nor a Hugging Face checkpoint (config.json with *.safetensors); its files: {}",
         repo, join_names(all));
  }
  m.model = "";
  return m;
}

}  // namespace

ModelFiles choose_model_files(const std::string& repo, const std::vector<RepoFile>& listing, const std::string& selector) {
  std::vector<std::string> ggufs;
  for (const auto& f : listing)
    if (is_language_gguf(f.name)) ggufs.push_back(f.name);

  if (!selector.empty()) {
    const auto exact = std::find_if(listing.begin(), listing.end(), [&](const RepoFile& f) { return f.name == selector; });
    if (exact != listing.end()) {
      if (is_checkpoint_file(selector)) return checkpoint(repo, listing);
      return {{selector}, selector, ""};
    }
    // A glob (llama-cpp-python's from_pretrained(filename="*q8_0.gguf")): exactly one file must match.
    if (selector.find_first_of("*?[") != std::string::npos) {
      std::vector<std::string> hits;
      for (const auto& f : listing)
        if (::fnmatch(selector.c_str(), f.name.c_str(), 0) == 0) hits.push_back(f.name);
      if (hits.size() == 1) {
        if (is_checkpoint_file(hits[0])) return checkpoint(repo, listing);
        return {{hits[0]}, hits[0], ""};
      }
      std::vector<std::string> all;
      for (const auto& f : listing) all.push_back(f.name);
      fail("[hub] '{}' matches {} files of {}{}{}; its files: {}", selector, hits.size(), repo,
           hits.empty() ? "" : ": ", join_names(hits), join_names(all));
    }
    // llama.cpp's -hf ORG/NAME:QUANT: the GGUF files whose name holds the tag, case-insensitively.
    const std::string tag = lower(selector);
    std::vector<std::string> hits;
    for (const auto& g : ggufs)
      if (lower(g).find(tag) != std::string::npos) hits.push_back(g);
    if (hits.size() > 1) {  // "q4_k" also matches "q4_k_m": prefer the names where the tag ends the stem
      std::vector<std::string> whole;
      for (const auto& h : hits)
        if (lower(h).ends_with(tag + ".gguf")) whole.push_back(h);
      if (whole.size() == 1) hits = whole;
    }
    if (hits.size() == 1) return {{hits[0]}, hits[0], ""};
    if (hits.empty())
      fail("[hub] {} has no file '{}' and no GGUF file whose name contains it; its GGUF files: {}", repo, selector,
           join_names(ggufs));
    fail("[hub] '{}' matches several GGUF files of {}: {}; name one with {}:FILE", selector, repo, join_names(hits), repo);
  }

  if (ggufs.size() == 1) return {{ggufs[0]}, ggufs[0], ""};
  if (ggufs.size() > 1) {
    // The ternary packings, best first (the engine's fastest path is I2_S / TQ2_0; TQ1_0 is denser).
    for (const char* tag : {"i2_s", "tq2_0", "tq1_0"})
      for (const auto& g : ggufs)
        if (lower(g).find(tag) != std::string::npos)
          return {{g}, g, "chose " + g + " of the repository's GGUF files (" + join_names(ggufs) + "); name another with " +
                              repo + ":FILE"};
    fail("[hub] {} has several GGUF files and none is ternary (I2_S, TQ2_0, TQ1_0): {}; name one with {}:FILE", repo,
         join_names(ggufs), repo);
  }
  return checkpoint(repo, listing);
}

}  // namespace bitnet::hub
