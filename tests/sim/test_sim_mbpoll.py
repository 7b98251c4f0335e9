#!/usr/bin/python3
"""`vibgate-sim` checked by independent masters: Debian's `mbpoll` for Modbus TCP, plain Python
for the serial pseudo-terminals (docs/simulator.md, docs/modbus-waveform.md).

Run as `/usr/bin/python3 test_sim_mbpoll.py` with VIBGATE_SIM set to the simulator binary (ctest
does this; without it the binary is looked for next to VIBGATE_CLI). Everything runs on loopback
with ports picked by binding to port 0; every wait is bounded. Prints one line per check and a
final `N passed, M failed`; exits 1 if any check failed (a missing simulator is a failure).

  a) scalar tags of every type and word order (mbpoll's own int/float decoding where it has one,
     raw registers decoded here otherwise), scale/offset, machine-derived tags, coils/discretes,
     a master's write to a constant register, unknown unit id and address answered with errors;
  b) waveform blocks: header fields, the sequence advancing at rate / n, torn-read-free sample
     reads, exact replay of a CSV recording, identical blocks from two simulators (same seed);
  c) serial ptys: binary frames with valid sync word and CRC-32 (zlib) in sequence, text lines;
  d) quick mode (--devices/--base-port), --print-register-map, configuration errors (exit 2 and
     one line naming file:line:key), a busy port (exit 1), SIGTERM exit within 1 s.
"""

import math
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time
import tty
import zlib

MBPOLL = "/usr/bin/mbpoll"


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import Checks  # noqa: E402  (tests/checks.py)


def find_sim():
    sim = os.environ.get("VIBGATE_SIM")
    if not sim and os.environ.get("VIBGATE_CLI"):
        sim = os.path.join(os.path.dirname(os.environ["VIBGATE_CLI"]), "vibgate-sim")
    return sim


def free_port():
    """A loopback port that was free a moment ago (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_run(n, tries=50):
    """n consecutive free loopback ports."""
    for _ in range(tries):
        base = free_port()
        if base + n > 65535:
            continue
        socks = []
        try:
            for i in range(n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no run of free ports found")


class Sim:
    """A running simulator; waits (bounded) for its 'ready' line."""

    def __init__(self, sim, args, workdir, ready_timeout=10.0):
        self.err_path = os.path.join(workdir, f"sim-{time.monotonic_ns()}.err")
        self.err = open(self.err_path, "w")
        self.p = subprocess.Popen([sim, *map(str, args)], stdout=subprocess.PIPE, stderr=self.err)
        self.lines = []
        self.ready = False
        buf = b""
        deadline = time.monotonic() + ready_timeout
        fd = self.p.stdout.fileno()
        while time.monotonic() < deadline and not self.ready:
            r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not r:
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self.lines.append(line.decode(errors="replace"))
                if self.lines[-1] == "vibgate-sim: ready":
                    self.ready = True

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Signals the process by PID; returns (exit code or None, seconds until exit)."""
        t0 = time.monotonic()
        rc = None
        if self.p.poll() is None:
            os.kill(self.p.pid, sig)
            try:
                rc = self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.p.pid, signal.SIGKILL)
                self.p.wait(timeout=5)
        else:
            rc = self.p.returncode
        elapsed = time.monotonic() - t0
        self.p.stdout.close()
        self.err.close()
        return rc, elapsed

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()


def mbpoll(port, unit, ref, count, typ, *extra, timeout=10):
    """One mbpoll read (or write when extra holds values). Returns (rc, {ref: first token}, output)."""
    values = [e for e in extra if not str(e).startswith("-")]
    flags = [str(e) for e in extra if str(e).startswith("-")]
    cmd = [MBPOLL, "-m", "tcp", "-a", str(unit), "-r", str(ref)] + ([] if values else ["-c", str(count)])
    cmd += ["-t", typ, "-1", "-o", "1", "-p", str(port)]
    cmd += flags + ["127.0.0.1"] + [str(v) for v in values]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    out = {}
    for line in p.stdout.splitlines():
        m = re.match(r"^\[(\d+)\]:\s+(\S+)", line)
        if m:
            out[int(m.group(1))] = m.group(2)
    return p.returncode, out, p.stdout + p.stderr


