// bitnet::hub::pull (hub.h): the revision resolved through the Hub's API, the model's files chosen from the
// listing, then fetched several at once into the cache; offline (or when the Hub cannot be reached) the same
// choice is made from the cached snapshot.
#include <bitnet/error.h>
#include <bitnet/hub.h>
#include <sys/statvfs.h>

#include <exception>
#include <mutex>
#include <thread>

#include "hub/file_download.h"
#include "hub/hub_cache.h"
#include "hub/hub_errors.h"
#include "hub/http_client.h"
#include "hub/repo_listing.h"

namespace bitnet::hub {

namespace {

HttpOptions http_options(const HubConfig& c) {
  return {c.token, url_host(c.endpoint), c.connect_timeout_s, c.stall_timeout_s};
}

std::vector<Listed> fetch_listing(const std::string& repo, const std::string& revision, const HubConfig& config,
                                  std::string& commit, TransportError* unreachable) {
  if (config.offline) fail("[hub] HF_HUB_OFFLINE is set: listing {} needs the network", repo);
  HttpClient http(http_options(config));
  const std::string url = config.endpoint + "/api/models/" + repo + "/revision/" + url_encode_component(revision) + "?blobs=true";
  HttpResponse r;
  TransportError te;
  const HubRequest q{config.endpoint, repo, revision, "", !config.token.empty()};
  if (!http.get_text(url, r, te)) {
    if (unreachable && te.network_unreachable) {
      *unreachable = te;
      return {};
    }
    fail_unreachable(te, q, "");
  }
  check_hub_status(r, q);
  RepoListing listing = parse_repo_listing(r.body, fmt::format("{}/api/models/{} (revision {})", config.endpoint, repo, revision));
  commit = listing.commit;
  return std::move(listing.files);
}

// The files named with PullOptions::files: the model is the first when it is a GGUF file, else the snapshot.
ModelFiles exact_files(const std::vector<std::string>& files) {
  return {files, files.front().ends_with(".gguf") ? files.front() : "", ""};
}

PullResult result_of(const std::string& repo, const std::string& revision, const std::string& commit,
                     const RepoCache& cache, const ModelFiles& m) {
  PullResult r;
  r.repo = repo;
  r.revision = revision;
  r.commit = commit;
  r.snapshot = cache.snapshot(commit);
  r.model = m.model.empty() ? r.snapshot : r.snapshot / m.model;
  r.files = m.files;
  return r;
}

PullResult from_cache(const std::string& repo, const ModelRef& ref, const PullOptions& o, const HubConfig& config,
                      const std::string& why) {
  const RepoCache cache(config.cache_dir, repo);
  const std::string commit = cache.commit_of(o.revision);
  if (commit.empty())
    fail("[hub] {}, and the cache ({}) has no copy of {} at revision '{}'{}", why, config.cache_dir.string(), repo,
         o.revision, config.offline ? "; unset HF_HUB_OFFLINE to download it" : "");
  const std::vector<RepoFile> present = cache.snapshot_files(commit);
  const ModelFiles m = o.files.empty() ? choose_model_files(repo, present, ref.selector) : exact_files(o.files);
  for (const auto& f : m.files) {
    std::error_code ec;
    if (!fs::is_regular_file(cache.snapshot(commit) / f, ec))
      fail("[hub] {}, and the cached snapshot {} of {} lacks '{}'{}", why, commit.substr(0, 12), repo, f,
           config.offline ? "; unset HF_HUB_OFFLINE to download it" : "");
  }
  PullResult r = result_of(repo, o.revision, commit, cache, m);
  r.from_cache_only = true;
  return r;
}

// Refuses a download that cannot fit before any byte is written (the blobs already there count as free).
void check_free_space(const RepoCache& cache, const std::vector<Listed>& todo) {
  int64_t need = 0;
  std::error_code ec;
  for (const auto& l : todo) {
    if (l.file.size < 0 || l.etag.empty() || fs::exists(cache.blob(l.etag), ec)) continue;
    const fs::path part = cache.blob(l.etag).string() + ".incomplete";
    const int64_t have = fs::exists(part, ec) ? static_cast<int64_t>(fs::file_size(part, ec)) : 0;
    need += std::max<int64_t>(0, l.file.size - have);
  }
  if (need == 0) return;
  fs::create_directories(cache.dir / "blobs");
  struct statvfs st {};
  if (::statvfs((cache.dir / "blobs").c_str(), &st) != 0) return;
  const auto free_bytes = static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
  if (need > free_bytes)
    fail("[hub] not enough disk space in {}: the download needs {:.2f} GB, {:.2f} GB are free; free space or set "
         "HF_HUB_CACHE (or HF_HOME) to a larger disk", cache.cache.string(), need / 1e9, free_bytes / 1e9);
}

}  // namespace

std::vector<RepoFile> list_repo_files(const std::string& repo, const std::string& revision, const HubConfig& config,
                                      std::string* commit) {
  parse_model_ref(repo);  // validates the name
  std::string sha;
  std::vector<RepoFile> files;
  for (auto& l : fetch_listing(repo, revision, config, sha, nullptr)) files.push_back(std::move(l.file));
  if (commit) *commit = sha;
  return files;
}

PullResult pull(const std::string& spec, const PullOptions& o, const HubConfig& config) {
  const ModelRef ref = parse_model_ref(spec);
  BITNET_CHECK(ref.selector.empty() || o.files.empty(),
               "[hub] '{}' names a file and exact files are given too ({}); give one", spec, fmt::join(o.files, ", "));
  if (o.revision.empty() || o.revision.find("..") != std::string::npos || o.revision.starts_with("/"))
    fail("[hub] '{}' is not a revision (a branch, tag or commit hash)", o.revision);
  if (config.offline) return from_cache(ref.repo, ref, o, config, "HF_HUB_OFFLINE is set");

  std::string commit;
  TransportError unreachable;
  const std::vector<Listed> listing = fetch_listing(ref.repo, o.revision, config, commit, &unreachable);
  if (commit.empty()) {
    try {
      PullResult r = from_cache(ref.repo, ref, o, config, "cannot reach " + config.endpoint + " (" + unreachable.message + ")");
      if (o.note)
        o.note(fmt::format("cannot reach {} ({}); using the cached snapshot {} of {}", config.endpoint,
                           unreachable.message, r.commit.substr(0, 12), ref.repo));
      return r;
    } catch (const Error&) {
      fail_unreachable(unreachable, {config.endpoint, ref.repo, o.revision, "", !config.token.empty()},
                       ", which has no copy of " + ref.repo + " yet");
    }
  }

  std::vector<RepoFile> files;
  for (const auto& l : listing) files.push_back(l.file);
  ModelFiles m;
  if (o.files.empty()) {
    m = choose_model_files(ref.repo, files, ref.selector);
    if (!m.note.empty() && o.note) o.note(m.note);
  } else {
    for (const auto& f : o.files) {
      if (std::none_of(files.begin(), files.end(), [&](const RepoFile& r) { return r.name == f; }))
        fail("[hub] {} has no file '{}' at revision '{}'", ref.repo, f, o.revision);
    }
    m = exact_files(o.files);
  }

  const RepoCache cache(config.cache_dir, ref.repo);
  std::vector<Listed> todo;
  for (const auto& f : m.files)
    for (const auto& l : listing)
      if (l.file.name == f) todo.push_back(l);
  check_free_space(cache, todo);
  if (o.progress)  // every file's size up front, so that a total can be shown from the start
    for (const auto& l : todo) o.progress({l.file.name, 0, l.file.size, false, false});

  std::mutex mu;  // serializes progress/note callbacks and the shared results
  DownloadJob job;
  job.config = &config;
  job.cache = &cache;
  job.repo = ref.repo;
  job.commit = commit;
  job.retries = o.retries;
  job.verify_cached = o.verify_cached;
  std::atomic<bool> cancel{false};
  job.cancel = &cancel;
  if (o.progress) job.progress = [&](const FileProgress& p) {
      std::lock_guard lock(mu);
      o.progress(p);
    };
  if (o.note) job.note = [&](const std::string& s) {
      std::lock_guard lock(mu);
      o.note(s);
    };

  size_t next = 0;
  int64_t downloaded = 0;
  std::exception_ptr first_error;
  auto worker = [&] {
    HttpClient http(http_options(config));
    for (;;) {
      std::string file;
      {
        std::lock_guard lock(mu);
        if (next >= m.files.size() || cancel.load()) return;
        file = m.files[next++];
      }
      try {
        const FileOutcome out = fetch_file(http, job, file);
        std::lock_guard lock(mu);
        downloaded += out.downloaded;
      } catch (const DownloadCancelled&) {
        return;
      } catch (...) {
        std::lock_guard lock(mu);
        if (!first_error) first_error = std::current_exception();
        cancel = true;
        return;
      }
    }
  };
  const int n = std::max(1, std::min<int>(o.parallel, static_cast<int>(m.files.size())));
  std::vector<std::thread> threads;
  for (int i = 1; i < n; ++i) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  if (first_error) std::rethrow_exception(first_error);

  if (o.revision != commit) cache.write_ref(o.revision, commit);
  PullResult r = result_of(ref.repo, o.revision, commit, cache, m);
  r.downloaded_bytes = downloaded;
  return r;
}

}  // namespace bitnet::hub
