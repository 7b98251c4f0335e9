// vibgate/daemon/store_uplink_config.hpp — the [storage] and [uplink] sections of vibgate.toml.
//
// The daemon's configuration is one TOML file; each area's sections are parsed by its own
// function, errors naming file, line and key ("<file>:<line>: uplink.port: must be within
// 1…65535 (got 0)"), unknown keys rejected. Start-up only: throws ConfigError (the ingest one,
// so the daemon reports every configuration mistake the same way). Keys and defaults are listed
// in docs/configuration.md, whose example is deploy/vibgate.toml.
#pragma once

#include <string>
#include <string_view>

#include "vibgate/storage/store.hpp"
#include "vibgate/uplink/uplink.hpp"

namespace vibgate::daemon {

struct StoreUplinkConfig {
  storage::StoreOptions store;
  bool uplink_enabled = true;  // [uplink] enabled = false: keep everything local (the outbox
                               // still fills and is evicted by quota)
  uplink::UplinkConfig uplink;
};

// Parses the [storage] and [uplink] tables of a whole configuration text (other tables are
// ignored). `state_dir` is where relative/default paths go (storage.path default
// "<state_dir>/vibgate.db", uplink.state_file default "<state_dir>/uplink.state").
// Throws ingest::ConfigError.
StoreUplinkConfig parse_store_uplink_config(std::string_view toml_text, const std::string& source,
                                            const std::string& state_dir);

}  // namespace vibgate::daemon
