#!/usr/bin/python3
"""The reference central-training path end to end (docs/model.md "Training centrally"):

  healthy recording -> `vibgate features --model-input --format csv` -> deploy/tools/
  train_autoencoder.py (PyTorch) -> ONNX checked with onnx.checker, its contract (opset 13, float32,
  X -> Sub -> Div -> Gemm ..., metadata) and a numpy forward pass equal to torch's output ->
  `vibgate model import FILE.onnx --out M.vgm --calibration healthy` -> `vibgate score` / `eval`:
  held-out healthy windows below 1.0, faulty windows above.

Data: the CWRU 48 kHz recordings of VIBGATE_DATA_DIR when present (trained on the first 75 % of
the healthy recording, scored on its last 25 % and the three 48 kHz faults), else (or with
--synthetic) the synthetic machine from `vibgate synth`. Two trainings: ReLU dense, and tanh
pruned 50 % (every layer's zeros counted in the ONNX file; run twice: byte-identical for a seed).
Also: the script's errors (raw-feature CSV: exit 1 naming the file; torch missing: exit 2, one
line) and its determinism.

Skips (prints SKIP and '0 passed, 0 failed', exit 0) when python3-torch or python3-onnx is absent.
Prints one line per check and ends with 'N passed, M failed'.
"""
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

CLI = os.environ.get("VIBGATE_CLI", "")
DATA = os.environ.get("VIBGATE_DATA_DIR", "")
SOURCE = os.environ.get("VIBGATE_SOURCE_DIR") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(SOURCE, "deploy", "tools", "train_autoencoder.py")
passed = failed = 0


def check(name, ok, detail):
    global passed, failed
    print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)
    if ok:
        passed += 1
    else:
        failed += 1


def run(cmd, timeout=300, env=None):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def vibgate(*args):
    r = run([CLI, *args])
    if r.returncode != 0:
        raise RuntimeError(f"vibgate {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def train_script(*args, env=None):
    return run(["/usr/bin/python3", SCRIPT, *args], env=env)


def onnx_forward(model, x):
    """The ONNX graph evaluated with numpy (float64), for the subset the script writes."""
    from onnx import helper, numpy_helper
    vals = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in model.graph.initializer}
    vals[model.graph.input[0].name] = x.astype(np.float64)
    for n in model.graph.node:
        a = [vals[i] for i in n.input]
        at = {t.name: helper.get_attribute_value(t) for t in n.attribute}
        if n.op_type == "Sub":
            r = a[0] - a[1]
        elif n.op_type == "Div":
            r = a[0] / a[1]
        elif n.op_type == "Gemm":
            A = a[0].T if at.get("transA", 0) else a[0]
            B = a[1].T if at.get("transB", 0) else a[1]
            r = at.get("alpha", 1.0) * (A @ B) + at.get("beta", 1.0) * a[2]
        elif n.op_type == "Relu":
            r = np.maximum(a[0], 0)
        elif n.op_type == "Tanh":
            r = np.tanh(a[0])
        elif n.op_type == "Sigmoid":
            r = 1 / (1 + np.exp(-a[0]))
        else:
            raise ValueError(f"unexpected operator {n.op_type} in node {n.name}")
        vals[n.output[0]] = r
    return vals[model.graph.output[0].name]


