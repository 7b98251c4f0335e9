// online_commands.cpp — the operator commands: one request to vibgated over the control socket,
// then a table/chart for people or JSON for scripts (see the header and docs/cli.md).
#include "cli/online_commands.hpp"

#include <pwd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>

#include "cli/offline_commands.hpp"
#include "cli/terminal_plot.hpp"
#include "vibgate/daemon/control_client.hpp"

namespace vibgate::cli {

using nlohmann::ordered_json;
namespace vd = vibgate::daemon;

namespace {

constexpr std::int64_t kMaxDurationMs = 100LL * 365 * 86'400'000;  // 100 years

std::string fixed(double v, int decimals) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

// Code points in UTF-8 text (what a terminal shows for our tables).
std::size_t display_width(std::string_view s) {
  std::size_t n = 0;
  for (const char ch : s) n += (static_cast<unsigned char>(ch) & 0xC0u) != 0x80u ? 1u : 0u;
  return n;
}

std::string pad_right(const std::string& s, std::size_t width) {
  std::string out = s;
  const std::size_t w = display_width(s);
  if (w < width) out.append(width - w, ' ');
  return out;
}

std::string pad_left(const std::string& s, std::size_t width) {
  const std::size_t w = display_width(s);
  std::string out(w < width ? width - w : 0, ' ');
  out += s;
  return out;
}

// Key-value lines with the keys padded to one width.
std::string render_pairs(const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::size_t w = 0;
  for (const auto& [k, v] : pairs) w = std::max(w, display_width(k));
  std::string out;
  for (const auto& [k, v] : pairs) {
    out += pad_right(k, w + 2);
    out += v;
    out += '\n';
  }
  return out;
}

std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Plot width from the terminal (stdout), 72 when it is not one.
int terminal_plot_width() {
  winsize ws{};
  if (::isatty(STDOUT_FILENO) == 1 && ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 &&
      ws.ws_col > 0) {
    return std::clamp(static_cast<int>(ws.ws_col) - 10, 20, 200);
  }
  return 72;
}

CLI::Validator time_check() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (parse_time_point(text, 0)) return "";
        std::string why = "'";
        why += text;
        why += "' is not a time (like 2026-11-24T10:00Z, 2026-11-24, 3d for three days ago, now)";
        return why;
      },
      "TIME");
}

CLI::Validator duration_check() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (parse_duration(text)) return "";
        std::string why = "'";
        why += text;
        why += "' is not a duration (like 30s, 15m, 1h, 2d)";
        return why;
      },
      "DURATION");
}

}  // namespace

// ---- pure helpers -------------------------------------------------------------------------

std::optional<std::int64_t> parse_time_point(std::string_view text, std::int64_t now_ms) {
  if (text == "now") return now_ms;
  if (auto d = parse_duration(text)) return now_ms - d->count();
  std::string t(text);
  if (!t.empty() && (t.back() == 'Z' || t.back() == 'z')) t.pop_back();
  for (char& c : t)
    if (c == ' ') c = 'T';
  for (const char* fmt : {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"}) {
    std::tm tm{};
    const char* end = ::strptime(t.c_str(), fmt, &tm);
    if (end && *end == '\0') {
      const std::time_t secs = ::timegm(&tm);
      if (secs == static_cast<std::time_t>(-1)) return std::nullopt;
      return static_cast<std::int64_t>(secs) * 1000;
    }
  }
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  double total_ms = 0.0;
  std::size_t i = 0;
  bool bare_number = true;
  while (i < text.size()) {
    const std::size_t start = i;
    bool dot = false;
    while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || (text[i] == '.' && !dot))) {
      dot = dot || text[i] == '.';
      ++i;
    }
    const std::string number(text.substr(start, i - start));
    if (number.empty() || number == ".") return std::nullopt;
    const double v = std::strtod(number.c_str(), nullptr);
    double unit_ms = 1000.0;
    if (i < text.size()) {
      bare_number = false;
      switch (text[i]) {
        case 's':
          unit_ms = 1000.0;
          break;
        case 'm':
          unit_ms = 60'000.0;
          break;
        case 'h':
          unit_ms = 3'600'000.0;
          break;
        case 'd':
          unit_ms = 86'400'000.0;
          break;
        case 'w':
          unit_ms = 7 * 86'400'000.0;
          break;
        default:
          return std::nullopt;
      }
      ++i;
    } else if (!bare_number || start != 0) {
      return std::nullopt;  // "1h30": a number without unit after a unit
    }
    total_ms += v * unit_ms;
    if (!(total_ms <= static_cast<double>(kMaxDurationMs))) return std::nullopt;
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(total_ms)));
}

