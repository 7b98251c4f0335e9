// detector_test.cpp — Windower against whole-array slicing, verdicts, ROC AUC / Pearson against
// hand-computed and brute-force values, and an end-to-end check: train on a healthy synthetic
// machine, then score healthy and outer-race-fault recordings.
#include "vibgate/analytics/detector.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "vibgate/analytics/metrics.hpp"
#include "vibgate/analytics/model.hpp"
#include "vibgate/analytics/synth.hpp"

namespace vibgate::analytics {
namespace {

struct Window {
  std::uint64_t start;
  std::vector<float> samples;
};

// Pushes x in blocks whose sizes come from next_block(), collecting every window.
std::vector<Window> stream(Windower& w, const std::vector<float>& x,
                           const std::function<std::size_t()>& next_block) {
  std::vector<Window> out;
  std::size_t pos = 0;
  while (pos < x.size()) {
    const std::size_t n = std::min(next_block(), x.size() - pos);
    w.push(std::span<const float>(x).subspan(pos, n), [&](std::span<const float> win, std::uint64_t start) {
      out.push_back({start, std::vector<float>(win.begin(), win.end())});
    });
    pos += n;
  }
  return out;
}

void expect_slicing(const std::vector<Window>& got, const std::vector<float>& x, std::size_t n,
                    std::size_t hop, std::uint64_t offset, const std::string& where) {
  const std::size_t expected = x.size() < n ? 0 : (x.size() - n) / hop + 1;
  ASSERT_EQ(got.size(), expected) << where;
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].start, offset + i * hop) << where << " window " << i;
    ASSERT_EQ(got[i].samples.size(), n) << where;
    ASSERT_TRUE(std::equal(got[i].samples.begin(), got[i].samples.end(), x.begin() + static_cast<std::ptrdiff_t>(i * hop)))
        << where << " window " << i << " content differs from x[" << i * hop << "…]";
  }
}

TEST(Windower, MatchesWholeArraySlicing) {
  const std::size_t n = 4096;
  std::vector<float> x(50000);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i);  // content = index
  for (double overlap : {0.0, 0.5, 0.75}) {
    FeatureConfig c;
    c.sample_rate_hz = 25600;
    c.overlap = overlap;
    const std::size_t hop = c.hop();
    ASSERT_EQ(hop, static_cast<std::size_t>(4096 * (1 - overlap)));
    for (std::size_t block : {std::size_t{1}, std::size_t{7}, std::size_t{4096}, std::size_t{10000}}) {
      Windower w(n, hop);
      const auto got = stream(w, x, [&] { return block; });
      expect_slicing(got, x, n, hop, 0, "overlap " + std::to_string(overlap) + " block " + std::to_string(block));
    }
    std::mt19937_64 rng(static_cast<std::uint64_t>(overlap * 100));
    for (int rep = 0; rep < 5; ++rep) {
      Windower w(n, hop);
      const auto got = stream(w, x, [&] { return 1 + static_cast<std::size_t>(rng() % 9000); });
      expect_slicing(got, x, n, hop, 0, "overlap " + std::to_string(overlap) + " random blocks");
    }
  }
}

TEST(Windower, OddHopsShortStreamsAndReset) {
  std::vector<float> x(3000);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 0.5f;
  for (std::size_t hop : {1u, 3u, 255u, 256u, 300u, 1000u}) {  // includes hop > window (skipping)
    Windower w(256, hop);
    std::mt19937_64 rng(hop);
    const auto got = stream(w, x, [&] { return 1 + static_cast<std::size_t>(rng() % 700); });
    expect_slicing(got, x, 256, hop, 0, "hop " + std::to_string(hop));
  }
  // Fewer samples than a window: nothing, then the window completes on a later push.
  Windower w(256, 128);
  std::vector<float> part(x.begin(), x.begin() + 200);
  EXPECT_TRUE(stream(w, part, [] { return 50; }).empty());
  std::vector<float> rest(x.begin() + 200, x.begin() + 400);
  const auto more = stream(w, rest, [] { return 1000; });
  ASSERT_EQ(more.size(), 2u);  // windows at 0 and 128 (ending at 256 and 384 ≤ 400)
  EXPECT_EQ(more[0].start, 0u);
  EXPECT_EQ(more[1].start, 128u);
  EXPECT_EQ(more[1].samples.front(), x[128]);
  // reset() restarts the stream index and drops buffered samples.
  w.reset();
  const auto after = stream(w, x, [] { return 333; });
  expect_slicing(after, x, 256, 128, 0, "after reset");
}

TEST(Verdict, Thresholds) {
  EXPECT_EQ(verdict_for(0.0, 0.8), Verdict::normal);
  EXPECT_EQ(verdict_for(0.7999, 0.8), Verdict::normal);
  EXPECT_EQ(verdict_for(0.8, 0.8), Verdict::warning);
  EXPECT_EQ(verdict_for(0.9999, 0.8), Verdict::warning);
  EXPECT_EQ(verdict_for(1.0, 0.8), Verdict::alarm);
  EXPECT_EQ(verdict_for(25.0, 0.8), Verdict::alarm);
  EXPECT_EQ(verdict_for(0.99, 1.0), Verdict::normal);  // warning level 1: no warning band
  EXPECT_EQ(verdict_for(1.0, 1.0), Verdict::alarm);
  EXPECT_EQ(verdict_for(0.5, 0.5), Verdict::warning);
  EXPECT_EQ(to_string(Verdict::alarm), "alarm");
}

