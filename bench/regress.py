#!/usr/bin/python3
"""regress.py — benchmark regression check: the product's performance ratios against a recorded
baseline (bench/baseline.json), in one short run that CI can afford (about 2–3 minutes).

What it checks, with short versions of the existing drivers (docs/performance.md):

  analytics  bench_analytics (Google Benchmark, medians of a few interleaved repetitions) and
             bench/numpy_features.py, as bench/run.sh computes them:
               features_int8_over_fft_only   features + int8 score ÷ the FFTW transforms (lower)
               numpy_over_features_int8      numpy/scipy script ÷ ours (higher)
               float_over_int8_inference     float inference ÷ int8 inference (higher)
  uplink     bench/uplink_drain.py: uplink_drain_over_bare_mosquitto, vibgate's backlog drain ÷ a
             bare libmosquitto publisher, median of the per-round ratios (higher)
  collectd   bench/collectd_compare.py: collectd_over_vibgated_cpu, CPU per 1000 registers/s of
             collectd's modbus plugin ÷ vibgated's (higher)
  system     bench/system_bench.py, 128 vibration channels on serial ptys:
             system_windows_over_expected, windows scored per second ÷ the rate the channels
             produce (higher); and the functional check system_realtime (realtime, 0 dropped blocks)

Why ratios and not times: this machine (and CI's) is shared, and absolute times move by 10–40 %
between runs; each ratio's two sides are measured in the same run, so a busy neighbour moves both.
A ratio fails when it is more than 20 % worse than its baseline (higher-better: value < 0.8 ×
baseline; lower-better: value > baseline ÷ 0.8). The product target is printed next to it for
information; only the baseline comparison and the functional check fail the run.

Usage: bench/regress.py --build BUILD [--baseline bench/baseline.json] [--record]
                        [--only NAME,...] [--json out.json]
  --only     checks (analytics, uplink, collectd, system) or ratio names, comma-separated
  --record   run the same and write the baseline (with --only: update just those entries)
  --runs N   each check N times, each ratio the median (the baseline is recorded with --runs 3)
Exit: 0 all within limits; 1 a ratio regressed or the functional check failed (one line each);
2 a driver or the build failed, or the build lacks the benchmark targets (one line, then the
tail of the driver's output). Every subprocess is bounded by a timeout; drivers use loopback only.
"""
import argparse
import datetime
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PYTHON = "/usr/bin/python3"
TOLERANCE = 0.8  # a ratio may be at most 20 % worse than its baseline

SIZES = {
    "analytics": {"repetitions": 3, "min_time_s": 0.2, "numpy_runs": 2},
    "uplink": {"messages": 20000, "rounds": 7},
    "collectd": {"devices": 50, "tags": 10, "seconds": 15},
    "system": {"sensors": 16, "channels": 8, "seconds": 10, "learn_s": 15},
}

# name: (check, direction, target, description)
RATIOS = {
    "features_int8_over_fft_only": (
        "analytics", "lower", 2.0,
        "features + int8 score per window ÷ the FFTW transforms it needs (wall time)"),
    "numpy_over_features_int8": (
        "analytics", "higher", 50.0,
        "numpy/scipy script per window ÷ our features + int8 score per window"),
    "float_over_int8_inference": (
        "analytics", "higher", 2.0, "float inference ÷ int8 inference per window"),
    "uplink_drain_over_bare_mosquitto": (
        "uplink", "higher", 0.70,
        "uplink backlog drain msg/s ÷ bare libmosquitto publisher msg/s, median of rounds"),
    "collectd_over_vibgated_cpu": (
        "collectd", "higher", 2.0,
        "CPU % per 1000 registers/s: collectd modbus plugin ÷ vibgated"),
    "system_windows_over_expected": (
        "system", "higher", 0.97,
        "windows scored per second ÷ windows the 128 channels produce per second"),
}

TARGETS = {  # check: the CMake targets its driver runs
    "analytics": ["bench_analytics"],
    "uplink": ["uplink_driver", "bare_mosquitto_pub"],
    "collectd": ["vibgated", "vibgate-sim"],
    "system": ["vibgated", "vibgate-sim"],
}
BENCH_TARGETS = {"bench_analytics", "bare_mosquitto_pub"}
CHECKS = list(TARGETS)

BENCH_FILTER = "^BM_(fft_transforms_only|features_and_int8_score|int8_inference|float_inference)$"
TO_US = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}


