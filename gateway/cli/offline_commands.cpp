// offline_commands.cpp — the offline analysis subcommands: features, train, score, eval, synth,
// and the file forms of model import/export (ONNX).
//
// Every file is read through analytics::read_recording, cut into windows with the configured hop
// and scored by analytics::Scorer, so the numbers equal what the daemon computes. Errors are one
// line on stderr, "vibgate: <file>: <problem>", and exit code 1.
#include "cli/offline_commands.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "cli/feature_options.hpp"
#include "vibgate/analytics/detector.hpp"
#include "vibgate/analytics/fft.hpp"
#include "vibgate/analytics/metrics.hpp"
#include "vibgate/analytics/model.hpp"
#include "vibgate/analytics/onnx.hpp"
#include "vibgate/analytics/recording.hpp"
#include "vibgate/analytics/synth.hpp"

namespace vibgate::cli {
namespace {

using analytics::FeatureConfig;
using nlohmann::ordered_json;

// An error already worded for the user ("<file>: <problem>").
struct UserError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string num(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

std::string now_utc_iso8601() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return b;
}

// A file argument may carry its own time range, "FILE@START:END" in seconds (either side may be
// empty), which overrides --start/--end for that file. A file whose real name contains '@' is
// taken literally when it exists.
analytics::Recording read_or_throw(const std::string& arg, const InputOptions& in) {
  analytics::ReadOptions ro = in.read_options();
  std::string path = arg;
  const auto at = arg.rfind('@');
  if (at != std::string::npos && !std::filesystem::exists(arg)) {
    path = arg.substr(0, at);
    const std::string range = arg.substr(at + 1);
    const auto colon = range.find(':');
    if (colon == std::string::npos)
      throw UserError(arg + ": time range after '@' must be START:END in seconds");
    auto parse = [&](const std::string& t) -> std::optional<double> {
      if (t.empty()) return std::nullopt;
      try {
        std::size_t used = 0;
        const double v = std::stod(t, &used);
        if (used == t.size()) return v;
      } catch (const std::exception&) {
      }
      throw UserError(arg + ": '" + t + "' is not a time in seconds");
    };
    ro.start_s = parse(range.substr(0, colon));
    ro.end_s = parse(range.substr(colon + 1));
  }
  auto r = analytics::read_recording(path, ro);
  if (!r) throw UserError(r.error);
  r.recording->path = arg;
  return std::move(*r.recording);
}

// Calls fn(channel_number, window_samples, start_s) for every full window of every channel.
// Throws UserError naming the file when the recording is shorter than one window.
void for_each_window(const analytics::Recording& rec, const FeatureConfig& cfg,
                     const std::function<void(std::size_t, std::span<const float>, double)>& fn) {
  const std::size_t n = cfg.window_length, hop = cfg.hop();
  for (std::size_t c = 0; c < rec.channels.size(); ++c) {
    const auto& x = rec.channels[c];
    if (x.size() < n)
      throw UserError(rec.path + ": recording is too short (" + std::to_string(x.size()) +
                      " samples, one window needs " + std::to_string(n) + ")");
    for (std::size_t s = 0; s + n <= x.size(); s += hop)
      fn(rec.channel_index[c], std::span<const float>(x).subspan(s, n),
         static_cast<double>(rec.first_sample + s) / rec.sample_rate_hz);
  }
}

FeatureConfig config_for(const FeatureOptions& fo, const FeatureConfig& base, double fs,
                         const std::string& path) {
  try {
    return fo.apply(base, fs);
  } catch (const std::invalid_argument& e) {
    throw UserError(path + ": " + e.what());
  }
}

std::shared_ptr<const analytics::Model> load_or_throw(const std::string& path) {
  auto r = analytics::load_model(path);
  if (!r.model) throw UserError(r.error);
  return std::make_shared<const analytics::Model>(std::move(*r.model));
}

}  // namespace

struct OfflineCommands::State {
  CLI::App* features = nullptr;
  CLI::App* train = nullptr;
  CLI::App* score = nullptr;
  CLI::App* eval = nullptr;
  CLI::App* synth = nullptr;

