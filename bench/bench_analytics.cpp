// bench_analytics.cpp — speed of the analytics hot paths against the product targets
// (docs/performance.md; bench/run.sh turns the JSON output into the ratios).
//
// Signal: analytics::MachineSynth at 25.6 kHz with an outer-race defect (every feature is
// exercised), window 4096, hop 2048, shaft 29.95 Hz, bearing multiples 3.5848 / 5.4152 / 2.3567 /
// 0.39828. Model: analytics::build_model with default TrainOptions (hidden 32,8,32) on 200 healthy
// windows.
//
//   BM_fft_transforms_only      the FFTW work one window needs with this configuration:
//                               2 × RealFft(4096) + ComplexInverseFft(M) + RealFft(M), M = 2048
//                               (the decimated envelope, docs/features.md), nothing else
//   BM_features_and_int8_score  Scorer::score (features → model input → standardize → int8
//                               forward → score), cycling through 32 different windows
//   BM_int8_inference[_scalar]  QuantizedNetwork::forward only (automatic = AVX2 when available)
//   BM_float_inference          FloatNetwork::forward only
//   BM_{int8,float}_inference_pruned/prune_pct:P   the same on the model trained with P % of every
//                               layer's weights pruned (P = 0, 50, 90; docs/model.md "Pruning")
//   BM_train_1h_25k6/hop:H      feature extraction + build_model on 1 h of healthy 25.6 kHz data
//                               (hop 1024/2048/4096: 89 997/44 999/22 500 windows); opt-in
//                               (VIBGATE_BENCH_TRAIN=1), counters features_s / train_s (wall),
//                               features_cpu_s / train_cpu_s (thread CPU time), model_ok
//
// Breakdown (not targets, for the analysis in docs/performance.md):
//   BM_part_extract_only        FeatureExtractor::extract alone (no model)
//   BM_part_real_fft / BM_part_complex_inverse_fft   one transform each
//   BM_part_complex_abs_6k      6145 × std::abs(std::complex<float>) — what extract() spends on
//                               the envelope magnitude (4096) and envelope spectrum (2049)
//   BM_part_sqrt_magnitude_6k   the same magnitudes as sqrt(re² + im²) (scalar: errno semantics)
//   BM_part_sqrtps_magnitude_6k the same magnitudes with SSE sqrtps, 4 at a time
//
// All per-window benchmarks report microseconds per window (one window per iteration).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <map>
#include <memory>
#include <numbers>
#include <span>
#include <string>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "vibgate/analytics/detector.hpp"
#include "vibgate/analytics/features.hpp"
#include "vibgate/analytics/fft.hpp"
#include "vibgate/analytics/model.hpp"
#include "vibgate/analytics/synth.hpp"

