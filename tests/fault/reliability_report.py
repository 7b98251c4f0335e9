#!/usr/bin/python3
"""Regenerates docs/reliability-figures.md, the measured figures behind docs/reliability.md
(issue 7): runs the fault tests at full length on this machine, one after the other, and writes
what each printed about itself.

  * kill -9 crash loop with aimed kills (crash_loop.py --aim, --cycles, default 50);
  * storage faults looped over N and power-loss rounds (storage_fault_test, storage_crash_test);
  * storage faults under the daemon (test_storage_faults.py);
  * network and field-bus faults under the daemon (test_network_faults.py);
  * every libFuzzer target for --fuzz-seconds (default 60; tests/fuzz/run_fuzzers.sh);
  * a soak of --soak-seconds (default 300; soak_check.py; the 1-hour one: --soak-seconds 3600).

Usage: reliability_report.py [--build build] [--cycles 50] [--fuzz-seconds 60]
                             [--soak-seconds 300] [--out docs/reliability-figures.md]
Needs a release build (tests/run.sh or deploy/build.sh) and takes about 20 minutes with the
defaults. A part that fails is reported as failed in the page, with its last output lines; the
script then exits 1.
"""

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
PY = "/usr/bin/python3"


def run(cmd, timeout):
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr, time.monotonic() - t0


def lines_matching(out, pattern):
    return [ln.strip() for ln in out.splitlines() if re.search(pattern, ln)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--cycles", type=int, default=50)
    ap.add_argument("--fuzz-seconds", type=int, default=60)
    ap.add_argument("--soak-seconds", type=int, default=300)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "reliability-figures.md"))
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    gw = os.path.join(build, "gateway")
    env_bins = dict(os.environ, VIBGATED=f"{gw}/vibgated", VIBGATE_SIM=f"{gw}/vibgate-sim",
                    VIBGATE_CLI=f"{gw}/vibgate", VIBGATE_BUILD_DIR=build)
    os.environ.update(env_bins)
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), platform.processor())
    sections = []
    failed = []

    def part(title, cmd, timeout, pick):
        print(f"== {title}", flush=True)
        rc, out, secs = run(cmd, timeout)
        body = pick(out)
        if rc != 0:
            failed.append(title)
            body = ["**FAILED** (exit code %d); last lines:" % rc, "```"] + \
                out.strip().splitlines()[-15:] + ["```"]
        sections.append((f"{title} ({secs:.0f} s)", body))

    bullets = lambda pattern: lambda out: ["- " + ln for ln in lines_matching(out, pattern)]  # noqa: E731

    part(f"Kill -9 crash loop, {args.cycles} cycles",
         [PY, f"{HERE}/crash_loop.py", "--cycles", str(args.cycles), "--aim", "--build", build],
         args.cycles * 15 + 300,
         bullets(r"^seed |every stored (result|alert)|SIGKILL cycles|integrity|duplicates carry"))
    part("Storage faults looped over N (storage_fault_test)",
         [f"{build}/tests/storage_fault_test"], 600, bullets(r"faults: N|open under faults"))
    part("Process crash and power-loss rounds (storage_crash_test)",
         [f"{build}/tests/storage_crash_test"], 600, bullets(r"^(process crash|power loss)"))
    part("Storage faults under the daemon (test_storage_faults.py)",
         [PY, f"{HERE}/test_storage_faults.py", "--build", build], 600,
         bullets(r"^figure:|passed, .* failed"))
    part("Network and field-bus faults under the daemon (test_network_faults.py)",
         [PY, f"{HERE}/test_network_faults.py", "--build", build], 900,
         lambda out: [ln for ln in out.splitlines() if ln.startswith("|")] +
         [""] + lines_matching(out, r"passed, .* failed"))
    fuzz_dir = os.path.join(ROOT, "build-fuzz")
    part(f"libFuzzer, {args.fuzz_seconds} s per target (run_fuzzers.sh)",
         [f"{ROOT}/tests/fuzz/run_fuzzers.sh", "--build-dir", fuzz_dir, "--seconds",
          str(args.fuzz_seconds), "--parallel", "2"], args.fuzz_seconds * 10 + 900,
         lambda out: ["```"] + lines_matching(out, r"execs .*crashes=") + ["```"])
    part(f"Soak, {args.soak_seconds} s (soak_check.py)",
         [PY, f"{HERE}/soak_check.py", "--build", build, "--seconds", str(args.soak_seconds)],
         args.soak_seconds + 600,
         lambda out: ["```"] + [ln for ln in out.splitlines()
                                 if ln.startswith(("soak:", "  "))] + ["```"])

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = ["# Reliability figures", "",
            "Generated by `tests/fault/reliability_report.py` — do not edit by hand; what the tests "
            "check is in docs/reliability.md.", "",
            f"Measured {now} at commit {commit} on {os.cpu_count()} cores ({cpu}), release build.",
            ""]
    for title, body in sections:
        text += [f"## {title}", ""] + body + [""]
    with open(args.out, "w") as f:
        f.write("\n".join(text))
    print(f"wrote {args.out}; failed parts: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
