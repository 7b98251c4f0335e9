// quantized_test.cpp — int8 quantization: requantize() against an exact reference, the scalar and
// AVX2 kernels against each other and against an independent integer reference of the forward
// pass, int8 vs float agreement on calibration-range inputs, and QuantizedNetwork validation.
#include "vibgate/analytics/quantized.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "vibgate/analytics/dense.hpp"
#include "vibgate/analytics/features.hpp"
#include "vibgate/analytics/model.hpp"

namespace vibgate::analytics {
namespace {

static_assert(std::numeric_limits<long double>::digits >= 64,
              "the requantize reference needs a 64-bit long double mantissa (x86 extended)");

// round(acc · multiplier · 2^−(31+shift)), halves away from zero, saturated to int32. The product
// of an int32 (or a slightly larger accumulator) and an int32 is exact in a 64-bit mantissa and the power-of-two scaling is exact, so this is the
// real-number result rounded once.
std::int32_t requantize_reference(std::int64_t acc, std::int32_t multiplier, std::int32_t shift) {
  const long double prod = static_cast<long double>(acc) * static_cast<long double>(multiplier);
  const long double r = std::round(std::ldexp(prod, -(31 + shift)));  // round: half away from 0
  const long double lo = std::numeric_limits<std::int32_t>::min();
  const long double hi = std::numeric_limits<std::int32_t>::max();
  return static_cast<std::int32_t>(std::clamp(r, lo, hi));
}

TEST(Requantize, HandComputedValues) {
  const std::int32_t half = 1 << 30;  // M = 0.5 with shift 0
  EXPECT_EQ(requantize(0, half, 0), 0);
  EXPECT_EQ(requantize(1, half, 0), 1);    // 0.5 → 1 (away from zero)
  EXPECT_EQ(requantize(-1, half, 0), -1);  // −0.5 → −1
  EXPECT_EQ(requantize(3, half, 0), 2);    // 1.5 → 2
  EXPECT_EQ(requantize(-3, half, 0), -2);  // −1.5 → −2
  EXPECT_EQ(requantize(5, half, 0), 3);    // 2.5 → 3 (not banker's 2)
  EXPECT_EQ(requantize(-5, half, 0), -3);
  EXPECT_EQ(requantize(4, half, 0), 2);
  EXPECT_EQ(requantize(1000, half, 3), 63);    // 1000 · 0.5 / 8 = 62.5 → 63
  EXPECT_EQ(requantize(-1000, half, 3), -63);
  EXPECT_EQ(requantize(1000, half, -2), 2000);  // M = 2
  // 0.75 · 7 = 5.25 → 5; 0.75 · −7 → −5.
  EXPECT_EQ(requantize(7, 3 << 29, 0), 5);
  EXPECT_EQ(requantize(-7, 3 << 29, 0), -5);
  // Saturation instead of wrap-around when M > 1 pushes past int32.
  EXPECT_EQ(requantize(std::numeric_limits<std::int32_t>::max(), half, -30),
            std::numeric_limits<std::int32_t>::max());
  EXPECT_EQ(requantize(std::numeric_limits<std::int32_t>::min(), half, -30),
            std::numeric_limits<std::int32_t>::min());
}

TEST(Requantize, MatchesExactReferenceOnRandomValues) {
  std::mt19937_64 rng(12345);
  std::uniform_int_distribution<std::int32_t> any_acc(std::numeric_limits<std::int32_t>::min(),
                                                      std::numeric_limits<std::int32_t>::max());
  std::uniform_int_distribution<std::int32_t> small_acc(-100000, 100000);
  std::uniform_int_distribution<std::int32_t> mult(1 << 30, std::numeric_limits<std::int32_t>::max());
  std::uniform_int_distribution<std::int32_t> shift(-30, 31);
  int mismatches = 0;
  for (int i = 0; i < 500000; ++i) {
    const std::int32_t a = (i % 2) ? any_acc(rng) : small_acc(rng);
    const std::int32_t m = mult(rng), s = shift(rng);
    const std::int32_t got = requantize(a, m, s), want = requantize_reference(a, m, s);
    if (got != want && ++mismatches <= 10)
      ADD_FAILURE() << "requantize(" << a << ", " << m << ", " << s << ") = " << got << ", want " << want;
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(Requantize, RoundsExactTiesAwayFromZero) {
  // With t = 31 + shift, acc = odd·2^q and multiplier = odd·2^p where p + q = t − 1, the scaled
  // product acc·mult·2^−t is an exact half. Covers every shift from −30 to 30.
  std::mt19937_64 rng(99);
  auto pick = [&](std::int64_t lo, std::int64_t hi) {  // uniform in [lo, hi]
    return lo + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(hi - lo + 1));
  };
  int checked = 0;
  for (int t = 1; t <= 61; ++t) {
    const std::int32_t s = t - 31;
    for (int k = 0; k < 200; ++k) {
      const std::int64_t q = pick(std::max(0, t - 1 - 30), std::min(t - 1, 30));
      const std::int64_t p = t - 1 - q;
      // odd mantissas: |acc| = oa·2^q < 2^31, mult = om·2^p in [2^30, 2^31)
      const std::int64_t bits = pick(1, 31 - q);  // vary the magnitude, not only near 2^31
      const std::int64_t oa = 2 * pick(0, (std::int64_t{1} << (bits - 1)) - 1) + 1;
      const std::int64_t om_lo = (std::int64_t{1} << (30 - p)), om_hi = (std::int64_t{1} << (31 - p)) - 1;
      std::int64_t om = pick(om_lo, om_hi) | 1;
      if (om > om_hi) om -= 2;
      const auto acc = static_cast<std::int32_t>((k % 2 ? -oa : oa) << q);
      const auto m = static_cast<std::int32_t>(om << p);
      ASSERT_GE(m, 1 << 30);
      const long double exact = std::ldexp(static_cast<long double>(acc) * m, -t);
      ASSERT_EQ(exact - std::trunc(exact), acc > 0 ? 0.5L : -0.5L) << "not a tie: t=" << t;
      const auto want = static_cast<std::int32_t>(
          std::clamp(acc > 0 ? std::trunc(exact) + 1 : std::trunc(exact) - 1, -2147483648.0L, 2147483647.0L));
      EXPECT_EQ(requantize(acc, m, s), want) << "acc " << acc << " mult " << m << " shift " << s;
      EXPECT_EQ(requantize_reference(acc, m, s), want);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 61 * 200);
}

// ---------------------------------------------------------------------------------------------
// Independent reference of the integer forward pass, written from quantized.hpp's contract.
std::vector<float> forward_reference(const QuantizedNetwork& net, const std::vector<float>& z) {
  const auto& layers = net.layers();
  std::vector<std::int32_t> a(layers.front().in);
  const auto& first = layers.front();
  for (std::size_t i = 0; i < first.in; ++i) {
    const float q = std::round(z[i] / first.input.scale) + static_cast<float>(first.input.zero_point);
    a[i] = static_cast<std::int32_t>(std::clamp(q, -128.f, 127.f));
  }
  for (const auto& L : layers) {
    std::vector<std::int32_t> b(L.out);
    for (std::size_t j = 0; j < L.out; ++j) {
      std::int64_t acc = L.bias[j];
      for (std::size_t i = 0; i < L.in; ++i)
        acc += static_cast<std::int64_t>(L.weights[j * L.in_padded + i]) * (a[i] - L.input.zero_point);
      // Exact int64 accumulator (|acc| < 2^40 here, so acc·multiplier stays exact in long double).
      const std::int32_t r = requantize_reference(acc, L.multiplier[j], L.shift[j]);
      const std::int64_t v = static_cast<std::int64_t>(r) + L.output.zero_point;
      const std::int64_t lo = L.activation == Activation::relu ? L.output.zero_point : -128;
      b[j] = static_cast<std::int32_t>(std::clamp<std::int64_t>(v, lo, 127));
    }
    a = std::move(b);
  }
  const auto& last = layers.back();
  std::vector<float> y(last.out);
  for (std::size_t k = 0; k < last.out; ++k)
    y[k] = last.output.scale * static_cast<float>(a[k] - last.output.zero_point);
  return y;
}

// Synthetic "feature rows": a few latent factors mixed into D correlated features plus noise, so
// the autoencoder has structure to learn.
std::vector<std::vector<float>> synthetic_rows(std::size_t count, std::size_t d, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, 1.0);
  const std::size_t latent = 3;
  std::vector<double> mix(latent * d), offset(d), scale(d);
  for (auto& v : mix) v = g(rng);
  for (std::size_t k = 0; k < d; ++k) {
    offset[k] = 5 * g(rng);
    scale[k] = 0.1 + std::abs(g(rng));
  }
  std::vector<std::vector<float>> rows(count, std::vector<float>(d));
  for (auto& r : rows) {
    double f[latent];
    for (auto& v : f) v = g(rng);
    for (std::size_t k = 0; k < d; ++k) {
      double v = 0.05 * g(rng);
      for (std::size_t l = 0; l < latent; ++l) v += mix[l * d + k] * f[l];
      r[k] = static_cast<float>(offset[k] + scale[k] * v);
    }
  }
  return rows;
}

FeatureConfig small_config() {
  FeatureConfig c;
  c.sample_rate_hz = 25600;
  return c;  // 23 model inputs: 6 time-domain + 16 bands + centroid
}

struct TrainedFixture {
  Model model;
  std::vector<std::vector<float>> rows, z;
};

const TrainedFixture& trained(const std::vector<std::size_t>& hidden) {
  static std::map<std::vector<std::size_t>, TrainedFixture> cache;  // node-based: references stay valid
  if (auto it = cache.find(hidden); it != cache.end()) return it->second;
  TrainedFixture t;
  const FeatureConfig cfg = small_config();
  const std::size_t d = model_input_names(cfg).size();
  t.rows = synthetic_rows(600, d, 7);
  TrainOptions opt;
  opt.hidden = hidden;
  opt.max_epochs = 80;
  opt.seed = 3;
  t.model = build_model(cfg, t.rows, opt, ThresholdRule{}, TrainingSummary{});
  t.z.assign(t.rows.size(), std::vector<float>(d));
  for (std::size_t i = 0; i < t.rows.size(); ++i) t.model.normalizer.apply(t.rows[i], t.z[i]);
  return cache.emplace(hidden, std::move(t)).first->second;
}

// Inputs for the kernel comparison: calibration rows, random values at several scales, and
// extremes (±FLT_MAX, ±inf, subnormals, exact zero-point edges).
std::vector<std::vector<float>> kernel_inputs(const TrainedFixture& t, std::size_t random_count) {
  std::vector<std::vector<float>> in(t.z.begin(), t.z.begin() + 200);
  const std::size_t d = t.z.front().size();
  std::mt19937_64 rng(2024);
  std::normal_distribution<float> g(0.f, 1.f);
  const float scales[] = {0.1f, 1.f, 3.f, 10.f, 1000.f};
  for (std::size_t n = 0; n < random_count; ++n) {
    std::vector<float> v(d);
    const float s = scales[n % 5];
    for (auto& x : v) x = s * g(rng);
    in.push_back(std::move(v));
  }
  const float ext[] = {std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                       std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                       std::numeric_limits<float>::denorm_min(), 0.f, -0.f, 1e30f, -1e30f};
  for (float e : ext) in.emplace_back(d, e);
  for (std::size_t n = 0; n < 200; ++n) {  // mixtures of extremes per element
    std::vector<float> v(d);
    for (auto& x : v) x = ext[rng() % 9];
    in.push_back(std::move(v));
  }
  return in;
}

class KernelTest : public ::testing::TestWithParam<std::vector<std::size_t>> {};

TEST_P(KernelTest, ScalarMatchesIndependentReference) {
  const auto& t = trained(GetParam());
  const auto& net = t.model.int8_net;
  std::vector<std::int8_t> scratch(net.scratch_size());
  std::vector<float> y(net.output_size());
  int bad = 0;
  for (const auto& z : kernel_inputs(t, 1000)) {
    net.forward(z, y, scratch, Int8Kernel::scalar);
    const auto want = forward_reference(net, z);
    for (std::size_t k = 0; k < y.size(); ++k)
      if (y[k] != want[k] && ++bad <= 5) ADD_FAILURE() << "output " << k << ": " << y[k] << " vs " << want[k];
  }
  EXPECT_EQ(bad, 0);
}

TEST_P(KernelTest, Avx2BitIdenticalToScalar) {
  if (!QuantizedNetwork::avx2_available()) GTEST_SKIP() << "this CPU has no AVX2; only the scalar kernel runs";
  const auto& t = trained(GetParam());
  const auto& net = t.model.int8_net;
  std::vector<std::int8_t> s1(net.scratch_size()), s2(net.scratch_size());
  std::vector<float> y1(net.output_size()), y2(net.output_size()), y3(net.output_size());
  const auto inputs = kernel_inputs(t, 1000);
  ASSERT_GE(inputs.size(), 1000u);
  std::size_t differing = 0, saturated = 0;
  for (const auto& z : inputs) {
    net.forward(z, y1, s1, Int8Kernel::scalar);
    net.forward(z, y2, s2, Int8Kernel::avx2);
    net.forward(z, y3, s2, Int8Kernel::automatic);
    for (std::size_t k = 0; k < y1.size(); ++k) {
      // Bit-identical, not merely equal (no −0/+0 or NaN payload differences either).
      if (std::bit_cast<std::uint32_t>(y1[k]) != std::bit_cast<std::uint32_t>(y2[k]) ||
          std::bit_cast<std::uint32_t>(y1[k]) != std::bit_cast<std::uint32_t>(y3[k]))
        ++differing;
      if (!std::isfinite(y1[k])) ADD_FAILURE() << "non-finite int8 output";
    }
    saturated += std::abs(z[0]) > 1e6f;
  }
  EXPECT_EQ(differing, 0u);
  EXPECT_GT(saturated, 10u);  // the extremes were really exercised
}

INSTANTIATE_TEST_SUITE_P(Widths, KernelTest,
                         ::testing::Values(std::vector<std::size_t>{32, 8, 32},   // the default
                                           std::vector<std::size_t>{40, 5, 70}),  // >32 wide: 2–3 AVX2 chunks
                         [](const ::testing::TestParamInfo<std::vector<std::size_t>>& p) {
                           std::string n = "w";
                           for (auto w : p.param) {
                             n += '_';
                             n += std::to_string(w);
                           }
                           return n;
                         });

// A hand-built network with random int8 weights across the full range (including −128, which
// quantize() never produces but the constructor accepts), random zero points and requantization
// parameters, and widths that are not multiples of 32.
QuantizedNetwork random_network(std::uint64_t seed, const std::vector<std::size_t>& widths) {
  std::mt19937_64 rng(seed);
  auto uni = [&](int lo, int hi) { return lo + static_cast<int>(rng() % static_cast<std::uint64_t>(hi - lo + 1)); };
  std::vector<QuantLayer> layers;
  for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
    QuantLayer L;
    L.in = widths[l];
    L.out = widths[l + 1];
    L.in_padded = (L.in + 31) / 32 * 32;
    L.activation = l + 2 < widths.size() ? Activation::relu : Activation::linear;
    L.weights.assign(L.out * L.in_padded, 0);
    for (std::size_t j = 0; j < L.out; ++j)
      for (std::size_t i = 0; i < L.in; ++i) L.weights[j * L.in_padded + i] = static_cast<std::int8_t>(uni(-128, 127));
    L.weight_scale.assign(L.out, 0.01f);
    for (std::size_t j = 0; j < L.out; ++j) {
      L.bias.push_back(uni(-200000, 200000));
      L.multiplier.push_back(static_cast<std::int32_t>((1u << 30) + (rng() % (1u << 30))));
      L.shift.push_back(uni(8, 16));  // M ≈ 2^-(9…16): keeps most outputs inside int8
    }
    L.input = {0.05f, l == 0 ? uni(-128, 127) : layers.back().output.zero_point};
    L.output = {0.05f, uni(-128, 127)};
    layers.push_back(std::move(L));
  }
  return QuantizedNetwork(std::move(layers));
}

TEST(QuantizedKernels, RandomNetworkScalarReferenceAndAvx2Agree) {
  const auto net = random_network(17, {45, 100, 33, 64, 45});
  std::vector<std::int8_t> s(net.scratch_size());
  std::vector<float> ys(net.output_size()), yv(net.output_size());
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> u(-8.f, 8.f);
  std::size_t bad_ref = 0, bad_avx = 0, not_clamped = 0;
  for (int n = 0; n < 2000; ++n) {
    std::vector<float> z(net.input_size());
    for (auto& x : z) x = (n % 10 == 0) ? (rng() % 2 ? 1e9f : -1e9f) : u(rng);
    net.forward(z, ys, s, Int8Kernel::scalar);
    const auto want = forward_reference(net, z);
    for (std::size_t k = 0; k < ys.size(); ++k) {
      bad_ref += ys[k] != want[k];
      const float lo = 0.05f * static_cast<float>(-128 - net.layers().back().output.zero_point);
      const float hi = 0.05f * static_cast<float>(127 - net.layers().back().output.zero_point);
      not_clamped += ys[k] > lo && ys[k] < hi;
    }
    if (QuantizedNetwork::avx2_available()) {
      net.forward(z, yv, s, Int8Kernel::avx2);
      for (std::size_t k = 0; k < ys.size(); ++k) bad_avx += ys[k] != yv[k];
    }
  }
  EXPECT_EQ(bad_ref, 0u);
  EXPECT_EQ(bad_avx, 0u);
  EXPECT_GT(not_clamped, 1000u);  // outputs are not all saturated, so the arithmetic is exercised
}

// Parameters the constructor accepts must not overflow int32 inside forward(): the output has to
// saturate at the int8 limits, as the reference does. Two overflow points: dot + bias_eff (a bias
// near the int32 limit) and requantize(...) + output zero point (requantize saturated at ±2^31
// when M = multiplier·2^−(31+shift) is large, which shift down to −30 allows).
TEST(QuantizedKernels, ExtremeAcceptedParametersSaturateInsteadOfWrapping) {
  auto layer = [](std::int32_t bias, std::int32_t shift, std::int32_t zp_out) {
    QuantLayer L;
    L.in = 32;
    L.out = 1;
    L.in_padded = 32;
    L.weights.assign(32, 127);
    L.weight_scale = {1.f};
    L.bias = {bias};
    L.multiplier = {1 << 30};
    L.shift = {shift};
    L.input = {1.f, 0};
    L.output = {1.f, zp_out};
    return L;
  };
  struct Case {
    const char* what;
    QuantLayer L;
    float z;
    float want;  // saturated output: (127 − zp) or (−128 − zp) times scale 1
  };
  const Case cases[] = {
      {"requantize saturates at +2^31-1, then + zero point 10", layer(0, -30, 10), 100.f, 117.f},
      {"requantize saturates at -2^31, then + zero point -10", layer(0, -30, -10), -100.f, -118.f},
      {"dot + bias_eff with bias near +2^31", layer(std::numeric_limits<std::int32_t>::max() - 1000, 20, 0),
       100.f, 127.f},
      {"dot + bias_eff with bias near -2^31", layer(std::numeric_limits<std::int32_t>::min() + 1000, 20, 0),
       -100.f, -128.f},
  };
  for (const auto& c : cases) {
    QuantizedNetwork net({c.L});
    std::vector<float> z(32, c.z), y(1);
    std::vector<std::int8_t> scratch(net.scratch_size());
    ASSERT_EQ(forward_reference(net, z)[0], c.want) << c.what;
    net.forward(z, y, scratch, Int8Kernel::scalar);
    EXPECT_EQ(y[0], c.want) << c.what << " (scalar kernel)";
    if (QuantizedNetwork::avx2_available()) {
      net.forward(z, y, scratch, Int8Kernel::avx2);
      EXPECT_EQ(y[0], c.want) << c.what << " (AVX2 kernel)";
    }
  }
}

TEST(QuantizedAccuracy, Int8CloseToFloatOnCalibrationInputs) {
  const auto& t = trained({32, 8, 32});
  const Model& m = t.model;
  const float out_range = m.float_net.layers().back().out_hi - m.float_net.layers().back().out_lo;
  std::vector<float> yf(m.float_net.output_size()), yq(m.int8_net.output_size());
  std::vector<float> fs(2 * m.float_net.max_width());
  std::vector<std::int8_t> qs(m.int8_net.scratch_size());
  double sum_abs = 0, max_abs = 0, sum_ef = 0, sum_eq = 0;
  std::vector<double> ef, eq;
  std::size_t count = 0;
  for (const auto& z : t.z) {
    m.float_net.forward(z, yf, fs);
    m.int8_net.forward(z, yq, qs, Int8Kernel::scalar);
    for (std::size_t k = 0; k < yf.size(); ++k) {
      const double e = std::abs(static_cast<double>(yf[k]) - yq[k]);
      sum_abs += e;
      max_abs = std::max(max_abs, e);
      ++count;
    }
    ef.push_back(mean_squared_error(z, yf));
    eq.push_back(mean_squared_error(z, yq));
    sum_ef += ef.back();
    sum_eq += eq.back();
  }
  const double step = out_range / 255.0;  // one int8 step of the output layer
  std::printf("int8 vs float output: mean |diff| %.3f steps, max %.3f steps; error ratio %.4f\n",
              sum_abs / static_cast<double>(count) / step, max_abs / step, sum_eq / sum_ef);
  // Each of the 4 layers rounds once to 1/255 of its range; the errors add up to a few output
  // steps on average and stay within ~10 steps at worst.
  EXPECT_LT(sum_abs / static_cast<double>(count), 1.5 * step) << "output range " << out_range;
  EXPECT_LT(max_abs, 8.0 * step) << "output range " << out_range;
  // Reconstruction errors (what scores are made of) agree closely on average.
  EXPECT_NEAR(sum_eq / sum_ef, 1.0, 0.15);
  double ma = 0, mb = 0;
  for (std::size_t i = 0; i < ef.size(); ++i) { ma += ef[i]; mb += eq[i]; }
  ma /= static_cast<double>(ef.size());
  mb /= static_cast<double>(eq.size());
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < ef.size(); ++i) {
    sab += (ef[i] - ma) * (eq[i] - mb);
    saa += (ef[i] - ma) * (ef[i] - ma);
    sbb += (eq[i] - mb) * (eq[i] - mb);
  }
  EXPECT_GT(sab / std::sqrt(saa * sbb), 0.9);
  // The thresholds learned from the two paths are close too.
  EXPECT_NEAR(m.threshold_int8 / m.threshold_float, 1.0, 0.25);
}

TEST(QuantizedAccuracy, QuantizeMatchesDocumentedScheme) {
  const auto& t = trained({32, 8, 32});
  const auto& fl = t.model.float_net.layers();
  const auto& ql = t.model.int8_net.layers();
  ASSERT_EQ(fl.size(), ql.size());
  for (std::size_t l = 0; l < fl.size(); ++l) {
    const auto& F = fl[l];
    const auto& Q = ql[l];
    EXPECT_EQ(Q.in, F.in);
    EXPECT_EQ(Q.out, F.out);
    EXPECT_EQ(Q.in_padded % 32, 0u);
    EXPECT_EQ(Q.activation, F.activation);
    // Activation range covers the float clamp range: [lo, hi] maps onto [−128, 127].
    const float lo = F.activation == Activation::relu ? 0.f : F.out_lo, hi = F.out_hi;
    EXPECT_NEAR(Q.output.scale, (hi - std::min(lo, 0.f)) / 255.f, 1e-6f * hi);
    EXPECT_NEAR(Q.output.scale * static_cast<float>(-128 - Q.output.zero_point), std::min(lo, 0.f),
                Q.output.scale);
    if (l > 0) {
      EXPECT_EQ(Q.input.scale, ql[l - 1].output.scale);
      EXPECT_EQ(Q.input.zero_point, ql[l - 1].output.zero_point);
    }
    for (std::size_t j = 0; j < Q.out; ++j) {
      // Symmetric per-channel weights: the largest |w| maps to ±127, each weight within half a step.
      float mx = 0;
      for (std::size_t i = 0; i < Q.in; ++i) mx = std::max(mx, std::abs(F.weights[j * F.in + i]));
      EXPECT_FLOAT_EQ(Q.weight_scale[j], mx / 127.f);
      int qmax = 0;
      for (std::size_t i = 0; i < Q.in; ++i) {
        const int q = Q.weights[j * Q.in_padded + i];
        qmax = std::max(qmax, std::abs(q));
        EXPECT_LE(std::abs(static_cast<float>(q) * Q.weight_scale[j] - F.weights[j * F.in + i]), 0.5001f * Q.weight_scale[j]);
      }
      EXPECT_EQ(qmax, 127);
      for (std::size_t i = Q.in; i < Q.in_padded; ++i) EXPECT_EQ(Q.weights[j * Q.in_padded + i], 0);
      // Multiplier in [2^30, 2^31) with M = s_in·s_w/s_out.
      EXPECT_GE(Q.multiplier[j], 1 << 30);
      const double M = static_cast<double>(Q.input.scale) * Q.weight_scale[j] / Q.output.scale;
      EXPECT_NEAR(std::ldexp(static_cast<double>(Q.multiplier[j]), -(31 + Q.shift[j])), M, M * 1e-9);
      // bias at scale s_in·s_w, bias_eff folds the input zero point in.
      const double s_acc = static_cast<double>(Q.input.scale) * Q.weight_scale[j];
      EXPECT_NEAR(Q.bias[j] * s_acc, F.bias[j], 0.5 * s_acc + 1e-6);
      std::int64_t wsum = 0;
      for (std::size_t i = 0; i < Q.in; ++i) wsum += Q.weights[j * Q.in_padded + i];
      EXPECT_EQ(Q.bias_eff[j], Q.bias[j] - Q.input.zero_point * wsum);
    }
  }
}

TEST(QuantizedAccuracy, QuantizeRejectsUncalibratedNetwork) {
  const auto& t = trained({32, 8, 32});
  FloatNetwork raw(t.model.float_net.layers());  // copies clamps, but input range is ±inf
  EXPECT_THROW(quantize(raw), std::invalid_argument);
  std::vector<DenseLayer> layers = t.model.float_net.layers();
  layers[1].out_hi = std::numeric_limits<float>::infinity();
  FloatNetwork half(layers);
  half.set_input_range(-3, 3);
  try {
    quantize(half);
    ADD_FAILURE() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("calibrated"), std::string::npos) << e.what();
  }
}

