// daemon_impl.hpp — the daemon's internal state, shared by daemon.cpp (lifecycle, data path,
// alarms, models) and daemon_control.cpp (operator commands). Not a public header.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "vibgate/analytics/model.hpp"
#include "vibgate/daemon/alarm.hpp"
#include "vibgate/daemon/analytics_worker.hpp"
#include "vibgate/daemon/control_server.hpp"
#include "vibgate/daemon/daemon.hpp"
#include "vibgate/daemon/metrics_http.hpp"
#include "vibgate/daemon/modbus_facade.hpp"
#include "vibgate/daemon/model_shadow.hpp"
#include "vibgate/daemon/sd_notify.hpp"
#include "vibgate/ingest/poller.hpp"
#include "vibgate/ingest/serial_sensor.hpp"
#include "vibgate/ota/bundle.hpp"
#include "vibgate/storage/store.hpp"
#include "vibgate/uplink/uplink.hpp"

namespace vibgate::daemon {

// The last `capacity` samples of a channel (for the waveform snapshot of a raised alert).
class SampleRing {
 public:
  void reset(std::size_t capacity) {
    buf_.assign(capacity, 0.0f);
    head_ = size_ = 0;
  }
  void push(const std::vector<float>& x);
  std::vector<float> last(std::size_t n) const;  // oldest first
  std::size_t size() const { return size_; }

 private:
  std::vector<float> buf_;
  std::size_t head_ = 0, size_ = 0;
};

// Wall clock, ms since the Unix epoch.
inline std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The outbox across both lanes: entries waiting and the event time of the oldest (0 = empty).
struct OutboxTotals {
  std::uint64_t depth = 0;
  std::int64_t oldest_ms = 0;
};
inline OutboxTotals outbox_totals(const OutboxStats& os) {
  OutboxTotals t;
  for (const auto& l : os.lanes) {
    t.depth += l.depth;
    if (l.depth > 0 && l.oldest_wall_ms > 0 && (t.oldest_ms == 0 || l.oldest_wall_ms < t.oldest_ms))
      t.oldest_ms = l.oldest_wall_ms;
  }
  return t;
}

enum class ModelState : std::uint8_t { none, learning, scoring, error };
const char* to_string(ModelState s);

// Drift of a point's model (analytics/drift.hpp) as the analytics worker last reported it
// (daemon_drift.cpp). Reset when a model is activated.
struct PointDrift {
  analytics::DriftStatus status;  // latest status (psi_features empty while not computed)
  std::string feature;            // input with the largest PSI ("" while not computed)
  bool reported = false;          // a status arrived for the active model
  bool drifted = false;           // its state is drifted (for the change event)
  std::uint64_t generation = 0;   // worker model generation of the status (newest seen)
};

// Who started a shadow evaluation (Daemon::Impl::start_shadow): logged, in the models table's
// note and in the model events.
struct ShadowOrigin {
  std::string by = "operator";  // "operator" (CLI), "ota" (signed bundle), "restart"
  std::string bundle_id;        // the OTA bundle's id; "" otherwise
};

// A running shadow evaluation of one point (docs/model.md "Shadow evaluation"). Loop thread.
struct ShadowRun {
  std::string version;         // the staged version under evaluation
  std::string active_version;  // the active version it is compared against (at start)
  std::shared_ptr<const analytics::Model> model;
  storage::ModelRecord record;  // its models-table row (state "shadow"; note = how it was made)
  ShadowPolicy policy;
  ShadowOrigin origin;
  std::uint64_t id = 0;  // AnalyticsWorker::set_shadow id: windows with another id are ignored
  std::chrono::steady_clock::time_point started;
  ShadowTally tally;
  double last_score = 0.0;  // the shadow model's latest score
  double progress(std::chrono::steady_clock::time_point now) const {
    const double d = std::chrono::duration<double>(policy.duration).count();
    return d <= 0 ? 1.0 : std::chrono::duration<double>(now - started).count() / d;
  }
};

// Runtime state of one measuring point: one channel of an asset, with its own model, learning,
// alarm state machine and raw-sample ring. Loop thread only.
struct PointRuntime {
  AssetConfig cfg;        // the asset's configuration (shared by its points)
  std::string channel;    // this point's channel
  std::string key;        // model key: the asset name when it has one channel, else
                          // "<asset>:<channel>" (storage models table, worker, CLI)
  std::size_t index = 0;  // in Impl::points
  std::size_t asset = 0;  // in Impl::assets (= the asset's facade block)
  std::unique_ptr<AssetAlarm> alarm;
  std::map<std::uint64_t, std::uint64_t> alert_ids;                // alarm seq -> store alert id
  std::map<std::uint64_t, std::vector<storage::AlertEvent>> held;  // waiting for the id
  std::map<std::uint64_t, std::uint64_t> seq_of_id;                // store alert id -> seq

