#!/usr/bin/python3
"""daemon_bench.py — the whole daemon under the issue-5 load, measured in one run.

Starts vibgate-sim with N standard devices (one 25.6 kHz waveform + 7 scalar tags each, polled
by Modbus TCP) and vibgated with one asset per device (baselines learned on site), then reports:

  * start to READY=1 (systemd notify) with an existing database and models (second start);
  * daemon CPU (% of one core: utime+stime delta / wall time) and resident memory (VmRSS, VmHWM)
    over a steady-state interval, sampled every second;
  * latency from the last sample of a window arriving (the block holding it) to the Modbus
    facade showing the result: p50 / p99 / max over the latest 8192 windows (Prometheus page);
  * windows scored per second, dropped blocks, polls and poll failures.

Usage: bench/daemon_bench.py --build build [--devices 16] [--seconds 60] [--json out.json]
Output: a table on stdout, JSON with --json. The simulator's own CPU is reported separately (it
is the plant, not the gateway).
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

CLK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def free_port_range(n):
    for _ in range(200):
        base = random.randint(20000, 60000 - n)
        socks = []
        try:
            for i in range(n):
                s = socket.socket()
                s.bind(("127.0.0.1", base + i))
                socks.append(s)
            return base
        except OSError:
            pass
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def mem_kb(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":")
                out[k] = int(v.split()[0])
    return out


def metrics(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        values[name] = float(value)
    return values


def metric_sum(m, prefix):
    return sum(v for k, v in m.items() if k == prefix or k.startswith(prefix + "{"))


def wait_ready(sock, proc, timeout):
    sock.settimeout(0.05)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vibgated exited with {proc.returncode}")
        try:
            msg = sock.recv(4096).decode()
            if "READY=1" in msg:
                return time.monotonic()
        except socket.timeout:
            pass
    raise RuntimeError("vibgated did not send READY=1")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--devices", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--learn", type=int, default=15)
    ap.add_argument("--json")
    args = ap.parse_args()
    gw = os.path.join(os.path.abspath(args.build), "gateway")
    work = os.path.join(os.path.abspath(args.build), "bench-daemon")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work + "/state")
    n = args.devices
    base = free_port_range(n)
    sim_cmd = [f"{gw}/vibgate-sim", "--devices", str(n), "--base-port", str(base), "--rate", "25600",
               "--samples", "4096"]
    devices = subprocess.run(sim_cmd + ["--print-gateway-config"], check=True, capture_output=True,
                             text=True).stdout
    prom, facade = free_port(), free_port()
    cfg = [f'[daemon]\nstate_dir = "{work}/state"\ncontrol_socket = "{work}/state/vibgate.sock"\n'
           'log_level = "warn"\n',
           '[uplink]\nenabled = false\n',
           f'[prometheus]\nenabled = true\nport = {prom}\n',
           f'[modbus_facade]\nport = {facade}\n', devices]
    names = [line.split('"')[1] for line in devices.splitlines() if line.startswith("name = ")
             and "sim" in line]
    for d in names:
        cfg.append(f'[[asset]]\nname = "{d}"\nchannel = "{d}/accel"\nlearn_s = {args.learn}\n'
                   'shaft_hz = 29.95\nbearing_multiples = [3.5848, 5.4152, 2.3567, 0.39828]\n')
    with open(f"{work}/vibgated.toml", "w") as f:
        f.write("\n".join(cfg))

    notify_path = f"{work}/notify.sock"
    nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    nsock.bind(notify_path)
    env = dict(os.environ, NOTIFY_SOCKET=notify_path)
    sim = subprocess.Popen(sim_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    daemon = None
    result = {"devices": n, "assets": len(names), "sample_rate_hz": 25600,
              "tags": devices.count("[[device.tag]]")}
    try:
        time.sleep(0.5)
        # First start: creates the database, learns the baselines.
        daemon = subprocess.Popen([f"{gw}/vibgated", "-c", f"{work}/vibgated.toml"], env=env,
                                  stderr=open(f"{work}/vibgated-1.log", "w"))
        wait_ready(nsock, daemon, 10)
        deadline = time.monotonic() + args.learn + 60
        while time.monotonic() < deadline:
            time.sleep(1)
            m = metrics(prom)
            if metric_sum(m, "vibgate_models_trained_total") >= len(names):
                break
        else:
            raise RuntimeError("baselines were not learned in time")
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(10)

        # Second start: existing database and models; measure start -> READY=1.
        t0 = time.monotonic()
        daemon = subprocess.Popen([f"{gw}/vibgated", "-c", f"{work}/vibgated.toml"], env=env,
                                  stderr=open(f"{work}/vibgated-2.log", "w"))
        result["start_to_ready_ms"] = round((wait_ready(nsock, daemon, 10) - t0) * 1000, 1)

        time.sleep(5)  # warm-up: connections, first windows
        m0 = metrics(prom)
        c0, s0, t0 = cpu_ticks(daemon.pid), cpu_ticks(sim.pid), time.monotonic()
        rss, heap, sqlite_mem, fds = [], [], [], []
        end = t0 + args.seconds
        while time.monotonic() < end:
            time.sleep(1)
            rss.append(mem_kb(daemon.pid)["VmRSS"])
            if len(rss) % 60 == 1:
                mm = metrics(prom)
                heap.append(round(mm.get("vibgate_heap_in_use_bytes", 0) / 2**20, 2))
                sqlite_mem.append(round(mm.get("vibgate_sqlite_memory_bytes", 0) / 2**20, 2))
                fds.append(len(os.listdir(f"/proc/{daemon.pid}/fd")))
        c1, s1, t1 = cpu_ticks(daemon.pid), cpu_ticks(sim.pid), time.monotonic()
        m1 = metrics(prom)
        wall = t1 - t0
        result.update({
            "seconds": round(wall, 1),
            "daemon_cpu_pct_of_one_core": round(100.0 * (c1 - c0) / CLK / wall, 1),
            "sim_cpu_pct_of_one_core": round(100.0 * (s1 - s0) / CLK / wall, 1),
            "rss_mb_median": round(sorted(rss)[len(rss) // 2] / 1024, 1),
            "rss_mb_max": round(max(rss) / 1024, 1),
            "rss_mb_first": round(rss[0] / 1024, 1),
            "rss_mb_last": round(rss[-1] / 1024, 1),
            "hwm_mb": round(mem_kb(daemon.pid)["VmHWM"] / 1024, 1),
            # One sample per minute (the soak criterion: flat within 5 % after warm-up).
            "rss_mb_per_minute": [round(rss[i] / 1024, 2) for i in range(0, len(rss), 60)],
            "heap_in_use_mb_per_minute": heap,
            "sqlite_memory_mb_per_minute": sqlite_mem,
            "open_fds_per_minute": fds,
            "windows_per_s": round((metric_sum(m1, "vibgate_windows_scored_total") -
                                    metric_sum(m0, "vibgate_windows_scored_total")) / wall, 1),
            "latency_ms_p50": m1.get('vibgate_window_to_facade_ms{quantile="0.5"}'),
            "latency_ms_p99": m1.get('vibgate_window_to_facade_ms{quantile="0.99"}'),
            "latency_ms_max": m1.get("vibgate_window_to_facade_ms_max"),
            "dropped_blocks": metric_sum(m1, "vibgate_analytics_dropped_blocks_total"),
            "polls": metric_sum(m1, "vibgate_device_polls_total") - metric_sum(m0, "vibgate_device_polls_total"),
            "poll_failures": metric_sum(m1, "vibgate_device_poll_failures_total") -
                             metric_sum(m0, "vibgate_device_poll_failures_total"),
            "tag_updates_per_s": round((metric_sum(m1, "vibgate_tag_updates_total") -
                                        metric_sum(m0, "vibgate_tag_updates_total")) / wall, 1),
        })
        daemon.send_signal(signal.SIGTERM)
        t = time.monotonic()
        daemon.wait(10)
        result["sigterm_to_exit_ms"] = round((time.monotonic() - t) * 1000, 1)
        result["exit_code"] = daemon.returncode
    finally:
        for p in (daemon, sim):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        nsock.close()
    width = max(len(k) for k in result)
    for k, v in result.items():
        print(f"{k:<{width}}  {v}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
