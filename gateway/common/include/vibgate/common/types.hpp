// vibgate/common/types.hpp — the small, dependency-free value types every area shares.
//
// Only the standard library is used here, so ingest, analytics, storage and uplink can all include
// this header without linking each other. Keep it small: a type belongs here only when at least two
// areas exchange it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vibgate {

// Physical unit of acceleration samples.
enum class AccelUnits : std::uint8_t { g = 0, m_per_s2 = 1 };

inline constexpr double kStandardGravity = 9.80665;  // m/s² per g

// Parses "g" or "m/s2" (also "m/s^2", "mps2"); nullopt for anything else.
std::optional<AccelUnits> parse_accel_units(std::string_view s);
std::string_view to_string(AccelUnits u);

// Verdict of one scored window. `alarm` means score >= 1.0 (the learned threshold).
enum class Verdict : std::uint8_t { normal = 0, warning = 1, alarm = 2 };
std::string_view to_string(Verdict v);

// Two clocks stamped at acquisition: monotonic for intervals, wall clock (UTC) for records.
struct Timestamp {
  std::int64_t mono_ns = 0;
  std::int64_t wall_ns = 0;
};

// A contiguous run of samples of one vibration channel.
struct SampleBlock {
  std::string channel;                  // e.g. "pump1/de_accel" or "file.wav#0"
  double sample_rate_hz = 0.0;
  AccelUnits units = AccelUnits::g;
  std::optional<double> shaft_hz;       // running speed when known
  Timestamp first_sample;               // time of samples[0]
  bool gap_before = false;              // samples were lost between the previous block and this
  std::vector<float> samples;
};

// ---- inline definitions (header-only target) ----
inline std::optional<AccelUnits> parse_accel_units(std::string_view s) {
  if (s == "g") return AccelUnits::g;
  if (s == "m/s2" || s == "m/s^2" || s == "mps2" || s == "m/s²") return AccelUnits::m_per_s2;
  return std::nullopt;
}
inline std::string_view to_string(AccelUnits u) { return u == AccelUnits::g ? "g" : "m/s2"; }
inline std::string_view to_string(Verdict v) {
  switch (v) {
    case Verdict::normal: return "normal";
    case Verdict::warning: return "warning";
    case Verdict::alarm: return "alarm";
  }
  return "?";
}

}  // namespace vibgate
