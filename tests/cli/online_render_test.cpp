// online_render_test.cpp — the operator CLI (gateway/cli/online_commands.*, terminal_plot.*):
// duration parsing, tables, the trend chart (threshold, empty / one-point / constant series), the
// spectrum plot's marker columns, JSON of every payload; then the commands end to end against a
// ControlServer with a fake handler on a Unix socket under the build tree (exit codes 0, 1, 2, 3).
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "cli/online_commands.hpp"
#include "cli/terminal_plot.hpp"
#include "vibgate/daemon/control_server.hpp"

namespace vc = vibgate::cli;
namespace vd = vibgate::daemon;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The plot area starts after "<label> +" / "<label> |": the index of the first cell.
std::size_t plot_start(const std::string& first_chart_line) {
  const auto axis = first_chart_line.find_first_of("+|");
  EXPECT_NE(axis, std::string::npos) << first_chart_line;
  return axis + 1;
}

vd::StatusInfo sample_status() {
  vd::StatusInfo s;
  s.version = "0.1.0";
  s.uptime_s = 3 * 86400 + 4 * 3600 + 5;
  s.storage_ok = false;
  s.storage_error = "disk full";
  s.uplink_connected = true;
  s.uplink_state = "online";
  s.outbox_depth = 12;
  s.outbox_oldest_ms = 1'000'000 - 252'000;
  s.devices = 3;
  s.assets = 2;
  s.active_alerts = 1;
  s.config_path = "/etc/vibgate/vibgate.toml";
  s.counters = {{"polls_total", 1234.0}, {"windows_scored", 98765.0}, {"drops", 0.0}};
  return s;
}

vd::AssetInfo sample_asset() {
  vd::AssetInfo a;
  a.name = "pump-1";
  a.alarm_level = 2;
  a.score = 1.372;
  a.iso_zone = 3;
  a.vrms_mm_s = 7.126;
  a.model_state = "scoring";
  a.model_version = "v3";
  a.channel = "plc1/accel";
  a.last_window_ms = 1'000'000 - 4'000;
  a.active_alert_id = 17;
  a.acknowledged = true;
  return a;
}

vd::Spectrum sample_spectrum() {
  vd::Spectrum sp;
  sp.asset = "pump-1";
  sp.ts_ms = 1'700'000'000'000;
  sp.bin_hz = 1.0;
  sp.amplitude.assign(1001, 0.01f);  // 0..1000 Hz
  sp.amplitude[100] = 0.5f;
  sp.amplitude[25] = 0.2f;
  sp.markers = {{"1x", 25.0}, {"BPFO", 100.0}, {"BPFI", 150.0}};
  return sp;
}

}  // namespace

// ---- durations and small formats ----------------------------------------------------------

TEST(OnlineRender, ParsesDurations) {
  EXPECT_EQ(vc::parse_duration("30s"), 30s);
  EXPECT_EQ(vc::parse_duration("15m"), 15min);
  EXPECT_EQ(vc::parse_duration("1h"), 1h);
  EXPECT_EQ(vc::parse_duration("2d"), 48h);
  EXPECT_EQ(vc::parse_duration("1w"), 168h);
  EXPECT_EQ(vc::parse_duration("1h30m"), 90min);
  EXPECT_EQ(vc::parse_duration("1.5h"), 90min);
  EXPECT_EQ(vc::parse_duration("90"), 90s);
  EXPECT_EQ(vc::parse_duration("0"), 0s);
  EXPECT_EQ(vc::parse_duration("250ms"), std::nullopt);  // no millisecond unit
  for (const char* bad : {"", "abc", "5x", "-5m", "m", "1h30", "1..5h", "h1", " 1h", "1h ", "1e3s",
                          "1 h", "40000d", ".", "5mm"}) {
    EXPECT_EQ(vc::parse_duration(bad), std::nullopt) << '"' << bad << '"';
  }
}

