// vibgate/daemon/control_protocol.hpp — the operator control socket's requests and replies as
// plain C++ (mirroring gateway/daemon/proto/control.proto) and their wire codec. The daemon and
// the CLI only see these structs; protobuf stays in src/. Framing and messages are documented in
// docs/control-socket.md: a frame is a 4-byte big-endian length followed by that many bytes of
// one serialized message, at most kMaxControlMessage bytes.
//
// Threads: everything here is pure (no shared state); call from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace vibgate::daemon {

inline constexpr std::size_t kControlFrameHeader = 4;
inline constexpr std::size_t kMaxControlMessage = 4u * 1024u * 1024u;  // 4 MiB per message

// ---- requests -------------------------------------------------------------------------------
struct StatusQuery {};
struct DevicesQuery {};
struct TagsQuery {
  std::string device;  // "" = all devices
};
struct AssetsQuery {};
struct AlertsQuery {
  bool active_only = false;
  std::int64_t since_ms = 0;  // Unix ms; 0 = no lower bound
  std::uint32_t limit = 0;    // 0 = daemon default
};
struct AckCommand {
  std::uint64_t alert_id = 0;
  std::string note;
  std::string by;
};
struct TrendQuery {
  std::string asset;
  std::string metric;  // "score", "vrms", ...
  std::int64_t since_ms = 0;
  std::int64_t until_ms = 0;  // 0 = now
  std::uint32_t max_points = 0;
};
struct QueueQuery {};
struct ModelsQuery {
  std::string asset;  // "" = every asset's versions
};
// Model lifecycle of one asset: promote a stored version to active, or roll back to the version
// active before the current one.
struct ModelCommand {
  enum class Action : std::uint8_t { promote = 0, rollback = 1 };
  Action action = Action::promote;
  std::string asset;
  std::string version;  // promote: the version to activate; rollback: ignored
};
// Relearn an asset's baseline from live data: collect `duration_s` of windows (0 = the asset's
// configured learn_s), train, register a new version and activate it.
struct TrainCommand {
  std::string asset;
  std::uint32_t duration_s = 0;  // live learning period (0: the asset's learn_s)
  // Both > 0: train from the model inputs stored between these times (UTC ms) instead.
  std::int64_t from_ms = 0;
  std::int64_t to_ms = 0;
  // With from_ms/to_ms: stage the trained version and start its shadow evaluation instead of
  // activating it.
  bool stage = false;
};
// Shadow evaluation of a stored version, or of a model file copied in as a new version, beside
// the active model; promoted or rolled back automatically (docs/model.md). Replies with a
// ModelInfo list of one entry (state "shadow").
struct ShadowCommand {
  std::string asset;
  std::string version;           // a stored version; "" when `file` is given
  std::uint32_t duration_s = 0;  // 0 = the configured [models] shadow_s
  std::string file;              // a model file on the gateway to stage as a new version
};
// The latest amplitude spectrum of an asset's channel.
struct SpectrumQuery {
  std::string asset;
};

// Import an ONNX autoencoder as a new model version (runs on the daemon's trainer thread; the
// reply says "importing"). With empty `onnx`: the state and report of the asset's last import.
struct ModelImportCommand {
  std::string asset;
  std::string file_name;
  std::string onnx;                     // the file's bytes (at most kMaxOnnxImport)
  std::int64_t from_ms = 0, to_ms = 0;  // stored healthy windows in range; 0/0: all stored
  std::vector<std::string> columns;     // calibration rows from a features CSV instead:
  std::vector<float> values;            // rows × columns.size() values
  std::string calibration_name;
};
inline constexpr std::size_t kMaxOnnxImport = 3u * 1024u * 1024u;
inline constexpr std::size_t kMaxCalibrationRows = 20000;
// The active model of an asset as ONNX.
struct ModelExportQuery {
  std::string asset;
};
// Over-the-air model bundles: partial transfers and recent bundles (docs/ota.md).
struct OtaQuery {};

