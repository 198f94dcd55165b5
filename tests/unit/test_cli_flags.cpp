// The `bitnet` command line as llama.cpp users write it (issue 16): llama.cpp's single-dash long flags parse
// exactly (or are refused naming the flag), unknown commands and flags get a "did you mean", every help shows its
// defaults, and run's llama-cli flags (-f -sys --chat-template-file -r --ignore-eos -e -s, the printed random seed)
// do what llama-cli does. Runs the built CLI on a tiny random model with a real (llama-spm) vocabulary.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "io_test_util.h"

namespace {

using bitnet::test::run_cli;
using bitnet::test::run_command;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

class CliFlags : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string vocab = std::string(BITNET_SHARED_DATA) + "/tokenizers/ggml-vocab-llama-spm.gguf";
    if (!std::filesystem::exists(vocab)) GTEST_SKIP() << "no llama-spm vocabulary in " << BITNET_SHARED_DATA;
    if (!std::filesystem::exists(BITNET_CLI)) GTEST_SKIP() << "the CLI is not built: " << BITNET_CLI;
    // One file per test: ctest runs the tests in parallel processes.
    model = dir.file("tiny.gguf");
    int status = 0;
    const std::string out = run_cli("make-model --arch tiny --vocab " + vocab + " " + model, &status);
    ASSERT_EQ(status, 0) << out;
  }
  // `bitnet run -m MODEL args`: stdout only (stderr to `err` when given), exit status in *status.
  std::string run(const std::string& args, int* status, std::string* err = nullptr) {
    const std::string err_file = dir.file("stderr.txt");
    const std::string out = run_command(std::string(BITNET_CLI) + " run -m " + model + " -t 1 " + args + " 2>" + err_file, status);
    if (err != nullptr) {
      std::ifstream in(err_file);
      err->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    return out;
  }
  bitnet::test::TempDir dir;
  std::string model;
};

// What was seen: `-sys hi` read as "-s ys" ("Could not convert: --seed = ys"), `-ctk q8_0` as "-c tk".
TEST_F(CliFlags, SingleDashLongFlagsOfRunParseExactly) {
  int status = 0;
  std::string err;
  // -sys and -cnv (with -temp, -ngl 0, -ctk f16, -fa auto, -dev none): a one-turn chat from stdin.
  run("-sys hi -cnv -temp 0 -ngl 0 -ctk f16 -ctv f16 -fa auto -dev none -sm none -n 2 < /dev/null", &status, &err);
  EXPECT_EQ(status, 0) << err;
  EXPECT_FALSE(contains(err, "Could not convert")) << err;
  // The q8_0 cache runs; a KV cache type that does not exist here is refused naming the flag, the value and
  // what is supported.
  std::string out = run_cli("run -m " + model + " -p hi -n 2 -ctk q8_0 -ctv q8_0", &status);
  EXPECT_EQ(status, 0) << out;
  out = run_cli("run -m " + model + " -p hi -ctk q4_0", &status);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(contains(out, "-ctk/--cache-type-k q4_0")) << out;
  EXPECT_TRUE(contains(out, "f16, q8_0")) << out;
  EXPECT_FALSE(contains(out, "--ctx-size")) << out;
  out = run_cli("run -m " + model + " -p hi -ctv q4_0", &status);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(contains(out, "-ctv/--cache-type-v q4_0")) << out;
  out = run_cli("bench -m " + model + " -p 0 -n 1 -r 1 -ctk f16,q8_0", &status);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(contains(out, "one cache type per run")) << out;
  // Flags for things that are not built: refused by name.
  for (const char* flag : {"-ts 1,1", "-nkvo", "-fa on", "-sm row", "-mg 1", "-tb 4", "-dev CUDA1"}) {
    out = run_cli("run -m " + model + " -p hi " + flag, &status);
    EXPECT_NE(status, 0) << flag;
    const std::string name = std::string(flag).substr(0, std::string(flag).find(' '));
    EXPECT_TRUE(contains(out, name + "/--")) << flag << ": " << out;
    EXPECT_TRUE(contains(out, "not supported")) << flag << ": " << out;
  }
  // A llama.cpp flag run does not take is named as such, not read as "-c o".
  out = run_cli("run -m " + model + " -p hi -co", &status);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(contains(out, "llama.cpp's -co (--color) is not supported")) << out;
  // Only exact tokens are aliases: -ctk=f16 is not llama.cpp syntax.
  out = run_cli("run -m " + model + " -p hi -ctk=f16", &status);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(contains(out, "-ctk=f16")) << out;
}

