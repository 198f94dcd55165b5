// Loading a BitNet model from GGUF: the architecture from the metadata, ternary projections converted from
// their file layout (I2_S, TQ1_0, TQ2_0, or ternary-valued F32/F16) to the kernel layout, norms as f32, and the
// embedding kept memory-mapped.
#include <bitnet/gguf.h>
#include <bitnet/memory.h>
#include <bitnet/model_files.h>
#include <bitnet/model.h>
#include <bitnet/rope_gguf.h>
#include <bitnet/ternary_formats.h>
#include <fmt/ranges.h>

#include <cstring>
#include <random>

namespace bitnet {

namespace {

int64_t key_int(const GgufFile& f, const std::string& key) {
  const GgufValue* v = f.find(key);
  BITNET_CHECK(v != nullptr && v->as_int().has_value(), "[model] '{}': missing or non-integer key {}", f.path(), key);
  return *v->as_int();
}

std::optional<double> key_float(const GgufFile& f, const std::string& key) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return std::nullopt;
  if (auto d = v->as_float()) return d;
  if (auto i = v->as_int()) return static_cast<double>(*i);
  return std::nullopt;
}

TransformerConfig config_from_gguf(const GgufFile& f) {
  TransformerConfig c;
  c.arch = f.architecture();
  BITNET_CHECK(c.arch == "bitnet-b1.58" || c.arch == "bitnet-25" || c.arch == "bitnet" || c.arch == "llama",
               "[model] '{}': architecture '{}' is not supported (bitnet-b1.58, bitnet-25, bitnet, llama)", f.path(),
               c.arch.empty() ? "(none)" : c.arch);
  const std::string p = c.arch + ".";
  c.layers = key_int(f, p + "block_count");
  c.hidden = key_int(f, p + "embedding_length");
  c.ffn = key_int(f, p + "feed_forward_length");
  c.heads = key_int(f, p + "attention.head_count");
  c.kv_heads = f.find(p + "attention.head_count_kv") ? key_int(f, p + "attention.head_count_kv") : c.heads;
  // The head width: attention.key_length when given (llama.cpp writes it when it differs from hidden / heads),
  // else rope.dimension_count; a rotary width below the head width (partial RoPE) is not computed here.
  c.head_dim = f.find(p + "attention.key_length")    ? key_int(f, p + "attention.key_length")
               : f.find(p + "rope.dimension_count") ? key_int(f, p + "rope.dimension_count")
                                                    : c.hidden / c.heads;
  if (f.find(p + "rope.dimension_count"))
    BITNET_CHECK(key_int(f, p + "rope.dimension_count") == c.head_dim,
                 "[model] '{}': {}rope.dimension_count = {} rotates part of a {}-wide head (partial RoPE), which this "
                 "engine does not compute", f.path(), p, key_int(f, p + "rope.dimension_count"), c.head_dim);
  if (f.find(p + "attention.value_length"))
    BITNET_CHECK(key_int(f, p + "attention.value_length") == c.head_dim,
                 "[model] '{}': {}attention.value_length = {} differs from the key length {}", f.path(), p,
                 key_int(f, p + "attention.value_length"), c.head_dim);
  c.context = f.find(p + "context_length") ? key_int(f, p + "context_length") : 4096;
  c.norm_eps = static_cast<float>(key_float(f, p + "attention.layer_norm_rms_epsilon").value_or(1e-5));
  c.rope_theta = static_cast<float>(key_float(f, p + "rope.freq_base").value_or(10000.0));
  c.rope_scaling = read_rope_scaling_gguf(f, c.arch, c.context);
  if (const GgufTensorInfo* rf = f.find_tensor("rope_freqs.weight")) {
    BITNET_CHECK(rf->type == GgmlType::f32 && rf->numel() == c.head_dim / 2,
                 "[model] '{}': rope_freqs.weight must be F32 with head_dim / 2 = {} elements (has {} {})", f.path(),
                 c.head_dim / 2, rf->numel(), ggml_type_name(rf->type));
    const auto bytes = f.tensor_data(*rf);
    c.rope_freq_factors.resize(static_cast<size_t>(rf->numel()));
    std::memcpy(c.rope_freq_factors.data(), bytes.data(), c.rope_freq_factors.size() * 4);
  }
  const GgufTensorInfo& embd = f.tensor("token_embd.weight");
  BITNET_CHECK(embd.dims.size() == 2 && embd.dims[0] == c.hidden,
               "[model] '{}': token_embd.weight has dims {} but the embedding length is {}", f.path(),
               shape_str(embd.dims), c.hidden);
  c.vocab = embd.dims[1];
  // 2B4T (bitnet-b1.58 / bitnet-25) uses gated ReLU^2; 1bitLLM ("bitnet") and Llama-architecture models SiLU.
  c.activation = (c.arch == "bitnet-b1.58" || c.arch == "bitnet-25") ? FfnActivation::relu2 : FfnActivation::silu;
  c.sub_norms = f.find_tensor("blk.0.attn_sub_norm.weight") != nullptr;
  c.validate();
  return c;
}

std::vector<float> load_vector(const GgufFile& f, const std::string& name, int64_t n) {
  const GgufTensorInfo& info = f.tensor(name);
  BITNET_CHECK(info.numel() == n, "[model] '{}': {} has {} elements, expected {}", f.path(), name, info.numel(), n);
  const auto bytes = f.tensor_data(info);
  std::vector<float> out(static_cast<size_t>(n));
  if (info.type == GgmlType::f32) {
    std::memcpy(out.data(), bytes.data(), out.size() * 4);
  } else if (info.type == GgmlType::f16 || info.type == GgmlType::bf16) {
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, bytes.data() + 2 * i, 2);
      out[static_cast<size_t>(i)] = info.type == GgmlType::f16 ? f16_to_f32(h) : bf16_to_f32(h);
    }
  } else {
    fail("[model] '{}': {} has type {}, expected F32, F16 or BF16", f.path(), name, ggml_type_name(info.type));
  }
  return out;
}

