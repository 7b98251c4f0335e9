#!/usr/bin/python3
"""Drift monitoring end to end (docs/model.md "Drift"): the real daemon against the plant
simulator and a real mosquitto broker (JSON profile). Two machines learn their baselines on site
for LEARN_S s: `calm` stays healthy, `worn` develops an outer-race bearing fault at FAULT_START_S
(simulator time), after its drift monitor has filled its first 200 windows. Checks:

  - while both machines are healthy, both points report a computed, non-drifted state (PSIs
    below 0.25) in `vibgate assets --json`;
  - after the fault, `worn` reaches "drifted" with a PSI above 0.25 (score and a feature), named
    in the DRIFT column of `vibgate assets`, in the uplinked result records (drift_psi_score,
    drift_psi_feature_max, drift_feature, drift_state) and as a "drifted" health record, with one
    warning line in the log; Prometheus exposes vibgate_asset_drift_psi for the score and each
    input;
  - `calm` never drifts and its largest PSI stays below 0.25.

Run as `/usr/bin/python3 test_drift.py --build BUILD_DIR`. Loopback only, ports picked by
binding to port 0, every wait bounded, processes stopped by PID. About 80 s.
Prints one line per check and `N passed, M failed`; exits 1 if any check failed.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "fault"))
sys.path.insert(0, os.path.join(HERE, "..", "uplink"))
sys.path.insert(0, os.path.join(HERE, "..", "sim"))
from checks import Checks, wait_until  # noqa: E402  (tests/checks.py)
import mqtt_env  # noqa: E402  (tests/uplink/mqtt_env.py)
from plant import Gateway, json_records  # noqa: E402  (tests/fault/plant.py)
from test_sim_mbpoll import free_port  # noqa: E402

LEARN_S = 20        # on-site baseline: 250 windows at 12.5 windows/s (10 bins per quantity)
FAULT_START_S = 52  # worn's bearing fault (simulator time): after the first 200 scored windows
NODE = "drift"


def sim_config(path, port):
    """Two synth machines on one Modbus listener (units 1 and 2), 4096-sample blocks at 25.6 kHz."""
    units = []
    for unit, machine in ((1, "calm"), (2, "worn")):
        units.append(f"""
  [[listener.unit]]
  id = {unit}
    [[listener.unit.waveform]]
    name = "accel"
    register = "input"
    address = 100
    samples = 4096
    sample_rate_hz = 25600
    format = "int16"
    scale = 0.0001
    machine = "{machine}"
""")
    with open(path, "w") as f:
        f.write(f"""[sim]
seed = 5

[[machine]]
name = "calm"
shaft_hz = 29.95
defect = "none"
seed = 31

[[machine]]
name = "worn"
shaft_hz = 29.95
defect = "outer"
fault_start_s = {FAULT_START_S}
fault_peak_g = 0.3
fault_growth_per_s = 0.01
seed = 32

