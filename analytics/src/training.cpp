// training.cpp — Adam training of the dense autoencoder with manual backpropagation.
//
// Sizes are tiny (a few thousand weights), so plain loops over one sample at a time, accumulating
// gradients over a mini-batch, are fast enough: ~22 000 windows × 100 epochs in seconds.
#include "vibgate/analytics/training.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>

namespace vibgate::analytics {
namespace {

// Platform-independent uniform in [0, 1) from the standard's fully specified engine.
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

void shuffle(std::vector<std::size_t>& v, std::mt19937_64& rng) {
  for (std::size_t i = v.size(); i > 1; --i) {
    const auto j = static_cast<std::size_t>(uniform01(rng) * static_cast<double>(i));
    std::swap(v[i - 1], v[std::min(j, i - 1)]);
  }
}

struct Adam {
  std::vector<float> m, v;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  void init(std::size_t n) { m.assign(n, 0.f); v.assign(n, 0.f); }
  void step(std::vector<float>& p, const std::vector<float>& g, double lr, std::size_t t,
            double decay) {
    const double c1 = 1 - std::pow(beta1, static_cast<double>(t));
    const double c2 = 1 - std::pow(beta2, static_cast<double>(t));
    for (std::size_t i = 0; i < p.size(); ++i) {
      const double gi = g[i] + decay * p[i];
      m[i] = static_cast<float>(beta1 * m[i] + (1 - beta1) * gi);
      v[i] = static_cast<float>(beta2 * v[i] + (1 - beta2) * gi * gi);
      p[i] -= static_cast<float>(lr * (m[i] / c1) / (std::sqrt(v[i] / c2) + eps));
    }
  }
};

}  // namespace

TrainedAutoencoder train_autoencoder(const std::vector<std::vector<float>>& inputs,
                                     const TrainOptions& opt) {
  if (inputs.size() < 8)
    throw std::invalid_argument("training needs at least 8 windows (got " +
                                std::to_string(inputs.size()) + ")");
  const std::size_t d = inputs[0].size();
  for (const auto& r : inputs) {
    if (r.size() != d) throw std::invalid_argument("training rows differ in length");
    for (float v : r)
      if (!std::isfinite(v)) throw std::invalid_argument("training data holds a non-finite value");
  }
  std::mt19937_64 rng(opt.seed);
  TrainedAutoencoder out;

  // Split.
  std::vector<std::size_t> idx(inputs.size());
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  shuffle(idx, rng);
  auto nval = static_cast<std::size_t>(std::floor(opt.validation_fraction * static_cast<double>(idx.size())));
  nval = std::clamp<std::size_t>(nval, 1, idx.size() / 2);
  out.validation_index.assign(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(nval));
  out.train_index.assign(idx.begin() + static_cast<std::ptrdiff_t>(nval), idx.end());

  // Normalizer from the training part.
  Normalizer& norm = out.normalizer;
  norm.mean.assign(d, 0.f);
  norm.std.assign(d, 0.f);
  {
    std::vector<double> s(d, 0), s2(d, 0);
    for (auto i : out.train_index)
      for (std::size_t k = 0; k < d; ++k) s[k] += inputs[i][k];
    const auto n = static_cast<double>(out.train_index.size());
    for (std::size_t k = 0; k < d; ++k) s[k] /= n;
    for (auto i : out.train_index)
      for (std::size_t k = 0; k < d; ++k) {
        const double c = inputs[i][k] - s[k];
        s2[k] += c * c;
      }
    for (std::size_t k = 0; k < d; ++k) {
      norm.mean[k] = static_cast<float>(s[k]);
      norm.std[k] = static_cast<float>(std::max(std::sqrt(s2[k] / n), opt.min_std));
    }
  }
  std::vector<std::vector<float>> z(inputs.size(), std::vector<float>(d));
  for (std::size_t i = 0; i < inputs.size(); ++i) norm.apply(inputs[i], z[i]);

  // Layers: d → hidden… → d, He-uniform init.
  std::vector<std::size_t> widths = {d};
  widths.insert(widths.end(), opt.hidden.begin(), opt.hidden.end());
  widths.push_back(d);
  const std::size_t nl = widths.size() - 1;
  std::vector<DenseLayer> layers(nl);
  for (std::size_t l = 0; l < nl; ++l) {
    auto& L = layers[l];
    L.in = widths[l];
    L.out = widths[l + 1];
    L.relu = l + 1 < nl;
    const double limit = std::sqrt(6.0 / static_cast<double>(L.in));
    L.weights.resize(L.in * L.out);
    for (auto& w : L.weights) w = static_cast<float>((2 * uniform01(rng) - 1) * limit * (L.relu ? 1.0 : 0.5));
    L.bias.assign(L.out, 0.f);
  }

  // Buffers for one sample: activations per layer (post-activation), deltas.
  std::vector<std::vector<float>> act(nl + 1), delta(nl + 1);
  for (std::size_t l = 0; l <= nl; ++l) {
    act[l].resize(widths[l]);
    delta[l].resize(widths[l]);
  }
  std::vector<std::vector<float>> gw(nl), gb(nl);
  std::vector<Adam> aw(nl), ab(nl);
  for (std::size_t l = 0; l < nl; ++l) {
    gw[l].assign(layers[l].weights.size(), 0.f);
    gb[l].assign(layers[l].out, 0.f);
    aw[l].init(gw[l].size());
    ab[l].init(gb[l].size());
  }

  auto forward = [&](const std::vector<float>& x) {
    std::copy(x.begin(), x.end(), act[0].begin());
    for (std::size_t l = 0; l < nl; ++l) {
      const auto& L = layers[l];
      for (std::size_t j = 0; j < L.out; ++j) {
        const float* row = &L.weights[j * L.in];
        float acc = L.bias[j];
        for (std::size_t i = 0; i < L.in; ++i) acc += row[i] * act[l][i];
        act[l + 1][j] = L.relu ? std::max(acc, 0.f) : acc;
      }
    }
  };
  auto sample_loss = [&](const std::vector<float>& x) {
    forward(x);
    double s = 0;
    for (std::size_t k = 0; k < d; ++k) {
      const double e = act[nl][k] - x[k];
      s += e * e;
    }
    return s / static_cast<double>(d);
  };
  auto mean_loss = [&](const std::vector<std::size_t>& set) {
    double s = 0;
    for (auto i : set) s += sample_loss(z[i]);
    return s / static_cast<double>(set.size());
  };

  std::vector<DenseLayer> best = layers;
  double best_val = std::numeric_limits<double>::infinity();
  std::size_t since_best = 0, step = 0;
  std::vector<std::size_t> order = out.train_index;
  const std::size_t bs = std::max<std::size_t>(1, opt.batch_size);
  for (std::size_t epoch = 1; epoch <= opt.max_epochs; ++epoch) {
    shuffle(order, rng);
    for (std::size_t b0 = 0; b0 < order.size(); b0 += bs) {
      const std::size_t b1 = std::min(order.size(), b0 + bs);
      for (std::size_t l = 0; l < nl; ++l) {
        std::fill(gw[l].begin(), gw[l].end(), 0.f);
        std::fill(gb[l].begin(), gb[l].end(), 0.f);
      }
      const float scale = 2.0f / static_cast<float>(d * (b1 - b0));
      for (std::size_t s = b0; s < b1; ++s) {
        const auto& x = z[order[s]];
        forward(x);
        for (std::size_t k = 0; k < d; ++k) delta[nl][k] = (act[nl][k] - x[k]) * scale;
        for (std::size_t l = nl; l-- > 0;) {
          const auto& L = layers[l];
          // delta[l+1] is dLoss/d(pre-activation) of layer l's output once masked by ReLU.
          if (L.relu)
            for (std::size_t j = 0; j < L.out; ++j)
              if (act[l + 1][j] <= 0.f) delta[l + 1][j] = 0.f;
          for (std::size_t j = 0; j < L.out; ++j) {
            const float dj = delta[l + 1][j];
            gb[l][j] += dj;
            float* g = &gw[l][j * L.in];
            for (std::size_t i = 0; i < L.in; ++i) g[i] += dj * act[l][i];
          }
          if (l > 0) {
            std::fill(delta[l].begin(), delta[l].end(), 0.f);
            for (std::size_t j = 0; j < L.out; ++j) {
              const float dj = delta[l + 1][j];
              const float* row = &L.weights[j * L.in];
              for (std::size_t i = 0; i < L.in; ++i) delta[l][i] += dj * row[i];
            }
          }
        }
      }
      ++step;
      for (std::size_t l = 0; l < nl; ++l) {
        aw[l].step(layers[l].weights, gw[l], opt.learning_rate, step, opt.weight_decay);
        ab[l].step(layers[l].bias, gb[l], opt.learning_rate, step, 0.0);
      }
    }
    const double val = mean_loss(out.validation_index);
    out.stats.epochs = epoch;
    if (val < best_val * (1 - 1e-4)) {
      best_val = val;
      best = layers;
      out.stats.best_epoch = epoch;
      since_best = 0;
    } else if (++since_best >= opt.patience) {
      break;
    }
  }
  layers = best;
  out.stats.train_count = out.train_index.size();
  out.stats.validation_count = out.validation_index.size();
  out.stats.validation_loss = best_val;
  out.stats.train_loss = mean_loss(out.train_index);
  out.network = FloatNetwork(std::move(layers));
  return out;
}

}  // namespace vibgate::analytics
