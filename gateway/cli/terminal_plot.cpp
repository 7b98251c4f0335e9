// terminal_plot.cpp — column charts in text for `vibgate trend` and `vibgate spectrum` (see the
// header): value-to-cell mapping with eighth blocks, "nice" y-axis steps, axis labels and the
// spectrum's marker rows.
#include "cli/terminal_plot.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string_view>

namespace vibgate::cli {
namespace {

constexpr double kEps = 1e-9;

std::string num4(double v) {
  if (std::fabs(v) < 1e-12) v = 0.0;  // no "-0" or "1e-17" labels
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

// The smallest "nice" step (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 x 10^k) that is >= raw.
double nice_step(double raw) {
  if (!(raw > 0.0) || !std::isfinite(raw)) return 1.0;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0}) {
    if (m * mag >= raw * (1.0 - kEps)) return m * mag;
  }
  return 10.0 * mag;
}

struct Axis {
  double lo = 0.0;
  double step = 1.0;
  int rows = 1;
  double hi() const { return lo + step * rows; }
};

// A y-axis of `rows` rows with a nice step covering [lo, hi].
Axis make_axis(double lo, double hi, int rows) {
  if (!(hi > lo)) hi = lo + 1.0;
  Axis a;
  a.rows = rows;
  double step = nice_step((hi - lo) / rows);
  for (int i = 0; i < 40; ++i) {
    a.lo = std::floor(lo / step + kEps) * step;
    a.step = step;
    if (a.hi() >= hi * (1.0 - kEps) - kEps) break;
    step = nice_step(step * 1.0001);
  }
  return a;
}

// The row (0 = top) whose cell a bar ending exactly at `v` ends in.
int row_of(const Axis& a, double v) {
  const double level = (v - a.lo) / a.step;
  int k = static_cast<int>(std::ceil(level - kEps)) - 1;
  k = std::clamp(k, 0, a.rows - 1);
  return a.rows - 1 - k;
}

struct Chart {
  std::vector<std::optional<double>> columns;  // value per column; nullopt = blank
  Axis axis;
  bool unicode = true;
  std::optional<double> threshold;
  std::vector<int> marker_columns;  // dotted vertical guides in empty cells
};

// The glyph of one cell: how much of it a bar reaching `level` (in rows from the bottom) covers.
std::string_view cell_glyph(double level, int k, bool unicode) {
  static constexpr std::string_view kBlocks[] = {" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  static constexpr std::string_view kAscii[] = {" ", "_", "_", "_", "o", "o", "o", "#", "#"};
  const double fill = std::clamp(level - k, 0.0, 1.0);
  auto eighths = static_cast<int>(std::lround(fill * 8.0));
  if (k == 0 && eighths == 0) eighths = 1;  // a value at the bottom still shows
  return unicode ? kBlocks[eighths] : kAscii[eighths];
}

// The chart lines: y label, axis, cells; then the x-axis line. label_width is set to the width
// of the y labels so callers can indent lines below the plot area.
std::vector<std::string> draw(const Chart& c, std::size_t* label_width) {
  const int width = static_cast<int>(c.columns.size());
  const Axis& a = c.axis;
  std::vector<std::string> labels(static_cast<std::size_t>(a.rows));
  labels.front() = num4(a.hi());
  labels.back() = num4(a.lo);
  if (a.rows >= 5)
    labels[static_cast<std::size_t>(a.rows / 2)] = num4(a.hi() - a.step * (a.rows / 2));
  int threshold_row = -1;
  if (c.threshold && *c.threshold >= a.lo && *c.threshold <= a.hi()) {
    threshold_row = row_of(a, *c.threshold);
    for (auto& l : labels) {  // the threshold label wins; drop labels right next to it
      const auto r = static_cast<int>(&l - labels.data());
      if (std::abs(r - threshold_row) <= 1) l.clear();
    }
    labels[static_cast<std::size_t>(threshold_row)] = num4(*c.threshold);
  }
  std::size_t lw = 0;
  for (const auto& l : labels) lw = std::max(lw, l.size());
  *label_width = lw;

  std::vector<std::string> lines;
  for (int r = 0; r < a.rows; ++r) {
    const auto& label = labels[static_cast<std::size_t>(r)];
    std::string line(lw - label.size(), ' ');
    line += label;
    if (c.unicode) {
      line += label.empty() ? " │" : " ┤";
    } else {
      line += label.empty() ? " |" : " +";
    }
    const int k = a.rows - 1 - r;  // cells from the bottom
    for (int col = 0; col < width; ++col) {
      const auto& v = c.columns[static_cast<std::size_t>(col)];
      std::string_view glyph = " ";
      if (v) glyph = cell_glyph((*v - a.lo) / a.step, k, c.unicode);
      if (glyph == " ") {
        if (r == threshold_row) {
          glyph = c.unicode ? "╌" : "-";
        } else if (std::find(c.marker_columns.begin(), c.marker_columns.end(), col) !=
                   c.marker_columns.end()) {
          glyph = c.unicode ? "┊" : ":";
        }
      }
      line += glyph;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    lines.push_back(std::move(line));
  }
  std::string axis(lw + 1, ' ');
  axis += c.unicode ? "└" : "+";
  for (int col = 0; col < width; ++col) axis += c.unicode ? "─" : "-";
  lines.push_back(std::move(axis));
  return lines;
}

// One line of `width` characters holding `left` at the start, `middle` centred and `right` at
// the end (ASCII texts; a text that does not fit is left out), indented by `indent`.
std::string label_line(std::size_t indent, int width, const std::string& left,
                       const std::string& middle, const std::string& right) {
  std::string line(static_cast<std::size_t>(std::max(width, 1)), ' ');
  // Writes `text` at `at` if it fits and keeps one blank column to any earlier text.
  auto put = [&line](std::size_t at, const std::string& text) {
    if (text.empty() || at + text.size() > line.size()) return;
    const std::size_t from = at > 0 ? at - 1 : 0;
    const std::size_t to = std::min(line.size(), at + text.size() + 1);
    for (std::size_t i = from; i < to; ++i) {
      if (line[i] != ' ') return;
    }
    line.replace(at, text.size(), text);
  };
  put(0, left);
  if (right.size() <= line.size()) put(line.size() - right.size(), right);
  if (middle.size() <= line.size()) put((line.size() - middle.size()) / 2, middle);
  std::string out(indent, ' ');
  out += line;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// "13:05" for spans up to a day ("13:05:30" under 10 minutes), "05-01 13:05" beyond.
std::string time_label(std::int64_t ms, std::int64_t span_ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char b[32];
  const char* fmt = span_ms < 600'000       ? "%H:%M:%S"
                    : span_ms <= 86'400'000 ? "%H:%M"
                                            : "%m-%d %H:%M";
  std::strftime(b, sizeof b, fmt, &tm);
  return b;
}

std::string join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) {
    out += l;
    out += '\n';
  }
  return out;
}

}  // namespace

bool terminal_supports_unicode() {
  for (const char* name : {"LC_ALL", "LC_CTYPE", "LANG"}) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') continue;
    std::string s(v);
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    return s.find("utf-8") != std::string::npos || s.find("utf8") != std::string::npos;
  }
  return false;
}

