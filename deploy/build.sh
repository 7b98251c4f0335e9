#!/usr/bin/env bash
# Configures and builds vibgate into build/ (Release, warnings as errors). Extra args go to cmake.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${VIBGATE_BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DVIBGATE_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"${VIBGATE_JOBS:-2}"
