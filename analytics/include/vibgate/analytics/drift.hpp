// vibgate/analytics/drift.hpp — drift monitoring: does a point's recent data still look like the
// data its model was trained on? (docs/model.md, "Drift").
//
// A DriftReference is stored in the model: for the anomaly score and for every standardized model
// input, bin edges at quantiles of the reference data (the training rows, or an imported model's
// calibration rows) and the reference proportion per bin. A DriftMonitor counts the bins of the
// last N scored windows (a ring of bin indices, so an old window leaves exactly) and compares the
// two distributions with the population stability index
//   PSI = Σ_i (p_i − q_i) · ln(p_i / q_i)      p: recent proportions, q: reference proportions,
// both floored at kDriftEpsilon so an empty bin gives a large but finite PSI.
// Usual reading: < 0.1 stable, 0.1–0.25 a moderate shift, > 0.25 a significant shift.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace vibgate::analytics {

struct Model;

inline constexpr double kDriftEpsilon = 1e-4;        // floor of every bin proportion
inline constexpr std::size_t kDriftMaxBins = 10;     // bins per quantity (deciles)
inline constexpr std::size_t kDriftRowsPerBin = 25;  // fewer reference rows: fewer bins

// The binned reference distribution of one quantity.
struct DriftHistogram {
  // Ascending, strictly increasing; bins = edges.size() + 1, the outer bins open-ended. A value
  // x falls into bin "number of edges <= x" (an edge belongs to the bin above it).
  std::vector<float> edges;
  std::vector<float> proportions;  // edges.size() + 1 values, each >= kDriftEpsilon
  std::size_t bins() const { return edges.size() + 1; }
  // The bin of x (NaN falls into the top bin). No allocation. Thread: any.
  std::size_t bin_of(float x) const;
};

struct DriftReference {
  DriftHistogram score;                  // the normalized int8 score (1.0 = alarm threshold)
  std::vector<DriftHistogram> features;  // per model input, standardized units (z)
  std::uint64_t rows = 0;                // reference windows of the inputs' proportions
  std::uint64_t score_rows = 0;          // of the score's (build_model: the validation rows)
  bool empty() const { return features.empty(); }
};

// Builds a histogram of `values` with bins = clamp(1 + n / kDriftRowsPerBin, 2, kDriftMaxBins)
// bins whose edges sit at the quantiles j / bins of the values (duplicates merged, so a constant
// quantity has one edge). Throws std::invalid_argument for no values or a non-finite value.
DriftHistogram make_drift_histogram(std::vector<float> values);

// The drift reference of `model` from raw (unstandardized) model-input rows, e.g. its training
// rows (build_model calls it with every training and validation row) or an imported model's
// calibration rows: each row is standardized with the model's normalizer and scored with its int8
// network (as the daemon scores), then every quantity is binned by make_drift_histogram.
// Throws std::invalid_argument when `raw_rows` is empty, a row's length is not the model's input
// width, or a value is not finite. Thread: the caller's; one core (a sort per quantity).
DriftReference make_drift_reference(const Model& model,
                                    const std::vector<std::vector<float>>& raw_rows);
// The same, with the score's histogram made from the rows raw_rows[i], i in `score_rows`, only
// (all rows when empty). build_model passes its validation rows: the network was trained on the
// others, whose reconstruction errors are lower than those of new healthy windows (with a 250-row
// baseline a score PSI of 0.8 on healthy data against all rows, 0.1 against the validation rows).
// Throws as above, and for an index out of range.
DriftReference make_drift_reference(const Model& model,
                                    const std::vector<std::vector<float>>& raw_rows,
                                    std::span<const std::size_t> score_rows);

// Checks a reference against a model input width: "" or a one-line problem (for model loading).
std::string check_drift_reference(const DriftReference& ref, std::size_t inputs);

enum class DriftState : std::uint8_t {
  no_reference,  // the model has no reference (an older model file): retrain to get one
  warming_up,    // fewer than min_windows windows since the model started scoring
  stable,        // max PSI < shifting
  shifting,      // shifting <= max PSI <= drifted (moderate shift)
  drifted,       // max PSI > drifted (significant shift: the baseline may no longer fit)
};
// "n/a (model has no reference)", "n/a", "stable", "shifting", "drifted".
const char* to_string(DriftState s);

struct DriftStatus {
  DriftState state = DriftState::no_reference;
  std::uint64_t windows = 0;        // windows in the monitor (at most the window)
  double psi_score = 0;             // PSI of the score (0 while not computed)
  double psi_feature_max = 0;       // the largest feature PSI
  std::size_t feature_max = 0;      // its input index
  std::vector<float> psi_features;  // PSI per input (empty while not computed)
};

struct DriftOptions {
  std::size_t window = 2048;      // the last N scored windows are compared
  std::size_t min_windows = 200;  // below: state warming_up, no PSI
  double shifting = 0.1;          // max PSI at or above: shifting
  double drifted = 0.25;          // max PSI above: drifted
  // Hysteresis: once drifted, the state stays drifted until the max PSI falls below
  // drifted × release (so a PSI hovering at the threshold does not flap).
  double release = 0.8;
};

// Counts the reference bins of the last `window` scored windows of one point. Not thread-safe:
// one owner (the daemon's analytics worker). Memory: window × (inputs + 1) / 2 bytes for the
// ring plus counts and tables (about 45 KB at the default window and 38 inputs).
class DriftMonitor {
 public:
  // A monitor without a reference: state no_reference forever.
  DriftMonitor() = default;
  // Throws std::invalid_argument for an empty reference, an invalid one (check_drift_reference,
  // e.g. more than kDriftMaxBins bins), window == 0 or non-ascending thresholds.
  DriftMonitor(const DriftReference& reference, DriftOptions options = {});

  bool has_reference() const { return !ref_.empty(); }
  // Adds one scored window: its score and its standardized input vector z (the model's input
  // width; a mismatching width throws std::invalid_argument). O(inputs × bins), no allocation.
  void add(double score, std::span<const float> z);
  // Forgets every window (a new model starts from zero).
  void reset();
  std::uint64_t windows() const { return filled_; }
  // Computes the PSI of the score and of every input over the windows held, and the state
  // (with the hysteresis of DriftOptions::release against the previous update()). O(inputs ×
  // bins), no logarithm calls for windows up to 8192 (tables): 0.5 to 0.7 µs at 38 inputs.
  DriftStatus update();

 private:
  DriftReference ref_;
  DriftOptions opt_;
  std::size_t quantities_ = 0;         // inputs + 1 (index 0: the score)
  std::size_t stride_ = 0;             // bytes per window in the ring
  std::vector<std::uint8_t> ring_;     // window × stride_: 4-bit bin indices, two per byte
  std::vector<std::uint32_t> counts_;  // per quantity, kDriftMaxBins counts
  std::vector<double> ln_q_;           // ln of the reference proportions, same layout
  std::size_t head_ = 0;               // next ring slot
  std::uint64_t filled_ = 0;           // windows held (<= window)
  bool drifted_ = false;               // last update() said drifted
};

// PSI of recent counts against reference proportions (both floored at kDriftEpsilon); 0 when
// `total` is 0. `counts` and `reference` have the same length.
double population_stability_index(std::span<const std::uint32_t> counts, std::uint64_t total,
                                  std::span<const float> reference);

}  // namespace vibgate::analytics
