// sim_config.cpp — parsing and validation of the simulator's TOML file, quick-mode devices and the
// register map printout (docs/simulator.md).
//
// Every error names the file, the line and the key, e.g. "sim.toml:14: listener[0].unit[0].tag[2].
// type: 'flaot32' is not one of bool, int16, …". Unknown keys are errors, so a typo never silently
// falls back to a default.
#include "sim_config.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "vibgate/config/toml_section.hpp"

#include "vibgate/analytics/recording.hpp"
#include "vibgate/ingest/tags.hpp"

namespace vibgate::sim {

using ingest::RegisterType;
using ingest::ValueType;
using ingest::WordOrder;

std::string_view to_string(ValueModel m) {
  switch (m) {
    case ValueModel::constant: return "constant";
    case ValueModel::sine: return "sine";
    case ValueModel::temperature: return "temperature";
    case ValueModel::speed: return "speed";
    case ValueModel::load: return "load";
    case ValueModel::run: return "run";
    case ValueModel::uptime: return "uptime";
  }
  return "?";
}

std::string_view to_string(analytics::DefectKind d) {
  switch (d) {
    case analytics::DefectKind::none: return "none";
    case analytics::DefectKind::outer_race: return "outer";
    case analytics::DefectKind::inner_race: return "inner";
    case analytics::DefectKind::ball: return "ball";
  }
  return "?";
}

namespace {

using Section = config::TomlSection<SimConfigError>;
using config::choose;

const toml::table& table_at(const toml::array& a, std::size_t i, const std::string& where,
                            const std::string& source) {
  return config::table_at<SimConfigError>(a, i, where, source);
}

analytics::DefectKind parse_defect(Section& s, std::string_view key) {
  using analytics::DefectKind;
  return choose(s, key, DefectKind::none,
                {{"none", DefectKind::none}, {"outer", DefectKind::outer_race},
                 {"inner", DefectKind::inner_race}, {"ball", DefectKind::ball}});
}

// Range of raw values a register type holds (doubles; 64-bit limits rounded inwards).
std::pair<double, double> raw_range(ValueType t) {
  switch (t) {
    case ValueType::boolean: return {0, 1};
    case ValueType::int16: return {-32768, 32767};
    case ValueType::uint16: return {0, 65535};
    case ValueType::int32: return {-2147483648.0, 2147483647.0};
    case ValueType::uint32: return {0, 4294967295.0};
    case ValueType::int64: return {-0x1p63, std::nextafter(0x1p63, 0.0)};
    case ValueType::uint64: return {0, std::nextafter(0x1p64, 0.0)};
    case ValueType::float32: return {-std::numeric_limits<float>::max(), std::numeric_limits<float>::max()};
    case ValueType::float64: return {-std::numeric_limits<double>::max(), std::numeric_limits<double>::max()};
  }
  return {0, 0};
}

// What one unit occupies, to reject overlapping tags/waveforms.
struct Occupied {
  RegisterType reg;
  std::size_t begin, end;  // [begin, end) registers or bits
  std::string name;
};

void claim(Section& s, std::vector<Occupied>& used, Occupied item) {
  for (const auto& u : used) {
    if (u.reg == item.reg && item.begin < u.end && u.begin < item.end) {
      std::ostringstream o;
      o << "'" << item.name << "' (" << to_string(item.reg) << " " << item.begin << "…" << item.end - 1
        << ") overlaps '" << u.name << "' (" << u.begin << "…" << u.end - 1 << ")";
      s.fail("address", o.str());
    }
  }
  used.push_back(std::move(item));
}

std::size_t find_machine(Section& s, std::string_view key, const SimConfig& cfg,
                         const std::string& name) {
  for (std::size_t i = 0; i < cfg.machines.size(); ++i)
    if (cfg.machines[i].name == name) return i;
  s.fail(key, "no [[machine]] named '" + name + "'");
}

// `machine = "name"`: required unless exactly one machine is configured.
std::size_t machine_ref(Section& s, const SimConfig& cfg) {
  if (auto m = s.get<std::string>("machine")) return find_machine(s, "machine", cfg, *m);
  if (cfg.machines.size() == 1) return 0;
  s.fail("machine", cfg.machines.empty() ? "is required, and no [[machine]] is configured"
                                         : "is required when several machines are configured");
}

// A replay machine feeds only consumers at its own rate (no resampling).
void check_rate(Section& s, std::string_view key, const MachineConfig& m, std::uint32_t rate) {
  if (m.kind == MachineKind::replay && static_cast<double>(rate) != m.file_rate_hz) {
    std::ostringstream o;
    o << rate << " Hz does not match machine '" << m.name << "', which replays "
      << m.file << " at " << m.file_rate_hz << " Hz (no resampling)";
    s.fail(key, o.str());
  }
}

MachineConfig parse_machine(Section& s, const SimConfig& cfg, std::size_t index) {
  MachineConfig m;
  m.name = s.required_string("name");
  m.kind = choose(s, "source", MachineKind::synth,
                  {{"synth", MachineKind::synth}, {"replay", MachineKind::replay}});
  if (s.has("shaft_hz") && s.has("rpm")) s.fail("rpm", "give shaft_hz or rpm, not both");
  m.model.shaft_hz = s.number("shaft_hz", 29.95, 0.1, 1000);
  if (s.has("rpm")) m.model.shaft_hz = s.number("rpm", 1797, 6, 60000) / 60.0;

  static constexpr const char* kSynthKeys[] = {
      "defect", "defect_multiple", "fault_start_s", "fault_peak_g", "fault_growth_per_s",
      "noise_g", "resonance_hz", "resonance_bandwidth_hz", "harmonics_g", "seed"};
  static constexpr const char* kReplayKeys[] = {"file", "channel", "file_sample_rate_hz"};
  if (m.kind == MachineKind::synth) {
    for (const char* k : kReplayKeys) s.forbid(k, "applies to source = \"replay\" only");
    auto& mm = m.model;
    mm.defect = parse_defect(s, "defect");
    mm.defect_multiple = s.number("defect_multiple", mm.defect_multiple, 0.1, 100);
    mm.fault_start_s = s.number("fault_start_s", 0, 0, 1e9);
    mm.fault_peak_g = s.number("fault_peak_g", mm.fault_peak_g, 0, 100);
    mm.fault_growth_per_s = s.number("fault_growth_per_s", 0, 0, 100);
    mm.noise_g = s.number("noise_g", mm.noise_g, 0, 100);
    mm.resonance_hz = s.number("resonance_hz", mm.resonance_hz, 1, 500000);
    mm.resonance_bandwidth_hz = s.number("resonance_bandwidth_hz", mm.resonance_bandwidth_hz, 1, 100000);
    if (const auto* h = s.array("harmonics_g")) {
      if (h->size() != 3) s.fail("harmonics_g", "needs exactly 3 amplitudes (1×, 2×, 3×)");
      for (std::size_t i = 0; i < 3; ++i) {
        auto v = h->get(i)->value<double>();
        if (!v || h->get(i)->is_boolean() || !std::isfinite(*v) || *v < 0 || *v > 100)
          s.fail("harmonics_g", "must hold numbers within 0…100");
        mm.harmonic_g[i] = *v;
      }
    }
    mm.seed = static_cast<std::uint64_t>(
        s.integer("seed", static_cast<std::int64_t>(cfg.seed + index), 0,
                  std::numeric_limits<std::int64_t>::max()));
  } else {
    for (const char* k : kSynthKeys) s.forbid(k, "applies to source = \"synth\" only");
    m.file = s.required_string("file");
    m.channel = static_cast<std::size_t>(s.integer("channel", 0, 0, 1023));
    analytics::ReadOptions opt;
    opt.channel = m.channel;
    if (s.has("file_sample_rate_hz")) {
      opt.sample_rate_hz = s.number("file_sample_rate_hz", 0, 1, 1e6);
    } else {
      const std::string ext = std::filesystem::path(m.file).extension().string();
      if (ext == ".csv" || ext == ".f32" || ext == ".raw")
        s.fail("file_sample_rate_hz", "is required for CSV and raw recordings");
    }
    std::filesystem::path p(m.file);
    if (p.is_relative() && s.source() != "(command line)")
      p = std::filesystem::path(s.source()).parent_path() / p;
    auto r = analytics::read_recording(p.string(), opt);
    if (!r) s.fail("file", r.error);
    m.file_rate_hz = r.recording->sample_rate_hz;
    m.samples = std::make_shared<const std::vector<float>>(std::move(r.recording->channels.at(0)));
  }
  m.ambient_c = s.number("ambient_c", m.ambient_c, -100, 1000);
  m.temperature_rise_c = s.number("temperature_rise_c", m.temperature_rise_c, -1000, 1000);
  m.fault_heat_c_per_g = s.number("fault_heat_c_per_g", m.fault_heat_c_per_g, -1000, 1000);
  m.thermal_time_constant_s = s.number("thermal_time_constant_s", m.thermal_time_constant_s, 0, 1e6);
  m.load_percent = s.number("load_percent", m.load_percent, 0, 1000);
  m.load_swing_percent = s.number("load_swing_percent", m.load_swing_percent, 0, 1000);
  m.load_period_s = s.number("load_period_s", m.load_period_s, 0.001, 1e9);
  m.run_s = s.number("run_s", 0, 0, 1e9);
  m.stop_s = s.number("stop_s", 0, 0, 1e9);
  if ((m.run_s > 0) != (m.stop_s > 0)) s.fail(m.run_s > 0 ? "run_s" : "stop_s", "run_s and stop_s go together");
  s.reject_unknown();
  return m;
}

TagSpec parse_tag(Section& s, const SimConfig& cfg) {
  TagSpec t;
  t.name = s.required_string("name");
  t.reg = choose(s, "register", RegisterType::holding_register,
                 {{"coil", RegisterType::coil}, {"discrete", RegisterType::discrete_input},
                  {"input", RegisterType::input_register}, {"holding", RegisterType::holding_register}});
  t.address = static_cast<std::uint16_t>(s.required_integer("address", 0, 65535));
  const bool bit = ingest::is_bit(t.reg);
  t.type = choose(s, "type", bit ? ValueType::boolean : ValueType::uint16,
                  {{"bool", ValueType::boolean}, {"int16", ValueType::int16}, {"uint16", ValueType::uint16},
                   {"int32", ValueType::int32}, {"uint32", ValueType::uint32}, {"int64", ValueType::int64},
                   {"uint64", ValueType::uint64}, {"float32", ValueType::float32}, {"float64", ValueType::float64}});
  if (bit && t.type != ValueType::boolean) s.fail("type", "coils and discrete inputs are bool");
  if (!bit && t.address + ingest::register_count(t.type) > 65536)
    s.fail("address", "value runs past register 65535");
  t.order = choose(s, "order", WordOrder::ABCD,
                   {{"ABCD", WordOrder::ABCD}, {"CDAB", WordOrder::CDAB}, {"BADC", WordOrder::BADC},
                    {"DCBA", WordOrder::DCBA}});
  t.scale = s.get<double>("scale").value_or(1.0);
  t.offset = s.get<double>("offset").value_or(0.0);
  if (t.scale == 0) s.fail("scale", "must be non-zero");
  if (bit && (t.scale != 1.0 || t.offset != 0.0)) s.fail(s.has("scale") ? "scale" : "offset", "does not apply to bits");
  t.unit = s.get<std::string>("unit").value_or("");

  if (!s.has("model") && !s.has("value")) s.fail("model", "is required (or give a constant value)");
  t.model = choose(s, "model", ValueModel::constant,
                   {{"constant", ValueModel::constant}, {"sine", ValueModel::sine},
                    {"temperature", ValueModel::temperature}, {"speed", ValueModel::speed},
                    {"load", ValueModel::load}, {"run", ValueModel::run}, {"uptime", ValueModel::uptime}});
  const std::string model_name(to_string(t.model));
  const std::string not_here = "does not apply to model = \"" + model_name + "\"";
  if (t.model == ValueModel::constant) {
    if (!s.has("value")) s.fail("value", "is required for model = \"constant\"");
    // `value` may be a number or a boolean (true = 1).
    if (s.is_boolean("value"))
      t.value = *s.get<bool>("value") ? 1.0 : 0.0;
    else
      t.value = *s.get<double>("value");
    const double raw = bit ? t.value : (t.value - t.offset) / t.scale;
    const auto [lo, hi] = raw_range(t.type);
    const bool integral = t.type != ValueType::float32 && t.type != ValueType::float64;
    const double r = integral ? std::round(raw) : raw;
    if (!(r >= lo && r <= hi)) {
      std::ostringstream o;
      o << t.value << " (raw " << raw << ") does not fit " << to_string(t.type);
      s.fail("value", o.str());
    }
  } else {
    s.forbid("value", not_here);
  }
  if (t.model == ValueModel::sine) {
    t.mean = s.number("mean", 0, -1e300, 1e300);
    t.amplitude = s.number("amplitude", 1, -1e300, 1e300);
    t.period_s = s.number("period_s", 10, 0.001, 1e9);
    t.phase_deg = s.number("phase_deg", 0, -1e6, 1e6);
  } else {
    for (const char* k : {"mean", "amplitude", "period_s", "phase_deg"}) s.forbid(k, not_here);
  }
  const bool derived = t.model == ValueModel::temperature || t.model == ValueModel::speed ||
                       t.model == ValueModel::load || t.model == ValueModel::run;
  if (derived) {
    t.machine = machine_ref(s, cfg);
  } else {
    s.forbid("machine", not_here);
  }
  s.reject_unknown();
  return t;
}

WaveformSpec parse_waveform(Section& s, const SimConfig& cfg) {
  WaveformSpec w;
  w.name = s.required_string("name");
  w.reg = choose(s, "register", RegisterType::input_register,
                 {{"input", RegisterType::input_register}, {"holding", RegisterType::holding_register}});
  w.address = static_cast<std::uint16_t>(s.required_integer("address", 0, 65535 - 8));
  w.samples = static_cast<std::uint32_t>(s.integer("samples", 4096, 1, 8192));
  w.format = choose(s, "format", WaveFormat::int16,
                    {{"int16", WaveFormat::int16}, {"float32", WaveFormat::float32}});
  if (w.format == WaveFormat::int16) {
    w.scale = static_cast<float>(s.number("scale", 0.0001, 1e-30, 1e30));
  } else {
    w.scale = 1.0f;
    s.forbid("scale", "applies to format = \"int16\" only (float32 samples are in g)");
  }
  w.machine = machine_ref(s, cfg);
  const MachineConfig& m = cfg.machines[w.machine];
  const double def_rate = m.kind == MachineKind::replay ? m.file_rate_hz : 25600.0;
  w.sample_rate_hz = static_cast<std::uint32_t>(
      s.integer("sample_rate_hz", static_cast<std::int64_t>(std::llround(def_rate)), 1, 1000000));
  check_rate(s, s.has("sample_rate_hz") ? "sample_rate_hz" : "machine", m, w.sample_rate_hz);
  if (w.address + w.register_count() > 65536)
    s.fail("address", "block of " + std::to_string(w.register_count()) + " registers runs past 65535");
  s.reject_unknown();
  return w;
}

SerialSpec parse_serial(Section& s, const SimConfig& cfg, std::size_t index) {
  SerialSpec c;
  c.name = s.get<std::string>("name").value_or("serial" + std::to_string(index));
  c.mode = choose(s, "mode", SerialMode::binary, {{"binary", SerialMode::binary}, {"text", SerialMode::text}});
  c.samples_per_frame = static_cast<std::uint32_t>(s.integer("samples_per_frame", 256, 1, 65535));
  if (c.mode == SerialMode::binary) {
    c.format = choose(s, "format", ingest::SampleFormat::int16,
                      {{"int16", ingest::SampleFormat::int16}, {"float32", ingest::SampleFormat::float32}});
    c.scale = static_cast<float>(
        s.number("scale", c.format == ingest::SampleFormat::int16 ? 0.0001 : 1.0, 1e-30, 1e30));
    s.forbid("precision", "applies to mode = \"text\" only");
  } else {
    for (const char* k : {"format", "scale"}) s.forbid(k, "applies to mode = \"binary\" only");
    c.precision = static_cast<int>(s.integer("precision", 6, 1, 9));
  }
  if (const auto* ms = s.array("machines")) {
    if (ms->empty() || ms->size() > ingest::kFrameMaxChannels) s.fail("machines", "needs 1…16 machine names (one per channel)");
    for (const auto& n : *ms) {
      auto v = n.value_exact<std::string>();
      if (!v) s.fail("machines", "must hold machine names");
      c.machines.push_back(find_machine(s, "machines", cfg, *v));
    }
  } else if (cfg.machines.size() == 1) {
    c.machines.push_back(0);
  } else {
    s.fail("machines", "is required (one machine name per channel)");
  }
  std::int64_t def_rate = 25600;
  for (std::size_t m : c.machines)
    if (cfg.machines[m].kind == MachineKind::replay) def_rate = std::llround(cfg.machines[m].file_rate_hz);
  c.sample_rate_hz = static_cast<std::uint32_t>(s.integer("sample_rate_hz", def_rate, 1, 1000000));
  for (std::size_t m : c.machines)
    check_rate(s, s.has("sample_rate_hz") ? "sample_rate_hz" : "machines", cfg.machines[m], c.sample_rate_hz);
  const std::size_t payload = c.machines.size() * c.samples_per_frame * ingest::sample_bytes(c.format);
  if (c.mode == SerialMode::binary && payload > ingest::kFrameMaxPayloadBytes)
    s.fail("samples_per_frame", "frame payload of " + std::to_string(payload) + " bytes exceeds 65536");
  c.link = s.get<std::string>("link").value_or("");
  s.reject_unknown();
  return c;
}

void check_address(Section& s, std::string_view key, const std::string& address) {
  unsigned char buf[16];
  if (inet_pton(AF_INET, address.c_str(), buf) != 1 && inet_pton(AF_INET6, address.c_str(), buf) != 1)
    s.fail(key, "'" + address + "' is not a numeric IPv4/IPv6 address");
}

void parse_fleet(Section& s, SimConfig& cfg) {
  FleetSpec& f = cfg.fleet;
  f.devices = static_cast<std::size_t>(s.integer("devices", 0, 0, 10000));
  f.address = s.get<std::string>("address").value_or(f.address);
  check_address(s, "address", f.address);
  f.base_port = static_cast<std::uint16_t>(s.integer("base_port", f.base_port, 0, 65535));
  f.samples = static_cast<std::uint32_t>(s.integer("samples", f.samples, 1, 8192));
  f.sample_rate_hz = static_cast<std::uint32_t>(s.integer("sample_rate_hz", f.sample_rate_hz, 1, 1000000));
  f.defect = parse_defect(s, "defect");
  f.fault_start_s = s.number("fault_start_s", 0, 0, 1e9);
  s.reject_unknown();
}

}  // namespace

SimConfig parse_sim_config(std::string_view text, const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    throw SimConfigError(source + ":" + std::to_string(e.source().begin.line) + ": " +
                         std::string(e.description()));
  }
  SimConfig cfg;
  cfg.source = source;
  Section top(root, "", source);

