// alarm_test.cpp — the per-asset alarm state machine (vibgate/daemon/alarm.hpp): k-of-n raise,
// the ring of recent windows, hysteresis clear, ISO path, escalation, gaps, acknowledgement,
// configuration messages, storage events, and a table of scripted sequences.
#include "vibgate/daemon/alarm.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace vibgate::daemon {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Feeds windows with increasing wall_ms and records every transition with its window index.
class Driver {
 public:
  explicit Driver(AlarmConfig c = {}) : alarm(c) {}

  std::optional<AlarmTransition> feed(double score, int zone = 0, bool gap = false) {
    WindowInput w;
    w.wall_ms = 1'700'000'000'000 + static_cast<std::int64_t>(index) * 1000;
    w.score = score;
    w.iso_zone = zone;
    w.velocity_rms_mm_s = zone * 2.0;
    w.features = {{"rms_g", score / 10}, {"window", static_cast<std::int64_t>(index)}};
    w.gap = gap;
    auto t = alarm.on_window(w);
    if (t) log.push_back({index, *t});
    ++index;
    return t;
  }
  // Feeds `count` windows of one score; returns the transitions they caused.
  std::vector<AlarmTransition> feed_n(int count, double score, int zone = 0) {
    std::vector<AlarmTransition> out;
    for (int i = 0; i < count; ++i)
      if (auto t = feed(score, zone)) out.push_back(*t);
    return out;
  }

  struct Logged {
    std::size_t window;
    AlarmTransition t;
  };
  AssetAlarm alarm;
  std::size_t index = 0;
  std::vector<Logged> log;
};

AlarmConfig score_only() {
  AlarmConfig c;
  c.iso_warning_zone = 0;
  c.iso_alarm_zone = 0;
  return c;
}

// ---- k of n ----

TEST(AlarmRaise, ExactlyAtTheKthHitAndNotBefore) {
  for (int n = 1; n <= 8; ++n) {
    for (int k = 1; k <= n; ++k) {
      AlarmConfig c = score_only();
      c.raise_k = k;
      c.raise_n = n;
      ASSERT_EQ(validate(c), "");
      Driver d(c);
      for (int i = 1; i < k; ++i)
        ASSERT_FALSE(d.feed(1.2)) << "k=" << k << " n=" << n << " i=" << i;
      auto t = d.feed(1.2);
      ASSERT_TRUE(t) << "k=" << k << " n=" << n;
      EXPECT_EQ(t->kind, TransitionKind::raise);
      EXPECT_EQ(t->to, AlarmLevel::alarm);
      EXPECT_EQ(d.alarm.status().alarm_hits, k);
    }
  }
}

TEST(AlarmRaise, InterleavedHitsCountWithinTheWindow) {
  Driver d(score_only());  // k=3, n=5
  EXPECT_FALSE(d.feed(1.2));
  EXPECT_FALSE(d.feed(0.5));
  EXPECT_FALSE(d.feed(1.2));
  EXPECT_FALSE(d.feed(0.5));
  EXPECT_EQ(d.alarm.level(), AlarmLevel::normal);
  auto t = d.feed(1.43);  // 3 of the last 5
  ASSERT_TRUE(t);
  EXPECT_EQ(t->from, AlarmLevel::normal);
  EXPECT_EQ(t->to, AlarmLevel::alarm);
  EXPECT_EQ(t->cause, AlarmCause::score);
  EXPECT_EQ(t->reason, "score 1.43 >= 1.00 in 3 of last 5 windows");
  EXPECT_EQ(t->raised_seq, 1u);
  EXPECT_EQ(t->cleared_seq, 0u);
  EXPECT_DOUBLE_EQ(t->score, 1.43);
  ASSERT_EQ(t->features.size(), 2u);
  EXPECT_EQ(t->features[1].name, "window");
  EXPECT_EQ(std::get<std::int64_t>(t->features[1].value), 4);  // the triggering window's
}