[[listener]]
address = "127.0.0.1"
port = {port}
""" + "".join(units))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..", "build"))
    args = ap.parse_args()
    gw_dir = os.path.join(os.path.abspath(args.build), "gateway")
    C = Checks()
    work = tempfile.mkdtemp(prefix="drift-", dir=os.path.abspath(args.build))
    state = os.path.join(work, "state")
    os.makedirs(state)
    sock = os.path.join(state, "vibgate.sock")
    procs, gw, broker = [], None, None
    try:
        broker = mqtt_env.Broker(os.path.join(work, "broker"))
        broker.start(timeout=15)
        col = mqtt_env.Collector(broker.port, topics=("vibgate/#",))
        C.check("collector connected", col.wait_connected(10))

        sim_cfg = os.path.join(work, "sim.toml")
        sim_config(sim_cfg, free_port())
        sim_cmd = [f"{gw_dir}/vibgate-sim", "-c", sim_cfg]
        devices = subprocess.run(sim_cmd + ["--print-gateway-config"], check=True,
                                 capture_output=True, text=True, timeout=20).stdout
        lines = devices.splitlines()
        names = [lines[i + 1].split('"')[1] for i, ln in enumerate(lines[:-1])
                 if ln.strip() == "[[device]]" and lines[i + 1].startswith("name = ")]
        prom = free_port()
        cfg = os.path.join(work, "vibgated.toml")
        with open(cfg, "w") as f:
            f.write(f'[daemon]\nstate_dir = "{state}"\ncontrol_socket = "{sock}"\n'
                    'log_level = "info"\nresult_interval_ms = 500\n')
            f.write(f'[uplink]\nhost = "127.0.0.1"\nport = {broker.port}\nprofile = "json"\n'
                    f'edge_node_id = "{NODE}"\n')
            f.write(f'[prometheus]\nenabled = true\nport = {prom}\n')
            f.write(devices)
            for machine, dev in zip(("calm", "worn"), names):
                f.write(f'[[asset]]\nname = "{machine}"\nchannel = "{dev}/accel"\n'
                        f'learn_s = {LEARN_S}\nlearn_min_windows = 64\n')
        C.check(f"simulator printed two devices for the daemon {names}", len(names) == 2,
                "" if len(names) == 2 else devices[:300])

        sim = subprocess.Popen(sim_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(sim)
        t0 = time.monotonic()
        gw = Gateway(gw_dir, cfg, sock, os.path.join(work, "vibgated.log"))
        procs.append(gw.start())
        if not C.check("daemon up", gw.up()):
            print(gw.log()[-2000:])
            raise RuntimeError("the daemon did not start")

        seen = {"calm": set(), "worn": set()}
        peak = {"calm": 0.0}

        def assets():
            rows = {a["name"]: a for a in (gw.json("assets") or [])}
            for n, a in rows.items():
                if n in seen:
                    seen[n].add(a.get("drift_state"))
                if n == "calm" and a.get("drift_state") not in ("n/a", None, ""):
                    peak["calm"] = max(peak["calm"], a["drift_psi_score"],
                                       a["drift_psi_feature_max"])
            return rows

        # ---- 1. both healthy: the monitors fill (200 windows) and report a computed state
        def both_computed():
            a = assets()
            ok = len(a) == 2 and all(x["drift_state"] in ("stable", "shifting", "drifted") and
                                     x["drift_windows"] >= 200 for x in a.values())
            return a if ok else None

        healthy = wait_until(both_computed, LEARN_S + 35, 0.5)
        t_healthy = time.monotonic() - t0
        last = assets()
        C.check(f"both points compute drift before the fault ({t_healthy:.0f} s after start)",
                healthy is not None, json.dumps(last)[:600])
        if healthy:
            for n in ("calm", "worn"):
                h = healthy[n]
                C.check(f"{n} (healthy) is not drifted: PSI score {h['drift_psi_score']:.3f}, "
                        f"feature max {h['drift_psi_feature_max']:.3f} ({h['drift_feature']}), "
                        f"{h['drift_windows']} windows",
                        h["drift_state"] in ("stable", "shifting") and
                        max(h["drift_psi_score"], h["drift_psi_feature_max"]) <= 0.25, json.dumps(h))
        C.check("the fault has not started yet (the healthy check saw healthy data)",
                t_healthy < FAULT_START_S - 2, f"{t_healthy:.0f} s")

        # ---- 2. worn's bearing fault: drifted (a feature first, then the score as the share of
        # faulty windows in the monitor grows)
        def worn_drifted(score_too):
            a = assets()
            w = a.get("worn")
            ok = w and w["drift_state"] == "drifted" and (not score_too or
                                                          w["drift_psi_score"] > 0.25)
            return a if ok else None

        drifted = wait_until(lambda: worn_drifted(False),
                             FAULT_START_S + 40 - (time.monotonic() - t0), 0.5)
        t_drift = time.monotonic() - t0
        C.check(f"worn reaches drifted after its fault ({t_drift:.0f} s after start)",
                drifted is not None, json.dumps(assets())[:600])
        drifted = wait_until(lambda: worn_drifted(True),
                             FAULT_START_S + 70 - (time.monotonic() - t0), 0.5)
        t_score = time.monotonic() - t0
        C.check(f"... and its score PSI exceeds 0.25 too ({t_score:.0f} s after start)",
                drifted is not None, json.dumps(assets().get("worn"))[:600])
        if drifted:
            w = drifted["worn"]
            C.check(f"worn: PSI score {w['drift_psi_score']:.2f} and feature max "
                    f"{w['drift_psi_feature_max']:.2f} ({w['drift_feature']}) above 0.25",
                    w["drift_psi_score"] > 0.25 and w["drift_psi_feature_max"] > 0.25 and
                    w["drift_feature"] != "", json.dumps(w))
        rc, table = gw.cli("assets")
        worn_row = [ln for ln in table.splitlines() if ln.startswith("worn")]
        C.check("vibgate assets: DRIFT column, worn's row says drifted and names the quantity",
                rc == 0 and "DRIFT" in table and worn_row and " drifted (" in worn_row[0], table)
        calm = assets().get("calm", {})
        C.check(f"calm stays undrifted throughout (states seen {sorted(map(str, seen['calm']))}, "
                f"largest PSI {peak['calm']:.3f})",
                "drifted" not in seen["calm"] and peak["calm"] <= 0.25 and
                calm.get("drift_state") in ("stable", "shifting"), json.dumps(calm))

        # ---- 3. the uplink: result records carry the drift metrics, a health record the change
        def uplinked():
            recs = json_records(col)
            res = [r for r in recs.values() if r.get("kind") == "result"]
            worn_d = [r for r in res if r.get("asset") == "worn" and
                      r["metrics"].get("drift_state") == "drifted" and
                      r["metrics"].get("drift_psi_score", 0) > 0.25]
            health = [r for r in recs.values() if r.get("kind") == "health" and
                      r.get("asset") == "worn" and r["metrics"].get("state") == "drifted"]
            return (res, worn_d, health) if worn_d and health else None

        up = wait_until(uplinked, 15, 0.5)
        C.check("broker: worn's result records carry drift_state drifted (and a score PSI > "
                "0.25)", up is not None)
        if up:
            res, worn_d, health = up
            m = worn_d[-1]["metrics"]
            C.check("broker: ... with drift_psi_score, drift_psi_feature_max > 0.25 and "
                    "drift_feature", m.get("drift_psi_score", 0) > 0.25 and
                    m.get("drift_psi_feature_max", 0) > 0.25 and m.get("drift_feature"),
                    json.dumps(m)[:400])
            calm_res = [r["metrics"] for r in res if r.get("asset") == "calm" and
                        r["metrics"].get("drift_state") in ("stable", "shifting")]
            C.check("broker: calm's result records carry its (undrifted) drift state and PSIs",
                    calm_res and "drift_psi_score" in calm_res[-1], json.dumps(calm_res[-1:])[:300])
            C.check("broker: one health record 'drifted' for worn, detail names the PSI",
                    len(health) == 1 and "model drift: channel" in
                    health[0]["metrics"].get("detail", ""), json.dumps(health)[:400])
        log = gw.log()
        C.check("log: one warning line for worn entering drifted",
                log.count("asset 'worn': model drift: drifted") == 1,
                [ln for ln in log.splitlines() if "model drift" in ln][:3])
        C.check("log: no drift line for calm", "asset 'calm': model drift" not in log)

        # ---- 4. Prometheus
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{prom}/metrics", timeout=5).read().decode()
        except OSError as e:
            body = str(e)
        lines = [ln for ln in body.splitlines() if ln.startswith("vibgate_asset_drift_psi{")]
        per = {n: len([ln for ln in lines if f'asset="{n}"' in ln]) for n in ("calm", "worn")}
        worn_score = [ln for ln in lines if 'asset="worn"' in ln and 'what="score"' in ln]
        C.check("prometheus: vibgate_asset_drift_psi for the score and every input of both points "
                f"({per})", per["calm"] == per["worn"] and per["calm"] > 20 and worn_score and
                float(worn_score[0].split()[-1]) > 0.25, "\n".join(lines[:4]))
        C.check("prometheus: vibgate_asset_drift_state of worn is 3 (drifted)",
                any(ln.startswith("vibgate_asset_drift_state{") and 'asset="worn"' in ln and
                    ln.endswith(" 3") for ln in body.splitlines()))

        C.check("daemon exits 0 on SIGTERM", gw.stop() == 0)
    except RuntimeError as e:
        C.check("test ran to the end", False, str(e))
    finally:
        if gw:
            gw.stop()
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        if broker:
            broker.stop()
    print(f"{C.passed} passed, {C.failed} failed", flush=True)
    if C.failed == 0:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if C.failed else 0


if __name__ == "__main__":
    sys.exit(main())
