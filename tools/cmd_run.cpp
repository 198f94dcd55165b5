// `bitnet run`: text generation with llama.cpp's flags (-m -p -f -n -t -c --temp --top-k --top-p --min-p
// --repeat-penalty --presence-penalty --frequency-penalty -s -r --ignore-eos -e -l --grammar -j), tokens streamed
// as they come; `-cnv` for an interactive chat (-sys the system prompt; without -sys, -p is the system prompt, as
// bitnet.cpp's run_inference.py uses it), rendered with the model's Jinja chat template or --chat-template(-file).
#include <bitnet/chat_template.h>
#include <bitnet/cuda.h>
#include <bitnet/engine.h>
#include <bitnet/files.h>
#include <bitnet/generate.h>
#include <bitnet/grammar.h>
#include <bitnet/gguf.h>
#include <bitnet/model.h>
#include <bitnet/open_model.h>
#include <bitnet/sampler.h>
#include <bitnet/thread_pool.h>
#include <bitnet/tokenizer.h>
#include <fmt/format.h>

#include <cctype>
#include <cstdio>
#include <iostream>
#include <limits>
#include <optional>

#include "commands.h"

namespace bitnet::cli {

namespace {

struct RunOptions {
  std::string model;
  HfSource hf;  // -hf: the model from the Hugging Face Hub instead of -m
  std::string prompt;
  std::string prompt_file;
  std::string system_prompt;
  std::string system_prompt_file;
  std::string chat_template;
  std::string chat_template_file;
  std::vector<std::string> reverse_prompts;
  std::string grammar, grammar_file, json_schema, json_schema_file;  // one of them at most
  std::vector<std::string> logit_bias;  // llama.cpp's TOKEN_ID(+/-)BIAS
  int n_predict = 128;
  int threads = 0;
  int ctx = 2048;
  KvCacheTypes kv_cache;  // -ctk / -ctv
  int batch = 512;
  int ubatch = 0;           // llama.cpp's -ub; 0: not given
  bool batch_given = false;
  bool conversation = false;
  bool single_turn = false;
  bool display_prompt = true;
  bool quantize = false;
  bool ignore_eos = false;
  bool escape = true;       // llama.cpp's default: \n \r \t \' \" \\ \xNN in the prompt and -r are processed
  bool verbose = false;
  int64_t keep = -1;  // --keep: >= 0 turns the context shift on (-1 with -cnv: the system prompt is kept)
  bool jinja = true;
  std::string head = "f16", packing = "auto";
  SamplingParams sampling;
  int64_t seed = -1;        // -1: a random seed, printed
  int gpu_layers = -1;      // unset: all layers when --device cuda, else none
  std::string device = "cpu";
};

// llama.cpp's string_process_escapes (common/common.cpp): \n \r \t \' \" \\ and \xNN; any other backslash stays.
std::string process_escapes(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '\\' || i + 1 >= in.size()) {
      out += in[i];
      continue;
    }
    const char c = in[++i];
    switch (c) {
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      default:
        if (c == 'x' && i + 2 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
          out += static_cast<char>(std::stoi(in.substr(i + 1, 2), nullptr, 16));
          i += 2;
        } else {
          out += '\\';
          out += c;
        }
    }
  }
  return out;
}