TEST(AlarmRaise, TheRingForgetsOldWindows) {
  Driver d(score_only());     // k=3, n=5
  EXPECT_FALSE(d.feed(1.2));  // #0
  EXPECT_FALSE(d.feed(1.2));  // #1
  d.feed_n(3, 0.5);           // #2..#4
  EXPECT_FALSE(d.feed(1.2));  // #5: ring #1..#5 holds 2 hits (#0 forgotten)
  EXPECT_FALSE(d.feed(1.2));  // #6: ring #2..#6 holds 2 hits (#1 forgotten)
  EXPECT_EQ(d.alarm.status().alarm_hits, 2);
  EXPECT_EQ(d.alarm.status().recent_windows, 5);
  auto t = d.feed(1.2);  // #7: 3 of #3..#7
  ASSERT_TRUE(t);
  EXPECT_EQ(t->to, AlarmLevel::alarm);
}

TEST(AlarmRaise, WarningOnlyBelowTheAlarmThreshold) {
  Driver d(score_only());
  EXPECT_TRUE(d.feed_n(2, 0.9).empty());
  auto t = d.feed(0.85);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->to, AlarmLevel::warning);
  EXPECT_EQ(t->reason, "score 0.90 >= 0.80 in 3 of last 3 windows");  // peak of the hits
  EXPECT_TRUE(d.feed_n(100, 0.95).empty());                           // never reaches alarm
}

// ---- hysteresis ----

// Deterministic noise without <random> distributions (their output differs between libraries).
double noise(std::mt19937& g) {
  return static_cast<double>(g()) / 4294967295.0 * 2.0 - 1.0;  // -1..1
}

int count_transitions(const AlarmConfig& c, const std::vector<double>& scores) {
  AssetAlarm a(c);
  int n = 0;
  std::int64_t ms = 0;
  for (double s : scores) {
    WindowInput w;
    w.wall_ms = ms += 1000;
    w.score = s;
    if (a.on_window(w)) ++n;
  }
  return n;
}

TEST(AlarmHysteresis, NoChatterAroundTheThreshold) {
  std::mt19937 gen(12345);
  std::vector<double> scores;
  for (int i = 0; i < 5000; ++i) scores.push_back(1.0 + 0.12 * noise(gen));  // 0.88..1.12

  // A threshold without hysteresis (raise on 1 window, clear on 1 window) chatters...
  AlarmConfig naive = score_only();
  naive.raise_k = naive.raise_n = naive.clear_m = 1;
  naive.clear_ratio = 1.0;
  EXPECT_GT(count_transitions(naive, scores), 1000);
  // ...the default: raised once, never cleared while the score stays above 0.85.
  EXPECT_LE(count_transitions(score_only(), scores), 2);
  EXPECT_LE(count_transitions(AlarmConfig{}, scores), 2);
}

TEST(AlarmHysteresis, AlternatingScoreRaisesOnceAndStays) {
  Driver d(score_only());
  for (int i = 0; i < 1000; ++i) d.feed(i % 2 == 0 ? 0.95 : 1.05);
  ASSERT_EQ(d.log.size(), 2u);  // warning at #2 (3 warning hits), alarm at #5 (3 alarm hits)
  EXPECT_EQ(d.log[0].window, 2u);
  EXPECT_EQ(d.log[0].t.to, AlarmLevel::warning);
  EXPECT_EQ(d.log[1].window, 5u);
  EXPECT_EQ(d.log[1].t.kind, TransitionKind::escalate);
}

TEST(AlarmHysteresis, BandHoldsTheLevel) {
  Driver d(score_only());
  d.feed_n(3, 1.2);
  ASSERT_EQ(d.alarm.level(), AlarmLevel::alarm);
  EXPECT_TRUE(d.feed_n(200, 0.9).empty());  // below 1.0 but not below 0.85
  EXPECT_EQ(d.alarm.level(), AlarmLevel::alarm);
  EXPECT_EQ(d.alarm.status().alarm_clear_streak, 0);
}

