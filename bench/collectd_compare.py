#!/usr/bin/python3
"""collectd_compare.py — Modbus TCP polling cost of vibgated against Debian's collectd (modbus
plugin), both polling the same simulated devices and tags, measured one after the other in one run.

One vibgate-sim serves D Modbus TCP devices (one listener each on a free loopback port, unit 1),
each with T holding-register uint16 tags at addresses 0..T-1 following sine models of different
periods, so every value changes. Then, against that same simulator:

  * vibgated polls every device every P ms, all T tags (uplink, Modbus facade and assets off;
    Prometheus on, to count polls). The daemon coalesces adjacent registers, so one poll of a
    device is ceil(T/125) read requests, done by its own worker thread per device.
  * collectd (-f, only the logfile, modbus and csv plugins) polls the same devices at
    Interval = P ms with one <Data> block per tag: the modbus plugin reads every <Data> with a
    request of its own, so a device costs T requests per interval. Every value is written by the
    csv plugin to files in the work directory.

Each system runs alone (the other is stopped) and is measured over S seconds after a 3 s
warm-up:

  * CPU: utime + stime delta of the process over the wall time, in % of one core, also split by
    thread name (collectd: reader#N / writer#N; vibgated: vg-bus, the loop, ...);
  * memory: VmRSS sampled every second (max, median) and VmHWM at the end;
  * registers read per second: vibgated (polls - failed polls) × T from its Prometheus counters
    (cross-checked by tag updates); collectd the values it actually wrote, i.e. the csv lines
    appended during the interval across all files, with whether it kept up with D*T*1000/P;
  * derived: CPU % and RSS MB per 1000 registers/s, and the ratios collectd ÷ vibgated.

The simulator's CPU in each phase is reported separately (it is the plant, not the gateway).

Usage: bench/collectd_compare.py --build build-fault [--devices 20] [--tags 10] [--poll-ms 100]
                                 [--seconds 20] [--json out.json]
Exit 0 when both systems ran (whatever the ratios); otherwise 1 with one line naming what failed.
Work directory (configs, logs, csv files): BUILD/bench-collectd/.
"""
import argparse
import glob
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (CLK, cpu_ticks, free_port, free_port_range, mem_kb,  # noqa: E402
                      metric_sum, metrics, thread_ticks, wait_until)

COLLECTD = "/usr/sbin/collectd"
WARMUP_S = 3.0
ONLINE_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


class BenchError(RuntimeError):
    pass


# ---------------------------------------------------------------- processes and logs

def last_line(path):
    try:
        with open(path, errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError:
        return "(no log)"
    return lines[-1] if lines else "(empty log)"


def start(cmd, log_path):
    with open(log_path, "w") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)