std::string render_trend_chart(const std::vector<daemon::TrendPoint>& points,
                               const TrendChartOptions& options) {
  const int width = std::max(options.width, 8);
  const int height = std::max(options.height, 3);
  std::int64_t t0 = options.begin_ms, t1 = options.end_ms;
  if (t0 == 0 || t1 == 0) {
    std::int64_t lo = 0, hi = 0;
    bool any = false;
    for (const auto& p : points) {
      if (!std::isfinite(p.value)) continue;
      lo = any ? std::min(lo, p.ts_ms) : p.ts_ms;
      hi = any ? std::max(hi, p.ts_ms) : p.ts_ms;
      any = true;
    }
    if (t0 == 0) t0 = lo;
    if (t1 == 0) t1 = hi;
  }
  Chart c;
  c.unicode = options.unicode;
  c.threshold = options.threshold;
  c.columns.assign(static_cast<std::size_t>(width), std::nullopt);
  double vmin = 0.0, vmax = 0.0;
  bool any = false;
  for (const auto& p : points) {
    if (!std::isfinite(p.value) || p.ts_ms < t0 || p.ts_ms > t1) continue;
    int col = width - 1;  // a single instant: the newest column
    if (t1 > t0) {
      const double f = static_cast<double>(p.ts_ms - t0) / static_cast<double>(t1 - t0);
      col = std::min(static_cast<int>(f * width), width - 1);
    }
    auto& slot = c.columns[static_cast<std::size_t>(col)];
    slot = slot ? std::max(*slot, p.value) : p.value;
    vmin = any ? std::min(vmin, p.value) : p.value;
    vmax = any ? std::max(vmax, p.value) : p.value;
    any = true;
  }
  if (!any) return "no data\n";
  double lo = std::min(0.0, vmin), hi = vmax;
  if (options.threshold) {
    lo = std::min(lo, *options.threshold);
    hi = std::max(hi, *options.threshold * 1.1);
  }
  c.axis = make_axis(lo, hi, height);
  std::size_t lw = 0;
  auto lines = draw(c, &lw);
  const std::int64_t span = t1 - t0;
  std::string right = time_label(t1, span);
  right += " UTC";
  lines.push_back(label_line(lw + 2, width, time_label(t0, span),
                             span > 0 ? time_label(t0 + span / 2, span) : "", right));
  return join(lines);
}

int spectrum_column(double hz, double max_hz, int width) {
  if (!(max_hz > 0.0) || width <= 0 || !(hz >= 0.0) || hz > max_hz) return -1;
  return std::min(static_cast<int>(hz / max_hz * width), width - 1);
}

