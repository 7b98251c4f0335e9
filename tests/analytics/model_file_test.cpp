// model_file_test.cpp — the model file: save/load round trip (scores bit-identical), header layout,
// every load error naming the path and the problem, semantic validation of CRC-valid payloads,
// check_compatible() messages, and deterministic training for a seed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "model.pb.h"  // generated from analytics/proto/model.proto (build tree)
#include "vibgate/analytics/detector.hpp"
#include "vibgate/analytics/features.hpp"
#include "vibgate/analytics/model.hpp"
#include "vibgate/analytics/synth.hpp"

namespace vibgate::analytics {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kHeader = 20;

// Standard CRC-32 (IEEE 802.3, reflected, as boost::crc_32_type), written here independently.
std::uint32_t crc32(const std::string& s) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return c ^ 0xFFFFFFFFu;
}

std::uint32_t get_u32(const std::string& s, std::size_t at) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + static_cast<std::size_t>(i)]);
  return v;
}
void set_u32(std::string& s, std::size_t at, std::uint32_t v) {
  for (std::size_t i = 0; i < 4; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

std::string read_file(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
void write_file(const std::string& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A file with a correct header (magic, version, length, CRC) around `payload`.
std::string with_header(const std::string& payload, std::uint32_t version = kModelFormatVersion) {
  std::string f = "VIBGMODL";
  f.resize(kHeader);
  set_u32(f, 8, version);
  set_u32(f, 12, static_cast<std::uint32_t>(payload.size()));
  set_u32(f, 16, crc32(payload));
  return f + payload;
}

FeatureConfig bearing_config() {
  FeatureConfig c;
  c.sample_rate_hz = 25600;
  c.shaft_hz = 29.95;
  c.bearing = defect_multiples(BearingGeometry{9, 0.3126, 1.537, 0});
  return c;
}

std::vector<float> synth(std::uint64_t seed, double seconds, DefectKind defect = DefectKind::none,
                         double peak_g = 0.5) {
  MachineModel m;
  m.seed = seed;
  m.defect = defect;
  m.fault_peak_g = peak_g;
  MachineSynth s(m);
  std::vector<float> x(static_cast<std::size_t>(seconds * m.sample_rate_hz));
  s.generate(x);
  return x;
}

std::vector<std::vector<float>> feature_rows(const FeatureConfig& cfg, const std::vector<float>& x) {
  FeatureExtractor ex(cfg);
  Features f;
  std::vector<std::vector<float>> rows;
  for (std::size_t s = 0; s + cfg.window_length <= x.size(); s += cfg.hop()) {
    ex.extract(std::span<const float>(x).subspan(s, cfg.window_length), f);
    std::vector<float> row(ex.model_input_size());
    ex.model_input(f, row);
    rows.push_back(std::move(row));
  }
  return rows;
}

TrainOptions fast_training(std::uint64_t seed) {
  TrainOptions o;
  o.seed = seed;
  o.max_epochs = 40;
  return o;
}

TrainingSummary summary_for_test() {
  TrainingSummary s;
  s.source = "synth.wav";
  s.samples = 256000;
  s.trained_at = "2024-01-02T03:04:05Z";
  return s;
}

const std::vector<std::vector<float>>& training_rows() {
  static const auto rows = feature_rows(bearing_config(), synth(11, 10));
  return rows;
}

const Model& trained_model() {
  static const Model m = build_model(bearing_config(), training_rows(), fast_training(5), ThresholdRule{},
                                     summary_for_test());
  return m;
}

class ModelFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::random_device rd;
    dir_ = fs::temp_directory_path() /
           ("vibgate_model_file_test_" + std::string(info->name()) + "_" + std::to_string(rd()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Saves the trained model once per test and returns the file's bytes.
  std::string saved_bytes() {
    const std::string p = path("good.vgm");
    const std::string err = save_model(trained_model(), p);
    EXPECT_EQ(err, "");
    return read_file(p);
  }

  // Loads `bytes` written to a file named `name`; expects failure with a message that starts with
  // the path and contains `problem`.
  void expect_load_error(const std::string& name, const std::string& bytes, const std::string& problem) {
    const std::string p = path(name);
    write_file(p, bytes);
    expect_load_error_at(p, problem);
  }
  static void expect_load_error_at(const std::string& p, const std::string& problem) {
    const auto r = load_model(p);
    EXPECT_FALSE(r.model.has_value()) << p << " loaded although it should fail with: " << problem;
    EXPECT_EQ(r.error.rfind(p + ": ", 0), 0u) << "message does not start with the path: " << r.error;
    EXPECT_NE(r.error.find(problem), std::string::npos) << "message '" << r.error << "' lacks '" << problem << "'";
    EXPECT_EQ(r.error.find('\n'), std::string::npos) << "message is not one line: " << r.error;
  }

  // Parses the saved payload, lets `edit` change it, and writes it back with a valid header.
  std::string edited(const std::function<void(pb::Model&)>& edit) {
    const std::string bytes = saved_bytes();
    pb::Model m;
    EXPECT_TRUE(m.ParseFromString(bytes.substr(kHeader)));
    edit(m);
    std::string payload;
    EXPECT_TRUE(m.SerializeToString(&payload));
    return with_header(payload);
  }

  fs::path dir_;
};

// Scores windows of a healthy and a faulty signal with a model; both int8 and float.
std::vector<std::pair<double, double>> scores_of(const Model& m) {
  auto model = std::make_shared<const Model>(m);
  Scorer scorer(model);
  ScoredWindow sw;
  std::vector<std::pair<double, double>> out;
  for (const auto& x : {synth(77, 2), synth(78, 2, DefectKind::outer_race, 0.3)}) {
    const std::size_t n = m.features.window_length;
    for (std::size_t s = 0; s + n <= x.size(); s += n / 2) {
      scorer.score(std::span<const float>(x).subspan(s, n), sw, true);
      out.emplace_back(sw.score, sw.score_float);
    }
  }
  return out;
}

TEST_F(ModelFileTest, RoundTripGivesIdenticalModelAndScores) {
  const Model& m = trained_model();
  const std::string p = path("model.vgm");
  ASSERT_EQ(save_model(m, p), "");
  EXPECT_FALSE(fs::exists(p + ".tmp")) << "temporary file left behind";
  const auto r = load_model(p);
  ASSERT_TRUE(r.model.has_value()) << r.error;
  const Model& l = *r.model;

  EXPECT_EQ(l.features.hash(), m.features.hash());
  EXPECT_EQ(check_compatible(l, m.features), "");
  EXPECT_EQ(l.features.overlap, m.features.overlap);
  EXPECT_EQ(l.input_names, m.input_names);
  EXPECT_EQ(l.normalizer.mean, m.normalizer.mean);
  EXPECT_EQ(l.normalizer.std, m.normalizer.std);
  ASSERT_EQ(l.float_net.layers().size(), m.float_net.layers().size());
  for (std::size_t i = 0; i < m.float_net.layers().size(); ++i) {
    const auto &a = l.float_net.layers()[i], &b = m.float_net.layers()[i];
    EXPECT_EQ(a.weights, b.weights);
    EXPECT_EQ(a.bias, b.bias);
    EXPECT_EQ(a.activation, b.activation);
    EXPECT_EQ(a.out_lo, b.out_lo);
    EXPECT_EQ(a.out_hi, b.out_hi);
  }
  EXPECT_EQ(l.float_net.input_lo(), m.float_net.input_lo());
  EXPECT_EQ(l.float_net.input_hi(), m.float_net.input_hi());
  ASSERT_EQ(l.int8_net.layers().size(), m.int8_net.layers().size());
  for (std::size_t i = 0; i < m.int8_net.layers().size(); ++i) {
    const auto &a = l.int8_net.layers()[i], &b = m.int8_net.layers()[i];
    EXPECT_EQ(a.weights, b.weights);
    EXPECT_EQ(a.bias, b.bias);
    EXPECT_EQ(a.bias_eff, b.bias_eff);
    EXPECT_EQ(a.multiplier, b.multiplier);
    EXPECT_EQ(a.shift, b.shift);
    EXPECT_EQ(a.input.scale, b.input.scale);
    EXPECT_EQ(a.input.zero_point, b.input.zero_point);
    EXPECT_EQ(a.output.scale, b.output.scale);
    EXPECT_EQ(a.output.zero_point, b.output.zero_point);
  }
  EXPECT_EQ(l.threshold_float, m.threshold_float);
  EXPECT_EQ(l.threshold_int8, m.threshold_int8);
  EXPECT_EQ(l.warning_level, m.warning_level);
  EXPECT_EQ(l.summary.source, "synth.wav");
  EXPECT_EQ(l.summary.samples, 256000u);
  EXPECT_EQ(l.summary.windows, training_rows().size());
  EXPECT_EQ(l.summary.trained_at, "2024-01-02T03:04:05Z");
  EXPECT_EQ(l.summary.seed, 5u);
  EXPECT_EQ(l.summary.epochs, m.summary.epochs);
  EXPECT_EQ(l.summary.best_epoch, m.summary.best_epoch);
  EXPECT_EQ(l.summary.train_loss, m.summary.train_loss);
  EXPECT_EQ(l.summary.validation_loss, m.summary.validation_loss);
  EXPECT_EQ(l.summary.threshold_rule, m.summary.threshold_rule);

  const auto a = scores_of(m), b = scores_of(l);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_GT(a.size(), 20u);
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first) << "int8 score of window " << i;
    EXPECT_EQ(a[i].second, b[i].second) << "float score of window " << i;
  }
  // The scores are real: the healthy windows sit below, the faulty ones far above the threshold.
  EXPECT_LT(a.front().first, 1.0);
  EXPECT_GT(a.back().first, 1.0);

  // Saving the loaded model reproduces the file byte for byte.
  const std::string p2 = path("again.vgm");
  ASSERT_EQ(save_model(l, p2), "");
  EXPECT_EQ(read_file(p2), read_file(p));
}

TEST_F(ModelFileTest, HeaderLayout) {
  const std::string f = saved_bytes();
  ASSERT_GT(f.size(), kHeader);
  EXPECT_EQ(f.substr(0, 8), "VIBGMODL");
  EXPECT_EQ(get_u32(f, 8), kModelFormatVersion);
  EXPECT_EQ(get_u32(f, 12), f.size() - kHeader);
  EXPECT_EQ(get_u32(f, 16), crc32(f.substr(kHeader)));
}

TEST_F(ModelFileTest, SaveOverwritesAndReportsUnwritablePath) {
  const std::string p = path("m.vgm");
  write_file(p, "old contents");
  ASSERT_EQ(save_model(trained_model(), p), "");
  EXPECT_TRUE(load_model(p).model.has_value());
  const std::string bad = path("no/such/dir/m.vgm");
  const std::string err = save_model(trained_model(), bad);
  EXPECT_EQ(err.rfind(bad + ": ", 0), 0u) << err;
  EXPECT_NE(err.find("cannot write"), std::string::npos) << err;
  EXPECT_NE(err.find("No such file or directory"), std::string::npos) << err;
}

TEST_F(ModelFileTest, MissingFile) {
  expect_load_error_at(path("absent.vgm"), "cannot open model: No such file or directory");
}

TEST_F(ModelFileTest, BadMagic) {
  std::string f = saved_bytes();
  f[0] = 'X';
  expect_load_error("magic.vgm", f, "not a vibgate model file (bad magic)");
  expect_load_error("text.vgm", "this is a text file, not a model\n", "not a vibgate model file (bad magic)");
}

// An empty file, or a model cut inside its 20-byte header, is a truncated model, not a foreign
// file: the message should say so (as it does for cuts after the header) instead of "bad magic".
TEST_F(ModelFileTest, EmptyOrHeaderTruncatedFileIsReportedAsSuch) {
  const std::string f = saved_bytes();
  {
    const std::string p = path("empty.vgm");
    write_file(p, "");
    const auto r = load_model(p);
    EXPECT_FALSE(r.model.has_value());
    EXPECT_EQ(r.error.rfind(p + ": ", 0), 0u) << r.error;
    const std::string problem = r.error.substr(std::min(r.error.size(), p.size()));
    EXPECT_TRUE(problem.find("empty") != std::string::npos || problem.find("truncated") != std::string::npos)
        << "an empty file is reported as: " << r.error;
  }
  for (std::size_t cut : {8u, 12u, 16u, 19u}) {
    const std::string p = path("cut" + std::to_string(cut) + ".vgm");
    write_file(p, f.substr(0, cut));
    const auto r = load_model(p);
    EXPECT_FALSE(r.model.has_value());
    EXPECT_EQ(r.error.rfind(p + ": ", 0), 0u) << r.error;
    EXPECT_NE(r.error.substr(std::min(r.error.size(), p.size())).find("truncated"), std::string::npos)
        << "a model cut to " << cut << " bytes (magic intact) is reported as: " << r.error;
  }
}

TEST_F(ModelFileTest, UnsupportedVersion) {
  std::string f = saved_bytes();
  set_u32(f, 8, 2);
  expect_load_error("v2.vgm", f, "model format version 2 is not supported (this build reads 1)");
  set_u32(f, 8, 0);
  expect_load_error("v0.vgm", f, "model format version 0 is not supported");
  set_u32(f, 8, 0xFFFFFFFFu);
  expect_load_error("vmax.vgm", f, "model format version 4294967295 is not supported");
}

TEST_F(ModelFileTest, TruncatedAfterHeader) {
  const std::string f = saved_bytes();
  const std::size_t n = f.size();
  for (std::size_t cut : {kHeader, kHeader + 1, kHeader + 100, n / 2, n - 4, n - 1}) {
    expect_load_error("cut" + std::to_string(cut) + ".vgm", f.substr(0, cut),
                      "model file is truncated (" + std::to_string(cut) + " of " + std::to_string(n) + " bytes)");
  }
}

TEST_F(ModelFileTest, ImplausibleLength) {
  std::string f = saved_bytes();
  set_u32(f, 12, 0xFFFFFFFFu);
  expect_load_error("len.vgm", f, "model payload length is implausible");
}

TEST_F(ModelFileTest, FlippedPayloadByteFailsCrc) {
  const std::string f = saved_bytes();
  for (std::size_t at : {kHeader, kHeader + 7, f.size() / 2, f.size() - 1}) {
    for (int mask : {0x01, 0x80}) {
      std::string g = f;
      g[at] = static_cast<char>(g[at] ^ mask);
      expect_load_error("flip" + std::to_string(at) + "_" + std::to_string(mask) + ".vgm", g,
                        "model file is corrupted (CRC mismatch)");
    }
  }
  std::string g = f;  // a flipped CRC byte is the same mismatch
  g[17] = static_cast<char>(g[17] ^ 0x10);
  expect_load_error("flipcrc.vgm", g, "model file is corrupted (CRC mismatch)");
}

TEST_F(ModelFileTest, TrailingGarbage) {
  const std::string f = saved_bytes();
  expect_load_error("trail1.vgm", f + "x", "model file has trailing bytes");
  expect_load_error("trail2.vgm", f + f, "model file has trailing bytes");
}

TEST_F(ModelFileTest, CrcValidButUnparsablePayload) {
  expect_load_error("garbage.vgm", with_header(std::string(16, '\xFF')), "model payload does not parse");
  // An empty payload parses as a default message, whose version is 0.
  expect_load_error("emptypayload.vgm", with_header(""), "model payload version mismatch");
}

// Semantic validation of well-formed payloads (each edit keeps the header and CRC valid).
TEST_F(ModelFileTest, SemanticValidation) {
  struct Case {
    const char* name;
    std::function<void(pb::Model&)> edit;
    const char* problem;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Case cases[] = {
      {"payload_version", [](pb::Model& m) { m.set_format_version(7); }, "model payload version mismatch"},
      {"hash", [](pb::Model& m) { m.set_feature_hash(m.feature_hash() ^ 1); },
       "feature configuration hash does not match its stored configuration"},
      {"config_changed_hash_kept", [](pb::Model& m) { m.mutable_features()->set_shaft_hz(30.0); },
       "feature configuration hash does not match its stored configuration"},
      {"units", [](pb::Model& m) { m.mutable_features()->set_units(5); }, "invalid model: unknown units code"},
      {"iso", [](pb::Model& m) { m.mutable_features()->set_iso_group(3); },
       "invalid model: unknown ISO group or mounting"},
      {"window", [](pb::Model& m) { m.mutable_features()->set_window_length(1000); },
       "invalid model: window: must be a power of two"},
      {"rate", [](pb::Model& m) { m.mutable_features()->set_sample_rate_hz(500); },
       "invalid model: sample_rate: must be within 1000"},
      {"names", [](pb::Model& m) { m.set_input_names(0, "something_else"); },
       "model input names do not match its feature configuration"},
      {"mean_size", [](pb::Model& m) { m.mutable_mean()->RemoveLast(); },
       "normalization has 37 entries, expected 38"},
      {"std_zero", [](pb::Model& m) { m.set_std(3, 0.f); }, "normalization holds non-finite or non-positive values"},
      {"mean_nan", [nan](pb::Model& m) { m.set_mean(0, nan); },
       "normalization holds non-finite or non-positive values"},
      {"float_nan", [nan](pb::Model& m) { m.mutable_float_layers(1)->set_weights(4, nan); },
       "float layer holds non-finite values"},
      {"float_clamp", [](pb::Model& m) { m.mutable_float_layers(0)->set_out_lo(5.f); m.mutable_float_layers(0)->set_out_hi(5.f); },
       "float layer clamp range is empty"},
      {"float_sizes", [](pb::Model& m) { m.mutable_float_layers(2)->mutable_bias()->RemoveLast(); },
       "invalid model: layer 2: weight/bias sizes do not match"},
      {"float_none", [](pb::Model& m) { m.clear_float_layers(); },
       "float network does not map 38 inputs to 38 outputs"},
      {"input_clamp", [](pb::Model& m) { m.set_input_lo(m.input_hi()); }, "input clamp range is empty"},
      {"int8_count", [](pb::Model& m) { m.mutable_int8_layers()->RemoveLast(); },
       "int8 network has 3 layers, float network 4"},
      {"int8_padding", [](pb::Model& m) {
         std::string w = m.int8_layers(0).weights();
         w[38] = 1;  // row 0 of layer 0: 38 inputs padded to 64
         m.mutable_int8_layers(0)->set_weights(w);
       },
       "invalid model: int8 layer 0: padding not zero"},
      {"int8_shift", [](pb::Model& m) { m.mutable_int8_layers(3)->set_shift(0, 40); },
       "invalid model: int8 layer 3: requantization parameters out of range"},
      {"int8_scale", [](pb::Model& m) { m.mutable_int8_layers(1)->set_output_scale(0.f); },
       "invalid model: int8 layer 1: activation quantization parameters out of range"},
      {"int8_weights", [](pb::Model& m) { m.mutable_int8_layers(2)->set_weights("abc"); },
       "invalid model: int8 layer 2: array sizes do not match its dimensions"},
      // Found by tests/fuzz/model_file_fuzz (UBSan: memcpy from an empty string to a null pointer).
      {"int8_weights_empty", [](pb::Model& m) { m.mutable_int8_layers(2)->clear_weights(); },
       "invalid model: int8 layer 2: array sizes do not match its dimensions"},
      {"threshold_zero", [](pb::Model& m) { m.set_threshold_int8(0.f); }, "thresholds must be positive and finite"},
      {"threshold_inf", [](pb::Model& m) { m.set_threshold_float(std::numeric_limits<float>::infinity()); },
       "thresholds must be positive and finite"},
      {"warning", [](pb::Model& m) { m.set_warning_level(1.5f); }, "warning level must be within (0, 1]"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    expect_load_error(std::string(c.name) + ".vgm", edited(c.edit), c.problem);
  }
  // The unedited re-serialization loads: the edits above are what fails.
  const std::string p = path("identity.vgm");
  write_file(p, edited([](pb::Model&) {}));
  EXPECT_TRUE(load_model(p).model.has_value()) << load_model(p).error;
}

TEST_F(ModelFileTest, ModelHasTheExpectedShape) {
  // The semantic cases above rely on this: 38 inputs (6 + 16 bands + centroid + 3 shaft + 12
  // envelope) and four layers.
  EXPECT_EQ(trained_model().input_names.size(), 38u);
  EXPECT_EQ(trained_model().float_net.layers().size(), 4u);
  EXPECT_EQ(trained_model().int8_net.layers()[0].in_padded, 64u);
}

TEST(CheckCompatible, NamesTheDifference) {
  const Model& m = trained_model();
  const FeatureConfig base = m.features;
  EXPECT_EQ(check_compatible(m, base), "");
  {
    FeatureConfig c = base;
    c.overlap = 0.75;  // overlap only chooses which windows are scored
    EXPECT_EQ(check_compatible(m, c), "");
  }
  {
    FeatureConfig c = base;
    c.sample_rate_hz = 12000;
    EXPECT_EQ(check_compatible(m, c), "model expects sample rate 25600 Hz, input has 12000 Hz");
  }
  {
    FeatureConfig c = base;
    c.window_length = 2048;
    EXPECT_EQ(check_compatible(m, c), "model expects window 4096, input uses 2048");
  }
  {
    FeatureConfig c = base;
    c.units = AccelUnits::m_per_s2;
    EXPECT_EQ(check_compatible(m, c), "model expects units g, input is in m/s2");
  }
  {
    FeatureConfig c = base;
    c.shaft_hz = 25.0;
    EXPECT_EQ(check_compatible(m, c), "model expects shaft speed 29.95 Hz, input has 25 Hz");
    c.shaft_hz.reset();
    c.bearing.reset();
    EXPECT_EQ(check_compatible(m, c), "model expects shaft speed 29.95 Hz, input has none");
  }
  {
    FeatureConfig c = base;
    c.bearing.reset();
    EXPECT_EQ(check_compatible(m, c), "model has bearing configured, input has none");
  }
  {
    FeatureConfig c = base;
    c.bearing->bpfo = 3.1;
    const std::string msg = check_compatible(m, c);
    EXPECT_NE(msg.find("feature configuration differs"), std::string::npos) << msg;
    EXPECT_NE(msg.find("bearing="), std::string::npos) << msg;
  }
  {
    FeatureConfig c = base;
    c.band_count = 12;
    const std::string msg = check_compatible(m, c);
    EXPECT_NE(msg.find("feature configuration differs"), std::string::npos) << msg;
    EXPECT_NE(msg.find(m.features.canonical()), std::string::npos) << msg;
  }
  // The other direction: a model without a bearing, input with one.
  FeatureConfig plain;
  plain.sample_rate_hz = 25600;
  plain.shaft_hz = 29.95;
  Model p;
  p.features = plain;
  FeatureConfig c = plain;
  c.bearing = base.bearing;
  EXPECT_EQ(check_compatible(p, c), "model has no bearing configured, input has one");
}

bool same_weights(const Model& a, const Model& b) {
  for (std::size_t i = 0; i < a.float_net.layers().size(); ++i)
    if (a.float_net.layers()[i].weights != b.float_net.layers()[i].weights ||
        a.float_net.layers()[i].bias != b.float_net.layers()[i].bias)
      return false;
  for (std::size_t i = 0; i < a.int8_net.layers().size(); ++i)
    if (a.int8_net.layers()[i].weights != b.int8_net.layers()[i].weights) return false;
  return a.normalizer.mean == b.normalizer.mean && a.normalizer.std == b.normalizer.std &&
         a.threshold_float == b.threshold_float && a.threshold_int8 == b.threshold_int8;
}

TEST(Training, DeterministicForASeed) {
  const auto& rows = training_rows();
  const Model& a = trained_model();  // seed 5
  const Model b = build_model(bearing_config(), rows, fast_training(5), ThresholdRule{}, summary_for_test());
  EXPECT_TRUE(same_weights(a, b)) << "two builds with seed 5 differ";
  EXPECT_EQ(a.summary.epochs, b.summary.epochs);
  EXPECT_EQ(a.summary.validation_loss, b.summary.validation_loss);
  const Model c = build_model(bearing_config(), rows, fast_training(6), ThresholdRule{}, summary_for_test());
  EXPECT_FALSE(same_weights(a, c)) << "seeds 5 and 6 gave identical models";
  EXPECT_NE(a.float_net.layers()[0].weights, c.float_net.layers()[0].weights);
  EXPECT_EQ(c.summary.seed, 6u);
  // The raw trainer too, including its validation split.
  const auto t1 = train_autoencoder(rows, fast_training(9));
  const auto t2 = train_autoencoder(rows, fast_training(9));
  const auto t3 = train_autoencoder(rows, fast_training(10));
  EXPECT_EQ(t1.validation_index, t2.validation_index);
  EXPECT_EQ(t1.network.layers()[2].weights, t2.network.layers()[2].weights);
  EXPECT_NE(t1.validation_index, t3.validation_index);
  EXPECT_EQ(t1.validation_index.size(), rows.size() / 5);  // floor(0.2 · n)
  EXPECT_EQ(t1.validation_index.size() + t1.train_index.size(), rows.size());
}

TEST(Training, RejectsUnusableData) {
  std::vector<std::vector<float>> few(7, std::vector<float>(38, 1.f));
  try {
    build_model(bearing_config(), few, fast_training(1), ThresholdRule{}, {});
    ADD_FAILURE() << "trained on 7 rows";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("at least 8 windows (got 7)"), std::string::npos) << e.what();
  }
  std::vector<std::vector<float>> wrong(20, std::vector<float>(37, 1.f));
  EXPECT_THROW(build_model(bearing_config(), wrong, fast_training(1), ThresholdRule{}, {}), std::invalid_argument);
  auto rows = training_rows();
  rows[3][2] = std::numeric_limits<float>::infinity();
  try {
    build_model(bearing_config(), rows, fast_training(1), ThresholdRule{}, {});
    ADD_FAILURE() << "trained on a non-finite value";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("non-finite"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace vibgate::analytics
