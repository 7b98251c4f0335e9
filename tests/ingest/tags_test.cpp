// tags_test.cpp — Modbus tag value decoding/encoding and read coalescing (ingest/src/tags.cpp):
// the register layout of every ValueType × WordOrder checked register by register against the
// documented meaning (ABCD big-endian, CDAB word-swapped, BADC byte-swapped, DCBA both), exact
// round trips of edge values, saturation of out-of-range values, scale/offset, and plan_reads()
// merging, splitting, the 125-register / 2000-bit limits and deterministic ordering.
#include "vibgate/ingest/tags.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace vibgate::ingest {
namespace {

using Regs = std::vector<std::uint16_t>;

constexpr ValueType kAllTypes[] = {ValueType::boolean, ValueType::int16,   ValueType::uint16,
                                   ValueType::int32,   ValueType::uint32,  ValueType::int64,
                                   ValueType::uint64,  ValueType::float32, ValueType::float64};
constexpr WordOrder kAllOrders[] = {WordOrder::ABCD, WordOrder::CDAB, WordOrder::BADC, WordOrder::DCBA};

std::string name(ValueType t) { return std::string(to_string(t)); }
std::string name(WordOrder o) { return std::string(to_string(o)); }

// Same bit pattern (distinguishes -0.0 from 0.0 and compares infinities).
bool same(double a, double b) { return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b); }

TEST(RegisterCount, PerType) {
  EXPECT_EQ(register_count(ValueType::boolean), 1u);
  EXPECT_EQ(register_count(ValueType::int16), 1u);
  EXPECT_EQ(register_count(ValueType::uint16), 1u);
  EXPECT_EQ(register_count(ValueType::int32), 2u);
  EXPECT_EQ(register_count(ValueType::uint32), 2u);
  EXPECT_EQ(register_count(ValueType::float32), 2u);
  EXPECT_EQ(register_count(ValueType::int64), 4u);
  EXPECT_EQ(register_count(ValueType::uint64), 4u);
  EXPECT_EQ(register_count(ValueType::float64), 4u);
  EXPECT_TRUE(is_bit(RegisterType::coil));
  EXPECT_TRUE(is_bit(RegisterType::discrete_input));
  EXPECT_FALSE(is_bit(RegisterType::input_register));
  EXPECT_FALSE(is_bit(RegisterType::holding_register));
}

// ---- register layout, written out by hand from the documented meaning of each order ----

struct Layout {
  ValueType type;
  double value;
  Regs abcd, cdab, badc, dcba;
};

const Regs& expected(const Layout& l, WordOrder o) {
  switch (o) {
    case WordOrder::ABCD: return l.abcd;
    case WordOrder::CDAB: return l.cdab;
    case WordOrder::BADC: return l.badc;
    case WordOrder::DCBA: return l.dcba;
  }
  return l.abcd;
}

