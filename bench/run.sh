#!/usr/bin/env bash
# bench/run.sh — build and run the analytics benchmarks and the numpy baseline, then print the
# ratios the product requirements are stated in (docs/performance.md).
#
#   bench/run.sh                          quick run (training benchmark skipped), ~45 s
#   VIBGATE_BENCH_TRAIN=1 bench/run.sh    also feature extraction + training on 1 h of data (~5 min)
#   bench/run.sh --benchmark_filter=...   extra arguments go to bench_analytics
#
# Per-window numbers are medians of 5 randomly interleaved repetitions (VIBGATE_BENCH_REPS) within
# one bench_analytics invocation; the numpy baseline then runs 3 times (VIBGATE_NUMPY_RUNS), median,
# never concurrently with the C++ benchmarks.
#
# Environment: VIBGATE_BUILD_DIR (default <repo>/build), VIBGATE_BENCH_JSON (keep the raw Google
# Benchmark JSON at this path instead of a deleted temporary file).
# Output: lines starting with '#' are context (machine, every benchmark); the other lines are one
# requirement each: name = value (inputs; target) PASS|FAIL.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${VIBGATE_BUILD_DIR:-$repo/build}"

if [[ ! -f "$build/CMakeCache.txt" ]]; then
  cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release -DVIBGATE_WERROR=ON >&2
fi
cmake --build "$build" --target bench_analytics -j2 >&2

if [[ -n "${VIBGATE_BENCH_JSON:-}" ]]; then
  json="$VIBGATE_BENCH_JSON"
else
  json="$(mktemp --tmpdir vibgate-bench.XXXXXX.json)"
  trap 'rm -f "$json"' EXIT
fi

echo "# running bench_analytics (VIBGATE_BENCH_TRAIN=${VIBGATE_BENCH_TRAIN:-0}) ..." >&2
# Medians of VIBGATE_BENCH_REPS repetitions (default 5), run in random interleaved order so a
# burst of load on the shared machine spreads over all benchmarks instead of skewing one ratio;
# the training benchmark pins itself to one repetition.
reps="${VIBGATE_BENCH_REPS:-5}"
"$build/bench/bench_analytics" --benchmark_format=json --benchmark_repetitions="$reps" \
  --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true \
  "$@" >"$json"
numpy_runs="${VIBGATE_NUMPY_RUNS:-3}"
echo "# running bench/numpy_features.py ($numpy_runs times, median) ..." >&2
numpy_lines=()
for ((i = 0; i < numpy_runs; ++i)); do
  numpy_lines+=("$(/usr/bin/python3 "$repo/bench/numpy_features.py")")
done

/usr/bin/python3 - "$json" "${numpy_lines[@]}" <<'PY'
import json
import os
import statistics
import sys

path, numpy_lines = sys.argv[1], sys.argv[2:]
with open(path) as f:
    doc = json.load(f)

TO_US = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}
# One entry per benchmark: the median aggregate when repeated, else the single run.
bench = {}
for b in doc["benchmarks"]:
    key = b.get("run_name", b["name"])
    if b.get("run_type") == "aggregate":
        if b.get("aggregate_name") == "median":
            bench[key] = b
    elif key not in bench or bench[key].get("run_type") != "aggregate":
        bench[key] = b


def us(name, field="real_time"):
    """Wall (or CPU) time per iteration (= per window) in microseconds, None when absent/failed."""
    b = bench.get(name)
    if b is None or b.get("error_occurred"):
        return None
    return b[field] * TO_US[b["time_unit"]]


ctx = doc["context"]
cpu = "?"
try:
    with open("/proc/cpuinfo") as f:
        cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
except (OSError, StopIteration):
    pass
print(f"# machine: {os.cpu_count()} CPUs, {cpu}, {ctx.get('mhz_per_cpu', '?')} MHz; "
      f"load {', '.join(f'{v:.2f}' for v in ctx.get('load_avg', []))}; "
      f"benchmark library build {ctx.get('library_build_type', '?')}")
for name, b in sorted(bench.items(), key=lambda kv: (kv[1].get("family_index", 0),
                                                     kv[1].get("per_family_instance_index", 0))):
    if b.get("error_occurred"):
        print(f"# {name}: skipped ({b.get('error_message', '')})")
        continue
    extra = {k: v for k, v in b.items() if k not in (
        "name", "family_index", "per_family_instance_index", "run_name", "run_type",
        "repetitions", "repetition_index", "threads", "iterations", "real_time", "cpu_time",
        "time_unit", "label", "aggregate_name", "aggregate_unit")}
    counters = " ".join(f"{k}={v:.6g}" for k, v in extra.items())
    label = f" [{b['label']}]" if b.get("label") else ""
    how = (f"median of {b['repetitions']}" if b.get("run_type") == "aggregate"
           else f"{b['iterations']} iterations")
    print(f"# {name}: {b['real_time']:.4g} {b['time_unit']} wall, {b['cpu_time']:.4g} "
          f"{b['time_unit']} cpu ({how}) {counters}{label}")
