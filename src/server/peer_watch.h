#pragma once
// Tells whether the client of an HTTP request has closed its connection, so that a request waiting for a slot,
// prefilling, or generating a non-streamed answer frees its slot at once instead of at its next write.
// cpp-httplib 0.11 does not hand handlers the socket, so it is found by its address pair among this process's
// open sockets (Linux /proc/self/fd); when it cannot be found, gone() stays false and a disconnect is noticed
// at the next write, as before.
#include <string>

namespace bitnet::server {

class PeerWatch {
 public:
  PeerWatch(const std::string& local_addr, int local_port, const std::string& remote_addr, int remote_port);
  // True once the peer has shut down or reset the connection.
  bool gone() const;
  bool found() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace bitnet::server
