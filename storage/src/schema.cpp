// schema.cpp — the schema (as migration steps), the open-time checks and the move-aside of bad
// database files.
//
// Migrations: kMigrations[v] takes a database from user_version v to v + 1; each step runs in
// its own transaction together with the user_version bump, so a crash mid-migration leaves the
// file at version v. Adding schema 2 = append a step, bump kSchemaVersion, and add the fixture
// tests/storage/schemas/v1.sql (a database as schema 1 left it) so the upgrade test covers it.
#include "schema.hpp"

#include <cstdio>
#include <ctime>
#include <filesystem>

namespace vibgate::storage::detail {
namespace {

// 0 -> 1: the initial schema.
//   outbox.id is AUTOINCREMENT: ids are never reused, even after the newest rows are deleted
//   (consumers use them to drop duplicates). alerts.raise_outbox_id / alert_events.outbox_id
//   point at the pending outbox entry and are set to NULL by a trigger when it leaves the outbox
//   (acknowledged or evicted): NULL means "delivered (or given up)". results.outbox_id keeps
//   pointing at its entry; a result is delivered when that entry is gone (no trigger: results
//   are the bulk of the traffic, and a per-acknowledgement UPDATE doubled the delete cost).
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE outbox(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  lane INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  asset TEXT NOT NULL,
  wall_ms INTEGER NOT NULL,
  body BLOB NOT NULL);
CREATE INDEX outbox_lane_id ON outbox(lane, id);
CREATE TABLE results(
  id INTEGER PRIMARY KEY,
  asset TEXT NOT NULL,
  channel TEXT NOT NULL,
  wall_ms INTEGER NOT NULL,
  score REAL NOT NULL,
  verdict INTEGER NOT NULL,
  iso_zone INTEGER NOT NULL,
  velocity_rms REAL NOT NULL,
  model_version TEXT NOT NULL,
  features BLOB,
  outbox_id INTEGER);
CREATE INDEX results_asset_time ON results(asset, wall_ms);
CREATE TABLE alerts(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  asset TEXT NOT NULL,
  level INTEGER NOT NULL,
  state INTEGER NOT NULL,
  raised_ms INTEGER NOT NULL,
  reason TEXT NOT NULL,
  score REAL NOT NULL,
  features BLOB,
  acknowledged_by TEXT,
  acknowledged_ms INTEGER,
  cleared_ms INTEGER,
  raise_outbox_id INTEGER);
CREATE INDEX alerts_state ON alerts(state, id);
CREATE INDEX alerts_asset_time ON alerts(asset, raised_ms);
CREATE INDEX alerts_pending ON alerts(raise_outbox_id) WHERE raise_outbox_id IS NOT NULL;
CREATE TABLE alert_events(
  id INTEGER PRIMARY KEY,
  alert_id INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  wall_ms INTEGER NOT NULL,
  by TEXT NOT NULL,
  reason TEXT NOT NULL,
  score REAL NOT NULL,
  outbox_id INTEGER);
CREATE INDEX alert_events_alert ON alert_events(alert_id, id);
CREATE INDEX alert_events_pending ON alert_events(outbox_id) WHERE outbox_id IS NOT NULL;
CREATE TABLE health_events(
  id INTEGER PRIMARY KEY,
  device TEXT NOT NULL,
  wall_ms INTEGER NOT NULL,
  state TEXT NOT NULL,
  detail TEXT NOT NULL);
CREATE INDEX health_device_time ON health_events(device, wall_ms);
CREATE TABLE snapshots(
  id INTEGER PRIMARY KEY,
  alert_id INTEGER NOT NULL,
  asset TEXT NOT NULL,
  channel TEXT NOT NULL,
  wall_ms INTEGER NOT NULL,
  sample_rate_hz REAL NOT NULL,
  units INTEGER NOT NULL,
  samples BLOB NOT NULL);
CREATE INDEX snapshots_alert ON snapshots(alert_id);
CREATE TABLE models(
  id INTEGER PRIMARY KEY,
  asset TEXT NOT NULL,
  version TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  state TEXT NOT NULL,
  feature_hash TEXT NOT NULL,
  path TEXT NOT NULL,
  note TEXT NOT NULL,
  UNIQUE(asset, version));
CREATE TRIGGER outbox_alert_gone AFTER DELETE ON outbox WHEN old.kind = 1 BEGIN
  UPDATE alerts SET raise_outbox_id = NULL WHERE raise_outbox_id = old.id;
  UPDATE alert_events SET outbox_id = NULL WHERE outbox_id = old.id;
END;
)sql";

// 1 -> 2: results keep one model-input vector per row (and the hash of the feature settings it
//   was computed with) so a baseline can be retrained from history; NULL in older rows.
constexpr const char* kSchemaV2 = R"sql(
ALTER TABLE results ADD COLUMN model_input BLOB;
ALTER TABLE results ADD COLUMN input_hash INTEGER;
)sql";