std::string format_duration(std::int64_t ms) {
  const std::int64_t s = std::max<std::int64_t>(ms, 0) / 1000;
  char b[48];
  if (s < 60) {
    std::snprintf(b, sizeof b, "%llds", static_cast<long long>(s));
  } else if (s < 3600) {
    std::snprintf(b, sizeof b, "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  } else if (s < 86400) {
    std::snprintf(b, sizeof b, "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60));
  } else {
    std::snprintf(b, sizeof b, "%lldd%02lldh", static_cast<long long>(s / 86400),
                  static_cast<long long>(s % 86400 / 3600));
  }
  return b;
}

std::string format_age(std::int64_t then_ms, std::int64_t now_ms, std::string_view never) {
  if (then_ms == 0) return std::string(never);
  std::string out = format_duration(now_ms - then_ms);
  out += " ago";
  return out;
}

std::string format_utc(std::int64_t ms) {
  if (ms == 0) return "-";
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return b;
}

std::string format_number(double v) {
  char b[48];
  if (std::isfinite(v) && v == std::trunc(v) && std::fabs(v) < 1e15) {
    std::snprintf(b, sizeof b, "%.0f", v);  // counters stay exact: 1234567, not 1.23457e+06
  } else {
    std::snprintf(b, sizeof b, "%.6g", v);
  }
  return b;
}

std::string level_name(std::uint32_t level) {
  switch (level) {
    case 0:
      return "normal";
    case 1:
      return "warning";
    case 2:
      return "alarm";
    default: {
      std::string s = "level ";
      s += std::to_string(level);
      return s;
    }
  }
}

std::string iso_zone_letter(std::uint32_t zone) {
  if (zone >= 1 && zone <= 4) return std::string(1, static_cast<char>('A' + zone - 1));
  return "-";
}

std::string alert_state(const vd::AlertInfo& alert) {
  if (alert.cleared_ms != 0) return "cleared";
  return alert.acknowledged ? "acknowledged" : "active";
}

std::string render_table(const std::vector<TableColumn>& columns,
                         const std::vector<std::vector<std::string>>& rows,
                         std::string_view empty) {
  if (rows.empty() && !empty.empty()) {
    std::string out(empty);
    out += '\n';
    return out;
  }
  std::vector<std::size_t> widths(columns.size());
  for (std::size_t c = 0; c < columns.size(); ++c) widths[c] = display_width(columns[c].title);
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < columns.size() && c < row.size(); ++c) {
      widths[c] = std::max(widths[c], display_width(row[c]));
    }
  }
  auto line = [&](const auto& cell_of) {
    std::string out;
    for (std::size_t c = 0; c < columns.size(); ++c) {
      if (c > 0) out += "  ";
      const std::string cell = cell_of(c);
      out += columns[c].right ? pad_left(cell, widths[c]) : pad_right(cell, widths[c]);
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    out += '\n';
    return out;
  };
  std::string out = line([&](std::size_t c) { return columns[c].title; });
  for (const auto& row : rows) {
    out += line([&](std::size_t c) { return c < row.size() ? row[c] : std::string(); });
  }
  return out;
}

std::string render_status(const vd::StatusInfo& s, std::int64_t now_ms) {
  std::string out = "vibgated ";
  out += s.version.empty() ? std::string("?") : s.version;
  out += ", up ";
  out += format_duration(static_cast<std::int64_t>(s.uptime_s) * 1000);
  out += '\n';
  std::string storage = s.storage_ok ? "ok" : "ERROR";
  if (!s.storage_error.empty()) {
    storage += s.storage_ok ? " (last error: " : ": ";
    storage += s.storage_error;
    if (s.storage_ok) storage += ')';
  }
  std::string uplink = s.uplink_state;
  if (uplink.empty()) uplink = s.uplink_connected ? "connected" : "not connected";
  std::string outbox = std::to_string(s.outbox_depth);
  outbox += s.outbox_depth == 1 ? " message" : " messages";
  if (s.outbox_oldest_ms != 0) {
    outbox += ", oldest ";
    outbox += format_age(s.outbox_oldest_ms, now_ms);
  }
  out += render_pairs({{"config", s.config_path.empty() ? "-" : s.config_path},
                       {"storage", storage},
                       {"uplink", uplink},
                       {"outbox", outbox},
                       {"devices", std::to_string(s.devices)},
                       {"assets", std::to_string(s.assets)},
                       {"active alerts", std::to_string(s.active_alerts)}});
  if (!s.counters.empty()) {
    out += '\n';
    std::vector<std::vector<std::string>> rows;
    for (const auto& [name, value] : s.counters) rows.push_back({name, format_number(value)});
    out += render_table({{"COUNTER"}, {"VALUE", true}}, rows);
  }
  return out;
}

std::string render_devices(const std::vector<vd::DeviceInfo>& devices, std::int64_t now_ms) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& d : devices) {
    std::string state = d.state;
    if (state.empty()) state = d.connected ? "online" : "offline";
    std::string rtt = "-";
    if (d.rtt_ms > 0.0) {
      rtt = fixed(d.rtt_ms, 1);
      rtt += " ms";
    }
    rows.push_back({d.name, d.kind, d.endpoint, state, rtt, std::to_string(d.polls),
                    std::to_string(d.errors), format_age(d.last_ok_ms, now_ms, "never"),
                    d.last_error.empty() ? std::string("-") : d.last_error});
  }
  return render_table({{"NAME"},
                       {"KIND"},
                       {"ENDPOINT"},
                       {"STATE"},
                       {"RTT", true},
                       {"POLLS", true},
                       {"ERRORS", true},
                       {"LAST OK"},
                       {"LAST ERROR"}},
                      rows, "no devices configured");
}

std::string render_tags(const std::vector<vd::TagInfo>& tags, std::int64_t now_ms) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& t : tags) {
    rows.push_back({t.device, t.name, format_number(t.value), t.unit.empty() ? "-" : t.unit,
                    t.good ? "good" : "bad", format_age(t.ts_ms, now_ms, "never"),
                    format_utc(t.ts_ms)});
  }
  return render_table(
      {{"DEVICE"}, {"TAG"}, {"VALUE", true}, {"UNIT"}, {"QUALITY"}, {"AGE"}, {"TIME (UTC)"}}, rows,
      "no tags");
}

// The DRIFT column: the larger PSI (score or feature), the state unless stable, and which
// quantity: "0.04", "0.31 drifted (env_rms)"; "n/a" while not computed, "n/a (no reference)" for
// a model without a drift reference, "-" when not scoring.
namespace {
std::string drift_cell(const vd::AssetInfo& a) {
  if (a.drift_state.empty() || a.model_state != "scoring") return "-";
  if (a.drift_state.rfind("n/a", 0) == 0)
    return a.drift_state.find("reference") != std::string::npos ? "n/a (no reference)" : "n/a";
  const bool feature = a.drift_psi_feature_max > a.drift_psi_score;
  std::string s = fixed(feature ? a.drift_psi_feature_max : a.drift_psi_score, 2);
  if (a.drift_state != "stable") {
    s += ' ';
    s += a.drift_state;
    s += " (";
    s += feature ? a.drift_feature : std::string("score");
    s += ')';
  }
  return s;
}
}  // namespace

std::string render_assets(const std::vector<vd::AssetInfo>& assets, std::int64_t now_ms) {
  // An asset with several channels has a row per channel, named as commands take it:
  // "<asset>:<channel>".
  std::map<std::string, int> rows_of;
  for (const auto& a : assets) ++rows_of[a.name];
  std::vector<std::vector<std::string>> rows;
  for (const auto& a : assets) {
    std::string name = a.name;
    if (rows_of[a.name] > 1) {
      name += ':';
      name += a.channel;
    }
    std::string model = a.model_state.empty() ? std::string("-") : a.model_state;
    if (a.model_state == "learning") {
      model += ' ';
      model += fixed(std::clamp(a.learning_progress, 0.0, 1.0) * 100.0, 0);
      model += '%';
    }
    // A version in shadow evaluation: "scoring, shadow v3 42% 0.31" (its latest score).
    if (!a.shadow_version.empty()) {
      model += ", shadow v";
      model += a.shadow_version;
      model += ' ';
      model += fixed(std::clamp(a.shadow_progress, 0.0, 1.0) * 100.0, 0);
      model += "% ";
      model += fixed(a.shadow_score, 2);
    }
    std::string alert = "-";
    if (a.active_alert_id != 0) {
      alert = "#";
      alert += std::to_string(a.active_alert_id);
      if (a.acknowledged) alert += " ack";
    }
    rows.push_back({name, level_name(a.alarm_level), fixed(a.score, 2), iso_zone_letter(a.iso_zone),
                    fixed(a.vrms_mm_s, 2), model,
                    a.model_version.empty() ? std::string("-") : a.model_version,
                    format_age(a.last_window_ms, now_ms, "never"), drift_cell(a), alert});
  }
  return render_table({{"NAME"},
                       {"LEVEL"},
                       {"SCORE", true},
                       {"ZONE"},
                       {"VRMS mm/s", true},
                       {"MODEL"},
                       {"VERSION"},
                       {"LAST WINDOW"},
                       {"DRIFT"},
                       {"ALERT"}},
                      rows, "no assets configured");
}

std::string render_alerts(const std::vector<vd::AlertInfo>& alerts) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& a : alerts) {
    std::string ack = "-";
    if (a.acknowledged) {
      ack = a.ack_by.empty() ? std::string("yes") : a.ack_by;
      if (!a.ack_note.empty()) {
        ack += ": ";
        ack += a.ack_note;
      }
    }
    rows.push_back({std::to_string(a.id), a.asset, level_name(a.level), alert_state(a),
                    format_utc(a.raised_ms), format_utc(a.cleared_ms), ack, a.message});
  }
  return render_table({{"ID", true},
                       {"ASSET"},
                       {"LEVEL"},
                       {"STATE"},
                       {"RAISED (UTC)"},
                       {"CLEARED (UTC)"},
                       {"ACK"},
                       {"MESSAGE"}},
                      rows, "no alerts");
}

