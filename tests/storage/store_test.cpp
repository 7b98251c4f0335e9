// tests/storage/store_test.cpp — the durable store against real SQLite files: round trips of
// every row type and the read API, the outbox (ordering, fetch, acknowledge, stats, growth
// callback), schema migration from every fixture, refusal/move-aside of newer and corrupt files,
// queue-full refusal, and commit failures injected through a VFS shim.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "fault_vfs.hpp"  // tests/fault
#include "test_util.hpp"

namespace vibgate::storage::test {
namespace {

using namespace std::chrono_literals;
namespace fault_vfs = vibgate::test::fault_vfs;

std::unique_ptr<Store> open_ok(const StoreOptions& o) {
  auto r = Store::open(o);
  EXPECT_FALSE(r.error) << r.message;
  return std::move(r.store);
}

TEST(StoreTest, ResultsRoundTripAndOutboxRecord) {
  TempDir dir;
  auto store = open_ok(options_for(dir.file("g.db")));
  ASSERT_TRUE(store);
  Collected c;
  store->submit_result(make_result("pump1", 1000, 0.25), c.cb());
  store->submit_result(make_result("pump1", 2000, 0.85), c.cb());
  store->submit_result(make_result("pump1", 3000, 1.5, /*uplink=*/false), c.cb());
  store->submit_result(make_result("fan2", 2500, 0.1), c.cb());
  store->flush();
  ASSERT_EQ(c.size(), 4u);
  std::set<std::uint64_t> ids;
  for (auto& [ec, id] : c.calls) {
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_GT(id, 0u);
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 4u);

  auto pts = store->recent_scores("pump1", 0, 10000);
  ASSERT_EQ(pts.size(), 3u);
  EXPECT_EQ(pts[0].wall_ms, 1000);
  EXPECT_EQ(pts[2].wall_ms, 3000);
  EXPECT_DOUBLE_EQ(pts[1].score, 0.85);
  EXPECT_EQ(pts[1].verdict, Verdict::warning);
  EXPECT_EQ(pts[2].verdict, Verdict::alarm);
  EXPECT_EQ(pts[0].iso_zone, 2);
  EXPECT_DOUBLE_EQ(pts[0].velocity_rms_mm_s, 3.25);
  EXPECT_EQ(pts[0].channel, "pump1/de_accel");
  // Range and limit: the most recent `limit` points, oldest first.
  auto last2 = store->recent_scores("pump1", 0, 10000, 2);
  ASSERT_EQ(last2.size(), 2u);
  EXPECT_EQ(last2[0].wall_ms, 2000);
  EXPECT_EQ(last2[1].wall_ms, 3000);
  EXPECT_EQ(store->recent_scores("pump1", 1500, 2500).size(), 1u);
  EXPECT_TRUE(store->recent_scores("nope", 0, 10000).empty());

  // Outbox: 3 uplinked results (not the uplink=false one), bulk lane, full metric set.
  auto recs = fetch_sync(*store, Lane::bulk, 0, 100);
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_TRUE(fetch_sync(*store, Lane::alert, 0, 100).empty());
  const auto& r = recs[1];
  EXPECT_EQ(r.kind, RecordKind::result);
  EXPECT_EQ(r.lane, Lane::bulk);
  EXPECT_EQ(r.asset, "pump1");
  EXPECT_EQ(r.wall_ms, 2000);
  ASSERT_EQ(r.metrics.size(), 6u + 8u);
  EXPECT_EQ(std::get<double>(find_metric(r, "score")->value), 0.85);
  EXPECT_EQ(std::get<std::int64_t>(find_metric(r, "verdict")->value), 1);
  EXPECT_EQ(std::get<std::int64_t>(find_metric(r, "iso_zone")->value), 2);
  EXPECT_EQ(std::get<double>(find_metric(r, "velocity_rms_mm_s")->value), 3.25);
  EXPECT_EQ(std::get<std::string>(find_metric(r, "channel")->value), "pump1/de_accel");
  EXPECT_EQ(std::get<std::string>(find_metric(r, "model_version")->value), "3");
  EXPECT_EQ(std::get<double>(find_metric(r, "band4")->value), 0.125 * std::pow(1.5, 7));
  EXPECT_EQ(r.metrics[6].name, "rms_g");  // features follow the fixed metrics, in order

  auto st = store->stats();
  EXPECT_EQ(st.rows_written, 4u);
  EXPECT_GE(st.commits, 1u);
  EXPECT_EQ(st.queued_rows, 0u);
  EXPECT_EQ(st.refused_rows, 0u);
  EXPECT_GT(st.file_bytes + st.wal_bytes, 0u);
  EXPECT_TRUE(st.last_error.empty()) << st.last_error;
}

// Model inputs stored with results come back for retraining: filtered by channel, time range and
// feature-settings hash; a uniform sample beyond max_rows; rows without an input are skipped;
// nothing of them goes into the uplink record.
TEST(StoreTest, ModelInputsForRetrainingFromHistory) {
  TempDir dir;
  auto store = open_ok(options_for(dir.file("s.db")));
  ASSERT_TRUE(store);
  for (int i = 0; i < 100; ++i) {
    ResultRow r = make_result("pump1", 1000 + i);
    r.model_input = {static_cast<float>(i), 0.5f, -2.0f};
    r.input_hash = i < 80 ? 77u : 78u;  // the last 20 with other feature settings
    if (i % 2) r.channel = "pump1/nde_accel";
    store->submit_result(std::move(r));
  }
  store->submit_result(make_result("pump1", 1200));  // no model input
  store->flush();

  ModelInputQuery q;
  q.asset = "pump1";
  q.from_ms = 1000;
  q.to_ms = 2000;
  q.input_hash = 77;
  auto all = read_model_inputs(dir.file("s.db"), q);
  EXPECT_EQ(all.error, "");
  EXPECT_EQ(all.matched, 80u);
  EXPECT_EQ(all.other_settings, 20u);
  ASSERT_EQ(all.rows.size(), 80u);
  EXPECT_EQ(all.rows[3], (std::vector<float>{3.0f, 0.5f, -2.0f}));

  q.channel = "pump1/de_accel";
  q.from_ms = 1010;
  q.to_ms = 1019;
  auto some = read_model_inputs(dir.file("s.db"), q);
  ASSERT_EQ(some.rows.size(), 5u);  // 1010, 1012, ..., 1018
  for (const auto& row : some.rows) EXPECT_EQ(static_cast<int>(row[0]) % 2, 0);

  q.channel.clear();
  q.from_ms = 0;
  q.to_ms = 5000;
  q.max_rows = 10;
  auto sampled = read_model_inputs(dir.file("s.db"), q);
  EXPECT_EQ(sampled.matched, 80u);
  ASSERT_EQ(sampled.rows.size(), 10u);
  float hi = 0;  // a uniform sample reaches beyond the first 10 rows
  for (const auto& row : sampled.rows) hi = std::max(hi, row[0]);
  EXPECT_GT(hi, 9.0f);

  q.asset = "nosuch";
  EXPECT_EQ(read_model_inputs(dir.file("s.db"), q).matched, 0u);
}

TEST(StoreTest, AlertLifecycleEventsAndDelivery) {
  TempDir dir;
  auto store = open_ok(options_for(dir.file("g.db")));
  ASSERT_TRUE(store);
  Collected raised;
  store->submit_alert_event(make_raise("pump1", 5000), raised.cb());
  store->submit_alert_event(make_raise("fan2", 5100, "velocity zone D"), raised.cb());
  store->flush();
  ASSERT_EQ(raised.size(), 2u);
  const auto id1 = raised.calls[0].second;
  const auto id2 = raised.calls[1].second;
  EXPECT_FALSE(raised.calls[0].first);
  EXPECT_GT(id2, id1);

  AlertEvent ack;
  ack.kind = AlertState::acknowledged;
  ack.alert_id = id1;
  ack.wall_ms = 6000;
  ack.by = "operator@host";
  ack.reason = "acknowledged: bearing ordered";
  AlertEvent clear;
  clear.kind = AlertState::cleared;
  clear.alert_id = id1;
  clear.wall_ms = 7000;
  clear.reason = "score below 0.8 for 10 windows";
  clear.score = 0.3;
  AlertEvent bogus = clear;
  bogus.alert_id = 999999;
  Collected later;
  store->submit_alert_event(ack, later.cb());
  store->submit_alert_event(clear, later.cb());
  store->submit_alert_event(bogus, later.cb());
  store->flush();
  ASSERT_EQ(later.size(), 3u);
  EXPECT_FALSE(later.calls[0].first);
  EXPECT_EQ(later.calls[0].second, id1);
  EXPECT_FALSE(later.calls[1].first);
  EXPECT_EQ(later.calls[2].first, make_error_code(StoreErrc::not_found));

  auto all = store->alerts();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].id, id2);  // newest first
  const auto& a = all[1];
  EXPECT_EQ(a.id, id1);
  EXPECT_EQ(a.asset, "pump1");
  EXPECT_EQ(a.level, AlertLevel::alarm);
  EXPECT_EQ(a.state, AlertState::cleared);
  EXPECT_EQ(a.raised_ms, 5000);
  EXPECT_EQ(a.acknowledged_by, "operator@host");
  EXPECT_EQ(a.acknowledged_reason, "acknowledged: bearing ordered");  // the operator's note
  EXPECT_EQ(all[0].acknowledged_reason, "");
  EXPECT_EQ(a.acknowledged_ms, 6000);
  EXPECT_EQ(a.cleared_ms, 7000);
  EXPECT_EQ(a.reason, "score 1.43 >= 1.0 in 3 of 5 windows");
  EXPECT_FALSE(a.delivered);
  ASSERT_EQ(store->alerts(AlertState::raised).size(), 1u);
  EXPECT_EQ(store->alerts(AlertState::raised)[0].id, id2);
  EXPECT_EQ(store->alerts(AlertState::cleared).size(), 1u);
  EXPECT_TRUE(store->alerts(AlertState::acknowledged).empty());

