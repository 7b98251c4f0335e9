// tests/fault/fault_vfs.cpp — the fault-injecting SQLite VFS (see fault_vfs.hpp for what it
// does). Every sqlite3_file of this VFS is a File header followed by the wrapped file of the real
// VFS; power-loss overlays are per path and shared by all connections of the process, as the
// page cache is, and outlive the handles until the file is deleted.
#include "fault_vfs.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <vector>

namespace vibgate::test::fault_vfs {
namespace {

// ---- rules ----

enum class Mode { none, full, nth };

struct Rule {
  Mode mode = Mode::none;
  Op op = Op::write;
  long n = 0;
  bool persist = false;
};

std::mutex rule_mu;
Rule rule;
std::atomic<long> call_count[3];
std::atomic<long> injected_total{0};
std::atomic<bool> reported{false};  // this rule's first injection was reported
// Objects with constructors are built on first use: the LD_PRELOAD module configures the VFS
// from its own constructor, which may run before this file's static initializers.
std::string& control_path() {  // under rule_mu
  static std::string path;
  return path;
}
struct timespec control_mtime {};
off_t control_size = -1;

const char* op_name(Op op) {
  switch (op) {
    case Op::write:
      return "write";
    case Op::sync:
      return "sync";
    case Op::open:
      return "open";
  }
  return "?";
}

void set_rule_locked(const Rule& r) {
  rule = r;
  for (auto& c : call_count) c = 0;
  reported = false;
}

// Parses a control line into `r`; returns "" or a one-line error.
std::string parse_rule(const std::string& line, Rule& r) {
  std::istringstream ls(line);
  std::string w, what, p;
  ls >> w;
  r = Rule{};
  if (w.empty() || w == "ok") return "";
  if (w == "full") {
    r.mode = Mode::full;
    return "";
  }
  if (w != "fail") return "fault rule '" + line + "': expected ok, full or fail";
  ls >> what >> r.n >> p;
  if (what != "write" && what != "sync" && what != "open")
    return "fault rule '" + line + "': operation must be write, sync or open";
  if (r.n < 1) return "fault rule '" + line + "': N must be >= 1";
  if (!p.empty() && p != "persist") return "fault rule '" + line + "': unknown '" + p + "'";
  r.mode = Mode::nth;
  r.op = what == "sync" ? Op::sync : what == "open" ? Op::open : Op::write;
  r.persist = p == "persist";
  return "";
}

// Re-reads the control file when it changed (stat per call: cheap next to a write or fsync).
void poll_control() {
  std::lock_guard lk(rule_mu);
  if (control_path().empty()) return;
  struct stat st {};
  if (::stat(control_path().c_str(), &st) != 0) return;
  if (st.st_size == control_size && st.st_mtim.tv_sec == control_mtime.tv_sec &&
      st.st_mtim.tv_nsec == control_mtime.tv_nsec)
    return;
  control_size = st.st_size;
  control_mtime = st.st_mtim;
  std::ifstream in(control_path());
  std::string line;
  std::getline(in, line);
  Rule r;
  if (auto err = parse_rule(line, r); !err.empty()) {
    std::fprintf(stderr, "fault-vfs: %s: %s (ignored)\n", control_path().c_str(), err.c_str());
    return;
  }
  set_rule_locked(r);
  std::fprintf(stderr, "fault-vfs: rule now '%s'\n", line.c_str());
}

// Counts a call of `op`; returns the SQLite error to inject, or SQLITE_OK.
int check(Op op, const char* file) {
  poll_control();
  const long c = ++call_count[static_cast<int>(op)];
  Rule r;
  {
    std::lock_guard lk(rule_mu);
    r = rule;
  }
  int rc = SQLITE_OK;
  if (r.mode == Mode::full && op != Op::open) {
    rc = op == Op::write ? SQLITE_FULL : SQLITE_IOERR_FSYNC;
  } else if (r.mode == Mode::nth && r.op == op && (c == r.n || (r.persist && c > r.n))) {
    rc = op == Op::write  ? SQLITE_IOERR_WRITE
         : op == Op::sync ? SQLITE_IOERR_FSYNC
                          : SQLITE_CANTOPEN;
  }
  if (rc != SQLITE_OK) {
    ++injected_total;
    if (!reported.exchange(true)) {
      std::lock_guard lk(rule_mu);
      if (!control_path().empty())
        std::fprintf(stderr, "fault-vfs: injected %s on %s #%ld (%s)\n", sqlite3_errstr(rc),
                     op_name(op), c, file ? file : "temp file");
    }
  }
  return rc;
}

// ---- power-loss overlays ----

std::atomic<bool> power_loss{false};

struct Overlay {
  std::mutex mu;
  bool loaded = false;                           // size is known
  sqlite3_int64 size = 0;                        // the file's size as the process sees it
  std::optional<sqlite3_int64> min_trunc;        // smallest unsynced truncation
  std::map<sqlite3_int64, std::string> extents;  // unsynced writes, non-overlapping
  std::size_t bytes = 0;
};

std::mutex overlays_mu;
std::map<std::string, Overlay*>& overlays() {  // never freed: a handle may still point at one
  static std::map<std::string, Overlay*> m;
  return m;
}

Overlay* overlay_for(const char* path) {
  std::lock_guard lk(overlays_mu);
  auto& o = overlays()[path];
  if (!o) o = new Overlay;
  return o;
}

struct File {
  sqlite3_file base;
  sqlite3_file* real;  // the wrapped file, allocated right after this struct
  Overlay* overlay;    // null: writes go straight through
  const char* name;    // SQLite keeps the name valid while the file is open
};

sqlite3_vfs* real_vfs = nullptr;
sqlite3_vfs vfs{};
sqlite3_io_methods methods{};

File* file_of(sqlite3_file* f) { return reinterpret_cast<File*>(f); }
sqlite3_file* real(sqlite3_file* f) { return file_of(f)->real; }
const sqlite3_io_methods* rm(sqlite3_file* f) { return real(f)->pMethods; }

// Under ov.mu.
int load(Overlay& ov, sqlite3_file* f) {
  if (ov.loaded) return SQLITE_OK;
  sqlite3_int64 s = 0;
  const int rc = rm(f)->xFileSize(real(f), &s);
  if (rc != SQLITE_OK) return rc;
  ov.size = s;
  ov.loaded = true;
  return SQLITE_OK;
}

// Under ov.mu: drops unsynced bytes at or beyond `from` / in [from, to).
void cut(Overlay& ov, sqlite3_int64 from, sqlite3_int64 to) {
  auto it = ov.extents.lower_bound(from);
  if (it != ov.extents.begin()) {
    auto prev = std::prev(it);
    if (prev->first + static_cast<sqlite3_int64>(prev->second.size()) > from) it = prev;
  }
  std::vector<std::pair<sqlite3_int64, std::string>> keep;
  while (it != ov.extents.end() && it->first < to) {
    const sqlite3_int64 s = it->first, e = s + static_cast<sqlite3_int64>(it->second.size());
    if (s < from) keep.emplace_back(s, it->second.substr(0, static_cast<std::size_t>(from - s)));
    if (e > to) keep.emplace_back(to, it->second.substr(static_cast<std::size_t>(to - s)));
    ov.bytes -= it->second.size();
    it = ov.extents.erase(it);
  }
  for (auto& [o, d] : keep) {
    ov.bytes += d.size();
    ov.extents.emplace(o, std::move(d));
  }
}

int x_close(sqlite3_file* f) { return rm(f)->xClose(real(f)); }

int x_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  Overlay* ov = file_of(f)->overlay;
  if (!ov) return rm(f)->xRead(real(f), buf, n, off);
  std::lock_guard lk(ov->mu);
  if (int rc = load(*ov, f); rc != SQLITE_OK) return rc;
  auto* out = static_cast<char*>(buf);
  std::memset(out, 0, static_cast<std::size_t>(n));
  const sqlite3_int64 avail = std::clamp<sqlite3_int64>(ov->size - off, 0, n);
  if (avail > 0) {
    const int rc = rm(f)->xRead(real(f), out, static_cast<int>(avail), off);
    if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) return rc;
    // The file may still hold bytes beyond an unsynced truncation: those read as zeros.
    if (ov->min_trunc && off + avail > *ov->min_trunc) {
      const sqlite3_int64 z = std::max(off, *ov->min_trunc);
      std::memset(out + (z - off), 0, static_cast<std::size_t>(off + avail - z));
    }
    auto it = ov->extents.lower_bound(off);
    if (it != ov->extents.begin()) it = std::prev(it);
    for (; it != ov->extents.end() && it->first < off + avail; ++it) {
      const sqlite3_int64 s = std::max(off, it->first);
      const sqlite3_int64 e =
          std::min(off + avail, it->first + static_cast<sqlite3_int64>(it->second.size()));
      if (s < e)
        std::memcpy(out + (s - off), it->second.data() + (s - it->first),
                    static_cast<std::size_t>(e - s));
    }
  }
  return avail < n ? SQLITE_IOERR_SHORT_READ : SQLITE_OK;
}

