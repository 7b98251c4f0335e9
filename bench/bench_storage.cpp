// bench_storage.cpp — the durable store's write path (Google Benchmark).
//   BM_OutboxEnqueue: submit N realistic ResultRows (8 feature metrics, uplink on: a results row
//     and an outbox entry each) in the default balanced mode with group commit, then flush();
//     reports rows/s (target >= 50 000 rows/s, docs/storage.md).
//   BM_SustainedOverflow: writes 20x a 4 MiB quota; reports the final file size (db + WAL after
//     the final checkpoint) over the quota.
// Files live in a mkdtemp directory under /tmp (use a real disk, not tmpfs, for meaningful fsync).
#include <benchmark/benchmark.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "vibgate/storage/store.hpp"

namespace {

using namespace vibgate;
using namespace vibgate::storage;

std::string temp_dir() {
  char tmpl[] = "/tmp/vibgate-bench-storage-XXXXXX";
  const char* d = ::mkdtemp(tmpl);
  return d ? d : "/tmp";
}

std::uint64_t file_size(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

ResultRow make_row(std::int64_t i) {
  // Copies of prepared strings (GCC 12 -O3 reports a false -Wrestrict on literal assignment here).
  static const std::string kAssets[4] = {"pump1", "pump2", "fan1", "fan2"};
  static const std::string kChannels[4] = {"pump1/de_accel", "pump2/de_accel", "fan1/de_accel",
                                           "fan2/de_accel"};
  static const std::string kModel = "3";
  ResultRow r;
  r.asset = kAssets[i % 4];
  r.channel = kChannels[i % 4];
  r.wall_ms = 1700000000000 + i * 100;
  r.score = 0.42;
  r.iso_zone = 2;
  r.velocity_rms_mm_s = 2.8;
  r.model_version = kModel;
  const char* names[] = {"rms_g",     "peak_g",    "crest",     "kurtosis",
                         "band_0_1k", "band_1_2k", "band_2_5k", "band_5_10k"};
  double v = 0.11;
  for (const char* n : names) r.features.push_back(Metric{n, v += 0.37});
  return r;
}

void BM_OutboxEnqueue(benchmark::State& state) {
  const auto n = static_cast<std::int64_t>(state.range(0));
  const std::string dir = temp_dir();
  StoreOptions o;
  o.path = dir;
  o.path += "/bench.db";
  o.quota_bytes = 0;  // throughput of the write path alone
  auto r = Store::open(o);
  if (!r.store) {
    state.SkipWithError(r.message.c_str());
    return;
  }
  std::vector<ResultRow> rows;
  for (std::int64_t i = 0; i < n; ++i) rows.push_back(make_row(i));
  std::int64_t total = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto copy = rows;
    state.ResumeTiming();
    for (auto& row : copy) r.store->submit_result(std::move(row));
    r.store->flush();
    total += n;
  }
  state.counters["rows_per_s"] =
      benchmark::Counter(static_cast<double>(total), benchmark::Counter::kIsRate);
  state.counters["commits"] = static_cast<double>(r.store->stats().commits);
  r.store.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_OutboxEnqueue)->Arg(20000)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_SustainedOverflow(benchmark::State& state) {
  const std::uint64_t quota = 4ull << 20;
  for (auto _ : state) {
    const std::string dir = temp_dir();
    StoreOptions o;
    o.path = dir;
    o.path += "/bench.db";
    o.quota_bytes = quota;
    auto r = Store::open(o);
    if (!r.store) {
      state.SkipWithError(r.message.c_str());
      return;
    }
    const std::int64_t rows = static_cast<std::int64_t>(20 * quota / 700);
    std::uint64_t max_total = 0;
    for (std::int64_t i = 0; i < rows; ++i) {
      r.store->submit_result(make_row(i));
      if (i % 10000 == 9999) {
        r.store->flush();
        const auto st = r.store->stats();
        max_total = std::max(max_total, st.file_bytes + st.wal_bytes);
      }
    }
    r.store->flush();
    const auto st = r.store->stats();
    r.store.reset();
    const auto final_bytes = file_size(o.path) + file_size(std::string(o.path).append("-wal"));
    state.counters["rows"] = static_cast<double>(rows);
    state.counters["final_size_over_quota"] =
        static_cast<double>(final_bytes) / static_cast<double>(quota);
    state.counters["max_db_plus_wal_over_quota"] =
        static_cast<double>(max_total) / static_cast<double>(quota);
    state.counters["evicted_results"] = static_cast<double>(st.evicted_results);
    state.counters["evicted_outbox_bulk"] = static_cast<double>(st.evicted_outbox_bulk);
    std::filesystem::remove_all(dir);
  }
}
BENCHMARK(BM_SustainedOverflow)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
