// model_file_fuzz.cpp — libFuzzer target for the model file loader, analytics::load_model()
// (header, CRC-32, protobuf payload, and the validation of every array, the feature configuration
// and its hash). The loader takes a path; the file goes to a per-process temporary file.
//
// Input layout: byte 0 bit 0 clear — the rest is the protobuf payload and the target wraps it in
// a valid header (magic, version, length, CRC-32), so mutations reach the payload validation
// instead of failing the CRC; bit 0 set — the rest is the whole file as it is.
//
// Asserted beyond "no crash, no sanitizer report": load_model() promises a model that is safe to
// score with, so for every model it accepts:
//  - the model is compatible with its own feature configuration (check_compatible);
//  - a Scorer built from it scores a window (features, int8 and float networks) without fault;
//  - the int8 network's scalar and AVX2 kernels give bit-identical outputs (quantized.hpp) on
//    ordinary, huge and NaN inputs — on this machine's AVX2, when it has it;
//  - the float network maps input_size() to output_size() values.
#include <google/protobuf/stubs/logging.h>
#include <boost/crc.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "vibgate/analytics/detector.hpp"
#include "vibgate/analytics/model.hpp"
#include "vibgate/analytics/quantized.hpp"

namespace vibgate::fuzz {
namespace {

using namespace vibgate::analytics;

std::string wrap(const std::uint8_t* payload, std::size_t size) {
  std::string file("VIBGMODL", 8);
  auto put = [&](std::uint32_t v) {
    for (int i = 0; i < 4; ++i) file.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  };
  boost::crc_32_type crc;
  crc.process_bytes(payload, size);
  put(kModelFormatVersion);
  put(static_cast<std::uint32_t>(size));
  put(crc.checksum());
  file.append(reinterpret_cast<const char*>(payload), size);
  return file;
}

void check_kernels(const QuantizedNetwork& net, const std::vector<float>& z) {
  std::vector<float> ys(net.output_size()), ya(net.output_size());
  std::vector<std::int8_t> scratch(net.scratch_size());
  net.forward(z, ys, scratch, Int8Kernel::scalar);
  if (!QuantizedNetwork::avx2_available()) return;
  net.forward(z, ya, scratch, Int8Kernel::avx2);
  for (std::size_t i = 0; i < ys.size(); ++i)
    FUZZ_CHECK(std::bit_cast<std::uint32_t>(ys[i]) == std::bit_cast<std::uint32_t>(ya[i]),
               "scalar and AVX2 int8 kernels differ");
}

void check_model(const Model& m) {
  FUZZ_CHECK(check_compatible(m, m.features).empty(), check_compatible(m, m.features));
  const std::size_t d = m.input_names.size();
  FUZZ_CHECK(m.int8_net.input_size() == d && m.int8_net.output_size() == d, "int8 sizes");
  FUZZ_CHECK(m.float_net.input_size() == d && m.float_net.output_size() == d, "float sizes");

  // Standardized inputs: ordinary values, then values beyond every clamp, then NaN.
  std::vector<float> z(d);
  for (std::size_t i = 0; i < d; ++i) z[i] = static_cast<float>(static_cast<int>(i % 7) - 3) * 0.7f;
  check_kernels(m.int8_net, z);
  for (std::size_t i = 0; i < d; ++i) z[i] = i % 2 == 0 ? 3e38f : -3e38f;
  check_kernels(m.int8_net, z);
  std::fill(z.begin(), z.end(), std::numeric_limits<float>::quiet_NaN());
  check_kernels(m.int8_net, z);

  std::vector<float> y(d), scratch(2 * m.float_net.max_width());
  m.float_net.forward(z, y, scratch);

  // The daemon's use: score windows of the model's length.
  Scorer scorer(std::make_shared<const Model>(m), Int8Kernel::automatic);
  std::vector<float> window(m.features.window_length);
  ScoredWindow out;
  scorer.score(window, out, true);
  for (std::size_t i = 0; i < window.size(); ++i)
    window[i] = static_cast<float>(std::sin(0.05 * static_cast<double>(i)) + 0.01 * (i % 13));
  scorer.score(window, out, true, true);
  FUZZ_CHECK(out.input.size() == d, "model input size");
}

}  // namespace
}  // namespace vibgate::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);  // invalid UTF-8 fails the parse; no log per input
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vibgate::fuzz;
  static const TempFile file(".vgm");
  if (size < 1) return 0;
  if ((data[0] & 1) == 0) {
    const std::string bytes = wrap(data + 1, size - 1);
    file.write(bytes.data(), bytes.size());
  } else {
    file.write(data + 1, size - 1);
  }
  const vibgate::analytics::ModelLoadResult r = vibgate::analytics::load_model(file.path());
  if (!r.model) {
    FUZZ_CHECK(r.error.rfind(file.path() + ": ", 0) == 0, r.error);
    return 0;
  }
  FUZZ_CHECK(r.error.empty(), r.error);
  check_model(*r.model);
  return 0;
}
