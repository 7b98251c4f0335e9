// sim_test.cpp — the plant simulator's pieces without sockets or clocks: configuration errors,
// the register image decoded by the gateway's own tag decoder through --print-gateway-config, the
// waveform block schedule (sequence k+1 at k·n/rate, stalls, wrap-around), determinism against
// MachineSynth and across tick patterns, process values, and serial frames/lines read back from the
// pty with the gateway's FrameDecoder/TextLineDecoder.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <bit>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "machine_source.hpp"
#include "serial_source.hpp"
#include "sim_config.hpp"
#include "unit_image.hpp"
#include "vibgate/analytics/synth.hpp"
#include "vibgate/ingest/config.hpp"
#include "vibgate/ingest/serial_frame.hpp"
#include "vibgate/ingest/tags.hpp"

namespace vibgate::sim {
namespace {

// The runtime objects of one configuration (what sim_main builds), minus network and clock.
struct Rig {
  explicit Rig(SimConfig c) : cfg(std::move(c)), consumers(cfg.machines.size(), 0) {
    processes.reserve(cfg.machines.size());
    for (const auto& m : cfg.machines) processes.emplace_back(m);
    for (const auto& l : cfg.listeners)
      for (const auto& u : l.units)
        units.push_back(std::make_unique<UnitImage>(u, cfg.machines, processes, consumers));
    for (auto& u : units) u->start();
  }
  void advance(double t) {
    for (auto& u : units) {
      u->advance_waveforms(t);
      u->update_tags(t);
    }
  }
  modbus_mapping_t* map(std::size_t unit = 0) { return units.at(unit)->mapping(); }
  std::uint16_t* input(std::uint16_t address, std::size_t unit = 0) {
    return map(unit)->tab_input_registers + (address - map(unit)->start_input_registers);
  }
  std::uint16_t* holding(std::uint16_t address, std::size_t unit = 0) {
    return map(unit)->tab_registers + (address - map(unit)->start_registers);
  }

  SimConfig cfg;
  std::vector<ProcessModel> processes;
  std::vector<std::uint64_t> consumers;
  std::vector<std::unique_ptr<UnitImage>> units;
};

std::string error_of(const std::string& toml) {
  try {
    parse_sim_config(toml, "t.toml");
  } catch (const SimConfigError& e) {
    return e.what();
  }
  return "";
}

const std::string kUnitHead =
    "[[machine]]\nname = \"m\"\nshaft_hz = 25.0\nseed = 9\n[[listener]]\nport = 1502\n[[listener.unit]]\nid = 1\n";
// Lines 1…8 above; the first line after it is line 9.

float reg_float(const std::uint16_t* r) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(r[0]) << 16 | r[1]);
}

std::vector<float> synth(std::uint64_t seed, double rate, std::size_t n, double shaft_hz = 25.0) {
  analytics::MachineModel m;
  m.seed = seed;
  m.sample_rate_hz = rate;
  m.shaft_hz = shaft_hz;
  analytics::MachineSynth s(m);
  std::vector<float> out(n);
  s.generate(out);
  return out;
}

TEST(SimConfig, ErrorsNameFileLineAndKey) {
  EXPECT_EQ(error_of(kUnitHead + "[[listener.unit.tag]]\nname = \"x\"\naddress = 0\ntype = \"flaot32\"\nvalue = 1\n"),
            "t.toml:12: listener[0].unit[0].tag[0].type: 'flaot32' is not one of bool, int16, uint16, int32, "
            "uint32, int64, uint64, float32, float64");
  EXPECT_EQ(error_of(kUnitHead + "[[listener.unit.tag]]\nname = \"x\"\naddress = 0\nvalue = 70000\n"),
            "t.toml:12: listener[0].unit[0].tag[0].value: 70000 (raw 70000) does not fit uint16");
  EXPECT_EQ(error_of(kUnitHead +
                     "[[listener.unit.tag]]\nname = \"a\"\naddress = 0\ntype = \"float64\"\nvalue = 1\n"
                     "[[listener.unit.waveform]]\nname = \"w\"\nregister = \"holding\"\naddress = 3\n"),
            "t.toml:17: listener[0].unit[0].waveform[0].address: 'w' (holding 3…4106) overlaps 'a' (0…3)");
  EXPECT_EQ(error_of(kUnitHead + "[[listener.unit.tag]]\nname = \"x\"\naddress = 0\nmodel = \"sine\"\nvalue = 3\n"),
            "t.toml:13: listener[0].unit[0].tag[0].value: does not apply to model = \"sine\"");
  EXPECT_EQ(error_of("[[machine]]\nname = \"m\"\nsource = \"replay\"\nfile = \"x.wav\"\ndefect = \"outer\"\n"),
            "t.toml:5: machine[0].defect: applies to source = \"synth\" only");
  EXPECT_EQ(error_of(kUnitHead + "tag = [{ name = \"x\", address = 0, value = 1 }]\n"
                                 "[[listener]]\nport = 1502\n[[listener.unit]]\n"
                                 "tag = [{ name = \"x\", address = 0, value = 1 }]\n"),
            "t.toml:11: listener[1].port: 127.0.0.1:1502 is used twice");
  EXPECT_EQ(error_of("[sim]\ntick_ms = 0.5\n"), "t.toml:2: sim.tick_ms: must be within 1…100 (got 0.5)");
  EXPECT_EQ(error_of("[[machine]]\nname = \"m\"\n"),
            "t.toml:1: nothing to serve: no [[listener]], [[serial]] or [fleet] devices");
}