// Regression: with many optimizer steps dead ReLU units end with denormal incoming weights
// (max|w| ≈ 1e-34 … 1e-41). quantize() used to give such a row the scale max|w|/127, whose
// requantization multiplier needs shift > 31, and the constructor threw "int8 layer 0:
// requantization parameters out of range" after training had finished. Negligible rows are now
// zero rows with a nominal scale; the network quantizes and runs, and agrees with the float path.
TEST(QuantizedAccuracy, DenormalWeightRowsQuantizeAsZeroRows) {
  const std::size_t d = 12, h = 6;
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  std::vector<DenseLayer> layers(2);
  layers[0] = {d, h, std::vector<float>(d * h), std::vector<float>(h), Activation::relu};
  layers[1] = {h, d, std::vector<float>(h * d), std::vector<float>(d), Activation::linear};
  for (auto& L : layers) {
    for (auto& w : L.weights) w = u(rng);
    for (auto& b : L.bias) b = 0.1f * u(rng);
  }
  const float denormal = std::numeric_limits<float>::denorm_min() * 1000;  // ≈ 1.4e-42
  ASSERT_LT(denormal, std::numeric_limits<float>::min());
  for (std::size_t i = 0; i < d; ++i) {
    layers[0].weights[1 * d + i] = (i % 2 ? -1 : 1) * denormal * static_cast<float>(i + 1);  // row 1: denormal
    layers[0].weights[3 * d + i] = 1e-20f * static_cast<float>(i);                            // row 3: tiny
    layers[0].weights[4 * d + i] = 0.f;                                                       // row 4: exactly zero
  }
  layers[0].bias[1] = 0.25f;  // a live bias on the dead-weight row: its output is the bias alone
  for (std::size_t j = 0; j < d; ++j) layers[1].weights[j * h + 5] = -denormal;  // a denormal column too
  FloatNetwork net(layers);
  std::vector<std::vector<float>> rows(300, std::vector<float>(d));
  for (auto& r : rows)
    for (auto& x : r) x = 4 * u(rng);
  net.calibrate(rows, 0.1f);

  QuantizedNetwork q;
  ASSERT_NO_THROW(q = quantize(net));
  const auto& L0 = q.layers()[0];
  for (std::size_t j : {std::size_t{1}, std::size_t{3}, std::size_t{4}}) {
    for (std::size_t i = 0; i < L0.in_padded; ++i) EXPECT_EQ(L0.weights[j * L0.in_padded + i], 0) << "row " << j;
    EXPECT_GT(L0.weight_scale[j], 0.f);
    EXPECT_GE(L0.multiplier[j], 1 << 30);
    EXPECT_GE(L0.shift[j], -30);
    EXPECT_LE(L0.shift[j], 31);
  }
  // The live rows are quantized as documented (largest |w| → ±127).
  for (std::size_t j : {std::size_t{0}, std::size_t{2}, std::size_t{5}}) {
    int qmax = 0;
    for (std::size_t i = 0; i < L0.in; ++i) qmax = std::max(qmax, std::abs(static_cast<int>(L0.weights[j * L0.in_padded + i])));
    EXPECT_EQ(qmax, 127) << "row " << j;
  }

  std::vector<std::int8_t> s(q.scratch_size());
  std::vector<float> yf(d), ys(d), yv(d), fs(2 * net.max_width());
  const float step = (net.layers().back().out_hi - net.layers().back().out_lo) / 255.f;
  double max_diff = 0;
  for (const auto& z : rows) {
    net.forward(z, yf, fs);
    q.forward(z, ys, s, Int8Kernel::scalar);
    const auto want = forward_reference(q, z);
    for (std::size_t k = 0; k < d; ++k) {
      EXPECT_EQ(ys[k], want[k]);
      max_diff = std::max(max_diff, std::abs(static_cast<double>(ys[k]) - yf[k]));
    }
    if (QuantizedNetwork::avx2_available()) {
      q.forward(z, yv, s, Int8Kernel::avx2);
      for (std::size_t k = 0; k < d; ++k) EXPECT_EQ(std::bit_cast<std::uint32_t>(ys[k]), std::bit_cast<std::uint32_t>(yv[k]));
    }
  }
  EXPECT_LT(max_diff, 4.0 * step);
}