int x_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  if (int rc = check(Op::write, file_of(f)->name); rc != SQLITE_OK) return rc;
  Overlay* ov = file_of(f)->overlay;
  if (!ov) return rm(f)->xWrite(real(f), buf, n, off);
  std::lock_guard lk(ov->mu);
  if (int rc = load(*ov, f); rc != SQLITE_OK) return rc;
  cut(*ov, off, off + n);
  ov->extents.emplace(off, std::string(static_cast<const char*>(buf), static_cast<std::size_t>(n)));
  ov->bytes += static_cast<std::size_t>(n);
  ov->size = std::max(ov->size, off + n);
  return SQLITE_OK;
}

int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
  Overlay* ov = file_of(f)->overlay;
  if (!ov) return rm(f)->xTruncate(real(f), size);
  std::lock_guard lk(ov->mu);
  if (int rc = load(*ov, f); rc != SQLITE_OK) return rc;
  cut(*ov, size, INT64_MAX);
  ov->size = size;
  ov->min_trunc = std::min(ov->min_trunc.value_or(size), size);
  return SQLITE_OK;
}

int x_sync(sqlite3_file* f, int flags) {
  if (int rc = check(Op::sync, file_of(f)->name); rc != SQLITE_OK) return rc;
  Overlay* ov = file_of(f)->overlay;
  if (ov) {
    // The fsync makes everything written so far durable: apply it to the file first.
    std::lock_guard lk(ov->mu);
    if (ov->min_trunc) {
      if (int rc = rm(f)->xTruncate(real(f), *ov->min_trunc); rc != SQLITE_OK) return rc;
    }
    for (auto& [o, d] : ov->extents)
      if (int rc = rm(f)->xWrite(real(f), d.data(), static_cast<int>(d.size()), o); rc != SQLITE_OK)
        return rc;
    sqlite3_int64 s = 0;
    if (ov->loaded && rm(f)->xFileSize(real(f), &s) == SQLITE_OK && s > ov->size)
      rm(f)->xTruncate(real(f), ov->size);
    ov->extents.clear();
    ov->bytes = 0;
    ov->min_trunc.reset();
  }
  return rm(f)->xSync(real(f), flags);
}

