#!/usr/bin/python3
"""Vibration features: closed-form checks of the numpy reference, then C++ CLI vs reference.

Run as `/usr/bin/python3 test_features_vs_reference.py` (ctest does this with the environment
below). Prints one line per check and a final `N passed, M failed`; exits 1 if any check failed.

  a) closed-form checks of tests/reference/features_ref.py itself (no CLI needed);
  b) synthetic signals written as 32-bit float WAV files, scored by
     `$VIBGATE_CLI features FILE --format csv ...` and compared window by window with the
     reference (a missing VIBGATE_CLI is a failure, not a skip);
  c) the same comparison on real bearing recordings when $VIBGATE_DATA_DIR holds them.

Tolerances for (b)/(c): relative 1e-3 on every numeric feature, with an absolute floor of
1e-6 x signal scale (max |x|) for amplitudes, 1e-3 for the log10 band energies and 1e-4 for the
dimensionless shape features (skewness is ~0 for symmetric signals); dominant_hz and iso_zone
exact, except that a near-tie (dominant bin) or a velocity within 1e-3 of a zone boundary is
reported and accepted, since float32 round-off may legitimately pick the other side there.
velocity_rms must in addition agree within 1 % (product requirement).
"""

import csv
import io
import math
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
from scipy import signal
from scipy.io import wavfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import features_ref as ref  # noqa: E402


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import Checks as BaseChecks  # noqa: E402  (tests/checks.py)


class Checks(BaseChecks):
    """PASS/FAIL bookkeeping plus a tolerance check."""

    def close(self, name, got, want, rel=None, abs_tol=0.0):
        """Pass if |got - want| <= max(rel*|want|, abs_tol)."""
        tol = max((rel or 0.0) * abs(want), abs_tol)
        err = abs(got - want)
        return self.check(name, err <= tol, f"got {got:.10g}, want {want:.10g} (err {err:.3g}, tol {tol:.3g})")


# =============================================================================================
# a) closed-form checks of the reference
# =============================================================================================

def sine(fs, n, f, a, phase=0.0):
    t = np.arange(n) / fs
    return a * np.sin(2 * np.pi * f * t + phase)


