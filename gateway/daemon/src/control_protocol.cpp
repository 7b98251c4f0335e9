// control_protocol.cpp — plain structs <-> control.proto messages, and the length-prefixed
// framing (see the header and docs/control-socket.md).
#include "vibgate/daemon/control_protocol.hpp"

#include <iterator>
#include <stdexcept>
#include <type_traits>

#include "control.pb.h"

namespace vibgate::daemon {
namespace {

namespace pb = vibgate::control;

template <class>
inline constexpr bool kAlwaysFalse = false;

std::string frame(const google::protobuf::MessageLite& message) {
  const std::size_t size = message.ByteSizeLong();
  if (size > kMaxControlMessage) {
    std::string what = "control message of ";
    what += std::to_string(size);
    what += " bytes exceeds the 4 MiB limit";
    throw std::length_error(what);
  }
  std::string out(kControlFrameHeader + size, '\0');
  const auto n = static_cast<std::uint32_t>(size);
  out[0] = static_cast<char>((n >> 24) & 0xFFu);
  out[1] = static_cast<char>((n >> 16) & 0xFFu);
  out[2] = static_cast<char>((n >> 8) & 0xFFu);
  out[3] = static_cast<char>(n & 0xFFu);
  if (size > 0 &&
      !message.SerializeToArray(out.data() + kControlFrameHeader, static_cast<int>(size))) {
    throw std::length_error("control message could not be serialized");
  }
  return out;
}

void to_pb(const AlertsQuery& in, pb::AlertsQuery* out) {
  out->set_active_only(in.active_only);
  out->set_since_ms(in.since_ms);
  out->set_limit(in.limit);
}

void to_pb(const TrendQuery& in, pb::TrendQuery* out) {
  out->set_asset(in.asset);
  out->set_metric(in.metric);
  out->set_since_ms(in.since_ms);
  out->set_until_ms(in.until_ms);
  out->set_max_points(in.max_points);
}

}  // namespace

std::string encode_request_frame(const ControlRequest& request) {
  pb::Request m;
  m.set_id(request.id);
  std::visit(
      [&m](const auto& c) {
        (void)c;
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, StatusQuery>) {
          m.mutable_status();
        } else if constexpr (std::is_same_v<T, DevicesQuery>) {
          m.mutable_devices();
        } else if constexpr (std::is_same_v<T, TagsQuery>) {
          m.mutable_tags()->set_device(c.device);
        } else if constexpr (std::is_same_v<T, AssetsQuery>) {
          m.mutable_assets();
        } else if constexpr (std::is_same_v<T, AlertsQuery>) {
          to_pb(c, m.mutable_alerts());
        } else if constexpr (std::is_same_v<T, AckCommand>) {
          auto* a = m.mutable_ack();
          a->set_alert_id(c.alert_id);
          a->set_note(c.note);
          a->set_by(c.by);
        } else if constexpr (std::is_same_v<T, TrendQuery>) {
          to_pb(c, m.mutable_trend());
        } else if constexpr (std::is_same_v<T, QueueQuery>) {
          m.mutable_queue();
        } else if constexpr (std::is_same_v<T, ModelsQuery>) {
          m.mutable_models();
        } else {
          static_assert(kAlwaysFalse<T>, "unhandled command");
        }
      },
      request.command);
  return frame(m);
}

std::optional<ControlRequest> decode_request(std::string_view body) {
  pb::Request m;
  if (!m.ParseFromArray(body.data(), static_cast<int>(body.size()))) return std::nullopt;
  ControlRequest r;
  r.id = m.id();
  switch (m.command_case()) {
    case pb::Request::kStatus:
      r.command = StatusQuery{};
      break;
    case pb::Request::kDevices:
      r.command = DevicesQuery{};
      break;
    case pb::Request::kTags:
      r.command = TagsQuery{m.tags().device()};
      break;
    case pb::Request::kAssets:
      r.command = AssetsQuery{};
      break;
    case pb::Request::kAlerts: {
      const auto& a = m.alerts();
      r.command = AlertsQuery{a.active_only(), a.since_ms(), a.limit()};
      break;
    }
    case pb::Request::kAck: {
      const auto& a = m.ack();
      r.command = AckCommand{a.alert_id(), a.note(), a.by()};
      break;
    }
    case pb::Request::kTrend: {
      const auto& t = m.trend();
      r.command = TrendQuery{t.asset(), t.metric(), t.since_ms(), t.until_ms(), t.max_points()};
      break;
    }
    case pb::Request::kQueue:
      r.command = QueueQuery{};
      break;
    case pb::Request::kModels:
      r.command = ModelsQuery{};
      break;
    case pb::Request::COMMAND_NOT_SET:
      return std::nullopt;
  }
  return r;
}

