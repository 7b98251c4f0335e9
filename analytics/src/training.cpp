// training.cpp — Adam training of the dense autoencoder with manual backpropagation.
//
// A mini-batch is processed as small matrices with every layer width padded to a multiple of 8:
// the forward pass keeps a transposed weight copy, so each output row is bias + Σ_i x[i]·Wᵀ[i][·]
// (axpy-shaped, 8 outputs per vector operation, accumulated in registers); the weight gradient
// of row j is Σ_s δ[s][j]·a[s][·] over the batch and the back-propagated delta of sample s is
// Σ_j δ[s][j]·W[j][·]. Every element is still computed in the plain scalar order (i, j and s
// ascending, starting from the bias or from 0, no FMA), so the vectorized code gives exactly the
// results of one-sample-at-a-time loops, on any vector width: the AVX2 path (chosen at run time)
// and the baseline path produce identical models. Padding entries stay exactly zero.
#include "vibgate/analytics/training.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define VIBGATE_TRAIN_X86 1
#endif

// The 8-lane helpers below are always inlined; their vector ABI never crosses a call.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

#define VIBGATE_INLINE inline __attribute__((always_inline))

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

std::size_t pad8(std::size_t n) { return (n + 7) / 8 * 8; }

// Float vectors: 4 lanes (SSE2, the baseline path) or 8 lanes (the AVX2 path). The kernels are
// templates over the vector type; chunks are multiples of 8 floats, so both widths fit exactly.
typedef float V4 __attribute__((vector_size(16)));
typedef float V8 __attribute__((vector_size(32)));

template <class V>
VIBGATE_INLINE V loadv(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class V>
VIBGATE_INLINE void storev(float* p, const V& v) { std::memcpy(p, &v, sizeof v); }
template <class V>
VIBGATE_INLINE V splat(float x) { return V{} + x; }
template <class V>
constexpr int kLanes = static_cast<int>(sizeof(V) / sizeof(float));

// One dense layer, padded: in/out widths rounded up to 8 (inp, outp); padding weights are 0.
struct Layer {
  std::size_t in = 0, out = 0, inp = 0, outp = 0;
  bool relu = false;
  std::vector<float> w;   // out × inp, row-major (the master copy Adam updates)
  std::vector<float> wt;  // in × outp, the transpose (forward pass)
  std::vector<float> b;   // outp
  std::vector<float> gw, gb, mw, vw, mb, vb;  // gradients and Adam moments, same shapes as w, b
  std::vector<std::uint8_t> mask;  // pruning: 1 keeps w[k], 0 holds it at exactly 0; empty = dense
  void refresh_transpose() {
    for (std::size_t j = 0; j < out; ++j)
      for (std::size_t i = 0; i < in; ++i) wt[i * outp + j] = w[j * inp + i];
  }
};

// Activations and deltas of one batch: act[l] and delta[l] hold rows × pad8(width_l).
struct Work {
  std::vector<std::vector<float>> act, delta;
};

// ---------------------------------------------------------------- forward

// Outputs [j0, j0 + 8·N8) of one sample: bias + Σ_i x[i]·Wᵀ[i][j], i ascending (the scalar order).
template <class V, int N8>
VIBGATE_INLINE void forward_chunk(const Layer& L, const float* x, float* y, std::size_t j0) {
  constexpr int NV = 8 * N8 / kLanes<V>, W = kLanes<V>;
  V acc[NV];
  for (int v = 0; v < NV; ++v) acc[v] = loadv<V>(&L.b[j0 + W * v]);
  const float* wt = &L.wt[j0];
  for (std::size_t i = 0; i < L.in; ++i, wt += L.outp) {
    const V xi = splat<V>(x[i]);
    for (int v = 0; v < NV; ++v) acc[v] += xi * loadv<V>(wt + W * v);
  }
  for (int v = 0; v < NV; ++v) {
    if (L.relu) acc[v] = acc[v] < V{} ? V{} : acc[v];  // = std::max(acc, 0.f)
    storev(y + j0 + W * v, acc[v]);
  }
}

template <class V>
VIBGATE_INLINE void forward_batch(const std::vector<Layer>& layers, Work& wk, std::size_t rows) {
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const Layer& L = layers[l];
    for (std::size_t s = 0; s < rows; ++s) {
      const float* x = &wk.act[l][s * L.inp];
      float* y = &wk.act[l + 1][s * L.outp];
      std::size_t j = 0;
      for (; j + 32 <= L.outp; j += 32) forward_chunk<V, 4>(L, x, y, j);
      switch ((L.outp - j) / 8) {
        case 3: forward_chunk<V, 3>(L, x, y, j); break;
        case 2: forward_chunk<V, 2>(L, x, y, j); break;
        case 1: forward_chunk<V, 1>(L, x, y, j); break;
        default: break;
      }
    }
  }
}

