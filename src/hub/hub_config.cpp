// The Hub settings huggingface_hub reads from the environment (its "Environment variables" reference), and the
// ORG/NAME[:FILE] argument.
#include <bitnet/error.h>
#include <bitnet/hub.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>

#include "hub/hub_cache.h"

namespace bitnet::hub {

namespace {
std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

bool env_true(const char* name) {
  std::string v = env(name);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return v == "1" || v == "true" || v == "yes" || v == "on";
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

bool valid_repo_part(const std::string& s) {
  if (s.empty() || s.size() > 96 || s == "." || s == ".." || s.starts_with("-") || s.starts_with(".")) return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_' || c == '.'; });
}
}  // namespace

HubConfig HubConfig::from_environment() {
  HubConfig c;
  if (std::string e = env("HF_ENDPOINT"); !e.empty()) {
    while (e.ends_with("/")) e.pop_back();
    c.endpoint = e;
  }
  std::filesystem::path home;
  if (std::string h = env("HF_HOME"); !h.empty()) {
    home = h;
  } else if (std::string x = env("XDG_CACHE_HOME"); !x.empty()) {
    home = std::filesystem::path(x) / "huggingface";
  } else {
    home = std::filesystem::path(env("HOME").empty() ? "." : env("HOME")) / ".cache" / "huggingface";
  }
  c.cache_dir = env("HF_HUB_CACHE").empty() ? home / "hub" : std::filesystem::path(env("HF_HUB_CACHE"));
  c.token = trim(env("HF_TOKEN"));
  if (c.token.empty()) {
    const std::filesystem::path token_file = env("HF_TOKEN_PATH").empty() ? home / "token" : std::filesystem::path(env("HF_TOKEN_PATH"));
    std::ifstream f(token_file);
    std::string line;
    if (f && std::getline(f, line)) c.token = trim(line);
  }
  c.offline = env_true("HF_HUB_OFFLINE");
  if (std::string t = env("HF_HUB_ETAG_TIMEOUT"); !t.empty()) {
    try {
      c.connect_timeout_s = std::stod(t);
    } catch (...) {
      fail("[hub] HF_HUB_ETAG_TIMEOUT='{}' is not a number of seconds", t);
    }
  }
  if (std::string t = env("HF_HUB_DOWNLOAD_TIMEOUT"); !t.empty()) {
    try {
      c.stall_timeout_s = std::stod(t);
    } catch (...) {
      fail("[hub] HF_HUB_DOWNLOAD_TIMEOUT='{}' is not a number of seconds", t);
    }
  }
  return c;
}

ModelRef parse_model_ref(const std::string& spec) {
  ModelRef ref;
  const size_t colon = spec.find(':');
  ref.repo = spec.substr(0, colon);
  if (colon != std::string::npos) {
    ref.selector = spec.substr(colon + 1);
    if (ref.selector.empty()) fail("[hub] '{}': nothing after ':' (expected ORG/NAME:FILE or ORG/NAME:QUANT)", spec);
  }
  const size_t slash = ref.repo.find('/');
  if (ref.repo.starts_with("http://") || ref.repo.starts_with("https://"))
    fail("[hub] '{}' is a URL; give the repository as ORG/NAME (HF_ENDPOINT selects another hub)", spec);
  if (slash == std::string::npos || ref.repo.find('/', slash + 1) != std::string::npos ||
      !valid_repo_part(ref.repo.substr(0, slash)) || !valid_repo_part(ref.repo.substr(slash + 1)) ||
      ref.repo.find("--") != std::string::npos || ref.repo.find("..") != std::string::npos)
    fail("[hub] '{}' is not a Hugging Face model repository: expected ORG/NAME or ORG/NAME:FILE (letters, digits, "
         "'-', '_', '.'), e.g. microsoft/bitnet-b1.58-2B-4T-gguf", spec);
  if (ref.selector.find("..") != std::string::npos || ref.selector.starts_with("/"))
    fail("[hub] '{}': the file '{}' must be a path inside the repository", spec, ref.selector);
  return ref;
}

std::filesystem::path repo_cache_dir(const HubConfig& config, const std::string& repo) {
  return RepoCache(config.cache_dir, repo).dir;
}

}  // namespace bitnet::hub