using ControlCommand =
    std::variant<StatusQuery, DevicesQuery, TagsQuery, AssetsQuery, AlertsQuery, AckCommand,
                 TrendQuery, QueueQuery, ModelsQuery, ModelCommand, TrainCommand, SpectrumQuery,
                 ModelImportCommand, ModelExportQuery, ShadowCommand, OtaQuery>;

struct ControlRequest {
  std::uint64_t id = 0;  // echoed in the reply
  ControlCommand command;
};

// ---- replies --------------------------------------------------------------------------------
struct StatusInfo {
  std::string version;
  std::uint64_t uptime_s = 0;
  bool storage_ok = false;
  bool uplink_connected = false;
  std::uint64_t outbox_depth = 0;
  std::uint32_t devices = 0;
  std::uint32_t assets = 0;
  std::uint32_t active_alerts = 0;
  std::string config_path;
  std::string uplink_state;  // "disabled", "connecting", "connected", "online", plus last error
  std::int64_t outbox_oldest_ms = 0;  // 0 = empty
  std::string storage_error;          // last storage error ("" when healthy)
  // Every counter of the daemon (polls, errors, windows scored, alerts, queue depths, drops,
  // evictions ...), name -> value, in a stable order; the Prometheus page shows the same.
  std::vector<std::pair<std::string, double>> counters;
};
struct DeviceInfo {
  std::string name;
  std::string kind;  // "modbus-tcp", "modbus-rtu", "serial"
  std::string endpoint;
  bool connected = false;
  std::int64_t last_ok_ms = 0;
  std::uint64_t errors = 0;
  std::string last_error;
  std::string state;        // "online", "degraded", "offline"
  double rtt_ms = 0.0;      // average request round trip (Modbus); 0 for serial
  std::uint64_t polls = 0;  // Modbus polls or serial frames
};
struct TagInfo {
  std::string device;
  std::string name;
  std::string unit;
  double value = 0.0;
  bool good = false;
  std::int64_t ts_ms = 0;
};
struct AssetInfo {
  std::string name;
  std::uint32_t alarm_level = 0;  // 0 normal, 1 warning, 2 alarm
  double score = 0.0;
  std::uint32_t iso_zone = 0;  // 0 unknown, 1..4 = A..D
  double vrms_mm_s = 0.0;
  std::string model_state;
  std::int64_t last_window_ms = 0;
  std::string model_version;  // active version ("" = none)
  std::string channel;
  double learning_progress = 0.0;     // 0..1 while model_state is "learning"
  bool acknowledged = false;          // the active alert was acknowledged
  std::uint64_t active_alert_id = 0;  // 0 = none
  // Drift of the model (docs/model.md "Drift"): PSI of the score and the largest feature PSI
  // (0 while not computed), that feature's name, windows in the monitor, and the state
  // ("stable", "shifting", "drifted", "n/a", "n/a (model has no reference)").
  double drift_psi_score = 0.0;
  double drift_psi_feature_max = 0.0;
  std::string drift_feature;
  std::uint64_t drift_windows = 0;
  std::string drift_state;
  std::string shadow_version{};       // version in shadow evaluation ("" = none)
  double shadow_score = 0.0;          // the shadow model's latest score
  double shadow_progress = 0.0;       // 0..1 of the evaluation period
};
struct AlertInfo {
  std::uint64_t id = 0;
  std::string asset;
  std::uint32_t level = 0;
  std::string cause;
  std::int64_t raised_ms = 0;
  std::int64_t cleared_ms = 0;  // 0 = still active
  bool acknowledged = false;
  std::string ack_by;
  std::string ack_note;
  std::string message;
};
struct AckInfo {
  std::uint64_t alert_id = 0;
  bool already_acknowledged = false;
};
struct TrendPoint {
  std::int64_t ts_ms = 0;
  double value = 0.0;
};
struct Trend {
  std::string asset;
  std::string metric;
  std::vector<TrendPoint> points;
};
struct QueueInfo {
  std::uint64_t depth = 0;
  std::uint64_t bytes = 0;
  std::int64_t oldest_ms = 0;  // 0 = empty
  bool uplink_connected = false;
  std::uint64_t sent_total = 0;
  std::uint64_t dropped_total = 0;
};
// One stored model version of an asset (`models`), or the outcome of a model/train command.
struct ModelInfo {
  std::string asset;
  std::string state;  // version: "active", "staged", "shadow", "rejected", "cancelled",
                      // "retired"; asset summary: "none",
                      // "learning", "scoring", "error"
  std::string file;
  std::int64_t trained_ms = 0;
  double threshold = 0.0;
  std::string version;
  std::string note;  // how it was made ("learned on site from 300 s, 1170 windows")
  std::string feature_hash;
};
struct SpectrumMarker {
  std::string name;  // "1x", "BPFO", "BPFI", "BSF", "FTF"
  double hz = 0.0;
};
struct Spectrum {
  std::string asset;
  std::int64_t ts_ms = 0;
  double bin_hz = 0.0;           // width of one bin; bin k is at k * bin_hz
  std::vector<float> amplitude;  // single-sided amplitude spectrum (input units, e.g. g)
  std::vector<SpectrumMarker> markers;
};

