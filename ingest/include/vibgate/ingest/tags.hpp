// vibgate/ingest/tags.hpp — decoding tag values from registers, and coalescing tag reads.
//
// Pure functions, no I/O: the poller plans each device's reads once at start, then decodes every
// response with decode_tag(). Limits per request are the Modbus ones: 125 registers (FC 3/4) and
// 2000 bits (FC 1/2).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "vibgate/ingest/config.hpp"

namespace vibgate::ingest {

inline constexpr std::size_t kMaxRegistersPerRead = 125;
inline constexpr std::size_t kMaxBitsPerRead = 2000;

// One Modbus read request covering one or more tags.
struct ReadBlock {
  RegisterType reg = RegisterType::holding_register;
  std::uint16_t address = 0;
  std::uint16_t count = 0;            // registers or bits
  std::vector<std::size_t> tags;      // indices into the device's tag list
};

// Groups tags by register type and merges tags whose ranges are adjacent or overlapping (or
// separated by at most `max_gap` unused registers/bits) into as few requests as the limits allow.
// Deterministic: blocks ordered by register type, then address.
std::vector<ReadBlock> plan_reads(const std::vector<TagConfig>& tags, std::size_t max_gap = 0);

// Decodes the value of `tag` from the block's data. `regs` holds the block's registers (for
// register types) and `bits` its bits (for coil/discrete); the tag's offset is computed from the
// block's start address. Returns the engineering value (raw · scale + offset); booleans are 0/1.
double decode_tag(const TagConfig& tag, const ReadBlock& block, std::span<const std::uint16_t> regs,
                  std::span<const std::uint8_t> bits);

// Raw value of `type` from its registers in the given order (exposed for tests and the simulator).
double decode_registers(std::span<const std::uint16_t> regs, ValueType type, WordOrder order);
// Inverse of decode_registers for the simulator and tests (value converted to the type first,
// saturating at the type's range; NaN encodes as 0 for integer types).
std::vector<std::uint16_t> encode_registers(double value, ValueType type, WordOrder order);

}  // namespace vibgate::ingest
