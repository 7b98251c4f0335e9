#!/usr/bin/python3
"""test_daemon_stop.py — SIGTERM at random moments while vibgated polls many waveform devices.

Regression test for a crash found by the daemon benchmark: ModbusPoller::stop() made a poll in
flight skip its remaining requests, and the skipped request was taken for a success, so the
waveform header was read from an empty vector (SIGSEGV at shutdown). Each round starts the daemon
against vibgate-sim (12 devices, 25.6 kHz waveform blocks + 7 tags each, so requests are always
in flight), waits until it answers on its control socket, sleeps a random time, sends SIGTERM and
requires exit code 0 within 5 s (the issue's drain budget), with the store flushed ("stopped:").
Rounds: 8 (VIBGATE_STOP_ROUNDS overrides). Paths: $VIBGATE_GATEWAY_DIR (vibgated, vibgate-sim),
$VIBGATE_CLI; state under $VIBGATE_TEST_WORK (build tree: the control socket refuses /tmp).
"""
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

GW = os.environ["VIBGATE_GATEWAY_DIR"]
CLI = os.environ["VIBGATE_CLI"]
WORK = os.path.join(os.environ["VIBGATE_TEST_WORK"], "daemon_stop")
ROUNDS = int(os.environ.get("VIBGATE_STOP_ROUNDS", "8"))
N = 12
failures = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + (f" — {detail}" if detail and not ok else ""))
    if not ok:
        failures.append(name)


def free_base(n):
    for _ in range(200):
        base = random.randint(20000, 60000 - n)
        socks = []
        try:
            for i in range(n):
                s = socket.socket()
                s.bind(("127.0.0.1", base + i))
                socks.append(s)
            return base
        except OSError:
            pass
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    base = free_base(N + 1)
    sim_cmd = [f"{GW}/vibgate-sim", "--devices", str(N), "--base-port", str(base), "--rate",
               "25600", "--samples", "4096"]
    devices = subprocess.run(sim_cmd + ["--print-gateway-config"], check=True,
                             capture_output=True, text=True).stdout
    sock = f"{WORK}/state/vibgate.sock"
    with open(f"{WORK}/vibgated.toml", "w") as f:
        f.write(f'[daemon]\nstate_dir = "{WORK}/state"\ncontrol_socket = "{sock}"\n'
                f'[uplink]\nenabled = false\n[modbus_facade]\nport = {base + N}\n' + devices)
        for i in range(N):
            f.write(f'[[asset]]\nname = "a{i}"\nchannel = "sim{base + i}_1/accel"\nlearn_s = 5\n')
    sim = subprocess.Popen(sim_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rng = random.Random(7)
    try:
        time.sleep(0.5)
        for k in range(ROUNDS):
            log = open(f"{WORK}/round{k}.log", "w+")
            d = subprocess.Popen([f"{GW}/vibgated", "-c", f"{WORK}/vibgated.toml"], stderr=log)
            deadline = time.monotonic() + 10
            up = False
            while time.monotonic() < deadline and d.poll() is None:
                if subprocess.run([CLI, "status", "--socket", sock], capture_output=True).returncode == 0:
                    up = True
                    break
                time.sleep(0.05)
            check(f"round {k}: daemon up", up)
            time.sleep(rng.uniform(0.05, 1.5))
            d.send_signal(signal.SIGTERM)
            t0 = time.monotonic()
            try:
                rc = d.wait(5)
            except subprocess.TimeoutExpired:
                d.kill()
                rc = d.wait()
                rc = f"still running after 5 s (killed, {rc})"
            took = time.monotonic() - t0
            log.seek(0)
            text = log.read()
            check(f"round {k}: exit 0 after SIGTERM in {took * 1000:.0f} ms", rc == 0,
                  f"rc {rc}; log tail: {text[-500:]}")
            check(f"round {k}: storage flushed", "stopped: storage flushed" in text)
    finally:
        if sim.poll() is None:
            sim.terminate()
            sim.wait(5)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