namespace {

namespace an = vibgate::analytics;

constexpr double kFs = 25600.0;
constexpr std::size_t kN = 4096;
constexpr std::size_t kHop = 2048;
constexpr double kShaftHz = 29.95;
constexpr std::size_t kCycleWindows = 32;   // distinct windows the per-window benchmarks cycle over
constexpr std::size_t kTrainWindows = 200;  // healthy windows for the benchmark model

an::FeatureConfig bench_config() {
  an::FeatureConfig c;
  c.sample_rate_hz = kFs;
  c.window_length = kN;
  c.overlap = 0.5;
  c.shaft_hz = kShaftHz;
  c.bearing = an::DefectMultiples{3.5848, 5.4152, 2.3567, 0.39828};
  c.validate();
  return c;
}

an::MachineModel machine(an::DefectKind defect, std::uint64_t seed) {
  an::MachineModel m;
  m.sample_rate_hz = kFs;
  m.shaft_hz = kShaftHz;
  m.defect = defect;
  m.defect_multiple = 3.5848;  // BPFO
  m.seed = seed;
  return m;
}

// Samples for `windows` windows at hop kHop.
std::vector<float> synth_samples(an::DefectKind defect, std::size_t windows, std::uint64_t seed) {
  an::MachineSynth gen(machine(defect, seed));
  std::vector<float> x(kN + (windows - 1) * kHop);
  gen.generate(x);
  return x;
}

std::span<const float> window_at(const std::vector<float>& x, std::size_t i) {
  return std::span<const float>(x).subspan(i * kHop, kN);
}

// The defect signal the per-window benchmarks cycle through.
const std::vector<float>& defect_signal() {
  static const std::vector<float> x = synth_samples(an::DefectKind::outer_race, kCycleWindows, 11);
  return x;
}

// The model every scoring/inference benchmark uses, trained once per process.
std::shared_ptr<const an::Model> bench_model() {
  static const std::shared_ptr<const an::Model> model = [] {
    const an::FeatureConfig cfg = bench_config();
    const std::vector<float> x = synth_samples(an::DefectKind::none, kTrainWindows, 3);
    an::FeatureExtractor ex(cfg);
    an::Features f;
    std::vector<std::vector<float>> rows;
    for (std::size_t i = 0; i < kTrainWindows; ++i) {
      ex.extract(window_at(x, i), f);
      std::vector<float> row(ex.model_input_size());
      ex.model_input(f, row);
      rows.push_back(std::move(row));
    }
    an::TrainingSummary summary;
    summary.source = "bench synth healthy";
    return std::make_shared<const an::Model>(
        an::build_model(cfg, rows, an::TrainOptions{}, an::ThresholdRule{}, summary));
  }();
  return model;
}

// Standardized model inputs (z) of the defect windows, as the scorer feeds the network.
const std::vector<std::vector<float>>& standardized_inputs() {
  static const std::vector<std::vector<float>> zs = [] {
    const auto model = bench_model();
    an::FeatureExtractor ex(model->features);
    an::Features f;
    std::vector<std::vector<float>> out;
    const auto& x = defect_signal();
    for (std::size_t i = 0; i < kCycleWindows; ++i) {
      ex.extract(window_at(x, i), f);
      std::vector<float> raw(ex.model_input_size()), z(ex.model_input_size());
      ex.model_input(f, raw);
      model->normalizer.apply(raw, z);
      out.push_back(std::move(z));
    }
    return out;
  }();
  return zs;
}

// ---------------------------------------------------------------- 1. FFT baseline

// The buffers of the four transforms hold what extract() puts there for a defect window: the
// mean-removed Hann-windowed window, the mean-removed raw window, the band-limited analytic
// spectrum and the windowed envelope. FFTW's out-of-place r2c and c2c plans preserve their input
// (FFTW_PRESERVE_INPUT is the default for them), so the data stay realistic across iterations.
void BM_fft_transforms_only(benchmark::State& state) {
  const an::FeatureConfig cfg = bench_config();
  const double df = kFs / kN;
  const auto lo = static_cast<std::size_t>(std::ceil(cfg.resolved_envelope_lo_hz() / df - 1e-9));
  const auto hi = static_cast<std::size_t>(std::floor(cfg.resolved_envelope_hi_hz() / df + 1e-9));
  std::size_t m = 64;  // the decimated envelope length features.cpp uses
  while (m < 2 * (hi - lo + 1) && m < kN) m *= 2;
  an::RealFft windowed(kN), raw(kN), envelope(m);
  an::ComplexInverseFft analytic(m);
  const std::span<const float> x = window_at(defect_signal(), 0);
  double mean = 0;
  for (float v : x) mean += v;
  mean /= static_cast<double>(kN);
  std::vector<float> hann(kN);
  for (std::size_t i = 0; i < kN; ++i)
    hann[i] = static_cast<float>(
        0.5 - 0.5 * std::cos(2 * std::numbers::pi * static_cast<double>(i) / kN));
  for (std::size_t i = 0; i < kN; ++i) {
    const auto c = static_cast<float>(x[i] - mean);
    raw.input()[i] = c;
    windowed.input()[i] = c * hann[i];
  }
  raw.execute();
  for (std::size_t k = lo; k <= hi; ++k) analytic.input()[k - lo] = 2.0f * raw.output()[k];
  analytic.execute();
  double esum = 0;
  for (std::size_t i = 0; i < m; ++i) {
    envelope.input()[i] = std::abs(analytic.output()[i]) / static_cast<float>(kN);
    esum += envelope.input()[i];
  }
  const auto emean = static_cast<float>(esum / static_cast<double>(m));
  for (std::size_t i = 0; i < m; ++i)
    envelope.input()[i] = (envelope.input()[i] - emean) *
        static_cast<float>(0.5 - 0.5 * std::cos(2 * std::numbers::pi * static_cast<double>(i) / static_cast<double>(m)));

  for (auto _ : state) {
    windowed.execute();
    raw.execute();
    analytic.execute();
    envelope.execute();
    benchmark::DoNotOptimize(windowed.output());
    benchmark::DoNotOptimize(raw.output());
    benchmark::DoNotOptimize(analytic.output());
    benchmark::DoNotOptimize(envelope.output());
    benchmark::ClobberMemory();
  }
  state.counters["transforms_per_window"] = 4;
}
BENCHMARK(BM_fft_transforms_only)->Unit(benchmark::kMicrosecond);

// ---------------------------------------------------------------- 2. features + int8 score

void BM_features_and_int8_score(benchmark::State& state) {
  an::Scorer scorer(bench_model(), an::Int8Kernel::automatic);
  const auto& x = defect_signal();
  an::ScoredWindow out;
  scorer.score(window_at(x, 0), out);  // first call sizes the output vectors
  std::size_t i = 0;
  for (auto _ : state) {
    scorer.score(window_at(x, i), out);  // int8 path only (with_float = false)
    benchmark::DoNotOptimize(out.score);
    benchmark::ClobberMemory();
    i = (i + 1) % kCycleWindows;
  }
  state.counters["windows_cycled"] = static_cast<double>(kCycleWindows);
}
BENCHMARK(BM_features_and_int8_score)->Unit(benchmark::kMicrosecond);

// ---------------------------------------------------------------- 3. inference only

void int8_inference(benchmark::State& state, an::Int8Kernel kernel) {
  const auto model = bench_model();
  const auto& zs = standardized_inputs();
  const an::QuantizedNetwork& net = model->int8_net;
  std::vector<float> y(net.output_size());
  std::vector<std::int8_t> scratch(net.scratch_size());
  std::size_t i = 0;
  for (auto _ : state) {
    net.forward(zs[i], y, scratch, kernel);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    i = (i + 1) % zs.size();
  }
  state.counters["avx2"] = an::QuantizedNetwork::avx2_available() ? 1 : 0;
}

void BM_int8_inference(benchmark::State& state) {
  int8_inference(state, an::Int8Kernel::automatic);
}
BENCHMARK(BM_int8_inference)->Unit(benchmark::kMicrosecond);

void BM_int8_inference_scalar(benchmark::State& state) {
  int8_inference(state, an::Int8Kernel::scalar);
}
BENCHMARK(BM_int8_inference_scalar)->Unit(benchmark::kMicrosecond);

void BM_float_inference(benchmark::State& state) {
  const auto model = bench_model();
  const auto& zs = standardized_inputs();
  const an::FloatNetwork& net = model->float_net;
  std::vector<float> y(net.output_size());
  std::vector<float> scratch(2 * net.max_width());
  std::size_t i = 0;
  for (auto _ : state) {
    net.forward(zs[i], y, scratch);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    i = (i + 1) % zs.size();
  }
}
BENCHMARK(BM_float_inference)->Unit(benchmark::kMicrosecond);

// ---------------------------------------------------------------- 3b. pruned models

// The benchmark model's training (same 200 healthy windows, default options, seed 1) with
// magnitude pruning of `percent` % of every layer's weights (docs/model.md, "Pruning"); 0 is the
// dense model trained again, for a paired comparison. Same split, so the same standardization as
// bench_model(), and standardized_inputs() apply.
std::shared_ptr<const an::Model> pruned_model(int percent) {
  static std::map<int, std::shared_ptr<const an::Model>> models;
  auto& m = models[percent];
  if (!m) {
    const an::FeatureConfig cfg = bench_config();
    const std::vector<float> x = synth_samples(an::DefectKind::none, kTrainWindows, 3);
    an::FeatureExtractor ex(cfg);
    an::Features f;
    std::vector<std::vector<float>> rows;
    for (std::size_t i = 0; i < kTrainWindows; ++i) {
      ex.extract(window_at(x, i), f);
      std::vector<float> row(ex.model_input_size());
      ex.model_input(f, row);
      rows.push_back(std::move(row));
    }
    an::TrainOptions opt;
    opt.prune_fraction = percent / 100.0;
    an::TrainingSummary summary;
    summary.source = "bench synth healthy";
    m = std::make_shared<const an::Model>(
        an::build_model(cfg, rows, opt, an::ThresholdRule{}, summary));
  }
  return m;
}

// int8 / float inference of a pruned model: the dense kernels multiply the zeros like any other
// weight, so the time should not change with the prune fraction (counter nonzero_weights).
void BM_int8_inference_pruned(benchmark::State& state) {
  const auto model = pruned_model(static_cast<int>(state.range(0)));
  const auto& zs = standardized_inputs();
  const an::QuantizedNetwork& net = model->int8_net;
  std::vector<float> y(net.output_size());
  std::vector<std::int8_t> scratch(net.scratch_size());
  std::size_t i = 0;
  for (auto _ : state) {
    net.forward(zs[i], y, scratch);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    i = (i + 1) % zs.size();
  }
  state.counters["nonzero_weights"] = model->summary.nonzero_weights;
}
BENCHMARK(BM_int8_inference_pruned)
    ->ArgName("prune_pct")
    ->Arg(0)
    ->Arg(50)
    ->Arg(90)
    ->Unit(benchmark::kMicrosecond);

void BM_float_inference_pruned(benchmark::State& state) {
  const auto model = pruned_model(static_cast<int>(state.range(0)));
  const auto& zs = standardized_inputs();
  const an::FloatNetwork& net = model->float_net;
  std::vector<float> y(net.output_size());
  std::vector<float> scratch(2 * net.max_width());
  std::size_t i = 0;
  for (auto _ : state) {
    net.forward(zs[i], y, scratch);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    i = (i + 1) % zs.size();
  }
  state.counters["nonzero_weights"] = model->summary.nonzero_weights;
}
BENCHMARK(BM_float_inference_pruned)
    ->ArgName("prune_pct")
    ->Arg(0)
    ->Arg(50)
    ->Arg(90)
    ->Unit(benchmark::kMicrosecond);

// ---------------------------------------------------------------- 4. training on 1 h of data

// Feature extraction + build_model on one hour of healthy 25.6 kHz synth data, windows of 4096
// at hop `range(0)`: 2048 = 50 % overlap, floor((L − N)/hop) + 1 = 44 999 windows (the stated
// requirement); 4096 = no overlap, 22 500 windows; 1024 = 75 % overlap, 89 997 windows (what
// `vibgate train` uses by default, --train-overlap 0.75). The synthetic signal is generated in
// hop-sized blocks outside the measured time (manual timing): only FeatureExtractor::extract +
// model_input and build_model count.
void BM_train_1h(benchmark::State& state) {
  const char* gate = std::getenv("VIBGATE_BENCH_TRAIN");
  if (gate == nullptr || std::string(gate) != "1") {
    state.SkipWithError("set VIBGATE_BENCH_TRAIN=1");
    return;
  }
  const auto hop = static_cast<std::size_t>(state.range(0));
  an::FeatureConfig cfg = bench_config();
  cfg.overlap = 1.0 - static_cast<double>(hop) / static_cast<double>(kN);
  cfg.validate();
  const auto total = static_cast<std::size_t>(3600.0 * kFs);
  const std::size_t windows = (total - kN) / hop + 1;
  using clock = std::chrono::steady_clock;
  const auto secs = [](clock::time_point a, clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  };
  // CPU time of this thread: on a shared machine wall time also counts time spent preempted.
  const auto cpu_now = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  };
  for (auto _ : state) {
    an::MachineSynth gen(machine(an::DefectKind::none, 5));
    an::FeatureExtractor ex(cfg);
    an::Features f;
    std::vector<float> buf(kN);
    gen.generate(buf);
    std::vector<std::vector<float>> rows;
    rows.reserve(windows);
    double extract_s = 0, extract_cpu_s = 0;
    for (std::size_t w = 0; w < windows; ++w) {
      if (w > 0) {  // slide by hop: keep the last kN − hop samples, generate hop new ones
        std::copy(buf.begin() + static_cast<std::ptrdiff_t>(hop), buf.end(), buf.begin());
        gen.generate(std::span<float>(buf).subspan(kN - hop));
      }
      const auto t0 = clock::now();
      const double c0 = cpu_now();
      ex.extract(buf, f);
      std::vector<float> row(ex.model_input_size());
      ex.model_input(f, row);
      rows.push_back(std::move(row));
      extract_cpu_s += cpu_now() - c0;
      extract_s += secs(t0, clock::now());
    }
    an::TrainingSummary summary;
    summary.source = "bench synth healthy 1 h";
    summary.samples = total;
    const auto t1 = clock::now();
    const double c1 = cpu_now();
    // build_model can throw after training finished (e.g. when quantize() rejects the network);
    // the time up to the exception is still reported, with model_ok = 0 and the message as label.
    bool ok = true;
    std::string error;
    an::Model m;
    try {
      m = an::build_model(cfg, rows, an::TrainOptions{}, an::ThresholdRule{}, summary);
    } catch (const std::exception& e) {
      ok = false;
      error = e.what();
    }
    const double train_s = secs(t1, clock::now());
    const double train_cpu_s = cpu_now() - c1;
    benchmark::DoNotOptimize(m.threshold_int8);
    state.SetIterationTime(extract_s + train_s);
    state.counters["features_s"] = extract_s;
    state.counters["train_s"] = train_s;
    state.counters["features_cpu_s"] = extract_cpu_s;
    state.counters["train_cpu_s"] = train_cpu_s;
    state.counters["windows"] = static_cast<double>(rows.size());
    state.counters["model_ok"] = ok ? 1 : 0;
    state.counters["epochs"] = m.summary.epochs;
    state.counters["best_epoch"] = m.summary.best_epoch;
    state.counters["features_us_per_window"] = extract_s * 1e6 / static_cast<double>(rows.size());
    if (!ok) state.SetLabel("build_model threw: " + error);
  }
}
BENCHMARK(BM_train_1h)
    ->Name("BM_train_1h_25k6")
    ->Arg(1024)
    ->Arg(2048)
    ->Arg(4096)
    ->ArgName("hop")
    ->Iterations(1)
    ->Repetitions(1)  // never repeated by --benchmark_repetitions: one run takes a minute
    ->UseManualTime()
    ->Unit(benchmark::kSecond);

