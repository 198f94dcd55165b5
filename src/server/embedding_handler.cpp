// Embedding routes (see embedding_handler.h).
#include "server/embedding_handler.h"

#include <bitnet/embedding.h>
#include <bitnet/error.h>
#include <fmt/format.h>

#include <cstring>
#include <set>

#include "server/api_error.h"
#include "server/openai_request.h"

namespace bitnet::server {

using json = nlohmann::ordered_json;

namespace {

constexpr size_t kMaxInputs = 256;

std::string base64(const float* v, size_t n) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes(n * sizeof(float), '\0');
  std::memcpy(bytes.data(), v, bytes.size());  // little-endian float32, as the openai client decodes it
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const auto b0 = static_cast<uint8_t>(bytes[i]);
    const auto b1 = i + 1 < bytes.size() ? static_cast<uint8_t>(bytes[i + 1]) : 0;
    const auto b2 = i + 2 < bytes.size() ? static_cast<uint8_t>(bytes[i + 2]) : 0;
    out += kAlphabet[b0 >> 2];
    out += kAlphabet[((b0 & 3) << 4) | (b1 >> 4)];
    out += i + 1 < bytes.size() ? kAlphabet[((b1 & 15) << 2) | (b2 >> 6)] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[b2 & 63] : '=';
  }
  return out;
}

// "input" / "content": a string, a list of strings, a list of token ids, or a list of lists of ids.
std::vector<std::vector<int32_t>> inputs(const ServerState& st, const json& v, const char* name) {
  const Tokenizer& tok = *st.tokenizer;
  auto ids_of = [&](const json& list, size_t index) {
    std::vector<int32_t> ids;
    for (const json& t : list) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= tok.vocab_size())
        throw bad_request(fmt::format("'{}'[{}]: token ids must be integers in 0..{}", name, index, tok.vocab_size() - 1));
      ids.push_back(t.get<int32_t>());
    }
    return ids;
  };
  auto text_of = [&](const json& s) { return tok.encode(s.get<std::string>(), tok.add_bos_default(), /*parse_special=*/true); };
  std::vector<std::vector<int32_t>> out;
  if (v.is_string()) {
    out.push_back(text_of(v));
  } else if (v.is_array() && !v.empty() && v[0].is_number()) {
    out.push_back(ids_of(v, 0));
  } else if (v.is_array() && !v.empty()) {
    if (v.size() > kMaxInputs) throw bad_request(fmt::format("'{}' may hold at most {} inputs", name, kMaxInputs));
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i].is_string()) out.push_back(text_of(v[i]));
      else if (v[i].is_array()) out.push_back(ids_of(v[i], i));
      else throw bad_request(fmt::format("'{}'[{}] must be a string or a list of token ids", name, i));
    }
  } else {
    throw bad_request(fmt::format("'{}' must be a string, a list of strings or a list of token ids (non-empty)", name));
  }
  const int64_t ctx = st.embedder->context();
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i].empty()) throw bad_request(fmt::format("'{}'[{}] is empty", name, i));
    if (static_cast<int64_t>(out[i].size()) > ctx)
      throw bad_request(fmt::format("'{}'[{}] has {} tokens but the context holds {}", name, i, out[i].size(), ctx));
  }
  return out;
}

}  // namespace

void handle_embeddings(ServerState& st, const HttpRequest& req, HttpResponse& res, bool openai) {
  if (!st.embedder) throw ApiError(501, "not_supported_error", "this server does not compute embeddings: start it with --embeddings");
  const json body = parse_json_body(req.body);
  if (!body.is_object()) throw bad_request("the request body must be a JSON object");
  const std::set<std::string> known = openai ? std::set<std::string>{"input", "model", "encoding_format", "dimensions", "user"}
                                             : std::set<std::string>{"content", "embd_normalize"};
  for (const auto& [key, value] : body.items())
    if (!known.count(key)) throw bad_request(fmt::format("'{}' is not supported by this route", key));
  const char* name = openai ? "input" : "content";
  if (!body.contains(name)) throw bad_request(fmt::format("'{}' is required", name));
  const std::vector<std::vector<int32_t>> texts = inputs(st, body[name], name);
  const int64_t dim = st.model->config().hidden;
  int norm = 2;
  bool as_base64 = false;
  if (openai) {
    if (st.pooling == Pooling::none)
      throw bad_request("the server's pooling is 'none' (one vector per token), which /v1/embeddings cannot return: "
                        "use /embedding, or start the server with --pooling mean|cls|last");
    if (const auto f = body.find("encoding_format"); f != body.end() && !f->is_null()) {
      if (*f != "float" && *f != "base64") throw bad_request("'encoding_format' must be \"float\" or \"base64\"");
      as_base64 = *f == "base64";
    }
    if (const auto d = body.find("dimensions"); d != body.end() && !d->is_null() && *d != dim)
      throw bad_request(fmt::format("'dimensions' must be the model's {} (shortened embeddings are not supported)", dim));
  } else if (const auto n = body.find("embd_normalize"); n != body.end()) {
    if (!n->is_number_integer() || n->get<int64_t>() < -1 || n->get<int64_t>() > 16)
      throw bad_request("'embd_normalize' must be an integer in [-1, 16] (-1 none, 0 int16 range, 1 L1, 2 L2, p: p-norm)");
    norm = n->get<int>();
  }
  json data = json::array();
  int64_t tokens = 0;
  {
    std::lock_guard lock(st.embedder_mutex);
    for (size_t i = 0; i < texts.size(); ++i) {
      // Pooling none returns the hidden states themselves, as llama-server does (no normalization).
      const Embeddings e = embed_tokens(*st.embedder, texts[i], st.pooling, st.pooling == Pooling::none ? -1 : norm);
      tokens += e.tokens;
      if (openai) {
        json vec = as_base64 ? json(base64(e.values.data(), e.values.size())) : json(e.values);
        data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", std::move(vec)}});
      } else {
        json rows = json::array();
        for (int64_t r = 0; r < e.rows; ++r)
          rows.push_back(std::vector<float>(e.values.begin() + r * dim, e.values.begin() + (r + 1) * dim));
        data.push_back({{"index", i}, {"embedding", std::move(rows)}});
      }
    }
  }
  const json out = openai ? json{{"object", "list"}, {"data", std::move(data)}, {"model", st.model_id},
                                 {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}}
                          : std::move(data);
  res.set_content(dump_json(out), "application/json");
}

}  // namespace bitnet::server
