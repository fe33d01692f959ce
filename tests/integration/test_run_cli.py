"""`corral run` as a user meets it: verdicts, exit codes, the JSON contract, options, bad input,
cleanup after every way a run can end, unprivileged mode, and an image directory."""
import base64
import json
import os
import shutil
import signal
import subprocess
import time
import unittest

from harness import (CORRAL, ENV, PROBES, PY, TempDir, corral, corral_json, require, run)
from test_abuse import corral_cgroup_dirs, host_pids_with, orphaned


class Verdicts(unittest.TestCase):
    asan_subset = True

    def test_ok(self):
        r = corral_json("run", "--", "/bin/echo", "hi")
        self.assertEqual((r["status"], r["exit_code"], r["signal"], r["stdout"]),
                         ("ok", 0, None, "hi\n"))
        self.assertEqual(r["_exit"], 0)
        self.assertIsNone(r["error"])
        self.assertGreater(r["peak_memory_bytes"], 0)

    def test_nonzero_exit(self):
        r = corral_json("run", "--", "/bin/sh", "-c", "echo oops >&2; exit 3")
        self.assertEqual((r["status"], r["exit_code"], r["stderr"]), ("nonzero_exit", 3, "oops\n"))
        self.assertEqual(r["_exit"], 3)

    def test_signaled(self):
        r = corral_json("run", "--", "/bin/sh", "-c", "kill -SEGV $$")
        self.assertEqual((r["status"], r["signal"], r["exit_code"]), ("signaled", 11, None))
        self.assertEqual(r["_exit"], 128 + 11)

    def test_exit_codes_without_json_follow_timeout1(self):
        self.assertEqual(corral("run", "--", "/bin/sh", "-c", "exit 7").returncode, 7)
        p = corral("run", "--timeout", "300ms", "--", "/bin/sleep", "5")
        self.assertEqual(p.returncode, 124)
        self.assertIn(b"wall_time limit", p.stderr)
        self.assertEqual(corral("run", "--", "/bin/sh", "-c", "kill -TERM $$").returncode, 143)
        self.assertEqual(corral("run", "--", "/nonexistent").returncode, 125)

    def test_passthrough_streams(self):
        p = corral("run", "--", "/bin/sh", "-c", "echo out; echo err >&2")
        self.assertEqual((p.stdout, p.stderr), (b"out\n", b"err\n"))

    def test_cpu_time_limit(self):
        r = corral_json("run", "--cpu-time", "1", "--timeout", "20", "--",
                        PY, "-c", "while True: pass")
        self.assertEqual((r["status"], r["limit"]), ("timeout", "cpu_time"))
        self.assertEqual(r["signal"], signal.SIGXCPU)

    def test_non_utf8_output_is_base64(self):
        r = corral_json("run", "--", PY, "-c",
                        "import sys; sys.stdout.buffer.write(bytes(range(256)))")
        self.assertEqual(r["stdout_encoding"], "base64")
        self.assertEqual(base64.b64decode(r["stdout"]), bytes(range(256)))
        self.assertEqual(r["stderr_encoding"], "utf-8")

    def test_result_json_has_every_documented_field(self):
        r = corral_json("run", "--", "/bin/true")
        for k in ("status", "exit_code", "signal", "wall_ms", "cpu_ms", "peak_memory_bytes",
                  "stdout", "stderr", "stdout_encoding", "stderr_encoding", "stdout_truncated",
                  "stderr_truncated", "files", "error"):
            self.assertIn(k, r)

    def test_program_not_found_is_sandbox_error(self):
        r = corral_json("run", "--", "no-such-program")
        self.assertEqual(r["status"], "sandbox_error")
        self.assertEqual(r["error"]["step"], "execve")
        self.assertEqual(r["error"]["errno_name"], "ENOENT")
        self.assertEqual(r["_exit"], 125)

    def test_program_not_executable(self):
        with TempDir() as d:
            open(os.path.join(d, "script"), "w").write("#!/bin/sh\necho hi\n")
            r = corral_json("run", "--ro", d + ":/x", "--", "/x/script")
        self.assertEqual((r["status"], r["error"]["errno_name"]), ("sandbox_error", "EACCES"))