class DriverError(RuntimeError):
    """A driver (or the build) failed: `what` names it, `tail` is the end of its output."""

    def __init__(self, what, tail=""):
        super().__init__(what)
        self.what, self.tail = what, tail


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def tail_of(text, lines=15):
    return "\n".join((text or "").rstrip().splitlines()[-lines:])


def run_cmd(cmd, timeout, what):
    """Run cmd in a process group of its own (stdin closed) and return its stdout; DriverError
    on a non-zero exit or after `timeout` s: then SIGINT (a Python driver's cleanup runs and
    stops what it started), and SIGKILL to that group if it is still there 15 s later."""
    try:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError as e:
        raise DriverError(f"{what} could not start: {e}") from None
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out, err = stop_group(p)
        raise DriverError(f"{what} timed out after {timeout} s", tail_of(out + err)) from None
    if p.returncode != 0:
        raise DriverError(f"{what} exited with {p.returncode}", tail_of(out + err))
    return out


def stop_group(p):
    """Interrupt a timed-out driver (process group p.pid), then kill the group; its output."""
    try:
        os.killpg(p.pid, signal.SIGINT)
        return p.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return p.communicate()
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return p.communicate()


# ---------------------------------------------------------------- build

def cache_value(build, key):
    """A value from BUILD/CMakeCache.txt, or None."""
    try:
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return line.split("=", 1)[1].strip()
    except OSError:
        return None
    return None


def build_targets(build, checks):
    """Build what the selected checks run; DriverError when the build lacks the bench targets."""
    if not os.path.isfile(os.path.join(build, "CMakeCache.txt")):
        raise DriverError(f"{build} is not a configured CMake build directory")
    targets = sorted({t for c in checks for t in TARGETS[c]})
    if BENCH_TARGETS & set(targets) and cache_value(build, "VIBGATE_BUILD_BENCH") != "ON":
        raise DriverError(f"the benchmark targets are not configured in {build} "
                          "(VIBGATE_BUILD_BENCH is OFF); use a build with -DVIBGATE_BUILD_BENCH=ON")
    if "uplink_driver" in targets and cache_value(build, "VIBGATE_BUILD_TESTS") == "OFF":
        raise DriverError(f"uplink_driver is not configured in {build} "
                          "(VIBGATE_BUILD_TESTS is OFF)")
    log(f"== building {' '.join(targets)} in {build}")
    run_cmd(["cmake", "--build", build, "-j", str(os.cpu_count() or 2), "--target", *targets],
            3600, "cmake --build")


# ---------------------------------------------------------------- the checks

def gbench_medians(doc):
    """{benchmark: (real µs, cpu µs)} from Google Benchmark JSON: the median aggregate when
    repeated, else the single run (as bench/run.sh reads it)."""
    out, from_median = {}, set()
    for b in doc["benchmarks"]:
        name = b.get("run_name", b["name"])
        median = b.get("run_type") == "aggregate" and b.get("aggregate_name") == "median"
        if b.get("error_occurred") or (b.get("run_type") == "aggregate" and not median):
            continue
        if median or name not in from_median:
            k = TO_US[b["time_unit"]]
            out[name] = (b["real_time"] * k, b["cpu_time"] * k)
            if median:
                from_median.add(name)
    return out


def numpy_us_per_window(runs):
    values = []
    for _ in range(runs):
        out = run_cmd([PYTHON, os.path.join(HERE, "numpy_features.py")], 300,
                      "bench/numpy_features.py")
        values += [float(line.split("=", 1)[1]) for line in out.splitlines()
                   if line.startswith("numpy_features_us_per_window=")]
    if not values:
        raise DriverError("bench/numpy_features.py printed no numpy_features_us_per_window")
    return statistics.median(values)