// -hf is taken by every model command (the download itself is tested against a fake Hub in tests/hub); naming
// a model twice, or a plain URL, is an error naming the flags, never the help text.
TEST_F(CliFlags, HuggingFaceFlagsConflictsAreErrorsNotHelp) {
  for (const std::string& cmd : std::vector<std::string>{"serve", "run", "bench", "perplexity -f " + model}) {
    int status = 0;
    std::string out = run_cli(cmd + " -m " + model + " -hf ggml-org/model", &status);
    EXPECT_NE(status, 0) << cmd << ": " << out;
    EXPECT_TRUE(contains(out, "-hf ggml-org/model both name a model; give one")) << cmd << ": " << out;
    EXPECT_FALSE(contains(out, "Usage:")) << cmd << ": " << out;
    out = run_cli(cmd + " -hf 'ggml-org/model files'", &status);
    EXPECT_NE(status, 0) << cmd << ": " << out;
    EXPECT_TRUE(contains(out, "ORG/NAME")) << cmd << ": " << out;
    out = run_cli(cmd + " -mu https://example.com/m.gguf", &status);
    EXPECT_NE(status, 0) << cmd << ": " << out;
    EXPECT_TRUE(contains(out, "-mu/--model-url https://example.com/m.gguf")) << cmd << ": " << out;
    EXPECT_TRUE(contains(out, "-hf")) << cmd << ": " << out;
  }
}

// serve's -ngl and -np parse (the missing model is then the error); the server runs on the CPU, so asking for GPU
// layers is refused naming -ngl.
TEST_F(CliFlags, ServeTakesNglAndNp) {
  int status = 0;
  std::string out = run_cli("serve -m /nonexistent/m.gguf -ngl 0 -np 2 -cb -ub 256 -ctk f16", &status);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(contains(out, "/nonexistent/m.gguf")) << out;
  out = run_cli("serve -m " + model + " -ngl 99", &status);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(contains(out, "-ngl/--n-gpu-layers 99")) << out;
  EXPECT_FALSE(contains(out, "Usage:")) << out;
  out = run_cli("serve -m " + model + " -nocb", &status);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(contains(out, "-nocb/--no-cont-batching")) << out;
}

// llama-bench's -pg (prompt then generation, timed as one test) and -mmp 0|1.
TEST_F(CliFlags, BenchPromptGenAndMmap) {
  int status = 0;
  const std::string out = run_command(std::string(BITNET_CLI) + " bench -m " + model +
                                          " -p 0 -n 0 -pg 16,8 -pg 4,2 -mmp 1 -ngl 0 -ctk f16 -nkvo 0 -fa auto -r 2 -t 1 "
                                          "-o json 2>/dev/null",
                                      &status);
  ASSERT_EQ(status, 0) << out;
  const auto rows = nlohmann::json::parse(out);
  ASSERT_EQ(rows.size(), 2u) << out;
  EXPECT_EQ(rows[0]["test"], "pp16+tg8");
  EXPECT_EQ(rows[1]["test"], "pp4+tg2");
  EXPECT_GT(rows[0]["avg_ts"].get<double>(), 0.0);
  EXPECT_EQ(rows[0]["samples_ts"].size(), 2u);
  std::string err = run_cli("bench -m " + model + " -mmp 0", &status);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(contains(err, "-mmp/--mmap 0")) << err;
  err = run_cli("bench -m " + model + " -pg 16", &status);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(contains(err, "-pg '16'")) << err;
  err = run_cli("bench -m " + model + " -nkvo 1", &status);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(contains(err, "-nkvo/--no-kv-offload 1")) << err;
}

