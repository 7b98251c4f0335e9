#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds (Release, warnings as errors) and runs
# every test, builds the Debian packages from that build and tests them installed (as root: it
# installs and purges them), then repeats the build and the tests with AddressSanitizer + UBSan.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/deploy/install-deps.sh"
jobs="${VIBGATE_JOBS:-2}"

echo "== release build and tests"
VIBGATE_BUILD_DIR="$root/build" "$root/deploy/build.sh"
ctest --test-dir "$root/build" --output-on-failure -j"$jobs"

echo "== Debian package: built from the release build above, lintian, installed, run, purged"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
VIBGATE_PREBUILT_DIR="$root/build" "$root/deploy/package.sh"
$SUDO "$root/tests/package/test_package.sh" "$root/build/deb"

echo "== ASan+UBSan build and tests"
cmake -S "$root" -B "$root/build-asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIBGATE_SANITIZE=ON \
      -DVIBGATE_WERROR=ON -DVIBGATE_BUILD_BENCH=OFF >/dev/null
cmake --build "$root/build-asan" -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$root/build-asan" --output-on-failure -j"$jobs"
