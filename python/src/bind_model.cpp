// bitnet._core.LlamaCore: loading a GGUF model with its tokenizer, tokenize/detokenize, chat templates and
// blocking generation with the GIL released. bitnet.Llama (python/bitnet/llama.py) builds the OpenAI-shaped API
// on top.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include "bindings.h"
#include "generate_options.h"
#include "llama_core.h"

namespace bitnet::python {

namespace py = pybind11;

namespace {
std::string text_arg(py::handle text) {
  // llama-cpp-python's tokenize() takes bytes; str is accepted too.
  if (py::isinstance<py::bytes>(text)) return text.cast<std::string>();
  if (py::isinstance<py::str>(text)) return text.cast<std::string>();
  fail("[llama] text must be bytes or str, got {}", py::str(py::type::of(text)).cast<std::string>());
}
}  // namespace

void bind_model(py::module_& m) {
  py::class_<LlamaCore, std::shared_ptr<LlamaCore>> core(m, "LlamaCore");
  core
      .def(py::init([](const std::string& path, int64_t n_ctx, int64_t n_batch, int n_threads,
                       const std::string& head, bool quantize, const std::string& type_k, const std::string& type_v,
                       const std::string& packing) {
             BITNET_CHECK(n_threads <= 1024, "[llama] n_threads must be at most 1024, got {}", n_threads);
             const HeadType head_type = parse_head_type(head);
             const KvCacheTypes kv{parse_kv_cache_type(type_k), parse_kv_cache_type(type_v)};
             const std::optional<TernaryPacking> layout = parse_packing_choice(packing);
             py::gil_scoped_release nogil;
             return std::make_shared<LlamaCore>(path, n_ctx, n_batch, n_threads, head_type, quantize, kv, layout);
           }),
           py::arg("model_path"), py::arg("n_ctx") = 512, py::arg("n_batch") = 512, py::arg("n_threads") = 0,
           py::arg("head") = "f16", py::arg("quantize") = false, py::arg("type_k") = "f16", py::arg("type_v") = "f16",
           py::arg("packing") = "auto")
      .def_property_readonly("load_notes", &LlamaCore::load_notes)
      .def_property_readonly("n_vocab_model", [](const LlamaCore& c) { return c.model().config().vocab; })
      .def(
          "eval",
          [](LlamaCore& c, const std::vector<int32_t>& tokens, int64_t start_pos, bool all) {
            const int64_t vocab = c.model().config().vocab;
            const auto rows = static_cast<py::ssize_t>(all ? tokens.size() : 1);
            py::array_t<float> out({rows, static_cast<py::ssize_t>(vocab)});
            float* data = out.mutable_data();
            const LlamaCore::Slot slot(c);
            {
              py::gil_scoped_release nogil;
              c.eval(slot, tokens, start_pos, all, data);
            }
            return out;
          },
          py::arg("tokens"), py::arg("start_pos"), py::arg("all") = false,
          "Evaluates tokens at positions start_pos.. of the cache; float32 logits [len(tokens) or 1, vocab].")
      .def(
          "embed",
          [](LlamaCore& c, const std::string& text, const std::string& pooling, int norm, bool truncate) {
            const Pooling p = parse_pooling(pooling);
            Embeddings e;
            {
              const LlamaCore::Slot slot(c);
              py::gil_scoped_release nogil;
              e = c.embed(slot, text, p, norm, truncate);
            }
            py::array_t<float> out({static_cast<py::ssize_t>(e.rows), static_cast<py::ssize_t>(e.dim)});
            std::copy(e.values.begin(), e.values.end(), out.mutable_data());
            return py::make_tuple(out, e.tokens);
          },
          py::arg("text"), py::arg("pooling") = "mean", py::arg("norm") = 2, py::arg("truncate") = true,
          "(float32 [rows, n_embd], tokens): the text's pooled final hidden states (rows = tokens for pooling none)")
      .def_property_readonly("prefix_reuse", &LlamaCore::prefix_reuse)
      .def(
          "cached_tokens",
          [](LlamaCore& c) {
            const LlamaCore::Slot slot(c);
            return c.cached_tokens(slot);
          },
          "The tokens the cache holds at positions 0..n-1 (what a generation may reuse).")
      .def(
          "set_cached_tokens",
          [](LlamaCore& c, std::vector<int32_t> tokens) {
            const LlamaCore::Slot slot(c);
            c.set_cached_tokens(slot, std::move(tokens));
          },
          py::arg("tokens"), "States which tokens the cache holds (evaluates nothing).")
      .def(
          "save_cache",
          [](LlamaCore& c, int64_t n) {
            std::vector<uint8_t> bytes;
            {
              const LlamaCore::Slot slot(c);
              py::gil_scoped_release nogil;
              bytes = c.save_cache(slot, n);
            }
            return py::bytes(reinterpret_cast<const char*>(bytes.data()), bytes.size());
          },
          py::arg("n_tokens"), "The cache's first n_tokens positions (every layer's K and V) as bytes.")
      .def(
          "load_cache",
          [](LlamaCore& c, const py::bytes& data, std::vector<int32_t> tokens) {
            const std::string_view view = data;
            const LlamaCore::Slot slot(c);
            py::gil_scoped_release nogil;
            c.load_cache(slot, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(view.data()), view.size()),
                         std::move(tokens));
          },
          py::arg("data"), py::arg("tokens"), "Restores save_cache's bytes; `tokens` are the ids they hold.")
      .def(
          "offload",
          [](LlamaCore& c, int gpu_layers) {
            const LlamaCore::Slot slot(c);
            py::gil_scoped_release nogil;
            c.offload(gpu_layers);
          },
          py::arg("gpu_layers"), "Moves the forward pass to the GPU (< 0: every layer); raises naming what is missing")
      .def_property_readonly("n_threads", &LlamaCore::threads)
      .def_property_readonly("path", &LlamaCore::path)
      .def_property_readonly("n_ctx", &LlamaCore::context)
      .def_property_readonly("n_vocab", [](const LlamaCore& c) { return c.tokenizer().vocab_size(); })
      .def_property_readonly("n_ctx_train", [](const LlamaCore& c) { return c.model().config().context; })
      .def_property_readonly("n_embd", [](const LlamaCore& c) { return c.model().config().hidden; })
      .def_property_readonly("n_params", [](const LlamaCore& c) { return c.model().parameter_count(); })
      .def_property_readonly("architecture", [](const LlamaCore& c) { return c.model().config().arch; })
      .def_property_readonly("token_bos", [](const LlamaCore& c) { return c.tokenizer().bos_id(); })
      .def_property_readonly("token_eos", [](const LlamaCore& c) { return c.tokenizer().eos_id(); })
      .def_property_readonly("add_bos_default", [](const LlamaCore& c) { return c.tokenizer().add_bos_default(); })
      .def_property_readonly("bos_piece", [](const LlamaCore& c) {
        const Tokenizer& t = c.tokenizer();
        return t.bos_id() >= 0 ? t.token_to_piece(t.bos_id()) : std::string();
      })
      .def_property_readonly("eos_piece", [](const LlamaCore& c) {
        const Tokenizer& t = c.tokenizer();
        return t.eos_id() >= 0 ? t.token_to_piece(t.eos_id()) : std::string();
      })
      .def_property_readonly("chat_template", [](const LlamaCore& c) { return c.tokenizer().chat_template(); })
      .def(
          "tokenize",
          [](const LlamaCore& c, py::handle text, bool add_bos, bool special) {
            const std::string t = text_arg(text);
            py::gil_scoped_release nogil;
            return c.tokenize(t, add_bos, special);
          },
          py::arg("text"), py::arg("add_bos") = true, py::arg("special") = false)
      .def(
          "detokenize",
          [](const LlamaCore& c, const std::vector<int32_t>& ids, bool special) {
            return py::bytes(c.detokenize(ids, special));
          },
          py::arg("tokens"), py::arg("special") = false)
      .def(
          "apply_chat_template",
          [](LlamaCore& c, const std::vector<std::pair<std::string, std::string>>& messages,
             bool add_generation_prompt) {
            std::vector<ChatMessage> msgs;
            for (const auto& [role, content] : messages) msgs.push_back({role, content});
            return c.apply_chat_template(msgs, add_generation_prompt);
          },
          py::arg("messages"), py::arg("add_generation_prompt") = true,
          "Renders (role, content) pairs with the model's chat template.")
      .def(
          "generate",
          [](LlamaCore& c, const std::string& prompt, const py::dict& options) {
            const GenerateOptions o = generate_options_from_dict(options);
            const LlamaCore::Slot slot(c);
            GenerateResult r;
            {
              py::gil_scoped_release nogil;
              r = c.generate(slot, prompt, o);
            }
            return generate_result_to_dict(r);
          },
          py::arg("prompt"), py::arg("options") = py::dict(),
          "Blocking generation (the GIL released): {text, tokens, finish_reason, prompt_tokens, ...}.");
  add_stream_method(core);
}

}  // namespace bitnet::python