def part_a(ck):
    print("== a) closed-form checks of the numpy reference ==")

    # Frequency-domain Hann identity of the spec equals rfft(x * periodic Hann).
    rng = np.random.default_rng(1)
    for n in (256, 4096):
        x = rng.normal(size=n) + 0.3
        direct = np.fft.rfft(x * ref.periodic_hann(n))
        trick = ref.hann_spectrum_from_raw(np.fft.rfft(x))
        err = np.max(np.abs(direct - trick)) / np.max(np.abs(direct))
        ck.check(f"hann identity Xw = 0.5X[k]-0.25X[k-1]-0.25X[k+1] (N={n})", err < 1e-12,
                 f"max rel err {err:.2e}")
        w = ref.periodic_hann(n)
        ck.check(f"periodic Hann sums (N={n})",
                 abs(w.sum() - n / 2) < 1e-9 * n and abs((w ** 2).sum() - 3 * n / 8) < 1e-9 * n)

    # Sine of amplitude A on a bin. The brief's 160 Hz is not on a bin at fs 25600 / N 4096
    # (df = 6.25 Hz), so fs = 20480 is used: df = 5 Hz, 160 Hz = bin 32, 128 samples/period.
    fs, n, f0, a = 20480.0, 4096, 160.0, 0.5
    cfg = {"window": n, "shaft_hz": f0}
    x = sine(fs, n, f0, a)
    r = ref.window_features(x, fs, cfg)
    ck.close("sine: rms = A/sqrt2", r["rms"], a / math.sqrt(2), rel=1e-6)
    ck.close("sine: peak = A", r["peak"], a, rel=1e-6)
    ck.close("sine: peak_to_peak = 2A", r["peak_to_peak"], 2 * a, rel=1e-6)
    ck.close("sine: crest = sqrt2", r["crest_factor"], math.sqrt(2), rel=1e-6)
    ck.close("sine: kurtosis = 1.5", r["kurtosis"], 1.5, rel=1e-9)
    ck.close("sine: skewness = 0", r["skewness"], 0.0, abs_tol=1e-9)
    ck.check("sine: dominant_hz = 160", r["dominant_hz"] == f0, f"got {r['dominant_hz']!r}")
    ck.close("sine: dominant_amplitude = A", r["dominant_amplitude"], a, rel=1e-6)
    v_want = 1000 * a * ref.G / (2 * math.pi * f0) / math.sqrt(2)
    ck.close("sine: velocity_rms = 1000 A g/(2 pi f)/sqrt2 mm/s (0.1 %)", r["velocity_rms"], v_want,
             rel=1e-3)
    ck.close("sine: spectral_centroid = 160 Hz", r["spectral_centroid"], f0, rel=1e-9)
    ck.close("sine: shaft_1x = A", r["shaft_1x"], a, rel=1e-6)
    ck.check("sine: shaft_2x, shaft_3x ~ 0", r["shaft_2x"] < 1e-9 and r["shaft_3x"] < 1e-9,
             f"{r['shaft_2x']:.3g}, {r['shaft_3x']:.3g}")
    bins = ref.band_bins(fs, cfg)
    k0 = int(round(f0 / (fs / n)))
    band = next(i for i, idx in enumerate(bins) if k0 in idx)
    if all(k in bins[band] for k in (k0 - 1, k0, k0 + 1)):
        ck.close(f"sine: band_{band} log energy = log10(A^2/2)", r[f"band_{band}"],
                 math.log10(a * a / 2 + 1e-12), abs_tol=1e-9)
    xm = x * ref.G
    rm = ref.window_features(xm, fs, dict(cfg, units="m/s2"))
    ck.close("sine in m/s2: velocity_rms identical to g input", rm["velocity_rms"],
             r["velocity_rms"], rel=1e-12)

    # White Gaussian noise, sigma 0.2, windows of 65536 samples.
    rng = np.random.default_rng(20240611)
    n = 65536
    rec = ref.recording_features(rng.normal(0.0, 0.2, size=2 * n), 25600.0,
                                 {"window": n, "overlap": 0.0})
    ck.check("noise: 2 windows of 65536", len(rec) == 2, f"got {len(rec)}")
    for i, (_, r) in enumerate(rec):
        ck.close(f"noise window {i}: rms = 0.2 (2 %)", r["rms"], 0.2, rel=0.02)
        ck.close(f"noise window {i}: kurtosis = 3 (+-0.1)", r["kurtosis"], 3.0, abs_tol=0.1)
        ck.close(f"noise window {i}: skewness = 0 (+-0.05)", r["skewness"], 0.0, abs_tol=0.05)

    # Impulse train: value h every P samples, 0 elsewhere; p = 1/P.
    #   m2 = h^2 p(1-p), m3 = h^3 p(1-p)(1-2p), kurtosis = 1/(p(1-p)) - 3,
    #   skewness = (1-2p)/sqrt(p(1-p)), peak = h(1-p), crest = sqrt(P-1).
    for period, offset in ((64, 0), (100, 17)):   # 100 does not divide 4096: p = count/N
        n, h = 4096, 0.7
        x = np.zeros(n)
        x[offset::period] = h
        p = np.count_nonzero(x) / n
        r = ref.window_features(x, 25600.0, {"window": n})
        tag = f"impulse train P={period}"
        ck.close(f"{tag}: kurtosis = 1/(p(1-p)) - 3", r["kurtosis"], 1 / (p * (1 - p)) - 3, rel=1e-9)
        ck.close(f"{tag}: skewness = (1-2p)/sqrt(p(1-p))", r["skewness"],
                 (1 - 2 * p) / math.sqrt(p * (1 - p)), rel=1e-9)
        ck.close(f"{tag}: rms = h sqrt(p(1-p))", r["rms"], h * math.sqrt(p * (1 - p)), rel=1e-9)
        ck.close(f"{tag}: crest = sqrt((1-p)/p)", r["crest_factor"], math.sqrt((1 - p) / p), rel=1e-9)

    # ISO 10816-3 zones: the classifier at the boundaries, then sines of known velocity.
    fs, n, f0 = 20480.0, 4096, 160.0
    unit_v = ref.window_features(sine(fs, n, f0, 1.0), fs, {"window": n})["velocity_rms"]
    for (group, mounting), (ab, bc, cd) in sorted(ref.ISO_LIMITS.items()):
        row = f"ISO group {group} {mounting}"
        got = [ref.iso_zone(v, group, mounting) for v in
               (0.0, ab * (1 - 1e-9), ab, bc * (1 - 1e-9), bc, cd * (1 - 1e-9), cd, 100.0)]
        ck.check(f"{row}: zone boundaries {ab}/{bc}/{cd} (v < limit -> lower zone)",
                 got == list("AABBCCDD"), f"got {''.join(got)}")
        zones = ""
        for v in (ab / 2, (ab + bc) / 2, (bc + cd) / 2, cd * 1.5):
            r = ref.window_features(sine(fs, n, f0, v / unit_v), fs,
                                    {"window": n, "iso_group": group, "mounting": mounting})
            zones += r["iso_zone"]
        ck.check(f"{row}: sines at mid-zone velocities give zones ABCD", zones == "ABCD",
                 f"got {zones}")

    # Envelope: AM carrier (1 + m cos 2 pi fm t) cos 2 pi fc t has envelope 1 + m cos, so the
    # envelope spectrum holds m at fm and nothing at 2 fm. fs/12 < fc +- fm < fs/4.
    fs, n, fc, fm, m = 25600.0, 4096, 4000.0, 100.0, 0.3
    t = np.arange(n) / fs
    x = (1 + m * np.cos(2 * np.pi * fm * t)) * np.cos(2 * np.pi * fc * t)
    mult = {"bpfo": 1.0, "bpfi": 1.5, "bsf": 0.5, "ftf": 0.25}
    r = ref.window_features(x, fs, {"window": n, "shaft_hz": fm, "bearing_multiples": mult})
    ck.close("AM signal: env_bpfo_1 = modulation depth m", r["env_bpfo_1"], m, rel=1e-9)
    ck.check("AM signal: env_bpfo_2, env_bpfo_3 ~ 0", max(r["env_bpfo_2"], r["env_bpfo_3"]) < 1e-9,
             f"{r['env_bpfo_2']:.3g}, {r['env_bpfo_3']:.3g}")

    # Bearing geometry: SKF 6205 (9 balls, d 0.3126 in, D 1.537 in, 0 deg) -> CWRU multiples.
    got = ref.bearing_multiples_from_geometry(9, 0.3126, 1.537, 0.0)
    want = {"bpfo": 3.5848, "bpfi": 5.4152, "bsf": 2.3567, "ftf": 0.39828}
    ck.check("bearing geometry: SKF 6205 gives 3.5848/5.4152/2.3567/0.39828",
             all(abs(got[k] - want[k]) < 2e-4 * want[k] for k in want),
             ", ".join(f"{k}={got[k]:.5f}" for k in ref.DEFECTS))

    # Shaft harmonics with a 2 % speed error still find the bin-centred harmonics.
    fs, n, fr = 25600.0, 4096, 25.0
    x = sine(fs, n, fr, 0.3) + sine(fs, n, 2 * fr, 0.1, 1.0) + sine(fs, n, 3 * fr, 0.05, 2.0)
    r = ref.window_features(x, fs, {"window": n, "shaft_hz": fr * 1.02})
    ok = all(abs(r[f"shaft_{h}x"] - amp) < 1e-6 * amp for h, amp in ((1, 0.3), (2, 0.1), (3, 0.05)))
    ck.check("shaft harmonics 0.3/0.1/0.05 found with 2 % speed error", ok,
             f"{r['shaft_1x']:.6g}, {r['shaft_2x']:.6g}, {r['shaft_3x']:.6g}")

    # Windowing: hop = floor(N(1-overlap)), floor((L-N)/hop)+1 windows, start_s = start/fs.
    rec = ref.recording_features(np.random.default_rng(3).normal(size=10000), 48000.0,
                                 {"window": 1024, "overlap": 0.3})
    ck.check("windowing: L=10000, N=1024, overlap 0.3 -> hop 716, 13 windows",
             len(rec) == 13 and rec[-1][0] == 12 * 716 / 48000.0,
             f"{len(rec)} windows, last start {rec[-1][0] if rec else None}")

    # Flat window.
    r = ref.window_features(np.full(1024, 0.25), 12000.0, {"window": 1024})
    ck.check("flat window: crest, skewness, kurtosis, centroid = 0; rms = 0",
             r["crest_factor"] == 0 and r["skewness"] == 0 and r["kurtosis"] == 0
             and r["spectral_centroid"] == 0 and r["rms"] == 0)


