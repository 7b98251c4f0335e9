#!/usr/bin/python3
"""The daemon's Modbus TCP facade for PLCs (docs/modbus-facade.md) checked with Debian's `mbpoll`
as the PLC, plus raw sockets for what mbpoll cannot send (garbage, pipelining, odd unit ids).

Run as `/usr/bin/python3 test_facade_mbpoll.py` with VIBGATE_FACADE_DRIVER set to the
facade_driver binary (ctest does this). The driver (tests/daemon/facade_driver.cpp) runs a
ModbusFacade on a free loopback port and takes `update`/`beat`/`health`/`stats`/`quit` lines on
stdin. Every wait is bounded. Prints one line per check and a final `N passed, M failed`; exits 1
if any check failed.

  a) values: score x1000 with saturation at 65.535, alarm level, ISO zone, velocity x100 and as
     float32 ABCD, model state, acknowledged flag, window time, update counter, holding = input,
     coils = discrete inputs (warning for level >= 1, alarm for level 2), health block;
  b) time: the age register grows while nothing is updated; the heartbeat moves only on beat();
  c) refusals: writes FC 5/6/15/16 -> exception 01 and nothing changes; reads past the map and into
     the gap below the health block -> 02; bad quantity -> 03; unknown unit id -> 0B, unit 0/255 ok;
  d) robustness: garbage and a stalled half frame do not delay other clients, garbage is dropped
     with one log line; pipelined requests answered in order; more than max_clients refused while
     the others keep working; idle clients closed; 200 random frames do not hurt;
  e) lifecycle: a busy port and a bad configuration are reported; "quit" ends within 1 s;
  f) allow-list: a listed client is served, one from 127.0.0.2 is closed at once, counted and
     logged; a malformed entry is refused at start.
"""

import os
import random
import re
import select
import socket
import struct
import subprocess
import sys
import time

MBPOLL = "/usr/bin/mbpoll"

_TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, _TESTS)
sys.path.insert(0, os.path.join(_TESTS, "sim"))
from checks import Checks  # noqa: E402  (tests/checks.py)
# The simulator test's helpers, shared rather than copied: free_port() and mbpoll(port, unit,
# ref, count, type, *extra) — one mbpoll run with a 1-based reference (PLC notation); with values
# in extra a write (one value: FC 5/6, several: FC 15/16); returns (rc, {ref: token}, output).
from test_sim_mbpoll import free_port, mbpoll  # noqa: E402  (tests/sim/test_sim_mbpoll.py)

HEALTH = 1000  # 0-based base of the health block
BLOCK = 16


