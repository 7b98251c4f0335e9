// codec.cpp — metric lists <-> protobuf bytes, float32 samples <-> little-endian bytes.
#include "codec.hpp"

#include <bit>
#include <cstdint>
#include <cstring>

#include "outbox.pb.h"

namespace vibgate::storage::detail {

void encode_metrics(const std::vector<Metric>& metrics, std::string& out) {
  pb::MetricList list;
  list.mutable_metrics()->Reserve(static_cast<int>(metrics.size()));
  for (const auto& m : metrics) {
    auto* p = list.add_metrics();
    p->set_name(m.name);
    std::visit(
        [p](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, double>)
            p->set_d(v);
          else if constexpr (std::is_same_v<T, std::int64_t>)
            p->set_i(v);
          else if constexpr (std::is_same_v<T, bool>)
            p->set_b(v);
          else
            p->set_s(v);
        },
        m.value);
  }
  out.clear();
  list.SerializeToString(&out);
}

bool decode_metrics(const void* data, std::size_t size, std::vector<Metric>& out) {
  out.clear();
  if (size == 0) return true;
  pb::MetricList list;
  if (size > static_cast<std::size_t>(INT32_MAX) ||
      !list.ParseFromArray(data, static_cast<int>(size)))
    return false;
  out.reserve(static_cast<std::size_t>(list.metrics_size()));
  for (const auto& p : list.metrics()) {
    Metric m;
    m.name = p.name();
    switch (p.value_case()) {
      case pb::MetricPb::kD:
        m.value = p.d();
        break;
      case pb::MetricPb::kI:
        m.value = p.i();
        break;
      case pb::MetricPb::kB:
        m.value = p.b();
        break;
      case pb::MetricPb::kS:
        m.value = p.s();
        break;
      case pb::MetricPb::VALUE_NOT_SET:
        m.value = 0.0;
        break;
    }
    out.push_back(std::move(m));
  }
  return true;
}

std::string encode_samples(const std::vector<float>& samples) {
  std::string out(samples.size() * 4, '\0');
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const auto u = std::bit_cast<std::uint32_t>(samples[i]);
    for (int b = 0; b < 4; ++b)
      out[i * 4 + static_cast<std::size_t>(b)] = static_cast<char>((u >> (8 * b)) & 0xffu);
  }
  return out;
}

std::vector<float> decode_samples(const void* data, std::size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::vector<float> out(size / 4);
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::uint32_t u = 0;
    for (int b = 0; b < 4; ++b)
      u |= static_cast<std::uint32_t>(p[i * 4 + static_cast<std::size_t>(b)]) << (8 * b);
    out[i] = std::bit_cast<float>(u);
  }
  return out;
}

}  // namespace vibgate::storage::detail
