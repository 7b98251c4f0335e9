// onnx_test.cpp — ONNX import/export: export→import reproduces the float model exactly, tanh/
// sigmoid/relu networks built here as ONNX protobufs agree float vs int8 (and the scalar and AVX2
// kernels stay bit-identical with lookup-table layers), every refusal names what is wrong, and
// model files without the new fields (trained models) still load unchanged.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#ifndef ONNX_ML
#define ONNX_ML 1
#endif
#include <onnx/onnx_pb.h>

#include "model.pb.h"  // generated from analytics/proto/model.proto (build tree)
#include "vibgate/analytics/detector.hpp"
#include "vibgate/analytics/features.hpp"
#include "vibgate/analytics/metrics.hpp"
#include "vibgate/analytics/model.hpp"
#include "vibgate/analytics/drift.hpp"
#include "vibgate/analytics/onnx.hpp"
#include "vibgate/analytics/synth.hpp"

namespace vibgate::analytics {
namespace {

namespace fs = std::filesystem;

FeatureConfig shaft_config() {
  FeatureConfig c;
  c.sample_rate_hz = 25600;
  c.window_length = 2048;
  c.shaft_hz = 29.95;
  return c;
}

std::vector<std::vector<float>> feature_rows(const FeatureConfig& cfg, std::uint64_t seed,
                                             double seconds, DefectKind defect = DefectKind::none) {
  MachineModel mm;
  mm.seed = seed;
  mm.defect = defect;
  mm.fault_peak_g = 2.0;
  MachineSynth s(mm);
  std::vector<float> x(static_cast<std::size_t>(seconds * mm.sample_rate_hz));
  s.generate(x);
  FeatureExtractor ex(cfg);
  Features f;
  std::vector<std::vector<float>> rows;
  for (std::size_t i = 0; i + cfg.window_length <= x.size(); i += cfg.window_length / 2) {
    ex.extract(std::span<const float>(x).subspan(i, cfg.window_length), f);
    std::vector<float> row(ex.model_input_size());
    ex.model_input(f, row);
    rows.push_back(std::move(row));
  }
  return rows;
}

// Shared data: healthy calibration rows and faulty rows (outer-race defect) for one config.
struct Data {
  FeatureConfig cfg = shaft_config();
  std::vector<std::vector<float>> healthy = feature_rows(cfg, 3, 8.0);
  std::vector<std::vector<float>> faulty = feature_rows(cfg, 4, 3.0, DefectKind::outer_race);
  std::size_t width() const { return healthy.front().size(); }
};
const Data& data() {
  static const Data d;
  return d;
}

// ---- building ONNX models --------------------------------------------------------------------

void add_init(onnx::GraphProto* g, const std::string& name, const std::vector<std::int64_t>& dims,
              const std::vector<float>& v, bool raw) {
  auto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto_DataType_FLOAT);
  for (auto d : dims) t->add_dims(d);
  if (raw) {
    std::string b(v.size() * 4, '\0');
    std::memcpy(b.data(), v.data(), b.size());
    t->set_raw_data(b);
  } else {
    for (float x : v) t->add_float_data(x);
  }
}

void set_value(onnx::ValueInfoProto* v, const std::string& name, std::int64_t width,
               int dtype = 1) {
  v->set_name(name);
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(dtype);
  tt->mutable_shape()->add_dim()->set_dim_param("batch");
  tt->mutable_shape()->add_dim()->set_dim_value(width);
}

onnx::NodeProto* node(onnx::GraphProto* g, const std::string& op, const std::string& name,
                      std::vector<std::string> in, const std::string& out) {
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (auto& s : in) n->add_input(s);
  n->add_output(out);
  return n;
}

struct Spec {
  std::vector<std::size_t> widths;  // D, h1, ..., D
  std::vector<std::string> acts;    // per layer: "", "Relu", "Tanh", "Sigmoid"
  bool matmul = false;              // MatMul + Add instead of Gemm (transB 0)
  bool raw = true;                  // initializers as raw_data (else float_data)
  const std::vector<std::vector<float>>* normalize_from =
      nullptr;  // Sub/Div prefix from these rows
  int opset = 13;
  std::uint64_t seed = 7;
  float weight_gain = 1.0f;
};

// Random weights scaled by 1/sqrt(in) (He-like), biases small; the standardization prefix
// computed from the given rows (population std floored at 0.02, as training does).
onnx::ModelProto build(const Spec& s) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* os = m.add_opset_import();
  os->set_domain("");
  os->set_version(s.opset);
  auto* g = m.mutable_graph();
  g->set_name("test");
  const auto d = static_cast<std::int64_t>(s.widths.front());
  set_value(g->add_input(), "X", d);
  set_value(g->add_output(), "Y", static_cast<std::int64_t>(s.widths.back()));
  std::string cur = "X";
  if (s.normalize_from) {
    const auto& rows = *s.normalize_from;
    std::vector<float> mean(s.widths.front()), sd(s.widths.front());
    for (std::size_t k = 0; k < mean.size(); ++k) {
      double a = 0, b = 0;
      for (const auto& r : rows) a += r[k];
      a /= static_cast<double>(rows.size());
      for (const auto& r : rows) b += (r[k] - a) * (r[k] - a);
      mean[k] = static_cast<float>(a);
      sd[k] = static_cast<float>(std::max(std::sqrt(b / static_cast<double>(rows.size())), 0.02));
    }
    add_init(g, "mean", {d}, mean, s.raw);
    add_init(g, "std", {d}, sd, s.raw);
    node(g, "Sub", "sub", {cur, "mean"}, "xc");
    node(g, "Div", "div", {"xc", "std"}, "z");
    cur = "z";
  }
  std::mt19937_64 rng(s.seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (std::size_t l = 0; l + 1 < s.widths.size(); ++l) {
    const std::size_t in = s.widths[l], out = s.widths[l + 1];
    const float a = s.weight_gain * std::sqrt(3.0f / static_cast<float>(in));
    std::vector<float> w(in * out), b(out);
    for (auto& x : w) x = a * u(rng);
    for (auto& x : b) x = 0.1f * u(rng);
    const std::string id = std::to_string(l);
    const bool last = l + 2 == s.widths.size();
    const std::string& act = s.acts[l];
    const std::string lin_out = last && act.empty() ? "Y" : "lin" + id;
    if (s.matmul) {  // W as [in, out]
      add_init(g, "W" + id, {static_cast<std::int64_t>(in), static_cast<std::int64_t>(out)}, w,
               s.raw);
      add_init(g, "B" + id, {static_cast<std::int64_t>(out)}, b, s.raw);
      node(g, "MatMul", "matmul" + id, {cur, "W" + id}, "mm" + id);
      node(g, "Add", "add" + id, {"mm" + id, "B" + id}, lin_out);
    } else {  // W as [out, in], transB = 1
      add_init(g, "W" + id, {static_cast<std::int64_t>(out), static_cast<std::int64_t>(in)}, w,
               s.raw);
      add_init(g, "B" + id, {static_cast<std::int64_t>(out)}, b, s.raw);
      auto* n = node(g, "Gemm", "gemm" + id, {cur, "W" + id, "B" + id}, lin_out);
      auto* t = n->add_attribute();
      t->set_name("transB");
      t->set_type(onnx::AttributeProto_AttributeType_INT);
      t->set_i(1);
    }
    cur = lin_out;
    if (!act.empty()) {
      const std::string o = last ? "Y" : "act" + id;
      node(g, act, act + id, {cur}, o);
      cur = o;
    }
  }
  return m;
}

std::string bytes_of(const onnx::ModelProto& m) {
  std::string b;
  m.SerializeToString(&b);
  return b;
}

Spec autoencoder(std::vector<std::string> acts, bool matmul = false) {
  Spec s;
  const std::size_t d = data().width();
  s.widths = {d, 16, 6, 16, d};
  s.acts = std::move(acts);
  s.matmul = matmul;
  s.normalize_from = &data().healthy;
  return s;
}

// Scores (error / threshold) of both paths over `rows`.
void scores(const Model& m, const std::vector<std::vector<float>>& rows, std::vector<double>& sf,
            std::vector<double>& sq) {
  const std::size_t d = m.input_names.size();
  std::vector<float> z(d), y(d), fs(2 * m.float_net.max_width());
  std::vector<std::int8_t> qs(m.int8_net.scratch_size());
  for (const auto& r : rows) {
    m.normalizer.apply(r, z);
    m.float_net.forward(z, y, fs);
    sf.push_back(mean_squared_error(z, y) / m.threshold_float);
    m.int8_net.forward(z, y, qs);
    sq.push_back(mean_squared_error(z, y) / m.threshold_int8);
  }
}

ImportResult import(const onnx::ModelProto& p, const std::string& name = "test.onnx") {
  return import_onnx(bytes_of(p), name, data().cfg, data().healthy, ImportOptions{});
}

// ---- round trip ------------------------------------------------------------------------------

TEST(OnnxExport, ImportOfExportReproducesTheFloatModelExactly) {
  const auto& D = data();
  TrainOptions to;
  to.max_epochs = 30;
  const Model m = build_model(D.cfg, D.healthy, to, ThresholdRule{}, TrainingSummary{});
  std::string bytes;
  ASSERT_EQ(export_onnx(m, bytes), "");
  const auto r = import_onnx(bytes, "exported.onnx", D.cfg, D.healthy, ImportOptions{});
  ASSERT_TRUE(r.model) << r.error;
  const Model& i = *r.model;
  EXPECT_EQ(r.report.normalization, "graph");
  EXPECT_EQ(i.normalizer.mean, m.normalizer.mean);
  EXPECT_EQ(i.normalizer.std, m.normalizer.std);
  ASSERT_EQ(i.float_net.layers().size(), m.float_net.layers().size());
  for (std::size_t l = 0; l < m.float_net.layers().size(); ++l) {
    const auto &a = i.float_net.layers()[l], &b = m.float_net.layers()[l];
    EXPECT_EQ(a.weights, b.weights);
    EXPECT_EQ(a.bias, b.bias);
    EXPECT_EQ(a.activation, b.activation);
    EXPECT_EQ(a.out_lo, b.out_lo);  // same calibration rows: same clamps
    EXPECT_EQ(a.out_hi, b.out_hi);
  }
  // Float outputs bit-identical on healthy and faulty rows; the int8 networks are identical too.
  const std::size_t d = D.width();
  std::vector<float> z(d), ya(d), yb(d), fs(2 * m.float_net.max_width());
  std::vector<std::int8_t> qs(m.int8_net.scratch_size());
  for (const auto* set : {&D.healthy, &D.faulty})
    for (const auto& row : *set) {
      m.normalizer.apply(row, z);
      m.float_net.forward(z, ya, fs);
      i.float_net.forward(z, yb, fs);
      ASSERT_EQ(ya, yb);
      m.int8_net.forward(z, ya, qs);
      i.int8_net.forward(z, yb, qs);
      ASSERT_EQ(ya, yb);
    }
  EXPECT_EQ(i.origin, "onnx:exported.onnx");
  EXPECT_EQ(m.origin, "trained");
  // Metadata carries what an external trainer needs.
  onnx::ModelProto p;
  ASSERT_TRUE(p.ParseFromString(bytes));
  EXPECT_EQ(p.opset_import(0).version(), 13);
  EXPECT_EQ(p.ir_version(), 8);
  std::map<std::string, std::string> meta;
  for (const auto& e : p.metadata_props()) meta[e.key()] = e.value();
  for (const char* k : {"vibgate.input_names", "vibgate.feature_hash", "vibgate.threshold_float",
                        "vibgate.mean", "vibgate.std", "vibgate.features"})
    EXPECT_TRUE(meta.count(k)) << k;
  EXPECT_EQ(parse_floats(meta["vibgate.mean"]).value(), m.normalizer.mean);
  EXPECT_EQ(meta["vibgate.features"], D.cfg.canonical());
}

// Export without the Sub/Div prefix (removed here): the metadata normalization is used.
TEST(OnnxImport, NormalizationFromMetadataThenFromCalibration) {
  const auto& D = data();
  TrainOptions to;
  to.max_epochs = 10;
  const Model m = build_model(D.cfg, D.healthy, to, ThresholdRule{}, TrainingSummary{});
  std::string bytes;
  ASSERT_EQ(export_onnx(m, bytes), "");
  onnx::ModelProto p;
  ASSERT_TRUE(p.ParseFromString(bytes));
  auto* g = p.mutable_graph();
  g->mutable_node()->DeleteSubrange(0, 2);  // Sub, Div
  g->mutable_node(0)->set_input(0, "X");    // first Gemm reads X
  auto r = import(p);
  ASSERT_TRUE(r.model) << r.error;
  EXPECT_EQ(r.report.normalization, "metadata");
  EXPECT_EQ(r.model->normalizer.mean, m.normalizer.mean);
  EXPECT_EQ(r.model->normalizer.std, m.normalizer.std);
  // Without the metadata: computed from the calibration rows like training does.
  for (int k = p.metadata_props_size() - 1; k >= 0; --k)
    if (p.metadata_props(k).key() == "vibgate.mean" || p.metadata_props(k).key() == "vibgate.std")
      p.mutable_metadata_props()->DeleteSubrange(k, 1);
  r = import(p);
  ASSERT_TRUE(r.model) << r.error;
  EXPECT_EQ(r.report.normalization, "calibration");
  for (std::size_t k = 0; k < D.width();
       ++k) {  // mean of all calibration rows (training used 80 %)
    double mean = 0;
    for (const auto& row : D.healthy) mean += row[k];
    mean /= static_cast<double>(D.healthy.size());
    EXPECT_NEAR(r.model->normalizer.mean[k], mean, 1e-5 * (1 + std::abs(mean)));
    EXPECT_GE(r.model->normalizer.std[k], 0.02f);
  }
}

// An imported model carries a drift reference built from its calibration rows (docs/model.md,
// "Drift"): one histogram per input plus the score's, every row counted, and the calibration
// rows themselves sit in the stable range against it.
TEST(OnnxImport, DriftReferenceFromTheCalibrationRows) {
  const auto& D = data();
  TrainOptions to;
  to.max_epochs = 10;
  const Model m = build_model(D.cfg, D.healthy, to, ThresholdRule{}, TrainingSummary{});
  std::string bytes;
  ASSERT_EQ(export_onnx(m, bytes), "");
  onnx::ModelProto p;
  ASSERT_TRUE(p.ParseFromString(bytes));
  const auto r = import(p);
  ASSERT_TRUE(r.model) << r.error;
  const DriftReference& ref = r.model->drift;
  ASSERT_EQ(ref.features.size(), D.width());
  EXPECT_EQ(ref.rows, D.healthy.size());
  EXPECT_EQ(ref.score_rows, D.healthy.size());
  EXPECT_FALSE(ref.score.proportions.empty());
  EXPECT_EQ(check_drift_reference(ref, D.width()), "");
}

// Gemm with transB = 0 (weights stored [in, out]) and a MatMul without Add (zero bias) read the
// same network as their transB = 1 / MatMul + Add forms.
TEST(OnnxImport, GemmTransB0AndMatMulWithoutAddAreEquivalentForms) {
  const Spec s = autoencoder({"Tanh", "Relu", "Sigmoid", ""});
  const auto p = build(s);
  auto t = p;  // every Gemm to transB = 0 with transposed weights
  for (auto& init : *t.mutable_graph()->mutable_initializer()) {
    if (init.name()[0] != 'W') continue;
    const auto rows = init.dims(0), cols = init.dims(1);
    std::vector<float> w(static_cast<std::size_t>(rows * cols)), wt(w.size());
    std::memcpy(w.data(), init.raw_data().data(), w.size() * 4);
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < cols; ++c)
        wt[static_cast<std::size_t>(c * rows + r)] = w[static_cast<std::size_t>(r * cols + c)];
    init.set_dims(0, cols);
    init.set_dims(1, rows);
    init.set_raw_data(std::string(reinterpret_cast<const char*>(wt.data()), wt.size() * 4));
  }
  for (auto& n : *t.mutable_graph()->mutable_node())
    if (n.op_type() == "Gemm") n.mutable_attribute(0)->set_i(0);
  const auto a = import(p), b = import(t);
  ASSERT_TRUE(a.model) << a.error;
  ASSERT_TRUE(b.model) << b.error;
  for (std::size_t l = 0; l < a.model->float_net.layers().size(); ++l)
    EXPECT_EQ(a.model->float_net.layers()[l].weights, b.model->float_net.layers()[l].weights);
  // MatMul without its Add: the bias is zero.
  Spec m = autoencoder({"Relu", "Relu", "Relu", ""}, true);
  auto q = build(m);
  auto* g = q.mutable_graph();
  const int last_add = g->node_size() - 1;  // add3 → Y
  g->mutable_node(last_add - 1)->set_output(0, "Y");
  g->mutable_node()->DeleteSubrange(last_add, 1);
  const auto r = import(q);
  ASSERT_TRUE(r.model) << r.error;
  for (float v : r.model->float_net.layers().back().bias) EXPECT_EQ(v, 0.f);
}

