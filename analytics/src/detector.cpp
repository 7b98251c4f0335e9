// detector.cpp — windowing of sample streams and scoring of windows with a Model.
#include "vibgate/analytics/detector.hpp"

#include <algorithm>
#include <stdexcept>

namespace vibgate::analytics {

Windower::Windower(std::size_t window_length, std::size_t hop) : n_(window_length), hop_(hop) {
  buf_.reserve(2 * n_);
}

void Windower::reset() {
  buf_.clear();
  buf_start_ = 0;
  skip_ = 0;
}

void Windower::push(std::span<const float> samples,
                    const std::function<void(std::span<const float>, std::uint64_t)>& on_window) {
  while (!samples.empty()) {
    if (skip_ > 0) {  // hop larger than the window (never with overlap >= 0) or after a window
      const std::size_t k = std::min(skip_, samples.size());
      samples = samples.subspan(k);
      skip_ -= k;
      buf_start_ += k;
      continue;
    }
    const std::size_t take = std::min(n_ - buf_.size(), samples.size());
    buf_.insert(buf_.end(), samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(take));
    samples = samples.subspan(take);
    if (buf_.size() == n_) {
      on_window(buf_, buf_start_);
      const std::size_t drop = std::min(hop_, n_);
      buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(drop));
      buf_start_ += drop;
      skip_ = hop_ - drop;
    }
  }
}

Verdict verdict_for(double score, double warning_level) {
  if (score >= 1.0) return Verdict::alarm;
  if (score >= warning_level) return Verdict::warning;
  return Verdict::normal;
}

Scorer::Scorer(std::shared_ptr<const Model> model, Int8Kernel kernel)
    : Scorer(model, std::make_shared<FeatureExtractor>(model->features), kernel) {}

Scorer::Scorer(std::shared_ptr<const Model> model, std::shared_ptr<FeatureExtractor> extractor,
               Int8Kernel kernel)
    : model_(std::move(model)), kernel_(kernel), extractor_(std::move(extractor)) {
  if (!extractor_ || extractor_->config().canonical() != model_->features.canonical())
    throw std::invalid_argument("Scorer: the extractor's feature configuration is not the model's");
  const std::size_t d = extractor_->model_input_size();
  z_.resize(d);
  y_.resize(d);
  fscratch_.resize(2 * model_->float_net.max_width());
  qscratch_.resize(model_->int8_net.scratch_size());
}

Scorer::~Scorer() = default;

void Scorer::score(std::span<const float> window, ScoredWindow& out, bool with_float,
                   bool use_float) {
  extractor_->extract(window, out.features);
  out.input.resize(extractor_->model_input_size());
  extractor_->model_input(out.features, out.input);
  model_->normalizer.apply(out.input, z_);
  model_->int8_net.forward(z_, y_, qscratch_, kernel_);
  out.score = mean_squared_error(z_, y_) / model_->threshold_int8;
  out.score_float = 0;
  if (with_float || use_float) {
    model_->float_net.forward(z_, y_, fscratch_);
    out.score_float = mean_squared_error(z_, y_) / model_->threshold_float;
  }
  out.verdict = verdict_for(use_float ? out.score_float : out.score, model_->warning_level);
}

}  // namespace vibgate::analytics
