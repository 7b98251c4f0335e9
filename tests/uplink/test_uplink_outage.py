#!/usr/bin/python3
"""Store-and-forward against a real mosquitto broker (docs/uplink.md).

The driver (tests/uplink/uplink_driver.cpp) wires a real SQLite store to the uplink exactly as the
daemon does; a real subscriber (paho-mqtt) records what reaches the broker; Sparkplug payloads are
decoded by Eclipse Tahu's JavaScript decoder (npm `sparkplug-payload`) and cross-checked with
`protoc --decode`. Every scenario checks counts exactly: every outbox id arrives at least once,
none is missing, order holds per asset within each stream, duplicates carry the same msg_id.

  a) Sparkplug: backlog (historical) then live; topics, bdSeq in NBIRTH, seq continuity and
     wrap, aliases only in DDATA, metric names in DBIRTH, protoc cross-check; rebirth command
  b) JSON profile over MQTT 5: topics, msg_id/session/seq, status retained + Will
  c) broker stopped (SIGTERM) and restarted while live data flows
  d) broker killed (SIGKILL) and restarted while the backlog drains
  e) gateway killed (SIGKILL) mid-drain and restarted: the broker publishes its Will (NDEATH with
     the bdSeq of that connection's NBIRTH); the restarted gateway delivers the rest, bdSeq + 1
  f) connection blackholed (no RST, nothing answers): keepalive notices, the gateway reconnects
  i) credentials from a file: a wrong password is refused with the broker's reason, a missing
     file is named in the error, the right one works, and the password appears in no output
     (stdout or the log on stderr)
  g) TLS: a broker whose certificate the gateway's CA does not sign is refused with a clear
     error and nothing is sent; with the right CA (and a client certificate) everything arrives
  h) Sparkplug primary host: nothing before its STATE is online; paused while offline; rebirth
     and historical delivery when it returns

Environment: VIBGATE_UPLINK_DRIVER (the driver binary), VIBGATE_BUILD_DIR (npm folder for the
Tahu decoder), VIBGATE_SOURCE_DIR. Prints PASS/FAIL lines and `N passed, M failed`.
"""

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
from checks import Checks  # noqa: E402
import mqtt_env  # noqa: E402

SOURCE = os.environ.get("VIBGATE_SOURCE_DIR", os.path.join(HERE, "..", ".."))
PROTO = os.path.join(SOURCE, "uplink", "proto", "sparkplug_b.proto")
DRIVER = os.environ.get("VIBGATE_UPLINK_DRIVER", "")
BUILD = os.environ.get("VIBGATE_BUILD_DIR", tempfile.gettempdir())

C = Checks()


# ---------------------------------------------------------------- the driver

class Driver:
    """uplink_driver as a child process; its JSON lines are collected by a reader thread."""

    def __init__(self, db, port, *args, stderr_path=None):
        cmd = [DRIVER, "--db", db, "--port", str(port)] + [str(a) for a in args]
        self.stderr_path = stderr_path or (db + ".stderr")
        self.err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.err)
        self.lines = queue.Queue()
        self.events = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for raw in self.proc.stdout:
            try:
                ev = json.loads(raw)
            except ValueError:
                continue
            self.events.append(ev)
            self.lines.put(ev)

    def wait_event(self, name, timeout, pred=lambda ev: True):
        end = time.monotonic() + timeout
        for ev in list(self.events):
            if ev.get("ev") == name and pred(ev):
                return ev
        while time.monotonic() < end:
            try:
                ev = self.lines.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                break
            if ev.get("ev") == name and pred(ev):
                return ev
        return None

    def last(self, name):
        for ev in reversed(self.events):
            if ev.get("ev") == name:
                return ev
        return None

    def wait(self, timeout):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.t.join(timeout=5)
        self.err.close()
        return rc

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait(10)

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""


