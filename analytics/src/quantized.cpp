// quantized.cpp — int8 quantization of the autoencoder and its integer inference kernels.
//
// Both kernels compute the same exact function of the input, so they are bit-identical:
//   input  q = clamp(rnd(clamp(z / s_in, ±2^20)) + zp_in, −128, 127), rnd = round half away from
//          zero, computed as trunc plus a correction (exact for |v| ≤ 2^20; beyond that every
//          value saturates anyway, and NaN maps to +2^20 in both kernels);
//   layer  acc = Σ a·w + bias_eff (exact; |acc| < 2^32 because inputs are ≤ 4096 wide),
//          out = clamp(±((|acc|·multiplier + 2^(total−1)) >> total) + zp_out, lo, 127) with
//          total = 31 + shift: round(acc·M) half away from zero in unsigned 64-bit arithmetic
//          (|acc|·multiplier < 2^63). The magnitude is capped at 2^16 before the sign is applied,
//          which cannot change the clamped result (|zp_out| ≤ 128).
//   LUT    tanh/sigmoid layers requantize to the pre-activation zero point instead (lo = −128)
//          and then replace every value q by lut[q + 128]; the AVX2 kernel does this in a scalar
//          pass after the layer (and dequantizes a LUT output layer in scalar code, with the same
//          single-precision multiply as the vector path).
// The scalar kernel does this one output at a time on the row-major weights. The AVX2 kernel uses
// the interleaved layout (quantized.hpp, PackedLayer): 8 outputs per _mm256_madd_epi16, the
// requantization of 8 outputs per instruction sequence (_mm256_mul_epu32 on even and odd lanes,
// _mm256_srlv_epi64), int16 activations between layers.
#include "vibgate/analytics/quantized.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define VIBGATE_HAVE_X86 1
#endif

