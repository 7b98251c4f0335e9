// daemon.cpp — vibgated's lifecycle and data path (see vibgate/daemon/daemon.hpp): start-up in
// dependency order, block routing, per-window alarm logic, result storage, on-site baseline
// learning with versioned models, the 1 s housekeeping tick, orderly shutdown and reload.
#include "vibgate/daemon/daemon.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pthread.h>
#include <algorithm>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <thread>

#include "daemon_impl.hpp"

namespace vibgate::daemon {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxLearnRows = 20000;  // reservoir beyond this (memory bound)

std::string iso_utc(std::int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

AssetStatus::Model facade_state(ModelState s) {
  switch (s) {
    case ModelState::none:
      return AssetStatus::Model::none;
    case ModelState::learning:
      return AssetStatus::Model::learning;
    case ModelState::scoring:
      return AssetStatus::Model::scoring;
    case ModelState::error:
      return AssetStatus::Model::error;
  }
  return AssetStatus::Model::none;
}

}  // namespace

const char* to_string(ModelState s) {
  switch (s) {
    case ModelState::none:
      return "none";
    case ModelState::learning:
      return "learning";
    case ModelState::scoring:
      return "scoring";
    case ModelState::error:
      return "error";
  }
  return "?";
}

// Two copies at most (up to the end of the buffer, then from its start): a division per sample
// here was 7 % of the loop thread's time with 208 channels (docs/performance.md, profile).
void SampleRing::push(const std::vector<float>& x) {
  const std::size_t cap = buf_.size();
  if (cap == 0 || x.empty()) return;
  const std::size_t n = std::min(x.size(), cap);
  const float* src = x.data() + (x.size() - n);
  const std::size_t first = std::min(n, cap - head_);
  std::copy_n(src, first, buf_.begin() + static_cast<std::ptrdiff_t>(head_));
  std::copy_n(src + first, n - first, buf_.begin());
  head_ = (head_ + n) % cap;
  size_ = std::min(cap, size_ + n);
}

std::vector<float> SampleRing::last(std::size_t n) const {
  const std::size_t cap = buf_.size();
  n = std::min(n, size_);
  std::vector<float> out(n);
  for (std::size_t k = 0; k < n; ++k) out[k] = buf_[(head_ + cap - n + k) % cap];
  return out;
}

Daemon::Impl::Impl(boost::asio::io_context& io_, DaemonConfig config, DaemonOptions opts)
    : io(io_), cfg(std::move(config)), options(std::move(opts)), tick(io_) {}

// ---- start-up ------------------------------------------------------------------------------

std::string Daemon::Impl::lock_state_dir() {
  std::error_code ec;
  fs::create_directories(cfg.state_dir, ec);
  if (ec) {
    std::string msg = "state directory ";
    msg += cfg.state_dir;
    msg += ": cannot create: ";
    msg += ec.message();
    return msg;
  }
  if (::access(cfg.state_dir.c_str(), W_OK | X_OK) != 0) {
    std::string msg = "state directory ";
    msg += cfg.state_dir;
    msg += ": not writable: ";
    msg += std::strerror(errno);
    return msg;
  }
  const std::string lock_path = cfg.state_dir + "/vibgated.lock";
  lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (lock_fd < 0) {
    std::string msg = "state directory ";
    msg += cfg.state_dir;
    msg += ": cannot open lock file: ";
    msg += std::strerror(errno);
    return msg;
  }
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {0};
    const ssize_t n = ::pread(lock_fd, pid, sizeof pid - 1, 0);
    std::string msg = "another vibgated uses state directory ";
    msg += cfg.state_dir;
    if (n > 0) {
      msg += " (pid ";
      msg += std::string(pid, static_cast<std::size_t>(n));
      msg += ")";
    }
    ::close(lock_fd);
    lock_fd = -1;
    return msg;
  }
  const std::string me = std::to_string(::getpid());
  if (::ftruncate(lock_fd, 0) == 0 && ::pwrite(lock_fd, me.data(), me.size(), 0) < 0) {
    // informational only
  }
  return "";
}

// models/<asset> for an asset with one channel, models/<asset>/<channel, '/' as %2F> otherwise.
std::string Daemon::Impl::models_dir(const PointRuntime& a) const {
  std::string dir = cfg.state_dir + "/models/" + a.cfg.name;
  if (a.cfg.channels.size() > 1) {
    dir += '/';
    for (char c : a.channel) {  // '/' as "%2F" (and '%' as "%25"): distinct channels, distinct dirs
      if (c == '/')
        dir += "%2F";
      else if (c == '%')
        dir += "%25";
      else
        dir += c;
    }
  }
  return dir;
}

std::string Daemon::Impl::start() {
  if (std::string err = lock_state_dir(); !err.empty()) return err;

  auto opened = storage::Store::open(cfg.store_uplink.store);
  if (!opened.store) return opened.message;
  if (!opened.notice.empty()) spdlog::warn("storage: {}", opened.notice);
  store = std::move(opened.store);
  spdlog::info("storage: {} open", cfg.store_uplink.store.path);

  for (std::size_t i = 0; i < cfg.assets.size(); ++i) {
    AssetGroup g;
    g.name = cfg.assets[i].name;
    g.index = i;
    for (const auto& ch : cfg.assets[i].channels) {
      PointRuntime a;
      a.cfg = cfg.assets[i];
      a.channel = ch;
      a.key = a.cfg.channels.size() == 1 ? a.cfg.name : a.cfg.name + ":" + ch;
      a.index = points.size();
      a.asset = i;
      a.alarm = std::make_unique<AssetAlarm>(cfg.alarm);
      point_by_channel[ch] = a.index;
      point_by_key[a.key] = a.index;
      g.points.push_back(a.index);
      points.push_back(std::move(a));
    }
    asset_by_name[g.name] = i;
    assets.push_back(std::move(g));
  }
  close_stale_alerts();
  init_models();

  if (cfg.facade_enabled) {
    facade = std::make_unique<ModbusFacade>(cfg.facade);
    if (std::string err = facade->start(); !err.empty()) return err;
    for (const auto& g : assets) publish_facade(g);
  }

  control = std::make_unique<ControlServer>(io, *owner);
  ControlServerOptions copt;
  copt.mode = cfg.control_socket_mode;
  if (!cfg.control_socket_group.empty()) copt.group = cfg.control_socket_group;
  copt.allow_temp_dirs = options.allow_temp_dirs;
  if (std::string err = control->listen(cfg.control_socket, copt); !err.empty()) return err;

  if (cfg.prometheus.enabled) {
    prometheus = std::make_unique<MetricsHttpServer>(io, [this] { return collect_metrics(); });
    if (std::string err = prometheus->listen(cfg.prometheus.address, cfg.prometheus.port);
        !err.empty())
      return err;
  }

  if (cfg.ota.enabled) {
    if (std::string err = start_ota(); !err.empty()) return err;
  }
  if (cfg.store_uplink.uplink_enabled) {
    try {
      uplink = std::make_unique<uplink::Uplink>(io, cfg.store_uplink.uplink, *store);
    } catch (const std::exception& e) {
      std::string msg = "uplink: ";
      msg += e.what();
      return msg;
    }
    if (ota) {
      uplink->on_bundle_chunk([this](uplink::BundleChunk c) { on_bundle_chunk(std::move(c)); });
      uplink->on_online([this] { on_uplink_online(); });
    }
    uplink->start();
  } else {
    spdlog::info("uplink: disabled; the outbox keeps filling within the storage quota");
  }

  if (!points.empty()) {
    std::vector<AssetSpec> specs;
    for (auto& a : points) {
      AssetSpec s;
      s.asset = a.key;
      s.channel = a.channel;
      if (a.model) {
        s.model = a.model;
      } else {
        s.learn = a.cfg.features;
        s.learn->sample_rate_hz = 0;
      }
      specs.push_back(std::move(s));
    }
    AnalyticsWorker::Options wo;
    // A serial sensor's read delivers a block per channel and frame, so a burst from many
    // channels must fit: a fixed 64 dropped blocks from 208 channels with the CPU 75 % idle
    // (bench/system_bench.py). 16 blocks per channel is at most 16 × 4096 floats each (256 KiB)
    // and only while they wait.
    wo.queue_capacity_blocks = cfg.analytics_queue_blocks != 0
                                   ? cfg.analytics_queue_blocks
                                   : std::max<std::size_t>(64, 16 * points.size());
    worker = std::make_unique<AnalyticsWorker>(std::move(specs), wo, [this](WindowResult r) {
      boost::asio::post(io, [this, r = std::move(r)]() mutable { on_window(std::move(r)); });
    });
  }
  if (worker) resume_shadows();
  start_ingest();

  tick.expires_after(std::chrono::milliseconds(0));
  tick.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) on_tick();
  });
  return "";
}

