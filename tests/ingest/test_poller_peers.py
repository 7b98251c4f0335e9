#!/usr/bin/env python3
"""Modbus poller against real, independent peers.

Runs tests/ingest/poll_driver (path in $VIBGATE_POLL_DRIVER) on generated TOML configurations
against peers started by this script as separate processes (this same file, with a role argument):

  serve-tcp PORT [UNIT_MARKER]   pymodbus 3.0 Modbus TCP server holding the register map below
  serve-rtu PTY                  pymodbus RTU server (ModbusRtuFramer) on a socat pty, units 1 and 2
                                 (both print "SET UNIT FC ADDRESS V1,V2..." for every write they
                                 store: the function code as the server decoded it)
  serve-wave PORT                pymodbus TCP server whose registers follow docs/modbus-waveform.md,
                                 updated by a thread at 10 blocks/s; one sequence number is skipped
  blackhole PORT                 accepts TCP connections and reads, never answers
  fake-rtu PTY PHASES            minimal RTU slave (unit 5 only) whose answers follow PHASES,
                                 e.g. "good:1,flaky:1,badcrc:1.5,short:1.6,good:1e9" (seconds from
                                 its first request; flaky = every other answer has a bad CRC)

The register contents are computed here with struct, independently of the C++ code; the driver
must decode every value exactly. Everything runs on 127.0.0.1 with free ports; every wait is
bounded; every process is stopped by PID. Prints one line per check and ends with
"N passed, M failed"; exits non-zero on failure.
"""

import json
import math
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

# ---------------------------------------------------------------------------------------------
# The register map (shared by the peers and the checks)
# ---------------------------------------------------------------------------------------------

TYPES = {  # name: (struct code, registers)
    "int16": ("h", 1), "uint16": ("H", 1), "int32": ("i", 2), "uint32": ("I", 2),
    "int64": ("q", 4), "uint64": ("Q", 4), "float32": ("f", 2), "float64": ("d", 4),
}
EDGE = {
    "int16": [-32768, 32767, -1234],
    "uint16": [0, 65535, 0x1234],
    "int32": [-2**31, 2**31 - 1, -123456789],
    "uint32": [0, 2**32 - 1, 0x12345678],
    "int64": [-2**63, 2**63 - 1, 2**53 + 1, -0x0123456789ABCDEF],
    "uint64": [2**64 - 1, 0x0123456789ABCDEF, 0],
    "float32": [-3.4028234663852886e38, 1.1754943508222875e-38, 123.456, -0.0, 1.401298464324817e-45],
    "float64": [1.7976931348623157e308, -2.2250738585072014e-308, math.pi, 5e-324],
}
ORDERS = ["ABCD", "CDAB", "BADC", "DCBA"]
HR_SIZE = 400          # holding registers 0..399; 399 holds the unit marker
MISSING_ADDRESS = 5000  # not in the map: illegal data address


def words(b):
    return [(b[i] << 8) | b[i + 1] for i in range(0, len(b), 2)]


def to_registers(value, typ, order):
    """Registers of `value` in `order`: ABCD = big-endian bytes, DCBA = little-endian bytes,
    CDAB = the big-endian words in reverse, BADC = the little-endian words in reverse."""
    code = TYPES[typ][0]
    big, little = struct.pack(">" + code, value), struct.pack("<" + code, value)
    return {"ABCD": words(big), "DCBA": words(little),
            "CDAB": words(big)[::-1], "BADC": words(little)[::-1]}[order]


def f32(x):
    return struct.unpack(">f", struct.pack(">f", x))[0]


def build_map(unit_marker=1):
    """Returns (hr, ir, co, di, tags); tags: dicts with name, register, address, type, order,
    scale, offset and the expected engineering value."""
    hr, ir = [0] * HR_SIZE, [0] * 64
    co = [bool((i * 7) % 3 == 0) for i in range(24)]
    di = [bool((i * 5) % 4 == 1) for i in range(16)]
    tags = []
    addr = 0
    for order in ORDERS:
        for typ, values in EDGE.items():
            for k, v in enumerate(values):
                regs = to_registers(v, typ, order)
                hr[addr:addr + len(regs)] = regs
                expected = f32(v) if typ == "float32" else float(v)
                tags.append(dict(name=f"{typ}_{order}_{k}", register="holding", address=addr, type=typ,
                                 order=order, scale=1.0, offset=0.0, expected=expected))
                addr += len(regs)
    assert addr < HR_SIZE - 1
    hr[HR_SIZE - 1] = unit_marker
    tags.append(dict(name="unit_marker", register="holding", address=HR_SIZE - 1, type="uint16", order="ABCD",
                     scale=1.0, offset=0.0, expected=float(unit_marker)))
    # Input registers with scale and offset: value = raw * scale + offset.
    scaled = [("int16", "ABCD", -1234, 0.1, 5.0), ("uint32", "CDAB", 70000, 0.001, -3.5),
              ("float32", "BADC", 2.5, -2.0, 1.0), ("int64", "DCBA", -5, 1000.0, 0.25),
              ("uint16", "BADC", 0x1234, 0.5, 0.0)]
    addr = 0
    for i, (typ, order, raw, scale, offset) in enumerate(scaled):
        regs = to_registers(raw, typ, order)
        ir[addr:addr + len(regs)] = regs
        tags.append(dict(name=f"scaled_{i}", register="input", address=addr, type=typ, order=order,
                         scale=scale, offset=offset, expected=float(raw) * scale + offset))
        addr += len(regs)
    ir[addr] = 0x0100  # a bool on a register: any non-zero value is 1
    tags.append(dict(name="reg_bool", register="input", address=addr, type="bool", order="ABCD", scale=1.0,
                     offset=0.0, expected=1.0))
    for i, b in enumerate(co):
        tags.append(dict(name=f"coil_{i}", register="coil", address=i, type="bool", order="ABCD", scale=1.0,
                         offset=0.0, expected=1.0 if b else 0.0))
    for i, b in enumerate(di):
        tags.append(dict(name=f"di_{i}", register="discrete", address=i, type="bool", order="ABCD", scale=1.0,
                         offset=0.0, expected=1.0 if b else 0.0))
    return hr, ir, co, di, tags


# ---------------------------------------------------------------------------------------------
# Peers (run as separate processes: this file with a role argument)
# ---------------------------------------------------------------------------------------------

def slave_context(unit_marker=1):
    from pymodbus.datastore import ModbusSequentialDataBlock, ModbusSlaveContext

    class LoggingContext(ModbusSlaveContext):
        """Logs every stored write (pymodbus calls setValues only after validating the range)."""

        def setValues(self, fc_as_hex, address, values):
            print(f"SET {unit_marker} {fc_as_hex} {address} " + ",".join(str(int(v)) for v in values), flush=True)
            super().setValues(fc_as_hex, address, values)

    hr, ir, co, di, _ = build_map(unit_marker)
    # zero_mode=True: request address N is list index N (the default shifts by one).
    return LoggingContext(di=ModbusSequentialDataBlock(0, di), co=ModbusSequentialDataBlock(0, co),
                          hr=ModbusSequentialDataBlock(0, hr), ir=ModbusSequentialDataBlock(0, ir),
                          zero_mode=True)


