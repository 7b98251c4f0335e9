// tests/fault/fault_vfs_preload.cpp — the fault-injecting VFS (fault_vfs.hpp) for a whole
// process without changing it: LD_PRELOAD=libvibgate_fault_vfs_preload.so makes "vibgate-fault"
// SQLite's default VFS before main() runs. Environment:
//   VIBGATE_FAULT_VFS_CTL=<file>     rules are read from this file whenever it changes: "ok",
//                                    "full", "fail write|sync|open N [persist]"
//   VIBGATE_FAULT_VFS_POWERLOSS=1    hold writes until fsync (a SIGKILL then acts as a power cut)
// Test-only: nothing of this is built into the gateway or shipped in the package.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "fault_vfs.hpp"

namespace {

__attribute__((constructor)) void vibgate_fault_vfs_preload() {
  using namespace vibgate::test::fault_vfs;
  const char* pl = std::getenv("VIBGATE_FAULT_VFS_POWERLOSS");
  const bool power_loss = pl && std::strcmp(pl, "1") == 0;
  set_power_loss(power_loss);
  if (const char* ctl = std::getenv("VIBGATE_FAULT_VFS_CTL"); ctl && *ctl) set_control_file(ctl);
  install(/*as_default=*/true);
  std::fprintf(stderr, "fault-vfs: installed as the default SQLite VFS%s\n",
               power_loss ? " (power-loss mode: writes held until fsync)" : "");
}

}  // namespace
