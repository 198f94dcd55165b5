#pragma once
// Streaming content digests the Hub names files by: SHA-256 for LFS files (the ETag of a model weight file) and
// git's blob SHA-1 ("blob SIZE\0" + content) for small files kept in git. OpenSSL's EVP does the hashing.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace bitnet::hub {

enum class DigestKind { none, sha256, git_sha1 };

// What an ETag says about the content: 64 hex digits are a SHA-256, 40 a git blob SHA-1, anything else nothing.
DigestKind digest_kind_of_etag(std::string_view etag);

class Digest {
 public:
  // git_sha1 needs the content's size up front (it is part of the hashed header).
  Digest(DigestKind kind, int64_t size);
  ~Digest();
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;
  void update(std::string_view bytes);
  void reset();
  std::string hex();  // finishes; lower-case hex
  DigestKind kind() const { return kind_; }

 private:
  DigestKind kind_;
  int64_t size_;
  void* ctx_ = nullptr;  // EVP_MD_CTX
};

// The digest of a whole file's first `bytes` bytes (all when bytes < 0), read in 1 MiB pieces.
void digest_file(Digest& digest, const std::filesystem::path& path, int64_t bytes = -1);

}  // namespace bitnet::hub
