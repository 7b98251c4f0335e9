// poller.cpp — the Modbus polling engine (see poller.hpp for the threading contract).
//
// Loop thread: timers, device state, decoding, callbacks. Bus workers: libmodbus requests only;
// they read the immutable device configuration and a copy of the per-poll state handed to them,
// and post a PollResult back. An `alive` token guards results posted after stop().
#include "vibgate/ingest/poller.hpp"

#include <pthread.h>
#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cmath>
#include <deque>
#include <map>
#include <optional>
#include <thread>
#include <utility>

#include "modbus_link.hpp"
#include "vibgate/ingest/tags.hpp"

namespace vibgate::ingest {

std::string_view to_string(DeviceState s) {
  switch (s) {
    case DeviceState::offline:
      return "offline";
    case DeviceState::degraded:
      return "degraded";
    case DeviceState::online:
      return "online";
  }
  return "?";
}

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::size_t kWaveHeader = 8;  // registers, docs/modbus-waveform.md
constexpr std::size_t kMaxWaveSamples = 8192;
constexpr std::size_t kMaxJitterSamples = 1000000;

Timestamp now_stamp() {
  return Timestamp{
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count(),
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count()};
}

// Application bytes of one request/response (PDU + TCP MBAP header or RTU address and CRC).
std::pair<std::size_t, std::size_t> frame_bytes(bool rtu, bool bits, std::size_t count) {
  const std::size_t overhead = rtu ? 3 : 7;
  const std::size_t data = bits ? (count + 7) / 8 : 2 * count;
  return {overhead + 5, overhead + 2 + data};
}

struct Bus {
  std::string name;
  detail::ModbusLink link;
  bool rtu = false;
  std::chrono::microseconds silence{0};
  Clock::time_point last_end{};  // worker thread only
  boost::asio::thread_pool worker{1};
  explicit Bus(detail::ModbusLink l) : link(std::move(l)) {
    // Named for `top -H` and the system benchmark's per-thread CPU (15 characters at most).
    boost::asio::post(worker, [] { pthread_setname_np(pthread_self(), "vg-bus"); });
  }
};

struct WaveState {
  std::optional<std::uint16_t> last_seq;
  bool gap_pending = false;  // a block was dropped (non-finite samples): flag the next one
};

struct BlockData {
  bool ok = false;
  std::vector<std::uint16_t> regs;
  std::vector<std::uint8_t> bits;
};

struct WaveResult {
  bool ok = false;         // header read fine
  bool new_block = false;  // a complete, untorn new block is in `samples`
  bool torn = false;
  bool invalid = false;    // a new block with a non-finite sample (NaN/Inf): dropped, counted
  std::uint16_t seq = 0;
  std::uint32_t gaps = 0;
  bool first = false;
  double rate = 0;
  std::vector<float> samples;
};

struct PollResult {
  Clock::time_point due, first_sent, finished;
  Timestamp stamp;
  std::vector<BlockData> blocks;
  std::vector<WaveResult> waves;
  std::uint64_t requests = 0, errors = 0, bytes_sent = 0, bytes_received = 0;
  double rtt_sum_ms = 0;
  std::uint64_t rtt_count = 0;
  std::string last_error;
};

struct Device {
  DeviceConfig cfg;
  Bus* bus = nullptr;
  std::vector<ReadBlock> plan;
  std::unique_ptr<boost::asio::steady_timer> timer;
  DeviceHealth health;
  Clock::time_point next_due{};
  milliseconds backoff{0};
  bool in_flight = false;
  std::vector<WaveState> waves;
};

}  // namespace

struct ModbusPoller::Impl : std::enable_shared_from_this<ModbusPoller::Impl> {
  boost::asio::io_context& loop;
  IngestConfig cfg;
  IngestCallbacks cb;
  std::vector<std::unique_ptr<Bus>> buses;
  std::vector<std::unique_ptr<Device>> devices;
  std::atomic<bool> stopping{false};
  std::deque<double> jitter_ms;

