// mqtt_connection.cpp — libmosquitto driven by Asio readiness waits (see the header).
#include "mqtt_connection.hpp"

#include <mosquitto.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace vibgate::uplink {

namespace asio = boost::asio;

namespace {
void lib_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { mosquitto_lib_init(); });
}

// True when `fd` has data to read right now (used after a bounded read burst: Asio's epoll
// reactor is edge-triggered, so readiness left over from before a wait would not wake it).
bool readable_now(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLERR | POLLHUP)) != 0;
}
}  // namespace

std::string mosquitto_error_text(int rc) {
  if (rc == MOSQ_ERR_ERRNO) return std::strerror(errno);
  return mosquitto_strerror(rc);
}

std::shared_ptr<MqttConnection> MqttConnection::create(asio::io_context& io,
                                                       ConnectionOptions options,
                                                       ConnectionEvents events) {
  return std::shared_ptr<MqttConnection>(
      new MqttConnection(io, std::move(options), std::move(events)));
}

MqttConnection::MqttConnection(asio::io_context& io, ConnectionOptions options,
                               ConnectionEvents events)
    : io_(io),
      options_(std::move(options)),
      events_(std::move(events)),
      socket_(io),
      connect_timer_(io),
      misc_timer_(io) {}

MqttConnection::~MqttConnection() {
  release_socket();
  if (mosq_ != nullptr) mosquitto_destroy(mosq_);
}

void MqttConnection::release_socket() {
  // Our dup: release() deregisters it from the reactor first (close() alone would leave the
  // epoll item alive while libmosquitto's fd keeps the socket open).
  if (socket_.is_open()) ::close(socket_.release());
  connect_timer_.cancel();
  misc_timer_.cancel();
}

void MqttConnection::open() {
  lib_init_once();
  // Clean session: a session is one connection (see the header).
  mosq_ = mosquitto_new(options_.client_id.c_str(), true, this);
  if (mosq_ == nullptr) {
    fail("cannot create MQTT client: " + std::string(std::strerror(errno)));
    return;
  }
  int proto = options_.version == MqttVersion::v5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311;
  mosquitto_int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION, proto);
  // Nagle + delayed ACK would hold a small sync publish ~40 ms behind the DATA before it.
  mosquitto_int_option(mosq_, MOSQ_OPT_TCP_NODELAY, 1);
  int rc =
      mosquitto_int_option(mosq_, MOSQ_OPT_SEND_MAXIMUM,
                           static_cast<int>(std::min<std::size_t>(options_.max_inflight, 65535)));
  if (rc != MOSQ_ERR_SUCCESS) return fail("send maximum: " + mosquitto_error_text(rc));
  mosquitto_connect_callback_set(mosq_, &MqttConnection::on_connect_cb);
  mosquitto_disconnect_callback_set(mosq_, &MqttConnection::on_disconnect_cb);
  mosquitto_publish_v5_callback_set(mosq_, &MqttConnection::on_publish_cb);
  mosquitto_message_callback_set(mosq_, &MqttConnection::on_message_cb);
  mosquitto_log_callback_set(mosq_, &MqttConnection::on_log_cb);

  if (!options_.username.empty()) {
    rc = mosquitto_username_pw_set(mosq_, options_.username.c_str(),
                                   options_.password.empty() ? nullptr : options_.password.c_str());
    if (rc != MOSQ_ERR_SUCCESS) return fail("credentials: " + mosquitto_error_text(rc));
  }
  if (options_.tls.enabled) {
    const char* cert = options_.tls.cert_file.empty() ? nullptr : options_.tls.cert_file.c_str();
    const char* key = options_.tls.key_file.empty() ? nullptr : options_.tls.key_file.c_str();
    rc = mosquitto_tls_set(mosq_, options_.tls.ca_file.c_str(), nullptr, cert, key, nullptr);
    if (rc != MOSQ_ERR_SUCCESS) {
      std::string why = "TLS setup (ca_file ";
      why += options_.tls.ca_file;
      if (cert != nullptr) {
        why += ", cert_file ";
        why += cert;
      }
      why += "): ";
      why += mosquitto_error_text(rc);
      return fail(why);
    }
    mosquitto_tls_insecure_set(mosq_, !options_.tls.verify);
    mosquitto_tls_opts_set(mosq_, options_.tls.verify ? 1 : 0, nullptr, nullptr);
  }
  if (!options_.will_topic.empty()) {
    rc = mosquitto_will_set(mosq_, options_.will_topic.c_str(),
                            static_cast<int>(options_.will_payload.size()),
                            options_.will_payload.data(), options_.will_qos, options_.will_retain);
    if (rc != MOSQ_ERR_SUCCESS) return fail("will: " + mosquitto_error_text(rc));
  }

  rc = mosquitto_connect_async(mosq_, options_.host.c_str(), options_.port,
                               static_cast<int>(options_.keepalive.count()));
  if (rc != MOSQ_ERR_SUCCESS) {
    // On loopback the TCP connect and the TLS handshake can complete inside this call, so a
    // certificate problem surfaces here; OpenSSL's reason came through the log callback.
    std::string why = "connect: " + mosquitto_error_text(rc);
    if (rc == MOSQ_ERR_TLS) why += tls_detail();
    return fail(why);
  }
  int fd = mosquitto_socket(mosq_);
  if (fd < 0) return fail("connect: no socket");
  int own = ::dup(fd);
  if (own < 0) return fail("dup: " + std::string(std::strerror(errno)));
  boost::system::error_code ec;
  socket_.assign(own, ec);
  if (ec) {
    ::close(own);
    return fail("socket: " + ec.message());
  }

  auto self = shared_from_this();
  connect_timer_.expires_after(options_.connect_timeout);
  connect_timer_.async_wait([self](const boost::system::error_code& e) {
    if (e || self->closed_ || self->connected_) return;
    std::string why = "no CONNACK within ";
    why += std::to_string(self->options_.connect_timeout.count());
    why += " s";
    if (!self->last_log_error_.empty()) {
      why += " (";
      why += self->last_log_error_;
      why += ")";
    }
    self->fail(why);
  });
  arm_misc();
  arm_read();
  arm_write();
}