// A Modbus device or serial sensor changed state: one log line, and a health event stored and
// uplinked (so the cloud learns that a sensor went offline). Loop thread.
void Daemon::Impl::report_health(std::string_view kind, const std::string& name, bool online,
                                 std::string_view state, const std::string& detail) {
  if (online)
    spdlog::info("{} '{}': {}", kind, name, state);
  else
    spdlog::warn("{} '{}': {}{}{}", kind, name, state, detail.empty() ? "" : ": ", detail);
  if (!store) return;
  storage::HealthEvent e;
  e.device = name;
  e.wall_ms = now_ms();
  e.state = std::string(state);
  e.detail = detail;
  store->submit_health(std::move(e));
}

void Daemon::Impl::start_ingest() {
  if (!cfg.ingest.devices.empty()) {
    ingest::IngestCallbacks cb;
    cb.on_tags = [this](const std::vector<ingest::TagSample>& samples) {
      for (const auto& s : samples) {
        std::string key = s.device;
        key += '/';
        key += s.tag;
        tags[key].sample = s;
      }
      counters.tag_updates += samples.size();
    };
    cb.on_samples = [this](const SampleBlock& b) { route(b); };
    cb.on_health_change = [this](const std::string& device, const ingest::DeviceHealth& h) {
      report_health("device", device, h.state == ingest::DeviceState::online,
                    ingest::to_string(h.state), h.last_error);
    };
    poller = std::make_unique<ingest::ModbusPoller>(io, cfg.ingest, std::move(cb));
    poller->start();
  }
  for (const auto& sc : cfg.ingest.serial_sensors) {
    ingest::SerialSensorOptions so;
    const std::string name = sc.name;
    so.on_state_change = [this, name](ingest::SensorState s, const std::string& err) {
      report_health("serial sensor", name, s == ingest::SensorState::online, ingest::to_string(s),
                    err);
    };
    try {
      auto sensor = std::make_unique<ingest::SerialSensor>(
          io, sc, [this](const SampleBlock& b) { route(b); }, so);
      sensor->start();
      serial.push_back(std::move(sensor));
    } catch (const std::exception& e) {
      spdlog::error("serial sensor '{}': {}", sc.name, e.what());
    }
  }
}

void Daemon::Impl::stop_ingest() {
  if (poller) poller->stop();
  poller.reset();
  for (auto& s : serial) s->stop();
  serial.clear();
}

// ---- models --------------------------------------------------------------------------------

// For every asset: the active version in storage, else the configured seed model (registered
// as version 1), else learning.
void Daemon::Impl::init_models() {
  for (auto& a : points) {
    const auto records = store->models(a.key);
    const storage::ModelRecord* active = nullptr;
    for (const auto& r : records)
      if (r.state == "active") active = &r;
    std::string path, version;
    if (active) {
      path = active->path;
      version = active->version;
    } else if (!a.cfg.model_file.empty()) {
      path = a.cfg.model_file;
    }
    if (!path.empty()) {
      auto loaded = analytics::load_model(path);
      if (loaded.model) {
        a.model = std::make_shared<const analytics::Model>(std::move(*loaded.model));
        a.model_state = ModelState::scoring;
        if (version.empty()) {
          version = "1";
          for (const auto& r : records) {
            const long v = std::strtol(r.version.c_str(), nullptr, 10);
            if (v >= std::strtol(version.c_str(), nullptr, 10)) version = std::to_string(v + 1);
          }
          storage::ModelRecord rec;
          rec.asset = a.key;
          rec.version = version;
          rec.created_ms = now_ms();
          rec.state = "active";
          rec.feature_hash = std::to_string(a.model->features.hash());
          rec.path = path;
          rec.note = "configured model file";
          store->submit_model(std::move(rec));
        }
        a.model_version = version;
        spdlog::info("asset '{}': model version {} ({}) scoring", a.key, version, path);
        continue;
      }
      a.model_error = loaded.error;
      spdlog::error("asset '{}': {}; learning a new baseline instead", a.key, loaded.error);
      ++counters.model_errors;
    }
    a.model_state = ModelState::learning;
    a.learn_for = a.cfg.learn;
    spdlog::info("asset '{}': no model yet, learning a baseline for {} s", a.key,
                 a.cfg.learn.count());
  }
}

void Daemon::Impl::learn(PointRuntime& a, WindowResult& r) {
  if (a.training || r.model_input.empty()) return;
  if (a.rows_seen == 0) {
    a.learn_start_ms = r.wall_ms;
    a.learn_rate_hz = r.sample_rate_hz;
  }
  ++a.rows_seen;
  if (a.rows.size() < kMaxLearnRows) {
    a.rows.push_back(std::move(r.model_input));
  } else {
    // Reservoir sampling keeps a uniform sample of the whole period in bounded memory.
    const std::uint64_t j = (a.rows_seen * 6364136223846793005ull + 1442695040888963407ull) >> 11;
    if (j % a.rows_seen < kMaxLearnRows) a.rows[j % kMaxLearnRows] = std::move(r.model_input);
  }
  const auto elapsed = std::chrono::milliseconds(r.wall_ms - a.learn_start_ms);
  if (elapsed >= a.learn_for && a.rows.size() >= a.cfg.learn_min_windows) {
    std::string why = "learned on site from ";
    why += std::to_string(std::chrono::duration_cast<std::chrono::seconds>(elapsed).count());
    why += " s, ";
    why += std::to_string(a.rows.size());
    why += " windows";
    train(a, std::move(why));
  }
}