  FeatureOptions fo;  // shared: only one subcommand runs
  InputOptions in;
  std::vector<std::string> files, normal_files, fault_files;
  std::string format = "table";
  std::string model_path, out_path, wisdom;
  bool use_float = false;
  // train
  std::uint64_t seed = 1;
  std::size_t epochs = 300, patience = 30;
  std::vector<std::size_t> hidden = {32, 8, 32};
  double quantile = 0.995, margin = 2.0, train_overlap = 0.75;
  double prune = 0;
  std::size_t prune_finetune_epochs = 0, prune_steps = 3;
  bool model_input = false;  // features: print the model-input vector instead of the features
  // synth
  double duration = 10, synth_rate = 25600, synth_shaft = 29.95, fault_start = 0, fault_peak = 0.5,
         fault_growth = 0;
  std::string defect = "none";
  double defect_multiple = 3.5848;

  int run_features();
  int run_train();
  int run_score();
  int run_eval();
  int run_synth();
};

OfflineCommands::OfflineCommands(CLI::App& app) : s_(new State) {
  State& s = *s_;
  auto add_wisdom = [&](CLI::App* c) {
    c->add_option("--fft-wisdom", s.wisdom, "FFTW wisdom file: loaded if present, saved after");
  };

  s.features = app.add_subcommand("features", "Print the features of every window of recordings");
  s.features->add_option("files", s.files, "Recordings (WAV/FLAC, CSV, raw float32)")->required();
  s.fo.add_to(*s.features);
  s.in.add_to(*s.features);
  s.features->add_option("--format", s.format, "table, csv or json")
      ->check(CLI::IsMember({"table", "csv", "json"}));
  s.features->add_flag(
      "--model-input", s.model_input,
      "Print the model-input vector (the autoencoder's inputs, named as in a model) "
      "instead of the features");
  add_wisdom(s.features);

  s.train = app.add_subcommand("train", "Learn a healthy baseline model from recordings");
  s.train->add_option("files", s.files, "Recordings of the healthy machine")->required();
  s.train->add_option("--out", s.out_path, "Model file to write")->required();
  s.fo.add_to(*s.train);
  s.in.add_to(*s.train);
  s.train->add_option("--seed", s.seed, "Random seed (training is deterministic for a seed)");
  s.train->add_option("--epochs", s.epochs,
                      "Maximum training epochs (default 300; large data sets stop earlier: the "
                      "budget is 5 million window passes)");
  s.train->add_option("--patience", s.patience, "Early-stopping patience in epochs (default 30)");
  s.train->add_option("--hidden", s.hidden, "Hidden layer widths (default 32 8 32)")->delimiter(',');
  s.train->add_option("--threshold-quantile", s.quantile, "Training-error quantile (default 0.995)");
  s.train->add_option("--threshold-margin", s.margin, "Threshold margin factor (default 2.0)");
  s.train->add_option("--train-overlap", s.train_overlap,
                      "Overlap of the training windows (default 0.75: more examples); --overlap "
                      "sets the scoring overlap stored in the model")
      ->check(CLI::Range(0.0, 0.9375));
  s.train
      ->add_option("--prune", s.prune,
                   "Magnitude pruning: this fraction of every layer's weights set to zero after "
                   "training, then fine-tuned (default 0: off; e.g. 0.5)")
      ->check(CLI::Range(0.0, 0.99));
  s.train->add_option(
      "--prune-finetune-epochs", s.prune_finetune_epochs,
      "Fine-tuning epochs after pruning, over all steps (default: the epoch limit again)");
  s.train->add_option("--prune-steps", s.prune_steps, "Pruning steps up to --prune (default 3)")
      ->check(CLI::Range(1, 10));
  add_wisdom(s.train);

  s.score = app.add_subcommand("score", "Score recordings with a model");
  s.score->add_option("--model", s.model_path, "Model file")->required();
  s.score->add_option("files", s.files, "Recordings to score")->required();
  s.in.add_to(*s.score);
  s.score->add_option("--overlap", s.fo.overlap, "Window overlap (default: the model's)")
      ->check(CLI::Range(0.0, 0.9375));
  s.score->add_option("--format", s.format, "table, csv or json")
      ->check(CLI::IsMember({"table", "csv", "json"}));
  s.score->add_flag("--float", s.use_float, "Score with the float model instead of int8");
  add_wisdom(s.score);

  s.eval = app.add_subcommand("eval", "Evaluate a model on healthy and faulty recordings");
  s.eval->add_option("--model", s.model_path, "Model file")->required();
  s.eval->add_option("--normal", s.normal_files, "Recordings of the healthy machine")->required();
  s.eval->add_option("--fault", s.fault_files, "Recordings of faulty machines");
  s.in.add_to(*s.eval);
  s.eval->add_option("--overlap", s.fo.overlap, "Window overlap (default: the model's)")
      ->check(CLI::Range(0.0, 0.9375));
  s.eval->add_option("--format", s.format, "table or json")->check(CLI::IsMember({"table", "json"}));
  add_wisdom(s.eval);

  s.synth = app.add_subcommand("synth", "Write a synthetic machine vibration recording (WAV)");
  s.synth->add_option("--out", s.out_path, "WAV file to write")->required();
  s.synth->add_option("--duration", s.duration, "Seconds (default 10)")->check(CLI::Range(0.01, 3600.0));
  s.synth->add_option("--rate", s.synth_rate, "Sample rate in Hz (default 25600)")->check(CLI::Range(1000.0, 100000.0));
  s.synth->add_option("--shaft-hz", s.synth_shaft, "Shaft speed in Hz (default 29.95)")->check(CLI::Range(0.1, 1000.0));
  s.synth->add_option("--defect", s.defect, "none, outer, inner or ball")
      ->check(CLI::IsMember({"none", "outer", "inner", "ball"}));
  s.synth->add_option("--defect-multiple", s.defect_multiple, "Defect frequency / shaft speed (default 3.5848)");
  s.synth->add_option("--fault-start", s.fault_start, "Seconds until the defect appears (default 0)");
  s.synth->add_option("--fault-peak", s.fault_peak, "Impact peak in g at fault start (default 0.5)");
  s.synth->add_option("--fault-growth", s.fault_growth, "Impact peak growth in g per second (default 0)");
  s.synth->add_option("--seed", s.seed, "Random seed");
}

OfflineCommands::~OfflineCommands() { delete s_; }

int OfflineCommands::run_selected() {
  State& s = *s_;
  try {
    if (!s.wisdom.empty() && std::filesystem::exists(s.wisdom)) {
      const std::string e = analytics::load_fft_wisdom(s.wisdom);
      if (!e.empty()) throw UserError(e);
    }
    int rc = 0;
    if (s.features->parsed()) rc = s.run_features();
    else if (s.train->parsed()) rc = s.run_train();
    else if (s.score->parsed()) rc = s.run_score();
    else if (s.eval->parsed()) rc = s.run_eval();
    else if (s.synth->parsed()) rc = s.run_synth();
    if (!s.wisdom.empty()) {
      const std::string e = analytics::save_fft_wisdom(s.wisdom);
      if (!e.empty()) std::cerr << "vibgate: warning: " << e << "\n";
    }
    return rc;
  } catch (const UserError& e) {
    std::cerr << "vibgate: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "vibgate: error: " << e.what() << "\n";
    return 1;
  }
}

int OfflineCommands::State::run_features() {
  ordered_json all = ordered_json::array();
  bool header_done = false;
  for (const auto& path : files) {
    const auto rec = read_or_throw(path, in);
    const FeatureConfig cfg = config_for(fo, FeatureConfig{}, rec.sample_rate_hz, path);
    analytics::FeatureExtractor ex(cfg);
    const auto cols =
        model_input ? analytics::model_input_names(cfg) : analytics::feature_column_names(cfg);
    for (const auto& ch : rec.channels)  // check length before printing anything
      if (ch.size() < cfg.window_length)
        throw UserError(path + ": recording is too short (" + std::to_string(ch.size()) +
                        " samples, one window needs " + std::to_string(cfg.window_length) + ")");
    if (!header_done || format == "table") {
      if (format != "json") {
        std::cout << (format == "csv" ? "file,channel,start_s" : "# file channel start_s");
        for (const auto& c : cols) std::cout << (format == "csv" ? "," : " ") << c;
        std::cout << "\n";
      }
      header_done = true;
    }
    analytics::Features f;
    for_each_window(rec, cfg, [&](std::size_t ch, std::span<const float> w, double t) {
      ex.extract(w, f);
      std::vector<std::string> vals;
      if (model_input) {  // exactly what the autoencoder sees (float, as scoring computes it)
        std::vector<float> row(ex.model_input_size());
        ex.model_input(f, row);
        for (float v : row) vals.push_back(num(v));
      } else {
        vals = {num(f.rms),
                num(f.peak),
                num(f.peak_to_peak),
                num(f.crest_factor),
                num(f.skewness),
                num(f.kurtosis),
                num(f.velocity_rms_mm_s),
                std::string(1, analytics::to_char(f.iso_zone)),
                num(f.spectral_centroid_hz),
                num(f.dominant_hz),
                num(f.dominant_amplitude)};
        for (double v : f.band_log_energy) vals.push_back(num(v));
        for (double v : f.shaft_harmonics) vals.push_back(num(v));
        for (double v : f.envelope_amplitudes) vals.push_back(num(v));
      }
      if (format == "json") {
        ordered_json row = {{"file", path}, {"channel", ch}, {"start_s", t}};
        for (std::size_t i = 0; i < cols.size(); ++i) {
          if (cols[i] == "iso_zone") row[cols[i]] = vals[i];
          else row[cols[i]] = std::stod(vals[i]);
        }
        all.push_back(std::move(row));
      } else {
        const char* sep = format == "csv" ? "," : " ";
        std::cout << path << sep << ch << sep << num(t);
        for (const auto& v : vals) std::cout << sep << v;
        std::cout << "\n";
      }
    });
  }
  if (format == "json") std::cout << all.dump(1) << "\n";
  return 0;
}

namespace {

// The training rows of `files` as `vibgate train` builds them: the feature configuration from the
// options and the first file's sample rate (every file must give the same), windows at
// `train_overlap`. Also fills summary.samples and summary.source.
struct TrainingRows {
  FeatureConfig cfg;
  std::vector<std::vector<float>> rows;
};
TrainingRows collect_training_rows(const std::vector<std::string>& files, const InputOptions& in,
                                   const FeatureOptions& fo, double train_overlap,
                                   analytics::TrainingSummary& summary) {
  std::vector<std::vector<float>> rows;
  std::optional<FeatureConfig> cfg;
  std::unique_ptr<analytics::FeatureExtractor> ex;
  for (const auto& path : files) {
    const auto rec = read_or_throw(path, in);
    const FeatureConfig c = config_for(fo, FeatureConfig{}, rec.sample_rate_hz, path);
    if (!cfg) {
      cfg = c;
      ex = std::make_unique<analytics::FeatureExtractor>(c);
    } else if (c.hash() != cfg->hash()) {
      throw UserError(path + ": sample rate " + num(rec.sample_rate_hz) +
                      " Hz differs from the first training file (" + num(cfg->sample_rate_hz) + " Hz)");
    }
    analytics::Features f;
    FeatureConfig dense = *cfg;
    dense.overlap = train_overlap;
    for_each_window(rec, dense, [&](std::size_t, std::span<const float> w, double) {
      ex->extract(w, f);
      std::vector<float> row(ex->model_input_size());
      ex->model_input(f, row);
      rows.push_back(std::move(row));
    });
    for (const auto& ch : rec.channels) summary.samples += ch.size();
    summary.source += (summary.source.empty() ? "" : ",") + std::filesystem::path(path).filename().string();
  }
  return TrainingRows{*cfg, std::move(rows)};
}

}  // namespace

int OfflineCommands::State::run_train() {
  analytics::TrainingSummary summary;
  const auto t0 = std::chrono::steady_clock::now();
  auto [cfg_value, rows] = collect_training_rows(files, in, fo, train_overlap, summary);
  const std::optional<FeatureConfig> cfg = cfg_value;
  if (rows.size() < 8)
    throw UserError(files.front() + ": only " + std::to_string(rows.size()) +
                    " windows in the training data; at least 8 are needed");
  summary.trained_at = now_utc_iso8601();
  analytics::TrainOptions to;
  to.seed = seed;
  to.max_epochs = epochs;
  to.patience = patience;
  to.hidden = hidden;
  to.prune_fraction = prune;
  to.prune_finetune_epochs = prune_finetune_epochs;
  to.prune_steps = prune_steps;
  const auto t1 = std::chrono::steady_clock::now();
  analytics::Model m;
  try {
    m = analytics::build_model(*cfg, rows, to, analytics::ThresholdRule{quantile, margin}, summary);
  } catch (const std::invalid_argument& e) {
    throw UserError(out_path + ": cannot train: " + e.what());
  }
  const auto t2 = std::chrono::steady_clock::now();
  const std::string err = analytics::save_model(m, out_path);
  if (!err.empty()) throw UserError(err);
  const auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  std::cerr << "vibgate: trained " << out_path << " on " << rows.size() << " windows ("
            << m.summary.windows << " windows, " << m.input_names.size() << " features), "
            << m.summary.epochs << " epochs (best " << m.summary.best_epoch << "), features "
            << num(secs(t0, t1)) << " s, training " << num(secs(t1, t2)) << " s; thresholds float "
            << num(m.threshold_float) << ", int8 " << num(m.threshold_int8);
  std::cerr << "; validation loss " << num(m.summary.validation_loss);
  if (prune > 0) std::cerr << "; pruned " << num(100 * prune) << " % per layer";
  std::cerr << "; " << m.summary.nonzero_weights << " nonzero weights\n";
  return 0;
}

namespace {

struct FileScores {
  std::string file;
  std::size_t channel = 0;
  std::vector<double> start_s, score, score_float;
  std::vector<Verdict> verdict;
};

// Scores every channel of every file; int8 and float both computed.
std::vector<FileScores> score_files(const std::vector<std::string>& files, const InputOptions& in,
                                    const FeatureOptions& fo,
                                    const std::shared_ptr<const analytics::Model>& model,
                                    bool use_float) {
  std::vector<FileScores> out;
  std::map<double, std::unique_ptr<analytics::Scorer>> scorers;
  for (const auto& path : files) {
    const auto rec = read_or_throw(path, in);
    FeatureConfig cfg = model->features;
    if (fo.overlap) cfg.overlap = *fo.overlap;
    if (rec.sample_rate_hz != cfg.sample_rate_hz) {
      throw UserError(path + ": " + analytics::check_compatible(*model, [&] {
                        FeatureConfig c = cfg;
                        c.sample_rate_hz = rec.sample_rate_hz;
                        return c;
                      }()));
    }
    auto& scorer = scorers[cfg.overlap];
    if (!scorer) scorer = std::make_unique<analytics::Scorer>(model);
    std::map<std::size_t, std::size_t> slot;
    analytics::ScoredWindow sw;
    for_each_window(rec, cfg, [&](std::size_t ch, std::span<const float> w, double t) {
      auto [it, fresh] = slot.try_emplace(ch, out.size());
      if (fresh) out.push_back(FileScores{path, ch, {}, {}, {}, {}});
      FileScores& fsc = out[it->second];
      scorer->score(w, sw, true, use_float);
      fsc.start_s.push_back(t);
      fsc.score.push_back(sw.score);
      fsc.score_float.push_back(sw.score_float);
      fsc.verdict.push_back(sw.verdict);
    });
  }
  return out;
}

ordered_json summary_json(const FileScores& f, bool use_float) {
  const auto& s = use_float ? f.score_float : f.score;
  std::size_t counts[3] = {0, 0, 0};
  for (auto v : f.verdict) ++counts[static_cast<int>(v)];
  double mx = 0, sum = 0;
  for (double v : s) {
    mx = std::max(mx, v);
    sum += v;
  }
  return {{"file", f.file},
          {"channel", f.channel},
          {"windows", s.size()},
          {"normal", counts[0]},
          {"warning", counts[1]},
          {"alarm", counts[2]},
          {"alarm_fraction", s.empty() ? 0.0 : static_cast<double>(counts[2]) / static_cast<double>(s.size())},
          {"max_score", mx},
          {"mean_score", s.empty() ? 0.0 : sum / static_cast<double>(s.size())}};
}

}  // namespace

int OfflineCommands::State::run_score() {
  const auto model = load_or_throw(model_path);
  const auto results = score_files(files, in, fo, model, use_float);
  if (format == "csv") {
    std::cout << "file,channel,start_s,score,verdict\n";
    for (const auto& f : results)
      for (std::size_t i = 0; i < f.score.size(); ++i)
        std::cout << f.file << "," << f.channel << "," << num(f.start_s[i]) << ","
                  << num(use_float ? f.score_float[i] : f.score[i]) << "," << to_string(f.verdict[i]) << "\n";
    for (const auto& f : results) std::cerr << "vibgate: summary " << summary_json(f, use_float).dump() << "\n";
  } else if (format == "json") {
    ordered_json j = {{"model", model_path}, {"path", use_float ? "float" : "int8"}, {"files", ordered_json::array()}};
    for (const auto& f : results) {
      ordered_json w = ordered_json::array();
      for (std::size_t i = 0; i < f.score.size(); ++i)
        w.push_back({{"start_s", f.start_s[i]},
                     {"score", use_float ? f.score_float[i] : f.score[i]},
                     {"verdict", to_string(f.verdict[i])}});
      ordered_json e = summary_json(f, use_float);
      e["windows_detail"] = std::move(w);
      j["files"].push_back(std::move(e));
    }
    std::cout << j.dump(1) << "\n";
  } else {
    std::printf("%-40s %3s %10s %10s  %s\n", "file", "ch", "start_s", "score", "verdict");
    for (const auto& f : results)
      for (std::size_t i = 0; i < f.score.size(); ++i)
        std::printf("%-40s %3zu %10.3f %10.4f  %s\n", f.file.c_str(), f.channel, f.start_s[i],
                    use_float ? f.score_float[i] : f.score[i], std::string(to_string(f.verdict[i])).c_str());
    std::printf("\n%-40s %3s %8s %8s %8s %8s %10s\n", "summary", "ch", "windows", "normal", "warning",
                "alarm", "max_score");
    for (const auto& f : results) {
      const auto s = summary_json(f, use_float);
      std::printf("%-40s %3zu %8zu %8zu %8zu %8zu %10.4f\n", f.file.c_str(), f.channel,
                  s["windows"].get<std::size_t>(), s["normal"].get<std::size_t>(),
                  s["warning"].get<std::size_t>(), s["alarm"].get<std::size_t>(), s["max_score"].get<double>());
    }
  }
  return 0;
}

int OfflineCommands::State::run_eval() {
  const auto model = load_or_throw(model_path);
  const auto normal = score_files(normal_files, in, fo, model, false);
  const auto fault = score_files(fault_files, in, fo, model, false);
  std::vector<double> n8, nf, f8, all8, allf;
  std::size_t same_verdict = 0, total = 0;
  auto collect = [&](const std::vector<FileScores>& set, std::vector<double>& dst) {
    for (const auto& f : set)
      for (std::size_t i = 0; i < f.score.size(); ++i) {
        dst.push_back(f.score[i]);
        all8.push_back(f.score[i]);
        allf.push_back(f.score_float[i]);
        same_verdict += analytics::verdict_for(f.score_float[i], model->warning_level) == f.verdict[i];
        ++total;
      }
  };
  collect(normal, n8);
  collect(fault, f8);
  ordered_json j = {{"model", model_path},
                    {"normal_windows", n8.size()},
                    {"fault_windows", f8.size()},
                    {"false_alarm_rate", analytics::fraction_at_or_above(n8, 1.0)}};
  j["auc"] = f8.empty() ? ordered_json(nullptr) : ordered_json(analytics::roc_auc(n8, f8));
  ordered_json per_file = ordered_json::array();
  for (const auto* set : {&normal, &fault})
    for (const auto& f : *set)
      per_file.push_back({{"file", f.file},
                          {"channel", f.channel},
                          {"kind", set == &normal ? "normal" : "fault"},
                          {"windows", f.score.size()},
                          {"alarm_fraction", analytics::fraction_at_or_above(f.score, 1.0)},
                          {"max_score", f.score.empty() ? 0.0 : *std::max_element(f.score.begin(), f.score.end())}});
  j["files"] = per_file;
  j["int8_vs_float"] = {{"pearson", analytics::pearson(all8, allf)},
                        {"same_verdict", total ? static_cast<double>(same_verdict) / static_cast<double>(total) : 1.0}};
  if (format == "json") {
    std::cout << j.dump(1) << "\n";
    return 0;
  }
  std::printf("model            %s\n", model_path.c_str());
  std::printf("normal windows   %zu\nfault windows    %zu\n", n8.size(), f8.size());
  if (!f8.empty()) std::printf("ROC AUC          %.4f\n", j["auc"].get<double>());
  std::printf("false alarms     %.2f %% of normal windows at or above the threshold\n",
              100 * j["false_alarm_rate"].get<double>());
  std::printf("int8 vs float    Pearson %.5f, same verdict on %.2f %% of windows\n\n",
              j["int8_vs_float"]["pearson"].get<double>(), 100 * j["int8_vs_float"]["same_verdict"].get<double>());
  std::printf("%-7s %-44s %3s %8s %12s %10s\n", "kind", "file", "ch", "windows", "alarm_rate", "max_score");
  for (const auto& f : per_file)
    std::printf("%-7s %-44s %3zu %8zu %11.2f%% %10.3f\n", f["kind"].get<std::string>().c_str(),
                f["file"].get<std::string>().c_str(), f["channel"].get<std::size_t>(),
                f["windows"].get<std::size_t>(), 100 * f["alarm_fraction"].get<double>(),
                f["max_score"].get<double>());
  return 0;
}

int OfflineCommands::State::run_synth() {
  analytics::MachineModel m;
  m.sample_rate_hz = synth_rate;
  m.shaft_hz = synth_shaft;
  m.seed = seed;
  m.defect = defect == "outer"   ? analytics::DefectKind::outer_race
             : defect == "inner" ? analytics::DefectKind::inner_race
             : defect == "ball"  ? analytics::DefectKind::ball
                                 : analytics::DefectKind::none;
  m.defect_multiple = defect_multiple;
  m.fault_start_s = fault_start;
  m.fault_peak_g = fault_peak;
  m.fault_growth_per_s = fault_growth;
  analytics::MachineSynth gen(m);
  std::vector<std::vector<float>> ch(1, std::vector<float>(static_cast<std::size_t>(duration * synth_rate)));
  gen.generate(ch[0]);
  const std::string e = analytics::write_wav_f32(out_path, synth_rate, ch);
  if (!e.empty()) throw UserError(e);
  return 0;
}

}  // namespace vibgate::cli

