// store.cpp — Store: the writer thread (group commits, outbox rows, acknowledged deletes, quota
// eviction), the reader connection (read API; OutboxSource::fetch on its own thread) and the
// error category.
//
// Threads and locks:
//   writer thread   owns wdb_; takes batches from `queue` (mu) and commits them.
//   fetch thread    runs fetch() tasks on rdb (reader_mu).
//   callers         submit_* (mu), acknowledge (mu + acked_mu), reads (reader_mu), stats
//                   (stats_mu + mu). Lock order: reader_mu -> acked_mu; mu and stats_mu are
//                   never held together with another lock of this list except mu -> stats_mu
//                   in stats() (the writer never takes them in the other order).
#include "vibgate/storage/store.hpp"

#include <sys/stat.h>

#include <pthread.h>
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <variant>

#include "codec.hpp"
#include "schema.hpp"
#include "sqlite_db.hpp"

namespace vibgate::storage {
namespace {

using Clock = std::chrono::steady_clock;
using detail::Stmt;
using detail::StmtReset;

class StoreCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "vibgate.storage"; }
  std::string message(int c) const override {
    switch (static_cast<StoreErrc>(c)) {
      case StoreErrc::ok:
        return "ok";
      case StoreErrc::open_failed:
        return "cannot open the database";
      case StoreErrc::corrupt:
        return "database is corrupt";
      case StoreErrc::newer_schema:
        return "database written by a newer vibgate";
      case StoreErrc::queue_full:
        return "store write queue is full";
      case StoreErrc::io_error:
        return "database write failed";
      case StoreErrc::closed:
        return "store is closing";
      case StoreErrc::not_found:
        return "no such alert";
    }
    return "unknown storage error";
  }
};

using Item = std::variant<ResultRow, AlertEvent, HealthEvent, Snapshot, ModelRecord, ModelEvent>;
struct Pending {
  Item item;
  Completion done;
};
struct Outcome {
  std::error_code ec;
  std::uint64_t id = 0;
};

// Eviction classes, in the order they are tried (docs/storage.md, "Quota").
// kEvAnyAlert is the last resort above the hard cap: the oldest alerts whatever their state,
// with their events, snapshots and undelivered outbox entries (counted as kEvAlerts and
// kEvOutboxAlerts).
enum EvictClass : int {
  kEvResults = 0,
  kEvHealth,
  kEvSnapshots,
  kEvOutboxBulk,
  kEvAlerts,
  kEvOutboxAlerts,
  kEvCount,
  kEvAnyAlert = kEvCount
};
constexpr const char* kEvictKeys[kEvCount] = {"evicted_results",   "evicted_health",
                                              "evicted_snapshots", "evicted_outbox_bulk",
                                              "evicted_alerts",    "evicted_outbox_alerts"};
constexpr const char* kMaxIdKeys[kLaneCount] = {"outbox_max_id_alert", "outbox_max_id_bulk"};
// Message ids after a power cut: a bulk commit with synchronous=NORMAL may be delivered and then
// lost, and SQLite would hand its outbox ids out again (sqlite_sequence rolls back with it), so
// a consumer deduplicating by msg_id would drop new records. Ids are therefore reserved in blocks
// by a fsynced commit (the meta key below); at open the id sequence continues above the reserved
// mark, never below an id that may have been delivered. Costs one FULL commit per block and per
// open; ids jump by up to a block at each start (gaps, never reuse).
constexpr const char* kIdReservedKey = "outbox_id_reserved";
constexpr std::uint64_t kIdBlock = 10000;

constexpr std::int64_t kEvictChunk = 500;  // rows per DELETE statement
// Quota thresholds (fractions of quota_bytes / hard_cap_bytes): evict when the used pages pass
// kHighWater, down to kHighWater minus a gap of min(5 % of the quota, 4 MiB).
constexpr double kHighWater = 0.97;
constexpr double kGapFraction = 0.05;
constexpr std::uint64_t kGapMax = 4ull << 20;

// Changes made by one transaction; applied to the in-memory state only after COMMIT.
struct BatchEffects {
  std::uint64_t added[kLaneCount]{};
  std::uint64_t removed[kLaneCount]{};
  std::uint64_t max_id[kLaneCount]{};
  std::int64_t oldest[kLaneCount]{};
  std::uint64_t evicted[kEvCount]{};
  std::uint64_t used_bytes = 0;
  std::uint64_t rows = 0;
  bool outbox_added() const { return added[0] + added[1] > 0; }
};

std::uint64_t file_size(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

Metric m_d(const char* n, double v) { return Metric{n, v}; }
Metric m_i(const char* n, std::int64_t v) { return Metric{n, v}; }
Metric m_s(const char* n, std::string v) { return Metric{n, std::move(v)}; }

const char* event_name(AlertState s) { return to_string(s); }

}  // namespace

// ---- small public helpers ----

const char* to_string(Durability d) { return d == Durability::full ? "full" : "balanced"; }
std::optional<Durability> parse_durability(std::string_view s) {
  if (s == "balanced") return Durability::balanced;
  if (s == "full") return Durability::full;
  return std::nullopt;
}
const char* to_string(AlertLevel l) { return l == AlertLevel::alarm ? "alarm" : "warning"; }
const char* to_string(AlertState s) {
  switch (s) {
    case AlertState::raised:
      return "raised";
    case AlertState::acknowledged:
      return "acknowledged";
    case AlertState::cleared:
      return "cleared";
  }
  return "?";
}
const std::error_category& store_category() {
  static const StoreCategory cat;
  return cat;
}
std::error_code make_error_code(StoreErrc e) { return {static_cast<int>(e), store_category()}; }

// ---- the implementation ----

struct Store::Impl {
  StoreOptions opt;
  detail::Db wdb;  // writer connection: open(), the writer thread, then the destructor
  detail::Db rdb;  // reader connection, guarded by reader_mu
  std::int64_t page_size = 4096;
  std::uint64_t wal_limit = 4ull << 20;
  int current_sync = -1;             // writer thread: the synchronous level last set
  std::uint64_t id_reserved = 0;     // writer thread: durable bound of outbox ids handed out
  std::uint64_t last_outbox_id = 0;  // writer thread: highest outbox id handed out so far

  // Write queue.
  std::mutex mu;
  std::condition_variable work_cv, flushed_cv;
  std::deque<Pending> queue;
  std::vector<std::uint64_t> ack_queue;
  Clock::time_point first_pending{};
  bool stopping = false, writer_exited = false;
  std::uint64_t flush_requested = 0, flush_done = 0;
  std::size_t in_flight = 0;  // rows taken by the writer, not yet committed (still "queued")
  std::function<void()> on_grew;

  // Acknowledged but not yet deleted (fetch filters these). prune_pending: deleted ids to drop
  // from `acked` once no read can still see them (writer thread only).
  std::mutex acked_mu;
  std::unordered_set<std::uint64_t> acked;
  std::vector<std::uint64_t> prune_pending;

  std::mutex reader_mu;

  std::mutex fetch_mu;
  std::condition_variable fetch_cv;
  std::deque<std::function<void()>> fetch_tasks;
  bool fetch_stop = false;

  mutable std::mutex stats_mu;
  StoreStats st;  // counters (file sizes/queue filled in by stats())
  OutboxStats ob;

  std::thread writer, fetcher;

  // Scratch buffers of the writer thread.
  std::string blob_a, blob_b;
  std::vector<Metric> metrics;

  ~Impl() { shutdown(); }

  // ---- setup (caller of open) ----
  std::error_code configure();
  void load_state();
  std::error_code continue_ids_above_reserved();