// ---- activations -----------------------------------------------------------------------------

struct ActCase {
  std::vector<std::string> acts;
  bool matmul;
};

class OnnxActivations : public ::testing::TestWithParam<ActCase> {};

TEST_P(OnnxActivations, FloatAndInt8AgreeAndKernelsAreBitIdentical) {
  const auto& D = data();
  Spec s = autoencoder(GetParam().acts, GetParam().matmul);
  s.raw = !GetParam().matmul;  // both initializer encodings exercised
  const auto r = import(build(s));
  ASSERT_TRUE(r.model) << r.error;
  const Model& m = *r.model;
  for (std::size_t l = 0; l < s.acts.size(); ++l) {
    const auto want = s.acts[l] == "Relu"      ? Activation::relu
                      : s.acts[l] == "Tanh"    ? Activation::tanh
                      : s.acts[l] == "Sigmoid" ? Activation::sigmoid
                                               : Activation::linear;
    EXPECT_EQ(m.float_net.layers()[l].activation, want);
    EXPECT_EQ(m.int8_net.layers()[l].activation, want);
    EXPECT_EQ(m.int8_net.layers()[l].lut.size(), uses_lut(want) ? 256u : 0u);
  }
  // The report's bounds (docs/accuracy.md): same verdict on ≥ 99.5 % of the calibration rows.
  EXPECT_GE(r.report.verdict_agreement, 0.995);
  EXPECT_GT(r.report.pearson, 0.99) << r.report.text();
  // On healthy + faulty rows together (the accuracy requirement's setting): Pearson ≥ 0.999.
  std::vector<double> sf, sq;
  scores(m, D.healthy, sf, sq);
  scores(m, D.faulty, sf, sq);
  EXPECT_GE(pearson(sf, sq), 0.999);
  std::size_t same = 0;
  for (std::size_t i = 0; i < sf.size(); ++i)
    same += verdict_for(sf[i], 0.8) == verdict_for(sq[i], 0.8);
  EXPECT_GE(static_cast<double>(same) / static_cast<double>(sf.size()), 0.995);
  // Scalar and AVX2 kernels: bit-identical, also far outside the calibration range.
  if (QuantizedNetwork::avx2_available()) {
    const std::size_t d = D.width();
    std::vector<float> z(d), ya(d), yb(d);
    std::vector<std::int8_t> qs(m.int8_net.scratch_size());
    std::mt19937_64 rng(5);
    std::normal_distribution<float> n(0.f, 1.f);
    for (int k = 0; k < 2000; ++k) {
      const float gain = k < 1000 ? 1.f : 50.f;
      for (auto& v : z) v = gain * n(rng);
      m.int8_net.forward(z, ya, qs, Int8Kernel::scalar);
      m.int8_net.forward(z, yb, qs, Int8Kernel::avx2);
      ASSERT_EQ(ya, yb) << "row " << k;
    }
  }
  // Save and load: identical tables and outputs.
  const std::string path =
      (fs::temp_directory_path() / ("vibgate_onnx_act_" + std::to_string(::getpid()) + ".vgm"))
          .string();
  ASSERT_EQ(save_model(m, path), "");
  const auto loaded = load_model(path);
  fs::remove(path);
  ASSERT_TRUE(loaded.model) << loaded.error;
  EXPECT_EQ(loaded.model->origin, "onnx:test.onnx");
  std::vector<double> lf, lq;
  scores(*loaded.model, D.faulty, lf, lq);
  std::vector<double> of, oq;
  scores(m, D.faulty, of, oq);
  EXPECT_EQ(lf, of);
  EXPECT_EQ(lq, oq);
  for (std::size_t l = 0; l < m.int8_net.layers().size(); ++l)
    EXPECT_EQ(loaded.model->int8_net.layers()[l].lut, m.int8_net.layers()[l].lut);
}