std::string render_ack(const vd::AckInfo& ack) {
  std::string out = "alert ";
  out += std::to_string(ack.alert_id);
  out += ack.already_acknowledged ? " was already acknowledged\n" : " acknowledged\n";
  return out;
}

std::string render_queue(const vd::QueueInfo& q, std::int64_t now_ms) {
  std::string oldest = "-";
  if (q.oldest_ms != 0) {
    oldest = format_age(q.oldest_ms, now_ms);
    oldest += " (";
    oldest += format_utc(q.oldest_ms);
    oldest += ')';
  }
  return render_pairs({{"outbox depth", std::to_string(q.depth)},
                       {"outbox bytes", std::to_string(q.bytes)},
                       {"oldest", oldest},
                       {"uplink", q.uplink_connected ? "connected" : "not connected"},
                       {"sent total", std::to_string(q.sent_total)},
                       {"dropped total", std::to_string(q.dropped_total)}});
}

std::string render_ota(const vd::OtaInfo& info, std::int64_t now_ms) {
  if (!info.enabled) return "over-the-air updates: off ([ota] enabled = false)\n";
  std::string keys;
  for (const auto& k : info.trusted_keys) keys += (keys.empty() ? "" : ", ") + k;
  std::string out = "trusted keys: " + keys + "\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& b : info.bundles) {
    std::string bytes = std::to_string(b.next_offset) + "/" + std::to_string(b.total);
    std::string detail = b.state == "refused" ? b.reason + ": " + b.detail : b.targets;
    rows.push_back({b.bundle_id, b.state, bytes, format_age(b.updated_ms, now_ms),
                    b.key_id.empty() ? std::string("-") : b.key_id,
                    b.sequence ? std::to_string(b.sequence) : std::string("-"),
                    detail.empty() ? std::string("-") : detail});
  }
  out += render_table({{"BUNDLE"},
                       {"STATE"},
                       {"BYTES", true},
                       {"UPDATED"},
                       {"KEY"},
                       {"SEQUENCE", true},
                       {"TARGETS / REASON"}},
                      rows, "no bundles since the daemon started");
  return out;
}

std::string render_model_list(const std::vector<vd::ModelInfo>& models) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& m : models) {
    std::string version = m.state == "active" ? "* " : "  ";
    version += m.version.empty() ? std::string("-") : m.version;
    rows.push_back({m.asset, version, m.state.empty() ? std::string("-") : m.state,
                    format_utc(m.trained_ms), m.threshold > 0.0 ? format_number(m.threshold) : "-",
                    m.note.empty() ? std::string("-") : m.note});
  }
  return render_table(
      {{"ASSET"}, {"VERSION"}, {"STATE"}, {"TRAINED (UTC)"}, {"THRESHOLD", true}, {"NOTE"}}, rows,
      "no models");
}

std::string render_model_show(const std::string& asset, const std::vector<vd::ModelInfo>& models) {
  std::string out;
  for (const auto& m : models) {
    if (!m.asset.empty() && m.asset != asset) continue;
    out += m.state == "active" ? "* " : "  ";
    out += m.version.empty() ? std::string("-") : m.version;
    out += "  ";
    out += m.state.empty() ? std::string("-") : m.state;
    out += '\n';
    std::vector<std::pair<std::string, std::string>> pairs = {
        {"    trained", format_utc(m.trained_ms)},
        {"    threshold", m.threshold > 0.0 ? format_number(m.threshold) : "-"}};
    if (!m.file.empty()) pairs.emplace_back("    file", m.file);
    if (!m.feature_hash.empty()) pairs.emplace_back("    features", m.feature_hash);
    if (!m.note.empty()) pairs.emplace_back("    note", m.note);
    out += render_pairs(pairs);
  }
  if (out.empty()) {
    out = "no stored model versions for ";
    out += asset;
    out += '\n';
    return out;
  }
  std::string head = asset;
  head += " (* = active)\n";
  return head + out;
}

std::string render_model_outcome(const std::string& what, const std::string& asset,
                                 const vd::ControlPayload& payload) {
  std::string out;
  if (const auto* models = std::get_if<std::vector<vd::ModelInfo>>(&payload)) {
    for (const auto& m : *models) {
      out += m.asset.empty() ? asset : m.asset;
      out += ": ";
      out += m.state.empty() ? std::string("ok") : m.state;
      if (!m.version.empty()) {
        out += ", version ";
        out += m.version;
      }
      if (!m.note.empty()) {
        out += " (";
        out += m.note;
        out += ')';
      }
      out += '\n';
    }
  }
  if (out.empty()) {
    out = asset;
    out += ": ";
    out += what;
    out += ": done\n";
  }
  return out;
}

std::string render_trend_text(const vd::Trend& trend, std::string_view span,
                              const TrendChartOptions& options) {
  const std::string metric = trend.metric.empty() ? std::string("value") : trend.metric;
  std::string out;
  const vd::TrendPoint* latest = nullptr;
  const vd::TrendPoint* largest = nullptr;
  for (const auto& p : trend.points) {
    if (!std::isfinite(p.value)) continue;
    if (latest == nullptr || p.ts_ms >= latest->ts_ms) latest = &p;
    if (largest == nullptr || p.value > largest->value) largest = &p;
  }
  if (latest == nullptr) {
    out = "no ";
    out += metric;
    out += " data for ";
    out += trend.asset;
    out += " in the last ";
    out += span;
    out += '\n';
    return out;
  }
  out = trend.asset;
  out += ' ';
  out += metric;
  if (metric == "vrms") out += " (mm/s)";
  out += ", last ";
  out += span;
  out += ": ";
  out += std::to_string(trend.points.size());
  out += trend.points.size() == 1 ? " point" : " points";
  out += ", latest ";
  out += format_number(latest->value);
  out += ", max ";
  out += format_number(largest->value);
  out += " at ";
  out += format_utc(largest->ts_ms);
  out += '\n';
  out += render_trend_chart(trend.points, options);
  if (options.threshold) {
    out += options.unicode ? "╌╌" : "--";
    out += " alarm threshold ";
    out += format_number(*options.threshold);
    out += '\n';
  }
  return out;
}

std::string render_spectrum_text(const std::string& asset, const vd::Spectrum& spectrum,
                                 const SpectrumPlotOptions& options, std::int64_t now_ms) {
  std::string out;
  if (spectrum.amplitude.size() < 2 || !(spectrum.bin_hz > 0.0)) {
    out = "no spectrum for ";
    out += asset;
    out += " yet\n";
    return out;
  }
  out = asset;
  out += " spectrum at ";
  out += format_utc(spectrum.ts_ms);
  if (spectrum.ts_ms != 0) {
    out += " (";
    out += format_age(spectrum.ts_ms, now_ms);
    out += ')';
  }
  out += ", ";
  out += format_number(spectrum.bin_hz);
  out += " Hz per bin, 0-";
  char top[32];
  std::snprintf(top, sizeof top, "%.4g", spectrum_plot_max_hz(spectrum, options));
  out += top;
  out += " Hz shown\n";
  out += render_spectrum_plot(spectrum, options);
  return out;
}

