// mqtt_connection.hpp — one MQTT connection (libmosquitto) driven from an Asio loop thread.
//
// A connection object lives for exactly one connection attempt: created, open()ed, and when it
// fails or is lost it reports on_closed once and is dropped; the owner makes a fresh one for the
// next attempt (so libmosquitto never resends QoS 1 messages of an old session behind our back:
// resending is the uplink's job, from the outbox).
//
// libmosquitto runs without its own thread: the socket (a dup of it, owned by Asio) is watched
// for readiness and mosquitto_loop_read / mosquitto_loop_write / mosquitto_loop_misc do the I/O,
// keepalive and TLS handshake steps. Nothing here blocks except name resolution inside
// mosquitto_connect_async when `host` is a name rather than an address (documented limit).
// Internal to uplink/: libmosquitto types stay here.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "vibgate/uplink/uplink.hpp"

struct mosquitto;
struct mosquitto_message;
struct mqtt5__property;

namespace vibgate::uplink {

struct ConnectionOptions {
  std::string host;
  std::uint16_t port = 1883;
  std::string client_id;
  MqttVersion version = MqttVersion::v311;
  std::chrono::seconds keepalive{30};
  std::chrono::seconds connect_timeout{10};
  TlsOptions tls;
  std::string username;  // empty = none
  std::string password;
  std::string will_topic;  // empty = no Will
  std::string will_payload;
  int will_qos = 1;
  bool will_retain = false;
  std::size_t max_inflight = 2048;  // QoS 1 messages libmosquitto keeps in flight
};

struct ConnectionEvents {
  std::function<void()> on_connected;                        // CONNACK accepted
  std::function<void(const std::string& reason)> on_closed;  // once; never after close()
  std::function<void(int mid)> on_acked;                     // PUBACK of a QoS 1 publish
  std::function<void(const std::string& topic, const std::string& payload)> on_message;
};

class MqttConnection : public std::enable_shared_from_this<MqttConnection> {
 public:
  // Loop thread. Does not connect yet.
  static std::shared_ptr<MqttConnection> create(boost::asio::io_context& io,
                                                ConnectionOptions options, ConnectionEvents events);
  ~MqttConnection();

  // Loop thread. Starts the non-blocking connect; failures are reported through on_closed
  // (posted, never from inside this call).
  void open();

  // Loop thread, only after on_connected. Queues a publish and writes what the socket takes.
  // Returns 0 or a libmosquitto error code; `mid` receives the message id.
  int publish(const std::string& topic, const void* data, std::size_t size, int qos, bool retain,
              int* mid);
  int subscribe(const std::string& topic, int qos);

  // Loop thread. graceful: sends DISCONNECT if connected (after what is queued; the broker then
  // drops the Will); otherwise just closes the socket (the broker publishes the Will). No further
  // events are delivered. Safe to call from inside an event handler.
  void close(bool graceful);

 private:
  MqttConnection(boost::asio::io_context& io, ConnectionOptions options, ConnectionEvents events);
  void fail(const std::string& reason);
  void arm_read();
  void arm_write();
  void service(bool readable);
  void arm_misc();
  void release_socket();
  std::string tls_detail() const;
  static void on_connect_cb(struct mosquitto*, void* obj, int rc);
  static void on_disconnect_cb(struct mosquitto*, void* obj, int rc);
  static void on_publish_cb(struct mosquitto*, void* obj, int mid, int reason,
                            const struct mqtt5__property* props);
  static void on_message_cb(struct mosquitto*, void* obj, const struct mosquitto_message* msg);
  static void on_log_cb(struct mosquitto*, void* obj, int level, const char* text);

  boost::asio::io_context& io_;
  ConnectionOptions options_;
  ConnectionEvents events_;
  struct mosquitto* mosq_ = nullptr;
  boost::asio::posix::stream_descriptor socket_;  // a dup() of libmosquitto's socket
  boost::asio::steady_timer connect_timer_;
  boost::asio::steady_timer misc_timer_;
  bool read_armed_ = false;
  bool write_armed_ = false;
  bool connected_ = false;
  bool closed_ = false;                // close() called or failure reported
  bool in_service_ = false;            // inside mosquitto_loop_* (callbacks must not re-enter it)
  std::string last_log_error_;         // libmosquitto's last error-level log line (TLS details)
  std::unordered_set<int> qos1_mids_;  // our QoS 1 publishes awaiting PUBACK: message ids are
                                       // 16-bit and shared with QoS 0 writes, which also call
                                       // on_publish — only these are PUBACKs
};

// Human-readable libmosquitto error ("connection refused", "TLS error", ...).
std::string mosquitto_error_text(int rc);

}  // namespace vibgate::uplink
