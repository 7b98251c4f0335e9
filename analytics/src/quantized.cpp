// quantized.cpp — int8 quantization of the autoencoder and its integer inference kernels.
#include "vibgate/analytics/quantized.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define VIBGATE_HAVE_X86 1
#endif

namespace vibgate::analytics {
namespace {

std::size_t pad32(std::size_t n) { return (n + 31) / 32 * 32; }

// Asymmetric int8 parameters covering [lo, hi] (always including 0).
QuantParams asymmetric(float lo, float hi) {
  lo = std::min(lo, 0.f);
  hi = std::max(hi, 0.f);
  if (hi - lo < 1e-6f) hi = lo + 1e-6f;
  QuantParams p;
  p.scale = (hi - lo) / 255.f;
  const float zp = -128.f - lo / p.scale;
  p.zero_point = static_cast<std::int32_t>(std::clamp(std::round(zp), -128.f, 127.f));
  return p;
}

// M (positive real) → (multiplier in [2^30, 2^31), shift) with M ≈ multiplier·2^−(31+shift).
void quantize_multiplier(double m, std::int32_t& mult, std::int32_t& shift) {
  if (m <= 0) { mult = 0; shift = 0; return; }
  int exp = 0;
  const double frac = std::frexp(m, &exp);  // m = frac·2^exp, frac in [0.5, 1)
  auto q = static_cast<std::int64_t>(std::llround(frac * (1LL << 31)));
  if (q == (1LL << 31)) { q /= 2; ++exp; }
  mult = static_cast<std::int32_t>(q);
  shift = -exp;
}

std::int32_t dot_scalar(const std::int8_t* a, const std::int8_t* w, std::size_t n) {
  std::int32_t acc = 0;
  for (std::size_t i = 0; i < n; ++i) acc += static_cast<std::int32_t>(a[i]) * w[i];
  return acc;
}

#ifdef VIBGATE_HAVE_X86
__attribute__((target("avx2"))) std::int32_t dot_avx2(const std::int8_t* a, const std::int8_t* w,
                                                       std::size_t n) {
  __m256i acc = _mm256_setzero_si256();
  for (std::size_t i = 0; i < n; i += 32) {
    const __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i));
    const __m256i vw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i));
    const __m256i a_lo = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(va));
    const __m256i a_hi = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(va, 1));
    const __m256i w_lo = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(vw));
    const __m256i w_hi = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(vw, 1));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(a_lo, w_lo));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(a_hi, w_hi));
  }
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}
#endif

}  // namespace

std::int32_t requantize(std::int64_t acc, std::int32_t multiplier, std::int32_t shift) {
  // 128-bit product: acc (< 2^33 in magnitude) × multiplier (< 2^31) cannot overflow.
  __extension__ using i128 = __int128;
  const i128 prod = static_cast<i128>(acc) * multiplier;
  const int total = 31 + shift;  // shift >= -30 (validated), so total >= 1
  const i128 half = i128{1} << (total - 1);
  const i128 r = prod >= 0 ? (prod + half) >> total : -((-prod + half) >> total);
  constexpr i128 lo = std::numeric_limits<std::int32_t>::min(), hi = std::numeric_limits<std::int32_t>::max();
  return static_cast<std::int32_t>(r < lo ? lo : r > hi ? hi : r);
}

bool QuantizedNetwork::avx2_available() {
#ifdef VIBGATE_HAVE_X86
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
#else
  return false;
#endif
}

QuantizedNetwork::QuantizedNetwork(std::vector<QuantLayer> layers) : layers_(std::move(layers)) {
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    auto& L = layers_[l];
    const std::string where = "int8 layer " + std::to_string(l) + ": ";
    if (L.in == 0 || L.out == 0 || L.in_padded != pad32(L.in))
      throw std::invalid_argument(where + "bad dimensions");
    if (L.weights.size() != L.out * L.in_padded || L.bias.size() != L.out ||
        L.multiplier.size() != L.out || L.shift.size() != L.out || L.weight_scale.size() != L.out)
      throw std::invalid_argument(where + "array sizes do not match its dimensions");
    if (l > 0 && layers_[l - 1].out != L.in) throw std::invalid_argument(where + "input size mismatch");
    for (std::size_t j = 0; j < L.out; ++j) {
      if (L.shift[j] < -30 || L.shift[j] > 31 || L.multiplier[j] < 0)
        throw std::invalid_argument(where + "requantization parameters out of range");
      for (std::size_t i = L.in; i < L.in_padded; ++i)
        if (L.weights[j * L.in_padded + i] != 0) throw std::invalid_argument(where + "padding not zero");
    }
    if (!(L.input.scale > 0) || !(L.output.scale > 0) || L.input.zero_point < -128 ||
        L.input.zero_point > 127 || L.output.zero_point < -128 || L.output.zero_point > 127)
      throw std::invalid_argument(where + "activation quantization parameters out of range");
    L.bias_eff.resize(L.out);
    for (std::size_t j = 0; j < L.out; ++j) {
      std::int64_t wsum = 0;
      for (std::size_t i = 0; i < L.in; ++i) wsum += L.weights[j * L.in_padded + i];
      L.bias_eff[j] = L.bias[j] - L.input.zero_point * wsum;
    }
  }
}

