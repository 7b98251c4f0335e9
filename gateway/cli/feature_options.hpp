// gateway/cli/feature_options.hpp — command-line options shared by the offline analysis commands.
//
// FeatureOptions holds what the user typed for the feature configuration; apply() turns it into a
// FeatureConfig for a given file's sample rate. InputOptions selects what is read from each file.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "vibgate/analytics/feature_config.hpp"
#include "vibgate/analytics/recording.hpp"

namespace vibgate::cli {

struct FeatureOptions {
  std::optional<std::size_t> window;
  std::optional<double> overlap;
  std::optional<std::size_t> bands;
  std::optional<std::string> units;
  std::optional<double> rpm, shaft_hz;
  std::optional<std::string> bearing_multiples;  // "bpfo,bpfi,bsf,ftf"
  std::optional<std::string> bearing_geometry;   // "balls,ball_d,pitch_d,angle_deg"
  std::optional<std::string> env_band;           // "lo,hi"
  std::optional<std::string> velocity_band;      // "lo,hi"
  std::optional<int> machine_group;
  std::optional<std::string> mounting;
  std::optional<std::size_t> harmonics;

  void add_to(CLI::App& app);
  // Applies the options over `base` (defaults or a model's configuration), setting the sample
  // rate. Throws std::invalid_argument("--option: problem").
  analytics::FeatureConfig apply(analytics::FeatureConfig base, double sample_rate_hz) const;
  bool any_set() const;
};

struct InputOptions {
  std::optional<double> rate;
  std::optional<std::size_t> channel;
  std::optional<double> start_s, end_s;
  std::string input_format = "auto";

  void add_to(CLI::App& app);
  analytics::ReadOptions read_options() const;  // throws std::invalid_argument
};

}  // namespace vibgate::cli
