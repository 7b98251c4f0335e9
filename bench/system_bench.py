#!/usr/bin/python3
"""system_bench.py — the whole gateway in a chosen shape, measured end to end (docs/performance.md).

Starts vibgate-sim as the plant and vibgated as the gateway, optionally a mosquitto broker, in the
shape given on the command line:

  vibration   --sensors S --channels C --rate R    S serial sensors (ptys) of C channels at R Hz;
                                                   an asset per 8 channels, a model per channel
              --waveform-devices W                 W Modbus TCP devices with a 25.6 kHz waveform
                                                   block (4096 samples) + 7 scalar tags each, one
                                                   asset each (the issue-5 load)
  tags        --tag-devices D --tags T --poll-ms P D Modbus TCP devices of T holding registers
  uplink      --broker [--outage SECONDS]          JSON profile to a local mosquitto; a subscriber
                                                   timestamps every result; then an outage and the
                                                   backlog drain
  placement   --cpus LIST                          pin the daemon (taskset), e.g. 0; the simulator
                                                   and broker go to the other cores
              --cpu-quota PCT                      cap the measured daemon at PCT % of one core
                                                   (CFS quota, 10 ms period; needs root and a
                                                   writable /sys/fs/cgroup/cpu)

First run: the baselines are learned on site (--learn seconds), then the daemon is stopped. Second
run (measured): existing database and models, --seconds of steady state after a warm-up. Reported:

  * channels sustained in real time: windows scored per second against the rate the channels
    produce (channels × rate / hop), dropped or rejected blocks, analytics gaps, serial frames the
    simulator had to drop because the gateway did not read them in time;
  * daemon CPU in % of one core (utime + stime over wall time), per thread name, and each core's
    utilisation (/proc/stat) during the interval;
  * resident memory (VmRSS every second: median and max; VmHWM);
  * latency from the arrival of a window's last sample to the Modbus facade's alarm coil and
    registers updated (vibgate_window_to_facade_ms, measured in the daemon with the monotonic
    clock: p50 / p99 sampled every 5 s, the worst p99 and the max reported);
  * with --broker: latency from the end of a window (its last sample's wall time: the record's
    `ts`) to the result arriving at a subscriber (mosquitto_sub's receive time, @s.@N),
    p50 / p99 / max — the same machine's clock on both sides;
  * with --outage: the broker stopped for that long, then restarted: backlog size, time to drain,
    and drain rate (messages acknowledged per second while draining; backlog_msgs_per_s = 0 here,
    i.e. uncapped: the capacity, not the default 1000 msg/s cap).

Usage: bench/system_bench.py --build build [shape options] [--seconds 30] [--json out.json]
Output: a table on stdout and, with --json, the same as JSON. Every process started is stopped by
PID; only loopback addresses; every wait bounded.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from benchlib import (CLK, core_ticks, core_util, cpu_ticks, free_port, free_port_range,  # noqa: E402
                      mem_kb, metric_sum, metrics, pct, thread_ticks, wait_ready, wait_until)

HOP = 2048  # the daemon's default window (4096) and 50 % overlap
BEARING = "shaft_hz = 29.95\nbearing_multiples = [3.5848, 5.4152, 2.3567, 0.39828]\n"


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--sensors", type=int, default=0)
    ap.add_argument("--channels", type=int, default=1, help="channels per serial sensor (1..16)")
    ap.add_argument("--rate", type=int, default=25600)
    ap.add_argument("--waveform-devices", type=int, default=0)
    ap.add_argument("--tag-devices", type=int, default=0)
    ap.add_argument("--tags", type=int, default=10)
    ap.add_argument("--poll-ms", type=int, default=100)
    ap.add_argument("--broker", action="store_true")
    ap.add_argument("--outage", type=float, default=0)
    ap.add_argument("--result-interval-ms", type=int, default=1000,
                    help="daemon.result_interval_ms (default 1000 as shipped; 0: every window)")
    ap.add_argument("--cpus", default="", help="taskset CPU list for the daemon (e.g. 0)")
    ap.add_argument("--cpu-quota", type=float, default=0,
                    help="limit the measured daemon to this %% of one core (cgroup v1 cpu "
                         "controller, root): finds the knee where the plant cannot outrun it")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--learn", type=int, default=15)
    ap.add_argument("--json")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if not 1 <= a.channels <= 16:
        ap.error("--channels: 1..16 per serial sensor")
    if a.outage and not a.broker:
        ap.error("--outage needs --broker")
    if not (a.sensors or a.waveform_devices or a.tag_devices):
        ap.error("nothing to run: give --sensors, --waveform-devices or --tag-devices")
    return a


def other_cpus(cpus):
    """The CPUs not in the daemon's list (for the simulator and the broker), or '' for any."""
    if not cpus:
        return ""
    mine = set()
    for part in cpus.split(","):
        lo, _, hi = part.partition("-")
        mine.update(range(int(lo), int(hi or lo) + 1))
    rest = [str(c) for c in range(os.cpu_count() or 1) if c not in mine]
    return ",".join(rest)


