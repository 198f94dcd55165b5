// `bitnet make-model` and `bitnet bench` end to end: a tiny model with a real vocabulary, benchmarked with the
// JSON output, whose rows carry what the engine issue asks of the bench (t/s, weight bytes per token, the
// roofline fraction against the read bandwidth measured around each repetition, peak RSS).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "io_test_util.h"
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <string>

namespace {

using bitnet::test::run_command;

// A tiny model with a real vocabulary, made by the CLI for each test and removed after it.
class BenchCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string vocab = std::string(BITNET_SHARED_DATA) + "/tokenizers/ggml-vocab-llama-spm.gguf";
    if (!std::filesystem::exists(vocab)) GTEST_SKIP() << "no llama-spm vocabulary in " << BITNET_SHARED_DATA;
    if (!std::filesystem::exists(BITNET_CLI)) GTEST_SKIP() << "the CLI is not built: " << BITNET_CLI;
    // One file per test: ctest runs the tests in parallel processes.
    model = ::testing::TempDir() + "/bitnet_bench_" + ::testing::UnitTest::GetInstance()->current_test_info()->name() +
            ".gguf";
    int status = 0;
    run_command(std::string(BITNET_CLI) + " make-model --arch tiny --vocab " + vocab + " " + model + " 2>&1", &status);
    ASSERT_EQ(status, 0);
  }
  void TearDown() override {
    if (!model.empty()) std::remove(model.c_str());
  }
  std::string model;
};

TEST_F(BenchCommand, JsonRowsCarryThroughputRooflineAndPeakRss) {
  int status = 0;
  const std::string out =
      run_command(std::string(BITNET_CLI) + " bench -m " + model + " -p 16 -n 4 -r 2 -t 1 -o json 2>/dev/null", &status);
  ASSERT_EQ(status, 0) << out;
  const auto rows = nlohmann::json::parse(out);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["test"], "pp16");
  EXPECT_EQ(rows[1]["test"], "tg4");
  for (const auto& r : rows) {
    EXPECT_GT(r["avg_ts"].get<double>(), 0.0);
    EXPECT_GT(r["peak_rss_bytes"].get<double>(), 1e6);  // at least the weights
    EXPECT_EQ(r["samples_ts"].size(), 2u);
  }
  const double frac = rows[1]["roofline_fraction"].get<double>();
  EXPECT_GT(frac, 0.0);
  EXPECT_LT(frac, 5.0);  // a tiny model fits in cache, so it may beat the DRAM roofline, but not absurdly
  EXPECT_GT(rows[1]["read_bandwidth_gb_per_s"].get<double>(), 0.1);
  // Probed before and after each repetition; one roofline per repetition.
  EXPECT_EQ(rows[1]["samples_read_bandwidth_gb_per_s"].size(), 3u);
  EXPECT_EQ(rows[1]["samples_roofline_fraction"].size(), 2u);
  EXPECT_FALSE(rows[0].contains("roofline_fraction"));
  // The probe's 256 MiB buffer is not the model's memory: the reported peak leaves it out. A peak below the
  // buffer's own size shows that (a tiny model needs far less, even with ASan's shadow memory and quarantine,
  // which put it at 200 MB in the -O1 sanitizer build).
  EXPECT_LT(rows[1]["peak_rss_bytes"].get<double>(), static_cast<double>(size_t{256} << 20));
}

// -d (llama-bench's depth): the tests run after D tokens in the cache, are named "ppN @ dD", and a decode token's
// roofline counts the cache it reads: 2 (K, V) x 2 bytes x layers x kv_heads x head_dim per position. -t lists
// run every test at each thread count.
TEST_F(BenchCommand, DepthAndThreadListsGiveLlamaBenchRows) {
  int status = 0;
  const std::string out = run_command(
      std::string(BITNET_CLI) + " bench -m " + model + " -p 8 -n 4 -d 0,32 -t 1,2 -r 1 -o json 2>/dev/null", &status);
  ASSERT_EQ(status, 0) << out;
  const auto rows = nlohmann::json::parse(out);
  ASSERT_EQ(rows.size(), 8u);
  std::vector<std::string> names;
  for (const auto& r : rows) names.push_back(fmt::format("{} t{}", r["test"].get<std::string>(), r["threads"].get<int>()));
  EXPECT_EQ(names, (std::vector<std::string>{"pp8 t1", "tg4 t1", "pp8 @ d32 t1", "tg4 @ d32 t1", "pp8 t2", "tg4 t2",
                                             "pp8 @ d32 t2", "tg4 @ d32 t2"}));
  EXPECT_EQ(rows[3]["n_depth"], 32);
  EXPECT_FALSE(rows[1].contains("kv_bytes_per_token"));
  // tiny: 4 layers, 2 KV heads of 64 (TransformerConfig::tiny); positions 32 + 4/2 on average.
  EXPECT_DOUBLE_EQ(rows[3]["kv_bytes_per_token"].get<double>(), 2.0 * 2 * 4 * 2 * 64 * (32 + 2));
}