std::vector<Layout> layouts() {
  const double f32 = static_cast<double>(std::bit_cast<float>(0x12345678u));           // 5.69e-28
  const double f64 = std::bit_cast<double>(std::uint64_t{0x0123456789ABCDEFull});        // 3.5e-303
  return {
      // One register: word order is moot, byte swapping still applies.
      {ValueType::uint16, 0x1234, {0x1234}, {0x1234}, {0x3412}, {0x3412}},
      {ValueType::int16, -2, {0xFFFE}, {0xFFFE}, {0xFEFF}, {0xFEFF}},
      {ValueType::int16, 0x1234, {0x1234}, {0x1234}, {0x3412}, {0x3412}},
      {ValueType::boolean, 1, {0x0001}, {0x0001}, {0x0100}, {0x0100}},
      // Two registers: 0x12345678 = bytes A=12 B=34 C=56 D=78.
      {ValueType::uint32, 0x12345678, {0x1234, 0x5678}, {0x5678, 0x1234}, {0x3412, 0x7856}, {0x7856, 0x3412}},
      {ValueType::int32, 0x12345678, {0x1234, 0x5678}, {0x5678, 0x1234}, {0x3412, 0x7856}, {0x7856, 0x3412}},
      {ValueType::int32, -0x12345678,  // 0xEDCBA988
       {0xEDCB, 0xA988}, {0xA988, 0xEDCB}, {0xCBED, 0x88A9}, {0x88A9, 0xCBED}},
      {ValueType::float32, f32, {0x1234, 0x5678}, {0x5678, 0x1234}, {0x3412, 0x7856}, {0x7856, 0x3412}},
      {ValueType::float32, 1.0,  // 0x3F800000
       {0x3F80, 0x0000}, {0x0000, 0x3F80}, {0x803F, 0x0000}, {0x0000, 0x803F}},
      // Four registers: the word order is reversed as a whole for CDAB/DCBA (least significant
      // register first), bytes swapped inside each register for BADC/DCBA.
      {ValueType::uint64, static_cast<double>(0x0123456789ABCD00ull),  // exactly representable
       {0x0123, 0x4567, 0x89AB, 0xCD00},
       {0xCD00, 0x89AB, 0x4567, 0x0123},
       {0x2301, 0x6745, 0xAB89, 0x00CD},
       {0x00CD, 0xAB89, 0x6745, 0x2301}},
      {ValueType::int64, -static_cast<double>(0x0123456789ABCD00ull),  // 0xFEDCBA9876543300
       {0xFEDC, 0xBA98, 0x7654, 0x3300},
       {0x3300, 0x7654, 0xBA98, 0xFEDC},
       {0xDCFE, 0x98BA, 0x5476, 0x0033},
       {0x0033, 0x5476, 0x98BA, 0xDCFE}},
      {ValueType::float64, f64,
       {0x0123, 0x4567, 0x89AB, 0xCDEF},
       {0xCDEF, 0x89AB, 0x4567, 0x0123},
       {0x2301, 0x6745, 0xAB89, 0xEFCD},
       {0xEFCD, 0xAB89, 0x6745, 0x2301}},
      {ValueType::float64, -2.5,  // 0xC004000000000000
       {0xC004, 0x0000, 0x0000, 0x0000},
       {0x0000, 0x0000, 0x0000, 0xC004},
       {0x04C0, 0x0000, 0x0000, 0x0000},
       {0x0000, 0x0000, 0x0000, 0x04C0}},
  };
}

TEST(RegisterLayout, EncodeMatchesDocumentedOrderRegisterByRegister) {
  for (const Layout& l : layouts())
    for (WordOrder o : kAllOrders) {
      SCOPED_TRACE(name(l.type) + " " + name(o) + " value " + std::to_string(l.value));
      EXPECT_EQ(encode_registers(l.value, l.type, o), expected(l, o));
    }
}

TEST(RegisterLayout, DecodeMatchesDocumentedOrder) {
  for (const Layout& l : layouts())
    for (WordOrder o : kAllOrders) {
      SCOPED_TRACE(name(l.type) + " " + name(o));
      EXPECT_TRUE(same(decode_registers(expected(l, o), l.type, o), l.value));
    }
}

TEST(RegisterLayout, FullSixtyFourBitPatternDecodes) {
  // 0x0123456789ABCDEF is not a double; both sides round it the same way.
  const double want_u = static_cast<double>(0x0123456789ABCDEFull);
  const double want_i = static_cast<double>(static_cast<std::int64_t>(0xFEDCBA9876543210ull));
  EXPECT_EQ(decode_registers(Regs{0x0123, 0x4567, 0x89AB, 0xCDEF}, ValueType::uint64, WordOrder::ABCD), want_u);
  EXPECT_EQ(decode_registers(Regs{0xCDEF, 0x89AB, 0x4567, 0x0123}, ValueType::uint64, WordOrder::CDAB), want_u);
  EXPECT_EQ(decode_registers(Regs{0x2301, 0x6745, 0xAB89, 0xEFCD}, ValueType::uint64, WordOrder::BADC), want_u);
  EXPECT_EQ(decode_registers(Regs{0xEFCD, 0xAB89, 0x6745, 0x2301}, ValueType::uint64, WordOrder::DCBA), want_u);
  EXPECT_EQ(decode_registers(Regs{0xFEDC, 0xBA98, 0x7654, 0x3210}, ValueType::int64, WordOrder::ABCD), want_i);
  EXPECT_EQ(decode_registers(Regs{0x1032, 0x5476, 0x98BA, 0xDCFE}, ValueType::int64, WordOrder::DCBA), want_i);
}

TEST(RegisterLayout, DecodeUsesOnlyTheTypesRegisters) {
  // Extra registers after the value (the rest of a block) are ignored.
  const Regs regs{0x1234, 0x5678, 0xFFFF, 0xFFFF};
  EXPECT_EQ(decode_registers(regs, ValueType::uint16, WordOrder::ABCD), 0x1234);
  EXPECT_EQ(decode_registers(regs, ValueType::uint32, WordOrder::ABCD), 0x12345678);
  EXPECT_EQ(decode_registers(regs, ValueType::uint32, WordOrder::CDAB), 0x56781234);
}

