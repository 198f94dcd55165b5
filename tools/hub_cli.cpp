// -hf and the download display (hub_cli.h).
#include "hub_cli.h"

#include <bitnet/error.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

#include "commands.h"

namespace bitnet::cli {

namespace {

std::string size_text(int64_t bytes) {
  if (bytes < 0) return "?";
  const double b = static_cast<double>(bytes);
  if (b >= 1e9) return fmt::format("{:.2f} GB", b / 1e9);
  if (b >= 1e6) return fmt::format("{:.1f} MB", b / 1e6);
  if (b >= 1e3) return fmt::format("{:.1f} kB", b / 1e3);
  return fmt::format("{} B", bytes);
}

std::string bar(double frac, int width) {
  const int fill = static_cast<int>(width * std::min(1.0, std::max(0.0, frac)));
  return "[" + std::string(fill, '#') + std::string(width - fill, ' ') + "]";
}

}  // namespace

void add_hf_flags(CLI::App* cmd, HfSource& source, bool env) {
  auto* repo = cmd->add_option("--hf-repo", source.repo,
                               "Hugging Face model repository ORG/NAME[:FILE or :QUANT] (also -hf, -hfr): downloaded "
                               "into the huggingface_hub cache (HF_HOME), or found there (HF_HUB_OFFLINE=1)");
  llama_alias(cmd, "-hf", "--hf-repo");
  llama_alias(cmd, "-hfr", "--hf-repo");
  auto* file = cmd->add_option("--hf-file", source.file, "File of the --hf-repo repository to run (also -hff; default: "
                                                         "its GGUF file, or its safetensors checkpoint)");
  llama_alias(cmd, "-hff", "--hf-file");
  cmd->add_option("--hf-token", source.token, "Hugging Face access token (also -hft; default: HF_TOKEN)");
  llama_alias(cmd, "-hft", "--hf-token");
  if (env) {
    repo->envname("LLAMA_ARG_HF_REPO");
    file->envname("LLAMA_ARG_HF_FILE");
  }
  add_refused_flag(cmd, "--model-url", "-mu",
                   "downloading a model from a plain URL is not supported; use -hf ORG/NAME for the Hugging Face Hub "
                   "(HF_ENDPOINT for a mirror), or download it and pass -m FILE", true);
}

hub::HubConfig hub_config_with(const std::string& token) {
  hub::HubConfig config = hub::HubConfig::from_environment();
  if (!token.empty()) config.token = token;
  return config;
}

std::string model_from_flags(const std::string& model, const HfSource& source, const std::string& command) {
  if (source.repo.empty()) {
    BITNET_CHECK(source.file.empty(), "[{}] --hf-file {} needs -hf ORG/NAME (the repository it is in)", command, source.file);
    BITNET_CHECK(!model.empty(), "[{}] give a model: -m FILE.gguf (or a Hugging Face checkpoint directory), or "
                                 "-hf ORG/NAME to download one (bitnet models lists the known ones)", command);
    return model;
  }
  BITNET_CHECK(model.empty(), "[{}] -m {} and -hf {} both name a model; give one", command, model, source.repo);
  std::string spec = source.repo;
  if (!source.file.empty()) spec = hub::parse_model_ref(source.repo).repo + ":" + source.file;
  return pull_with_progress(spec, {}, hub_config_with(source.token)).model.string();
}

DownloadProgress::DownloadProgress() : tty_(isatty(STDERR_FILENO) != 0) {}

void DownloadProgress::finish() {
  draw(true);
  finished_ = true;
}

void DownloadProgress::note(const std::string& text) {
  if (tty_ && lines_drawn_ > 0) fmt::print(stderr, "\033[{}A\r\033[J", lines_drawn_);
  lines_drawn_ = 0;
  fmt::print(stderr, "note: {}\n", text);
  draw(true);
}

void DownloadProgress::update(const hub::FileProgress& p) {
  FileState& s = files_[p.file];
  const bool newly_finished = p.finished && !s.finished;
  s.done = p.done;
  if (p.total >= 0) s.total = p.total;
  s.finished = p.finished;
  s.cached = p.cached;
  if (!tty_) {  // logs: one line per file when it is there
    if (newly_finished)
      fmt::print(stderr, "{}: {}\n", p.file, p.cached ? "in the cache" : size_text(s.done) + " downloaded");
    return;
  }
  draw(newly_finished);
}

void DownloadProgress::draw(bool force) {
  if (!tty_ || files_.empty() || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  std::string text;
  int64_t done = 0, total = 0, fresh = 0;
  for (const auto& [name, s] : files_) {
    done += s.done;
    total += std::max<int64_t>(s.total, s.done);
    if (!s.cached) fresh += s.done;
    const double frac = s.total > 0 ? static_cast<double>(s.done) / s.total : (s.finished ? 1.0 : 0.0);
    text += fmt::format("\r\033[K{:<40.40} {} {:3.0f}% {:>9} / {:<9}{}\n", name, bar(frac, 20), 100 * frac,
                        size_text(s.done), size_text(s.total), s.cached ? "  cached" : "");
  }
  const double rate = elapsed > 0 ? static_cast<double>(fresh) / elapsed : 0;
  const double frac = total > 0 ? static_cast<double>(done) / total : 0;
  const std::string eta = rate > 0 && done < total ? fmt::format(", ETA {:.0f} s", (total - done) / rate) : "";
  text += fmt::format("\r\033[K{:<40} {} {:3.0f}% {:>9} / {:<9} {}/s{}\n", "total", bar(frac, 20), 100 * frac,
                      size_text(done), size_text(total), size_text(static_cast<int64_t>(rate)), eta);
  if (lines_drawn_ > 0) fmt::print(stderr, "\033[{}A", lines_drawn_);
  fmt::print(stderr, "{}", text);
  std::fflush(stderr);
  lines_drawn_ = static_cast<int>(files_.size()) + 1;
}

hub::PullResult pull_with_progress(const std::string& spec, hub::PullOptions options, const hub::HubConfig& config) {
  auto display = std::make_shared<DownloadProgress>();
  options.progress = [display](const hub::FileProgress& p) { display->update(p); };
  options.note = [display](const std::string& s) { display->note(s); };
  hub::PullResult r = hub::pull(spec, options, config);
  display->finish();
  if (r.from_cache_only || r.downloaded_bytes == 0)
    fmt::print(stderr, "{}: {} from the cache (commit {})\n", r.repo, r.model.string(), r.commit.substr(0, 12));
  else
    fmt::print(stderr, "{}: {} downloaded (commit {}) -> {}\n", r.repo, size_text(r.downloaded_bytes),
               r.commit.substr(0, 12), r.model.string());
  return r;
}

}  // namespace bitnet::cli
