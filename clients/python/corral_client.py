"""corral_client -- a small client for `corral serve` (the native API v1, docs/API.md).

Standard library only.  The four calls an agent needs -- execute, upload_file, download_file,
cleanup -- plus create:

    import corral_client
    with corral_client.create("http://127.0.0.1:7070", api_key="e2b_...") as sb:
        sb.upload_file("/home/user/data.csv", open("data.csv", "rb").read())
        r = sb.execute("import pandas as pd\\ndf = pd.read_csv('data.csv')\\ndf.shape")
        print(r["stdout"], r["results"], r["error"], r["final"]["status"])
        png = sb.download_file("/home/user/plot.png")
    # leaving the block deletes the sandbox

    for ev in sb.stream("for i in range(3): print(i)"):   # events as they happen (NDJSON)
        print(ev)                                        # ..., then {"type": "final", ...}

The key defaults to $CORRAL_API_KEY.  A Sandbox keeps one HTTP connection and is meant for one
thread at a time; open one Sandbox object per thread.  Errors raise CorralError with the HTTP
status and the server's error code and message.
"""
import http.client
import json
import os
import urllib.parse

__all__ = ["Client", "Sandbox", "CorralError", "create"]


class CorralError(Exception):
    """An error reply from the server (status, code, message) or a transport failure."""

    def __init__(self, status, code, message, retry_after=None):
        super().__init__("HTTP %s %s: %s" % (status, code, message))
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class _Conn:
    """One keep-alive HTTP connection, reopened when the server closed it."""

    def __init__(self, base_url, api_key, timeout):
        u = urllib.parse.urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError("base_url must be http(s)://host:port")
        self.https = u.scheme == "https"
        self.host = u.hostname
        self.port = u.port or (443 if self.https else 80)
        self.prefix = u.path.rstrip("/")
        self.timeout = timeout
        self.headers = {"Authorization": "Bearer " + api_key} if api_key else {}
        self.conn = None

    def _open(self):
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        self.conn = cls(self.host, self.port, timeout=self.timeout)

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, headers=None, stream=False):
        """Sends one request; returns the response (body unread when stream=True)."""
        h = dict(self.headers)
        if headers:
            h.update(headers)
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        for attempt in (0, 1):
            if self.conn is None:
                self._open()
            try:
                self.conn.request(method, self.prefix + path, body=body, headers=h)
                resp = self.conn.getresponse()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # a kept-alive connection the server had closed: one fresh try
                self.close()
                if attempt:
                    raise
        if resp.status >= 400:
            data = resp.read()
            self._maybe_close(resp)
            try:
                err = json.loads(data)["error"]
                code, msg = err.get("code", "error"), err.get("message", "")
            except (ValueError, KeyError, TypeError):
                code, msg = "error", data[:200].decode("utf-8", "replace")
            raise CorralError(resp.status, code, msg, resp.getheader("Retry-After"))
        if stream:
            return resp
        resp.data = resp.read()
        self._maybe_close(resp)
        return resp

    def _maybe_close(self, resp):
        if resp.will_close:
            self.close()


class Sandbox:
    """One sandbox on a corral server.  Use as a context manager, or call cleanup()."""

    def __init__(self, conn, info):
        self._c = conn
        self.info = info
        self.id = info["id"]

    # -- the four calls ------------------------------------------------------------------
    def execute(self, code, timeout_s=None, context=None):
        """Runs a cell; returns {stdout, stderr, results, error, final} once it is done."""
        body = {"code": code}
        if timeout_s is not None:
            body["timeout_s"] = timeout_s
        if context is not None:
            body["context"] = context
        r = self._c.request("POST", self._p("/execute"), body,
                            headers={"Accept": "application/json"})
        return json.loads(r.data)

    def upload_file(self, path, data):
        """Writes bytes (or a binary file object) to path in the sandbox (e.g. /home/user/x)."""
        if hasattr(data, "read"):
            data = data.read()
        r = self._c.request("PUT", self._p("/files/" + _quote(path)), bytes(data),
                            headers={"Content-Type": "application/octet-stream"})
        return json.loads(r.data)

    def download_file(self, path):
        """Returns the bytes of a file in the sandbox."""
        return self._c.request("GET", self._p("/files/" + _quote(path))).data

    def cleanup(self):
        """Deletes the sandbox (a sandbox that is already gone is fine)."""
        try:
            self._c.request("DELETE", self._p(""))
        except CorralError as e:
            if e.status != 404:
                raise
        finally:
            self._c.close()

    # -- more ----------------------------------------------------------------------------
    def stream(self, code, timeout_s=None, context=None):
        """Yields the cell's events as they happen; the last one has type "final".
        Stop iterating early and the cell is interrupted (the connection is closed)."""
        body = {"code": code}
        if timeout_s is not None:
            body["timeout_s"] = timeout_s
        if context is not None:
            body["context"] = context
        resp = self._c.request("POST", self._p("/execute"), body,
                               headers={"Accept": "application/x-ndjson"}, stream=True)
        done = False
        try:
            for line in resp:
                if not line.strip():
                    continue
                ev = json.loads(line)
                if ev.get("type") == "keepalive":
                    continue
                yield ev
                if ev.get("type") == "final":
                    done = True
            resp.read()
        finally:
            if not done or resp.will_close:
                self._c.close()

    def files(self, dir="/home/user"):
        """Lists a directory: [{name, type, size, mtime}, ...]."""
        q = "?dir=" + urllib.parse.quote(dir, safe="/")
        return json.loads(self._c.request("GET", self._p("/files") + q).data)["entries"]

    def delete_file(self, path):
        self._c.request("DELETE", self._p("/files/" + _quote(path)))

    def set_timeout(self, timeout_s):
        """The sandbox now ends timeout_s seconds from now."""
        self.info = json.loads(self._c.request("POST", self._p("/timeout"),
                                               {"timeout_s": int(timeout_s)}).data)
        return self.info

    def refresh(self):
        self.info = json.loads(self._c.request("GET", self._p("")).data)
        return self.info

    def _p(self, tail):
        return "/v1/sandboxes/" + self.id + tail

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()


class Client:
    """A connection to a corral server, for creating and listing sandboxes."""

    def __init__(self, base_url="http://127.0.0.1:7070", api_key=None, timeout=120):
        self.base_url = base_url
        self.api_key = api_key if api_key is not None else os.environ.get("CORRAL_API_KEY")
        self.timeout = timeout
        self._c = _Conn(base_url, self.api_key, timeout)

    def create(self, mode="stateful", timeout_s=None, limits=None, env=None, metadata=None):
        body = {"mode": mode}
        for k, v in (("timeout_s", timeout_s), ("limits", limits), ("env", env),
                     ("metadata", metadata)):
            if v is not None:
                body[k] = v
        info = json.loads(self._c.request("POST", "/v1/sandboxes", body).data)
        # each sandbox gets its own connection: a cell that streams must not block others
        return Sandbox(_Conn(self.base_url, self.api_key, self.timeout), info)

    def list(self):
        return json.loads(self._c.request("GET", "/v1/sandboxes").data)["sandboxes"]

    def health(self):
        return json.loads(self._c.request("GET", "/healthz").data)

    def metrics(self):
        return self._c.request("GET", "/metrics").data.decode()

    def close(self):
        self._c.close()


def create(base_url="http://127.0.0.1:7070", api_key=None, **opts):
    """Creates a sandbox: create(url, key, mode=..., timeout_s=..., limits={...})."""
    c = Client(base_url, api_key)
    try:
        return c.create(**opts)
    finally:
        c.close()


def _quote(path):
    return urllib.parse.quote(path.lstrip("/"), safe="/")