TEST(AlarmClear, AfterExactlyMConsecutiveWindows) {
  Driver d(score_only());  // m=5, ratio 0.85: warning clears below 0.68
  d.feed_n(3, 0.9);
  ASSERT_EQ(d.alarm.level(), AlarmLevel::warning);
  EXPECT_TRUE(d.feed_n(4, 0.5).empty());
  EXPECT_EQ(d.alarm.status().warning_clear_streak, 4);
  EXPECT_FALSE(d.feed(0.75));  // in the band: not a hit, but resets the streak
  EXPECT_EQ(d.alarm.status().warning_clear_streak, 0);
  EXPECT_TRUE(d.feed_n(4, 0.5).empty());
  auto t = d.feed(0.5);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->kind, TransitionKind::clear);
  EXPECT_EQ(t->to, AlarmLevel::normal);
  EXPECT_EQ(t->reason, "cleared: score < 0.68 for 5 windows");
  EXPECT_EQ(t->cleared_seq, 1u);
  EXPECT_EQ(t->raised_seq, 0u);
  EXPECT_EQ(d.alarm.active_seq(), 0u);
}

// A reload replaces the state machine of a normal asset with new parameters; the alert numbering
// must continue, or the daemon's seq -> alert id map would send a new alert's clear to an old
// alert (bug found in review).
TEST(AlarmReload, ContinuingKeepsTheAlertNumbering) {
  Driver d(score_only());
  d.feed_n(3, 1.5);
  ASSERT_EQ(d.alarm.active_seq(), 1u);
  d.feed_n(5, 0.1);
  ASSERT_EQ(d.alarm.level(), AlarmLevel::normal);
  AlarmConfig next = score_only();
  next.raise_k = 2;
  d.alarm = AssetAlarm::continuing(next, d.alarm);
  EXPECT_EQ(d.alarm.config(), next);
  EXPECT_EQ(d.alarm.level(), AlarmLevel::normal);
  const auto raised = d.feed_n(2, 1.5);  // the new k = 2 applies
  ASSERT_EQ(raised.size(), 1u);
  EXPECT_EQ(raised[0].raised_seq, 2u);
  EXPECT_EQ(d.alarm.active_seq(), 2u);
}

TEST(AlarmClear, EvidenceIsConsumedByAClear) {
  // n > m: without consuming, old hits still in the ring would re-raise at once.
  AlarmConfig c = score_only();
  c.raise_k = 3;
  c.raise_n = 10;
  c.clear_m = 2;
  Driver d(c);
  d.feed_n(5, 1.2);
  ASSERT_EQ(d.alarm.level(), AlarmLevel::alarm);
  auto out = d.feed_n(2, 0.1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to, AlarmLevel::normal);
  EXPECT_FALSE(d.feed(1.2));  // only 1 fresh hit
  EXPECT_FALSE(d.feed(1.2));
  auto t = d.feed(1.2);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->raised_seq, 2u);
}

// ---- ISO path ----

TEST(AlarmIso, ZoneAloneRaisesEscalatesAndClears) {
  Driver d;                                   // warning at C, alarm at D
  EXPECT_TRUE(d.feed_n(10, 0.2, 2).empty());  // zone B: nothing
  auto w = d.feed_n(3, 0.2, 3);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].to, AlarmLevel::warning);
  EXPECT_EQ(w[0].cause, AlarmCause::iso);
  EXPECT_EQ(w[0].reason, "ISO zone C >= C in 3 of last 5 windows");
  EXPECT_EQ(w[0].iso_zone, 3);
  auto a = d.feed_n(3, 0.2, 4);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, TransitionKind::escalate);
  EXPECT_EQ(a[0].cause, AlarmCause::iso);
  EXPECT_EQ(a[0].reason, "ISO zone D >= D in 3 of last 5 windows");
  // Zone C again: the alarm clears (zone < D), warning is held by the zone.
  auto de = d.feed_n(5, 0.2, 3);
  ASSERT_EQ(de.size(), 1u);
  EXPECT_EQ(de[0].kind, TransitionKind::deescalate);
  EXPECT_EQ(de[0].closed_reason, "cleared: score < 0.85 and ISO zone < D for 5 windows");
  auto cl = d.feed_n(5, 0.2, 2);
  ASSERT_EQ(cl.size(), 1u);
  EXPECT_EQ(cl[0].reason, "cleared: score < 0.68 and ISO zone < C for 5 windows");
}

