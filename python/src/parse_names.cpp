// String -> enum for the Python API (see parse_names.h).
#include "parse_names.h"

#include <bitnet/error.h>

#include <algorithm>
#include <cctype>
#include <string>

namespace bitnet::python {

namespace {
std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}
}  // namespace

Granularity parse_granularity(std::string_view name) {
  const std::string n = lower(name);
  if (n == "per_tensor" || n == "tensor") return Granularity::per_tensor;
  if (n == "per_channel" || n == "channel") return Granularity::per_channel;
  if (n == "per_group" || n == "group") return Granularity::per_group;
  fail("[quant] unknown granularity '{}' (expected per_tensor, per_channel or per_group)", name);
}

TernaryFormat parse_ternary_format(std::string_view name) {
  const std::string n = lower(name);
  if (n == "hf_u8" || n == "hf") return TernaryFormat::hf_u8;
  for (TernaryFormat f : {TernaryFormat::hf_u8, TernaryFormat::tq1_0, TernaryFormat::tq2_0, TernaryFormat::i2_s})
    if (n == lower(ternary_format_name(f))) return f;
  fail("[ternary] unknown format '{}' (expected hf_u8, tq1_0, tq2_0 or i2_s)", name);
}

}  // namespace bitnet::python
