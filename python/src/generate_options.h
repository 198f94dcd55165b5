#pragma once
// bitnet.Llama passes generation settings as a dict (its keyword arguments, already named as llama-cpp-python
// names them); this turns it into GenerateOptions, rejecting unknown keys so a typo is not silently ignored.
#include <bitnet/generate.h>
#include <pybind11/pybind11.h>

namespace bitnet::python {

// Keys: max_tokens (None or <= 0: until end of generation or the context), temperature, top_k, top_p, min_p,
// repeat_penalty, frequency_penalty, presence_penalty, repeat_last_n, seed, stop (list of str), add_bos,
// ignore_eos, grammar (a _core.Grammar or None), logit_bias ({token id: bias}), top_logprobs (None or >= 0).
GenerateOptions generate_options_from_dict(const pybind11::dict& d);
// GenerateResult as {"text", "tokens", "finish_reason", "prompt_tokens", "reused_tokens", "prompt_seconds",
// "generate_seconds"} (text as str, invalid UTF-8 replaced), plus "logprobs" when recorded: a list of
// (token, logprob, [(id, logprob) best first]).
pybind11::dict generate_result_to_dict(const GenerateResult& r);
// UTF-8 bytes -> str, ill-formed sequences as U+FFFD (model output is bytes the tokenizer chose).
pybind11::str utf8_to_str(std::string_view bytes);

}  // namespace bitnet::python
