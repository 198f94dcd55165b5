// llama.cpp's spellings on the `bitnet` command line: the single-dash long flags each subcommand declares
// (-sys, -ngl, -ctk), the flags for choices bitnet makes one way (accepted when they ask for that way, refused
// naming the flag otherwise), and the check of the arguments before CLI11 parses them (unknown flags refused
// with a "did you mean").
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <deque>
#include <map>
#include <random>

#include "commands.h"

namespace bitnet::cli {

namespace {

// subcommand -> (alias -> long name), in declaration order for docs and help.
std::map<std::string, std::vector<std::pair<std::string, std::string>>>& alias_table() {
  static std::map<std::string, std::vector<std::pair<std::string, std::string>>> table;
  return table;
}

// Every single-dash multi-letter flag of llama-cli, llama-completion, llama-server, llama-perplexity and
// llama-bench (common/arg.cpp and tools/llama-bench/llama-bench.cpp), with its long name: a subcommand that does
// not declare one refuses it by name instead of letting CLI11 read "-co" as "-c o".
const std::map<std::string, std::string>& llama_single_dash_flags() {
  static const std::map<std::string, std::string> flags = {
      {"-ag", "--agent"}, {"-bf", "--binary-file"}, {"-bs", "--backend-sampling"}, {"-cb", "--cont-batching"},
      {"-cl", "--cache-list"}, {"-cmoe", "--cpu-moe"}, {"-cms", "--checkpoint-min-step"},
      {"-cnv", "--conversation"}, {"-co", "--color"}, {"-cram", "--cache-ram"}, {"-ctk", "--cache-type-k"},
      {"-ctv", "--cache-type-v"}, {"-ctkd", "--cache-type-k-draft"}, {"-ctvd", "--cache-type-v-draft"},
      {"-ctxcp", "--ctx-checkpoints"}, {"-dev", "--device"}, {"-devd", "--device-draft"}, {"-dio", "--direct-io"},
      {"-dr", "--docker-repo"}, {"-dt", "--defrag-thold"}, {"-embd", "--embeddings"}, {"-fa", "--flash-attn"},
      {"-fit", "--fit"}, {"-fitc", "--fit-ctx"}, {"-fitp", "--fit-print"}, {"-fitt", "--fit-target"},
      {"-gan", "--grp-attn-n"}, {"-gaw", "--grp-attn-w"}, {"-hf", "--hf-repo"}, {"-hfr", "--hf-repo"},
      {"-hfd", "--hf-repo-draft"}, {"-hfrd", "--hf-repo-draft"}, {"-hff", "--hf-file"}, {"-hft", "--hf-token"},
      {"-if", "--interactive-first"}, {"-jf", "--json-schema-file"}, {"-kvo", "--kv-offload"},
      {"-kvu", "--kv-unified"}, {"-lcd", "--lookup-cache-dynamic"}, {"-lcs", "--lookup-cache-static"},
      {"-lm", "--load-mode"}, {"-lv", "--verbosity"}, {"-md", "--model-draft"}, {"-mg", "--main-gpu"},
      {"-mli", "--multiline-input"}, {"-mm", "--mmproj"}, {"-mmp", "--mmap"}, {"-mmu", "--mmproj-url"},
      {"-mu", "--model-url"}, {"-ncmoe", "--n-cpu-moe"}, {"-ndio", "--no-direct-io"}, {"-ngl", "--n-gpu-layers"},
      {"-ngld", "--n-gpu-layers-draft"}, {"-nkvo", "--no-kv-offload"}, {"-no-ag", "--no-agent"},
      {"-no-cnv", "--no-conversation"}, {"-no-kvu", "--no-kv-unified"}, {"-nocb", "--no-cont-batching"},
      {"-nopo", "--no-op-offload"}, {"-np", "--parallel"}, {"-npl", "-npl"}, {"-npp", "-npp"}, {"-nr", "--no-repack"},
      {"-ns", "--sequences"}, {"-ntg", "-ntg"}, {"-oe", "--output-err"}, {"-ot", "--override-tensor"},
      {"-pg", "-pg"}, {"-pps", "-pps"}, {"-ptc", "--print-token-count"}, {"-rea", "--reasoning"},
      {"-rpc", "--rpc"}, {"-sm", "--split-mode"}, {"-sp", "--special"}, {"-sps", "--slot-prompt-similarity"},
      {"-st", "--single-turn"}, {"-sys", "--system-prompt"}, {"-sysf", "--system-prompt-file"},
      {"-tb", "--threads-batch"}, {"-tbd", "--threads-batch-draft"}, {"-td", "--threads-draft"},
      {"-temp", "--temp"}, {"-tgs", "-tgs"}, {"-to", "--timeout"}, {"-ts", "--tensor-split"},
      {"-ub", "--ubatch-size"}, {"-Cb", "--cpu-mask-batch"}, {"-Cr", "--cpu-range"}, {"-Crb", "--cpu-range-batch"},
  };
  return flags;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

bool takes_value(const CLI::Option* opt) { return opt->get_expected_max() > 0; }  // flags expect 0 values

bool is_number(const std::string& s) {
  if (s.empty()) return false;
  size_t i = s[0] == '-' ? 1 : 0;
  bool digit = false;
  for (; i < s.size(); ++i) {
    if (std::isdigit(static_cast<unsigned char>(s[i]))) digit = true;
    else if (s[i] != '.') return false;
  }
  return digit;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

// The flag as the user can write it: "-ctk/--cache-type-k".
std::string spelled(const std::string& alias, const std::string& names) {
  std::string out = alias;
  for (const auto& n : CLI::detail::split(names, ',')) {
    const std::string name = CLI::detail::trim_copy(n);
    out += (out.empty() ? "" : "/") + (name.size() == 1 ? "-" + name : name);
  }
  return out;
}

std::string long_name(const std::string& names) {
  for (const auto& n : CLI::detail::split(names, ','))
    if (CLI::detail::trim_copy(n).rfind("--", 0) == 0) return CLI::detail::trim_copy(n);
  return CLI::detail::trim_copy(names);
}

}  // namespace

void llama_alias(CLI::App* cmd, const std::string& alias, const std::string& long_name) {
  alias_table()[cmd->get_name()].emplace_back(alias, long_name);
}

const std::string* find_llama_alias(const std::string& command, const std::string& arg) {
  const auto it = alias_table().find(command);
  if (it == alias_table().end()) return nullptr;
  for (const auto& [alias, name] : it->second)
    if (alias == arg) return &name;
  return nullptr;
}

const std::vector<std::pair<std::string, std::string>>& llama_aliases(const std::string& command) {
  return alias_table()[command];
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  // A flag written short that a long name begins with: -ctx -> --ctx-size.
  if (word.size() > 2 && word[0] == '-') {
    const std::string stem = "--" + word.substr(word.find_first_not_of('-'));
    for (const auto& c : candidates)
      if (c.rfind(stem, 0) == 0) return c;
  }
  std::string best;
  size_t best_d = std::string::npos;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  // Close enough to be a slip: two edits, or a third of the word for long ones.
  if (best.empty() || best_d > std::max<size_t>(2, word.size() / 3)) return "";
  return best;
}

CLI::Option* add_choice_flag(CLI::App* cmd, const std::string& names, const std::string& alias,
                             std::vector<std::string> accepted, const std::string& reason, bool comma_list) {
  if (!alias.empty()) llama_alias(cmd, alias, long_name(names));
  const std::string flag = spelled(alias, names);
  const std::string help = fmt::format("{}llama.cpp compatibility: {}; accepted: {}",
                                       alias.empty() ? "" : "Also " + alias + ". ", reason, join(accepted, ", "));
  auto* opt = cmd->add_option_function<std::string>(
      names,
      [flag, accepted, reason, comma_list](const std::string& value) {
        const auto items = comma_list ? CLI::detail::split(value, ',') : std::vector<std::string>{value};
        for (const auto& v : items)
          if (std::find(accepted.begin(), accepted.end(), v) == accepted.end())
            throw CLI::ValidationError(fmt::format("{} {}: not supported: {} (accepted: {})", flag, value, reason,
                                                   join(accepted, ", ")));
      },
      help);
  opt->type_name("TEXT")->default_str(accepted.front());  // what bitnet does, which is also llama.cpp's default
  return opt;
}

CLI::Option* add_refused_flag(CLI::App* cmd, const std::string& names, const std::string& alias,
                              const std::string& reason, bool takes_value) {
  if (!alias.empty()) llama_alias(cmd, alias, long_name(names));
  const std::string flag = spelled(alias, names);
  const std::string help = (alias.empty() ? "" : "Also " + alias + ". ") + "llama.cpp compatibility, refused: " + reason;
  if (!takes_value)
    return cmd->add_flag_callback(
        names, [flag, reason] { throw CLI::ValidationError(fmt::format("{}: not supported: {}", flag, reason)); }, help);
  return cmd->add_option_function<std::string>(
      names,
      [flag, reason](const std::string& value) {
        throw CLI::ValidationError(fmt::format("{} {}: not supported: {}", flag, value, reason));
      },
      help);
}

void add_gpu_placement_flags(CLI::App* cmd, KvCacheTypes* kv, bool bench) {
  // One GPU and no multi-GPU split: the choices that describe exactly that are accepted.
  add_choice_flag(cmd, "--split-mode", "-sm", {"none", "layer"},
                  "bitnet uses one GPU (--device cuda), so the model is never split over several", bench);
  add_refused_flag(cmd, "--tensor-split", "-ts", "splitting the model over several GPUs is not supported (one GPU: --device cuda)", true);
  add_choice_flag(cmd, "--main-gpu", "-mg", {"0"}, "bitnet runs on GPU 0", bench);
  // The KV cache's types (engine.h KvCacheType): f16 (the default) or q8_0, each for K and V.
  for (auto [names, alias, target] : {std::tuple{"--cache-type-k", "-ctk", &kv->k}, std::tuple{"--cache-type-v", "-ctv", &kv->v}}) {
    llama_alias(cmd, alias, long_name(names));
    const std::string flag = spelled(alias, names);
    cmd->add_option_function<std::string>(
           names,
           [flag, target, bench](const std::string& value) {
             // llama-bench takes a list (a test dimension); bench here runs one cache type per run.
             if (bench && value.find(',') != std::string::npos)
               throw CLI::ValidationError(fmt::format("{} {}: one cache type per run (run bench once per type)", flag, value));
             try {
               *target = parse_kv_cache_type(value);
             } catch (const Error& e) {  // its message names the accepted types
               throw CLI::ValidationError(fmt::format("{} {}: {}", flag, value, e.what()));
             }
           },
           fmt::format("Also {}. The KV cache's {} type: f16 or q8_0 (8.5 bits per value, about half the memory)",
                       alias, names == std::string("--cache-type-k") ? "key" : "value"))
        ->type_name("TYPE")
        ->default_str("f16");
  }
  // One attention implementation; "auto" (llama.cpp's default) lets it choose, which is what happens.
  add_choice_flag(cmd, "--flash-attn", "-fa", {"auto"},
                  "the engine has one attention kernel (no flash-attention switch); 'auto' (llama.cpp's default) "
                  "leaves it to the engine",
                  bench);
  if (bench) {
    add_choice_flag(cmd, "--no-kv-offload", "-nkvo", {"0"},
                    "the KV cache is on the GPU with the offloaded layers; keeping it on the CPU is not supported", true);
  } else {
    add_refused_flag(cmd, "--no-kv-offload", "-nkvo",
                     "the KV cache is on the GPU with the offloaded layers; keeping it on the CPU is not supported", false);
    cmd->add_flag("--kv-offload")->description("llama.cpp compatibility: the KV cache goes with the offloaded layers (always; -kvo)");
    llama_alias(cmd, "-kvo", "--kv-offload");
  }
  add_refused_flag(cmd, "--threads-batch", "-tb", "one thread count serves prompt and generation: use -t", true);
}

int effective_batch(int batch, bool batch_given, int ubatch) {
  if (ubatch <= 0) return batch;
  return batch_given ? std::min(batch, ubatch) : ubatch;  // llama.cpp: n_ubatch = min(n_batch, n_ubatch)
}

std::string normalize_device(const std::string& device) {
  if (device == "none" || device == "cpu" || device == "CPU") return "cpu";
  if (device == "cuda" || device == "CUDA0" || device == "cuda0") return "cuda";
  throw CLI::ValidationError(fmt::format(
      "-dev/--device {}: not supported: bitnet runs on cpu (llama.cpp: none) or cuda (GPU 0; llama.cpp: CUDA0)",
      device));
}

CLI::Option* add_device_option(CLI::App* cmd, std::string& device) {
  llama_alias(cmd, "-dev", "--device");
  return cmd
      ->add_option_function<std::string>(
          "--device", [&device](const std::string& v) { device = normalize_device(v); },
          "Where to run: cpu or cuda (GPU 0); also -dev, with llama.cpp's names none (cpu) and CUDA0 (cuda)")
      ->type_name("cpu|cuda")
      ->default_str(device);
}

uint64_t resolve_seed(int64_t seed) {
  // llama.cpp's LLAMA_DEFAULT_SEED (0xFFFFFFFF, what -1 becomes there) also means "draw one".
  if (seed != -1 && seed != 0xFFFFFFFFll) return static_cast<uint64_t>(seed);
  std::random_device rd;
  uint64_t s = rd();
  while (s == 0xFFFFFFFFull) s = rd();
  return s;
}

std::string prepare_args(CLI::App& app, std::vector<std::string>& args) {
  if (args.size() < 2 || args[1].empty() || args[1][0] == '-') return "";
  std::vector<std::string> names;
  CLI::App* sub = nullptr;
  for (CLI::App* s : app.get_subcommands([](CLI::App*) { return true; })) {
    names.push_back(s->get_name());
    if (s->get_name() == args[1]) sub = s;
  }
  if (sub == nullptr) {
    const std::string near = did_you_mean(args[1], names);
    return fmt::format("bitnet: unknown command '{}'{} (commands: {}; bitnet --help)", args[1],
                       near.empty() ? "" : fmt::format("; did you mean '{}'?", near), join(names, ", "));
  }
  const std::string& command = args[1];
  // What a flag can be spelled as in this subcommand, for suggestions.
  std::vector<std::string> spellings;
  for (const CLI::Option* opt : sub->get_options()) {
    for (const auto& l : opt->get_lnames()) spellings.push_back("--" + l);
    for (const auto& s : opt->get_snames()) spellings.push_back("-" + s);
  }
  for (const auto& [alias, name] : llama_aliases(command)) spellings.push_back(alias);
  auto unknown = [&](const std::string& flag, const std::string& extra) {
    const std::string near = did_you_mean(flag, spellings);
    return fmt::format("bitnet {}: unknown flag '{}'{}{} (bitnet {} --help lists the flags)", command, flag, extra,
                       near.empty() ? "" : fmt::format("; did you mean '{}'?", near), command);
  };
  bool value_next = false;  // the previous option takes this argument as its value (as CLI11 and llama.cpp do)
  for (size_t i = 2; i < args.size(); ++i) {
    std::string& a = args[i];
    if (a == "--") break;
    if (value_next) {
      value_next = false;
      continue;
    }
    if (a.size() < 2 || a[0] != '-' || is_number(a)) continue;
    if (const std::string* name = find_llama_alias(command, a)) a = *name;
    if (a.rfind("--", 0) == 0) {
      const std::string name = a.substr(0, a.find('='));
      const CLI::Option* opt = sub->get_option_no_throw(name);
      if (opt == nullptr) return unknown(name, "");
      value_next = takes_value(opt) && a.find('=') == std::string::npos;
      continue;
    }
    const CLI::Option* opt = sub->get_option_no_throw(a.substr(0, 2));
    if (a.size() == 2) {
      if (opt == nullptr) return unknown(a, "");
      value_next = takes_value(opt);
      continue;
    }
    // A single dash and several letters that are not a declared alias.
    const auto llama = llama_single_dash_flags().find(a);
    if (llama != llama_single_dash_flags().end())
      return fmt::format("bitnet {}: llama.cpp's {}{} is not supported by this command (bitnet {} --help lists the "
                         "flags)",
                         command, a, llama->second == a ? "" : " (" + llama->second + ")", command);
    // CLI11's short forms: a value stuck to its option (-n128, -t4) or several flags together (-qv).
    if (opt != nullptr && takes_value(opt) && is_number(a.substr(2))) continue;
    const bool all_flags = std::all_of(a.begin() + 1, a.end(), [&](char c) {
      const CLI::Option* f = sub->get_option_no_throw(std::string("-") + c);
      return f != nullptr && !takes_value(f);
    });
    if (all_flags) continue;
    return unknown(a, opt != nullptr && takes_value(opt) && did_you_mean(a, spellings).empty()
                          ? fmt::format(" (for {} with the value '{}', write '{} {}')", a.substr(0, 2), a.substr(2),
                                        a.substr(0, 2), a.substr(2))
                          : "");
  }
  return "";
}

}  // namespace bitnet::cli
