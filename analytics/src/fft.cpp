// fft.cpp — FFTW plan cache and the two transform wrappers the feature extractor needs.
//
// Plans are created (FFTW_ESTIMATE, see kPlanFlags) on scratch buffers under a global mutex and cached by
// (kind, length) for the life of the process. Each wrapper owns fftwf_malloc'd buffers (SIMD
// aligned like the scratch buffers) and runs the cached plan with the new-array execute functions,
// which FFTW documents as thread-safe.
#include "vibgate/analytics/fft.hpp"

#include <fftw3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <utility>

namespace vibgate::analytics {
namespace {

enum class Kind { r2c, c2c_backward };

// FFTW_ESTIMATE: plans chosen by heuristics, identical in every run, so features, scores and
// training are reproducible bit for bit. FFTW_MEASURE times candidate algorithms and may pick a
// different one (with different rounding) in each process; measured plans are used only when the
// caller loads wisdom (load_fft_wisdom), which makes them reproducible again.
constexpr unsigned kPlanFlags = FFTW_ESTIMATE;

std::mutex& planner_mutex() {
  static std::mutex m;
  return m;
}
// Owns the plans; destroys them at exit so leak checkers see a clean process.
struct PlanCache {
  std::map<std::pair<Kind, std::size_t>, void*> plans;
  ~PlanCache() {
    for (auto& [key, plan] : plans) fftwf_destroy_plan(static_cast<fftwf_plan>(plan));
    fftwf_cleanup();
  }
};
std::map<std::pair<Kind, std::size_t>, void*>& plan_cache() {
  static PlanCache cache;
  return cache.plans;
}
std::size_t g_plans_created = 0;

// Returns the cached plan for (kind, n), creating it on first use. Thread: any.
void* get_plan(Kind kind, std::size_t n) {
  std::lock_guard lock(planner_mutex());
  auto& cache = plan_cache();
  auto it = cache.find({kind, n});
  if (it != cache.end()) return it->second;
  const int len = static_cast<int>(n);
  void* plan = nullptr;
  if (kind == Kind::r2c) {
    auto* in = fftwf_alloc_real(n);
    auto* out = fftwf_alloc_complex(n / 2 + 1);
    plan = fftwf_plan_dft_r2c_1d(len, in, out, kPlanFlags);
    fftwf_free(in);
    fftwf_free(out);
  } else {
    auto* in = fftwf_alloc_complex(n);
    auto* out = fftwf_alloc_complex(n);
    plan = fftwf_plan_dft_1d(len, in, out, FFTW_BACKWARD, kPlanFlags);
    fftwf_free(in);
    fftwf_free(out);
  }
  if (plan == nullptr) throw std::bad_alloc();
  ++g_plans_created;
  cache.emplace(std::make_pair(kind, n), plan);
  return plan;
}

}  // namespace

RealFft::RealFft(std::size_t n)
    : n_(n),
      in_(fftwf_alloc_real(n)),
      out_(reinterpret_cast<std::complex<float>*>(fftwf_alloc_complex(n / 2 + 1))),
      plan_(get_plan(Kind::r2c, n)) {
  std::memset(in_, 0, n * sizeof(float));
}
RealFft::~RealFft() {
  fftwf_free(in_);
  fftwf_free(out_);
}
void RealFft::execute() {
  fftwf_execute_dft_r2c(static_cast<fftwf_plan>(plan_), in_, reinterpret_cast<fftwf_complex*>(out_));
}

ComplexInverseFft::ComplexInverseFft(std::size_t n)
    : n_(n),
      in_(reinterpret_cast<std::complex<float>*>(fftwf_alloc_complex(n))),
      out_(reinterpret_cast<std::complex<float>*>(fftwf_alloc_complex(n))),
      plan_(get_plan(Kind::c2c_backward, n)) {
  std::memset(static_cast<void*>(in_), 0, n * sizeof(std::complex<float>));
}
ComplexInverseFft::~ComplexInverseFft() {
  fftwf_free(in_);
  fftwf_free(out_);
}
void ComplexInverseFft::execute() {
  fftwf_execute_dft(static_cast<fftwf_plan>(plan_), reinterpret_cast<fftwf_complex*>(in_),
                    reinterpret_cast<fftwf_complex*>(out_));
}

std::string load_fft_wisdom(const std::string& path) {
  std::lock_guard lock(planner_mutex());
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return path + ": cannot open FFTW wisdom: " + std::strerror(errno);
  const int ok = fftwf_import_wisdom_from_file(f);
  std::fclose(f);
  return ok ? std::string() : path + ": not a valid FFTW (single precision) wisdom file";
}

std::string save_fft_wisdom(const std::string& path) {
  std::lock_guard lock(planner_mutex());
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return path + ": cannot write FFTW wisdom: " + std::strerror(errno);
  fftwf_export_wisdom_to_file(f);
  const bool failed = std::ferror(f) != 0;
  if (std::fclose(f) != 0 || failed) return path + ": error writing FFTW wisdom";
  return {};
}

std::size_t fft_plans_created() {
  std::lock_guard lock(planner_mutex());
  return g_plans_created;
}

}  // namespace vibgate::analytics