// The AVX2 kernel accumulates in int32 lanes when every |dot + bias_eff| provably fits, and
// otherwise adds bias_eff in 64 bits per lane. Both must match the scalar kernel and the
// reference: here one layer has biases near the int32 limits (64-bit path), the others do not.
TEST(QuantizedKernels, WideBiasLayerMatchesReference) {
  auto net_layers = random_network(23, {37, 20, 9, 37}).layers();
  std::mt19937_64 rng(8);
  for (std::size_t j = 0; j < net_layers[1].out; ++j)
    net_layers[1].bias[j] = (j % 2 ? 1 : -1) * (std::numeric_limits<std::int32_t>::max() - static_cast<std::int32_t>(rng() % 3000000));
  net_layers[1].bias[0] = std::numeric_limits<std::int32_t>::max();  // |bias| + 128·Σ|w| > 2^31 − 1
  net_layers[1].bias[1] = std::numeric_limits<std::int32_t>::min();
  for (std::size_t j = 0; j < net_layers[1].out; ++j) net_layers[1].shift[j] = 22 + static_cast<std::int32_t>(j % 9);
  const QuantizedNetwork net(net_layers);
  std::vector<std::int8_t> s(net.scratch_size());
  std::vector<float> ys(net.output_size()), yv(net.output_size());
  std::normal_distribution<float> g(0.f, 3.f);
  std::size_t bad_ref = 0, bad_avx = 0;
  for (int n = 0; n < 2000; ++n) {
    std::vector<float> z(net.input_size());
    for (auto& x : z) x = g(rng);
    net.forward(z, ys, s, Int8Kernel::scalar);
    const auto want = forward_reference(net, z);
    for (std::size_t k = 0; k < ys.size(); ++k) bad_ref += ys[k] != want[k];
    if (QuantizedNetwork::avx2_available()) {
      net.forward(z, yv, s, Int8Kernel::avx2);
      for (std::size_t k = 0; k < ys.size(); ++k) bad_avx += std::bit_cast<std::uint32_t>(ys[k]) != std::bit_cast<std::uint32_t>(yv[k]);
    }
  }
  EXPECT_EQ(bad_ref, 0u);
  EXPECT_EQ(bad_avx, 0u);
}

