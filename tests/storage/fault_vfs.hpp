// tests/storage/fault_vfs.hpp — an SQLite VFS shim for fault injection (SQLite's own testing
// approach): "vibgate-fault" wraps the default VFS and forwards every call, except that while
// fault_vfs::failing is set, xWrite returns SQLITE_FULL and xSync SQLITE_IOERR_FSYNC — a full or
// failing disk as the store sees it. Tests open the store with StoreOptions::vfs_name.
// Limits: only xWrite/xSync fail; shared-memory (WAL index) and reads always succeed.
#pragma once

#include <sqlite3.h>

#include <atomic>

namespace vibgate::storage::test::fault_vfs {

inline const char* const kName = "vibgate-fault";
inline std::atomic<bool> failing{false};
inline std::atomic<long> failed_calls{0};

namespace detail {
struct File {
  sqlite3_file base;
  sqlite3_file* real;  // the wrapped file, allocated right after this struct
};
inline sqlite3_vfs* real_vfs = nullptr;
inline sqlite3_vfs vfs{};
inline sqlite3_io_methods methods{};

inline sqlite3_file* real(sqlite3_file* f) { return reinterpret_cast<File*>(f)->real; }
inline const sqlite3_io_methods* rm(sqlite3_file* f) { return real(f)->pMethods; }

inline int x_close(sqlite3_file* f) { return rm(f)->xClose(real(f)); }
inline int x_read(sqlite3_file* f, void* b, int n, sqlite3_int64 o) {
  return rm(f)->xRead(real(f), b, n, o);
}
inline int x_write(sqlite3_file* f, const void* b, int n, sqlite3_int64 o) {
  if (failing.load()) {
    failed_calls++;
    return SQLITE_FULL;
  }
  return rm(f)->xWrite(real(f), b, n, o);
}
inline int x_truncate(sqlite3_file* f, sqlite3_int64 s) { return rm(f)->xTruncate(real(f), s); }
inline int x_sync(sqlite3_file* f, int flags) {
  if (failing.load()) {
    failed_calls++;
    return SQLITE_IOERR_FSYNC;
  }
  return rm(f)->xSync(real(f), flags);
}
inline int x_file_size(sqlite3_file* f, sqlite3_int64* s) { return rm(f)->xFileSize(real(f), s); }
inline int x_lock(sqlite3_file* f, int l) { return rm(f)->xLock(real(f), l); }
inline int x_unlock(sqlite3_file* f, int l) { return rm(f)->xUnlock(real(f), l); }
inline int x_check_reserved(sqlite3_file* f, int* r) {
  return rm(f)->xCheckReservedLock(real(f), r);
}
inline int x_file_control(sqlite3_file* f, int op, void* a) {
  return rm(f)->xFileControl(real(f), op, a);
}
inline int x_sector_size(sqlite3_file* f) { return rm(f)->xSectorSize(real(f)); }
inline int x_device_chars(sqlite3_file* f) { return rm(f)->xDeviceCharacteristics(real(f)); }
inline int x_shm_map(sqlite3_file* f, int pg, int sz, int ext, void volatile** p) {
  return rm(f)->xShmMap(real(f), pg, sz, ext, p);
}
inline int x_shm_lock(sqlite3_file* f, int off, int n, int flags) {
  return rm(f)->xShmLock(real(f), off, n, flags);
}
inline void x_shm_barrier(sqlite3_file* f) { rm(f)->xShmBarrier(real(f)); }
inline int x_shm_unmap(sqlite3_file* f, int del) { return rm(f)->xShmUnmap(real(f), del); }
inline int x_fetch(sqlite3_file* f, sqlite3_int64 o, int n, void** p) {
  return rm(f)->xFetch(real(f), o, n, p);
}
inline int x_unfetch(sqlite3_file* f, sqlite3_int64 o, void* p) {
  return rm(f)->xUnfetch(real(f), o, p);
}

inline int x_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out) {
  auto* file = reinterpret_cast<File*>(f);
  file->real = reinterpret_cast<sqlite3_file*>(file + 1);
  file->real->pMethods = nullptr;
  const int rc = real_vfs->xOpen(real_vfs, name, file->real, flags, out);
  file->base.pMethods = file->real->pMethods ? &methods : nullptr;
  return rc;
}
}  // namespace detail

// Registers the VFS once (not as the default). Call from the test before opening a store.
inline void install() {
  using namespace detail;
  if (real_vfs) return;
  real_vfs = sqlite3_vfs_find(nullptr);
  vfs = *real_vfs;
  vfs.zName = kName;
  vfs.szOsFile = static_cast<int>(sizeof(File)) + real_vfs->szOsFile;
  vfs.xOpen = x_open;
  vfs.pNext = nullptr;
  methods = sqlite3_io_methods{3,
                               x_close,
                               x_read,
                               x_write,
                               x_truncate,
                               x_sync,
                               x_file_size,
                               x_lock,
                               x_unlock,
                               x_check_reserved,
                               x_file_control,
                               x_sector_size,
                               x_device_chars,
                               x_shm_map,
                               x_shm_lock,
                               x_shm_barrier,
                               x_shm_unmap,
                               x_fetch,
                               x_unfetch};
  sqlite3_vfs_register(&vfs, 0);
}

}  // namespace vibgate::storage::test::fault_vfs
