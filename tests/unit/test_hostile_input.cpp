// Inputs that must never crash a command: deep nesting in every parsed file (chat templates, train configs,
// checkpoint headers), non-regular files, absurd sizes, out-of-range flags, thread starts that fail, and
// commands or paths that do not exist. Each gets an error that names what the user passed.
#include <bitnet/chat_template.h>
#include <bitnet/error.h>
#include <bitnet/thread_pool.h>
#include <bitnet/train.h>
#include <bitnet/train_run.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "io_test_util.h"

namespace bitnet {
namespace {

using test::run_cli;

namespace fs = std::filesystem;

std::string repeat(const std::string& s, int n) {
  std::string out;
  out.reserve(s.size() * static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

std::string template_error(const std::string& source) {
  return test::error_of([&] {
    ChatTemplate t(source);
    const std::vector<ChatMessage> messages = {{"user", "hi"}};
    (void)t.render(messages, {"<s>", "</s>", true});
  });
}

TEST(HostileInput, DeepChatTemplatesAreErrorsNotStackOverflows) {
  // 5,000 nested blocks, 20,000 nested `not`, 5,000 brackets, a 100,000-term chain, 100,000 chained filters.
  EXPECT_NE(template_error(repeat("{% if true %}", 5000) + "x" + repeat("{% endif %}", 5000)).find("nest deeper"),
            std::string::npos);
  EXPECT_NE(template_error("{{ " + repeat("not ", 20000) + "true }}").find("nests deeper"), std::string::npos);
  EXPECT_NE(template_error("{{ " + repeat("(", 5000) + "1" + repeat(")", 5000) + " }}").find("nests deeper"),
            std::string::npos);
  EXPECT_NE(template_error("{{ 1" + repeat(" + 1", 100000) + " }}").find("nests deeper"), std::string::npos);
  EXPECT_NE(template_error("{{ 'a'" + repeat(" | upper", 100000) + " }}").find("nests deeper"), std::string::npos);
  EXPECT_NE(template_error("{{ " + repeat("-", 20000) + "1 }}").find("nests deeper"), std::string::npos);
  // Real templates nest a few levels: far below the limit.
  ChatTemplate ok(repeat("{% if true %}", 50) + "{{ (((1 + 2) * 3)) | string }}" + repeat("{% endif %}", 50));
  const std::vector<ChatMessage> messages = {{"user", "hi"}};
  EXPECT_EQ(ok.render(messages, {"<s>", "</s>", true}), "9");
}

// Found by fuzz_jinja: numbers and arithmetic that do not fit an int64 were undefined behaviour or an uncaught
// std::out_of_range; a repetition could allocate without bound.
TEST(HostileInput, TemplateArithmeticNeverOverflows) {
  EXPECT_NE(template_error("{{ " + repeat("7", 400) + " }}").find("out of range"), std::string::npos);
  EXPECT_NE(template_error("{{ 4611686018427387904 * 2 }}").find("integer overflow"), std::string::npos);
  EXPECT_NE(template_error("{{ 2 ** 1000000000000 }}").find("integer overflow"), std::string::npos);
  EXPECT_NE(template_error("{{ -9223372036854775807 - 2 }}").find("integer overflow"), std::string::npos);
  EXPECT_NE(template_error("{{ 'ab' * 100000000000 }}").find("repetition"), std::string::npos);
  EXPECT_NE(template_error("{{ (10.0 ** 300) | int }}").find("does not fit"), std::string::npos);
  EXPECT_NE(template_error("{{ (-9223372036854775807 - 1) | abs }}").find("integer overflow"), std::string::npos);
  EXPECT_NE(template_error("{{ -(-9223372036854775807 - 1) }}").find("integer overflow"), std::string::npos);
  const std::vector<ChatMessage> messages = {{"user", "hi"}};
  EXPECT_EQ(ChatTemplate("{{ 2 ** 62 }} {{ 7 // -2 }} {{ -7 % 3 }} {{ 'ab' * 3 }}").render(messages, {"", "", true}),
            "4611686018427387904 -4 2 ababab");
}

TEST(HostileInput, TrainConfigNumbersAreRangeChecked) {
  // Found by fuzz_train_config: 6.7e35 converted to an integer (undefined behaviour).
  for (const char* v : {"6.66667e+35", "2.5", "-1e300", "18446744073709551616"}) {
    const std::string cfg = std::string(R"({"model": {"num_layers": )") + v + "}}";
    const std::string msg = test::error_of([&] { train::parse_run_config(cfg, "."); });
    EXPECT_NE(msg.find("whole number"), std::string::npos) << v << ": " << msg;
  }
}

TEST(HostileInput, DeepTrainConfigIsAnError) {
  const std::string deep = "{\"model\": " + repeat("[", 100000) + repeat("]", 100000) + "}";
  const std::string msg = test::error_of([&] { train::parse_run_config(deep, "."); });
  EXPECT_NE(msg.find("deeper"), std::string::npos) << msg;
  EXPECT_NE(msg.find("train config"), std::string::npos) << msg;
}

TEST(HostileInput, DeepCheckpointMetadataIsAnError) {
  test::TempDir dir;
  const std::string header = "{\"__metadata__\": {\"x\": " + repeat("[", 100000) + repeat("]", 100000) + "}}";
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[static_cast<size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  std::ofstream(dir.file("ckpt.safetensors"), std::ios::binary) << file << header;
  const std::string msg = test::error_of([&] { (void)train::load_checkpoint_weights(dir.file("ckpt.safetensors")); });
  EXPECT_NE(msg.find("deeper"), std::string::npos) << msg;
  EXPECT_NE(msg.find("ckpt.safetensors"), std::string::npos) << msg;
  // A step counter that is not a number is an error naming it, not an uncaught std::invalid_argument.
  const std::string bad = R"({"__metadata__": {"format": "bitnet-trained-latent-f32", "step": "many"}})";
  std::string file2(8, '\0');
  for (int i = 0; i < 8; ++i) file2[static_cast<size_t>(i)] = static_cast<char>((bad.size() >> (8 * i)) & 0xFF);
  std::ofstream(dir.file("step.safetensors"), std::ios::binary) << file2 << bad;
  int64_t step = 0;
  const std::string msg2 = test::error_of([&] { (void)train::load_checkpoint_weights(dir.file("step.safetensors"), &step); });
  EXPECT_NE(msg2.find("'step'"), std::string::npos) << msg2;
}

#if !defined(__SANITIZE_ADDRESS__)
// Thread stacks cannot be mapped under a small address-space limit: the pool must say so, not terminate.
[[noreturn]] void start_threads_under_a_small_address_space() {
  const rlimit lim{256ull << 20, 256ull << 20};
  setrlimit(RLIMIT_AS, &lim);
  try {
    ThreadPool pool(1000);
  } catch (const Error& e) {
    std::exit(std::string(e.what()).find("could only start") != std::string::npos ? 0 : 3);
  }
  std::exit(4);  // every thread started: the limit did not bite
}

TEST(HostileInput, ThreadStartFailureIsACleanError) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // the process has threads already: re-execute, not just fork
  EXPECT_EXIT(start_threads_under_a_small_address_space(), ::testing::ExitedWithCode(0), "");
}
#endif

TEST(HostileInput, CommandsNameWhatTheUserPassed) {
  if (!fs::exists(BITNET_CLI)) GTEST_SKIP() << "the CLI is not built: " << BITNET_CLI;
  test::TempDir dir;
  const std::string model = std::string(BITNET_SOURCE_DIR) + "/models/kjv-bitnet-2m.gguf";
  const std::string fifo = dir.file("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  struct Case {
    std::string args, expect;
  };
  const Case cases[] = {
      {"frobnicate", "unknown command 'frobnicate'"},
      {"convert " + dir.file("nope.gguf") + " -o " + dir.file("o.gguf"), "nope.gguf' does not exist"},
      {"run -m " + model + " -p x -n -2", "-2"},
      {"run -m " + model + " -p x --top-k -5", "top_k must be >= 0 (0: off), got -5"},
      {"run -m " + model + " -p x --top-p 1.5", "top_p must be in (0, 1], got 1.5"},
      {"convert " + model + " -o " + dir.file("o.safetensors") + " --shard-mib 0", "shard-mib"},
      {"run -m " + fifo + " -p x", "not a regular file"},
      {"perplexity -m " + model + " -f " + fifo, "not a regular file"},
      {"perplexity -m " + model + " -f /dev/zero", "not a regular file"},
      {"run -m " + dir.path().string() + " -p x", "without config.json"},
      {"logits -m " + model + " --tokens 1,99999999 -o " + dir.file("l.npy"), "99999999"},
  };
  for (const Case& c : cases) {
    int status = 0;
    const std::string out = run_cli(c.args, &status);
    EXPECT_NE(status, 0) << c.args << "\n" << out;
    EXPECT_NE(out.find(c.expect), std::string::npos) << c.args << "\n" << out;
    EXPECT_EQ(out.find("terminate called"), std::string::npos) << c.args << "\n" << out;
  }
  // A config that asks for a billion layers fails at once, naming the estimate, instead of allocating for minutes.
  std::ofstream(dir.file("text.txt")) << "In the beginning God created the heaven and the earth.\n";
  std::ofstream(dir.file("big.json")) << R"({"model": {"vocab_size": 256, "hidden_size": 64, "intermediate_size": 128,
      "num_layers": 1000000000, "num_heads": 4, "num_kv_heads": 4},
      "data": {"train": ")" << dir.file("text.txt") << R"(", "seq_len": 8, "batch_size": 1},
      "train": {"steps": 10}, "output": {"dir": ")" << dir.file("out") << R"("}})";
  int train_status = 0;
  const std::string train_out = run_cli("train -c " + dir.file("big.json") + " -t 1", &train_status);
  EXPECT_NE(train_status, 0) << train_out;
  EXPECT_NE(train_out.find("GiB of memory"), std::string::npos) << train_out;
  // A failed conversion leaves what the user had under the output's name untouched.
  std::ofstream(dir.file("keep.gguf")) << "the user's file";
  int status = 0;
  run_cli("convert " + std::string(BITNET_GOLDEN_DIR) + "/hf/bitnet_latent -o " + dir.file("keep.gguf"), &status);
  EXPECT_NE(status, 0);
  std::ifstream kept(dir.file("keep.gguf"));
  std::string content((std::istreambuf_iterator<char>(kept)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "the user's file");
  EXPECT_FALSE(fs::exists(dir.file("keep.gguf.partial")));
}

}  // namespace
}  // namespace bitnet
