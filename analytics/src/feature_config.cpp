// feature_config.cpp — validation, derived values and the stable identity of a FeatureConfig.
#include "vibgate/analytics/feature_config.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace vibgate::analytics {
namespace {

constexpr double kPi = 3.14159265358979323846;

[[noreturn]] void fail(const std::string& key, const std::string& problem) {
  throw std::invalid_argument(key + ": " + problem);
}

std::string fmt(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

char to_char(IsoZone z) { return static_cast<char>('A' + static_cast<int>(z)); }

DefectMultiples defect_multiples(const BearingGeometry& g) {
  if (g.balls < 3) fail("bearing.balls", "must be at least 3");
  if (!(g.ball_diameter > 0)) fail("bearing.ball_diameter", "must be positive");
  if (!(g.pitch_diameter > g.ball_diameter))
    fail("bearing.pitch_diameter", "must be larger than the ball diameter");
  if (!(g.contact_angle_deg >= 0 && g.contact_angle_deg <= 60))
    fail("bearing.contact_angle", "must be within 0…60 degrees");
  const double r = g.ball_diameter / g.pitch_diameter * std::cos(g.contact_angle_deg * kPi / 180);
  const double n = g.balls;
  return DefectMultiples{n / 2 * (1 - r), n / 2 * (1 + r),
                         g.pitch_diameter / (2 * g.ball_diameter) * (1 - r * r), 0.5 * (1 - r)};
}

std::size_t FeatureConfig::hop() const {
  // Clamped so that even an unvalidated overlap gives a hop within 1…window_length.
  const double o = std::isfinite(overlap) ? std::clamp(overlap, 0.0, 0.9375) : 0.5;
  const auto h = static_cast<std::size_t>(std::floor(static_cast<double>(window_length) * (1 - o)));
  return h == 0 ? 1 : h;
}

double FeatureConfig::resolved_envelope_lo_hz() const {
  return envelope_lo_hz > 0 ? envelope_lo_hz : sample_rate_hz / 12;
}
double FeatureConfig::resolved_envelope_hi_hz() const {
  return envelope_hi_hz > 0 ? envelope_hi_hz : sample_rate_hz / 4;
}

std::vector<double> FeatureConfig::resolved_band_edges() const {
  if (!band_edges_hz.empty()) return band_edges_hz;
  const double df = sample_rate_hz / static_cast<double>(window_length);
  // 16 bins up: the lowest log band then holds ~6 bins, so its log energy is not dominated by
  // the heavy lower tail of a 2-bin chi-square estimate (seen as false alarms on IMS data).
  const double lo = std::max(10.0, 16 * df), hi = sample_rate_hz / 2;
  std::vector<double> e(band_count + 1);
  for (std::size_t i = 0; i <= band_count; ++i)
    e[i] = lo * std::pow(hi / lo, static_cast<double>(i) / static_cast<double>(band_count));
  e.back() = hi;
  return e;
}

void FeatureConfig::validate() const {
  if (!(sample_rate_hz >= 1000 && sample_rate_hz <= 100000))
    fail("sample_rate", "must be within 1000…100000 Hz (got " + fmt(sample_rate_hz) + ")");
  if (window_length < 256 || window_length > 65536 || (window_length & (window_length - 1)) != 0)
    fail("window", "must be a power of two within 256…65536 (got " +
                       std::to_string(window_length) + ")");
  if (!(overlap >= 0 && overlap <= 0.9375)) fail("overlap", "must be within 0…0.9375");
  const double nyq = sample_rate_hz / 2, df = sample_rate_hz / static_cast<double>(window_length);
  if (!(velocity_lo_hz > 0 && velocity_lo_hz < velocity_hi_hz && velocity_hi_hz <= nyq))
    fail("velocity_band", "must satisfy 0 < low < high <= fs/2");
  if (std::floor(velocity_hi_hz / df) < std::ceil(velocity_lo_hz / df))
    fail("velocity_band", "holds no FFT bin at this window length");
  if (band_edges_hz.empty() && (band_count < 1 || band_count > 256))
    fail("bands", "must be within 1…256");
  const auto edges = resolved_band_edges();
  if (edges.size() < 2) fail("band_edges", "needs at least two edges");
  for (std::size_t i = 0; i + 1 < edges.size(); ++i) {
    if (!(edges[i] >= 0 && edges[i] < edges[i + 1]))
      fail("band_edges", "must be strictly ascending and non-negative");
    const double first = std::ceil(edges[i] / df);
    const double last_excl = std::ceil(edges[i + 1] / df);
    const bool has_bin = (last_excl > first) || (i + 2 == edges.size() && edges[i + 1] >= first * df);
    if (!has_bin)
      fail("bands", "band " + std::to_string(i) + " (" + fmt(edges[i]) + "…" + fmt(edges[i + 1]) +
                        " Hz) holds no FFT bin; use fewer bands or a longer window");
  }
  if (edges.back() > nyq + 1e-9) fail("band_edges", "last edge is above fs/2");
  if (shaft_hz && !(*shaft_hz > 0 && *shaft_hz < nyq / 3))
    fail("shaft_speed", "must be positive and below fs/6 so that 3× fits the spectrum");
  if (bearing) {
    if (!shaft_hz) fail("bearing", "needs the shaft speed");
    const auto& b = *bearing;
    for (double m : {b.bpfo, b.bpfi, b.bsf, b.ftf})
      if (!(m > 0 && m < 100)) fail("bearing", "defect multiples must be within 0…100");
    const double lo = resolved_envelope_lo_hz(), hi = resolved_envelope_hi_hz();
    if (!(lo > 0 && lo < hi && hi < nyq)) fail("envelope_band", "must satisfy 0 < low < high < fs/2");
    if (defect_harmonics < 1 || defect_harmonics > 10) fail("harmonics", "must be within 1…10");
  }
}

std::string FeatureConfig::canonical() const {
  std::string s = "vibgate.features.v1";
  s += ";fs=" + fmt(sample_rate_hz) + ";n=" + std::to_string(window_length);
  // overlap is left out on purpose: it chooses which windows are scored, not what a window's
  // features are, so a model may score with a different hop than it was trained with.
  s += ";units=" + std::string(to_string(units));
  s += ";bands=";
  for (double e : resolved_band_edges()) s += fmt(e) + ",";
  s += ";vel=" + fmt(velocity_lo_hz) + "," + fmt(velocity_hi_hz);
  s += ";iso=" + std::to_string(static_cast<int>(iso_group)) + "," +
       std::to_string(static_cast<int>(iso_mounting));
  s += ";shaft=" + (shaft_hz ? fmt(*shaft_hz) : std::string("none"));
  if (bearing) {
    s += ";bearing=" + fmt(bearing->bpfo) + "," + fmt(bearing->bpfi) + "," + fmt(bearing->bsf) +
         "," + fmt(bearing->ftf);
    s += ";env=" + fmt(resolved_envelope_lo_hz()) + "," + fmt(resolved_envelope_hi_hz());
    s += ";h=" + std::to_string(defect_harmonics);
  } else {
    s += ";bearing=none";
  }
  return s;
}

std::uint64_t FeatureConfig::hash() const {
  std::uint64_t h = 14695981039346656037ULL;  // FNV-1a 64 offset basis
  for (unsigned char c : canonical()) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace vibgate::analytics
