// uplink.cpp — the store-and-forward drain: outbox → MQTT, acknowledgements → outbox.
//
// All state below lives on the loop thread (the io_context runs on one thread). Four streams
// drain the outbox, in priority order: alert-live, alert-backlog, bulk-live, bulk-backlog.
// "Backlog" are the entries that already waited when this connection came online (id <=
// live_from_ of their lane); they are sent with the historical flag and under the rate cap.
// Each stream has at most one outbox fetch outstanding; what is sent but not yet confirmed is
// bounded by max_inflight.
#include "vibgate/uplink/uplink.hpp"

#include <sys/stat.h>

#include <mosquitto.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "json_payload.hpp"
#include "mqtt_connection.hpp"
#include "sparkplug.hpp"

namespace vibgate::uplink {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool has_wildcard(const std::string& s) { return s.find_first_of("#+") != std::string::npos; }

// An asset name as one topic level: MQTT wildcards and level separators become '_' (names from
// the configuration are validated; this protects against any that are not).
std::string topic_level(const std::string& name) {
  if (!name.empty() && name.find_first_of("#+/") == std::string::npos) return name;
  std::string out = name.empty() ? std::string("_") : name;
  for (char& c : out) {
    if (c == '#' || c == '+' || c == '/') c = '_';
  }
  return out;
}

// Token bucket for the backlog cap; rate 0 = unlimited.
class TokenBucket {
 public:
  void configure(double rate, double burst) {
    rate_ = rate;
    burst_ = burst;
    tokens_ = burst;
    last_ = Clock::now();
  }
  bool unlimited() const { return rate_ <= 0.0; }
  double available() {
    refill();
    return tokens_;
  }
  void take(double n) {
    refill();
    tokens_ -= n;
  }
  // Time until at least `n` tokens are available.
  std::chrono::milliseconds wait_for(double n) {
    refill();
    if (tokens_ >= n || unlimited()) return std::chrono::milliseconds(0);
    double s = (n - tokens_) / rate_;
    return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000.0) + 1);
  }

 private:
  void refill() {
    if (unlimited()) return;
    auto now = Clock::now();
    double dt = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    tokens_ = std::min(burst_, tokens_ + dt * rate_);
  }
  double rate_ = 0.0;
  double burst_ = 0.0;
  double tokens_ = 0.0;
  Clock::time_point last_ = Clock::now();
};

// Reads "user\npassword\n". Errors name the file. Sets *loose_mode to the file's permission
// bits when group or others may read or write it (0 otherwise): the caller warns.
bool read_credentials(const std::string& path, std::string* user, std::string* password,
                      std::string* error, unsigned* loose_mode) {
  std::ifstream in(path);
  if (!in) {
    *error = "credentials_file " + path + ": cannot open";
    return false;
  }
  struct stat st {};
  *loose_mode = ::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0 ? (st.st_mode & 0777) : 0;
  std::getline(in, *user);
  std::getline(in, *password);
  auto trim = [](std::string& s) {
    while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' ')) s.pop_back();
  };
  trim(*user);
  trim(*password);
  if (user->empty()) {
    *error = "credentials_file " + path + ": first line (user name) is empty";
    return false;
  }
  return true;
}

}  // namespace

