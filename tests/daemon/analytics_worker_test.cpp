// analytics_worker_test.cpp — the daemon's AnalyticsWorker with real data through a real model:
// a model trained here on a healthy synthetic machine (as tests/analytics/detector_test.cpp),
// healthy and outer-race-fault machines streamed as blocks through submit(); window counts, scores
// equal to the offline path, timestamps, gaps, queue overflow, rejections, swap_model, stop().
#include "vibgate/daemon/analytics_worker.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "vibgate/analytics/detector.hpp"
#include "vibgate/analytics/synth.hpp"

namespace vibgate::daemon {
namespace {

using analytics::DefectKind;
using analytics::Model;
using namespace std::chrono_literals;

constexpr double kFs = 25600;
constexpr std::int64_t kWall0 = 1'700'000'000'000'000'000;  // ns
constexpr std::int64_t kMono0 = 5'000'000'000;

analytics::FeatureConfig machine_config() {
  analytics::FeatureConfig c;
  c.sample_rate_hz = kFs;
  c.shaft_hz = 29.95;
  c.bearing = analytics::defect_multiples(analytics::BearingGeometry{9, 0.3126, 1.537, 0});
  return c;
}

std::vector<float> machine(std::uint64_t seed, double seconds, DefectKind defect,
                           double peak_g = 0.5) {
  analytics::MachineModel m;
  m.seed = seed;
  m.defect = defect;
  m.fault_peak_g = peak_g;
  analytics::MachineSynth s(m);
  std::vector<float> x(static_cast<std::size_t>(seconds * m.sample_rate_hz));
  s.generate(x);
  return x;
}

const std::shared_ptr<const Model>& healthy_model() {
  static const std::shared_ptr<const Model> model = [] {
    const auto c = machine_config();
    const auto x = machine(1, 30, DefectKind::none);
    analytics::FeatureExtractor ex(c);
    analytics::Features f;
    std::vector<std::vector<float>> rows;
    analytics::Windower w(c.window_length, c.hop());
    w.push(x, [&](std::span<const float> win, std::uint64_t) {
      ex.extract(win, f);
      std::vector<float> row(ex.model_input_size());
      ex.model_input(f, row);
      rows.push_back(std::move(row));
    });
    analytics::TrainOptions opt;
    opt.seed = 1;
    return std::make_shared<const Model>(analytics::build_model(
        c, rows, opt, analytics::ThresholdRule{}, analytics::TrainingSummary{}));
  }();
  return model;
}

// Direct (offline-path) scores of x: Windower + Scorer with the model's window length and hop.
std::vector<double> offline_scores(const std::vector<float>& x, std::shared_ptr<const Model> m) {
  analytics::Scorer scorer(m);
  analytics::Windower w(m->features.window_length, m->features.hop());
  analytics::ScoredWindow sw;
  std::vector<double> out;
  w.push(x, [&](std::span<const float> win, std::uint64_t) {
    scorer.score(win, sw);
    out.push_back(sw.score);
  });
  return out;
}

std::size_t expected_windows(std::size_t samples) {
  return samples < 4096 ? 0 : (samples - 4096) / 2048 + 1;
}

SampleBlock block(const std::string& channel, const std::vector<float>& x, std::size_t from,
                  std::size_t n, std::int64_t extra_ns = 0) {
  SampleBlock b;
  b.channel = channel;
  b.sample_rate_hz = kFs;
  const auto t = static_cast<std::int64_t>(static_cast<double>(from) * 1e9 / kFs) + extra_ns;
  b.first_sample = Timestamp{kMono0 + t, kWall0 + t};
  b.samples.assign(x.begin() + static_cast<std::ptrdiff_t>(from),
                   x.begin() + static_cast<std::ptrdiff_t>(from + n));
  return b;
}

// Thread-safe result collector.
struct Collector {
  std::mutex mu;
  std::vector<WindowResult> results;
  void operator()(WindowResult r) {
    std::lock_guard lock(mu);
    results.push_back(std::move(r));
  }
  std::vector<WindowResult> of(const std::string& asset) {
    std::lock_guard lock(mu);
    std::vector<WindowResult> out;
    for (const auto& r : results)
      if (r.asset == asset) out.push_back(r);
    return out;
  }
};

std::vector<AssetSpec> two_assets() {
  return {AssetSpec{"pump1", "pump1/de_accel", healthy_model(), std::nullopt},
          AssetSpec{"fan2", "fan2/de_accel", healthy_model(), std::nullopt}};
}

TEST(AnalyticsWorker, HealthyAndFaultyMachinesScoredAsOffline) {
  const auto healthy = machine(2, 10, DefectKind::none);
  const auto faulty = machine(3, 10, DefectKind::outer_race, 0.5);
  Collector col;
  AnalyticsWorker w(two_assets(), AnalyticsWorker::Options{1024},
                    [&](WindowResult r) { col(std::move(r)); });
  const std::size_t bs = 1000;  // not a multiple of the hop
  for (std::size_t i = 0; i < healthy.size(); i += bs) {
    w.submit(block("pump1/de_accel", healthy, i, std::min(bs, healthy.size() - i)));
    w.submit(block("fan2/de_accel", faulty, i, std::min(bs, faulty.size() - i)));
  }
  ASSERT_TRUE(w.wait_idle(120s));
  const auto st = w.stats();
  const auto h = col.of("pump1"), f = col.of("fan2");
  ASSERT_EQ(h.size(), 124u);  // floor((256000 − 4096) / 2048) + 1
  ASSERT_EQ(f.size(), 124u);
  EXPECT_EQ(st.windows_scored, 248u);
  EXPECT_EQ(st.blocks_in, 512u);
  EXPECT_EQ(st.blocks_processed, 512u);
  EXPECT_EQ(st.dropped_blocks + st.rejected_blocks + st.unknown_channel_blocks + st.gaps, 0u);
  EXPECT_EQ(st.queue_depth, 0u);
  EXPECT_GE(st.max_queue_depth, 1u);
  EXPECT_GT(st.busy.count(), 0);

  const auto ref_h = offline_scores(healthy, healthy_model());
  const auto ref_f = offline_scores(faulty, healthy_model());
  std::size_t h_alarms = 0, f_alarms = 0;
  for (std::size_t i = 0; i < h.size(); ++i) {
    EXPECT_EQ(h[i].score, ref_h[i]) << i;
    EXPECT_EQ(f[i].score, ref_f[i]) << i;
    h_alarms += h[i].score >= 1.0;
    f_alarms += f[i].score >= 1.0;
    EXPECT_EQ(h[i].verdict, analytics::verdict_for(h[i].score, healthy_model()->warning_level));
    // Window i ends at sample 2048 i + 4095.
    const std::int64_t end_ns =
        static_cast<std::int64_t>(static_cast<double>(2048 * i + 4095) * 1e9 / kFs);
    EXPECT_NEAR(static_cast<double>(h[i].mono_ns), static_cast<double>(kMono0 + end_ns), 2.0) << i;
    EXPECT_EQ(h[i].wall_ms, (kWall0 + end_ns) / 1'000'000) << i;
    if (i > 0) {
      EXPECT_GT(h[i].wall_ms, h[i - 1].wall_ms);
    }
    EXPECT_FALSE(h[i].gap);
    EXPECT_EQ(h[i].channel, "pump1/de_accel");
    EXPECT_GE(h[i].iso_zone, 1);
    EXPECT_LE(h[i].iso_zone, 4);
    EXPECT_GT(h[i].velocity_rms_mm_s, 0.0);
  }
  std::printf("healthy: %zu/%zu alarms; outer race 0.5 g: %zu/%zu alarms\n", h_alarms, h.size(),
              f_alarms, f.size());
  EXPECT_LT(static_cast<double>(h_alarms), 0.01 * static_cast<double>(h.size()));
  EXPECT_GT(static_cast<double>(f_alarms), 0.90 * static_cast<double>(f.size()));
  std::vector<std::string> names;
  for (const auto& m : h[0].features) names.push_back(m.name);
  const std::vector<std::string> want = {
      "rms_g",       "peak",     "crest_factor", "kurtosis",   "skewness",  "spectral_centroid_hz",
      "dominant_hz", "shaft_1x", "env_bpfo_1",   "env_bpfi_1", "env_bsf_1", "env_ftf_1"};
  EXPECT_EQ(names, want);
  // The fault shows in the BPFO envelope line.
  const auto bpfo = [](const WindowResult& r) { return std::get<double>(r.features[8].value); };
  EXPECT_GT(bpfo(f[10]), 3 * bpfo(h[10]));
}

TEST(AnalyticsWorker, GapBeforeRestartsTheStream) {
  const auto x = machine(4, 2, DefectKind::none);  // 51200 samples
  Collector col;
  AnalyticsWorker w({AssetSpec{"pump1", "ch", healthy_model(), std::nullopt}}, {},
                    [&](WindowResult r) { col(std::move(r)); });
  const std::size_t bs = 4000, gap_at = 24000;
  const std::int64_t lost_ns = 1'000'000'000;  // one second lost before the gap block
  for (std::size_t i = 0; i < x.size(); i += bs) {
    auto b = block("ch", x, i, std::min(bs, x.size() - i), i >= gap_at ? lost_ns : 0);
    b.gap_before = i == gap_at;
    w.submit(std::move(b));
  }
  ASSERT_TRUE(w.wait_idle(60s));
  const auto r = col.of("pump1");
  const std::size_t before = expected_windows(gap_at), after = expected_windows(x.size() - gap_at);
  ASSERT_EQ(before, 10u);
  ASSERT_EQ(after, 12u);
  ASSERT_EQ(r.size(), before + after);
  EXPECT_EQ(w.stats().gaps, 1u);
  const std::int64_t gap_ms =
      (kWall0 + static_cast<std::int64_t>(gap_at * 1e9 / kFs) + lost_ns) / 1'000'000;
  const std::int64_t window_ms = static_cast<std::int64_t>(4095 * 1e3 / kFs);
  for (std::size_t i = 0; i < r.size(); ++i) {
    EXPECT_EQ(r[i].gap, i == before) << i;
    if (i < before) {
      EXPECT_LT(r[i].wall_ms, gap_ms) << i;  // ends before the gap
    } else {
      EXPECT_GE(r[i].wall_ms - window_ms, gap_ms) << i;  // starts after it
    }
  }
  // The windows after the gap are those of the second segment scored from its start.
  const std::vector<float> second(x.begin() + gap_at, x.end());
  const auto ref = offline_scores(second, healthy_model());
  for (std::size_t i = 0; i < after; ++i) EXPECT_EQ(r[before + i].score, ref[i]) << i;
}

TEST(AnalyticsWorker, FullQueueDropsCountedAndNextWindowFlagged) {
  const auto x = machine(5, 2, DefectKind::none);
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, release = false;
  Collector col;
  AnalyticsWorker w({AssetSpec{"pump1", "ch", healthy_model(), std::nullopt}}, AnalyticsWorker::Options{2},
                    [&](WindowResult r) {
                      std::unique_lock lock(mu);
                      if (!entered) {  // the first result blocks the worker until released
                        entered = true;
                        cv.notify_all();
                        cv.wait(lock, [&] { return release; });
                      }
                      lock.unlock();
                      col(std::move(r));
                    });
  w.submit(block("ch", x, 0, 4096));  // one window → the worker blocks in on_result
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 30s, [&] { return entered; }));
  }
  for (std::size_t i = 0; i < 10; ++i) w.submit(block("ch", x, 4096 + 2048 * i, 2048));
  auto st = w.stats();
  EXPECT_EQ(st.dropped_blocks, 8u);
  EXPECT_EQ(st.queue_depth, 2u);
  EXPECT_EQ(st.max_queue_depth, 2u);
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(w.wait_idle(30s));
  // Blocks 1 and 2 continue the stream (a window each); 3..10 were dropped, so block 11 restarts.
  w.submit(block("ch", x, 4096 + 2048 * 10, 4096));
  ASSERT_TRUE(w.wait_idle(30s));
  const auto r = col.of("pump1");
  ASSERT_EQ(r.size(), 4u);
  EXPECT_FALSE(r[0].gap);
  EXPECT_FALSE(r[1].gap);
  EXPECT_FALSE(r[2].gap);
  EXPECT_TRUE(r[3].gap);
  st = w.stats();
  EXPECT_EQ(st.blocks_in, 12u);
  EXPECT_EQ(st.blocks_processed, 4u);
  EXPECT_EQ(st.windows_scored, 4u);
  EXPECT_EQ(st.gaps, 1u);
  EXPECT_EQ(st.max_queue_depth, 2u);
}