INSTANTIATE_TEST_SUITE_P(Variants, OnnxActivations,
                         ::testing::Values(ActCase{{"Relu", "Relu", "Relu", ""}, false},
                                           ActCase{{"Tanh", "Tanh", "Tanh", ""}, false},
                                           ActCase{{"Sigmoid", "Sigmoid", "Sigmoid", ""}, false},
                                           ActCase{{"Tanh", "Sigmoid", "Relu", ""}, true},
                                           ActCase{{"Relu", "Tanh", "Sigmoid", "Tanh"}, true}));

TEST(OnnxActivationLut, TableFollowsTheFunction) {
  const QuantParams pre{8.f / 255.f, 0}, out{2.f / 255.f, 0};
  const auto t = activation_lut(Activation::tanh, pre, out);
  ASSERT_EQ(t.size(), 256u);
  for (int q = -128; q <= 127; ++q) {
    const double want = std::tanh(static_cast<double>(pre.scale) * q) / out.scale;
    EXPECT_LE(std::abs(t[static_cast<std::size_t>(q + 128)] - std::clamp(want, -128.0, 127.0)),
              0.5 + 1e-9);
  }
  EXPECT_TRUE(std::is_sorted(t.begin(), t.end()));
  EXPECT_THROW(activation_lut(Activation::relu, pre, out), std::invalid_argument);
}

