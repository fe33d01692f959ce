"""corral_runner -- the Python runner inside every session (docs/design/runner-protocol.md).

The zygote embeds this single file (module `corral_runner`; no sibling imports):
    corral_runner.preload()        # once, before any sandbox: warm imports, fonts, renderers
    corral_runner.serve(chan_fd)   # per session (a contained fork): returns at EOF, or after a
                                   # line on fd 2 on a protocol violation
Kept here: one process writes frames (user forks lose the channel in an at-fork hook); every
frame, event and table is bounded; SIGINT interrupts only cells, and never inside a frame.
"""
import ast
import base64
import datetime
import gc
import importlib
import io
import json
import linecache
import math
import mmap
import os
import re
import select
import signal
import _signal
import struct
import sys
import threading
import time
import traceback
import types

__all__ = ["PROTOCOL_VERSION", "preload", "serve"]

PROTOCOL_VERSION = 1

_START, _EXEC, _CTX_CREATE, _CTX_DELETE, _PING, _CMD = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
_HELLO, _STDOUT, _STDERR, _EVENT, _DONE, _PONG = 0x81, 0x82, 0x83, 0x84, 0x85, 0x86
_MAX_IN = 4 << 20            # host -> runner payload
_MAX_OUT = 16 << 20          # runner -> host payload
_MAX_CODE = 1 << 20
_CHUNK = 64 << 10            # STDOUT/STDERR frame payload
# The host interrupts cell c with signal _TAG_BASE + c % _TAGS (engine/wire.h RUN_INTERRUPT_SIG),
# not a bare SIGINT: the number says which cell it is for, so one that comes before its cell is
# armed is kept for it, and a late one for a cell that has ended is dropped (_on_tagged).
_TAG_BASE, _TAGS = 40, 8
_HOLD = 1 << 20              # output held between cells, per stream
_LINES_MAX = 8 << 20         # cell sources kept in linecache
_MAX_COLS = 100              # columns in text/html and the table form
_MAX_CONTEXTS = 64
_CTX_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
# scipy itself is cheap; scipy.stats is not preloaded: it adds ~37 MB to every session and
# ~2 ms to every fork, and most cells never use it (its first import costs ~0.4 s).
_PRELOAD = ("numpy", "pandas", "matplotlib", "matplotlib.pyplot", "scipy")
_HDR = struct.Struct("<II")
_DONE_FMT = struct.Struct("<IiiI")
_SHARED = struct.Struct("<II")  # stateless: (1 + status | 0 = not recorded, next figure number)
_NUL = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")
_SELF = (lambda: 0).__code__.co_filename   # frames of this file are cut from tracebacks
_LOCK = threading.RLock()    # one frame at a time on the channel
_PRELOADED = []


class _State:
    fd, dead = -1, False   # channel (-1 before serve() and in user forks); a write failed
    live = False           # inside a request that carries cell output
    armed = critical = pending = False   # SIGINT raises / main thread mid-frame / deferred
    cell = -1              # the last request's cell number (-1: none yet)
    early = 0              # tags (bit c % _TAGS) of interrupts that came while no cell c was armed
    own_fork = user_child = hooked = False   # our stateless fork / forked by user code
    main = out = err = contexts = shared = lines = spare = None
    zombies = []
    mode, max_rows, max_table_rows, max_bytes, allow = "stateful", 50, 200, 8 << 20, None
    svg, fig_seq, ncell, lines_total = False, 0, 0, 0
    batch = None            # a list while _done gathers frames for one write


_S = _State()


class _ProtocolError(Exception):
    pass


class _Refused(Exception):   # an import outside the allowlist: (module, line)
    pass


# ---------------------------------------------------------------------------------- frames

def _send(ftype, payload):
    """Writes one frame (or, while _done gathers, keeps it for one write with DONE). Callers
    hold _LOCK. A failed write marks the channel dead."""
    if _S.batch is not None:
        _S.batch.append(_HDR.pack(ftype, len(payload)) + payload)
        return
    _write_frames(_HDR.pack(ftype, len(payload)) + payload)


def _write_frames(data):
    if _S.fd < 0 or _S.dead:
        return
    main = threading.get_ident() == _S.main
    if main:
        _S.critical = True
    try:
        _write_all(_S.fd, data)
    except OSError:
        _S.dead = True
    finally:
        if main:
            _S.critical = False
    if main and _S.pending:
        _S.pending = False
        if _S.armed:
            _interrupt()


def _write_all(fd, data):
    mv = memoryview(data)
    while mv:
        mv = mv[os.write(fd, mv):]


def _read_exact(n, eof_ok):
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = os.read(_S.fd, n - len(buf))
        except OSError:
            chunk = b""
        if not chunk:
            if eof_ok and not buf:
                return None
            raise _ProtocolError("channel closed inside a frame")
        buf += chunk
    return bytes(buf)