TEST(QuantizedKernels, ForwardRejectsTooSmallScratch) {
  const auto net = random_network(3, {10, 4, 10});
  std::vector<float> z(10, 0.f), y(10);
  std::vector<std::int8_t> s(net.scratch_size() - 1);
  EXPECT_THROW(net.forward(z, y, s), std::invalid_argument);
}

// The training time is bounded by a budget of sample passes (large data sets run fewer epochs,
// small ones still max_epochs); this is what lets one hour of data train in seconds and also
// keeps dead units from being pushed to denormal weights for hundreds of epochs.
TEST(TrainingBudget, LimitsEpochsByTrainingSamplePasses) {
  const auto rows = synthetic_rows(400, 20, 11);  // 320 training rows, 80 validation rows
  TrainOptions opt;
  opt.patience = 1000;  // only the limits stop training here
  opt.sample_budget = 5 * 320 - 10;  // ceil(1590 / 320) = 5 epochs
  const auto a = train_autoencoder(rows, opt);
  EXPECT_EQ(a.stats.train_count, 320u);
  EXPECT_EQ(a.stats.epoch_limit, 5u);
  EXPECT_EQ(a.stats.epochs, 5u);
  opt.sample_budget = 0;  // no budget: max_epochs
  opt.max_epochs = 7;
  const auto b = train_autoencoder(rows, opt);
  EXPECT_EQ(b.stats.epoch_limit, 7u);
  EXPECT_EQ(b.stats.epochs, 7u);
  opt.sample_budget = 1;  // at least one epoch
  EXPECT_EQ(train_autoencoder(rows, opt).stats.epochs, 1u);
  // The default budget leaves small data sets at max_epochs.
  EXPECT_EQ(train_autoencoder(rows, TrainOptions{}).stats.epoch_limit, TrainOptions{}.max_epochs);
  // Deterministic: the same seed gives the same weights and losses.
  opt.sample_budget = 0;
  const auto c = train_autoencoder(rows, opt);
  EXPECT_EQ(c.network.layers()[0].weights, b.network.layers()[0].weights);
  EXPECT_EQ(c.stats.validation_loss, b.stats.validation_loss);
}

