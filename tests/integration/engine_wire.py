"""A test client for the engine manager's wire protocol (src/engine/wire.h), in pure Python.

    eng = EngineProcess()          # starts `corral engine` on a private socket (stop() kills it)
    c = eng.client()
    sid = c.create(mode="stateful")["session"]
    events, final = c.execute(sid, "print(1)")
    c.write_file(sid, "/home/user/x.bin", data); c.read_file(sid, "/home/user/x.bin")

Layouts mirror the C structs exactly (little-endian, natural alignment); a mismatch shows up
as an EPROTO from the engine, which the tests would catch.
"""
import json
import os
import select
import signal
import socket
import struct
import subprocess
import tempfile
import time

from harness import CORRAL, ENV

HDR = struct.Struct("<II")
REQ = {"HELLO": 1, "CREATE": 2, "EXECUTE": 3, "CTX_CREATE": 4, "CTX_DELETE": 5, "FILE_WRITE": 6,
       "DATA": 7, "FILE_READ": 8, "FILE_LIST": 9, "FILE_REMOVE": 10, "INFO": 11, "LIST": 12,
       "DESTROY": 13, "SET_LIFETIME": 14, "LOOKUP": 15, "COLLECT": 16, "STATS": 17,
       "INTERRUPT": 18}
RSP_OK, RSP_ERROR, RSP_CREATED, RSP_INFO, RSP_FILE_INFO, RSP_DATA, RSP_ENTRY, RSP_STATS = range(100, 108)
EV_STDOUT, EV_STDERR, EV_JSON, EV_FINAL, EV_KEEPALIVE, EV_ACCEPTED = range(200, 206)
EXEC_SVG, EXEC_COMMAND, EXEC_ACK = 1, 2, 4
FINAL_STATUS = ["ok", "error", "timeout", "memory_limit", "killed"]

# struct eng_limits: u64 memory, u32 pids, cpus_milli, cell_timeout_ms, max_cells,
# idle_timeout_s, lifetime_s, u64 tmp (natural alignment: 4 bytes pad before tmp)
LIMITS = struct.Struct("<QIIIIIIQQQ")
# struct eng_req_create: u32 mode, flags; limits; name[64]; allow[512]; u32 n_mounts, want_output; env[4096]
CREATE = struct.Struct("<II" + "QIIIIIIQQQ" + "64s512sII4096s")
MOUNT = struct.Struct("<1024s1024sI")
CREATED = struct.Struct("<QII32s")
EXECUTE = struct.Struct("<QII64s")
CTX = struct.Struct("<Q64s")
FILEREQ = struct.Struct("<QQ1024s")
COLLECT = struct.Struct("<Q1024s")
FINAL = struct.Struct("<IIiiIIQQQQQQQ")
ERROR = struct.Struct("<i256s")
ENTRY = struct.Struct("<IIQq")
INFO = struct.Struct("<QIIQQQQQQQ" + "QIIIIIIQQQ" + "64s")


class EngineError(Exception):
    def __init__(self, errnum, message):
        super().__init__("%s (errno %d)" % (message, errnum))
        self.errnum = errnum
        self.message = message


def _cstr(b):
    return b.split(b"\0", 1)[0].decode()