TEST(OnlineRender, FormatsDurationsTimesAndNames) {
  EXPECT_EQ(vc::format_duration(0), "0s");
  EXPECT_EQ(vc::format_duration(-5000), "0s");
  EXPECT_EQ(vc::format_duration(12'999), "12s");
  EXPECT_EQ(vc::format_duration(252'000), "4m12s");
  EXPECT_EQ(vc::format_duration(2 * 3'600'000 + 5 * 60'000), "2h05m");
  EXPECT_EQ(vc::format_duration(3 * 86'400'000LL + 4 * 3'600'000), "3d04h");
  EXPECT_EQ(vc::format_age(0, 5000), "-");
  EXPECT_EQ(vc::format_age(0, 5000, "never"), "never");
  EXPECT_EQ(vc::format_age(1000, 13'000), "12s ago");
  EXPECT_EQ(vc::format_number(1234567.0), "1234567");
  EXPECT_EQ(vc::format_number(-3.25), "-3.25");
  EXPECT_EQ(vc::format_number(0.0123), "0.0123");
  EXPECT_EQ(vc::format_number(1.5e20), "1.5e+20");
  EXPECT_EQ(vc::format_utc(0), "-");
  EXPECT_EQ(vc::format_utc(1'700'000'000'123), "2023-11-14T22:13:20Z");
  EXPECT_EQ(vc::level_name(0), "normal");
  EXPECT_EQ(vc::level_name(1), "warning");
  EXPECT_EQ(vc::level_name(2), "alarm");
  EXPECT_EQ(vc::level_name(7), "level 7");
  EXPECT_EQ(vc::iso_zone_letter(0), "-");
  EXPECT_EQ(vc::iso_zone_letter(1), "A");
  EXPECT_EQ(vc::iso_zone_letter(4), "D");
  EXPECT_EQ(vc::iso_zone_letter(5), "-");
  vd::AlertInfo a;
  EXPECT_EQ(vc::alert_state(a), "active");
  a.acknowledged = true;
  EXPECT_EQ(vc::alert_state(a), "acknowledged");
  a.cleared_ms = 5;
  EXPECT_EQ(vc::alert_state(a), "cleared");
  setenv("USER", "alice", 1);
  EXPECT_EQ(vc::default_ack_by().rfind("alice", 0), 0u) << vc::default_ack_by();
}

// ---- tables ------------------------------------------------------------------------------

TEST(OnlineRender, TableAlignsUtf8AndNumbers) {
  const std::string t = vc::render_table({{"TAG"}, {"VALUE", true}, {"UNIT"}},
                                         {{"temp", "21.5", "°C"}, {"speed", "1480", "rpm"}});
  const auto lines = lines_of(t);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "TAG    VALUE  UNIT");
  EXPECT_EQ(lines[1], "temp    21.5  °C");
  EXPECT_EQ(lines[2], "speed   1480  rpm");
  EXPECT_EQ(vc::render_table({{"A"}}, {}, "nothing here"), "nothing here\n");
}

TEST(OnlineRender, StatusShowsEveryField) {
  const std::string t = vc::render_status(sample_status(), 1'000'000);
  for (const char* needle :
       {"vibgated 0.1.0, up 3d04h", "/etc/vibgate/vibgate.toml", "ERROR: disk full", "online",
        "12 messages, oldest 4m12s ago", "active alerts", "polls_total", "1234", "windows_scored",
        "98765", "drops"}) {
    EXPECT_TRUE(contains(t, needle)) << needle << "\n" << t;
  }
  // counters keep the daemon's order
  EXPECT_LT(t.find("polls_total"), t.find("windows_scored"));
  EXPECT_LT(t.find("windows_scored"), t.find("drops"));
}

TEST(OnlineRender, DevicesTagsAssetsAlertsQueueModels) {
  const std::int64_t now = 1'000'000;
  vd::DeviceInfo d;
  d.name = "plc1";
  d.kind = "modbus-tcp";
  d.endpoint = "10.0.0.5:502";
  d.state = "degraded";
  d.rtt_ms = 3.25;
  d.polls = 4242;
  d.errors = 7;
  d.last_ok_ms = now - 2'000;
  d.last_error = "timeout";
  vd::DeviceInfo serial;
  serial.name = "vib1";
  serial.kind = "serial";
  serial.endpoint = "/dev/ttyUSB0";
  const std::string dev = vc::render_devices({d, serial}, now);
  for (const char* needle :
       {"NAME", "RTT", "plc1", "modbus-tcp", "10.0.0.5:502", "degraded", "3.2 ms", "4242", "7",
        "2s ago", "timeout", "vib1", "offline", "never"}) {
    EXPECT_TRUE(contains(dev, needle)) << needle << "\n" << dev;
  }
  EXPECT_EQ(vc::render_devices({}, now), "no devices configured\n");

  const std::string tags =
      vc::render_tags({{"plc1", "speed", "rpm", 1480.5, true, now - 1000},
                       {"plc1", "temp", "degC", -3.25, false, 1'700'000'000'000}},
                      now);
  for (const char* needle : {"plc1", "speed", "1480.5", "rpm", "good", "1s ago", "temp", "-3.25",
                             "bad", "2023-11-14T22:13:20Z"}) {
    EXPECT_TRUE(contains(tags, needle)) << needle << "\n" << tags;
  }

  vd::AssetInfo learning;
  learning.name = "fan-2";
  learning.model_state = "learning";
  learning.learning_progress = 0.42;
  const std::string assets = vc::render_assets({sample_asset(), learning}, now);
  for (const char* needle : {"pump-1", "alarm", "1.37", " C ", "7.13", "scoring", "v3", "4s ago",
                             "#17 ack", "fan-2", "normal", "learning 42%", "never"}) {
    EXPECT_TRUE(contains(assets, needle)) << needle << "\n" << assets;
  }

  // An asset with several channels: a row per channel, named "<asset>:<channel>".
  vd::AssetInfo de = sample_asset(), nde = sample_asset();
  de.name = nde.name = "gearbox";
  de.channel = "gb/input";
  nde.channel = "gb/output";
  const std::string multi = vc::render_assets({de, nde, learning}, now);
  for (const char* needle : {"gearbox:gb/input", "gearbox:gb/output", "fan-2 "}) {
    EXPECT_TRUE(contains(multi, needle)) << needle << "\n" << multi;
  }

  // The DRIFT column (docs/cli.md): the larger PSI, the state unless stable, and which quantity.
  vd::AssetInfo drifted = sample_asset(), stable = sample_asset(), no_ref = sample_asset();
  drifted.drift_state = "drifted";
  drifted.drift_psi_score = 0.12;
  drifted.drift_psi_feature_max = 0.314;
  drifted.drift_feature = "env_rms";
  stable.drift_state = "stable";
  stable.drift_psi_score = 0.043;
  no_ref.drift_state = "n/a (model has no reference)";
  const std::string dr = vc::render_assets({drifted, stable, no_ref, learning}, now);
  for (const char* needle : {"DRIFT", "0.31 drifted (env_rms)", " 0.04 ", "n/a (no reference)"})
    EXPECT_TRUE(contains(dr, needle)) << needle << "\n" << dr;

  const std::vector<vd::AlertInfo> alerts{
      {17, "pump-1", 2, "score", 1'700'000'000'000, 0, true, "alice@gw", "bearing replaced",
       "score 1.37 over threshold"},
      {18, "fan-2", 1, "iso", 1'700'000'000'000, 1'700'000'060'000, false, "", "", "zone C"}};
  const std::string al = vc::render_alerts(alerts);
  for (const char* needle : {"17", "pump-1", "alarm", "acknowledged", "2023-11-14T22:13:20Z",
                             "alice@gw: bearing replaced", "score 1.37 over threshold", "18",
                             "warning", "cleared", "2023-11-14T22:14:20Z", "zone C"}) {
    EXPECT_TRUE(contains(al, needle)) << needle << "\n" << al;
  }

  EXPECT_EQ(vc::render_ack({17, false}), "alert 17 acknowledged\n");
  EXPECT_EQ(vc::render_ack({17, true}), "alert 17 was already acknowledged\n");

  const std::string q = vc::render_queue({12, 3456, now - 60'000, true, 99, 1}, now);
  for (const char* needle : {"12", "3456", "1m00s ago", "connected", "99", "dropped total"}) {
    EXPECT_TRUE(contains(q, needle)) << needle << "\n" << q;
  }

  vd::ModelInfo active;
  active.asset = "pump-1";
  active.version = "v3";
  active.state = "active";
  active.trained_ms = 1'700'000'000'000;
  active.threshold = 0.0123;
  active.note = "learned on site from 300 s, 1170 windows";
  active.feature_hash = "9f86d081";
  active.file = "/var/lib/vibgate/models/pump-1/v3.vgm";
  vd::ModelInfo old = active;
  old.version = "v2";
  old.state = "retired";
  const std::string list = vc::render_model_list({active, old});
  EXPECT_TRUE(contains(list, "* v3")) << list;
  EXPECT_TRUE(contains(list, "  v2")) << list;
  EXPECT_TRUE(contains(list, "0.0123")) << list;
  const std::string show = vc::render_model_show("pump-1", {active, old});
  for (const char* needle : {"* v3  active", "  v2  retired", "9f86d081", "v3.vgm",
                             "learned on site", "2023-11-14T22:13:20Z"}) {
    EXPECT_TRUE(contains(show, needle)) << needle << "\n" << show;
  }
  EXPECT_EQ(vc::render_model_show("nope", {active}), "no stored model versions for nope\n");
  EXPECT_EQ(vc::render_model_outcome("rollback", "pump-1", std::monostate{}),
            "pump-1: rollback: done\n");
  EXPECT_EQ(vc::render_model_outcome("x", "pump-1", std::vector<vd::ModelInfo>{active}),
            "pump-1: active, version v3 (learned on site from 300 s, 1170 windows)\n");
}

// ---- trend chart ---------------------------------------------------------------------------

TEST(TrendChart, MarksTheThreshold) {
  std::vector<vd::TrendPoint> points;
  for (int i = 0; i < 40; ++i) points.push_back({1'700'000'000'000 + i * 1000, 0.5});
  points[30].value = 1.37;  // one excursion over the threshold
  vc::TrendChartOptions o;
  o.width = 40;
  o.height = 10;
  o.threshold = 1.0;
  o.unicode = false;
  const std::string chart = vc::render_trend_chart(points, o);
  const auto lines = lines_of(chart);
  ASSERT_EQ(lines.size(), 12u) << chart;  // 10 rows, the axis, the time labels
  const std::size_t start = plot_start(lines[0]);
  int threshold_rows = 0;
  for (const auto& line : lines) {
    if (line.size() <= start) continue;
    const std::string label = line.substr(0, start - 2);
    if (label.substr(label.find_first_not_of(' ') == std::string::npos
                         ? label.size()
                         : label.find_first_not_of(' ')) != "1") {
      continue;
    }
    ++threshold_rows;
    EXPECT_EQ(line.compare(start - 2, 2, " +"), 0) << line;
    const std::string cells = line.substr(start);
    EXPECT_EQ(cells.find_first_not_of("-#o_"), std::string::npos) << line;
    EXPECT_GE(std::count(cells.begin(), cells.end(), '-'), 30) << line;
    EXPECT_EQ(cells[30], '#') << "the excursion crosses the threshold line\n" << chart;
  }
  EXPECT_EQ(threshold_rows, 1) << chart;
  EXPECT_TRUE(contains(lines.back(), "UTC")) << chart;
  EXPECT_TRUE(contains(lines.back(), "22:13:20")) << chart;  // span under 10 min: seconds

  vd::Trend t{"pump-1", "score", points};
  const std::string text = vc::render_trend_text(t, "1h", o);
  EXPECT_TRUE(contains(text, "pump-1 score, last 1h: 40 points, latest 0.5, max 1.37")) << text;
  EXPECT_TRUE(contains(text, "-- alarm threshold 1")) << text;

  o.unicode = true;
  const std::string uni = vc::render_trend_chart(points, o);
  EXPECT_TRUE(contains(uni, "╌")) << uni;
  EXPECT_TRUE(contains(uni, "█")) << uni;
}

TEST(TrendChart, EmptySeries) {
  vc::TrendChartOptions o;
  o.unicode = false;
  EXPECT_EQ(vc::render_trend_chart({}, o), "no data\n");
  EXPECT_EQ(vc::render_trend_text({"pump-1", "vrms", {}}, "15m", o),
            "no vrms data for pump-1 in the last 15m\n");
}

TEST(TrendChart, OnePoint) {
  vc::TrendChartOptions o;
  o.width = 20;
  o.height = 5;
  o.unicode = false;
  const auto lines = lines_of(vc::render_trend_chart({{5000, 0.7}}, o));
  ASSERT_EQ(lines.size(), 7u);
  const std::size_t start = plot_start(lines[0]);
  // no range: the single point sits in the newest (last) column
  const std::string bottom = lines[4];
  ASSERT_EQ(bottom.size(), start + 20) << bottom;
  EXPECT_EQ(bottom.substr(start, 19), std::string(19, ' '));
  EXPECT_EQ(bottom[start + 19], '#');

  // with an explicit range it sits where its time is: 25 % of the way
  o.begin_ms = 10000;
  o.end_ms = 30000;
  const auto placed = lines_of(vc::render_trend_chart({{15000, 0.7}}, o));
  EXPECT_EQ(placed[4].find('#'), start + 5) << placed[4];
}

TEST(TrendChart, ConstantSeries) {
  vc::TrendChartOptions o;
  o.width = 30;
  o.height = 6;
  o.unicode = false;
  std::vector<vd::TrendPoint> flat;
  for (int i = 0; i < 30; ++i) flat.push_back({i * 1000LL, 2.0});
  const auto lines = lines_of(vc::render_trend_chart(flat, o));
  ASSERT_EQ(lines.size(), 8u);
  const std::size_t start = plot_start(lines[0]);
  for (int r = 0; r < 6; ++r) {
    // every column looks the same in every row: a flat line, no crash on a zero range
    const std::string cells = lines[static_cast<std::size_t>(r)].substr(
        std::min(start, lines[static_cast<std::size_t>(r)].size()));
    if (cells.empty()) continue;
    EXPECT_EQ(cells.find_first_not_of(cells[0]), std::string::npos)
        << lines[static_cast<std::size_t>(r)];
  }
  EXPECT_EQ(lines[5].substr(start), std::string(30, '#'));

  // all zeros: still visible as the lowest mark, y axis 0..1
  std::vector<vd::TrendPoint> zeros;
  for (int i = 0; i < 30; ++i) zeros.push_back({i * 1000LL, 0.0});
  const auto z = lines_of(vc::render_trend_chart(zeros, o));
  EXPECT_EQ(z[5].substr(plot_start(z[0])), std::string(30, '_'));
  EXPECT_TRUE(contains(z[0], "1.2 +")) << z[0];
}

// ---- spectrum plot -------------------------------------------------------------------------

TEST(SpectrumPlot, MarkerColumns) {
  EXPECT_EQ(vc::spectrum_column(0.0, 200.0, 50), 0);
  EXPECT_EQ(vc::spectrum_column(25.0, 200.0, 50), 6);
  EXPECT_EQ(vc::spectrum_column(100.0, 200.0, 50), 25);
  EXPECT_EQ(vc::spectrum_column(150.0, 200.0, 50), 37);
  EXPECT_EQ(vc::spectrum_column(200.0, 200.0, 50), 49);
  EXPECT_EQ(vc::spectrum_column(200.1, 200.0, 50), -1);
  EXPECT_EQ(vc::spectrum_column(-1.0, 200.0, 50), -1);
  EXPECT_EQ(vc::spectrum_column(10.0, 0.0, 50), -1);

  const vd::Spectrum sp = sample_spectrum();
  vc::SpectrumPlotOptions o;
  o.width = 50;
  o.height = 8;
  o.max_hz = 200.0;
  o.unicode = false;
  EXPECT_DOUBLE_EQ(vc::spectrum_plot_max_hz(sp, o), 200.0);
  const std::string plot = vc::render_spectrum_plot(sp, o);
  const auto lines = lines_of(plot);
  const std::size_t start = plot_start(lines[0]);
  // rows 0..7, axis 8, frequency labels 9, carets 10, names 11
  ASSERT_GE(lines.size(), 13u) << plot;
  EXPECT_TRUE(contains(lines[9], "0")) << plot;
  EXPECT_TRUE(contains(lines[9], "200 Hz")) << plot;
  const std::string& carets = lines[10];
  std::vector<std::size_t> at;
  for (std::size_t i = 0; i < carets.size(); ++i) {
    if (carets[i] == '^') at.push_back(i - start);
  }
  EXPECT_EQ(at, (std::vector<std::size_t>{6, 25, 37})) << plot;
  EXPECT_EQ(lines[11].find("1x"), start + 6) << plot;
  EXPECT_EQ(lines[11].find("BPFO"), start + 25) << plot;
  EXPECT_EQ(lines[11].find("BPFI"), start + 37) << plot;
  // the 100 Hz peak reaches the top row in its column; guides mark empty marker columns
  std::size_t top = 0;  // the highest row with a bar in it
  while (top < 8 && lines[top].substr(start).find_first_not_of(" :") == std::string::npos) ++top;
  ASSERT_LT(top, 8u) << plot;
  EXPECT_EQ(lines[top].substr(start).find_first_not_of(" :"), 25u) << plot;
  EXPECT_EQ(lines[0][start + 37], ':') << plot;
  EXPECT_TRUE(contains(plot, "peak 0.5 at 100 Hz")) << plot;
  EXPECT_TRUE(contains(plot, "BPFO 100 Hz = 0.5")) << plot;

  // default range: 4 x the highest marker (600 Hz)
  o.max_hz = 0.0;
  EXPECT_DOUBLE_EQ(vc::spectrum_plot_max_hz(sp, o), 600.0);
  // never beyond the last bin
  o.max_hz = 5000.0;
  EXPECT_DOUBLE_EQ(vc::spectrum_plot_max_hz(sp, o), 1000.0);
}

TEST(SpectrumPlot, CrowdedAndOffChartMarkers) {
  vd::Spectrum sp = sample_spectrum();
  sp.markers = {{"BPFO", 100.0}, {"BSF", 102.0}, {"FTF", 250.0}};
  vc::SpectrumPlotOptions o;
  o.width = 50;
  o.height = 6;
  o.max_hz = 200.0;
  o.unicode = false;
  const auto lines = lines_of(vc::render_spectrum_plot(sp, o));
  const std::size_t start = plot_start(lines[0]);
  // rows 0..5, axis 6, labels 7, carets 8, then BPFO and BSF on separate rows
  ASSERT_GE(lines.size(), 12u);
  EXPECT_EQ(lines[8].find('^'), start + 25);
  EXPECT_EQ(lines[9].find("BPFO"), start + 25);
  EXPECT_EQ(lines[10].find("BSF"), start + 25);
  EXPECT_TRUE(contains(lines.back(), "FTF 250 Hz = 0.01 (beyond the chart)")) << lines.back();

  EXPECT_EQ(vc::render_spectrum_plot(vd::Spectrum{}, o), "no spectrum\n");
  EXPECT_EQ(vc::render_spectrum_text("pump-1", vd::Spectrum{}, o, 0),
            "no spectrum for pump-1 yet\n");
  const std::string text =
      vc::render_spectrum_text("pump-1", sample_spectrum(), o, 1'700'000'004'000);
  EXPECT_TRUE(contains(text,
                       "pump-1 spectrum at 2023-11-14T22:13:20Z (4s ago), 1 Hz per bin, "
                       "0-200 Hz shown"))
      << text;
}

// ---- JSON ----------------------------------------------------------------------------------

TEST(OnlineJson, EveryPayload) {
  const auto status = json::parse(vc::to_json(sample_status()).dump());
  EXPECT_EQ(status["version"], "0.1.0");
  EXPECT_EQ(status["storage_ok"], false);
  EXPECT_EQ(status["storage_error"], "disk full");
  EXPECT_EQ(status["config_path"], "/etc/vibgate/vibgate.toml");
  EXPECT_EQ(status["uplink_state"], "online");
  EXPECT_EQ(status["outbox_depth"], 12);
  EXPECT_EQ(status["outbox_oldest_ms"], 748000);
  EXPECT_EQ(status["counters"]["windows_scored"], 98765.0);
  EXPECT_EQ(vc::to_json(sample_status())["counters"].begin().key(), "polls_total");

  vd::DeviceInfo d;
  d.name = "plc1";
  d.state = "online";
  d.rtt_ms = 2.5;
  d.polls = 9;
  const auto dj = vc::to_json(vd::ControlPayload{std::vector<vd::DeviceInfo>{d}});
  ASSERT_TRUE(dj.is_array());
  EXPECT_EQ(dj[0]["name"], "plc1");
  EXPECT_EQ(dj[0]["state"], "online");
  EXPECT_EQ(dj[0]["rtt_ms"], 2.5);
  EXPECT_EQ(dj[0]["polls"], 9);

  const auto tj = vc::to_json(vd::TagInfo{"plc1", "speed", "rpm", 1480.5, true, 17});
  EXPECT_EQ(tj["value"], 1480.5);
  EXPECT_EQ(tj["good"], true);
  EXPECT_EQ(tj["ts_ms"], 17);

  const auto aj = vc::to_json(sample_asset());
  EXPECT_EQ(aj["level_name"], "alarm");
  EXPECT_EQ(aj["zone"], "C");
  EXPECT_EQ(aj["iso_zone"], 3);
  EXPECT_EQ(aj["model_version"], "v3");
  EXPECT_EQ(aj["channel"], "plc1/accel");
  EXPECT_EQ(aj["active_alert_id"], 17);
  EXPECT_EQ(aj["acknowledged"], true);
  EXPECT_EQ(aj["drift_state"], "");
  EXPECT_EQ(aj["drift_windows"], 0);

  const auto alj =
      vc::to_json(vd::AlertInfo{17, "pump-1", 2, "score", 100, 0, true, "alice", "note", "msg"});
  EXPECT_EQ(alj["state"], "acknowledged");
  EXPECT_EQ(alj["level_name"], "alarm");
  EXPECT_EQ(alj["ack_by"], "alice");
  EXPECT_EQ(alj["cleared_ms"], 0);

  EXPECT_EQ(vc::to_json(vd::AckInfo{17, true})["already_acknowledged"], true);

  const auto trj = vc::to_json(vd::Trend{"pump-1", "score", {{1, 0.5}, {2, 1.5}}});
  EXPECT_EQ(trj["metric"], "score");
  ASSERT_EQ(trj["points"].size(), 2u);
  EXPECT_EQ(trj["points"][1]["ts_ms"], 2);
  EXPECT_EQ(trj["points"][1]["value"], 1.5);

  const auto qj = vc::to_json(vd::QueueInfo{12, 3456, 1000, true, 99, 1});
  EXPECT_EQ(qj["bytes"], 3456);
  EXPECT_EQ(qj["dropped_total"], 1);

  vd::ModelInfo m;
  m.asset = "pump-1";
  m.version = "v3";
  m.state = "active";
  m.note = "n";
  m.feature_hash = "h";
  const auto mj = vc::to_json(m);
  EXPECT_EQ(mj["version"], "v3");
  EXPECT_EQ(mj["feature_hash"], "h");
  EXPECT_EQ(mj["note"], "n");

  const auto sj = vc::to_json(sample_spectrum());
  EXPECT_EQ(sj["bin_hz"], 1.0);
  ASSERT_EQ(sj["amplitude"].size(), 1001u);
  EXPECT_FLOAT_EQ(sj["amplitude"][100].get<float>(), 0.5f);
  ASSERT_EQ(sj["markers"].size(), 3u);
  EXPECT_EQ(sj["markers"][1]["name"], "BPFO");
  EXPECT_EQ(sj["markers"][1]["hz"], 100.0);

  EXPECT_EQ(vc::to_json(vd::ControlPayload{}), json({{"ok", true}}));
}

// ---- end to end: the commands against a ControlServer ----------------------------------------

namespace {

class FakeDaemon : public vd::ControlHandler {
 public:
  vd::ControlReply handle(const vd::ControlRequest& request) override {
    std::lock_guard lock(mutex_);
    last_ = request;
    vd::ControlReply r;
    r.ok = true;
    std::visit(
        [&r](const auto& c) {
          using T = std::decay_t<decltype(c)>;
          if constexpr (std::is_same_v<T, vd::StatusQuery>) {
            r.payload = sample_status();
          } else if constexpr (std::is_same_v<T, vd::AssetsQuery>) {
            r.payload = std::vector<vd::AssetInfo>{sample_asset()};
          } else if constexpr (std::is_same_v<T, vd::AckCommand>) {
            if (c.alert_id == 404) {
              r.ok = false;
              r.error = "no alert 404";
            } else {
              r.payload = vd::AckInfo{c.alert_id, false};
            }
          } else if constexpr (std::is_same_v<T, vd::TrendQuery>) {
            r.payload =
                vd::Trend{c.asset, c.metric, {{c.since_ms + 1000, 0.4}, {c.since_ms + 2000, 1.2}}};
          } else if constexpr (std::is_same_v<T, vd::SpectrumQuery>) {
            r.payload = sample_spectrum();
          } else if constexpr (std::is_same_v<T, vd::ModelCommand>) {
            vd::ModelInfo m;
            m.asset = c.asset;
            m.state = "active";
            m.version = c.version;
            r.payload = std::vector<vd::ModelInfo>{m};
          } else if constexpr (std::is_same_v<T, vd::TrainCommand>) {
            vd::ModelInfo m;
            m.asset = c.asset;
            m.state = "learning";
            m.note = std::to_string(c.duration_s);
            r.payload = std::vector<vd::ModelInfo>{m};
          } else if constexpr (std::is_same_v<T, vd::QueueQuery>) {
            r.payload = std::monostate{};  // wrong payload: the CLI must notice
          }
        },
        request.command);
    return r;
  }
  vd::ControlRequest last() {
    std::lock_guard lock(mutex_);
    return last_;
  }

 private:
  std::mutex mutex_;
  vd::ControlRequest last_;
};

class Loop {
 public:
  Loop() : work_(io_.get_executor()), thread_([this] { io_.run(); }) {}
  ~Loop() {
    work_.reset();
    io_.stop();
    thread_.join();
  }
  template <class F>
  auto run(F f) -> decltype(f()) {
    auto task = std::make_shared<std::packaged_task<decltype(f())()>>(std::move(f));
    auto fut = task->get_future();
    boost::asio::post(io_, [task] { (*task)(); });
    return fut.get();
  }
  boost::asio::io_context& io() { return io_; }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
};

struct Result {
  int code;
  std::string out;
  std::string err;
};

class OnlineCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = VIBGATE_ONLINE_TEST_DIR;
    tmpl += "/cliXXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/vibgate.sock";
    server_ = std::make_unique<vd::ControlServer>(loop_.io(), daemon_);
    vd::ControlServerOptions options;
    options.allow_temp_dirs = true;
    const std::string err = loop_.run([&] { return server_->listen(path_, options); });
    ASSERT_EQ(err, "");
  }
  void TearDown() override {
    loop_.run([&] {
      server_->close();
      return 0;
    });
    loop_.run([&] {
      server_.reset();
      return 0;
    });
    std::filesystem::remove_all(dir_);
  }
  Result run(std::vector<std::string> args) {
    args.push_back("--socket");
    args.push_back(path_);
    std::ostringstream out, err;
    const int code = vc::run_online_command_line(args, out, err);
    return {code, out.str(), err.str()};
  }

  Loop loop_;
  FakeDaemon daemon_;
  std::unique_ptr<vd::ControlServer> server_;
  std::string dir_;
  std::string path_;
};

}  // namespace

TEST_F(OnlineCommandsTest, StatusJsonAndTable) {
  auto r = run({"status", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const auto j = json::parse(r.out);
  EXPECT_EQ(j["version"], "0.1.0");
  EXPECT_EQ(j["storage_error"], "disk full");
  EXPECT_EQ(j["counters"]["polls_total"], 1234.0);
  EXPECT_TRUE(std::holds_alternative<vd::StatusQuery>(daemon_.last().command));

  r = run({"status"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "vibgated 0.1.0")) << r.out;
  EXPECT_TRUE(contains(r.out, "polls_total")) << r.out;
}

TEST_F(OnlineCommandsTest, AssetsTrendSpectrumModelTrain) {
  auto r = run({"assets", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)[0]["zone"], "C");

  r = run({"trend", "pump-1", "--since", "2h", "--metric", "vrms", "--width", "30"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto q = std::get<vd::TrendQuery>(daemon_.last().command);
  EXPECT_EQ(q.asset, "pump-1");
  EXPECT_EQ(q.metric, "vrms");
  EXPECT_EQ(q.max_points, 30u);
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  EXPECT_NEAR(static_cast<double>(now_ms - q.since_ms), 7'200'000.0, 60'000.0);
  EXPECT_TRUE(contains(r.out, "pump-1 vrms (mm/s), last 2h: 2 points")) << r.out;

  r = run({"trend", "pump-1", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["points"].size(), 2u);
  EXPECT_EQ(std::get<vd::TrendQuery>(daemon_.last().command).metric, "score");

  r = run({"spectrum", "pump-1", "--max-hz", "200", "--width", "50"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "BPFO")) << r.out;
  EXPECT_EQ(std::get<vd::SpectrumQuery>(daemon_.last().command).asset, "pump-1");

  r = run({"model", "promote", "pump-1", "v2", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)[0]["version"], "v2");
  const auto promote = std::get<vd::ModelCommand>(daemon_.last().command);
  EXPECT_EQ(promote.action, vd::ModelCommand::Action::promote);
  EXPECT_EQ(promote.version, "v2");

  r = run({"model", "rollback", "pump-1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(std::get<vd::ModelCommand>(daemon_.last().command).action,
            vd::ModelCommand::Action::rollback);

  r = run({"model", "train", "pump-1", "--duration", "10m"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "pump-1: learning (600)\n");
  EXPECT_EQ(std::get<vd::TrainCommand>(daemon_.last().command).duration_s, 600u);
  r = run({"model", "train", "pump-1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(std::get<vd::TrainCommand>(daemon_.last().command).duration_s, 0u);
}

TEST_F(OnlineCommandsTest, AckDefaultsAndDaemonErrors) {
  setenv("USER", "bob", 1);
  auto r = run({"ack", "17", "--note", "bearing replaced"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "alert 17 acknowledged\n");
  const auto ack = std::get<vd::AckCommand>(daemon_.last().command);
  EXPECT_EQ(ack.alert_id, 17u);
  EXPECT_EQ(ack.note, "bearing replaced");
  EXPECT_EQ(ack.by.rfind("bob@", 0), 0u) << ack.by;

  r = run({"ack", "404", "--by", "carol"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "vibgate: no alert 404\n");
  EXPECT_EQ(r.out, "");

  r = run({"queue"});  // the fake daemon answers without a payload
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "vibgate: unexpected reply from vibgated (no queue information)\n");
}

TEST_F(OnlineCommandsTest, UsageErrors) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"alerts", "--since", "5x"}, std::vector<std::string>{"trend"},
        std::vector<std::string>{"trend", "pump-1", "--metric", "rpm"},
        std::vector<std::string>{"ack", "seventeen"}, std::vector<std::string>{"model"},
        std::vector<std::string>{"model", "promote", "pump-1"},
        std::vector<std::string>{"status", "--timeout", "0"}}) {
    const auto r = run(args);
    EXPECT_EQ(r.code, 2) << args[0] << " " << r.err;
    EXPECT_FALSE(r.err.empty());
  }
  EXPECT_TRUE(contains(run({"alerts", "--since", "5x"}).err, "'5x' is not a duration"));
}

TEST(OnlineCommands, UnreachableDaemonExits3) {
  std::string missing = VIBGATE_ONLINE_TEST_DIR;
  missing += "/no-such-dir/vibgate.sock";
  std::ostringstream out, err;
  const int code = vc::run_online_command_line({"status", "--socket", missing}, out, err);
  EXPECT_EQ(code, 3);
  EXPECT_EQ(err.str(), "vibgate: vibgated is not running (no socket at " + missing + ")\n");
  EXPECT_EQ(out.str(), "");

  // The socket also comes from VIBGATE_SOCKET.
  setenv("VIBGATE_SOCKET", missing.c_str(), 1);
  std::ostringstream out2, err2;
  EXPECT_EQ(vc::run_online_command_line({"devices", "--json"}, out2, err2), 3);
  EXPECT_TRUE(contains(err2.str(), missing)) << err2.str();
  unsetenv("VIBGATE_SOCKET");
}
