// vibgate/analytics/training.hpp — training the float autoencoder on healthy feature vectors.
//
// Deterministic for a given seed on any platform: the random numbers come from std::mt19937_64
// (fully specified by the standard) converted by our own code, not std:: distributions, and the
// float arithmetic is element-wise in a fixed order (the SIMD paths compute exactly what the scalar
// order would, no FMA, no reassociation), so the AVX2 and baseline builds give identical models.
// Adam, mini-batches, a validation split, a budget of sample passes and early stopping that
// restores the best weights.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "vibgate/analytics/dense.hpp"

namespace vibgate::analytics {

struct TrainOptions {
  std::vector<std::size_t> hidden = {32, 8, 32};  // hidden layer widths (ReLU)
  std::uint64_t seed = 1;
  double learning_rate = 1e-3;
  std::size_t batch_size = 32;
  std::size_t max_epochs = 300;
  // Training-sample passes (epochs × training windows) allowed: the epoch limit is
  // min(max_epochs, ceil(sample_budget / training windows)), at least 1, so the training time is
  // bounded on large data sets while small ones still get max_epochs. 0: no budget.
  std::size_t sample_budget = 5'000'000;
  std::size_t patience = 30;           // epochs without a significant validation improvement
  double min_improvement = 1e-3;       // relative validation-loss decrease that counts as one
  double validation_fraction = 0.2;
  double min_std = 0.02;               // floor of the per-feature standard deviation
  double weight_decay = 1e-4;          // L2 on weights, keeps the tiny net smooth
  // Magnitude pruning with fine-tuning (docs/model.md, "Pruning"); 0 = off. After the dense
  // training, the smallest-|w| weights of every layer are set to zero in `prune_steps` equal
  // steps up to this fraction of the layer's weights (exactly round(fraction · in · out) per
  // layer; biases untouched), each step followed by fine-tuning with the zeros enforced after
  // every Adam step (their Adam moments stay 0 too) and the same early stopping. Must be in [0, 1).
  double prune_fraction = 0;
  // Fine-tuning epochs over all steps (split evenly, each step with early stopping); 0: the dense
  // epoch limit again (measured: 30 % of it left 75–90 % pruned nets still improving,
  // docs/model.md), at least one per step.
  std::size_t prune_finetune_epochs = 0;
  std::size_t prune_steps = 3;
};

struct TrainStats {
  std::size_t epochs = 0, best_epoch = 0;
  std::size_t epoch_limit = 0;  // min(max_epochs, budget epochs)
  std::size_t train_count = 0, validation_count = 0;
  double train_loss = 0, validation_loss = 0;
  // Pruning (all 0 without): fine-tuning epochs run (included in `epochs`), the validation loss
  // of the dense network before pruning, weights (not biases) that are exactly zero.
  std::size_t finetune_epochs = 0;
  double dense_validation_loss = 0;
  std::size_t pruned_weights = 0;
};

struct TrainedAutoencoder {
  Normalizer normalizer;
  FloatNetwork network;
  TrainStats stats;
  std::vector<std::size_t> train_index, validation_index;  // into the caller's input rows
};

// Trains on `inputs` (rows of equal length, raw model-input vectors). Throws std::invalid_argument
// when there are fewer than 8 rows, rows differ in length, a value is not finite, or
// prune_fraction is outside [0, 1).
// Thread: the caller's; uses one core.
TrainedAutoencoder train_autoencoder(const std::vector<std::vector<float>>& inputs,
                                     const TrainOptions& options);

}  // namespace vibgate::analytics