def _read_frame():
    hdr = _read_exact(8, True)
    if hdr is None:
        return None
    ftype, n = _HDR.unpack(hdr)
    if ftype not in (_START, _EXEC, _CTX_CREATE, _CTX_DELETE, _PING, _CMD):
        raise _ProtocolError("unknown frame type 0x%x" % ftype)
    if n > _MAX_IN:
        raise _ProtocolError("frame of %d bytes over the %d-byte limit" % (n, _MAX_IN))
    return ftype, _read_exact(n, False) if n else b""


def _dumps(obj):
    """Compact JSON as valid UTF-8 that jansson accepts: no NaN, no lone surrogates, no NUL."""
    data = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"),
                      default=str).encode("utf-8", "replace")
    return _NUL.sub(rb"\1\\ufffd", data) if b"\\u0000" in data else data


def _cut(s, n):
    return s if len(s) <= n else s[:n] + "... [%d more characters]" % (len(s) - n)


def _emit(ev, internal=False):
    """Sends one EVENT (cell events only while a cell's request is live), within max_bytes."""
    if not (internal or _S.live):
        return
    data = _dumps(ev)
    if len(data) > _S.max_bytes:
        keep = max(64, _S.max_bytes // 32)
        if ev["type"] == "error":
            tb = ev["traceback"]
            ev = dict(ev, value=_cut(ev["value"], keep),
                      traceback=tb if len(tb) <= keep else "[%d characters cut]..." % (
                          len(tb) - keep) + tb[-keep:])
        else:
            d = ev["data"]
            note = "[corral: %s output of %d bytes dropped, over the %d-byte limit (%s)]" % (
                ev["type"], len(data), _S.max_bytes, ", ".join(sorted(d)))
            ev = dict(ev, data={"text/plain": _cut(d.get("text/plain", ""), keep) + "\n" + note})
        data = _dumps(ev)
    with _LOCK:
        _S.out._flush_locked()
        _S.err._flush_locked()
        _send(_EVENT, data)


def _done(status, code=-1, sig=0):
    """The cell's last output and DONE in one write: one wake-up of the host, not two."""
    with _LOCK:
        _S.batch = []
        try:
            _S.out._flush_locked()
            _S.err._flush_locked()
        finally:
            frames, _S.batch = _S.batch, None
        _S.live = False
        frames.append(_HDR.pack(_DONE, _DONE_FMT.size) + _DONE_FMT.pack(status, code, sig, 0))
        _write_frames(b"".join(frames))


# ----------------------------------------------------------------------------------- output

class _Stream:
    def fileno(self):       # fd 1/2: code that writes to the fd reaches the host's pipe
        return self._fd

    def isatty(self):
        return False

    def writable(self):
        return True

    def close(self):        # the session keeps its streams
        self.flush()


class _Out(_Stream, io.TextIOBase):
    """sys.stdout/sys.stderr: line-buffered into STDOUT/STDERR frames; `.buffer` takes bytes."""
    encoding = "utf-8"
    errors = "surrogateescape"
    line_buffering = True
    newlines = None

    def __init__(self, ftype, fd, name):
        self._type, self._fd, self.name = ftype, fd, name
        self._buf = bytearray()
        self.dropped = 0
        self.buffer = _OutBuffer(self)

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        try:
            b = s.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            b = s.encode("utf-8", "backslashreplace")
        self._put(b)
        return len(s)

    def _put(self, b):
        if _S.user_child:   # in a process forked by user code (a handler kept this stream)
            try:
                return _write_all(self._fd, b)
            except OSError:
                return
        with _LOCK:
            if not _S.live:   # between cells (a user thread): hold it for the next cell
                room = max(0, _HOLD - len(self._buf))
                self.dropped += max(0, len(b) - room)
                self._buf += b[:room]
                return
            other = _S.err if self is _S.out else _S.out
            if other._buf:    # keeps the order between stdout and stderr
                other._flush_locked()
            self._buf += b
            if len(self._buf) >= _CHUNK or b"\n" in b:
                self._flush_locked()

    def _flush_locked(self):
        if not self._buf or not _S.live:
            return
        data, self._buf = bytes(self._buf), bytearray()
        for i in range(0, len(data), _CHUNK):
            _send(self._type, data[i:i + _CHUNK])

    def flush(self):
        with _LOCK:
            self._flush_locked()

    def reconfigure(self, **kw):
        pass


class _OutBuffer(_Stream, io.BufferedIOBase):
    def __init__(self, text):
        self._text, self._fd, self.name = text, text._fd, text.name

    def write(self, b):
        data = bytes(b)
        self._text._put(data)
        return len(data)

    def flush(self):
        self._text.flush()


def _fd_stream(fd):
    raw = io.FileIO(fd, "w", closefd=False)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace",
                            line_buffering=True, write_through=True)


def _after_fork():
    """A fork by user code (os.fork, multiprocessing): this process never writes frames."""
    global _LOCK
    _LOCK = threading.RLock()   # another thread may have held it at the fork
    if _S.own_fork or _S.out is None:
        return
    if _S.fd >= 0:
        try:
            os.close(_S.fd)
        except OSError:
            pass
    _S.fd, _S.user_child = -1, True
    sys.stdout, sys.stderr = _fd_stream(1), _fd_stream(2)