  // ---- writer thread ----
  void writer_loop();
  std::error_code commit_batch(std::vector<Pending>& batch, const std::vector<std::uint64_t>& acks,
                               std::vector<Outcome>& outcomes, BatchEffects& fx);
  std::error_code step_done(Stmt* s);
  std::error_code insert_outbox(Lane lane, RecordKind kind, const std::string& asset,
                                std::int64_t wall_ms, BatchEffects& fx, std::uint64_t& id);
  std::error_code write(ResultRow& r, Outcome& out, BatchEffects& fx);
  std::error_code write(AlertEvent& e, Outcome& out, BatchEffects& fx);
  std::error_code write(HealthEvent& h, Outcome& out, BatchEffects& fx);
  std::error_code write(Snapshot& s, Outcome& out, BatchEffects& fx);
  std::error_code write(ModelRecord& m, Outcome& out, BatchEffects& fx);
  std::error_code write(ModelEvent& m, Outcome& out, BatchEffects& fx);
  std::error_code used_bytes(std::uint64_t& used, std::uint64_t& file);
  std::error_code evict(BatchEffects& fx);
  std::error_code evict_chunk(int cls, std::int64_t& n, BatchEffects& fx);
  std::error_code put_meta(const char* key, std::uint64_t value);
  void after_commit();
  void prune_acked(bool force);
  void set_error(const std::string& what);

  // ---- reader ----
  void fetch_loop();
  std::vector<UplinkRecord> do_fetch(Lane lane, std::uint64_t after_id, std::size_t max, bool* ok);

  void shutdown();
};

std::error_code Store::Impl::configure() {
  page_size = wdb.query_int("PRAGMA page_size").value_or(4096);
  // WAL bound: 2 % of the quota, between 64 KiB and 4 MiB (SQLite's default 1000 pages).
  wal_limit = opt.quota_bytes == 0
                  ? (4ull << 20)
                  : std::clamp<std::uint64_t>(opt.quota_bytes / 50, 64ull << 10, 4ull << 20);
  const auto pages = std::max<std::uint64_t>(16, wal_limit / static_cast<std::uint64_t>(page_size));
  std::string sql = "PRAGMA journal_size_limit=";
  sql += std::to_string(wal_limit);
  sql += ";PRAGMA wal_autocheckpoint=";
  sql += std::to_string(pages);
  sql += ";PRAGMA temp_store=MEMORY;PRAGMA cache_size=-8000;";
  return wdb.exec(sql.c_str());
}

// At open (caller's thread, before the writer starts): the next outbox id is above every id
// that may have been handed out before, even by a commit a power cut took back.
std::error_code Store::Impl::continue_ids_above_reserved() {
  std::error_code ec;
  const auto seq = wdb.query_int(
      "SELECT coalesce(max(seq), 0) FROM sqlite_sequence "
      "WHERE name = 'outbox'",
      &ec);
  if (ec) return ec;
  last_outbox_id = std::max(static_cast<std::uint64_t>(seq.value_or(0)), id_reserved);
  for (const auto& l : ob.lanes) last_outbox_id = std::max(last_outbox_id, l.max_id);
  if (last_outbox_id <= static_cast<std::uint64_t>(seq.value_or(0))) return {};
  std::string sql =
      "DELETE FROM sqlite_sequence WHERE name = 'outbox';"
      "INSERT INTO sqlite_sequence(name, seq) VALUES('outbox', ";
  sql += std::to_string(last_outbox_id);
  sql += ")";
  return wdb.exec(sql.c_str());
}

void Store::Impl::load_state() {
  if (Stmt* s = wdb.cached("SELECT key, value FROM meta")) {
    StmtReset reset(*s);
    while (s->step() == SQLITE_ROW) {
      const std::string key = s->col_text(0);
      const auto v = static_cast<std::uint64_t>(s->col_int(1));
      std::uint64_t* dst[kEvCount] = {&st.evicted_results,   &st.evicted_health,
                                      &st.evicted_snapshots, &st.evicted_outbox_bulk,
                                      &st.evicted_alerts,    &st.evicted_outbox_alerts};
      for (int c = 0; c < kEvCount; ++c)
        if (key == kEvictKeys[c]) *dst[c] = v;
      for (int l = 0; l < kLaneCount; ++l)
        if (key == kMaxIdKeys[l]) ob.lanes[l].max_id = v;
      if (key == kIdReservedKey) id_reserved = v;
    }
  }
  if (Stmt* s = wdb.cached(
          "SELECT lane, count(*), max(id), (SELECT wall_ms FROM outbox o2 WHERE o2.lane = o.lane "
          "ORDER BY id LIMIT 1) FROM outbox o GROUP BY lane")) {
    StmtReset reset(*s);
    while (s->step() == SQLITE_ROW) {
      const auto lane = s->col_int(0);
      if (lane < 0 || lane >= kLaneCount) continue;
      auto& ls = ob.lanes[lane];
      ls.depth = static_cast<std::uint64_t>(s->col_int(1));
      ls.max_id = std::max(ls.max_id, static_cast<std::uint64_t>(s->col_int(2)));
      ls.oldest_wall_ms = s->col_int(3);
    }
  }
  ob.evicted_undelivered = st.evicted_outbox_bulk + st.evicted_outbox_alerts;
  std::uint64_t used = 0, file = 0;
  if (!used_bytes(used, file)) st.used_bytes = used;
  st.quota_bytes = opt.quota_bytes;
}

void Store::Impl::set_error(const std::string& what) {
  std::lock_guard lk(stats_mu);
  st.last_error = what;
}

// ---- writer thread ----