std::string validate(const UplinkConfig& c) {
  if (c.host.empty()) return "uplink.host: empty";
  if (c.port == 0) return "uplink.port: must be 1..65535";
  if (c.keepalive.count() < 5 || c.keepalive.count() > 65535) {
    return "uplink.keepalive_s: must be 5..65535 (libmosquitto's range)";
  }
  if (c.batch == 0 || c.batch > 65535) return "uplink.batch: must be 1..65535";
  if (c.max_inflight < c.batch) return "uplink.max_inflight: must be >= batch";
  if (c.max_inflight > 32768) return "uplink.max_inflight: at most 32768 (16-bit message ids)";
  if (c.backlog_msgs_per_s < 0 || c.backlog_bytes_per_s < 0) {
    return "uplink.backlog rate: must be >= 0";
  }
  if (c.reconnect_min.count() <= 0 || c.reconnect_max < c.reconnect_min) {
    return "uplink.reconnect: need 0 < min <= max";
  }
  if (c.tls.enabled && c.tls.ca_file.empty()) return "uplink.tls.ca_file: required with TLS";
  if (c.tls.cert_file.empty() != c.tls.key_file.empty()) {
    return "uplink.tls: cert_file and key_file go together";
  }
  auto bad_level = [](const std::string& s) {
    return s.empty() || has_wildcard(s) || s.find('/') != std::string::npos;
  };
  if (bad_level(c.edge_node_id)) return "uplink.edge_node_id: empty or contains / # +";
  if (c.profile == Profile::sparkplug && bad_level(c.group_id)) {
    return "uplink.group_id: empty or contains / # +";
  }
  if (!c.primary_host_id.empty() && bad_level(c.primary_host_id)) {
    return "uplink.primary_host_id: contains / # +";
  }
  if (c.profile == Profile::json && (c.json_prefix.empty() || has_wildcard(c.json_prefix))) {
    return "uplink.json_prefix: empty or contains # +";
  }
  for (const auto& a : c.assets) {
    if (bad_level(a)) return "uplink.assets: \"" + a + "\" is empty or contains / # +";
  }
  return "";
}

// Storage threads reach the uplink only through this gate: they post to the loop while it is
// open and never hold the uplink alive themselves, so the uplink is destroyed on the loop thread.
struct CallbackGate {
  std::mutex mu;
  bool open = true;
};

struct Uplink::Impl : std::enable_shared_from_this<Impl> {
  struct Stream {
    Lane lane = Lane::bulk;
    bool backlog = false;
    std::uint64_t cursor = 0;  // highest id handed to the broker in this online period
    bool fetching = false;
    bool exhausted = false;  // nothing more to fetch (until the outbox grows)
    std::size_t requested = 0;
  };

  Impl(asio::io_context& io, UplinkConfig config, OutboxSource& outbox)
      : io_(io),
        cfg_(std::move(config)),
        outbox_(outbox),
        reconnect_timer_(io),
        pump_timer_(io),
        backoff_(cfg_.reconnect_min),
        gate_(std::make_shared<CallbackGate>()) {
    if (cfg_.client_id.empty()) cfg_.client_id = "vibgate-" + cfg_.edge_node_id;
    streams_[0] = {Lane::alert, false};
    streams_[1] = {Lane::alert, true};
    streams_[2] = {Lane::bulk, false};
    streams_[3] = {Lane::bulk, true};
    double burst = std::max(static_cast<double>(cfg_.batch), cfg_.backlog_msgs_per_s / 5.0);
    msg_bucket_.configure(cfg_.backlog_msgs_per_s, burst);
    byte_bucket_.configure(cfg_.backlog_bytes_per_s,
                           std::max(65536.0, cfg_.backlog_bytes_per_s / 5.0));
    for (const auto& a : cfg_.assets) node_.declare_device(a);
    load_state();
  }

  ~Impl() { close_gate(); }

  void close_gate() {
    std::lock_guard lock(gate_->mu);
    gate_->open = false;
  }