// Trains on a thread of its own (seconds of CPU); the result is posted back to the loop.
void Daemon::Impl::train(PointRuntime& a, std::string note) {
  analytics::FeatureConfig features = a.cfg.features;
  features.sample_rate_hz = a.learn_rate_hz;
  auto rows = std::make_shared<std::vector<std::vector<float>>>(std::move(a.rows));
  a.rows.clear();
  a.rows.shrink_to_fit();
  a.rows_seen = 0;
  start_trainer(a, features, std::move(note), [rows](std::string&) { return std::move(*rows); });
}

void Daemon::Impl::train_from_history(PointRuntime& a, analytics::FeatureConfig features,
                                      std::int64_t from_ms, std::int64_t to_ms) {
  storage::ModelInputQuery q;
  q.asset = a.cfg.name;
  q.channel = a.channel;
  q.from_ms = from_ms;
  q.to_ms = to_ms;
  q.input_hash = features.hash();
  q.max_rows = kMaxLearnRows;
  std::string note = "trained from the windows stored between ";
  note += iso_utc(from_ms);
  note += " and ";
  note += iso_utc(to_ms);
  const std::size_t min_rows = a.cfg.learn_min_windows;
  start_trainer(a, std::move(features), std::move(note),
                [path = cfg.store_uplink.store.path, vfs = cfg.store_uplink.store.vfs_name, q,
                 min_rows](std::string& error) {
                  auto in = storage::read_model_inputs(path, q, vfs);
                  if (!in.error.empty()) {
                    error = std::move(in.error);
                  } else if (in.rows.size() < min_rows) {
                    error = "only ";
                    error += std::to_string(in.rows.size());
                    error += " stored windows in that range";
                    if (in.other_settings > 0) {
                      error += " (";
                      error += std::to_string(in.other_settings);
                      error += " more computed with other feature settings)";
                    }
                    error += ", learn_min_windows is ";
                    error += std::to_string(min_rows);
                  }
                  return std::move(in.rows);
                });
}

