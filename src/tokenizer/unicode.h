#pragma once
// UTF-8 decoding with Unicode's "maximal subpart" error rule, and GPT-2's byte <-> printable code point table
// (formats.md §3.1 step 3).
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace bitnet::tokenizer {

struct Utf8Step {
  uint32_t cp;      // the code point, or 0xFFFD when ill-formed
  uint32_t len;     // bytes consumed: the character, or the maximal ill-formed subpart (>= 1)
  bool ok;          // a well-formed character
  bool truncated;   // ill-formed only because the input ended inside a valid prefix
};
// Decodes the character starting at bytes[i] (i < bytes.size()).
Utf8Step utf8_step(std::string_view bytes, size_t i);
void append_utf8(std::string& out, uint32_t cp);

// GPT-2 bytes_to_unicode: the code point each byte is written as in a byte-level BPE vocabulary, and back.
const std::array<uint32_t, 256>& byte_to_cp();
// -1 for code points that are not images of a byte.
int byte_from_cp(uint32_t cp);
// Every byte of `bytes` as its code point, UTF-8 encoded.
std::string bytes_to_bpe_text(std::string_view bytes);
// The inverse; returns false (leaving partial output) when a code point is not an image of a byte.
bool bpe_text_to_bytes(std::string_view text, std::string& out);

}  // namespace bitnet::tokenizer
