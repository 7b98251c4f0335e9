// vibgate/ingest/config.hpp — what the ingest polls and reads, parsed from the TOML configuration.
//
// Sections (docs/configuration.md): [[bus]] serial lines shared by Modbus RTU devices,
// [[device]] Modbus TCP or RTU devices with [[device.tag]] scalar tags and [[device.waveform]]
// sample blocks, and [[serial_sensor]] streaming accelerometer boards. Parsing validates every
// key and throws ConfigError "<file>:<line>: <key>: <problem>" for the first mistake.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "vibgate/common/types.hpp"

namespace vibgate::ingest {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class RegisterType : std::uint8_t { coil, discrete_input, input_register, holding_register };
enum class ValueType : std::uint8_t { boolean, int16, uint16, int32, uint32, int64, uint64, float32, float64 };
// Register/byte order of multi-register values (docs/configuration.md): ABCD big-endian words and
// bytes (Modbus standard), CDAB word-swapped, BADC byte-swapped, DCBA both (little-endian).
enum class WordOrder : std::uint8_t { ABCD, CDAB, BADC, DCBA };

// The configuration's spelling of each value ("holding", "float32", "CDAB"), as parsed.
std::string_view to_string(RegisterType r);
std::string_view to_string(ValueType t);
std::string_view to_string(WordOrder o);

std::size_t register_count(ValueType t);  // 16-bit registers one value occupies (1 for bits)
bool is_bit(RegisterType r);

struct TagConfig {
  std::string name;
  RegisterType reg = RegisterType::holding_register;
  std::uint16_t address = 0;
  ValueType type = ValueType::uint16;
  WordOrder order = WordOrder::ABCD;
  double scale = 1.0, offset = 0.0;  // value = raw · scale + offset
  std::string unit;
};

// A block of sample registers plus a sequence register (docs/modbus-waveform.md).
struct WaveformConfig {
  std::string name;                 // channel name, e.g. "de_accel"
  RegisterType reg = RegisterType::input_register;
  std::uint16_t base_address = 0;   // the header starts here
  AccelUnits units = AccelUnits::g;
};

enum class Parity : char { none = 'N', even = 'E', odd = 'O' };

struct SerialLineConfig {
  std::string port;                 // e.g. /dev/ttyUSB0
  std::uint32_t baud = 19200;
  Parity parity = Parity::even;
  int data_bits = 8, stop_bits = 1;
};

// One RS-485 line shared by RTU devices; polls on it are strictly serialized.
struct BusConfig {
  std::string name;
  SerialLineConfig line;
  std::uint32_t silence_ms = 0;     // extra silence between requests; 0: 3.5 characters, min 2 ms
};

enum class Protocol : std::uint8_t { tcp, rtu };

struct DeviceConfig {
  std::string name;
  Protocol protocol = Protocol::tcp;
  std::string host;                 // tcp
  std::uint16_t port = 502;         // tcp
  std::string bus;                  // rtu: name of a [[bus]]
  int unit_id = 1;
  std::uint32_t poll_interval_ms = 1000;
  std::uint32_t response_timeout_ms = 500;
  std::uint32_t retries = 2;        // extra attempts of a failed request within one poll
  std::uint32_t backoff_initial_ms = 1000, backoff_max_ms = 60000;  // reconnect backoff when offline
  std::vector<TagConfig> tags;
  std::vector<WaveformConfig> waveforms;
};

enum class SerialMode : std::uint8_t { binary, text };

struct SerialSensorConfig {
  std::string name;
  SerialLineConfig line;
  SerialMode mode = SerialMode::binary;
  double sample_rate_hz = 0;        // text mode: required; binary: the frame header carries it
  std::size_t channels = 1;         // text mode: values per line
  AccelUnits units = AccelUnits::g;
  std::vector<std::string> channel_names;  // default: <name>/<index>
};

struct IngestConfig {
  std::vector<BusConfig> buses;
  std::vector<DeviceConfig> devices;
  std::vector<SerialSensorConfig> serial_sensors;
};

// Parses the ingest sections of a TOML document. `source` names it in errors (the file path).
// Unknown keys inside these sections are errors (typos must not pass silently); other top-level
// tables are ignored (they belong to other areas). Throws ConfigError.
IngestConfig parse_ingest_config(std::string_view toml_text, const std::string& source);
IngestConfig load_ingest_config(const std::string& path);  // reads the file, then parses

}  // namespace vibgate::ingest
