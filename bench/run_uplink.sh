#!/usr/bin/env bash
# Store and uplink benchmarks (docs/performance.md): outbox enqueue rate with group commit
# (bench_storage, Google Benchmark) and the drain to a local mosquitto against a bare libmosquitto
# publisher, without and with a subscriber (bench/uplink_drain.py). Release build in build-bench/.
# Usage: bench/run_uplink.sh [messages=100000] [rounds=3]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${VIBGATE_BUILD_DIR:-$root/build-bench}"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target uplink_driver bare_mosquitto_pub bench_storage >/dev/null
echo "== outbox enqueue (balanced durability, group commit)"
"$build/bench/bench_storage" --benchmark_min_time=1
echo "== drain to mosquitto, no subscriber"
/usr/bin/python3 "$root/bench/uplink_drain.py" "$build" --messages "${1:-100000}" --rounds "${2:-3}"
echo "== drain to mosquitto, one subscriber"
/usr/bin/python3 "$root/bench/uplink_drain.py" "$build" --messages "${1:-100000}" --rounds "${2:-3}" --subscriber
