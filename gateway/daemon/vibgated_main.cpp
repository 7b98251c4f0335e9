// vibgated_main.cpp — the gateway daemon's entry point: options, configuration, logging,
// signals (SIGTERM/SIGINT drain and stop, SIGHUP reload), systemd readiness.
//
// Exit codes: 0 stopped cleanly (or configuration ok with --check-config), 1 start-up failed
// (the reason is logged in one line), 2 bad command line or configuration.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <iostream>

#include "vibgate/daemon/daemon.hpp"
#include "vibgate/daemon/daemon_config.hpp"
#include "vibgate/daemon/sd_notify.hpp"
#include "vibgate/common/version.hpp"

namespace {

void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("vibgated");
  // journald adds its own time stamps; a terminal gets them from the pattern.
  logger->set_pattern(std::getenv("JOURNAL_STREAM") ? "%l: %v" : "%Y-%m-%d %H:%M:%S.%e %l: %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
  spdlog::flush_on(spdlog::level::info);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vibgated — vibgate gateway daemon: polls machines, scores vibration, raises alarms"};
  std::string config_path = vibgate::daemon::kDefaultConfigPath;
  bool check = false, print_sample = false, version = false;
  std::string log_level;
  app.add_option("-c,--config", config_path, "Configuration file")->capture_default_str();
  app.add_flag("--check-config", check, "Validate the configuration and exit (0 = valid)");
  app.add_flag("--print-sample-config", print_sample,
               "Print the commented sample configuration (docs/configuration.md) and exit");
  app.add_option("--log-level", log_level, "Override [daemon] log_level (trace … error)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  app.add_flag("--version", version, "Print the version and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (version) {
    std::cout << "vibgated " << vibgate::kVersion << "\n";
    return 0;
  }
  if (print_sample) {
    std::cout << vibgate::daemon::sample_config();
    return 0;
  }

  vibgate::daemon::DaemonConfig cfg;
  try {
    cfg = vibgate::daemon::load_daemon_config(config_path);
  } catch (const std::exception& e) {
    std::cerr << "vibgated: " << e.what() << "\n";
    return 2;
  }
  if (check) {
    std::cout << config_path << ": ok (" << cfg.ingest.devices.size() << " Modbus devices, "
              << cfg.ingest.serial_sensors.size() << " serial sensors, " << cfg.assets.size()
              << " assets)\n";
    return 0;
  }
  if (!log_level.empty()) cfg.log_level = log_level;
  setup_logging(cfg.log_level);

  boost::asio::io_context io(1);
  vibgate::daemon::Daemon daemon(io, cfg);
  if (std::string err = daemon.start(); !err.empty()) {
    spdlog::critical("cannot start: {}", err);
    return 1;
  }
  vibgate::daemon::SystemdNotifier notifier;
  bool stopping = false;
  boost::asio::signal_set stop_signals(io, SIGTERM, SIGINT);
  boost::asio::signal_set hup(io, SIGHUP);
  std::function<void()> arm_hup = [&] {
    hup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      spdlog::info("SIGHUP: reloading {}", config_path);
      if (notifier.enabled()) {
        std::string msg = "RELOADING=1\nMONOTONIC_USEC=";
        msg += std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::steady_clock::now().time_since_epoch())
                                  .count());
        (void)notifier.notify(msg);
      }
      try {
        auto next = vibgate::daemon::load_daemon_config(config_path);
        if (!log_level.empty()) next.log_level = log_level;
        const std::string note = daemon.reload(std::move(next));
        if (note.empty())
          spdlog::info("reload: applied");
        else
          spdlog::warn("reload: applied; {}", note);
      } catch (const std::exception& e) {
        spdlog::error("reload refused, the running configuration stays: {}", e.what());
        daemon.reload_refused();
      }
      if (notifier.enabled()) (void)notifier.ready(daemon.status_line());
      arm_hup();
    });
  };
  arm_hup();
  stop_signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec || stopping) return;
    stopping = true;
    spdlog::info("{}: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    hup.cancel();
    daemon.shutdown(std::chrono::milliseconds(4000), [&] {
      stop_signals.cancel();
      io.stop();
    });
  });
  // READY=1 from the loop itself: the store is open and the loop runs.
  boost::asio::post(io, [&] {
    const std::string ready = daemon.status_line();
    spdlog::info("ready: {}", ready);
    if (notifier.enabled()) {
      if (std::string err = notifier.ready(ready); !err.empty())
        spdlog::warn("systemd notify: {}", err);
    }
  });
  io.run();
  spdlog::info("vibgated stopped");
  return 0;
}
