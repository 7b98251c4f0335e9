#!/usr/bin/python3
"""`vibgate` CLI: error reporting and output contracts of the offline commands (docs/cli.md).

Run as `/usr/bin/python3 test_cli_errors.py` with VIBGATE_CLI set to the vibgate binary (ctest does
this). Every input is generated here into a temporary directory. Prints one line per check and a
final `N passed, M failed`; exits 1 if any check failed (a missing VIBGATE_CLI is a failure).

  a) bad input: exit code 1 and exactly one stderr line "vibgate: <file>: <problem>" naming the
     file and the problem; usage errors (CLI11) exit 2;
  b) output contracts: `score --format csv|json`, `--float`, FILE@START:END ranges, and `synth`
     output readable by `features`.
"""

import csv
import io
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

import warnings

import numpy as np
from scipy.io import wavfile

# libsndfile adds a PEAK chunk to float WAVs, which scipy reports and skips.
warnings.filterwarnings("ignore", category=wavfile.WavFileWarning)

WINDOW = 4096  # default window length
SCORE_HOP = 2048  # default scoring overlap 0.5


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import Checks  # noqa: E402  (tests/checks.py)


def run(cli, *args, timeout=300):
    """Runs the CLI; returns (exit code, stdout, stderr)."""
    p = subprocess.run([cli, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def windows(n_samples, hop=SCORE_HOP, n=WINDOW):
    return 0 if n_samples < n else (n_samples - n) // hop + 1


def synth_signal(seconds, rate, seed, fault=False):
    """A machine-like test signal: shaft harmonics, resonant noise, optional impacts (in g)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.04 * np.sin(2 * np.pi * 29.95 * t) + 0.015 * np.sin(2 * np.pi * 59.9 * t + 1)
    x += 0.03 * rng.standard_normal(t.size)
    if fault:
        period = int(rate / 107.4)
        ring = 0.5 * np.exp(-np.arange(200) / 30.0) * np.sin(2 * np.pi * 3500 * np.arange(200) / rate)
        for start in range(0, t.size - 200, period):
            x[start:start + 200] += ring
    return x.astype(np.float32)


def write_ima_adpcm_wav(path, rate=25600, blocks=40):
    """A WAV with format tag 0x11 (IMA ADPCM), written by hand: 256-byte blocks of 505 samples."""
    block_align, samples_per_block = 256, 505
    fmt = struct.pack("<HHIIHHHH", 0x11, 1, rate, rate * block_align // samples_per_block, block_align, 4, 2,
                      samples_per_block)
    data = b"".join(struct.pack("<hBB", 0, 0, 0) + bytes([0x17] * (block_align - 4)) for _ in range(blocks))
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"fact" + struct.pack("<I", 4) +
            struct.pack("<I", blocks * samples_per_block) + b"data" + struct.pack("<I", len(data)) + data)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(body)) + body)


class Cli:
    def __init__(self, checks, cli, tmp):
        self.c = checks
        self.cli = cli
        self.tmp = tmp

    def path(self, name):
        return os.path.join(self.tmp, name)

    def expect_error(self, name, args, needles, code=1):
        """Exit `code`; for code 1 exactly one stderr line 'vibgate: ...' holding every needle."""
        rc, out, err = run(self.cli, *args)
        lines = err.strip("\n").split("\n") if err.strip() else []
        ok = rc == code
        detail = f"exit {rc} (want {code}), stderr {err.strip()!r}"
        if code == 1:
            ok = ok and len(lines) == 1 and lines[0].startswith("vibgate: ")
        for n in needles:
            ok = ok and n in err
        self.c.check(name, ok, detail if not ok else lines[0] if lines else "")
        return rc, out, err


def error_checks(cli, c, tmp, model_25k, wav_25k):
    t = Cli(c, cli, tmp)
    p = t.path

    missing = p("no_such_file.wav")
    t.expect_error("missing file", ["features", missing], [missing, "cannot open: No such file or directory"])
    t.expect_error("missing file (score)", ["score", "--model", model_25k, missing],
                   [missing, "cannot open: No such file or directory"])
    t.expect_error("missing model file", ["score", "--model", p("nope.vgm"), wav_25k],
                   [p("nope.vgm"), "cannot open model"])

    ima = p("ima_adpcm.wav")
    write_ima_adpcm_wav(ima)
    t.expect_error("unsupported WAV encoding (IMA ADPCM)", ["features", ima],
                   [ima, "unsupported WAV encoding (IMA ADPCM)"])

    empty = p("empty.wav")
    wavfile.write(empty, 25600, np.zeros(0, dtype=np.float32))
    t.expect_error("empty recording", ["features", empty], [empty, "recording is empty"])

    short = p("short.wav")
    wavfile.write(short, 25600, synth_signal(1000 / 25600, 25600, 1))
    t.expect_error("recording shorter than one window", ["features", short],
                   [short, "recording is too short (1000 samples, one window needs 4096)"])
    t.expect_error("recording shorter than one window (score)", ["score", "--model", model_25k, short],
                   [short, "recording is too short (1000 samples, one window needs 4096)"])

    nan = p("nan.wav")
    x = synth_signal(1.0, 25600, 2)
    x[1234] = np.nan
    wavfile.write(nan, 25600, x)
    t.expect_error("NaN sample", ["features", nan], [nan, "sample 1234 of channel 0 is NaN"])
    inf = p("inf2.wav")
    y = np.stack([synth_signal(1.0, 25600, 3), synth_signal(1.0, 25600, 4)], axis=1)
    y[777, 1] = -np.inf
    wavfile.write(inf, 25600, y)
    t.expect_error("-Inf sample in channel 1", ["features", inf], [inf, "sample 777 of channel 1 is -Inf"])

    csv_ok = p("ok.csv")
    np.savetxt(csv_ok, synth_signal(0.5, 25600, 5), fmt="%.7g")
    t.expect_error("CSV without --rate", ["features", csv_ok], [csv_ok, "--rate is required for CSV input"])
    csv_bad = p("bad.csv")
    with open(csv_bad, "w") as f:
        f.write("accel\n0.1\n0.2\nabc\n0.3\n")
    t.expect_error("CSV with a non-number", ["features", "--rate", "25600", csv_bad],
                   [csv_bad, "line 4, column 1: 'abc' is not a number"])
    rc, out, err = run(cli, "features", "--rate", "25600", "--format", "csv", csv_ok)
    c.check("CSV with --rate is read", rc == 0 and len(out.strip().split("\n")) == 1 + windows(12800),
            f"exit {rc}, {len(out.splitlines())} lines, stderr {err.strip()!r}")

    # A model trained at 48 kHz applied to a 12 kHz recording.
    w48, w12, m48 = p("rate48k.wav"), p("rate12k.wav"), p("m48k.vgm")
    wavfile.write(w48, 48000, synth_signal(3.0, 48000, 6))
    wavfile.write(w12, 12000, synth_signal(3.0, 12000, 7))
    rc, _, err = run(cli, "train", w48, "--out", m48, "--epochs", "20")
    if c.check("train at 48 kHz", rc == 0 and os.path.exists(m48), f"exit {rc}, {err.strip()!r}"):
        t.expect_error("score 12 kHz file with a 48 kHz model", ["score", "--model", m48, w12],
                       [w12, "model expects sample rate 48000 Hz, input has 12000 Hz"])

    corrupt = p("corrupt.vgm")
    data = bytearray(open(model_25k, "rb").read())
    data[len(data) // 2] ^= 0x40
    open(corrupt, "wb").write(bytes(data))
    t.expect_error("corrupted model file", ["score", "--model", corrupt, wav_25k],
                   [corrupt, "model file is corrupted (CRC mismatch)"])
    truncated = p("truncated.vgm")
    open(truncated, "wb").write(bytes(data[: len(data) - 10]))
    t.expect_error("truncated model file", ["score", "--model", truncated, wav_25k],
                   [truncated, "model file is truncated"])
    not_model = p("not_model.vgm")
    shutil.copy(wav_25k, not_model)
    t.expect_error("WAV given as model", ["score", "--model", not_model, wav_25k],
                   [not_model, "not a vibgate model file"])

    few = p("few_windows.wav")  # 3 hops past one window: under 8 windows at any overlap ≤ 0.75
    wavfile.write(few, 25600, synth_signal((WINDOW + 3 * 1024) / 25600, 25600, 8))
    rc, out, err = t.expect_error("train with too few windows", ["train", few, "--out", p("few.vgm")],
                                  [few, "windows in the training data; at least 8 are needed"])
    c.check("train with too few windows writes no model", not os.path.exists(p("few.vgm")))

    t.expect_error("--bearing-multiples 1,2", ["features", "--bearing-multiples", "1,2", "--rpm", "1797", wav_25k],
                   [wav_25k, "--bearing-multiples: expected 4 comma-separated numbers, got 2"])
    t.expect_error("--bearing-multiples with a non-number", ["features", "--bearing-multiples", "3.5,x,2,0.4",
                                                             "--rpm", "1797", wav_25k],
                   [wav_25k, "--bearing-multiples: 'x' is not a number"])
    t.expect_error("--window 1000", ["features", "--window", "1000", wav_25k],
                   [wav_25k, "window: must be a power of two within 256…65536 (got 1000)"])
    t.expect_error("--units furlongs", ["features", "--units", "furlongs", wav_25k],
                   [wav_25k, "--units: 'furlongs' is not g or m/s2"])
    t.expect_error("--units furlongs (train)", ["train", "--units", "furlongs", wav_25k, "--out", p("u.vgm")],
                   [wav_25k, "--units: 'furlongs' is not g or m/s2"])
    t.expect_error("--bearing without shaft speed", ["features", "--bearing", "9,0.3126,1.537,0", wav_25k],
                   [wav_25k, "bearing: needs the shaft speed"])
    t.expect_error("--bearing impossible geometry", ["features", "--rpm", "1797", "--bearing", "9,2,1.5,0", wav_25k],
                   [wav_25k, "bearing.pitch_diameter"])
    t.expect_error("--mounting sideways", ["features", "--mounting", "sideways", wav_25k],
                   [wav_25k, "--mounting: 'sideways' is not rigid or flexible"])
    t.expect_error("--overlap 0.99 (features)", ["features", "--overlap", "0.99", wav_25k],
                   [wav_25k, "overlap: must be within 0…0.9375"])

    # Usage errors reported by CLI11: exit 2.
    t.expect_error("usage: unknown option", ["features", "--bogus", wav_25k], ["--bogus"], code=2)
    t.expect_error("usage: --window not a number", ["features", "--window", "abc", wav_25k], ["--window"], code=2)
    t.expect_error("usage: --format xml", ["score", "--model", model_25k, wav_25k, "--format", "xml"],
                   ["--format"], code=2)
    t.expect_error("usage: train without --out", ["train", wav_25k], ["--out"], code=2)
    t.expect_error("usage: no subcommand", [], [], code=2)
    t.expect_error("usage: --input-format mp3", ["features", "--input-format", "mp3", wav_25k],
                   ["--input-format"], code=2)

    # A scoring overlap outside 0…0.9375 must be refused like everywhere else (docs/cli.md), not
    # turned into a negative hop (1.5 → hop −2048 → out-of-range window → crash).
    for ov in ("1.5", "-3"):
        rc, out, err = run(cli, "score", "--model", model_25k, wav_25k, "--overlap", ov, "--format", "csv")
        c.check(f"score --overlap {ov} is refused", rc in (1, 2) and "overlap" in err and out == "",
                f"exit {rc}, stdout {len(out.splitlines())} lines, stderr {err.strip()[:200]!r}")


def output_checks(cli, c, tmp, model_25k, wav_25k, n_samples):
    p = lambda name: os.path.join(tmp, name)  # noqa: E731
    fs = 25600
    expected = windows(n_samples)

    # --- score --format csv: exact header, one row per window, summaries on stderr only.
    rc, out, err = run(cli, "score", "--model", model_25k, wav_25k, "--format", "csv")
    lines = out.rstrip("\n").split("\n")
    c.check("score csv: exit 0", rc == 0, err.strip())
    c.check("score csv: header", lines[0] == "file,channel,start_s,score,verdict", repr(lines[0]))
    rows = list(csv.reader(io.StringIO(out)))[1:]
    c.check("score csv: one row per window", len(rows) == expected, f"{len(rows)} rows, want {expected}")
    starts = [float(r[2]) for r in rows]
    want_starts = [i * SCORE_HOP / fs for i in range(expected)]
    c.check("score csv: start_s = i·hop/fs",
            len(starts) == expected and all(abs(a - b) < 1e-6 for a, b in zip(starts, want_starts)))
    c.check("score csv: file and channel columns", all(r[0] == wav_25k and r[1] == "0" for r in rows))
    scores = [float(r[3]) for r in rows]
    verdicts = [r[4] for r in rows]

    def verdict(s):
        return "alarm" if s >= 1.0 else "warning" if s >= 0.8 else "normal"

    c.check("score csv: verdicts follow the scores (alarm ≥ 1, warning ≥ 0.8)",
            all(v == verdict(s) for s, v in zip(scores, verdicts)),
            str([(s, v) for s, v in zip(scores, verdicts) if v != verdict(s)][:3]))
    c.check("score csv: healthy recording scores below the threshold", max(scores) < 1.0, f"max {max(scores)}")
    err_lines = err.strip().split("\n")
    c.check("score csv: one summary line on stderr", len(err_lines) == 1 and
            err_lines[0].startswith("vibgate: summary {"), repr(err[:200]))
    try:
        summary = json.loads(err_lines[0][len("vibgate: summary "):])
        c.check("score csv: summary counts", summary["windows"] == expected and summary["file"] == wav_25k and
                summary["normal"] + summary["warning"] + summary["alarm"] == expected and
                abs(summary["max_score"] - max(scores)) < 1e-6 * max(1, max(scores)), str(summary))
    except (ValueError, KeyError) as e:
        c.check("score csv: summary is JSON", False, str(e))
    c.check("score csv: no summary on stdout", "summary" not in out)

    # --- score --format json parses and agrees with the CSV.
    rc, out, err = run(cli, "score", "--model", model_25k, wav_25k, "--format", "json")
    try:
        j = json.loads(out)
        f0 = j["files"][0]
        detail = f0["windows_detail"]
        c.check("score json: parses, one file, all windows", rc == 0 and len(j["files"]) == 1 and
                f0["windows"] == expected and len(detail) == expected and j["path"] == "int8")
        # Two processes: FFTW_MEASURE may pick different FFT algorithms in each, which moves
        # features and scores by float round-off (seen: up to 7e-6 relative). Hence 1e-4.
        worst = max(abs(d["score"] - s) / max(s, 1e-6) for d, s in zip(detail, scores))
        c.check("score json: scores equal the CSV's (1e-4 relative)", worst <= 1e-4, f"worst {worst:.3g}")
        c.check("score json: verdicts equal the CSV's",
                all(d["verdict"] == v for d, v, s in zip(detail, verdicts, scores)
                    if min(abs(s - 0.8), abs(s - 1.0)) > 1e-4))
    except (ValueError, KeyError, IndexError) as e:
        c.check("score json: parses", False, f"{e}: {out[:200]!r}")

    # --- --float changes the scores only slightly.
    rc, out, err = run(cli, "score", "--model", model_25k, wav_25k, "--format", "csv", "--float")
    fl = [float(r[3]) for r in list(csv.reader(io.StringIO(out)))[1:]]
    if c.check("score --float: same windows", rc == 0 and len(fl) == expected, f"exit {rc}, {len(fl)} rows"):
        a, b = np.array(scores), np.array(fl)
        rel = np.abs(a - b) / np.maximum(b, 1e-9)
        r = float(np.corrcoef(a, b)[0, 1])
        c.check("score --float: differs from int8 (really the float path)", np.any(a != b))
        c.check("score --float: close to int8 (median rel. diff < 10 %, Pearson > 0.9)",
                float(np.median(rel)) < 0.10 and r > 0.9, f"median rel {np.median(rel):.4f}, Pearson {r:.4f}")

    # Fault recording: far above the threshold on both paths.
    fault = p("fault.wav")
    wavfile.write(fault, fs, synth_signal(3.0, fs, 21, fault=True))
    rc, out, err = run(cli, "score", "--model", model_25k, fault, "--format", "csv")
    fs_rows = list(csv.reader(io.StringIO(out)))[1:]
    alarms = sum(r[4] == "alarm" for r in fs_rows)
    c.check("score csv: fault recording alarms", rc == 0 and len(fs_rows) == windows(3 * fs) and
            alarms >= 0.9 * len(fs_rows), f"{alarms}/{len(fs_rows)} alarms")

    # --- FILE@START:END selects the right windows.
    for spec, start, end in ((f"{wav_25k}@2:5", 2.0, 5.0), (f"{wav_25k}@:3", 0.0, 3.0),
                             (f"{wav_25k}@8:", 8.0, n_samples / fs), (f"{wav_25k}@1.5:1.75", None, None)):
        rc, out, err = run(cli, "score", "--model", model_25k, spec, "--format", "csv")
        if start is None:  # 0.25 s = 6400 samples: windows at 1.5 s and 1.58 s
            n = windows(6400)
            rows = list(csv.reader(io.StringIO(out)))[1:]
            c.check(f"range {os.path.basename(spec)}: {n} windows from 1.5 s", rc == 0 and len(rows) == n and
                    abs(float(rows[0][2]) - 1.5) < 1e-9, f"exit {rc}, {len(rows)} rows, {err.strip()[:120]!r}")
            continue
        n = windows(int(round(end * fs)) - int(round(start * fs)))
        rows = list(csv.reader(io.StringIO(out)))[1:]
        ok = rc == 0 and len(rows) == n and rows and abs(float(rows[0][2]) - start) < 1e-9 and \
            all(r[0] == spec for r in rows)
        c.check(f"range {os.path.basename(spec)}: {n} windows from {start} s", ok,
                f"exit {rc}, {len(rows)} rows, first {rows[0][:3] if rows else None}")
    rc, out, err = run(cli, "score", "--model", model_25k, f"{wav_25k}@2:1")
    c.check("range with start after end is an error", rc == 1 and "is not before --end" in err and
            wav_25k in err, err.strip())
    rc, out, err = run(cli, "score", "--model", model_25k, f"{wav_25k}@x:3")
    c.check("range with a non-number is an error", rc == 1 and "'x' is not a time in seconds" in err, err.strip())
    rc, out, err = run(cli, "score", "--model", model_25k, f"{wav_25k}@99:")
    c.check("range beyond the end is an error", rc == 1 and "is beyond the end of the recording" in err,
            err.strip())
    # Two ranges of one file in one call: rows of both, each under its own name.
    rc, out, err = run(cli, "score", "--model", model_25k, f"{wav_25k}@0:1", f"{wav_25k}@1:2", "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))[1:]
    c.check("two ranges of one file", rc == 0 and len(rows) == 2 * windows(fs) and
            len(err.strip().split("\n")) == 2, f"{len(rows)} rows")

    # --- synth writes a WAV that features (and scipy) read.
    out_wav = p("synth_out.wav")
    rc, _, err = run(cli, "synth", "--out", out_wav, "--duration", "2", "--rate", "20000", "--seed", "4",
                     "--defect", "outer")
    ok = rc == 0 and os.path.exists(out_wav)
    if c.check("synth writes a WAV", ok, f"exit {rc}, {err.strip()!r}"):
        rate, data = wavfile.read(out_wav)
        c.check("synth WAV: rate, length, float32, finite",
                rate == 20000 and data.dtype == np.float32 and data.shape == (40000,) and np.all(np.isfinite(data)),
                f"rate {rate}, dtype {data.dtype}, shape {data.shape}")
        c.check("synth WAV: plausible amplitude (g)", 0.01 < float(np.std(data)) < 5, f"std {np.std(data)}")
        rc, out, err = run(cli, "features", out_wav, "--format", "csv", "--rpm", "1797",
                           "--bearing", "9,0.3126,1.537,0")
        lines = out.rstrip("\n").split("\n")
        header = lines[0].split(",") if lines else []
        c.check("features reads the synth WAV", rc == 0 and len(lines) == 1 + windows(40000) and
                header[:4] == ["file", "channel", "start_s", "rms"] and header[-1] == "env_ftf_3",
                f"exit {rc}, {len(lines)} lines, stderr {err.strip()[:200]!r}")
        if rc == 0 and len(lines) > 1:
            rows = list(csv.DictReader(io.StringIO(out)))
            x = data[:WINDOW].astype(np.float64)
            c.check("features: first window rms equals numpy's",
                    abs(float(rows[0]["rms"]) - float(np.std(x))) <= 1e-4 * float(np.std(x)),
                    f"{rows[0]['rms']} vs {np.std(x)}")
        # synth is deterministic for a seed (the samples; libsndfile's PEAK chunk holds a timestamp)
        again, other = p("synth_again.wav"), p("synth_other.wav")
        run(cli, "synth", "--out", again, "--duration", "2", "--rate", "20000", "--seed", "4", "--defect", "outer")
        run(cli, "synth", "--out", other, "--duration", "2", "--rate", "20000", "--seed", "5", "--defect", "outer")
        c.check("synth is deterministic for a seed", np.array_equal(wavfile.read(again)[1], data))
        c.check("synth differs for another seed", not np.array_equal(wavfile.read(other)[1], data))


def main():
    c = Checks()
    cli = os.environ.get("VIBGATE_CLI", "")
    if not cli or not os.access(cli, os.X_OK):
        c.check("VIBGATE_CLI points to the vibgate binary", False, repr(cli))
        print(f"{c.passed} passed, {c.failed} failed")
        return 1
    with tempfile.TemporaryDirectory(prefix="vibgate_cli_test_") as tmp:
        fs = 25600
        wav = os.path.join(tmp, "healthy.wav")
        n_samples = 12 * fs
        wavfile.write(wav, fs, synth_signal(12.0, fs, 11))
        train_wav = os.path.join(tmp, "train.wav")
        wavfile.write(train_wav, fs, synth_signal(20.0, fs, 10))
        model = os.path.join(tmp, "healthy.vgm")
        rc, _, err = run(cli, "train", train_wav, "--out", model, "--seed", "1")
        ok = c.check("train the healthy model", rc == 0 and os.path.exists(model), f"exit {rc}, {err.strip()!r}")
        c.check("train prints one summary line on stderr", len(err.strip().split("\n")) == 1 and
                err.startswith("vibgate: trained"), repr(err[:200]))
        # `vibgate config check FILE` uses the daemon's parser: 0 valid, 2 with file:line: key.
        src = os.environ.get("VIBGATE_SOURCE_DIR")
        if src:
            rc, out, err = run(cli, "config", "check", os.path.join(src, "deploy", "vibgate.toml"))
            c.check("config check: the shipped example is valid", rc == 0 and ": ok (" in out,
                    f"exit {rc}, {err.strip()!r}")
        bad = os.path.join(tmp, "bad.toml")
        with open(bad, "w") as f:
            f.write('[daemon]\nstate_dir = "/var/lib/vibgate"\nlog_levle = "info"\n')
        rc, out, err = run(cli, "config", "check", bad)
        c.check("config check: a typo names file, line and key (exit 2)",
                rc == 2 and err.strip() == f"vibgate: {bad}:3: daemon.log_levle: unknown key",
                f"exit {rc}, {err.strip()!r}")
        if ok:
            error_checks(cli, c, tmp, model, wav)
            output_checks(cli, c, tmp, model, wav, n_samples)
    print(f"{c.passed} passed, {c.failed} failed")
    return 0 if c.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