int x_file_size(sqlite3_file* f, sqlite3_int64* s) {
  Overlay* ov = file_of(f)->overlay;
  if (!ov) return rm(f)->xFileSize(real(f), s);
  std::lock_guard lk(ov->mu);
  if (int rc = load(*ov, f); rc != SQLITE_OK) return rc;
  *s = ov->size;
  return SQLITE_OK;
}

int x_lock(sqlite3_file* f, int l) { return rm(f)->xLock(real(f), l); }
int x_unlock(sqlite3_file* f, int l) { return rm(f)->xUnlock(real(f), l); }
int x_check_reserved(sqlite3_file* f, int* r) { return rm(f)->xCheckReservedLock(real(f), r); }
int x_file_control(sqlite3_file* f, int op, void* a) {
  // A size hint may make the real VFS extend the file behind the overlay: only a hint, skip it.
  if (file_of(f)->overlay && op == SQLITE_FCNTL_SIZE_HINT) return SQLITE_OK;
  return rm(f)->xFileControl(real(f), op, a);
}
int x_sector_size(sqlite3_file* f) { return rm(f)->xSectorSize(real(f)); }
int x_device_chars(sqlite3_file* f) { return rm(f)->xDeviceCharacteristics(real(f)); }
int x_shm_map(sqlite3_file* f, int pg, int sz, int ext, void volatile** p) {
  return rm(f)->xShmMap(real(f), pg, sz, ext, p);
}
int x_shm_lock(sqlite3_file* f, int off, int n, int flags) {
  return rm(f)->xShmLock(real(f), off, n, flags);
}
void x_shm_barrier(sqlite3_file* f) { rm(f)->xShmBarrier(real(f)); }
int x_shm_unmap(sqlite3_file* f, int del) { return rm(f)->xShmUnmap(real(f), del); }
int x_fetch(sqlite3_file* f, sqlite3_int64 o, int n, void** p) {
  if (file_of(f)->overlay) {  // memory-mapped reads would bypass the overlay
    *p = nullptr;
    return SQLITE_OK;
  }
  return rm(f)->xFetch(real(f), o, n, p);
}
int x_unfetch(sqlite3_file* f, sqlite3_int64 o, void* p) {
  if (file_of(f)->overlay) return SQLITE_OK;
  return rm(f)->xUnfetch(real(f), o, p);
}

