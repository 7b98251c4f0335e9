// sparkplug.hpp — Sparkplug B 3.0 payloads for vibgate's edge node and its devices (assets).
//
// One edge node (the gateway) with one Sparkplug device per asset. Record metrics become device
// metrics named "<kind>/<name>" ("result/score", "alert/level", "health/state") plus
// "vibgate/msg_id" (UInt64, the outbox id consumers de-duplicate on). Aliases are unique across
// the node and stable for the life of the process; DBIRTH carries names and aliases, DDATA only
// aliases. A record that brings a metric (or asset) the node has not announced makes the uplink
// send a DBIRTH for that device first. Internal to uplink/.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "vibgate/common/outbox.hpp"
#include "vibgate/uplink/uplink.hpp"

namespace vibgate::uplink::spb {

inline constexpr const char* kNamespace = "spBv1.0";
inline constexpr const char* kMsgIdMetric = "vibgate/msg_id";
inline constexpr const char* kRebirthMetric = "Node Control/Rebirth";

struct MetricDef {
  std::string name;
  std::uint64_t alias = 0;
  std::uint32_t datatype = 0;  // Sparkplug DataType code
  std::optional<Metric::Value> last;
};

struct DeviceModel {
  std::vector<MetricDef> metrics;
  std::unordered_map<std::string, std::size_t> by_name;  // full metric name → index
  // Record metric name → index, per RecordKind (so a record's metrics are found without
  // building "<kind>/<name>" strings per message).
  std::unordered_map<std::string, std::size_t> by_kind[kRecordKindCount];
};

// What the node has announced; owned by the uplink (loop thread).
class NodeModel {
 public:
  // Makes sure the device exists with the default metrics (used for configured assets).
  // Returns true when something was added.
  bool declare_device(const std::string& asset);
  // Learns the record's metrics (and remembers their last values for the next DBIRTH).
  // Returns true when the device or a metric is new or changed type: a DBIRTH must precede it.
  bool learn(const UplinkRecord& record);
  const std::map<std::string, DeviceModel>& devices() const { return devices_; }
  const DeviceModel* device(const std::string& asset) const;

 private:
  // Returns the metric's index; `changed` is set when it is new or changed type.
  std::size_t add_metric(DeviceModel& dev, const std::string& name, std::uint32_t datatype,
                         bool* changed);
  std::map<std::string, DeviceModel> devices_;
  std::uint64_t next_alias_ = 100;  // node metrics use no aliases; devices start at 100
};

std::string metric_name(RecordKind kind, const std::string& name);
std::uint32_t datatype_of(const Metric::Value& v);

// Topics.
std::string node_topic(const std::string& group, const std::string& type, const std::string& node);
std::string device_topic(const std::string& group, const std::string& type, const std::string& node,
                         const std::string& device);

// Payloads (serialized protobuf). `now_ms`: payload timestamp.
std::string encode_nbirth(std::uint64_t bd_seq, std::uint8_t seq, std::int64_t now_ms,
                          const std::string& software);
std::string encode_ndeath(std::uint64_t bd_seq, std::int64_t now_ms);
std::string encode_dbirth(const DeviceModel& dev, std::uint8_t seq, std::int64_t now_ms);
// Call after NodeModel::learn(record). Writes into `out` (reused buffer). Loop thread only (a
// thread-local message object is reused).
void encode_ddata(const DeviceModel& dev, const UplinkRecord& record, std::uint8_t seq,
                  std::int64_t now_ms, bool historical, std::string* out);

// True when an NCMD payload asks for a rebirth ("Node Control/Rebirth" = true).
// Malformed payloads return false and set `error`.
bool is_rebirth_command(const std::string& payload, std::string* error);

// Bundle chunk metrics of an NCMD (docs/ota.md): Model/Bundle/Id (String), .../Offset and
// .../Total (any integer type), .../Sha256 (String, hex), .../Chunk (Bytes).
inline constexpr const char* kBundlePrefix = "Model/Bundle/";

// One NCMD decoded: the rebirth request and/or a bundle chunk. `error` set: not a Sparkplug
// payload, or a bundle command missing or mistyping a metric (then has_bundle is true and
// chunk.error holds the problem).
struct NodeCommand {
  bool rebirth = false;
  bool has_bundle = false;  // at least one Model/Bundle/ metric was present
  BundleChunk chunk;
  std::string error;
};
NodeCommand decode_node_command(const std::string& payload);

}  // namespace vibgate::uplink::spb
