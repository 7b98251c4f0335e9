// synth.cpp — the machine vibration model (see synth.hpp for the physics it stands in for).
#include "vibgate/analytics/synth.hpp"

#include <cmath>

namespace vibgate::analytics {
namespace {
constexpr double kPi = 3.14159265358979323846;
}

MachineSynth::MachineSynth(const MachineModel& m) : m_(m), rng_(m.seed) {
  const double theta = 2 * kPi * m_.resonance_hz / m_.sample_rate_hz;
  const double r = std::exp(-kPi * m_.resonance_bandwidth_hz / m_.sample_rate_hz);
  a1_ = 2 * r * std::cos(theta);
  a2_ = -r * r;
  // Output variance of the two-pole resonator for unit white input (closed form).
  const double r2 = r * r, c = std::cos(theta);
  const double var = (1 + r2) / ((1 - r2) * ((1 + r2) * (1 + r2) - 4 * r2 * c * c));
  noise_gain_ = m_.noise_g / std::sqrt(var);
  impulse_gain_ = std::sin(theta);  // impulse response peak ≈ 1/sin θ → unit peak
  next_impact_s_ = m_.fault_start_s;
}

double MachineSynth::time_s() const { return static_cast<double>(n_) / m_.sample_rate_hz; }

double MachineSynth::gauss() {
  // Box–Muller on the standard's fully specified engine: identical streams on every platform.
  const double u1 = (static_cast<double>(rng_() >> 11) + 0.5) * 0x1.0p-53;
  const double u2 = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
  return std::sqrt(-2 * std::log(u1)) * std::cos(2 * kPi * u2);
}

void MachineSynth::generate(std::span<float> out) {
  const double fs = m_.sample_rate_hz;
  const double defect_hz = m_.defect_multiple * m_.shaft_hz;
  for (float& o : out) {
    const double t = static_cast<double>(n_) / fs;
    double a = 0;
    for (int h = 0; h < 3; ++h) a += m_.harmonic_g[h] * std::sin(2 * kPi * (h + 1) * m_.shaft_hz * t + h);
    const double y = a1_ * y1_ + a2_ * y2_ + gauss();
    y2_ = y1_;
    y1_ = y;
    a += noise_gain_ * y;
    double impulse = 0;
    if (m_.defect != DefectKind::none && t >= next_impact_s_) {
      double peak = m_.fault_peak_g + m_.fault_growth_per_s * (t - m_.fault_start_s);
      if (m_.defect != DefectKind::outer_race)  // load zone modulation once per revolution
        peak *= 0.5 * (1 + std::cos(2 * kPi * m_.shaft_hz * t));
      impulse = peak * impulse_gain_;
      next_impact_s_ += (1 + 0.01 * gauss()) / defect_hz;
    }
    const double rr = a1_ * r1_ + a2_ * r2_ + impulse;
    r2_ = r1_;
    r1_ = rr;
    a += rr;
    o = static_cast<float>(a);
    ++n_;
  }
}

}  // namespace vibgate::analytics
