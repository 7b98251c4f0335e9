// daemon_ota.cpp — over-the-air model updates in the daemon (docs/ota.md): bundle chunks from the
// uplink are staged on a worker thread, the complete bundle is verified (SHA-256, Ed25519 against
// the trusted keys, manifest, model file), checked against this gateway (targets, version,
// replayed sequence, feature compatibility), written as a new model version of every target point
// and handed to the shadow evaluation. Every step is one log line and one model event in the
// outbox (RecordKind::model, Lane::alert).
//
// Threads: chunk and file work runs on one OTA worker thread (BundleStaging is not thread-safe and
// is touched only there); decisions that need the daemon's state run on the loop. Results come
// back to the loop through OtaLink, which the daemon closes before it goes away.
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cmath>
#include <filesystem>
#include <optional>
#include <set>

#include "daemon_impl.hpp"
#include "vibgate/ota/bundle.hpp"
#include "vibgate/ota/staging.hpp"

namespace vibgate::daemon {

namespace fs = std::filesystem;

namespace {

// Outbox records about bundles not (yet) tied to an asset use this device/topic level.
constexpr const char* kOtaAsset = "_ota";
// Chunks waiting for the worker beyond this are dropped; the sender learns the offset to resume
// from at the next chunk (bounded memory: 64 × 256 KiB).
constexpr std::size_t kMaxQueuedChunks = 64;

Metric m_s(const char* n, std::string v) { return Metric{n, std::move(v)}; }
Metric m_i(const char* n, std::uint64_t v) { return Metric{n, static_cast<std::int64_t>(v)}; }

}  // namespace

struct OtaLink {
  std::mutex mu;
  boost::asio::io_context* io = nullptr;  // null after stop
  Daemon::Impl* impl = nullptr;
};

// A target point as the worker needs it (immutable after start).
struct OtaPoint {
  std::size_t index = 0;
  std::string key;
};

struct OtaRuntime {
  boost::asio::thread_pool worker{1};
  std::shared_ptr<OtaLink> link = std::make_shared<OtaLink>();
  std::shared_ptr<const ota::TrustedKeys> keys;
  std::string dir;  // <state_dir>/ota
  // Worker thread only.
  std::unique_ptr<ota::BundleStaging> staging;
  std::unique_ptr<ota::SequenceStore> sequences_disk;
  // Loop thread only.
  ota::SequenceStore sequences_mem{""};
  std::atomic<std::size_t> queued{0};
  // Per bundle: the offset last reported to resume from, and the offset of the last chunk that
  // arrived out of order (none after an accepted chunk).
  std::map<std::string, std::uint64_t> last_resume_hint;
  std::map<std::string, std::uint64_t> last_stray_chunk;
  std::set<std::string> busy;  // bundles between "complete" and "staged"/"refused"
  std::map<std::string, OtaBundleInfo> recent;  // for `vibgate ota`, from the events
};

namespace {

// Runs `fn(impl)` on the loop if the daemon is still there. Any thread.
template <class F>
void to_loop(const std::shared_ptr<OtaLink>& link, F fn) {
  std::lock_guard lock(link->mu);
  if (!link->io) return;
  boost::asio::post(*link->io, [link, fn = std::move(fn)]() mutable {
    Daemon::Impl* impl = nullptr;
    {
      std::lock_guard l(link->mu);
      impl = link->impl;
    }
    if (impl) fn(*impl);
  });
}

// What the worker found in a complete bundle.
struct Completed {
  ota::ChunkResult chunk;
  ota::Verified verified;
  std::shared_ptr<const analytics::Model> model;
  std::string model_error;
};

}  // namespace

void Daemon::Impl::model_event(const std::string& asset, const std::string& event,
                               std::vector<Metric> metrics) {
  std::string line;
  for (const auto& m : metrics) {
    line += ' ';
    line += m.name;
    line += '=';
    std::visit(
        [&line](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string>)
            line += v;
          else
            line += fmt::format("{}", v);
        },
        m.value);
  }
  if (event == "refused")
    spdlog::warn("ota: {} {}:{}", asset, event, line);
  else
    spdlog::info("ota: {} {}:{}", asset, event, line);
  if (ota) note_ota_event(event, metrics);
  if (!store) return;
  storage::ModelEvent e;  // an alert-lane outbox entry of RecordKind::model
  e.asset = asset;
  e.wall_ms = now_ms();
  e.metrics.push_back(m_s("event", event));
  for (auto& m : metrics) e.metrics.push_back(std::move(m));
  store->submit_model_event(std::move(e));
}

