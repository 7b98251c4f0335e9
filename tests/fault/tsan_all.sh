#!/usr/bin/env bash
# ThreadSanitizer beyond CI: builds the TSan tree (build-tsan, or $1) fully and runs the
# concurrency tests of tests/run.sh plus the daemon end to end (vibgated with its loop, analytics
# worker, storage writer and reader, Modbus workers, control server, facade and uplink threads)
# and the control-socket test. About 12 minutes on 2 cores. Suppressions: tests/tsan.supp.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build-tsan}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIBGATE_TSAN=ON \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
      -DVIBGATE_WERROR=ON -DVIBGATE_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j"${VIBGATE_JOBS:-2}"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$root/tests/tsan.supp" \
  ctest --test-dir "$build" --output-on-failure -j"${VIBGATE_JOBS:-2}" \
  -R '^(storage_test|storage_crash_test|daemon_analytics_worker_test|daemon_control_test|poller_peers|uplink_outage|daemon_e2e)$'
