#!/usr/bin/python3
"""make_corpus.py — writes the seed corpora of tests/fuzz/corpus/<target>/ (committed; rerun only
to change a seed). Every seed is small (< 16 KiB, WAV < 4 KiB) and meaningful for its target's
input layout, described at the top of each <target>_fuzz.cpp.

  tests/fuzz/make_corpus.py [--vibgate build/gateway/vibgate]

--vibgate: the CLI used to synthesize a recording and train the two tiny model seeds
(`vibgate synth` + `vibgate train`); without it the model seeds already in the corpus are kept.
"""
import argparse
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import wave
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    assert len(data) < 16384, (target, name, len(data))
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- serial_frame: mode byte, 2 split-seed bytes, stream (docs/serial-protocol.md) ----
def frame(seq, rate, fmt, scale, channels):
    nch, spc = len(channels), len(channels[0])
    hdr = struct.pack("<BBBBBBIIHf", 0xA5, 0x5A, 1, fmt, nch, 0, seq, rate, spc, scale)
    body = b""
    for i in range(spc):
        for c in range(nch):
            v = channels[c][i] / scale
            body += struct.pack("<h", max(-32768, min(32767, round(v)))) if fmt == 0 \
                else struct.pack("<f", v)
    return hdr + body + struct.pack("<I", zlib.crc32(hdr + body))


def serial_frame():
    sine = [[math.sin(0.3 * i + c) for i in range(16)] for c in range(2)]
    put("serial_frame", "binary_int16", b"\x00\x07\x00" +
        frame(1, 25600, 0, 1 / 1024, sine) + b"\x00garbage\xa5" + frame(2, 25600, 0, 1 / 1024, sine))
    put("serial_frame", "binary_float32_gap", b"\x00\x31\x04" +
        frame(7, 1000, 1, 1.0, [[0.5, -0.25, 1e-3, 3.0]]) + frame(9, 1000, 1, 1.0, [[1, 2, 3, 4]]))
    bad = bytearray(frame(3, 8000, 0, 0.01, [[1.0] * 8]))
    bad[-1] ^= 0xFF  # CRC error, then a good frame
    put("serial_frame", "binary_crc_error_limit1024", b"\x60\x05\x00" + bytes(bad) +
        frame(4, 8000, 0, 0.01, [[float(i) for i in range(8)]] * 3) +
        frame(5, 8000, 1, 1.0, [[0.0] * 300]))  # 1200-byte payload: oversize for 1024
    put("serial_frame", "text_2ch", b"\x03\x11\x00" +
        b"0.12,-0.5\n1e-3 2\r\n+3.5 , -4\n\n1.5x,2\nnan,1\n7,8,9\n-0,0\n")
    put("serial_frame", "text_3ch", b"\x05\x00\x01" + b"1 2 3\n4,5,6\r\n" + b"9" * 1100 + b"\n7 8 9\n")


# ---- modbus_registers: FuzzedDataProvider input (integers from the end, so any bytes work) ----
def modbus_registers():
    rng = random.Random(7)
    for n in (16, 96, 400):
        put("modbus_registers", "random_%d" % n, bytes(rng.randrange(256) for _ in range(n)))
    # Registers of known values: 1.5 as float64 ABCD, 0x12345678, -2 int16.
    put("modbus_registers", "known_values",
        struct.pack(">dIh", 1.5, 0x12345678, -2) + bytes(range(64)))


# ---- modbus_waveform: config bytes, then the device script (fake_modbus_link.hpp) ----
OK, EXC, TIMEOUT = 0x80, 0x05, 0x15


def regs(*values):
    return bytes([OK]) + b"".join(struct.pack(">H", v & 0xFFFF) for v in values)


def header(seq, n, rate, fmt, scale):
    s = struct.unpack(">HH", struct.pack(">f", scale))
    return regs(seq, n, rate >> 16, rate & 0xFFFF, fmt, 0, s[0], s[1])


