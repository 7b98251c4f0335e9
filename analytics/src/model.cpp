// model.cpp — building a Model from training rows, and the model file (save/load/validate).
#include "vibgate/analytics/model.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/crc.hpp>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "model.pb.h"
#include "vibgate/analytics/features.hpp"

namespace vibgate::analytics {
namespace {

constexpr char kMagic[8] = {'V', 'I', 'B', 'G', 'M', 'O', 'D', 'L'};
constexpr std::size_t kHeaderSize = 20;
constexpr std::size_t kMaxPayload = 64u << 20;

double quantile(std::vector<float> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto i = static_cast<std::size_t>(std::floor(pos));
  const std::size_t j = std::min(i + 1, v.size() - 1);
  return v[i] + (pos - static_cast<double>(i)) * (v[j] - v[i]);
}

// Activation ↔ the file's code (0 is the legacy relu flag, never written for tanh/sigmoid).
std::uint32_t activation_code(Activation a) { return static_cast<std::uint32_t>(a) + 1; }
Activation activation_from(std::uint32_t code, bool legacy_relu) {
  if (code == 0) return legacy_relu ? Activation::relu : Activation::linear;
  if (code > 4) throw std::invalid_argument("unknown activation code " + std::to_string(code));
  return static_cast<Activation>(code - 1);
}

std::uint32_t crc32(const std::string& s) {
  boost::crc_32_type c;
  c.process_bytes(s.data(), s.size());
  return c.checksum();
}

void put_u32(std::string& s, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
std::uint32_t get_u32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void to_pb(const FeatureConfig& c, pb::FeatureConfig* p) {
  p->set_sample_rate_hz(c.sample_rate_hz);
  p->set_window_length(static_cast<std::uint32_t>(c.window_length));
  p->set_overlap(c.overlap);
  p->set_units(static_cast<std::uint32_t>(c.units));
  for (double e : c.resolved_band_edges()) p->add_band_edges_hz(e);
  p->set_velocity_lo_hz(c.velocity_lo_hz);
  p->set_velocity_hi_hz(c.velocity_hi_hz);
  p->set_iso_group(static_cast<std::uint32_t>(c.iso_group));
  p->set_iso_mounting(static_cast<std::uint32_t>(c.iso_mounting));
  p->set_has_shaft(c.shaft_hz.has_value());
  p->set_shaft_hz(c.shaft_hz.value_or(0));
  p->set_has_bearing(c.bearing.has_value());
  if (c.bearing) {
    p->set_bpfo(c.bearing->bpfo);
    p->set_bpfi(c.bearing->bpfi);
    p->set_bsf(c.bearing->bsf);
    p->set_ftf(c.bearing->ftf);
    p->set_envelope_lo_hz(c.resolved_envelope_lo_hz());
    p->set_envelope_hi_hz(c.resolved_envelope_hi_hz());
    p->set_defect_harmonics(static_cast<std::uint32_t>(c.defect_harmonics));
  }
}

FeatureConfig from_pb(const pb::FeatureConfig& p) {
  FeatureConfig c;
  c.sample_rate_hz = p.sample_rate_hz();
  c.window_length = p.window_length();
  c.overlap = p.overlap();
  if (p.units() > 1) throw std::invalid_argument("unknown units code");
  c.units = static_cast<AccelUnits>(p.units());
  c.band_edges_hz.assign(p.band_edges_hz().begin(), p.band_edges_hz().end());
  c.band_count = c.band_edges_hz.empty() ? 0 : c.band_edges_hz.size() - 1;
  c.velocity_lo_hz = p.velocity_lo_hz();
  c.velocity_hi_hz = p.velocity_hi_hz();
  if (p.iso_group() < 1 || p.iso_group() > 2 || p.iso_mounting() > 1)
    throw std::invalid_argument("unknown ISO group or mounting");
  c.iso_group = static_cast<IsoGroup>(p.iso_group());
  c.iso_mounting = static_cast<IsoMounting>(p.iso_mounting());
  if (p.has_shaft()) c.shaft_hz = p.shaft_hz();
  if (p.has_bearing()) {
    c.bearing = DefectMultiples{p.bpfo(), p.bpfi(), p.bsf(), p.ftf()};
    c.envelope_lo_hz = p.envelope_lo_hz();
    c.envelope_hi_hz = p.envelope_hi_hz();
    c.defect_harmonics = p.defect_harmonics();
  }
  return c;
}

// ---- drift reference <-> protobuf (docs/model.md, "Drift") ----
void to_pb(const DriftHistogram& h, pb::DriftHistogram* p) {
  for (float e : h.edges) p->add_edges(e);
  for (float v : h.proportions) p->add_proportions(v);
}
DriftHistogram from_pb(const pb::DriftHistogram& p) {
  DriftHistogram h;
  h.edges.assign(p.edges().begin(), p.edges().end());
  h.proportions.assign(p.proportions().begin(), p.proportions().end());
  return h;
}
void drift_to_pb(const DriftReference& r, pb::Model& p) {
  if (r.empty()) return;
  auto* d = p.mutable_drift();
  to_pb(r.score, d->mutable_score());
  for (const auto& h : r.features) to_pb(h, d->add_features());
  d->set_rows(r.rows);
  d->set_score_rows(r.score_rows);
}
DriftReference drift_from_pb(const pb::Model& p) {
  DriftReference r;
  if (!p.has_drift()) return r;
  r.score = from_pb(p.drift().score());
  for (const auto& h : p.drift().features()) r.features.push_back(from_pb(h));
  r.rows = p.drift().rows();
  r.score_rows = p.drift().score_rows();
  return r;
}

bool all_finite(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}

}  // namespace

float threshold_from_errors(const std::vector<float>& all, const std::vector<std::size_t>& val,
                            const ThresholdRule& rule) {
  if (all.empty()) return 1e-9f;
  float vmax = 0;
  for (auto i : val) vmax = std::max(vmax, all[i]);
  const double t = rule.margin * std::max(quantile(all, rule.quantile), static_cast<double>(vmax));
  return static_cast<float>(std::max(t, 1e-9));
}

Model build_model(const FeatureConfig& features, const std::vector<std::vector<float>>& rows,
                  const TrainOptions& train, const ThresholdRule& rule, TrainingSummary summary) {
  features.validate();
  Model m;
  m.features = features;
  m.input_names = model_input_names(features);
  for (const auto& r : rows)
    if (r.size() != m.input_names.size())
      throw std::invalid_argument("training rows do not match the feature configuration");
  TrainedAutoencoder t = train_autoencoder(rows, train);
  m.normalizer = t.normalizer;
  m.float_net = t.network;

  std::vector<std::vector<float>> z(rows.size(), std::vector<float>(rows[0].size()));
  for (std::size_t i = 0; i < rows.size(); ++i) m.normalizer.apply(rows[i], z[i]);
  m.float_net.calibrate(z, rule.headroom);
  m.int8_net = quantize(m.float_net);

  std::vector<float> y(rows[0].size()), fs(2 * m.float_net.max_width());
  std::vector<std::int8_t> qs(m.int8_net.scratch_size());
  std::vector<float> ef(rows.size()), eq(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    m.float_net.forward(z[i], y, fs);
    ef[i] = mean_squared_error(z[i], y);
    m.int8_net.forward(z[i], y, qs);
    eq[i] = mean_squared_error(z[i], y);
  }
  m.threshold_float = threshold_from_errors(ef, t.validation_index, rule);
  m.threshold_int8 = threshold_from_errors(eq, t.validation_index, rule);

  // Drift reference, binned as the daemon will bin: the inputs of every row (training and
  // validation), the score of the validation rows (the network was not trained on them).
  m.drift = make_drift_reference(m, rows, t.validation_index);

  summary.windows = rows.size();
  summary.seed = train.seed;
  summary.epochs = static_cast<std::uint32_t>(t.stats.epochs);
  summary.best_epoch = static_cast<std::uint32_t>(t.stats.best_epoch);
  summary.train_loss = t.stats.train_loss;
  summary.validation_loss = t.stats.validation_loss;
  std::ostringstream r;
  r << rule.margin << " x max(q" << rule.quantile << " of training errors, max validation error)";
  summary.threshold_rule = r.str();
  summary.prune_fraction = static_cast<float>(train.prune_fraction);
  summary.nonzero_weights = nonzero_weights(m.float_net);
  m.summary = std::move(summary);
  return m;
}

std::string save_model(const Model& m, const std::string& path) {
  pb::Model p;
  p.set_format_version(kModelFormatVersion);
  to_pb(m.features, p.mutable_features());
  p.set_feature_hash(m.features.hash());
  for (const auto& n : m.input_names) p.add_input_names(n);
  for (float v : m.normalizer.mean) p.add_mean(v);
  for (float v : m.normalizer.std) p.add_std(v);
  for (const auto& L : m.float_net.layers()) {
    auto* q = p.add_float_layers();
    q->set_in(static_cast<std::uint32_t>(L.in));
    q->set_out(static_cast<std::uint32_t>(L.out));
    for (float v : L.weights) q->add_weights(v);
    for (float v : L.bias) q->add_bias(v);
    // relu/linear keep the legacy flag only, so trained model files stay byte-identical.
    q->set_relu(L.activation == Activation::relu);
    if (uses_lut(L.activation)) q->set_activation(activation_code(L.activation));
    q->set_out_lo(L.out_lo);
    q->set_out_hi(L.out_hi);
  }
  p.set_input_lo(m.float_net.input_lo());
  p.set_input_hi(m.float_net.input_hi());
  for (const auto& L : m.int8_net.layers()) {
    auto* q = p.add_int8_layers();
    q->set_in(static_cast<std::uint32_t>(L.in));
    q->set_out(static_cast<std::uint32_t>(L.out));
    q->set_in_padded(static_cast<std::uint32_t>(L.in_padded));
    q->set_weights(std::string(reinterpret_cast<const char*>(L.weights.data()), L.weights.size()));
    for (float v : L.weight_scale) q->add_weight_scale(v);
    for (auto v : L.bias) q->add_bias(v);
    for (auto v : L.multiplier) q->add_multiplier(v);
    for (auto v : L.shift) q->add_shift(v);
    q->set_input_scale(L.input.scale);
    q->set_input_zero_point(L.input.zero_point);
    q->set_output_scale(L.output.scale);
    q->set_output_zero_point(L.output.zero_point);
    q->set_relu(L.activation == Activation::relu);
    if (uses_lut(L.activation)) {
      q->set_activation(activation_code(L.activation));
      q->set_lut(std::string(reinterpret_cast<const char*>(L.lut.data()), L.lut.size()));
      q->set_pre_scale(L.pre.scale);
      q->set_pre_zero_point(L.pre.zero_point);
    }
  }
  p.set_threshold_float(m.threshold_float);
  p.set_threshold_int8(m.threshold_int8);
  p.set_warning_level(m.warning_level);
  if (m.origin != "trained") p.set_origin(m.origin);
  auto* s = p.mutable_summary();
  s->set_source(m.summary.source);
  s->set_samples(m.summary.samples);
  s->set_windows(m.summary.windows);
  s->set_trained_at(m.summary.trained_at);
  s->set_seed(m.summary.seed);
  s->set_epochs(m.summary.epochs);
  s->set_best_epoch(m.summary.best_epoch);
  s->set_train_loss(m.summary.train_loss);
  s->set_validation_loss(m.summary.validation_loss);
  s->set_threshold_rule(m.summary.threshold_rule);
  s->set_prune_fraction(m.summary.prune_fraction);
  s->set_nonzero_weights(m.summary.nonzero_weights);
  drift_to_pb(m.drift, p);

  std::string payload;
  if (!p.SerializeToString(&payload)) return path + ": cannot serialize the model";
  std::string file(kMagic, kMagic + 8);
  put_u32(file, kModelFormatVersion);
  put_u32(file, static_cast<std::uint32_t>(payload.size()));
  put_u32(file, crc32(payload));
  file += payload;

  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return path + ": cannot write: " + std::strerror(errno);
  std::size_t off = 0;
  while (off < file.size()) {
    const ssize_t w = ::write(fd, file.data() + off, file.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      const std::string e = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return path + ": write failed: " + e;
    }
    off += static_cast<std::size_t>(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return path + ": cannot flush to disk: " + std::strerror(errno);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string e = std::strerror(errno);
    ::unlink(tmp.c_str());
    return path + ": cannot rename into place: " + e;
  }
  return {};
}

ModelLoadResult load_model(const std::string& path) {
  ModelLoadResult r;
  auto fail = [&](const std::string& what) {
    r.error = path + ": " + what;
    return r;
  };
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(std::string("cannot open model: ") + std::strerror(errno));
  std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (file.empty()) return fail("model file is empty");
  if (std::memcmp(file.data(), kMagic, std::min<std::size_t>(8, file.size())) != 0)
    return fail("not a vibgate model file (bad magic)");
  if (file.size() < kHeaderSize)
    return fail("model file is truncated (" + std::to_string(file.size()) + " bytes, the header alone has " +
                std::to_string(kHeaderSize) + ")");
  const std::uint32_t version = get_u32(file.data() + 8);
  if (version != kModelFormatVersion)
    return fail("model format version " + std::to_string(version) + " is not supported (this build reads " +
                std::to_string(kModelFormatVersion) + ")");
  const std::uint32_t len = get_u32(file.data() + 12);
  if (len > kMaxPayload) return fail("model payload length is implausible");
  if (file.size() - kHeaderSize < len)
    return fail("model file is truncated (" + std::to_string(file.size()) + " of " +
                std::to_string(len + kHeaderSize) + " bytes)");
  if (file.size() - kHeaderSize > len) return fail("model file has trailing bytes");
  const std::string payload = file.substr(kHeaderSize);
  if (crc32(payload) != get_u32(file.data() + 16)) return fail("model file is corrupted (CRC mismatch)");
  pb::Model p;
  if (!p.ParseFromString(payload)) return fail("model payload does not parse");
  if (p.format_version() != kModelFormatVersion) return fail("model payload version mismatch");
  try {
    Model m;
    m.features = from_pb(p.features());
    m.features.validate();
    if (m.features.hash() != p.feature_hash())
      return fail("feature configuration hash does not match its stored configuration");
    m.input_names.assign(p.input_names().begin(), p.input_names().end());
    if (m.input_names != model_input_names(m.features))
      return fail("model input names do not match its feature configuration");
    const std::size_t d = m.input_names.size();
    m.normalizer.mean.assign(p.mean().begin(), p.mean().end());
    m.normalizer.std.assign(p.std().begin(), p.std().end());
    if (m.normalizer.mean.size() != d || m.normalizer.std.size() != d)
      return fail("normalization has " + std::to_string(m.normalizer.mean.size()) +
                  " entries, expected " + std::to_string(d));
    if (!all_finite(m.normalizer.mean) || !all_finite(m.normalizer.std) ||
        std::any_of(m.normalizer.std.begin(), m.normalizer.std.end(), [](float s) { return !(s > 0); }))
      return fail("normalization holds non-finite or non-positive values");
    std::vector<DenseLayer> fl;
    for (const auto& q : p.float_layers()) {
      DenseLayer L;
      L.in = q.in();
      L.out = q.out();
      L.weights.assign(q.weights().begin(), q.weights().end());
      L.bias.assign(q.bias().begin(), q.bias().end());
      L.activation = activation_from(q.activation(), q.relu());
      L.out_lo = q.out_lo();
      L.out_hi = q.out_hi();
      if (!(L.out_lo < L.out_hi)) return fail("float layer clamp range is empty");
      if (!all_finite(L.weights) || !all_finite(L.bias)) return fail("float layer holds non-finite values");
      fl.push_back(std::move(L));
    }
    if (fl.empty() || fl.front().in != d || fl.back().out != d)
      return fail("float network does not map " + std::to_string(d) + " inputs to " + std::to_string(d) + " outputs");
    m.float_net = FloatNetwork(std::move(fl));
    if (!(p.input_lo() < p.input_hi())) return fail("input clamp range is empty");
    m.float_net.set_input_range(p.input_lo(), p.input_hi());
    std::vector<QuantLayer> ql;
    for (const auto& q : p.int8_layers()) {
      QuantLayer L;
      L.in = q.in();
      L.out = q.out();
      L.in_padded = q.in_padded();
      // bytes → int8 (a memcpy into an empty vector passed a null pointer: undefined behaviour)
      L.weights.assign(q.weights().begin(), q.weights().end());
      L.weight_scale.assign(q.weight_scale().begin(), q.weight_scale().end());
      L.bias.assign(q.bias().begin(), q.bias().end());
      L.multiplier.assign(q.multiplier().begin(), q.multiplier().end());
      L.shift.assign(q.shift().begin(), q.shift().end());
      L.input = {q.input_scale(), q.input_zero_point()};
      L.output = {q.output_scale(), q.output_zero_point()};
      L.activation = activation_from(q.activation(), q.relu());
      if (uses_lut(L.activation)) {
        L.pre = {q.pre_scale(), q.pre_zero_point()};
        L.lut.assign(q.lut().begin(), q.lut().end());
        // A file without its table (written by hand or by another tool) gets it computed here.
        if (L.lut.empty() && L.pre.scale > 0 && L.output.scale > 0)
          L.lut = activation_lut(L.activation, L.pre, L.output);
      }
      ql.push_back(std::move(L));
    }
    if (ql.size() != m.float_net.layers().size())
      return fail("int8 network has " + std::to_string(ql.size()) + " layers, float network " +
                  std::to_string(m.float_net.layers().size()));
    for (std::size_t l = 0; l < ql.size(); ++l)
      if (ql[l].activation != m.float_net.layers()[l].activation)
        return fail("layer " + std::to_string(l) + ": int8 activation " +
                    to_string(ql[l].activation) + " differs from the float activation " +
                    to_string(m.float_net.layers()[l].activation));
    m.int8_net = QuantizedNetwork(std::move(ql));
    if (m.int8_net.input_size() != d || m.int8_net.output_size() != d)
      return fail("int8 network sizes do not match the feature vector");
    m.threshold_float = p.threshold_float();
    m.threshold_int8 = p.threshold_int8();
    m.warning_level = p.warning_level();
    m.origin = p.origin().empty() ? "trained" : p.origin();
    if (!(m.threshold_float > 0) || !(m.threshold_int8 > 0) || !std::isfinite(m.threshold_float) ||
        !std::isfinite(m.threshold_int8))
      return fail("thresholds must be positive and finite");
    if (!(m.warning_level > 0 && m.warning_level <= 1)) return fail("warning level must be within (0, 1]");
    const auto& s = p.summary();
    m.summary = TrainingSummary{s.source(),         s.samples(),        s.windows(),
                                s.trained_at(),     s.seed(),           s.epochs(),
                                s.best_epoch(),     s.train_loss(),     s.validation_loss(),
                                s.threshold_rule(), s.prune_fraction(), s.nonzero_weights()};
    m.drift = drift_from_pb(p);
    if (auto e = check_drift_reference(m.drift, d); !e.empty()) return fail(e);
    r.model = std::move(m);
  } catch (const std::exception& e) {
    return fail(std::string("invalid model: ") + e.what());
  }
  return r;
}

std::string check_compatible(const Model& model, const FeatureConfig& c) {
  const FeatureConfig& m = model.features;
  auto num = [](double v) {
    std::ostringstream o;
    o << v;
    return o.str();
  };
  if (m.sample_rate_hz != c.sample_rate_hz)
    return "model expects sample rate " + num(m.sample_rate_hz) + " Hz, input has " + num(c.sample_rate_hz) + " Hz";
  if (m.window_length != c.window_length)
    return "model expects window " + num(static_cast<double>(m.window_length)) + ", input uses " +
           num(static_cast<double>(c.window_length));
  if (m.units != c.units)
    return "model expects units " + std::string(to_string(m.units)) + ", input is in " + std::string(to_string(c.units));
  if (m.shaft_hz.has_value() != c.shaft_hz.has_value() || (m.shaft_hz && *m.shaft_hz != *c.shaft_hz))
    return "model expects shaft speed " + (m.shaft_hz ? num(*m.shaft_hz) + " Hz" : std::string("none")) +
           ", input has " + (c.shaft_hz ? num(*c.shaft_hz) + " Hz" : std::string("none"));
  if (m.bearing.has_value() != c.bearing.has_value())
    return std::string("model ") + (m.bearing ? "has" : "has no") + " bearing configured, input " +
           (c.bearing ? "has one" : "has none");
  if (m.hash() != c.hash()) return "feature configuration differs from the model's (" + m.canonical() + ")";
  return {};
}

std::uint32_t nonzero_weights(const FloatNetwork& net) {
  std::size_t n = 0;
  for (const auto& L : net.layers())
    n += static_cast<std::size_t>(
        std::count_if(L.weights.begin(), L.weights.end(), [](float w) { return w != 0.f; }));
  return static_cast<std::uint32_t>(n);
}

}  // namespace vibgate::analytics