TEST(AnalyticsWorker, UnknownChannelWrongRateAndUnitsHandled) {
  const auto x = machine(6, 1, DefectKind::none);
  Collector col;
  AnalyticsWorker w({AssetSpec{"pump1", "ch", healthy_model(), std::nullopt}}, {},
                    [&](WindowResult r) { col(std::move(r)); });
  w.submit(block("nope", x, 0, 4096));
  w.submit(block("ch", x, 0, 4096));  // window 0
  auto wrong = block("ch", x, 4096, 4096);
  wrong.sample_rate_hz = 12800;
  w.submit(wrong);
  w.submit(std::move(wrong));
  auto empty = block("ch", x, 0, 0);
  empty.sample_rate_hz = 0;
  w.submit(std::move(empty));
  // The same samples in m/s²: converted to the model's g.
  auto ms2 = block("ch", x, 8192, 8192);
  ms2.units = AccelUnits::m_per_s2;
  for (auto& v : ms2.samples) v = static_cast<float>(v * kStandardGravity);
  w.submit(std::move(ms2));
  ASSERT_TRUE(w.wait_idle(30s));
  const auto st = w.stats();
  EXPECT_EQ(st.unknown_channel_blocks, 1u);
  EXPECT_EQ(st.rejected_blocks, 3u);
  EXPECT_EQ(st.blocks_in, 6u);
  const auto r = col.of("pump1");
  ASSERT_EQ(r.size(), 1u + expected_windows(8192));  // 1 + 3
  EXPECT_FALSE(r[0].gap);
  EXPECT_TRUE(r[1].gap);  // the rejected blocks broke the stream
  const std::vector<float> seg(x.begin() + 8192, x.begin() + 16384);
  const auto ref = offline_scores(seg, healthy_model());
  for (std::size_t i = 0; i < ref.size(); ++i)
    EXPECT_NEAR(r[1 + i].score, ref[i], 0.02 * std::max(1.0, ref[i])) << i;
}