def produce_offline(db, count, alert_every=0, assets="pump1,pump2"):
    """Fills the outbox without an uplink (the gateway ran while the network was down)."""
    d = Driver(db, 1, "--no-uplink", "--produce", count, "--alert-every", alert_every,
               "--assets", assets, "--timeout", 60)
    rc = d.wait(90)
    ev = d.last("produced")
    return rc == 0 and ev is not None and ev["count"] == count


# ---------------------------------------------------------------- decoding what arrived

class Spb:
    """Decoded Sparkplug traffic of one edge node, in arrival order."""

    def __init__(self, messages, decode):
        self.msgs = []  # (topic, type, device, decoded dict, raw bytes)
        spb = [m for m in messages if m[1].startswith("spBv1.0/")]
        decoded = decode([m[2] for m in spb]) if spb else []
        for m, d in zip(spb, decoded):
            parts = m[1].split("/")
            typ = parts[2]
            dev = parts[4] if len(parts) > 4 else None
            self.msgs.append((m[1], typ, dev, d, m[2]))

    def of(self, typ):
        return [m for m in self.msgs if m[1] == typ]


def metric_value(metric):
    v = metric.get("value")
    if isinstance(v, str) and v.lstrip("-").isdigit():
        return int(v)
    return v


def spb_records(spb):
    """DDATA → list of dicts {msg_id, asset, lane, n, historical, session} using DBIRTH aliases.
    session counts NBIRTHs seen so far (each connection/rebirth starts a new one)."""
    aliases = {}  # (device, alias) -> name
    out = []
    session = 0
    problems = []
    for topic, typ, dev, d, _ in spb.msgs:
        if typ == "NBIRTH":
            session += 1
        elif typ == "DBIRTH":
            for m in d.get("metrics", []):
                aliases[(dev, int(m["alias"]))] = m["name"]
        elif typ == "DDATA":
            rec = {"asset": dev, "session": session, "historical": False}
            for m in d.get("metrics", []):
                if "name" in m and m["name"]:
                    problems.append(f"DDATA metric carries a name: {m['name']}")
                name = aliases.get((dev, int(m.get("alias", -1))))
                if name is None:
                    problems.append(f"DDATA alias {m.get('alias')} of {dev} not in its DBIRTH")
                    continue
                if m.get("isHistorical"):
                    rec["historical"] = True
                if name == "vibgate/msg_id":
                    rec["msg_id"] = int(metric_value(m))
                elif name.endswith("/n"):
                    rec["n"] = int(metric_value(m))
                    rec["lane"] = "alert" if name.startswith("alert/") else "bulk"
            out.append(rec)
    return out, problems


def json_records(messages, prefix="vibgate"):
    out = []
    for _, topic, payload, _, _ in messages:
        if not topic.startswith(prefix + "/") or topic.endswith("/status"):
            continue
        j = json.loads(payload)
        out.append({"msg_id": j["msg_id"], "asset": j["asset"], "lane": j["lane"],
                    "n": j["metrics"].get("n"), "historical": j["historical"],
                    "session": j["session"], "seq": j["seq"], "topic": topic, "kind": j["kind"]})
    return out


def check_delivery(name, recs, expected_ids):
    """Every expected id at least once; duplicates agree; per (session, asset, lane, historical)
    the ids strictly increase; n increases with msg_id per asset and lane."""
    seen = {}
    dup_ok = True
    for r in recs:
        mid = r.get("msg_id")
        key = (r["asset"], r.get("lane"), r.get("n"))
        if mid in seen and seen[mid] != key:
            dup_ok = False
        seen[mid] = key
    missing = sorted(set(expected_ids) - set(seen))
    extra = sorted(set(seen) - set(expected_ids))
    C.check(f"{name}: every stored record arrived", not missing,
            f"{len(missing)} missing, first {missing[:5]}" if missing else
            f"{len(expected_ids)} ids, {len(recs)} messages ({len(recs) - len(seen)} resent)")
    C.check(f"{name}: nothing unexpected", not extra, f"unexpected ids {extra[:5]}")
    C.check(f"{name}: duplicates carry the same msg_id and content", dup_ok)
    last = {}
    order_ok = True
    bad = ""
    for r in recs:
        k = (r["session"], r["asset"], r.get("lane"), r["historical"])
        if k in last and r["msg_id"] <= last[k]:
            order_ok = False
            bad = f"{k}: {r['msg_id']} after {last[k]}"
            break
        last[k] = r["msg_id"]
    C.check(f"{name}: in order per asset within each stream", order_ok, bad)
    by = {}
    n_ok = True
    for mid in sorted(seen):
        asset, lane, n = seen[mid]
        k = (asset, lane)
        if n is not None and k in by and n <= by[k]:
            n_ok = False
        if n is not None:
            by[k] = n
    C.check(f"{name}: per-asset counters follow msg_id order", n_ok)
    return not missing


