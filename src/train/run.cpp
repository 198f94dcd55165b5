// A training run from a JSON config: parse (strictly), build, train, report, checkpoint, resume.
#include <bitnet/files.h>
#include <bitnet/memory.h>
#include <bitnet/analyze.h>
#include <bitnet/train_log.h>
#include <bitnet/train_report.h>
#include <bitnet/train_run.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "io/json_util.h"
#include "train/text_tokens.h"

namespace bitnet::train {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
// Reads the keys of one JSON object, remembering which were used so unknown ones can be reported.
class Section {
 public:
  Section(const json& j, std::string where) : j_(j), where_(std::move(where)) {
    BITNET_CHECK(j.is_object(), "[train config] '{}' must be an object, got {}", where_, j.dump().substr(0, 80));
  }
  template <class T>
  T get(const std::string& key, T fallback) {
    used_.insert(key);
    if (!j_.contains(key)) return fallback;
    const json& v = j_.at(key);
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      // Numbers are range-checked before conversion (a float such as 1e300 does not fit an integer), and a
      // float is taken only when it is a whole number (1e9 is a billion; 2.5 layers is an error).
      const auto lo = static_cast<double>(std::numeric_limits<T>::min());
      const auto hi = static_cast<double>(std::numeric_limits<T>::max());
      const bool whole = v.is_number_integer() || (v.is_number_float() && std::isfinite(v.get<double>()) &&
                                                   std::floor(v.get<double>()) == v.get<double>());
      const double d = v.is_number() ? v.get<double>() : 0.0;
      if (!v.is_number() || !whole || !(d >= lo && d < hi + 1.0) ||
          (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<T>::max())))
        fail("[train config] '{}.{}' must be a whole number in [{}, {}], got {}", where_, key,
             std::numeric_limits<T>::min(), std::numeric_limits<T>::max(), v.dump().substr(0, 40));
      return v.is_number_float() ? static_cast<T>(d) : v.get<T>();
    }
    try {
      return v.get<T>();
    } catch (const json::exception&) {
      fail("[train config] '{}.{}' has the wrong type: {}", where_, key, v.dump().substr(0, 80));
    }
  }
  template <class T>
  T require(const std::string& key) {
    BITNET_CHECK(j_.contains(key), "[train config] '{}.{}' is required", where_, key);
    return get<T>(key, T{});
  }
  bool has(const std::string& key) const { return j_.contains(key); }
  Section child(const std::string& key) {
    used_.insert(key);
    static const json kEmpty = json::object();
    return Section(j_.contains(key) ? j_.at(key) : kEmpty, where_ + "." + key);
  }
  const json& raw(const std::string& key) {
    used_.insert(key);
    return j_.at(key);
  }
  void finish() const {
    for (const auto& [key, value] : j_.items())
      BITNET_CHECK(used_.count(key), "[train config] unknown key '{}.{}' (a typo?)", where_, key);
  }

 private:
  const json& j_;
  std::string where_;
  std::set<std::string> used_;
};

// Only regular files, bounded (a FIFO or /dev/zero is refused by name, never read forever).
std::string read_file(const std::string& path, uint64_t max_bytes) { return read_regular_file(path, max_bytes); }

std::vector<int32_t> byte_tokens(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::is_regular_file(path, ec) ? std::filesystem::file_size(path, ec) : 0;
  check_memory_for(static_cast<uint64_t>(size) * 5, fmt::format("[train] the byte tokens of '{}'", path));  // text + int32 ids
  const std::string text = read_file(path, uint64_t{1} << 40);
  std::vector<int32_t> out(text.size());
  for (size_t i = 0; i < text.size(); ++i) out[i] = static_cast<unsigned char>(text[i]);
  return out;
}

std::string resolve(const std::string& base, const std::string& p) {
  return p.empty() || fs::path(p).is_absolute() ? p : (fs::path(base) / p).string();
}
}  // namespace