TEST(RegisterLayout, SignedDecodeOfHighBitPatterns) {
  EXPECT_EQ(decode_registers(Regs{0x8000}, ValueType::int16, WordOrder::ABCD), -32768);
  EXPECT_EQ(decode_registers(Regs{0x8000}, ValueType::uint16, WordOrder::ABCD), 32768);
  EXPECT_EQ(decode_registers(Regs{0x0080}, ValueType::int16, WordOrder::BADC), -32768);
  EXPECT_EQ(decode_registers(Regs{0x0000, 0x8000}, ValueType::int32, WordOrder::CDAB), -2147483648.0);
  EXPECT_EQ(decode_registers(Regs{0x0000, 0x8000}, ValueType::uint32, WordOrder::CDAB), 2147483648.0);
  EXPECT_EQ(decode_registers(Regs{0xFFFF, 0xFFFF}, ValueType::int32, WordOrder::ABCD), -1);
  EXPECT_EQ(decode_registers(Regs{0xFFFF, 0xFFFF}, ValueType::uint32, WordOrder::ABCD), 4294967295.0);
  EXPECT_EQ(decode_registers(Regs{0x8000, 0, 0, 0}, ValueType::int64, WordOrder::ABCD), -9223372036854775808.0);
  EXPECT_EQ(decode_registers(Regs{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}, ValueType::int64, WordOrder::ABCD), -1);
  EXPECT_EQ(decode_registers(Regs{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}, ValueType::uint64, WordOrder::ABCD),
            18446744073709551616.0);  // 2^64 - 1 rounds to 2^64
  EXPECT_EQ(decode_registers(Regs{0x0002}, ValueType::boolean, WordOrder::ABCD), 1);
  EXPECT_EQ(decode_registers(Regs{0x0000}, ValueType::boolean, WordOrder::ABCD), 0);
}

// ---- round trips of edge values for every type × order ----

std::vector<double> edge_values(ValueType t) {
  using L16 = std::numeric_limits<std::int16_t>;
  using L32 = std::numeric_limits<std::int32_t>;
  using F = std::numeric_limits<float>;
  using D = std::numeric_limits<double>;
  switch (t) {
    case ValueType::boolean: return {0, 1};
    case ValueType::int16: return {L16::min(), -1, 0, 1, 0x1234, L16::max()};
    case ValueType::uint16: return {0, 1, 0x1234, 0x8000, 65535};
    case ValueType::int32: return {L32::min(), -1, 0, 1, 0x12345678, L32::max()};
    case ValueType::uint32: return {0, 1, 0x12345678, 2147483648.0, 4294967295.0};
    case ValueType::int64:
      return {-9223372036854775808.0, -9007199254740992.0, -1, 0, 1, 9007199254740992.0,
              9223372036854774784.0};  // the largest double below 2^63
    case ValueType::uint64:
      return {0, 1, 9007199254740992.0, 9223372036854775808.0,
              18446744073709549568.0};  // the largest double below 2^64
    case ValueType::float32:
      return {0.0, -0.0, 1.5, -1.5, static_cast<double>(F::max()), static_cast<double>(F::lowest()),
              static_cast<double>(F::min()), static_cast<double>(F::denorm_min()),
              static_cast<double>(-F::denorm_min()), static_cast<double>(0.1f), D::infinity(), -D::infinity()};
    case ValueType::float64:
      return {0.0, -0.0, 0.1, -123456.789, D::max(), D::lowest(), D::min(), D::denorm_min(), -D::denorm_min(),
              D::infinity(), -D::infinity()};
  }
  return {};
}

TEST(RoundTrip, EdgeValuesEveryTypeAndOrder) {
  for (ValueType t : kAllTypes)
    for (WordOrder o : kAllOrders)
      for (double v : edge_values(t)) {
        SCOPED_TRACE(name(t) + " " + name(o) + " " + std::to_string(v));
        const Regs regs = encode_registers(v, t, o);
        ASSERT_EQ(regs.size(), register_count(t));
        EXPECT_TRUE(same(decode_registers(regs, t, o), v)) << decode_registers(regs, t, o);
      }
}

