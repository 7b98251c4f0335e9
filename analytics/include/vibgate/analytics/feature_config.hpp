// vibgate/analytics/feature_config.hpp — what the feature extractor computes, and its identity.
//
// A FeatureConfig fully determines the feature vector (see docs/features.md). Its hash is stored in
// every model file, so a model is never applied to features computed differently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vibgate/common/types.hpp"

namespace vibgate::analytics {

enum class IsoGroup : std::uint8_t { group1 = 1, group2 = 2 };  // large / medium machines
enum class IsoMounting : std::uint8_t { rigid = 0, flexible = 1 };
enum class IsoZone : std::uint8_t { A = 0, B = 1, C = 2, D = 3 };

char to_char(IsoZone z);

// Bearing defect frequencies as multiples of shaft speed.
struct DefectMultiples {
  double bpfo = 0, bpfi = 0, bsf = 0, ftf = 0;
};

// Rolling-element bearing geometry (diameters in any one unit; contact angle in degrees).
struct BearingGeometry {
  int balls = 0;
  double ball_diameter = 0;
  double pitch_diameter = 0;
  double contact_angle_deg = 0;
};

// Defect multiples from geometry (docs/features.md). Throws std::invalid_argument naming the
// field when the geometry is impossible (balls < 3, d <= 0, d >= D, angle outside 0..60°).
DefectMultiples defect_multiples(const BearingGeometry& g);

struct FeatureConfig {
  double sample_rate_hz = 0;       // required, 1 kHz … 100 kHz
  std::size_t window_length = 4096;  // power of two, 256 … 65536
  double overlap = 0.5;            // 0 … 0.9375
  AccelUnits units = AccelUnits::g;
  std::size_t band_count = 16;     // log-spaced bands when band_edges_hz is empty
  std::vector<double> band_edges_hz;  // explicit ascending edges (B+1 values), optional
  double velocity_lo_hz = 10.0;
  double velocity_hi_hz = 1000.0;
  IsoGroup iso_group = IsoGroup::group2;
  IsoMounting iso_mounting = IsoMounting::rigid;
  std::optional<double> shaft_hz;  // running speed
  std::optional<DefectMultiples> bearing;  // needs shaft_hz
  double envelope_lo_hz = 0;       // 0 → fs/12
  double envelope_hi_hz = 0;       // 0 → fs/4
  std::size_t defect_harmonics = 3;

  // Throws std::invalid_argument with "<key>: <problem>" for the first invalid setting.
  void validate() const;

  std::size_t hop() const;                       // samples between window starts
  std::vector<double> resolved_band_edges() const;  // B+1 edges in Hz
  double resolved_envelope_lo_hz() const;
  double resolved_envelope_hi_hz() const;

  // Stable 64-bit FNV-1a over a canonical text form (canonical()); same config → same hash on
  // every platform and version of this format.
  std::string canonical() const;
  std::uint64_t hash() const;
};

}  // namespace vibgate::analytics