// ": <reason>" for a failed TLS handshake: the certificate verification result when there is
// one (the usual cause: wrong CA, expired certificate, host name mismatch), else OpenSSL's last
// logged error.
std::string MqttConnection::tls_detail() const {
  std::string out;
  auto* ssl = static_cast<SSL*>(mosq_ != nullptr ? mosquitto_ssl_get(mosq_) : nullptr);
  long verify = ssl != nullptr ? SSL_get_verify_result(ssl) : X509_V_OK;
  if (verify != X509_V_OK) {
    out += ": certificate verify failed: ";
    out += X509_verify_cert_error_string(verify);
    out += " (tls.ca_file ";
    out += options_.tls.ca_file;
    out += ")";
  } else if (!last_log_error_.empty()) {
    out += ": ";
    out += last_log_error_;
  } else {
    out += ": TLS handshake failed (check tls.ca_file ";
    out += options_.tls.ca_file;
    out += ", the broker's certificate and its host name)";
  }
  return out;
}

void MqttConnection::arm_read() {
  if (closed_ || read_armed_ || !socket_.is_open()) return;
  read_armed_ = true;
  auto self = shared_from_this();
  socket_.async_wait(asio::posix::stream_descriptor::wait_read,
                     [self](const boost::system::error_code& ec) {
                       self->read_armed_ = false;
                       if (ec || self->closed_) return;
                       self->service(true);
                     });
}

void MqttConnection::arm_write() {
  if (closed_ || write_armed_ || !socket_.is_open() || mosq_ == nullptr) return;
  if (!mosquitto_want_write(mosq_)) return;
  write_armed_ = true;
  auto self = shared_from_this();
  socket_.async_wait(asio::posix::stream_descriptor::wait_write,
                     [self](const boost::system::error_code& ec) {
                       self->write_armed_ = false;
                       if (ec || self->closed_) return;
                       self->service(false);
                     });
}

// Runs libmosquitto's I/O after a readiness event. Reads in bounded bursts (so one busy
// connection cannot starve the loop) and re-checks readiness itself before waiting again.
void MqttConnection::service(bool readable) {
  auto self = shared_from_this();  // callbacks may drop the owner's reference
  int rc = MOSQ_ERR_SUCCESS;
  struct InService {
    bool& flag;
    explicit InService(bool& f) : flag(f) { flag = true; }
    ~InService() { flag = false; }
  } in_service(in_service_);
  for (int burst = 0; burst < 64 && !closed_; ++burst) {
    // loop_read also advances a pending TLS handshake, so call it on write readiness too.
    rc = mosquitto_loop_read(mosq_, 1);
    if (rc != MOSQ_ERR_SUCCESS || closed_) break;
    if (mosquitto_want_write(mosq_)) {
      rc = mosquitto_loop_write(mosq_, 1);
      if (rc != MOSQ_ERR_SUCCESS || closed_) break;
    }
    if (!readable || !readable_now(socket_.native_handle())) break;
  }
  if (closed_) return;
  if (rc != MOSQ_ERR_SUCCESS) {
    std::string why = mosquitto_error_text(rc);
    if (rc == MOSQ_ERR_TLS) why += tls_detail();
    return fail(why);
  }
  if (readable_now(socket_.native_handle())) {
    asio::post(io_, [self] {
      if (!self->closed_) self->service(true);
    });
  }
  arm_read();
  arm_write();
}

