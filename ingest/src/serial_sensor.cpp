// serial_sensor.cpp — asynchronous reading of one streaming serial sensor, with reconnect.
#include "vibgate/ingest/serial_sensor.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include <boost/asio/serial_port.hpp>
#include <boost/asio/steady_timer.hpp>

#include "vibgate/ingest/serial_frame.hpp"

namespace vibgate::ingest {

std::string_view to_string(SensorState s) {
  switch (s) {
    case SensorState::stopped:
      return "stopped";
    case SensorState::offline:
      return "offline";
    case SensorState::online:
      return "online";
  }
  return "?";
}

namespace {

namespace asio = boost::asio;
using boost::system::error_code;

std::int64_t ns_since_epoch(auto time_point) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(time_point.time_since_epoch())
      .count();
}

// Throws std::invalid_argument "serial sensor '<name>': <problem>" for an unusable configuration.
void validate(const SerialSensorConfig& c) {
  auto fail = [&](const std::string& what) {
    throw std::invalid_argument("serial sensor '" + c.name + "': " + what);
  };
  if (c.name.empty()) fail("empty name");
  if (c.line.port.empty()) fail("empty port");
  if (c.line.baud == 0) fail("baud rate must be positive");
  if (c.line.data_bits < 5 || c.line.data_bits > 8) fail("data bits must be 5..8");
  if (c.line.stop_bits != 1 && c.line.stop_bits != 2) fail("stop bits must be 1 or 2");
  if (c.line.parity != Parity::none && c.line.parity != Parity::even &&
      c.line.parity != Parity::odd)
    fail("unknown parity");
  if (c.channel_names.size() > kFrameMaxChannels) fail("more than 16 channel names");
  if (c.mode == SerialMode::text) {
    if (!(c.sample_rate_hz > 0) || !std::isfinite(c.sample_rate_hz))
      fail("text mode needs a positive sample_rate_hz");
    if (c.channels == 0 || c.channels > kFrameMaxChannels) fail("channels must be 1..16");
    if (!c.channel_names.empty() && c.channel_names.size() != c.channels)
      fail("channel_names must name all " + std::to_string(c.channels) + " channels");
  }
}

}  // namespace

struct SerialSensor::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io, SerialSensorConfig config, BlockCallback on_block,
       SerialSensorOptions options);

  void start();
  void stop();
  void try_open();
  void open_failed(const std::string& what, const error_code& ec);
  void schedule_retry();
  void start_read();
  void on_read(const error_code& ec, std::size_t n);
  void on_frame(const DecodedFrame& f);
  void on_line(std::span<const float> values);
  void close_text_segment();
  void deliver_blocks();
  void set_state(SensorState s, const std::string& error);
  void publish_counters();
  void fail_safe() noexcept;
  std::string describe(const std::string& what, const std::string& reason) const;

  SerialSensorConfig cfg_;
  BlockCallback on_block_;
  SerialSensorOptions opts_;
  asio::serial_port port_;
  asio::steady_timer timer_;
  std::vector<std::uint8_t> rbuf_;
  std::vector<std::string> names_;  // channel names for indices 0..15

  FrameDecoder frames_;
  std::optional<TextLineDecoder> lines_;

  // Loop-thread state.
  bool running_ = false;
  bool failed_before_ = false;    // the next successful open is a reconnect
  std::uint64_t generation_ = 0;  // bumped on stop/close; stale handlers compare and return
  std::chrono::milliseconds backoff_;
  std::uint64_t bytes_ = 0, blocks_ = 0, reconnects_ = 0, open_failures_ = 0;
  SensorState state_ = SensorState::stopped;

  // Blocks decoded from the current read, stamped and delivered after the whole read is decoded.
  struct PendingFrame {
    std::size_t first_block, count;
    std::int64_t duration_ns;
  };
  std::vector<SampleBlock> pending_blocks_;
  std::vector<PendingFrame> pending_frames_;
  std::vector<std::vector<float>> text_acc_;  // text mode: per-channel samples of this segment
  bool seen_samples_ = false;                 // any sample decoded since construction
  bool next_gap_ = false;     // the next block starts after lost samples (SampleBlock::gap_before)
  bool segment_gap_ = false;  // text: gap_before of the segment being accumulated
  std::uint64_t bad_lines_seen_ = 0;

  mutable std::mutex mu_;
  SerialSensorStats published_;  // guarded by mu_
};

