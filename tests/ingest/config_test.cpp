// config_test.cpp — parsing of the ingest TOML sections (ingest/src/config.cpp): a complete valid
// configuration lands in the expected structs (values and defaults), and every kind of mistake —
// typo'd key, wrong type, out-of-range value, missing key, unknown enum value, duplicate name,
// RTU device on a missing bus, non-bool coil, TOML syntax error — throws a ConfigError reading
// exactly "<file>:<line>: <key path>: <problem>" with the line of the offending key.
#include "vibgate/ingest/config.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace vibgate::ingest {
namespace {

const std::string kFile = "plant/gateway.toml";

// 1-based line of the first line containing `marker` (each test marks the offending line).
std::size_t line_of(const std::string& doc, const std::string& marker) {
  std::istringstream in(doc);
  std::string line;
  for (std::size_t n = 1; std::getline(in, line); ++n)
    if (line.find(marker) != std::string::npos) return n;
  ADD_FAILURE() << "marker '" << marker << "' not in document";
  return 0;
}

std::string error_of(const std::string& doc) {
  try {
    parse_ingest_config(doc, kFile);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

// The message must be exactly "<file>:<line>: <key>: <problem>".
void expect_error(const std::string& doc, const std::string& marker, const std::string& key,
                  const std::string& problem) {
  const std::string want = kFile + ":" + std::to_string(line_of(doc, marker)) + ": " + key + ": " + problem;
  EXPECT_EQ(error_of(doc), want) << doc;
}

// ---- the complete valid configuration ----

const char* const kValid = R"toml(# vibgate configuration (ingest sections and some others)
[gateway]
name = "line 3"      # belongs to another area: ignored here

[storage]
path = "/var/lib/vibgate"

[[bus]]
name = "rs485-a"
port = "/dev/ttyUSB0"
baud = 9600
parity = "N"
data_bits = 8
stop_bits = 2
silence_ms = 5

[[bus]]
name = "rs485-b"
port = "/dev/ttyUSB1"

[[device]]
name = "pump1"
protocol = "tcp"
host = "10.0.0.5"
port = 1502
unit_id = 0
poll_interval_ms = 250
response_timeout_ms = 300
retries = 1
backoff_initial_ms = 500
backoff_max_ms = 8000

  [[device.tag]]
  name = "speed"
  register = "holding"
  address = 100
  type = "float32"
  order = "CDAB"
  scale = 0.5
  offset = -1
  unit = "rpm"

  [[device.tag]]
  name = "running"
  register = "coil"
  address = 3

  [[device.tag]]
  name = "energy"
  register = "input"
  address = 65532
  type = "uint64"
  order = "DCBA"
  scale = 2

  [[device.tag]]
  name = "alarm"
  register = "discrete"
  address = 0
  type = "bool"

  [[device.waveform]]
  name = "de_accel"
  address = 1000
  units = "m/s2"

  [[device.waveform]]
  name = "nde_accel"
  register = "holding"
  address = 65527

[[device]]
name = "fan"
protocol = "rtu"
bus = "rs485-a"
unit_id = 17
tag = [ { name = "temp", address = 0, type = "int16", scale = 0.1, unit = "degC" },
        { name = "status", address = 1, order = "BADC" } ]

[[device]]
name = "blower"
protocol = "rtu"
bus = "rs485-a"
unit_id = 247
  [[device.tag]]
  name = "temp"
  address = 5
  type = "float64"
  order = "BADC"

[[device]]
name = "defaults"
host = "plc.local"
  [[device.tag]]
  name = "x"
  address = 0

[[serial_sensor]]
name = "board1"
port = "/dev/ttyACM0"
baud = 921600
parity = "none"
mode = "text"
sample_rate_hz = 3200
channels = 3
units = "g"
channel_names = ["x", "y", "z"]

[[serial_sensor]]
name = "board2"
port = "/dev/ttyACM1"
units = "m/s2"
)toml";

TEST(ConfigValid, CompleteDocumentParsesIntoTheExpectedStructs) {
  const IngestConfig c = parse_ingest_config(kValid, kFile);

  ASSERT_EQ(c.buses.size(), 2u);
  EXPECT_EQ(c.buses[0].name, "rs485-a");
  EXPECT_EQ(c.buses[0].line.port, "/dev/ttyUSB0");
  EXPECT_EQ(c.buses[0].line.baud, 9600u);
  EXPECT_EQ(c.buses[0].line.parity, Parity::none);
  EXPECT_EQ(c.buses[0].line.data_bits, 8);
  EXPECT_EQ(c.buses[0].line.stop_bits, 2);
  EXPECT_EQ(c.buses[0].silence_ms, 5u);
  // Defaults: 19200 8E1, silence computed from the baud rate.
  EXPECT_EQ(c.buses[1].name, "rs485-b");
  EXPECT_EQ(c.buses[1].line.baud, 19200u);
  EXPECT_EQ(c.buses[1].line.parity, Parity::even);
  EXPECT_EQ(c.buses[1].line.data_bits, 8);
  EXPECT_EQ(c.buses[1].line.stop_bits, 1);
  EXPECT_EQ(c.buses[1].silence_ms, 0u);

  ASSERT_EQ(c.devices.size(), 4u);
  const DeviceConfig& p = c.devices[0];
  EXPECT_EQ(p.name, "pump1");
  EXPECT_EQ(p.protocol, Protocol::tcp);
  EXPECT_EQ(p.host, "10.0.0.5");
  EXPECT_EQ(p.port, 1502);
  EXPECT_EQ(p.bus, "");
  EXPECT_EQ(p.unit_id, 0);
  EXPECT_EQ(p.poll_interval_ms, 250u);
  EXPECT_EQ(p.response_timeout_ms, 300u);
  EXPECT_EQ(p.retries, 1u);
  EXPECT_EQ(p.backoff_initial_ms, 500u);
  EXPECT_EQ(p.backoff_max_ms, 8000u);
  ASSERT_EQ(p.tags.size(), 4u);
  EXPECT_EQ(p.tags[0].name, "speed");
  EXPECT_EQ(p.tags[0].reg, RegisterType::holding_register);
  EXPECT_EQ(p.tags[0].address, 100);
  EXPECT_EQ(p.tags[0].type, ValueType::float32);
  EXPECT_EQ(p.tags[0].order, WordOrder::CDAB);
  EXPECT_EQ(p.tags[0].scale, 0.5);
  EXPECT_EQ(p.tags[0].offset, -1.0);  // an integer is accepted for a float key
  EXPECT_EQ(p.tags[0].unit, "rpm");
  EXPECT_EQ(p.tags[1].name, "running");
  EXPECT_EQ(p.tags[1].reg, RegisterType::coil);
  EXPECT_EQ(p.tags[1].address, 3);
  EXPECT_EQ(p.tags[1].type, ValueType::boolean);  // default for bits
  EXPECT_EQ(p.tags[1].order, WordOrder::ABCD);
  EXPECT_EQ(p.tags[1].scale, 1.0);
  EXPECT_EQ(p.tags[1].offset, 0.0);
  EXPECT_EQ(p.tags[1].unit, "");
  EXPECT_EQ(p.tags[2].name, "energy");
  EXPECT_EQ(p.tags[2].reg, RegisterType::input_register);
  EXPECT_EQ(p.tags[2].address, 65532);  // the last four registers: still in range
  EXPECT_EQ(p.tags[2].type, ValueType::uint64);
  EXPECT_EQ(p.tags[2].order, WordOrder::DCBA);
  EXPECT_EQ(p.tags[2].scale, 2.0);
  EXPECT_EQ(p.tags[3].reg, RegisterType::discrete_input);
  EXPECT_EQ(p.tags[3].type, ValueType::boolean);
  ASSERT_EQ(p.waveforms.size(), 2u);
  EXPECT_EQ(p.waveforms[0].name, "de_accel");
  EXPECT_EQ(p.waveforms[0].reg, RegisterType::input_register);
  EXPECT_EQ(p.waveforms[0].base_address, 1000);
  EXPECT_EQ(p.waveforms[0].units, AccelUnits::m_per_s2);
  EXPECT_EQ(p.waveforms[1].name, "nde_accel");
  EXPECT_EQ(p.waveforms[1].reg, RegisterType::holding_register);
  EXPECT_EQ(p.waveforms[1].base_address, 65527);
  EXPECT_EQ(p.waveforms[1].units, AccelUnits::g);

  const DeviceConfig& f = c.devices[1];
  EXPECT_EQ(f.name, "fan");
  EXPECT_EQ(f.protocol, Protocol::rtu);
  EXPECT_EQ(f.bus, "rs485-a");
  EXPECT_EQ(f.host, "");
  EXPECT_EQ(f.unit_id, 17);
  ASSERT_EQ(f.tags.size(), 2u);  // inline array of tables
  EXPECT_EQ(f.tags[0].name, "temp");
  EXPECT_EQ(f.tags[0].reg, RegisterType::holding_register);
  EXPECT_EQ(f.tags[0].type, ValueType::int16);
  EXPECT_EQ(f.tags[0].scale, 0.1);
  EXPECT_EQ(f.tags[0].unit, "degC");
  EXPECT_EQ(f.tags[1].type, ValueType::uint16);
  EXPECT_EQ(f.tags[1].order, WordOrder::BADC);
  EXPECT_TRUE(f.waveforms.empty());

  // Tag names are per device: "temp" again is fine.
  EXPECT_EQ(c.devices[2].name, "blower");
  EXPECT_EQ(c.devices[2].unit_id, 247);
  EXPECT_EQ(c.devices[2].tags.at(0).name, "temp");
  EXPECT_EQ(c.devices[2].tags.at(0).type, ValueType::float64);

  const DeviceConfig& d = c.devices[3];
  EXPECT_EQ(d.protocol, Protocol::tcp);
  EXPECT_EQ(d.host, "plc.local");
  EXPECT_EQ(d.port, 502);
  EXPECT_EQ(d.unit_id, 1);
  EXPECT_EQ(d.poll_interval_ms, 1000u);
  EXPECT_EQ(d.response_timeout_ms, 500u);
  EXPECT_EQ(d.retries, 2u);
  EXPECT_EQ(d.backoff_initial_ms, 1000u);
  EXPECT_EQ(d.backoff_max_ms, 60000u);
  EXPECT_EQ(d.tags.at(0).reg, RegisterType::holding_register);
  EXPECT_EQ(d.tags.at(0).type, ValueType::uint16);

  ASSERT_EQ(c.serial_sensors.size(), 2u);
  const SerialSensorConfig& s = c.serial_sensors[0];
  EXPECT_EQ(s.name, "board1");
  EXPECT_EQ(s.line.port, "/dev/ttyACM0");
  EXPECT_EQ(s.line.baud, 921600u);
  EXPECT_EQ(s.line.parity, Parity::none);
  EXPECT_EQ(s.mode, SerialMode::text);
  EXPECT_EQ(s.sample_rate_hz, 3200.0);
  EXPECT_EQ(s.channels, 3u);
  EXPECT_EQ(s.units, AccelUnits::g);
  EXPECT_EQ(s.channel_names, (std::vector<std::string>{"x", "y", "z"}));
  const SerialSensorConfig& s2 = c.serial_sensors[1];
  EXPECT_EQ(s2.mode, SerialMode::binary);
  EXPECT_EQ(s2.sample_rate_hz, 0.0);
  EXPECT_EQ(s2.channels, 1u);
  EXPECT_EQ(s2.units, AccelUnits::m_per_s2);
  EXPECT_EQ(s2.line.baud, 19200u);
  EXPECT_TRUE(s2.channel_names.empty());
}

TEST(ConfigValid, NoIngestSectionsIsAnEmptyConfiguration) {
  const IngestConfig c = parse_ingest_config("[gateway]\nname = \"x\"\n", kFile);
  EXPECT_TRUE(c.buses.empty());
  EXPECT_TRUE(c.devices.empty());
  EXPECT_TRUE(c.serial_sensors.empty());
  EXPECT_TRUE(parse_ingest_config("", kFile).devices.empty());
}

TEST(ConfigValid, BusMayFollowTheDevicesThatUseIt) {
  const IngestConfig c = parse_ingest_config(R"toml(
[[device]]
name = "d"
protocol = "rtu"
bus = "late"
tag = [{ name = "t", address = 1 }]
[[bus]]
name = "late"
port = "/dev/ttyS1"
)toml", kFile);
  ASSERT_EQ(c.devices.size(), 1u);
  EXPECT_EQ(c.devices[0].bus, "late");
}

TEST(ConfigValid, LoadReadsTheFileAndNamesItInErrors) {
  const auto dir = std::filesystem::temp_directory_path() / ("vibgate_config_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string good = (dir / "good.toml").string();
  const std::string bad = (dir / "bad.toml").string();
  {
    std::ofstream(good) << kValid;
    std::ofstream(bad) << "[[device]]\nname = \"d\"\nhost = \"h\"\nport = 0\n";
  }
  EXPECT_EQ(load_ingest_config(good).devices.size(), 4u);
  try {
    load_ingest_config(bad);
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), bad + ":4: device[0].port: must be within 1…65535 (got 0)");
  }
  const std::string missing = (dir / "missing.toml").string();
  try {
    load_ingest_config(missing);
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), missing + ": cannot open configuration: No such file or directory");
  }
  std::filesystem::remove_all(dir);
}

