// bare_mosquitto_pub — the baseline vibgate's uplink is compared to: a bare libmosquitto
// publisher with no storage, driven the way vibgate drives libmosquitto (one thread, poll() on
// mosquitto_socket(), mosquitto_loop_read/write/misc; no mosquitto_loop_start).
//
//   bare_mosquitto_pub --port P [--host 127.0.0.1] [--topic vibgate/bench] [--messages N]
//                      [--size BYTES] --mode qos1|qos0-sync [--inflight W] [--batch B]
//                      [--sync-window S] [--timeout SECONDS] [--tcp-nodelay 1|0]
//
//   --mode qos1       QoS 1 publishes, at most W unacknowledged (our own window; libmosquitto's
//                     own in-flight limit is lifted), done when all N PUBACKs arrived.
//   --mode qos0-sync  QoS 0 publishes in batches of B, each batch followed by one QoS 1 publish
//                     on <topic>/sync; a batch counts as delivered when that PUBACK arrives
//                     (vibgate's Sparkplug store-and-forward). At most S sync markers
//                     unacknowledged (default 1: strictly batch by batch).
//   --tcp-nodelay     MOSQ_OPT_TCP_NODELAY (default 1; 0 = libmosquitto's default, Nagle on).
//
// Prints one JSON line: {"mode":..., "messages":N, "seconds":..., "msgs_per_s":..., ...}; timing
// runs from CONNACK to the last acknowledgement. Exit 1 with a message on stderr on failure
// (connection refused or lost, timeout), 2 on bad arguments.
#include <mosquitto.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 1883;
  std::string topic = "vibgate/bench";
  std::string mode = "qos1";
  long messages = 100000;
  long size = 120;
  long inflight = 100;
  long batch = 100;
  long sync_window = 1;
  double timeout_s = 120.0;
  bool tcp_nodelay = true;
};

struct SyncMarker {
  int mid;
  long messages;  // QoS 0 messages this marker acknowledges
};

struct State {
  bool connected = false;
  int connack_rc = -1;
  bool disconnected = false;
  int disconnect_rc = 0;
  bool sync_mode = false;
  long acked = 0;                   // qos1: PUBACKs; qos0-sync: messages of acknowledged batches
  std::deque<SyncMarker> pending;   // qos0-sync: sync markers waiting for their PUBACK
  long stray_acks = 0;              // a sync PUBACK out of order (should stay 0)
};

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr,
               "bare_mosquitto_pub: %s\nusage: bare_mosquitto_pub --port P [--host H] "
               "[--topic T] [--messages N] [--size BYTES] --mode qos1|qos0-sync "
               "[--inflight W] [--batch B] [--sync-window S] [--timeout SECONDS] "
               "[--tcp-nodelay 1|0]\n",
               msg);
  std::exit(2);
}

long parse_long(std::string_view name, std::string_view v, long lo, long hi) {
  long out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc{} || p != v.data() + v.size() || out < lo || out > hi) {
    std::string m = "bad value for " + std::string(name) + ": '" + std::string(v) + "'";
    usage(m.c_str());
  }
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (i + 1 >= argc) usage(("missing value after " + std::string(a)).c_str());
    std::string_view v = argv[++i];
    if (a == "--host") o.host = v;
    else if (a == "--port") o.port = static_cast<int>(parse_long(a, v, 1, 65535));
    else if (a == "--topic") o.topic = v;
    else if (a == "--mode") o.mode = v;
    else if (a == "--messages") o.messages = parse_long(a, v, 1, 1'000'000'000);
    else if (a == "--size") o.size = parse_long(a, v, 0, 64 * 1024 * 1024);
    else if (a == "--inflight") o.inflight = parse_long(a, v, 1, 65535);
    else if (a == "--batch") o.batch = parse_long(a, v, 1, 1'000'000);
    else if (a == "--sync-window") o.sync_window = parse_long(a, v, 1, 1000);
    else if (a == "--timeout") o.timeout_s = static_cast<double>(parse_long(a, v, 1, 86400));
    else if (a == "--tcp-nodelay") o.tcp_nodelay = parse_long(a, v, 0, 1) == 1;
    else usage(("unknown option " + std::string(a)).c_str());
  }
  if (o.mode != "qos1" && o.mode != "qos0-sync") usage("--mode must be qos1 or qos0-sync");
  // message ids wrap at 65535: a pending sync marker's mid must not be reused meanwhile
  if (o.mode == "qos0-sync" && (o.batch + 1) * o.sync_window >= 60000)
    usage("--batch x --sync-window must stay below 60000 (MQTT message ids)");
  return o;
}