# ---------------------------------------------------------------- scenarios

def scenario_sparkplug(work, decode):
    with mqtt_env.Broker(os.path.join(work, "a")) as broker:
        col = mqtt_env.Collector(broker.port)
        col.wait_connected(10)
        db = os.path.join(work, "a.db")
        ok = produce_offline(db, 3000, alert_every=50)
        C.check("a: 3000 records stored while offline", ok)
        d = Driver(db, broker.port, "--produce", 1500, "--rate", 750, "--alert-every", 50,
                   "--n-offset", 3000,
                   "--backlog-rate", 1500, "--exit-when-drained", "--timeout", 60,
                   "--state-file", os.path.join(work, "a.state"))
        rc = d.wait(90)
        C.check("a: driver drained and exited", rc == 0, d.stderr()[-500:])
        time.sleep(0.3)
        spb = Spb(col.messages(), decode)
        recs, problems = spb_records(spb)
        C.check("a: DDATA metrics use aliases announced in DBIRTH", not problems, "; ".join(problems[:3]))
        check_delivery("a", recs, range(1, 4501))
        hist = [r for r in recs if r["msg_id"] <= 3000]
        live = [r for r in recs if r["msg_id"] > 3000]
        C.check("a: backlog sent as historical", hist and all(r["historical"] for r in hist))
        C.check("a: live data not historical", live and sum(not r["historical"] for r in live) >= len(live) * 0.9,
                f"{sum(not r['historical'] for r in live)} of {len(live)} live")
        # live data kept flowing while the backlog drained (it is interleaved, not queued behind)
        first_hist_last = max(i for i, r in enumerate(recs) if r["historical"])
        first_live = min(i for i, r in enumerate(recs) if not r["historical"])
        C.check("a: live data flows while the backlog drains", first_live < first_hist_last,
                f"first live at {first_live}, last historical at {first_hist_last}")
        # alerts go ahead of results: every backlog alert arrives before the 500th backlog result
        hist_bulk_pos = [i for i, r in enumerate(recs) if r["historical"] and r.get("lane") == "bulk"]
        hist_alert_pos = [i for i, r in enumerate(recs) if r["historical"] and r.get("lane") == "alert"]
        C.check("a: backlog alerts are sent before backlog results",
                len(hist_alert_pos) == 60 and len(hist_bulk_pos) > 500 and
                max(hist_alert_pos) < hist_bulk_pos[500],
                f"{len(hist_alert_pos)} alerts, last at {max(hist_alert_pos or [0])}")
        # the backlog cap (1500 msg/s) holds: 3000 historical messages take about 2 s
        times = [m[0] for m in col.messages() if "/DDATA/" in m[1]]
        hist_t = [t for t, r in zip(times, recs) if r["historical"]]
        span = hist_t[-1] - hist_t[0] if hist_t else 0
        C.check("a: backlog drain respects the rate cap (3000 at 1500/s take >= 1.6 s)",
                1.6 <= span < 6, f"{span:.2f} s")
        # topics and births
        nb = spb.of("NBIRTH")
        C.check("a: one NBIRTH on spBv1.0/vibgate/NBIRTH/gateway",
                len(nb) == 1 and nb[0][0] == "spBv1.0/vibgate/NBIRTH/gateway")
        names = {m["name"]: m for m in nb[0][3]["metrics"]} if nb else {}
        C.check("a: NBIRTH has bdSeq and Node Control/Rebirth",
                "bdSeq" in names and "Node Control/Rebirth" in names)
        C.check("a: NBIRTH seq 0", nb and int(nb[0][3].get("seq", -1)) == 0)
        devs = sorted({m[2] for m in spb.of("DBIRTH")})
        C.check("a: DBIRTH for each asset", devs == ["pump1", "pump2"], str(devs))
        db0 = spb.of("DBIRTH")[0][3]["metrics"] if spb.of("DBIRTH") else []
        C.check("a: DBIRTH metrics have names, aliases and datatypes",
                db0 and all(m.get("name") and "alias" in m and m.get("type") for m in db0))
        # seq continuity over all node messages (NBIRTH, DBIRTH, DDATA) in arrival order
        seqs = [int(m[3]["seq"]) for m in spb.msgs if m[1] in ("NBIRTH", "DBIRTH", "DDATA")]
        cont = all(seqs[i] == (seqs[i - 1] + 1) % 256 for i in range(1, len(seqs)))
        C.check("a: seq continuous 0..255 with wrap", cont and 255 in seqs and len(seqs) > 300,
                f"{len(seqs)} messages")
        # second decoder: protoc
        dd = spb.of("DDATA")[0][4]
        txt = mqtt_env.protoc_decode(PROTO, "vibgate.sparkplug.Payload", dd)
        C.check("a: protoc decodes DDATA (alias, is_historical, no names)",
                "alias:" in txt and "is_historical: true" in txt and "name:" not in txt, txt[:200])
        col.stop()


