"""Independent numpy/scipy reference for the vibration features of docs/features.md.

This module is written from the specification only (not from the C++ code) and is used by
tests/reference/test_features_vs_reference.py to check the C++ extractor, and by
bench/numpy_features.py as the speed baseline. It favours clarity over speed: every quantity
is computed in float64 directly from its definition in the spec.

Deliberate choices (the spec allows several readings, see the comments where they apply):
  * the Hann-windowed spectrum is computed as ``np.fft.rfft(x * w)`` with the periodic Hann
    window; the spec's frequency-domain identity is only used by the tests as a cross-check
    (``hann_spectrum_from_raw``);
  * the hop is ``floor(N * (1 - overlap))`` samples;
  * "round" (shaft/defect bin and tolerance) is round-half-away-from-zero, like C++ std::round;
  * the first and last band edges are exactly ``f_lo`` and ``f_hi`` (no pow() round-off);
  * a "flat" window (m2 <= 1e-20) also has spectral centroid 0;
  * a harmonic whose search range lies entirely above Nyquist scores 0.

Public API:
  window_features(x, fs, cfg) -> dict   (keys = CSV column names, in CSV order)
  recording_features(x, fs, cfg) -> list of (start_s, dict)
  feature_names(fs, cfg) -> list of str
  iso_zone(velocity_mm_s, group, mounting) -> 'A'..'D'
  bearing_multiples_from_geometry(n_balls, ball_d, pitch_d, contact_deg) -> dict
"""

import math

import numpy as np

G = 9.80665  # m/s^2 per g
FLAT_M2 = 1e-20
DEFECTS = ("bpfo", "bpfi", "bsf", "ftf")

# ISO 10816-3 / 20816-3 zone boundaries in mm/s RMS: (A/B, B/C, C/D).
ISO_LIMITS = {
    (1, "rigid"): (2.3, 4.5, 7.1),
    (1, "flexible"): (3.5, 7.1, 11.0),
    (2, "rigid"): (1.4, 2.8, 4.5),
    (2, "flexible"): (2.3, 4.5, 7.1),
}

DEFAULTS = {
    "window": 4096,
    "overlap": 0.5,
    "units": "g",
    "bands": 16,
    "band_edges": None,
    "vel_lo": 10.0,
    "vel_hi": 1000.0,
    "iso_group": 2,
    "mounting": "rigid",
    "shaft_hz": None,
    "bearing_multiples": None,
    "env_lo": None,
    "env_hi": None,
    "harmonics": 3,
}


# ---------------------------------------------------------------------------------------------
# Configuration helpers
# ---------------------------------------------------------------------------------------------

def full_config(cfg):
    """Return cfg completed with the spec defaults (unknown keys are rejected)."""
    cfg = dict(cfg or {})
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown configuration keys: {sorted(unknown)}")
    out = dict(DEFAULTS)
    out.update({k: v for k, v in cfg.items() if v is not None})
    n = int(out["window"])
    if n < 256 or n > 65536 or (n & (n - 1)) != 0:
        raise ValueError(f"window must be a power of two in 256..65536, got {n}")
    out["window"] = n
    if not 0.0 <= float(out["overlap"]) <= 0.9375:
        raise ValueError(f"overlap must be in 0..0.9375, got {out['overlap']}")
    if out["units"] not in ("g", "m/s2"):
        raise ValueError(f"units must be 'g' or 'm/s2', got {out['units']!r}")
    if (int(out["iso_group"]), out["mounting"]) not in ISO_LIMITS:
        raise ValueError(f"bad machine group / mounting: {out['iso_group']}, {out['mounting']}")
    if out["bearing_multiples"] is not None:
        if out["shaft_hz"] is None:
            raise ValueError("bearing multiples need a shaft speed")
        missing = set(DEFECTS) - set(out["bearing_multiples"])
        if missing:
            raise ValueError(f"bearing multiples lack {sorted(missing)}")
    return out


def hop_samples(cfg):
    """Hop in samples: N*(1-overlap) rounded down (at least 1)."""
    cfg = full_config(cfg)
    return max(1, int(math.floor(cfg["window"] * (1.0 - float(cfg["overlap"])))))


def round_half_away(v):
    """Round to nearest integer, halves away from zero (C++ std::round)."""
    return int(math.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)


def bearing_multiples_from_geometry(n_balls, ball_d, pitch_d, contact_deg):
    """Defect frequencies as multiples of shaft speed from bearing geometry (spec formulas)."""
    r = ball_d / pitch_d * math.cos(math.radians(contact_deg))
    return {
        "bpfo": n_balls / 2.0 * (1.0 - r),
        "bpfi": n_balls / 2.0 * (1.0 + r),
        "bsf": pitch_d / (2.0 * ball_d) * (1.0 - r * r),
        "ftf": 0.5 * (1.0 - r),
    }


def spectrum_f_lo(fs, n):
    """f_lo = max(10 Hz, 4 df): lowest band edge (default bands) and dominant-peak floor."""
    return max(10.0, 4.0 * fs / n)