  // Latest window.
  double score = 0.0;
  int iso_zone = 0;
  double vrms = 0.0;
  std::int64_t last_window_ms = 0;
  std::uint64_t windows = 0;

  // Model.
  ModelState model_state = ModelState::none;
  std::string model_version;  // active version ("" none)
  std::string model_error;
  std::string train_error;  // the last training's failure ("" after a success)
  std::shared_ptr<const analytics::Model> model;
  // The last ONNX import: its state ("none", "importing", "active", "failed") and report.
  ModelImportInfo import_info;

  // Shadow evaluation (model_shadow.hpp): the running one, if any; a trained version to stage
  // and shadow instead of activating (`model train --from --stage`); model rows this process
  // submitted (a read right after a submit may not see them yet).
  std::optional<ShadowRun> shadow;
  bool stage_next_training = false;
  std::map<std::string, storage::ModelRecord> submitted_records;  // by version

  // Learning.
  std::vector<std::vector<float>> rows;
  std::uint64_t rows_seen = 0;
  std::int64_t learn_start_ms = 0;
  std::chrono::seconds learn_for{0};
  double learn_rate_hz = 0.0;
  bool training = false;

  // Raw samples and spectrum.
  SampleRing ring;
  double ring_rate_hz = 0.0;
  AccelUnits ring_units = AccelUnits::g;
  std::shared_ptr<const std::vector<float>> spectrum;
  double spectrum_bin_hz = 0.0;
  std::int64_t spectrum_ms = 0;

  // Result aggregation (highest score per interval), with the model input of the interval's
  // first window (stored for retraining from history).
  std::optional<storage::ResultRow> best;
  std::int64_t interval_start_ms = 0;
  std::vector<float> interval_input;
  std::uint64_t interval_hash = 0;

  // Drift monitoring (daemon_drift.cpp).
  PointDrift drift;
};

// One monitored asset: its points (one per channel) in configuration order, and its level
// (the worst point's) as the write-back actions last saw it.
struct AssetGroup {
  std::string name;
  std::size_t index = 0;  // in Impl::assets (= the asset's facade block)
  std::vector<std::size_t> points;
  AlarmLevel level = AlarmLevel::normal;
};

struct TagValue {
  ingest::TagSample sample;
};

// State shared with the model trainer thread: the loop may be gone when training ends.
struct TrainerLink {
  std::mutex mu;
  boost::asio::io_context* io = nullptr;  // null after shutdown
  Daemon::Impl* impl = nullptr;           // null after shutdown (checked on the loop)
};

// Over-the-air updates (daemon_ota.cpp): the bundle worker thread and its state.
struct OtaRuntime;

struct Daemon::Impl {
  Impl(boost::asio::io_context& io, DaemonConfig config, DaemonOptions options);

  boost::asio::io_context& io;
  DaemonConfig cfg;
  DaemonOptions options;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  int lock_fd = -1;

  std::unique_ptr<storage::Store> store;
  std::unique_ptr<ModbusFacade> facade;
  std::unique_ptr<ControlServer> control;
  std::unique_ptr<uplink::Uplink> uplink;
  std::unique_ptr<AnalyticsWorker> worker;
  std::unique_ptr<ingest::ModbusPoller> poller;
  std::vector<std::unique_ptr<ingest::SerialSensor>> serial;
  std::unique_ptr<MetricsHttpServer> prometheus;
  std::shared_ptr<OtaRuntime> ota;  // null unless [ota] enabled
  SystemdNotifier notifier;
  boost::asio::steady_timer tick;
  std::shared_ptr<TrainerLink> trainer = std::make_shared<TrainerLink>();
  bool stopping = false;
  std::uint64_t ticks = 0;
  std::int64_t storage_fault_since_ms = 0;  // when the store began failing commits (0: healthy)
  Daemon* owner = nullptr;

  std::vector<PointRuntime> points;
  std::vector<AssetGroup> assets;
  std::unordered_map<std::string, std::size_t> point_by_channel;
  std::unordered_map<std::string, std::size_t> point_by_key;
  std::unordered_map<std::string, std::size_t> asset_by_name;
  std::map<std::string, TagValue> tags;  // "<device>/<tag>"

  // Counters kept by the daemon itself (the areas keep theirs).
  struct Counters {
    std::uint64_t blocks = 0, windows = 0, learning_windows = 0, results_stored = 0;
    std::uint64_t alerts_raised = 0, alerts_cleared = 0, alerts_acknowledged = 0;
    std::uint64_t store_errors = 0, models_trained = 0, model_errors = 0, reloads = 0;
    std::uint64_t reloads_refused = 0, tag_updates = 0, writes = 0, write_errors = 0;
    double latency_ms_last = 0, latency_ms_max = 0;         // block arrival -> facade updated
    double poll_jitter_ms_p99 = 0, poll_jitter_ms_max = 0;  // of the last tick
  } counters;
  // The latest kLatencyRing latencies (ms, block arrival -> facade updated) for quantiles.
  static constexpr std::size_t kLatencyRing = 8192;
  std::vector<float> latency_ring = std::vector<float>(kLatencyRing, 0.0f);
  std::size_t latency_n = 0;

