// modbus_server.cpp — non-blocking Modbus TCP serving for the simulator (see the header for the
// design: own MBAP framing on non-blocking sockets, libmodbus modbus_reply() for the answers).
#include "modbus_server.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace vibgate::sim {
namespace {

constexpr std::size_t kMbapBytes = 7;  // transaction, protocol, length, unit id
constexpr int kMaxReadsPerService = 4;  // per client per loop turn (fairness)
constexpr int kMaxAcceptsPerService = 64;

std::string endpoint(const sockaddr_storage& a) {
  char host[INET6_ADDRSTRLEN] = "?";
  std::uint16_t port = 0;
  if (a.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&a);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
  }
  return std::string(host) + ":" + std::to_string(port);
}

std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }

// Checks a request PDU the way libmodbus would, so that modbus_reply() never takes its
// "sleep response timeout and flush" path. Returns 0 when it may be passed on, else the
// exception code to answer with.
unsigned int check_pdu(const std::uint8_t* pdu, std::size_t len) {
  const std::uint8_t fc = pdu[0];
  auto quantity_ok = [&](std::size_t expected_len, unsigned int lo, unsigned int hi) {
    if (len != expected_len) return false;
    const unsigned int nb = be16(pdu + 3);
    return nb >= lo && nb <= hi;
  };
  switch (fc) {
    case MODBUS_FC_READ_COILS:
    case MODBUS_FC_READ_DISCRETE_INPUTS:
      return quantity_ok(5, 1, MODBUS_MAX_READ_BITS) ? 0 : MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
    case MODBUS_FC_READ_HOLDING_REGISTERS:
    case MODBUS_FC_READ_INPUT_REGISTERS:
      return quantity_ok(5, 1, MODBUS_MAX_READ_REGISTERS) ? 0 : MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
    case MODBUS_FC_WRITE_SINGLE_COIL:
    case MODBUS_FC_WRITE_SINGLE_REGISTER:
      return len == 5 ? 0 : MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
    case MODBUS_FC_WRITE_MULTIPLE_COILS: {
      if (len < 6) return MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
      const unsigned int nb = be16(pdu + 3), bytes = pdu[5];
      const bool ok = nb >= 1 && nb <= MODBUS_MAX_WRITE_BITS && bytes == (nb + 7) / 8 && len == 6 + bytes;
      return ok ? 0 : MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
    }
    case MODBUS_FC_WRITE_MULTIPLE_REGISTERS: {
      if (len < 6) return MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
      const unsigned int nb = be16(pdu + 3), bytes = pdu[5];
      const bool ok = nb >= 1 && nb <= MODBUS_MAX_WRITE_REGISTERS && bytes == 2 * nb && len == 6 + bytes;
      return ok ? 0 : MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
    }
    case MODBUS_FC_MASK_WRITE_REGISTER:
      return len == 7 ? 0 : MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
    case MODBUS_FC_WRITE_AND_READ_REGISTERS: {
      if (len < 10) return MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
      const unsigned int nr = be16(pdu + 3), nw = be16(pdu + 7), bytes = pdu[9];
      const bool ok = nr >= 1 && nr <= MODBUS_MAX_WR_READ_REGISTERS && nw >= 1 &&
                      nw <= MODBUS_MAX_WR_WRITE_REGISTERS && bytes == 2 * nw && len == 10 + bytes;
      return ok ? 0 : MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
    }
    case MODBUS_FC_REPORT_SLAVE_ID:
      return len == 1 ? 0 : MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
    default:
      return MODBUS_EXCEPTION_ILLEGAL_FUNCTION;
  }
}

}  // namespace

ModbusServer::ModbusServer(bool verbose) : verbose_(verbose) {
  ctx_ = modbus_new_tcp("127.0.0.1", 502);
  if (!ctx_) throw std::runtime_error(std::string("libmodbus: ") + modbus_strerror(errno));
  // modbus_reply() may sleep for the response timeout before an exception; make that ~nothing
  // (check_pdu() already keeps those paths unreachable).
  modbus_set_response_timeout(ctx_, 0, 1);
}

ModbusServer::~ModbusServer() {
  for (auto& c : clients_)
    if (c->fd >= 0) ::close(c->fd);
  for (auto& l : listeners_) ::close(l.fd);
  modbus_set_socket(ctx_, -1);
  modbus_free(ctx_);
}

std::uint16_t ModbusServer::listen(const std::string& address, std::uint16_t port,
                                   const std::vector<UnitImage*>& units) {
  const std::string where = address + ":" + std::to_string(port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port_s = std::to_string(port);
  if (const int rc = getaddrinfo(address.c_str(), port_s.c_str(), &hints, &res); rc != 0)
    throw std::runtime_error("cannot listen on " + where + ": " + gai_strerror(rc));
  const int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(res);
    throw std::runtime_error("cannot listen on " + where + ": " + std::strerror(errno));
  }
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 128) != 0) {
    const int e = errno;
    freeaddrinfo(res);
    ::close(fd);
    throw std::runtime_error("cannot listen on " + where + ": " + std::strerror(e));
  }
  freeaddrinfo(res);
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  Listener l;
  l.fd = fd;
  for (UnitImage* u : units) l.units.at(static_cast<std::size_t>(u->id())) = u;
  const std::uint16_t actual = bound.ss_family == AF_INET6
                                   ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                   : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  l.name = address + ":" + std::to_string(actual);
  listeners_.push_back(std::move(l));
  return actual;
}

