// drift_worker_test.cpp — drift monitoring inside the daemon's AnalyticsWorker: a status on the
// first scored window and every DriftSettings::update_every-th one after, PSIs equal to a
// DriftMonitor fed offline with the same windows, a model swap restarting the monitor, an old model
// without a reference reported as such, and no status while learning.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "vibgate/analytics/detector.hpp"
#include "vibgate/analytics/synth.hpp"
#include "vibgate/daemon/analytics_worker.hpp"

namespace vibgate::daemon {
namespace {

using analytics::DriftState;
using analytics::Model;
using namespace std::chrono_literals;

constexpr double kFs = 25600;

analytics::FeatureConfig config() {
  analytics::FeatureConfig c;
  c.sample_rate_hz = kFs;
  return c;
}

std::vector<float> machine(std::uint64_t seed, double seconds,
                           analytics::DefectKind d = analytics::DefectKind::none) {
  analytics::MachineModel m;
  m.seed = seed;
  m.defect = d;
  analytics::MachineSynth s(m);
  std::vector<float> x(static_cast<std::size_t>(seconds * kFs));
  s.generate(x);
  return x;
}

const std::shared_ptr<const Model>& model() {
  static const std::shared_ptr<const Model> m = [] {
    const auto c = config();
    const auto x = machine(1, 20);
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
    analytics::TrainOptions o;
    o.max_epochs = 30;
    return std::make_shared<const Model>(
        analytics::build_model(c, rows, o, analytics::ThresholdRule{}, {}));
  }();
  return m;
}

struct Results {
  std::mutex mu;
  std::vector<WindowResult> all;
  void operator()(WindowResult r) {
    std::lock_guard l(mu);
    all.push_back(std::move(r));
  }
};

SampleBlock block(const std::vector<float>& x, std::size_t from, std::size_t n) {
  SampleBlock b;
  b.channel = "ch";
  b.sample_rate_hz = kFs;
  const auto t = static_cast<std::int64_t>(static_cast<double>(from) * 1e9 / kFs);
  b.first_sample = Timestamp{1'000'000'000 + t, 1'700'000'000'000'000'000 + t};
  b.samples.assign(x.begin() + static_cast<std::ptrdiff_t>(from),
                   x.begin() + static_cast<std::ptrdiff_t>(from + n));
  return b;
}

void stream(AnalyticsWorker& w, const std::vector<float>& x) {
  for (std::size_t i = 0; i + 4096 <= x.size(); i += 4096) {
    w.submit(block(x, i, 4096));
    if ((i / 4096) % 8 == 7) {
      ASSERT_TRUE(w.wait_idle(30s));  // never fill the queue
    }
  }
  ASSERT_TRUE(w.wait_idle(30s));
}

AnalyticsWorker::Options options() {
  AnalyticsWorker::Options o;
  o.queue_capacity_blocks = 64;
  return o;
}

AnalyticsWorker::DriftSettings drift_settings() {
  AnalyticsWorker::DriftSettings d;
  d.options.min_windows = 50;
  d.update_every = 16;
  return d;
}

TEST(DriftWorker, StatusCadenceAndSameAsOffline) {
  Results res;
  AnalyticsWorker w(
      {AssetSpec{"a", "ch", model(), std::nullopt}}, options(),
      [&](WindowResult r) { res(std::move(r)); }, drift_settings());
  const auto x = machine(7, 12);
  stream(w, x);
  w.stop();
  // Offline: the same windows through Scorer + DriftMonitor.
  analytics::Scorer sc(model());
  analytics::ScoredWindow sw;
  analytics::DriftMonitor mon(model()->drift, drift_settings().options);
  std::vector<float> z(model()->input_names.size());
  std::vector<analytics::DriftStatus> offline;
  std::size_t k = 0;
  analytics::Windower win(4096, 2048);
  win.push(x, [&](std::span<const float> s, std::uint64_t) {
    sc.score(s, sw);
    model()->normalizer.apply(sw.input, z);
    mon.add(sw.score, z);
    if (k++ % 16 == 0) offline.push_back(mon.update());
  });
  std::vector<const WindowResult*> with;
  for (std::size_t i = 0; i < res.all.size(); ++i) {
    EXPECT_EQ(res.all[i].drift.has_value(), i % 16 == 0) << i;
    if (res.all[i].drift) with.push_back(&res.all[i]);
  }
  ASSERT_EQ(with.size(), offline.size());
  ASSERT_GE(with.size(), 5u);
  EXPECT_EQ(with[0]->drift->state, DriftState::warming_up);
  EXPECT_EQ(with[0]->drift->windows, 1u);
  EXPECT_EQ(with[0]->drift_feature, "");
  for (std::size_t i = 0; i < with.size(); ++i) {
    EXPECT_EQ(with[i]->drift->windows, offline[i].windows);
    EXPECT_EQ(with[i]->drift->state, offline[i].state);
    EXPECT_DOUBLE_EQ(with[i]->drift->psi_score, offline[i].psi_score);
    EXPECT_DOUBLE_EQ(with[i]->drift->psi_feature_max, offline[i].psi_feature_max);
  }
  const auto& last = *with.back();
  EXPECT_NE(last.drift->state, DriftState::warming_up);
  EXPECT_EQ(last.drift_feature, model()->input_names[last.drift->feature_max]);
}

TEST(DriftWorker, SwapRestartsOldModelHasNoReferenceLearningHasNone) {
  Results res;
  AnalyticsWorker w(
      {AssetSpec{"a", "ch", model(), std::nullopt}}, options(),
      [&](WindowResult r) { res(std::move(r)); }, drift_settings());
  stream(w, machine(8, 8));
  std::size_t before = 0;
  {
    std::lock_guard l(res.mu);
    before = res.all.size();
    ASSERT_GT(before, 60u);
  }
  // An older model file: the same model without a reference.
  auto old = std::make_shared<Model>(*model());
  old->drift = analytics::DriftReference{};
  ASSERT_EQ(w.swap_model("a", old), "");
  stream(w, machine(9, 4));
  ASSERT_EQ(w.swap_model("a", model()), "");
  stream(w, machine(10, 4));
  ASSERT_EQ(w.start_learning("a", config()), "");
  stream(w, machine(11, 4));
  w.stop();
  std::lock_guard l(res.mu);
  std::vector<const WindowResult*> gen1, gen2, learning;
  for (std::size_t i = before; i < res.all.size(); ++i) {
    const auto& r = res.all[i];
    if (r.learning)
      learning.push_back(&r);
    else if (r.model_generation == 1)
      gen1.push_back(&r);
    else if (r.model_generation == 2)
      gen2.push_back(&r);
  }
  ASSERT_FALSE(gen1.empty());
  ASSERT_FALSE(gen2.empty());
  ASSERT_FALSE(learning.empty());
  ASSERT_TRUE(gen1.front()->drift.has_value());  // first window of a new model
  EXPECT_EQ(gen1.front()->drift->state, DriftState::no_reference);
  EXPECT_STREQ(analytics::to_string(gen1.front()->drift->state), "n/a (model has no reference)");
  ASSERT_TRUE(gen2.front()->drift.has_value());
  EXPECT_EQ(gen2.front()->drift->state, DriftState::warming_up);
  EXPECT_EQ(gen2.front()->drift->windows, 1u);  // the monitor restarted with the swap
  for (const auto* r : learning) EXPECT_FALSE(r->drift.has_value());
}

}  // namespace
}  // namespace vibgate::daemon