for line in numpy_lines:
    print(f"# {line}")


def verdict(ok):
    return "PASS" if ok else "FAIL"


def na(name, why):
    print(f"{name} = n/a ({why})")


fft = us("BM_fft_transforms_only")
score = us("BM_features_and_int8_score")
int8 = us("BM_int8_inference")
int8_scalar = us("BM_int8_inference_scalar")
flt = us("BM_float_inference")
numpy_values = [float(l.split("=", 1)[1]) for l in numpy_lines
                if l.startswith("numpy_features_us_per_window=")]
numpy_us = statistics.median(numpy_values) if numpy_values else None

cfft = us("BM_fft_transforms_only", "cpu_time")
cscore = us("BM_features_and_int8_score", "cpu_time")
cint8, cflt = us("BM_int8_inference", "cpu_time"), us("BM_float_inference", "cpu_time")
if cfft and cscore and cint8 and cflt:
    print(f"# same ratios on CPU time (less sensitive to preemption on a shared machine): "
          f"features+int8 / FFT = {cscore / cfft:.2f}, float / int8 = {cflt / cint8:.2f}")
if fft and score:
    r = score / fft
    print(f"features_int8_over_fft_only = {r:.2f} ({score:.2f} us / {fft:.2f} us; target <= 2.0) "
          f"{verdict(r <= 2.0)}")
else:
    na("features_int8_over_fft_only", "benchmark missing")
if numpy_us and score:
    r = numpy_us / score
    print(f"numpy_over_features_int8 = {r:.1f} ({numpy_us:.1f} us / {score:.2f} us; target >= 50) "
          f"{verdict(r >= 50)}")
else:
    na("numpy_over_features_int8", "benchmark or numpy baseline missing")
if flt and int8:
    r = flt / int8
    print(f"float_over_int8_inference = {r:.2f} ({flt:.3f} us / {int8:.3f} us; target >= 2.0) "
          f"{verdict(r >= 2.0)}")
    print(f"int8_inference_us_per_window = {int8:.3f} (target < 5 us) {verdict(int8 < 5.0)}")
    if int8_scalar:
        print(f"# int8 scalar kernel: {int8_scalar:.3f} us; float / int8 scalar = "
              f"{flt / int8_scalar:.2f}")
else:
    na("float_over_int8_inference", "benchmark missing")
for kind in ("int8", "float"):  # context, not a requirement (docs/model.md "Pruning")
    dense = us(f"BM_{kind}_inference_pruned/prune_pct:0")
    cdense = us(f"BM_{kind}_inference_pruned/prune_pct:0", "cpu_time")
    parts = [f"{pct} % pruned {t / dense:.2f} (CPU time {c / cdense:.2f})" for pct in (50, 90)
             for t, c in [(us(f"BM_{kind}_inference_pruned/prune_pct:{pct}"),
                           us(f"BM_{kind}_inference_pruned/prune_pct:{pct}", "cpu_time"))]
             if dense and t and cdense and c]
    if parts:
        print(f"# {kind} inference, pruned model / dense model (the kernels do not skip zeros): "
              + ", ".join(parts))

train = sorted((b for n, b in bench.items() if n.startswith("BM_train_1h_25k6")),
               key=lambda b: b.get("per_family_instance_index", 0))
if not train:
    na("train_1h_25k6_seconds", "benchmark not run")
for b in train:
    hop = b["name"].split("hop:")[1].split("/")[0] if "hop:" in b["name"] else "?"
    if b.get("error_occurred"):
        na(f"train_1h_25k6_seconds[hop {hop}]", b.get("error_message", "skipped"))
        continue
    total = b["features_s"] + b["train_s"]
    ok = b.get("model_ok", 1) == 1
    note = (f", {int(b['epochs'])} epochs" if ok
            else f"; NO MODEL: {b.get('label', 'build_model failed')}")
    cpu_note = ""
    if "train_cpu_s" in b:
        cpu_note = f", CPU time {b['features_cpu_s'] + b['train_cpu_s']:.1f} s"
    print(f"train_1h_25k6_seconds[hop {hop}] = {total:.1f} ({int(b['windows'])} windows: features "
          f"{b['features_s']:.1f} s + build_model {b['train_s']:.1f} s wall{cpu_note}{note}; "
          f"target < 60 s) {verdict(total < 60 and ok)}")
PY