double spectrum_plot_max_hz(const daemon::Spectrum& spectrum, const SpectrumPlotOptions& options) {
  const double last = spectrum.amplitude.size() > 1
                          ? spectrum.bin_hz * static_cast<double>(spectrum.amplitude.size() - 1)
                          : 0.0;
  double want = options.max_hz;
  if (!(want > 0.0)) {
    double top = 0.0;
    for (const auto& m : spectrum.markers) top = std::max(top, m.hz);
    want = top > 0.0 ? 4.0 * top : last;
  }
  return std::min(want, last);
}

std::string render_spectrum_plot(const daemon::Spectrum& spectrum,
                                 const SpectrumPlotOptions& options) {
  const int width = std::max(options.width, 8);
  const int height = std::max(options.height, 3);
  const double max_hz = spectrum_plot_max_hz(spectrum, options);
  if (!(spectrum.bin_hz > 0.0) || spectrum.amplitude.size() < 2 || !(max_hz > 0.0)) {
    return "no spectrum\n";
  }
  Chart c;
  c.unicode = options.unicode;
  c.columns.assign(static_cast<std::size_t>(width), std::nullopt);
  double peak = 0.0, peak_hz = 0.0;
  for (std::size_t k = 1; k < spectrum.amplitude.size(); ++k) {
    const double hz = spectrum.bin_hz * static_cast<double>(k);
    const int col = spectrum_column(hz, max_hz, width);
    if (col < 0) break;
    const double v = spectrum.amplitude[k];
    if (!std::isfinite(v)) continue;
    auto& slot = c.columns[static_cast<std::size_t>(col)];
    slot = slot ? std::max(*slot, v) : v;
    if (v > peak) {
      peak = v;
      peak_hz = hz;
    }
  }
  struct Placed {
    int col;
    std::string name;
    double hz;
  };
  std::vector<Placed> on_chart;
  for (const auto& m : spectrum.markers) {
    const int col = spectrum_column(m.hz, max_hz, width);
    if (col < 0) continue;
    on_chart.push_back({col, m.name, m.hz});
    c.marker_columns.push_back(col);
  }
  c.axis = make_axis(0.0, peak > 0.0 ? peak : 1.0, height);
  std::size_t lw = 0;
  auto lines = draw(c, &lw);
  std::string mid = num4(max_hz / 2);
  mid += " Hz";
  std::string right = num4(max_hz);
  right += " Hz";
  lines.push_back(label_line(lw + 2, width, "0", mid, right));

  if (!on_chart.empty()) {
    std::string carets(static_cast<std::size_t>(width), ' ');
    for (const auto& m : on_chart) carets[static_cast<std::size_t>(m.col)] = '^';
    std::string line(lw + 2, ' ');
    line += carets;
    while (!line.empty() && line.back() == ' ') line.pop_back();
    lines.push_back(std::move(line));
    std::stable_sort(on_chart.begin(), on_chart.end(),
                     [](const Placed& a, const Placed& b) { return a.col < b.col; });
    std::vector<std::string> rows;
    for (const auto& m : on_chart) {
      const std::size_t len = m.name.size();
      std::size_t at = static_cast<std::size_t>(m.col);
      if (at + len > static_cast<std::size_t>(width)) {
        at = static_cast<std::size_t>(width) > len ? static_cast<std::size_t>(width) - len : 0;
      }
      bool placed = false;
      for (auto& row : rows) {
        const std::size_t from = at > 0 ? at - 1 : 0;
        const std::size_t to = std::min(row.size(), at + len + 1);
        if (row.size() < at + len) row.resize(at + len, ' ');
        bool free = true;
        for (std::size_t i = from; i < to && i < row.size(); ++i) free = free && row[i] == ' ';
        if (free) {
          row.replace(at, len, m.name);
          placed = true;
          break;
        }
      }
      if (!placed) {
        std::string row(at + len, ' ');
        row.replace(at, len, m.name);
        rows.push_back(std::move(row));
      }
    }
    for (auto& row : rows) {
      std::string line2(lw + 2, ' ');
      line2 += row;
      while (!line2.empty() && line2.back() == ' ') line2.pop_back();
      lines.push_back(std::move(line2));
    }
  }
  std::string summary = "peak ";
  summary += num4(peak);
  summary += " at ";
  summary += num4(peak_hz);
  summary += " Hz";
  for (const auto& m : spectrum.markers) {
    summary += "; ";
    summary += m.name;
    summary += ' ';
    summary += num4(m.hz);
    summary += " Hz";
    const auto k = static_cast<std::size_t>(std::lround(m.hz / spectrum.bin_hz));
    if (m.hz >= 0.0 && k < spectrum.amplitude.size()) {
      summary += " = ";
      summary += num4(spectrum.amplitude[k]);
    }
    if (spectrum_column(m.hz, max_hz, width) < 0) summary += " (beyond the chart)";
  }
  lines.push_back(std::move(summary));
  return join(lines);
}

}  // namespace vibgate::cli
