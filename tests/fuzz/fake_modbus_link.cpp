// fake_modbus_link.cpp — ModbusLink answered by the fuzz input instead of libmodbus, and the
// scripted device's reference model of the waveform convention (see fake_modbus_link.hpp).
#include "fake_modbus_link.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <string>
#include <utility>

#include "fuzz_util.hpp"
#include "modbus_link.hpp"

namespace vibgate::fuzz {
namespace {

constexpr std::size_t kHeader = 8;         // registers, docs/modbus-waveform.md
constexpr std::size_t kMaxSamples = 8192;  // n of a valid header
constexpr std::size_t kMaxRegisters = 125;
constexpr std::size_t kMaxBits = 2000;

std::uint32_t u32(std::uint16_t hi, std::uint16_t lo) {
  return (static_cast<std::uint32_t>(hi) << 16) | lo;
}

// Data registers of a header (docs/modbus-waveform.md), or nullopt when it is invalid or the block
// would run past register 65535.
std::optional<std::size_t> block_registers(const std::vector<std::uint16_t>& h,
                                           std::uint16_t base) {
  const std::size_t n = h[1];
  const std::uint32_t rate = u32(h[2], h[3]);
  const std::uint16_t format = h[4];
  if (n == 0 || n > kMaxSamples || format > 1 || rate == 0 || rate > 1'000'000) return std::nullopt;
  const std::size_t regs = format == 0 ? n : 2 * n;
  if (base + kHeader + regs > 65536) return std::nullopt;
  return regs;
}

}  // namespace

FakeDevice& fake_device() {
  static FakeDevice device;
  return device;
}

void FakeDevice::reset(std::span<const std::uint8_t> script, std::vector<FakeWaveform> waveforms) {
  std::lock_guard lock(mu_);
  script_ = script;
  exhausted_ = script.empty();
  waves_ = std::move(waveforms);
}

bool FakeDevice::exhausted() const {
  std::lock_guard lock(mu_);
  return exhausted_;
}

std::uint8_t FakeDevice::byte() {
  const std::uint8_t b = script_.front();
  script_ = script_.subspan(1);
  return b;
}

FakeDevice::Outcome FakeDevice::control() {
  if (script_.empty()) {
    exhausted_ = true;
    return Outcome::exhausted;
  }
  const std::uint8_t c = byte();
  if (c < 0x10) return Outcome::exception;
  if (c < 0x20) return Outcome::timeout;
  return Outcome::ok;
}

FakeDevice::Outcome FakeDevice::read_registers(ingest::RegisterType reg, std::uint16_t addr,
                                               std::uint16_t count,
                                               std::vector<std::uint16_t>& out) {
  FUZZ_CHECK(count >= 1 && count <= kMaxRegisters, "register request outside the Modbus limit");
  FUZZ_CHECK(addr + std::size_t{count} <= 65536, "register request past register 65535");
  std::lock_guard lock(mu_);
  const Outcome o = control();
  if (o != Outcome::ok) return o;
  if (script_.size() < 2 * std::size_t{count}) {
    exhausted_ = true;
    script_ = {};
    return Outcome::exhausted;
  }
  out.resize(count);
  for (auto& r : out) {
    const std::uint8_t hi = byte();
    r = static_cast<std::uint16_t>((hi << 8) | byte());
  }
  for (auto& w : waves_)
    if (w.reg == reg) observe(w, addr, out);
  return Outcome::ok;
}

FakeDevice::Outcome FakeDevice::read_bits(std::uint16_t addr, std::uint16_t count,
                                          std::vector<std::uint8_t>& out) {
  FUZZ_CHECK(count >= 1 && count <= kMaxBits, "bit request outside the Modbus limit");
  FUZZ_CHECK(addr + std::size_t{count} <= 65536, "bit request past address 65535");
  std::lock_guard lock(mu_);
  const Outcome o = control();
  if (o != Outcome::ok) return o;
  const std::size_t bytes = (std::size_t{count} + 7) / 8;
  if (script_.size() < bytes) {
    exhausted_ = true;
    script_ = {};
    return Outcome::exhausted;
  }
  out.resize(count);
  std::uint8_t b = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (i % 8 == 0) b = byte();
    out[i] = (b >> (i % 8)) & 1;
  }
  return Outcome::ok;
}

// Follows one waveform through header read, data chunks and sequence re-read.
void FakeDevice::observe(FakeWaveform& w, std::uint16_t addr,
                         const std::vector<std::uint16_t>& regs) {
  if (addr == w.base && regs.size() == kHeader) {  // header
    w.header.reset();
    w.data.clear();
    const bool fresh = !w.last_delivered || *w.last_delivered != regs[0];
    if (fresh && block_registers(regs, w.base)) w.header = regs;
    return;
  }
  FUZZ_CHECK(w.header.has_value(), "waveform data read without a new, valid header");
  const std::size_t needed = *block_registers(*w.header, w.base);
  if (addr == w.base && regs.size() == 1) {  // sequence re-read ends the block
    FUZZ_CHECK(w.data.size() == needed, "sequence re-read before the block was complete");
    const std::vector<std::uint16_t> h = *std::exchange(w.header, std::nullopt);
    if (regs[0] != h[0]) {
      ++w.torn;
      return;
    }
    ExpectedBlock b;
    b.sequence = h[0];
    b.rate_hz = u32(h[2], h[3]);
    b.gap_before = !w.last_delivered ||
                   static_cast<std::uint16_t>(h[0] - *w.last_delivered) != 1 || w.gap_pending;
    const float scale = std::bit_cast<float>(u32(h[6], h[7]));
    const std::size_t n = h[1];
    for (std::size_t i = 0; i < n; ++i)
      b.samples.push_back(h[4] == 0
                              ? static_cast<float>(static_cast<std::int16_t>(w.data[i])) * scale
                              : std::bit_cast<float>(u32(w.data[2 * i], w.data[2 * i + 1])));
    w.last_delivered = h[0];
    // A block with a NaN/Inf sample is dropped (not re-read); the next one is flagged a gap.
    for (float v : b.samples) {
      if (!std::isfinite(v)) {
        w.gap_pending = true;
        return;
      }
    }
    w.gap_pending = false;
    w.expected.push_back(std::move(b));
    return;
  }
  FUZZ_CHECK(addr == w.base + kHeader + w.data.size(), "waveform data chunk not contiguous");
  FUZZ_CHECK(regs.size() == std::min(kMaxRegisters, needed - w.data.size()),
             "waveform data chunk of the wrong size");
  w.data.insert(w.data.end(), regs.begin(), regs.end());
}