// Keeps the state of recent bundles for `vibgate ota` (at most 32, the least recently updated
// dropped). Loop thread.
void Daemon::Impl::note_ota_event(const std::string& event, const std::vector<Metric>& metrics) {
  auto str = [&metrics](const char* name) -> std::string {
    for (const auto& m : metrics)
      if (m.name == name)
        if (const auto* v = std::get_if<std::string>(&m.value)) return *v;
    return {};
  };
  auto num = [&metrics](const char* name) -> std::optional<std::uint64_t> {
    for (const auto& m : metrics)
      if (m.name == name)
        if (const auto* v = std::get_if<std::int64_t>(&m.value))
          return static_cast<std::uint64_t>(*v);
    return std::nullopt;
  };
  const std::string id = str("bundle_id");
  if (id.empty()) return;
  OtaBundleInfo& b = ota->recent[id];
  b.bundle_id = id;
  b.updated_ms = now_ms();
  if (event == "progress")
    b.state = str("detail") == "resume after restart" ? "partial" : "receiving";
  else if (event == "receiving" || event == "verified" || event == "staged" || event == "refused")
    b.state = event;
  if (auto v = num("next_offset")) b.next_offset = *v;
  if (auto v = num("total")) {
    b.total = *v;
    if (event == "receiving") b.next_offset = 0;
  }
  if (event == "staged" || event == "verified") b.next_offset = b.total;
  if (event == "refused") {
    b.reason = str("reason");
    b.detail = str("detail");
  }
  if (auto k = str("key_id"); !k.empty()) b.key_id = k;
  if (auto v = num("sequence")) b.sequence = *v;
  if (auto t = str("targets"); !t.empty()) b.targets = t;
  while (ota->recent.size() > 32) {
    auto oldest = ota->recent.begin();
    for (auto i = ota->recent.begin(); i != ota->recent.end(); ++i)
      if (i->second.updated_ms < oldest->second.updated_ms) oldest = i;
    ota->recent.erase(oldest);
  }
}

OtaInfo Daemon::Impl::ota_info() const {
  OtaInfo info;
  info.enabled = ota != nullptr;
  if (!ota) return info;
  for (const auto& [id, k] : ota->keys->keys) info.trusted_keys.push_back(id);
  for (const auto& [id, b] : ota->recent) info.bundles.push_back(b);
  std::sort(info.bundles.begin(), info.bundles.end(),
            [](const OtaBundleInfo& x, const OtaBundleInfo& y) { return x.updated_ms > y.updated_ms; });
  return info;
}