  if (const auto* t = top.table("sim")) {
    Section s(*t, "sim", source);
    cfg.seed = static_cast<std::uint64_t>(s.integer("seed", 1, 0, std::numeric_limits<std::int64_t>::max() / 2));
    cfg.tick_ms = s.number("tick_ms", cfg.tick_ms, 1, 100);
    cfg.tag_update_ms = s.number("tag_update_ms", cfg.tag_update_ms, 10, 60000);
    s.reject_unknown();
  }
  if (const auto* machines = top.array("machine")) {
    for (std::size_t i = 0; i < machines->size(); ++i) {
      const std::string where = "machine[" + std::to_string(i) + "]";
      Section s(table_at(*machines, i, where, source), where, source);
      MachineConfig m = parse_machine(s, cfg, i);
      for (const auto& other : cfg.machines)
        if (other.name == m.name) s.fail("name", "'" + m.name + "' is used twice");
      cfg.machines.push_back(std::move(m));
    }
  }
  if (const auto* listeners = top.array("listener")) {
    for (std::size_t i = 0; i < listeners->size(); ++i) {
      const std::string where = "listener[" + std::to_string(i) + "]";
      Section s(table_at(*listeners, i, where, source), where, source);
      ListenerSpec l;
      l.address = s.get<std::string>("address").value_or(l.address);
      check_address(s, "address", l.address);
      l.port = static_cast<std::uint16_t>(s.integer("port", 1502, 0, 65535));
      for (const auto& other : cfg.listeners)
        if (l.port != 0 && other.port == l.port && other.address == l.address)
          s.fail("port", l.address + ":" + std::to_string(l.port) + " is used twice");
      const auto* units = s.array("unit");
      if (!units || units->empty()) s.fail("unit", "needs at least one [[listener.unit]]");
      for (std::size_t u = 0; u < units->size(); ++u) {
        const std::string uw = where + ".unit[" + std::to_string(u) + "]";
        Section us(table_at(*units, u, uw, source), uw, source);
        UnitSpec unit;
        unit.id = static_cast<int>(us.integer("id", 1, 0, 255));
        for (const auto& other : l.units)
          if (other.id == unit.id) us.fail("id", "unit " + std::to_string(unit.id) + " is used twice on this listener");
        std::vector<Occupied> occupied;
        std::set<std::string> names;
        if (const auto* tags = us.array("tag")) {
          for (std::size_t k = 0; k < tags->size(); ++k) {
            const std::string tw = uw + ".tag[" + std::to_string(k) + "]";
            Section ts(table_at(*tags, k, tw, source), tw, source);
            TagSpec t = parse_tag(ts, cfg);
            if (!names.insert(t.name).second) ts.fail("name", "'" + t.name + "' is used twice in this unit");
            const std::size_t len = ingest::is_bit(t.reg) ? 1 : ingest::register_count(t.type);
            claim(ts, occupied, {t.reg, t.address, t.address + len, t.name});
            unit.tags.push_back(std::move(t));
          }
        }
        if (const auto* wfs = us.array("waveform")) {
          for (std::size_t k = 0; k < wfs->size(); ++k) {
            const std::string ww = uw + ".waveform[" + std::to_string(k) + "]";
            Section ws(table_at(*wfs, k, ww, source), ww, source);
            WaveformSpec w = parse_waveform(ws, cfg);
            if (!names.insert(w.name).second) ws.fail("name", "'" + w.name + "' is used twice in this unit");
            claim(ws, occupied, {w.reg, w.address, w.address + w.register_count(), w.name});
            unit.waveforms.push_back(std::move(w));
          }
        }
        if (unit.tags.empty() && unit.waveforms.empty())
          us.fail("", "has no [[listener.unit.tag]] and no [[listener.unit.waveform]]");
        us.reject_unknown();
        l.units.push_back(std::move(unit));
      }
      s.reject_unknown();
      cfg.listeners.push_back(std::move(l));
    }
  }
  if (const auto* serials = top.array("serial")) {
    for (std::size_t i = 0; i < serials->size(); ++i) {
      const std::string where = "serial[" + std::to_string(i) + "]";
      Section s(table_at(*serials, i, where, source), where, source);
      SerialSpec c = parse_serial(s, cfg, i);
      for (const auto& other : cfg.serials) {
        if (other.name == c.name) s.fail("name", "'" + c.name + "' is used twice");
        if (!c.link.empty() && other.link == c.link) s.fail("link", "'" + c.link + "' is used twice");
      }
      cfg.serials.push_back(std::move(c));
    }
  }
  if (const auto* t = top.table("fleet")) {
    Section s(*t, "fleet", source);
    parse_fleet(s, cfg);
  }
  top.reject_unknown();
  if (cfg.listeners.empty() && cfg.serials.empty() && cfg.fleet.devices == 0)
    throw SimConfigError(source + ":1: nothing to serve: no [[listener]], [[serial]] or [fleet] devices");
  return cfg;
}

