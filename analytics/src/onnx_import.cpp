// onnx_import.cpp — reading the supported ONNX subset into dense layers, and importing it as a
// gateway model: normalization, calibration, int8 quantization, thresholds, agreement report.
// Debian's libonnx-dev: onnx_pb.h defines ONNX_API and, with ONNX_ML, includes onnx-ml.pb.h.
#ifndef ONNX_ML
#define ONNX_ML 1
#endif
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <sstream>
#include <unordered_map>

#include "vibgate/analytics/detector.hpp"
#include "vibgate/analytics/drift.hpp"
#include "vibgate/analytics/features.hpp"
#include "vibgate/analytics/metrics.hpp"
#include "vibgate/analytics/onnx.hpp"

namespace vibgate::analytics {
namespace {

constexpr const char* kSupportedOps = "Gemm, MatMul, Add, Sub, Div, Mul, Relu, Tanh, Sigmoid";
constexpr std::int64_t kMinOpset = 11, kMaxOpset = 17;
constexpr std::size_t kMaxWidth = 4096;  // QuantizedNetwork::kMaxLayerInput

struct Fail {
  std::string what;
};

const char* dtype_name(int t) {
  switch (t) {
    case onnx::TensorProto_DataType_FLOAT:
      return "float32";
    case onnx::TensorProto_DataType_UINT8:
      return "uint8";
    case onnx::TensorProto_DataType_INT8:
      return "int8";
    case onnx::TensorProto_DataType_INT32:
      return "int32";
    case onnx::TensorProto_DataType_INT64:
      return "int64";
    case onnx::TensorProto_DataType_FLOAT16:
      return "float16";
    case onnx::TensorProto_DataType_DOUBLE:
      return "float64";
    case onnx::TensorProto_DataType_BFLOAT16:
      return "bfloat16";
    case onnx::TensorProto_DataType_UNDEFINED:
      return "undefined";
    default:
      return "non-float";
  }
}

// A constant tensor (initializer) as float32 values with its dims.
struct Constant {
  std::vector<std::int64_t> dims;
  std::vector<float> values;
};

Constant read_constant(const onnx::TensorProto& t) {
  if (t.data_type() != onnx::TensorProto_DataType_FLOAT)
    throw Fail{"initializer '" + t.name() + "' has data type " + dtype_name(t.data_type()) +
               ", only float32 is supported"};
  if (t.data_location() == onnx::TensorProto_DataLocation_EXTERNAL)
    throw Fail{"initializer '" + t.name() + "' uses external data, which is not supported"};
  Constant c;
  std::uint64_t n = 1;
  for (auto d : t.dims()) {
    if (d < 0 || d > (1 << 24)) throw Fail{"initializer '" + t.name() + "' has an invalid shape"};
    c.dims.push_back(d);
    n *= static_cast<std::uint64_t>(d);
    if (n > (1u << 24)) throw Fail{"initializer '" + t.name() + "' is too large"};
  }
  if (!t.raw_data().empty()) {
    if (t.raw_data().size() != n * 4)
      throw Fail{"initializer '" + t.name() + "' holds " + std::to_string(t.raw_data().size()) +
                 " bytes, its shape needs " + std::to_string(n * 4)};
    c.values.resize(n);
    // raw_data is little-endian IEEE 754 (as on every platform vibgate runs on).
    std::memcpy(c.values.data(), t.raw_data().data(), n * 4);
  } else {
    if (static_cast<std::uint64_t>(t.float_data_size()) != n)
      throw Fail{"initializer '" + t.name() + "' holds " + std::to_string(t.float_data_size()) +
                 " values, its shape needs " + std::to_string(n)};
    c.values.assign(t.float_data().begin(), t.float_data().end());
  }
  for (float v : c.values)
    if (!std::isfinite(v)) throw Fail{"initializer '" + t.name() + "' holds non-finite values"};
  return c;
}

std::string node_label(int index, const onnx::NodeProto& n) {
  return "node " + std::to_string(index) + " '" +
         (n.name().empty() ? n.output_size() ? n.output(0) : "" : n.name()) + "'";
}

// Width of a vector-shaped constant ([k] or [1, k]); 0 when it has another shape.
std::size_t vector_width(const Constant& c) {
  if (c.dims.size() == 1) return static_cast<std::size_t>(c.dims[0]);
  if (c.dims.size() == 2 && c.dims[0] == 1) return static_cast<std::size_t>(c.dims[1]);
  return 0;
}

const onnx::AttributeProto* attr(const onnx::NodeProto& n, const char* name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

// The width of a [batch, D] value's last dimension (0 when unknown); throws for other ranks.
std::size_t check_value(const onnx::ValueInfoProto& v, const char* role) {
  const std::string what = std::string(role) + " '" + v.name() + "'";
  if (!v.type().has_tensor_type()) throw Fail{what + " is not a tensor"};
  const auto& tt = v.type().tensor_type();
  if (tt.elem_type() != onnx::TensorProto_DataType_FLOAT)
    throw Fail{what + " has data type " + dtype_name(tt.elem_type()) +
               ", only float32 is supported"};
  if (!tt.has_shape()) return 0;
  const auto& s = tt.shape();
  if (s.dim_size() != 2)
    throw Fail{what + " has rank " + std::to_string(s.dim_size()) + ", expected [batch, features]"};
  const auto& b = s.dim(0);
  if (b.has_dim_value() && b.dim_value() < 1) throw Fail{what + " has an invalid batch dimension"};
  const auto& d = s.dim(1);
  if (!d.has_dim_value()) return 0;
  if (d.dim_value() < 1) throw Fail{what + " has an invalid feature dimension"};
  return static_cast<std::size_t>(d.dim_value());
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (true) {
    const auto c = s.find(',', pos);
    out.push_back(s.substr(pos, c == std::string::npos ? std::string::npos : c - pos));
    if (c == std::string::npos) break;
    pos = c + 1;
  }
  return out;
}

OnnxNetwork parse(const onnx::ModelProto& m) {
  OnnxNetwork net;
  // Operator sets: ai.onnx in [11, 17]; other domains only when no node uses them.
  bool found = false;
  for (const auto& o : m.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") {
      found = true;
      net.opset = o.version();
    }
  }
  if (!found) throw Fail{"no ai.onnx operator set is imported"};
  if (net.opset < kMinOpset || net.opset > kMaxOpset)
    throw Fail{"opset " + std::to_string(net.opset) + " is not supported (supported: " +
               std::to_string(kMinOpset) + " to " + std::to_string(kMaxOpset) + ")"};
  for (const auto& p : m.metadata_props()) net.metadata[p.key()] = p.value();
  if (!m.has_graph()) throw Fail{"the file holds no graph"};
  const auto& g = m.graph();

  std::unordered_map<std::string, const onnx::TensorProto*> inits;
  for (const auto& t : g.initializer()) inits[t.name()] = &t;
  if (g.sparse_initializer_size() > 0) throw Fail{"sparse initializers are not supported"};

  // The one real input (older exporters also list the initializers as inputs).
  const onnx::ValueInfoProto* input = nullptr;
  for (const auto& v : g.input()) {
    if (inits.count(v.name())) continue;
    if (input)
      throw Fail{"the graph has more than one input ('" + input->name() + "', '" + v.name() + "')"};
    input = &v;
  }
  if (!input) throw Fail{"the graph has no input"};
  const std::size_t d_in = check_value(*input, "input");
  if (d_in == 0) throw Fail{"input '" + input->name() + "' has no fixed feature dimension"};
  if (d_in > kMaxWidth)
    throw Fail{"input '" + input->name() + "' is wider than " + std::to_string(kMaxWidth)};
  if (g.output_size() != 1)
    throw Fail{"the graph must have exactly one output, it has " + std::to_string(g.output_size())};
  const std::size_t d_out = check_value(g.output(0), "output");

  std::string current = input->name();
  std::size_t width = d_in;
  std::optional<std::vector<float>> mean, std_dev;
  enum class Pending { none, matmul };  // a MatMul whose Add may follow
  Pending pending = Pending::none;
  std::vector<DenseLayer>& layers = net.layers;
  auto constant_of = [&](const std::string& name, const std::string& where) -> Constant {
    const auto it = inits.find(name);
    if (it == inits.end())
      throw Fail{where + ": input '" + name +
                 "' is neither the previous node's output nor an initializer (not a chain)"};
    return read_constant(*it->second);
  };

  for (int k = 0; k < g.node_size(); ++k) {
    const auto& n = g.node(k);
    const std::string where = node_label(k, n);
    const std::string& op = n.op_type();
    if (!n.domain().empty() && n.domain() != "ai.onnx")
      throw Fail{where + ": operator " + n.domain() + "." + op +
                 " is not supported (supported: " + kSupportedOps + ")"};
    static const char* kOps[] = {"Gemm", "MatMul", "Add",  "Sub",    "Div",
                                 "Mul",  "Relu",   "Tanh", "Sigmoid"};
    if (std::none_of(std::begin(kOps), std::end(kOps), [&](const char* s) { return op == s; }))
      throw Fail{where + ": operator " + op + " is not supported (supported: " + kSupportedOps +
                 ")"};
    if (n.output_size() != 1)
      throw Fail{where + ": operator " + op + " must have exactly one output"};
    // The data input: exactly one input is the previous output.
    int data = -1;
    for (int i = 0; i < n.input_size(); ++i) {
      if (n.input(i) == current) {
        if (data >= 0)
          throw Fail{where + ": operator " + op + " uses the previous output twice (not a chain)"};
        data = i;
      }
    }
    if (data < 0)
      throw Fail{where + ": operator " + op + " does not take the previous output '" + current +
                 "' (the graph is not a chain)"};
    const bool activation = op == "Relu" || op == "Tanh" || op == "Sigmoid";
    if (op != "Add") pending = Pending::none;

    if (op == "Sub" || op == "Div" || op == "Mul") {
      if (!layers.empty())
        throw Fail{where + ": operator " + op +
                   " is only supported before the first layer (normalization)"};
      if (n.input_size() != 2) throw Fail{where + ": operator " + op + " needs two inputs"};
      if ((op == "Sub" || op == "Div") && data != 0)
        throw Fail{where + ": operator " + op + " must take the data as its first input"};
      const Constant c = constant_of(n.input(1 - data), where);
      if (vector_width(c) != width)
        throw Fail{where + ": operator " + op + " constant must have shape [" +
                   std::to_string(width) + "]"};
      if (op == "Sub") {
        if (mean || std_dev) throw Fail{where + ": operator Sub must come first and only once"};
        mean = c.values;
      } else {
        if (std_dev) throw Fail{where + ": only one Div or Mul normalization is supported"};
        std::vector<float> s(c.values.size());
        for (std::size_t i = 0; i < s.size(); ++i) {
          s[i] = op == "Div" ? c.values[i] : 1.0f / c.values[i];
          if (!(s[i] > 0) || !std::isfinite(s[i]))
            throw Fail{where + ": operator " + op +
                       " constant must be positive (a standard deviation)"};
        }
        std_dev = std::move(s);
      }
    } else if (op == "Gemm" || op == "MatMul") {
      DenseLayer L;
      L.in = width;
      bool trans_b = false;
      if (op == "Gemm") {
        if (n.input_size() < 2 || n.input_size() > 3 || data != 0)
          throw Fail{where + ": operator Gemm must take the data as A and constants as B and C"};
        if (const auto* a = attr(n, "transA"); a && a->i() != 0)
          throw Fail{where + ": Gemm with transA=1 is not supported"};
        if (const auto* a = attr(n, "transB")) {
          if (a->i() != 0 && a->i() != 1) throw Fail{where + ": Gemm transB must be 0 or 1"};
          trans_b = a->i() == 1;
        }
        for (const char* s : {"alpha", "beta"})
          if (const auto* a = attr(n, s); a && a->f() != 1.0f)
            throw Fail{where + ": Gemm with " + s + " != 1 is not supported"};
      } else if (n.input_size() != 2 || data != 0) {
        throw Fail{where +
                   ": operator MatMul must take the data as its first input and a constant second"};
      }
      const Constant w = constant_of(n.input(1), where);
      if (w.dims.size() != 2) throw Fail{where + ": operator " + op + " weights must be a matrix"};
      const auto rows = static_cast<std::size_t>(w.dims[0]),
                 cols = static_cast<std::size_t>(w.dims[1]);
      const std::size_t in = trans_b ? cols : rows;
      L.out = trans_b ? rows : cols;
      if (in != width)
        throw Fail{where + ": operator " + op + " expects " + std::to_string(in) +
                   " inputs, the previous layer gives " + std::to_string(width)};
      if (L.out == 0 || L.out > kMaxWidth)
        throw Fail{where + ": operator " + op + " has an unsupported width"};
      L.weights.resize(L.in * L.out);
      for (std::size_t j = 0; j < L.out; ++j)
        for (std::size_t i = 0; i < L.in; ++i)
          L.weights[j * L.in + i] = trans_b ? w.values[j * cols + i] : w.values[i * cols + j];
      L.bias.assign(L.out, 0.f);
      if (op == "Gemm" && n.input_size() == 3 && !n.input(2).empty()) {
        const Constant c = constant_of(n.input(2), where);
        if (vector_width(c) != L.out)
          throw Fail{where + ": Gemm bias C must have shape [" + std::to_string(L.out) + "]"};
        L.bias = c.values;
      }
      if (op == "MatMul") pending = Pending::matmul;
      width = L.out;
      layers.push_back(std::move(L));
    } else if (op == "Add") {
      if (pending != Pending::matmul)
        throw Fail{where + ": operator Add is only supported as the bias right after a MatMul"};
      pending = Pending::none;
      if (n.input_size() != 2) throw Fail{where + ": operator Add needs two inputs"};
      const Constant c = constant_of(n.input(1 - data), where);
      if (vector_width(c) != width)
        throw Fail{where + ": Add bias must have shape [" + std::to_string(width) + "]"};
      layers.back().bias = c.values;
    } else if (activation) {
      if (layers.empty() || layers.back().activation != Activation::linear)
        throw Fail{where + ": operator " + op +
                   " is only supported right after a Gemm or MatMul (+ Add)"};
      if (n.input_size() != 1) throw Fail{where + ": operator " + op + " needs one input"};
      layers.back().activation = op == "Relu"   ? Activation::relu
                                 : op == "Tanh" ? Activation::tanh
                                                : Activation::sigmoid;
    }
    // A later node must not read an earlier value: the data flows through one name at a time.
    current = n.output(0);
    if (inits.count(current))
      throw Fail{where + ": output '" + current + "' shadows an initializer"};
  }
  if (layers.empty()) throw Fail{"the graph has no Gemm or MatMul layer"};
  if (current != g.output(0).name())
    throw Fail{"the graph output '" + g.output(0).name() +
               "' is not the last node's output (not a chain)"};
  if (width != d_in || (d_out != 0 && d_out != d_in))
    throw Fail{"output width " + std::to_string(d_out != 0 ? d_out : width) +
               " differs from the input width " + std::to_string(d_in) +
               " (an autoencoder reconstructs its input)"};

  if (mean || std_dev) {
    Normalizer nz;
    nz.mean = mean.value_or(std::vector<float>(d_in, 0.f));
    nz.std = std_dev.value_or(std::vector<float>(d_in, 1.f));
    net.normalizer = std::move(nz);
    net.normalization = "graph";
  } else if (net.metadata.count("vibgate.mean") || net.metadata.count("vibgate.std")) {
    auto m_ = parse_floats(net.metadata["vibgate.mean"]);
    auto s_ = parse_floats(net.metadata["vibgate.std"]);
    if (!m_ || !s_ || m_->size() != d_in || s_->size() != d_in)
      throw Fail{"metadata vibgate.mean and vibgate.std must both hold " + std::to_string(d_in) +
                 " comma-separated numbers"};
    for (float s : *s_)
      if (!(s > 0) || !std::isfinite(s))
        throw Fail{"metadata vibgate.std must hold positive numbers"};
    net.normalizer = Normalizer{std::move(*m_), std::move(*s_)};
    net.normalization = "metadata";
  }
  if (const auto it = net.metadata.find("vibgate.input_names");
      it != net.metadata.end() && !it->second.empty())
    net.input_names = split_commas(it->second);
  return net;
}

// Names in errors come from the file: control characters become '?' and an overlong message is
// cut, so an error stays one readable line whatever the file holds.
std::string one_line(std::string s) {
  for (char& ch : s)
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
  constexpr std::size_t kMax = 600;
  if (s.size() > kMax) s = s.substr(0, kMax) + "...";
  return s;
}

std::string fmt(double v, int prec = 6) {
  std::ostringstream o;
  o.precision(prec);
  o << v;
  return o.str();
}

}  // namespace

std::string join_floats(const std::vector<float>& v) {
  std::string out;
  char b[32];
  for (std::size_t i = 0; i < v.size(); ++i) {
    const auto r = std::to_chars(b, b + sizeof b, v[i]);
    if (i) out += ',';
    out.append(b, r.ptr);
  }
  return out;
}

std::optional<std::vector<float>> parse_floats(const std::string& text) {
  std::vector<float> out;
  if (text.empty()) return out;
  for (const auto& item : split_commas(text)) {
    std::size_t a = 0, b = item.size();
    while (a < b && item[a] == ' ') ++a;
    while (b > a && item[b - 1] == ' ') --b;
    float v = 0;
    const auto r = std::from_chars(item.data() + a, item.data() + b, v);
    if (a == b || r.ec != std::errc() || r.ptr != item.data() + b || !std::isfinite(v))
      return std::nullopt;
    out.push_back(v);
  }
  return out;
}

OnnxReadResult read_onnx(const std::string& bytes, const std::string& name) {
  OnnxReadResult r;
  if (bytes.empty()) {
    r.error = name + ": the file is empty";
    return r;
  }
  onnx::ModelProto m;
  if (!m.ParseFromString(bytes)) {
    r.error =
        name + ": not an ONNX model (the protobuf does not parse; truncated or another format)";
    return r;
  }
  try {
    r.network = parse(m);
  } catch (const Fail& f) {
    r.error = one_line(name + ": " + f.what);
  }
  return r;
}

std::string ImportReport::text() const {
  std::ostringstream o;
  o << "imported " << file << ": ";
  for (std::size_t i = 0; i < layers.size(); ++i) o << (i ? ", " : "") << layers[i];
  o << "\nnormalization    " << normalization << "\ncalibration rows " << rows
    << "\nthresholds       float " << fmt(threshold_float) << ", int8 " << fmt(threshold_int8)
    << "\nint8 vs float    Pearson " << fmt(pearson, 7) << ", max |score diff| "
    << fmt(max_abs_diff) << ", max relative diff " << fmt(max_rel_diff) << ", same verdict "
    << fmt(100 * verdict_agreement, 5) << " %\n";
  for (const auto& w : warnings) o << "warning: " << w << "\n";
  return o.str();
}

std::string ImportReport::note() const {
  std::ostringstream o;
  o << "onnx import " << file << ": r=" << fmt(pearson, 6) << ", verdicts "
    << fmt(100 * verdict_agreement, 5) << " %, max diff " << fmt(max_abs_diff, 3) << ", " << rows
    << " rows";
  return o.str();
}

ImportResult import_onnx(const std::string& bytes, const std::string& file_name_in,
                         const FeatureConfig& features,
                         const std::vector<std::vector<float>>& calibration,
                         const ImportOptions& options) {
  const std::string file_name = one_line(file_name_in);
  ImportResult res;
  ImportReport& rep = res.report;
  rep.file = file_name;
  auto fail = [&](const std::string& what) {
    res.error = one_line(file_name + ": " + what);
    return res;
  };
  auto read = read_onnx(bytes, file_name);
  if (!read.network) {
    res.error = read.error;
    return res;
  }
  OnnxNetwork& net = *read.network;
  Model m;
  try {
    features.validate();
  } catch (const std::exception& e) {
    return fail(std::string("feature configuration: ") + e.what());
  }
  m.features = features;
  m.input_names = model_input_names(features);
  const std::size_t d = m.input_names.size();
  if (net.input_width() != d)
    return fail("input width " + std::to_string(net.input_width()) +
                " does not match the asset's " + std::to_string(d) + " model inputs (" +
                (d ? m.input_names.front() + " … " + m.input_names.back() : "") + ")");
  if (!net.input_names.empty() && net.input_names != m.input_names) {
    std::size_t i = 0;
    while (i < net.input_names.size() && i < d && net.input_names[i] == m.input_names[i]) ++i;
    return fail("metadata vibgate.input_names differs from the asset's model inputs at position " +
                std::to_string(i) + " ('" + (i < net.input_names.size() ? net.input_names[i] : "") +
                "' vs '" + (i < d ? m.input_names[i] : "") + "')");
  }
  if (calibration.size() < options.min_rows)
    return fail("only " + std::to_string(calibration.size()) + " calibration rows; at least " +
                std::to_string(options.min_rows) + " are needed");
  for (const auto& r : calibration) {
    if (r.size() != d)
      return fail("calibration rows have " + std::to_string(r.size()) + " values, expected " +
                  std::to_string(d));
    for (float v : r)
      if (!std::isfinite(v)) return fail("calibration rows hold non-finite values");
  }
  // Normalization: graph prefix, metadata, or the calibration rows (as training does).
  if (net.normalizer) {
    m.normalizer = *net.normalizer;
    rep.normalization = net.normalization;
  } else {
    Normalizer nz;
    nz.mean.assign(d, 0.f);
    nz.std.assign(d, 0.f);
    const double n = static_cast<double>(calibration.size());
    for (std::size_t k = 0; k < d; ++k) {
      double s = 0, s2 = 0;
      for (const auto& r : calibration) s += r[k];
      const double mu = s / n;
      for (const auto& r : calibration) s2 += (r[k] - mu) * (r[k] - mu);
      nz.mean[k] = static_cast<float>(mu);
      nz.std[k] = static_cast<float>(std::max(std::sqrt(s2 / n), options.min_std));
    }
    m.normalizer = std::move(nz);
    rep.normalization = "calibration";
  }
  for (const auto& L : net.layers)
    rep.layers.push_back(std::to_string(L.in) + "→" + std::to_string(L.out) + " " +
                         to_string(L.activation));
  rep.rows = calibration.size();

  std::vector<std::vector<float>> z(calibration.size(), std::vector<float>(d));
  for (std::size_t i = 0; i < calibration.size(); ++i) m.normalizer.apply(calibration[i], z[i]);
  try {
    m.float_net = FloatNetwork(std::move(net.layers));
    m.float_net.calibrate(z, options.rule.headroom);
    m.int8_net = quantize(m.float_net);
  } catch (const std::exception& e) {
    return fail(std::string("cannot quantize: ") + e.what());
  }
  std::vector<float> y(d), fs(2 * m.float_net.max_width());
  std::vector<std::int8_t> qs(m.int8_net.scratch_size());
  std::vector<float> ef(z.size()), eq(z.size());
  for (std::size_t i = 0; i < z.size(); ++i) {
    m.float_net.forward(z[i], y, fs);
    ef[i] = mean_squared_error(z[i], y);
    m.int8_net.forward(z[i], y, qs);
    eq[i] = mean_squared_error(z[i], y);
    if (!std::isfinite(ef[i]) || !std::isfinite(eq[i]))
      return fail("the network produces non-finite outputs");
  }
  m.threshold_float = threshold_from_errors(ef, {}, options.rule);
  m.threshold_int8 = threshold_from_errors(eq, {}, options.rule);
  rep.threshold_float = m.threshold_float;
  rep.threshold_int8 = m.threshold_int8;

  std::vector<double> sf(z.size()), sq(z.size());
  std::size_t same = 0;
  for (std::size_t i = 0; i < z.size(); ++i) {
    sf[i] = ef[i] / m.threshold_float;
    sq[i] = eq[i] / m.threshold_int8;
    const double diff = std::abs(sq[i] - sf[i]);
    rep.max_abs_diff = std::max(rep.max_abs_diff, diff);
    rep.max_rel_diff = std::max(rep.max_rel_diff, diff / std::max(std::abs(sf[i]), 1e-6));
    same += verdict_for(sf[i], m.warning_level) == verdict_for(sq[i], m.warning_level);
  }
  rep.pearson = pearson(sf, sq);
  if (std::isnan(rep.pearson)) rep.pearson = rep.max_abs_diff == 0 ? 1.0 : 0.0;
  rep.verdict_agreement = static_cast<double>(same) / static_cast<double>(z.size());
  if (rep.pearson < options.min_pearson)
    rep.warnings.push_back("int8 vs float Pearson " + fmt(rep.pearson, 6) + " is below " +
                           fmt(options.min_pearson) +
                           " on the calibration rows (healthy rows have small scores, where int8 "
                           "rounding weighs most)");
  if (rep.verdict_agreement < options.min_verdict_agreement)
    return fail("int8 and float verdicts agree on only " + fmt(100 * rep.verdict_agreement, 5) +
                " % of the " + std::to_string(z.size()) + " calibration rows (need " +
                fmt(100 * options.min_verdict_agreement, 5) + " %); Pearson " +
                fmt(rep.pearson, 6));

  m.origin = "onnx:" + file_name;
  m.summary.source = file_name;
  m.summary.windows = z.size();
  std::ostringstream r;
  r << options.rule.margin << " x q" << options.rule.quantile
    << " of calibration errors (onnx import)";
  m.summary.threshold_rule = r.str();
  // Drift reference from the calibration rows (docs/model.md, "Drift"): the imported network was
  // not fitted to them, so every row counts for the score's histogram too.
  try {
    m.drift = make_drift_reference(m, calibration);
  } catch (const std::exception& e) {
    return fail(std::string("cannot build the drift reference: ") + e.what());
  }
  res.model = std::move(m);
  return res;
}

}  // namespace vibgate::analytics