namespace vibgate::cli {

std::string read_file_bytes(const std::string& path, std::size_t max_bytes, std::string& bytes) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return path + ": cannot read: " + ec.message();
  if (size > max_bytes)
    return path + ": file is too large (" + std::to_string(size) + " bytes, at most " +
           std::to_string(max_bytes) + ")";
  std::ifstream f(path, std::ios::binary);
  if (!f) return path + ": cannot open: " + std::strerror(errno);
  bytes.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  if (f.bad()) return path + ": read error";
  return {};
}

int run_model_import_offline(const ModelImportArgs& a, const FeatureOptions& fo,
                             const InputOptions& in) {
  try {
    std::string bytes;
    if (const auto e = read_file_bytes(a.onnx, 64u << 20, bytes); !e.empty()) throw UserError(e);
    analytics::TrainingSummary summary;
    const auto tr = collect_training_rows(a.calibration, in, fo, a.train_overlap, summary);
    analytics::ImportOptions opt;
    opt.rule.quantile = a.quantile;
    opt.rule.margin = a.margin;
    const std::string name = std::filesystem::path(a.onnx).filename().string();
    auto r = analytics::import_onnx(bytes, name, tr.cfg, tr.rows, opt);
    if (!r.model) throw UserError(r.error);
    r.model->summary.samples = summary.samples;
    r.model->summary.source = name + " (calibration: " + summary.source + ")";
    r.model->summary.trained_at = now_utc_iso8601();
    if (const auto e = analytics::save_model(*r.model, a.out); !e.empty()) throw UserError(e);
    const auto& rep = r.report;
    if (a.json) {
      ordered_json j = {{"file", rep.file},
                        {"out", a.out},
                        {"rows", rep.rows},
                        {"layers", rep.layers},
                        {"normalization", rep.normalization},
                        {"threshold_float", rep.threshold_float},
                        {"threshold_int8", rep.threshold_int8},
                        {"pearson", rep.pearson},
                        {"max_abs_diff", rep.max_abs_diff},
                        {"max_rel_diff", rep.max_rel_diff},
                        {"verdict_agreement", rep.verdict_agreement},
                        {"warnings", rep.warnings}};
      std::cout << j.dump(1) << "\n";
    } else {
      std::cout << rep.text() << "wrote " << a.out << "\n";
    }
    return 0;
  } catch (const UserError& e) {
    std::cerr << "vibgate: " << e.what() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "vibgate: error: " << e.what() << "\n";
  }
  return 1;
}

// Writes `bytes` to path.tmp and renames it into place; "" or "<path>: <problem>".
std::string write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return path + ": cannot write: " + std::strerror(errno);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    f.flush();
    if (!f) {
      std::filesystem::remove(tmp);
      return path + ": write failed";
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp);
    return path + ": cannot rename into place: " + ec.message();
  }
  return {};
}

int run_model_export_offline(const std::string& model_path, const std::string& onnx_path) {
  auto r = analytics::load_model(model_path);
  if (!r.model) {
    std::cerr << "vibgate: " << r.error << "\n";
    return 1;
  }
  std::string bytes;
  if (const auto e = analytics::export_onnx(*r.model, bytes); !e.empty()) {
    std::cerr << "vibgate: " << model_path << ": " << e << "\n";
    return 1;
  }
  if (const auto e = write_file_atomic(onnx_path, bytes); !e.empty()) {
    std::cerr << "vibgate: " << e << "\n";
    return 1;
  }
  std::cout << "wrote " << onnx_path << " (" << bytes.size() << " bytes, "
            << r.model->float_net.layers().size() << " layers, " << r.model->input_names.size()
            << " inputs)\n";
  return 0;
}

}  // namespace vibgate::cli