SimConfig load_sim_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw SimConfigError(path + ": cannot open configuration: " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_sim_config(ss.str(), path);
}

// ---- quick mode ----------------------------------------------------------------------------------

namespace {

TagSpec make_tag(std::string name, std::uint16_t address, ValueType type, ValueModel model,
                 std::size_t machine = kNoMachine) {
  TagSpec t;
  t.name = std::move(name);
  t.reg = RegisterType::holding_register;
  t.address = address;
  t.type = type;
  t.model = model;
  t.machine = machine;
  return t;
}

std::string unique_machine_name(const SimConfig& cfg, const std::string& base) {
  auto taken = [&](const std::string& n) {
    return std::any_of(cfg.machines.begin(), cfg.machines.end(),
                       [&](const MachineConfig& m) { return m.name == n; });
  };
  std::string name = base;
  for (int k = 2; taken(name); ++k) name = base + "_" + std::to_string(k);
  return name;
}

}  // namespace

void expand_fleet(SimConfig& cfg, const std::string& what) {
  const FleetSpec& f = cfg.fleet;
  if (f.devices == 0) return;
  // Flags are named as such; [fleet] keys with the file they come from.
  const std::string where = (what.starts_with("--") ? "" : cfg.source + ": ") + what;
  if (f.base_port != 0 && f.base_port + f.devices - 1 > 65535)
    throw SimConfigError(where + ": ports " + std::to_string(f.base_port) + "…" +
                         std::to_string(f.base_port + f.devices - 1) + " pass 65535");
  if (f.base_port != 0) {
    for (const auto& l : cfg.listeners)
      if (l.address == f.address && l.port >= f.base_port && l.port < f.base_port + f.devices)
        throw SimConfigError(where + ": port " + std::to_string(l.port) + " is already used by a [[listener]]");
  }
  for (std::size_t i = 0; i < f.devices; ++i) {
    MachineConfig m;
    m.name = unique_machine_name(cfg, "device" + std::to_string(i));
    m.model.defect = f.defect;
    m.model.fault_start_s = f.fault_start_s;
    m.model.seed = cfg.seed + cfg.machines.size();
    const std::size_t mi = cfg.machines.size();
    cfg.machines.push_back(std::move(m));

    UnitSpec u;
    u.id = 1;
    // Standard register map (docs/simulator.md): 10 holding registers + 1 input waveform.
    u.tags.push_back(make_tag("run_state", 0, ValueType::uint16, ValueModel::run, mi));
    u.tags.push_back(make_tag("speed_rpm", 1, ValueType::uint16, ValueModel::speed, mi));
    u.tags.push_back(make_tag("temperature_c", 2, ValueType::float32, ValueModel::temperature, mi));
    u.tags.push_back(make_tag("load_pct", 4, ValueType::float32, ValueModel::load, mi));
    u.tags.push_back(make_tag("uptime_s", 6, ValueType::uint32, ValueModel::uptime));
    TagSpec pressure = make_tag("pressure_bar", 8, ValueType::uint16, ValueModel::sine);
    pressure.scale = 0.01;
    pressure.mean = 4.0;
    pressure.amplitude = 0.2;
    pressure.period_s = 30;
    u.tags.push_back(pressure);
    TagSpec index = make_tag("device_index", 9, ValueType::uint16, ValueModel::constant);
    index.value = static_cast<double>(i % 65536);
    u.tags.push_back(index);
    WaveformSpec w;
    w.name = "accel";
    w.reg = RegisterType::input_register;
    w.address = 0;
    w.samples = f.samples;
    w.sample_rate_hz = f.sample_rate_hz;
    w.format = WaveFormat::int16;
    w.scale = 0.0001f;
    w.machine = mi;
    u.waveforms.push_back(w);

    ListenerSpec l;
    l.address = f.address;
    l.port = f.base_port == 0 ? 0 : static_cast<std::uint16_t>(f.base_port + i);
    l.units.push_back(std::move(u));
    cfg.listeners.push_back(std::move(l));
  }
}