def scenario_rebirth(work, decode):
    with mqtt_env.Broker(os.path.join(work, "r")) as broker:
        col = mqtt_env.Collector(broker.port)
        col.wait_connected(10)
        db = os.path.join(work, "r.db")
        d = Driver(db, broker.port, "--produce", 3000, "--rate", 500, "--exit-when-drained",
                   "--timeout", 30)
        d.wait_event("stats", 10, lambda ev: ev["online"])
        time.sleep(1.0)
        # garbage on the command topic is logged and ignored, not taken for a rebirth
        subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-t",
                        "spBv1.0/vibgate/NCMD/gateway", "-m", "\xff not protobuf"],
                       check=True, timeout=10)
        cmd = os.path.join(work, "ncmd.bin")
        with open(cmd, "wb") as f:
            f.write(mqtt_env.protoc_encode(PROTO, "vibgate.sparkplug.Payload",
                                           'timestamp: 1 metrics { name: "Node Control/Rebirth" '
                                           'datatype: 11 boolean_value: true }'))
        subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-t",
                        "spBv1.0/vibgate/NCMD/gateway", "-f", cmd], check=True, timeout=10)
        rc = d.wait(60)
        C.check("rebirth: driver drained", rc == 0, d.stderr()[-300:])
        time.sleep(0.3)
        spb = Spb(col.messages(), decode)
        nb = spb.of("NBIRTH")
        C.check("rebirth: a second NBIRTH with seq 0 and the same bdSeq",
                len(nb) == 2 and int(nb[1][3]["seq"]) == 0 and
                [m for m in nb[0][3]["metrics"] if m["name"] == "bdSeq"][0]["value"] ==
                [m for m in nb[1][3]["metrics"] if m["name"] == "bdSeq"][0]["value"],
                f"{len(nb)} NBIRTH")
        ex = d.last("exit")
        C.check("rebirth: counted (the garbage command was not)", ex and ex["rebirths"] == 1)
        C.check("rebirth: garbage NCMD reported in one line",
                "NCMD payload is not a Sparkplug B payload" in d.stderr(), d.stderr()[-300:])
        recs, problems = spb_records(spb)
        check_delivery("rebirth", recs, range(1, 3001))
        col.stop()


