// `bitnet serve`: routes, API key, CORS, error bodies, loading and graceful shutdown (see include/bitnet/server.h).
#include <bitnet/error.h>
#include <bitnet/gguf.h>
#include <bitnet/open_model.h>
#include <bitnet/server.h>
#include <bitnet/thread_pool.h>

#include <cctype>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <set>
#include <thread>

#include "server/api_error.h"
#include "server/embedding_handler.h"
#include "server/generation_handler.h"
#include "server/http_transport.h"
#include "server/openai_request.h"
#include "server/server_state.h"
#include "server/slots_handler.h"

namespace bitnet {

namespace server {

using nlohmann::json;
using nlohmann::ordered_json;

std::string ServerState::render_chat(const std::vector<ChatMessage>& messages, const ToolRequest* tools) const {
  const bool with_tools = tools != nullptr && tools->active();
  if (chat_template && (!with_tools || chat_template->renders_tools())) {
    ChatTemplateOptions o{bos, eos, true, with_tools ? tools->tools_json : std::string()};
    return chat_template->render(messages, o);
  }
  if (!with_tools) return render_bitnet_chat(messages, bos, true);
  std::vector<ChatMessage> m;
  for (const ChatMessage& msg : messages) {
    ChatMessage plain{msg.role, msg.content};
    if (!msg.tool_calls_json.empty()) {  // the calls as the model was asked to write them
      nlohmann::json calls = nlohmann::json::array();
      for (const auto& c : nlohmann::json::parse(msg.tool_calls_json)) {
        nlohmann::json args = c["function"].value("arguments", nlohmann::json::object());
        if (args.is_string()) args = nlohmann::json::parse(args.get<std::string>(), nullptr, false);
        calls.push_back({{"name", c["function"]["name"]}, {"arguments", args}});
      }
      plain.content += (plain.content.empty() ? "" : "\n") + (calls.size() == 1 ? calls[0] : calls).dump();
    }
    if (msg.role == "tool") {
      plain.role = "user";
      plain.content = "Result of " + (msg.name.empty() ? "the call " + msg.tool_call_id : msg.name) + ": " + msg.content;
    }
    m.push_back(std::move(plain));
  }
  const std::string about = tools_system_prompt(*tools);
  if (!m.empty() && m[0].role == "system") m[0].content += "\n\n" + about;
  else m.insert(m.begin(), ChatMessage{"system", about});
  if (chat_template) return chat_template->render(m, {bos, eos, true});
  return render_bitnet_chat(m, bos, true);
}

namespace {

void reply_error(HttpResponse& res, int status, const std::string& type, const std::string& message) {
  res.status = status;
  res.set_content(dump_json(error_body(status, type, message)), "application/json");
}

void reply_json(HttpResponse& res, const json& body) { res.set_content(dump_json(body), "application/json"); }

// Constant-time comparison, so the key cannot be guessed byte by byte from response times.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
  return diff == 0 && !b.empty();
}

// "Authorization: Bearer KEY" (the scheme is case-insensitive, RFC 9110 11.1) or "X-Api-Key: KEY".
bool authorized(const HttpRequest& req, const std::string& key) {
  const std::string auth = req.header("Authorization");
  const size_t space = auth.find(' ');
  if (space == 6) {
    std::string scheme = auth.substr(0, 6);
    for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    size_t start = space;
    while (start < auth.size() && auth[start] == ' ') ++start;
    if (scheme == "bearer" && same_secret(auth.substr(start), key)) return true;
  }
  return req.has_header("X-Api-Key") && same_secret(req.header("X-Api-Key"), key);
}

// The process-wide pieces of serving: the transport, the state once loaded, and the shutdown flag.
class HttpServer {
 public:
  explicit HttpServer(const ServerOptions& o) : opt_(o) {}
  int run();

 private:
  Route route(const HttpRequest& req);
  void dispatch(const HttpRequest& req, HttpResponse& res);
  template <class Fn>
  void guarded(const HttpRequest& req, HttpResponse& res, Fn fn);
  void load();
  void watch_signals();

