// model_lifecycle.cpp — shadow evaluation of staged model versions (issue 9; docs/model.md
// "Shadow evaluation"): start, count, judge, promote or reject, cancel, resume after a restart,
// and the model events that report every step. Loop thread only, except the file copy of
// stage_model_file (a thread of its own, result posted back).
#include <spdlog/spdlog.h>

#include <pthread.h>
#include <algorithm>
#include <boost/asio/post.hpp>
#include <filesystem>
#include <thread>

#include "daemon_impl.hpp"

namespace vibgate::daemon {

namespace {

std::string origin_text(const ShadowOrigin& o) {
  std::string s = o.by.empty() ? std::string("operator") : o.by;
  if (!o.bundle_id.empty()) {
    s += " (bundle ";
    s += o.bundle_id;
    s += ')';
  }
  return s;
}

// "<outcome>; <how the version was made>" (the note column keeps both). Outcomes of earlier
// evaluations of the same version are dropped from `base`, so notes do not grow.
std::string with_base(std::string outcome, std::string base) {
  static constexpr std::string_view kOutcomes[] = {
      "promoted after shadow", "rolled back after shadow", "rejected after shadow",
      "shadow cancelled:", "promotion failed:"};
  for (int guard = 0; guard < 16; ++guard) {
    bool stripped = false;
    for (auto o : kOutcomes) {
      if (base.rfind(o, 0) == 0) {
        const auto cut = base.find("; ");
        base = cut == std::string::npos ? std::string() : base.substr(cut + 2);
        stripped = true;
        break;
      }
    }
    if (!stripped) break;
  }
  if (!base.empty()) {
    outcome += "; ";
    outcome += base;
  }
  return outcome;
}

}  // namespace

void Daemon::Impl::report_model_event(ModelEventInfo info) {
  if (info.wall_ms == 0) info.wall_ms = now_ms();
  const bool bad = info.event == "rolled_back" || info.event == "cancelled";
  const std::string& who = info.point.empty() ? info.asset : info.point;
  if (bad)
    spdlog::warn("asset '{}': model {}: {}: {}", who, info.version, info.event, info.reason);
  else
    spdlog::info("asset '{}': model {}: {}: {}", who, info.version, info.event, info.reason);
  if (store) store->submit_model_event(make_model_event(info));
}

void Daemon::Impl::register_model_version(PointRuntime& a, storage::ModelRecord rec) {
  rec.asset = a.key;
  a.submitted_records[rec.version] = rec;
  store->submit_model(std::move(rec));
}

std::vector<storage::ModelRecord> Daemon::Impl::model_versions(PointRuntime& a) {
  auto rows = store->models(a.key);
  for (auto& r : rows) {
    const auto it = a.submitted_records.find(r.version);
    if (it != a.submitted_records.end()) r = it->second;
  }
  for (const auto& [v, r] : a.submitted_records) {
    if (std::none_of(rows.begin(), rows.end(),
                     [&v = v](const storage::ModelRecord& x) { return x.version == v; }))
      rows.push_back(r);
  }
  std::stable_sort(rows.begin(), rows.end(),
                   [](const storage::ModelRecord& x, const storage::ModelRecord& y) {
                     return x.created_ms < y.created_ms;
                   });
  return rows;
}

std::optional<storage::ModelRecord> Daemon::Impl::find_model_version(PointRuntime& a,
                                                                     const std::string& version) {
  for (auto& r : model_versions(a))
    if (r.version == version) return r;
  return std::nullopt;
}

std::string Daemon::Impl::next_model_version(PointRuntime& a) {
  long next = 0;
  for (const auto& r : model_versions(a))
    next = std::max(next, std::strtol(r.version.c_str(), nullptr, 10));
  return std::to_string(next + 1);
}

std::string Daemon::Impl::start_shadow(const std::string& point, const std::string& version,
                                       const ShadowPolicy& policy, const ShadowOrigin& origin) {
  std::string err;
  PointRuntime* ap = find_point(point, err);
  if (!ap) return "shadow: " + err;
  PointRuntime& a = *ap;
  if (!worker) return "shadow: no analytics running";
  if (std::string e = validate(policy); !e.empty()) return "shadow: " + e;
  if (!a.model || a.model_state != ModelState::scoring || a.model_version.empty())
    return "shadow: asset '" + a.key +
           "' has no active model yet (still learning): a shadow evaluation needs one to "
           "compare against";
  if (version == a.model_version)
    return "shadow: version " + version + " of '" + a.key + "' is the active one";
  auto rec = find_model_version(a, version);
  if (!rec) return "shadow: asset '" + a.key + "' has no version '" + version + "'";
  auto loaded = analytics::load_model(rec->path);
  if (!loaded.model) return "shadow: model version " + version + ": " + loaded.error;
  if (std::string e = analytics::check_compatible(*loaded.model, a.model->features); !e.empty())
    return "shadow: model version " + version + " cannot score '" + a.key +
           "' beside the active version " + a.model_version + ": " + e;
  auto model = std::make_shared<const analytics::Model>(std::move(*loaded.model));
  if (a.shadow) cancel_shadow(a, "replaced by version " + version);
  const std::uint64_t id = next_shadow_id++;
  if (std::string e = worker->set_shadow(a.key, model, id); !e.empty()) return "shadow: " + e;

  ShadowRun run;
  run.version = version;
  run.active_version = a.model_version;
  run.model = std::move(model);
  run.record = *rec;
  // A row left in state "shadow" by a previous run keeps the note of how it was made.
  run.policy = policy;
  run.origin = origin;
  run.id = id;
  run.started = std::chrono::steady_clock::now();
  storage::ModelRecord row = run.record;
  row.state = "shadow";
  if (row.feature_hash.empty()) row.feature_hash = std::to_string(run.model->features.hash());
  register_model_version(a, row);
  a.shadow = std::move(run);

  ModelEventInfo ev;
  ev.event = "shadow_started";
  ev.asset = a.cfg.name;
  ev.point = a.key;
  ev.version = version;
  ev.active_version = a.model_version;
  ev.bundle_id = origin.bundle_id;
  ev.reason = "shadow evaluation for " + std::to_string(policy.duration.count()) +
              " s beside version " + a.model_version + ", started by " + origin_text(origin);
  report_model_event(std::move(ev));
  publish_facade(assets[a.asset]);
  return "";
}

void Daemon::Impl::count_shadow(PointRuntime& a, const WindowResult& r) {
  if (!a.shadow || !r.shadow_scored || r.shadow_id != a.shadow->id || r.learning) return;
  a.shadow->tally.add(r.score, r.verdict, r.shadow_score, r.shadow_verdict);
  a.shadow->last_score = r.shadow_score;
}

void Daemon::Impl::cancel_shadow(PointRuntime& a, const std::string& reason) {
  if (!a.shadow) return;
  ShadowRun run = std::move(*a.shadow);
  a.shadow.reset();
  if (worker) worker->set_shadow(a.key, nullptr, 0);
  record_cancelled(a, run.record, reason, &run);
}

void Daemon::Impl::record_cancelled(PointRuntime& a, storage::ModelRecord row,
                                    const std::string& reason, const ShadowRun* run) {
  row.state = "cancelled";
  row.note = with_base("shadow cancelled: " + reason, row.note);
  register_model_version(a, row);
  ModelEventInfo ev;
  ev.event = "cancelled";
  ev.asset = a.cfg.name;
  ev.point = a.key;
  ev.version = row.version;
  ev.active_version = a.model_version;
  ev.reason = reason;
  if (run) {
    ev.bundle_id = run->origin.bundle_id;
    ev.shadow_windows = run->tally.windows;
    ev.shadow_alarm_rate = run->tally.shadow_alarm_rate();
    ev.active_alarm_rate = run->tally.active_alarm_rate();
  }
  report_model_event(std::move(ev));
}

void Daemon::Impl::check_shadows() {
  const auto now = std::chrono::steady_clock::now();
  for (auto& a : points) {
    if (!a.shadow) continue;
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(now - a.shadow->started);
    const ShadowDecision d = judge_shadow(a.shadow->tally, a.shadow->policy, elapsed);
    if (d.outcome == ShadowOutcome::wait) continue;
    ShadowRun run = std::move(*a.shadow);
    a.shadow.reset();
    if (worker) worker->set_shadow(a.key, nullptr, 0);
    ModelEventInfo ev;
    ev.asset = a.cfg.name;
    ev.point = a.key;
    ev.version = run.version;
    ev.active_version = run.active_version;
    ev.bundle_id = run.origin.bundle_id;
    ev.shadow_windows = run.tally.windows;
    ev.shadow_alarm_rate = run.tally.shadow_alarm_rate();
    ev.active_alarm_rate = run.tally.active_alarm_rate();
    ev.reason = d.reason;
    std::string fail;
    if (d.outcome == ShadowOutcome::promote) {
      fail = activate_version(a, run.version, with_base(d.reason, run.record.note));
      if (fail.empty()) {
        ev.event = "promoted";
        report_model_event(std::move(ev));
        continue;
      }
      ev.reason = "promotion failed: " + fail;
    }
    storage::ModelRecord row = run.record;
    row.state = "rejected";
    row.note = with_base(ev.reason, run.record.note);
    register_model_version(a, row);
    ev.event = "rolled_back";
    report_model_event(std::move(ev));
  }
}

void Daemon::Impl::resume_shadows() {
  for (auto& a : points) {
    // The newest row in state "shadow" resumes; any older one (cannot normally happen) is
    // cancelled.
    std::vector<storage::ModelRecord> left;
    for (const auto& r : model_versions(a))
      if (r.state == "shadow") left.push_back(r);
    for (std::size_t i = 0; i < left.size(); ++i) {
      auto& r = left[i];
      std::string err;
      if (i + 1 == left.size()) {
        err = start_shadow(a.key, r.version, cfg.shadow, ShadowOrigin{"restart", ""});
        if (err.empty()) {
          spdlog::info(
              "asset '{}': shadow evaluation of version {} restarted after a daemon "
              "restart (full period of {} s again)",
              a.key, r.version, cfg.shadow.duration.count());
          continue;
        }
      } else {
        err = "a newer version was also in shadow evaluation";
      }
      record_cancelled(a, r, "daemon restarted and the evaluation could not resume: " + err,
                       nullptr);
    }
  }
}

std::string Daemon::Impl::stage_model_file(PointRuntime& a, const std::string& file,
                                           ShadowPolicy policy, std::string& error) {
  // Checked here, at once (a model file is a few KB, as activate_version loads it).
  auto loaded = analytics::load_model(file);
  if (!loaded.model) {
    error = "shadow: " + loaded.error;
    return "";
  }
  if (!a.model || a.model_state != ModelState::scoring) {
    error = "shadow: asset '" + a.key +
            "' has no active model yet (still learning): a shadow evaluation needs one to "
            "compare against";
    return "";
  }
  if (std::string e = analytics::check_compatible(*loaded.model, a.model->features); !e.empty()) {
    error = "shadow: " + file + " cannot score '" + a.key + "' beside the active version " +
            a.model_version + ": " + e;
    return "";
  }
  if (std::string e = validate(policy); !e.empty()) {
    error = "shadow: " + e;
    return "";
  }
  const std::string version = next_model_version(a);
  const std::string path = models_dir(a) + "/v" + version + ".vgm";
  // Reserve the version now, so a second command does not take the same number.
  storage::ModelRecord rec;
  rec.asset = a.key;
  rec.version = version;
  rec.created_ms = now_ms();
  rec.state = "copying";
  rec.feature_hash = std::to_string(loaded.model->features.hash());
  rec.path = path;
  rec.note = "staged from " + file;
  a.submitted_records[version] = rec;
  auto model = std::make_shared<analytics::Model>(std::move(*loaded.model));
  // The copy (write + fsync + rename) runs on a thread of its own; the result comes back here.
  std::thread([link = trainer, model, path, rec, policy, file, index = a.index]() mutable {
    pthread_setname_np(pthread_self(), "vg-stage");
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    std::string err = analytics::save_model(*model, path);
    std::lock_guard lock(link->mu);
    if (!link->io) return;
    boost::asio::post(*link->io, [link, err, rec, policy, file, index]() mutable {
      Daemon::Impl* impl = nullptr;
      {
        std::lock_guard l(link->mu);
        impl = link->impl;
      }
      if (!impl || impl->stopping || index >= impl->points.size()) return;
      PointRuntime& p = impl->points[index];
      if (!err.empty()) {
        p.submitted_records.erase(rec.version);
        spdlog::error("asset '{}': model file not staged: {}", p.key, err);
        p.train_error = "staging " + file + " failed: " + err;
        return;
      }
      rec.state = "staged";
      impl->register_model_version(p, rec);
      if (std::string e =
              impl->start_shadow(p.key, rec.version, policy, ShadowOrigin{"operator", ""});
          !e.empty()) {
        spdlog::error("asset '{}': {}", p.key, e);
        p.train_error = e;
      }
    });
  }).detach();
  return version;
}

}  // namespace vibgate::daemon