def scenario_json(work):
    with mqtt_env.Broker(os.path.join(work, "b")) as broker:
        col = mqtt_env.Collector(broker.port)
        col.wait_connected(10)
        db = os.path.join(work, "b.db")
        ok = produce_offline(db, 1000, alert_every=10)
        C.check("b: 1000 stored offline", ok)
        d = Driver(db, broker.port, "--profile", "json", "--mqtt", "5", "--produce", 1000,
                   "--n-offset", 1000,
                   "--rate", 1000, "--alert-every", 10, "--backlog-rate", 2000,
                   "--exit-when-drained", "--timeout", 60)
        rc = d.wait(90)
        C.check("b: driver drained", rc == 0, d.stderr()[-300:])
        time.sleep(0.3)
        msgs = col.messages()
        recs = json_records(msgs)
        check_delivery("b", recs, range(1, 2001))
        topics_ok = all(r["topic"] == f"vibgate/gateway/{r['asset']}/{r['kind']}" for r in recs)
        C.check("b: topics <prefix>/<node>/<asset>/<kind>", topics_ok)
        C.check("b: alerts on lane alert, kind alert",
                all((r["kind"] == "alert") == (r["lane"] == "alert") for r in recs) and
                sum(r["kind"] == "alert" for r in recs) >= 200)
        seqs = [r["seq"] for r in recs]
        C.check("b: seq numbers the publications of the session", seqs == list(range(len(seqs))))
        status = [m for m in msgs if m[1] == "vibgate/gateway/status"]
        C.check("b: status online then offline (clean stop)",
                len(status) >= 2 and json.loads(status[0][2])["online"] is True and
                json.loads(status[-1][2])["online"] is False)
        col.stop()


def outage_scenario(work, decode, label, kill_broker):
    """Live data at 400/s; the broker goes away for ~2 s and comes back on the same port. The
    gateway reaches the broker through a proxy held in 'refuse' until the subscriber is back, so
    the subscriber cannot miss what the gateway resends."""
    with mqtt_env.Broker(os.path.join(work, label), persistence=True) as broker:
        proxy = mqtt_env.TcpProxy(broker.port)
        col = mqtt_env.Collector(broker.port, client_id=f"collector-{label}")
        col.wait_connected(10)
        db = os.path.join(work, label + ".db")
        d = Driver(db, proxy.port, "--produce", 2400, "--rate", 400, "--alert-every", 40,
                   "--keepalive", 5, "--exit-when-drained", "--timeout", 60)
        d.wait_event("stats", 10, lambda ev: ev["acked"] > 300)
        proxy.set_mode("refuse")
        if kill_broker:
            broker.kill()
        else:
            broker.stop()
        time.sleep(2.0)
        broker.restart()
        col.wait_connected(15)
        proxy.set_mode("forward")
        rc = d.wait(60)
        C.check(f"{label}: driver drained after the outage", rc == 0, d.stderr()[-300:])
        ex = d.last("exit")
        C.check(f"{label}: the gateway reconnected", ex and ex["connects"] >= 2,
                json.dumps(ex)[:200] if ex else "")
        time.sleep(0.3)
        recs, problems = spb_records(Spb(col.messages(), decode))
        check_delivery(label, recs, range(1, 2401))
        col.stop()
        proxy.close()


