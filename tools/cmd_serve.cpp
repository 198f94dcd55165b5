// `bitnet serve`: the OpenAI-compatible HTTP server, with llama-server's flags (-m -c -np/--parallel --host
// --port --api-key -t -n) and their LLAMA_ARG_* environment variables (the flag wins over the environment).
#include <bitnet/error.h>
#include <bitnet/files.h>
#include <bitnet/model.h>
#include <bitnet/server.h>

#include <fmt/format.h>

#include "commands.h"

namespace bitnet::cli {

void add_serve_command(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server (chat, completions, SSE streaming, /metrics)");
  auto o = std::make_shared<ServerOptions>();
  // llama-server's flags for things the server does one way (slots on the CPU, continuous batching, f16 KV cache).
  struct Extra {
    int gpu_layers = 0;
    int ubatch = 0;
    std::string device = "cpu";
  };
  auto x = std::make_shared<Extra>();
  struct Files {
    std::string chat_template_file, api_key_file;
    bool context_shift = false;
    int64_t keep = 0;
    double timeout = 0;
    bool jinja = true;
    HfSource hf;  // -hf: the model from the Hugging Face Hub instead of -m
  };
  auto f = std::make_shared<Files>();
  cmd->add_option("-m,--model", o->model, "GGUF model file or Hugging Face checkpoint directory with its tokenizer (or -hf ORG/NAME)")->envname("LLAMA_ARG_MODEL");
  cmd->add_flag("--quantize", o->quantize, kQuantizeHelp);
  cmd->add_option("-a,--alias", o->alias, "Model id in /v1/models and responses (default: the file name)")->envname("LLAMA_ARG_ALIAS");
  cmd->add_option("--host", o->host, "Address to listen on (loopback unless told otherwise)")->capture_default_str()->envname("LLAMA_ARG_HOST");
  cmd->add_option("--port", o->port, "Port (0: any free port)")->check(CLI::Range(0, 65535))->capture_default_str()->envname("LLAMA_ARG_PORT");
  llama_alias(cmd, "-np", "--parallel");
  cmd->add_option("--parallel", o->slots, "Slots (also -np): requests decoded together in one batch")->check(CLI::Range(1, 256))->capture_default_str()->envname("LLAMA_ARG_N_PARALLEL");
  cmd->add_option("-c,--ctx-size", o->context, "Positions per slot (0: the model's training context)")->check(CLI::Range(0, 1 << 20))->capture_default_str()->envname("LLAMA_ARG_CTX_SIZE");
  auto* b = cmd->add_option("-b,--batch-size", o->batch, "Tokens per engine step (decodes + prompt chunks)")->check(CLI::Range(1, 8192))->capture_default_str()->envname("LLAMA_ARG_BATCH");
  cmd->add_option("--ubatch-size", x->ubatch, "llama.cpp's physical batch (also -ub): an engine step is min(-b, -ub) tokens (0: -b)")->check(CLI::Range(0, 8192))->envname("LLAMA_ARG_UBATCH");
  llama_alias(cmd, "-ub", "--ubatch-size");
  cmd->add_option("-t,--threads", o->threads, "Compute threads")->check(CLI::Range(1, 1024))->envname("LLAMA_ARG_THREADS");
  cmd->add_option("-n,--predict", o->max_tokens, "Tokens per request when it does not say, and the most it may ask for")->check(CLI::Range(1, 1 << 20))->capture_default_str()->envname("LLAMA_ARG_N_PREDICT");
  cmd->add_option("--queue", o->max_queue, "Requests that may wait for a slot (more get 503)")->check(CLI::Range(0, 100000))->capture_default_str();
  cmd->add_option("--max-body", o->max_body_bytes, "Largest request body in bytes (more get 413)")->check(CLI::Range(1024, 1 << 30))->capture_default_str();
  cmd->add_option("--threads-http", o->http_threads, "Threads answering requests (0: slots + queue + 8); connections take none")->check(CLI::Range(0, 4096))->envname("LLAMA_ARG_THREADS_HTTP");
  cmd->add_option("--max-connections", o->max_connections, "Open connections at most (more get 503)")->check(CLI::Range(1, 1000000))->capture_default_str();
  cmd->add_option("--max-header", o->max_header_bytes, "Largest request head in bytes (more get 431)")->check(CLI::Range(1024, 1 << 20))->capture_default_str();
  cmd->add_option("--header-timeout", o->header_timeout_seconds, "Seconds a client has to send a request's head (slow clients are dropped)")->check(CLI::Range(0.1, 3600.0))->capture_default_str();
  cmd->add_option("--keep-alive", o->keep_alive_seconds, "Seconds an idle keep-alive connection stays open")->check(CLI::Range(0.1, 3600.0))->capture_default_str();
  cmd->add_option("--write-timeout", o->write_timeout_seconds, "Seconds a client may stop reading an answer before it is dropped")->check(CLI::Range(0.1, 86400.0))->capture_default_str();
  cmd->add_option("--ssl-cert-file", o->ssl_cert_file, "HTTPS: the PEM certificate (chain) file")->envname("LLAMA_ARG_SSL_CERT_FILE");
  cmd->add_option("--ssl-key-file", o->ssl_key_file, "HTTPS: the PEM private key file")->envname("LLAMA_ARG_SSL_KEY_FILE");
  cmd->add_option("--shutdown-grace", o->shutdown_grace_seconds, "Seconds in-flight requests get to finish on SIGTERM")->check(CLI::Range(0.0, 3600.0))->capture_default_str();
  cmd->add_option("--api-key", o->api_key, "Require this key (Authorization: Bearer KEY or X-Api-Key) on every route but /health")->envname("LLAMA_API_KEY");
  cmd->add_option("--api-key-file", f->api_key_file, "Read the API key from this file (its first line), instead of --api-key");
  cmd->add_option("--timeout", f->timeout, "llama-server's read/write timeout in seconds (also -to): sets --header-timeout and --write-timeout")
      ->check(CLI::Range(0.1, 86400.0))->envname("LLAMA_ARG_TIMEOUT");
  llama_alias(cmd, "-to", "--timeout");
  cmd->add_option("--chat-template", o->chat_template, "A Jinja chat template to use instead of the model's (the template itself)")
      ->envname("LLAMA_ARG_CHAT_TEMPLATE");
  cmd->add_option("--chat-template-file", f->chat_template_file, "Read the Jinja chat template from this file")
      ->envname("LLAMA_ARG_CHAT_TEMPLATE_FILE");
  cmd->add_flag("--jinja,!--no-jinja", f->jinja, "llama.cpp compatibility: templates are always rendered with bitnet's Jinja engine (--no-jinja is refused)");
  // Server-side sampling defaults: what a request gets for the fields it leaves out (llama-server's flags).
  cmd->add_option("--temp", o->sampling.temperature, "Default temperature of requests (0: greedy); -temp also works")->capture_default_str();
  llama_alias(cmd, "-temp", "--temp");
  cmd->add_option("--top-k", o->sampling.top_k, "Default top-k (0: off)")->capture_default_str();
  cmd->add_option("--top-p", o->sampling.top_p, "Default top-p (1: off)")->capture_default_str();
  cmd->add_option("--min-p", o->sampling.min_p, "Default min-p (0: off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", o->sampling.repeat_penalty, "Default repetition penalty (1: off)")->capture_default_str();
  cmd->add_option("--repeat-last-n", o->sampling.repeat_last_n, "Default tokens the penalties look back")->capture_default_str();
  cmd->add_option("--presence-penalty", o->sampling.presence_penalty, "Default presence penalty (0: off)")->capture_default_str();
  cmd->add_option("--frequency-penalty", o->sampling.frequency_penalty, "Default frequency penalty (0: off)")->capture_default_str();
  cmd->add_option("--typical", o->sampling.typical_p, "Default typical_p (1: off)")->capture_default_str();
  cmd->add_option("--mirostat", o->sampling.mirostat, "Default mirostat: 0 off, 1 or 2")->capture_default_str();
  cmd->add_option("--mirostat-ent", o->sampling.mirostat_tau, "Default mirostat_tau")->capture_default_str();
  cmd->add_option("--mirostat-lr", o->sampling.mirostat_eta, "Default mirostat_eta")->capture_default_str();
  cmd->add_option("-s,--seed", o->seed, "Default seed of requests (-1: a fresh one per request)")->capture_default_str();
  cmd->add_option("--head", o->head, kHeadTypeHelp)->check(CLI::IsMember(head_type_names()))->capture_default_str();
  add_packing_option(cmd, o->packing);
  // The flag of earlier versions, kept so that scripts using it go on working.
  cmd->add_flag_callback("--int8-head", [o] { o->head = "int8"; }, "Same as --head int8");
  // The server's engine runs on the CPU (ServerOptions has no GPU setting yet): -ngl 0 and --device cpu pass,
  // asking for the GPU is an error naming the flag rather than a server that silently stays on the CPU.
  cmd->add_option("--n-gpu-layers,--gpu-layers", x->gpu_layers, "Layers on the GPU (also -ngl): the server runs on the CPU, so only 0 is accepted")
      ->check(CLI::Range(-1, 1 << 20))->envname("LLAMA_ARG_N_GPU_LAYERS");
  llama_alias(cmd, "-ngl", "--n-gpu-layers");
  add_device_option(cmd, x->device);
  add_gpu_placement_flags(cmd, &o->kv_cache);
  add_hf_flags(cmd, f->hf, true);
  cmd->add_flag("--context-shift,!--no-context-shift", f->context_shift,
                "When a slot's context is full, keep --keep first tokens and forget half of the rest (llama-server's "
                "--context-shift); off: the answer ends with finish_reason length")->envname("LLAMA_ARG_CONTEXT_SHIFT");
  cmd->add_option("--keep", f->keep, "Tokens kept from the start of the prompt through a context shift")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20))->capture_default_str();
  cmd->add_option("--slot-save-path", o->slot_save_path, "Directory of slot files (POST /slots/{id}?action=save|restore)")
      ->check(CLI::ExistingDirectory)->envname("LLAMA_ARG_SLOT_SAVE_PATH");
  cmd->add_flag("--embeddings,--embedding", o->embeddings,
                "Serve /v1/embeddings and /embedding (pooled final hidden states; an engine of their own, beside generation)")
      ->envname("LLAMA_ARG_EMBEDDINGS");
  cmd->add_option("--pooling", o->pooling, "Embedding pooling: none (one vector per token, /embedding only), mean, cls or last")
      ->check(CLI::IsMember({"none", "mean", "cls", "last"}))->capture_default_str()->envname("LLAMA_ARG_POOLING");
  cmd->add_flag("--cont-batching")->description("llama.cpp compatibility: requests are always batched continuously (also -cb)");
  llama_alias(cmd, "-cb", "--cont-batching");
  add_refused_flag(cmd, "--no-cont-batching", "-nocb", "the server always batches continuously (slots join and leave between steps)", false);
  cmd->callback([&selected, o, x, b, f] {
    if (x->gpu_layers != 0 || x->device != "cpu")
      throw CLI::ValidationError(fmt::format(
          "{}: not supported: bitnet serve runs on the CPU (the GPU is for bitnet run and bitnet bench); use -ngl 0",
          x->gpu_layers != 0 ? fmt::format("-ngl/--n-gpu-layers {}", x->gpu_layers) : "--device cuda"));
    o->batch = effective_batch(static_cast<int>(o->batch), b->count() > 0, x->ubatch);
    if (!f->jinja)
      throw CLI::ValidationError("--no-jinja: bitnet renders every chat template with its own Jinja engine; there is no other");
    if (!f->chat_template_file.empty() && !o->chat_template.empty())
      throw CLI::ValidationError("give --chat-template or --chat-template-file, not both");
    if (!f->api_key_file.empty() && !o->api_key.empty()) throw CLI::ValidationError("give --api-key or --api-key-file, not both");
    if (f->timeout > 0) o->header_timeout_seconds = o->write_timeout_seconds = f->timeout;
    o->n_keep = f->context_shift ? f->keep : -1;
    selected = [o, f] {
      o->model = model_from_flags(o->model, f->hf, "serve");
      // A snapshot's file or folder name says little (a commit hash): the model's id is the repository's name.
      if (!f->hf.repo.empty() && o->alias.empty()) o->alias = hub::parse_model_ref(f->hf.repo).repo;
      // Files are read when the command runs, so that a bad path is an error naming it (not a parse failure).
      if (!f->chat_template_file.empty()) o->chat_template = read_regular_file(f->chat_template_file, 1 << 20);
      BITNET_CHECK(o->chat_template.empty() || o->chat_template.find("{{") != std::string::npos ||
                       o->chat_template.find("{%") != std::string::npos,
                   "[serve] --chat-template '{}': not a Jinja template (no {{{{ }}}} or {{% %}}); bitnet takes the "
                   "template itself, not one of llama.cpp's built-in names", o->chat_template);
      if (!f->api_key_file.empty()) {
        std::string key = read_regular_file(f->api_key_file, 1 << 16);
        key = key.substr(0, key.find_first_of("\r\n"));
        BITNET_CHECK(!key.empty(), "[serve] --api-key-file {}: the first line is empty", f->api_key_file);
        o->api_key = key;
      }
      o->sampling.validate();
      return run_server(*o);
    };
  });
}

}  // namespace bitnet::cli