_ONCE = "once"   # _S.armed for a command: the first SIGINT raises and disarms


def _interrupt():
    """Raises the interrupt an armed request gets; a command's disarms first: a second one
    must not land in the runner's own handler of the first."""
    if _S.armed is _ONCE:
        _S.armed = False
    raise KeyboardInterrupt


def _on_sigint(signum, frame):
    if _S.armed:
        if _S.critical:
            _S.pending = True
        else:
            _interrupt()


def _on_tagged(signum, frame):
    """The host's interrupt of one cell: a SIGINT to ourselves when that cell is armed (so a
    SIGINT handler the cell installed gets it), else remembered until it arms."""
    tag = signum - _TAG_BASE
    if _S.armed and _S.cell >= 0 and _S.cell % _TAGS == tag:
        signal.raise_signal(signal.SIGINT)
    else:
        _S.early |= 1 << tag


def _take_cell(cell):
    """cell is the request now read: of the interrupts kept so far, only its own still count
    (the others were late, for cells that have ended)."""
    _S.cell = cell
    _S.early &= 1 << (cell % _TAGS)
    return cell


def _interrupted_early():
    """True (and forgotten) when the host interrupted the current cell before it was armed."""
    bit = 1 << (_S.cell % _TAGS) if _S.cell >= 0 else 0
    if _S.early & bit:
        _S.early &= ~bit
        return True
    return False


def _catch_tagged():
    for n in range(_TAG_BASE, _TAG_BASE + _TAGS):
        signal.signal(n, _on_tagged)


# ---------------------------------------------------------------------------------- display

def _json_cell(v):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v if -(1 << 63) <= v < (1 << 63) else str(v)
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    pd = sys.modules.get("pandas")
    if pd is not None and (v is pd.NaT or v is pd.NA):
        return None
    if isinstance(v, (datetime.date, datetime.time)):
        return v.isoformat()
    np = sys.modules.get("numpy")
    if np is not None and isinstance(v, np.generic):
        if isinstance(v, (np.datetime64, np.timedelta64)):
            return None if np.isnat(v) else str(v)
        return _json_cell(v.item())
    return str(v)


def _table(df):
    pd = sys.modules["pandas"]
    nrows, ncols = df.shape
    head = df.iloc[:_S.max_table_rows, :_MAX_COLS]
    cols, dtypes, data = [], [], []
    idx = head.index
    if not (isinstance(idx, pd.RangeIndex) and idx.start == 0 and idx.step == 1):
        for i in range(idx.nlevels):    # a meaningful index becomes leading columns
            lv, nm = idx.get_level_values(i), idx.names[i]
            cols.append(str(nm) if nm is not None else
                        "index" if idx.nlevels == 1 else "level_%d" % i)
            dtypes.append(str(lv.dtype))
            data.append(lv.tolist())
    for j in range(head.shape[1]):
        s = head.iloc[:, j]
        cols.append(str(head.columns[j]))
        dtypes.append(str(s.dtype))
        data.append(s.tolist())
    rows = ([[_json_cell(v) for v in r] for r in zip(*data)] if data
            else [[] for _ in range(len(head))])
    return {"columns": cols, "dtypes": dtypes, "rows": rows, "total_rows": nrows,
            "total_columns": ncols,
            "truncated": nrows > _S.max_table_rows or ncols > _MAX_COLS}


def _bundle(obj):
    """MIME bundle of a non-figure object: text/plain always, more for known types."""
    data = {"text/plain": repr(obj)}
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(obj, (pd.DataFrame, pd.Series)):
        df = obj.to_frame() if isinstance(obj, pd.Series) else obj
        try:
            data["text/html"] = df.to_html(max_rows=_S.max_rows, max_cols=_MAX_COLS,
                                           show_dimensions="truncate")
        except Exception:
            pass
        try:
            data["application/vnd.corral.table+json"] = _table(df)
        except Exception:
            pass
        return data
    if isinstance(obj, type):
        return data
    for meth, key, kind in (("_repr_html_", "text/html", str),
                            ("_repr_svg_", "image/svg+xml", str),
                            ("_repr_png_", "image/png", bytes)):
        try:
            f = getattr(obj, meth, None)
            v = f() if callable(f) else None
        except Exception:
            continue
        if isinstance(v, kind):
            data[key] = base64.b64encode(v).decode("ascii") if kind is bytes else v
    return data


def _show_figure(fig, kind="display"):
    """Renders a figure once (PNG at its dpi, SVG when asked), closes it, emits it."""
    try:
        png = io.BytesIO()
        fig.savefig(png, format="png")
        data = {"text/plain": repr(fig),
                "image/png": base64.b64encode(png.getvalue()).decode("ascii")}
        if _S.svg:
            svg = io.BytesIO()
            fig.savefig(svg, format="svg")
            data["image/svg+xml"] = svg.getvalue().decode("utf-8", "replace")
    finally:
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            plt.close(fig)
    _S.fig_seq += 1
    if _S.shared is not None:
        _S.shared[4:8] = struct.pack("<I", _S.fig_seq)
    _emit({"type": kind, "data": data, "id": "fig-%d" % _S.fig_seq})