  Impl(boost::asio::io_context& l, IngestConfig c, IngestCallbacks callbacks)
      : loop(l), cfg(std::move(c)), cb(std::move(callbacks)) {
    std::map<std::string, Bus*> rtu_buses;
    for (const auto& b : cfg.buses) {
      auto bus = std::make_unique<Bus>(detail::ModbusLink::rtu(b.line));
      bus->name = b.name;
      bus->rtu = true;
      // 3.5 character times (11 bits per character), at least 1.75 ms as the spec fixes above
      // 19200 baud, or the configured silence if longer.
      const double char_us = 11.0 * 1e6 / b.line.baud;
      const auto gap =
          std::chrono::microseconds(static_cast<std::int64_t>(std::max(3.5 * char_us, 1750.0)));
      bus->silence = std::max<std::chrono::microseconds>(gap, milliseconds(b.silence_ms));
      rtu_buses[b.name] = bus.get();
      buses.push_back(std::move(bus));
    }
    for (const auto& d : cfg.devices) {
      auto dev = std::make_unique<Device>();
      dev->cfg = d;
      if (d.protocol == Protocol::tcp) {
        auto bus = std::make_unique<Bus>(detail::ModbusLink::tcp(d.host, d.port));
        bus->name = d.name;
        dev->bus = bus.get();
        buses.push_back(std::move(bus));
      } else {
        dev->bus = rtu_buses.at(d.bus);
      }
      dev->plan = plan_reads(d.tags);
      dev->timer = std::make_unique<boost::asio::steady_timer>(loop);
      dev->waves.resize(d.waveforms.size());
      dev->backoff = milliseconds(d.backoff_initial_ms);
      devices.push_back(std::move(dev));
    }
  }

  Device* find(const std::string& name) {
    for (auto& d : devices)
      if (d->cfg.name == name) return d.get();
    return nullptr;
  }

  void arm(Device& d) {
    d.timer->expires_at(d.next_due);
    d.timer->async_wait([self = shared_from_this(), &d](const boost::system::error_code& ec) {
      if (!ec && !self->stopping) self->on_due(d);
    });
  }

  // Schedules the next poll: the next slot of the absolute grid while reachable, the reconnect
  // backoff (relative to now) while offline. Missed slots are counted as overruns.
  void schedule_next(Device& d) {
    const auto now = Clock::now();
    if (d.health.state == DeviceState::offline && d.health.consecutive_failures > 0) {
      d.next_due = now + d.backoff;
    } else {
      const auto interval = milliseconds(d.cfg.poll_interval_ms);
      d.next_due += interval;
      if (d.next_due + interval <= now) {  // more than a whole slot late: skip, count, no catch-up
        const auto missed = (now - d.next_due) / interval;
        d.health.overruns += static_cast<std::uint64_t>(missed);
        d.next_due += missed * interval;
      }
    }
    arm(d);
  }

  void on_due(Device& d) {
    const auto due = d.next_due;
    if (d.in_flight) {
      ++d.health.overruns;
    } else {
      d.in_flight = true;
      std::vector<WaveState> waves = d.waves;
      boost::asio::post(d.bus->worker, [self = shared_from_this(), &d, due, waves]() mutable {
        if (self->stopping) return;
        PollResult r = self->execute(d, due, waves);
        boost::asio::post(self->loop, [self, &d, r = std::move(r)]() mutable {
          if (!self->stopping) self->complete(d, std::move(r));
        });
      });
    }
    schedule_next(d);
  }

  // ---- worker thread ----

  void pace(Bus& bus) {
    if (!bus.rtu) return;
    const auto ready = bus.last_end + bus.silence;
    const auto now = Clock::now();
    if (ready > now) std::this_thread::sleep_for(ready - now);
  }

  template <typename F>
  std::string request(Device& d, PollResult& r, bool bits, std::size_t count, F&& op) {
    Bus& bus = *d.bus;
    std::string err = "poller stopping";  // returned as an error when stop() ends the attempts
    for (std::uint32_t attempt = 0; attempt <= d.cfg.retries && !stopping; ++attempt) {
      pace(bus);
      const auto t0 = Clock::now();
      if (r.first_sent == Clock::time_point{}) r.first_sent = t0;
      err = op();
      const auto t1 = Clock::now();
      bus.last_end = t1;
      const auto [sent, received] = frame_bytes(bus.rtu, bits, count);
      if (bus.link.last_request_sent()) {  // a failed connect sends nothing and is no request
        ++r.requests;
        r.bytes_sent += sent;
      }
      if (err.empty()) {
        r.bytes_received += received;
        r.rtt_sum_ms += std::chrono::duration<double, std::milli>(t1 - t0).count();
        ++r.rtt_count;
        return {};
      }
      ++r.errors;
      if (bus.link.last_was_exception()) break;  // an answer: retrying cannot change it
    }
    r.last_error = d.cfg.name + ": " + err;
    return err;
  }

  // The last request failed without a Modbus exception: connection down (TCP closes the link) or,
  // on a serial line that stays open, a timeout or garbled reply — after all retries. Reading the
  // device's other blocks would only hold the shared bus for another timeout each.
  static bool no_answer(const detail::ModbusLink& link) {
    return !link.connected() || !link.last_was_exception();
  }