def check_analytics(build, _work):
    s = SIZES["analytics"]
    out = run_cmd([os.path.join(build, "bench", "bench_analytics"),
                   f"--benchmark_filter={BENCH_FILTER}", "--benchmark_format=json",
                   f"--benchmark_repetitions={s['repetitions']}",
                   f"--benchmark_min_time={s['min_time_s']}",
                   "--benchmark_enable_random_interleaving=true",
                   "--benchmark_report_aggregates_only=true"], 300, "bench_analytics")
    try:
        t = gbench_medians(json.loads(out))
        fft, score = t["BM_fft_transforms_only"][0], t["BM_features_and_int8_score"][0]
        int8, flt = t["BM_int8_inference"][0], t["BM_float_inference"][0]
    except (ValueError, KeyError) as e:
        raise DriverError(f"bench_analytics: benchmark missing from its JSON ({e})",
                          tail_of(out)) from None
    numpy_us = numpy_us_per_window(s["numpy_runs"])
    return {
        "features_int8_over_fft_only": (score / fft, f"{score:.2f} us / {fft:.2f} us"),
        "numpy_over_features_int8": (numpy_us / score, f"{numpy_us:.1f} us / {score:.2f} us"),
        "float_over_int8_inference": (flt / int8, f"{flt:.3f} us / {int8:.3f} us"),
    }, {}


