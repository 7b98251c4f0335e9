#!/usr/bin/python3
"""ONNX import and export against a running vibgated (docs/model.md "ONNX", docs/cli.md).

Run as `/usr/bin/python3 test_model_onnx_online.py` with VIBGATED, VIBGATE_SIM, VIBGATE_CLI and
VIBGATE_BUILD_DIR set (ctest does this). The plant is tests/fault/plant.py's: two simulated
healthy machines on Modbus TCP (no fault during the test), one asset each learning for 5 s; the
uplink points at a loopback port nobody listens on (the outbox just grows). State lives under the
build tree (the daemon refuses control sockets under /tmp). Every wait is bounded; the simulator
and the daemon are stopped by PID in a finally block. Prints one line per check and
`N passed, M failed`; exits 1 if any check failed.

  1. after learning: `vibgate model export ASSET --onnx F` writes the active model; it passes
     onnx.checker and its metadata names the asset's model inputs;
  2. `vibgate model import F.onnx --asset A` (a Gemm+Tanh autoencoder built with python3-onnx)
     imports on the daemon's trainer thread with the asset's stored healthy windows as calibration,
     answers with the agreement report, and the new version is active (model list note
     "onnx import ...") and scores live windows;
  3. the same with `--calibration FEATURES.csv` (written by `vibgate features --format csv`) and a
     MatMul+Add+Sigmoid model, with --from/--to on the other asset;
  4. refusals keep the daemon running: an unsupported operator (one line naming node and
     operator), a file over 3 MiB (refused by the CLI), a wrong width, an unknown asset;
  5. the exported ONNX of an imported model carries its Tanh layers and origin; SIGTERM -> exit 0.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "fault"))
sys.path.insert(0, os.path.join(HERE, "..", "sim"))
from checks import Checks, wait_until  # noqa: E402  (tests/checks.py)
from plant import Gateway, make_plant  # noqa: E402  (tests/fault/plant.py)
from test_sim_mbpoll import free_port  # noqa: E402

import numpy as np  # noqa: E402

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:
    print("FAIL python3-onnx is not installed (apt-get install python3-onnx)")
    print("0 passed, 1 failed")
    sys.exit(1)

CLI = os.environ.get("VIBGATE_CLI", "")
BUILD = os.environ.get("VIBGATE_BUILD_DIR", "")


def autoencoder(d, hidden, act, matmul, seed):
    rng = np.random.default_rng(seed)
    dims = [d, hidden, d]
    nodes, inits, cur = [], [], "X"
    for l in range(2):
        w = (rng.uniform(-1, 1, (dims[l + 1], dims[l])) * np.sqrt(3.0 / dims[l])).astype(np.float32)
        b = (0.1 * rng.uniform(-1, 1, dims[l + 1])).astype(np.float32)
        out = "Y" if l == 1 else f"lin{l}"
        if matmul:
            inits += [numpy_helper.from_array(w.T.copy(), f"W{l}"), numpy_helper.from_array(b, f"B{l}")]
            nodes += [helper.make_node("MatMul", [cur, f"W{l}"], [f"mm{l}"], name=f"matmul{l}"),
                      helper.make_node("Add", [f"mm{l}", f"B{l}"], [out], name=f"add{l}")]
        else:
            inits += [numpy_helper.from_array(w, f"W{l}"), numpy_helper.from_array(b, f"B{l}")]
            nodes.append(helper.make_node("Gemm", [cur, f"W{l}", f"B{l}"], [out], name=f"gemm{l}", transB=1))
        cur = out
        if l == 0:
            nodes.append(helper.make_node(act, [cur], ["h"], name="act0"))
            cur = "h"
    g = helper.make_graph(nodes, "ae", [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", d])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["N", d])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def state_base():
    """A short folder under the build tree for the state and socket (not /tmp; see
    test_daemon_e2e.py), else $XDG_RUNTIME_DIR or ~/.cache."""
    base = os.path.realpath(BUILD or os.path.join(HERE, "..", "..", "build"))
    temp = any(base == t or base.startswith(t + "/") for t in ("/tmp", "/var/tmp", "/dev/shm"))
    if len(base) > 60 or temp:
        base = os.environ.get("XDG_RUNTIME_DIR") or os.path.join(os.path.expanduser("~"), ".cache")
    os.makedirs(base, exist_ok=True)
    return base


def main():
    c = Checks()
    if not CLI or not os.path.exists(CLI):
        c.check("VIBGATE_CLI points at the vibgate binary", False, CLI)
        print(f"{c.passed} passed, {c.failed} failed")
        return 1
    gw_dir = os.path.dirname(CLI)
    work = tempfile.mkdtemp(prefix="vg_onnx_", dir=state_base())
    state = os.path.join(work, "state")
    sock = os.path.join(work, "ctl.sock")
    sim_proc = gw = None
    try:
        sim_cmd, cfg, names, _ = make_plant(gw_dir, work, state, sock, free_port(), "onnx-test", fault_start=100000)
        sim_proc = subprocess.Popen(sim_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        gw = Gateway(gw_dir, cfg, sock, os.path.join(work, "vibgated.log"))
        gw.start()
        c.check("daemon up", gw.up(30))
        a, b = names[0], names[1]

        def active_version(asset):
            rows = gw.json("model", "list", asset) or []
            act = [r for r in rows if r.get("state") == "active"]
            return act[0] if act else None

        v1 = wait_until(lambda: active_version(a) and active_version(b), 60, 0.5)
        c.check("both assets learned a model", bool(v1), gw.log()[-500:] if not v1 else "")
        # Stored healthy results carry the model inputs the import calibrates with (every 0.5 s).
        time.sleep(6)

        # 1. export of the trained model
        rc, out = gw.cli("model", "export", a, "--onnx", os.path.join(work, "trained.onnx"))
        c.check("model export ASSET --onnx", rc == 0 and "version 1" in out, out.strip())
        d = 0
        if rc == 0:
            m = onnx.load(os.path.join(work, "trained.onnx"))
            try:
                onnx.checker.check_model(m, full_check=True)
                c.check("exported model passes onnx.checker", True)
            except Exception as e:  # noqa: BLE001
                c.check("exported model passes onnx.checker", False, str(e))
            meta = {p.key: p.value for p in m.metadata_props}
            d = len(meta.get("vibgate.input_names", "").split(","))
            c.check("exported metadata: input names, origin trained", d >= 20 and meta.get("vibgate.origin") == "trained",
                    f"{d} inputs, origin {meta.get('vibgate.origin')}")
        if d == 0:
            raise RuntimeError("no exported model: cannot continue")

        # 2. import with the stored healthy windows
        tanh = os.path.join(work, "tanh.onnx")
        onnx.save(autoencoder(d, 16, "Tanh", False, 1), tanh)
        t0 = time.monotonic()
        rc, out = gw.cli("model", "import", tanh, "--asset", a, "--timeout", "10")
        c.check("model import --asset (stored healthy windows): active", rc == 0 and "active" in out, out.strip())
        c.check("import report printed (layers, Pearson, same verdict)",
                all(k in out for k in ("tanh", "Pearson", "same verdict", "calibration rows")), out.strip())
        print(f"     import took {time.monotonic() - t0:.2f} s (CLI round trip with polling)")
        rep = None
        rc, js = gw.cli("model", "import", tanh, "--asset", a, "--json")
        try:
            rep = json.loads(js[: js.rindex("}") + 1]) if rc == 0 else None
        except ValueError:
            rep = None
        c.check("second import (--json): state active, version 3, agreement within bounds",
                rep is not None and rep["state"] == "active" and rep["version"] == "3"
                and rep["verdict_agreement"] >= 0.995 and rep["rows"] >= 8,
                js.strip()[-600:])
        act = active_version(a)
        c.check("model list: the imported version is active with an 'onnx import' note",
                act is not None and act["version"] == "3" and act["note"].startswith("onnx import tanh.onnx: r="),
                json.dumps(act))
        last = (gw.json("assets") or [{}])
        before = {r["name"]: r.get("last_window_ms", 0) for r in last}
        scored = wait_until(lambda: [r for r in (gw.json("assets") or []) if r["name"] == a
                                     and r.get("model_version") == "3" and r.get("last_window_ms", 0) > before.get(a, 0)],
                            20, 0.5)
        c.check("the asset scores live windows with the imported model", bool(scored), json.dumps(scored))

        # 3. import with a features CSV as calibration, on the other asset, with --from/--to
        wav = os.path.join(work, "healthy.wav")
        subprocess.run([CLI, "synth", "--out", wav, "--duration", "10", "--seed", "3"], check=True, capture_output=True)
        feats = subprocess.run([CLI, "features", wav, "--format", "csv"], capture_output=True, text=True)
        csv_path = os.path.join(work, "features.csv")
        with open(csv_path, "w") as f:
            f.write(feats.stdout)
        sig = os.path.join(work, "sigmoid.onnx")
        onnx.save(autoencoder(d, 12, "Sigmoid", True, 2), sig)
        rc, out = gw.cli("model", "import", sig, "--asset", b, "--calibration", csv_path)
        c.check("model import --asset --calibration FEATURES.csv: active", rc == 0 and "active" in out
                and "sigmoid" in out, out.strip())
        mi = subprocess.run([CLI, "features", wav, "--format", "csv", "--model-input"], capture_output=True, text=True)
        mi_path = os.path.join(work, "model_input.csv")
        with open(mi_path, "w") as f:
            f.write(mi.stdout)
        rc, out = gw.cli("model", "import", sig, "--asset", b, "--calibration", mi_path)
        c.check("model import --asset --calibration MODEL_INPUT.csv (features --model-input): active",
                mi.returncode == 0 and rc == 0 and "active" in out, out.strip() or mi.stderr.strip())
        rc, out = gw.cli("model", "import", sig, "--asset", b, "--from", "1h", "--to", "now")
        c.check("model import --asset --from/--to: active", rc == 0 and "active" in out, out.strip())

        # 4. refusals; the daemon keeps running
        bad = autoencoder(d, 8, "Tanh", False, 4)
        bad.graph.node[1].op_type = "Elu"
        onnx.save(bad, os.path.join(work, "bad.onnx"))
        rc, out = gw.cli("model", "import", os.path.join(work, "bad.onnx"), "--asset", a)
        lines = [ln for ln in out.splitlines() if ln.startswith("vibgate: ")]
        c.check("unsupported operator: exit 1, one error line naming node and operator",
                rc == 1 and any("node 1 'act0': operator Elu is not supported" in ln for ln in lines), out.strip())
        big = os.path.join(work, "big.onnx")
        with open(big, "wb") as f:
            f.write(b"\0" * (3 * 1024 * 1024 + 1))
        rc, out = gw.cli("model", "import", big, "--asset", a)
        c.check("a file over 3 MiB is refused by the CLI", rc == 1 and "too large" in out, out.strip())
        wide = os.path.join(work, "wide.onnx")
        onnx.save(autoencoder(d + 5, 8, "Tanh", False, 5), wide)
        rc, out = gw.cli("model", "import", wide, "--asset", a)
        c.check("wrong width: refused naming both widths",
                rc == 1 and f"input width {d + 5} does not match the asset's {d} model inputs" in out, out.strip())
        rc, out = gw.cli("model", "import", tanh, "--asset", "nosuch")
        c.check("unknown asset: refused", rc == 1 and "unknown asset 'nosuch'" in out, out.strip())
        act = active_version(a)
        c.check("refused imports leave the active version alone", act is not None and act["version"] == "3",
                json.dumps(act))
        rc, out = gw.cli("status")
        c.check("daemon still answers", rc == 0, out.strip()[-200:])

        # 5. export of the imported model
        rc, out = gw.cli("model", "export", a, "--onnx", os.path.join(work, "imported.onnx"))
        c.check("export of the imported model", rc == 0 and "onnx:tanh.onnx" in out, out.strip())
        if rc == 0:
            m = onnx.load(os.path.join(work, "imported.onnx"))
            ops = [n.op_type for n in m.graph.node]
            c.check("exported imported model: Sub, Div, Gemm, Tanh, Gemm", ops == ["Sub", "Div", "Gemm", "Tanh", "Gemm"],
                    str(ops))
        rc = gw.stop()
        c.check("SIGTERM: exit 0", rc == 0, str(rc))
    except Exception as e:  # noqa: BLE001
        c.check("test ran to the end", False, repr(e))
    finally:
        if gw is not None:
            gw.stop()
        if sim_proc is not None and sim_proc.poll() is None:
            sim_proc.terminate()
            try:
                sim_proc.wait(10)
            except subprocess.TimeoutExpired:
                sim_proc.kill()
                sim_proc.wait(5)
        if c.failed and gw is not None:
            print("---- daemon log (tail) ----")
            print(gw.log()[-3000:])
        shutil.rmtree(work, ignore_errors=True)
    print(f"{c.passed} passed, {c.failed} failed")
    return 0 if c.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
