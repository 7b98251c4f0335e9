// drift_cost.cpp — what drift monitoring adds per scored window (docs/performance.md, "Drift
// monitoring"): Scorer::score (features + int8) against standardization + DriftMonitor::add per
// window and DriftMonitor::update (the PSI of every quantity) every 16 windows, as the daemon's
// analytics worker does. A driver, not Google Benchmark: best of 7 repetitions, one core.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <span>
#include <vector>

#include "vibgate/analytics/detector.hpp"
#include "vibgate/analytics/drift.hpp"
#include "vibgate/analytics/model.hpp"
#include "vibgate/analytics/synth.hpp"

using namespace vibgate::analytics;

int main() {
  FeatureConfig c;  // the default model input with shaft and bearing: 38 inputs
  c.sample_rate_hz = 25600;
  c.shaft_hz = 29.95;
  c.bearing = defect_multiples(BearingGeometry{9, 0.3126, 1.537, 0});
  MachineModel mm;
  mm.seed = 3;
  MachineSynth synth(mm);
  std::vector<float> x(25600 * 30);
  synth.generate(x);
  FeatureExtractor ex(c);
  Features f;
  std::vector<std::vector<float>> rows;
  for (std::size_t i = 0; i + c.window_length <= x.size(); i += c.hop()) {
    ex.extract(std::span<const float>(x).subspan(i, c.window_length), f);
    std::vector<float> r(ex.model_input_size());
    ex.model_input(f, r);
    rows.push_back(std::move(r));
  }
  TrainOptions o;
  o.max_epochs = 40;
  auto m = std::make_shared<const Model>(build_model(c, rows, o, ThresholdRule{}, {}));
  Scorer scorer(m);
  ScoredWindow w;
  DriftMonitor mon(m->drift);
  std::vector<float> z(m->input_names.size());
  const std::size_t windows = (x.size() - c.window_length) / c.hop();
  const std::size_t adds = 20 * windows, updates = 2000;
  using clk = std::chrono::steady_clock;
  auto us = [](clk::duration d, std::size_t n) {
    return std::chrono::duration<double, std::micro>(d).count() / static_cast<double>(n);
  };
  double score_us = 1e9, add_us = 1e9, update_us = 1e9, sink = 0;
  for (int rep = 0; rep < 7; ++rep) {
    const auto t0 = clk::now();
    for (std::size_t i = 0; i < windows; ++i) {
      scorer.score(std::span<const float>(x).subspan(i * c.hop(), c.window_length), w);
      sink += w.score;
    }
    const auto t1 = clk::now();
    for (std::size_t i = 0; i < adds; ++i) {
      m->normalizer.apply(rows[i % rows.size()], z);
      mon.add(0.3 + 1e-4 * static_cast<double>(i % 100), z);
    }
    const auto t2 = clk::now();
    for (std::size_t i = 0; i < updates; ++i) sink += mon.update().psi_score;
    const auto t3 = clk::now();
    score_us = std::min(score_us, us(t1 - t0, windows));
    add_us = std::min(add_us, us(t2 - t1, adds));
    update_us = std::min(update_us, us(t3 - t2, updates));
  }
  const double drift_us = add_us + update_us / 16;
  std::printf("inputs %zu, reference rows %llu\n", m->input_names.size(),
              static_cast<unsigned long long>(m->drift.rows));
  std::printf("features + int8 score      %8.3f us/window\n", score_us);
  std::printf("standardize + add          %8.3f us/window\n", add_us);
  std::printf("update (PSI, %zu quantities) %8.3f us, every 16 windows\n",
              m->input_names.size() + 1, update_us);
  std::printf("drift per window           %8.3f us = %.2f %% of scoring (%g)\n", drift_us,
              100 * drift_us / score_us, sink > 0 ? 1.0 : 0.0);
  return 0;
}
