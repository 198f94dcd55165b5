#pragma once
// The command line's side of Hugging Face Hub downloads (include/bitnet/hub.h): llama.cpp's -hf/-hfr/--hf-repo,
// -hff/--hf-file and -hft/--hf-token flags on run, bench, perplexity and serve, and the progress display that
// `bitnet pull` shares: one bar per file and one for the total on a terminal, a line per finished file elsewhere.
#include <CLI/CLI.hpp>
#include <bitnet/hub.h>

#include <chrono>
#include <map>
#include <string>

namespace bitnet::cli {

struct HfSource {
  std::string repo;   // ORG/NAME[:FILE or :QUANT]
  std::string file;   // -hff: a file of the repository (wins over :QUANT)
  std::string token;  // -hft: instead of HF_TOKEN
};

// -hf/-hfr/--hf-repo, -hff/--hf-file, -hft/--hf-token into `source` (which must outlive the parse), -mu refused.
// `env`: also read llama-server's LLAMA_ARG_HF_REPO / LLAMA_ARG_HF_FILE (serve).
void add_hf_flags(CLI::App* cmd, HfSource& source, bool env = false);

// The model path a command opens: `model` (-m) as given, or the file/directory -hf downloaded into the cache.
// Exactly one of them must be given; `command` names the command in the errors.
std::string model_from_flags(const std::string& model, const HfSource& source, const std::string& command);

// The HubConfig from the environment with -hft applied.
hub::HubConfig hub_config_with(const std::string& token);

// Download progress on stderr (hub::PullOptions::progress and ::note).
class DownloadProgress {
 public:
  DownloadProgress();
  void update(const hub::FileProgress& p);
  void note(const std::string& text);
  void finish();  // the last frame; nothing is drawn after it

 private:
  void draw(bool force);
  struct FileState {
    int64_t done = 0, total = -1;
    bool finished = false, cached = false;
  };
  std::map<std::string, FileState> files_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_draw_{};
  bool tty_;
  int lines_drawn_ = 0;
  bool finished_ = false;
};

// hub::pull with a DownloadProgress, printing where the model is.
hub::PullResult pull_with_progress(const std::string& spec, hub::PullOptions options, const hub::HubConfig& config);

}  // namespace bitnet::cli
