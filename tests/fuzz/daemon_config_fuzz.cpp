// daemon_config_fuzz.cpp — libFuzzer target for vibgated's whole configuration parser,
// daemon::parse_daemon_config(): [daemon], [alarm], [modbus_facade], [prometheus], [[asset]] and,
// through the areas' parsers on the same text, the ingest, [storage] and [uplink] sections, plus
// the cross references between them. The input is the configuration text.
//
// Asserted beyond "no crash, no sanitizer report":
//  - the documented example (deploy/vibgate.toml, compiled in) parses (checked once at start);
//  - the only exception is ingest::ConfigError, and its message starts "<source>:";
//  - an accepted configuration passes the validators the daemon relies on at start and reload
//    (validate(AlarmConfig), validate(FacadeConfig) when the facade is enabled and there are
//    assets), has an absolute
//    state_dir, unique asset names, 1..8 channels per asset each delivered by the ingest and owned
//    by one asset, power-of-two windows, and at most facade_map::kMaxAssets assets with the
//    facade enabled; facade and uplink list the assets in configuration order.
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "fuzz_util.hpp"
#include "vibgate/daemon/daemon_config.hpp"

namespace vibgate::fuzz {
namespace {

using namespace vibgate::daemon;

void check_config(const DaemonConfig& c) {
  FUZZ_CHECK(!c.state_dir.empty() && c.state_dir.front() == '/', c.state_dir);
  FUZZ_CHECK(validate(c.alarm).empty(), validate(c.alarm));
  if (c.facade_enabled) {
    FUZZ_CHECK(validate(c.facade).empty(), validate(c.facade));
    FUZZ_CHECK(c.assets.size() <= facade_map::kMaxAssets, "too many assets for the facade");
  }
  FUZZ_CHECK(c.facade.assets.size() == c.assets.size(), "facade asset list");
  FUZZ_CHECK(c.store_uplink.uplink.assets.size() == c.assets.size(), "uplink asset list");
  std::set<std::string> names, channels;
  for (std::size_t i = 0; i < c.assets.size(); ++i) {
    const AssetConfig& a = c.assets[i];
    FUZZ_CHECK(names.insert(a.name).second, "asset name used twice");
    FUZZ_CHECK(c.facade.assets[i] == a.name && c.store_uplink.uplink.assets[i] == a.name,
               "asset order");
    FUZZ_CHECK(!a.channels.empty() && a.channels.size() <= kMaxAssetChannels, "asset channels");
    for (const std::string& ch : a.channels)
      FUZZ_CHECK(channels.insert(ch).second, "channel owned by two assets");
    const std::size_t w = a.features.window_length;
    FUZZ_CHECK(w >= 256 && w <= 65536 && (w & (w - 1)) == 0, "window length");
  }
}

}  // namespace
}  // namespace vibgate::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  try {
    vibgate::fuzz::check_config(
        vibgate::daemon::parse_daemon_config(vibgate::daemon::sample_config(), "vibgate.toml"));
  } catch (const std::exception& e) {
    FUZZ_CHECK(false, e.what());
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  vibgate::daemon::DaemonConfig config;
  try {
    config = vibgate::daemon::parse_daemon_config(text, "fuzz.toml");
  } catch (const vibgate::ingest::ConfigError& e) {
    FUZZ_CHECK(std::string_view(e.what()).starts_with("fuzz.toml:"), e.what());
    return 0;
  }
  vibgate::fuzz::check_config(config);
  return 0;
}
