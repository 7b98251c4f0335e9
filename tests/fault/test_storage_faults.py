#!/usr/bin/python3
"""Storage faults under the whole daemon (issue 7, docs/reliability.md). The real vibgated runs
against the plant simulator and a real mosquitto broker with the fault-injecting SQLite VFS
preloaded (tests/fault/fault_vfs_preload.cpp, rules written to a control file), and:

  1. disk full while a bearing fault develops: the daemon stays up, keeps ingesting, scoring and
     alarming locally — `vibgate assets` and the Modbus facade (heartbeat, asset update counters,
     alarm bits) go on — and reports the fault in `vibgate status`, the facade's storage-ok
     register and one log line;
  2. space returns: it recovers by itself (status, facade, log), commits what it kept in memory
     — results of the full period, the alert raised during it — and delivers all of it; nothing
     was refused;
  3. the Nth write failing once, looped over N, at run time: recovered each time;
  4. the database cannot be opened at start: a one-line error naming the file, exit code 1;
     starts normally once the fault is gone;
  5. power loss: writes held until fsync (VIBGATE_FAULT_VFS_POWERLOSS), SIGKILL = power cut;
     after restart the file is intact, every alert event the broker had received is stored,
     results lost are counted (allowed with the default durability), and no message id that was
     delivered is used again for a different record.

Usage: test_storage_faults.py [--build build]. Loopback only; every wait bounded; every process
stopped by PID. Prints the measured figures; exits 1 if a check failed.
"""

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "uplink"))
sys.path.insert(0, os.path.join(HERE, "..", "sim"))
from checks import Checks, wait_until  # noqa: E402
import mqtt_env  # noqa: E402
from test_sim_mbpoll import mbpoll, regs  # noqa: E402  (tests/sim/test_sim_mbpoll.py)
from plant import Gateway, json_records, make_plant  # noqa: E402  (tests/fault/plant.py)