class Options(unittest.TestCase):
    asan_subset = True

    def test_env_and_workdir(self):
        r = corral_json("run", "--env", "FOO=bar baz", "--env", "LANG=C", "--workdir", "/dev/shm",
                        "--", PY, "-c", "import os; print(os.environ['FOO'], os.environ['LANG'], "
                                         "os.getcwd(), os.environ['HOME'])")
        self.assertEqual(r["stdout"], "bar baz C /dev/shm /tmp\n")

    def test_environment_is_minimal(self):
        r = corral_json("run", "--", PY, "-c", "import os; print(sorted(os.environ))",
                        env={"SOMETHING_PRIVATE": "x"})
        self.assertEqual(r["stdout"].strip(),
                         "['HOME', 'LANG', 'LC_ALL', 'MPLBACKEND', 'MPLCONFIGDIR', "
                         "'OPENBLAS_NUM_THREADS', 'PATH', 'PYTHONDONTWRITEBYTECODE']")

    def test_ro_and_rw_mounts(self):
        with TempDir() as ro, TempDir() as rw:
            open(os.path.join(ro, "in.txt"), "w").write("input")
            os.chmod(rw, 0o777)
            r = corral_json("run", "--ro", ro + ":/data", "--rw", rw + ":/work", "--", PY, "-c",
                            "import errno\n"
                            "print(open('/data/in.txt').read())\n"
                            "try:\n    open('/data/x', 'w')\nexcept OSError as e: print(errno.errorcode[e.errno])\n"
                            "open('/work/out.txt', 'w').write('written')\n")
            self.assertEqual(r["status"], "ok", r)
            self.assertEqual(r["stdout"], "input\nEROFS\n")
            self.assertEqual(open(os.path.join(rw, "out.txt")).read(), "written")

    def test_ro_single_file_and_default_destination(self):
        with TempDir() as d:
            f = os.path.join(d, "one.csv")
            open(f, "w").write("a,b\n1,2\n")
            r = corral_json("run", "--ro", f, "--", "/bin/cat", f)
            self.assertEqual(r["stdout"], "a,b\n1,2\n")

    def test_nested_mount_into_another_mount_is_refused_without_touching_host(self):
        with TempDir() as a, TempDir() as b:
            r = corral_json("run", "--rw", a + ":/data", "--ro", b + ":/data/sub", "--", "/bin/true")
            self.assertEqual(r["status"], "sandbox_error")
            self.assertEqual(r["error"]["step"], "mount-point")
            self.assertEqual(os.listdir(a), [], "a directory was created on the host")

    def test_rootfs_image(self):
        with TempDir() as img:
            os.makedirs(os.path.join(img, "usr/bin"))
            os.makedirs(os.path.join(img, "etc"))
            shutil.copy(os.path.join(PROBES, "idprobe"), os.path.join(img, "usr/bin/idprobe"))
            os.symlink("usr/bin", os.path.join(img, "bin"))
            open(os.path.join(img, "etc/os-release"), "w").write("ID=corral-test\n")
            r = corral_json("run", "--rootfs", img, "--", "/bin/idprobe")
            self.assertEqual(r["status"], "ok", r)
            self.assertIn("CapEff:\t0000000000000000", r["stdout"])
            r = corral_json("run", "--rootfs", img, "--", "/usr/bin/python3", "-c", "1")
            self.assertEqual((r["status"], r["error"]["errno_name"]), ("sandbox_error", "ENOENT"))


class BadInput(unittest.TestCase):
    """A one-line message naming the problem, exit 125, nothing created on the host."""

    def check(self, args, needle):
        with TempDir() as d:
            before = set(corral_cgroup_dirs())
            p = corral("run", *[a.replace("@D", d) for a in args])
            err = p.stderr.decode()
            self.assertEqual(p.returncode, 125, err)
            self.assertEqual(err.count("\n"), 1, "not one line: %r" % err)
            self.assertTrue(err.startswith("corral: "), err)
            self.assertIn(needle, err)
            self.assertEqual(p.stdout, b"")
            self.assertEqual(os.listdir(d), [])
            self.assertEqual(orphaned(set(corral_cgroup_dirs()) - before), [])

    def test_unknown_option(self):
        self.check(["--bogus", "--", "/bin/true"], "--bogus")

    def test_missing_program(self):
        self.check([], "no program")
        self.check(["--memory", "1G"], "no program")

    def test_nonexistent_ro_path(self):
        self.check(["--ro", "/nonexistent/path:/data", "--", "/bin/true"], "/nonexistent/path")

    def test_bad_sizes(self):
        self.check(["--memory", "12QB", "--", "/bin/true"], "12QB")
        self.check(["--memory", "-1", "--", "/bin/true"], "-1")
        self.check(["--timeout", "soon", "--", "/bin/true"], "soon")
        self.check(["--pids", "0", "--", "/bin/true"], "--pids")
        self.check(["--memory", "", "--", "/bin/true"], "--memory")

    def test_output_is_a_file(self):
        self.check(["--output", "/etc/hostname", "--", "/bin/true"], "not a directory")

    def test_reserved_destinations(self):
        self.check(["--ro", "@D:/usr/lib/x", "--", "/bin/true"], "/usr")
        self.check(["--ro", "@D:/proc", "--", "/bin/true"], "/proc")
        self.check(["--ro", "@D:relative", "--", "/bin/true"], "absolute")
        self.check(["--ro", "@D:/a/../etc", "--", "/bin/true"], "canonical")

    def test_bad_env(self):
        self.check(["--env", "NOEQUALS", "--", "/bin/true"], "K=V")


