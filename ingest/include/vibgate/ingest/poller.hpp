// vibgate/ingest/poller.hpp — polls Modbus TCP/RTU devices on an Asio event loop.
//
// The loop thread owns every timer and all device state; it never blocks. libmodbus is blocking,
// so each bus — one TCP connection, or one RS-485 line shared by RTU devices — has its own worker
// thread (a single-thread pool acting as its strand) that performs the requests one at a time and
// posts the results back to the loop. A dead or blackholed device therefore delays only its own
// bus. Poll schedules are absolute (next = previous due time + interval; no drift); a poll still
// in flight at its next due time makes that slot an overrun, counted, never queued.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vibgate/common/types.hpp"
#include "vibgate/ingest/config.hpp"

namespace vibgate::ingest {

enum class DeviceState : std::uint8_t { offline, degraded, online };
std::string_view to_string(DeviceState s);

struct DeviceHealth {
  DeviceState state = DeviceState::offline;
  std::string last_error;                 // "" when the last poll fully succeeded
  std::uint32_t consecutive_failures = 0; // polls in a row with no successful request
  double rtt_ms_last = 0, rtt_ms_avg = 0; // request round trip (EWMA, α = 0.1)
  std::uint64_t polls = 0, poll_failures = 0, overruns = 0;
  // requests: requests sent; request_errors: failed attempts, failed connects included.
  std::uint64_t requests = 0, request_errors = 0, bytes_sent = 0, bytes_received = 0;
  std::uint64_t waveform_blocks = 0, waveform_gaps = 0, waveform_torn = 0;
  std::uint64_t waveform_invalid = 0;  // new blocks dropped for a NaN/Inf sample
  std::int64_t last_ok_wall_ns = 0;
};

struct TagSample {
  std::string device, tag, unit;
  double value = 0;
  Timestamp t;                            // when the response arrived
};

struct IngestCallbacks {
  std::function<void(const std::vector<TagSample>&)> on_tags;      // per poll, good values only
  std::function<void(const SampleBlock&)> on_samples;              // waveform blocks
  std::function<void(const std::string& device, const DeviceHealth&)> on_health_change;
};

class ModbusPoller {
 public:
  // cfg must come from parse_ingest_config (validated). Callbacks run on the loop thread.
  ModbusPoller(boost::asio::io_context& loop, IngestConfig cfg, IngestCallbacks callbacks);
  ~ModbusPoller();  // stop()
  ModbusPoller(const ModbusPoller&) = delete;
  ModbusPoller& operator=(const ModbusPoller&) = delete;

  // Arms every device's timer; first polls are staggered over one interval. Thread: loop.
  void start();
  // Cancels timers and joins the bus workers (an in-flight request ends within its timeout).
  // Thread: any but the workers; pending results are dropped.
  void stop();

  // Snapshot of every device's health, in configuration order. Thread: loop.
  std::vector<std::pair<std::string, DeviceHealth>> health() const;

  // Delay between each poll's due time and its first request on the wire, in ms, since the last
  // call (at most the newest 1 000 000). For benchmarks and tests. Thread: loop.
  std::vector<double> take_jitter_ms();

  // Writes (FC 5, 6, 15, 16) on the device's bus worker, queued behind any poll in progress;
  // done(error) runs on the loop ("" = ok). Writes are not retried (a repeated write is a new
  // command to a machine) and not counted in DeviceHealth. An unknown device is reported through
  // done. Thread: loop.
  using WriteDone = std::function<void(const std::string& error)>;
  void write_coil(const std::string& device, std::uint16_t address, bool value, WriteDone done);
  void write_register(const std::string& device, std::uint16_t address, std::uint16_t value, WriteDone done);
  void write_coils(const std::string& device, std::uint16_t address, std::vector<std::uint8_t> values,
                   WriteDone done);
  void write_registers(const std::string& device, std::uint16_t address, std::vector<std::uint16_t> values,
                       WriteDone done);

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace vibgate::ingest
