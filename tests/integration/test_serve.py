"""`corral serve` end to end over real HTTP on loopback.

The native API through clients/python/corral_client.py (create -> execute streamed and
aggregated -> files of all 256 byte values -> delete; DataFrames and figures; expiry and
extension; 32 sandboxes executing at once without cross-talk), auth (401, another key's
sandboxes do not exist), bad input through raw http.client (malformed JSON, wrong types,
unknown ids, traversal, a planted symlink, oversized bodies, slow-loris, hundreds of idle
connections), a client hanging up mid-cell, capacity under concurrent creates (429), metrics,
the OpenAPI file against the route table, and the process model: SIGTERM destroys everything,
SIGKILL and a restart leave nothing behind.  (The C client, backend/remote.c, has its own
unit test against a fake server: tests/unit/test_remote.c.)
"""
import base64
import hashlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

from harness import BUILD, CORRAL, ENV, ROOT, TempDir, require

sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
import corral_client  # noqa: E402

KEY_A = "e2b_" + secrets.token_hex(16)
KEY_B = "key-b-" + secrets.token_hex(12)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_stat(pid):
    """(state, ppid, starttime) of a process, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[19])


def descendants(root):
    """{pid: starttime} of root and every process below it."""
    children = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            st = proc_stat(int(p))
            if st:
                children.setdefault(st[1], []).append((int(p), st[2]))
    out, todo = {}, [root]
    st = proc_stat(root)
    if st:
        out[root] = st[2]
    while todo:
        for pid, start in children.get(todo.pop(), []):
            if pid not in out:
                out[pid] = start
                todo.append(pid)
    return out


def still_running(procs):
    """Processes of a recorded set that still run (zombies waiting for init do not count)."""
    alive = []
    for pid, start in procs.items():
        st = proc_stat(pid)
        if st and st[2] == start and st[0] != "Z":
            alive.append(pid)
    return alive


def cgroups_of(pid):
    """Sandbox cgroups named after a manager pid ("<pid>.<start>.<seq>"), v1 or v2."""
    out = []
    for line in open("/proc/self/cgroup"):
        _, ctrl, path = line.strip().split(":", 2)
        base = ("/sys/fs/cgroup/%s%s/corral" % (ctrl, path)).replace("//", "/")
        if ctrl.startswith("name="):
            continue
        if os.path.isdir(base):
            out += [os.path.join(base, d) for d in os.listdir(base)
                    if d.startswith("%d." % pid)]
    return out


class Server:
    """A `corral serve` on a free loopback port with two API keys; stop() sends SIGTERM."""

    def __init__(self, *args, keys=(KEY_A, KEY_B)):
        self.tmp = TempDir()
        self.dir = self.tmp.__enter__()
        self.keyfile = os.path.join(self.dir, "keys")
        with open(self.keyfile, "w") as f:
            f.write("# test keys\n\n" + "\n".join(keys) + "\n")
        os.chmod(self.keyfile, 0o600)
        self.rundir = os.path.join(self.dir, "run")
        os.mkdir(self.rundir, 0o711)
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log = os.path.join(self.dir, "serve.log")
        self.args = ["serve", "--listen", "127.0.0.1:%d" % self.port, "--api-keys",
                     self.keyfile, "--runtime-dir", self.rundir] + list(args)
        self.start()

    def start(self):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen([CORRAL] + self.args, env=ENV, stdout=subprocess.DEVNULL,
                                     stderr=self.logf)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("corral serve exited %s:\n%s" % (self.proc.returncode,
                                                                       self.log_text()[-3000:]))
            try:
                h = self.client().health()
                if h["status"] == "ok":
                    return
            except (OSError, corral_client.CorralError, http.client.HTTPException):
                pass
            time.sleep(0.1)
        raise AssertionError("corral serve did not answer /healthz")

    def client(self, key=KEY_A):
        return corral_client.Client(self.url, key)

    def wait_warm(self, n, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.client().health().get("warm", 0) >= n:
                return
            time.sleep(0.1)

    def raw(self, method, path, body=None, headers=None, key=KEY_A, source=None):
        """One request on a fresh http.client connection: (status, headers, body bytes)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60,
                                       source_address=(source, 0) if source else None)
        h = {"Authorization": "Bearer " + key} if key else {}
        h.update(headers or {})
        try:
            c.request(method, path, body=body, headers=h,
                      encode_chunked=h.get("Transfer-Encoding") == "chunked")
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def log_text(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode

    def close(self):
        """Stops the server; its log must hold no sanitizer report (a front that aborted under
        UBSan would otherwise pass unnoticed when no request happened to need it)."""
        self.stop()
        text = self.log_text()
        # keep the server's log for a failed run's post-mortem
        logs = os.environ.get("CORRAL_TEST_LOGS", os.path.join(ROOT, "build", "test-logs"))
        try:
            os.makedirs(logs, exist_ok=True)
            with open(self.log, "rb") as src, \
                    open(os.path.join(logs, "serve-%d.log" % self.port), "wb") as dst:
                dst.write(src.read())
        except OSError:
            pass
        self.tmp.__exit__(None, None, None)
        for marker in ("runtime error:", "AddressSanitizer", "LeakSanitizer"):
            if marker in text:
                i = text.index(marker)
                raise AssertionError("corral serve's log has a sanitizer report:\n" +
                                     text[max(0, i - 200):i + 2000])


SRV = None


def setUpModule():
    global SRV
    require(os.geteuid() == 0, "corral serve runs as root")
    require(os.path.exists(os.path.join(BUILD, "corral-ext.so")), "corral-ext.so is built")
    SRV = Server("--max-sandboxes", "48", "--warm", "4", "--header-timeout", "3s")


def tearDownModule():
    if SRV:
        SRV.close()


def error_of(body):
    e = json.loads(body)["error"]
    return e["code"], e["message"]


class NativeApi(unittest.TestCase):
    asan_subset = True

    def test_round_trip(self):
        c = SRV.client()
        sb = c.create(metadata={"owner": "test"})
        self.assertTrue(sb.id.startswith("sb_") and len(sb.id) == 19, sb.id)
        self.assertIn("expires_at", sb.info)
        self.assertEqual(sb.info["metadata"], {"owner": "test"})
        # streamed: NDJSON, one object per line, the final event last
        events = list(sb.stream("import sys\nfor i in range(3): print(i, flush=True)\n"
                                "print('e', file=sys.stderr)\nx = 41\nx + 1"))
        self.assertEqual(events[-1]["type"], "final")
        self.assertEqual(events[-1]["status"], "ok")
        self.assertEqual([e["type"] for e in events].count("final"), 1)
        out = "".join(e["text"] for e in events if e["type"] == "stdout")
        self.assertEqual(out, "0\n1\n2\n")
        self.assertIn("e\n", [e["text"] for e in events if e["type"] == "stderr"])
        res = [e for e in events if e["type"] == "result"]
        self.assertEqual(res[0]["data"]["text/plain"], "42")
        # aggregated, and the state persisted
        r = sb.execute("print(x)\nraise ValueError('boom')")
        self.assertEqual(r["stdout"], "41\n")
        self.assertEqual(r["error"]["name"], "ValueError")
        self.assertEqual(r["final"]["status"], "error")
        self.assertTrue(r["final"]["session_alive"])
        # files: all 256 byte values, 1 MiB
        blob = bytes(range(256)) * 4096
        self.assertEqual(sb.upload_file("/home/user/all.bin", blob)["size"], len(blob))
        self.assertEqual(sb.download_file("/home/user/all.bin"), blob)
        r = sb.execute("open('all.bin', 'rb').read() == bytes(range(256)) * 4096")
        self.assertEqual(r["results"][0]["data"]["text/plain"], "True")
        names = {e["name"]: e for e in sb.files("/home/user")}
        self.assertEqual(names["all.bin"]["size"], len(blob))
        self.assertEqual(names["all.bin"]["type"], "file")
        sb.upload_file("/tmp/sub/dir/t.txt", b"nested")
        self.assertEqual(sb.download_file("/tmp/sub/dir/t.txt"), b"nested")
        sb.delete_file("/home/user/all.bin")
        self.assertNotIn("all.bin", [e["name"] for e in sb.files()])
        with self.assertRaises(corral_client.CorralError) as cm:
            sb.download_file("/home/user/all.bin")
        self.assertEqual(cm.exception.status, 404)
        # the sandbox is listed, then deleted
        self.assertIn(sb.id, [s["id"] for s in c.list()])
        info = sb.refresh()
        self.assertGreaterEqual(info["usage"]["cells"], 3)
        sb.cleanup()
        st, _, body = SRV.raw("GET", "/v1/sandboxes/" + sb.id)
        self.assertEqual(st, 404)
        self.assertNotIn(sb.id, [s["id"] for s in c.list()])

    def test_dataframe_and_figure(self):
        with corral_client.create(SRV.url, KEY_A) as sb:
            r = sb.execute("import pandas as pd\nimport matplotlib.pyplot as plt\n"
                           "plt.plot([1, 2, 3]); plt.show()\n"
                           "pd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})")
            self.assertEqual(r["final"]["status"], "ok", r)
            pngs = [e for e in r["results"] if "image/png" in e.get("data", {})]
            self.assertEqual(len(pngs), 1, r["results"])
            self.assertEqual(base64.b64decode(pngs[0]["data"]["image/png"])[:8],
                             b"\x89PNG\r\n\x1a\n")
            tables = [e for e in r["results"]
                      if "application/vnd.corral.table+json" in e.get("data", {})]
            t = tables[0]["data"]["application/vnd.corral.table+json"]
            self.assertEqual(t["columns"], ["a", "b"])
            self.assertEqual(t["rows"], [[1, "x"], [2, "y"]])

    def test_stateless_mode_and_binary_stdout(self):
        with corral_client.create(SRV.url, KEY_A, mode="stateless") as sb:
            r = sb.execute("x = 1")
            self.assertEqual(r["final"]["status"], "ok")
            r = sb.execute("print(x)")
            self.assertEqual(r["error"]["name"], "NameError")
            events = list(sb.stream("import sys; sys.stdout.buffer.write(b'\\xff\\x00ok');"
                                    " sys.stdout.flush()"))
            raw = b"".join(base64.b64decode(e["text"]) if e.get("encoding") == "base64"
                           else e["text"].encode() for e in events if e["type"] == "stdout")
            self.assertEqual(raw, b"\xff\x00ok")

    def test_expiry_and_extension(self):
        c = SRV.client()
        short = c.create(timeout_s=2)
        longer = c.create(timeout_s=2)
        info = longer.set_timeout(120)
        self.assertGreater(info["expires_at"], short.info["expires_at"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            st, _, _ = SRV.raw("GET", "/v1/sandboxes/" + short.id)
            if st == 404:
                break
            time.sleep(0.25)
        self.assertEqual(st, 404, "a sandbox with timeout_s=2 outlived 30 s")
        self.assertEqual(longer.execute("print('alive')")["stdout"], "alive\n")
        with self.assertRaises(corral_client.CorralError) as cm:
            short.execute("1")
        self.assertEqual(cm.exception.status, 404)
        longer.cleanup()

    def test_concurrent_sessions_no_crosstalk(self):
        n = 32
        c = SRV.client()
        boxes = [None] * n

        def make(i):
            boxes[i] = corral_client.create(SRV.url, KEY_A)
        ts = [threading.Thread(target=make, args=(i,)) for i in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertTrue(all(boxes), "some creates failed")
        barrier = threading.Barrier(n)
        results = [None] * n

        def work(i):
            tok = secrets.token_hex(8)
            code = ("import time\ntoken = %r\nopen('/home/user/token', 'w').write(token)\n"
                    "time.sleep(1.0)\nprint(token, open('/home/user/token').read())" % tok)
            barrier.wait(timeout=60)
            r = boxes[i].execute(code)
            got_file = boxes[i].download_file("/home/user/token").decode()
            results[i] = (tok, r, got_file)
        ts = [threading.Thread(target=work, args=(i,)) for i in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for i, (tok, r, got_file) in enumerate(results):
            self.assertEqual(r["final"]["status"], "ok", r)
            self.assertEqual(r["stdout"], "%s %s\n" % (tok, tok))
            self.assertEqual(got_file, tok)
        for b in boxes:
            b.cleanup()
        c.close()

    def test_disconnect_interrupts_the_cell(self):
        with corral_client.create(SRV.url, KEY_A) as sb:
            conn = http.client.HTTPConnection("127.0.0.1", SRV.port, timeout=30)
            conn.request("POST", "/v1/sandboxes/%s/execute" % sb.id,
                         body=json.dumps({"code": "import time\nprint('start', flush=True)\n"
                                                  "time.sleep(60)"}),
                         headers={"Authorization": "Bearer " + KEY_A})
            resp = conn.getresponse()
            self.assertEqual(json.loads(resp.readline())["type"], "stdout")
            conn.sock.shutdown(socket.SHUT_RDWR)
            conn.close()
            # the cell is interrupted: the sandbox takes a new cell long before 60 s
            deadline = time.monotonic() + 20
            while True:
                try:
                    r = sb.execute("print('next')")
                    break
                except corral_client.CorralError as e:
                    self.assertEqual(e.status, 409)
                    self.assertLess(time.monotonic(), deadline, "still busy after 20 s")
                    time.sleep(0.2)
            self.assertEqual(r["stdout"], "next\n")

    def test_health_and_metrics(self):
        c = SRV.client()
        self.assertEqual(c.health()["status"], "ok")

        def scrape():
            m = {}
            for line in c.metrics().splitlines():
                if line and not line.startswith("#"):
                    name, value = line.rsplit(" ", 1)
                    m[name] = float(value)
            return m
        before = scrape()
        with corral_client.create(SRV.url, KEY_A) as sb:
            sb.execute("1")
        SRV.raw("GET", "/v1/sandboxes", key="wrong-key-0123456789")
        after = scrape()
        for name in ("corral_sandboxes_live", "corral_warm_sessions_ready",
                     "corral_execution_duration_seconds_count",
                     'corral_requests_refused_total{reason="capacity"}'):
            self.assertIn(name, after)
        self.assertGreater(after["corral_sandboxes_created_total"],
                           before["corral_sandboxes_created_total"])
        self.assertGreater(after['corral_executions_total{status="ok"}'],
                           before['corral_executions_total{status="ok"}'])
        self.assertGreater(after['corral_requests_refused_total{reason="auth"}'],
                           before['corral_requests_refused_total{reason="auth"}'])
        key = 'corral_http_requests_total{route="POST /v1/sandboxes",status="201"}'
        self.assertGreater(after[key], before.get(key, 0))
        self.assertGreaterEqual(after['corral_execution_duration_seconds_bucket{le="+Inf"}'],
                                after['corral_execution_duration_seconds_bucket{le="0.0005"}'])

    def test_openapi_lists_exactly_the_routes(self):
        p = subprocess.run([CORRAL, "serve", "--print-routes"], env=ENV, capture_output=True,
                           check=True)
        lines = [l.split(" ") for l in p.stdout.decode().splitlines() if l]
        self.assertEqual({l[2] for l in lines}, {"native", "e2b", "envd", "interpreter"})
        served = {(m, path.replace("*}", "}")) for m, path, family in lines
                  if family == "native"}
        with open(os.path.join(ROOT, "docs", "openapi.json")) as f:
            spec = json.load(f)
        self.assertTrue(spec["openapi"].startswith("3.0"))
        documented = {(m.upper(), path) for path, ops in spec["paths"].items()
                      for m in ops if m in ("get", "put", "post", "delete", "patch", "head")}
        self.assertEqual(served, documented)

    def test_request_log_lines(self):
        secret = "never-log-me-" + secrets.token_hex(6)
        with corral_client.create(SRV.url, KEY_A) as sb:
            sb.execute("s = %r" % secret)
            sb.upload_file("/home/user/s.txt", secret.encode())
        time.sleep(0.2)
        text = SRV.log_text()
        self.assertNotIn(secret, text)
        lines = [json.loads(l) for l in text.splitlines() if l.startswith('{"ts"')]
        ex = [l for l in lines if l.get("route") == "POST /v1/sandboxes/{id}/execute"]
        self.assertTrue(ex, "no request log line for execute")
        for k in ("ts", "request_id", "method", "route", "sandbox", "status", "duration_ms",
                  "bytes"):
            self.assertIn(k, ex[-1])

    def test_a_client_names_its_request(self):
        """X-Request-Id: a client's own (1-64 of [A-Za-z0-9._:-]) is echoed and logged; any
        other is replaced by one of ours, so nothing a client sends reaches a log line."""
        mine = "bench-7:retry.2_" + secrets.token_hex(4)
        st, h, _ = SRV.raw("GET", "/v1/sandboxes", headers={"X-Request-Id": mine})
        self.assertEqual((st, h.get("X-Request-Id")), (200, mine))
        for bad in ("a" * 65, "two words", 'q"uote', "new\\nline", "", "caf\u00e9"):
            st, h, _ = SRV.raw("GET", "/v1/sandboxes",
                               headers={"X-Request-Id": bad.encode("utf-8")})
            self.assertEqual(st, 200, repr(bad))
            self.assertRegex(h.get("X-Request-Id", ""), r"^req_[0-9a-f]{16}$", repr(bad))
        time.sleep(0.2)
        ids = [json.loads(l)["request_id"] for l in SRV.log_text().splitlines()
               if l.startswith('{"ts"')]
        self.assertIn(mine, ids)
        self.assertFalse([i for i in ids if " " in i or '"' in i or len(i) > 64])


class Auth(unittest.TestCase):
    asan_subset = True

    def test_401_reveals_nothing(self):
        for key in (None, "wrong-key-0123456789", KEY_A + "x", KEY_A[:-1]):
            for method, path in (("GET", "/v1/sandboxes"), ("POST", "/v1/sandboxes"),
                                 ("GET", "/v1/sandboxes/sb_0123456789abcdef"),
                                 ("GET", "/metrics")):
                st, h, body = SRV.raw(method, path, body=b"{}" if method == "POST" else None,
                                      key=key)
                self.assertEqual(st, 401, (key, path))
                self.assertEqual(json.loads(body), {"error": {
                    "code": "unauthorized", "message": "missing or invalid API key"}})
        st, _, _ = SRV.raw("GET", "/v1/sandboxes", headers={"Authorization": "Basic " + KEY_A},
                           key=None)
        self.assertEqual(st, 401)
        # /healthz needs no key
        self.assertEqual(SRV.raw("GET", "/healthz", key=None)[0], 200)

    def test_other_keys_sandboxes_do_not_exist(self):
        with corral_client.create(SRV.url, KEY_A) as sb:
            b = SRV.client(KEY_B)
            self.assertNotIn(sb.id, [s["id"] for s in b.list()])
            for method, tail, body in (("GET", "", None), ("DELETE", "", None),
                                       ("POST", "/execute", b'{"code": "1"}'),
                                       ("GET", "/files/home/user/x", None),
                                       ("POST", "/timeout", b'{"timeout_s": 5}')):
                st, _, rb = SRV.raw(method, "/v1/sandboxes/%s%s" % (sb.id, tail), body=body,
                                    key=KEY_B)
                self.assertEqual(st, 404, (method, tail))
                self.assertEqual(error_of(rb)[0], "not_found")
            # unchanged for its owner
            self.assertEqual(sb.execute("print(1)")["stdout"], "1\n")


class BadInput(unittest.TestCase):
    asan_subset = True

    @classmethod
    def setUpClass(cls):
        cls.sb = corral_client.create(SRV.url, KEY_A)
        cls.base = "/v1/sandboxes/" + cls.sb.id

    @classmethod
    def tearDownClass(cls):
        cls.sb.cleanup()

    def expect(self, status, method, path, body=None, headers=None, code=None):
        st, h, rb = SRV.raw(method, path, body=body, headers=headers)
        self.assertEqual(st, status, (method, path, rb[:300]))
        if status >= 400:
            c, msg = error_of(rb)
            if code:
                self.assertEqual(c, code, msg)
        return h, rb

    def test_malformed_json_and_wrong_types(self):
        for body in (b"{bad", b"[]", b"null", b'{"mode": 3}', b'{"timeout_s": "x"}',
                     b'{"limits": {"memory": "lots"}}', b'{"unknown": 1}', b"\xff\xfe",
                     b'{"env": {"A B": "x"}}', b'{"metadata": {"k": 1}}'):
            self.expect(400, "POST", "/v1/sandboxes", body, code="invalid_argument")
        for body in (b"{", b'{"code": 5}', b'{"code": "1", "timeout_s": -1}', b"{}",
                     b'{"code": "1", "context": "../x"}'):
            self.expect(400, "POST", self.base + "/execute", body)
        self.expect(400, "POST", self.base + "/timeout", b'{"timeout_s": "soon"}')

    def test_unknown_ids_routes_and_methods(self):
        for sid in ("sb_0000000000000000", "sb_zz", "..", "%2e%2e", "x" * 300):
            self.expect(404, "GET", "/v1/sandboxes/" + sid, code="not_found")
            self.expect(404, "POST", "/v1/sandboxes/%s/execute" % sid, b'{"code": "1"}')
        self.expect(404, "GET", "/v2/anything", code="not_found")
        h, _ = self.expect(405, "PATCH", self.base, code="method_not_allowed")
        self.assertIn("GET", h.get("Allow", ""))

    def test_traversal_is_refused(self):
        for path in ("/files/..%2F..%2Fetc%2Fpasswd", "/files/home/user/../../etc/passwd",
                     "/files/%2e%2e/%2e%2e/etc/passwd", "/files//etc/passwd",
                     "/files/%2Fetc%2Fpasswd", "/files/home/user/a%00b", "/files/home//x"):
            self.expect(400, "GET", self.base + path, code="invalid_path")
            self.expect(400, "PUT", self.base + path, b"x", code="invalid_path")
        self.expect(403, "GET", self.base + "/files/etc/passwd", code="forbidden")
        self.expect(403, "PUT", self.base + "/files/etc/evil", b"x", code="forbidden")
        self.expect(400, "GET", self.base + "/files?dir=..%2Fetc")

    def test_planted_symlink_is_not_followed(self):
        with open("/etc/passwd", "rb") as f:
            before = hashlib.sha256(f.read()).hexdigest()
        r = self.sb.execute("import os\nos.symlink('/etc/passwd', '/home/user/link')\n"
                            "os.symlink('/etc', '/home/user/etcdir')")
        self.assertEqual(r["final"]["status"], "ok", r)
        _, body = self.expect(403, "GET", self.base + "/files/home/user/link")
        self.assertNotIn(b"root:", body)
        self.expect(403, "PUT", self.base + "/files/home/user/link", b"owned\n")
        # through a symlinked directory: refused (403, or 400 "not a directory")
        for method, path, body in (("PUT", "/files/home/user/etcdir/evil", b"owned\n"),
                                   ("GET", "/files/home/user/etcdir/passwd", None),
                                   ("GET", "/files?dir=/home/user/etcdir", None)):
            st, _, rb = SRV.raw(method, self.base + path, body=body)
            self.assertIn(st, (400, 403), (path, rb))
            self.assertNotIn(b"root:", rb)
        with open("/etc/passwd", "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), before)
        self.assertFalse(os.path.exists("/etc/evil"))

    def test_oversized_bodies(self):
        # a JSON body announcing more than the cap: 413 before a byte of it is read
        c = http.client.HTTPConnection("127.0.0.1", SRV.port, timeout=30)
        c.putrequest("POST", self.base + "/execute")
        c.putheader("Authorization", "Bearer " + KEY_A)
        c.putheader("Content-Length", str(3 << 20))
        c.endheaders()
        r = c.getresponse()
        self.assertEqual(r.status, 413)
        self.assertEqual(error_of(r.read())[0], "too_large")
        c.close()
        # the same without a length (chunked): read, dropped, then 413
        big = iter([b'{"code": "', b"a" * (3 << 20), b'"}'])
        self.expect(413, "POST", self.base + "/execute", big,
                    headers={"Transfer-Encoding": "chunked"}, code="too_large")
        # an upload announcing more than the cap is refused before a byte is read
        c = http.client.HTTPConnection("127.0.0.1", SRV.port, timeout=30)
        c.putrequest("PUT", self.base + "/files/home/user/huge")
        c.putheader("Authorization", "Bearer " + KEY_A)
        c.putheader("Content-Length", str(300 << 20))
        c.endheaders()
        r = c.getresponse()
        self.assertEqual(r.status, 413)
        self.assertEqual(error_of(r.read())[0], "too_large")
        c.close()
        # an upload without a length is refused (411)
        c = http.client.HTTPConnection("127.0.0.1", SRV.port, timeout=30)
        c.putrequest("PUT", self.base + "/files/home/user/chunked")
        c.putheader("Authorization", "Bearer " + KEY_A)
        c.putheader("Transfer-Encoding", "chunked")
        c.endheaders()
        c.send(b"5\r\nhello\r\n0\r\n\r\n")
        r = c.getresponse()
        self.assertEqual(r.status, 411)
        c.close()
        # the server still serves
        self.assertEqual(self.sb.execute("print(1)")["stdout"], "1\n")

    def test_slow_loris_is_cut_off(self):
        s = socket.create_connection(("127.0.0.1", SRV.port))
        s.setblocking(True)
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
        cut = False
        t0 = time.monotonic()
        for i, byte in enumerate(head):
            try:
                s.send(bytes([byte]))
                if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                    cut = True
                    break
            except BlockingIOError:
                pass  # nothing to read: still connected
            except (ConnectionResetError, BrokenPipeError):
                cut = True
                break
            # meanwhile everyone else is served
            if i % 10 == 0:
                self.assertEqual(SRV.raw("GET", "/healthz", key=None)[0], 200)
            time.sleep(0.2)
            if time.monotonic() - t0 > 20:
                break
        s.close()
        self.assertTrue(cut, "a client trickling its request head was never cut off")
        # cut by the head deadline (3 s here), not at once
        self.assertGreater(i, 5)

    def test_many_open_connections(self):
        socks = []
        try:
            for _ in range(600):
                try:
                    socks.append(socket.create_connection(("127.0.0.1", SRV.port), timeout=5))
                except OSError:
                    break
            self.assertGreater(len(socks), 100)
            # another client (another loopback address) is still served
            self.assertEqual(SRV.raw("GET", "/healthz", key=None, source="127.0.0.2")[0], 200)
            st, _, _ = SRV.raw("GET", "/v1/sandboxes", source="127.0.0.2")
            self.assertEqual(st, 200)
        finally:
            for s in socks:
                s.close()
        # and once they are gone, everyone is served again
        deadline = time.monotonic() + 15
        while True:
            try:
                if SRV.raw("GET", "/healthz", key=None)[0] == 200:
                    break
            except OSError:
                pass
            self.assertLess(time.monotonic(), deadline, "the server did not recover")
            time.sleep(0.2)


class Capacity(unittest.TestCase):
    asan_subset = True

    def test_429_at_capacity_under_concurrent_creates(self):
        srv = Server("--max-sandboxes", "3", "--warm", "1")
        try:
            barrier = threading.Barrier(8)
            results = []
            lock = threading.Lock()

            def go():
                barrier.wait(timeout=30)
                r = srv.raw("POST", "/v1/sandboxes", b"{}")
                with lock:
                    results.append(r)
            ts = [threading.Thread(target=go) for _ in range(8)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            codes = sorted(st for st, _, _ in results)
            self.assertEqual(codes, [201] * 3 + [429] * 5, results)
            for st, h, body in results:
                if st == 429:
                    self.assertTrue(h.get("Retry-After"), h)
                    self.assertEqual(error_of(body)[0], "capacity")
            c = srv.client()
            self.assertEqual(len(c.list()), 3)
            self.assertEqual(c.health()["sandboxes"], 3)
            # one deleted: one more fits, and never a fourth
            sid = json.loads([b for st, _, b in results if st == 201][0])["id"]
            self.assertEqual(srv.raw("DELETE", "/v1/sandboxes/" + sid)[0], 204)
            self.assertEqual(srv.raw("POST", "/v1/sandboxes", b"{}")[0], 201)
            self.assertEqual(srv.raw("POST", "/v1/sandboxes", b"{}")[0], 429)
            self.assertEqual(c.health()["sandboxes"], 3)
        finally:
            srv.close()


class Lifecycle(unittest.TestCase):
    asan_subset = True

    def _populate(self, srv, n=2):
        c = srv.client()
        boxes = [c.create() for _ in range(n)]
        for b in boxes:
            self.assertEqual(b.execute("print(1)")["stdout"], "1\n")
        srv.wait_warm(1)
        procs = descendants(srv.proc.pid)
        self.assertGreaterEqual(len(procs), 2 + n, procs)  # manager, front, zygote, sessions
        return procs

    def test_sigterm_destroys_every_sandbox(self):
        srv = Server("--warm", "1")
        try:
            pid = srv.proc.pid
            procs = self._populate(srv)
            self.assertTrue(cgroups_of(pid) or not os.path.isdir("/sys/fs/cgroup"))
            self.assertEqual(srv.stop(), 0, srv.log_text()[-2000:])
            time.sleep(0.5)
            self.assertEqual(still_running(procs), [])
            self.assertEqual(cgroups_of(pid), [])
            self.assertEqual(os.listdir(srv.rundir), [])
        finally:
            srv.close()

    def test_sigkill_then_restart_leaves_nothing(self):
        srv = Server("--warm", "1")
        try:
            old = srv.proc.pid
            procs = self._populate(srv)
            self.assertTrue(os.path.isdir(os.path.join(srv.rundir, str(old))))
            srv.stop(signal.SIGKILL)
            deadline = time.monotonic() + 10
            while still_running(procs) and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertEqual(still_running(procs), [], "processes outlived a SIGKILLed server")
            srv.start()  # same runtime dir: the new instance sweeps the old one's leftovers
            self.assertEqual(cgroups_of(old), [])
            self.assertFalse(os.path.exists(os.path.join(srv.rundir, str(old))))
            self.assertEqual(os.listdir(srv.rundir), [str(srv.proc.pid)])
            with corral_client.create(srv.url, KEY_A) as sb:
                self.assertEqual(sb.execute("print(2)")["stdout"], "2\n")
        finally:
            srv.close()

    def test_refuses_public_address_without_keys_and_open_key_files(self):
        p = subprocess.run([CORRAL, "serve", "--listen", "0.0.0.0:%d" % free_port(),
                            "--runtime-dir", "/run/corral-serve-test"], env=ENV,
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 125)
        self.assertIn(b"--api-keys", p.stderr)
        with TempDir() as d:
            kf = os.path.join(d, "keys")
            with open(kf, "w") as f:
                f.write(KEY_A + "\n")
            os.chmod(kf, 0o644)
            p = subprocess.run([CORRAL, "serve", "--listen", "127.0.0.1:%d" % free_port(),
                                "--api-keys", kf, "--runtime-dir", "/run/corral-serve-test"],
                               env=ENV, capture_output=True, timeout=60)
            self.assertEqual(p.returncode, 125)
            self.assertIn(b"chmod 600", p.stderr)
        if os.path.isdir("/run/corral-serve-test"):
            self.assertEqual(os.listdir("/run/corral-serve-test"), [])
            os.rmdir("/run/corral-serve-test")


if __name__ == "__main__":
    unittest.main()
