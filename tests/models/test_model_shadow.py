#!/usr/bin/python3
"""Shadow evaluation of staged model versions (issue 9, docs/model.md "Shadow evaluation"),
end to end: the plant simulator (two healthy simulated machines on Modbus TCP), the real
daemon learning a baseline for each, a real mosquitto broker with a paho collector subscribed
to the JSON uplink, and the vibgate CLI.

  (a) a good version, trained from the same healthy period (`model train --from --stage`),
      runs in shadow beside the active one and is promoted automatically;
  (b) a deliberately bad version (trained offline with `vibgate train --threshold-margin 0.2`
      on a synthetic recording of another machine, so it alarms on healthy data), staged with
      `model shadow --file`, alarms far more than the active model on the same windows and is
      rolled back automatically; the active model keeps scoring;
  (c) every step arrives at the broker as a "model" record (shadow_started, promoted,
      rolled_back, cancelled) with the numbers;
  plus the refusals (no active model yet, unknown version), a SIGHUP cancelling a running
  evaluation, and an evaluation resumed after a daemon restart.

Shadow periods are a few seconds ([models] shadow_s in the test's configuration). About 60 s.
Prints PASS/FAIL lines and "N passed, M failed"; exits 1 if a check failed. Loopback only;
every wait bounded; every process stopped by PID.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "uplink"))
sys.path.insert(0, os.path.join(HERE, "..", "fault"))
from checks import Checks, wait_until  # noqa: E402  (tests/checks.py)
import mqtt_env  # noqa: E402  (tests/uplink/mqtt_env.py)
from plant import Gateway, json_records, make_plant  # noqa: E402  (tests/fault/plant.py)

SHADOW_S = 6
MARGIN = 0.05


def main():
    build = os.path.abspath(os.environ.get("VIBGATE_BUILD_DIR",
                                           os.path.join(HERE, "..", "..", "build")))
    gw = os.path.join(build, "gateway")
    C = Checks()
    work = tempfile.mkdtemp(prefix="shadow-", dir=build)
    state = os.path.join(work, "state")
    os.makedirs(state)
    sock = os.path.join(state, "vibgate.sock")
    procs = []
    broker = None
    col = None
    daemon = None
    t_start = time.monotonic()
    try:
        broker = mqtt_env.Broker(os.path.join(work, "broker"))
        broker.start(timeout=15)
        col = mqtt_env.Collector(broker.port, topics=("vibgate/#",))
        C.check("collector connected", col.wait_connected(10))
        # Healthy machines all along (the fault would start after a day).
        sim_cmd, cfg, names, _ = make_plant(gw, work, state, sock, broker.port, "shadow",
                                            fault_start=86400)
        # Results every 100 ms: a history of enough healthy windows to retrain from quickly.
        with open(cfg) as f:
            text = f.read()
        assert "result_interval_ms = 500" in text
        with open(cfg, "w") as f:
            f.write(text.replace("result_interval_ms = 500", "result_interval_ms = 100"))
            f.write(f"[models]\nshadow_s = {SHADOW_S}\nshadow_min_windows = 20\n"
                    f"shadow_max_alarm_ratio = 3.0\nshadow_alarm_margin = {MARGIN}\n")
        good, bad = names[0], names[1]
        sim = subprocess.Popen(sim_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(sim)
        daemon = Gateway(gw, cfg, sock, os.path.join(work, "vibgated.log"))
        procs.append(daemon.start())
        C.check("daemon up", daemon.up())

        # Refused while the asset still learns: nothing to compare against.
        rc, out = daemon.cli("model", "shadow", good, "1")
        C.check("shadow refused while learning (no active model)",
                rc != 0 and "no active model yet" in out, out.strip())

        def versions(asset):
            m = daemon.json("model", "list", asset)
            return {x["version"]: x for x in (m or []) if x.get("version")}

        def active(asset):
            for v, x in versions(asset).items():
                if x["state"] == "active":
                    return v
            return None

        C.check("baselines learned (version 1 active on both machines)",
                wait_until(lambda: active(good) == "1" and active(bad) == "1", 40, 0.5))
        rc, out = daemon.cli("model", "shadow", good, "7")
        C.check("shadow of an unknown version refused", rc != 0 and "no version '7'" in out,
                out.strip())

        # The bad version: another machine (50 Hz shaft), a threshold margin of 0.2.
        wav = os.path.join(work, "other_machine.wav")
        bad_model = os.path.join(work, "bad.vgm")
        subprocess.run([f"{gw}/vibgate", "synth", "--out", wav, "--duration", "20",
                        "--shaft-hz", "50", "--seed", "9"], check=True, capture_output=True)
        subprocess.run([f"{gw}/vibgate", "train", wav, "--out", bad_model,
                        "--threshold-margin", "0.2"], check=True, capture_output=True)

        # (a) and (b) run side by side: the good version of one machine trained from the
        # stored healthy history, the bad file on the other machine.
        time.sleep(8)  # stored windows after learning to train from (10 per s)
        rc, out = daemon.cli("model", "train", good, "--from", "2m", "--stage")
        C.check("model train --from --stage accepted", rc == 0 and "shadow" in out, out.strip())
        rc, out = daemon.cli("model", "shadow", bad, "--file", bad_model)
        C.check("model shadow --file accepted", rc == 0 and "version 2" in out, out.strip())

        def in_shadow(asset):
            a = daemon.json("assets") or []
            return [x for x in a if x["name"] == asset and x.get("shadow_version")]

        rows = wait_until(lambda: in_shadow(good) and in_shadow(bad) and
                          (in_shadow(good), in_shadow(bad)), 30, 0.3)
        C.check("both versions in shadow (vibgate assets shows the version and its score)",
                rows, str(rows))
        listing = daemon.cli("model", "list")[1]
        C.check("model list shows the shadow progress",
                "shadow" in listing and "windows" in listing and "vs active" in listing,
                listing)
        print(listing)

        # The outcome after the period.
        C.check("(a) the good version is promoted after its shadow period",
                wait_until(lambda: active(good) == "2", 3 * SHADOW_S + 20, 0.5),
                json.dumps(versions(good)))
        C.check("(b) the bad version is rejected",
                wait_until(lambda: versions(bad).get("2", {}).get("state") == "rejected",
                           3 * SHADOW_S + 20, 0.5), json.dumps(versions(bad)))
        vg, vb = versions(good), versions(bad)
        C.check("(a) the note says why: promoted after shadow, with the numbers",
                "promoted after shadow" in vg["2"]["note"] and "alarm rate" in vg["2"]["note"],
                vg["2"]["note"])
        C.check("(a) the old version is retired", vg["1"]["state"] == "retired", vg["1"]["state"])
        C.check("(b) the note says why: rolled back, with the numbers",
                "rolled back after shadow" in vb["2"]["note"], vb["2"]["note"])
        C.check("(b) the active model is untouched", active(bad) == "1", json.dumps(vb))
        a0 = [x for x in daemon.json("assets") if x["name"] == bad][0]
        time.sleep(1.5)
        a1 = [x for x in daemon.json("assets") if x["name"] == bad][0]
        C.check("(b) the active model keeps scoring (windows advance, model version 1)",
                a1["last_window_ms"] > a0["last_window_ms"] and a1["model_state"] == "scoring"
                and a1["model_version"] == "1" and not a1["shadow_version"], json.dumps(a1))

        # (c) the events at the broker.
        def events():
            return [r for r in json_records(col).values() if r.get("kind") == "model"]

        def event(asset, name, version=None):
            for r in events():
                m = r["metrics"]
                if r["asset"] == asset and m.get("event") == name and \
                        (version is None or m.get("version") == version):
                    return r
            return None
        ok = wait_until(lambda: event(good, "promoted") and event(bad, "rolled_back"), 15, 0.3)
        C.check("(c) model events at the broker: promoted and rolled_back", ok,
                json.dumps(events())[:2000])
        for asset in (good, bad):
            st = event(asset, "shadow_started", "2")
            C.check(f"(c) shadow_started of {asset} at the broker (topic .../model, alert lane)",
                    st and st["lane"] == "alert" and st["metrics"]["active_version"] == "1",
                    json.dumps(st))
        p, r = event(good, "promoted"), event(bad, "rolled_back")
        if p and r:
            pm, rm = p["metrics"], r["metrics"]
            print(f"promoted: {pm['shadow_windows']} windows, shadow alarm rate "
                  f"{pm['shadow_alarm_rate']:.3f} vs active {pm['active_alarm_rate']:.3f}")
            print(f"rolled back: {rm['shadow_windows']} windows, shadow alarm rate "
                  f"{rm['shadow_alarm_rate']:.3f} vs active {rm['active_alarm_rate']:.3f}")
            C.check("(c) promoted event carries the numbers (>= 20 windows, rates)",
                    pm["shadow_windows"] >= 20 and pm["version"] == "2"
                    and pm["active_version"] == "1" and pm["bundle_id"] == ""
                    and pm["shadow_alarm_rate"] <= max(3 * pm["active_alarm_rate"],
                                                      pm["active_alarm_rate"] + MARGIN),
                    json.dumps(pm))
            C.check("(c) rolled_back event: the bad version truly alarmed far more on the same "
                    "windows", rm["shadow_windows"] >= 20
                    and rm["shadow_alarm_rate"] > 3 * rm["active_alarm_rate"]
                    and rm["shadow_alarm_rate"] > rm["active_alarm_rate"] + 0.5,
                    json.dumps(rm))
        topics = {m.topic for m in col.messages("vibgate/")}
        C.check("(c) JSON topic suffix 'model'", f"vibgate/shadow/{good}/model" in topics,
                str(sorted(topics)))

        # A SIGHUP cancels a running evaluation.
        rc, out = daemon.cli("model", "shadow", good, "1", "--for", "10m")
        C.check("shadow of the retired version 1 started (--for 10m)", rc == 0, out.strip())
        daemon.proc.send_signal(signal.SIGHUP)
        C.check("SIGHUP cancels it (state cancelled, the note says why, event at the broker)",
                wait_until(lambda: versions(good).get("1", {}).get("state") == "cancelled"
                           and versions(good)["1"]["note"].startswith(
                               "shadow cancelled: configuration reloaded (SIGHUP); learned on")
                           and event(good, "cancelled", "1"), 15, 0.3),
                json.dumps(versions(good).get("1")))
        C.check("the active version stays after the cancel", active(good) == "2")

        # An evaluation survives a restart: state "shadow" in the table -> restarted.
        rc, out = daemon.cli("model", "shadow", bad, "2", "--for", "10m")
        C.check("shadow of the rejected version started again", rc == 0, out.strip())
        C.check("daemon stops", daemon.stop() == 0)
        procs.append(daemon.start())
        C.check("daemon up again", daemon.up())
        resumed = wait_until(lambda: in_shadow(bad), 15, 0.3)
        C.check("the evaluation resumed after the restart", resumed, str(resumed))
        C.check("the resume is logged", "restarted after a daemon restart" in daemon.log())
        C.check("daemon stops cleanly", daemon.stop() == 0)
        C.check("the whole test took under 2 minutes", time.monotonic() - t_start < 120,
                f"{time.monotonic() - t_start:.0f} s")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        if col:
            col.stop()
        if broker:
            broker.stop()
        if daemon and C.failed:
            print("---- daemon log (tail) ----")
            print("\n".join(daemon.log().splitlines()[-60:]))
    if not C.failed:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{C.passed} passed, {C.failed} failed")
    return 1 if C.failed else 0


if __name__ == "__main__":
    sys.exit(main())