// ---------------------------------------------------------------- backward

// gw[j][i0 + ·] = Σ_s δ[s][j]·a[s][i0 + ·], s ascending from 0.
template <class V, int N8>
VIBGATE_INLINE void weight_grad_chunk(const float* delta, std::size_t dstride, const float* a,
                                      std::size_t astride, std::size_t rows, float* g) {
  constexpr int NV = 8 * N8 / kLanes<V>, W = kLanes<V>;
  V acc[NV];
  for (int v = 0; v < NV; ++v) acc[v] = V{};
  for (std::size_t s = 0; s < rows; ++s) {
    const V d = splat<V>(delta[s * dstride]);
    for (int v = 0; v < NV; ++v) acc[v] += d * loadv<V>(a + s * astride + W * v);
  }
  for (int v = 0; v < NV; ++v) storev(g + W * v, acc[v]);
}

// back[i0 + ·] = Σ_j δ[j]·W[j][i0 + ·], j ascending from 0 (one sample).
template <class V, int N8>
VIBGATE_INLINE void back_chunk(const Layer& L, const float* delta, float* back, std::size_t i0) {
  constexpr int NV = 8 * N8 / kLanes<V>, W = kLanes<V>;
  V acc[NV];
  for (int v = 0; v < NV; ++v) acc[v] = V{};
  const float* w = &L.w[i0];
  for (std::size_t j = 0; j < L.out; ++j, w += L.inp) {
    const V d = splat<V>(delta[j]);
    for (int v = 0; v < NV; ++v) acc[v] += d * loadv<V>(w + W * v);
  }
  for (int v = 0; v < NV; ++v) storev(back + i0 + W * v, acc[v]);
}