constexpr const char* kMigrations[] = {kSchemaV1, kSchemaV2};
static_assert(std::size(kMigrations) == kSchemaVersion, "one migration step per schema version");

enum class Verdict { ok, corrupt, newer, failed };

struct Check {
  Verdict verdict = Verdict::ok;
  std::string message;
};

bool is_corruption(const std::error_code& ec) {
  if (ec.category() != sqlite_category()) return false;
  const int primary = ec.value() & 0xff;
  return primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT;
}

// Opens and checks the file; on Verdict::ok the connection is in WAL mode at kSchemaVersion.
Check open_and_check(Db& db, const StoreOptions& o) {
  const std::string& path = o.path;
  Check c;
  // Message "<path>: <what><detail>" (built with += : GCC 12 -Wrestrict false positives).
  auto fail = [&](Verdict v, std::string_view what, std::string_view detail = {}) {
    c.verdict = v;
    c.message = path;
    c.message += ": ";
    c.message += what;
    c.message += detail;
    // Leave a refused file as it was: no checkpoint into it, no removal of its WAL on close.
    if (db.get()) {
      sqlite3_db_config(db.get(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
      int persist = 1;
      sqlite3_file_control(db.get(), "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
    }
    db.close();
    return c;
  };
  if (auto ec = db.open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, o.vfs_name))
    return fail(Verdict::failed, "cannot open: ", db.errmsg());
  sqlite3_busy_timeout(db.get(), 5000);

  std::error_code ec;
  const auto version = db.query_int("PRAGMA user_version", &ec);
  if (!version) {
    std::string what = "not a usable SQLite database (";
    what += db.errmsg();
    what += ")";
    return fail(is_corruption(ec) ? Verdict::corrupt : Verdict::failed, what);
  }
  if (*version > kSchemaVersion) {
    std::string what = "written by a newer vibgate (schema ";
    what += std::to_string(*version);
    what += ", this build reads up to ";
    what += std::to_string(kSchemaVersion);
    what += ")";
    return fail(Verdict::newer, what);
  }
  // quick_check: b-tree structure, page and freelist accounting — O(file) but much faster than
  // integrity_check (which also cross-checks every index against its table); that one is left
  // to offline tools.
  {
    // The statement is reset before fail() closes the connection (which finalizes it).
    int rc = SQLITE_ERROR;
    std::string result, err;
    if (Stmt* s = db.cached("PRAGMA quick_check(1)")) {
      StmtReset reset(*s);
      rc = s->step();
      if (rc == SQLITE_ROW)
        result = s->col_text(0);
      else
        err = db.errmsg();
    } else {
      rc = sqlite3_extended_errcode(db.get());
      err = db.errmsg();
    }
    if (rc != SQLITE_ROW)
      return fail(is_corruption(sqlite_error(rc)) ? Verdict::corrupt : Verdict::failed,
                  "quick_check failed: ", err);
    if (result != "ok") {
      std::string what = "corrupt database (quick_check: ";
      what += result.substr(0, result.find('\n'));
      what += ")";
      return fail(Verdict::corrupt, what);
    }
  }

  // auto_vacuum can only be switched on an existing file by a VACUUM (rewrites the file).
  const auto av = db.query_int("PRAGMA auto_vacuum", &ec);
  if (av && *av != 2) {
    const auto pages = db.query_int("PRAGMA page_count", &ec);
    if (auto e = db.exec("PRAGMA auto_vacuum=INCREMENTAL"))
      return fail(Verdict::failed, "cannot set auto_vacuum: ", db.errmsg());
    if (pages && *pages > 0)
      if (auto e = db.exec("VACUUM")) return fail(Verdict::failed, "VACUUM failed: ", db.errmsg());
  }
  const auto mode = db.query_text("PRAGMA journal_mode=WAL", &ec);
  if (!mode || *mode != "wal")
    return fail(Verdict::failed, "cannot switch to WAL mode: ", db.errmsg());

  for (auto v = *version; v < kSchemaVersion; ++v) {
    std::string sql = "BEGIN IMMEDIATE;";
    sql += kMigrations[v];
    sql += "PRAGMA user_version=";
    sql += std::to_string(v + 1);
    sql += ";COMMIT;";
    if (auto e = db.exec(sql.c_str())) {
      std::string what = "migration to schema ";
      what += std::to_string(v + 1);
      what += " failed: ";
      what += db.errmsg();
      db.exec("ROLLBACK");
      return fail(is_corruption(e) ? Verdict::corrupt : Verdict::failed, what);
    }
  }
  return c;
}

// Renames path (+ -wal, -shm) to "<path>.bad-<stamp>" (+ -wal, -shm). Returns the new name,
// or empty with `err` set.
std::string move_aside(const std::string& path, std::string& err) {
  std::string bad = path;
  bad += ".bad-";
  bad += utc_stamp();
  std::error_code ec;
  for (const char* suffix : {"-wal", "-shm", ""}) {
    const std::string from = path + suffix;
    if (!std::filesystem::exists(from, ec)) continue;
    std::string to = bad;
    to += suffix;
    std::filesystem::rename(from, to, ec);
    if (ec && *suffix == '\0') {
      err = ec.message();
      return {};
    }
  }
  return bad;
}

}  // namespace

std::string utc_stamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

DbOpen open_database(Db& db, const StoreOptions& options) {
  DbOpen r;
  Check c = open_and_check(db, options);
  if (c.verdict == Verdict::ok) return r;
  const bool bad = c.verdict == Verdict::corrupt || c.verdict == Verdict::newer;
  if (!bad || !options.move_aside_bad_database) {
    r.ec = make_error_code(c.verdict == Verdict::corrupt ? StoreErrc::corrupt
                           : c.verdict == Verdict::newer ? StoreErrc::newer_schema
                                                         : StoreErrc::open_failed);
    r.message = std::move(c.message);
    return r;
  }
  std::string err;
  const std::string moved = move_aside(options.path, err);
  if (moved.empty()) {
    r.ec = make_error_code(StoreErrc::open_failed);
    r.message = std::move(c.message);
    r.message += "; moving it aside failed: ";
    r.message += err;
    return r;
  }
  r.notice = "moved ";
  r.notice += c.verdict == Verdict::corrupt ? "corrupt" : "newer";
  r.notice += " database ";
  r.notice += options.path;
  r.notice += " aside to ";
  r.notice += moved;
  r.notice += " (";
  r.notice += c.message;
  r.notice += ")";
  Check fresh = open_and_check(db, options);
  if (fresh.verdict != Verdict::ok) {
    r.ec = make_error_code(StoreErrc::open_failed);
    r.message = std::move(fresh.message);
  }
  return r;
}

}  // namespace vibgate::storage::detail