void Daemon::Impl::start_trainer(PointRuntime& a, analytics::FeatureConfig features,
                                 std::string note, RowSource source) {
  a.training = true;
  std::string version = next_model_version(a);
  std::string path = models_dir(a) + "/v" + version + ".vgm";
  spdlog::info("asset '{}': training model version {} ({})", a.key, version, note);
  std::thread([link = trainer, source = std::move(source), features, index = a.index, version, path,
               note]() mutable {
    pthread_setname_np(pthread_self(), "vg-train");
    std::shared_ptr<const analytics::Model> model;
    std::string error;
    try {
      auto rows = source(error);
      if (error.empty()) {
        analytics::TrainingSummary summary;
        summary.source = note;
        summary.windows = rows.size();
        summary.trained_at = iso_utc(now_ms());
        summary.seed = 1;
        analytics::TrainOptions topt;
        topt.sample_budget = 2'000'000;  // bounds training to seconds on a gateway core
        auto m = analytics::build_model(features, rows, topt, analytics::ThresholdRule{}, summary);
        std::error_code ec;
        fs::create_directories(fs::path(path).parent_path(), ec);
        error = analytics::save_model(m, path);
        if (error.empty()) model = std::make_shared<const analytics::Model>(std::move(m));
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
    std::lock_guard lock(link->mu);
    if (!link->io) return;  // the daemon is gone
    boost::asio::post(*link->io, [link, index, model, version, path, note, error]() mutable {
      Daemon::Impl* impl = nullptr;
      {
        std::lock_guard l(link->mu);
        impl = link->impl;
      }
      if (impl)
        impl->on_trained(index, std::move(model), std::move(version), std::move(path),
                         std::move(note), std::move(error));
    });
  }).detach();
}

void Daemon::Impl::on_trained(std::size_t index, std::shared_ptr<const analytics::Model> model,
                              std::string version, std::string path, std::string note,
                              std::string error) {
  if (stopping || index >= points.size()) return;
  PointRuntime& a = points[index];
  a.training = false;
  if (!model) {
    a.stage_next_training = false;
    ++counters.model_errors;
    a.model_error = error;
    a.train_error = error;
    spdlog::error("asset '{}': training failed: {}; {}", a.key, error,
                  a.model ? "the active model stays" : "learning again");
    a.model_state = a.model ? ModelState::scoring : ModelState::learning;
    // Learning restarts its clock only when no live learning is under way (a failed training
    // from history leaves a running live collection alone).
    if (!a.model && a.rows_seen == 0) a.learn_start_ms = 0;
    return;
  }
  ++counters.models_trained;
  storage::ModelRecord rec;
  rec.asset = a.key;
  rec.version = version;
  rec.created_ms = now_ms();
  rec.state = "staged";
  rec.feature_hash = std::to_string(model->features.hash());
  rec.path = path;
  rec.note = note;
  register_model_version(a, rec);
  if (a.stage_next_training) {
    // `model train --from --stage`: evaluated in shadow, promoted or rejected by the rule.
    a.stage_next_training = false;
    std::string err = start_shadow(a.key, version, cfg.shadow, ShadowOrigin{"operator", ""});
    if (!err.empty()) {
      a.train_error = err;
      spdlog::error("asset '{}': trained version {} stays staged: {}", a.key, version, err);
    }
    return;
  }
  std::string err = activate_version(a, version, note);
  if (!err.empty()) spdlog::error("asset '{}': {}", a.key, err);
}

// Makes `version` the asset's active model: loads its file, swaps it into the worker, marks
// the previous active version retired. Returns "" or one line.
std::string Daemon::Impl::activate_version(PointRuntime& a, const std::string& version,
                                           std::string note) {
  // model_versions: the store's rows and those submitted moments ago (not committed yet).
  const auto records = model_versions(a);
  const storage::ModelRecord* target = nullptr;
  for (const auto& r : records)
    if (r.version == version) target = &r;
  std::string path = target ? target->path : models_dir(a) + "/v" + version + ".vgm";
  auto loaded = analytics::load_model(path);
  if (!loaded.model) return "model version " + version + ": " + loaded.error;
  auto model = std::make_shared<const analytics::Model>(std::move(*loaded.model));
  if (worker) {
    if (std::string err = worker->swap_model(a.key, model); !err.empty()) return err;
  }
  for (const auto& r : records) {
    if (r.state == "active" && r.version != version) {
      auto old = r;
      old.state = "retired";
      register_model_version(a, std::move(old));
    }
  }
  storage::ModelRecord rec;
  if (target) rec = *target;
  rec.asset = a.key;
  rec.version = version;
  if (rec.created_ms == 0) rec.created_ms = now_ms();
  rec.state = "active";
  rec.feature_hash = std::to_string(model->features.hash());
  rec.path = path;
  if (!note.empty()) rec.note = note;
  register_model_version(a, std::move(rec));
  a.model = std::move(model);
  a.model_version = version;
  a.model_state = ModelState::scoring;
  a.drift.reported = false;  // the worker's monitor restarts with the new model
  a.model_error.clear();
  a.train_error.clear();
  spdlog::info("asset '{}': model version {} active", a.key, version);
  publish_facade(assets[a.asset]);
  return "";
}

// Alerts left open by a previous run: the alarm state machines start fresh, so close them with
// a reason (a persisting fault raises a new alert within raise_n windows).
void Daemon::Impl::close_stale_alerts() {
  for (auto state : {storage::AlertState::raised, storage::AlertState::acknowledged}) {
    for (const auto& al : store->alerts(state, 10000)) {
      storage::AlertEvent e;
      e.kind = storage::AlertState::cleared;
      e.alert_id = al.id;
      e.asset = al.asset;
      e.level = al.level;
      e.wall_ms = now_ms();
      e.reason = "closed at daemon start: the alarm state is re-evaluated from new data";
      store->submit_alert_event(std::move(e));
      spdlog::info("alert {} ({}): closed at start, state re-evaluated", al.id, al.asset);
    }
  }
}

// ---- data path -----------------------------------------------------------------------------

void Daemon::Impl::route(const SampleBlock& block) {
  ++counters.blocks;
  const auto it = point_by_channel.find(block.channel);
  if (it == point_by_channel.end()) return;  // a channel no asset monitors
  PointRuntime& a = points[it->second];
  if (a.ring_rate_hz != block.sample_rate_hz || a.ring_units != block.units) {
    a.ring_rate_hz = block.sample_rate_hz;
    a.ring_units = block.units;
    a.ring.reset(static_cast<std::size_t>(std::max(1.0, cfg.snapshot_s * block.sample_rate_hz)));
  }
  a.ring.push(block.samples);
  if (worker) worker->submit(block);
}

void Daemon::Impl::on_window(WindowResult r) {
  if (stopping && !worker) return;
  const auto it = point_by_channel.find(r.channel);
  if (it == point_by_channel.end()) return;
  PointRuntime& a = points[it->second];
  AssetGroup& g = assets[a.asset];
  ++a.windows;
  a.iso_zone = r.iso_zone;
  a.vrms = r.velocity_rms_mm_s;
  a.last_window_ms = r.wall_ms;
  if (r.spectrum) {
    a.spectrum = r.spectrum;
    a.spectrum_bin_hz = r.spectrum_bin_hz;
    a.spectrum_ms = r.wall_ms;
  }
  if (r.learning) {
    ++counters.learning_windows;
    a.score = 0.0;
    if (a.model_state != ModelState::learning && !a.training) a.model_state = ModelState::learning;
  } else {
    ++counters.windows;
    a.score = r.score;
    count_shadow(a, r);
  }
  if (r.drift)  // daemon_drift.cpp
    on_drift(a, r.model_generation, std::move(*r.drift), std::move(r.drift_feature));

  // Alarm logic: while learning only the ISO path has evidence (score 0).
  WindowInput in;
  in.wall_ms = r.wall_ms;
  in.score = r.learning ? 0.0 : r.score;
  in.iso_zone = r.iso_zone;
  in.velocity_rms_mm_s = r.velocity_rms_mm_s;
  in.features = r.features;
  in.gap = r.gap;
  const auto transition = a.alarm->on_window(in);
  publish_facade(g);
  if (r.arrival_mono_ns > 0) {
    const auto now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    const double ms = static_cast<double>(now_ns - r.arrival_mono_ns) / 1e6;
    counters.latency_ms_last = ms;
    counters.latency_ms_max = std::max(counters.latency_ms_max, ms);
    latency_ring[latency_n++ % kLatencyRing] = static_cast<float>(ms);
  }
  if (transition) {
    on_transition(a, *transition);
    // [alarm] changed by a reload while this point was raised: the new parameters apply now.
    if (a.alarm->level() == AlarmLevel::normal && !(a.alarm->config() == cfg.alarm))
      a.alarm = std::make_unique<AssetAlarm>(AssetAlarm::continuing(cfg.alarm, *a.alarm));
    // Write-back follows the asset's level, the worst of its points.
    const AlarmLevel level = asset_level(g);
    if (level != g.level) {
      run_actions(g, static_cast<int>(g.level), static_cast<int>(level));
      g.level = level;
    }
  }
  store_result(a, r, transition.has_value());
  if (r.learning) learn(a, r);
}

AlarmLevel Daemon::Impl::asset_level(const AssetGroup& g) const {
  AlarmLevel level = AlarmLevel::normal;
  for (std::size_t p : g.points) level = std::max(level, points[p].alarm->level());
  return level;
}

// The asset's facade block shows its worst point: the highest score, level, ISO zone and
// velocity; the model state of the least ready point (error, then learning, then scoring); the
// newest window; acknowledged only when every active alert of the asset is.
void Daemon::Impl::publish_facade(const AssetGroup& g) {
  if (!facade) return;
  AssetStatus s;
  bool any_active = false, all_acked = true;
  int worst_model = -1;
  std::int64_t last_ms = 0;
  const auto model_rank = [](ModelState m) {
    switch (m) {
      case ModelState::error:
        return 3;
      case ModelState::none:
        return 2;
      case ModelState::learning:
        return 1;
      case ModelState::scoring:
        return 0;
    }
    return 2;
  };
  for (std::size_t p : g.points) {
    const PointRuntime& a = points[p];
    const auto st = a.alarm->status();
    s.score = std::max(s.score, a.score);
    s.alarm_level = std::max(s.alarm_level, static_cast<std::uint8_t>(st.level));
    s.iso_zone = std::max(s.iso_zone, static_cast<std::uint8_t>(std::clamp(a.iso_zone, 0, 4)));
    s.velocity_rms_mm_s = std::max(s.velocity_rms_mm_s, a.vrms);
    if (model_rank(a.model_state) > worst_model) {
      worst_model = model_rank(a.model_state);
      s.model_state = facade_state(a.model_state);
    }
    if (st.level != AlarmLevel::normal) {
      any_active = true;
      all_acked = all_acked && st.acknowledged;
    }
    last_ms = std::max(last_ms, a.last_window_ms);
  }
  s.alert_acknowledged = any_active && all_acked;
  if (last_ms > 0)
    s.window_end = std::chrono::system_clock::time_point(std::chrono::milliseconds(last_ms));
  facade->update(g.index, s);
}

void Daemon::Impl::on_transition(PointRuntime& a, const AlarmTransition& t) {
  const auto level = [](AlarmLevel l) { return to_string(l); };
  if (t.to == AlarmLevel::normal)
    spdlog::info("asset '{}': {} -> normal: {}", a.key, level(t.from), t.reason);
  else
    spdlog::warn("asset '{}': {} -> {}: {}", a.key, level(t.from), level(t.to), t.reason);
  for (auto& se : to_alert_events(t, a.cfg.name)) {
    if (se.event.kind == storage::AlertState::raised)
      ++counters.alerts_raised;
    else
      ++counters.alerts_cleared;
    // An asset with several channels has an alert per channel: the reason names it.
    if (a.cfg.channels.size() > 1)
      se.event.reason = "channel " + a.channel + ": " + se.event.reason;
    submit_alert_event(a, se.seq, std::move(se.event));
  }
}

// Write-back to PLCs (off unless configured): a level crossing writes the action's value, its
// reset crossing the reset value. Queued on the device's bus worker behind any poll; not retried
// (a repeated write is a new command to a machine); outcomes logged and counted.
void Daemon::Impl::run_actions(const AssetGroup& g, int from, int to) {
  const PointRuntime& a = points[g.points.front()];
  for (const auto& act : a.cfg.actions) {
    std::optional<std::uint16_t> value;
    if (from < act.on_level && to >= act.on_level) value = act.value;
    if (from >= act.on_level && to < act.on_level) value = act.reset_value;
    if (!value) continue;
    if (!poller) {
      ++counters.write_errors;
      spdlog::error("asset '{}': write-back to '{}' skipped: no Modbus polling running", a.cfg.name,
                    act.device);
      continue;
    }
    std::string what = act.device;
    what += act.coil ? " coil " : " holding register ";
    what += std::to_string(act.address);
    what += " = ";
    what += std::to_string(*value);
    auto done = [this, name = a.cfg.name, what](const std::string& err) {
      if (err.empty()) {
        ++counters.writes;
        spdlog::info("asset '{}': write-back {}: done", name, what);
      } else {
        ++counters.write_errors;
        spdlog::error("asset '{}': write-back {}: {}", name, what, err);
      }
    };
    if (act.coil)
      poller->write_coil(act.device, act.address, *value != 0, done);
    else
      poller->write_register(act.device, act.address, *value, done);
  }
}

// Raised events create the alert (the store returns its id, then the snapshot and any held
// events for that alert follow); acknowledged/cleared events need the id and wait for it.
void Daemon::Impl::submit_alert_event(PointRuntime& a, std::uint64_t seq, storage::AlertEvent e) {
  const std::size_t index = a.index;
  if (e.kind == storage::AlertState::raised) {
    storage::Snapshot snap;
    snap.asset = a.cfg.name;
    snap.channel = a.channel;
    snap.sample_rate_hz = a.ring_rate_hz;
    snap.units = a.ring_units;
    snap.samples = a.ring.last(a.ring.size());
    snap.wall_ms =
        e.wall_ms - (a.ring_rate_hz > 0
                         ? static_cast<std::int64_t>(
                               1000.0 * static_cast<double>(snap.samples.size()) / a.ring_rate_hz)
                         : 0);
    store->submit_alert_event(std::move(e), [this, index, seq, snap = std::move(snap)](
                                                std::error_code ec, std::uint64_t id) mutable {
      boost::asio::post(io, [this, index, seq, ec, id, snap = std::move(snap)]() mutable {
        PointRuntime& asset = points[index];
        if (ec) {
          ++counters.store_errors;
          spdlog::error("asset '{}': alert not stored: {}", asset.key, ec.message());
          asset.held.erase(seq);
          return;
        }
        asset.alert_ids[seq] = id;
        asset.seq_of_id[id] = seq;
        if (!snap.samples.empty()) {
          snap.alert_id = id;
          store->submit_snapshot(std::move(snap));
        }
        auto held = std::move(asset.held[seq]);
        asset.held.erase(seq);
        for (auto& h : held) {
          h.alert_id = id;
          store->submit_alert_event(std::move(h));
        }
      });
    });
    return;
  }
  const auto id = a.alert_ids.find(seq);
  if (id == a.alert_ids.end()) {
    a.held[seq].push_back(std::move(e));
    return;
  }
  e.alert_id = id->second;
  store->submit_alert_event(std::move(e));
}

void Daemon::Impl::store_result(PointRuntime& a, const WindowResult& r, bool force_flush) {
  storage::ResultRow row;
  row.asset = a.cfg.name;
  row.channel = r.channel;
  row.wall_ms = r.wall_ms;
  row.score = r.learning ? 0.0 : r.score;
  row.verdict = r.learning ? Verdict::normal : r.verdict;
  row.iso_zone = r.iso_zone;
  row.velocity_rms_mm_s = r.velocity_rms_mm_s;
  row.model_version = r.learning ? "learning" : a.model_version;
  row.features = r.features;
  for (const auto* tag : {&a.cfg.speed_tag, &a.cfg.load_tag}) {
    if (tag->empty()) continue;
    const auto t = tags.find(*tag);
    if (t == tags.end()) continue;
    row.features.push_back({tag == &a.cfg.speed_tag ? "speed" : "load", t->second.sample.value});
  }
  row.features.push_back({"alarm_level", static_cast<std::int64_t>(a.alarm->level())});
  if (!r.learning) add_drift_metrics(a, row.features);  // daemon_drift.cpp
  if (!std::isfinite(row.score)) row.score = 0.0;

  // One model input per interval, of its first window: a uniform-in-time history to retrain from.
  if (cfg.keep_model_inputs && a.interval_input.empty() && !r.model_input.empty()) {
    a.interval_input = r.model_input;
    a.interval_hash = r.input_hash;
  }
  const auto interval = cfg.result_interval.count();
  if (interval == 0) {
    a.best = std::move(row);
    flush_result(a, true);
    return;
  }
  if (!a.best || row.score > a.best->score) a.best = std::move(row);
  if (a.interval_start_ms == 0) a.interval_start_ms = r.wall_ms;
  if (force_flush || r.wall_ms - a.interval_start_ms >= interval) {
    flush_result(a, true);
    a.interval_start_ms = r.wall_ms;
  }
}

// Submits the interval's result row (if any) with the interval's model input. count_errors:
// a failed commit is counted on the loop (not at shutdown, when the loop may be gone).
void Daemon::Impl::flush_result(PointRuntime& a, bool count_errors) {
  if (!a.best) return;
  ++counters.results_stored;
  a.best->model_input = std::move(a.interval_input);
  a.best->input_hash = a.interval_hash;
  a.interval_input.clear();
  if (count_errors) {
    store->submit_result(std::move(*a.best), [this](std::error_code ec, std::uint64_t) {
      if (ec) boost::asio::post(io, [this] { ++counters.store_errors; });
    });
  } else {
    store->submit_result(std::move(*a.best));
  }
  a.best.reset();
}

// ---- housekeeping --------------------------------------------------------------------------

// One log line when the store starts failing commits (full disk, I/O error) and one when it
// recovers by itself; meanwhile the store keeps the rows queued in memory and retries, and
// `vibgate status` and the metrics show the error. Loop thread, once per tick.
void Daemon::Impl::log_storage_health(const storage::StoreStats& ss) {
  if (!ss.last_error.empty() && storage_fault_since_ms == 0) {
    storage_fault_since_ms = now_ms();
    spdlog::error(
        "storage {}: {}; {} rows kept in memory and retried (up to {}), ingest, alarms and the "
        "Modbus facade go on",
        cfg.store_uplink.store.path, ss.last_error, ss.queued_rows,
        cfg.store_uplink.store.max_queued_rows);
  } else if (ss.last_error.empty() && storage_fault_since_ms != 0) {
    spdlog::info("storage {}: writing again after {:.1f} s; {} rows still queued",
                 cfg.store_uplink.store.path,
                 static_cast<double>(now_ms() - storage_fault_since_ms) / 1000.0, ss.queued_rows);
    storage_fault_since_ms = 0;
  }
}

void Daemon::Impl::on_tick() {
  if (stopping) return;
  if (poller) {
    // Poll jitter of the last tick (also keeps the poller's sample buffer from growing).
    auto j = poller->take_jitter_ms();
    if (!j.empty()) {
      const auto k = static_cast<std::size_t>(0.99 * static_cast<double>(j.size() - 1));
      std::nth_element(j.begin(), j.begin() + static_cast<std::ptrdiff_t>(k), j.end());
      counters.poll_jitter_ms_p99 = j[k];
      counters.poll_jitter_ms_max = *std::max_element(j.begin(), j.end());
    }
  }
  const auto ss = store->stats();
  log_storage_health(ss);
  check_shadows();
  if (facade) {
    facade->beat();
    GatewayHealth h;
    h.storage_ok = ss.last_error.empty();
    if (uplink) {
      const auto us = uplink->stats();
      h.uplink_connected = us.connected;
    }
    h.outbox_depth = outbox_totals(store->outbox_stats()).depth;
    facade->set_health(h);
  }
  if (notifier.enabled()) {
    notifier.watchdog();
    if (++ticks % 5 == 1) notifier.status(status_line());
  }
  auto period = std::chrono::milliseconds(1000);
  if (auto wd = notifier.watchdog_interval())
    period = std::min(period, std::chrono::duration_cast<std::chrono::milliseconds>(*wd / 2));
  tick.expires_after(period);
  tick.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) on_tick();
  });
}