  // Alert lane: raise, raise, ack, clear — not the refused one.
  auto recs = fetch_sync(*store, Lane::alert, 0, 100);
  ASSERT_EQ(recs.size(), 4u);
  const char* events[] = {"raised", "raised", "acknowledged", "cleared"};
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(recs[i].kind, RecordKind::alert);
    EXPECT_EQ(std::get<std::string>(find_metric(recs[i], "event")->value), events[i]);
    EXPECT_EQ(std::get<std::string>(find_metric(recs[i], "level")->value), "alarm");
    ASSERT_NE(find_metric(recs[i], "score"), nullptr);
    ASSERT_NE(find_metric(recs[i], "reason"), nullptr);
  }
  EXPECT_EQ(std::get<std::int64_t>(find_metric(recs[0], "alert_id")->value),
            static_cast<std::int64_t>(id1));
  EXPECT_EQ(recs[0].asset, "pump1");
  EXPECT_EQ(recs[2].asset, "pump1");  // taken from the alert when the event has none
  EXPECT_EQ(std::get<std::string>(find_metric(recs[2], "by")->value), "operator@host");
  EXPECT_EQ(find_metric(recs[0], "by"), nullptr);
  EXPECT_NE(find_metric(recs[0], "kurtosis"), nullptr);

  // Delivered once its raise event left the outbox.
  const std::uint64_t first = recs[0].id;
  store->acknowledge(std::span<const std::uint64_t>(&first, 1));
  store->flush();
  for (const auto& info : store->alerts()) EXPECT_EQ(info.delivered, info.id == id1);
}

