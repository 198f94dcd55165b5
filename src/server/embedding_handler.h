#pragma once
// POST /v1/embeddings (OpenAI: one pooled, L2-normalized vector per input, as floats or base64) and POST
// /embedding (llama-server's native form: {"content", "embd_normalize"}, pooling none gives one vector per
// token). Served only when the server was started with --embeddings, by an engine of its own (one sequence),
// one request at a time, beside the generation scheduler.

#include "server/http_transport.h"
#include "server/server_state.h"

namespace bitnet::server {

// Throws ApiError: 501 when the server does not compute embeddings, 400 for a bad request.
void handle_embeddings(ServerState& state, const HttpRequest& req, HttpResponse& res, bool openai);

}  // namespace bitnet::server