void add_quick_serial(SimConfig& cfg, SerialMode mode, std::uint32_t rate_hz, std::size_t channels,
                      std::uint32_t samples_per_frame) {
  if (rate_hz < 1 || rate_hz > ingest::kFrameMaxSampleRateHz)
    throw SimConfigError("--serial-rate: must be within 1…1000000 Hz");
  if (channels < 1 || channels > ingest::kFrameMaxChannels)
    throw SimConfigError("--serial-channels: must be within 1…16");
  if (samples_per_frame < 1 || samples_per_frame > 65535)
    throw SimConfigError("--serial-samples: must be within 1…65535");
  SerialSpec c;
  c.mode = mode;
  c.sample_rate_hz = rate_hz;
  c.samples_per_frame = samples_per_frame;
  if (mode == SerialMode::binary && channels * samples_per_frame * 2 > ingest::kFrameMaxPayloadBytes)
    throw SimConfigError("--serial-samples: frame payload exceeds 65536 bytes");
  if (cfg.machines.empty()) {
    MachineConfig m;
    m.name = "serial_machine";
    m.model.seed = cfg.seed;
    cfg.machines.push_back(std::move(m));
  }
  if (cfg.machines[0].kind == MachineKind::replay && cfg.machines[0].file_rate_hz != rate_hz)
    throw SimConfigError("--serial-rate: machine '" + cfg.machines[0].name + "' replays at a different rate");
  c.machines.assign(channels, 0);
  std::size_t k = cfg.serials.size();
  auto taken = [&](const std::string& n) {
    return std::any_of(cfg.serials.begin(), cfg.serials.end(), [&](const SerialSpec& s) { return s.name == n; });
  };
  do c.name = "serial" + std::to_string(k++); while (taken(c.name));
  cfg.serials.push_back(std::move(c));
}

