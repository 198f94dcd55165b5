#pragma once
// One function per `bitnet` subcommand: each registers its flags on the app and returns the action to run.
#include <CLI/CLI.hpp>

#include <functional>

namespace bitnet::cli {

using Action = std::function<int()>;
Action add_info_command(CLI::App& app);

}  // namespace bitnet::cli