void Store::Impl::writer_loop() {
  std::unique_lock lk(mu);
  auto backoff = std::chrono::milliseconds(50);
  int failures_while_stopping = 0;
  for (;;) {
    for (;;) {
      const bool has_work = !queue.empty() || !ack_queue.empty();
      if (stopping || flush_requested > flush_done || queue.size() >= opt.commit_rows) break;
      if (has_work) {
        if (Clock::now() >= first_pending + opt.commit_interval) break;
        work_cv.wait_until(lk, first_pending + opt.commit_interval);
      } else {
        work_cv.wait(lk);
      }
    }
    if (queue.empty() && ack_queue.empty()) {
      flush_done = flush_requested;
      flushed_cv.notify_all();
      if (stopping) break;
      continue;
    }
    const std::uint64_t flush_target = flush_requested;
    const std::size_t n = std::min(queue.size(), std::max<std::size_t>(opt.commit_rows, 1));
    std::vector<Pending> batch;
    batch.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      batch.push_back(std::move(queue.front()));
      queue.pop_front();
    }
    std::vector<std::uint64_t> acks;
    acks.swap(ack_queue);
    const bool drained = queue.empty();
    in_flight = batch.size();
    lk.unlock();

    std::vector<Outcome> outcomes;
    BatchEffects fx;
    const std::error_code ec = commit_batch(batch, acks, outcomes, fx);
    if (!ec) {
      backoff = std::chrono::milliseconds(50);
      std::function<void()> grew;
      {
        std::lock_guard slk(stats_mu);
        st.commits++;
        st.rows_written += fx.rows;
        st.last_error.clear();
        st.used_bytes = fx.used_bytes;
        std::uint64_t* dst[kEvCount] = {&st.evicted_results,   &st.evicted_health,
                                        &st.evicted_snapshots, &st.evicted_outbox_bulk,
                                        &st.evicted_alerts,    &st.evicted_outbox_alerts};
        for (int c = 0; c < kEvCount; ++c) *dst[c] += fx.evicted[c];
        for (int l = 0; l < kLaneCount; ++l) {
          auto& ls = ob.lanes[l];
          ls.depth = ls.depth + fx.added[l] - std::min(ls.depth + fx.added[l], fx.removed[l]);
          ls.max_id = std::max(ls.max_id, fx.max_id[l]);
          ls.oldest_wall_ms = fx.oldest[l];
        }
        ob.evicted_undelivered = st.evicted_outbox_bulk + st.evicted_outbox_alerts;
      }
      prune_pending.insert(prune_pending.end(), acks.begin(), acks.end());
      prune_acked(false);
      after_commit();
      for (std::size_t i = 0; i < batch.size(); ++i) {
        if (!batch[i].done) continue;
        try {
          batch[i].done(outcomes[i].ec, outcomes[i].id);
        } catch (...) {  // a throwing callback must not take the writer down
        }
      }
      lk.lock();
      in_flight = 0;
      grew = on_grew;
      if (fx.outbox_added() && grew) {  // before flush() returns: a flusher sees its effect
        lk.unlock();
        try {
          grew();
        } catch (...) {
        }
        lk.lock();
      }
      if (drained) {
        flush_done = std::max(flush_done, flush_target);
        flushed_cv.notify_all();
      }
      continue;
    }

    // Failed: nothing of the batch is in the database. Put it back in front (same order) and
    // retry after a backoff; the rows stay counted as queued.
    std::string what = "commit failed: ";
    what += wdb.errmsg();
    what += " (";
    what += ec.message();
    what += ")";
    set_error(what);
    lk.lock();
    in_flight = 0;
    for (auto it = batch.rbegin(); it != batch.rend(); ++it) queue.push_front(std::move(*it));
    ack_queue.insert(ack_queue.begin(), acks.begin(), acks.end());
    if (stopping && ++failures_while_stopping >= 3) {
      // Closing and the disk keeps failing: give up on what is left (reported, not silent).
      std::deque<Pending> lost;
      lost.swap(queue);
      ack_queue.clear();
      lk.unlock();
      for (auto& p : lost)
        if (p.done) {
          try {
            p.done(make_error_code(StoreErrc::io_error), 0);
          } catch (...) {
          }
        }
      lk.lock();
      break;
    }
    work_cv.wait_for(lk, backoff, [&] { return stopping; });
    backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
  }
  writer_exited = true;
  flush_done = flush_requested;
  flushed_cv.notify_all();
}

std::error_code Store::Impl::step_done(Stmt* s) {
  if (!s) return detail::sqlite_error(sqlite3_extended_errcode(wdb.get()));
  StmtReset reset(*s);
  const int rc = s->step();
  if (rc == SQLITE_DONE || rc == SQLITE_ROW) return {};
  return detail::sqlite_error(rc);
}

