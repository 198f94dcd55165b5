#pragma once
// The one way every command, the server and the Python package open a model: a GGUF file or a Hugging Face
// checkpoint (model_files.h: resolve_model_path), its tokenizer from the same place, the checks that the two
// fit together, and what loading decided, for the user to read.
#include <bitnet/model.h>
#include <bitnet/tokenizer.h>

#include <memory>
#include <string>
#include <vector>

namespace bitnet {

struct OpenedModel {
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  // Things the user should know: unknown config keys, ternarization, RoPE scaling, a vocabulary padded past the
  // tokenizer (those ids are never sampled). Print them before using the model.
  std::vector<std::string> notes;
};

// Throws bitnet::Error naming the path and what is wrong (see Model::load, Tokenizer::load); a tokenizer larger
// than the model's vocabulary is an error.
OpenedModel open_model(const std::string& path, const LoadOptions& options = {});

}  // namespace bitnet