def stop(proc):
    """SIGTERM, bounded wait, then SIGKILL; the exit code (None if it was never started)."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)
    return proc.returncode


def check_alive(proc, what, log_path):
    if proc.poll() is not None:
        raise BenchError(f"{what} exited ({proc.returncode}): {last_line(log_path)}")


# ---------------------------------------------------------------- simulator

def sim_config(devices, tags, base_port, poll_ms):
    update_ms = min(100, max(10, poll_ms // 2))  # every poll sees a new value
    out = [f"[sim]\ntag_update_ms = {update_ms}\n"]
    for d in range(devices):
        out.append(f'[[listener]]\naddress = "127.0.0.1"\nport = {base_port + d}\n\n'
                   "[[listener.unit]]\nid = 1\n")
        for t in range(tags):
            out.append(f'[[listener.unit.tag]]\nname = "t{t}"\nregister = "holding"\n'
                       f'address = {t}\ntype = "uint16"\nmodel = "sine"\nmean = {1000 + 100 * t}\n'
                       f"amplitude = 500\nperiod_s = {5 + 1.7 * t + 0.3 * d:.1f}\n"
                       f"phase_deg = {(37 * d + 11 * t) % 360}\n")
    return "\n".join(out)


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def wait_sim_ready(sim, log):
    ready = wait_until(lambda: sim.poll() is not None or "vibgate-sim: ready" in read_text(log),
                       10, 0.05)
    check_alive(sim, "vibgate-sim", log)
    if not ready:
        raise BenchError(f"vibgate-sim not ready after 10 s: {last_line(log)}")


# ---------------------------------------------------------------- measurement

def measure(proc, what, log_path, seconds, counters, sim):
    """Run `seconds` of measurement on proc; counters() gives cumulative counts (a dict)."""
    pid = proc.pid
    c0, th0, s0, k0 = cpu_ticks(pid), thread_ticks(pid), cpu_ticks(sim.pid), counters()
    t0 = time.monotonic()
    rss = []
    while (left := t0 + seconds - time.monotonic()) > 0:
        time.sleep(min(1.0, left))
        check_alive(proc, what, log_path)
        rss.append(mem_kb(pid)["VmRSS"])
    c1, th1, s1, k1 = cpu_ticks(pid), thread_ticks(pid), cpu_ticks(sim.pid), counters()
    wall = time.monotonic() - t0
    threads = {name: round(100.0 * (v - th0.get(name, 0)) / CLK / wall, 1)
               for name, v in sorted(th1.items())}
    return {
        "seconds": round(wall, 2),
        "cpu_pct_of_one_core": round(100.0 * (c1 - c0) / CLK / wall, 2),
        "cpu_pct_by_thread": {k: v for k, v in threads.items() if v > 0},
        "threads": len(os.listdir(f"/proc/{pid}/task")),
        "rss_mb_max": round(max(rss) / 1024, 2),
        "rss_mb_median": round(sorted(rss)[len(rss) // 2] / 1024, 2),
        "hwm_mb": round(mem_kb(pid)["VmHWM"] / 1024, 2),
        "sim_cpu_pct_of_one_core": round(100.0 * (s1 - s0) / CLK / wall, 2),
        "deltas": {k: k1[k] - k0[k] for k in k0},
    }


def per_1000(result, regs_per_s):
    k = regs_per_s / 1000.0
    result["registers_per_s"] = round(regs_per_s, 1)
    result["cpu_pct_per_1000_regs_s"] = round(result["cpu_pct_of_one_core"] / k, 3) if k else None
    result["rss_mb_per_1000_regs_s"] = round(result["rss_mb_max"] / k, 3) if k else None
    return result


# ---------------------------------------------------------------- vibgated

def vibgate_config(gw, sim_toml, work, prom, args):
    devices = subprocess.run([f"{gw}/vibgate-sim", "-c", sim_toml, "--print-gateway-config"],
                             check=True, capture_output=True, text=True, timeout=10).stdout
    devices = re.sub(r"(?m)^poll_interval_ms = \d+$", f"poll_interval_ms = {args.poll_ms}",
                     devices)
    n_dev, n_tag = devices.count("[[device]]"), devices.count("[[device.tag]]")
    if (n_dev, n_tag) != (args.devices, args.devices * args.tags):
        raise BenchError(f"--print-gateway-config gave {n_dev} devices / {n_tag} tags, "
                         f"expected {args.devices} / {args.devices * args.tags}")
    state = f"{work}/vibgate"
    os.makedirs(state)
    return (f'[daemon]\nstate_dir = "{state}"\ncontrol_socket = "{state}/vibgate.sock"\n'
            'log_level = "warn"\n\n[uplink]\nenabled = false\n\n'
            "[modbus_facade]\nenabled = false\n\n"
            f'[prometheus]\nenabled = true\naddress = "127.0.0.1"\nport = {prom}\n\n{devices}')


def vibgate_counters(prom):
    m = metrics(prom)
    return {"polls": metric_sum(m, "vibgate_device_polls_total"),
            "poll_failures": metric_sum(m, "vibgate_device_poll_failures_total"),
            "request_errors": metric_sum(m, "vibgate_device_request_errors_total"),
            "overruns": metric_sum(m, "vibgate_device_overruns_total"),
            "tag_updates": metric_sum(m, "vibgate_tag_updates_total")}


def online_count(prom):
    try:
        return metric_sum(metrics(prom), "vibgate_device_online")
    except OSError:
        return 0


def run_vibgate(gw, work, sim_toml, sim, args):
    prom = free_port()
    cfg = f"{work}/vibgated.toml"
    with open(cfg, "w") as f:
        f.write(vibgate_config(gw, sim_toml, work, prom, args))
    log = f"{work}/vibgated.log"
    proc = start([f"{gw}/vibgated", "-c", cfg], log)
    try:
        wait_until(lambda: proc.poll() is not None or online_count(prom) >= args.devices,
                   ONLINE_TIMEOUT_S)
        check_alive(proc, "vibgated", log)
        if (n := online_count(prom)) < args.devices:
            raise BenchError(f"vibgated: {n:g} of {args.devices} devices online after "
                             f"{ONLINE_TIMEOUT_S:g} s: {last_line(log)}")
        time.sleep(WARMUP_S)
        r = measure(proc, "vibgated", log, args.seconds, lambda: vibgate_counters(prom), sim)
    finally:
        r_exit = stop(proc)
    d = r["deltas"]
    ok_polls = d["polls"] - d["poll_failures"]
    r.update({
        "polls_per_s": round(d["polls"] / r["seconds"], 1),
        "poll_failures": d["poll_failures"],
        "request_errors": d["request_errors"],
        "overruns": d["overruns"],
        "tag_updates_per_s": round(d["tag_updates"] / r["seconds"], 1),
        "requests_per_poll": math.ceil(args.tags / 125),
        "exit_code": r_exit,
    })
    return per_1000(r, ok_polls * args.tags / r["seconds"])


# ---------------------------------------------------------------- collectd

def collectd_config(work, base_port, args):
    interval = args.poll_ms / 1000.0
    out = [f'Hostname "bench"\nFQDNLookup false\nBaseDir "{work}/collectd"\n'
           f'PIDFile "{work}/collectd/collectd.pid"\nPluginDir "/usr/lib/collectd"\n'
           'TypesDB "/usr/share/collectd/types.db"\n'
           f"Interval {interval:g}\nReadThreads {args.devices}\nWriteThreads 5\n\n"
           f'LoadPlugin logfile\n<Plugin logfile>\n  LogLevel "info"\n'
           f'  File "{work}/collectd.log"\n  Timestamp true\n</Plugin>\n\n'
           f'LoadPlugin csv\n<Plugin csv>\n  DataDir "{work}/csv"\n  StoreRates false\n'
           "</Plugin>\n\nLoadPlugin modbus\n<Plugin modbus>"]
    for t in range(args.tags):
        out.append(f'  <Data "t{t}">\n    RegisterBase {t}\n    RegisterType Uint16\n'
                   f'    RegisterCmd ReadHolding\n    Type "gauge"\n    Instance "t{t}"\n'
                   "  </Data>")
    collect = "\n".join(f'      Collect "t{t}"' for t in range(args.tags))
    for d in range(args.devices):
        out.append(f'  <Host "dev{d}">\n    Address "127.0.0.1"\n    Port "{base_port + d}"\n'
                   f"    Interval {interval:g}\n    <Slave 1>\n      Instance \"unit1\"\n"
                   f"{collect}\n    </Slave>\n  </Host>")
    out.append("</Plugin>\n")
    return "\n".join(out)


def csv_values(csv_dir):
    """(values written, files): csv lines across all files minus each file's header line."""
    lines = files = 0
    for path in glob.glob(f"{csv_dir}/*/*/*"):
        try:
            with open(path, "rb") as f:
                lines += f.read().count(b"\n")
            files += 1
        except OSError:
            pass
    return lines - files, files


