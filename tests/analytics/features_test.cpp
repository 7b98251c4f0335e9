// features_test.cpp — FeatureExtractor against closed-form values (docs/features.md), ISO zones,
// DC immunity, shaft harmonics, bearing envelope, FeatureConfig validation and hash, defect
// multiples from geometry, and FFT plan reuse.
#include "vibgate/analytics/features.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "vibgate/analytics/feature_config.hpp"
#include "vibgate/analytics/fft.hpp"
#include "vibgate/analytics/synth.hpp"

namespace vibgate::analytics {
namespace {

constexpr double kPi = 3.14159265358979323846;

FeatureConfig config(double fs = 25600, std::size_t n = 4096) {
  FeatureConfig c;
  c.sample_rate_hz = fs;
  c.window_length = n;
  return c;
}

std::vector<float> sine(std::size_t n, double fs, double f, double amp, double phase = 0, double dc = 0) {
  std::vector<float> x(n);
  for (std::size_t i = 0; i < n; ++i)
    x[i] = static_cast<float>(dc + amp * std::sin(2 * kPi * f * static_cast<double>(i) / fs + phase));
  return x;
}

Features extract(const FeatureConfig& c, const std::vector<float>& x) {
  FeatureExtractor ex(c);
  Features f;
  ex.extract(x, f);
  return f;
}

// Velocity RMS (mm/s) of an acceleration sine of amplitude a (input units) at f Hz.
double sine_velocity_mm_s(double a, double f, AccelUnits u) {
  const double c = u == AccelUnits::g ? kStandardGravity : 1.0;
  return 1000.0 * a * c / (2 * kPi * f) / std::sqrt(2.0);
}

TEST(FeaturesClosedForm, SineOnABin) {
  const FeatureConfig c = config();  // df = 6.25 Hz
  const double df = c.sample_rate_hz / static_cast<double>(c.window_length);
  const std::size_t k = 64;          // 400 Hz: 64 whole periods of 64 samples
  const double f0 = static_cast<double>(k) * df, amp = 0.7;
  const Features f = extract(c, sine(c.window_length, c.sample_rate_hz, f0, amp));
  EXPECT_NEAR(f.rms, amp / std::sqrt(2.0), 1e-6);
  EXPECT_NEAR(f.peak, amp, 1e-6);  // sample 16 of each period hits the crest
  EXPECT_NEAR(f.peak_to_peak, 2 * amp, 2e-6);
  EXPECT_NEAR(f.crest_factor, std::sqrt(2.0), 1e-5);
  EXPECT_NEAR(f.kurtosis, 1.5, 1e-5);
  EXPECT_NEAR(f.skewness, 0.0, 1e-5);
  EXPECT_DOUBLE_EQ(f.dominant_hz, f0);
  EXPECT_NEAR(f.dominant_amplitude, amp, 1e-5 * amp);  // Hann amplitude correction is exact on a bin
  EXPECT_NEAR(f.spectral_centroid_hz, f0, 1e-3);          // bins k±1 leak symmetrically
  const double v = sine_velocity_mm_s(amp, f0, AccelUnits::g);
  EXPECT_NEAR(f.velocity_rms_mm_s, v, 0.005 * v);
  // Band energy: the band holding 400 Hz carries A²/2 (energy-correct scaling).
  const auto edges = c.resolved_band_edges();
  std::size_t band = 0;
  while (!(edges[band] <= f0 && f0 < edges[band + 1])) ++band;
  ASSERT_LT(band, f.band_log_energy.size());
  EXPECT_NEAR(f.band_log_energy[band], std::log10(amp * amp / 2), 2e-3);  // ±0.5 %
  // The spectrum itself: A at bin k, A/2 at k±1 (Hann), ~0 elsewhere.
  FeatureExtractor ex(c);
  Features g;
  ex.extract(sine(c.window_length, c.sample_rate_hz, f0, amp), g);
  const auto a = ex.amplitude_spectrum();
  ASSERT_EQ(a.size(), c.window_length / 2 + 1);
  EXPECT_NEAR(a[k], amp, 1e-5);
  EXPECT_NEAR(a[k - 1], amp / 2, 1e-5);
  EXPECT_NEAR(a[k + 1], amp / 2, 1e-5);
  EXPECT_LT(a[k + 5], 1e-5);
  EXPECT_LT(a[10], 1e-5);
}

TEST(FeaturesClosedForm, VelocityRmsFormulaAcrossFrequenciesAndUnits) {
  for (AccelUnits u : {AccelUnits::g, AccelUnits::m_per_s2}) {
    for (double fs : {25600.0, 51200.0, 12000.0}) {
      FeatureConfig c = config(fs, 8192);
      c.units = u;
      const double df = fs / 8192;
      for (std::size_t k : {std::size_t{8}, std::size_t{16}, std::size_t{40}, std::size_t{150}}) {
        const double f0 = static_cast<double>(k) * df;
        if (f0 - df < c.velocity_lo_hz || f0 + df > c.velocity_hi_hz) continue;  // leakage bins inside
        const double amp = u == AccelUnits::g ? 0.2 : 2.0;
        const Features f = extract(c, sine(c.window_length, fs, f0, amp, 0.3));
        const double v = sine_velocity_mm_s(amp, f0, u);
        // The documented formula weights the Hann leakage bins k±1 (|Xw| = A·N/8 each, A·N/4 at k)
        // at their own frequency: v_doc = v·sqrt((1/16 + (w₋ + w₊)/64) / (3/32)), w± = (k/(k±1))².
        const double kd = static_cast<double>(k);
        const double wm = (kd / (kd - 1)) * (kd / (kd - 1)), wp = (kd / (kd + 1)) * (kd / (kd + 1));
        const double v_doc = v * std::sqrt((1.0 / 16 + (wm + wp) / 64) / (3.0 / 32));
        const std::string where = "fs " + std::to_string(fs) + " f " + std::to_string(f0) + " units " +
                                  std::string(to_string(u));
        EXPECT_NEAR(f.velocity_rms_mm_s, v_doc, 1e-4 * v_doc) << where;
        // Physically: within 0.5 % of the sine's true velocity RMS once the sine is 16+ bins up
        // (the leakage weighting error is ≈ 1/(2k²)).
        if (k >= 16) {
          EXPECT_NEAR(f.velocity_rms_mm_s, v, 0.005 * v) << where;
        }
      }
    }
  }
  // Outside the 10…1000 Hz band a sine contributes nothing.
  const FeatureConfig c = config();
  const Features f = extract(c, sine(c.window_length, c.sample_rate_hz, 3000, 1.0));
  EXPECT_LT(f.velocity_rms_mm_s, 1e-3);
}

TEST(FeaturesClosedForm, IsoZoneBoundariesForEveryGroupAndMounting) {
  struct Row {
    IsoGroup g;
    IsoMounting m;
    double ab, bc, cd;
  };
  const Row rows[] = {{IsoGroup::group1, IsoMounting::rigid, 2.3, 4.5, 7.1},
                      {IsoGroup::group1, IsoMounting::flexible, 3.5, 7.1, 11.0},
                      {IsoGroup::group2, IsoMounting::rigid, 1.4, 2.8, 4.5},
                      {IsoGroup::group2, IsoMounting::flexible, 2.3, 4.5, 7.1}};
  const double f0 = 100.0;  // bin 16 at df 6.25
  for (const auto& r : rows) {
    FeatureConfig c = config();
    c.iso_group = r.g;
    c.iso_mounting = r.m;
    FeatureExtractor ex(c);
    Features f;
    ex.extract(sine(c.window_length, c.sample_rate_hz, f0, 1.0), f);
    const double v1 = f.velocity_rms_mm_s;  // velocity is linear in amplitude
    auto zone_at = [&](double v) {
      ex.extract(sine(c.window_length, c.sample_rate_hz, f0, v / v1), f);
      EXPECT_NEAR(f.velocity_rms_mm_s, v, 1e-4 * v);
      return f.iso_zone;
    };
    const std::string where = "group " + std::to_string(static_cast<int>(r.g)) + " mounting " +
                              std::to_string(static_cast<int>(r.m));
    EXPECT_EQ(zone_at(0.05), IsoZone::A) << where;
    EXPECT_EQ(zone_at(r.ab * 0.99), IsoZone::A) << where;
    EXPECT_EQ(zone_at(r.ab * 1.01), IsoZone::B) << where;
    EXPECT_EQ(zone_at(r.bc * 0.99), IsoZone::B) << where;
    EXPECT_EQ(zone_at(r.bc * 1.01), IsoZone::C) << where;
    EXPECT_EQ(zone_at(r.cd * 0.99), IsoZone::C) << where;
    EXPECT_EQ(zone_at(r.cd * 1.01), IsoZone::D) << where;
    EXPECT_EQ(zone_at(50.0), IsoZone::D) << where;
  }
  EXPECT_EQ(to_char(IsoZone::A), 'A');
  EXPECT_EQ(to_char(IsoZone::D), 'D');
}

TEST(FeaturesClosedForm, DcOffsetChangesNeitherVelocityNorSpectrum) {
  // df = 12.5 Hz: bin 1 lies inside the 10…1000 Hz velocity band, where un-removed DC would leak
  // through the Hann window and dominate (weighted by 1/f²).
  const FeatureConfig c = config(51200, 4096);
  std::mt19937_64 rng(3);
  std::normal_distribution<double> g(0, 0.05);
  std::vector<float> x = sine(c.window_length, c.sample_rate_hz, 250.0, 0.3);
  for (auto& v : x) v += static_cast<float>(g(rng));
  std::vector<float> y = x;
  for (auto& v : y) v += 2.0f;
  FeatureExtractor ex(c);
  Features fx, fy;
  ex.extract(x, fx);
  const std::vector<float> ax(ex.amplitude_spectrum().begin(), ex.amplitude_spectrum().end());
  ex.extract(y, fy);
  const std::vector<float> ay(ex.amplitude_spectrum().begin(), ex.amplitude_spectrum().end());
  EXPECT_NEAR(fy.velocity_rms_mm_s, fx.velocity_rms_mm_s, 1e-3 * fx.velocity_rms_mm_s);
  EXPECT_NEAR(fy.rms, fx.rms, 1e-5 * fx.rms);
  EXPECT_NEAR(fy.kurtosis, fx.kurtosis, 1e-3);
  EXPECT_NEAR(fy.peak, fx.peak, 1e-5);
  EXPECT_NEAR(fy.spectral_centroid_hz, fx.spectral_centroid_hz, 1e-3 * fx.spectral_centroid_hz);
  EXPECT_EQ(fy.dominant_hz, fx.dominant_hz);
  ASSERT_EQ(fx.band_log_energy.size(), fy.band_log_energy.size());
  for (std::size_t b = 0; b < fx.band_log_energy.size(); ++b)
    EXPECT_NEAR(fy.band_log_energy[b], fx.band_log_energy[b], 1e-3) << "band " << b;
  float mx = 0;
  for (float v : ax) mx = std::max(mx, v);
  for (std::size_t k = 0; k < ax.size(); ++k) EXPECT_NEAR(ay[k], ax[k], 1e-4 * mx) << "bin " << k;
}

TEST(FeaturesClosedForm, ShaftHarmonicAmplitudes) {
  FeatureConfig c = config();
  c.shaft_hz = 50.0;  // bins 8, 16, 24
  const std::size_t n = c.window_length;
  std::vector<float> x(n);
  const double a[3] = {0.3, 0.12, 0.05};
  for (std::size_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) / c.sample_rate_hz;
    x[i] = static_cast<float>(a[0] * std::sin(2 * kPi * 50 * t) + a[1] * std::sin(2 * kPi * 100 * t + 1) +
                              a[2] * std::sin(2 * kPi * 150 * t + 2));
  }
  const Features f = extract(c, x);
  ASSERT_EQ(f.shaft_harmonics.size(), 3u);
  for (int h = 0; h < 3; ++h) EXPECT_NEAR(f.shaft_harmonics[h], a[h], 1e-4 * a[0]) << h + 1 << "x";
  EXPECT_TRUE(f.envelope_amplitudes.empty());
  // Off-bin speed within the 2 % tolerance: the peak is still found; Hann scalloping loses at most
  // 15.1 % (1.42 dB) of the amplitude.
  c.shaft_hz = 51.0;
  const Features g = extract(c, x);
  for (int h = 0; h < 3; ++h) {
    EXPECT_LE(g.shaft_harmonics[h], a[h] * 1.0001);
    EXPECT_GE(g.shaft_harmonics[h], a[h] * 0.849);
  }
  // Without shaft speed there are no harmonic features, and model inputs shrink accordingly.
  const FeatureConfig plain = config();
  EXPECT_TRUE(extract(plain, x).shaft_harmonics.empty());
  EXPECT_EQ(model_input_names(plain).size(), 6u + 16u + 1u);
  EXPECT_EQ(model_input_names(c).size(), 6u + 16u + 1u + 3u);
}

FeatureConfig bearing_config() {
  FeatureConfig c = config();
  c.shaft_hz = 29.95;
  c.bearing = defect_multiples(BearingGeometry{9, 0.3126, 1.537, 0});
  return c;
}

// Mean of envelope feature `index` over 10 windows of a synthetic machine.
double mean_envelope_feature(DefectKind kind, std::size_t index, std::vector<float>* spectrum = nullptr) {
  const FeatureConfig c = bearing_config();
  MachineModel m;
  m.defect = kind;
  m.fault_peak_g = 0.5;
  m.seed = 4;
  MachineSynth s(m);
  FeatureExtractor ex(c);
  Features f;
  std::vector<float> w(c.window_length);
  double sum = 0;
  for (int i = 0; i < 10; ++i) {
    s.generate(w);
    ex.extract(w, f);
    EXPECT_EQ(f.envelope_amplitudes.size(), 12u);
    sum += f.envelope_amplitudes[index];
  }
  if (spectrum) spectrum->assign(ex.envelope_spectrum().begin(), ex.envelope_spectrum().end());
  return sum / 10;
}

TEST(FeaturesEnvelope, OuterRaceDefectShowsAtBpfo) {
  const double healthy = mean_envelope_feature(DefectKind::none, 0);  // env_bpfo_1
  std::vector<float> spec;
  const double faulty = mean_envelope_feature(DefectKind::outer_race, 0, &spec);
  std::printf("envelope at BPFO: healthy %.3g, outer race %.3g (ratio %.1f)\n", healthy, faulty, faulty / healthy);
  EXPECT_GT(faulty, 10 * healthy);
  // In the faulty envelope spectrum, the largest line in 20…500 Hz is at BPFO (107.4 Hz) ±2 %.
  const FeatureConfig c = bearing_config();
  const double df = c.sample_rate_hz / static_cast<double>(c.window_length);
  std::size_t best = 0;
  for (auto k = static_cast<std::size_t>(20 / df); k < static_cast<std::size_t>(500 / df); ++k)
    if (best == 0 || spec[k] > spec[best]) best = k;
  const double bpfo_hz = c.bearing->bpfo * *c.shaft_hz;
  EXPECT_NEAR(static_cast<double>(best) * df, bpfo_hz, 0.02 * bpfo_hz + df);
  // BPFI is not excited by an outer-race defect as much as BPFO is.
  const double bpfi = mean_envelope_feature(DefectKind::outer_race, 3);  // env_bpfi_1
  EXPECT_GT(faulty, 3 * bpfi);
}

// ---------------------------------------------------------------------------------------------

void expect_invalid(const FeatureConfig& c, const std::string& key) {
  try {
    c.validate();
    ADD_FAILURE() << "accepted a config that should fail on '" << key << "'";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()).rfind(key + ": ", 0), 0u) << "message: " << e.what();
  }
  EXPECT_THROW(FeatureExtractor ex(c), std::invalid_argument);
}

