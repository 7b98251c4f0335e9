// ota_control_test.cpp — the `ota` control request and its OtaInfo answer through the wire codec
// (gateway/daemon/control_protocol, docs/control-socket.md): every field survives a round trip,
// the command is named "ota", the oneof numbers are the agreed ones (Request 24, Response 22).
#include <gtest/gtest.h>

#include <string>

#include "vibgate/daemon/control_protocol.hpp"

namespace vd = vibgate::daemon;

TEST(OtaControl, RequestRoundTripAndName) {
  vd::ControlRequest req{77, vd::OtaQuery{}};
  const std::string frame = vd::encode_request_frame(req);
  ASSERT_GT(frame.size(), 4u);
  // Request.id = 77 (field 1, varint), then field 24 (OtaQuery, length-delimited, empty):
  // tag (24 << 3) | 2 = 194 = 0xC2 0x01, length 0.
  EXPECT_NE(frame.find(std::string("\xC2\x01\x00", 3)), std::string::npos);
  const auto back = vd::decode_request(std::string_view(frame).substr(4));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->id, 77u);
  EXPECT_TRUE(std::holds_alternative<vd::OtaQuery>(back->command));
  EXPECT_EQ(vd::command_name(back->command), "ota");
}

TEST(OtaControl, ReplyRoundTripsEveryField) {
  vd::OtaInfo info;
  info.enabled = true;
  info.trusted_keys = {"ops", "ops-2027"};
  info.bundles.push_back({"pump1-7", "partial", 8192, 13670, 1796652886791, "", "", "", 0, ""});
  info.bundles.push_back({"pump1-3", "refused", 13670, 13670, 1796652880000, "replayed",
                          "sequence 3 <= accepted 5 for 'pump1'", "ops", 3, "pump1,fan2:de"});
  vd::ControlReply r;
  r.id = 5;
  r.ok = true;
  r.payload = info;
  const std::string frame = vd::encode_reply_frame(r);
  // Response field 22 (OtaInfo): tag (22 << 3) | 2 = 178 = 0xB2 0x01.
  EXPECT_NE(frame.find(std::string("\xB2\x01", 2)), std::string::npos);
  const auto back = vd::decode_reply(std::string_view(frame).substr(4));
  ASSERT_TRUE(back);
  const auto* o = std::get_if<vd::OtaInfo>(&back->payload);
  ASSERT_NE(o, nullptr);
  EXPECT_TRUE(o->enabled);
  EXPECT_EQ(o->trusted_keys, info.trusted_keys);
  ASSERT_EQ(o->bundles.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    const auto &a = o->bundles[i], &b = info.bundles[i];
    EXPECT_EQ(a.bundle_id, b.bundle_id);
    EXPECT_EQ(a.state, b.state);
    EXPECT_EQ(a.next_offset, b.next_offset);
    EXPECT_EQ(a.total, b.total);
    EXPECT_EQ(a.updated_ms, b.updated_ms);
    EXPECT_EQ(a.reason, b.reason);
    EXPECT_EQ(a.detail, b.detail);
    EXPECT_EQ(a.key_id, b.key_id);
    EXPECT_EQ(a.sequence, b.sequence);
    EXPECT_EQ(a.targets, b.targets);
  }
}