def log_complaints(path, limit=5):
    """Warning/error lines of collectd's log: (count, the first `limit` distinct messages)."""
    seen, count = [], 0
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if re.search(r"\[(warning|error)\]", line):
                    count += 1
                    msg = line.split("] ", 2)[-1].strip()
                    if msg not in seen and len(seen) < limit:
                        seen.append(msg)
    except OSError:
        pass
    return count, seen


def run_collectd(work, base_port, sim, args):
    conf = f"{work}/collectd.conf"
    with open(conf, "w") as f:
        f.write(collectd_config(work, base_port, args))
    os.makedirs(f"{work}/collectd")
    log = f"{work}/collectd.log"
    out = f"{work}/collectd.stdout"
    proc = start([COLLECTD, "-f", "-C", conf], out)
    csv_dir, want = f"{work}/csv", args.devices * args.tags

    def last():
        return last_line(log) if os.path.exists(log) else last_line(out)
    try:
        wait_until(lambda: proc.poll() is not None or csv_values(csv_dir)[1] >= want,
                   ONLINE_TIMEOUT_S)
        if proc.poll() is not None:
            raise BenchError(f"collectd exited ({proc.returncode}): {last()}")
        if (n := csv_values(csv_dir)[1]) < want:
            raise BenchError(f"collectd: {n} of {want} values written after "
                             f"{ONLINE_TIMEOUT_S:g} s: {last()}")
        time.sleep(WARMUP_S)
        r = measure(proc, "collectd", log, args.seconds,
                    lambda: {"values": csv_values(csv_dir)[0]}, sim)
    finally:
        r_exit = stop(proc)
    expected = want * 1000.0 / args.poll_ms
    values_per_s = r["deltas"]["values"] / r["seconds"]
    complaints, samples = log_complaints(log)
    r.update({
        "values_per_s_expected": round(expected, 1),
        "kept_up_pct": round(100.0 * values_per_s / expected, 1),
        "kept_up": values_per_s >= 0.95 * expected,
        "requests_per_poll": args.tags,
        "read_threads": args.devices,
        "write_threads": 5,
        "log_warnings_errors": complaints,
        "log_samples": samples,
        "exit_code": r_exit,
    })
    return per_1000(r, values_per_s)


