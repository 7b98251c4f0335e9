// vibgate/analytics/features.hpp — per-window vibration features (docs/features.md).
//
// A FeatureExtractor owns its FFT buffers and scratch space: construct it once per channel/worker,
// then call extract() per window with no allocation and no FFT planning. Not thread-safe per
// object; use one object per thread.
#pragma once

#include <array>
#include <complex>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "vibgate/analytics/feature_config.hpp"

namespace vibgate::analytics {

class RealFft;
class ComplexInverseFft;

struct Features {
  double rms = 0, peak = 0, peak_to_peak = 0, crest_factor = 0, skewness = 0, kurtosis = 0;
  double velocity_rms_mm_s = 0;
  IsoZone iso_zone = IsoZone::A;
  double spectral_centroid_hz = 0, dominant_hz = 0, dominant_amplitude = 0;
  std::vector<double> band_log_energy;       // B values
  std::vector<double> shaft_harmonics;       // 3 values when shaft speed is known, else empty
  std::vector<double> envelope_amplitudes;   // 4·H values (bpfo, bpfi, bsf, ftf × h) or empty
};

// Names of the model-input entries for a configuration, in order (docs/features.md).
std::vector<std::string> model_input_names(const FeatureConfig& config);

// Names of every reported feature column (the `vibgate features` CSV columns after start_s).
std::vector<std::string> feature_column_names(const FeatureConfig& config);

// The model-input vector of `f` computed with `config` (what FeatureExtractor::model_input does;
// out.size() must be model_input_names(config).size()).
void model_input_of(const FeatureConfig& config, const Features& f, std::span<float> out);

// Rows of the `vibgate features --format csv` columns (feature_column_names(config), without
// file/channel/start_s; iso_zone ignored) → model-input rows appended to `out`. Rows of the
// `vibgate features --model-input` columns (model_input_names(config)) are taken as they are.
// Returns "" or a one-line problem (columns differ from the configuration's, short rows,
// non-finite values).
std::string model_inputs_from_columns(const FeatureConfig& config,
                                      const std::vector<std::string>& columns,
                                      const std::vector<std::vector<double>>& rows,
                                      std::vector<std::vector<float>>& out);

class FeatureExtractor {
 public:
  // config must be valid (validate() is called; throws std::invalid_argument otherwise).
  explicit FeatureExtractor(const FeatureConfig& config);
  ~FeatureExtractor();
  FeatureExtractor(const FeatureExtractor&) = delete;
  FeatureExtractor& operator=(const FeatureExtractor&) = delete;

  const FeatureConfig& config() const { return config_; }
  std::size_t model_input_size() const { return input_size_; }

  // Computes all features of one window (exactly window_length samples) into `out`, reusing its
  // vectors' capacity. Thread: the owner's.
  void extract(std::span<const float> window, Features& out);

  // Model input vector of the last extract() (model_input_size() floats).
  void model_input(const Features& f, std::span<float> out) const;

  // Single-sided windowed amplitude spectrum of the last extract() (N/2+1 bins, input units).
  // (Computed on demand from the last extract(); not thread-safe with extract().)
  std::span<const float> amplitude_spectrum() const;
  // Envelope amplitude spectrum of the last extract(): M/2+1 bins of width fs/N, M the decimated
  // envelope length (docs/features.md); empty without a bearing.
  std::span<const float> envelope_spectrum() const;

 private:
  double harmonic_peak(std::span<const float> power, double freq_hz, float scale) const;

  FeatureConfig config_;
  std::size_t n_;
  double df_;
  std::size_t input_size_;
  std::unique_ptr<RealFft> fft_;
  std::unique_ptr<RealFft> raw_fft_;
  std::unique_ptr<ComplexInverseFft> analytic_;
  std::unique_ptr<RealFft> env_fft_;
  std::vector<std::size_t> band_first_bin_;   // B+1 bin boundaries
  std::vector<float> vel_weight_f_;          // per bin (c/(2πf))²/vel_scale_ in the velocity band, else 0
  double vel_scale_ = 1;
  std::vector<float> hann_;
  mutable std::vector<float> amplitude_;      // A_k, filled by amplitude_spectrum()
  std::vector<float> power_;                  // |Xw[k]|²
  mutable std::vector<float> env_amplitude_;  // M/2+1 bins of width df, by envelope_spectrum()
  std::vector<float> env_power_;              // |E[k]|²
  std::vector<float> env_hann_;
  std::size_t env_m_ = 0;                     // decimated envelope length
  std::size_t env_lo_bin_ = 0, env_hi_bin_ = 0;
  std::size_t dominant_first_bin_ = 1;
  std::array<double, 3> iso_bounds_{};
};

}  // namespace vibgate::analytics
