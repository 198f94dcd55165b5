// The huggingface_hub cache layout (hub_cache.h).
#include "hub/hub_cache.h"

#include <bitnet/error.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>

namespace bitnet::hub {

namespace {
std::string folder_name(const std::string& repo) {
  std::string name = "models--";
  for (char c : repo) name += c == '/' ? std::string("--") : std::string(1, c);
  return name;
}
}  // namespace

bool is_commit_hash(const std::string& revision) {
  if (revision.size() != 40) return false;
  for (char c : revision)
    if (!std::isxdigit(static_cast<unsigned char>(c)) || std::isupper(static_cast<unsigned char>(c))) return false;
  return true;
}

RepoCache::RepoCache(const fs::path& cache_dir, const std::string& repo)
    : cache(cache_dir), dir(cache_dir / folder_name(repo)) {}

fs::path RepoCache::lock_file(const std::string& etag) const {
  return cache / ".locks" / dir.filename() / (etag + ".lock");
}

std::string RepoCache::commit_of(const std::string& revision) const {
  std::error_code ec;
  if (is_commit_hash(revision) && fs::is_directory(snapshot(revision), ec)) return revision;
  std::ifstream f(dir / "refs" / revision);
  std::string commit;
  if (f && std::getline(f, commit) && is_commit_hash(commit)) return commit;
  return {};
}

void RepoCache::write_ref(const std::string& revision, const std::string& commit) const {
  const fs::path ref = dir / "refs" / revision;
  fs::create_directories(ref.parent_path());
  const fs::path tmp = ref.string() + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << commit;
    if (!f.flush()) fail("[hub] cannot write '{}'", tmp.string());
  }
  fs::rename(tmp, ref);
}

void RepoCache::link(const std::string& commit, const std::string& path, const std::string& etag) const {
  const fs::path pointer = snapshot(commit) / path;
  fs::create_directories(pointer.parent_path());
  const fs::path target = blob(etag).lexically_relative(pointer.parent_path());  // ../../blobs/ETAG
  std::error_code ec;
  if (fs::is_symlink(pointer, ec) && fs::read_symlink(pointer, ec) == target) return;
  // A new link beside the old one, renamed over it: a reader never sees the pointer missing.
  const fs::path tmp = pointer.string() + ".tmp" + std::to_string(::getpid());
  fs::remove(tmp, ec);
  fs::create_symlink(target, tmp);
  fs::rename(tmp, pointer);
}

std::vector<RepoFile> RepoCache::snapshot_files(const std::string& commit) const {
  std::vector<RepoFile> files;
  const fs::path root = snapshot(commit);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return files;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!fs::is_regular_file(it->path(), ec)) continue;  // follows the link: a dangling one is not a file
    RepoFile f;
    f.name = it->path().lexically_relative(root).generic_string();  // not fs::relative: it follows the link
    f.size = static_cast<int64_t>(fs::file_size(it->path(), ec));
    files.push_back(std::move(f));
  }
  return files;
}

FileLock::FileLock(const fs::path& path) {
  fs::create_directories(path.parent_path());
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("[hub] cannot open the lock file '{}': {}", path.string(), std::strerror(errno));
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno != EINTR) fail("[hub] cannot lock '{}': {}", path.string(), std::strerror(errno));
  }
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the lock
}

}  // namespace bitnet::hub
