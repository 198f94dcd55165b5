// The event-driven HTTP/1.x transport (http_transport.h). Each connection lives on its own strand of a small
// io_context pool: reading is asynchronous with one deadline for the head and a rate-based one for the body,
// so no thread waits on a client. Complete requests go to their route: quick ones run on the strand, blocking
// ones (generation) on a handler pool, which writes back through the strand. Responses are written in request
// order, and the next pipelined request is read only after the previous answer went out.
#include "server/http_transport.h"

#include <bitnet/error.h>
#include <sys/resource.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "server/api_error.h"

namespace bitnet::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {
bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string status_line(int version, int status) {
  const auto reason = http::obsolete_reason(static_cast<http::status>(status));
  return (version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ") + std::to_string(status) + " " +
         std::string(reason.empty() ? "Unknown" : std::string_view(reason.data(), reason.size())) + "\r\n";
}

// A short error answer the transport gives itself (431, 413, 400, 503), always closing the connection.
std::string transport_error(int status, const std::string& message) {
  const std::string json = dump_json(error_body(status, status == 503 ? "unavailable_error" : "invalid_request_error",
                                                message));
  return status_line(11, status) + "Content-Type: application/json\r\nContent-Length: " + std::to_string(json.size()) +
         "\r\nConnection: close\r\nAccess-Control-Allow-Origin: *\r\n\r\n" + json;
}
}  // namespace

std::string HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequal(k, name)) return v;
  return {};
}

bool HttpRequest::has_header(std::string_view name) const {
  return std::any_of(headers.begin(), headers.end(), [&](const auto& h) { return iequal(h.first, name); });
}

void HttpResponse::set_header(std::string name, std::string value) {
  for (auto& [k, v] : headers)
    if (iequal(k, name)) {
      v = std::move(value);
      return;
    }
  headers.emplace_back(std::move(name), std::move(value));
}

void HttpResponse::set_content(std::string content, std::string content_type) {
  body = std::move(content);
  set_header("Content-Type", std::move(content_type));
}

// ---- connections ------------------------------------------------------------------------------------------
class ConnectionBase {
 public:
  virtual ~ConnectionBase() = default;
  virtual void close() = 0;              // on any thread: ends the connection
  virtual void close_if_idle() = 0;      // on any thread: ends it unless a request is being handled
};

struct HttpTransport::Impl {
  TransportOptions opt;
  Router router;
  asio::io_context ioc;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  tcp::acceptor acceptor;
  asio::steady_timer accept_retry;
  std::optional<ssl::context> tls;
  asio::thread_pool handlers;
  std::mutex mutex;
  std::set<std::shared_ptr<ConnectionBase>> connections;
  std::atomic<bool> accepting{true};
  std::atomic<uint64_t> refused{0}, timed_out{0};
  std::atomic<int> busy{0};  // connections with a request being handled or answered
  std::thread finisher;  // waits for the handlers after stop(), then lets run() return

  Impl(TransportOptions o, Router r)
      : opt(std::move(o)), router(std::move(r)), work(asio::make_work_guard(ioc)), acceptor(asio::make_strand(ioc)),
        accept_retry(acceptor.get_executor()), handlers(static_cast<size_t>(std::max(1, opt.handler_threads))) {}

  void accept();
  template <class Stream>
  void start(Stream stream);
  void forget(const std::shared_ptr<ConnectionBase>& c) {
    std::lock_guard lock(mutex);
    connections.erase(c);
  }
};

namespace {

template <class Stream>
tcp::socket::native_handle_type native_fd(Stream& s) {
  return beast::get_lowest_layer(s).socket().native_handle();
}

template <class Stream>
class Connection : public ConnectionBase, public std::enable_shared_from_this<Connection<Stream>> {
 public:
  Connection(HttpTransport::Impl& t, Stream stream) : t_(t), stream_(std::move(stream)) {}

