// feature_options.cpp — parsing of the shared offline-analysis options.
#include "cli/feature_options.hpp"

#include <charconv>
#include <stdexcept>

namespace vibgate::cli {
namespace {

std::vector<double> parse_list(const std::string& opt, const std::string& s, std::size_t expected) {
  std::vector<double> v;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    const std::size_t comma = s.find(',', pos);
    const std::string item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    double d = 0;
    const auto* b = item.data();
    const auto [p, ec] = std::from_chars(b, b + item.size(), d);
    if (ec != std::errc() || p != b + item.size() || item.empty())
      throw std::invalid_argument(opt + ": '" + item + "' is not a number");
    v.push_back(d);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (v.size() != expected)
    throw std::invalid_argument(opt + ": expected " + std::to_string(expected) +
                                " comma-separated numbers, got " + std::to_string(v.size()));
  return v;
}

}  // namespace

void FeatureOptions::add_to(CLI::App& app) {
  app.add_option("--window", window, "Window length in samples (power of two, default 4096)");
  app.add_option("--overlap", overlap, "Window overlap 0…0.9375 (default 0.5)");
  app.add_option("--bands", bands, "Number of log-spaced spectral bands (default 16)");
  app.add_option("--units", units, "Sample units: g (default) or m/s2");
  auto* rpm_opt = app.add_option("--rpm", rpm, "Shaft speed in rpm");
  app.add_option("--shaft-hz", shaft_hz, "Shaft speed in Hz")->excludes(rpm_opt);
  auto* bm = app.add_option("--bearing-multiples", bearing_multiples,
                            "Bearing defect multiples of shaft speed: BPFO,BPFI,BSF,FTF");
  app.add_option("--bearing", bearing_geometry,
                 "Bearing geometry: BALLS,BALL_DIAMETER,PITCH_DIAMETER,CONTACT_ANGLE_DEG")
      ->excludes(bm);
  app.add_option("--env-band", env_band, "Envelope band-pass LO,HI in Hz (default fs/12,fs/4)");
  app.add_option("--velocity-band", velocity_band, "Velocity RMS band LO,HI in Hz (default 10,1000)");
  app.add_option("--machine-group", machine_group, "ISO 10816-3 machine group 1 or 2 (default 2)");
  app.add_option("--mounting", mounting, "ISO 10816-3 mounting: rigid (default) or flexible");
  app.add_option("--harmonics", harmonics, "Defect-frequency harmonics in the envelope (default 3)");
}

bool FeatureOptions::any_set() const {
  return window || overlap || bands || units || rpm || shaft_hz || bearing_multiples ||
         bearing_geometry || env_band || velocity_band || machine_group || mounting || harmonics;
}

analytics::FeatureConfig FeatureOptions::apply(analytics::FeatureConfig c, double fs) const {
  c.sample_rate_hz = fs;
  if (window) c.window_length = *window;
  if (overlap) c.overlap = *overlap;
  if (bands) {
    c.band_count = *bands;
    c.band_edges_hz.clear();
  }
  if (units) {
    auto u = parse_accel_units(*units);
    if (!u) throw std::invalid_argument("--units: '" + *units + "' is not g or m/s2");
    c.units = *u;
  }
  if (rpm) c.shaft_hz = *rpm / 60.0;
  if (shaft_hz) c.shaft_hz = *shaft_hz;
  if (bearing_multiples) {
    auto v = parse_list("--bearing-multiples", *bearing_multiples, 4);
    c.bearing = analytics::DefectMultiples{v[0], v[1], v[2], v[3]};
  }
  if (bearing_geometry) {
    auto v = parse_list("--bearing", *bearing_geometry, 4);
    analytics::BearingGeometry g{static_cast<int>(v[0]), v[1], v[2], v[3]};
    try {
      c.bearing = analytics::defect_multiples(g);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("--bearing: ") + e.what());
    }
  }
  if (env_band) {
    auto v = parse_list("--env-band", *env_band, 2);
    c.envelope_lo_hz = v[0];
    c.envelope_hi_hz = v[1];
  }
  if (velocity_band) {
    auto v = parse_list("--velocity-band", *velocity_band, 2);
    c.velocity_lo_hz = v[0];
    c.velocity_hi_hz = v[1];
  }
  if (machine_group) {
    if (*machine_group != 1 && *machine_group != 2)
      throw std::invalid_argument("--machine-group: must be 1 or 2");
    c.iso_group = static_cast<analytics::IsoGroup>(*machine_group);
  }
  if (mounting) {
    if (*mounting == "rigid") c.iso_mounting = analytics::IsoMounting::rigid;
    else if (*mounting == "flexible") c.iso_mounting = analytics::IsoMounting::flexible;
    else throw std::invalid_argument("--mounting: '" + *mounting + "' is not rigid or flexible");
  }
  if (harmonics) c.defect_harmonics = *harmonics;
  try {
    c.validate();
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("feature configuration: ") + e.what());
  }
  return c;
}

void InputOptions::add_to(CLI::App& app) {
  app.add_option("--rate", rate, "Sample rate in Hz (required for CSV and raw float32 input)");
  app.add_option("--channel", channel, "Use only this channel (0-based); default: every channel");
  app.add_option("--start", start_s, "Start of the part to use, in seconds");
  app.add_option("--end", end_s, "End of the part to use, in seconds");
  app.add_option("--input-format", input_format, "auto (by extension), wav, csv or raw")
      ->check(CLI::IsMember({"auto", "wav", "csv", "raw"}));
}

analytics::ReadOptions InputOptions::read_options() const {
  analytics::ReadOptions o;
  o.format = input_format == "wav"   ? analytics::RecordingFormat::wav
             : input_format == "csv" ? analytics::RecordingFormat::csv
             : input_format == "raw" ? analytics::RecordingFormat::raw_f32
                                     : analytics::RecordingFormat::automatic;
  o.sample_rate_hz = rate;
  o.start_s = start_s;
  o.end_s = end_s;
  o.channel = channel;
  return o;
}

}  // namespace vibgate::cli
