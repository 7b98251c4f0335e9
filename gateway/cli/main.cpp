// main.cpp — the `vibgate` command: offline analysis today, the operator CLI later (docs/cli.md).
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/offline_commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"vibgate — vibration anomaly detection for rotating machines"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "vibgate 0.1.0");
  vibgate::cli::OfflineCommands offline(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return offline.run_selected();
}
