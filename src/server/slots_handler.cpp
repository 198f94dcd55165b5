// Slot routes (see slots_handler.h). A slot file: "BNSLOT1\0", u64 token count, the tokens (i32), u64 byte count,
// then Engine::save_sequence's bytes (which carry their own shape header, checked when restoring).
#include "server/slots_handler.h"

#include <bitnet/error.h>
#include <bitnet/files.h>
#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "server/api_error.h"
#include "server/openai_request.h"

namespace bitnet::server {

using nlohmann::json;

namespace {

constexpr char kMagic[8] = {'B', 'N', 'S', 'L', 'O', 'T', '1', '\0'};

// A bare file name: no directories, no "..", no hidden files, nothing a shell or a file system would read twice.
std::string checked_filename(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 200 && name[0] != '.';
  for (const char c : name)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
  if (!ok)
    throw bad_request(fmt::format("'filename' must be a plain file name (letters, digits, . _ -; no directories), got \"{}\"", name));
  return name;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

void put_u64(std::string& out, uint64_t v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); }

}  // namespace

void handle_slots_list(ServerState& st, HttpResponse& res) {
  json out = json::array();
  for (const Scheduler::SlotInfo& s : st.scheduler->slots_info())
    out.push_back({{"id", s.id}, {"n_ctx", st.scheduler->options().context}, {"is_processing", s.processing},
                   {"n_cached_tokens", s.cached_tokens}});
  res.set_content(dump_json(out), "application/json");
}

void handle_slot_action(ServerState& st, const HttpRequest& req, HttpResponse& res) {
  // /slots/{id}?action=...
  const std::string id_text = req.path.substr(std::string("/slots/").size());
  int id = -1;
  if (id_text.empty() || id_text.size() > 6 || id_text.find_first_not_of("0123456789") != std::string::npos)
    throw bad_request(fmt::format("'{}' is not a slot id", id_text));
  id = std::stoi(id_text);
  const size_t q = req.target.find('?');
  std::string action;
  if (q != std::string::npos) {
    const std::string query = req.target.substr(q + 1);
    for (size_t at = 0; at <= query.size();) {
      const size_t end = std::min(query.find('&', at), query.size());
      const std::string kv = query.substr(at, end - at);
      if (kv.rfind("action=", 0) == 0) action = kv.substr(7);
      else if (!kv.empty()) throw bad_request(fmt::format("query parameter '{}' is not supported", kv.substr(0, kv.find('='))));
      at = end + 1;
    }
  }
  if (action != "save" && action != "restore" && action != "erase")
    throw bad_request(fmt::format("'action' must be save, restore or erase, got \"{}\"", action));
  if (action == "erase") {
    int64_t n = 0;
    st.scheduler->run_on_slot(id, [&](Engine&, std::vector<int32_t>& cached) {
      n = static_cast<int64_t>(cached.size());
      cached.clear();
    });
    res.set_content(dump_json({{"id_slot", id}, {"n_erased", n}}), "application/json");
    return;
  }
  if (st.options.slot_save_path.empty())
    throw ApiError(501, "not_supported_error", "slot files are off: start the server with --slot-save-path DIR");
  const json body = parse_json_body(req.body);
  if (!body.is_object() || !body.contains("filename") || !body["filename"].is_string())
    throw bad_request("the body must be {\"filename\": \"...\"}");
  for (const auto& [key, value] : body.items())
    if (key != "filename") throw bad_request(fmt::format("'{}' is not supported", key));
  const std::string name = checked_filename(body["filename"].get<std::string>());
  const std::filesystem::path path = std::filesystem::path(st.options.slot_save_path) / name;
  const auto t0 = std::chrono::steady_clock::now();
  if (action == "save") {
    int64_t n = 0;
    size_t written = 0;
    st.scheduler->run_on_slot(id, [&](Engine& engine, std::vector<int32_t>& cached) {
      n = static_cast<int64_t>(cached.size());
      if (n == 0) throw bad_request(fmt::format("slot {} holds no tokens to save", id));
      const std::vector<uint8_t> kv = engine.save_sequence(id, n);
      std::string out(kMagic, sizeof kMagic);
      put_u64(out, static_cast<uint64_t>(n));
      out.append(reinterpret_cast<const char*>(cached.data()), cached.size() * sizeof(int32_t));
      put_u64(out, kv.size());
      out.append(reinterpret_cast<const char*>(kv.data()), kv.size());
      // Written beside and renamed: a half-written file never replaces a whole one.
      const std::filesystem::path tmp = path.string() + ".partial";
      {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        f.write(out.data(), static_cast<std::streamsize>(out.size()));
        if (!f.flush()) throw ApiError(500, "server_error", fmt::format("cannot write {}", tmp.string()));
      }
      std::filesystem::rename(tmp, path);
      written = out.size();
    });
    res.set_content(dump_json({{"id_slot", id}, {"filename", name}, {"n_saved", n}, {"n_written", written},
                               {"timings", {{"save_ms", ms_since(t0)}}}}), "application/json");
    return;
  }
  // restore: the file is read and checked before the slot is touched.
  if (!std::filesystem::exists(path)) throw ApiError(404, "not_found_error", fmt::format("no slot file '{}'", name));
  const int64_t ctx = st.scheduler->options().context;
  const Engine& engine = st.scheduler->engine();
  const TransformerConfig& c = engine.model().config();
  const uint64_t bound = 64 + static_cast<uint64_t>(ctx) * 4 + static_cast<uint64_t>(c.layers) * 2 *
                         static_cast<uint64_t>(ctx) * static_cast<uint64_t>(c.kv_heads * c.head_dim) * 2 + (1 << 16);
  std::string data;
  try {
    data = read_regular_file(path.string(), bound);
  } catch (const Error& e) {
    throw bad_request(fmt::format("slot file '{}': {}", name, e.what()));
  }
  auto fail = [&](const std::string& what) { throw bad_request(fmt::format("slot file '{}': {}", name, what)); };
  if (data.size() < sizeof kMagic + 8 || std::memcmp(data.data(), kMagic, sizeof kMagic) != 0) fail("not a bitnet slot file");
  uint64_t n = 0, kv_size = 0;
  std::memcpy(&n, data.data() + 8, 8);
  if (n == 0 || n > static_cast<uint64_t>(ctx)) fail(fmt::format("{} tokens, but a slot holds 1..{}", n, ctx));
  const size_t tokens_end = 16 + n * 4;
  if (data.size() < tokens_end + 8) fail("cut short in its tokens");
  std::memcpy(&kv_size, data.data() + tokens_end, 8);
  if (data.size() != tokens_end + 8 + kv_size) fail(fmt::format("{} bytes, but its header says {}", data.size(), tokens_end + 8 + kv_size));
  std::vector<int32_t> tokens(n);
  std::memcpy(tokens.data(), data.data() + 16, n * 4);
  for (const int32_t t : tokens)
    if (t < 0 || t >= c.vocab) fail(fmt::format("token id {} is outside the vocabulary", t));
  st.scheduler->run_on_slot(id, [&](Engine& e, std::vector<int32_t>& cached) {
    cached.clear();  // until the cache holds the file's rows
    try {
      e.load_sequence(id, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()) + tokens_end + 8, kv_size));
    } catch (const Error& err) {
      fail(err.what());
    }
    cached = tokens;
  });
  res.set_content(dump_json({{"id_slot", id}, {"filename", name}, {"n_restored", n}, {"n_read", data.size()},
                             {"timings", {{"restore_ms", ms_since(t0)}}}}), "application/json");
}

}  // namespace bitnet::server