TEST(StoreTest, HealthSnapshotsModelsRoundTrip) {
  TempDir dir;
  auto store = open_ok(options_for(dir.file("g.db")));
  ASSERT_TRUE(store);
  store->submit_health(HealthEvent{"plc1", 100, "online", ""});
  store->submit_health(HealthEvent{"plc1", 200, "offline", "timeout after 3 retries"});
  store->submit_health(HealthEvent{"plc2", 150, "degraded", "crc errors"});
  Snapshot sn;
  sn.alert_id = 42;
  sn.asset = "pump1";
  sn.channel = "pump1/de_accel";
  sn.wall_ms = 123456;
  sn.sample_rate_hz = 25600;
  sn.units = AccelUnits::m_per_s2;
  for (int i = 0; i < 4096; ++i)
    sn.samples.push_back(std::sin(static_cast<float>(i) * 0.1f) * 3.0f);
  sn.samples.push_back(-0.0f);
  sn.samples.push_back(1e-38f);
  store->submit_snapshot(sn);
  store->submit_model(ModelRecord{"pump1", "2", 10, "retired", "abc", "/m/2.vgm", ""});
  store->submit_model(ModelRecord{"pump1", "3", 20, "staged", "abd", "/m/3.vgm", "night"});
  store->flush();
  // Upsert: same asset + version updates the record.
  Collected c;
  store->submit_model(ModelRecord{"pump1", "3", 20, "active", "abd", "/m/3.vgm", "promoted"},
                      c.cb());
  store->flush();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_FALSE(c.calls[0].first);

  auto h = store->health_history("plc1", 0, 1000);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].state, "online");
  EXPECT_EQ(h[1].state, "offline");
  EXPECT_EQ(h[1].detail, "timeout after 3 retries");
  EXPECT_EQ(h[1].device, "plc1");
  EXPECT_EQ(h[1].wall_ms, 200);
  EXPECT_EQ(store->health_history("plc1", 150, 1000).size(), 1u);

  auto got = store->snapshot_for_alert(42);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->asset, "pump1");
  EXPECT_EQ(got->channel, "pump1/de_accel");
  EXPECT_EQ(got->wall_ms, 123456);
  EXPECT_EQ(got->sample_rate_hz, 25600);
  EXPECT_EQ(got->units, AccelUnits::m_per_s2);
  ASSERT_EQ(got->samples.size(), sn.samples.size());
  EXPECT_EQ(std::memcmp(got->samples.data(), sn.samples.data(), sn.samples.size() * 4), 0);
  EXPECT_FALSE(store->snapshot_for_alert(43));

  auto ms = store->models("pump1");
  ASSERT_EQ(ms.size(), 2u);
  EXPECT_EQ(ms[0].version, "2");
  EXPECT_EQ(ms[1].state, "active");
  EXPECT_EQ(ms[1].note, "promoted");
  EXPECT_EQ(ms[1].path, "/m/3.vgm");
  EXPECT_TRUE(store->models("fan2").empty());

  auto recs = fetch_sync(*store, Lane::bulk, 0, 100);
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[1].kind, RecordKind::health);
  EXPECT_EQ(recs[1].asset, "plc1");
  EXPECT_EQ(std::get<std::string>(find_metric(recs[1], "state")->value), "offline");
  EXPECT_EQ(std::get<std::string>(find_metric(recs[1], "detail")->value),
            "timeout after 3 retries");

  // Snapshot samples are stored little-endian float32, independent of the host.
  RawDb raw(dir.file("g.db"), SQLITE_OPEN_READONLY);
  EXPECT_EQ(raw.integer("SELECT length(samples) FROM snapshots"),
            static_cast<std::int64_t>(sn.samples.size() * 4));
  EXPECT_EQ(raw.text("SELECT hex(substr(samples, -4)) FROM snapshots"),
            "EEE36C00");  // 1e-38f = 0x006CE3EE
}

