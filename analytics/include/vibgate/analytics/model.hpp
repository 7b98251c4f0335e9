// vibgate/analytics/model.hpp — a trained anomaly model: everything needed to score, and its file.
//
// A Model bundles the feature configuration (and its hash), the standardization, the float
// autoencoder, its int8 quantization, the learned thresholds and a training summary. Scores are
// reconstruction errors divided by the threshold, so 1.0 is the alarm threshold (docs/model.md).
// The file is a small header (magic, version, length, CRC-32) plus a protobuf message; protobuf
// types stay inside model.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vibgate/analytics/dense.hpp"
#include "vibgate/analytics/drift.hpp"
#include "vibgate/analytics/feature_config.hpp"
#include "vibgate/analytics/quantized.hpp"
#include "vibgate/analytics/training.hpp"

namespace vibgate::analytics {

inline constexpr std::uint32_t kModelFormatVersion = 1;

struct TrainingSummary {
  std::string source;
  std::uint64_t samples = 0, windows = 0;
  std::string trained_at;  // ISO 8601 UTC
  std::uint64_t seed = 0;
  std::uint32_t epochs = 0, best_epoch = 0;
  double train_loss = 0, validation_loss = 0;
  std::string threshold_rule;
  float prune_fraction = 0;           // TrainOptions::prune_fraction (0: not pruned)
  std::uint32_t nonzero_weights = 0;  // float weights (not biases) that are not exactly 0
};

struct Model {
  FeatureConfig features;
  std::vector<std::string> input_names;
  Normalizer normalizer;
  FloatNetwork float_net;
  QuantizedNetwork int8_net;
  float threshold_float = 0, threshold_int8 = 0;  // reconstruction error at score 1.0
  float warning_level = 0.8f;                     // score at which the verdict becomes warning
  TrainingSummary summary;
  // "trained" (on the gateway) or "onnx:<file name>" (imported, onnx.hpp).
  std::string origin = "trained";
  // Drift reference (drift.hpp): score and standardized-input distributions of the training
  // rows. Empty in model files written before it existed: drift is then reported as n/a.
  DriftReference drift;
};

// Threshold rule: threshold = margin · max(q-quantile of all training errors, largest validation
// error). Defaults documented in docs/model.md.
struct ThresholdRule {
  double quantile = 0.995;
  double margin = 2.0;
  float headroom = 0.1f;  // activation clamp ranges: training min/max widened by this × range
};

// margin · max(q-quantile of `errors`, largest errors[i] for i in `validation`), at least 1e-9.
float threshold_from_errors(const std::vector<float>& errors,
                            const std::vector<std::size_t>& validation, const ThresholdRule& rule);

// Trains float + int8 models from raw model-input rows (see FeatureExtractor::model_input).
// Throws std::invalid_argument for unusable data. Thread: caller's.
Model build_model(const FeatureConfig& features, const std::vector<std::vector<float>>& rows,
                  const TrainOptions& train, const ThresholdRule& rule, TrainingSummary summary);

// Float weights (not biases) of `net` that are not exactly 0 (pruning leaves the others at 0).
std::uint32_t nonzero_weights(const FloatNetwork& net);

// Writes atomically (temporary file, fsync, rename). Returns "" or a one-line error.
std::string save_model(const Model& model, const std::string& path);

struct ModelLoadResult {
  std::optional<Model> model;
  std::string error;  // "<path>: <problem>" when model is empty
};
// Reads and fully validates a model file: magic, version, length, CRC, every array size, the
// feature hash against the stored configuration, finite parameters.
ModelLoadResult load_model(const std::string& path);

// "" when `model` can score features computed with `caller`, else what differs, e.g.
// "model expects sample rate 48000 Hz, input has 12000 Hz".
std::string check_compatible(const Model& model, const FeatureConfig& caller);

}  // namespace vibgate::analytics
