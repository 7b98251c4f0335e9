// vibgate/analytics/quantized.hpp — post-training int8 quantization and integer-only inference.
//
// Weights: symmetric int8 per output channel (scale = max|w|/127). Activations: asymmetric int8
// (scale, zero point) covering the float network's calibrated clamp ranges, which the float path
// applies too, so both saturate alike far outside the training data. Bias: int32 at scale
// s_in·s_w. Requantization: fixed-point multiplier (Q31) and shift, ReLU fused into the clamp;
// tanh and sigmoid layers requantize to their pre-activation scale and then map each int8 value
// through a 256-entry lookup table to the output scale.
// Between the input quantization and the output dequantization only integer arithmetic runs.
// The portable scalar kernel and the AVX2 kernel compute the same exact integer function (exact
// dot products, exact requantization, the same input rounding), so their outputs are
// bit-identical (tests/analytics/quantized_test). The AVX2 kernel uses a weight layout derived in
// the constructor (never serialized): 8 output rows interleaved per 256-bit register.
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
  Activation activation = Activation::linear;
  // tanh/sigmoid only: the accumulator is requantized to `pre` (the calibrated pre-activation
  // range), then lut[q + 128] is the output at the `output` scale. Empty for other activations.
  QuantParams pre;
  std::vector<std::int8_t> lut;
  // The zero point the accumulator is requantized to (pre's for LUT layers, else output's).
  std::int32_t requant_zero_point() const {
    return uses_lut(activation) ? pre.zero_point : output.zero_point;
  }
};

// The 256-entry table of a tanh/sigmoid layer: entry q + 128 is the output value (int8 at `out`)
// of the pre-activation value pre.scale·(q − pre.zero_point), computed in double and rounded half
// away from zero. Throws std::invalid_argument for other activations.
std::vector<std::int8_t> activation_lut(Activation a, QuantParams pre, QuantParams out);

enum class Int8Kernel { automatic, scalar, avx2 };

class QuantizedNetwork {
 public:
  QuantizedNetwork() = default;
  // Validates (every layer input ≤ kMaxLayerInput wide, so accumulators stay below 2^32; a
  // tanh/sigmoid layer has valid pre-activation parameters and a 256-entry table) and derives
  // bias_eff and the AVX2 kernel's layout.
  explicit QuantizedNetwork(std::vector<QuantLayer> layers);

  static constexpr std::size_t kMaxLayerInput = 4096;

  const std::vector<QuantLayer>& layers() const { return layers_; }
  std::size_t input_size() const { return layers_.empty() ? 0 : layers_.front().in; }
  std::size_t output_size() const { return layers_.empty() ? 0 : layers_.back().out; }

  // z (standardized features) → y (dequantized reconstruction). scratch: at least scratch_size()
  // bytes (std::invalid_argument otherwise), any alignment. Thread: any (const).
  void forward(std::span<const float> z, std::span<float> y, std::span<std::int8_t> scratch,
               Int8Kernel kernel = Int8Kernel::automatic) const;
  std::size_t scratch_size() const;

  // True when the CPU running this process has AVX2 (the automatic kernel then uses it).
  static bool avx2_available();

 private:
  // Derived per layer at construction for the AVX2 kernel (never serialized). Output rows are
  // grouped in blocks of 8; for every input pair (2k, 2k+1) a block holds the 8 rows' int16
  // weight pairs, so one _mm256_madd_epi16 against the broadcast activation pair adds both
  // products to 8 int32 sums (no horizontal sums). Blocks are stored in groups of up to 4
  // (32 outputs), pair-major inside a group: weights[(g·pairs + k·nb + b)·16 + 2r + t] is row
  // 8(g + b) + r, input 2k + t, for the group starting at block g with nb blocks.
  struct PackedLayer {
    std::size_t pairs = 0, blocks = 0;  // ceil(in/2), ceil(out/8)
    bool acc32 = false;                 // |dot + bias_eff| <= 2^31 − 1 for every possible input
    std::vector<std::int16_t> weights;
    std::vector<std::int32_t> bias;           // [8·blocks]: bias_eff if acc32, else 0
    std::vector<std::uint32_t> multiplier;    // [8·blocks], padding rows 0
    std::vector<std::int64_t> total, half;    // 31 + shift and 2^(30 + shift), per block in the
                                              // lane order of _mm256_mul_epu32: rows 0,2,4,6,1,3,5,7
  };
  struct Kernels;  // the scalar and AVX2 forward passes (quantized.cpp)

  std::vector<QuantLayer> layers_;
  std::vector<PackedLayer> packed_;
  std::size_t width_ = 0;  // activation buffer length: max over layers of in and out, rounded up to 8
};

// Quantizes a trained float network whose clamps were calibrated (FloatNetwork::calibrate):
// the activation ranges are exactly the float clamps (for tanh/sigmoid layers the pre-activation
// range gives the requantization target and the lookup table's input). Throws std::invalid_argument
// otherwise. A weight row whose largest |w| is negligible (< 1e-12, or a requantization multiplier
// below 2^-32: dead ReLU units end training with denormal weights) becomes a zero row with the
// nominal scale s_out/s_in, so its output is the bias alone.
QuantizedNetwork quantize(const FloatNetwork& net);

// round(acc · M) with M = multiplier·2^−(31+shift), round half away from zero, saturated to
// int32: the requantization step (exposed for tests). Needs shift in [−30, 31] and
// multiplier >= 0. Exact for every int64 acc (64-bit arithmetic when |acc| < 2^32, which is all
// forward() ever produces; 128-bit otherwise).
std::int32_t requantize(std::int64_t acc, std::int32_t multiplier, std::int32_t shift);

}  // namespace vibgate::analytics