TEST(RoundTrip, OrdersAreDistinctPermutationsOfTheSameBytes) {
  // The same value in the four orders: same multiset of bytes, and ABCD is the reverse of DCBA.
  for (ValueType t : {ValueType::uint32, ValueType::float32, ValueType::uint64, ValueType::float64}) {
    const double v = t == ValueType::float32 ? static_cast<double>(std::bit_cast<float>(0x12345678u))
                                              : static_cast<double>(0x12345678u);
    auto bytes = [](const Regs& r) {
      std::vector<std::uint8_t> b;
      for (auto x : r) {
        b.push_back(static_cast<std::uint8_t>(x >> 8));
        b.push_back(static_cast<std::uint8_t>(x));
      }
      return b;
    };
    const auto abcd = bytes(encode_registers(v, t, WordOrder::ABCD));
    auto dcba = bytes(encode_registers(v, t, WordOrder::DCBA));
    std::reverse(dcba.begin(), dcba.end());
    EXPECT_EQ(abcd, dcba) << name(t);
  }
}

TEST(RoundTrip, RandomRegisterPatterns) {
  // Registers → value → registers is the identity wherever the value is exact in a double.
  std::mt19937_64 rng(20240611);
  for (int i = 0; i < 2000; ++i) {
    const std::uint64_t r = rng();
    for (WordOrder o : kAllOrders) {
      const Regs r16{static_cast<std::uint16_t>(r)};
      EXPECT_EQ(encode_registers(decode_registers(r16, ValueType::int16, o), ValueType::int16, o), r16);
      EXPECT_EQ(encode_registers(decode_registers(r16, ValueType::uint16, o), ValueType::uint16, o), r16);
      const Regs r32{static_cast<std::uint16_t>(r), static_cast<std::uint16_t>(r >> 16)};
      EXPECT_EQ(encode_registers(decode_registers(r32, ValueType::int32, o), ValueType::int32, o), r32);
      EXPECT_EQ(encode_registers(decode_registers(r32, ValueType::uint32, o), ValueType::uint32, o), r32);
      const float f = std::bit_cast<float>(static_cast<std::uint32_t>(r));
      if (!std::isnan(f)) {
        const Regs fr = encode_registers(static_cast<double>(f), ValueType::float32, WordOrder::ABCD);
        const Regs fo = encode_registers(static_cast<double>(f), ValueType::float32, o);
        EXPECT_EQ(encode_registers(decode_registers(fo, ValueType::float32, o), ValueType::float32, WordOrder::ABCD), fr);
      }
      const double d = std::bit_cast<double>(r);
      if (!std::isnan(d)) {
        const Regs dr = encode_registers(d, ValueType::float64, o);
        EXPECT_TRUE(same(decode_registers(dr, ValueType::float64, o), d));
      }
      // 64-bit integers within ±2^53 are exact.
      const auto i53 = static_cast<std::int64_t>(r % (std::uint64_t{1} << 54)) - (std::int64_t{1} << 53);
      const Regs i64 = encode_registers(static_cast<double>(i53), ValueType::int64, o);
      EXPECT_EQ(decode_registers(i64, ValueType::int64, o), static_cast<double>(i53));
    }
  }
}

