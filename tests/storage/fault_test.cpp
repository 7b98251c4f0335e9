// tests/storage/fault_test.cpp — injected I/O faults looped over N, SQLite's way: for each N the
// Nth write, fsync or open from a moment on fails (once, or from then on for a while), and the
// store must neither crash nor lose or duplicate anything it completed: every submitted row is
// completed exactly once without error once the fault has passed, the file passes
// integrity_check, and each row has its outbox entry. Opening under a failing disk must fail
// with a one-line message naming the file, and work afterwards.
#include <gtest/gtest.h>

#include <cstdio>

#include "fault_vfs.hpp"  // tests/fault
#include "test_util.hpp"

namespace vibgate::storage::test {
namespace {

using namespace std::chrono_literals;
namespace fault_vfs = vibgate::test::fault_vfs;

constexpr int kBatches = 4;
constexpr int kResultsPerBatch = 25;

struct LoopOutcome {
  long injected = 0;
  std::size_t completed_ok = 0;
  std::size_t completed_err = 0;
};

// One round: a fresh store; the fault rule is armed after open; kBatches of one alert raise and
// kResultsPerBatch results, each batch flushed. `lift_after` > 0 lifts a persistent fault after
// that long (the writer keeps retrying meanwhile).
LoopOutcome run_round(fault_vfs::Op op, long n, bool persist,
                      std::chrono::milliseconds lift_after) {
  LoopOutcome out;
  TempDir dir;
  auto o = options_for(dir.file("f.db"));
  o.vfs_name = fault_vfs::kName;
  o.commit_interval = 5ms;
  auto r = Store::open(o);
  if (!r.store) {
    ADD_FAILURE() << r.message;
    return out;
  }
  const long before = fault_vfs::injected();
  fault_vfs::fail_nth(op, n, persist);
  Collected c;
  const auto armed = std::chrono::steady_clock::now();
  bool lifted = !persist;
  for (int b = 0; b < kBatches; ++b) {
    r.store->submit_alert_event(make_raise("pump1", b * 100), c.cb());
    for (int k = 0; k < kResultsPerBatch; ++k)
      r.store->submit_result(make_result("pump1", b * 100 + k + 1), c.cb());
    if (!lifted && std::chrono::steady_clock::now() - armed >= lift_after) {
      fault_vfs::clear();
      lifted = true;
    }
    if (lifted)
      r.store->flush();
    else
      std::this_thread::sleep_for(20ms);  // a commit (attempt) per batch
  }
  if (!lifted) {
    std::this_thread::sleep_for(lift_after);
    if (fault_vfs::injected() > before) {
      EXPECT_FALSE(r.store->stats().last_error.empty()) << "a persistent fault left no error";
    }
    fault_vfs::clear();
  }
  r.store->flush();
  out.injected = fault_vfs::injected() - before;
  for (auto& [ec, id] : c.calls) {
    if (ec)
      ++out.completed_err;
    else
      ++out.completed_ok;
  }
  EXPECT_TRUE(r.store->stats().last_error.empty()) << r.store->stats().last_error;
  EXPECT_EQ(r.store->stats().queued_rows, 0u);
  r.store.reset();
  RawDb raw(dir.file("f.db"));
  EXPECT_EQ(raw.text("PRAGMA integrity_check"), "ok");
  EXPECT_EQ(raw.integer("SELECT count(*) FROM results"), kBatches * kResultsPerBatch);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM alerts"), kBatches);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM outbox WHERE lane = 1"), kBatches * kResultsPerBatch);
  EXPECT_EQ(raw.integer("SELECT count(*) FROM outbox WHERE lane = 0"), kBatches);
  return out;
}

void loop(fault_vfs::Op op, const char* name, long max_n, bool persist) {
  fault_vfs::install();
  long injected = 0;
  long n = 1;
  for (; n <= max_n; ++n) {
    SCOPED_TRACE(std::string(name) + " #" + std::to_string(n) + (persist ? " persist" : ""));
    const auto out = run_round(op, n, persist, persist ? 150ms : 0ms);
    EXPECT_EQ(out.completed_ok, static_cast<std::size_t>(kBatches * (kResultsPerBatch + 1)));
    EXPECT_EQ(out.completed_err, 0u);
    injected += out.injected;
    if (::testing::Test::HasFailure()) break;
    if (out.injected == 0) break;  // N beyond the calls a round makes: every case covered
  }
  fault_vfs::clear();
  std::printf("%s faults: N = 1..%ld%s, %ld injected, every row kept\n", name, n - 1,
              persist ? " (persistent for 150 ms)" : "", injected);
  EXPECT_GT(injected, 0);
}

TEST(StoreFaultLoopTest, NthWriteFailsOnce) { loop(fault_vfs::Op::write, "write", 400, false); }
TEST(StoreFaultLoopTest, NthSyncFailsOnce) { loop(fault_vfs::Op::sync, "fsync", 100, false); }
TEST(StoreFaultLoopTest, WritesFailFromNthOnForAWhile) {
  loop(fault_vfs::Op::write, "write", 40, true);
}
TEST(StoreFaultLoopTest, SyncsFailFromNthOnForAWhile) {
  loop(fault_vfs::Op::sync, "fsync", 12, true);
}

// Opening (creating, migrating) under a failing disk: a clean one-line error, never a crash or a
// half-made file that the next open refuses.
TEST(StoreFaultLoopTest, OpenUnderFaultsFailsCleanlyAndRecovers) {
  fault_vfs::install();
  int refused = 0, opened = 0;
  for (auto op : {fault_vfs::Op::open, fault_vfs::Op::write, fault_vfs::Op::sync}) {
    for (long n = 1; n <= 30; ++n) {
      SCOPED_TRACE("op " + std::to_string(static_cast<int>(op)) + " #" + std::to_string(n));
      TempDir dir;
      auto o = options_for(dir.file("o.db"));
      o.vfs_name = fault_vfs::kName;
      fault_vfs::fail_nth(op, n, /*persist=*/true);
      auto r = Store::open(o);
      fault_vfs::clear();
      if (r.store) {
        ++opened;
        r.store.reset();
      } else {
        ++refused;
        EXPECT_NE(r.message.find(dir.file("o.db")), std::string::npos) << r.message;
        EXPECT_EQ(r.message.find('\n'), std::string::npos) << r.message;
      }
      auto again = Store::open(o);
      ASSERT_TRUE(again.store) << "after the fault: " << again.message;
      Collected c;
      again.store->submit_result(make_result("pump1", 1), c.cb());
      again.store->flush();
      ASSERT_EQ(c.size(), 1u);
      EXPECT_FALSE(c.calls[0].first);
      again.store.reset();
      RawDb raw(dir.file("o.db"));
      EXPECT_EQ(raw.text("PRAGMA integrity_check"), "ok");
    }
  }
  std::printf("open under faults: %d refused cleanly, %d opened (fault after open)\n", refused,
              opened);
  EXPECT_GT(refused, 10);
}

}  // namespace
}  // namespace vibgate::storage::test
