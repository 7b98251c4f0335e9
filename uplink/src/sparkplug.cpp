// sparkplug.cpp — Sparkplug B payload encoding and the node's metric/alias model.
#include "sparkplug.hpp"

#include "sparkplug_b.pb.h"

namespace vibgate::uplink::spb {

using PbPayload = vibgate::sparkplug::Payload;
using PbMetric = vibgate::sparkplug::Payload::Metric;
using DT = vibgate::sparkplug::Payload;

namespace {

// The metrics every asset reports, announced in DBIRTH before the first record arrives, so a
// host sees the device's shape at once (features and extra metrics are added when seen).
struct DefaultMetric {
  const char* name;
  std::uint32_t datatype;
};
constexpr DefaultMetric kDefaultMetrics[] = {
    {"result/score", DT::Double},   {"result/verdict", DT::Int64},
    {"result/iso_zone", DT::Int64}, {"result/velocity_rms_mm_s", DT::Double},
    {"result/channel", DT::String}, {"result/model_version", DT::String},
    // Drift of the model (docs/model.md "Drift"); the PSIs only once they are computed.
    {"result/drift_psi_score", DT::Double}, {"result/drift_psi_feature_max", DT::Double},
    {"result/drift_feature", DT::String},   {"result/drift_state", DT::String},
    {"alert/alert_id", DT::Int64},  {"alert/event", DT::String},
    {"alert/level", DT::String},    {"alert/score", DT::Double},
    {"alert/reason", DT::String},
};

void set_value(PbMetric* m, std::uint32_t datatype, const Metric::Value& v) {
  switch (datatype) {
    case DT::Double:
      if (auto* d = std::get_if<double>(&v))
        m->set_double_value(*d);
      else if (auto* i = std::get_if<std::int64_t>(&v))
        m->set_double_value(static_cast<double>(*i));
      else
        m->set_is_null(true);
      return;
    case DT::Int64:
      if (auto* i = std::get_if<std::int64_t>(&v))
        m->set_long_value(static_cast<std::uint64_t>(*i));
      else
        m->set_is_null(true);
      return;
    case DT::Boolean:
      if (auto* b = std::get_if<bool>(&v))
        m->set_boolean_value(*b);
      else
        m->set_is_null(true);
      return;
    case DT::String:
      if (auto* s = std::get_if<std::string>(&v))
        m->set_string_value(*s);
      else
        m->set_is_null(true);
      return;
    default:
      m->set_is_null(true);
  }
}

std::string serialize(const PbPayload& p) {
  std::string out;
  p.SerializeToString(&out);
  return out;
}

}  // namespace

std::string metric_name(RecordKind kind, const std::string& name) {
  std::string s = to_string(kind);
  s += '/';
  s += name;
  return s;
}

std::uint32_t datatype_of(const Metric::Value& v) {
  switch (v.index()) {
    case 0:
      return DT::Double;
    case 1:
      return DT::Int64;
    case 2:
      return DT::Boolean;
    default:
      return DT::String;
  }
}

std::size_t NodeModel::add_metric(DeviceModel& dev, const std::string& name, std::uint32_t datatype,
                                  bool* changed) {
  auto it = dev.by_name.find(name);
  if (it != dev.by_name.end()) {
    MetricDef& def = dev.metrics[it->second];
    if (def.datatype != datatype) {
      def.datatype = datatype;  // type changed: same alias, a new DBIRTH announces the new type
      def.last.reset();
      *changed = true;
    }
    return it->second;
  }
  std::size_t index = dev.metrics.size();
  dev.by_name.emplace(name, index);
  dev.metrics.push_back(MetricDef{name, next_alias_++, datatype, std::nullopt});
  *changed = true;
  return index;
}

bool NodeModel::declare_device(const std::string& asset) {
  auto [it, inserted] = devices_.try_emplace(asset);
  bool changed = inserted;
  add_metric(it->second, kMsgIdMetric, DT::UInt64, &changed);
  for (const auto& d : kDefaultMetrics) {
    std::size_t index = add_metric(it->second, d.name, d.datatype, &changed);
    std::string_view full = d.name;
    std::size_t slash = full.find('/');
    std::string_view kind = full.substr(0, slash);
    int k = kind == "result" ? 0 : kind == "alert" ? 1 : kind == "health" ? 2 : 3;
    it->second.by_kind[k].emplace(std::string(full.substr(slash + 1)), index);
  }
  return changed;
}

bool NodeModel::learn(const UplinkRecord& record) {
  bool changed = false;
  auto it = devices_.find(record.asset);
  if (it == devices_.end()) {
    changed = declare_device(record.asset);
    it = devices_.find(record.asset);
  }
  DeviceModel& dev = it->second;
  auto& by_kind = dev.by_kind[static_cast<int>(record.kind) % kRecordKindCount];
  for (const Metric& m : record.metrics) {
    std::uint32_t type = datatype_of(m.value);
    auto found = by_kind.find(m.name);
    std::size_t index;
    if (found == by_kind.end()) {
      index = add_metric(dev, metric_name(record.kind, m.name), type, &changed);
      by_kind.emplace(m.name, index);
    } else {
      index = found->second;
      if (dev.metrics[index].datatype != type) {
        add_metric(dev, dev.metrics[index].name, type, &changed);
      }
    }
    dev.metrics[index].last = m.value;
  }
  return changed;
}

const DeviceModel* NodeModel::device(const std::string& asset) const {
  auto it = devices_.find(asset);
  return it == devices_.end() ? nullptr : &it->second;
}

std::string node_topic(const std::string& group, const std::string& type, const std::string& node) {
  std::string t = kNamespace;
  t += '/';
  t += group;
  t += '/';
  t += type;
  t += '/';
  t += node;
  return t;
}

std::string device_topic(const std::string& group, const std::string& type, const std::string& node,
                         const std::string& device) {
  std::string t = node_topic(group, type, node);
  t += '/';
  t += device;
  return t;
}

namespace {
// A node-level metric (NBIRTH/NDEATH): by name, no alias.
PbMetric* add_node_metric(PbPayload& p, const char* name, std::uint32_t datatype,
                          std::int64_t now_ms) {
  auto* m = p.add_metrics();
  m->set_name(name);
  m->set_timestamp(static_cast<std::uint64_t>(now_ms));
  m->set_datatype(datatype);
  return m;
}
}  // namespace

std::string encode_nbirth(std::uint64_t bd_seq, std::uint8_t seq, std::int64_t now_ms,
                          const std::string& software) {
  PbPayload p;
  p.set_timestamp(static_cast<std::uint64_t>(now_ms));
  p.set_seq(seq);
  add_node_metric(p, "bdSeq", DT::Int64, now_ms)->set_long_value(bd_seq);
  add_node_metric(p, kRebirthMetric, DT::Boolean, now_ms)->set_boolean_value(false);
  add_node_metric(p, "Properties/Software", DT::String, now_ms)->set_string_value(software);
  return serialize(p);
}

std::string encode_ndeath(std::uint64_t bd_seq, std::int64_t now_ms) {
  PbPayload p;
  p.set_timestamp(static_cast<std::uint64_t>(now_ms));
  add_node_metric(p, "bdSeq", DT::Int64, now_ms)->set_long_value(bd_seq);
  return serialize(p);
}

std::string encode_dbirth(const DeviceModel& dev, std::uint8_t seq, std::int64_t now_ms) {
  PbPayload p;
  p.set_timestamp(static_cast<std::uint64_t>(now_ms));
  p.set_seq(seq);
  for (const MetricDef& def : dev.metrics) {
    auto* m = p.add_metrics();
    m->set_name(def.name);
    m->set_alias(def.alias);
    m->set_timestamp(static_cast<std::uint64_t>(now_ms));
    m->set_datatype(def.datatype);
    if (def.last)
      set_value(m, def.datatype, *def.last);
    else
      m->set_is_null(true);
  }
  return serialize(p);
}

void encode_ddata(const DeviceModel& dev, const UplinkRecord& record, std::uint8_t seq,
                  std::int64_t now_ms, bool historical, std::string* out) {
  thread_local PbPayload p;  // Clear() keeps the metric objects' memory for the next message
  p.Clear();
  p.set_timestamp(static_cast<std::uint64_t>(now_ms));
  p.set_seq(seq);
  auto ts = static_cast<std::uint64_t>(record.wall_ms);
  auto add = [&](const MetricDef& def) {
    auto* m = p.add_metrics();
    m->set_alias(def.alias);
    m->set_timestamp(ts);
    m->set_datatype(def.datatype);
    if (historical) m->set_is_historical(true);
    return m;
  };
  if (auto id = dev.by_name.find(kMsgIdMetric); id != dev.by_name.end()) {
    add(dev.metrics[id->second])->set_long_value(record.id);
  }
  const auto& by_kind = dev.by_kind[static_cast<int>(record.kind) % kRecordKindCount];
  for (const Metric& metric : record.metrics) {
    auto it = by_kind.find(metric.name);
    if (it == by_kind.end()) continue;  // cannot happen after learn()
    const MetricDef& def = dev.metrics[it->second];
    set_value(add(def), def.datatype, metric.value);
  }
  out->clear();
  p.SerializeToString(out);
}

bool is_rebirth_command(const std::string& payload, std::string* error) {
  PbPayload p;
  if (!p.ParseFromString(payload)) {
    if (error != nullptr) *error = "NCMD payload is not a Sparkplug B payload";
    return false;
  }
  for (const auto& m : p.metrics()) {
    if (m.has_name() && m.name() == kRebirthMetric && m.has_boolean_value() && m.boolean_value()) {
      return true;
    }
  }
  return false;
}

NodeCommand decode_node_command(const std::string& payload) {
  NodeCommand c;
  PbPayload p;
  if (!p.ParseFromString(payload)) {
    c.error = "NCMD payload is not a Sparkplug B payload";
    return c;
  }
  const std::string_view prefix = kBundlePrefix;
  bool id = false, offset = false, total = false, sha = false, chunk = false;
  std::string problem;
  auto integer = [&problem](const PbMetric& m, const char* name, std::uint64_t* out) {
    if (m.has_long_value()) {
      *out = m.long_value();
    } else if (m.has_int_value()) {
      *out = m.int_value();
    } else {
      if (problem.empty()) problem = std::string(kBundlePrefix) + name + " is not an integer";
      return false;
    }
    return true;
  };
  for (const auto& m : p.metrics()) {
    if (!m.has_name()) continue;
    const std::string& name = m.name();
    if (name == kRebirthMetric && m.has_boolean_value() && m.boolean_value()) c.rebirth = true;
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    c.has_bundle = true;
    const std::string_view field = std::string_view(name).substr(prefix.size());
    if (field == "Id") {
      if (m.has_string_value()) {
        c.chunk.bundle_id = m.string_value();
        id = true;
      } else if (problem.empty()) {
        problem = "Model/Bundle/Id is not a String";
      }
    } else if (field == "Offset") {
      offset = integer(m, "Offset", &c.chunk.offset);
    } else if (field == "Total") {
      total = integer(m, "Total", &c.chunk.total);
    } else if (field == "Sha256") {
      if (m.has_string_value()) {
        c.chunk.sha256_hex = m.string_value();
        sha = true;
      } else if (problem.empty()) {
        problem = "Model/Bundle/Sha256 is not a String";
      }
    } else if (field == "Chunk") {
      if (m.has_bytes_value()) {
        c.chunk.data = m.bytes_value();
        chunk = true;
      } else if (problem.empty()) {
        problem = "Model/Bundle/Chunk is not Bytes";
      }
    }
  }
  if (!c.has_bundle) return c;
  if (problem.empty()) {
    const char* missing = !id       ? "Id"
                          : !offset ? "Offset"
                          : !total  ? "Total"
                          : !sha    ? "Sha256"
                          : !chunk  ? "Chunk"
                                    : nullptr;
    if (missing) problem = std::string("bundle command without Model/Bundle/") + missing;
  }
  if (!problem.empty()) {
    c.chunk.error = problem;
    c.error = problem;
  }
  return c;
}

}  // namespace vibgate::uplink::spb
