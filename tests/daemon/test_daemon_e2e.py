#!/usr/bin/python3
"""vibgated end to end: the real daemon against the plant simulator, a real MQTT broker, Debian's
`mbpoll` as the PLC, the `vibgate` operator CLI, Prometheus, systemd notify and the SQLite file —
then the same daemon fed bad input.

Run as `/usr/bin/python3 test_daemon_e2e.py` with VIBGATED, VIBGATE_SIM, VIBGATE_CLI and
VIBGATE_BUILD_DIR set (ctest does this; without them the binaries are looked for next to
VIBGATE_CLI). Everything runs on loopback with ports picked by binding to port 0; state lives
in a temporary folder under the build tree (the daemon refuses control sockets under /tmp).
Every wait is bounded in count and time; every process is stopped by PID in a finally block.
Prints one line per check and a final `N passed, M failed`; exits 1 if any check failed.

  a) bad input that needs no running daemon: malformed configurations (unknown key in
     [[asset]], unknown channel, channel and channels, a channel listed twice, raise_k > raise_n, TOML syntax, unknown section, duplicate
     asset, bad log_level, port out of range, unknown speed_tag, write-back to an unknown device,
     coil value 2) -> --check-config exits 2 with
     one line naming file:line and the key; --print-sample-config is deploy/vibgate.toml byte
     for byte and that file checks ok; an unwritable state directory -> exit 1 naming it (as
     root: run as 'nobody' through setpriv, else skipped); `vibgate status` without a daemon
     -> exit 3 "not running" (no socket file, and a stale one);
  b) the demo plant (deploy/demo/plant.toml + vibgated.toml, short learning): fan1 healthy,
     pump2 develops an outer-race fault after learning, rig3 replays a faulty CWRU recording
     scored by an offline model (a healthy synth when the recordings are absent). READY=1 and
     WATCHDOG=1 on NOTIFY_SOCKET; a second daemon on the same state directory / socket is
     refused while the first keeps answering; garbage on the control socket is dropped;
     pump2 reaches alarm level 2 while fan1 stays 0 (CLI, facade coils and registers via
     mbpoll); the alert is listed, reaches the broker as a Sparkplug DDATA (decoded with
     protoc), is acknowledged (CLI, facade register); status/devices/tags/trend/spectrum/
     queue/model list answer sensibly, rollback without an earlier version fails in one line;
     /metrics counts scored windows; SIGTERM -> exit 0 within 5 s, STOPPING=1, and the SQLite
     file holds the alerts and passes integrity_check;
  c) a second daemon while (b) runs: a serial sensor on a missing port (offline, error names
     the port), an unreachable broker (outbox grows, uplink not connected), SIGHUP with a broken
     file (refused, keeps running) and with a valid change (applied).
"""

import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(HERE, "..")
sys.path.insert(0, TESTS)
sys.path.insert(0, os.path.join(TESTS, "sim"))
sys.path.insert(0, os.path.join(TESTS, "uplink"))
from checks import Checks  # noqa: E402  (tests/checks.py)
import checks  # noqa: E402  (wait_until)
# free_port() and mbpoll(port, unit, ref, count, type) from the simulator's test.
from test_sim_mbpoll import free_port, mbpoll  # noqa: E402
import mqtt_env  # noqa: E402  (tests/uplink/mqtt_env.py)


def wait_until(fn, timeout, interval=0.5):
    """checks.wait_until polling every half second, this test's pace."""
    return checks.wait_until(fn, timeout, interval)


SOURCE = os.environ.get("VIBGATE_SOURCE_DIR") or os.path.abspath(os.path.join(HERE, "..", ".."))
CLI = os.environ.get("VIBGATE_CLI", "")
_BIN = os.path.dirname(CLI) if CLI else ""
VIBGATED = os.environ.get("VIBGATED") or (os.path.join(_BIN, "vibgated") if _BIN else "")
SIM = os.environ.get("VIBGATE_SIM") or (os.path.join(_BIN, "vibgate-sim") if _BIN else "")
BUILD = os.environ.get("VIBGATE_BUILD_DIR", "")
DATA = os.environ.get("VIBGATE_DATA_DIR") or os.path.join(SOURCE, "..", "shared", "data", "bearings")
PROTO = os.path.join(SOURCE, "uplink", "proto", "sparkplug_b.proto")

LEARN_S = 10          # baseline learning of fan1 and pump2
FAULT_START_S = 22    # pump2's outer-race fault appears (simulator time)
ALARM_TIMEOUT_S = 100  # pump2 must be in alarm within this long after the daemon started

C = Checks()
_check = C.check
# details of long JSON answers are cut so that every check stays one readable line
C.check = lambda name, ok, detail="": _check(name, ok, str(detail)[:400].replace("\n", " | "))
PROCS = []  # every process started, stopped by PID at the end


# ---------------------------------------------------------------- processes and helpers

