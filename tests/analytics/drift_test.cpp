// drift_test.cpp — drift references and the PSI monitor (analytics/drift.hpp): quantile bins,
// PSI of identical and shifted distributions, the sliding window forgetting, the epsilon floor,
// models without a reference (older files), the model-file round trip of a reference, and a
// trained model's reference against healthy and faulty synthetic windows.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "vibgate/analytics/detector.hpp"
#include "vibgate/analytics/drift.hpp"
#include "vibgate/analytics/features.hpp"
#include "vibgate/analytics/model.hpp"
#include "vibgate/analytics/synth.hpp"

namespace vibgate::analytics {
namespace {

namespace fs = std::filesystem;

std::vector<float> normal_values(std::size_t n, double mean, double sd, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(mean, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(g(rng));
  return v;
}

// A reference with one input whose training values are N(0, 1) and the score N(0.3, 0.05).
DriftReference one_input_reference(std::size_t n = 2000) {
  DriftReference r;
  r.score = make_drift_histogram(normal_values(n, 0.3, 0.05, 1));
  r.features.push_back(make_drift_histogram(normal_values(n, 0, 1, 2)));
  r.rows = n;
  return r;
}

void feed(DriftMonitor& m, const std::vector<float>& scores, const std::vector<float>& z) {
  for (std::size_t i = 0; i < z.size(); ++i) m.add(scores[i], std::span<const float>(&z[i], 1));
}

TEST(DriftHistogram, DecileEdgesAndProportions) {
  std::vector<float> v(1000);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  const auto h = make_drift_histogram(v);
  ASSERT_EQ(h.edges.size(), 9u);  // 10 bins
  for (std::size_t j = 0; j < 9; ++j) EXPECT_EQ(h.edges[j], static_cast<float>((j + 1) * 100));
  for (float p : h.proportions) EXPECT_NEAR(p, 0.1, 1e-6);
  EXPECT_EQ(h.bin_of(-1e30f), 0u);  // open-ended outer bins
  EXPECT_EQ(h.bin_of(1e30f), 9u);
  EXPECT_EQ(h.bin_of(100.0f), 1u);  // an edge belongs to the bin above it
  EXPECT_EQ(h.bin_of(99.5f), 0u);
}

TEST(DriftHistogram, FewRowsGiveFewerBinsAndConstantsOneEdge) {
  EXPECT_EQ(make_drift_histogram(normal_values(60, 0, 1, 3)).bins(), 3u);  // 1 + 60/25
  EXPECT_EQ(make_drift_histogram(normal_values(10, 0, 1, 3)).bins(), 2u);  // at least 2
  const auto c = make_drift_histogram(std::vector<float>(500, 2.5f));
  ASSERT_EQ(c.edges.size(), 1u);  // duplicates merged
  EXPECT_EQ(c.bin_of(2.5f), 1u);
  EXPECT_FLOAT_EQ(c.proportions[1], 1.0f);
  EXPECT_FLOAT_EQ(c.proportions[0], static_cast<float>(kDriftEpsilon));  // floored, not 0
  EXPECT_THROW(make_drift_histogram({}), std::invalid_argument);
  EXPECT_THROW(make_drift_histogram({1.0f, NAN}), std::invalid_argument);
}

TEST(Psi, IdenticalIsZeroAndFormulaHolds) {
  const std::vector<float> q = {0.25f, 0.25f, 0.5f};
  const std::vector<std::uint32_t> same = {25, 25, 50};
  EXPECT_NEAR(population_stability_index(same, 100, q), 0.0, 1e-7);
  const std::vector<std::uint32_t> other = {50, 25, 25};
  const double expect = (0.5 - 0.25) * std::log(0.5 / 0.25) + (0.25 - 0.5) * std::log(0.25 / 0.5);
  EXPECT_NEAR(population_stability_index(other, 100, q), expect, 1e-6);
  // An empty recent bin: the epsilon floor keeps the PSI finite.
  const std::vector<std::uint32_t> empty_bin = {0, 0, 100};
  const double psi = population_stability_index(empty_bin, 100, q);
  EXPECT_TRUE(std::isfinite(psi));
  EXPECT_NEAR(psi, 2 * (1e-4 - 0.25) * std::log(1e-4 / 0.25) + 0.5 * std::log(2.0), 1e-5);
}

TEST(DriftMonitor, SameDistributionStaysStable) {
  DriftMonitor m(one_input_reference(), DriftOptions{});
  feed(m, normal_values(2048, 0.3, 0.05, 11), normal_values(2048, 0, 1, 12));
  const auto s = m.update();
  EXPECT_EQ(s.windows, 2048u);
  // update() (logarithm tables) agrees with population_stability_index() on the same counts.
  const auto ref = one_input_reference();
  const auto zs = normal_values(2048, 0, 1, 12);
  std::vector<std::uint32_t> counts(ref.features[0].bins(), 0);
  for (float v : zs) ++counts[ref.features[0].bin_of(v)];
  EXPECT_NEAR(s.psi_feature_max,
              population_stability_index(counts, zs.size(), ref.features[0].proportions), 1e-9);
  EXPECT_LT(s.psi_score, 0.05);
  EXPECT_LT(s.psi_feature_max, 0.05);
  EXPECT_EQ(s.state, DriftState::stable);
  EXPECT_STREQ(to_string(s.state), "stable");
}

TEST(DriftMonitor, ShiftedDistributionDrifts) {
  DriftMonitor m(one_input_reference(), DriftOptions{});
  // The feature moves by one standard deviation; the score stays.
  feed(m, normal_values(2048, 0.3, 0.05, 13), normal_values(2048, 1.0, 1, 14));
  const auto s = m.update();
  EXPECT_GT(s.psi_feature_max, 0.25);
  EXPECT_EQ(s.feature_max, 0u);
  EXPECT_LT(s.psi_score, 0.05);
  EXPECT_EQ(s.state, DriftState::drifted);
  ASSERT_EQ(s.psi_features.size(), 1u);
  EXPECT_FLOAT_EQ(s.psi_features[0], static_cast<float>(s.psi_feature_max));
  // A far-away score with every window in one reference bin: large but finite.
  DriftMonitor far(one_input_reference(), DriftOptions{});
  feed(far, std::vector<float>(500, 50.0f), normal_values(500, 0, 1, 15));
  const auto f = far.update();
  EXPECT_TRUE(std::isfinite(f.psi_score));
  EXPECT_GT(f.psi_score, 2.0);
}

TEST(DriftMonitor, SlidingWindowForgetsOldWindows) {
  DriftOptions o;
  o.window = 500;
  o.min_windows = 100;
  DriftMonitor m(one_input_reference(), o);
  feed(m, normal_values(500, 0.3, 0.05, 21), normal_values(500, 2.0, 1, 22));  // shifted
  EXPECT_EQ(m.update().state, DriftState::drifted);
  // Healthy again: after exactly `window` more windows nothing of the shift is left.
  const auto healthy_s = normal_values(500, 0.3, 0.05, 23);
  const auto healthy_z = normal_values(500, 0, 1, 24);
  feed(m, healthy_s, healthy_z);
  const auto a = m.update();
  EXPECT_EQ(a.windows, 500u);
  DriftMonitor fresh(one_input_reference(), o);
  feed(fresh, healthy_s, healthy_z);
  const auto b = fresh.update();
  EXPECT_DOUBLE_EQ(a.psi_feature_max, b.psi_feature_max);  // exactly the same counts
  EXPECT_DOUBLE_EQ(a.psi_score, b.psi_score);
  EXPECT_EQ(a.state, DriftState::stable);
}

TEST(DriftMonitor, HysteresisAndWarmUpAndReset) {
  DriftOptions o;
  o.window = 1000;
  o.min_windows = 200;
  DriftMonitor m(one_input_reference(), o);
  feed(m, normal_values(199, 0.3, 0.05, 31), normal_values(199, 3.0, 1, 32));
  auto s = m.update();
  EXPECT_EQ(s.state, DriftState::warming_up);
  EXPECT_STREQ(to_string(s.state), "n/a");
  EXPECT_EQ(s.psi_features.size(), 0u);
  m.reset();
  EXPECT_EQ(m.windows(), 0u);
  EXPECT_EQ(m.update().state, DriftState::warming_up);
  // Threshold crossing with hysteresis: a PSI between 0.2 and 0.25 keeps "drifted" once there.
  DriftOptions h = o;
  h.drifted = 0.25;
  h.release = 0.8;
  // The smallest mean shift (in steps of 0.01 sd) whose PSI lies between 0.2 and 0.25.
  std::vector<float> shifted;
  DriftStatus first;
  for (int k = 20; k <= 80 && shifted.empty(); ++k) {
    DriftMonitor hm(one_input_reference(), h);
    auto cand = normal_values(1000, k / 100.0, 1, 33);
    feed(hm, normal_values(1000, 0.3, 0.05, 34), cand);
    first = hm.update();
    if (first.psi_feature_max > 0.2 && first.psi_feature_max < 0.25) shifted = std::move(cand);
  }
  ASSERT_FALSE(shifted.empty()) << "no shift between the two thresholds";
  EXPECT_EQ(first.state, DriftState::shifting);  // not drifted: it never was
  DriftMonitor hm2(one_input_reference(), h);
  feed(hm2, normal_values(1000, 0.3, 0.05, 35), normal_values(1000, 2.0, 1, 36));
  EXPECT_EQ(hm2.update().state, DriftState::drifted);
  feed(hm2, normal_values(1000, 0.3, 0.05, 34), shifted);  // the whole window replaced
  EXPECT_EQ(hm2.update().state, DriftState::drifted);      // same counts as `first`, but held
}

TEST(DriftMonitor, NoReferenceIsNotApplicable) {
  DriftMonitor m;
  EXPECT_FALSE(m.has_reference());
  const float z[2] = {1, 2};
  m.add(0.5, z);  // ignored
  const auto s = m.update();
  EXPECT_EQ(s.state, DriftState::no_reference);
  EXPECT_STREQ(to_string(s.state), "n/a (model has no reference)");
  EXPECT_THROW(DriftMonitor(DriftReference{}), std::invalid_argument);
  DriftMonitor one(one_input_reference());
  EXPECT_THROW(one.add(0.1, z), std::invalid_argument);  // width mismatch
}

// ---- with a trained model ------------------------------------------------------------------

FeatureConfig bearing_config() {
  FeatureConfig c;
  c.sample_rate_hz = 25600;
  c.shaft_hz = 29.95;
  c.bearing = defect_multiples(BearingGeometry{9, 0.3126, 1.537, 0});
  return c;
}

std::vector<std::vector<float>> rows_of(std::uint64_t seed, double seconds,
                                        DefectKind defect = DefectKind::none) {
  MachineModel mm;
  mm.seed = seed;
  mm.defect = defect;
  mm.fault_peak_g = 0.5;
  MachineSynth s(mm);
  std::vector<float> x(static_cast<std::size_t>(seconds * mm.sample_rate_hz));
  s.generate(x);
  const FeatureConfig cfg = bearing_config();
  FeatureExtractor ex(cfg);
  Features f;
  std::vector<std::vector<float>> rows;
  for (std::size_t i = 0; i + cfg.window_length <= x.size(); i += cfg.hop()) {
    ex.extract(std::span<const float>(x).subspan(i, cfg.window_length), f);
    std::vector<float> row(ex.model_input_size());
    ex.model_input(f, row);
    rows.push_back(std::move(row));
  }
  return rows;
}

const Model& trained_model() {
  static const Model m = [] {
    TrainOptions o;
    o.seed = 3;
    o.max_epochs = 40;
    return build_model(bearing_config(), rows_of(5, 40), o, ThresholdRule{}, {});
  }();
  return m;
}

DriftStatus monitor_rows(const Model& m, const std::vector<std::vector<float>>& rows) {
  DriftOptions o;
  o.min_windows = 100;
  DriftMonitor mon(m.drift, o);
  Scorer sc(std::make_shared<Model>(m));
  std::vector<float> z(m.input_names.size()), y(z.size());
  std::vector<std::int8_t> q(m.int8_net.scratch_size());
  for (const auto& r : rows) {
    m.normalizer.apply(r, z);
    m.int8_net.forward(z, y, q);
    mon.add(mean_squared_error(z, y) / m.threshold_int8, z);
  }
  return mon.update();
}

TEST(DriftReference, BuiltByBuildModelForEveryInput) {
  const Model& m = trained_model();
  ASSERT_FALSE(m.drift.empty());
  EXPECT_EQ(m.drift.features.size(), m.input_names.size());
  EXPECT_EQ(m.drift.rows, m.summary.windows);
  EXPECT_EQ(check_drift_reference(m.drift, m.input_names.size()), "");
  // The score's reference comes from the validation rows only (20 %), the inputs' from all.
  EXPECT_GT(m.drift.score_rows, 0u);
  EXPECT_EQ(m.drift.score_rows,
            static_cast<std::uint64_t>(0.2 * static_cast<double>(m.drift.rows)));
  // make_drift_reference on the same rows reproduces the inputs' histograms (the ONNX
  // importer's entry point); its score histogram uses every row.
  const auto rows = rows_of(5, 40);
  const auto again = make_drift_reference(m, rows);
  EXPECT_EQ(again.score_rows, rows.size());
  for (std::size_t i = 0; i < again.features.size(); ++i) {
    EXPECT_EQ(again.features[i].edges, m.drift.features[i].edges);
    EXPECT_EQ(again.features[i].proportions, m.drift.features[i].proportions);
  }
  // With score rows: the score histogram is that of exactly those rows' scores.
  const std::vector<std::size_t> pick = {0, 5, 9, 17, 30};
  const auto some = make_drift_reference(m, rows, pick);
  std::vector<float> s;
  std::vector<float> z(m.input_names.size()), y(z.size());
  std::vector<std::int8_t> q(m.int8_net.scratch_size());
  for (std::size_t i : pick) {
    m.normalizer.apply(rows[i], z);
    m.int8_net.forward(z, y, q);
    s.push_back(static_cast<float>(static_cast<double>(mean_squared_error(z, y)) /
                                   static_cast<double>(m.threshold_int8)));
  }
  EXPECT_EQ(some.score.edges, make_drift_histogram(s).edges);
  EXPECT_EQ(some.score_rows, 5u);
  const std::vector<std::size_t> beyond = {rows.size()};
  EXPECT_THROW(make_drift_reference(m, rows, beyond), std::invalid_argument);
  EXPECT_THROW(make_drift_reference(m, {}), std::invalid_argument);
  EXPECT_THROW(make_drift_reference(m, {{1.0f, 2.0f}}), std::invalid_argument);
}

TEST(DriftReference, HealthyStaysLowFaultyDrifts) {
  const Model& m = trained_model();
  const auto healthy = monitor_rows(m, rows_of(77, 40));  // another seed, same machine
  EXPECT_LT(std::max(healthy.psi_score, healthy.psi_feature_max), 0.25)
      << "score " << healthy.psi_score << " feature " << m.input_names[healthy.feature_max] << " "
      << healthy.psi_feature_max;
  const auto faulty = monitor_rows(m, rows_of(78, 40, DefectKind::outer_race));
  std::printf(
      "reference %llu rows; healthy: PSI score %.3f, feature max %.3f (%s); faulty: PSI "
      "score %.3f, feature max %.3f (%s)\n",
      static_cast<unsigned long long>(m.drift.rows), healthy.psi_score, healthy.psi_feature_max,
      m.input_names[healthy.feature_max].c_str(), faulty.psi_score, faulty.psi_feature_max,
      m.input_names[faulty.feature_max].c_str());
  EXPECT_EQ(faulty.state, DriftState::drifted);
  EXPECT_GT(faulty.psi_score, 0.25);
  EXPECT_GT(faulty.psi_feature_max, 0.25);
}

TEST(DriftReference, ModelFileRoundTripAndOldFilesWithout) {
  const fs::path dir =
      fs::temp_directory_path() / ("vibgate_drift_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string p = (dir / "m.vgm").string();
  ASSERT_EQ(save_model(trained_model(), p), "");
  auto r = load_model(p);
  ASSERT_TRUE(r.model) << r.error;
  const auto& a = trained_model().drift;
  const auto& b = r.model->drift;
  EXPECT_EQ(b.rows, a.rows);
  EXPECT_EQ(b.score_rows, a.score_rows);
  EXPECT_EQ(b.score.edges, a.score.edges);
  EXPECT_EQ(b.score.proportions, a.score.proportions);
  ASSERT_EQ(b.features.size(), a.features.size());
  for (std::size_t i = 0; i < a.features.size(); ++i) {
    EXPECT_EQ(b.features[i].edges, a.features[i].edges);
    EXPECT_EQ(b.features[i].proportions, a.features[i].proportions);
  }
  // A model written without a reference (as before field 16 existed) loads and reports n/a.
  Model old = trained_model();
  old.drift = DriftReference{};
  ASSERT_EQ(save_model(old, p), "");
  r = load_model(p);
  ASSERT_TRUE(r.model) << r.error;
  EXPECT_TRUE(r.model->drift.empty());
  DriftMonitor none;  // what the daemon makes for it
  EXPECT_EQ(none.update().state, DriftState::no_reference);
  // A damaged reference is refused with a one-line reason naming the file.
  Model bad = trained_model();
  bad.drift.features[2].edges = {1.0f, 0.5f};
  bad.drift.features[2].proportions = {0.3f, 0.3f, 0.4f};
  ASSERT_EQ(save_model(bad, p), "");
  r = load_model(p);
  EXPECT_FALSE(r.model);
  EXPECT_NE(r.error.find("m.vgm: drift reference of input 2: edges are not finite and ascending"),
            std::string::npos)
      << r.error;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vibgate::analytics
