// vibgate/analytics/detector.hpp — from samples to scored windows: windowing, features, scoring.
//
// Windower cuts a stream of samples (arriving in blocks of any size) into overlapping windows.
// Scorer turns one window into features and an anomaly score with a Model, int8 by default and
// float for comparison. Both are single-threaded objects: one per channel (or per worker).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "vibgate/analytics/features.hpp"
#include "vibgate/analytics/model.hpp"

namespace vibgate::analytics {

class Windower {
 public:
  Windower(std::size_t window_length, std::size_t hop);
  // Appends samples; calls on_window(window, start_index) for every complete window, where
  // start_index counts samples since construction (or reset()).
  void push(std::span<const float> samples,
            const std::function<void(std::span<const float>, std::uint64_t)>& on_window);
  void reset();

 private:
  std::size_t n_, hop_;
  std::vector<float> buf_;
  std::uint64_t buf_start_ = 0;  // stream index of buf_[0]
  std::size_t skip_ = 0;         // samples still to drop before the next window can start
};

// Verdict for a normalized score with the model's warning level (alarm at >= 1.0).
Verdict verdict_for(double score, double warning_level);

struct ScoredWindow {
  Features features;
  std::vector<float> input;  // raw model-input vector
  double score = 0;          // int8 score (1.0 = alarm threshold)
  double score_float = 0;    // float score, when requested
  Verdict verdict = Verdict::normal;
};

class Scorer {
 public:
  // The model's feature configuration, with its sample rate, is used for extraction.
  explicit Scorer(std::shared_ptr<const Model> model, Int8Kernel kernel = Int8Kernel::automatic);
  // The same with an extractor shared with other scorers: a FeatureExtractor holds only tables and
  // scratch buffers, so scorers used by one thread may share one per feature configuration (it
  // is ~170 KB at window 4096). Throws std::invalid_argument if its configuration is not the
  // model's.
  Scorer(std::shared_ptr<const Model> model, std::shared_ptr<FeatureExtractor> extractor,
         Int8Kernel kernel = Int8Kernel::automatic);
  ~Scorer();

  const Model& model() const { return *model_; }
  FeatureExtractor& extractor() { return *extractor_; }

  // Scores one window (window_length samples). with_float also runs the float model, and
  // use_float makes the float score the verdict's basis. Thread: the owner's.
  void score(std::span<const float> window, ScoredWindow& out, bool with_float = false,
             bool use_float = false);

 private:
  std::shared_ptr<const Model> model_;
  Int8Kernel kernel_;
  std::shared_ptr<FeatureExtractor> extractor_;
  std::vector<float> z_, y_, fscratch_;
  std::vector<std::int8_t> qscratch_;
};

}  // namespace vibgate::analytics
