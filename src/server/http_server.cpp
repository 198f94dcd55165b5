// `bitnet serve`: routes, API key, CORS, error bodies, loading and graceful shutdown (see include/bitnet/server.h).
#include <bitnet/error.h>
#include <bitnet/gguf.h>
#include <bitnet/open_model.h>
#include <bitnet/server.h>
#include <bitnet/thread_pool.h>
#include <httplib.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "server/api_error.h"
#include "server/generation_handler.h"
#include "server/openai_request.h"
#include "server/server_state.h"

namespace bitnet {

namespace server {

using nlohmann::json;

std::string ServerState::render_chat(const std::vector<ChatMessage>& messages) const {
  if (chat_template) return chat_template->render(messages, {bos, eos, true});
  return render_bitnet_chat(messages, bos, true);
}

namespace {

void reply_error(httplib::Response& res, int status, const std::string& type, const std::string& message) {
  res.status = status;
  res.set_content(dump_json(error_body(status, type, message)), "application/json");
}

void reply_json(httplib::Response& res, const json& body) { res.set_content(dump_json(body), "application/json"); }

// Constant-time comparison, so the key cannot be guessed byte by byte from response times.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
  return diff == 0 && !b.empty();
}

bool authorized(const httplib::Request& req, const std::string& key) {
  const std::string bearer = req.get_header_value("Authorization");
  if (bearer.rfind("Bearer ", 0) == 0 && same_secret(bearer.substr(7), key)) return true;
  return req.has_header("X-Api-Key") && same_secret(req.get_header_value("X-Api-Key"), key);
}

std::string status_error_type(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 503: return "unavailable_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

// The process-wide pieces of serving: the HTTP server, the state once loaded, and the shutdown flag.
class HttpServer {
 public:
  explicit HttpServer(const ServerOptions& o) : opt_(o) {}
  int run();

 private:
  void routes();
  template <class Fn>
  httplib::Server::Handler guarded(Fn fn);
  void load();
  void watch_signals();

  ServerOptions opt_;
  httplib::Server http_;
  HttpCounters counters_;
  std::unique_ptr<ServerState> state_;
  std::atomic<ServerState*> ready_{nullptr};  // set once the model is loaded
  std::atomic<bool> shutting_down_{false};
  std::atomic<bool> finished_{false};
};

// Runs a route; what it throws becomes an OpenAI error body. bitnet::Error comes from checking user input
// (tokenizer, template, sampling values), so it is the client's 400.
template <class Fn>
httplib::Server::Handler HttpServer::guarded(Fn fn) {
  return [this, fn](const httplib::Request& req, httplib::Response& res) {
    try {
      ServerState* st = ready_.load();
      if (!st) throw ApiError(503, "unavailable_error", "the model is loading");
      fn(*st, req, res);
    } catch (const ApiError& e) {
      reply_error(res, e.status(), e.type(), e.what());
    } catch (const Error& e) {
      reply_error(res, 400, "invalid_request_error", e.what());
    } catch (const std::exception& e) {
      reply_error(res, 500, "server_error", e.what());
    }
  };
}

void HttpServer::routes() {
  http_.set_payload_max_length(opt_.max_body_bytes);
  http_.set_default_headers({{"Access-Control-Allow-Origin", "*"}});
  const int threads = opt_.http_threads > 0 ? opt_.http_threads : opt_.slots + opt_.max_queue + 8;
  http_.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };

  // Auth and shutdown before any route: /health stays public, CORS preflights carry no credentials.
  http_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (req.method == "OPTIONS" || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
    if (!opt_.api_key.empty() && !authorized(req, opt_.api_key)) {
      reply_error(res, 401, "authentication_error", "invalid or missing API key (Authorization: Bearer KEY, or X-Api-Key)");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (shutting_down_.load()) {
      reply_error(res, 503, "unavailable_error", "the server is shutting down");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // Bodies for statuses cpp-httplib sets itself (404 no route, 413 body too large, 400 bad request line).
  http_.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message = "no route " + req.method + " " + req.path;
    if (res.status == 413) {
      // cpp-httplib caps form-encoded bodies (curl -d's default type) at 8 KiB, whatever the server's limit.
      const bool form = req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0;
      message = form ? "form-encoded request bodies are limited to 8192 bytes: send Content-Type: application/json"
                     : fmt::format("the request body is larger than {} bytes", opt_.max_body_bytes);
    }
    else if (res.status != 404) message = fmt::format("the request was refused (HTTP {})", res.status);
    reply_error(res, res.status, status_error_type(res.status), message);
  });
  http_.set_logger([this](const httplib::Request&, const httplib::Response& res) {
    counters_.requests.fetch_add(1);
    if (res.status >= 500) counters_.server_errors.fetch_add(1);
    else if (res.status >= 400) counters_.client_errors.fetch_add(1);
  });
  http_.Options(".*", [](const httplib::Request&, httplib::Response& res) {
    res.status = 204;
    res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Api-Key");
    res.set_header("Access-Control-Max-Age", "86400");
  });

  http_.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    if (shutting_down_.load()) {
      res.status = 503;
      reply_json(res, {{"status", "shutting down"}});
    } else if (!ready_.load()) {
      res.status = 503;
      reply_json(res, {{"status", "loading model"}});
    } else {
      reply_json(res, {{"status", "ok"}});
    }
  });
  http_.Get("/metrics", guarded([this](ServerState& st, const httplib::Request&, httplib::Response& res) {
    res.set_content(prometheus_text(*st.scheduler, counters_), "text/plain; version=0.0.4");
  }));
  http_.Get("/v1/models", guarded([](ServerState& st, const httplib::Request&, httplib::Response& res) {
    const TransformerConfig& c = st.model->config();
    reply_json(res, {{"object", "list"},
                     {"data", json::array({{{"id", st.model_id},
                                            {"object", "model"},
                                            {"created", st.created},
                                            {"owned_by", "bitnet"},
                                            {"meta", {{"n_vocab", c.vocab},
                                                      {"n_ctx_train", c.context},
                                                      {"n_ctx", st.scheduler->options().context},
                                                      {"slots", st.scheduler->options().slots}}}}})}});
  }));
  http_.Get("/props", guarded([](ServerState& st, const httplib::Request&, httplib::Response& res) {
    reply_json(res, {{"model_path", st.options.model},
                     {"total_slots", st.scheduler->options().slots},
                     {"n_ctx", st.scheduler->options().context},
                     {"max_tokens", st.options.max_tokens},
                     {"chat_template", st.tokenizer->chat_template()},
                     {"bos_token", st.bos},
                     {"eos_token", st.eos}});
  }));
  http_.Post("/v1/chat/completions", guarded([this](ServerState& st, const httplib::Request& req, httplib::Response& res) {
    handle_generation(st, counters_, req, res, /*chat=*/true);
  }));
  http_.Post("/v1/completions", guarded([this](ServerState& st, const httplib::Request& req, httplib::Response& res) {
    handle_generation(st, counters_, req, res, /*chat=*/false);
  }));
  http_.Post("/tokenize", guarded([](ServerState& st, const httplib::Request& req, httplib::Response& res) {
    const TokenizeRequest t = parse_tokenize_request(parse_json_body(req.body));
    const std::vector<int32_t> ids = st.tokenizer->encode(t.content, t.add_special && st.tokenizer->bos_id() >= 0, t.parse_special);
    json tokens = json::array();
    for (const int32_t id : ids) {
      if (t.with_pieces) tokens.push_back({{"id", id}, {"piece", utf8_sanitize(st.tokenizer->token_to_piece(id))}});
      else tokens.push_back(id);
    }
    reply_json(res, {{"tokens", tokens}});
  }));
  http_.Post("/detokenize", guarded([](ServerState& st, const httplib::Request& req, httplib::Response& res) {
    const std::vector<int32_t> ids = parse_detokenize_request(parse_json_body(req.body), st.tokenizer->vocab_size());
    reply_json(res, {{"content", utf8_sanitize(st.tokenizer->decode(ids, /*skip_special=*/false))}});
  }));
}

void HttpServer::load() {
  auto st = std::make_unique<ServerState>();
  st->options = opt_;
  st->model_id = opt_.alias.empty() ? std::filesystem::path(opt_.model).filename().string() : opt_.alias;
  OpenedModel opened = open_model(opt_.model, LoadOptions{parse_head_type(opt_.head), opt_.quantize});
  for (const auto& n : opened.notes) std::fprintf(stderr, "note: %s\n", n.c_str());
  st->model = std::move(opened.model);
  st->tokenizer = std::move(opened.tokenizer);
  const TransformerConfig& c = st->model->config();
  if (!st->tokenizer->chat_template().empty()) st->chat_template.emplace(st->tokenizer->chat_template());
  const Tokenizer& tok = *st->tokenizer;
  st->bos = tok.bos_id() >= 0 ? tok.token_to_piece(tok.bos_id()) : "";
  st->eos = tok.eos_id() >= 0 ? tok.token_to_piece(tok.eos_id()) : "";
  const int64_t ctx = opt_.context > 0 ? opt_.context : c.context;
  BITNET_CHECK(ctx > 1, "[serve] the context must hold at least 2 positions, got {}", ctx);
  st->scheduler = std::make_unique<Scheduler>(*st->model, tok,
                                              SchedulerOptions{opt_.slots, ctx, opt_.batch, opt_.max_queue});
  st->created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::fprintf(stderr, "bitnet serve: %s (%s), %d slots x %lld positions, batch %lld, max_tokens %d\n",
               st->model_id.c_str(), tok.describe().c_str(), opt_.slots, static_cast<long long>(ctx),
               static_cast<long long>(opt_.batch), opt_.max_tokens);
  state_ = std::move(st);
  ready_.store(state_.get());
}

// The last SIGTERM / SIGINT number (0: none). A handler may only touch a lock-free atomic; the watcher polls it,
// whichever thread (engine workers included) the signal was delivered to.
std::atomic<int> g_signal{0};
static_assert(std::atomic<int>::is_always_lock_free);
extern "C" void on_stop_signal(int sig) { g_signal.store(sig); }

// SIGTERM / SIGINT: refuse new requests, let those in flight finish within the grace period (a second signal
// cuts it short), tell the rest why they end, then stop the listener.
void HttpServer::watch_signals() {
  const auto tick = std::chrono::milliseconds(100);
  while (!finished_.load()) {
    const int sig = g_signal.exchange(0);
    if (sig == 0) {
      std::this_thread::sleep_for(tick);
      continue;
    }
    shutting_down_.store(true);
    if (ServerState* st = ready_.load()) {
      st->scheduler->close();
      std::fprintf(stderr, "bitnet serve: %s: finishing the requests in flight (up to %.0f s)\n", strsignal(sig),
                   opt_.shutdown_grace_seconds);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(opt_.shutdown_grace_seconds);
      while (!st->scheduler->wait_idle(tick)) {
        if (std::chrono::steady_clock::now() >= deadline || g_signal.exchange(0) != 0) {
          std::fprintf(stderr, "bitnet serve: ending the requests still in flight\n");
          st->scheduler->fail_all("the server is shutting down");
          break;
        }
      }
    }
    std::fprintf(stderr, "bitnet serve: stopping\n");
    http_.stop();
    return;
  }
}

int HttpServer::run() {
  routes();
  // Stop signals start a graceful shutdown; a write to a closed connection must fail with EPIPE, not end the
  // process.
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  int port = opt_.port;
  if (port == 0) {
    port = http_.bind_to_any_port(opt_.host);
    BITNET_CHECK(port > 0, "[serve] cannot listen on {} (any port)", opt_.host);
  } else {
    BITNET_CHECK(http_.bind_to_port(opt_.host, port), "[serve] cannot listen on {}:{} (in use, or not an address of this host?)",
                 opt_.host, port);
  }
  std::thread listener([this] { http_.listen_after_bind(); });
  // stop() only reaches a listener that is running: wait for it before anything may call stop().
  for (int i = 0; i < 5000 && !http_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::fprintf(stderr, "bitnet serve: listening on http://%s:%d (loading the model)\n", opt_.host.c_str(), port);
  std::thread signals([this] { watch_signals(); });
  try {
    load();
  } catch (...) {
    finished_.store(true);
    http_.stop();
    listener.join();
    signals.join();
    throw;
  }
  std::fprintf(stderr, "bitnet serve: ready on http://%s:%d\n", opt_.host.c_str(), port);
  listener.join();
  finished_.store(true);
  signals.join();
  return 0;
}

}  // namespace
}  // namespace server

int run_server(const ServerOptions& options) {
  BITNET_CHECK(options.slots >= 1 && options.slots <= 256, "[serve] -np must be in 1..256, got {}", options.slots);
  BITNET_CHECK(options.max_tokens >= 1, "[serve] -n must be >= 1, got {}", options.max_tokens);
  BITNET_CHECK(options.port >= 0 && options.port <= 65535, "[serve] --port must be in 0..65535, got {}", options.port);
  if (options.threads > 0) set_default_thread_count(options.threads);
  server::HttpServer server(options);
  return server.run();
}

}  // namespace bitnet
