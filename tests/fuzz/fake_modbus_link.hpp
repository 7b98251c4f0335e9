// fake_modbus_link.hpp — a scripted Modbus device behind the poller's private ModbusLink
// (ingest/src/modbus_link.hpp), for modbus_waveform_fuzz. fake_modbus_link.cpp defines every
// ModbusLink member in place of ingest/src/modbus_link.cpp (libmodbus), so the real poller.cpp
// runs unchanged against answers taken from the fuzz input.
//
// Every request reads one control byte from the script: 0x00-0x0F answers with a Modbus
// exception, 0x10-0x1F times out (the link closes, as the real one does), anything else succeeds
// with the next 2 bytes per register (big-endian) or 1 byte per 8 bits. When the script runs out,
// connects fail and the target stops the poller.
//
// The device also keeps a reference model of the waveform convention (docs/modbus-waveform.md),
// written from the document, not from poller.cpp: each waveform's header, the data chunks read
// after it, and the sequence re-read. It checks the poller's requests (Modbus limits, no data
// read without a valid header, chunks contiguous and inside the announced block) and queues the
// block the poller must deliver, which the target compares with SampleBlock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "vibgate/ingest/config.hpp"

namespace vibgate::fuzz {

// A waveform block the poller must deliver (in order, per waveform).
struct ExpectedBlock {
  std::uint16_t sequence = 0;
  double rate_hz = 0;
  bool gap_before = false;
  std::vector<float> samples;
};

struct FakeWaveform {
  ingest::RegisterType reg = ingest::RegisterType::input_register;  // unique per waveform
  std::uint16_t base = 0;

  // Reference model state (worker thread, under FakeDevice::mu).
  std::optional<std::vector<std::uint16_t>> header;  // last header served, when valid
  std::vector<std::uint16_t> data;                   // data registers served since
  std::optional<std::uint16_t> last_delivered;       // sequence of the last block queued
  std::uint64_t torn = 0;                            // re-reads that found a new sequence
  bool gap_pending = false;                          // a block with a NaN/Inf sample was dropped
  std::deque<ExpectedBlock> expected;
};

class FakeDevice {
 public:
  // Starts a new input: the script and the device's waveforms (register types must differ).
  void reset(std::span<const std::uint8_t> script, std::vector<FakeWaveform> waveforms);
  bool exhausted() const;

  // Called by the fake ModbusLink (bus worker thread).
  enum class Outcome { ok, exception, timeout, exhausted };
  Outcome read_registers(ingest::RegisterType reg, std::uint16_t addr, std::uint16_t count,
                         std::vector<std::uint16_t>& out);
  Outcome read_bits(std::uint16_t addr, std::uint16_t count, std::vector<std::uint8_t>& out);

  // The next block expected on waveform `index`, removed from the queue (target, loop thread).
  std::optional<ExpectedBlock> take_expected(std::size_t index);
  std::uint64_t torn(std::size_t index) const;

 private:
  Outcome control();
  std::uint8_t byte();
  void observe(FakeWaveform& w, std::uint16_t addr, const std::vector<std::uint16_t>& regs);

  mutable std::mutex mu_;
  std::span<const std::uint8_t> script_;
  bool exhausted_ = true;
  std::vector<FakeWaveform> waves_;
};

FakeDevice& fake_device();

}  // namespace vibgate::fuzz