// ---- refusals --------------------------------------------------------------------------------

std::string refusal(const onnx::ModelProto& p) {
  const auto r = import(p, "model.onnx");
  EXPECT_FALSE(r.model);
  EXPECT_EQ(r.error.find('\n'), std::string::npos) << r.error;
  return r.error;
}

TEST(OnnxRefusals, UnsupportedOperatorNamesTheNode) {
  auto p = build(autoencoder({"Relu", "Relu", "Relu", ""}));
  auto* n = p.mutable_graph()->mutable_node(3);  // sub, div, gemm0, relu0 → a Conv
  n->set_op_type("Conv");
  n->set_name("conv1");
  EXPECT_EQ(refusal(p),
            "model.onnx: node 3 'conv1': operator Conv is not supported (supported: Gemm, MatMul, "
            "Add, Sub, Div, "
            "Mul, Relu, Tanh, Sigmoid)");
  p.mutable_graph()->mutable_node(3)->set_op_type("Relu");
  p.mutable_graph()->mutable_node(3)->set_domain("com.microsoft");
  EXPECT_NE(refusal(p).find("node 3 'conv1': operator com.microsoft.Relu is not supported"),
            std::string::npos);
}

TEST(OnnxRefusals, WrongWidth) {
  Spec s = autoencoder({"Relu", ""});
  s.normalize_from = nullptr;
  const std::size_t d = data().width() + 2;
  s.widths = {d, 8, d};
  const std::string e = refusal(build(s));
  EXPECT_NE(e.find("input width " + std::to_string(d) + " does not match the asset's " +
                   std::to_string(data().width())),
            std::string::npos)
      << e;
  // Output width differing from the input width.
  s.widths = {data().width(), 8, 5};
  EXPECT_NE(refusal(build(s)).find("output width 5 differs from the input width"),
            std::string::npos);
}

