// poll_driver.cpp — test driver for the Modbus poller (used by tests/ingest/test_poller_peers.py).
//
// Loads a TOML configuration with load_ingest_config(), runs a ModbusPoller on an io_context for
// the given number of seconds (or until SIGINT/SIGTERM), and prints JSON lines on stdout, flushed
// one by one: every TagSample ("tag"), every SampleBlock ("block": summary and the monotonic time
// of the callback; with --samples the samples too), every health change ("health"); then the
// final health of each device ("final"), the poll jitter ("jitter", take_jitter_ms: all devices
// together) and "done" (with the number of writes whose done() never ran).
//
//   poll_driver CONFIG.toml SECONDS [--samples] [--write DEVICE:KIND:ADDRESS:V1[,V2...]]...
//
// --write (repeatable): a write issued once, right after start(), in command-line order — before
// the first poll reaches the bus worker. KIND: coil (FC 5, one value 0|1), register (FC 6, one
// value 0…65535), coils (FC 15, values 0|1), registers (FC 16, values 0…65535); numbers in decimal
// or 0x hex. DEVICE may contain ':' (the fields are split from the right). When its done() runs it
// prints {"ev":"write","index":i,"device":...,"op":KIND,"fc":N,"address":A,"values":[...],
// "error":"..."} ("" = ok; index: position among the --write options, from 0).
//
// Exit status: 0 after a run, 2 for a bad command line or configuration (message on stderr).
#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
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
  o += ",\"waveform_invalid\":" + std::to_string(h.waveform_invalid);
  o += ",\"last_ok_wall_ns\":" + std::to_string(h.last_ok_wall_ns);
  return o;
}

// Nearest-rank percentile of sorted values.
double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

struct WriteOp {
  std::string device, op;  // op: coil | register | coils | registers
  int fc = 0;
  std::uint16_t address = 0;
  std::vector<std::uint16_t> values;
};

// A whole decimal or 0x-hex number within [0, max], or nothing.
std::optional<std::uint32_t> parse_uint(std::string_view s, std::uint32_t max) {
  if (s.empty() || s.size() > 10 || s.front() == '-' || s.front() == '+') return std::nullopt;
  const std::string str(s);
  char* end = nullptr;
  errno = 0;
  const unsigned long v = std::strtoul(str.c_str(), &end, 0);
  if (errno != 0 || end != str.c_str() + str.size() || v > max) return std::nullopt;
  return static_cast<std::uint32_t>(v);
}

// DEVICE:KIND:ADDRESS:V1[,V2...] → WriteOp, or an error message.
std::optional<WriteOp> parse_write(std::string_view spec, std::string& error) {
  const auto c3 = spec.rfind(':');
  const auto c2 = c3 == std::string_view::npos || c3 == 0 ? std::string_view::npos : spec.rfind(':', c3 - 1);
  const auto c1 = c2 == std::string_view::npos || c2 == 0 ? std::string_view::npos : spec.rfind(':', c2 - 1);
  if (c1 == std::string_view::npos || c1 == 0) {
    error = "expected DEVICE:KIND:ADDRESS:V1[,V2...]";
    return std::nullopt;
  }
  WriteOp w;
  w.device = std::string(spec.substr(0, c1));
  w.op = std::string(spec.substr(c1 + 1, c2 - c1 - 1));
  const bool bits = w.op == "coil" || w.op == "coils";
  const bool single = w.op == "coil" || w.op == "register";
  if (w.op == "coil") w.fc = 5;
  else if (w.op == "register") w.fc = 6;
  else if (w.op == "coils") w.fc = 15;
  else if (w.op == "registers") w.fc = 16;
  else {
    error = "KIND '" + w.op + "' is not one of coil, register, coils, registers";
    return std::nullopt;
  }
  const auto addr = parse_uint(spec.substr(c2 + 1, c3 - c2 - 1), 65535);
  if (!addr) {
    error = "ADDRESS must be 0…65535";
    return std::nullopt;
  }
  w.address = static_cast<std::uint16_t>(*addr);
  std::string_view rest = spec.substr(c3 + 1);
  while (true) {
    const auto comma = rest.find(',');
    const auto v = parse_uint(rest.substr(0, comma), bits ? 1 : 65535);
    if (!v) {
      error = bits ? "coil values must be 0 or 1" : "register values must be 0…65535";
      return std::nullopt;
    }
    w.values.push_back(static_cast<std::uint16_t>(*v));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (single && w.values.size() != 1) {
    error = "KIND " + w.op + " takes exactly one value";
    return std::nullopt;
  }
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s CONFIG.toml SECONDS [--samples] [--write DEVICE:KIND:ADDRESS:V1[,V2...]]...\n",
                 argv[0]);
    return 2;
  }
  const std::string path = argv[1];
  const double seconds = std::atof(argv[2]);
  bool full_samples = false;
  std::vector<WriteOp> writes;
  for (int i = 3; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--samples") {
      full_samples = true;
    } else if (std::string_view(argv[i]) == "--write") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "--write needs DEVICE:KIND:ADDRESS:V1[,V2...]\n");
        return 2;
      }
      std::string error;
      auto w = parse_write(argv[++i], error);
      if (!w) {
        std::fprintf(stderr, "--write %s: %s\n", argv[i], error.c_str());
        return 2;
      }
      writes.push_back(std::move(*w));
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
  // The writes, in order, before the loop runs: each reaches its bus worker before any poll does.
  std::size_t writes_pending = writes.size();
  for (std::size_t i = 0; i < writes.size(); ++i) {
    const WriteOp& w = writes[i];
    auto done = [&, i](const std::string& error) {
      const WriteOp& op = writes[i];
      std::string values;
      for (std::size_t k = 0; k < op.values.size(); ++k) values += (k ? "," : "") + std::to_string(op.values[k]);
      emit("{\"ev\":\"write\",\"t_ms\":" + t_ms() + ",\"index\":" + std::to_string(i) + ",\"device\":" +
           json_string(op.device) + ",\"op\":" + json_string(op.op) + ",\"fc\":" + std::to_string(op.fc) +
           ",\"address\":" + std::to_string(op.address) + ",\"values\":[" + values + "],\"error\":" +
           json_string(error) + "}");
      --writes_pending;
    };
    if (w.fc == 5) {
      poller.write_coil(w.device, w.address, w.values[0] != 0, done);
    } else if (w.fc == 6) {
      poller.write_register(w.device, w.address, w.values[0], done);
    } else if (w.fc == 15) {
      poller.write_coils(w.device, w.address, std::vector<std::uint8_t>(w.values.begin(), w.values.end()), done);
    } else {
      poller.write_registers(w.device, w.address, w.values, done);
    }
  }
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
  emit("{\"ev\":\"done\",\"elapsed_ms\":" + t_ms() + ",\"writes_pending\":" + std::to_string(writes_pending) + "}");
  return 0;
}