TEST(CliFlagsNoModel, DidYouMeanForCommandsAndFlags) {
  if (!std::filesystem::exists(BITNET_CLI)) GTEST_SKIP() << "the CLI is not built: " << BITNET_CLI;
  int status = 0;
  std::string out = run_cli("runn -m x", &status);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(contains(out, "unknown command 'runn'")) << out;
  EXPECT_TRUE(contains(out, "did you mean 'run'?")) << out;
  out = run_cli("run -m x --top-kk 3", &status);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(contains(out, "unknown flag '--top-kk'")) << out;
  EXPECT_TRUE(contains(out, "did you mean '--top-k'?")) << out;
  out = run_cli("bench --repetition 3", &status);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(contains(out, "did you mean '--repetitions'?")) << out;
  out = run_cli("run -m x -ctx 4096", &status);  // not llama.cpp's either: -c / --ctx-size
  EXPECT_NE(status, 0);
  EXPECT_TRUE(contains(out, "unknown flag '-ctx'")) << out;
  EXPECT_TRUE(contains(out, "--ctx-size")) << out;
  out = run_cli("run -m x --qqqqqqqq", &status);  // nothing close: named, no guess
  EXPECT_NE(status, 0);
  EXPECT_TRUE(contains(out, "unknown flag '--qqqqqqqq'")) << out;
  EXPECT_FALSE(contains(out, "did you mean")) << out;
}

TEST(CliFlagsNoModel, HelpShowsDefaults) {
  if (!std::filesystem::exists(BITNET_CLI)) GTEST_SKIP() << "the CLI is not built: " << BITNET_CLI;
  struct Case {
    const char* command;
    std::vector<std::string> expect;
  };
  const Case cases[] = {
      {"run", {"--temp FLOAT=0.8", "--top-k INT=40", "--top-p FLOAT=0.95", "--min-p FLOAT=0.05", "=128", "=2048",
               "-s,--seed INT", "=-1", "--cache-type-k TYPE=f16", "--threads INT:INT in [1 - 1024]=auto"}},
      {"bench", {"-p,--n-prompt INT=[512]", "-n,--n-gen INT=[128]", "=5", "TEXT:{md,csv,json,jsonl,html}=md", "-mmp"}},
      {"perplexity", {"-c,--ctx-size INT:INT in [4 - 1048576]=512", "--chunks INT:INT in [-1 - 1073741824]=-1"}},
      {"make-model", {"=bitnet-b1.58-2b4t", "=i2_s", "--seed UINT=1"}},
      {"serve", {"--port INT:INT in [0 - 65535]=8080", "--host TEXT=127.0.0.1"}},
  };
  for (const auto& c : cases) {
    int status = 0;
    const std::string out = run_cli(std::string(c.command) + " --help", &status);
    EXPECT_EQ(status, 0) << c.command;
    for (const auto& e : c.expect) EXPECT_TRUE(contains(out, e)) << c.command << " --help lacks '" << e << "':\n" << out;
  }
}

TEST_F(CliFlags, FileGivesThePrompt) {
  {
    std::ofstream f(dir.file("prompt.txt"));
    f << "Once upon a time\n";  // one trailing newline is dropped, as llama.cpp's -f does
  }
  int status = 0;
  const std::string from_file = run("-f " + dir.file("prompt.txt") + " -n 6 --temp 0", &status);
  ASSERT_EQ(status, 0);
  const std::string from_flag = run("-p 'Once upon a time' -n 6 --temp 0", &status);
  ASSERT_EQ(status, 0);
  EXPECT_EQ(from_file, from_flag);
  EXPECT_EQ(from_file.rfind("Once upon a time", 0), 0u) << from_file;
  EXPECT_GT(from_file.size(), std::string("Once upon a time").size());
  std::string err;
  run("-f " + dir.file("missing.txt"), &status, &err);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(contains(err, "missing.txt")) << err;
  run("-f " + dir.file("prompt.txt") + " -p x", &status, &err);  // one or the other
  EXPECT_NE(status, 0);
}

