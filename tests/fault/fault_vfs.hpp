// tests/fault/fault_vfs.hpp — an SQLite VFS shim for fault injection, SQLite's own testing
// approach. "vibgate-fault" wraps the platform VFS and forwards every call, except that it can:
//   - make the disk full: every xWrite returns SQLITE_FULL and every xSync SQLITE_IOERR_FSYNC;
//   - fail the Nth xWrite, xSync or xOpen from now (SQLITE_IOERR_WRITE, SQLITE_IOERR_FSYNC,
//     SQLITE_CANTOPEN), once or for every call from the Nth on ("persist");
//   - simulate power loss: writes to database, WAL and journal files are held in memory (a model
//     of the OS page cache) and reach the file only at the next successful xSync of that file. A
//     process killed with SIGKILL then leaves exactly what had been fsynced — everything written
//     since the last completed fsync of each file is gone, as after a power cut.
// Used in-process by the storage tests (StoreOptions::vfs_name = kName) and, through the
// LD_PRELOAD module fault_vfs_preload.cpp, under the whole daemon.
//
// Threads: every function is thread-safe. Limits: shared memory (the WAL index) and reads never
// fail; power-loss mode keeps the order of writes within a file but not across files beyond what
// fsync orders, and treats file creation and deletion as durable at once.
#pragma once

#include <cstddef>
#include <string>

namespace vibgate::test::fault_vfs {

inline constexpr const char* kName = "vibgate-fault";

enum class Op : int { write = 0, sync = 1, open = 2 };

// Registers the VFS once (later calls do nothing). as_default: SQLite's default VFS from now on,
// so connections that name no VFS use it too (the LD_PRELOAD module does that).
void install(bool as_default = false);

// Fault rules replace each other; call counters restart at each rule change.
void set_full(bool on);                              // disk full until set_full(false) or clear()
void fail_nth(Op op, long n, bool persist = false);  // n >= 1
void clear();                                        // no faults

// A rule as a control line: "ok", "full", "fail write|sync|open N [persist]". Returns "" or a
// one-line error. The LD_PRELOAD module reads these from its control file.
std::string apply_command(const std::string& line);

// Watches `path` (the LD_PRELOAD module): whenever its contents change, its first line is applied
// as a rule, and each rule's first injected fault is reported on stderr ("fault-vfs: ...").
void set_control_file(const std::string& path);

long injected();    // faults injected since the process started
long calls(Op op);  // calls of `op` since the last rule change

// Power-loss mode: set before the files are opened; unsynced_bytes() is what a cut would lose.
void set_power_loss(bool on);
std::size_t unsynced_bytes();

}  // namespace vibgate::test::fault_vfs