class Driver:
    """A running facade_driver; every read of its output is bounded."""

    def __init__(self, exe, *args, timeout=10.0):
        self.p = subprocess.Popen([exe, *map(str, args)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.buf = b""
        self.err = b""
        self.first = self.line(timeout)
        self.ready = self.first is not None and self.first.startswith("ready ")

    def line(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        fd = self.p.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace")

    def cmd(self, text, timeout=5.0):
        self.p.stdin.write((text + "\n").encode())
        self.p.stdin.flush()
        return self.line(timeout)

    def quit(self, timeout=5.0):
        """Sends quit; returns (exit code or None, seconds until exit, the 'stopped' line)."""
        t0 = time.monotonic()
        stopped = None
        if self.p.poll() is None:
            try:
                self.p.stdin.write(b"quit\n")
                self.p.stdin.flush()
                stopped = self.line(timeout)
            except BrokenPipeError:
                pass
        try:
            rc = self.p.wait(timeout=max(0.1, timeout - (time.monotonic() - t0)))
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(timeout=5)
            rc = None
        elapsed = time.monotonic() - t0
        self.err = self.p.stderr.read()
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            try:
                f.close()
            except OSError:
                pass
        return rc, elapsed, stopped

    def stats(self):
        line = self.cmd("stats") or ""
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


def regs(port, addr, count, table="3", unit=1):
    """Registers at 0-based addr..addr+count-1 via mbpoll's hex display; None on error."""
    rc, vals, _ = mbpoll(port, unit, addr + 1, count, f"{table}:hex")
    if rc != 0 or len(vals) != count:
        return None
    return [int(vals[addr + 1 + i], 16) for i in range(count)]


def bits(port, addr, count, table="0"):
    rc, vals, _ = mbpoll(port, 1, addr + 1, count, table)
    if rc != 0 or len(vals) != count:
        return None
    return [int(vals[addr + 1 + i]) for i in range(count)]


def last_line(out):
    lines = out.strip().splitlines()
    return lines[-1] if lines else ""


def f32_from(ws):
    return struct.unpack(">f", struct.pack(">HH", ws[0], ws[1]))[0]


def f32(x):
    return struct.unpack(">f", struct.pack(">f", x))[0]


def u32(ws):
    return ws[0] << 16 | ws[1]


# ---- raw Modbus/TCP ---------------------------------------------------------------------------

def frame(tid, unit, pdu):
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


def read_req(tid, unit, fc, addr, qty):
    return frame(tid, unit, struct.pack(">BHH", fc, addr, qty))


def connect(port, timeout=2.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_frame(s, timeout=2.0):
    """One response frame (tid, unit, pdu); None on timeout, b'' (as pdu) on EOF."""
    s.settimeout(timeout)
    data = b""
    try:
        # Exactly one frame: the header first, then what its length field announces (pipelined
        # answers behind it stay in the socket for the next call).
        while len(data) < 6 or len(data) < 6 + struct.unpack(">H", data[4:6])[0]:
            want = 6 - len(data) if len(data) < 6 else 6 + struct.unpack(">H", data[4:6])[0] - len(data)
            chunk = s.recv(want)
            if not chunk:
                return (None, None, b"")
            data += chunk
    except socket.timeout:
        return None
    except ConnectionResetError:
        return (None, None, b"")
    tid, _, length = struct.unpack(">HHH", data[:6])
    return tid, data[6], data[7:6 + length]


def closed_by_peer(s, timeout):
    """True when the server closes the socket within timeout."""
    s.settimeout(timeout)
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return True
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def ask(port, req, timeout=2.0):
    with connect(port) as s:
        s.sendall(req)
        return recv_frame(s, timeout)


# ---- checks -----------------------------------------------------------------------------------

def check_initial(c, port):
    r = regs(port, 0, BLOCK)
    if c.check("initial: asset 0 block readable (FC 4)", r is not None):
        c.check("initial: model state 0, age 65535 (never), heartbeat 0, update count 0",
                r[6] == 0 and r[7] == 65535 and r[8] == 0 and r[9] == 0, r)
    h = regs(port, HEALTH, 16)
    if c.check("initial: health block readable at 31001 (FC 4)", h is not None):
        c.check("health: 3 assets, map version 1, unit id 1", h[8] == 3 and h[9] == 1 and h[11] == 1, h)
        c.check("health: beat age and health age 65535 before any beat/set_health", h[3] == 65535 and h[10] == 65535, h)


def check_values(c, d, port):
    c.check("update asset 0", d.cmd("update 0 0.5 0 2 1.23 2 0 1700000000") == "ok")
    c.check("update asset 1 (saturating)", d.cmd("update 1 70.0 2 4 700.5 2 1") == "ok")
    c.check("update asset 2 (warning)", d.cmd("update 2 1.2 1 3 4.5 1") == "ok")
    c.check("update of asset 3 (out of range) rejected", d.cmd("update 3 1 0 0 0 0") == "error no such asset")

    r = regs(port, 0, 3 * BLOCK)
    if not c.check("three asset blocks readable in one request (FC 4, 30001..30048)", r is not None):
        return
    a0, a1, a2 = r[0:16], r[16:32], r[32:48]
    c.check("a0: score 0.5 -> 500, level 0, zone 2, vrms 1.23 -> 123", a0[0:4] == [500, 0, 2, 123], a0[0:4])
    c.check("a0: vrms float32 ABCD = 1.23f", f32_from(a0[4:6]) == f32(1.23), [hex(x) for x in a0[4:6]])
    c.check("a0: model 2 (scoring), age 0..1 s, update count 1, not acknowledged",
            a0[6] == 2 and a0[7] <= 1 and a0[9] == 1 and a0[10] == 0, a0[6:11])
    c.check("a0: score float32 ABCD = 0.5", f32_from(a0[11:13]) == 0.5, a0[11:13])
    c.check("a0: window time uint32 ABCD 1700000000, reserved 0", u32(a0[13:15]) == 1700000000 and a0[15] == 0,
            a0[13:16])
    c.check("a1: score 70 saturates at 65535, level 2, zone 4, vrms x100 saturates", a1[0:4] == [65535, 2, 4, 65535],
            a1[0:4])
    c.check("a1: vrms float32 keeps 700.5, score float32 keeps 70", f32_from(a1[4:6]) == 700.5 and
            f32_from(a1[11:13]) == 70.0)
    c.check("a1: acknowledged 1, window time 0 (unknown)", a1[10] == 1 and u32(a1[13:15]) == 0, a1[10:15])
    c.check("a2: 1200, level 1, zone 3, 450, model 1 (learning)", a2[0:4] == [1200, 1, 3, 450] and a2[6] == 1, a2)

    rc, v, out = mbpoll(port, 1, 5, 1, "3:float", "-B")
    c.check("mbpoll -t3:float -B reads vrms 1.23 at 30005", rc == 0 and abs(float(v.get(5, "nan")) - 1.23) < 1e-6,
            last_line(out))
    hr = regs(port, 0, 3 * BLOCK, table="4")
    c.check("holding registers 40001..40048 mirror the input registers (FC 3)", hr is not None and
            [x for i, x in enumerate(hr) if i % BLOCK != 7] == [x for i, x in enumerate(r) if i % BLOCK != 7])

    # Saturation boundary: 65.534 -> 65534, 65.535 -> 65535, 65.5355 -> 65535; negative/NaN -> 0.
    got = []
    for score in ("65.534", "65.535", "65.5355", "-1", "nan"):
        d.cmd(f"update 0 {score} 0 2 1.23 2")
        w = regs(port, 0, 1)
        got.append(w[0] if w else None)
    c.check("score x1000: 65.534 -> 65534, 65.535 -> 65535, 65.5355 -> 65535, -1 -> 0, nan -> 0",
            got == [65534, 65535, 65535, 0, 0], got)
    d.cmd("update 0 0.5 0 2 1.23 2")

    co = bits(port, 0, 6, "0")
    c.check("coils 00001..00006 (FC 1): a0 0 0, a1 1 1 (alarm), a2 1 0 (warning)", co == [0, 0, 1, 1, 1, 0], co)
    di = bits(port, 0, 6, "1")
    c.check("discrete inputs 10001..10006 (FC 2) mirror the coils", di == [0, 0, 1, 1, 1, 0], di)
    d.cmd("update 1 0.2 0 1 0.5 2")
    co = bits(port, 2, 2, "0")
    c.check("alarm cleared: a1 coils back to 0 0", co == [0, 0], co)
    d.cmd("update 1 70.0 2 4 700.5 2 1")


def check_time(c, d, port):
    a = regs(port, 7, 1)
    time.sleep(2.2)
    b = regs(port, 7, 1)
    c.check("age register grows while the asset is not updated (>= 2 s in 2.2 s)",
            a is not None and b is not None and b[0] - a[0] >= 2, f"{a} -> {b}")
    d.cmd("update 0 0.5 0 2 1.23 2")
    e = regs(port, 7, 1)
    c.check("age back to 0 after an update", e == [0], e)

    h0 = regs(port, 0, BLOCK)
    for _ in range(3):
        d.cmd("beat")
    h1 = regs(port, 0, BLOCK)
    hh = regs(port, HEALTH, 16)
    c.check("heartbeat +3 after three beats (asset block register 9)", h0 and h1 and (h1[8] - h0[8]) % 65536 == 3,
            f"{h0 and h0[8]} -> {h1 and h1[8]}")
    c.check("health heartbeat (31003) equals the asset block's, beat age 0",
            hh is not None and h1 is not None and hh[2] == h1[8] and hh[3] == 0, hh)
    time.sleep(1.1)
    h2 = regs(port, 8, 1)
    c.check("heartbeat does not move by itself", h1 and h2 == [h1[8]], h2)

    d.cmd("health 1 0 123456")
    h = regs(port, HEALTH, 16)
    if c.check("health block readable", h is not None):
        c.check("health: uptime >= 3 s (uint32 ABCD)", 3 <= u32(h[0:2]) < 600, u32(h[0:2]))
        c.check("health: storage ok 1, uplink 0, outbox 123456 (uint32 ABCD), health age 0",
                h[4] == 1 and h[5] == 0 and u32(h[6:8]) == 123456 and h[10] == 0, h)
        c.check("health: reserved 31013..31016 are 0", h[12:16] == [0, 0, 0, 0], h[12:16])
    d.cmd("health 0 1 5000000000")
    h = regs(port, HEALTH + 4, 4, table="4")
    c.check("health via holding 41005..: storage 0, uplink 1, outbox saturates at 4294967295",
            h is not None and h[0] == 0 and h[1] == 1 and u32(h[2:4]) == 0xFFFFFFFF, h)


def check_refusals(c, d, port):
    before = regs(port, 0, BLOCK, table="4")
    writes = [
        ("FC 6 write single register 40001", ("4", 1, 1234)),
        ("FC 16 write multiple registers 40001..2", ("4", 1, 1, 2)),
        ("FC 5 write single coil 00001", ("0", 1, 1)),
        ("FC 15 write multiple coils 00001..2", ("0", 1, 1, 0)),
    ]
    for name, (typ, ref, *vals) in writes:
        rc, _, out = mbpoll(port, 1, ref, 1, typ, *vals)
        c.check(f"{name} refused with exception 01 (mbpoll: Illegal function)",
                rc != 0 and "illegal function" in out.lower(), last_line(out))
    after = regs(port, 0, BLOCK, table="4")
    c.check("nothing changed by the refused writes", before is not None and after is not None and
            [x for i, x in enumerate(before) if i != 7] == [x for i, x in enumerate(after) if i != 7])
    # Other functions by raw frames: FC 22, 23, 8, 43 -> 01.
    for fc, pdu in ((22, struct.pack(">BHHH", 22, 0, 0xFFFF, 0)),
                    (23, struct.pack(">BHHHHBH", 23, 0, 1, 0, 1, 2, 5)),
                    (8, struct.pack(">BHH", 8, 0, 0x1234)),
                    (43, bytes([43, 14, 1, 0]))):
        r = ask(port, frame(7, 1, pdu))
        c.check(f"FC {fc} -> exception 01", r is not None and r[2] == bytes([fc | 0x80, 1]), r)

    past = [
        ("input register 30049 (after the last asset block)", 49, 1, "3"),
        ("input registers 30048..30049 (straddling the end)", 48, 2, "3"),
        ("holding register 40900 (gap below the health block)", 900, 1, "4"),
        ("input register 31000 (just below the health block)", 1000, 1, "3"),
        ("input register 31017 (after the health block)", 1017, 1, "3"),
        ("input registers 31010..31020 (straddling the health block end)", 1010, 11, "3"),
        ("coil 00007 (after the last asset's coils)", 7, 1, "0"),
        ("discrete inputs 10005..10008", 5, 4, "1"),
    ]
    for name, ref, count, typ in past:
        rc, v, out = mbpoll(port, 1, ref, count, typ)
        c.check(f"past the map: {name} -> exception 02 (mbpoll: Illegal data address)",
                rc != 0 and not v and "illegal data address" in out.lower(), last_line(out))
    r = ask(port, read_req(9, 1, 4, 0, 126))
    c.check("126 registers in one read -> exception 03", r is not None and r[0] == 9 and r[2] == bytes([0x84, 3]), r)
    r = ask(port, read_req(10, 1, 3, 0, 0))
    c.check("quantity 0 -> exception 03", r is not None and r[2] == bytes([0x83, 3]), r)
    r = ask(port, frame(11, 1, bytes([4, 0, 0, 0])))
    c.check("short FC 4 PDU -> exception 03", r is not None and r[2] == bytes([0x84, 3]), r)
    r = ask(port, read_req(12, 1, 1, 0, 2001))
    c.check("2001 coils -> exception 03", r is not None and r[2] == bytes([0x81, 3]), r)

    rc, v, out = mbpoll(port, 7, 1, 1, "3")
    c.check("unit id 7 -> exception 0B (mbpoll: Target device failed to respond)",
            rc != 0 and not v and "target device failed to respond" in out.lower(), last_line(out))
    r = ask(port, read_req(13, 2, 4, 0, 1))
    c.check("unit id 2 (raw) -> exception 0B with the request's transaction id and unit",
            r is not None and r[0] == 13 and r[1] == 2 and r[2] == bytes([0x84, 0x0B]), r)
    for unit in (0, 255):
        rc, v, out = mbpoll(port, unit, 1, 1, "3")
        c.check(f"unit id {unit} is answered (Modbus/TCP direct addressing)", rc == 0 and v.get(1) == "500",
                last_line(out))


def check_robustness(c, d, port, max_clients):
    # A client that sends half a request and stalls must not delay anyone.
    stalled = connect(port)
    stalled.sendall(read_req(1, 1, 4, 0, 1)[:5])
    t0 = time.monotonic()
    ok = all(regs(port, 0, 1) == [500] for _ in range(3))
    dt = time.monotonic() - t0
    c.check("half-sent request stalls nobody: 3 mbpoll reads OK in < 1.5 s", ok and dt < 1.5, f"{dt:.2f} s")
    stalled.sendall(read_req(1, 1, 4, 0, 1)[5:])
    r = recv_frame(stalled)
    c.check("the stalled request is answered once complete", r is not None and r[2][:2] == bytes([4, 2]), r)
    stalled.close()

    # Garbage: disconnected, while a concurrent mbpoll keeps getting answers.
    g = connect(port)
    g.sendall(b"GET / HTTP/1.1\r\nHost: plc\r\n\r\n")
    rc, v, out = mbpoll(port, 1, 1, 1, "3")
    c.check("concurrent mbpoll answered while a client sends garbage", rc == 0 and v.get(1) == "500", last_line(out))
    c.check("garbage client disconnected", closed_by_peer(g, 2.0))
    g.close()
    c.check("dropped counted once", d.stats().get("dropped") == 1, d.stats())
    for bad, name in ((frame(1, 1, b"")[:6] + b"\x00", "length 1"), (struct.pack(">HHHB", 1, 0, 300, 1) + bytes(10),
                                                                      "length 300"),
                      (frame(1, 1, bytes([0x83, 2])), "a response (exception bit) as request")):
        s = connect(port)
        s.sendall(bad)
        c.check(f"malformed MBAP ({name}) -> disconnected", closed_by_peer(s, 2.0))
        s.close()

    # Pipelining: three requests in one segment, answered in order.
    with connect(port) as s:
        s.sendall(read_req(101, 1, 4, 0, 1) + read_req(102, 1, 6, 0, 1) + read_req(103, 1, 3, HEALTH + 8, 2))
        rs = [recv_frame(s) for _ in range(3)]
    c.check("pipelined requests answered in order (value, exception 01, health)",
            all(rs) and [x[0] for x in rs] == [101, 102, 103] and rs[0][2] == bytes([4, 2, 1, 244]) and
            rs[1][2] == bytes([0x86, 1]) and rs[2][2] == bytes([3, 4, 0, 3, 0, 1]), rs)

    # 200 random frames with a valid MBAP header: each answered or the client dropped, never a hang.
    rnd = random.Random(5)
    answered = dropped = hung = 0
    for i in range(200):
        pdu = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 12)))
        with connect(port) as s:
            s.sendall(frame(i, rnd.choice([1, 1, 1, 0, 255, 9]), pdu))
            r = recv_frame(s, 2.0)
        if r is None:
            hung += 1
        elif r[2] == b"":
            dropped += 1
        else:
            answered += 1
    c.check("200 random PDUs: every one answered or dropped, none hangs", hung == 0,
            f"answered {answered}, dropped {dropped}, hung {hung}")
    rc, v, out = mbpoll(port, 1, 1, 1, "3")
    c.check("still serving after the random frames", rc == 0 and v.get(1) == "500", last_line(out))

    # max_clients: the first ones keep working, further connections are closed at once.
    time.sleep(0.3)  # let the facade see the EOFs of the connections above
    held = [connect(port) for _ in range(max_clients)]
    replies = []
    for i, s in enumerate(held):
        s.sendall(read_req(200 + i, 1, 4, 0, 1))
        replies.append(recv_frame(s))
    c.check(f"{max_clients} clients (max_clients) all answered",
            all(r is not None and r[2] == bytes([4, 2, 1, 244]) for r in replies), replies)
    extra = connect(port)
    c.check("one more client is closed at once", closed_by_peer(extra, 2.0))
    extra.close()
    rc, v, out = mbpoll(port, 1, 1, 1, "3")
    c.check("mbpoll refused while max_clients are connected", rc != 0 and not v, last_line(out))
    ok = True
    for i, s in enumerate(held):
        s.sendall(read_req(300 + i, 1, 4, 0, 1))
        r = recv_frame(s)
        ok = ok and r is not None and r[0] == 300 + i
    c.check("the first clients still work after the refusals", ok)
    st = d.stats()
    c.check("refusals counted", st.get("refused", 0) >= 2, st)
    held[0].close()
    deadline = time.monotonic() + 3
    rc = 1
    while time.monotonic() < deadline:
        rc, v, _ = mbpoll(port, 1, 1, 1, "3")
        if rc == 0:
            break
        time.sleep(0.1)
    c.check("a slot freed: mbpoll answered again", rc == 0)
    for s in held[1:]:
        s.close()


def check_idle(c, exe):
    port = free_port()
    d = Driver(exe, port, 1, 4, 800)
    try:
        if not c.check("idle driver ready (idle timeout 0.8 s)", d.ready, d.first):
            return
        quiet = connect(port)
        busy = connect(port)
        t0 = time.monotonic()
        busy_ok = True
        while time.monotonic() - t0 < 2.0:
            busy.sendall(read_req(1, 1, 4, 0, 1))
            busy_ok = busy_ok and recv_frame(busy) is not None
            time.sleep(0.3)
        c.check("a silent client is closed by the idle timeout", closed_by_peer(quiet, 1.0))
        busy.sendall(read_req(2, 1, 4, 0, 1))
        r = recv_frame(busy)
        c.check("a client polling every 0.3 s stays connected past the timeout", busy_ok and r is not None and r[0] == 2)
        quiet.close()
        busy.close()
        c.check("idle close counted", d.stats().get("idle_closed", 0) >= 1)
    finally:
        d.quit()


def check_lifecycle(c, exe, port):
    d = Driver(exe, port, 1)
    rc, _, _ = d.quit()
    c.check("a second facade on a busy port: 'error ... cannot listen on 127.0.0.1:<port>', exit 1",
            d.first is not None and d.first.startswith("error ") and f"cannot listen on 127.0.0.1:{port}" in d.first
            and rc == 1, d.first)
    d = Driver(exe, free_port(), 63)
    rc, _, _ = d.quit()
    c.check("63 assets rejected naming modbus_facade.assets", rc == 1 and d.first is not None and
            "modbus_facade.assets" in d.first, d.first)
    p62 = free_port()
    d = Driver(exe, p62, 62)
    try:
        if c.check("62 assets (the maximum) start", d.ready, d.first):
            d.cmd("update 61 0.25 0 1 0.5 2")
            last = regs(p62, 61 * BLOCK, BLOCK)
            c.check("asset 61 at 30977..30992", last is not None and last[0] == 250, last)
            rc, v, out = mbpoll(p62, 1, 993, 1, "3")
            c.check("30993 (after asset 61) -> illegal data address", rc != 0 and "illegal data address" in out.lower(),
                    last_line(out))
            h = regs(p62, HEALTH + 8, 1)
            c.check("health: 62 assets", h == [62], h)
    finally:
        d.quit()
    # A gateway that only polls tags (no [[asset]]) still serves the health block.
    p0 = free_port()
    d = Driver(exe, p0, 0)
    try:
        if c.check("0 assets start (a tag-only gateway)", d.ready, d.first):
            c.check("0 assets: beat", d.cmd("beat") == "ok")
            h = regs(p0, HEALTH, 16)
            c.check("0 assets: health block readable, asset count 0, heartbeat counted",
                    h is not None and h[8] == 0, h)
            rc, _, out = mbpoll(p0, 1, 1, 1, "3")
            c.check("0 assets: 30001 -> illegal data address", rc != 0 and "illegal data address" in out.lower(),
                    last_line(out))
            c.check("0 assets: coil 1 -> refused", bits(p0, 0, 1) is None)
    finally:
        d.quit()


def check_allow_list(c, exe):
    """modbus_facade.allow: only listed addresses/networks are served. Loopback is 127.0.0.0/8,
    so a client bound to 127.0.0.2 is "another host" without leaving the machine."""
    port = free_port()
    d = Driver(exe, port, 1, 4, 60000, 1, "127.0.0.1,10.0.0.0/8")
    try:
        if not c.check("allow-list: driver ready with allow = 127.0.0.1, 10.0.0.0/8", d.ready, d.first):
            return
        rc, v, out = mbpoll(port, 1, 1, 1, "3")
        c.check("allow-list: a listed client (127.0.0.1, mbpoll) is served", rc == 0 and 1 in v,
                last_line(out))
        other = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        other.settimeout(2.0)
        other.bind(("127.0.0.2", 0))
        other.connect(("127.0.0.1", port))
        other.sendall(read_req(7, 1, 4, 0, 1))
        c.check("allow-list: a client from 127.0.0.2 is closed at once, unanswered",
                closed_by_peer(other, 2.0))
        other.close()
        st = d.stats()
        c.check("allow-list: the refusal is counted (not_allowed)", st.get("not_allowed") == 1, st)
    finally:
        d.quit()
        err = d.err.decode(errors="replace")
        c.check("allow-list: the refusal is logged naming the peer and the key",
                "refused 127.0.0.2:" in err and "modbus_facade.allow" in err, err[-300:])
    bad = Driver(exe, free_port(), 1, 4, 60000, 1, "10.0.0.0/33")
    c.check("allow-list: a malformed entry is refused at start, naming the key",
            not bad.ready and bad.first and "modbus_facade.allow" in bad.first, bad.first)
    bad.quit()


def main():
    c = Checks()
    exe = os.environ.get("VIBGATE_FACADE_DRIVER")
    if not c.check("VIBGATE_FACADE_DRIVER names the facade_driver binary", exe and os.access(exe, os.X_OK), exe):
        print(f"{c.passed} passed, {c.failed} failed")
        return 1
    if not c.check("mbpoll is installed", os.access(MBPOLL, os.X_OK)):
        print(f"{c.passed} passed, {c.failed} failed")
        return 1

    port = free_port()
    max_clients = 3
    d = Driver(exe, port, 3, max_clients)
    try:
        if c.check("driver ready on the requested port", d.ready and d.first == f"ready {port}", d.first):
            check_initial(c, port)
            check_values(c, d, port)
            check_time(c, d, port)
            check_refusals(c, d, port)
            check_robustness(c, d, port, max_clients)
            check_lifecycle(c, exe, port)
            # Quit with a client connected and a half-sent request pending.
            hanging = connect(port)
            hanging.sendall(b"\x00\x01\x00")
    finally:
        rc, elapsed, stopped = d.quit()
        c.check("quit: driver exits 0 within 1 s", rc == 0 and elapsed < 1.0, f"rc {rc} in {elapsed:.2f} s, {stopped}")
        err = d.err.decode(errors="replace")
        lines = [l for l in err.splitlines() if "not a Modbus/TCP request" in l]
        c.check("log: a line per garbage client, naming the peer", len(lines) >= 4 and "127.0.0.1:" in lines[0],
                lines[0] if lines else err[-400:])
        c.check("log: no error lines", "[error]" not in err, [l for l in err.splitlines() if "[error]" in l][:3])
    check_idle(c, exe)
    check_allow_list(c, exe)

    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