// ---- JSON -----------------------------------------------------------------------------------

ordered_json to_json(const vd::StatusInfo& s) {
  ordered_json counters = ordered_json::object();
  for (const auto& [name, value] : s.counters) counters[name] = value;
  return {{"version", s.version},
          {"uptime_s", s.uptime_s},
          {"config_path", s.config_path},
          {"storage_ok", s.storage_ok},
          {"storage_error", s.storage_error},
          {"uplink_connected", s.uplink_connected},
          {"uplink_state", s.uplink_state},
          {"outbox_depth", s.outbox_depth},
          {"outbox_oldest_ms", s.outbox_oldest_ms},
          {"devices", s.devices},
          {"assets", s.assets},
          {"active_alerts", s.active_alerts},
          {"counters", std::move(counters)}};
}

ordered_json to_json(const vd::DeviceInfo& d) {
  return {{"name", d.name},
          {"kind", d.kind},
          {"endpoint", d.endpoint},
          {"state", d.state},
          {"connected", d.connected},
          {"rtt_ms", d.rtt_ms},
          {"polls", d.polls},
          {"errors", d.errors},
          {"last_ok_ms", d.last_ok_ms},
          {"last_error", d.last_error}};
}

ordered_json to_json(const vd::TagInfo& t) {
  return {{"device", t.device}, {"name", t.name}, {"value", t.value},
          {"unit", t.unit},     {"good", t.good}, {"ts_ms", t.ts_ms}};
}

ordered_json to_json(const vd::AssetInfo& a) {
  return {{"name", a.name},
          {"channel", a.channel},
          {"alarm_level", a.alarm_level},
          {"level_name", level_name(a.alarm_level)},
          {"score", a.score},
          {"iso_zone", a.iso_zone},
          {"zone", iso_zone_letter(a.iso_zone)},
          {"vrms_mm_s", a.vrms_mm_s},
          {"model_state", a.model_state},
          {"learning_progress", a.learning_progress},
          {"model_version", a.model_version},
          {"last_window_ms", a.last_window_ms},
          {"active_alert_id", a.active_alert_id},
          {"acknowledged", a.acknowledged},
          {"drift_state", a.drift_state},
          {"drift_psi_score", a.drift_psi_score},
          {"drift_psi_feature_max", a.drift_psi_feature_max},
          {"drift_feature", a.drift_feature},
          {"drift_windows", a.drift_windows},
          {"shadow_version", a.shadow_version},
          {"shadow_score", a.shadow_score},
          {"shadow_progress", a.shadow_progress}};
}

ordered_json to_json(const vd::AlertInfo& a) {
  return {{"id", a.id},
          {"asset", a.asset},
          {"level", a.level},
          {"level_name", level_name(a.level)},
          {"state", alert_state(a)},
          {"cause", a.cause},
          {"raised_ms", a.raised_ms},
          {"cleared_ms", a.cleared_ms},
          {"acknowledged", a.acknowledged},
          {"ack_by", a.ack_by},
          {"ack_note", a.ack_note},
          {"message", a.message}};
}

ordered_json to_json(const vd::AckInfo& a) {
  return {{"alert_id", a.alert_id}, {"already_acknowledged", a.already_acknowledged}};
}

ordered_json to_json(const vd::Trend& t) {
  ordered_json points = ordered_json::array();
  for (const auto& p : t.points) points.push_back({{"ts_ms", p.ts_ms}, {"value", p.value}});
  return {{"asset", t.asset}, {"metric", t.metric}, {"points", std::move(points)}};
}

ordered_json to_json(const vd::OtaInfo& o) {
  ordered_json bundles = ordered_json::array();
  for (const auto& b : o.bundles)
    bundles.push_back({{"bundle_id", b.bundle_id},
                       {"state", b.state},
                       {"next_offset", b.next_offset},
                       {"total", b.total},
                       {"updated_ms", b.updated_ms},
                       {"reason", b.reason},
                       {"detail", b.detail},
                       {"key_id", b.key_id},
                       {"sequence", b.sequence},
                       {"targets", b.targets}});
  return {{"enabled", o.enabled}, {"trusted_keys", o.trusted_keys}, {"bundles", bundles}};
}

ordered_json to_json(const vd::QueueInfo& q) {
  return {{"depth", q.depth},           {"bytes", q.bytes},
          {"oldest_ms", q.oldest_ms},   {"uplink_connected", q.uplink_connected},
          {"sent_total", q.sent_total}, {"dropped_total", q.dropped_total}};
}

ordered_json to_json(const vd::ModelInfo& m) {
  return {{"asset", m.asset},
          {"version", m.version},
          {"state", m.state},
          {"file", m.file},
          {"trained_ms", m.trained_ms},
          {"threshold", m.threshold},
          {"feature_hash", m.feature_hash},
          {"note", m.note}};
}

ordered_json to_json(const vd::ModelImportInfo& m) {
  return {{"asset", m.asset},
          {"state", m.state},
          {"import_id", m.import_id},
          {"version", m.version},
          {"error", m.error},
          {"file", m.file_name},
          {"rows", m.rows},
          {"layers", m.layers},
          {"normalization", m.normalization},
          {"threshold_float", m.threshold_float},
          {"threshold_int8", m.threshold_int8},
          {"pearson", m.pearson},
          {"max_abs_diff", m.max_abs_diff},
          {"max_rel_diff", m.max_rel_diff},
          {"verdict_agreement", m.verdict_agreement},
          {"warnings", m.warnings},
          {"note", m.note}};
}

ordered_json to_json(const vd::ModelExportInfo& m) {
  return {{"asset", m.asset},
          {"version", m.version},
          {"origin", m.origin},
          {"onnx_bytes", m.onnx.size()}};
}

std::string render_model_import(const vd::ModelImportInfo& m) {
  std::string layers;
  for (const auto& l : m.layers) layers += (layers.empty() ? "" : ", ") + l;
  std::vector<std::pair<std::string, std::string>> pairs = {
      {"asset", m.asset}, {"file", m.file_name}, {"state", m.state}};
  if (!m.version.empty()) pairs.emplace_back("version", m.version);
  if (!m.error.empty()) pairs.emplace_back("error", m.error);
  if (m.rows > 0) {
    pairs.emplace_back("layers", layers);
    pairs.emplace_back("normalization", m.normalization);
    pairs.emplace_back("calibration rows", std::to_string(m.rows));
    pairs.emplace_back("thresholds", "float " + format_number(m.threshold_float) + ", int8 " +
                                         format_number(m.threshold_int8));
    pairs.emplace_back("int8 vs float", "Pearson " + fixed(m.pearson, 6) + ", max |score diff| " +
                                            format_number(m.max_abs_diff) + ", max relative diff " +
                                            format_number(m.max_rel_diff) + ", same verdict " +
                                            fixed(100 * m.verdict_agreement, 2) + " %");
  }
  for (const auto& w : m.warnings) pairs.emplace_back("warning", w);
  return render_pairs(pairs);
}

