// modbus_registers_fuzz.cpp — libFuzzer target for Modbus register decoding (ingest/tags.hpp):
// decode_registers()/encode_registers() for every value type and word order, the read planner
// plan_reads() and decode_tag() on the planned blocks.
//
// Input (consumed with FuzzedDataProvider): register words for the codec, then a tag list as the
// configuration parser would accept it (bits are bool; a value never runs past register 65535),
// a max_gap, and the register/bit contents of every planned block.
//
// Asserted beyond "no crash, no sanitizer report":
//  - codec: decode(encode(decode(regs))) == decode(regs) (bit for bit, NaN stays NaN) for every
//    type and order; encode(decode(regs)) == regs for the exact types (16/32-bit integers, 64-bit
//    integers below 2^53, floats other than NaN);
//  - planner bounds: every tag is in exactly one block of its register type, lies wholly inside
//    it, and no block exceeds the Modbus limits (125 registers / 2000 bits) or register 65535;
//  - decode_tag() on a block equals decode_registers() on the tag's own registers (bits: 0/1).
#include <fuzzer/FuzzedDataProvider.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "vibgate/ingest/tags.hpp"

namespace vibgate::fuzz {
namespace {

using ingest::ReadBlock;
using ingest::RegisterType;
using ingest::TagConfig;
using ingest::ValueType;
using ingest::WordOrder;

constexpr ValueType kTypes[] = {ValueType::boolean, ValueType::int16,   ValueType::uint16,
                                ValueType::int32,   ValueType::uint32,  ValueType::int64,
                                ValueType::uint64,  ValueType::float32, ValueType::float64};
constexpr WordOrder kOrders[] = {WordOrder::ABCD, WordOrder::CDAB, WordOrder::BADC,
                                 WordOrder::DCBA};
constexpr RegisterType kRegs[] = {RegisterType::coil, RegisterType::discrete_input,
                                  RegisterType::input_register, RegisterType::holding_register};

bool same_value(double a, double b) {
  return (std::isnan(a) && std::isnan(b)) ||
         std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}

// Whether encode(decode(regs)) must give back regs exactly.
bool exact_type(ValueType t, double v) {
  switch (t) {
    case ValueType::boolean:
      return false;  // any non-zero register decodes to 1
    case ValueType::int64:
    case ValueType::uint64:
      return std::fabs(v) < 0x1p53;
    case ValueType::float32:
    case ValueType::float64:
      return !std::isnan(v);
    default:
      return true;
  }
}

void fuzz_codec(FuzzedDataProvider& in) {
  std::uint16_t regs[4];
  for (auto& r : regs) r = in.ConsumeIntegral<std::uint16_t>();
  for (ValueType t : kTypes) {
    const std::size_t n = ingest::register_count(t);
    for (WordOrder o : kOrders) {
      const std::span<const std::uint16_t> src(regs, n);
      const double v = ingest::decode_registers(src, t, o);
      const std::vector<std::uint16_t> enc = ingest::encode_registers(v, t, o);
      FUZZ_CHECK(enc.size() == n, "encode_registers size");
      FUZZ_CHECK(same_value(ingest::decode_registers(enc, t, o), v), "decode(encode(v)) != v");
      if (exact_type(t, v))
        FUZZ_CHECK(std::memcmp(enc.data(), regs, 2 * n) == 0, "encode(decode(regs)) != regs");
    }
  }
}

TagConfig consume_tag(FuzzedDataProvider& in) {
  TagConfig t;
  t.reg = kRegs[in.ConsumeIntegralInRange<std::size_t>(0, 3)];
  t.type = ingest::is_bit(t.reg) ? ValueType::boolean : kTypes[in.ConsumeIntegralInRange(0, 8)];
  t.order = kOrders[in.ConsumeIntegralInRange(0, 3)];
  // Addresses cluster (small values, or near the top of the register space) to exercise merging.
  const auto a = in.ConsumeIntegral<std::uint16_t>();
  const auto max_addr = static_cast<std::uint16_t>(65536 - ingest::register_count(t.type));
  t.address = (a & 0x8000) != 0
                  ? static_cast<std::uint16_t>(max_addr - (a & 0xFF))
                  : static_cast<std::uint16_t>(std::min<unsigned>(a & 0x3FF, max_addr));
  return t;
}

void fuzz_plan(FuzzedDataProvider& in) {
  std::vector<TagConfig> tags(in.ConsumeIntegralInRange<std::size_t>(0, 48));
  for (auto& t : tags) t = consume_tag(in);
  const auto max_gap = in.ConsumeIntegralInRange<std::size_t>(0, 300);
  const std::vector<ReadBlock> plan = ingest::plan_reads(tags, max_gap);

  std::vector<int> seen(tags.size(), 0);
  for (const ReadBlock& b : plan) {
    const bool bits = ingest::is_bit(b.reg);
    FUZZ_CHECK(
        b.count >= 1 && b.count <= (bits ? ingest::kMaxBitsPerRead : ingest::kMaxRegistersPerRead),
        "block size outside the Modbus limits");
    FUZZ_CHECK(std::size_t{b.address} + b.count <= 65536, "block runs past register 65535");
    FUZZ_CHECK(!b.tags.empty(), "empty block");

    // Block contents from the input (zeros once it runs out).
    std::vector<std::uint16_t> regs;
    std::vector<std::uint8_t> bitv;
    if (bits) {
      for (std::size_t i = 0; i < b.count; ++i)
        bitv.push_back(in.ConsumeIntegral<std::uint8_t>() & 1);
    } else {
      for (std::size_t i = 0; i < b.count; ++i) regs.push_back(in.ConsumeIntegral<std::uint16_t>());
    }
    for (std::size_t i : b.tags) {
      FUZZ_CHECK(i < tags.size(), "tag index out of range");
      ++seen[i];
      const TagConfig& t = tags[i];
      FUZZ_CHECK(t.reg == b.reg, "tag in a block of another register type");
      const std::size_t len = bits ? 1 : ingest::register_count(t.type);
      FUZZ_CHECK(t.address >= b.address && t.address + len <= std::size_t{b.address} + b.count,
                 "tag not inside its block");
      const double got = ingest::decode_tag(t, b, regs, bitv);
      const std::size_t off = t.address - b.address;
      const double want =
          bits ? (bitv[off] != 0 ? 1.0 : 0.0)
               : ingest::decode_registers(std::span(regs).subspan(off, len), t.type, t.order);
      // raw · 1 + 0: equal as numbers (−0 becomes +0).
      FUZZ_CHECK(got == want || (std::isnan(got) && std::isnan(want)),
                 "decode_tag differs from decode_registers");
    }
  }
  for (int n : seen) FUZZ_CHECK(n == 1, "tag planned zero or several times");
}

}  // namespace
}  // namespace vibgate::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  vibgate::fuzz::fuzz_codec(in);
  vibgate::fuzz::fuzz_plan(in);
  return 0;
}
