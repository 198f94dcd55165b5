// hub_errors.h: one message per way the Hub says no.
#include "hub/hub_errors.h"

#include <bitnet/error.h>

namespace bitnet::hub {

void check_hub_status(const HttpResponse& r, const HubRequest& q) {
  if (r.status >= 200 && r.status < 400) return;
  const std::string code = r.header("x-error-code") ? *r.header("x-error-code") : "";
  const std::string what = q.file.empty() ? q.repo : q.repo + "/" + q.file;
  const std::string page = q.endpoint + "/" + q.repo;
  if (code == "GatedRepo")
    fail("[hub] {} is gated: open {} while logged in, accept its conditions, then set HF_TOKEN to an access token of "
         "that account ({}/settings/tokens){}",
         q.repo, page, q.endpoint, q.has_token ? " (the token given has not been granted access)" : "");
  if (code == "RevisionNotFound")
    fail("[hub] {} has no revision '{}' (a branch, tag or commit hash)", q.repo, q.revision);
  if (code == "EntryNotFound")
    fail("[hub] {} has no file '{}' at revision '{}'", q.repo, q.file, q.revision);
  if (r.status == 401 || code == "RepoNotFound" || (r.status == 404 && q.file.empty())) {
    if (q.has_token)
      fail("[hub] {} was not found at {} ({}), or the token in HF_TOKEN cannot read it (invalid, expired, or without "
           "access to this private repository)", q.repo, q.endpoint, r.status);
    fail("[hub] {} was not found at {} ({}): check the name (ORG/NAME, as on the model's page); if the repository is "
         "private or gated, set HF_TOKEN to an access token that can read it ({}/settings/tokens)",
         q.repo, q.endpoint, r.status, q.endpoint);
  }
  if (r.status == 403)
    fail("[hub] access to {} refused (403): {}", what,
         q.has_token ? "the token in HF_TOKEN lacks read access to it (a fine-grained token needs this repository)"
                     : "set HF_TOKEN to an access token that can read it");
  if (r.status == 404) fail("[hub] {} not found at revision '{}' (404)", what, q.revision);
  if (r.status == 429)
    fail("[hub] {} refused {} for now: too many requests (429); wait and retry{}", q.endpoint, what,
         q.has_token ? "" : ", or set HF_TOKEN (authenticated requests get a larger quota)");
  if (r.status >= 500)
    fail("[hub] {} answered {} (a server error) for {}; try again later, or set HF_HUB_OFFLINE=1 to use the cache",
         q.endpoint, r.status, what);
  fail("[hub] {} answered {} for {}", q.endpoint, r.status, what);
}

void fail_unreachable(const TransportError& e, const HubRequest& q, const std::string& cache_note) {
  fail("[hub] cannot reach {} for {}: {}. HF_HUB_OFFLINE=1 uses the files already in the cache{}", q.endpoint, q.repo,
       e.message, cache_note);
}

}  // namespace bitnet::hub
