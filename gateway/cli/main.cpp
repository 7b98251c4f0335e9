// main.cpp — the `vibgate` command: offline analysis of recordings and the operator commands that
// talk to the running daemon (docs/cli.md).
#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>
#include <string>

#include "cli/bundle_commands.hpp"
#include "cli/offline_commands.hpp"
#include "cli/online_commands.hpp"
#include "vibgate/daemon/daemon_config.hpp"
#include "vibgate/common/version.hpp"

namespace {

// `vibgate train NAME` without --out where NAME is not a file: the operator most likely meant to
// relearn a running asset, which is `vibgate model train NAME`. Printed after CLI11's message.
void hint_live_training(const CLI::App& app) {
  const CLI::App* train = app.get_subcommand("train");
  if (!train->parsed() || train->get_option("--out")->count() > 0) return;
  const auto& files = train->get_option("files")->results();
  if (files.size() != 1 || std::filesystem::exists(files.front())) return;
  std::cerr << "vibgate: `vibgate train` learns a model from recordings; to relearn a running "
               "asset from live data use `vibgate model train "
            << files.front() << "`\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vibgate — vibration anomaly detection for rotating machines"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("vibgate ") + vibgate::kVersion);
  vibgate::cli::OfflineCommands offline(app);
  for (const char* name : {"features", "train", "score", "eval", "synth"}) {
    app.get_subcommand(name)->group("Offline analysis (recordings)");
  }
  vibgate::cli::OnlineCommands online(app, std::cout, std::cerr);
  vibgate::cli::BundleCommands bundle(app, std::cout, std::cerr);
  // `vibgate config check FILE`: the daemon's own parser, without a daemon (exit 0 valid, 2 not).
  auto* config = app.add_subcommand("config", "Configuration files of vibgated");
  config->group("Configuration");
  config->require_subcommand(1);
  auto* check = config->add_subcommand("check", "Validate a vibgated configuration file");
  std::string check_file;
  check->add_option("FILE", check_file, "Configuration file")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    if (rc != 0) hint_live_training(app);
    return rc == 0 ? 0 : vibgate::cli::kExitUsage;
  }
  if (check->parsed()) {
    try {
      const auto c = vibgate::daemon::load_daemon_config(check_file);
      std::cout << check_file << ": ok (" << c.ingest.devices.size() << " Modbus devices, "
                << c.ingest.serial_sensors.size() << " serial sensors, " << c.assets.size()
                << " assets)\n";
      return 0;
    } catch (const std::exception& e) {
      std::cerr << "vibgate: " << e.what() << "\n";
      return vibgate::cli::kExitUsage;
    }
  }
  if (bundle.selected()) return bundle.run_selected();
  return online.selected() ? online.run_selected() : offline.run_selected();
}
