// alarm.cpp — AssetAlarm: the per-asset alarm state machine (k-of-n raise, hysteresis clear),
// its configuration check and the mapping of transitions to storage alert events.
#include "vibgate/daemon/alarm.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <initializer_list>

namespace vibgate::daemon {

namespace {

// Hit bits of one window. A window that hits alarm also hits warning.
constexpr std::uint8_t kWarnScore = 1;
constexpr std::uint8_t kWarnIso = 2;
constexpr std::uint8_t kAlarmScore = 4;
constexpr std::uint8_t kAlarmIso = 8;
constexpr std::uint8_t kWarn = kWarnScore | kWarnIso;
constexpr std::uint8_t kAlarm = kAlarmScore | kAlarmIso;
constexpr std::uint8_t kAll = kWarn | kAlarm;

// Concatenation without operator+ on temporaries (GCC 12 gives false -Wrestrict errors there).
std::string cat(std::initializer_list<std::string_view> parts) {
  std::string s;
  for (std::string_view p : parts) s += p;
  return s;
}

std::string fixed2(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

std::string zone_letter(int zone) {
  if (zone < 1 || zone > 4) return "?";
  return std::string(1, static_cast<char>('A' + (zone - 1)));
}

bool zone_known(int zone) { return zone >= 1 && zone <= 4; }

// True when the (enabled) ISO limit `limit_zone` is reached by a known zone.
bool zone_at_or_above(int zone, int limit_zone) {
  return limit_zone > 0 && zone_known(zone) && zone >= limit_zone;
}

std::string bad(const char* key, const std::string& what) {
  std::string s = "alarm.";
  s += key;
  s += ": ";
  s += what;
  return s;
}

std::string got(const std::string& what, double v) {
  std::string s = what;
  s += ", got ";
  s += std::isfinite(v) ? fixed2(v) : (std::isnan(v) ? "nan" : "inf");
  return s;
}

std::string got(const std::string& what, int v) {
  std::string s = what;
  s += ", got ";
  s += std::to_string(v);
  return s;
}

// Clamps an invalid configuration to safe values (the constructor's fallback; callers are
// expected to validate() first and refuse to start on an error).
AlarmConfig sanitized(AlarmConfig c) {
  const AlarmConfig d;
  if (!(std::isfinite(c.score_alarm) && c.score_alarm > 0)) c.score_alarm = d.score_alarm;
  if (!(std::isfinite(c.score_warning) && c.score_warning > 0)) c.score_warning = d.score_warning;
  c.score_warning = std::min(c.score_warning, c.score_alarm);
  if (c.iso_alarm_zone < 0 || c.iso_alarm_zone > 4) c.iso_alarm_zone = d.iso_alarm_zone;
  if (c.iso_warning_zone < 0 || c.iso_warning_zone > 4) c.iso_warning_zone = d.iso_warning_zone;
  if (c.iso_alarm_zone > 0 && c.iso_warning_zone > c.iso_alarm_zone)
    c.iso_warning_zone = c.iso_alarm_zone;
  c.raise_n = std::clamp(c.raise_n, 1, kMaxRaiseN);
  c.raise_k = std::clamp(c.raise_k, 1, c.raise_n);
  c.clear_m = std::clamp(c.clear_m, 1, kMaxClearM);
  if (!(std::isfinite(c.clear_ratio) && c.clear_ratio > 0 && c.clear_ratio <= 1))
    c.clear_ratio = d.clear_ratio;
  return c;
}

}  // namespace

std::string validate(const AlarmConfig& c) {
  if (!(std::isfinite(c.score_alarm) && c.score_alarm > 0))
    return bad("score_alarm", got("must be a number > 0", c.score_alarm));
  if (!(std::isfinite(c.score_warning) && c.score_warning > 0))
    return bad("score_warning", got("must be a number > 0", c.score_warning));
  if (c.score_warning > c.score_alarm)
    return bad(
        "score_warning",
        got(cat({"must be <= alarm.score_alarm (", fixed2(c.score_alarm), ")"}), c.score_warning));
  if (c.iso_warning_zone < 0 || c.iso_warning_zone > 4)
    return bad("iso_warning_zone", got("must be 0 (off) or 1..4 (A..D)", c.iso_warning_zone));
  if (c.iso_alarm_zone < 0 || c.iso_alarm_zone > 4)
    return bad("iso_alarm_zone", got("must be 0 (off) or 1..4 (A..D)", c.iso_alarm_zone));
  if (c.iso_alarm_zone > 0 && c.iso_warning_zone > c.iso_alarm_zone)
    return bad(
        "iso_warning_zone",
        got(cat({"must be <= alarm.iso_alarm_zone (", std::to_string(c.iso_alarm_zone), ")"}),
            c.iso_warning_zone));
  if (c.raise_n < 1 || c.raise_n > kMaxRaiseN)
    return bad("raise_n", got(cat({"must be 1..", std::to_string(kMaxRaiseN)}), c.raise_n));
  if (c.raise_k < 1 || c.raise_k > c.raise_n)
    return bad("raise_k",
               got(cat({"must be 1..raise_n (", std::to_string(c.raise_n), ")"}), c.raise_k));
  if (c.clear_m < 1 || c.clear_m > kMaxClearM)
    return bad("clear_m", got(cat({"must be 1..", std::to_string(kMaxClearM)}), c.clear_m));
  if (!(std::isfinite(c.clear_ratio) && c.clear_ratio > 0 && c.clear_ratio <= 1))
    return bad("clear_ratio", got("must be in (0, 1]", c.clear_ratio));
  return {};
}

const char* to_string(AlarmLevel level) {
  switch (level) {
    case AlarmLevel::normal:
      return "normal";
    case AlarmLevel::warning:
      return "warning";
    case AlarmLevel::alarm:
      return "alarm";
  }
  return "?";
}

storage::AlertLevel to_alert_level(AlarmLevel level) {
  return level == AlarmLevel::alarm ? storage::AlertLevel::alarm : storage::AlertLevel::warning;
}

const char* to_string(AlarmCause cause) {
  switch (cause) {
    case AlarmCause::none:
      return "none";
    case AlarmCause::score:
      return "score";
    case AlarmCause::iso:
      return "iso";
    case AlarmCause::both:
      return "score+iso";
  }
  return "?";
}

const char* to_string(TransitionKind kind) {
  switch (kind) {
    case TransitionKind::raise:
      return "raise";
    case TransitionKind::escalate:
      return "escalate";
    case TransitionKind::deescalate:
      return "deescalate";
    case TransitionKind::clear:
      return "clear";
  }
  return "?";
}

const char* to_string(AckResult result) {
  switch (result) {
    case AckResult::acknowledged:
      return "acknowledged";
    case AckResult::already_acknowledged:
      return "already_acknowledged";
    case AckResult::no_active_alert:
      return "no_active_alert";
  }
  return "?";
}

AssetAlarm::AssetAlarm(AlarmConfig config) : config_(sanitized(config)) {
  ring_.resize(static_cast<std::size_t>(config_.raise_n));
}

int AssetAlarm::count_hits(std::uint8_t mask) const {
  int n = 0;
  for (std::size_t i = 0; i < ring_size_; ++i) n += (ring_[i].hits & mask) != 0 ? 1 : 0;
  return n;
}

double AssetAlarm::peak_score(std::uint8_t mask) const {
  double peak = 0.0;
  for (std::size_t i = 0; i < ring_size_; ++i)
    if ((ring_[i].hits & mask) != 0) peak = std::max(peak, ring_[i].score);
  return peak;
}

void AssetAlarm::forget_hits(std::uint8_t mask) {
  for (Entry& e : ring_) e.hits = static_cast<std::uint8_t>(e.hits & ~mask);
}

AlarmCause AssetAlarm::ring_cause(AlarmLevel level) const {
  const bool alarm = level == AlarmLevel::alarm;
  int c = 0;
  if (count_hits(alarm ? kAlarmScore : kWarnScore) > 0) c |= 1;
  if (count_hits(alarm ? kAlarmIso : kWarnIso) > 0) c |= 2;
  return static_cast<AlarmCause>(c);
}

// "score 1.43 >= 1.00 in 3 of last 5 windows; ISO zone D >= D in 1 of last 5 windows"
std::string AssetAlarm::raise_reason(AlarmLevel level) const {
  const bool alarm = level == AlarmLevel::alarm;
  const std::uint8_t score_bit = alarm ? kAlarmScore : kWarnScore;
  const std::uint8_t iso_bit = alarm ? kAlarmIso : kWarnIso;
  const std::string of_last = cat({" of last ", std::to_string(ring_size_), " windows"});
  std::string s;
  if (const int n = count_hits(score_bit); n > 0) {
    s += "score ";
    s += fixed2(peak_score(score_bit));
    s += " >= ";
    s += fixed2(alarm ? config_.score_alarm : config_.score_warning);
    s += " in ";
    s += std::to_string(n);
    s += of_last;
  }
  if (const int n = count_hits(iso_bit); n > 0) {
    int peak = 0;
    for (std::size_t i = 0; i < ring_size_; ++i)
      if ((ring_[i].hits & iso_bit) != 0) peak = std::max(peak, ring_[i].iso_zone);
    // A warning ISO hit may come from the alarm zone when the warning zone is off.
    int limit = alarm ? config_.iso_alarm_zone : config_.iso_warning_zone;
    if (limit == 0) limit = config_.iso_alarm_zone;
    if (!s.empty()) s += "; ";
    s += "ISO zone ";
    s += zone_letter(peak);
    s += " >= ";
    s += zone_letter(limit);
    s += " in ";
    s += std::to_string(n);
    s += of_last;
  }
  return s;
}

// "cleared: score < 0.85 and ISO zone < D for 5 windows" (without "cleared: ").
std::string AssetAlarm::clear_reason(AlarmLevel level) const {
  const bool alarm = level == AlarmLevel::alarm;
  std::string s = "score < ";
  s += fixed2(config_.clear_ratio * (alarm ? config_.score_alarm : config_.score_warning));
  int zone = alarm ? config_.iso_alarm_zone : config_.iso_warning_zone;
  if (zone == 0) zone = config_.iso_alarm_zone;
  if (zone > 0) {
    s += " and ISO zone < ";
    s += zone_letter(zone);
  }
  s += " for ";
  s += std::to_string(config_.clear_m);
  s += config_.clear_m == 1 ? " window" : " windows";
  return s;
}

AlarmTransition AssetAlarm::make_transition(TransitionKind kind, AlarmLevel to,
                                            const WindowInput& w) {
  AlarmTransition t;
  t.kind = kind;
  t.from = level_;
  t.to = to;
  t.wall_ms = w.wall_ms;
  t.score = w.score;
  t.iso_zone = w.iso_zone;
  t.velocity_rms_mm_s = w.velocity_rms_mm_s;
  t.features = w.features;
  if (level_ != AlarmLevel::normal) {
    t.cleared_seq = active_seq_;
    t.cleared_was_acknowledged = acknowledged_;
  }
  if (to != AlarmLevel::normal) {
    t.raised_seq = ++last_seq_;
    t.cause = ring_cause(to);
    active_seq_ = t.raised_seq;
    active_since_ms_ = w.wall_ms;
  } else {
    active_seq_ = 0;
    active_since_ms_ = 0;
  }
  cause_ = t.cause;
  acknowledged_ = false;
  level_ = to;
  ++transitions_;
  return t;
}

std::optional<AlarmTransition> AssetAlarm::on_window(const WindowInput& w) {
  ++windows_;
  if (w.gap || !std::isfinite(w.score)) {  // no evidence: neither raises nor clears
    ++no_evidence_windows_;
    return std::nullopt;
  }
  const AlarmConfig& c = config_;

  // What this window hits, and which levels it is clearly below.
  const bool alarm_score = w.score >= c.score_alarm;
  const bool alarm_iso = zone_at_or_above(w.iso_zone, c.iso_alarm_zone);
  const bool warn_score = alarm_score || w.score >= c.score_warning;
  const bool warn_iso = alarm_iso || zone_at_or_above(w.iso_zone, c.iso_warning_zone);
  Entry e;
  e.score = w.score;
  e.iso_zone = w.iso_zone;
  e.hits = static_cast<std::uint8_t>((warn_score ? kWarnScore : 0) | (warn_iso ? kWarnIso : 0) |
                                     (alarm_score ? kAlarmScore : 0) | (alarm_iso ? kAlarmIso : 0));
  ring_[ring_next_] = e;
  ring_next_ = (ring_next_ + 1) % ring_.size();
  ring_size_ = std::min(ring_size_ + 1, ring_.size());

  const bool below_alarm = w.score < c.clear_ratio * c.score_alarm && !alarm_iso;
  const bool below_warning = below_alarm && w.score < c.clear_ratio * c.score_warning &&
                             !zone_at_or_above(w.iso_zone, c.iso_warning_zone);
  alarm_clear_streak_ = below_alarm ? std::min(alarm_clear_streak_ + 1, c.clear_m) : 0;
  warning_clear_streak_ = below_warning ? std::min(warning_clear_streak_ + 1, c.clear_m) : 0;

  switch (level_) {
    case AlarmLevel::alarm:
      if (alarm_clear_streak_ < c.clear_m) return std::nullopt;
      if (warning_clear_streak_ >= c.clear_m) {  // warning is clear too: back to normal
        std::string why = clear_reason(AlarmLevel::warning);
        forget_hits(kAll);
        AlarmTransition t = make_transition(TransitionKind::clear, AlarmLevel::normal, w);
        t.reason = cat({"cleared: ", why});
        t.closed_reason = t.reason;
        return t;
      } else {  // alarm clears, warning is held (not yet clearly below it)
        std::string closed = cat({"cleared: ", clear_reason(AlarmLevel::alarm)});
        forget_hits(kAlarm);
        std::string held = raise_reason(AlarmLevel::warning);
        if (held.empty()) {
          held = cat({"not yet cleared (", clear_reason(AlarmLevel::warning), ")"});
        }
        AlarmTransition t = make_transition(TransitionKind::deescalate, AlarmLevel::warning, w);
        t.reason = "alarm ";
        t.reason += closed;
        t.reason += "; warning persists: ";
        t.reason += held;
        t.closed_reason = closed;
        return t;
      }
    case AlarmLevel::warning:
      if (count_hits(kAlarm) >= c.raise_k) {
        AlarmTransition t = make_transition(TransitionKind::escalate, AlarmLevel::alarm, w);
        t.reason = raise_reason(AlarmLevel::alarm);
        t.closed_reason = "escalated to alarm";
        return t;
      }
      if (warning_clear_streak_ >= c.clear_m) {
        std::string why = clear_reason(AlarmLevel::warning);
        forget_hits(kAll);
        AlarmTransition t = make_transition(TransitionKind::clear, AlarmLevel::normal, w);
        t.reason = cat({"cleared: ", why});
        t.closed_reason = t.reason;
        return t;
      }
      return std::nullopt;
    case AlarmLevel::normal:
      for (AlarmLevel to : {AlarmLevel::alarm, AlarmLevel::warning}) {
        if (count_hits(to == AlarmLevel::alarm ? kAlarm : kWarn) >= c.raise_k) {
          AlarmTransition t = make_transition(TransitionKind::raise, to, w);
          t.reason = raise_reason(to);
          return t;
        }
      }
      return std::nullopt;
  }
  return std::nullopt;
}

AckResult AssetAlarm::acknowledge(std::uint64_t seq) {
  if (level_ == AlarmLevel::normal || (seq != 0 && seq != active_seq_))
    return AckResult::no_active_alert;
  if (acknowledged_) return AckResult::already_acknowledged;
  acknowledged_ = true;
  return AckResult::acknowledged;
}

AlarmStatus AssetAlarm::status() const {
  AlarmStatus s;
  s.level = level_;
  s.active_seq = active_seq_;
  s.acknowledged = acknowledged_;
  s.cause = cause_;
  s.active_since_ms = active_since_ms_;
  s.recent_windows = static_cast<int>(ring_size_);
  s.warning_hits = count_hits(kWarn);
  s.alarm_hits = count_hits(kAlarm);
  s.warning_clear_streak = warning_clear_streak_;
  s.alarm_clear_streak = alarm_clear_streak_;
  s.windows = windows_;
  s.no_evidence_windows = no_evidence_windows_;
  s.transitions = transitions_;
  return s;
}

namespace {

// Context metrics of an alert event, then the window's features (names not repeated).
std::vector<Metric> event_metrics(const AlarmTransition& t) {
  std::vector<Metric> m;
  m.reserve(3 + t.features.size());
  m.push_back({"cause", std::string(to_string(t.cause))});
  m.push_back({"iso_zone", static_cast<std::int64_t>(t.iso_zone)});
  m.push_back({"velocity_rms_mm_s", t.velocity_rms_mm_s});
  for (const Metric& f : t.features) {
    if (f.name == "cause" || f.name == "iso_zone" || f.name == "velocity_rms_mm_s") continue;
    m.push_back(f);
  }
  return m;
}

}  // namespace

std::vector<SeqAlertEvent> to_alert_events(const AlarmTransition& t, std::string_view asset) {
  std::vector<SeqAlertEvent> out;
  const std::vector<Metric> metrics = event_metrics(t);
  if (t.raised_seq != 0) {
    SeqAlertEvent r;
    r.seq = t.raised_seq;
    r.event.kind = storage::AlertState::raised;
    r.event.asset = std::string(asset);
    r.event.level = to_alert_level(t.to);
    r.event.wall_ms = t.wall_ms;
    r.event.reason = t.reason;
    r.event.score = t.score;
    r.event.features = metrics;
    out.push_back(std::move(r));
  }
  if (t.cleared_seq != 0) {
    SeqAlertEvent c;
    c.seq = t.cleared_seq;
    c.event.kind = storage::AlertState::cleared;
    c.event.asset = std::string(asset);
    c.event.level = to_alert_level(t.from);
    c.event.wall_ms = t.wall_ms;
    c.event.reason = t.closed_reason;
    c.event.score = t.score;
    c.event.features = metrics;
    out.push_back(std::move(c));
  }
  return out;
}

SeqAlertEvent acknowledgement_event(std::uint64_t seq, AlarmLevel level, std::string_view asset,
                                    std::int64_t wall_ms, std::string_view by) {
  SeqAlertEvent a;
  a.seq = seq;
  a.event.kind = storage::AlertState::acknowledged;
  a.event.asset = std::string(asset);
  a.event.level = to_alert_level(level);
  a.event.wall_ms = wall_ms;
  a.event.reason = "acknowledged";
  a.event.by = std::string(by);
  return a;
}

}  // namespace vibgate::daemon