  void begin() {
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      beast::get_lowest_layer(stream_).expires_after(t_.opt.header_timeout);
      stream_.async_handshake(ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
        if (ec) return self->finish();
        self->read_request();
      });
    } else {
      read_request();
    }
  }

  void close() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] { self->finish(); });
  }
  void close_if_idle() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] {
      if (!self->handling_) self->finish();
    });
  }

  // Called from a handler thread: queue bytes on the strand and wait until written (false: the client is gone).
  bool write_blocking(std::string data) {
    auto done = std::make_shared<std::promise<bool>>();
    std::future<bool> result = done->get_future();
    asio::post(stream_.get_executor(), [self = this->shared_from_this(), d = std::move(data), done]() mutable {
      self->write(std::move(d), [done](bool ok) { done->set_value(ok); });
    });
    return result.get();
  }

 private:
  HttpTransport::Impl& t_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool first_ = true, handling_ = false, closed_ = false;
  std::shared_ptr<std::atomic<bool>> closed_flag_ = std::make_shared<std::atomic<bool>>(false);

  void read_request() {
    if (closed_) return;
    if (!t_.accepting.load() && !first_) return finish();  // shutting down: no more keep-alive requests
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(t_.opt.max_header_bytes));
    parser_->body_limit(t_.opt.max_body_bytes);
    // One deadline for the whole head (a client trickling one byte at a time gains nothing), plus the idle
    // allowance between keep-alive requests.
    beast::get_lowest_layer(stream_).expires_after(first_ ? t_.opt.header_timeout
                                                          : t_.opt.idle_timeout + t_.opt.header_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec) return refuse(ec);
    const auto& req = parser_->get();
    // The body must arrive at the minimum rate: its allowance grows with its announced (or largest) size.
    const uint64_t expected = parser_->content_length() ? *parser_->content_length() : t_.opt.max_body_bytes;
    const auto body_time = std::chrono::milliseconds(static_cast<int64_t>(1000.0 * static_cast<double>(expected) /
                                                                           t_.opt.min_body_rate));
    beast::get_lowest_layer(stream_).expires_after(t_.opt.header_timeout + body_time);
    auto read_body = [self = this->shared_from_this()] {
      http::async_read(self->stream_, self->buffer_, *self->parser_,
                       [self](beast::error_code e, size_t) { self->on_request(e); });
    };
    if (iequal(std::string_view(req[http::field::expect]), "100-continue") && !parser_->is_done()) {
      write(status_line(11, 100) + "\r\n", [self = this->shared_from_this(), read_body](bool ok) {
        if (ok) read_body();
      });
      return;
    }
    read_body();
  }

  // A request that cannot be read: a short answer where one helps, then the connection ends.
  void refuse(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset || closed_)
      return finish();
    if (ec == beast::error::timeout) {
      if (parser_ && parser_->got_some()) t_.timed_out.fetch_add(1);  // not an idle keep-alive connection
      return finish();
    }
    int status = 400;
    std::string message = "malformed request: " + ec.message();
    if (ec == http::error::header_limit) {
      status = 431;
      message = "the request head is larger than " + std::to_string(t_.opt.max_header_bytes) + " bytes";
    } else if (ec == http::error::body_limit) {
      status = 413;
      message = "the request body is larger than " + std::to_string(t_.opt.max_body_bytes) + " bytes";
    }
    write(transport_error(status, message), [self = this->shared_from_this()](bool) { self->finish(); });
  }

  void on_request(beast::error_code ec) {
    if (ec) return refuse(ec);
    beast::get_lowest_layer(stream_).expires_never();  // handling may take long; writes set their own
    auto req = std::make_shared<HttpRequest>();
    const auto& r = parser_->get();
    req->method = std::string(r.method_string());
    req->target = std::string(r.target());
    req->path = req->target.substr(0, req->target.find('?'));
    req->version = static_cast<int>(r.version());
    req->keep_alive = r.keep_alive();
    for (const auto& f : r) req->headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    req->body = std::move(parser_->get().body());
    req->socket_fd = static_cast<int>(native_fd(stream_));
    req->connection_closed = closed_flag_;
    beast::error_code ep_ec;
    const auto ep = beast::get_lowest_layer(stream_).socket().remote_endpoint(ep_ec);
    if (!ep_ec) {
      req->remote_addr = ep.address().to_string();
      req->remote_port = ep.port();
    }
    first_ = false;
    handling_ = true;
    t_.busy.fetch_add(1);
    Route route = t_.router(*req);
    auto self = this->shared_from_this();
    auto run = [self, req, route]() {
      auto res = std::make_shared<HttpResponse>();
      route.handle(*req, *res);
      self->respond(req, res);
    };
    if (route.blocking) asio::post(t_.handlers, run);
    else run();
  }

  // Any thread: the head (and body) of the answer; a stream's body then flows from the calling thread.
  void respond(const std::shared_ptr<HttpRequest>& req, const std::shared_ptr<HttpResponse>& res) {
    const bool keep = req->keep_alive && t_.accepting.load() && !(res->stream && req->version == 10);
    std::string head = status_line(req->version, res->status);
    bool has_type = false;
    for (const auto& [k, v] : res->headers) {
      head += k + ": " + v + "\r\n";
      has_type = has_type || iequal(k, "Content-Type");
    }
    if (!has_type && !res->body.empty()) head += "Content-Type: application/json\r\n";
    head += keep ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
    const bool head_only = req->method == "HEAD";
    if (!res->stream) {
      head += "Content-Length: " + std::to_string(res->body.size()) + "\r\n\r\n";
      if (!head_only) head += res->body;
      asio::post(stream_.get_executor(), [self = this->shared_from_this(), h = std::move(head), keep]() mutable {
        self->write(std::move(h), [self, keep](bool ok) { self->after_response(ok && keep); });
      });
      return;
    }
    // Streams: chunked for HTTP/1.1; HTTP/1.0 has no chunks, so the body ends with the connection.
    const bool chunked = req->version != 10;
    if (chunked) head += "Transfer-Encoding: chunked\r\n";
    head += "\r\n";
    struct Sink : ResponseStream {
      Connection& c;
      bool chunked, broken = false;
      Sink(Connection& conn, bool ch) : c(conn), chunked(ch) {}
      bool write(std::string_view data) override {
        if (broken) return false;
        if (data.empty()) return true;
        std::string out;
        if (chunked) {
          char size[32];
          std::snprintf(size, sizeof size, "%zx\r\n", data.size());
          out = size;
          out.append(data);
          out += "\r\n";
        } else {
          out.assign(data);
        }
        broken = !c.write_blocking(std::move(out));
        return !broken;
      }
    };
    auto run_stream = [self = this->shared_from_this(), res, head = std::move(head), chunked, keep]() mutable {
      Sink sink(*self, chunked);
      bool ok = self->write_blocking(std::move(head));
      if (ok) ok = res->stream(sink) && !sink.broken;
      if (ok && chunked) ok = self->write_blocking("0\r\n\r\n");
      if (res->on_stream_end) res->on_stream_end(ok);
      asio::post(self->stream_.get_executor(), [self, next = ok && keep] { self->after_response(next); });
    };
    // A stream's body comes from a blocking producer: never on an I/O thread.
    asio::post(t_.handlers, std::move(run_stream));
  }

  void after_response(bool next) {
    if (handling_) t_.busy.fetch_sub(1);
    handling_ = false;
    if (next) read_request();
    else finish();
  }

  // On the strand: one write at a time (responses are written in order, and a handler waits for each).
  void write(std::string data, std::function<void(bool)> done) {
    if (closed_) return done(false);
    auto buf = std::make_shared<std::string>(std::move(data));
    beast::get_lowest_layer(stream_).expires_after(t_.opt.write_timeout);
    asio::async_write(stream_, asio::buffer(*buf),
                      [self = this->shared_from_this(), buf, done = std::move(done)](beast::error_code ec, size_t) {
                        if (ec) self->finish();
                        done(!ec);
                      });
  }

  void finish() {
    if (closed_) return;
    closed_ = true;
    if (handling_) {  // a handler may still hold the connection; it is not busy for shutdown's purposes
      handling_ = false;
      t_.busy.fetch_sub(1);
    }
    closed_flag_->store(true);
    beast::error_code ec;
    auto& sock = beast::get_lowest_layer(stream_).socket();
    sock.shutdown(tcp::socket::shutdown_both, ec);
    sock.close(ec);
    t_.forget(this->shared_from_this());
  }
};

}  // namespace

