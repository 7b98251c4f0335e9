// tests/storage/quota_test.cpp — the byte quota: sustained overflow keeps the file within 2 % of
// the quota with every eviction counted (and the counters persistent), delivered results go
// before undelivered entries, undelivered alerts survive while anything else can go, and are
// dropped only above the hard cap.
#include <gtest/gtest.h>

#include "test_util.hpp"

namespace vibgate::storage::test {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kMiB = 1ull << 20;

std::unique_ptr<Store> open_ok(const StoreOptions& o) {
  auto r = Store::open(o);
  EXPECT_FALSE(r.error) << r.message;
  return std::move(r.store);
}

// Bytes of a result row as written (row + outbox entry + index entries), roughly: used to size
// the runs in multiples of the quota.
constexpr std::uint64_t kApproxResultBytes = 700;

TEST(StoreQuotaTest, SustainedOverflowStaysWithinQuotaAndCountsEvictions) {
  TempDir dir;
  auto o = options_for(dir.file("g.db"));
  o.quota_bytes = 4 * kMiB;
  auto store = open_ok(o);
  ASSERT_TRUE(store);
  // Undelivered alerts first: they must survive everything below.
  for (int i = 0; i < 5; ++i) store->submit_alert_event(make_raise("pump1", i));
  const std::uint64_t total = 20 * o.quota_bytes / kApproxResultBytes;  // ~20x the quota
  std::uint64_t max_file = 0, max_wal = 0;
  for (std::uint64_t i = 0; i < total; ++i) {
    store->submit_result(make_result(i % 3 ? "pump1" : "fan2", static_cast<std::int64_t>(i)));
    if (i % 5000 == 4999) {
      store->flush();
      const auto st = store->stats();
      max_file = std::max(max_file, st.file_bytes);
      max_wal = std::max(max_wal, st.wal_bytes);
      EXPECT_LE(st.used_bytes, o.quota_bytes);
    }
  }
  store->flush();
  const auto st = store->stats();
  EXPECT_EQ(st.rows_written, total + 5);
  EXPECT_GT(st.evicted_results, 0u);
  EXPECT_GT(st.evicted_outbox_bulk, 0u);
  EXPECT_EQ(st.evicted_outbox_alerts, 0u);
  EXPECT_EQ(st.evicted_alerts, 0u);
  EXPECT_EQ(store->outbox_stats().evicted_undelivered, st.evicted_outbox_bulk);
  // The main file never passed the quota + 2 % at a flush; the WAL stays bounded too.
  EXPECT_LE(max_file, o.quota_bytes * 102 / 100);
  EXPECT_LE(max_wal, 4 * kMiB);
  // All 5 alerts and their outbox entries are still there.
  EXPECT_EQ(store->alerts().size(), 5u);
  EXPECT_EQ(store->outbox_stats().lanes[0].depth, 5u);
  EXPECT_EQ(store->outbox_stats().lanes[1].depth, total - st.evicted_outbox_bulk);
  store.reset();

  // After close (WAL checkpointed): file + WAL within 2 % of the quota.
  const auto db_bytes = file_size(o.path);
  const auto wal_bytes = file_size(o.path + "-wal");
  EXPECT_LE(db_bytes + wal_bytes, o.quota_bytes * 102 / 100)
      << "db " << db_bytes << " wal " << wal_bytes;
  EXPECT_GT(db_bytes, o.quota_bytes / 2);  // and it is actually used
  {
    RawDb raw(o.path);
    // Counters equal what is missing.
    EXPECT_EQ(static_cast<std::uint64_t>(raw.integer("SELECT count(*) FROM results")),
              total - st.evicted_results);
    EXPECT_EQ(static_cast<std::uint64_t>(raw.integer("SELECT count(*) FROM outbox WHERE lane=1")),
              total - st.evicted_outbox_bulk);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM outbox WHERE lane=0"), 5);
    EXPECT_EQ(raw.integer("SELECT count(*) FROM alerts"), 5);
    // The newest rows are the ones kept.
    EXPECT_EQ(static_cast<std::uint64_t>(raw.integer("SELECT max(wall_ms) FROM results")),
              total - 1);
    EXPECT_EQ(raw.text("PRAGMA integrity_check"), "ok");
  }
  // Counters are persistent.
  store = open_ok(o);
  ASSERT_TRUE(store);
  const auto again = store->stats();
  EXPECT_EQ(again.evicted_results, st.evicted_results);
  EXPECT_EQ(again.evicted_outbox_bulk, st.evicted_outbox_bulk);
  EXPECT_EQ(store->outbox_stats().evicted_undelivered, st.evicted_outbox_bulk);
}

TEST(StoreQuotaTest, DeliveredResultsAreEvictedBeforeUndeliveredEntries) {
  TempDir dir;
  auto o = options_for(dir.file("g.db"));
  o.quota_bytes = 2 * kMiB;
  auto store = open_ok(o);
  ASSERT_TRUE(store);
  std::uint64_t after = 0;
  const std::uint64_t total = 8 * o.quota_bytes / kApproxResultBytes;
  for (std::uint64_t i = 0; i < total; ++i) {
    store->submit_result(make_result("pump1", static_cast<std::int64_t>(i)));
    store->submit_health(HealthEvent{"plc1", static_cast<std::int64_t>(i), "online", ""});
    if (i % 1000 == 999) {  // a healthy uplink: everything is delivered promptly
      store->flush();
      for (;;) {
        auto recs = fetch_sync(*store, Lane::bulk, after, 5000);
        if (recs.empty()) break;
        std::vector<std::uint64_t> ids;
        for (const auto& r : recs) ids.push_back(r.id);
        after = ids.back();
        store->acknowledge(ids);
      }
    }
  }
  store->flush();
  const auto st = store->stats();
  EXPECT_GT(st.evicted_results, 0u);
  EXPECT_EQ(st.evicted_outbox_bulk, 0u);
  EXPECT_EQ(st.evicted_health, 0u);  // the next class is not touched while results can go
  RawDb raw(o.path, SQLITE_OPEN_READONLY);
  EXPECT_EQ(static_cast<std::uint64_t>(raw.integer("SELECT count(*) FROM health_events")), total);
  EXPECT_LE(st.file_bytes, o.quota_bytes * 102 / 100);
}

std::string big_reason(int i) {
  std::string s = "alert ";
  s += std::to_string(i);
  s += ' ';
  s.append(900, 'r');
  return s;
}

TEST(StoreQuotaTest, ClosedDeliveredAlertsGoButUndeliveredOnlyAboveHardCap) {
  TempDir dir;
  auto o = options_for(dir.file("g.db"));
  o.quota_bytes = 1 * kMiB;
  o.hard_cap_bytes = 2 * kMiB;
  auto store = open_ok(o);
  ASSERT_TRUE(store);

  // Phase 1: closed and delivered alerts overflow the quota: they are evicted, nothing else.
  std::uint64_t after = 0;
  for (int round = 0; round < 10; ++round) {
    std::vector<std::uint64_t> raised(100, 0);
    for (int i = 0; i < 100; ++i)
      store->submit_alert_event(make_raise("pump1", round * 100 + i, big_reason(i)),
                                [&raised, i](std::error_code, std::uint64_t v) { raised[i] = v; });
    store->flush();
    for (int i = 0; i < 100; ++i) {
      AlertEvent clear;
      clear.kind = AlertState::cleared;
      clear.alert_id = raised[i];
      clear.wall_ms = round * 100 + i;
      store->submit_alert_event(clear);
    }
    store->flush();
    auto recs = fetch_sync(*store, Lane::alert, after, 100000);
    std::vector<std::uint64_t> ids;
    for (const auto& r : recs) ids.push_back(r.id);
    if (!ids.empty()) after = ids.back();
    store->acknowledge(ids);
  }
  store->flush();
  auto st = store->stats();
  EXPECT_GT(st.evicted_alerts, 0u);
  EXPECT_EQ(st.evicted_outbox_alerts, 0u);
  EXPECT_LE(st.file_bytes, o.quota_bytes * 102 / 100);

  // Phase 2: undelivered (open) alerts beyond the quota but below the hard cap are all kept.
  const auto before = st.evicted_alerts;
  int kept = 0;
  for (; st.used_bytes < o.quota_bytes * 3 / 2; ++kept) {
    store->submit_alert_event(make_raise("fan2", 100000 + kept, big_reason(kept)));
    if (kept % 50 == 49) {
      store->flush();
      st = store->stats();
    }
    ASSERT_LT(kept, 100000);
  }
  store->flush();
  st = store->stats();
  EXPECT_GT(st.used_bytes, o.quota_bytes);
  EXPECT_EQ(st.evicted_outbox_alerts, 0u);
  EXPECT_GE(static_cast<int>(store->alerts(AlertState::raised, 1000000).size()), kept);
  EXPECT_GE(st.evicted_alerts, before);

  // Phase 3: past the hard cap the oldest undelivered alert entries go, and only those.
  for (int i = 0; i < 2000; ++i) {
    store->submit_alert_event(make_raise("fan2", 200000 + i, big_reason(i)));
    if (i % 500 == 499) {
      store->flush();
      EXPECT_LE(store->stats().file_bytes, o.hard_cap_bytes * 102 / 100);
    }
  }
  store->flush();
  st = store->stats();
  EXPECT_GT(st.evicted_outbox_alerts, 0u);
  EXPECT_LE(st.file_bytes, o.hard_cap_bytes * 102 / 100);
  EXPECT_EQ(store->outbox_stats().evicted_undelivered, st.evicted_outbox_alerts);
  // The newest alert entries are the ones kept.
  const auto last = fetch_sync(*store, Lane::alert, 0, 1000000);
  ASSERT_FALSE(last.empty());
  EXPECT_EQ(last.back().wall_ms, 200000 + 1999);
}

}  // namespace
}  // namespace vibgate::storage::test
