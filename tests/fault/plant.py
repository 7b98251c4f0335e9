"""The fault tests' plant (tests/fault/): two simulated machines on Modbus TCP whose bearing fault
grows from `fault_start` s, a daemon configuration for them (JSON uplink to a local broker,
the Modbus facade, one asset per machine learning for 5 s) written to `work`, and the daemon
itself with its CLI (Gateway). Shared by crash_loop.py and test_storage_faults.py."""

import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sim"))
from test_sim_mbpoll import free_port  # noqa: E402  (tests/sim/test_sim_mbpoll.py)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from checks import wait_until  # noqa: E402  (tests/checks.py)


def make_plant(gw_dir, work, state, sock, broker_port, node, fault_start=15, facade_port=None):
    """Returns (sim_cmd, config_path, asset_names, facade_port); the simulator is not started."""
    base = free_port()
    facade_port = facade_port or free_port()
    sim_cmd = [f"{gw_dir}/vibgate-sim", "--devices", "2", "--base-port", str(base), "--rate",
               "25600", "--samples", "4096", "--defect", "outer", "--fault-start",
               str(fault_start)]
    devices = subprocess.run(sim_cmd + ["--print-gateway-config"], check=True,
                             capture_output=True, text=True).stdout
    names = [ln.split('"')[1] for ln in devices.splitlines()
             if ln.startswith("name = ") and "sim" in ln]
    cfg = os.path.join(work, "vibgated.toml")
    with open(cfg, "w") as f:
        f.write(f'[daemon]\nstate_dir = "{state}"\ncontrol_socket = "{sock}"\n'
                'log_level = "info"\nresult_interval_ms = 500\n')
        f.write(f'[uplink]\nhost = "127.0.0.1"\nport = {broker_port}\nprofile = "json"\n'
                f'edge_node_id = "{node}"\n')
        f.write(f'[modbus_facade]\nport = {facade_port}\n')
        f.write(devices)
        for n in names:
            f.write(f'[[asset]]\nname = "{n}"\nchannel = "{n}/accel"\nlearn_s = 5\n'
                    'learn_min_windows = 16\n')
    return sim_cmd, cfg, names, facade_port


def json_records(collector, prefix="vibgate/"):
    """The JSON-profile records the collector received, by msg_id (the last copy of each)."""
    out = {}
    for m in collector.messages(prefix):
        try:
            r = json.loads(m.payload)
        except ValueError:
            continue
        if isinstance(r, dict) and "msg_id" in r:
            out[r["msg_id"]] = r
    return out


class Gateway:
    """The daemon under test (one process at a time, its output appended to `log_path`) and its
    CLI. With `preload` and `ctl`, the fault-injecting SQLite VFS (fault_vfs_preload.cpp) is
    preloaded, reading its rules from `ctl`, unless start(faults=False)."""

    def __init__(self, gw, cfg, sock, log_path, ctl=None, preload=None):
        self.gw, self.cfg, self.sock, self.log_path = gw, cfg, sock, log_path
        self.ctl, self.preload = ctl, preload
        self.proc = None

    def env(self, power_loss=False, faults=True):
        e = dict(os.environ)
        if faults and self.preload:
            e["LD_PRELOAD"] = self.preload
            e["VIBGATE_FAULT_VFS_CTL"] = self.ctl
            # The preloaded module comes before the ASan runtime in the sanitizer build.
            e["ASAN_OPTIONS"] = (e.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")
            if power_loss:
                e["VIBGATE_FAULT_VFS_POWERLOSS"] = "1"
        return e

    def start(self, **kw):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([f"{self.gw}/vibgated", "-c", self.cfg], stdout=log,
                                     stderr=log, env=self.env(**kw))
        log.close()
        return self.proc

    def up(self, timeout=20):
        return wait_until(lambda: self.proc.poll() is not None or self.cli("status")[0] == 0,
                          timeout) and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait(5)
        return self.proc.returncode if self.proc else None

    def cli(self, *args):
        p = subprocess.run([f"{self.gw}/vibgate", *args, "--socket", self.sock],
                           capture_output=True, text=True, timeout=10)
        return p.returncode, p.stdout + p.stderr

    def json(self, *args):
        rc, out = self.cli(*args, "--json")
        if rc != 0:
            return None
        try:
            return json.loads(out)
        except ValueError:
            return None

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()