def _flush_figures():
    """Emits and closes every open pyplot figure, in creation order."""
    helpers = sys.modules.get("matplotlib._pylab_helpers")
    if helpers is None or not helpers.Gcf.figs:
        return
    try:
        for m in sorted(helpers.Gcf.figs.values(), key=lambda m: m.num):
            _show_figure(m.canvas.figure)
    finally:
        if helpers.Gcf.figs:
            sys.modules["matplotlib.pyplot"].close("all")


def _show(*args, **kwargs):
    """matplotlib.pyplot.show in sessions: emit and close the open figures."""
    _flush_figures()


def _patch_pyplot():
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None and plt.show is not _show:
        plt.show = _show


def _display_one(obj, kind):
    mf = sys.modules.get("matplotlib.figure")
    if mf is not None and isinstance(obj, mf.Figure):
        _show_figure(obj, kind)
    else:
        _emit({"type": kind, "data": _bundle(obj)})


def display(*objs, **kwargs):
    """Shows each object as a display event (IPython-like); put in every context's globals."""
    for obj in objs:
        _display_one(obj, "display")


# ------------------------------------------------------------------------------------ cells

def _register_lines(fn, code):
    cache = _S.lines
    _S.lines_total -= cache.pop(fn, 0)
    lines = [ln + "\n" for ln in code.split("\n")]   # the tokenizer's lines (not splitlines)
    linecache.cache[fn] = (len(code), None, lines, fn)
    cache[fn] = len(code)
    _S.lines_total += len(code)
    while _S.lines_total > _LINES_MAX and len(cache) > 1:
        old = next(iter(cache))
        _S.lines_total -= cache.pop(old)
        linecache.cache.pop(old, None)


def _check_imports(tree):
    allow = _S.allow
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = ["." * node.level + (node.module or "")]
        else:
            continue
        for name in names:
            if name.startswith(".") or name.split(".")[0] not in allow:
                raise _Refused(name, node.lineno)


def _strip(te, seen):
    while te is not None and id(te) not in seen:
        seen.add(id(te))
        te.stack = traceback.StackSummary.from_list(
            [f for f in te.stack if f.filename != _SELF])
        for sub in te.exceptions or ():
            _strip(sub, seen)
        _strip(te.__cause__, seen)
        te = te.__context__


def _error_event(e, cell=0):
    if isinstance(e, _Refused):
        value = "import of '%s' is not allowed in this session (allowed: %s)" % (
            e.args[0], ", ".join(sorted(_S.allow)) or "none")
        src = linecache.getline("<cell %d>" % cell, e.args[1]).strip()
        return {"type": "error", "name": "ImportError", "value": value, "traceback":
                '  File "<cell %d>", line %d\n    %s\nImportError: %s\n' % (
                    cell, e.args[1], src, value)}
    te = traceback.TracebackException(type(e), e, e.__traceback__, compact=True)
    _strip(te, set())
    try:
        value = str(e)
    except Exception:
        value = "<exception str() failed>"
    return {"type": "error", "name": type(e).__name__, "value": value,
            "traceback": "".join(te.format())}


