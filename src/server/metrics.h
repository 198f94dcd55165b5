#pragma once
// GET /metrics in the Prometheus text format. Names llama-server also exports keep its `llamacpp:` names, so
// dashboards and slot-aware balancers that scrape llama-server read ours unchanged; the rest are `bitnet:`.
#include <atomic>
#include <cstdint>
#include <string>

#include "server/scheduler.h"

namespace bitnet::server {

// Counted by the HTTP layer.
struct HttpCounters {
  std::atomic<uint64_t> requests{0};        // every request answered
  std::atomic<uint64_t> client_errors{0};   // 4xx
  std::atomic<uint64_t> server_errors{0};   // 5xx
  std::atomic<uint64_t> rejected_busy{0};   // 503: every slot busy and the queue full
  std::atomic<uint64_t> open_connections{0};     // gauge, from the transport
  std::atomic<uint64_t> refused_connections{0};  // over --max-connections
  std::atomic<uint64_t> timed_out_requests{0};   // a head or body that did not arrive in time
};

std::string prometheus_text(const Scheduler& scheduler, const HttpCounters& http);

}  // namespace bitnet::server