// State and float-vs-int8 report of an ONNX import (docs/model.md).
struct ModelImportInfo {
  std::string asset;
  std::string state;  // "importing", "active", "failed", "none"
  std::uint64_t import_id = 0;
  std::string version;
  std::string error;
  std::string file_name;
  std::uint64_t rows = 0;
  std::vector<std::string> layers;
  std::string normalization;
  double threshold_float = 0, threshold_int8 = 0;
  double pearson = 0, max_abs_diff = 0, max_rel_diff = 0, verdict_agreement = 0;
  std::vector<std::string> warnings;
  std::string note;
};
struct ModelExportInfo {
  std::string asset;
  std::string version;
  std::string onnx;
  std::string origin;
};

// One over-the-air bundle the daemon knows of (`ota`).
struct OtaBundleInfo {
  std::string bundle_id;
  std::string state;  // "receiving", "partial", "verified", "staged", "refused"
  std::uint64_t next_offset = 0;
  std::uint64_t total = 0;
  std::int64_t updated_ms = 0;
  std::string reason;  // refused: "bad signature", "replayed", ...
  std::string detail;
  std::string key_id;
  std::uint64_t sequence = 0;
  std::string targets;  // comma-separated
};
struct OtaInfo {
  bool enabled = false;
  std::vector<std::string> trusted_keys;  // key ids
  std::vector<OtaBundleInfo> bundles;     // most recently updated first
};

// std::monostate: no payload (errors, or a command with nothing to return).
using ControlPayload =
    std::variant<std::monostate, StatusInfo, std::vector<DeviceInfo>, std::vector<TagInfo>,
                 std::vector<AssetInfo>, std::vector<AlertInfo>, AckInfo, Trend, QueueInfo,
                 std::vector<ModelInfo>, Spectrum, ModelImportInfo, ModelExportInfo, OtaInfo>;

struct ControlReply {
  std::uint64_t id = 0;  // the request's id; 0 with ok == false: the server refused the connection
  bool ok = false;
  std::string error;  // one line for the operator when !ok
  ControlPayload payload;
};

// ---- codec ----------------------------------------------------------------------------------
// Serialize one message and prepend the 4-byte big-endian length (a complete frame).
// Throws std::length_error if the message would exceed kMaxControlMessage.
std::string encode_request_frame(const ControlRequest& request);
std::string encode_reply_frame(const ControlReply& reply);

// Parse one message body (the bytes after the length prefix). nullopt: not a valid message
// (unparsable, or a request without a command).
std::optional<ControlRequest> decode_request(std::string_view body);
std::optional<ControlReply> decode_reply(std::string_view body);

// The length announced by a 4-byte big-endian header (header.size() must be 4).
std::uint32_t decode_frame_length(std::string_view header);

// The command's name as the CLI spells it ("status", "devices", "tags", "assets", "alerts",
// "ack", "trend", "queue", "models", "model", "train", "spectrum", "model import",
// "model export", "shadow"), for log lines.
std::string_view command_name(const ControlCommand& command);

}  // namespace vibgate::daemon
