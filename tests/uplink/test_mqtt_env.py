#!/usr/bin/python3
"""Self-test of tests/uplink/mqtt_env.py, the MQTT test infrastructure of the uplink (issue 4).

Run as `/usr/bin/python3 test_mqtt_env.py` (ctest sets VIBGATE_BUILD_DIR; without it the Tahu
decoder is installed under /tmp). Real components only: mosquitto on free loopback ports,
mosquitto_pub / paho clients, openssl, protoc, node + npm `sparkplug-payload` (npm needs the
network the first time; a failed install is a FAIL, not a skip). Every wait is bounded. Prints
one line per check and a final `N passed, M failed`; exits 1 if any check failed.

  a) broker start/readiness, Collector receives mosquitto_pub messages (QoS 0/1, retained,
     topic filters), a 50 000-message QoS 0 burst arrives complete and in order, a second broker
     on a busy port fails with a clear error;
  b) a Sparkplug payload made with `protoc --encode` decodes through Eclipse Tahu's JS decoder
     (names, aliases, datatypes, values, seq, timestamps, historical flag) and protoc --decode;
  c) TcpProxy: forward, refuse (RST of existing and new connections), blackhole (paho with
     keepalive 2 s notices within ~5 s; new connections accepted but never answered), back to
     forward (reconnect; blackholed sockets stay dead);
  d) TLS: right CA accepted, wrong CA refused; require_certificate with/without/wrong client
     certificate; Collector over TLS; password file;
  e) SIGKILL + restart on the same port (Collector reconnects and re-subscribes); SIGTERM +
     restart with persistence keeps the Collector's session and its queued QoS 1 messages.
"""

import math
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
from checks import Checks  # noqa: E402  (tests/checks.py)
import mqtt_env as env  # noqa: E402

PUB = "/usr/bin/mosquitto_pub"
PAYLOAD_TYPE = "vibgate.sparkplug.Payload"