std::error_code Store::Impl::commit_batch(std::vector<Pending>& batch,
                                          const std::vector<std::uint64_t>& acks,
                                          std::vector<Outcome>& outcomes, BatchEffects& fx) {
  bool has_alert = opt.durability == Durability::full;
  for (const auto& p : batch)
    has_alert = has_alert || std::holds_alternative<AlertEvent>(p.item) ||
                std::holds_alternative<ModelEvent>(p.item);
  // Each row adds at most one outbox entry: a batch that may pass the reserved id mark moves it
  // up a block, fsynced with the rows.
  const bool reserve = last_outbox_id + batch.size() >= id_reserved;
  const int sync = has_alert || reserve ? 2 : 1;  // FULL : NORMAL
  if (sync != current_sync) {
    if (auto ec = wdb.exec(sync == 2 ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"))
      return ec;
    current_sync = sync;
  }
  if (auto ec = wdb.exec("BEGIN IMMEDIATE")) return ec;
  auto fail = [&](std::error_code ec) {
    if (!sqlite3_get_autocommit(wdb.get())) wdb.exec("ROLLBACK");
    return ec;
  };
  outcomes.assign(batch.size(), Outcome{});
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const std::error_code ec =
        std::visit([&](auto& row) { return write(row, outcomes[i], fx); }, batch[i].item);
    if (ec) return fail(ec);
  }
  if (!acks.empty()) {
    Stmt* del = wdb.cached("DELETE FROM outbox WHERE id = ? RETURNING lane");
    if (!del) return fail(detail::sqlite_error(sqlite3_extended_errcode(wdb.get())));
    for (auto id : acks) {
      StmtReset reset(*del);
      del->bind_int(1, static_cast<std::int64_t>(id));
      const int rc = del->step();
      if (rc == SQLITE_ROW) {
        const auto lane = del->col_int(0);
        if (lane >= 0 && lane < kLaneCount) fx.removed[lane]++;
        if (del->step() != SQLITE_DONE)
          return fail(detail::sqlite_error(sqlite3_extended_errcode(wdb.get())));
      } else if (rc != SQLITE_DONE) {
        return fail(detail::sqlite_error(rc));
      }
    }
  }
  if (auto ec = evict(fx)) return fail(ec);
  for (int l = 0; l < kLaneCount; ++l) {
    if (fx.max_id[l] != 0)
      if (auto ec = put_meta(kMaxIdKeys[l], fx.max_id[l])) return fail(ec);
    Stmt* s = wdb.cached("SELECT wall_ms FROM outbox WHERE lane = ? ORDER BY id LIMIT 1");
    if (!s) return fail(detail::sqlite_error(sqlite3_extended_errcode(wdb.get())));
    StmtReset reset(*s);
    s->bind_int(1, l);
    const int rc = s->step();
    if (rc == SQLITE_ROW)
      fx.oldest[l] = s->col_int(0);
    else if (rc != SQLITE_DONE)
      return fail(detail::sqlite_error(rc));
  }
  const std::uint64_t new_reserved = last_outbox_id + batch.size() + kIdBlock;
  if (reserve)
    if (auto ec = put_meta(kIdReservedKey, new_reserved)) return fail(ec);
  if (auto ec = wdb.exec("COMMIT")) return fail(ec);
  fx.rows = batch.size();
  if (reserve) id_reserved = new_reserved;
  for (auto id : fx.max_id) last_outbox_id = std::max(last_outbox_id, id);
  return {};
}

std::error_code Store::Impl::insert_outbox(Lane lane, RecordKind kind, const std::string& asset,
                                           std::int64_t wall_ms, BatchEffects& fx,
                                           std::uint64_t& id) {
  detail::encode_metrics(metrics, blob_b);
  Stmt* s = wdb.cached("INSERT INTO outbox(lane, kind, asset, wall_ms, body) VALUES(?,?,?,?,?)");
  if (!s) return detail::sqlite_error(sqlite3_extended_errcode(wdb.get()));
  s->bind_int(1, static_cast<int>(lane));
  s->bind_int(2, static_cast<int>(kind));
  s->bind_text(3, asset);
  s->bind_int(4, wall_ms);
  s->bind_blob(5, blob_b);
  if (auto ec = step_done(s)) return ec;
  id = static_cast<std::uint64_t>(wdb.last_rowid());
  const auto l = static_cast<int>(lane);
  fx.added[l]++;
  fx.max_id[l] = std::max(fx.max_id[l], id);
  return {};
}

std::error_code Store::Impl::write(ResultRow& r, Outcome& out, BatchEffects& fx) {
  std::uint64_t outbox_id = 0;
  if (r.uplink) {
    metrics.clear();
    metrics.reserve(6 + r.features.size());
    metrics.push_back(m_d("score", r.score));
    metrics.push_back(m_i("verdict", static_cast<std::int64_t>(r.verdict)));
    metrics.push_back(m_i("iso_zone", r.iso_zone));
    metrics.push_back(m_d("velocity_rms_mm_s", r.velocity_rms_mm_s));
    metrics.push_back(m_s("channel", r.channel));
    metrics.push_back(m_s("model_version", r.model_version));
    metrics.insert(metrics.end(), r.features.begin(), r.features.end());
    if (auto ec = insert_outbox(Lane::bulk, RecordKind::result, r.asset, r.wall_ms, fx, outbox_id))
      return ec;
  }
  detail::encode_metrics(r.features, blob_a);
  Stmt* s = wdb.cached(
      "INSERT INTO results(asset, channel, wall_ms, score, verdict, iso_zone, velocity_rms, "
      "model_version, features, outbox_id, model_input, input_hash) "
      "VALUES(?,?,?,?,?,?,?,?,?,?,?,?)");
  if (!s) return detail::sqlite_error(sqlite3_extended_errcode(wdb.get()));
  s->bind_text(1, r.asset);
  s->bind_text(2, r.channel);
  s->bind_int(3, r.wall_ms);
  s->bind_double(4, r.score);
  s->bind_int(5, static_cast<int>(r.verdict));
  s->bind_int(6, r.iso_zone);
  s->bind_double(7, r.velocity_rms_mm_s);
  s->bind_text(8, r.model_version);
  s->bind_blob(9, blob_a);
  if (outbox_id)
    s->bind_int(10, static_cast<std::int64_t>(outbox_id));
  else
    s->bind_null(10);
  std::string input_blob;
  if (!r.model_input.empty()) {
    input_blob = detail::encode_samples(r.model_input);
    s->bind_blob(11, input_blob);
    s->bind_int(12, static_cast<std::int64_t>(r.input_hash));
  } else {
    s->bind_null(11);
    s->bind_null(12);
  }
  if (auto ec = step_done(s)) return ec;
  out.id = static_cast<std::uint64_t>(wdb.last_rowid());
  return {};
}

std::error_code Store::Impl::write(AlertEvent& e, Outcome& out, BatchEffects& fx) {
  std::int64_t alert_id = static_cast<std::int64_t>(e.alert_id);
  std::string asset = e.asset;
  AlertLevel level = e.level;
  detail::encode_metrics(e.features, blob_a);
  if (e.kind == AlertState::raised) {
    Stmt* s = wdb.cached(
        "INSERT INTO alerts(asset, level, state, raised_ms, reason, score, features) "
        "VALUES(?,?,0,?,?,?,?)");
    if (!s) return detail::sqlite_error(sqlite3_extended_errcode(wdb.get()));
    s->bind_text(1, e.asset);
    s->bind_int(2, static_cast<int>(e.level));
    s->bind_int(3, e.wall_ms);
    s->bind_text(4, e.reason);
    s->bind_double(5, e.score);
    s->bind_blob(6, blob_a);
    if (auto ec = step_done(s)) return ec;
    alert_id = wdb.last_rowid();
  } else {
    Stmt* q = wdb.cached("SELECT asset, level FROM alerts WHERE id = ?");
    if (!q) return detail::sqlite_error(sqlite3_extended_errcode(wdb.get()));
    {
      StmtReset reset(*q);
      q->bind_int(1, alert_id);
      const int rc = q->step();
      if (rc == SQLITE_DONE) {  // unknown (or evicted) alert: refused, nothing written
        out.ec = make_error_code(StoreErrc::not_found);
        return {};
      }
      if (rc != SQLITE_ROW) return detail::sqlite_error(rc);
      asset = q->col_text(0);
      level = q->col_int(1) == static_cast<int>(AlertLevel::alarm) ? AlertLevel::alarm
                                                                   : AlertLevel::warning;
    }
    Stmt* u = e.kind == AlertState::acknowledged
                  ? wdb.cached(
                        "UPDATE alerts SET acknowledged_by = ?, acknowledged_ms = ?, "
                        "state = CASE WHEN state = 2 THEN 2 ELSE 1 END WHERE id = ?")
                  : wdb.cached("UPDATE alerts SET state = 2, cleared_ms = ?2 WHERE id = ?3");
    if (!u) return detail::sqlite_error(sqlite3_extended_errcode(wdb.get()));
    if (e.kind == AlertState::acknowledged) u->bind_text(1, e.by);
    u->bind_int(2, e.wall_ms);
    u->bind_int(3, alert_id);
    if (auto ec = step_done(u)) return ec;
  }
  metrics.clear();
  metrics.reserve(6 + e.features.size());
  metrics.push_back(m_i("alert_id", alert_id));
  metrics.push_back(m_s("event", event_name(e.kind)));
  metrics.push_back(m_s("level", to_string(level)));
  metrics.push_back(m_d("score", e.score));
  metrics.push_back(m_s("reason", e.reason));
  if (!e.by.empty()) metrics.push_back(m_s("by", e.by));
  metrics.insert(metrics.end(), e.features.begin(), e.features.end());
  std::uint64_t outbox_id = 0;
  if (auto ec = insert_outbox(Lane::alert, RecordKind::alert, asset, e.wall_ms, fx, outbox_id))
    return ec;
  if (e.kind == AlertState::raised) {
    Stmt* s = wdb.cached("UPDATE alerts SET raise_outbox_id = ? WHERE id = ?");
    if (!s) return detail::sqlite_error(sqlite3_extended_errcode(wdb.get()));
    s->bind_int(1, static_cast<std::int64_t>(outbox_id));
    s->bind_int(2, alert_id);
    if (auto ec = step_done(s)) return ec;
  }
  Stmt* ev = wdb.cached(
      "INSERT INTO alert_events(alert_id, kind, wall_ms, by, reason, score, outbox_id) "
      "VALUES(?,?,?,?,?,?,?)");
  if (!ev) return detail::sqlite_error(sqlite3_extended_errcode(wdb.get()));
  ev->bind_int(1, alert_id);
  ev->bind_int(2, static_cast<int>(e.kind));
  ev->bind_int(3, e.wall_ms);
  ev->bind_text(4, e.by);
  ev->bind_text(5, e.reason);
  ev->bind_double(6, e.score);
  ev->bind_int(7, static_cast<std::int64_t>(outbox_id));
  if (auto ec = step_done(ev)) return ec;
  out.id = static_cast<std::uint64_t>(alert_id);
  return {};
}

std::error_code Store::Impl::write(HealthEvent& h, Outcome& out, BatchEffects& fx) {
  Stmt* s = wdb.cached("INSERT INTO health_events(device, wall_ms, state, detail) VALUES(?,?,?,?)");
  if (!s) return detail::sqlite_error(sqlite3_extended_errcode(wdb.get()));
  s->bind_text(1, h.device);
  s->bind_int(2, h.wall_ms);
  s->bind_text(3, h.state);
  s->bind_text(4, h.detail);
  if (auto ec = step_done(s)) return ec;
  out.id = static_cast<std::uint64_t>(wdb.last_rowid());
  metrics.clear();
  metrics.push_back(m_s("state", h.state));
  metrics.push_back(m_s("detail", h.detail));
  std::uint64_t outbox_id = 0;
  return insert_outbox(Lane::bulk, RecordKind::health, h.device, h.wall_ms, fx, outbox_id);
}

std::error_code Store::Impl::write(Snapshot& sn, Outcome& out, BatchEffects&) {
  blob_a = detail::encode_samples(sn.samples);
  Stmt* s = wdb.cached(
      "INSERT INTO snapshots(alert_id, asset, channel, wall_ms, sample_rate_hz, units, samples) "
      "VALUES(?,?,?,?,?,?,?)");
  if (!s) return detail::sqlite_error(sqlite3_extended_errcode(wdb.get()));
  s->bind_int(1, static_cast<std::int64_t>(sn.alert_id));
  s->bind_text(2, sn.asset);
  s->bind_text(3, sn.channel);
  s->bind_int(4, sn.wall_ms);
  s->bind_double(5, sn.sample_rate_hz);
  s->bind_int(6, static_cast<int>(sn.units));
  s->bind_blob(7, blob_a);
  if (auto ec = step_done(s)) return ec;
  out.id = static_cast<std::uint64_t>(wdb.last_rowid());
  return {};
}

std::error_code Store::Impl::write(ModelRecord& m, Outcome& out, BatchEffects&) {
  Stmt* s = wdb.cached(
      "INSERT INTO models(asset, version, created_ms, state, feature_hash, path, note) "
      "VALUES(?,?,?,?,?,?,?) ON CONFLICT(asset, version) DO UPDATE SET "
      "created_ms = excluded.created_ms, state = excluded.state, "
      "feature_hash = excluded.feature_hash, path = excluded.path, note = excluded.note "
      "RETURNING id");
  if (!s) return detail::sqlite_error(sqlite3_extended_errcode(wdb.get()));
  StmtReset reset(*s);
  s->bind_text(1, m.asset);
  s->bind_text(2, m.version);
  s->bind_int(3, m.created_ms);
  s->bind_text(4, m.state);
  s->bind_text(5, m.feature_hash);
  s->bind_text(6, m.path);
  s->bind_text(7, m.note);
  int rc = s->step();
  if (rc != SQLITE_ROW) return detail::sqlite_error(rc == SQLITE_DONE ? SQLITE_ERROR : rc);
  out.id = static_cast<std::uint64_t>(s->col_int(0));
  rc = s->step();
  if (rc != SQLITE_DONE) return detail::sqlite_error(rc);
  return {};
}

// A model lifecycle event is an alert-lane outbox entry only (store.hpp, ModelEvent).
std::error_code Store::Impl::write(ModelEvent& m, Outcome& out, BatchEffects& fx) {
  metrics = m.metrics;
  return insert_outbox(Lane::alert, RecordKind::model, m.asset, m.wall_ms, fx, out.id);
}

std::error_code Store::Impl::put_meta(const char* key, std::uint64_t value) {
  Stmt* s = wdb.cached(
      "INSERT INTO meta(key, value) VALUES(?,?) ON CONFLICT(key) DO UPDATE SET value = "
      "excluded.value");
  if (!s) return detail::sqlite_error(sqlite3_extended_errcode(wdb.get()));
  s->bind_text(1, key);
  s->bind_int(2, static_cast<std::int64_t>(value));
  return step_done(s);
}

// Pages in use and pages in the file, in bytes, as this connection's transaction sees them.
std::error_code Store::Impl::used_bytes(std::uint64_t& used, std::uint64_t& file) {
  std::error_code ec;
  const auto pages = wdb.query_int("PRAGMA page_count", &ec);
  if (!pages) return ec ? ec : detail::sqlite_error(SQLITE_ERROR);
  const auto free_pages = wdb.query_int("PRAGMA freelist_count", &ec);
  if (!free_pages) return ec ? ec : detail::sqlite_error(SQLITE_ERROR);
  file = static_cast<std::uint64_t>(*pages * page_size);
  used = static_cast<std::uint64_t>((*pages - *free_pages) * page_size);
  return {};
}

// Deletes up to kEvictChunk rows of class `cls` (oldest first); n = rows deleted.
std::error_code Store::Impl::evict_chunk(int cls, std::int64_t& n, BatchEffects& fx) {
  n = 0;
  auto run = [&](const char* sql) -> std::error_code {
    Stmt* s = wdb.cached(sql);
    if (!s) return detail::sqlite_error(sqlite3_extended_errcode(wdb.get()));
    s->bind_int(1, kEvictChunk);
    if (auto ec = step_done(s)) return ec;
    n = wdb.changes();
    return {};
  };
  switch (cls) {
    case kEvResults:  // delivered (or given-up) results
      return run(
          "DELETE FROM results WHERE id IN (SELECT r.id FROM results r WHERE r.outbox_id IS NULL "
          "OR NOT EXISTS (SELECT 1 FROM outbox o WHERE o.id = r.outbox_id) ORDER BY r.id "
          "LIMIT ?)");
    case kEvHealth:
      return run(
          "DELETE FROM health_events WHERE id IN (SELECT id FROM health_events ORDER BY id "
          "LIMIT ?)");
    case kEvSnapshots:
      return run(
          "DELETE FROM snapshots WHERE id IN (SELECT id FROM snapshots ORDER BY id LIMIT ?)");
    case kEvOutboxBulk: {
      const int lane = 1;
      Stmt* s = wdb.cached(
          "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE lane = ?1 ORDER BY id "
          "LIMIT ?2)");
      if (!s) return detail::sqlite_error(sqlite3_extended_errcode(wdb.get()));
      s->bind_int(1, lane);
      s->bind_int(2, kEvictChunk);
      if (auto ec = step_done(s)) return ec;
      n = wdb.changes();
      fx.removed[lane] += static_cast<std::uint64_t>(n);
      return {};
    }
    case kEvAlerts:      // cleared alerts none of whose events wait in the outbox
    case kEvAnyAlert: {  // any alert (above the hard cap only)
      Stmt* sel =
          cls == kEvAlerts
              ? wdb.cached(
                    "SELECT id FROM alerts a WHERE state = 2 AND raise_outbox_id IS NULL AND NOT "
                    "EXISTS (SELECT 1 FROM alert_events e WHERE e.alert_id = a.id AND "
                    "e.outbox_id IS NOT NULL) ORDER BY id LIMIT ?")
              : wdb.cached("SELECT id FROM alerts ORDER BY id LIMIT ?");
      Stmt* d_ob = wdb.cached(
          "DELETE FROM outbox WHERE id IN (SELECT outbox_id FROM alert_events WHERE alert_id = ? "
          "AND outbox_id IS NOT NULL)");
      Stmt* d_ev = wdb.cached("DELETE FROM alert_events WHERE alert_id = ?");
      Stmt* d_sn = wdb.cached("DELETE FROM snapshots WHERE alert_id = ?");
      Stmt* d_al = wdb.cached("DELETE FROM alerts WHERE id = ?");
      if (!sel || !d_ob || !d_ev || !d_sn || !d_al)
        return detail::sqlite_error(sqlite3_extended_errcode(wdb.get()));
      std::vector<std::int64_t> ids;
      {
        StmtReset reset(*sel);
        // Whole alerts are big (reason, features, events): smaller chunks overshoot less.
        sel->bind_int(1, cls == kEvAlerts ? kEvictChunk : kEvictChunk / 10);
        int rc;
        while ((rc = sel->step()) == SQLITE_ROW) ids.push_back(sel->col_int(0));
        if (rc != SQLITE_DONE) return detail::sqlite_error(rc);
      }
      for (auto id : ids) {
        if (cls == kEvAnyAlert) {  // (closed delivered alerts have no outbox entries left)
          d_ob->bind_int(1, id);
          if (auto ec = step_done(d_ob)) return ec;
          const auto dropped = static_cast<std::uint64_t>(wdb.changes());
          fx.evicted[kEvOutboxAlerts] += dropped;
          fx.removed[0] += dropped;
        }
        d_ev->bind_int(1, id);
        if (auto ec = step_done(d_ev)) return ec;
        d_sn->bind_int(1, id);
        if (auto ec = step_done(d_sn)) return ec;
        fx.evicted[kEvSnapshots] += static_cast<std::uint64_t>(wdb.changes());
        d_al->bind_int(1, id);
        if (auto ec = step_done(d_al)) return ec;
      }
      n = static_cast<std::int64_t>(ids.size());
      return {};
    }
    default:
      return {};
  }
}

// Quota policy, inside the batch's transaction (so the counters commit with the deletes).
std::error_code Store::Impl::evict(BatchEffects& fx) {
  std::uint64_t used = 0, file = 0;
  if (auto ec = used_bytes(used, file)) return ec;
  if (opt.quota_bytes != 0) {
    auto thresholds = [](std::uint64_t limit, std::uint64_t& high, std::uint64_t& low) {
      high = static_cast<std::uint64_t>(static_cast<double>(limit) * kHighWater);
      const auto gap = std::min<std::uint64_t>(
          static_cast<std::uint64_t>(static_cast<double>(limit) * kGapFraction), kGapMax);
      low = high - gap;
    };
    std::uint64_t high = 0, low = 0, hard_high = 0, hard_low = 0;
    thresholds(opt.quota_bytes, high, low);
    thresholds(std::max(opt.hard_cap_bytes, opt.quota_bytes), hard_high, hard_low);
    bool evicted_any = false;
    if (used > high) {
      // Classes in order; loop again while progress is made (evicting bulk outbox entries turns
      // their results into "delivered" ones, which the first class then takes).
      bool progress = true;
      while (used > low && progress) {
        progress = false;
        for (int cls = kEvResults; cls <= kEvAlerts && used > low; ++cls) {
          for (;;) {
            std::int64_t n = 0;
            if (auto ec = evict_chunk(cls, n, fx)) return ec;
            if (n <= 0) break;
            fx.evicted[cls] += static_cast<std::uint64_t>(n);
            progress = evicted_any = true;
            if (auto ec = used_bytes(used, file)) return ec;
            if (used <= low) break;
          }
        }
      }
    }
    // Undelivered alerts: only when what is left (alert data, open alerts, models) still
    // exceeds the hard cap. Then closed delivered alerts first, then the oldest alerts whole,
    // open ones and their undelivered entries included (a hard cap is hard: the disk must not
    // fill).
    if (used > hard_high) {
      for (int cls : {static_cast<int>(kEvAlerts), static_cast<int>(kEvAnyAlert)}) {
        while (used > hard_low) {
          std::int64_t n = 0;
          if (auto ec = evict_chunk(cls, n, fx)) return ec;
          if (n <= 0) break;
          fx.evicted[kEvAlerts] += static_cast<std::uint64_t>(n);
          evicted_any = true;
          if (auto ec = used_bytes(used, file)) return ec;
        }
      }
    }
    // Give free pages back to the file system so the file, not only the used pages, stays
    // under the quota.
    if (evicted_any || file > high) {
      if (Stmt* s = wdb.cached("PRAGMA incremental_vacuum")) {
        StmtReset reset(*s);
        int rc;
        while ((rc = s->step()) == SQLITE_ROW) {
        }
        if (rc != SQLITE_DONE) return detail::sqlite_error(rc);
      }
      if (auto ec = used_bytes(used, file)) return ec;
    }
    if (evicted_any) {
      std::lock_guard slk(stats_mu);  // totals = persistent counters + this batch
      const std::uint64_t base[kEvCount] = {st.evicted_results,   st.evicted_health,
                                            st.evicted_snapshots, st.evicted_outbox_bulk,
                                            st.evicted_alerts,    st.evicted_outbox_alerts};
      for (int c = 0; c < kEvCount; ++c)
        if (fx.evicted[c])
          if (auto ec = put_meta(kEvictKeys[c], base[c] + fx.evicted[c])) return ec;
    }
  }
  fx.used_bytes = used;
  return {};
}

// After a commit: keep the WAL bounded. wal_autocheckpoint copies frames back and
// journal_size_limit truncates the WAL when it restarts; a batch larger than the limit leaves a
// large WAL, which a TRUNCATE checkpoint shrinks (skipped while a reader is busy).
void Store::Impl::after_commit() {
  const auto wal = file_size(opt.path + "-wal");
  if (wal > 2 * wal_limit)
    sqlite3_wal_checkpoint_v2(wdb.get(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
}

// Drops committed-deleted ids from `acked`. Holding reader_mu guarantees no read that started
// before the DELETE committed is still running (it could still see the rows).
void Store::Impl::prune_acked(bool force) {
  if (prune_pending.empty()) return;
  std::unique_lock rl(reader_mu, std::defer_lock);
  if (force || prune_pending.size() > 100000)
    rl.lock();
  else if (!rl.try_lock())
    return;
  std::lock_guard al(acked_mu);
  for (auto id : prune_pending) acked.erase(id);
  prune_pending.clear();
}

// ---- reader ----

void Store::Impl::fetch_loop() {
  std::unique_lock lk(fetch_mu);
  for (;;) {
    fetch_cv.wait(lk, [&] { return fetch_stop || !fetch_tasks.empty(); });
    if (fetch_tasks.empty()) return;  // stopping and drained
    auto task = std::move(fetch_tasks.front());
    fetch_tasks.pop_front();
    lk.unlock();
    try {
      task();
    } catch (...) {
    }
    lk.lock();
  }
}

std::vector<UplinkRecord> Store::Impl::do_fetch(Lane lane, std::uint64_t after_id, std::size_t max,
                                                bool* ok) {
  *ok = true;
  std::vector<UplinkRecord> out;
  if (max == 0) return out;
  std::lock_guard rl(reader_mu);
  Stmt* s = rdb.cached(
      "SELECT id, kind, asset, wall_ms, body FROM outbox WHERE lane = ? AND id > ? ORDER BY id");
  if (!s) {
    set_error("fetch: " + rdb.errmsg());
    *ok = false;
    return out;
  }
  StmtReset reset(*s);
  s->bind_int(1, static_cast<int>(lane));
  s->bind_int(2, static_cast<std::int64_t>(std::min<std::uint64_t>(after_id, INT64_MAX)));
  // Rows are read in chunks and acknowledged entries filtered per chunk under acked_mu, so the
  // loop thread's acknowledge() never waits for this query.
  int rc = SQLITE_ROW;
  for (;;) {
    const std::size_t target = max + 16;
    while (out.size() < target && (rc = s->step()) == SQLITE_ROW) {
      UplinkRecord r;
      r.id = static_cast<std::uint64_t>(s->col_int(0));
      r.lane = lane;
      const auto kind = s->col_int(1);
      r.kind = kind == 1   ? RecordKind::alert
               : kind == 2 ? RecordKind::health
               : kind == 3 ? RecordKind::model
                           : RecordKind::result;
      r.asset = s->col_text(2);
      r.wall_ms = s->col_int(3);
      const auto body = s->col_blob(4);
      if (!detail::decode_metrics(body.data(), body.size(), r.metrics)) {
        std::string what = "fetch: undecodable outbox entry ";
        what += std::to_string(r.id);
        set_error(what);
        continue;
      }
      out.push_back(std::move(r));
    }
    {
      std::lock_guard al(acked_mu);
      if (!acked.empty()) {
        std::erase_if(out, [&](const UplinkRecord& r) { return acked.count(r.id) != 0; });
      }
    }
    if (out.size() >= max || rc != SQLITE_ROW) break;
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    set_error("fetch: " + rdb.errmsg());
    *ok = false;
  }
  if (out.size() > max) out.resize(max);
  return out;
}

void Store::Impl::shutdown() {
  {
    std::lock_guard lk(mu);
    stopping = true;
  }
  work_cv.notify_all();
  if (writer.joinable()) writer.join();
  // Orderly close: the next open continues right after the last outbox id handed out, without a
  // gap; only after a crash or power cut do the ids jump above the reserved mark. Best effort (a
  // failure leaves the higher mark: a gap, never reuse).
  if (wdb.get() && id_reserved > last_outbox_id) {
    std::string sql = "PRAGMA synchronous=FULL;UPDATE meta SET value = ";
    sql += std::to_string(last_outbox_id);
    sql += " WHERE key = '";
    sql += kIdReservedKey;
    sql += "'";
    (void)wdb.exec(sql.c_str());
  }
  prune_acked(true);
  {
    std::lock_guard lk(fetch_mu);
    fetch_stop = true;
  }
  fetch_cv.notify_all();
  if (fetcher.joinable()) fetcher.join();
  rdb.close();
  wdb.close();  // the last connection: SQLite checkpoints and removes the WAL
}

// ---- Store ----

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

OpenResult Store::open(const StoreOptions& options) {
  OpenResult r;
  try {
    auto impl = std::make_unique<Impl>();
    impl->opt = options;
    if (impl->opt.hard_cap_bytes == 0) impl->opt.hard_cap_bytes = impl->opt.quota_bytes;
    auto opened = detail::open_database(impl->wdb, impl->opt);
    r.notice = opened.notice;
    if (opened.ec) {
      r.error = opened.ec;
      r.message = opened.message;
      return r;
    }
    auto fail = [&](const char* what, detail::Db& db) {
      r.error = make_error_code(StoreErrc::open_failed);
      r.message = options.path;
      r.message += ": ";
      r.message += what;
      r.message += db.errmsg();
      return std::move(r);
    };
    if (impl->configure()) return fail("cannot configure: ", impl->wdb);
    impl->load_state();
    if (impl->continue_ids_above_reserved())
      return fail("cannot continue the outbox ids: ", impl->wdb);
    if (impl->rdb.open(options.path, SQLITE_OPEN_READONLY, impl->opt.vfs_name))
      return fail("cannot open the reader connection: ", impl->rdb);
    sqlite3_busy_timeout(impl->rdb.get(), 5000);
    Impl* p = impl.get();
    p->writer = std::thread([p] {
      pthread_setname_np(pthread_self(), "vg-store-write");
      p->writer_loop();
    });
    p->fetcher = std::thread([p] {
      pthread_setname_np(pthread_self(), "vg-store-fetch");
      p->fetch_loop();
    });
    r.store.reset(new Store(std::move(impl)));
  } catch (const std::exception& e) {
    r.store.reset();
    r.error = make_error_code(StoreErrc::open_failed);
    r.message = options.path;
    r.message += ": ";
    r.message += e.what();
  }
  return r;
}

namespace {
// Queues one row; refuses (inline, on the caller's thread) when closing or full.
template <typename Row>
void enqueue(Store::Impl& im, Row&& row, Completion done) {
  std::error_code refused;
  {
    std::lock_guard lk(im.mu);
    if (im.stopping) {
      refused = make_error_code(StoreErrc::closed);
    } else if (im.queue.size() >= im.opt.max_queued_rows) {
      refused = make_error_code(StoreErrc::queue_full);
    } else {
      const bool was_idle = im.queue.empty() && im.ack_queue.empty();
      try {
        im.queue.push_back(Pending{Item(std::forward<Row>(row)), std::move(done)});
      } catch (const std::bad_alloc&) {
        refused = make_error_code(StoreErrc::queue_full);
      }
      // Wake the writer when its deadline starts (first row) or the batch is full.
      if (!refused && was_idle) im.first_pending = Clock::now();
      if (!refused && (was_idle || im.queue.size() >= im.opt.commit_rows)) im.work_cv.notify_one();
    }
  }
  if (refused) {
    {
      std::lock_guard slk(im.stats_mu);
      im.st.refused_rows++;
    }
    if (done) {
      try {
        done(refused, 0);
      } catch (...) {
      }
    }
  }
}
}  // namespace

void Store::submit_result(ResultRow row, Completion done) {
  enqueue(*impl_, std::move(row), std::move(done));
}
void Store::submit_alert_event(AlertEvent event, Completion done) {
  enqueue(*impl_, std::move(event), std::move(done));
}
void Store::submit_health(HealthEvent event, Completion done) {
  enqueue(*impl_, std::move(event), std::move(done));
}
void Store::submit_snapshot(Snapshot snap, Completion done) {
  enqueue(*impl_, std::move(snap), std::move(done));
}
void Store::submit_model(ModelRecord model, Completion done) {
  enqueue(*impl_, std::move(model), std::move(done));
}
void Store::submit_model_event(ModelEvent event, Completion done) {
  enqueue(*impl_, std::move(event), std::move(done));
}

void Store::flush() {
  auto& im = *impl_;
  std::unique_lock lk(im.mu);
  if (im.writer_exited) return;
  const std::uint64_t want = ++im.flush_requested;
  im.work_cv.notify_one();
  im.flushed_cv.wait(lk, [&] { return im.flush_done >= want || im.writer_exited; });
}

ModelInputs read_model_inputs(const std::string& path, const ModelInputQuery& q,
                              const std::string& vfs_name) {
  ModelInputs out;
  detail::Db db;
  const auto fail = [&](std::string_view what) {
    out.error = path;
    out.error += ": ";
    out.error += what;
    out.error += db.errmsg();
    out.rows.clear();
    return std::move(out);
  };
  if (db.open(path, SQLITE_OPEN_READONLY, vfs_name))
    return fail("cannot open for reading model inputs: ");
  sqlite3_busy_timeout(db.get(), 5000);
  Stmt* s = db.cached(
      "SELECT model_input, input_hash FROM results WHERE asset = ? AND wall_ms >= ? AND "
      "wall_ms <= ? AND (? = '' OR channel = ?) AND (? = 0 OR verdict = 0) AND model_input IS NOT "
      "NULL "
      "ORDER BY wall_ms");
  if (!s) return fail("cannot read model inputs: ");
  StmtReset reset(*s);
  s->bind_text(1, q.asset);
  s->bind_int(2, q.from_ms);
  s->bind_int(3, q.to_ms);
  s->bind_text(4, q.channel);
  s->bind_text(5, q.channel);
  s->bind_int(6, q.normal_only ? 1 : 0);
  const std::size_t cap = std::max<std::size_t>(1, q.max_rows);
  std::uint64_t lcg = 0x9E3779B97F4A7C15ull;
  int rc;
  while ((rc = s->step()) == SQLITE_ROW) {
    if (static_cast<std::uint64_t>(s->col_int(1)) != q.input_hash) {
      ++out.other_settings;
      continue;
    }
    const auto blob = s->col_blob(0);
    auto row = detail::decode_samples(blob.data(), blob.size());
    if (row.empty()) continue;
    ++out.matched;
    if (out.rows.size() < cap) {
      out.rows.push_back(std::move(row));
    } else {
      // Reservoir sampling: a uniform sample of the whole range in bounded memory.
      lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
      const std::uint64_t j = (lcg >> 11) % out.matched;
      if (j < cap) out.rows[j] = std::move(row);
    }
  }
  if (rc != SQLITE_DONE) return fail("reading model inputs failed: ");
  return out;
}

std::vector<ScorePoint> Store::recent_scores(const std::string& asset, std::int64_t from_ms,
                                             std::int64_t to_ms, std::size_t limit,
                                             const std::string& channel) {
  std::vector<ScorePoint> out;
  auto& im = *impl_;
  std::lock_guard rl(im.reader_mu);
  Stmt* s = im.rdb.cached(
      "SELECT wall_ms, channel, score, verdict, iso_zone, velocity_rms FROM results "
      "WHERE asset = ? AND wall_ms >= ? AND wall_ms <= ? AND (? = '' OR channel = ?) "
      "ORDER BY wall_ms DESC, id DESC LIMIT ?");
  if (!s) return out;
  StmtReset reset(*s);
  s->bind_text(1, asset);
  s->bind_int(2, from_ms);
  s->bind_int(3, to_ms);
  s->bind_text(4, channel);
  s->bind_text(5, channel);
  s->bind_int(6, static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX)));
  while (s->step() == SQLITE_ROW) {
    ScorePoint p;
    p.wall_ms = s->col_int(0);
    p.channel = s->col_text(1);
    p.score = s->col_double(2);
    const auto v = s->col_int(3);
    p.verdict = v == 2 ? Verdict::alarm : v == 1 ? Verdict::warning : Verdict::normal;
    p.iso_zone = static_cast<int>(s->col_int(4));
    p.velocity_rms_mm_s = s->col_double(5);
    out.push_back(std::move(p));
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<AlertInfo> Store::alerts(std::optional<AlertState> state, std::size_t limit) {
  std::vector<AlertInfo> out;
  auto& im = *impl_;
  std::lock_guard rl(im.reader_mu);
  Stmt* s = im.rdb.cached(
      "SELECT id, asset, level, state, raised_ms, reason, score, acknowledged_by, "
      "acknowledged_ms, cleared_ms, raise_outbox_id IS NULL, "
      "(SELECT e.reason FROM alert_events e WHERE e.alert_id = alerts.id AND e.kind = 1 "
      "ORDER BY e.id DESC LIMIT 1) FROM alerts "
      "WHERE ?1 < 0 OR state = ?1 ORDER BY id DESC LIMIT ?2");
  if (!s) return out;
  StmtReset reset(*s);
  s->bind_int(1, state ? static_cast<int>(*state) : -1);
  s->bind_int(2, static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX)));
  while (s->step() == SQLITE_ROW) {
    AlertInfo a;
    a.id = static_cast<std::uint64_t>(s->col_int(0));
    a.asset = s->col_text(1);
    a.level = s->col_int(2) == 2 ? AlertLevel::alarm : AlertLevel::warning;
    const auto st = s->col_int(3);
    a.state = st == 2   ? AlertState::cleared
              : st == 1 ? AlertState::acknowledged
                        : AlertState::raised;
    a.raised_ms = s->col_int(4);
    a.reason = s->col_text(5);
    a.score = s->col_double(6);
    a.acknowledged_by = s->col_text(7);
    a.acknowledged_ms = s->col_int(8);
    a.cleared_ms = s->col_int(9);
    a.delivered = s->col_int(10) != 0;
    a.acknowledged_reason = s->col_text(11);
    out.push_back(std::move(a));
  }
  return out;
}

std::vector<HealthEvent> Store::health_history(const std::string& device, std::int64_t from_ms,
                                               std::int64_t to_ms, std::size_t limit) {
  std::vector<HealthEvent> out;
  auto& im = *impl_;
  std::lock_guard rl(im.reader_mu);
  Stmt* s = im.rdb.cached(
      "SELECT device, wall_ms, state, detail FROM health_events WHERE device = ? AND wall_ms >= ? "
      "AND wall_ms <= ? ORDER BY wall_ms DESC, id DESC LIMIT ?");
  if (!s) return out;
  StmtReset reset(*s);
  s->bind_text(1, device);
  s->bind_int(2, from_ms);
  s->bind_int(3, to_ms);
  s->bind_int(4, static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX)));
  while (s->step() == SQLITE_ROW)
    out.push_back(HealthEvent{s->col_text(0), s->col_int(1), s->col_text(2), s->col_text(3)});
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<ModelRecord> Store::models(const std::string& asset) {
  std::vector<ModelRecord> out;
  auto& im = *impl_;
  std::lock_guard rl(im.reader_mu);
  Stmt* s = im.rdb.cached(
      "SELECT asset, version, created_ms, state, feature_hash, path, note FROM models "
      "WHERE asset = ? ORDER BY created_ms, id");
  if (!s) return out;
  StmtReset reset(*s);
  s->bind_text(1, asset);
  while (s->step() == SQLITE_ROW)
    out.push_back(ModelRecord{s->col_text(0), s->col_text(1), s->col_int(2), s->col_text(3),
                              s->col_text(4), s->col_text(5), s->col_text(6)});
  return out;
}

