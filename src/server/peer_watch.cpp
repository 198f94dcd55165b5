#include "server/peer_watch.h"

#include <poll.h>

namespace bitnet::server {

PeerWatch::PeerWatch(int fd, std::shared_ptr<const std::atomic<bool>> closed, bool half_close_is_gone)
    : fd_(fd), closed_(std::move(closed)), half_close_is_gone_(half_close_is_gone) {}

bool PeerWatch::gone() const {
  if (closed_ && closed_->load()) return true;  // closed here (timeout, shutdown): the descriptor may be reused
  if (fd_ < 0) return false;
  pollfd p{fd_, static_cast<short>(POLLRDHUP), 0};
  if (poll(&p, 1, 0) <= 0) return false;
  const short gone_events = static_cast<short>(POLLHUP | POLLERR | (half_close_is_gone_ ? POLLRDHUP : 0));
  return (p.revents & gone_events) != 0;
}

}  // namespace bitnet::server
