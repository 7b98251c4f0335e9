// prune_test.cpp — magnitude pruning with fine-tuning (TrainOptions::prune_fraction,
// docs/model.md "Pruning"): exactly the requested fraction of every layer's weights is zero in
// the float network and the int8 network holds zeros there; the summary records it and survives
// a save/load round trip; training stays deterministic for a seed; a pruned model still separates
// an outer-race fault from the healthy synthetic machine; bad fractions are refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "vibgate/analytics/detector.hpp"
#include "vibgate/analytics/features.hpp"
#include "vibgate/analytics/metrics.hpp"
#include "vibgate/analytics/model.hpp"
#include "vibgate/analytics/synth.hpp"

namespace vibgate::analytics {
namespace {

FeatureConfig machine_config() {
  FeatureConfig c;
  c.sample_rate_hz = 25600;
  c.shaft_hz = 29.95;
  c.bearing = defect_multiples(BearingGeometry{9, 0.3126, 1.537, 0});
  return c;
}

std::vector<float> machine(std::uint64_t seed, double seconds, DefectKind defect,
                           double peak_g = 0.5) {
  MachineModel m;
  m.seed = seed;
  m.defect = defect;
  m.fault_peak_g = peak_g;
  MachineSynth s(m);
  std::vector<float> x(static_cast<std::size_t>(seconds * m.sample_rate_hz));
  s.generate(x);
  return x;
}

// Model-input rows of every window (hop from the configuration).
std::vector<std::vector<float>> rows_of(const FeatureConfig& c, const std::vector<float>& x) {
  FeatureExtractor ex(c);
  Features f;
  std::vector<std::vector<float>> rows;
  for (std::size_t s = 0; s + c.window_length <= x.size(); s += c.hop()) {
    ex.extract(std::span<const float>(x).subspan(s, c.window_length), f);
    std::vector<float> row(ex.model_input_size());
    ex.model_input(f, row);
    rows.push_back(std::move(row));
  }
  return rows;
}

// 30 s of the healthy machine at hop 2048: 373 windows (as detector_test's healthy model).
const std::vector<std::vector<float>>& healthy_rows() {
  static const auto rows = rows_of(machine_config(), machine(1, 30, DefectKind::none));
  return rows;
}

TrainOptions options(double fraction, std::uint64_t seed = 1, std::size_t max_epochs = 300) {
  TrainOptions o;
  o.seed = seed;
  o.max_epochs = max_epochs;
  o.prune_fraction = fraction;
  return o;
}

Model build(const TrainOptions& o) {
  return build_model(machine_config(), healthy_rows(), o, ThresholdRule{}, TrainingSummary{});
}

std::size_t zeros(const std::vector<float>& w) {
  return static_cast<std::size_t>(std::count(w.begin(), w.end(), 0.f));
}

// Every layer: exactly round(fraction · in · out) float weights are 0, the int8 weight is 0 at
// each of them, and the summary's nonzero count matches.
void expect_pruned(const Model& m, double fraction) {
  const auto& fl = m.float_net.layers();
  const auto& ql = m.int8_net.layers();
  ASSERT_EQ(fl.size(), ql.size());
  std::size_t nonzero = 0, biases_nonzero = 0, biases = 0;
  for (std::size_t l = 0; l < fl.size(); ++l) {
    const DenseLayer& F = fl[l];
    const QuantLayer& Q = ql[l];
    const auto n = F.in * F.out;
    const auto expected = static_cast<std::size_t>(std::llround(fraction * static_cast<double>(n)));
    EXPECT_EQ(zeros(F.weights), expected)
        << "layer " << l << " (" << F.in << " -> " << F.out << ")";
    nonzero += n - zeros(F.weights);
    for (std::size_t j = 0; j < F.out; ++j)
      for (std::size_t i = 0; i < F.in; ++i)
        if (F.weights[j * F.in + i] == 0.f) {
          ASSERT_EQ(Q.weights[j * Q.in_padded + i], 0)
              << "layer " << l << " row " << j << " input " << i;
        }
    biases += F.bias.size();
    biases_nonzero += F.bias.size() - zeros(F.bias);
  }
  EXPECT_EQ(m.summary.nonzero_weights, nonzero);
  EXPECT_FLOAT_EQ(m.summary.prune_fraction, static_cast<float>(fraction));
  // Biases are not pruned: (almost) all of them stay nonzero.
  EXPECT_GT(biases_nonzero, biases * 9 / 10);
}

TEST(Pruning, ExactFractionOfEveryLayerIsZeroInFloatAndInt8) {
  for (double fraction : {0.5, 0.75, 0.9}) {
    SCOPED_TRACE("prune fraction " + std::to_string(fraction));
    const Model m = build(options(fraction, 3, 60));
    expect_pruned(m, fraction);
  }
  // An odd count rounds to the nearest: 0.3 of 38·32 = 1216 weights is 364.8 → 365.
  const Model m = build(options(0.3, 3, 20));
  EXPECT_EQ(zeros(m.float_net.layers()[0].weights), 365u);
  expect_pruned(m, 0.3);
}

TEST(Pruning, DenseTrainingIsUntouchedAndCounted) {
  const Model m = build(options(0.0, 3, 60));
  std::size_t total = 0;
  for (const auto& L : m.float_net.layers()) total += L.in * L.out;
  EXPECT_EQ(m.summary.prune_fraction, 0.f);
  EXPECT_EQ(m.summary.nonzero_weights, total);  // no weight of a trained dense net is exactly 0
  const auto t = train_autoencoder(healthy_rows(), options(0.0, 3, 60));
  EXPECT_EQ(t.stats.finetune_epochs, 0u);
  EXPECT_EQ(t.stats.pruned_weights, 0u);
}

TEST(Pruning, FineTuningRunsAfterTheDenseTrainingWithinItsBudget) {
  TrainOptions o = options(0.75, 4, 60);
  o.prune_finetune_epochs = 12;
  o.prune_steps = 3;
  const auto t = train_autoencoder(healthy_rows(), o);
  EXPECT_GT(t.stats.finetune_epochs, 0u);
  EXPECT_LE(t.stats.finetune_epochs, 12u);
  EXPECT_LE(t.stats.epochs, 60u + 12u);
  EXPECT_GT(t.stats.dense_validation_loss, 0.0);
  std::size_t weights = 0;
  for (const auto& L : t.network.layers()) weights += L.in * L.out;
  EXPECT_EQ(t.stats.pruned_weights,
            zeros(t.network.layers()[0].weights) + zeros(t.network.layers()[1].weights) +
                zeros(t.network.layers()[2].weights) + zeros(t.network.layers()[3].weights));
  EXPECT_GE(t.stats.pruned_weights, weights * 3 / 4 - 4);  // rounding per layer
  // One step and the default budget (the epoch limit again: 60).
  TrainOptions one = options(0.5, 4, 60);
  one.prune_steps = 1;
  const auto u = train_autoencoder(healthy_rows(), one);
  EXPECT_GT(u.stats.finetune_epochs, 0u);
  EXPECT_LE(u.stats.finetune_epochs, 60u);
  EXPECT_LE(u.stats.epochs, 120u);
}

TEST(Pruning, DeterministicForASeed) {
  const Model a = build(options(0.75, 7, 40));
  const Model b = build(options(0.75, 7, 40));
  const Model c = build(options(0.75, 8, 40));
  for (std::size_t l = 0; l < a.float_net.layers().size(); ++l) {
    EXPECT_EQ(a.float_net.layers()[l].weights, b.float_net.layers()[l].weights) << "layer " << l;
    EXPECT_EQ(a.float_net.layers()[l].bias, b.float_net.layers()[l].bias) << "layer " << l;
    EXPECT_EQ(a.int8_net.layers()[l].weights, b.int8_net.layers()[l].weights) << "layer " << l;
  }
  EXPECT_EQ(a.threshold_int8, b.threshold_int8);
  EXPECT_EQ(a.summary.epochs, b.summary.epochs);
  EXPECT_EQ(a.summary.validation_loss, b.summary.validation_loss);
  EXPECT_NE(a.float_net.layers()[0].weights, c.float_net.layers()[0].weights)
      << "seeds 7 and 8 gave the same model";
}

TEST(Pruning, SummarySurvivesTheModelFile) {
  const Model m = build(options(0.5, 3, 30));
  std::random_device rd;
  const auto p = std::filesystem::temp_directory_path() /
                 ("vibgate_prune_test_" + std::to_string(rd()) + ".vgm");
  ASSERT_EQ(save_model(m, p.string()), "");
  const auto r = load_model(p.string());
  std::filesystem::remove(p);
  ASSERT_TRUE(r.model.has_value()) << r.error;
  EXPECT_EQ(r.model->summary.prune_fraction, 0.5f);
  EXPECT_EQ(r.model->summary.nonzero_weights, m.summary.nonzero_weights);
  expect_pruned(*r.model, 0.5);
}

struct Outcome {
  std::size_t windows = 0, alarms = 0, alarms_float = 0;
  std::vector<double> scores;
};

Outcome score_all(const std::shared_ptr<const Model>& model, const std::vector<float>& x) {
  Scorer scorer(model);
  Windower w(model->features.window_length, model->features.hop());
  ScoredWindow sw;
  Outcome o;
  w.push(x, [&](std::span<const float> win, std::uint64_t) {
    scorer.score(win, sw, true);
    ++o.windows;
    o.alarms += sw.verdict == Verdict::alarm;
    o.alarms_float += sw.score_float >= 1.0;
    o.scores.push_back(sw.score);
  });
  return o;
}

// The detector_test end-to-end check with pruned models: trained on 30 s of the healthy machine
// (default training), healthy seed 2 stays quiet, an outer-race fault of 0.5 g alarms.
TEST(Pruning, PrunedModelStillSeparatesFaultyFromHealthy) {
  const auto healthy = machine(2, 10, DefectKind::none);
  const auto fault = machine(3, 10, DefectKind::outer_race, 0.5);
  for (double fraction : {0.5, 0.9}) {
    SCOPED_TRACE("prune fraction " + std::to_string(fraction));
    const auto model = std::make_shared<const Model>(build(options(fraction)));
    expect_pruned(*model, fraction);
    const Outcome h = score_all(model, healthy), f = score_all(model, fault);
    const double hmax = *std::max_element(h.scores.begin(), h.scores.end());
    const double fmin = *std::min_element(f.scores.begin(), f.scores.end());
    std::printf(
        "prune %.2f: healthy %zu/%zu alarms (max %.3f), outer race 0.5 g %zu/%zu alarms (min "
        "%.2f)\n",
        fraction, h.alarms, h.windows, hmax, f.alarms, f.windows, fmin);
    ASSERT_EQ(h.windows, 124u);
    EXPECT_LT(static_cast<double>(h.alarms), 0.01 * static_cast<double>(h.windows));
    EXPECT_LT(static_cast<double>(h.alarms_float), 0.01 * static_cast<double>(h.windows));
    EXPECT_GT(static_cast<double>(f.alarms), 0.90 * static_cast<double>(f.windows));
    EXPECT_GT(static_cast<double>(f.alarms_float), 0.90 * static_cast<double>(f.windows));
    EXPECT_GT(roc_auc(h.scores, f.scores), 0.99);
  }
}

TEST(Pruning, RefusesFractionsOutsideZeroToOne) {
  for (double bad : {-0.1, 1.0, 1.5, std::nan("")}) {
    try {
      train_autoencoder(healthy_rows(), options(bad, 1, 2));
      ADD_FAILURE() << "trained with prune fraction " << bad;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("prune fraction must be at least 0 and below 1"),
                std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace vibgate::analytics