# ---------------------------------------------------------------- report

def ratio(a, b):
    return round(a / b, 2) if a and b else None


def by_role(threads):
    """Per-thread CPU summed over numbered threads: reader#0, reader#1 ... -> reader#*."""
    out = {}
    for name, v in threads.items():
        key = re.sub(r"#\d+$", "#*", name)
        out[key] = round(out.get(key, 0) + v, 1)
    return out


def reader_share(result):
    """collectd's reader threads alone (the polling, without dispatch and csv writing)."""
    c, v = result["collectd"], result["vibgate"]
    cpu = sum(x for k, x in c["cpu_pct_by_thread"].items() if k.startswith("reader#"))
    k = c["registers_per_s"] / 1000.0
    per_1k = round(cpu / k, 3) if k else None
    return {"cpu_pct_of_one_core": round(cpu, 2), "cpu_pct_per_1000_regs_s": per_1k,
            "cpu_ratio_vs_vibgate": ratio(per_1k, v["cpu_pct_per_1000_regs_s"])}


def report(result):
    v, c = result["vibgate"], result["collectd"]
    print(f"{result['devices']} devices × {result['tags']} holding uint16 tags, poll every "
          f"{result['poll_ms']} ms, {result['seconds']:g} s each after {WARMUP_S:g} s warm-up")
    print(f"vibgated: adjacent registers coalesced -> {v['requests_per_poll']} request per device "
          "poll, one worker thread per device")
    print(f"collectd: modbus plugin, one <Data> per tag = one request per register -> "
          f"{c['requests_per_poll']} requests per device per interval; ReadThreads "
          f"{c['read_threads']} (one per device, like vibgated's workers), WriteThreads 5 "
          "(default), csv plugin stores every value")
    print()
    head = ("system", "regs/s", "CPU %", "CPU %/1k regs/s", "RSS MB max", "RSS MB/1k regs/s",
            "sim CPU %")
    print("{:<10}{:>10}{:>8}{:>17}{:>12}{:>18}{:>11}".format(*head))
    for name, r in (("vibgated", v), ("collectd", c)):
        print(f"{name:<10}{r['registers_per_s']:>10.1f}{r['cpu_pct_of_one_core']:>8.2f}"
              f"{r['cpu_pct_per_1000_regs_s'] or 0:>17.3f}{r['rss_mb_max']:>12.2f}"
              f"{r['rss_mb_per_1000_regs_s'] or 0:>18.3f}{r['sim_cpu_pct_of_one_core']:>11.2f}")
    print()
    print(f"vibgated: {v['polls_per_s']} polls/s, {v['poll_failures']:g} failed polls, "
          f"{v['request_errors']:g} request errors, {v['overruns']:g} overruns, "
          f"{v['tag_updates_per_s']} tag updates/s; RSS median {v['rss_mb_median']} MB, "
          f"HWM {v['hwm_mb']} MB; CPU % by thread {by_role(v['cpu_pct_by_thread'])}")
    print(f"collectd: {c['registers_per_s']} values/s written of {c['values_per_s_expected']} "
          f"expected ({c['kept_up_pct']} %, kept up: {'yes' if c['kept_up'] else 'NO'}); "
          f"RSS median {c['rss_mb_median']} MB, HWM {c['hwm_mb']} MB; "
          f"CPU % by thread {by_role(c['cpu_pct_by_thread'])}")
    print(f"collectd log: {c['log_warnings_errors']} warning/error lines"
          + (f", e.g. {c['log_samples'][0]!r}" if c["log_samples"] else ""))
    print()
    r = result["collectd_readers_only"]
    print("note: vibgated keeps each tag's latest value in memory here (uplink and facade off); "
          "collectd's writer threads (dispatch + csv) are part of its total. Its reader threads "
          f"alone: {r['cpu_pct_of_one_core']} % = {r['cpu_pct_per_1000_regs_s']} %/1k regs/s "
          f"(ratio {r['cpu_ratio_vs_vibgate']})")
    print()
    print(f"CPU per 1000 regs/s, collectd ÷ vibgated: {result['cpu_ratio']} (target ≥ 2)")
    print(f"RSS per 1000 regs/s, collectd ÷ vibgated: {result['mem_ratio']} "
          f"(max RSS alone: {result['rss_ratio']})")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--tags", type=int, default=10)
    ap.add_argument("--poll-ms", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--json")
    args = ap.parse_args()
    if not (1 <= args.tags <= 125 and args.devices >= 1 and args.poll_ms >= 10
            and args.seconds >= 1):
        ap.error("need devices ≥ 1, 1 ≤ tags ≤ 125, poll-ms ≥ 10, seconds ≥ 1")
    return args


def run(args):
    build = os.path.abspath(args.build)
    gw, work = f"{build}/gateway", f"{build}/bench-collectd"
    for exe in (f"{gw}/vibgate-sim", f"{gw}/vibgated", COLLECTD):
        if not os.access(exe, os.X_OK):
            raise BenchError(f"not executable: {exe}")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    base = free_port_range(args.devices)
    sim_toml = f"{work}/sim.toml"
    with open(sim_toml, "w") as f:
        f.write(sim_config(args.devices, args.tags, base, args.poll_ms))
    sim_log = f"{work}/sim.log"
    sim = None
    result = {"devices": args.devices, "tags": args.tags, "poll_ms": args.poll_ms,
              "seconds": args.seconds, "warmup_s": WARMUP_S, "work_dir": work}
    try:
        sim = start([f"{gw}/vibgate-sim", "-c", sim_toml], sim_log)
        wait_sim_ready(sim, sim_log)
        result["vibgate"] = run_vibgate(gw, work, sim_toml, sim, args)
        check_alive(sim, "vibgate-sim", sim_log)
        result["collectd"] = run_collectd(work, base, sim, args)
        check_alive(sim, "vibgate-sim", sim_log)
    finally:
        stop(sim)
    result["sim_summary"] = last_line(sim_log)
    v, c = result["vibgate"], result["collectd"]
    result["cpu_ratio"] = ratio(c["cpu_pct_per_1000_regs_s"], v["cpu_pct_per_1000_regs_s"])
    result["mem_ratio"] = ratio(c["rss_mb_per_1000_regs_s"], v["rss_mb_per_1000_regs_s"])
    result["rss_ratio"] = ratio(c["rss_mb_max"], v["rss_mb_max"])
    result["collectd_readers_only"] = reader_share(result)
    return result


def main():
    args = parse_args()
    try:
        result = run(args)
    except (BenchError, subprocess.SubprocessError, OSError) as e:
        print(f"collectd_compare: {e}", file=sys.stderr)
        return 1
    report(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