def pub(port, topic, message, *extra, qos=0, timeout=15):
    """mosquitto_pub once; returns (exit code, stderr)."""
    r = subprocess.run([PUB, "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-m", message,
                        "-q", str(qos), *extra], capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stderr.strip()


def raw_connect_packet(client_id="raw-probe"):
    cid = client_id.encode()
    body = b"\x00\x04MQTT\x04\x02\x00\x0a" + struct.pack("!H", len(cid)) + cid
    return bytes([0x10, len(body)]) + body


def test_broker_and_collector(c, work):
    with env.Broker(os.path.join(work, "a")) as b:
        c.check("a broker running with a pid on its port", b.pid and b.port and b.running,
                f"pid {b.pid} port {b.port}")
        with env.Collector(b.port, topics=["vib/#", "other"]) as col:
            c.check("a collector connected and subscribed", col.wait_connected(10))
            rc0, e0 = pub(b.port, "vib/x", "hello", qos=0)
            rc1, e1 = pub(b.port, "vib/y", "world", qos=1)
            rc2, e2 = pub(b.port, "other", "kept", "-r", qos=1)
            rc3, _ = pub(b.port, "ignored", "no", qos=0)
            c.check("a mosquitto_pub succeeded", (rc0, rc1, rc2, rc3) == (0, 0, 0, 0),
                    f"{rc0} {e0} {rc1} {e1} {rc2} {e2} {rc3}")
            ok = col.wait_count(3, 10)
            msgs = col.messages()
            got = sorted((m.topic, m.payload, m.qos, m.retain) for m in msgs)
            c.check("a collector got exactly the subscribed messages with qos", ok and got == [
                ("other", b"kept", 1, False), ("vib/x", b"hello", 0, False),
                ("vib/y", b"world", 1, False)], repr(got))
            c.check("a messages(topic_prefix)", len(col.messages("vib/")) == 2)
            c.check("a monotonic arrival times", all(m.t <= time.monotonic() for m in msgs))
            col.clear()

            n = 50_000
            p = subprocess.Popen([PUB, "-h", "127.0.0.1", "-p", str(b.port), "-t", "vib/burst",
                                  "-q", "0", "-l"], stdin=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            t0 = time.monotonic()
            _, err = p.communicate(b"".join(b"%08d\n" % i for i in range(n)), timeout=60)
            ok = col.wait_count(n, 60, "vib/burst")
            dt = time.monotonic() - t0
            payloads = [m.payload for m in col.messages("vib/burst")]
            c.check("a 50000-message QoS 0 burst complete and in order",
                    ok and payloads == [b"%08d" % i for i in range(n)],
                    f"{len(payloads)} received in {dt:.2f} s ({n / dt:.0f} msg/s), "
                    f"pub rc {p.returncode} {err.decode().strip()}")

        with env.Collector(b.port, topics=["other"]) as late:
            ok = late.wait_count(1, 10)
            m = late.messages()
            c.check("a retained message delivered with retain flag",
                    ok and m[0].payload == b"kept" and m[0].retain, repr(m[:1]))

        second = env.Broker(os.path.join(work, "a2"), port=b.port)
        try:
            second.start(timeout=5)
            c.check("a second broker on a busy port fails", False, "it started")
            second.stop()
        except RuntimeError as e:
            msg = str(e)
            c.check("a second broker on a busy port fails clearly",
                    "already in use" in msg and str(b.port) in msg, msg.splitlines()[0][:200])
        bad = env.Broker(os.path.join(work, "a3"), extra_conf=["no_such_option 1"])
        try:
            bad.start(timeout=5)
            c.check("a broker with a config error fails", False, "it started")
            bad.stop()
        except RuntimeError as e:
            msg = str(e)
            c.check("a broker with a config error fails with the log tail",
                    "exited" in msg and "no_such_option" in msg, msg.replace("\n", " | ")[:300])
        c.check("a log_tail has the connection log", "New client connected" in b.log_tail(200))
    c.check("a broker stopped", b.pid is None)


SPARKPLUG_TEXT = """
timestamp: 1700000000123
seq: 42
metrics { name: "bdSeq" timestamp: 1700000000123 datatype: 8 long_value: 3 }
metrics { name: "Node Control/Rebirth" alias: 1 timestamp: 1700000000123 datatype: 11
          boolean_value: false }
metrics { name: "pump1/rms" alias: 2 timestamp: 1700000000000 datatype: 9 float_value: 0.125 }
metrics { alias: 2 timestamp: 1699999999000 datatype: 9 float_value: -1.5 is_historical: true }
metrics { name: "pump1/temp" alias: 3 timestamp: 1700000000001 datatype: 10
          double_value: -273.15 }
metrics { name: "i8" alias: 4 datatype: 1 int_value: 4294967295 }
metrics { name: "i16" alias: 5 datatype: 2 int_value: 4294934528 }
metrics { name: "i32" alias: 6 datatype: 3 int_value: 2147483648 }
metrics { name: "u16" alias: 7 datatype: 6 int_value: 65535 }
metrics { name: "i64" alias: 8 datatype: 4 long_value: 18446744073709551615 }
metrics { name: "u64" alias: 9 datatype: 8 long_value: 18446744073709551615 }
metrics { name: "u32" alias: 10 datatype: 7 long_value: 4294967295 }
metrics { name: "dt" alias: 11 datatype: 13 long_value: 1700000000999 }
metrics { name: "state" alias: 12 datatype: 12 string_value: "RUNNING \\303\\244" }
metrics { name: "blob" alias: 13 datatype: 17 bytes_value: "\\000\\001\\377" }
metrics { name: "nan" alias: 14 datatype: 10 double_value: nan }
metrics { name: "off" alias: 15 datatype: 10 is_null: true }
"""


def test_sparkplug(c, work):
    build = os.environ.get("VIBGATE_BUILD_DIR") or os.path.join(tempfile.gettempdir(),
                                                                  "vibgate-mqtt-env")
    proto = env.SPARKPLUG_PROTO
    if not c.check("b sparkplug_b.proto present", os.path.exists(proto), proto):
        return
    try:
        payload = env.protoc_encode(proto, PAYLOAD_TYPE, SPARKPLUG_TEXT)
        c.check("b protoc --encode made a payload", len(payload) > 100, f"{len(payload)} bytes")
    except RuntimeError as e:
        c.check("b protoc --encode made a payload", False, str(e))
        return
    try:
        t0 = time.monotonic()
        decode = env.node_sparkplug_decoder(build)
        c.check("b Tahu sparkplug-payload decoder installed", True,
                f"{time.monotonic() - t0:.1f} s, {build}/npm-sparkplug")
    except RuntimeError as e:
        c.check("b Tahu sparkplug-payload decoder installed", False, str(e))
        return
    try:
        d, empty, bad = decode([payload, b"", b"\xff\xff\xff"])
    except RuntimeError as e:
        c.check("b Tahu decode ran", False, str(e))
        return
    c.check("b payload timestamp and seq", d.get("timestamp") == 1700000000123
            and d.get("seq") == 42, f"{d.get('timestamp')} {d.get('seq')}")
    ms = d.get("metrics", [])
    c.check("b 17 metrics", len(ms) == 17, str(len(ms)))
    if len(ms) != 17:
        return
    by = {}
    for m in ms:
        by.setdefault(m.get("name", f"alias:{m.get('alias')}"), m)
    exp = [  # (key, type, value, alias)
        ("bdSeq", "UInt64", 3, None), ("Node Control/Rebirth", "Boolean", False, 1),
        ("pump1/rms", "Float", 0.125, 2), ("pump1/temp", "Double", -273.15, 3),
        ("i8", "Int8", -1, 4), ("i16", "Int16", -32768, 5), ("i32", "Int32", -2147483648, 6),
        ("u16", "UInt16", 65535, 7), ("i64", "Int64", -1, 8),
        ("u64", "UInt64", 18446744073709551615, 9), ("u32", "UInt32", 4294967295, 10),
        ("dt", "DateTime", 1700000000999, 11), ("state", "String", "RUNNING ä", 12),
        ("blob", "Bytes", b"\x00\x01\xff", 13), ("off", "Double", None, 15)]
    for key, typ, val, alias in exp:
        m = by.get(key, {})
        ok = m.get("type") == typ and m.get("value") == val and type(m.get("value")) is type(val)
        ok = ok and (m.get("alias") == alias if alias is not None else "alias" not in m)
        c.check(f"b metric {key}: {typ} {val!r}", ok, repr(m))
    nan = by.get("nan", {})
    c.check("b NaN double survives", isinstance(nan.get("value"), float)
            and math.isnan(nan["value"]), repr(nan))
    hist = ms[3]
    c.check("b alias-only historical metric", "name" not in hist and hist.get("alias") == 2
            and hist.get("isHistorical") is True and hist.get("value") == -1.5
            and hist.get("timestamp") == 1699999999000, repr(hist))
    c.check("b metric timestamps", by["pump1/rms"].get("timestamp") == 1700000000000
            and "timestamp" not in by["i8"], repr(by["pump1/rms"]))
    c.check("b isHistorical absent unless on the wire", "isHistorical" not in by["pump1/rms"])
    c.check("b wire value fields", d.get("_value_fields", [])[:6] == [
        "longValue", "booleanValue", "floatValue", "floatValue", "doubleValue", "intValue"],
        repr(d.get("_value_fields")))
    c.check("b empty payload decodes to no metrics", empty.get("metrics") == [] and
            "seq" not in empty, repr(empty))
    c.check("b garbage reports an error", "error" in bad, repr(bad))

    # Tahu's UInt32 quirk, documented in decode.js: a UInt32 in int_value (as the 3.0 spec says)
    q = env.protoc_encode(proto, PAYLOAD_TYPE,
                          'metrics { name: "u" datatype: 7 int_value: 7 }')
    (dq,) = decode([q])
    c.check("b Tahu reads UInt32 only from long_value (int_value -> null)",
            dq["metrics"][0].get("value") is None and dq["_value_fields"] == ["intValue"],
            repr(dq))

    text = env.protoc_decode(proto, PAYLOAD_TYPE, payload)
    c.check("b protoc --decode round trip", 'name: "pump1/rms"' in text and "seq: 42" in text
            and "is_historical: true" in text and "float_value: 0.125" in text
            and "long_value: 18446744073709551615" in text
            and env.protoc_encode(proto, PAYLOAD_TYPE, text) == payload, text[:200])
    try:
        env.protoc_decode(proto, PAYLOAD_TYPE, b"\xff\xff\xff")
        c.check("b protoc --decode rejects garbage", False, "no error")
    except RuntimeError as e:
        c.check("b protoc --decode rejects garbage", "failed" in str(e), str(e)[:120])

    n = 2000
    distinct = [env.protoc_encode(proto, PAYLOAD_TYPE, f"seq: {i % 256} metrics {{ alias: {i} "
                                  f"datatype: 10 double_value: {i}.5 }}") for i in range(20)]
    many = distinct * (n // 20)
    t0 = time.monotonic()
    out = decode(many)
    dt = time.monotonic() - t0
    c.check(f"b batch of {n} payloads decoded in one node run",
            len(out) == n and out[21]["seq"] == 1 and out[21]["metrics"][0]["value"] == 1.5,
            f"{dt:.2f} s")


def test_proxy(c, work):
    with env.Broker(os.path.join(work, "c")) as b, env.TcpProxy(b.port) as px:
        col = env.Collector(px.port, topics=["p/#"], keepalive=2)
        try:
            c.check("c collector connected through the proxy (forward)", col.wait_connected(10))
            rc, err = pub(px.port, "p/1", "via-proxy", qos=1)
            c.check("c forward: publish through the proxy arrives",
                    rc == 0 and col.wait_count(1, 5), f"rc {rc} {err}")

            # refuse: existing connections reset at once, new ones reset right after accept
            n_disc = len(col.disconnects)
            t0 = time.monotonic()
            px.refuse()
            deadline = time.monotonic() + 3
            while len(col.disconnects) == n_disc and time.monotonic() < deadline:
                time.sleep(0.01)
            dt = time.monotonic() - t0
            c.check("c refuse: existing connection dropped within 1 s",
                    len(col.disconnects) > n_disc and dt < 1.0, f"{dt:.2f} s")
            rc, err = pub(px.port, "p/2", "refused", qos=1)
            c.check("c refuse: mosquitto_pub through the proxy fails", rc != 0, f"rc {rc} {err}")
            s = socket.socket()
            try:
                s.settimeout(2)
                s.connect(("127.0.0.1", px.port))
                data = s.recv(10)
                reset, detail = False, "EOF" if data == b"" else f"data {data.hex()}"
            except ConnectionResetError:
                reset, detail = True, "ECONNRESET"
            except socket.timeout:
                reset, detail = False, "still open after 2 s"
            finally:
                s.close()
            c.check("c refuse: a new connection is reset", reset,
                    detail)
            c.check("c refuse: collector stays disconnected", not col.connected.wait(1.0))

            # back to forward: the collector reconnects by itself
            px.forward()
            c.check("c forward again: collector reconnects", col.wait_connected(10))
            rc, err = pub(px.port, "p/3", "back", qos=1)
            c.check("c forward again: messages flow",
                    rc == 0 and col.wait_count(1, 5, "p/3"), f"rc {rc} {err}")

            # blackhole: nothing closes, only keepalive (2 s) notices
            n_disc = len(col.disconnects)
            t0 = time.monotonic()
            px.blackhole()
            rc, err = pub(b.port, "p/4", "not-delivered", qos=1)  # straight to the broker
            deadline = time.monotonic() + 8
            while len(col.disconnects) == n_disc and time.monotonic() < deadline:
                time.sleep(0.02)
            dt = time.monotonic() - t0
            c.check("c blackhole: paho (keepalive 2 s) notices within ~5 s",
                    len(col.disconnects) > n_disc and 1.5 < dt < 5.5, f"{dt:.2f} s")
            c.check("c blackhole: nothing delivered while blackholed", col.count("p/4") == 0)
            s = socket.create_connection(("127.0.0.1", px.port), timeout=2)
            s.sendall(raw_connect_packet())
            s.settimeout(1.0)
            try:
                data = s.recv(10)
                outcome = "closed" if data == b"" else f"answered {data.hex()}"
            except socket.timeout:
                outcome = "silent"
            except OSError as e:
                outcome = f"error {e}"
            c.check("c blackhole: new connection accepted, CONNECT never answered",
                    outcome == "silent", outcome)
            c.check("c blackhole: proxy holds dead connections", px.active()["dead"] >= 1,
                    repr(px.active()))

            # forward again: the blackholed socket stays dead, new connections work
            px.forward()
            s.sendall(raw_connect_packet("raw-2"))
            try:
                data = s.recv(10)
                outcome = "closed" if data == b"" else f"answered {data.hex()}"
            except socket.timeout:
                outcome = "silent"
            except OSError as e:
                outcome = f"error {e}"
            s.close()
            c.check("c forward after blackhole: old socket stays dead", outcome == "silent",
                    outcome)
            c.check("c forward after blackhole: collector reconnects", col.wait_connected(10))
            c.check("c forward after blackhole: p/4 delivered from the session",
                    col.wait_count(1, 5, "p/4"), f"pub rc {rc} {err}")
            rc, err = pub(px.port, "p/5", "after", qos=1)
            c.check("c forward after blackhole: new traffic flows",
                    rc == 0 and col.wait_count(1, 5, "p/5"), f"rc {rc} {err}")
            st = px.stats
            c.check("c proxy stats count modes", st["refused"] >= 2 and st["blackholed"] >= 1
                    and st["reset"] >= 1 and st["swallowed"] > 0, repr(st))
        finally:
            col.stop()
    c.check("c proxy thread stopped", not px._thread.is_alive())


def test_tls(c, work):
    t0 = time.monotonic()
    pki = env.make_pki(os.path.join(work, "pki"))
    c.check("d make_pki", all(os.path.exists(getattr(pki, f)) for f in env.Pki.FIELDS),
            f"{time.monotonic() - t0:.2f} s")
    with env.Broker(os.path.join(work, "d1"), tls=pki) as b:
        col = env.Collector(b.port, topics=["t/#"])
        try:
            col.wait_connected(10)
            rc, err = pub(b.tls_port, "t/ok", "tls", "--cafile", pki.ca_cert, qos=1)
            c.check("d TLS publish with the right CA", rc == 0 and col.wait_count(1, 5),
                    f"rc {rc} {err}")
            rc, err = pub(b.tls_port, "t/bad", "tls", "--cafile", pki.wrong_ca_cert, qos=1)
            c.check("d TLS publish with the wrong CA fails", rc != 0 and col.count("t/bad") == 0,
                    f"rc {rc} {err}")
            rc, err = pub(b.tls_port, "t/plain", "plain", qos=1, timeout=15)
            c.check("d plain MQTT to the TLS port fails", rc != 0, f"rc {rc}")
        finally:
            col.stop()
    with env.Broker(os.path.join(work, "d2"), tls=pki, require_certificate=True) as b:
        col = env.Collector(b.port, topics=["t/#"])
        try:
            col.wait_connected(10)
            rc, err = pub(b.tls_port, "t/cert", "x", "--cafile", pki.ca_cert, "--cert",
                          pki.client_cert, "--key", pki.client_key, qos=1)
            c.check("d require_certificate: client cert accepted",
                    rc == 0 and col.wait_count(1, 5, "t/cert"), f"rc {rc} {err}")
            rc, err = pub(b.tls_port, "t/nocert", "x", "--cafile", pki.ca_cert, qos=1)
            c.check("d require_certificate: no client cert refused", rc != 0, f"rc {rc}")
            rc, err = pub(b.tls_port, "t/wrong", "x", "--cafile", pki.ca_cert, "--cert",
                          pki.wrong_client_cert, "--key", pki.wrong_client_key, qos=1)
            c.check("d require_certificate: client cert of the wrong CA refused", rc != 0,
                    f"rc {rc}")
            tcol = env.Collector(b.tls_port, topics=["t/#"], tls=pki)
            try:
                ok = tcol.wait_connected(10)
                rc, err = pub(b.port, "t/to-tls", "y", qos=1)
                c.check("d Collector over TLS with client cert",
                        ok and tcol.wait_count(1, 5, "t/to-tls"), f"rc {rc}")
            finally:
                tcol.stop()
        finally:
            col.stop()
    with env.Broker(os.path.join(work, "d3"), users={"gw": "s3cret", "ops": "x"}) as b:
        rc_ok, err = pub(b.port, "u", "x", "-u", "gw", "-P", "s3cret")
        rc_bad, _ = pub(b.port, "u", "x", "-u", "gw", "-P", "wrong")
        rc_anon, _ = pub(b.port, "u", "x")
        rc_ops, _ = pub(b.port, "u", "x", "-u", "ops", "-P", "x")
        c.check("d password file: right password accepted, wrong and anonymous refused",
                rc_ok == 0 and rc_ops == 0 and rc_bad != 0 and rc_anon != 0,
                f"{rc_ok} {err} {rc_ops} {rc_bad} {rc_anon}")


def test_restart(c, work):
    b = env.Broker(os.path.join(work, "e1"))
    b.start()
    try:
        col = env.Collector(b.port, topics=["r/#"])
        try:
            col.wait_connected(10)
            port, pid = b.port, b.pid
            b.kill()
            c.check("e SIGKILL: broker gone", b.pid is None)
            t0 = time.monotonic()
            b.restart()
            c.check("e restart on the same port", b.port == port and b.pid not in (None, pid),
                    f"{time.monotonic() - t0:.2f} s")
            ok = col.wait_connected(10)
            c.check("e collector reconnected and re-subscribed", ok and col.connects >= 2,
                    f"connects {col.connects}, {time.monotonic() - t0:.2f} s after kill")
            rc, err = pub(b.port, "r/after", "x", qos=1)
            c.check("e messages after the restart arrive", rc == 0 and col.wait_count(1, 5),
                    f"rc {rc} {err}")
            b.restart(kill=True)
            c.check("e second restart (kill=True), collector back", col.wait_connected(10))
        finally:
            col.stop()
    finally:
        b.stop()

    with env.Broker(os.path.join(work, "e2"), persistence=True) as b:
        col = env.Collector(b.port, topics=["q/#"], client_id="persistent-col")
        col.wait_connected(10)
        col.stop()  # offline; its session (clean_session=False) stays
        for i in range(5):
            rc, _ = pub(b.port, f"q/{i}", f"queued-{i}", qos=1)
        b.restart()  # SIGTERM: mosquitto writes its database
        c.check("e persistence database written",
                os.path.exists(os.path.join(b.persistence_dir, "mosquitto.db")))
        col = env.Collector(b.port, topics=["q/#"], client_id="persistent-col")
        try:
            ok = col.wait_connected(10)
            got = col.wait_count(5, 10)
            c.check("e session survives SIGTERM restart with persistence",
                    ok and col.session_present is True, f"session_present {col.session_present}")
            c.check("e queued QoS 1 messages delivered after restart",
                    got and [m.payload for m in col.messages()] ==
                    [f"queued-{i}".encode() for i in range(5)],
                    repr([m.payload for m in col.messages()]))
        finally:
            col.stop()


def main():
    c = Checks()
    with tempfile.TemporaryDirectory(prefix="vibgate-mqtt-env-") as work:
        for t in (test_broker_and_collector, test_sparkplug, test_proxy, test_tls, test_restart):
            t0 = time.monotonic()
            try:
                t(c, work)
            except Exception as e:  # a crash of one part is a failure, the others still run
                c.check(f"{t.__name__} ran without exception", False,
                        f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
            print(f"  ({t.__name__}: {time.monotonic() - t0:.1f} s)", flush=True)
    print(f"{c.passed} passed, {c.failed} failed", flush=True)
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