def run_tcp_server(port, context):
    import asyncio
    from pymodbus.server import StartAsyncTcpServer

    async def main():
        server = await StartAsyncTcpServer(context=context, address=("127.0.0.1", port), defer_start=True,
                                           allow_reuse_address=True)
        task = asyncio.create_task(server.serve_forever())
        await server.serving
        print("READY", flush=True)
        await task

    asyncio.run(main())


def role_serve_tcp(port, unit_marker=1):
    from pymodbus.datastore import ModbusServerContext
    run_tcp_server(port, ModbusServerContext(slaves=slave_context(unit_marker), single=True))


def role_serve_rtu(pty):
    import asyncio
    from pymodbus.datastore import ModbusServerContext
    from pymodbus.server import StartAsyncSerialServer
    from pymodbus.transaction import ModbusRtuFramer
    context = ModbusServerContext(slaves={1: slave_context(1), 2: slave_context(2)}, single=False)

    async def main():
        # framer=ModbusRtuFramer: pymodbus's serial server defaults to ASCII.
        server = await StartAsyncSerialServer(context=context, framer=ModbusRtuFramer, port=pty, baudrate=115200,
                                              bytesize=8, parity="N", stopbits=1, timeout=0.05, defer_start=True)
        await server.start()
        if server.transport is None:
            raise SystemExit(f"cannot open {pty}")
        print("READY", flush=True)
        await server.serve_forever()

    asyncio.run(main())


# Waveform peer: docs/modbus-waveform.md. Channel X: input registers at 100, format 0 (int16 scaled),
# 200 samples at 2000 Hz. Channel Y: holding registers at 2000, format 1 (float32), 64 samples at
# 640 Hz. Both: one block per 100 ms. Block k carries sequence k, except that from block
# WAVE_SKIP_AT on the sequence is k + 1: sequence WAVE_SKIP_AT is never published.
WAVE_X = dict(name="vib_x", register="input", base=100, n=200, rate=2000, fmt=0, scale=f32(0.001))
WAVE_Y = dict(name="vib_y", register="holding", base=2000, n=64, rate=640, fmt=1, scale=1.0)
WAVE_PERIOD_S = 0.1
WAVE_SKIP_AT = 14
# Channel Y's blocks of the sequences in WAVE_NAN_AT carry a NaN sample: the gateway drops each,
# counts it (waveform_invalid) and flags the next block gap_before. Three of them, so a loaded
# machine that misses one block between polls still sees the others.
WAVE_NAN_AT = (22, 26, 30)


def wave_raw_x(seq, i):
    return seq if i == 0 else ((seq * 37 + i * 101) % 20001) - 10000


def wave_value_x(seq, i):
    return f32(f32(float(wave_raw_x(seq, i))) * WAVE_X["scale"])


def wave_value_y(seq, i):
    return float("nan") if (seq in WAVE_NAN_AT and i == 5) else f32(seq + 0.25 * i)


def wave_registers(w, seq):
    rate, scale = words(struct.pack(">I", w["rate"])), words(struct.pack(">f", w["scale"]))
    header = [seq, w["n"], rate[0], rate[1], w["fmt"], 0, scale[0], scale[1]]
    if w["fmt"] == 0:
        data = [wave_raw_x(seq, i) & 0xFFFF for i in range(w["n"])]
    else:
        data = []
        for i in range(w["n"]):
            data += words(struct.pack(">f", wave_value_y(seq, i)))
    return header, data


def role_serve_wave(port):
    from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext

    class LockedBlock(ModbusSequentialDataBlock):
        """Each request sees a block either before or after an update, never half of one."""

        def __init__(self, address, values):
            super().__init__(address, values)
            self.lock = threading.Lock()

        def getValues(self, address, count=1):
            with self.lock:
                return super().getValues(address, count)

        def setValues(self, address, values):
            with self.lock:
                super().setValues(address, values)

        def publish(self, base, header, data):
            with self.lock:  # samples first, the sequence number last
                ModbusSequentialDataBlock.setValues(self, base + 8, data)
                ModbusSequentialDataBlock.setValues(self, base + 1, header[1:])
                ModbusSequentialDataBlock.setValues(self, base, header[:1])

    ir = LockedBlock(0, [0] * 400)
    hr = LockedBlock(0, [0] * 2200)
    blocks = {"input": ir, "holding": hr}

    def publish(k):
        seq = k if k < WAVE_SKIP_AT else k + 1
        for w in (WAVE_X, WAVE_Y):
            header, data = wave_registers(w, seq)
            blocks[w["register"]].publish(w["base"], header, data)
        # CLOCK_MONOTONIC, the clock of the gateway's mono_ns stamps.
        print(f"PUB {seq} {time.monotonic_ns()}", flush=True)

    publish(1)

    def updater():
        k, t_next = 1, time.monotonic()
        while True:
            t_next += WAVE_PERIOD_S
            time.sleep(max(0.0, t_next - time.monotonic()))
            k += 1
            publish(k)

    threading.Thread(target=updater, daemon=True).start()
    context = ModbusSlaveContext(di=ModbusSequentialDataBlock(0, [0] * 8), co=ModbusSequentialDataBlock(0, [0] * 8),
                                 hr=hr, ir=ir, zero_mode=True)
    run_tcp_server(port, ModbusServerContext(slaves=context, single=True))


def role_blackhole(port):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)
    print("READY", flush=True)

    def swallow(conn):
        with conn:
            while conn.recv(4096):
                pass

    while True:
        conn, _ = srv.accept()
        threading.Thread(target=swallow, args=(conn,), daemon=True).start()


def crc16(data):
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


FAKE_UNIT = 5


def fake_hr(i):
    return (1000 + 7 * i) & 0xFFFF