// A projection [rows, cols] (PyTorch order) into the kernel layout.
// `quantize`: latent float weights may be ternarized (a BitNet architecture does so at run time, or the user
// asked for it); otherwise they are refused.
// llama.cpp's "llama" files hold attn_q / attn_k rows permuted for its interleaved RoPE; the engine rotates
// half-split pairs, so they are put back in Hugging Face order (model_files.h).
// `t`: scratch reused from one projection to the next (unpack_ternary), so the loader's transient values are one
// buffer the size of the largest projection, not a fresh one per tensor left as holes in the heap.
// `packing`: the kernels' layout (unset: base3 for TQ1_0, the file's density, else 2bit).
TernaryMatrix load_projection(const GgufFile& f, const std::string& name, int64_t rows, int64_t cols, bool quantize,
                              const TransformerConfig& c, std::optional<TernaryPacking> packing, TernaryTensor& t) {
  const GgufTensorInfo& info = f.tensor(name);
  const auto shape = info.torch_shape();
  BITNET_CHECK(shape.size() == 2 && shape[0] == rows && shape[1] == cols,
               "[model] '{}': {} has shape {}, expected [{}, {}]", f.path(), name, shape_str(shape), rows, cols);
  const auto raw = f.tensor_data(info);
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(raw.data()), raw.size());
  switch (info.type) {
    case GgmlType::tq1_0: unpack_ternary(TernaryFormat::tq1_0, bytes, rows, cols, t); break;
    case GgmlType::tq2_0: unpack_ternary(TernaryFormat::tq2_0, bytes, rows, cols, t); break;
    case GgmlType::i2_s: unpack_ternary(TernaryFormat::i2_s, bytes, rows, cols, t); break;
    case GgmlType::f32:
    case GgmlType::f16:
    case GgmlType::bf16: {
      std::vector<float> w(static_cast<size_t>(rows * cols));
      for (int64_t i = 0; i < rows * cols; ++i) {
        if (info.type == GgmlType::f32) {
          std::memcpy(&w[static_cast<size_t>(i)], raw.data() + 4 * i, 4);
        } else {
          uint16_t h;
          std::memcpy(&h, raw.data() + 2 * i, 2);
          w[static_cast<size_t>(i)] = info.type == GgmlType::f16 ? f16_to_f32(h) : bf16_to_f32(h);
        }
      }
      // Already-ternarized weights keep their values; latent weights are quantized as BitNet does at run time.
      if (!detect_ternary_float(w, rows, cols, &t)) {
        BITNET_CHECK(quantize,
                     "[model] '{}': {} holds full-precision (non-ternary) weights in a '{}' model, which runs them in "
                     "full precision; pass --quantize (Python: quantize=True) to ternarize them with absmean",
                     f.path(), name, f.architecture());
        t = quantize_absmean(w, rows, cols);
      }
      break;
    }
    default:
      fail("[model] '{}': {} has type {}; ternary projections must be I2_S, TQ1_0, TQ2_0, F32, F16 or BF16", f.path(),
           name, ggml_type_name(info.type));
  }
  // Older "bitnet" files carry the scale in a separate {1} tensor (blk.N.attn_q.scale).
  const std::string scale_name = name.substr(0, name.size() - std::string(".weight").size()) + ".scale";
  if (f.find_tensor(scale_name) != nullptr) {
    const auto s = load_vector(f, scale_name, 1);
    t.scale = t.scale == 0.0f ? s[0] : t.scale * s[0];
  }
  if (const int64_t heads = llama_rope_permuted_heads(c.arch, name, c.heads, c.kv_heads); heads > 0)
    t.values = permute_llama_rope_rows(t.values, rows, cols, heads, /*to_gguf=*/false);
  // A TQ1_0 file chose 1.6 bits: kept where this CPU decodes them fast, else the faster 2 bits (the same values).
  const TernaryPacking layout = packing.value_or(info.type == GgmlType::tq1_0 && base3_decodes_fast()
                                                     ? TernaryPacking::base3
                                                     : TernaryPacking::two_bit);
  TernaryMatrix m = TernaryMatrix::pack(t.values.data(), rows, cols, t.scale, layout);
  release_mapped_pages(raw.data(), raw.size());  // repacked: the file's copy need not stay resident
  return m;
}

}  // namespace

