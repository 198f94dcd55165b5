#pragma once
// Python passes enums as strings ("per_channel", "tq2_0"); these parse them with messages that list the choices.
#include <bitnet/quant.h>
#include <bitnet/ternary_formats.h>

#include <string_view>

namespace bitnet::python {

Granularity parse_granularity(std::string_view name);
TernaryFormat parse_ternary_format(std::string_view name);

}  // namespace bitnet::python