std::string Daemon::Impl::status_line() const {
  // Assets in alarm/warning by their worst point; channels by model state.
  std::size_t scoring = 0, learning = 0, warn = 0, alarm = 0;
  for (const auto& a : points) {
    if (a.model_state == ModelState::scoring) ++scoring;
    if (a.model_state == ModelState::learning) ++learning;
  }
  for (const auto& g : assets) {
    const AlarmLevel level = asset_level(g);
    if (level == AlarmLevel::warning) ++warn;
    if (level == AlarmLevel::alarm) ++alarm;
  }
  std::string s = std::to_string(assets.size());
  s += " assets (";
  if (points.size() != assets.size()) {
    s += std::to_string(points.size());
    s += " channels: ";
  }
  s += std::to_string(scoring);
  s += " scoring, ";
  s += std::to_string(learning);
  s += " learning), ";
  s += std::to_string(alarm);
  s += " in alarm, ";
  s += std::to_string(warn);
  s += " warning; uplink ";
  if (!uplink)
    s += "disabled";
  else
    s += uplink->stats().connected ? "connected" : "offline";
  if (store) {
    s += ", outbox ";
    s += std::to_string(outbox_totals(store->outbox_stats()).depth);
  }
  return s;
}

std::vector<MetricSample> Daemon::Impl::collect_metrics() const {
  std::vector<MetricSample> m;
  using T = MetricSample::Type;
  auto add = [&m](std::string name, std::string help, T type, double value,
                  std::vector<std::pair<std::string, std::string>> labels = {}) {
    m.push_back(MetricSample{std::move(name), std::move(help), type, std::move(labels), value});
  };
  const double up =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  add("vibgate_uptime_seconds", "Seconds since the daemon started", T::gauge, up);
  {
    // glibc's view of the heap: bytes in use (all arenas + mmapped chunks) and held but free.
    const struct mallinfo2 mi = ::mallinfo2();
    add("vibgate_heap_in_use_bytes", "Heap bytes allocated and in use (glibc mallinfo2)", T::gauge,
        static_cast<double>(mi.uordblks + mi.hblkhd));
    add("vibgate_heap_free_bytes", "Heap bytes held by the allocator but free", T::gauge,
        static_cast<double>(mi.fordblks));
  }
  add("vibgate_blocks_total", "Vibration sample blocks received", T::counter,
      static_cast<double>(counters.blocks));
  add("vibgate_windows_scored_total", "Windows scored by a model", T::counter,
      static_cast<double>(counters.windows));
  add("vibgate_windows_learning_total", "Windows featurized for baseline learning", T::counter,
      static_cast<double>(counters.learning_windows));
  add("vibgate_results_stored_total", "Result rows submitted to storage", T::counter,
      static_cast<double>(counters.results_stored));
  add("vibgate_alerts_raised_total", "Alerts raised", T::counter,
      static_cast<double>(counters.alerts_raised));
  add("vibgate_alerts_cleared_total", "Alerts cleared", T::counter,
      static_cast<double>(counters.alerts_cleared));
  add("vibgate_alerts_acknowledged_total", "Alerts acknowledged by an operator", T::counter,
      static_cast<double>(counters.alerts_acknowledged));
  add("vibgate_store_errors_total", "Rows the store refused or failed to write", T::counter,
      static_cast<double>(counters.store_errors));
  add("vibgate_models_trained_total", "Baselines trained on the gateway", T::counter,
      static_cast<double>(counters.models_trained));
  add("vibgate_model_errors_total", "Model files that failed to load or train", T::counter,
      static_cast<double>(counters.model_errors));
  add("vibgate_reloads_total", "Configuration reloads applied", T::counter,
      static_cast<double>(counters.reloads));
  add("vibgate_reloads_refused_total", "Configuration reloads refused", T::counter,
      static_cast<double>(counters.reloads_refused));
  add("vibgate_tag_updates_total", "Tag values received", T::counter,
      static_cast<double>(counters.tag_updates));
  add("vibgate_poll_jitter_ms", "Poll due time to first request on the wire, last second (ms)",
      T::gauge, counters.poll_jitter_ms_p99, {{"quantile", "0.99"}});
  add("vibgate_poll_jitter_ms_max", "Maximum of the above, last second (ms)", T::gauge,
      counters.poll_jitter_ms_max);
  add("vibgate_write_backs_total", "Write-back actions written to PLCs", T::counter,
      static_cast<double>(counters.writes));
  add("vibgate_write_back_errors_total", "Write-back actions that failed", T::counter,
      static_cast<double>(counters.write_errors));
  {
    // Block arrival (the window's last sample received) to the Modbus facade updated.
    std::vector<float> lat(
        latency_ring.begin(),
        latency_ring.begin() + static_cast<std::ptrdiff_t>(std::min(latency_n, kLatencyRing)));
    const char* help =
        "Last sample of a window received to Modbus facade updated (ms), latest 8192 windows";
    for (double q : {0.5, 0.99}) {
      double v = 0;
      if (!lat.empty()) {
        const auto k = static_cast<std::size_t>(q * static_cast<double>(lat.size() - 1));
        std::nth_element(lat.begin(), lat.begin() + static_cast<std::ptrdiff_t>(k), lat.end());
        v = lat[k];
      }
      add("vibgate_window_to_facade_ms", help, T::gauge, v,
          {{"quantile", q == 0.5 ? "0.5" : "0.99"}});
    }
    add("vibgate_window_to_facade_ms_max", "Maximum of the above since start (ms)", T::gauge,
        counters.latency_ms_max);
  }
  if (worker) {
    const auto w = worker->stats();
    add("vibgate_analytics_queue_depth", "Blocks waiting for the analytics worker", T::gauge,
        static_cast<double>(w.queue_depth));
    add("vibgate_analytics_dropped_blocks_total", "Blocks dropped: analytics queue full",
        T::counter, static_cast<double>(w.dropped_blocks));
    add("vibgate_analytics_rejected_blocks_total", "Blocks rejected (rate mismatch, errors)",
        T::counter, static_cast<double>(w.rejected_blocks));
    add("vibgate_analytics_gaps_total", "Stream restarts after lost samples", T::counter,
        static_cast<double>(w.gaps));
    add("vibgate_analytics_busy_seconds_total", "Worker time spent windowing and scoring",
        T::counter, std::chrono::duration<double>(w.busy).count());
  }
  if (poller) {
    for (const auto& [name, h] : poller->health()) {
      std::vector<std::pair<std::string, std::string>> l{{"device", name}};
      add("vibgate_device_polls_total", "Modbus polls", T::counter, static_cast<double>(h.polls),
          l);
      add("vibgate_device_poll_failures_total", "Modbus polls that failed", T::counter,
          static_cast<double>(h.poll_failures), l);
      add("vibgate_device_request_errors_total", "Modbus requests that failed", T::counter,
          static_cast<double>(h.request_errors), l);
      add("vibgate_device_overruns_total", "Polls skipped: previous still in flight", T::counter,
          static_cast<double>(h.overruns), l);
      add("vibgate_device_online", "1 when the device answers", T::gauge,
          h.state == ingest::DeviceState::online ? 1.0 : 0.0, l);
      add("vibgate_device_rtt_ms", "Average request round trip (ms)", T::gauge, h.rtt_ms_avg, l);
    }
  }
  for (const auto& s : serial) {
    const auto st = s->stats();
    std::vector<std::pair<std::string, std::string>> l{{"sensor", s->config().name}};
    add("vibgate_serial_frames_total", "Serial frames or lines decoded", T::counter,
        static_cast<double>(st.frames), l);
    add("vibgate_serial_crc_errors_total", "Serial frames with a bad CRC", T::counter,
        static_cast<double>(st.crc_errors), l);
    add("vibgate_serial_online", "1 when the serial port is open", T::gauge,
        st.state == ingest::SensorState::online ? 1.0 : 0.0, l);
  }
  if (store) {
    const auto ss = store->stats();
    const auto os = store->outbox_stats();
    add("vibgate_outbox_depth", "Outbox entries not yet delivered", T::gauge,
        static_cast<double>(os.lanes[0].depth), {{"lane", "alert"}});
    add("vibgate_outbox_depth", "Outbox entries not yet delivered", T::gauge,
        static_cast<double>(os.lanes[1].depth), {{"lane", "bulk"}});
    add("vibgate_store_file_bytes", "Database file size", T::gauge,
        static_cast<double>(ss.file_bytes));
    add("vibgate_store_commits_total", "Group commits", T::counter,
        static_cast<double>(ss.commits));
    add("vibgate_store_queued_rows", "Rows waiting for the writer", T::gauge,
        static_cast<double>(ss.queued_rows));
    add("vibgate_store_refused_rows_total", "Rows refused (queue full, storage fault)", T::counter,
        static_cast<double>(ss.refused_rows));
    add("vibgate_store_evictions_total", "Rows evicted by the quota", T::counter,
        static_cast<double>(ss.evicted_results), {{"class", "results"}});
    add("vibgate_store_evictions_total", "Rows evicted by the quota", T::counter,
        static_cast<double>(ss.evicted_health), {{"class", "health"}});
    add("vibgate_store_evictions_total", "Rows evicted by the quota", T::counter,
        static_cast<double>(ss.evicted_snapshots), {{"class", "snapshots"}});
    add("vibgate_store_evictions_total", "Rows evicted by the quota", T::counter,
        static_cast<double>(ss.evicted_outbox_bulk), {{"class", "outbox_bulk"}});
    add("vibgate_store_evictions_total", "Rows evicted by the quota", T::counter,
        static_cast<double>(ss.evicted_alerts), {{"class", "alerts"}});
    add("vibgate_store_evictions_total", "Rows evicted by the quota", T::counter,
        static_cast<double>(ss.evicted_outbox_alerts), {{"class", "outbox_alerts"}});
    add("vibgate_store_ok", "1 when the last storage operation succeeded", T::gauge,
        ss.last_error.empty() ? 1.0 : 0.0);
    add("vibgate_sqlite_memory_bytes", "Heap memory held by SQLite (page caches)", T::gauge,
        static_cast<double>(ss.sqlite_memory_bytes));
  }
  if (uplink) {
    const auto u = uplink->stats();
    add("vibgate_uplink_connected", "1 when the MQTT session is up", T::gauge,
        u.connected ? 1.0 : 0.0);
    add("vibgate_uplink_messages_sent_total", "Records published", T::counter,
        static_cast<double>(u.messages_sent));
    add("vibgate_uplink_messages_acked_total", "Records confirmed by the broker", T::counter,
        static_cast<double>(u.messages_acked));
    add("vibgate_uplink_connect_failures_total", "Failed connection attempts", T::counter,
        static_cast<double>(u.connect_failures));
    add("vibgate_uplink_records_rejected_total", "Records dropped as unpublishable", T::counter,
        static_cast<double>(u.records_rejected));
  }
  if (facade) {
    const auto f = facade->stats();
    add("vibgate_facade_requests_total", "Modbus facade requests answered", T::counter,
        static_cast<double>(f.requests));
    add("vibgate_facade_connections_total", "Modbus facade connections", T::counter,
        static_cast<double>(f.connections));
    add("vibgate_facade_refused_total", "Modbus facade connections closed at once: max_clients",
        T::counter, static_cast<double>(f.refused));
    add("vibgate_facade_not_allowed_total",
        "Modbus facade connections closed at once: address not in modbus_facade.allow", T::counter,
        static_cast<double>(f.not_allowed));
  }
  for (const auto& a : points) {
    std::vector<std::pair<std::string, std::string>> l{{"asset", a.cfg.name},
                                                       {"channel", a.channel}};
    add("vibgate_asset_score", "Latest normalized anomaly score (1.0 = threshold)", T::gauge,
        a.score, l);
    add("vibgate_asset_alarm_level", "0 normal, 1 warning, 2 alarm", T::gauge,
        static_cast<double>(a.alarm->level()), l);
    add("vibgate_asset_velocity_rms_mm_s", "Latest velocity RMS (mm/s)", T::gauge, a.vrms, l);
  }
  collect_drift_metrics(m);  // daemon_drift.cpp
  return m;
}

