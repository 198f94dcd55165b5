// `bitnet serve`: the OpenAI-compatible HTTP server, with llama-server's flags (-m -c -np/--parallel --host
// --port --api-key -t -n) and their LLAMA_ARG_* environment variables (the flag wins over the environment).
#include <bitnet/model.h>
#include <bitnet/server.h>

#include "commands.h"

namespace bitnet::cli {

void add_serve_command(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server (chat, completions, SSE streaming, /metrics)");
  auto o = std::make_shared<ServerOptions>();
  cmd->add_option("-m,--model", o->model, "GGUF model file or Hugging Face checkpoint directory (with its tokenizer)")->required()->envname("LLAMA_ARG_MODEL");
  cmd->add_flag("--quantize", o->quantize, kQuantizeHelp);
  cmd->add_option("--alias", o->alias, "Model id in /v1/models and responses (default: the file name)")->envname("LLAMA_ARG_ALIAS");
  cmd->add_option("--host", o->host, "Address to listen on (loopback unless told otherwise)")->capture_default_str()->envname("LLAMA_ARG_HOST");
  cmd->add_option("--port", o->port, "Port (0: any free port)")->check(CLI::Range(0, 65535))->capture_default_str()->envname("LLAMA_ARG_PORT");
  cmd->add_option("--parallel", o->slots, "Slots (also -np): requests decoded together in one batch")->check(CLI::Range(1, 256))->capture_default_str()->envname("LLAMA_ARG_N_PARALLEL");
  cmd->add_option("-c,--ctx-size", o->context, "Positions per slot (0: the model's training context)")->check(CLI::Range(0, 1 << 20))->capture_default_str()->envname("LLAMA_ARG_CTX_SIZE");
  cmd->add_option("-b,--batch-size", o->batch, "Tokens per engine step (decodes + prompt chunks)")->check(CLI::Range(1, 8192))->capture_default_str()->envname("LLAMA_ARG_BATCH");
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
  cmd->add_option("--head", o->head, kHeadTypeHelp)->check(CLI::IsMember(head_type_names()))->capture_default_str();
  // The flag of earlier versions, kept so that scripts using it go on working.
  cmd->add_flag_callback("--int8-head", [o] { o->head = "int8"; }, "Same as --head int8");
  cmd->callback([&selected, o] { selected = [o] { return run_server(*o); }; });
}

}  // namespace bitnet::cli