// ---- register map --------------------------------------------------------------------------------

namespace {

std::string describe_model(const TagSpec& t, const SimConfig& cfg) {
  std::ostringstream o;
  switch (t.model) {
    case ValueModel::constant: o << "constant " << t.value; break;
    case ValueModel::sine:
      o << "sine mean " << t.mean << " amplitude " << t.amplitude << " period " << t.period_s << " s";
      break;
    case ValueModel::uptime: o << "uptime (s since start)"; break;
    default: o << to_string(t.model) << " of " << cfg.machines.at(t.machine).name; break;
  }
  if (!t.unit.empty()) o << " " << t.unit;
  if (t.scale != 1.0 || t.offset != 0.0) o << " (value = raw·" << t.scale << " + " << t.offset << ")";
  return o.str();
}

std::string describe_machine(const MachineConfig& m) {
  std::ostringstream o;
  o << m.name << ": ";
  if (m.kind == MachineKind::replay) {
    o << "replay " << m.file << " channel " << m.channel << " (" << m.file_rate_hz << " Hz, "
      << (m.samples ? m.samples->size() : 0) << " samples, looped)";
  } else {
    o << "synth shaft " << m.model.shaft_hz << " Hz, defect " << to_string(m.model.defect);
    if (m.model.defect != analytics::DefectKind::none)
      o << " ×" << m.model.defect_multiple << " from " << m.model.fault_start_s << " s, peak "
        << m.model.fault_peak_g << " g +" << m.model.fault_growth_per_s << " g/s";
    o << ", seed " << m.model.seed;
  }
  return o.str();
}

void row(std::ostringstream& o, std::string_view table, std::size_t addr, std::size_t count,
         std::string_view type, std::string_view order, const std::string& name, const std::string& what) {
  o << "  " << std::left << std::setw(9) << table << std::setw(7) << addr << std::setw(7) << addr + 1
    << std::setw(6) << count << std::setw(9) << type << std::setw(6) << order << std::setw(22) << name
    << what << "\n";
}

}  // namespace