int x_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out) {
  auto* file = file_of(f);
  file->real = reinterpret_cast<sqlite3_file*>(file + 1);
  file->real->pMethods = nullptr;
  file->overlay = nullptr;
  file->name = name;
  f->pMethods = nullptr;
  if (int rc = check(Op::open, name); rc != SQLITE_OK) return rc;
  const int rc = real_vfs->xOpen(real_vfs, name, file->real, flags, out);
  f->pMethods = file->real->pMethods ? &methods : nullptr;
  constexpr int kDurable = SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL;
  if (rc == SQLITE_OK && name && power_loss.load() && (flags & kDurable))
    file->overlay = overlay_for(name);
  return rc;
}

int x_delete(sqlite3_vfs*, const char* name, int sync_dir) {
  {
    std::lock_guard lk(overlays_mu);
    if (auto it = overlays().find(name); it != overlays().end()) {
      Overlay& ov = *it->second;
      std::lock_guard olk(ov.mu);
      ov.extents.clear();
      ov.bytes = 0;
      ov.min_trunc.reset();
      ov.loaded = false;
    }
  }
  return real_vfs->xDelete(real_vfs, name, sync_dir);
}

}  // namespace

void install(bool as_default) {
  static std::once_flag once;
  std::call_once(once, [as_default] {
    real_vfs = sqlite3_vfs_find(nullptr);
    vfs = *real_vfs;
    vfs.zName = kName;
    vfs.szOsFile = static_cast<int>(sizeof(File)) + real_vfs->szOsFile;
    vfs.xOpen = x_open;
    vfs.xDelete = x_delete;
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
    sqlite3_vfs_register(&vfs, as_default ? 1 : 0);
  });
}

void set_full(bool on) {
  std::lock_guard lk(rule_mu);
  Rule r;
  r.mode = on ? Mode::full : Mode::none;
  set_rule_locked(r);
}

void fail_nth(Op op, long n, bool persist) {
  std::lock_guard lk(rule_mu);
  set_rule_locked(Rule{Mode::nth, op, n, persist});
}

void clear() { set_full(false); }

std::string apply_command(const std::string& line) {
  Rule r;
  if (auto err = parse_rule(line, r); !err.empty()) return err;
  std::lock_guard lk(rule_mu);
  set_rule_locked(r);
  return "";
}

void set_control_file(const std::string& path) {
  std::lock_guard lk(rule_mu);
  control_path() = path;
  control_size = -1;
}

long injected() { return injected_total.load(); }
long calls(Op op) { return call_count[static_cast<int>(op)].load(); }

void set_power_loss(bool on) { power_loss = on; }

std::size_t unsynced_bytes() {
  std::lock_guard lk(overlays_mu);
  std::size_t total = 0;
  for (auto& [path, ov] : overlays()) {
    std::lock_guard olk(ov->mu);
    total += ov->bytes;
  }
  return total;
}

}  // namespace vibgate::test::fault_vfs