TEST(AlarmIso, UnknownZoneAndDisabledPath) {
  Driver d;
  EXPECT_TRUE(d.feed_n(20, 0.2, 0).empty());  // unknown zone: no ISO evidence
  EXPECT_TRUE(d.feed_n(20, 0.2, 7).empty());  // out of range: unknown
  Driver off(score_only());
  EXPECT_TRUE(off.feed_n(20, 0.2, 4).empty());  // ISO path off
}

TEST(AlarmIso, ScoreAndZoneTogether) {
  Driver d;
  d.feed(1.5, 4);
  d.feed(1.1, 2);
  auto t = d.feed(0.3, 4);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->to, AlarmLevel::alarm);
  EXPECT_EQ(t->cause, AlarmCause::both);
  EXPECT_EQ(t->reason,
            "score 1.50 >= 1.00 in 2 of last 3 windows; ISO zone D >= D in 2 of last 3 windows");
}

// ---- escalation ----

TEST(AlarmLevels, EscalationAndDeescalation) {
  Driver d(score_only());
  auto w = d.feed_n(3, 0.9);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].raised_seq, 1u);

  auto a = d.feed_n(3, 1.2);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].kind, TransitionKind::escalate);
  EXPECT_EQ(a[0].from, AlarmLevel::warning);
  EXPECT_EQ(a[0].to, AlarmLevel::alarm);
  EXPECT_EQ(a[0].cleared_seq, 1u);
  EXPECT_EQ(a[0].raised_seq, 2u);
  EXPECT_EQ(a[0].closed_reason, "escalated to alarm");

  // 0.82: clearly below alarm (< 0.85), still a warning hit.
  auto de = d.feed_n(5, 0.82);
  ASSERT_EQ(de.size(), 1u);
  EXPECT_EQ(de[0].kind, TransitionKind::deescalate);
  EXPECT_EQ(de[0].to, AlarmLevel::warning);
  EXPECT_EQ(de[0].cleared_seq, 2u);
  EXPECT_EQ(de[0].raised_seq, 3u);
  EXPECT_EQ(de[0].reason,
            "alarm cleared: score < 0.85 for 5 windows; warning persists: "
            "score 0.82 >= 0.80 in 5 of last 5 windows");
  EXPECT_EQ(d.alarm.level(), AlarmLevel::warning);

  auto cl = d.feed_n(5, 0.3);
  ASSERT_EQ(cl.size(), 1u);
  EXPECT_EQ(cl[0].to, AlarmLevel::normal);
  EXPECT_EQ(cl[0].cleared_seq, 3u);
}

TEST(AlarmLevels, DeescalationHeldByTheWarningBand) {
  Driver d(score_only());
  d.feed_n(3, 1.2);
  auto de = d.feed_n(5, 0.7);  // < 0.85 (alarm clear) but not < 0.68 (warning clear)
  ASSERT_EQ(de.size(), 1u);
  EXPECT_EQ(de[0].to, AlarmLevel::warning);
  EXPECT_EQ(de[0].cause, AlarmCause::none);  // no warning hit left in the ring: held by the band
  EXPECT_EQ(de[0].reason,
            "alarm cleared: score < 0.85 for 5 windows; warning persists: "
            "not yet cleared (score < 0.68 for 5 windows)");
  auto more = d.feed_n(50, 0.7);
  EXPECT_TRUE(more.empty());
  EXPECT_EQ(d.alarm.level(), AlarmLevel::warning);
  EXPECT_EQ(d.alarm.status().warning_hits, 0);
}

