// libFuzzer: GBNF grammars and JSON schemas from requests (server `grammar`, `json_schema`, `response_format`,
// tools): parsing either succeeds or throws bitnet::Error; a parsed grammar then matches text without crashing,
// recursing without bound or growing without bound. The first byte picks GBNF or JSON Schema.
#include <bitnet/error.h>
#include <bitnet/grammar.h>

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    const auto g = data[0] & 1 ? bitnet::Grammar::from_json_schema(text) : bitnet::Grammar::parse(text);
    bitnet::GrammarMatcher m(g);
    // Feed the grammar's own text and some JSON-ish bytes: any outcome but a crash is fine.
    for (const char* probe : {"{\"a\": [1, 2.5, \"x\\u00e9\"]}", "yes", "\xC3\xA9\xF0\x9F\x98\x80", " \n\t"}) {
      m.accept(probe);
      (void)m.can_end();
    }
    m.reset();
    m.accept(text.substr(0, 64));
  } catch (const bitnet::Error&) {
  }
  return 0;
}