RunConfig parse_run_config(const std::string& text, const std::string& base_dir) {
  // Strict: a duplicated key or nesting deeper than 32 levels (a config has 3) is an error, not a crash later.
  const json root = io::parse_json_strict(text, "[train config]", 32);
  RunConfig c;
  Section top(root, "config");

  // HF config.json names for the fields of the engine's TransformerConfig (nn::ModelConfig is one).
  Section m = top.child("model");
  c.model.vocab = m.get<int64_t>("vocab_size", c.model.vocab);
  c.model.hidden = m.get<int64_t>("hidden_size", c.model.hidden);
  c.model.ffn = m.get<int64_t>("intermediate_size", c.model.ffn);
  c.model.layers = m.get<int64_t>("num_layers", c.model.layers);
  c.model.heads = m.get<int64_t>("num_heads", c.model.heads);
  c.model.kv_heads = m.get<int64_t>("num_kv_heads", c.model.kv_heads);
  c.model.head_dim = m.get<int64_t>("head_dim", c.model.head_dim);
  const int64_t context = m.get<int64_t>("max_position_embeddings", -1);  // default: data.seq_len
  c.model.rope_theta = m.get<float>("rope_theta", c.model.rope_theta);
  c.model.norm_eps = m.get<float>("rms_norm_eps", c.model.norm_eps);
  c.model.tie_embeddings = m.get<bool>("tie_embeddings", c.model.tie_embeddings);
  c.model.init_std = m.get<double>("init_std", c.model.init_std);
  const std::string act = m.get<std::string>("activation", "relu2");
  BITNET_CHECK(act == "relu2" || act == "silu", "[train config] 'model.activation' must be relu2 or silu, got '{}'", act);
  c.model.activation = act == "relu2" ? nn::Activation::relu2 : nn::Activation::silu;
  m.finish();

  Section q = top.child("quant");
  c.quant.weight = nn::QuantSpec::parse(q.get<std::string>("weight", c.quant.weight.str()));
  c.quant.activation = nn::QuantSpec::parse(q.get<std::string>("activation", c.quant.activation.str()));
  if (q.has("overrides")) {
    const json& list = q.raw("overrides");
    BITNET_CHECK(list.is_array(), "[train config] 'quant.overrides' must be an array");
    for (size_t i = 0; i < list.size(); ++i) {
      Section o(list[i], fmt::format("quant.overrides[{}]", i));
      nn::QuantPolicy::Override ov;
      ov.prefix = o.require<std::string>("prefix");
      ov.weight = nn::QuantSpec::parse(o.get<std::string>("weight", c.quant.weight.str()));
      ov.activation = nn::QuantSpec::parse(o.get<std::string>("activation", c.quant.activation.str()));
      o.finish();
      c.quant.overrides.push_back(ov);
    }
  }
  q.finish();

  Section d = top.child("data");
  c.train_path = resolve(base_dir, d.require<std::string>("train"));
  c.validation_path = resolve(base_dir, d.get<std::string>("validation", ""));
  c.seq_len = d.get<int64_t>("seq_len", c.seq_len);
  c.batch_size = d.get<int64_t>("batch_size", c.batch_size);
  c.data_seed = d.get<uint64_t>("seed", c.data_seed);
  c.tokenizer_path = resolve(base_dir, d.get<std::string>("tokenizer", ""));
  d.finish();
  c.model.context = context > 0 ? context : c.seq_len;
  c.model.validate();
  if (c.tokenizer_path.empty()) {
    BITNET_CHECK(c.model.vocab >= 256, "[train config] byte-level data needs model.vocab_size >= 256, got {}",
                 c.model.vocab);
  } else {
    const int64_t n = tokenizer_vocab_size(c.tokenizer_path);
    BITNET_CHECK(c.model.vocab >= n, "[train config] model.vocab_size ({}) is smaller than the {} tokens of data.tokenizer '{}'",
                 c.model.vocab, n, c.tokenizer_path);
  }

  Section t = top.child("train");
  TrainOptions& o = c.options;
  o.total_steps = t.require<int64_t>("steps");
  o.grad_accum = t.get<int64_t>("grad_accum", o.grad_accum);
  // Data parallelism (mpirun): the size of the gradient buckets summed across ranks during the backward pass.
  const double bucket_mb = t.get<double>("bucket_mb", static_cast<double>(o.bucket_bytes) / 1048576.0);
  BITNET_CHECK(bucket_mb > 0.0 && bucket_mb <= 4096.0, "[train config] 'train.bucket_mb' must be in (0, 4096], got {}", bucket_mb);
  o.bucket_bytes = static_cast<int64_t>(bucket_mb * 1048576.0);
  const auto reduction = t.get<std::string>("reduction", "allreduce");
  BITNET_CHECK(reduction == "allreduce" || reduction == "ordered",
               "[train config] 'train.reduction' must be \"allreduce\" (MPI's all-reduce) or \"ordered\" (rank order, "
               "bit for bit one process accumulating the ranks' batches), got \"{}\"", reduction);
  o.ordered_reduction = reduction == "ordered";
  o.clip_norm = t.get<double>("clip_norm", o.clip_norm);
  c.init_seed = t.get<uint64_t>("seed", c.init_seed);
  Section s = t.child("schedule");
  const std::string type = s.get<std::string>("type", "two_stage");
  if (type == "two_stage") {
    TwoStageSchedule ts;
    ts.total_steps = o.total_steps;
    ts.peak_lr = s.get<double>("peak_lr", ts.peak_lr);
    ts.warmup_steps = s.get<int64_t>("warmup_steps", std::min<int64_t>(ts.warmup_steps, o.total_steps / 10));
    ts.boundary = s.get<double>("boundary", ts.boundary);
    ts.stage1_end_ratio = s.get<double>("stage1_end_ratio", ts.stage1_end_ratio);
    ts.stage2_ratio = s.get<double>("stage2_ratio", ts.stage2_ratio);
    ts.final_ratio = s.get<double>("final_ratio", ts.final_ratio);
    ts.stage1_wd = s.get<double>("stage1_wd", ts.stage1_wd);
    ts.stage2_wd = s.get<double>("stage2_wd", ts.stage2_wd);
    const std::string wd_shape = s.get<std::string>("stage1_wd_shape", "constant");
    BITNET_CHECK(wd_shape == "constant" || wd_shape == "cosine",
                 "[train config] 'train.schedule.stage1_wd_shape' must be constant or cosine, got '{}'", wd_shape);
    ts.stage1_wd_cosine = wd_shape == "cosine";
    const std::string shape = s.get<std::string>("shape", "linear");
    BITNET_CHECK(shape == "linear" || shape == "cosine", "[train config] 'train.schedule.shape' must be linear or cosine");
    ts.shape = shape == "linear" ? DecayShape::linear : DecayShape::cosine;
    ts.validate();
    o.schedule = ts;
  } else if (type == "cosine") {
    CosineSchedule cs;
    cs.total_steps = o.total_steps;
    cs.peak_lr = s.get<double>("peak_lr", cs.peak_lr);
    cs.warmup_steps = s.get<int64_t>("warmup_steps", std::min<int64_t>(cs.warmup_steps, o.total_steps / 10));
    cs.min_lr = s.get<double>("min_lr", cs.min_lr);
    cs.weight_decay = s.get<double>("weight_decay", cs.weight_decay);
    cs.validate();
    o.schedule = cs;
  } else {
    fail("[train config] 'train.schedule.type' must be two_stage or cosine, got '{}'", type);
  }
  s.finish();
  Section l = t.child("lambda");
  o.quant_lambda.warmup_steps = l.get<int64_t>("warmup_steps", 0);
  o.quant_lambda.k = l.get<double>("k", o.quant_lambda.k);
  const std::string lshape = l.get<std::string>("shape", "linear");
  if (lshape == "linear") o.quant_lambda.shape = LambdaShape::linear;
  else if (lshape == "exponential") o.quant_lambda.shape = LambdaShape::exponential;
  else if (lshape == "sigmoid") o.quant_lambda.shape = LambdaShape::sigmoid;
  else fail("[train config] 'train.lambda.shape' must be linear, exponential or sigmoid, got '{}'", lshape);
  l.finish();
  Section a = t.child("adam");
  o.adam.beta1 = a.get<double>("beta1", o.adam.beta1);
  o.adam.beta2 = a.get<double>("beta2", o.adam.beta2);
  o.adam.eps = a.get<double>("eps", o.adam.eps);
  a.finish();
  t.finish();

  Section out = top.child("output");
  c.output_dir = resolve(base_dir, out.get<std::string>("dir", c.output_dir));
  c.log_every = out.get<int64_t>("log_every", c.log_every);
  c.eval_every = out.get<int64_t>("eval_every", c.eval_every);
  c.eval_batches = out.get<int64_t>("eval_batches", c.eval_batches);
  c.checkpoint_every = out.get<int64_t>("checkpoint_every", c.checkpoint_every);
  c.stop_after = out.get<int64_t>("stop_after", c.stop_after);
  out.finish();
  BITNET_CHECK(c.log_every > 0 && c.eval_every > 0 && c.eval_batches > 0 && c.checkpoint_every > 0,
               "[train config] output.log_every, eval_every, eval_batches and checkpoint_every must be positive");
  top.finish();
  // The same config with absolute paths, for output_dir/run.json.
  json resolved = root;
  resolved["data"]["train"] = fs::absolute(c.train_path).string();
  if (!c.validation_path.empty()) resolved["data"]["validation"] = fs::absolute(c.validation_path).string();
  if (!c.tokenizer_path.empty()) resolved["data"]["tokenizer"] = fs::absolute(c.tokenizer_path).string();
  if (!resolved.contains("output")) resolved["output"] = json::object();
  resolved["output"]["dir"] = fs::absolute(c.output_dir).string();
  c.config_json = resolved.dump(2);
  return c;
}