namespace vibgate::analytics {
namespace {

std::size_t pad32(std::size_t n) { return (n + 31) / 32 * 32; }
std::size_t pad8(std::size_t n) { return (n + 7) / 8 * 8; }

// Input values beyond ±2^20 steps saturate whatever the zero point, so they are clamped first:
// the truncation to int32 is then exact and the rounding correction needs no special cases.
constexpr float kInputLimit = 1048576.f;
// Requantized magnitudes are capped here before adding the zero point and clamping to int8:
// anything ≥ 256 saturates identically.
constexpr std::uint64_t kMagnitudeCap = 1u << 16;
// A weight row whose largest |w| is below this is treated as all zero (dead ReLU units end with
// denormal weights: their scale would make the requantization multiplier unrepresentable).
constexpr float kNegligibleWeight = 1e-12f;

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

// Real bias → int32 at scale acc_scale, saturated (a bias beyond the int32 range saturates the
// output anyway).
std::int32_t quantize_bias(double bias, double acc_scale) {
  const double b = std::clamp(bias / acc_scale, -2147483648.0, 2147483647.0);
  return static_cast<std::int32_t>(std::llround(b));
}

// The input quantization both kernels implement (the AVX2 kernel lane by lane).
inline std::int32_t quantize_input(float z, float scale, std::int32_t zp) {
  float v = z / scale;
  v = v < kInputLimit ? v : kInputLimit;    // = minps(v, limit), NaN → limit
  v = v > -kInputLimit ? v : -kInputLimit;  // = maxps(v, −limit)
  auto t = static_cast<std::int32_t>(v);
  const float f = v - static_cast<float>(t);  // exact
  t += static_cast<std::int32_t>(f >= 0.5f) - static_cast<std::int32_t>(f <= -0.5f);
  return std::clamp(t + zp, -128, 127);
}

// Requantization of one exact accumulator (|acc| < 2^32) to the clamped int8 output value.
inline std::int32_t requantize_clamp(std::int64_t acc, std::uint32_t multiplier, int total,
                                     std::int32_t zp, std::int32_t lo) {
  const std::uint64_t mag = acc < 0 ? 0 - static_cast<std::uint64_t>(acc) : static_cast<std::uint64_t>(acc);
  std::uint64_t u = (mag * multiplier + (std::uint64_t{1} << (total - 1))) >> total;
  u = std::min(u, kMagnitudeCap);
  const auto r = static_cast<std::int32_t>(u);
  return std::clamp((acc < 0 ? -r : r) + zp, lo, 127);
}

}  // namespace

std::vector<std::int8_t> activation_lut(Activation a, QuantParams pre, QuantParams out) {
  if (!uses_lut(a))
    throw std::invalid_argument(std::string("no lookup table for activation ") + to_string(a));
  std::vector<std::int8_t> t(256);
  for (int q = -128; q <= 127; ++q) {
    const double x = static_cast<double>(pre.scale) * (q - pre.zero_point);
    const double y = a == Activation::tanh ? std::tanh(x) : 1.0 / (1.0 + std::exp(-x));
    const double v = std::round(y / static_cast<double>(out.scale)) + out.zero_point;  // half away
    t[static_cast<std::size_t>(q + 128)] = static_cast<std::int8_t>(std::clamp(v, -128.0, 127.0));
  }
  return t;
}

std::int32_t requantize(std::int64_t acc, std::int32_t multiplier, std::int32_t shift) {
  const int total = 31 + shift;  // shift in [−30, 31]: total in [1, 62]
  constexpr std::int64_t lo = std::numeric_limits<std::int32_t>::min(), hi = std::numeric_limits<std::int32_t>::max();
  const std::uint64_t mag = acc < 0 ? 0 - static_cast<std::uint64_t>(acc) : static_cast<std::uint64_t>(acc);
  if (mag < (std::uint64_t{1} << 32) && multiplier >= 0) {
    // |acc|·multiplier < 2^63 and the rounding half < 2^62: no overflow in 64 unsigned bits.
    const std::uint64_t u =
        (mag * static_cast<std::uint64_t>(multiplier) + (std::uint64_t{1} << (total - 1))) >> total;
    if (acc >= 0) return static_cast<std::int32_t>(std::min<std::uint64_t>(u, hi));
    return u > std::uint64_t{1} << 31 ? static_cast<std::int32_t>(lo) : static_cast<std::int32_t>(-static_cast<std::int64_t>(u));
  }
  __extension__ using i128 = __int128;  // general case (forward() never needs it)
  const i128 prod = static_cast<i128>(acc) * multiplier;
  const i128 half = i128{1} << (total - 1);
  const i128 r = prod >= 0 ? (prod + half) >> total : -((-prod + half) >> total);
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
  packed_.resize(layers_.size());
  width_ = 0;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    auto& L = layers_[l];
    const std::string where = "int8 layer " + std::to_string(l) + ": ";
    if (L.in == 0 || L.out == 0 || L.in > kMaxLayerInput || L.in_padded != pad32(L.in))
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
    if (uses_lut(L.activation)) {
      if (!(L.pre.scale > 0) || !std::isfinite(L.pre.scale) || L.pre.zero_point < -128 ||
          L.pre.zero_point > 127)
        throw std::invalid_argument(where + "pre-activation quantization parameters out of range");
      if (L.lut.size() != 256)
        throw std::invalid_argument(where + "lookup table must have 256 entries");
    } else if (!L.lut.empty()) {
      throw std::invalid_argument(where + "lookup table on a " + to_string(L.activation) +
                                  " layer");
    }

    // |bias| ≤ 2^31, |zp_in·Σw| ≤ 2^26, |Σ a·w| ≤ 2^26 (in ≤ 4096): |acc| < 2^32.
    L.bias_eff.resize(L.out);
    auto& P = packed_[l];
    P.pairs = (L.in + 1) / 2;
    P.blocks = (L.out + 7) / 8;
    P.acc32 = true;
    for (std::size_t j = 0; j < L.out; ++j) {
      std::int64_t wsum = 0, wabs = 0;
      for (std::size_t i = 0; i < L.in; ++i) {
        const std::int64_t w = L.weights[j * L.in_padded + i];
        wsum += w;
        wabs += w < 0 ? -w : w;
      }
      L.bias_eff[j] = L.bias[j] - L.input.zero_point * wsum;
      const std::int64_t b = L.bias_eff[j] < 0 ? -L.bias_eff[j] : L.bias_eff[j];
      if (b + 128 * wabs > std::numeric_limits<std::int32_t>::max()) P.acc32 = false;
    }
    const std::size_t rows = 8 * P.blocks;
    P.weights.assign(rows * 2 * P.pairs, 0);
    for (std::size_t g = 0; g < P.blocks; g += 4) {
      const std::size_t nb = std::min<std::size_t>(4, P.blocks - g);
      for (std::size_t k = 0; k < P.pairs; ++k)
        for (std::size_t b = 0; b < nb; ++b)
          for (std::size_t r = 0; r < 8; ++r)
            for (std::size_t t = 0; t < 2; ++t) {
              const std::size_t j = 8 * (g + b) + r, i = 2 * k + t;
              if (j < L.out && i < L.in)
                P.weights[(g * P.pairs + k * nb + b) * 16 + 2 * r + t] = L.weights[j * L.in_padded + i];
            }
    }
    P.bias.assign(rows, 0);
    P.multiplier.assign(rows, 0);
    P.total.assign(rows, 1);
    P.half.assign(rows, 1);
    for (std::size_t j = 0; j < L.out; ++j) {
      if (P.acc32) P.bias[j] = static_cast<std::int32_t>(L.bias_eff[j]);
      P.multiplier[j] = static_cast<std::uint32_t>(L.multiplier[j]);
      const std::size_t r = j % 8, lane = 8 * (j / 8) + (r % 2 == 0 ? r / 2 : 4 + r / 2);
      P.total[lane] = 31 + L.shift[j];
      P.half[lane] = std::int64_t{1} << (30 + L.shift[j]);
    }
    width_ = std::max({width_, pad8(L.in), pad8(L.out)});
  }
}

