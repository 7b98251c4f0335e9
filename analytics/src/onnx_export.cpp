// onnx_export.cpp — the gateway's float model written as ONNX (opset 13, IR version 8): the
// standardization as Sub/Div, every layer a Gemm (transB 1, the weights as stored) followed by
// its activation. Clamps and the int8 network are not exported (docs/model.md, "ONNX").
// Debian's libonnx-dev: onnx_pb.h defines ONNX_API and, with ONNX_ML, includes onnx-ml.pb.h.
#ifndef ONNX_ML
#define ONNX_ML 1
#endif
#include <onnx/onnx_pb.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "vibgate/analytics/onnx.hpp"
#include "vibgate/common/version.hpp"

namespace vibgate::analytics {
namespace {

void add_tensor(onnx::GraphProto* g, const std::string& name, const std::vector<std::int64_t>& dims,
                const std::vector<float>& v) {
  auto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto_DataType_FLOAT);
  for (auto d : dims) t->add_dims(d);
  std::string raw(v.size() * 4, '\0');
  if (!v.empty()) std::memcpy(raw.data(), v.data(), raw.size());  // little-endian IEEE 754
  t->set_raw_data(std::move(raw));
}

void add_value(onnx::ValueInfoProto* v, const std::string& name, std::size_t width) {
  v->set_name(name);
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto_DataType_FLOAT);
  tt->mutable_shape()->add_dim()->set_dim_param("N");
  tt->mutable_shape()->add_dim()->set_dim_value(static_cast<std::int64_t>(width));
}

onnx::NodeProto* add_node(onnx::GraphProto* g, const std::string& op, const std::string& name,
                          std::initializer_list<std::string> in, const std::string& out) {
  auto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(name);
  for (const auto& s : in) n->add_input(s);
  n->add_output(out);
  return n;
}

void add_meta(onnx::ModelProto& m, const std::string& k, const std::string& v) {
  auto* p = m.add_metadata_props();
  p->set_key(k);
  p->set_value(v);
}

}  // namespace

std::string export_onnx(const Model& model, std::string& bytes) {
  const auto& layers = model.float_net.layers();
  const std::size_t d = model.input_names.size();
  if (layers.empty() || model.float_net.input_size() != d || model.normalizer.mean.size() != d ||
      model.normalizer.std.size() != d)
    return "the model has no complete float network to export";
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("vibgate");
  m.set_producer_version(kVersion);
  m.set_doc_string(
      "vibgate autoencoder: standardized reconstruction of the model-input features (clamps not "
      "exported)");
  auto* os = m.add_opset_import();
  os->set_domain("");
  os->set_version(13);
  auto* g = m.mutable_graph();
  g->set_name("vibgate_autoencoder");
  add_value(g->add_input(), "X", d);
  add_value(g->add_output(), "Y", d);
  add_tensor(g, "mean", {static_cast<std::int64_t>(d)}, model.normalizer.mean);
  add_tensor(g, "std", {static_cast<std::int64_t>(d)}, model.normalizer.std);
  add_node(g, "Sub", "standardize_sub", {"X", "mean"}, "x_centered");
  add_node(g, "Div", "standardize_div", {"x_centered", "std"}, "z");
  std::string cur = "z";
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const auto& L = layers[l];
    const std::string id = std::to_string(l);
    add_tensor(g, "W" + id, {static_cast<std::int64_t>(L.out), static_cast<std::int64_t>(L.in)},
               L.weights);
    add_tensor(g, "B" + id, {static_cast<std::int64_t>(L.out)}, L.bias);
    const bool last = l + 1 == layers.size();
    const bool act = L.activation != Activation::linear;
    const std::string gemm_out = last && !act ? "Y" : "gemm" + id;
    auto* n = add_node(g, "Gemm", "dense" + id, {cur, "W" + id, "B" + id}, gemm_out);
    auto* a = n->add_attribute();
    a->set_name("transB");
    a->set_type(onnx::AttributeProto_AttributeType_INT);
    a->set_i(1);
    cur = gemm_out;
    if (act) {
      const std::string out = last ? "Y" : "act" + id;
      const char* op = L.activation == Activation::relu   ? "Relu"
                       : L.activation == Activation::tanh ? "Tanh"
                                                          : "Sigmoid";
      add_node(g, op, std::string(to_string(L.activation)) + id, {cur}, out);
      cur = out;
    }
  }
  std::string names;
  for (std::size_t i = 0; i < d; ++i) names += (i ? "," : "") + model.input_names[i];
  char hash[20];
  std::snprintf(hash, sizeof hash, "%016" PRIx64, model.features.hash());
  char thr[32];
  std::snprintf(thr, sizeof thr, "%.9g", static_cast<double>(model.threshold_float));
  add_meta(m, "vibgate.input_names", names);
  add_meta(m, "vibgate.feature_hash", hash);
  add_meta(m, "vibgate.threshold_float", thr);
  add_meta(m, "vibgate.mean", join_floats(model.normalizer.mean));
  add_meta(m, "vibgate.std", join_floats(model.normalizer.std));
  add_meta(m, "vibgate.features", model.features.canonical());
  add_meta(m, "vibgate.origin", model.origin);
  if (!m.SerializeToString(&bytes)) return "cannot serialize the ONNX model";
  return {};
}

}  // namespace vibgate::analytics
