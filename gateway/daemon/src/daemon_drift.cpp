// daemon_drift.cpp — the daemon's side of drift monitoring (docs/model.md "Drift"): the latest
// status per point from the analytics worker, the "drifted" change event (log line + health
// record, uplinked), and the drift fields of result records, Prometheus and `vibgate assets`.
// Loop thread only, like the rest of Daemon::Impl.
#include <spdlog/spdlog.h>

#include <cstdio>

#include "daemon_impl.hpp"

namespace vibgate::daemon {
namespace {

std::string fixed2(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

}  // namespace

void Daemon::Impl::on_drift(PointRuntime& a, std::uint64_t generation,
                            analytics::DriftStatus status, std::string feature) {
  using analytics::DriftState;
  if (generation < a.drift.generation) return;  // the previous model's last windows
  if (generation > a.drift.generation) {
    a.drift = PointDrift{};
    a.drift.generation = generation;
  }
  const bool drifted = status.state == DriftState::drifted;
  // A status that carries no PSI (warming up, no reference) never ends a drifted period: only a
  // computed PSI below the release level does (or a new model, which resets everything).
  const bool computed = !status.psi_features.empty();
  if (drifted != a.drift.drifted && (drifted || computed)) {
    std::string detail = "channel ";
    detail += a.channel;
    detail += ", model ";
    detail += a.model_version.empty() ? std::string("-") : a.model_version;
    detail += ": PSI score ";
    detail += fixed2(status.psi_score);
    detail += ", largest feature PSI ";
    detail += fixed2(status.psi_feature_max);
    detail += " (";
    detail += feature;
    detail += ") over ";
    detail += std::to_string(status.windows);
    detail += " windows";
    if (drifted) {
      detail += "; the baseline may no longer fit: check the machine, retrain if it is healthy";
      spdlog::warn("asset '{}': model drift: drifted: {}", a.key, detail);
    } else {
      spdlog::info("asset '{}': model drift: {} again: {}", a.key,
                   analytics::to_string(status.state), detail);
    }
    if (store) {
      storage::HealthEvent e;
      e.device = a.cfg.name;
      e.wall_ms = a.last_window_ms != 0 ? a.last_window_ms : now_ms();
      e.state = drifted ? "drifted" : "drift cleared";
      e.detail = "model drift: " + detail;
      store->submit_health(std::move(e));
    }
    a.drift.drifted = drifted;
  }
  a.drift.status = std::move(status);
  a.drift.feature = std::move(feature);
  a.drift.reported = true;
}

std::string Daemon::Impl::drift_state(const PointRuntime& a) const {
  if (a.model_state != ModelState::scoring || !a.drift.reported) return "n/a";
  return analytics::to_string(a.drift.status.state);
}

void Daemon::Impl::add_drift_metrics(const PointRuntime& a, std::vector<Metric>& out) const {
  if (a.model_state != ModelState::scoring) return;
  if (a.drift.reported && !a.drift.status.psi_features.empty()) {
    out.push_back({"drift_psi_score", a.drift.status.psi_score});
    out.push_back({"drift_psi_feature_max", a.drift.status.psi_feature_max});
    out.push_back({"drift_feature", a.drift.feature});
  }
  out.push_back({"drift_state", drift_state(a)});
}

void Daemon::Impl::collect_drift_metrics(std::vector<MetricSample>& m) const {
  using T = MetricSample::Type;
  for (const auto& a : points) {
    std::vector<std::pair<std::string, std::string>> l{{"asset", a.cfg.name},
                                                       {"channel", a.channel}};
    const bool scoring = a.model_state == ModelState::scoring && a.drift.reported;
    m.push_back(MetricSample{"vibgate_asset_drift_windows",
                             "Scored windows in the drift monitor (the last 2048 at most)",
                             T::gauge, l,
                             scoring ? static_cast<double>(a.drift.status.windows) : 0.0});
    double code = 0;  // 0 n/a, 1 stable, 2 shifting, 3 drifted
    if (scoring) {
      switch (a.drift.status.state) {
        case analytics::DriftState::stable:
          code = 1;
          break;
        case analytics::DriftState::shifting:
          code = 2;
          break;
        case analytics::DriftState::drifted:
          code = 3;
          break;
        default:
          break;
      }
    }
    m.push_back(MetricSample{"vibgate_asset_drift_state",
                             "Drift of the model: 0 n/a, 1 stable, 2 shifting, 3 drifted", T::gauge,
                             l, code});
    const auto& st = a.drift.status;
    if (!scoring || st.psi_features.empty()) continue;
    const char* help = "Population stability index of recent windows against the training data";
    auto with = [&l](std::string what) {
      auto v = l;
      v.emplace_back("what", std::move(what));
      return v;
    };
    m.push_back(
        MetricSample{"vibgate_asset_drift_psi", help, T::gauge, with("score"), st.psi_score});
    // Input names come from the active model; a status of the previous model (same width, the
    // usual case after a retraining) is still labelled correctly, another width is skipped.
    if (!a.model || a.model->input_names.size() != st.psi_features.size()) continue;
    for (std::size_t i = 0; i < st.psi_features.size(); ++i)
      m.push_back(MetricSample{"vibgate_asset_drift_psi", help, T::gauge,
                               with(a.model->input_names[i]),
                               static_cast<double>(st.psi_features[i])});
  }
}

void Daemon::Impl::fill_drift(const PointRuntime& a, AssetInfo& ai) const {
  ai.drift_state = drift_state(a);
  if (a.model_state != ModelState::scoring || !a.drift.reported) return;
  ai.drift_windows = a.drift.status.windows;
  if (a.drift.status.psi_features.empty()) return;
  ai.drift_psi_score = a.drift.status.psi_score;
  ai.drift_psi_feature_max = a.drift.status.psi_feature_max;
  ai.drift_feature = a.drift.feature;
}

}  // namespace vibgate::daemon
