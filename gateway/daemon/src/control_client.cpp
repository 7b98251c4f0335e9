// control_client.cpp — one synchronous request/reply on the control socket for the CLI (see the
// header and docs/control-socket.md). Plain POSIX: a non-blocking socket and poll() against one
// deadline for the whole call.
#include "vibgate/daemon/control_client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace vibgate::daemon {
namespace {

using Clock = std::chrono::steady_clock;

enum class Io { ok, timeout, eof, error };

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Waits until `fd` is ready for `events` or the deadline passes. false: timeout.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 60'000)));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return true;  // let the following call report the error
  }
}

Io send_all(int fd, const std::string& data, Clock::time_point deadline, int* err) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_for(fd, POLLOUT, deadline)) return Io::timeout;
      continue;
    }
    *err = errno;
    return (errno == EPIPE || errno == ECONNRESET) ? Io::eof : Io::error;
  }
  return Io::ok;
}

Io recv_all(int fd, char* out, std::size_t size, Clock::time_point deadline, int* err) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::recv(fd, out + done, size - done, 0);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n == 0) return Io::eof;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!wait_for(fd, POLLIN, deadline)) return Io::timeout;
      continue;
    }
    *err = errno;
    return errno == ECONNRESET ? Io::eof : Io::error;
  }
  return Io::ok;
}

std::string with_path(const char* before, const std::string& path, const char* after) {
  std::string s = before;
  s += path;
  s += after;
  return s;
}

}  // namespace

std::string describe_connect_error(const std::string& path, int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return with_path("vibgated is not running (no socket at ", path, ")");
    case ECONNREFUSED:
      return with_path("vibgated is not running (nothing listening on ", path, ")");
    case EACCES:
    case EPERM:
      return with_path("permission denied on ", path, " (are you in the vibgate group?)");
    default: {
      std::string s = with_path("control socket ", path, ": ");
      s += std::strerror(err);
      return s;
    }
  }
}

std::string describe_timeout(std::chrono::milliseconds timeout) {
  const long long ms = timeout.count();
  std::string s = "vibgated did not answer within ";
  s += std::to_string(ms / 1000);
  if (ms % 1000 != 0) {
    s += '.';
    s += std::to_string((ms % 1000) / 100);
  }
  s += " s";
  return s;
}

std::optional<ControlReply> call_control(const std::string& path, const ControlRequest& request,
                                         std::chrono::milliseconds timeout, std::string* error) {
  std::string scratch;
  std::string& err_out = error ? *error : scratch;
  const Clock::time_point deadline = Clock::now() + timeout;

  std::string frame;
  try {
    frame = encode_request_frame(request);
  } catch (const std::length_error& e) {
    err_out = e.what();
    return std::nullopt;
  }
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    err_out = with_path("control socket path \"", path, "\" is empty or too long");
    return std::nullopt;
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

  const Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) {
    err_out = describe_connect_error(path, errno);
    return std::nullopt;
  }
  // A Unix stream connect either completes at once or fails with EAGAIN when the listener's
  // backlog is full (a busy or hung daemon): retry until the deadline.
  for (;;) {
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) break;
    const int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN || e == EINPROGRESS) {
      if (Clock::now() >= deadline) {
        err_out = describe_timeout(timeout);
        return std::nullopt;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    err_out = describe_connect_error(path, e);
    return std::nullopt;
  }

  const auto io_failed = [&](Io io, int e) {
    if (io == Io::timeout) {
      err_out = describe_timeout(timeout);
    } else if (io == Io::eof) {
      err_out = with_path("vibgated closed the connection (", path, ")");
    } else {
      err_out = describe_connect_error(path, e);
    }
  };
  int e = 0;
  // If the daemon closed the connection before taking the request (e.g. too many clients), its
  // one-frame explanation may still be waiting to be read: try that before reporting the EOF.
  const Io sent = send_all(fd.get(), frame, deadline, &e);
  if (sent != Io::ok && sent != Io::eof) {
    io_failed(sent, e);
    return std::nullopt;
  }
  char header[kControlFrameHeader];
  if (Io io = recv_all(fd.get(), header, sizeof header, deadline, &e); io != Io::ok) {
    io_failed(sent == Io::eof ? Io::eof : io, e);
    return std::nullopt;
  }
  const std::uint32_t length = decode_frame_length({header, sizeof header});
  if (length > kMaxControlMessage) {
    err_out = with_path("bad reply from vibgated on ", path, " (frame too large)");
    return std::nullopt;
  }
  std::string body(length, '\0');
  if (Io io = recv_all(fd.get(), body.data(), body.size(), deadline, &e); io != Io::ok) {
    io_failed(io, e);
    return std::nullopt;
  }
  std::optional<ControlReply> reply = decode_reply(body);
  if (!reply) {
    err_out = with_path("bad reply from vibgated on ", path, " (unparsable)");
    return std::nullopt;
  }
  if (reply->id == 0 && !reply->ok && request.id != 0) {
    err_out = reply->error;  // refused by the server (e.g. too many clients)
    return std::nullopt;
  }
  if (reply->id != request.id) {
    err_out = with_path("bad reply from vibgated on ", path, " (wrong request id)");
    return std::nullopt;
  }
  return reply;
}

std::optional<ControlReply> ControlClient::call(ControlRequest request, std::string* error) {
  request.id = next_id_++;
  return call_control(path_, request, timeout_, error);
}

}  // namespace vibgate::daemon
