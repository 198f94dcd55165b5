// libcurl behind http_client.h: one easy handle per client (connections are reused between its requests), no
// signals (the clients live in download threads), headers collected per response so that a redirect's headers
// never mix with the final answer's.
#include "hub/http_client.h"

#include <bitnet/version.h>
#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>

namespace bitnet::hub {

namespace {

std::once_flag curl_once;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return std::string(s);
}

// What one transfer collects; the callbacks see it through their userdata pointer.
struct Transfer {
  CURL* curl = nullptr;
  HttpResponse* out = nullptr;
  const std::function<bool(const HttpResponse&)>* on_start = nullptr;
  const std::function<bool(std::string_view)>* on_data = nullptr;
  size_t max_body = 0;
  bool started = false;     // on_start ran (and said yes) for the final response
  bool stopped = false;     // a callback chose to stop: not a transport error
  bool body_too_big = false;
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  std::string_view line(data, n);
  if (line.starts_with("HTTP/")) {  // a new response (the first, or one after a redirect or 100-continue)
    t->out->headers.clear();
    return n;
  }
  if (trim(line).empty()) {  // end of this response's head
    long status = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
    t->out->status = status;
    const bool redirect_followed = status >= 300 && status < 400 && t->out->header("location") && t->on_start;
    if (t->on_start && !redirect_followed && status >= 200) {
      char* eff = nullptr;
      curl_easy_getinfo(t->curl, CURLINFO_EFFECTIVE_URL, &eff);
      if (eff) t->out->url = eff;
      t->started = (*t->on_start)(*t->out);
      if (!t->started) {
        t->stopped = true;
        return 0;
      }
    }
    return n;
  }
  const size_t colon = line.find(':');
  if (colon != std::string_view::npos)
    t->out->headers[lower(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
  return n;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (t->on_data) {
    if (!t->started) return n;  // a redirect's or error's body
    if (!(*t->on_data)(std::string_view(data, n))) {
      t->stopped = true;
      return 0;
    }
    return n;
  }
  if (t->out->body.size() + n > t->max_body) {
    t->body_too_big = true;
    return 0;
  }
  t->out->body.append(data, n);
  return n;
}

}  // namespace

struct HttpClient::Impl {
  HttpOptions options;
  CURL* curl = nullptr;
  char error_buffer[CURL_ERROR_SIZE] = {};

  // Resets the handle and sets what every request shares; returns the header list to free.
  curl_slist* prepare(const std::string& url, bool follow, bool identity, int64_t range_from) {
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout_s * 1000));
    // A transfer that receives less than 1 byte/s for stall_timeout_s is dropped (and resumed by the caller).
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, std::max(1L, static_cast<long>(options.stall_timeout_s)));
    const std::string agent = std::string("bitnet/") + kVersion;
    curl_easy_setopt(curl, CURLOPT_USERAGENT, agent.c_str());
    curl_slist* headers = nullptr;
    if (identity) headers = curl_slist_append(headers, "Accept-Encoding: identity");
    if (!options.token.empty() && url_host(url) == options.token_host)
      headers = curl_slist_append(headers, ("Authorization: Bearer " + options.token).c_str());
    if (range_from > 0) headers = curl_slist_append(headers, ("Range: bytes=" + std::to_string(range_from) + "-").c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    error_buffer[0] = 0;
    return headers;
  }

  bool perform(Transfer& t, TransportError& error) {
    t.curl = curl;
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
    const CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status) t.out->status = status;
    char* eff = nullptr;
    curl_easy_getinfo(curl, CURLINFO_EFFECTIVE_URL, &eff);
    if (eff && t.out->url.empty()) t.out->url = eff;
    if (rc == CURLE_OK || t.stopped) return true;
    if (t.body_too_big) {
      error = {"the response is larger than expected", false};
      return false;
    }
    const bool unreachable = rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY ||
                             rc == CURLE_COULDNT_CONNECT || (rc == CURLE_OPERATION_TIMEDOUT && status == 0);
    error = {error_buffer[0] ? std::string(error_buffer) : std::string(curl_easy_strerror(rc)), unreachable};
    return false;
  }
};

HttpClient::HttpClient(HttpOptions options) : impl_(new Impl{std::move(options)}) {
  std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  impl_->curl = curl_easy_init();
}

HttpClient::~HttpClient() {
  if (impl_->curl) curl_easy_cleanup(impl_->curl);
  delete impl_;
}

bool HttpClient::head(const std::string& start_url, HttpResponse& out, TransportError& error) {
  std::string url = start_url;
  // Redirects within the Hub's origin (a renamed repository) are followed by hand; one that leaves it (the CDN's
  // signed URL) is the answer: it carries the file's metadata, and the token must not follow it.
  for (int hop = 0; hop < 10; ++hop) {
    out = HttpResponse{};
    curl_slist* headers = impl_->prepare(url, false, true, 0);
    curl_easy_setopt(impl_->curl, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(impl_->curl, CURLOPT_TIMEOUT_MS,
                     static_cast<long>((impl_->options.connect_timeout_s + impl_->options.stall_timeout_s) * 1000));
    Transfer t;
    t.out = &out;
    const bool ok = impl_->perform(t, error);
    curl_slist_free_all(headers);
    if (!ok) return false;
    out.url = url;
    const std::string* location = out.header("location");
    if (out.status >= 300 && out.status < 400 && location) {
      const std::string origin = url_origin(url);
      const std::string target = location->starts_with("/") ? origin + *location : *location;
      if (url_origin(target) == origin) {
        url = target;
        continue;
      }
    }
    return true;
  }
  error = {"too many redirects from " + start_url, false};
  return false;
}

bool HttpClient::get_text(const std::string& url, HttpResponse& out, TransportError& error, size_t max_bytes) {
  out = HttpResponse{};
  curl_slist* headers = impl_->prepare(url, true, false, 0);
  curl_easy_setopt(impl_->curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>((impl_->options.connect_timeout_s + impl_->options.stall_timeout_s) * 1000));
  curl_easy_setopt(impl_->curl, CURLOPT_ACCEPT_ENCODING, "");  // gzip welcome for JSON
  Transfer t;
  t.out = &out;
  t.max_body = max_bytes;
  const bool ok = impl_->perform(t, error);
  curl_slist_free_all(headers);
  return ok;
}

bool HttpClient::get_stream(const std::string& url, int64_t from, const std::function<bool(const HttpResponse&)>& on_start,
                            const std::function<bool(std::string_view)>& on_data, HttpResponse& out,
                            TransportError& error) {
  out = HttpResponse{};
  curl_slist* headers = impl_->prepare(url, true, true, from);
  Transfer t;
  t.out = &out;
  t.on_start = &on_start;
  t.on_data = &on_data;
  const bool ok = impl_->perform(t, error);
  curl_slist_free_all(headers);
  return ok;
}

std::string url_origin(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return {};
  const size_t end = url.find_first_of("/?#", scheme + 3);
  return lower(url.substr(0, end));
}

std::string url_host(const std::string& url) {
  size_t start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  size_t end = url.find_first_of("/?#", start);
  std::string authority = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (const size_t at = authority.rfind('@'); at != std::string::npos) authority = authority.substr(at + 1);
  return lower(authority);
}

namespace {
std::string percent_encode(std::string_view text, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || (keep_slash && c == '/') || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}
}  // namespace

std::string url_encode_path(std::string_view path) { return percent_encode(path, true); }
std::string url_encode_component(std::string_view text) { return percent_encode(text, false); }

}  // namespace bitnet::hub
