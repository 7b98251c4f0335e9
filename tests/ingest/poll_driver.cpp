// poll_driver.cpp — test driver for the Modbus poller (used by tests/ingest/test_poller_peers.py).
//
// Loads a TOML configuration with load_ingest_config(), runs a ModbusPoller on an io_context for
// the given number of seconds (or until SIGINT/SIGTERM), and prints JSON lines on stdout, flushed
// one by one: every TagSample ("tag"), every SampleBlock ("block": summary and the monotonic time
// of the callback; with --samples the samples too), every health change ("health"); then the
// final health of each device ("final"), the poll jitter ("jitter", take_jitter_ms: all devices
// together) and "done".
//
//   poll_driver CONFIG.toml SECONDS [--samples]
//
// Exit status: 0 after a run, 2 for a bad command line or configuration (message on stderr).
#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "vibgate/ingest/config.hpp"
#include "vibgate/ingest/poller.hpp"

namespace {

using vibgate::ingest::DeviceHealth;
using Clock = std::chrono::steady_clock;

std::string json_string(std::string_view s) {
  std::string o = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\r': o += "\\r"; break;
      case '\t': o += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          o += buf;
        } else {
          o += c;
        }
    }
  }
  return o + "\"";
}

// Shortest exact text of a double (Python's json reads NaN and ±Infinity).
std::string json_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void emit(const std::string& line) {
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

std::string health_fields(const DeviceHealth& h) {
  std::string o;
  o += "\"state\":" + json_string(vibgate::ingest::to_string(h.state));
  o += ",\"last_error\":" + json_string(h.last_error);
  o += ",\"consecutive_failures\":" + std::to_string(h.consecutive_failures);
  o += ",\"polls\":" + std::to_string(h.polls);
  o += ",\"poll_failures\":" + std::to_string(h.poll_failures);
  o += ",\"overruns\":" + std::to_string(h.overruns);
  o += ",\"requests\":" + std::to_string(h.requests);
  o += ",\"request_errors\":" + std::to_string(h.request_errors);
  o += ",\"bytes_sent\":" + std::to_string(h.bytes_sent);
  o += ",\"bytes_received\":" + std::to_string(h.bytes_received);
  o += ",\"rtt_ms_last\":" + json_number(h.rtt_ms_last);
  o += ",\"rtt_ms_avg\":" + json_number(h.rtt_ms_avg);
  o += ",\"waveform_blocks\":" + std::to_string(h.waveform_blocks);
  o += ",\"waveform_gaps\":" + std::to_string(h.waveform_gaps);
  o += ",\"waveform_torn\":" + std::to_string(h.waveform_torn);
  o += ",\"last_ok_wall_ns\":" + std::to_string(h.last_ok_wall_ns);
  return o;
}

// Nearest-rank percentile of sorted values.
double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s CONFIG.toml SECONDS [--samples]\n", argv[0]);
    return 2;
  }
  const std::string path = argv[1];
  const double seconds = std::atof(argv[2]);
  bool full_samples = false;
  for (int i = 3; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--samples") {
      full_samples = true;
    } else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (!(seconds > 0 && seconds < 3600)) {
    std::fprintf(stderr, "SECONDS must be within (0, 3600)\n");
    return 2;
  }

  vibgate::ingest::IngestConfig cfg;
  try {
    cfg = vibgate::ingest::load_ingest_config(path);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }

  const auto t0 = Clock::now();
  auto t_ms = [t0] { return json_number(std::chrono::duration<double, std::milli>(Clock::now() - t0).count()); };

  vibgate::ingest::IngestCallbacks cb;
  cb.on_tags = [&](const std::vector<vibgate::ingest::TagSample>& samples) {
    const std::string t = t_ms();
    for (const auto& s : samples)
      emit("{\"ev\":\"tag\",\"t_ms\":" + t + ",\"device\":" + json_string(s.device) + ",\"tag\":" +
           json_string(s.tag) + ",\"unit\":" + json_string(s.unit) + ",\"value\":" + json_number(s.value) +
           ",\"mono_ns\":" + std::to_string(s.t.mono_ns) + ",\"wall_ns\":" + std::to_string(s.t.wall_ns) + "}");
  };
  cb.on_samples = [&](const vibgate::SampleBlock& b) {
    double mn = 0, mx = 0, sum = 0;
    if (!b.samples.empty()) {
      mn = mx = static_cast<double>(b.samples.front());
      for (const float v : b.samples) {
        mn = std::min(mn, static_cast<double>(v));
        mx = std::max(mx, static_cast<double>(v));
        sum += static_cast<double>(v);
      }
    }
    std::string line = "{\"ev\":\"block\",\"t_ms\":" + t_ms() + ",\"channel\":" + json_string(b.channel) +
                       ",\"rate\":" + json_number(b.sample_rate_hz) + ",\"units\":" +
                       json_string(vibgate::to_string(b.units)) + ",\"n\":" + std::to_string(b.samples.size()) +
                       ",\"gap_before\":" + (b.gap_before ? "true" : "false") +
                       ",\"first_mono_ns\":" + std::to_string(b.first_sample.mono_ns) +
                       ",\"first_wall_ns\":" + std::to_string(b.first_sample.wall_ns) + ",\"now_mono_ns\":" +
                       std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          Clock::now().time_since_epoch()).count()) +
                       ",\"min\":" + json_number(mn) + ",\"max\":" + json_number(mx) + ",\"sum\":" + json_number(sum);
    if (!b.samples.empty())
      line += ",\"first\":" + json_number(static_cast<double>(b.samples.front())) +
              ",\"last\":" + json_number(static_cast<double>(b.samples.back()));
    if (full_samples) {
      line += ",\"samples\":[";
      for (std::size_t i = 0; i < b.samples.size(); ++i)
        line += (i ? "," : "") + json_number(static_cast<double>(b.samples[i]));
      line += "]";
    }
    emit(line + "}");
  };
  cb.on_health_change = [&](const std::string& device, const DeviceHealth& h) {
    emit("{\"ev\":\"health\",\"t_ms\":" + t_ms() + ",\"device\":" + json_string(device) + "," + health_fields(h) + "}");
  };

  boost::asio::io_context loop;
  std::string device_list;
  for (const auto& d : cfg.devices) device_list += (device_list.empty() ? "" : ",") + json_string(d.name);
  vibgate::ingest::ModbusPoller poller(loop, std::move(cfg), std::move(cb));

  boost::asio::steady_timer deadline(loop);
  boost::asio::signal_set signals(loop, SIGINT, SIGTERM);
  bool stopped = false;
  auto stop = [&] {
    if (stopped) return;
    stopped = true;
    deadline.cancel();
    signals.cancel();
    poller.stop();  // joins the bus workers; an in-flight request ends within its timeout
  };
  deadline.expires_after(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds)));
  deadline.async_wait([&](const boost::system::error_code& ec) {
    if (!ec) stop();
  });
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) stop();
  });

  emit("{\"ev\":\"start\",\"devices\":[" + device_list + "],\"seconds\":" + json_number(seconds) + "}");
  poller.start();
  loop.run();

  for (const auto& [name, h] : poller.health())
    emit("{\"ev\":\"final\",\"device\":" + json_string(name) + "," + health_fields(h) + "}");
  std::vector<double> jitter = poller.take_jitter_ms();
  std::string values = "[";  // in completion order (at most the first 10000), for diagnosis
  for (std::size_t i = 0; i < std::min<std::size_t>(10000, jitter.size()); ++i)
    values += (i ? "," : "") + json_number(jitter[i]);
  std::sort(jitter.begin(), jitter.end());
  std::string top = "[";  // the five largest, for diagnosis
  for (std::size_t i = 0; i < std::min<std::size_t>(5, jitter.size()); ++i)
    top += (i ? "," : "") + json_number(jitter[jitter.size() - 1 - i]);
  emit("{\"ev\":\"jitter\",\"count\":" + std::to_string(jitter.size()) + ",\"p50\":" + json_number(percentile(jitter, 0.5)) +
       ",\"p99\":" + json_number(percentile(jitter, 0.99)) +
       ",\"max\":" + json_number(jitter.empty() ? 0.0 : jitter.back()) + ",\"top\":" + top + "],\"values\":" + values + "]}");
  emit("{\"ev\":\"done\",\"elapsed_ms\":" + t_ms() + "}");
  return 0;
}