std::string register_map(const SimConfig& cfg) {
  std::ostringstream o;
  o << "# vibgate-sim register map (" << cfg.source << ")\n";
  o << "# addr: 0-based protocol address; ref: 1-based reference (mbpoll -r); count: registers/bits\n";
  for (const auto& l : cfg.listeners) {
    for (const auto& u : l.units) {
      o << "\nmodbus tcp " << l.address << ":" << l.port << " unit " << u.id << "\n";
      o << "  " << std::left << std::setw(9) << "table" << std::setw(7) << "addr" << std::setw(7) << "ref"
        << std::setw(6) << "count" << std::setw(9) << "type" << std::setw(6) << "order" << std::setw(22)
        << "name" << "value\n";
      struct Item {
        RegisterType reg;
        std::size_t addr;
        int kind;  // 0 tag, 1 header, 2 samples
        std::size_t index;
      };
      std::vector<Item> items;
      for (std::size_t i = 0; i < u.tags.size(); ++i) items.push_back({u.tags[i].reg, u.tags[i].address, 0, i});
      for (std::size_t i = 0; i < u.waveforms.size(); ++i) {
        items.push_back({u.waveforms[i].reg, u.waveforms[i].address, 1, i});
        items.push_back({u.waveforms[i].reg, u.waveforms[i].address + 8u, 2, i});
      }
      std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
        return std::tie(a.reg, a.addr) < std::tie(b.reg, b.addr);
      });
      for (const auto& it : items) {
        if (it.kind == 0) {
          const TagSpec& t = u.tags[it.index];
          const bool bit = ingest::is_bit(t.reg);
          row(o, to_string(t.reg), t.address, bit ? 1 : ingest::register_count(t.type), to_string(t.type),
              bit || ingest::register_count(t.type) == 1 ? "-" : to_string(t.order), t.name,
              describe_model(t, cfg));
        } else {
          const WaveformSpec& w = u.waveforms[it.index];
          if (it.kind == 1) {
            std::ostringstream h;
            h << "waveform header: +0 sequence, +1 n=" << w.samples << ", +2..3 rate=" << w.sample_rate_hz
              << " Hz (uint32), +4 format=" << static_cast<int>(w.format) << ", +5 0, +6..7 scale="
              << w.scale << " (float32)";
            row(o, to_string(w.reg), w.address, 8, "header", "ABCD", w.name + ".header", h.str());
          } else {
            std::ostringstream h;
            h << w.samples << " samples " << (w.format == WaveFormat::int16 ? "int16 × scale g" : "float32 g")
              << ", new block every " << static_cast<double>(w.samples) / w.sample_rate_hz * 1000
              << " ms, machine " << cfg.machines.at(w.machine).name;
            row(o, to_string(w.reg), w.address + 8u, w.register_count() - 8,
                w.format == WaveFormat::int16 ? "int16" : "float32", w.format == WaveFormat::int16 ? "-" : "ABCD",
                w.name + ".samples", h.str());
          }
        }
      }
    }
  }
  for (const auto& c : cfg.serials) {
    o << "\nserial " << c.name << ": " << (c.mode == SerialMode::binary ? "binary frames" : "text lines")
      << ", " << c.machines.size() << " channel(s) at " << c.sample_rate_hz << " Hz, "
      << c.samples_per_frame << " samples per " << (c.mode == SerialMode::binary ? "frame" : "burst");
    if (c.mode == SerialMode::binary)
      o << ", " << (c.format == ingest::SampleFormat::int16 ? "int16" : "float32") << " scale " << c.scale;
    if (!c.link.empty()) o << ", link " << c.link;
    o << "\n";
    for (std::size_t ch = 0; ch < c.machines.size(); ++ch)
      o << "  channel " << ch << ": machine " << cfg.machines.at(c.machines[ch]).name << "\n";
  }
  if (!cfg.machines.empty()) {
    o << "\nmachines\n";
    for (const auto& m : cfg.machines) o << "  " << describe_machine(m) << "\n";
  }
  return o.str();
}

