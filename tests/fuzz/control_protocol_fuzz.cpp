// control_protocol_fuzz.cpp — libFuzzer target for the control socket's wire codec
// (daemon/control_protocol.hpp): the daemon's request path (4-byte length, body,
// decode_request) and the CLI's reply path (decode_reply). The input is a byte stream as the
// daemon reads it from a client: frames are taken one after the other, exactly as
// ControlServer does, until a bad length, a truncated frame or an unparsable request; every
// body is also decoded as a reply.
//
// Asserted beyond "no crash, no sanitizer report":
//  - framing: decode_frame_length() is the big-endian length; accepted bodies are 1..4 MiB;
//  - round trip: a decoded request (reply) encodes to a frame whose header announces its body
//    size, which decodes again and re-encodes to the same bytes (encoding is canonical);
//  - command_name() names every decoded command with one of the CLI's names.
#include <google/protobuf/stubs/logging.h>

#include <cstdint>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>

#include "fuzz_util.hpp"
#include "vibgate/daemon/control_protocol.hpp"

namespace vibgate::fuzz {
namespace {

using namespace vibgate::daemon;

void check_frame(const std::string& frame) {
  FUZZ_CHECK(frame.size() >= kControlFrameHeader, "frame shorter than its header");
  const std::string_view f(frame);
  FUZZ_CHECK(
      decode_frame_length(f.substr(0, kControlFrameHeader)) == frame.size() - kControlFrameHeader,
      "frame header does not announce its body");
}

void check_request(const ControlRequest& req) {
  static const std::set<std::string_view> kNames = {"status", "devices", "tags",  "assets",
                                                    "alerts", "ack",     "trend", "queue",
                                                    "models", "model",   "train", "spectrum",
                                                    "model import", "model export", "shadow", "ota"};
  FUZZ_CHECK(kNames.count(command_name(req.command)) == 1, command_name(req.command));
  const std::string frame = encode_request_frame(req);
  check_frame(frame);
  const std::optional<ControlRequest> again =
      decode_request(std::string_view(frame).substr(kControlFrameHeader));
  FUZZ_CHECK(again.has_value(), "an encoded request does not decode");
  FUZZ_CHECK(again->id == req.id && again->command.index() == req.command.index(), "request");
  FUZZ_CHECK(encode_request_frame(*again) == frame, "request encoding is not canonical");
}

void check_reply(const ControlReply& reply) {
  std::string frame;
  try {
    frame = encode_reply_frame(reply);
  } catch (const std::length_error&) {
    return;  // documented: a reply over 4 MiB is refused (cannot come from a smaller body)
  }
  check_frame(frame);
  const std::optional<ControlReply> again =
      decode_reply(std::string_view(frame).substr(kControlFrameHeader));
  FUZZ_CHECK(again.has_value(), "an encoded reply does not decode");
  FUZZ_CHECK(again->id == reply.id && again->ok == reply.ok && again->error == reply.error &&
                 again->payload.index() == reply.payload.index(),
             "reply");
  FUZZ_CHECK(encode_reply_frame(*again) == frame, "reply encoding is not canonical");
}

}  // namespace
}  // namespace vibgate::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Invalid UTF-8 in string fields is a parse failure; protobuf also logs it. Keep stderr for
  // findings.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vibgate::daemon;
  using namespace vibgate::fuzz;
  std::string_view stream(reinterpret_cast<const char*>(data), size);
  while (stream.size() >= kControlFrameHeader) {
    const std::string_view header = stream.substr(0, kControlFrameHeader);
    const std::uint32_t length = decode_frame_length(header);
    const auto* h = reinterpret_cast<const unsigned char*>(header.data());
    FUZZ_CHECK(length == ((std::uint32_t{h[0]} << 24) | (std::uint32_t{h[1]} << 16) |
                          (std::uint32_t{h[2]} << 8) | h[3]),
               "decode_frame_length is not big-endian");
    stream.remove_prefix(kControlFrameHeader);
    if (length == 0 || length > kMaxControlMessage || length > stream.size()) break;
    const std::string_view body = stream.substr(0, length);
    stream.remove_prefix(length);
    if (const std::optional<ControlReply> reply = decode_reply(body)) check_reply(*reply);
    const std::optional<ControlRequest> req = decode_request(body);
    if (!req) break;  // the daemon drops the connection
    check_request(*req);
  }
  return 0;
}