# =============================================================================================
# b) / c) comparison with the C++ CLI
# =============================================================================================

AMPLITUDE_KEYS = ("rms", "peak", "peak_to_peak", "dominant_amplitude",
                  "shaft_1x", "shaft_2x", "shaft_3x")
SHAPE_KEYS = ("crest_factor", "skewness", "kurtosis")
REL = 1e-3


def write_wav_float32(path, data, fs):
    """Write samples (frames x channels, or 1-D) as a WAVE_FORMAT_IEEE_FLOAT (3) 32-bit file."""
    data = np.asarray(data, dtype="<f4")
    if data.ndim == 1:
        data = data[:, None]
    frames, channels = data.shape
    payload = np.ascontiguousarray(data).tobytes()
    fmt = struct.pack("<HHIIHH", 3, channels, int(fs), int(fs) * channels * 4, channels * 4, 32)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + b"data" + struct.pack("<I", len(payload)) + payload)
    with open(path, "wb") as fh:
        fh.write(b"RIFF" + struct.pack("<I", len(body)) + body)


def cli_args(cfg, explicit):
    """CLI options for the cfg keys listed in `explicit` (others left at the CLI default)."""
    args = []
    if "window" in explicit:
        args += ["--window", str(cfg["window"])]
    if "overlap" in explicit:
        args += ["--overlap", repr(float(cfg["overlap"]))]
    if "units" in explicit:
        args += ["--units", cfg["units"]]
    if "bands" in explicit:
        args += ["--bands", str(cfg["bands"])]
    if "iso_group" in explicit:
        args += ["--machine-group", str(cfg["iso_group"])]
    if "mounting" in explicit:
        args += ["--mounting", cfg["mounting"]]
    if cfg.get("shaft_hz") is not None:
        args += ["--shaft-hz", repr(float(cfg["shaft_hz"]))]
    if cfg.get("bearing_multiples") is not None:
        args += ["--bearing-multiples",
                 ",".join(repr(float(cfg["bearing_multiples"][d])) for d in ref.DEFECTS)]
    if cfg.get("env_lo") is not None:
        args += ["--env-band", f"{float(cfg['env_lo'])!r},{float(cfg['env_hi'])!r}"]
    return args


