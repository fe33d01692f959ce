"""Test client for the in-sandbox Python runner (src/engine/runner.py), without a sandbox.

This process plays the zygote: load() imports runner.py as module `corral_runner`, preload()
warms it once, and every Session is a fork of this process that calls serve() on one end of a
socketpair, with fd 1/2 on pipes -- the production shape, minus containment.

    import runner_client as rc
    rc.preload()
    s = rc.Session("stateful")              # fork, START, HELLO (s.hello)
    r = s.execute("print(1)\\n2")
    r.stdout == b"1\\n"; r.result["text/plain"] == "2"; r.done["status"] == 0
    s.close()

Frames: encode(type, payload) and FrameReader (incremental decoder with limits) are plain
helpers the C engine's tests can reuse. A Reply keeps the ordered frames of one request
(items: ("stdout", bytes) | ("stderr", bytes) | ("event", dict)), its DONE and the bytes that
reached the fd-1/fd-2 pipes meanwhile (fd1, fd2).
"""
import gc
import importlib.util
import json
import os
import select
import signal
import socket
import struct
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNNER = os.path.join(ROOT, "src", "engine", "runner.py")

START, EXEC, CTX_CREATE, CTX_DELETE, PING, CMD = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
HELLO, STDOUT, STDERR, EVENT, DONE, PONG = 0x81, 0x82, 0x83, 0x84, 0x85, 0x86
MAX_TO_RUNNER = 4 << 20
MAX_FROM_RUNNER = 16 << 20
HDR = struct.Struct("<II")
INTERRUPT_SIG_BASE, INTERRUPT_TAGS = 40, 8
DONE_FMT = struct.Struct("<IiiI")


def encode(ftype, payload=b""):
    """One frame: u32 type | u32 length | payload (little-endian)."""
    if isinstance(payload, (dict, list)):
        payload = json.dumps(payload).encode()
    return HDR.pack(ftype, len(payload)) + payload


class FrameReader:
    """feed(bytes) -> list of (type, payload); raises ValueError on an oversize frame."""

    def __init__(self, max_payload=MAX_FROM_RUNNER):
        self.buf = bytearray()
        self.max = max_payload

    def feed(self, data):
        self.buf += data
        out = []
        while len(self.buf) >= 8:
            ftype, n = HDR.unpack_from(self.buf)
            if n > self.max:
                raise ValueError("frame 0x%x of %d bytes over %d" % (ftype, n, self.max))
            if len(self.buf) < 8 + n:
                break
            out.append((ftype, bytes(self.buf[8:8 + n])))
            del self.buf[:8 + n]
        return out


def strict_json(payload):
    """Parses an EVENT payload the way jansson would accept it (UTF-8, no NaN/Infinity)."""
    def bad(name):
        raise ValueError("non-JSON constant %s" % name)
    if b"\\u0000" in payload.replace(b"\\\\", b""):
        raise ValueError("NUL escape in JSON")
    return json.loads(payload.decode("utf-8"), parse_constant=bad)


_runner = None
_preloaded = None
_client_fds = set()    # parent-side fds of live sessions: closed in every new session


def load():
    """Imports src/engine/runner.py as `corral_runner` (once)."""
    global _runner
    if _runner is None:
        spec = importlib.util.spec_from_file_location("corral_runner", RUNNER)
        mod = importlib.util.module_from_spec(spec)
        sys.modules["corral_runner"] = mod
        spec.loader.exec_module(mod)
        _runner = mod
    return _runner


def preload(modules=None):
    """Makes this process the zygote: the C side's environment, preload() once, gc.freeze()."""
    global _preloaded
    if _preloaded is None:
        os.environ["MPLBACKEND"] = "Agg"
        os.environ.setdefault("MPLCONFIGDIR", "/tmp/corral-test-mplconfig")
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        _preloaded = load().preload(modules)
        gc.freeze()   # as the zygote does: forked sessions do not touch the preloaded objects
    return _preloaded