TEST(FeatureConfigValidate, RejectsNamingTheKey) {
  FeatureConfig c = config();
  EXPECT_NO_THROW(c.validate());

  for (std::size_t n : {1000u, 4095u, 128u, 131072u}) {
    c = config();
    c.window_length = n;
    expect_invalid(c, "window");
  }
  for (double fs : {999.0, 100001.0, 0.0, -25600.0, std::numeric_limits<double>::quiet_NaN()}) {
    c = config();
    c.sample_rate_hz = fs;
    expect_invalid(c, "sample_rate");
  }
  for (double fs : {1000.0, 100000.0}) {
    c = config(fs, 256);
    c.velocity_hi_hz = std::min(1000.0, fs / 2);
    c.band_count = 4;
    EXPECT_NO_THROW(c.validate()) << fs;
  }
  for (double ov : {0.94, 1.0, -0.1}) {
    c = config();
    c.overlap = ov;
    expect_invalid(c, "overlap");
  }
  c = config();
  c.overlap = 0.9375;
  EXPECT_NO_THROW(c.validate());
  EXPECT_EQ(c.hop(), 256u);

  c = config();
  c.bearing = DefectMultiples{3.5848, 5.4152, 2.357, 0.3983};
  expect_invalid(c, "bearing");
  c.shaft_hz = 29.95;
  EXPECT_NO_THROW(c.validate());
  c.bearing->bpfo = 0;
  expect_invalid(c, "bearing");

  c = config();
  c.band_edges_hz = {10, 12, 1000};  // 10…12 Hz holds no bin at df 6.25 (bins at 6.25, 12.5)
  expect_invalid(c, "bands");
  c = config(25600, 256);  // df = 100 Hz: 64 log bands from 1600 Hz leave empty bands
  c.band_count = 64;
  expect_invalid(c, "bands");
  c = config();
  c.band_edges_hz = {100, 50, 1000};
  expect_invalid(c, "band_edges");
  c = config();
  c.band_count = 0;
  expect_invalid(c, "bands");

  c = config();
  c.shaft_hz = 5000;  // 3× beyond Nyquist
  expect_invalid(c, "shaft_speed");
  c = config();
  c.velocity_lo_hz = 1000;
  c.velocity_hi_hz = 10;
  expect_invalid(c, "velocity_band");
  c = bearing_config();
  c.envelope_lo_hz = 9000;
  c.envelope_hi_hz = 8000;
  expect_invalid(c, "envelope_band");
  c = bearing_config();
  c.defect_harmonics = 0;
  expect_invalid(c, "harmonics");
}