class Proc:
    """A child process with stdout+stderr in a log file."""

    def __init__(self, name, cmd, log_path, env=None):
        self.name = name
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.p = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.DEVNULL, stdout=self.log,
                                  stderr=subprocess.STDOUT, env=env)
        self.pid = self.p.pid
        PROCS.append(self)

    def alive(self):
        return self.p.poll() is None

    def text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def tail(self, n=15):
        return "\n".join(self.text().splitlines()[-n:])

    def wait_log(self, needle, timeout, start=0):
        """True once `needle` appears in the log after character `start` (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            if needle in self.text()[start:]:
                return True
            if time.monotonic() >= deadline or not self.alive():
                return needle in self.text()[start:]
            time.sleep(0.1)

    def stop(self, sig=signal.SIGTERM, timeout=8.0):
        """Signals the process by PID; returns (exit code or None if it had to be killed, s)."""
        t0 = time.monotonic()
        rc = self.p.poll()
        if rc is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                rc = self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.p.wait(timeout=10)
                rc = None
        elapsed = time.monotonic() - t0
        if not self.log.closed:
            self.log.close()
        return rc, elapsed


def run(cmd, timeout=30, env=None):
    """Runs a command to completion: (rc, stdout, stderr)."""
    try:
        p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                           env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None, "", f"timed out after {timeout} s"
    return p.returncode, p.stdout, p.stderr


def cli(sock, *args, timeout=20):
    """`vibgate <args> --socket sock`: (rc, stdout, stderr)."""
    return run([CLI, *args, "--socket", sock], timeout=timeout)


def cli_json(sock, *args, timeout=20):
    """`vibgate <args> --json --socket sock`: (rc, parsed JSON or None, stderr)."""
    rc, out, err = cli(sock, *args, "--json", timeout=timeout)
    try:
        data = json.loads(out) if rc == 0 else None
    except ValueError:
        data = None
        err += f" [unparsable JSON: {out[:200]!r}]"
    return rc, data, err

def by_name(items, key="name"):
    return {x.get(key): x for x in (items or [])}


def by_point(rows):
    """`assets --json` rows (one per channel) by point: the asset name for an asset with one
    channel, "<asset>:<channel>" (the daemon's model key) for an asset with several."""
    n = {}
    for r in rows or []:
        n[r["name"]] = n.get(r["name"], 0) + 1
    return {(r["name"] if n[r["name"]] == 1 else f'{r["name"]}:{r["channel"]}'): r
            for r in rows or []}


# pump2 has two accelerometers: the drive end develops the fault, the non-drive end stays healthy
PDE, PNDE = "pump2:pump2/accel", "pump2:pump2/accel_nde"


def one_line(text):
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return len(lines) == 1


def coils(port, first, count):
    """Coils first..first+count-1 (0-based) via mbpoll, {address: 0/1}; None on error."""
    rc, vals, _ = mbpoll(port, 1, first + 1, count, "0")
    if rc != 0 or len(vals) != count:
        return None
    return {first + i: int(vals[first + 1 + i]) for i in range(count)}


def input_regs(port, first, count):
    """Input registers first..first+count-1 (0-based) via mbpoll's hex display; None on error."""
    rc, vals, _ = mbpoll(port, 1, first + 1, count, "3:hex")
    if rc != 0 or len(vals) != count:
        return None
    return [int(vals[first + 1 + i], 16) for i in range(count)]


def state_base():
    """A folder for state under the build tree (control socket paths must stay short and not
    under /tmp); like deploy/demo.sh, a long (or temporary) build path falls back to
    $XDG_RUNTIME_DIR or ~/.cache."""
    base = os.path.realpath(BUILD or os.path.join(SOURCE, "build"))
    temp = any(base == t or base.startswith(t + "/") for t in ("/tmp", "/var/tmp", "/dev/shm"))
    if len(base) > 60 or temp:
        base = os.environ.get("XDG_RUNTIME_DIR") or os.path.join(os.path.expanduser("~"), ".cache")
    os.makedirs(base, exist_ok=True)
    return base


# ---------------------------------------------------------------- configurations

def demo_configs(run_dir, ports, mqtt_port, prom_port, real):
    """deploy/demo/{plant,vibgated}.toml filled in the way deploy/demo.sh does (plus a
    [prometheus] section); returns (plant path, daemon config path)."""
    if real:
        rig_machine = (f'[[machine]]\nname = "rig3"\nsource = "replay"\n'
                       f'file = "{DATA}/cwru48k_IR007_0hp_109.wav"\nshaft_hz = 29.933')
        rig_rate = "48000"
        rig_model = f'model = "{run_dir}/rig3.vgm"'
    else:
        rig_machine = ('[[machine]]\nname = "rig3"\nsource = "synth"\nshaft_hz = 29.933\n'
                       'defect = "none"')
        rig_rate = "25600"
        rig_model = ""
    subst = {"@PORT_FAN@": ports["fan"], "@PORT_PUMP@": ports["pump"], "@PORT_RIG@": ports["rig"],
             "@FACADE_PORT@": ports["facade"], "@MQTT_PORT@": mqtt_port, "@LEARN_S@": LEARN_S,
             "@FAULT_START@": FAULT_START_S, "@RIG_RATE@": rig_rate,
             "@STATE@": os.path.join(run_dir, "state"), "@RIG_MACHINE@": rig_machine,
             "@RIG_MODEL@": rig_model}
    out = []
    for name in ("plant.toml", "vibgated.toml"):
        with open(os.path.join(SOURCE, "deploy", "demo", name)) as f:
            text = f.read()
        for k, v in subst.items():
            text = text.replace(k, str(v))
        if name == "vibgated.toml":
            text += f'\n[prometheus]\nenabled = true\naddress = "127.0.0.1"\nport = {prom_port}\n'
        path = os.path.join(run_dir, name)
        with open(path, "w") as f:
            f.write(text)
        out.append(path)
    return out


BASE_CONFIG = """\
[daemon]
state_dir = "{state}"
control_socket = "{state}/vibgate.sock"
log_level = "info"

[uplink]
enabled = false

[modbus_facade]
enabled = false

[alarm]
raise_k = 3
raise_n = 5

[[device]]
name = "m1"
host = "127.0.0.1"
port = 15020
[[device.tag]]
name = "speed_rpm"
register = "input"
address = 0
[[device.waveform]]
name = "accel"
register = "input"
address = 100

[[asset]]
name = "m1"
channel = "m1/accel"
learn_s = 10
speed_tag = "m1/speed_rpm"
"""


def line_of(text, needle, nth=1):
    """1-based number of the nth line that contains `needle`."""
    n = 0
    for i, ln in enumerate(text.splitlines(), 1):
        if needle in ln:
            n += 1
            if n == nth:
                return i
    raise ValueError(needle)


def bad_configs(state):
    """(name, text, expected line, key or None) of malformed configurations."""
    base = BASE_CONFIG.format(state=state)
    cases = []
    t = base + 'colour = "red"\n'
    cases.append(("unknown key in [[asset]]", t, line_of(t, "colour ="), "colour"))
    t = base.replace('channel = "m1/accel"', 'channel = "m9/accel"')
    cases.append(("asset channel no device delivers", t, line_of(t, 'channel = "m9'), "channel"))
    t = base.replace("raise_k = 3", "raise_k = 6")
    cases.append(("[alarm] raise_k > raise_n", t, line_of(t, "raise_k ="), "raise_k"))
    t = base.replace('name = "m1"\nchannel', 'name = "m1\nchannel')
    cases.append(("TOML syntax error (unterminated string)", t, line_of(t, 'name = "m1', 2), None))
    t = base.replace("[alarm]", "[gizmo]\nsize = 3\n\n[alarm]")
    cases.append(("unknown top-level section", t, line_of(t, "[gizmo]"), "gizmo"))
    t = base + ('\n[[device.waveform]]\nname = "accel2"\nregister = "input"\naddress = 300\n'
                '\n[[asset]]\nname = "m1"\nchannel = "m1/accel2"\nlearn_s = 10\n')
    cases.append(("duplicate asset name", t, line_of(t, 'name = "m1"', 3), "name"))
    t = base.replace('channel = "m1/accel"', 'channel = "m1/accel"\nchannels = ["m1/accel"]')
    cases.append(("asset with channel and channels", t, line_of(t, "channels ="), "channels"))
    t = base.replace('channel = "m1/accel"', 'channels = ["m1/accel", "m1/accel"]')
    cases.append(("asset channels listing one twice", t, line_of(t, "channels ="), "channels"))
    t = base.replace('log_level = "info"', 'log_level = "info"\nkeep_model_inputs = "yes"')
    cases.append(("[daemon] keep_model_inputs not a boolean", t, line_of(t, "keep_model_inputs"),
                  "keep_model_inputs"))
    t = base.replace('log_level = "info"', 'log_level = "loud"')
    cases.append(("bad [daemon] log_level", t, line_of(t, "log_level ="), "log_level"))
    t = base.replace("[modbus_facade]\nenabled = false", "[modbus_facade]\nenabled = true\nport = 70000")
    cases.append(("[modbus_facade] port out of range", t, line_of(t, "port = 70000"), "port"))
    t = base.replace("[modbus_facade]\nenabled = false",
                     '[modbus_facade]\nenabled = false\nallow = ["10.0.0.0/33"]')
    cases.append(("[modbus_facade] allow with a bad network", t, line_of(t, "allow ="), "allow"))
    t = base.replace('speed_tag = "m1/speed_rpm"', 'speed_tag = "m1/nosuch"')
    cases.append(("speed_tag not a configured tag", t, line_of(t, "speed_tag ="), "speed_tag"))
    t = base + ('\n[[asset.action]]\non = "alarm"\ndevice = "plc9"\nregister = "coil"\n'
                'address = 3\n')
    cases.append(("write-back to an unknown device", t, line_of(t, 'device = "plc9"'), "device"))
    t = base + ('\n[[asset.action]]\ndevice = "m1"\nregister = "coil"\naddress = 3\nvalue = 2\n')
    cases.append(("write-back coil value 2", t, line_of(t, "value = 2"), "value"))
    return cases


# ---------------------------------------------------------------- (a) no daemon needed

def case_bad_configs(work):
    state = os.path.join(work, "cfg-state")
    good = os.path.join(work, "good.toml")
    with open(good, "w") as f:
        f.write(BASE_CONFIG.format(state=state))
    rc, out, err = run([VIBGATED, "-c", good, "--check-config"])
    C.check("config: the base of the malformed cases is valid", rc == 0, (out + err).strip())
    for i, (name, text, line, key) in enumerate(bad_configs(state)):
        path = os.path.join(work, f"bad{i}.toml")
        with open(path, "w") as f:
            f.write(text)
        rc, out, err = run([VIBGATED, "-c", path, "--check-config"])
        e = err.strip()
        ok = (rc == 2 and one_line(err) and e.startswith("vibgated: ") and f"{path}:{line}:" in e
              and (key is None or f": {key}:" in e or f".{key}:" in e))
        C.check(f"config: {name} -> exit 2, one line naming {os.path.basename(path)}:{line}"
                + (f" and '{key}'" if key else ""), ok, f"rc={rc} stderr={e!r} stdout={out.strip()!r}")
    C.check("config: nothing created by --check-config", not os.path.exists(state))
    rc, out, err = run([VIBGATED, "-c", os.path.join(work, "missing.toml"), "--check-config"])
    C.check("config: a missing file -> exit 2, one line 'cannot read'",
            rc == 2 and one_line(err) and "missing.toml: cannot read" in err, err.strip())


def case_sample_config():
    sample = os.path.join(SOURCE, "deploy", "vibgate.toml")
    p = subprocess.run([VIBGATED, "--print-sample-config"], capture_output=True, timeout=30)
    with open(sample, "rb") as f:
        want = f.read()
    C.check("sample: --print-sample-config equals deploy/vibgate.toml byte for byte",
            p.returncode == 0 and p.stdout == want,
            f"rc={p.returncode}, {len(p.stdout)} vs {len(want)} bytes")
    rc, out, err = run([VIBGATED, "-c", sample, "--check-config"])
    C.check("sample: --check-config deploy/vibgate.toml -> exit 0", rc == 0 and "ok" in out,
            (out + err).strip())


def case_unwritable_state(work):
    d = os.path.join(work, "ro")
    state = os.path.join(d, "state")
    os.makedirs(state)
    cfg = os.path.join(d, "vibgated.toml")
    with open(cfg, "w") as f:
        f.write(BASE_CONFIG.format(state=state).replace('port = 15020', f'port = {free_port()}'))
    os.chmod(state, 0o500)
    prefix = []
    if os.geteuid() == 0:
        # root writes anywhere: run the daemon as 'nobody' instead, if that is possible here.
        setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
        nobody = ["--reuid=65534", "--regid=65534", "--clear-groups", "--"]
        for p in (work, d, state):
            os.chmod(p, 0o755 if p != state else 0o500)
        os.chown(state, 65534, 65534)
        if os.path.exists(setpriv) and run([setpriv, *nobody, "test", "-x", VIBGATED])[0] == 0 \
                and run([setpriv, *nobody, "test", "-r", cfg])[0] == 0:
            prefix = [setpriv, *nobody]
            print("NOTE unwritable state directory: running as root, the daemon runs as "
                  "'nobody' (setpriv) for this case", flush=True)
        else:
            print("NOTE unwritable state directory: skipped (running as root and cannot run "
                  "the daemon as 'nobody')", flush=True)
            os.chmod(state, 0o755)
            return
    try:
        rc, out, err = run([*prefix, VIBGATED, "-c", cfg], timeout=30)
        lines = [ln for ln in (out + err).splitlines() if "cannot start" in ln]
        C.check("unwritable state dir: exit 1", rc == 1, f"rc={rc} {(out + err)[-300:]}")
        C.check("unwritable state dir: one 'cannot start' line naming the directory and "
                "'not writable'", len(lines) == 1 and state in lines[0] and "not writable" in lines[0],
                (out + err).strip()[-300:])
    finally:
        os.chmod(state, 0o755)


def case_no_daemon(work):
    sock = os.path.join(work, "nodaemon", "vibgate.sock")
    os.makedirs(os.path.dirname(sock))
    rc, out, err = cli(sock, "status")
    C.check("no daemon: `vibgate status` -> exit 3, one line 'not running'",
            rc == 3 and one_line(err) and "not running" in err and sock in err, f"rc={rc} {err!r}")
    # a stale socket file: bound once, nothing listens any more
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(sock)
    s.close()
    rc, out, err = cli(sock, "status", "--json")
    C.check("no daemon (stale socket file): `vibgate status --json` -> exit 3 'not running'",
            rc == 3 and "not running" in err and out.strip() == "", f"rc={rc} {err!r}")


# ---------------------------------------------------------------- systemd notify listener

class NotifyListener:
    """An AF_UNIX datagram socket collecting what the daemon sends to NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.msgs = []  # (monotonic time, text)
        self.lock = threading.Lock()
        self.stop_flag = False
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def _loop(self):
        while not self.stop_flag:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.msgs.append((time.monotonic(), data.decode(errors="replace")))

    def find(self, needle):
        with self.lock:
            return [m for m in self.msgs if needle in m[1].split("\n")]

    def find_prefix(self, prefix):
        with self.lock:
            return [m for m in self.msgs if any(ln.startswith(prefix) for ln in m[1].split("\n"))]

    def close(self):
        self.stop_flag = True
        self.t.join(timeout=2)
        self.sock.close()


# ---------------------------------------------------------------- Sparkplug decoding (protoc)

def protoc_metrics(payload):
    """The metrics of one Sparkplug B payload, decoded by `protoc --decode`: list of dicts with
    the top-level fields of each metric (strings unquoted)."""
    text = mqtt_env.protoc_decode(PROTO, "vibgate.sparkplug.Payload", payload)
    metrics = []
    cur = None
    depth = 0
    for raw in text.splitlines():
        ln = raw.strip()
        if depth == 0 and ln == "metrics {":
            cur = {}
            depth = 1
            continue
        if cur is None:
            continue
        if ln.endswith("{"):
            depth += 1
            continue
        if ln == "}":
            depth -= 1
            if depth == 0:
                metrics.append(cur)
                cur = None
            continue
        if depth == 1 and ":" in ln:
            k, v = ln.split(":", 1)
            v = v.strip()
            if v.startswith('"') and v.endswith('"'):
                v = v[1:-1].encode().decode("unicode_escape")
            cur[k.strip()] = v
    return metrics


def sparkplug_alerts(messages, device):
    """Alert records of `device` that reached the broker: DDATA metrics mapped to names with the
    aliases of its DBIRTH; list of {name: value} dicts holding alert/* metrics."""
    aliases = {}
    out = []
    for m in messages:
        parts = m.topic.split("/")
        if len(parts) < 5 or parts[4] != device:
            continue
        if parts[2] == "DBIRTH":
            for met in protoc_metrics(m.payload):
                if "name" in met and "alias" in met:
                    aliases[met["alias"]] = met["name"]
        elif parts[2] == "DDATA":
            rec = {}
            for met in protoc_metrics(m.payload):
                name = met.get("name") or aliases.get(met.get("alias"))
                if not name:
                    continue
                val = next((met[k] for k in ("string_value", "long_value", "int_value",
                                              "double_value") if k in met), None)
                rec[name] = val
            if any(k.startswith("alert/") for k in rec):
                out.append(rec)
    return out


# ---------------------------------------------------------------- (c) a second daemon

def aux_daemon(work, sim_fan_port):
    """A daemon with a serial sensor on a missing port, an uplink to a port where nothing
    listens, a Modbus device on the simulator's fan (its results fill the outbox), then SIGHUPs."""
    d = os.path.join(work, "aux")
    state = os.path.join(d, "state")
    os.makedirs(d)
    sock = os.path.join(state, "vibgate.sock")
    dead_port = free_port()
    text = f"""\
[daemon]
state_dir = "{state}"
control_socket = "{sock}"
log_level = "info"
result_interval_ms = 500

[uplink]
enabled = true
host = "127.0.0.1"
port = {dead_port}
profile = "sparkplug"
group_id = "aux"
edge_node_id = "aux"

[modbus_facade]
enabled = false

[[serial_sensor]]
name = "vib1"
port = "/dev/ttyVIBGATE-missing"
baud = 115200
mode = "binary"
channels = 1
channel_names = ["vib1/accel"]

[[device]]
name = "fan1"
host = "127.0.0.1"
port = {sim_fan_port}
poll_interval_ms = 40
[[device.waveform]]
name = "accel"
register = "input"
address = 100

[[asset]]
name = "gearbox"
channel = "vib1/accel"
learn_s = 30

[[asset]]
name = "fan1"
channel = "fan1/accel"
learn_s = 30
rpm = 1480
"""
    cfg = os.path.join(d, "vibgated.toml")
    with open(cfg, "w") as f:
        f.write(text)
    rc, out, err = run([VIBGATED, "-c", cfg, "--check-config"])
    C.check("aux: configuration valid", rc == 0, (out + err).strip())
    p = Proc("vibgated-aux", [VIBGATED, "-c", cfg], os.path.join(d, "vibgated.log"))
    try:
        up = wait_until(lambda: cli(sock, "status")[0] == 0 or not p.alive(), 20, 0.2)
        C.check("aux: daemon starts with a missing serial port and an unreachable broker",
                up and p.alive(), p.tail())
        if not p.alive():
            return

        # missing serial port: listed offline with an error naming the port
        def serial_entry():
            rc, devs, _ = cli_json(sock, "devices")
            e = by_name(devs).get("vib1")
            return e if e and e.get("last_error") else None
        e = wait_until(serial_entry, 15)
        C.check("aux: missing serial port -> `devices` lists vib1 offline, error names the port",
                e is not None and not e["connected"] and e["state"] != "online" and
                "/dev/ttyVIBGATE-missing" in e["last_error"], json.dumps(e))
        rc, devs, _ = cli_json(sock, "devices")
        C.check("aux: the Modbus device next to it is online",
                rc == 0 and wait_until(lambda: by_name(cli_json(sock, "devices")[1]).get(
                    "fan1", {}).get("state") == "online", 15), json.dumps(devs))

        # unreachable broker: not connected, the outbox grows
        rc, q1, _ = cli_json(sock, "queue")
        grown = wait_until(lambda: (lambda r: r[1] if r[0] == 0 and r[1]["depth"] >= (q1 or {}).get(
            "depth", 0) + 3 else None)(cli_json(sock, "queue")), 20)
        C.check("aux: unreachable broker -> `queue` shows the outbox growing, uplink not connected",
                q1 is not None and grown is not None and not grown["uplink_connected"],
                f"{json.dumps(q1)} -> {json.dumps(grown)}")
        rc, st, _ = cli_json(sock, "status")
        C.check("aux: `status` says the uplink is not connected",
                rc == 0 and not st["uplink_connected"] and st["uplink_state"] != "online",
                json.dumps(st and {k: st[k] for k in ("uplink_connected", "uplink_state")}))
        C.check("aux: the daemon keeps running", p.alive())

        # SIGHUP with a broken file: refused, the old configuration keeps running
        mark = len(p.text())
        with open(cfg, "w") as f:
            f.write(text.replace("[modbus_facade]", "[modbus_facade\n"))
        os.kill(p.pid, signal.SIGHUP)
        refused = p.wait_log("reload refused", 10, mark)
        C.check("aux: SIGHUP with a broken file -> 'reload refused' logged", refused, p.tail(5))
        C.check("aux: ... and the daemon keeps running and answering",
                p.alive() and cli(sock, "status")[0] == 0, p.tail(5))
        # SIGHUP with a valid change
        mark = len(p.text())
        with open(cfg, "w") as f:
            f.write(text.replace('log_level = "info"', 'log_level = "debug"'))
        os.kill(p.pid, signal.SIGHUP)
        applied = p.wait_log("reload: applied", 10, mark)
        C.check("aux: SIGHUP with a valid change (log_level) -> 'reload: applied'", applied,
                p.tail(5))
        rc, st, _ = cli_json(sock, "status")
        C.check("aux: reload counted, the refused one too, daemon answering",
                rc == 0 and st["counters"].get("vibgate_reloads_total", 0) >= 1 and
                st["counters"].get("vibgate_reloads_refused_total", 0) == 1 and p.alive(),
                json.dumps(st and {k: v for k, v in st["counters"].items() if "reload" in k}))
    finally:
        rc, elapsed = p.stop()
        C.check("aux: SIGTERM -> exit 0 within 5 s", rc == 0 and elapsed < 5.0,
                f"rc={rc} after {elapsed:.1f} s\n{p.tail()}")


# ---------------------------------------------------------------- (b) the demo plant

def second_daemon(work, cfg, state, sock):
    """Another vibgated on the same state directory, and one on the same socket only."""
    rc, out, err = run([VIBGATED, "-c", cfg], timeout=20)
    msg = [ln for ln in (out + err).splitlines() if "cannot start" in ln]
    C.check("second daemon, same state dir: exit 1 with one 'another vibgated uses state "
            "directory' line", rc == 1 and len(msg) == 1 and "another vibgated" in msg[0] and
            state in msg[0], f"rc={rc} {(out + err)[-300:]}")
    other = os.path.join(work, "other-state")
    text = BASE_CONFIG.format(state=other).replace(
        f'control_socket = "{other}/vibgate.sock"', f'control_socket = "{sock}"').replace(
        "port = 15020", f"port = {free_port()}")
    path = os.path.join(work, "same-socket.toml")
    with open(path, "w") as f:
        f.write(text)
    rc, out, err = run([VIBGATED, "-c", path], timeout=20)
    msg = [ln for ln in (out + err).splitlines() if "cannot start" in ln]
    C.check("second daemon, same control socket: exit 1 with one 'another vibgated is running' "
            "line", rc == 1 and len(msg) == 1 and "another vibgated is running" in msg[0],
            f"rc={rc} {(out + err)[-300:]}")
    rc, st, err = cli_json(sock, "status")
    C.check("second daemon: the first keeps answering `vibgate status`", rc == 0 and st, err)


def garbage(sock, daemon):
    """Garbage on the control socket: each connection dropped, the daemon keeps answering."""
    rnd = random.Random(7)
    payloads = [
        ("random bytes", bytes(rnd.randrange(256) for _ in range(300)), True),
        ("an HTTP request", b"GET /status HTTP/1.1\r\nHost: vibgated\r\n\r\n", False),
        ("a huge length prefix", b"\xff\xff\xff\xf0" + b"x" * 16, False),
        ("a frame that is no request", b"\x00\x00\x00\x08" + b"\xff" * 8, False),
    ]
    for name, data, shut in payloads:
        mark = len(daemon.text())
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        closed = False
        try:
            s.connect(sock)
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    closed = True
                    break
        except (ConnectionResetError, BrokenPipeError):
            closed = True
        except socket.timeout:
            closed = False
        finally:
            s.close()
        logged = daemon.wait_log("dropped client", 5, mark)
        rc, st, err = cli_json(sock, "status")
        C.check(f"garbage: {name} -> connection dropped (logged), `status` still works",
                closed and logged and rc == 0 and st is not None, f"closed={closed} logged={logged} rc={rc} {err}")


def train_rig_model(run_dir):
    out = os.path.join(run_dir, "rig3.vgm")
    rc, o, e = run([CLI, "train", f"{DATA}/cwru48k_normal_0hp_train.wav@:2.2871", "--shaft-hz",
                    "29.933", "--bearing-multiples", "3.5848,5.4152,2.3567,0.39828", "--out", out],
                   timeout=300)
    return rc == 0 and os.path.exists(out), (o + e)[-300:]


def main_plant(work):
    run_dir = os.path.join(work, "main")
    state = os.path.join(run_dir, "state")
    os.makedirs(state)
    sock = os.path.join(state, "vibgate.sock")
    real = (os.path.isfile(os.path.join(DATA, "cwru48k_normal_0hp_train.wav")) and
            os.path.isfile(os.path.join(DATA, "cwru48k_IR007_0hp_109.wav")))
    if real:
        t0 = time.monotonic()
        ok, detail = train_rig_model(run_dir)
        C.check(f"plant: rig3's model trained offline on the healthy CWRU recording "
                f"({time.monotonic() - t0:.1f} s)", ok, detail)
        real = ok
    else:
        print(f"NOTE no recordings at {DATA}: rig3 is a healthy synthesized machine", flush=True)

    broker = mqtt_env.Broker(os.path.join(run_dir, "broker"))
    broker.start(timeout=15)
    col = None
    notify = None
    daemon = None
    try:
        col = mqtt_env.Collector(broker.port, topics=("spBv1.0/#",))
        C.check("plant: MQTT collector connected", col.wait_connected(10))
        ports = {"fan": free_port(), "pump": free_port(), "rig": free_port(), "facade": free_port()}
        prom_port = free_port()
        plant_cfg, cfg = demo_configs(run_dir, ports, broker.port, prom_port, real)
        rc, out, err = run([VIBGATED, "-c", cfg, "--check-config"])
        C.check("plant: the filled-in demo configuration is valid", rc == 0, (out + err).strip())

        sim = Proc("vibgate-sim", [SIM, "-c", plant_cfg], os.path.join(run_dir, "sim.log"))
        C.check("plant: simulator ready", sim.wait_log("vibgate-sim: ready", 15), sim.tail())

        notify_path = os.path.join(run_dir, "notify.sock")
        notify = NotifyListener(notify_path)
        env = dict(os.environ)
        env.update({"NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "2000000"})
        env.pop("WATCHDOG_PID", None)
        env.pop("JOURNAL_STREAM", None)
        t_start = time.monotonic()
        daemon = Proc("vibgated", [VIBGATED, "-c", cfg], os.path.join(run_dir, "vibgated.log"),
                      env=env)
        ready = wait_until(lambda: notify.find("READY=1") or not daemon.alive(), 20, 0.1)
        r = notify.find("READY=1")
        C.check("notify: READY=1 with STATUS= received on NOTIFY_SOCKET",
                bool(r) and "STATUS=" in r[0][1], f"{ready!r} {daemon.tail()}")
        up = wait_until(lambda: cli(sock, "status")[0] == 0 or not daemon.alive(), 20, 0.2)
        C.check("plant: vibgated answers on its control socket", up and daemon.alive(),
                daemon.tail())
        if not daemon.alive():
            return
        C.check("plant: control socket is a socket", os.path.exists(sock))

        # bad input against the running daemon, while it learns the baselines
        second_daemon(run_dir, cfg, state, sock)
        garbage(sock, daemon)
        aux_daemon(run_dir, ports["fan"])

        # devices and tags (while waiting for the alarm)
        def all_online():
            rc, devs, _ = cli_json(sock, "devices")
            if rc == 0 and len(devs) == 3 and all(d["state"] == "online" for d in devs):
                return devs
            return None
        devs = wait_until(all_online, 20)
        rc, last_devs, err = cli_json(sock, "devices")
        C.check("devices --json: 3 devices, all online with polls", devs is not None and all(
            d["polls"] > 0 and d["kind"] == "modbus-tcp" for d in devs) and
            sorted(by_name(devs)) == ["fan1", "pump2", "rig3"], json.dumps(last_devs)[:400])
        C.check("devices --json: endpoints name the simulator's ports", devs is not None and
                by_name(devs)["pump2"]["endpoint"].startswith(f"127.0.0.1:{ports['pump']}"),
                json.dumps(devs and by_name(devs)["pump2"]))

        def speed():
            rc, tags, _ = cli_json(sock, "tags")
            t = {(x["device"], x["name"]): x for x in (tags or [])}.get(("fan1", "speed_rpm"))
            return t if t and t.get("good") and t.get("value") else None
        t = wait_until(speed, 15)
        C.check("tags --json: fan1/speed_rpm has a good value near 1480 rpm",
                t is not None and 1300 < float(t["value"]) < 1700 and t["unit"] == "rpm",
                json.dumps(t))

        # the alarm
        levels = {}

        def pump_alarm():
            rc, assets, _ = cli_json(sock, "assets")
            if rc != 0:
                return None
            a = by_point(assets)
            for n, x in a.items():
                levels.setdefault(n, set()).add(x["alarm_level"])
            if a.get(PDE, {}).get("alarm_level") == 2 and (
                    not real or a.get("rig3", {}).get("alarm_level") == 2):
                return a
            return None
        left = ALARM_TIMEOUT_S - (time.monotonic() - t_start)
        assets = wait_until(pump_alarm, max(5.0, left), 1.0)
        t_alarm = time.monotonic() - t_start
        rc, last, _ = cli_json(sock, "assets")
        C.check(f"assets --json: pump2 reaches alarm level 2 ({t_alarm:.0f} s after start)",
                assets is not None, json.dumps(last)[:600] + "\n" + daemon.tail())
        if assets is None:
            return
        C.check("assets --json: fan1 stays at level 0 throughout",
                levels.get("fan1") == {0} and assets["fan1"]["alarm_level"] == 0,
                f"fan1 levels seen {levels.get('fan1')}")
        C.check("assets --json: fan1 and both pump2 channels scoring with model version 1",
                all(assets[n]["model_state"] == "scoring" and assets[n]["model_version"] == "1"
                    for n in ("fan1", PDE, PNDE)),
                json.dumps([assets.get(n) for n in ("fan1", PDE, PNDE)]))
        C.check("assets --json: pump2 is listed per channel; its healthy non-drive end stays at "
                "level 0 throughout while the drive end alarms",
                levels.get(PNDE) == {0} and assets[PNDE]["alarm_level"] == 0 and
                assets[PNDE]["channel"] == "pump2/accel_nde",
                f"non-drive end levels seen {levels.get(PNDE)}")
        if real:
            C.check("assets --json: rig3 (real faulty recording, offline model) in alarm",
                    assets["rig3"]["alarm_level"] == 2, json.dumps(assets["rig3"]))
        else:
            C.check("assets --json: rig3 (healthy synth) not in alarm",
                    assets["rig3"]["alarm_level"] == 0, json.dumps(assets["rig3"]))
        # the alert's id comes from the store's commit (group commit, ~0.2 s): wait for it
        def pump_alert():
            rc, a, _ = cli_json(sock, "assets")
            p = by_point(a).get(PDE)
            return p if p and p["active_alert_id"] > 0 else None
        pump = wait_until(pump_alert, 10, 0.2) or by_point(cli_json(sock, "assets")[1]).get(PDE, {})
        alert_id = pump.get("active_alert_id", 0)
        C.check("assets --json: pump2 names its active alert, not acknowledged",
                alert_id > 0 and not pump["acknowledged"] and pump["alarm_level"] == 2,
                json.dumps(pump))

        # the PLC's view: coils and registers through mbpoll
        fp = ports["facade"]
        cs = wait_until(lambda: (lambda c: c if c and c[3] == 1 else None)(coils(fp, 0, 6)), 10)
        C.check("facade (mbpoll): pump2's alarm coil (3) reads 1, warning coil (2) reads 1",
                cs is not None and cs[3] == 1 and cs[2] == 1, str(coils(fp, 0, 6)))
        C.check("facade (mbpoll): fan1's alarm coil (1) and warning coil (0) read 0",
                cs is not None and cs[1] == 0 and cs[0] == 0, str(cs))
        # write-back: pump2's alarm lamp coil on its (simulated) PLC follows the alarm; fan1's not
        lamp = wait_until(lambda: (lambda c: c if c and c[0] == 1 else None)(coils(ports["pump"], 0, 1)), 10)
        C.check("write-back (mbpoll on the sim): pump2's alarm_lamp coil was written to 1",
                lamp is not None, str(coils(ports["pump"], 0, 1)))
        fan_lamp = coils(ports["fan"], 0, 1)
        C.check("write-back: fan1's alarm_lamp coil stays 0", fan_lamp == {0: 0}, str(fan_lamp))
        blk = input_regs(fp, 16, 16)
        C.check("facade (mbpoll): pump2's block (input registers 16..31): level 2, score > 1000, "
                "model scoring, not acknowledged",
                blk is not None and blk[1] == 2 and blk[0] > 1000 and blk[6] == 2 and blk[10] == 0,
                str(blk))
        fan_blk = input_regs(fp, 0, 16)
        C.check("facade (mbpoll): fan1's block (0..15): level 0, score < 1000", fan_blk is not None
                and fan_blk[1] == 0 and fan_blk[0] < 1000, str(fan_blk))

        # the alert list
        def active_alert():
            rc, al, _ = cli_json(sock, "alerts")
            if rc != 0:
                return None
            mine = [a for a in al if a["id"] == alert_id]
            return (al, mine[0]) if mine else None
        r = wait_until(active_alert, 10)
        alerts = r[0] if r else []
        C.check("alerts --json: pump2's active alert listed (level 2, state active)",
                r is not None and r[1]["asset"] == "pump2" and r[1]["level"] == 2 and
                r[1]["state"] == "active" and r[1]["cleared_ms"] == 0, json.dumps(r and r[1]))
        C.check("alerts --json: the alert of a multi-channel asset names its channel",
                r is not None and r[1]["message"].startswith("channel pump2/accel: "),
                json.dumps(r and r[1]))
        C.check("alerts --json: no alert for pump2's healthy non-drive end",
                not [a for a in alerts if "accel_nde" in a["message"]], json.dumps(alerts)[:400])
        C.check("alerts --json: no alert for fan1", not [a for a in alerts if a["asset"] == "fan1"],
                json.dumps(alerts)[:400])

        # the alert reached the broker (Sparkplug DDATA of device pump2, decoded by protoc)
        def raised_at_broker():
            recs = sparkplug_alerts(col.messages("spBv1.0/demo/"), "pump2")
            hit = [x for x in recs if str(x.get("alert/alert_id")) == str(alert_id) and
                   x.get("alert/event") == "raised"]
            return hit[0] if hit else None
        rec = wait_until(raised_at_broker, 20, 1.0)
        C.check("broker: pump2's alert arrived as a Sparkplug DDATA (alert/event raised, level "
                "alarm, topic spBv1.0/demo/DDATA/vibgate-demo/pump2)",
                rec is not None and rec.get("alert/level") == "alarm", json.dumps(rec))
        nbirth = col.messages("spBv1.0/demo/NBIRTH/vibgate-demo")
        C.check("broker: NBIRTH of edge node vibgate-demo", len(nbirth) >= 1)
        fan_alerts = sparkplug_alerts(col.messages("spBv1.0/demo/"), "fan1")
        C.check("broker: no alert for fan1", not fan_alerts, json.dumps(fan_alerts)[:300])

        # acknowledge
        rc, ack, err = cli_json(sock, "ack", str(alert_id), "--note", "test")
        C.check("ack --json: succeeds", rc == 0 and ack == {"alert_id": alert_id,
                                                            "already_acknowledged": False},
                f"rc={rc} {json.dumps(ack)} {err}")

        def acked():
            rc, al, _ = cli_json(sock, "alerts")
            mine = [a for a in (al or []) if a["id"] == alert_id]
            return mine[0] if mine and mine[0]["acknowledged"] else None
        a = wait_until(acked, 10)
        C.check("alerts --json: the alert is acknowledged", a is not None and
                a["state"] == "acknowledged" and a["ack_by"] and a.get("ack_note") == "test", json.dumps(a))
        blk = wait_until(lambda: (lambda b: b if b and b[10] == 1 else None)(input_regs(fp, 16, 16)),
                         10)
        C.check("facade (mbpoll): pump2's acknowledged register (offset 10) reads 1",
                blk is not None, str(input_regs(fp, 16, 16)))
        rc, ack2, err = cli_json(sock, "ack", str(alert_id))
        C.check("ack again: already_acknowledged", rc == 0 and ack2 and ack2["already_acknowledged"],
                f"{rc} {ack2} {err}")
        rc, out, err = cli(sock, "ack", "999999")
        C.check("ack of an unknown id: exit 1, one line", rc == 1 and one_line(err) and
                "999999" in err, f"rc={rc} {err!r}")

        # the other commands
        rc, st, err = cli_json(sock, "status")
        C.check("status --json: storage ok, 3 devices, 3 assets, uplink connected, active alerts",
                rc == 0 and st["storage_ok"] and st["devices"] == 3 and st["assets"] == 3 and
                st["uplink_connected"] and st["active_alerts"] >= 1 and st["config_path"] == cfg
                and st["uptime_s"] >= 1, json.dumps(st and {k: v for k, v in st.items()
                                                         if k != "counters"}))
        C.check("status --json: counters include scored windows",
                rc == 0 and st["counters"].get("vibgate_windows_scored_total", 0) > 0,
                str(st and st["counters"].get("vibgate_windows_scored_total")))
        # the drive end alone, then the asset (worst channel, each carried forward): fetched in
        # this order, the asset's trend holds every drive-end row, so its peak is at least as high
        rc, tde, err = cli_json(sock, "trend", PDE)
        de = (tde or {}).get("points", [])
        rc2, tr, err2 = cli_json(sock, "trend", "pump2")
        pts = (tr or {}).get("points", [])
        rc3, tn, err3 = cli_json(sock, "trend", PNDE)
        nde = (tn or {}).get("points", [])
        C.check("trend pump2 --json: the worst channel over time — ordered, peak above the "
                "threshold and at least the drive end's peak, more points than one channel",
                rc == 0 and rc2 == 0 and tr["asset"] == "pump2" and len(pts) >= 10 and
                all(pts[i]["ts_ms"] <= pts[i + 1]["ts_ms"] for i in range(len(pts) - 1)) and
                de and max(p["value"] for p in pts) >= max(p["value"] for p in de) > 1.0 and
                len(pts) > len(de), f"rc={rc},{rc2} {len(pts)} points vs {len(de)} {err}{err2}")
        vals = sorted(p["value"] for p in nde)
        C.check("trend pump2:pump2/accel_nde --json: the healthy channel alone stays low (median "
                "below 0.8; every stored row is its interval's highest score)",
                rc3 == 0 and len(vals) >= 10 and vals[len(vals) // 2] < 0.8 and
                max(p["value"] for p in pts) > max(vals),
                f"rc={rc3} {len(vals)} points, median {vals[len(vals) // 2] if vals else None} {err3}")
        rc, out, err = cli(sock, "spectrum", "pump2")
        C.check("spectrum of a multi-channel asset without a channel: exit 1, one line naming "
                "both channels", rc == 1 and one_line(err) and PDE in err and PNDE in err,
                f"rc={rc} {err!r}")
        rc, sp, err = cli_json(sock, "spectrum", PDE)
        marks = {m["name"]: m["hz"] for m in (sp or {}).get("markers", [])}
        C.check("spectrum pump2:pump2/accel --json: amplitudes and markers incl. BPFO = 3.5848 x 29.95 Hz",
                rc == 0 and len(sp["amplitude"]) > 100 and sp["bin_hz"] > 0 and
                abs(marks.get("BPFO", 0) - 3.5848 * 29.95) < 0.01 and "1x" in marks,
                f"rc={rc} {marks} {err}")
        rc, q, err = cli_json(sock, "queue")
        C.check("queue --json: uplink connected, records sent",
                rc == 0 and q["uplink_connected"] and q["sent_total"] > 0 and q["bytes"] > 0,
                json.dumps(q))
        rc, models, err = cli_json(sock, "model", "list")
        m = {(x["asset"], x["version"]): x for x in (models or [])}
        C.check("model list --json: version 1 active for fan1 and each pump2 channel (learned on "
                "site, a model per channel)",
                rc == 0 and all(m.get((n, "1"), {}).get("state") == "active"
                                for n in ("fan1", PDE, PNDE))
                and all(m.get((n, "1"), {}).get("file") for n in ("fan1", PDE, PNDE)) and
                m[(PDE, "1")]["file"] != m[(PNDE, "1")]["file"], json.dumps(models)[:500])
        rc, models, err = cli_json(sock, "model", "list", "pump2")
        C.check("model list pump2 --json: both channels' models",
                rc == 0 and sorted(x["asset"] for x in models) == [PDE, PNDE], json.dumps(models))
        if real:
            C.check("model list --json: rig3 version 1 active (the configured model file)",
                    m.get(("rig3", "1"), {}).get("state") == "active", json.dumps(models)[:500])
        rc, out, err = cli(sock, "model", "rollback", "fan1")
        C.check("model rollback fan1: exit 1 with one line (no earlier version)",
                rc == 1 and one_line(err) and "no version before 1" in err, f"rc={rc} {err!r}")
        rc, out, err = cli(sock, "spectrum", "nosuch")
        C.check("spectrum of an unknown asset: exit 1, one line", rc == 1 and one_line(err) and
                "nosuch" in err, f"rc={rc} {err!r}")

        # Prometheus
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/metrics", timeout=10) as resp:
                body = resp.read().decode()
                ctype = resp.headers.get("Content-Type", "")
        except OSError as e:
            body, ctype = "", repr(e)
        mm = re.search(r"^vibgate_windows_scored_total (\S+)$", body, re.M)
        C.check("prometheus: GET /metrics has vibgate_windows_scored_total > 0",
                mm is not None and float(mm.group(1)) > 0, ctype + " " + body[:200])
        C.check("prometheus: pump2's alarm level gauge is 2",
                re.search(r'^vibgate_asset_alarm_level\{asset="pump2",channel="pump2/accel"\} 2(\.0)?$',
                          body, re.M) is not None)
        # the daemon drains the poller's jitter samples every second (they would otherwise grow
        # to 8 MB: found by the soak in bench/daemon_bench.py, now bench/system_bench.py) and reports their p99
        C.check("prometheus: poll jitter p99 reported",
                re.search(r'^vibgate_poll_jitter_ms\{quantile="0.99"\} \S+$', body, re.M)
                is not None)
        wb = re.search(r"^vibgate_write_backs_total (\S+)$", body, re.M)
        wbe = re.search(r"^vibgate_write_back_errors_total (\S+)$", body, re.M)
        C.check("prometheus: one write-back done, none failed",
                wb is not None and float(wb.group(1)) == 1 and wbe is not None and
                float(wbe.group(1)) == 0, (wb and wb.group(0)) or body[:200])

        # retraining from history: fan1's stored model inputs (one per result interval) since
        # the daemon started; first wait until enough are committed (learn_min_windows = 64)
        db = os.path.join(state, "vibgate.db")
        start_iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - (time.monotonic() - t_start) - 5))

        def stored_inputs():
            try:
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
                n = con.execute("SELECT count(*) FROM results WHERE asset = 'fan1' AND "
                                "model_input IS NOT NULL").fetchone()[0]
                con.close()
                return n if n >= 70 else None
            except sqlite3.Error:
                return None
        n_inputs = wait_until(stored_inputs, 60, 1.0)
        C.check("sqlite: results keep a model input per interval (fan1)", n_inputs is not None,
                str(n_inputs))
        rc, out, err = cli(sock, "model", "train", "fan1", "--from", start_iso, "--to", "now")
        C.check("model train fan1 --from --to: accepted", rc == 0 and "training from the "
                "stored windows" in out, f"rc={rc} {out!r} {err!r}")

        def fan1_v2():
            rc, ms, _ = cli_json(sock, "model", "list", "fan1")
            v = {x["version"]: x for x in (ms or [])}
            return v if v.get("2", {}).get("state") == "active" else None
        v = wait_until(fan1_v2, 30, 0.5)
        C.check("model list fan1: version 2 trained from the stored windows is active, version 1 "
                "retired", v is not None and "trained from the windows stored between" in
                v["2"]["note"] and v["1"]["state"] == "retired",
                json.dumps(cli_json(sock, "model", "list", "fan1")[1]))
        a = wait_until(lambda: (lambda x: x if x and x.get("model_version") == "2" and
                                x["last_window_ms"] > 0 else None)(
            by_point(cli_json(sock, "assets")[1]).get("fan1")), 10, 0.5)
        C.check("assets: fan1 scores with version 2 and stays normal",
                a is not None and a["alarm_level"] == 0 and a["model_state"] == "scoring",
                json.dumps(a))
        rc, out, err = cli(sock, "model", "train", "fan1", "--from", "2020-01-01", "--to",
                           "2020-01-02")
        C.check("model train fan1 over a range without stored windows: accepted (reads on the "
                "trainer thread)", rc == 0, f"rc={rc} {err!r}")

        def fan1_failed():
            rc, ms, _ = cli_json(sock, "model", "list", "fan1")
            f = [x for x in (ms or []) if x["state"] == "failed"]
            return f[0] if f else None
        f = wait_until(fan1_failed, 20, 0.5)
        C.check("model list fan1: the failed training is shown with its reason; version 2 stays "
                "active", f is not None and "only 0 stored windows" in f["note"] and
                (fan1_v2() or {}).get("2", {}).get("state") == "active", json.dumps(f))
        rc, out, err = cli(sock, "model", "train", "fan1", "--from", "yesterday-ish")
        C.check("model train --from with a bad time: usage error (exit 2), one line",
                rc == 2 and "is not a time" in err, f"rc={rc} {err!r}")
        rc, out, err = cli(sock, "model", "train", "fan1", "--from", "now", "--to", "1h")
        C.check("model train --to before --from: usage error (exit 2), one line",
                rc == 2 and one_line(err) and "--from must be before --to" in err,
                f"rc={rc} {err!r}")
        rc, out, err = cli(sock, "model", "train", "pump2", "--from", "1h")
        C.check("model train of a multi-channel asset without a channel: exit 1 naming both",
                rc == 1 and PDE in err and PNDE in err, f"rc={rc} {err!r}")

        # systemd watchdog pings (WATCHDOG_USEC=2 s -> every <= 1 s)
        C.check("notify: WATCHDOG=1 pings", len(notify.find("WATCHDOG=1")) >= 3,
                f"{len(notify.find('WATCHDOG=1'))} pings")

        # SIGTERM
        rc, elapsed = daemon.stop(signal.SIGTERM, timeout=10)
        C.check("SIGTERM: vibgated exits 0 within 5 s", rc == 0 and elapsed < 5.0,
                f"rc={rc} after {elapsed:.2f} s\n{daemon.tail()}")
        C.check("SIGTERM: the log says it stopped", "vibgated stopped" in daemon.text())
        C.check("notify: STOPPING=1", bool(wait_until(lambda: notify.find("STOPPING=1"), 2, 0.1)))
        C.check("SIGTERM: the control socket file is removed", not os.path.exists(sock))
        # (but the training over an empty range, provoked above)
        bad = [ln for ln in daemon.text().splitlines() if (" error: " in ln or " critical: " in ln)
               and "training failed: only 0 stored windows" not in ln]
        C.check("SIGTERM: nothing logged at error level (but the provoked training failure)",
                not bad, "\n".join(bad)[:500])
        db = os.path.join(state, "vibgate.db")
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
            try:
                integrity = con.execute("PRAGMA integrity_check").fetchall()
                rows = con.execute("SELECT id, asset, level, state, acknowledged_ms FROM alerts "
                                   "ORDER BY id").fetchall()
                events = con.execute("SELECT kind FROM alert_events WHERE alert_id = ?",
                                     (alert_id,)).fetchall()
                nres = con.execute("SELECT count(*) FROM results WHERE asset = 'pump2'").fetchone()[0]
            finally:
                con.close()
        except sqlite3.Error as e:
            integrity, rows, events, nres = [(repr(e),)], [], [], 0
        C.check("sqlite: PRAGMA integrity_check ok", integrity == [("ok",)], str(integrity))
        mine = [r for r in rows if r[0] == alert_id]
        C.check("sqlite: pump2's alert row stored: level 2, acknowledged",
                mine and mine[0][1] == "pump2" and mine[0][2] == 2 and mine[0][3] == 1 and
                mine[0][4], str(rows))
        C.check("sqlite: alert events raised and acknowledged stored",
                sorted(k for (k,) in events) == [0, 1], str(events))
        C.check("sqlite: no fan1 alert rows", not [r for r in rows if r[1] == "fan1"], str(rows))
        C.check("sqlite: pump2's results stored", nres >= 10, str(nres))
        rc, elapsed = sim.stop()
        C.check("plant: simulator stops on SIGTERM", rc == 0, f"rc={rc}")
    finally:
        if col is not None:
            col.stop()
        if notify is not None:
            notify.close()
        if daemon is not None and daemon.alive():
            print("---- vibgated log tail\n" + daemon.tail(30), flush=True)
        broker.stop()


# ---------------------------------------------------------------- main

def main():
    missing = [n for n, p in (("vibgated (VIBGATED)", VIBGATED), ("vibgate (VIBGATE_CLI)", CLI),
                              ("vibgate-sim (VIBGATE_SIM)", SIM)) if not p or not os.path.exists(p)]
    if missing:
        print(f"FAIL binaries not found: {', '.join(missing)}")
        print(f"{C.passed} passed, {C.failed + 1} failed")
        return 1
    t_all = time.monotonic()
    work = tempfile.mkdtemp(prefix="e2e-", dir=state_base())
    os.chmod(work, 0o755)
    try:
        steps = [
            ("bad configurations", lambda: case_bad_configs(work)),
            ("sample configuration", case_sample_config),
            ("unwritable state directory", lambda: case_unwritable_state(work)),
            ("no daemon", lambda: case_no_daemon(work)),
            ("demo plant end to end", lambda: main_plant(work)),
        ]
        only = sys.argv[1:]
        for name, fn in steps:
            if only and not any(o in name for o in only):
                continue
            t0 = time.monotonic()
            try:
                fn()
            except Exception as e:  # a step that crashes is a failure; the others still run
                import traceback
                traceback.print_exc()
                C.check(f"{name}: ran without error", False, repr(e))
            finally:
                for p in PROCS:
                    if p.alive():
                        p.stop()
            print(f"-- {name}: {time.monotonic() - t0:.1f} s", flush=True)
    finally:
        for p in PROCS:
            if p.alive():
                p.stop()
        if C.failed == 0 and not os.environ.get("VIBGATE_E2E_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"state and logs kept in {work}", flush=True)
    print(f"-- total {time.monotonic() - t_all:.1f} s")
    print(f"{C.passed} passed, {C.failed} failed")
    return 1 if C.failed else 0


if __name__ == "__main__":
    sys.exit(main())