std::string Daemon::Impl::start_ota() {
  std::string err;
  auto keys =
      std::make_shared<ota::TrustedKeys>(ota::load_trusted_keys(cfg.ota.trusted_keys_dir, &err));
  if (!err.empty()) return "ota: " + err;
  for (const auto& p : keys->problems) spdlog::warn("ota: trusted key skipped: {}", p);
  for (const auto& l : keys->loose)
    spdlog::warn("ota: trusted key {} is writable by group or others; chmod 644 it (owner root)",
                 l);
  if (keys->keys.empty())
    return "ota: trusted_keys_dir " + cfg.ota.trusted_keys_dir +
           ": no valid key (each *.pub holds one Ed25519 public key as 64 hex digits); "
           "add one or set [ota] enabled = false";
  auto rt = std::make_shared<OtaRuntime>();
  boost::asio::post(rt->worker, [] { pthread_setname_np(pthread_self(), "vg-ota"); });
  rt->keys = keys;
  rt->dir = cfg.state_dir + "/ota";
  rt->staging = std::make_unique<ota::BundleStaging>(rt->dir, cfg.ota.max_bundle_bytes);
  if (std::string e = rt->staging->open(); !e.empty()) return "ota: " + e;
  rt->sequences_disk = std::make_unique<ota::SequenceStore>(rt->dir + "/accepted-sequences");
  if (std::string e = rt->sequences_disk->load(); !e.empty()) return "ota: " + e;
  rt->sequences_mem = *rt->sequences_disk;
  {
    std::lock_guard lock(rt->link->mu);
    rt->link->io = &io;
    rt->link->impl = this;
  }
  std::string ids;
  for (const auto& [id, k] : keys->keys) ids += (ids.empty() ? "" : ", ") + id;
  spdlog::info("ota: enabled; trusted keys: {}; {} partial transfer(s) in {}", ids,
               rt->staging->partials().size(), rt->dir);
  ota = std::move(rt);
  return "";
}

void Daemon::Impl::stop_ota() {
  if (!ota) return;
  {
    std::lock_guard lock(ota->link->mu);
    ota->link->io = nullptr;
    ota->link->impl = nullptr;
  }
  ota->worker.join();  // at most one chunk write or one bundle check in progress
}

// The uplink came online: report every partial transfer so its sender resumes (worker reads the
// staging state, the loop reports).
void Daemon::Impl::on_uplink_online() {
  if (!ota) return;
  auto rt = ota;
  boost::asio::post(rt->worker, [rt] {
    auto partials = rt->staging->partials();
    to_loop(rt->link, [partials = std::move(partials)](Daemon::Impl& d) {
      for (const auto& p : partials) {
        d.model_event(kOtaAsset, "progress",
                      {m_s("bundle_id", p.bundle_id), m_i("next_offset", p.next_offset),
                       m_i("total", p.total), m_s("detail", "resume after restart")});
        d.ota->last_resume_hint[p.bundle_id] = p.next_offset;
        d.ota->last_stray_chunk.erase(p.bundle_id);
      }
    });
  });
}

