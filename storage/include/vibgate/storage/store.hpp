// vibgate/storage/store.hpp — the gateway's durable store: results, alerts, outbox, health
// events, waveform snapshots and model metadata in one SQLite database (WAL mode).
//
// Threads: every submit_* call is thread-safe and returns at once; rows are queued in memory
// and written by the store's own writer thread in group commits (every commit_interval or
// commit_rows, whichever comes first). Reads (the query API and OutboxSource::fetch) run on a
// separate reader connection, so they never wait for a commit. Nothing here touches the Asio
// loop; callbacks run on the writer/reader threads and callers post them to their executor.
//
// Durability (docs/storage.md): `balanced` (default) commits batches that contain alerts with
// synchronous=FULL (they survive power loss once acknowledged) and bulk-only batches with
// synchronous=NORMAL (they survive a crash of the process; a power cut may lose the last
// commit interval, never corrupt the file). `full` makes every commit synchronous=FULL.
//
// Quota: the database is kept below quota_bytes by evicting, oldest first: delivered results,
// health events, snapshots, then undelivered bulk outbox entries, then closed alerts; an
// undelivered alert only when the alert data alone exceeds hard_cap_bytes. Every eviction is
// counted (StoreStats) and the counters are persistent.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "vibgate/common/outbox.hpp"
#include "vibgate/common/types.hpp"