std::optional<ExpectedBlock> FakeDevice::take_expected(std::size_t index) {
  std::lock_guard lock(mu_);
  auto& q = waves_.at(index).expected;
  if (q.empty()) return std::nullopt;
  ExpectedBlock b = std::move(q.front());
  q.pop_front();
  return b;
}

std::uint64_t FakeDevice::torn(std::size_t index) const {
  std::lock_guard lock(mu_);
  return waves_.at(index).torn;
}

}  // namespace vibgate::fuzz

// ---- ModbusLink over the fake device ------------------------------------------------------------
namespace vibgate::ingest::detail {

using fuzz::fake_device;
using fuzz::FakeDevice;

ModbusLink::ModbusLink(void* ctx, std::string description, bool rtu)
    : ctx_(ctx), description_(std::move(description)), rtu_(rtu) {}

ModbusLink ModbusLink::tcp(const std::string& host, std::uint16_t port) {
  return ModbusLink(nullptr, host + ":" + std::to_string(port), false);
}

ModbusLink ModbusLink::rtu(const SerialLineConfig& line) {
  return ModbusLink(nullptr, line.port, true);
}

ModbusLink::ModbusLink(ModbusLink&& o) noexcept
    : ctx_(o.ctx_),
      description_(std::move(o.description_)),
      rtu_(o.rtu_),
      connected_(o.connected_) {
  o.connected_ = false;
}

ModbusLink& ModbusLink::operator=(ModbusLink&& o) noexcept {
  ctx_ = o.ctx_;
  description_ = std::move(o.description_);
  rtu_ = o.rtu_;
  connected_ = std::exchange(o.connected_, false);
  return *this;
}

ModbusLink::~ModbusLink() = default;

void ModbusLink::close() { connected_ = false; }

std::string ModbusLink::ensure_connected(std::chrono::milliseconds) {
  if (connected_) return {};
  if (fake_device().exhausted()) return "connect to " + description_ + " failed: script exhausted";
  connected_ = true;
  return {};
}

std::string ModbusLink::prepare(int, std::chrono::milliseconds timeout) {
  last_sent_ = false;
  last_exception_ = false;
  if (std::string e = ensure_connected(timeout); !e.empty()) return e;
  last_sent_ = true;
  return {};
}

namespace {
// The real link's reactions: an exception keeps the connection, anything else closes it.
std::string outcome(FakeDevice::Outcome o, bool& exception, bool& connected) {
  switch (o) {
    case FakeDevice::Outcome::ok:
      return {};
    case FakeDevice::Outcome::exception:
      exception = true;
      return "Illegal data address";
    case FakeDevice::Outcome::timeout:
    case FakeDevice::Outcome::exhausted:
      connected = false;
      return "Connection timed out";
  }
  return "?";
}
}  // namespace

std::string ModbusLink::read_bits(int unit, RegisterType, std::uint16_t addr, std::uint16_t count,
                                  std::vector<std::uint8_t>& out,
                                  std::chrono::milliseconds timeout) {
  if (std::string e = prepare(unit, timeout); !e.empty()) return e;
  out.assign(count, 0xEE);  // garbage unless the read succeeds, as with libmodbus
  return outcome(fake_device().read_bits(addr, count, out), last_exception_, connected_);
}

std::string ModbusLink::read_registers(int unit, RegisterType reg, std::uint16_t addr,
                                       std::uint16_t count, std::vector<std::uint16_t>& out,
                                       std::chrono::milliseconds timeout) {
  if (std::string e = prepare(unit, timeout); !e.empty()) return e;
  out.assign(count, 0xEEEE);
  return outcome(fake_device().read_registers(reg, addr, count, out), last_exception_, connected_);
}

// Writes are not part of the polling path; they succeed without touching the script.
std::string ModbusLink::write_coil(int unit, std::uint16_t, bool, std::chrono::milliseconds t) {
  return prepare(unit, t);
}
std::string ModbusLink::write_register(int unit, std::uint16_t, std::uint16_t,
                                       std::chrono::milliseconds t) {
  return prepare(unit, t);
}
std::string ModbusLink::write_coils(int unit, std::uint16_t, const std::vector<std::uint8_t>&,
                                    std::chrono::milliseconds t) {
  return prepare(unit, t);
}
std::string ModbusLink::write_registers(int unit, std::uint16_t, const std::vector<std::uint16_t>&,
                                        std::chrono::milliseconds t) {
  return prepare(unit, t);
}

}  // namespace vibgate::ingest::detail
