// dict <-> GenerateOptions / GenerateResult (see generate_options.h).
#include "generate_options.h"

#include <bitnet/error.h>
#include <bitnet/grammar.h>
#include <pybind11/stl.h>

namespace bitnet::python {

namespace py = pybind11;

GenerateOptions generate_options_from_dict(const py::dict& d) {
  GenerateOptions o;
  SamplingParams& s = o.sampling;
  for (auto [key, value] : d) {
    const auto k = key.cast<std::string>();
    if (k == "max_tokens") {
      o.max_tokens = value.is_none() ? -1 : std::max(-1, value.cast<int>());
      if (o.max_tokens == 0) o.max_tokens = -1;  // llama-cpp-python: <= 0 means up to the context
    } else if (k == "temperature") {
      s.temperature = value.cast<float>();
    } else if (k == "top_k") {
      s.top_k = value.cast<int32_t>();
    } else if (k == "top_p") {
      s.top_p = value.cast<float>();
    } else if (k == "min_p") {
      s.min_p = value.cast<float>();
    } else if (k == "repeat_penalty") {
      s.repeat_penalty = value.cast<float>();
    } else if (k == "frequency_penalty") {
      s.frequency_penalty = value.cast<float>();
    } else if (k == "presence_penalty") {
      s.presence_penalty = value.cast<float>();
    } else if (k == "typical_p") {
      s.typical_p = value.cast<float>();
    } else if (k == "mirostat_mode") {
      s.mirostat = value.cast<int32_t>();
    } else if (k == "mirostat_tau") {
      s.mirostat_tau = value.cast<float>();
    } else if (k == "mirostat_eta") {
      s.mirostat_eta = value.cast<float>();
    } else if (k == "repeat_last_n") {
      s.repeat_last_n = value.cast<int32_t>();
    } else if (k == "seed") {
      s.seed = value.cast<uint64_t>();
    } else if (k == "stop") {
      if (value.is_none()) continue;
      if (py::isinstance<py::str>(value))
        o.stop = {value.cast<std::string>()};
      else
        o.stop = value.cast<std::vector<std::string>>();
    } else if (k == "top_logprobs") {
      o.top_logprobs = value.is_none() ? -1 : value.cast<int>();
      BITNET_CHECK(o.top_logprobs >= -1, "[llama] logprobs must be a non-negative number, got {}", o.top_logprobs);
    } else if (k == "add_bos") {
      o.add_bos = value.cast<bool>();
    } else if (k == "ignore_eos") {
      o.ignore_eos = value.cast<bool>();
    } else if (k == "grammar") {
      if (!value.is_none()) o.grammar = value.cast<std::shared_ptr<Grammar>>();
    } else if (k == "logit_bias") {
      if (value.is_none()) continue;
      // {token id: bias} (llama-cpp-python; ids may be str as in OpenAI's JSON); a bias of -inf bans the token.
      for (auto [id, bias] : value.cast<py::dict>()) {
        const int32_t token = py::isinstance<py::str>(id) ? std::stoi(id.cast<std::string>()) : id.cast<int32_t>();
        s.logit_bias.emplace_back(token, bias.cast<float>());
      }
    } else {
      fail("[llama] unknown generation option '{}'", k);
    }
  }
  s.validate();  // before a worker thread starts: bad values raise where the call was made
  return o;
}

py::str utf8_to_str(std::string_view bytes) {
  PyObject* s = PyUnicode_DecodeUTF8(bytes.data(), static_cast<Py_ssize_t>(bytes.size()), "replace");
  if (!s) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(s);
}

py::dict generate_result_to_dict(const GenerateResult& r) {
  py::dict d;
  d["text"] = utf8_to_str(r.text);
  d["tokens"] = py::cast(r.tokens);
  d["finish_reason"] = r.finish_reason;
  d["prompt_tokens"] = r.prompt_tokens;
  d["reused_tokens"] = r.reused_tokens;
  if (!r.logprobs.empty()) {
    py::list lps;
    for (const TokenLogprob& lp : r.logprobs) lps.append(py::make_tuple(lp.token, lp.logprob, py::cast(lp.top)));
    d["logprobs"] = lps;
  }
  d["prompt_seconds"] = r.prompt_seconds;
  d["generate_seconds"] = r.generate_seconds;
  return d;
}

}  // namespace bitnet::python
