// sd_notify.cpp — the systemd notification protocol without libsystemd (see the header): one
// datagram per notification to $NOTIFY_SOCKET, and the watchdog interval from the environment.
#include "vibgate/daemon/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace vibgate::daemon {
namespace {

// A positive decimal number, all of `text` (no sign, no spaces), or nullopt.
template <typename T>
std::optional<T> parse_positive(const char* text) {
  if (text == nullptr || *text == '\0') return std::nullopt;
  const char* end = text + std::strlen(text);
  T value{};
  const auto [ptr, ec] = std::from_chars(text, end, value);
  if (ec != std::errc{} || ptr != end || value <= 0) return std::nullopt;
  return value;
}

std::optional<std::chrono::microseconds> read_watchdog() {
  const auto usec = parse_positive<std::int64_t>(std::getenv("WATCHDOG_USEC"));
  if (!usec) return std::nullopt;
  if (const char* pid_text = std::getenv("WATCHDOG_PID"); pid_text != nullptr) {
    const auto pid = parse_positive<long long>(pid_text);
    if (!pid || *pid != static_cast<long long>(::getpid())) return std::nullopt;
  }
  return std::chrono::microseconds(*usec);
}

std::string failure(const std::string& address, const std::string& reason) {
  std::string s = "sd_notify: NOTIFY_SOCKET=";
  s += address;
  s += ": ";
  s += reason;
  return s;
}

// `prefix` then `text` with CR/LF replaced by spaces.
std::string one_line(std::string_view prefix, std::string_view text) {
  std::string s(prefix);
  s.reserve(prefix.size() + text.size());
  for (const char c : text) s += (c == '\n' || c == '\r') ? ' ' : c;
  return s;
}

}  // namespace

SystemdNotifier::SystemdNotifier() : watchdog_(read_watchdog()) {
  if (const char* s = std::getenv("NOTIFY_SOCKET"); s != nullptr) socket_ = s;
}

bool SystemdNotifier::enabled() const { return !socket_.empty(); }

std::string SystemdNotifier::notify(std::string_view state) const {
  if (socket_.empty()) return {};
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  socklen_t addr_len = 0;
  if (socket_.front() == '/') {
    if (socket_.size() >= sizeof addr.sun_path) {
      return failure(socket_, "path longer than 107 bytes");
    }
    std::memcpy(addr.sun_path, socket_.data(), socket_.size());  // NUL-terminated by addr{}
    addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_.size() + 1);
  } else if (socket_.front() == '@') {
    // Abstract namespace: a leading NUL, then the name; the length counts exactly those bytes.
    if (socket_.size() > sizeof addr.sun_path) {
      return failure(socket_, "abstract socket name longer than 107 bytes");
    }
    addr.sun_path[0] = '\0';
    std::memcpy(addr.sun_path + 1, socket_.data() + 1, socket_.size() - 1);
    addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_.size());
  } else {
    return failure(socket_, "unsupported address (expected an absolute path or @abstract)");
  }

  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    std::string reason = "socket: ";
    reason += std::strerror(errno);
    return failure(socket_, reason);
  }
  ssize_t sent = -1;
  do {
    sent = ::sendto(fd, state.data(), state.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                    reinterpret_cast<const sockaddr*>(&addr), addr_len);
  } while (sent < 0 && errno == EINTR);
  const int err = errno;
  ::close(fd);
  if (sent < 0) {
    std::string reason = "sendto: ";
    reason += std::strerror(err);
    return failure(socket_, reason);
  }
  if (static_cast<std::size_t>(sent) != state.size()) {
    return failure(socket_, "sendto: datagram truncated");
  }
  return {};
}

std::optional<std::chrono::microseconds> SystemdNotifier::watchdog_interval() const {
  return watchdog_;
}

std::string SystemdNotifier::ready(std::string_view status_text) const {
  if (status_text.empty()) return notify("READY=1");
  return notify(one_line("READY=1\nSTATUS=", status_text));
}

std::string SystemdNotifier::status(std::string_view text) const {
  return notify(one_line("STATUS=", text));
}

std::string SystemdNotifier::watchdog() const { return notify("WATCHDOG=1"); }

std::string SystemdNotifier::stopping() const { return notify("STOPPING=1"); }

}  // namespace vibgate::daemon
