// vibgate/daemon/sd_notify.hpp — the systemd service notification protocol (sd_notify(3)) without
// libsystemd: READY=1, STATUS=..., WATCHDOG=1 and STOPPING=1 datagrams to the socket named by
// $NOTIFY_SOCKET, and the watchdog interval from $WATCHDOG_USEC / $WATCHDOG_PID
// (docs/observability.md).
//
// Contract:
//   * The environment is read once, by the constructor; it is not modified (the variables stay
//     set, unlike sd_notify(unset_environment = 1)).
//   * Without $NOTIFY_SOCKET (unset or empty: not started by systemd with Type=notify, or
//     NotifyAccess= does not allow it) enabled() is false and every send is a no-op returning "".
//   * $NOTIFY_SOCKET may be an absolute path ("/run/systemd/notify") or an abstract socket name
//     ("@name", sent with a leading NUL byte); anything else makes every send fail with an error.
//   * Each send opens a fresh AF_UNIX SOCK_DGRAM socket (SOCK_CLOEXEC), sends one datagram with
//     MSG_DONTWAIT | MSG_NOSIGNAL (never blocks, never raises SIGPIPE) and closes it. No
//     credentials or file descriptors are passed.
//   * Errors are returned as one line ("" = sent), never thrown; the daemon logs them and goes on
//     (a lost notification is not fatal: systemd times out or restarts the service).
//   * Threads: all members are const and keep no mutable state; any thread may call them
//     concurrently. The daemon sends from its loop thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace vibgate::daemon {

class SystemdNotifier {
 public:
  // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from the environment. Never throws but
  // for std::bad_alloc.
  SystemdNotifier();

  // True if NOTIFY_SOCKET was set and non-empty.
  bool enabled() const;

  // The socket address as given in NOTIFY_SOCKET ("" when disabled).
  const std::string& socket_address() const { return socket_; }

  // Sends `state` as one datagram, as is (newline-separated VAR=value assignments, e.g.
  // "READY=1\nSTATUS=running"). Returns "" when sent or when disabled, else one line:
  //   "sd_notify: NOTIFY_SOCKET=ADDR: <reason>" (unsupported address, path too long, socket(),
  //   sendto() failure such as "No such file or directory" or "Connection refused").
  [[nodiscard]] std::string notify(std::string_view state) const;

  // The watchdog timeout WATCHDOG_USEC (a positive decimal number of microseconds) if it is set
  // and WATCHDOG_PID is unset or equals getpid(); nullopt if unset, unparsable, zero, or meant
  // for another process (WATCHDOG_PID unparsable or another pid). The caller sends watchdog()
  // at half this interval. Independent of enabled().
  std::optional<std::chrono::microseconds> watchdog_interval() const;

  // "READY=1", followed by "\nSTATUS=<status>" if `status` is not empty.
  std::string ready(std::string_view status = {}) const;
  // "STATUS=<text>": a one-line summary shown by `systemctl status`.
  std::string status(std::string_view text) const;
  // "WATCHDOG=1".
  std::string watchdog() const;
  // "STOPPING=1".
  std::string stopping() const;
  // In ready() and status(), newlines (\n, \r) in the text are replaced by spaces, so the text
  // cannot inject further assignments. These four return notify()'s result; callers that have
  // nowhere to report it may ignore it (a lost notification is not fatal).

 private:
  std::string socket_;
  std::optional<std::chrono::microseconds> watchdog_;
};

}  // namespace vibgate::daemon