// ---------------------------------------------------------------------------------------------
// Constructor validation.

QuantLayer valid_layer(std::size_t in, std::size_t out) {
  QuantLayer L;
  L.in = in;
  L.out = out;
  L.in_padded = (in + 31) / 32 * 32;
  L.weights.assign(out * L.in_padded, 0);
  for (std::size_t j = 0; j < out; ++j)
    for (std::size_t i = 0; i < in; ++i) L.weights[j * L.in_padded + i] = static_cast<std::int8_t>(static_cast<int>((i + j) % 7) - 3);
  L.weight_scale.assign(out, 0.01f);
  L.bias.assign(out, 5);
  L.multiplier.assign(out, 1 << 30);
  L.shift.assign(out, 4);
  L.input = {0.1f, -3};
  L.output = {0.2f, 10};
  return L;
}

void expect_rejected(std::vector<QuantLayer> layers, const std::string& what) {
  try {
    QuantizedNetwork net(std::move(layers));
    ADD_FAILURE() << "accepted a network with " << what;
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << "message: " << e.what();
  }
}

TEST(QuantizedNetworkCtor, AcceptsValidAndDerivesBiasEff) {
  auto a = valid_layer(10, 40), b = valid_layer(40, 10);
  b.input = a.output;
  QuantizedNetwork net({a, b});
  EXPECT_EQ(net.input_size(), 10u);
  EXPECT_EQ(net.output_size(), 10u);
  EXPECT_GE(net.scratch_size(), 2u * 64u);
  const auto& L = net.layers()[0];
  for (std::size_t j = 0; j < L.out; ++j) {
    std::int64_t wsum = 0;
    for (std::size_t i = 0; i < L.in; ++i) wsum += L.weights[j * L.in_padded + i];
    EXPECT_EQ(L.bias_eff[j], 5 + 3 * wsum);  // bias − (−3)·Σw
  }
}

