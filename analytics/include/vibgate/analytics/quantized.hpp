// vibgate/analytics/quantized.hpp — post-training int8 quantization and integer-only inference.
//
// Weights: symmetric int8 per output channel (scale = max|w|/127). Activations: asymmetric int8
// (scale, zero point) covering the float network's calibrated clamp ranges, which the float path
// applies too, so both saturate alike far outside the training data. Bias: int32 at scale
// s_in·s_w. Requantization: fixed-point multiplier (Q31) and shift, ReLU fused into the clamp.
// Between the input quantization and the output dequantization only integer arithmetic runs.
// The portable scalar kernel and the AVX2 kernel accumulate the same int32 dot products and share
// the requantization code, so their outputs are bit-identical (tests/analytics/quantized_test).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "vibgate/analytics/dense.hpp"

namespace vibgate::analytics {

struct QuantParams {
  float scale = 1.f;
  std::int32_t zero_point = 0;
};

struct QuantLayer {
  std::size_t in = 0, out = 0;
  std::size_t in_padded = 0;            // row stride of `weights`, a multiple of 32
  std::vector<std::int8_t> weights;     // out × in_padded, zero padded
  std::vector<float> weight_scale;      // per output channel
  std::vector<std::int32_t> bias;       // int32 bias at scale s_in·s_w[j]
  std::vector<std::int64_t> bias_eff;   // bias − zp_in·Σ_i w[j][i] (derived at load/quantize)
  std::vector<std::int32_t> multiplier; // Q31, in [2^30, 2^31)
  std::vector<std::int32_t> shift;      // right shift after the Q31 multiply (may be negative)
  QuantParams input, output;
  bool relu = false;
};

enum class Int8Kernel { automatic, scalar, avx2 };

class QuantizedNetwork {
 public:
  QuantizedNetwork() = default;
  explicit QuantizedNetwork(std::vector<QuantLayer> layers);  // validates, derives bias_eff

  const std::vector<QuantLayer>& layers() const { return layers_; }
  std::size_t input_size() const { return layers_.empty() ? 0 : layers_.front().in; }
  std::size_t output_size() const { return layers_.empty() ? 0 : layers_.back().out; }

  // z (standardized features) → y (dequantized reconstruction). scratch: scratch_size() bytes.
  // Thread: any (const).
  void forward(std::span<const float> z, std::span<float> y, std::span<std::int8_t> scratch,
               Int8Kernel kernel = Int8Kernel::automatic) const;
  std::size_t scratch_size() const;

  // True when the CPU running this process has AVX2 (the automatic kernel then uses it).
  static bool avx2_available();

 private:
  std::vector<QuantLayer> layers_;
};

// Quantizes a trained float network whose clamps were calibrated (FloatNetwork::calibrate):
// the activation ranges are exactly the float clamps. Throws std::invalid_argument otherwise.
QuantizedNetwork quantize(const FloatNetwork& net);

// round(acc · M) with M = multiplier·2^−(31+shift), round half away from zero, saturated to
// int32: the shared requantization step (exposed for tests). Needs shift >= −30.
std::int32_t requantize(std::int64_t acc, std::int32_t multiplier, std::int32_t shift);

}  // namespace vibgate::analytics