def pinned(cmd, cpus):
    return ["taskset", "-c", cpus, *cmd] if cpus else cmd


# ---------------------------------------------------------------- configuration

def sim_config(a, work, wave_base, tag_base):
    """The simulator's TOML: one machine per serial sensor, serial sensors, tag listeners, and
    the standard waveform devices ([fleet])."""
    out = ["[sim]\ntick_ms = 10\n"]
    if a.waveform_devices:
        out.append(f"[fleet]\ndevices = {a.waveform_devices}\nbase_port = {wave_base}\n"
                   "samples = 4096\nsample_rate_hz = 25600\n")
    for s in range(a.sensors):
        out.append(f'[[machine]]\nname = "m{s}"\nshaft_hz = 29.95\nseed = {100 + s}\n')
    if a.sensors == 0 and a.tag_devices:
        out.append('[[machine]]\nname = "m0"\n')
    for s in range(a.sensors):
        machines = ", ".join([f'"m{s}"'] * a.channels)
        out.append(f'[[serial]]\nname = "s{s}"\nsample_rate_hz = {a.rate}\nsamples_per_frame = 256\n'
                   f'machines = [{machines}]\nlink = "{work}/tty{s}"\n')
    for d in range(a.tag_devices):
        out.append(f'[[listener]]\naddress = "127.0.0.1"\nport = {tag_base + d}\n'
                   '[[listener.unit]]\nid = 1\n')
        for t in range(a.tags):
            out.append(f'[[listener.unit.tag]]\nname = "t{t}"\nregister = "holding"\naddress = {t}\n'
                       f'model = "sine"\nmean = 1000\namplitude = 500\nperiod_s = {5 + t}\n')
    return "".join(out)


def daemon_config(a, work, prom, facade, broker_port, waveform_devices_text):
    out = [f'[daemon]\nstate_dir = "{work}/state"\ncontrol_socket = "{work}/state/vibgate.sock"\n'
           f'log_level = "warn"\nresult_interval_ms = {a.result_interval_ms}\n',
           f'[prometheus]\nenabled = true\nport = {prom}\n',
           f'[modbus_facade]\nport = {facade}\n']
    if broker_port:
        out.append(f'[uplink]\nhost = "127.0.0.1"\nport = {broker_port}\nprofile = "json"\n'
                   'edge_node_id = "bench"\nbacklog_msgs_per_s = 0\nkeepalive_s = 5\n'
                   'reconnect_min_ms = 100\nreconnect_max_ms = 500\n')
    else:
        out.append('[uplink]\nenabled = false\n')
    out.append(waveform_devices_text)
    for d in range(a.tag_devices):
        out.append(f'[[device]]\nname = "plc{d}"\nprotocol = "tcp"\nhost = "127.0.0.1"\n'
                   f'port = {a.tag_base + d}\nunit_id = 1\npoll_interval_ms = {a.poll_ms}\n')
        for t in range(a.tags):
            out.append(f'[[device.tag]]\nname = "t{t}"\nregister = "holding"\naddress = {t}\n')
    for s in range(a.sensors):
        names = ", ".join(f'"s{s}/c{c}"' for c in range(a.channels))
        out.append(f'[[serial_sensor]]\nname = "s{s}"\nport = "{work}/tty{s}"\nbaud = 921600\n'
                   f'parity = "N"\nmode = "binary"\nchannels = {a.channels}\n'
                   f'channel_names = [{names}]\n')
        # An asset holds at most 8 channels: a 16-channel sensor is two machines' worth.
        for g in range(0, a.channels, 8):
            group = ", ".join(f'"s{s}/c{c}"' for c in range(g, min(a.channels, g + 8)))
            out.append(f'[[asset]]\nname = "a{s}_{g // 8}"\nchannels = [{group}]\n'
                       f'learn_s = {a.learn}\n{BEARING}')
    for name in a.waveform_names:
        out.append(f'[[asset]]\nname = "{name}"\nchannel = "{name}/accel"\nlearn_s = {a.learn}\n'
                   f'{BEARING}')
    return "".join(out)