TEST(AnalyticsWorker, SwapModelTakesEffectAtTheNextBlock) {
  const auto x = machine(7, 2, DefectKind::none);
  Collector col;
  AnalyticsWorker w({AssetSpec{"pump1", "ch", healthy_model(), std::nullopt}}, {},
                    [&](WindowResult r) { col(std::move(r)); });
  EXPECT_NE(w.swap_model("nope", healthy_model()), "");
  EXPECT_NE(w.swap_model("pump1", nullptr), "");
  const std::size_t half = 25600;
  for (std::size_t i = 0; i < half; i += 3200) w.submit(block("ch", x, i, 3200));
  ASSERT_TRUE(w.wait_idle(30s));
  const std::size_t n0 = col.of("pump1").size();
  // Same feature configuration, threshold halved: scores double, the stream continues.
  auto strict = std::make_shared<Model>(*healthy_model());
  strict->threshold_int8 *= 0.5f;
  strict->threshold_float *= 0.5f;
  EXPECT_EQ(w.swap_model("pump1", strict), "");
  for (std::size_t i = half; i < x.size(); i += 3200) w.submit(block("ch", x, i, 3200));
  ASSERT_TRUE(w.wait_idle(30s));
  const auto r = col.of("pump1");
  ASSERT_EQ(r.size(), expected_windows(x.size()));  // no restart: same window length and hop
  const auto ref_old = offline_scores(x, healthy_model());
  const auto ref_new = offline_scores(x, strict);
  for (std::size_t i = 0; i < r.size(); ++i) {
    EXPECT_EQ(r[i].model_generation, i < n0 ? 0u : 1u) << i;
    EXPECT_EQ(r[i].score, i < n0 ? ref_old[i] : ref_new[i]) << i;
    EXPECT_FALSE(r[i].gap);
  }
  EXPECT_NEAR(r.back().score, 2 * ref_old.back(), 0.05 * ref_old.back() + 1e-3);
}

