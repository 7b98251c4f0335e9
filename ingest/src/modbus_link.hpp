// modbus_link.hpp (private) — a blocking Modbus master connection over libmodbus, TCP or RTU.
//
// Used only on a bus worker thread, never on the event loop. Every call returns an error string
// ("" on success) instead of throwing; libmodbus types stay inside modbus_link.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "vibgate/ingest/config.hpp"

namespace vibgate::ingest::detail {

class ModbusLink {
 public:
  static ModbusLink tcp(const std::string& host, std::uint16_t port);
  static ModbusLink rtu(const SerialLineConfig& line);
  ModbusLink(ModbusLink&&) noexcept;
  ModbusLink& operator=(ModbusLink&&) noexcept;
  ~ModbusLink();

  // Opens the connection (TCP connect / open the tty) if not open. Thread: the bus worker.
  std::string ensure_connected(std::chrono::milliseconds timeout);
  void close();
  bool connected() const { return connected_; }

  // One request each; on failure the error names the cause (timeout, Modbus exception text).
  // A timeout or a broken connection also closes the link, so the next call reconnects.
  std::string read_bits(int unit, RegisterType reg, std::uint16_t addr, std::uint16_t count,
                        std::vector<std::uint8_t>& out, std::chrono::milliseconds timeout);
  std::string read_registers(int unit, RegisterType reg, std::uint16_t addr, std::uint16_t count,
                             std::vector<std::uint16_t>& out, std::chrono::milliseconds timeout);
  std::string write_coil(int unit, std::uint16_t addr, bool value, std::chrono::milliseconds timeout);
  std::string write_register(int unit, std::uint16_t addr, std::uint16_t value, std::chrono::milliseconds timeout);
  std::string write_coils(int unit, std::uint16_t addr, const std::vector<std::uint8_t>& values,
                          std::chrono::milliseconds timeout);
  std::string write_registers(int unit, std::uint16_t addr, const std::vector<std::uint16_t>& values,
                              std::chrono::milliseconds timeout);

  const std::string& description() const { return description_; }
  // True when the last failed request was answered with a Modbus exception (the device is there).
  bool last_was_exception() const { return last_exception_; }
  // False when the last call failed before its request went out (the connection could not be made).
  bool last_request_sent() const { return last_sent_; }

 private:
  ModbusLink(void* ctx, std::string description, bool rtu);
  std::string prepare(int unit, std::chrono::milliseconds timeout);
  std::string failure(const char* what);

  void* ctx_ = nullptr;
  std::string description_;
  bool rtu_ = false;
  bool connected_ = false;
  bool last_exception_ = false;
  bool last_sent_ = false;
};

}  // namespace vibgate::ingest::detail