def _child_exit(err):
    """A process forked by user code came back into the runner: it ends here, silently."""
    code = 0
    try:
        if isinstance(err, SystemExit):
            code = err.code if isinstance(err.code, int) else (err.code is not None)
        elif err is not None:
            code = 1
            traceback.print_exception(err)
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _run_cell(code, g, cell):
    """Runs one cell in globals g; returns the exception that ended it, or None."""
    fn = "<cell %d>" % cell
    _register_lines(fn, code)
    err = None
    _S.armed = True
    try:
        try:
            if _interrupted_early():
                raise KeyboardInterrupt
            tree = compile(code, fn, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
            if _S.allow is not None:
                _check_imports(tree)
            expr, last = None, tree.body[-1] if tree.body else None
            if isinstance(last, ast.Expr):   # a trailing `;` silences it, as in IPython
                rest = linecache.cache[fn][2][last.end_lineno - 1].encode(
                    "utf-8", "surrogatepass")[last.end_col_offset:]
                if not rest.lstrip().startswith(b";"):
                    expr = ast.Expression(tree.body.pop().value)
            body = compile(tree, fn, "exec", dont_inherit=True) if tree.body else None
            last = compile(expr, fn, "eval", dont_inherit=True) if expr is not None else None
            if body is not None:
                exec(body, g)
            if last is not None:
                value = eval(last, g)
                if value is not None:
                    g["_"] = value
                    _display_one(value, "result")
        except BaseException as e:
            err = e
        if _S.user_child:
            _child_exit(err)
        try:
            _flush_figures()
        except BaseException as e:
            if err is None:
                err = e
    finally:
        _S.armed = False
    return err


def _new_module():
    m = types.ModuleType("__main__")
    m.display = display
    return m


def _exec_here(code, module, cell):
    """Runs a cell in this process and sends its events (not DONE); returns the status."""
    if _signal.getsignal(signal.SIGINT) is not _on_sigint:   # (signal.getsignal is slow)
        signal.signal(signal.SIGINT, _on_sigint)
    sys.stdout, sys.stderr = _S.out, _S.err
    sys.modules["__main__"] = module
    _patch_pyplot()
    with _LOCK:
        _S.live, _S.pending = True, False
        for s in (_S.out, _S.err):
            if s.dropped:
                s._buf += b"\n[corral: %d bytes written between cells dropped]\n" % s.dropped
                s.dropped = 0
            s._flush_locked()
    try:
        err = _run_cell(code, module.__dict__, cell)
    except KeyboardInterrupt as e:     # landed in the runner's own bytecode around the cell
        _S.armed = False
        err = e
    _patch_pyplot()
    for s in (sys.stdout, sys.stderr):
        if s is not _S.out and s is not _S.err:   # the cell replaced them: flush its objects
            try:
                s.flush()
            except Exception:
                pass
    if err is None:
        return 0
    _emit(_error_event(err, cell))
    return 1


def _fork_spare():
    """Stateless: fork the process for the NEXT cell now, off the critical path.  The spare
    blocks on a pipe until it is given a cell; it is a fresh copy of this interpreter, which
    never runs user code, so nothing of earlier cells is in it."""
    r, w = os.pipe()
    done_r, done_w = os.pipe()
    # A fresh numpy state for the spare, drawn here: in this long-lived process it costs
    # ~0.05 ms, in the fresh fork ~0.6 ms of its cell's time (we never use it ourselves).
    _reseed()
    _S.own_fork = True
    try:
        pid = os.fork()
    finally:
        _S.own_fork = False
    if pid == 0:
        os.close(w)
        os.close(done_r)
        code_ = 70
        try:
            if not select.select([r], [], [], 0)[0]:
                try:    # idle until a cell comes: take its page faults now (see _prewarm)
                    _prewarm()
                except Exception:
                    pass
            hdr = _read_fd(r, 8)
            cell, n = struct.unpack("<II", hdr)
            _take_cell(cell)   # (its interrupts came to us too: the same process group)
            code = _read_fd(r, n).decode("utf-8", "surrogatepass")
            os.close(r)
            status = _exec_here(code, _new_module(), cell)
            with _LOCK:   # the cell's threads write no frame after this
                _S.out._flush_locked()
                _S.err._flush_locked()
                _S.live = False
            _S.shared[0:4] = struct.pack("<I", 1 + status)
            os.write(done_w, b"D")   # the parent may answer now; our exit (unmapping) overlaps
            code_ = 0
        except BaseException:
            traceback.print_exc(file=sys.__stderr__)
        finally:
            os._exit(code_)
    os.close(r)
    os.close(done_w)
    _S.spare = (pid, w, done_r)


def _read_fd(fd, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise EOFError("spare: short read")
        buf += chunk
    return bytes(buf)


def _exec_forked(code, cell):
    """Stateless: the cell runs in a pre-forked spare; the parent waits silently for the spare's
    'done' byte (or its death), then sends DONE and forks the next spare."""
    sh = _S.shared
    sh[0:8] = _SHARED.pack(0, _S.fig_seq)
    if _S.spare is None:
        try:
            _fork_spare()
        except OSError as e:   # e.g. the pids limit: the cell cannot run, the session lives
            _emit({"type": "error", "name": type(e).__name__,
                   "value": "cannot start the cell: %s" % e, "traceback": ""}, internal=True)
            return _done(1)
    pid, w, done_r = _S.spare
    _S.spare = None
    data = code.encode("utf-8", "surrogatepass")
    try:
        mv = memoryview(struct.pack("<II", cell, len(data)) + data)
        while mv:
            mv = mv[os.write(w, mv):]
    except OSError:
        pass   # the spare is gone: its wait status says why
    os.close(w)
    signalled = os.read(done_r, 1)   # b"D", or b"" when it died first; SIGINT: PEP 475 retries
    os.close(done_r)
    rec, seq = _SHARED.unpack(sh[0:8])
    _S.fig_seq = max(_S.fig_seq, seq)
    if signalled and rec:
        _S.zombies.append(pid)   # reaped later: its exit must not delay our answer
        _done(rec - 1)
    else:
        _, st = os.waitpid(pid, 0)
        if rec:
            _done(rec - 1)
        elif os.WIFSIGNALED(st):
            _done(2, -1, os.WTERMSIG(st))
        else:
            _done(2, os.WEXITSTATUS(st) if os.WIFEXITED(st) else -1, 0)
    for z in list(_S.zombies):
        if os.waitpid(z, os.WNOHANG)[0]:
            _S.zombies.remove(z)
    try:
        _fork_spare()
    except OSError:
        pass   # tried again when the next cell comes (and reported there if it fails)


# ---------------------------------------------------------------------------------- serving

def _obj(payload):
    try:
        o = json.loads(payload)
    except (ValueError, RecursionError) as e:
        raise _ProtocolError("payload is not JSON: %s" % e)
    if not isinstance(o, dict):
        raise _ProtocolError("payload is not a JSON object")
    return o


def _field(o, key, kind, default, ok=lambda v: True):
    """o[key] checked for type (bool is not an int here) and range; null or absent: default."""
    v = o.get(key)
    if v is None:
        return default
    if not isinstance(v, kind) or isinstance(v, bool) and kind is not bool or not ok(v):
        raise _ProtocolError(("bad %r: %r" % (key, v))[:200])
    return v


def _start(payload):
    o = _obj(payload)
    if o.get("version") != PROTOCOL_VERSION or isinstance(o.get("version"), bool):
        raise _ProtocolError("unsupported protocol version %r" % (o.get("version"),))
    _S.mode = _field(o, "mode", str, "stateful", lambda v: v in ("stateful", "stateless"))
    _S.max_rows = _field(o, "max_rows", int, 50, lambda v: 1 <= v <= 10000)
    _S.max_table_rows = _field(o, "max_table_rows", int, 200, lambda v: 1 <= v <= 100000)
    _S.max_bytes = _field(o, "max_bytes", int, 8 << 20, lambda v: 4096 <= v <= _MAX_OUT)
    _S.max_bytes = min(_S.max_bytes, _MAX_OUT - 1024)
    allow = _field(o, "allow_imports", list, None, lambda v: all(isinstance(x, str) for x in v))
    _S.allow = None if allow is None else frozenset(allow)
    env = _field(o, "env", dict, None, _env_ok)
    if env is not None:   # the session's environment is exactly this (subprocesses inherit it)
        cur = os.environ  # changed in place: most of it is the zygote's already (putenv is slow)
        for k in [k for k in cur if k not in env]:
            del cur[k]
        for k, v in env.items():
            if cur.get(k) != v:
                cur[k] = v
    cwd = _field(o, "cwd", str, "/tmp")
    try:
        os.chdir(cwd)
    except OSError as e:
        msg = "corral_runner: cannot chdir to %r: %s\n" % (cwd, e)
        os.write(2, msg.encode("utf-8", "replace"))
    if _S.mode == "stateless":
        _S.shared = mmap.mmap(-1, mmap.PAGESIZE)
        _S.zombies = []
    hello = {"version": PROTOCOL_VERSION, "python": "%d.%d.%d" % sys.version_info[:3],
             "preloaded": list(_PRELOADED), "pid": os.getpid()}
    with _LOCK:
        _send(_HELLO, _dumps(hello))
    if _S.mode == "stateless":
        _fork_spare()   # ready before the first cell arrives


def _do_exec(payload):
    o = _obj(payload)
    code = _field(o, "code", str, None)
    if code is None:
        raise _ProtocolError("EXEC without code")
    name = _field(o, "context", str, "default")
    _S.svg = _field(o, "svg", bool, False)
    _S.ncell += 1
    cell = _take_cell(_field(o, "cell", int, _S.ncell, lambda v: 0 <= v < 1 << 31))
    module = _S.contexts.get(name)
    if module is None:
        err = ("ContextError", "unknown context %r" % name)
    elif len(code) > _MAX_CODE // 4 and len(code.encode("utf-8", "surrogatepass")) > _MAX_CODE:
        err = ("ValueError", "cell code over the %d-byte limit" % _MAX_CODE)
    elif _S.mode == "stateless":
        return _exec_forked(code, cell)
    else:
        return _done(_exec_here(code, module, cell))
    _emit({"type": "error", "name": err[0], "value": err[1], "traceback": ""}, internal=True)
    _done(1)


def _do_ctx(ftype, payload):
    name = _field(_obj(payload), "context", str, None)
    if name is None:
        raise _ProtocolError("context request without a name")
    ctxs, err = _S.contexts, None
    if ftype == _CTX_CREATE:
        if not _CTX_NAME.match(name):
            err = "bad context name %r (1-64 of A-Z a-z 0-9 _ . -)" % name
        elif name in ctxs:
            err = "context %r already exists" % name
        elif len(ctxs) >= _MAX_CONTEXTS:
            err = "too many contexts (at most %d)" % _MAX_CONTEXTS
        else:
            ctxs[name] = _new_module()
    elif name == "default":
        err = "the default context cannot be deleted"
    elif ctxs.pop(name, None) is None:
        err = "unknown context %r" % name
    if err:
        _emit({"type": "error", "name": "ContextError", "value": err, "traceback": ""},
              internal=True)
        return _done(1)
    _emit({"type": "context", "action": "created" if ftype == _CTX_CREATE else "deleted",
           "context": name}, internal=True)
    _done(0)


def _env_ok(v):
    return len(v) <= 4096 and all(isinstance(k, str) and isinstance(x, str) and k
                                  and "=" not in k and "\0" not in k + x for k, x in v.items())


def _do_cmd(payload):
    """Runs one program as a cell: a `process` event with its pid, its stdout/stderr as they
    come, then DONE 0 with its exit code (or signal).  It does not run Python: it is spawned
    (no fork of the interpreter), in a session of its own so that an interrupt kills it with
    everything it started; stdin is /dev/null.  Children it leaves behind live on in the
    sandbox, but their output stops with it."""
    import subprocess
    o = _obj(payload)
    argv = _field(o, "argv", list, None, lambda v: 0 < len(v) <= 4096 and all(
        isinstance(a, str) and "\0" not in a for a in v))
    if argv is None:
        raise _ProtocolError("CMD without argv")
    env = _field(o, "env", dict, {}, _env_ok)
    cwd = _field(o, "cwd", str, None)
    _S.ncell += 1
    _take_cell(_field(o, "cell", int, _S.ncell, lambda v: 0 <= v < 1 << 31))
    with _LOCK:
        _S.live, _S.pending = True, False
    environ = dict(os.environ)
    environ.update(env)
    try:
        p = subprocess.Popen(argv, cwd=cwd, env=environ, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True,
                             start_new_session=True)
    except (OSError, ValueError, subprocess.SubprocessError) as e:
        _emit({"type": "error", "name": type(e).__name__, "value": str(e), "traceback": ""},
              internal=True)
        return _done(1)
    _emit({"type": "process", "pid": p.pid}, internal=True)
    fds = {p.stdout.fileno(): _STDOUT, p.stderr.fileno(): _STDERR}
    interrupted, after = None, 0
    _S.armed = _ONCE   # what handles the interrupt is runner code: it must not be interrupted
    try:
        if _S.pending or _interrupted_early():
            _interrupt()
        while fds:
            exited = p.poll() is not None
            ready = select.select(list(fds), [], [], 0 if exited else 0.25)[0]
            if exited and not ready:
                break
            for fd in ready:
                chunk = os.read(fd, _CHUNK)
                if not chunk:
                    del fds[fd]
                    continue
                if exited:   # what a child left running still writes: bounded, then cut
                    after += len(chunk)
                    if after > _HOLD:
                        fds.clear()
                        break
                with _LOCK:
                    _send(fds[fd], chunk)
    except KeyboardInterrupt as e:
        interrupted = e
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
    finally:
        _S.armed = False
    p.stdout.close()
    p.stderr.close()
    rc = p.wait()
    if interrupted is not None:
        _emit({"type": "error", "name": "KeyboardInterrupt",
               "value": "the command was interrupted and killed", "traceback": ""},
              internal=True)
        return _done(1)
    _done(0, rc if rc >= 0 else -1, -rc if rc < 0 else 0)


def _reseed():
    """Forks share numpy's global RandomState: give this process a fresh one from the OS.  A
    whole MT19937 key from os.urandom (set_state also clears the cached gaussian); cheaper in a
    fresh fork than seed(), whose SeedSequence touches several hundred shared pages."""
    np = sys.modules.get("numpy")
    if np is not None:
        try:
            key = np.frombuffer(os.urandom(624 * 4), dtype=np.uint32)
            np.random.set_state(("MT19937", key, 624, 0, 0.0))
        except Exception:
            try:
                np.random.seed()
            except Exception:
                pass


_WARM_START = _dumps({"version": 1, "mode": "stateful", "max_rows": 50, "max_table_rows": 200,
                      "max_bytes": 8 << 20, "allow_imports": None, "cwd": "/home/user",
                      "env": {"PATH": "/usr/bin", "HOME": "/home/user"}})


def _prewarm():
    """Runs what a client's first request runs -- START's JSON and checks, a cell that prints
    and has a value, the frames for both -- with the channel off (nothing is sent).

    A session is a fresh fork of the zygote: every page is shared with it, and the first write
    to each one (a refcount is enough) costs a copy-on-write fault.  Done here, while the
    session waits in the pool, those faults are off the path of the client who claims it (they
    would happen at its first cell anyway).  Leaves nothing behind: the cell runs in a module
    of its own, its lines leave linecache, counters and streams are as they were."""
    fd, main, cell = _S.fd, sys.modules.get("__main__"), _S.cell
    _S.fd, _S.cell = -1, -1     # _send() writes nothing; the host's interrupts are not for it
    # a SIGINT meant for an earlier cell must not land in this one: held until we are done,
    # then ignored (not armed)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        o = _obj(_WARM_START)
        _field(o, "max_rows", int, 50, lambda v: 1 <= v <= 10000)
        _field(o, "env", dict, None, lambda v: all(isinstance(k, str) for k in v))
        _dumps({"version": PROTOCOL_VERSION, "python": "%d.%d.%d" % sys.version_info[:3],
                "preloaded": list(_PRELOADED), "pid": os.getpid()})
        o = _obj(_dumps({"code": "print(1)\n1", "context": "default", "svg": False, "cell": 1}))
        _field(o, "cell", int, 0, lambda v: 0 <= v < 1 << 31)
        _exec_here(o["code"], _new_module(), 0)
        _done(0)
    finally:
        _S.fd, _S.live, _S.armed, _S.pending, _S.svg = fd, False, False, False, False
        _S.cell = cell
        if main is not None:
            sys.modules["__main__"] = main
        linecache.cache.pop("<cell 0>", None)
        _S.lines.clear()
        _S.lines_total = 0
        for st in (_S.out, _S.err):
            st._buf, st.dropped = bytearray(), 0
        sys.stdout, sys.stderr = _S.out, _S.err
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def serve(chan_fd, ready_fd=-1):
    """Serves the protocol on chan_fd until EOF; returns (also after a protocol violation).
    ready_fd (the zygote's sessions): gets b"warm" once the session is warm, then is closed --
    before the first frame is read, so no user code ever sees it."""
    _S.fd, _S.dead, _S.live, _S.main = chan_fd, False, False, threading.get_ident()
    _S.contexts, _S.lines = {"default": _new_module()}, {}
    _S.out, _S.err = _Out(_STDOUT, 1, "<stdout>"), _Out(_STDERR, 2, "<stderr>")
    sys.stdout, sys.stderr = _S.out, _S.err
    if not _S.hooked:
        os.register_at_fork(after_in_child=_after_fork)
        _S.hooked = True
    signal.signal(signal.SIGINT, _on_sigint)
    if signal.getsignal(_TAG_BASE) is not _on_tagged:   # (set in the zygote by preload)
        _catch_tagged()
    _reseed()
    try:
        if not select.select([chan_fd], [], [], 0)[0]:   # a client waiting already: serve it
            try:
                _prewarm()
            except Exception:   # only a cost: the session works without it
                pass
        if ready_fd >= 0:
            try:
                os.write(ready_fd, b"warm")
            except OSError:
                pass
            os.close(ready_fd)
            ready_fd = -1
        first = _read_frame()
        if first is None:
            return
        if first[0] != _START:
            raise _ProtocolError("first frame is 0x%x, not START" % first[0])
        _start(first[1])
        while not _S.dead:
            fr = _read_frame()
            if fr is None:
                return
            ftype, payload = fr
            if ftype == _EXEC:
                _do_exec(payload)
            elif ftype == _CMD:
                _do_cmd(payload)
            elif ftype in (_CTX_CREATE, _CTX_DELETE):
                _do_ctx(ftype, payload)
            elif ftype == _PING and not payload:
                with _LOCK:
                    _send(_PONG, b"")
            else:
                raise _ProtocolError("unexpected frame 0x%x (%d bytes)" % (ftype, len(payload)))
            if _S.user_child:
                os._exit(0)
    except _ProtocolError as e:
        try:
            os.write(2, ("corral_runner: protocol error: %s\n" % e).encode("utf-8", "replace"))
        except OSError:
            pass
    finally:
        if ready_fd >= 0:
            os.close(ready_fd)
        _S.armed, _S.live, _S.fd = False, False, -1
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__


# ---------------------------------------------------------------------------------- preload

def _warm():
    """Runs the session-time paths once so that sessions find them imported and built."""
    mpl = sys.modules.get("matplotlib")
    if mpl is not None:
        mpl.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.font_manager as fm      # fontManager built/loaded in memory here
        _patch_pyplot()
        fig = plt.figure(figsize=(2, 2))
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], label="warm")
        ax.set_title(r"warm $\alpha^2$")
        ax.legend()
        for fmt in ("png", "svg"):
            fig.savefig(io.BytesIO(), format=fmt)
        plt.close("all")
        getattr(fm, "_get_font", fm.get_font).cache_clear()   # no font fds kept in the zygote
    pd = sys.modules.get("pandas")
    if pd is not None:
        df = pd.DataFrame({"a": [1.5, float("nan")], "t": pd.to_datetime(["2024-01-01", None])})
        _bundle(df)
        _bundle(df["a"])
    try:
        compile("x = 1\nx", "<warm>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
        raise ValueError("warm")
    except ValueError as e:
        _error_event(e)


def preload(modules=None):
    """Imports modules (default: numpy, pandas, matplotlib[.pyplot] with Agg, scipy[.stats]
    when present) and warms rendering; returns {"imported": {name: s}, "failed": {name: why},
    "warmup": s, "seconds": s}. Missing modules are reported, not raised."""
    t0 = time.perf_counter()
    sys.dont_write_bytecode = True
    if not getattr(sys, "argv", None):
        sys.argv = [""]
    os.environ.setdefault("MPLBACKEND", "Agg")
    imported, failed = {}, {}
    for name in (_PRELOAD if modules is None else modules):
        t = time.perf_counter()
        try:
            importlib.import_module(name)
        except Exception as e:
            failed[name] = "%s: %s" % (type(e).__name__, e)
            continue
        imported[name] = round(time.perf_counter() - t, 4)
    t = time.perf_counter()
    try:
        _warm()
    except Exception as e:   # a broken install must not stop the zygote: report it
        failed["warmup"] = "%s: %s" % (type(e).__name__, e)
    warm = round(time.perf_counter() - t, 4)
    _PRELOADED[:] = sorted({n.split(".")[0] for n in imported})
    if threading.current_thread() is threading.main_thread():
        _catch_tagged()   # here once, not in every session
    gc.collect()
    return {"imported": imported, "failed": failed, "warmup": warm,
            "seconds": round(time.perf_counter() - t0, 4)}