// -sys is the chat's system message; -p then opens the conversation as the first user message. The rendered
// prompt (-v) comes from --chat-template-file, so the test sees exactly which messages went in.
TEST_F(CliFlags, SystemPromptGoesIntoTheChat) {
  {
    std::ofstream f(dir.file("tmpl.jinja"));
    f << "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}";
  }
  int status = 0;
  std::string out = run_command("printf 'hello there\\n' | " + std::string(BITNET_CLI) + " run -m " + model +
                                    " -t 1 -cnv -sys 'Be brief.' --chat-template-file " + dir.file("tmpl.jinja") +
                                    " -v -n 2 --temp 0 2>&1",
                                &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_TRUE(contains(out, "<system>Be brief.<user>hello there<assistant>")) << out;
  // With -sys, -p is the first user turn (and -st ends the chat after it, reading no input).
  out = run_command(std::string(BITNET_CLI) + " run -m " + model + " -t 1 -cnv -st -sys S -p 'first turn' --chat-template-file " +
                        dir.file("tmpl.jinja") + " -v -n 2 --temp 0 < /dev/null 2>&1",
                    &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_TRUE(contains(out, "<system>S<user>first turn<assistant>")) << out;
  // Without -cnv, -sys would be ignored: it is an error instead.
  out = run_cli("run -m " + model + " -sys S -p x", &status);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(contains(out, "-sys")) << out;
  EXPECT_TRUE(contains(out, "-cnv")) << out;
}

// A random model repeats its prompt's last token, so a prompt ending in </s> (the EOS) makes it stop at once;
// --ignore-eos generates the whole budget.
TEST_F(CliFlags, IgnoreEosGeneratesTheWholeBudget) {
  int status = 0;
  std::string err;
  run("-p 'hello </s>' -n 8 --temp 0", &status, &err);
  ASSERT_EQ(status, 0) << err;
  EXPECT_TRUE(contains(err, "generated: 0 tokens")) << err;  // the model's EOS ends it
  run("-p 'hello </s>' -n 8 --temp 0 --ignore-eos", &status, &err);
  ASSERT_EQ(status, 0) << err;
  EXPECT_TRUE(contains(err, "generated: 8 tokens")) << err;
  EXPECT_TRUE(contains(err, "length")) << err;
}

// -r outside chat is a stop string: the model repeats "two", so it stops before printing any.
TEST_F(CliFlags, ReversePromptStopsGeneration) {
  int status = 0;
  const std::string free_run = run("-p 'one two two two' -n 6 --temp 0", &status);
  ASSERT_EQ(status, 0);
  ASSERT_TRUE(contains(free_run.substr(15), "two")) << free_run;  // the continuation repeats it
  std::string err;
  const std::string stopped = run("-p 'one two two two' -n 6 --temp 0 -r two", &status, &err);
  ASSERT_EQ(status, 0) << err;
  EXPECT_EQ(stopped.rfind("one two two two", 0), 0u) << stopped;
  EXPECT_FALSE(contains(stopped.substr(15), "two")) << stopped;
  EXPECT_TRUE(contains(err, ", stop")) << err;
}

// llama.cpp's sampling constraints: -l/--logit-bias TOKEN_ID(+/-)BIAS, --grammar (GBNF), -j/--json-schema.
TEST_F(CliFlags, LogitBiasAndGrammarConstrainTheOutput) {
  int status = 0;
  // The random model repeats " two" (id 1023 in the llama-spm vocabulary): banned, it is never printed.
  const std::string ids = run_cli("tokenize -m " + model + " -p ' two' --ids-only", &status);
  ASSERT_TRUE(contains(ids, "1023")) << ids;
  std::string out = run("-p 'one two two two' -n 6 --temp 0 -l 1023-inf", &status);
  ASSERT_EQ(status, 0);
  EXPECT_FALSE(contains(out.substr(15), "two")) << out;
  out = run("-p 'one two two two' -n 6 --temp 0 -l 1023+0", &status);
  EXPECT_TRUE(contains(out.substr(15), "two")) << out;
  std::string err;
  out = run("-p 'Answer:' -n 8 --temp 0 --grammar 'root ::= \"yes\" | \"no\"'", &status, &err);
  ASSERT_EQ(status, 0) << err;
  EXPECT_TRUE(out == "Answer:yes" || out == "Answer:no") << out;
  out = run("-p x -n 40 -s 1 --no-display-prompt -j '{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},"
            "\"required\":[\"a\"]}'",
            &status, &err);
  ASSERT_EQ(status, 0) << err;
  EXPECT_EQ(out.rfind("{", 0), 0u) << out;  // a JSON object starts at once
  out = run_cli("run -m " + model + " -p x -l 12x", &status);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(contains(out, "-l/--logit-bias '12x'")) << out;
  out = run_cli("run -m " + model + " -p x --grammar 'root ::= foo'", &status);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(contains(out, "foo")) << out;
}

TEST_F(CliFlags, RandomSeedIsPrintedAndRepeatable) {
  const std::string wide = " -p 'Once upon a time' -n 16 --temp 10 --top-k 0 --top-p 1 --min-p 0 --no-display-prompt";
  int status = 0;
  std::string err1, err2;
  const std::string a = run(wide, &status, &err1);
  ASSERT_EQ(status, 0) << err1;
  const std::string b = run(wide, &status, &err2);
  ASSERT_EQ(status, 0) << err2;
  std::smatch m1, m2;
  ASSERT_TRUE(std::regex_search(err1, m1, std::regex("seed: ([0-9]+)"))) << err1;
  ASSERT_TRUE(std::regex_search(err2, m2, std::regex("seed: ([0-9]+)"))) << err2;
  EXPECT_NE(m1[1].str(), m2[1].str());  // drawn each run (two equal 32-bit draws: 1 in 4 billion)
  EXPECT_NE(a, b);                      // temperature 10 over the whole vocabulary: different text
  // The printed seed repeats the run.
  EXPECT_EQ(run(wide + " -s " + m1[1].str(), &status), a);
  // -s N twice: the same text; another N: other text.
  const std::string s42 = run(wide + " -s 42", &status, &err1);
  EXPECT_TRUE(contains(err1, "seed: 42")) << err1;
  EXPECT_EQ(run(wide + " -s 42", &status), s42);
  EXPECT_NE(run(wide + " -s 43", &status), s42);
  std::string out = run_cli("run -m " + model + " -p x -s -2", &status);
  EXPECT_NE(status, 0) << out;
}

TEST_F(CliFlags, EscapesInThePromptAreProcessed) {
  int status = 0;
  // The prompt is echoed as given to the model: with escapes on (llama.cpp's default) "\n" is a newline.
  std::string out = run("-p 'a\\nb\\tc\\\\d' -n 1 --temp 0", &status);
  ASSERT_EQ(status, 0);
  EXPECT_EQ(out.rfind("a\nb\tc\\d", 0), 0u) << out;
  out = run("-e -p 'a\\nb' -n 1 --temp 0", &status);
  EXPECT_EQ(out.rfind("a\nb", 0), 0u) << out;
  out = run("--no-escape -p 'a\\nb' -n 1 --temp 0", &status);
  ASSERT_EQ(status, 0);
  EXPECT_EQ(out.rfind("a\\nb", 0), 0u) << out;
}

TEST_F(CliFlags, KeepShiftsTheContextAndChatOnlyFlagsAreRefused) {
  int status = 0;
  // --keep turns the context shift on: -n 60 past a 32-position context runs to its budget.
  std::string out = run_cli("run -m " + model + " -p x -c 32 -n 60 --ignore-eos --temp 0 --keep 1 -v", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_TRUE(contains(out, "generated: 60 tokens")) << out;
  out = run_cli("run -m " + model + " -p x -c 32 -n 60 --ignore-eos --temp 0", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_FALSE(contains(out, "generated: 60 tokens")) << out;  // without: it stops at the full context
  out = run_cli("run -m " + model + " -p x --keep -5", &status);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(contains(out, "--keep")) << out;
  out = run_cli("run -m " + model + " -p x -cnv --chat-template chatml < /dev/null", &status);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(contains(out, "--chat-template 'chatml'")) << out;
  out = run_cli("run -m " + model + " -p x --no-jinja", &status);
  EXPECT_NE(status, 0);
  EXPECT_TRUE(contains(out, "--no-jinja")) << out;
  out = run_cli("run -m " + model + " -p x --jinja -n 1", &status);
  EXPECT_EQ(status, 0) << out;
}

}  // namespace