  // ---- daemon.cpp ----
  std::string start();
  std::string lock_state_dir();
  void start_ingest();
  void stop_ingest();
  void close_outputs();
  void route(const SampleBlock& block);
  void on_window(WindowResult r);
  void on_transition(PointRuntime& a, const AlarmTransition& t);
  void run_actions(const AssetGroup& g, int from, int to);
  void submit_alert_event(PointRuntime& a, std::uint64_t seq, storage::AlertEvent e);
  void store_result(PointRuntime& a, const WindowResult& r, bool force_flush);
  void flush_result(PointRuntime& a, bool count_errors);
  void publish_facade(const AssetGroup& g);
  AlarmLevel asset_level(const AssetGroup& g) const;
  void learn(PointRuntime& a, WindowResult& r);
  void train(PointRuntime& a, std::string why);
  // Trains from the model inputs stored in [from_ms, to_ms] (computed with `features`).
  void train_from_history(PointRuntime& a, analytics::FeatureConfig features, std::int64_t from_ms,
                          std::int64_t to_ms);
  // Runs `rows()` then training on a thread of its own; the result comes back to on_trained.
  using RowSource = std::function<std::vector<std::vector<float>>(std::string& error)>;
  void start_trainer(PointRuntime& a, analytics::FeatureConfig features, std::string note,
                     RowSource rows);
  std::uint64_t next_shadow_id = 1;
  void on_trained(std::size_t point, std::shared_ptr<const analytics::Model> model,
                  std::string version, std::string path, std::string note, std::string error);
  std::string activate_version(PointRuntime& a, const std::string& version, std::string note);
  // ONNX import (daemon_import.cpp): checks the request on the loop, imports on a thread of its
  // own (calibration rows from the store or the request), registers the result like a training
  // (on_trained → activate_version). Returns "" (started) or one line.
  std::string start_import(PointRuntime& a, const ModelImportCommand& c);
  void on_imported(std::size_t point, std::uint64_t import_id, ModelImportInfo report,
                   std::shared_ptr<const analytics::Model> model, std::string version,
                   std::string path, std::string error);
  std::uint64_t import_seq = 0;
  void init_models();