// ---- mistakes ----

// A small valid document to break in one place: device[0] is TCP with two tags, device[1] RTU.
std::string doc(const std::string& bus_extra, const std::string& dev0_extra, const std::string& tag0_extra,
                const std::string& dev1_extra = "") {
  return "[[bus]]\nname = \"rs485\"\nport = \"/dev/ttyUSB0\"\n" + bus_extra +
         "\n[[device]]\nname = \"pump\"\nhost = \"127.0.0.1\"\n" + dev0_extra +
         "\n  [[device.tag]]\n  name = \"speed\"\n  address = 10\n" + tag0_extra +
         "\n  [[device.tag]]\n  name = \"temp\"\n  address = 11\n" +
         "\n[[device]]\nname = \"fan\"\nprotocol = \"rtu\"\nbus = \"rs485\"\n" + dev1_extra +
         "\n  [[device.tag]]\n  name = \"rpm\"\n  address = 0\n";
}

TEST(ConfigErrors, BaseDocumentIsValid) {
  const IngestConfig c = parse_ingest_config(doc("", "", ""), kFile);
  EXPECT_EQ(c.devices.size(), 2u);
}

TEST(ConfigErrors, UnknownKeyIsATypo) {
  std::string d = doc("", "", "  tpye = \"int16\"\n");
  expect_error(d, "tpye", "device[0].tag[0].tpye", "unknown key");
  d = doc("", "poll_interval = 100\n", "");
  expect_error(d, "poll_interval", "device[0].poll_interval", "unknown key");
  d = doc("baudrate = 9600\n", "", "");
  expect_error(d, "baudrate", "bus[0].baudrate", "unknown key");
  d = doc("", "", "", "unitid = 3\n");
  expect_error(d, "unitid", "device[1].unitid", "unknown key");
  // A misspelled sub-table name is an unknown key at its header line.
  d = doc("", "", "") + "\n  [[device.tags]]\n  name = \"x\"\n  address = 1\n";
  expect_error(d, "[[device.tags]]", "device[1].tags", "unknown key");
  d = "[[serial_sensor]]\nname = \"b\"\nport = \"/dev/ttyACM0\"\nsample_rate = 100\n";
  expect_error(d, "sample_rate", "serial_sensor[0].sample_rate", "unknown key");
  d = doc("", "", "") + "\n  [[device.waveform]]\n  name = \"w\"\n  address = 100\n  channel = 2\n";
  expect_error(d, "channel = 2", "device[1].waveform[0].channel", "unknown key");
}