  PollResult execute(Device& d, Clock::time_point due, std::vector<WaveState>& waves) {
    PollResult r;
    r.due = due;
    const milliseconds timeout(d.cfg.response_timeout_ms);
    auto& link = d.bus->link;
    const int unit = d.cfg.unit_id;
    bool unreachable = false;
    r.blocks.resize(d.plan.size());
    for (std::size_t i = 0; i < d.plan.size() && !unreachable; ++i) {
      const ReadBlock& b = d.plan[i];
      BlockData& out = r.blocks[i];
      const bool bits = is_bit(b.reg);
      const std::string err = request(d, r, bits, b.count, [&] {
        return bits ? link.read_bits(unit, b.reg, b.address, b.count, out.bits, timeout)
                    : link.read_registers(unit, b.reg, b.address, b.count, out.regs, timeout);
      });
      out.ok = err.empty();
      if (!out.ok && no_answer(link)) unreachable = true;  // no point in the other blocks
    }
    r.waves.resize(d.cfg.waveforms.size());
    for (std::size_t i = 0; i < d.cfg.waveforms.size() && !unreachable; ++i) {
      read_wave(d, r, d.cfg.waveforms[i], waves[i], r.waves[i], timeout);
      if (!r.waves[i].ok && no_answer(link)) unreachable = true;
    }
    r.finished = Clock::now();
    r.stamp = now_stamp();
    return r;
  }

  void read_wave(Device& d, PollResult& r, const WaveformConfig& w, WaveState& st, WaveResult& out,
                 milliseconds timeout) {
    auto& link = d.bus->link;
    const int unit = d.cfg.unit_id;
    std::vector<std::uint16_t> hdr;
    auto read = [&](std::uint16_t addr, std::uint16_t count, std::vector<std::uint16_t>& dst) {
      return request(d, r, false, count,
                     [&] { return link.read_registers(unit, w.reg, addr, count, dst, timeout); });
    };
    if (!read(w.base_address, kWaveHeader, hdr).empty()) return;
    out.ok = true;
    out.seq = hdr[0];
    if (st.last_seq && *st.last_seq == out.seq) return;  // nothing new
    const std::size_t n = hdr[1];
    const double rate =
        decode_registers(std::span(hdr).subspan(2, 2), ValueType::uint32, WordOrder::ABCD);
    const std::uint16_t format = hdr[4];
    if (n == 0 || n > kMaxWaveSamples || format > 1 || rate < 1 || rate > 1e6) {
      out.ok = false;
      r.last_error = d.cfg.name + ": waveform '" + w.name +
                     "' header is invalid (n=" + std::to_string(n) +
                     ", rate=" + std::to_string(static_cast<long long>(rate)) +
                     ", format=" + std::to_string(format) + ")";
      ++r.errors;
      return;
    }
    const float scale = static_cast<float>(
        decode_registers(std::span(hdr).subspan(6, 2), ValueType::float32, WordOrder::ABCD));
    const std::size_t regs_needed = format == 0 ? n : 2 * n;
    if (w.base_address + kWaveHeader + regs_needed > 65536) {
      out.ok = false;
      r.last_error = d.cfg.name + ": waveform '" + w.name + "' block runs past register 65535";
      return;
    }
    std::vector<std::uint16_t> data, chunk;
    data.reserve(regs_needed);
    for (std::size_t off = 0; off < regs_needed; off += kMaxRegistersPerRead) {
      const auto count =
          static_cast<std::uint16_t>(std::min(kMaxRegistersPerRead, regs_needed - off));
      if (!read(static_cast<std::uint16_t>(w.base_address + kWaveHeader + off), count, chunk)
               .empty()) {
        out.ok = false;
        return;
      }
      data.insert(data.end(), chunk.begin(), chunk.end());
    }
    std::vector<std::uint16_t> seq_after;
    if (!read(w.base_address, 1, seq_after).empty()) {
      out.ok = false;
      return;
    }
    if (seq_after[0] != out.seq) {  // the device replaced the block while we read it
      out.torn = true;
      return;
    }
    out.first = !st.last_seq.has_value();
    if (st.last_seq) out.gaps = static_cast<std::uint16_t>(out.seq - *st.last_seq) - 1u;
    st.last_seq = out.seq;
    out.rate = rate;
    out.samples.resize(n);
    for (std::size_t i = 0; i < n; ++i)
      out.samples[i] =
          format == 0 ? static_cast<float>(static_cast<std::int16_t>(data[i])) * scale
                      : static_cast<float>(decode_registers(std::span(data).subspan(2 * i, 2),
                                                            ValueType::float32, WordOrder::ABCD));
    // A NaN or infinite sample (a float32 block, or an int16 block whose scale is not finite)
    // would poison every window it falls in: the block is dropped and counted, like the serial
    // path drops such frames, and the next block is flagged gap_before.
    for (std::size_t i = 0; i < n; ++i) {
      if (std::isfinite(out.samples[i])) continue;
      out.invalid = true;
      out.samples.clear();
      r.last_error = d.cfg.name + ": waveform '" + w.name + "' block " + std::to_string(out.seq) +
                     " has a non-finite sample (index " + std::to_string(i) + "): dropped";
      return;
    }
    out.new_block = true;
  }