TEST(FeatureConfigValidate, MessagesAreSpecific) {
  FeatureConfig c = config();
  c.window_length = 1000;
  try {
    c.validate();
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "window: must be a power of two within 256…65536 (got 1000)");
  }
  c = config(500);
  try {
    c.validate();
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "sample_rate: must be within 1000…100000 Hz (got 500)");
  }
}

// FNV-1a 64 over the canonical text, written here independently.
std::uint64_t fnv1a(const std::string& s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char ch : s) {
    h ^= ch;
    h *= 0x100000001b3ULL;
  }
  return h;
}

TEST(FeatureConfigHash, EqualForEqualConfigsDifferentForAnyField) {
  const FeatureConfig base = bearing_config();
  EXPECT_EQ(base.hash(), bearing_config().hash());
  EXPECT_EQ(base.canonical().rfind("vibgate.features.v1;", 0), 0u);

  // Overlap is left out on purpose (it selects windows, not what a window's features are).
  FeatureConfig ov = base;
  ov.overlap = 0.75;
  EXPECT_EQ(ov.hash(), base.hash());
  // Defaults and their resolved explicit values describe the same features.
  FeatureConfig explicit_edges = base;
  explicit_edges.band_edges_hz = base.resolved_band_edges();
  EXPECT_EQ(explicit_edges.hash(), base.hash());
  FeatureConfig explicit_env = base;
  explicit_env.envelope_lo_hz = base.sample_rate_hz / 12;
  explicit_env.envelope_hi_hz = base.sample_rate_hz / 4;
  EXPECT_EQ(explicit_env.hash(), base.hash());

  const std::vector<std::pair<const char*, std::function<void(FeatureConfig&)>>> changes = {
      {"sample_rate", [](FeatureConfig& c) { c.sample_rate_hz = 25000; }},
      {"window", [](FeatureConfig& c) { c.window_length = 8192; }},
      {"units", [](FeatureConfig& c) { c.units = AccelUnits::m_per_s2; }},
      {"band_count", [](FeatureConfig& c) { c.band_count = 15; }},
      {"band_edges", [](FeatureConfig& c) { c.band_edges_hz = {100, 1000, 10000}; }},
      {"band_edge_tiny", [](FeatureConfig& c) {
         c.band_edges_hz = c.resolved_band_edges();
         c.band_edges_hz[3] = std::nextafter(c.band_edges_hz[3], 1e9);
       }},
      {"velocity_lo", [](FeatureConfig& c) { c.velocity_lo_hz = 2; }},
      {"velocity_hi", [](FeatureConfig& c) { c.velocity_hi_hz = 1000.5; }},
      {"iso_group", [](FeatureConfig& c) { c.iso_group = IsoGroup::group1; }},
      {"iso_mounting", [](FeatureConfig& c) { c.iso_mounting = IsoMounting::flexible; }},
      {"shaft", [](FeatureConfig& c) { c.shaft_hz = 29.96; }},
      {"bpfo", [](FeatureConfig& c) { c.bearing->bpfo += 1e-9; }},
      {"bpfi", [](FeatureConfig& c) { c.bearing->bpfi += 0.01; }},
      {"bsf", [](FeatureConfig& c) { c.bearing->bsf += 0.01; }},
      {"ftf", [](FeatureConfig& c) { c.bearing->ftf += 0.01; }},
      {"no_bearing", [](FeatureConfig& c) { c.bearing.reset(); }},
      {"envelope_lo", [](FeatureConfig& c) { c.envelope_lo_hz = 2000; }},
      {"envelope_hi", [](FeatureConfig& c) { c.envelope_hi_hz = 7000; }},
      {"harmonics", [](FeatureConfig& c) { c.defect_harmonics = 4; }},
  };
  std::vector<std::uint64_t> seen = {base.hash()};
  for (const auto& [name, change] : changes) {
    FeatureConfig c = base;
    change(c);
    EXPECT_NO_THROW(c.validate()) << name;
    EXPECT_NE(c.hash(), base.hash()) << name;
    for (std::uint64_t h : seen) EXPECT_NE(c.hash(), h) << name << " collides with an earlier change";
    seen.push_back(c.hash());
  }
  FeatureConfig no_shaft = config();
  FeatureConfig shaft = config();
  shaft.shaft_hz = 29.95;
  EXPECT_NE(no_shaft.hash(), shaft.hash());
}