TEST(ConfigErrors, WrongType) {
  expect_error(doc("", "", "  scale = \"2\"\n"), "scale", "device[0].tag[0].scale", "must be a number");
  expect_error(doc("", "poll_interval_ms = 1.5\n", ""), "poll_interval_ms", "device[0].poll_interval_ms",
               "must be an integer");
  expect_error(doc("", "port = \"502\"\n", ""), "port = \"502\"", "device[0].port", "must be an integer");
  expect_error(doc("", "", "  unit = 5\n"), "unit = 5", "device[0].tag[0].unit", "must be a string");
  expect_error(doc("", "", "  type = 16\n"), "type = 16", "device[0].tag[0].type", "must be a string");
  // The tag's address line itself: `address = 10` is replaced by a string.
  std::string d = doc("", "", "");
  d.replace(d.find("address = 10"), 12, "address = \"10\"");
  expect_error(d, "address = \"10\"", "device[0].tag[0].address", "must be an integer");
  d = "[[serial_sensor]]\nname = \"b\"\nport = \"/dev/ttyACM0\"\nchannels = 2\nchannel_names = [\"x\", 2]\n";
  expect_error(d, "channel_names", "serial_sensor[0].channel_names", "must be strings");
  d = "[[serial_sensor]]\nname = \"b\"\nport = \"/dev/ttyACM0\"\nchannel_names = \"x\"\n";
  expect_error(d, "channel_names", "serial_sensor[0].channel_names", "must be an array");
  // A section that must be an array of tables.
  expect_error("[gateway]\nx = 1\n[device]\nname = \"d\"\n", "[device]", "device", "must be an array");
  expect_error("device = [1, 2]\n", "device = ", "device[0]", "must be a table");
  expect_error("[[device]]\nname = \"d\"\nhost = \"h\"\ntag = [\"speed\"]\n", "tag = [", "device[0].tag[0]",
               "must be a table");
}

