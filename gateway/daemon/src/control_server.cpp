// control_server.cpp — the operator control socket's server (see the header and
// docs/control-socket.md): one accept coroutine and one coroutine per connection on the
// daemon's io_context. Each read or write of a whole frame runs under a per-connection timer
// that closes the socket when it fires; Boost 1.74 has no as_tuple, so errors come back through
// redirect_error and nothing here throws into the loop.
#include "vibgate/daemon/control_server.hpp"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <utility>  // before Boost: 1.74 awaitable.hpp uses std::exchange unincluded
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace vibgate::daemon {
namespace {

namespace asio = boost::asio;
using Local = asio::local::stream_protocol;
using boost::system::error_code;

constexpr std::size_t kMaxSunPath = sizeof(sockaddr_un{}.sun_path) - 1;  // 107 on Linux
constexpr int kBacklog = 16;

std::string errno_text(int err) { return std::strerror(err); }

std::string fail(const std::string& path, const char* step, const std::string& reason) {
  std::string s = "control socket ";
  s += path;
  s += ": ";
  s += step;
  s += ": ";
  s += reason;
  return s;
}

// True if something accepts connections on `path`; nullopt + err on other failures.
enum class Probe { listening, refused, other };
Probe probe(const std::string& path, int* err) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    *err = errno;
    return Probe::other;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  const int e = errno;
  ::close(fd);
  if (rc == 0 || e == EAGAIN || e == EINPROGRESS) return Probe::listening;  // EAGAIN: backlog full
  if (e == ECONNREFUSED) return Probe::refused;
  *err = e;
  return Probe::other;
}

}  // namespace

std::string control_socket_path_problem(const std::string& path) {
  if (path.empty() || path.front() != '/') {
    std::string s = "control socket path \"";
    s += path;
    s += "\" must be absolute";
    return s;
  }
  if (path.size() > kMaxSunPath) {
    std::string s = "control socket path ";
    s += path;
    s += " is longer than ";
    s += std::to_string(kMaxSunPath);
    s += " bytes";
    return s;
  }
  // Resolve the directory (symlinks, "..") so /run/x -> /tmp/y is caught too.
  std::error_code ec;
  const std::filesystem::path p(path);
  std::filesystem::path dir = std::filesystem::weakly_canonical(p.parent_path(), ec);
  if (ec) dir = p.parent_path().lexically_normal();
  for (const char* temp : {"/tmp", "/var/tmp", "/dev/shm"}) {
    const std::filesystem::path t(temp);
    auto [ti, di] = std::mismatch(t.begin(), t.end(), dir.begin(), dir.end());
    if (ti == t.end()) {
      std::string s = "control socket path ";
      s += path;
      s += " is under ";
      s += temp;
      s += " (world-writable: anyone could pre-create or replace it);";
      s += " use /run/vibgate/vibgate.sock";
      return s;
    }
  }
  return {};
}

struct ControlServer::State {
  struct Conn {
    explicit Conn(Local::socket s) : socket(std::move(s)), timer(socket.get_executor()) {}
    Local::socket socket;
    asio::steady_timer timer;
    bool timed_out = false;
    std::string peer;  // "pid P uid U" for log lines
  };

  State(asio::io_context& io_in, ControlHandler& handler_in)
      : io(io_in), handler(handler_in), acceptor(io_in) {}

  asio::io_context& io;
  ControlHandler& handler;
  Local::acceptor acceptor;
  ControlServerOptions options;
  std::string path;
  bool bound = false;
  bool closed = false;
  dev_t dev = 0;
  ino_t ino = 0;
  std::set<std::shared_ptr<Conn>> conns;
  ControlServerStats stats;

  // Closes the connection's socket if the operation started after this call does not finish
  // within the idle timeout.
  void arm(const std::shared_ptr<Conn>& c) {
    c->timer.expires_after(options.idle_timeout);
    c->timer.async_wait([c](const error_code& ec) {
      if (ec) return;  // cancelled: the operation finished
      c->timed_out = true;
      error_code ignored;
      c->socket.close(ignored);
    });
  }

  static asio::awaitable<void> accept_loop(std::shared_ptr<State> s);
  static asio::awaitable<void> serve(std::shared_ptr<State> s, std::shared_ptr<Conn> c);
};

