// facade_driver.cpp — test driver for the Modbus TCP facade (used by
// tests/daemon/test_facade_mbpoll.py, where mbpoll plays the PLC).
//
//   facade_driver PORT ASSETS [MAX_CLIENTS [IDLE_TIMEOUT_MS [UNIT_ID [ALLOW]]]]
// (ALLOW: comma-separated allow-list entries, e.g. "127.0.0.1,10.0.0.0/8")
//
// Starts a ModbusFacade on 127.0.0.1:PORT with ASSETS assets named a0, a1, ... and prints
// "ready <port>" — or "error <message>" and exits 1 when start() fails (bad configuration, busy
// port). Then reads commands from stdin, one per line, answering each with one line on stdout:
//   update I SCORE LEVEL ZONE VRMS MODEL [ACK [UNIX_S]]  -> "ok" | "error <why>"
//   beat                                                 -> "ok"
//   health STORAGE_OK UPLINK_CONNECTED OUTBOX_DEPTH      -> "ok"
//   stats       -> "stats connections=N refused=N not_allowed=N dropped=N idle_closed=N
//                   requests=N exceptions=N"
//   quit (or end of input) -> stop(); "stopped <ms>" (how long stop() took); exit 0
// The facade's log lines go to stderr.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "vibgate/daemon/modbus_facade.hpp"

namespace {

using vibgate::daemon::AssetStatus;

void say(const std::string& line) {
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

std::string run_command(vibgate::daemon::ModbusFacade& facade, const std::string& line) {
  std::istringstream in(line);
  std::string cmd;
  in >> cmd;
  if (cmd == "update") {
    std::size_t i = 0;
    unsigned level = 0, zone = 0, model = 0, ack = 0;
    long long unix_s = 0;
    AssetStatus s;
    if (!(in >> i >> s.score >> level >> zone >> s.velocity_rms_mm_s >> model))
      return "error usage";
    if (in >> ack) in >> unix_s;
    s.alarm_level = static_cast<std::uint8_t>(level);
    s.iso_zone = static_cast<std::uint8_t>(zone);
    s.model_state = static_cast<AssetStatus::Model>(model);
    s.alert_acknowledged = ack != 0;
    s.window_end = std::chrono::system_clock::time_point(std::chrono::seconds(unix_s));
    return facade.update(i, s) ? "ok" : "error no such asset";
  }
  if (cmd == "beat") {
    facade.beat();
    return "ok";
  }
  if (cmd == "health") {
    vibgate::daemon::GatewayHealth h;
    int storage = 0, uplink = 0;
    if (!(in >> storage >> uplink >> h.outbox_depth)) return "error usage";
    h.storage_ok = storage != 0;
    h.uplink_connected = uplink != 0;
    facade.set_health(h);
    return "ok";
  }
  if (cmd == "stats") {
    const auto st = facade.stats();
    std::string o = "stats connections=";
    o += std::to_string(st.connections);
    o += " refused=";
    o += std::to_string(st.refused);
    o += " not_allowed=";
    o += std::to_string(st.not_allowed);
    o += " dropped=";
    o += std::to_string(st.dropped);
    o += " idle_closed=";
    o += std::to_string(st.idle_closed);
    o += " requests=";
    o += std::to_string(st.requests);
    o += " exceptions=";
    o += std::to_string(st.exceptions);
    return o;
  }
  return "error unknown command";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fputs("usage: facade_driver PORT ASSETS [MAX_CLIENTS [IDLE_TIMEOUT_MS [UNIT_ID]]]\n",
               stderr);
    return 2;
  }
  spdlog::set_default_logger(spdlog::stderr_logger_mt("facade"));
  vibgate::daemon::FacadeConfig cfg;
  cfg.port = static_cast<std::uint16_t>(std::stoul(argv[1]));
  const std::size_t n = std::stoul(argv[2]);
  for (std::size_t i = 0; i < n; ++i) {
    std::string name = "a";
    name += std::to_string(i);
    cfg.assets.push_back(name);
  }
  if (argc > 3) cfg.max_clients = std::stoul(argv[3]);
  if (argc > 4) cfg.idle_timeout = std::chrono::milliseconds(std::stol(argv[4]));
  if (argc > 5) cfg.unit_id = static_cast<std::uint8_t>(std::stoul(argv[5]));
  if (argc > 6) {
    std::stringstream list(argv[6]);
    std::string net;
    while (std::getline(list, net, ',')) cfg.allow.push_back(net);
  }

  vibgate::daemon::ModbusFacade facade(cfg);
  if (const std::string e = facade.start(); !e.empty()) {
    say("error " + e);
    return 1;
  }
  std::string ready = "ready ";
  ready += std::to_string(facade.port());
  say(ready);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line == "quit") break;
    say(run_command(facade, line));
  }
  const auto t0 = std::chrono::steady_clock::now();
  facade.stop();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  std::string stopped = "stopped ";
  stopped += std::to_string(ms.count());
  say(stopped);
  return 0;
}
