// unit_image.cpp — register image of one simulated unit: tag encoding and waveform publication.
#include "unit_image.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <new>

#include "vibgate/ingest/tags.hpp"

namespace vibgate::sim {

using ingest::RegisterType;
using ingest::ValueType;

namespace {

constexpr double kPi = 3.14159265358979323846;
// Catch-up limit: samples more than max(4 blocks, 1 s) behind are skipped, not computed.
constexpr std::uint64_t kMaxBehindBlocks = 4;

// Converts an engineering value to a raw value the register type holds: integers rounded and
// saturated, floats clamped to the finite range, NaN → 0 (encode_registers needs in-range input).
double to_raw(double value, const TagSpec& t) {
  double raw = (value - t.offset) / t.scale;
  if (std::isnan(raw)) return 0.0;
  double lo = 0, hi = 0;
  switch (t.type) {
    case ValueType::boolean: return raw != 0 ? 1.0 : 0.0;
    case ValueType::int16: lo = -32768; hi = 32767; break;
    case ValueType::uint16: lo = 0; hi = 65535; break;
    case ValueType::int32: lo = -2147483648.0; hi = 2147483647.0; break;
    case ValueType::uint32: lo = 0; hi = 4294967295.0; break;
    case ValueType::int64: lo = -0x1p63; hi = std::nextafter(0x1p63, 0.0); break;
    case ValueType::uint64: lo = 0; hi = std::nextafter(0x1p64, 0.0); break;
    case ValueType::float32:
      return std::clamp(raw, -static_cast<double>(std::numeric_limits<float>::max()),
                        static_cast<double>(std::numeric_limits<float>::max()));
    case ValueType::float64:
      return std::clamp(raw, -std::numeric_limits<double>::max(), std::numeric_limits<double>::max());
  }
  return std::clamp(std::round(raw), lo, hi);
}

double tag_value(const TagSpec& t, ProcessModel* p, double time_s) {
  switch (t.model) {
    case ValueModel::constant: return t.value;
    case ValueModel::sine:
      return t.mean + t.amplitude * std::sin(2 * kPi * time_s / t.period_s + t.phase_deg * kPi / 180.0);
    case ValueModel::temperature: return p->temperature_c(time_s);
    case ValueModel::speed: return p->speed_rpm(time_s);
    case ValueModel::load: return p->load_percent(time_s);
    case ValueModel::run: return p->running(time_s) ? 1.0 : 0.0;
    case ValueModel::uptime: return std::floor(time_s);
  }
  return 0.0;
}

struct Range {
  std::size_t begin = std::numeric_limits<std::size_t>::max(), end = 0;
  void add(std::size_t b, std::size_t e) {
    begin = std::min(begin, b);
    end = std::max(end, e);
  }
  unsigned int start() const { return end == 0 ? 0u : static_cast<unsigned int>(begin); }
  unsigned int count() const { return end == 0 ? 0u : static_cast<unsigned int>(end - begin); }
};

}  // namespace

UnitImage::UnitImage(const UnitSpec& spec, const std::vector<MachineConfig>& machines,
                     std::vector<ProcessModel>& processes, std::vector<std::uint64_t>& consumer_counter)
    : spec_(&spec) {
  Range ranges[4];  // indexed by RegisterType
  for (const auto& t : spec.tags) {
    const std::size_t len = ingest::is_bit(t.reg) ? 1 : ingest::register_count(t.type);
    ranges[static_cast<int>(t.reg)].add(t.address, t.address + len);
    tags_.push_back({&t, t.machine == kNoMachine ? nullptr : &processes.at(t.machine)});
  }
  waveforms_.reserve(spec.waveforms.size());
  for (const auto& w : spec.waveforms) {
    ranges[static_cast<int>(w.reg)].add(w.address, w.address + w.register_count());
    const std::uint64_t consumer = consumer_counter.at(w.machine)++;
    waveforms_.push_back(Waveform{&w,
                                  SampleStream(machines.at(w.machine), processes.at(w.machine),
                                               static_cast<double>(w.sample_rate_hz), consumer),
                                  std::vector<float>(w.samples), 0, 0});
  }
  const auto& coils = ranges[static_cast<int>(RegisterType::coil)];
  const auto& discrete = ranges[static_cast<int>(RegisterType::discrete_input)];
  const auto& holding = ranges[static_cast<int>(RegisterType::holding_register)];
  const auto& input = ranges[static_cast<int>(RegisterType::input_register)];
  mapping_ = modbus_mapping_new_start_address(coils.start(), coils.count(), discrete.start(), discrete.count(),
                                              holding.start(), holding.count(), input.start(), input.count());
  if (!mapping_) throw std::bad_alloc();
}

UnitImage::~UnitImage() { modbus_mapping_free(mapping_); }

std::uint16_t* UnitImage::registers(RegisterType reg, std::uint16_t address) {
  if (reg == RegisterType::holding_register)
    return mapping_->tab_registers + (address - mapping_->start_registers);
  return mapping_->tab_input_registers + (address - mapping_->start_input_registers);
}

void UnitImage::write_tag(const Tag& tag, double t) {
  const TagSpec& s = *tag.spec;
  const double value = tag_value(s, tag.process, t);
  if (ingest::is_bit(s.reg)) {
    const std::uint8_t bit = value >= 0.5 ? 1 : 0;
    if (s.reg == RegisterType::coil)
      mapping_->tab_bits[s.address - mapping_->start_bits] = bit;
    else
      mapping_->tab_input_bits[s.address - mapping_->start_input_bits] = bit;
    return;
  }
  const auto regs = ingest::encode_registers(to_raw(value, s), s.type, s.order);
  std::copy(regs.begin(), regs.end(), registers(s.reg, s.address));
}

void UnitImage::start() {
  for (auto& w : waveforms_) {
    const WaveformSpec& s = *w.spec;
    std::uint16_t* r = registers(s.reg, s.address);
    r[1] = static_cast<std::uint16_t>(s.samples);
    r[2] = static_cast<std::uint16_t>(s.sample_rate_hz >> 16);
    r[3] = static_cast<std::uint16_t>(s.sample_rate_hz & 0xFFFF);
    r[4] = static_cast<std::uint16_t>(s.format);
    r[5] = 0;
    const std::uint32_t scale = std::bit_cast<std::uint32_t>(s.format == WaveFormat::int16 ? s.scale : 1.0f);
    r[6] = static_cast<std::uint16_t>(scale >> 16);
    r[7] = static_cast<std::uint16_t>(scale & 0xFFFF);
    w.stream.generate(w.back);
    w.filled = w.back.size();
    publish(w);
  }
  for (const auto& tag : tags_) write_tag(tag, 0.0);
}

void UnitImage::update_tags(double t) {
  for (const auto& tag : tags_)
    if (tag.spec->model != ValueModel::constant) write_tag(tag, t);
}

void UnitImage::publish(Waveform& w) {
  const WaveformSpec& s = *w.spec;
  std::uint16_t* r = registers(s.reg, s.address);
  std::uint16_t* out = r + 8;
  if (s.format == WaveFormat::int16) {
    const double inv = 1.0 / static_cast<double>(s.scale);
    for (float x : w.back) {
      double q = std::round(static_cast<double>(x) * inv);
      if (!(q >= -32768.0 && q <= 32767.0)) {  // also catches NaN
        ++stats_.samples_saturated;
        q = std::isnan(q) ? 0.0 : std::clamp(q, -32768.0, 32767.0);
      }
      *out++ = static_cast<std::uint16_t>(static_cast<std::int16_t>(q));
    }
  } else {
    for (float x : w.back) {
      const std::uint32_t b = std::bit_cast<std::uint32_t>(x);
      *out++ = static_cast<std::uint16_t>(b >> 16);
      *out++ = static_cast<std::uint16_t>(b & 0xFFFF);
    }
  }
  w.filled = 0;
  ++w.sequence;  // wraps 65535 → 0
  r[0] = w.sequence;  // last: the block is complete
  ++stats_.blocks_published;
}

void UnitImage::advance_waveforms(double t) {
  for (auto& w : waveforms_) {
    const std::uint64_t n = w.spec->samples;
    // The first block was published at start, so samples are acquired one block ahead of t.
    const auto due = n + static_cast<std::uint64_t>(std::floor(t * static_cast<double>(w.spec->sample_rate_hz)));
    std::uint64_t pos = w.stream.position();
    const auto max_behind = std::max<std::uint64_t>(kMaxBehindBlocks * n, w.spec->sample_rate_hz);
    if (due > pos + max_behind) {
      // Stalled (suspended process, overloaded host): skip to the start of the current block.
      const std::uint64_t target = due / n * n;
      const std::uint64_t blocks = (target - (pos - w.filled)) / n;
      w.stream.skip(target - pos);
      w.filled = 0;
      w.sequence = static_cast<std::uint16_t>(w.sequence + blocks);
      stats_.blocks_skipped += blocks;
      pos = target;
    }
    while (pos < due) {
      const std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(due - pos, n - w.filled));
      w.stream.generate(std::span<float>(w.back).subspan(w.filled, k));
      w.filled += k;
      pos += k;
      if (w.filled == n) publish(w);
    }
  }
}

}  // namespace vibgate::sim
