// vibgate/analytics/dense.hpp — the float autoencoder: dense layers, standardization, forward pass.
//
// The network is small (default D→32→8→32→D, ReLU on hidden layers, linear output) and runs on
// standardized feature vectors. Imported ONNX models (onnx.hpp) may also use tanh and sigmoid. This
// float path is the reference the int8 path (quantized.hpp) is checked against, and what training
// (training.hpp) produces.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace vibgate::analytics {

// What a layer applies after `bias + W·x`. Training produces relu (hidden) and linear (output);
// tanh and sigmoid come from imported ONNX models and run through a lookup table in int8.
enum class Activation : std::uint8_t { linear, relu, tanh, sigmoid };

// "linear", "relu", "tanh", "sigmoid".
const char* to_string(Activation a);
// True for the activations the int8 path applies by lookup table (tanh, sigmoid).
inline bool uses_lut(Activation a) { return a == Activation::tanh || a == Activation::sigmoid; }
// The activation in float: what FloatNetwork::forward applies (sigmoid = 1 / (1 + e^−x)).
float activate(Activation a, float x);

struct DenseLayer {
  std::size_t in = 0, out = 0;
  std::vector<float> weights;  // out × in, row-major: weights[j*in + i]
  std::vector<float> bias;     // out
  Activation activation = Activation::linear;
  // Output clamp learned at calibration (±inf before): the int8 path saturates at the same range,
  // so both paths behave alike on inputs far outside the training data.
  float out_lo = -std::numeric_limits<float>::infinity();
  float out_hi = std::numeric_limits<float>::infinity();
  // tanh/sigmoid layers: the calibrated pre-activation range (the int8 lookup table's input
  // range); out_lo/out_hi are then activate(pre_lo), activate(pre_hi), so clamping the output
  // equals clamping the pre-activation. Set by calibrate(), not stored in the model file (the
  // int8 layer keeps its own pre-activation scale).
  float pre_lo = -std::numeric_limits<float>::infinity();
  float pre_hi = std::numeric_limits<float>::infinity();
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

  // Input clamp (applied to z before the first layer); ±inf before calibration.
  float input_lo() const { return input_lo_; }
  float input_hi() const { return input_hi_; }
  void set_input_range(float lo, float hi) { input_lo_ = lo; input_hi_ = hi; }

  // Learns the input and per-layer output clamps as the min/max over standardized `rows`,
  // widened by `headroom` × range on each side (ReLU outputs keep 0 as their floor). For tanh and
  // sigmoid layers the pre-activation range is measured and widened, and the output clamp is its
  // image under the activation.
  void calibrate(const std::vector<std::vector<float>>& rows, float headroom);

  // y = f(z). scratch must hold 2·max_width() floats. Thread: any (const).
  void forward(std::span<const float> z, std::span<float> y, std::span<float> scratch) const;

 private:
  std::vector<DenseLayer> layers_;
  float input_lo_ = -std::numeric_limits<float>::infinity();
  float input_hi_ = std::numeric_limits<float>::infinity();
};

// Mean squared difference of two equally long vectors (the reconstruction error).
float mean_squared_error(std::span<const float> a, std::span<const float> b);

}  // namespace vibgate::analytics
