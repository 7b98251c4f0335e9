// modbus_server.hpp — the simulator's Modbus TCP server: any number of listening sockets, each
// serving one or more unit ids, and any number of client connections, on one thread without a
// thread per connection.
//
// The event loop (sim_main.cpp) poll()s the sockets collect() returns and hands the ready ones to
// service(). Sockets are non-blocking; requests are framed here (MBAP header) and answered with
// libmodbus's modbus_reply() on the unit's mapping, so a slow or half-sent request never stalls
// other clients (modbus_receive() would wait for the rest of a partial request). Requests libmodbus
// would answer by sleeping and flushing (bad quantities, unknown functions) are rejected here with
// an exception response first. A unit id not configured on the listener gets exception 0x0B
// (gateway target device failed to respond), like a TCP/RTU gateway with nothing at that address.
#pragma once

#include <modbus.h>
#include <poll.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "unit_image.hpp"

namespace vibgate::sim {

struct ServerStats {
  std::uint64_t connections = 0;        // accepted
  std::uint64_t refused = 0;            // closed at once: too many clients
  std::uint64_t requests = 0;           // complete requests answered (normal or exception)
  std::uint64_t unknown_unit = 0;       // answered with exception 0x0B
  std::uint64_t rejected = 0;           // answered with exception 0x01/0x03 before libmodbus
  std::uint64_t protocol_errors = 0;    // connections closed for a malformed MBAP header
};

class ModbusServer {
 public:
  static constexpr std::size_t kMaxClients = 4096;

  // verbose: one stderr line per connection opened/closed. Throws std::runtime_error when
  // libmodbus cannot create its context.
  explicit ModbusServer(bool verbose);
  ~ModbusServer();
  ModbusServer(const ModbusServer&) = delete;
  ModbusServer& operator=(const ModbusServer&) = delete;

  // Listens on address:port (numeric IPv4/IPv6; port 0 = the system picks) and serves `units`
  // there (owned by the caller, must outlive the server). Returns the bound port.
  // Throws std::runtime_error "cannot listen on <address>:<port>: <reason>".
  std::uint16_t listen(const std::string& address, std::uint16_t port, const std::vector<UnitImage*>& units);

  // Appends one pollfd per listening socket, then one per client, for the loop's poll().
  void collect(std::vector<pollfd>& fds) const;
  // Handles the entries collect() appended (same order, revents filled by poll()): accepts new
  // clients, reads available bytes, answers every complete request. Never blocks.
  void service(std::span<const pollfd> fds);

  std::size_t clients() const { return clients_.size(); }
  const ServerStats& stats() const { return stats_; }

 private:
  struct Listener {
    int fd = -1;
    std::string name;                          // "address:port"
    std::array<UnitImage*, 256> units{};       // by unit id; null: not served here
  };
  struct Client {
    int fd = -1;
    std::size_t listener = 0;
    std::string peer;
    std::array<std::uint8_t, 1024> buf{};
    std::size_t len = 0;
  };

  void accept_all(std::size_t listener);
  // Reads and answers; false when the connection must be closed.
  bool serve_client(Client& c);
  bool answer(Client& c, const std::uint8_t* adu, std::size_t len);
  void close_client(Client& c, const char* why);

  bool verbose_;
  modbus_t* ctx_ = nullptr;  // only used to build and send replies (socket set per reply)
  std::vector<Listener> listeners_;
  std::vector<std::unique_ptr<Client>> clients_;
  ServerStats stats_;
};

}  // namespace vibgate::sim