TEST(AlarmLevels, DirectAlarmAndDirectClear) {
  Driver d(score_only());
  auto a = d.feed_n(3, 2.0);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].from, AlarmLevel::normal);
  EXPECT_EQ(a[0].to, AlarmLevel::alarm);
  auto c = d.feed_n(5, 0.1);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].kind, TransitionKind::clear);
  EXPECT_EQ(c[0].from, AlarmLevel::alarm);
  EXPECT_EQ(c[0].reason, "cleared: score < 0.68 for 5 windows");
}

// ---- no evidence ----

TEST(AlarmGaps, GapAndInvalidScoresNeitherRaiseNorClear) {
  Driver d(score_only());
  EXPECT_FALSE(d.feed(1.2));
  EXPECT_FALSE(d.feed(5.0, 4, /*gap=*/true));
  EXPECT_FALSE(d.feed(kNaN));
  EXPECT_FALSE(d.feed(std::numeric_limits<double>::infinity()));
  EXPECT_FALSE(d.feed(1.2));
  EXPECT_EQ(d.alarm.status().recent_windows, 2);
  EXPECT_TRUE(d.feed(1.2));  // third valid hit

  // Clearing: a gap neither advances nor resets the streak.
  EXPECT_TRUE(d.feed_n(4, 0.1).empty());
  EXPECT_FALSE(d.feed(0.1, 0, true));
  EXPECT_FALSE(d.feed(kNaN));
  EXPECT_EQ(d.alarm.status().alarm_clear_streak, 4);
  auto t = d.feed(0.1);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->to, AlarmLevel::normal);

  AlarmStatus s = d.alarm.status();
  EXPECT_EQ(s.windows, 13u);
  EXPECT_EQ(s.no_evidence_windows, 5u);
  EXPECT_EQ(s.transitions, 2u);
}

TEST(AlarmGaps, OnlyGapsNeverRaise) {
  Driver d;
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(d.feed(9.0, 4, true));
  EXPECT_EQ(d.alarm.status().recent_windows, 0);
}

// ---- acknowledgement ----

TEST(AlarmAck, Rules) {
  Driver d(score_only());
  EXPECT_EQ(d.alarm.acknowledge(), AckResult::no_active_alert);
  d.feed_n(3, 0.9);
  ASSERT_EQ(d.alarm.level(), AlarmLevel::warning);
  EXPECT_EQ(d.alarm.acknowledge(7), AckResult::no_active_alert);  // not the active alert
  EXPECT_FALSE(d.alarm.acknowledged());
  EXPECT_EQ(d.alarm.acknowledge(1), AckResult::acknowledged);
  EXPECT_EQ(d.alarm.acknowledge(), AckResult::already_acknowledged);
  EXPECT_EQ(d.alarm.acknowledge(1), AckResult::already_acknowledged);
  EXPECT_TRUE(d.alarm.acknowledged());
  EXPECT_EQ(d.alarm.level(), AlarmLevel::warning);  // changes no level

  auto a = d.feed_n(3, 1.2);  // escalation: a new, unacknowledged alert
  ASSERT_EQ(a.size(), 1u);
  EXPECT_TRUE(a[0].cleared_was_acknowledged);
  EXPECT_FALSE(d.alarm.acknowledged());
  EXPECT_EQ(d.alarm.acknowledge(1), AckResult::no_active_alert);  // stale seq
  EXPECT_EQ(d.alarm.acknowledge(2), AckResult::acknowledged);

  auto c = d.feed_n(5, 0.1);  // acknowledgement is not needed to clear
  ASSERT_EQ(c.size(), 1u);
  EXPECT_TRUE(c[0].cleared_was_acknowledged);
  EXPECT_EQ(d.alarm.acknowledge(), AckResult::no_active_alert);
  EXPECT_EQ(d.alarm.acknowledge(2), AckResult::no_active_alert);
}

