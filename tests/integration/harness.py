"""Shared helpers for integration tests: find the built binaries, run them, skip honestly.

    from harness import corral, corral_json, require, BUILD
    r = corral_json("run", "--", "/bin/true")      # runs `corral run --json -- /bin/true`
    assert r["status"] == "ok"

Skips: require(cond, reason) skips the test with the reason -- unless CORRAL_MUST_WORK=1 (CI),
where a missing dependency or kernel feature is a failure, never a quiet skip.
"""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("CORRAL_BUILD", "build/debug"))
CORRAL = os.path.join(BUILD, "corral")
PROBES = os.path.join(BUILD, "probes")
PY = "/usr/bin/python3"
MUST_WORK = os.environ.get("CORRAL_MUST_WORK") == "1"
ASAN = "asan" in os.path.basename(BUILD)

# Sanitizer runtime settings for the binaries under test (LeakSanitizer's ptrace-based stop
# does not work across our PID namespaces; leaks are checked by the unit tests).
ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}


def require(cond, reason):
    """Skip (or, under CORRAL_MUST_WORK=1, fail) when a prerequisite is missing."""
    if cond:
        return
    if MUST_WORK:
        raise AssertionError("required facility missing (CORRAL_MUST_WORK=1): " + reason)
    raise unittest.SkipTest(reason)


def run(args, env=None, timeout=120, input=None, check=False):
    e = dict(ENV)
    if env:
        e.update(env)
    return subprocess.run(args, env=e, timeout=timeout, input=input,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=check)


def corral(*args, env=None, timeout=120, input=None):
    return run([CORRAL] + list(args), env=env, timeout=timeout, input=input)


def corral_json(*args, env=None, timeout=120):
    """`corral SUB --json ARGS...`: returns the parsed result object (asserts it parses)."""
    sub, rest = args[0], list(args[1:])
    p = corral(sub, "--json", *rest, env=env, timeout=timeout)
    try:
        obj = json.loads(p.stdout)
    except ValueError:
        raise AssertionError("corral %s did not print JSON (exit %d)\nstdout: %r\nstderr: %r"
                             % (sub, p.returncode, p.stdout[:2000], p.stderr[:2000]))
    obj["_exit"] = p.returncode
    obj["_stderr"] = p.stderr.decode("utf-8", "replace")
    return obj


def probe(name):
    return os.path.join(PROBES, name)


class TempDir:
    """with TempDir() as d: ...  -- removed afterwards, even if the test failed."""

    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="corral-test-")
        os.chmod(self.path, 0o755)
        return self.path

    def __exit__(self, *a):
        shutil.rmtree(self.path, ignore_errors=True)
