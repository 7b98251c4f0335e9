// sim_main.cpp — `vibgate-sim`, the plant simulator: Modbus TCP devices and serial vibration
// sensors in one process, for newcomers, tests and benchmarks (docs/simulator.md).
//
// One thread runs one event loop: ppoll() over a signalfd (SIGINT/SIGTERM), every listening socket
// and every client connection, with a timeout up to the next tick. Each tick (tick_ms, default
// 10 ms) generates the samples acquired since the last one — spreading the synthesis work evenly —
// publishes completed waveform blocks and serial frames, and every tag_update_ms recomputes the
// changing tags. Requests are answered between ticks, so each sees a consistent register image.
#include <CLI/CLI.hpp>

#include <poll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "machine_source.hpp"
#include "modbus_server.hpp"
#include "serial_source.hpp"
#include "sim_config.hpp"
#include "unit_image.hpp"

namespace vibgate::sim {
namespace {

using Clock = std::chrono::steady_clock;

// Command-line flags (docs/simulator.md "Command line"); unset optionals keep the file/defaults.
struct Options {
  std::string config;
  std::optional<std::size_t> devices;
  std::optional<int> base_port;
  std::optional<std::string> address;
  std::optional<std::uint32_t> samples, rate;
  std::optional<std::uint64_t> seed;
  std::optional<std::string> defect;
  std::optional<double> fault_start;
  bool serial = false;
  std::string serial_mode = "binary";
  std::uint32_t serial_rate = 25600;
  std::size_t serial_channels = 3;
  std::uint32_t serial_samples = 256;
  std::string serial_link;
  double duration = 0;
  bool print_map = false;
  bool print_gateway = false;
  bool verbose = false;
};

// Builds the configuration from the file and/or the flags. Throws SimConfigError.
SimConfig build_config(const Options& o) {
  SimConfig cfg = o.config.empty() ? SimConfig{} : load_sim_config(o.config);
  if (o.seed) cfg.seed = *o.seed;  // quick-mode machines only; configured ones have their seed
  FleetSpec& f = cfg.fleet;
  if (o.devices) f.devices = *o.devices;
  else if (o.config.empty()) f.devices = 1;
  if (o.base_port) {
    if (*o.base_port < 0 || *o.base_port > 65535) throw SimConfigError("--base-port: must be within 0…65535");
    f.base_port = static_cast<std::uint16_t>(*o.base_port);
  }
  if (o.address) f.address = *o.address;
  if (o.samples) {
    if (*o.samples < 1 || *o.samples > 8192) throw SimConfigError("--samples: must be within 1…8192");
    f.samples = *o.samples;
  }
  if (o.rate) {
    if (*o.rate < 1 || *o.rate > 1000000) throw SimConfigError("--rate: must be within 1…1000000 Hz");
    f.sample_rate_hz = *o.rate;
  }
  if (o.defect) {
    if (*o.defect == "none") f.defect = analytics::DefectKind::none;
    else if (*o.defect == "outer") f.defect = analytics::DefectKind::outer_race;
    else if (*o.defect == "inner") f.defect = analytics::DefectKind::inner_race;
    else if (*o.defect == "ball") f.defect = analytics::DefectKind::ball;
    else throw SimConfigError("--defect: '" + *o.defect + "' is not one of none, outer, inner, ball");
  }
  if (o.fault_start) f.fault_start_s = *o.fault_start;
  expand_fleet(cfg, o.base_port || o.devices ? "--base-port" : "fleet.base_port");
  const bool want_serial = o.serial || (!o.serial_link.empty() && cfg.serials.empty());
  if (want_serial)
    add_quick_serial(cfg, o.serial_mode == "text" ? SerialMode::text : SerialMode::binary, o.serial_rate,
                     o.serial_channels, o.serial_samples);
  if (!o.serial_link.empty()) cfg.serials.front().link = o.serial_link;
  if (cfg.listeners.empty() && cfg.serials.empty())
    throw SimConfigError(cfg.source + ": nothing to serve (no listeners, devices or serial sources)");
  return cfg;
}

// Lets one process hold many listeners and clients (soft fd limit raised to the hard limit).
void raise_fd_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
}

std::string join_units(const ListenerSpec& l) {
  std::string s;
  for (const auto& u : l.units) {
    if (!s.empty()) s += ',';
    s += std::to_string(u.id);
  }
  return s;
}

// Runs the simulation until a signal or the duration. Returns the exit code.
int run(const SimConfig& cfg, const Options& o, int signal_fd) {
  std::vector<ProcessModel> processes;
  processes.reserve(cfg.machines.size());
  for (const auto& m : cfg.machines) processes.emplace_back(m);
  std::vector<std::uint64_t> consumers(cfg.machines.size(), 0);

  std::vector<std::unique_ptr<UnitImage>> units;
  std::vector<std::unique_ptr<SerialSource>> serials;
  ModbusServer server(o.verbose);
  for (const auto& l : cfg.listeners) {
    std::vector<UnitImage*> served;
    for (const auto& u : l.units) {
      units.push_back(std::make_unique<UnitImage>(u, cfg.machines, processes, consumers));
      served.push_back(units.back().get());
    }
    const std::uint16_t port = server.listen(l.address, l.port, served);
    const bool v6 = l.address.find(':') != std::string::npos;
    std::printf("vibgate-sim: modbus tcp %s%s%s:%u units %s\n", v6 ? "[" : "", l.address.c_str(), v6 ? "]" : "",
                static_cast<unsigned>(port), join_units(l).c_str());
  }
  for (const auto& s : cfg.serials) {
    serials.push_back(std::make_unique<SerialSource>(s, cfg.machines, processes, consumers));
    std::printf("vibgate-sim: serial %s %s %s %zu ch %u Hz %u samples/%s%s%s\n", s.name.c_str(),
                serials.back()->slave_path().c_str(), s.mode == SerialMode::binary ? "binary" : "text",
                s.machines.size(), s.sample_rate_hz, s.samples_per_frame,
                s.mode == SerialMode::binary ? "frame" : "burst", s.link.empty() ? "" : " link ", s.link.c_str());
  }
  for (auto& u : units) u->start();

  const auto tick = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(cfg.tick_ms));
  const auto tag_period =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(cfg.tag_update_ms));
  const auto t0 = Clock::now();
  auto next_tick = t0 + tick;
  auto next_tags = t0 + tag_period;
  std::printf("vibgate-sim: ready\n");
  std::fflush(stdout);

  std::vector<pollfd> fds;
  double t = 0;
  for (;;) {
    auto now = Clock::now();
    t = std::chrono::duration<double>(now - t0).count();
    if (o.duration > 0 && t >= o.duration) break;
    if (now >= next_tick) {
      for (auto& u : units) u->advance_waveforms(t);
      for (auto& s : serials) s->advance(t);
      if (now >= next_tags) {
        for (auto& u : units) u->update_tags(t);
        next_tags += tag_period;
        if (next_tags <= now) next_tags = now + tag_period;
      }
      next_tick += tick;
      if (next_tick <= now) next_tick = now + tick;
    }
    fds.clear();
    fds.push_back({signal_fd, POLLIN, 0});
    server.collect(fds);
    const auto wait = std::max(Clock::duration::zero(), next_tick - Clock::now());
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
    timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
    const int rc = ::ppoll(fds.data(), fds.size(), &ts, nullptr);
    if (rc < 0) {
      if (errno == EINTR) continue;
      std::perror("vibgate-sim: ppoll");
      return 1;
    }
    if (rc == 0) continue;
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si{};
      if (::read(signal_fd, &si, sizeof si) > 0 && o.verbose)
        std::fprintf(stderr, "vibgate-sim: signal %u\n", si.ssi_signo);
      break;
    }
    server.service(std::span<const pollfd>(fds).subspan(1));
  }

  UnitStats us;
  for (const auto& u : units) {
    us.blocks_published += u->stats().blocks_published;
    us.blocks_skipped += u->stats().blocks_skipped;
    us.samples_saturated += u->stats().samples_saturated;
  }
  SerialStats ss;
  for (const auto& s : serials) {
    ss.frames += s->stats().frames;
    ss.frames_dropped += s->stats().frames_dropped;
    ss.frames_skipped += s->stats().frames_skipped;
    ss.bytes_written += s->stats().bytes_written;
  }
  const auto& st = server.stats();
  std::fprintf(stderr,
               "vibgate-sim: stopped after %.1f s: %llu connections, %llu requests (%llu unknown unit, %llu "
               "rejected), %llu blocks (%llu skipped, %llu samples clipped), serial %llu frames (%llu dropped, "
               "%llu skipped, %llu bytes)\n",
               t, static_cast<unsigned long long>(st.connections), static_cast<unsigned long long>(st.requests),
               static_cast<unsigned long long>(st.unknown_unit), static_cast<unsigned long long>(st.rejected),
               static_cast<unsigned long long>(us.blocks_published), static_cast<unsigned long long>(us.blocks_skipped),
               static_cast<unsigned long long>(us.samples_saturated), static_cast<unsigned long long>(ss.frames),
               static_cast<unsigned long long>(ss.frames_dropped), static_cast<unsigned long long>(ss.frames_skipped),
               static_cast<unsigned long long>(ss.bytes_written));
  return 0;
}

}  // namespace
}  // namespace vibgate::sim

