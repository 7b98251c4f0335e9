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
          m.mutable_models()->set_asset(c.asset);
        } else if constexpr (std::is_same_v<T, ModelCommand>) {
          auto* o = m.mutable_model();
          o->set_action(c.action == ModelCommand::Action::rollback
                            ? pb::ModelCommand::ACTION_ROLLBACK
                            : pb::ModelCommand::ACTION_PROMOTE);
          o->set_asset(c.asset);
          o->set_version(c.version);
        } else if constexpr (std::is_same_v<T, TrainCommand>) {
          auto* o = m.mutable_train();
          o->set_asset(c.asset);
          o->set_duration_s(c.duration_s);
          o->set_from_ms(c.from_ms);
          o->set_to_ms(c.to_ms);
          o->set_stage(c.stage);
        } else if constexpr (std::is_same_v<T, SpectrumQuery>) {
          m.mutable_spectrum()->set_asset(c.asset);
        } else if constexpr (std::is_same_v<T, ModelImportCommand>) {
          auto* o = m.mutable_model_import();
          o->set_asset(c.asset);
          o->set_file_name(c.file_name);
          o->set_onnx(c.onnx);
          o->set_from_ms(c.from_ms);
          o->set_to_ms(c.to_ms);
          for (const auto& col : c.columns) o->add_columns(col);
          o->mutable_values()->Add(c.values.begin(), c.values.end());
          o->set_calibration_name(c.calibration_name);
        } else if constexpr (std::is_same_v<T, ModelExportQuery>) {
          m.mutable_model_export()->set_asset(c.asset);
        } else if constexpr (std::is_same_v<T, OtaQuery>) {
          m.mutable_ota();
        } else if constexpr (std::is_same_v<T, ShadowCommand>) {
          auto* o = m.mutable_shadow();
          o->set_asset(c.asset);
          o->set_version(c.version);
          o->set_duration_s(c.duration_s);
          o->set_file(c.file);
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
      r.command = ModelsQuery{m.models().asset()};
      break;
    case pb::Request::kModel: {
      const auto& x = m.model();
      ModelCommand c;
      switch (x.action()) {
        case pb::ModelCommand::ACTION_PROMOTE:
          c.action = ModelCommand::Action::promote;
          break;
        case pb::ModelCommand::ACTION_ROLLBACK:
          c.action = ModelCommand::Action::rollback;
          break;
        default:
          return std::nullopt;  // an action this build does not know: never guess
      }
      c.asset = x.asset();
      c.version = x.version();
      r.command = std::move(c);
      break;
    }
    case pb::Request::kTrain:
      r.command = TrainCommand{m.train().asset(), m.train().duration_s(), m.train().from_ms(),
                               m.train().to_ms(), m.train().stage()};
      break;
    case pb::Request::kOta:
      r.command = OtaQuery{};
      break;
    case pb::Request::kShadow: {
      const auto& x = m.shadow();
      r.command = ShadowCommand{x.asset(), x.version(), x.duration_s(), x.file()};
      break;
    }
    case pb::Request::kSpectrum:
      r.command = SpectrumQuery{m.spectrum().asset()};
      break;
    case pb::Request::kModelImport: {
      const auto& x = m.model_import();
      ModelImportCommand c;
      c.asset = x.asset();
      c.file_name = x.file_name();
      c.onnx = x.onnx();
      c.from_ms = x.from_ms();
      c.to_ms = x.to_ms();
      c.columns.assign(x.columns().begin(), x.columns().end());
      c.values.assign(x.values().begin(), x.values().end());
      c.calibration_name = x.calibration_name();
      r.command = std::move(c);
      break;
    }
    case pb::Request::kModelExport:
      r.command = ModelExportQuery{m.model_export().asset()};
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
          s->set_config_path(p.config_path);
          s->set_uplink_state(p.uplink_state);
          s->set_outbox_oldest_ms(p.outbox_oldest_ms);
          s->set_storage_error(p.storage_error);
          for (const auto& [name, value] : p.counters) {
            auto* c = s->add_counters();
            c->set_name(name);
            c->set_value(value);
          }
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
            o->set_state(d.state);
            o->set_rtt_ms(d.rtt_ms);
            o->set_polls(d.polls);
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
            o->set_model_version(a.model_version);
            o->set_channel(a.channel);
            o->set_learning_progress(a.learning_progress);
            o->set_acknowledged(a.acknowledged);
            o->set_active_alert_id(a.active_alert_id);
            o->set_drift_psi_score(a.drift_psi_score);
            o->set_drift_psi_feature_max(a.drift_psi_feature_max);
            o->set_drift_feature(a.drift_feature);
            o->set_drift_windows(a.drift_windows);
            o->set_drift_state(a.drift_state);
            o->set_shadow_version(a.shadow_version);
            o->set_shadow_score(a.shadow_score);
            o->set_shadow_progress(a.shadow_progress);
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
        } else if constexpr (std::is_same_v<T, OtaInfo>) {
          auto* o = m.mutable_ota();
          o->set_enabled(p.enabled);
          for (const auto& k : p.trusted_keys) o->add_trusted_keys(k);
          for (const auto& b : p.bundles) {
            auto* x = o->add_bundles();
            x->set_bundle_id(b.bundle_id);
            x->set_state(b.state);
            x->set_next_offset(b.next_offset);
            x->set_total(b.total);
            x->set_updated_ms(b.updated_ms);
            x->set_reason(b.reason);
            x->set_detail(b.detail);
            x->set_key_id(b.key_id);
            x->set_sequence(b.sequence);
            x->set_targets(b.targets);
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
            o->set_version(x.version);
            o->set_note(x.note);
            o->set_feature_hash(x.feature_hash);
          }
        } else if constexpr (std::is_same_v<T, Spectrum>) {
          auto* s = m.mutable_spectrum();
          s->set_asset(p.asset);
          s->set_ts_ms(p.ts_ms);
          s->set_bin_hz(p.bin_hz);
          s->mutable_amplitude()->Add(p.amplitude.begin(), p.amplitude.end());
          for (const auto& mk : p.markers) {
            auto* o = s->add_markers();
            o->set_name(mk.name);
            o->set_hz(mk.hz);
          }
        } else if constexpr (std::is_same_v<T, ModelImportInfo>) {
          auto* o = m.mutable_model_import();
          o->set_asset(p.asset);
          o->set_state(p.state);
          o->set_import_id(p.import_id);
          o->set_version(p.version);
          o->set_error(p.error);
          o->set_file_name(p.file_name);
          o->set_rows(p.rows);
          for (const auto& l : p.layers) o->add_layers(l);
          o->set_normalization(p.normalization);
          o->set_threshold_float(p.threshold_float);
          o->set_threshold_int8(p.threshold_int8);
          o->set_pearson(p.pearson);
          o->set_max_abs_diff(p.max_abs_diff);
          o->set_max_rel_diff(p.max_rel_diff);
          o->set_verdict_agreement(p.verdict_agreement);
          for (const auto& w : p.warnings) o->add_warnings(w);
          o->set_note(p.note);
        } else if constexpr (std::is_same_v<T, ModelExportInfo>) {
          auto* o = m.mutable_model_export();
          o->set_asset(p.asset);
          o->set_version(p.version);
          o->set_onnx(p.onnx);
          o->set_origin(p.origin);
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
      StatusInfo o;
      o.version = s.version();
      o.uptime_s = s.uptime_s();
      o.storage_ok = s.storage_ok();
      o.uplink_connected = s.uplink_connected();
      o.outbox_depth = s.outbox_depth();
      o.devices = s.devices();
      o.assets = s.assets();
      o.active_alerts = s.active_alerts();
      o.config_path = s.config_path();
      o.uplink_state = s.uplink_state();
      o.outbox_oldest_ms = s.outbox_oldest_ms();
      o.storage_error = s.storage_error();
      o.counters.reserve(static_cast<std::size_t>(s.counters_size()));
      for (const auto& c : s.counters()) o.counters.emplace_back(c.name(), c.value());
      r.payload = std::move(o);
      break;
    }
    case pb::Response::kDevices: {
      std::vector<DeviceInfo> v;
      for (const auto& d : m.devices().devices()) {
        DeviceInfo o;
        o.name = d.name();
        o.kind = d.kind();
        o.endpoint = d.endpoint();
        o.connected = d.connected();
        o.last_ok_ms = d.last_ok_ms();
        o.errors = d.errors();
        o.last_error = d.last_error();
        o.state = d.state();
        o.rtt_ms = d.rtt_ms();
        o.polls = d.polls();
        v.push_back(std::move(o));
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
        AssetInfo o;
        o.name = a.name();
        o.alarm_level = a.alarm_level();
        o.score = a.score();
        o.iso_zone = a.iso_zone();
        o.vrms_mm_s = a.vrms_mm_s();
        o.model_state = a.model_state();
        o.last_window_ms = a.last_window_ms();
        o.model_version = a.model_version();
        o.channel = a.channel();
        o.learning_progress = a.learning_progress();
        o.acknowledged = a.acknowledged();
        o.active_alert_id = a.active_alert_id();
        o.drift_psi_score = a.drift_psi_score();
        o.drift_psi_feature_max = a.drift_psi_feature_max();
        o.drift_feature = a.drift_feature();
        o.drift_windows = a.drift_windows();
        o.drift_state = a.drift_state();
        o.shadow_version = a.shadow_version();
        o.shadow_score = a.shadow_score();
        o.shadow_progress = a.shadow_progress();
        v.push_back(std::move(o));
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
        ModelInfo o;
        o.asset = x.asset();
        o.state = x.state();
        o.file = x.file();
        o.trained_ms = x.trained_ms();
        o.threshold = x.threshold();
        o.version = x.version();
        o.note = x.note();
        o.feature_hash = x.feature_hash();
        v.push_back(std::move(o));
      }
      r.payload = std::move(v);
      break;
    }
    case pb::Response::kModelImport: {
      const auto& x = m.model_import();
      ModelImportInfo o;
      o.asset = x.asset();
      o.state = x.state();
      o.import_id = x.import_id();
      o.version = x.version();
      o.error = x.error();
      o.file_name = x.file_name();
      o.rows = x.rows();
      o.layers.assign(x.layers().begin(), x.layers().end());
      o.normalization = x.normalization();
      o.threshold_float = x.threshold_float();
      o.threshold_int8 = x.threshold_int8();
      o.pearson = x.pearson();
      o.max_abs_diff = x.max_abs_diff();
      o.max_rel_diff = x.max_rel_diff();
      o.verdict_agreement = x.verdict_agreement();
      o.warnings.assign(x.warnings().begin(), x.warnings().end());
      o.note = x.note();
      r.payload = std::move(o);
      break;
    }
    case pb::Response::kModelExport: {
      const auto& x = m.model_export();
      r.payload = ModelExportInfo{x.asset(), x.version(), x.onnx(), x.origin()};
      break;
    }
    case pb::Response::kOta: {
      const auto& x = m.ota();
      OtaInfo o;
      o.enabled = x.enabled();
      o.trusted_keys.assign(x.trusted_keys().begin(), x.trusted_keys().end());
      for (const auto& b : x.bundles())
        o.bundles.push_back({b.bundle_id(), b.state(), b.next_offset(), b.total(), b.updated_ms(),
                             b.reason(), b.detail(), b.key_id(), b.sequence(), b.targets()});
      r.payload = std::move(o);
      break;
    }
    case pb::Response::kSpectrum: {
      const auto& x = m.spectrum();
      Spectrum o;
      o.asset = x.asset();
      o.ts_ms = x.ts_ms();
      o.bin_hz = x.bin_hz();
      o.amplitude.assign(x.amplitude().begin(), x.amplitude().end());
      for (const auto& mk : x.markers()) o.markers.push_back({mk.name(), mk.hz()});
      r.payload = std::move(o);
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
  static constexpr std::string_view kNames[] = {
      "status", "devices", "tags",  "assets", "alerts",   "ack",          "trend",
      "queue",  "models",  "model", "train",  "spectrum", "model import", "model export", "shadow", "ota"};
  static_assert(std::size(kNames) == std::variant_size_v<ControlCommand>);
  return kNames[command.index()];
}

}  // namespace vibgate::daemon
