// modbus_facade.cpp — the PLC-facing Modbus TCP server (see the header and docs/modbus-facade.md).
//
// The serving thread frames requests itself (MBAP header) on non-blocking sockets and checks
// each one completely — unit id, function, length, quantity, address — answering every failure
// with modbus_reply_exception(); only requests that are certain to succeed reach modbus_reply().
// That keeps libmodbus off its blocking paths (modbus_receive() waits for the rest of a partial
// frame; modbus_reply() sleeps and flushes the socket before some exceptions).
#include "vibgate/daemon/modbus_facade.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <modbus.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include <pthread.h>
#include <spdlog/spdlog.h>

namespace vibgate::daemon {
namespace {

using Clock = std::chrono::steady_clock;
namespace fm = facade_map;

constexpr std::size_t kHeader = 7;  // MBAP: transaction, protocol, length, unit id
constexpr std::size_t kMaxFrame = MODBUS_TCP_MAX_ADU_LENGTH;  // 260
constexpr std::uint8_t kExGatewayTarget = MODBUS_EXCEPTION_GATEWAY_TARGET;
constexpr int kMaxAcceptsPerTurn = 16;
constexpr auto kMaxPollWait = std::chrono::milliseconds(1000);
constexpr auto kAcceptPause = std::chrono::milliseconds(100);  // after EMFILE and the like

std::uint16_t get16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }

// Rounds a non-negative value to uint16, saturating; NaN and negatives give 0.
std::uint16_t saturate16(double v) {
  if (!(v > 0.0)) return 0;
  if (v >= 65535.0) return 65535;
  return static_cast<std::uint16_t>(std::lround(v));
}

void put32(std::uint16_t* r, std::uint32_t v) {  // ABCD: high word first
  r[0] = static_cast<std::uint16_t>(v >> 16);
  r[1] = static_cast<std::uint16_t>(v & 0xFFFF);
}

void put_f32(std::uint16_t* r, double v) {
  put32(r, std::bit_cast<std::uint32_t>(static_cast<float>(v)));
}

// Whole seconds since t, saturating at 65534; 65535 when t is the epoch (never).
std::uint16_t age_s(Clock::time_point t, Clock::time_point now) {
  if (t == Clock::time_point{}) return 65535;
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(now - t).count();
  return static_cast<std::uint16_t>(std::clamp<std::int64_t>(s, 0, 65534));
}

std::string peer_name(const sockaddr_in& a) {
  char host[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &a.sin_addr, host, sizeof host);
  std::string s = host;
  s += ':';
  s += std::to_string(ntohs(a.sin_port));
  return s;
}

// At most kBurst lines per minute about client misbehaviour, so a reconnecting scanner cannot
// flood the journal; the number left out is reported when the next minute starts.
class LogLimiter {
 public:
  bool allow(Clock::time_point now) {
    if (now - window_ >= std::chrono::minutes(1)) {
      if (suppressed_ > 0)
        spdlog::warn("modbus facade: {} similar messages suppressed in the last minute",
                     suppressed_);
      window_ = now;
      lines_ = 0;
      suppressed_ = 0;
    }
    if (lines_ < kBurst) {
      ++lines_;
      return true;
    }
    ++suppressed_;
    return false;
  }

 private:
  static constexpr int kBurst = 20;
  Clock::time_point window_{};
  int lines_ = 0;
  std::uint64_t suppressed_ = 0;
};

struct AssetSlot {
  AssetStatus status;
  Clock::time_point updated{};  // steady time of the last update(); epoch = never
  std::uint16_t updates = 0;
};

// Everything the other threads write; guarded by Impl::mu.
struct Shared {
  std::vector<AssetSlot> assets;
  GatewayHealth health;
  Clock::time_point health_at{};
  std::uint16_t heartbeat = 0;
  Clock::time_point beat_at{};
};

struct Client {
  int fd = -1;
  std::string peer;
  std::array<std::uint8_t, 2 * kMaxFrame> buf{};
  std::size_t len = 0;
  Clock::time_point last_rx{};
};

// "a.b.c.d" or "a.b.c.d/n" -> (network, mask) in host byte order; nullopt when malformed.
std::optional<std::pair<std::uint32_t, std::uint32_t>> parse_ipv4_net(const std::string& text) {
  const auto slash = text.find('/');
  const std::string addr = text.substr(0, slash);
  in_addr a{};
  if (inet_pton(AF_INET, addr.c_str(), &a) != 1) return std::nullopt;
  int bits = 32;
  if (slash != std::string::npos) {
    const std::string n = text.substr(slash + 1);
    if (n.empty() || n.size() > 2 || !std::all_of(n.begin(), n.end(), ::isdigit))
      return std::nullopt;
    bits = std::stoi(n);
    if (bits > 32) return std::nullopt;
  }
  const std::uint32_t mask = bits == 0 ? 0u : ~std::uint32_t{0} << (32 - bits);
  return std::make_pair(ntohl(a.s_addr) & mask, mask);
}

}  // namespace

