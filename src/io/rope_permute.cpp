// The q/k row order of llama.cpp's "llama" GGUF files (model_files.h).
#include <bitnet/error.h>
#include <bitnet/model_files.h>

#include <cstring>

namespace bitnet {

std::vector<int8_t> permute_llama_rope_rows(const std::vector<int8_t>& values, int64_t rows, int64_t cols,
                                            int64_t heads, bool to_gguf) {
  BITNET_CHECK(heads > 0 && rows % heads == 0 && (rows / heads) % 2 == 0,
               "[convert] {} rows do not split into {} heads of even width", rows, heads);
  BITNET_CHECK(static_cast<int64_t>(values.size()) == rows * cols, "[convert] {} values for a [{}, {}] tensor",
               values.size(), rows, cols);
  const int64_t d = rows / heads, half = d / 2;
  std::vector<int8_t> out(values.size());
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t j = 0; j < 2; ++j) {
        const int64_t gguf_row = h * d + 2 * i + j, hf_row = h * d + j * half + i;
        const int64_t from = to_gguf ? hf_row : gguf_row, to = to_gguf ? gguf_row : hf_row;
        std::memcpy(out.data() + to * cols, values.data() + from * cols, static_cast<size_t>(cols));
      }
  return out;
}

int64_t llama_rope_permuted_heads(std::string_view arch, std::string_view name, int64_t heads, int64_t kv_heads) {
  if (arch != "llama" || !name.starts_with("blk.")) return 0;
  if (name.ends_with(".attn_q.weight")) return heads;
  if (name.ends_with(".attn_k.weight")) return kv_heads;
  return 0;
}

}  // namespace bitnet