def role_fake_rtu(pty, phases):
    import termios
    import tty
    phases = [(name, float(length)) for name, length in (p.split(":") for p in phases.split(","))]
    flaky_toggle = False
    fd = os.open(pty, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    termios.tcflush(fd, termios.TCIOFLUSH)
    print("READY", flush=True)
    buf, t_first, phase_shown = b"", None, None
    while True:
        r, _, _ = select.select([fd], [], [], 0.5)
        if not r:
            buf = b""
            continue
        buf += os.read(fd, 256)
        while len(buf) >= 8:
            if crc16(buf[:8]) != 0:  # not a request frame: resynchronise
                buf = buf[1:]
                continue
            req, buf = buf[:8], buf[8:]
            unit, fc, addr, count = req[0], req[1], (req[2] << 8) | req[3], (req[4] << 8) | req[5]
            if unit != FAKE_UNIT:
                continue
            now = time.monotonic()
            t_first = t_first or now
            elapsed, phase = now - t_first, "good"
            for name, length in phases:
                if elapsed < length:
                    phase = name
                    break
                elapsed -= length
            if phase != phase_shown:
                print(f"PHASE {phase} {now - t_first:.3f}", flush=True)
                phase_shown = phase
            if fc == 3 and 1 <= count <= 125 and addr + count <= 100:
                body = bytes([unit, 3, 2 * count]) + b"".join(struct.pack(">H", fake_hr(addr + i))
                                                            for i in range(count))
            else:
                body = bytes([unit, fc | 0x80, 2])
            frame = body + struct.pack("<H", crc16(body))
            if phase == "flaky":
                flaky_toggle = not flaky_toggle
            if phase == "badcrc" or (phase == "flaky" and flaky_toggle):
                frame = frame[:-1] + bytes([frame[-1] ^ 0x5A])
            elif phase == "short":
                frame = frame[:5]
            os.write(fd, frame)


ROLES = {"serve-tcp": lambda a: role_serve_tcp(int(a[0]), int(a[1]) if len(a) > 1 else 1),
         "serve-rtu": lambda a: role_serve_rtu(a[0]),
         "serve-wave": lambda a: role_serve_wave(int(a[0])),
         "blackhole": lambda a: role_blackhole(int(a[0])),
         "fake-rtu": lambda a: role_fake_rtu(a[0], a[1])}


# ---------------------------------------------------------------------------------------------
# Test harness
# ---------------------------------------------------------------------------------------------

RESULTS = {"passed": 0, "failed": 0}
PROCS = []  # every process started, stopped by PID at the end
TMP = tempfile.mkdtemp(prefix="vibgate_poller_peers_")
DRIVER = os.environ.get("VIBGATE_POLL_DRIVER", "")
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def check(name, ok, detail=""):
    RESULTS["passed" if ok else "failed"] += 1
    print(f"{'PASS' if ok else 'FAIL'}: {name}" + (f" — {detail}" if detail else ""), flush=True)
    return ok


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args, name):
    with open(os.path.join(TMP, f"{name}.log"), "ab") as log:
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
    p.log_name = name
    PROCS.append(p)
    return p


