// storage/src/sqlite_db.hpp — thin RAII wrappers over an sqlite3 connection and its prepared
// statements. Internal to storage: sqlite3 types never reach the public headers.
//
// A Db is used by one thread at a time (the store serializes access); nothing here locks.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>

namespace vibgate::storage::detail {

// SQLite result codes (extended) as std::error_code; message() is sqlite3_errstr.
const std::error_category& sqlite_category();
inline std::error_code sqlite_error(int rc) { return {rc, sqlite_category()}; }

// One prepared statement. Binds use SQLITE_STATIC: the bound buffers must outlive step(), and
// callers reset() right after stepping (the cached statements are reused, so always reset).
class Stmt {
 public:
  Stmt() = default;
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(Stmt&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  Stmt& operator=(Stmt&& o) noexcept {
    if (this != &o) {
      sqlite3_finalize(s_);
      s_ = o.s_;
      o.s_ = nullptr;
    }
    return *this;
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  sqlite3_stmt* get() const { return s_; }
  void bind_int(int i, std::int64_t v) { sqlite3_bind_int64(s_, i, v); }
  void bind_double(int i, double v) { sqlite3_bind_double(s_, i, v); }
  void bind_text(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  }
  void bind_blob(int i, std::string_view v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  }
  void bind_null(int i) { sqlite3_bind_null(s_, i); }
  int step() { return sqlite3_step(s_); }
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }

  std::int64_t col_int(int i) const { return sqlite3_column_int64(s_, i); }
  double col_double(int i) const { return sqlite3_column_double(s_, i); }
  bool col_null(int i) const { return sqlite3_column_type(s_, i) == SQLITE_NULL; }
  std::string col_text(int i) const {
    const auto* p = sqlite3_column_text(s_, i);
    const int n = sqlite3_column_bytes(s_, i);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n))
             : std::string();
  }
  // The blob stays valid until the next step/reset of this statement.
  std::string_view col_blob(int i) const {
    const void* p = sqlite3_column_blob(s_, i);
    const int n = sqlite3_column_bytes(s_, i);
    return p ? std::string_view(static_cast<const char*>(p), static_cast<std::size_t>(n))
             : std::string_view();
  }

 private:
  sqlite3_stmt* s_ = nullptr;
};

// Resets a statement when leaving scope (also on early error returns).
class StmtReset {
 public:
  explicit StmtReset(Stmt& s) : s_(s) {}
  ~StmtReset() { s_.reset(); }
  StmtReset(const StmtReset&) = delete;
  StmtReset& operator=(const StmtReset&) = delete;

 private:
  Stmt& s_;
};

class Db {
 public:
  Db() = default;
  ~Db() { close(); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Opens `path` with sqlite3_open_v2 flags (SQLITE_OPEN_*), through VFS `vfs` (empty: the
  // default). Extended result codes are enabled. Errors: the SQLite code (errmsg() explains).
  std::error_code open(const std::string& path, int flags, const std::string& vfs);
  // Finalizes the cached statements and closes the connection (no-op when closed).
  void close();
  bool is_open() const { return db_ != nullptr; }
  sqlite3* get() const { return db_; }
  std::string errmsg() const { return db_ ? sqlite3_errmsg(db_) : "not open"; }

  // Runs one or more statements that return no rows of interest.
  std::error_code exec(const char* sql);
  // Prepares `sql` once per connection and returns the cached statement (null on error).
  Stmt* cached(const char* sql);
  // First column of the first row of `sql`, or nullopt on error / no row (errcode() tells).
  std::optional<std::int64_t> query_int(const char* sql, std::error_code* ec = nullptr);
  std::optional<std::string> query_text(const char* sql, std::error_code* ec = nullptr);
  std::int64_t changes() const { return sqlite3_changes64(db_); }
  std::int64_t last_rowid() const { return sqlite3_last_insert_rowid(db_); }

 private:
  // Shared body of query_int/query_text: `get` reads column 0 of the first row.
  template <typename T, typename Get>
  std::optional<T> query_first(const char* sql, std::error_code* ec, Get get);

  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, std::unique_ptr<Stmt>> cache_;
};

}  // namespace vibgate::storage::detail