def f32_regs(values):
    out = []
    for v in values:
        out += struct.unpack(">HH", struct.pack(">f", v))
    return out


def modbus_waveform():
    data16 = [int(1000 * math.sin(0.4 * i)) & 0xFFFF for i in range(16)]
    f100 = f32_regs([math.cos(0.1 * i) for i in range(100)])
    script = (
        header(1, 16, 25600, 0, 0.001) + regs(*data16) + regs(1)           # block 1
        + header(1, 16, 25600, 0, 0.001)                                   # nothing new
        + header(3, 100, 12800, 1, 1.0) + regs(*f100[:125]) + regs(*f100[125:]) + regs(3)  # gap
        + header(4, 8, 1000, 0, 0.5) + regs(*range(8)) + regs(5)           # torn
        + bytes([EXC]) + bytes([TIMEOUT]))
    put("modbus_waveform", "one_waveform", b"\x00\x00\x64" + script)
    # Two waveforms (input at 0, holding at 65520: 8 samples fit below 65536), a coil and a
    # discrete-input tag, one retry.
    cfg = b"\x13" + b"\x00\x00" + b"\xff\xf0" + b"\x00\x00\x0a" + b"\x01\x00\x14"
    poll = lambda s0, s1: (bytes([OK, 1]) + bytes([OK, 0]) + header(s0, 4, 100, 0, 2.0)
                           + regs(1, 2, 3, 0xFFFF) + regs(s0) + header(s1, 8, 100, 0, 1.0)
                           + regs(*range(8)) + regs(s1))
    put("modbus_waveform", "two_waveforms_tags", cfg + poll(1, 1) + poll(2, 65535)
        + bytes([OK, 1]) + bytes([TIMEOUT]) + bytes([OK, 0]) + header(3, 9000, 100, 0, 1.0))
    # One waveform at the top of the register space: 16 int16 samples would run past 65535.
    put("modbus_waveform", "past_65535", b"\x00\xff\xf0" + header(1, 16, 100, 0, 1.0) +
        header(2, 8, 100, 0, 1.0) + regs(*range(8)) + regs(2))


# ---- configurations: the documented example, the demo, and a dense hand-written one ----
DENSE_TOML = """\
[[bus]]
name = "line"
port = "/dev/ttyS1"
baud = 9600
parity = "none"
stop_bits = 2

[[device]]
name = "rtu7"
protocol = "rtu"
bus = "line"
unit_id = 7
retries = 0
[[device.tag]]
name = "i64"
register = "holding"
address = 65532
type = "int64"
order = "DCBA"
scale = 0.5
offset = -3
[[device.tag]]
name = "f64"
register = "input"
address = 1
type = "float64"
order = "BADC"
[[device.tag]]
name = "alarm"
register = "discrete"
address = 65535
[[device.waveform]]
name = "vib"
register = "holding"
address = 65527
units = "m/s2"

[[serial_sensor]]
name = "acc"
port = "/dev/ttyUSB3"
baud = 921600
mode = "text"
sample_rate_hz = 12800
channels = 2
channel_names = ["acc/x", "acc/y"]

[[asset]]
name = "fan.2"
channels = ["rtu7/vib", "acc/x"]
window = 256
overlap = 0.9375
shaft_hz = 24.5
units = "m/s2"
iso_group = 1
iso_mounting = "flexible"
load_tag = "rtu7/f64"
[asset.bearing]
balls = 9
ball_diameter = 7.94
pitch_diameter = 39.04
contact_angle_deg = 15
[[asset.action]]
on = "warning"
device = "rtu7"
register = "holding"
address = 40
value = 65535
reset_value = 0

[daemon]
state_dir = "/tmp/vg"

[modbus_facade]
enabled = true
allow = ["10.0.0.0/8", "192.168.1.7"]

[uplink]
enabled = false
profile = "json"
mqtt = "5"
[uplink.tls]
ca_file = "ca.pem"
verify = false
"""


