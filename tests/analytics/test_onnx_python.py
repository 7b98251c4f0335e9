#!/usr/bin/python3
"""ONNX import/export through the `vibgate` CLI, checked with Debian's python3-onnx and numpy.

Run as `/usr/bin/python3 test_onnx_python.py` with VIBGATE_CLI set to the vibgate binary (ctest
does this). Everything is generated into a temporary directory. Prints one line per check and a
final `N passed, M failed`; exits 1 if any check failed.

  a) two autoencoders built here with onnx.helper — Gemm(transB=1)+Tanh layers without a
     normalization prefix (standardized from the calibration rows), and MatMul+Add layers with
     Sigmoid and Relu behind a Sub/Mul prefix — pass onnx.checker, are imported offline
     (`vibgate model import FILE.onnx --out M.vgm --calibration healthy.wav`) and score a healthy
     and a faulty synthetic recording: `vibgate score --float` vs int8 within the analytics
     accuracy bounds (docs/accuracy.md: Pearson >= 0.999, same verdict on >= 99.5 %);
  b) a model trained by `vibgate train` and exported (`vibgate model export --model --onnx`) passes
     onnx.checker; a numpy forward pass of the exported graph on model inputs computed here from
     `vibgate features --format csv` (docs/features.md) reproduces `vibgate score --float`;
  c) refusals: an operator outside the subset names the node; a wrong width names both widths.
"""

import csv
import io
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import Checks  # noqa: E402  (tests/checks.py)

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:  # python3-onnx is in deploy/install-deps.sh
    print("FAIL python3-onnx is not installed (apt-get install python3-onnx)")
    print("0 passed, 1 failed")
    sys.exit(1)

SHAFT = ["--shaft-hz", "29.95"]