def run_cli(cli, path, args):
    """Run the CLI; return (header, rows as dicts) or raise RuntimeError."""
    cmd = [cli, "features", path, "--format", "csv"] + args
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()[:500]}")
    reader = csv.reader(io.StringIO(proc.stdout))
    lines = [row for row in reader if row]
    if not lines:
        raise RuntimeError(f"{' '.join(cmd)} printed no CSV (stderr: {proc.stderr.strip()[:300]})")
    header = [h.strip() for h in lines[0]]
    rows = []
    for i, row in enumerate(lines[1:]):
        if len(row) != len(header):
            raise RuntimeError(f"CSV row {i} has {len(row)} fields, header has {len(header)}")
        rows.append(dict(zip(header, (v.strip() for v in row))))
    return header, rows


def amplitude_at(xwin, fs, hz):
    """Reference A_k (2|Xw[k]|/sum w) at the bin of frequency hz."""
    n = len(xwin)
    k = int(round(hz / (fs / n)))
    xw = np.fft.rfft(np.asarray(xwin, dtype=np.float64) * ref.periodic_hann(n))
    return 2.0 * abs(xw[k]) / (n / 2.0)


def compare(ck, tag, cli, path, x, fs, cfg, explicit=(), channel=0, extra=(), max_windows=None):
    """Run the CLI on `path` (its channel `channel` holds x) and compare with the reference.

    `explicit` lists the cfg keys passed as CLI options (the others are left at the CLI's
    defaults, which must then match the spec's), `extra` holds raw options such as --channel.
    """
    cfg_full = ref.full_config(cfg)
    try:
        header, rows = run_cli(cli, path, list(extra) + cli_args(cfg_full, explicit))
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        ck.check(f"[{tag}] CLI run", False, str(exc))
        return
    names = ref.feature_names(fs, cfg_full)
    want_header = ["file", "channel", "start_s"] + names
    ck.check(f"[{tag}] CSV header", header == want_header,
             "" if header == want_header else f"got {header}, want {want_header}")
    missing = [c for c in want_header if c not in header]
    if missing:
        ck.check(f"[{tag}] CSV has all feature columns", False, f"missing {missing}")
        return

    rows = [r for r in rows if r["channel"] == str(channel)]
    expected = ref.recording_features(x, fs, cfg_full, max_windows=max_windows)
    hop = ref.hop_samples(cfg_full)
    n_windows = 0 if len(x) < cfg_full["window"] else (len(x) - cfg_full["window"]) // hop + 1
    ck.check(f"[{tag}] window count on channel {channel}", len(rows) == n_windows,
             f"CLI {len(rows)}, reference {n_windows} (hop {hop})")
    k = min(len(rows), len(expected))
    if k == 0:
        ck.check(f"[{tag}] windows to compare", False, "none")
        return
    rows, expected = rows[:k], expected[:k]
    base = os.path.basename(path)
    ck.check(f"[{tag}] file column names the input",
             all(os.path.basename(r["file"]) == base for r in rows))

    scale = float(np.max(np.abs(x))) or 1.0
    n = cfg_full["window"]
    to_ms2 = ref.G if cfg_full["units"] == "g" else 1.0
    vel_floor = 1e-6 * scale * 1000.0 * to_ms2 / (2 * math.pi * cfg_full["vel_lo"])

    def num(s):
        try:
            return float(s)
        except ValueError:
            return float("nan")

    # start_s
    errs = [abs(num(r["start_s"]) - s) for r, (s, _) in zip(rows, expected)]
    ck.check(f"[{tag}] start_s", max(errs) <= 1e-7 * (expected[-1][0] + 1.0),
             f"max err {max(errs):.3g}")

    limits = ref.ISO_LIMITS[(int(cfg_full["iso_group"]), cfg_full["mounting"])]
    for name in names:
        if name == "iso_zone":
            bad, notes = [], []
            for i, (r, (_, e)) in enumerate(zip(rows, expected)):
                if r[name] == e[name]:
                    continue
                v = e["velocity_rms"]
                if any(abs(v - b) <= REL * b for b in limits):
                    notes.append(f"w{i} {r[name]}/{e[name]} at boundary v={v:.6g}")
                else:
                    bad.append(f"w{i}: CLI {r[name]!r}, ref {e[name]!r} (v={v:.6g})")
            ck.check(f"[{tag}] iso_zone exact", not bad,
                     "; ".join(bad[:5]) or ("accepted near boundary: " + "; ".join(notes[:3])
                                           if notes else f"{k} windows"))
            continue
        if name == "dominant_hz":
            bad, notes = [], []
            for i, (r, (s, e)) in enumerate(zip(rows, expected)):
                got = num(r[name])
                if got == e[name]:
                    continue
                start = int(round(s * fs))
                xwin = x[start:start + n]
                a_ref = e["dominant_amplitude"]
                if 0 <= got <= fs / 2 and abs(amplitude_at(xwin, fs, got) - a_ref) <= 1e-4 * a_ref:
                    notes.append(f"w{i} near-tie {got:g}/{e[name]:g} Hz")
                else:
                    bad.append(f"w{i}: CLI {got:.9g}, ref {e[name]:.9g}")
            ck.check(f"[{tag}] dominant_hz exact", not bad,
                     "; ".join(bad[:5]) or ("accepted near-ties: " + "; ".join(notes[:3])
                                           if notes else f"{k} windows"))
            continue
        if name.startswith("band_"):
            rel, floor = REL, 1e-3
        elif name in AMPLITUDE_KEYS or name.startswith("env_"):
            rel, floor = REL, 1e-6 * scale
        elif name in SHAPE_KEYS:
            rel, floor = REL, 1e-4
        elif name == "velocity_rms":
            rel, floor = REL, vel_floor
        elif name == "spectral_centroid":
            rel, floor = REL, 1e-6 * fs / 2
        else:
            raise AssertionError(f"no tolerance for {name}")
        worst, bad = 0.0, []
        for i, (r, (_, e)) in enumerate(zip(rows, expected)):
            got, want = num(r[name]), e[name]
            tol = max(rel * abs(want), floor)
            err = abs(got - want)
            if not err <= tol:   # also catches NaN
                bad.append(f"w{i}: CLI {got:.9g}, ref {want:.9g}")
            elif tol > 0:
                worst = max(worst, err / tol)
        ck.check(f"[{tag}] {name}", not bad,
                 "; ".join(bad[:4]) + (f" (+{len(bad) - 4} more)" if len(bad) > 4 else "")
                 if bad else f"{k} windows, worst err {worst:.2g} x tolerance")

    # Product requirement: velocity RMS within 1 %.
    worst = max(abs(num(r["velocity_rms"]) - e["velocity_rms"]) / max(e["velocity_rms"], 1e-12)
                for r, (_, e) in zip(rows, expected))
    ck.check(f"[{tag}] velocity_rms within 1 % (product requirement)", worst <= 0.01,
             f"worst rel err {worst:.3g}")


