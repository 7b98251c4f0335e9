#!/usr/bin/python3
"""scaling.py — cost of the gateway as its load doubles, and where it stops keeping up.

Runs bench/system_bench.py once per load step, with the daemon pinned to one core (--cpus 0) and
the simulator on the other, and reports per step: daemon CPU (% of that core), CPU per channel or
per device, resident memory, windows (or polls) per second against the rate due, and latency.

  vibration  25.6 kHz channels on serial sensors (8 channels per sensor from 8 channels up: an
             asset each, a model per channel, default features and model; 8 × 25.6 kHz int16 is
             410 KB/s per pty, so the simulator's pty and FIFO hold ~80 ms — with 16 channels
             only ~40 ms, and a simulator descheduled that long on this shared VM loses a frame):
             1, 2, 4, ... up to --max-channels (496 at most: 62 assets, the Modbus facade's limit)
  modbus     Modbus TCP devices of --tags holding registers polled every --poll-ms:
             1, 2, 4, ... up to --max-devices

A step "keeps up" when system_bench calls it real time (every window scored, nothing dropped, no
gap) or, for devices, when every due poll was made and none overran. The highest step that keeps
up is reported; when the simulator itself fell behind (its own summary shows skipped blocks or
frames), the step is marked "plant-limited": the 2-core machine ran out of room for the plant,
not the gateway, and the limit stated is a lower bound.

Output: a table, JSON (--json), and an SVG plot of CPU and latency against load (--svg).
Usage: bench/scaling.py --build build [--series vibration,modbus] [--seconds 20]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def doubling(limit):
    n, out = 1, []
    while n < limit:
        out.append(n)
        n *= 2
    out.append(limit)
    return sorted(set(out))


REPEAT = 1


def run_step(build, args, seconds, learn, quota=0):
    """system_bench once per repeat; the run with the least daemon CPU is kept (on this VM
    a neighbour's load inflates a process's own CPU time at random, never lowers it), and the
    CPU figures of every run are kept beside it."""
    runs = [run_once(build, args, seconds, learn, quota) for _ in range(REPEAT)]
    best = min(runs, key=lambda r: r["daemon_cpu_pct_of_one_core"])
    best["cpu_pct_all_runs"] = [r["daemon_cpu_pct_of_one_core"] for r in runs]
    return best


def run_once(build, args, seconds, learn, quota=0):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    cmd = ["/usr/bin/python3", os.path.join(HERE, "system_bench.py"), "--build", build,
           "--cpus", "0", "--seconds", str(seconds), "--learn", str(learn), "--json", out,
           "--quiet", *args] + (["--cpu-quota", str(quota)] if quota else [])
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + learn + 300)
    if p.returncode != 0:
        raise RuntimeError(f"system_bench {' '.join(args)} failed: "
                           f"{(p.stdout + p.stderr).strip().splitlines()[-1:]}")
    with open(out) as f:
        r = json.load(f)
    os.unlink(out)
    return r


def plant_limited(r):
    s = r.get("sim_summary", "")
    # "... N blocks (K skipped, ...), serial F frames (D dropped, S skipped, ...)"
    try:
        skipped = int(s.split("blocks (")[1].split()[0])
        if "serial" in s:
            skipped += int(s.split("dropped, ")[1].split()[0])
    except (IndexError, ValueError):
        return False
    return skipped > 0


def vibration_series(build, max_channels, seconds, learn, quota=0, min_channels=1):
    rows = []
    for ch in [c for c in doubling(max_channels) if c >= min_channels]:
        sensors, per = (1, ch) if ch <= 8 else (ch // 8, 8)
        r = run_step(build, ["--sensors", str(sensors), "--channels", str(per)], seconds, learn,
                     quota)
        n = r["vibration_channels"]
        rows.append({
            "channels": n, "cpu_pct": r["daemon_cpu_pct_of_one_core"],
            "cpu_pct_per_channel": round(r["daemon_cpu_pct_of_one_core"] / n, 4),
            "threads": r["cpu_pct_by_thread"], "rss_mb": r["rss_mb_max"],
            "windows_per_s": r["windows_per_s"], "expected_windows_per_s": r["expected_windows_per_s"],
            "latency_ms_p50": r["facade_latency_ms_p50"],
            "latency_ms_p99": r["facade_latency_ms_p99_worst"],
            "dropped_blocks": r["dropped_blocks"], "gaps": r["analytics_gaps"],
            "keeps_up": r["realtime"], "plant_limited": plant_limited(r),
            "cpu_pct_all_runs": r["cpu_pct_all_runs"],
            "sim_summary": r["sim_summary"]})
        print_row(rows[-1], "channels")
        if not r["realtime"] and not rows[-1]["plant_limited"]:
            break  # the gateway's knee: no point doubling further
    return rows


def modbus_series(build, max_devices, tags, poll_ms, seconds):
    rows = []
    for d in doubling(max_devices):
        r = run_step(build, ["--tag-devices", str(d), "--tags", str(tags), "--poll-ms",
                             str(poll_ms)], seconds, 0)
        due = d * 1000.0 / poll_ms
        keeps_up = r["polls_per_s"] >= 0.97 * due and r["poll_failures"] == 0 and r["overruns"] == 0
        rows.append({
            "devices": d, "registers_per_s": round(r["polls_per_s"] * tags, 1),
            "cpu_pct": r["daemon_cpu_pct_of_one_core"],
            "cpu_pct_per_device": round(r["daemon_cpu_pct_of_one_core"] / d, 4),
            "cpu_pct_per_1000_registers_per_s": round(
                r["daemon_cpu_pct_of_one_core"] / max(1e-9, r["polls_per_s"] * tags / 1000), 3),
            "threads": r["cpu_pct_by_thread"], "rss_mb": r["rss_mb_max"],
            "polls_per_s": r["polls_per_s"], "due_polls_per_s": due,
            "poll_jitter_ms_p99": r["poll_jitter_ms_p99"], "poll_failures": r["poll_failures"],
            "overruns": r["overruns"], "keeps_up": keeps_up, "plant_limited": plant_limited(r),
            "cpu_pct_all_runs": r["cpu_pct_all_runs"]})
        print_row(rows[-1], "devices")
    return rows


def print_row(row, key):
    keys = [k for k in row if k not in ("threads", "sim_summary")]
    print("  ".join(f"{k}={row[k]}" for k in keys), flush=True)


# ---------------------------------------------------------------- SVG (no plotting dependency)

def svg_panel(x0, y0, w, h, title, xs, series, xlabel, ylabels):
    """One chart: log2 x axis, two y axes (left: series[0], right: series[1])."""
    out = [f'<text x="{x0 + w / 2}" y="{y0 - 10}" text-anchor="middle" font-size="14">{title}</text>',
           f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#888"/>']
    import math
    lx = [math.log2(x) for x in xs]
    lo, hi = min(lx), max(lx) if max(lx) > min(lx) else min(lx) + 1

    def px(v):
        return x0 + (math.log2(v) - lo) / (hi - lo) * w
    for x in xs:
        out.append(f'<line x1="{px(x):.1f}" y1="{y0 + h}" x2="{px(x):.1f}" y2="{y0 + h + 4}" stroke="#888"/>'
                   f'<text x="{px(x):.1f}" y="{y0 + h + 16}" text-anchor="middle" font-size="10">{x}</text>')
    out.append(f'<text x="{x0 + w / 2}" y="{y0 + h + 32}" text-anchor="middle" font-size="12">{xlabel}</text>')
    colors = ["#1f77b4", "#d62728"]
    for i, (values, label) in enumerate(zip(series, ylabels)):
        known = [(x, v) for x, v in zip(xs, values) if v is not None]  # a missing figure: no point
        top = max((v for _, v in known), default=0) * 1.15 or 1
        pts = " ".join(f"{px(x):.1f},{y0 + h - v / top * h:.1f}" for x, v in known)
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colors[i]}" stroke-width="2"/>')
        for x, v in known:
            out.append(f'<circle cx="{px(x):.1f}" cy="{y0 + h - v / top * h:.1f}" r="3" fill="{colors[i]}"/>')
        ax = x0 - 8 if i == 0 else x0 + w + 8
        anchor = "end" if i == 0 else "start"
        for k in range(5):
            v = top * k / 4
            out.append(f'<text x="{ax}" y="{y0 + h - k / 4 * h + 4:.1f}" text-anchor="{anchor}" '
                       f'font-size="10" fill="{colors[i]}">{v:.3g}</text>')
        lxp = x0 - 45 if i == 0 else x0 + w + 45
        out.append(f'<text x="{lxp}" y="{y0 + h / 2}" font-size="12" fill="{colors[i]}" '
                   f'text-anchor="middle" transform="rotate(-90 {lxp} {y0 + h / 2})">{label}</text>')
    return out


def write_svg(path, result):
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="980" height="380" '
             'font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>']
    vib, mb = result.get("vibration", []), result.get("modbus", [])
    if vib:
        parts += svg_panel(80, 40, 320, 260, "25.6 kHz channels (daemon on one core)",
                           [r["channels"] for r in vib],
                           [[r["cpu_pct"] for r in vib], [r["latency_ms_p99"] for r in vib]],
                           "vibration channels", ["daemon CPU % of one core",
                                                  "window → facade p99 ms"])
    if mb:
        parts += svg_panel(580, 40, 320, 260, f"Modbus TCP devices ({result['tags']} registers, "
                           f"{result['poll_ms']} ms)", [r["devices"] for r in mb],
                           [[r["cpu_pct"] for r in mb], [r["poll_jitter_ms_p99"] for r in mb]],
                           "devices", ["daemon CPU % of one core", "poll jitter p99 ms"])
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--series", default="vibration,modbus")
    ap.add_argument("--max-channels", type=int, default=496)
    ap.add_argument("--max-devices", type=int, default=128)
    ap.add_argument("--tags", type=int, default=10)
    ap.add_argument("--poll-ms", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--learn", type=int, default=15)
    ap.add_argument("--cpu-quota", type=float, default=0,
                    help="cap the daemon at this %% of one core (root; finds the knee below the "
                         "simulator's own limit on a 2-core machine)")
    ap.add_argument("--min-channels", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per step; the one with the least daemon CPU is reported")
    ap.add_argument("--json")
    ap.add_argument("--svg")
    a = ap.parse_args()
    global REPEAT
    REPEAT = max(1, a.repeat)
    if a.max_channels > 496:
        ap.error("--max-channels: at most 496 (62 assets of 8 channels: the facade's limit)")
    result = {"tags": a.tags, "poll_ms": a.poll_ms, "seconds_per_step": a.seconds,
              "repeat": REPEAT}
    if "vibration" in a.series:
        result["cpu_quota_pct"] = a.cpu_quota or None
        result["vibration"] = vibration_series(a.build, a.max_channels, a.seconds, a.learn,
                                               a.cpu_quota, a.min_channels)
        ok = [r for r in result["vibration"] if r["keeps_up"]]
        result["max_channels_one_core"] = max((r["channels"] for r in ok), default=0)
        result["max_channels_plant_limited"] = any(r["plant_limited"]
                                                   for r in result["vibration"])
    if "modbus" in a.series:
        result["modbus"] = modbus_series(a.build, a.max_devices, a.tags, a.poll_ms, a.seconds)
        ok = [r for r in result["modbus"] if r["keeps_up"]]
        result["max_devices_one_core"] = max((r["devices"] for r in ok), default=0)
    print(json.dumps({k: v for k, v in result.items() if k not in ("vibration", "modbus")}))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)
    if a.svg:
        write_svg(a.svg, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