def run(cli, *args, timeout=300):
    p = subprocess.run([cli, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def scores(cli, model, files, use_float):
    rc, out, err = run(cli, "score", "--model", model, *files, "--format", "csv", *(["--float"] if use_float else []))
    if rc != 0:
        raise RuntimeError(err.strip())
    rows = list(csv.DictReader(io.StringIO(out)))
    return np.array([float(r["score"]) for r in rows]), [r["verdict"] for r in rows], rows


def autoencoder(d, widths, acts, matmul, prefix, seed, name):
    """A random-weight autoencoder d -> widths... -> d (He-like scale) as an ONNX model."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    cur = "X"
    if prefix is not None:
        mean, std = prefix
        inits += [numpy_helper.from_array(mean.astype(np.float32), "mean"),
                  numpy_helper.from_array((1.0 / std).astype(np.float32), "inv_std")]
        nodes += [helper.make_node("Sub", ["X", "mean"], ["xc"], name="center"),
                  helper.make_node("Mul", ["xc", "inv_std"], ["z"], name="scale")]
        cur = "z"
    dims = [d, *widths, d]
    for l in range(len(dims) - 1):
        n_in, n_out = dims[l], dims[l + 1]
        w = (rng.uniform(-1, 1, (n_out, n_in)) * np.sqrt(3.0 / n_in)).astype(np.float32)
        b = (0.1 * rng.uniform(-1, 1, n_out)).astype(np.float32)
        last = l == len(dims) - 2
        out = "Y" if last and acts[l] is None else f"lin{l}"
        if matmul:
            inits += [numpy_helper.from_array(w.T.copy(), f"W{l}"), numpy_helper.from_array(b, f"B{l}")]
            nodes += [helper.make_node("MatMul", [cur, f"W{l}"], [f"mm{l}"], name=f"matmul{l}"),
                      helper.make_node("Add", [f"mm{l}", f"B{l}"], [out], name=f"add{l}")]
        else:
            inits += [numpy_helper.from_array(w, f"W{l}"), numpy_helper.from_array(b, f"B{l}")]
            nodes.append(helper.make_node("Gemm", [cur, f"W{l}", f"B{l}"], [out], name=f"gemm{l}", transB=1))
        cur = out
        if acts[l] is not None:
            o = "Y" if last else f"act{l}"
            nodes.append(helper.make_node(acts[l], [cur], [o], name=f"{acts[l].lower()}{l}"))
            cur = o
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", d])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", d])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="test_onnx_python")
    m.ir_version = 8
    return m


def model_inputs_from_features(path):
    """Model-input rows (docs/features.md, "Model input vector") from `vibgate features` CSV."""
    rows = list(csv.DictReader(open(path)))
    cols = list(rows[0].keys())
    bands = sorted((c for c in cols if c.startswith("band_")), key=lambda c: int(c[5:]))
    shaft = [c for c in cols if c.startswith("shaft_")]
    env = [c for c in cols if c.startswith("env_")]
    lg = lambda v: np.log10(float(v) + 1e-9)  # noqa: E731
    out, starts = [], []
    for r in rows:
        x = [lg(r["rms"]), lg(r["peak"]), float(r["crest_factor"]), float(r["skewness"]), lg(r["kurtosis"]),
             lg(r["velocity_rms"])]
        x += [float(r[b]) for b in bands]
        x.append(float(r["spectral_centroid"]) / (25600 / 2))
        x += [lg(r[s]) for s in shaft] + [lg(r[e]) for e in env]
        out.append(x)
        starts.append(float(r["start_s"]))
    return np.array(out, dtype=np.float32), starts


def forward(model, x):
    """numpy forward pass of a Sub/Div/Gemm/Relu/Tanh/Sigmoid chain, float32."""
    vals = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    vals["X"] = x
    for n in model.graph.node:
        a = [vals[i] for i in n.input]
        if n.op_type == "Sub":
            v = a[0] - a[1]
        elif n.op_type == "Div":
            v = a[0] / a[1]
        elif n.op_type == "Gemm":
            tb = {at.name: at.i for at in n.attribute}.get("transB", 0)
            v = a[0] @ (a[1].T if tb else a[1]) + a[2]
        elif n.op_type == "Relu":
            v = np.maximum(a[0], 0)
        elif n.op_type == "Tanh":
            v = np.tanh(a[0])
        elif n.op_type == "Sigmoid":
            v = 1 / (1 + np.exp(-a[0]))
        else:
            raise ValueError(n.op_type)
        vals[n.output[0]] = v.astype(np.float32)
    return vals[model.graph.output[0].name]


def agreement(c, label, f, q, vf, vq):
    r = float(np.corrcoef(f, q)[0, 1])
    same = float(np.mean([a == b for a, b in zip(vf, vq)]))
    c.check(f"{label}: int8 vs float Pearson >= 0.999", r >= 0.999, f"r = {r:.6f} over {len(f)} windows")
    c.check(f"{label}: same verdict on >= 99.5 % of windows", same >= 0.995, f"{100 * same:.2f} %")
    return r, same


def main():
    cli = os.environ.get("VIBGATE_CLI")
    c = Checks()
    if not cli or not os.path.exists(cli):
        c.check("VIBGATE_CLI points at the vibgate binary", False, str(cli))
        print(f"{c.passed} passed, {c.failed} failed")
        return 1
    with tempfile.TemporaryDirectory(prefix="vibgate_onnx_") as tmp:
        p = lambda n: os.path.join(tmp, n)  # noqa: E731
        healthy, faulty = p("healthy.wav"), p("faulty.wav")
        run(cli, "synth", "--out", healthy, "--duration", 30, "--seed", 1)
        run(cli, "synth", "--out", faulty, "--duration", 8, "--seed", 2, "--defect", "outer", "--fault-peak", 1.0)
        # A trained model: the reference for the normalization of variant b and for export.
        rc, _, err = run(cli, "train", healthy, "--out", p("trained.vgm"), *SHAFT, "--epochs", 80)
        c.check("vibgate train", rc == 0, err.strip())
        rc, out, err = run(cli, "model", "export", "--model", p("trained.vgm"), "--onnx", p("trained.onnx"))
        c.check("model export --model --onnx", rc == 0 and os.path.exists(p("trained.onnx")), (out + err).strip())
        exported = onnx.load(p("trained.onnx"))
        try:
            onnx.checker.check_model(exported, full_check=True)
            c.check("exported model passes onnx.checker (full_check)", True)
        except Exception as e:  # noqa: BLE001
            c.check("exported model passes onnx.checker (full_check)", False, str(e))
        meta = {m.key: m.value for m in exported.metadata_props}
        c.check("export: opset 13, IR 8", exported.opset_import[0].version == 13 and exported.ir_version == 8)
        for k in ("vibgate.input_names", "vibgate.feature_hash", "vibgate.threshold_float", "vibgate.mean",
                  "vibgate.std", "vibgate.features"):
            c.check(f"export metadata {k}", bool(meta.get(k)))
        names = meta["vibgate.input_names"].split(",")
        d = len(names)
        mean = np.array([float(v) for v in meta["vibgate.mean"].split(",")], dtype=np.float32)
        std = np.array([float(v) for v in meta["vibgate.std"].split(",")], dtype=np.float32)

        # b) numpy forward pass of the exported graph vs `vibgate score --float`.
        rc, out, err = run(cli, "features", healthy, faulty, "--format", "csv", *SHAFT)
        with open(p("features.csv"), "w") as f:
            f.write(out)
        x, starts = model_inputs_from_features(p("features.csv"))
        c.check("model inputs from the features CSV have the exported width", x.shape[1] == d, f"{x.shape} vs {d}")
        y = forward(exported, x)
        z = (x - mean) / std
        thr = float(meta["vibgate.threshold_float"])
        np_scores = np.mean((z - y) ** 2, axis=1) / thr
        sf, _, _ = scores(cli, p("trained.vgm"), [healthy], True)
        n_h = len(sf)
        # Healthy windows are inside the calibrated clamp ranges, so the clamps do not act.
        rel = np.abs(np_scores[:n_h] - sf) / np.maximum(sf, 1e-3)
        c.check("numpy forward of the exported ONNX matches `score --float` (healthy, rel. diff < 1e-3)",
                len(sf) == n_h and float(rel.max()) < 1e-3, f"max rel diff {rel.max():.2e} over {n_h} windows")
        sff, _, _ = scores(cli, p("trained.vgm"), [faulty], True)
        c.check("faulty windows score far above healthy ones in numpy too (clamps not exported)",
                float(np.median(np_scores[n_h:])) > 5 * float(np.max(np_scores[:n_h])) and float(np.median(sff)) > 1.0,
                f"numpy median faulty {np.median(np_scores[n_h:]):.3g}, vibgate median faulty {np.median(sff):.3g}")

        # Re-import of the exported model reproduces the float scores exactly.
        rc, out, err = run(cli, "model", "import", p("trained.onnx"), "--out", p("reimported.vgm"), "--calibration",
                           healthy, *SHAFT)
        c.check("model import of the exported file", rc == 0, (out + err).strip().splitlines()[-1] if (out + err).strip() else "")
        if rc == 0:
            s2, _, _ = scores(cli, p("reimported.vgm"), [healthy], True)
            base, _, _ = scores(cli, p("trained.vgm"), [healthy], True)
            # Same network and clamps (same calibration rows); thresholds differ (no validation split).
            ratio = s2 / np.maximum(base, 1e-12)
            c.check("re-imported model: float scores proportional to the original's (same network)",
                    float(np.max(ratio) - np.min(ratio)) < 1e-5 * float(np.mean(ratio)),
                    f"ratio {np.min(ratio):.7f}..{np.max(ratio):.7f}")

        # a) hand-built autoencoders, imported and scored.
        variants = [
            ("gemm-tanh", [24, 8, 24], ["Tanh", "Tanh", "Tanh", None], False, None),
            ("matmul-sigmoid-relu", [20, 6, 20], ["Sigmoid", "Relu", "Sigmoid", None], True, (mean, std)),
        ]
        for i, (label, widths, acts, matmul, prefix) in enumerate(variants):
            m = autoencoder(d, widths, acts, matmul, prefix, seed=10 + i, name=label)
            path = p(f"{label}.onnx")
            onnx.save(m, path)
            try:
                onnx.checker.check_model(m, full_check=True)
                c.check(f"{label}: built model passes onnx.checker", True)
            except Exception as e:  # noqa: BLE001
                c.check(f"{label}: built model passes onnx.checker", False, str(e))
            rc, out, err = run(cli, "model", "import", path, "--out", p(f"{label}.vgm"), "--calibration", healthy,
                               *SHAFT, "--json")
            c.check(f"{label}: model import --out exits 0", rc == 0, err.strip())
            if rc != 0:
                continue
            import json
            rep = json.loads(out)
            c.check(f"{label}: report normalization", rep["normalization"] == ("graph" if prefix is not None else "calibration"),
                    rep["normalization"])
            c.check(f"{label}: report on the calibration rows: same verdict >= 99.5 %", rep["verdict_agreement"] >= 0.995,
                    f"Pearson {rep['pearson']:.6f}, same verdict {100 * rep['verdict_agreement']:.2f} %, "
                    f"max |diff| {rep['max_abs_diff']:.4g}, {rep['rows']} rows, layers {rep['layers']}")
            f8, v8, _ = scores(cli, p(f"{label}.vgm"), [healthy, faulty], False)
            ff, vf, _ = scores(cli, p(f"{label}.vgm"), [healthy, faulty], True)
            agreement(c, label, ff, f8, vf, v8)
            n_h = len(scores(cli, p(f"{label}.vgm"), [healthy], False)[0])
            c.check(f"{label}: faulty windows score above healthy ones",
                    float(np.median(f8[n_h:])) > float(np.median(f8[:n_h])),
                    f"median healthy {np.median(f8[:n_h]):.3g}, faulty {np.median(f8[n_h:]):.3g}")

        # c) refusals with one line naming the problem.
        bad = autoencoder(d, [8], ["Relu", None], False, None, seed=3, name="bad")
        bad.graph.node[1].op_type = "LeakyRelu"
        onnx.save(bad, p("bad.onnx"))
        rc, out, err = run(cli, "model", "import", p("bad.onnx"), "--out", p("bad.vgm"), "--calibration", healthy, *SHAFT)
        c.check("unsupported operator: exit 1, one line naming node and operator",
                rc == 1 and err.strip() == "vibgate: bad.onnx: node 1 'relu0': operator LeakyRelu is not supported "
                "(supported: Gemm, MatMul, Add, Sub, Div, Mul, Relu, Tanh, Sigmoid)", err.strip())
        wide = autoencoder(d + 12, [8], ["Relu", None], False, None, seed=3, name="wide")
        onnx.save(wide, p("wide.onnx"))
        rc, out, err = run(cli, "model", "import", p("wide.onnx"), "--out", p("wide.vgm"), "--calibration", healthy, *SHAFT)
        c.check("wrong width: exit 1 naming both widths",
                rc == 1 and f"input width {d + 12} does not match the asset's {d} model inputs" in err
                and len(err.strip().splitlines()) == 1, err.strip())
        # d) usage errors (exit 2, one line): no destination, both destinations, offline import
        # without calibration recordings, export without a source.
        for args, needle in [
            (["model", "import", p("trained.onnx")], "give --out MODEL.vgm"),
            (["model", "import", p("trained.onnx"), "--out", p("x.vgm")], "--calibration RECORDING... is required"),
            (["model", "import", p("trained.onnx"), "--out", p("x.vgm"), "--asset", "a"], "excludes"),
            (["model", "export", "--onnx", p("x.onnx")], "give an ASSET"),
        ]:
            rc, out, err = run(cli, *args)
            c.check(f"usage error: {' '.join(args[:2])} ... {needle!r}", rc == 2 and needle in err, f"rc {rc}: {err.strip()}")
    print(f"{c.passed} passed, {c.failed} failed")
    return 0 if c.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