TEST(StoreTest, OutboxOrderingFetchAcknowledgeStats) {
  TempDir dir;
  auto o = options_for(dir.file("g.db"));
  o.commit_interval = 10s;  // nothing commits unless we flush
  auto store = open_ok(o);
  ASSERT_TRUE(store);
  std::atomic<int> grew{0};
  store->on_outbox_grew([&] { grew++; });
  for (int i = 0; i < 60; ++i)
    store->submit_result(make_result(i % 2 ? "pump1" : "fan2", 1000 + i));
  store->submit_alert_event(make_raise("pump1", 2000));
  store->flush();
  EXPECT_EQ(grew.load(), 1);

  auto os = store->outbox_stats();
  EXPECT_EQ(os.lanes[static_cast<int>(Lane::bulk)].depth, 60u);
  EXPECT_EQ(os.lanes[static_cast<int>(Lane::bulk)].oldest_wall_ms, 1000);
  EXPECT_EQ(os.lanes[static_cast<int>(Lane::alert)].depth, 1u);
  EXPECT_EQ(os.lanes[static_cast<int>(Lane::alert)].oldest_wall_ms, 2000);

  auto all = fetch_sync(*store, Lane::bulk, 0, 1000);
  ASSERT_EQ(all.size(), 60u);
  std::map<std::string, std::int64_t> last_per_asset;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (i) {
      EXPECT_GT(all[i].id, all[i - 1].id);
    }
    EXPECT_EQ(all[i].wall_ms, 1000 + static_cast<std::int64_t>(i));  // submission order
    EXPECT_GT(all[i].wall_ms, last_per_asset[all[i].asset]);
    last_per_asset[all[i].asset] = all[i].wall_ms;
  }
  EXPECT_EQ(os.lanes[static_cast<int>(Lane::bulk)].max_id, all.back().id);
  // after_id / max.
  auto page = fetch_sync(*store, Lane::bulk, all[9].id, 5);
  ASSERT_EQ(page.size(), 5u);
  EXPECT_EQ(page[0].id, all[10].id);
  EXPECT_EQ(page[4].id, all[14].id);
  EXPECT_TRUE(fetch_sync(*store, Lane::bulk, all.back().id, 10).empty());
  EXPECT_TRUE(fetch_sync(*store, Lane::bulk, 0, 0).empty());
  auto alerts = fetch_sync(*store, Lane::alert, 0, 10);
  ASSERT_EQ(alerts.size(), 1u);

  // Acknowledge the first 20: hidden at once, still in the file until the next commit.
  std::vector<std::uint64_t> acked;
  for (int i = 0; i < 20; ++i) acked.push_back(all[i].id);
  store->acknowledge(acked);
  auto rest = fetch_sync(*store, Lane::bulk, 0, 1000);
  ASSERT_EQ(rest.size(), 40u);
  EXPECT_EQ(rest[0].id, all[20].id);
  {
    RawDb raw(dir.file("g.db"), SQLITE_OPEN_READONLY);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM outbox WHERE lane = 1"), 60);
  }
  store->flush();
  {
    RawDb raw(dir.file("g.db"), SQLITE_OPEN_READONLY);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM outbox WHERE lane = 1"), 40);
    // delivered results: their outbox entry is gone
    EXPECT_EQ(raw.integer("SELECT count(*) FROM results r WHERE NOT EXISTS "
                          "(SELECT 1 FROM outbox o WHERE o.id = r.outbox_id)"),
              20);
  }
  os = store->outbox_stats();
  EXPECT_EQ(os.lanes[static_cast<int>(Lane::bulk)].depth, 40u);
  EXPECT_EQ(os.lanes[static_cast<int>(Lane::bulk)].oldest_wall_ms, 1020);
  EXPECT_EQ(grew.load(), 1);  // an ack-only commit adds nothing
  EXPECT_EQ(fetch_sync(*store, Lane::bulk, 0, 1000).size(), 40u);

  // Ids are never reused, even when the newest entries are deleted and the store reopened.
  const std::uint64_t max_id = all.back().id;
  std::vector<std::uint64_t> everything;
  for (const auto& r : rest) everything.push_back(r.id);
  everything.push_back(alerts[0].id);
  store->acknowledge(everything);
  store->flush();
  EXPECT_EQ(store->outbox_stats().lanes[1].depth, 0u);
  EXPECT_EQ(store->outbox_stats().lanes[1].oldest_wall_ms, 0);
  store.reset();
  store = open_ok(o);
  ASSERT_TRUE(store);
  os = store->outbox_stats();
  EXPECT_EQ(os.lanes[1].depth, 0u);
  EXPECT_EQ(os.lanes[1].max_id, max_id);  // persisted, not recomputed from an empty table
  Collected c;
  store->submit_result(make_result("pump1", 9000), c.cb());
  store->flush();
  auto fresh = fetch_sync(*store, Lane::bulk, 0, 10);
  ASSERT_EQ(fresh.size(), 1u);
  EXPECT_GT(fresh[0].id, std::max(max_id, alerts[0].id));
}

