// features.cpp — the per-window feature extractor (formulas in docs/features.md).
//
// Per window: one pass for mean/min/max, one for central moments, one real FFT of the Hann-windowed
// window, and — with a bearing configured — one real FFT of the raw window, one inverse complex FFT
// for the analytic band-pass signal and one real FFT of the windowed envelope. All buffers are allocated in the constructor; extract() allocates only
// if the caller's Features vectors are smaller than needed (first call).
#include "vibgate/analytics/features.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "vibgate/analytics/fft.hpp"

namespace vibgate::analytics {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kLgEps = 1e-9;

// ISO 10816-3 zone boundaries A/B, B/C, C/D in mm/s RMS.
std::array<double, 3> iso_bounds(IsoGroup g, IsoMounting m) {
  if (g == IsoGroup::group1)
    return m == IsoMounting::rigid ? std::array{2.3, 4.5, 7.1} : std::array{3.5, 7.1, 11.0};
  return m == IsoMounting::rigid ? std::array{1.4, 2.8, 4.5} : std::array{2.3, 4.5, 7.1};
}

float lg(double v) { return static_cast<float>(std::log10(v + kLgEps)); }

const char* kDefects[4] = {"bpfo", "bpfi", "bsf", "ftf"};

}  // namespace

std::vector<std::string> model_input_names(const FeatureConfig& c) {
  std::vector<std::string> n = {"lg_rms", "lg_peak", "crest_factor", "skewness", "lg_kurtosis",
                                "lg_velocity_rms"};
  const std::size_t bands = c.resolved_band_edges().size() - 1;
  for (std::size_t i = 0; i < bands; ++i) n.push_back("band_" + std::to_string(i));
  n.push_back("centroid_rel");
  if (c.shaft_hz)
    for (int h = 1; h <= 3; ++h) n.push_back("lg_shaft_" + std::to_string(h) + "x");
  if (c.bearing)
    for (const char* d : kDefects)
      for (std::size_t h = 1; h <= c.defect_harmonics; ++h)
        n.push_back(std::string("lg_env_") + d + "_" + std::to_string(h));
  return n;
}

std::vector<std::string> feature_column_names(const FeatureConfig& c) {
  std::vector<std::string> n = {"rms",          "peak",         "peak_to_peak",
                                "crest_factor", "skewness",     "kurtosis",
                                "velocity_rms", "iso_zone",     "spectral_centroid",
                                "dominant_hz",  "dominant_amplitude"};
  const std::size_t bands = c.resolved_band_edges().size() - 1;
  for (std::size_t i = 0; i < bands; ++i) n.push_back("band_" + std::to_string(i));
  if (c.shaft_hz)
    for (int h = 1; h <= 3; ++h) n.push_back("shaft_" + std::to_string(h) + "x");
  if (c.bearing)
    for (const char* d : kDefects)
      for (std::size_t h = 1; h <= c.defect_harmonics; ++h)
        n.push_back(std::string("env_") + d + "_" + std::to_string(h));
  return n;
}

FeatureExtractor::FeatureExtractor(const FeatureConfig& config) : config_(config) {
  config_.validate();
  n_ = config_.window_length;
  df_ = config_.sample_rate_hz / static_cast<double>(n_);
  input_size_ = model_input_names(config_).size();
  fft_ = std::make_unique<RealFft>(n_);
  const std::size_t bins = n_ / 2 + 1;
  amplitude_.assign(bins, 0.f);
  power_.assign(bins, 0.f);

  const auto edges = config_.resolved_band_edges();
  band_first_bin_.resize(edges.size());
  for (std::size_t i = 0; i < edges.size(); ++i)
    band_first_bin_[i] = static_cast<std::size_t>(std::ceil(edges[i] / df_ - 1e-9));
  // Last band includes a bin exactly at the top edge.
  if (static_cast<double>(band_first_bin_.back()) * df_ <= edges.back() + 1e-9)
    band_first_bin_.back() += 1;
  band_first_bin_.back() = std::min(band_first_bin_.back(), bins);
  const double f_lo = std::max(10.0, 4 * df_);  // docs/features.md: dominant-peak floor
  dominant_first_bin_ = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(f_lo / df_ - 1e-9)));

  const double c = config_.units == AccelUnits::g ? kStandardGravity : 1.0;
  vel_weight_.assign(bins, 0.0);
  for (std::size_t k = 1; k < bins; ++k) {
    const double f = static_cast<double>(k) * df_;
    if (f >= config_.velocity_lo_hz && f <= config_.velocity_hi_hz) {
      const double g = c / (2 * kPi * f);
      vel_weight_[k] = g * g;
    }
  }
  iso_bounds_ = iso_bounds(config_.iso_group, config_.iso_mounting);

  hann_.resize(n_);
  for (std::size_t i = 0; i < n_; ++i)
    hann_[i] = static_cast<float>(0.5 - 0.5 * std::cos(2 * kPi * static_cast<double>(i) /
                                                       static_cast<double>(n_)));
  if (config_.bearing) {
    raw_fft_ = std::make_unique<RealFft>(n_);
    analytic_ = std::make_unique<ComplexInverseFft>(n_);
    env_fft_ = std::make_unique<RealFft>(n_);
    env_lo_bin_ = static_cast<std::size_t>(std::ceil(config_.resolved_envelope_lo_hz() / df_ - 1e-9));
    env_hi_bin_ = static_cast<std::size_t>(std::floor(config_.resolved_envelope_hi_hz() / df_ + 1e-9));
    env_lo_bin_ = std::max<std::size_t>(env_lo_bin_, 1);
    env_hi_bin_ = std::min(env_hi_bin_, n_ / 2 - 1);
    env_amplitude_.assign(bins, 0.f);
  }
}

