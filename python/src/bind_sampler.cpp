// bitnet._core.Sampler: the library's SamplerChain (sampler.h) over logits held in Python, for llama-cpp-python's
// low-level Llama.sample() / Llama.generate(); and bitnet._core.ChatTemplate: a Jinja chat template given as text
// (the templates shipped for chat_format names), rendered by the library's interpreter.
#include <bitnet/chat_template.h>
#include <bitnet/error.h>
#include <bitnet/grammar.h>
#include <bitnet/sampler.h>
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>

#include "bindings.h"
#include "generate_options.h"
#include "llama_core.h"
#include "numpy_util.h"

namespace bitnet::python {

namespace py = pybind11;

namespace {

// One chain (its penalty history and random stream) and, with a grammar, where the text stands in it. Picks as
// SequenceGenerator does: the tokenizer's unused ids are never candidates, and the grammar is asked about the
// chain's pick first, the whole vocabulary masked only when it refuses.
class PySampler {
 public:
  PySampler(std::shared_ptr<LlamaCore> core, const GenerateOptions& o)
      : core_(std::move(core)), chain_(o.sampling), excluded_(core_->tokenizer().unused_ids()) {
    if (o.grammar) grammar_.emplace(o.grammar);
  }

  int32_t sample(const CArray<float>& logits) {
    require_ndim(logits, 1, "sample", "logits");
    const Tokenizer& tok = core_->tokenizer();
    const int64_t n = logits.shape(0), model_vocab = core_->model().config().vocab;
    BITNET_CHECK(n == model_vocab, "[sample] logits have {} entries, the model's vocabulary {}", n, model_vocab);
    const int64_t vocab = std::min<int64_t>(n, tok.vocab_size());
    const float* data = logits.data();
    int32_t id = chain_.pick(data, vocab, excluded_);
    if (grammar_ && !grammar_->allows_token(tok, id)) {
      grammar_->allowed_tokens(tok, allowed_);
      id = chain_.pick(data, vocab, excluded_, allowed_);
    }
    accept(id);
    return id;
  }

  void accept(int32_t id) {
    chain_.accept(id);
    if (grammar_) BITNET_CHECK(grammar_->accept_token(core_->tokenizer(), id), "[sample] token {} is not allowed by the grammar", id);
  }

  bool grammar_done() const { return grammar_ && grammar_->must_end(); }

 private:
  std::shared_ptr<LlamaCore> core_;
  SamplerChain chain_;
  std::vector<int32_t> excluded_;
  std::optional<GrammarMatcher> grammar_;
  std::vector<uint8_t> allowed_;
};

}  // namespace

void bind_sampler(py::module_& m) {
  py::class_<PySampler>(m, "Sampler", "The library's sampler chain for one generation (sampler.h)")
      .def(py::init([](std::shared_ptr<LlamaCore> core, const py::dict& options) {
             return std::make_unique<PySampler>(std::move(core), generate_options_from_dict(options));
           }),
           py::arg("core"), py::arg("options"),
           "options: the sampling keys of LlamaCore.generate (temperature, top_k, ..., seed, grammar, logit_bias)")
      .def("sample", &PySampler::sample, py::arg("logits"),
           "Picks a token from float32 logits [n_vocab] and accepts it (penalties, grammar)")
      .def("accept", &PySampler::accept, py::arg("token"), "Records a token chosen elsewhere (penalties, grammar)")
      .def_property_readonly("grammar_done", &PySampler::grammar_done,
                             "With a grammar: its sentence is complete and nothing may follow");

  py::class_<ChatTemplate>(m, "ChatTemplate", "A Jinja chat template (chat_template.h)")
      .def(py::init<std::string>(), py::arg("source"))
      .def(
          "render",
          [](const ChatTemplate& t, const std::vector<std::pair<std::string, std::string>>& messages,
             const std::string& bos_token, const std::string& eos_token, bool add_generation_prompt) {
            std::vector<ChatMessage> msgs;
            for (const auto& [role, content] : messages) {
              ChatMessage msg;
              msg.role = role;
              msg.content = content;
              msgs.push_back(std::move(msg));
            }
            ChatTemplateOptions o;
            o.bos_token = bos_token;
            o.eos_token = eos_token;
            o.add_generation_prompt = add_generation_prompt;
            return t.render(msgs, o);
          },
          py::arg("messages"), py::arg("bos_token") = "", py::arg("eos_token") = "",
          py::arg("add_generation_prompt") = true, "Renders (role, content) pairs")
      .def_property_readonly("source", &ChatTemplate::source);
}

}  // namespace bitnet::python