// ---- shutdown and reload -------------------------------------------------------------------

// The last steps of every stop (orderly or destructor): no trainer result is posted any more,
// the uplink says goodbye, the listeners close, the store commits everything accepted.
void Daemon::Impl::close_outputs() {
  {
    std::lock_guard lock(trainer->mu);
    trainer->io = nullptr;
    trainer->impl = nullptr;
  }
  stop_ota();
  if (uplink) uplink->stop();
  if (prometheus) prometheus->close();
  if (control) control->close();
  if (facade) facade->stop();
  if (store) store->flush();
}

Daemon::Daemon(boost::asio::io_context& io, DaemonConfig config, DaemonOptions options)
    : impl_(std::make_unique<Impl>(io, std::move(config), std::move(options))) {
  impl_->owner = this;
}

Daemon::~Daemon() {
  auto& d = *impl_;
  d.stopping = true;
  d.tick.cancel();
  d.stop_ingest();
  if (d.worker) d.worker->stop();
  d.close_outputs();
  if (d.lock_fd >= 0) ::close(d.lock_fd);
}

std::string Daemon::start() {
  {
    std::lock_guard lock(impl_->trainer->mu);
    impl_->trainer->io = &impl_->io;
    impl_->trainer->impl = impl_.get();
  }
  return impl_->start();
}