// ---- configuration ----

TEST(AlarmConfigCheck, Messages) {
  EXPECT_EQ(validate(AlarmConfig{}), "");
  auto msg = [](auto edit) {
    AlarmConfig c;
    edit(c);
    return validate(c);
  };
  EXPECT_EQ(msg([](AlarmConfig& c) { c.raise_k = 7; }),
            "alarm.raise_k: must be 1..raise_n (5), got 7");
  EXPECT_EQ(msg([](AlarmConfig& c) { c.raise_k = 0; }),
            "alarm.raise_k: must be 1..raise_n (5), got 0");
  EXPECT_EQ(msg([](AlarmConfig& c) { c.raise_n = 0; }), "alarm.raise_n: must be 1..64, got 0");
  EXPECT_EQ(msg([](AlarmConfig& c) { c.raise_n = 65; }), "alarm.raise_n: must be 1..64, got 65");
  EXPECT_EQ(msg([](AlarmConfig& c) { c.clear_m = -1; }),
            "alarm.clear_m: must be 1..100000, got -1");
  EXPECT_EQ(msg([](AlarmConfig& c) { c.clear_ratio = 1.5; }),
            "alarm.clear_ratio: must be in (0, 1], got 1.50");
  EXPECT_EQ(msg([](AlarmConfig& c) { c.clear_ratio = kNaN; }),
            "alarm.clear_ratio: must be in (0, 1], got nan");
  EXPECT_EQ(msg([](AlarmConfig& c) { c.score_alarm = 0; }),
            "alarm.score_alarm: must be a number > 0, got 0.00");
  EXPECT_EQ(msg([](AlarmConfig& c) { c.score_warning = std::numeric_limits<double>::infinity(); }),
            "alarm.score_warning: must be a number > 0, got inf");
  EXPECT_EQ(msg([](AlarmConfig& c) { c.score_warning = 1.2; }),
            "alarm.score_warning: must be <= alarm.score_alarm (1.00), got 1.20");
  EXPECT_EQ(msg([](AlarmConfig& c) { c.iso_alarm_zone = 5; }),
            "alarm.iso_alarm_zone: must be 0 (off) or 1..4 (A..D), got 5");
  EXPECT_EQ(msg([](AlarmConfig& c) { c.iso_warning_zone = -1; }),
            "alarm.iso_warning_zone: must be 0 (off) or 1..4 (A..D), got -1");
  EXPECT_EQ(msg([](AlarmConfig& c) {
              c.iso_warning_zone = 4;
              c.iso_alarm_zone = 3;
            }),
            "alarm.iso_warning_zone: must be <= alarm.iso_alarm_zone (3), got 4");
  EXPECT_EQ(msg([](AlarmConfig& c) {
              c.iso_warning_zone = 4;
              c.iso_alarm_zone = 0;
            }),
            "");
  EXPECT_EQ(msg([](AlarmConfig& c) {
              c.raise_k = c.raise_n = c.clear_m = 1;
              c.clear_ratio = 1;
            }),
            "");
}

TEST(AlarmConfigCheck, InvalidConfigIsClampedNotCrashing) {
  AlarmConfig c;
  c.raise_n = 1000;
  c.raise_k = -3;
  c.clear_m = 0;
  c.clear_ratio = kNaN;
  AssetAlarm a(c);
  EXPECT_EQ(validate(a.config()), "");
  EXPECT_EQ(a.config().raise_n, kMaxRaiseN);
  EXPECT_EQ(a.config().raise_k, 1);
}

// ---- storage events ----