std::optional<Snapshot> Store::snapshot_for_alert(std::uint64_t alert_id) {
  auto& im = *impl_;
  std::lock_guard rl(im.reader_mu);
  Stmt* s = im.rdb.cached(
      "SELECT alert_id, asset, channel, wall_ms, sample_rate_hz, units, samples FROM snapshots "
      "WHERE alert_id = ? ORDER BY id DESC LIMIT 1");
  if (!s) return std::nullopt;
  StmtReset reset(*s);
  s->bind_int(1, static_cast<std::int64_t>(alert_id));
  if (s->step() != SQLITE_ROW) return std::nullopt;
  Snapshot sn;
  sn.alert_id = static_cast<std::uint64_t>(s->col_int(0));
  sn.asset = s->col_text(1);
  sn.channel = s->col_text(2);
  sn.wall_ms = s->col_int(3);
  sn.sample_rate_hz = s->col_double(4);
  sn.units = s->col_int(5) == 1 ? AccelUnits::m_per_s2 : AccelUnits::g;
  const auto blob = s->col_blob(6);
  sn.samples = detail::decode_samples(blob.data(), blob.size());
  return sn;
}

StoreStats Store::stats() const {
  auto& im = *impl_;
  std::uint64_t queued = 0;
  {
    std::lock_guard lk(im.mu);
    queued = im.queue.size() + im.in_flight;
  }
  StoreStats s;
  {
    std::lock_guard slk(im.stats_mu);
    s = im.st;
  }
  s.queued_rows = queued;
  s.sqlite_memory_bytes = static_cast<std::uint64_t>(sqlite3_memory_used());
  s.quota_bytes = im.opt.quota_bytes;
  s.file_bytes = file_size(im.opt.path);
  s.wal_bytes = file_size(im.opt.path + "-wal");
  return s;
}