def last_json_line(text):
    for line in reversed(text.splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


def check_uplink(build, _work):
    s = SIZES["uplink"]
    out = run_cmd([PYTHON, os.path.join(HERE, "uplink_drain.py"), build,
                   "--messages", str(s["messages"]), "--rounds", str(s["rounds"])],
                  600, "bench/uplink_drain.py")
    res = last_json_line(out)
    if not res or "ratio_median" not in res:
        raise DriverError("bench/uplink_drain.py printed no result JSON", tail_of(out))
    rounds = [line.rsplit("ratio ", 1)[1] for line in out.splitlines() if line.startswith("round ")]
    return {"uplink_drain_over_bare_mosquitto": (
        res["ratio_median"], f"{res['vibgate_msgs_per_s']:,.0f} / {res['bare_msgs_per_s']:,.0f} "
        f"msg/s; rounds {', '.join(rounds)}")}, {}


def read_json(path, what):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise DriverError(f"{what}: no result JSON ({e})") from None


def check_collectd(build, work):
    s = SIZES["collectd"]
    path = os.path.join(work, "collectd.json")
    run_cmd([PYTHON, os.path.join(HERE, "collectd_compare.py"), "--build", build,
             "--devices", str(s["devices"]), "--tags", str(s["tags"]),
             "--seconds", str(s["seconds"]), "--json", path], 300, "bench/collectd_compare.py")
    r = read_json(path, "bench/collectd_compare.py")
    c, v = r["collectd"], r["vibgate"]
    if not r.get("cpu_ratio"):
        raise DriverError("bench/collectd_compare.py: no CPU ratio (a side read no registers)",
                          json.dumps({"collectd": c.get("registers_per_s"),
                                      "vibgated": v.get("registers_per_s")}))
    kept = "" if c.get("kept_up") else ", collectd did NOT keep up"
    return {"collectd_over_vibgated_cpu": (
        r["cpu_ratio"], f"{c['cpu_pct_per_1000_regs_s']} / {v['cpu_pct_per_1000_regs_s']} "
        f"CPU %/1k regs/s{kept}")}, {}


def run_system(build, work, attempt):
    s = SIZES["system"]
    path = os.path.join(work, f"system-{attempt}.json")
    run_cmd([PYTHON, os.path.join(HERE, "system_bench.py"), "--build", build,
             "--sensors", str(s["sensors"]), "--channels", str(s["channels"]),
             "--seconds", str(s["seconds"]), "--learn", str(s["learn_s"]), "--json", path,
             "--quiet"], 600, "bench/system_bench.py")
    r = read_json(path, "bench/system_bench.py")
    ok = bool(r["realtime"]) and r["dropped_blocks"] == 0
    why = (f"realtime {str(r['realtime']).lower()}, dropped blocks {r['dropped_blocks']:g}, "
           f"rejected {r.get('rejected_blocks', 0):g}, analytics gaps {r['analytics_gaps']:g}, "
           f"daemon CPU {r.get('daemon_cpu_pct_of_one_core')} %, {r.get('sim_summary', '')}")
    return r, ok, why


def check_system(build, work):
    # One retry: a shared VM that deschedules the simulator for ~80 ms makes a sensor lose a
    # frame (a gap) whatever the gateway does; a gateway that cannot keep up fails both runs.
    r, ok, why = run_system(build, work, 1)
    if not ok:
        log(f"   system: first run not real time ({why}); running it once more")
        r, ok, why2 = run_system(build, work, 2)
        why = f"{why2} (first run: {why})"
    got, exp = r["windows_per_s"], r["expected_windows_per_s"]
    return ({"system_windows_over_expected": (got / exp, f"{got} / {exp} windows/s")},
            {"system_realtime": (ok, why)})


RUNNERS = {"analytics": check_analytics, "uplink": check_uplink, "collectd": check_collectd,
           "system": check_system}


# ---------------------------------------------------------------- comparison

def limit_of(direction, baseline):
    return baseline * TOLERANCE if direction == "higher" else baseline / TOLERANCE


def worse_than(direction, value, limit):
    return value < limit if direction == "higher" else value > limit


def target_met(direction, value, target):
    return value >= target if direction == "higher" else value <= target


def compare(measured, baseline):
    """One row per measured ratio: the numbers, the limit and the verdict."""
    rows = []
    for name, (value, detail) in measured.items():
        _, direction, target, desc = RATIOS[name]
        base = baseline.get(name, {}).get("value")
        limit = limit_of(direction, base) if base else None
        if limit is None:
            verdict = "no baseline"
        else:
            verdict = "REGRESSED" if worse_than(direction, value, limit) else "ok"
        rows.append({"name": name, "value": round(value, 4), "direction": direction,
                     "baseline": base, "limit": None if limit is None else round(limit, 4),
                     "target": target, "target_met": target_met(direction, value, target),
                     "verdict": verdict, "detail": detail, "description": desc})
    return rows


def fmt(x):
    return "—" if x is None else f"{x:.3g}" if abs(x) < 100 else f"{x:.1f}"


def print_table(rows, functional):
    head = ("ratio", "measured", "baseline", "limit", "target", "verdict")
    print(f"{head[0]:<34}{head[1]:>9}{head[2]:>10}{head[3]:>9}  {head[4]:<18}{head[5]}")
    for r in rows:
        sign = "≥" if r["direction"] == "higher" else "≤"
        target = f"{sign} {fmt(r['target'])} ({'met' if r['target_met'] else 'MISSED'})"
        print(f"{r['name']:<34}{fmt(r['value']):>9}{fmt(r['baseline']):>10}"
              f"{fmt(r['limit']):>9}  {target:<18}{r['verdict']}")
    for name, (ok, why) in functional.items():
        print(f"{name:<34}{'yes' if ok else 'NO':>9}{'':>10}{'':>9}  {'realtime, 0 drops':<18}"
              f"{'ok' if ok else 'FAILED'}")
    print()
    for r in rows:
        print(f"# {r['name']}: {r['detail']}")
    for name, (_, why) in functional.items():
        print(f"# {name}: {why}")


def failures_of(rows, functional):
    out = []
    for r in rows:
        if r["verdict"] == "REGRESSED":
            word = "below" if r["direction"] == "higher" else "above"
            out.append(f"REGRESSED {r['name']}: {r['value']:.4g} is {word} the limit "
                       f"{r['limit']:.4g}, more than 20 % worse than the baseline "
                       f"{r['baseline']:.4g} ({r['direction']} is better; {r['detail']})")
    for name, (ok, why) in functional.items():
        if not ok:
            out.append(f"FAILED {name}: {why}")
    return out


# ---------------------------------------------------------------- baseline file

def machine_metadata(build, checks):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        commit = run_cmd(["git", "-C", REPO, "rev-parse", "HEAD"], 30, "git").strip()
        dirty = bool(run_cmd(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                             30, "git").strip())
    except DriverError:
        commit, dirty = "?", None
    return {"git_commit": commit, "git_dirty": dirty,
            "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "nproc": os.cpu_count(), "cpu_model": cpu,
            "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
            "build_type": cache_value(build, "CMAKE_BUILD_TYPE"),
            "checks": checks, "sizes": {c: SIZES[c] for c in checks},
            "tolerance": "a ratio fails when more than 20 % worse than its baseline value"}


def load_baseline(path, required):
    if not os.path.isfile(path):
        if required:
            raise DriverError(f"no baseline at {path} (record one with --record)")
        return {"metadata": {}, "ratios": {}}
    return read_json(path, f"baseline {path}")


def write_baseline(path, old, rows, meta):
    ratios = dict(old.get("ratios", {}))
    for r in rows:
        ratios[r["name"]] = {"value": r["value"], "direction": r["direction"],
                             "target": r["target"], "unit": "ratio",
                             "description": r["description"], "measured": r["detail"]}
    meta = dict(meta)
    if old.get("metadata", {}).get("sizes") and set(meta["checks"]) != set(CHECKS):
        meta["sizes"] = {**old["metadata"]["sizes"], **meta["sizes"]}
        meta["checks"] = sorted(set(old["metadata"].get("checks", [])) | set(meta["checks"]))
    with open(path, "w") as f:
        json.dump({"metadata": meta, "ratios": dict(sorted(ratios.items()))}, f, indent=2,
                  ensure_ascii=False)
        f.write("\n")


# ---------------------------------------------------------------- main

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--baseline", default=os.path.join(HERE, "baseline.json"))
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--only", default="", help="checks or ratio names, comma-separated")
    ap.add_argument("--runs", type=int, default=1,
                    help="run each check this many times and take each ratio's median (a "
                         "baseline is recorded with --runs 3: one run of the noisy ratios is "
                         "not representative)")
    ap.add_argument("--json")
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    a.checks = selected_checks(ap, a.only)
    return a


def selected_checks(ap, only):
    if not only:
        return list(CHECKS)
    picked = set()
    for name in filter(None, (x.strip() for x in only.split(","))):
        if name in CHECKS:
            picked.add(name)
        elif name in RATIOS:
            picked.add(RATIOS[name][0])
        elif name == "system_realtime":
            picked.add("system")
        else:
            ap.error(f"--only: unknown {name!r} (checks: {', '.join(CHECKS)}; "
                     f"ratios: {', '.join(RATIOS)})")
    return [c for c in CHECKS if c in picked]


def run_checks(a, work):
    """Each check a.runs times; a ratio is the median of its runs (the detail shown is that
    run's), a functional check must pass in every run."""
    samples, functional = {}, {}
    for check in a.checks:
        for run in range(a.runs):
            t0 = time.monotonic()
            log(f"== {check}: {SIZES[check]}" + (f" (run {run + 1} of {a.runs})" if a.runs > 1 else ""))
            ratios, func = RUNNERS[check](a.build, work)
            for name, value in ratios.items():
                samples.setdefault(name, []).append(value)
            for name, (ok, why) in func.items():
                prev_ok = functional.get(name, (True, ""))[0]
                functional[name] = (prev_ok and ok, why)
            log(f"   {check} done in {time.monotonic() - t0:.0f} s")
    measured = {}
    for name, values in samples.items():
        ordered = sorted(values, key=lambda v: v[0])
        value, detail = ordered[(len(ordered) - 1) // 2]
        if len(values) > 1:
            detail += f"; median of {len(values)} runs: " + ", ".join(f"{v[0]:.3g}" for v in values)
        measured[name] = (value, detail)
    return measured, functional


def write_json(path, doc):
    if path:
        with open(path, "w") as f:
            json.dump(doc, f, indent=2, ensure_ascii=False)
            f.write("\n")


def main():
    a = parse_args()
    t0 = time.monotonic()
    meta = machine_metadata(a.build, a.checks)
    try:
        baseline = load_baseline(a.baseline, required=not a.record)
        build_targets(a.build, a.checks)
        with tempfile.TemporaryDirectory(prefix="vibgate-regress-") as work:
            measured, functional = run_checks(a, work)
    except DriverError as e:
        print(f"regress: {e.what}", file=sys.stderr)
        if e.tail:
            print(e.tail, file=sys.stderr)
        write_json(a.json, {"metadata": meta, "error": e.what, "tail": e.tail, "exit": 2})
        return 2
    rows = compare(measured, baseline.get("ratios", {}))
    print_table(rows, functional)
    failures = failures_of(rows, functional)
    wall = round(time.monotonic() - t0, 1)
    if a.record:
        if any(not ok for ok, _ in functional.values()):
            failures = [f for f in failures if f.startswith("FAILED")]
            print("\n".join(failures + [f"regress: baseline NOT recorded ({wall} s)"]))
            return 1
        write_baseline(a.baseline, baseline, rows, meta)
        print(f"\nregress: recorded {len(rows)} ratios to {a.baseline} ({wall} s)")
        failures = []
    elif failures:
        print()
        print("\n".join(failures))
    else:
        print(f"\nregress: {len(rows)} ratios within 20 % of the baseline, functional check ok "
              f"({wall} s)")
    write_json(a.json, {"metadata": meta, "baseline": a.baseline, "results": rows,
                        "functional": {k: {"ok": ok, "detail": why}
                                       for k, (ok, why) in functional.items()},
                        "failures": failures, "wall_s": wall, "exit": 1 if failures else 0})
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