ordered_json to_json(const vd::Spectrum& s) {
  ordered_json markers = ordered_json::array();
  for (const auto& m : s.markers) markers.push_back({{"name", m.name}, {"hz", m.hz}});
  ordered_json amplitude = ordered_json::array();
  for (const float v : s.amplitude) amplitude.push_back(v);
  return {{"asset", s.asset},
          {"ts_ms", s.ts_ms},
          {"bin_hz", s.bin_hz},
          {"markers", std::move(markers)},
          {"amplitude", std::move(amplitude)}};
}

ordered_json to_json(const vd::ControlPayload& payload) {
  return std::visit(
      [](const auto& p) -> ordered_json {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return {{"ok", true}};
        } else if constexpr (requires { p.begin(); }) {
          ordered_json list = ordered_json::array();
          for (const auto& x : p) list.push_back(to_json(x));
          return list;
        } else {
          return to_json(p);
        }
      },
      payload);
}

std::string default_ack_by() {
  std::string user;
  if (const char* u = std::getenv("USER"); u != nullptr && *u != '\0') {
    user = u;
  } else if (const passwd* pw = ::getpwuid(::geteuid()); pw != nullptr) {
    user = pw->pw_name;
  } else {
    user = "uid";
    user += std::to_string(::geteuid());
  }
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  if (host[0] != '\0') {
    user += '@';
    user += host;
  }
  return user;
}

// ---- the commands -------------------------------------------------------------------------

struct OnlineCommands::State {
  std::ostream& out;
  std::ostream& err;

  CLI::App* status = nullptr;
  CLI::App* devices = nullptr;
  CLI::App* tags = nullptr;
  CLI::App* assets = nullptr;
  CLI::App* alerts = nullptr;
  CLI::App* ack = nullptr;
  CLI::App* trend = nullptr;
  CLI::App* spectrum = nullptr;
  CLI::App* queue = nullptr;
  CLI::App* model = nullptr;
  CLI::App* model_list = nullptr;
  CLI::App* model_show = nullptr;
  CLI::App* model_promote = nullptr;
  CLI::App* model_rollback = nullptr;
  CLI::App* model_train = nullptr;
  CLI::App* model_import = nullptr;
  CLI::App* model_export = nullptr;

  // model import / export (file forms: offline_commands.hpp)
  ModelImportArgs import_args;
  FeatureOptions fo;
  InputOptions in;
  std::string export_model, export_onnx;
  double import_wait_s = 600;
  CLI::App* model_shadow = nullptr;
  CLI::App* ota = nullptr;

  // shared (only one command runs)
  std::string socket = kDefaultControlSocket;
  double timeout_s = 5.0;
  bool json = false;
  std::string device, asset, version;
  // alerts
  bool active_only = false;
  std::string alerts_since;
  std::uint32_t limit = 0;
  // ack
  std::uint64_t alert_id = 0;
  std::string note;
  std::string by;
  // trend / spectrum
  std::string since = "1h";
  std::string metric = "score";
  int width = 0;
  int height = 0;
  double max_hz = 0.0;
  // model train
  std::string duration = "0";
  std::string train_from, train_to;
  bool train_stage = false;
  // model shadow
  std::string shadow_for = "0";
  std::string shadow_file;

  State(std::ostream& o, std::ostream& e) : out(o), err(e) {}

  // --socket, --timeout, --json on `cmd`.
  void add_common(CLI::App* cmd) {
    cmd->add_option("--socket", socket, "Control socket of vibgated")
        ->envname("VIBGATE_SOCKET")
        ->capture_default_str();
    cmd->add_option("--timeout", timeout_s, "Seconds to wait for the daemon (default 5)")
        ->check(CLI::PositiveNumber);
    cmd->add_flag("--json", json, "Machine-readable JSON on stdout");
  }
  int run();
  // One request; 0 with *reply set, or the exit code after printing the error line.
  int call(vd::ControlCommand command, vd::ControlReply* reply);
  // The payload was not what `command` answers: one error line, exit code 1.
  int unexpected_reply(std::string_view what);
  // One request whose reply payload must be a T; prints its JSON or render(payload).
  template <class T, class Render>
  int show(vd::ControlCommand command, std::string_view what, Render render);
  // promote / rollback / train: the reply is empty or model entries; prints the outcome.
  int model_change(vd::ControlCommand command, const std::string& what);
  int run_model_import(std::int64_t now);
  int run_model_export();
};

