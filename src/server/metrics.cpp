// Prometheus exposition text (version 0.0.4): # HELP, # TYPE, then `name value` per metric.
#include "server/metrics.h"

#include <fmt/format.h>

namespace bitnet::server {

namespace {
void metric(std::string& out, const char* name, const char* type, const char* help, double value) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
}
}  // namespace

std::string prometheus_text(const Scheduler& scheduler, const HttpCounters& http) {
  const SchedulerCounters& c = scheduler.counters();
  const auto prompt_tokens = static_cast<double>(c.prompt_tokens.load());
  const auto generated = static_cast<double>(c.generated_tokens.load());
  const double prompt_s = c.prompt_seconds.load(), generate_s = c.generate_seconds.load();
  std::string out;
  metric(out, "llamacpp:prompt_tokens_total", "counter", "Prompt tokens processed.", prompt_tokens);
  metric(out, "bitnet:context_shifts_total", "counter", "Times a full slot forgot half its history (--context-shift).", static_cast<double>(c.context_shifts.load()));
  metric(out, "bitnet:prompt_tokens_cached_total", "counter", "Prompt tokens found in a slot's cache (cache_prompt), not evaluated.", static_cast<double>(c.cached_prompt_tokens.load()));
  metric(out, "llamacpp:prompt_seconds_total", "counter", "Prompt processing time (decode steps shared out by tokens).", prompt_s);
  metric(out, "llamacpp:tokens_predicted_total", "counter", "Tokens generated.", generated);
  metric(out, "llamacpp:tokens_predicted_seconds_total", "counter", "Generation time (decode steps shared out by tokens).", generate_s);
  metric(out, "llamacpp:prompt_tokens_seconds", "gauge", "Prompt tokens per second, since start.", prompt_s > 0 ? prompt_tokens / prompt_s : 0);
  metric(out, "llamacpp:predicted_tokens_seconds", "gauge", "Generated tokens per second, since start.", generate_s > 0 ? generated / generate_s : 0);
  metric(out, "llamacpp:n_decode_total", "counter", "Engine decode steps (one batch each).", static_cast<double>(c.decode_steps.load()));
  metric(out, "llamacpp:requests_processing", "gauge", "Requests holding a slot.", c.busy_slots.load());
  metric(out, "llamacpp:requests_deferred", "gauge", "Requests waiting for a slot (queue depth).", c.queued.load());
  metric(out, "bitnet:slots_total", "gauge", "Slots (sequences decoded together, -np).", scheduler.options().slots);
  metric(out, "bitnet:queue_capacity", "gauge", "Requests that may wait for a slot.", scheduler.options().max_queue);
  metric(out, "bitnet:requests_total", "counter", "HTTP requests answered (all routes).", static_cast<double>(http.requests.load()));
  metric(out, "bitnet:requests_client_errors_total", "counter", "Answers with a 4xx status.", static_cast<double>(http.client_errors.load()));
  metric(out, "bitnet:requests_server_errors_total", "counter", "Answers with a 5xx status.", static_cast<double>(http.server_errors.load()));
  metric(out, "bitnet:requests_rejected_busy_total", "counter", "Generation requests refused: slots busy and queue full.", static_cast<double>(http.rejected_busy.load()));
  metric(out, "bitnet:http_connections_open", "gauge", "Open client connections.", static_cast<double>(http.open_connections.load()));
  metric(out, "bitnet:http_connections_refused_total", "counter", "Connections refused over --max-connections.", static_cast<double>(http.refused_connections.load()));
  metric(out, "bitnet:http_requests_timed_out_total", "counter", "Requests whose head or body did not arrive in time (slow clients).", static_cast<double>(http.timed_out_requests.load()));
  metric(out, "bitnet:generations_finished_total", "counter", "Generations that ran to a stop or their budget.", static_cast<double>(c.jobs_finished.load()));
  metric(out, "bitnet:generations_cancelled_total", "counter", "Generations ended because the client went away.", static_cast<double>(c.jobs_cancelled.load()));
  metric(out, "bitnet:generations_failed_total", "counter", "Generations ended by shutdown or an internal error.", static_cast<double>(c.jobs_failed.load()));
  const auto ttft_n = static_cast<double>(c.first_token_count.load());
  out += "# HELP bitnet:time_to_first_token_seconds From a request's admission to its first token (queue wait included).\n"
         "# TYPE bitnet:time_to_first_token_seconds summary\n";
  out += fmt::format("bitnet:time_to_first_token_seconds_sum {}\nbitnet:time_to_first_token_seconds_count {}\n",
                     c.first_token_seconds.load(), ttft_n);
  return out;
}

}  // namespace bitnet::server
