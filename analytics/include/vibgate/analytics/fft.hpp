// vibgate/analytics/fft.hpp — FFT plans made once per (length, kind) and reused.
//
// Wraps FFTW (single precision) without exposing its types. Plans live in a process-wide cache
// guarded by a mutex (FFTW's planner is not thread-safe); executing a plan on this object's own
// buffers is thread-safe, so each worker owns its RealFft/ComplexInverseFft objects and never plans
// on the per-window path. Plans use FFTW_ESTIMATE (reproducible); loaded wisdom (e.g. from
// `fftwf-wisdom`) supplies measured plans instead.
#pragma once

#include <complex>
#include <cstddef>
#include <string>

namespace vibgate::analytics {

// Forward real-to-complex transform of length n: input() holds n floats, output() n/2+1 bins.
class RealFft {
 public:
  explicit RealFft(std::size_t n);  // plans on first use of n (slow), cached afterwards
  ~RealFft();
  RealFft(const RealFft&) = delete;
  RealFft& operator=(const RealFft&) = delete;

  std::size_t size() const { return n_; }
  float* input() { return in_; }
  const std::complex<float>* output() const { return out_; }
  void execute();  // unnormalized: X[k] = Σ x[n]·e^(−2πikn/N)

 private:
  std::size_t n_;
  float* in_;
  std::complex<float>* out_;
  void* plan_;
};

// Backward complex-to-complex transform of length n, unnormalized (no 1/N).
class ComplexInverseFft {
 public:
  explicit ComplexInverseFft(std::size_t n);
  ~ComplexInverseFft();
  ComplexInverseFft(const ComplexInverseFft&) = delete;
  ComplexInverseFft& operator=(const ComplexInverseFft&) = delete;

  std::size_t size() const { return n_; }
  std::complex<float>* input() { return in_; }
  const std::complex<float>* output() const { return out_; }
  void execute();

 private:
  std::size_t n_;
  std::complex<float>* in_;
  std::complex<float>* out_;
  void* plan_;
};

// FFTW wisdom: accumulated plan measurements. Both return "" on success or a one-line error.
std::string load_fft_wisdom(const std::string& path);
std::string save_fft_wisdom(const std::string& path);

// Number of plans created so far (tests use it to prove plans are not made per window).
std::size_t fft_plans_created();

}  // namespace vibgate::analytics
