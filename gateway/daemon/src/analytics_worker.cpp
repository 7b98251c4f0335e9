// analytics_worker.cpp — bounded queue + one worker thread that windows and scores every asset's
// vibration stream (docs/analytics-worker.md).
#include "vibgate/daemon/analytics_worker.hpp"

#include <spdlog/spdlog.h>

#include <pthread.h>
#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <span>
#include <stdexcept>
#include <utility>

#include "vibgate/analytics/detector.hpp"

namespace vibgate::daemon {

// Worker-owned state of one asset. Only the worker thread touches it after construction (name and
// channel are immutable).
struct AnalyticsWorker::Asset {
  std::string name, channel;
  std::shared_ptr<const analytics::Model> model;  // null in learning mode
  std::uint64_t generation = 0;
  std::unique_ptr<analytics::Scorer> scorer;
  // Learning mode: the feature configuration (sample rate 0 until adopted from the stream) and
  // an extractor made once the rate is known.
  std::optional<analytics::FeatureConfig> learn;
  std::shared_ptr<analytics::FeatureExtractor> extractor;
  analytics::Features learn_features;
  std::unique_ptr<analytics::Windower> windower;
  std::uint64_t pushed = 0;        // samples pushed into the windower since its last reset
  bool gap_pending = false;        // flag the next window
  bool rate_logged = false;        // one log line per asset for wrong sample rates
  bool restart_next = false;       // a block was rejected: restart the stream at the next one
  std::uint64_t spectrum_due = 0;  // stream samples until the next spectrum is attached
  analytics::ScoredWindow scored;
  std::vector<float> converted;  // unit-converted samples when block and model units differ
  std::optional<std::uint64_t> input_hash;  // hash of config(); reset when it changes
  // Drift monitoring (update_drift): the model's reference against its recent windows.
  analytics::DriftMonitor drift;
  std::size_t drift_due = 0;  // scored windows until the next PSI update (0: at the next one)
  std::vector<float> drift_z;  // the window's standardized input
  // Shadow evaluation (set_shadow): the shadow model, the feature hash its inputs need, and
  // scratch buffers for its standardized input, reconstruction and int8 activations.
  struct Shadow {
    std::shared_ptr<const analytics::Model> model;
    std::uint64_t id = 0;
    std::uint64_t input_hash = 0;
    std::vector<float> z, y;
    std::vector<std::int8_t> scratch;
  };
  std::optional<Shadow> shadow;

  // The configuration windows are cut and featurized with (model's or learning's).
  const analytics::FeatureConfig& config() const { return model ? model->features : *learn; }

