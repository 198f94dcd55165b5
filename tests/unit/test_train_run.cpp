// A training run from a JSON config: strict parsing, the files a run writes, and stop-then-resume giving
// exactly the weights and log of an uninterrupted run.
#include <bitnet/train_log.h>
#include <bitnet/train_run.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>

namespace bitnet::test {
namespace {

namespace fs = std::filesystem;

fs::path make_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / (name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  std::string text;
  for (int i = 0; i < 60; ++i) text += "ternary weights are minus one, zero or plus one; ";
  std::ofstream(d / "train.txt") << text;
  std::ofstream(d / "val.txt") << text.substr(0, 400);
  return d;
}

std::string config_json(const std::string& out, int64_t stop_after) {
  return R"({"model": {"hidden_size": 16, "intermediate_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1},
             "quant": {"weight": "ternary", "overrides": [{"prefix": "model.layers.0.mlp.", "weight": "int4/group16"}]},
             "data": {"train": "train.txt", "validation": "val.txt", "seq_len": 16, "batch_size": 2},
             "train": {"steps": 20, "grad_accum": 2, "schedule": {"type": "two_stage", "peak_lr": 0.01, "warmup_steps": 2},
                       "lambda": {"warmup_steps": 8}},
             "output": {"dir": ")" + out + R"(", "log_every": 5, "eval_every": 10, "eval_batches": 2,
                        "checkpoint_every": 10, "stop_after": )" + std::to_string(stop_after) + "}}";
}

TEST(TrainRun, ParsesStrictlyWithDefaults) {
  const train::RunConfig c = train::parse_run_config(config_json("o", -1), "/base");
  EXPECT_EQ(c.model.hidden, 16);
  EXPECT_EQ(c.model.vocab, 256);  // byte-level default
  EXPECT_EQ(c.train_path, "/base/train.txt");
  EXPECT_EQ(c.output_dir, "/base/o");
  EXPECT_EQ(c.quant.overrides.at(0).weight.str(), "int4/group16");
  EXPECT_EQ(c.quant.overrides.at(0).activation, nn::QuantSpec::int8_per_token());
  EXPECT_EQ(c.options.quant_lambda.warmup_steps, 8);
  EXPECT_DOUBLE_EQ(c.options.schedule(1).lr, 0.01);
  EXPECT_DOUBLE_EQ(c.options.schedule(10).weight_decay, 0.0);  // stage 2 at 50% of 20 steps

  auto error_of = [](const std::string& text) {
    try {
      train::parse_run_config(text, ".");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of(R"({"data": {"train": "t"}, "train": {"steps": 10, "lr": 1}})").find("unknown key 'config.train.lr'"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"train": {"steps": 10}})").find("'config.data.train' is required"), std::string::npos);
  EXPECT_NE(error_of(R"({"model": {"vocab_size": 100}, "data": {"train": "t"}, "train": {"steps": 10}})").find("256"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"model": {"activation": "gelu"}})").find("relu2 or silu"), std::string::npos);
  EXPECT_NE(error_of(R"({"quant": {"weight": "int3x"}})").find("int3x"), std::string::npos);
  EXPECT_NE(error_of("{not json").find("invalid JSON"), std::string::npos);
  const std::string wd = R"({"data": {"train": "t"}, "train": {"steps": 100, "schedule": {"stage1_wd_shape": "SHAPE"}}})";
  EXPECT_NE(error_of(std::regex_replace(wd, std::regex("SHAPE"), "linear")).find("stage1_wd_shape"), std::string::npos);
  const train::RunConfig cw = train::parse_run_config(std::regex_replace(wd, std::regex("SHAPE"), "cosine"), ".");
  EXPECT_NEAR(cw.options.schedule(25).weight_decay, 0.05, 1e-12);
  EXPECT_EQ(cw.model.context, 128);  // max_position_embeddings defaults to data.seq_len
}

TEST(TrainRun, RunJsonBesideTheCheckpointFindsTheConfig) {
  const fs::path dir = make_dir("bitnet_runjson");
  std::string text = config_json("out", -1);
  text = std::regex_replace(text, std::regex(R"("steps": 20)"), R"("steps": 6)");
  train::run_training(train::parse_run_config(text, dir.string()), false, nullptr);
  const train::RunConfig back = train::find_run_config((dir / "out" / "checkpoint.safetensors").string(), "");
  EXPECT_EQ(back.model.hidden, 16);
  EXPECT_EQ(back.train_path, (dir / "train.txt").string());  // absolute: the run dir can be read from anywhere
  EXPECT_EQ(train::find_checkpoint((dir / "out").string()), (dir / "out" / "model.safetensors").string());
  EXPECT_THROW(train::find_run_config(dir.string(), ""), Error);  // no run.json there
  fs::remove_all(dir);
}

TEST(TrainRun, StopAndResumeMatchesUninterruptedRun) {
  const fs::path dir = make_dir("bitnet_run");
  const train::RunResult straight =
      train::run_training(train::parse_run_config(config_json("straight", -1), dir.string()), false, nullptr);
  EXPECT_EQ(straight.steps, 20);
  for (const char* f : {"train_log.csv", "loss.svg", "checkpoint.safetensors", "model.safetensors"})
    EXPECT_TRUE(fs::exists(dir / "straight" / f)) << f;
  EXPECT_FALSE(std::isnan(straight.val_loss));

  const train::RunResult first =
      train::run_training(train::parse_run_config(config_json("split", 10), dir.string()), false, nullptr);
  EXPECT_EQ(first.steps, 10);
  EXPECT_FALSE(fs::exists(dir / "split" / "model.safetensors"));  // not finished yet
  const train::RunResult second =
      train::run_training(train::parse_run_config(config_json("split", -1), dir.string()), true, nullptr);
  EXPECT_EQ(second.steps, 20);

  // Same weights, bit for bit, and the same logged losses.
  const auto a = train::read_safetensors_f32((dir / "straight" / "model.safetensors").string(), nullptr);
  const auto b = train::read_safetensors_f32((dir / "split" / "model.safetensors").string(), nullptr);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_EQ(t.to_vector(), b.at(name).to_vector()) << name;
  const auto la = train::read_train_log((dir / "straight" / "train_log.csv").string());
  const auto lb = train::read_train_log((dir / "split" / "train_log.csv").string());
  ASSERT_EQ(la.size(), lb.size());
  for (size_t i = 0; i < la.size(); ++i) {
    EXPECT_EQ(la[i].step, lb[i].step);
    EXPECT_EQ(la[i].loss, lb[i].loss) << "row " << i;
    EXPECT_TRUE(std::isnan(la[i].val_loss) ? std::isnan(lb[i].val_loss) : la[i].val_loss == lb[i].val_loss) << i;
  }
  EXPECT_LT(la.back().loss, la.front().loss);
  EXPECT_THROW(train::run_training(train::parse_run_config(config_json("fresh", -1), dir.string()), true, nullptr),
               Error);  // nothing to resume from
  fs::remove_all(dir);
}

}  // namespace
}  // namespace bitnet::test