int main(int argc, char** argv) {
  using namespace vibgate::sim;
  Options o;
  CLI::App app{"vibgate-sim — plant simulator: Modbus TCP devices and serial vibration sensors (docs/simulator.md)"};
  app.set_version_flag("--version", "vibgate-sim 0.1.0");
  app.add_option("-c,--config", o.config, "TOML configuration (docs/simulator.md, deploy/sim-example.toml)")
      ->check(CLI::ExistingFile);
  app.add_option("-n,--devices", o.devices, "serve N standard devices on ports P..P+N-1 (default 1 without --config)");
  app.add_option("-p,--base-port,--port", o.base_port, "first port of the standard devices (default 1502; 0: any)");
  app.add_option("--address", o.address, "listen address of the standard devices (default 127.0.0.1)");
  app.add_option("--samples", o.samples, "standard devices: samples per waveform block (default 2048)");
  app.add_option("--rate", o.rate, "standard devices: waveform sample rate in Hz (default 10240)");
  app.add_option("--seed", o.seed, "base seed of the standard devices' and quick serial machines (default 1)");
  app.add_option("--defect", o.defect, "standard devices: bearing defect none|outer|inner|ball");
  app.add_option("--fault-start", o.fault_start, "standard devices: seconds until the defect appears");
  auto* serial = app.add_flag("--serial", o.serial, "add a serial sensor on a pty fed by the first machine");
  app.add_option("--serial-mode", o.serial_mode, "binary|text (default binary)")
      ->check(CLI::IsMember({"binary", "text"}))->needs(serial);
  app.add_option("--serial-rate", o.serial_rate, "serial sample rate in Hz (default 25600)")->needs(serial);
  app.add_option("--serial-channels", o.serial_channels, "serial channels (default 3)")->needs(serial);
  app.add_option("--serial-samples", o.serial_samples, "samples per frame (default 256)")->needs(serial);
  app.add_option("--serial-link", o.serial_link, "create a symlink to the (first) serial pty here");
  app.add_option("--duration", o.duration, "exit after this many seconds (default: run until SIGINT/SIGTERM)");
  app.add_flag("--print-register-map", o.print_map, "print the register map of the configuration and exit");
  app.add_flag("--print-gateway-config", o.print_gateway,
               "print the gateway's [[device]] sections that poll this configuration and exit");
  app.add_flag("-v,--verbose", o.verbose, "log connections on stderr");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  SimConfig cfg;
  try {
    cfg = build_config(o);
  } catch (const SimConfigError& e) {
    std::fprintf(stderr, "vibgate-sim: %s\n", e.what());
    return 2;
  }
  if (o.print_map || o.print_gateway) {
    if (o.print_map) std::fputs(register_map(cfg).c_str(), stdout);
    if (o.print_gateway) std::fputs(gateway_config(cfg).c_str(), stdout);
    return 0;
  }

  // Signals arrive through a descriptor the loop polls: no handler races, prompt exit.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  const int sfd = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) {
    std::perror("vibgate-sim: signalfd");
    return 1;
  }
  std::signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  setvbuf(stdout, nullptr, _IOLBF, 0);
  try {
    return run(cfg, o, sfd);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vibgate-sim: %s\n", e.what());
    return 1;
  }
}