TEST(AnalyticsWorker, StopDiscardsQueuedBlocksAndJoinsPromptly) {
  const auto x = machine(8, 4, DefectKind::none);
  std::atomic<std::size_t> results{0};
  AnalyticsWorker w({AssetSpec{"pump1", "ch", healthy_model(), std::nullopt}}, AnalyticsWorker::Options{1000},
                    [&](WindowResult) { ++results; });
  const std::size_t blocks = 400;  // ~800 windows of work queued
  for (std::size_t k = 0; k < blocks; ++k) {
    const std::size_t from = (k * 4096) % (x.size() - 4096);
    w.submit(block("ch", x, from, 4096));
  }
  const auto t0 = std::chrono::steady_clock::now();
  w.stop();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 2s);
  w.stop();                           // idempotent
  w.submit(block("ch", x, 0, 4096));  // after stop: dropped, no crash
  const auto st = w.stats();
  EXPECT_EQ(st.blocks_processed + st.dropped_blocks, blocks + 1);
  EXPECT_GT(st.dropped_blocks, 0u);
  EXPECT_EQ(st.queue_depth, 0u);
  EXPECT_EQ(st.windows_scored, results.load());
  EXPECT_TRUE(w.wait_idle(1s));
}

TEST(AnalyticsWorker, ResultHandlerExceptionsAreContained) {
  const auto x = machine(9, 1, DefectKind::none);
  AnalyticsWorker w({AssetSpec{"pump1", "ch", healthy_model(), std::nullopt}}, {},
                    [](WindowResult) { throw std::runtime_error("boom"); });
  w.submit(block("ch", x, 0, 8192));
  ASSERT_TRUE(w.wait_idle(30s));
  EXPECT_EQ(w.stats().result_errors, 3u);
  EXPECT_EQ(w.stats().windows_scored, 3u);
}