def configs():
    for target in ("ingest_config", "daemon_config"):
        shutil.copy(os.path.join(ROOT, "deploy", "vibgate.toml"),
                    os.path.join(CORPUS, target, "vibgate.toml"))
        shutil.copy(os.path.join(ROOT, "deploy", "demo", "vibgated.toml"),
                    os.path.join(CORPUS, target, "demo_vibgated.toml"))
        put(target, "dense.toml", DENSE_TOML)
        put(target, "syntax_error.toml", "[[device]\nname = 'x'\n")


# ---- control_protocol: length-prefixed protobuf frames (gateway/daemon/proto/control.proto) ----
def varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        out += bytes([b | (0x80 if v else 0)])
        if not v:
            return out


def field(num, wire, payload):
    key = varint((num << 3) | wire)
    if wire == 0:
        return key + varint(payload)
    if wire == 1:
        return key + payload
    return key + varint(len(payload)) + payload


def msg(*fields):
    return b"".join(fields)


def s(num, text):
    return field(num, 2, text.encode())


def framed(body):
    return struct.pack(">I", len(body)) + body


def control_protocol():
    status = msg(field(1, 0, 1), field(10, 2, b""))
    tags = msg(field(1, 0, 2), field(12, 2, s(1, "plc1")))
    alerts = msg(field(1, 0, 3), field(14, 2, msg(field(1, 0, 1), field(2, 0, 1700000000000),
                                                  field(3, 0, 50))))
    ack = msg(field(1, 0, 4), field(15, 2, msg(field(1, 0, 42), s(2, "bearing replaced"),
                                               s(3, "op"))))
    trend = msg(field(1, 0, 5), field(16, 2, msg(s(1, "pump1"), s(2, "score"),
                                                 field(5, 0, 500))))
    model = msg(field(1, 0, 6), field(19, 2, msg(field(1, 0, 1), s(2, "pump1"))))
    train = msg(field(1, 0, 7), field(20, 2, msg(s(1, "pump1"), field(2, 0, 300))))
    put("control_protocol", "requests",
        b"".join(framed(b) for b in (status, tags, alerts, ack, trend, model, train)))
    put("control_protocol", "spectrum_request", framed(msg(field(1, 0, 9),
                                                           field(21, 2, s(1, "pump1")))))
    # Replies (the CLI's side): a status with counters, and a trend of two points.
    counter = msg(s(1, "polls"), field(2, 1, struct.pack("<d", 12.0)))
    status_info = msg(s(1, "0.1.0"), field(2, 0, 3600), field(3, 0, 1), field(13, 2, counter))
    put("control_protocol", "status_reply",
        framed(msg(field(1, 0, 1), field(2, 0, 1), field(10, 2, status_info))))
    point = lambda t, v: field(3, 2, msg(field(1, 0, t), field(2, 1, struct.pack("<d", v))))
    put("control_protocol", "trend_reply", framed(msg(
        field(1, 0, 5), field(2, 0, 1),
        field(16, 2, msg(s(1, "pump1"), s(2, "score"), point(1000, 0.5), point(2000, 1.25))))))
    put("control_protocol", "error_reply", framed(msg(field(1, 0, 8), s(3, "unknown asset"))))
    put("control_protocol", "bad_length", b"\x00\x40\x00\x01" + status)


# ---- recordings ----
def write_pcm_wav(path, rate, data, width):
    with wave.open(path, "wb") as w:
        w.setnchannels(data.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data.tobytes())