std::string validate_allow(const std::vector<std::string>& allow) {
  for (const auto& net : allow) {
    if (!parse_ipv4_net(net)) {
      std::string e = "'";
      e += net;
      e += "' is not an IPv4 address or network (\"10.0.0.7\", \"10.0.0.0/24\")";
      return e;
    }
  }
  return "";
}

std::string validate(const FacadeConfig& c) {
  if (std::string e = validate_allow(c.allow); !e.empty()) return "modbus_facade.allow: " + e;
  in_addr a{};
  if (inet_pton(AF_INET, c.bind_address.c_str(), &a) != 1) {
    std::string e = "modbus_facade.bind: '";
    e += c.bind_address;
    e += "' is not an IPv4 address";
    return e;
  }
  if (c.port == 0) return "modbus_facade.port: must be 1..65535";
  if (c.unit_id < 1 || c.unit_id > 247) return "modbus_facade.unit_id: must be 1..247";
  if (c.max_clients < 1 || c.max_clients > 64) return "modbus_facade.max_clients: must be 1..64";
  if (c.idle_timeout < std::chrono::milliseconds(100) || c.idle_timeout > std::chrono::hours(24))
    return "modbus_facade.idle_timeout_s: must be 0.1..86400";
  // No assets (a gateway that only polls tags) is fine: the facade then serves the health block.
  if (c.assets.size() > fm::kMaxAssets)
    return "modbus_facade.assets: at most 62 (16 registers each below the health block at 1000)";
  std::set<std::string> seen;
  for (const auto& name : c.assets) {
    if (name.empty()) return "modbus_facade.assets: empty asset name";
    if (!seen.insert(name).second) {
      std::string e = "modbus_facade.assets: '";
      e += name;
      e += "' appears twice";
      return e;
    }
  }
  return "";
}

struct ModbusFacade::Impl {
  explicit Impl(FacadeConfig c) : cfg(std::move(c)) {
    shared.assets.resize(cfg.assets.size());
    snapshot.assets.resize(cfg.assets.size());
  }

  FacadeConfig cfg;
  mutable std::mutex mu;
  Shared shared;  // guarded by mu

  std::atomic<std::uint64_t> connections{0}, refused{0}, not_allowed{0}, dropped{0}, idle_closed{0},
      requests{0}, exceptions{0};
  std::vector<std::pair<std::uint32_t, std::uint32_t>> allow;  // parsed cfg.allow (empty: any)

  // Serving thread only (set up by start() before the thread exists).
  std::thread thread;
  modbus_t* ctx = nullptr;
  modbus_mapping_t* map = nullptr;
  int listen_fd = -1;
  int wake_fd = -1;
  std::uint16_t bound_port = 0;
  std::string where;  // "address:port"
  Clock::time_point started{};
  Shared snapshot;
  std::vector<std::unique_ptr<Client>> clients;
  Clock::time_point accept_paused_until{};
  LogLimiter log_limit;

  std::string open();
  void close_all();
  void run();
  void accept_pending(Clock::time_point now);
  void add_client(int fd, const sockaddr_in& peer, Clock::time_point now);
  void close_client(Client& c, const char* why, bool log);
  bool serve(Client& c, Clock::time_point now);
  bool answer(Client& c, const std::uint8_t* frame, std::size_t len);
  unsigned check(const std::uint8_t* frame, std::size_t len) const;
  void render(Clock::time_point now);
};

