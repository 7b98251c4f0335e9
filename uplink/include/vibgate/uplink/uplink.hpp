// vibgate/uplink/uplink.hpp — store-and-forward MQTT uplink (Sparkplug B or JSON profile).
//
// The uplink drains the durable outbox (vibgate::OutboxSource, implemented by storage) to an MQTT
// broker and acknowledges entries back only when the broker provably has them:
//   - json: every record is one QoS 1 publish; an entry is acknowledged on its PUBACK.
//   - sparkplug: BIRTH/DATA are QoS 0 as the specification requires; after each batch of DATA the
//     uplink publishes one QoS 1 message on "vibgate/sync/<group>/<node>"; its PUBACK proves the
//     broker has processed everything sent before it on that connection, and only then is the
//     batch acknowledged. A lost connection before the PUBACK means the batch is sent again.
// Delivery is therefore at least once; every message carries the outbox id ("msg_id") so
// consumers drop duplicates. Order: per asset within a lane, separately for the live stream and
// for the backlog (entries older than the current connection, sent with is_historical /
// "historical": true and rate-limited so live data keeps flowing). Alerts go before results.
//
// Threads: everything runs on the io_context's (single) loop thread: libmosquitto is driven
// through its socket (readiness waits, mosquitto_loop_read/write/misc) and never blocks the loop;
// outbox reads complete on a storage thread and are posted back. stats() may be called from any
// thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "vibgate/common/outbox.hpp"

namespace vibgate::uplink {

enum class Profile : std::uint8_t { sparkplug = 0, json = 1 };
enum class MqttVersion : std::uint8_t { v311 = 0, v5 = 1 };

struct TlsOptions {
  bool enabled = false;
  std::string ca_file;    // PEM bundle the broker certificate must chain to
  std::string cert_file;  // client certificate (optional, with key_file)
  std::string key_file;
  bool verify = true;  // verify the broker certificate and host name; off only for labs
};

struct UplinkConfig {
  std::string host = "127.0.0.1";  // IP literal or name (names are resolved by libmosquitto)
  std::uint16_t port = 1883;
  std::string client_id;  // default "vibgate-<edge_node_id>"
  MqttVersion version = MqttVersion::v311;
  std::chrono::seconds keepalive{30};
  std::chrono::seconds connect_timeout{10};
  std::chrono::milliseconds reconnect_min{500};    // backoff doubles up to reconnect_max,
  std::chrono::milliseconds reconnect_max{30000};  // with ±20 % jitter; reset once connected
  TlsOptions tls;
  std::string credentials_file;  // two lines: user name, password; never logged

  Profile profile = Profile::sparkplug;
  std::string group_id = "vibgate";  // Sparkplug group id
  std::string edge_node_id = "gateway";
  std::string primary_host_id;          // Sparkplug primary host (STATE awareness); empty = none
  std::string json_prefix = "vibgate";  // json topics: <prefix>/<node>/<asset>/<kind>
  std::vector<std::string> assets;      // devices announced (DBIRTH) at every connect
  std::string state_file;               // persists bdSeq and the JSON sequence across restarts
                                        // (empty = memory only)

  std::size_t batch = 256;           // outbox entries per fetch / per Sparkplug sync
  std::size_t max_inflight = 2048;   // messages sent but not yet confirmed
  double backlog_msgs_per_s = 1000;  // cap on backlog drain (0 = unlimited)
  double backlog_bytes_per_s = 0;    // cap on backlog drain in payload bytes (0 = unlimited)
};

struct UplinkStats {
  bool connected = false;      // MQTT session up (CONNACK accepted)
  bool online = false;         // connected and allowed to publish (births sent, primary
                               // host online when configured)
  std::string last_error;      // last connect/connection error, one line
  std::uint64_t connects = 0;  // successful connections
  std::uint64_t connect_failures = 0;
  std::uint64_t messages_sent = 0;     // records published (including resends)
  std::uint64_t bytes_sent = 0;        // payload bytes of those
  std::uint64_t messages_acked = 0;    // records acknowledged to the outbox
  std::uint64_t in_flight = 0;         // records sent, not yet confirmed
  std::uint64_t births = 0;            // NBIRTH + DBIRTH messages
  std::uint64_t rebirth_requests = 0;  // Node Control/Rebirth commands honoured
  std::uint64_t records_rejected = 0;  // records libmosquitto refused as unpublishable (dropped
                                       // from the outbox, logged)
  std::uint32_t bd_seq = 0;            // Sparkplug bdSeq of the current/last connection
  OutboxStats outbox;                  // depth, oldest age, evictions (from the store)
};

// One chunk of a model bundle sent to this node (docs/ota.md "Transport"): Sparkplug NCMD metrics
// Model/Bundle/{Id,Offset,Total,Sha256,Chunk}, or the JSON profile's command topic
// <json_prefix>/<node>/cmd/model_bundle. The uplink only decodes and delivers it; what a bundle is
// and whether it is acceptable is the gateway's business.
struct BundleChunk {
  std::string bundle_id;
  std::uint64_t offset = 0;
  std::uint64_t total = 0;  // size of the whole bundle file
  std::string sha256_hex;   // SHA-256 of the whole bundle file (hex)
  std::string data;         // this chunk's bytes
  std::string error;        // not empty: the command was malformed (one line naming the
                            // problem); the fields above hold what could be read
};

class Uplink {
 public:
  // Reads credentials and TLS files lazily at each connect (errors go to last_error and the
  // log, and the uplink retries with backoff: a missing CA file is not fatal to the daemon).
  // Throws std::invalid_argument for a configuration that can never work (empty host, bad
  // port, json_prefix with wildcards, ...). `outbox` must outlive the Uplink.
  Uplink(boost::asio::io_context& io, UplinkConfig config, OutboxSource& outbox);
  ~Uplink();
  Uplink(const Uplink&) = delete;
  Uplink& operator=(const Uplink&) = delete;

  // Loop thread, before start(). `handler` runs on the loop thread for every bundle chunk command
  // received (also for malformed ones, with BundleChunk::error set). It must not block: chunks are
  // up to 256 KiB and the handler should hand file I/O to a worker.
  void on_bundle_chunk(std::function<void(BundleChunk chunk)> handler);
  // Loop thread, before start(). `handler` runs on the loop thread each time the uplink comes
  // online (after the births), e.g. to report partial transfers so senders resume.
  void on_online(std::function<void()> handler);

  // Loop thread. Starts connecting; returns at once.
  void start();
  // Loop thread. Publishes the node's death (Sparkplug NDEATH / JSON status "offline"),
  // disconnects cleanly and stops all timers. Unacknowledged entries stay in the outbox.
  void stop();

  // Any thread: a consistent snapshot.
  UplinkStats stats() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// Checks a configuration without connecting; returns "" or a one-line problem.
std::string validate(const UplinkConfig& config);

}  // namespace vibgate::uplink