TEST(SimConfig, FleetPortCollisionIsAnError) {
  SimConfig cfg = parse_sim_config(kUnitHead + "tag = [{ name = \"x\", address = 0, value = 1 }]\n", "t.toml");
  cfg.fleet.devices = 3;
  cfg.fleet.base_port = 1500;
  try {
    expand_fleet(cfg, "--base-port");
    FAIL() << "no error";
  } catch (const SimConfigError& e) {
    EXPECT_STREQ(e.what(), "--base-port: port 1502 is already used by a [[listener]]");
  }
  cfg.fleet.base_port = 1503;
  expand_fleet(cfg, "--base-port");
  ASSERT_EQ(cfg.listeners.size(), 4u);
  EXPECT_EQ(cfg.listeners[3].port, 1505);
  EXPECT_EQ(cfg.machines.size(), 4u);
  EXPECT_EQ(cfg.machines[1].name, "device0");
}

// What the simulator encodes, the gateway's own configuration parser and tag decoder read back.
TEST(SimGateway, GatewayDecodesEveryTypeAndOrder) {
  const std::string tags = R"(
tag = [
  { name = "i16", address = 0, type = "int16", value = -1234 },
  { name = "u16", address = 1, type = "uint16", value = 54321 },
  { name = "i32", address = 2, type = "int32", order = "CDAB", value = -123456789 },
  { name = "u32", address = 4, type = "uint32", order = "BADC", value = 3000000000 },
  { name = "i64", address = 6, type = "int64", order = "DCBA", value = -1234567890123 },
  { name = "u64", address = 10, type = "uint64", value = 1234567890123456 },
  { name = "f32", address = 14, type = "float32", order = "DCBA", value = 3.25 },
  { name = "f64", address = 16, type = "float64", order = "CDAB", value = -0.0025 },
  { name = "scaled", address = 20, type = "int16", scale = 0.1, value = 25.3, unit = "degC" },
  { name = "offset", address = 21, type = "uint16", scale = 0.01, offset = 100.0, value = 104.56 },
  { name = "flag", address = 22, type = "bool", value = true },
  { name = "in_f32", register = "input", address = 5, type = "float32", order = "BADC", value = -7.5 },
  { name = "coil", register = "coil", address = 3, value = true },
  { name = "di", register = "discrete", address = 7, value = false },
]
)";
  Rig rig(parse_sim_config(kUnitHead + tags, "t.toml"));
  const auto gw = ingest::parse_ingest_config(gateway_config(rig.cfg), "gw.toml");
  ASSERT_EQ(gw.devices.size(), 1u);
  const auto& dev = gw.devices[0];
  EXPECT_EQ(dev.port, 1502);
  EXPECT_EQ(dev.unit_id, 1);
  const auto& spec = rig.cfg.listeners[0].units[0].tags;
  ASSERT_EQ(dev.tags.size(), spec.size());
  modbus_mapping_t* mp = rig.map();
  for (std::size_t i = 0; i < spec.size(); ++i) {
    const ingest::TagConfig& t = dev.tags[i];
    const std::size_t count = ingest::is_bit(t.reg) ? 1 : ingest::register_count(t.type);
    const ingest::ReadBlock block{t.reg, t.address, static_cast<std::uint16_t>(count), {i}};
    std::span<const std::uint16_t> regs;
    std::span<const std::uint8_t> bits;
    switch (t.reg) {
      case ingest::RegisterType::coil: bits = {mp->tab_bits + (t.address - mp->start_bits), 1}; break;
      case ingest::RegisterType::discrete_input:
        bits = {mp->tab_input_bits + (t.address - mp->start_input_bits), 1};
        break;
      case ingest::RegisterType::holding_register: regs = {rig.holding(t.address), count}; break;
      case ingest::RegisterType::input_register: regs = {rig.input(t.address), count}; break;
    }
    const double got = ingest::decode_tag(t, block, regs, bits);
    EXPECT_NEAR(got, spec[i].value, std::abs(spec[i].scale) / 2 * 1.0001) << spec[i].name;
    if (spec[i].scale == 1.0 && spec[i].offset == 0.0) {
      EXPECT_EQ(got, spec[i].value) << spec[i].name;
    }
  }
  EXPECT_EQ(dev.tags[8].unit, "degC");
}

