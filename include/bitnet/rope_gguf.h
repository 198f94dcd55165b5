#pragma once
// RoPE scaling in GGUF metadata as llama.cpp writes and reads it: `{arch}.rope.scaling.type` ("none", "linear",
// "yarn"; and "dynamic", which llama.cpp does not compute and so refuses), `.factor`, `.original_context_length`,
// `.attn_factor` (a multiplier on YaRN's 1 + 0.1 ln(factor)), `.yarn_beta_fast` / `.yarn_beta_slow`; Llama-3
// scaling as the `rope_freqs.weight` tensor of per-frequency divisors (llama3_rope_factors in rope.h).
#include <bitnet/gguf.h>
#include <bitnet/rope.h>

#include <string>
#include <utility>
#include <vector>

namespace bitnet {

// The metadata keys for `scaling` (none for the default and for llama3, which travels as rope_freqs.weight).
std::vector<std::pair<std::string, GgufValue>> rope_scaling_gguf_keys(const std::string& arch, const RopeScaling& scaling);

// The scaling a file's keys describe; throws naming the file and key for a type this engine does not compute
// (longrope, ...) or a value of the wrong type. `context` is the model's context length (yarn's default original).
RopeScaling read_rope_scaling_gguf(const GgufFile& f, const std::string& arch, int64_t context);

}  // namespace bitnet