// --head: the quantized copies of the 32000 x 256 head read 1 byte (int8, rows padded to 256) and 4.5 bits
// (int4) per weight instead of 2 (f16); the rest of the bytes per token are the same.
TEST_F(BenchCommand, HeadTypeSetsTheBytesPerToken) {
  int status = 0;
  double bytes[3] = {};
  const char* heads[3] = {"f16", "int8", "int4"};
  for (int i = 0; i < 3; ++i) {
    const std::string out = run_command(std::string(BITNET_CLI) + " bench -m " + model + " -p 0 -n 2 -r 1 -t 1 -o json --head " +
                                            heads[i] + " 2>/dev/null", &status);
    ASSERT_EQ(status, 0) << heads[i] << ": " << out;
    const auto rows = nlohmann::json::parse(out);
    ASSERT_EQ(rows.size(), 1u);
    if (i > 0) {
      EXPECT_NE(rows[0]["model"].get<std::string>().find(std::string("(") + heads[i] + " head)"), std::string::npos);
    }
    bytes[i] = rows[0]["weight_bytes_per_token"].get<double>();
  }
  constexpr double kWeights = 32000.0 * 256;
  EXPECT_DOUBLE_EQ(bytes[0] - bytes[1], kWeights);              // 2 bytes -> 1 byte per weight
  EXPECT_DOUBLE_EQ(bytes[1] - bytes[2], kWeights * (1 - 4.5 / 8));  // 1 byte -> 4 bits + an f16 per 32
  EXPECT_NE(run_command(std::string(BITNET_CLI) + " bench -m " + model + " -p 0 -n 2 -r 1 --head q4 2>&1", &status)
                .find("q4"),
            std::string::npos);
  EXPECT_NE(status, 0);
}

TEST(BenchCommandErrors, MissingModelIsAClearError) {
  if (!std::filesystem::exists(BITNET_CLI)) GTEST_SKIP() << "the CLI is not built: " << BITNET_CLI;
  int status = 0;
  const std::string out =
      run_command(std::string(BITNET_CLI) + " bench -m /nonexistent/model.gguf -p 8 -n 0 -r 1 2>&1", &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(out.find("/nonexistent/model.gguf"), std::string::npos) << out;
}

}  // namespace

// batched-bench: llama-batched-bench's table for every (PP, TG, B), with N_KV and speeds that follow from the
// times, a shared prompt counted once (-pps), and the JSON forms.
TEST_F(BenchCommand, BatchedBenchRowsAndSpeeds) {
  int status = 0;
  std::string out = run_command(std::string(BITNET_CLI) + " batched-bench -m " + model +
                                    " -npp 8,16 -ntg 4 -npl 1,3 -t 1 -o json 2>/dev/null", &status);
  ASSERT_EQ(status, 0) << out;
  auto rows = nlohmann::json::parse(out);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[1]["pp"], 8);
  EXPECT_EQ(rows[1]["pl"], 3);
  EXPECT_EQ(rows[1]["n_kv"], 3 * (8 + 4));
  for (const auto& r : rows) {
    const double pl = r["pl"].get<double>(), pp = r["pp"].get<double>(), tg = r["tg"].get<double>();
    EXPECT_NEAR(r["speed_pp"].get<double>(), pl * pp / r["t_pp"].get<double>(), 1e-6 * r["speed_pp"].get<double>());
    EXPECT_NEAR(r["speed_tg"].get<double>(), pl * tg / r["t_tg"].get<double>(), 1e-6 * r["speed_tg"].get<double>());
  }
  out = run_command(std::string(BITNET_CLI) + " batched-bench -m " + model + " -npp 8 -ntg 2 -npl 4 -pps -t 1 -o jsonl 2>/dev/null",
                    &status);
  ASSERT_EQ(status, 0) << out;
  const auto shared = nlohmann::json::parse(out);
  EXPECT_EQ(shared["is_pp_shared"], 1);
  EXPECT_NEAR(shared["speed_pp"].get<double>(), 8 / shared["t_pp"].get<double>(), 1e-6 * shared["speed_pp"].get<double>());
  out = run_command(std::string(BITNET_CLI) + " batched-bench -m " + model + " -npp 8 -ntg 2 -npl 2 -t 1 2>/dev/null", &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("|    PP |     TG |    B |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |      T s |    S t/s |"),
            std::string::npos) << out;
  EXPECT_NE(out.find("|     8 |      2 |    2 |     20 |"), std::string::npos) << out;
}
