"""Shared PASS/FAIL bookkeeping of the Python tests: one line per check, and the closing
'N passed, M failed' line that CI reads."""


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