// Brute-force AUC: P(fault > normal) + ½ P(equal) over all pairs.
double auc_pairs(const std::vector<double>& normal, const std::vector<double>& fault) {
  double s = 0;
  for (double f : fault)
    for (double n : normal) s += f > n ? 1.0 : (f == n ? 0.5 : 0.0);
  return s / static_cast<double>(normal.size() * fault.size());
}

TEST(Metrics, RocAuc) {
  const std::vector<double> lo = {0.1, 0.2, 0.3}, hi = {0.5, 0.6, 0.9, 1.5};
  EXPECT_DOUBLE_EQ(roc_auc(lo, hi), 1.0);
  EXPECT_DOUBLE_EQ(roc_auc(hi, lo), 0.0);
  const std::vector<double> same = {0.4, 0.4, 0.4};
  EXPECT_DOUBLE_EQ(roc_auc(same, std::vector<double>{0.4, 0.4}), 0.5);
  // normal {1,2,3}, fault {2,4}: fault 2 beats 1, ties 2, loses to 3 (1.5); fault 4 beats all (3).
  EXPECT_DOUBLE_EQ(roc_auc(std::vector<double>{1, 2, 3}, std::vector<double>{2, 4}), 4.5 / 6);
  // normal {1,1,2}, fault {1,3}: 1 vs {1,1,2} = 0.5+0.5+0 = 1; 3 beats all = 3 → 4/6.
  EXPECT_DOUBLE_EQ(roc_auc(std::vector<double>{1, 1, 2}, std::vector<double>{1, 3}), 4.0 / 6);
  EXPECT_TRUE(std::isnan(roc_auc(std::vector<double>{}, hi)));
  EXPECT_TRUE(std::isnan(roc_auc(lo, std::vector<double>{})));
  std::mt19937_64 rng(8);
  for (int rep = 0; rep < 20; ++rep) {
    std::vector<double> a(50 + rep), b(30 + 2 * rep);
    for (auto& v : a) v = static_cast<double>(rng() % 20);  // many ties
    for (auto& v : b) v = static_cast<double>(rng() % 25);
    EXPECT_NEAR(roc_auc(a, b), auc_pairs(a, b), 1e-12);
  }
}

TEST(Metrics, PearsonAndFraction) {
  const std::vector<double> x = {1, 2, 3, 4, 5};
  EXPECT_NEAR(pearson(x, std::vector<double>{2, 4, 6, 8, 10}), 1.0, 1e-12);
  EXPECT_NEAR(pearson(x, std::vector<double>{-1, -2, -3, -4, -5}), -1.0, 1e-12);
  // x̄ = 3, ȳ = 2: dx = (−2,−1,0,1,2), dy = (−1,1,0,−1,1): Σdxdy = 2, Σdx² = 10, Σdy² = 4 → 2/√40.
  EXPECT_NEAR(pearson(x, std::vector<double>{1, 3, 2, 1, 3}), 2 / std::sqrt(40.0), 1e-12);
  EXPECT_TRUE(std::isnan(pearson(x, std::vector<double>{7, 7, 7, 7, 7})));
  EXPECT_TRUE(std::isnan(pearson(std::vector<double>{1}, std::vector<double>{2})));
  EXPECT_DOUBLE_EQ(fraction_at_or_above(x, 3.0), 0.6);
  EXPECT_DOUBLE_EQ(fraction_at_or_above(std::vector<double>{}, 1.0), 0.0);
}

// ---------------------------------------------------------------------------------------------
// End to end on the synthetic machine.

FeatureConfig machine_config() {
  FeatureConfig c;
  c.sample_rate_hz = 25600;
  c.shaft_hz = 29.95;
  c.bearing = defect_multiples(BearingGeometry{9, 0.3126, 1.537, 0});
  return c;
}

std::vector<float> machine(std::uint64_t seed, double seconds, DefectKind defect, double peak_g = 0.5) {
  MachineModel m;
  m.seed = seed;
  m.defect = defect;
  m.fault_peak_g = peak_g;
  MachineSynth s(m);
  std::vector<float> x(static_cast<std::size_t>(seconds * m.sample_rate_hz));
  s.generate(x);
  return x;
}

