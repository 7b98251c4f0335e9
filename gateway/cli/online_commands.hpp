// gateway/cli/online_commands.hpp — the operator commands of `vibgate` that talk to the running
// daemon over its control socket (docs/cli.md "Operator commands", docs/control-socket.md):
// status, devices, tags, assets, alerts, ack, trend, spectrum, queue and model list|show|promote|
// rollback|train|import|export (import/export also have file forms without a daemon).
//
// The rendering (tables, durations, times, JSON) is pure and declared here so tests can check it
// without a socket; the charts are in cli/terminal_plot.hpp.
//
// Exit codes of every operator command: 0 ok, 1 the daemon answered with an error (printed as
// "vibgate: <error>"), 2 usage error, 3 the daemon could not be reached.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/terminal_plot.hpp"
#include "vibgate/daemon/control_protocol.hpp"

namespace vibgate::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitDaemonError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;
inline constexpr const char* kDefaultControlSocket = "/run/vibgate/vibgate.sock";

// ---- pure helpers -------------------------------------------------------------------------

// "30s", "15m", "1h", "2d", "1h30m", "1.5h", "90" (plain number = seconds); nullopt for anything
// else (empty, negative, unknown unit, more than 100 years).
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// A point in time for --from/--to: "now", a duration back from now ("2h", "3d"), or a UTC
// date/time "2026-11-24", "2026-11-24T10:30", "2026-11-24T10:30:00Z" ('T' or a space). Returns
// ms since the Unix epoch, nullopt for anything else.
std::optional<std::int64_t> parse_time_point(std::string_view text, std::int64_t now_ms);

// Compact duration: "0s", "12s", "4m12s", "2h05m", "3d04h" (negative clamps to "0s").
std::string format_duration(std::int64_t ms);
// "12s ago" (`never` when then_ms is 0).
std::string format_age(std::int64_t then_ms, std::int64_t now_ms, std::string_view never = "-");
// "2024-05-01T12:00:00Z" (UTC); "-" for 0.
std::string format_utc(std::int64_t ms);
// A number for tables: whole numbers in full ("1234567"), others with 6 significant digits
// ("1480.5", "0.0123", "1.5e+20").
std::string format_number(double v);

// "normal", "warning", "alarm" ("level N" beyond).
std::string level_name(std::uint32_t level);
// 1..4 -> "A".."D", otherwise "-".
std::string iso_zone_letter(std::uint32_t zone);
// "active", "acknowledged" or "cleared".
std::string alert_state(const daemon::AlertInfo& alert);

// Text columns: display width counts UTF-8 code points, right-aligned columns for numbers; two
// spaces between columns; trailing spaces trimmed; `empty` printed instead when there are no rows.
struct TableColumn {
  std::string title;
  bool right = false;
};
std::string render_table(const std::vector<TableColumn>& columns,
                         const std::vector<std::vector<std::string>>& rows,
                         std::string_view empty = "");

// Human-readable text of each reply (ages relative to now_ms).
std::string render_status(const daemon::StatusInfo& s, std::int64_t now_ms);
std::string render_devices(const std::vector<daemon::DeviceInfo>& devices, std::int64_t now_ms);
std::string render_tags(const std::vector<daemon::TagInfo>& tags, std::int64_t now_ms);
std::string render_assets(const std::vector<daemon::AssetInfo>& assets, std::int64_t now_ms);
std::string render_alerts(const std::vector<daemon::AlertInfo>& alerts);
std::string render_ack(const daemon::AckInfo& ack);
std::string render_queue(const daemon::QueueInfo& q, std::int64_t now_ms);
// `ota`: the trusted keys, then one row per recent over-the-air bundle.
std::string render_ota(const daemon::OtaInfo& info, std::int64_t now_ms);
// `model list`: one row per entry; the active version marked with '*'.
std::string render_model_list(const std::vector<daemon::ModelInfo>& models);
// `model show ASSET`: every version of that asset with all its fields, the active one marked.
std::string render_model_show(const std::string& asset,
                              const std::vector<daemon::ModelInfo>& models);
// `model promote|rollback`, `train`: what the daemon answered, one line per entry.
std::string render_model_outcome(const std::string& what, const std::string& asset,
                                 const daemon::ControlPayload& payload);

// `vibgate trend`: a title line (asset, metric, span, point count, latest and largest value),
// the chart over [options.begin_ms, options.end_ms], and the threshold legend when one is set;
// "no <metric> data for <asset> in the last <span>" when the series is empty.
std::string render_trend_text(const daemon::Trend& trend, std::string_view span,
                              const TrendChartOptions& options);
// `vibgate spectrum`: a title line (asset, time and age, bin width), then the plot;
// "no spectrum for <asset> yet" when the daemon has none.
std::string render_spectrum_text(const std::string& asset, const daemon::Spectrum& spectrum,
                                 const SpectrumPlotOptions& options, std::int64_t now_ms);

// Machine-readable form of each payload: the proto field names, times as Unix ms, plus a few
// derived fields (level_name, zone, alert state). monostate -> {"ok": true}.
nlohmann::ordered_json to_json(const daemon::StatusInfo& s);
nlohmann::ordered_json to_json(const daemon::DeviceInfo& d);
nlohmann::ordered_json to_json(const daemon::TagInfo& t);
nlohmann::ordered_json to_json(const daemon::AssetInfo& a);
nlohmann::ordered_json to_json(const daemon::AlertInfo& a);
nlohmann::ordered_json to_json(const daemon::AckInfo& a);
nlohmann::ordered_json to_json(const daemon::Trend& t);
nlohmann::ordered_json to_json(const daemon::QueueInfo& q);
nlohmann::ordered_json to_json(const daemon::OtaInfo& o);
nlohmann::ordered_json to_json(const daemon::ModelInfo& m);
nlohmann::ordered_json to_json(const daemon::Spectrum& s);
nlohmann::ordered_json to_json(const daemon::ModelImportInfo& m);
nlohmann::ordered_json to_json(const daemon::ModelExportInfo& m);
// `model import --asset`: the import's state and float-vs-int8 report, key-value lines.
std::string render_model_import(const daemon::ModelImportInfo& m);
nlohmann::ordered_json to_json(const daemon::ControlPayload& payload);

// "$USER@hostname" (the login name from the password database when USER is unset).
std::string default_ack_by();

// ---- the commands -------------------------------------------------------------------------

// Adds the operator subcommands to `app`. After app.parse(), selected() says whether one of them
// was chosen, run_selected() runs it (one request to the daemon) and returns the exit code.
// Output goes to `out`, error lines to `err`.
class OnlineCommands {
 public:
  OnlineCommands(CLI::App& app, std::ostream& out, std::ostream& err);
  ~OnlineCommands();
  OnlineCommands(const OnlineCommands&) = delete;
  OnlineCommands& operator=(const OnlineCommands&) = delete;

  bool selected() const;
  int run_selected();

 private:
  struct State;
  State* s_;
};

// Parses `args` (without the program name) with only the operator commands registered and runs
// the chosen one: what `vibgate ARGS...` does for them, for tests. Usage errors print CLI11's
// message to `err` and return 2.
int run_online_command_line(const std::vector<std::string>& args, std::ostream& out,
                            std::ostream& err);

}  // namespace vibgate::cli