// llama.cpp's -f and -sysf: the file's text less one trailing newline.
std::string read_prompt_file(const std::string& path) {
  std::string text = read_regular_file(path, uint64_t{1} << 30);
  if (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

// llama.cpp's --logit-bias TOKEN_ID(+/-)BIAS: "15043+1", "15043-1", "15043-inf" (a ban).
std::pair<int32_t, float> parse_logit_bias(const std::string& v) {
  const size_t sign = v.find_first_of("+-", 1);
  int32_t id = -1;
  float bias = 0;
  bool ok = sign != std::string::npos && sign > 0;
  try {
    size_t used = 0;
    if (ok) id = std::stoi(v.substr(0, sign), &used), ok = used == sign && id >= 0;
    if (ok) bias = std::stof(v.substr(sign + 1), &used), ok = used == v.size() - sign - 1;
  } catch (const std::exception&) {
    ok = false;
  }
  BITNET_CHECK(ok, "[run] -l/--logit-bias '{}': expected TOKEN_ID+BIAS or TOKEN_ID-BIAS (e.g. 15043+1, 15043-inf)", v);
  return {id, v[sign] == '-' ? -bias : bias};
}

// The refusals that need no model: flags that only mean something in chat mode, template strings.
void check_options(const RunOptions& o) {
  BITNET_CHECK(o.keep >= -1, "[run] --keep must be >= 0 (or -1: no context shift outside -cnv), got {}", o.keep);
  BITNET_CHECK(o.jinja, "[run] --no-jinja: bitnet renders every chat template with its own Jinja engine; there is no "
                        "other template engine to switch to");
  if (!o.conversation) {
    const char* chat_only = !o.system_prompt.empty() || !o.system_prompt_file.empty() ? "-sys/--system-prompt(-file)"
                            : !o.chat_template.empty() || !o.chat_template_file.empty() ? "--chat-template(-file)"
                            : o.single_turn ? "-st/--single-turn"
                                            : nullptr;
    BITNET_CHECK(chat_only == nullptr, "[run] {} is used in chat mode only: add -cnv", chat_only ? chat_only : "");
  }
  BITNET_CHECK(o.chat_template.empty() || o.chat_template.find("{{") != std::string::npos ||
                   o.chat_template.find("{%") != std::string::npos,
               "[run] --chat-template '{}': not a Jinja template (no {{{{ }}}} or {{% %}}); bitnet takes the template "
               "itself, not one of llama.cpp's built-in template names",
               o.chat_template);
}

void print_timings(const GenerateResult& r) {
  std::fprintf(stderr, "prompt: %d tokens (%d reused) in %.2f s (%.2f t/s); generated: %zu tokens in %.2f s (%.2f t/s), %s\n",
               r.prompt_tokens, r.reused_tokens, r.prompt_seconds,
               r.prompt_seconds > 0 ? r.prompt_tokens / r.prompt_seconds : 0.0, r.tokens.size(), r.generate_seconds,
               r.tokens.empty() ? 0.0 : r.tokens.size() / r.generate_seconds, r.finish_reason.c_str());
}

int run(RunOptions o) {
  check_options(o);
  if (o.threads > 0) set_default_thread_count(o.threads);
  if (!o.prompt_file.empty()) o.prompt = read_prompt_file(o.prompt_file);
  if (!o.system_prompt_file.empty()) o.system_prompt = read_prompt_file(o.system_prompt_file);
  if (!o.chat_template_file.empty()) o.chat_template = read_regular_file(o.chat_template_file, uint64_t{1} << 24);
  if (o.escape) {  // as llama.cpp: the prompt (-p or -f) and the reverse prompts, not the system prompt
    o.prompt = process_escapes(o.prompt);
    for (auto& r : o.reverse_prompts) r = process_escapes(r);
  }
  for (const auto& r : o.reverse_prompts) BITNET_CHECK(!r.empty(), "[run] -r/--reverse-prompt: the text must not be empty");
  for (const auto& b : o.logit_bias) o.sampling.logit_bias.push_back(parse_logit_bias(b));
  std::shared_ptr<const Grammar> grammar;
  if (!o.grammar_file.empty()) o.grammar = read_regular_file(o.grammar_file, uint64_t{1} << 24);
  if (!o.json_schema_file.empty()) o.json_schema = read_regular_file(o.json_schema_file, uint64_t{1} << 24);
  if (!o.grammar.empty()) grammar = Grammar::parse(o.grammar, o.grammar_file.empty() ? "--grammar" : o.grammar_file);
  if (!o.json_schema.empty())
    grammar = Grammar::from_json_schema(o.json_schema, o.json_schema_file.empty() ? "--json-schema" : o.json_schema_file);
  const uint64_t seed = resolve_seed(o.seed);
  o.sampling.seed = seed;
  o.sampling.validate();
  std::fprintf(stderr, "seed: %llu\n", static_cast<unsigned long long>(seed));  // to repeat the run: -s SEED

  o.model = model_from_flags(o.model, o.hf, "run");
  const OpenedModel opened = open_model(
      o.model, load_options_with_progress(parse_head_type(o.head), o.quantize, o.packing, std::make_shared<Progress>("load", "layers")));
  print_load_notes(opened.notes);
  const Model& model = *opened.model;
  const Tokenizer* tok = opened.tokenizer.get();
  const int batch = effective_batch(o.batch, o.batch_given, o.ubatch);
  Engine engine(model, o.ctx, 1, batch, nullptr, o.kv_cache);
  // -ngl N alone means the GPU (as llama.cpp); --device cuda alone means every layer there.
  const bool gpu = o.device == "cuda" || o.gpu_layers > 0;
  if (gpu) cuda::offload(engine, o.gpu_layers);
  if (o.verbose) {
    const auto& c = model.config();
    std::fprintf(stderr,
                 "model: %s (%lld layers, hidden %lld, vocab %lld); context %d, batch %d, threads %d, %s\n"
                 "sampling: temp %.3f, top-k %d, top-p %.3f, min-p %.3f, repeat-penalty %.3f (last %d), "
                 "presence %.3f, frequency %.3f%s\n",
                 model.description.c_str(), static_cast<long long>(c.layers), static_cast<long long>(c.hidden),
                 static_cast<long long>(c.vocab), o.ctx, batch, default_pool().size(), gpu ? "GPU" : "CPU",
                 o.sampling.temperature, o.sampling.top_k, o.sampling.top_p, o.sampling.min_p,
                 o.sampling.repeat_penalty, o.sampling.repeat_last_n, o.sampling.presence_penalty,
                 o.sampling.frequency_penalty, o.ignore_eos ? ", ignoring end of text" : "");
    for (const auto& r : o.reverse_prompts) std::fprintf(stderr, "reverse prompt: '%s'\n", r.c_str());
  }

  auto print = [](std::string_view piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  };
  GenerateOptions g;
  g.max_tokens = o.n_predict;
  g.sampling = o.sampling;
  g.ignore_eos = o.ignore_eos;
  g.grammar = grammar;
  g.stop = o.reverse_prompts;  // -r outside chat: a stop string; in chat: it also hands the turn back to the user
  g.n_keep = o.keep;
  if (!o.conversation) {
    if (o.display_prompt) print(o.prompt);
    const GenerateResult r = generate(engine, *tok, o.prompt, g, print);
    std::fputs("\n\n", stderr);
    print_timings(r);
    return 0;
  }

  // Chat: each turn renders the whole conversation with the template and generates the reply; the part of it
  // already in the KV cache (earlier turns) is not evaluated again. Without -sys, -p is the system prompt
  // (bitnet.cpp's use of llama-cli); with -sys, -p is the first user message (llama.cpp's).
  std::vector<ChatMessage> messages;
  std::string first_user;
  if (!o.system_prompt.empty()) {
    messages.push_back({"system", o.system_prompt});
    first_user = o.prompt;
  } else if (!o.prompt.empty()) {
    messages.push_back({"system", o.prompt});
  }
  const std::string bos = tok->bos_id() >= 0 ? tok->token_to_piece(tok->bos_id()) : "";
  const std::string eos = tok->eos_id() >= 0 ? tok->token_to_piece(tok->eos_id()) : "";
  std::optional<ChatTemplate> tmpl;
  const char* template_source = "the BitNet b1.58 format (the model has no template)";
  if (!o.chat_template.empty()) {
    tmpl.emplace(o.chat_template);
    template_source = o.chat_template_file.empty() ? "--chat-template" : "--chat-template-file";
  } else if (!tok->chat_template().empty()) {
    tmpl.emplace(tok->chat_template());
    template_source = "the model's";
  }
  if (o.verbose) std::fprintf(stderr, "chat template: %s (Jinja)\n", template_source);
  g.add_bos = false;  // the template writes BOS itself when the model wants it
  std::string line;
  std::vector<int32_t> cached;  // the tokens in the engine's cache
  std::fprintf(stderr, "chat with %s; an empty line or end of input quits\n", model.description.c_str());
  while (true) {
    if (!first_user.empty()) {
      line = std::move(first_user);
      first_user.clear();
    } else {
      std::fputs("\n> ", stdout);
      std::fflush(stdout);
      if (!std::getline(std::cin, line) || line.empty()) break;
    }
    messages.push_back({"user", line});
    auto render = [&] { return tmpl ? tmpl->render(messages, {bos, eos, true}) : render_bitnet_chat(messages, bos, true); };
    std::string text = render();
    // A conversation that outgrows the context loses its oldest turns (the system prompt stays), leaving a
    // quarter of the context (at most 512 positions) for the answer; an answer that still fills it is shifted.
    const size_t first_turn = !messages.empty() && messages[0].role == "system" ? 1 : 0;
    const auto room = static_cast<size_t>(std::min<int64_t>(512, engine.context() / 4));
    while (tok->encode(text, false, true).size() + room > static_cast<size_t>(engine.context()) &&
           messages.size() > first_turn + 1) {
      messages.erase(messages.begin() + static_cast<std::ptrdiff_t>(first_turn));
      if (messages.size() > first_turn + 1 && messages[first_turn].role == "assistant")
        messages.erase(messages.begin() + static_cast<std::ptrdiff_t>(first_turn));
      std::fprintf(stderr, "[context full: the oldest turn was dropped]\n");
      text = render();
    }
    if (o.keep < 0) {  // keep the system prompt through a shift inside this answer
      g.n_keep = first_turn ? static_cast<int64_t>(tok->encode(tmpl ? tmpl->render(std::span(messages.data(), 1), {bos, eos, false})
                                                                     : render_bitnet_chat(std::span(messages.data(), 1), bos, false),
                                                                false, true).size())
                            : 0;
      g.n_keep = std::min<int64_t>(g.n_keep, engine.context() / 2);
    }
    if (o.verbose) std::fprintf(stderr, "[prompt]\n%s\n[/prompt]\n", text.c_str());
    // The cache keeps the earlier turns: only the new part of the rendered conversation is evaluated.
    g.cached = &cached;
    const GenerateResult r = generate(engine, *tok, text, g, print);
    if (o.verbose) {
      std::fputs("\n", stderr);
      print_timings(r);
    }
    messages.push_back({"assistant", r.text});
    if (o.single_turn) {
      std::fputs("\n", stdout);
      break;
    }
  }
  return 0;
}

}  // namespace

void add_run_command(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("run", "Generate text from a prompt, or chat (-cnv)");
  auto o = std::make_shared<RunOptions>();
  cmd->add_option("-m,--model", o->model, "GGUF model file or Hugging Face checkpoint directory (or -hf ORG/NAME)");
  cmd->add_flag("--quantize", o->quantize, kQuantizeHelp);
  add_hf_flags(cmd, o->hf);
  auto* prompt = cmd->add_option("-p,--prompt", o->prompt, "Prompt (in chat mode without -sys: the system prompt)");
  cmd->add_option("-f,--file", o->prompt_file, "Read the prompt from this file (one trailing newline dropped)")
      ->excludes(prompt);
  auto* sys = cmd->add_option("--system-prompt", o->system_prompt, "System prompt of the chat (-cnv; also -sys); -p is then the first user message");
  llama_alias(cmd, "-sys", "--system-prompt");
  cmd->add_option("--system-prompt-file", o->system_prompt_file, "Read the system prompt from this file (also -sysf)")
      ->excludes(sys);
  llama_alias(cmd, "-sysf", "--system-prompt-file");
  auto* tmpl = cmd->add_option("--chat-template", o->chat_template, "Jinja chat template to use instead of the model's (-cnv)");
  cmd->add_option("--chat-template-file", o->chat_template_file, "Read the Jinja chat template from this file (-cnv)")
      ->excludes(tmpl);
  cmd->add_flag("--jinja,!--no-jinja", o->jinja,
                "Accepted for llama.cpp compatibility (default: on): chat templates are always rendered with bitnet's "
                "Jinja engine (--no-jinja is refused)");
  cmd->add_option("-r,--reverse-prompt", o->reverse_prompts,
                  "Stop generating at this text (repeatable); in chat mode the turn goes back to the user")
      ->allow_extra_args(false);
  auto* gr = cmd->add_option("--grammar", o->grammar, "GBNF grammar the output must match (llama.cpp's language)");
  auto* grf = cmd->add_option("--grammar-file", o->grammar_file, "Read the GBNF grammar from this file")->excludes(gr);
  auto* js = cmd->add_option("-j,--json-schema", o->json_schema, "JSON Schema the output must match (e.g. {} for any JSON object)")
                 ->excludes(gr)->excludes(grf);
  cmd->add_option("--json-schema-file", o->json_schema_file, "Read the JSON Schema from this file (also -jf)")
      ->excludes(gr)->excludes(grf)->excludes(js);
  llama_alias(cmd, "-jf", "--json-schema-file");
  cmd->add_option("-l,--logit-bias", o->logit_bias, "TOKEN_ID+BIAS or TOKEN_ID-BIAS added to a token's logit (-inf bans it); repeatable")
      ->allow_extra_args(false);
  cmd->add_option("-n,--n-predict,--predict", o->n_predict, "Tokens to generate (-1: until end of text or context)")
      ->check(CLI::Range(-1, 1 << 30));
  cmd->add_flag("--ignore-eos", o->ignore_eos, "Never stop at end of text: generate the whole -n budget");
  cmd->add_flag("-e,--escape,!--no-escape", o->escape,
                "Process escapes (\\n \\r \\t \\' \\\" \\\\ \\xNN) in the prompt and -r (default: on, as llama.cpp; --no-escape turns it off)");
  cmd->add_option("-t,--threads", o->threads, "Threads")->check(CLI::Range(1, 1024));
  cmd->add_option("-c,--ctx-size", o->ctx, "Context size")->check(CLI::Range(1, 1 << 20));
  auto* b = cmd->add_option("-b,--batch-size", o->batch, "Prompt tokens per forward pass")->check(CLI::Range(1, 4096));
  cmd->add_option("--ubatch-size", o->ubatch, "llama.cpp's physical batch (also -ub): the forward pass is min(-b, -ub) tokens (0: -b)")
      ->check(CLI::Range(0, 4096));
  llama_alias(cmd, "-ub", "--ubatch-size");
  // The sampling values are checked by SamplingParams::validate (the same words as the server and Python).
  cmd->add_option("--temp", o->sampling.temperature, "Temperature (0: greedy); -temp also works");
  llama_alias(cmd, "-temp", "--temp");
  cmd->add_option("--top-k", o->sampling.top_k, "Top-k (0: off)");
  cmd->add_option("--top-p", o->sampling.top_p, "Top-p (1: off)");
  cmd->add_option("--min-p", o->sampling.min_p, "Min-p (0: off)");
  cmd->add_option("--repeat-penalty", o->sampling.repeat_penalty, "Repetition penalty (1: off)");
  cmd->add_option("--repeat-last-n", o->sampling.repeat_last_n, "Tokens the penalties look back");
  cmd->add_option("--presence-penalty", o->sampling.presence_penalty, "Presence penalty (0: off)");
  cmd->add_option("--frequency-penalty", o->sampling.frequency_penalty, "Frequency penalty (0: off)");
  cmd->add_option("--typical", o->sampling.typical_p, "Locally typical sampling, p (1: off)");
  cmd->add_option("--mirostat", o->sampling.mirostat, "Mirostat 1 or 2 picks instead of top-k/top-p/min-p (0: off)");
  cmd->add_option("--mirostat-ent", o->sampling.mirostat_tau, "Mirostat's target entropy tau");
  cmd->add_option("--mirostat-lr", o->sampling.mirostat_eta, "Mirostat's learning rate eta");
  cmd->add_option("-s,--seed", o->seed, "Random seed (-1: draw one; the seed used is printed on stderr)")
      ->check(CLI::Range(int64_t{-1}, std::numeric_limits<int64_t>::max()));
  cmd->add_flag("--conversation,!--no-conversation", o->conversation,
                "Interactive chat (also -cnv; -no-cnv turns it off); -p is the system prompt unless -sys gives one");
  llama_alias(cmd, "-cnv", "--conversation");
  llama_alias(cmd, "-no-cnv", "--no-conversation");
  cmd->add_flag("--single-turn", o->single_turn, "Chat for one turn, then exit (also -st)");
  llama_alias(cmd, "-st", "--single-turn");
  cmd->add_flag("!--no-display-prompt", o->display_prompt, "Do not echo the prompt");
  cmd->add_flag("-v,--verbose", o->verbose, "Print the model, sampling settings, chat template and rendered prompts, "
                                           "and timings per chat turn (stderr)");
  cmd->add_option("--keep", o->keep,
                  "Context shift: when the context is full, keep this many first tokens and forget half of the rest "
                  "(as llama.cpp); -1: generation stops at a full context (in -cnv the system prompt is kept and the "
                  "oldest turns are dropped)")->capture_default_str();
  cmd->add_option("--head", o->head, kHeadTypeHelp)->check(CLI::IsMember(head_type_names()));
  add_packing_option(cmd, o->packing);
  cmd->add_option("--n-gpu-layers,--gpu-layers", o->gpu_layers,
                  "Layers on the GPU (also -ngl): 0 or all of them (a split is not supported yet; -1: all with --device cuda)");
  llama_alias(cmd, "-ngl", "--n-gpu-layers");
  add_device_option(cmd, o->device);
  add_gpu_placement_flags(cmd, &o->kv_cache);
  cmd->callback([&selected, o, b] {
    o->batch_given = b->count() > 0;
    selected = [o] { return run(*o); };
  });
}

}  // namespace bitnet::cli