def regs(port, unit, ref, count, table="4"):
    """Raw 16-bit registers ref..ref+count-1 (1-based), via mbpoll's hex display; None on error."""
    rc, vals, _ = mbpoll(port, unit, ref, count, f"{table}:hex")
    if rc != 0 or len(vals) != count:
        return None
    return [int(vals[ref + i], 16) for i in range(count)]


def words_to_bytes(ws):
    return b"".join(struct.pack(">H", w) for w in ws)


def decode(ws, fmt, order):
    """Decodes registers in word order ABCD/CDAB/BADC/DCBA as struct format fmt (big-endian)."""
    ws = list(ws)
    if order in ("CDAB", "DCBA"):
        ws.reverse()
    if order in ("BADC", "DCBA"):
        ws = [((w >> 8) | (w << 8)) & 0xFFFF for w in ws]
    return struct.unpack(">" + fmt, words_to_bytes(ws))[0]


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


# ---- configuration under test ---------------------------------------------------------------------

CSV_N = 500
CSV_RATE = 1000


def csv_values():
    # Dyadic rationals: exact in float32, so replayed float32 samples can be compared exactly.
    return [((i * 37) % CSV_N - 250) / 128.0 for i in range(CSV_N)]


def write_config(path, port, link_bin, link_txt):
    with open(os.path.join(os.path.dirname(path), "ramp.csv"), "w") as f:
        f.write("accel\n")
        for v in csv_values():
            f.write(f"{v!r}\n")
    text = f"""
[sim]
seed = 5

[[machine]]
name = "m1"
shaft_hz = 25.0
defect = "outer"
fault_start_s = 0
ambient_c = 20
temperature_rise_c = 30
fault_heat_c_per_g = 0
thermal_time_constant_s = 0
load_percent = 60
load_swing_percent = 0

[[machine]]
name = "rec"
source = "replay"
file = "ramp.csv"
file_sample_rate_hz = {CSV_RATE}

[[listener]]
port = {port}

[[listener.unit]]
id = 1
tag = [
  {{ name = "i16", address = 0, type = "int16", value = -1234 }},
  {{ name = "u16", address = 1, type = "uint16", value = 54321 }},
  {{ name = "i32_abcd", address = 2, type = "int32", order = "ABCD", value = -123456789 }},
  {{ name = "i32_cdab", address = 4, type = "int32", order = "CDAB", value = -123456789 }},
  {{ name = "u32", address = 6, type = "uint32", value = 3000000000 }},
  {{ name = "f32_abcd", address = 8, type = "float32", order = "ABCD", value = 3.25 }},
  {{ name = "f32_cdab", address = 10, type = "float32", order = "CDAB", value = -1.5 }},
  {{ name = "f32_badc", address = 12, type = "float32", order = "BADC", value = 12.5 }},
  {{ name = "f32_dcba", address = 14, type = "float32", order = "DCBA", value = 0.15625 }},
  {{ name = "i64_abcd", address = 16, type = "int64", order = "ABCD", value = -1234567890123 }},
  {{ name = "u64_dcba", address = 20, type = "uint64", order = "DCBA", value = 1234567890123456 }},
  {{ name = "f64_abcd", address = 24, type = "float64", order = "ABCD", value = 3.141592653589793 }},
  {{ name = "f64_badc", address = 28, type = "float64", order = "BADC", value = -0.0025 }},
  {{ name = "scaled", address = 32, type = "int16", scale = 0.1, value = 25.3 }},
  {{ name = "offset", address = 33, type = "uint16", scale = 0.01, offset = 100.0, value = 104.56 }},
  {{ name = "speed", register = "input", address = 0, model = "speed", machine = "m1" }},
  {{ name = "temp", register = "input", address = 1, type = "float32", model = "temperature", machine = "m1" }},
  {{ name = "load", register = "input", address = 3, type = "float32", order = "CDAB", model = "load", machine = "m1" }},
  {{ name = "run", register = "input", address = 5, model = "run", machine = "m1" }},
  {{ name = "wave", register = "input", address = 6, type = "int16", model = "sine", mean = 0.0, amplitude = 1000.0, period_s = 2.0 }},
  {{ name = "uptime", register = "input", address = 7, type = "uint32", model = "uptime" }},
  {{ name = "coil_on", register = "coil", address = 0, value = true }},
  {{ name = "coil_off", register = "coil", address = 1, value = false }},
  {{ name = "running", register = "discrete", address = 0, model = "run", machine = "m1" }},
]

[[listener.unit.waveform]]
name = "w16"
register = "input"
address = 100
samples = 200
sample_rate_hz = 1000
format = "int16"
scale = 0.001
machine = "m1"

[[listener.unit.waveform]]
name = "wf32"
register = "holding"
address = 1000
samples = 50
format = "float32"
machine = "rec"

[[listener.unit.waveform]]
name = "slow"
register = "input"
address = 2000
samples = 100
sample_rate_hz = 100
scale = 0.0001
machine = "m1"

[[listener.unit]]
id = 2
tag = [ {{ name = "two", address = 0, value = 2 }} ]
"""
    if link_bin:
        text += f"""
[[serial]]
name = "bin"
mode = "binary"
link = "{link_bin}"
sample_rate_hz = 2560
samples_per_frame = 64
format = "int16"
scale = 0.001
machines = ["m1", "m1"]

[[serial]]
name = "txt"
mode = "text"
link = "{link_txt}"
sample_rate_hz = 500
samples_per_frame = 25
machines = ["m1"]
"""
    with open(path, "w") as f:
        f.write(text)