// deploy/sim-example.toml loads, and the gateway accepts the devices generated from it.
TEST(SimGateway, ExampleConfigurationAndItsGatewayDevices) {
  const char* src = std::getenv("VIBGATE_SOURCE_DIR");
  if (!src) GTEST_SKIP() << "VIBGATE_SOURCE_DIR not set";
  const SimConfig cfg = load_sim_config(std::string(src) + "/deploy/sim-example.toml");
  const auto gw = ingest::parse_ingest_config(gateway_config(cfg), "gw.toml");
  ASSERT_EQ(gw.devices.size(), 2u);
  EXPECT_EQ(gw.devices[0].tags.size(), cfg.listeners[0].units[0].tags.size());
  EXPECT_EQ(gw.devices[0].waveforms.size(), 2u);
  EXPECT_EQ(gw.devices[0].poll_interval_ms, 64u);  // 40 % of 160 ms
}

TEST(SimWaveform, BlocksFollowTheRegisterConvention) {
  Rig rig(parse_sim_config(kUnitHead + "[[listener.unit.waveform]]\nname = \"w\"\naddress = 10\nsamples = 100\n"
                                       "sample_rate_hz = 1000\nscale = 0.001\n",
                           "t.toml"));
  const std::uint16_t* r = rig.input(10);
  EXPECT_EQ(r[0], 1);  // the first block is there from the start
  EXPECT_EQ(r[1], 100);
  EXPECT_EQ(r[2], 0);
  EXPECT_EQ(r[3], 1000);
  EXPECT_EQ(r[4], 0);
  EXPECT_EQ(r[5], 0);
  EXPECT_EQ(reg_float(r + 6), 0.001f);
  rig.advance(0.0999);
  EXPECT_EQ(r[0], 1);
  rig.advance(0.1);  // block k at k·n/rate, sequence k+1
  EXPECT_EQ(r[0], 2);
  rig.advance(0.35);
  EXPECT_EQ(r[0], 4);
  rig.advance(0.35);
  EXPECT_EQ(r[0], 4);
  EXPECT_EQ(rig.units[0]->stats().blocks_published, 4u);
  EXPECT_EQ(rig.units[0]->stats().blocks_skipped, 0u);
  // A stall (> 1 s behind): the missed blocks are skipped, not computed, but counted in the
  // sequence, so the next block published carries the sequence its schedule gives it.
  rig.advance(10.05);
  EXPECT_EQ(r[0], 4);
  rig.advance(10.1);
  EXPECT_EQ(r[0], 102);
  EXPECT_EQ(rig.units[0]->stats().blocks_published + rig.units[0]->stats().blocks_skipped, 102u);
  EXPECT_GT(rig.units[0]->stats().blocks_skipped, 90u);
  // Block 65535 (at 6553.5 s) has sequence 65536, i.e. 0: the counter wraps.
  rig.advance(6553.45);
  rig.advance(6553.5);
  EXPECT_EQ(r[0], 0);
  rig.advance(6553.6);
  EXPECT_EQ(r[0], 1);
}