  void reset_stream() {
    windower->reset();
    pushed = 0;
  }
  // Replaces the cut (window length, hop); restarts the stream when it changes.
  void recut(const analytics::FeatureConfig& f, bool had_config) {
    bool same_cut = false;
    if (had_config && windower) {
      const auto& old = config();
      same_cut = old.window_length == f.window_length && old.hop() == f.hop() &&
                 old.sample_rate_hz == f.sample_rate_hz;
    }
    if (!same_cut) {
      windower = std::make_unique<analytics::Windower>(f.window_length, f.hop());
      if (had_config) gap_pending = true;  // buffered samples discarded on a swap
      pushed = 0;
    }
  }
  void set_model(std::shared_ptr<const analytics::Model> m, std::uint64_t gen,
                 std::shared_ptr<analytics::FeatureExtractor> fx) {
    auto next_scorer = std::make_unique<analytics::Scorer>(m, std::move(fx));
    recut(m->features, model || learn);
    scorer = std::move(next_scorer);
    model = std::move(m);
    learn.reset();
    extractor.reset();
    generation = gen;
    input_hash.reset();
  }
  void set_learning(analytics::FeatureConfig f, AnalyticsWorker& w) {
    recut(f, model || learn);
    model.reset();
    scorer.reset();
    extractor.reset();
    learn = std::move(f);
    input_hash.reset();
    if (learn->sample_rate_hz > 0) extractor = w.shared_extractor(*learn);
  }
};

namespace {

std::int64_t offset_ns(std::uint64_t index, double rate_hz) {
  return static_cast<std::int64_t>(std::llround(static_cast<double>(index) * 1e9 / rate_hz));
}

// Floor division for negative wall times (before 1970) stays consistent.
std::int64_t ns_to_ms(std::int64_t ns) {
  std::int64_t ms = ns / 1'000'000;
  if (ns % 1'000'000 < 0) --ms;
  return ms;
}

void add_summary(const analytics::Features& f, const analytics::FeatureConfig& c,
                 std::vector<Metric>& out) {
  out.clear();
  out.push_back({c.units == AccelUnits::g ? "rms_g" : "rms_m_s2", f.rms});
  out.push_back({"peak", f.peak});
  out.push_back({"crest_factor", f.crest_factor});
  out.push_back({"kurtosis", f.kurtosis});
  out.push_back({"skewness", f.skewness});
  out.push_back({"spectral_centroid_hz", f.spectral_centroid_hz});
  out.push_back({"dominant_hz", f.dominant_hz});
  if (!f.shaft_harmonics.empty()) out.push_back({"shaft_1x", f.shaft_harmonics[0]});
  // envelope_amplitudes: bpfo, bpfi, bsf, ftf, each × defect_harmonics (features.hpp).
  const std::size_t h = c.defect_harmonics;
  static const char* const kDefects[4] = {"env_bpfo_1", "env_bpfi_1", "env_bsf_1", "env_ftf_1"};
  if (h > 0 && f.envelope_amplitudes.size() == 4 * h)
    for (std::size_t d = 0; d < 4; ++d) out.push_back({kDefects[d], f.envelope_amplitudes[d * h]});
}

}  // namespace

AnalyticsWorker::AnalyticsWorker(std::vector<AssetSpec> assets, Options options, ResultFn on_result)
    : AnalyticsWorker(std::move(assets), options, std::move(on_result), DriftSettings{}) {}

AnalyticsWorker::AnalyticsWorker(std::vector<AssetSpec> assets, Options options, ResultFn on_result,
                                 DriftSettings drift)
    : options_(options), on_result_(std::move(on_result)), drift_(drift) {
  if (assets.empty()) throw std::invalid_argument("analytics worker: no assets");
  if (options_.queue_capacity_blocks == 0)
    throw std::invalid_argument("analytics worker: queue_capacity_blocks must be >= 1");
  if (!on_result_) throw std::invalid_argument("analytics worker: on_result is required");
  for (auto& spec : assets) {
    std::string where = "analytics worker: asset '";
    where += spec.asset;
    where += "': ";
    if (spec.asset.empty()) throw std::invalid_argument("analytics worker: empty asset name");
    if (spec.channel.empty()) throw std::invalid_argument(where + "empty channel");
    if (!spec.model && !spec.learn)
      throw std::invalid_argument(where + "neither a model nor a learning configuration");
    const std::size_t index = assets_.size();
    if (!by_asset_.emplace(spec.asset, index).second)
      throw std::invalid_argument(where + "duplicate asset name");
    if (!by_channel_.emplace(spec.channel, index).second) {
      std::string msg = where;
      msg += "channel '";
      msg += spec.channel;
      msg += "' is already used by another asset";
      throw std::invalid_argument(msg);
    }
    auto a = std::make_unique<Asset>();
    a->name = spec.asset;
    a->channel = spec.channel;
    if (spec.model) {
      auto fx = shared_extractor(spec.model->features);
      a->set_model(std::move(spec.model), 0, std::move(fx));
    } else {
      a->set_learning(*spec.learn, *this);
    }
    reset_drift(*a);
    assets_.push_back(std::move(a));
  }
  gap_next_.assign(assets_.size(), 0);
  pending_models_.resize(assets_.size());
  pending_learn_.resize(assets_.size());
  pending_generation_.assign(assets_.size(), 0);
  pending_shadow_.resize(assets_.size());
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "vg-analytics");
    run();
  });
}