void Daemon::Impl::on_bundle_chunk(uplink::BundleChunk c) {
  if (!ota || stopping) return;
  if (!c.error.empty()) {
    model_event(kOtaAsset, "refused",
                {m_s("bundle_id", c.bundle_id.substr(0, 64)), m_s("reason", "malformed"),
                 m_s("detail", c.error)});
    return;
  }
  if (ota->busy.count(c.bundle_id)) return;  // complete; being checked (a late duplicate)
  if (ota->queued.load() >= kMaxQueuedChunks) {
    spdlog::warn("ota: bundle {}: chunk at {} dropped: {} chunks waiting for the disk",
                 c.bundle_id.substr(0, 64), c.offset, kMaxQueuedChunks);
    return;  // the next chunk will be out of order and name the offset to resume from
  }
  ++ota->queued;
  auto rt = ota;
  ota::ChunkCommand cmd{std::move(c.bundle_id), c.offset, c.total, std::move(c.sha256_hex),
                        std::move(c.data)};
  boost::asio::post(rt->worker, [rt, cmd = std::move(cmd)] {
    --rt->queued;
    Completed done;
    done.chunk = rt->staging->accept(cmd);
    if (done.chunk.kind == ota::ChunkResult::Kind::complete) {
      std::string file;
      std::string err = ota::read_file(done.chunk.path, &file, ota::kMaxBundleBytes);
      if (!err.empty()) {
        done.verified.refusal = ota::Refusal::busy;
        done.verified.detail = err;
      } else {
        done.verified = ota::verify_bundle(file, *rt->keys);
      }
      if (done.verified.refusal == ota::Refusal::none) {
        // The model file is validated by the analytics loader from a staged copy.
        const std::string model_path = rt->dir + "/" + done.verified.manifest.bundle_id + ".vgm";
        err = ota::write_file_durably(model_path, done.verified.manifest.model, 0600);
        if (err.empty()) {
          auto loaded = analytics::load_model(model_path);
          if (loaded.model)
            done.model = std::make_shared<const analytics::Model>(std::move(*loaded.model));
          else
            done.model_error = loaded.error;
        } else {
          done.model_error = err;
        }
        ::unlink(model_path.c_str());
      }
      if (done.verified.refusal != ota::Refusal::none || !done.model)
        rt->staging->discard(cmd.bundle_id);
    }
    to_loop(rt->link, [id = cmd.bundle_id, offset = cmd.offset,
                       done = std::move(done)](Daemon::Impl& d) mutable {
      if (!d.ota) return;
      auto& rt2 = *d.ota;
      const auto& r = done.chunk;
      using K = ota::ChunkResult::Kind;
      if (r.first)
        d.model_event(kOtaAsset, "receiving", {m_s("bundle_id", id), m_i("total", r.total)});
      switch (r.kind) {
        case K::appended:
          rt2.last_stray_chunk.erase(id);
          if (r.quarter != 0)
            d.model_event(kOtaAsset, "progress",
                          {m_s("bundle_id", id), m_i("next_offset", r.next_offset),
                           m_i("total", r.total), m_i("percent", 25u * r.quarter)});
          return;
        case K::out_of_order: {
          // One hint per burst: the chunks a sender already had in flight after a gap all
          // arrive out of order with rising offsets and would repeat it. A chunk at or below the
          // previous stray one means the sender started over somewhere: it gets a hint again.
          auto stray = rt2.last_stray_chunk.find(id);
          auto hint = rt2.last_resume_hint.find(id);
          const bool same_burst = stray != rt2.last_stray_chunk.end() && offset > stray->second &&
                                  hint != rt2.last_resume_hint.end() &&
                                  hint->second == r.next_offset;
          rt2.last_stray_chunk[id] = offset;
          if (same_burst) return;
          rt2.last_resume_hint[id] = r.next_offset;
          d.model_event(kOtaAsset, "progress",
                        {m_s("bundle_id", id), m_i("next_offset", r.next_offset),
                         m_i("total", r.total), m_s("detail", r.detail)});
          return;
        }
        case K::refused:
          rt2.last_resume_hint.erase(id);
          rt2.last_stray_chunk.erase(id);
          d.model_event(kOtaAsset, "refused",
                        {m_s("bundle_id", id), m_s("reason", ota::to_string(r.refusal)),
                         m_s("detail", r.detail)});
          return;
        case K::complete:
          break;
      }
      rt2.last_resume_hint.erase(id);
      rt2.last_stray_chunk.erase(id);
      d.install_bundle(id, std::move(done.verified), std::move(done.model), done.model_error);
    });
  });
}

