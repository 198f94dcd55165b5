// The repository listing (repo_listing.h).
#include "hub/repo_listing.h"

#include <bitnet/error.h>

#include <nlohmann/json.hpp>

#include "hub/digest.h"
#include "hub/hub_cache.h"
#include "io/json_util.h"

namespace bitnet::hub {

namespace {
bool safe_path(const std::string& name) {
  if (name.empty() || name.size() > 4096 || name.starts_with("/") || name.find('\0') != std::string::npos ||
      name.find('\\') != std::string::npos)
    return false;
  size_t start = 0;  // no empty, "." or ".." component
  while (start <= name.size()) {
    const size_t end = std::min(name.find('/', start), name.size());
    const std::string_view part(name.data() + start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}
}  // namespace

RepoListing parse_repo_listing(std::string_view text, const std::string& what) {
  const nlohmann::json info = io::parse_json_strict(text, what, 32);
  if (!info.is_object() || !info.contains("sha") || !info["sha"].is_string() || !is_commit_hash(info["sha"].get<std::string>()))
    fail("[hub] {}: the answer has no 'sha' commit hash; the server does not behave as a Hugging Face hub (HF_ENDPOINT?)",
         what);
  RepoListing out;
  out.commit = info["sha"].get<std::string>();
  const auto it = info.find("siblings");
  if (it == info.end() || !it->is_array()) fail("[hub] {}: the answer has no 'siblings' array", what);
  for (const auto& s : *it) {
    if (!s.is_object() || !s.contains("rfilename") || !s["rfilename"].is_string())
      fail("[hub] {}: a 'siblings' entry has no 'rfilename' string", what);
    Listed l;
    l.file.name = s["rfilename"].get<std::string>();
    if (!safe_path(l.file.name)) fail("[hub] {}: the listing names a file outside the repository: '{}'", what, l.file.name);
    if (s.contains("size") && s["size"].is_number_unsigned()) l.file.size = s["size"].get<int64_t>();
    if (s.contains("lfs") && s["lfs"].is_object()) {
      const auto& lfs = s["lfs"];
      if (lfs.contains("sha256") && lfs["sha256"].is_string() &&
          digest_kind_of_etag(lfs["sha256"].get<std::string>()) == DigestKind::sha256)
        l.file.sha256 = lfs["sha256"].get<std::string>();
      if (lfs.contains("size") && lfs["size"].is_number_unsigned()) l.file.size = lfs["size"].get<int64_t>();
      l.etag = l.file.sha256;
    } else if (s.contains("blobId") && s["blobId"].is_string() &&
               digest_kind_of_etag(s["blobId"].get<std::string>()) == DigestKind::git_sha1) {
      l.etag = s["blobId"].get<std::string>();
    }
    if (l.file.size < -1) l.file.size = -1;
    out.files.push_back(std::move(l));
  }
  return out;
}

}  // namespace bitnet::hub
