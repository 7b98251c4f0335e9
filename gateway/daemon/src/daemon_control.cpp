// daemon_control.cpp — the daemon's answers to operator commands on the control socket
// (docs/control-socket.md). Runs on the loop thread, one request at a time; reads of the store
// (alerts, trend, models) use its reader connection and are bounded in rows.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <type_traits>

#include "daemon_impl.hpp"
#include "vibgate/analytics/onnx.hpp"

namespace vibgate::daemon {

namespace {

template <class>
inline constexpr bool kAlwaysFalse = false;

// An acknowledgement's stored reason carries the operator's note: "acknowledged[: <note>]".
constexpr std::string_view kAckReason = "acknowledged";
constexpr std::string_view kAckNotePrefix = "acknowledged: ";
std::string ack_reason(const std::string& note) {
  if (note.empty()) return std::string(kAckReason);
  std::string r(kAckNotePrefix);
  r += note;
  return r;
}
std::string ack_note(const std::string& reason) {
  if (reason == kAckReason) return "";
  return reason.rfind(kAckNotePrefix, 0) == 0 ? reason.substr(kAckNotePrefix.size()) : reason;
}

ControlReply error_reply(std::string text) {
  ControlReply r;
  r.ok = false;
  r.error = std::move(text);
  return r;
}

ControlReply ok_reply(ControlPayload payload) {
  ControlReply r;
  r.ok = true;
  r.payload = std::move(payload);
  return r;
}

std::string unknown_asset(const std::string& name) {
  std::string e = "unknown asset '";
  e += name;
  e += "'";
  return e;
}

}  // namespace

ControlReply Daemon::Impl::handle(const ControlRequest& request) {
  return std::visit(
      [this](const auto& c) -> ControlReply {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, StatusQuery>) {
          StatusInfo s;
          s.version = options.version;
          s.uptime_s = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                                      std::chrono::steady_clock::now() - started)
                                                      .count());
          const auto ss = store->stats();
          s.storage_ok = ss.last_error.empty();
          s.storage_error = ss.last_error;
          const auto ob = outbox_totals(store->outbox_stats());
          s.outbox_depth = ob.depth;
          s.outbox_oldest_ms = ob.oldest_ms;
          if (uplink) {
            const auto u = uplink->stats();
            s.uplink_connected = u.connected;
            s.uplink_state = u.online ? "online" : u.connected ? "connected" : "connecting";
            if (!u.connected && !u.last_error.empty()) {
              s.uplink_state += ": ";
              s.uplink_state += u.last_error;
            }
          } else {
            s.uplink_state = "disabled";
          }
          s.devices = static_cast<std::uint32_t>(cfg.ingest.devices.size() +
                                                 cfg.ingest.serial_sensors.size());
          s.assets = static_cast<std::uint32_t>(assets.size());
          for (const auto& a : points)
            if (a.alarm->level() != AlarmLevel::normal) ++s.active_alerts;
          s.config_path = cfg.source;
          for (const auto& m : collect_metrics()) {
            std::string name = m.name;
            for (const auto& [k, v] : m.labels) {
              name += name.find('{') == std::string::npos ? "{" : ",";
              name += k;
              name += '=';
              name += v;
            }
            if (!m.labels.empty()) name += '}';
            s.counters.emplace_back(std::move(name), m.value);
          }
          return ok_reply(std::move(s));
        } else if constexpr (std::is_same_v<T, DevicesQuery>) {
          std::vector<DeviceInfo> out;
          if (poller) {
            const auto health = poller->health();
            for (std::size_t i = 0; i < health.size(); ++i) {
              const auto& [name, h] = health[i];
              DeviceInfo d;
              d.name = name;
              const auto& dc = cfg.ingest.devices[std::min(i, cfg.ingest.devices.size() - 1)];
              d.kind = dc.protocol == ingest::Protocol::tcp ? "modbus-tcp" : "modbus-rtu";
              d.endpoint = dc.protocol == ingest::Protocol::tcp
                               ? dc.host + ":" + std::to_string(dc.port)
                               : dc.bus;
              d.endpoint += " unit ";
              d.endpoint += std::to_string(dc.unit_id);
              d.connected = h.state != ingest::DeviceState::offline;
              d.state = std::string(ingest::to_string(h.state));
              d.last_ok_ms = h.last_ok_wall_ns / 1'000'000;
              d.errors = h.request_errors;
              d.last_error = h.last_error;
              d.rtt_ms = h.rtt_ms_avg;
              d.polls = h.polls;
              out.push_back(std::move(d));
            }
          }
          for (const auto& s : serial) {
            const auto st = s->stats();
            DeviceInfo d;
            d.name = s->config().name;
            d.kind = "serial";
            d.endpoint = s->config().line.port;
            d.connected = st.state == ingest::SensorState::online;
            d.state = d.connected ? "online" : "offline";
            d.errors = st.crc_errors + st.invalid_headers + st.bad_lines + st.open_failures;
            d.last_error = st.last_error;
            d.polls = st.frames;
            out.push_back(std::move(d));
          }
          return ok_reply(std::move(out));
        } else if constexpr (std::is_same_v<T, TagsQuery>) {
          std::vector<TagInfo> out;
          bool device_known = c.device.empty();
          for (const auto& d : cfg.ingest.devices) {
            if (!c.device.empty() && d.name != c.device) continue;
            device_known = true;
            for (const auto& t : d.tags) {
              TagInfo ti;
              ti.device = d.name;
              ti.name = t.name;
              ti.unit = t.unit;
              const auto it = tags.find(d.name + "/" + t.name);
              if (it != tags.end()) {
                ti.value = it->second.sample.value;
                ti.ts_ms = it->second.sample.t.wall_ns / 1'000'000;
                // Good while fresh: updated within 3 poll intervals (at least 3 s).
                const std::int64_t fresh = std::max<std::int64_t>(3000, 3 * d.poll_interval_ms);
                ti.good = now_ms() - ti.ts_ms <= fresh;
              }
              out.push_back(std::move(ti));
            }
          }
          if (!device_known) {
            std::string e = "unknown device '";
            e += c.device;
            e += "'";
            return error_reply(std::move(e));
          }
          return ok_reply(std::move(out));
        } else if constexpr (std::is_same_v<T, AssetsQuery>) {
          std::vector<AssetInfo> out;
          for (const auto& a : points) {  // one row per channel
            AssetInfo ai;
            ai.name = a.cfg.name;
            ai.channel = a.channel;
            const auto st = a.alarm->status();
            ai.alarm_level = static_cast<std::uint32_t>(st.level);
            ai.score = a.score;
            ai.iso_zone = static_cast<std::uint32_t>(std::clamp(a.iso_zone, 0, 4));
            ai.vrms_mm_s = a.vrms;
            ai.model_state = a.training ? "training" : to_string(a.model_state);
            ai.model_version = a.model_version;
            ai.last_window_ms = a.last_window_ms;
            if (a.model_state == ModelState::learning && a.rows_seen > 0 &&
                a.learn_for.count() > 0) {
              const double done = static_cast<double>(a.last_window_ms - a.learn_start_ms) /
                                  (1000.0 * static_cast<double>(a.learn_for.count()));
              ai.learning_progress = std::clamp(done, 0.0, 1.0);
            }
            fill_drift(a, ai);  // daemon_drift.cpp
            ai.acknowledged = st.acknowledged;
            if (a.shadow) {
              ai.shadow_version = a.shadow->version;
              ai.shadow_score = a.shadow->last_score;
              ai.shadow_progress =
                  std::clamp(a.shadow->progress(std::chrono::steady_clock::now()), 0.0, 1.0);
            }
            if (st.active_seq != 0) {
              const auto it = a.alert_ids.find(st.active_seq);
              if (it != a.alert_ids.end()) ai.active_alert_id = it->second;
            }
            out.push_back(std::move(ai));
          }
          return ok_reply(std::move(out));
        } else if constexpr (std::is_same_v<T, AlertsQuery>) {
          const std::size_t limit = c.limit == 0 ? 100 : std::min<std::size_t>(c.limit, 10000);
          std::vector<storage::AlertInfo> rows;
          if (c.active_only) {
            for (auto st : {storage::AlertState::raised, storage::AlertState::acknowledged})
              for (auto& r : store->alerts(st, limit)) rows.push_back(std::move(r));
          } else {
            rows = store->alerts(std::nullopt, limit);
          }
          std::vector<AlertInfo> out;
          for (const auto& r : rows) {
            if (c.since_ms > 0 && r.raised_ms < c.since_ms) continue;
            AlertInfo ai;
            ai.id = r.id;
            ai.asset = r.asset;
            ai.level = static_cast<std::uint32_t>(r.level);
            ai.cause = r.reason.find("ISO") != std::string::npos ? "iso" : "score";
            ai.raised_ms = r.raised_ms;
            ai.cleared_ms = r.cleared_ms;
            ai.acknowledged = r.acknowledged_ms > 0 || r.state == storage::AlertState::acknowledged;
            ai.ack_by = r.acknowledged_by;
            ai.ack_note = ack_note(r.acknowledged_reason);
            ai.message = r.reason;
            out.push_back(std::move(ai));
          }
          std::sort(out.begin(), out.end(),
                    [](const AlertInfo& x, const AlertInfo& y) { return x.id > y.id; });
          if (out.size() > limit) out.resize(limit);
          return ok_reply(std::move(out));
        } else if constexpr (std::is_same_v<T, AckCommand>) {
          if (c.alert_id == 0) return error_reply("ack: an alert id is required");
          const std::string by = c.by.empty() ? "operator" : c.by;
          for (auto& a : points) {
            const auto it = a.seq_of_id.find(c.alert_id);
            if (it == a.seq_of_id.end()) continue;
            const auto result = a.alarm->acknowledge(it->second);
            if (result == AckResult::no_active_alert) break;  // closed: fall through to store
            AckInfo info;
            info.alert_id = c.alert_id;
            info.already_acknowledged = result == AckResult::already_acknowledged;
            if (result == AckResult::acknowledged) {
              auto se =
                  acknowledgement_event(it->second, a.alarm->level(), a.cfg.name, now_ms(), by);
              se.event.reason = ack_reason(c.note);
              submit_alert_event(a, se.seq, std::move(se.event));
              ++counters.alerts_acknowledged;
              publish_facade(assets[a.asset]);
              spdlog::info("alert {} ({}): acknowledged by {}", c.alert_id, a.key, by);
            }
            return ok_reply(info);
          }
          for (const auto& r : store->alerts(std::nullopt, 10000)) {
            if (r.id != c.alert_id) continue;
            AckInfo info;
            info.alert_id = r.id;
            if (r.state == storage::AlertState::acknowledged || r.acknowledged_ms > 0) {
              info.already_acknowledged = true;
              return ok_reply(info);
            }
            storage::AlertEvent e;
            e.kind = storage::AlertState::acknowledged;
            e.alert_id = r.id;
            e.asset = r.asset;
            e.level = r.level;
            e.wall_ms = now_ms();
            e.by = by;
            e.reason = ack_reason(c.note);
            store->submit_alert_event(std::move(e));
            ++counters.alerts_acknowledged;
            return ok_reply(info);
          }
          std::string e = "no alert with id ";
          e += std::to_string(c.alert_id);
          return error_reply(std::move(e));
        } else if constexpr (std::is_same_v<T, TrendQuery>) {
          // "<asset>" (every channel: the worst per result interval) or "<asset>:<channel>".
          std::string asset = c.asset, channel;
          std::size_t channels = 1;
          if (const auto pk = point_by_key.find(c.asset); pk != point_by_key.end()) {
            asset = points[pk->second].cfg.name;
            if (points[pk->second].cfg.channels.size() > 1) channel = points[pk->second].channel;
          } else if (const auto an = asset_by_name.find(c.asset); an != asset_by_name.end()) {
            channels = assets[an->second].points.size();
          } else {
            return error_reply(unknown_asset(c.asset));
          }
          const std::string metric = c.metric.empty() ? "score" : c.metric;
          if (metric != "score" && metric != "vrms" && metric != "iso")
            return error_reply("trend: metric must be score, vrms or iso, got '" + metric + "'");
          const std::int64_t until = c.until_ms > 0 ? c.until_ms : now_ms();
          const std::int64_t since = c.since_ms > 0 ? c.since_ms : until - 3600 * 1000;
          const auto rows = store->recent_scores(asset, since, until, 20000, channel);
          Trend t;
          t.asset = c.asset;
          t.metric = metric;
          // Several channels: at each stored row the worst value among every channel's latest
          // (each channel's value is carried forward until its next row).
          std::map<std::string, double> latest;
          for (const auto& p : rows) {  // oldest first
            const double v = metric == "score"  ? p.score
                             : metric == "vrms" ? p.velocity_rms_mm_s
                                                : static_cast<double>(p.iso_zone);
            double shown = v;
            if (channels > 1) {
              latest[p.channel] = v;
              for (const auto& [ch, x] : latest) shown = std::max(shown, x);
            }
            t.points.push_back({p.wall_ms, shown});
          }
          // Downsample to max_points buckets, keeping each bucket's maximum (peaks matter).
          const std::size_t maxp = c.max_points == 0 ? 500 : c.max_points;
          if (t.points.size() > maxp) {
            std::vector<TrendPoint> ds;
            const double per = static_cast<double>(t.points.size()) / static_cast<double>(maxp);
            for (std::size_t b = 0; b < maxp; ++b) {
              const auto lo = static_cast<std::size_t>(static_cast<double>(b) * per);
              const auto hi = std::min(t.points.size(),
                                       static_cast<std::size_t>(static_cast<double>(b + 1) * per));
              if (lo >= hi) continue;
              TrendPoint best = t.points[lo];
              for (std::size_t k = lo; k < hi; ++k)
                if (t.points[k].value > best.value) best.value = t.points[k].value;
              best.ts_ms = t.points[hi - 1].ts_ms;
              ds.push_back(best);
            }
            t.points = std::move(ds);
          }
          return ok_reply(std::move(t));
        } else if constexpr (std::is_same_v<T, QueueQuery>) {
          QueueInfo q;
          const auto os = store->outbox_stats();
          const auto ob = outbox_totals(os);
          q.depth = ob.depth;
          q.oldest_ms = ob.oldest_ms;
          const auto ss = store->stats();
          q.bytes = ss.file_bytes + ss.wal_bytes;
          q.dropped_total = os.evicted_undelivered;
          if (uplink) {
            const auto u = uplink->stats();
            q.uplink_connected = u.connected;
            q.sent_total = u.messages_acked;
            q.dropped_total += u.records_rejected;
          }
          return ok_reply(q);
        } else if constexpr (std::is_same_v<T, ModelsQuery>) {
          std::vector<ModelInfo> out;
          for (auto& a : points) {
            if (!c.asset.empty() && a.cfg.name != c.asset && a.key != c.asset) continue;
            const auto records = model_versions(a);
            if (records.empty()) {
              ModelInfo mi;
              mi.asset = a.key;
              mi.state = a.training ? "training" : to_string(a.model_state);
              mi.note = a.model_error;
              out.push_back(std::move(mi));
              continue;
            }
            for (const auto& r : records) {
              ModelInfo mi;
              mi.asset = r.asset;
              mi.version = r.version;
              mi.state = r.state;
              mi.file = r.path;
              mi.trained_ms = r.created_ms;
              mi.note = r.note;
              mi.feature_hash = r.feature_hash;
              if (r.version == a.model_version && a.model)
                mi.threshold = static_cast<double>(a.model->threshold_int8);
              if (a.shadow && r.version == a.shadow->version) {
                // The running evaluation: its progress, then how the version was made.
                mi.state = "shadow";
                mi.threshold = static_cast<double>(a.shadow->model->threshold_int8);
                std::string p = shadow_progress_text(
                    a.shadow->tally, a.shadow->progress(std::chrono::steady_clock::now()));
                if (!mi.note.empty()) p += "; " + mi.note;
                mi.note = std::move(p);
              }
              out.push_back(std::move(mi));
            }
            // A training in progress, or the last one's failure (cleared by the next success).
            if (a.training || !a.train_error.empty()) {
              ModelInfo mi;
              mi.asset = a.key;
              mi.state = a.training ? "training" : "failed";
              mi.note = a.training ? std::string() : a.train_error;
              out.push_back(std::move(mi));
            }
          }
          if (!c.asset.empty() && !asset_by_name.count(c.asset) && !point_by_key.count(c.asset))
            return error_reply(unknown_asset(c.asset));
          return ok_reply(std::move(out));
        } else if constexpr (std::is_same_v<T, ModelCommand>) {
          std::string err;
          PointRuntime* ap = find_point(c.asset, err);
          if (!ap) return error_reply(std::move(err));
          PointRuntime& a = *ap;
          std::string version = c.version;
          if (c.action == ModelCommand::Action::rollback) {
            // The highest stored version below the active one.
            const long cur = std::strtol(a.model_version.c_str(), nullptr, 10);
            long best = 0;
            for (const auto& r : model_versions(a)) {
              const long v = std::strtol(r.version.c_str(), nullptr, 10);
              if (v < cur && v > best) best = v;
            }
            if (best == 0)
              return error_reply("model rollback: asset '" + a.key + "' has no version before " +
                                 (a.model_version.empty() ? "none" : a.model_version));
            version = std::to_string(best);
          } else {
            bool known = false;
            for (const auto& r : model_versions(a)) known |= r.version == version;
            if (!known)
              return error_reply("model promote: asset '" + a.key + "' has no version '" + version +
                                 "'");
          }
          cancel_shadow(a, c.action == ModelCommand::Action::rollback
                               ? "operator rolled back to version " + version
                               : "operator promoted version " + version);
          if (std::string e = activate_version(a, version, ""); !e.empty())
            return error_reply(std::move(e));
          std::vector<ModelInfo> out;
          ModelInfo mi;
          mi.asset = a.key;
          mi.version = version;
          mi.state = "active";
          out.push_back(std::move(mi));
          return ok_reply(std::move(out));
        } else if constexpr (std::is_same_v<T, TrainCommand>) {
          std::string err;
          PointRuntime* ap = find_point(c.asset, err);
          if (!ap) return error_reply(std::move(err));
          PointRuntime& a = *ap;
          if (a.training) return error_reply("train: asset '" + a.key + "' is training now");
          if (c.stage && !(c.from_ms > 0 || c.to_ms > 0))
            return error_reply(
                "train: --stage needs --from (a live relearning stops scoring with the active "
                "model, so there is nothing to shadow beside)");
          if (c.stage && !a.model)
            return error_reply("train: --stage: asset '" + a.key +
                               "' has no active model yet (still learning): a shadow evaluation "
                               "needs one to compare against");
          if (c.from_ms > 0 || c.to_ms > 0) {
            if (!(c.from_ms > 0 && c.to_ms > c.from_ms))
              return error_reply("train: the time range is empty (--from must be before --to)");
            // The stored inputs were computed with the active model's features (or, while
            // learning, the configured ones at the stream's rate): train with the same.
            analytics::FeatureConfig f = a.cfg.features;
            if (a.model) {
              f = a.model->features;
            } else if (a.learn_rate_hz > 0 || a.ring_rate_hz > 0) {
              f.sample_rate_hz = a.learn_rate_hz > 0 ? a.learn_rate_hz : a.ring_rate_hz;
            } else {
              return error_reply("train: asset '" + a.key +
                                 "' has delivered no samples yet (its sample rate is unknown)");
            }
            cancel_shadow(a, "operator started a training");
            a.stage_next_training = c.stage;
            train_from_history(a, std::move(f), c.from_ms, c.to_ms);
            std::vector<ModelInfo> out;
            ModelInfo mi;
            mi.asset = a.key;
            mi.state = "training";
            mi.note = c.stage ? "training from the stored windows in the range; the new version is "
                                "staged and evaluated in shadow beside the active one for " +
                                    std::to_string(cfg.shadow.duration.count()) +
                                    " s, then promoted or rolled back (vibgate model list)"
                              : "training from the stored windows in the range; the new version "
                                "becomes active when done (vibgate model list shows it, or the "
                                "error)";
            out.push_back(std::move(mi));
            return ok_reply(std::move(out));
          }
          if (!worker) return error_reply("train: no analytics running");
          analytics::FeatureConfig f = a.cfg.features;
          f.sample_rate_hz = 0;
          cancel_shadow(a, "operator started a relearning");
          if (std::string e = worker->start_learning(a.key, f); !e.empty())
            return error_reply(std::move(e));
          a.rows.clear();
          a.rows_seen = 0;
          a.learn_for = c.duration_s > 0 ? std::chrono::seconds(c.duration_s) : a.cfg.learn;
          a.model_state = ModelState::learning;
          spdlog::info("asset '{}': relearning the baseline for {} s (operator request)", a.key,
                       a.learn_for.count());
          std::vector<ModelInfo> out;
          ModelInfo mi;
          mi.asset = a.key;
          mi.state = "learning";
          mi.note = "collecting " + std::to_string(a.learn_for.count()) +
                    " s of healthy data; the current model stays in storage for rollback";
          out.push_back(std::move(mi));
          return ok_reply(std::move(out));
        } else if constexpr (std::is_same_v<T, OtaQuery>) {
          return ok_reply(ota_info());
        } else if constexpr (std::is_same_v<T, ShadowCommand>) {
          std::string err;
          PointRuntime* ap = find_point(c.asset, err);
          if (!ap) return error_reply("shadow: " + err);
          PointRuntime& a = *ap;
          ShadowPolicy policy = cfg.shadow;
          if (c.duration_s > 0) policy.duration = std::chrono::seconds(c.duration_s);
          std::string version = c.version;
          ModelInfo mi;
          mi.asset = a.key;
          mi.state = "shadow";
          if (!c.file.empty()) {
            if (!c.version.empty())
              return error_reply("shadow: give a version or --file, not both");
            version = stage_model_file(a, c.file, policy, err);
            if (version.empty()) return error_reply(std::move(err));
            mi.note = "copying " + c.file + " in as version " + version +
                      "; then evaluated in shadow beside version " + a.model_version + " for " +
                      std::to_string(policy.duration.count()) + " s";
          } else {
            if (version.empty()) return error_reply("shadow: a version (or --file) is required");
            if (std::string e = start_shadow(a.key, version, policy, ShadowOrigin{"operator", ""});
                !e.empty())
              return error_reply(std::move(e));
            mi.note = "evaluated in shadow beside version " + a.model_version + " for " +
                      std::to_string(policy.duration.count()) +
                      " s, then promoted or rolled back (vibgate model list)";
          }
          mi.version = version;
          std::vector<ModelInfo> out;
          out.push_back(std::move(mi));
          return ok_reply(std::move(out));
        } else if constexpr (std::is_same_v<T, SpectrumQuery>) {
          std::string err;
          const PointRuntime* ap = find_point(c.asset, err);
          if (!ap) return error_reply(std::move(err));
          const PointRuntime& a = *ap;
          if (!a.spectrum) return error_reply("spectrum: no window of '" + a.key + "' yet");
          Spectrum s;
          s.asset = a.key;
          s.ts_ms = a.spectrum_ms;
          s.bin_hz = a.spectrum_bin_hz;
          s.amplitude = *a.spectrum;
          const auto& f = a.cfg.features;
          if (f.shaft_hz) {
            s.markers.push_back({"1x", *f.shaft_hz});
            if (f.bearing) {
              s.markers.push_back({"BPFO", f.bearing->bpfo * *f.shaft_hz});
              s.markers.push_back({"BPFI", f.bearing->bpfi * *f.shaft_hz});
              s.markers.push_back({"BSF", f.bearing->bsf * *f.shaft_hz});
              s.markers.push_back({"FTF", f.bearing->ftf * *f.shaft_hz});
            }
          }
          return ok_reply(std::move(s));
        } else if constexpr (std::is_same_v<T, ModelImportCommand>) {
          std::string err;
          PointRuntime* ap = find_point(c.asset, err);
          if (!ap) return error_reply(std::move(err));
          PointRuntime& a = *ap;
          if (c.onnx.empty()) {  // the state of the last import
            ModelImportInfo info = a.import_info;
            info.asset = a.key;
            if (info.state.empty()) info.state = "none";
            return ok_reply(std::move(info));
          }
          if (std::string e = start_import(a, c); !e.empty()) return error_reply(std::move(e));
          return ok_reply(a.import_info);
        } else if constexpr (std::is_same_v<T, ModelExportQuery>) {
          std::string err;
          const PointRuntime* ap = find_point(c.asset, err);
          if (!ap) return error_reply(std::move(err));
          const PointRuntime& a = *ap;
          if (!a.model)
            return error_reply("model export: asset '" + a.key + "' has no active model");
          // Serializes the in-memory model (a few kB, microseconds): no file IO on the loop.
          ModelExportInfo info;
          info.asset = a.key;
          info.version = a.model_version;
          info.origin = a.model->origin;
          if (std::string e = analytics::export_onnx(*a.model, info.onnx); !e.empty())
            return error_reply("model export: " + e);
          return ok_reply(std::move(info));
        } else {
          static_assert(kAlwaysFalse<T>, "unhandled command");
        }
      },
      request.command);
}

PointRuntime* Daemon::Impl::find_point(const std::string& name, std::string& error) {
  if (const auto pk = point_by_key.find(name); pk != point_by_key.end()) return &points[pk->second];
  const auto an = asset_by_name.find(name);
  if (an == asset_by_name.end()) {
    error = unknown_asset(name);
    return nullptr;
  }
  error = "asset '";
  error += name;
  error += "' has ";
  error += std::to_string(assets[an->second].points.size());
  error += " channels: name one as";
  for (std::size_t p : assets[an->second].points) {
    error += p == assets[an->second].points.front() ? " " : " or ";
    error += points[p].key;
  }
  return nullptr;
}

}  // namespace vibgate::daemon
