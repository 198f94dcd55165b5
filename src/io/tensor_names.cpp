// HF <-> GGUF tensor names for BitNet checkpoints (formats.md §1.1.2 and §2.3.2).
#include <bitnet/model_files.h>

#include <array>
#include <charconv>

namespace bitnet {

namespace {
struct Pair {
  std::string_view hf, gguf;
};
// Per-layer suffixes after "model.layers.N." / "blk.N.".
constexpr std::array<Pair, 13> kLayer = {{
    {"input_layernorm.weight", "attn_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.attn_sub_norm.weight", "attn_sub_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
    {"mlp.ffn_sub_norm.weight", "ffn_sub_norm.weight"},
    {"self_attn.inner_attn_ln.weight", "attn_sub_norm.weight"},  // 1bitLLM names (one way only)
    {"mlp.ffn_layernorm.weight", "ffn_sub_norm.weight"},
}};
constexpr std::array<Pair, 3> kGlobal = {{
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
}};
constexpr std::array<std::string_view, 7> kProjections = {"attn_q.weight", "attn_k.weight",  "attn_v.weight",
                                                          "attn_output.weight", "ffn_gate.weight", "ffn_up.weight",
                                                          "ffn_down.weight"};

// Splits "<prefix><digits>.<rest>"; false when the name does not start that way.
bool split_layer(std::string_view name, std::string_view prefix, std::string_view* index, std::string_view* rest) {
  if (name.substr(0, prefix.size()) != prefix) return false;
  name.remove_prefix(prefix.size());
  const size_t dot = name.find('.');
  if (dot == 0 || dot == std::string_view::npos || dot > 6) return false;
  for (char c : name.substr(0, dot))
    if (c < '0' || c > '9') return false;
  *index = name.substr(0, dot);
  *rest = name.substr(dot + 1);
  return true;
}
}  // namespace

std::optional<std::string> hf_to_gguf_name(std::string_view hf) {
  for (const auto& p : kGlobal)
    if (p.hf == hf) return std::string(p.gguf);
  std::string_view idx, rest;
  if (!split_layer(hf, "model.layers.", &idx, &rest)) return std::nullopt;
  for (const auto& p : kLayer)
    if (p.hf == rest) return "blk." + std::string(idx) + "." + std::string(p.gguf);
  return std::nullopt;
}

std::optional<std::string> gguf_to_hf_name(std::string_view gguf) {
  for (const auto& p : kGlobal)
    if (p.gguf == gguf) return std::string(p.hf);
  std::string_view idx, rest;
  if (!split_layer(gguf, "blk.", &idx, &rest)) return std::nullopt;
  for (const auto& p : kLayer)  // first match wins: the 2B4T names
    if (p.gguf == rest) return "model.layers." + std::string(idx) + "." + std::string(p.hf);
  return std::nullopt;
}

bool is_ternary_projection(std::string_view gguf_name) {
  std::string_view idx, rest;
  if (!split_layer(gguf_name, "blk.", &idx, &rest)) return false;
  for (auto p : kProjections)
    if (p == rest) return true;
  return false;
}

}  // namespace bitnet