// Gradients of one batch whose forward pass is in wk.act; the loss is mean((y − x)²) per sample,
// averaged over the batch (`scale` = 2 / (d · rows)).
template <class V>
VIBGATE_INLINE void backward_batch(std::vector<Layer>& layers, Work& wk, std::size_t rows, float scale) {
  constexpr std::size_t W = kLanes<V>;
  const std::size_t nl = layers.size();
  {
    const std::size_t dp = layers.back().outp;
    for (std::size_t s = 0; s < rows; ++s)
      for (std::size_t k = 0; k < dp; k += W) {
        const V e = loadv<V>(&wk.act[nl][s * dp + k]) - loadv<V>(&wk.act[0][s * dp + k]);
        storev(&wk.delta[nl][s * dp + k], e * scale);
      }
  }
  for (std::size_t l = nl; l-- > 0;) {
    Layer& L = layers[l];
    float* delta = wk.delta[l + 1].data();
    const float* a = wk.act[l].data();
    if (L.relu) {  // δ of a ReLU output that was ≤ 0 is 0
      const float* y = wk.act[l + 1].data();
      for (std::size_t k = 0; k < rows * L.outp; k += W) {
        const V d = loadv<V>(delta + k);
        storev(delta + k, loadv<V>(y + k) <= V{} ? V{} : d);
      }
    }
    for (std::size_t j = 0; j < L.outp; j += W) {
      V acc = V{};
      for (std::size_t s = 0; s < rows; ++s) acc += loadv<V>(delta + s * L.outp + j);
      storev(&L.gb[j], acc);
    }
    for (std::size_t j = 0; j < L.out; ++j) {
      float* g = &L.gw[j * L.inp];
      std::size_t i = 0;
      for (; i + 32 <= L.inp; i += 32) weight_grad_chunk<V, 4>(delta + j, L.outp, a + i, L.inp, rows, g + i);
      switch ((L.inp - i) / 8) {
        case 3: weight_grad_chunk<V, 3>(delta + j, L.outp, a + i, L.inp, rows, g + i); break;
        case 2: weight_grad_chunk<V, 2>(delta + j, L.outp, a + i, L.inp, rows, g + i); break;
        case 1: weight_grad_chunk<V, 1>(delta + j, L.outp, a + i, L.inp, rows, g + i); break;
        default: break;
      }
    }
    if (l == 0) break;
    float* back = wk.delta[l].data();
    for (std::size_t s = 0; s < rows; ++s) {
      const float* ds = delta + s * L.outp;
      float* bs = back + s * L.inp;
      std::size_t i = 0;
      for (; i + 32 <= L.inp; i += 32) back_chunk<V, 4>(L, ds, bs, i);
      switch ((L.inp - i) / 8) {
        case 3: back_chunk<V, 3>(L, ds, bs, i); break;
        case 2: back_chunk<V, 2>(L, ds, bs, i); break;
        case 1: back_chunk<V, 1>(L, ds, bs, i); break;
        default: break;
      }
    }
  }
}

// ---------------------------------------------------------------- Adam

struct AdamStep {
  double lr, c1, c2, decay;
  static constexpr double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
};

// The reference formula, element by element (the vector versions compute exactly this).
void adam_scalar(float* p, const float* g, float* m, float* v, std::size_t n, const AdamStep& a) {
  for (std::size_t i = 0; i < n; ++i) {
    const double gi = g[i] + a.decay * p[i];
    m[i] = static_cast<float>(AdamStep::beta1 * m[i] + (1 - AdamStep::beta1) * gi);
    v[i] = static_cast<float>(AdamStep::beta2 * v[i] + (1 - AdamStep::beta2) * gi * gi);
    p[i] -= static_cast<float>(a.lr * (m[i] / a.c1) / (std::sqrt(v[i] / a.c2) + AdamStep::eps));
  }
}

#ifdef VIBGATE_TRAIN_X86
// SSE2 (baseline x86-64): two doubles at a time, four floats per iteration.
void adam_sse2(float* p, const float* g, float* m, float* v, std::size_t n, const AdamStep& a) {
  const __m128d decay = _mm_set1_pd(a.decay), b1 = _mm_set1_pd(AdamStep::beta1),
                b2 = _mm_set1_pd(AdamStep::beta2), a1 = _mm_set1_pd(1 - AdamStep::beta1),
                a2 = _mm_set1_pd(1 - AdamStep::beta2), lr = _mm_set1_pd(a.lr), c1 = _mm_set1_pd(a.c1),
                c2 = _mm_set1_pd(a.c2), eps = _mm_set1_pd(AdamStep::eps);
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m128 pf = _mm_loadu_ps(p + i), gf = _mm_loadu_ps(g + i), mf = _mm_loadu_ps(m + i),
                 vf = _mm_loadu_ps(v + i);
    __m128 mo[2], vo[2], uo[2];
    for (int h = 0; h < 2; ++h) {
      const auto half = [h](__m128 x) { return _mm_cvtps_pd(h == 0 ? x : _mm_movehl_ps(x, x)); };
      const __m128d gi = _mm_add_pd(half(gf), _mm_mul_pd(decay, half(pf)));
      mo[h] = _mm_cvtpd_ps(_mm_add_pd(_mm_mul_pd(b1, half(mf)), _mm_mul_pd(a1, gi)));
      vo[h] = _mm_cvtpd_ps(_mm_add_pd(_mm_mul_pd(b2, half(vf)), _mm_mul_pd(_mm_mul_pd(a2, gi), gi)));
      const __m128d md = _mm_cvtps_pd(mo[h]), vd = _mm_cvtps_pd(vo[h]);
      uo[h] = _mm_cvtpd_ps(_mm_div_pd(_mm_mul_pd(lr, _mm_div_pd(md, c1)), _mm_add_pd(_mm_sqrt_pd(_mm_div_pd(vd, c2)), eps)));
    }
    _mm_storeu_ps(m + i, _mm_movelh_ps(mo[0], mo[1]));
    _mm_storeu_ps(v + i, _mm_movelh_ps(vo[0], vo[1]));
    _mm_storeu_ps(p + i, _mm_sub_ps(pf, _mm_movelh_ps(uo[0], uo[1])));
  }
  adam_scalar(p + i, g + i, m + i, v + i, n - i, a);
}