TEST(ConfigErrors, OutOfRange) {
  expect_error(doc("", "unit_id = 300\n", ""), "unit_id", "device[0].unit_id", "must be within 0…255 (got 300)");
  expect_error(doc("", "", "", "unit_id = 0\n"), "unit_id", "device[1].unit_id", "must be within 1…247 (got 0)");
  expect_error(doc("", "", "", "unit_id = 248\n"), "unit_id", "device[1].unit_id",
               "must be within 1…247 (got 248)");
  expect_error(doc("", "port = 70000\n", ""), "port = 70000", "device[0].port", "must be within 1…65535 (got 70000)");
  expect_error(doc("", "retries = 11\n", ""), "retries", "device[0].retries", "must be within 0…10 (got 11)");
  expect_error(doc("", "poll_interval_ms = 0\n", ""), "poll_interval_ms", "device[0].poll_interval_ms",
               "must be within 1…86400000 (got 0)");
  expect_error(doc("baud = 100\n", "", ""), "baud", "bus[0].baud", "must be within 300…4000000 (got 100)");
  expect_error(doc("data_bits = 9\n", "", ""), "data_bits", "bus[0].data_bits", "must be within 7…8 (got 9)");
  expect_error(doc("", "backoff_initial_ms = 5000\nbackoff_max_ms = 1000\n", ""), "backoff_max_ms",
               "device[0].backoff_max_ms", "must be >= backoff_initial_ms");
  std::string d = doc("", "", "");
  d.replace(d.find("address = 10"), 12, "address = -1");
  expect_error(d, "address = -1", "device[0].tag[0].address", "must be within 0…65535 (got -1)");
  d = doc("", "", "");
  d.replace(d.find("address = 10"), 12, "address = 65536");
  expect_error(d, "address = 65536", "device[0].tag[0].address", "must be within 0…65535 (got 65536)");
  // A multi-register value must end at register 65535 at the latest.
  d = doc("", "", "");
  d.replace(d.find("address = 10"), 12, "address = 65533\n  type = \"float64\"");
  expect_error(d, "address = 65533", "device[0].tag[0].address", "value runs past register 65535");
  expect_error(doc("", "", "  scale = 0\n"), "scale = 0", "device[0].tag[0].scale", "must be a finite, non-zero number");
  expect_error(doc("", "", "  offset = nan\n"), "offset = nan", "device[0].tag[0].offset", "must be finite");
  d = doc("", "", "") + "\n  [[device.waveform]]\n  name = \"w\"\n  address = 65528\n";
  expect_error(d, "address = 65528", "device[1].waveform[0].address", "must be within 0…65527 (got 65528)");
  d = "[[serial_sensor]]\nname = \"b\"\nport = \"/dev/ttyACM0\"\nchannels = 17\n";
  expect_error(d, "channels", "serial_sensor[0].channels", "must be within 1…16 (got 17)");
  d = "[[serial_sensor]]\nname = \"b\"\nport = \"/dev/ttyACM0\"\nmode = \"text\"\nsample_rate_hz = 0.5\n";
  expect_error(d, "sample_rate_hz", "serial_sensor[0].sample_rate_hz", "is required in text mode (1…1000000 Hz)");
  d = "[[serial_sensor]]\nname = \"b\"\nport = \"/dev/ttyACM0\"\nchannels = 2\nchannel_names = [\"x\"]\n";
  expect_error(d, "channel_names", "serial_sensor[0].channel_names", "needs one name per channel");
}

