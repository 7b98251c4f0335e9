// config.cpp — parsing and validation of the ingest sections of the TOML configuration.
//
// Every error names the file, the line and the key: "<file>:<line>: device[2].tag[0].type:
// 'flaot32' is not one of bool, int16, …". Unknown keys are errors, so a typo never silently
// falls back to a default.
#include "vibgate/ingest/config.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "vibgate/config/toml_section.hpp"

#include "vibgate/ingest/tags.hpp"

namespace vibgate::ingest {
std::string_view to_string(RegisterType r) {
  switch (r) {
    case RegisterType::coil: return "coil";
    case RegisterType::discrete_input: return "discrete";
    case RegisterType::input_register: return "input";
    case RegisterType::holding_register: return "holding";
  }
  return "?";
}

std::string_view to_string(ValueType t) {
  switch (t) {
    case ValueType::boolean: return "bool";
    case ValueType::int16: return "int16";
    case ValueType::uint16: return "uint16";
    case ValueType::int32: return "int32";
    case ValueType::uint32: return "uint32";
    case ValueType::int64: return "int64";
    case ValueType::uint64: return "uint64";
    case ValueType::float32: return "float32";
    case ValueType::float64: return "float64";
  }
  return "?";
}

std::string_view to_string(WordOrder o) {
  switch (o) {
    case WordOrder::ABCD: return "ABCD";
    case WordOrder::CDAB: return "CDAB";
    case WordOrder::BADC: return "BADC";
    case WordOrder::DCBA: return "DCBA";
  }
  return "?";
}

namespace {

using Section = config::TomlSection<ConfigError>;
using config::choose;

const toml::table& table_at(const toml::array& a, std::size_t i, const std::string& where,
                            const std::string& source) {
  return config::table_at<ConfigError>(a, i, where, source);
}

SerialLineConfig parse_line(Section& s) {
  SerialLineConfig l;
  l.port = s.required_string("port");
  l.baud = static_cast<std::uint32_t>(s.integer("baud", 19200, 300, 4000000));
  l.parity = choose(s, "parity", Parity::even, {{"N", Parity::none}, {"E", Parity::even}, {"O", Parity::odd},
                                              {"none", Parity::none}, {"even", Parity::even}, {"odd", Parity::odd}});
  l.data_bits = static_cast<int>(s.integer("data_bits", 8, 7, 8));
  l.stop_bits = static_cast<int>(s.integer("stop_bits", 1, 1, 2));
  return l;
}

AccelUnits parse_units(Section& s) {
  return choose(s, "units", AccelUnits::g, {{"g", AccelUnits::g}, {"m/s2", AccelUnits::m_per_s2}});
}

TagConfig parse_tag(Section& s) {
  TagConfig t;
  t.name = s.required_string("name");
  t.reg = choose(s, "register", RegisterType::holding_register,
                 {{"coil", RegisterType::coil}, {"discrete", RegisterType::discrete_input},
                  {"input", RegisterType::input_register}, {"holding", RegisterType::holding_register}});
  t.address = static_cast<std::uint16_t>(s.required_integer("address", 0, 65535));
  const ValueType def = is_bit(t.reg) ? ValueType::boolean : ValueType::uint16;
  t.type = choose(s, "type", def,
                  {{"bool", ValueType::boolean}, {"int16", ValueType::int16}, {"uint16", ValueType::uint16},
                   {"int32", ValueType::int32}, {"uint32", ValueType::uint32}, {"int64", ValueType::int64},
                   {"uint64", ValueType::uint64}, {"float32", ValueType::float32}, {"float64", ValueType::float64}});
  if (is_bit(t.reg) && t.type != ValueType::boolean) s.fail("type", "coils and discrete inputs are bool");
  if (t.address + register_count(t.type) > 65536) s.fail("address", "value runs past register 65535");
  t.order = choose(s, "order", WordOrder::ABCD,
                   {{"ABCD", WordOrder::ABCD}, {"CDAB", WordOrder::CDAB}, {"BADC", WordOrder::BADC},
                    {"DCBA", WordOrder::DCBA}});
  t.scale = s.get<double>("scale").value_or(1.0);
  t.offset = s.get<double>("offset").value_or(0.0);
  if (!std::isfinite(t.scale) || t.scale == 0) s.fail("scale", "must be a finite, non-zero number");
  if (!std::isfinite(t.offset)) s.fail("offset", "must be finite");
  t.unit = s.get<std::string>("unit").value_or("");
  s.reject_unknown();
  return t;
}

WaveformConfig parse_waveform(Section& s) {
  WaveformConfig w;
  w.name = s.required_string("name");
  w.reg = choose(s, "register", RegisterType::input_register,
                 {{"input", RegisterType::input_register}, {"holding", RegisterType::holding_register}});
  w.base_address = static_cast<std::uint16_t>(s.required_integer("address", 0, 65535 - 8));
  w.units = parse_units(s);
  s.reject_unknown();
  return w;
}

}  // namespace

IngestConfig parse_ingest_config(std::string_view text, const std::string& source) {
  const toml::table root = config::parse_document<ConfigError>(text, source);
  IngestConfig cfg;
  Section top(root, "", source);
  std::set<std::string> names;
  auto unique_name = [&](Section& s, const std::string& name) {
    if (!names.insert(name).second) s.fail("name", "'" + name + "' is used twice");
  };

  if (const auto* buses = top.array("bus")) {
    for (std::size_t i = 0; i < buses->size(); ++i) {
      const std::string where = "bus[" + std::to_string(i) + "]";
      Section s(table_at(*buses, i, where, source), where, source);
      BusConfig b;
      b.name = s.required_string("name");
      unique_name(s, b.name);
      b.line = parse_line(s);
      b.silence_ms = static_cast<std::uint32_t>(s.integer("silence_ms", 0, 0, 10000));
      s.reject_unknown();
      cfg.buses.push_back(std::move(b));
    }
  }
  if (const auto* devices = top.array("device")) {
    for (std::size_t i = 0; i < devices->size(); ++i) {
      const std::string where = "device[" + std::to_string(i) + "]";
      Section s(table_at(*devices, i, where, source), where, source);
      DeviceConfig d;
      d.name = s.required_string("name");
      unique_name(s, d.name);
      d.protocol = choose(s, "protocol", Protocol::tcp, {{"tcp", Protocol::tcp}, {"rtu", Protocol::rtu}});
      if (d.protocol == Protocol::tcp) {
        d.host = s.required_string("host");
        d.port = static_cast<std::uint16_t>(s.integer("port", 502, 1, 65535));
        d.unit_id = static_cast<int>(s.integer("unit_id", 1, 0, 255));
        if (s.get<std::string>("bus")) s.fail("bus", "only RTU devices sit on a bus");
      } else {
        d.bus = s.required_string("bus");
        const bool known = std::any_of(cfg.buses.begin(), cfg.buses.end(),
                                       [&](const BusConfig& b) { return b.name == d.bus; });
        if (!known) s.fail("bus", "no [[bus]] named '" + d.bus + "'");
        d.unit_id = static_cast<int>(s.integer("unit_id", 1, 1, 247));
        if (s.get<std::string>("host")) s.fail("host", "RTU devices are reached through their bus");
        if (s.get<std::int64_t>("port")) s.fail("port", "RTU devices are reached through their bus");
      }
      d.poll_interval_ms = static_cast<std::uint32_t>(s.integer("poll_interval_ms", 1000, 1, 86400000));
      d.response_timeout_ms = static_cast<std::uint32_t>(s.integer("response_timeout_ms", 500, 1, 60000));
      d.retries = static_cast<std::uint32_t>(s.integer("retries", 2, 0, 10));
      d.backoff_initial_ms = static_cast<std::uint32_t>(s.integer("backoff_initial_ms", 1000, 1, 3600000));
      d.backoff_max_ms = static_cast<std::uint32_t>(s.integer("backoff_max_ms", 60000, 1, 3600000));
      if (d.backoff_max_ms < d.backoff_initial_ms) s.fail("backoff_max_ms", "must be >= backoff_initial_ms");
      std::set<std::string> tag_names;
      if (const auto* tags = s.array("tag")) {
        for (std::size_t k = 0; k < tags->size(); ++k) {
          const std::string tw = where + ".tag[" + std::to_string(k) + "]";
          Section ts(table_at(*tags, k, tw, source), tw, source);
          TagConfig t = parse_tag(ts);
          if (!tag_names.insert(t.name).second) ts.fail("name", "'" + t.name + "' is used twice in this device");
          d.tags.push_back(std::move(t));
        }
      }
      if (const auto* wfs = s.array("waveform")) {
        for (std::size_t k = 0; k < wfs->size(); ++k) {
          const std::string ww = where + ".waveform[" + std::to_string(k) + "]";
          Section ws(table_at(*wfs, k, ww, source), ww, source);
          WaveformConfig w = parse_waveform(ws);
          if (!tag_names.insert(w.name).second) ws.fail("name", "'" + w.name + "' is used twice in this device");
          d.waveforms.push_back(std::move(w));
        }
      }
      if (d.tags.empty() && d.waveforms.empty()) s.fail("", "has no [[device.tag]] and no [[device.waveform]]");
      s.reject_unknown();
      cfg.devices.push_back(std::move(d));
    }
  }
  if (const auto* sensors = top.array("serial_sensor")) {
    for (std::size_t i = 0; i < sensors->size(); ++i) {
      const std::string where = "serial_sensor[" + std::to_string(i) + "]";
      Section s(table_at(*sensors, i, where, source), where, source);
      SerialSensorConfig c;
      c.name = s.required_string("name");
      unique_name(s, c.name);
      c.line = parse_line(s);
      c.mode = choose(s, "mode", SerialMode::binary, {{"binary", SerialMode::binary}, {"text", SerialMode::text}});
      c.sample_rate_hz = s.get<double>("sample_rate_hz").value_or(0.0);
      if (c.mode == SerialMode::text && !(c.sample_rate_hz >= 1 && c.sample_rate_hz <= 1e6))
        s.fail("sample_rate_hz", "is required in text mode (1…1000000 Hz)");
      c.channels = static_cast<std::size_t>(s.integer("channels", 1, 1, 16));
      c.units = parse_units(s);
      if (const auto* names_arr = s.array("channel_names")) {
        for (const auto& n : *names_arr) {
          auto v = n.value_exact<std::string>();
          if (!v) s.fail("channel_names", "must be strings");
          c.channel_names.push_back(*v);
        }
        if (c.channel_names.size() != c.channels) s.fail("channel_names", "needs one name per channel");
      }
      s.reject_unknown();
      cfg.serial_sensors.push_back(std::move(c));
    }
  }
  return cfg;
}

IngestConfig load_ingest_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot open configuration: " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_ingest_config(ss.str(), path);
}

}  // namespace vibgate::ingest
