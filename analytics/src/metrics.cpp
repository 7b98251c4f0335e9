// metrics.cpp — ROC AUC, Pearson correlation and detection fractions.
#include "vibgate/analytics/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace vibgate::analytics {

double roc_auc(std::span<const double> normal, std::span<const double> fault) {
  if (normal.empty() || fault.empty()) return std::numeric_limits<double>::quiet_NaN();
  // Rank-sum with average ranks for ties: O((n+m) log(n+m)).
  std::vector<std::pair<double, int>> all;
  all.reserve(normal.size() + fault.size());
  for (double v : normal) all.emplace_back(v, 0);
  for (double v : fault) all.emplace_back(v, 1);
  std::sort(all.begin(), all.end());
  double rank_sum = 0;
  for (std::size_t i = 0; i < all.size();) {
    std::size_t j = i;
    while (j < all.size() && all[j].first == all[i].first) ++j;
    const double avg = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    for (std::size_t k = i; k < j; ++k)
      if (all[k].second == 1) rank_sum += avg;
    i = j;
  }
  const auto m = static_cast<double>(fault.size()), n = static_cast<double>(normal.size());
  return (rank_sum - m * (m + 1) / 2) / (m * n);
}

double pearson(std::span<const double> a, std::span<const double> b) {
  const std::size_t n = std::min(a.size(), b.size());
  if (n < 2) return std::numeric_limits<double>::quiet_NaN();
  double ma = 0, mb = 0;
  for (std::size_t i = 0; i < n; ++i) { ma += a[i]; mb += b[i]; }
  ma /= static_cast<double>(n);
  mb /= static_cast<double>(n);
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < n; ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  if (saa <= 0 || sbb <= 0) return std::numeric_limits<double>::quiet_NaN();
  return sab / std::sqrt(saa * sbb);
}

double fraction_at_or_above(std::span<const double> v, double threshold) {
  if (v.empty()) return 0;
  const auto k = std::count_if(v.begin(), v.end(), [&](double x) { return x >= threshold; });
  return static_cast<double>(k) / static_cast<double>(v.size());
}

}  // namespace vibgate::analytics