TEST(StoreTest, StatsInitializedFromDatabaseAtOpen) {
  TempDir dir;
  auto o = options_for(dir.file("g.db"));
  {
    auto store = open_ok(o);
    ASSERT_TRUE(store);
    for (int i = 0; i < 25; ++i) store->submit_result(make_result("pump1", 100 + i));
    store->submit_alert_event(make_raise("pump1", 50));
    store->submit_alert_event(make_raise("pump1", 60));
  }  // destructor commits what is queued
  auto store = open_ok(o);
  ASSERT_TRUE(store);
  auto os = store->outbox_stats();
  EXPECT_EQ(os.lanes[1].depth, 25u);
  EXPECT_EQ(os.lanes[1].oldest_wall_ms, 100);
  EXPECT_EQ(os.lanes[0].depth, 2u);
  EXPECT_EQ(os.lanes[0].oldest_wall_ms, 50);
  EXPECT_EQ(store->recent_scores("pump1", 0, 1000).size(), 25u);
}

TEST(StoreTest, QueueFullRefusalIsCounted) {
  TempDir dir;
  auto o = options_for(dir.file("g.db"));
  o.commit_interval = 10s;
  o.max_queued_rows = 10;
  auto store = open_ok(o);
  ASSERT_TRUE(store);
  Collected c;
  for (int i = 0; i < 15; ++i) store->submit_result(make_result("pump1", i), c.cb());
  ASSERT_EQ(c.size(), 5u);  // refused inline
  for (auto& [ec, id] : c.calls) {
    EXPECT_EQ(ec, make_error_code(StoreErrc::queue_full));
    EXPECT_EQ(id, 0u);
  }
  auto st = store->stats();
  EXPECT_EQ(st.refused_rows, 5u);
  EXPECT_EQ(st.queued_rows, 10u);
  store->flush();
  EXPECT_EQ(c.size(), 15u);
  EXPECT_EQ(store->recent_scores("pump1", 0, 100).size(), 10u);
  EXPECT_EQ(store->stats().queued_rows, 0u);
}

