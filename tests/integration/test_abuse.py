"""The abuse suite: one test per promise of the sandbox, each trying to break it and asserting
the exact verdict.  Runs against `corral run` here; the engine's sessions reuse the same
cases (see AbuseCases, parameterised by `sandbox_py`).
"""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import unittest

from harness import (BUILD, CORRAL, ENV, PROBES, PY, TempDir, corral, corral_json,
                     require, run)

SECRET = "corral-secret-9f2c6a1e-do-not-leak"


def host_pids_with(token):
    """Host processes whose command line contains token (excluding ourselves)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if token.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def corral_cgroup_dirs():
    """Sandbox cgroups currently present under corral's parents (v1 or v2)."""
    out = []
    for line in open("/proc/self/cgroup"):
        _, ctrl, path = line.strip().split(":", 2)
        if ctrl in ("memory", "pids", ""):
            base = "/sys/fs/cgroup/%s%s/corral" % (ctrl if ctrl else "", path)
            base = base.replace("//", "/")
            if os.path.isdir(base):
                out += [os.path.join(base, d) for d in os.listdir(base)
                        if os.path.isdir(os.path.join(base, d))]
    return out


def orphaned(dirs):
    """Sandbox cgroups ("<pid>.<start>.<seq>") whose owner has exited: what a run left behind.
    (Others' live cgroups -- a concurrent test's, an engine daemon's warm pool -- are not.)"""
    out = []
    for d in dirs:
        pid = os.path.basename(d).split(".")[0]
        if not pid.isdigit() or not os.path.exists("/proc/%s" % pid):
            out.append(d)
    return out


class RunSandbox:
    """Runs Python code (or a program) under `corral run --json` and returns the result."""

    def py(self, code, *opts, env=None, timeout=120):
        return corral_json("run", *opts, "--", PY, "-c", code, env=env, timeout=timeout)

    def prog(self, argv, *opts, env=None, timeout=120):
        return corral_json("run", *opts, "--", *argv, env=env, timeout=timeout)


