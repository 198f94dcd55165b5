#pragma once
// Tells whether the client of an HTTP request has gone, so that a request waiting for a slot, prefilling, or
// generating a non-streamed answer frees its slot at once instead of at its next write.
#include <atomic>
#include <memory>

namespace bitnet::server {

class PeerWatch {
 public:
  // `fd`: the connection's socket; `closed`: set by the transport when it closed the connection itself;
  // `half_close_is_gone`: whether the client shutting down its sending side means it left. A keep-alive client
  // that shuts down has left; a client that asked to close after this request (HTTP/1.0, Connection: close)
  // may half-close right after sending it and still read the answer, so then only a reset or hang-up counts.
  PeerWatch(int fd, std::shared_ptr<const std::atomic<bool>> closed, bool half_close_is_gone);
  bool gone() const;

 private:
  int fd_;
  std::shared_ptr<const std::atomic<bool>> closed_;
  bool half_close_is_gone_;
};

}  // namespace bitnet::server