# ---------------------------------------------------------------- processes

class Procs:
    """Every process the run started, stopped by PID at the end."""

    def __init__(self):
        self.procs = []

    def start(self, cmd, **kw):
        p = subprocess.Popen(cmd, **kw)
        self.procs.append(p)
        return p

    def stop(self, p, timeout=10):
        if p and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self):
        for p in reversed(self.procs):
            self.stop(p, 5)


def start_broker(procs, work, port, cpus):
    conf = f"{work}/mosquitto.conf"
    with open(conf, "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                "max_queued_messages 1000000\nmax_inflight_messages 1000\nset_tcp_nodelay true\n")
    p = procs.start(pinned(["mosquitto", "-c", conf], cpus), stdout=subprocess.DEVNULL,
                    stderr=open(f"{work}/mosquitto.log", "ab"))

    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return p.poll() is not None
    if not wait_until(up, 10, 0.05) or p.poll() is not None:
        raise RuntimeError(f"mosquitto did not start on 127.0.0.1:{port} (see {work}/mosquitto.log)")
    return p


def start_daemon(procs, gw, work, env, nsock, cpus, log_name):
    t0 = time.monotonic()
    d = procs.start(pinned([f"{gw}/vibgated", "-c", f"{work}/vibgated.toml"], cpus), env=env,
                    stderr=open(f"{work}/{log_name}", "w"))
    ready = wait_ready(nsock, d, 30)
    return d, round((ready - t0) * 1000, 1)


class CpuQuota:
    """A cgroup v1 cpu group capping its processes at `pct` % of one core (10 ms period, so a
    throttled daemon waits at most ~10 ms, well inside what a sensor's FIFO holds)."""

    def __init__(self, pct):
        self.path = f"/sys/fs/cgroup/cpu/vibgate-bench-{os.getpid()}"
        os.makedirs(self.path, exist_ok=True)
        with open(f"{self.path}/cpu.cfs_period_us", "w") as f:
            f.write("10000")
        with open(f"{self.path}/cpu.cfs_quota_us", "w") as f:
            f.write(str(int(10000 * pct / 100)))

    def add(self, pid):
        with open(f"{self.path}/cgroup.procs", "w") as f:
            f.write(str(pid))

    def throttled_ms(self):
        with open(f"{self.path}/cpu.stat") as f:
            for line in f:
                if line.startswith("throttled_time"):
                    return int(line.split()[1]) / 1e6
        return 0.0

    def remove(self):
        try:
            with open(f"{self.path}/cgroup.procs") as f:
                pids = f.read().split()
            for pid in pids:  # back to the root group before the group can go
                with open("/sys/fs/cgroup/cpu/cgroup.procs", "w") as g:
                    g.write(pid)
            os.rmdir(self.path)
        except OSError:
            pass


def daemon_pid(p):
    """The daemon's PID (under taskset it is the same process: taskset execs)."""
    return p.pid


# ---------------------------------------------------------------- measuring

def delivery_latencies(path):
    """ms from each result window's end (`ts`: the wall time of the window's last sample) to its
    arrival at the subscriber (one line per message: '<unix s.ns> <payload>')."""
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            t, _, payload = line.partition(" ")
            try:
                r = json.loads(payload)
                recv_ms = float(t) * 1000.0
            except ValueError:
                continue
            if r.get("kind") == "result" and not r.get("historical") and "ts" in r:
                out.append(recv_ms - r["ts"])
    return out


def measure(a, pid, prom, seconds):
    """CPU, memory, windows, latency quantiles over `seconds` of steady state."""
    m0 = metrics(prom)
    c0, th0, k0, t0 = cpu_ticks(pid), thread_ticks(pid), core_ticks(), time.monotonic()
    rss, p50s, p99s, jitter = [], [], [], []
    per_minute = {"rss_mb": [], "heap_in_use_mb": [], "sqlite_memory_mb": [], "open_fds": []}
    end = t0 + seconds
    next_q = t0 + 5
    while time.monotonic() < end:
        time.sleep(1)
        rss.append(mem_kb(pid)["VmRSS"])
        if len(rss) % 60 == 1:  # the soak criterion: flat within 5 % after warm-up
            mm = metrics(prom)
            per_minute["rss_mb"].append(round(rss[-1] / 1024, 2))
            per_minute["heap_in_use_mb"].append(round(mm.get("vibgate_heap_in_use_bytes", 0) / 2**20, 2))
            per_minute["sqlite_memory_mb"].append(
                round(mm.get("vibgate_sqlite_memory_bytes", 0) / 2**20, 2))
            per_minute["open_fds"].append(len(os.listdir(f"/proc/{pid}/fd")))
        if time.monotonic() >= next_q:
            next_q += 5
            m = metrics(prom)
            p50s.append(m.get('vibgate_window_to_facade_ms{quantile="0.5"}'))
            p99s.append(m.get('vibgate_window_to_facade_ms{quantile="0.99"}'))
            jitter.append(m.get('vibgate_poll_jitter_ms{quantile="0.99"}'))
    c1, th1, k1, t1 = cpu_ticks(pid), thread_ticks(pid), core_ticks(), time.monotonic()
    m1 = metrics(prom)
    wall = t1 - t0

    def rate(name):
        return (metric_sum(m1, name) - metric_sum(m0, name)) / wall

    threads = {}
    for name, ticks in th1.items():
        share = 100.0 * (ticks - th0.get(name, 0)) / CLK / wall
        if share >= 0.05:
            threads[name] = round(share, 2)
    p50s = [x for x in p50s if x is not None]
    p99s = [x for x in p99s if x is not None]
    return {
        "seconds": round(wall, 1),
        "daemon_cpu_pct_of_one_core": round(100.0 * (c1 - c0) / CLK / wall, 1),
        "cpu_pct_by_thread": dict(sorted(threads.items(), key=lambda kv: -kv[1])),
        "core_util_pct": core_util(k0, k1),
        "rss_mb_median": round(pct(rss, 0.5) / 1024, 1),
        "rss_mb_max": round(max(rss) / 1024, 1),
        "hwm_mb": round(mem_kb(pid)["VmHWM"] / 1024, 1),
        "windows_per_s": round(rate("vibgate_windows_scored_total"), 1),
        "learning_windows_per_s": round(rate("vibgate_windows_learning_total"), 1),
        "facade_latency_ms_p50": round(pct(p50s, 0.5), 3) if p50s else None,
        "facade_latency_ms_p99_worst": round(max(p99s), 3) if p99s else None,
        "facade_latency_ms_max": m1.get("vibgate_window_to_facade_ms_max"),
        "dropped_blocks": metric_sum(m1, "vibgate_analytics_dropped_blocks_total") -
        metric_sum(m0, "vibgate_analytics_dropped_blocks_total"),
        "rejected_blocks": metric_sum(m1, "vibgate_analytics_rejected_blocks_total") -
        metric_sum(m0, "vibgate_analytics_rejected_blocks_total"),
        "analytics_gaps": metric_sum(m1, "vibgate_analytics_gaps_total") -
        metric_sum(m0, "vibgate_analytics_gaps_total"),
        "analytics_busy_pct": round(100.0 * rate("vibgate_analytics_busy_seconds_total"), 1),
        "results_stored_per_s": round(rate("vibgate_results_stored_total"), 1),
        "serial_frames_per_s": round(rate("vibgate_serial_frames_total"), 1),
        "serial_crc_errors": metric_sum(m1, "vibgate_serial_crc_errors_total") -
        metric_sum(m0, "vibgate_serial_crc_errors_total"),
        "polls_per_s": round(rate("vibgate_device_polls_total"), 1),
        "poll_failures": metric_sum(m1, "vibgate_device_poll_failures_total") -
        metric_sum(m0, "vibgate_device_poll_failures_total"),
        "overruns": metric_sum(m1, "vibgate_device_overruns_total") -
        metric_sum(m0, "vibgate_device_overruns_total"),
        "tag_updates_per_s": round(rate("vibgate_tag_updates_total"), 1),
        # Each sample is the p99 of the last second; the worst of them (every 5 s) is reported.
        "poll_jitter_ms_p99": max((x for x in jitter if x is not None), default=None),
        "uplink_acked_per_s": round(rate("vibgate_uplink_messages_acked_total"), 1),
        "outbox_depth_end": metric_sum(m1, "vibgate_outbox_depth"),
        **{k + "_per_minute": v for k, v in per_minute.items()},
    }


def outage_and_drain(procs, broker, work, port, cpus, prom, seconds):
    """Stop the broker for `seconds`, restart it, time the backlog drain."""
    procs.stop(broker)
    time.sleep(seconds)
    depth0 = metric_sum(metrics(prom), "vibgate_outbox_depth")
    broker = start_broker(procs, work, port, cpus)
    t_restart = time.monotonic()
    # Timed from the uplink's reconnection (its backoff is not the drain) until the depth is back
    # to what live traffic keeps queued (below 2 % of the backlog or one commit interval's rows).
    wait_until(lambda: metric_sum(metrics(prom), "vibgate_uplink_connected") >= 1, 30, 0.02)
    t0 = time.monotonic()
    acked0 = metric_sum(metrics(prom), "vibgate_uplink_messages_acked_total")
    floor = max(300, depth0 * 0.02)
    ok = wait_until(lambda: metric_sum(metrics(prom), "vibgate_outbox_depth") <= floor,
                    max(60, seconds * 10), 0.05)
    t1 = time.monotonic()
    acked1 = metric_sum(metrics(prom), "vibgate_uplink_messages_acked_total")
    return broker, {
        "outage_s": seconds,
        "backlog_records": depth0,
        "drained": bool(ok),
        "reconnect_s": round(t0 - t_restart, 2),
        "drain_s": round(t1 - t0, 2),
        "drain_acked_msgs_per_s": round((acked1 - acked0) / max(1e-3, t1 - t0), 0),
    }


# ---------------------------------------------------------------- the run

def run(a):
    gw = os.path.join(os.path.abspath(a.build), "gateway")
    work = os.path.join(os.path.abspath(a.build), "bench-system")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work + "/state")
    other = other_cpus(a.cpus)
    procs = Procs()
    n_ports = a.waveform_devices + a.tag_devices
    base = free_port_range(max(1, n_ports))
    wave_base, a.tag_base = base, base + a.waveform_devices
    with open(f"{work}/sim.toml", "w") as f:
        f.write(sim_config(a, work, wave_base, a.tag_base))
    sim_cmd = [f"{gw}/vibgate-sim", "-c", f"{work}/sim.toml"]
    wave_text = ""
    a.waveform_names = []
    if a.waveform_devices:
        # The standard devices' [[device]] sections (tag listeners are written by us).
        wave_text = subprocess.run(
            [f"{gw}/vibgate-sim", "--devices", str(a.waveform_devices), "--base-port",
             str(wave_base), "--rate", "25600", "--samples", "4096", "--print-gateway-config"],
            check=True, capture_output=True, text=True).stdout
        a.waveform_names = [line.split('"')[1] for line in wave_text.splitlines()
                            if line.startswith("name = ") and "sim" in line]
    channels = a.sensors * a.channels + a.waveform_devices
    result = {"shape": {"serial_sensors": a.sensors, "channels_per_sensor": a.channels,
                        "serial_rate_hz": a.rate, "waveform_devices": a.waveform_devices,
                        "tag_devices": a.tag_devices, "tags_per_device": a.tags,
                        "poll_ms": a.poll_ms, "broker": a.broker, "daemon_cpus": a.cpus or "any",
                        "result_interval_ms": a.result_interval_ms,
                        "cpu_quota_pct": a.cpu_quota or None},
              "vibration_channels": channels,
              "expected_windows_per_s": round((a.sensors * a.channels * a.rate +
                                               a.waveform_devices * 25600) / HOP, 1),
              "expected_registers_per_s": round(a.tag_devices * a.tags * 1000 / a.poll_ms, 1)}
    prom, facade = free_port(), free_port()
    broker_port = free_port() if a.broker else 0
    notify_path = f"{work}/notify.sock"
    nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    nsock.bind(notify_path)
    env = dict(os.environ, NOTIFY_SOCKET=notify_path)
    sub = None
    quota = None
    try:
        broker = start_broker(procs, work, broker_port, other) if a.broker else None

        def start_sim():
            with open(f"{work}/sim.log", "w") as log:
                p = procs.start(pinned(sim_cmd, other), stdout=log, stderr=subprocess.STDOUT)
            if not wait_until(lambda: p.poll() is not None or "vibgate-sim: ready" in
                              open(f"{work}/sim.log").read(), 20, 0.1) or p.poll() is not None:
                raise RuntimeError("vibgate-sim did not start: "
                                   f"{open(f'{work}/sim.log').read()[-300:]}")
            return p
        sim = start_sim()
        with open(f"{work}/vibgated.toml", "w") as f:
            f.write(daemon_config(a, work, prom, facade, broker_port, wave_text))
        n_models = channels

        # First run: learn the baselines, then stop (the measured run starts from the database).
        d, _ = start_daemon(procs, gw, work, env, nsock, "", "vibgated-learn.log")
        if n_models:
            ok = wait_until(lambda: metric_sum(metrics(prom), "vibgate_models_trained_total")
                            >= n_models, a.learn + 120, 1)
            if not ok:
                raise RuntimeError("baselines were not learned in time")
        procs.stop(d)
        # A fresh plant for the measured run, so that its summary (frames it had to drop or skip
        # because it was itself descheduled, e.g. while the baselines trained) covers this run.
        procs.stop(sim)
        sim = start_sim()

        d, result["start_to_ready_ms"] = start_daemon(procs, gw, work, env, nsock, a.cpus,
                                                      "vibgated.log")
        pid = daemon_pid(d)
        if a.cpu_quota:
            quota = CpuQuota(a.cpu_quota)
            quota.add(pid)
            result["cpu_quota_pct"] = a.cpu_quota
        if a.broker:
            sub = procs.start(pinned(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker_port),
                                      "-q", "1", "-t", "vibgate/bench/+/result", "-F",
                                      "@s.@N %p"], other),
                              stdout=open(f"{work}/sub.txt", "w"), stderr=subprocess.DEVNULL)
        time.sleep(a.warmup)
        sub_start = os.path.getsize(f"{work}/sub.txt") if sub else 0
        result.update(measure(a, pid, prom, a.seconds))
        if quota:
            result["throttled_ms"] = round(quota.throttled_ms(), 1)
        if sub:
            procs.stop(sub)
            lat = delivery_latencies_since(f"{work}/sub.txt", sub_start)
            result.update({"mqtt_results_received": len(lat),
                           "mqtt_latency_ms_p50": round(pct(lat, 0.5), 1) if lat else None,
                           "mqtt_latency_ms_p99": round(pct(lat, 0.99), 1) if lat else None,
                           "mqtt_latency_ms_max": round(max(lat), 1) if lat else None})
        if a.outage:
            broker, result["drain"] = outage_and_drain(procs, broker, work, broker_port, other,
                                                       prom, a.outage)
        t = time.monotonic()
        procs.stop(d)
        result["sigterm_to_exit_ms"] = round((time.monotonic() - t) * 1000, 1)
        result["exit_code"] = d.returncode
        procs.stop(sim)
        summary = [x for x in open(f"{work}/sim.log").read().splitlines() if "stopped after" in x]
        result["sim_summary"] = summary[-1] if summary else ""
        result["sim_serial_frames_dropped"] = serial_dropped(result["sim_summary"])
    finally:
        procs.stop_all()
        nsock.close()
        if quota:
            quota.remove()
    exp = result["expected_windows_per_s"]
    result["realtime"] = bool(
        (exp == 0 or result["windows_per_s"] >= 0.97 * exp) and result["dropped_blocks"] == 0
        and result["rejected_blocks"] == 0 and result["analytics_gaps"] == 0)
    return result


def delivery_latencies_since(path, offset):
    tail = path + ".measured"
    with open(path, "rb") as f, open(tail, "wb") as g:
        f.seek(offset)
        f.readline()  # maybe a partial line
        g.write(f.read())
    return delivery_latencies(tail)


def serial_dropped(summary):
    """The serial frames the simulator dropped ('serial N frames (M dropped, ...)')."""
    if "serial" not in summary:
        return 0
    try:
        part = summary.split("serial", 1)[1]
        return int(part.split("(")[1].split()[0])
    except (IndexError, ValueError):
        return None


def print_table(r):
    width = max(len(k) for k in r)
    for k, v in r.items():
        print(f"{k:<{width}}  {v}")


def main(argv=None):
    a = parse_args(argv)
    r = run(a)
    if not a.quiet:
        print_table(r)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
