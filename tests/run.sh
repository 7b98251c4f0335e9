#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds (Release, warnings as errors) and runs
# the unit tests, builds the Debian packages from that build and tests them installed (as root: it
# installs and purges them), checks the benchmark ratios against bench/baseline.json on the idle
# machine (bench/regress.py: fails when one is more than 20 % worse), then builds with
# AddressSanitizer + UBSan and runs every test there (the system tests, label "system", run only
# there: whole daemons against wall-clock waits), runs every libFuzzer target briefly, and the
# concurrency tests under ThreadSanitizer. A 5-minute soak of the release daemon runs in the
# background of the sanitizer stages (it checks memory and descriptors, not speed).
# docs/reliability.md says what each stage proves.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/deploy/install-deps.sh"
. "$root/deploy/ccache-env.sh"
jobs="${VIBGATE_JOBS:-2}"

echo "== release build and unit tests"
VIBGATE_BUILD_DIR="$root/build" "$root/deploy/build.sh"
ctest --test-dir "$root/build" --output-on-failure -j"$jobs" -LE system

echo "== Debian package: built from the release build above, lintian, installed, run, purged"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
VIBGATE_PREBUILT_DIR="$root/build" "$root/deploy/package.sh"
$SUDO "$root/tests/package/test_package.sh" "$root/build/deb"

# Before the background soak starts: the machine must be idle while the ratios are measured.
echo "== benchmark ratios against bench/baseline.json (fails when one is > 20 % worse)"
/usr/bin/python3 "$root/bench/regress.py" --build "$root/build" --json "$root/build/regress.json"

echo "== soak: 5 minutes of the benchmark load on the release daemon (in the background)"
/usr/bin/python3 "$root/tests/fault/soak_check.py" --build "$root/build" --seconds 300 \
  --json "$root/build/soak.json" > "$root/build/soak.log" 2>&1 &
soak_pid=$!

echo "== libFuzzer: every target on its regressions and seeds, then fuzzed ${VIBGATE_FUZZ_SECONDS:-5} s"
"$root/tests/fuzz/run_fuzzers.sh" --build-dir "$root/build-fuzz" \
  --seconds "${VIBGATE_FUZZ_SECONDS:-5}" --parallel "$jobs"

echo "== ASan+UBSan build and tests"
# -g1 (line tables: enough for the sanitizers' stack traces) keeps the two extra builds short.
cmake -S "$root" -B "$root/build-asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIBGATE_SANITIZE=ON \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
      -DVIBGATE_WERROR=ON -DVIBGATE_BUILD_BENCH=OFF >/dev/null
cmake --build "$root/build-asan" -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$root/build-asan" --output-on-failure -j"$jobs"

echo "== TSan: the concurrency tests (analytics worker with drift monitors and shadow models, storage writer and reader, Modbus workers, uplink on the loop)"
# Only what these tests need is built (CI time); tests/fault/tsan_all.sh runs the daemon's own
# end-to-end test under TSan too.
cmake -S "$root" -B "$root/build-tsan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIBGATE_TSAN=ON \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
      -DVIBGATE_WERROR=ON -DVIBGATE_BUILD_BENCH=OFF >/dev/null
cmake --build "$root/build-tsan" -j"$jobs" --target storage_test storage_crash_test \
  daemon_analytics_worker_test drift_worker_test model_shadow_test poll_driver uplink_driver
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$root/tests/tsan.supp" \
  ctest --test-dir "$root/build-tsan" --output-on-failure -j"$jobs" \
  -R '^(storage_test|storage_crash_test|daemon_analytics_worker_test|drift_worker_test|model_shadow_test|poller_peers|uplink_outage)$'

echo "== soak result"
soak_rc=0
wait "$soak_pid" || soak_rc=$?
cat "$root/build/soak.log"
exit "$soak_rc"