void Daemon::shutdown(std::chrono::milliseconds budget, std::function<void()> done) {
  auto& d = *impl_;
  if (d.stopping) return;
  d.stopping = true;
  d.tick.cancel();
  if (d.notifier.enabled()) d.notifier.stopping();
  spdlog::info("stopping: draining analytics and storage (budget {} ms)", budget.count());
  d.stop_ingest();  // no new blocks
  const auto deadline = std::chrono::steady_clock::now() + budget * 6 / 10;
  auto wait = std::make_shared<boost::asio::steady_timer>(d.io);
  auto step = std::make_shared<std::function<void()>>();
  std::weak_ptr<std::function<void()>> weak = step;  // no self-reference cycle
  *step = [&d, deadline, wait, weak, done = std::move(done)]() {
    const bool idle = !d.worker || d.worker->wait_idle(std::chrono::milliseconds(0));
    if (!idle && std::chrono::steady_clock::now() < deadline) {
      wait->expires_after(std::chrono::milliseconds(10));
      wait->async_wait([s = weak.lock()](const boost::system::error_code&) {
        if (s) (*s)();
      });
      return;
    }
    if (d.worker) {
      d.worker->stop();  // anything still queued is counted as dropped
      if (!idle) spdlog::warn("stopping: analytics did not drain in time");
    }
    // The worker's last results were posted before stop() returned; they run before this.
    boost::asio::post(d.io, [&d, done]() {
      for (auto& a : d.points) d.flush_result(a, false);
      d.close_outputs();
      const auto ss = d.store->stats();
      spdlog::info("stopped: storage flushed ({} rows written, {} queued)", ss.rows_written,
                   ss.queued_rows);
      done();
    });
  };
  boost::asio::post(d.io, [step] { (*step)(); });
}