class Reply:
    def __init__(self):
        self.items, self.done, self.eof, self.fd1, self.fd2 = [], None, False, b"", b""

    def _join(self, kind):
        return b"".join(x[1] for x in self.items if x[0] == kind)

    stdout = property(lambda self: self._join("stdout"))
    stderr = property(lambda self: self._join("stderr"))
    events = property(lambda self: [x[1] for x in self.items if x[0] == "event"])
    displays = property(lambda self: [e for e in self.events if e["type"] == "display"])
    status = property(lambda self: self.done["status"] if self.done else None)

    @property
    def error(self):
        return next((e for e in self.events if e["type"] == "error"), None)

    @property
    def result(self):
        return next((e["data"] for e in self.events if e["type"] == "result"), None)

    def __repr__(self):
        return "Reply(done=%r, eof=%r, items=%r, fd1=%r, fd2=%r)" % (
            self.done, self.eof, [(k, v if k == "event" else v[:200]) for k, v in self.items],
            self.fd1[:500], self.fd2[:500])


class Session:
    """One session process forked from this (zygote) process; see the module docstring."""

    def __init__(self, mode="stateful", start=True, **opts):
        runner = load()
        a, b = socket.socketpair()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the session
            code = 70
            try:
                os.setpgid(0, 0)
                for fd in _client_fds | {a.fileno(), out_r, err_r}:
                    os.close(fd)
                os.dup2(out_w, 1)
                os.dup2(err_w, 2)
                os.close(out_w)
                os.close(err_w)
                runner.serve(b.detach())
                code = 0
            except BaseException:
                os.write(2, traceback.format_exc().encode())
            finally:
                os._exit(code)
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass
        b.close()
        os.close(out_w)
        os.close(err_w)
        self.pid, self.sock, self.exit_status = pid, a, None
        self.bufs = {out_r: bytearray(), err_r: bytearray()}   # all bytes from fd 1 / fd 2
        self.open = {out_r, err_r}
        self.out_r, self.err_r = out_r, err_r
        self._marks = {}
        _client_fds.update((a.fileno(), out_r, err_r))
        self.reader = FrameReader()
        self.frames = []
        self.eof = False
        self.hello = self.start(mode, **opts) if start else None

    # -- raw frames
    def send(self, ftype, payload=b""):
        self.sock.sendall(encode(ftype, payload))

    def send_raw(self, data):
        self.sock.sendall(data)

    def _pump(self, deadline):
        fds = ([] if self.eof else [self.sock]) + list(self.open)
        if not fds:
            return False
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select(fds, [], [], left)
        if not ready:
            return False
        for f in ready:
            if f is self.sock:
                data = self.sock.recv(1 << 20)
                if data:
                    self.frames.extend(self.reader.feed(data))
                else:
                    self.eof = True
            else:
                data = os.read(f, 1 << 20)
                if data:
                    self.bufs[f] += data
                else:  # every write end is gone
                    self.open.discard(f)
        return True

    def recv(self, timeout=30):
        """Next frame (type, payload), or None at EOF; TimeoutError after timeout seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.frames:
            if self.eof:
                return None
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError("no frame from the runner within %ss" % timeout)
            self._pump(deadline)
        return self.frames.pop(0)

    def _drain_pipes(self):
        """Reads what the pipes hold now (all that was written before the last frame)."""
        while self.open and select.select(list(self.open), [], [], 0)[0]:
            self._pump(time.monotonic())

    def _mark(self):
        self._marks = {fd: len(buf) for fd, buf in self.bufs.items()}

    def fd_bytes(self):
        """(fd 1 bytes, fd 2 bytes) received so far in this session."""
        self._drain_pipes()
        return bytes(self.bufs[self.out_r]), bytes(self.bufs[self.err_r])

    # -- requests
    def start(self, mode="stateful", **opts):
        self.send(START, dict({"version": 1, "mode": mode}, **opts))
        f = self.recv()
        if f is None or f[0] != HELLO:
            raise AssertionError("expected HELLO, got %r" % (f,))
        return strict_json(f[1])

    def submit(self, code, context="default", svg=False, cell=None):
        self._mark()
        req = {"code": code, "context": context, "svg": svg}
        if cell is not None:
            req["cell"] = cell
        self.send(EXEC, req)

    def submit_command(self, argv, env=None, cwd=None):
        """A program run as a cell (CMD): a `process` event, its output, DONE."""
        self._mark()
        req = {"argv": argv}
        if env is not None:
            req["env"] = env
        if cwd is not None:
            req["cwd"] = cwd
        self.send(CMD, req)

    def collect(self, timeout=30):
        """Frames of the current request up to DONE (or EOF) as a Reply; TimeoutError when
        DONE has not come within timeout seconds."""
        r = Reply()
        deadline = time.monotonic() + timeout
        while True:
            f = self.recv(max(0.0, deadline - time.monotonic()))
            if f is None:
                r.eof = True
                break
            ftype, p = f
            if ftype == STDOUT:
                r.items.append(("stdout", p))
            elif ftype == STDERR:
                r.items.append(("stderr", p))
            elif ftype == EVENT:
                r.items.append(("event", strict_json(p)))
            elif ftype == DONE:
                if len(p) != 16:
                    raise AssertionError("DONE payload of %d bytes" % len(p))
                st, code, sig, _ = DONE_FMT.unpack(p)
                r.done = {"status": st, "exit_code": code, "signal": sig}
                break
            else:
                raise AssertionError("unexpected frame 0x%x in a reply" % ftype)
        self._drain_pipes()
        r.fd1 = bytes(self.bufs[self.out_r][self._marks.get(self.out_r, 0):])
        r.fd2 = bytes(self.bufs[self.err_r][self._marks.get(self.err_r, 0):])
        self._mark()
        return r

    def execute(self, code, context="default", svg=False, timeout=30, cell=None):
        self.submit(code, context, svg, cell)
        return self.collect(timeout)

    def ctx_create(self, name):
        self._mark()
        self.send(CTX_CREATE, {"context": name})
        return self.collect()

    def ctx_delete(self, name):
        self._mark()
        self.send(CTX_DELETE, {"context": name})
        return self.collect()

    def ping(self, timeout=10):
        self.send(PING)
        f = self.recv(timeout)
        return f is not None and f[0] == PONG and f[1] == b""

    def interrupt(self, sig=signal.SIGINT):
        """SIGINT to the session's process group (the session and any cell process)."""
        os.killpg(self.pid, sig)

    def interrupt_cell(self, cell):
        """The host's interrupt of cell `cell` (engine/wire.h RUN_INTERRUPT_SIG)."""
        os.killpg(self.pid, INTERRUPT_SIG_BASE + cell % INTERRUPT_TAGS)

    # -- ending
    def wait_exit(self, timeout=10):
        """Waits for the session process to end; returns its wait status (None on timeout)."""
        deadline = time.monotonic() + timeout
        while self.exit_status is None:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.exit_status = st
                break
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.005)
        return self.exit_status

    def close(self, timeout=10):
        """EOF on the channel; the session must return from serve() and exit. Returns the
        wait status (killing the process group if it did not end in time)."""
        if self.sock.fileno() >= 0:
            _client_fds.discard(self.sock.fileno())
            self.sock.close()
        self.eof = True
        st = self.wait_exit(timeout)
        if st is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except OSError:
                pass
            st = self.wait_exit(timeout)
        try:
            os.killpg(self.pid, signal.SIGKILL)    # strays the cell left behind
        except OSError:
            pass
        self._drain_pipes()
        for fd in (self.out_r, self.err_r):
            if fd in _client_fds:
                _client_fds.discard(fd)
                os.close(fd)
        self.open = set()
        return st
