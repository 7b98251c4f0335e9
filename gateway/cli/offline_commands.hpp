// gateway/cli/offline_commands.hpp — `vibgate features|train|score|eval|synth`: offline analysis
// of recordings with the same analytics code the daemon runs (docs/cli.md); also the file forms
// of `vibgate model import|export` (ONNX ↔ model file, no daemon).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/feature_options.hpp"

namespace vibgate::cli {

// Adds the offline subcommands to `app`. After app.parse(), run_selected() runs the chosen one
// and returns the process exit code (0 ok, 1 bad input or failure; CLI11 handles usage errors, 2).
class OfflineCommands {
 public:
  explicit OfflineCommands(CLI::App& app);
  ~OfflineCommands();
  int run_selected();

 private:
  struct State;
  State* s_;
};

// `vibgate model import FILE.onnx --out MODEL.vgm --calibration REC...`: the feature configuration
// and calibration rows are built from the recordings exactly as `vibgate train` builds its
// training rows (same options, --train-overlap windows), then analytics::import_onnx; prints the
// agreement report (JSON with `json`). Returns 0, or 1 after one error line on stderr.
struct ModelImportArgs {
  std::string onnx, out;
  std::vector<std::string> calibration;
  double train_overlap = 0.75, quantile = 0.995, margin = 2.0;
  bool json = false;
};
int run_model_import_offline(const ModelImportArgs& args, const FeatureOptions& fo,
                             const InputOptions& in);

// `vibgate model export --model MODEL.vgm --onnx FILE.onnx`. Returns 0, or 1 after one error line.
int run_model_export_offline(const std::string& model_path, const std::string& onnx_path);

// Reads a whole file (for ONNX bytes); "" or "<path>: <problem>". At most max_bytes.
std::string read_file_bytes(const std::string& path, std::size_t max_bytes, std::string& bytes);
// Writes path.tmp, renames it into place; "" or "<path>: <problem>".
std::string write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace vibgate::cli