TEST(StoreTest, GroupCommitByRowCountAndInterval) {
  TempDir dir;
  auto o = options_for(dir.file("g.db"));
  o.commit_interval = 10s;
  o.commit_rows = 100;
  auto store = open_ok(o);
  ASSERT_TRUE(store);
  Collected c;
  for (int i = 0; i < 250; ++i) store->submit_result(make_result("pump1", i), c.cb());
  // 200 go in two commits of commit_rows without any flush; 50 wait for the interval.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (c.size() < 200 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  EXPECT_EQ(c.size(), 200u);
  EXPECT_EQ(store->stats().commits, 2u);
  store.reset();
  EXPECT_EQ(c.size(), 250u);  // the destructor's final commit

  o.commit_interval = 50ms;
  store = open_ok(o);
  Collected d;
  store->submit_result(make_result("pump1", 1000), d.cb());
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(d.size(), 0u);
  const auto t1 = std::chrono::steady_clock::now() + 5s;
  while (d.size() < 1 && std::chrono::steady_clock::now() < t1) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(d.size(), 1u);
}

TEST(StoreTest, DurabilityNames) {
  EXPECT_EQ(parse_durability("balanced"), Durability::balanced);
  EXPECT_EQ(parse_durability("full"), Durability::full);
  EXPECT_FALSE(parse_durability("fast"));
  EXPECT_STREQ(to_string(Durability::full), "full");
  EXPECT_STREQ(to_string(AlertState::acknowledged), "acknowledged");
  EXPECT_EQ(make_error_code(StoreErrc::corrupt).category().name(), std::string("vibgate.storage"));
}

// ---- schema ----

std::string read_file(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(StoreSchemaTest, MigratesFromEveryEarlierVersionFixture) {
  const std::string dir_path = VIBGATE_STORAGE_SCHEMA_DIR;
  // Every earlier version has a fixture: bumping kSchemaVersion without adding one fails here.
  for (int v = 0; v < kSchemaVersion; ++v) {
    std::string f = dir_path + "/v" + std::to_string(v) + ".sql";
    EXPECT_TRUE(std::filesystem::exists(f)) << "missing fixture " << f;
  }
  int tested = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_path)) {
    if (entry.path().extension() != ".sql") continue;
    SCOPED_TRACE(entry.path().string());
    TempDir dir;
    const std::string db = dir.file("old.db");
    {
      RawDb raw(db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
      ASSERT_TRUE(raw.exec(read_file(entry.path())));
    }
    std::int64_t old_version;
    {
      RawDb raw(db);
      old_version = raw.integer("PRAGMA user_version");
    }
    EXPECT_LT(old_version, kSchemaVersion);
    {
      auto store = open_ok(options_for(db));
      ASSERT_TRUE(store);
      Collected c;
      store->submit_result(make_result("pump1", 10), c.cb());
      store->submit_alert_event(make_raise("pump1", 11), c.cb());
      store->flush();
      ASSERT_EQ(c.size(), 2u);
      EXPECT_FALSE(c.calls[0].first);
      EXPECT_FALSE(c.calls[1].first);
      EXPECT_EQ(store->recent_scores("pump1", 0, 100).size(), 1u);
      EXPECT_EQ(fetch_sync(*store, Lane::alert, 0, 10).size(), 1u);
    }
    RawDb raw(db);
    EXPECT_EQ(raw.integer("PRAGMA user_version"), kSchemaVersion);
    EXPECT_EQ(raw.text("PRAGMA journal_mode"), "wal");
    EXPECT_EQ(raw.integer("PRAGMA auto_vacuum"), 2);  // incremental
    EXPECT_EQ(raw.text("PRAGMA integrity_check"), "ok");
    for (const char* t : {"results", "alerts", "alert_events", "outbox", "health_events",
                          "snapshots", "models", "meta"})
      EXPECT_EQ(raw.integer(std::string("SELECT count(*) FROM sqlite_master WHERE type='table' "
                                        "AND name='") +
                            t + "'"),
                1)
          << t;
    ++tested;
  }
  EXPECT_GE(tested, kSchemaVersion);
}

