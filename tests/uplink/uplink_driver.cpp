// uplink_driver.cpp — the store and the uplink wired together as the daemon will wire them, for
// the outage tests (tests/uplink/test_uplink_outage.py) and the drain benchmark.
//
// A producer thread (standing in for the analytics worker) submits results — and every
// --alert-every'th record an alert event — round-robin over the assets into a real SQLite store;
// the uplink drains the store's outbox to a real broker. Every record carries a per-asset counter
// "n" (a feature metric) so the test can check order per asset. JSON lines on stdout, flushed:
//   {"ev":"stored","count":N}            every 1000 committed records and at the end of production
//   {"ev":"produced","count":N}           production finished and committed
//   {"ev":"stats", ...}                   uplink + outbox statistics every --stats-ms
//   {"ev":"drained", ...}                 the outbox is empty after production (with
//   --exit-when-drained)
//   {"ev":"exit", ...}                    final statistics
// Exit status: 0 normal, 2 bad command line / store refused (message on stderr), 3 timeout.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "vibgate/storage/store.hpp"
#include "vibgate/uplink/uplink.hpp"

namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

void emit(const nlohmann::json& j) {
  std::string s = j.dump();
  std::fputs(s.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

nlohmann::json stats_json(const vibgate::uplink::UplinkStats& s,
                          const vibgate::storage::StoreStats& st) {
  return {{"connected", s.connected},
          {"online", s.online},
          {"last_error", s.last_error},
          {"connects", s.connects},
          {"connect_failures", s.connect_failures},
          {"sent", s.messages_sent},
          {"bytes", s.bytes_sent},
          {"acked", s.messages_acked},
          {"in_flight", s.in_flight},
          {"births", s.births},
          {"rebirths", s.rebirth_requests},
          {"bd_seq", s.bd_seq},
          {"depth_alert", s.outbox.lanes[0].depth},
          {"depth_bulk", s.outbox.lanes[1].depth},
          {"oldest_bulk_ms", s.outbox.lanes[1].oldest_wall_ms},
          {"evicted_undelivered", s.outbox.evicted_undelivered},
          {"db_file_bytes", st.file_bytes},
          {"db_last_error", st.last_error}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vibgate uplink test driver"};
  std::string db;
  std::string profile = "sparkplug";
  std::string assets_arg = "pump1,pump2";
  vibgate::uplink::UplinkConfig cfg;
  std::uint64_t produce = 0;
  std::uint64_t alert_every = 0;
  double rate = 0.0;
  bool no_uplink = false;
  bool exit_when_drained = false;
  double timeout_s = 60.0;
  int stats_ms = 500;
  int keepalive = 30;
  std::string version = "3.1.1";
  std::uint64_t quota = 0;
  int features = 6;
  std::int64_t n_offset = 0;
  app.add_option("--db", db, "SQLite database file")->required();
  app.add_option("--host", cfg.host);
  app.add_option("--port", cfg.port);
  app.add_option("--profile", profile)->check(CLI::IsMember({"sparkplug", "json"}));
  app.add_option("--mqtt", version)->check(CLI::IsMember({"3.1.1", "5"}));
  app.add_option("--assets", assets_arg, "comma-separated asset names");
  app.add_option("--group", cfg.group_id);
  app.add_option("--node", cfg.edge_node_id);
  app.add_option("--primary-host", cfg.primary_host_id);
  app.add_option("--json-prefix", cfg.json_prefix);
  app.add_option("--state-file", cfg.state_file);
  app.add_option("--credentials-file", cfg.credentials_file);
  app.add_option("--tls-ca", cfg.tls.ca_file);
  app.add_option("--tls-cert", cfg.tls.cert_file);
  app.add_option("--tls-key", cfg.tls.key_file);
  app.add_option("--keepalive", keepalive);
  app.add_option("--batch", cfg.batch);
  app.add_option("--max-inflight", cfg.max_inflight);
  app.add_option("--backlog-rate", cfg.backlog_msgs_per_s, "backlog messages/s (0 = unlimited)");
  app.add_option("--produce", produce, "records to submit (0 = none)");
  app.add_option("--alert-every", alert_every, "every Nth record is an alert event (0 = never)");
  app.add_option("--rate", rate, "records/s while producing (0 = as fast as possible)");
  app.add_option("--features", features, "feature metrics per result besides n");
  app.add_option("--n-offset", n_offset, "first value of the per-asset counter n");
  app.add_option("--quota", quota, "store quota in bytes (0 = none)");
  app.add_flag("--no-uplink", no_uplink, "only produce into the store");
  app.add_flag("--exit-when-drained", exit_when_drained);
  app.add_option("--timeout", timeout_s, "give up after this many seconds (exit 3)");
  app.add_option("--stats-ms", stats_ms);
  // Logs go to stderr (stdout carries the JSON lines), as in the daemon.
  spdlog::set_default_logger(spdlog::stderr_color_st("uplink_driver"));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  cfg.profile =
      profile == "json" ? vibgate::uplink::Profile::json : vibgate::uplink::Profile::sparkplug;
  cfg.version =
      version == "5" ? vibgate::uplink::MqttVersion::v5 : vibgate::uplink::MqttVersion::v311;
  cfg.keepalive = std::chrono::seconds(keepalive);
  cfg.connect_timeout = std::chrono::seconds(std::max(2, keepalive / 2));
  cfg.reconnect_min = std::chrono::milliseconds(200);
  cfg.reconnect_max = std::chrono::milliseconds(2000);
  cfg.tls.enabled = !cfg.tls.ca_file.empty();
  std::vector<std::string> assets = split(assets_arg, ',');
  cfg.assets = assets;

  vibgate::storage::StoreOptions so;
  so.path = db;
  so.quota_bytes = quota;
  so.commit_interval = std::chrono::milliseconds(50);
  auto opened = vibgate::storage::Store::open(so);
  if (!opened.store) {
    std::fprintf(stderr, "uplink_driver: %s\n", opened.message.c_str());
    return 2;
  }
  vibgate::storage::Store& store = *opened.store;

  asio::io_context io;
  std::unique_ptr<vibgate::uplink::Uplink> uplink;
  if (!no_uplink) {
    try {
      uplink = std::make_unique<vibgate::uplink::Uplink>(io, cfg, store);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "uplink_driver: %s\n", e.what());
      return 2;
    }
    uplink->start();
  }

  // Producer: the analytics worker's stand-in.
  std::atomic<std::uint64_t> committed{0};
  std::atomic<bool> produced{false};
  std::atomic<bool> stop{false};
  std::thread producer([&] {
    auto t0 = Clock::now();
    std::vector<std::int64_t> n(assets.size(), n_offset);
    for (std::uint64_t i = 0; i < produce && !stop; ++i) {
      if (rate > 0) {
        auto due = t0 + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(static_cast<double>(i) / rate));
        std::this_thread::sleep_until(due);
      }
      std::size_t a = i % assets.size();
      std::int64_t wall = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
      auto done = [&committed](std::error_code ec, std::uint64_t) {
        if (ec) {
          std::fprintf(stderr, "uplink_driver: store refused a record: %s\n", ec.message().c_str());
          return;
        }
        std::uint64_t c = ++committed;
        if (c % 1000 == 0) emit({{"ev", "stored"}, {"count", c}});
      };
      std::int64_t seqn = n[a]++;
      if (alert_every > 0 && (i + 1) % alert_every == 0) {
        vibgate::storage::AlertEvent ev;
        ev.kind = vibgate::storage::AlertState::raised;
        ev.asset = assets[a];
        ev.level = vibgate::storage::AlertLevel::alarm;
        ev.wall_ms = wall;
        ev.reason = "test alert";
        ev.score = 1.5;
        ev.features = {{"n", vibgate::Metric::Value{seqn}}};
        store.submit_alert_event(std::move(ev), done);
      } else {
        vibgate::storage::ResultRow r;
        r.asset = assets[a];
        r.channel = assets[a] + "/de";
        r.wall_ms = wall;
        r.score = 0.25 + 0.001 * static_cast<double>(i % 100);
        r.verdict = vibgate::Verdict::normal;
        r.iso_zone = 1;
        r.velocity_rms_mm_s = 1.8;
        r.model_version = "1";
        r.features.push_back({"n", vibgate::Metric::Value{seqn}});
        for (int f = 0; f < features; ++f) {
          r.features.push_back({"f" + std::to_string(f), vibgate::Metric::Value{0.5 * f}});
        }
        store.submit_result(std::move(r), done);
      }
    }
    store.flush();
    produced = true;
    emit({{"ev", "produced"}, {"count", committed.load()}});
  });

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) io.stop();
  });
  int rc = 0;
  auto start = Clock::now();
  std::optional<Clock::time_point> online_at;
  asio::steady_timer tick(io);
  // The uplink's statistics with the store's outbox figures (also when there is no uplink).
  auto stats_now = [&] {
    vibgate::uplink::UplinkStats s = uplink ? uplink->stats() : vibgate::uplink::UplinkStats{};
    s.outbox = store.outbox_stats();
    return s;
  };
  std::function<void()> on_tick = [&] {
    tick.expires_after(std::chrono::milliseconds(stats_ms));
    tick.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      const vibgate::uplink::UplinkStats s = stats_now();
      if (s.online && !online_at) online_at = Clock::now();
      nlohmann::json j = stats_json(s, store.stats());
      j["ev"] = "stats";
      emit(j);
      bool empty = s.outbox.lanes[0].depth == 0 && s.outbox.lanes[1].depth == 0;
      if (produced && (no_uplink || (exit_when_drained && empty))) {
        if (!no_uplink) {
          j["ev"] = "drained";
          j["seconds"] = std::chrono::duration<double>(Clock::now() - start).count();
          // From the first tick that saw the uplink online (connected, BIRTHs sent): the span
          // comparable to a bare publisher's CONNACK-to-last-ack.
          j["seconds_online"] =
              online_at ? std::chrono::duration<double>(Clock::now() - *online_at).count() : 0.0;
          emit(j);
        }
        io.stop();
        return;
      }
      if (std::chrono::duration<double>(Clock::now() - start).count() > timeout_s) {
        std::fprintf(stderr, "uplink_driver: timeout after %.0f s\n", timeout_s);
        rc = 3;
        io.stop();
        return;
      }
      on_tick();
    });
  };
  on_tick();
  io.run();
  stop = true;
  producer.join();
  if (uplink) {
    io.restart();
    uplink->stop();
    io.run_for(std::chrono::milliseconds(200));
  }
  nlohmann::json j = stats_json(stats_now(), store.stats());
  j["ev"] = "exit";
  emit(j);
  uplink.reset();
  return rc;
}