TEST(ConfigErrors, MissingRequiredKeyPointsAtTheTable) {
  // An absent key has no line of its own: the [[device.tag]] header of its table is reported.
  std::string d = doc("", "", "");
  d.replace(d.find("  address = 10\n"), 15, "");
  expect_error(d, "[[device.tag]]", "device[0].tag[0].address", "is required");
}

TEST(ConfigErrors, MissingRequiredKeys) {
  // Reported at the header line of the table that lacks them.
  expect_error("\n[[device]]\nhost = \"h\"\ntag = [{ name = \"t\", address = 1 }]\n", "[[device]]", "device[0].name",
               "is required");
  expect_error("[[device]]\nname = \"d\"\ntag = [{ name = \"t\", address = 1 }]\n", "[[device]]", "device[0].host",
               "is required");
  expect_error("[[bus]]\nname = \"b\"\nport = \"/dev/ttyS0\"\n[[device]]\nname = \"d\"\nprotocol = \"rtu\"\n"
               "tag = [{ name = \"t\", address = 1 }]\n",
               "[[device]]", "device[0].bus", "is required");
  expect_error("[[bus]]\nname = \"b\"\n", "[[bus]]", "bus[0].port", "is required");
  expect_error("[[bus]]\nname = \"\"\nport = \"/dev/ttyS0\"\n", "name = \"\"", "bus[0].name", "is required");
  expect_error("# x\n[[device]]\nname = \"d\"\nhost = \"h\"\n", "[[device]]", "device[0]",
               "has no [[device.tag]] and no [[device.waveform]]");
  expect_error("[[device]]\nname = \"d\"\nhost = \"h\"\n  [[device.waveform]]\n  name = \"w\"\n",
               "[[device.waveform]]", "device[0].waveform[0].address", "is required");
  expect_error("[[serial_sensor]]\nname = \"b\"\nport = \"/dev/ttyACM0\"\nmode = \"text\"\n", "[[serial_sensor]]",
               "serial_sensor[0].sample_rate_hz", "is required in text mode (1…1000000 Hz)");
}

