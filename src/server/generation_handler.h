#pragma once
// POST /v1/chat/completions and /v1/completions: check and tokenize the request, hand it to the scheduler,
// answer with one JSON body or a stream of Server-Sent Events; a client that goes away cancels its job.

#include "server/http_transport.h"
#include "server/server_state.h"

namespace bitnet::server {

// chat: /v1/chat/completions; completions: /v1/completions; native: llama-server's /completion ({"content",
// "stop"} objects, its stream without [DONE]); infill: /infill (fill-in-the-middle, native answers).
enum class GenerationRoute { chat, completions, native, infill };

// Throws ApiError for requests it refuses before answering (400, 501, 503).
void handle_generation(ServerState& state, HttpCounters& http, const HttpRequest& req, HttpResponse& res,
                       GenerationRoute route);

}  // namespace bitnet::server