asio::awaitable<void> ControlServer::State::accept_loop(std::shared_ptr<State> s) {
  for (;;) {
    error_code ec;
    Local::socket sock(s->io);
    co_await s->acceptor.async_accept(sock, asio::redirect_error(asio::use_awaitable, ec));
    if (s->closed || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // EMFILE and friends: log and back off instead of spinning.
      spdlog::warn("control socket {}: accept: {}", s->path, ec.message());
      asio::steady_timer pause(s->io, std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (s->closed) co_return;
      continue;
    }
    std::string peer = "unknown peer";
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(sock.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      peer = "pid ";
      peer += std::to_string(cred.pid);
      peer += " uid ";
      peer += std::to_string(cred.uid);
    }
    if (s->conns.size() >= s->options.max_clients) {
      ++s->stats.refused;
      spdlog::warn("control socket {}: refused client ({}): {} clients already connected", s->path,
                   peer, s->conns.size());
      ControlReply busy;
      busy.error = "vibgated is busy: too many control clients, try again";
      const std::string frame = encode_reply_frame(busy);
      // A fresh socket's send buffer is empty: a non-blocking write of a small frame never waits.
      sock.non_blocking(true, ec);
      asio::write(sock, asio::buffer(frame), ec);
      sock.close(ec);
      continue;
    }
    auto c = std::make_shared<Conn>(std::move(sock));
    c->peer = std::move(peer);
    s->conns.insert(c);
    ++s->stats.connections;
    asio::co_spawn(s->io, serve(s, c), asio::detached);
  }
}

asio::awaitable<void> ControlServer::State::serve(std::shared_ptr<State> s,
                                                  std::shared_ptr<Conn> c) {
  // One log line for why the connection ended abnormally; "" = normal end (EOF between frames,
  // or close()).
  std::string drop;
  bool bad_frame = false;
  try {
    std::array<char, kControlFrameHeader> header{};
    std::string body;
    for (;;) {
      error_code ec;
      s->arm(c);
      const std::size_t got = co_await asio::async_read(
          c->socket, asio::buffer(header), asio::redirect_error(asio::use_awaitable, ec));
      c->timer.cancel();
      if (s->closed) break;
      if (ec) {
        if (c->timed_out) {
          drop = "idle for ";
          drop += std::to_string(s->options.idle_timeout.count());
          drop += " ms";
        } else if (ec == asio::error::eof && got > 0) {
          drop = "truncated frame header";
          bad_frame = true;
        } else if (ec != asio::error::eof) {
          drop = "read: ";
          drop += ec.message();
        }
        break;
      }
      const std::uint32_t length = decode_frame_length({header.data(), header.size()});
      if (length == 0 || length > kMaxControlMessage) {
        drop = "bad frame length ";
        drop += std::to_string(length);
        drop += " (1..4194304)";
        bad_frame = true;
        break;
      }
      body.resize(length);
      s->arm(c);
      co_await asio::async_read(c->socket, asio::buffer(body),
                                asio::redirect_error(asio::use_awaitable, ec));
      c->timer.cancel();
      if (s->closed) break;
      if (ec) {
        if (c->timed_out) {
          drop = "frame body not received within ";
          drop += std::to_string(s->options.idle_timeout.count());
          drop += " ms";
        } else if (ec == asio::error::eof) {
          drop = "truncated frame (";
          drop += std::to_string(length);
          drop += " bytes announced)";
          bad_frame = true;
        } else {
          drop = "read: ";
          drop += ec.message();
        }
        break;
      }
      std::optional<ControlRequest> request = decode_request(body);
      if (!request) {
        drop = "unparsable request (";
        drop += std::to_string(length);
        drop += " bytes)";
        bad_frame = true;
        break;
      }
      ControlReply reply;
      try {
        reply = s->handler.handle(*request);
      } catch (const std::exception& e) {
        reply = ControlReply{};
        reply.error = e.what();
        spdlog::warn("control socket {}: {} request from {} failed: {}", s->path,
                     command_name(request->command), c->peer, e.what());
      }
      reply.id = request->id;
      std::string frame;
      try {
        frame = encode_reply_frame(reply);
      } catch (const std::length_error& e) {
        ControlReply too_big;
        too_big.id = request->id;
        too_big.error = e.what();
        frame = encode_reply_frame(too_big);
      }
      ++s->stats.requests;
      if (s->closed) break;
      s->arm(c);
      co_await asio::async_write(c->socket, asio::buffer(frame),
                                 asio::redirect_error(asio::use_awaitable, ec));
      c->timer.cancel();
      if (s->closed) break;
      if (ec) {
        if (c->timed_out) {
          drop = "did not read its reply within ";
          drop += std::to_string(s->options.idle_timeout.count());
          drop += " ms";
        } else if (ec != asio::error::broken_pipe && ec != asio::error::connection_reset) {
          drop = "write: ";
          drop += ec.message();
        }
        break;
      }
    }
  } catch (const std::exception& e) {
    drop = "internal error: ";
    drop += e.what();
  }
  if (!drop.empty()) {
    if (bad_frame) ++s->stats.dropped;
    if (c->timed_out) ++s->stats.idle_closed;
    spdlog::warn("control socket {}: dropped client ({}): {}", s->path, c->peer, drop);
  }
  error_code ignored;
  c->socket.close(ignored);
  c->timer.cancel();
  s->conns.erase(c);
}

ControlServer::ControlServer(asio::io_context& io, ControlHandler& handler)
    : state_(std::make_shared<State>(io, handler)) {}

ControlServer::~ControlServer() { close(); }

std::string ControlServer::listen(const std::string& path, const ControlServerOptions& options) {
  State& s = *state_;
  if (s.bound || s.closed) return fail(path, "listen", "listen() may be called once");
  if (!options.allow_temp_dirs) {
    if (std::string problem = control_socket_path_problem(path); !problem.empty()) return problem;
  }
  if (path.empty() || path.size() > kMaxSunPath) {
    return fail(path, "path", "empty or longer than 107 bytes");
  }
  if (options.max_clients == 0) return fail(path, "options", "max_clients must be >= 1");
  s.options = options;
  s.path = path;

  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode)) {
    std::string m = path;
    m += " exists and is not a socket (not removed)";
    return m;
  }

  error_code ec;
  s.acceptor.open(Local(), ec);
  if (ec) return fail(path, "socket", ec.message());
  const Local::endpoint endpoint(path);
  s.acceptor.bind(endpoint, ec);
  if (ec == asio::error::address_in_use) {
    int err = 0;
    switch (probe(path, &err)) {
      case Probe::listening: {
        error_code ignored;
        s.acceptor.close(ignored);
        std::string m = "another vibgated is running (socket ";
        m += path;
        m += ")";
        return m;
      }
      case Probe::refused:
        spdlog::info("control socket {}: removing stale socket file (nothing listening)", path);
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
          err = errno;
          error_code ignored;
          s.acceptor.close(ignored);
          return fail(path, "remove stale socket", errno_text(err));
        }
        ec.clear();
        s.acceptor.bind(endpoint, ec);
        break;
      case Probe::other: {
        error_code ignored;
        s.acceptor.close(ignored);
        return fail(path, "probe existing socket", errno_text(err));
      }
    }
  }
  if (ec) {
    error_code ignored;
    s.acceptor.close(ignored);
    return fail(path, "bind", ec.message());
  }
  // From here on the file is ours: remove it again on any failure.
  const auto undo = [&s, &path](const char* step, const std::string& reason) {
    error_code ignored;
    s.acceptor.close(ignored);
    ::unlink(path.c_str());
    return fail(path, step, reason);
  };
  if (::stat(path.c_str(), &st) != 0) return undo("stat", errno_text(errno));
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  if (::chmod(path.c_str(), static_cast<mode_t>(options.mode)) != 0) {
    return undo("chmod", errno_text(errno));
  }
  if (options.group) {
    group gr{};
    group* found = nullptr;
    std::vector<char> buf(16384);
    const int rc = ::getgrnam_r(options.group->c_str(), &gr, buf.data(), buf.size(), &found);
    if (rc != 0 || found == nullptr) {
      std::string reason = "unknown group \"";
      reason += *options.group;
      reason += "\"";
      return undo("group", reason);
    }
    if (::chown(path.c_str(), static_cast<uid_t>(-1), gr.gr_gid) != 0) {
      return undo("chown", errno_text(errno));
    }
  }
  s.acceptor.listen(kBacklog, ec);
  if (ec) return undo("listen", ec.message());
  s.bound = true;
  asio::co_spawn(s.io, State::accept_loop(state_), asio::detached);
  spdlog::info("control socket {}: listening (mode {:o}{}{})", path, options.mode,
               options.group ? ", group " : "", options.group ? *options.group : "");
  return {};
}

void ControlServer::close() {
  State& s = *state_;
  if (s.closed) return;
  s.closed = true;
  error_code ignored;
  s.acceptor.close(ignored);
  for (const auto& c : s.conns) {
    c->socket.close(ignored);
    c->timer.cancel();
  }
  s.conns.clear();
  if (s.bound) {
    // Only remove the file we created: if it was replaced meanwhile, it is someone else's.
    struct stat st {};
    if (::stat(s.path.c_str(), &st) == 0 && st.st_dev == s.dev && st.st_ino == s.ino) {
      ::unlink(s.path.c_str());
    }
  }
}

std::size_t ControlServer::active_clients() const { return state_->conns.size(); }

ControlServerStats ControlServer::stats() const { return state_->stats; }

}  // namespace vibgate::daemon
