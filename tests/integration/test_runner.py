"""The in-sandbox Python runner (src/engine/runner.py) against docs/design/runner-protocol.md.

No sandbox and no C: this test process is the zygote (runner_client.preload() once) and each
test forks its own session from it, talking frames over a socketpair.
"""
import base64
import json
import os
import struct
import tempfile
import time
import unittest

import runner_client as rc

PNG_SIG = b"\x89PNG\r\n\x1a\n"


def png_size(b64):
    data = base64.b64decode(b64)
    assert data[:8] == PNG_SIG, data[:16]
    assert data[12:16] == b"IHDR", data[:32]
    return struct.unpack(">II", data[16:24])


class RunnerTest(unittest.TestCase):
    asan_subset = False   # no C involved

    @classmethod
    def setUpClass(cls):
        cls.preload = rc.preload()

    def session(self, mode="stateful", **opts):
        s = rc.Session(mode, **opts)
        self.addCleanup(s.close)
        return s

    def ok(self, s, code, **kw):
        r = s.execute(code, **kw)
        self.assertEqual(r.status, 0, r)
        return r

    def failed(self, s, code, name, **kw):
        r = s.execute(code, **kw)
        self.assertEqual(r.status, 1, r)
        self.assertIsNotNone(r.error, r)
        self.assertEqual(r.error["name"], name, r)
        self.assertEqual(r.items[-1][0], "event", r)   # the error is the last thing sent
        return r

    # ---------------------------------------------------------------- session basics
    def test_preload_and_hello(self):
        self.assertIn("numpy", self.preload["imported"])
        self.assertIn("pandas", self.preload["imported"])
        self.assertIn("matplotlib.pyplot", self.preload["imported"])
        s = self.session()
        self.assertEqual(s.hello["version"], 1)
        self.assertEqual(s.hello["pid"], s.pid)
        for m in ("numpy", "pandas", "matplotlib"):
            self.assertIn(m, s.hello["preloaded"])
        self.assertTrue(s.ping())
        r = self.ok(s, "import sys, matplotlib\n"
                       "(sys.dont_write_bytecode, matplotlib.get_backend().lower(), __name__)")
        self.assertEqual(r.result["text/plain"], "(True, 'agg', '__main__')")
        self.assertEqual(s.close(), 0)

    def test_env(self):
        s = self.session(env={"FOO": "b\u00e4r", "PATH": "/usr/bin:/bin"})
        r = self.ok(s, "import os, subprocess\nsubprocess.run(['sh', '-c', 'echo $FOO'])\n"
                       "sorted(os.environ.items())")
        self.assertEqual(r.result["text/plain"], "[('FOO', 'b\u00e4r'), ('PATH', '/usr/bin:/bin')]")
        self.assertEqual(r.fd1, "b\u00e4r\n".encode())
        s = self.session(start=False)
        s.send(rc.START, {"version": 1, "env": {"A=B": "x"}})
        self.assert_protocol_error(s)

    def test_cwd(self):
        with tempfile.TemporaryDirectory() as d:
            s = self.session(cwd=d)
            r = self.ok(s, "import os; os.getcwd()")
            self.assertEqual(r.result["text/plain"], repr(d))

    # ---------------------------------------------------------------- output
    def test_print(self):
        s = self.session()
        r = self.ok(s, "print('hello')")
        self.assertEqual(r.items, [("stdout", b"hello\n")])
        self.assertEqual(r.done, {"status": 0, "exit_code": -1, "signal": 0})

    def test_stderr_and_order(self):
        s = self.session()
        r = self.ok(s, "import sys\nprint('a')\nprint('b', file=sys.stderr)\nprint('c')\n"
                       "sys.stdout.write('x'); sys.stderr.write('y')\n"
                       "sys.stdout.write('z\\n')\nNone")
        self.assertEqual(r.items, [("stdout", b"a\n"), ("stderr", b"b\n"), ("stdout", b"c\n"),
                                   ("stdout", b"x"), ("stderr", b"y"), ("stdout", b"z\n")])

    def test_binary_stdout_and_stream_api(self):
        s = self.session()
        r = self.ok(s, "import sys\nsys.stdout.buffer.write(bytes(range(256)))\n"
                       "sys.stdout.flush()\n"
                       "(sys.stdout.isatty(), sys.stdout.fileno(), sys.stderr.fileno(), "
                       "sys.stdout.encoding)")
        self.assertEqual(r.stdout, bytes(range(256)))
        self.assertEqual(r.result["text/plain"], "(False, 1, 2, 'utf-8')")
        r = self.ok(s, "import sys; sys.stdout.buffer.write(b'\\xff'); "
                       "print('\\udcfe', 'caf\\u00e9', end='', flush=True)")
        self.assertEqual(r.stdout, b"\xff\xfe caf\xc3\xa9")
        self.failed(s, "import sys; sys.stdout.write(b'x')", "TypeError")

    def test_large_output_is_chunked(self):
        s = self.session()
        r = self.ok(s, "print('x' * 200000)")
        self.assertEqual(r.stdout, b"x" * 200000 + b"\n")
        self.assertTrue(all(len(p) <= 64 * 1024 for k, p in r.items), [len(p) for k, p in r.items])

    def test_fd_output_bypasses_channel(self):
        s = self.session()
        r = self.ok(s, "import os, subprocess\nos.write(1, b'direct\\n')\n"
                       "subprocess.run(['echo', 'sub'])\nos.write(2, b'err\\n')\nprint('chan')")
        self.assertEqual(r.stdout, b"chan\n")
        self.assertEqual(r.fd1, b"direct\nsub\n")
        self.assertEqual(r.fd2, b"err\n")

    def test_output_of_replaced_stdout_is_flushed(self):
        s = self.session()
        r = self.ok(s, "import io, sys\n"
                       "sys.stdout = io.TextIOWrapper(sys.stdout.buffer, encoding='utf-8')\n"
                       "print('wrapped')")
        self.assertEqual(r.stdout, b"wrapped\n")
        r = self.ok(s, "print('again')")
        self.assertEqual(r.stdout, b"again\n")

    def test_threads_do_not_corrupt_frames(self):
        s = self.session()
        r = self.ok(s, "import sys, threading\n"
                       "def w(t):\n"
                       "    for i in range(2000): sys.stdout.write('%s%d\\n' % (t, i))\n"
                       "ts = [threading.Thread(target=w, args=(t,)) for t in 'ABC']\n"
                       "[t.start() for t in ts]\nw('M')\n[t.join() for t in ts]\nNone")
        lines = r.stdout.decode().splitlines()
        want = ["%s%d" % (t, i) for t in "ABCM" for i in range(2000)]
        self.assertEqual(sorted(lines), sorted(want))

    def test_output_between_cells_is_held(self):
        s = self.session()
        with tempfile.TemporaryDirectory() as d:
            fifo = os.path.join(d, "go")
            os.mkfifo(fifo)
            self.ok(s, "import threading\n"
                       "def bg():\n"
                       "    open(%r).read()\n"
                       "    print('bg')\n"
                       "    open(%r, 'w').close()\n"
                       "threading.Thread(target=bg).start()" % (fifo, fifo + ".done"))
            with open(fifo, "w") as f:
                f.write("x")
            deadline = time.monotonic() + 10
            while not os.path.exists(fifo + ".done") and time.monotonic() < deadline:
                time.sleep(0.01)
            self.assertTrue(os.path.exists(fifo + ".done"))
            self.assertFalse(s.frames)
            self.assertFalse(s._pump(time.monotonic() + 0.2) and s.frames,
                             "a frame arrived between requests")
            r = self.ok(s, "print('next')")
            self.assertEqual(r.items, [("stdout", b"bg\n"), ("stdout", b"next\n")])

    # ---------------------------------------------------------------- results and display
    def test_result(self):
        s = self.session()
        self.assertEqual(self.ok(s, "1 + 1").result, {"text/plain": "2"})
        self.assertEqual(self.ok(s, "x = 1\n'a' * 3").result["text/plain"], "'aaa'")
        self.assertEqual(self.ok(s, "'\u00e9;' + (\n 'x')  # ;").result["text/plain"], "'\u00e9;x'")
        self.assertEqual(self.ok(s, "'\\x0c\x0c\u2028' + (\n 'x');").events, [])
        for code in ("None", "x = 5", "print(1)", "def f(): pass", "1;", "'\u00e9' + 'x' ;  # c"):
            r = self.ok(s, code)
            self.assertFalse(r.events, (code, r))
        self.ok(s, "41 + 1")
        self.assertEqual(self.ok(s, "_").result["text/plain"], "42")

    def test_display_order_and_repr_html(self):
        s = self.session()
        r = self.ok(s, "print('a')\ndisplay('b', 3)\nprint('c')\n"
                       "class H:\n    def _repr_html_(self): return '<b>h</b>'\n"
                       "    def __repr__(self): return 'H()'\nH()")
        kinds = [(k, v["type"] if k == "event" else v) for k, v in r.items]
        self.assertEqual(kinds, [("stdout", b"a\n"), ("event", "display"), ("event", "display"),
                                 ("stdout", b"c\n"), ("event", "result")])
        self.assertEqual(r.displays[0]["data"], {"text/plain": "'b'"})
        self.assertEqual(r.result, {"text/plain": "H()", "text/html": "<b>h</b>"})

    def test_dataframe(self):
        s = self.session(max_rows=5, max_table_rows=10)
        r = self.ok(s, "import pandas as pd, numpy as np\n"
                       "df = pd.DataFrame({'n': range(30),\n"
                       "    'f': [np.nan, np.inf] + [i / 2 for i in range(28)],\n"
                       "    't': [pd.NaT] + list(pd.date_range('2024-01-01', periods=29)),\n"
                       "    's': ['<b>&'] * 30})\ndf")
        d = r.result
        self.assertIn("text/plain", d)
        html = d["text/html"]
        self.assertIn("<table", html)
        self.assertIn("&lt;b&gt;&amp;", html)
        self.assertNotIn("<b>&", html)
        self.assertLessEqual(html.count("<tr>") - 1, 6, html)   # header + 5 rows + "..." row
        t = d["application/vnd.corral.table+json"]
        self.assertEqual(t["columns"], ["n", "f", "t", "s"])
        self.assertEqual(t["dtypes"], ["int64", "float64", "datetime64[ns]", "object"])
        self.assertEqual(len(t["rows"]), 10)
        self.assertEqual((t["total_rows"], t["truncated"]), (30, True))
        self.assertEqual(t["rows"][0], [0, None, None, "<b>&"])
        self.assertEqual(t["rows"][1], [1, None, "2024-01-01T00:00:00", "<b>&"])
        self.assertEqual(t["rows"][2][1], 0.0)
        # a Series, and a meaningful index (groupby) that becomes a leading column
        r = self.ok(s, "display(df['n'].head(3))\ndf.assign(g=df.n % 2).groupby('g')['n'].sum()")
        t = r.displays[0]["data"]["application/vnd.corral.table+json"]
        self.assertEqual((t["columns"], t["rows"], t["truncated"]), (["n"], [[0], [1], [2]], False))
        t = r.result["application/vnd.corral.table+json"]
        self.assertEqual((t["columns"], t["rows"]), (["g", "n"], [[0, 210], [1, 225]]))

    def test_two_figures_in_one_cell(self):
        s = self.session()
        r = self.ok(s, "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\n"
                       "fig = plt.figure(figsize=(3, 2), dpi=50)\nplt.plot([3, 2, 1])\nNone")
        self.assertEqual([e["id"] for e in r.displays], ["fig-1", "fig-2"])
        self.assertEqual([png_size(e["data"]["image/png"]) for e in r.displays],
                         [(640, 480), (150, 100)])
        self.assertTrue(r.displays[0]["data"]["text/plain"].startswith("<Figure size 640x480"))
        self.assertNotIn("image/svg+xml", r.displays[0]["data"])

    def test_show_then_more_plotting(self):
        s = self.session()
        r = self.ok(s, "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()\n"
                       "print('between')\nplt.figure(figsize=(2, 2), dpi=50)\nplt.plot([2, 1])\n"
                       "None")
        kinds = [(k, v["type"] if k == "event" else v) for k, v in r.items]
        self.assertEqual(kinds, [("event", "display"), ("stdout", b"between\n"),
                                 ("event", "display")])
        self.assertEqual([png_size(e["data"]["image/png"]) for e in r.displays],
                         [(640, 480), (100, 100)])

    def test_figures_do_not_leak(self):
        s = self.session()
        r = self.ok(s, "import matplotlib.pyplot as plt\nplt.plot([1])\nNone")
        self.assertEqual(len(r.displays), 1)
        r = self.ok(s, "len(plt.get_fignums())")
        self.assertEqual(r.result["text/plain"], "0")
        self.assertEqual(r.displays, [])
        r = self.failed(s, "plt.plot([1])\nraise ValueError('after plot')", "ValueError")
        self.assertEqual([e["id"] for e in r.displays], ["fig-2"])   # ids go on per session
        self.assertEqual(self.ok(s, "len(plt.get_fignums())").result["text/plain"], "0")

    def test_svg_when_asked(self):
        s = self.session()
        r = self.ok(s, "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nNone", svg=True)
        d = r.displays[0]["data"]
        self.assertIn("<svg", d["image/svg+xml"])
        png_size(d["image/png"])

    def test_display_of_figure_object(self):
        s = self.session()
        r = self.ok(s, "from matplotlib.figure import Figure\nf = Figure(figsize=(1, 1), dpi=80)\n"
                       "f.add_subplot().plot([1, 2])\ndisplay(f)")
        self.assertEqual(len(r.displays), 1)
        self.assertEqual(png_size(r.displays[0]["data"]["image/png"]), (80, 80))

    # ---------------------------------------------------------------- errors
    def assert_clean_traceback(self, tb):
        self.assertNotIn("runner.py", tb)
        self.assertNotIn(rc.RUNNER, tb)
        self.assertNotIn("corral_runner", tb)
        self.assertNotIn("_run_cell", tb)

    def test_exception_traceback(self):
        s = self.session()
        r = self.failed(s, "def f(x):\n    return 1 / x\nf(0)", "ZeroDivisionError", cell=7)
        e = r.error
        self.assertEqual(e["value"], "division by zero")
        tb = e["traceback"]
        self.assertTrue(tb.startswith('Traceback (most recent call last):\n  File "<cell 7>"'), tb)
        self.assertIn("    return 1 / x", tb)
        self.assertIn("    f(0)", tb)
        self.assert_clean_traceback(tb)
        # library frames below the cell stay
        r = self.failed(s, "import json\njson.loads('{')", "JSONDecodeError")
        self.assertIn("json/decoder.py", r.error["traceback"])
        self.assert_clean_traceback(r.error["traceback"])
        # raised inside display(): the runner's frames in the middle are cut too
        r = self.failed(s, "class B:\n    def __repr__(self): raise RuntimeError('bad repr')\n"
                           "display(B())", "RuntimeError")
        self.assertIn("raise RuntimeError('bad repr')", r.error["traceback"])
        self.assert_clean_traceback(r.error["traceback"])

    def test_syntax_error(self):
        s = self.session()
        r = self.failed(s, "x = 1\ny = (1,\n", "SyntaxError", cell=3)
        tb = r.error["traceback"]
        self.assertIn('File "<cell 3>", line 2', tb)
        self.assertIn("    y = (1,\n", tb)
        self.assertIn("^", tb)
        self.assert_clean_traceback(tb)
        self.failed(s, "return 1", "SyntaxError")          # a compile-time error
        self.assertEqual(self.ok(s, "'x' in dir()").result["text/plain"], "False")

    def test_json_safety_of_errors(self):
        s = self.session()
        r = self.failed(s, "raise ValueError('a\\x00b\\udcff\\\\u0000')", "ValueError")
        self.assertEqual(r.error["value"], "a\ufffdb?\\u0000")

    def test_sys_exit(self):
        s = self.session()
        r = self.failed(s, "import sys\nsys.exit(3)", "SystemExit")
        self.assertEqual(r.error["value"], "3")
        self.assertEqual(self.ok(s, "1").result["text/plain"], "1")

    def test_os_exit_stateless(self):
        s = self.session("stateless")
        r = s.execute("import os\nprint('before')\nos._exit(1)")
        self.assertEqual(r.done, {"status": 2, "exit_code": 1, "signal": 0})
        self.assertEqual(r.stdout, b"before\n")
        r = s.execute("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
        self.assertEqual(r.done, {"status": 2, "exit_code": -1, "signal": 9})
        self.assertEqual(self.ok(s, "2").result["text/plain"], "2")

    def test_os_exit_stateful_ends_session(self):
        s = self.session()
        r = s.execute("import os\nos._exit(1)")
        self.assertTrue(r.eof)
        self.assertIsNone(r.done)
        st = s.wait_exit()
        self.assertTrue(os.WIFEXITED(st) and os.WEXITSTATUS(st) == 1, st)

    # ---------------------------------------------------------------- interrupts
    def interrupt_sleep(self, s):
        s.submit("import time\nprint('go', flush=True)\ntime.sleep(30)")
        self.assertEqual(s.recv(), (rc.STDOUT, b"go\n"))   # the cell is running
        s.interrupt()
        r = s.collect(timeout=10)
        self.assertEqual(r.status, 1, r)
        self.assertEqual(r.error["name"], "KeyboardInterrupt")
        # raised in the cell: at time.sleep, or in the print if the signal came while it was
        # still finishing its frame (the interrupt is deferred to the end of the frame)
        self.assertRegex(r.error["traceback"], r'File "<cell \d+>", line [23], in <module>')
        self.assert_clean_traceback(r.error["traceback"])
        self.assertEqual(self.ok(s, "'alive'").result["text/plain"], "'alive'")

    def test_interrupt_stateful(self):
        s = self.session()
        self.ok(s, "kept = 5")
        self.interrupt_sleep(s)
        self.assertEqual(self.ok(s, "kept").result["text/plain"], "5")

    def test_interrupt_stateless(self):
        self.interrupt_sleep(self.session("stateless"))

    def test_interrupt_before_the_cell_begins(self):
        # The host's interrupt right behind its request (a client that hangs up at once, a
        # deadline of 1 ms): it comes while the runner still reads and parses 1 MiB of cell,
        # before the cell is armed.  It is kept for that cell, not lost (the cell would sleep
        # on to its deadline, and a deadline's interrupt lost is a killed session).
        pad = "#" * ((1 << 20) - 200) + "\n"
        for mode in ("stateful", "stateless"):
            s = self.session(mode)
            t0 = time.monotonic()
            s.submit(pad + "import time\ntime.sleep(30)\n", cell=7)
            s.interrupt_cell(7)
            r = s.collect(timeout=10)
            self.assertLess(time.monotonic() - t0, 10, mode)
            self.assertEqual(r.status, 1, (mode, r))
            self.assertEqual(r.error["name"], "KeyboardInterrupt", (mode, r))
            self.assertEqual(self.ok(s, "'alive'", cell=8).result["text/plain"], "'alive'", mode)

    def test_a_late_interrupt_is_dropped(self):
        # One for a cell that has ended -- before the next request, while it is read, while it
        # runs -- does not touch the next cell; the next cell's own one does.
        for mode in ("stateful", "stateless"):
            s = self.session(mode)
            self.ok(s, "1", cell=3)
            for _ in range(50):
                s.interrupt_cell(3)
            s.submit("import time\nprint('go', flush=True)\ntime.sleep(0.3)\nprint('done')",
                     cell=4)
            for _ in range(50):
                s.interrupt_cell(3)
            self.assertEqual(s.recv(), (rc.STDOUT, b"go\n"))
            for _ in range(50):
                s.interrupt_cell(3)
            r = s.collect(timeout=10)
            self.assertEqual(r.status, 0, (mode, r))
            self.assertEqual(r.stdout, b"done\n", mode)
            s.submit("import time\nprint('go', flush=True)\ntime.sleep(30)", cell=5)
            self.assertEqual(s.recv(), (rc.STDOUT, b"go\n"))
            s.interrupt_cell(5)
            r = s.collect(timeout=10)
            self.assertEqual(r.error["name"], "KeyboardInterrupt", (mode, r))

    def test_a_cells_own_sigint_handler_gets_the_interrupt(self):
        s = self.session()
        s.submit("import signal, time\n"
                 "signal.signal(signal.SIGINT, lambda *a: print('caught', flush=True))\n"
                 "print('go', flush=True)\ntime.sleep(0.5)\nprint('after')", cell=2)
        self.assertEqual(s.recv(), (rc.STDOUT, b"go\n"))
        s.interrupt_cell(2)
        r = s.collect(timeout=10)
        self.assertEqual(r.status, 0, r)
        self.assertEqual(r.stdout, b"caught\nafter\n")   # ("go" was received above)

    def test_sigint_while_idle_is_ignored(self):
        for mode in ("stateful", "stateless"):
            s = self.session(mode)
            s.interrupt()
            time.sleep(0.1)
            self.assertTrue(s.ping())
            self.assertEqual(self.ok(s, "1").result["text/plain"], "1")

    def test_interrupt_during_output(self):
        s = self.session()
        s.submit("import sys\nprint('go', flush=True)\nwhile True:\n    print('x' * 100)")
        self.assertEqual(s.recv(), (rc.STDOUT, b"go\n"))
        s.interrupt()
        r = s.collect(timeout=10)     # every frame still decodes
        self.assertEqual(r.error["name"], "KeyboardInterrupt", r.error)
        self.assertEqual(self.ok(s, "print('ok')").stdout, b"ok\n")

    def interrupt_storm(self, s, seconds=0.2):
        """SIGINTs back to back for a while, as when a client's hang-up and the cell's deadline
        come in the same millisecond: later ones land while the first is being handled."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            s.interrupt()

    def survives_storms(self, start, rounds):
        """start(session) begins a request and returns once it runs; a storm then ends it with
        KeyboardInterrupt, and the session answers the next cell."""
        for _ in range(rounds):
            s = self.session()
            start(s)
            self.interrupt_storm(s)
            r = s.collect(timeout=10)
            self.assertEqual(r.status, 1, r)
            self.assertEqual(r.error["name"], "KeyboardInterrupt", r)
            self.assertEqual(self.ok(s, "'alive'").result["text/plain"], "'alive'")

    def test_interrupt_storm_during_a_cell(self):
        def start(s):
            s.submit("import time\nprint('go', flush=True)\ntime.sleep(30)")
            self.assertEqual(s.recv(), (rc.STDOUT, b"go\n"))
        self.survives_storms(start, 3)

    def test_interrupt_storm_during_a_command(self):
        def start(s):
            s.submit_command(["/bin/sleep", "30"])
            kind, payload = s.recv()
            self.assertEqual((kind, json.loads(payload)["type"]), (rc.EVENT, "process"))
        # each round is one chance at the window: the old runner died in ~1 of 15
        self.survives_storms(start, 8)

    # ---------------------------------------------------------------- modes and contexts
    def test_stateful_keeps_state(self):
        s = self.session()
        with tempfile.NamedTemporaryFile("w+") as tmp:
            self.ok(s, "x = 1\nimport json\nf = open(%r, 'w')" % tmp.name)
            self.assertEqual(self.ok(s, "x + 1").result["text/plain"], "2")
            self.ok(s, "f.write(json.dumps([x])); f.close()")
            self.assertEqual(open(tmp.name).read(), "[1]")

    def test_stateless_is_fresh_and_warm(self):
        s = self.session("stateless")
        self.ok(s, "x = 1")
        self.failed(s, "x", "NameError")
        r = self.ok(s, "import sys\nwarm = 'pandas' in sys.modules\nimport pandas\n"
                       "(warm, 'display' in globals(), __name__)")
        self.assertEqual(r.result["text/plain"], "(True, True, '__main__')")
        a = self.ok(s, "import numpy as np, random\n(np.random.rand(), random.random())")
        b = self.ok(s, "import numpy as np, random\n(np.random.rand(), random.random())")
        self.assertNotEqual(a.result, b.result)   # each fork gets fresh random state
        r = self.ok(s, "import matplotlib.pyplot as plt\nplt.plot([1])\nNone")
        r2 = self.ok(s, "import matplotlib.pyplot as plt\nplt.plot([1])\nNone")
        self.assertEqual([r.displays[0]["id"], r2.displays[0]["id"]], ["fig-1", "fig-2"])

    def test_contexts(self):
        s = self.session()
        r = s.ctx_create("a")
        self.assertEqual(r.status, 0)
        self.assertEqual(r.events, [{"type": "context", "action": "created", "context": "a"}])
        self.ok(s, "x = 1")
        self.ok(s, "x = 2", context="a")
        self.assertEqual(self.ok(s, "x").result["text/plain"], "1")
        self.assertEqual(self.ok(s, "x", context="a").result["text/plain"], "2")
        for bad in ("a", "no spaces", ""):
            r = s.ctx_create(bad)
            self.assertEqual((r.status, r.error["name"]), (1, "ContextError"), r)
        r = s.ctx_delete("a")
        self.assertEqual(r.events, [{"type": "context", "action": "deleted", "context": "a"}])
        r = self.failed(s, "x", "ContextError", context="a")
        self.assertIn("'a'", r.error["value"])
        r = s.ctx_delete("default")
        self.assertEqual((r.status, r.error["name"]), (1, "ContextError"))
        r = s.ctx_delete("nope")
        self.assertEqual((r.status, r.error["name"]), (1, "ContextError"))
        self.assertEqual(self.ok(s, "x").result["text/plain"], "1")

    def test_multiprocessing_with_cell_functions(self):
        s = self.session()
        r = self.ok(s, "from multiprocessing import Pool\ndef sq(v):\n    print('w')\n"
                       "    return v * v\nwith Pool(2) as p:\n    out = p.map(sq, range(5))\nout")
        self.assertEqual(r.result["text/plain"], "[0, 1, 4, 9, 16]")
        self.assertEqual(r.stdout, b"")             # workers write to fd 1, not the channel
        self.assertEqual(r.fd1.count(b"w"), 5)     # two writes per print: may interleave

    def test_fork_child_output_goes_to_fd(self):
        s = self.session()
        r = self.ok(s, "import os, sys\nprint('pre', end='')\npid = os.fork()\n"
                       "if pid == 0:\n    print('child')\n    sys.stdout.flush()\n    os._exit(0)\n"
                       "os.waitpid(pid, 0)\nprint('parent')")
        self.assertEqual(r.stdout, b"preparent\n")
        self.assertEqual(r.fd1, b"child\n")
        # a child that falls back into the runner ends there without touching the channel
        r = self.ok(s, "import os\npid = os.fork()\nprint('both', pid == 0)\n"
                       "if pid: os.waitpid(pid, 0)")
        self.assertEqual(r.stdout, b"both False\n")
        self.assertEqual(r.fd1, b"both True\n")
        # forks while a thread is writing (it may hold the runner's lock), and a stream object
        # kept from before the fork: no deadlock, the child's output reaches fd 1
        r = s.execute("import os, sys, threading\nsaved, stop = sys.stdout, False\n"
                      "def spam():\n    while not stop: sys.stdout.write('t\\n')\n"
                      "th = threading.Thread(target=spam); th.start()\n"
                      "for i in range(20):\n    pid = os.fork()\n"
                      "    if pid == 0:\n        saved.write('k%d\\n' % i); os._exit(0)\n"
                      "    os.waitpid(pid, 0)\nstop = True; th.join()", timeout=20)
        self.assertEqual(r.status, 0, r)
        self.assertEqual(sorted(r.fd1.split()), sorted(b"k%d" % i for i in range(20)))
        self.assertEqual(set(r.stdout.split()), {b"t"})
        self.assertEqual(self.ok(s, "'alive'").result["text/plain"], "'alive'")

    # ---------------------------------------------------------------- limits and checks
    def test_import_allowlist(self):
        s = self.session(allow_imports=["numpy", "pandas"])
        r = self.failed(s, "print('ran')\nimport os", "ImportError")
        self.assertIn("'os'", r.error["value"])
        self.assertIn("numpy, pandas", r.error["value"])
        self.assertIn("line 2", r.error["traceback"])
        self.assertEqual(r.stdout, b"")               # refused before anything ran
        r = self.failed(s, "def f():\n    from subprocess import run", "ImportError")
        self.assertIn("'subprocess'", r.error["value"])
        self.failed(s, "from . import x", "ImportError")
        self.ok(s, "import numpy.linalg\nfrom pandas import DataFrame\nimport numpy as np")

    def test_oversized_event_becomes_note(self):
        s = self.session(max_bytes=4096)
        r = self.ok(s, "display('x' * 100000)")
        d = r.displays[0]["data"]
        self.assertEqual(list(d), ["text/plain"])
        self.assertIn("dropped", d["text/plain"])
        self.assertIn("4096", d["text/plain"])
        r = self.failed(s, "raise ValueError('y' * 100000)", "ValueError")
        self.assertLess(len(json.dumps(r.error)), 4096)
        self.assertIn("more characters", r.error["value"])
        r = self.ok(s, "import matplotlib.pyplot as plt\nplt.plot(range(100))\nNone")
        self.assertNotIn("image/png", r.displays[0]["data"])
        self.assertIn("image/png", r.displays[0]["data"]["text/plain"])

    def test_no_cache_writes_at_session_time(self):
        s = self.session("stateless")
        r = self.ok(s, "import sys, os\nwrites = []\n"
                       "def hook(ev, args):\n"
                       "    if ev == 'open' and (\n"
                       "        (isinstance(args[1], str) and set(args[1]) & set('wax+')) or\n"
                       "        (args[2] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))):\n"
                       "        writes.append(args[0])\n"
                       "sys.addaudithook(hook)\n"
                       "import matplotlib.pyplot as plt, pandas as pd\n"
                       "plt.plot([1, 2]); plt.title(r'$\\alpha$ t'); plt.xlabel('x')\n"
                       "plt.show()\ndisplay(pd.DataFrame({'a': [1.5]}))\nwrites", svg=True)
        self.assertEqual(r.result["text/plain"], "[]")
        self.assertEqual(len(r.displays), 2)

    # ---------------------------------------------------------------- protocol violations
    def assert_protocol_error(self, s):
        self.assertIsNone(s.recv(timeout=10))      # channel EOF: serve() returned
        st = s.wait_exit()
        self.assertTrue(os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0, st)
        self.assertIn(b"protocol error", s.fd_bytes()[1])

    def test_protocol_unknown_frame_type(self):
        s = self.session()
        s.send(0x7F)
        self.assert_protocol_error(s)

    def test_protocol_oversize_frame(self):
        s = self.session()
        s.send_raw(struct.pack("<II", rc.EXEC, 4 * 1024 * 1024 + 1))
        self.assert_protocol_error(s)

    def test_protocol_bad_requests(self):
        for first in (rc.encode(rc.EXEC, {"code": "1"}),                 # no START
                      rc.encode(rc.START, {"version": 2}),
                      rc.encode(rc.START, b"not json"),
                      rc.encode(rc.START, {"version": 1, "mode": "odd"}),
                      rc.encode(rc.START, {"version": 1, "max_rows": True})):
            s = self.session(start=False)
            s.send_raw(first)
            self.assert_protocol_error(s)
        s = self.session()
        s.send(rc.EXEC, {"context": "default"})                         # no code
        self.assert_protocol_error(s)
        s = self.session()
        s.send(rc.START, {"version": 1})                                # START twice
        self.assert_protocol_error(s)
        s = self.session()
        s.send_raw(rc.encode(rc.EXEC, b'{"code": "1"}')[:12])          # EOF inside a frame
        s.sock.shutdown(2)
        self.assert_protocol_error(s)


if __name__ == "__main__":
    unittest.main()
