#pragma once
// The Hub's answer to GET api/models/ORG/NAME/revision/REV?blobs=true, which this client does not trust: JSON
// parsed with a depth limit (the body is already capped in size), the commit a 40-digit hash, every file name a
// path inside the repository, sizes non-negative. Errors name the request (`what`).
#include <string>
#include <string_view>
#include <vector>

#include <bitnet/hub.h>

namespace bitnet::hub {

// A listed file and the ETag the Hub will give it: the LFS SHA-256, else the git blob id ("" when not listed).
struct Listed {
  RepoFile file;
  std::string etag;
};

struct RepoListing {
  std::string commit;
  std::vector<Listed> files;
};

RepoListing parse_repo_listing(std::string_view json_text, const std::string& what);

}  // namespace bitnet::hub
