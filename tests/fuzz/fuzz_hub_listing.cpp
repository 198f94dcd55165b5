// libFuzzer: the Hub's repository listing (what HF_ENDPOINT answers to api/models/ORG/NAME/revision/REV) and the
// choice of a model's files from it: either a listing and a choice, or bitnet::Error; never a crash, a path that
// leaves the repository, or unbounded work. The first byte picks the selector (none, a tag, a glob, a file name).
#include <bitnet/error.h>
#include <bitnet/hub.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "hub/repo_listing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    const bitnet::hub::RepoListing listing = bitnet::hub::parse_repo_listing(text, "fuzz");
    std::vector<bitnet::hub::RepoFile> files;
    for (const auto& l : listing.files) {
      if (l.file.name.find("..") != std::string::npos && l.file.name.find("/../") != std::string::npos) std::abort();
      files.push_back(l.file);
    }
    const char* selectors[] = {"", "i2_s", "*.gguf", files.empty() ? "x" : files[0].name.c_str()};
    const auto m = bitnet::hub::choose_model_files("org/name", files, selectors[data[0] & 3]);
    for (const auto& f : m.files) (void)f.size();
  } catch (const bitnet::Error&) {
  }
  return 0;
}