// feature_config.hpp promises "64-bit FNV-1a over canonical()": other tools (and future
// versions) must be able to recompute the hash stored in model files from the canonical text.
// FNV-1a 64 starts from the offset basis 14695981039346656037 (0xcbf29ce484222325).
TEST(FeatureConfigHash, IsStandardFnv1aOfTheCanonicalText) {
  const FeatureConfig c = config();
  EXPECT_EQ(c.canonical().substr(0, 54), "vibgate.features.v1;fs=25600;n=4096;units=g;bands=100,");
  EXPECT_EQ(fnv1a("a"), 0xaf63dc4c8601ec8cULL);  // published FNV-1a 64 test vector: the reference is right
  EXPECT_EQ(c.hash(), fnv1a(c.canonical())) << std::hex << "hash() 0x" << c.hash() << ", FNV-1a 0x"
                                            << fnv1a(c.canonical()) << "\n" << c.canonical();
  // Pinned: model files store this value; it may change only with the canonical format's tag.
  EXPECT_EQ(fnv1a(c.canonical()), 0xeb61f49de0148482ULL);
  const FeatureConfig b = bearing_config();
  EXPECT_EQ(b.hash(), fnv1a(b.canonical()));
}

TEST(DefectMultiples, Skf6205) {
  const DefectMultiples m = defect_multiples(BearingGeometry{9, 0.3126, 1.537, 0});
  EXPECT_NEAR(m.bpfo, 3.5848, 5e-4);
  EXPECT_NEAR(m.bpfi, 5.4152, 5e-4);
  EXPECT_NEAR(m.bsf, 2.357, 5e-4);
  EXPECT_NEAR(m.ftf, 0.3983, 5e-4);
  EXPECT_NEAR(m.bpfo + m.bpfi, 9.0, 1e-12);  // n/2·(1−r) + n/2·(1+r)
  EXPECT_NEAR(m.ftf * 9, m.bpfo, 1e-12);     // BPFO = n·FTF
  // A contact angle shortens r by cos φ.
  const DefectMultiples a = defect_multiples(BearingGeometry{9, 0.3126, 1.537, 60});
  EXPECT_NEAR(a.bpfo, 4.5 * (1 - 0.3126 / 1.537 * 0.5), 1e-9);
}

