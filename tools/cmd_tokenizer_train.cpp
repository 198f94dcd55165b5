// `bitnet tokenizer-train FILE... -o tokenizer.json --vocab-size N`: learns a byte-level BPE tokenizer (see
// bitnet/bpe_train.h) and writes it as a Hugging Face tokenizer.json.
#include <bitnet/bpe_train.h>
#include <bitnet/error.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "commands.h"

namespace bitnet::cli {

void add_tokenizer_train_command(CLI::App& app, Action& selected) {
  auto* cmd = app.add_subcommand("tokenizer-train", "Learn a byte-level BPE tokenizer from text files (tokenizer.json)");
  auto inputs = std::make_shared<std::vector<std::string>>();
  auto output = std::make_shared<std::string>("tokenizer.json");
  auto options = std::make_shared<BpeTrainOptions>();
  cmd->add_option("inputs", *inputs, "Text files (UTF-8) to learn from")->required()->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", *output, "The tokenizer.json to write")->capture_default_str();
  cmd->add_option("--vocab-size", options->vocab_size, "Tokens: 256 bytes + merges + special tokens")
      ->capture_default_str()
      ->check(CLI::Range(257, 1 << 20));
  cmd->add_option("--min-frequency", options->min_frequency, "Pairs seen fewer times are not merged")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  cmd->callback([&selected, inputs, output, options] {
    selected = [inputs, output, options]() {
      std::string text;
      for (const std::string& path : *inputs) {
        std::ifstream in(path, std::ios::binary);
        BITNET_CHECK(in.good(), "[tokenizer-train] cannot open '{}'", path);
        std::stringstream ss;
        ss << in.rdbuf();
        text += ss.str();
      }
      const auto t0 = std::chrono::steady_clock::now();
      const BpeVocabulary v = train_bpe(text, *options);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      write_bpe_tokenizer_json(v, *output);
      std::printf("bitnet tokenizer-train: %zu tokens (%zu merges, %zu special) from %zu bytes in %.1f s -> %s\n",
                  v.tokens.size(), v.merges.size(), v.tokens.size() - static_cast<size_t>(v.first_special),
                  text.size(), s, output->c_str());
      return 0;
    };
  });
}

}  // namespace bitnet::cli