  // ---- model_lifecycle.cpp: shadow evaluation (docs/model.md "Shadow evaluation") ----
  //
  // start_shadow — THE ENTRY POINT for a staged model version (CLI `model shadow`, `model train
  // --stage`, the over-the-air delivery once a bundle is verified and its model file written).
  //   point:   the model key ("<asset>", or "<asset>:<channel>" for an asset with several
  //            channels; find_point's rules: a bare asset name works for one channel).
  //   version: a version registered in the models table for that point (register_model_version
  //            below, or earlier), not the active one; its file is loaded here (on the loop, as
  //            activate_version does: a model file is a few KB) and must pass
  //            analytics::check_compatible against the active model's feature configuration.
  //   policy:  normally cfg.shadow ([models] in the configuration); validate()d here.
  //   origin:  who asked (logged and in the shadow_started reason); origin.bundle_id goes into
  //            every event of this evaluation (shadow_started, promoted/rolled_back, cancelled).
  // On success the version's state becomes "shadow", the analytics worker scores every window
  // with it beside the active model, a "shadow_started" event is logged/stored/uplinked, and
  // the tick later promotes it (activate_version, event "promoted") or rejects it (state
  // "rejected", the active model untouched, event "rolled_back") by judge_shadow(). A shadow
  // already running on the point is cancelled first (event "cancelled", "replaced by ...").
  // Returns "" or a one-line error and then changes nothing: unknown point, no active model
  // (still learning), unknown version, the active version, unreadable/invalid file,
  // incompatible features, bad policy, no analytics worker. Thread: loop only.
  // OTA use, once the bundle's model file is written (e.g. under models_dir(p)):
  //   storage::ModelRecord rec;  rec.version = next_model_version(p);  rec.state = "staged";
  //   rec.created_ms = now_ms();  rec.path = file;  rec.note = "bundle <id> (<signer>)";
  //   rec.feature_hash = std::to_string(model.features.hash());
  //   register_model_version(p, rec);
  //   std::string err = start_shadow(p.key, rec.version, cfg.shadow, ShadowOrigin{"ota", id});
  //   (err: report "bundle_refused" with report_model_event and mark the row as you see fit.)
  std::string start_shadow(const std::string& point, const std::string& version,
                           const ShadowPolicy& policy, const ShadowOrigin& origin);
  // Registers (or updates) a model version row, remembered in memory too, so start_shadow finds
  // it before the store has committed it. Thread: loop only.
  void register_model_version(PointRuntime& a, storage::ModelRecord rec);
  // The point's model versions: the store's rows, overridden by (or completed with) the rows
  // this process submitted since (the latest word; a read right after a submit may not see it),
  // in creation order. Thread: loop only.
  std::vector<storage::ModelRecord> model_versions(PointRuntime& a);
  // A version's row (model_versions); nullopt when unknown.
  std::optional<storage::ModelRecord> find_model_version(PointRuntime& a,
                                                         const std::string& version);
  // Stops a running shadow evaluation (no-op without one): state "cancelled" with `reason`,
  // event "cancelled". Thread: loop only.
  void cancel_shadow(PointRuntime& a, const std::string& reason);
  // Marks `row` (a version in shadow evaluation) cancelled with `reason`, registers it and
  // reports the "cancelled" model event, with the tally of `run` when one was running. Loop thread.
  void record_cancelled(PointRuntime& a, storage::ModelRecord row, const std::string& reason,
                        const ShadowRun* run);
  // Applies judge_shadow() to every running evaluation (from on_tick).
  void check_shadows();
  // Counts a window's shadow score (from on_window).
  void count_shadow(PointRuntime& a, const WindowResult& r);
  // Shadow evaluations a previous run left in state "shadow" restart (start(), after the
  // worker exists); ones that cannot are cancelled with the reason.
  void resume_shadows();
  // The next free version number of the point (above every stored or submitted one).
  std::string next_model_version(PointRuntime& a);
  // Logs one line and stores + uplinks the event (make_model_event). Thread: loop only.
  void report_model_event(ModelEventInfo info);
  // Copies a model file given on the command line into the point's model directory as a new
  // version (on a thread: write + fsync), registers it as "staged" and starts its shadow
  // evaluation; returns the new version or sets `error` (file unreadable/invalid/incompatible).
  std::string stage_model_file(PointRuntime& a, const std::string& file, ShadowPolicy policy,
                               std::string& error);
  void close_stale_alerts();
  void on_tick();
  void log_storage_health(const storage::StoreStats& ss);
  void report_health(std::string_view kind, const std::string& name, bool online,
                     std::string_view state, const std::string& detail);
  std::vector<MetricSample> collect_metrics() const;
  std::string status_line() const;
  std::string models_dir(const PointRuntime& a) const;

  // ---- daemon_drift.cpp ----
  // A drift status from the worker: kept, and a change into or out of "drifted" logged and
  // stored as a health event (uplinked). Loop thread.
  // Statuses of an older model generation than the newest seen are ignored; a newer one starts
  // afresh (no event for the model change itself).
  void on_drift(PointRuntime& a, std::uint64_t generation, analytics::DriftStatus status,
                std::string feature);
  // The point's drift state as reported: "n/a" unless scoring with a status, else the
  // analytics::to_string of the state.
  std::string drift_state(const PointRuntime& a) const;
  // drift_psi_score, drift_psi_feature_max, drift_feature, drift_state for a result row.
  void add_drift_metrics(const PointRuntime& a, std::vector<Metric>& out) const;
  // vibgate_asset_drift_psi{what=score|<input>}, _drift_windows, _drift_state of every point.
  void collect_drift_metrics(std::vector<MetricSample>& m) const;
  // The AssetInfo drift fields of a point.
  void fill_drift(const PointRuntime& a, AssetInfo& ai) const;

  // ---- daemon_ota.cpp ----
  // Loads the trusted keys and opens the staging directory; "" or one line (start refused).
  std::string start_ota();
  void stop_ota();
  void on_bundle_chunk(uplink::BundleChunk chunk);
  void on_uplink_online();
  // One model event: a log line and an outbox record (RecordKind::model, Lane::alert).
  void model_event(const std::string& asset, const std::string& event, std::vector<Metric> metrics);
  void note_ota_event(const std::string& event, const std::vector<Metric>& metrics);
  OtaInfo ota_info() const;  // `vibgate ota`
  void install_bundle(const std::string& id, ota::Verified verified,
                      std::shared_ptr<const analytics::Model> model,
                      const std::string& model_error);
  void hand_over_staged(PointRuntime& a, const std::string& version, std::uint32_t shadow_s,
                        const std::string& bundle_id, const std::string& note);

  // ---- daemon_control.cpp ----
  ControlReply handle(const ControlRequest& request);
  // The point an operator named: "<asset>" (an asset with one channel) or "<asset>:<channel>".
  // Returns null and sets `error` (one line) otherwise.
  PointRuntime* find_point(const std::string& name, std::string& error);
};

}  // namespace vibgate::daemon
