"""The E2B-compatible surface of `corral serve`, driven by the official SDKs from npm.

`SDK` runs tests/node/e2b_sdk.mjs (npm `e2b` and `@e2b/code-interpreter`, unmodified, pointed
at corral with their documented settings: E2B_API_URL, E2B_SANDBOX_URL, an e2b_<hex> key)
scenario by scenario and asserts on what the SDK returned or threw.  `Wire` checks over raw
HTTP what the SDKs never send: forged or missing access tokens, other tenants, paging,
Connect error framing, E2B's host-based addressing, chunked uploads and their caps.
"""
import base64
import hashlib
import http.client
import json
import os
import secrets
import shutil
import socket
import struct
import subprocess
import time
import unittest

from harness import BUILD, ROOT, require
from test_serve import Server

KEY = "e2b_" + secrets.token_hex(16)
OTHER = "e2b_" + secrets.token_hex(16)
NATIVE_ONLY = "native-" + secrets.token_hex(12)
NODE_DIR = os.path.join(ROOT, "tests", "node")
SRV = None


def setUpModule():
    global SRV
    require(os.geteuid() == 0, "corral serve runs as root")
    require(os.path.exists(os.path.join(BUILD, "corral-ext.so")), "corral-ext.so is built")
    require(shutil.which("node") is not None, "node is installed (make deps)")
    for pkg in ("e2b", "@e2b/code-interpreter"):
        require(os.path.isdir(os.path.join(NODE_DIR, "node_modules", pkg)),
                "npm package %s is installed in tests/node (make deps)" % pkg)
    SRV = Server("--max-sandboxes", "16", "--warm", "2", "--max-upload", "4M",
                 keys=(KEY, OTHER, NATIVE_ONLY))


def tearDownModule():
    if SRV:
        SRV.close()


def scenario(name, key=KEY, timeout=240):
    env = dict(os.environ, E2B_API_KEY=key, E2B_API_URL=SRV.url, E2B_SANDBOX_URL=SRV.url)
    for k in ("E2B_DEBUG", "E2B_DOMAIN", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
              "https_proxy"):
        env.pop(k, None)
    p = subprocess.run(["node", os.path.join(NODE_DIR, "e2b_sdk.mjs"), name], cwd=NODE_DIR,
                       env=env, capture_output=True, timeout=timeout)
    lines = p.stdout.decode("utf-8", "replace").strip().splitlines()
    if p.returncode != 0 or not lines:
        raise AssertionError("node exited %d:\n%s\n%s\nserver log:\n%s" % (
            p.returncode, p.stdout.decode()[-2000:], p.stderr.decode()[-3000:], server_log()))
    out = json.loads(lines[-1])
    if "__threw" in out:
        raise AssertionError("the scenario threw: %s\nserver log:\n%s\nso far: %s" % (
            json.dumps(out["__threw"]), server_log(), json.dumps(out, indent=1)[:4000]))
    return out


def server_log(lines=12):
    """The server's last log lines, for a failure's message: what it answered, and why."""
    return "\n".join(SRV.log_text().splitlines()[-lines:])


