#pragma once
// Models from the Hugging Face Hub: resolve a repository's revision, download the files a model needs into the
// cache that the PyPI package huggingface_hub uses ($HF_HOME/hub/models--ORG--NAME/{blobs,snapshots,refs}), and
// find them there again offline. Files land atomically (a half-written download keeps its ".incomplete" name and
// is resumed with an HTTP Range request), LFS files are checked against the SHA-256 the Hub names them by, and
// every failure is a bitnet::Error saying what to do (set HF_TOKEN, HF_HUB_OFFLINE=1, free disk space).
//
// This layer knows HTTP (libcurl) and the cache layout; it knows no model, engine or command line. The caller
// gets a local path (a .gguf file or a checkpoint directory) and opens it as any other.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace bitnet::hub {

// Where and how to reach the Hub, from the environment huggingface_hub reads:
// HF_ENDPOINT (https://huggingface.co), HF_TOKEN (else the file HF_TOKEN_PATH or $HF_HOME/token),
// HF_HUB_CACHE (else $HF_HOME/hub, HF_HOME defaulting to $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface),
// HF_HUB_OFFLINE (1/true/yes/on: never touch the network).
struct HubConfig {
  std::string endpoint = "https://huggingface.co";
  std::string token;
  std::filesystem::path cache_dir;
  bool offline = false;
  double connect_timeout_s = 10;  // HF_HUB_ETAG_TIMEOUT
  double stall_timeout_s = 30;    // a download that receives nothing for this long is retried (resumed)

  static HubConfig from_environment();
};

// "ORG/NAME" or "ORG/NAME:FILE" (-hf's and bitnet pull's argument). FILE is a file of the repository or, as
// llama.cpp's -hf takes it, a quantization tag matched against the GGUF file names (":i2_s", ":TQ2_0").
struct ModelRef {
  std::string repo;
  std::string selector;  // "" when not given
};
ModelRef parse_model_ref(const std::string& spec);

// One file of a repository as the Hub lists it (api/models/REPO/revision/REV?blobs=true).
struct RepoFile {
  std::string name;     // path in the repository, "/"-separated
  int64_t size = -1;    // -1 when the listing does not say
  std::string sha256;   // LFS files: the content's SHA-256 (hex); "" for files kept in git
};

// What a model needs from a repository listing: the GGUF file the selector names (by file name, glob such as
// "*i2_s.gguf", or quantization tag; without one the repository's only GGUF, else the first of I2_S, TQ2_0, TQ1_0), or a Hugging Face checkpoint
// (config.json, the tokenizer and template files, *.safetensors and their index). `model` is the path to open,
// relative to the snapshot ("" for the snapshot directory itself). Throws, listing the candidates, when the choice
// is ambiguous or nothing fits.
struct ModelFiles {
  std::vector<std::string> files;
  std::string model;
  std::string note;  // why this file was chosen when the user did not say ("" otherwise)
};
ModelFiles choose_model_files(const std::string& repo, const std::vector<RepoFile>& listing,
                              const std::string& selector);

// Progress of one file (called from the download threads, serialized: one call at a time).
struct FileProgress {
  std::string file;
  int64_t done = 0;
  int64_t total = -1;    // -1 when unknown
  bool finished = false;
  bool cached = false;   // already in the cache: nothing downloaded
};

struct PullOptions {
  std::string revision = "main";          // a branch, tag or commit hash
  std::vector<std::string> files;         // exact files to fetch; empty: choose_model_files with the selector
  int parallel = 4;                       // files downloaded at once
  bool verify_cached = false;             // re-hash cached LFS blobs (bitnet pull does) and refetch bad ones
  int retries = 5;                        // resumed attempts per file after a dropped connection
  // Called whenever a file advances (at most ~10 times a second per file) and when it finishes.
  std::function<void(const FileProgress&)> progress;
  std::function<void(const std::string&)> note;  // things the user should know (offline fallback, choice made)
};

struct PullResult {
  std::string repo;
  std::string revision;            // as asked
  std::string commit;              // the commit it resolved to
  std::filesystem::path snapshot;  // CACHE/models--ORG--NAME/snapshots/COMMIT
  std::filesystem::path model;     // the .gguf file or checkpoint directory to open
  std::vector<std::string> files;  // what was fetched or found, in repository paths
  int64_t downloaded_bytes = 0;    // bytes received in this call (0 when everything was cached)
  bool from_cache_only = false;    // offline, or the Hub could not be reached and the cache had everything
};

// Resolves `spec` (parse_model_ref) at options.revision and makes sure its files are in the cache.
PullResult pull(const std::string& spec, const PullOptions& options, const HubConfig& config);

// The repository's files at a revision (network; HubConfig.offline refuses). commit receives the resolved hash.
std::vector<RepoFile> list_repo_files(const std::string& repo, const std::string& revision, const HubConfig& config,
                                      std::string* commit = nullptr);

// The cache folder of a repository: CACHE/models--ORG--NAME.
std::filesystem::path repo_cache_dir(const HubConfig& config, const std::string& repo);

// The known ternary models (models/known_models.json, compiled in): the JSON text.
const std::string& known_models_json();

}  // namespace bitnet::hub
