// gateway/cli/terminal_plot.hpp — text charts for the operator CLI: a metric over time (`vibgate
// trend`) and an amplitude spectrum with bearing/shaft markers (`vibgate spectrum`). Both are
// column charts drawn with Unicode eighth blocks (or plain ASCII), a labelled y-axis and x-axis
// labels. Pure functions: the result is the whole text, each line ending in '\n'.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vibgate/daemon/control_protocol.hpp"

namespace vibgate::cli {

// True when the locale environment (LC_ALL, LC_CTYPE, LANG, first one set) names UTF-8.
bool terminal_supports_unicode();

struct TrendChartOptions {
  int width = 72;                   // plot columns (without the y-axis labels)
  int height = 12;                  // plot rows
  std::optional<double> threshold;  // marked as a horizontal line and a y label (score: 1.0)
  std::int64_t begin_ms = 0;        // x range; 0 = the first / last point
  std::int64_t end_ms = 0;
  bool unicode = true;
};

// The metric over time: each column shows the largest value of the points in its time slice
// (peaks survive), columns without points stay blank (gaps), a value at or below the axis bottom
// still shows as the lowest mark. The y range always contains 0 and, if set, 1.1 x threshold.
// The threshold row carries the threshold as its y label and a dashed line ('-' / '╌') where no
// bar covers it. An empty series gives one line "no data". Width and height are clamped to at
// least 8 and 3.
std::string render_trend_chart(const std::vector<daemon::TrendPoint>& points,
                               const TrendChartOptions& options);

struct SpectrumPlotOptions {
  int width = 72;
  int height = 12;
  double max_hz = 0.0;  // 0: up to 4 x the highest marker, or the whole spectrum without markers
  bool unicode = true;
};

// The column (0-based, plot area) frequency `hz` falls in when `width` columns span
// [0, max_hz]; -1 when hz is negative, above max_hz, or max_hz <= 0.
int spectrum_column(double hz, double max_hz, int width);

// The frequency range a plot with these options shows (options.max_hz, or the default above,
// never beyond the last bin).
double spectrum_plot_max_hz(const daemon::Spectrum& spectrum, const SpectrumPlotOptions& options);

// The amplitude spectrum up to spectrum_plot_max_hz(): each column shows the largest bin in its
// frequency slice (the DC bin is left out), a labelled amplitude axis, the frequency axis, then a
// row with '^' under each marker's column and rows with the marker names starting at their
// '^' (stacked when they would overlap); markers beyond the range are listed after.
std::string render_spectrum_plot(const daemon::Spectrum& spectrum,
                                 const SpectrumPlotOptions& options);

}  // namespace vibgate::cli
