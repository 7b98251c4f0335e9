#!/usr/bin/python3
"""Uplink drain benchmark: vibgate's store-and-forward drain against a bare libmosquitto
publisher, measured in one run against the same local mosquitto (docs/performance.md).

  uplink_drain.py BUILD_DIR [--messages N] [--rounds R] [--subscriber]

Each round: fill a fresh SQLite outbox with N results (uplink_driver --no-uplink, not timed), then
time uplink_driver draining it (Sparkplug profile, backlog cap off, from the first 20 ms tick
that sees the uplink online to the tick that sees the outbox empty), then time bare_mosquitto_pub sending N messages
of the same mean payload size in the same QoS 0 + QoS 1-sync pattern (batch 256, 8 syncs in
flight; from CONNACK to the last PUBACK). Rounds alternate the two; medians are reported, and the
ratio is computed per round (a busy moment hits both sides of one round). Prints a table and one
JSON line.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def last_json(out, ev=None):
    for line in reversed(out.splitlines()):
        try:
            j = json.loads(line)
        except ValueError:
            continue
        if ev is None or j.get("ev") == ev:
            return j
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--messages", type=int, default=100000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--subscriber", action="store_true", help="one mosquitto_sub -t '#' consumer")
    a = ap.parse_args()
    driver = os.path.join(a.build, "tests", "uplink_driver")
    bare = os.path.join(a.build, "bench", "bare_mosquitto_pub")
    work = tempfile.mkdtemp(prefix="vibgate-drain-")
    port = free_port()
    conf = os.path.join(work, "m.conf")
    with open(conf, "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                "max_queued_messages 1000000\nmax_queued_bytes 0\nlog_dest none\n")
    broker = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    sub = None
    try:
        if not wait_port(port):
            print("mosquitto did not start", file=sys.stderr)
            return 1
        if a.subscriber:
            sub = subprocess.Popen(["mosquitto_sub", "-p", str(port), "-t", "#"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.3)
        ours, base, ratios = [], [], []
        size = 0
        for r in range(a.rounds):
            db = os.path.join(work, f"r{r}.db")
            fill = subprocess.run([driver, "--db", db, "--no-uplink", "--produce", str(a.messages),
                                   "--timeout", "300"], capture_output=True, text=True, timeout=600)
            if fill.returncode != 0:
                print(fill.stderr, file=sys.stderr)
                return 1
            run = subprocess.run([driver, "--db", db, "--port", str(port), "--backlog-rate", "0",
                                  "--exit-when-drained", "--stats-ms", "20", "--timeout", "300"],
                                 capture_output=True, text=True, timeout=600)
            d = last_json(run.stdout, "drained")
            if run.returncode != 0 or d is None or d["acked"] < a.messages:
                print("uplink_driver failed:", run.stderr[-2000:], file=sys.stderr)
                return 1
            rate = a.messages / d["seconds_online"]
            size = max(1, d["bytes"] // max(1, d["sent"]))
            b = subprocess.run([bare, "--port", str(port), "--messages", str(a.messages),
                                "--size", str(size), "--mode", "qos0-sync", "--batch", "256",
                                "--sync-window", "8", "--timeout", "300"],
                               capture_output=True, text=True, timeout=600)
            bj = last_json(b.stdout)
            if b.returncode != 0 or bj is None:
                print("bare_mosquitto_pub failed:", b.stderr[-2000:], file=sys.stderr)
                return 1
            ours.append(rate)
            base.append(bj["msgs_per_s"])
            ratios.append(rate / bj["msgs_per_s"])
            print(f"round {r + 1}: vibgate {rate:,.0f} msg/s, bare libmosquitto "
                  f"{bj['msgs_per_s']:,.0f} msg/s, ratio {rate / bj['msgs_per_s']:.2f}", flush=True)
            os.remove(db)
        res = {"messages": a.messages, "payload_bytes": size, "subscriber": a.subscriber,
               "vibgate_msgs_per_s": statistics.median(ours),
               "bare_msgs_per_s": statistics.median(base),
               "ratio_median": statistics.median(ratios)}
        print(f"median: vibgate {res['vibgate_msgs_per_s']:,.0f} msg/s (target >= 20,000), bare "
              f"{res['bare_msgs_per_s']:,.0f} msg/s, ratio {res['ratio_median']:.2f} (target >= 0.70)")
        print(json.dumps(res))
        return 0
    finally:
        if sub:
            sub.terminate()
            sub.wait()
        broker.terminate()
        broker.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
