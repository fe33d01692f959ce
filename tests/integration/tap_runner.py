"""Runs one integration test module (stdlib unittest) and prints TAP lines.

Usage: tap_runner.py tests/integration/test_x.py
Every test prints "ok N - Class.method", "not ok N - ..." (with the failure indented as TAP
comments) or "ok N - ... # SKIP reason".  Under CORRAL_ASAN_SUBSET=1 only classes marked
`asan_subset = True` run (the sanitizer build repeats the tests where memory bugs would show).
"""
import importlib.util
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


class TapResult(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.n = 0
        self.t0 = 0.0

    def startTest(self, test):
        super().startTest(test)
        self.t0 = time.monotonic()

    def _name(self, test):
        if not hasattr(test, "_testMethodName"):   # setUpModule / tearDownClass failures
            return str(test)
        return "%s.%s" % (type(test).__name__, test._testMethodName)

    def _line(self, status, test, extra=""):
        self.n += 1
        dt = time.monotonic() - self.t0
        print("%s %d - %s (%.2fs)%s" % (status, self.n, self._name(test), dt, extra), flush=True)

    def addSuccess(self, test):
        self._line("ok", test)

    def addFailure(self, test, err):
        self._line("not ok", test)
        for l in self._exc_info_to_string(err, test).splitlines():
            print("#   " + l, flush=True)

    addError = addFailure

    def addSkip(self, test, reason):
        self._line("ok", test, " # SKIP " + reason)

    def addExpectedFailure(self, test, err):
        self._line("not ok", test, " (expected failure is not allowed)")

    def addUnexpectedSuccess(self, test):
        self._line("not ok", test, " (unexpected success)")


def main():
    path = sys.argv[1]
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # so unittest finds setUpModule/tearDownModule
    try:
        spec.loader.exec_module(mod)
    except Exception as e:  # an import error is a failure, never a silent pass
        print("not ok 1 - %s import failed: %r" % (name, e))
        return 1
    suite = unittest.TestSuite()
    loader = unittest.TestLoader()
    subset = os.environ.get("CORRAL_ASAN_SUBSET") == "1"
    for obj in vars(mod).values():
        if isinstance(obj, type) and issubclass(obj, unittest.TestCase):
            if subset and not getattr(obj, "asan_subset", False):
                continue
            suite.addTests(loader.loadTestsFromTestCase(obj))
    res = TapResult()
    suite.run(res)
    return 0 if res.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
