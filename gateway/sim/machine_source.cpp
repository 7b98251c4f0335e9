// machine_source.cpp — process values and sample streams of simulated machines (see the header).
#include "machine_source.hpp"

#include <algorithm>
#include <cmath>

namespace vibgate::sim {
namespace {
constexpr double kPi = 3.14159265358979323846;
constexpr double kThermalStepS = 0.1;
}  // namespace

ProcessModel::ProcessModel(const MachineConfig& m) : m_(&m), temp_c_(0) {
  temp_c_ = steady_temperature_c(0);
}

bool ProcessModel::running(double t) const {
  if (m_->run_s <= 0 || m_->stop_s <= 0) return true;
  return std::fmod(t, m_->run_s + m_->stop_s) < m_->run_s;
}

double ProcessModel::speed_rpm(double t) const { return running(t) ? m_->model.shaft_hz * 60.0 : 0.0; }

double ProcessModel::load_percent(double t) const {
  if (!running(t)) return 0.0;
  return m_->load_percent + m_->load_swing_percent * std::sin(2 * kPi * t / m_->load_period_s);
}

double ProcessModel::fault_g(double t) const {
  const auto& mm = m_->model;
  if (m_->kind != MachineKind::synth || mm.defect == analytics::DefectKind::none || t < mm.fault_start_s)
    return 0.0;
  return mm.fault_peak_g + mm.fault_growth_per_s * (t - mm.fault_start_s);
}

double ProcessModel::steady_temperature_c(double t) const {
  if (!running(t)) return m_->ambient_c;
  return m_->ambient_c + m_->temperature_rise_c * load_percent(t) / 100.0 +
         m_->fault_heat_c_per_g * fault_g(t);
}

double ProcessModel::temperature_c(double t) {
  if (m_->thermal_time_constant_s <= 0) return steady_temperature_c(t);
  const double alpha = 1.0 - std::exp(-kThermalStepS / m_->thermal_time_constant_s);
  // Integer step counts keep the integration independent of floating-point accumulation.
  const auto target_steps = static_cast<std::uint64_t>(std::floor(t / kThermalStepS));
  auto done = static_cast<std::uint64_t>(std::llround(temp_t_ / kThermalStepS));
  for (; done < target_steps; ++done) {
    const double ts = static_cast<double>(done + 1) * kThermalStepS;
    temp_c_ += (steady_temperature_c(ts) - temp_c_) * alpha;
  }
  temp_t_ = static_cast<double>(done) * kThermalStepS;
  return temp_c_;
}

SampleStream::SampleStream(const MachineConfig& m, const ProcessModel& process, double rate_hz,
                           std::uint64_t consumer)
    : m_(&m), process_(&process), rate_hz_(rate_hz) {
  if (m.kind == MachineKind::synth) {
    analytics::MachineModel model = m.model;
    model.sample_rate_hz = rate_hz;
    model.seed = m.model.seed + consumer * 0x9E3779B97F4A7C15ull;  // wraps; consumer 0 = machine seed
    synth_.emplace(model);
  }
}

void SampleStream::generate(std::span<float> out) {
  if (synth_) {
    synth_->generate(out);
  } else {
    const std::vector<float>& rec = *m_->samples;
    std::size_t i = 0;
    while (i < out.size()) {
      const std::size_t k = std::min(out.size() - i, rec.size() - cursor_);
      std::copy_n(rec.begin() + static_cast<std::ptrdiff_t>(cursor_), k, out.begin() + static_cast<std::ptrdiff_t>(i));
      i += k;
      cursor_ = (cursor_ + k) % rec.size();
    }
  }
  if (m_->run_s > 0 && m_->stop_s > 0) {
    for (std::size_t i = 0; i < out.size(); ++i)
      if (!process_->running(static_cast<double>(n_ + i) / rate_hz_)) out[i] *= kStandstillGain;
  }
  n_ += out.size();
}

void SampleStream::skip(std::uint64_t n) {
  if (!synth_) cursor_ = static_cast<std::size_t>((cursor_ + n) % m_->samples->size());
  n_ += n;
}

}  // namespace vibgate::sim
