#!/usr/bin/python3
"""Accuracy on real bearing recordings (docs/accuracy.md), through the `vibgate` CLI.

What must hold (issue 2):
  * CWRU 48 kHz: trained on the first 75 % of cwru48k_normal_0hp_train.wav, its last 25 % has
    <= 1 % of windows at or above the threshold, and every 48 kHz fault file >= 90 % above it.
  * IMS: trained per channel on the first 15 snapshots, the remaining 10 give <= 1 % of windows
    above the threshold (checked per channel).
  * int8 vs float on all of the above: Pearson >= 0.999, same verdict on >= 99.5 % of windows.
Also reported (not a requirement): CWRU 12 kHz with the decimated healthy recording, with
1024-sample windows (its 3 s give only 23 training windows of 4096).

Reads ../shared/data/bearings (VIBGATE_DATA_DIR); skips with a message when it is absent.
Prints one line per check and ends with 'N passed, M failed'.
"""
import csv
import io
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

CLI = os.environ.get("VIBGATE_CLI", "")
DATA = os.environ.get("VIBGATE_DATA_DIR", "")
passed = failed = 0


def check(name, ok, detail):
    global passed, failed
    print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}")
    if ok:
        passed += 1
    else:
        failed += 1


def run(*args):
    r = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"vibgate {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout


def index():
    with open(os.path.join(DATA, "index.csv")) as f:
        return {row["file"]: row for row in csv.DictReader(f)}


def scores(model, files, extra=()):
    """Per-window (int8, float) scores of files, in order."""
    out = []
    for flag in ((), ("--float",)):
        text = run("score", "--model", model, "--overlap", "0.5", "--format", "csv", *extra, *flag, *files)
        rows = list(csv.DictReader(io.StringIO(text)))
        out.append(np.array([float(r["score"]) for r in rows]))
    return out[0], out[1]


def agreement(i8, fl):
    v8 = np.where(i8 >= 1, 2, np.where(i8 >= 0.8, 1, 0))
    vf = np.where(fl >= 1, 2, np.where(fl >= 0.8, 1, 0))
    return float(np.corrcoef(i8, fl)[0, 1]), float(np.mean(v8 == vf))


def cwru(rate, normal_name, faults, tmp, all_i8, all_fl, normal_i8, normal_fl, strict, train_extra=()):
    idx = index()
    row = idx[normal_name]
    split = 0.75 * int(row["n_samples"]) / float(row["fs_hz"])
    fr = float(row["rpm"]) / 60.0
    bearing = ",".join(row[k] for k in ("bpfo_x", "bpfi_x", "bsf_x", "ftf_x"))
    model = os.path.join(tmp, f"cwru{rate}.vgm")
    normal = os.path.join(DATA, normal_name)
    run("train", f"{normal}@:{split}", "--shaft-hz", f"{fr:.6f}", "--bearing-multiples", bearing,
        "--out", model, *train_extra)
    n8, nf = scores(model, [f"{normal}@{split}:"])
    far = float(np.mean(n8 >= 1.0))
    label = f"CWRU {rate}"
    if strict:
        check(f"{label} held-out healthy false alarms", far <= 0.01,
              f"{far * 100:.2f} % of {n8.size} windows >= 1.0 (max score {n8.max():.3f})")
    else:
        print(f"INFO {label} held-out healthy: {far * 100:.2f} % of {n8.size} windows >= 1.0 "
              f"(max {n8.max():.3f})")
    all_i8.append(n8); all_fl.append(nf); normal_i8.append(n8); normal_fl.append(nf)
    for name in faults:
        f8, ff = scores(model, [os.path.join(DATA, name)])
        det = float(np.mean(f8 >= 1.0))
        msg = f"{det * 100:.1f} % of {f8.size} windows >= 1.0 (min {f8.min():.2f}, median {np.median(f8):.1f})"
        if strict:
            check(f"{label} fault {name} detected", det >= 0.90, msg)
        else:
            print(f"INFO {label} fault {name}: {msg}")
        all_i8.append(f8); all_fl.append(ff)


def main():
    if not CLI or not os.path.exists(CLI):
        print(f"FAIL VIBGATE_CLI is not set to the vibgate binary ({CLI!r})")
        print("0 passed, 1 failed")
        return 1
    if not DATA or not os.path.isdir(DATA):
        print(f"SKIP bearing data folder {DATA!r} is absent: accuracy checks not run")
        print("0 passed, 0 failed")
        return 0
    all_i8, all_fl, normal_i8, normal_fl = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        cwru(48, "cwru48k_normal_0hp_train.wav",
             ["cwru48k_B007_0hp_122.wav", "cwru48k_IR007_0hp_109.wav", "cwru48k_OR007at6_0hp_135.wav"],
             tmp, all_i8, all_fl, normal_i8, normal_fl, strict=True)
        ims = sorted(f for f in os.listdir(DATA) if f.startswith("ims1_") and f.endswith(".wav"))
        train, test = [os.path.join(DATA, f) for f in ims[:15]], [os.path.join(DATA, f) for f in ims[15:25]]
        fr = 2000 / 60.0
        for ch in range(8):
            model = os.path.join(tmp, f"ims{ch}.vgm")
            run("train", "--channel", str(ch), "--shaft-hz", f"{fr:.6f}", "--out", model, *train)
            n8, nf = scores(model, test, ("--channel", str(ch)))
            far = float(np.mean(n8 >= 1.0))
            check(f"IMS channel {ch} held-out healthy false alarms", far <= 0.01,
                  f"{far * 100:.2f} % of {n8.size} windows >= 1.0 (max score {n8.max():.3f})")
            all_i8.append(n8); all_fl.append(nf); normal_i8.append(n8); normal_fl.append(nf)
        i8, fl = np.concatenate(all_i8), np.concatenate(all_fl)
        r, same = agreement(i8, fl)
        check("int8 vs float Pearson (all windows above)", r >= 0.999, f"r = {r:.6f} over {i8.size} windows")
        check("int8 vs float same verdict (all windows above)", same >= 0.995, f"{same * 100:.2f} %")
        r_n, same_n = agreement(np.concatenate(normal_i8), np.concatenate(normal_fl))
        print(f"INFO int8 vs float on healthy windows only: r = {r_n:.6f}, same verdict {same_n * 100:.2f} %")
        # Extra, reported only: 12 kHz CWRU (the healthy recording is a decimated 48 kHz one).
        cwru(12, "cwru12k_normal_0hp_decimated_train.wav",
             ["cwru12k_B007_0hp_118.wav", "cwru12k_IR007_0hp_105.wav", "cwru12k_IR021_0hp_209.wav",
              "cwru12k_OR007at6_0hp_130.wav"], tmp, [], [], [], [], strict=False,
             train_extra=("--window", "1024"))  # 3 s of 12 kHz: shorter windows, more of them
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
