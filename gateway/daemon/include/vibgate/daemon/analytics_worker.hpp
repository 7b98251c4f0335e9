// vibgate/daemon/analytics_worker.hpp — the daemon's analytics worker (issue 5,
// docs/analytics-worker.md).
//
// The Asio loop thread hands every vibration SampleBlock to submit(), which never blocks on
// analytics: it routes the block by channel to its asset and pushes it into a bounded queue. One
// worker thread owns every asset's Windower and Scorer (feature extractors are single-threaded
// objects; models are shared read-only), cuts windows with the model's window length and hop (as
// the offline CLI does), scores them and calls on_result on the worker thread; the caller posts
// the result to its own loop. When the queue is full the block is dropped and counted, and the
// asset's stream restarts at the next accepted block (the next window carries the gap flag):
// memory stays bounded by queue_capacity_blocks blocks.
//
// Learning mode: an asset without a model has a feature configuration instead (AssetSpec::learn);
// its windows are only featurized (no score) and carry the raw model-input vector, which the
// daemon collects to train the asset's baseline on site; swap_model() then starts scoring.
//
// Shadow evaluation (issue 9, docs/model.md "Shadow evaluation"): besides its active model an
// asset may have a shadow model (set_shadow). The shadow model scores the same raw model-input
// vector the active model's window produced (standardized with its own normalizer; no second
// feature extraction, no extra FFT) and its score rides along with the window's result; the
// daemon counts and judges it. The active model's score, verdict and everything else are
// unchanged by a shadow.
//
// An "asset" here is one stream: the daemon gives every channel of a multi-channel asset its own
// AssetSpec (named by its model key), so each channel has its own windower and model.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "vibgate/analytics/drift.hpp"
#include "vibgate/analytics/features.hpp"
#include "vibgate/analytics/model.hpp"
#include "vibgate/common/outbox.hpp"
#include "vibgate/common/types.hpp"

namespace vibgate::daemon {

// One monitored asset: its vibration channel and the model that scores it.
struct AssetSpec {
  std::string asset;    // asset name, unique
  std::string channel;  // SampleBlock::channel routed to this asset, unique
  std::shared_ptr<const analytics::Model> model;  // the model, or null: learning mode
  // Learning mode (model null): the features to compute. sample_rate_hz 0 = adopt the rate of
  // the first block (then fixed; blocks at another rate are rejected).
  std::optional<analytics::FeatureConfig> learn;
};

// One scored window of an asset.
struct WindowResult {
  std::string asset;
  std::string channel;
  std::int64_t wall_ms = 0;  // wall-clock time (ms since the Unix epoch, UTC) of the window's
                             // last sample: block first_sample.wall_ns + index / sample rate
  std::int64_t mono_ns = 0;  // monotonic time of the window's last sample (same rule); now minus
                             // this is the acquisition-to-result latency
  double score = 0.0;        // normalized int8 score, 1.0 = the model's alarm threshold
  Verdict verdict = Verdict::normal;
  int iso_zone = 1;  // ISO 10816-3 zone 1..4 = A..D (as daemon::WindowInput::iso_zone)
  double velocity_rms_mm_s = 0.0;
  std::vector<Metric> features;  // feature summary: rms_g (or rms_m_s2), peak, crest_factor,
                                 // kurtosis, skewness, spectral_centroid_hz, dominant_hz,
                                 // shaft_1x (when the model knows the shaft speed),
                                 // env_bpfo_1, env_bpfi_1, env_bsf_1, env_ftf_1 (with a bearing)
  bool gap = false;  // samples were lost (gap_before, dropped or rejected block) right before
                     // this window; the window itself never spans the loss
  std::uint64_t model_generation = 0;  // 0 = the constructor's model, +1 per swap_model()
  std::int64_t arrival_mono_ns = 0;    // monotonic time the block holding the window's last sample
                                       // arrived (its first_sample + its duration); now minus this
                                       // is the gateway's own latency
  bool learning = false;               // learning mode: score is NaN, verdict normal
  std::vector<float> model_input;      // the raw model-input vector of the window (both modes)
  std::uint64_t input_hash = 0;        // FeatureConfig::hash() of the settings it was computed with
  double sample_rate_hz = 0.0;
  // At most once per second of signal: the window's single-sided amplitude spectrum (bin k at
  // k * spectrum_bin_hz, input units); null in the other windows.
  std::shared_ptr<const std::vector<float>> spectrum;
  double spectrum_bin_hz = 0.0;
  // Drift (analytics/drift.hpp): the point's monitor status, attached to the first scored window
  // after a model change and then to every DriftSettings::update_every-th one (empty otherwise,
  // and always while learning). drift_feature names the input with the largest PSI ("" while
  // no PSI is computed).
  std::optional<analytics::DriftStatus> drift;
  std::string drift_feature;
  // Shadow evaluation: set when the asset has a shadow model (set_shadow) and this window was
  // scored by the active model; the shadow model's score of the same model input.
  bool shadow_scored = false;
  std::uint64_t shadow_id = 0;  // the id given to set_shadow()
  double shadow_score = 0.0;    // 1.0 = the shadow model's alarm threshold
  Verdict shadow_verdict = Verdict::normal;
};

class AnalyticsWorker {
 public:
  struct Options {
    std::size_t queue_capacity_blocks = 64;  // >= 1; blocks beyond are dropped and counted
  };

