// features.cpp — the per-window feature extractor (formulas in docs/features.md).
//
// Per window: one pass for mean/min/max, one for central moments, one real FFT of the Hann-windowed
// window, and — with a bearing configured — one real FFT of the raw window, one M-point inverse
// complex FFT for the decimated analytic band-pass signal and one M-point real FFT of the windowed
// envelope (M = 2048 for the default band at N = 4096). Sums run in float lanes per chunk of 256
// values, accumulated in double across chunks: vectorizable, and accurate to ~1e−7 relative. All
// buffers are allocated in the constructor; extract() allocates only if the caller's Features
// vectors are smaller than needed (first call).
#include "vibgate/analytics/features.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
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

// Eight float lanes (GCC/Clang vector extension); unaligned loads and stores through memcpy.
typedef float V8 __attribute__((vector_size(32)));
[[gnu::always_inline]] inline V8 load8(const float* p) {
  V8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
[[gnu::always_inline]] inline void store8(float* p, V8 v) { std::memcpy(p, &v, sizeof v); }
[[gnu::always_inline]] inline double hsum(V8 v) {
  double s = 0;
  for (int j = 0; j < 8; ++j) s += v[j];
  return s;
}

}  // namespace

std::vector<std::string> model_input_names(const FeatureConfig& c) {
  std::vector<std::string> n = {"lg_rms",   "lg_peak",     "crest_factor",
                                "skewness", "lg_kurtosis", "lg_velocity_rms"};
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
  std::vector<std::string> n = {"rms",
                                "peak",
                                "peak_to_peak",
                                "crest_factor",
                                "skewness",
                                "kurtosis",
                                "velocity_rms",
                                "iso_zone",
                                "spectral_centroid",
                                "dominant_hz",
                                "dominant_amplitude"};
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
  dominant_first_bin_ =
      std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(f_lo / df_ - 1e-9)));

  // Velocity weights (c/(2πf))², stored normalized to the largest so float keeps full precision.
  const double c = config_.units == AccelUnits::g ? kStandardGravity : 1.0;
  std::vector<double> vw(bins, 0.0);
  for (std::size_t k = 1; k < bins; ++k) {
    const double f = static_cast<double>(k) * df_;
    if (f >= config_.velocity_lo_hz && f <= config_.velocity_hi_hz) {
      const double g = c / (2 * kPi * f);
      vw[k] = g * g;
    }
  }
  vel_scale_ = *std::max_element(vw.begin(), vw.end());
  vel_weight_f_.resize(bins);
  for (std::size_t k = 0; k < bins; ++k) vel_weight_f_[k] = static_cast<float>(vw[k] / vel_scale_);
  iso_bounds_ = iso_bounds(config_.iso_group, config_.iso_mounting);

  hann_.resize(n_);
  for (std::size_t i = 0; i < n_; ++i)
    hann_[i] = static_cast<float>(
        0.5 - 0.5 * std::cos(2 * kPi * static_cast<double>(i) / static_cast<double>(n_)));
  if (config_.bearing) {
    env_lo_bin_ =
        static_cast<std::size_t>(std::ceil(config_.resolved_envelope_lo_hz() / df_ - 1e-9));
    env_hi_bin_ =
        static_cast<std::size_t>(std::floor(config_.resolved_envelope_hi_hz() / df_ + 1e-9));
    env_lo_bin_ = std::max<std::size_t>(env_lo_bin_, 1);
    env_hi_bin_ = std::min(env_hi_bin_, n_ / 2 - 1);
    // Decimated envelope (docs/features.md): the band's B bins are moved to baseband and inverted
    // with an M-point FFT, M the smallest power of two >= 2B (at least 64, at most N). That yields
    // exactly every (N/M)-th sample of the full-rate analytic signal's magnitude, and the 2B margin
    // keeps the envelope's own bandwidth (< B bins) below the decimated Nyquist.
    const std::size_t b = env_hi_bin_ - env_lo_bin_ + 1;
    env_m_ = 64;
    while (env_m_ < 2 * b && env_m_ < n_) env_m_ *= 2;
    raw_fft_ = std::make_unique<RealFft>(n_);
    analytic_ = std::make_unique<ComplexInverseFft>(env_m_);
    env_fft_ = std::make_unique<RealFft>(env_m_);
    env_hann_.resize(env_m_);
    for (std::size_t i = 0; i < env_m_; ++i)
      env_hann_[i] = static_cast<float>(
          0.5 - 0.5 * std::cos(2 * kPi * static_cast<double>(i) / static_cast<double>(env_m_)));
    env_amplitude_.assign(env_m_ / 2 + 1, 0.f);
    env_power_.assign(env_m_ / 2 + 1, 0.f);
  }
}

