// modbus_waveform_fuzz.cpp — libFuzzer target for waveform-block reassembly over Modbus: the real
// ModbusPoller (ingest/src/poller.cpp, with its tag reads and decode_tag) polls one device whose
// answers come from the fuzz input through fake_modbus_link.cpp (in place of libmodbus).
//
// Input layout: byte 0 — bit 0: two waveforms (input and holding registers) instead of one
// (input registers); bits 1-2: retries (0-2); bits 3-5: number of tags (coils and discrete inputs,
// plus holding registers when there is one waveform). Then 2 bytes (big-endian) per waveform
// base address and 3 bytes per tag (type, address); the rest is the device's script
// (fake_modbus_link.hpp). The device polls every 1 ms until the script runs out (at most 8 polls).
//
// Asserted beyond "no crash, no sanitizer report" (the device's reference model, written from
// docs/modbus-waveform.md, checks the requests; see fake_modbus_link.hpp):
//  - every request within the Modbus limits (125 registers, 2000 bits) and register 65535;
//  - data read only after a new, valid header, in contiguous chunks inside the announced block,
//    the sequence re-read only after the whole block;
//  - every delivered SampleBlock is, in order, the block the model expects: same samples (bit for
//    bit), rate and gap flag (first block, or sequence advanced by more than one); its channel
//    name is "<device>/<waveform>";
//  - DeviceHealth: waveform_blocks = blocks delivered, waveform_torn <= re-reads that changed.
#include <boost/asio/io_context.hpp>

#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fake_modbus_link.hpp"
#include "fuzz_util.hpp"
#include "vibgate/ingest/config.hpp"
#include "vibgate/ingest/poller.hpp"

namespace vibgate::fuzz {
namespace {

constexpr std::uint64_t kMaxPolls = 8;

constexpr const char* kTagTypes[] = {"bool",  "int16",  "uint16",  "int32",  "uint32",
                                     "int64", "uint64", "float32", "float64"};

struct Setup {
  std::string toml;
  std::vector<FakeWaveform> waves;
  std::span<const std::uint8_t> script;
};

// The configuration from the input's first bytes (always one parse_ingest_config accepts).
std::optional<Setup> make_setup(std::span<const std::uint8_t> in) {
  if (in.empty()) return std::nullopt;
  const std::uint8_t mode = in[0];
  const std::size_t nwaves = 1 + (mode & 1);
  const unsigned retries = ((mode >> 1) & 3) % 3;
  const std::size_t ntags = (mode >> 3) & 7;
  const std::size_t need = 1 + 2 * nwaves + 3 * ntags;
  if (in.size() < need) return std::nullopt;
  Setup s;
  s.toml =
      "[[device]]\nname = \"d\"\nhost = \"fuzz\"\npoll_interval_ms = 1\n"
      "response_timeout_ms = 1\nbackoff_initial_ms = 1\nbackoff_max_ms = 2\nretries = " +
      std::to_string(retries) + "\n";
  std::size_t p = 1;
  for (std::size_t w = 0; w < nwaves; ++w) {
    FakeWaveform fw;
    fw.reg = w == 0 ? ingest::RegisterType::input_register : ingest::RegisterType::holding_register;
    fw.base = static_cast<std::uint16_t>(std::min(((in[p] << 8) | in[p + 1]), 65535 - 8));
    p += 2;
    s.toml += "[[device.waveform]]\nname = \"w" + std::to_string(w) + "\"\nregister = \"" +
              (w == 0 ? "input" : "holding") + "\"\naddress = " + std::to_string(fw.base) + "\n";
    s.waves.push_back(std::move(fw));
  }
  for (std::size_t t = 0; t < ntags; ++t) {
    const std::uint8_t sel = in[p];
    const unsigned addr = (in[p + 1] << 8) | in[p + 2];
    p += 3;
    const unsigned kind = sel % (nwaves == 1 ? 3 : 2);  // holding only when no waveform uses it
    std::string reg = kind == 0 ? "coil" : kind == 1 ? "discrete" : "holding";
    std::string type = "bool";
    unsigned width = 1;
    if (kind == 2) {
      const unsigned ti = (sel >> 2) % 9;
      type = kTagTypes[ti];
      width = ti >= 7 ? (ti == 7 ? 2 : 4) : ti >= 5 ? 4 : ti >= 3 ? 2 : 1;
    }
    s.toml += "[[device.tag]]\nname = \"t" + std::to_string(t) + "\"\nregister = \"" + reg +
              "\"\ntype = \"" + type +
              "\"\naddress = " + std::to_string(std::min(addr, 65536 - width)) + "\n";
  }
  s.script = in.subspan(p);
  return s;
}

bool same_float(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) ||
         std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b);
}

