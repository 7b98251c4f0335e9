// store_uplink_config_test.cpp — the [storage] and [uplink] sections: defaults, every key, and
// errors that name file, line and key.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "vibgate/daemon/store_uplink_config.hpp"
#include "vibgate/ingest/config.hpp"

namespace {

using vibgate::daemon::parse_store_uplink_config;

std::string error_of(const std::string& text) {
  try {
    parse_store_uplink_config(text, "/etc/vibgate/vibgate.toml", "/var/lib/vibgate");
  } catch (const vibgate::ingest::ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(StoreUplinkConfig, DefaultsWithoutSections) {
  auto c = parse_store_uplink_config("[[bus]]\nname = \"x\"\n", "f.toml", "/var/lib/vibgate");
  EXPECT_EQ(c.store.path, "/var/lib/vibgate/vibgate.db");
  EXPECT_EQ(c.store.durability, vibgate::storage::Durability::balanced);
  EXPECT_EQ(c.store.quota_bytes, 256ull << 20);
  EXPECT_TRUE(c.uplink_enabled);
  EXPECT_EQ(c.uplink.host, "127.0.0.1");
  EXPECT_EQ(c.uplink.port, 1883);
  EXPECT_EQ(c.uplink.profile, vibgate::uplink::Profile::sparkplug);
  EXPECT_EQ(c.uplink.state_file, "/var/lib/vibgate/uplink.state");
  EXPECT_FALSE(c.uplink.tls.enabled);
}

TEST(StoreUplinkConfig, EveryKey) {
  auto c = parse_store_uplink_config(R"(
[storage]
path = "/data/gw.db"
durability = "full"
commit_interval_ms = 100
commit_rows = 500
quota_mb = 64
hard_cap_mb = 80
move_aside_bad_database = true
max_queued_rows = 50000

[uplink]
enabled = true
host = "10.0.0.5"
port = 8883
client_id = "gw-7"
mqtt = "5"
keepalive_s = 20
connect_timeout_s = 5
reconnect_min_ms = 250
reconnect_max_ms = 60000
credentials_file = "/etc/vibgate/mqtt.cred"
profile = "json"
group_id = "plant1"
edge_node_id = "line3"
primary_host_id = "scada"
json_prefix = "factory"
state_file = "up.state"
batch = 128
max_inflight = 1024
backlog_msgs_per_s = 500
backlog_bytes_per_s = 100000

[uplink.tls]
ca_file = "/etc/vibgate/ca.pem"
cert_file = "/etc/vibgate/gw.pem"
key_file = "/etc/vibgate/gw.key"
verify = true
)",
                                     "f.toml", "/var/lib/vibgate");
  EXPECT_EQ(c.store.path, "/data/gw.db");
  EXPECT_EQ(c.store.durability, vibgate::storage::Durability::full);
  EXPECT_EQ(c.store.commit_interval.count(), 100);
  EXPECT_EQ(c.store.commit_rows, 500u);
  EXPECT_EQ(c.store.quota_bytes, 64ull << 20);
  EXPECT_EQ(c.store.hard_cap_bytes, 80ull << 20);
  EXPECT_TRUE(c.store.move_aside_bad_database);
  EXPECT_EQ(c.store.max_queued_rows, 50000u);
  EXPECT_EQ(c.uplink.host, "10.0.0.5");
  EXPECT_EQ(c.uplink.port, 8883);
  EXPECT_EQ(c.uplink.client_id, "gw-7");
  EXPECT_EQ(c.uplink.version, vibgate::uplink::MqttVersion::v5);
  EXPECT_EQ(c.uplink.keepalive.count(), 20);
  EXPECT_EQ(c.uplink.connect_timeout.count(), 5);
  EXPECT_EQ(c.uplink.reconnect_min.count(), 250);
  EXPECT_EQ(c.uplink.reconnect_max.count(), 60000);
  EXPECT_EQ(c.uplink.credentials_file, "/etc/vibgate/mqtt.cred");
  EXPECT_EQ(c.uplink.profile, vibgate::uplink::Profile::json);
  EXPECT_EQ(c.uplink.group_id, "plant1");
  EXPECT_EQ(c.uplink.edge_node_id, "line3");
  EXPECT_EQ(c.uplink.primary_host_id, "scada");
  EXPECT_EQ(c.uplink.json_prefix, "factory");
  EXPECT_EQ(c.uplink.state_file, "/var/lib/vibgate/up.state");
  EXPECT_EQ(c.uplink.batch, 128u);
  EXPECT_EQ(c.uplink.max_inflight, 1024u);
  EXPECT_DOUBLE_EQ(c.uplink.backlog_msgs_per_s, 500);
  EXPECT_DOUBLE_EQ(c.uplink.backlog_bytes_per_s, 100000);
  EXPECT_TRUE(c.uplink.tls.enabled);
  EXPECT_EQ(c.uplink.tls.ca_file, "/etc/vibgate/ca.pem");
  EXPECT_EQ(c.uplink.tls.cert_file, "/etc/vibgate/gw.pem");
  EXPECT_EQ(c.uplink.tls.key_file, "/etc/vibgate/gw.key");
}

// Each mistake: the message names the file, the line of the key and the key.
TEST(StoreUplinkConfig, ErrorsNameFileLineAndKey) {
  struct Case {
    const char* text;
    const char* expected;
  };
  const Case cases[] = {
      {"[storage]\ndurability = \"fast\"\n",
       "/etc/vibgate/vibgate.toml:2: storage.durability: 'fast' is not one of balanced, full"},
      {"[storage]\nquota_mb = 10\nhard_cap_mb = 5\n",
       "/etc/vibgate/vibgate.toml:3: storage.hard_cap_mb: must be 0 or >= quota_mb"},
      {"[storage]\nquta_mb = 10\n", "/etc/vibgate/vibgate.toml:2: storage.quta_mb: unknown key"},
      {"[uplink]\nport = 0\n",
       "/etc/vibgate/vibgate.toml:2: uplink.port: must be within 1…65535 (got 0)"},
      {"[uplink]\nhost = \"\"\n", "/etc/vibgate/vibgate.toml:2: uplink.host: must not be empty"},
      {"[uplink]\nmqtt = \"3\"\n",
       "/etc/vibgate/vibgate.toml:2: uplink.mqtt: '3' is not one of 3.1.1, 5"},
      {"[uplink]\nkeepalive_s = 2\n",
       "/etc/vibgate/vibgate.toml:2: uplink.keepalive_s: must be within 5…65535 (got 2)"},
      {"[uplink]\nbatch = 512\nmax_inflight = 100\n",
       "/etc/vibgate/vibgate.toml:3: uplink.max_inflight: must be >= batch"},
      {"[uplink]\nedge_node_id = \"line/3\"\n",
       "/etc/vibgate/vibgate.toml:2: uplink.edge_node_id: empty or contains / # +"},
      {"[uplink]\n\n[uplink.tls]\nverify = false\n",
       "/etc/vibgate/vibgate.toml:3: uplink.tls.ca_file: is required when TLS is enabled"},
      {"[uplink.tls]\nca_file = \"/ca.pem\"\ncert_file = \"/c.pem\"\n",
       "/etc/vibgate/vibgate.toml:1: uplink.tls.key_file: cert_file and key_file go together"},
      {"[uplink]\nport = \"1883\"\n",
       "/etc/vibgate/vibgate.toml:2: uplink.port: must be an integer"},
      {"[uplink\n", "/etc/vibgate/vibgate.toml:1: "},
  };
  for (const Case& c : cases) {
    std::string err = error_of(c.text);
    EXPECT_EQ(err.rfind(c.expected, 0), 0u) << "text:\n" << c.text << "\ngot: " << err;
  }
}

}  // namespace

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The shipped example parses, and docs/configuration.md shows exactly that file.
TEST(StoreUplinkConfig, ShippedExampleParsesAndIsTheDocumentedOne) {
  const char* src = std::getenv("VIBGATE_SOURCE_DIR");
  ASSERT_NE(src, nullptr) << "VIBGATE_SOURCE_DIR not set";
  std::string toml = read_file(std::string(src) + "/deploy/vibgate.toml");
  ASSERT_FALSE(toml.empty());
  auto c = parse_store_uplink_config(toml, "deploy/vibgate.toml", "/var/lib/vibgate");
  EXPECT_EQ(c.store.path, "/var/lib/vibgate/vibgate.db");
  EXPECT_EQ(c.uplink.edge_node_id, "gateway1");
  std::string doc = read_file(std::string(src) + "/docs/configuration.md");
  EXPECT_NE(doc.find("```toml\n" + toml + "```"), std::string::npos)
      << "docs/configuration.md does not show deploy/vibgate.toml verbatim";
}

}  // namespace