TEST(AlarmEvents, EscalationBecomesRaiseThenClear) {
  Driver d;
  d.feed_n(3, 0.9, 2);
  auto a = d.feed_n(3, 1.3, 2);
  ASSERT_EQ(a.size(), 1u);
  auto ev = to_alert_events(a[0], "pump1");
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].seq, 2u);
  EXPECT_EQ(ev[0].event.kind, storage::AlertState::raised);
  EXPECT_EQ(ev[0].event.level, storage::AlertLevel::alarm);
  EXPECT_EQ(ev[0].event.asset, "pump1");
  EXPECT_EQ(ev[0].event.reason, "score 1.30 >= 1.00 in 3 of last 5 windows");
  EXPECT_DOUBLE_EQ(ev[0].event.score, 1.3);
  EXPECT_EQ(ev[0].event.wall_ms, a[0].wall_ms);
  ASSERT_EQ(ev[0].event.features.size(), 5u);
  EXPECT_EQ(ev[0].event.features[0].name, "cause");
  EXPECT_EQ(std::get<std::string>(ev[0].event.features[0].value), "score");
  EXPECT_EQ(std::get<std::int64_t>(ev[0].event.features[1].value), 2);
  EXPECT_EQ(ev[0].event.features[3].name, "rms_g");
  EXPECT_EQ(ev[1].seq, 1u);
  EXPECT_EQ(ev[1].event.kind, storage::AlertState::cleared);
  EXPECT_EQ(ev[1].event.level, storage::AlertLevel::warning);
  EXPECT_EQ(ev[1].event.reason, "escalated to alarm");
  EXPECT_EQ(ev[1].event.alert_id, 0u);  // the caller maps seq -> id

  auto c = d.feed_n(5, 0.1, 1);
  ASSERT_EQ(c.size(), 1u);
  auto cev = to_alert_events(c[0], "pump1");
  ASSERT_EQ(cev.size(), 1u);
  EXPECT_EQ(cev[0].seq, 2u);
  EXPECT_EQ(cev[0].event.kind, storage::AlertState::cleared);
  EXPECT_EQ(cev[0].event.level, storage::AlertLevel::alarm);

  auto ack = acknowledgement_event(2, AlarmLevel::alarm, "pump1", 42, "op@hmi");
  EXPECT_EQ(ack.event.kind, storage::AlertState::acknowledged);
  EXPECT_EQ(ack.event.by, "op@hmi");
  EXPECT_EQ(ack.event.wall_ms, 42);
}

// ---- invariants on random sequences ----

TEST(AlarmInvariants, RandomSequences) {
  std::mt19937 gen(7);
  for (int run = 0; run < 200; ++run) {
    AlarmConfig c;
    c.raise_n = 1 + static_cast<int>(gen() % 8);
    c.raise_k = 1 + static_cast<int>(gen() % static_cast<unsigned>(c.raise_n));
    c.clear_m = 1 + static_cast<int>(gen() % 6);
    ASSERT_EQ(validate(c), "");
    AssetAlarm a(c), b(c);
    std::uint64_t active = 0, last_seq = 0;
    for (int i = 0; i < 300; ++i) {
      WindowInput w;
      w.wall_ms = i;
      w.score = 0.9 + 0.4 * noise(gen);
      w.iso_zone = static_cast<int>(gen() % 5);
      w.gap = gen() % 20 == 0;
      auto t = a.on_window(w);
      auto t2 = b.on_window(w);  // deterministic: same input, same output
      ASSERT_EQ(t.has_value(), t2.has_value());
      if (!t) continue;
      ASSERT_EQ(t->reason, t2->reason);
      ASSERT_NE(t->from, t->to);
      ASSERT_EQ(t->cleared_seq, active);
      if (t->raised_seq != 0) {
        ASSERT_EQ(t->raised_seq, last_seq + 1);
        last_seq = t->raised_seq;
        ASSERT_FALSE(t->reason.empty());
      }
      active = t->raised_seq;
      ASSERT_EQ(a.active_seq(), active);
      ASSERT_EQ(a.level() == AlarmLevel::normal, active == 0);
      ASSERT_FALSE(w.gap);
    }
  }
}

// ---- table of scripted sequences ----