void run(std::span<const std::uint8_t> input) {
  std::optional<Setup> setup = make_setup(input);
  if (!setup) return;
  ingest::IngestConfig cfg = ingest::parse_ingest_config(setup->toml, "fuzz.toml");
  const std::size_t nwaves = setup->waves.size();
  FakeDevice& dev = fake_device();
  dev.reset(setup->script, std::move(setup->waves));

  std::vector<std::uint64_t> delivered(nwaves, 0);
  ingest::IngestCallbacks cb;
  cb.on_samples = [&](const SampleBlock& b) {
    FUZZ_CHECK(b.channel == "d/w0" || (nwaves == 2 && b.channel == "d/w1"), b.channel);
    const std::size_t w = b.channel == "d/w0" ? 0 : 1;
    ++delivered[w];
    const std::optional<ExpectedBlock> e = dev.take_expected(w);
    FUZZ_CHECK(e.has_value(), "a block delivered that the device never completed");
    FUZZ_CHECK(b.sample_rate_hz == e->rate_hz, "sample rate");
    FUZZ_CHECK(b.gap_before == e->gap_before, "gap_before");
    FUZZ_CHECK(b.samples.size() == e->samples.size(), "sample count");
    for (std::size_t i = 0; i < b.samples.size(); ++i)
      FUZZ_CHECK(same_float(b.samples[i], e->samples[i]), "sample value");
  };
  cb.on_tags = [](const std::vector<ingest::TagSample>& tags) {
    for (const auto& t : tags) FUZZ_CHECK(t.device == "d" && !t.tag.empty(), "tag sample names");
  };

  boost::asio::io_context io;
  ingest::ModbusPoller poller(io, std::move(cfg), cb);
  poller.start();
  // Polls are 1 ms apart (the shortest interval): a few per input keep ~100 executions/s.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!dev.exhausted() && poller.health()[0].second.polls < kMaxPolls &&
         std::chrono::steady_clock::now() < deadline)
    io.run_for(std::chrono::milliseconds(1));
  poller.stop();

  const auto health = poller.health();
  FUZZ_CHECK(health.size() == 1, "one device");
  const ingest::DeviceHealth& h = health[0].second;
  std::uint64_t blocks = 0, torn = 0;
  for (std::size_t w = 0; w < nwaves; ++w) {
    blocks += delivered[w];
    torn += dev.torn(w);
  }
  if (std::getenv("VIBGATE_FUZZ_VERBOSE") != nullptr)  // to check what a seed exercises
    std::fprintf(stderr, "polls %llu, blocks %llu, torn %llu/%llu, gaps %llu, last error '%s'\n",
                 static_cast<unsigned long long>(h.polls), static_cast<unsigned long long>(blocks),
                 static_cast<unsigned long long>(h.waveform_torn),
                 static_cast<unsigned long long>(torn),
                 static_cast<unsigned long long>(h.waveform_gaps), h.last_error.c_str());
  FUZZ_CHECK(h.waveform_blocks == blocks, "waveform_blocks != blocks delivered");
  FUZZ_CHECK(h.waveform_torn <= torn, "more torn blocks counted than happened");
}

}  // namespace
}  // namespace vibgate::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  vibgate::fuzz::run({data, size});
  return 0;
}
