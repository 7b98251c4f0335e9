// tests/storage/test_util.hpp — helpers shared by the storage tests: a temporary directory
// (mkdtemp under /tmp, removed afterwards), raw SQLite queries to inspect the files behind the
// Store's back, and row builders.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "vibgate/storage/store.hpp"

namespace vibgate::storage::test {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/vibgate-storage-XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    if (!d) throw std::runtime_error("mkdtemp failed");
    path_ = d;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const {
    std::string p = path_;
    p += '/';
    p += name;
    return p;
  }

 private:
  std::string path_;
};

inline std::uint64_t file_size(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

// A raw connection for inspecting a database file (read-write so WAL recovery can run).
class RawDb {
 public:
  explicit RawDb(const std::string& path, int flags = SQLITE_OPEN_READWRITE) {
    if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK)
      ADD_FAILURE() << "cannot open " << path << ": " << sqlite3_errmsg(db_);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  // First column of the first row as int64 (-1 on error/no row).
  std::int64_t integer(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    std::int64_t v = -1;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
      v = sqlite3_column_int64(s, 0);
    else
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
    sqlite3_finalize(s);
    return v;
  }
  std::string text(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    std::string v;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
      const auto* t = sqlite3_column_text(s, 0);
      v = t ? reinterpret_cast<const char*>(t) : "";
    } else {
      v = std::string("error: ") + sqlite3_errmsg(db_);
    }
    sqlite3_finalize(s);
    return v;
  }
  bool exec(const std::string& sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) ADD_FAILURE() << sql << ": " << (err ? err : "?");
    sqlite3_free(err);
    return rc == SQLITE_OK;
  }
  sqlite3* get() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

inline ResultRow make_result(const std::string& asset, std::int64_t wall_ms, double score = 0.5,
                             bool uplink = true) {
  ResultRow r;
  r.asset = asset;
  r.channel = asset;
  r.channel += "/de_accel";
  r.wall_ms = wall_ms;
  r.score = score;
  r.verdict = score >= 1.0 ? Verdict::alarm : score >= 0.8 ? Verdict::warning : Verdict::normal;
  r.iso_zone = 2;
  r.velocity_rms_mm_s = 3.25;
  r.model_version = "3";
  r.uplink = uplink;
  const char* names[] = {"rms_g", "peak_g", "crest", "kurtosis",
                         "band1", "band2",  "band3", "band4"};
  double v = 0.125;
  for (const char* n : names) {
    r.features.push_back(Metric{n, v});
    v *= 1.5;
  }
  return r;
}

inline AlertEvent make_raise(const std::string& asset, std::int64_t wall_ms,
                             const std::string& reason = "score 1.43 >= 1.0 in 3 of 5 windows") {
  AlertEvent e;
  e.kind = AlertState::raised;
  e.asset = asset;
  e.level = AlertLevel::alarm;
  e.wall_ms = wall_ms;
  e.reason = reason;
  e.score = 1.43;
  e.features = {Metric{"rms_g", 0.9}, Metric{"kurtosis", 7.5}};
  return e;
}

inline const Metric* find_metric(const UplinkRecord& r, const std::string& name) {
  for (const auto& m : r.metrics)
    if (m.name == name) return &m;
  return nullptr;
}

// Default options for tests: small commit interval, given path.
// Completions of submits, in the order they ran (any thread).
struct Collected {
  std::mutex m;
  std::vector<std::pair<std::error_code, std::uint64_t>> calls;
  Completion cb() {
    return [this](std::error_code ec, std::uint64_t id) {
      std::lock_guard lk(m);
      calls.emplace_back(ec, id);
    };
  }
  std::size_t size() {
    std::lock_guard lk(m);
    return calls.size();
  }
};

inline StoreOptions options_for(const std::string& path) {
  StoreOptions o;
  o.path = path;
  o.commit_interval = std::chrono::milliseconds(20);
  return o;
}

// Calls fetch and waits for its answer (bounded; the state is shared so a late answer after a
// timeout cannot write into a dead stack frame).
inline std::vector<UplinkRecord> fetch_sync(OutboxSource& src, Lane lane, std::uint64_t after,
                                            std::size_t max) {
  struct State {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    std::vector<UplinkRecord> out;
  };
  auto st = std::make_shared<State>();
  src.fetch(lane, after, max, [st](std::vector<UplinkRecord> recs, bool ok) {
    EXPECT_TRUE(ok) << "fetch reported a read error";
    std::lock_guard lk(st->m);
    st->out = std::move(recs);
    st->done = true;
    st->cv.notify_all();
  });
  std::unique_lock lk(st->m);
  if (!st->cv.wait_for(lk, std::chrono::seconds(10), [&] { return st->done; }))
    ADD_FAILURE() << "fetch did not answer within 10 s";
  return std::move(st->out);
}

}  // namespace vibgate::storage::test