std::size_t QuantizedNetwork::scratch_size() const {
  return 2 * width_ * sizeof(std::int16_t);  // two activation buffers (int16 in the AVX2 kernel)
}

struct QuantizedNetwork::Kernels {
  static void scalar(const QuantizedNetwork& net, const float* z, float* y, std::int8_t* scratch) {
    std::int8_t* a = scratch;
    std::int8_t* b = scratch + net.width_;
    const auto& first = net.layers_.front();
    for (std::size_t i = 0; i < first.in; ++i)
      a[i] = static_cast<std::int8_t>(quantize_input(z[i], first.input.scale, first.input.zero_point));
    for (const auto& L : net.layers_) {
      const std::int32_t zp = L.requant_zero_point(),
                         lo = L.activation == Activation::relu ? zp : -128;
      const bool lut = uses_lut(L.activation);
      for (std::size_t j = 0; j < L.out; ++j) {
        const std::int8_t* row = &L.weights[j * L.in_padded];
        std::int32_t dot = 0;
        for (std::size_t i = 0; i < L.in; ++i) dot += static_cast<std::int32_t>(a[i]) * row[i];
        const std::int32_t q =
            requantize_clamp(std::int64_t{dot} + L.bias_eff[j],
                             static_cast<std::uint32_t>(L.multiplier[j]), 31 + L.shift[j], zp, lo);
        b[j] = lut ? L.lut[static_cast<std::size_t>(q + 128)] : static_cast<std::int8_t>(q);
      }
      std::swap(a, b);
    }
    const auto& last = net.layers_.back();
    for (std::size_t k = 0; k < last.out; ++k)
      y[k] = last.output.scale * static_cast<float>(a[k] - last.output.zero_point);
  }

#ifdef VIBGATE_HAVE_X86
  // One layer's output block group (NB blocks of 8 outputs) in the AVX2 kernel.
  struct LayerCtx {
    const QuantLayer* L;
    const PackedLayer* P;
    const std::int16_t* in;  // activations, int16, ≥ 2·pairs readable
    std::int16_t* out;       // next activations (nullptr for the last layer)
    float* y;                // dequantized output (last layer only)
  };

