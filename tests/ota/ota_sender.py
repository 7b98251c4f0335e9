#!/usr/bin/python3
"""Sends a signed model bundle (.vgb, `vibgate bundle sign`) to a vibgate gateway over MQTT in
chunks and follows the gateway's model events (docs/ota.md), resuming from the "next_offset" the
gateway reports. A tool for operators and the OTA system test (tests/ota/test_ota.py).

Transport:
  json       chunks on <prefix>/<node>/cmd/model_bundle as {"bundle_id","offset","total","sha256",
             "data": base64}; events from <prefix>/<node>/+/model.
  sparkplug  chunks as NCMD spBv1.0/<group>/NCMD/<node> with the metrics Model/Bundle/Id,
             Offset, Total, Sha256, Chunk (the payload built with python3-protobuf from the
             project's uplink/proto/sparkplug_b.proto, compiled by protoc into a temporary folder);
             events decoded from DBIRTH/DDATA of the node's devices (metrics "model/<name>").

Usage (operator):
  /usr/bin/python3 tests/ota/ota_sender.py BUNDLE.vgb --port 1883 --node gateway \
      [--profile json|sparkplug] [--prefix vibgate] [--group vibgate] [--chunk 65536] [--timeout 120]
Exit 0 when the gateway reported "staged" for the bundle, 1 when it refused it (the reason is
printed) or did not answer in time.

Debian's python3-paho-mqtt (1.6.1) and python3-protobuf only. Every wait is bounded.
"""

import argparse
import base64
import hashlib
import importlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as paho

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("VIBGATE_SOURCE_DIR") or os.path.abspath(os.path.join(HERE, "..", ".."))
SPARKPLUG_PROTO = os.path.join(SOURCE_DIR, "uplink", "proto", "sparkplug_b.proto")
TERMINAL = ("staged", "refused")

_spb = None


def sparkplug_module():
    """sparkplug_b_pb2 compiled from the project's .proto (once per process)."""
    global _spb
    if _spb is None:
        out = tempfile.mkdtemp(prefix="vibgate-spb-")
        d, f = os.path.split(SPARKPLUG_PROTO)
        subprocess.run(["protoc", f"--python_out={out}", "-I", d, f], check=True, timeout=60)
        sys.path.insert(0, out)
        _spb = importlib.import_module("sparkplug_b_pb2")
    return _spb


def bundle_id_of(path_or_bytes):
    """The bundle id inside a bundle file (its manifest), read without verifying anything: the
    Bundle and BundleManifest protobufs are walked by hand (field 1 = manifest, then field 1 =
    bundle_id)."""
    data = path_or_bytes
    if isinstance(path_or_bytes, str):
        with open(path_or_bytes, "rb") as f:
            data = f.read()
    manifest = _field(data[12:], 1)
    return _field(manifest, 1).decode() if manifest is not None else None


def _varint(b, i):
    v, shift = 0, 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return v, i


def _field(b, number):
    """The first length-delimited field `number` of a protobuf message, or None."""
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        wt = key & 7
        if wt == 0:
            _, i = _varint(b, i)
        elif wt == 1:
            i += 8
        elif wt == 5:
            i += 4
        elif wt == 2:
            n, i = _varint(b, i)
            if key >> 3 == number:
                return b[i:i + n]
            i += n
        else:
            return None
    return None