TEST(ConfigErrors, UnknownEnumValue) {
  expect_error(doc("", "", "  type = \"flaot32\"\n"), "flaot32", "device[0].tag[0].type",
               "'flaot32' is not one of bool, int16, uint16, int32, uint32, int64, uint64, float32, float64");
  expect_error(doc("", "", "  order = \"ABDC\"\n"), "ABDC", "device[0].tag[0].order",
               "'ABDC' is not one of ABCD, CDAB, BADC, DCBA");
  expect_error(doc("", "", "  register = \"holdings\"\n"), "holdings", "device[0].tag[0].register",
               "'holdings' is not one of coil, discrete, input, holding");
  expect_error(doc("", "protocol = \"udp\"\n", ""), "udp", "device[0].protocol", "'udp' is not one of tcp, rtu");
  expect_error(doc("parity = \"X\"\n", "", ""), "parity", "bus[0].parity",
               "'X' is not one of N, E, O, none, even, odd");
  std::string d = doc("", "", "") + "\n  [[device.waveform]]\n  name = \"w\"\n  address = 100\n  register = \"coil\"\n";
  expect_error(d, "register = \"coil\"", "device[1].waveform[0].register", "'coil' is not one of input, holding");
  d = doc("", "", "") + "\n  [[device.waveform]]\n  name = \"w\"\n  address = 100\n  units = \"mm/s\"\n";
  expect_error(d, "mm/s", "device[1].waveform[0].units", "'mm/s' is not one of g, m/s2");
  d = "[[serial_sensor]]\nname = \"b\"\nport = \"/dev/ttyACM0\"\nmode = \"csv\"\n";
  expect_error(d, "csv", "serial_sensor[0].mode", "'csv' is not one of binary, text");
}