class AbuseCases:
    """Mixed into a TestCase with `sb` (a sandbox runner) set."""
    asan_subset = True

    # -- host files ---------------------------------------------------------------------
    def test_host_secret_files_are_absent(self):
        r = self.sb.py(
            "import os\n"
            "for p in ['/etc/shadow', '/root', '/etc/ssh', '/var', '/etc/sudoers',"
            " '/proc/1/root/etc/shadow', '/sys/firmware', '/boot', '/home/corral-host-user']:\n"
            "    print(p, os.path.exists(p))\n"
            "# engine sessions have their own /home/user (a tmpfs); nothing else of /home\n"
            "print('/home', set(os.listdir('/home')) - {'user'} if os.path.exists('/home') else False)\n")
        self.assertEqual(r["status"], "ok", r)
        for line in r["stdout"].splitlines():
            self.assertTrue(line.endswith("False") or line == "/home set()", line)

    def test_host_proc_is_invisible(self):
        r = self.sb.py(
            "import os\n"
            "print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\n"
            "print(open('/proc/1/status').read().split('\\n')[0])\n")
        self.assertEqual(r["status"], "ok", r)
        pids = json.loads(r["stdout"].splitlines()[0])
        self.assertLessEqual(max(pids), 10, "sees host processes: %r" % pids)

    def test_system_dirs_are_read_only(self):
        r = self.sb.py(
            "import os\n"
            "for p in ['/usr/x', '/etc/x', '/x', '/bin/x', '/proc/sys/kernel/hostname']:\n"
            "    try:\n"
            "        open(p, 'w').write('x'); print(p, 'WRITABLE')\n"
            "    except OSError as e:\n"
            "        print(p, e.errno)\n")
        self.assertEqual(r["status"], "ok", r)
        self.assertNotIn("WRITABLE", r["stdout"])

    # -- network ------------------------------------------------------------------------
    def test_network_is_unreachable(self):
        code = (
            "import socket, errno\n"
            "def tcp(host):\n"
            "    try:\n"
            "        s = socket.create_connection((host, 80), timeout=2); return 'CONNECTED'\n"
            "    except OSError as e: return errno.errorcode.get(e.errno, str(e))\n"
            "def udp(host):\n"
            "    try:\n"
            "        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b'x', (host, 53)); return 'SENT'\n"
            "    except OSError as e: return errno.errorcode.get(e.errno, str(e))\n"
            "def dns():\n"
            "    try:\n"
            "        return socket.getaddrinfo('example.com', 80)[0][4][0]\n"
            "    except OSError as e: return 'NODNS'\n"
            "def fam(f, t, p=0):\n"
            "    try:\n"
            "        socket.socket(f, t, p); return 'OPEN'\n"
            "    except OSError as e: return errno.errorcode.get(e.errno, str(e))\n"
            "print('tcp_lo', tcp('127.0.0.1')); print('tcp_out', tcp('192.0.2.1'))\n"
            "print('udp_lo', udp('127.0.0.1')); print('udp_out', udp('192.0.2.1'))\n"
            "print('dns', dns())\n"
            "print('raw', fam(socket.AF_INET, socket.SOCK_RAW, 1))\n"
            "print('packet', fam(socket.AF_PACKET, socket.SOCK_RAW))\n"
            "print('netlink', fam(socket.AF_NETLINK, socket.SOCK_RAW))\n"
            "print('inet6', fam(socket.AF_INET6, socket.SOCK_STREAM))\n"
            "a, b = socket.socketpair(); a.send(b'hi'); print('unix', b.recv(2).decode())\n"
            "print('ifaces', sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]))\n")
        r = self.sb.py(code)
        self.assertEqual(r["status"], "ok", r)
        got = dict(l.split(" ", 1) for l in r["stdout"].splitlines())
        for k in ("tcp_lo", "tcp_out", "udp_lo", "udp_out", "raw", "packet", "netlink", "inet6"):
            self.assertEqual(got[k], "EAFNOSUPPORT", (k, got))
        self.assertEqual(got["dns"], "NODNS")
        self.assertEqual(got["unix"], "hi")
        self.assertEqual(got["ifaces"], "['lo']")

    # -- privilege ----------------------------------------------------------------------
    def test_no_capabilities_and_no_new_privs(self):
        r = self.sb.py("print(open('/proc/self/status').read())")
        self.assertEqual(r["status"], "ok", r)
        st = dict(l.split(":", 1) for l in r["stdout"].splitlines() if ":" in l)
        for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            self.assertEqual(int(st[k].strip(), 16), 0, (k, st[k]))
        self.assertEqual(st["NoNewPrivs"].strip(), "1")
        self.assertEqual(st["Seccomp"].strip(), "2")
        uids = st["Uid"].split()
        self.assertNotIn("0", uids, "runs as root: %r" % uids)

    # -- resources ----------------------------------------------------------------------
    def test_fork_bomb_hits_pids_limit(self):
        r = self.sb.py("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
                       "--pids", "16", "--timeout", "5")
        self.assertEqual(r["status"], "pids_limit", r)

    def test_memory_bomb_hits_memory_limit(self):
        r = self.sb.py("x = []\nwhile True:\n    x.append(bytearray(16 << 20))\n",
                       "--memory", "96M", "--timeout", "20")
        self.assertEqual(r["status"], "memory_limit", r)

    def test_infinite_loop_times_out(self):
        r = self.sb.py("while True: pass", "--timeout", "1")
        self.assertEqual(r["status"], "timeout", r)
        self.assertEqual(r["limit"], "wall_time")

    def test_stdout_flood_is_capped(self):
        r = self.sb.py("import sys\nb = b'x' * 65536\nfor _ in range(2000): sys.stdout.buffer.write(b)\n",
                       "--output-limit", "100K")
        self.assertEqual(r["status"], "output_limit", r)
        self.assertTrue(r["stdout_truncated"])
        self.assertEqual(len(r["stdout"]), 100 * 1024)
        self.assertEqual(r["stdout_dropped_bytes"], 2000 * 65536 - 100 * 1024)

    def test_filling_tmp_and_shm_is_bounded(self):
        r = self.sb.py(
            "import errno\n"
            "for p in ['/tmp/fill', '/dev/shm/fill']:\n"
            "    try:\n"
            "        with open(p, 'wb') as f:\n"
            "            while True: f.write(b'x' * 65536)\n"
            "    except OSError as e: print(p, errno.errorcode[e.errno])\n",
            "--tmp-size", "2M", "--file-size", "64M")
        self.assertEqual(r["status"], "ok", r)
        self.assertIn("/tmp/fill ENOSPC", r["stdout"])
        self.assertIn("/dev/shm/fill ENOSPC", r["stdout"])

    def test_file_size_limit(self):
        r = self.sb.py(
            "import errno\n"
            "try:\n"
            "    open('/tmp/big', 'wb').write(b'x' * (300 << 10))\n"
            "except OSError as e: print(errno.errorcode[e.errno])\n",
            "--file-size", "100K")
        self.assertEqual(r["status"], "ok", r)
        self.assertEqual(r["stdout"].strip(), "EFBIG")

    # -- leftovers ----------------------------------------------------------------------
    def test_daemon_and_orphan_do_not_survive(self):
        token = "orphan-token-%d" % os.getpid()
        r = self.sb.py(
            "import os, subprocess, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            "        os.execv('/bin/sh', ['sh', '-c', 'sleep 300; : %s'])\n"
            "    os._exit(0)\n"
            "subprocess.Popen(['/bin/sh', '-c', 'sleep 301; : %s'], start_new_session=True)\n"
            "time.sleep(0.3)\n"
            "import glob\n"
            "def sh(p):\n"
            "    c = open(p, 'rb').read()\n"
            "    return b'-c\\0sleep 30' in c and b'%s' in c\n"
            "print(sum(1 for p in glob.glob('/proc/[0-9]*/cmdline') if sh(p)))\n"
            "print('parent done')\n" % (token, token, token))
        self.assertEqual(r["status"], "ok", r)
        self.assertEqual(r["stdout"], "2\nparent done\n")  # both were alive inside
        time.sleep(0.2)
        self.assertEqual(host_pids_with(token), [])

    # -- secrets ------------------------------------------------------------------------
    def test_secret_in_corral_environment_is_invisible(self):
        # The code carries the secret reversed, so the code itself (in /proc/*/cmdline) is
        # not a hit; the sandbox reverses it back and searches everything it can read.
        r = self.sb.py(
            "import os, glob\n"
            "s = %r[::-1]\n"
            "hits = [k for k, v in os.environ.items() if s in v]\n"
            "for p in glob.glob('/proc/*/environ') + glob.glob('/proc/*/cmdline'):\n"
            "    try:\n"
            "        if s.encode() in open(p, 'rb').read(): hits.append(p)\n"
            "    except OSError: pass\n"
            "print('hits', hits)\n"
            "print(sorted(os.environ))\n" % SECRET[::-1],
            env={"CORRAL_TEST_SECRET": SECRET, "OPENAI_API_KEY": SECRET})
        self.assertEqual(r["status"], "ok", r)
        self.assertIn("hits []", r["stdout"])
        self.assertNotIn("CORRAL_TEST_SECRET", r["stdout"])
        self.assertNotIn("OPENAI_API_KEY", r["stdout"])

    def test_init_holds_nothing_of_the_caller(self):
        # corral's own command line (host paths) and environment never reach the sandbox's
        # init, which is a fork of corral: it wipes its copy and is not dumpable.
        with TempDir() as d:
            secret_dir = os.path.join(d, "hostdir-" + SECRET[::-1][:8])
            os.mkdir(secret_dir)
            r = self.sb.py(
                "import os\n"
                "print(repr(open('/proc/1/cmdline', 'rb').read()))\n"
                "for f in ('environ', 'mem', 'maps'):\n"
                "    try:\n"
                "        open('/proc/1/' + f, 'rb').read(1); print(f, 'READABLE')\n"
                "    except OSError as e: print(f, e.errno)\n",
                "--ro", secret_dir + ":/data", env={"CORRAL_TEST_SECRET": SECRET})
        self.assertEqual(r["status"], "ok", r)
        lines = r["stdout"].splitlines()
        self.assertNotIn("hostdir", lines[0])
        self.assertNotIn("corral", lines[0])
        self.assertEqual(lines[1:], ["environ 13", "mem 13", "maps 13"])

    # -- isolation between sandboxes ----------------------------------------------------
    def test_concurrent_sandboxes_do_not_see_each_other(self):
        marker = "marker-%d" % os.getpid()
        results = {}

        def writer():
            results["w"] = self.sb.py(
                "import time\nopen('/tmp/%s', 'w').write('a')\nopen('/dev/shm/%s', 'w').write('a')\n"
                "time.sleep(3)\nprint('done')\n" % (marker, marker))

        t = threading.Thread(target=writer)
        t.start()
        time.sleep(1.2)
        r = self.sb.py("import os\nprint(os.listdir('/tmp'), os.listdir('/dev/shm'))")
        t.join()
        self.assertEqual(results["w"]["status"], "ok", results["w"])
        self.assertEqual(r["status"], "ok", r)
        self.assertNotIn(marker, r["stdout"])