TEST(SimWaveform, SamplesAreMachineSynthWithTheMachineSeed) {
  Rig rig(parse_sim_config(kUnitHead +
                               "[[listener.unit.waveform]]\nname = \"a\"\naddress = 0\nsamples = 64\n"
                               "sample_rate_hz = 6400\nformat = \"float32\"\n"
                               "[[listener.unit.waveform]]\nname = \"b\"\naddress = 200\nsamples = 64\n"
                               "sample_rate_hz = 6400\nformat = \"float32\"\n"
                               "[[listener.unit.waveform]]\nname = \"q\"\naddress = 400\nsamples = 64\n"
                               "sample_rate_hz = 6400\nscale = 0.0005\n",
                           "t.toml"));
  rig.advance(0.05);  // 320 samples acquired: blocks 0…4 published, sequence 6 holds 320…383
  const std::uint16_t* a = rig.input(0);
  const std::uint16_t* b = rig.input(200);
  const std::uint16_t* q = rig.input(400);
  ASSERT_EQ(a[0], 6);
  const auto ref = synth(9, 6400, 384);
  bool b_differs = false;
  for (std::size_t i = 0; i < 64; ++i) {
    const float want = ref[320 + i];
    EXPECT_EQ(reg_float(a + 8 + 2 * i), want) << i;
    b_differs = b_differs || reg_float(b + 8 + 2 * i) != want;
  }
  EXPECT_TRUE(b_differs) << "a second sensor on the machine must get its own seed";
  // int16: round(x / scale), exactly what the gateway multiplies back.
  const auto ref_q = synth(9 + 2 * 0x9E3779B97F4A7C15ull, 6400, 384);
  for (std::size_t i = 0; i < 64; ++i) {
    const double x = static_cast<double>(static_cast<std::int16_t>(q[8 + i])) * static_cast<double>(0.0005f);
    EXPECT_NEAR(x, ref_q[320 + i], 0.0005 / 2 + 1e-9) << i;
  }
}

TEST(SimWaveform, ImageDoesNotDependOnTickPattern) {
  const std::string toml =
      "[[machine]]\nname = \"m\"\nshaft_hz = 25.0\nseed = 9\nambient_c = 20\nthermal_time_constant_s = 3\n"
      "load_period_s = 0.7\nrun_s = 0.4\nstop_s = 0.2\n"
      "[[listener]]\nport = 1502\n[[listener.unit]]\nid = 1\n"
      "[[listener.unit.waveform]]\nname = \"w\"\naddress = 100\nsamples = 50\nsample_rate_hz = 2000\n"
      "[[listener.unit.tag]]\nname = \"t\"\nregister = \"input\"\naddress = 0\ntype = \"float32\"\n"
      "model = \"temperature\"\n"
      "[[listener.unit.tag]]\nname = \"l\"\nregister = \"input\"\naddress = 2\ntype = \"float64\"\n"
      "model = \"load\"\n";
  Rig fine(parse_sim_config(toml, "t.toml"));
  Rig coarse(parse_sim_config(toml, "t.toml"));
  for (int ms = 1; ms <= 1000; ++ms) fine.advance(ms / 1000.0);
  for (int ms = 37; ms < 1000; ms += 37) coarse.advance(ms / 1000.0);
  coarse.advance(1.0);
  const auto* mf = fine.map();
  const auto* mc = coarse.map();
  ASSERT_EQ(mf->nb_input_registers, mc->nb_input_registers);
  EXPECT_EQ(std::memcmp(mf->tab_input_registers, mc->tab_input_registers,
                        sizeof(std::uint16_t) * static_cast<std::size_t>(mf->nb_input_registers)),
            0);
  EXPECT_EQ(fine.input(100)[0], 41);  // 1 + 1.0 s / 25 ms
}

TEST(SimProcess, RunStopCycleAndTemperature) {
  MachineConfig m;
  m.model.shaft_hz = 20;
  m.run_s = 2;
  m.stop_s = 1;
  m.ambient_c = 10;
  m.temperature_rise_c = 40;
  m.load_percent = 50;
  m.load_swing_percent = 0;
  m.fault_heat_c_per_g = 0;
  m.thermal_time_constant_s = 5;
  ProcessModel p(m), q(m);
  EXPECT_TRUE(p.running(0.5));
  EXPECT_FALSE(p.running(2.5));
  EXPECT_TRUE(p.running(3.1));
  EXPECT_EQ(p.speed_rpm(0.5), 1200);
  EXPECT_EQ(p.speed_rpm(2.5), 0);
  EXPECT_EQ(p.load_percent(0.5), 50);
  EXPECT_EQ(p.load_percent(2.5), 0);
  EXPECT_DOUBLE_EQ(p.temperature_c(0), 30);  // starts at the running steady state
  for (int i = 1; i <= 1000; ++i) p.temperature_c(i * 0.01);
  const double tp = p.temperature_c(10);
  EXPECT_EQ(tp, q.temperature_c(10));  // independent of how often it is asked
  EXPECT_LT(tp, 30);
  EXPECT_GT(tp, 10);
}

// Reads from `fd` until `done()` or 3 s pass; feeds everything to `feed`.
template <typename Feed, typename Done>
void read_pty(int fd, Feed feed, Done done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  std::vector<std::uint8_t> buf(65536);
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n > 0) feed(std::span<const std::uint8_t>(buf.data(), static_cast<std::size_t>(n)));
  }
}

