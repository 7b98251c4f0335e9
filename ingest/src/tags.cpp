// tags.cpp — register decoding/encoding for every value type and word order, and read coalescing.
#include "vibgate/ingest/tags.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>

namespace vibgate::ingest {

std::size_t register_count(ValueType t) {
  switch (t) {
    case ValueType::boolean:
    case ValueType::int16:
    case ValueType::uint16: return 1;
    case ValueType::int32:
    case ValueType::uint32:
    case ValueType::float32: return 2;
    case ValueType::int64:
    case ValueType::uint64:
    case ValueType::float64: return 4;
  }
  return 1;
}

bool is_bit(RegisterType r) { return r == RegisterType::coil || r == RegisterType::discrete_input; }

namespace {

// Puts the registers into canonical big-endian order (ABCD): word order reversed for CDAB/DCBA
// (the least significant register comes first), bytes swapped inside each register for BADC/DCBA.
std::uint64_t to_bits(std::span<const std::uint16_t> regs, WordOrder order) {
  const std::size_t n = regs.size();
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const bool reverse = order == WordOrder::CDAB || order == WordOrder::DCBA;
    std::uint16_t r = regs[reverse ? n - 1 - i : i];
    if (order == WordOrder::BADC || order == WordOrder::DCBA)
      r = static_cast<std::uint16_t>((r >> 8) | (r << 8));
    v = (v << 16) | r;
  }
  return v;
}

std::vector<std::uint16_t> from_bits(std::uint64_t v, std::size_t n, WordOrder order) {
  std::vector<std::uint16_t> regs(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto r = static_cast<std::uint16_t>(v >> (16 * (n - 1 - i)));  // i-th most significant word
    if (order == WordOrder::BADC || order == WordOrder::DCBA)
      r = static_cast<std::uint16_t>((r >> 8) | (r << 8));
    const bool reverse = order == WordOrder::CDAB || order == WordOrder::DCBA;
    regs[reverse ? n - 1 - i : i] = r;
  }
  return regs;
}

}  // namespace

double decode_registers(std::span<const std::uint16_t> regs, ValueType type, WordOrder order) {
  const std::uint64_t b = to_bits(regs.first(register_count(type)), order);
  switch (type) {
    case ValueType::boolean: return b != 0 ? 1.0 : 0.0;
    case ValueType::int16: return static_cast<double>(static_cast<std::int16_t>(b));
    case ValueType::uint16: return static_cast<double>(static_cast<std::uint16_t>(b));
    case ValueType::int32: return static_cast<double>(static_cast<std::int32_t>(b));
    case ValueType::uint32: return static_cast<double>(static_cast<std::uint32_t>(b));
    case ValueType::int64: return static_cast<double>(static_cast<std::int64_t>(b));
    case ValueType::uint64: return static_cast<double>(b);
    case ValueType::float32: return static_cast<double>(std::bit_cast<float>(static_cast<std::uint32_t>(b)));
    case ValueType::float64: return std::bit_cast<double>(b);
  }
  return 0;
}

namespace {
// double → integer type, toward zero, saturating at the type's limits (NaN → 0). A plain cast is
// undefined out of range: 2^63, what the registers of INT64_MAX decode to, came back as INT64_MIN.
template <typename I>
I saturate(double v) {
  if (std::isnan(v)) return 0;
  // 2^(digits) is exact in a double; everything at or above it is out of range.
  const double hi = std::ldexp(1.0, std::numeric_limits<I>::digits);
  if (v >= hi) return std::numeric_limits<I>::max();
  if (v <= static_cast<double>(std::numeric_limits<I>::min())) return std::numeric_limits<I>::min();
  return static_cast<I>(v);
}
}  // namespace

std::vector<std::uint16_t> encode_registers(double value, ValueType type, WordOrder order) {
  std::uint64_t b = 0;
  switch (type) {
    case ValueType::boolean: b = value != 0 ? 1 : 0; break;
    case ValueType::int16: b = static_cast<std::uint16_t>(saturate<std::int16_t>(value)); break;
    case ValueType::uint16: b = saturate<std::uint16_t>(value); break;
    case ValueType::int32: b = static_cast<std::uint32_t>(saturate<std::int32_t>(value)); break;
    case ValueType::uint32: b = saturate<std::uint32_t>(value); break;
    case ValueType::int64: b = static_cast<std::uint64_t>(saturate<std::int64_t>(value)); break;
    case ValueType::uint64: b = saturate<std::uint64_t>(value); break;
    case ValueType::float32: b = std::bit_cast<std::uint32_t>(static_cast<float>(value)); break;
    case ValueType::float64: b = std::bit_cast<std::uint64_t>(value); break;
  }
  return from_bits(b, register_count(type), order);
}

std::vector<ReadBlock> plan_reads(const std::vector<TagConfig>& tags, std::size_t max_gap) {
  std::vector<ReadBlock> blocks;
  // Tag indices per register type, sorted by address.
  std::map<RegisterType, std::vector<std::size_t>> by_type;
  for (std::size_t i = 0; i < tags.size(); ++i) by_type[tags[i].reg].push_back(i);
  for (auto& [reg, idx] : by_type) {
    std::stable_sort(idx.begin(), idx.end(),
                     [&](std::size_t a, std::size_t b) { return tags[a].address < tags[b].address; });
    const std::size_t limit = is_bit(reg) ? kMaxBitsPerRead : kMaxRegistersPerRead;
    ReadBlock cur;
    std::size_t cur_end = 0;  // one past the last register/bit of cur
    for (std::size_t i : idx) {
      const std::size_t start = tags[i].address;
      const std::size_t len = is_bit(reg) ? 1 : register_count(tags[i].type);
      const std::size_t end = start + len;
      const bool fits = !cur.tags.empty() && start <= cur_end + max_gap &&
                        std::max(end, cur_end) - cur.address <= limit;
      if (!fits) {
        if (!cur.tags.empty()) {
          cur.count = static_cast<std::uint16_t>(cur_end - cur.address);
          blocks.push_back(std::move(cur));
        }
        cur = ReadBlock{reg, static_cast<std::uint16_t>(start), 0, {}};
        cur_end = end;
      }
      cur.tags.push_back(i);
      cur_end = std::max(cur_end, end);
    }
    if (!cur.tags.empty()) {
      cur.count = static_cast<std::uint16_t>(cur_end - cur.address);
      blocks.push_back(std::move(cur));
    }
  }
  return blocks;
}

double decode_tag(const TagConfig& tag, const ReadBlock& block, std::span<const std::uint16_t> regs,
                  std::span<const std::uint8_t> bits) {
  const std::size_t off = tag.address - block.address;
  double raw = 0;
  if (is_bit(tag.reg)) {
    raw = bits[off] ? 1.0 : 0.0;
  } else {
    raw = decode_registers(regs.subspan(off, register_count(tag.type)), tag.type, tag.order);
  }
  return raw * tag.scale + tag.offset;
}

}  // namespace vibgate::ingest