  // ---- loop thread ----

  void complete(Device& d, PollResult r) {
    d.in_flight = false;
    DeviceHealth& h = d.health;
    const DeviceState before = h.state;
    const std::string error_before = h.last_error;
    ++h.polls;
    h.requests += r.requests;
    h.request_errors += r.errors;
    h.bytes_sent += r.bytes_sent;
    h.bytes_received += r.bytes_received;
    if (r.rtt_count > 0) {
      h.rtt_ms_last = r.rtt_sum_ms / static_cast<double>(r.rtt_count);
      h.rtt_ms_avg = h.rtt_ms_avg == 0 ? h.rtt_ms_last : 0.9 * h.rtt_ms_avg + 0.1 * h.rtt_ms_last;
    }
    if (r.first_sent != Clock::time_point{}) {
      if (jitter_ms.size() >= kMaxJitterSamples) jitter_ms.pop_front();
      jitter_ms.push_back(std::chrono::duration<double, std::milli>(r.first_sent - r.due).count());
    }
    const bool any_ok = r.rtt_count > 0;
    // Every request succeeded, possibly on a retry (failed attempts count in request_errors only):
    // "degraded" always comes with the error that caused it.
    const bool all_ok = r.last_error.empty();
    if (all_ok) {
      h.state = DeviceState::online;
      h.last_error.clear();
      h.consecutive_failures = 0;
      d.backoff = milliseconds(d.cfg.backoff_initial_ms);
    } else if (any_ok) {
      h.state = DeviceState::degraded;
      h.last_error = r.last_error;
      h.consecutive_failures = 0;
      d.backoff = milliseconds(d.cfg.backoff_initial_ms);
    } else {
      ++h.poll_failures;
      ++h.consecutive_failures;
      h.last_error = r.last_error;
      if (h.state == DeviceState::offline && h.consecutive_failures > 1)
        d.backoff = std::min(d.backoff * 2, milliseconds(d.cfg.backoff_max_ms));
      h.state = DeviceState::offline;
    }
    if (any_ok) h.last_ok_wall_ns = r.stamp.wall_ns;
    // Reachable again while the timer still waits out the reconnect backoff (armed when this poll
    // started): back on the poll grid now, not one whole backoff — up to backoff_max_ms — later.
    if (before == DeviceState::offline && h.state != DeviceState::offline) {
      const auto next = std::max(r.due + milliseconds(d.cfg.poll_interval_ms), Clock::now());
      if (d.next_due > next) {
        d.next_due = next;
        arm(d);
      }
    }

    if (cb.on_tags && !d.plan.empty()) {
      std::vector<TagSample> values;
      for (std::size_t i = 0; i < d.plan.size(); ++i) {
        const auto& blk = r.blocks[i];
        if (!blk.ok) continue;
        for (std::size_t t : d.plan[i].tags) {
          const TagConfig& tag = d.cfg.tags[t];
          values.push_back(TagSample{d.cfg.name, tag.name, tag.unit,
                                     decode_tag(tag, d.plan[i], blk.regs, blk.bits), r.stamp});
        }
      }
      if (!values.empty()) cb.on_tags(values);
    }
    for (std::size_t i = 0; i < r.waves.size(); ++i) {
      WaveResult& w = r.waves[i];
      if (w.torn) ++h.waveform_torn;
      if (w.invalid) {
        ++h.waveform_invalid;
        d.waves[i].last_seq = w.seq;  // not read again
        d.waves[i].gap_pending = true;
        continue;
      }
      if (!w.new_block) continue;
      d.waves[i].last_seq = w.seq;
      ++h.waveform_blocks;
      h.waveform_gaps += w.gaps;
      const bool dropped_before = std::exchange(d.waves[i].gap_pending, false);
      if (!cb.on_samples) continue;
      SampleBlock b;
      b.channel = d.cfg.name + "/" + d.cfg.waveforms[i].name;
      b.sample_rate_hz = w.rate;
      b.units = d.cfg.waveforms[i].units;
      // The block completed at most one poll interval before we saw it; stamp its first sample
      // one block duration before the response (uncertainty: ± the poll interval).
      const auto dur_ns =
          static_cast<std::int64_t>(static_cast<double>(w.samples.size()) / w.rate * 1e9);
      b.first_sample = Timestamp{r.stamp.mono_ns - dur_ns, r.stamp.wall_ns - dur_ns};
      b.gap_before = w.first || w.gaps > 0 || dropped_before;
      b.samples = std::move(w.samples);
      cb.on_samples(b);
    }
    if ((h.state != before || h.last_error != error_before) && cb.on_health_change)
      cb.on_health_change(d.cfg.name, h);
  }