TEST(Encode, SaturatesOutOfRangeValuesInsteadOfWrapping) {
  // The largest 64-bit registers decode to 2^63 / 2^64 (rounded); encoding them back must give the
  // extreme of the type, not a wrapped or undefined value.
  const Regs i64max{0x7FFF, 0xFFFF, 0xFFFF, 0xFFFF};
  const double big = decode_registers(i64max, ValueType::int64, WordOrder::ABCD);
  EXPECT_EQ(big, 9223372036854775808.0);
  EXPECT_EQ(encode_registers(big, ValueType::int64, WordOrder::ABCD), i64max);
  const Regs u64max{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF};
  EXPECT_EQ(encode_registers(decode_registers(u64max, ValueType::uint64, WordOrder::ABCD), ValueType::uint64,
                             WordOrder::ABCD),
            u64max);
  EXPECT_EQ(encode_registers(1e30, ValueType::int64, WordOrder::ABCD), i64max);
  EXPECT_EQ(encode_registers(-1e30, ValueType::int64, WordOrder::ABCD), (Regs{0x8000, 0, 0, 0}));
  EXPECT_EQ(encode_registers(-5, ValueType::uint64, WordOrder::ABCD), (Regs{0, 0, 0, 0}));
  EXPECT_EQ(encode_registers(70000, ValueType::uint16, WordOrder::ABCD), Regs{0xFFFF});
  EXPECT_EQ(encode_registers(-1, ValueType::uint16, WordOrder::ABCD), Regs{0x0000});
  EXPECT_EQ(encode_registers(40000, ValueType::int16, WordOrder::ABCD), Regs{0x7FFF});
  EXPECT_EQ(encode_registers(-40000, ValueType::int16, WordOrder::ABCD), Regs{0x8000});
  EXPECT_EQ(encode_registers(5e9, ValueType::uint32, WordOrder::ABCD), (Regs{0xFFFF, 0xFFFF}));
  EXPECT_EQ(encode_registers(-5e9, ValueType::int32, WordOrder::ABCD), (Regs{0x8000, 0x0000}));
  EXPECT_EQ(encode_registers(std::nan(""), ValueType::int32, WordOrder::ABCD), (Regs{0, 0}));
  // In range: converted toward zero like a C++ cast.
  EXPECT_EQ(encode_registers(-1.9, ValueType::int16, WordOrder::ABCD), Regs{0xFFFF});
  EXPECT_EQ(encode_registers(7.9, ValueType::uint16, WordOrder::ABCD), Regs{0x0007});
  // float32: out of float range becomes infinity (IEEE conversion), not garbage.
  EXPECT_EQ(encode_registers(1e300, ValueType::float32, WordOrder::ABCD), (Regs{0x7F80, 0x0000}));
}

// ---- decode_tag: offsets inside a block, scale and offset ----

TagConfig tag(RegisterType reg, std::uint16_t address, ValueType type, WordOrder order = WordOrder::ABCD,
              double scale = 1.0, double offset = 0.0) {
  TagConfig t;
  t.name = std::to_string(address);
  t.name.insert(t.name.begin(), 't');  // (not "t" + …: GCC 12 -Wrestrict false positive)
  t.reg = reg;
  t.address = address;
  t.type = type;
  t.order = order;
  t.scale = scale;
  t.offset = offset;
  return t;
}

TEST(DecodeTag, OffsetScaleAndOffset) {
  const ReadBlock block{RegisterType::holding_register, 100, 8, {}};
  Regs regs(8, 0);
  const Regs f = encode_registers(-12.5, ValueType::float32, WordOrder::CDAB);
  std::copy(f.begin(), f.end(), regs.begin() + 3);  // address 103..104
  regs[7] = 0xFF38;                                 // address 107: int16 -200
  const std::vector<std::uint8_t> no_bits;
  EXPECT_EQ(decode_tag(tag(RegisterType::holding_register, 103, ValueType::float32, WordOrder::CDAB), block, regs,
                       no_bits),
            -12.5);
  // value = raw · scale + offset
  EXPECT_DOUBLE_EQ(decode_tag(tag(RegisterType::holding_register, 107, ValueType::int16, WordOrder::ABCD, 0.1, 5.0),
                              block, regs, no_bits),
                   -200 * 0.1 + 5.0);
  EXPECT_EQ(decode_tag(tag(RegisterType::holding_register, 107, ValueType::uint16, WordOrder::ABCD, -2.0, 1.0),
                       block, regs, no_bits),
            65336.0 * -2.0 + 1.0);
  EXPECT_EQ(decode_tag(tag(RegisterType::holding_register, 103, ValueType::float32, WordOrder::CDAB, 4.0, -0.5),
                       block, regs, no_bits),
            -50.5);
}

TEST(DecodeTag, Bits) {
  const ReadBlock block{RegisterType::coil, 10, 5, {}};
  const std::vector<std::uint8_t> bits{1, 0, 0, 1, 1};
  const Regs no_regs;
  EXPECT_EQ(decode_tag(tag(RegisterType::coil, 10, ValueType::boolean), block, no_regs, bits), 1.0);
  EXPECT_EQ(decode_tag(tag(RegisterType::coil, 11, ValueType::boolean), block, no_regs, bits), 0.0);
  EXPECT_EQ(decode_tag(tag(RegisterType::coil, 13, ValueType::boolean), block, no_regs, bits), 1.0);
  EXPECT_EQ(decode_tag(tag(RegisterType::coil, 14, ValueType::boolean, WordOrder::ABCD, 10.0, 1.0), block, no_regs,
                       bits),
            11.0);
}

// ---- plan_reads ----

