// vibgate/daemon/alarm.hpp — per-asset alarm logic of the daemon (issue 5, docs/alarms.md).
//
// AssetAlarm turns the stream of scored windows of one asset into alarm transitions: levels
// warning and alarm on the normalized anomaly score and on the ISO 10816-3 zone, raised when
// k of the last n windows hit a level, cleared with hysteresis (m consecutive windows clearly
// below the level). It is a pure state machine: no I/O, no threads, no clocks (the window's
// time comes in with the window), no exceptions. One object per asset, used by one thread.
//
// Alert identity: every raised alert gets a per-asset sequence number (1, 2, ...). The store
// assigns the real alert id asynchronously (Store::submit_alert_event's completion); the caller
// keeps the seq -> id map and fills AlertEvent::alert_id for acknowledged/cleared events.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vibgate/common/outbox.hpp"
#include "vibgate/storage/store.hpp"

namespace vibgate::daemon {

// Parameters of the alarm logic (config section [alarm]; defaults as documented).
struct AlarmConfig {
  double score_warning = 0.8;  // normalized score at/above which a window hits "warning"
  double score_alarm = 1.0;    // ...and "alarm" (1.0 = the model's learned threshold)
  int iso_warning_zone = 3;    // ISO 10816-3 zone (1..4 = A..D) at/above which a window hits
  int iso_alarm_zone = 4;      // warning / alarm; 0 = the ISO path is off for that level
  int raise_k = 3;             // a level is raised when k of the last n windows hit it
  int raise_n = 5;
  int clear_m = 5;            // a level clears after m consecutive windows clearly below it:
  double clear_ratio = 0.85;  // score < clear_ratio * threshold and zone < the level's zone

  bool operator==(const AlarmConfig&) const = default;
};

inline constexpr int kMaxRaiseN = 64;  // upper bound of raise_n (the ring of recent windows)
inline constexpr int kMaxClearM = 100000;

// Checks a configuration. Returns "" when valid, else one line naming the first bad key, e.g.
// "alarm.raise_k: must be 1..raise_n (5), got 7".
std::string validate(const AlarmConfig& config);

// Level of an asset. warning/alarm have the values of storage::AlertLevel and Verdict.
enum class AlarmLevel : std::uint8_t { normal = 0, warning = 1, alarm = 2 };
const char* to_string(AlarmLevel level);
// AlarmLevel::normal has no storage level; it maps to warning (never used for events).
storage::AlertLevel to_alert_level(AlarmLevel level);

// What made a window hit a level (a bit set: score = 1, iso = 2).
enum class AlarmCause : std::uint8_t { none = 0, score = 1, iso = 2, both = 3 };
const char* to_string(AlarmCause cause);  // "none", "score", "iso", "score+iso"

// One scored window of the asset (from the analytics), with its wall-clock time.
struct WindowInput {
  std::int64_t wall_ms = 0;  // time of the window, ms since the Unix epoch (UTC)
  double score = 0.0;        // normalized anomaly score; NaN/inf = invalid
  int iso_zone = 0;          // 1..4 = A..D; 0 (or anything else) = unknown
  double velocity_rms_mm_s = 0.0;
  std::vector<Metric> features;  // feature summary of the window
  bool gap = false;              // samples were lost in/before this window
};

enum class TransitionKind : std::uint8_t {
  raise,       // normal -> warning|alarm: a new alert
  escalate,    // warning -> alarm: the warning alert is closed, a new alarm alert raised
  deescalate,  // alarm -> warning: the alarm alert is closed, a new warning alert raised
  clear,       // warning|alarm -> normal: the alert is closed
};
const char* to_string(TransitionKind kind);

// One change of level. Carries the window that triggered it.
struct AlarmTransition {
  TransitionKind kind = TransitionKind::raise;
  AlarmLevel from = AlarmLevel::normal;
  AlarmLevel to = AlarmLevel::normal;
  AlarmCause cause = AlarmCause::none;  // what hit the new level (raise/escalate/deescalate);
                                        // none for a clear
  std::string reason;             // the transition: "score 1.43 >= 1.00 in 3 of last 5 windows",
                                  // "cleared: score < 0.85 for 5 windows", ...
  std::string closed_reason;      // reason of the cleared event of cleared_seq (escalate:
                                  // "escalated to alarm"; deescalate: the alarm's clear reason)
  std::uint64_t raised_seq = 0;   // alert opened by this transition (0: none)
  std::uint64_t cleared_seq = 0;  // alert closed by this transition (0: none)
  bool cleared_was_acknowledged = false;
  // The triggering window.
  std::int64_t wall_ms = 0;
  double score = 0.0;
  int iso_zone = 0;
  double velocity_rms_mm_s = 0.0;
  std::vector<Metric> features;
};

// Result of an operator acknowledgement.
enum class AckResult : std::uint8_t {
  acknowledged,          // applied now: store an acknowledged event for the alert
  already_acknowledged,  // idempotent repeat: nothing to store
  no_active_alert,       // level normal, or the given seq is not the active alert
};
const char* to_string(AckResult result);

// Snapshot of an asset's alarm state, for the Modbus facade, the CLI and health reporting.
struct AlarmStatus {
  AlarmLevel level = AlarmLevel::normal;
  std::uint64_t active_seq = 0;           // the active alert (0 when normal)
  bool acknowledged = false;              // the active alert was acknowledged
  AlarmCause cause = AlarmCause::none;    // cause of the active alert
  std::int64_t active_since_ms = 0;       // wall_ms of the transition that opened it
  int recent_windows = 0;                 // valid windows in the ring (<= raise_n)
  int warning_hits = 0;                   // of those, windows hitting warning (or alarm)
  int alarm_hits = 0;                     // ...hitting alarm
  int warning_clear_streak = 0;           // consecutive windows clearly below warning (capped at m)
  int alarm_clear_streak = 0;             // ...below alarm
  std::uint64_t windows = 0;              // windows seen in total
  std::uint64_t no_evidence_windows = 0;  // of those, with gap or invalid score
  std::uint64_t transitions = 0;          // transitions so far
};

// The alarm state machine of one asset.
class AssetAlarm {
 public:
  // Precondition: validate(config) is empty (an invalid config is clamped to safe values).
  explicit AssetAlarm(AlarmConfig config = {});