// Loop thread: a complete, hash-checked bundle as the worker verified it. Checks it against this
// gateway, then writes the model as a new version of every target point (worker) and hands the
// versions to the shadow evaluation.
void Daemon::Impl::install_bundle(const std::string& id, ota::Verified v,
                                  std::shared_ptr<const analytics::Model> model,
                                  const std::string& model_error) {
  auto refuse = [&](ota::Refusal r, const std::string& detail) {
    model_event(kOtaAsset, "refused",
                {m_s("bundle_id", id), m_s("reason", ota::to_string(r)), m_s("detail", detail)});
    if (ota && ota->staging) {
      auto rt = ota;
      boost::asio::post(rt->worker, [rt, id] { rt->staging->discard(id); });
    }
  };
  if (v.refusal != ota::Refusal::none) return refuse(v.refusal, v.detail);
  const ota::BundleManifest& m = v.manifest;
  if (m.bundle_id != id)
    return refuse(ota::Refusal::malformed,
                  "manifest bundle_id '" + m.bundle_id + "' differs from the transfer's id");
  std::string targets;
  for (const auto& t : m.target_assets) targets += (targets.empty() ? "" : ",") + t;
  model_event(kOtaAsset, "verified",
              {m_s("bundle_id", id), m_s("key_id", v.key_id), m_i("sequence", m.sequence),
               m_s("targets", targets)});
  // Targets: "asset" (every channel of it) or "asset:channel" / a point key.
  std::vector<std::size_t> pts;
  for (const auto& t : m.target_assets) {
    if (auto k = point_by_key.find(t); k != point_by_key.end()) {
      pts.push_back(k->second);
    } else if (auto a = asset_by_name.find(t); a != asset_by_name.end()) {
      for (std::size_t p : assets[a->second].points) pts.push_back(p);
    } else if (auto colon = t.find(':');
               colon != std::string::npos && asset_by_name.count(t.substr(0, colon)) &&
               point_by_channel.count(t.substr(colon + 1)) &&
               points[point_by_channel[t.substr(colon + 1)]].cfg.name == t.substr(0, colon)) {
      pts.push_back(point_by_channel[t.substr(colon + 1)]);
    } else {
      return refuse(ota::Refusal::wrong_asset,
                    "target '" + t + "' is not an asset of this gateway");
    }
  }
  std::sort(pts.begin(), pts.end());
  pts.erase(std::unique(pts.begin(), pts.end()), pts.end());
  if (!m.min_gateway_version.empty() &&
      ota::compare_versions(m.min_gateway_version, options.version) > 0)
    return refuse(ota::Refusal::too_new,
                  "needs gateway " + m.min_gateway_version + ", this is " + options.version);
  std::vector<std::string> keys;
  for (std::size_t p : pts) {
    const PointRuntime& a = points[p];
    keys.push_back(a.key);
    const std::uint64_t accepted = ota->sequences_mem.get(a.key);
    if (m.sequence <= accepted)
      return refuse(ota::Refusal::replayed, "sequence " + std::to_string(m.sequence) +
                                                " <= accepted " + std::to_string(accepted) +
                                                " for '" + a.key + "'");
  }
  if (!model) return refuse(ota::Refusal::incompatible, model_error);
  for (std::size_t p : pts) {
    const PointRuntime& a = points[p];
    // Against the active model's features (what the shadow evaluation compares on), else the
    // asset's configured ones at the stream's rate.
    analytics::FeatureConfig f = a.cfg.features;
    f.sample_rate_hz = a.ring_rate_hz > 0 ? a.ring_rate_hz : model->features.sample_rate_hz;
    if (a.model) f = a.model->features;
    if (std::string why = analytics::check_compatible(*model, f); !why.empty())
      return refuse(ota::Refusal::incompatible, "'" + a.key + "': " + why);
    if (a.training)
      return refuse(ota::Refusal::busy,
                    "'" + a.key + "' is training a baseline now; send again later");
  }
  // Accepted: the sequence is remembered now (a replay racing this install is refused), written
  // with the model files on the worker.
  ota->sequences_mem.remember(keys, m.sequence);
  struct Job {
    std::size_t point;
    std::string key, version, path;
  };
  std::vector<Job> jobs;
  for (std::size_t p : pts) {
    PointRuntime& a = points[p];
    const std::string version = next_model_version(a);
    jobs.push_back({p, a.key, version, models_dir(a) + "/v" + version + ".vgm"});
    // Reserved now (in memory): a training finishing meanwhile takes the next number.
    storage::ModelRecord rec;
    rec.version = version;
    rec.created_ms = now_ms();
    rec.state = "receiving";
    rec.path = jobs.back().path;
    a.submitted_records[version] = std::move(rec);
  }
  ota->busy.insert(id);
  auto rt = ota;
  const std::uint32_t shadow_s =
      m.shadow_s != 0 ? m.shadow_s : static_cast<std::uint32_t>(cfg.shadow.duration.count());
  std::string note =
      "bundle " + id + " (sequence " + std::to_string(m.sequence) + ", key " + v.key_id + ")";
  if (!m.note.empty()) note += ": " + m.note;
  boost::asio::post(rt->worker, [rt, id, keys, seq = m.sequence, bytes = m.model, jobs, model,
                                 shadow_s, note, key_id = v.key_id] {
    // Model files first, then the sequence: a crash in between leaves an unregistered file (the
    // bundle can be sent again), never a recorded sequence without its model.
    std::string err;
    for (const auto& j : jobs) {
      std::error_code ec;
      fs::create_directories(fs::path(j.path).parent_path(), ec);
      err = ota::write_file_durably(j.path, bytes, 0640);
      if (!err.empty()) break;
    }
    if (err.empty()) err = rt->sequences_disk->set(keys, seq);
    rt->staging->discard(id);
    to_loop(rt->link, [id, jobs, model, shadow_s, note, err, key_id](Daemon::Impl& d) {
      if (!d.ota) return;
      d.ota->busy.erase(id);
      if (!err.empty()) {
        for (const auto& j : jobs) d.points[j.point].submitted_records.erase(j.version);
        d.model_event(kOtaAsset, "refused",
                      {m_s("bundle_id", id), m_s("reason", "storage"), m_s("detail", err)});
        return;
      }
      for (const auto& j : jobs) {
        PointRuntime& a = d.points[j.point];
        storage::ModelRecord rec;
        rec.asset = a.key;
        rec.version = j.version;
        rec.created_ms = now_ms();
        rec.state = "staged";
        rec.feature_hash = std::to_string(model->features.hash());
        rec.path = j.path;
        rec.note = note;
        d.register_model_version(a, rec);
        d.model_event(a.cfg.name, "staged",
                      {m_s("bundle_id", id), m_s("point", a.key), m_s("version", j.version),
                       m_s("active_version", a.model_version), m_s("key_id", key_id),
                       m_i("shadow_s", shadow_s)});
        d.hand_over_staged(a, j.version, shadow_s, id, note);
      }
    });
  });
}