template <class Stream>
void HttpTransport::Impl::start(Stream stream) {
  auto c = std::make_shared<Connection<Stream>>(*this, std::move(stream));
  {
    std::lock_guard lock(mutex);
    connections.insert(c);
  }
  c->begin();
}

void HttpTransport::Impl::accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (!accepting.load()) return;
    if (ec) {
      // Out of descriptors (EMFILE) and the like: wait a moment instead of spinning or giving up.
      accept_retry.expires_after(std::chrono::milliseconds(50));
      accept_retry.async_wait([this](beast::error_code) {
        if (accepting.load()) accept();
      });
      return;
    }
    size_t open;
    {
      std::lock_guard lock(mutex);
      open = connections.size();
    }
    if (open >= opt.max_connections) {
      refused.fetch_add(1);
      // A short 503 (best effort, non-blocking) and the connection ends: the others keep their service.
      const std::string msg = transport_error(503, "too many open connections; retry later");
      beast::error_code e;
      socket.non_blocking(true, e);
      socket.write_some(asio::buffer(msg), e);
      socket.close(e);
    } else {
      socket.set_option(tcp::no_delay(true), ec);
      beast::tcp_stream s(std::move(socket));
      if (tls) start(beast::ssl_stream<beast::tcp_stream>(std::move(s), *tls));
      else start(std::move(s));
    }
    accept();
  });
}