TEST(DefectMultiples, RejectsImpossibleGeometryNamingTheField) {
  auto expect_field = [](const BearingGeometry& g, const std::string& field) {
    try {
      defect_multiples(g);
      ADD_FAILURE() << "accepted geometry, expected an error on " << field;
    } catch (const std::invalid_argument& e) {
      EXPECT_EQ(std::string(e.what()).rfind(field + ": ", 0), 0u) << e.what();
    }
  };
  expect_field({2, 0.3, 1.5, 0}, "bearing.balls");
  expect_field({9, 0, 1.5, 0}, "bearing.ball_diameter");
  expect_field({9, 1.5, 1.5, 0}, "bearing.pitch_diameter");
  expect_field({9, 0.3, 1.5, 61}, "bearing.contact_angle");
  expect_field({9, 0.3, 1.5, -1}, "bearing.contact_angle");
}

TEST(FftPlans, NotCreatedPerWindowOrPerExtractor) {
  const FeatureConfig c = bearing_config();
  { FeatureExtractor warmup(c); }  // plans for this length exist from here on
  const std::size_t after_first = fft_plans_created();
  FeatureExtractor ex(c);
  Features f;
  std::vector<float> w = sine(c.window_length, c.sample_rate_hz, 400, 0.5);
  for (int i = 0; i < 200; ++i) {
    w[static_cast<std::size_t>(i)] += 0.01f;
    ex.extract(w, f);
  }
  FeatureExtractor another(c);
  another.extract(w, f);
  EXPECT_EQ(fft_plans_created(), after_first);
  // A new length does need new plans (the counter is real), once.
  FeatureExtractor longer(config(25600, 16384));
  const std::size_t with_longer = fft_plans_created();
  EXPECT_GT(with_longer, after_first);
  FeatureExtractor longer2(config(25600, 16384));
  EXPECT_EQ(fft_plans_created(), with_longer);
}