def read_csv_rows(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    return rows[0], np.array([[float(v) for v in r[3:]] for r in rows[1:]], dtype=np.float32)


def scores(model, files, extra=()):
    text = vibgate("score", "--model", model, "--format", "csv", *extra, *files).stdout
    return np.array([float(r["score"]) for r in csv.DictReader(io.StringIO(text))])


def dataset(tmp, force_synthetic):
    """(label, training file, held-out healthy files, fault files, feature options)."""
    normal = os.path.join(DATA, "cwru48k_normal_0hp_train.wav") if DATA else ""
    if not force_synthetic and normal and os.path.exists(normal):
        with open(os.path.join(DATA, "index.csv")) as f:
            row = {r["file"]: r for r in csv.DictReader(f)}["cwru48k_normal_0hp_train.wav"]
        split = 0.75 * int(row["n_samples"]) / float(row["fs_hz"])
        opts = ["--shaft-hz", f"{float(row['rpm']) / 60:.6f}", "--bearing-multiples",
                ",".join(row[k] for k in ("bpfo_x", "bpfi_x", "bsf_x", "ftf_x"))]
        faults = [os.path.join(DATA, f) for f in
                  ("cwru48k_B007_0hp_122.wav", "cwru48k_IR007_0hp_109.wav", "cwru48k_OR007at6_0hp_135.wav")]
        return "CWRU 48 kHz", f"{normal}@:{split}", [f"{normal}@{split}:"], faults, opts
    print(f"INFO bearing data {DATA!r} absent (or --synthetic): synthetic machine", flush=True)
    healthy, held_out, fault = (os.path.join(tmp, n) for n in ("healthy.wav", "held_out.wav", "fault.wav"))
    vibgate("synth", "--out", healthy, "--duration", "20", "--seed", "1")
    vibgate("synth", "--out", held_out, "--duration", "5", "--seed", "2")
    vibgate("synth", "--out", fault, "--duration", "5", "--seed", "3", "--defect", "outer", "--fault-peak", "0.3")
    opts = ["--shaft-hz", "29.95", "--bearing-multiples", "3.5848,5.4152,2.3567,0.39828"]
    return "synthetic machine", healthy, [held_out], [fault], opts


def check_onnx(label, path, names, x, torch_y, prune=0.0):
    import onnx
    from onnx import TensorProto, numpy_helper
    m = onnx.load(path)
    try:
        onnx.checker.check_model(m)
        check(f"{label}: onnx.checker", True, f"{os.path.getsize(path)} bytes")
    except onnx.checker.ValidationError as e:
        check(f"{label}: onnx.checker", False, str(e).splitlines()[0])
    ops = [n.op_type for n in m.graph.node]
    opset = {o.domain: o.version for o in m.opset_import}.get("", 0)
    types = [v.type.tensor_type.elem_type for v in list(m.graph.input) + list(m.graph.output)]
    check(f"{label}: contract", opset == 13 and ops[:3] == ["Sub", "Div", "Gemm"] and ops[-1] == "Gemm"
          and all(t == TensorProto.FLOAT for t in types), f"opset {opset}, operators {' '.join(ops)}")
    meta = {p.key: p.value for p in m.metadata_props}
    check(f"{label}: metadata input names = CSV columns", meta.get("vibgate.input_names", "").split(",") == names,
          f"{len(names)} names, first {names[0]}, last {names[-1]}")
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    mean_ok = np.array_equal(np.array([float(v) for v in meta["vibgate.mean"].split(",")], np.float32), inits["mean"])
    std_ok = np.array_equal(np.array([float(v) for v in meta["vibgate.std"].split(",")], np.float32), inits["std"])
    check(f"{label}: metadata mean/std = the Sub/Div initializers", mean_ok and std_ok and inits["std"].min() >= 0.02 - 1e-7,
          f"std min {inits['std'].min():.4g} (floor 0.02)")
    y = onnx_forward(m, x)
    err = float(np.max(np.abs(y - torch_y) / (1 + np.abs(torch_y))))
    check(f"{label}: numpy forward pass of the ONNX graph = torch's output", err < 1e-5,
          f"max relative difference {err:.2e} over {x.shape[0]} x {x.shape[1]} values")
    if prune > 0:
        ws = [inits[k] for k in sorted(inits) if k.startswith("W")]
        counts = [(int(np.sum(w == 0)), round(prune * w.size)) for w in ws]
        check(f"{label}: every layer has exactly {prune:g} of its weights zero", all(a == b for a, b in counts),
              ", ".join(f"{a}/{b}" for a, b in counts))


def main():
    force_synthetic = "--synthetic" in sys.argv[1:]
    if not CLI or not os.path.exists(CLI):
        print(f"FAIL VIBGATE_CLI is not set to the vibgate binary ({CLI!r})")
        print("0 passed, 1 failed")
        return 1
    for module, package in (("torch", "python3-torch"), ("onnx", "python3-onnx")):
        try:
            __import__(module)
        except ImportError:
            print(f"SKIP {package} is not installed: the reference training script cannot run "
                  f"(apt-get install {package})")
            print("0 passed, 0 failed")
            return 0
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vibgate-reftrain-") as tmp:
        label, train_file, held_out, faults, opts = dataset(tmp, force_synthetic)
        feats = os.path.join(tmp, "features.csv")
        r = vibgate("features", train_file, "--model-input", "--format", "csv", "--overlap", "0.75", *opts)
        with open(feats, "w") as f:
            f.write(r.stdout)
        header, x = read_csv_rows(feats)
        names = header[3:]
        check(f"{label}: features --model-input CSV", header[:4] == ["file", "channel", "start_s", "lg_rms"]
              and len(names) == 38 and x.shape[0] >= 50 and np.all(np.isfinite(x)),
              f"{x.shape[0]} windows x {len(names)} model inputs")

        # Script errors: the raw features are refused (exit 1, naming the file); torch missing: exit 2.
        raw = os.path.join(tmp, "raw.csv")
        with open(raw, "w") as f:
            f.write(vibgate("features", train_file, "--format", "csv", *opts).stdout)
        e = train_script(raw, "--out", os.path.join(tmp, "raw.onnx"))
        check("script refuses the raw-feature CSV", e.returncode == 1 and raw in e.stderr
              and "--model-input" in e.stderr and len(e.stderr.strip().splitlines()) == 1, e.stderr.strip())
        fake = os.path.join(tmp, "notorch", "torch")
        os.makedirs(fake)
        with open(os.path.join(fake, "__init__.py"), "w") as f:
            f.write("raise ImportError('simulated: no torch here')\n")
        e = train_script(feats, "--out", os.path.join(tmp, "x.onnx"),
                         env={**os.environ, "PYTHONPATH": os.path.dirname(fake)})
        check("script without torch: exit 2, one line", e.returncode == 2 and "python3-torch is not installed"
              in e.stderr and len(e.stderr.strip().splitlines()) == 1, f"exit {e.returncode}: {e.stderr.strip()}")

        runs = [("relu dense", ["--epochs", "200", "--seed", "1"], 0.0),
                ("tanh pruned 50 %", ["--epochs", "150", "--seed", "2", "--activation", "tanh", "--prune", "0.5"], 0.5)]
        for name, args, prune in runs:
            onnx_path, y_path = os.path.join(tmp, f"m{prune}.onnx"), os.path.join(tmp, f"y{prune}.npy")
            t0 = time.monotonic()
            t = train_script(feats, "--out", onnx_path, "--torch-output", y_path, *args)
            check(f"{name}: training script", t.returncode == 0,
                  f"{time.monotonic() - t0:.1f} s: {t.stderr.strip()}")
            if t.returncode != 0:
                continue
            check_onnx(name, onnx_path, names, x, np.load(y_path), prune)
            if prune > 0:  # deterministic for a seed: a second run writes the same bytes
                again = os.path.join(tmp, "again.onnx")
                train_script(feats, "--out", again, *args)
                with open(onnx_path, "rb") as a, open(again, "rb") as b:
                    check(f"{name}: deterministic for a seed", a.read() == b.read(), "two runs, same ONNX bytes")

            vgm = os.path.join(tmp, f"m{prune}.vgm")
            imp = run([CLI, "model", "import", onnx_path, "--out", vgm, "--calibration", train_file, *opts])
            check(f"{name}: vibgate model import", imp.returncode == 0,
                  (imp.stderr.strip() or imp.stdout.strip()).replace("\n", " | "))
            if imp.returncode != 0:
                continue
            healthy = np.concatenate([scores(vgm, [h]) for h in held_out])
            check(f"{name}: held-out healthy windows below 1.0", healthy.max() < 1.0,
                  f"{healthy.size} windows, max score {healthy.max():.3f}")
            for fault in faults:
                s = scores(vgm, [fault])
                check(f"{name}: {os.path.basename(fault)} above 1.0", s.min() > 1.0,
                      f"{s.size} windows, min score {s.min():.2f}, median {np.median(s):.1f}")
            ev = json.loads(vibgate("eval", "--model", vgm, "--normal", *held_out, "--fault", *faults,
                                    "--format", "json").stdout)
            agree = ev["int8_vs_float"]
            check(f"{name}: vibgate eval", ev["auc"] == 1.0 and ev["false_alarm_rate"] == 0.0
                  and agree["pearson"] >= 0.999 and agree["same_verdict"] >= 0.995,
                  f"AUC {ev['auc']:.3f}, false alarms {ev['false_alarm_rate']:.3f}, int8 vs float "
                  f"r = {agree['pearson']:.6f}, same verdict {agree['same_verdict'] * 100:.2f} %")
    print(f"INFO total {time.monotonic() - t_start:.1f} s")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
