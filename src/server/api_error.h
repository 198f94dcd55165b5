#pragma once
// Errors a request handler answers with, in OpenAI's shape {"error":{"message","type","code"}}.
#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

namespace bitnet::server {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string type, const std::string& message)
      : std::runtime_error(message), status_(status), type_(std::move(type)) {}
  int status() const { return status_; }
  const std::string& type() const { return type_; }

 private:
  int status_;
  std::string type_;
};

inline ApiError bad_request(const std::string& message) { return {400, "invalid_request_error", message}; }

// The body for an error; `code` is the HTTP status, as llama-server sends it.
inline nlohmann::json error_body(int status, const std::string& type, const std::string& message) {
  return {{"error", {{"message", message}, {"type", type}, {"code", status}}}};
}

// JSON text that is valid UTF-8 whatever the strings held (ill-formed bytes become U+FFFD).
inline std::string dump_json(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace bitnet::server