SerialSensor::Impl::Impl(asio::io_context& io, SerialSensorConfig config, BlockCallback on_block,
                         SerialSensorOptions options)
    : cfg_(std::move(config)),
      on_block_(std::move(on_block)),
      opts_(std::move(options)),
      port_(io),
      timer_(io),
      rbuf_(std::max<std::size_t>(opts_.read_buffer_bytes, 64)),
      frames_([this](const DecodedFrame& f) { on_frame(f); }),
      backoff_(opts_.backoff_initial) {
  validate(cfg_);
  if (opts_.backoff_initial.count() <= 0) opts_.backoff_initial = std::chrono::milliseconds(1);
  if (opts_.backoff_max < opts_.backoff_initial) opts_.backoff_max = opts_.backoff_initial;
  backoff_ = opts_.backoff_initial;
  for (std::size_t i = 0; i < kFrameMaxChannels; ++i)
    names_.push_back(i < cfg_.channel_names.size() ? cfg_.channel_names[i]
                                                   : cfg_.name + "/" + std::to_string(i));
  if (cfg_.mode == SerialMode::text) {
    lines_.emplace(cfg_.channels, [this](std::span<const float> v) { on_line(v); });
    text_acc_.resize(cfg_.channels);
  }
}

std::string SerialSensor::Impl::describe(const std::string& what, const std::string& reason) const {
  return "sensor '" + cfg_.name + "' (" + cfg_.line.port + "): " + what + ": " + reason;
}

void SerialSensor::Impl::set_state(SensorState s, const std::string& error) {
  const bool changed = s != state_;
  state_ = s;
  {
    std::lock_guard lock(mu_);
    published_.state = s;
    if (!error.empty()) published_.last_error = error;
  }
  if (changed && s != SensorState::stopped && opts_.on_state_change) {
    try {
      opts_.on_state_change(s, error);
    } catch (...) {  // a logging hook must not take the sensor down
    }
  }
}

// Copies the loop-thread counters into the snapshot read by stats().
void SerialSensor::Impl::publish_counters() {
  const FrameDecoderStats& f = frames_.stats();
  std::lock_guard lock(mu_);
  published_.bytes = bytes_;
  published_.blocks = blocks_;
  published_.reconnects = reconnects_;
  published_.open_failures = open_failures_;
  published_.crc_errors = f.crc_errors;
  published_.sequence_gaps = f.sequence_gaps;
  published_.invalid_headers = f.invalid_headers + f.oversize_headers + f.bad_values;
  published_.bytes_discarded = f.bytes_discarded;
  if (lines_) {
    published_.frames = lines_->stats().lines_ok;
    published_.bad_lines = lines_->stats().bad_lines;
  } else {
    published_.frames = f.frames_ok;
  }
}

// Last resort when a handler body threw (allocation failure): close the port, go offline and
// schedule a retry, so the sensor is not left without a pending operation. Never throws.
void SerialSensor::Impl::fail_safe() noexcept {
  try {
    error_code ignored;
    port_.close(ignored);
    ++generation_;
    failed_before_ = true;
    set_state(SensorState::offline, "sensor '" + cfg_.name + "': internal error, retrying");
    schedule_retry();
  } catch (...) {  // nothing more can be done; stats() still shows offline
  }
}

void SerialSensor::Impl::start() {
  if (running_) return;
  running_ = true;
  backoff_ = opts_.backoff_initial;
  try_open();
}

void SerialSensor::Impl::stop() {
  running_ = false;
  ++generation_;
  error_code ignored;
  port_.close(ignored);
  timer_.cancel();
  set_state(SensorState::stopped, {});
}

