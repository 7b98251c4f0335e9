// modbus_link.cpp — libmodbus behind ModbusLink (see modbus_link.hpp).
#include "modbus_link.hpp"

#include <modbus.h>

#include <cerrno>
#include <cstring>

namespace vibgate::ingest::detail {
namespace {
modbus_t* M(void* p) { return static_cast<modbus_t*>(p); }

void set_timeout(modbus_t* ctx, std::chrono::milliseconds t) {
  const auto ms = t.count();
  modbus_set_response_timeout(ctx, static_cast<std::uint32_t>(ms / 1000),
                              static_cast<std::uint32_t>((ms % 1000) * 1000));
}
}  // namespace

ModbusLink::ModbusLink(void* ctx, std::string description, bool rtu)
    : ctx_(ctx), description_(std::move(description)), rtu_(rtu) {}

ModbusLink ModbusLink::tcp(const std::string& host, std::uint16_t port) {
  modbus_t* ctx = modbus_new_tcp(host.c_str(), port);
  return ModbusLink(ctx, host + ":" + std::to_string(port), false);
}

ModbusLink ModbusLink::rtu(const SerialLineConfig& l) {
  modbus_t* ctx = modbus_new_rtu(l.port.c_str(), static_cast<int>(l.baud), static_cast<char>(l.parity),
                                 l.data_bits, l.stop_bits);
  return ModbusLink(ctx, l.port, true);
}

ModbusLink::ModbusLink(ModbusLink&& o) noexcept
    : ctx_(o.ctx_), description_(std::move(o.description_)), rtu_(o.rtu_), connected_(o.connected_) {
  o.ctx_ = nullptr;
  o.connected_ = false;
}

ModbusLink& ModbusLink::operator=(ModbusLink&& o) noexcept {
  if (this != &o) {
    close();
    if (ctx_) modbus_free(M(ctx_));
    ctx_ = o.ctx_;
    description_ = std::move(o.description_);
    rtu_ = o.rtu_;
    connected_ = o.connected_;
    o.ctx_ = nullptr;
    o.connected_ = false;
  }
  return *this;
}

ModbusLink::~ModbusLink() {
  close();
  if (ctx_) modbus_free(M(ctx_));
}

void ModbusLink::close() {
  if (ctx_ && connected_) modbus_close(M(ctx_));
  connected_ = false;
}

std::string ModbusLink::ensure_connected(std::chrono::milliseconds timeout) {
  if (!ctx_) return description_ + ": cannot create a Modbus context (invalid address or port?)";
  if (connected_) return {};
  set_timeout(M(ctx_), timeout);
  if (modbus_connect(M(ctx_)) != 0) {
    const std::string e = modbus_strerror(errno);
    modbus_close(M(ctx_));
    return "connect to " + description_ + " failed: " + e;
  }
  if (rtu_) modbus_flush(M(ctx_));
  connected_ = true;
  return {};
}

std::string ModbusLink::prepare(int unit, std::chrono::milliseconds timeout) {
  last_sent_ = false;
  last_exception_ = false;
  if (std::string e = ensure_connected(timeout); !e.empty()) return e;
  last_sent_ = true;  // from here on the request goes out
  modbus_set_slave(M(ctx_), unit);
  set_timeout(M(ctx_), timeout);
  return {};
}

std::string ModbusLink::failure(const char* what) {
  const int err = errno;
  std::string msg = std::string(what) + " failed: " + modbus_strerror(err);
  // Modbus exceptions (the device answered) keep the connection; anything else — timeout, reset,
  // CRC error, bad frame — may leave stale bytes in flight, so start over on a fresh connection.
  last_exception_ = err >= EMBXILFUN && err <= EMBXGTAR;
  if (err == EMBMDATA) last_sent_ = false;  // refused by libmodbus before sending: link is fine
  if (!last_exception_ && err != EMBMDATA) {
    if (rtu_) modbus_flush(M(ctx_));
    else close();
  }
  return msg;
}

std::string ModbusLink::read_bits(int unit, RegisterType reg, std::uint16_t addr, std::uint16_t count,
                                  std::vector<std::uint8_t>& out, std::chrono::milliseconds timeout) {
  if (std::string e = prepare(unit, timeout); !e.empty()) return e;
  out.resize(count);
  const int rc = reg == RegisterType::coil ? modbus_read_bits(M(ctx_), addr, count, out.data())
                                           : modbus_read_input_bits(M(ctx_), addr, count, out.data());
  if (rc != count) return failure(reg == RegisterType::coil ? "read coils" : "read discrete inputs");
  return {};
}

std::string ModbusLink::read_registers(int unit, RegisterType reg, std::uint16_t addr, std::uint16_t count,
                                       std::vector<std::uint16_t>& out, std::chrono::milliseconds timeout) {
  if (std::string e = prepare(unit, timeout); !e.empty()) return e;
  out.resize(count);
  const int rc = reg == RegisterType::holding_register
                     ? modbus_read_registers(M(ctx_), addr, count, out.data())
                     : modbus_read_input_registers(M(ctx_), addr, count, out.data());
  if (rc != count)
    return failure(reg == RegisterType::holding_register ? "read holding registers" : "read input registers");
  return {};
}

std::string ModbusLink::write_coil(int unit, std::uint16_t addr, bool value, std::chrono::milliseconds timeout) {
  if (std::string e = prepare(unit, timeout); !e.empty()) return e;
  if (modbus_write_bit(M(ctx_), addr, value ? 1 : 0) != 1) return failure("write coil");
  return {};
}

std::string ModbusLink::write_register(int unit, std::uint16_t addr, std::uint16_t value,
                                       std::chrono::milliseconds timeout) {
  if (std::string e = prepare(unit, timeout); !e.empty()) return e;
  if (modbus_write_register(M(ctx_), addr, value) != 1) return failure("write register");
  return {};
}

std::string ModbusLink::write_coils(int unit, std::uint16_t addr, const std::vector<std::uint8_t>& values,
                                    std::chrono::milliseconds timeout) {
  if (std::string e = prepare(unit, timeout); !e.empty()) return e;
  const int n = static_cast<int>(values.size());
  if (modbus_write_bits(M(ctx_), addr, n, values.data()) != n) return failure("write coils");
  return {};
}

std::string ModbusLink::write_registers(int unit, std::uint16_t addr, const std::vector<std::uint16_t>& values,
                                        std::chrono::milliseconds timeout) {
  if (std::string e = prepare(unit, timeout); !e.empty()) return e;
  const int n = static_cast<int>(values.size());
  if (modbus_write_registers(M(ctx_), addr, n, values.data()) != n) return failure("write registers");
  return {};
}

}  // namespace vibgate::ingest::detail