std::string ModbusFacade::Impl::open() {
  where = cfg.bind_address;
  where += ':';
  where += std::to_string(cfg.port);
  auto fail = [&](int err) {
    std::string e = "modbus_facade: cannot listen on ";
    e += where;
    e += ": ";
    e += std::strerror(err);
    close_all();
    return e;
  };
  ctx = modbus_new_tcp(cfg.bind_address.c_str(), cfg.port);
  if (!ctx) return fail(errno);
  // Never reached with the checks done before modbus_reply(); keeps any libmodbus sleep tiny.
  modbus_set_response_timeout(ctx, 0, 1000);
  const auto nbits = static_cast<unsigned>(cfg.assets.size() * fm::kCoilsPerAsset);
  const unsigned nregs = fm::kHealthBase + fm::kHealthRegisters;
  map = modbus_mapping_new_start_address(0, nbits, 0, nbits, 0, nregs, 0, nregs);
  if (!map) return fail(errno);
  listen_fd = modbus_tcp_listen(ctx, 16);
  if (listen_fd < 0) return fail(errno);
  if (::fcntl(listen_fd, F_SETFL, ::fcntl(listen_fd, F_GETFL) | O_NONBLOCK) != 0)
    return fail(errno);
  wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) return fail(errno);
  sockaddr_in bound{};
  socklen_t blen = sizeof bound;
  if (::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&bound), &blen) != 0) return fail(errno);
  bound_port = ntohs(bound.sin_port);
  started = Clock::now();
  return "";
}

void ModbusFacade::Impl::close_all() {
  for (auto& c : clients)
    if (c->fd >= 0) ::close(c->fd);
  clients.clear();
  if (listen_fd >= 0) ::close(listen_fd);
  if (wake_fd >= 0) ::close(wake_fd);
  listen_fd = wake_fd = -1;
  if (map) modbus_mapping_free(map);
  map = nullptr;
  if (ctx) {
    modbus_set_socket(ctx, -1);
    modbus_free(ctx);
  }
  ctx = nullptr;
}

void ModbusFacade::Impl::run() {
  std::vector<pollfd> fds;
  for (;;) {
    const auto now = Clock::now();
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(kMaxPollWait);
    for (const auto& c : clients)
      wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(
                                c->last_rx + cfg.idle_timeout - now) +
                                std::chrono::milliseconds(1));
    const bool accepting = now >= accept_paused_until;
    if (!accepting)
      wait = std::min(
          wait, std::chrono::duration_cast<std::chrono::milliseconds>(accept_paused_until - now) +
                    std::chrono::milliseconds(1));
    wait = std::max(wait, std::chrono::milliseconds(0));

    fds.clear();
    fds.push_back({wake_fd, POLLIN, 0});
    fds.push_back({accepting ? listen_fd : -1, POLLIN, 0});  // negative fd: ignored by poll()
    for (const auto& c : clients) fds.push_back({c->fd, POLLIN, 0});
    const int n = ::poll(fds.data(), fds.size(), static_cast<int>(wait.count()));
    if (n < 0 && errno != EINTR) {
      spdlog::error("modbus facade: poll: {}; serving thread ends", std::strerror(errno));
      break;
    }
    if (fds[0].revents != 0) break;  // stop()
    const auto t = Clock::now();
    if (n > 0) {
      for (std::size_t i = 0; i < clients.size(); ++i) {
        if (fds[2 + i].revents != 0) serve(*clients[i], t);
      }
      if (fds[1].revents != 0) accept_pending(t);
    }
    for (auto& c : clients) {
      if (c->fd >= 0 && t - c->last_rx >= cfg.idle_timeout) {
        ++idle_closed;
        close_client(*c, "idle timeout: closed", false);
      }
    }
    std::erase_if(clients, [](const std::unique_ptr<Client>& c) { return c->fd < 0; });
  }
}

