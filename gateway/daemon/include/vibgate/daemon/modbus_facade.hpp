// vibgate/daemon/modbus_facade.hpp — the read-only Modbus TCP server through which PLCs read the
// gateway's per-asset condition (score, alarm level, ISO zone, velocity RMS, model state, data
// age, heartbeat) and its health. The register map is documented in docs/modbus-facade.md; the
// constants in `facade_map` below are that map and must only ever grow (map version register).
//
// Threads: the facade serves on its own thread (a poll() loop over the listening socket, the
// client sockets and a wake-up eventfd; libmodbus only builds and sends the replies), so the
// daemon's Asio loop never waits on a PLC. update(), set_health() and beat() may be called from
// any thread: they copy a few values under a mutex and return. The serving thread copies the
// shared values under the same mutex once per request and renders the reply from that copy, so a
// PLC never sees half of an update (e.g. the two words of a float32 from different windows).
//
// Safety: the PLC cannot write anything (write functions are answered with exception 01 ILLEGAL
// FUNCTION), addresses outside the map get 02 ILLEGAL DATA ADDRESS, and a client that sends
// something that is not Modbus/TCP is disconnected; sockets are non-blocking, so a slow, silent
// or hostile client never delays the others. libmodbus types stay out of this header.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace vibgate::daemon {

// The register map (0-based protocol addresses). Input registers (FC 4) and holding registers
// (FC 3) hold the same values; discrete inputs (FC 2) mirror the coils (FC 1).
namespace facade_map {
inline constexpr std::uint16_t kVersion = 1;          // value of the map-version register
inline constexpr std::uint16_t kBlockRegisters = 16;  // per asset, asset i at i * 16
inline constexpr std::size_t kMaxAssets = 62;         // 62 * 16 = 992 <= kHealthBase
inline constexpr std::uint16_t kHealthBase = 1000;    // gateway health block
inline constexpr std::uint16_t kHealthRegisters = 16;
inline constexpr std::uint16_t kCoilsPerAsset = 2;  // asset i: 2i warning, 2i+1 alarm

// Offsets inside an asset block.
inline constexpr std::uint16_t kScoreX1000 = 0;     // uint16, score * 1000, saturating
inline constexpr std::uint16_t kAlarmLevel = 1;     // 0 normal, 1 warning, 2 alarm
inline constexpr std::uint16_t kIsoZone = 2;        // 0 unknown, 1..4 = zone A..D
inline constexpr std::uint16_t kVrmsX100 = 3;       // uint16, mm/s * 100, saturating
inline constexpr std::uint16_t kVrmsF32 = 4;        // float32 mm/s, 2 registers, ABCD
inline constexpr std::uint16_t kModelState = 6;     // 0 none, 1 learning, 2 scoring, 3 error
inline constexpr std::uint16_t kAgeS = 7;           // s since the last update, 65535 = never
inline constexpr std::uint16_t kHeartbeat = 8;      // gateway heartbeat (= health + 2)
inline constexpr std::uint16_t kUpdateCount = 9;    // updates of this asset, wraps
inline constexpr std::uint16_t kAcknowledged = 10;  // 1: the active alert is acknowledged
inline constexpr std::uint16_t kScoreF32 = 11;      // float32 score, 2 registers, ABCD
inline constexpr std::uint16_t kWindowTime = 13;    // uint32 Unix s of the window, 0 unknown
inline constexpr std::uint16_t kReserved = 15;      // 0

// Offsets inside the health block.
inline constexpr std::uint16_t kUptimeS = 0;          // uint32 s since start(), ABCD
inline constexpr std::uint16_t kHealthHeartbeat = 2;  // uint16, beat() count, wraps
inline constexpr std::uint16_t kBeatAgeS = 3;         // s since the last beat(), 65535 = never
inline constexpr std::uint16_t kStorageOk = 4;        // 0/1
inline constexpr std::uint16_t kUplinkConnected = 5;  // 0/1
inline constexpr std::uint16_t kOutboxDepth = 6;      // uint32 entries, ABCD, saturating
inline constexpr std::uint16_t kAssetCount = 8;
inline constexpr std::uint16_t kMapVersion = 9;
inline constexpr std::uint16_t kHealthAgeS = 10;  // s since the last set_health(), 65535 never
inline constexpr std::uint16_t kUnitId = 11;      // the configured unit id
}  // namespace facade_map

