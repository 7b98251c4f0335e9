#!/usr/bin/python3
"""Short soak for CI (issue 7; the 1-hour soak is in docs/performance.md): the whole daemon under
the benchmark load (bench/system_bench.py --waveform-devices DEVICES: simulated machines, 25.6 kHz waveforms and
tags over Modbus TCP, a model per asset) for SECONDS, sampled once a minute, then checks:

  * the daemon's own heap (glibc heap in use minus SQLite's heap) is flat within 5 % from minute 1
    to the end — SQLite's page caches fill for several minutes and are bounded by cache_size, so
    they are checked separately: at most 16 MiB;
  * resident memory minus SQLite's heap is flat within 5 % over the same minutes;
  * open file descriptors stay constant (one more while a control connection is open);
  * no dropped blocks, SIGTERM exits 0.

Usage: soak_check.py --build BUILD [--seconds 300] [--devices 4] [--json out.json]
Prints the per-minute figures and PASS/FAIL lines; exits 1 if a check failed.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from checks import Checks  # noqa: E402


def flat(values, tolerance=0.05):
    return bool(values) and max(values) <= min(values) * (1 + tolerance)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--seconds", type=int, default=300)
    ap.add_argument("--devices", type=int, default=4)
    ap.add_argument("--json")
    args = ap.parse_args()
    out = args.json or os.path.join(tempfile.mkdtemp(prefix="soak-"), "soak.json")
    bench = os.path.join(HERE, "..", "..", "bench", "system_bench.py")
    p = subprocess.run(["/usr/bin/python3", bench, "--build", args.build, "--waveform-devices",
                        str(args.devices), "--tag-devices", "0", "--seconds", str(args.seconds),
                        "--json", out, "--quiet"],
                       capture_output=True, text=True, timeout=args.seconds + 300)
    C = Checks()
    finished = p.returncode == 0 and os.path.exists(out)
    if not C.check("the soak run finished", finished,
                   "" if finished else (p.stdout + p.stderr)[-2000:]):
        return 1
    with open(out) as f:
        r = json.load(f)
    rss = r["rss_mb_per_minute"]
    heap = r["heap_in_use_mb_per_minute"]
    sq = r["sqlite_memory_mb_per_minute"]
    fds = r["open_fds_per_minute"]
    n = min(len(rss), len(heap), len(sq), len(fds))
    own_heap = [round(heap[i] - sq[i], 2) for i in range(n)]
    own_rss = [round(rss[i] - sq[i], 2) for i in range(n)]
    print(f"soak: {r['seconds']} s, {args.devices} devices, {r['windows_per_s']} windows/s, "
          f"daemon {r['daemon_cpu_pct_of_one_core']} % of a core")
    print(f"  minute            {list(range(n))}")
    print(f"  VmRSS MB          {rss[:n]}")
    print(f"  SQLite heap MB    {sq[:n]}")
    print(f"  own heap MB       {own_heap}")
    print(f"  open fds          {fds[:n]}")
    C.check("at least 3 samples after the first minute", n >= 4, n)
    C.check("the daemon's own heap is flat within 5 % after minute 1", flat(own_heap[1:]),
            own_heap)
    C.check("resident memory minus SQLite's heap is flat within 5 % after minute 1",
            flat(own_rss[1:]), own_rss)
    C.check("SQLite's heap stays bounded (<= 16 MiB)", max(sq[:n]) <= 16, sq)
    C.check("open file descriptors constant", max(fds[:n]) - min(fds[:n]) <= 1, fds)
    C.check("no dropped blocks", r["dropped_blocks"] == 0, r["dropped_blocks"])
    C.check("SIGTERM: exit 0", r.get("exit_code") == 0, r.get("exit_code"))
    print(f"{C.passed} passed, {C.failed} failed")
    return 1 if C.failed else 0


if __name__ == "__main__":
    sys.exit(main())