TEST(AnalyticsWorker, InvalidConstructionThrows) {
  const auto cb = [](WindowResult) {};
  EXPECT_THROW(AnalyticsWorker({}, {}, cb), std::invalid_argument);
  EXPECT_THROW(AnalyticsWorker({AssetSpec{"a", "ch", nullptr, std::nullopt}}, {}, cb), std::invalid_argument);
  EXPECT_THROW(
      AnalyticsWorker(
          {AssetSpec{"a", "ch", healthy_model(), std::nullopt}, AssetSpec{"b", "ch", healthy_model(), std::nullopt}}, {}, cb),
      std::invalid_argument);
  EXPECT_THROW(
      AnalyticsWorker(
          {AssetSpec{"a", "ch", healthy_model(), std::nullopt}, AssetSpec{"a", "ch2", healthy_model(), std::nullopt}}, {}, cb),
      std::invalid_argument);
  EXPECT_THROW(
      AnalyticsWorker({AssetSpec{"a", "ch", healthy_model(), std::nullopt}}, AnalyticsWorker::Options{0}, cb),
      std::invalid_argument);
  EXPECT_THROW(AnalyticsWorker({AssetSpec{"a", "ch", healthy_model(), std::nullopt}}, {}, nullptr),
               std::invalid_argument);
}

}  // namespace
}  // namespace vibgate::daemon