std::string temp_dir() {
  char tmpl[] = "/tmp/vibgate-sim-test-XXXXXX";
  const char* d = ::mkdtemp(tmpl);
  return d ? d : "/tmp";
}

TEST(SimSerial, BinaryFramesDecodeWithTheGatewayDecoder) {
  SimConfig cfg = parse_sim_config(
      "[[machine]]\nname = \"m\"\nshaft_hz = 25.0\nseed = 9\n"
      "[[serial]]\nname = \"s\"\nsample_rate_hz = 2560\nsamples_per_frame = 64\nscale = 0.001\nmachines = [\"m\", \"m\"]\n",
      "t.toml");
  const std::string dir = temp_dir();
  cfg.serials[0].link = dir + "/pty";
  std::vector<ProcessModel> processes{ProcessModel(cfg.machines[0])};
  std::vector<std::uint64_t> consumers(1, 0);
  {
    SerialSource src(cfg.serials[0], cfg.machines, processes, consumers);
    ASSERT_EQ(std::filesystem::read_symlink(dir + "/pty").string(), src.slave_path());
    const int fd = ::open((dir + "/pty").c_str(), O_RDONLY | O_NOCTTY | O_NONBLOCK);
    ASSERT_GE(fd, 0);
    std::vector<std::uint32_t> seqs;
    std::vector<float> ch0, ch1;
    ingest::FrameDecoder dec([&](const ingest::DecodedFrame& f) {
      seqs.push_back(f.sequence);
      EXPECT_EQ(f.sample_rate_hz, 2560u);
      EXPECT_EQ(f.channels.size(), 2u);
      EXPECT_EQ(f.samples_per_channel, 64u);
      ch0.insert(ch0.end(), f.channels[0].begin(), f.channels[0].end());
      ch1.insert(ch1.end(), f.channels[1].begin(), f.channels[1].end());
    });
    src.advance(0.1);  // 256 samples: frames 0…3
    read_pty(fd, [&](std::span<const std::uint8_t> b) { dec.feed(b); }, [&] { return seqs.size() >= 4; });
    ::close(fd);
    ASSERT_EQ(seqs, (std::vector<std::uint32_t>{0, 1, 2, 3}));
    EXPECT_EQ(dec.stats().crc_errors, 0u);
    const auto ref = synth(9, 2560, 256);
    bool differ = false;
    for (std::size_t i = 0; i < 256; ++i) {
      EXPECT_NEAR(ch0[i], ref[i], 0.0005 + 1e-6) << i;
      differ = differ || std::abs(ch1[i] - ref[i]) > 0.002f;
    }
    EXPECT_TRUE(differ) << "channel 1 is a second sensor with its own seed";
    EXPECT_EQ(src.stats().frames, 4u);
  }
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::symlink_status(dir + "/pty"))) << "link removed";
  // A regular file is never replaced by the link.
  { std::ofstream(dir + "/file") << "x"; }
  cfg.serials[0].link = dir + "/file";
  EXPECT_THROW(SerialSource(cfg.serials[0], cfg.machines, processes, consumers), std::runtime_error);
  std::filesystem::remove_all(dir);
}

TEST(SimSerial, TextLinesDecodeWithTheGatewayDecoder) {
  SimConfig cfg = parse_sim_config(
      "[[machine]]\nname = \"m\"\nshaft_hz = 25.0\nseed = 9\n"
      "[[serial]]\nmode = \"text\"\nsample_rate_hz = 1000\nsamples_per_frame = 10\nprecision = 7\n",
      "t.toml");
  std::vector<ProcessModel> processes{ProcessModel(cfg.machines[0])};
  std::vector<std::uint64_t> consumers(1, 0);
  SerialSource src(cfg.serials[0], cfg.machines, processes, consumers);
  const int fd = ::open(src.slave_path().c_str(), O_RDONLY | O_NOCTTY | O_NONBLOCK);
  ASSERT_GE(fd, 0);
  std::vector<float> got;
  ingest::TextLineDecoder dec(1, [&](std::span<const float> v) { got.push_back(v[0]); });
  src.advance(0.05);
  read_pty(fd, [&](std::span<const std::uint8_t> b) { dec.feed(b); }, [&] { return got.size() >= 50; });
  ::close(fd);
  ASSERT_EQ(got.size(), 50u);
  EXPECT_EQ(dec.stats().bad_lines, 0u);
  const auto ref = synth(9, 1000, 50);
  for (std::size_t i = 0; i < 50; ++i) EXPECT_NEAR(got[i], ref[i], 1e-6 * (1 + std::abs(ref[i]))) << i;
}

}  // namespace
}  // namespace vibgate::sim