TEST(OnnxRefusals, InputNamesMetadataMustMatch) {
  auto p = build(autoencoder({"Tanh", "Tanh", "Tanh", ""}));
  auto* e = p.add_metadata_props();
  e->set_key("vibgate.input_names");
  auto names = model_input_names(data().cfg);
  std::swap(names[0], names[1]);
  std::string joined;
  for (const auto& n : names) joined += (joined.empty() ? "" : ",") + n;
  e->set_value(joined);
  EXPECT_NE(
      refusal(p).find("vibgate.input_names differs from the asset's model inputs at position 0"),
      std::string::npos);
}

TEST(OnnxRefusals, WrongDataTypes) {
  auto p = build(autoencoder({"Relu", "Relu", "Relu", ""}));
  p.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->set_elem_type(
      onnx::TensorProto_DataType_DOUBLE);
  EXPECT_EQ(refusal(p), "model.onnx: input 'X' has data type float64, only float32 is supported");
  p = build(autoencoder({"Relu", "Relu", "Relu", ""}));
  auto* w = p.mutable_graph()->mutable_initializer(2);  // W0
  w->set_data_type(onnx::TensorProto_DataType_FLOAT16);
  EXPECT_NE(refusal(p).find("initializer 'W0' has data type float16, only float32 is supported"),
            std::string::npos);
}