namespace vibgate::daemon {
namespace {

// Learning mode: no model, a feature configuration with sample rate 0 (adopted from the first
// block). Windows carry the model-input rows the offline extractor computes, no score; a model
// trained from those rows and swapped in scores the following windows exactly like the offline
// path; start_learning() goes back to featurizing. A spectrum is attached about once a second.
TEST(AnalyticsWorker, LearningModeFeaturizesThenScoresAfterSwap) {
  const auto x = machine(21, 6, DefectKind::none);  // 153600 samples
  auto learn = machine_config();
  learn.sample_rate_hz = 0;
  Collector col;
  AnalyticsWorker w({AssetSpec{"pump1", "ch", nullptr, learn}}, {},
                    [&](WindowResult r) { col(std::move(r)); });
  const std::size_t half = 76800, bs = 2560;
  for (std::size_t i = 0; i < half; i += bs) w.submit(block("ch", x, i, bs));
  ASSERT_TRUE(w.wait_idle(60s));
  const auto learned = col.of("pump1");
  ASSERT_EQ(learned.size(), expected_windows(half));
  // Reference rows: the offline extractor on the same samples.
  analytics::FeatureExtractor ex(machine_config());
  analytics::Features f;
  std::vector<std::vector<float>> rows;
  analytics::Windower win(4096, 2048);
  win.push(std::span<const float>(x.data(), half), [&](std::span<const float> s, std::uint64_t) {
    ex.extract(s, f);
    std::vector<float> row(ex.model_input_size());
    ex.model_input(f, row);
    rows.push_back(std::move(row));
  });
  ASSERT_EQ(rows.size(), learned.size());
  std::size_t spectra = 0;
  for (std::size_t i = 0; i < learned.size(); ++i) {
    EXPECT_TRUE(learned[i].learning) << i;
    EXPECT_TRUE(std::isnan(learned[i].score)) << i;
    EXPECT_EQ(learned[i].sample_rate_hz, kFs);
    EXPECT_EQ(learned[i].model_input, rows[i]) << i;
    EXPECT_GE(learned[i].iso_zone, 1);
    if (learned[i].spectrum) {
      ++spectra;
      EXPECT_EQ(learned[i].spectrum->size(), 4096u / 2 + 1);
      EXPECT_DOUBLE_EQ(learned[i].spectrum_bin_hz, kFs / 4096);
    }
  }
  EXPECT_GE(spectra, 2u);  // 3 s of signal: about one per second
  EXPECT_LE(spectra, 4u);

  analytics::TrainOptions opt;
  opt.seed = 3;
  auto model = std::make_shared<const Model>(analytics::build_model(
      machine_config(), rows, opt, analytics::ThresholdRule{}, analytics::TrainingSummary{}));
  ASSERT_EQ(w.swap_model("pump1", model), "");
  for (std::size_t i = half; i < x.size(); i += bs) w.submit(block("ch", x, i, bs));
  ASSERT_TRUE(w.wait_idle(60s));
  const auto all = col.of("pump1");
  std::vector<WindowResult> scored(all.begin() + static_cast<std::ptrdiff_t>(learned.size()),
                                   all.end());
  // Same cut (window, hop, rate): the stream continues across the swap without a gap.
  ASSERT_EQ(all.size(), expected_windows(x.size()));
  std::vector<double> ref;
  std::vector<std::vector<float>> ref_inputs;
  {
    analytics::Scorer scorer(model);
    analytics::Windower w2(4096, 2048);
    analytics::ScoredWindow sw;
    w2.push(x, [&](std::span<const float> s, std::uint64_t) {
      scorer.score(s, sw);
      ref.push_back(sw.score);
      std::vector<float> in(scorer.extractor().model_input_size());
      scorer.extractor().model_input(sw.features, in);
      ref_inputs.push_back(std::move(in));
    });
  }
  // Scored windows carry their model input too (the daemon stores one per result interval for
  // retraining from history), tagged with the hash of the settings that computed it.
  for (std::size_t i = 0; i < scored.size(); ++i) {
    EXPECT_FALSE(scored[i].learning) << i;
    EXPECT_EQ(scored[i].model_input, ref_inputs[learned.size() + i]) << i;
    EXPECT_EQ(scored[i].input_hash, model->features.hash()) << i;
    EXPECT_FALSE(scored[i].gap) << i;
    EXPECT_EQ(scored[i].score, ref[learned.size() + i]) << i;
  }

  ASSERT_EQ(w.start_learning("pump1", learn), "");
  EXPECT_NE(w.start_learning("nope", learn), "");
  w.submit(block("ch", x, 0, 8192, 10'000'000'000));
  ASSERT_TRUE(w.wait_idle(60s));
  const auto again = col.of("pump1");
  ASSERT_GT(again.size(), all.size());
  EXPECT_TRUE(again.back().learning);
  EXPECT_EQ(again.back().model_input.size(), rows[0].size());
}

TEST(AnalyticsWorker, NeitherModelNorLearningIsRefused) {
  auto cb = [](WindowResult) {};
  EXPECT_THROW(AnalyticsWorker({AssetSpec{"a", "ch", nullptr, std::nullopt}}, {}, cb),
               std::invalid_argument);
}

}  // namespace
}  // namespace vibgate::daemon