  void submit_write(const std::string& device, std::function<std::string(Device&)> op,
                    WriteDone done) {
    Device* d = find(device);
    if (!d) {
      boost::asio::post(loop, [self = shared_from_this(), done, device] {
        if (!self->stopping) done("unknown device '" + device + "'");
      });
      return;
    }
    boost::asio::post(d->bus->worker,
                      [self = shared_from_this(), d, op = std::move(op), done = std::move(done)] {
                        if (self->stopping) return;
                        self->pace(*d->bus);
                        std::string err = op(*d);
                        d->bus->last_end = Clock::now();
                        if (!err.empty()) err = d->cfg.name + ": " + err;
                        boost::asio::post(self->loop, [self, done, err] {
                          if (!self->stopping) done(err);
                        });
                      });
  }
};

ModbusPoller::ModbusPoller(boost::asio::io_context& loop, IngestConfig cfg,
                           IngestCallbacks callbacks)
    : impl_(std::make_shared<Impl>(loop, std::move(cfg), std::move(callbacks))) {}

ModbusPoller::~ModbusPoller() { stop(); }

void ModbusPoller::start() {
  // First polls are staggered across each device's interval (device i of n starts i/n of an
  // interval late), so n devices on one schedule do not all wake their workers — and hit a shared
  // network or CPU — in the same millisecond. The schedules stay absolute from there on.
  const auto now = Clock::now();
  const auto n = static_cast<std::int64_t>(impl_->devices.size());
  for (std::int64_t i = 0; i < n; ++i) {
    auto& d = impl_->devices[static_cast<std::size_t>(i)];
    d->next_due = now + milliseconds(d->cfg.poll_interval_ms) * i / n;
    impl_->arm(*d);
  }
}

void ModbusPoller::stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  for (auto& d : impl_->devices) d->timer->cancel();
  for (auto& b : impl_->buses) b->worker.join();
  for (auto& b : impl_->buses) b->link.close();
}

std::vector<std::pair<std::string, DeviceHealth>> ModbusPoller::health() const {
  std::vector<std::pair<std::string, DeviceHealth>> out;
  for (const auto& d : impl_->devices) out.emplace_back(d->cfg.name, d->health);
  return out;
}

std::vector<double> ModbusPoller::take_jitter_ms() {
  std::vector<double> v(impl_->jitter_ms.begin(), impl_->jitter_ms.end());
  impl_->jitter_ms.clear();
  return v;
}

void ModbusPoller::write_coil(const std::string& device, std::uint16_t address, bool value,
                              WriteDone done) {
  impl_->submit_write(
      device,
      [=](Device& d) {
        return d.bus->link.write_coil(d.cfg.unit_id, address, value,
                                      milliseconds(d.cfg.response_timeout_ms));
      },
      std::move(done));
}

void ModbusPoller::write_register(const std::string& device, std::uint16_t address,
                                  std::uint16_t value, WriteDone done) {
  impl_->submit_write(
      device,
      [=](Device& d) {
        return d.bus->link.write_register(d.cfg.unit_id, address, value,
                                          milliseconds(d.cfg.response_timeout_ms));
      },
      std::move(done));
}

void ModbusPoller::write_coils(const std::string& device, std::uint16_t address,
                               std::vector<std::uint8_t> values, WriteDone done) {
  impl_->submit_write(
      device,
      [=](Device& d) {
        return d.bus->link.write_coils(d.cfg.unit_id, address, values,
                                       milliseconds(d.cfg.response_timeout_ms));
      },
      std::move(done));
}

void ModbusPoller::write_registers(const std::string& device, std::uint16_t address,
                                   std::vector<std::uint16_t> values, WriteDone done) {
  impl_->submit_write(
      device,
      [=](Device& d) {
        return d.bus->link.write_registers(d.cfg.unit_id, address, values,
                                           milliseconds(d.cfg.response_timeout_ms));
      },
      std::move(done));
}

}  // namespace vibgate::ingest