void MqttConnection::arm_misc() {
  auto self = shared_from_this();
  misc_timer_.expires_after(std::chrono::milliseconds(500));
  misc_timer_.async_wait([self](const boost::system::error_code& ec) {
    if (ec || self->closed_) return;
    int rc = mosquitto_loop_misc(self->mosq_);  // keepalive: PINGREQ, and gives up on no PINGRESP
    if (self->closed_) return;
    if (rc != MOSQ_ERR_SUCCESS && self->connected_) {
      return self->fail(rc == MOSQ_ERR_NO_CONN ? std::string("keepalive timeout")
                                               : mosquitto_error_text(rc));
    }
    self->arm_write();
    self->arm_misc();
  });
}

int MqttConnection::publish(const std::string& topic, const void* data, std::size_t size, int qos,
                            bool retain, int* mid) {
  if (closed_ || !connected_) return MOSQ_ERR_NO_CONN;
  int local_mid = 0;
  int rc = mosquitto_publish(mosq_, &local_mid, topic.c_str(), static_cast<int>(size), data, qos,
                             retain);
  if (rc == MOSQ_ERR_SUCCESS) {
    if (qos > 0) qos1_mids_.insert(local_mid);
    arm_write();
  }
  if (mid != nullptr) *mid = local_mid;
  return rc;
}

int MqttConnection::subscribe(const std::string& topic, int qos) {
  if (closed_ || !connected_) return MOSQ_ERR_NO_CONN;
  int rc = mosquitto_subscribe(mosq_, nullptr, topic.c_str(), qos);
  if (rc == MOSQ_ERR_SUCCESS) arm_write();
  return rc;
}

void MqttConnection::close(bool graceful) {
  if (closed_) return;
  closed_ = true;
  if (graceful && mosq_ != nullptr && connected_) {
    mosquitto_disconnect(mosq_);  // queues DISCONNECT; flush what the socket takes now
    for (int i = 0; i < 16 && !in_service_ && mosquitto_want_write(mosq_); ++i) {
      if (mosquitto_loop_write(mosq_, 1) != MOSQ_ERR_SUCCESS) break;
    }
  }
  connected_ = false;
  release_socket();
}

void MqttConnection::fail(const std::string& reason) {
  if (closed_) return;
  closed_ = true;
  connected_ = false;
  release_socket();
  auto self = shared_from_this();
  // Posted: the owner may destroy us in on_closed, which must not happen inside libmosquitto.
  asio::post(io_, [self, reason] {
    if (self->events_.on_closed) self->events_.on_closed(reason);
  });
}

void MqttConnection::on_connect_cb(struct mosquitto*, void* obj, int rc) {
  auto* self = static_cast<MqttConnection*>(obj);
  if (self->closed_) return;
  if (rc != 0) {
    std::string why = "broker refused the connection: ";
    why += self->options_.version == MqttVersion::v5 ? mosquitto_reason_string(rc)
                                                     : mosquitto_connack_string(rc);
    self->fail(why);
    return;
  }
  self->connected_ = true;
  self->connect_timer_.cancel();
  if (self->events_.on_connected) self->events_.on_connected();
}

void MqttConnection::on_disconnect_cb(struct mosquitto*, void* obj, int rc) {
  auto* self = static_cast<MqttConnection*>(obj);
  if (self->closed_) return;
  std::string why =
      rc == 0 ? std::string("disconnected") : "connection lost: " + mosquitto_error_text(rc);
  if (rc == MOSQ_ERR_KEEPALIVE) why = "keepalive timeout (no PINGRESP)";
  self->fail(why);
}

void MqttConnection::on_publish_cb(struct mosquitto*, void* obj, int mid, int reason,
                                   const struct mqtt5__property*) {
  auto* self = static_cast<MqttConnection*>(obj);
  if (self->closed_) return;
  if (self->qos1_mids_.erase(mid) == 0) return;  // a QoS 0 packet was written, not a PUBACK
  if (reason >= 0x80) {  // MQTT 5: the broker refused the message (not authorized, quota, ...)
    std::string why = "broker rejected a publish: ";
    why += mosquitto_reason_string(reason);
    self->fail(why);
    return;
  }
  if (self->events_.on_acked) self->events_.on_acked(mid);
}

void MqttConnection::on_message_cb(struct mosquitto*, void* obj,
                                   const struct mosquitto_message* msg) {
  auto* self = static_cast<MqttConnection*>(obj);
  if (self->closed_ || msg == nullptr || msg->topic == nullptr) return;
  if (self->events_.on_message) {
    std::string payload(static_cast<const char*>(msg->payload),
                        static_cast<std::size_t>(msg->payloadlen));
    self->events_.on_message(msg->topic, payload);
  }
}

void MqttConnection::on_log_cb(struct mosquitto*, void* obj, int level, const char* text) {
  auto* self = static_cast<MqttConnection*>(obj);
  if ((level & MOSQ_LOG_ERR) != 0 && text != nullptr) self->last_log_error_ = text;
}

}  // namespace vibgate::uplink