  __attribute__((target("avx2"))) static inline __m256i requantize8(const LayerCtx& c, std::size_t blk,
                                                                    __m256i acc) {
    const PackedLayer& P = *c.P;
    const QuantLayer& L = *c.L;
    const std::int32_t zp32 = L.requant_zero_point(),
                       lo32 = L.activation == Activation::relu ? zp32 : -128;
    const __m256i zp = _mm256_set1_epi32(zp32);
    const __m256i lo = _mm256_set1_epi32(lo32);
    if (!P.acc32) {  // rare: bias_eff needs 64 bits; the scalar formula per lane
      alignas(32) std::int32_t t[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(t), acc);
      for (std::size_t r = 0; r < 8; ++r) {
        const std::size_t j = 8 * blk + r;
        t[r] = j < L.out ? requantize_clamp(std::int64_t{t[r]} + L.bias_eff[j], P.multiplier[j],
                                            31 + L.shift[j], zp32, lo32)
                         : 0;
      }
      return _mm256_load_si256(reinterpret_cast<const __m256i*>(t));
    }
    const __m256i mag = _mm256_abs_epi32(acc);  // |INT32_MIN| reads correctly as unsigned
    const __m256i mult = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(&P.multiplier[8 * blk]));
    const auto* tot = reinterpret_cast<const __m256i*>(&P.total[8 * blk]);
    const auto* half = reinterpret_cast<const __m256i*>(&P.half[8 * blk]);
    __m256i pe = _mm256_mul_epu32(mag, mult);  // rows 0,2,4,6: < 2^62
    __m256i po = _mm256_mul_epu32(_mm256_srli_epi64(mag, 32), _mm256_srli_epi64(mult, 32));
    pe = _mm256_srlv_epi64(_mm256_add_epi64(pe, _mm256_loadu_si256(half)), _mm256_loadu_si256(tot));
    po = _mm256_srlv_epi64(_mm256_add_epi64(po, _mm256_loadu_si256(half + 1)), _mm256_loadu_si256(tot + 1));
    const __m256i cap = _mm256_set1_epi64x(static_cast<long long>(kMagnitudeCap));
    pe = _mm256_blendv_epi8(pe, cap, _mm256_cmpgt_epi64(pe, cap));
    po = _mm256_blendv_epi8(po, cap, _mm256_cmpgt_epi64(po, cap));
    __m256i r = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
    r = _mm256_sign_epi32(r, acc);
    r = _mm256_add_epi32(r, zp);
    return _mm256_min_epi32(_mm256_max_epi32(r, lo), _mm256_set1_epi32(127));
  }

  __attribute__((target("avx2"))) static inline void store8(const LayerCtx& c, std::size_t blk, __m256i q) {
    if (c.out != nullptr) {
      const __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi32(q, q), 0x08);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(c.out + 8 * blk), _mm256_castsi256_si128(p));
      return;
    }
    const QuantLayer& L = *c.L;
    const __m256 v = _mm256_mul_ps(_mm256_set1_ps(L.output.scale),
                                   _mm256_cvtepi32_ps(_mm256_sub_epi32(q, _mm256_set1_epi32(L.output.zero_point))));
    const std::size_t j0 = 8 * blk;
    if (j0 + 8 <= L.out) {
      _mm256_storeu_ps(c.y + j0, v);
    } else {
      const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
      const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(L.out - j0)), lane);
      _mm256_maskstore_ps(c.y + j0, mask, v);
    }
  }

  template <int NB>
  __attribute__((target("avx2"))) static inline void group(const LayerCtx& c, std::size_t g) {
    const PackedLayer& P = *c.P;
    __m256i s[NB];
    for (int b = 0; b < NB; ++b)
      s[b] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(&P.bias[8 * (g + b)]));
    const std::int16_t* w = &P.weights[g * P.pairs * 16];
    for (std::size_t k = 0; k < P.pairs; ++k, w += NB * 16) {
      std::int32_t pair;
      std::memcpy(&pair, c.in + 2 * k, sizeof pair);
      const __m256i av = _mm256_set1_epi32(pair);
      for (int b = 0; b < NB; ++b)
        s[b] = _mm256_add_epi32(
            s[b], _mm256_madd_epi16(av, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 16 * b))));
    }
    for (int b = 0; b < NB; ++b) store8(c, g + b, requantize8(c, g + b, s[b]));
  }

  __attribute__((target("avx2"))) static void avx2(const QuantizedNetwork& net, const float* z, float* y,
                                                   std::int8_t* scratch) {
    auto* a = reinterpret_cast<std::int16_t*>(scratch);
    std::int16_t* b = a + net.width_;
    // Input quantization, 8 at a time (the tail is loaded masked; padding lanes get weight 0).
    const auto& first = net.layers_.front();
    const __m256 scale = _mm256_set1_ps(first.input.scale);
    const __m256 limit = _mm256_set1_ps(kInputLimit), nlimit = _mm256_set1_ps(-kInputLimit);
    const __m256 half = _mm256_set1_ps(0.5f), nhalf = _mm256_set1_ps(-0.5f);
    const __m256i zp_in = _mm256_set1_epi32(first.input.zero_point);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (std::size_t i = 0; i < first.in; i += 8) {
      const __m256 zv =
          i + 8 <= first.in
              ? _mm256_loadu_ps(z + i)
              : _mm256_maskload_ps(z + i, _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(first.in - i)), lane));
      __m256 v = _mm256_div_ps(zv, scale);
      v = _mm256_max_ps(_mm256_min_ps(v, limit), nlimit);
      __m256i t = _mm256_cvttps_epi32(v);
      const __m256 f = _mm256_sub_ps(v, _mm256_cvtepi32_ps(t));
      t = _mm256_sub_epi32(t, _mm256_castps_si256(_mm256_cmp_ps(f, half, _CMP_GE_OQ)));
      t = _mm256_add_epi32(t, _mm256_castps_si256(_mm256_cmp_ps(f, nhalf, _CMP_LE_OQ)));
      t = _mm256_add_epi32(t, zp_in);
      t = _mm256_min_epi32(_mm256_max_epi32(t, _mm256_set1_epi32(-128)), _mm256_set1_epi32(127));
      const __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi32(t, t), 0x08);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(a + i), _mm256_castsi256_si128(p));
    }
    const std::size_t n = net.layers_.size();
    for (std::size_t l = 0; l < n; ++l) {
      const QuantLayer& L = net.layers_[l];
      const bool lut = uses_lut(L.activation), last = l + 1 == n;
      // A LUT layer always writes int16 pre-activation values; the table (and, for the output
      // layer, the dequantization) follows in scalar code.
      const LayerCtx c{&L, &net.packed_[l], a, last && !lut ? nullptr : b, y};
      for (std::size_t g = 0; g < c.P->blocks; g += 4) {
        switch (std::min<std::size_t>(4, c.P->blocks - g)) {
          case 4: group<4>(c, g); break;
          case 3: group<3>(c, g); break;
          case 2: group<2>(c, g); break;
          default: group<1>(c, g); break;
        }
      }
      if (lut) {
        for (std::size_t j = 0; j < L.out; ++j) b[j] = L.lut[static_cast<std::size_t>(b[j] + 128)];
        if (last)
          for (std::size_t k = 0; k < L.out; ++k)
            y[k] = L.output.scale * static_cast<float>(b[k] - L.output.zero_point);
      }
      std::swap(a, b);
    }
  }