class BundleSender:
    """One MQTT client that publishes chunks and records the gateway's model events (as dicts:
    {"asset", "event", "bundle_id", "next_offset", ...}, in arrival order, with "t" the monotonic
    time of arrival)."""

    def __init__(self, port, node, *, profile="json", prefix="vibgate", group="vibgate",
                 host="127.0.0.1", chunk=64 * 1024):
        self.port, self.node, self.profile = port, node, profile
        self.prefix, self.group, self.host, self.chunk = prefix, group, host, chunk
        self._lock = threading.Lock()
        self._events = []
        self._aliases = {}  # (device, alias) -> metric name (Sparkplug)
        self._seen = set()  # outbox ids of events already recorded (delivery is at least once)
        self.sent_offsets = []  # (monotonic time, bundle id, offset) of every chunk published
        self._subscribed = threading.Event()
        c = paho.Client(client_id=f"vibgate-ota-sender-{os.getpid()}-{id(self)}",
                        clean_session=True, protocol=paho.MQTTv311)
        c.max_inflight_messages_set(16)
        c.on_connect = self._on_connect
        c.on_subscribe = lambda *a: self._subscribed.set()
        c.on_message = self._on_message
        self._c = c
        if profile == "sparkplug":
            sparkplug_module()

    # ---- connection ----
    def start(self, timeout=10):
        self._c.connect_async(self.host, self.port, keepalive=30)
        self._c.loop_start()
        if not self._subscribed.wait(timeout):
            raise RuntimeError(f"ota sender: not subscribed to the broker 127.0.0.1:{self.port} "
                               f"within {timeout} s")
        return self

    def stop(self):
        self._c.disconnect()
        self._c.loop_stop()

    def _topics(self):
        if self.profile == "json":
            return [(f"{self.prefix}/{self.node}/+/model", 1)]
        return [(f"spBv1.0/{self.group}/DBIRTH/{self.node}/+", 0),
                (f"spBv1.0/{self.group}/DDATA/{self.node}/+", 0)]

    def _on_connect(self, client, userdata, flags, rc):
        if rc == 0:
            client.subscribe(self._topics())

    def _on_message(self, client, userdata, msg):
        now = time.monotonic()
        if self.profile == "json":
            try:
                r = json.loads(msg.payload)
            except ValueError:
                return
            if r.get("kind") != "model":
                return
            ev = dict(r.get("metrics", {}))
            ev["asset"] = r.get("asset")
            ev["msg_id"] = r.get("msg_id")
            ev["t"] = now
            with self._lock:
                if ev["msg_id"] in self._seen:
                    return  # a resent copy (the gateway restarted before the broker's ack)
                self._seen.add(ev["msg_id"])
                self._events.append(ev)
            return
        spb = sparkplug_module()
        p = spb.Payload()
        try:
            p.ParseFromString(msg.payload)
        except Exception:  # noqa: BLE001 (not a Sparkplug payload: ignore)
            return
        device = msg.topic.rsplit("/", 1)[1]
        birth = "/DBIRTH/" in msg.topic
        values = {}
        msg_id = None
        for m in p.metrics:
            if birth and m.HasField("name"):
                self._aliases[(device, m.alias)] = m.name
                if m.is_null:
                    continue
            name = m.name if m.HasField("name") else self._aliases.get((device, m.alias))
            if name == "vibgate/msg_id" and m.HasField("long_value"):
                msg_id = m.long_value
            if not name or not name.startswith("model/"):
                continue
            kind = m.WhichOneof("value")
            if kind is not None:
                values[name[len("model/"):]] = getattr(m, kind)
        if birth or "event" not in values:
            return  # a DBIRTH carries the last values: not a new event
        values["asset"] = device
        values["msg_id"] = msg_id
        values["t"] = now
        with self._lock:
            if msg_id is not None and msg_id in self._seen:
                return
            self._seen.add(msg_id)
            self._events.append(values)

    # ---- events ----
    def events(self, bundle_id=None):
        with self._lock:
            ev = list(self._events)
        return [e for e in ev if bundle_id is None or e.get("bundle_id") == bundle_id]

    def wait_event(self, bundle_id, names, timeout, after=0.0):
        """The first event of `bundle_id` named in `names` that arrived after `after` (monotonic
        time), or None after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            for e in self.events(bundle_id):
                if e["t"] > after and e.get("event") in names:
                    return e
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    # ---- chunks ----
    def publish_chunk(self, bundle_id, offset, total, sha256_hex, data, timeout=10):
        if self.profile == "json":
            body = json.dumps({"bundle_id": bundle_id, "offset": offset, "total": total,
                               "sha256": sha256_hex, "data": base64.b64encode(data).decode()})
            topic = f"{self.prefix}/{self.node}/cmd/model_bundle"
        else:
            spb = sparkplug_module()
            p = spb.Payload()
            p.timestamp = int(time.time() * 1000)
            for name, dt, field, value in (
                    ("Model/Bundle/Id", 12, "string_value", bundle_id),
                    ("Model/Bundle/Offset", 8, "long_value", offset),
                    ("Model/Bundle/Total", 8, "long_value", total),
                    ("Model/Bundle/Sha256", 12, "string_value", sha256_hex),
                    ("Model/Bundle/Chunk", 17, "bytes_value", data)):
                m = p.metrics.add()
                m.name = name
                m.datatype = dt
                setattr(m, field, value)
            body = p.SerializeToString()
            topic = f"spBv1.0/{self.group}/NCMD/{self.node}"
        info = self._c.publish(topic, body, qos=1)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise RuntimeError(f"ota sender: chunk at {offset} of {bundle_id} not acknowledged by "
                               f"the broker within {timeout} s")
        self.sent_offsets.append((time.monotonic(), bundle_id, offset))

    def send_range(self, bundle_id, data, start, end=None, *, total=None, sha256_hex=None):
        """Publishes the chunks of data[start:end] (end: the whole file); `total` and
        `sha256_hex` default to those of `data` (tests announce wrong ones)."""
        total = len(data) if total is None else total
        sha256_hex = sha256_hex or hashlib.sha256(data).hexdigest()
        end = len(data) if end is None else min(end, len(data))
        off = start
        while off < end:
            n = min(self.chunk, end - off)
            self.publish_chunk(bundle_id, off, total, sha256_hex, data[off:off + n])
            off += n
        return off

    def deliver(self, data, bundle_id=None, *, start=0, timeout=60, max_resumes=20):
        """Sends the bundle from `start`, resuming from every "progress" event that names a
        next_offset below what was sent, until the gateway reports "staged" or "refused" for it
        (returned) or `timeout` s pass (None). Bounded: at most `max_resumes` resumes."""
        bundle_id = bundle_id or bundle_id_of(data)
        deadline = time.monotonic() + timeout
        t0 = time.monotonic()
        sent_to = self.send_range(bundle_id, data, start)
        handled = t0
        for _ in range(max_resumes + 1):
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            e = self.wait_event(bundle_id, TERMINAL + ("progress",), left, after=handled)
            if e is None:
                return None
            handled = e["t"]
            if e["event"] in TERMINAL:
                return e
            nxt = e.get("next_offset")
            if "percent" in e:
                continue  # a 25/50/75 % report, not a request to resume
            if nxt is not None and nxt < sent_to:
                sent_to = self.send_range(bundle_id, data, int(nxt))
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bundle")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--node", default="gateway")
    ap.add_argument("--profile", choices=("json", "sparkplug"), default="json")
    ap.add_argument("--prefix", default="vibgate")
    ap.add_argument("--group", default="vibgate")
    ap.add_argument("--chunk", type=int, default=64 * 1024)
    ap.add_argument("--timeout", type=float, default=120)
    a = ap.parse_args()
    with open(a.bundle, "rb") as f:
        data = f.read()
    s = BundleSender(a.port, a.node, profile=a.profile, prefix=a.prefix, group=a.group,
                     host=a.host, chunk=min(a.chunk, 256 * 1024)).start()
    try:
        bid = bundle_id_of(data)
        e = s.deliver(data, bid, timeout=a.timeout)
        for ev in s.events(bid):
            print(json.dumps({k: v for k, v in ev.items() if k != "t"}))
        if e is None:
            print(f"{a.bundle}: no answer from the gateway within {a.timeout} s", file=sys.stderr)
            return 1
        return 0 if e["event"] == "staged" else 1
    finally:
        s.stop()


if __name__ == "__main__":
    sys.exit(main())
