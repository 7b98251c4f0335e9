// vibgate/analytics/synth.hpp — a simple physical vibration model of a rotating machine.
//
// Used by the demo when no recordings are present, by tests, and by the plant simulator.
// Acceleration (g) = shaft harmonics + broadband noise through a structural resonance + bearing
// defect impacts (one per defect period, ±1 % random slip) that ring the same resonance; an inner
// race or ball defect is amplitude-modulated by shaft rotation. The fault can start late and grow.
// Deterministic for a seed; generate() can be called repeatedly to stream.
#pragma once

#include <array>
#include <cstdint>
#include <random>
#include <span>

namespace vibgate::analytics {

enum class DefectKind { none, outer_race, inner_race, ball };

struct MachineModel {
  double sample_rate_hz = 25600;
  double shaft_hz = 29.95;                         // 1797 rpm
  std::array<double, 3> harmonic_g = {0.04, 0.015, 0.008};  // 1×, 2×, 3× peak amplitude
  double noise_g = 0.03;                           // RMS of the resonance-shaped noise
  double resonance_hz = 3500;
  double resonance_bandwidth_hz = 600;
  DefectKind defect = DefectKind::none;
  double defect_multiple = 3.5848;                 // e.g. BPFO of an SKF 6205
  double fault_start_s = 0;                        // impacts begin here
  double fault_peak_g = 0.5;                       // impact ring-down peak at fault start
  double fault_growth_per_s = 0;                   // added to fault_peak_g per second after start
  std::uint64_t seed = 1;
};

class MachineSynth {
 public:
  explicit MachineSynth(const MachineModel& m);
  // Fills `out` with the next samples of the stream. Thread: owner's.
  void generate(std::span<float> out);
  double time_s() const;

 private:
  double gauss();

  MachineModel m_;
  std::mt19937_64 rng_;
  std::uint64_t n_ = 0;
  double a1_, a2_, noise_gain_, impulse_gain_;
  double y1_ = 0, y2_ = 0, r1_ = 0, r2_ = 0;  // noise and impact resonator states
  double next_impact_s_;
};

}  // namespace vibgate::analytics
