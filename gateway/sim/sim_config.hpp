// sim_config.hpp — what the plant simulator `vibgate-sim` serves, parsed from its TOML file
// (docs/simulator.md, deploy/sim-example.toml) and/or built from the command line (quick mode).
//
// Everything is validated here, before any socket or pty exists: unknown keys, ranges, overlapping
// registers, duplicate ports/unit ids, unknown machine names, unreadable recordings. Errors are one
// line: "<file>:<line>: <key>: <problem>" (SimConfigError).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "vibgate/analytics/synth.hpp"
#include "vibgate/ingest/config.hpp"
#include "vibgate/ingest/serial_frame.hpp"

namespace vibgate::sim {

struct SimConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline constexpr std::size_t kNoMachine = static_cast<std::size_t>(-1);

enum class MachineKind : std::uint8_t { synth, replay };

// One machine: the source of vibration samples and of the process values of derived tags.
struct MachineConfig {
  std::string name;
  MachineKind kind = MachineKind::synth;
  analytics::MachineModel model;  // synth; sample_rate_hz is set per consumer (block/serial rate)
  // replay: the recording (one channel), loaded at parse time and shared by every consumer.
  std::string file;
  std::size_t channel = 0;
  double file_rate_hz = 0;        // the recording's rate (from the file, or file_sample_rate_hz)
  std::shared_ptr<const std::vector<float>> samples;
  // Process values (derived tags). Stopped: speed/load 0, vibration scaled by kStandstillGain.
  double ambient_c = 25, temperature_rise_c = 30, fault_heat_c_per_g = 5;
  double thermal_time_constant_s = 120;
  double load_percent = 75, load_swing_percent = 5, load_period_s = 60;
  double run_s = 0, stop_s = 0;   // both > 0: runs run_s, stops stop_s, repeats; else always runs
};

// How a scalar tag's engineering value evolves (raw register value = (value - offset) / scale).
enum class ValueModel : std::uint8_t { constant, sine, temperature, speed, load, run, uptime };

struct TagSpec {
  std::string name;
  ingest::RegisterType reg = ingest::RegisterType::holding_register;
  std::uint16_t address = 0;
  ingest::ValueType type = ingest::ValueType::uint16;
  ingest::WordOrder order = ingest::WordOrder::ABCD;
  double scale = 1.0, offset = 0.0;
  std::string unit;                                   // informational (as in the gateway's tags)
  ValueModel model = ValueModel::constant;
  double value = 0;                                   // constant
  double mean = 0, amplitude = 1, period_s = 10, phase_deg = 0;  // sine
  std::size_t machine = kNoMachine;                   // temperature/speed/load/run
};

enum class WaveFormat : std::uint16_t { int16 = 0, float32 = 1 };  // register B+4 values

// One waveform block (docs/modbus-waveform.md): header at `address`, samples from address + 8.
struct WaveformSpec {
  std::string name;
  ingest::RegisterType reg = ingest::RegisterType::input_register;
  std::uint16_t address = 0;
  std::uint32_t samples = 4096;        // n per block, 1..8192
  std::uint32_t sample_rate_hz = 25600;
  WaveFormat format = WaveFormat::int16;
  float scale = 0.0001f;               // g per count (int16); 1.0 is written for float32
  std::size_t machine = 0;
  std::size_t register_count() const {
    return 8 + static_cast<std::size_t>(samples) * (format == WaveFormat::int16 ? 1 : 2);
  }
};

struct UnitSpec {
  int id = 1;
  std::vector<TagSpec> tags;
  std::vector<WaveformSpec> waveforms;
};

struct ListenerSpec {
  std::string address = "127.0.0.1";
  std::uint16_t port = 1502;           // 0: the system picks one (printed at start)
  std::vector<UnitSpec> units;
};

enum class SerialMode : std::uint8_t { binary, text };

// One pseudo-terminal streaming samples of one or more machines (one channel per machine entry).
struct SerialSpec {
  std::string name;
  SerialMode mode = SerialMode::binary;
  std::uint32_t sample_rate_hz = 25600;
  std::uint32_t samples_per_frame = 256;   // binary: per frame; text: lines written per burst
  ingest::SampleFormat format = ingest::SampleFormat::int16;
  float scale = 0.0001f;
  int precision = 6;                       // text: significant digits
  std::vector<std::size_t> machines;       // channel c is fed by machines[c]
  std::string link;                        // symlink to the slave, "" for none
};

// Quick mode: N identical standard devices (docs/simulator.md "Standard device").
struct FleetSpec {
  std::size_t devices = 0;
  std::string address = "127.0.0.1";
  std::uint16_t base_port = 1502;
  std::uint32_t samples = 2048;
  std::uint32_t sample_rate_hz = 10240;
  analytics::DefectKind defect = analytics::DefectKind::none;
  double fault_start_s = 0;
};

struct SimConfig {
  std::string source = "(command line)";   // names the configuration in errors
  std::uint64_t seed = 1;                  // machine i defaults to seed + i
  double tick_ms = 10;                     // sample generation / serial write period
  double tag_update_ms = 100;              // recomputation period of changing tags
  std::vector<MachineConfig> machines;
  std::vector<ListenerSpec> listeners;
  std::vector<SerialSpec> serials;
  FleetSpec fleet;
};

// Parses a simulator TOML document. `source` is the file path: errors name it, and relative
// recording paths are resolved against its directory. Recordings are read here.
// Throws SimConfigError. Thread: any.
SimConfig parse_sim_config(std::string_view toml_text, const std::string& source);
SimConfig load_sim_config(const std::string& path);  // reads the file, then parses

// Appends cfg.fleet.devices standard devices (a machine, a listener on base_port + i, unit 1 with
// the standard register map each). Throws SimConfigError naming `what` (e.g. "--base-port" or
// "fleet.base_port") when a port collides with a configured listener or passes 65535.
void expand_fleet(SimConfig& cfg, const std::string& what);

// Appends a serial source with `channels` channels fed by machine 0 (adding a default machine
// when there is none). Throws SimConfigError on out-of-range values (named as command-line flags).
void add_quick_serial(SimConfig& cfg, SerialMode mode, std::uint32_t rate_hz, std::size_t channels,
                      std::uint32_t samples_per_frame);

// Human-readable register map of every listener/unit and serial source (--print-register-map).
std::string register_map(const SimConfig& cfg);

// The gateway's [[device]] sections (docs/configuration.md) that poll every listener/unit of
// `cfg` with the same tags and waveforms; poll_interval_ms is 40 % of the shortest block duration
// (at most 1000 ms). Listeners with port 0 are printed with port 0 (only known once bound).
std::string gateway_config(const SimConfig& cfg);

// Names used in the configuration and the register map.
std::string_view to_string(ValueModel m);
std::string_view to_string(analytics::DefectKind d);

}  // namespace vibgate::sim