  ServerOptions opt_;
  std::unique_ptr<HttpTransport> transport_;
  HttpCounters counters_;
  std::unique_ptr<ServerState> state_;
  std::atomic<ServerState*> ready_{nullptr};  // set once the model is loaded
  std::atomic<bool> shutting_down_{false};
  std::atomic<bool> finished_{false};
};

// Runs a route; what it throws becomes an OpenAI error body. bitnet::Error comes from checking user input
// (tokenizer, template, sampling values), so it is the client's 400.
template <class Fn>
void HttpServer::guarded(const HttpRequest& req, HttpResponse& res, Fn fn) {
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
}

// Generation waits for tokens: it runs on the transport's handler threads; everything else is quick.
Route HttpServer::route(const HttpRequest& req) {
  // Everything that waits for the engine: generation, embeddings, slot files.
  static const std::set<std::string, std::less<>> slow = {
      "/v1/chat/completions", "/v1/completions", "/chat/completions", "/completions", "/completion", "/infill",
      "/v1/embeddings", "/embeddings", "/embedding", "/slots"};
  const bool generation = (req.method == "POST" && slow.count(req.path)) || req.path.rfind("/slots", 0) == 0;
  return Route{[this](const HttpRequest& r, HttpResponse& res) {
                 dispatch(r, res);
                 res.set_header("Access-Control-Allow-Origin", "*");
                 counters_.requests.fetch_add(1);
                 if (res.status >= 500) counters_.server_errors.fetch_add(1);
                 else if (res.status >= 400) counters_.client_errors.fetch_add(1);
               },
               generation};
}

void HttpServer::dispatch(const HttpRequest& req, HttpResponse& res) {
  const std::string& m = req.method;
  const std::string& p = req.path;
  // CORS preflights carry no credentials; /health stays public.
  if (m == "OPTIONS") {
    res.status = 204;
    res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Api-Key");
    res.set_header("Access-Control-Max-Age", "86400");
    return;
  }
  if (p == "/health" && (m == "GET" || m == "HEAD")) {
    if (shutting_down_.load()) {
      res.status = 503;
      reply_json(res, {{"status", "shutting down"}});
    } else if (!ready_.load()) {
      res.status = 503;
      reply_json(res, {{"status", "loading model"}});
    } else {
      reply_json(res, {{"status", "ok"}});
    }
    return;
  }
  if (!opt_.api_key.empty() && !authorized(req, opt_.api_key))
    return reply_error(res, 401, "authentication_error", "invalid or missing API key (Authorization: Bearer KEY, or X-Api-Key)");
  if (shutting_down_.load()) return reply_error(res, 503, "unavailable_error", "the server is shutting down");
  using Handler = void (*)(HttpServer&, ServerState&, const HttpRequest&, HttpResponse&);
  struct Entry {
    const char* method;
    const char* path;
    Handler handler;
  };
  static const Entry kRoutes[] = {
      {"GET", "/metrics", [](HttpServer& s, ServerState& st, const HttpRequest&, HttpResponse& res) {
         s.counters_.open_connections.store(s.transport_->open_connections());
         s.counters_.refused_connections.store(s.transport_->connections_refused());
         s.counters_.timed_out_requests.store(s.transport_->requests_timed_out());
         res.set_content(prometheus_text(*st.scheduler, s.counters_), "text/plain; version=0.0.4");
       }},
      {"GET", "/v1/models", [](HttpServer&, ServerState& st, const HttpRequest&, HttpResponse& res) {
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
       }},
      {"GET", "/props", [](HttpServer&, ServerState& st, const HttpRequest&, HttpResponse& res) {
         reply_json(res, {{"model_path", st.options.model},
                          {"total_slots", st.scheduler->options().slots},
                          {"n_ctx", st.scheduler->options().context},
                          {"max_tokens", st.options.max_tokens},
                          {"chat_template", st.chat_template ? st.chat_template->source() : std::string()},
                          {"bos_token", st.bos},
                          {"eos_token", st.eos}});
       }},
      {"POST", "/v1/chat/completions", [](HttpServer& s, ServerState& st, const HttpRequest& req, HttpResponse& res) {
         handle_generation(st, s.counters_, req, res, GenerationRoute::chat);
       }},
      {"POST", "/v1/completions", [](HttpServer& s, ServerState& st, const HttpRequest& req, HttpResponse& res) {
         handle_generation(st, s.counters_, req, res, GenerationRoute::completions);
       }},
      {"POST", "/completion", [](HttpServer& s, ServerState& st, const HttpRequest& req, HttpResponse& res) {
         handle_generation(st, s.counters_, req, res, GenerationRoute::native);
       }},
      {"POST", "/completions", [](HttpServer& s, ServerState& st, const HttpRequest& req, HttpResponse& res) {
         handle_generation(st, s.counters_, req, res, GenerationRoute::native);
       }},
      {"POST", "/infill", [](HttpServer& s, ServerState& st, const HttpRequest& req, HttpResponse& res) {
         handle_generation(st, s.counters_, req, res, GenerationRoute::infill);
       }},
      {"POST", "/chat/completions", [](HttpServer& s, ServerState& st, const HttpRequest& req, HttpResponse& res) {
         handle_generation(st, s.counters_, req, res, GenerationRoute::chat);
       }},
      {"GET", "/slots", [](HttpServer&, ServerState& st, const HttpRequest&, HttpResponse& res) { handle_slots_list(st, res); }},
      {"POST", "/apply-template", [](HttpServer&, ServerState& st, const HttpRequest& req, HttpResponse& res) {
         const ordered_json body = parse_json_body(req.body);
         if (!body.is_object()) throw bad_request("the request body must be a JSON object");
         for (const auto& [key, value] : body.items())
           if (key != "messages" && key != "tools" && key != "tool_choice")
             throw bad_request(fmt::format("'{}' is not supported by /apply-template", key));
         const ToolRequest tools = parse_tool_request(body);
         reply_json(res, {{"prompt", st.render_chat(parse_chat_messages(body), &tools)}});
       }},
      {"POST", "/v1/embeddings", [](HttpServer&, ServerState& st, const HttpRequest& req, HttpResponse& res) {
         handle_embeddings(st, req, res, /*openai=*/true);
       }},
      {"POST", "/embeddings", [](HttpServer&, ServerState& st, const HttpRequest& req, HttpResponse& res) {
         handle_embeddings(st, req, res, /*openai=*/true);
       }},
      {"POST", "/embedding", [](HttpServer&, ServerState& st, const HttpRequest& req, HttpResponse& res) {
         handle_embeddings(st, req, res, /*openai=*/false);
       }},
      {"POST", "/tokenize", [](HttpServer&, ServerState& st, const HttpRequest& req, HttpResponse& res) {
         const TokenizeRequest t = parse_tokenize_request(parse_json_body(req.body));
         const std::vector<int32_t> ids =
             st.tokenizer->encode(t.content, t.add_special && st.tokenizer->bos_id() >= 0, t.parse_special);
         json tokens = json::array();
         for (const int32_t id : ids) {
           if (t.with_pieces) tokens.push_back({{"id", id}, {"piece", utf8_sanitize(st.tokenizer->token_to_piece(id))}});
           else tokens.push_back(id);
         }
         reply_json(res, {{"tokens", tokens}});
       }},
      {"POST", "/detokenize", [](HttpServer&, ServerState& st, const HttpRequest& req, HttpResponse& res) {
         const std::vector<int32_t> ids = parse_detokenize_request(parse_json_body(req.body), st.tokenizer->vocab_size());
         reply_json(res, {{"content", utf8_sanitize(st.tokenizer->decode(ids, /*skip_special=*/false))}});
       }},
  };
  if (p.rfind("/slots/", 0) == 0) {  // /slots/{id}?action=...
    if (m != "POST") {
      res.set_header("Allow", "OPTIONS, POST");
      return reply_error(res, 405, "invalid_request_error", "method " + m + " is not allowed on " + p);
    }
    return guarded(req, res, [](ServerState& st, const HttpRequest& r, HttpResponse& out) { handle_slot_action(st, r, out); });
  }
  std::string allowed;  // the methods the path has, for a 405
  for (const Entry& e : kRoutes) {
    if (p != e.path) continue;
    if (m == e.method) return guarded(req, res, [this, &e](ServerState& st, const HttpRequest& r, HttpResponse& out) {
      e.handler(*this, st, r, out);
    });
    allowed += std::string(", ") + e.method;
  }
  if (!allowed.empty()) {
    res.set_header("Allow", "OPTIONS" + allowed);
    return reply_error(res, 405, "invalid_request_error", "method " + m + " is not allowed on " + p);
  }
  reply_error(res, 404, "not_found_error", "no route " + m + " " + p);
}

void HttpServer::load() {
  auto st = std::make_unique<ServerState>();
  st->options = opt_;
  st->model_id = opt_.alias.empty() ? std::filesystem::path(opt_.model).filename().string() : opt_.alias;
  OpenedModel opened = open_model(opt_.model, LoadOptions{parse_head_type(opt_.head), opt_.quantize, {}, parse_packing_choice(opt_.packing)});
  for (const auto& n : opened.notes) std::fprintf(stderr, "note: %s\n", n.c_str());
  st->model = std::move(opened.model);
  st->tokenizer = std::move(opened.tokenizer);
  const TransformerConfig& c = st->model->config();
  if (!opt_.chat_template.empty()) st->chat_template.emplace(opt_.chat_template);
  else if (!st->tokenizer->chat_template().empty()) st->chat_template.emplace(st->tokenizer->chat_template());
  const Tokenizer& tok = *st->tokenizer;
  st->bos = tok.bos_id() >= 0 ? tok.token_to_piece(tok.bos_id()) : "";
  st->eos = tok.eos_id() >= 0 ? tok.token_to_piece(tok.eos_id()) : "";
  const int64_t ctx = opt_.context > 0 ? opt_.context : c.context;
  BITNET_CHECK(ctx > 1, "[serve] the context must hold at least 2 positions, got {}", ctx);
  st->scheduler = std::make_unique<Scheduler>(*st->model, tok,
                                              SchedulerOptions{opt_.slots, ctx, opt_.batch, opt_.max_queue, opt_.kv_cache});
  if (opt_.embeddings) {
    st->pooling = parse_pooling(opt_.pooling);
    st->embedder = std::make_unique<Engine>(*st->model, ctx, 1, opt_.batch, nullptr, opt_.kv_cache);
  }
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
    transport_->stop_accepting();  // idle and half-read connections end now; requests in flight go on
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
    transport_->stop();
    return;
  }
}

int HttpServer::run() {
  // Stop signals start a graceful shutdown; a write to a closed connection must fail with EPIPE, not end the
  // process.
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  TransportOptions t;
  t.host = opt_.host;
  t.port = opt_.port;
  t.max_connections = opt_.max_connections;
  t.max_header_bytes = opt_.max_header_bytes;
  t.max_body_bytes = opt_.max_body_bytes;
  t.header_timeout = std::chrono::milliseconds(static_cast<int64_t>(opt_.header_timeout_seconds * 1000));
  t.idle_timeout = std::chrono::milliseconds(static_cast<int64_t>(opt_.keep_alive_seconds * 1000));
  t.write_timeout = std::chrono::milliseconds(static_cast<int64_t>(opt_.write_timeout_seconds * 1000));
  t.handler_threads = opt_.http_threads > 0 ? opt_.http_threads : opt_.slots + opt_.max_queue + 8;
  t.tls_cert_file = opt_.ssl_cert_file;
  t.tls_key_file = opt_.ssl_key_file;
  transport_ = std::make_unique<HttpTransport>(t, [this](const HttpRequest& req) { return route(req); });
  const int port = transport_->port();
  const char* scheme = opt_.ssl_cert_file.empty() ? "http" : "https";
  std::fprintf(stderr, "bitnet serve: listening on %s://%s:%d (loading the model)\n", scheme, opt_.host.c_str(), port);
  std::thread io([this] { transport_->run(); });
  std::thread signals([this] { watch_signals(); });
  try {
    load();
  } catch (...) {
    finished_.store(true);
    transport_->stop();
    io.join();
    signals.join();
    throw;
  }
  std::fprintf(stderr, "bitnet serve: ready on %s://%s:%d\n", scheme, opt_.host.c_str(), port);
  io.join();
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
