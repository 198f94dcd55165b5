#pragma once
// What the Hub's HTTP answers mean for a user: 401/403/404 with the X-Error-Code header it sets (RepoNotFound,
// GatedRepo, RevisionNotFound, EntryNotFound), rate limits and server errors, each with what to do next.
#include <string>

#include "hub/http_client.h"

namespace bitnet::hub {

struct HubRequest {
  std::string endpoint;
  std::string repo;
  std::string revision;
  std::string file;       // "" for the repository listing
  bool has_token = false;
};

// Throws bitnet::Error for any status that is not 2xx/3xx.
void check_hub_status(const HttpResponse& response, const HubRequest& request);

// The error for a transfer that got no answer at all.
[[noreturn]] void fail_unreachable(const TransportError& error, const HubRequest& request, const std::string& cache_note);

}  // namespace bitnet::hub