def scenario_gateway_kill(work, decode):
    with mqtt_env.Broker(os.path.join(work, "e")) as broker:
        col = mqtt_env.Collector(broker.port)
        col.wait_connected(10)
        db = os.path.join(work, "e.db")
        state = os.path.join(work, "e.state")
        ok = produce_offline(db, 20000, alert_every=100)
        C.check("e: 20000 stored offline", ok)
        d = Driver(db, broker.port, "--backlog-rate", 4000, "--keepalive", 5,
                   "--state-file", state, "--timeout", 60)
        d.wait_event("stats", 15, lambda ev: ev["acked"] > 2000)
        d.kill(signal.SIGKILL)
        # the broker publishes the Will once it notices the dead connection (at once: RST)
        col.wait_for(lambda msgs: any("/NDEATH/" in m[1] for m in msgs), 10)
        d2 = Driver(db, broker.port, "--backlog-rate", 0, "--exit-when-drained",
                    "--state-file", state, "--timeout", 60)
        rc = d2.wait(90)
        C.check("e: restarted gateway drained the rest", rc == 0, d2.stderr()[-300:])
        time.sleep(0.3)
        spb = Spb(col.messages(), decode)
        recs, problems = spb_records(spb)
        check_delivery("e", recs, range(1, 20001))
        nb = spb.of("NBIRTH")
        nd = spb.of("NDEATH")

        def bd(msg):
            return int(metric_value([m for m in msg[3]["metrics"] if m["name"] == "bdSeq"][0]))
        C.check("e: NDEATH (Will) carries the bdSeq of the killed connection's NBIRTH",
                len(nb) == 2 and len(nd) >= 1 and bd(nd[0]) == bd(nb[0]),
                f"NBIRTH {[bd(m) for m in nb]} NDEATH {[bd(m) for m in nd]}")
        C.check("e: bdSeq grew by one across the restart", len(nb) == 2 and bd(nb[1]) == (bd(nb[0]) + 1) % 256)
        col.stop()


def scenario_blackhole(work, decode):
    with mqtt_env.Broker(os.path.join(work, "f")) as broker:
        proxy = mqtt_env.TcpProxy(broker.port)
        col = mqtt_env.Collector(broker.port)
        col.wait_connected(10)
        db = os.path.join(work, "f.db")
        d = Driver(db, proxy.port, "--produce", 4000, "--rate", 250, "--keepalive", 5,
                   "--exit-when-drained", "--timeout", 60)
        d.wait_event("stats", 10, lambda ev: ev["acked"] > 300)
        proxy.set_mode("blackhole")
        t0 = time.monotonic()
        ev = d.wait_event("stats", 20, lambda ev: not ev["connected"])
        noticed = time.monotonic() - t0
        C.check("f: keepalive (5 s) notices the blackholed connection within 12 s",
                ev is not None and noticed < 12, f"after {noticed:.1f} s")
        time.sleep(1.0)
        proxy.set_mode("forward")
        rc = d.wait(60)
        C.check("f: driver drained after the path came back", rc == 0, d.stderr()[-300:])
        time.sleep(0.3)
        recs, problems = spb_records(Spb(col.messages(), decode))
        check_delivery("f", recs, range(1, 4001))
        col.stop()
        proxy.close()


def scenario_tls(work, decode):
    pki = mqtt_env.make_pki(os.path.join(work, "pki"))
    with mqtt_env.Broker(os.path.join(work, "g"), tls=pki, require_certificate=True) as broker:
        col = mqtt_env.Collector(broker.port)
        col.wait_connected(10)
        db = os.path.join(work, "g_bad.db")
        d = Driver(db, broker.tls_port, "--produce", 100, "--tls-ca", pki.wrong_ca_cert,
                   "--tls-cert", pki.client_cert, "--tls-key", pki.client_key,
                   "--timeout", 4)
        d.wait(20)
        ex = d.last("exit")
        err = ex["last_error"] if ex else ""
        C.check("g: wrong CA refused with a clear error",
                ex and ex["connects"] == 0 and "certificate" in err.lower(), err)
        C.check("g: nothing sent with the wrong CA", ex and ex["sent"] == 0 and ex["depth_bulk"] == 100)
        db = os.path.join(work, "g_ok.db")
        d = Driver(db, broker.tls_port, "--produce", 500, "--tls-ca", pki.ca_cert,
                   "--tls-cert", pki.client_cert, "--tls-key", pki.client_key,
                   "--exit-when-drained", "--timeout", 30)
        rc = d.wait(40)
        C.check("g: right CA + client certificate: drained", rc == 0, d.stderr()[-300:])
        time.sleep(0.3)
        recs, problems = spb_records(Spb(col.messages(), decode))
        check_delivery("g", recs, range(1, 501))
        col.stop()