// A staged bundle version goes to the shadow evaluation (model_lifecycle.cpp, start_shadow) with
// the daemon's [models] policy and the bundle's shadow period; it promotes or rolls back by itself
// and reports "shadow_started", "promoted" / "rolled_back". A point without an active model (still
// learning) has nothing to compare against: the version is activated at once ("promoted").
void Daemon::Impl::hand_over_staged(PointRuntime& a, const std::string& version,
                                    std::uint32_t shadow_s, const std::string& bundle_id,
                                    const std::string& note) {
  if (!a.model || a.model_state != ModelState::scoring || a.model_version.empty()) {
    if (std::string err = activate_version(a, version, note); !err.empty()) {
      model_event(a.cfg.name, "refused",
                  {m_s("bundle_id", bundle_id), m_s("point", a.key), m_s("version", version),
                   m_s("reason", "incompatible model"), m_s("detail", err)});
      return;
    }
    ModelEventInfo info;
    info.event = "promoted";
    info.asset = a.cfg.name;
    info.point = a.key;
    info.version = version;
    info.active_version = version;
    info.reason = "no active model to compare against: activated without a shadow evaluation";
    info.bundle_id = bundle_id;
    report_model_event(std::move(info));
    return;
  }
  ShadowPolicy policy = cfg.shadow;
  policy.duration = std::chrono::seconds(shadow_s);
  ShadowOrigin origin;
  origin.by = "ota";
  origin.bundle_id = bundle_id;
  if (std::string err = start_shadow(a.key, version, policy, origin); !err.empty()) {
    model_event(a.cfg.name, "refused",
                {m_s("bundle_id", bundle_id), m_s("point", a.key), m_s("version", version),
                 m_s("reason", "incompatible model"), m_s("detail", err)});
  }
}

}  // namespace vibgate::daemon
