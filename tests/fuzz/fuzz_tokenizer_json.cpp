// libFuzzer: Hugging Face tokenizer.json (+ tokenizer_config.json) loading, then encoding and decoding with what
// loaded. Either the load throws bitnet::Error or the tokenizer encodes and decodes without a fault. The input is
// tokenizer.json, optionally followed by a NUL byte and the tokenizer_config.json that sits beside it.
#include <bitnet/error.h>
#include <bitnet/tokenizer.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

namespace {

void write_file(const std::string& path, std::string_view bytes) {
  if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The loader takes a directory: one per process, its two files rewritten for each input.
  static const std::string dir = [] {
    std::string d = "/tmp/bitnet-fuzz-tokenizer-" + std::to_string(getpid());
    std::filesystem::create_directories(d);
    return d;
  }();
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  write_file(dir + "/tokenizer.json", input.substr(0, nul));
  const std::string config = dir + "/tokenizer_config.json";
  if (nul != std::string_view::npos) write_file(config, input.substr(nul + 1));
  else std::filesystem::remove(config);
  try {
    const auto tok = bitnet::Tokenizer::from_hf(dir);
    // Plain text, a special token written out, a byte that is not UTF-8, digits and spaces for the splitters.
    for (std::string_view text : {std::string_view("Hello world, 12345!"), std::string_view("<s> a</s>\n\n  b"),
                                  std::string_view("\xff\xfe caf\xc3\xa9 \xe2\x82")}) {
      const auto ids = tok->encode(text, true, true);
      volatile size_t sink = tok->decode(ids, false).size() + tok->decode(ids, true).size();
      (void)sink;
    }
    if (tok->vocab_size() > 0) {
      volatile size_t sink = tok->token_to_piece(tok->vocab_size() - 1).size() + tok->chat_template().size();
      (void)sink;
    }
  } catch (const bitnet::Error&) {
  }
  return 0;
}