namespace vibgate::storage {

inline constexpr int kSchemaVersion = 2;  // PRAGMA user_version written by this build

enum class Durability : std::uint8_t { balanced = 0, full = 1 };
const char* to_string(Durability d);
std::optional<Durability> parse_durability(std::string_view s);

struct StoreOptions {
  std::string path;  // database file
  Durability durability = Durability::balanced;
  std::chrono::milliseconds commit_interval{200};  // group commit: at most this late
  std::size_t commit_rows = 2000;                  // ...or as soon as this many rows wait
  std::uint64_t quota_bytes = 256ull << 20;        // 0 = no quota
  std::uint64_t hard_cap_bytes = 0;                // 0 = quota_bytes; undelivered alerts are
                                                   // evicted only above this
  bool move_aside_bad_database = false;            // corrupt/newer file: rename it and start
                                                   // fresh (and say so) instead of refusing
  std::size_t max_queued_rows = 200000;            // submit_* beyond this is refused (counted)
  std::string vfs_name;                            // SQLite VFS to open with (empty: the
                                                   // default); tests inject I/O faults
};

// ---- rows the gateway writes ----

// One scored analysis window. An outbox entry (Lane::bulk, RecordKind::result) is written in
// the same transaction when `uplink` is true.
struct ResultRow {
  std::string asset;
  std::string channel;
  std::int64_t wall_ms = 0;
  double score = 0.0;
  Verdict verdict = Verdict::normal;
  int iso_zone = 0;  // 1..4 = A..D, 0 unknown
  double velocity_rms_mm_s = 0.0;
  std::string model_version;
  std::vector<Metric> features;  // feature summary (a few named values)
  bool uplink = true;
  // Optional: the model-input vector of one window of the row's interval, and the hash of the
  // feature settings it was computed with (analytics::FeatureConfig::hash()), so a baseline can
  // be retrained from history (Store::model_inputs). Kept local: never uplinked.
  std::vector<float> model_input;
  std::uint64_t input_hash = 0;
};

// Stored model inputs of one asset channel over a time range (Store::model_inputs).
struct ModelInputQuery {
  std::string asset;
  std::string channel;                  // "" = every channel of the asset
  std::int64_t from_ms = 0, to_ms = 0;  // inclusive wall-clock range
  std::uint64_t input_hash = 0;         // only rows computed with these feature settings
  std::size_t max_rows = 20000;         // a uniform sample beyond this many
  bool normal_only = false;             // only results whose verdict was normal (healthy)
};
struct ModelInputs {
  std::vector<std::vector<float>> rows;
  std::uint64_t matched = 0;         // rows in range with these settings (>= rows.size())
  std::uint64_t other_settings = 0;  // rows in range computed with other feature settings
  std::string error;                 // "" or one line
};

enum class AlertLevel : std::uint8_t { warning = 1, alarm = 2 };
enum class AlertState : std::uint8_t { raised = 0, acknowledged = 1, cleared = 2 };
const char* to_string(AlertLevel l);
const char* to_string(AlertState s);

// One transition of an alert. kind raised creates the alert (alert_id is then ignored and the
// new id is returned through the completion); acknowledged/cleared refer to alert_id.
// Each event also writes an outbox entry on Lane::alert.
struct AlertEvent {
  AlertState kind = AlertState::raised;
  std::uint64_t alert_id = 0;
  std::string asset;
  AlertLevel level = AlertLevel::warning;
  std::int64_t wall_ms = 0;
  std::string reason;  // "score 1.43 >= 1.0 in 3 of 5 windows", ...
  std::string by;      // who acknowledged ("operator@host"), empty otherwise
  double score = 0.0;
  std::vector<Metric> features;  // the features that caused it
};

struct HealthEvent {
  std::string device;
  std::int64_t wall_ms = 0;
  std::string state;  // "online", "offline", "degraded", ...
  std::string detail;
};

// Raw waveform around an alarm; samples are stored as little-endian float32.
struct Snapshot {
  std::uint64_t alert_id = 0;
  std::string asset;
  std::string channel;
  std::int64_t wall_ms = 0;  // time of the first sample
  double sample_rate_hz = 0.0;
  AccelUnits units = AccelUnits::g;
  std::vector<float> samples;
};

struct ModelRecord {
  std::string asset;
  std::string version;  // e.g. "3"
  std::int64_t created_ms = 0;
  std::string state;  // "active", "staged", "retired"
  std::string feature_hash;
  std::string path;  // model file on disk
  std::string note;
};

// A model lifecycle event (issue 9: shadow evaluation started, promoted, rolled back, cancelled;
// over-the-air bundles): no table of its own, only an outbox entry in the alert lane
// (RecordKind::model) whose metrics are `metrics` as given ("event", "version", "reason", ...;
// gateway/daemon's make_model_event builds them). The models table keeps each version's state
// and the outcome in its note.
struct ModelEvent {
  std::string asset;  // asset name (Sparkplug device, JSON topic level)
  std::int64_t wall_ms = 0;
  std::vector<Metric> metrics;
};

// Completion of a submit: called on the writer thread after the commit that holds the row
// (ec empty), or when the row was refused/failed (ec set). `id` is the row id (for alerts:
// the alert id) or 0.
using Completion = std::function<void(std::error_code ec, std::uint64_t id)>;

// ---- what the operator reads ----

struct ScorePoint {
  std::int64_t wall_ms = 0;
  std::string channel;
  double score = 0.0;
  Verdict verdict = Verdict::normal;
  int iso_zone = 0;
  double velocity_rms_mm_s = 0.0;
};

struct AlertInfo {
  std::uint64_t id = 0;
  std::string asset;
  AlertLevel level = AlertLevel::warning;
  AlertState state = AlertState::raised;
  std::int64_t raised_ms = 0;
  std::string reason;
  double score = 0.0;
  std::string acknowledged_by;
  std::string acknowledged_reason;  // reason of the latest acknowledged event (the operator's note)
  std::int64_t acknowledged_ms = 0;
  std::int64_t cleared_ms = 0;
  bool delivered = false;  // its raise event left the outbox
};

struct StoreStats {
  std::uint64_t file_bytes = 0;  // main database file size
  std::uint64_t used_bytes = 0;  // pages in use (file minus free pages)
  std::uint64_t wal_bytes = 0;   // the -wal file next to it (also on disk)
  std::uint64_t quota_bytes = 0;
  std::uint64_t commits = 0;
  std::uint64_t rows_written = 0;
  std::uint64_t queued_rows = 0;          // waiting for the writer
  std::uint64_t refused_rows = 0;         // submit_* refused (queue full / storage fault)
  std::uint64_t sqlite_memory_bytes = 0;  // heap memory SQLite holds now (page caches, ...;
                                          // process-wide: sqlite3_memory_used())
  // Evictions by class (persistent across restarts).
  std::uint64_t evicted_results = 0;
  std::uint64_t evicted_health = 0;
  std::uint64_t evicted_snapshots = 0;
  std::uint64_t evicted_outbox_bulk = 0;    // undelivered bulk entries dropped
  std::uint64_t evicted_alerts = 0;         // closed alerts dropped (above the hard cap, once no
                                            // undelivered alert entry is left: also open ones)
  std::uint64_t evicted_outbox_alerts = 0;  // undelivered alerts dropped (hard cap only)
  std::string last_error;                   // last SQLite error (empty when healthy)
};

enum class StoreErrc {
  ok = 0,
  open_failed = 1,   // cannot open/create the file
  corrupt = 2,       // integrity check failed / not a database
  newer_schema = 3,  // written by a newer vibgate
  queue_full = 4,    // submit refused: too many rows waiting
  io_error = 5,      // a write/commit failed
  closed = 6,        // the store is shutting down
  not_found = 7,     // acknowledged/cleared an alert id that does not exist
};
const std::error_category& store_category();
std::error_code make_error_code(StoreErrc e);

struct OpenResult;

class Store : public OutboxSource {
 public:
  // Opens (creating and migrating as needed) and starts the writer and reader threads.
  // Errors: open_failed, corrupt, newer_schema — with a one-line message naming the file.
  // When move_aside_bad_database is set, a corrupt or newer file is renamed to
  // "<path>.bad-<UTC time>" (with its -wal/-shm) and a fresh database is created; `notice`
  // then says so.
  static OpenResult open(const StoreOptions& options);