OnlineCommands::OnlineCommands(CLI::App& app, std::ostream& out, std::ostream& err)
    : s_(new State(out, err)) {
  State& s = *s_;
  const std::string group = "Operator commands (talk to vibgated)";

  s.status = app.add_subcommand("status", "Daemon health: uptime, storage, uplink, counters");
  s.devices = app.add_subcommand("devices", "Field devices: state, round trip, polls, errors");
  s.tags = app.add_subcommand("tags", "Latest tag values");
  s.tags->add_option("device", s.device, "Only this device");
  s.assets = app.add_subcommand("assets", "Monitored machines: level, score, ISO zone, model");
  s.alerts = app.add_subcommand("alerts", "Alert history");
  s.alerts->add_flag("--active", s.active_only, "Only alerts that are not cleared");
  s.alerts->add_option("--since", s.alerts_since, "Raised within this long (30s, 15m, 1h, 2d)")
      ->check(duration_check());
  s.alerts->add_option("--limit", s.limit, "At most N alerts (default: the daemon's)");
  s.ack = app.add_subcommand("ack", "Acknowledge an alert");
  s.ack->add_option("id", s.alert_id, "Alert id")->required();
  s.ack->add_option("--note", s.note, "Why / what was done");
  s.ack->add_option("--by", s.by, "Who acknowledges (default $USER@hostname)");
  s.trend = app.add_subcommand("trend", "Chart of an asset's score or velocity over time");
  s.trend->add_option("asset", s.asset, "Asset name")->required();
  s.trend->add_option("--since", s.since, "Time span back from now (default 1h)")
      ->check(duration_check());
  s.trend->add_option("--metric", s.metric, "score (default) or vrms")
      ->check(CLI::IsMember({"score", "vrms"}));
  s.trend->add_option("--width", s.width, "Plot columns (default: terminal width)")
      ->check(CLI::Range(8, 1000));
  s.trend->add_option("--height", s.height, "Plot rows (default 12)")->check(CLI::Range(3, 200));
  s.spectrum = app.add_subcommand("spectrum", "Latest amplitude spectrum of an asset");
  s.spectrum->add_option("asset", s.asset, "Asset name")->required();
  s.spectrum
      ->add_option("--max-hz", s.max_hz, "Highest frequency shown (default 4 x the highest marker)")
      ->check(CLI::PositiveNumber);
  s.spectrum->add_option("--width", s.width, "Plot columns (default: terminal width)")
      ->check(CLI::Range(8, 1000));
  s.spectrum->add_option("--height", s.height, "Plot rows (default 12)")->check(CLI::Range(3, 200));
  s.queue = app.add_subcommand("queue", "Store-and-forward outbox and uplink totals");
  s.ota = app.add_subcommand("ota", "Over-the-air model bundles: partial transfers, recent bundles");

  s.model = app.add_subcommand(
      "model", "Model versions: list, show, promote, rollback, train, shadow, import, export");
  s.model->require_subcommand(1);
  s.model_list = s.model->add_subcommand("list", "Model versions of every asset (or one)");
  s.model_list->add_option("asset", s.asset, "Only this asset");
  s.model_show = s.model->add_subcommand("show", "Every stored version of one asset");
  s.model_show->add_option("asset", s.asset, "Asset name")->required();
  s.model_promote = s.model->add_subcommand("promote", "Make a stored version the active one");
  s.model_promote->add_option("asset", s.asset, "Asset name")->required();
  s.model_promote->add_option("version", s.version, "Version to activate")->required();
  s.model_rollback =
      s.model->add_subcommand("rollback", "Return to the version active before the current one");
  s.model_rollback->add_option("asset", s.asset, "Asset name")->required();
  s.model_train = s.model->add_subcommand(
      "train",
      "Relearn an asset's baseline from live data (or from stored windows with --from/--to), "
      "then activate it");
  s.model_train->add_option("asset", s.asset, "Asset name")->required();
  auto* dur = s.model_train
                  ->add_option("--duration", s.duration,
                               "Live data to learn from (e.g. 10m; default: the asset's learn_s)")
                  ->check(duration_check());
  auto* from = s.model_train
                   ->add_option("--from", s.train_from,
                                "Train from the windows stored since this time (UTC date/time, "
                                "or a duration back from now: 3d)")
                   ->check(time_check())
                   ->excludes(dur);
  s.model_train->add_option("--to", s.train_to, "... until this time (default: now)")
      ->check(time_check())
      ->needs(from);
  s.model_train
      ->add_flag("--stage", s.train_stage,
                 "Stage the trained version and evaluate it in shadow beside the active one "
                 "(promoted or rolled back automatically) instead of activating it")
      ->needs(from);
  s.model_shadow = s.model->add_subcommand(
      "shadow",
      "Evaluate a stored version (or a model file) beside the active model, then promote it or "
      "roll it back automatically");
  s.model_shadow->add_option("asset", s.asset, "Asset name")->required();
  auto* shadow_version =
      s.model_shadow->add_option("version", s.version, "Stored version to evaluate");
  s.model_shadow
      ->add_option("--file", s.shadow_file,
                   "A model file (.vgm, readable by vibgated) to stage as a new version and "
                   "evaluate")
      ->excludes(shadow_version);
  s.model_shadow
      ->add_option("--for", s.shadow_for,
                   "Evaluation period (e.g. 10m; default: [models] shadow_s of the daemon)")
      ->check(duration_check());

  s.model_import = s.model->add_subcommand(
      "import",
      "Import an ONNX autoencoder: into a model file (--out, with --calibration recordings) or as "
      "a new active version of a running asset (--asset)");
  s.model_import->add_option("file", s.import_args.onnx, "ONNX model (float32, opset 11-17)")
      ->required();
  auto* imp_out =
      s.model_import->add_option("--out", s.import_args.out, "Model file to write (no daemon)");
  s.model_import->add_option("--asset", s.asset, "Asset (or asset:channel) of the running daemon")
      ->excludes(imp_out);
  s.model_import->add_option(
      "--calibration", s.import_args.calibration,
      "With --out: healthy recordings (feature rows as `vibgate train` makes them); "
      "with --asset: a `vibgate features --format csv` file (default: the asset's "
      "stored healthy windows)");
  auto* imp_from =
      s.model_import
          ->add_option("--from", s.train_from, "With --asset: stored windows since this time")
          ->check(time_check());
  s.model_import->add_option("--to", s.train_to, "... until this time (default: now)")
      ->check(time_check())
      ->needs(imp_from);
  s.model_import
      ->add_option("--train-overlap", s.import_args.train_overlap,
                   "With --out: overlap of the calibration windows (default 0.75)")
      ->check(CLI::Range(0.0, 0.9375));
  s.model_import->add_option("--threshold-quantile", s.import_args.quantile,
                             "Calibration-error quantile (default 0.995)");
  s.model_import->add_option("--threshold-margin", s.import_args.margin,
                             "Threshold margin factor (default 2.0)");
  s.model_import
      ->add_option("--wait", s.import_wait_s,
                   "With --asset: seconds to wait for the import (default 600)")
      ->check(CLI::PositiveNumber);
  s.fo.add_to(*s.model_import);
  s.in.add_to(*s.model_import);
  s.model_export = s.model->add_subcommand(
      "export",
      "Write a model's float network as ONNX: a model file (--model) or an asset's active model");
  s.model_export->add_option("asset", s.asset, "Asset (or asset:channel) of the running daemon");
  s.model_export->add_option("--model", s.export_model, "Model file (no daemon)");
  s.model_export->add_option("--onnx", s.export_onnx, "ONNX file to write")->required();

  for (CLI::App* cmd : {s.status, s.devices, s.tags, s.assets, s.alerts, s.ack, s.trend, s.spectrum,
                        s.queue, s.ota, s.model_list, s.model_show, s.model_promote, s.model_rollback,
                        s.model_train, s.model_shadow, s.model_import, s.model_export}) {
    s.add_common(cmd);
  }
  for (CLI::App* cmd : {s.status, s.devices, s.tags, s.assets, s.alerts, s.ack, s.trend, s.spectrum,
                        s.queue, s.ota, s.model}) {
    cmd->group(group);
  }
}

OnlineCommands::~OnlineCommands() { delete s_; }

bool OnlineCommands::selected() const {
  const State& s = *s_;
  for (const CLI::App* cmd : {s.status, s.devices, s.tags, s.assets, s.alerts, s.ack, s.trend,
                              s.spectrum, s.queue, s.ota, s.model}) {
    if (cmd->parsed()) return true;
  }
  return false;
}

int OnlineCommands::run_selected() {
  try {
    return s_->run();
  } catch (const std::exception& e) {
    s_->err << "vibgate: " << e.what() << "\n";
    return kExitDaemonError;
  }
}

int OnlineCommands::State::call(vd::ControlCommand command, vd::ControlReply* reply) {
  const auto timeout = std::chrono::milliseconds(std::max(1LL, std::llround(timeout_s * 1000.0)));
  std::string error;
  auto r = vd::call_control(socket, vd::ControlRequest{1, std::move(command)}, timeout, &error);
  if (!r) {
    err << "vibgate: " << error << "\n";
    return kExitUnreachable;
  }
  if (!r->ok) {
    err << "vibgate: "
        << (r->error.empty() ? std::string("vibgated refused the command") : r->error) << "\n";
    return kExitDaemonError;
  }
  *reply = std::move(*r);
  return kExitOk;
}

int OnlineCommands::State::unexpected_reply(std::string_view what) {
  err << "vibgate: unexpected reply from vibgated (no " << what << ")\n";
  return kExitDaemonError;
}

template <class T, class Render>
int OnlineCommands::State::show(vd::ControlCommand command, std::string_view what, Render render) {
  vd::ControlReply reply;
  if (const int rc = call(std::move(command), &reply); rc != kExitOk) return rc;
  const T* payload = std::get_if<T>(&reply.payload);
  if (payload == nullptr) return unexpected_reply(what);
  if (json) {
    out << to_json(reply.payload).dump(2) << '\n';
  } else {
    out << render(*payload);
  }
  return kExitOk;
}

