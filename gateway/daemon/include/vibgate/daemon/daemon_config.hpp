// vibgate/daemon/daemon_config.hpp — the whole configuration of vibgated, parsed from one TOML
// file (docs/configuration.md shows the commented example deploy/vibgate.toml).
//
// Each area parses its own sections (ingest: [[bus]] [[device]] [[serial_sensor]]; storage and
// uplink: [storage] [uplink]); this file adds the daemon's own: [daemon], [alarm],
// [modbus_facade], [prometheus], [models] and [[asset]], and checks the references between them (an
// asset's channel must come from a configured waveform or serial sensor, its tags from a
// configured device). Unknown keys and unknown top-level tables are errors, so a typo never
// passes silently. Start-up/reload only: throws ingest::ConfigError with
// "<file>:<line>: <key>: <problem>".
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vibgate/analytics/feature_config.hpp"
#include "vibgate/daemon/alarm.hpp"
#include "vibgate/daemon/modbus_facade.hpp"
#include "vibgate/daemon/model_shadow.hpp"
#include "vibgate/daemon/store_uplink_config.hpp"
#include "vibgate/ingest/config.hpp"

namespace vibgate::daemon {

inline constexpr const char* kDefaultConfigPath = "/etc/vibgate/vibgate.toml";

// Optional write-back to a PLC (docs/daemon.md "Write-back actions", with its safety note): when
// the asset's level reaches `on`, write `value`; when it falls below again, write `reset_value`
// (if set). Off unless configured.
struct WriteAction {
  int on_level = 2;    // 1 warning (warning or alarm), 2 alarm
  std::string device;  // a configured Modbus [[device]]
  bool coil = true;    // coil (FC 5) or holding register (FC 6)
  std::uint16_t address = 0;
  std::uint16_t value = 1;
  std::optional<std::uint16_t> reset_value;
};

inline constexpr std::size_t kMaxAssetChannels = 8;

// One monitored machine.
struct AssetConfig {
  std::string name;
  // The asset's vibration channels (SampleBlock channels: "<device>/<waveform>" or serial
  // channels), 1..kMaxAssetChannels, each owned by one asset. Every channel is scored by a model
  // of its own (learned on its own data); the asset's level is its worst channel's.
  std::vector<std::string> channels;
  std::string model_file;  // seed model (used while storage has no active version); "" = learn
  std::chrono::seconds learn{600};  // learning period of a new baseline
  std::size_t learn_min_windows = 64;
  // Features the baseline is learned with (the sample rate comes from the stream).
  analytics::FeatureConfig features;
  std::string speed_tag;             // optional "<device>/<tag>": reported with each result
  std::string load_tag;              // optional "<device>/<tag>"
  std::vector<WriteAction> actions;  // [[asset.action]], usually none
};

struct PrometheusConfig {
  bool enabled = false;
  std::string address = "127.0.0.1";
  std::uint16_t port = 9464;
};

// Over-the-air model updates (docs/ota.md): signed bundles received through the uplink.
struct OtaConfig {
  bool enabled = false;
  std::string trusted_keys_dir = "/etc/vibgate/trusted-keys";  // *.pub, key id = file stem
  std::uint64_t max_bundle_bytes = 64ull << 20;                // largest bundle accepted
  // A bundle's shadow period is its manifest's shadow_s, or [models] shadow_s when that is 0.
};

struct DaemonConfig {
  std::string source;  // the file it came from
  std::string state_dir = "/var/lib/vibgate";
  std::string control_socket = "/run/vibgate/vibgate.sock";
  unsigned control_socket_mode = 0660;
  std::string control_socket_group;                 // "" = keep the daemon's group
  std::string log_level = "info";                   // trace, debug, info, warn, error
  std::size_t analytics_queue_blocks = 0;           // 0: 16 per vibration channel, at least 64
  std::chrono::milliseconds result_interval{1000};  // per asset, the highest-score window of
                                                    // each interval is stored and uplinked
  double snapshot_s = 1.0;        // seconds of raw waveform stored with every raised alert
  bool keep_model_inputs = true;  // store a model-input vector with every result row (about
                                  // 160 bytes), so `vibgate model train --from --to` can retrain

  ingest::IngestConfig ingest;
  StoreUplinkConfig store_uplink;
  AlarmConfig alarm;
  bool facade_enabled = true;
  FacadeConfig facade;  // facade.assets = asset names in configuration order
  PrometheusConfig prometheus;
  OtaConfig ota;
  // [models]: shadow evaluation of staged model versions (docs/model.md "Shadow evaluation").
  ShadowPolicy shadow;
  std::vector<AssetConfig> assets;
};

// Parses a whole configuration text; `source` names it in errors. Relative paths (storage,
// models, state files) are resolved against state_dir. Throws ingest::ConfigError.
DaemonConfig parse_daemon_config(std::string_view toml_text, const std::string& source);
// Reads the file (error "<path>: cannot read: <reason>"), then parses.
DaemonConfig load_daemon_config(const std::string& path);

// The commented example configuration (deploy/vibgate.toml, compiled in).
std::string_view sample_config();

}  // namespace vibgate::daemon