def float_wav(rate, data):
    """WAVE_FORMAT_IEEE_FLOAT (the wave module writes PCM only)."""
    frames, nch = data.shape
    body = data.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, nch, rate, rate * nch * 4, nch * 4, 32)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def recordings():
    t = np.arange(256) / 8000.0
    sig = np.sin(2 * np.pi * 440 * t) * 0.5
    with tempfile.TemporaryDirectory() as tmp:
        seeds = {
            "mono_pcm16.wav": (8000, (sig * 32767).astype("<i2").reshape(-1, 1), 2),
            "stereo_pcm16.wav": (48000, np.stack([sig, -sig], 1).__mul__(20000).astype("<i2")[:200], 2),
            "mono_pcm8.wav": (4000, ((sig + 1) * 127).astype("u1").reshape(-1, 1), 1),
        }
        for name, (rate, data, width) in seeds.items():
            p = os.path.join(tmp, name)
            write_pcm_wav(p, rate, data, width)
            put("recording_wav", name, open(p, "rb").read())
    put("recording_wav", "stereo_float32.wav", float_wav(25600, np.stack([sig, sig * 0.1], 1)[:128]))
    pcm24 = b"".join(struct.pack("<i", int(v * 8e6))[:3] for v in sig[:100])
    fmt = struct.pack("<HHIIHH", 1, 1, 12000, 36000, 3, 24)
    chunks = b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(pcm24)) + pcm24
    put("recording_wav", "mono_pcm24.wav", b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks)
    for name in os.listdir(os.path.join(CORPUS, "recording_wav")):
        assert os.path.getsize(os.path.join(CORPUS, "recording_wav", name)) < 4096, name

    rows = "\n".join("%.6f,%.6f" % (math.sin(0.2 * i), math.cos(0.2 * i)) for i in range(40))
    put("recording_csv", "header_2ch.csv", "de_accel,nde_accel\n" + rows + "\n")
    put("recording_csv", "bom_crlf_1ch.csv", "\ufeff" + "".join(
        "%g\r\n" % (0.01 * i) + ("\r\n" if i % 7 == 0 else "") for i in range(50)))
    put("recording_csv", "scientific_3ch.csv",
        "1e-3, +2.5E+1 ,-0\n3.4028234e38,-1.17549435e-38,1e-45\n 7 ,8,9\n")
    put("recording_csv", "bad_row.csv", "a,b\n1,2\n3\n")


# ---- model_file: byte 0 = 1: the whole file; 0: the payload (the target adds header and CRC) ----
def models(vibgate):
    if vibgate:
        with tempfile.TemporaryDirectory() as tmp:
            wav = os.path.join(tmp, "s.wav")
            subprocess.run([vibgate, "synth", "--out", wav, "--duration", "3", "--rate", "4096",
                            "--seed", "1"], check=True, stdout=subprocess.DEVNULL)
            for name, extra in (("tiny", ["--hidden", "4", "2", "4", "--epochs", "20"]),
                                ("tiny_bearing", ["--hidden", "4", "--epochs", "10", "--rpm",
                                                  "1797", "--bearing-multiples",
                                                  "3.58,5.42,2.32,0.4"])):
                out = os.path.join(tmp, name + ".vgm")
                subprocess.run([vibgate, "train", "--out", out, "--window", "256", "--bands", "4",
                                "--seed", "1"] + extra + [wav], check=True,
                               stdout=subprocess.DEVNULL)
                data = open(out, "rb").read()
                put("model_file", name + "_file", b"\x01" + data)
                put("model_file", name + "_payload", b"\x00" + data[20:])
    elif not os.path.isdir(os.path.join(CORPUS, "model_file")):
        sys.exit("make_corpus: no model seeds yet: pass --vibgate <path of the vibgate CLI>")
    put("model_file", "bad_magic", b"\x01VIBGMODX\x01\x00\x00\x00")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vibgate", help="vibgate CLI, to regenerate the model seeds")
    args = ap.parse_args()
    serial_frame()
    modbus_registers()
    modbus_waveform()
    os.makedirs(os.path.join(CORPUS, "ingest_config"), exist_ok=True)
    os.makedirs(os.path.join(CORPUS, "daemon_config"), exist_ok=True)
    configs()
    control_protocol()
    recordings()
    models(args.vibgate)


if __name__ == "__main__":
    main()
