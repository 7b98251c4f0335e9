// ingest_config_fuzz.cpp — libFuzzer target for the ingest's TOML configuration parser,
// ingest::parse_ingest_config() ([[bus]], [[device]] with tags and waveforms, [[serial_sensor]]);
// toml++ parses the document underneath. The input is the configuration text.
//
// Asserted beyond "no crash, no sanitizer report":
//  - the only exception is ingest::ConfigError, and its message starts "<source>:<line>: ";
//  - an accepted configuration holds what the poller and the serial readers rely on without
//    checking again: unique names; RTU devices on a declared bus; tags that fit the register
//    space (bits are bool); waveform headers below register 65528; serial channel counts 1..16
//    with one name per channel when named; text-mode rates 1 Hz … 1 MHz; and a read plan
//    (plan_reads) inside the Modbus limits.
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "fuzz_util.hpp"
#include "vibgate/ingest/config.hpp"
#include "vibgate/ingest/tags.hpp"

namespace vibgate::fuzz {
namespace {

using namespace vibgate::ingest;

void check_config(const IngestConfig& c) {
  std::set<std::string> names;
  for (const BusConfig& b : c.buses) FUZZ_CHECK(names.insert(b.name).second, b.name);
  for (const DeviceConfig& d : c.devices) {
    FUZZ_CHECK(names.insert(d.name).second, d.name);
    FUZZ_CHECK(!d.tags.empty() || !d.waveforms.empty(), "device without tags and waveforms");
    if (d.protocol == Protocol::rtu) {
      bool found = false;
      for (const BusConfig& b : c.buses) found = found || b.name == d.bus;
      FUZZ_CHECK(found, "RTU device on an undeclared bus");
    }
    for (const TagConfig& t : d.tags) {
      FUZZ_CHECK(t.address + register_count(t.type) <= 65536, "tag runs past register 65535");
      FUZZ_CHECK(!is_bit(t.reg) || t.type == ValueType::boolean, "bit tag of a numeric type");
    }
    for (const WaveformConfig& w : d.waveforms)
      FUZZ_CHECK(w.base_address <= 65535 - 8, "waveform header runs past register 65535");
    for (const ReadBlock& b : plan_reads(d.tags)) {
      FUZZ_CHECK(
          b.count >= 1 && b.count <= (is_bit(b.reg) ? kMaxBitsPerRead : kMaxRegistersPerRead),
          "read block outside the Modbus limits");
      FUZZ_CHECK(b.address + std::size_t{b.count} <= 65536, "read block past register 65535");
    }
  }
  for (const SerialSensorConfig& s : c.serial_sensors) {
    FUZZ_CHECK(names.insert(s.name).second, s.name);
    FUZZ_CHECK(s.channels >= 1 && s.channels <= 16, "serial channel count");
    FUZZ_CHECK(s.channel_names.empty() || s.channel_names.size() == s.channels, "channel names");
    if (s.mode == SerialMode::text)
      FUZZ_CHECK(s.sample_rate_hz >= 1 && s.sample_rate_hz <= 1e6, "text-mode rate");
  }
}

}  // namespace
}  // namespace vibgate::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  vibgate::ingest::IngestConfig config;
  try {
    config = vibgate::ingest::parse_ingest_config(text, "fuzz.toml");
  } catch (const vibgate::ingest::ConfigError& e) {
    FUZZ_CHECK(std::string_view(e.what()).starts_with("fuzz.toml:"), e.what());
    return 0;
  }
  vibgate::fuzz::check_config(config);
  return 0;
}