AnalyticsWorker::~AnalyticsWorker() { stop(); }

void AnalyticsWorker::submit(SampleBlock block) {
  const auto it = by_channel_.find(block.channel);
  std::unique_lock lock(mu_);
  ++stats_.blocks_in;
  if (it == by_channel_.end()) {
    ++stats_.unknown_channel_blocks;
    return;
  }
  const std::size_t index = it->second;
  if (stopping_ || queue_.size() >= options_.queue_capacity_blocks) {
    ++stats_.dropped_blocks;
    gap_next_[index] = 1;
    return;
  }
  const bool gap = block.gap_before || gap_next_[index] != 0;
  gap_next_[index] = 0;
  const bool was_empty = queue_.empty();
  queue_.push_back(Item{index, gap, std::move(block)});
  stats_.queue_depth = queue_.size();
  stats_.max_queue_depth = std::max(stats_.max_queue_depth, queue_.size());
  lock.unlock();
  // The worker waits only on an empty queue and drains it before waiting again, so only the
  // first block of a burst needs to wake it (a wake per block was 6 % of the loop thread's time
  // in futex calls with 208 channels).
  if (was_empty) work_cv_.notify_one();
}

std::string AnalyticsWorker::swap_model(const std::string& asset,
                                        std::shared_ptr<const analytics::Model> model) {
  const auto it = by_asset_.find(asset);
  std::string err = "swap_model: ";
  if (it == by_asset_.end()) {
    err += "unknown asset '";
    err += asset;
    err += "'";
    return err;
  }
  if (!model) {
    err += "no model for asset '";
    err += asset;
    err += "'";
    return err;
  }
  {
    std::lock_guard lock(mu_);
    pending_models_[it->second] = std::move(model);
    pending_learn_[it->second].reset();
    ++pending_generation_[it->second];
  }
  work_cv_.notify_one();
  return "";
}

std::string AnalyticsWorker::start_learning(const std::string& asset,
                                            analytics::FeatureConfig features) {
  const auto it = by_asset_.find(asset);
  if (it == by_asset_.end()) {
    std::string err = "start_learning: unknown asset '";
    err += asset;
    err += "'";
    return err;
  }
  {
    std::lock_guard lock(mu_);
    pending_learn_[it->second] = std::move(features);
    pending_models_[it->second].reset();
  }
  work_cv_.notify_one();
  return "";
}

std::string AnalyticsWorker::set_shadow(const std::string& asset,
                                        std::shared_ptr<const analytics::Model> model,
                                        std::uint64_t shadow_id) {
  const auto it = by_asset_.find(asset);
  if (it == by_asset_.end()) {
    std::string err = "set_shadow: unknown asset '";
    err += asset;
    err += "'";
    return err;
  }
  {
    std::lock_guard lock(mu_);
    pending_shadow_[it->second] = PendingShadow{true, std::move(model), shadow_id};
  }
  work_cv_.notify_one();
  return "";
}

bool AnalyticsWorker::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return idle_cv_.wait_for(lock, timeout, [this] { return queue_.empty() && !busy_; });
}

void AnalyticsWorker::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    stats_.dropped_blocks += queue_.size();
    queue_.clear();
    stats_.queue_depth = 0;
  }
  work_cv_.notify_all();
  idle_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

AnalyticsWorker::Stats AnalyticsWorker::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void AnalyticsWorker::apply_pending_model(Asset& a, std::size_t index) {
  std::shared_ptr<const analytics::Model> m;
  std::uint64_t gen = 0;
  {
    std::lock_guard lock(mu_);
    if (pending_learn_[index]) {
      auto f = std::move(*pending_learn_[index]);
      pending_learn_[index].reset();
      try {
        a.set_learning(std::move(f), *this);
        reset_drift(a);
        spdlog::info("analytics: asset '{}': learning mode", a.name);
      } catch (const std::exception& e) {
        spdlog::error("analytics: asset '{}': cannot learn with this configuration: {}", a.name,
                      e.what());
      }
      return;
    }
    if (!pending_models_[index]) return;
    m = std::move(pending_models_[index]);
    pending_models_[index].reset();
    gen = pending_generation_[index];
  }
  try {
    auto fx = shared_extractor(m->features);
    a.set_model(std::move(m), gen, std::move(fx));
    reset_drift(a);
    spdlog::info("analytics: asset '{}': model {} in use", a.name, gen);
  } catch (const std::exception& e) {
    spdlog::error("analytics: asset '{}': new model unusable, keeping the old one: {}", a.name,
                  e.what());
  }
}

