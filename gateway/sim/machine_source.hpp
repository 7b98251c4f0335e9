// machine_source.hpp — what a simulated machine produces: a stream of vibration samples (the
// analytics MachineSynth model, or a looped recording) and the process values that derived tags
// expose (speed, load, temperature, run state).
//
// Everything is a deterministic function of simulated time (seconds since the simulator started)
// and of the configured seed; nothing here reads a clock. Not thread-safe: the simulator's single
// event loop owns these objects.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "sim_config.hpp"
#include "vibgate/analytics/synth.hpp"

namespace vibgate::sim {

// Vibration of a stopped machine relative to running (background noise of the plant).
inline constexpr float kStandstillGain = 0.02f;

// Process values of one machine. Shared by every tag that derives from it, so they agree.
class ProcessModel {
 public:
  explicit ProcessModel(const MachineConfig& m);

  bool running(double t) const;
  double speed_rpm(double t) const;     // shaft speed · 60 while running, else 0
  double load_percent(double t) const;  // load_percent + swing · sin(2πt/period) while running
  double fault_g(double t) const;       // synth defect impact peak at t (0 before the fault)
  // Steady temperature (ambient + rise·load/100 + heat·fault while running) seen through a
  // first-order lag integrated in fixed 100 ms steps of simulated time: the value at t does not
  // depend on how often or when it is asked. t must not decrease between calls.
  double temperature_c(double t);

 private:
  double steady_temperature_c(double t) const;

  const MachineConfig* m_;
  double temp_c_;
  double temp_t_ = 0;
};

// An endless stream of acceleration samples (g) at one rate, from one machine.
class SampleStream {
 public:
  // `consumer` distinguishes several sensors on one synth machine: consumer 0 uses the machine's
  // seed (the stream equals MachineSynth with that seed), consumer k a seed derived from it.
  // Replay machines ignore it (every consumer plays the recording from its start).
  // `rate_hz` must equal the recording's rate for replay (checked by the configuration).
  SampleStream(const MachineConfig& m, const ProcessModel& process, double rate_hz, std::uint64_t consumer);

  // Fills `out` with the next samples; samples at instants when the machine is stopped are scaled
  // by kStandstillGain.
  void generate(std::span<float> out);
  // Skips n samples without computing them (replay: advances the cursor; synth: the model's
  // internal clock is not advanced, so the stream simply continues — used only after stalls).
  void skip(std::uint64_t n);
  std::uint64_t position() const { return n_; }  // samples produced or skipped so far

 private:
  const MachineConfig* m_;
  const ProcessModel* process_;
  double rate_hz_;
  std::optional<analytics::MachineSynth> synth_;
  std::size_t cursor_ = 0;  // replay
  std::uint64_t n_ = 0;
};

}  // namespace vibgate::sim