HttpTransport::HttpTransport(TransportOptions options, Router router)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(router))) {
  Impl& m = *impl_;
  // Many slow clients each hold a descriptor: lift the soft limit to the hard one.
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  if (!m.opt.tls_cert_file.empty() || !m.opt.tls_key_file.empty()) {
    BITNET_CHECK(!m.opt.tls_cert_file.empty() && !m.opt.tls_key_file.empty(),
                 "[serve] TLS needs both --ssl-cert-file and --ssl-key-file");
    m.tls.emplace(ssl::context::tls_server);
    m.tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    try {
      m.tls->use_certificate_chain_file(m.opt.tls_cert_file);
    } catch (const std::exception& e) {
      fail("[serve] --ssl-cert-file '{}': {}", m.opt.tls_cert_file, e.what());
    }
    try {
      m.tls->use_private_key_file(m.opt.tls_key_file, ssl::context::pem);
    } catch (const std::exception& e) {
      fail("[serve] --ssl-key-file '{}': {}", m.opt.tls_key_file, e.what());
    }
  }
  beast::error_code ec;
  const auto address = asio::ip::make_address(m.opt.host, ec);
  BITNET_CHECK(!ec, "[serve] --host '{}' is not an IP address of this host", m.opt.host);
  const tcp::endpoint ep(address, static_cast<unsigned short>(m.opt.port));
  m.acceptor.open(ep.protocol(), ec);
  if (!ec) m.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) m.acceptor.bind(ep, ec);
  if (!ec) m.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  BITNET_CHECK(!ec, "[serve] cannot listen on {}:{} ({})", m.opt.host, m.opt.port, ec.message());
  m.accept();
}

HttpTransport::~HttpTransport() {
  stop();
  if (impl_->finisher.joinable()) impl_->finisher.join();
}

int HttpTransport::port() const {
  beast::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

void HttpTransport::run() {
  std::vector<std::thread> io;
  for (int i = 1; i < std::max(1, impl_->opt.io_threads); ++i) io.emplace_back([this] { impl_->ioc.run(); });
  impl_->ioc.run();
  for (auto& t : io) t.join();
}

void HttpTransport::stop_accepting() {
  Impl& m = *impl_;
  if (!m.accepting.exchange(false)) return;
  asio::post(m.acceptor.get_executor(), [&m] {
    beast::error_code ec;
    m.acceptor.close(ec);
    m.accept_retry.cancel();
  });
  std::lock_guard lock(m.mutex);
  for (const auto& c : m.connections) c->close_if_idle();
}

void HttpTransport::stop() {
  Impl& m = *impl_;
  stop_accepting();
  // Answers being written (the last events of streams ended by shutdown) get up to a second to go out.
  for (int i = 0; i < 20 && m.busy.load() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  {
    std::lock_guard lock(m.mutex);
    for (const auto& c : m.connections) c->close();
  }
  // Handlers still running see their writes fail; once they are all done the work guard goes, and run() returns
  // when the last close has completed.
  std::lock_guard lock(m.mutex);
  if (!m.finisher.joinable())
    m.finisher = std::thread([&m] {
      m.handlers.join();
      asio::post(m.ioc, [&m] { m.work.reset(); });
    });
}

size_t HttpTransport::open_connections() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->connections.size();
}

uint64_t HttpTransport::connections_refused() const { return impl_->refused.load(); }
uint64_t HttpTransport::requests_timed_out() const { return impl_->timed_out.load(); }

}  // namespace bitnet::server
