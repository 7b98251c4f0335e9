#!/usr/bin/python3
"""Network and field-bus faults under the whole daemon (issue 7, docs/reliability.md).

The real vibgated runs against real peers — vibgate-sim processes as Modbus TCP devices and as a
serial vibration sensor on a pty, a mosquitto broker (with persistence) reached through the
fault-injecting TcpProxy of tests/uplink/mqtt_env.py chained with a latency/bandwidth relay
(SlowLink, below), a paho subscriber recording everything — and this test breaks the network
around it while it ingests, raises alarms, stores and uplinks. It proves, phase by phase:

  1. Modbus device flapping: one device's simulator is stopped (SIGTERM or SIGKILL) and restarted
     every 3 s, 6 times. The daemon stays up; the two other Modbus devices stay online and keep
     being polled (poll counts grow at the configured rate; the age of their last successful poll
     never exceeds 1 s); each down/up of the flapping device reaches the broker as exactly one
     offline and one online health event (offline with the error); at the end it is online and
     its tag values (its uptime, which restarts with the simulator) and windows are fresh.
  2. Serial line unplugged and replugged: the simulator owning the pty is stopped, so the pty
     closes and its path disappears; the daemon marks the sensor offline with an error naming the
     port, keeps running and polling the rest, and after the same path comes back (a new pty)
     reads again without a restart: frames and the asset's windows grow again.
  3. Broker restarted 5 times, ~3 s apart, while results and alarm events flow: the daemon
     reconnects each time (a new session per connection) and afterwards every outbox id it ever
     assigned reached the subscriber or still waits in the outbox (none missing), and `vibgate
     status` says connected.
  4. Blackholed connection (the proxy swallows everything, nothing closes): the daemon declares
     the uplink down within 2 x keepalive + 3 s (libmosquitto: one keepalive until its PINGREQ,
     one more for the missing PINGRESP), keeps ingesting and storing (the outbox grows), and
     after the path is restored reconnects and drains the backlog, again with nothing missing.
  5. Slow broker: 300 ms added each way, then additionally the daemon->broker direction throttled
     below the production rate. Delivery continues, the session survives, and the loop is not
     stalled: `vibgate status` answers within 2 s and the Modbus facade's heartbeat age register
     stays <= 2 s; afterwards the backlog drains. The orderly stop of this first daemon then
     exits 0 and its database passes integrity_check with every outbox id delivered or queued.
  6. Long outage with a storage quota: a second daemon (fresh state, [storage] quota_mb = 1,
     every window stored) loses its broker for longer than the quota holds. The quota is reached,
     undelivered results are evicted and counted (`vibgate queue` dropped_total, the
     vibgate_store_evictions_total{class=outbox_bulk} counter), alarm events are not evicted, the
     file stays near the quota, the daemon stays up and answers; after the broker returns the
     backlog drains to an empty outbox, and every outbox id is accounted for: delivered, still
     queued or evicted (the ids that never arrived are at most the evicted count, and are older
     than everything that arrived as backlog: oldest first).

Every phase's checks run even if an earlier phase failed (a phase that crashes is one failure).
All ports are free loopback ports; every wait is bounded; every process is stopped by PID in a
finally block. A table of measured numbers (outage lengths, detection and reconnect times,
backlogs, drain times, evictions, flaps survived) is printed at the end for docs/reliability.md.

Run: /usr/bin/python3 tests/fault/test_network_faults.py [--build BUILD_DIR] [--phases 1,2,...]
Binaries from $VIBGATED, $VIBGATE_SIM, $VIBGATE_CLI (ctest sets them), else BUILD_DIR/gateway/;
state lives in a temporary folder under the build tree (the daemon refuses control sockets under
/tmp), removed when every check passed. Prints PASS/FAIL lines and `N passed, M failed`; exits 1
if a check failed. About 1.5 minutes (Release build; the waits are mostly fixed wall-clock
time, so a sanitizer build takes a little longer).
"""

import argparse
import collections
import json
import os
import select
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(HERE, "..")
sys.path.insert(0, TESTS)
sys.path.insert(0, os.path.join(TESTS, "uplink"))
sys.path.insert(0, os.path.join(TESTS, "sim"))
from checks import Checks  # noqa: E402  (tests/checks.py)
import checks  # noqa: E402  (wait_until)
import mqtt_env  # noqa: E402  (tests/uplink/mqtt_env.py: Broker, Collector, TcpProxy)
from test_sim_mbpoll import free_port  # noqa: E402  (tests/sim/test_sim_mbpoll.py)

LOOPBACK = "127.0.0.1"
C = Checks()
_check = C.check
C.check = lambda name, ok, detail="": _check(name, ok, str(detail)[:600].replace("\n", " | "))
PROCS = []    # every process started, stopped by PID at the end
NUMBERS = []  # (phase, measure, value) for the closing table

# ---- timing of the faults (seconds) -----------------------------------------------------------
FLAP_CYCLES, FLAP_DOWN, FLAP_PERIOD = 6, 1.2, 3.0
SERIAL_UNPLUGGED = 4.0
BROKER_RESTARTS, BROKER_DOWN, BROKER_PERIOD = 5, 1.0, 3.0
KEEPALIVE = 5
BLACKHOLE_AFTER_DETECT = 2.0
SLOW_DELAY, SLOW_RATE, SLOW_EACH = 0.3, 3000, 5.0
POLL_MS = 50          # Modbus poll interval of every device
QUOTA_MB = 1


def note(phase, measure, value):
    NUMBERS.append((phase, measure, value))

def wait_until(fn, timeout, every=0.1):
    """checks.wait_until polling every 0.1 s: detection and reconnect times are measured with
    it."""
    return checks.wait_until(fn, timeout, every)


def now_ms():
    return int(time.time() * 1000)


# ---------------------------------------------------------------- processes

