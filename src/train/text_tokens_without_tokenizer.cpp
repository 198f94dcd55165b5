// The Arm cross build has no PCRE2, hence no tokenizer: training reads bytes only.
#include <bitnet/error.h>


#include "train/text_tokens.h"

namespace bitnet::train {

std::vector<int32_t> tokenize_text_file(const std::string&, const std::string& tokenizer_path) {
  fail("[train] data.tokenizer '{}': this build has no tokenizer (built without PCRE2); rebuild natively",
       tokenizer_path);
}

int64_t tokenizer_vocab_size(const std::string& tokenizer_path) {
  fail("[train] data.tokenizer '{}': this build has no tokenizer (built without PCRE2); rebuild natively",
       tokenizer_path);
}

}  // namespace bitnet::train