def read_line(p, timeout):
    """One line of p's stdout within timeout, or None (unbuffered: select() sees every byte)."""
    deadline = time.monotonic() + timeout
    line = b""
    while time.monotonic() < deadline:
        r, _, _ = select.select([p.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        c = os.read(p.stdout.fileno(), 1)
        if not c:
            break
        if c == b"\n":
            return line.decode()
        line += c
    return None


def start_peer(role, *args, timeout=15):
    p = start([PY, os.path.abspath(__file__), role] + [str(a) for a in args], f"{role}_{args[0] if args else ''}"
              .replace("/", "_"))
    p.lines = []  # what it printed before READY
    deadline = time.monotonic() + timeout
    line = read_line(p, timeout)
    while line is not None and line != "READY":
        p.lines.append(line)
        line = read_line(p, max(0.0, deadline - time.monotonic()))
    if line != "READY":
        stop(p)
        raise RuntimeError(f"peer {role} {args} did not start (got {line!r}); see {TMP}")
    return p


def stop(p, timeout=5):
    """Stops p (SIGTERM, then SIGKILL) and returns the lines it printed and nobody read yet."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout)
    rest = []
    if p.stdout and not p.stdout.closed:
        try:
            if not hasattr(p, "lines"):  # a driver: its reader thread owns stdout
                return rest
            while select.select([p.stdout], [], [], 0)[0]:
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    break
                rest.append(chunk)
        finally:
            p.stdout.close()
    return b"".join(rest).decode(errors="replace").splitlines()


def socat_pair(name):
    a, b = os.path.join(TMP, f"{name}_a"), os.path.join(TMP, f"{name}_b")
    p = start(["socat", "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"], f"socat_{name}")
    deadline = time.monotonic() + 10
    while not (os.path.exists(a) and os.path.exists(b)):
        if time.monotonic() > deadline or p.poll() is not None:
            raise RuntimeError("socat did not create the pty pair")
        time.sleep(0.02)
    return p, a, b


class Driver:
    """poll_driver run in the background; stdout parsed into events as they arrive."""

    def __init__(self, config_text, seconds, name, samples=False, writes=()):
        """writes: (device, kind, address, [values]) issued right after start (--write)."""
        self.path = os.path.join(TMP, f"{name}.toml")
        with open(self.path, "w") as f:
            f.write(config_text)
        args = [DRIVER, self.path, str(seconds)] + (["--samples"] if samples else [])
        for dev, kind, addr, values in writes:
            args += ["--write", f"{dev}:{kind}:{addr}:" + ",".join(str(int(v)) for v in values)]
        self.seconds, self.name = seconds, name
        self.events, self.lock, self.t0 = [], threading.Lock(), time.monotonic()
        self.proc = start(args, f"driver_{name}")
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            try:
                ev = json.loads(raw)
            except ValueError:
                ev = {"ev": "garbage", "text": raw.decode(errors="replace")}
            ev["_t"] = time.monotonic() - self.t0
            with self.lock:
                self.events.append(ev)

    def wait_for(self, pred, timeout):
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            with self.lock:
                evs = self.events[seen:]
                seen = len(self.events)
            for ev in evs:
                if pred(ev):
                    return ev
            if self.proc.poll() is not None and not self.reader.is_alive():
                return None
            time.sleep(0.02)
        return None

    def finish(self, early=False):
        if early and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(self.seconds + 20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.reader.join(5)
        self.rc = self.proc.returncode
        # No crash, no sanitizer report (they exit non-zero), final report printed.
        check(f"{self.name}: driver exited cleanly" + (" on SIGTERM" if early else ""),
              self.rc == 0 and bool(self.of("done")) and not self.of("garbage"),
              f"rc={self.rc}, stderr in {TMP}/driver_{self.name}.log")
        return self

    def of(self, kind, **kw):
        return [e for e in self.events if e.get("ev") == kind and all(e.get(k) == v for k, v in kw.items())]

    def final(self, device):
        f = self.of("final", device=device)
        return f[0] if f else {}

    def jitter(self):
        j = self.of("jitter")
        return j[0] if j else {}


def toml_tags(tags):
    out = []
    for t in tags:
        out.append("  [[device.tag]]\n"
                   f"  name = \"{t['name']}\"\n  register = \"{t['register']}\"\n  address = {t['address']}\n"
                   f"  type = \"{t['type']}\"\n  order = \"{t['order']}\"\n"
                   f"  scale = {t['scale']!r}\n  offset = {t['offset']!r}\n")
    return "\n".join(out)


def tcp_device(name, port, tags, interval_ms=100, timeout_ms=300, retries=2, backoff=(200, 800)):
    return (f"[[device]]\nname = \"{name}\"\nprotocol = \"tcp\"\nhost = \"127.0.0.1\"\nport = {port}\n"
            f"unit_id = 1\npoll_interval_ms = {interval_ms}\nresponse_timeout_ms = {timeout_ms}\n"
            f"retries = {retries}\nbackoff_initial_ms = {backoff[0]}\nbackoff_max_ms = {backoff[1]}\n"
            + toml_tags(tags) + "\n")


def expected_requests_per_poll(tags):
    """Independent count of the coalesced requests (contiguous runs, ≤125 registers/2000 bits)."""
    total = 0
    for reg in ("coil", "discrete", "input", "holding"):
        spans = sorted((t["address"], t["address"] + (1 if reg in ("coil", "discrete") else TYPES.get(
            t["type"], ("", 1))[1])) for t in tags if t["register"] == reg)
        limit = 2000 if reg in ("coil", "discrete") else 125
        start_, end = None, None
        for a, e in spans:
            if start_ is not None and a <= end and max(e, end) - start_ <= limit:
                end = max(end, e)
            else:
                total += start_ is not None
                start_, end = a, e
        total += start_ is not None
    return total


def check_values(label, drv, device, tags):
    """Every tag delivered in every poll with its exact value."""
    samples = drv.of("tag", device=device)
    by_tag = {}
    for s in samples:
        by_tag.setdefault(s["tag"], []).append(s["value"])
    wrong = []
    for t in tags:
        got = by_tag.get(t["name"], [])
        if not got:
            wrong.append(f"{t['name']}: never delivered")
        elif any(v != t["expected"] for v in got):
            bad = next(v for v in got if v != t["expected"])
            wrong.append(f"{t['name']}: got {bad!r}, want {t['expected']!r}")
    counts = {len(v) for v in by_tag.values()}
    polls = drv.final(device).get("polls", -1)
    check(f"{label}: all {len(tags)} tags decoded exactly", not wrong, "; ".join(wrong[:5]))
    check(f"{label}: every tag delivered in each of {polls} polls", counts == {polls}, f"per-tag counts {counts}")
    return by_tag


# ---------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------

def scenario_tcp_all_types(tcp_port):
    _, _, _, _, tags = build_map(1)
    seconds, interval = 2.0, 100
    drv = Driver(tcp_device("plc", tcp_port, tags, interval_ms=interval), seconds, "tcp_all").finish()
    f = drv.final("plc")
    check_values("tcp", drv, "plc", tags)
    check("tcp: online, no error, no request errors",
          f.get("state") == "online" and f.get("last_error") == "" and f.get("request_errors") == 0, str(f))
    want = seconds * 1000 / interval
    check("tcp: poll count matches the rate", abs(f.get("polls", 0) - want) <= 0.1 * want + 1,
          f"{f.get('polls')} polls, expected ≈{want:.0f}")
    rpp = expected_requests_per_poll(tags)
    check(f"tcp: reads coalesced into {rpp} requests per poll", f.get("requests") == rpp * f.get("polls", -1),
          f"requests={f.get('requests')} polls={f.get('polls')}")
    h = drv.of("health", device="plc")
    check("tcp: one health change offline→online", [e["state"] for e in h] == ["online"],
          str([(e["state"], e["last_error"]) for e in h]))
    check("tcp: rtt measured", 0 < f.get("rtt_ms_avg", 0) < 100, f"rtt avg {f.get('rtt_ms_avg')} ms")


def scenario_rtu_two_units():
    socat, a, b = socat_pair("rtu")
    try:
        server = start_peer("serve-rtu", a)
        _, _, _, _, tags1 = build_map(1)
        _, _, _, _, tags2 = build_map(2)
        seconds, interval = 2.5, 200
        cfg = (f"[[bus]]\nname = \"line1\"\nport = \"{b}\"\nbaud = 115200\nparity = \"N\"\n\n")
        for unit, tags in ((1, tags1), (2, tags2)):
            cfg += (f"[[device]]\nname = \"rtu{unit}\"\nprotocol = \"rtu\"\nbus = \"line1\"\nunit_id = {unit}\n"
                    f"poll_interval_ms = {interval}\nresponse_timeout_ms = 500\nretries = 1\n"
                    + toml_tags(tags) + "\n")
        drv = Driver(cfg, seconds, "rtu_two_units").finish()
        want = seconds * 1000 / interval
        for unit, tags in ((1, tags1), (2, tags2)):
            f = drv.final(f"rtu{unit}")
            check_values(f"rtu unit {unit}", drv, f"rtu{unit}", tags)
            check(f"rtu unit {unit}: online, no request errors (polls serialized on one bus)",
                  f.get("state") == "online" and f.get("request_errors") == 0, str(f))
            check(f"rtu unit {unit}: poll count matches the rate", abs(f.get("polls", 0) - want) <= 0.1 * want + 1,
                  f"{f.get('polls')} polls, expected ≈{want:.0f}")
        stop(server)
    finally:
        stop(socat)


def scenario_refused():
    port = free_port()  # nothing listens there
    seconds, interval = 3.0, 100
    tags = [dict(name="x", register="holding", address=0, type="uint16", order="ABCD", scale=1.0, offset=0.0)]
    drv = Driver(tcp_device("gone", port, tags, interval_ms=interval, backoff=(200, 800)), seconds,
                 "refused").finish()
    f = drv.final("gone")
    err = f.get("last_error", "")
    check("refused: offline with a clear error",
          f.get("state") == "offline" and f"connect to 127.0.0.1:{port} failed: Connection refused" in err
          and err.startswith("gone: "), repr(err))
    h = drv.of("health", device="gone")
    check("refused: health change reports the error",
          len(h) >= 1 and h[0]["state"] == "offline" and "Connection refused" in h[0]["last_error"],
          str([(e["state"], e["last_error"]) for e in h]))
    polls, rate_polls = f.get("polls", 0), seconds * 1000 / interval
    # Backoff 200, 400, 800, 800 ms after the first two polls: ≈ 6-7 polls instead of 30.
    check("refused: reconnect backoff (far fewer polls than the poll rate)", 3 <= polls <= rate_polls / 3,
          f"{polls} polls vs {rate_polls:.0f} at the poll rate")
    check("refused: every poll failed, no tags", f.get("poll_failures") == polls and not drv.of("tag"),
          f"poll_failures={f.get('poll_failures')}")


def scenario_blackhole(tcp_port):
    bh_port = free_port()
    hole = start_peer("blackhole", bh_port)
    try:
        _, _, _, _, tags = build_map(1)
        # 10 ms: 400 polls, so that p99 is not just the few largest scheduling hiccups.
        seconds, interval = 4.0, 10
        cfg = (tcp_device("healthy", tcp_port, tags[:40], interval_ms=interval)
               + tcp_device("hole", bh_port, tags[:3], interval_ms=100, timeout_ms=300, retries=1,
                            backoff=(200, 400)))
        drv = Driver(cfg, seconds, "blackhole").finish()
        f, fh = drv.final("healthy"), drv.final("hole")
        check("blackhole: silent device times out and goes offline",
              fh.get("state") == "offline" and "timed out" in fh.get("last_error", "")
              and fh.get("request_errors", 0) >= 2 and fh.get("polls", 0) >= 1, str(fh))
        want = seconds * 1000 / interval
        check("blackhole: healthy neighbour keeps its poll rate (±10 %)",
              abs(f.get("polls", 0) - want) <= 0.1 * want, f"{f.get('polls')} polls, expected {want:.0f}")
        check("blackhole: healthy neighbour online without errors, (almost) no overruns",
              f.get("state") == "online" and f.get("request_errors") == 0 and f.get("overruns", 99) <= 0.02 * want,
              str(f))
        check_values("blackhole neighbour", drv, "healthy", tags[:40])
        j = drv.jitter()
        # A poll held up by the silent device would wait out its 300 ms timeout: p99 < 50 ms says
        # "no stall" with room for a busy sanitizer build (the millisecond figures of an idle
        # machine are the benchmark's business: docs/performance.md).
        check("blackhole: no stall, poll jitter p99 < 50 ms (all devices)",
              j.get("count", 0) > 0 and j.get("p99", 999) < 50.0,
              f"p50={j.get('p50', 0):.3f} p99={j.get('p99', 0):.3f} max={j.get('max', 0):.3f} ms "
              f"over {j.get('count')} polls; largest {j.get('top')}")
        return j
    finally:
        stop(hole)


def scenario_exception(tcp_port):
    _, _, _, _, tags = build_map(1)
    good = tags[:20]
    bad = dict(name="missing", register="holding", address=MISSING_ADDRESS, type="uint16", order="ABCD", scale=1.0,
               offset=0.0)
    seconds, interval = 1.5, 100
    drv = Driver(tcp_device("partial", tcp_port, good + [bad], interval_ms=interval), seconds, "exception").finish()
    f = drv.final("partial")
    check("exception: degraded with the Modbus exception text",
          f.get("state") == "degraded" and "Illegal data address" in f.get("last_error", ""), str(f))
    check_values("exception: other tags", drv, "partial", good)
    check("exception: the missing tag is never delivered", not drv.of("tag", tag="missing"))
    polls = f.get("polls", -1)
    check("exception: one error per poll, not retried (the device answered)",
          f.get("request_errors") == polls and f.get("requests") == polls * (expected_requests_per_poll(good) + 1),
          f"polls={polls} requests={f.get('requests')} errors={f.get('request_errors')}")


def scenario_rtu_faults():
    socat, a, b = socat_pair("fake")
    slave = None
    try:
        slave = start_peer("fake-rtu", a, "good:1.0,flaky:1.0,badcrc:1.5,short:1.6,good:1e9")
        tags = [dict(name="r0", register="holding", address=0, type="uint16", order="ABCD", expected=fake_hr(0)),
                dict(name="r1", register="holding", address=1, type="uint32", order="ABCD",
                     expected=(fake_hr(1) << 16) | fake_hr(2)),
                dict(name="r3", register="holding", address=3, type="int16", order="BADC",
                     expected=struct.unpack(">h", struct.pack("<H", fake_hr(3)))[0])]
        for t in tags:
            t.update(scale=1.0, offset=0.0, expected=float(t["expected"]))
        seconds = 7.5
        cfg = (f"[[bus]]\nname = \"noisy\"\nport = \"{b}\"\nbaud = 115200\nparity = \"N\"\n\n"
               f"[[device]]\nname = \"fake\"\nprotocol = \"rtu\"\nbus = \"noisy\"\nunit_id = {FAKE_UNIT}\n"
               f"poll_interval_ms = 100\nresponse_timeout_ms = 200\nretries = 1\nbackoff_initial_ms = 100\n"
               f"backoff_max_ms = 200\n" + toml_tags(tags))
        drv = Driver(cfg, seconds, "rtu_faults").finish()
        f = drv.final("fake")
        h = [(e["state"], e["last_error"]) for e in drv.of("health", device="fake")]
        check("rtu faults: every non-online state comes with its error", all(e for st, e in h if st != "online"),
              str(h))
        first_down = next((e["_t"] for e in drv.of("health", device="fake") if e["state"] != "online"), 0)
        before = len([s for s in drv.of("tag", device="fake") if s["_t"] < first_down])
        # 1 s good + 1 s flaky (each request fails once, then succeeds on its retry) at 10 polls/s.
        check("rtu faults: retried bad CRCs stay invisible (values flow, still online)",
              before >= 0.8 * 20 * len(tags), f"{before} samples before the first outage at {first_down:.2f} s")
        crc = [s for s in h if s[0] != "online" and "Invalid CRC" in s[1]]
        short = [s for s in h if s[0] != "online" and "timed out" in s[1]]
        check("rtu faults: bad CRC reported", bool(crc), str(h))
        check("rtu faults: truncated frame reported (timeout)", bool(short), str(h))
        check("rtu faults: errors counted", f.get("request_errors", 0) >= 4, f"request_errors={f.get('request_errors')}")
        check("rtu faults: recovered: online again, no error", f.get("state") == "online" and f.get("last_error") == ""
              and h and h[-1] == ("online", ""), str(f))
        wrong = [s for s in drv.of("tag", device="fake")
                 if s["value"] != next(t["expected"] for t in tags if t["name"] == s["tag"])]
        last_fault = max(e["_t"] for e in drv.of("health", device="fake"))
        after = [s for s in drv.of("tag", device="fake") if s["_t"] > last_fault]
        check("rtu faults: no corrupted value ever delivered", not wrong, str(wrong[:3]))
        check("rtu faults: tags delivered again after recovery", len(after) >= 3 * 5, f"{len(after)} samples after")
    finally:
        if slave:
            stop(slave)
        stop(socat)


def scenario_rtu_silent_neighbour():
    socat, a, b = socat_pair("silent")
    slave = None
    try:
        slave = start_peer("fake-rtu", a, "good:1e9")
        ok_tags = [dict(name="r0", register="holding", address=0, type="uint16", order="ABCD", scale=1.0,
                        offset=0.0, expected=float(fake_hr(0)))]
        # Three blocks on a unit nobody answers.
        dead_tags = [dict(name=f"d{i}", register=reg, address=addr, type="uint16", order="ABCD", scale=1.0,
                          offset=0.0) for i, (reg, addr) in enumerate((("holding", 0), ("holding", 10), ("input", 0)))]
        seconds = 3.0
        cfg = (f"[[bus]]\nname = \"shared\"\nport = \"{b}\"\nbaud = 115200\nparity = \"N\"\n\n"
               f"[[device]]\nname = \"alive\"\nprotocol = \"rtu\"\nbus = \"shared\"\nunit_id = {FAKE_UNIT}\n"
               f"poll_interval_ms = 100\nresponse_timeout_ms = 150\nretries = 1\n" + toml_tags(ok_tags) +
               f"\n[[device]]\nname = \"silent\"\nprotocol = \"rtu\"\nbus = \"shared\"\nunit_id = {FAKE_UNIT + 1}\n"
               f"poll_interval_ms = 100\nresponse_timeout_ms = 150\nretries = 1\nbackoff_initial_ms = 100\n"
               f"backoff_max_ms = 200\n" + toml_tags(dead_tags))
        drv = Driver(cfg, seconds, "rtu_silent").finish()
        fa, fs = drv.final("alive"), drv.final("silent")
        check("rtu silent neighbour: silent unit offline with a timeout",
              fs.get("state") == "offline" and "timed out" in fs.get("last_error", ""), str(fs))
        check("rtu silent neighbour: one block's retries per poll, not every block's (the bus is shared)",
              fs.get("polls", 0) > 0 and fs.get("requests") == 2 * fs.get("polls", 0),
              f"polls={fs.get('polls')} requests={fs.get('requests')} (3 blocks, retries=1)")
        check("rtu silent neighbour: the answering unit stays online with exact values",
              fa.get("state") == "online" and fa.get("request_errors") == 0 and fa.get("polls", 0) >= 5
              and all(s["value"] == ok_tags[0]["expected"] for s in drv.of("tag", device="alive")), str(fa))
    finally:
        if slave:
            stop(slave)
        stop(socat)


def scenario_restart():
    port = free_port()
    server = start_peer("serve-tcp", port)
    try:
        tags = [dict(name="v", register="holding", address=0, type="int16", order="ABCD", scale=1.0, offset=0.0,
                     expected=-32768.0)]
        # A long backoff ceiling: after the outage the backoff has grown to 1.6 s or more.
        drv = Driver(tcp_device("phoenix", port, tags, interval_ms=100, timeout_ms=300, retries=1,
                                backoff=(200, 10000)), 20, "restart")
        online1 = drv.wait_for(lambda e: e.get("ev") == "health" and e.get("state") == "online", 10)
        stop(server)
        offline = drv.wait_for(lambda e: e.get("ev") == "health" and e.get("state") == "offline", 10)
        time.sleep(1.5)
        t_restart = time.monotonic() - drv.t0
        server = start_peer("serve-tcp", port)
        online2 = drv.wait_for(lambda e: e.get("ev") == "health" and e.get("state") == "online"
                               and e["_t"] > t_restart, 10)
        time.sleep(1.0)
        drv.finish(early=True)
        check("restart: online, then offline when the server is killed", bool(online1) and bool(offline),
              f"offline error: {offline.get('last_error') if offline else None}")
        check("restart: online again by itself after the server is back", bool(online2),
              f"{(online2['_t'] - t_restart) if online2 else None} s after restart")
        f = drv.final("phoenix")
        t_back = online2["_t"] if online2 else 1e9
        after = [s for s in drv.of("tag") if t_back <= s["_t"] <= t_back + 1.0 and s["value"] == -32768.0]
        check("restart: back at the poll rate at once, not after another backoff",
              f.get("state") == "online" and len(after) >= 8,
              f"state={f.get('state')}, {len(after)} samples in the 1 s after recovery (10 at the poll rate)")
    finally:
        stop(server)


def scenario_waveform():
    port = free_port()
    server = start_peer("serve-wave", port)
    try:
        seconds = 3.5
        cfg = (f"[[device]]\nname = \"wave\"\nhost = \"127.0.0.1\"\nport = {port}\npoll_interval_ms = 30\n"
               f"response_timeout_ms = 300\n"
               f"  [[device.waveform]]\n  name = \"vib_x\"\n  address = {WAVE_X['base']}\n\n"
               f"  [[device.waveform]]\n  name = \"vib_y\"\n  register = \"holding\"\n  address = {WAVE_Y['base']}\n"
               f"  units = \"m/s2\"\n")
        drv = Driver(cfg, seconds, "waveform", samples=True).finish()
        published = {}
        for line in server.lines + stop(server):
            if line.startswith("PUB "):
                _, q, t = line.split()
                published[int(q)] = int(t)
        f = drv.final("wave")
        total_gaps = 0
        for w, value, units in ((WAVE_X, wave_value_x, "g"), (WAVE_Y, wave_value_y, "m/s2")):
            chan = f"wave/{w['name']}"
            blocks = drv.of("block", channel=chan)
            label = f"waveform {w['name']}"
            seqs, bad = [], []
            for b in blocks:
                seq = round(b["samples"][0] / value(1, 0)) if b["samples"] else -1
                seqs.append(seq)
                want = [value(seq, i) for i in range(w["n"])]
                if b["n"] != w["n"] or b["samples"] != want or b["rate"] != w["rate"] or b["units"] != units:
                    bad.append(seq)
            want_blocks = seconds / WAVE_PERIOD_S
            check(f"{label}: blocks arrive at the block rate", 0.8 * want_blocks - 2 <= len(blocks) <= want_blocks + 2,
                  f"{len(blocks)} blocks in {seconds} s, expected ≈{want_blocks:.0f}")
            check(f"{label}: channel name, rate, units and every sample exact", blocks and not bad,
                  f"bad blocks (seq) {bad[:5]}")
            diffs = [b - a for a, b in zip(seqs, seqs[1:])]
            flags = [b["gap_before"] for b in blocks]
            check(f"{label}: sequence increases, gap_before exactly where blocks were missed",
                  all(d >= 1 for d in diffs) and flags == [True] + [d > 1 for d in diffs],
                  f"seqs {seqs}")
            check(f"{label}: the skipped sequence {WAVE_SKIP_AT} is flagged as a gap",
                  WAVE_SKIP_AT not in seqs and any(a < WAVE_SKIP_AT < b and fl
                                                   for a, b, fl in zip(seqs, seqs[1:], flags[1:])), f"seqs {seqs}")
            total_gaps += sum(d - 1 for d in diffs)
            # Timestamps: the first sample is stamped n / rate (100 ms) before the response arrived;
            # the response came within one poll interval (30 ms) of the block's publication (the
            # first block excepted: it may have been published before the driver started).
            ages = [(b["now_mono_ns"] - b["first_mono_ns"]) / 1e6 for b in blocks]
            check(f"{label}: first sample stamped one block duration before the response",
                  ages and all(100 <= x < 125 for x in ages), f"{min(ages, default=0):.2f}…{max(ages, default=0):.2f} ms")
            lags = [(b["first_mono_ns"] + 100e6 - published[q]) / 1e6 for b, q in zip(blocks[1:], seqs[1:])
                    if q in published]
            check(f"{label}: each block seen within one poll interval of its publication",
                  len(lags) == len(blocks) - 1 and lags and all(0 <= x <= 30 + 30 for x in lags),
                  f"{min(lags, default=0):.1f}…{max(lags, default=0):.1f} ms after the server published it")
        y_seqs = [round(b["samples"][0] / wave_value_y(1, 0)) for b in drv.of("block", channel="wave/vib_y")]
        check(f"waveform vib_y: blocks with a NaN sample (seqs {WAVE_NAN_AT}) are dropped and counted",
              not set(WAVE_NAN_AT) & set(y_seqs) and 1 <= f.get("waveform_invalid", 0) <= len(WAVE_NAN_AT) and
              all(any(a < q < b for a, b in zip(y_seqs, y_seqs[1:])) for q in WAVE_NAN_AT),
              f"waveform_invalid={f.get('waveform_invalid')}, vib_y seqs {y_seqs}")
        # The dropped NaN block shows as a missed sequence on vib_y but is not a transmission gap.
        total_gaps -= f.get("waveform_invalid", 0)
        check("waveform: waveform_gaps counts every missed block", f.get("waveform_gaps") == total_gaps and
              total_gaps >= 2, f"waveform_gaps={f.get('waveform_gaps')} from sequences: {total_gaps}")
        check("waveform: device online", f.get("state") == "online" and f.get("request_errors") == 0, str(f))
    finally:
        stop(server)


# Writes (FC 5, 6, 15, 16): poll_driver --write issues them right after start, before any poll
# reaches the bus worker; each reports its done(error) as an "ev":"write" line.

WRITE_FC = {"coil": 5, "register": 6, "coils": 15, "registers": 16}


def write_plan(hr, co, variant):
    """Writes of all four function codes whose values differ from the map. Variant 1 (the second
    RTU unit) uses other addresses and values, so that a write landing on the wrong unit shows."""
    if variant == 0:
        c1, c3, r, cs, n_cs, rs, n_rs, x = 1, 3, 7, 10, 11, 200, 123, 0xBEEF
    else:
        c1, c3, r, cs, n_cs, rs, n_rs, x = 4, 6, 9, 13, 9, 250, 100, 0x4321
    assert not co[c1] and co[c3]  # one coil switched on, one off
    return [("coil", c1, [1]), ("coil", c3, [0]), ("register", r, [hr[r] ^ x]),
            # 11 and 9 coils: not a whole number of bytes; 123 registers: the FC 16 maximum.
            ("coils", cs, [int(not co[i]) for i in range(cs, cs + n_cs)]),
            ("registers", rs, [hr[i] ^ x for i in range(rs, rs + n_rs)])]


def illegal_writes():
    """Each function code on addresses the server does not map; the last starts inside the map
    (398, 399) and runs past its end: rejected as a whole, nothing stored."""
    return [("coil", MISSING_ADDRESS, [1]), ("register", MISSING_ADDRESS, [1]),
            ("coils", MISSING_ADDRESS, [1, 0, 1]), ("registers", MISSING_ADDRESS, [1, 2]),
            ("registers", HR_SIZE - 2, [1, 2, 3, 4, 5])]


def apply_writes(hr, co, ops):
    hr, co = list(hr), [int(b) for b in co]
    for kind, addr, values in ops:
        (co if kind.startswith("coil") else hr)[addr:addr + len(values)] = values
    return hr, co


def write_check_tags(hr, co):
    """Tags over every address either plan writes, their neighbours and the other unit's targets:
    coils 0..23, holding 6..10 and 199..350 (three blocks of ≤125 registers)."""
    tags = [dict(name=f"c{i}", register="coil", address=i, type="bool", order="ABCD", scale=1.0, offset=0.0,
                 expected=float(co[i])) for i in range(len(co))]
    tags += [dict(name=f"h{i}", register="holding", address=i, type="uint16", order="ABCD", scale=1.0, offset=0.0,
                  expected=float(hr[i])) for i in list(range(6, 11)) + list(range(199, 351))]
    return tags


def server_sets(lines, unit):
    """(fc, address, values) of every write the server stored for `unit`, in order."""
    out = []
    for line in lines:
        p = line.split()
        if len(p) == 5 and p[0] == "SET" and int(p[1]) == unit:
            out.append((int(p[2]), int(p[3]), [int(v) for v in p[4].split(",")]))
    return out


def check_write_reports(label, drv, writes):
    """Every write reported exactly once, with its own fields; per device in issue order."""
    ws = drv.of("write")
    idx = sorted(w.get("index", -1) for w in ws)
    d = drv.of("done")
    fields_ok = all(0 <= w.get("index", -1) < len(writes) and
                    (w["device"], w["op"], w["address"], w["values"]) == tuple(writes[w["index"]]) and
                    w["fc"] == WRITE_FC[w["op"]] for w in ws)
    orders = {}
    for w in ws:
        orders.setdefault(w["device"], []).append(w["index"])
    check(f"{label}: every write's done() ran exactly once, fields echoed, per device in issue order",
          idx == list(range(len(writes))) and fields_ok and d and d[0].get("writes_pending") == 0
          and all(v == sorted(v) for v in orders.values()),
          f"reported {idx} of {len(writes)}; pending {d[0].get('writes_pending') if d else None}; order {orders}")
    return {w["index"]: w for w in ws}


def check_writes_landed(label, by_index, writes, good, sets):
    """The successful writes succeeded and the server stored exactly them, in order, each with its
    function code, address and values; the failed ones stored nothing."""
    bad = [(i, by_index.get(i, {}).get("error")) for i in good if by_index.get(i, {}).get("error") != ""]
    check(f"{label}: {len(good)} writes succeed (done with \"\")", not bad, str(bad)[:400])
    want = [(WRITE_FC[writes[i][1]], writes[i][2], writes[i][3]) for i in good]
    for kind, fc in WRITE_FC.items():
        w = [s for s in want if s[0] == fc]
        got = [s for s in sets if s[0] == fc]
        check(f"{label}: FC {fc} ({kind}): the server stored exactly the values written",
              w and got == w, f"stored {[(f, a, v[:8]) for f, a, v in got]}, want {[(f, a, v[:8]) for f, a, v in w]}")
    check(f"{label}: nothing else stored, in issue order", sets == want,
          f"{len(sets)} stores, {len(want)} writes succeeded")


def check_write_exceptions(label, by_index, dev, bad):
    wrong = [(i, by_index.get(i, {}).get("error")) for i in bad
             if not (by_index.get(i, {}).get("error", "").startswith(f"{dev}: write")
                     and "Illegal data address" in by_index[i]["error"])]
    check(f"{label}: writes to unmapped addresses (FC 5, 6, 15, 16, and one running past the end) fail "
          f"with the Modbus exception text", not wrong,
          str(wrong)[:400] + ("" if wrong else f" e.g. {by_index[bad[0]]['error']!r}"))


def check_keeps_running(label, drv, dev, seconds, interval_ms, by_index, bad):
    f = drv.final(dev)
    want = seconds * 1000 / interval_ms
    t_err = max((by_index[i]["_t"] for i in bad if i in by_index), default=1e9)
    after = [s for s in drv.of("tag", device=dev) if s["_t"] > t_err]
    check(f"{label}: the poller keeps running after the exceptions (online, polls at the rate, tags after)",
          f.get("state") == "online" and f.get("last_error") == "" and f.get("polls", 0) >= 0.7 * want
          and len(after) > 0, f"{f.get('state')} {f.get('last_error')!r} polls={f.get('polls')} (≈{want:.0f}), "
          f"{len(after)} samples after the last exception")


def scenario_write_tcp():
    port, refused = free_port(), free_port()  # nothing listens on `refused`
    while refused == port:
        refused = free_port()
    server = start_peer("serve-tcp", port)    # its own map: the shared server's stays untouched
    try:
        hr0, _, co0, _, _ = build_map(1)
        plan = write_plan(hr0, co0, 0)
        illegal = illegal_writes()
        # One more than FC 16 (123 registers) and FC 15 (1968 coils) can carry: refused before
        # anything is sent (libmodbus), after which the link must still write.
        too_many = [("registers", 0, [1] * 124), ("coils", 0, [1] * 1969)]
        last = ("register", 8, [hr0[8] ^ 0x5555])
        plc = plan[:3] + illegal + too_many + plan[3:] + [last]
        writes = ([("plc", k, a, list(v)) for k, a, v in plc] +
                  [("nosuch", "register", 0, [1]), ("gone", "register", 0, [1]), ("gone", "coils", 0, [1, 0])])
        good = [i for i, w in enumerate(plc) if w not in illegal + too_many]
        bad = [i for i, w in enumerate(plc) if w in illegal]
        oversize = [i for i, w in enumerate(plc) if w in too_many]
        hr, co = apply_writes(hr0, co0, plan + [last])
        tags = write_check_tags(hr, co)
        seconds, interval = 1.0, 100
        cfg = (tcp_device("plc", port, tags, interval_ms=interval) +
               tcp_device("gone", refused, tags[:1], interval_ms=interval, backoff=(200, 800)))
        drv = Driver(cfg, seconds, "write_tcp", writes=writes).finish()
        by_index = check_write_reports("write tcp", drv, writes)
        # Read back with an independent client while the server still runs.
        from pymodbus.client import ModbusTcpClient
        client = ModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=1)
        got_hr, got_co, err = [], [], ""
        try:
            if not client.connect():
                err = "cannot connect"
            for a in range(0, HR_SIZE, 125):
                rr = client.read_holding_registers(a, min(125, HR_SIZE - a), slave=1)
                if rr.isError():
                    err = str(rr)
                    break
                got_hr += rr.registers
            rr = client.read_coils(0, len(co0), slave=1)
            if rr.isError():
                err = str(rr)
            else:
                got_co = [int(b) for b in rr.bits[:len(co0)]]
        finally:
            client.close()
        diff_hr = [(i, g, w) for i, (g, w) in enumerate(zip(got_hr, hr)) if g != w]
        diff_co = [(i, g, w) for i, (g, w) in enumerate(zip(got_co, co)) if g != w]
        check("write tcp: read back with pymodbus: all holding registers and coils hold the map with exactly "
              "the successful writes applied", not err and len(got_hr) == HR_SIZE and len(got_co) == len(co0)
              and not diff_hr and not diff_co, f"{err} (address, got, want): {diff_hr[:5]} {diff_co[:5]}")
        check_writes_landed("write tcp", by_index, writes, good, server_sets(stop(server), 1))
        check_values("write tcp: poller reads the written values from its first poll on", drv, "plc", tags)
        check_write_exceptions("write tcp", by_index, "plc", bad)
        check_keeps_running("write tcp", drv, "plc", seconds, interval, by_index, bad)
        errs = [by_index.get(i, {}).get("error", "") for i in oversize]
        check("write tcp: over-long FC 16/15 writes (124 registers, 1969 coils) fail with an error",
              len(errs) == 2 and all(e.startswith("plc: write") and "Too many data" in e for e in errs), str(errs))
        unknown = [w for w in drv.of("write") if w["device"] == "nosuch"]
        check("write tcp: unknown device: error names the device",
              len(unknown) == 1 and "unknown device" in unknown[0]["error"] and "'nosuch'" in unknown[0]["error"],
              str([w.get("error") for w in unknown]))
        gone = [w for w in drv.of("write") if w["device"] == "gone"]
        check("write tcp: offline device (connection refused): connect error, no crash",
              len(gone) == 2 and all(w["error"].startswith("gone: ") and
                                     f"connect to 127.0.0.1:{refused} failed: Connection refused" in w["error"]
                                     for w in gone), str([w.get("error") for w in gone]))
    finally:
        stop(server)


def scenario_write_rtu():
    socat, a, b = socat_pair("write")
    server = None
    try:
        server = start_peer("serve-rtu", a)
        writes, expected, goods, bads = [], {}, {}, {}
        for unit in (1, 2):
            hr0, _, co0, _, _ = build_map(unit)
            plan = write_plan(hr0, co0, unit - 1)
            ops = plan if unit == 2 else plan[:2] + illegal_writes() + plan[2:]
            goods[unit] = [len(writes) + k for k, w in enumerate(ops) if w in plan]
            bads[unit] = [len(writes) + k for k, w in enumerate(ops) if w not in plan]
            writes += [(f"rtu{unit}", k, ad, list(v)) for k, ad, v in ops]
            expected[unit] = write_check_tags(*apply_writes(hr0, co0, plan))
        seconds, interval = 1.5, 200
        cfg = f"[[bus]]\nname = \"line1\"\nport = \"{b}\"\nbaud = 115200\nparity = \"N\"\n\n"
        for unit in (1, 2):
            cfg += (f"[[device]]\nname = \"rtu{unit}\"\nprotocol = \"rtu\"\nbus = \"line1\"\nunit_id = {unit}\n"
                    f"poll_interval_ms = {interval}\nresponse_timeout_ms = 500\nretries = 1\n"
                    + toml_tags(expected[unit]) + "\n")
        drv = Driver(cfg, seconds, "write_rtu", writes=writes).finish()
        by_index = check_write_reports("write rtu", drv, writes)
        lines = stop(server)
        for unit in (1, 2):
            label = f"write rtu unit {unit}"
            check_writes_landed(label, by_index, writes, goods[unit], server_sets(lines, unit))
            check_values(f"{label}: poller reads the written values (and the other unit's untouched)", drv,
                         f"rtu{unit}", expected[unit])
        check_write_exceptions("write rtu unit 1", by_index, "rtu1", bads[1])
        check_keeps_running("write rtu unit 1", drv, "rtu1", seconds, interval, by_index, bads[1])
    finally:
        if server:
            stop(server)
        stop(socat)


def main():
    if not DRIVER or not os.access(DRIVER, os.X_OK):
        print(f"VIBGATE_POLL_DRIVER not set or not executable: {DRIVER!r}")
        print("0 passed, 1 failed")
        return 1
    t0 = time.monotonic()
    tcp = None
    try:
        tcp_port = free_port()
        tcp = start_peer("serve-tcp", tcp_port)
        for name, fn in (("tcp_all_types", lambda: scenario_tcp_all_types(tcp_port)),
                         ("rtu_two_units", scenario_rtu_two_units),
                         ("refused", scenario_refused),
                         ("blackhole", lambda: scenario_blackhole(tcp_port)),
                         ("exception", lambda: scenario_exception(tcp_port)),
                         ("rtu_faults", scenario_rtu_faults),
                         ("rtu_silent_neighbour", scenario_rtu_silent_neighbour),
                         ("restart", scenario_restart),
                         ("waveform", scenario_waveform),
                         ("write_tcp", scenario_write_tcp),
                         ("write_rtu", scenario_write_rtu)):
            ts = time.monotonic()
            try:
                fn()
            except Exception as e:  # one broken scenario must not hide the others
                check(f"{name}: scenario ran", False, f"{type(e).__name__}: {e}")
            print(f"-- {name}: {time.monotonic() - ts:.1f} s", flush=True)
    finally:
        for p in PROCS:
            try:
                stop(p)
            except Exception as e:  # keep stopping the others
                print(f"could not stop pid {p.pid}: {e}")
    if RESULTS["failed"]:
        print(f"-- total {time.monotonic() - t0:.1f} s; peer and driver logs in {TMP}", flush=True)
    else:
        shutil.rmtree(TMP, ignore_errors=True)
        print(f"-- total {time.monotonic() - t0:.1f} s", flush=True)
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed", flush=True)
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ROLES:
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        ROLES[sys.argv[1]](sys.argv[2:])
    else:
        sys.exit(main())