class SDK(unittest.TestCase):
    asan_subset = True

    def test_lifecycle(self):
        r = scenario("lifecycle")
        info = r["info"]
        self.assertEqual(info["sandboxId"], r["id"])
        self.assertEqual(info["metadata"], {"suite": "lifecycle", "run": info["metadata"]["run"]})
        self.assertEqual(info["state"], "running")
        self.assertEqual(info["memoryMB"], 512)
        self.assertAlmostEqual(info["endAt"] - info["startedAt"], 60000, delta=2000)
        self.assertEqual(r["listed"], [r["id"]])
        self.assertEqual(r["listed_other"], 0)
        self.assertEqual(r["paused_only"], 0)
        # setTimeout(600 s) about 1 s after a 60 s start: the end moves by ~540 s
        self.assertAlmostEqual(r["extended_ms"], 540000, delta=5000)
        self.assertEqual(r["env_from_create"], "hello from create\n")
        self.assertTrue(r["running"])
        self.assertEqual(r["metrics"], {"ok": True, "value": 1})
        self.assertTrue(r["kill"])
        self.assertFalse(r["kill_again"])
        self.assertFalse(r["running_after"])
        self.assertEqual(r["connect_after"]["error"], "SandboxNotFoundError")
        self.assertEqual(r["info_after"]["error"], "SandboxNotFoundError")

    def test_commands(self):
        r = scenario("commands")
        self.assertEqual(r["simple"], {"exitCode": 0, "stdout": "out\n/home/user\nsandbox\n",
                                       "stderr": "err\n"})
        f = r["failing"]
        self.assertEqual((f["error"], f["exitCode"], f["stdout"], f["stderr"]),
                         ("CommandExitError", 7, "partial\n", "bad\n"))
        self.assertEqual(r["envs_cwd"], "x-y z\n/tmp\n")
        self.assertEqual("".join(r["streamed"]), "line1\nline2\nline3\n")
        self.assertGreaterEqual(len(r["streamed"]), 2, "output arrives as it is written")
        self.assertEqual(r["python"], "pandas\n")
        self.assertEqual(r["timeout"]["error"], "TimeoutError")
        self.assertEqual(r["after_timeout"], "alive\n")
        self.assertEqual(r["list_during"], [{"pid": r["bg_pid"], "cmd": "/bin/bash",
                                             "args": ["-l", "-c", "sleep 30"]}])
        self.assertEqual(r["busy"], {"ok": False, "error": "SandboxError",
                                     "message": "409 Conflict"})
        self.assertTrue(r["kill_bg"])
        self.assertEqual((r["bg_result"]["error"], r["bg_result"]["exitCode"]),
                         ("CommandExitError", -1))
        self.assertEqual(r["list_after"], 0)
        self.assertFalse(r["kill_unknown"])
        self.assertIn("permission_denied", r["as_root"]["message"])
        self.assertIn("unimplemented", r["stdin"]["message"])

    def test_files(self):
        r = scenario("files")
        self.assertEqual(r["write_text"], {"path": "/home/user/notes/hello.txt",
                                           "name": "hello.txt", "type": "file"})
        self.assertEqual(r["read_text"], "Hello, corral \u2713")
        self.assertEqual(r["read_abs"], r["read_text"])
        self.assertEqual(r["bytes_len"], 1 << 20)
        self.assertTrue(r["bytes_same"])
        expect = hashlib.sha256(bytes(i % 256 for i in range(1 << 20))).hexdigest()
        self.assertEqual(r["seen_inside"], expect)
        self.assertEqual(r["empty"], {"ok": True, "value": ""})
        self.assertEqual([m["path"] for m in r["multi"]], ["/home/user/m/a.txt",
                                                          "/home/user/m/b.txt"])
        self.assertEqual(r["list"], [
            {"name": "empty.txt", "type": "file", "path": "/home/user/empty.txt", "size": 0},
            {"name": "m", "type": "dir", "path": "/home/user/m", "size": 0},
            {"name": "notes", "type": "dir", "path": "/home/user/notes", "size": 0}])
        self.assertEqual(r["list_deep"], ["/home/user/empty.txt", "/home/user/m",
                                          "/home/user/m/a.txt", "/home/user/m/b.txt",
                                          "/home/user/notes", "/home/user/notes/hello.txt"])
        self.assertEqual(r["exists"], [True, False])
        self.assertEqual(r["stat"], {"name": "hello.txt", "type": "file", "size": 17,
                                     "path": "/home/user/notes/hello.txt"})
        self.assertEqual(r["mkdir"], [True, False])
        self.assertEqual(r["rename"], {"ok": True, "value": "/home/user/made/a2.txt"})
        self.assertEqual(r["renamed_read"], "A")
        self.assertFalse(r["removed"])
        self.assertEqual(r["missing"]["error"], "FileNotFoundError")
        self.assertIn("'..' component", r["traversal"]["message"])
        for k in ("outside", "write_outside"):
            self.assertIn("403: path", r[k]["message"])
        self.assertIn("403", r["planted"]["message"])
        self.assertIn("403: user 'root' does not exist", r["as_root"]["message"])
        self.assertIn("unimplemented", r["watch"]["message"])
        self.assertEqual(r["metadata"]["error"], "TemplateError")

    def test_interpreter(self):
        r = scenario("interpreter")
        self.assertEqual(r["basic"], {"logs": {"stdout": ["hello\n"], "stderr": ["warn\n"]},
                                      "text": "42", "count": 1, "results": 1})
        self.assertEqual(r["callbacks"], ["hello\n"])
        self.assertEqual(r["state"], "82")
        df = r["dataframe"]
        self.assertEqual(df["formats"], ["html", "data"])
        self.assertTrue(df["main"] and df["html_has_table"])
        self.assertEqual(df["data"], {"region": ["north", "south"], "sales": [10, 20]})
        self.assertIn("north", df["text"])
        self.assertEqual(r["figures"], [{"formats": ["png"], "png": True, "main": False}] * 2)
        e = r["error"]
        self.assertEqual((e["name"], e["value"]), ("ZeroDivisionError", "division by zero"))
        self.assertIn("return 1 / 0", e["traceback"])
        self.assertNotIn("corral_runner", e["traceback"])
        self.assertEqual(r["syntax"], "SyntaxError")
        self.assertEqual(r["ctx"]["language"], "python")
        self.assertEqual(r["ctx_value"], "'in ctx'")
        self.assertEqual(r["ctx_isolated"], "NameError")
        self.assertEqual(r["ctx_list"], ["default", r["ctx"]["id"]])
        self.assertEqual(r["ctx_restarted"], "NameError")
        self.assertEqual(r["ctx_removed"]["error"], "NotFoundError")
        self.assertEqual(r["ctx_list_after"], ["default"])
        for k in ("language", "ctx_cwd", "env_vars"):
            self.assertEqual(r[k]["message"], "400 Bad Request", k)
        self.assertEqual(r["client_timeout"]["error"], "TimeoutError")
        self.assertEqual(r["after_timeout"], {"ok": True, "value": "42"})
        self.assertEqual(r["files_from_code"], {"ok": True, "value": "a,b\n1,2\n"})

    def test_unsupported_features_fail_clearly(self):
        r = scenario("unsupported")
        self.assertIn("no network", r["internet"]["message"])
        self.assertIn("400: template 'no-such-template' does not exist", r["template"]["message"])
        self.assertIn("501: corral does not support pausing", r["pause"]["message"])
        self.assertIn("501: corral does not support snapshots", r["snapshot"]["message"])
        self.assertIn("pseudo-terminals are not supported", r["pty"]["message"])
        self.assertTrue(r["still_running"])

    def test_wrong_key(self):
        r = scenario("auth")
        self.assertEqual(r["create"]["error"], "AuthenticationError")
        self.assertEqual(r["list"]["error"], "AuthenticationError")