class Proc:
    """A child process with stdout+stderr appended to a log file; restartable."""

    def __init__(self, name, cmd, log_path):
        self.name, self.cmd, self.log_path = name, [str(c) for c in cmd], log_path
        self.p = None
        self.log = None
        PROCS.append(self)

    def start(self, ready=None, timeout=10.0):
        """Starts the process; with `ready`, waits (bounded) until that text appears in the log
        after the start. Returns True when running (and ready)."""
        mark = self.log_size()
        self.log = open(self.log_path, "ab")
        self.p = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                  stderr=subprocess.STDOUT)
        if ready is None:
            return self.alive()
        return bool(wait_until(lambda: ready in self.text(mark) or not self.alive(), timeout,
                               0.02)) and self.alive() and ready in self.text(mark)

    @property
    def pid(self):
        return self.p.pid if self.p else None

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def text(self, start=0):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(start)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def tail(self, n=12):
        return "\n".join(self.text().splitlines()[-n:])

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Signals by PID and waits; returns (exit code, or None if it had to be killed, s)."""
        t0 = time.monotonic()
        rc = None
        if self.p is not None:
            rc = self.p.poll()
            if rc is None:
                try:
                    os.kill(self.p.pid, sig)
                except ProcessLookupError:
                    pass
                try:
                    rc = self.p.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    os.kill(self.p.pid, signal.SIGKILL)
                    self.p.wait(timeout=10)
                    rc = None
        if self.log is not None and not self.log.closed:
            self.log.close()
        return rc, time.monotonic() - t0


def run(cmd, timeout=20):
    try:
        p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None, "", f"timed out after {timeout} s"
    return p.returncode, p.stdout, p.stderr


class Cli:
    """`vibgate <command> --json --socket S`: (rc, parsed JSON or None, seconds taken)."""

    def __init__(self, exe, sock):
        self.exe, self.sock = exe, sock

    def __call__(self, *args, timeout=20):
        t0 = time.monotonic()
        rc, out, err = run([self.exe, *args, "--json", "--socket", self.sock], timeout)
        dt = time.monotonic() - t0
        try:
            data = json.loads(out) if rc == 0 else None
        except ValueError:
            data = None
        return rc, data, dt

    def devices(self):
        rc, d, _ = self("devices")
        return {x["name"]: x for x in d} if rc == 0 and d else {}

    def status(self):
        rc, d, _ = self("status")
        return d if rc == 0 else None

    def queue(self):
        rc, d, _ = self("queue")
        return d if rc == 0 else None

    def dev_state(self, name):
        return self.devices().get(name, {}).get("state")


def facade_health(port, timeout=2.0):
    """The facade's gateway health block (FC 4, 12 input registers at 1000) over a raw Modbus TCP
    socket: {heartbeat, heartbeat_age_s, uplink}; None when it does not answer."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
            s.sendall(struct.pack(">HHHBBHH", 7, 0, 6, 1, 4, 1000, 12))
            buf = b""
            while len(buf) < 9 + 24:
                chunk = s.recv(256)
                if not chunk:
                    return None
                buf += chunk
    except OSError:
        return None
    if buf[7] != 4 or buf[8] != 24:
        return None
    r = struct.unpack(">12H", buf[9:33])
    return {"heartbeat": r[2], "heartbeat_age_s": r[3], "uplink": r[5]}


class Monitor(threading.Thread):
    """Samples `vibgate status` and `vibgate devices` (and the facade's health block) every
    `period` s in the background: the CLI latency, whether the daemon answered, the devices'
    states and the age of their last successful poll. window(t0, t1) returns the samples."""

    def __init__(self, cli, facade_port=None, period=0.25):
        super().__init__(daemon=True)
        self.cli, self.facade_port, self.period = cli, facade_port, period
        self.samples = []
        self._halt = threading.Event()
        self.start()

    def run(self):
        for _ in range(100000):
            if self._halt.is_set():
                return
            t = time.monotonic()
            rc, st, dt = self.cli("status")
            wall = now_ms()   # devices are asked now: a poll's age is measured from here
            rc2, devs, dt2 = self.cli("devices")
            fh = facade_health(self.facade_port) if self.facade_port else None
            self.samples.append({
                "t": t, "wall": wall, "status_s": dt, "devices_s": dt2,
                "ok": rc == 0 and rc2 == 0,
                "uplink": st.get("uplink_connected") if st else None,
                "depth": st.get("outbox_depth") if st else None,
                "devices": {d["name"]: (d["state"], d["polls"], d["last_ok_ms"])
                            for d in (devs or [])},
                "facade": fh})
            self._halt.wait(max(0.0, self.period - (time.monotonic() - t)))

    def window(self, t0, t1=None):
        t1 = time.monotonic() if t1 is None else t1
        return [s for s in list(self.samples) if t0 <= s["t"] <= t1]

    def stop(self):
        self._halt.set()
        self.join(30)


# ---------------------------------------------------------------- a slow network path

class SlowLink:
    """A TCP relay on a free loopback port to target_port that delays every chunk by `delay_s`
    in both directions and, with `rate_up` > 0, caps the client->server direction at that many
    bytes/s (the server->client direction keeps flowing, so acknowledgements are only delayed).
    set() changes both at run time, for open connections too. A closed side closes the
    connection after what was queued before the close is delivered. Backpressure: a direction
    stops reading while 256 KiB wait. Threads per connection; every wait bounded (0.2 s) so
    close() ends them."""

    _HIGH = 256 * 1024

    def __init__(self, target_port):
        self.target = (LOOPBACK, target_port)
        self.delay_s, self.rate_up = 0.0, 0
        self.stats = {"accepted": 0, "upstream_failed": 0, "up": 0, "down": 0}
        self._closing = threading.Event()
        self._conns = []
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind((LOOPBACK, 0))
        self._lsock.listen(16)
        self._lsock.settimeout(0.2)
        self.port = self._lsock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def set(self, delay_s=0.0, rate_up=0):
        self.delay_s, self.rate_up = float(delay_s), int(rate_up)

    def _accept_loop(self):
        while not self._closing.is_set():
            try:
                c, _ = self._lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.stats["accepted"] += 1
            try:
                u = socket.create_connection(self.target, timeout=1.0)
            except OSError:
                self.stats["upstream_failed"] += 1
                c.close()
                continue
            for s in (c, u):
                s.settimeout(None)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _SlowConn(self, c, u)
            self._conns = [x for x in self._conns if not x.closed.is_set()] + [conn]

    def close(self):
        self._closing.set()
        self._thread.join(5)
        self._lsock.close()
        for conn in list(self._conns):
            conn.close()
        for conn in list(self._conns):
            conn.join(5)


