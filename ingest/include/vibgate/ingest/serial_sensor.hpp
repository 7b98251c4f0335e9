// vibgate/ingest/serial_sensor.hpp — one streaming vibration sensor on a serial port.
//
// A SerialSensor opens the tty of a [[serial_sensor]] (SerialSensorConfig), reads it
// asynchronously on an Asio io_context, decodes binary frames or text lines
// (vibgate/ingest/serial_frame.hpp) and delivers one SampleBlock per channel per frame (binary) or
// per run of good lines within one read (text), stamped at arrival and flagged gap_before after
// lost samples (docs/serial-protocol.md). When the port fails or vanishes it goes offline, records
// the error, closes the port and retries opening with exponential backoff. It never blocks the loop
// and never lets an exception escape a handler.
//
// Threads: construct, start(), stop() and destroy on the loop thread (or while the loop is not
// running). The block callback runs on the loop thread. stats() may be called from any thread.
// Handlers keep the internal state alive, so destroying a SerialSensor with operations pending is
// safe as long as the io_context outlives it; after stop()/destruction the callback is not called.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>

#include "vibgate/common/types.hpp"
#include "vibgate/ingest/config.hpp"

namespace vibgate::ingest {

enum class SensorState : std::uint8_t {
  stopped,  // not started, or stop() called
  offline,  // port closed: opening failed or the port failed; a retry is scheduled
  online,   // port open and being read
};
std::string_view to_string(SensorState s);

struct SerialSensorOptions {
  std::chrono::milliseconds backoff_initial{1000};  // first retry delay after a failure
  std::chrono::milliseconds backoff_max{30000};     // delay doubles per failed attempt up to this
  std::size_t read_buffer_bytes = 16384;            // size of one async_read_some
  // Optional: called on the loop thread when the sensor goes online or offline (for logging);
  // `error` is the new last_error when going offline, empty when going online. Must not throw
  // (exceptions are caught and ignored).
  std::function<void(SensorState state, const std::string& error)> on_state_change;
};

struct SerialSensorStats {
  SensorState state = SensorState::stopped;
  std::uint64_t bytes = 0;   // bytes read from the port
  std::uint64_t frames = 0;  // binary: valid frames; text: good lines
  std::uint64_t blocks = 0;  // SampleBlocks delivered
  std::uint64_t crc_errors = 0;
  std::uint64_t sequence_gaps = 0;
  std::uint64_t bad_lines = 0;        // text mode
  std::uint64_t invalid_headers = 0;  // binary: invalid + oversize headers + non-finite frames
  std::uint64_t bytes_discarded = 0;  // binary: bytes skipped while resynchronising
  std::uint64_t reconnects = 0;       // successful opens after a failure
  std::uint64_t open_failures = 0;    // failed open attempts (incl. rejected line settings)
  std::string last_error;  // "sensor 'x' (/dev/ttyUSB0): <what>: <reason>"; kept when back online
};

class SerialSensor {
 public:
  using BlockCallback = std::function<void(const SampleBlock&)>;

  // Validates the configuration (throws std::invalid_argument naming the sensor: empty name or
  // port, zero baud, data bits not 5..8, stop bits not 1/2, text mode without a positive finite
  // sample rate or with channels outside 1..16, channel_names neither empty nor `channels` long
  // in text mode, more than 16 names in binary mode). Binary mode takes rate and channel count
  // from each frame; channels beyond the given names are called <name>/<index> (from 0).
  // Does not touch the port until start().
  SerialSensor(boost::asio::io_context& io, SerialSensorConfig config, BlockCallback on_block,
               SerialSensorOptions options = {});
  ~SerialSensor();  // stop()
  SerialSensor(const SerialSensor&) = delete;
  SerialSensor& operator=(const SerialSensor&) = delete;

  // Opens the port now (on failure: offline, retry scheduled). No effect when already started.
  void start();
  // Closes the port, cancels the retry timer; the callback is not called afterwards. Idempotent.
  void stop();

  SerialSensorStats stats() const;  // consistent snapshot; any thread
  SensorState state() const;        // any thread
  const SerialSensorConfig& config() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace vibgate::ingest
