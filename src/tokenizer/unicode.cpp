#include "tokenizer/unicode.h"

#include <bitnet/tokenizer.h>

namespace bitnet::tokenizer {

Utf8Step utf8_step(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t c = b(i);
  if (c < 0x80) return {c, 1, true, false};
  // Well-formed sequences (Unicode Table 3-7): the lead byte fixes the length and the range of the 2nd byte.
  uint32_t need = 0, cp = 0;
  uint8_t lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) need = 1, cp = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF) need = 2, cp = c & 0x0F, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
  else if (c >= 0xF0 && c <= 0xF4) need = 3, cp = c & 0x07, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
  else return {0xFFFD, 1, false, false};
  uint32_t k = 1;
  for (; k <= need; ++k) {
    if (i + k >= s.size()) return {0xFFFD, k, false, true};
    const uint8_t t = b(i + k);
    const uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (t < l || t > h) return {0xFFFD, k, false, false};
    cp = (cp << 6) | (t & 0x3F);
  }
  return {cp, need + 1, true, false};
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

namespace {
struct ByteTables {
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 324> from_cp{};  // images are < 0x100 + 68
  ByteTables() {
    from_cp.fill(-1);
    uint32_t next = 0x100;
    for (uint32_t v = 0; v < 256; ++v) {
      // Printable Latin-1 bytes stand for themselves; the rest are moved, in byte order, to U+0100 onwards.
      const bool printable = (v >= 0x21 && v <= 0x7E) || (v >= 0xA1 && v <= 0xAC) || (v >= 0xAE && v <= 0xFF);
      to_cp[v] = printable ? v : next++;
      from_cp[to_cp[v]] = static_cast<int16_t>(v);
    }
  }
};
const ByteTables& tables() {
  static const ByteTables t;
  return t;
}
}  // namespace

const std::array<uint32_t, 256>& byte_to_cp() { return tables().to_cp; }

int byte_from_cp(uint32_t cp) { return cp < tables().from_cp.size() ? tables().from_cp[cp] : -1; }

std::string bytes_to_bpe_text(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) append_utf8(out, tables().to_cp[static_cast<uint8_t>(c)]);
  return out;
}

bool bpe_text_to_bytes(std::string_view text, std::string& out) {
  for (size_t i = 0; i < text.size();) {
    const Utf8Step st = utf8_step(text, i);
    const int b = st.ok ? byte_from_cp(st.cp) : -1;
    if (b < 0) return false;
    out += static_cast<char>(b);
    i += st.len;
  }
  return true;
}

}  // namespace bitnet::tokenizer

namespace bitnet {

std::string utf8_sanitize(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    const auto st = tokenizer::utf8_step(bytes, i);
    if (st.ok) out.append(bytes.substr(i, st.len));
    else out += "\xEF\xBF\xBD";
    i += st.len;
  }
  return out;
}

size_t utf8_complete_prefix(std::string_view bytes) {
  for (size_t i = 0; i < bytes.size();) {
    const auto st = tokenizer::utf8_step(bytes, i);
    if (st.truncated) return i;
    i += st.len;
  }
  return bytes.size();
}

}  // namespace bitnet
