// vibgate/analytics/metrics.hpp — evaluation statistics for `vibgate eval` and the accuracy tests.
#pragma once

#include <span>

namespace vibgate::analytics {

// Area under the ROC curve for separating `fault` (positives) from `normal` scores
// (Mann–Whitney U / (n·m), ties count one half). NaN if either set is empty.
double roc_auc(std::span<const double> normal, std::span<const double> fault);

// Pearson correlation coefficient; NaN for fewer than 2 points or zero variance.
double pearson(std::span<const double> a, std::span<const double> b);

// Fraction of values >= threshold (0 for an empty set).
double fraction_at_or_above(std::span<const double> v, double threshold);

}  // namespace vibgate::analytics