TEST(QuantizedNetworkCtor, RejectsBadDimensions) {
  auto L = valid_layer(10, 4);
  L.in = 0;
  expect_rejected({L}, "int8 layer 0: bad dimensions");
  L = valid_layer(10, 4);
  L.out = 0;
  expect_rejected({L}, "int8 layer 0: bad dimensions");
  L = valid_layer(10, 4);
  L.in_padded = 16;  // not a multiple of 32
  expect_rejected({L}, "int8 layer 0: bad dimensions");
  L = valid_layer(10, 4);
  L.in_padded = 64;  // a multiple of 32 but not the padded size of 10
  expect_rejected({L}, "int8 layer 0: bad dimensions");
  L = valid_layer(4097, 4);  // wider than kMaxLayerInput: accumulators could reach 2^32
  expect_rejected({L}, "int8 layer 0: bad dimensions");
  EXPECT_NO_THROW(QuantizedNetwork({valid_layer(4096, 4)}));
}

TEST(QuantizedNetworkCtor, RejectsArraySizeMismatches) {
  const std::string msg = "int8 layer 0: array sizes do not match its dimensions";
  auto L = valid_layer(10, 4);
  L.weights.pop_back();
  expect_rejected({L}, msg);
  L = valid_layer(10, 4);
  L.bias.push_back(0);
  expect_rejected({L}, msg);
  L = valid_layer(10, 4);
  L.multiplier.pop_back();
  expect_rejected({L}, msg);
  L = valid_layer(10, 4);
  L.shift.pop_back();
  expect_rejected({L}, msg);
  L = valid_layer(10, 4);
  L.weight_scale.clear();
  expect_rejected({L}, msg);
  auto a = valid_layer(10, 8), b = valid_layer(9, 10);
  expect_rejected({a, b}, "int8 layer 1: input size mismatch");
}

