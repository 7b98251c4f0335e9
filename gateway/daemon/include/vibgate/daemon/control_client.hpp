// vibgate/daemon/control_client.hpp — the CLI's side of the operator control socket: one
// synchronous request/reply over the Unix socket (docs/control-socket.md).
//
// Threads: no shared state; any thread. Blocks the caller up to `timeout` (plain POSIX sockets
// with poll(), no io_context needed).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "vibgate/daemon/control_protocol.hpp"

namespace vibgate::daemon {

// Connects to `path`, sends `request`, waits for its reply. On failure returns nullopt and, if
// `error` is non-null, stores one line for the operator:
//   "vibgated is not running (no socket at PATH)"                 ENOENT
//   "vibgated is not running (nothing listening on PATH)"         ECONNREFUSED (stale socket)
//   "permission denied on PATH (are you in the vibgate group?)"   EACCES / EPERM
//   "vibgated did not answer within N s"                          timeout (whole call)
//   "vibgated closed the connection (PATH)"                       EOF before a reply
//   "bad reply from vibgated on PATH"                              unparsable / wrong id / too big
//   "control socket PATH: <reason>"                                anything else
// A reply with ok == false is returned as a reply (the caller prints reply.error); except a
// server refusal (id 0, e.g. too many clients), which becomes nullopt with that error.
std::optional<ControlReply> call_control(const std::string& path, const ControlRequest& request,
                                         std::chrono::milliseconds timeout, std::string* error);

// The operator message for a failed connect() to `path` with errno `err` (the table above).
std::string describe_connect_error(const std::string& path, int err);

// The timeout message: "vibgated did not answer within 5 s" (1.5 s for fractions).
std::string describe_timeout(std::chrono::milliseconds timeout);

// Thin object wrapper for the CLI: remembers the path and the timeout, numbers requests.
class ControlClient {
 public:
  explicit ControlClient(std::string path,
                         std::chrono::milliseconds timeout = std::chrono::seconds(5))
      : path_(std::move(path)), timeout_(timeout) {}
  // Sets request.id to the next number, then call_control() with the remembered path/timeout.
  std::optional<ControlReply> call(ControlRequest request, std::string* error);

 private:
  std::string path_;
  std::chrono::milliseconds timeout_;
  std::uint64_t next_id_ = 1;
};

}  // namespace vibgate::daemon
