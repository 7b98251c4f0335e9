#!/usr/bin/env bash
# Ingest benchmark: vibgate-sim serves N Modbus TCP devices on loopback, ingest_poll_driver polls
# them all at 10 Hz and reports missed deadlines, jitter, CPU and memory (docs/performance.md).
# Usage: bench/run_ingest.sh [devices=100] [seconds=30]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${VIBGATE_BUILD_DIR:-$root/build}"
devices="${1:-100}"
seconds="${2:-30}"
cmake --build "$build" -j2 --target vibgate-sim ingest_poll_driver >/dev/null
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1] % 20000 + 20000)')
log="$(mktemp)"
"$build/gateway/vibgate-sim" --devices "$devices" --base-port "$port" >"$log" 2>&1 &
sim=$!
trap 'kill $sim 2>/dev/null; wait $sim 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q "vibgate-sim: ready" "$log" && break; sleep 0.1; done
grep -q "vibgate-sim: ready" "$log" || { echo "vibgate-sim did not start:"; cat "$log"; exit 1; }
"$build/bench/ingest_poll_driver" --devices "$devices" --base-port "$port" --interval-ms 100 --seconds "$seconds"
echo "sim_cpu_seconds=$(ps -o times= -p $sim | tr -d ' ')"
