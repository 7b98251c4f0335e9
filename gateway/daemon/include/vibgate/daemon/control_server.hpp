// vibgate/daemon/control_server.hpp — the daemon's side of the operator control socket: a Unix
// domain stream socket (default /run/vibgate/vibgate.sock) on which the `vibgate` CLI sends
// length-prefixed protobuf requests (vibgate/daemon/control_protocol.hpp,
// docs/control-socket.md). Access control is the socket file's mode and group only.
//
// Threads: the server lives on the daemon's Asio io_context. Construct, listen(), close() and
// destroy on the loop thread (or before the loop runs); one coroutine per connection runs there
// too, and every request is dispatched synchronously to ControlHandler::handle() on that thread,
// so the handler needs no locking against other requests but must answer quickly (it blocks the
// loop).
//
// Robustness: a client that sends a bad frame (length 0 or > 4 MiB, unparsable protobuf, a
// request without a command, or a truncated frame before EOF) is dropped with one log line;
// an idle client (no complete request within idle_timeout, or not reading its replies) is
// dropped; beyond max_clients a new connection gets one error reply (id 0) and is closed. None
// of this affects the other clients.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "vibgate/daemon/control_protocol.hpp"

namespace vibgate::daemon {

// Implemented by the daemon. Called on the loop thread, one request at a time. The returned
// reply's id is overwritten with the request's id. An exception becomes an error reply
// (ok = false, error = what()) and the connection stays open.
class ControlHandler {
 public:
  virtual ~ControlHandler() = default;
  virtual ControlReply handle(const ControlRequest& request) = 0;
};

struct ControlServerOptions {
  unsigned mode = 0660;              // permissions of the socket file
  std::optional<std::string> group;  // group name to chown the socket to; nullopt: keep
  std::size_t max_clients = 8;       // concurrent connections
  std::chrono::milliseconds idle_timeout{30'000};  // per read / write of a whole frame
  bool allow_temp_dirs = false;                    // tests only: skip the /tmp refusal
};

struct ControlServerStats {
  std::uint64_t connections = 0;  // accepted and served
  std::uint64_t refused = 0;      // closed at once: max_clients reached
  std::uint64_t dropped = 0;      // closed for a bad frame
  std::uint64_t idle_closed = 0;  // closed by the idle timeout
  std::uint64_t requests = 0;     // requests answered
};

// "" if `path` is acceptable as the configured control socket path, else one line why not:
// not absolute, too long for sockaddr_un (107 bytes), or under a world-writable temp directory
// (/tmp, /var/tmp, /dev/shm) where another user could pre-create or hijack it.
std::string control_socket_path_problem(const std::string& path);

class ControlServer {
 public:
  // `handler` must outlive the server (and any coroutine it started: call close() and let the
  // loop run, or destroy the io_context, before destroying the handler).
  ControlServer(boost::asio::io_context& io, ControlHandler& handler);
  ~ControlServer();  // close()s
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Binds and listens on `path`, sets the file's mode and group, starts accepting. Returns ""
  // on success, else one line:
  //   the control_socket_path_problem() text (unless options.allow_temp_dirs),
  //   "another vibgated is running (socket PATH)" if a process accepts connections there,
  //   "PATH exists and is not a socket" (never removes a non-socket file),
  //   "control socket PATH: <step>: <reason>" for bind/chmod/chown/unknown group failures.
  // A stale socket file (connect refused) is removed and replaced. Call once.
  [[nodiscard]] std::string listen(const std::string& path, const ControlServerOptions& options);

  // Stops accepting, closes every client connection, unlinks the socket file (only if this
  // server created it). Idempotent. Coroutines finish on the next turns of the loop.
  void close();

  // Loop thread.
  std::size_t active_clients() const;
  ControlServerStats stats() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace vibgate::daemon
