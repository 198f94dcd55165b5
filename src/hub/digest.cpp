// OpenSSL EVP behind digest.h.
#include "hub/digest.h"

#include <bitnet/error.h>
#include <openssl/evp.h>

#include <cctype>
#include <fstream>
#include <vector>

namespace bitnet::hub {

DigestKind digest_kind_of_etag(std::string_view etag) {
  for (char c : etag)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return DigestKind::none;
  if (etag.size() == 64) return DigestKind::sha256;
  if (etag.size() == 40) return DigestKind::git_sha1;
  return DigestKind::none;
}

Digest::Digest(DigestKind kind, int64_t size) : kind_(kind), size_(size) { reset(); }

Digest::~Digest() {
  if (ctx_) EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
}

void Digest::reset() {
  if (kind_ == DigestKind::none) return;
  if (!ctx_) ctx_ = EVP_MD_CTX_new();
  auto* ctx = static_cast<EVP_MD_CTX*>(ctx_);
  EVP_DigestInit_ex(ctx, kind_ == DigestKind::sha256 ? EVP_sha256() : EVP_sha1(), nullptr);
  if (kind_ == DigestKind::git_sha1) {
    const std::string header = "blob " + std::to_string(size_) + std::string(1, '\0');
    EVP_DigestUpdate(ctx, header.data(), header.size());
  }
}

void Digest::update(std::string_view bytes) {
  if (kind_ != DigestKind::none) EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), bytes.data(), bytes.size());
}

std::string Digest::hex() {
  if (kind_ == DigestKind::none) return {};
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &n);
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out += digits[md[i] >> 4];
    out += digits[md[i] & 15];
  }
  return out;
}

void digest_file(Digest& digest, const std::filesystem::path& path, int64_t bytes) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("[hub] cannot read '{}' to check its checksum", path.string());
  std::vector<char> buf(1 << 20);
  int64_t left = bytes;
  while (bytes < 0 || left > 0) {
    const auto want = static_cast<std::streamsize>(bytes < 0 ? buf.size() : std::min<int64_t>(left, buf.size()));
    f.read(buf.data(), want);
    const std::streamsize got = f.gcount();
    if (got <= 0) break;
    digest.update(std::string_view(buf.data(), static_cast<size_t>(got)));
    left -= got;
  }
  if (bytes >= 0 && left > 0) fail("[hub] '{}' is shorter than the {} bytes expected", path.string(), bytes);
}

}  // namespace bitnet::hub
