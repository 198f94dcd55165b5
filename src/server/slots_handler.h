#pragma once
// llama-server's slot routes: GET /slots (each slot: processing or not, tokens in its cache) and
// POST /slots/{id}?action=save|restore|erase with {"filename"}: a slot's cached tokens and KV cache to and from
// a file under --slot-save-path, so a long shared prompt is computed once and restored later (or in another
// server process with the same model and context).

#include "server/http_transport.h"
#include "server/server_state.h"

namespace bitnet::server {

void handle_slots_list(ServerState& state, HttpResponse& res);
// Throws ApiError: 400 bad id / action / filename, 501 without --slot-save-path, 409 busy slot, 404 no file.
void handle_slot_action(ServerState& state, const HttpRequest& req, HttpResponse& res);

}  // namespace bitnet::server