TEST(OnnxRefusals, Opsets) {
  Spec s = autoencoder({"Relu", "Relu", "Relu", ""});
  s.opset = 9;
  EXPECT_EQ(refusal(build(s)), "model.onnx: opset 9 is not supported (supported: 11 to 17)");
  s.opset = 18;
  EXPECT_NE(refusal(build(s)).find("opset 18 is not supported"), std::string::npos);
  for (int v : {11, 17}) {
    s.opset = v;
    EXPECT_TRUE(import(build(s)).model) << v;
  }
}

TEST(OnnxRefusals, NonChainGraphs) {
  // A skip connection: the second Gemm reads the standardized input again.
  auto p = build(autoencoder({"Relu", "Relu", "Relu", ""}));
  p.mutable_graph()->mutable_node(4)->set_input(0, "z");
  const std::string e = refusal(p);
  EXPECT_NE(e.find("node 4 'gemm1': operator Gemm does not take the previous output 'act0' (the "
                   "graph is not a chain)"),
            std::string::npos)
      << e;
  // Two graph inputs.
  p = build(autoencoder({"Relu", "Relu", "Relu", ""}));
  set_value(p.mutable_graph()->add_input(), "X2", 4);
  EXPECT_NE(refusal(p).find("more than one input"), std::string::npos);
  // Output that is not the last node's.
  p = build(autoencoder({"Relu", "Relu", "Relu", ""}));
  p.mutable_graph()->mutable_output(0)->set_name("act0");
  EXPECT_NE(refusal(p).find("not the last node's output"), std::string::npos);
  // An activation without a layer before it, Add without MatMul, normalization after a layer.
  p = build(autoencoder({"Relu", "Relu", "Relu", ""}));
  p.mutable_graph()->mutable_node(1)->set_op_type("Relu");
  p.mutable_graph()->mutable_node(1)->clear_input();
  p.mutable_graph()->mutable_node(1)->add_input("xc");
  EXPECT_NE(
      refusal(p).find("node 1 'div': operator Relu is only supported right after a Gemm or MatMul"),
      std::string::npos);
  p = build(autoencoder({"Relu", "Relu", "Relu", ""}));
  p.mutable_graph()->mutable_node(0)->set_op_type("Add");
  EXPECT_NE(refusal(p).find(
                "node 0 'sub': operator Add is only supported as the bias right after a MatMul"),
            std::string::npos);
}

