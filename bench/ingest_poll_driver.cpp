// ingest_poll_driver.cpp — measures the Modbus poller against many simulated TCP devices.
//
// Usage: ingest_poll_driver --devices 100 --base-port 15020 --interval-ms 100 --seconds 30
// Polls N devices (ports base…base+N−1 on 127.0.0.1, unit 1, 10 holding registers 0…9 each) for
// the given time after a 2 s warm-up, then prints, one `key=value` per line: polls done vs due,
// overruns, request errors, poll jitter p50/p99/max (due time → first request on the wire), CPU
// time of the loop thread and of the whole process as a fraction of one core, and resident
// memory. bench/run_ingest.sh starts vibgate-sim and runs this; docs/performance.md has results.
#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "vibgate/ingest/poller.hpp"

namespace {

double cpu_seconds(int who) {
  rusage u{};
  getrusage(who, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

long rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  int devices = 100, base_port = 15020, interval_ms = 100, seconds = 30;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const int v = std::atoi(argv[i + 1]);
    if (k == "--devices") devices = v;
    else if (k == "--base-port") base_port = v;
    else if (k == "--interval-ms") interval_ms = v;
    else if (k == "--seconds") seconds = v;
    else {
      std::fprintf(stderr, "ingest_poll_driver: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  using namespace vibgate::ingest;
  IngestConfig cfg;
  for (int d = 0; d < devices; ++d) {
    DeviceConfig dev;
    dev.name = "dev";
    dev.name += std::to_string(d);
    dev.host = "127.0.0.1";
    dev.port = static_cast<std::uint16_t>(base_port + d);
    dev.poll_interval_ms = static_cast<std::uint32_t>(interval_ms);
    dev.response_timeout_ms = 500;
    for (int t = 0; t < 10; ++t) {
      TagConfig tag;
      tag.name = "r";
      tag.name += std::to_string(t);
      tag.address = static_cast<std::uint16_t>(t);
      dev.tags.push_back(tag);
    }
    cfg.devices.push_back(std::move(dev));
  }
  boost::asio::io_context loop;
  std::uint64_t values = 0;
  IngestCallbacks cb;
  cb.on_tags = [&](const std::vector<TagSample>& v) { values += v.size(); };
  ModbusPoller poller(loop, cfg, cb);
  poller.start();

  // Warm-up (connections), then the measured window.
  loop.run_for(std::chrono::seconds(2));
  poller.take_jitter_ms();
  std::uint64_t polls0 = 0, over0 = 0, err0 = 0;
  for (const auto& [n, h] : poller.health()) {
    polls0 += h.polls;
    over0 += h.overruns;
    err0 += h.request_errors;
  }
  const double loop_cpu0 = cpu_seconds(RUSAGE_THREAD), proc_cpu0 = cpu_seconds(RUSAGE_SELF);
  const auto t0 = std::chrono::steady_clock::now();
  loop.run_for(std::chrono::seconds(seconds));
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double loop_cpu = cpu_seconds(RUSAGE_THREAD) - loop_cpu0, proc_cpu = cpu_seconds(RUSAGE_SELF) - proc_cpu0;
  std::uint64_t polls = 0, over = 0, err = 0, online = 0;
  for (const auto& [n, h] : poller.health()) {
    polls += h.polls;
    over += h.overruns;
    err += h.request_errors;
    online += h.state == DeviceState::online;
  }
  const auto jitter = poller.take_jitter_ms();
  const long rss = rss_kib();
  poller.stop();
  const double due = wall * 1000.0 / interval_ms * devices;
  std::printf("devices=%d\ninterval_ms=%d\nseconds=%.1f\nonline=%llu\n", devices, interval_ms, wall,
              static_cast<unsigned long long>(online));
  std::printf("polls=%llu\npolls_due=%.0f\noverruns=%llu\nrequest_errors=%llu\ntag_values=%llu\n",
              static_cast<unsigned long long>(polls - polls0), due, static_cast<unsigned long long>(over - over0),
              static_cast<unsigned long long>(err - err0), static_cast<unsigned long long>(values));
  std::printf("jitter_ms_p50=%.3f\njitter_ms_p99=%.3f\njitter_ms_max=%.3f\n", percentile(jitter, 0.5),
              percentile(jitter, 0.99), percentile(jitter, 1.0));
  std::printf("loop_thread_cpu_fraction=%.4f\nprocess_cpu_fraction=%.4f\nrss_mib=%.1f\n", loop_cpu / wall,
              proc_cpu / wall, static_cast<double>(rss) / 1024.0);
  return 0;
}
