// vibgate/analytics/onnx.hpp — importing ONNX autoencoders into the gateway's model format and
// exporting the gateway's float model as ONNX (docs/model.md, "ONNX").
//
// Supported subset (float32, ai.onnx opset 11–17): one input X [N|1|dynamic, D] → optional
// Sub(constant mean) → optional Div(constant std) or Mul(constant 1/std) → dense layers, each a
// Gemm (transA 0, transB 0/1, alpha = beta = 1) or a MatMul + optional Add, each optionally
// followed by Relu, Tanh or Sigmoid → output [.., D]. Anything else is refused with a one-line
// error naming the operator, node and index. The onnx protobuf types stay inside the .cpp files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "vibgate/analytics/dense.hpp"
#include "vibgate/analytics/feature_config.hpp"
#include "vibgate/analytics/model.hpp"

namespace vibgate::analytics {

// The float network read from an ONNX file, before calibration and quantization.
struct OnnxNetwork {
  std::vector<DenseLayer> layers;               // unclamped (±inf), activations as in the graph
  std::optional<Normalizer> normalizer;         // from the Sub/Div prefix or vibgate.mean/std
  std::string normalization;                    // "graph", "metadata" or "" (none in the file)
  std::vector<std::string> input_names;         // metadata vibgate.input_names (may be empty)
  std::map<std::string, std::string> metadata;  // every metadata_props entry
  std::int64_t opset = 0;
  std::size_t input_width() const { return layers.empty() ? 0 : layers.front().in; }
};

struct OnnxReadResult {
  std::optional<OnnxNetwork> network;
  std::string error;  // "<name>: <problem>" when network is empty
};

// Parses and checks an ONNX model held in `bytes`; `name` (the file name) prefixes every error.
// Thread: any.
OnnxReadResult read_onnx(const std::string& bytes, const std::string& name);

// Agreement bounds: the analytics accuracy requirement (docs/accuracy.md: Pearson of the scores
// ≥ 0.999, same verdict on ≥ 99.5 % of the windows).
struct ImportOptions {
  ThresholdRule rule;
  double min_std = 0.02;                 // std floor when normalization comes from calibration rows
  double min_verdict_agreement = 0.995;  // below: refused
  double min_pearson = 0.999;            // below: a warning in the report (see docs/model.md)
  std::size_t min_rows = 8;
};

// What an import measured: float vs int8 on the calibration rows.
struct ImportReport {
  std::string file;
  std::size_t rows = 0;
  std::vector<std::string> layers;  // "38→32 tanh", ...
  std::string normalization;        // "graph", "metadata" or "calibration"
  float threshold_float = 0, threshold_int8 = 0;
  double pearson = 0;            // of the scores (error / threshold), float vs int8
  double max_abs_diff = 0;       // largest |score_int8 − score_float|
  double max_rel_diff = 0;       // largest |score_int8 − score_float| / max(score_float, 1e-6)
  double verdict_agreement = 0;  // fraction of rows with the same verdict
  std::vector<std::string> warnings;
  // Several lines for people.
  std::string text() const;
  // One line for a model version note: "onnx import FILE: r=0.9995, verdicts 100.0 %, ...".
  std::string note() const;
};

struct ImportResult {
  std::optional<Model> model;
  ImportReport report;  // filled as far as the import got
  std::string error;    // one line when model is empty
};

// Imports an ONNX autoencoder for the feature configuration `features`: the network's input width
// must equal the model-input width of `features` (and vibgate.input_names, when present, the
// names); `calibration` holds raw model-input rows of healthy windows (FeatureExtractor::
// model_input), at least options.min_rows. Normalization comes from the graph prefix, else the
// metadata, else the calibration rows. Then the clamps are calibrated on the standardized rows,
// the network quantized to int8, both thresholds set from the calibration errors with
// options.rule (margin × quantile: there is no validation split) and the float and int8 scores
// compared. Refused when the verdicts agree on fewer than min_verdict_agreement of the rows.
// Thread: the caller's (CPU-bound, a few ms to a second).
ImportResult import_onnx(const std::string& bytes, const std::string& file_name,
                         const FeatureConfig& features,
                         const std::vector<std::vector<float>>& calibration,
                         const ImportOptions& options);

// Writes the float model as ONNX (opset 13, IR version 8): X → Sub(mean) → Div(std) → Gemm
// (transB 1) [→ Relu|Tanh|Sigmoid] … → Y, the standardized reconstruction. Clamps and the int8
// network are not exported. Metadata: vibgate.input_names, vibgate.feature_hash,
// vibgate.threshold_float, vibgate.mean, vibgate.std, vibgate.features, vibgate.origin.
// Returns "" and fills `bytes`, or a one-line error. Thread: any.
std::string export_onnx(const Model& model, std::string& bytes);

// Comma-separated floats (shortest exact text) and back; parse returns nullopt on anything else.
std::string join_floats(const std::vector<float>& v);
std::optional<std::vector<float>> parse_floats(const std::string& text);

}  // namespace vibgate::analytics
