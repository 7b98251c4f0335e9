// control_onnx_test.cpp — the control codec's ONNX import/export messages (control.proto Request
// model_import = 22, model_export = 23; Response model_import = 20, model_export = 21) round
// trip every field, including binary ONNX bytes and calibration values.
#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "vibgate/daemon/control_protocol.hpp"

namespace vd = vibgate::daemon;

namespace {

vd::ControlRequest request_round_trip(const vd::ControlCommand& c) {
  const std::string frame = vd::encode_request_frame({42, c});
  EXPECT_EQ(vd::decode_frame_length(frame.substr(0, 4)), frame.size() - 4);
  auto back = vd::decode_request(std::string_view(frame).substr(4));
  EXPECT_TRUE(back);
  return back.value_or(vd::ControlRequest{});
}

vd::ControlReply reply_round_trip(const vd::ControlPayload& p) {
  vd::ControlReply r;
  r.id = 7;
  r.ok = true;
  r.payload = p;
  const std::string frame = vd::encode_reply_frame(r);
  auto back = vd::decode_reply(std::string_view(frame).substr(4));
  EXPECT_TRUE(back);
  return back.value_or(vd::ControlReply{});
}

TEST(ControlCodecOnnx, ImportCommandRoundTrips) {
  vd::ModelImportCommand c;
  c.asset = "pump2:pump2/accel";
  c.file_name = "ae.onnx";
  c.onnx = std::string("\x08\x08\x00\xff binary", 12);
  c.from_ms = 1700000000000;
  c.to_ms = 1700000360000;
  c.columns = {"rms", "peak", "iso_zone"};
  c.values = {0.5f, -1.25f, 0.f, 3.f, 4.f, 0.f};
  c.calibration_name = "features.csv";
  const auto r = request_round_trip(c);
  ASSERT_TRUE(std::holds_alternative<vd::ModelImportCommand>(r.command));
  const auto& b = std::get<vd::ModelImportCommand>(r.command);
  EXPECT_EQ(b.asset, c.asset);
  EXPECT_EQ(b.file_name, c.file_name);
  EXPECT_EQ(b.onnx, c.onnx);
  EXPECT_EQ(b.from_ms, c.from_ms);
  EXPECT_EQ(b.to_ms, c.to_ms);
  EXPECT_EQ(b.columns, c.columns);
  EXPECT_EQ(b.values, c.values);
  EXPECT_EQ(b.calibration_name, c.calibration_name);
  EXPECT_EQ(vd::command_name(r.command), "model import");
  const auto e = request_round_trip(vd::ModelExportQuery{"fan1"});
  ASSERT_TRUE(std::holds_alternative<vd::ModelExportQuery>(e.command));
  EXPECT_EQ(std::get<vd::ModelExportQuery>(e.command).asset, "fan1");
  EXPECT_EQ(vd::command_name(e.command), "model export");
}

TEST(ControlCodecOnnx, ImportAndExportInfoRoundTrip) {
  vd::ModelImportInfo i;
  i.asset = "fan1";
  i.state = "active";
  i.import_id = 9;
  i.version = "4";
  i.error = "";
  i.file_name = "ae.onnx";
  i.rows = 1234;
  i.layers = {"26→16 tanh", "16→26 linear"};
  i.normalization = "graph";
  i.threshold_float = 1.5;
  i.threshold_int8 = 1.25;
  i.pearson = 0.9999;
  i.max_abs_diff = 0.003;
  i.max_rel_diff = 0.02;
  i.verdict_agreement = 1.0;
  i.warnings = {"w"};
  i.note = "onnx import ae.onnx: r=0.9999";
  const auto r = reply_round_trip(i);
  ASSERT_TRUE(std::holds_alternative<vd::ModelImportInfo>(r.payload));
  const auto& b = std::get<vd::ModelImportInfo>(r.payload);
  EXPECT_EQ(b.asset, i.asset);
  EXPECT_EQ(b.state, i.state);
  EXPECT_EQ(b.import_id, i.import_id);
  EXPECT_EQ(b.version, i.version);
  EXPECT_EQ(b.file_name, i.file_name);
  EXPECT_EQ(b.rows, i.rows);
  EXPECT_EQ(b.layers, i.layers);
  EXPECT_EQ(b.normalization, i.normalization);
  EXPECT_EQ(b.threshold_float, i.threshold_float);
  EXPECT_EQ(b.threshold_int8, i.threshold_int8);
  EXPECT_EQ(b.pearson, i.pearson);
  EXPECT_EQ(b.max_abs_diff, i.max_abs_diff);
  EXPECT_EQ(b.max_rel_diff, i.max_rel_diff);
  EXPECT_EQ(b.verdict_agreement, i.verdict_agreement);
  EXPECT_EQ(b.warnings, i.warnings);
  EXPECT_EQ(b.note, i.note);
  const auto x = reply_round_trip(
      vd::ModelExportInfo{"fan1", "3", std::string("\x00\x01onnx", 6), "onnx:ae.onnx"});
  ASSERT_TRUE(std::holds_alternative<vd::ModelExportInfo>(x.payload));
  const auto& e = std::get<vd::ModelExportInfo>(x.payload);
  EXPECT_EQ(e.asset, "fan1");
  EXPECT_EQ(e.version, "3");
  EXPECT_EQ(e.onnx, std::string("\x00\x01onnx", 6));
  EXPECT_EQ(e.origin, "onnx:ae.onnx");
}

// Field numbers agreed in issue 9: Request model_import = 22 (tag 0xB2 0x01), model_export = 23
// (0xBA 0x01); Response model_import = 20 (0xA2 0x01), model_export = 21 (0xAA 0x01).
TEST(ControlCodecOnnx, FieldNumbersAreTheAgreedOnes) {
  auto req = vd::decode_request(std::string("\xb2\x01\x03\x0a\x01\x61", 6));
  ASSERT_TRUE(req);
  EXPECT_EQ(std::get<vd::ModelImportCommand>(req->command).asset, "a");
  req = vd::decode_request(std::string("\xba\x01\x03\x0a\x01\x62", 6));
  ASSERT_TRUE(req);
  EXPECT_EQ(std::get<vd::ModelExportQuery>(req->command).asset, "b");
  auto rep = vd::decode_reply(std::string("\xa2\x01\x03\x0a\x01\x63", 6));
  ASSERT_TRUE(rep);
  EXPECT_EQ(std::get<vd::ModelImportInfo>(rep->payload).asset, "c");
  rep = vd::decode_reply(std::string("\xaa\x01\x03\x0a\x01\x64", 6));
  ASSERT_TRUE(rep);
  EXPECT_EQ(std::get<vd::ModelExportInfo>(rep->payload).asset, "d");
}

}  // namespace
