"""The fault tests' plant (tests/fault/): two simulated machines on Modbus TCP whose bearing fault
grows from `fault_start` s, and a daemon configuration for them (JSON uplink to a local broker,
the Modbus facade, one asset per machine learning for 5 s), written to `work`. Shared by
crash_loop.py and test_storage_faults.py."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sim"))
from test_sim_mbpoll import free_port  # noqa: E402  (tests/sim/test_sim_mbpoll.py)


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
    import json
    out = {}
    for m in collector.messages(prefix):
        try:
            r = json.loads(m.payload)
        except ValueError:
            continue
        if isinstance(r, dict) and "msg_id" in r:
            out[r["msg_id"]] = r
    return out