class Cleanup(unittest.TestCase):
    """After every way a run can end: no process, cgroup, mount or temp dir left behind."""

    def mounts(self):
        return open("/proc/self/mountinfo").read()

    def assert_clean(self, token, mounts_before):
        deadline = time.time() + 5
        while time.time() < deadline and host_pids_with(token):
            time.sleep(0.1)
        self.assertEqual(host_pids_with(token), [])
        self.assertEqual(self.mounts(), mounts_before)

    def test_after_normal_exit_and_timeout(self):
        m = self.mounts()
        before = set(corral_cgroup_dirs())
        token = "cleanup-a-%d" % os.getpid()
        corral("run", "--", "/bin/sh", "-c", "(sleep 100; : %s) & exit 0" % token)
        corral("run", "--timeout", "500ms", "--", "/bin/sh", "-c", "sleep 100; : %s" % token)
        self.assert_clean(token, m)
        # nothing new left by the two runs (a run's own sweep may also remove stale entries
        # that were in `before`, and other live owners may add theirs meanwhile)
        self.assertEqual(orphaned(set(corral_cgroup_dirs()) - before), [])

    def test_after_sigterm_to_corral(self):
        m = self.mounts()
        token = "cleanup-b-%d" % os.getpid()
        p = subprocess.Popen([CORRAL, "run", "--json", "--", "/bin/sh", "-c", "sleep 100; : %s" % token],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
        time.sleep(0.5)
        self.assertTrue(host_pids_with(token))
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=10)
        self.assertEqual(p.returncode, -signal.SIGTERM)
        r = json.loads(out)
        self.assertEqual((r["status"], r["limit"]), ("signaled", "cancelled"))
        self.assert_clean(token, m)

    def test_after_sigkill_to_corral_and_sweep(self):
        m = self.mounts()
        token = "cleanup-c-%d" % os.getpid()
        p = subprocess.Popen([CORRAL, "run", "--", "/bin/sh", "-c", "sleep 100; : %s" % token],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
        time.sleep(0.5)
        self.assertTrue(host_pids_with(token))
        cg_during = set(corral_cgroup_dirs())
        p.kill()
        p.wait()
        self.assert_clean(token, m)  # the tree died with its supervisor (PDEATHSIG + hangup)
        left = [d for d in cg_during if d.split("/")[-1].startswith("%d." % p.pid)]
        self.assertTrue(left, "expected the killed run's cgroup to be left for the sweep")
        corral("run", "--", "/bin/true")  # the next start sweeps what the killed one left
        now = set(corral_cgroup_dirs())
        for d in left:
            self.assertNotIn(d, now)


class Unprivileged(unittest.TestCase):
    """corral run as an ordinary user: a user namespace provides what root would."""

    def test_runs_as_nobody_and_says_limits_are_unenforced(self):
        require(shutil.which("setpriv"), "setpriv (util-linux) is needed to drop to nobody")
        p = run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                 CORRAL, "run", "--json", "--", PY, "-c",
                 "import os; s = open('/proc/self/status').read();"
                 "print(os.getuid(), s.split('CapEff:')[1].split()[0], s.split('NoNewPrivs:')[1].split()[0])"])
        if b"user namespace" in p.stderr or b"EPERM" in p.stdout:
            require(False, "this kernel does not allow unprivileged user namespaces")
        r = json.loads(p.stdout)
        self.assertEqual(r["status"], "ok", r)
        self.assertEqual(r["stdout"], "1000 0000000000000000 1\n")
        if not r["cgroup_limits_enforced"]:
            self.assertIn("not enforced", p.stderr.decode())
            self.assertTrue(r["cgroup_note"])


if __name__ == "__main__":
    unittest.main()