int OnlineCommands::State::model_change(vd::ControlCommand command, const std::string& what) {
  vd::ControlReply reply;
  if (const int rc = call(std::move(command), &reply); rc != kExitOk) return rc;
  if (!std::holds_alternative<std::monostate>(reply.payload) &&
      !std::holds_alternative<std::vector<vd::ModelInfo>>(reply.payload)) {
    return unexpected_reply("model information");
  }
  if (json) {
    out << to_json(reply.payload).dump(2) << '\n';
  } else {
    out << render_model_outcome(what, asset, reply.payload);
  }
  return kExitOk;
}

int OnlineCommands::State::run() {
  const std::int64_t now = now_unix_ms();
  if (status->parsed()) {
    return show<vd::StatusInfo>(vd::StatusQuery{}, "status",
                                [now](const auto& p) { return render_status(p, now); });
  }
  if (devices->parsed()) {
    return show<std::vector<vd::DeviceInfo>>(
        vd::DevicesQuery{}, "device list", [now](const auto& p) { return render_devices(p, now); });
  }
  if (tags->parsed()) {
    return show<std::vector<vd::TagInfo>>(vd::TagsQuery{device}, "tag list",
                                          [now](const auto& p) { return render_tags(p, now); });
  }
  if (assets->parsed()) {
    return show<std::vector<vd::AssetInfo>>(vd::AssetsQuery{}, "asset list",
                                            [now](const auto& p) { return render_assets(p, now); });
  }
  if (alerts->parsed()) {
    vd::AlertsQuery q;
    q.active_only = active_only;
    q.limit = limit;
    if (!alerts_since.empty()) q.since_ms = now - parse_duration(alerts_since)->count();
    return show<std::vector<vd::AlertInfo>>(q, "alert list",
                                            [](const auto& p) { return render_alerts(p); });
  }
  if (ack->parsed()) {
    vd::AckCommand c{alert_id, note, by.empty() ? default_ack_by() : by};
    return show<vd::AckInfo>(std::move(c), "acknowledgement",
                             [](const auto& p) { return render_ack(p); });
  }
  if (trend->parsed()) {
    TrendChartOptions o;
    o.width = width > 0 ? width : terminal_plot_width();
    o.height = height > 0 ? height : 12;
    o.unicode = terminal_supports_unicode();
    o.end_ms = now;
    o.begin_ms = now - parse_duration(since)->count();
    if (metric == "score") o.threshold = 1.0;
    // The chart shows one value per column: let the daemon thin the series to that; JSON gets
    // the daemon's default resolution.
    vd::TrendQuery q{asset, metric, o.begin_ms, 0, json ? 0u : static_cast<std::uint32_t>(o.width)};
    return show<vd::Trend>(std::move(q), "trend",
                           [&](const vd::Trend& t) { return render_trend_text(t, since, o); });
  }
  if (spectrum->parsed()) {
    SpectrumPlotOptions o;
    o.width = width > 0 ? width : terminal_plot_width();
    o.height = height > 0 ? height : 12;
    o.max_hz = max_hz;
    o.unicode = terminal_supports_unicode();
    return show<vd::Spectrum>(vd::SpectrumQuery{asset}, "spectrum", [&](const vd::Spectrum& sp) {
      return render_spectrum_text(sp.asset.empty() ? asset : sp.asset, sp, o, now);
    });
  }
  if (ota->parsed()) {
    return show<vd::OtaInfo>(vd::OtaQuery{}, "over-the-air information",
                             [now](const auto& p) { return render_ota(p, now); });
  }
  if (queue->parsed()) {
    return show<vd::QueueInfo>(vd::QueueQuery{}, "queue information",
                               [now](const auto& p) { return render_queue(p, now); });
  }
  if (model_list->parsed()) {
    return show<std::vector<vd::ModelInfo>>(vd::ModelsQuery{asset}, "model list",
                                            [](const auto& p) { return render_model_list(p); });
  }
  if (model_show->parsed()) {
    return show<std::vector<vd::ModelInfo>>(
        vd::ModelsQuery{asset}, "model list",
        [this](const auto& p) { return render_model_show(asset, p); });
  }
  if (model_promote->parsed()) {
    std::string what = "promote ";
    what += version;
    return model_change(vd::ModelCommand{vd::ModelCommand::Action::promote, asset, version}, what);
  }
  if (model_rollback->parsed()) {
    return model_change(vd::ModelCommand{vd::ModelCommand::Action::rollback, asset, ""},
                        "rollback");
  }
  if (model_train->parsed() && !train_from.empty()) {
    const auto from = *parse_time_point(train_from, now);
    const auto to = train_to.empty() ? now : *parse_time_point(train_to, now);
    if (from <= 0 || to <= from) {
      err << "vibgate: model train: --from must be before --to\n";
      return kExitUsage;
    }
    std::string what = "train from the windows stored between ";
    what += format_utc(from);
    what += " and ";
    what += format_utc(to);
    if (train_stage) what += ", staged for a shadow evaluation";
    return model_change(vd::TrainCommand{asset, 0, from, to, train_stage}, what);
  }
  if (model_train->parsed()) {
    const auto d = parse_duration(duration);
    const auto seconds =
        static_cast<std::uint32_t>(std::min<std::int64_t>((d->count() + 999) / 1000, 0xFFFFFFFFLL));
    std::string what = "relearn from ";
    what += seconds == 0 ? std::string("the configured time") : format_duration(d->count());
    what += " of live data";
    return model_change(vd::TrainCommand{asset, seconds}, what);
  }
  if (model_import->parsed()) return run_model_import(now);
  if (model_export->parsed()) return run_model_export();
  if (model_shadow->parsed()) {
    if (version.empty() && shadow_file.empty()) {
      err << "vibgate: model shadow: give a stored VERSION or --file FILE\n";
      return kExitUsage;
    }
    const auto d = parse_duration(shadow_for);
    const auto seconds =
        static_cast<std::uint32_t>(std::min<std::int64_t>((d->count() + 999) / 1000, 0xFFFFFFFFLL));
    std::string file = shadow_file;
    if (!file.empty()) {
      // The daemon opens the file: make a relative path absolute from here.
      std::error_code ec;
      const auto abs = std::filesystem::absolute(file, ec);
      if (!ec) file = abs.string();
    }
    std::string what = "shadow evaluation of ";
    what += file.empty() ? "version " + version : file;
    return model_change(vd::ShadowCommand{asset, version, seconds, file}, what);
  }
  err << "vibgate: no operator command selected\n";
  return kExitUsage;
}

