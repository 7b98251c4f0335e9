// vibgate/daemon/daemon.hpp — vibgated: the gateway daemon that wires the areas together
// (docs/architecture.md, docs/daemon.md).
//
// Data flow: ingest (Modbus poller, serial sensors) → AnalyticsWorker (FFT + int8 scoring, or
// featurizing while a baseline is learned) → per-asset AssetAlarm → Store (results, alert
// events, snapshots, outbox) → Uplink (MQTT). Beside it: the Modbus facade (PLCs read scores and
// alarm coils), the control socket (the `vibgate` CLI), the Prometheus page.
//
// Threads: everything in this class runs on the loop thread of the io_context given to the
// constructor, except what the areas own (bus workers, the analytics worker, the store's writer
// and reader, the facade's server thread, a model trainer). Results of those threads are posted
// to the loop. The loop never waits for analytics or SQLite commits; operator queries
// (alerts, trend, models) read the store's reader connection on the loop — small indexed reads
// (a documented limit).
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "vibgate/daemon/control_server.hpp"
#include "vibgate/daemon/daemon_config.hpp"
#include "vibgate/common/version.hpp"

namespace vibgate::daemon {

struct DaemonOptions {
  bool allow_temp_dirs = false;  // tests: control socket under /tmp allowed
  std::string version = kVersion;
};

class Daemon final : public ControlHandler {
 public:
  Daemon(boost::asio::io_context& io, DaemonConfig config, DaemonOptions options = {});
  ~Daemon() override;
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Loop thread, before io.run() or on the loop. Locks the state directory, opens the store,
  // starts the facade, the control socket, the uplink, the analytics and the ingest. Returns ""
  // when running, else one line naming what failed (everything started so far is stopped):
  // "state directory /x: not writable: Permission denied", "another vibgated uses state
  // directory /x", the store's open message, the control socket's or facade's listen error.
  [[nodiscard]] std::string start();

  // Loop thread. Orderly stop within `budget`: ingest stops, the analytics queue drains, the
  // remaining results and alarm transitions are stored, the uplink says goodbye, the store
  // flushes every accepted row. `done` runs on the loop when finished (then stop the loop).
  void shutdown(std::chrono::milliseconds budget, std::function<void()> done);

  // Loop thread. Applies a new configuration (SIGHUP): ingest, alarm parameters and the log
  // level change at once; sections that need a restart are named in the returned note.
  // Returns "" when applied without notes, else one line for the log. The caller parses the
  // file first: a bad file never reaches here, the old configuration keeps running.
  std::string reload(DaemonConfig next);
  // Loop thread. Counts a reload whose file was refused (the caller logs the reason).
  void reload_refused();

  // One-line summary for systemd STATUS= and the log. Loop thread.
  std::string status_line() const;

  ControlReply handle(const ControlRequest& request) override;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace vibgate::daemon