__attribute__((target("avx2"))) void adam_avx2(float* p, const float* g, float* m, float* v, std::size_t n,
                                               const AdamStep& a) {
  const __m256d decay = _mm256_set1_pd(a.decay), b1 = _mm256_set1_pd(AdamStep::beta1),
                b2 = _mm256_set1_pd(AdamStep::beta2), a1 = _mm256_set1_pd(1 - AdamStep::beta1),
                a2 = _mm256_set1_pd(1 - AdamStep::beta2), lr = _mm256_set1_pd(a.lr),
                c1 = _mm256_set1_pd(a.c1), c2 = _mm256_set1_pd(a.c2), eps = _mm256_set1_pd(AdamStep::eps);
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m128 pf = _mm_loadu_ps(p + i);
    const __m256d gi = _mm256_add_pd(_mm256_cvtps_pd(_mm_loadu_ps(g + i)), _mm256_mul_pd(decay, _mm256_cvtps_pd(pf)));
    const __m128 mo = _mm256_cvtpd_ps(
        _mm256_add_pd(_mm256_mul_pd(b1, _mm256_cvtps_pd(_mm_loadu_ps(m + i))), _mm256_mul_pd(a1, gi)));
    const __m128 vo = _mm256_cvtpd_ps(_mm256_add_pd(_mm256_mul_pd(b2, _mm256_cvtps_pd(_mm_loadu_ps(v + i))),
                                                    _mm256_mul_pd(_mm256_mul_pd(a2, gi), gi)));
    const __m256d u = _mm256_div_pd(_mm256_mul_pd(lr, _mm256_div_pd(_mm256_cvtps_pd(mo), c1)),
                                    _mm256_add_pd(_mm256_sqrt_pd(_mm256_div_pd(_mm256_cvtps_pd(vo), c2)), eps));
    _mm_storeu_ps(m + i, mo);
    _mm_storeu_ps(v + i, vo);
    _mm_storeu_ps(p + i, _mm_sub_ps(pf, _mm256_cvtpd_ps(u)));
  }
  adam_scalar(p + i, g + i, m + i, v + i, n - i, a);
}
#endif

// ---------------------------------------------------------------- one batch, per ISA

void train_batch_default(std::vector<Layer>& layers, Work& wk, std::size_t rows, float scale) {
  forward_batch<V4>(layers, wk, rows);
  backward_batch<V4>(layers, wk, rows, scale);
}
void forward_default(const std::vector<Layer>& layers, Work& wk, std::size_t rows) {
  forward_batch<V4>(layers, wk, rows);
}
void adam_default(float* p, const float* g, float* m, float* v, std::size_t n, const AdamStep& a) {
#ifdef VIBGATE_TRAIN_X86
  adam_sse2(p, g, m, v, n, a);
#else
  adam_scalar(p, g, m, v, n, a);
#endif
}