void on_connect(mosquitto*, void* ud, int rc) {
  auto* s = static_cast<State*>(ud);
  s->connack_rc = rc;
  s->connected = rc == 0;
}

void on_disconnect(mosquitto*, void* ud, int rc) {
  auto* s = static_cast<State*>(ud);
  s->disconnected = true;
  s->disconnect_rc = rc;
  s->connected = false;
}

// QoS 1: called on PUBACK; QoS 0: called once the packet was written to the socket.
void on_publish(mosquitto*, void* ud, int mid) {
  auto* s = static_cast<State*>(ud);
  if (!s->sync_mode) {
    ++s->acked;
    return;
  }
  if (!s->pending.empty() && s->pending.front().mid == mid) {
    s->acked += s->pending.front().messages;
    s->pending.pop_front();
    return;
  }
  for (auto it = s->pending.begin(); it != s->pending.end(); ++it) {
    if (it->mid == mid) {  // out of order: MQTT brokers ack in order, count it anyway
      ++s->stray_acks;
      s->acked += it->messages;
      s->pending.erase(it);
      return;
    }
  }
  // a QoS 0 message written: nothing to count
}

class Loop {
 public:
  explicit Loop(mosquitto* m) : m_(m) {}

  // One poll() round of at most timeout_ms; false if the connection is gone.
  bool step(int timeout_ms) {
    int fd = mosquitto_socket(m_);
    if (fd < 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (mosquitto_want_write(m_)) p.events |= POLLOUT;
    int n = poll(&p, 1, timeout_ms);
    if (n < 0 && errno != EINTR) return false;
    if (n > 0) {
      if (p.revents & (POLLIN | POLLERR | POLLHUP)) {
        if (mosquitto_loop_read(m_, 1) != MOSQ_ERR_SUCCESS) return false;
      }
      if ((p.revents & POLLOUT) && mosquitto_socket(m_) >= 0) {
        if (mosquitto_loop_write(m_, 1) != MOSQ_ERR_SUCCESS) return false;
      }
    }
    auto now = Clock::now();
    if (now - last_misc_ >= std::chrono::milliseconds(100)) {
      last_misc_ = now;
      if (mosquitto_loop_misc(m_) != MOSQ_ERR_SUCCESS) return false;
    }
    return true;
  }

  // Non-blocking drain: reads what is already there (acks), writes if the socket takes it.
  bool pump() { return step(0); }

 private:
  mosquitto* m_;
  Clock::time_point last_misc_ = Clock::now();
};

int fail(State& s, const char* what, int rc) {
  std::fprintf(stderr, "bare_mosquitto_pub: %s: %s (acked %ld, disconnect rc %d)\n", what,
               mosquitto_strerror(rc), s.acked, s.disconnect_rc);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  mosquitto_lib_init();
  State st;
  st.sync_mode = o.mode == "qos0-sync";
  mosquitto* m = mosquitto_new(nullptr, true, &st);
  if (!m) {
    std::fprintf(stderr, "bare_mosquitto_pub: mosquitto_new failed\n");
    return 1;
  }
  mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  mosquitto_max_inflight_messages_set(m, 0);  // no library limit: our window decides
  // libmosquitto leaves Nagle on by default; with it a small sync publish waits for the ACK of
  // the previous segment (delayed ACK, ~40 ms) and qos0-sync collapses to ~25 batches/s.
  mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, o.tcp_nodelay ? 1 : 0);
  mosquitto_connect_callback_set(m, on_connect);
  mosquitto_disconnect_callback_set(m, on_disconnect);
  mosquitto_publish_callback_set(m, on_publish);

  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(o.timeout_s));
  int rc = mosquitto_connect(m, o.host.c_str(), o.port, 30);
  if (rc != MOSQ_ERR_SUCCESS) return fail(st, "connect", rc);
  Loop loop(m);
  while (!st.connected) {
    if (st.connack_rc > 0 || st.disconnected || Clock::now() > deadline)
      return fail(st, "no successful CONNACK", rc);
    if (!loop.step(100)) return fail(st, "connection lost before CONNACK", MOSQ_ERR_CONN_LOST);
  }

  std::vector<char> payload(static_cast<std::size_t>(o.size), 'x');
  const std::string sync_topic = o.topic + "/sync";
  const int payload_len = static_cast<int>(payload.size());
  long published = 0;  // data messages handed to libmosquitto
  long batches = 0;
  const auto t0 = Clock::now();

  while (st.acked < o.messages) {
    if (st.disconnected) return fail(st, "connection lost", MOSQ_ERR_CONN_LOST);
    if (Clock::now() > deadline) return fail(st, "timeout", MOSQ_ERR_UNKNOWN);
    bool sent = false;
    if (!st.sync_mode) {
      while (published < o.messages && published - st.acked < o.inflight) {
        rc = mosquitto_publish(m, nullptr, o.topic.c_str(), payload_len, payload.data(), 1, false);
        if (rc != MOSQ_ERR_SUCCESS) return fail(st, "publish", rc);
        ++published;
        sent = true;
        if ((published & 63) == 0 && !loop.pump()) return fail(st, "I/O", MOSQ_ERR_CONN_LOST);
      }
    } else if (published < o.messages &&
               static_cast<long>(st.pending.size()) < o.sync_window) {
      long n = std::min(o.batch, o.messages - published);
      for (long i = 0; i < n; ++i) {
        rc = mosquitto_publish(m, nullptr, o.topic.c_str(), payload_len, payload.data(), 0, false);
        if (rc != MOSQ_ERR_SUCCESS) return fail(st, "publish", rc);
        if ((i & 63) == 63 && !loop.pump()) return fail(st, "I/O", MOSQ_ERR_CONN_LOST);
      }
      published += n;
      int mid = 0;
      std::string marker = std::to_string(batches++);
      rc = mosquitto_publish(m, &mid, sync_topic.c_str(), static_cast<int>(marker.size()),
                             marker.data(), 1, false);
      if (rc != MOSQ_ERR_SUCCESS) return fail(st, "sync publish", rc);
      st.pending.push_back({mid, n});
      sent = true;
    }
    // when nothing more may be sent, block in poll() for acknowledgements
    if (!loop.step(sent ? 0 : 100)) return fail(st, "I/O", MOSQ_ERR_CONN_LOST);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();

  mosquitto_disconnect(m);
  for (int i = 0; i < 50 && mosquitto_socket(m) >= 0 && !st.disconnected; ++i) loop.step(20);
  mosquitto_destroy(m);
  mosquitto_lib_cleanup();

  std::printf("{\"mode\":\"%s\",\"messages\":%ld,\"seconds\":%.6f,\"msgs_per_s\":%.1f,"
              "\"payload_bytes\":%ld,\"inflight\":%ld,\"batch\":%ld,\"sync_window\":%ld,"
              "\"sync_markers\":%ld,\"tcp_nodelay\":%s}\n",
              o.mode.c_str(), o.messages, seconds, static_cast<double>(o.messages) / seconds,
              o.size, st.sync_mode ? 0L : o.inflight, st.sync_mode ? o.batch : 0L,
              st.sync_mode ? o.sync_window : 0L, batches, o.tcp_nodelay ? "true" : "false");
  return st.stray_acks ? 1 : 0;
}