  // ---- state file: the connection counter (bdSeq and the JSON session) ----
  void load_state() {
    if (cfg_.state_file.empty()) return;
    std::ifstream in(cfg_.state_file);
    std::string key;
    std::uint64_t value = 0;
    while (in >> key >> value) {
      if (key == "connect_count") connect_count_ = value;
    }
  }
  void save_state() {
    if (cfg_.state_file.empty()) return;
    std::string tmp = cfg_.state_file + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << "connect_count " << connect_count_ << "\n";
      if (!out) {
        spdlog::warn("uplink: state_file {}: cannot write", cfg_.state_file);
        return;
      }
    }
    if (std::rename(tmp.c_str(), cfg_.state_file.c_str()) != 0) {
      spdlog::warn("uplink: state_file {}: cannot rename", cfg_.state_file);
    }
  }

  // ---- connection lifecycle ----
  void start() {
    running_ = true;
    std::weak_ptr<Impl> weak = shared_from_this();
    auto gate = gate_;
    asio::io_context* io = &io_;
    outbox_.on_outbox_grew([weak, gate, io] {
      std::lock_guard lock(gate->mu);
      if (!gate->open) return;
      asio::post(*io, [weak] {
        if (auto s = weak.lock()) s->outbox_grew();
      });
    });
    connect();
  }

  void stop() {
    running_ = false;
    close_gate();
    reconnect_timer_.cancel();
    pump_timer_.cancel();
    if (conn_ && connected_) {
      if (cfg_.profile == Profile::sparkplug) {
        publish_ndeath();
      } else {
        std::string st = json::encode_status(false, connect_count_, now_ms());
        conn_->publish(json::status_topic(cfg_.json_prefix, cfg_.edge_node_id), st.data(),
                       st.size(), 1, true, nullptr);
      }
    }
    reset_session(true);
    update_stats();
  }

  std::uint64_t bd_seq() const { return connect_count_ % 256; }

  std::string ndeath_topic() const {
    return spb::node_topic(cfg_.group_id, "NDEATH", cfg_.edge_node_id);
  }

  // Sparkplug: the node's death before a deliberate disconnect (the Will covers the others).
  void publish_ndeath() { publish_raw(ndeath_topic(), spb::encode_ndeath(bd_seq(), now_ms()), 0); }

  void connect() {
    if (!running_) return;
    ++connect_count_;  // bdSeq / JSON session of this attempt (spec: +1 per CONNECT)
    save_state();
    ConnectionOptions o;
    o.host = cfg_.host;
    o.port = cfg_.port;
    o.client_id = cfg_.client_id;
    o.version = cfg_.version;
    o.keepalive = cfg_.keepalive;
    o.connect_timeout = cfg_.connect_timeout;
    o.tls = cfg_.tls;
    o.max_inflight = cfg_.max_inflight + 16;
    if (!cfg_.credentials_file.empty()) {
      std::string err;
      unsigned loose = 0;
      if (!read_credentials(cfg_.credentials_file, &o.username, &o.password, &err, &loose)) {
        return connection_closed(err);
      }
      if (loose != 0 && !credentials_warned_) {  // once per run: it is read at every connect
        credentials_warned_ = true;
        spdlog::warn(
            "uplink: credentials_file {}: readable by group or others (mode {:03o}); "
            "chmod 600 it",
            cfg_.credentials_file, loose);
      }
    }
    if (cfg_.profile == Profile::sparkplug) {
      o.will_topic = ndeath_topic();
      o.will_payload = spb::encode_ndeath(bd_seq(), now_ms());
      o.will_qos = 1;
      o.will_retain = false;
    } else {
      o.will_topic = json::status_topic(cfg_.json_prefix, cfg_.edge_node_id);
      o.will_payload = json::encode_status(false, connect_count_, now_ms());
      o.will_qos = 1;
      o.will_retain = true;
    }
    std::uint64_t session = ++session_;
    std::weak_ptr<Impl> weak = shared_from_this();
    ConnectionEvents ev;
    ev.on_connected = [weak, session] {
      if (auto s = weak.lock(); s && s->session_ == session) s->connection_up();
    };
    ev.on_closed = [weak, session](const std::string& why) {
      if (auto s = weak.lock(); s && s->session_ == session) s->connection_closed(why);
    };
    ev.on_acked = [weak, session](int mid) {
      if (auto s = weak.lock(); s && s->session_ == session) s->acked(mid);
    };
    ev.on_message = [weak, session](const std::string& topic, const std::string& payload) {
      if (auto s = weak.lock(); s && s->session_ == session) s->message(topic, payload);
    };
    conn_ = MqttConnection::create(io_, std::move(o), std::move(ev));
    conn_->open();
  }

  void connection_up() {
    connected_ = true;
    connected_at_ = Clock::now();
    json_seq_ = 0;
    {
      std::lock_guard lock(stats_mu_);
      stats_.connects++;
      stats_.last_error.clear();
    }
    spdlog::info("uplink: connected to {}:{} as {}", cfg_.host, cfg_.port, cfg_.client_id);
    if (cfg_.profile == Profile::sparkplug) {
      conn_->subscribe(spb::node_topic(cfg_.group_id, "NCMD", cfg_.edge_node_id), 1);
      conn_->subscribe(spb::node_topic(cfg_.group_id, "DCMD", cfg_.edge_node_id) + "/+", 1);
      if (!cfg_.primary_host_id.empty()) {
        // Wait for the host's (retained) STATE before any BIRTH (Sparkplug 3.0).
        conn_->subscribe(state_topic(), 1);
      }
    } else {
      std::string st = json::encode_status(true, connect_count_, now_ms());
      conn_->publish(json::status_topic(cfg_.json_prefix, cfg_.edge_node_id), st.data(), st.size(),
                     1, true, nullptr);
      if (bundle_handler_)
        conn_->subscribe(json::bundle_command_topic(cfg_.json_prefix, cfg_.edge_node_id), 1);
    }
    if (cfg_.primary_host_id.empty() || cfg_.profile == Profile::json) go_online();
    update_stats();
  }

  std::string state_topic() const {
    std::string t = spb::kNamespace;
    t += "/STATE/";
    t += cfg_.primary_host_id;
    return t;
  }

  // Sends the BIRTHs (Sparkplug) and starts draining: everything now in the outbox is backlog.
  void go_online() {
    online_ = true;
    seq_ = 0;
    if (cfg_.profile == Profile::sparkplug) send_births();
    if (!conn_) return;
    OutboxStats os = outbox_.outbox_stats();
    for (auto& st : streams_) {
      std::uint64_t max_id = os.lanes[static_cast<int>(st.lane)].max_id;
      live_from_[static_cast<int>(st.lane)] = max_id;
      st.cursor = st.backlog ? 0 : max_id;
      st.exhausted = false;
      st.fetching = false;
    }
    ++epoch_;  // results of fetches started before this point are dropped
    update_stats();
    if (online_handler_) online_handler_();
    if (!conn_ || !online_) return;
    pump();
  }

  void send_births() {
    std::int64_t now = now_ms();
    std::string nb = spb::encode_nbirth(bd_seq(), next_seq(), now, "vibgate");
    publish_raw(spb::node_topic(cfg_.group_id, "NBIRTH", cfg_.edge_node_id), nb, 0);
    std::uint64_t n = 1;
    for (const auto& [asset, dev] : node_.devices()) {
      send_dbirth(asset, dev, now);
      ++n;
    }
    births_ += n;
  }

  void send_dbirth(const std::string& asset, const spb::DeviceModel& dev, std::int64_t now) {
    std::string db = spb::encode_dbirth(dev, next_seq(), now);
    publish_raw(spb::device_topic(cfg_.group_id, "DBIRTH", cfg_.edge_node_id, topic_level(asset)),
                db, 0);
  }

  std::uint8_t next_seq() { return seq_++; }  // wraps 255 → 0

  // Forgets everything tied to the current connection. Acknowledgements the broker already
  // confirmed are handed to the outbox first; what was sent but not confirmed is simply fetched
  // and sent again on the next connection.
  void reset_session(bool graceful) {
    flush_acks();
    connected_ = online_ = false;
    if (conn_) conn_->close(graceful);
    conn_.reset();
    ++session_;  // late events of the old connection are ignored
    ++epoch_;
    pending_.clear();
    unsynced_.clear();
    inflight_ = 0;
    for (auto& st : streams_) st.fetching = false;
  }

  void connection_closed(const std::string& why) { close_and_retry(why, false); }

  // graceful: a deliberate disconnect (Sparkplug NDEATH already published); otherwise the
  // socket is dropped without DISCONNECT so the broker publishes the Will.
  void close_and_retry(const std::string& why, bool graceful) {
    bool was_connected = connected_;
    // A connection that stayed up for a while earns a fresh backoff; one that drops right
    // after CONNACK (a broker rejecting what we send, a flapping path) keeps backing off.
    if (was_connected && Clock::now() - connected_at_ >= std::chrono::seconds(10)) {
      backoff_ = cfg_.reconnect_min;
    }
    reset_session(graceful);
    {
      std::lock_guard lock(stats_mu_);
      if (!was_connected) stats_.connect_failures++;
      stats_.last_error = why;
    }
    update_stats();
    if (!running_) return;
    std::string where = cfg_.host + ":" + std::to_string(cfg_.port);
    // Exponential backoff with ±20 % jitter.
    std::uniform_real_distribution<double> jitter(0.8, 1.2);
    auto delay = std::chrono::milliseconds(
        static_cast<std::int64_t>(static_cast<double>(backoff_.count()) * jitter(rng_)));
    backoff_ = std::min(cfg_.reconnect_max, backoff_ * 2);
    spdlog::warn("uplink: broker {}: {}; reconnecting in {} ms", where, why, delay.count());
    reconnect_timer_.expires_after(delay);
    std::weak_ptr<Impl> weak = shared_from_this();
    reconnect_timer_.async_wait([weak](const boost::system::error_code& ec) {
      if (auto s = weak.lock(); s && !ec) s->connect();
    });
  }

  // ---- incoming ----
  void message(const std::string& topic, const std::string& payload) {
    if (cfg_.profile != Profile::sparkplug) {
      if (bundle_handler_ &&
          topic == json::bundle_command_topic(cfg_.json_prefix, cfg_.edge_node_id)) {
        BundleChunk chunk = json::decode_bundle_command(payload);
        if (!chunk.error.empty()) spdlog::warn("uplink: {}: {}", topic, chunk.error);
        bundle_handler_(std::move(chunk));
      }
      return;
    }
    if (topic == spb::node_topic(cfg_.group_id, "NCMD", cfg_.edge_node_id)) {
      spb::NodeCommand cmd = spb::decode_node_command(payload);
      if (cmd.has_bundle) {
        if (!cmd.error.empty()) spdlog::warn("uplink: {}: {}", topic, cmd.error);
        if (bundle_handler_) {
          bundle_handler_(std::move(cmd.chunk));
        } else {
          spdlog::warn("uplink: {}: model bundle command ignored: over-the-air updates are off",
                       topic);
        }
        if (!conn_) return;  // the handler may not, but be safe: nothing more for this session
      }
      const std::string& err = cmd.error;
      if (cmd.rebirth) {
        {
          std::lock_guard lock(stats_mu_);
          stats_.rebirth_requests++;
        }
        spdlog::info("uplink: rebirth requested");
        if (online_) {
          flush_sync();
          if (!conn_ || !online_) return;  // the sync publish failed and closed the connection
          seq_ = 0;
          send_births();
        }
      } else if (!err.empty() && !cmd.has_bundle) {
        spdlog::warn("uplink: {}: {}", topic, err);
      }
      return;
    }
    if (!cfg_.primary_host_id.empty() && topic == state_topic()) host_state(payload);
  }

  // Sparkplug 3.0 STATE: {"online": true|false, "timestamp": ms}. Older (2.x) hosts send the
  // strings ONLINE / OFFLINE. A message older than the newest seen is ignored.
  void host_state(const std::string& payload) {
    bool online = false;
    std::int64_t ts = 0;
    if (payload == "ONLINE" || payload == "OFFLINE") {
      online = payload == "ONLINE";
    } else {
      auto j = nlohmann::json::parse(payload, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("online") ||
          !j["online"].is_boolean()) {
        spdlog::warn("uplink: {}: not a Sparkplug STATE payload; ignored", state_topic());
        return;
      }
      online = j["online"].get<bool>();
      if (j.contains("timestamp") && j["timestamp"].is_number_integer()) {
        ts = j["timestamp"].get<std::int64_t>();
      }
    }
    if (ts != 0 && ts < host_state_ts_) return;  // stale (e.g. an old retained message)
    if (ts != 0) host_state_ts_ = ts;
    if (online && !online_) {
      spdlog::info("uplink: primary host {} online", cfg_.primary_host_id);
      go_online();
    } else if (!online && online_) {
      // Sparkplug 3.0: NDEATH and disconnect; reconnect and wait for the host to return. The
      // outbox keeps everything meanwhile.
      spdlog::warn("uplink: primary host {} offline; disconnecting until it returns",
                   cfg_.primary_host_id);
      publish_ndeath();
      close_and_retry("primary host " + cfg_.primary_host_id + " offline", true);
    }
  }

  void acked(int mid) {
    auto it = pending_.find(mid);
    if (it == pending_.end()) return;  // a BIRTH, the status message or a subscription
    std::vector<std::uint64_t> ids = std::move(it->second);
    pending_.erase(it);
    inflight_ -= std::min<std::size_t>(inflight_, ids.size());
    if (ack_buf_.empty()) {
      std::weak_ptr<Impl> weak = shared_from_this();
      asio::post(io_, [weak] {
        if (auto s = weak.lock()) s->flush_acks();
      });
    }
    ack_buf_.insert(ack_buf_.end(), ids.begin(), ids.end());
    if (ack_buf_.size() >= 4096) flush_acks();
    pump();
  }

  void flush_acks() {
    if (ack_buf_.empty()) return;
    outbox_.acknowledge(ack_buf_);
    acked_ += ack_buf_.size();
    ack_buf_.clear();
    update_stats();
  }

  void outbox_grew() {
    for (auto& st : streams_) {
      if (!st.backlog) st.exhausted = false;
    }
    ++grow_epoch_;
    pump();
  }

  // ---- draining ----
  void pump() {
    if (!online_ || !conn_) return;
    std::size_t reserved = 0;
    for (auto& st : streams_) {
      if (st.fetching) reserved += st.requested;
    }
    for (std::size_t i = 0; i < 4; ++i) {
      Stream& st = streams_[i];
      if (st.fetching || st.exhausted) continue;
      std::size_t used = inflight_ + reserved;
      if (used >= cfg_.max_inflight) {
        if (cfg_.profile == Profile::sparkplug) flush_sync();  // let the window drain
        break;
      }
      std::size_t n = std::min(cfg_.batch, cfg_.max_inflight - used);
      if (st.backlog && !msg_bucket_.unlimited()) {
        auto avail = static_cast<std::size_t>(std::max(0.0, msg_bucket_.available()));
        n = std::min(n, avail);
        if (n == 0) {
          schedule_pump(msg_bucket_.wait_for(1.0));
          continue;
        }
      }
      if (st.backlog && !byte_bucket_.unlimited() && byte_bucket_.available() <= 0.0) {
        schedule_pump(byte_bucket_.wait_for(1.0));
        continue;
      }
      if (st.backlog) msg_bucket_.take(static_cast<double>(n));
      st.fetching = true;
      st.requested = n;
      reserved += n;
      std::uint64_t after = st.cursor;
      std::uint64_t epoch = epoch_;
      std::uint64_t grow_epoch = grow_epoch_;
      std::weak_ptr<Impl> weak = shared_from_this();
      auto gate = gate_;
      asio::io_context* io = &io_;
      outbox_.fetch(
          st.lane, after, n,
          [weak, gate, io, i, epoch, grow_epoch](std::vector<UplinkRecord> recs, bool ok) {
            std::lock_guard lock(gate->mu);
            if (!gate->open) return;
            asio::post(*io, [weak, i, epoch, grow_epoch, ok, recs = std::move(recs)]() mutable {
              if (auto s = weak.lock()) {
                s->fetched(i, epoch, grow_epoch, std::move(recs), ok);
              }
            });
          });
    }
  }

  void schedule_pump(std::chrono::milliseconds delay) {
    if (pump_scheduled_) return;
    pump_scheduled_ = true;
    pump_timer_.expires_after(std::max(delay, std::chrono::milliseconds(1)));
    std::weak_ptr<Impl> weak = shared_from_this();
    pump_timer_.async_wait([weak](const boost::system::error_code& ec) {
      auto s = weak.lock();
      if (!s) return;
      s->pump_scheduled_ = false;
      if (!ec) s->pump();
    });
  }

  void fetched(std::size_t index, std::uint64_t epoch, std::uint64_t grow_epoch,
               std::vector<UplinkRecord> recs, bool ok) {
    Stream& st = streams_[index];
    if (epoch != epoch_) return;  // from an earlier connection / online period
    st.fetching = false;
    if (!online_ || !conn_) return;
    int lane = static_cast<int>(st.lane);
    // A failed read is not the end of the stream: continue after what arrived, retry later.
    bool ended = ok && recs.size() < st.requested;
    std::size_t sent = 0;
    for (UplinkRecord& r : recs) {
      if (st.backlog && r.id > live_from_[lane]) {
        ended = true;  // the live stream sends these
        break;
      }
      if (r.id <= st.cursor) continue;
      if (!send_record(r, st.backlog)) return;  // the connection failed; state was reset
      st.cursor = r.id;
      ++sent;
    }
    if (st.backlog && sent < st.requested) {
      msg_bucket_.take(-static_cast<double>(st.requested - sent));
    }
    if (ended) {
      // A live stream may have missed a commit that raced with this fetch: only call it
      // exhausted when no growth was signalled since the fetch started.
      st.exhausted = st.backlog || grow_epoch == grow_epoch_;
      if (st.backlog && st.cursor < live_from_[lane]) st.cursor = live_from_[lane];
    }
    if (cfg_.profile == Profile::sparkplug && (unsynced_.size() >= cfg_.batch || ended || !ok)) {
      flush_sync();
      if (!conn_) return;
    }
    update_stats();
    if (!ok) {
      spdlog::warn("uplink: reading the outbox failed; retrying in 1 s");
      schedule_pump(std::chrono::milliseconds(1000));
      return;
    }
    pump();
  }

  // Publishes one record; false when the connection broke (and was torn down).
  bool send_record(const UplinkRecord& r, bool historical) {
    int mid = 0;
    int rc = 0;
    if (cfg_.profile == Profile::sparkplug) {
      if (node_.learn(r)) {
        send_dbirth(r.asset, *node_.device(r.asset), now_ms());
        ++births_;
      }
      if (!conn_) return false;
      spb::encode_ddata(*node_.device(r.asset), r, next_seq(), now_ms(), historical, &payload_);
      topic_ = spb::device_topic(cfg_.group_id, "DDATA", cfg_.edge_node_id, topic_level(r.asset));
      rc = conn_->publish(topic_, payload_.data(), payload_.size(), 0, false, &mid);
      if (rc == 0) unsynced_.push_back(r.id);
    } else {
      payload_ = json::encode_record(r, cfg_.edge_node_id, connect_count_, json_seq_++, historical);
      topic_ =
          json::record_topic(cfg_.json_prefix, cfg_.edge_node_id, topic_level(r.asset), r.kind);
      rc = conn_->publish(topic_, payload_.data(), payload_.size(), 1, false, &mid);
      if (rc == 0) pending_[mid] = {r.id};
    }
    if (rc == MOSQ_ERR_INVAL || rc == MOSQ_ERR_MALFORMED_UTF8 || rc == MOSQ_ERR_PAYLOAD_SIZE ||
        rc == MOSQ_ERR_OVERSIZE_PACKET) {
      // This record can never be published (it would fail the same way on every connection):
      // it leaves the outbox, logged and counted, instead of blocking its lane forever.
      spdlog::error("uplink: outbox entry {} (asset \"{}\") cannot be published: {}; dropped", r.id,
                    r.asset, mosquitto_error_text(rc));
      ++rejected_;
      std::uint64_t id = r.id;
      outbox_.acknowledge(std::span<const std::uint64_t>(&id, 1));
      return true;
    }
    if (rc != 0) {
      connection_closed("publish: " + mosquitto_error_text(rc));
      return false;
    }
    ++inflight_;
    if (historical) byte_bucket_.take(static_cast<double>(payload_.size()));
    ++sent_;
    bytes_ += payload_.size();
    return true;
  }

  // Sparkplug: one QoS 1 publish whose PUBACK confirms every DATA sent before it.
  void flush_sync() {
    if (unsynced_.empty() || !conn_) return;
    std::string topic = "vibgate/sync/";
    topic += cfg_.group_id;
    topic += '/';
    topic += cfg_.edge_node_id;
    std::string body = std::to_string(unsynced_.back());
    int mid = 0;
    int rc = conn_->publish(topic, body.data(), body.size(), 1, false, &mid);
    if (rc != 0) {
      connection_closed("publish: " + mosquitto_error_text(rc));
      return;
    }
    pending_[mid] = std::move(unsynced_);
    unsynced_.clear();
  }

  void publish_raw(const std::string& topic, const std::string& payload, int qos) {
    if (!conn_) return;
    int rc = conn_->publish(topic, payload.data(), payload.size(), qos, false, nullptr);
    if (rc != 0) spdlog::warn("uplink: publish {}: {}", topic, mosquitto_error_text(rc));
  }

  // Counters are kept on the loop thread and copied here (not per message) under the mutex.
  void update_stats() {
    std::lock_guard lock(stats_mu_);
    stats_.connected = connected_;
    stats_.online = online_;
    stats_.in_flight = inflight_;
    stats_.bd_seq = static_cast<std::uint32_t>(bd_seq());
    stats_.messages_sent = sent_;
    stats_.bytes_sent = bytes_;
    stats_.messages_acked = acked_;
    stats_.births = births_;
    stats_.records_rejected = rejected_;
  }

  UplinkStats snapshot() const {
    UplinkStats s;
    {
      std::lock_guard lock(stats_mu_);
      s = stats_;
    }
    s.outbox = outbox_.outbox_stats();
    return s;
  }

  asio::io_context& io_;
  UplinkConfig cfg_;
  std::function<void(BundleChunk)> bundle_handler_;  // set before start(); loop thread
  std::function<void()> online_handler_;
  OutboxSource& outbox_;
  asio::steady_timer reconnect_timer_;
  asio::steady_timer pump_timer_;
  std::chrono::milliseconds backoff_;
  std::shared_ptr<CallbackGate> gate_;
  std::mt19937 rng_{std::random_device{}()};
  std::shared_ptr<MqttConnection> conn_;
  Clock::time_point connected_at_{};
  bool running_ = false;
  bool credentials_warned_ = false;
  bool connected_ = false;
  bool online_ = false;
  bool pump_scheduled_ = false;
  std::int64_t host_state_ts_ = 0;   // newest primary host STATE timestamp seen
  std::uint64_t session_ = 0;        // connection attempt; stale events compare against it
  std::uint64_t epoch_ = 0;          // online period; stale fetch results compare against it
  std::uint64_t grow_epoch_ = 0;     // outbox growth notifications seen
  std::uint64_t connect_count_ = 0;  // persisted: bdSeq = connect_count_ % 256
  std::uint64_t json_seq_ = 0;
  std::uint8_t seq_ = 0;
  spb::NodeModel node_;
  Stream streams_[4];
  std::uint64_t live_from_[kLaneCount] = {0, 0};
  std::unordered_map<int, std::vector<std::uint64_t>> pending_;  // mid → outbox ids it confirms
  std::vector<std::uint64_t> unsynced_;  // Sparkplug DATA sent since the last sync publish
  std::vector<std::uint64_t> ack_buf_;   // confirmed, not yet handed to the outbox
  std::size_t inflight_ = 0;
  std::uint64_t sent_ = 0, bytes_ = 0, acked_ = 0, births_ = 0, rejected_ = 0;
  std::string payload_;  // scratch, reused per message
  std::string topic_;
  TokenBucket msg_bucket_;
  TokenBucket byte_bucket_;
  mutable std::mutex stats_mu_;
  UplinkStats stats_;
};

Uplink::Uplink(asio::io_context& io, UplinkConfig config, OutboxSource& outbox) {
  std::string problem = validate(config);
  if (!problem.empty()) throw std::invalid_argument(problem);
  impl_ = std::make_shared<Impl>(io, std::move(config), outbox);
}

Uplink::~Uplink() {
  if (impl_ && impl_->running_) impl_->stop();
}

void Uplink::on_bundle_chunk(std::function<void(BundleChunk chunk)> handler) {
  impl_->bundle_handler_ = std::move(handler);
}
void Uplink::on_online(std::function<void()> handler) {
  impl_->online_handler_ = std::move(handler);
}
void Uplink::start() { impl_->start(); }
void Uplink::stop() { impl_->stop(); }
UplinkStats Uplink::stats() const { return impl_->snapshot(); }

}  // namespace vibgate::uplink