void ModbusFacade::Impl::accept_pending(Clock::time_point now) {
  for (int k = 0; k < kMaxAcceptsPerTurn; ++k) {
    sockaddr_in peer{};
    socklen_t plen = sizeof peer;
    const int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&peer), &plen,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // EMFILE, ENFILE, ENOBUFS...: the connection stays queued; pause instead of spinning.
      if (log_limit.allow(now))
        spdlog::warn("modbus facade: accept on {}: {}", where, std::strerror(errno));
      accept_paused_until = now + kAcceptPause;
      return;
    }
    if (!allow.empty()) {
      const std::uint32_t ip = ntohl(peer.sin_addr.s_addr);
      const bool ok = std::any_of(allow.begin(), allow.end(),
                                  [ip](const auto& n) { return (ip & n.second) == n.first; });
      if (!ok) {
        ++not_allowed;
        if (log_limit.allow(now))
          spdlog::warn("modbus facade: {}: refused {}: not in modbus_facade.allow", where,
                       peer_name(peer));
        ::close(fd);
        continue;
      }
    }
    if (clients.size() < cfg.max_clients) {
      add_client(fd, peer, now);
      continue;
    }
    ++refused;
    if (log_limit.allow(now))
      spdlog::warn("modbus facade: {}: refused {}: already {} clients (max_clients)", where,
                   peer_name(peer), clients.size());
    ::close(fd);
  }
}

void ModbusFacade::Impl::add_client(int fd, const sockaddr_in& peer, Clock::time_point now) {
  const int on = 1;  // answers leave at once instead of waiting for Nagle's timer
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  clients.push_back(std::make_unique<Client>());
  Client& c = *clients.back();
  c.fd = fd;
  c.peer = peer_name(peer);
  c.last_rx = now;
  ++connections;
  spdlog::debug("modbus facade: {}: connection from {}", where, c.peer);
}

void ModbusFacade::Impl::close_client(Client& c, const char* why, bool log) {
  if (log && log_limit.allow(Clock::now()))
    spdlog::warn("modbus facade: {}: client {} {}", where, c.peer, why);
  else
    spdlog::debug("modbus facade: {}: client {} {}", where, c.peer, why);
  ::close(c.fd);
  c.fd = -1;
}

// One recv() per readiness (poll() is level-triggered, so the rest comes next turn and every
// client gets its turn), then every complete request in the buffer is answered in order.
// Returns false when the client was closed.
bool ModbusFacade::Impl::serve(Client& c, Clock::time_point now) {
  const ssize_t n = ::recv(c.fd, c.buf.data() + c.len, c.buf.size() - c.len, 0);
  if (n == 0) {
    close_client(c, "closed the connection", false);
    return false;
  }
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return true;
    close_client(c, std::strerror(errno), false);
    return false;
  }
  c.len += static_cast<std::size_t>(n);
  c.last_rx = now;
  std::size_t off = 0;
  while (c.len - off >= kHeader) {
    const std::uint8_t* f = c.buf.data() + off;
    const std::size_t body = get16(f + 4);  // unit id + PDU
    // Not Modbus/TCP: a protocol id other than 0, an impossible length, or a response (function
    // code with the exception bit) where a request belongs. The stream cannot be resynchronized.
    if (get16(f + 2) != 0 || body < 2 || body > kMaxFrame - 6 || f[7] >= 0x80) {
      ++dropped;
      close_client(c, "sent data that is not a Modbus/TCP request: disconnected", true);
      return false;
    }
    if (c.len - off < 6 + body) break;
    if (!answer(c, f, 6 + body)) return false;
    off += 6 + body;
  }
  std::memmove(c.buf.data(), c.buf.data() + off, c.len - off);  // < one frame (buffer holds 2)
  c.len -= off;
  return true;
}

// The exception code a complete request must be answered with, or 0 when modbus_reply() can
// serve it from the mapping. Order as in the Modbus application protocol: unit, function,
// quantity/length, address.
unsigned ModbusFacade::Impl::check(const std::uint8_t* f, std::size_t len) const {
  const std::uint8_t unit = f[6];
  if (unit != cfg.unit_id && unit != 0 && unit != 255) return kExGatewayTarget;
  const std::uint8_t fc = f[7];
  const bool bits = fc == MODBUS_FC_READ_COILS || fc == MODBUS_FC_READ_DISCRETE_INPUTS;
  const bool regs = fc == MODBUS_FC_READ_HOLDING_REGISTERS || fc == MODBUS_FC_READ_INPUT_REGISTERS;
  if (!bits && !regs) return MODBUS_EXCEPTION_ILLEGAL_FUNCTION;  // every write included
  if (len != kHeader + 5) return MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
  const unsigned addr = get16(f + 8), qty = get16(f + 10);
  const unsigned max_qty = bits ? MODBUS_MAX_READ_BITS : MODBUS_MAX_READ_REGISTERS;
  if (qty < 1 || qty > max_qty) return MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
  const unsigned end = addr + qty;
  if (bits)
    return end <= cfg.assets.size() * fm::kCoilsPerAsset ? 0
                                                         : MODBUS_EXCEPTION_ILLEGAL_DATA_ADDRESS;
  const bool in_assets = end <= cfg.assets.size() * fm::kBlockRegisters;
  const bool in_health = addr >= fm::kHealthBase && end <= fm::kHealthBase + fm::kHealthRegisters;
  return in_assets || in_health ? 0 : MODBUS_EXCEPTION_ILLEGAL_DATA_ADDRESS;
}

