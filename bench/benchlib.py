"""benchlib.py — what the whole-process benchmark drivers in bench/ share: free loopback ports,
CPU time and memory of a process (and of its threads) from /proc, the daemon's Prometheus page,
the systemd READY=1 wait, and a bounded wait.

CPU is utime + stime from /proc/PID/stat (clock ticks, usually 10 ms): a figure over an interval
is the tick delta divided by the wall time, in % of one core. Memory is VmRSS / VmHWM from
/proc/PID/status. Linux only; every wait is bounded.
"""
import os
import random
import socket
import time
import urllib.request

CLK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def free_port_range(n):
    """A base port B with B..B+n-1 all bindable on 127.0.0.1 right now."""
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


def cpu_ticks(pid, tid=None):
    """utime + stime of a process (or one of its threads) in clock ticks."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def thread_ticks(pid):
    """{thread name: ticks summed over the threads of that name} of a process right now."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            out[name] = out.get(name, 0) + cpu_ticks(pid, tid)
        except OSError:
            pass  # the thread ended in between
    return out


def core_ticks():
    """{cpuN: (busy, total)} jiffies from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *vals = line.split()
                v = [int(x) for x in vals]
                idle = v[3] + v[4]  # idle + iowait
                out[name] = (sum(v[:8]) - idle, sum(v[:8]))
    return out


def core_util(before, after):
    """{cpuN: % busy} between two core_ticks() readings."""
    out = {}
    for k, (b1, t1) in after.items():
        b0, t0 = before.get(k, (0, 0))
        out[k] = round(100.0 * (b1 - b0) / max(1, t1 - t0), 1)
    return out


def mem_kb(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":")
                out[k] = int(v.split()[0])
    return out


def metrics(port):
    """The daemon's Prometheus page as {series: value}."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        values[name] = float(value)
    return values


def metric_sum(m, prefix):
    return sum(v for k, v in m.items() if k == prefix or k.startswith(prefix + "{"))


def wait_ready(sock, proc, timeout):
    """Wait for READY=1 on the NOTIFY_SOCKET datagram socket `sock`; the time it came."""
    sock.settimeout(0.05)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vibgated exited with {proc.returncode}")
        try:
            msg = sock.recv(4096).decode()
            if "READY=1" in msg:
                return time.monotonic()
        except socket.timeout:
            pass
    raise RuntimeError("vibgated did not send READY=1")


def wait_until(fn, timeout, every=0.2):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(every)


def pct(values, q):
    """The q-quantile (0..1) of a list, nearest rank; None when empty."""
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]