def resonance_impacts(fs, seconds, rate_hz, f_res, q, rng, jitter=0.01, amp=1.0, modulate_hz=None):
    """Periodic impacts (with slight timing jitter) ringing a 2-pole resonance, plus noise."""
    n = int(round(fs * seconds))
    x = np.zeros(n)
    t_imp = np.arange(0.0, seconds, 1.0 / rate_hz)
    t_imp = t_imp + rng.normal(0.0, jitter / rate_hz, size=t_imp.size)
    idx = np.clip(np.round(t_imp * fs).astype(int), 0, n - 1)
    heights = amp * np.ones(idx.size)
    if modulate_hz is not None:   # inner-race defect: load zone modulation at shaft speed
        heights *= 0.6 + 0.4 * np.cos(2 * np.pi * modulate_hz * t_imp)
    np.add.at(x, idx, heights)
    r = math.exp(-math.pi * f_res / (q * fs))
    theta = 2 * math.pi * f_res / fs
    return signal.lfilter([1.0 - r], [1.0, -2 * r * math.cos(theta), r * r], x)


def synthetic_cases():
    """(tag, fs, samples (frames[, channels]), channel, cfg, explicit CLI keys)."""
    rng = np.random.default_rng(12345)
    cases = []

    # 1: sine + harmonics + noise, fs 25600, all CLI defaults except the shaft speed.
    fs, secs, fr = 25600.0, 3.0, 29.95
    t = np.arange(int(fs * secs)) / fs
    x = (0.05 * np.sin(2 * np.pi * fr * t) + 0.02 * np.sin(2 * np.pi * 2 * fr * t + 0.4)
         + 0.01 * np.sin(2 * np.pi * 3 * fr * t + 1.1) + 0.15 * np.sin(2 * np.pi * 1230.0 * t)
         + rng.normal(0.0, 0.03, t.size))
    cases.append(("sine+harmonics 25.6k defaults", fs, x, 0, {"shaft_hz": fr}, ()))

    # 2: outer-race impacts through a 2.6 kHz resonance, fs 12000, N 1024, 75 % overlap.
    fs, secs, fr = 12000.0, 4.0, 29.95
    mult = {"bpfo": 3.5848, "bpfi": 5.4152, "bsf": 2.3567, "ftf": 0.39828}
    x = resonance_impacts(fs, secs, mult["bpfo"] * fr, 2600.0, 30.0, rng, amp=8.0)
    t = np.arange(x.size) / fs
    x = x + 0.04 * np.sin(2 * np.pi * fr * t) + rng.normal(0.0, 0.02, x.size)
    cfg = {"window": 1024, "overlap": 0.75, "bands": 10, "iso_group": 1, "mounting": "flexible",
           "shaft_hz": fr, "bearing_multiples": mult}
    cases.append(("outer-race impacts 12k N1024", fs, x, 0, cfg,
                  ("window", "overlap", "bands", "iso_group", "mounting")))

    # 3: inner-race impacts, modulated at shaft speed, in m/s2, fs 20480, explicit env band.
    fs, secs, fr = 20480.0, 5.0, 33.333
    mult = ref.bearing_multiples_from_geometry(16, 0.331, 2.815, 15.17)  # Rexnord ZA-2115
    x = resonance_impacts(fs, secs, mult["bpfi"] * fr, 4200.0, 25.0, rng, amp=40.0,
                          modulate_hz=fr)
    t = np.arange(x.size) / fs
    x = x + 0.8 * np.sin(2 * np.pi * fr * t) + 0.3 * np.sin(2 * np.pi * 2 * fr * t) \
        + rng.normal(0.0, 0.2, x.size)
    cfg = {"window": 4096, "overlap": 0.5, "units": "m/s2", "bands": 16, "iso_group": 2,
           "mounting": "flexible", "shaft_hz": fr, "bearing_multiples": mult,
           "env_lo": 2500.0, "env_hi": 6000.0}
    cases.append(("inner-race impacts 20.48k m/s2", fs, x, 0, cfg,
                  ("window", "overlap", "units", "bands", "iso_group", "mounting")))

    # 4: fs 48000, N 1024, overlap 0.3 (hop 716.8 -> 716), 8 bands, a silent (flat) start.
    fs, secs = 48000.0, 1.0
    t = np.arange(int(fs * secs)) / fs
    x = (0.2 * np.sin(2 * np.pi * 59.7 * t) + 0.1 * np.sin(2 * np.pi * 3 * 59.7 * t + 0.3)
         + 0.05 * np.sin(2 * np.pi * 7300.0 * t) + rng.normal(0.0, 0.05, t.size))
    x[:4800] = 0.0
    cfg = {"window": 1024, "overlap": 0.3, "bands": 8, "iso_group": 1, "mounting": "rigid"}
    cases.append(("sine+noise 48k N1024 overlap 0.3", fs, x, 0, cfg,
                  ("window", "overlap", "bands", "iso_group", "mounting")))

    # 5: two channels, channel 1 selected, fs 25600, N 4096, rigid group 2.
    fs, secs, fr = 25600.0, 2.0, 24.7
    n = int(fs * secs)
    t = np.arange(n) / fs
    ch0 = rng.normal(0.0, 0.5, n)
    mult = {"bpfo": 3.05, "bpfi": 4.95, "bsf": 1.99, "ftf": 0.38}
    ch1 = resonance_impacts(fs, secs, mult["bsf"] * 2 * fr, 5000.0, 40.0, rng, amp=10.0) \
        + 0.1 * np.sin(2 * np.pi * fr * t) + rng.normal(0.0, 0.02, n)
    cfg = {"window": 4096, "overlap": 0.5, "shaft_hz": fr, "bearing_multiples": mult,
           "iso_group": 2, "mounting": "rigid"}
    cases.append(("two channels, channel 1, 25.6k", fs, np.stack([ch0, ch1], axis=1), 1, cfg,
                  ("window", "overlap", "iso_group", "mounting")))
    return cases


