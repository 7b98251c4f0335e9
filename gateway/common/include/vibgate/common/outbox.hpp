// vibgate/common/outbox.hpp — the narrow interface between the durable store and the uplink.
//
// Storage owns the outbox (an SQLite table); the uplink only sees this interface: it fetches
// records oldest first per lane and acknowledges the ones the broker has provably received.
// Nothing here knows SQLite or MQTT, so storage and uplink do not link each other; the gateway
// hands the store to the uplink as an OutboxSource.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace vibgate {

// Alerts travel ahead of bulk results: the uplink drains the alert lane first.
enum class Lane : std::uint8_t { alert = 0, bulk = 1 };
inline constexpr int kLaneCount = 2;

// What a record describes; it selects nothing on the wire but the JSON topic suffix (and the
// Sparkplug metric name prefix "<kind>/"). model: a model lifecycle event (shadow evaluation,
// promotion, rollback, over-the-air bundle), in the alert lane.
enum class RecordKind : std::uint8_t { result = 0, alert = 1, health = 2, model = 3 };
inline constexpr int kRecordKindCount = 4;

inline const char* to_string(Lane l) { return l == Lane::alert ? "alert" : "bulk"; }
inline const char* to_string(RecordKind k) {
  switch (k) {
    case RecordKind::result:
      return "result";
    case RecordKind::alert:
      return "alert";
    case RecordKind::health:
      return "health";
    case RecordKind::model:
      return "model";
  }
  return "?";
}

// One named value of a record. Names are stable ("score", "verdict", "velocity_rms_mm_s", ...):
// they become Sparkplug metric names and JSON keys.
struct Metric {
  using Value = std::variant<double, std::int64_t, bool, std::string>;
  std::string name;
  Value value;
};

// One outbox entry: an event of one asset as named metrics.
struct UplinkRecord {
  std::uint64_t id = 0;  // outbox id: assigned by storage, strictly increasing, the
                         // stable message id consumers use to drop duplicates
  Lane lane = Lane::bulk;
  RecordKind kind = RecordKind::result;
  std::string asset;         // asset name (a Sparkplug device, a JSON topic level)
  std::int64_t wall_ms = 0;  // event time, ms since the Unix epoch (UTC)
  std::vector<Metric> metrics;
};

// Depth of one lane of the outbox.
struct LaneStats {
  std::uint64_t depth = 0;          // entries not yet acknowledged
  std::int64_t oldest_wall_ms = 0;  // event time of the oldest of them (0 when empty)
  std::uint64_t max_id = 0;         // highest id ever stored in this lane (0 when none)
};

struct OutboxStats {
  LaneStats lanes[kLaneCount];
  std::uint64_t evicted_undelivered = 0;  // outbox entries dropped by the quota policy
};

// Implemented by storage::Store. All functions are thread-safe and never block on SQLite
// commits; fetch runs its query on a storage reader thread and calls `done` there.
class OutboxSource {
 public:
  virtual ~OutboxSource() = default;

  // `ok` is false when the read failed part-way (the records given are still valid, in order);
  // an empty vector with ok == true means "nothing more after after_id".
  using FetchDone = std::function<void(std::vector<UplinkRecord> records, bool ok)>;
  // Up to `max` entries of `lane` with id > after_id, oldest first, excluding entries already
  // acknowledged. `done` runs on a storage thread (post back to your own executor). Entries the
  // store cannot decode are skipped and reported through the store's last error.
  virtual void fetch(Lane lane, std::uint64_t after_id, std::size_t max, FetchDone done) = 0;

  // The broker has these entries: they leave the outbox. Returns at once; the deletion is
  // committed by the writer thread with the next group commit. Acknowledged ids are never
  // returned by fetch again, even before that commit.
  virtual void acknowledge(std::span<const std::uint64_t> ids) = 0;

  // A cheap snapshot (kept in memory by the store, no query).
  virtual OutboxStats outbox_stats() const = 0;

  // `cb` is called (on a storage thread) after every commit that added outbox entries, so the
  // uplink can drain without polling. Set once, before traffic starts.
  virtual void on_outbox_grew(std::function<void()> cb) = 0;
};

}  // namespace vibgate