TEST(FeatureExtractor, RejectsWrongWindowLengthAndNamesColumns) {
  const FeatureConfig c = bearing_config();
  FeatureExtractor ex(c);
  Features f;
  std::vector<float> w(c.window_length - 1);
  EXPECT_THROW(ex.extract(w, f), std::invalid_argument);
  const auto cols = feature_column_names(c);
  EXPECT_EQ(cols.size(), 11u + 16u + 3u + 12u);
  EXPECT_EQ(cols.front(), "rms");
  EXPECT_EQ(cols.back(), "env_ftf_3");
  const auto in = model_input_names(c);
  EXPECT_EQ(in.size(), ex.model_input_size());
  EXPECT_EQ(in[5], "lg_velocity_rms");
  EXPECT_EQ(in[22], "centroid_rel");
  EXPECT_EQ(in.back(), "lg_env_ftf_3");
}

TEST(FeatureExtractor, FlatWindowHasZeroShapeFeatures) {
  const FeatureConfig c = config();
  const Features f = extract(c, std::vector<float>(c.window_length, 0.25f));
  EXPECT_EQ(f.rms, 0.0);
  EXPECT_EQ(f.crest_factor, 0.0);
  EXPECT_EQ(f.skewness, 0.0);
  EXPECT_EQ(f.kurtosis, 0.0);
  EXPECT_EQ(f.spectral_centroid_hz, 0.0);
  EXPECT_EQ(f.velocity_rms_mm_s, 0.0);
  EXPECT_EQ(f.iso_zone, IsoZone::A);
}

}  // namespace
}  // namespace vibgate::analytics