FeatureExtractor::~FeatureExtractor() = default;

// Largest value of `power` within the tolerance around freq_hz, as an amplitude:
// sqrt(max power) · scale (the square root is monotonic, so only the maximum needs one).
double FeatureExtractor::harmonic_peak(std::span<const float> power, double freq_hz,
                                       float scale) const {
  const std::span<const float> amp = power;
  const double center = std::round(freq_hz / df_);
  if (center > static_cast<double>(amp.size() - 1)) return 0.0;  // above Nyquist
  const double tol = std::max(1.0, std::round(0.02 * freq_hz / df_));
  const auto last = static_cast<double>(amp.size() - 1);
  const auto lo = static_cast<std::size_t>(std::clamp(center - tol, 1.0, last));
  const auto hi = static_cast<std::size_t>(std::clamp(center + tol, 1.0, last));
  float best = 0.f;
  for (std::size_t k = lo; k <= hi; ++k) best = std::max(best, amp[k]);
  return std::sqrt(best) * scale;
}

std::span<const float> FeatureExtractor::amplitude_spectrum() const {
  // Computed on demand: extract() itself needs amplitudes only at a few peaks.
  const float scale = static_cast<float>(4.0 / static_cast<double>(n_));
  for (std::size_t k = 0; k < power_.size(); ++k) amplitude_[k] = std::sqrt(power_[k]) * scale;
  return amplitude_;
}

std::span<const float> FeatureExtractor::envelope_spectrum() const {
  const float scale = static_cast<float>(4.0 / static_cast<double>(env_m_));
  for (std::size_t k = 0; k < env_power_.size(); ++k)
    env_amplitude_[k] = std::sqrt(env_power_[k]) * scale;
  return env_amplitude_;
}