  // A fresh state machine with `config` that continues `previous`'s alert numbering (the caller's
  // seq -> alert id map stays valid). For replacing the parameters of an asset that is normal.
  static AssetAlarm continuing(AlarmConfig config, const AssetAlarm& previous) {
    AssetAlarm a(config);
    a.last_seq_ = previous.last_seq_;
    return a;
  }

  // Feeds one window (in time order). Returns the transition it caused, if any (at most one
  // per window). A window with `gap` or a non-finite score is "no evidence": it is counted but
  // changes neither the ring of recent windows nor the clear streaks.
  std::optional<AlarmTransition> on_window(const WindowInput& window);

  // Operator acknowledgement of the active alert (seq 0: whichever is active). Changes no
  // level; acknowledging twice is idempotent. A new alert (escalation, de-escalation, a later
  // raise) starts unacknowledged.
  AckResult acknowledge(std::uint64_t seq = 0);

  AlarmLevel level() const { return level_; }
  std::uint64_t active_seq() const { return active_seq_; }
  bool acknowledged() const { return acknowledged_; }
  AlarmStatus status() const;
  const AlarmConfig& config() const { return config_; }

 private:
  // One valid window in the ring, reduced to what raising needs.
  struct Entry {
    double score = 0.0;
    int iso_zone = 0;
    std::uint8_t hits = 0;  // kWarnScore | kWarnIso | kAlarmScore | kAlarmIso
  };
  int count_hits(std::uint8_t mask) const;
  double peak_score(std::uint8_t mask) const;
  void forget_hits(std::uint8_t mask);
  std::string raise_reason(AlarmLevel level) const;
  std::string clear_reason(AlarmLevel level) const;
  AlarmCause ring_cause(AlarmLevel level) const;
  AlarmTransition make_transition(TransitionKind kind, AlarmLevel to, const WindowInput& w);

  AlarmConfig config_;
  std::vector<Entry> ring_;  // capacity raise_n, oldest first once full (circular)
  std::size_t ring_next_ = 0;
  std::size_t ring_size_ = 0;
  int warning_clear_streak_ = 0;
  int alarm_clear_streak_ = 0;
  AlarmLevel level_ = AlarmLevel::normal;
  AlarmCause cause_ = AlarmCause::none;
  std::uint64_t active_seq_ = 0;
  std::uint64_t last_seq_ = 0;
  bool acknowledged_ = false;
  std::int64_t active_since_ms_ = 0;
  std::uint64_t windows_ = 0;
  std::uint64_t no_evidence_windows_ = 0;
  std::uint64_t transitions_ = 0;
};

// A storage event for one alert, identified by its per-asset seq. event.alert_id is left 0:
// for acknowledged/cleared events the caller sets it from its seq -> alert id map (raised
// events get their id from the store's completion).
struct SeqAlertEvent {
  std::uint64_t seq = 0;
  storage::AlertEvent event;
};

// The storage events of a transition, in submit order: the raise of the new alert first (so an
// escalation reaches the uplink as soon as possible), then the clear of the old one. Store a
// waveform snapshot for every raised alert (Snapshot::alert_id = the raise's id).
std::vector<SeqAlertEvent> to_alert_events(const AlarmTransition& transition,
                                           std::string_view asset);

// The storage event of an applied acknowledgement of alert `seq` (alert_id left 0, see above).
SeqAlertEvent acknowledgement_event(std::uint64_t seq, AlarmLevel level, std::string_view asset,
                                    std::int64_t wall_ms, std::string_view by);

}  // namespace vibgate::daemon