// Opens and configures the port; on success starts reading, on failure schedules a retry.
void SerialSensor::Impl::try_open() {
  error_code ec;
  port_.open(cfg_.line.port, ec);
  if (ec) return open_failed("cannot open port", ec);
  using base = asio::serial_port_base;
  port_.set_option(base::baud_rate(cfg_.line.baud), ec);
  if (ec) return open_failed("cannot set baud rate " + std::to_string(cfg_.line.baud), ec);
  port_.set_option(base::character_size(static_cast<unsigned>(cfg_.line.data_bits)), ec);
  if (ec)
    return open_failed("cannot set " + std::to_string(cfg_.line.data_bits) + " data bits", ec);
  const auto parity = cfg_.line.parity == Parity::none   ? base::parity::none
                      : cfg_.line.parity == Parity::even ? base::parity::even
                                                         : base::parity::odd;
  port_.set_option(base::parity(parity), ec);
  if (ec)
    return open_failed(std::string("cannot set parity ") + static_cast<char>(cfg_.line.parity), ec);
  port_.set_option(
      base::stop_bits(cfg_.line.stop_bits == 2 ? base::stop_bits::two : base::stop_bits::one), ec);
  if (ec)
    return open_failed("cannot set " + std::to_string(cfg_.line.stop_bits) + " stop bits", ec);
  port_.set_option(base::flow_control(base::flow_control::none), ec);
  if (ec) return open_failed("cannot disable flow control", ec);

  frames_.reset();
  if (lines_) lines_->reset();
  next_gap_ = seen_samples_;  // whatever the device sent while we were away is lost
  if (failed_before_) ++reconnects_;
  publish_counters();
  set_state(SensorState::online, {});
  start_read();
}

void SerialSensor::Impl::open_failed(const std::string& what, const error_code& ec) {
  error_code ignored;
  port_.close(ignored);
  ++generation_;
  ++open_failures_;
  failed_before_ = true;
  publish_counters();
  set_state(SensorState::offline, describe(what, ec.message()));
  schedule_retry();
  backoff_ = std::min(backoff_ * 2, opts_.backoff_max);
}

void SerialSensor::Impl::schedule_retry() {
  timer_.expires_after(backoff_);
  timer_.async_wait([self = shared_from_this(), gen = generation_](const error_code& ec) {
    if (ec || !self->running_ || gen != self->generation_) return;
    try {
      self->try_open();
    } catch (...) {  // e.g. bad_alloc
      self->fail_safe();
    }
  });
}

void SerialSensor::Impl::start_read() {
  port_.async_read_some(asio::buffer(rbuf_), [self = shared_from_this(), gen = generation_](
                                                 const error_code& ec, std::size_t n) {
    if (!self->running_ || gen != self->generation_) return;
    try {
      self->on_read(ec, n);
    } catch (...) {  // only allocation failures in the error path can get here
      self->fail_safe();
    }
  });
}

void SerialSensor::Impl::on_read(const error_code& ec, std::size_t n) {
  if (ec) {
    error_code ignored;
    port_.close(ignored);
    ++generation_;
    failed_before_ = true;
    publish_counters();
    set_state(SensorState::offline, describe("read failed", ec.message()));
    schedule_retry();  // backoff_ is back to the initial delay once data has been received
    backoff_ = std::min(backoff_ * 2, opts_.backoff_max);
    return;
  }
  const std::uint64_t gen = generation_;
  try {
    bytes_ += n;
    const std::span<const std::uint8_t> data(rbuf_.data(), n);
    pending_blocks_.clear();
    pending_frames_.clear();
    if (lines_)
      lines_->feed(data);
    else
      frames_.feed(data);
    if (n > 0) backoff_ = opts_.backoff_initial;
    deliver_blocks();
  } catch (const std::exception& e) {  // callback or allocation failure: report, keep reading
    std::lock_guard lock(mu_);
    published_.last_error = describe("processing failed", e.what());
  } catch (...) {
    std::lock_guard lock(mu_);
    published_.last_error = describe("processing failed", "unknown exception");
  }
  publish_counters();
  if (running_ && gen == generation_) start_read();  // the block callback may have called stop()
}

// Decoder callback (binary): one SampleBlock per channel, timestamps filled in deliver_blocks().
void SerialSensor::Impl::on_frame(const DecodedFrame& f) {
  const std::size_t first = pending_blocks_.size();
  const bool gap = seen_samples_ && (f.gap_before || next_gap_);
  next_gap_ = false;
  seen_samples_ = true;
  for (std::size_t c = 0; c < f.channels.size(); ++c) {
    SampleBlock b;
    b.channel = names_[c];
    b.sample_rate_hz = f.sample_rate_hz;
    b.units = cfg_.units;
    b.gap_before = gap;
    b.samples = f.channels[c];
    pending_blocks_.push_back(std::move(b));
  }
  const auto dur = std::llround(static_cast<double>(f.samples_per_channel) * 1e9 /
                                static_cast<double>(f.sample_rate_hz));
  pending_frames_.push_back({first, f.channels.size(), static_cast<std::int64_t>(dur)});
}