#ifdef VIBGATE_TRAIN_X86
__attribute__((target("avx2"))) void train_batch_avx2(std::vector<Layer>& layers, Work& wk, std::size_t rows,
                                                      float scale) {
  forward_batch<V8>(layers, wk, rows);
  backward_batch<V8>(layers, wk, rows, scale);
}
__attribute__((target("avx2"))) void forward_avx2(const std::vector<Layer>& layers, Work& wk, std::size_t rows) {
  forward_batch<V8>(layers, wk, rows);
}
bool use_avx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}
#endif

struct Kernels {
  void (*train_batch)(std::vector<Layer>&, Work&, std::size_t, float) = train_batch_default;
  void (*forward)(const std::vector<Layer>&, Work&, std::size_t) = forward_default;
  void (*adam)(float*, const float*, float*, float*, std::size_t, const AdamStep&) = adam_default;
  Kernels() {
#ifdef VIBGATE_TRAIN_X86
    if (use_avx2()) {
      train_batch = train_batch_avx2;
      forward = forward_avx2;
      adam = adam_avx2;
    }
#endif
  }
};

// ---------------------------------------------------------------- pruning

// The mask (1 = kept) that zeroes exactly round(fraction · in · out) of the layer's weights, the
// smallest |w| first, ties broken by position (row-major), so the choice is deterministic and a
// larger fraction's mask contains a smaller one's zeros (they are the smallest |w| then).
// Padding entries are 0 in the mask (they are 0 anyway).
std::vector<std::uint8_t> magnitude_mask(const Layer& L, double fraction) {
  std::vector<std::size_t> idx;
  idx.reserve(L.in * L.out);
  for (std::size_t j = 0; j < L.out; ++j)
    for (std::size_t i = 0; i < L.in; ++i) idx.push_back(j * L.inp + i);
  const auto prune =
      std::min(idx.size(),
               static_cast<std::size_t>(std::llround(fraction * static_cast<double>(idx.size()))));
  std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
    const float wa = std::abs(L.w[a]), wb = std::abs(L.w[b]);
    return wa < wb || (wa == wb && a < b);
  });
  std::vector<std::uint8_t> mask(L.w.size(), 0);
  for (std::size_t k = prune; k < idx.size(); ++k) mask[idx[k]] = 1;
  return mask;
}

// Holds the masked weights and their Adam moments at exactly 0 (after pruning and after every
// Adam step of the fine-tuning).
void enforce_mask(Layer& L) {
  for (std::size_t k = 0; k < L.mask.size(); ++k)
    if (!L.mask[k]) L.w[k] = L.mw[k] = L.vw[k] = 0.f;
}