std::string encode_reply_frame(const ControlReply& reply) {
  pb::Response m;
  m.set_id(reply.id);
  m.set_ok(reply.ok);
  m.set_error(reply.error);
  std::visit(
      [&m](const auto& p) {
        (void)p;
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
        } else if constexpr (std::is_same_v<T, StatusInfo>) {
          auto* s = m.mutable_status();
          s->set_version(p.version);
          s->set_uptime_s(p.uptime_s);
          s->set_storage_ok(p.storage_ok);
          s->set_uplink_connected(p.uplink_connected);
          s->set_outbox_depth(p.outbox_depth);
          s->set_devices(p.devices);
          s->set_assets(p.assets);
          s->set_active_alerts(p.active_alerts);
        } else if constexpr (std::is_same_v<T, std::vector<DeviceInfo>>) {
          auto* list = m.mutable_devices();
          for (const auto& d : p) {
            auto* o = list->add_devices();
            o->set_name(d.name);
            o->set_kind(d.kind);
            o->set_endpoint(d.endpoint);
            o->set_connected(d.connected);
            o->set_last_ok_ms(d.last_ok_ms);
            o->set_errors(d.errors);
            o->set_last_error(d.last_error);
          }
        } else if constexpr (std::is_same_v<T, std::vector<TagInfo>>) {
          auto* list = m.mutable_tags();
          for (const auto& t : p) {
            auto* o = list->add_tags();
            o->set_device(t.device);
            o->set_name(t.name);
            o->set_unit(t.unit);
            o->set_value(t.value);
            o->set_good(t.good);
            o->set_ts_ms(t.ts_ms);
          }
        } else if constexpr (std::is_same_v<T, std::vector<AssetInfo>>) {
          auto* list = m.mutable_assets();
          for (const auto& a : p) {
            auto* o = list->add_assets();
            o->set_name(a.name);
            o->set_alarm_level(a.alarm_level);
            o->set_score(a.score);
            o->set_iso_zone(a.iso_zone);
            o->set_vrms_mm_s(a.vrms_mm_s);
            o->set_model_state(a.model_state);
            o->set_last_window_ms(a.last_window_ms);
          }
        } else if constexpr (std::is_same_v<T, std::vector<AlertInfo>>) {
          auto* list = m.mutable_alerts();
          for (const auto& a : p) {
            auto* o = list->add_alerts();
            o->set_id(a.id);
            o->set_asset(a.asset);
            o->set_level(a.level);
            o->set_cause(a.cause);
            o->set_raised_ms(a.raised_ms);
            o->set_cleared_ms(a.cleared_ms);
            o->set_acknowledged(a.acknowledged);
            o->set_ack_by(a.ack_by);
            o->set_ack_note(a.ack_note);
            o->set_message(a.message);
          }
        } else if constexpr (std::is_same_v<T, AckInfo>) {
          auto* a = m.mutable_ack();
          a->set_alert_id(p.alert_id);
          a->set_already_acknowledged(p.already_acknowledged);
        } else if constexpr (std::is_same_v<T, Trend>) {
          auto* t = m.mutable_trend();
          t->set_asset(p.asset);
          t->set_metric(p.metric);
          for (const auto& pt : p.points) {
            auto* o = t->add_points();
            o->set_ts_ms(pt.ts_ms);
            o->set_value(pt.value);
          }
        } else if constexpr (std::is_same_v<T, QueueInfo>) {
          auto* q = m.mutable_queue();
          q->set_depth(p.depth);
          q->set_bytes(p.bytes);
          q->set_oldest_ms(p.oldest_ms);
          q->set_uplink_connected(p.uplink_connected);
          q->set_sent_total(p.sent_total);
          q->set_dropped_total(p.dropped_total);
        } else if constexpr (std::is_same_v<T, std::vector<ModelInfo>>) {
          auto* list = m.mutable_models();
          for (const auto& x : p) {
            auto* o = list->add_models();
            o->set_asset(x.asset);
            o->set_state(x.state);
            o->set_file(x.file);
            o->set_trained_ms(x.trained_ms);
            o->set_threshold(x.threshold);
          }
        } else {
          static_assert(kAlwaysFalse<T>, "unhandled payload");
        }
      },
      reply.payload);
  return frame(m);
}

