// One file into the cache (file_download.h).
#include "hub/file_download.h"

#include <bitnet/error.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "hub/digest.h"
#include "hub/hub_errors.h"

namespace bitnet::hub {

namespace {

using Clock = std::chrono::steady_clock;

int64_t header_int(const HttpResponse& r, const char* name) {
  const std::string* v = r.header(name);
  if (!v || v->empty()) return -1;
  try {
    size_t used = 0;
    const long long n = std::stoll(*v, &used);
    return used == v->size() && n >= 0 ? n : -1;
  } catch (...) {
    return -1;
  }
}

// "bytes START-END/TOTAL" -> START, or -1.
int64_t content_range_start(const HttpResponse& r) {
  const std::string* v = r.header("content-range");
  if (!v || !v->starts_with("bytes ")) return -1;
  try {
    return std::stoll(v->substr(6));
  } catch (...) {
    return -1;
  }
}

std::string mib(int64_t bytes) { return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20)); }

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};

}  // namespace

std::string normalize_etag(std::string etag) {
  if (etag.starts_with("W/")) etag = etag.substr(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
  return etag;
}

FileOutcome fetch_file(HttpClient& http, const DownloadJob& job, const std::string& file) {
  const HubConfig& cfg = *job.config;
  const RepoCache& cache = *job.cache;
  const HubRequest q{cfg.endpoint, job.repo, job.commit, file, !cfg.token.empty()};
  const std::string url = cfg.endpoint + "/" + job.repo + "/resolve/" + job.commit + "/" + url_encode_path(file);

  HttpResponse head;
  TransportError te;
  if (!http.head(url, head, te)) fail_unreachable(te, q, "");
  check_hub_status(head, q);
  const std::string* linked = head.header("x-linked-etag");
  const std::string* plain = head.header("etag");
  const std::string etag = normalize_etag(linked ? *linked : plain ? *plain : "");
  if (etag.empty() || etag.find('/') != std::string::npos || etag == "." || etag == "..")
    fail("[hub] {} sent no usable ETag for {}/{}: it does not behave as a Hugging Face hub (HF_ENDPOINT?)",
         cfg.endpoint, job.repo, file);
  if (!head.header("x-repo-commit"))
    fail("[hub] {} sent no X-Repo-Commit header for {}/{}: it does not behave as a Hugging Face hub (HF_ENDPOINT?)",
         cfg.endpoint, job.repo, file);
  const bool redirect = head.status >= 300 && head.status < 400;
  const int64_t size = header_int(head, "x-linked-size") >= 0 ? header_int(head, "x-linked-size")
                                                                : (redirect ? -1 : header_int(head, "content-length"));
  const std::string location = redirect && head.header("location") ? *head.header("location") : head.url;
  DigestKind kind = digest_kind_of_etag(etag);
  if (kind == DigestKind::git_sha1 && size < 0) kind = DigestKind::none;  // git's header needs the size

  auto report = [&](int64_t done, bool finished, bool cached) {
    if (job.progress) job.progress({file, done, size, finished, cached});
  };

  const fs::path blob = cache.blob(etag);
  auto blob_is_whole = [&](bool verify) {
    std::error_code ec;
    if (!fs::is_regular_file(blob, ec)) return false;
    if (size >= 0 && static_cast<int64_t>(fs::file_size(blob, ec)) != size) return false;
    if (!verify || kind == DigestKind::none) return true;
    Digest d(kind, size);
    digest_file(d, blob);
    return d.hex() == etag;
  };
  std::error_code ec;
  if (fs::exists(blob, ec)) {
    if (blob_is_whole(job.verify_cached)) {
      cache.link(job.commit, file, etag);
      report(size, true, true);
      return {0, true};
    }
    if (job.note) job.note(fmt::format("{}: the cached copy ({}) is damaged; downloading it again", file, blob.string()));
    fs::remove(blob, ec);
  }

  fs::create_directories(blob.parent_path());
  FileLock lock(cache.lock_file(etag));
  if (blob_is_whole(false)) {  // another process finished it while we waited for the lock
    cache.link(job.commit, file, etag);
    report(size, true, true);
    return {0, true};
  }

  const fs::path part = blob.string() + ".incomplete";
  int64_t have = fs::exists(part, ec) ? static_cast<int64_t>(fs::file_size(part, ec)) : 0;
  if (size >= 0 && have > size) {
    fs::remove(part, ec);
    have = 0;
  }
  Digest digest(kind, size);
  if (have > 0) digest_file(digest, part, have);
  std::unique_ptr<std::FILE, FileCloser> out(std::fopen(part.c_str(), have > 0 ? "ab" : "wb"));
  if (!out) fail("[hub] cannot write '{}': {}", part.string(), std::strerror(errno));
  if (have > 0 && job.note) job.note(fmt::format("{}: resuming the earlier download at {}", file, mib(have)));

  int64_t received = 0;
  for (int attempt = 0;; ++attempt) {
    if (size >= 0 && have == size) break;
    int write_errno = 0;
    long refused_status = 0;
    bool restarted = false;
    Clock::time_point last_report{};
    auto on_start = [&](const HttpResponse& r) {
      if (r.status == 206 && content_range_start(r) == have) return true;
      if (r.status == 200 || r.status == 206) {  // the whole file (no Range support) or an unexpected range: restart
        if (std::fflush(out.get()) != 0 || ::ftruncate(::fileno(out.get()), 0) != 0 || std::fseek(out.get(), 0, SEEK_SET) != 0) {
          write_errno = errno;
          return false;
        }
        digest.reset();
        have = 0;
        restarted = r.status == 206;  // a range we did not ask for: ask again from 0
        return r.status == 200;
      }
      refused_status = r.status;
      return false;
    };
    auto on_data = [&](std::string_view bytes) {
      if (job.cancel && job.cancel->load()) return false;
      if (std::fwrite(bytes.data(), 1, bytes.size(), out.get()) != bytes.size()) {
        write_errno = errno ? errno : EIO;
        return false;
      }
      digest.update(bytes);
      have += static_cast<int64_t>(bytes.size());
      received += static_cast<int64_t>(bytes.size());
      const auto now = Clock::now();
      if (now - last_report > std::chrono::milliseconds(100)) {
        last_report = now;
        report(have, false, false);
      }
      return true;
    };
    HttpResponse resp;
    const bool answered = http.get_stream(location, have, on_start, on_data, resp, te);
    if (std::fflush(out.get()) != 0 && !write_errno) write_errno = errno;
    if (write_errno) {
      if (write_errno == ENOSPC || write_errno == EDQUOT)
        fail("[hub] the disk is full: {} stopped at {} in '{}'; free space (or set HF_HUB_CACHE to a larger disk) and "
             "run again: the download resumes from there", file, mib(have), part.string());
      fail("[hub] cannot write '{}': {}", part.string(), std::strerror(write_errno));
    }
    if (job.cancel && job.cancel->load()) throw DownloadCancelled{};
    if (answered && refused_status) {
      HubRequest qr = q;
      check_hub_status(resp, qr);  // 4xx/5xx from the file server
      fail("[hub] {} answered {} to the download of {}", url_host(location), refused_status, file);
    }
    if (answered && !restarted && (size < 0 || have == size)) break;
    if (answered && size >= 0 && have > size)
      fail("[hub] {}: the server sent more than the {} bytes it announced", file, size);
    if (attempt >= job.retries)
      fail("[hub] downloading {} from {} failed {} times ({}); run the same command again: it resumes from the {} "
           "kept in '{}'",
           file, url_host(location), attempt + 1, answered ? "the connection closed early" : te.message, mib(have),
           part.string());
    if (!answered && te.network_unreachable && attempt == 0 && have == 0) fail_unreachable(te, q, "");
    if (job.note && !restarted)
      job.note(fmt::format("{}: the connection dropped at {} ({}); resuming (attempt {} of {})", file, mib(have),
                           answered ? "closed early" : te.message, attempt + 2, job.retries + 1));
    if (!restarted) std::this_thread::sleep_for(std::chrono::milliseconds(250 << std::min(attempt, 4)));
  }
  if (::fsync(::fileno(out.get())) != 0 && errno != EINVAL)
    fail("[hub] cannot write '{}': {}", part.string(), std::strerror(errno));
  out.reset();
  if (kind != DigestKind::none) {
    const std::string got = digest.hex();
    if (got != etag) {
      fs::remove(part, ec);
      fail("[hub] checksum mismatch for {}/{}: the Hub names it {} {} but the {} received hash to {}; the bad download "
           "was removed, run the command again",
           job.repo, file, kind == DigestKind::sha256 ? "sha256" : "git sha1", etag, mib(have), got);
    }
  }
  fs::rename(part, blob);
  cache.link(job.commit, file, etag);
  report(have, true, false);
  return {received, false};
}

}  // namespace bitnet::hub
