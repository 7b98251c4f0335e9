// serial_source.cpp — pty creation, frame/line production and non-blocking writes of a simulated
// serial vibration sensor (see the header).
#include "serial_source.hpp"

#include <fcntl.h>
#include <pty.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "vibgate/ingest/serial_frame.hpp"

namespace vibgate::sim {
namespace {

// Catch-up limit: samples more than max(4 frames, 1 s) behind are skipped, not computed.
constexpr std::uint64_t kMaxBehindFrames = 4;

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

}  // namespace

SerialSource::SerialSource(const SerialSpec& spec, const std::vector<MachineConfig>& machines,
                           std::vector<ProcessModel>& processes, std::vector<std::uint64_t>& consumer_counter)
    : spec_(&spec) {
  termios raw{};
  cfmakeraw(&raw);
  cfsetispeed(&raw, B921600);
  cfsetospeed(&raw, B921600);
  if (::openpty(&master_, &slave_, nullptr, &raw, nullptr) != 0) fail("serial " + spec.name + ": openpty");
  char name[256];
  if (ptsname_r(master_, name, sizeof name) != 0) {
    const int e = errno;
    ::close(master_);
    ::close(slave_);
    errno = e;
    fail("serial " + spec.name + ": ptsname");
  }
  slave_path_ = name;
  // The simulator keeps the slave open: the pty keeps its raw settings and never hangs up when
  // the gateway closes and reopens it.
  ::fcntl(master_, F_SETFL, ::fcntl(master_, F_GETFL) | O_NONBLOCK);
  ::fcntl(master_, F_SETFD, FD_CLOEXEC);
  ::fcntl(slave_, F_SETFD, FD_CLOEXEC);

  if (!spec.link.empty()) {
    struct stat st {};
    if (::lstat(spec.link.c_str(), &st) == 0) {
      if (!S_ISLNK(st.st_mode)) {
        ::close(master_);
        ::close(slave_);
        throw std::runtime_error("serial " + spec.name + ": " + spec.link +
                                 " exists and is not a symlink; not replacing it");
      }
      ::unlink(spec.link.c_str());  // stale link of an earlier run
    }
    if (::symlink(slave_path_.c_str(), spec.link.c_str()) != 0) {
      const int e = errno;
      ::close(master_);
      ::close(slave_);
      errno = e;
      fail("serial " + spec.name + ": cannot create symlink " + spec.link);
    }
    own_link_ = true;
  }

  for (std::size_t m : spec.machines) {
    const std::uint64_t consumer = consumer_counter.at(m)++;
    streams_.emplace_back(machines.at(m), processes.at(m), static_cast<double>(spec.sample_rate_hz), consumer);
  }
  channels_.assign(spec.machines.size(), std::vector<float>(spec.samples_per_frame));
  pending_.reserve(kMaxPendingBytes + ingest::kFrameMaxBytes);
}

SerialSource::~SerialSource() {
  if (own_link_) {
    char target[512];
    const ssize_t n = ::readlink(spec_->link.c_str(), target, sizeof target - 1);
    if (n > 0 && std::string(target, static_cast<std::size_t>(n)) == slave_path_) ::unlink(spec_->link.c_str());
  }
  ::close(master_);
  ::close(slave_);
}

void SerialSource::produce_frame() {
  for (std::size_t c = 0; c < streams_.size(); ++c) streams_[c].generate(channels_[c]);
  samples_done_ += spec_->samples_per_frame;
  ++stats_.frames;
  const std::uint32_t seq = sequence_++;
  if (pending_.size() > kMaxPendingBytes) {
    ++stats_.frames_dropped;
    return;
  }
  if (spec_->mode == SerialMode::binary) {
    ingest::FrameParams p;
    p.sequence = seq;
    p.sample_rate_hz = spec_->sample_rate_hz;
    p.format = spec_->format;
    p.scale = spec_->scale;
    const auto frame = ingest::encode_frame(p, channels_);
    pending_.insert(pending_.end(), frame.begin(), frame.end());
  } else {
    text_.clear();
    char num[32];
    for (std::size_t i = 0; i < spec_->samples_per_frame; ++i) {
      for (std::size_t c = 0; c < channels_.size(); ++c) {
        if (c) text_ += ',';
        const auto r = std::to_chars(num, num + sizeof num, channels_[c][i], std::chars_format::general,
                                     spec_->precision);
        text_.append(num, r.ptr);
      }
      text_ += '\n';
    }
    pending_.insert(pending_.end(), text_.begin(), text_.end());
  }
}

void SerialSource::flush() {
  std::size_t off = 0;
  while (off < pending_.size()) {
    const ssize_t n = ::write(master_, pending_.data() + off, pending_.size() - off);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;  // EAGAIN: the pty is full; anything else: keep the bytes, try again next tick
  }
  stats_.bytes_written += off;
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(off));
}

void SerialSource::advance(double t) {
  const std::uint64_t spf = spec_->samples_per_frame;
  const auto due = static_cast<std::uint64_t>(std::floor(t * static_cast<double>(spec_->sample_rate_hz)));
  const auto max_behind = std::max<std::uint64_t>(kMaxBehindFrames * spf, spec_->sample_rate_hz);
  if (due > samples_done_ + max_behind) {
    // Stalled: skip whole frames (their sequence numbers are used, as if lost on the line).
    const std::uint64_t frames = (due - samples_done_) / spf;
    for (auto& s : streams_) s.skip(frames * spf);
    samples_done_ += frames * spf;
    sequence_ += static_cast<std::uint32_t>(frames);
    stats_.frames_skipped += frames;
  }
  while (samples_done_ + spf <= due) produce_frame();
  if (!pending_.empty()) flush();
}

}  // namespace vibgate::sim