#endif
};

void QuantizedNetwork::forward(std::span<const float> z, std::span<float> y,
                               std::span<std::int8_t> scratch, Int8Kernel kernel) const {
  if (layers_.empty() || z.size() < input_size() || y.size() < output_size() ||
      scratch.size() < scratch_size())
    throw std::invalid_argument("QuantizedNetwork::forward: empty network or buffers too small");
#ifdef VIBGATE_HAVE_X86
  if (kernel == Int8Kernel::avx2 || (kernel == Int8Kernel::automatic && avx2_available())) {
    Kernels::avx2(*this, z.data(), y.data(), scratch.data());
    return;
  }
#else
  (void)kernel;
#endif
  Kernels::scalar(*this, z.data(), y.data(), scratch.data());
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
    Q.activation = F.activation;
    Q.input = asymmetric(lo[l], hi[l]);
    Q.output = asymmetric(lo[l + 1], hi[l + 1]);
    const bool lut = uses_lut(F.activation);
    if (lut) {
      if (!std::isfinite(F.pre_lo) || !std::isfinite(F.pre_hi))
        throw std::invalid_argument("quantization needs a calibrated float network");
      Q.pre = asymmetric(F.pre_lo, F.pre_hi);
      Q.lut = activation_lut(F.activation, Q.pre, Q.output);
    }
    // The accumulator is requantized to this scale: the pre-activation one for LUT layers.
    const float target = lut ? Q.pre.scale : Q.output.scale;
    Q.weights.assign(Q.out * Q.in_padded, 0);
    Q.weight_scale.resize(Q.out);
    Q.bias.resize(Q.out);
    Q.multiplier.resize(Q.out);
    Q.shift.resize(Q.out);
    for (std::size_t j = 0; j < F.out; ++j) {
      float m = 0;
      for (std::size_t i = 0; i < F.in; ++i) m = std::max(m, std::abs(F.weights[j * F.in + i]));
      float s = m / 127.f;
      bool negligible = !(m >= kNegligibleWeight);
      if (!negligible) {
        quantize_multiplier(static_cast<double>(Q.input.scale) * s / target, Q.multiplier[j],
                            Q.shift[j]);
        // M < 2^−32: even the largest possible dot product (< 2^26) moves the output by < 1/64 step.
        negligible = Q.shift[j] > 31;
      }
      if (negligible) {
        // A zero row: the output is the bias alone. Nominal scale s_out/s_in makes M = 1, so the
        // bias is rounded once, at the output scale.
        s = target / Q.input.scale;
        Q.weight_scale[j] = s;
        const double acc_scale = static_cast<double>(Q.input.scale) * s;
        Q.bias[j] = quantize_bias(F.bias[j], acc_scale);
        quantize_multiplier(acc_scale / target, Q.multiplier[j], Q.shift[j]);
        continue;
      }
      Q.weight_scale[j] = s;
      for (std::size_t i = 0; i < F.in; ++i)
        Q.weights[j * Q.in_padded + i] =
            static_cast<std::int8_t>(std::clamp(std::round(F.weights[j * F.in + i] / s), -127.f, 127.f));
      Q.bias[j] = quantize_bias(F.bias[j], static_cast<double>(Q.input.scale) * s);
    }
  }
  return QuantizedNetwork(std::move(out));
}

}  // namespace vibgate::analytics