std::vector<TagConfig> run(RegisterType reg, std::uint16_t first, std::size_t n, ValueType type) {
  std::vector<TagConfig> v;
  for (std::size_t i = 0; i < n; ++i)
    v.push_back(tag(reg, static_cast<std::uint16_t>(first + i * register_count(type)), type));
  return v;
}

std::vector<std::size_t> iota(std::size_t from, std::size_t to) {
  std::vector<std::size_t> v;
  for (std::size_t i = from; i < to; ++i) v.push_back(i);
  return v;
}

// Every tag in exactly one block, inside it, and every block within the Modbus limits.
void expect_valid_plan(const std::vector<TagConfig>& tags, const std::vector<ReadBlock>& plan) {
  std::vector<int> seen(tags.size(), 0);
  for (const ReadBlock& b : plan) {
    EXPECT_GT(b.count, 0);
    EXPECT_LE(b.count, is_bit(b.reg) ? kMaxBitsPerRead : kMaxRegistersPerRead);
    EXPECT_LE(std::size_t{b.address} + b.count, 65536u);
    for (std::size_t t : b.tags) {
      ASSERT_LT(t, tags.size());
      ++seen[t];
      EXPECT_EQ(tags[t].reg, b.reg);
      EXPECT_GE(tags[t].address, b.address);
      const std::size_t len = is_bit(b.reg) ? 1 : register_count(tags[t].type);
      EXPECT_LE(tags[t].address + len, std::size_t{b.address} + b.count);
    }
  }
  for (std::size_t i = 0; i < tags.size(); ++i) EXPECT_EQ(seen[i], 1) << "tag " << i;
}

TEST(PlanReads, Empty) { EXPECT_TRUE(plan_reads({}).empty()); }

TEST(PlanReads, AdjacentTagsMerge) {
  const std::vector<TagConfig> tags{tag(RegisterType::holding_register, 0, ValueType::uint16),
                                    tag(RegisterType::holding_register, 1, ValueType::float32),
                                    tag(RegisterType::holding_register, 3, ValueType::float64),
                                    tag(RegisterType::holding_register, 7, ValueType::int16)};
  const auto plan = plan_reads(tags);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].reg, RegisterType::holding_register);
  EXPECT_EQ(plan[0].address, 0);
  EXPECT_EQ(plan[0].count, 8);
  EXPECT_EQ(plan[0].tags, (std::vector<std::size_t>{0, 1, 2, 3}));
}

TEST(PlanReads, GapsSplitUnlessAllowed) {
  const std::vector<TagConfig> tags{tag(RegisterType::input_register, 10, ValueType::float32),   // 10..11
                                    tag(RegisterType::input_register, 13, ValueType::uint16),    // gap of 1
                                    tag(RegisterType::input_register, 20, ValueType::uint16)};   // gap of 6
  auto plan = plan_reads(tags);
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0].address, 10);
  EXPECT_EQ(plan[0].count, 2);
  EXPECT_EQ(plan[1].address, 13);
  EXPECT_EQ(plan[1].count, 1);
  EXPECT_EQ(plan[2].address, 20);
  EXPECT_EQ(plan[2].count, 1);

  plan = plan_reads(tags, 1);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].address, 10);
  EXPECT_EQ(plan[0].count, 4);
  EXPECT_EQ(plan[0].tags, (std::vector<std::size_t>{0, 1}));
  EXPECT_EQ(plan[1].address, 20);

  plan = plan_reads(tags, 6);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].count, 11);
  expect_valid_plan(tags, plan);
}

TEST(PlanReads, ExactlyOneHundredTwentyFiveRegistersIsOneRequest) {
  const auto tags = run(RegisterType::holding_register, 0, 125, ValueType::uint16);
  const auto plan = plan_reads(tags);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].count, 125);
  EXPECT_EQ(plan[0].tags, iota(0, 125));
}

TEST(PlanReads, OneHundredTwentySixRegistersAreTwoRequests) {
  const auto tags = run(RegisterType::holding_register, 0, 126, ValueType::uint16);
  const auto plan = plan_reads(tags);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].address, 0);
  EXPECT_EQ(plan[0].count, 125);
  EXPECT_EQ(plan[0].tags, iota(0, 125));
  EXPECT_EQ(plan[1].address, 125);
  EXPECT_EQ(plan[1].count, 1);
  EXPECT_EQ(plan[1].tags, std::vector<std::size_t>{125});
}