  // Drift monitoring of every scored point: its model's drift reference against the last
  // options.window windows; the PSI is recomputed every update_every windows (>= 1).
  struct DriftSettings {
    analytics::DriftOptions options;
    std::size_t update_every = 16;
  };

  // Counters since construction. Thread: any.
  struct Stats {
    std::uint64_t blocks_in = 0;         // blocks given to submit() (all outcomes)
    std::uint64_t blocks_processed = 0;  // blocks the worker windowed
    std::uint64_t windows_scored = 0;
    std::uint64_t dropped_blocks = 0;   // queue full at submit(), or discarded by stop()
    std::uint64_t rejected_blocks = 0;  // wrong sample rate, or a scoring error
    std::uint64_t unknown_channel_blocks = 0;
    std::uint64_t gaps = 0;            // stream restarts (gap_before, drop or rejection)
    std::uint64_t result_errors = 0;   // exceptions thrown by on_result (logged, swallowed)
    std::uint64_t shadow_windows = 0;  // windows also scored by a shadow model
    std::size_t queue_depth = 0;
    std::size_t max_queue_depth = 0;
    std::chrono::nanoseconds busy{0};  // worker time spent windowing and scoring (CPU share:
                                       // delta busy / delta wall time)
  };

  using ResultFn = std::function<void(WindowResult)>;

  // Starts the worker thread. Throws std::invalid_argument for an empty asset list, an empty or
  // duplicate asset name or channel, neither a model nor a learn configuration,
  // queue_capacity_blocks == 0 or a null on_result; std::invalid_argument from the Scorer for an
  // unusable model configuration. on_result is called on the worker thread, one window at a time,
  // in window order per asset.
  AnalyticsWorker(std::vector<AssetSpec> assets, Options options, ResultFn on_result);
  // The same with other drift settings (the above uses DriftSettings{}).
  AnalyticsWorker(std::vector<AssetSpec> assets, Options options, ResultFn on_result,
                  DriftSettings drift);
  ~AnalyticsWorker();  // stop()
  AnalyticsWorker(const AnalyticsWorker&) = delete;
  AnalyticsWorker& operator=(const AnalyticsWorker&) = delete;

  // Hands one block over; never waits for analytics (only a short queue lock). Unknown channels
  // are counted and discarded; a full queue drops the block (counted) and marks the asset's next
  // accepted block as following a gap. After stop() blocks are counted as dropped. Thread: any
  // (the loop's).
  void submit(SampleBlock block);