Model Model::load_gguf(const std::string& path, HeadType head) { return load_gguf(path, LoadOptions{head, false}); }

Model Model::load_gguf(const std::string& path, const LoadOptions& options) {
  const HeadType head = options.head;
  const GgufFile f = GgufFile::open(path);
  Model m;
  m.config_ = config_from_gguf(f);
  const bool quantize = options.quantize || m.config_.arch != "llama";
  m.description = path.substr(path.find_last_of('/') + 1);
  const TransformerConfig& c = m.config_;
  const int64_t q_dim = c.heads * c.head_dim, kv_dim = c.kv_heads * c.head_dim;
  TernaryTensor scratch;
  for (int64_t l = 0; l < c.layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    LayerWeights w;
    w.attn_norm = load_vector(f, b + "attn_norm.weight", c.hidden);
    w.ffn_norm = load_vector(f, b + "ffn_norm.weight", c.hidden);
    if (c.sub_norms) {
      w.attn_sub_norm = load_vector(f, b + "attn_sub_norm.weight", q_dim);
      w.ffn_sub_norm = load_vector(f, b + "ffn_sub_norm.weight", c.ffn);
    }
    w.wq = load_projection(f, b + "attn_q.weight", q_dim, c.hidden, quantize, c, options.packing, scratch);
    w.wk = load_projection(f, b + "attn_k.weight", kv_dim, c.hidden, quantize, c, options.packing, scratch);
    w.wv = load_projection(f, b + "attn_v.weight", kv_dim, c.hidden, quantize, c, options.packing, scratch);
    w.wo = load_projection(f, b + "attn_output.weight", c.hidden, q_dim, quantize, c, options.packing, scratch);
    w.w_gate = load_projection(f, b + "ffn_gate.weight", c.ffn, c.hidden, quantize, c, options.packing, scratch);
    w.w_up = load_projection(f, b + "ffn_up.weight", c.ffn, c.hidden, quantize, c, options.packing, scratch);
    w.w_down = load_projection(f, b + "ffn_down.weight", c.hidden, c.ffn, quantize, c, options.packing, scratch);
    m.layers_.push_back(std::move(w));
    if (options.progress) options.progress(l + 1, c.layers);
  }
  m.output_norm_ = load_vector(f, "output_norm.weight", c.hidden);
  const GgufTensorInfo& embd = f.tensor("token_embd.weight");
  BITNET_CHECK(embd.type == GgmlType::f16 || embd.type == GgmlType::f32,
               "[model] '{}': token_embd.weight has type {}, expected F16 or F32", path, ggml_type_name(embd.type));
  m.embedding_ = Tensor::from_mapped(f.mapping(), f.data_offset() + embd.offset, {c.vocab, c.hidden},
                                     embd.type == GgmlType::f16 ? DType::f16 : DType::f32);
  if (const GgufTensorInfo* out = f.find_tensor("output.weight"); out != nullptr) {
    BITNET_CHECK(out->type == GgmlType::f16 || out->type == GgmlType::f32,
                 "[model] '{}': output.weight has type {}, expected F16 or F32", path, ggml_type_name(out->type));
    m.head_f16_ = Tensor::from_mapped(f.mapping(), f.data_offset() + out->offset, {c.vocab, c.hidden},
                                      out->type == GgmlType::f16 ? DType::f16 : DType::f32);
  } else {
    m.head_f16_ = m.embedding_;  // tied
  }
  m.finish_head(head);
  return m;
}