TEST(PlanReads, MultiRegisterValueThatWouldStraddleTheLimitStartsANewBlock) {
  auto tags = run(RegisterType::input_register, 0, 123, ValueType::uint16);  // 0..122
  tags.push_back(tag(RegisterType::input_register, 123, ValueType::float64)); // 123..126: would end at 127
  auto plan = plan_reads(tags);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].count, 123);
  EXPECT_EQ(plan[1].address, 123);
  EXPECT_EQ(plan[1].count, 4);
  EXPECT_EQ(plan[1].tags, std::vector<std::size_t>{123});

  // Ending exactly at 125 still fits.
  tags = run(RegisterType::input_register, 0, 121, ValueType::uint16);         // 0..120
  tags.push_back(tag(RegisterType::input_register, 121, ValueType::float64));  // 121..124
  plan = plan_reads(tags);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].count, 125);

  // 32 float64 = 128 registers: 31 in the first request (124 registers), 1 in the second.
  tags = run(RegisterType::holding_register, 1000, 32, ValueType::float64);
  plan = plan_reads(tags);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].address, 1000);
  EXPECT_EQ(plan[0].count, 124);
  EXPECT_EQ(plan[1].address, 1124);
  EXPECT_EQ(plan[1].count, 4);
  expect_valid_plan(tags, plan);
}

TEST(PlanReads, TwoThousandBitsPerRequest) {
  for (RegisterType reg : {RegisterType::coil, RegisterType::discrete_input}) {
    auto tags = run(reg, 0, 2000, ValueType::boolean);
    auto plan = plan_reads(tags);
    ASSERT_EQ(plan.size(), 1u);
    EXPECT_EQ(plan[0].count, 2000);
    tags = run(reg, 0, 2001, ValueType::boolean);
    plan = plan_reads(tags);
    ASSERT_EQ(plan.size(), 2u);
    EXPECT_EQ(plan[0].count, 2000);
    EXPECT_EQ(plan[1].address, 2000);
    EXPECT_EQ(plan[1].count, 1);
    expect_valid_plan(tags, plan);
    // 125 registers is not the limit for bits.
    tags = run(reg, 5, 300, ValueType::boolean);
    EXPECT_EQ(plan_reads(tags).size(), 1u);
  }
}

TEST(PlanReads, RegisterTypesNeverMergeAndAreOrdered) {
  // Same addresses in all four tables, listed in reverse type order.
  std::vector<TagConfig> tags;
  for (RegisterType reg : {RegisterType::holding_register, RegisterType::input_register,
                           RegisterType::discrete_input, RegisterType::coil})
    for (std::uint16_t a : {std::uint16_t{5}, std::uint16_t{6}})
      tags.push_back(tag(reg, a, is_bit(reg) ? ValueType::boolean : ValueType::uint16));
  const auto plan = plan_reads(tags);
  ASSERT_EQ(plan.size(), 4u);
  EXPECT_EQ(plan[0].reg, RegisterType::coil);
  EXPECT_EQ(plan[0].tags, (std::vector<std::size_t>{6, 7}));
  EXPECT_EQ(plan[1].reg, RegisterType::discrete_input);
  EXPECT_EQ(plan[1].tags, (std::vector<std::size_t>{4, 5}));
  EXPECT_EQ(plan[2].reg, RegisterType::input_register);
  EXPECT_EQ(plan[2].tags, (std::vector<std::size_t>{2, 3}));
  EXPECT_EQ(plan[3].reg, RegisterType::holding_register);
  EXPECT_EQ(plan[3].tags, (std::vector<std::size_t>{0, 1}));
  for (const auto& b : plan) {
    EXPECT_EQ(b.address, 5);
    EXPECT_EQ(b.count, 2);
  }
}

TEST(PlanReads, OverlappingTagsShareARequestAndDecodeIndependently) {
  const std::vector<TagConfig> tags{tag(RegisterType::holding_register, 10, ValueType::uint32),  // 10..11
                                    tag(RegisterType::holding_register, 11, ValueType::uint16),  // low word
                                    tag(RegisterType::holding_register, 10, ValueType::uint16),  // high word
                                    tag(RegisterType::holding_register, 10, ValueType::uint64),  // 10..13
                                    tag(RegisterType::holding_register, 12, ValueType::int16)};
  const auto plan = plan_reads(tags);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].address, 10);
  EXPECT_EQ(plan[0].count, 4);
  // Same address: configuration order is kept.
  EXPECT_EQ(plan[0].tags, (std::vector<std::size_t>{0, 2, 3, 1, 4}));
  const Regs regs{0x0001, 0x0002, 0xFFFF, 0x0004};
  const std::vector<std::uint8_t> no_bits;
  EXPECT_EQ(decode_tag(tags[0], plan[0], regs, no_bits), 0x00010002);
  EXPECT_EQ(decode_tag(tags[1], plan[0], regs, no_bits), 2);
  EXPECT_EQ(decode_tag(tags[2], plan[0], regs, no_bits), 1);
  EXPECT_EQ(decode_tag(tags[3], plan[0], regs, no_bits), static_cast<double>(0x00010002FFFF0004ull));
  EXPECT_EQ(decode_tag(tags[4], plan[0], regs, no_bits), -1);
}