def band_edges(fs, cfg):
    """The B+1 band edges in Hz (explicit ones from cfg, else log-spaced f_lo .. fs/2)."""
    cfg = full_config(cfg)
    if cfg["band_edges"] is not None:
        edges = [float(e) for e in cfg["band_edges"]]
        if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
            raise ValueError("band_edges must be at least two increasing frequencies")
        return np.array(edges)
    b = int(cfg["bands"])
    if b < 1:
        raise ValueError("bands must be >= 1")
    f_lo = max(10.0, 16.0 * fs / cfg["window"])  # bands: at least ~6 bins in the lowest one
    f_hi = fs / 2.0
    edges = [f_lo * (f_hi / f_lo) ** (i / b) for i in range(b + 1)]
    edges[0], edges[b] = f_lo, f_hi  # exact ends (ambiguity noted in the module docstring)
    return np.array(edges)


def band_bins(fs, cfg):
    """List of index arrays, one per band: bins with e_i <= f_k < e_{i+1} (last band: <=)."""
    cfg = full_config(cfg)
    n = cfg["window"]
    f = np.arange(n // 2 + 1) * (fs / n)
    edges = band_edges(fs, cfg)
    nb = len(edges) - 1
    bins = []
    tol = 1e-9 * (fs / n)  # an edge that falls on a bin (up to rounding) holds that bin
    for i in range(nb):
        if i == nb - 1:
            sel = (f >= edges[i] - tol) & (f <= edges[i + 1] + tol)
        else:
            sel = (f >= edges[i] - tol) & (f < edges[i + 1] - tol)
        idx = np.nonzero(sel)[0]
        if idx.size == 0:
            raise ValueError(f"band {i} [{edges[i]:.6g}, {edges[i + 1]:.6g}) Hz holds no FFT bin")
        bins.append(idx)
    return bins


def feature_names(fs, cfg):
    """Feature names in CSV column order (after file, channel, start_s)."""
    cfg = full_config(cfg)
    nb = len(band_edges(fs, cfg)) - 1
    names = ["rms", "peak", "peak_to_peak", "crest_factor", "skewness", "kurtosis",
             "velocity_rms", "iso_zone", "spectral_centroid", "dominant_hz", "dominant_amplitude"]
    names += [f"band_{i}" for i in range(nb)]
    if cfg["shaft_hz"] is not None:
        names += ["shaft_1x", "shaft_2x", "shaft_3x"]
    if cfg["bearing_multiples"] is not None:
        for d in DEFECTS:
            names += [f"env_{d}_{h}" for h in range(1, int(cfg["harmonics"]) + 1)]
    return names


def iso_zone(v, group=2, mounting="rigid"):
    """ISO 10816-3 zone letter for a velocity RMS in mm/s."""
    ab, bc, cd = ISO_LIMITS[(int(group), mounting)]
    if v < ab:
        return "A"
    if v < bc:
        return "B"
    if v < cd:
        return "C"
    return "D"


# ---------------------------------------------------------------------------------------------
# Spectral building blocks
# ---------------------------------------------------------------------------------------------

def periodic_hann(n):
    """w[n] = 0.5 - 0.5 cos(2 pi n / N), n = 0..N-1."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def hann_spectrum_from_raw(X):
    """The spec's frequency-domain Hann: Xw[k] = 0.5 X[k] - 0.25 X[k-1] - 0.25 X[k+1].

    Not used by window_features (which windows in the time domain); the tests use it to check
    the identity the C++ implementation relies on.
    """
    ext = np.concatenate(([np.conj(X[1])], X, [np.conj(X[-2])]))
    return 0.5 * ext[1:-1] - 0.25 * ext[:-2] - 0.25 * ext[2:]


def largest_in_tolerance(amp, center_hz, df):
    """Largest value of amp[k] for k in round(f/df) +- t, t = max(1, round(0.02 f/df)),
    clamped to 1..N/2 (amp has N/2+1 entries). 0 if the range is empty (above Nyquist)."""
    half = len(amp) - 1
    c = round_half_away(center_hz / df)
    t = max(1, round_half_away(0.02 * center_hz / df))
    lo, hi = max(1, c - t), min(half, c + t)
    if lo > hi:
        return 0.0
    return float(np.max(amp[lo:hi + 1]))


def envelope(x, fs, env_lo, env_hi):
    """|analytic band-pass signal|: Z[k] = 2 X[k] for env_lo <= f_k <= env_hi (k = 0..N/2),
    0 elsewhere, z = ifft(Z) (with 1/N)."""
    n = len(x)
    X = np.fft.rfft(x)
    f = np.arange(n // 2 + 1) * (fs / n)
    Z = np.zeros(n, dtype=complex)
    sel = (f >= env_lo) & (f <= env_hi)
    Z[:n // 2 + 1][sel] = 2.0 * X[sel]
    return np.abs(np.fft.ifft(Z))


# ---------------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------------

def window_features(x, fs, cfg):
    """All features of one window x (length N = cfg['window']) as an ordered dict."""
    cfg = full_config(cfg)
    n = cfg["window"]
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (n,):
        raise ValueError(f"window must hold {n} samples, got shape {x.shape}")
    fs = float(fs)
    df = fs / n
    f = np.arange(n // 2 + 1) * df
    sum_w = n / 2.0
    sum_w2 = 3.0 * n / 8.0
    out = {}

    # --- time domain (mean removed) ---
    c = x - x.mean()
    m2 = np.mean(c ** 2)
    m3 = np.mean(c ** 3)
    m4 = np.mean(c ** 4)
    flat = m2 <= FLAT_M2
    rms = math.sqrt(m2)
    peak = float(np.max(np.abs(c)))
    out["rms"] = rms
    out["peak"] = peak
    out["peak_to_peak"] = float(np.max(x) - np.min(x))
    out["crest_factor"] = 0.0 if flat else peak / rms
    out["skewness"] = 0.0 if flat else m3 / m2 ** 1.5
    out["kurtosis"] = 0.0 if flat else m4 / m2 ** 2

    # --- windowed spectrum of the mean-removed window ---
    Xw = np.fft.rfft(c * periodic_hann(n))
    mag = np.abs(Xw)
    pow_k = mag ** 2
    amp = 2.0 * mag / sum_w                       # A_k, peak amplitude
    power_scale = 2.0 / (n * sum_w2)              # P = power_scale * sum |Xw|^2

    # --- velocity RMS (mm/s) and ISO zone ---
    to_ms2 = G if cfg["units"] == "g" else 1.0
    vsel = (f >= cfg["vel_lo"]) & (f <= cfg["vel_hi"]) & (f > 0)
    vel_sum = np.sum(pow_k[vsel] * (to_ms2 / (2.0 * np.pi * f[vsel])) ** 2)
    velocity = 1000.0 * math.sqrt(power_scale * vel_sum)
    out["velocity_rms"] = velocity
    out["iso_zone"] = iso_zone(velocity, cfg["iso_group"], cfg["mounting"])

    # --- spectral centroid over k = 1..N/2 ---
    denom = np.sum(pow_k[1:])
    out["spectral_centroid"] = 0.0 if (flat or denom == 0.0) else \
        float(np.sum(f[1:] * pow_k[1:]) / denom)

    # --- dominant peak, k >= ceil(f_lo/df), first bin on ties ---
    k0 = int(math.ceil(spectrum_f_lo(fs, n) / df))
    k_dom = k0 + int(np.argmax(mag[k0:]))
    out["dominant_hz"] = float(f[k_dom])
    out["dominant_amplitude"] = float(amp[k_dom])

    # --- band log energies ---
    for i, idx in enumerate(band_bins(fs, cfg)):
        p = power_scale * np.sum(pow_k[idx])
        out[f"band_{i}"] = math.log10(p + 1e-12)

    # --- shaft harmonics ---
    fr = cfg["shaft_hz"]
    if fr is not None:
        for h in (1, 2, 3):
            out[f"shaft_{h}x"] = largest_in_tolerance(amp, h * fr, df)

    # --- envelope spectrum at bearing defect frequencies ---
    if cfg["bearing_multiples"] is not None:
        env_lo = cfg["env_lo"] if cfg["env_lo"] is not None else fs / 12.0
        env_hi = cfg["env_hi"] if cfg["env_hi"] is not None else fs / 4.0
        env = envelope(c, fs, env_lo, env_hi)
        # Decimated envelope: every D-th sample, D = N/M, M the smallest power of two >= 2B
        # (at least 64, at most N) for the B bins of the envelope band.
        band = np.nonzero((f >= env_lo - 1e-9 * df) & (f <= env_hi + 1e-9 * df) & (np.arange(f.size) >= 1)
                          & (np.arange(f.size) <= n // 2 - 1))[0]
        m = 64
        while m < 2 * band.size and m < n:
            m *= 2
        env_d = env[::n // m]
        e = env_d - env_d.mean()
        env_amp = 2.0 * np.abs(np.fft.rfft(e * periodic_hann(m))) / (m / 2.0)
        for d in DEFECTS:
            f_def = cfg["bearing_multiples"][d] * fr
            for h in range(1, int(cfg["harmonics"]) + 1):
                out[f"env_{d}_{h}"] = largest_in_tolerance(env_amp, h * f_def, df)

    return out


def recording_features(x, fs, cfg, max_windows=None):
    """Features of every full window of a 1-D recording: list of (start_s, dict).

    floor((L - N)/hop) + 1 windows; the tail that does not fill a window is not scored.
    """
    cfg = full_config(cfg)
    x = np.asarray(x, dtype=np.float64)
    n = cfg["window"]
    hop = hop_samples(cfg)
    count = 0 if len(x) < n else (len(x) - n) // hop + 1
    if max_windows is not None:
        count = min(count, max_windows)
    return [(i * hop / fs, window_features(x[i * hop:i * hop + n], fs, cfg))
            for i in range(count)]