# ---- checks ---------------------------------------------------------------------------------------

def check_scalars(c, port):
    r = regs(port, 1, 1, 34)
    if not c.check("scalar: holding 0..33 readable", r is not None):
        return
    c.check("int16 -1234", decode(r[0:1], "h", "ABCD") == -1234, r[0])
    c.check("uint16 54321", r[1] == 54321, r[1])
    rc, v, _ = mbpoll(port, 1, 3, 1, "4:int", "-B")
    c.check("int32 ABCD via mbpoll -t4:int -B", rc == 0 and v.get(3) == "-123456789", v)
    rc, v, _ = mbpoll(port, 1, 5, 1, "4:int")
    c.check("int32 CDAB via mbpoll -t4:int", rc == 0 and v.get(5) == "-123456789", v)
    c.check("uint32 ABCD 3000000000", decode(r[6:8], "I", "ABCD") == 3000000000)
    rc, v, _ = mbpoll(port, 1, 9, 1, "4:float", "-B")
    c.check("float32 ABCD via mbpoll -t4:float -B", rc == 0 and float(v.get(9, "nan")) == 3.25, v)
    rc, v, _ = mbpoll(port, 1, 11, 1, "4:float")
    c.check("float32 CDAB via mbpoll -t4:float", rc == 0 and float(v.get(11, "nan")) == -1.5, v)
    c.check("float32 BADC", decode(r[12:14], "f", "BADC") == 12.5, [hex(x) for x in r[12:14]])
    c.check("float32 DCBA", decode(r[14:16], "f", "DCBA") == 0.15625, [hex(x) for x in r[14:16]])
    c.check("int64 ABCD", decode(r[16:20], "q", "ABCD") == -1234567890123)
    c.check("uint64 DCBA", decode(r[20:24], "Q", "DCBA") == 1234567890123456)
    c.check("float64 ABCD", decode(r[24:28], "d", "ABCD") == 3.141592653589793)
    c.check("float64 BADC", decode(r[28:32], "d", "BADC") == -0.0025)
    c.check("scale 0.1: 25.3 -> raw 253", r[32] == 253, r[32])
    c.check("scale 0.01 offset 100: 104.56 -> raw 456", r[33] == 456, r[33])

    ir = regs(port, 1, 1, 9, table="3")
    if c.check("scalar: input 0..8 readable", ir is not None):
        c.check("speed 25 Hz -> 1500 rpm", ir[0] == 1500, ir[0])
        rc, v, _ = mbpoll(port, 1, 2, 1, "3:float", "-B")
        c.check("temperature 20 + 30*0.6 = 38 C (float32 ABCD)", rc == 0 and abs(float(v.get(2, "nan")) - 38.0) < 1e-3, v)
        rc, v, _ = mbpoll(port, 1, 4, 1, "3:float")
        c.check("load 60 % (float32 CDAB)", rc == 0 and abs(float(v.get(4, "nan")) - 60.0) < 1e-3, v)
        c.check("run state 1", ir[5] == 1, ir[5])
        w1 = decode(ir[6:7], "h", "ABCD")
        up1 = decode(ir[7:9], "I", "ABCD")
        time.sleep(0.6)
        ir2 = regs(port, 1, 7, 3, table="3")
        w2 = decode(ir2[0:1], "h", "ABCD") if ir2 else None
        c.check("sine tag within amplitude and changing", ir2 and abs(w1) <= 1000 and abs(w2) <= 1000 and w1 != w2,
                f"{w1} -> {w2}")
        time.sleep(0.5)
        ir3 = regs(port, 1, 8, 2, table="3")
        up2 = decode(ir3, "I", "ABCD") if ir3 else -1
        c.check("uptime counts seconds", up2 >= up1 + 1 and up2 < 120, f"{up1} -> {up2}")
    rc, v, _ = mbpoll(port, 1, 1, 2, "0")
    c.check("coils 1, 0", rc == 0 and v.get(1) == "1" and v.get(2) == "0", v)
    rc, v, _ = mbpoll(port, 1, 1, 1, "1")
    c.check("discrete input run = 1", rc == 0 and v.get(1) == "1", v)

    rc, _, out = mbpoll(port, 1, 2, 1, "4", 777)
    r2 = regs(port, 1, 2, 1)
    c.check("a master's write to a constant holding register persists", rc == 0 and r2 == [777], f"{r2} {out[-200:]}")
    rc, v, _ = mbpoll(port, 2, 1, 1, "4")
    c.check("unit 2 answers", rc == 0 and v.get(1) == "2", v)
    rc, v, out = mbpoll(port, 3, 1, 1, "4")
    c.check("unconfigured unit 3 gets no valid answer", rc != 0 and not v, out.strip().splitlines()[-1:])
    rc, v, out = mbpoll(port, 1, 5000, 1, "4")  # holding is mapped 0…1107 only
    c.check("unmapped address answered with an error", rc != 0 and not v, out.strip().splitlines()[-1:])