TEST(StoreSchemaTest, NewerSchemaIsRefusedWithMessage) {
  TempDir dir;
  const std::string db = dir.file("new.db");
  {
    RawDb raw(db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    raw.exec("CREATE TABLE future(x); PRAGMA user_version = " + std::to_string(kSchemaVersion + 1));
  }
  auto r = Store::open(options_for(db));
  EXPECT_FALSE(r.store);
  EXPECT_EQ(r.error, make_error_code(StoreErrc::newer_schema));
  EXPECT_EQ(r.message, db + ": written by a newer vibgate (schema " +
                           std::to_string(kSchemaVersion + 1) + ", this build reads up to " +
                           std::to_string(kSchemaVersion) + ")");
  // Left untouched.
  RawDb raw(db);
  EXPECT_EQ(raw.integer("PRAGMA user_version"), kSchemaVersion + 1);
}

TEST(StoreSchemaTest, GarbageFileIsRefusedAsCorrupt) {
  TempDir dir;
  const std::string db = dir.file("junk.db");
  {
    std::ofstream f(db, std::ios::binary);
    std::mt19937 rng(7);
    for (int i = 0; i < 8192; ++i) f.put(static_cast<char>(rng() & 0xff));
  }
  auto r = Store::open(options_for(db));
  EXPECT_FALSE(r.store);
  EXPECT_EQ(r.error, make_error_code(StoreErrc::corrupt));
  EXPECT_EQ(r.message.rfind(db + ": ", 0), 0u) << r.message;
  EXPECT_EQ(r.message.find('\n'), std::string::npos);
  EXPECT_EQ(file_size(db), 8192u);  // not modified
}

// Builds a valid store file with some content, closed (checkpointed, no WAL left).
void build_database(const std::string& db, int rows) {
  auto store = open_ok(options_for(db));
  ASSERT_TRUE(store);
  for (int i = 0; i < rows; ++i) store->submit_result(make_result("pump1", i));
  store->flush();
}

TEST(StoreSchemaTest, OverwrittenPageIsRefusedAsCorrupt) {
  TempDir dir;
  const std::string db = dir.file("g.db");
  build_database(db, 3000);
  const auto size = file_size(db);
  ASSERT_GT(size, 100u * 4096u);
  {
    std::fstream f(db, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(static_cast<std::streamoff>((size / 4096 / 2) * 4096));
    std::mt19937 rng(11);
    for (int i = 0; i < 4096; ++i) f.put(static_cast<char>(rng() & 0xff));
  }
  auto r = Store::open(options_for(db));
  EXPECT_FALSE(r.store);
  EXPECT_EQ(r.error, make_error_code(StoreErrc::corrupt)) << r.message;
  EXPECT_EQ(r.message.rfind(db + ": ", 0), 0u) << r.message;
  EXPECT_NE(r.message.find("quick_check"), std::string::npos) << r.message;
}

TEST(StoreSchemaTest, MoveAsideReplacesBadDatabaseWithNotice) {
  TempDir dir;
  const std::string db = dir.file("g.db");
  {
    std::ofstream f(db, std::ios::binary);
    f << std::string(5000, 'x');
  }
  {
    std::ofstream f(db + "-wal", std::ios::binary);
    f << "stale wal";
  }
  auto o = options_for(db);
  o.move_aside_bad_database = true;
  auto r = Store::open(o);
  ASSERT_TRUE(r.store) << r.message;
  EXPECT_FALSE(r.error);
  EXPECT_NE(r.notice.find("moved corrupt database " + db + " aside to " + db + ".bad-"),
            std::string::npos)
      << r.notice;
  std::vector<std::string> moved;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    const auto name = e.path().filename().string();
    if (name.rfind("g.db.bad-", 0) == 0) moved.push_back(name);
  }
  // The file and its -wal (kept as they were), and the -shm SQLite created while checking.
  ASSERT_GE(moved.size(), 2u);
  std::sort(moved.begin(), moved.end());
  EXPECT_EQ(moved[0].size(), std::string("g.db.bad-20250101T000000Z").size());
  EXPECT_EQ(moved.back(), moved[0] + "-wal");
  EXPECT_EQ(file_size(dir.path() + "/" + moved.back()), 9u);
  EXPECT_EQ(file_size(dir.path() + "/" + moved[0]), 5000u);
  // The fresh database works.
  Collected c;
  r.store->submit_result(make_result("pump1", 1), c.cb());
  r.store->flush();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_FALSE(c.calls[0].first);
  r.store.reset();

  // A newer file is moved aside too.
  {
    RawDb raw(db);
    raw.exec("PRAGMA user_version = 99");
  }
  std::this_thread::sleep_for(1100ms);  // distinct UTC second in the name
  auto r2 = Store::open(o);
  ASSERT_TRUE(r2.store) << r2.message;
  EXPECT_NE(r2.notice.find("moved newer database"), std::string::npos) << r2.notice;
  EXPECT_NE(r2.notice.find("schema 99"), std::string::npos) << r2.notice;
}

// ---- commit failures (fault-injecting VFS) ----

TEST(StoreFaultTest, FailedCommitKeepsRowsAndRetries) {
  fault_vfs::install();
  TempDir dir;
  auto o = options_for(dir.file("g.db"));
  o.vfs_name = fault_vfs::kName;
  auto store = open_ok(o);
  ASSERT_TRUE(store);
  Collected first;
  store->submit_result(make_result("pump1", 1), first.cb());
  store->flush();
  ASSERT_EQ(first.size(), 1u);

  const long injected_before = fault_vfs::injected();
  fault_vfs::set_full(true);
  Collected c;
  store->submit_alert_event(make_raise("pump1", 2), c.cb());
  store->submit_result(make_result("pump1", 3), c.cb());
  store->submit_health(HealthEvent{"plc1", 4, "offline", "x"}, c.cb());
  // Several commit attempts fail (interval 20 ms, backoff from 50 ms).
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (fault_vfs::injected() - injected_before < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  std::this_thread::sleep_for(200ms);
  EXPECT_GE(fault_vfs::injected() - injected_before, 3);
  EXPECT_EQ(c.size(), 0u);  // nothing reported committed
  auto st = store->stats();
  EXPECT_EQ(st.queued_rows, 3u);
  EXPECT_NE(st.last_error.find("commit failed"), std::string::npos) << st.last_error;
  EXPECT_EQ(store->recent_scores("pump1", 0, 100).size(), 1u);  // reader sees the old state
  EXPECT_TRUE(store->alerts().empty());

  fault_vfs::clear();
  store->flush();
  ASSERT_EQ(c.size(), 3u);
  for (auto& [ec, id] : c.calls) {
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_GT(id, 0u);
  }
  EXPECT_EQ(store->recent_scores("pump1", 0, 100).size(), 2u);
  EXPECT_EQ(store->alerts().size(), 1u);
  EXPECT_EQ(fetch_sync(*store, Lane::alert, 0, 10).size(), 1u);
  EXPECT_EQ(fetch_sync(*store, Lane::bulk, 0, 10).size(), 3u);
  st = store->stats();
  EXPECT_TRUE(st.last_error.empty()) << st.last_error;
  EXPECT_EQ(store->outbox_stats().lanes[1].depth, 3u);
  store.reset();
  RawDb raw(dir.file("g.db"));
  EXPECT_EQ(raw.text("PRAGMA integrity_check"), "ok");
}

TEST(StoreFaultTest, ClosingWithAFailingDiskReportsIoError) {
  fault_vfs::install();
  TempDir dir;
  auto o = options_for(dir.file("g.db"));
  o.vfs_name = fault_vfs::kName;
  o.commit_interval = 10s;
  auto store = open_ok(o);
  ASSERT_TRUE(store);
  Collected c;
  fault_vfs::set_full(true);
  store->submit_result(make_result("pump1", 1), c.cb());
  store.reset();
  fault_vfs::clear();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c.calls[0].first, make_error_code(StoreErrc::io_error));
}

}  // namespace
}  // namespace vibgate::storage::test
