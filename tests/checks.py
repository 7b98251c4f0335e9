"""Shared PASS/FAIL bookkeeping of the Python tests: one line per check, and the closing
'N passed, M failed' line that CI reads; and the bounded wait they all poll with."""

import time


def wait_until(fn, timeout, every=0.2):
    """Calls fn() until it returns something truthy or `timeout` s passed; returns the last
    value. Bounded in time and in count (at most timeout/every + 2 calls)."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / max(every, 0.01)) + 2):
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(max(0.0, min(every, deadline - time.monotonic())))
    return fn()


class Checks:
    """Counts and prints PASS/FAIL lines."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        ok = bool(ok)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""), flush=True)
        return ok
