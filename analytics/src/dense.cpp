// dense.cpp — float forward pass and standardization for the autoencoder.
#include "vibgate/analytics/dense.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace vibgate::analytics {

const char* to_string(Activation a) {
  switch (a) {
    case Activation::relu:
      return "relu";
    case Activation::tanh:
      return "tanh";
    case Activation::sigmoid:
      return "sigmoid";
    case Activation::linear:
      break;
  }
  return "linear";
}

float activate(Activation a, float x) {
  switch (a) {
    case Activation::relu:
      return std::max(x, 0.0f);
    case Activation::tanh:
      return std::tanh(x);
    case Activation::sigmoid:
      return 1.0f / (1.0f + std::exp(-x));
    case Activation::linear:
      break;
  }
  return x;
}

void Normalizer::apply(std::span<const float> x, std::span<float> z) const {
  for (std::size_t i = 0; i < x.size(); ++i) z[i] = (x[i] - mean[i]) / std[i];
}

FloatNetwork::FloatNetwork(std::vector<DenseLayer> layers) : layers_(std::move(layers)) {
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const auto& L = layers_[l];
    if (L.weights.size() != L.in * L.out || L.bias.size() != L.out)
      throw std::invalid_argument("layer " + std::to_string(l) + ": weight/bias sizes do not match");
    if (l > 0 && layers_[l - 1].out != L.in)
      throw std::invalid_argument("layer " + std::to_string(l) + ": input size does not match");
  }
}

std::size_t FloatNetwork::max_width() const {
  std::size_t w = 0;
  for (const auto& L : layers_) w = std::max({w, L.in, L.out});
  return w;
}

void FloatNetwork::forward(std::span<const float> z, std::span<float> y,
                           std::span<float> scratch) const {
  const std::size_t w = max_width();
  float* a = scratch.data();
  float* b = scratch.data() + w;
  for (std::size_t i = 0; i < z.size(); ++i) a[i] = std::clamp(z[i], input_lo_, input_hi_);
  for (const auto& L : layers_) {
    for (std::size_t j = 0; j < L.out; ++j) {
      const float* row = &L.weights[j * L.in];
      float acc = L.bias[j];
      for (std::size_t i = 0; i < L.in; ++i) acc += row[i] * a[i];
      b[j] = std::clamp(activate(L.activation, acc), L.out_lo, L.out_hi);
    }
    std::swap(a, b);
  }
  std::copy(a, a + output_size(), y.begin());
}

void FloatNetwork::calibrate(const std::vector<std::vector<float>>& rows, float headroom) {
  const float inf = std::numeric_limits<float>::infinity();
  input_lo_ = -inf;
  input_hi_ = inf;
  for (auto& L : layers_) {
    L.out_lo = -inf;
    L.out_hi = inf;
    L.pre_lo = -inf;
    L.pre_hi = inf;
  }
  // lo/hi[l + 1]: layer l's output range, or its pre-activation range for tanh/sigmoid layers.
  std::vector<float> lo(layers_.size() + 1, inf), hi(layers_.size() + 1, -inf);
  std::vector<float> a, b;
  for (const auto& row : rows) {
    a = row;
    for (float v : a) {
      lo[0] = std::min(lo[0], v);
      hi[0] = std::max(hi[0], v);
    }
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const auto& L = layers_[l];
      b.assign(L.out, 0.f);
      for (std::size_t j = 0; j < L.out; ++j) {
        float acc = L.bias[j];
        for (std::size_t i = 0; i < L.in; ++i) acc += L.weights[j * L.in + i] * a[i];
        b[j] = activate(L.activation, acc);
        const float seen = uses_lut(L.activation) ? acc : b[j];
        lo[l + 1] = std::min(lo[l + 1], seen);
        hi[l + 1] = std::max(hi[l + 1], seen);
      }
      a.swap(b);
    }
  }
  auto widen = [&](std::size_t k, bool relu, float& out_lo, float& out_hi) {
    const float l = std::min(lo[k], 0.f), h = std::max(hi[k], 0.f);
    const float pad = headroom * (h - l);
    out_lo = relu ? 0.f : l - pad;
    out_hi = h + pad;
  };
  widen(0, false, input_lo_, input_hi_);
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    auto& L = layers_[l];
    if (!uses_lut(L.activation)) {
      widen(l + 1, L.activation == Activation::relu, L.out_lo, L.out_hi);
      continue;
    }
    widen(l + 1, false, L.pre_lo, L.pre_hi);
    if (!(L.pre_hi - L.pre_lo >= 1e-6f)) L.pre_hi = L.pre_lo + 1e-6f;  // as the int8 scale floor
    L.out_lo = activate(L.activation, L.pre_lo);
    L.out_hi = activate(L.activation, L.pre_hi);
    if (!(L.out_lo < L.out_hi))
      L.out_hi = std::nextafter(L.out_lo, std::numeric_limits<float>::infinity());
  }
}

float mean_squared_error(std::span<const float> a, std::span<const float> b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    s += d * d;
  }
  return static_cast<float>(s / static_cast<double>(a.size()));
}

}  // namespace vibgate::analytics
