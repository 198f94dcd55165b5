#pragma once
// The OpenAI-compatible HTTP server behind `bitnet serve`: /v1/chat/completions, /v1/completions (JSON or
// Server-Sent Events), /v1/embeddings and /embedding (with --embeddings), /v1/models, /health, /metrics
// (Prometheus), /tokenize, /detokenize; N slots decoded
// together by one engine (continuous batching), a bounded wait queue, an optional API key.
#include <bitnet/engine.h>
#include <bitnet/sampler.h>

#include <cstdint>
#include <string>

namespace bitnet {

struct ServerOptions {
  std::string model;                 // GGUF file or Hugging Face checkpoint directory (open_model.h)
  std::string alias;                 // model id in /v1/models and responses; default: the file name
  std::string host = "127.0.0.1";    // loopback unless told otherwise
  int port = 8080;                   // 0: any free port (printed on start)
  int slots = 1;                     // -np: sequences decoded together
  int64_t context = 2048;            // -c: positions per slot (0: the model's training context)
  int64_t batch = 512;               // tokens per engine step (decodes plus prompt chunks)
  int threads = 0;                   // compute threads (0: the default)
  int max_tokens = 1024;             // -n: tokens per request when it does not ask, and the most it may ask for
  int max_queue = 64;                // requests that may wait for a slot; more get 503
  size_t max_body_bytes = 1 << 20;   // larger request bodies get 413 (Content-Length or chunked)
  size_t max_header_bytes = 16 << 10;  // a larger request line + headers gets 431
  size_t max_connections = 4096;     // more open connections are answered 503 and closed
  double header_timeout_seconds = 10;  // the whole request head must arrive within this (slow clients end)
  double keep_alive_seconds = 5;     // an idle keep-alive connection is closed after this
  double write_timeout_seconds = 60; // a client that stops reading an answer for this long is dropped
  std::string ssl_cert_file, ssl_key_file;  // both: HTTPS (PEM files), as llama-server's --ssl-*-file
  int http_threads = 0;              // threads for requests being answered (0: slots + queue + 8); connections
                                     // themselves take no thread
  double shutdown_grace_seconds = 10;  // on SIGTERM: how long in-flight requests may take to finish
  std::string api_key;               // when set: required on every route but /health
  std::string head = "f16";        // --head: the output head (f16, int8 or int4; see HeadType)
  std::string packing = "auto";    // --packing: the ternary weights' layout (auto, 2bit or base3; see LoadOptions)
  KvCacheTypes kv_cache;             // -ctk / -ctv: the KV cache's types (f16 or q8_0)
  bool quantize = false;             // --quantize: ternarize a full-precision HF checkpoint (LoadOptions)
  SamplingParams sampling;           // defaults of the sampling fields a request leaves out (--temp, --top-k ...)
  int64_t seed = -1;                 // --seed: the default seed of requests (-1: a fresh one per request)
  std::string chat_template;         // --chat-template(-file): a Jinja template used instead of the model's
  int64_t n_keep = -1;               // --context-shift (--keep N): a full slot keeps N first tokens and forgets half
                                     // of the rest instead of ending the answer with "length"; -1: off
  std::string slot_save_path;        // --slot-save-path: where /slots/{id}?action=save|restore keep slot files
  bool embeddings = false;           // --embeddings: serve /v1/embeddings and /embedding (an engine of their own)
  std::string pooling = "mean";      // --pooling: none, mean, cls or last (embedding.h)
};

// Loads the model, serves until SIGTERM or SIGINT, then shuts down gracefully: new requests get 503, those in
// flight may finish within the grace period, the rest are told the server is shutting down. Returns the exit
// status. Throws bitnet::Error when the model cannot be loaded or the address cannot be bound.
int run_server(const ServerOptions& options);

}  // namespace bitnet