class Client:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)

    def close(self):
        self.sock.close()

    def _send(self, typ, payload=b""):
        self.sock.sendall(HDR.pack(typ, len(payload)) + payload)

    def _recvn(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("engine closed the connection")
            buf += chunk
        return bytes(buf)

    def recv(self):
        typ, n = HDR.unpack(self._recvn(HDR.size))
        payload = self._recvn(n)
        if typ == RSP_ERROR:
            e, msg = ERROR.unpack(payload)
            raise EngineError(e, _cstr(msg))
        return typ, payload

    def create(self, mode="stateful", ephemeral=False, name="", memory=0, pids=0, cpus_milli=0,
               cell_timeout_ms=0, max_cells=0, idle_s=0, lifetime_s=0, allow="", env=None,
               mounts=(), want_output=False, tmp=0, output_bytes=0, file_size=0, nowait=False):
        envb = b"".join(("%s=%s" % kv).encode() + b"\0" for kv in (env or {}).items()) + b"\0"
        p = CREATE.pack(1 if mode == "stateless" else 0, 1 if ephemeral else 0,
                        memory, pids, cpus_milli, cell_timeout_ms, max_cells, idle_s, lifetime_s, tmp,
                        output_bytes, file_size,
                        name.encode(), allow.encode(), len(mounts), 1 if want_output else 0, envb)
        for host, dest, rw in mounts:
            p += MOUNT.pack(host.encode(), dest.encode(), 1 if rw else 0)
        self._send(REQ["CREATE"], p)
        if nowait:
            return None
        typ, payload = self.recv()
        assert typ == RSP_CREATED, typ
        sid, mode_, pooled, py = CREATED.unpack(payload)
        return {"session": sid, "mode": mode_, "pooled": pooled, "python": _cstr(py)}

    def execute(self, sid, code, context="default", timeout_ms=0, svg=False, stop_after=None,
                ack=False):
        """Returns ([(kind, value)...], final dict).  kind: stdout/stderr (bytes), event (dict),
        keepalive, accepted (ack=True).  stop_after=N closes the connection after N events
        (client gone)."""
        self.submit(sid, code, context, timeout_ms, svg, ack)
        return self._events(stop_after)

    def submit(self, sid, code, context="default", timeout_ms=0, svg=False, ack=False):
        """Sends a cell without reading anything back."""
        flags = (EXEC_SVG if svg else 0) | (EXEC_ACK if ack else 0)
        self._send(REQ["EXECUTE"], EXECUTE.pack(sid, timeout_ms, flags, context.encode())
                   + code.encode())

    def command(self, sid, argv, env=None, cwd="", timeout_ms=0, stop_after=None, ack=False):
        """Runs a program in the session (ENG_EXEC_COMMAND); returns what execute returns."""
        env = ["%s=%s" % kv for kv in (env or {}).items()]
        strings = [cwd] + list(argv) + env
        payload = struct.pack("<II", len(argv), len(env)) + b"".join(
            x.encode() + b"\0" for x in strings)
        self._send(REQ["EXECUTE"], EXECUTE.pack(sid, timeout_ms, EXEC_COMMAND | (
            EXEC_ACK if ack else 0), b"default") + payload)
        return self._events(stop_after)

    def _events(self, stop_after):
        events = []
        while True:
            typ, payload = self.recv()
            if typ == EV_FINAL:
                f = FINAL.unpack(payload)
                hits = [n for b, n in ((1, "memory"), (2, "pids"), (4, "output")) if f[4] & b]
                return events, {"status": FINAL_STATUS[f[0]], "session_alive": bool(f[1]),
                                "exit_code": f[2], "signal": f[3], "limits_hit": hits,
                                "duration_us": f[6], "cpu_us": f[7], "peak_memory_bytes": f[8],
                                "cell": f[9], "stdout_bytes": f[10], "stderr_bytes": f[11],
                                "dropped": f[12]}
            if typ == EV_STDOUT:
                events.append(("stdout", payload))
            elif typ == EV_STDERR:
                events.append(("stderr", payload))
            elif typ == EV_JSON:
                events.append(("event", json.loads(payload)))
            elif typ == EV_KEEPALIVE:
                events.append(("keepalive", None))
            elif typ == EV_ACCEPTED:
                events.append(("accepted", None))
            else:
                raise AssertionError("unexpected frame %d" % typ)
            if stop_after is not None and len(events) >= stop_after:
                self.close()
                return events, None

    def context(self, sid, name, create=True):
        self._send(REQ["CTX_CREATE" if create else "CTX_DELETE"], CTX.pack(sid, name.encode()))
        events = []
        while True:
            typ, payload = self.recv()
            if typ == EV_FINAL:
                return events, FINAL_STATUS[FINAL.unpack(payload)[0]]
            if typ == EV_JSON:
                events.append(json.loads(payload))

    def write_file(self, sid, path, data):
        self._send(REQ["FILE_WRITE"], FILEREQ.pack(sid, len(data), path.encode()))
        for off in range(0, len(data), 256 << 10):
            self._send(REQ["DATA"], data[off:off + (256 << 10)])
        typ, _ = self.recv()
        assert typ == RSP_OK

    def write_file_stream(self, sid, path, chunks):
        """An upload of unknown size (ENG_SIZE_STREAM): data frames, then an empty one."""
        self._send(REQ["FILE_WRITE"], FILEREQ.pack(sid, (1 << 64) - 1, path.encode()))
        for c in chunks:
            self._send(REQ["DATA"], c)
        self._send(REQ["DATA"], b"")
        typ, payload = self.recv()
        if typ == RSP_ERROR:
            e, m = ERROR.unpack(payload)
            raise EngineError(e, _cstr(m))
        assert typ == RSP_OK, typ

    def read_file(self, sid, path):
        self._send(REQ["FILE_READ"], FILEREQ.pack(sid, 0, path.encode()))
        typ, payload = self.recv()
        assert typ == RSP_FILE_INFO
        size = struct.unpack("<Q", payload)[0]
        out = bytearray()
        while True:
            typ, payload = self.recv()
            if typ == RSP_OK:
                assert len(out) == size
                return bytes(out)
            assert typ == RSP_DATA
            out += payload

    def list(self, sid, path):
        self._send(REQ["FILE_LIST"], FILEREQ.pack(sid, 0, path.encode()))
        out = []
        while True:
            typ, payload = self.recv()
            if typ == RSP_OK:
                return out
            t, _, size, mtime = ENTRY.unpack(payload[:ENTRY.size])
            out.append({"type": ["", "file", "dir", "symlink", "other"][t], "size": size,
                        "name": payload[ENTRY.size:].split(b"\0")[0].decode()})

    def remove(self, sid, path):
        self._send(REQ["FILE_REMOVE"], FILEREQ.pack(sid, 0, path.encode()))
        assert self.recv()[0] == RSP_OK

    def info(self, sid):
        self._send(REQ["INFO"], struct.pack("<Q", sid))
        typ, p = self.recv()
        assert typ == RSP_INFO
        f = INFO.unpack(p)
        return {"session": f[0], "state": f[1], "mode": f[2], "cells": f[6],
                "cpu_us": f[7], "name": _cstr(f[-1])}

    def destroy(self, sid):
        self._send(REQ["DESTROY"], struct.pack("<Q", sid))
        assert self.recv()[0] == RSP_OK

    def stats(self):
        self._send(REQ["STATS"])
        typ, p = self.recv()
        assert typ == RSP_STATS
        v = struct.unpack("<%dQ" % (len(p) // 8), p)
        keys = ["live", "created", "destroyed", "expired", "pool_ready", "pool_target", "ok",
                "error", "timeout", "memory_limit", "killed", "refused_capacity"]
        return dict(zip(keys, v))


class EngineProcess:
    """A private `corral engine` for one test class: own socket, own pool."""

    def __init__(self, pool=2, max_sessions=64, extra=(), env=None):
        self.dir = tempfile.mkdtemp(prefix="corral-engine-test-")
        self.path = os.path.join(self.dir, "engine.sock")
        self.log = open(os.path.join(self.dir, "engine.log"), "w+")
        self.proc = subprocess.Popen([CORRAL, "engine", "--socket", self.path, "--pool", str(pool),
                                      "--max-sessions", str(max_sessions)] + list(extra),
                                     env=dict(ENV, **(env or {})), stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while not os.path.exists(self.path):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("engine did not start: " + self.logtext())
            time.sleep(0.002)

    def logtext(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def client(self):
        return Client(self.path)

    def wait_pool(self, n, timeout=30):
        c = self.client()
        try:
            deadline = time.time() + timeout
            while time.time() < deadline:
                if c.stats()["pool_ready"] >= n:
                    return
                time.sleep(0.05)
            raise RuntimeError("pool never reached %d" % n)
        finally:
            c.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)
