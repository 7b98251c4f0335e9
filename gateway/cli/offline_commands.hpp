// gateway/cli/offline_commands.hpp — `vibgate features|train|score|eval|synth`: offline analysis
// of recordings with the same analytics code the daemon runs (docs/cli.md).
#pragma once

#include <CLI/CLI.hpp>

namespace vibgate::cli {

// Adds the offline subcommands to `app`. After app.parse(), run_selected() runs the chosen one
// and returns the process exit code (0 ok, 1 bad input or failure; CLI11 handles usage errors, 2).
class OfflineCommands {
 public:
  explicit OfflineCommands(CLI::App& app);
  ~OfflineCommands();
  int run_selected();

 private:
  struct State;
  State* s_;
};

}  // namespace vibgate::cli
