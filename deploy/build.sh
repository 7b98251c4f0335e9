#!/usr/bin/env bash
# Configures and builds vibgate into build/ (Release, warnings as errors).
# VIBGATE_TARGET limits the build to the listed targets (space-separated).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${VIBGATE_BUILD_DIR:-$root/build}"
. "$root/deploy/ccache-env.sh"
cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DVIBGATE_WERROR=ON -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
if [ -n "${VIBGATE_TARGET:-}" ]; then
  cmake --build "$dir" -j"${VIBGATE_JOBS:-2}" --target $VIBGATE_TARGET  # space-separated list
else
  cmake --build "$dir" -j"${VIBGATE_JOBS:-2}"
fi
