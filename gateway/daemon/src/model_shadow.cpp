// model_shadow.cpp — the shadow evaluation's tally, rule and events (see model_shadow.hpp).
#include "vibgate/daemon/model_shadow.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

namespace vibgate::daemon {

namespace {

std::int64_t wall_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double rate(std::uint64_t n, std::uint64_t of) {
  return of == 0 ? 0.0 : static_cast<double>(n) / static_cast<double>(of);
}

}  // namespace

std::string validate(const ShadowPolicy& p) {
  if (p.duration.count() < 1) return "shadow_s: must be at least 1 s";
  if (!(p.max_alarm_ratio >= 1.0) || !std::isfinite(p.max_alarm_ratio))
    return "shadow_max_alarm_ratio: must be a number >= 1";
  if (p.min_windows < 1) return "shadow_min_windows: must be at least 1";
  if (!(p.alarm_margin >= 0.0 && p.alarm_margin <= 1.0))
    return "shadow_alarm_margin: must be between 0 and 1";
  return "";
}

void ShadowTally::add(double active_score, Verdict active, double shadow_score, Verdict shadow) {
  ++windows;
  shadow_alarms += shadow == Verdict::alarm;
  shadow_warnings += shadow == Verdict::warning;
  active_alarms += active == Verdict::alarm;
  active_warnings += active == Verdict::warning;
  if (std::isfinite(shadow_score)) {
    shadow_max = std::max(shadow_max, shadow_score);
    shadow_sum += shadow_score;
  }
  if (std::isfinite(active_score)) {
    active_max = std::max(active_max, active_score);
    active_sum += active_score;
  }
}

double ShadowTally::shadow_alarm_rate() const { return rate(shadow_alarms, windows); }
double ShadowTally::active_alarm_rate() const { return rate(active_alarms, windows); }
double ShadowTally::shadow_mean() const {
  return windows == 0 ? 0.0 : shadow_sum / static_cast<double>(windows);
}
double ShadowTally::active_mean() const {
  return windows == 0 ? 0.0 : active_sum / static_cast<double>(windows);
}

std::string percent(double r) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f %%", 100.0 * r);
  return b;
}

ShadowDecision judge_shadow(const ShadowTally& t, const ShadowPolicy& p,
                            std::chrono::milliseconds elapsed) {
  ShadowDecision d;
  if (elapsed < p.duration) return d;
  if (t.windows < p.min_windows) {
    if (elapsed < 2 * p.duration) return d;
    d.outcome = ShadowOutcome::reject;
    d.reason = "rejected after shadow: only " + std::to_string(t.windows) + " windows in " +
               std::to_string(std::chrono::duration_cast<std::chrono::seconds>(elapsed).count()) +
               " s (shadow_min_windows is " + std::to_string(p.min_windows) + ")";
    return d;
  }
  const double s = t.shadow_alarm_rate(), a = t.active_alarm_rate();
  const double limit = std::max(p.max_alarm_ratio * a, a + p.alarm_margin);
  const std::string numbers =
      std::to_string(t.windows) + " windows, alarm rate " + percent(s) + " vs active " + percent(a);
  if (s > limit) {
    d.outcome = ShadowOutcome::reject;
    d.reason = "rolled back after shadow: " + numbers + " (limit " + percent(limit) + ")";
  } else {
    d.outcome = ShadowOutcome::promote;
    d.reason = "promoted after shadow: " + numbers;
  }
  return d;
}

std::string shadow_progress_text(const ShadowTally& t, double progress) {
  const long pct = std::lround(100.0 * std::clamp(progress, 0.0, 1.0));
  return "shadow " + std::to_string(pct) + "% (" + std::to_string(t.windows) + " windows, " +
         std::to_string(t.shadow_alarms) + " alarms vs active " + std::to_string(t.active_alarms) +
         ")";
}

storage::ModelEvent make_model_event(const ModelEventInfo& i) {
  storage::ModelEvent e;
  e.asset = i.asset;
  e.wall_ms = i.wall_ms != 0 ? i.wall_ms : wall_now_ms();
  e.metrics = {{"event", i.event},
               {"point", i.point.empty() ? i.asset : i.point},
               {"version", i.version},
               {"active_version", i.active_version},
               {"reason", i.reason},
               {"bundle_id", i.bundle_id},
               {"shadow_windows", static_cast<std::int64_t>(i.shadow_windows)},
               {"shadow_alarm_rate", i.shadow_alarm_rate},
               {"active_alarm_rate", i.active_alarm_rate}};
  return e;
}

}  // namespace vibgate::daemon