bool ModbusFacade::Impl::answer(Client& c, const std::uint8_t* f, std::size_t len) {
  std::array<std::uint8_t, kMaxFrame> req{};  // libmodbus reads at fixed offsets: zero-padded
  std::memcpy(req.data(), f, len);
  ++requests;
  modbus_set_socket(ctx, c.fd);
  int rc = 0;
  if (const unsigned ex = check(req.data(), len); ex != 0) {
    ++exceptions;
    rc = modbus_reply_exception(ctx, req.data(), ex);
  } else {
    render(Clock::now());
    rc = modbus_reply(ctx, req.data(), static_cast<int>(len), map);
  }
  modbus_set_socket(ctx, -1);
  if (rc < 0) {  // send failed or would block: the client does not read its answers
    close_client(c, "could not be sent its answer: disconnected", true);
    return false;
  }
  return true;
}

// Copies the shared values under the lock, then writes the whole map from the copy (both
// register tables, both bit tables); the ages are computed here, at read time.
void ModbusFacade::Impl::render(Clock::time_point now) {
  {
    std::lock_guard lock(mu);
    std::copy(shared.assets.begin(), shared.assets.end(), snapshot.assets.begin());
    snapshot.health = shared.health;
    snapshot.health_at = shared.health_at;
    snapshot.heartbeat = shared.heartbeat;
    snapshot.beat_at = shared.beat_at;
  }
  std::uint16_t* const ir = map->tab_input_registers;
  for (std::size_t i = 0; i < snapshot.assets.size(); ++i) {
    const AssetSlot& a = snapshot.assets[i];
    const AssetStatus& s = a.status;
    std::uint16_t* r = ir + i * fm::kBlockRegisters;
    std::fill(r, r + fm::kBlockRegisters, std::uint16_t{0});
    const std::uint8_t level = std::min<std::uint8_t>(s.alarm_level, 2);
    r[fm::kScoreX1000] = saturate16(s.score * 1000.0);
    r[fm::kAlarmLevel] = level;
    r[fm::kIsoZone] = std::min<std::uint8_t>(s.iso_zone, 4);
    r[fm::kVrmsX100] = saturate16(s.velocity_rms_mm_s * 100.0);
    put_f32(r + fm::kVrmsF32, s.velocity_rms_mm_s);
    r[fm::kModelState] = std::min<std::uint8_t>(static_cast<std::uint8_t>(s.model_state), 3);
    r[fm::kAgeS] = age_s(a.updated, now);
    r[fm::kHeartbeat] = snapshot.heartbeat;
    r[fm::kUpdateCount] = a.updates;
    r[fm::kAcknowledged] = s.alert_acknowledged ? 1 : 0;
    put_f32(r + fm::kScoreF32, s.score);
    const auto unix_s =
        std::chrono::duration_cast<std::chrono::seconds>(s.window_end.time_since_epoch()).count();
    put32(r + fm::kWindowTime,
          static_cast<std::uint32_t>(std::clamp<std::int64_t>(unix_s, 0, 0xFFFFFFFF)));
    map->tab_bits[i * 2] = map->tab_input_bits[i * 2] = level >= 1 ? 1 : 0;
    map->tab_bits[i * 2 + 1] = map->tab_input_bits[i * 2 + 1] = level >= 2 ? 1 : 0;
  }
  std::uint16_t* h = ir + fm::kHealthBase;
  std::fill(h, h + fm::kHealthRegisters, std::uint16_t{0});
  const auto up = std::chrono::duration_cast<std::chrono::seconds>(now - started).count();
  put32(h + fm::kUptimeS, static_cast<std::uint32_t>(std::clamp<std::int64_t>(up, 0, 0xFFFFFFFF)));
  h[fm::kHealthHeartbeat] = snapshot.heartbeat;
  h[fm::kBeatAgeS] = age_s(snapshot.beat_at, now);
  h[fm::kStorageOk] = snapshot.health.storage_ok ? 1 : 0;
  h[fm::kUplinkConnected] = snapshot.health.uplink_connected ? 1 : 0;
  put32(h + fm::kOutboxDepth, static_cast<std::uint32_t>(std::min<std::uint64_t>(
                                  snapshot.health.outbox_depth, 0xFFFFFFFF)));
  h[fm::kAssetCount] = static_cast<std::uint16_t>(snapshot.assets.size());
  h[fm::kMapVersion] = fm::kVersion;
  h[fm::kHealthAgeS] = age_s(snapshot.health_at, now);
  h[fm::kUnitId] = cfg.unit_id;
  std::copy(ir, ir + fm::kHealthBase + fm::kHealthRegisters, map->tab_registers);
}

