// vibgate/analytics/dense.hpp — the float autoencoder: dense layers, standardization, forward pass.
//
// The network is small (default D→32→8→32→D, ReLU on hidden layers, linear output) and runs on
// standardized feature vectors. This float path is the reference the int8 path (quantized.hpp) is
// checked against, and what training (training.hpp) produces.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace vibgate::analytics {

struct DenseLayer {
  std::size_t in = 0, out = 0;
  std::vector<float> weights;  // out × in, row-major: weights[j*in + i]
  std::vector<float> bias;     // out
  bool relu = false;
};

// Per-feature standardization z = (x − mean) / std, learned from training data.
struct Normalizer {
  std::vector<float> mean, std;
  void apply(std::span<const float> x, std::span<float> z) const;
};

class FloatNetwork {
 public:
  FloatNetwork() = default;
  explicit FloatNetwork(std::vector<DenseLayer> layers);

  const std::vector<DenseLayer>& layers() const { return layers_; }
  std::size_t input_size() const { return layers_.empty() ? 0 : layers_.front().in; }
  std::size_t output_size() const { return layers_.empty() ? 0 : layers_.back().out; }
  std::size_t max_width() const;

  // y = f(z). scratch must hold 2·max_width() floats. Thread: any (const).
  void forward(std::span<const float> z, std::span<float> y, std::span<float> scratch) const;

 private:
  std::vector<DenseLayer> layers_;
};

// Mean squared difference of two equally long vectors (the reconstruction error).
float mean_squared_error(std::span<const float> a, std::span<const float> b);

}  // namespace vibgate::analytics