// ---- drift monitoring (analytics/drift.hpp) --------------------------------------------------

// A fresh monitor for the asset's current model: its reference, or none (an older model file,
// or learning mode). The first scored window after this carries a status. Worker thread (or the
// constructing thread before the worker starts).
void AnalyticsWorker::reset_drift(Asset& a) {
  a.drift_due = 0;
  if (a.model && !a.model->drift.empty()) {
    try {
      a.drift = analytics::DriftMonitor(a.model->drift, drift_.options);
      return;
    } catch (const std::exception& e) {
      spdlog::error("analytics: asset '{}': drift reference unusable: {}", a.name, e.what());
    }
  }
  a.drift = analytics::DriftMonitor();
}

// Adds the scored window in a.scored to the monitor (a count of at most 9 edges per
// input) and, when due, attaches the recomputed PSI to r. Worker thread.
void AnalyticsWorker::update_drift(Asset& a, WindowResult& r) {
  if (a.drift.has_reference()) {
    try {
      a.drift_z.resize(a.scored.input.size());
      a.model->normalizer.apply(a.scored.input, a.drift_z);
      a.drift.add(a.scored.score, a.drift_z);
    } catch (const std::exception& e) {  // a reference not matching the inputs: no monitoring
      spdlog::error("analytics: asset '{}': drift monitoring off: {}", a.name, e.what());
      a.drift = analytics::DriftMonitor();
    }
  }
  if (a.drift_due > 0) {
    --a.drift_due;
    return;
  }
  a.drift_due = std::max<std::size_t>(1, drift_.update_every) - 1;
  r.drift = a.drift.update();
  if (!r.drift->psi_features.empty() && r.drift->feature_max < a.model->input_names.size())
    r.drift_feature = a.model->input_names[r.drift->feature_max];
}

// ---- shadow evaluation (worker thread) ----

void AnalyticsWorker::apply_pending_shadow(Asset& a, std::size_t index) {
  PendingShadow p;
  {
    std::lock_guard lock(mu_);
    if (!pending_shadow_[index].set) return;
    p = std::move(pending_shadow_[index]);
    pending_shadow_[index] = PendingShadow{};
  }
  if (!p.model) {
    if (a.shadow)
      spdlog::info("analytics: asset '{}': shadow model {} cleared", a.name, a.shadow->id);
    a.shadow.reset();
    return;
  }
  Asset::Shadow s;
  const std::size_t d = p.model->normalizer.mean.size();
  s.z.resize(d);
  s.y.resize(d);
  s.scratch.resize(p.model->int8_net.scratch_size());
  s.input_hash = p.model->features.hash();
  s.id = p.id;
  s.model = std::move(p.model);
  a.shadow = std::move(s);
  spdlog::info("analytics: asset '{}': shadow model {} scoring beside the active one", a.name,
               a.shadow->id);
}

// The shadow model's score of the window's model input, exactly as analytics::Scorer computes
// the active one (standardize, int8 forward, mean squared error / int8 threshold).
void AnalyticsWorker::score_shadow(Asset& a, WindowResult& r) {
  if (!a.shadow || !a.scorer || !a.input_hash || r.model_input.empty()) return;
  Asset::Shadow& s = *a.shadow;
  if (s.input_hash != *a.input_hash || r.model_input.size() != s.z.size()) return;
  const analytics::Model& m = *s.model;
  m.normalizer.apply(r.model_input, s.z);
  m.int8_net.forward(s.z, s.y, s.scratch);
  r.shadow_score = analytics::mean_squared_error(s.z, s.y) / m.threshold_int8;
  r.shadow_verdict = analytics::verdict_for(r.shadow_score, m.warning_level);
  r.shadow_id = s.id;
  r.shadow_scored = true;
}

