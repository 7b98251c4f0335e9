// drift.cpp — drift references (quantile bins of the training data) and the sliding-window PSI
// monitor (docs/model.md, "Drift").
#include "vibgate/analytics/drift.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "vibgate/analytics/model.hpp"

namespace vibgate::analytics {
namespace {

// ln(c) for c = 0 … kLnTableSize − 1 (entry 0 unused), shared by every monitor: update() then
// needs no logarithm calls for windows up to that size (ln p = ln c − ln N).
constexpr std::size_t kLnTableSize = 8193;
const double* ln_table() {
  static const std::vector<double> t = [] {
    std::vector<double> v(kLnTableSize, 0.0);
    for (std::size_t c = 1; c < kLnTableSize; ++c) v[c] = std::log(static_cast<double>(c));
    return v;
  }();
  return t.data();
}

}  // namespace

std::size_t DriftHistogram::bin_of(float x) const {
  if (std::isnan(x)) return edges.size();
  // At most 9 edges: a branch-free count of the edges <= x beats a binary search.
  std::size_t b = 0;
  for (float e : edges) b += static_cast<std::size_t>(x >= e);
  return b;
}

DriftHistogram make_drift_histogram(std::vector<float> values) {
  if (values.empty()) throw std::invalid_argument("drift reference: no values");
  for (float v : values)
    if (!std::isfinite(v)) throw std::invalid_argument("drift reference: a value is not finite");
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  const std::size_t bins = std::clamp<std::size_t>(1 + n / kDriftRowsPerBin, 2, kDriftMaxBins);
  DriftHistogram h;
  for (std::size_t j = 1; j < bins; ++j) {
    const float e = values[j * n / bins];
    if (h.edges.empty() || e > h.edges.back()) h.edges.push_back(e);
  }
  // Proportions by the same rule the monitor bins with, so ties and merged edges are counted
  // exactly as recent windows will be.
  std::vector<std::uint64_t> counts(h.bins(), 0);
  for (float v : values) ++counts[h.bin_of(v)];
  h.proportions.resize(h.bins());
  for (std::size_t i = 0; i < h.bins(); ++i)
    h.proportions[i] = static_cast<float>(
        std::max(kDriftEpsilon, static_cast<double>(counts[i]) / static_cast<double>(n)));
  return h;
}

DriftReference make_drift_reference(const Model& model,
                                    const std::vector<std::vector<float>>& raw_rows) {
  return make_drift_reference(model, raw_rows, {});
}

DriftReference make_drift_reference(const Model& model,
                                    const std::vector<std::vector<float>>& raw_rows,
                                    std::span<const std::size_t> score_rows) {
  if (raw_rows.empty()) throw std::invalid_argument("drift reference: no rows");
  const std::size_t d = model.normalizer.mean.size();
  if (d == 0 || model.int8_net.input_size() != d || model.int8_net.output_size() != d)
    throw std::invalid_argument("drift reference: the model's network does not match its inputs");
  std::vector<std::vector<float>> per_input(d, std::vector<float>(raw_rows.size()));
  std::vector<float> scores(raw_rows.size());
  std::vector<float> z(d), y(d);
  std::vector<std::int8_t> scratch(model.int8_net.scratch_size());
  for (std::size_t r = 0; r < raw_rows.size(); ++r) {
    if (raw_rows[r].size() != d)
      throw std::invalid_argument("drift reference: row " + std::to_string(r) + " has " +
                                  std::to_string(raw_rows[r].size()) + " values, the model takes " +
                                  std::to_string(d));
    model.normalizer.apply(raw_rows[r], z);
    model.int8_net.forward(z, y, scratch);
    scores[r] = static_cast<float>(static_cast<double>(mean_squared_error(z, y)) /
                                   static_cast<double>(model.threshold_int8));
    for (std::size_t i = 0; i < d; ++i) per_input[i][r] = z[i];
  }
  DriftReference ref;
  ref.rows = raw_rows.size();
  if (!score_rows.empty()) {
    std::vector<float> picked;
    picked.reserve(score_rows.size());
    for (std::size_t i : score_rows) {
      if (i >= scores.size())
        throw std::invalid_argument("drift reference: score row " + std::to_string(i) +
                                    " out of range");
      picked.push_back(scores[i]);
    }
    scores = std::move(picked);
  }
  ref.score_rows = scores.size();
  ref.score = make_drift_histogram(std::move(scores));
  ref.features.reserve(d);
  for (auto& v : per_input) ref.features.push_back(make_drift_histogram(std::move(v)));
  return ref;
}

std::string check_drift_reference(const DriftReference& ref, std::size_t inputs) {
  if (ref.empty()) return {};
  if (ref.features.size() != inputs)
    return "drift reference has " + std::to_string(ref.features.size()) + " inputs, the model " +
           std::to_string(inputs);
  auto check = [](const DriftHistogram& h) -> std::string {
    if (h.edges.size() + 1 > kDriftMaxBins) return "more than 10 bins";
    if (h.proportions.size() != h.bins()) return "proportions do not match its bins";
    for (std::size_t i = 0; i < h.edges.size(); ++i)
      if (!std::isfinite(h.edges[i]) || (i > 0 && !(h.edges[i] > h.edges[i - 1])))
        return "edges are not finite and ascending";
    for (float p : h.proportions)
      if (!(p >= static_cast<float>(kDriftEpsilon) * 0.999f && p <= 1.0f))
        return "a proportion is outside [1e-4, 1]";
    return {};
  };
  if (auto e = check(ref.score); !e.empty()) return "drift reference of the score: " + e;
  for (std::size_t i = 0; i < ref.features.size(); ++i)
    if (auto e = check(ref.features[i]); !e.empty())
      return "drift reference of input " + std::to_string(i) + ": " + e;
  return {};
}

const char* to_string(DriftState s) {
  switch (s) {
    case DriftState::no_reference:
      return "n/a (model has no reference)";
    case DriftState::warming_up:
      return "n/a";
    case DriftState::stable:
      return "stable";
    case DriftState::shifting:
      return "shifting";
    case DriftState::drifted:
      return "drifted";
  }
  return "?";
}

double population_stability_index(std::span<const std::uint32_t> counts, std::uint64_t total,
                                  std::span<const float> reference) {
  if (total == 0) return 0;
  double psi = 0;
  for (std::size_t i = 0; i < counts.size() && i < reference.size(); ++i) {
    const double p =
        std::max(kDriftEpsilon, static_cast<double>(counts[i]) / static_cast<double>(total));
    const double q = std::max(kDriftEpsilon, static_cast<double>(reference[i]));
    psi += (p - q) * std::log(p / q);
  }
  return psi;
}

DriftMonitor::DriftMonitor(const DriftReference& reference, DriftOptions options)
    : ref_(reference), opt_(options) {
  if (ref_.empty()) throw std::invalid_argument("drift monitor: empty reference");
  if (opt_.window == 0) throw std::invalid_argument("drift monitor: window must be >= 1");
  if (!(opt_.shifting <= opt_.drifted) || !(opt_.release > 0 && opt_.release <= 1))
    throw std::invalid_argument(
        "drift monitor: thresholds must satisfy shifting <= drifted, 0 < release <= 1");
  if (auto e = check_drift_reference(ref_, ref_.features.size()); !e.empty())
    throw std::invalid_argument("drift monitor: " + e);
  quantities_ = ref_.features.size() + 1;
  stride_ = (quantities_ + 1) / 2;
  ring_.assign(opt_.window * stride_, 0);
  counts_.assign(quantities_ * kDriftMaxBins, 0);
  ln_q_.assign(quantities_ * kDriftMaxBins, 0.0);
  for (std::size_t q = 0; q < quantities_; ++q) {
    const DriftHistogram& h = q == 0 ? ref_.score : ref_.features[q - 1];
    for (std::size_t b = 0; b < h.bins(); ++b)
      ln_q_[q * kDriftMaxBins + b] =
          std::log(std::max(kDriftEpsilon, static_cast<double>(h.proportions[b])));
  }
}

void DriftMonitor::add(double score, std::span<const float> z) {
  if (ref_.empty()) return;
  if (z.size() + 1 != quantities_)
    throw std::invalid_argument("drift monitor: input has " + std::to_string(z.size()) +
                                " values, the reference " + std::to_string(quantities_ - 1));
  // A window's slot holds one 4-bit bin index per quantity (at most 10 bins), two per byte.
  std::uint8_t* slot = &ring_[head_ * stride_];
  if (filled_ == opt_.window) {  // the oldest window leaves
    for (std::size_t q = 0; q < quantities_; ++q)
      --counts_[q * kDriftMaxBins + ((slot[q >> 1] >> (4 * (q & 1))) & 0xF)];
  } else {
    ++filled_;
  }
  std::fill(slot, slot + stride_, std::uint8_t{0});
  auto put = [&](std::size_t q, std::size_t bin) {
    slot[q >> 1] = static_cast<std::uint8_t>(slot[q >> 1] | (bin << (4 * (q & 1))));
    ++counts_[q * kDriftMaxBins + bin];
  };
  put(0, ref_.score.bin_of(static_cast<float>(score)));
  for (std::size_t i = 0; i < z.size(); ++i) put(i + 1, ref_.features[i].bin_of(z[i]));
  head_ = head_ + 1 == opt_.window ? 0 : head_ + 1;
}

void DriftMonitor::reset() {
  std::fill(counts_.begin(), counts_.end(), 0u);
  head_ = 0;
  filled_ = 0;
  drifted_ = false;
}

DriftStatus DriftMonitor::update() {
  DriftStatus st;
  st.windows = filled_;
  if (ref_.empty()) {
    st.state = DriftState::no_reference;
    return st;
  }
  if (filled_ < opt_.min_windows) {
    st.state = DriftState::warming_up;
    drifted_ = false;
    return st;
  }
  // population_stability_index() with the logarithms from tables: ln q per bin was computed at
  // construction, ln p = ln c − ln N (counts and N at most the window).
  const bool table = filled_ < kLnTableSize;
  const double* lt = ln_table();
  const double n = static_cast<double>(filled_);
  const double ln_n = table ? lt[filled_] : std::log(n);
  const double ln_eps = std::log(kDriftEpsilon);
  auto psi_of = [&](std::size_t q, const DriftHistogram& h) {
    double psi = 0;
    for (std::size_t b = 0; b < h.bins(); ++b) {
      const std::uint32_t c = counts_[q * kDriftMaxBins + b];
      double p = static_cast<double>(c) / n, ln_p;
      if (p < kDriftEpsilon) {
        p = kDriftEpsilon;
        ln_p = ln_eps;
      } else {
        ln_p = (table ? lt[c] : std::log(static_cast<double>(c))) - ln_n;
      }
      const double qv = std::max(kDriftEpsilon, static_cast<double>(h.proportions[b]));
      psi += (p - qv) * (ln_p - ln_q_[q * kDriftMaxBins + b]);
    }
    return psi;
  };
  st.psi_score = psi_of(0, ref_.score);
  st.psi_features.resize(ref_.features.size());
  for (std::size_t i = 0; i < ref_.features.size(); ++i) {
    const double p = psi_of(i + 1, ref_.features[i]);
    st.psi_features[i] = static_cast<float>(p);
    if (i == 0 || p > st.psi_feature_max) {
      st.psi_feature_max = p;
      st.feature_max = i;
    }
  }
  const double m = std::max(st.psi_score, st.psi_feature_max);
  if (m > opt_.drifted || (drifted_ && m >= opt_.drifted * opt_.release))
    st.state = DriftState::drifted;
  else if (m >= opt_.shifting)
    st.state = DriftState::shifting;
  else
    st.state = DriftState::stable;
  drifted_ = st.state == DriftState::drifted;
  return st;
}

}  // namespace vibgate::analytics
