#pragma once
// One file of a repository into the cache (hub_cache.h): its metadata from a HEAD on resolve/COMMIT/FILE, then
// the blob downloaded to BLOB.incomplete (resumed with Range after a dropped connection, up to `retries` times,
// and by the next run after that), checked against the ETag's digest, renamed into place and linked.
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include <bitnet/hub.h>

#include "hub/hub_cache.h"
#include "hub/http_client.h"

namespace bitnet::hub {

struct DownloadJob {
  const HubConfig* config = nullptr;
  const RepoCache* cache = nullptr;
  std::string repo;
  std::string commit;
  int retries = 5;
  bool verify_cached = false;
  std::atomic<bool>* cancel = nullptr;                      // set by another file's failure: stop quietly
  std::function<void(const FileProgress&)> progress;        // already serialized by the caller
  std::function<void(const std::string&)> note;
};

struct FileOutcome {
  int64_t downloaded = 0;  // bytes received
  bool cached = false;     // the blob was already there
};

// Thrown when job.cancel stopped the download (another file failed); the caller reports that failure instead.
struct DownloadCancelled {};

FileOutcome fetch_file(HttpClient& http, const DownloadJob& job, const std::string& file);

// ETag header value -> the name huggingface_hub gives the blob: quotes and a weak "W/" prefix removed.
std::string normalize_etag(std::string etag);

}  // namespace bitnet::hub