def read_block(port, table, base, n, fmt_words, tries=40):
    """Reads a whole waveform block torn-free: header, samples in <=125-register requests, then the
    sequence again. Returns (header registers, sample registers) or None."""
    total = n * fmt_words
    for _ in range(tries):
        hdr = regs(port, 1, base + 1, 8, table)
        if hdr is None:
            return None
        data = []
        off = 0
        while off < total:
            k = min(125, total - off)
            part = regs(port, 1, base + 9 + off, k, table)
            if part is None:
                return None
            data += part
            off += k
        seq = regs(port, 1, base + 1, 1, table)
        if seq is not None and seq[0] == hdr[0]:
            return hdr, data
    return None


def read_small_block(port, table, base, total_regs, tries=200):
    """Header and samples in one request (<= 125 registers) plus a sequence re-read. Two mbpoll
    runs must fall into one block period (50 ms for wf32), so this can take many tries."""
    for _ in range(tries):
        r = regs(port, 1, base + 1, total_regs, table)
        if r is None:
            return None
        seq = regs(port, 1, base + 1, 1, table)
        if seq is not None and seq[0] == r[0]:
            return r[:8], r[8:]
    return None


def check_waveforms(c, port):
    b = read_block(port, "3", 100, 200, 1)
    if c.check("w16: block read torn-free", b is not None):
        hdr, data = b
        c.check("w16 header n = 200", hdr[1] == 200, hdr[1])
        c.check("w16 header rate = 1000 Hz (uint32)", (hdr[2] << 16 | hdr[3]) == 1000, hdr[2:4])
        c.check("w16 header format 0, reserved 0", hdr[4] == 0 and hdr[5] == 0, hdr[4:6])
        c.check("w16 header scale float32 0.001", decode(hdr[6:8], "f", "ABCD") == f32(0.001), hdr[6:8])
        g = [decode([w], "h", "ABCD") * 0.001 for w in data]
        rms = math.sqrt(sum(x * x for x in g) / len(g))
        c.check("w16 samples plausible (0.005 g < RMS < 5 g, not constant)", 0.005 < rms < 5 and len(set(g)) > 20,
                f"rms {rms:.4f}")
    rc, v, _ = mbpoll(port, 1, 107, 1, "3:float", "-B")
    c.check("w16 scale via mbpoll -t3:float -B", rc == 0 and abs(float(v.get(107, "nan")) - 0.001) < 1e-9, v)

    # Sequence advances at rate / n = 5 blocks per second.
    s1 = regs(port, 1, 101, 1, "3")
    t1 = time.monotonic()
    time.sleep(2.0)
    s2 = regs(port, 1, 101, 1, "3")
    t2 = time.monotonic()
    if c.check("w16: sequence readable", s1 and s2):
        d = (s2[0] - s1[0]) % 65536
        expected = (t2 - t1) * 1000 / 200
        c.check("w16: sequence advances at 5 blocks/s", abs(d - expected) <= 2, f"{d} in {t2 - t1:.2f} s")

    # Replay: float32 blocks are exactly the CSV samples, block with sequence s starting at (s-1)*n.
    b = read_small_block(port, "4", 1000, 108)
    if c.check("wf32: block read torn-free", b is not None):
        hdr, data = b
        c.check("wf32 header n 50, rate 1000, format 1, scale 1.0",
                hdr[1] == 50 and (hdr[2] << 16 | hdr[3]) == 1000 and hdr[4] == 1 and decode(hdr[6:8], "f", "ABCD") == 1.0,
                hdr)
        got = [decode(data[2 * i:2 * i + 2], "f", "ABCD") for i in range(50)]
        vals = csv_values()
        start = ((hdr[0] - 1) * 50) % CSV_N
        want = [vals[(start + i) % CSV_N] for i in range(50)]
        c.check("wf32 replays the CSV recording exactly (block by sequence)", got == want,
                f"seq {hdr[0]} got {got[:3]} want {want[:3]}")


