// store_uplink_config.cpp — parsing [storage] and [uplink] (see the header).
#include "vibgate/daemon/store_uplink_config.hpp"

#include "vibgate/config/toml_section.hpp"
#include "vibgate/ingest/config.hpp"

namespace vibgate::daemon {

namespace {

using Section = config::TomlSection<ingest::ConfigError>;

using config::join_path;

void parse_storage(Section& s, const std::string& state_dir, storage::StoreOptions& o) {
  o.path = join_path(state_dir, s.get<std::string>("path").value_or("vibgate.db"));
  o.durability = config::choose(
      s, "durability", storage::Durability::balanced,
      {{"balanced", storage::Durability::balanced}, {"full", storage::Durability::full}});
  o.commit_interval = std::chrono::milliseconds(s.integer("commit_interval_ms", 200, 1, 60000));
  o.commit_rows = static_cast<std::size_t>(s.integer("commit_rows", 2000, 1, 1000000));
  const std::int64_t quota_mb = s.integer("quota_mb", 256, 0, 1 << 20);
  o.quota_bytes = static_cast<std::uint64_t>(quota_mb) << 20;
  const std::int64_t hard_mb = s.integer("hard_cap_mb", 0, 0, 1 << 20);
  if (hard_mb != 0 && hard_mb < quota_mb) s.fail("hard_cap_mb", "must be 0 or >= quota_mb");
  o.hard_cap_bytes = static_cast<std::uint64_t>(hard_mb) << 20;
  o.move_aside_bad_database = s.get<bool>("move_aside_bad_database").value_or(false);
  o.max_queued_rows =
      static_cast<std::size_t>(s.integer("max_queued_rows", 200000, 1000, 10000000));
  s.reject_unknown();
}

void parse_tls(Section& s, uplink::TlsOptions& t) {
  t.enabled = s.get<bool>("enabled").value_or(true);
  t.ca_file = s.get<std::string>("ca_file").value_or("");
  t.cert_file = s.get<std::string>("cert_file").value_or("");
  t.key_file = s.get<std::string>("key_file").value_or("");
  t.verify = s.get<bool>("verify").value_or(true);
  if (t.enabled && t.ca_file.empty()) s.fail("ca_file", "is required when TLS is enabled");
  if (t.cert_file.empty() != t.key_file.empty()) {
    s.fail(t.cert_file.empty() ? "cert_file" : "key_file", "cert_file and key_file go together");
  }
  s.reject_unknown();
}

void parse_uplink(Section& s, const std::string& state_dir, StoreUplinkConfig& c) {
  uplink::UplinkConfig& u = c.uplink;
  c.uplink_enabled = s.get<bool>("enabled").value_or(true);
  u.host = s.get<std::string>("host").value_or("127.0.0.1");
  if (u.host.empty()) s.fail("host", "must not be empty");
  u.port = static_cast<std::uint16_t>(s.integer("port", 1883, 1, 65535));
  u.client_id = s.get<std::string>("client_id").value_or("");
  u.version =
      config::choose(s, "mqtt", uplink::MqttVersion::v311,
                     {{"3.1.1", uplink::MqttVersion::v311}, {"5", uplink::MqttVersion::v5}});
  u.keepalive = std::chrono::seconds(s.integer("keepalive_s", 30, 5, 65535));
  u.connect_timeout = std::chrono::seconds(s.integer("connect_timeout_s", 10, 1, 600));
  u.reconnect_min = std::chrono::milliseconds(s.integer("reconnect_min_ms", 500, 10, 600000));
  u.reconnect_max = std::chrono::milliseconds(s.integer("reconnect_max_ms", 30000, 10, 3600000));
  if (u.reconnect_max < u.reconnect_min) s.fail("reconnect_max_ms", "must be >= reconnect_min_ms");
  u.credentials_file = s.get<std::string>("credentials_file").value_or("");
  u.profile =
      config::choose(s, "profile", uplink::Profile::sparkplug,
                     {{"sparkplug", uplink::Profile::sparkplug}, {"json", uplink::Profile::json}});
  u.group_id = s.get<std::string>("group_id").value_or("vibgate");
  u.edge_node_id = s.get<std::string>("edge_node_id").value_or("gateway");
  u.primary_host_id = s.get<std::string>("primary_host_id").value_or("");
  u.json_prefix = s.get<std::string>("json_prefix").value_or("vibgate");
  u.state_file = join_path(state_dir, s.get<std::string>("state_file").value_or("uplink.state"));
  u.batch = static_cast<std::size_t>(s.integer("batch", 256, 1, 65535));
  u.max_inflight = static_cast<std::size_t>(s.integer("max_inflight", 2048, 1, 32768));
  if (u.max_inflight < u.batch) s.fail("max_inflight", "must be >= batch");
  u.backlog_msgs_per_s = s.number("backlog_msgs_per_s", 1000, 0, 1e7);
  u.backlog_bytes_per_s = s.number("backlog_bytes_per_s", 0, 0, 1e10);
  if (const toml::table* tls = s.table("tls")) {
    Section ts(*tls, "uplink.tls", s.source());
    parse_tls(ts, u.tls);
  }
  // Whatever the per-key checks did not cover (names with / # +, ...): one line naming the key.
  std::string problem = uplink::validate(u);
  if (!problem.empty()) {
    std::string key = problem.substr(0, problem.find(':'));
    if (key.rfind("uplink.", 0) == 0) key = key.substr(7);
    std::string rest = problem.substr(problem.find(':') + 1);
    while (!rest.empty() && rest.front() == ' ') rest.erase(0, 1);
    s.fail(s.has(key) ? key : std::string_view{}, rest.empty() ? problem : rest);
  }
  s.reject_unknown();
}

}  // namespace

StoreUplinkConfig parse_store_uplink_config(std::string_view toml_text, const std::string& source,
                                            const std::string& state_dir) {
  const toml::table root = config::parse_document<ingest::ConfigError>(toml_text, source);
  StoreUplinkConfig c;
  Section top(root, "", source);
  if (const toml::table* st = top.table("storage")) {
    Section s(*st, "storage", source);
    parse_storage(s, state_dir, c.store);
  } else {
    toml::table empty;
    Section s(empty, "storage", source);
    parse_storage(s, state_dir, c.store);
  }
  if (const toml::table* ut = top.table("uplink")) {
    Section s(*ut, "uplink", source);
    parse_uplink(s, state_dir, c);
  } else {
    toml::table empty;
    Section s(empty, "uplink", source);
    parse_uplink(s, state_dir, c);
  }
  return c;
}

}  // namespace vibgate::daemon