RunConfig load_run_config(const std::string& path) {
  return parse_run_config(read_file(path, 16ull << 20), fs::path(path).parent_path().string());
}

RunConfig find_run_config(const std::string& where, const std::string& config) {
  if (!config.empty()) return load_run_config(config);
  const fs::path dir = fs::is_directory(where) ? fs::path(where) : fs::path(where).parent_path();
  const fs::path p = dir / "run.json";
  BITNET_CHECK(fs::exists(p), "[train] no run.json in '{}' (written by `bitnet train`); pass the run's config with -c",
               dir.string());
  return load_run_config(p.string());
}

std::string find_checkpoint(const std::string& where) {
  if (!fs::is_directory(where)) {
    BITNET_CHECK(fs::exists(where), "[train] checkpoint '{}' does not exist", where);
    return where;
  }
  for (const char* name : {"model.safetensors", "checkpoint.safetensors"})
    if (fs::exists(fs::path(where) / name)) return (fs::path(where) / name).string();
  fail("[train] '{}' holds neither model.safetensors nor checkpoint.safetensors", where);
}

Tensor run_sample_tokens(const RunConfig& config, int64_t windows, const std::string& text_path) {
  const std::string path = !text_path.empty() ? text_path
                           : !config.validation_path.empty() ? config.validation_path
                                                             : config.train_path;
  const std::vector<int32_t> ids =
      config.tokenizer_path.empty() ? byte_tokens(path) : tokenize_text_file(path, config.tokenizer_path);
  const int64_t n = windows * config.seq_len;
  BITNET_CHECK(windows > 0 && static_cast<int64_t>(ids.size()) >= n,
               "[train] '{}' has {} tokens; {} windows of {} need {}", path, ids.size(), windows, config.seq_len, n);
  Tensor t = Tensor::empty({windows, config.seq_len}, DType::i32);
  std::copy(ids.begin(), ids.begin() + n, t.data_as<int32_t>());
  return t;
}