TEST(ConfigErrors, DuplicateNames) {
  // Two devices with one name: reported at the second one's name.
  std::string d = doc("", "", "", "") + "\n[[device]]\nname = \"pump\" # again\nhost = \"h\"\n"
                                        "tag = [{ name = \"t\", address = 1 }]\n";
  expect_error(d, "# again", "device[2].name", "'pump' is used twice");
  // Buses, devices and serial sensors share one namespace.
  d = doc("", "", "") + "\n[[serial_sensor]]\nname = \"rs485\" # clash\nport = \"/dev/ttyACM0\"\n";
  expect_error(d, "# clash", "serial_sensor[0].name", "'rs485' is used twice");
  d = "[[bus]]\nname = \"a\"\nport = \"/dev/ttyS0\"\n[[bus]]\nname = \"a\" # twice\nport = \"/dev/ttyS1\"\n";
  expect_error(d, "# twice", "bus[1].name", "'a' is used twice");
  // Tag names within one device (tags and waveforms share them).
  d = doc("", "", "");
  d.replace(d.find("name = \"temp\""), 13, "name = \"speed\" # dup");
  expect_error(d, "# dup", "device[0].tag[1].name", "'speed' is used twice in this device");
  d = doc("", "", "") + "\n  [[device.waveform]]\n  name = \"rpm\" # wave\n  address = 100\n";
  expect_error(d, "# wave", "device[1].waveform[0].name", "'rpm' is used twice in this device");
}

TEST(ConfigErrors, RtuDeviceOnAMissingBus) {
  std::string d = doc("", "", "");
  d.replace(d.find("bus = \"rs485\""), 13, "bus = \"rs458\"");
  expect_error(d, "bus = \"rs458\"", "device[1].bus", "no [[bus]] named 'rs458'");
  // RTU devices without any bus at all.
  expect_error("[[device]]\nname = \"d\"\nprotocol = \"rtu\"\nbus = \"x\"\ntag = [{ name = \"t\", address = 1 }]\n",
               "bus = \"x\"", "device[0].bus", "no [[bus]] named 'x'");
}

TEST(ConfigErrors, KeysOfTheOtherProtocol) {
  expect_error(doc("", "bus = \"rs485\"\n", ""), "bus = \"rs485\"", "device[0].bus",
               "only RTU devices sit on a bus");
  expect_error(doc("", "", "", "host = \"10.0.0.1\"\n"), "10.0.0.1", "device[1].host",
               "RTU devices are reached through their bus");
  expect_error(doc("", "", "", "port = 502\n"), "port = 502", "device[1].port",
               "RTU devices are reached through their bus");
}

TEST(ConfigErrors, CoilOrDiscreteWithNonBoolType) {
  expect_error(doc("", "", "  register = \"coil\"\n  type = \"uint16\"\n"), "type = \"uint16\"",
               "device[0].tag[0].type", "coils and discrete inputs are bool");
  expect_error(doc("", "", "  register = \"discrete\"\n  type = \"float32\"\n"), "type = \"float32\"",
               "device[0].tag[0].type", "coils and discrete inputs are bool");
}

TEST(ConfigErrors, TomlSyntaxError) {
  // "<file>:<line>: <what toml++ says>" at the broken line.
  const std::string d = "[[bus]]\nname = \"a\"\nport = \"/dev/ttyS0\n[[device]]\n";
  const std::string msg = error_of(d);
  EXPECT_EQ(msg.rfind(kFile + ":3: ", 0), 0u) << msg;
  EXPECT_GT(msg.size(), (kFile + ":3: ").size() + 5) << msg;
  const std::string d2 = "[[device]]\nname = \"d\"\nhost = \"h\"\nretries = = 2\n";
  const std::string msg2 = error_of(d2);
  EXPECT_EQ(msg2.rfind(kFile + ":4: ", 0), 0u) << msg2;
  const std::string d3 = "[[device]]\nname = \"d\"\nname = \"e\"\n";  // redefinition
  const std::string msg3 = error_of(d3);
  EXPECT_EQ(msg3.rfind(kFile + ":3: ", 0), 0u) << msg3;
}

}  // namespace
}  // namespace vibgate::ingest