ModbusFacade::ModbusFacade(FacadeConfig config)
    : impl_(std::make_unique<Impl>(std::move(config))) {}

ModbusFacade::~ModbusFacade() { stop(); }

std::string ModbusFacade::start() {
  if (impl_->thread.joinable() || impl_->ctx) return "modbus_facade: already started";
  if (std::string e = validate(impl_->cfg); !e.empty()) return e;
  impl_->allow.clear();
  for (const auto& net : impl_->cfg.allow) impl_->allow.push_back(*parse_ipv4_net(net));
  if (std::string e = impl_->open(); !e.empty()) return e;
  impl_->thread = std::thread([this] {
    pthread_setname_np(pthread_self(), "vg-facade");
    impl_->run();
  });
  spdlog::info("modbus facade: serving {} asset(s) on {} unit {} (read-only, map version {}, {})",
               impl_->cfg.assets.size(), impl_->where, impl_->cfg.unit_id, fm::kVersion,
               impl_->allow.empty() ? std::string("any client")
                                    : std::to_string(impl_->allow.size()) + " allowed network(s)");
  return "";
}

void ModbusFacade::stop() {
  if (impl_->thread.joinable()) {
    const std::uint64_t one = 1;
    if (::write(impl_->wake_fd, &one, sizeof one) < 0)
      spdlog::error("modbus facade: cannot wake the serving thread: {}", std::strerror(errno));
    impl_->thread.join();
  }
  impl_->close_all();
}

std::uint16_t ModbusFacade::port() const { return impl_->bound_port; }

bool ModbusFacade::update(std::size_t asset, const AssetStatus& status) {
  const auto now = Clock::now();
  std::lock_guard lock(impl_->mu);
  if (asset >= impl_->shared.assets.size()) return false;
  AssetSlot& a = impl_->shared.assets[asset];
  a.status = status;
  a.updated = now;
  ++a.updates;
  return true;
}

void ModbusFacade::set_health(const GatewayHealth& health) {
  const auto now = Clock::now();
  std::lock_guard lock(impl_->mu);
  impl_->shared.health = health;
  impl_->shared.health_at = now;
}

void ModbusFacade::beat() {
  const auto now = Clock::now();
  std::lock_guard lock(impl_->mu);
  ++impl_->shared.heartbeat;
  impl_->shared.beat_at = now;
}

std::chrono::steady_clock::time_point ModbusFacade::last_update(std::size_t asset) const {
  std::lock_guard lock(impl_->mu);
  return asset < impl_->shared.assets.size() ? impl_->shared.assets[asset].updated
                                             : Clock::time_point{};
}

FacadeStats ModbusFacade::stats() const {
  const Impl& i = *impl_;
  FacadeStats s;
  s.connections = i.connections.load();
  s.refused = i.refused.load();
  s.not_allowed = i.not_allowed.load();
  s.dropped = i.dropped.load();
  s.idle_closed = i.idle_closed.load();
  s.requests = i.requests.load();
  s.exceptions = i.exceptions.load();
  return s;
}

}  // namespace vibgate::daemon
