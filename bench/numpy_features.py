#!/usr/bin/python3
"""Speed baseline: the vibration features of docs/features.md computed the way a typical data
scientist would write them with numpy/scipy (scipy.stats moments, np.fft.rfft of the Hann-
windowed window, scipy.signal.hilbert on an FFT-masked band-pass, a Python loop over windows).

Signal: 60 s of synthetic 25.6 kHz vibration (shaft harmonics, outer-race impacts ringing a
resonance, noise); N = 4096, 50 % overlap, shaft speed and bearing defect multiples configured.
Before timing, the first window is checked against tests/reference/features_ref.py so the
baseline provably computes the same features.

Prints exactly one line: numpy_features_us_per_window=<float> (wall time per window over all
windows, after one warm-up window). Run with /usr/bin/python3 (Debian numpy/scipy).
"""

import math
import os
import sys
import time

import numpy as np
import scipy.signal
import scipy.stats

FS = 25600.0
SECONDS = 60.0
N = 4096
OVERLAP = 0.5
SHAFT_HZ = 29.95
MULT = {"bpfo": 3.5848, "bpfi": 5.4152, "bsf": 2.3567, "ftf": 0.39828}
N_BANDS = 16
ISO_LIMITS = (1.4, 2.8, 4.5)   # group 2, rigid


def make_signal(rng):
    n = int(FS * SECONDS)
    t = np.arange(n) / FS
    x = 0.05 * np.sin(2 * np.pi * SHAFT_HZ * t) + 0.02 * np.sin(4 * np.pi * SHAFT_HZ * t + 0.5)
    impacts = np.zeros(n)
    times = np.arange(0.0, SECONDS, 1.0 / (MULT["bpfo"] * SHAFT_HZ))
    impacts[np.minimum((times * FS).astype(int), n - 1)] = 5.0
    r, f_res = math.exp(-math.pi * 4000.0 / (30.0 * FS)), 4000.0
    ring = scipy.signal.lfilter([1 - r], [1, -2 * r * math.cos(2 * math.pi * f_res / FS), r * r],
                                impacts)
    return x + ring + rng.normal(0.0, 0.03, n)


def features(x, fs):
    """All features of one window, straightforward numpy/scipy."""
    n = len(x)
    out = {}
    c = x - x.mean()
    out["rms"] = rms = np.sqrt(np.mean(c ** 2))
    out["peak"] = peak = np.max(np.abs(c))
    out["peak_to_peak"] = np.ptp(x)
    out["crest_factor"] = peak / rms
    out["skewness"] = scipy.stats.skew(x)
    out["kurtosis"] = scipy.stats.kurtosis(x, fisher=False)

    w = scipy.signal.get_window("hann", n)          # periodic Hann (fftbins=True)
    spec = np.fft.rfft(c * w)                       # spectrum of the mean-removed window
    freqs = np.fft.rfftfreq(n, 1.0 / fs)
    mag = np.abs(spec)
    amp = 2 * mag / w.sum()
    psd_scale = 2.0 / (n * np.sum(w ** 2))

    band = (freqs >= 10.0) & (freqs <= 1000.0)
    vel = np.sum(mag[band] ** 2 * (9.80665 / (2 * np.pi * freqs[band])) ** 2)
    out["velocity_rms"] = v = 1000 * np.sqrt(psd_scale * vel)
    out["iso_zone"] = "ABCD"[np.searchsorted(ISO_LIMITS, v, side="right")]

    out["spectral_centroid"] = np.sum(freqs[1:] * mag[1:] ** 2) / np.sum(mag[1:] ** 2)
    f_lo = max(10.0, 4 * fs / n)
    k0 = int(np.ceil(f_lo / (fs / n)))
    k = k0 + np.argmax(mag[k0:])
    out["dominant_hz"], out["dominant_amplitude"] = freqs[k], amp[k]

    edges = np.geomspace(max(10.0, 16 * fs / n), fs / 2, N_BANDS + 1)   # lowest band >= 16 df
    edges[-1] = np.nextafter(fs / 2, np.inf)        # last band includes Nyquist
    idx = np.searchsorted(edges, freqs, side="right") - 1
    for i in range(N_BANDS):
        out[f"band_{i}"] = np.log10(psd_scale * np.sum(mag[idx == i] ** 2) + 1e-12)

    def peak_near(a, f):
        centre = int(np.floor(f / (fs / n) + 0.5))
        tol = max(1, int(np.floor(0.02 * f / (fs / n) + 0.5)))
        return a[max(1, centre - tol):min(n // 2, centre + tol) + 1].max()

    for h in (1, 2, 3):
        out[f"shaft_{h}x"] = peak_near(amp, h * SHAFT_HZ)

    X = np.fft.rfft(c)
    keep = (freqs >= fs / 12) & (freqs <= fs / 4)
    X[~keep] = 0
    env = np.abs(scipy.signal.hilbert(np.fft.irfft(X, n)))
    m = 64  # decimated envelope, docs/features.md
    while m < 2 * keep.sum() and m < n:
        m *= 2
    env_d = env[::n // m]
    w_m = scipy.signal.get_window("hann", m)
    env_amp = 2 * np.abs(np.fft.rfft((env_d - env_d.mean()) * w_m)) / w_m.sum()
    for name, m in MULT.items():
        for h in (1, 2, 3):
            out[f"env_{name}_{h}"] = peak_near(env_amp, h * m * SHAFT_HZ)
    return out


def check_against_reference(x):
    """The first window must match the independent reference (tests/reference)."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "tests", "reference"))
    import features_ref
    want = features_ref.window_features(
        x, FS, {"window": N, "shaft_hz": SHAFT_HZ, "bearing_multiples": MULT})
    got = features(x, FS)
    for key, value in want.items():
        if isinstance(value, str):
            assert got[key] == value, (key, got[key], value)
        else:
            assert abs(got[key] - value) <= 1e-9 * abs(value) + 1e-12, (key, got[key], value)


def main():
    x = make_signal(np.random.default_rng(7))
    hop = int(N * (1 - OVERLAP))
    starts = range(0, len(x) - N + 1, hop)
    check_against_reference(x[:N])
    features(x[:N], FS)                              # warm-up window
    t0 = time.perf_counter()
    for s in starts:
        features(x[s:s + N], FS)
    elapsed = time.perf_counter() - t0
    print(f"numpy_features_us_per_window={elapsed / len(starts) * 1e6:.1f}")


if __name__ == "__main__":
    main()