// One extractor per feature configuration, shared by every asset scored with it (the worker
// thread is their only user; at construction, before it starts, the constructing thread).
// Entries of configurations no asset uses any more are dropped on the next lookup.
std::shared_ptr<analytics::FeatureExtractor> AnalyticsWorker::shared_extractor(
    const analytics::FeatureConfig& f) {
  std::erase_if(extractors_, [](const auto& kv) { return kv.second.expired(); });
  const std::string key = f.canonical();
  if (auto it = extractors_.find(key); it != extractors_.end())
    if (auto fx = it->second.lock()) return fx;
  auto fx = std::make_shared<analytics::FeatureExtractor>(f);
  extractors_[key] = fx;
  return fx;
}

void AnalyticsWorker::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) break;  // stopping and nothing left (stop() clears the queue)
    Item item = std::move(queue_.front());
    queue_.pop_front();
    stats_.queue_depth = queue_.size();
    busy_ = true;
    lock.unlock();
    const auto t0 = std::chrono::steady_clock::now();
    process(item);
    const auto dt = std::chrono::steady_clock::now() - t0;
    item.block.samples = {};  // free outside the lock
    lock.lock();
    stats_.busy += std::chrono::duration_cast<std::chrono::nanoseconds>(dt);
    ++stats_.blocks_processed;
    busy_ = false;
    if (queue_.empty()) idle_cv_.notify_all();
  }
}

