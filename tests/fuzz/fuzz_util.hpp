// fuzz_util.hpp — helpers shared by the libFuzzer targets of tests/fuzz: a checked assertion that
// aborts (libFuzzer then saves the input as a crash), a per-process temporary file for parsers that
// only read paths, and a tiny deterministic PRNG for input splitting.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace vibgate::fuzz {

// Aborts with a message: a broken invariant is a finding just like a sanitizer report.
[[noreturn]] inline void fail(const char* file, int line, const char* what,
                              std::string_view detail) {
  std::fprintf(stderr, "%s:%d: fuzz invariant violated: %s %.*s\n", file, line, what,
               static_cast<int>(detail.size()), detail.data());
  std::abort();
}

#define FUZZ_CHECK(cond, detail)                                             \
  do {                                                                       \
    if (!(cond)) ::vibgate::fuzz::fail(__FILE__, __LINE__, #cond, (detail)); \
  } while (0)

// One temporary file per process and name suffix (the suffix carries the extension the readers
// dispatch on). Lives in /dev/shm when it exists (no disk I/O per execution), else $TMPDIR or /tmp.
// Rewritten for every input; removed at exit.
class TempFile {
 public:
  explicit TempFile(const std::string& suffix) {
    const char* dir = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : std::getenv("TMPDIR");
    if (dir == nullptr || *dir == '\0') dir = "/tmp";
    path_ = std::string(dir) + "/vibgate-fuzz-" + std::to_string(::getpid()) + suffix;
  }
  ~TempFile() { ::unlink(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  const std::string& path() const { return path_; }

  // Replaces the file's content; aborts if the file cannot be written (not a finding of the
  // target: the fuzzing machine is broken).
  void write(const void* data, std::size_t size) const {
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) fail(__FILE__, __LINE__, "cannot create", path_);
    const auto* p = static_cast<const char*>(data);
    while (size > 0) {
      const ssize_t n = ::write(fd, p, size);
      if (n <= 0) fail(__FILE__, __LINE__, "cannot write", path_);
      p += n;
      size -= static_cast<std::size_t>(n);
    }
    ::close(fd);
  }

 private:
  std::string path_;
};

// SplitMix64: deterministic pseudo-random numbers from a seed taken from the input.
class SplitMix {
 public:
  explicit SplitMix(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform-ish in [lo, hi].
  std::size_t range(std::size_t lo, std::size_t hi) {
    return lo + static_cast<std::size_t>(next() % (hi - lo + 1));
  }

 private:
  std::uint64_t state_;
};

}  // namespace vibgate::fuzz