def read_wav_f32(path):
    """Mono 32-bit float WAV samples (the chunks vibgate synth writes, parsed by hand)."""
    with open(path, "rb") as f:
        data = f.read()
    pos, fmt, samples = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt = struct.unpack_from("<HHIIHH", body)
        elif cid == b"data":
            samples = struct.unpack(f"<{len(body) // 4}f", body[:len(body) // 4 * 4])
        pos += 8 + size + (size & 1)
    if fmt is None or fmt[0] not in (3, 0xFFFE) or fmt[1] != 1 or fmt[5] != 32:
        return None
    return samples


def check_matches_synth(c, port, workdir):
    """Consumer 0 of machine m1 is MachineSynth with the machine's seed: the w16 block with
    sequence s holds samples (s-1)*n … s*n-1 of `vibgate synth` with the same parameters."""
    cli = os.environ.get("VIBGATE_CLI")
    if not cli or not os.access(cli, os.X_OK):
        print("SKIP w16 equals vibgate synth (VIBGATE_CLI not set)")
        return
    b = read_block(port, "3", 100, 200, 1)
    if not c.check("w16: second block read torn-free", b is not None):
        return
    hdr, data = b
    seq = hdr[0]
    wav = os.path.join(workdir, "synth.wav")
    duration = (seq + 5) * 200 / 1000
    p = subprocess.run([cli, "synth", "--out", wav, "--duration", str(duration), "--rate", "1000", "--shaft-hz", "25",
                        "--defect", "outer", "--fault-start", "0", "--seed", "5"], capture_output=True, text=True,
                       timeout=120)
    ref = read_wav_f32(wav) if p.returncode == 0 else None
    if not c.check("vibgate synth wrote a float32 WAV", ref is not None, p.stderr.strip()):
        return
    start = (seq - 1) * 200
    want = [max(-32768, min(32767, round(x / f32(0.001)))) for x in ref[start:start + 200]]
    got = [decode([w], "h", "ABCD") for w in data]
    worst = max(abs(a - b) for a, b in zip(got, want))
    c.check("w16 block (seed 5) equals MachineSynth via `vibgate synth --seed 5` (±1 count)", worst <= 1,
            f"sequence {seq}, worst difference {worst} counts")


def check_determinism(c, port_a, port_b):
    """The 1 s 'slow' block with the same sequence is identical on two simulators (same seed)."""
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        a = read_small_block(port_a, "3", 2000, 108)
        b = read_small_block(port_b, "3", 2000, 108)
        if a is None or b is None:
            break
        if a[0][0] == b[0][0]:
            c.check("same seed: identical block on two simulators", a[1] == b[1], f"sequence {a[0][0]}")
            return
        time.sleep(0.1)
    c.check("same seed: identical block on two simulators", False, "never saw the same sequence on both")


def open_pty(path):
    fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    termios.tcflush(fd, termios.TCIFLUSH)  # drop what accumulated while nobody was reading
    return fd


def read_for(fd, seconds):
    data = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if r:
            try:
                data += os.read(fd, 65536)
            except BlockingIOError:
                pass
    return data


def parse_frames(data):
    """Frames found after the first sync word: list of dicts; counts bytes not in valid frames."""
    frames, bad = [], 0
    i = data.find(b"\xa5\x5a")
    while 0 <= i and i + 20 <= len(data):
        ver, fmt, ch, _res, seq, rate, spc, scale = struct.unpack_from("<BBBBIIHf", data, i + 2)
        size = 20 + ch * spc * (2 if fmt == 0 else 4) + 4
        if ver != 1 or ch == 0 or ch > 16 or spc == 0:
            bad += 1
            i = data.find(b"\xa5\x5a", i + 1)
            continue
        if i + size > len(data):
            break  # incomplete at the end of the read
        crc = struct.unpack_from("<I", data, i + size - 4)[0]
        if zlib.crc32(data[i:i + size - 4]) & 0xFFFFFFFF != crc:
            bad += 1
            i = data.find(b"\xa5\x5a", i + 1)
            continue
        frames.append(dict(fmt=fmt, ch=ch, seq=seq, rate=rate, spc=spc, scale=scale,
                           payload=data[i + 20:i + size - 4]))
        i += size
    return frames, bad


def check_serial(c, sim, link_bin, link_txt):
    c.check("serial: startup lines name both ptys", sum(1 for l in sim.lines if l.startswith("vibgate-sim: serial ")) == 2,
            sim.lines)
    c.check("serial: links point to ptys", os.path.realpath(link_bin).startswith("/dev/pts/") and
            os.path.realpath(link_txt).startswith("/dev/pts/"))
    fd = open_pty(link_bin)
    try:
        read_for(fd, 0.3)  # the simulator's FIFO backlog (older frames, then a gap) drains first
        data = read_for(fd, 0.6)
    finally:
        os.close(fd)
    frames, bad = parse_frames(data)
    c.check("serial binary: >= 10 CRC-valid frames in 0.6 s (40 frames/s)", len(frames) >= 10,
            f"{len(frames)} frames, {bad} bad, {len(data)} bytes")
    c.check("serial binary: no CRC/header failures after the first sync word", bad == 0, bad)
    if frames:
        f = frames[0]
        c.check("serial binary: header fields (int16, 2 ch, 2560 Hz, 64 samples, scale 0.001)",
                f["fmt"] == 0 and f["ch"] == 2 and f["rate"] == 2560 and f["spc"] == 64 and f["scale"] == f32(0.001), f)
        seqs = [fr["seq"] for fr in frames]
        c.check("serial binary: consecutive sequence numbers", all(b - a == 1 for a, b in zip(seqs, seqs[1:])), seqs[:12])
        raw = struct.unpack(f"<{2 * 64}h", f["payload"])
        rms = math.sqrt(sum((x * 0.001) ** 2 for x in raw) / len(raw))
        c.check("serial binary: samples plausible", 0.005 < rms < 5, f"rms {rms:.4f}")

    fd = open_pty(link_txt)
    try:
        read_for(fd, 0.3)
        text = read_for(fd, 0.6).decode(errors="replace")
    finally:
        os.close(fd)
    lines = text.split("\n")[1:-1]  # drop a partial first and last line
    good = 0
    for line in lines:
        try:
            vals = [float(x) for x in line.split(",")]
            good += len(vals) == 1 and math.isfinite(vals[0])
        except ValueError:
            pass
    c.check("serial text: >= 200 one-value lines in 0.6 s (500 Hz), all parse", len(lines) >= 200 and good == len(lines),
            f"{good}/{len(lines)}")


def check_quick_mode(c, simbin, workdir):
    base = free_port_run(3)
    sim = Sim(simbin, ["--devices", 3, "--base-port", base, "--samples", 512, "--rate", 5120], workdir)
    try:
        c.check("quick mode: ready with one line per device",
                sim.ready and sum(1 for l in sim.lines if l.startswith("vibgate-sim: modbus tcp 127.0.0.1:")) == 3,
                sim.lines)
        ok = True
        for i in range(3):
            r = regs(base + i, 1, 1, 10)
            h = regs(base + i, 1, 1, 8, "3")
            ok = ok and r is not None and r[9] == i and r[0] == 1 and h is not None and h[1] == 512 and \
                (h[2] << 16 | h[3]) == 5120
        c.check("quick mode: device i on base+i: 10 holding registers (index i) + waveform header", ok)
    finally:
        rc, elapsed = sim.stop()
        c.check("quick mode: SIGTERM exits 0 within 1 s", rc == 0 and elapsed < 1.0, f"rc {rc} in {elapsed:.2f} s")


def check_config_errors(c, simbin, workdir):
    def run_cfg(name, text):
        path = os.path.join(workdir, name)
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.run([simbin, "-c", path, "--print-register-map"], capture_output=True, text=True,
                           timeout=30)
        return path, p

    head = '[[machine]]\nname = "m"\n\n[[listener]]\nport = 1502\n[[listener.unit]]\nid = 1\n'
    cases = [
        ("bad_type.toml", head + '[[listener.unit.tag]]\nname = "x"\naddress = 0\ntype = "flaot32"\nvalue = 1\n',
         11, "listener[0].unit[0].tag[0].type"),
        ("unknown_key.toml", head + '[[listener.unit.tag]]\nname = "x"\naddress = 0\nvalu = 1\nvalue = 2\n',
         11, "listener[0].unit[0].tag[0].valu"),
        ("overlap.toml", head + '[[listener.unit.tag]]\nname = "a"\naddress = 0\ntype = "uint32"\nvalue = 1\n'
         '[[listener.unit.tag]]\nname = "b"\naddress = 1\nvalue = 1\n', 15, "listener[0].unit[0].tag[1].address"),
        ("unknown_machine.toml", head + '[[listener.unit.waveform]]\nname = "w"\naddress = 0\nmachine = "nope"\n',
         11, "listener[0].unit[0].waveform[0].machine"),
        ("too_many_samples.toml", head + '[[listener.unit.waveform]]\nname = "w"\naddress = 0\nsamples = 9000\n',
         11, "listener[0].unit[0].waveform[0].samples"),
        ("bad_defect.toml", '[[machine]]\nname = "m"\ndefect = "cracked"\n', 3, "machine[0].defect"),
        ("missing_file.toml", '[[machine]]\nname = "m"\nsource = "replay"\nfile = "nope.wav"\n', 4, "machine[0].file"),
        ("syntax.toml", '[[machine]]\nname = "m\n', 2, ""),
    ]
    for name, text, line, key in cases:
        path, p = run_cfg(name, text)
        lines = p.stderr.strip().splitlines()
        want = f"{path}:{line}: {key}"
        c.check(f"config error {name}: exit 2, one line naming {want!r}",
                p.returncode == 2 and len(lines) == 1 and want in lines[0], f"rc {p.returncode} {lines}")


def main():
    c = Checks()
    simbin = find_sim()
    if not simbin or not os.access(simbin, os.X_OK):
        c.check("VIBGATE_SIM names the vibgate-sim binary", False, str(simbin))
        print(f"{c.passed} passed, {c.failed} failed")
        return 1
    if not c.check("mbpoll is installed", os.access(MBPOLL, os.X_OK)):
        print(f"{c.passed} passed, {c.failed} failed")
        return 1

    with tempfile.TemporaryDirectory(prefix="vibgate-sim-test-") as workdir:
        port = free_port()
        link_bin = os.path.join(workdir, "pty-bin")
        link_txt = os.path.join(workdir, "pty-txt")
        cfg = os.path.join(workdir, "sim.toml")
        write_config(cfg, port, link_bin, link_txt)

        p = subprocess.run([simbin, "-c", cfg, "--print-register-map"], capture_output=True, text=True, timeout=30)
        c.check("--print-register-map lists tags and waveforms",
                p.returncode == 0 and re.search(r"holding\s+8\s+9\s+2\s+float32\s+ABCD\s+f32_abcd", p.stdout)
                and "w16.header" in p.stdout and "serial bin" in p.stdout, p.stdout[:300] + p.stderr)
        src = os.environ.get("VIBGATE_SOURCE_DIR")
        if src:
            example = os.path.join(src, "deploy", "sim-example.toml")
            p = subprocess.run([simbin, "-c", example, "--print-register-map"], capture_output=True, text=True,
                               timeout=30)
            c.check("deploy/sim-example.toml is valid", p.returncode == 0, p.stderr.strip())

        # A second simulator with the same configuration (another port, no serial) started right
        # after the first: same seed and nearly the same start time, so their 1 s blocks line up.
        port_b = free_port()
        cfg_b = os.path.join(workdir, "sim_b.toml")
        write_config(cfg_b, port_b, None, None)
        sim = Sim(simbin, ["-c", cfg], workdir)
        sim_b = Sim(simbin, ["-c", cfg_b], workdir)
        try:
            c.check("simulator prints ready", sim.ready, sim.lines)
            c.check("startup line names listener and units",
                    f"vibgate-sim: modbus tcp 127.0.0.1:{port} units 1,2" in sim.lines, sim.lines)
            if sim.ready:
                check_scalars(c, port)
                check_waveforms(c, port)
                check_matches_synth(c, port, workdir)
                check_serial(c, sim, link_bin, link_txt)

                # Busy port: a second simulator on the same port exits 1 with a message.
                p = subprocess.run([simbin, "--devices", "1", "--base-port", str(port)], capture_output=True, text=True,
                                   timeout=30)
                c.check("busy port: exit 1 naming the address", p.returncode == 1 and f"127.0.0.1:{port}" in p.stderr,
                        p.stderr.strip())

                if c.check("second simulator ready", sim_b.ready, sim_b.lines):
                    check_determinism(c, port, port_b)
        finally:
            sim_b.stop()
            rc, elapsed = sim.stop()
            c.check("SIGTERM: exit 0 within 1 s", rc == 0 and elapsed < 1.0, f"rc {rc} in {elapsed:.2f} s")
            c.check("serial links removed at exit", not os.path.lexists(link_bin) and not os.path.lexists(link_txt))
            err = sim.stderr()
            c.check("exit summary on stderr", "vibgate-sim: stopped after" in err, err.strip()[-300:])

        check_quick_mode(c, simbin, workdir)
        check_config_errors(c, simbin, workdir)

    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
