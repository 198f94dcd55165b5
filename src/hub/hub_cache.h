#pragma once
// The cache layout huggingface_hub defines and reads (its "Manage the cache" guide), so that files either tool
// downloaded are found by the other:
//   CACHE/models--ORG--NAME/blobs/ETAG                     the content, named by its ETag (SHA-256 for LFS files)
//   CACHE/models--ORG--NAME/snapshots/COMMIT/PATH          relative symlinks to ../../blobs/ETAG
//   CACHE/models--ORG--NAME/refs/REVISION                  the commit hash a branch or tag pointed to
//   CACHE/.locks/models--ORG--NAME/ETAG.lock               flock(2) while a blob is written (filelock's lock)
// A blob being downloaded is BLOB.incomplete; it becomes the blob by rename(2) once whole and checked.
#include <filesystem>
#include <string>
#include <vector>

#include <bitnet/hub.h>

namespace bitnet::hub {

namespace fs = std::filesystem;

struct RepoCache {
  fs::path cache;  // CACHE
  fs::path dir;    // CACHE/models--ORG--NAME

  RepoCache(const fs::path& cache_dir, const std::string& repo);
  fs::path blob(const std::string& etag) const { return dir / "blobs" / etag; }
  fs::path snapshot(const std::string& commit) const { return dir / "snapshots" / commit; }
  fs::path lock_file(const std::string& etag) const;

  // The commit `revision` resolves to in the cache: itself when it is a 40-digit hash with a snapshot, else what
  // refs/REVISION holds; "" when the cache does not know it.
  std::string commit_of(const std::string& revision) const;
  void write_ref(const std::string& revision, const std::string& commit) const;  // atomic
  // snapshots/COMMIT/PATH -> the blob, replacing what was there.
  void link(const std::string& commit, const std::string& path, const std::string& etag) const;
  // The files present in a snapshot (symlinks whose blob exists), repository paths with their sizes.
  std::vector<RepoFile> snapshot_files(const std::string& commit) const;
};

// An exclusive flock(2) on a lock file, held for the object's life (waits for another process's download).
class FileLock {
 public:
  explicit FileLock(const fs::path& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

bool is_commit_hash(const std::string& revision);

}  // namespace bitnet::hub