std::optional<ControlReply> decode_reply(std::string_view body) {
  pb::Response m;
  if (!m.ParseFromArray(body.data(), static_cast<int>(body.size()))) return std::nullopt;
  ControlReply r;
  r.id = m.id();
  r.ok = m.ok();
  r.error = m.error();
  switch (m.payload_case()) {
    case pb::Response::PAYLOAD_NOT_SET:
      break;
    case pb::Response::kStatus: {
      const auto& s = m.status();
      r.payload = StatusInfo{s.version(),      s.uptime_s(), s.storage_ok(), s.uplink_connected(),
                             s.outbox_depth(), s.devices(),  s.assets(),     s.active_alerts()};
      break;
    }
    case pb::Response::kDevices: {
      std::vector<DeviceInfo> v;
      for (const auto& d : m.devices().devices()) {
        v.push_back({d.name(), d.kind(), d.endpoint(), d.connected(), d.last_ok_ms(), d.errors(),
                     d.last_error()});
      }
      r.payload = std::move(v);
      break;
    }
    case pb::Response::kTags: {
      std::vector<TagInfo> v;
      for (const auto& t : m.tags().tags()) {
        v.push_back({t.device(), t.name(), t.unit(), t.value(), t.good(), t.ts_ms()});
      }
      r.payload = std::move(v);
      break;
    }
    case pb::Response::kAssets: {
      std::vector<AssetInfo> v;
      for (const auto& a : m.assets().assets()) {
        v.push_back({a.name(), a.alarm_level(), a.score(), a.iso_zone(), a.vrms_mm_s(),
                     a.model_state(), a.last_window_ms()});
      }
      r.payload = std::move(v);
      break;
    }
    case pb::Response::kAlerts: {
      std::vector<AlertInfo> v;
      for (const auto& a : m.alerts().alerts()) {
        v.push_back({a.id(), a.asset(), a.level(), a.cause(), a.raised_ms(), a.cleared_ms(),
                     a.acknowledged(), a.ack_by(), a.ack_note(), a.message()});
      }
      r.payload = std::move(v);
      break;
    }
    case pb::Response::kAck:
      r.payload = AckInfo{m.ack().alert_id(), m.ack().already_acknowledged()};
      break;
    case pb::Response::kTrend: {
      Trend t{m.trend().asset(), m.trend().metric(), {}};
      for (const auto& p : m.trend().points()) t.points.push_back({p.ts_ms(), p.value()});
      r.payload = std::move(t);
      break;
    }
    case pb::Response::kQueue: {
      const auto& q = m.queue();
      r.payload = QueueInfo{q.depth(),      q.bytes(),        q.oldest_ms(), q.uplink_connected(),
                            q.sent_total(), q.dropped_total()};
      break;
    }
    case pb::Response::kModels: {
      std::vector<ModelInfo> v;
      for (const auto& x : m.models().models()) {
        v.push_back({x.asset(), x.state(), x.file(), x.trained_ms(), x.threshold()});
      }
      r.payload = std::move(v);
      break;
    }
  }
  return r;
}

std::uint32_t decode_frame_length(std::string_view header) {
  const auto b = [&header](std::size_t i) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(header[i]));
  };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

std::string_view command_name(const ControlCommand& command) {
  static constexpr std::string_view kNames[] = {"status", "devices", "tags",  "assets", "alerts",
                                                "ack",    "trend",   "queue", "models"};
  static_assert(std::size(kNames) == std::variant_size_v<ControlCommand>);
  return kNames[command.index()];
}

}  // namespace vibgate::daemon