def part_b(ck, cli):
    print("== b) C++ CLI vs reference on synthetic signals ==")
    with tempfile.TemporaryDirectory(prefix="vibgate_features_") as tmp:
        for i, (tag, fs, data, channel, cfg, explicit) in enumerate(synthetic_cases()):
            path = os.path.join(tmp, f"case{i}.wav")
            write_wav_float32(path, data, fs)
            rfs, back = wavfile.read(path)   # compare on exactly the float32 samples written
            x = back if back.ndim == 1 else back[:, channel]
            x = x.astype(np.float64)
            ck.check(f"[{tag}] WAV round trip", rfs == int(fs) and back.dtype == np.float32)
            extra = ["--channel", str(channel)] if data.ndim == 2 else []
            compare(ck, tag, cli, path, x, fs, cfg, explicit, channel, extra)


def part_c(ck, cli):
    print("== c) C++ CLI vs reference on real bearing recordings ==")
    data_dir = os.environ.get("VIBGATE_DATA_DIR", "")
    cwru = os.path.join(data_dir, "cwru48k_normal_0hp_train.wav")
    ims = os.path.join(data_dir, "ims1_2003-10-22-12-06-24.wav")
    if not data_dir or not os.path.isdir(data_dir):
        print(f"SKIP real-data checks: VIBGATE_DATA_DIR={data_dir!r} is not an existing folder")
        return
    if os.path.isfile(cwru):
        fs, x = wavfile.read(cwru)
        cfg = {"shaft_hz": 29.933,
               "bearing_multiples": {"bpfo": 3.5848, "bpfi": 5.4152, "bsf": 2.3567,
                                     "ftf": 0.39828}}
        compare(ck, "CWRU 48k normal (first 20 windows)", cli, cwru, x.astype(np.float64),
                float(fs), cfg, max_windows=20)
    else:
        print(f"SKIP CWRU check: {cwru} is absent")
    if os.path.isfile(ims):
        fs, data = wavfile.read(ims)
        x = data[:, 0] if data.ndim == 2 else data
        compare(ck, "IMS 1st test channel 0", cli, ims, x.astype(np.float64), float(fs), {},
                channel=0, extra=["--channel", "0"])
    else:
        print(f"SKIP IMS check: {ims} is absent")


def main():
    ck = Checks()
    part_a(ck)
    cli = os.environ.get("VIBGATE_CLI", "")
    if not cli or not (os.path.isfile(cli) and os.access(cli, os.X_OK)):
        ck.check("VIBGATE_CLI points at the vibgate executable", False,
                 f"VIBGATE_CLI={cli!r} is unset or not an executable file; "
                 "the CLI comparisons (b) and (c) cannot run")
    else:
        part_b(ck, cli)
        part_c(ck, cli)
    print(f"{ck.passed} passed, {ck.failed} failed")
    return 0 if ck.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
