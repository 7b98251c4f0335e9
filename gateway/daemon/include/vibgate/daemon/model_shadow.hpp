// vibgate/daemon/model_shadow.hpp — shadow evaluation of a staged model version (issue 9,
// docs/model.md "Shadow evaluation"): the policy, the per-window tally of the shadow and the
// active model on the same windows, the promote/reject rule, and model lifecycle events
// (make_model_event) that go to storage and the uplink. Pure functions and values: no threads,
// no I/O; the daemon's loop thread owns the running evaluations.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "vibgate/common/types.hpp"
#include "vibgate/storage/store.hpp"

namespace vibgate::daemon {

// How long a shadow evaluation runs and when it is rejected ([models] in the configuration).
struct ShadowPolicy {
  std::chrono::seconds duration{600};  // shadow_s: the evaluation period
  double max_alarm_ratio = 3.0;        // shadow_max_alarm_ratio
  std::uint64_t min_windows = 50;      // shadow_min_windows: windows needed for a decision
  double alarm_margin = 0.02;          // shadow_alarm_margin: absolute alarm-rate allowance
  bool operator==(const ShadowPolicy&) const = default;
};

// "" or a one-line error naming the bad field (duration >= 1 s, ratio >= 1, min_windows >= 1,
// margin in [0, 1]).
std::string validate(const ShadowPolicy& p);

// Both models' verdicts on the same windows (only windows both scored are counted).
struct ShadowTally {
  std::uint64_t windows = 0;
  std::uint64_t shadow_alarms = 0, shadow_warnings = 0;  // verdict alarm / warning
  std::uint64_t active_alarms = 0, active_warnings = 0;
  double shadow_max = 0.0, shadow_sum = 0.0;
  double active_max = 0.0, active_sum = 0.0;

  void add(double active_score, Verdict active, double shadow_score, Verdict shadow);
  double shadow_alarm_rate() const;  // alarm windows / windows (0 without windows)
  double active_alarm_rate() const;
  double shadow_mean() const;
  double active_mean() const;
};

enum class ShadowOutcome : std::uint8_t { wait, promote, reject };

struct ShadowDecision {
  ShadowOutcome outcome = ShadowOutcome::wait;
  std::string reason;  // promote/reject: one line with the numbers, for the note and the event
};

// The rule, after `elapsed` of evaluation:
//   * before policy.duration: wait;
//   * fewer than policy.min_windows windows: wait up to 2 × duration, then reject ("too few
//     windows");
//   * reject when shadow_alarm_rate > max(max_alarm_ratio × active_alarm_rate,
//                                          active_alarm_rate + alarm_margin);
//   * else promote.
ShadowDecision judge_shadow(const ShadowTally& t, const ShadowPolicy& p,
                            std::chrono::milliseconds elapsed);

// One line of progress, e.g. "shadow 42% (120 windows, 0 alarms vs active 0)".
std::string shadow_progress_text(const ShadowTally& t, double progress);

// A rate as a percentage with one decimal ("0.1 %").
std::string percent(double rate);

// A model lifecycle event as the daemon stores and uplinks it (RecordKind::model, alert lane).
// Events of the shadow evaluation: "shadow_started", "promoted", "rolled_back", "cancelled";
// the over-the-air delivery adds its own ("bundle_received", "bundle_refused", ...).
struct ModelEventInfo {
  std::string event;
  std::string asset;           // asset name: the Sparkplug device / JSON topic level
  std::string point;           // model key: "<asset>" or "<asset>:<channel>"
  std::string version;         // the version the event is about
  std::string active_version;  // the version active when the event happened (compared against)
  std::string reason;          // one line
  std::string bundle_id;       // the OTA bundle's id; "" when started from the CLI
  std::uint64_t shadow_windows = 0;
  double shadow_alarm_rate = 0.0;  // 0..1
  double active_alarm_rate = 0.0;  // 0..1
  std::int64_t wall_ms = 0;        // event time (ms since the Unix epoch); 0 = now
};

// The event's outbox record: metrics "event", "point", "version", "active_version", "reason",
// "bundle_id" (strings), "shadow_windows" (int64), "shadow_alarm_rate", "active_alarm_rate"
// (doubles, 0..1), always all of them (Sparkplug announces a stable set). Thread: any.
storage::ModelEvent make_model_event(const ModelEventInfo& info);

}  // namespace vibgate::daemon