std::size_t QuantizedNetwork::scratch_size() const {
  std::size_t w = 0;
  for (const auto& L : layers_) w = std::max({w, L.in_padded, pad32(L.out)});
  return 2 * w;
}

void QuantizedNetwork::forward(std::span<const float> z, std::span<float> y,
                               std::span<std::int8_t> scratch, Int8Kernel kernel) const {
  const std::size_t w = scratch.size() / 2;
  std::int8_t* a = scratch.data();
  std::int8_t* b = scratch.data() + w;
  std::fill(scratch.begin(), scratch.end(), std::int8_t{0});
  const auto& first = layers_.front();
  const float inv = 1.f / first.input.scale;
  for (std::size_t i = 0; i < first.in; ++i) {
    const float q = std::round(z[i] * inv) + static_cast<float>(first.input.zero_point);
    a[i] = static_cast<std::int8_t>(std::clamp(q, -128.f, 127.f));
  }
  bool simd = kernel == Int8Kernel::avx2 || (kernel == Int8Kernel::automatic && avx2_available());
#ifndef VIBGATE_HAVE_X86
  simd = false;
#endif
  for (const auto& L : layers_) {
    const std::int32_t lo = L.relu ? L.output.zero_point : -128;
    for (std::size_t j = 0; j < L.out; ++j) {
      const std::int8_t* row = &L.weights[j * L.in_padded];
#ifdef VIBGATE_HAVE_X86
      const std::int32_t dot = simd ? dot_avx2(a, row, L.in_padded) : dot_scalar(a, row, L.in);
#else
      const std::int32_t dot = dot_scalar(a, row, L.in);
#endif
      // 64-bit sums: saturate, never wrap, whatever parameters a model file holds.
      const std::int64_t acc = std::int64_t{dot} + L.bias_eff[j];
      const std::int64_t q = std::int64_t{requantize(acc, L.multiplier[j], L.shift[j])} + L.output.zero_point;
      b[j] = static_cast<std::int8_t>(std::clamp<std::int64_t>(q, lo, 127));
    }
    std::fill(b + L.out, b + w, std::int8_t{0});
    std::swap(a, b);
  }
  const auto& last = layers_.back();
  for (std::size_t k = 0; k < last.out; ++k)
    y[k] = last.output.scale * static_cast<float>(a[k] - last.output.zero_point);
}

QuantizedNetwork quantize(const FloatNetwork& net) {
  const auto& fl = net.layers();
  if (!std::isfinite(net.input_lo()) || !std::isfinite(net.input_hi()))
    throw std::invalid_argument("quantization needs a calibrated float network");
  std::vector<float> lo(fl.size() + 1), hi(fl.size() + 1);
  lo[0] = net.input_lo();
  hi[0] = net.input_hi();
  for (std::size_t l = 0; l < fl.size(); ++l) {
    if (!std::isfinite(fl[l].out_lo) || !std::isfinite(fl[l].out_hi))
      throw std::invalid_argument("quantization needs a calibrated float network");
    lo[l + 1] = fl[l].out_lo;
    hi[l + 1] = fl[l].out_hi;
  }
  std::vector<QuantLayer> out(fl.size());
  for (std::size_t l = 0; l < fl.size(); ++l) {
    const auto& F = fl[l];
    auto& Q = out[l];
    Q.in = F.in;
    Q.out = F.out;
    Q.in_padded = pad32(F.in);
    Q.relu = F.relu;
    Q.input = asymmetric(lo[l], hi[l]);
    Q.output = asymmetric(lo[l + 1], hi[l + 1]);
    Q.weights.assign(Q.out * Q.in_padded, 0);
    Q.weight_scale.resize(Q.out);
    Q.bias.resize(Q.out);
    Q.multiplier.resize(Q.out);
    Q.shift.resize(Q.out);
    for (std::size_t j = 0; j < F.out; ++j) {
      float m = 0;
      for (std::size_t i = 0; i < F.in; ++i) m = std::max(m, std::abs(F.weights[j * F.in + i]));
      const float s = m > 0 ? m / 127.f : 1.f;
      Q.weight_scale[j] = s;
      for (std::size_t i = 0; i < F.in; ++i)
        Q.weights[j * Q.in_padded + i] =
            static_cast<std::int8_t>(std::clamp(std::round(F.weights[j * F.in + i] / s), -127.f, 127.f));
      const double acc_scale = static_cast<double>(Q.input.scale) * s;
      Q.bias[j] = static_cast<std::int32_t>(std::llround(F.bias[j] / acc_scale));
      quantize_multiplier(acc_scale / Q.output.scale, Q.multiplier[j], Q.shift[j]);
    }
  }
  return QuantizedNetwork(std::move(out));
}

}  // namespace vibgate::analytics