// Cloned for AVX2 (chosen at load time by CPUID) and a baseline x86-64 version; the loops below are
// written so the compiler vectorizes them. No FMA contraction (ISO mode), so both clones round
// alike. GCC only: clang rejects the AVX2 clone's calls to the V8 helpers (an AVX vector passed to
// a function without AVX "changes the ABI"), so clang builds (the fuzzers) get the baseline
// version. Not under the sanitizers either: their instrumented ifunc resolver runs before the
// runtime is up (TSan crashed there at load time).
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__) && \
    !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void FeatureExtractor::extract(std::span<const float> x, Features& out) {
  if (x.size() != n_)
    throw std::invalid_argument("window: expected " + std::to_string(n_) + " samples");
  const std::size_t n = n_;
  const double inv_n = 1.0 / static_cast<double>(n);
  constexpr std::size_t kLanes = 8, kChunk = 256;  // float lanes summed per chunk, chunks in double

  // --- time domain: mean/min/max, then central moments ---
  // GCC/Clang vector extensions: 8 float lanes (two SSE registers, or one AVX register in the
  // AVX2 clone), partial sums per chunk of 256 samples carried into double.
  double sum = 0;
  V8 vlo = load8(&x[0]), vhi = vlo;
  for (std::size_t c = 0; c < n; c += kChunk) {
    V8 s8 = {};
    for (std::size_t i = c; i < c + kChunk; i += kLanes) {
      const V8 v = load8(&x[i]);
      s8 += v;
      vlo = v < vlo ? v : vlo;
      vhi = v > vhi ? v : vhi;
    }
    sum += hsum(s8);
  }
  float mn = vlo[0], mx = vhi[0];
  for (std::size_t j = 1; j < kLanes; ++j) {
    mn = std::min(mn, vlo[j]);
    mx = std::max(mx, vhi[j]);
  }
  const double mean = sum * inv_n;
  // The FFT input is the mean-removed window, so a DC offset cannot leak into the low bins.
  // The Hann window is applied in the time domain: deriving it from the raw spectrum with the
  // exact 3-tap kernel cancels large rectangular-window leakage terms and loses precision in
  // float (seen as 1 % band-energy errors on impulsive signals), so the envelope gets its own FFT.
  float* in = fft_->input();
  float* raw = raw_fft_ ? raw_fft_->input() : nullptr;
  const float* w = hann_.data();
  const float meanf = static_cast<float>(mean);
  const V8 mean8 = V8{} + meanf;
  double M2 = 0, M3 = 0, M4 = 0;
  for (std::size_t c = 0; c < n; c += kChunk) {
    V8 m2 = {}, m3 = {}, m4 = {};
    for (std::size_t i = c; i < c + kChunk; i += kLanes) {
      const V8 cf = load8(&x[i]) - mean8;
      store8(&in[i], cf * load8(&w[i]));
      if (raw) store8(&raw[i], cf);
      const V8 sq = cf * cf;
      m2 += sq;
      m3 += sq * cf;
      m4 += sq * sq;
    }
    M2 += hsum(m2);
    M3 += hsum(m3);
    M4 += hsum(m4);
  }
  // Correct for the float rounding of the mean (exact identity for the shifted moments).
  const double d = mean - static_cast<double>(meanf);  // mean of c
  M2 *= inv_n;
  M3 *= inv_n;
  M4 *= inv_n;
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
  const float* Xw = reinterpret_cast<const float*>(fft_->output());  // interleaved re, im
  const std::size_t half = n / 2;
  const float amp_scale = static_cast<float>(4.0 * inv_n);  // 2/Σw with Σw = N/2
  float* pw = power_.data();
  for (std::size_t k = 0; k <= half; ++k) {
    const float re = Xw[2 * k], im = Xw[2 * k + 1];
    pw[k] = re * re + im * im;
  }
  const double pscale =
      16.0 / (3.0 * static_cast<double>(n) * static_cast<double>(n));  // 2/(N·Σw²)

  const std::size_t bands = band_first_bin_.size() - 1;
  out.band_log_energy.resize(bands);
  for (std::size_t b = 0; b < bands; ++b) {
    const std::size_t k0 = band_first_bin_[b], k1 = band_first_bin_[b + 1];
    float lane[kLanes] = {};
    std::size_t k = k0;
    for (; k + kLanes <= k1; k += kLanes)
      for (std::size_t j = 0; j < kLanes; ++j) lane[j] += pw[k + j];
    double acc = 0;
    for (float l : lane) acc += l;
    for (; k < k1; ++k) acc += pw[k];
    out.band_log_energy[b] = std::log10(acc * pscale + 1e-12);
  }

  // Total power, frequency-weighted power and velocity-weighted power over bins 1…N/2.
  double ptot = 0, pf = 0, pv = 0;
  {
    const float* vw = vel_weight_f_.data();
    for (std::size_t c = 1; c <= half; c += kChunk) {
      const std::size_t end = std::min(half + 1, c + kChunk);
      float t[kLanes] = {}, f[kLanes] = {}, v[kLanes] = {};
      std::size_t k = c;
      for (; k + kLanes <= end; k += kLanes)
        for (std::size_t j = 0; j < kLanes; ++j) {
          const float p = pw[k + j];
          t[j] += p;
          f[j] += p * static_cast<float>(k + j - c);  // offset from the chunk start, exact in float
          v[j] += p * vw[k + j];
        }
      double tc = 0, fc = 0;
      for (std::size_t j = 0; j < kLanes; ++j) {
        tc += t[j];
        fc += f[j];
        pv += v[j];
      }
      for (; k < end; ++k) {
        tc += pw[k];
        fc += static_cast<double>(pw[k]) * static_cast<double>(k - c);
        pv += static_cast<double>(pw[k]) * vw[k];
      }
      ptot += tc;
      pf += fc + tc * static_cast<double>(c);
    }
  }
  // Dominant bin: the largest power (vectorized max), then its first occurrence.
  float pmax = 0;
  {
    std::size_t k = dominant_first_bin_;
    V8 m8 = {};
    for (; k + kLanes <= half + 1; k += kLanes) {
      const V8 v = load8(&pw[k]);
      m8 = v > m8 ? v : m8;
    }
    for (std::size_t j = 0; j < kLanes; ++j) pmax = std::max(pmax, m8[j]);
    for (; k <= half; ++k) pmax = std::max(pmax, pw[k]);
  }
  std::size_t best = dominant_first_bin_;
  while (best < half && pw[best] != pmax) ++best;
  out.spectral_centroid_hz = ptot > 0 ? pf / ptot * df_ : 0.0;
  out.dominant_hz = static_cast<double>(best) * df_;
  out.dominant_amplitude = std::sqrt(pw[best]) * amp_scale;
  out.velocity_rms_mm_s = 1000.0 * std::sqrt(pv * pscale * vel_scale_);
  const double v = out.velocity_rms_mm_s;
  out.iso_zone = v < iso_bounds_[0]   ? IsoZone::A
                 : v < iso_bounds_[1] ? IsoZone::B
                 : v < iso_bounds_[2] ? IsoZone::C
                                      : IsoZone::D;

  out.shaft_harmonics.clear();
  if (config_.shaft_hz)
    for (int h = 1; h <= 3; ++h)
      out.shaft_harmonics.push_back(harmonic_peak(power_, h * *config_.shaft_hz, amp_scale));

  // --- envelope spectrum around the structural resonance band (decimated, see constructor) ---
  out.envelope_amplitudes.clear();
  if (config_.bearing) {
    raw_fft_->execute();
    const std::complex<float>* X = raw_fft_->output();
    std::complex<float>* Z = analytic_->input();
    const std::size_t b = env_hi_bin_ - env_lo_bin_ + 1;
    for (std::size_t j = 0; j < b; ++j) Z[j] = 2.0f * X[env_lo_bin_ + j];  // Z[b…M−1] stay 0
    analytic_->execute();
    const float* z = reinterpret_cast<const float*>(analytic_->output());
    float* e = env_fft_->input();
    const std::size_t m = env_m_;
    const float inv_nf = static_cast<float>(inv_n);
    float esum[kLanes] = {};
    for (std::size_t i = 0; i < m; i += kLanes)
      for (std::size_t j = 0; j < kLanes; ++j) {
        const float re = z[2 * (i + j)], im = z[2 * (i + j) + 1];
        const float mag = std::sqrt(re * re + im * im) * inv_nf;
        e[i + j] = mag;
        esum[j] += mag;
      }
    double es = 0;
    for (float s : esum) es += s;
    const float emean = static_cast<float>(es / static_cast<double>(m));
    const float* ew = env_hann_.data();
    for (std::size_t i = 0; i < m; ++i) e[i] = (e[i] - emean) * ew[i];
    env_fft_->execute();
    const float* E = reinterpret_cast<const float*>(env_fft_->output());
    const float env_scale = static_cast<float>(4.0 / static_cast<double>(m));  // 2/Σw, Σw = M/2
    float* ep = env_power_.data();
    for (std::size_t k = 0; k <= m / 2; ++k)
      ep[k] = E[2 * k] * E[2 * k] + E[2 * k + 1] * E[2 * k + 1];
    const DefectMultiples& dm = *config_.bearing;
    for (double mult : {dm.bpfo, dm.bpfi, dm.bsf, dm.ftf})
      for (std::size_t h = 1; h <= config_.defect_harmonics; ++h)
        out.envelope_amplitudes.push_back(harmonic_peak(
            env_power_, static_cast<double>(h) * mult * *config_.shaft_hz, env_scale));
  }
}