Model Model::random(const TransformerConfig& config, uint64_t seed, HeadType head,
                    const std::function<void(int64_t, int64_t)>& progress, TernaryPacking packing) {
  config.validate();
  Model m;
  m.config_ = config;
  m.description = "random " + config.arch;
  std::mt19937_64 rng(seed);
  const int64_t q_dim = config.heads * config.head_dim, kv_dim = config.kv_heads * config.head_dim;
  auto ternary = [&](int64_t rows, int64_t cols) {
    std::vector<int8_t> v(static_cast<size_t>(rows * cols));
    for (auto& x : v) x = static_cast<int8_t>(static_cast<int>(rng() % 3) - 1);
    return TernaryMatrix::pack(v.data(), rows, cols, 1.0f / std::sqrt(static_cast<float>(cols)), packing);
  };
  auto norm = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    std::uniform_real_distribution<float> d(0.8f, 1.2f);
    for (auto& x : v) x = d(rng);
    return v;
  };
  for (int64_t l = 0; l < config.layers; ++l) {
    LayerWeights w;
    w.attn_norm = norm(config.hidden);
    w.ffn_norm = norm(config.hidden);
    if (config.sub_norms) {
      w.attn_sub_norm = norm(q_dim);
      w.ffn_sub_norm = norm(config.ffn);
    }
    w.wq = ternary(q_dim, config.hidden);
    w.wk = ternary(kv_dim, config.hidden);
    w.wv = ternary(kv_dim, config.hidden);
    w.wo = ternary(config.hidden, q_dim);
    w.w_gate = ternary(config.ffn, config.hidden);
    w.w_up = ternary(config.ffn, config.hidden);
    w.w_down = ternary(config.hidden, config.ffn);
    m.layers_.push_back(std::move(w));
    if (progress) progress(l + 1, config.layers);
  }
  m.output_norm_ = norm(config.hidden);
  m.embedding_ = Tensor::empty({config.vocab, config.hidden}, DType::f16);
  std::normal_distribution<float> d(0.0f, 1.0f);
  auto* e = m.embedding_.data_as<uint16_t>();
  for (int64_t i = 0; i < m.embedding_.numel(); ++i) e[i] = f32_to_f16(d(rng));
  m.head_f16_ = m.embedding_;
  m.finish_head(head);
  return m;
}

void Model::finish_head(HeadType head) {
  head_type_ = head;
  if (head == HeadType::int8) head_int8_ = Int8Matrix::quantize(head_f16_);
  if (head == HeadType::int4) head_int4_ = Int4Matrix::quantize(head_f16_);
  if (head_f16_.dtype() != DType::f16) head_f16_ = head_f16_.to(DType::f16);  // the kernel reads f16
}

size_t Model::ternary_bytes() const {
  size_t total = 0;
  for (const auto& l : layers_)
    for (const TernaryMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) total += m->bytes();
  return total;
}

TernaryPacking Model::ternary_packing() const {
  return layers_.empty() ? TernaryPacking::two_bit : layers_.front().wq.packing();
}

const std::vector<std::string>& packing_choice_names() {
  static const std::vector<std::string> names = {"auto", "2bit", "base3"};
  return names;
}

std::optional<TernaryPacking> parse_packing_choice(std::string_view name) {
  if (name == "auto") return std::nullopt;
  BITNET_CHECK(name == "2bit" || name == "base3", "[model] unknown packing '{}' (expected {})", name,
               fmt::join(packing_choice_names(), ", "));
  return parse_ternary_packing(name);
}

size_t Model::head_bytes() const {
  switch (head_type_) {
    case HeadType::int8: return head_int8_.bytes();
    case HeadType::int4: return head_int4_.bytes();
    case HeadType::f16: break;
  }
  return head_f16_.nbytes();
}

const std::vector<std::string>& head_type_names() {
  static const std::vector<std::string> names = {"f16", "int8", "int4"};
  return names;
}

HeadType parse_head_type(std::string_view name) {
  for (HeadType head : {HeadType::f16, HeadType::int8, HeadType::int4})
    if (name == head_type_name(head)) return head;
  throw Error(fmt::format("[model] unknown head type '{}' (expected {})", name, fmt::join(head_type_names(), ", ")));
}

std::string_view head_type_name(HeadType head) {
  switch (head) {
    case HeadType::int8: return "int8";
    case HeadType::int4: return "int4";
    case HeadType::f16: break;
  }
  return "f16";
}

int64_t Model::parameter_count() const {
  int64_t n = embedding_.numel() + static_cast<int64_t>(output_norm_.size());
  if (head_f16_.storage() != embedding_.storage()) n += head_f16_.numel();
  for (const auto& l : layers_) {
    for (const TernaryMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) n += m->rows() * m->cols();
    n += static_cast<int64_t>(l.attn_norm.size() + l.ffn_norm.size() + l.attn_sub_norm.size() + l.ffn_sub_norm.size());
  }
  return n;
}

}  // namespace bitnet
