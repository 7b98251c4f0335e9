#!/usr/bin/python3
"""The CLI side of issue 9's pruning and central-training inputs, on the synthetic machine:

  * `vibgate features --model-input --format csv|json` prints the model-input vector with the
    model's input names, and its values follow from the raw features by the transforms of
    docs/features.md ("Model input vector"), recomputed here from `vibgate features --format csv`;
  * `vibgate train --prune F` reports the pruning and the nonzero weights (exact counts for the
    default 38 -> 32 -> 8 -> 32 -> 38 network), the pruned model scores, and a bad fraction is a
    usage error (exit 2).

Needs only the vibgate binary (VIBGATE_CLI). Prints one line per check, ends with 'N passed, M failed'.
"""
import csv
import io
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

CLI = os.environ.get("VIBGATE_CLI", "")
passed = failed = 0
OPTS = ["--shaft-hz", "29.95", "--bearing-multiples", "3.5848,5.4152,2.3567,0.39828"]


def check(name, ok, detail):
    global passed, failed
    print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)
    if ok:
        passed += 1
    else:
        failed += 1


def run(*args):
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300)


def main():
    if not CLI or not os.path.exists(CLI):
        print(f"FAIL VIBGATE_CLI is not set to the vibgate binary ({CLI!r})")
        print("0 passed, 1 failed")
        return 1
    with tempfile.TemporaryDirectory(prefix="vibgate-prune-cli-") as tmp:
        wav, fault = os.path.join(tmp, "healthy.wav"), os.path.join(tmp, "fault.wav")
        run("synth", "--out", wav, "--duration", "12", "--seed", "1")
        run("synth", "--out", fault, "--duration", "4", "--seed", "3", "--defect", "outer", "--fault-peak", "0.3")

        raw = list(csv.DictReader(io.StringIO(run("features", wav, "--format", "csv", *OPTS).stdout)))
        r = run("features", wav, "--format", "csv", "--model-input", *OPTS)
        rows = list(csv.reader(io.StringIO(r.stdout)))
        names = rows[0][3:]
        expected = (["lg_rms", "lg_peak", "crest_factor", "skewness", "lg_kurtosis", "lg_velocity_rms"]
                    + [f"band_{i}" for i in range(16)] + ["centroid_rel", "lg_shaft_1x", "lg_shaft_2x", "lg_shaft_3x"]
                    + [f"lg_env_{d}_{h}" for d in ("bpfo", "bpfi", "bsf", "ftf") for h in (1, 2, 3)])
        check("features --model-input: header", r.returncode == 0 and rows[0][:3] == ["file", "channel", "start_s"]
              and names == expected, f"{len(names)} inputs: {names[0]} ... {names[-1]}")
        check("features --model-input: one row per window, as the raw features", len(rows) - 1 == len(raw) > 100,
              f"{len(rows) - 1} rows, raw features {len(raw)}")
        got = np.array([[float(v) for v in row[3:]] for row in rows[1:]])
        lg = lambda k: np.log10(np.array([float(w[k]) for w in raw]) + 1e-9)
        col = lambda k: np.array([float(w[k]) for w in raw])
        ref = {"lg_rms": lg("rms"), "lg_peak": lg("peak"), "crest_factor": col("crest_factor"),
               "skewness": col("skewness"), "lg_kurtosis": lg("kurtosis"), "lg_velocity_rms": lg("velocity_rms"),
               "centroid_rel": col("spectral_centroid") / (25600 / 2)}
        for i in range(16):
            ref[f"band_{i}"] = col(f"band_{i}")
        for h in (1, 2, 3):
            ref[f"lg_shaft_{h}x"] = lg(f"shaft_{h}x")
        for d in ("bpfo", "bpfi", "bsf", "ftf"):
            for h in (1, 2, 3):
                ref[f"lg_env_{d}_{h}"] = lg(f"env_{d}_{h}")
        want = np.stack([ref[n] for n in names], axis=1)
        err = float(np.max(np.abs(got - want) / (1e-3 + np.abs(want))))
        check("features --model-input = the documented transforms of the raw features", err < 1e-4,
              f"largest relative difference {err:.2e} over {got.size} values")
        j = json.loads(run("features", wav, "--format", "json", "--model-input", *OPTS).stdout)
        check("features --model-input --format json: same values",
              len(j) == got.shape[0] and np.allclose([[w[n] for n in names] for w in j], got, rtol=1e-7, atol=0),
              f"{len(j)} objects with keys {list(j[0])[:4]} ...")

        weights = 38 * 32 + 32 * 8 + 8 * 32 + 32 * 38
        for frac in (0.0, 0.5, 0.9):
            model = os.path.join(tmp, f"m{frac}.vgm")
            t = run("train", wav, *OPTS, "--prune", str(frac), "--epochs", "60", "--out", model)
            m = re.search(r"(\d+) nonzero weights", t.stderr)
            nonzero = weights - sum(round(frac * n) for n in (38 * 32, 32 * 8, 8 * 32, 32 * 38))
            ok = (t.returncode == 0 and m is not None and int(m.group(1)) == nonzero
                  and (("pruned" in t.stderr) == (frac > 0)) and "validation loss" in t.stderr)
            check(f"train --prune {frac:g}: summary line", ok, t.stderr.strip())
            if t.returncode != 0:
                continue
            s = [float(x["score"]) for x in csv.DictReader(io.StringIO(
                run("score", "--model", model, "--format", "csv", fault).stdout))]
            check(f"train --prune {frac:g}: the model scores the fault above 1.0", len(s) > 10 and min(s) > 1.0,
                  f"{len(s)} windows, min score {min(s):.2f}")
        for bad in ("1.0", "-0.1", "abc"):
            t = run("train", wav, *OPTS, "--prune", bad, "--out", os.path.join(tmp, "bad.vgm"))
            check(f"train --prune {bad}: usage error", t.returncode == 2 and "--prune" in t.stderr,
                  f"exit {t.returncode}: {t.stderr.strip().splitlines()[0] if t.stderr.strip() else ''}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