// Tokens: "<score>" or "<score>/<zone letter>", "gap", "nan", "ack" (acknowledge, expect
// "acknowledged"). Expected: "<window index>:<from>><to>" per transition, space-separated.
struct Script {
  const char* name;
  int k, n, m;
  const char* windows;
  const char* expected;
};

const Script kScripts[] = {
    {"quiet", 3, 5, 5, "0.1 0.2 0.3 0.5 0.7 0.79 0.1", ""},
    {"k_of_n", 3, 5, 5, "1.1 0.1 1.1 0.1 0.1 1.1 1.1 1.1", "6:normal>alarm"},
    {"k_equals_n", 4, 4, 2, "1.1 1.1 1.1 0.5 1.1 1.1 1.1 1.1", "7:normal>alarm"},
    {"one_of_one", 1, 1, 1, "0.5 1.0 0.84 0.9 0.5",
     "1:normal>alarm 2:alarm>warning 4:warning>normal"},
    {"warn_then_alarm", 2, 3, 3, "0.8 0.8 1.0 1.0 0.6 0.6 0.6",
     "1:normal>warning 3:warning>alarm 6:alarm>normal"},
    {"gaps_transparent", 3, 5, 5, "1.2 gap 1.2 nan nan 1.2", "5:normal>alarm"},
    {"iso_only", 3, 5, 2, "0.1/D 0.1/D 0.1/D 0.1/C 0.1/C 0.1/A 0.1/B",
     "2:normal>alarm 4:alarm>warning 6:warning>normal"},
    {"unknown_zone_ignored", 2, 2, 2, "0.1/? 0.1/? 0.1/?", ""},
    {"ack_does_not_clear", 2, 2, 2, "1.5 1.5 ack 1.5 0.1 0.1", "1:normal>alarm 4:alarm>normal"},
    {"band_holds", 2, 2, 2, "1.5 1.5 0.9 0.86 0.9 0.7 0.7 0.7 0.69 0.5 0.5",
     "1:normal>alarm 6:alarm>warning 10:warning>normal"},
};

int parse_zone(const std::string& tok) {
  const auto slash = tok.find('/');
  if (slash == std::string::npos) return 0;
  const char z = tok[slash + 1];
  return z >= 'A' && z <= 'D' ? z - 'A' + 1 : 0;
}

class AlarmScript : public ::testing::TestWithParam<Script> {};

TEST_P(AlarmScript, Runs) {
  const Script& s = GetParam();
  AlarmConfig c = AlarmConfig{};
  c.raise_k = s.k;
  c.raise_n = s.n;
  c.clear_m = s.m;
  ASSERT_EQ(validate(c), "") << s.name;
  AssetAlarm a(c);
  std::istringstream in(s.windows);
  std::string tok, got;
  std::size_t index = 0;
  while (in >> tok) {
    if (tok == "ack") {
      EXPECT_EQ(a.acknowledge(), AckResult::acknowledged) << s.name;
      continue;
    }
    WindowInput w;
    w.wall_ms = static_cast<std::int64_t>(index) * 1000;
    if (tok == "gap") {
      w.gap = true;
      w.score = 2.0;
    } else if (tok == "nan") {
      w.score = kNaN;
    } else {
      w.score = std::stod(tok.substr(0, tok.find('/')));
      w.iso_zone = parse_zone(tok);
    }
    if (auto t = a.on_window(w)) {
      if (!got.empty()) got += ' ';
      got += std::to_string(index);
      got += ':';
      got += to_string(t->from);
      got += '>';
      got += to_string(t->to);
    }
    ++index;
  }
  EXPECT_EQ(got, s.expected) << s.name << ": " << s.windows;
}

INSTANTIATE_TEST_SUITE_P(Table, AlarmScript, ::testing::ValuesIn(kScripts),
                         [](const ::testing::TestParamInfo<Script>& p) { return p.param.name; });

}  // namespace
}  // namespace vibgate::daemon
