#pragma once
// The few HTTP exchanges the Hub needs, over libcurl (TLS, proxies from https_proxy/no_proxy, redirects): a HEAD
// whose redirects are followed only within the same origin (as huggingface_hub does: a Location on another host
// is the LFS CDN and is read, not followed), a small GET into memory, and a GET streamed to a callback with a Range start.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace bitnet::hub {

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased; the last response's headers only
  std::string body;                            // get_text only
  std::string url;                             // the URL that answered (after followed redirects)

  const std::string* header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? nullptr : &it->second;
  }
};

// A transfer that never got an HTTP answer: DNS, refused connection, TLS, timeout, dropped mid-body.
struct TransportError {
  std::string message;     // curl's words
  bool network_unreachable;  // could not resolve or connect at all (the cache may serve instead)
};

struct HttpOptions {
  std::string token;            // "Authorization: Bearer" to the endpoint's host only
  std::string token_host;       // host the token may be sent to
  double connect_timeout_s = 10;
  double stall_timeout_s = 30;  // abort when nothing arrives for this long
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Each returns false and fills `error` when no HTTP response came back.
  bool head(const std::string& url, HttpResponse& out, TransportError& error);
  bool get_text(const std::string& url, HttpResponse& out, TransportError& error, size_t max_bytes = 64u << 20);
  // Streams the body from byte `from` (a Range request when from > 0). on_start(status, headers) is called once
  // the final response's head is in and decides whether to take the body (returns false to abort without error);
  // on_data returns false to abort (write error). Redirects are followed.
  bool get_stream(const std::string& url, int64_t from,
                  const std::function<bool(const HttpResponse&)>& on_start,
                  const std::function<bool(std::string_view)>& on_data, HttpResponse& out, TransportError& error);

 private:
  struct Impl;
  Impl* impl_;
};

// "scheme://host:port" of a URL (lower-cased), "" when it has no scheme.
std::string url_origin(const std::string& url);
// "host" of "https://host:port/path" (lower-cased), "" when the URL has none.
std::string url_host(const std::string& url);
// %-encodes a repository path for a URL, keeping "/" (file names may hold spaces, "#", "?").
std::string url_encode_path(std::string_view path);
// %-encodes one URL component (a revision such as refs/pr/1 becomes refs%2Fpr%2F1).
std::string url_encode_component(std::string_view text);

}  // namespace bitnet::hub
