// storage/src/schema.hpp — opening the database file: sanity checks (newer schema, corruption),
// moving a bad file aside, WAL/auto_vacuum setup and the ordered schema migrations.
#pragma once

#include <string>
#include <system_error>

#include "sqlite_db.hpp"
#include "vibgate/storage/store.hpp"

namespace vibgate::storage::detail {

struct DbOpen {
  std::error_code ec;   // StoreErrc on failure
  std::string message;  // one line naming the file when ec is set
  std::string notice;   // "moved ... aside to ..." when a bad file was replaced
};

// Opens options.path read-write on `db` (creating it), refuses (or moves aside, with
// options.move_aside_bad_database) a newer or corrupt file, and migrates to kSchemaVersion.
// On return without error `db` is in WAL mode with auto_vacuum=INCREMENTAL. Caller's thread;
// runs PRAGMA quick_check, which reads the whole file (O(file size), ~1 s per few hundred MiB).
DbOpen open_database(Db& db, const StoreOptions& options);

// "yyyymmddThhmmssZ" for the current UTC time (names of moved-aside files).
std::string utc_stamp();

}  // namespace vibgate::storage::detail
