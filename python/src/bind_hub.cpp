// bitnet._core.hub_pull / hub_list_files: the Hugging Face Hub client (include/bitnet/hub.h) behind
// Llama.from_pretrained and bitnet.hub, sharing the huggingface_hub cache.
#include <bitnet/hub.h>
#include <pybind11/stl.h>

#include <cstdio>

#include "bindings.h"

namespace bitnet::python {

namespace py = pybind11;

namespace {
hub::HubConfig config_for(const std::optional<std::string>& cache_dir, const std::optional<std::string>& token,
                          const std::optional<std::string>& endpoint) {
  hub::HubConfig c = hub::HubConfig::from_environment();
  if (cache_dir) c.cache_dir = *cache_dir;
  if (token) c.token = *token;
  if (endpoint) c.endpoint = *endpoint;
  return c;
}
}  // namespace

void bind_hub(py::module_& m) {
  m.def(
      "hub_pull",
      [](const std::string& spec, const std::string& revision, const std::vector<std::string>& files,
         const std::optional<std::string>& cache_dir, const std::optional<std::string>& token,
         const std::optional<std::string>& endpoint, bool verify, bool verbose) {
        hub::PullOptions o;
        o.revision = revision;
        o.files = files;
        o.verify_cached = verify;
        if (verbose) {  // from the download threads: plain stderr, no Python (the GIL is released)
          o.note = [](const std::string& s) { std::fprintf(stderr, "note: %s\n", s.c_str()); };
          o.progress = [](const hub::FileProgress& p) {
            if (p.finished)
              std::fprintf(stderr, "%s: %s\n", p.file.c_str(),
                           p.cached ? "in the cache" : (std::to_string(p.done) + " bytes downloaded").c_str());
          };
        }
        const hub::HubConfig c = config_for(cache_dir, token, endpoint);
        hub::PullResult r;
        {
          py::gil_scoped_release nogil;
          r = hub::pull(spec, o, c);
        }
        py::dict d;
        d["repo"] = r.repo;
        d["revision"] = r.revision;
        d["commit"] = r.commit;
        d["snapshot"] = r.snapshot.string();
        d["model"] = r.model.string();
        d["files"] = r.files;
        d["downloaded_bytes"] = r.downloaded_bytes;
        d["from_cache_only"] = r.from_cache_only;
        return d;
      },
      py::arg("spec"), py::arg("revision") = "main", py::arg("files") = std::vector<std::string>{},
      py::arg("cache_dir") = py::none(), py::arg("token") = py::none(), py::arg("endpoint") = py::none(),
      py::arg("verify") = false, py::arg("verbose") = false,
      "As `bitnet pull`: ORG/NAME[:FILE|:QUANT|:GLOB] into the huggingface_hub cache (HF_HOME, HF_ENDPOINT, HF_TOKEN, "
      "HF_HUB_OFFLINE); files: exactly these files instead. Returns repo, revision, commit, snapshot, model (the path "
      "to open), files, downloaded_bytes, from_cache_only.");
  m.def(
      "hub_list_files",
      [](const std::string& repo, const std::string& revision, const std::optional<std::string>& token,
         const std::optional<std::string>& endpoint) {
        const hub::HubConfig c = config_for(std::nullopt, token, endpoint);
        std::vector<hub::RepoFile> files;
        {
          py::gil_scoped_release nogil;
          files = hub::list_repo_files(repo, revision, c);
        }
        py::list out;
        for (const auto& f : files) out.append(py::make_tuple(f.name, f.size, f.sha256));
        return out;
      },
      py::arg("repo"), py::arg("revision") = "main", py::arg("token") = py::none(), py::arg("endpoint") = py::none(),
      "The repository's files at a revision: (path, size, lfs sha256 or '') tuples.");
  m.def("known_models_json", [] { return hub::known_models_json(); },
        "The known ternary models (models/known_models.json) as JSON text.");
}

}  // namespace bitnet::python