// Decoder callback (text): appends one sample instant to the current segment. Bad lines since the
// previous good line mean lost samples: the segment is closed and the next one marked as a gap.
void SerialSensor::Impl::on_line(std::span<const float> values) {
  const std::uint64_t bad = lines_->stats().bad_lines;
  if (bad != bad_lines_seen_) {
    bad_lines_seen_ = bad;
    close_text_segment();
    next_gap_ = true;
  }
  if (text_acc_[0].empty()) {
    segment_gap_ = seen_samples_ && next_gap_;
    next_gap_ = false;
  }
  seen_samples_ = true;
  for (std::size_t c = 0; c < values.size(); ++c) text_acc_[c].push_back(values[c]);
}

// Turns the accumulated text samples into one block per channel (stamped in deliver_blocks()).
void SerialSensor::Impl::close_text_segment() {
  if (text_acc_.empty() || text_acc_[0].empty()) return;
  const std::size_t first = pending_blocks_.size();
  const std::size_t k = text_acc_[0].size();
  for (std::size_t c = 0; c < text_acc_.size(); ++c) {
    SampleBlock b;
    b.channel = names_[c];
    b.sample_rate_hz = cfg_.sample_rate_hz;
    b.units = cfg_.units;
    b.gap_before = segment_gap_;
    b.samples = std::move(text_acc_[c]);
    text_acc_[c] = {};
    pending_blocks_.push_back(std::move(b));
  }
  const auto dur = std::llround(static_cast<double>(k) * 1e9 / cfg_.sample_rate_hz);
  pending_frames_.push_back({first, text_acc_.size(), static_cast<std::int64_t>(dur)});
  segment_gap_ = false;
}

// Stamps the blocks of this read — the last sample of the last frame arrived now, earlier frames
// end where the next one starts — and hands them to the callback in stream order.
void SerialSensor::Impl::deliver_blocks() {
  const std::int64_t mono = ns_since_epoch(std::chrono::steady_clock::now());
  const std::int64_t wall = ns_since_epoch(std::chrono::system_clock::now());
  if (lines_) close_text_segment();
  std::int64_t end_offset = 0;  // ns before now at which the current frame ends
  for (auto it = pending_frames_.rbegin(); it != pending_frames_.rend(); ++it) {
    const std::int64_t start = end_offset + it->duration_ns;
    for (std::size_t i = 0; i < it->count; ++i)
      pending_blocks_[it->first_block + i].first_sample = {mono - start, wall - start};
    end_offset = start;
  }
  for (const SampleBlock& b : pending_blocks_) {
    if (!running_) break;  // the callback called stop()
    ++blocks_;
    if (!on_block_) continue;
    try {
      on_block_(b);
    } catch (const std::exception& e) {  // one failing consumer call must not lose later blocks
      std::lock_guard lock(mu_);
      published_.last_error = describe("block callback failed", e.what());
    } catch (...) {
      std::lock_guard lock(mu_);
      published_.last_error = describe("block callback failed", "unknown exception");
    }
  }
  pending_blocks_.clear();
  pending_frames_.clear();
}

// ---------------------------------------------------------------------------------------------
SerialSensor::SerialSensor(asio::io_context& io, SerialSensorConfig config, BlockCallback on_block,
                           SerialSensorOptions options)
    : impl_(
          std::make_shared<Impl>(io, std::move(config), std::move(on_block), std::move(options))) {}

SerialSensor::~SerialSensor() { impl_->stop(); }

void SerialSensor::start() { impl_->start(); }
void SerialSensor::stop() { impl_->stop(); }

SerialSensorStats SerialSensor::stats() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->published_;
}

SensorState SerialSensor::state() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->published_.state;
}

const SerialSensorConfig& SerialSensor::config() const { return impl_->cfg_; }

}  // namespace vibgate::ingest
