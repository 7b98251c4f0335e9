// model_shadow_test.cpp — shadow evaluation (issue 9, docs/model.md "Shadow evaluation"): the
// promote/reject rule and its edges, the tally, the policy check, model events; and the
// analytics worker scoring a shadow model beside the active one on real synthetic machines
// (same model: identical scores; a bad model: alarms; cleared; incompatible features or
// learning mode: no shadow score).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <mutex>
#include <string>
#include <variant>
#include <vector>

#include "cli/online_commands.hpp"
#include "sparkplug.hpp"  // uplink/src: the Sparkplug device model (internal to uplink)
#include "vibgate/analytics/detector.hpp"
#include "vibgate/analytics/synth.hpp"
#include "vibgate/daemon/analytics_worker.hpp"
#include "vibgate/daemon/control_protocol.hpp"
#include "vibgate/daemon/model_shadow.hpp"

namespace vibgate::daemon {
namespace {

using namespace std::chrono_literals;
using analytics::DefectKind;
using analytics::Model;

// ---- the rule ----

ShadowTally tally(std::uint64_t windows, std::uint64_t shadow_alarms, std::uint64_t active_alarms) {
  ShadowTally t;
  for (std::uint64_t i = 0; i < windows; ++i)
    t.add(i < active_alarms ? 2.0 : 0.3, i < active_alarms ? Verdict::alarm : Verdict::normal,
          i < shadow_alarms ? 3.0 : 0.2, i < shadow_alarms ? Verdict::alarm : Verdict::normal);
  return t;
}

ShadowPolicy policy() {
  ShadowPolicy p;
  p.duration = 600s;
  p.max_alarm_ratio = 3.0;
  p.min_windows = 50;
  p.alarm_margin = 0.02;
  return p;
}

TEST(ShadowRule, WaitsForThePeriod) {
  const auto t = tally(1000, 1000, 0);  // terrible, but the period is not over
  EXPECT_EQ(judge_shadow(t, policy(), 599'999ms).outcome, ShadowOutcome::wait);
  EXPECT_EQ(judge_shadow(t, policy(), 600s).outcome, ShadowOutcome::reject);
}

TEST(ShadowRule, PromotesWhenNoWorseThanTheActiveModel) {
  const auto d = judge_shadow(tally(1200, 0, 1), policy(), 600s);
  EXPECT_EQ(d.outcome, ShadowOutcome::promote);
  EXPECT_EQ(d.reason, "promoted after shadow: 1200 windows, alarm rate 0.0 % vs active 0.1 %");
}

TEST(ShadowRule, MarginDecidesWhenTheActiveModelIsQuiet) {
  // Active 0 %: the limit is the margin, 2 % of 1000 windows = 20 alarms.
  EXPECT_EQ(judge_shadow(tally(1000, 20, 0), policy(), 600s).outcome, ShadowOutcome::promote);
  const auto d = judge_shadow(tally(1000, 21, 0), policy(), 600s);
  EXPECT_EQ(d.outcome, ShadowOutcome::reject);
  EXPECT_EQ(d.reason,
            "rolled back after shadow: 1000 windows, alarm rate 2.1 % vs active 0.0 % (limit "
            "2.0 %)");
}

TEST(ShadowRule, RatioDecidesWhenTheActiveModelAlarms) {
  // Active 10 %: limit max(3 × 10 %, 10 % + 2 %) = 30 %.
  EXPECT_EQ(judge_shadow(tally(1000, 300, 100), policy(), 600s).outcome, ShadowOutcome::promote);
  EXPECT_EQ(judge_shadow(tally(1000, 301, 100), policy(), 600s).outcome, ShadowOutcome::reject);
  // Active 0.5 %: the margin is larger than the ratio (1.5 %): limit 2.5 %.
  EXPECT_EQ(judge_shadow(tally(1000, 25, 5), policy(), 600s).outcome, ShadowOutcome::promote);
  EXPECT_EQ(judge_shadow(tally(1000, 26, 5), policy(), 600s).outcome, ShadowOutcome::reject);
}

TEST(ShadowRule, TooFewWindowsWaitsUpToTwiceThePeriodThenRejects) {
  const auto t = tally(49, 0, 0);
  EXPECT_EQ(judge_shadow(t, policy(), 600s).outcome, ShadowOutcome::wait);
  EXPECT_EQ(judge_shadow(t, policy(), 1199s).outcome, ShadowOutcome::wait);
  const auto d = judge_shadow(t, policy(), 1200s);
  EXPECT_EQ(d.outcome, ShadowOutcome::reject);
  EXPECT_EQ(d.reason,
            "rejected after shadow: only 49 windows in 1200 s (shadow_min_windows is 50)");
  // Enough windows arriving late are judged normally.
  EXPECT_EQ(judge_shadow(tally(50, 0, 0), policy(), 900s).outcome, ShadowOutcome::promote);
}

TEST(ShadowRule, TallyCountsBothModels) {
  ShadowTally t;
  t.add(0.5, Verdict::normal, 1.5, Verdict::alarm);
  t.add(0.9, Verdict::warning, 0.85, Verdict::warning);
  t.add(1.2, Verdict::alarm, 0.1, Verdict::normal);
  t.add(0.1, Verdict::normal, std::nan(""), Verdict::normal);  // non-finite: not in max/mean
  EXPECT_EQ(t.windows, 4u);
  EXPECT_EQ(t.shadow_alarms, 1u);
  EXPECT_EQ(t.shadow_warnings, 1u);
  EXPECT_EQ(t.active_alarms, 1u);
  EXPECT_EQ(t.active_warnings, 1u);
  EXPECT_DOUBLE_EQ(t.shadow_max, 1.5);
  EXPECT_DOUBLE_EQ(t.active_max, 1.2);
  EXPECT_DOUBLE_EQ(t.shadow_alarm_rate(), 0.25);
  EXPECT_DOUBLE_EQ(t.active_mean(), (0.5 + 0.9 + 1.2 + 0.1) / 4);
  EXPECT_DOUBLE_EQ(t.shadow_mean(), (1.5 + 0.85 + 0.1) / 4);
  EXPECT_EQ(shadow_progress_text(t, 0.42), "shadow 42% (4 windows, 1 alarms vs active 1)");
  EXPECT_EQ(ShadowTally{}.shadow_alarm_rate(), 0.0);
}

TEST(ShadowRule, PolicyIsValidated) {
  EXPECT_EQ(validate(policy()), "");
  auto p = policy();
  p.duration = 0s;
  EXPECT_EQ(validate(p), "shadow_s: must be at least 1 s");
  p = policy();
  p.max_alarm_ratio = 0.5;
  EXPECT_EQ(validate(p), "shadow_max_alarm_ratio: must be a number >= 1");
  p = policy();
  p.min_windows = 0;
  EXPECT_EQ(validate(p), "shadow_min_windows: must be at least 1");
  p = policy();
  p.alarm_margin = -0.1;
  EXPECT_EQ(validate(p), "shadow_alarm_margin: must be between 0 and 1");
}

TEST(ModelEvent, CarriesEveryMetricWithStableTypes) {
  ModelEventInfo i;
  i.event = "rolled_back";
  i.asset = "pump2";
  i.point = "pump2:de";
  i.version = "4";
  i.active_version = "3";
  i.reason = "rolled back after shadow: ...";
  i.bundle_id = "b-17";
  i.shadow_windows = 1200;
  i.shadow_alarm_rate = 0.25;
  i.active_alarm_rate = 0.001;
  i.wall_ms = 1'700'000'000'000;
  const auto e = make_model_event(i);
  EXPECT_EQ(e.asset, "pump2");
  EXPECT_EQ(e.wall_ms, 1'700'000'000'000);
  std::vector<std::string> names;
  for (const auto& m : e.metrics) names.push_back(m.name);
  const std::vector<std::string> want = {
      "event",     "point",          "version",           "active_version",   "reason",
      "bundle_id", "shadow_windows", "shadow_alarm_rate", "active_alarm_rate"};
  EXPECT_EQ(names, want);
  EXPECT_EQ(std::get<std::string>(e.metrics[0].value), "rolled_back");
  EXPECT_EQ(std::get<std::string>(e.metrics[1].value), "pump2:de");
  EXPECT_EQ(std::get<std::string>(e.metrics[5].value), "b-17");
  EXPECT_EQ(std::get<std::int64_t>(e.metrics[6].value), 1200);
  EXPECT_EQ(std::get<double>(e.metrics[7].value), 0.25);
  // Defaults: point = asset, time = now.
  ModelEventInfo j;
  j.event = "shadow_started";
  j.asset = "fan1";
  const auto f = make_model_event(j);
  EXPECT_EQ(std::get<std::string>(f.metrics[1].value), "fan1");
  EXPECT_GT(f.wall_ms, 1'700'000'000'000);
}

// A model event on a device that also has results and alerts gets metrics of its own
// ("model/event" beside "alert/event"), and a DBIRTH announces them.
TEST(ModelEvent, SparkplugAnnouncesModelMetricsBesideTheOthers) {
  uplink::spb::NodeModel node;
  UplinkRecord alert;
  alert.kind = RecordKind::alert;
  alert.lane = Lane::alert;
  alert.asset = "pump2";
  alert.metrics = {{"event", std::string("raised")}, {"reason", std::string("score")}};
  EXPECT_TRUE(node.learn(alert));
  ModelEventInfo i;
  i.event = "promoted";
  i.asset = "pump2";
  i.version = "2";
  const auto e = make_model_event(i);
  UplinkRecord rec;
  rec.kind = RecordKind::model;
  rec.lane = Lane::alert;
  rec.asset = e.asset;
  rec.metrics = e.metrics;
  EXPECT_TRUE(node.learn(rec));   // new metrics: a DBIRTH first
  EXPECT_FALSE(node.learn(rec));  // known now
  // A result metric of the same short name stays a metric of its own (kinds never share).
  UplinkRecord result;
  result.kind = RecordKind::result;
  result.asset = "pump2";
  result.metrics = {{"version", std::string("r")}};
  EXPECT_TRUE(node.learn(result));
  const auto* dev = node.device("pump2");
  ASSERT_NE(dev, nullptr);
  EXPECT_EQ(std::get<std::string>(*dev->metrics[dev->by_name.at("model/version")].last), "2");
  EXPECT_EQ(std::get<std::string>(*dev->metrics[dev->by_name.at("result/version")].last), "r");
  for (const char* name : {"model/event", "model/version", "model/shadow_windows",
                           "model/shadow_alarm_rate", "alert/event", "result/score"})
    EXPECT_EQ(dev->by_name.count(name), 1u) << name;
  const auto& ev = dev->metrics[dev->by_name.at("model/event")];
  EXPECT_EQ(std::get<std::string>(*ev.last), "promoted");
  EXPECT_EQ(std::get<std::string>(*dev->metrics[dev->by_name.at("alert/event")].last), "raised");
  EXPECT_EQ(std::string(to_string(RecordKind::model)), "model");
}

// ---- control socket and CLI ----

TEST(ShadowControl, CommandsAndFieldsSurviveTheWire) {
  const std::string f1 = encode_request_frame({9, ShadowCommand{"pump2:de", "4", 600, ""}});
  const auto r1 = decode_request(std::string_view(f1).substr(kControlFrameHeader));
  ASSERT_TRUE(r1 && std::holds_alternative<ShadowCommand>(r1->command));
  const auto& c1 = std::get<ShadowCommand>(r1->command);
  EXPECT_EQ(c1.asset, "pump2:de");
  EXPECT_EQ(c1.version, "4");
  EXPECT_EQ(c1.duration_s, 600u);
  EXPECT_EQ(c1.file, "");
  EXPECT_EQ(command_name(r1->command), "shadow");
  const std::string f2 =
      encode_request_frame({10, ShadowCommand{"fan1", "", 0, "/var/lib/vibgate/in/m.vgm"}});
  const auto r2 = decode_request(std::string_view(f2).substr(kControlFrameHeader));
  ASSERT_TRUE(r2);
  EXPECT_EQ(std::get<ShadowCommand>(r2->command).file, "/var/lib/vibgate/in/m.vgm");
  TrainCommand t;
  t.asset = "fan1";
  t.from_ms = 1000;
  t.to_ms = 2000;
  t.stage = true;
  const std::string f3 = encode_request_frame({11, t});
  const auto r3 = decode_request(std::string_view(f3).substr(kControlFrameHeader));
  ASSERT_TRUE(r3);
  EXPECT_TRUE(std::get<TrainCommand>(r3->command).stage);

  ControlReply rep;
  rep.id = 3;
  rep.ok = true;
  AssetInfo a;
  a.name = "fan1";
  a.model_state = "scoring";
  a.model_version = "3";
  a.shadow_version = "4";
  a.shadow_score = 0.31;
  a.shadow_progress = 0.42;
  rep.payload = std::vector<AssetInfo>{a};
  const std::string f4 = encode_reply_frame(rep);
  const auto back = decode_reply(std::string_view(f4).substr(kControlFrameHeader));
  ASSERT_TRUE(back);
  const auto& assets = std::get<std::vector<AssetInfo>>(back->payload);
  ASSERT_EQ(assets.size(), 1u);
  EXPECT_EQ(assets[0].shadow_version, "4");
  EXPECT_EQ(assets[0].shadow_score, 0.31);
  EXPECT_EQ(assets[0].shadow_progress, 0.42);
  // `vibgate assets` shows the shadow version, its progress and latest score.
  const std::string table = cli::render_assets(assets, 0);
  EXPECT_NE(table.find("scoring, shadow v4 42% 0.31"), std::string::npos) << table;
}

// ---- the worker ----

constexpr double kFs = 25600;

analytics::FeatureConfig machine_config() {
  analytics::FeatureConfig c;
  c.sample_rate_hz = kFs;
  c.shaft_hz = 29.95;
  c.bearing = analytics::defect_multiples(analytics::BearingGeometry{9, 0.3126, 1.537, 0});
  return c;
}

std::vector<float> machine(std::uint64_t seed, double seconds) {
  analytics::MachineModel m;
  m.seed = seed;
  m.defect = DefectKind::none;
  analytics::MachineSynth s(m);
  std::vector<float> x(static_cast<std::size_t>(seconds * m.sample_rate_hz));
  s.generate(x);
  return x;
}

std::shared_ptr<const Model> train(const analytics::FeatureConfig& c, double margin) {
  const auto x = machine(1, 20);
  analytics::FeatureExtractor ex(c);
  analytics::Features f;
  std::vector<std::vector<float>> rows;
  analytics::Windower w(c.window_length, c.hop());
  w.push(x, [&](std::span<const float> win, std::uint64_t) {
    ex.extract(win, f);
    std::vector<float> row(ex.model_input_size());
    ex.model_input(f, row);
    rows.push_back(std::move(row));
  });
  analytics::TrainOptions opt;
  opt.seed = 1;
  opt.max_epochs = 60;
  analytics::ThresholdRule rule;
  rule.margin = margin;
  return std::make_shared<const Model>(
      analytics::build_model(c, rows, opt, rule, analytics::TrainingSummary{}));
}

struct Models {
  std::shared_ptr<const Model> good, bad, other;
};
const Models& models() {
  static const Models m = [] {
    Models r;
    r.good = train(machine_config(), 2.0);
    r.bad = train(machine_config(), 0.05);  // a threshold far below healthy errors
    auto other = machine_config();
    other.bearing.reset();  // another feature configuration: other inputs
    r.other = train(other, 2.0);
    return r;
  }();
  return m;
}

struct Collector {
  std::mutex mu;
  std::vector<WindowResult> results;
  void operator()(WindowResult r) {
    std::lock_guard lock(mu);
    results.push_back(std::move(r));
  }
  std::vector<WindowResult> take() {
    std::lock_guard lock(mu);
    return std::move(results);
  }
};

// Streams `seconds` of a healthy machine (seed 2) to the worker from sample `from`.
void stream(AnalyticsWorker& w, const std::vector<float>& x, std::size_t from, std::size_t to) {
  const std::size_t bs = 2048;
  for (std::size_t i = from; i < to; i += bs) {
    SampleBlock b;
    b.channel = "ch";
    b.sample_rate_hz = kFs;
    const auto t = static_cast<std::int64_t>(static_cast<double>(i) * 1e9 / kFs);
    b.first_sample = Timestamp{5'000'000'000 + t, 1'700'000'000'000'000'000 + t};
    b.samples.assign(x.begin() + static_cast<std::ptrdiff_t>(i),
                     x.begin() + static_cast<std::ptrdiff_t>(std::min(i + bs, to)));
    w.submit(std::move(b));
  }
  ASSERT_TRUE(w.wait_idle(120s));
}

TEST(WorkerShadow, SameModelAsShadowScoresIdentically) {
  Collector col;
  AnalyticsWorker w({AssetSpec{"p", "ch", models().good, std::nullopt}}, {1024},
                    [&](WindowResult r) { col(std::move(r)); });
  ASSERT_EQ(w.set_shadow("p", models().good, 7), "");
  EXPECT_NE(w.set_shadow("nope", models().good, 7), "");
  const auto x = machine(2, 6);
  stream(w, x, 0, x.size());
  const auto rs = col.take();
  ASSERT_GT(rs.size(), 60u);
  for (const auto& r : rs) {
    ASSERT_TRUE(r.shadow_scored);
    EXPECT_EQ(r.shadow_id, 7u);
    EXPECT_EQ(r.shadow_score, r.score);  // the same computation, bit for bit
    EXPECT_EQ(r.shadow_verdict, r.verdict);
  }
  EXPECT_EQ(w.stats().shadow_windows, rs.size());
}

TEST(WorkerShadow, BadShadowAlarmsWhileTheActiveModelDoesNotAndClears) {
  Collector col;
  AnalyticsWorker w({AssetSpec{"p", "ch", models().good, std::nullopt}}, {1024},
                    [&](WindowResult r) { col(std::move(r)); });
  // The active model's results without a shadow, for comparison.
  const auto x = machine(2, 12);
  const std::size_t half = x.size() / 2;
  ASSERT_EQ(w.set_shadow("p", models().bad, 1), "");
  stream(w, x, 0, half);
  auto rs = col.take();
  ASSERT_GT(rs.size(), 60u);
  std::vector<double> active;  // every window's active score, in order
  for (const auto& r : rs) active.push_back(r.score);
  ShadowTally t;
  for (const auto& r : rs) {
    ASSERT_TRUE(r.shadow_scored);
    t.add(r.score, r.verdict, r.shadow_score, r.shadow_verdict);
  }
  std::printf(
      "healthy machine: active alarm rate %.3f, bad shadow alarm rate %.3f (%llu windows)\n",
      t.active_alarm_rate(), t.shadow_alarm_rate(), static_cast<unsigned long long>(t.windows));
  EXPECT_LT(t.active_alarm_rate(), 0.02);
  EXPECT_GT(t.shadow_alarm_rate(), 0.5);
  auto p = policy();
  p.min_windows = 10;
  EXPECT_EQ(judge_shadow(t, p, 600s).outcome, ShadowOutcome::reject);

  // Cleared: the next windows carry no shadow score; the active scores are unchanged.
  ASSERT_EQ(w.set_shadow("p", nullptr, 0), "");
  stream(w, x, half, x.size());
  rs = col.take();
  ASSERT_GT(rs.size(), 60u);
  for (const auto& r : rs) {
    EXPECT_FALSE(r.shadow_scored);
    active.push_back(r.score);
  }
  // The active model's scores are those of the offline path, shadow or not.
  analytics::Scorer ref(models().good);
  analytics::ScoredWindow sw;
  ASSERT_EQ(active.size(), (x.size() - 4096) / 2048 + 1);
  for (std::size_t i = 0; i < active.size(); ++i) {
    ref.score(std::span<const float>(x).subspan(2048 * i, 4096), sw);
    EXPECT_EQ(active[i], sw.score) << i;
  }
}

TEST(WorkerShadow, IncompatibleShadowOrLearningModeIsNotScored) {
  Collector col;
  AnalyticsWorker w({AssetSpec{"p", "ch", models().good, std::nullopt}}, {1024},
                    [&](WindowResult r) { col(std::move(r)); });
  ASSERT_EQ(w.set_shadow("p", models().other, 3), "");  // other feature configuration
  const auto x = machine(2, 4);
  stream(w, x, 0, x.size() / 2);
  auto rs = col.take();
  ASSERT_FALSE(rs.empty());
  for (const auto& r : rs) EXPECT_FALSE(r.shadow_scored);
  // A compatible shadow, but the asset learns: no active score, no shadow score.
  ASSERT_EQ(w.set_shadow("p", models().good, 4), "");
  auto f = machine_config();
  ASSERT_EQ(w.start_learning("p", f), "");
  stream(w, x, x.size() / 2, x.size());
  rs = col.take();
  ASSERT_FALSE(rs.empty());
  for (const auto& r : rs) {
    EXPECT_TRUE(r.learning);
    EXPECT_FALSE(r.shadow_scored);
  }
  EXPECT_EQ(w.stats().shadow_windows, 0u);
}

// What a shadow adds per window, against what the active model's window costs (features with
// FFTs + int8 scoring), on this machine; printed for docs/model.md (no timing assertion: a
// shared machine). The shadow part is exactly what AnalyticsWorker::score_shadow runs.
TEST(WorkerShadow, CostPerWindowIsPrinted) {
  const auto x = machine(5, 10);
  const auto& good = models().good;
  const auto& bad = models().bad;
  analytics::Scorer scorer(good);
  analytics::ScoredWindow sw;
  std::vector<std::vector<float>> inputs;
  using Clock = std::chrono::steady_clock;
  double window_us = 1e300, shadow_us = 1e300;
  for (int rep = 0; rep < 5; ++rep) {
    inputs.clear();
    const auto t0 = Clock::now();
    for (std::size_t s = 0; s + 4096 <= x.size(); s += 2048) {
      scorer.score(std::span<const float>(x).subspan(s, 4096), sw);
      inputs.push_back(sw.input);
    }
    const auto t1 = Clock::now();
    std::vector<float> z(inputs[0].size()), y(inputs[0].size());
    std::vector<std::int8_t> q(bad->int8_net.scratch_size());
    double sum = 0;
    const int loops = 20;
    for (int l = 0; l < loops; ++l)
      for (const auto& in : inputs) {
        bad->normalizer.apply(in, z);
        bad->int8_net.forward(z, y, q);
        sum += analytics::mean_squared_error(z, y) / bad->threshold_int8;
      }
    const auto t2 = Clock::now();
    EXPECT_GT(sum, 0.0);
    const double n = static_cast<double>(inputs.size());
    window_us = std::min(window_us, std::chrono::duration<double, std::micro>(t1 - t0).count() / n);
    shadow_us = std::min(shadow_us,
                         std::chrono::duration<double, std::micro>(t2 - t1).count() / (n * loops));
  }
  std::printf(
      "per window: active model (features + int8) %.2f us, shadow model %.3f us (%.2f %%)\n",
      window_us, shadow_us, 100.0 * shadow_us / window_us);
}

}  // namespace
}  // namespace vibgate::daemon