class _SlowConn:
    def __init__(self, link, client, upstream):
        self.link, self.client, self.upstream = link, client, upstream
        self.closed = threading.Event()
        self.threads = []
        for src, dst, up in ((client, upstream, True), (upstream, client, False)):
            q = collections.deque()
            cond = threading.Condition()
            state = {"queued": 0}
            self.threads.append(threading.Thread(target=self._reader, args=(src, q, cond, state),
                                                 daemon=True))
            self.threads.append(threading.Thread(target=self._writer,
                                                 args=(dst, q, cond, state, up), daemon=True))
        for t in self.threads:
            t.start()

    def close(self):
        if self.closed.is_set():
            return
        self.closed.set()
        for s in (self.client, self.upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def join(self, timeout):
        for t in self.threads:
            if t is not threading.current_thread():
                t.join(timeout)

    def _reader(self, src, q, cond, state):
        while not self.closed.is_set():
            with cond:
                if state["queued"] > SlowLink._HIGH:
                    cond.wait(0.2)
                    continue
            try:
                r, _, _ = select.select([src], [], [], 0.2)
                if not r:
                    continue
                data = src.recv(65536)
            except (OSError, ValueError):
                data = b""
            with cond:
                q.append((time.monotonic() + self.link.delay_s, data))
                state["queued"] += len(data)
                cond.notify_all()
            if not data:
                return

    def _writer(self, dst, q, cond, state, up):
        while True:
            with cond:
                while not q and not self.closed.is_set():
                    cond.wait(0.2)
                if not q:
                    return
                at, data = q[0]
            wait = at - time.monotonic()
            if wait > 0:
                time.sleep(min(wait, 0.05))
                continue
            if not data:  # the source closed: everything before it is delivered, close both
                self.close()
                return
            rate = self.link.rate_up if up else 0
            chunk = data if rate <= 0 else data[:max(1, rate // 50)]
            try:
                dst.sendall(chunk)
            except OSError:
                self.close()
                return
            self.link.stats["up" if up else "down"] += len(chunk)
            with cond:
                if len(chunk) == len(data):
                    q.popleft()
                else:
                    q[0] = (at, data[len(chunk):])
                state["queued"] -= len(chunk)
                cond.notify_all()
            if rate > 0:
                time.sleep(len(chunk) / rate)


# ---------------------------------------------------------------- what reached the broker

class Records:
    """The JSON records the collector received for one edge node, parsed incrementally."""

    def __init__(self, col, node):
        self.col, self.node = col, node
        self.prefix = f"vibgate/{node}/"
        self.recs = []   # (arrival monotonic time, record)
        self._seen = 0

    def update(self):
        msgs = self.col.messages()
        for m in msgs[self._seen:]:
            if not m.topic.startswith(self.prefix) or m.topic.endswith("/status"):
                continue
            try:
                self.recs.append((m.t, json.loads(m.payload)))
            except ValueError:
                pass
        self._seen = len(msgs)
        return self.recs

    def ids(self):
        return {r["msg_id"] for _, r in self.update()}

    def sessions(self):
        return {r["session"] for _, r in self.update()}

    def integrity(self):
        """(duplicates, duplicates with different content, order violations): per asset, lane
        and stream (backlog = "historical", or live) the first arrivals must be in msg_id order
        (docs/uplink.md: the two streams interleave while a backlog drains)."""
        first, dups, bad, order_bad, last = {}, 0, 0, 0, {}
        for _, r in self.update():
            core = (r["asset"], r["kind"], r["ts"], json.dumps(r["metrics"], sort_keys=True))
            if r["msg_id"] in first:
                dups += 1
                bad += first[r["msg_id"]] != core
                continue
            first[r["msg_id"]] = core
            k = (r["asset"], r["lane"], r["historical"])
            if r["msg_id"] < last.get(k, -1):
                order_bad += 1
            last[k] = r["msg_id"]
        return dups, bad, order_bad


def outbox_state(db, running=True):
    """(highest outbox id ever assigned, ids still in the outbox, meta counters) of a store;
    read-only while the daemon runs."""
    uri = f"file:{db}?mode=ro" if running else f"file:{db}"
    con = sqlite3.connect(uri, uri=True, timeout=10)
    try:
        row = con.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        pending = {r[0] for r in con.execute("SELECT id FROM outbox")}
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        return (row[0] if row else 0), pending, meta
    finally:
        con.close()


def check_delivered(label, db, recs, running=True, timeout=10.0):
    """Every outbox id assigned so far reached the subscriber or still waits in the outbox.
    Returns (max id, missing ids)."""
    max_id, pending, _ = outbox_state(db, running)

    def missing():
        return set(range(1, max_id + 1)) - recs.ids() - pending
    gone = wait_until(lambda: not missing(), timeout, 0.25)
    miss = sorted(missing())
    C.check(f"{label}: every outbox id 1..{max_id} reached the broker or is still queued "
            f"({len(pending)} queued, {len(miss)} missing)", max_id > 0 and gone and not miss,
            miss[:10])
    return max_id, miss


# ---------------------------------------------------------------- configurations

def sim_config(path, machines, listeners):
    """A vibgate-sim TOML: machines = [(name, extra toml lines)], listeners = [(port, machine,
    [tag lines...])] each with a 4096-sample 25.6 kHz waveform 'accel' at input 100."""
    out = ["[sim]", "seed = 5", "tag_update_ms = 100"]
    for name, extra in machines:
        out += ["[[machine]]", f'name = "{name}"', 'source = "synth"'] + list(extra)
    for port, machine, tags in listeners:
        out += ["[[listener]]", f"port = {port}", "  [[listener.unit]]", "  id = 1"]
        for tag in tags:
            out += ["    [[listener.unit.tag]]"] + [f"    {t}" for t in tag]
        out += ["    [[listener.unit.waveform]]", '    name = "accel"', "    address = 100",
                "    samples = 4096", "    sample_rate_hz = 25600", f'    machine = "{machine}"']
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def device_section(name, port, tags):
    out = ["[[device]]", f'name = "{name}"', 'host = "127.0.0.1"', f"port = {port}",
           f"poll_interval_ms = {POLL_MS}", "response_timeout_ms = 300", "retries = 1",
           "backoff_initial_ms = 200", "backoff_max_ms = 1000"]
    for tag in tags:
        out += ["[[device.tag]]"] + list(tag)
    out += ["[[device.waveform]]", 'name = "accel"', "address = 100"]
    return "\n".join(out) + "\n"


def daemon_config(path, state, *, node, uplink_port, devices, assets, serial=None,
                  facade_port=None, extra_daemon="", storage="", uplink_extra=""):
    text = (f'[daemon]\nstate_dir = "{state}"\ncontrol_socket = "{state}/vibgate.sock"\n'
            f'log_level = "info"\nsnapshot_s = 0.2\n{extra_daemon}'
            f'[storage]\ncommit_interval_ms = 100\n{storage}'
            f'[uplink]\nhost = "127.0.0.1"\nport = {uplink_port}\nprofile = "json"\n'
            f'edge_node_id = "{node}"\nkeepalive_s = {KEEPALIVE}\nconnect_timeout_s = 3\n'
            f'reconnect_min_ms = 200\nreconnect_max_ms = 2000\n{uplink_extra}')
    if facade_port:
        text += f'[modbus_facade]\naddress = "127.0.0.1"\nport = {facade_port}\n'
    else:
        text += "[modbus_facade]\nenabled = false\n"
    text += "".join(devices)
    if serial:
        text += (f'[[serial_sensor]]\nname = "vib"\nport = "{serial}"\nbaud = 115200\n'
                 'parity = "N"\nmode = "binary"\nchannels = 1\nchannel_names = ["vib/accel"]\n')
    for name, channel, extra in assets:
        text += f'[[asset]]\nname = "{name}"\nchannel = "{channel}"\nlearn_s = 86400\n{extra}'
    with open(path, "w") as f:
        f.write(text)


# ---------------------------------------------------------------- the test

class Env:
    pass


def setup(e):
    """Broker + collector, the proxy chain, the simulators, daemon 1."""
    e.broker = mqtt_env.Broker(os.path.join(e.work, "broker"), persistence=True)
    e.broker.start(timeout=15)
    e.col = mqtt_env.Collector(e.broker.port, topics=("vibgate/#",))
    if not C.check("setup: collector connected to the broker", e.col.wait_connected(10)):
        raise RuntimeError("no collector")
    e.slow = SlowLink(e.broker.port)
    e.proxy = mqtt_env.TcpProxy(e.slow.port)   # daemon -> TcpProxy -> SlowLink -> broker

    e.ports = {k: free_port() for k in ("fan", "press", "flap", "facade")}
    uptime = ['name = "uptime_s"', 'register = "holding"', "address = 1", 'type = "uint32"',
              'model = "uptime"']
    sim_config(os.path.join(e.work, "plant.toml"),
               [("fan", []),
                # the press runs 3 s and stops 3 s: ISO zone D while running, A while stopped,
                # so alarm events are raised and cleared all the time
                ("press", ["harmonics_g = [0.12, 0.02, 0.01]", "run_s = 3", "stop_s = 3"])],
               [(e.ports["fan"], "fan", [['name = "speed_rpm"', 'register = "holding"',
                                          "address = 0", 'model = "speed"', 'machine = "fan"'],
                                         uptime]),
                (e.ports["press"], "press", [['name = "run"', 'register = "holding"',
                                              "address = 0", 'model = "run"',
                                              'machine = "press"']])])
    sim_config(os.path.join(e.work, "flap.toml"), [("flap", ["seed = 31"])],
               [(e.ports["flap"], "flap", [uptime])])
    e.plant = Proc("sim-plant", [e.sim, "-c", os.path.join(e.work, "plant.toml")],
                   os.path.join(e.work, "sim-plant.log"))
    e.flap = Proc("sim-flap", [e.sim, "-c", os.path.join(e.work, "flap.toml")],
                  os.path.join(e.work, "sim-flap.log"))
    e.pty = os.path.join(e.work, "vib.pty")
    e.serial = Proc("sim-serial", [e.sim, "--devices", "0", "--serial", "--serial-link", e.pty,
                                   "--serial-channels", "1", "--serial-rate", "12800",
                                   "--seed", "41"], os.path.join(e.work, "sim-serial.log"))
    for p in (e.plant, e.flap, e.serial):
        if not C.check(f"setup: {p.name} ready", p.start("vibgate-sim: ready"), p.tail()):
            raise RuntimeError(f"{p.name} did not start")

    tag_speed = ['name = "speed_rpm"', 'register = "holding"', "address = 0"]
    tag_up = ['name = "uptime_s"', 'register = "holding"', "address = 1", 'type = "uint32"']
    tag_run = ['name = "run"', 'register = "holding"', "address = 0"]
    e.dev_fan = device_section("fan", e.ports["fan"], [tag_speed, tag_up])
    e.dev_press = device_section("press", e.ports["press"], [tag_run])
    e.state1 = os.path.join(e.work, "d1")
    os.makedirs(e.state1)
    e.cfg1 = os.path.join(e.work, "d1.toml")
    daemon_config(e.cfg1, e.state1, node="fault1", uplink_port=e.proxy.port,
                  devices=[e.dev_fan, e.dev_press,
                           device_section("flap", e.ports["flap"], [tag_up])],
                  assets=[("fan", "fan/accel", ""), ("press", "press/accel", ""),
                          ("flap", "flap/accel", ""), ("gearbox", "vib/accel", "")],
                  serial=e.pty, facade_port=e.ports["facade"],
                  extra_daemon="result_interval_ms = 250\n")
    e.db1 = os.path.join(e.state1, "vibgate.db")
    e.cli = Cli(e.cli_exe, os.path.join(e.state1, "vibgate.sock"))
    e.recs = Records(e.col, "fault1")
    e.d1 = Proc("vibgated-1", [e.vibgated, "-c", e.cfg1], os.path.join(e.work, "vibgated-1.log"))
    ok = e.d1.start("ready:", 20)

    def all_up():
        devs = e.cli.devices()
        st = e.cli.status()
        return (len(devs) == 4 and all(d["state"] == "online" for d in devs.values()) and st
                and st["uplink_connected"])
    ok = ok and wait_until(all_up, 20, 0.2)
    if not C.check("setup: daemon 1 up, 3 Modbus devices + 1 serial sensor online, uplink "
                   "connected", ok, e.d1.tail()):
        raise RuntimeError("daemon 1 did not come up")
    e.d1_pid = e.d1.pid
    e.mon = Monitor(e.cli, e.ports["facade"])
    # results and alarm events flowing before the faults start
    C.check("setup: results and press alarm events reach the broker",
            wait_until(lambda: {r["kind"] for _, r in e.recs.update()} >= {"result", "alert"},
                       20, 0.25), sorted({r["kind"] for _, r in e.recs.update()}))


def healthy_polling(e, label, t0, t1, names=("fan", "press")):
    """The other devices stayed online, were polled at the configured rate and never went
    more than 1 s without a successful poll (from the monitor's samples in [t0, t1])."""
    w = [s for s in e.mon.window(t0, t1) if s["devices"]]
    if len(w) < 2:
        C.check(f"{label}: monitor samples", False, f"{len(w)} samples")
        return
    dur = (w[-1]["t"] - w[0]["t"])
    worst_age, offline, rates = 0, [], {}
    for n in names:
        for s in w:
            state, _, last_ok = s["devices"].get(n, (None, 0, 0))
            if state != "online":
                offline.append((n, state))
            worst_age = max(worst_age, s["wall"] - last_ok)
        rates[n] = (w[-1]["devices"][n][1] - w[0]["devices"][n][1]) / dur if dur > 0 else 0
    expect = 1000.0 / POLL_MS
    C.check(f"{label}: {', '.join(names)} stayed online and were polled at >= 70 % of "
            f"{expect:.0f}/s ({', '.join(f'{n} {r:.1f}/s' for n, r in rates.items())})",
            not offline and all(r >= 0.7 * expect for r in rates.values()), offline[:5])
    C.check(f"{label}: no polling stall: the age of their last successful poll stayed <= 1 s "
            f"(worst {worst_age} ms in {len(w)} samples)", worst_age <= 1000)
    return worst_age


def phase_flapping(e):
    """1. The flapping Modbus device."""
    t_start = time.monotonic()
    wall_start = now_ms()
    detect, reconnect = [], []
    last_start = time.monotonic()
    for i in range(FLAP_CYCLES):
        t_kill = time.monotonic()
        e.flap.stop(signal.SIGKILL if i % 2 else signal.SIGTERM, 5)
        if wait_until(lambda: e.cli.dev_state("flap") == "offline", FLAP_DOWN + 2.0, 0.05):
            detect.append(time.monotonic() - t_kill)
        time.sleep(max(0.0, t_kill + FLAP_DOWN - time.monotonic()))
        if not e.flap.start("vibgate-sim: ready", 10):
            C.check(f"flap: simulator restart {i + 1}", False, e.flap.tail())
            break
        last_start = time.monotonic()
        if wait_until(lambda: e.cli.dev_state("flap") == "online", 5.0, 0.05):
            reconnect.append(time.monotonic() - last_start)
        time.sleep(max(0.0, t_kill + FLAP_PERIOD - time.monotonic()))
    t_end = time.monotonic()
    C.check(f"flap: {FLAP_CYCLES} stop/start cycles: the daemon stayed up (same pid)",
            e.d1.alive() and e.d1.pid == e.d1_pid, e.d1.tail())
    C.check(f"flap: every stop seen as offline ({len(detect)}/{FLAP_CYCLES}, at most "
            f"{max(detect, default=0):.2f} s after the stop)", len(detect) == FLAP_CYCLES)
    C.check(f"flap: every restart seen as online within 5 s ({len(reconnect)}/{FLAP_CYCLES}, "
            f"at most {max(reconnect, default=0):.2f} s)", len(reconnect) == FLAP_CYCLES)
    worst = healthy_polling(e, "flap", t_start, t_end)

    # health events of the flapping device as the broker received them
    def flap_health():
        return [r for _, r in sorted(e.recs.update(), key=lambda x: x[1]["msg_id"])
                if r["asset"] == "flap" and r["kind"] == "health" and r["ts"] >= wall_start]

    def transitions():
        seq = []
        for r in flap_health():
            if not seq or seq[-1][0] != r["metrics"]["state"]:
                seq.append((r["metrics"]["state"], r["metrics"]["detail"]))
        return seq
    wait_until(lambda: len([s for s in transitions() if s[0] == "online"]) >= FLAP_CYCLES, 10,
               0.25)
    seq = transitions()
    offs = [s for s in seq if s[0] == "offline"]
    ons = [s for s in seq if s[0] == "online"]
    C.check(f"flap: each down/up reached the broker as one offline and one online health event "
            f"({len(offs)} offline, {len(ons)} online, {len(seq)} transitions)",
            len(offs) == FLAP_CYCLES and len(ons) == FLAP_CYCLES and seq and
            seq[-1][0] == "online", [s[0] for s in seq])
    C.check("flap: every offline event carries the error",
            offs and all(d for _, d in offs), offs[:3])

    # online again, values fresh: the uptime tag restarts with the simulator
    def fresh():
        rc, tags, _ = e.cli("tags", "flap")
        t = {x["name"]: x for x in (tags or [])}.get("uptime_s")
        since = time.monotonic() - last_start
        return t if (t and t["good"] and t["value"] <= since + 1.5 and
                     now_ms() - t["ts_ms"] < 1000) else None
    t1 = wait_until(fresh, 5, 0.2)
    time.sleep(1.2)
    t2 = fresh()
    C.check("flap: online at the end, its tag values update (uptime restarted with the "
            "simulator and counts up)", e.cli.dev_state("flap") == "online" and t1 and t2 and
            t2["value"] > t1["value"], f"{t1} -> {t2}")

    def window_age():
        rc, assets, _ = e.cli("assets")
        a = {x["name"]: x for x in (assets or [])}.get("flap")
        return now_ms() - a["last_window_ms"] if a else 1e9
    age = wait_until(lambda: window_age() < 1000, 5, 0.2) and window_age()
    C.check("flap: its asset gets fresh windows again (last window < 1 s old)",
            age is not False and age < 1000, f"age {age} ms")
    note("1 Modbus flapping", "stop/start cycles survived (period, down time)",
         f"{len(reconnect)}/{FLAP_CYCLES} ({FLAP_PERIOD:.0f} s, {FLAP_DOWN} s down)")
    note("1 Modbus flapping", "device stop -> `devices` offline (max)",
         f"{max(detect, default=0):.2f} s")
    note("1 Modbus flapping", "device back -> `devices` online (max)",
         f"{max(reconnect, default=0):.2f} s")
    note("1 Modbus flapping", "health events at the broker (offline / online)",
         f"{len(offs)} / {len(ons)}")
    note("1 Modbus flapping", "worst age of the healthy devices' last poll",
         f"{worst} ms (poll every {POLL_MS} ms)")


def phase_serial(e):
    """2. The serial line unplugged and replugged."""
    def vib():
        return e.cli.devices().get("vib", {})

    def gearbox_window():
        rc, assets, _ = e.cli("assets")
        return {x["name"]: x for x in (assets or [])}.get("gearbox", {}).get("last_window_ms", 0)
    v0 = vib()
    C.check("serial: sensor online and reading before the unplug",
            v0.get("state") == "online" and v0.get("polls", 0) > 0, v0)
    t_start = time.monotonic()
    t_unplug = time.monotonic()
    e.serial.stop(signal.SIGTERM, 5)
    C.check("serial: the pty is gone (simulator stopped, link removed)",
            not os.path.lexists(e.pty), e.pty)
    off = wait_until(lambda: (lambda v: v if v.get("state") == "offline" else None)(vib()),
                     3, 0.05)
    t_off = time.monotonic() - t_unplug
    C.check(f"serial: reported offline {t_off:.2f} s after the unplug, error names the port",
            off and not off["connected"] and e.pty in off["last_error"], off)
    time.sleep(max(0.0, t_unplug + SERIAL_UNPLUGGED - time.monotonic()))
    v1 = vib()
    frames_unplugged = v1.get("polls")
    win_unplugged = gearbox_window()
    C.check("serial: still offline while unplugged, error says the port cannot be opened",
            v1.get("state") == "offline" and e.pty in v1.get("last_error", "") and
            "No such file" in v1.get("last_error", ""), v1)
    C.check("serial: the daemon keeps running and answering while unplugged",
            e.d1.alive() and e.d1.pid == e.d1_pid and e.cli.status() is not None)
    t_replug = time.monotonic()
    C.check("serial: replugged (a new pty at the same path)",
            e.serial.start("vibgate-sim: ready", 10) and os.path.exists(e.pty), e.serial.tail())
    on = wait_until(lambda: vib().get("state") == "online", 20, 0.1)
    t_on = time.monotonic() - t_replug
    C.check(f"serial: back online {t_on:.1f} s after the replug (reconnect backoff), without a "
            f"restart", on and e.d1.pid == e.d1_pid, vib())
    grown = wait_until(lambda: vib().get("polls", 0) > (frames_unplugged or 0) + 20, 5, 0.2)
    gw = wait_until(lambda: gearbox_window() > win_unplugged and
                    now_ms() - gearbox_window() < 2000, 8, 0.2)
    C.check("serial: frames count up again and the gearbox asset gets new windows",
            grown and gw, f"frames {frames_unplugged} -> {vib().get('polls')}")
    healthy_polling(e, "serial", t_start, time.monotonic(), ("fan", "press", "flap"))

    # the unplug and the replug reached the broker as health events (regression: serial sensor
    # state changes were only logged)
    wall_unplug = now_ms() - int((time.monotonic() - t_unplug) * 1000) - 500

    def vib_health():
        return [r["metrics"]["state"] for _, r in sorted(e.recs.update(), key=lambda x: x[1]["msg_id"])
                if r["asset"] == "vib" and r["kind"] == "health" and r["ts"] >= wall_unplug]
    wait_until(lambda: "online" in vib_health(), 10, 0.25)
    states = vib_health()
    C.check("serial: the unplug and the replug reached the broker as offline and online health "
            "events", "offline" in states and "online" in states[states.index("offline"):], states)
    note("2 serial unplug", "unplugged for", f"{SERIAL_UNPLUGGED:.1f} s")
    note("2 serial unplug", "unplug -> `devices` offline", f"{t_off:.2f} s")
    note("2 serial unplug", "replug -> online (1-2-4-8 s retry backoff)", f"{t_on:.1f} s")


def drained(e, cli, max_age_ms=2000):
    """The outbox holds nothing older than max_age_ms (live data keeps coming) and the uplink
    is connected: the queue answer, or None."""
    q = cli.queue()
    if not q or not q["uplink_connected"]:
        return None
    if q["depth"] == 0 or now_ms() - q["oldest_ms"] < max_age_ms:
        return q
    return None


def phase_broker_restarts(e):
    """3. The broker restarted repeatedly."""
    sessions0 = e.recs.sessions()
    alerts0 = len([1 for _, r in e.recs.update() if r["kind"] == "alert"])
    t_start = time.monotonic()
    reconnect = []
    for i in range(BROKER_RESTARTS):
        t0 = time.monotonic()
        e.broker.stop()
        e.proxy.refuse()   # while it is down: connection refused (RST), as from a closed port
        time.sleep(max(0.0, t0 + BROKER_DOWN - time.monotonic()))
        e.broker.start(timeout=15)
        # let the subscriber resubscribe first so it cannot miss what the daemon resends
        e.col.wait_connected(15)
        t_up = time.monotonic()
        e.proxy.forward()
        if wait_until(lambda: (e.cli.status() or {}).get("uplink_connected"), 8, 0.1):
            reconnect.append(time.monotonic() - t_up)
        time.sleep(max(0.0, t0 + BROKER_PERIOD - time.monotonic()))
    t_end = time.monotonic()
    C.check(f"broker: {BROKER_RESTARTS} restarts: the daemon stayed up and reconnected after "
            f"each within 8 s ({len(reconnect)}/{BROKER_RESTARTS}, at most "
            f"{max(reconnect, default=0):.1f} s)",
            e.d1.alive() and len(reconnect) == BROKER_RESTARTS, e.d1.tail())
    q = wait_until(lambda: drained(e, e.cli), 20, 0.25)
    t_drain = time.monotonic() - t_end
    st = e.cli.status()
    C.check("broker: afterwards `vibgate status` says connected and the outbox is drained",
            q is not None and st and st["uplink_connected"], f"{q} {st and st['uplink_state']}")
    new_sessions = e.recs.sessions() - sessions0
    C.check(f"broker: a new uplink session per reconnect ({len(new_sessions)} new sessions)",
            len(new_sessions) >= BROKER_RESTARTS, sorted(new_sessions))
    alerts = len([1 for _, r in e.recs.update() if r["kind"] == "alert"]) - alerts0
    C.check(f"broker: alarm events kept flowing through the restarts ({alerts} received)",
            alerts > 0)
    max_id, miss = check_delivered("broker", e.db1, e.recs)
    w = e.mon.window(t_start, t_end)
    C.check("broker: the daemon answered the CLI throughout (max "
            f"{max((s['status_s'] for s in w), default=0):.2f} s)",
            w and all(s["ok"] for s in w) and max(s["status_s"] for s in w) < 2.0)
    note("3 broker restarts", "restarts (period, down time)",
         f"{len(reconnect)}/{BROKER_RESTARTS} ({BROKER_PERIOD:.0f} s, {BROKER_DOWN:.0f} s down)")
    note("3 broker restarts", "broker back -> uplink connected (max)",
         f"{max(reconnect, default=0):.1f} s")
    peak = max((s["depth"] or 0 for s in w), default=0)
    note("3 broker restarts", "outbox peak during the restarts / drained after the last",
         f"{peak} records / {t_drain:.1f} s")
    note("3 broker restarts", "outbox ids checked / missing", f"{max_id} / {len(miss)}")


def phase_blackhole(e):
    """4. The connection blackholed."""
    st0 = e.cli.status()
    stored0 = st0["counters"]["vibgate_results_stored_total"]
    t0 = time.monotonic()
    e.proxy.blackhole()
    down = wait_until(lambda: (e.cli.status() or {"uplink_connected": True})[
        "uplink_connected"] is False, 2 * KEEPALIVE + 8, 0.1)
    t_detect = time.monotonic() - t0
    bound = 2 * KEEPALIVE + 3
    C.check(f"blackhole: uplink reported disconnected {t_detect:.1f} s after the blackhole "
            f"(keepalive {KEEPALIVE} s, bound {bound} s)", down and t_detect <= bound)
    time.sleep(BLACKHOLE_AFTER_DETECT)   # reconnect attempts into the blackhole time out
    st1 = e.cli.status()
    q1 = e.cli.queue()
    stored = st1["counters"]["vibgate_results_stored_total"] - stored0
    C.check(f"blackhole: the daemon kept ingesting and storing ({stored:.0f} results stored, "
            f"outbox {q1 and q1['depth']})", e.d1.alive() and stored > 0 and q1 and
            q1["depth"] > 0 and not st1["uplink_connected"])
    fh = facade_health(e.ports["facade"])
    C.check("blackhole: the facade says uplink down, heartbeat fresh",
            fh and fh["uplink"] == 0 and fh["heartbeat_age_s"] <= 2, fh)
    backlog = max((s["depth"] or 0 for s in e.mon.window(t0)), default=0)
    t_lift = time.monotonic()
    outage = t_lift - t0
    e.proxy.forward()
    up = wait_until(lambda: (e.cli.status() or {}).get("uplink_connected"), 15, 0.1)
    t_up = time.monotonic() - t_lift
    C.check(f"blackhole: reconnected {t_up:.1f} s after the path came back", up)
    q = wait_until(lambda: drained(e, e.cli), 30, 0.25)
    t_drain = time.monotonic() - t_lift
    C.check(f"blackhole: backlog of {backlog} drained {t_drain:.1f} s after the path came back",
            q is not None, e.cli.queue())
    max_id, miss = check_delivered("blackhole", e.db1, e.recs)
    note("4 blackhole", "blackhole -> uplink reported down", f"{t_detect:.1f} s "
         f"(keepalive {KEEPALIVE} s)")
    note("4 blackhole", "blackholed for / backlog peak", f"{outage:.1f} s / {backlog} records")
    note("4 blackhole", "path back -> connected / drained", f"{t_up:.1f} s / {t_drain:.1f} s")


def phase_slow(e):
    """5. The slow broker."""
    rec0 = len(e.recs.update())
    sessions0 = e.recs.sessions()
    t0 = time.monotonic()
    e.slow.set(delay_s=SLOW_DELAY)
    time.sleep(SLOW_EACH)
    rec1 = len(e.recs.update())
    t1 = time.monotonic()
    e.slow.set(delay_s=SLOW_DELAY, rate_up=SLOW_RATE)
    time.sleep(SLOW_EACH)
    rec2 = len(e.recs.update())
    t2 = time.monotonic()
    peak = max((s["depth"] or 0 for s in e.mon.window(t1, t2)), default=0)
    e.slow.set(0, 0)
    w = e.mon.window(t0, t2)
    lat = max((max(s["status_s"], s["devices_s"]) for s in w), default=99)
    hb = max((s["facade"]["heartbeat_age_s"] if s["facade"] else 99 for s in w), default=99)
    beats = {s["facade"]["heartbeat"] for s in w if s["facade"]}
    C.check(f"slow: delivery continued with {SLOW_DELAY * 1000:.0f} ms each way "
            f"({rec1 - rec0} records in {t1 - t0:.0f} s)", rec1 - rec0 > 20)
    C.check(f"slow: ... and throttled to {SLOW_RATE} B/s ({rec2 - rec1} records in "
            f"{t2 - t1:.0f} s, outbox peak {peak})", rec2 - rec1 > 0)
    C.check(f"slow: the loop was not stalled: `vibgate status`/`devices` answered within 2 s "
            f"(max {lat:.2f} s in {len(w)} samples), facade heartbeat age <= 2 s (max {hb})",
            w and all(s["ok"] for s in w) and lat < 2.0 and hb <= 2 and len(beats) >= 5)
    healthy_polling(e, "slow", t0, t2, ("fan", "press", "flap"))
    C.check("slow: the session survived (no reconnect)", e.recs.sessions() == sessions0 and
            all(s["uplink"] for s in w), sorted(e.recs.sessions() - sessions0))
    q = wait_until(lambda: drained(e, e.cli), 30, 0.25)
    t_drain = time.monotonic() - t2
    C.check(f"slow: drained {t_drain:.1f} s after the path got fast again", q is not None,
            e.cli.queue())
    max_id, miss = check_delivered("slow", e.db1, e.recs)
    note("5 slow broker", f"{SLOW_DELAY * 1000:.0f} ms each way, {SLOW_EACH:.0f} s",
         f"{(rec1 - rec0) / (t1 - t0):.1f} records/s delivered")
    note("5 slow broker", f"+ {SLOW_RATE} B/s upstream, {SLOW_EACH:.0f} s",
         f"{(rec2 - rec1) / (t2 - t1):.1f} records/s delivered, outbox peak {peak}")
    note("5 slow broker", "max CLI answer / facade heartbeat age", f"{lat:.2f} s / {hb} s")
    note("5 slow broker", "fast again -> drained", f"{t_drain:.1f} s")


def stop_daemon1(e):
    """The orderly stop of daemon 1 and its store's final accounting."""
    e.mon.stop()
    rc, dt = e.d1.stop(signal.SIGTERM, 15)
    C.check(f"daemon 1: SIGTERM -> exit 0 ({dt:.1f} s)", rc == 0, e.d1.tail())
    time.sleep(1.0)
    con = sqlite3.connect(e.db1)
    integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
    con.close()
    C.check("daemon 1: PRAGMA integrity_check", integrity == "ok", integrity)
    max_id, miss = check_delivered("daemon 1 (whole run)", e.db1, e.recs, running=False)
    _, pending, meta = outbox_state(e.db1, running=False)
    ev = {k: v for k, v in meta.items() if k.startswith("evicted_outbox")}
    C.check("daemon 1: nothing evicted (default quota)", not any(ev.values()), ev)
    dups, bad, order_bad = e.recs.integrity()
    C.check(f"daemon 1: duplicates carry the same record ({dups} duplicates), first arrivals in "
            f"msg_id order per asset, lane and stream", bad == 0 and order_bad == 0,
            f"{bad} mismatched, {order_bad} out of order")
    note("1-5 daemon 1", "outbox ids stored / delivered / queued at stop / missing",
         f"{max_id} / {len(e.recs.ids() & set(range(1, max_id + 1)))} / {len(pending)} / "
         f"{len(miss)} ({dups} duplicates)")


def phase_quota(e):
    """6. A long broker outage against a 1 MiB storage quota (daemon 2)."""
    state = os.path.join(e.work, "d2")
    os.makedirs(state)
    cfg = os.path.join(e.work, "d2.toml")
    win = 'window = 1024\noverlap = 0.75\n'   # 100 windows/s per asset, every one stored
    daemon_config(cfg, state, node="fault2", uplink_port=e.proxy.port,
                  devices=[e.dev_fan, e.dev_press],
                  assets=[("fan", "fan/accel", win), ("press", "press/accel", win)],
                  extra_daemon="result_interval_ms = 0\n",
                  storage=f"quota_mb = {QUOTA_MB}\n", uplink_extra="backlog_msgs_per_s = 200\n")
    db = os.path.join(state, "vibgate.db")
    cli = Cli(e.cli_exe, os.path.join(state, "vibgate.sock"))
    recs = Records(e.col, "fault2")
    d2 = Proc("vibgated-2", [e.vibgated, "-c", cfg], os.path.join(e.work, "vibgated-2.log"))
    ok = d2.start("ready:", 20) and wait_until(
        lambda: (cli.status() or {}).get("uplink_connected"), 15, 0.2)
    if not C.check("quota: daemon 2 up (quota 1 MiB, every window stored), uplink connected",
                   ok, d2.tail()):
        d2.stop()
        return
    pid = d2.pid
    mon = Monitor(cli, None, 0.5)
    outage = t_quota = t_drain = 0.0
    backlog = depth_at_return = dropped_return = stored = 0
    try:
        wait_until(lambda: len(recs.update()) > 100, 10, 0.2)
        time.sleep(1.0)
        t0 = time.monotonic()
        e.broker.stop()
        e.proxy.refuse()
        down = wait_until(lambda: (cli.status() or {"uplink_connected": True})[
            "uplink_connected"] is False, 5, 0.1)
        C.check("quota: broker down -> uplink disconnected", down)

        # sample the queue through the outage: until the first eviction, then as long again
        # (at most 15 s more): several eviction rounds
        samples = []
        t_quota = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            q = cli.queue()
            if q:
                samples.append(q)
                if t_quota is None and q["dropped_total"] > 0:
                    t_quota = time.monotonic() - t0
                    deadline = time.monotonic() + min(t_quota, 15.0)
            time.sleep(0.25)
        first = next((q for q in samples if q["dropped_total"] > 0), None)
        C.check(f"quota: the quota was reached and undelivered records were evicted and counted "
                f"in `vibgate queue` after {t_quota or 0:.1f} s of outage", first is not None,
                samples[-1:] )
        if t_quota is None:
            t_quota = 0.0
        q1 = cli.queue()
        st = cli.status()
        c = st["counters"] if st else {}
        ev_bulk = c.get("vibgate_store_evictions_total{class=outbox_bulk}", 0)
        ev_alerts = c.get("vibgate_store_evictions_total{class=outbox_alerts}", -1)
        C.check(f"quota: evictions keep being counted ({first and first['dropped_total']} -> "
                f"{q1 and q1['dropped_total']} dropped), status shows "
                f"vibgate_store_evictions_total{{class=outbox_bulk}} = {ev_bulk:.0f}",
                first and q1 and q1["dropped_total"] > first["dropped_total"] and
                ev_bulk >= q1["dropped_total"] > 0)
        C.check("quota: no alarm event was evicted (only bulk results)", ev_alerts == 0,
                ev_alerts)
        lim = QUOTA_MB << 20
        peak_bytes = max((q["bytes"] for q in samples), default=0)
        C.check(f"quota: the database (with its WAL) stays near the quota (peak {peak_bytes} "
                f"bytes, quota {lim})", samples and peak_bytes <= 1.3 * lim)
        w = mon.window(t0)
        C.check("quota: the daemon stayed up and answered throughout the outage "
                f"(max {max((s['status_s'] for s in w), default=0):.2f} s)",
                d2.alive() and d2.pid == pid and w and all(s["ok"] for s in w) and
                max(s["status_s"] for s in w) < 2.0)
        backlog = max((q["depth"] for q in samples), default=0)
        dropped_return = (cli.queue() or {}).get("dropped_total", 0)
        outage = time.monotonic() - t0
        e.broker.start(timeout=15)
        e.col.wait_connected(15)
        t_up = time.monotonic()
        e.proxy.forward()
        up = wait_until(lambda: (cli.status() or {}).get("uplink_connected"), 15, 0.1)
        C.check(f"quota: reconnected {time.monotonic() - t_up:.1f} s after the broker returned",
                up)
        depth_at_return = (cli.queue() or {}).get("depth", 0)
        q2 = wait_until(lambda: drained(e, cli), 90, 0.25)
        t_drain = time.monotonic() - t_up
        C.check(f"quota: the backlog ({depth_at_return} records) drained {t_drain:.1f} s after "
                f"the broker returned (backlog cap 200/s)", q2 is not None, cli.queue())
        st = cli.status()
        stored = (st["counters"]["vibgate_results_stored_total"] if st else 0)
    finally:
        mon.stop()
        rc, dt = d2.stop(signal.SIGTERM, 15)
    C.check(f"quota: SIGTERM -> exit 0 ({dt:.1f} s)", rc == 0, d2.tail())
    time.sleep(1.0)
    max_id, pending, meta = outbox_state(db, running=False)
    evicted_n = meta.get("evicted_outbox_bulk", 0) + meta.get("evicted_outbox_alerts", 0)
    wait_until(lambda: len(set(range(1, max_id + 1)) - recs.ids() - pending) <= evicted_n, 10,
               0.25)
    got = recs.ids()
    missing = sorted(set(range(1, max_id + 1)) - got - pending)
    delivered = len(got & set(range(1, max_id + 1)))
    # the resent in-flight window may be delivered and then evicted: at most max_inflight
    C.check(f"quota: no silent loss: of {max_id} outbox ids {delivered} delivered, "
            f"{len(pending)} queued at stop, {len(missing)} missing <= {evicted_n} evicted",
            max_id > 0 and len(missing) <= evicted_n and evicted_n - len(missing) <= 2048,
            missing[:10])
    # Oldest first: what was evicted before the broker returned precedes every bulk record
    # that arrived as backlog. Evicted entries that had reached the broker before the outage
    # (the in-flight window, resent later) are not missing; an eviction round after the return
    # may take entries past the backlog's cursor, so only the count evicted before is required.
    hist = [r["msg_id"] for _, r in recs.update() if r["historical"] and r["lane"] == "bulk"]
    reached_then_evicted = evicted_n - len(missing)
    older = [m for m in missing if hist and m < min(hist)]
    need = max(1, dropped_return - reached_then_evicted)
    C.check(f"quota: the evicted were the oldest: {len(older)} missing ids precede every bulk "
            f"record delivered as backlog ({len(hist)} historical), >= {need} evicted before the "
            f"broker returned", hist and len(older) >= need,
            f"missing {missing[:3]}..{missing[-3:]}, first historical {min(hist, default=None)}")
    con = sqlite3.connect(db)
    n_events = con.execute("SELECT count(*) FROM alert_events").fetchone()[0]
    integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
    con.close()
    alert_ids = {r["msg_id"] for _, r in recs.update() if r["kind"] == "alert"}
    C.check(f"quota: every alarm event delivered ({len(alert_ids)} of {n_events})",
            n_events > 0 and len(alert_ids) >= n_events)
    C.check("quota: PRAGMA integrity_check", integrity == "ok", integrity)
    dups, bad, order_bad = recs.integrity()
    C.check(f"quota: duplicates identical ({dups}), first arrivals in order per asset, lane "
            f"and stream (backlog / live)",
            bad == 0 and order_bad == 0, f"{bad} mismatched, {order_bad} out of order")
    note("6 outage + 1 MiB quota", "outage / until the first eviction", f"{outage:.1f} s / "
         f"{t_quota:.1f} s")
    note("6 outage + 1 MiB quota", "results stored (100/s per asset) / outbox peak",
         f"{stored:.0f} / {backlog}")
    note("6 outage + 1 MiB quota", "evicted undelivered (counted; before the broker returned) / "
         "missing at the broker", f"{evicted_n} ({dropped_return}) / {len(missing)}")
    note("6 outage + 1 MiB quota", "backlog at return -> drained (200/s cap)",
         f"{depth_at_return} -> {t_drain:.1f} s")
    note("6 outage + 1 MiB quota", "outbox ids / delivered / queued at stop",
         f"{max_id} / {delivered} / {len(pending)}")


def state_base(build):
    """A short folder under the build tree for state (control sockets: <= 107 bytes, not under
    /tmp); like test_daemon_e2e.py, a long or temporary build path falls back to
    $XDG_RUNTIME_DIR or ~/.cache."""
    base = os.path.realpath(build)
    temp = any(base == t or base.startswith(t + "/") for t in ("/tmp", "/var/tmp", "/dev/shm"))
    if len(base) > 50 or temp:
        base = os.environ.get("XDG_RUNTIME_DIR") or os.path.join(os.path.expanduser("~"), ".cache")
    os.makedirs(base, exist_ok=True)
    return base


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("VIBGATE_BUILD_DIR") or
                    os.path.join(HERE, "..", "..", "build"))
    ap.add_argument("--phases", default="1,2,3,4,5,6", help="comma-separated subset of 1..6")
    args = ap.parse_args()
    phases = {int(x) for x in args.phases.split(",") if x.strip()}
    gw = os.path.join(os.path.abspath(args.build), "gateway")
    e = Env()
    e.vibgated = os.environ.get("VIBGATED") or os.path.join(gw, "vibgated")
    e.sim = os.environ.get("VIBGATE_SIM") or os.path.join(gw, "vibgate-sim")
    e.cli_exe = os.environ.get("VIBGATE_CLI") or os.path.join(gw, "vibgate")
    for exe in (e.vibgated, e.sim, e.cli_exe):
        if not os.access(exe, os.X_OK):
            print(f"FAIL binary not found: {exe} (set VIBGATED, VIBGATE_SIM, VIBGATE_CLI or "
                  "--build)")
            return 1
    e.work = tempfile.mkdtemp(prefix="netfault-", dir=state_base(args.build))
    t_all = time.monotonic()
    e.broker = e.col = e.proxy = e.slow = e.mon = None
    try:
        setup(e)
        for n, fn in ((1, phase_flapping), (2, phase_serial), (3, phase_broker_restarts),
                      (4, phase_blackhole), (5, phase_slow)):
            if n not in phases:
                continue
            t0 = time.monotonic()
            try:
                fn(e)
            except Exception as ex:  # noqa: BLE001  a phase that crashes fails; the others run
                C.check(f"phase {n} ({fn.__name__}) ran without error", False, repr(ex))
            finally:
                # whatever happened, give the next phase a working network
                for p in (e.flap, e.serial):
                    if not p.alive():
                        p.start("vibgate-sim: ready", 10)
                if not e.broker.running:
                    e.broker.start(timeout=15)
                e.proxy.forward()
                e.slow.set(0, 0)
            print(f"-- phase {n}: {time.monotonic() - t0:.1f} s", flush=True)
        stop_daemon1(e)
        if 6 in phases:
            t0 = time.monotonic()
            try:
                phase_quota(e)
            except Exception as ex:  # noqa: BLE001
                C.check("phase 6 (phase_quota) ran without error", False, repr(ex))
            print(f"-- phase 6: {time.monotonic() - t0:.1f} s", flush=True)
    except Exception as ex:  # noqa: BLE001
        C.check("setup ran without error", False, repr(ex))
    finally:
        if e.mon is not None:
            e.mon.stop()
        for p in PROCS:
            if p.alive():
                p.stop(signal.SIGKILL if p.name.startswith("sim") else signal.SIGTERM, 10)
        for closer in (e.col and e.col.stop, e.proxy and e.proxy.close,
                       e.slow and e.slow.close, e.broker and e.broker.stop):
            try:
                if closer:
                    closer()
            except Exception:  # noqa: BLE001
                pass
    total = time.monotonic() - t_all
    print(f"\nnetwork-fault numbers ({total:.0f} s in all):")
    print("| phase | measure | value |\n|---|---|---|")
    for phase, measure, value in NUMBERS:
        print(f"| {phase} | {measure} | {value} |")
    if C.failed:
        print(f"state, logs and configurations kept in {e.work}")
    else:
        shutil.rmtree(e.work, ignore_errors=True)
    print(f"{C.passed} passed, {C.failed} failed")
    return 1 if C.failed else 0


if __name__ == "__main__":
    sys.exit(main())