def envelope(obj):
    b = json.dumps(obj).encode()
    return b"\x00" + struct.pack(">I", len(b)) + b


def envelopes(body):
    """[(flags, message)] of a Connect stream."""
    out, i = [], 0
    while i < len(body):
        flags, n = body[i], struct.unpack(">I", body[i + 1:i + 5])[0]
        out.append((flags, json.loads(body[i + 5:i + 5 + n])))
        i += 5 + n
    return out


class Wire(unittest.TestCase):
    asan_subset = True

    @classmethod
    def setUpClass(cls):
        cls.sb = cls.create()

    @classmethod
    def tearDownClass(cls):
        SRV.raw("DELETE", "/sandboxes/" + cls.sb["sandboxID"], key=None,
                headers={"X-API-KEY": KEY})

    @staticmethod
    def create(key=KEY, **body):
        st, _, b = SRV.raw("POST", "/v2/sandboxes", json.dumps(body or {"timeout": 120}),
                           key=None, headers={"X-API-KEY": key})
        assert st == 201, (st, b)
        return json.loads(b)

    def data(self, method, path, body=None, token=None, sandbox=None, headers=None):
        h = {"E2b-Sandbox-Id": sandbox or self.sb["sandboxID"], "E2b-Sandbox-Port": "49983"}
        if token is not False:
            h["X-Access-Token"] = token or self.sb["envdAccessToken"]
        h.update(headers or {})
        return SRV.raw(method, path, body, key=None, headers=h)

    def test_created_object(self):
        self.assertEqual(set(self.sb), {"sandboxID", "templateID", "clientID", "envdVersion",
                                        "envdAccessToken", "trafficAccessToken", "domain"})
        self.assertEqual(self.sb["envdVersion"], "0.5.7")
        self.assertEqual(len(self.sb["envdAccessToken"]), 32)

    def test_data_plane_needs_the_sandbox_token(self):
        self.assertEqual(self.data("GET", "/health")[0], 204)
        st, _, b = self.data("GET", "/health", token=False)
        self.assertEqual((st, json.loads(b)["code"]), (401, 401))
        self.assertEqual(self.data("GET", "/health", token="0" * 32)[0], 401)
        other = self.create()
        try:
            # one sandbox's token opens no other sandbox
            self.assertEqual(self.data("GET", "/health", token=other["envdAccessToken"])[0], 401)
            self.assertEqual(self.data("GET", "/health", sandbox=other["sandboxID"],
                                       token=other["envdAccessToken"])[0], 204)
        finally:
            SRV.raw("DELETE", "/sandboxes/" + other["sandboxID"], key=None,
                    headers={"X-API-KEY": KEY})
        # a sandbox that ended: 502, which the SDKs read as "not running"
        self.assertEqual(self.data("GET", "/health", sandbox=other["sandboxID"],
                                   token=other["envdAccessToken"])[0], 502)
        self.assertEqual(self.data("GET", "/health", sandbox="sb_0123456789abcdef")[0], 502)
        st, _, b = self.data("POST", "/execute", json.dumps({"code": "1"}), token=False)
        self.assertEqual(st, 401)

    def test_tenants_do_not_see_each_other(self):
        sid = self.sb["sandboxID"]
        st, _, _ = SRV.raw("GET", "/sandboxes/" + sid, key=None, headers={"X-API-KEY": OTHER})
        self.assertEqual(st, 404)
        st, _, b = SRV.raw("GET", "/v2/sandboxes", key=None, headers={"X-API-KEY": OTHER})
        self.assertEqual((st, json.loads(b)), (200, []))
        st, _, _ = SRV.raw("DELETE", "/sandboxes/" + sid, key=None, headers={"X-API-KEY": OTHER})
        self.assertEqual(st, 404)
        # a key not of the e2b_<hex> form does not open the E2B surface ...
        st, _, b = SRV.raw("GET", "/v2/sandboxes", key=None, headers={"X-API-KEY": NATIVE_ONLY})
        self.assertEqual((st, json.loads(b)["code"]), (401, 401))
        # ... while an e2b_ key serves both: the native API sees the same sandbox
        st, _, b = SRV.raw("GET", "/v1/sandboxes/" + sid, key=KEY)
        self.assertEqual((st, json.loads(b)["id"]), (200, sid))

    def test_paging(self):
        made = [self.create(metadata={"page": "yes"}) for _ in range(3)]
        try:
            q = "/v2/sandboxes?metadata=" + "page%3Dyes" + "&limit=2"
            st, h, b = SRV.raw("GET", q, key=None, headers={"X-API-KEY": KEY})
            self.assertEqual((st, len(json.loads(b))), (200, 2))
            token = h.get("X-Next-Token")
            self.assertTrue(token)
            st, h, b = SRV.raw("GET", q + "&nextToken=" + token, key=None,
                               headers={"X-API-KEY": KEY})
            page2 = json.loads(b)
            self.assertEqual((st, len(page2)), (200, 1))
            self.assertNotIn("X-Next-Token", h)
            seen = {s["sandboxID"] for s in json.loads(SRV.raw(
                "GET", "/v2/sandboxes?metadata=page%3Dyes", key=None,
                headers={"X-API-KEY": KEY})[2])}
            self.assertEqual(seen, {m["sandboxID"] for m in made})
            st, _, b = SRV.raw("GET", "/v2/sandboxes?limit=0", key=None,
                               headers={"X-API-KEY": KEY})
            self.assertEqual(st, 400)
        finally:
            for m in made:
                SRV.raw("DELETE", "/sandboxes/" + m["sandboxID"], key=None,
                        headers={"X-API-KEY": KEY})

    def test_connect_framing_and_errors(self):
        h = {"Content-Type": "application/connect+json", "Connect-Protocol-Version": "1"}
        msg = {"process": {"cmd": "/bin/sh", "args": ["-c", "printf 'a\\0b'; exit 4"]}}
        st, rh, b = self.data("POST", "/process.Process/Start", envelope(msg), headers=h)
        self.assertEqual((st, rh["Content-Type"]), (200, "application/connect+json"))
        ev = envelopes(b)
        self.assertIn("start", ev[0][1]["event"])
        data = b"".join(base64.b64decode(m["event"]["data"]["stdout"]) for _, m in ev
                        if "data" in m.get("event", {}))
        self.assertEqual(data, b"a\0b")
        self.assertEqual(ev[-2][1]["event"]["end"], {"exitCode": 4, "exited": True,
                                                     "status": "exit status 4"})
        self.assertEqual(ev[-1], (2, {}))
        # a broken envelope: still a 200 stream, with the error at its end
        st, _, b = self.data("POST", "/process.Process/Start", b"\x00\x00\x00\x00\x09{}",
                             headers=h)
        ev = envelopes(b)
        self.assertEqual((st, ev[0][0], ev[0][1]["error"]["code"]), (200, 2, "invalid_argument"))
        # a program that does not exist
        st, _, b = self.data("POST", "/process.Process/Start",
                             envelope({"process": {"cmd": "/no/such"}}), headers=h)
        self.assertEqual(envelopes(b)[-1][1]["error"]["code"], "not_found")
        # unary calls answer errors as JSON with a Connect code
        st, _, b = self.data("POST", "/filesystem.Filesystem/Stat", json.dumps({"path": 5}),
                             headers={"Content-Type": "application/json"})
        self.assertEqual((st, json.loads(b)["code"]), (400, "invalid_argument"))
        st, _, b = self.data("POST", "/filesystem.Filesystem/Stat",
                             json.dumps({"path": "/home/user/none"}),
                             headers={"Content-Type": "application/json"})
        self.assertEqual((st, json.loads(b)["code"]), (404, "not_found"))
        st, _, b = self.data("POST", "/filesystem.Filesystem/Stat", b"not json",
                             headers={"Content-Type": "application/json"})
        self.assertEqual(st, 400)

    def test_host_based_addressing(self):
        """E2B's own addressing ("<port>-<id>.<domain>"), for a TLS proxy in front of corral."""
        h = {"Host": "49983-%s.sandbox.example" % self.sb["sandboxID"],
             "X-Access-Token": self.sb["envdAccessToken"]}
        st, _, _ = SRV.raw("GET", "/health", key=None, headers=h)
        self.assertEqual(st, 204)

    def test_uploads_chunked_and_capped(self):
        def chunks():
            for i in range(8):
                yield bytes([i]) * 100000
        st, _, b = self.data("POST", "/files?path=%2Ftmp%2Fchunked.bin", chunks(),
                             headers={"Content-Type": "application/octet-stream",
                                      "Transfer-Encoding": "chunked"})
        self.assertEqual((st, json.loads(b)[0]["path"]), (200, "/tmp/chunked.bin"))
        st, _, back = self.data("GET", "/files?path=%2Ftmp%2Fchunked.bin")
        self.assertEqual((st, back), (200, b"".join(chunks())))
        # over --max-upload (4 MiB) without a length: cut off, with a 413
        def big():
            for _ in range(80):
                yield b"x" * 65536
        st, _, b = self.data("POST", "/files?path=big.bin", big(),
                             headers={"Content-Type": "application/octet-stream",
                                      "Transfer-Encoding": "chunked"})
        self.assertEqual(st, 413, b)
        # announced as too large: refused before a byte of the body is read
        s = socket.create_connection(("127.0.0.1", SRV.port), timeout=30)
        try:
            s.sendall(("POST /files?path=big.bin HTTP/1.1\r\nHost: x\r\nE2b-Sandbox-Id: %s\r\n"
                       "X-Access-Token: %s\r\nContent-Type: application/octet-stream\r\n"
                       "Content-Length: %d\r\n\r\n" % (self.sb["sandboxID"],
                                                       self.sb["envdAccessToken"], 5 << 20)).encode())
            head = s.recv(4096).decode()
        finally:
            s.close()
        self.assertTrue(head.startswith("HTTP/1.1 413"), head)
        st, _, b = self.data("POST", "/files?path=x.gz", b"\x1f\x8b",
                             headers={"Content-Type": "application/octet-stream",
                                      "Content-Encoding": "gzip"})
        self.assertEqual(st, 415)
        st, _, b = self.data("POST", "/files", b"data",
                             headers={"Content-Type": "application/octet-stream"})
        self.assertEqual(st, 400)

    def test_unknown_route_speaks_e2b(self):
        st, _, b = SRV.raw("GET", "/templates", key=None, headers={"X-API-KEY": KEY})
        self.assertEqual((st, json.loads(b)["code"]), (404, 404))


if __name__ == "__main__":
    unittest.main()