TEST(OnnxRefusals, GemmAttributesAndShapes) {
  auto p = build(autoencoder({"Relu", "Relu", "Relu", ""}));
  auto* a = p.mutable_graph()->mutable_node(2)->add_attribute();
  a->set_name("alpha");
  a->set_type(onnx::AttributeProto_AttributeType_FLOAT);
  a->set_f(2.f);
  EXPECT_NE(refusal(p).find("node 2 'gemm0': Gemm with alpha != 1 is not supported"),
            std::string::npos);
  p = build(autoencoder({"Relu", "Relu", "Relu", ""}));
  p.mutable_graph()
      ->mutable_input(0)
      ->mutable_type()
      ->mutable_tensor_type()
      ->mutable_shape()
      ->add_dim()
      ->set_dim_value(3);
  EXPECT_NE(refusal(p).find("input 'X' has rank 3"), std::string::npos);
}

TEST(OnnxRefusals, TruncatedAndGarbageFiles) {
  const std::string b = bytes_of(build(autoencoder({"Tanh", "Tanh", "Tanh", ""})));
  for (std::size_t cut : {b.size() / 2, b.size() - 3, std::size_t{10}}) {
    const auto r =
        import_onnx(b.substr(0, cut), "model.onnx", data().cfg, data().healthy, ImportOptions{});
    EXPECT_FALSE(r.model) << cut;
    EXPECT_EQ(r.error.rfind("model.onnx: ", 0), 0u) << r.error;
  }
  EXPECT_EQ(import_onnx("", "model.onnx", data().cfg, data().healthy, ImportOptions{}).error,
            "model.onnx: the file is empty");
  EXPECT_NE(import_onnx("VIBGMODL\x01\x02garbage", "model.onnx", data().cfg, data().healthy,
                        ImportOptions{})
                .error.find("not an ONNX model"),
            std::string::npos);
}

// Damaged files (random byte changes, truncations) never crash the importer: each gives a model
// or a one-line error naming the file.
TEST(OnnxRefusals, DamagedFilesGiveAModelOrOneLineError) {
  const std::string good = bytes_of(build(autoencoder({"Tanh", "Sigmoid", "Relu", ""}, true)));
  std::mt19937_64 rng(11);
  std::size_t refused = 0, accepted = 0;
  for (int k = 0; k < 1500; ++k) {
    std::string b = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) b[rng() % b.size()] = static_cast<char>(rng() & 0xFF);
    if (k % 5 == 0) b.resize(rng() % b.size());
    const auto r = import_onnx(b, "damaged.onnx", data().cfg, data().healthy, ImportOptions{});
    if (r.model) {
      ++accepted;
      continue;
    }
    ++refused;
    ASSERT_EQ(r.error.rfind("damaged.onnx: ", 0), 0u) << r.error;
    ASSERT_EQ(r.error.find('\n'), std::string::npos) << "[" << r.error << "]";
  }
  EXPECT_GT(refused, 100u);  // the damage was real
  EXPECT_GT(accepted + refused, 0u);
}