TEST(PlanReads, ATagInsideAWiderOneDoesNotShrinkTheBlock) {
  const std::vector<TagConfig> tags{tag(RegisterType::holding_register, 0, ValueType::float64),  // 0..3
                                    tag(RegisterType::holding_register, 1, ValueType::uint16),   // inside
                                    tag(RegisterType::holding_register, 4, ValueType::uint16)};  // adjacent to 0..3
  const auto plan = plan_reads(tags);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].count, 5);
}

TEST(PlanReads, TopOfTheAddressSpace) {
  const std::vector<TagConfig> tags{tag(RegisterType::holding_register, 65532, ValueType::float64),
                                    tag(RegisterType::coil, 65535, ValueType::boolean)};
  const auto plan = plan_reads(tags);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].reg, RegisterType::coil);
  EXPECT_EQ(plan[0].address, 65535);
  EXPECT_EQ(plan[0].count, 1);
  EXPECT_EQ(plan[1].address, 65532);
  EXPECT_EQ(plan[1].count, 4);
}

TEST(PlanReads, DeterministicRegardlessOfConfigurationOrder) {
  std::mt19937 rng(7);
  std::vector<TagConfig> tags;
  const ValueType types[] = {ValueType::int16, ValueType::uint32, ValueType::float32, ValueType::float64,
                             ValueType::int64};
  for (int i = 0; i < 400; ++i) {
    const auto reg = static_cast<RegisterType>(rng() % 4);
    const auto type = is_bit(reg) ? ValueType::boolean : types[rng() % 5];
    tags.push_back(tag(reg, static_cast<std::uint16_t>(rng() % 3000), type));
    tags.back().name = std::to_string(i);
  }
  const auto plan = plan_reads(tags, 3);
  expect_valid_plan(tags, plan);
  // Same input, same plan.
  const auto again = plan_reads(tags, 3);
  ASSERT_EQ(plan.size(), again.size());
  for (std::size_t i = 0; i < plan.size(); ++i) EXPECT_EQ(plan[i].tags, again[i].tags);
  // Ordered by register type, then address, without overlap between blocks of one type.
  for (std::size_t i = 1; i < plan.size(); ++i) {
    const auto& a = plan[i - 1];
    const auto& b = plan[i];
    ASSERT_LE(a.reg, b.reg);
    if (a.reg == b.reg) {
      EXPECT_GE(b.address, a.address + a.count);
    }
  }
  // A shuffled configuration gives the same requests (same ranges, same tags by name).
  std::vector<TagConfig> shuffled = tags;
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  const auto plan2 = plan_reads(shuffled, 3);
  ASSERT_EQ(plan.size(), plan2.size());
  for (std::size_t i = 0; i < plan.size(); ++i) {
    EXPECT_EQ(plan[i].reg, plan2[i].reg);
    EXPECT_EQ(plan[i].address, plan2[i].address);
    EXPECT_EQ(plan[i].count, plan2[i].count);
    ASSERT_EQ(plan[i].tags.size(), plan2[i].tags.size());
  }
}

TEST(PlanReads, GapAllowanceNeverExceedsTheLimit) {
  const std::vector<TagConfig> tags{tag(RegisterType::holding_register, 0, ValueType::uint16),
                                    tag(RegisterType::holding_register, 124, ValueType::uint16),
                                    tag(RegisterType::holding_register, 125, ValueType::uint16)};
  const auto plan = plan_reads(tags, 200);
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].count, 125);
  EXPECT_EQ(plan[0].tags, (std::vector<std::size_t>{0, 1}));
  EXPECT_EQ(plan[1].address, 125);
}

}  // namespace
}  // namespace vibgate::ingest