std::size_t zero_weights(const Layer& L) {
  std::size_t n = 0;
  for (std::size_t j = 0; j < L.out; ++j)
    for (std::size_t i = 0; i < L.in; ++i) n += L.w[j * L.inp + i] == 0.f;
  return n;
}

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
  if (!(opt.prune_fraction >= 0 && opt.prune_fraction < 1))
    throw std::invalid_argument("prune fraction must be at least 0 and below 1 (got " +
                                std::to_string(opt.prune_fraction) + ")");
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
  // Standardized rows, contiguous and zero padded to dp.
  const std::size_t dp = pad8(d);
  std::vector<float> z(inputs.size() * dp, 0.f);
  for (std::size_t i = 0; i < inputs.size(); ++i) norm.apply(inputs[i], std::span<float>(&z[i * dp], d));

  // Layers: d → hidden… → d, He-uniform init (weights drawn row by row, as DenseLayer stores them).
  std::vector<std::size_t> widths = {d};
  widths.insert(widths.end(), opt.hidden.begin(), opt.hidden.end());
  widths.push_back(d);
  const std::size_t nl = widths.size() - 1;
  std::vector<Layer> layers(nl);
  for (std::size_t l = 0; l < nl; ++l) {
    auto& L = layers[l];
    L.in = widths[l];
    L.out = widths[l + 1];
    if (L.in == 0 || L.out == 0) throw std::invalid_argument("training: layer widths must be positive");
    L.inp = pad8(L.in);
    L.outp = pad8(L.out);
    L.relu = l + 1 < nl;
    const double limit = std::sqrt(6.0 / static_cast<double>(L.in));
    L.w.assign(L.out * L.inp, 0.f);
    for (std::size_t j = 0; j < L.out; ++j)
      for (std::size_t i = 0; i < L.in; ++i)
        L.w[j * L.inp + i] = static_cast<float>((2 * uniform01(rng) - 1) * limit * (L.relu ? 1.0 : 0.5));
    L.wt.assign(L.in * L.outp, 0.f);
    L.refresh_transpose();
    L.b.assign(L.outp, 0.f);
    L.gw.assign(L.w.size(), 0.f);
    L.mw.assign(L.w.size(), 0.f);
    L.vw.assign(L.w.size(), 0.f);
    L.gb.assign(L.outp, 0.f);
    L.mb.assign(L.outp, 0.f);
    L.vb.assign(L.outp, 0.f);
  }

  const Kernels kern;
  const std::size_t bs = std::max<std::size_t>(1, opt.batch_size);
  constexpr std::size_t kEvalRows = 64;  // rows per forward-only batch (losses)
  const std::size_t work_rows = std::max(bs, kEvalRows);
  Work wk;
  wk.act.resize(nl + 1);
  wk.delta.resize(nl + 1);
  for (std::size_t l = 0; l <= nl; ++l) {
    wk.act[l].assign(work_rows * pad8(widths[l]), 0.f);
    wk.delta[l].assign(work_rows * pad8(widths[l]), 0.f);
  }
  auto load_rows = [&](const std::size_t* set, std::size_t rows) {
    for (std::size_t s = 0; s < rows; ++s) std::memcpy(&wk.act[0][s * dp], &z[set[s] * dp], dp * sizeof(float));
  };
  // Mean over `set` of the per-sample losses mean((y − x)²), summed in order in double.
  auto mean_loss = [&](const std::vector<std::size_t>& set) {
    double total = 0;
    for (std::size_t r0 = 0; r0 < set.size(); r0 += kEvalRows) {
      const std::size_t rows = std::min(kEvalRows, set.size() - r0);
      load_rows(&set[r0], rows);
      kern.forward(layers, wk, rows);
      for (std::size_t s = 0; s < rows; ++s) {
        const float* y = &wk.act[nl][s * dp];
        const float* x = &wk.act[0][s * dp];
        double e2 = 0;
        for (std::size_t k = 0; k < d; ++k) {
          const double e = y[k] - x[k];
          e2 += e * e;
        }
        total += e2 / static_cast<double>(d);
      }
    }
    return total / static_cast<double>(set.size());
  };

  // Epoch limit: max_epochs, or fewer when the sample budget runs out first.
  const std::size_t ntrain = out.train_index.size();
  std::size_t epoch_limit = opt.max_epochs;
  if (opt.sample_budget > 0)
    epoch_limit = std::min(epoch_limit, std::max<std::size_t>(1, (opt.sample_budget + ntrain - 1) / ntrain));
  out.stats.epoch_limit = epoch_limit;

  // Runs up to `limit` epochs of mini-batch Adam (pruning masks enforced after every step) with
  // early stopping, then restores the best weights seen; `entry_val` is the validation loss of
  // the weights at entry (infinity before the first phase). Returns the best validation loss.
  std::size_t step = 0;
  std::vector<std::size_t> order = out.train_index;
  auto run_epochs = [&](std::size_t limit, double entry_val) {
    std::vector<std::vector<float>> best_w(nl), best_b(nl);
    for (std::size_t l = 0; l < nl; ++l) {
      best_w[l] = layers[l].w;
      best_b[l] = layers[l].b;
    }
    double best_val = entry_val;
    double ref_val = best_val;  // the last validation loss that counted as an improvement
    std::size_t since_improvement = 0;
    for (std::size_t epoch = 1; epoch <= limit; ++epoch) {
      shuffle(order, rng);
      for (std::size_t b0 = 0; b0 < order.size(); b0 += bs) {
        const std::size_t rows = std::min(order.size() - b0, bs);
        load_rows(&order[b0], rows);
        const float scale = 2.0f / static_cast<float>(d * rows);
        kern.train_batch(layers, wk, rows, scale);
        ++step;
        const double t = static_cast<double>(step);
        const AdamStep aw{opt.learning_rate, 1 - std::pow(AdamStep::beta1, t),
                          1 - std::pow(AdamStep::beta2, t), opt.weight_decay};
        AdamStep ab = aw;
        ab.decay = 0.0;
        for (auto& L : layers) {
          kern.adam(L.w.data(), L.gw.data(), L.mw.data(), L.vw.data(), L.w.size(), aw);
          kern.adam(L.b.data(), L.gb.data(), L.mb.data(), L.vb.data(), L.b.size(), ab);
          if (!L.mask.empty()) enforce_mask(L);
          L.refresh_transpose();
        }
      }
      const double val = mean_loss(out.validation_index);
      ++out.stats.epochs;
      if (val < best_val) {  // keep the best weights seen
        best_val = val;
        for (std::size_t l = 0; l < nl; ++l) {
          best_w[l] = layers[l].w;
          best_b[l] = layers[l].b;
        }
        out.stats.best_epoch = out.stats.epochs;
      }
      if (val < ref_val * (1 - opt.min_improvement)) {  // a significant improvement resets patience
        ref_val = val;
        since_improvement = 0;
      } else if (++since_improvement >= opt.patience) {
        break;
      }
    }
    for (std::size_t l = 0; l < nl; ++l) {
      layers[l].w = best_w[l];
      layers[l].b = best_b[l];
      layers[l].refresh_transpose();
    }
    return best_val;
  };
  double best_val = run_epochs(epoch_limit, std::numeric_limits<double>::infinity());

  // Magnitude pruning in `steps` equal steps, each followed by fine-tuning that starts from the
  // pruned weights (so it can only lower the validation loss from there).
  if (opt.prune_fraction > 0) {
    out.stats.dense_validation_loss = best_val;
    const std::size_t dense_epochs = out.stats.epochs;
    const std::size_t steps = std::max<std::size_t>(1, opt.prune_steps);
    std::size_t total = opt.prune_finetune_epochs;
    if (total == 0) total = epoch_limit;
    total = std::max(total, steps);
    for (std::size_t s = 1; s <= steps; ++s) {
      const double fraction =
          opt.prune_fraction * static_cast<double>(s) / static_cast<double>(steps);
      for (auto& L : layers) {
        L.mask = magnitude_mask(L, fraction);
        enforce_mask(L);
        L.refresh_transpose();
      }
      out.stats.best_epoch = out.stats.epochs;  // the pruned weights are the best so far
      const std::size_t epochs = total / steps + (s <= total % steps ? 1 : 0);
      best_val = run_epochs(epochs, mean_loss(out.validation_index));
    }
    out.stats.finetune_epochs = out.stats.epochs - dense_epochs;
    for (const auto& L : layers) out.stats.pruned_weights += zero_weights(L);
  }
  out.stats.train_count = out.train_index.size();
  out.stats.validation_count = out.validation_index.size();
  out.stats.validation_loss = best_val;
  out.stats.train_loss = mean_loss(out.train_index);

  std::vector<DenseLayer> dense(nl);
  for (std::size_t l = 0; l < nl; ++l) {
    const Layer& L = layers[l];
    DenseLayer& D = dense[l];
    D.in = L.in;
    D.out = L.out;
    D.activation = L.relu ? Activation::relu : Activation::linear;
    D.weights.resize(L.in * L.out);
    for (std::size_t j = 0; j < L.out; ++j)
      std::copy_n(&L.w[j * L.inp], L.in, &D.weights[j * L.in]);
    D.bias.assign(L.b.begin(), L.b.begin() + static_cast<std::ptrdiff_t>(L.out));
  }
  out.network = FloatNetwork(std::move(dense));
  return out;
}

}  // namespace vibgate::analytics