TEST(QuantizedNetworkCtor, RejectsNonZeroPadding) {
  auto L = valid_layer(10, 4);
  L.weights[2 * L.in_padded + 10] = 1;  // first padding byte of row 2
  expect_rejected({L}, "int8 layer 0: padding not zero");
  L = valid_layer(10, 4);
  L.weights[3 * L.in_padded + 31] = -1;  // last padding byte of the last row
  expect_rejected({L}, "int8 layer 0: padding not zero");
  auto a = valid_layer(10, 40), b = valid_layer(40, 10);
  b.weights[5 * b.in_padded + 63] = 7;
  expect_rejected({a, b}, "int8 layer 1: padding not zero");
}

TEST(QuantizedNetworkCtor, RejectsOutOfRangeParameters) {
  const std::string rq = "int8 layer 0: requantization parameters out of range";
  auto L = valid_layer(10, 4);
  L.shift[1] = -31;
  expect_rejected({L}, rq);
  L = valid_layer(10, 4);
  L.shift[1] = 32;
  expect_rejected({L}, rq);
  L = valid_layer(10, 4);
  L.multiplier[0] = -1;
  expect_rejected({L}, rq);
  const std::string act = "int8 layer 0: activation quantization parameters out of range";
  L = valid_layer(10, 4);
  L.input.scale = 0.f;
  expect_rejected({L}, act);
  L = valid_layer(10, 4);
  L.output.scale = -0.5f;
  expect_rejected({L}, act);
  L = valid_layer(10, 4);
  L.output.scale = std::numeric_limits<float>::quiet_NaN();
  expect_rejected({L}, act);
  L = valid_layer(10, 4);
  L.input.zero_point = 128;
  expect_rejected({L}, act);
  L = valid_layer(10, 4);
  L.output.zero_point = -129;
  expect_rejected({L}, act);
  // The edges themselves are fine.
  L = valid_layer(10, 4);
  L.shift = {-30, 31, 0, 5};
  L.input.zero_point = -128;
  L.output.zero_point = 127;
  EXPECT_NO_THROW({
    QuantizedNetwork ok({L});
    EXPECT_EQ(ok.layers()[0].shift[1], 31);
  });
}

}  // namespace
}  // namespace vibgate::analytics