// ---------------------------------------------------------------- breakdown

void BM_part_extract_only(benchmark::State& state) {
  an::FeatureExtractor ex(bench_config());
  const auto& x = defect_signal();
  an::Features f;
  ex.extract(window_at(x, 0), f);
  std::size_t i = 0;
  for (auto _ : state) {
    ex.extract(window_at(x, i), f);
    benchmark::DoNotOptimize(f.rms);
    benchmark::ClobberMemory();
    i = (i + 1) % kCycleWindows;
  }
}
BENCHMARK(BM_part_extract_only)->Unit(benchmark::kMicrosecond);

void BM_part_real_fft(benchmark::State& state) {
  an::RealFft fft(kN);
  const auto x = window_at(defect_signal(), 0);
  std::copy(x.begin(), x.end(), fft.input());
  for (auto _ : state) {
    fft.execute();
    benchmark::DoNotOptimize(fft.output());
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_part_real_fft)->Unit(benchmark::kMicrosecond);

void BM_part_complex_inverse_fft(benchmark::State& state) {
  an::ComplexInverseFft fft(kN);
  const auto x = window_at(defect_signal(), 0);
  for (std::size_t i = 0; i < kN; ++i) fft.input()[i] = {x[i], 0.5f * x[(i + 7) % kN]};
  for (auto _ : state) {
    fft.execute();
    benchmark::DoNotOptimize(fft.output());
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_part_complex_inverse_fft)->Unit(benchmark::kMicrosecond);

// The complex magnitudes extract() takes per window with a bearing: |z[n]| for n < N and |E[k]|
// for k ≤ N/2 — written like features.cpp (std::abs → hypotf) and as sqrt(re² + im²).
std::vector<std::complex<float>> magnitude_input() {
  const auto x = window_at(defect_signal(), 0);
  std::vector<std::complex<float>> z(kN + kN / 2 + 1);
  for (std::size_t i = 0; i < z.size(); ++i) z[i] = {x[i % kN], x[(i + 13) % kN]};
  return z;
}

void BM_part_complex_abs_6k(benchmark::State& state) {
  const auto z = magnitude_input();
  std::vector<float> m(z.size());
  for (auto _ : state) {
    for (std::size_t i = 0; i < z.size(); ++i) m[i] = std::abs(z[i]);
    benchmark::DoNotOptimize(m.data());
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_part_complex_abs_6k)->Unit(benchmark::kMicrosecond);

void BM_part_sqrt_magnitude_6k(benchmark::State& state) {
  const auto z = magnitude_input();
  std::vector<float> m(z.size());
  for (auto _ : state) {
    for (std::size_t i = 0; i < z.size(); ++i)
      m[i] = std::sqrt(z[i].real() * z[i].real() + z[i].imag() * z[i].imag());
    benchmark::DoNotOptimize(m.data());
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_part_sqrt_magnitude_6k)->Unit(benchmark::kMicrosecond);

#if defined(__SSE2__)
// The same magnitudes 4 at a time with SSE sqrtps (baseline x86-64, no -ffast-math needed): what
// the loops in features.cpp could cost if vectorized.
void BM_part_sqrtps_magnitude_6k(benchmark::State& state) {
  const auto z = magnitude_input();
  std::vector<float> m(z.size());
  const std::size_t n4 = z.size() / 4 * 4;
  for (auto _ : state) {
    const float* p = reinterpret_cast<const float*>(z.data());
    for (std::size_t i = 0; i < n4; i += 4) {
      const __m128 a = _mm_loadu_ps(p + 2 * i);      // re0 im0 re1 im1
      const __m128 b = _mm_loadu_ps(p + 2 * i + 4);  // re2 im2 re3 im3
      const __m128 re = _mm_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
      const __m128 im = _mm_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
      _mm_storeu_ps(&m[i], _mm_sqrt_ps(_mm_add_ps(_mm_mul_ps(re, re), _mm_mul_ps(im, im))));
    }
    for (std::size_t i = n4; i < z.size(); ++i)
      m[i] = std::sqrt(z[i].real() * z[i].real() + z[i].imag() * z[i].imag());
    benchmark::DoNotOptimize(m.data());
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_part_sqrtps_magnitude_6k)->Unit(benchmark::kMicrosecond);
#endif

}  // namespace

BENCHMARK_MAIN();