def scenario_credentials(work, decode):
    users = {"gateway": "s3cret-pw", "reader": "r3ader"}
    with mqtt_env.Broker(os.path.join(work, "i"), users=users) as broker:
        col = mqtt_env.Collector(broker.port, username="reader", password="r3ader")
        col.wait_connected(10)
        bad = os.path.join(work, "bad.cred")
        with open(bad, "w") as f:
            f.write("gateway\nwrong-pw-xyz\n")
        d = Driver(os.path.join(work, "i_bad.db"), broker.port, "--produce", 50,
                   "--credentials-file", bad, "--timeout", 3)
        d.wait(20)
        ex = d.last("exit")
        err = d.stderr()
        C.check("i: wrong password refused with the broker's reason",
                ex and ex["connects"] == 0 and "not authori" in ex["last_error"].lower(),
                ex["last_error"] if ex else "")
        C.check("i: the password is never logged", "wrong-pw-xyz" not in err and
                "wrong-pw-xyz" not in json.dumps(d.events))
        d = Driver(os.path.join(work, "i_missing.db"), broker.port, "--produce", 10,
                   "--credentials-file", os.path.join(work, "absent.cred"), "--timeout", 2)
        d.wait(20)
        ex = d.last("exit")
        C.check("i: a missing credentials file is a clear error naming it",
                ex and ex["connects"] == 0 and
                ex["last_error"] == f"credentials_file {os.path.join(work, 'absent.cred')}: cannot open",
                ex["last_error"] if ex else "")
        good = os.path.join(work, "good.cred")
        with open(good, "w") as f:
            f.write("gateway\ns3cret-pw\n")
        d = Driver(os.path.join(work, "i_ok.db"), broker.port, "--produce", 300,
                   "--credentials-file", good, "--exit-when-drained", "--timeout", 30)
        rc = d.wait(40)
        C.check("i: right credentials: drained", rc == 0, d.stderr()[-300:])
        C.check("i: the password is never logged (success path)", "s3cret-pw" not in d.stderr())
        os.chmod(good, 0o644)
        d = Driver(os.path.join(work, "i_loose.db"), broker.port, "--produce", 10,
                   "--credentials-file", good, "--exit-when-drained", "--timeout", 30)
        rc = d.wait(40)
        err = d.stderr()
        C.check("i: a group/world-readable credentials file still works, with one warning "
                "naming it and its mode", rc == 0 and err.count("readable by group or others") == 1
                and good in err and "mode 644" in err, err[-300:])
        os.chmod(good, 0o600)
        d = Driver(os.path.join(work, "i_tight.db"), broker.port, "--produce", 10,
                   "--credentials-file", good, "--exit-when-drained", "--timeout", 30)
        rc = d.wait(40)
        C.check("i: no warning for a 0600 credentials file", rc == 0 and
                "readable by group or others" not in d.stderr(), d.stderr()[-300:])
        time.sleep(0.3)
        recs, problems = spb_records(Spb(col.messages(), decode))
        check_delivery("i", recs, range(1, 301))
        col.stop()
    # MQTT 5: a broker that refuses the publishes (ACL: read-only) answers PUBACK with reason
    # 0x87; nothing may leave the outbox.
    acl = os.path.join(work, "acl")
    with open(acl, "w") as f:
        f.write("user gateway\ntopic read #\n")
    with mqtt_env.Broker(os.path.join(work, "i2"), users={"gateway": "s3cret-pw"},
                         extra_conf=[f"acl_file {acl}"]) as broker:
        good = os.path.join(work, "good.cred")
        d = Driver(os.path.join(work, "i_acl.db"), broker.port, "--produce", 50, "--profile",
                   "json", "--mqtt", "5", "--credentials-file", good, "--timeout", 4)
        d.wait(20)
        ex = d.last("exit")
        C.check("i: MQTT 5 PUBACK refusal (not authorized) acknowledges nothing",
                ex and ex["acked"] == 0 and ex["depth_bulk"] == 50 and
                "not authori" in ex["last_error"].lower(), json.dumps(ex)[:300] if ex else "")