void ModbusServer::collect(std::vector<pollfd>& fds) const {
  for (const auto& l : listeners_) fds.push_back({l.fd, POLLIN, 0});
  for (const auto& c : clients_) fds.push_back({c->fd, POLLIN, 0});
}

void ModbusServer::service(std::span<const pollfd> fds) {
  const std::size_t nl = listeners_.size();
  const std::size_t nc = std::min(clients_.size(), fds.size() - std::min(fds.size(), nl));
  for (std::size_t i = 0; i < nl && i < fds.size(); ++i)
    if (fds[i].revents & POLLIN) accept_all(i);
  bool closed = false;
  for (std::size_t i = 0; i < nc; ++i) {
    Client& c = *clients_[i];
    if (fds[nl + i].revents == 0 || c.fd != fds[nl + i].fd) continue;
    if (!serve_client(c)) closed = true;
  }
  if (closed)
    std::erase_if(clients_, [](const std::unique_ptr<Client>& c) { return c->fd < 0; });
}

void ModbusServer::accept_all(std::size_t li) {
  for (int k = 0; k < kMaxAcceptsPerService; ++k) {
    sockaddr_storage peer{};
    socklen_t plen = sizeof peer;
    const int fd = ::accept4(listeners_[li].fd, reinterpret_cast<sockaddr*>(&peer), &plen,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        std::fprintf(stderr, "vibgate-sim: accept on %s: %s\n", listeners_[li].name.c_str(), std::strerror(errno));
      return;
    }
    if (clients_.size() >= kMaxClients) {
      ++stats_.refused;
      ::close(fd);
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto c = std::make_unique<Client>();
    c->fd = fd;
    c->listener = li;
    c->peer = endpoint(peer);
    ++stats_.connections;
    if (verbose_)
      std::fprintf(stderr, "vibgate-sim: %s: connection from %s\n", listeners_[li].name.c_str(), c->peer.c_str());
    clients_.push_back(std::move(c));
  }
}

void ModbusServer::close_client(Client& c, const char* why) {
  if (verbose_)
    std::fprintf(stderr, "vibgate-sim: %s: %s %s\n", listeners_[c.listener].name.c_str(), c.peer.c_str(), why);
  ::close(c.fd);
  c.fd = -1;
}

bool ModbusServer::serve_client(Client& c) {
  for (int reads = 0; reads < kMaxReadsPerService; ++reads) {
    const std::size_t space = c.buf.size() - c.len;  // >= one maximal ADU (buffer holds 3+)
    const ssize_t n = ::recv(c.fd, c.buf.data() + c.len, space, 0);
    if (n == 0) {
      close_client(c, "closed the connection");
      return false;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      close_client(c, std::strerror(errno));
      return false;
    }
    c.len += static_cast<std::size_t>(n);
    // Answer every complete request in the buffer.
    std::size_t off = 0;
    while (c.len - off >= kMbapBytes) {
      const std::uint8_t* p = c.buf.data() + off;
      const std::size_t length = be16(p + 4);  // unit id + PDU
      if (be16(p + 2) != 0 || length < 2 || length > MODBUS_TCP_MAX_ADU_LENGTH - 6) {
        ++stats_.protocol_errors;
        close_client(c, "sent a malformed MBAP header: closed");
        return false;
      }
      const std::size_t total = 6 + length;
      if (c.len - off < total) break;
      if (!answer(c, p, total)) return false;
      off += total;
    }
    std::memmove(c.buf.data(), c.buf.data() + off, c.len - off);
    c.len -= off;
    if (static_cast<std::size_t>(n) < space) return true;  // drained for now
  }
  return true;
}

bool ModbusServer::answer(Client& c, const std::uint8_t* adu, std::size_t len) {
  // libmodbus reads requests at fixed offsets: give it a zero-padded buffer of maximal size.
  std::uint8_t req[MODBUS_TCP_MAX_ADU_LENGTH] = {};
  std::memcpy(req, adu, len);
  ++stats_.requests;
  modbus_set_socket(ctx_, c.fd);
  UnitImage* unit = listeners_[c.listener].units[req[6]];
  int rc = 0;
  if (!unit) {
    ++stats_.unknown_unit;
    rc = modbus_reply_exception(ctx_, req, MODBUS_EXCEPTION_GATEWAY_TARGET);
  } else if (const unsigned int ex = check_pdu(req + kMbapBytes, len - kMbapBytes); ex != 0) {
    ++stats_.rejected;
    rc = modbus_reply_exception(ctx_, req, ex);
  } else {
    rc = modbus_reply(ctx_, req, static_cast<int>(len), unit->mapping());
  }
  modbus_set_socket(ctx_, -1);
  if (rc < 0) {
    close_client(c, "could not be answered (send failed): closed");
    return false;
  }
  return true;
}

}  // namespace vibgate::sim