void FeatureExtractor::model_input(const Features& f, std::span<float> out) const {
  if (out.size() != input_size_) throw std::invalid_argument("model input: wrong size");
  model_input_of(config_, f, out);
}

void model_input_of(const FeatureConfig& config, const Features& f, std::span<float> out) {
  std::size_t i = 0;
  out[i++] = lg(f.rms);
  out[i++] = lg(f.peak);
  out[i++] = static_cast<float>(f.crest_factor);
  out[i++] = static_cast<float>(f.skewness);
  out[i++] = lg(f.kurtosis);
  out[i++] = lg(f.velocity_rms_mm_s);
  for (double b : f.band_log_energy) out[i++] = static_cast<float>(b);
  out[i++] = static_cast<float>(f.spectral_centroid_hz / (config.sample_rate_hz / 2));
  for (double a : f.shaft_harmonics) out[i++] = lg(a);
  for (double a : f.envelope_amplitudes) out[i++] = lg(a);
}

std::string model_inputs_from_columns(const FeatureConfig& config,
                                      const std::vector<std::string>& columns,
                                      const std::vector<std::vector<double>>& rows,
                                      std::vector<std::vector<float>>& out) {
  // The `vibgate features --model-input` CSV: the model inputs themselves, under their own names.
  if (const auto inputs = model_input_names(config); columns == inputs) {
    for (std::size_t r = 0; r < rows.size(); ++r) {
      const auto& v = rows[r];
      if (v.size() != inputs.size())
        return "row " + std::to_string(r) + " has " + std::to_string(v.size()) +
               " values, expected " + std::to_string(inputs.size());
      std::vector<float> row(v.size());
      for (std::size_t i = 0; i < v.size(); ++i) {
        row[i] = static_cast<float>(v[i]);
        if (!std::isfinite(v[i]) || !std::isfinite(row[i]))
          return "row " + std::to_string(r) + " holds a non-finite value";
      }
      out.push_back(std::move(row));
    }
    return {};
  }
  const auto want = feature_column_names(config);
  if (columns != want) {
    std::size_t i = 0;
    while (i < columns.size() && i < want.size() && columns[i] == want[i]) ++i;
    return "feature columns do not match the asset's configuration at column " + std::to_string(i) +
           " ('" + (i < columns.size() ? columns[i] : std::string("(none)")) + "', expected '" +
           (i < want.size() ? want[i] : std::string("(none)")) + "')";
  }
  const std::size_t bands = config.resolved_band_edges().size() - 1;
  const std::size_t shaft = config.shaft_hz ? 3 : 0;
  const std::size_t env = config.bearing ? 4 * config.defect_harmonics : 0;
  const std::size_t d = model_input_names(config).size();
  Features f;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const auto& v = rows[r];
    if (v.size() != want.size())
      return "row " + std::to_string(r) + " has " + std::to_string(v.size()) +
             " values, expected " + std::to_string(want.size());
    for (double x : v)
      if (!std::isfinite(x)) return "row " + std::to_string(r) + " holds a non-finite value";
    std::size_t i = 0;
    f.rms = v[i++];
    f.peak = v[i++];
    f.peak_to_peak = v[i++];
    f.crest_factor = v[i++];
    f.skewness = v[i++];
    f.kurtosis = v[i++];
    f.velocity_rms_mm_s = v[i++];
    ++i;  // iso_zone: not a model input
    f.spectral_centroid_hz = v[i++];
    f.dominant_hz = v[i++];
    f.dominant_amplitude = v[i++];
    f.band_log_energy.assign(v.begin() + static_cast<std::ptrdiff_t>(i),
                             v.begin() + static_cast<std::ptrdiff_t>(i + bands));
    i += bands;
    f.shaft_harmonics.assign(v.begin() + static_cast<std::ptrdiff_t>(i),
                             v.begin() + static_cast<std::ptrdiff_t>(i + shaft));
    i += shaft;
    f.envelope_amplitudes.assign(v.begin() + static_cast<std::ptrdiff_t>(i),
                                 v.begin() + static_cast<std::ptrdiff_t>(i + env));
    std::vector<float> row(d);
    model_input_of(config, f, row);
    out.push_back(std::move(row));
  }
  return {};
}

}  // namespace vibgate::analytics
