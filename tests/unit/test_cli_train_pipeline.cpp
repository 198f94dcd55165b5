// The training pipeline through the CLI, as scripts/train_kjv.sh runs it: tokenizer-train, train (with the
// tokenizer), export (GGUF + HF dir, config found through run.json), run on the export, analyze with --since.
#include <bitnet/engine.h>
#include <bitnet/model.h>
#include <bitnet/tokenizer.h>
#include <gtest/gtest.h>

#include "io_test_util.h"
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace bitnet {
namespace {

using test::run_cli;

namespace fs = std::filesystem;

TEST(CliTrainPipeline, TokenizerTrainExportRunAnalyze) {
  if (!fs::exists(BITNET_CLI)) GTEST_SKIP() << "the CLI is not built: " << BITNET_CLI;
  const fs::path d = fs::temp_directory_path() / ("bitnet_pipeline_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  std::string text;
  for (int i = 0; i < 40; ++i)
    text += "And God said, Let there be light: and there was light. And God saw the light, that it was good.\n";
  std::ofstream(d / "train.txt") << text;
  std::ofstream(d / "val.txt") << text.substr(0, 1200);
  std::ofstream(d / "run.json") << R"({"model": {"vocab_size": 300, "hidden_size": 32, "intermediate_size": 64,
      "num_layers": 1, "num_heads": 2, "num_kv_heads": 2},
    "data": {"train": "train.txt", "validation": "val.txt", "tokenizer": "tokenizer.json", "seq_len": 16,
             "batch_size": 2},
    "train": {"steps": 12, "schedule": {"type": "two_stage", "peak_lr": 0.01, "warmup_steps": 2}},
    "output": {"dir": "out", "log_every": 4, "eval_every": 6, "eval_batches": 1, "checkpoint_every": 6}})";
  int status = 0;
  std::string out = run_cli("tokenizer-train " + (d / "train.txt").string() + " --vocab-size 280 -o " +
                                (d / "tokenizer.json").string(), &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("280 tokens"), std::string::npos) << out;

  out = run_cli("train -q -t 1 -c " + (d / "run.json").string(), &status);
  ASSERT_EQ(status, 0) << out;
  ASSERT_TRUE(fs::exists(d / "out" / "run.json"));
  fs::copy_file(d / "out" / "checkpoint.safetensors", d / "step12.safetensors");

  // Export from the run dir (config from out/run.json), then run the GGUF and reload the HF dir.
  out = run_cli("export " + (d / "out").string() + " -o " + (d / "m.gguf").string() + " --hf " + (d / "hf").string(),
                &status);
  ASSERT_EQ(status, 0) << out;
  for (const char* f : {"model.safetensors", "config.json", "tokenizer.json"}) EXPECT_TRUE(fs::exists(d / "hf" / f)) << f;
  const auto tok = Tokenizer::load((d / "m.gguf").string());
  EXPECT_EQ(tok->vocab_size(), 280);
  out = run_cli("run -m " + (d / "m.gguf").string() + " -p 'And God said' -n 6 --temp 0 -t 1", &status);
  ASSERT_EQ(status, 0) << out;
  // The exported embedding has 300 rows for 280 tokens: the padded ids are masked, and the user is told so.
  EXPECT_NE(out.find("ids 280..299 have no token and are never sampled\nAnd God said"), std::string::npos) << out;
  const Model from_hf = Model::load((d / "hf").string());
  EXPECT_EQ(from_hf.config().hidden, 32);

  // A wrong ternary layout for this shape fails naming the tensor.
  out = run_cli("export " + (d / "out").string() + " -o " + (d / "bad.gguf").string() + " -t tq2_0", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(out.find("256"), std::string::npos) << out;

  out = run_cli("analyze " + (d / "out" / "checkpoint.safetensors").string() + " --since " +
                    (d / "step12.safetensors").string() + " --windows 2 -t 1", &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("model.layers.0.mlp.down_proj"), std::string::npos) << out;
  EXPECT_NE(out.find("0 (0.00%)"), std::string::npos) << out;  // the same weights: nothing flipped
  out = run_cli("analyze " + (d / "out").string() + " --json --windows 2 -t 1", &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("\"zero_fraction\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"flips\": null"), std::string::npos) << out;  // no --since
  fs::remove_all(d);
}

}  // namespace
}  // namespace bitnet
