#!/usr/bin/python3
"""Effect of magnitude pruning (`vibgate train --prune F`, docs/model.md "Pruning") on detection,
validation loss and model size, through the vibgate CLI.

For each prune fraction (default 0, 0.5, 0.75, 0.9), on
  * CWRU 48 kHz (VIBGATE_DATA_DIR, skipped when absent): trained on the first 75 % of the healthy
    recording, scored on its last 25 % and the three 48 kHz fault recordings (as docs/accuracy.md);
  * the synthetic machine (`vibgate synth`): trained on 30 s healthy (seed 1), scored on 10 s
    healthy (seed 2) and 10 s each of outer-race, inner-race and ball faults at 0.3 g (seeds 3-5);
  * with --long also a 10-minute synthetic baseline (seed 1), scored on 10 s healthy (seed 2) and
    outer-race faults of 0.3 g and 0.1 g (seeds 3, 4);
prints ROC AUC, the healthy maximum and faulty minimum score (int8), the int8/float agreement,
the validation loss, the nonzero weights, the model file size raw and gzip -9, and the training
time. Inference time is measured by bench/run.sh (BM_*_inference_pruned).

    VIBGATE_CLI=build/gateway/vibgate VIBGATE_DATA_DIR=../shared/data/bearings bench/prune_eval.py
        [--fractions 0,0.5,0.75,0.9] [--seeds 1,2,3,4,5] [--markdown]

With several seeds the table gives, per data set and fraction, the worst case over the seeds
(lowest AUC, highest healthy score, lowest faulty score, the held-out healthy windows at or above
1.0 summed over the seeds) and the median of the validation loss and file sizes.
"""
import argparse
import csv
import gzip
import io
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

CLI = os.environ.get("VIBGATE_CLI", "build/gateway/vibgate")
DATA = os.environ.get("VIBGATE_DATA_DIR", "")


def run(*args):
    r = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        sys.exit(f"vibgate {' '.join(args)} failed: {r.stderr.strip()}")
    return r


def scores(model, files, flag=()):
    text = run("score", "--model", model, "--format", "csv", *flag, *files).stdout
    return np.array([float(r["score"]) for r in csv.DictReader(io.StringIO(text))])


def auc(neg, pos):
    """P(faulty > healthy) + 0.5 P(tie), every pair."""
    neg, pos = np.asarray(neg), np.asarray(pos)
    return float(np.mean((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])))