  // Replaces an asset's model; the worker picks it up before the next block it takes from the
  // queue, so every window completed after that uses the new model. When the new model's window
  // length, hop or sample rate differ, the asset's stream restarts (buffered samples are
  // discarded, gap flag on the next window). Returns "" or a one-line error (unknown asset, null
  // model). Thread: any.
  std::string swap_model(const std::string& asset, std::shared_ptr<const analytics::Model> model);

  // Puts an asset (back) into learning mode with `features` (sample_rate_hz 0: adopt from the
  // stream): its windows are featurized, not scored, from the next block on. Returns "" or a
  // one-line error (unknown asset). Thread: any.
  std::string start_learning(const std::string& asset, analytics::FeatureConfig features);

  // Shadow evaluation: gives an asset a shadow model (null clears it). From the next block the
  // worker takes on, every window the active model scores is also scored by `model` from the
  // same model-input vector, and the result carries shadow_scored, shadow_id = `shadow_id`,
  // shadow_score and shadow_verdict. The shadow model must take the active model's inputs (same
  // feature configuration hash, analytics::check_compatible): a window whose inputs were computed
  // with another configuration (learning mode, or after the active model changed to other
  // features) is not shadow-scored. Replacing the active model (swap_model) keeps the shadow.
  // Returns "" or a one-line error (unknown asset). Thread: any.
  std::string set_shadow(const std::string& asset, std::shared_ptr<const analytics::Model> model,
                         std::uint64_t shadow_id);

  // Waits until the queue is empty and the worker is idle, or the timeout passes. Returns true
  // when idle. For tests and orderly shutdown (drain, then stop). Thread: any but the worker's
  // (never from on_result).
  bool wait_idle(std::chrono::milliseconds timeout);

  // Discards the queued blocks (counted as dropped_blocks), lets the block in progress finish
  // (its windows are still delivered) and joins the worker. Idempotent. Call wait_idle() first
  // to drain instead. Thread: any but the worker's.
  void stop();

  Stats stats() const;

 private:
  struct Asset;  // worker-owned state of one asset (Windower, Scorer, time bookkeeping)
  struct Item {
    std::size_t asset = 0;
    bool gap = false;  // restart the stream before this block
    SampleBlock block;
  };

  void run();
  void process(Item& item);
  std::shared_ptr<analytics::FeatureExtractor> shared_extractor(const analytics::FeatureConfig& f);
  void apply_pending_model(Asset& a, std::size_t index);
  void reset_drift(Asset& a);                       // a new model (or learning): a fresh monitor
  void update_drift(Asset& a, WindowResult& r);     // one scored window into the monitor
  // Shadow evaluation (worker thread): takes a pending set_shadow(), and scores one window.
  void apply_pending_shadow(Asset& a, std::size_t index);
  static void score_shadow(Asset& a, WindowResult& r);

  std::vector<std::unique_ptr<Asset>> assets_;
  std::map<std::string, std::weak_ptr<analytics::FeatureExtractor>> extractors_;  // by canonical()
  std::unordered_map<std::string, std::size_t> by_channel_;
  std::unordered_map<std::string, std::size_t> by_asset_;
  Options options_;
  ResultFn on_result_;
  DriftSettings drift_;

  mutable std::mutex mu_;            // guards everything below, up to thread_
  std::condition_variable work_cv_;  // worker: item queued or stopping
  std::condition_variable idle_cv_;  // wait_idle(): queue empty and worker idle
  std::deque<Item> queue_;
  std::vector<char> gap_next_;  // per asset: a block was dropped, mark the next accepted one
  std::vector<std::shared_ptr<const analytics::Model>> pending_models_;  // per asset, or null
  std::vector<std::optional<analytics::FeatureConfig>> pending_learn_;   // per asset, or none
  std::vector<std::uint64_t> pending_generation_;
  struct PendingShadow {
    bool set = false;  // a set_shadow() waits to be applied
    std::shared_ptr<const analytics::Model> model;
    std::uint64_t id = 0;
  };
  std::vector<PendingShadow> pending_shadow_;  // per asset
  bool stopping_ = false;
  bool busy_ = false;
  Stats stats_;
  std::thread thread_;
};

}  // namespace vibgate::daemon