def scenario_primary_host(work, decode):
    with mqtt_env.Broker(os.path.join(work, "h")) as broker:
        col = mqtt_env.Collector(broker.port)
        col.wait_connected(10)
        db = os.path.join(work, "h.db")
        d = Driver(db, broker.port, "--produce", 3000, "--rate", 500, "--primary-host", "scada",
                   "--exit-when-drained", "--timeout", 40)
        d.wait_event("stats", 10, lambda ev: ev["connected"])
        time.sleep(1.0)
        C.check("h: nothing published before the primary host is online",
                not [m for m in col.messages() if m[1].startswith("spBv1.0/vibgate/")])

        def state(online):
            body = json.dumps({"online": online, "timestamp": int(time.time() * 1000)})
            subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-r", "-q", "1", "-t",
                            "spBv1.0/STATE/scada", "-m", body], check=True, timeout=10)
        # a STATE that is not JSON is reported and changes nothing
        subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-q", "1", "-t",
                        "spBv1.0/STATE/scada", "-m", "{online: yes"], check=True, timeout=10)
        time.sleep(0.5)
        C.check("h: a malformed STATE is ignored with a clear line",
                not [m for m in col.messages() if m[1].startswith("spBv1.0/vibgate/")] and
                "not a Sparkplug STATE payload" in d.stderr(), d.stderr()[-300:])
        state(True)
        d.wait_event("stats", 10, lambda ev: ev["online"])
        time.sleep(1.0)
        state(False)
        d.wait_event("stats", 10, lambda ev: not ev["online"])
        time.sleep(0.5)  # what was already on its way
        n_off = col.count("spBv1.0/vibgate/")
        time.sleep(1.0)
        n_off2 = col.count("spBv1.0/vibgate/")
        C.check("h: nothing published while the primary host is offline", n_off2 == n_off,
                f"{n_off2 - n_off} messages")
        state(True)
        rc = d.wait(60)
        C.check("h: drained after the host returned", rc == 0, d.stderr()[-300:])
        time.sleep(0.3)
        spb = Spb(col.messages(), decode)
        C.check("h: rebirth when the host returned", len(spb.of("NBIRTH")) == 2)
        recs, problems = spb_records(spb)
        check_delivery("h", recs, range(1, 3001))
        hist_after = [r for r in recs if r["session"] == 2 and r["historical"]]
        C.check("h: what waited went out as historical", len(hist_after) > 0)
        col.stop()


def main():
    if not DRIVER or not os.path.exists(DRIVER):
        print("FAIL uplink driver not found (set VIBGATE_UPLINK_DRIVER)")
        return 1
    decode = mqtt_env.node_sparkplug_decoder(BUILD)
    with tempfile.TemporaryDirectory(prefix="vibgate-uplink-") as work:
        scenarios = [
            ("sparkplug", lambda: scenario_sparkplug(work, decode)),
            ("rebirth", lambda: scenario_rebirth(work, decode)),
            ("json", lambda: scenario_json(work)),
            ("broker-stop", lambda: outage_scenario(work, decode, "c", False)),
            ("broker-kill", lambda: outage_scenario(work, decode, "d", True)),
            ("gateway-kill", lambda: scenario_gateway_kill(work, decode)),
            ("blackhole", lambda: scenario_blackhole(work, decode)),
            ("tls", lambda: scenario_tls(work, decode)),
            ("credentials", lambda: scenario_credentials(work, decode)),
            ("primary-host", lambda: scenario_primary_host(work, decode)),
        ]
        only = sys.argv[1:]
        for name, fn in scenarios:
            if only and name not in only:
                continue
            t0 = time.monotonic()
            try:
                fn()
            except Exception as e:  # a scenario that crashes is a failure, the others still run
                C.check(f"{name}: ran without error", False, repr(e))
            print(f"-- {name}: {time.monotonic() - t0:.1f} s", flush=True)
    print(f"{C.passed} passed, {C.failed} failed")
    return 1 if C.failed else 0


if __name__ == "__main__":
    sys.exit(main())
