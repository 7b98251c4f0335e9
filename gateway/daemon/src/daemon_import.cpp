// daemon_import.cpp — `vibgate model import FILE.onnx --asset A`: an ONNX autoencoder imported as
// a new model version on a thread of its own (never on the loop), with calibration rows read
// from the store (healthy stored windows) or sent by the CLI (a features CSV), then registered
// and activated like a training (on_trained → activate_version). docs/model.md, "ONNX".
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <ctime>
#include <filesystem>
#include <limits>
#include <thread>

#include "daemon_impl.hpp"
#include "vibgate/analytics/features.hpp"
#include "vibgate/analytics/onnx.hpp"

namespace vibgate::daemon {

namespace {

std::string iso_utc_now() {
  const std::time_t t = static_cast<std::time_t>(now_ms() / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

ModelImportInfo to_info(const analytics::ImportReport& r) {
  ModelImportInfo i;
  i.file_name = r.file;
  i.rows = r.rows;
  i.layers = r.layers;
  i.normalization = r.normalization;
  i.threshold_float = r.threshold_float;
  i.threshold_int8 = r.threshold_int8;
  i.pearson = r.pearson;
  i.max_abs_diff = r.max_abs_diff;
  i.max_rel_diff = r.max_rel_diff;
  i.verdict_agreement = r.verdict_agreement;
  i.warnings = r.warnings;
  return i;
}

}  // namespace

std::string Daemon::Impl::start_import(PointRuntime& a, const ModelImportCommand& c) {
  if (a.training) return "model import: asset '" + a.key + "' is training or importing now";
  if (c.onnx.size() > kMaxOnnxImport)
    return "model import: " + c.file_name + " is larger than " + std::to_string(kMaxOnnxImport) +
           " bytes";
  if (!c.columns.empty()) {
    if (c.values.size() % c.columns.size() != 0)
      return "model import: calibration values are not a whole number of rows";
    if (c.values.size() / c.columns.size() > kMaxCalibrationRows)
      return "model import: more than " + std::to_string(kMaxCalibrationRows) + " calibration rows";
  }
  if ((c.from_ms != 0 || c.to_ms != 0) && !(c.from_ms > 0 && c.to_ms > c.from_ms))
    return "model import: the time range is empty (--from must be before --to)";
  // The stored inputs were computed with the active model's features (or the configured ones at
  // the stream's rate): the imported model uses the same, so it scores what is stored.
  analytics::FeatureConfig f = a.cfg.features;
  if (a.model) {
    f = a.model->features;
  } else if (a.learn_rate_hz > 0 || a.ring_rate_hz > 0) {
    f.sample_rate_hz = a.learn_rate_hz > 0 ? a.learn_rate_hz : a.ring_rate_hz;
  } else {
    return "model import: asset '" + a.key +
           "' has delivered no samples yet (its sample rate is unknown)";
  }
  long next = 0;
  for (const auto& r : store->models(a.key))
    next = std::max(next, std::strtol(r.version.c_str(), nullptr, 10));
  std::string version = std::to_string(next + 1);
  std::string path = models_dir(a) + "/v" + version + ".vgm";

  a.training = true;
  a.import_info = ModelImportInfo{};
  a.import_info.asset = a.key;
  a.import_info.state = "importing";
  a.import_info.import_id = ++import_seq;
  a.import_info.file_name = c.file_name;
  spdlog::info("asset '{}': importing {} as model version {} (calibration: {})", a.key, c.file_name,
               version,
               c.columns.empty() ? std::string("stored healthy windows") : c.calibration_name);

  storage::ModelInputQuery q;
  q.asset = a.cfg.name;
  q.channel = a.channel;
  q.from_ms = c.from_ms > 0 ? c.from_ms : 0;
  q.to_ms = c.to_ms > 0 ? c.to_ms : std::numeric_limits<std::int64_t>::max();
  q.input_hash = f.hash();
  q.max_rows = kMaxCalibrationRows;
  q.normal_only = true;
  std::thread([link = trainer, cmd = c, q, f, index = a.index, id = a.import_info.import_id,
               version, path, db = cfg.store_uplink.store.path,
               vfs = cfg.store_uplink.store.vfs_name]() mutable {
    pthread_setname_np(pthread_self(), "vg-import");
    std::shared_ptr<const analytics::Model> model;
    ModelImportInfo info;
    std::string error;
    try {
      std::vector<std::vector<float>> rows;
      if (!cmd.columns.empty()) {
        const std::size_t w = cmd.columns.size();
        std::vector<std::vector<double>> values(cmd.values.size() / w);
        for (std::size_t r = 0; r < values.size(); ++r)
          values[r].assign(cmd.values.begin() + static_cast<std::ptrdiff_t>(r * w),
                           cmd.values.begin() + static_cast<std::ptrdiff_t>((r + 1) * w));
        error = analytics::model_inputs_from_columns(f, cmd.columns, values, rows);
        if (!error.empty()) error = cmd.calibration_name + ": " + error;
      } else {
        auto in = storage::read_model_inputs(db, q, vfs);
        error = std::move(in.error);
        rows = std::move(in.rows);
        if (error.empty() && rows.size() < 8)
          error = "only " + std::to_string(rows.size()) +
                  " stored healthy windows with the asset's feature settings in the range (at "
                  "least 8 are "
                  "needed)";
      }
      if (error.empty()) {
        auto r =
            analytics::import_onnx(cmd.onnx, cmd.file_name, f, rows, analytics::ImportOptions{});
        info = to_info(r.report);
        if (!r.model) {
          error = r.error;
        } else {
          r.model->summary.trained_at = iso_utc_now();
          r.model->summary.source =
              cmd.file_name + " (calibration: " +
              (cmd.columns.empty() ? std::string("stored healthy windows") : cmd.calibration_name) +
              ")";
          info.note = r.report.note();
          std::error_code ec;
          std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
          error = analytics::save_model(*r.model, path);
          if (error.empty()) model = std::make_shared<const analytics::Model>(std::move(*r.model));
        }
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
    std::lock_guard lock(link->mu);
    if (!link->io) return;  // the daemon is gone
    boost::asio::post(*link->io, [link, index, id, info = std::move(info), model, version, path,
                                  error]() mutable {
      Daemon::Impl* impl = nullptr;
      {
        std::lock_guard l(link->mu);
        impl = link->impl;
      }
      if (impl)
        impl->on_imported(index, id, std::move(info), std::move(model), std::move(version),
                          std::move(path), std::move(error));
    });
  }).detach();
  return "";
}

void Daemon::Impl::on_imported(std::size_t index, std::uint64_t import_id, ModelImportInfo info,
                               std::shared_ptr<const analytics::Model> model, std::string version,
                               std::string path, std::string error) {
  if (stopping || index >= points.size()) return;
  PointRuntime& a = points[index];
  info.asset = a.key;
  info.import_id = import_id;
  if (info.file_name.empty()) info.file_name = a.import_info.file_name;
  std::string note = info.note;
  if (!model)
    spdlog::error("asset '{}': model import of {} refused: {}", a.key, info.file_name, error);
  on_trained(index, model, version, std::move(path), note, error);  // registers and activates
  if (model && a.model_version == version) {
    info.state = "active";
    info.version = version;
  } else {
    info.state = "failed";
    info.error =
        model ? "model version " + version + " could not be activated (see the daemon log)" : error;
  }
  a.import_info = std::move(info);
}

}  // namespace vibgate::daemon