struct FacadeConfig {
  // IPv4 address to listen on. 127.0.0.1 by default: plants set the gateway's OT interface
  // address (or 0.0.0.0 for all interfaces) — see the security note in docs/modbus-facade.md.
  std::string bind_address = "127.0.0.1";
  // 5020, not 502: the daemon runs without CAP_NET_BIND_SERVICE.
  std::uint16_t port = 5020;
  // Unit id answered besides 0 and 255 (the Modbus/TCP "direct to this device" ids); any other
  // unit id gets exception 0B GATEWAY TARGET DEVICE FAILED TO RESPOND.
  std::uint8_t unit_id = 1;
  std::size_t max_clients = 8;  // further connections are accepted and closed at once
  // Client allow-list: IPv4 addresses ("10.1.2.7") or networks ("10.1.2.0/24"); a connection
  // from anywhere else is accepted and closed at once (counted, logged). Empty = any client.
  std::vector<std::string> allow;
  // A client that sends nothing for this long is disconnected.
  std::chrono::milliseconds idle_timeout{60000};
  std::vector<std::string> assets;  // asset i gets block i; the order is the PLC's contract
};

// "" when the configuration is usable, else one line naming the key, e.g.
// "modbus_facade.port: must be 1..65535".
std::string validate(const FacadeConfig& config);
// The allow-list part of validate(): "" or "'<entry>' is not an IPv4 address or network (...)".
std::string validate_allow(const std::vector<std::string>& allow);

// What the daemon publishes for one asset after each scored window.
struct AssetStatus {
  enum class Model : std::uint8_t { none = 0, learning = 1, scoring = 2, error = 3 };

  double score = 0.0;              // normalized anomaly score, 1.0 = alarm threshold
  std::uint8_t alarm_level = 0;    // 0 normal, 1 warning, 2 alarm (larger: shown as 2)
  std::uint8_t iso_zone = 0;       // ISO 20816 zone: 0 unknown, 1..4 = A..D (larger: shown as 4)
  double velocity_rms_mm_s = 0.0;  // velocity RMS in mm/s
  Model model_state = Model::none;
  bool alert_acknowledged = false;  // the active alert was acknowledged by an operator
  // Wall time of the end of the scored window (informational; epoch = unknown). The age
  // register does not use it: it counts from the update() call on the steady clock.
  std::chrono::system_clock::time_point window_end{};
};

struct GatewayHealth {
  bool storage_ok = false;
  bool uplink_connected = false;
  std::uint64_t outbox_depth = 0;  // entries not yet delivered upstream
};

struct FacadeStats {
  std::uint64_t connections = 0;  // accepted and served
  std::uint64_t refused = 0;      // closed at once: max_clients reached
  std::uint64_t not_allowed = 0;  // closed at once: the client's address is not in `allow`
  std::uint64_t dropped = 0;      // closed for sending something that is not Modbus/TCP
  std::uint64_t idle_closed = 0;  // closed by the idle timeout
  std::uint64_t requests = 0;     // complete requests answered (normal or exception)
  std::uint64_t exceptions = 0;   // of those, answered with an exception
};

class ModbusFacade {
 public:
  // Takes the configuration; nothing is opened before start(). Assets not yet updated read as
  // model state 0 and age 65535.
  explicit ModbusFacade(FacadeConfig config);
  ~ModbusFacade();  // stop()s
  ModbusFacade(const ModbusFacade&) = delete;
  ModbusFacade& operator=(const ModbusFacade&) = delete;

  // Validates the configuration, binds and listens, then starts the serving thread. Returns ""
  // on success, else one line: the validation error, or
  // "modbus_facade: cannot listen on <address>:<port>: <reason>". Call once.
  [[nodiscard]] std::string start();
  // Wakes the serving thread, closes every connection and joins. The loop never blocks except
  // in poll() (which the wake-up ends), so this returns within milliseconds. Idempotent.
  void stop();
  // The bound port (meaningful after a successful start()).
  std::uint16_t port() const;

  // Any thread. Publishes the asset's latest status; false if asset >= number of assets.
  // Records the steady-clock time of the call (age register, last_update(): a hook to measure
  // the latency from a window's end to its value being readable by a PLC).
  bool update(std::size_t asset, const AssetStatus& status);
  // Any thread. Publishes the gateway's health values.
  void set_health(const GatewayHealth& health);
  // Any thread. Advances the heartbeat counter by one. The daemon's loop calls it once per
  // scoring cycle (not the facade itself), so a PLC watchdog sees a stuck daemon loop.
  void beat();

  // Any thread. Steady-clock time of the last update() of the asset (epoch: never / bad index).
  std::chrono::steady_clock::time_point last_update(std::size_t asset) const;
  FacadeStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vibgate::daemon