def datasets(tmp, long):
    out = []
    normal = os.path.join(DATA, "cwru48k_normal_0hp_train.wav") if DATA else ""
    if normal and os.path.exists(normal):
        with open(os.path.join(DATA, "index.csv")) as f:
            row = {r["file"]: r for r in csv.DictReader(f)}["cwru48k_normal_0hp_train.wav"]
        split = 0.75 * int(row["n_samples"]) / float(row["fs_hz"])
        opts = ["--shaft-hz", f"{float(row['rpm']) / 60:.6f}", "--bearing-multiples",
                ",".join(row[k] for k in ("bpfo_x", "bpfi_x", "bsf_x", "ftf_x"))]
        faults = [os.path.join(DATA, f) for f in
                  ("cwru48k_B007_0hp_122.wav", "cwru48k_IR007_0hp_109.wav", "cwru48k_OR007at6_0hp_135.wav")]
        out.append(("CWRU 48 kHz", [f"{normal}@:{split}"], [f"{normal}@{split}:"], faults, opts))
    else:
        print(f"# CWRU data absent ({DATA!r}): synthetic machine only", file=sys.stderr)
    p = lambda n: os.path.join(tmp, n)
    run("synth", "--out", p("train.wav"), "--duration", "30", "--seed", "1")
    run("synth", "--out", p("healthy.wav"), "--duration", "10", "--seed", "2")
    for seed, defect in ((3, "outer"), (4, "inner"), (5, "ball")):
        run("synth", "--out", p(f"{defect}.wav"), "--duration", "10", "--seed", str(seed), "--defect", defect,
            "--fault-peak", "0.3")
    opts = ["--shaft-hz", "29.95", "--bearing-multiples", "3.5848,5.4152,2.3567,0.39828"]
    out.append(("synthetic machine", [p("train.wav")], [p("healthy.wav")],
                [p("outer.wav"), p("inner.wav"), p("ball.wav")], opts))
    if long:
        run("synth", "--out", p("train600.wav"), "--duration", "600", "--seed", "1")
        run("synth", "--out", p("outer01.wav"), "--duration", "10", "--seed", "4", "--defect", "outer",
            "--fault-peak", "0.1")
        out.append(("synthetic, 10 min baseline", [p("train600.wav")], [p("healthy.wav")],
                    [p("outer.wav"), p("outer01.wav")], opts))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fractions", default="0,0.5,0.75,0.9")
    ap.add_argument("--seeds", default="1")
    ap.add_argument("--markdown", action="store_true", help="print a markdown table")
    ap.add_argument("--long", action="store_true", help="also the 10-minute synthetic baseline")
    a = ap.parse_args()
    fractions = [float(f) for f in a.fractions.split(",")]
    seeds = a.seeds.split(",")
    rows = []
    with tempfile.TemporaryDirectory(prefix="vibgate-prune-") as tmp:
        for label, train, healthy, faults, opts in datasets(tmp, a.long):
            for frac, seed in [(f, s) for f in fractions for s in seeds]:
                model = os.path.join(tmp, f"m{frac}.vgm")
                t0 = time.monotonic()
                r = run("train", *train, *opts, "--seed", seed, "--prune", str(frac), "--out", model)
                secs = time.monotonic() - t0
                info = r.stderr
                vloss = float(re.search(r"validation loss ([0-9.eE+-]+)", info).group(1))
                nonzero = int(re.search(r"(\d+) nonzero weights", info).group(1))
                epochs = re.search(r"(\d+) epochs \(best (\d+)\)", info).groups()
                h8, hf = scores(model, healthy), scores(model, healthy, ("--float",))
                per_fault = [scores(model, [f]) for f in faults]
                f8 = np.concatenate(per_fault)
                ff = np.concatenate([scores(model, [f], ("--float",)) for f in faults])
                a8, af = np.concatenate([h8, f8]), np.concatenate([hf, ff])
                with open(model, "rb") as f:
                    raw = f.read()
                rows.append({
                    "data": label, "prune": frac, "seed": seed, "false_alarms": int(np.sum(h8 >= 1.0)), "detected": float(np.mean(f8 >= 1.0)),
                    "fault_mins": [float(x.min()) for x in per_fault],
                    "fault_detected": [float(np.mean(x >= 1.0)) for x in per_fault], "auc": auc(h8, f8), "healthy_max": float(h8.max()),
                    "fault_min": float(f8.min()), "margin": float(f8.min() / h8.max()),
                    "pearson": float(np.corrcoef(a8, af)[0, 1]), "vloss": vloss, "nonzero": nonzero,
                    "epochs": f"{epochs[0]} ({epochs[1]})", "bytes": len(raw),
                    "gzip": len(gzip.compress(raw, compresslevel=9, mtime=0)), "train_s": secs,
                    "windows": f"{h8.size}/{f8.size}",
                })
                print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rows[-1].items()),
                      file=sys.stderr, flush=True)
    if a.markdown:
        print(f"Seeds {a.seeds}: worst case over the seeds, median of the validation loss and sizes.\n")
        print("| data | prune | ROC AUC (min) | healthy max | false alarms | faulty min per fault file | faulty >= 1.0 per file (min) | faulty min / healthy max "
              "| int8 vs float r (min) | validation loss | nonzero weights | epochs (median) | train s (median) | file bytes | gzip -9 bytes |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for label in dict.fromkeys(r["data"] for r in rows):
            for frac in fractions:
                g = [r for r in rows if r["data"] == label and r["prune"] == frac]
                med = lambda k: float(np.median([r[k] for r in g]))
                hmax, fmin = max(r["healthy_max"] for r in g), min(r["fault_min"] for r in g)
                total_h = sum(int(r["windows"].split("/")[0]) for r in g)
                nf = len(g[0]["fault_mins"])
                mins = " / ".join(f"{min(r['fault_mins'][i] for r in g):.3g}" for i in range(nf))
                detected = " / ".join(f"{min(r['fault_detected'][i] for r in g) * 100:.0f} %" for i in range(nf))
                print(f"| {label} | {frac:g} | {min(r['auc'] for r in g):.3f} | {hmax:.3f} "
                      f"| {sum(r['false_alarms'] for r in g)} of {total_h} "
                      f"| {mins} | {detected} | {fmin / hmax:.1f} "
                      f"| {min(r['pearson'] for r in g):.6f} | {med('vloss'):.4f} | {g[0]['nonzero']} "
                      f"| {np.median([int(r['epochs'].split()[0]) for r in g]):.0f} | {med('train_s'):.2f} | {med('bytes'):.0f} | {med('gzip'):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
