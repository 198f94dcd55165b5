#pragma once
// What every route handler shares once the model is loaded: options, model, tokenizer, chat template, the
// scheduler that owns the engine, and the counters /metrics reports.
#include <bitnet/chat_template.h>
#include <bitnet/embedding.h>
#include <bitnet/engine.h>
#include <bitnet/model.h>
#include <bitnet/server.h>
#include <bitnet/tokenizer.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "server/metrics.h"
#include "server/scheduler.h"
#include "server/tool_calls.h"

namespace bitnet::server {

struct ServerState {
  ServerOptions options;
  std::string model_id;
  int64_t created = 0;             // Unix seconds when the model was loaded
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::optional<ChatTemplate> chat_template;  // absent: BitNet 2B4T's format (render_bitnet_chat)
  std::string bos, eos;            // the template's bos_token / eos_token
  std::unique_ptr<Scheduler> scheduler;
  // --embeddings: an engine of its own (one sequence), used by one request at a time.
  std::unique_ptr<Engine> embedder;
  std::mutex embedder_mutex;
  Pooling pooling = Pooling::mean;

  // The model's prompt for a conversation, ending with the assistant's turn. With tools in use, a template that
  // renders them gets them; for one that does not, they are described in the system message, and earlier calls
  // and results are written into the turns as text (so that the model still sees them).
  std::string render_chat(const std::vector<ChatMessage>& messages, const ToolRequest* tools = nullptr) const;
};

}  // namespace bitnet::server