namespace {
// A TOML basic string.
std::string toml_string(std::string_view v) {
  std::string q = "\"";
  for (char ch : v) {
    if (ch == '"' || ch == '\\') q += '\\';
    q += ch;
  }
  return q + "\"";
}
}  // namespace

std::string gateway_config(const SimConfig& cfg) {
  std::ostringstream o;
  o << "# Gateway devices polling vibgate-sim (" << cfg.source << "); generated by --print-gateway-config.\n";
  for (const auto& l : cfg.listeners) {
    for (const auto& u : l.units) {
      double poll_ms = 1000;
      for (const auto& w : u.waveforms)
        poll_ms = std::min(poll_ms, 0.4 * 1000.0 * w.samples / w.sample_rate_hz);
      o << "\n[[device]]\nname = \"sim" << l.port << "_" << u.id << "\"\nprotocol = \"tcp\"\nhost = \""
        << (l.address == "0.0.0.0" || l.address == "::" ? "127.0.0.1" : l.address) << "\"\nport = " << l.port
        << "\nunit_id = " << u.id << "\npoll_interval_ms = " << std::max(1L, std::lround(std::floor(poll_ms)))
        << "\n";
      for (const auto& t : u.tags) {
        o << "\n[[device.tag]]\nname = " << toml_string(t.name) << "\nregister = \"" << to_string(t.reg)
          << "\"\naddress = " << t.address << "\n";
        if (!ingest::is_bit(t.reg)) {
          o << "type = \"" << to_string(t.type) << "\"\n";
          if (ingest::register_count(t.type) > 1) o << "order = \"" << to_string(t.order) << "\"\n";
          if (t.scale != 1.0) o << "scale = " << std::setprecision(17) << t.scale << "\n";
          if (t.offset != 0.0) o << "offset = " << std::setprecision(17) << t.offset << "\n";
        }
        if (!t.unit.empty()) o << "unit = " << toml_string(t.unit) << "\n";
      }
      for (const auto& w : u.waveforms)
        o << "\n[[device.waveform]]\nname = " << toml_string(w.name) << "\nregister = \"" << to_string(w.reg)
          << "\"\naddress = " << w.address << "\nunits = \"g\"\n";
    }
  }
  return o.str();
}

}  // namespace vibgate::sim