namespace {

// Rows of a `vibgate features --format csv` file: the feature columns after file,channel,start_s
// and their values (iso_zone letters read as 0; the daemon ignores that column).
std::string read_features_csv(const std::string& path, std::vector<std::string>& columns,
                              std::vector<float>& values, std::size_t& rows) {
  std::ifstream f(path);
  if (!f) return path + ": cannot open";
  std::string line;
  auto split = [](const std::string& l) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (true) {
      const auto c = l.find(',', pos);
      out.push_back(l.substr(pos, c == std::string::npos ? std::string::npos : c - pos));
      if (c == std::string::npos) break;
      pos = c + 1;
    }
    return out;
  };
  if (!std::getline(f, line)) return path + ": empty file";
  if (!line.empty() && line.back() == '\r') line.pop_back();
  auto head = split(line);
  if (head.size() < 4 || head[0] != "file" || head[1] != "channel" || head[2] != "start_s")
    return path +
           ": not a `vibgate features --format csv` file (header must start with "
           "file,channel,start_s)";
  columns.assign(head.begin() + 3, head.end());
  rows = 0;
  std::size_t lineno = 1;
  while (std::getline(f, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const auto cells = split(line);
    if (cells.size() != head.size())
      return path + ": line " + std::to_string(lineno) + " has " + std::to_string(cells.size()) +
             " fields, the header " + std::to_string(head.size());
    if (++rows > vd::kMaxCalibrationRows)
      return path + ": more than " + std::to_string(vd::kMaxCalibrationRows) +
             " rows (at most that many are sent)";
    for (std::size_t i = 3; i < cells.size(); ++i) {
      if (columns[i - 3] == "iso_zone") {
        values.push_back(0.f);
        continue;
      }
      double v = 0;
      const auto r = std::from_chars(cells[i].data(), cells[i].data() + cells[i].size(), v);
      if (r.ec != std::errc() || r.ptr != cells[i].data() + cells[i].size())
        return path + ": line " + std::to_string(lineno) + ": '" + cells[i] + "' is not a number";
      values.push_back(static_cast<float>(v));
    }
  }
  if (rows == 0) return path + ": no rows";
  return {};
}

}  // namespace

int OnlineCommands::State::run_model_import(std::int64_t now) {
  if (!import_args.out.empty()) {
    if (import_args.calibration.empty()) {
      err << "vibgate: model import --out: --calibration RECORDING... is required (healthy "
             "recordings)\n";
      return kExitUsage;
    }
    import_args.json = json;
    return run_model_import_offline(import_args, fo, in);
  }
  if (asset.empty()) {
    err << "vibgate: model import: give --out MODEL.vgm (a model file) or --asset ASSET (the "
           "running daemon)\n";
    return kExitUsage;
  }
  if (fo.any_set()) {
    err << "vibgate: model import --asset: feature options do not apply (the asset's configuration "
           "is used)\n";
    return kExitUsage;
  }
  if (!import_args.calibration.empty() && !train_from.empty()) {
    err << "vibgate: model import --asset: --calibration FEATURES.csv and --from/--to exclude each "
           "other\n";
    return kExitUsage;
  }
  if (import_args.calibration.size() > 1) {
    err << "vibgate: model import --asset: --calibration takes one features CSV file\n";
    return kExitUsage;
  }
  vd::ModelImportCommand c;
  c.asset = asset;
  c.file_name = std::filesystem::path(import_args.onnx).filename().string();
  if (const auto e = read_file_bytes(import_args.onnx, vd::kMaxOnnxImport, c.onnx); !e.empty()) {
    err << "vibgate: " << e << "\n";
    return kExitDaemonError;
  }
  if (c.onnx.empty()) {
    err << "vibgate: " << import_args.onnx << ": the file is empty\n";
    return kExitDaemonError;
  }
  if (!train_from.empty()) {
    c.from_ms = *parse_time_point(train_from, now);
    c.to_ms = train_to.empty() ? now : *parse_time_point(train_to, now);
    if (c.from_ms <= 0 || c.to_ms <= c.from_ms) {
      err << "vibgate: model import: --from must be before --to\n";
      return kExitUsage;
    }
  }
  if (!import_args.calibration.empty()) {
    std::size_t rows = 0;
    const std::string& csv = import_args.calibration.front();
    if (const auto e = read_features_csv(csv, c.columns, c.values, rows); !e.empty()) {
      err << "vibgate: " << e << "\n";
      return kExitDaemonError;
    }
    c.calibration_name = std::filesystem::path(csv).filename().string();
    if (c.onnx.size() + 4 * c.values.size() + 64 * 1024 > vd::kMaxControlMessage) {
      err << "vibgate: " << csv << ": the ONNX file and " << rows
          << " calibration rows exceed one control message (4 MiB); use fewer rows\n";
      return kExitDaemonError;
    }
  }
  vd::ControlReply reply;
  if (const int rc = call(c, &reply); rc != kExitOk) return rc;
  const auto* started = std::get_if<vd::ModelImportInfo>(&reply.payload);
  if (started == nullptr) return unexpected_reply("import state");
  const std::uint64_t id = started->import_id;
  // The import runs on the daemon's trainer thread: poll its state (bounded by --wait).
  vd::ModelImportInfo info = *started;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(std::llround(import_wait_s * 1000));
  while (info.state == "importing") {
    if (std::chrono::steady_clock::now() > deadline) {
      err << "vibgate: model import: still importing after " << import_wait_s
          << " s (vibgate model list shows the outcome)\n";
      return kExitDaemonError;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    vd::ModelImportCommand q;
    q.asset = asset;
    if (const int rc = call(q, &reply); rc != kExitOk) return rc;
    const auto* p = std::get_if<vd::ModelImportInfo>(&reply.payload);
    if (p == nullptr) return unexpected_reply("import state");
    if (p->import_id != id) {
      err << "vibgate: model import: another import of " << asset << " started meanwhile\n";
      return kExitDaemonError;
    }
    info = *p;
  }
  if (json) {
    out << to_json(info).dump(2) << '\n';
  } else {
    out << render_model_import(info);
  }
  if (info.state != "active") {
    err << "vibgate: " << (info.error.empty() ? std::string("model import failed") : info.error)
        << "\n";
    return kExitDaemonError;
  }
  return kExitOk;
}

int OnlineCommands::State::run_model_export() {
  if (!export_model.empty()) {
    if (!asset.empty()) {
      err << "vibgate: model export: give an ASSET or --model FILE, not both\n";
      return kExitUsage;
    }
    return run_model_export_offline(export_model, export_onnx);
  }
  if (asset.empty()) {
    err << "vibgate: model export: give an ASSET (the running daemon) or --model MODEL.vgm\n";
    return kExitUsage;
  }
  vd::ControlReply reply;
  if (const int rc = call(vd::ModelExportQuery{asset}, &reply); rc != kExitOk) return rc;
  const auto* p = std::get_if<vd::ModelExportInfo>(&reply.payload);
  if (p == nullptr) return unexpected_reply("ONNX model");
  if (const auto e = write_file_atomic(export_onnx, p->onnx); !e.empty()) {
    err << "vibgate: " << e << "\n";
    return kExitDaemonError;
  }
  if (json) {
    ordered_json j = to_json(*p);
    j["file"] = export_onnx;
    out << j.dump(2) << '\n';
  } else {
    out << "wrote " << export_onnx << " (" << p->onnx.size() << " bytes): " << p->asset
        << " version " << p->version << " (" << p->origin << ")\n";
  }
  return kExitOk;
}

int run_online_command_line(const std::vector<std::string>& args, std::ostream& out,
                            std::ostream& err) {
  CLI::App app{"vibgate — operator commands"};
  app.require_subcommand(1);
  OnlineCommands online(app, out, err);
  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend());
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return app.exit(e, out, err) == 0 ? kExitOk : kExitUsage;
  }
  return online.run_selected();
}

}  // namespace vibgate::cli