void Store::fetch(Lane lane, std::uint64_t after_id, std::size_t max, FetchDone done) {
  auto& im = *impl_;
  bool queued = false;
  try {
    std::lock_guard lk(im.fetch_mu);
    if (!im.fetch_stop) {
      Impl* p = &im;
      im.fetch_tasks.push_back([p, lane, after_id, max, done] {
        bool ok = true;
        auto recs = p->do_fetch(lane, after_id, max, &ok);
        if (done) done(std::move(recs), ok);
      });
      queued = true;
    }
  } catch (...) {
  }
  if (queued) {
    im.fetch_cv.notify_one();
  } else if (done) {  // closing (or out of memory): an empty answer, on this thread
    try {
      done({}, false);
    } catch (...) {
    }
  }
}

void Store::acknowledge(std::span<const std::uint64_t> ids) {
  if (ids.empty()) return;
  auto& im = *impl_;
  try {
    {
      std::lock_guard al(im.acked_mu);
      im.acked.insert(ids.begin(), ids.end());
    }
    std::lock_guard lk(im.mu);
    const bool was_idle = im.queue.empty() && im.ack_queue.empty();
    im.ack_queue.insert(im.ack_queue.end(), ids.begin(), ids.end());
    if (was_idle) {
      im.first_pending = Clock::now();
      im.work_cv.notify_one();
    }
  } catch (...) {  // allocation failure: the entries stay and are delivered again (duplicates)
  }
}

OutboxStats Store::outbox_stats() const {
  std::lock_guard slk(impl_->stats_mu);
  return impl_->ob;
}

void Store::on_outbox_grew(std::function<void()> cb) {
  std::lock_guard lk(impl_->mu);
  impl_->on_grew = std::move(cb);
}

}  // namespace vibgate::storage