std::string Daemon::reload(DaemonConfig next) {
  auto& d = *impl_;
  std::vector<std::string> restart;
  const auto& cur = d.cfg;
  if (next.state_dir != cur.state_dir) restart.push_back("daemon.state_dir");
  if (next.control_socket != cur.control_socket) restart.push_back("daemon.control_socket");
  if (next.store_uplink.store.path != cur.store_uplink.store.path) restart.push_back("[storage]");
  if (next.facade_enabled != cur.facade_enabled || next.facade.port != cur.facade.port ||
      next.facade.bind_address != cur.facade.bind_address)
    restart.push_back("[modbus_facade]");
  if (next.prometheus.enabled != cur.prometheus.enabled ||
      next.prometheus.port != cur.prometheus.port ||
      next.prometheus.address != cur.prometheus.address)
    restart.push_back("[prometheus]");
  if (next.ota.enabled != cur.ota.enabled ||
      next.ota.trusted_keys_dir != cur.ota.trusted_keys_dir ||
      next.ota.max_bundle_bytes != cur.ota.max_bundle_bytes)
    restart.push_back("[ota]");
  bool same_assets = next.assets.size() == cur.assets.size();
  for (std::size_t i = 0; same_assets && i < next.assets.size(); ++i)
    same_assets = next.assets[i].name == cur.assets[i].name &&
                  next.assets[i].channels == cur.assets[i].channels;
  if (!same_assets) restart.push_back("[[asset]] names/channels");
  const auto& nu = next.store_uplink.uplink;
  const auto& cu = cur.store_uplink.uplink;
  if (next.store_uplink.uplink_enabled != cur.store_uplink.uplink_enabled || nu.host != cu.host ||
      nu.port != cu.port || nu.group_id != cu.group_id || nu.edge_node_id != cu.edge_node_id)
    restart.push_back("[uplink]");

  // Applied now: log level, alarm parameters (assets currently normal), ingest.
  spdlog::set_level(spdlog::level::from_str(next.log_level));
  d.cfg.log_level = next.log_level;
  d.cfg.keep_model_inputs = next.keep_model_inputs;
  const auto& oa = cur.alarm;
  const auto& na = next.alarm;
  const bool alarm_changed = !(oa == na);
  std::size_t deferred = 0;
  if (alarm_changed) {
    for (auto& a : d.points) {
      if (a.alarm->level() == AlarmLevel::normal)
        a.alarm = std::make_unique<AssetAlarm>(AssetAlarm::continuing(na, *a.alarm));
      else
        ++deferred;
    }
    d.cfg.alarm = na;
  }
  // A reload cancels running shadow evaluations (their comparison would span two
  // configurations); [models] applies to the evaluations started from now on.
  for (auto& a : d.points) d.cancel_shadow(a, "configuration reloaded (SIGHUP)");
  d.cfg.shadow = next.shadow;
  d.stop_ingest();
  d.cfg.ingest = next.ingest;
  if (same_assets) {
    for (auto& a : d.points) {
      const AssetConfig& n = next.assets[a.asset];
      a.cfg.learn = n.learn;
      a.cfg.speed_tag = n.speed_tag;
      a.cfg.load_tag = n.load_tag;
      a.cfg.actions = n.actions;
    }
  }
  d.tags.clear();
  d.start_ingest();
  ++d.counters.reloads;
  std::string note;
  if (deferred > 0) {
    note += std::to_string(deferred);
    note += " channel(s) in warning/alarm keep the old [alarm] parameters until they clear";
  }
  if (!restart.empty()) {
    if (!note.empty()) note += "; ";
    note += "changed but needing a restart: ";
    for (std::size_t i = 0; i < restart.size(); ++i) {
      if (i) note += ", ";
      note += restart[i];
    }
  }
  return note;
}

void Daemon::reload_refused() { ++impl_->counters.reloads_refused; }

std::string Daemon::status_line() const { return impl_->status_line(); }

ControlReply Daemon::handle(const ControlRequest& request) { return impl_->handle(request); }

}  // namespace vibgate::daemon