RunResult run_training(const RunConfig& config, bool resume, std::FILE* progress) {
  // Under mpirun every rank trains its share of each batch; rank 0 alone writes the run's files and prints.
  Communicator& comm = world();
  const bool writer = comm.rank() == 0;
  if (!writer) progress = nullptr;
  const fs::path dir(config.output_dir);
  if (writer) fs::create_directories(config.output_dir);
  if (writer && !config.config_json.empty()) {
    std::ofstream out(dir / "run.json");
    out << config.config_json << "\n";
    BITNET_CHECK(out.good(), "[train] cannot write '{}'", (dir / "run.json").string());
  }
  const std::string ckpt = (dir / "checkpoint.safetensors").string();
  auto tokens_of = [&](const std::string& path) {
    return config.tokenizer_path.empty() ? byte_tokens(path) : tokenize_text_file(path, config.tokenizer_path);
  };
  {
    // Before anything is allocated: a config that asks for more parameters than the machine holds (num_layers
    // 1e9) fails at once, naming the estimate. f32 weights, gradients and AdamW's two moments: 16 bytes each.
    const nn::ModelConfig& m = config.model;
    const double per_layer = 2.0 * m.hidden * m.heads * m.head_size() + 2.0 * m.hidden * m.kv_heads * m.head_size() +
                             3.0 * m.hidden * m.ffn + 4.0 * m.hidden + m.ffn;
    const double params = per_layer * static_cast<double>(m.layers) + (m.tie_embeddings ? 1.0 : 2.0) * m.vocab * m.hidden;
    check_memory_for(static_cast<uint64_t>(std::min(params * 16.0, 1.8e19)),
                     fmt::format("[train] a model of {:.3g} parameters (weights, gradients, AdamW moments)", params));
  }
  const TokenBatcher train_data(tokens_of(config.train_path), config.batch_size, config.seq_len, config.data_seed);
  std::unique_ptr<TokenBatcher> val_data;
  if (!config.validation_path.empty())
    val_data = std::make_unique<TokenBatcher>(tokens_of(config.validation_path), config.batch_size, config.seq_len,
                                              config.data_seed + 1);
  nn::CausalLM model(config.model, config.quant, config.init_seed);
  Trainer trainer(model, train_data, config.options, &comm);
  if (resume) {
    // Every rank reads the same checkpoint: the step (hence the data position) and the optimizer state are
    // global, so a run may resume with another number of ranks.
    BITNET_CHECK(fs::exists(ckpt), "[train] --resume: there is no checkpoint at '{}'", ckpt);
    trainer.load(ckpt);
  }
  std::optional<TrainLog> log;
  if (writer) log.emplace((dir / "train_log.csv").string(), resume ? trainer.steps_done() : -1);
  const double prior_elapsed = !log || log->rows().empty() ? 0.0 : log->rows().back().elapsed_s;
  if (progress)
    std::fprintf(progress, "bitnet train: %lld parameters, %lld train windows, %s weights, %s activations%s%s\n",
                 static_cast<long long>(model.parameter_count()), static_cast<long long>(train_data.windows()),
                 config.quant.weight.str().c_str(), config.quant.activation.str().c_str(),
                 comm.size() > 1 ? fmt::format(", {} ranks ({})", comm.size(), comm.backend()).c_str() : "",
                 resume ? fmt::format(", resumed at step {}", trainer.steps_done()).c_str() : "");

  const int64_t total = config.options.total_steps;
  const int64_t stop = config.stop_after >= 0 ? std::min(config.stop_after, total) : total;
  const int64_t tokens_per_step = config.batch_size * config.seq_len * config.options.grad_accum;
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  int64_t steps_here = 0;
  // The sign classes of the quantized weights at the last log row: each row logs the share that flipped since.
  SignClasses signs = writer ? quantized_sign_classes(model) : SignClasses{};
  std::vector<std::pair<std::string, std::string>> facts = {
      {"run", dir.string()},
      {"parameters", std::to_string(model.parameter_count())},
      {"weights / activations", config.quant.weight.str() + " / " + config.quant.activation.str()},
      {"tokens per step", std::to_string(tokens_per_step)},
      {"train windows", std::to_string(train_data.windows())},
      {"log", (dir / "train_log.csv").string()}};
  if (comm.size() > 1) facts.emplace_back("ranks", fmt::format("{} ({}), {} rows of each batch per rank", comm.size(),
                                                               comm.backend(), config.batch_size / comm.size()));
  double window = 0.0;
  int64_t window_n = 0;
  RunResult result;
  while (trainer.steps_done() < stop) {
    const StepResult r = trainer.step();
    ++steps_here;
    window += r.loss;
    ++window_n;
    const int64_t done = r.step + 1;
    const bool last = done == stop;
    const bool eval = val_data && (done % config.eval_every == 0 || done == total);
    if (writer && (done % config.log_every == 0 || last || eval)) {
      const double el = seconds();
      LogRow row{r.step, window / static_cast<double>(window_n), NAN, r.lr, r.weight_decay, r.grad_norm,
                 static_cast<double>(steps_here * tokens_per_step) / std::max(el, 1e-9), prior_elapsed + el};
      if (eval) row.val_loss = result.val_loss = trainer.evaluate(*val_data, config.eval_batches);
      SignClasses now = quantized_sign_classes(model);
      row.flip_fraction = flipped_fraction(signs, now);
      signs = std::move(now);
      log->add(row);
      // The report follows the log: open it in a browser and reload while the run trains.
      training_page(fmt::format("bitnet train: {}", dir.filename().string()), log->rows(), facts, total)
          .write((dir / "report.html").string());
      result.final_loss = row.loss;
      window = 0.0;
      window_n = 0;
      if (progress) {
        std::string line = format_progress(done, total, row.loss, row.tokens_per_s, row.elapsed_s);
        if (eval) line += fmt::format(" | val {:.4f}", row.val_loss);
        std::fprintf(progress, "%s\n", line.c_str());
        std::fflush(progress);
      }
    }
    if (writer && (done % config.checkpoint_every == 0 || last)) trainer.save(ckpt);
  }
  if (writer) {
    log->write_svg((dir / "loss.svg").string(), fmt::format("{} ({} weights)", dir.filename().string(), config.quant.weight.str()));
    if (trainer.steps_done() == total)
      write_safetensors_f32((dir / "model.safetensors").string(), model.state_dict(), {{"format", "bitnet-trained-latent-f32"}});
  }
  // No rank leaves before the files are written (a launcher may read them as soon as the job ends).
  comm.barrier();
  result.comm_wait_s = comm.wait_seconds;
  result.steps = trainer.steps_done();
  result.seconds = seconds();
  result.tokens_per_s = static_cast<double>(steps_here * tokens_per_step) / std::max(result.seconds, 1e-9);
  return result;
}

}  // namespace bitnet::train