def set_rule(ctl, rule):
    tmp = ctl + ".tmp"
    with open(tmp, "w") as f:
        f.write(rule + "\n")
    os.replace(tmp, ctl)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..", "build"))
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    gw_dir = os.path.join(build, "gateway")
    preload = os.path.join(build, "tests", "libvibgate_fault_vfs_preload.so")
    C = Checks()
    work = tempfile.mkdtemp(prefix="storage-faults-", dir=build)
    state = os.path.join(work, "state")
    os.makedirs(state)
    sock = os.path.join(state, "vibgate.sock")
    db = os.path.join(state, "vibgate.db")
    ctl = os.path.join(work, "fault.rule")
    set_rule(ctl, "ok")
    procs = []
    figures = {}
    gw = None
    try:
        broker = mqtt_env.Broker(os.path.join(work, "broker"))
        broker.start(timeout=15)
        col = mqtt_env.Collector(broker.port, topics=("vibgate/#",))
        C.check("collector connected", col.wait_connected(10))
        sim_cmd, cfg, names, facade_port = make_plant(gw_dir, work, state, sock, broker.port,
                                                      "faults", fault_start=25)
        sim = subprocess.Popen(sim_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(sim)
        gw = Gateway(gw_dir, cfg, sock, os.path.join(work, "vibgated.log"), ctl, preload)

        def status():
            return gw.json("status") or {}

        def learned():
            m = gw.json("model", "list")
            return m is not None and len([x for x in m if x["state"] == "active"]) == len(names)

        def level():
            a = gw.json("assets") or []
            return max([x.get("alarm_level", 0) for x in a] or [0])

        def health():  # the facade's gateway health block (input registers 31001..)
            return regs(facade_port, 1, 1001, 16, "3")

        def asset_updates():  # offset 9 of each asset block: updates (one per scored window)
            out = []
            for i in range(len(names)):
                r = regs(facade_port, 1, 16 * i + 1, 16, "3")
                out.append(None if r is None else r[9])
            return out

        # ---- 0. learn the baselines with a healthy disk
        procs.append(gw.start())
        C.check("daemon up with the fault VFS preloaded", gw.up())
        C.check("the fault VFS is the daemon's SQLite VFS", "fault-vfs: installed" in gw.log())
        C.check("baselines learned before the bearing fault appears", wait_until(learned, 40, 0.5))

        # ---- 1. disk full while the fault develops
        t_full = time.time()
        set_rule(ctl, "full")
        s = wait_until(lambda: (lambda st: st if st.get("storage_ok") is False else None)(status()),
                       15)
        C.check("vibgate status reports the storage fault", s is not None and
                "full" in s.get("storage_error", "").lower(), str(s and s.get("storage_error")))
        C.check("one log line names the store and the fault",
                wait_until(lambda: "storage " + db in gw.log() and "rows kept in memory" in gw.log(), 5))
        h1, u1 = health(), asset_updates()
        time.sleep(3)
        h2, u2 = health(), asset_updates()
        C.check("the facade answers and its storage-ok register reads 0",
                h1 is not None and h2 is not None and h2[4] == 0, str(h2))
        C.check("the facade heartbeat advances (the loop is not blocked)",
                h1 is not None and h2 is not None and h2[2] != h1[2], f"{h1} -> {h2}")
        C.check("ingest and scoring go on: every asset's update counter advances",
                None not in u1 + u2 and all(b != a for a, b in zip(u1, u2)), f"{u1} -> {u2}")
        lv = wait_until(lambda: level() >= 2, 60, 0.5)
        C.check("the bearing fault alarms locally while the disk is full", lv)
        rc, bits, _ = mbpoll(facade_port, 1, 1, 2 * len(names), "1")
        alarm_bits = [bits.get(2 * i + 2) for i in range(len(names))]  # 10002, 10004, ...
        C.check("the facade's alarm discrete inputs show it", rc == 0 and "1" in alarm_bits,
                str(bits))
        s = status()
        C.check("still failing (no row written meanwhile)", s.get("storage_ok") is False)
        queued_full = time.time() - t_full
        t_ok = time.time()

        # ---- 2. space returns
        set_rule(ctl, "ok")
        C.check("status recovers by itself",
                wait_until(lambda: status().get("storage_ok") is True, 10))
        C.check("the log says so", wait_until(lambda: "writing again" in gw.log(), 5))
        h3 = health()
        C.check("the facade's storage-ok register reads 1 again", h3 is not None and h3[4] == 1,
                str(h3))

        def drained():
            q = gw.json("queue")
            return q if q and q["depth"] == 0 and q["uplink_connected"] else None
        C.check("the backlog of the full period drains", wait_until(drained, 60, 0.5))
        counters = status().get("counters", {})
        C.check("nothing was refused or failed for good",
                counters.get("vibgate_store_refused_rows_total", -1) == 0 and
                counters.get("vibgate_store_errors_total", -1) == 0,
                {k: v for k, v in counters.items() if "store" in k})
        con = sqlite3.connect(db)
        n_full = con.execute("SELECT count(*) FROM results WHERE wall_ms BETWEEN ? AND ?",
                             (int(t_full * 1000) + 1000, int(t_ok * 1000) - 1000)).fetchone()[0]
        expected = (t_ok - t_full - 2.0) / 0.5 * len(names)
        C.check(f"results of the full period were kept and committed ({n_full} of ~{expected:.0f})",
                n_full >= 0.6 * expected, n_full)
        n_alert = con.execute("SELECT count(*) FROM alerts WHERE raised_ms BETWEEN ? AND ?",
                              (int(t_full * 1000), int(t_ok * 1000))).fetchone()[0]
        C.check("the alert raised while the disk was full is stored", n_alert >= 1, n_alert)
        full_ids = {r[0] for r in con.execute(
            "SELECT outbox_id FROM results WHERE wall_ms BETWEEN ? AND ? AND outbox_id IS NOT NULL",
            (int(t_full * 1000), int(t_ok * 1000)))}
        con.close()
        time.sleep(1.0)
        got = json_records(col)
        C.check("every result of the full period reached the broker",
                full_ids and full_ids <= set(got), sorted(full_ids - set(got))[:5])
        C.check("the alert reached the broker", any(
            r.get("kind") == "alert" and int(t_full * 1000) <= r.get("ts", 0) <= int(t_ok * 1000)
            for r in got.values()))
        figures["full"] = (queued_full, n_full, n_alert)

        # ---- 3. the Nth write fails once, looped over N, at run time
        survived = 0
        ns = [1, 2, 3, 5, 8, 13, 21, 34]
        for n in ns:
            before = gw.log().count("fault-vfs: injected")
            set_rule(ctl, f"fail write {n}")
            hit = wait_until(lambda: gw.log().count("fault-vfs: injected") > before, 15)
            ok = hit and wait_until(lambda: status().get("storage_ok") is True, 10)
            survived += bool(ok and gw.proc.poll() is None)
        set_rule(ctl, "ok")
        C.check(f"the Nth write failing (N = {ns}): injected and recovered every time "
                f"({survived}/{len(ns)})", survived == len(ns))
        C.check("nothing refused after the write faults",
                status().get("counters", {}).get("vibgate_store_refused_rows_total", -1) == 0)
        C.check("SIGTERM after the faults: exit 0", gw.stop() == 0)

        # ---- 4. the database cannot be opened at start
        set_rule(ctl, "fail open 1 persist")
        log_before = len(gw.log())
        gw.start()
        try:
            rc = gw.proc.wait(20)
        except subprocess.TimeoutExpired:
            rc = None
            gw.stop(signal.SIGKILL)
        err = gw.log()[log_before:]
        err_lines = [ln for ln in err.splitlines() if "vibgate.db" in ln and "fault-vfs" not in ln]
        C.check("open fails: exit code 1 with a one-line error naming the database",
                rc == 1 and len(err_lines) >= 1, f"rc={rc} {err[-400:]}")
        set_rule(ctl, "ok")
        gw.start()
        C.check("starts normally once the fault is gone", gw.up())
        C.check("SIGTERM: exit 0", gw.stop() == 0)

        # ---- 5. power loss
        gw.start(power_loss=True)
        C.check("daemon up in power-loss mode", gw.up() and "power-loss mode" in gw.log())
        alert_id = None
        act = gw.json("alerts", "--active") or []
        if act:
            alert_id = act[0]["id"]
        time.sleep(4)
        if alert_id is not None:
            rc, out = gw.cli("ack", str(alert_id), "--note", "power-loss test")
            C.check("an alert acknowledged (an alert event) before the cut", rc == 0, out)
        time.sleep(4)
        mark = len(col.messages("vibgate/"))
        time.sleep(1.0)
        before_cut = json_records(col)
        gw.stop(signal.SIGKILL)
        max_before = max(before_cut) if before_cut else 0
        con = sqlite3.connect(db)
        integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
        C.check("power cut: integrity_check ok", integrity == "ok", integrity)
        stored_results = {r[0] for r in con.execute(
            "SELECT outbox_id FROM results WHERE outbox_id IS NOT NULL")}
        n_events = con.execute("SELECT count(*) FROM alert_events").fetchone()[0]
        con.close()
        got_alert_events = {k for k, r in before_cut.items() if r.get("kind") == "alert"}
        got_results = {k for k, r in before_cut.items() if r.get("kind") == "result"}
        lost_results = got_results - stored_results
        C.check(f"every alert event the broker received is stored ({len(got_alert_events)} "
                f"received, {n_events} stored)", len(got_alert_events) <= n_events)
        figures["power"] = (len(got_results), len(lost_results), len(got_alert_events))
        # After the cut: no delivered msg_id is handed out again.
        gw.start(faults=False)
        C.check("restarts after the power cut", gw.up())
        newer = wait_until(lambda: [m for m in col.messages("vibgate/")[mark:]
                                    if b'"msg_id"' in m.payload and
                                    json.loads(m.payload)["msg_id"] not in before_cut], 20)
        new_ids = [json.loads(m.payload)["msg_id"] for m in (newer or [])]
        C.check(f"new records after the cut continue above every delivered id ({max_before})",
                new_ids and min(new_ids) > max_before, new_ids[:5])
        C.check("SIGTERM: exit 0", gw.stop() == 0)
        col.stop()
    finally:
        if gw:
            gw.stop(signal.SIGKILL)
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        try:
            broker.stop()
        except Exception:  # noqa: BLE001
            pass
    if "full" in figures:
        d, n, a = figures["full"]
        print(f"figure: disk full for {d:.0f} s: {n} results and {a} alert(s) kept in memory, "
              "committed and delivered after space returned; 0 refused")
    if "power" in figures:
        g, lost, a = figures["power"]
        print(f"figure: power cut: {a} alert events delivered, all stored; {g} results "
              f"delivered, {lost} lost by the cut (durability balanced)")
    print(f"{C.passed} passed, {C.failed} failed")
    return 1 if C.failed else 0


if __name__ == "__main__":
    sys.exit(main())