FeatureExtractor::~FeatureExtractor() = default;

double FeatureExtractor::harmonic_peak(std::span<const float> amp, double freq_hz) const {
  const double center = std::round(freq_hz / df_);
  if (center > static_cast<double>(amp.size() - 1)) return 0.0;  // above Nyquist
  const double tol = std::max(1.0, std::round(0.02 * freq_hz / df_));
  const auto last = static_cast<double>(amp.size() - 1);
  const auto lo = static_cast<std::size_t>(std::clamp(center - tol, 1.0, last));
  const auto hi = static_cast<std::size_t>(std::clamp(center + tol, 1.0, last));
  float best = 0.f;
  for (std::size_t k = lo; k <= hi; ++k) best = std::max(best, amp[k]);
  return best;
}

void FeatureExtractor::extract(std::span<const float> x, Features& out) {
  if (x.size() != n_) throw std::invalid_argument("window: expected " + std::to_string(n_) + " samples");
  const std::size_t n = n_;
  const double inv_n = 1.0 / static_cast<double>(n);

  // --- time domain: mean/min/max, then central moments (8 independent lanes for ILP) ---
  double s[8] = {};
  float mn = x[0], mx = x[0];
  for (std::size_t i = 0; i < n; i += 8) {
    for (std::size_t j = 0; j < 8; ++j) {
      const float v = x[i + j];
      s[j] += v;
      mn = std::min(mn, v);
      mx = std::max(mx, v);
    }
  }
  const double mean = (s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7]) * inv_n;
  // The FFT input is the mean-removed window, so a DC offset cannot leak into the low bins.
  // The Hann window is applied in the time domain: deriving it from the raw spectrum with the
  // exact 3-tap kernel cancels large rectangular-window leakage terms and loses precision in
  // float (seen as 1 % band-energy errors on impulsive signals), so the envelope gets its own FFT.
  float* in = fft_->input();
  float* raw = raw_fft_ ? raw_fft_->input() : nullptr;
  const float* w = hann_.data();
  double m2[8] = {}, m3[8] = {}, m4[8] = {};
  const float meanf = static_cast<float>(mean);
  for (std::size_t i = 0; i < n; i += 8) {
    for (std::size_t j = 0; j < 8; ++j) {
      const float cf = x[i + j] - meanf;
      in[i + j] = cf * w[i + j];
      if (raw) raw[i + j] = cf;
      const double c = static_cast<double>(cf);
      const double c2 = c * c;
      m2[j] += c2;
      m3[j] += c2 * c;
      m4[j] += c2 * c2;
    }
  }
  // Correct for the float rounding of the mean (exact identity for the shifted moments).
  double M2 = 0, M3 = 0, M4 = 0;
  for (int j = 0; j < 8; ++j) { M2 += m2[j]; M3 += m3[j]; M4 += m4[j]; }
  const double d = mean - static_cast<double>(meanf);  // mean of c
  M2 = M2 * inv_n; M3 = M3 * inv_n; M4 = M4 * inv_n;
  const double c2 = M2 - d * d;
  const double c3 = M3 - 3 * d * M2 + 2 * d * d * d;
  const double c4 = M4 - 4 * d * M3 + 6 * d * d * M2 - 3 * d * d * d * d;
  out.rms = std::sqrt(std::max(c2, 0.0));
  out.peak = std::max(mx - mean, mean - mn);
  out.peak_to_peak = static_cast<double>(mx) - static_cast<double>(mn);
  if (c2 > 1e-20) {
    out.crest_factor = out.peak / out.rms;
    out.skewness = c3 / std::pow(c2, 1.5);
    out.kurtosis = c4 / (c2 * c2);
  } else {
    out.crest_factor = out.skewness = out.kurtosis = 0;
  }

  // --- spectrum of the Hann-windowed window ---
  fft_->execute();
  const std::complex<float>* Xw = fft_->output();
  const std::size_t half = n / 2;
  const float amp_scale = static_cast<float>(4.0 * inv_n);  // 2/Σw with Σw = N/2
  for (std::size_t k = 0; k <= half; ++k) {
    const float p = Xw[k].real() * Xw[k].real() + Xw[k].imag() * Xw[k].imag();
    power_[k] = p;
    amplitude_[k] = std::sqrt(p) * amp_scale;
  }
  const double pscale = 16.0 / (3.0 * static_cast<double>(n) * static_cast<double>(n));  // 2/(N·Σw²)

  const std::size_t bands = band_first_bin_.size() - 1;
  out.band_log_energy.resize(bands);
  for (std::size_t b = 0; b < bands; ++b) {
    double acc = 0;
    for (std::size_t k = band_first_bin_[b]; k < band_first_bin_[b + 1]; ++k) acc += power_[k];
    out.band_log_energy[b] = std::log10(acc * pscale + 1e-12);
  }

  double ptot = 0, pf = 0, pv = 0;
  std::size_t best = dominant_first_bin_;
  for (std::size_t k = 1; k <= half; ++k) {
    const double p = power_[k];
    ptot += p;
    pf += p * static_cast<double>(k);
    pv += p * vel_weight_[k];
  }
  for (std::size_t k = dominant_first_bin_; k <= half; ++k)
    if (power_[k] > power_[best]) best = k;
  out.spectral_centroid_hz = ptot > 0 ? pf / ptot * df_ : 0.0;
  out.dominant_hz = static_cast<double>(best) * df_;
  out.dominant_amplitude = amplitude_[best];
  out.velocity_rms_mm_s = 1000.0 * std::sqrt(pv * pscale);
  const double v = out.velocity_rms_mm_s;
  out.iso_zone = v < iso_bounds_[0] ? IsoZone::A
                 : v < iso_bounds_[1] ? IsoZone::B
                 : v < iso_bounds_[2] ? IsoZone::C
                                      : IsoZone::D;

  out.shaft_harmonics.clear();
  if (config_.shaft_hz)
    for (int h = 1; h <= 3; ++h)
      out.shaft_harmonics.push_back(harmonic_peak(amplitude_, h * *config_.shaft_hz));

  // --- envelope spectrum around the structural resonance band ---
  out.envelope_amplitudes.clear();
  if (config_.bearing) {
    raw_fft_->execute();
    const std::complex<float>* X = raw_fft_->output();
    std::complex<float>* Z = analytic_->input();
    for (std::size_t k = env_lo_bin_; k <= env_hi_bin_; ++k) Z[k] = 2.0f * X[k];
    analytic_->execute();
    const std::complex<float>* z = analytic_->output();
    float* e = env_fft_->input();
    const float inv_nf = static_cast<float>(inv_n);
    double esum = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const float m = std::abs(z[i]) * inv_nf;
      e[i] = m;
      esum += m;
    }
    const float emean = static_cast<float>(esum * inv_n);
    for (std::size_t i = 0; i < n; ++i) e[i] = (e[i] - emean) * hann_[i];
    env_fft_->execute();
    const std::complex<float>* E = env_fft_->output();
    for (std::size_t k = 0; k <= half; ++k) env_amplitude_[k] = std::abs(E[k]) * amp_scale;
    const DefectMultiples& m = *config_.bearing;
    for (double mult : {m.bpfo, m.bpfi, m.bsf, m.ftf})
      for (std::size_t h = 1; h <= config_.defect_harmonics; ++h)
        out.envelope_amplitudes.push_back(
            harmonic_peak(env_amplitude_, static_cast<double>(h) * mult * *config_.shaft_hz));
  }
}

void FeatureExtractor::model_input(const Features& f, std::span<float> out) const {
  if (out.size() != input_size_) throw std::invalid_argument("model input: wrong size");
  std::size_t i = 0;
  out[i++] = lg(f.rms);
  out[i++] = lg(f.peak);
  out[i++] = static_cast<float>(f.crest_factor);
  out[i++] = static_cast<float>(f.skewness);
  out[i++] = lg(f.kurtosis);
  out[i++] = lg(f.velocity_rms_mm_s);
  for (double b : f.band_log_energy) out[i++] = static_cast<float>(b);
  out[i++] = static_cast<float>(f.spectral_centroid_hz / (config_.sample_rate_hz / 2));
  for (double a : f.shaft_harmonics) out[i++] = lg(a);
  for (double a : f.envelope_amplitudes) out[i++] = lg(a);
}

}  // namespace vibgate::analytics