TEST(OnnxRefusals, TooFewCalibrationRowsAndDisagreement) {
  const auto p = build(autoencoder({"Tanh", "Tanh", "Tanh", ""}));
  std::vector<std::vector<float>> few(data().healthy.begin(), data().healthy.begin() + 5);
  const auto r = import_onnx(bytes_of(p), "m.onnx", data().cfg, few, ImportOptions{});
  EXPECT_EQ(r.error, "m.onnx: only 5 calibration rows; at least 8 are needed");
  // A bound no int8 model meets is refused, with the numbers.
  ImportOptions strict;
  strict.min_verdict_agreement = 1.01;
  const auto s = import_onnx(bytes_of(p), "m.onnx", data().cfg, data().healthy, strict);
  EXPECT_FALSE(s.model);
  EXPECT_NE(s.error.find("int8 and float verdicts agree on only"), std::string::npos) << s.error;
}

// ---- model files without the new fields -----------------------------------------------------

TEST(LegacyModelFile, TrainedModelsWriteNoNewFieldsAndFilesWithoutThemLoad) {
  const auto& D = data();
  TrainOptions to;
  to.max_epochs = 5;
  const Model m = build_model(D.cfg, D.healthy, to, ThresholdRule{}, TrainingSummary{});
  const std::string path =
      (fs::temp_directory_path() / ("vibgate_legacy_" + std::to_string(::getpid()) + ".vgm"))
          .string();
  ASSERT_EQ(save_model(m, path), "");
  std::ifstream in(path, std::ios::binary);
  const std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  pb::Model p;
  ASSERT_TRUE(p.ParseFromString(file.substr(20)));
  // What the old code wrote: relu flags, no activation codes, tables or origin.
  EXPECT_EQ(p.origin(), "");
  for (const auto& L : p.float_layers()) EXPECT_EQ(L.activation(), 0u);
  for (const auto& L : p.int8_layers()) {
    EXPECT_EQ(L.activation(), 0u);
    EXPECT_TRUE(L.lut().empty());
  }
  EXPECT_TRUE(p.float_layers(0).relu());
  EXPECT_FALSE(p.float_layers(p.float_layers_size() - 1).relu());
  const auto l = load_model(path);
  ASSERT_TRUE(l.model) << l.error;
  EXPECT_EQ(l.model->origin, "trained");
  EXPECT_EQ(l.model->float_net.layers().front().activation, Activation::relu);
  EXPECT_EQ(l.model->float_net.layers().back().activation, Activation::linear);
  EXPECT_EQ(l.model->int8_net.layers().front().activation, Activation::relu);
  // Saving the loaded model again gives the same bytes.
  ASSERT_EQ(save_model(*l.model, path), "");
  std::ifstream in2(path, std::ios::binary);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in2)), std::istreambuf_iterator<char>()),
            file);
  fs::remove(path);
}

TEST(LegacyModelFile, AFileWrittenByTheEarlierBuildLoadsAndSavesByteIdentical) {
  const std::string src = std::string(VIBGATE_ONNX_TEST_DATA) + "/legacy_model_v1.vgm";
  std::ifstream in(src, std::ios::binary);
  const std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(file.size(), 20u) << src;
  const auto l = load_model(src);
  ASSERT_TRUE(l.model) << l.error;
  const Model& m = *l.model;
  EXPECT_EQ(m.origin, "trained");
  ASSERT_EQ(m.float_net.layers().size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    const auto want = i < 3 ? Activation::relu : Activation::linear;
    EXPECT_EQ(m.float_net.layers()[i].activation, want);
    EXPECT_EQ(m.int8_net.layers()[i].activation, want);
    EXPECT_TRUE(m.int8_net.layers()[i].lut.empty());
  }
  const std::string path =
      (fs::temp_directory_path() / ("vibgate_legacy_copy_" + std::to_string(::getpid()) + ".vgm"))
          .string();
  ASSERT_EQ(save_model(m, path), "");
  std::ifstream again(path, std::ios::binary);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(again)), std::istreambuf_iterator<char>()),
            file);
  fs::remove(path);
  // It exports and re-imports like any model.
  std::string bytes;
  ASSERT_EQ(export_onnx(m, bytes), "");
  const auto r = read_onnx(bytes, "legacy.onnx");
  ASSERT_TRUE(r.network) << r.error;
  EXPECT_EQ(r.network->layers.size(), 4u);
}

}  // namespace
}  // namespace vibgate::analytics