void AnalyticsWorker::process(Item& item) {
  Asset& a = *assets_[item.asset];
  apply_pending_model(a, item.asset);
  apply_pending_shadow(a, item.asset);
  const SampleBlock& b = item.block;
  if (!a.model && a.learn && a.learn->sample_rate_hz == 0 && b.sample_rate_hz > 0) {
    // Learning mode adopts the stream's sample rate from its first block.
    auto f = *a.learn;
    f.sample_rate_hz = b.sample_rate_hz;
    try {
      a.extractor = shared_extractor(f);
      a.learn = std::move(f);
      a.input_hash.reset();
      spdlog::info("analytics: asset '{}': learning at {} Hz", a.name, b.sample_rate_hz);
    } catch (const std::exception& e) {
      if (!a.rate_logged) {
        a.rate_logged = true;
        spdlog::error("analytics: asset '{}': cannot learn at {} Hz: {}", a.name, b.sample_rate_hz,
                      e.what());
      }
      std::lock_guard lock(mu_);
      ++stats_.rejected_blocks;
      return;
    }
  }
  const analytics::FeatureConfig& cfg = a.config();
  if (!a.input_hash) a.input_hash = cfg.hash();

  if (!(b.sample_rate_hz == cfg.sample_rate_hz)) {
    if (!a.rate_logged) {
      a.rate_logged = true;
      spdlog::warn(
          "analytics: asset '{}' channel '{}': block sample rate {} Hz, model expects {} Hz; "
          "blocks rejected (logged once per asset)",
          a.name, a.channel, b.sample_rate_hz, cfg.sample_rate_hz);
    }
    a.restart_next = true;  // the stream is broken: restart at the next accepted block
    std::lock_guard lock(mu_);
    ++stats_.rejected_blocks;
    return;
  }
  if (item.gap || a.restart_next) {
    a.restart_next = false;
    const bool fresh = a.pushed == 0 && a.gap_pending;  // already restarted, nothing buffered
    a.reset_stream();
    a.gap_pending = true;
    if (!fresh) {
      std::lock_guard lock(mu_);
      ++stats_.gaps;
    }
  }
  if (b.samples.empty()) return;

  std::span<const float> x(b.samples);
  if (b.units != cfg.units) {
    const float k = b.units == AccelUnits::g ? static_cast<float>(kStandardGravity)
                                             : static_cast<float>(1.0 / kStandardGravity);
    a.converted.resize(b.samples.size());
    std::transform(b.samples.begin(), b.samples.end(), a.converted.begin(),
                   [k](float v) { return v * k; });
    x = a.converted;
  }

  const std::uint64_t block_start = a.pushed;
  const double rate = b.sample_rate_hz;
  std::uint64_t scored = 0, shadowed = 0;
  bool failed = false;
  a.windower->push(x, [&](std::span<const float> window, std::uint64_t start) {
    if (failed) return;
    // The window completes inside this block: its last sample is in x.
    const std::uint64_t last = start + window.size() - 1;
    const std::uint64_t in_block = last >= block_start ? last - block_start : 0;
    WindowResult r;
    analytics::FeatureExtractor* fx = nullptr;
    try {
      if (a.scorer) {
        a.scorer->score(window, a.scored);
        fx = &a.scorer->extractor();
        r.model_input.resize(fx->model_input_size());
        fx->model_input(a.scored.features, r.model_input);
      } else {
        a.extractor->extract(window, a.learn_features);
        r.model_input.resize(a.extractor->model_input_size());
        a.extractor->model_input(a.learn_features, r.model_input);
        fx = a.extractor.get();
      }
    } catch (const std::exception& e) {
      failed = true;
      spdlog::error("analytics: asset '{}': scoring failed: {}", a.name, e.what());
      return;
    }
    const auto& f = a.scorer ? a.scored.features : a.learn_features;
    r.asset = a.name;
    r.channel = a.channel;
    r.wall_ms = ns_to_ms(b.first_sample.wall_ns + offset_ns(in_block, rate));
    r.mono_ns = b.first_sample.mono_ns + offset_ns(in_block, rate);
    r.sample_rate_hz = rate;
    r.arrival_mono_ns = b.first_sample.mono_ns + offset_ns(b.samples.size(), rate);
    r.learning = !a.scorer;
    r.input_hash = *a.input_hash;
    r.score = a.scorer ? a.scored.score : std::numeric_limits<double>::quiet_NaN();
    r.verdict = a.scorer ? a.scored.verdict : Verdict::normal;
    if (a.scorer) update_drift(a, r);
    if (a.spectrum_due <= cfg.hop()) {
      const auto sp = fx->amplitude_spectrum();
      r.spectrum = std::make_shared<const std::vector<float>>(sp.begin(), sp.end());
      r.spectrum_bin_hz = rate / static_cast<double>(cfg.window_length);
      a.spectrum_due = static_cast<std::uint64_t>(rate);
    } else {
      a.spectrum_due -= cfg.hop();
    }
    r.iso_zone = static_cast<int>(f.iso_zone) + 1;
    r.velocity_rms_mm_s = f.velocity_rms_mm_s;
    add_summary(f, cfg, r.features);
    r.gap = a.gap_pending;
    r.model_generation = a.generation;
    a.gap_pending = false;
    ++scored;
    try {
      score_shadow(a, r);
    } catch (const std::exception& e) {  // scratch size checks only; never with a loaded model
      spdlog::error("analytics: asset '{}': shadow scoring failed, shadow cleared: {}", a.name,
                    e.what());
      a.shadow.reset();
    }
    shadowed += r.shadow_scored;
    try {
      on_result_(std::move(r));
    } catch (const std::exception& e) {
      spdlog::error("analytics: asset '{}': result handler threw: {}", a.name, e.what());
      std::lock_guard lock(mu_);
      ++stats_.result_errors;
    }
  });
  a.pushed += x.size();
  std::lock_guard lock(mu_);
  stats_.windows_scored += scored;
  stats_.shadow_windows += shadowed;
  if (failed) {
    ++stats_.rejected_blocks;
    a.restart_next = true;
  }
}

}  // namespace vibgate::daemon
