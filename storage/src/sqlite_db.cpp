// sqlite_db.cpp — Db (connection + statement cache) and the SQLite error category.
#include "sqlite_db.hpp"

namespace vibgate::storage::detail {
namespace {

class SqliteCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "sqlite"; }
  std::string message(int rc) const override { return sqlite3_errstr(rc); }
};

}  // namespace

const std::error_category& sqlite_category() {
  static const SqliteCategory cat;
  return cat;
}

std::error_code Db::open(const std::string& path, int flags, const std::string& vfs) {
  close();
  const int rc = sqlite3_open_v2(path.c_str(), &db_, flags, vfs.empty() ? nullptr : vfs.c_str());
  if (db_) sqlite3_extended_result_codes(db_, 1);
  if (rc != SQLITE_OK) return sqlite_error(rc);  // db_ kept so errmsg() can explain; close() frees
  return {};
}

void Db::close() {
  cache_.clear();
  if (db_) sqlite3_close_v2(db_);
  db_ = nullptr;
}

std::error_code Db::exec(const char* sql) {
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? std::error_code() : sqlite_error(rc);
}

Stmt* Db::cached(const char* sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) return it->second.get();
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
    sqlite3_finalize(s);
    return nullptr;
  }
  auto [pos, ok] = cache_.emplace(sql, std::make_unique<Stmt>(s));
  (void)ok;
  return pos->second.get();
}

template <typename T, typename Get>
std::optional<T> Db::query_first(const char* sql, std::error_code* ec, Get get) {
  Stmt* s = cached(sql);
  if (!s) {
    if (ec) *ec = sqlite_error(sqlite3_extended_errcode(db_));
    return std::nullopt;
  }
  StmtReset reset(*s);
  const int rc = s->step();
  if (rc == SQLITE_ROW) return get(*s);
  if (ec) *ec = rc == SQLITE_DONE ? std::error_code() : sqlite_error(rc);
  return std::nullopt;
}

std::optional<std::int64_t> Db::query_int(const char* sql, std::error_code* ec) {
  return query_first<std::int64_t>(sql, ec, [](Stmt& s) { return s.col_int(0); });
}

std::optional<std::string> Db::query_text(const char* sql, std::error_code* ec) {
  return query_first<std::string>(sql, ec, [](Stmt& s) { return s.col_text(0); });
}

}  // namespace vibgate::storage::detail