const std::shared_ptr<const Model>& healthy_model() {
  static const std::shared_ptr<const Model> model = [] {
    const FeatureConfig c = machine_config();
    const auto x = machine(1, 30, DefectKind::none);
    FeatureExtractor ex(c);
    Features f;
    std::vector<std::vector<float>> rows;
    Windower w(c.window_length, c.hop());
    w.push(x, [&](std::span<const float> win, std::uint64_t) {
      ex.extract(win, f);
      std::vector<float> row(ex.model_input_size());
      ex.model_input(f, row);
      rows.push_back(std::move(row));
    });
    EXPECT_EQ(rows.size(), (x.size() - 4096) / 2048 + 1);  // 373 windows
    TrainOptions opt;
    opt.seed = 1;
    return std::make_shared<const Model>(build_model(c, rows, opt, ThresholdRule{}, TrainingSummary{}));
  }();
  return model;
}

struct Outcome {
  std::size_t windows = 0, alarms = 0, alarms_float = 0;
  std::vector<double> scores;
};

Outcome score_all(const std::vector<float>& x, Int8Kernel kernel = Int8Kernel::automatic) {
  Scorer scorer(healthy_model(), kernel);
  Windower w(scorer.model().features.window_length, scorer.model().features.hop());
  ScoredWindow sw;
  Outcome o;
  w.push(x, [&](std::span<const float> win, std::uint64_t) {
    scorer.score(win, sw, true);
    ++o.windows;
    o.alarms += sw.verdict == Verdict::alarm;
    o.alarms_float += sw.score_float >= 1.0;
    EXPECT_EQ(sw.verdict, verdict_for(sw.score, scorer.model().warning_level));
    o.scores.push_back(sw.score);
  });
  return o;
}

TEST(EndToEnd, HealthyQuietOuterRaceFaultAlarms) {
  const Outcome healthy = score_all(machine(2, 10, DefectKind::none));
  const Outcome fault = score_all(machine(3, 10, DefectKind::outer_race, 0.5));
  std::printf("healthy: %zu/%zu alarms (float %zu); outer race 0.5 g: %zu/%zu alarms (float %zu)\n",
              healthy.alarms, healthy.windows, healthy.alarms_float, fault.alarms, fault.windows,
              fault.alarms_float);
  ASSERT_EQ(healthy.windows, 124u);  // floor((256000 − 4096) / 2048) + 1
  ASSERT_EQ(fault.windows, 124u);
  EXPECT_LT(static_cast<double>(healthy.alarms), 0.01 * static_cast<double>(healthy.windows));
  EXPECT_GT(static_cast<double>(fault.alarms), 0.90 * static_cast<double>(fault.windows));
  EXPECT_LT(static_cast<double>(healthy.alarms_float), 0.01 * static_cast<double>(healthy.windows));
  EXPECT_GT(static_cast<double>(fault.alarms_float), 0.90 * static_cast<double>(fault.windows));
  EXPECT_GT(roc_auc(healthy.scores, fault.scores), 0.99);
}

TEST(EndToEnd, KernelsGiveIdenticalScores) {
  const auto x = machine(4, 3, DefectKind::outer_race, 0.2);
  const Outcome scalar = score_all(x, Int8Kernel::scalar);
  const Outcome automatic = score_all(x, Int8Kernel::automatic);
  EXPECT_EQ(scalar.scores, automatic.scores);
  if (!QuantizedNetwork::avx2_available()) GTEST_SKIP() << "no AVX2 on this CPU";
  EXPECT_EQ(score_all(x, Int8Kernel::avx2).scores, scalar.scores);
}

// Two channels interleaved window by window through one shared extractor (as the daemon's worker
// does for every channel with the same feature configuration) score exactly as with an
// extractor each; an extractor of another configuration is refused.
TEST(EndToEnd, SharedExtractorScoresAsOwnExtractor) {
  const auto x1 = machine(5, 3, DefectKind::none);
  const auto x2 = machine(6, 3, DefectKind::outer_race, 0.3);
  const auto fx = std::make_shared<FeatureExtractor>(healthy_model()->features);
  Scorer s1(healthy_model(), fx), s2(healthy_model(), fx);
  Scorer own1(healthy_model()), own2(healthy_model());
  const std::size_t n = healthy_model()->features.window_length, hop = healthy_model()->features.hop();
  ScoredWindow a, b, c, d;
  std::size_t windows = 0;
  for (std::size_t start = 0; start + n <= x1.size(); start += hop, ++windows) {
    s1.score(std::span<const float>(x1).subspan(start, n), a, true);
    s2.score(std::span<const float>(x2).subspan(start, n), b, true);
    own1.score(std::span<const float>(x1).subspan(start, n), c, true);
    own2.score(std::span<const float>(x2).subspan(start, n), d, true);
    ASSERT_EQ(a.score, c.score) << windows;
    ASSERT_EQ(b.score, d.score) << windows;
    ASSERT_EQ(a.score_float, c.score_float) << windows;
    ASSERT_EQ(a.input, c.input) << windows;
    ASSERT_EQ(b.input, d.input) << windows;
  }
  EXPECT_EQ(windows, 36u);
  FeatureConfig other = healthy_model()->features;
  other.window_length = 2048;
  EXPECT_THROW(Scorer(healthy_model(), std::make_shared<FeatureExtractor>(other)),
               std::invalid_argument);
}

}  // namespace
}  // namespace vibgate::analytics
