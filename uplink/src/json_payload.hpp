// json_payload.hpp — the plain-MQTT JSON profile: topics and payloads. Internal to uplink/.
//
// Topic: <prefix>/<node>/<asset>/<kind>   (kind: result | alert | health)
// Payload: {"msg_id":…, "session":…, "seq":…, "node":…, "asset":…, "kind":…, "ts":…,
//           "historical":…, "metrics":{name: value, …}}
// msg_id is the outbox id (stable across resends: consumers drop duplicates on it); (session, seq)
// numbers every publication of this gateway (session grows with every connection and survives
// restarts through the state file, seq restarts at 0 in each session). Non-finite numbers are
// written as null.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "vibgate/common/outbox.hpp"
#include "vibgate/uplink/uplink.hpp"

namespace vibgate::uplink::json {

std::string record_topic(const std::string& prefix, const std::string& node,
                         const std::string& asset_level, RecordKind kind);
std::string status_topic(const std::string& prefix, const std::string& node);
std::string encode_record(const UplinkRecord& record, const std::string& node,
                          std::uint64_t session, std::uint64_t seq, bool historical);
std::string encode_status(bool online, std::uint64_t session, std::int64_t now_ms);

// <prefix>/<node>/cmd/model_bundle: bundle chunk commands (docs/ota.md).
std::string bundle_command_topic(const std::string& prefix, const std::string& node);
// {"bundle_id": str, "offset": uint, "total": uint, "sha256": hex str, "data": base64 str}.
// A malformed payload gives a chunk with `error` set (one line).
BundleChunk decode_bundle_command(const std::string& payload);
// Standard base64 (RFC 4648, padding optional, no whitespace); nullopt when not base64.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace vibgate::uplink::json
