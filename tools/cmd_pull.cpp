// `bitnet pull ORG/NAME[:FILE]`: a model from the Hugging Face Hub into the huggingface_hub cache (hub.h), with
// what -hf would run printed at the end (the path goes to stdout, so that `bitnet run -m "$(bitnet pull X)"` works).
#include <bitnet/hub.h>
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.h"

namespace bitnet::cli {

void add_pull_command(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand(
      "pull", "Download a model from the Hugging Face Hub into its cache (HF_HOME; HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE)");
  struct Options {
    std::string spec, revision = "main", token;
    std::vector<std::string> files;
    int parallel = 4;
    bool json = false, no_verify = false;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("model", o->spec,
                  "ORG/NAME, ORG/NAME:FILE or ORG/NAME:QUANT (default: the repository's GGUF file, or its safetensors "
                  "checkpoint with config and tokenizer)")
      ->required();
  cmd->add_option("--revision", o->revision, "Branch, tag or commit hash")->capture_default_str();
  cmd->add_option("--include", o->files, "Fetch exactly these files of the repository instead (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("-j,--parallel", o->parallel, "Files downloaded at once")->check(CLI::Range(1, 32))->capture_default_str();
  cmd->add_option("--hf-token", o->token, "Hugging Face access token (also -hft; default: HF_TOKEN, then $HF_HOME/token)");
  llama_alias(cmd, "-hft", "--hf-token");
  cmd->add_flag("--no-verify", o->no_verify,
                "Trust the files already in the cache (default: their SHA-256 is checked again and a damaged one is "
                "downloaded again)");
  cmd->add_flag("--json", o->json, "Print the result as JSON (repo, revision, commit, snapshot, model, files, bytes)");
  cmd->callback([&selected, o] {
    selected = [o] {
      hub::PullOptions options;
      options.revision = o->revision;
      options.files = o->files;
      options.parallel = o->parallel;
      options.verify_cached = !o->no_verify;
      const hub::PullResult r = pull_with_progress(o->spec, options, hub_config_with(o->token));
      if (o->json) {
        const nlohmann::json j = {{"repo", r.repo},          {"revision", r.revision},
                                  {"commit", r.commit},      {"snapshot", r.snapshot.string()},
                                  {"model", r.model.string()}, {"files", r.files},
                                  {"downloaded_bytes", r.downloaded_bytes}, {"from_cache_only", r.from_cache_only}};
        fmt::print("{}\n", j.dump(2));
      } else {
        fmt::print("{}\n", r.model.string());
      }
      return 0;
    };
  });
}

}  // namespace bitnet::cli