  ~Store() override;  // flushes queued rows (one final commit) and joins the threads
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // ---- writes: any thread, never block; `done` may be empty ----
  void submit_result(ResultRow row, Completion done = {});
  void submit_alert_event(AlertEvent event, Completion done = {});
  void submit_health(HealthEvent event, Completion done = {});
  void submit_snapshot(Snapshot snap, Completion done = {});
  void submit_model(ModelRecord model, Completion done = {});
  void submit_model_event(ModelEvent event, Completion done = {});
  // Waits (this thread) until everything submitted so far is committed. For tests, shutdown.
  void flush();

  // ---- reads: any thread, block on the reader connection (not on commits) ----
  // The newest `limit` results of an asset (of one channel when `channel` is not empty) in
  // [from_ms, to_ms], oldest first.
  std::vector<ScorePoint> recent_scores(const std::string& asset, std::int64_t from_ms,
                                        std::int64_t to_ms, std::size_t limit = 1000,
                                        const std::string& channel = "");
  std::vector<AlertInfo> alerts(std::optional<AlertState> state = std::nullopt,
                                std::size_t limit = 1000);
  std::vector<HealthEvent> health_history(const std::string& device, std::int64_t from_ms,
                                          std::int64_t to_ms, std::size_t limit = 1000);
  std::vector<ModelRecord> models(const std::string& asset);
  std::optional<Snapshot> snapshot_for_alert(std::uint64_t alert_id);
  StoreStats stats() const;

  // ---- OutboxSource ----
  void fetch(Lane lane, std::uint64_t after_id, std::size_t max, FetchDone done) override;
  void acknowledge(std::span<const std::uint64_t> ids) override;
  OutboxStats outbox_stats() const override;
  void on_outbox_grew(std::function<void()> cb) override;

  struct Impl;

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct OpenResult {
  std::unique_ptr<Store> store;  // null on error
  std::error_code error;
  std::string message;  // one line: "<path>: <problem>" when error is set
  std::string notice;   // e.g. "moved corrupt database aside to ..." (may be
                        // set on success)
};

// Reads stored model inputs (ResultRow::model_input) for retraining from the database at `path`
// (a Store's StoreOptions::path and vfs_name). Opens a read-only connection of its own for the
// call, so a long scan neither holds a Store's reader connection nor blocks its commits, and does
// not need the Store to outlive it: meant for a trainer thread (about a second per 100 000 rows).
// Errors come back in ModelInputs::error. Thread: any.
ModelInputs read_model_inputs(const std::string& path, const ModelInputQuery& query,
                              const std::string& vfs_name = "");

}  // namespace vibgate::storage

template <>
struct std::is_error_code_enum<vibgate::storage::StoreErrc> : std::true_type {};
