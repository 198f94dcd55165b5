// libFuzzer: a GGUF file's tokenizer (tokenizer.ggml.*: byte-level BPE or SentencePiece, tokens, types, scores,
// merges, special ids, chat template). Either Tokenizer::from_gguf throws bitnet::Error or the tokenizer encodes
// and decodes without a fault.
#include <bitnet/error.h>
#include <bitnet/gguf.h>
#include <bitnet/tokenizer.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto f = bitnet::GgufFile::from_bytes({reinterpret_cast<const std::byte*>(data), size}, "fuzz.gguf");
    const auto tok = bitnet::Tokenizer::from_gguf(f);
    // Plain text, special tokens written out, bytes that are not UTF-8, digits and spaces for the splitters.
    for (std::string_view text : {std::string_view("hello world, 12345!"), std::string_view("<s> a</s>\n\n  b"),
                                  std::string_view("\xff\xfe caf\xc3\xa9 \xe2\x82"), std::string_view("")}) {
      for (const bool special : {false, true}) {
        const auto ids = tok->encode(text, true, special);
        volatile size_t sink = tok->decode(ids, false).size() + tok->decode(ids, true).size();
        (void)sink;
      }
    }
    for (int32_t id = 0; id < tok->vocab_size() && id < 512; ++id) {
      volatile size_t sink = tok->token_to_piece(id).size() + static_cast<size_t>(tok->is_eog(id));
      (void)sink;
    }
  } catch (const bitnet::Error&) {
  }
  return 0;
}
