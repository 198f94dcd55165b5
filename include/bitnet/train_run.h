#pragma once
// A whole training run from one JSON config file: what `bitnet train --config FILE` executes. It builds the
// model and data, trains with progress lines, writes the CSV log and SVG loss plot, saves checkpoints
// (resumable bit-exactly) and the final weights. Every field and its default is in RunConfig below:
//
//   {"model": {"vocab_size": 256, "hidden_size": 64, "num_layers": 2, ...},        // nn::ModelConfig fields
//              (HF config.json names; also head_dim, max_position_embeddings: default data.seq_len)
//    "quant": {"weight": "ternary", "activation": "int8/per_row",
//              "overrides": [{"prefix": "model.layers.0.", "weight": "int8/per_row"}]},
//    "data": {"train": "train.txt", "validation": "val.txt", "tokenizer": "tokenizer.json",
//             "seq_len": 128, "batch_size": 8, "seed": 1},
//    "train": {"steps": 1000, "grad_accum": 1, "clip_norm": 1.0, "seed": 0,
//              "bucket_mb": 25, "reduction": "allreduce",   // mpirun -np N: bitnet/distributed.h; "ordered"
//              "schedule": {"type": "two_stage", "peak_lr": 1.5e-3, "warmup_steps": 100},
//              "lambda": {"warmup_steps": 0, "shape": "linear"}, "adam": {"beta1": 0.9, "beta2": 0.95}},
//    "output": {"dir": "runs/tiny", "log_every": 10, "eval_every": 100, "eval_batches": 4,
//               "checkpoint_every": 500}}
#include <bitnet/nn.h>
#include <bitnet/train.h>

#include <cstdio>
#include <string>

namespace bitnet::train {

struct RunConfig {
  nn::ModelConfig model;
  nn::QuantPolicy quant;
  // Data: text files, read as bytes (token = byte, so model.vocab_size must be >= 256) or, with
  // data.tokenizer (a tokenizer.json or GGUF), as that tokenizer's ids. Relative paths are relative to the
  // config file.
  std::string train_path, validation_path;  // validation optional
  std::string tokenizer_path;               // empty: bytes
  int64_t seq_len = 128, batch_size = 8;
  uint64_t data_seed = 1, init_seed = 0;
  TrainOptions options;  // steps, accumulation, clipping, schedule, lambda, AdamW
  std::string output_dir = "run";
  int64_t log_every = 10, eval_every = 100, eval_batches = 4, checkpoint_every = 500;
  // Stop (with a checkpoint) once this many steps are done, to be resumed later; -1: run to train.steps.
  int64_t stop_after = -1;
  // The parsed JSON with absolute paths; run_training writes it as output_dir/run.json, where `bitnet export`
  // and `bitnet analyze` find the model's shape and tokenizer beside a checkpoint.
  std::string config_json;
};

// The run config for a checkpoint or run directory: `config` when given, else run.json beside the checkpoint
// (or in the directory). Throws saying which was looked for.
RunConfig find_run_config(const std::string& checkpoint_or_dir, const std::string& config);
// A run's weights: the checkpoint file itself, or in a directory model.safetensors (final) else
// checkpoint.safetensors.
std::string find_checkpoint(const std::string& checkpoint_or_dir);

// Parses a config (JSON text); `base_dir` resolves relative paths. Unknown keys are errors (a typo must
// not silently train with a default), and every message names the key.
RunConfig parse_run_config(const std::string& json_text, const std::string& base_dir);
RunConfig load_run_config(const std::string& path);

struct RunResult {
  double comm_wait_s = 0.0;  // seconds this rank waited for gradient sums (data parallelism; 0 alone)
  int64_t steps = 0;
  double final_loss = NAN;  // mean training loss of the last logged window
  double val_loss = NAN;    // at the end (NaN without validation data)
  double seconds = 0.0;
  double tokens_per_s = 0.0;
};

// The first `windows` x data.seq_len tokens of `text_path` (default: the run's validation text, else its
// training text) through the run's tokenizer (or bytes), as i32 [windows, seq_len]: sample inputs for
// diagnostics. Throws when the text is shorter.
Tensor run_sample_tokens(const RunConfig& config, int64_t windows, const std::string& text_path = "");

// Runs (or with resume, continues from output_dir/checkpoint.safetensors) the training. Writes into
// output_dir: run.json (the config, paths absolute), train_log.csv, loss.svg, checkpoint.safetensors (every
// checkpoint_every steps and at the end), model.safetensors (the final weights by state-dict name). Progress lines go to `progress` (null: quiet).
RunResult run_training(const RunConfig& config, bool resume, std::FILE* progress);

}  // namespace bitnet::train