class RunAbuse(AbuseCases, unittest.TestCase):
    sb = RunSandbox()

    def test_each_denied_syscall(self):
        r = self.sb.prog(["/probes/try_syscall", "all"], "--ro", PROBES + ":/probes")
        self.assertEqual(r["status"], "ok", r)
        got = dict(l.split(" ", 1) for l in r["stdout"].splitlines())
        allowed = {"personality_query": "ok", "socket_unix": "ok", "getpid": "ok"}
        special = {"clone3": "ENOSYS"}
        for name, res in got.items():
            if name in allowed:
                self.assertEqual(res, "ok", name)
            elif name.startswith("socket_"):
                self.assertEqual(res, "EAFNOSUPPORT", name)
            else:
                self.assertEqual(res, special.get(name, "EPERM"), name)
        self.assertGreaterEqual(len(got), 55)

    def test_program_holds_no_descriptor_of_corral(self):
        """Only stdin, stdout and stderr reach the program: no control socket of the init
        (with it, code could forge a verdict for its own run), no pipe of the supervisor."""
        r = self.sb.prog(["/bin/sh", "-c", "ls /proc/self/fd"])
        self.assertEqual(r["status"], "ok", r)
        # ls's own directory descriptor is the 4th
        self.assertEqual(sorted(r["stdout"].split()), ["0", "1", "2", "3"], r)

    def test_foreign_abi_kills(self):
        for mode in ("--i386", "--x32"):
            r = self.sb.prog(["/probes/try_syscall", mode], "--ro", PROBES + ":/probes")
            self.assertEqual(r["status"], "signaled", (mode, r))
            self.assertEqual(r["signal"], signal.SIGSYS, (mode, r))
            self.assertEqual(r["stdout"], "before\n")

    def test_setuid_binary_gains_nothing(self):
        with TempDir() as d:
            dst = os.path.join(d, "idprobe")
            shutil.copy(os.path.join(PROBES, "idprobe"), dst)
            os.chown(dst, 0, 0)
            os.chmod(dst, 0o4755)
            r = self.sb.prog(["/x/idprobe"], "--ro", d + ":/x")
        self.assertEqual(r["status"], "ok", r)
        self.assertNotIn("euid=0", r["stdout"])
        self.assertIn("CapEff:\t0000000000000000", r["stdout"])

    def test_device_nodes(self):
        r = self.sb.py(
            "import os, errno\n"
            "print(sorted(os.listdir('/dev')))\n"
            "try:\n"
            "    os.mknod('/tmp/sda', 0o600 | 0o60000, os.makedev(8, 0)); print('MKNOD')\n"
            "except OSError as e: print('mknod', errno.errorcode[e.errno])\n"
            "print(len(open('/dev/urandom', 'rb').read(16)), open('/dev/zero', 'rb').read(2))\n"
            "try:\n"
            "    open('/dev/full', 'wb', buffering=0).write(b'x')\n"
            "except OSError as e: print('full', errno.errorcode[e.errno])\n")
        self.assertEqual(r["status"], "ok", r)
        lines = r["stdout"].splitlines()
        self.assertEqual(lines[0], "['fd', 'full', 'null', 'random', 'shm', 'stderr', 'stdin', "
                                   "'stdout', 'tty', 'urandom', 'zero']")
        self.assertEqual(lines[1], "mknod EPERM")
        self.assertEqual(lines[2], "16 b'\\x00\\x00'")
        self.assertEqual(lines[3], "full ENOSPC")

    def test_output_dir_fill_is_bounded_and_host_unharmed(self):
        with TempDir() as d:
            r = self.sb.py(
                "import errno\n"
                "try:\n"
                "    with open('/output/big', 'wb') as f:\n"
                "        while True: f.write(b'x' * 65536)\n"
                "except OSError as e: print(errno.errorcode[e.errno])\n"
                "n = 0\n"
                "try:\n"
                "    while True:\n"
                "        open('/output/f%d' % n, 'w').close(); n += 1\n"
                "except OSError as e: print('files', errno.errorcode[e.errno])\n",
                "--output", d, "--output-size", "1M", "--output-files", "20")
            self.assertEqual(r["status"], "ok", r)
            self.assertIn("ENOSPC", r["stdout"])
            total = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
            self.assertLessEqual(total, 1 << 20)
            self.assertLessEqual(len(os.listdir(d)), 20)
            self.assertTrue(r["files_truncated"])

    def test_output_all_byte_values_round_trip(self):
        data = bytes(range(256)) * 4096  # 1 MiB
        with TempDir() as d:
            r = self.sb.py(
                "open('/output/bytes.bin', 'wb').write(bytes(range(256)) * 4096)\n"
                "import os; os.makedirs('/output/sub/dir'); open('/output/sub/dir/x', 'w').write('y')\n",
                "--output", d)
            self.assertEqual(r["status"], "ok", r)
            with open(os.path.join(d, "bytes.bin"), "rb") as f:
                self.assertEqual(f.read(), data)
            files = {f["path"]: f["bytes"] for f in r["files"]}
            self.assertEqual(files, {"bytes.bin": 1 << 20, "sub/dir/x": 1})

    def test_output_symlinks_and_specials_are_not_followed(self):
        with TempDir() as d:
            r = self.sb.py(
                "import os\n"
                "os.symlink('/etc/passwd', '/output/passwd')\n"
                "os.symlink('/root', '/output/rootdir')\n"
                "os.mkfifo('/output/fifo')\n"
                "open('/output/ok.txt', 'w').write('fine')\n",
                "--output", d)
            self.assertEqual(r["status"], "ok", r)
            self.assertEqual(sorted(os.listdir(d)), ["ok.txt"])
            skipped = {s["path"]: s["reason"] for s in r["files_skipped"]}
            self.assertEqual(skipped, {"passwd": "symlink", "rootdir": "symlink",
                                       "fifo": "not a regular file"})

    def test_stdout_flood_keeps_corral_memory_bounded(self):
        with TempDir() as d:
            p = subprocess.Popen([CORRAL, "run", "--json", "--output-limit", "1M", "--",
                                  "/bin/sh", "-c", "head -c 1000000000 /dev/zero"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
            out, _ = p.communicate(timeout=120)
            r = json.loads(out)
        self.assertEqual(r["status"], "output_limit", r)
        self.assertEqual(r["stdout_dropped_bytes"], 1000000000 - (1 << 20))

    def test_stdout_flood_rss(self):
        # corral's own peak RSS while 1 GB flows through a 1 MiB cap (wait4 on corral alone:
        # its sandbox children are accounted to their own cgroup, not to corral's rusage)
        pid = os.fork()
        if pid == 0:
            null = os.open("/dev/null", os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            os.execve(CORRAL, [CORRAL, "run", "--output-limit", "1M", "--",
                               "/bin/sh", "-c", "head -c 1000000000 /dev/zero"], ENV)
        _, status, ru = os.wait4(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)  # output_limit keeps code 0
        self.assertLess(ru.ru_maxrss, 64 * 1024, "corral peak RSS %d KiB" % ru.ru_maxrss)


if __name__ == "__main__":
    unittest.main()
