#pragma once
// The HTTP/1.x transport of `bitnet serve`: event-driven (Boost.Asio + Boost.Beast's parser), so that slow,
// idle or hostile connections cost a socket and a timer, never a thread. Every connection has deadlines (the
// whole request head within header_timeout, the body at a minimum rate, the next keep-alive request within
// idle_timeout, each write within write_timeout), and caps (connections, header bytes, body bytes, chunked
// bodies included). Keep-alive, pipelining (requests answered in order), Expect: 100-continue, HTTP/1.0
// (streams end by closing, never chunked), half-closed clients and TLS are handled here; routes know none of it.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bitnet::server {

struct HttpRequest {
  std::string method;
  std::string target;  // as sent: path and query
  std::string path;    // without the query
  int version = 11;    // 10 or 11
  bool keep_alive = true;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string remote_addr;
  int remote_port = 0;
  int socket_fd = -1;  // the connection's socket, for noticing a client that left (PeerWatch)
  std::shared_ptr<const std::atomic<bool>> connection_closed;  // set once the transport closed the connection

  // Case-insensitive, as HTTP header names are; "" when absent.
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;
};

// A streamed body: write() blocks until the bytes are on their way (or the client is gone: false).
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  virtual bool write(std::string_view data) = 0;
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Set for a streamed body (Server-Sent Events): called on the handler's thread once the head is sent;
  // returns whether the stream ended as it should. HTTP/1.1 gets chunked encoding, HTTP/1.0 a body that ends
  // when the connection closes. on_stream_end(ok) runs afterwards in any case (ok false: the client left).
  std::function<bool(ResponseStream&)> stream;
  std::function<void(bool)> on_stream_end;

  void set_header(std::string name, std::string value);
  void set_content(std::string content, std::string content_type);
};

struct TransportOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                       // 0: any free port
  size_t max_connections = 4096;         // more are answered 503 and closed
  size_t max_header_bytes = 16 << 10;    // request line + headers; more: 431
  size_t max_body_bytes = 1 << 20;       // Content-Length or chunked; more: 413
  std::chrono::milliseconds header_timeout{10000};  // the whole head, from the first byte wait
  std::chrono::milliseconds idle_timeout{5000};     // between keep-alive requests
  std::chrono::milliseconds write_timeout{60000};   // one write (a client that stops reading)
  double min_body_rate = 16 << 10;       // bytes per second a body must at least arrive at
  int handler_threads = 16;              // requests handled at once by blocking handlers (generation)
  int io_threads = 2;
  std::string tls_cert_file, tls_key_file;  // both set: HTTPS only
};

// A request handler. `blocking` routes (generation, which waits for tokens) run on the handler pool; the rest
// run on the I/O threads and must be quick.
struct Route {
  std::function<void(const HttpRequest&, HttpResponse&)> handle;
  bool blocking = false;
};
using Router = std::function<Route(const HttpRequest&)>;

class HttpTransport {
 public:
  // Binds and listens (throws bitnet::Error naming the address when it cannot); serving starts with run().
  HttpTransport(TransportOptions options, Router router);
  ~HttpTransport();
  HttpTransport(const HttpTransport&) = delete;
  HttpTransport& operator=(const HttpTransport&) = delete;

  int port() const;
  // Serves until stop(); returns once every connection and handler has ended.
  void run();
  // No new connections; idle keep-alive and still-arriving requests are closed; requests being handled go on.
  void stop_accepting();
  // Ends everything now: every connection closed, handlers told (their writes fail), then run() returns.
  void stop();
  size_t open_connections() const;
  uint64_t connections_refused() const;  // over max_connections
  uint64_t requests_timed_out() const;   // a head or body that did not arrive in time

  struct Impl;  // defined in http_transport.cpp (its connections use it)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace bitnet::server
