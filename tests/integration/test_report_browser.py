"""The rendered report as a browser sees it.

The sample report comes from the unit test binary (build/<variant>/tests/test_report writes it
when CORRAL_REPORT_SAMPLE_OUT is set): a realistic body with figures, captured tables, GFM,
long words and URLs, and a few inert attacks.  Checks:
  - the HTML is well formed (every non-void element closed, in order) and has the fixed shell;
  - no http(s) anywhere, no script, no event handler, only #fragment links (to existing ids),
    only data: images, a CSP meta that forbids scripts and remote loads;
  - every <img> is a data:image/png;base64 URI of a valid PNG (signature, IHDR CRC, IEND);
  - Debian's headless Chromium renders it: screenshots at 1280 and 375 px wide and a PDF print
    go to build/test-artifacts/ for review;
  - with playwright-core (tests/node): no horizontal scroll at 375 px, no request other than the
    file itself, no console message or page error, and the CSP stops an injected script.
The same checks then run on reports that `corral analyze` itself wrote (AnalyzeReportTest): the
offline analyst on the demo dataset, and a model run (the scripted model server) whose body
carries script, event-handler, javascript: and remote-image attacks next to real figures and a
wide table.  Their full-page screenshots go to build/test-artifacts/analyze-offline/ and
analyze-model/.
"""
import atexit
import base64
import html.parser
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import unittest
import zlib

from harness import BUILD, CORRAL, ROOT, require, run

CHROMIUM = "/usr/bin/chromium"
NODE = shutil.which("node") or "/usr/bin/node"
NODE_DIR = os.path.join(ROOT, "tests", "node")
ARTIFACTS = os.path.join(ROOT, "build", "test-artifacts")
CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
       "base-uri 'none'; form-action 'none'")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
FIGURES = ["fig-revenue", "fig-trend", "fig-extra"]

_sample = {}


def sample():
    """(path, html text) of the sample report, rendered once per run."""
    if "path" not in _sample:
        binary = os.path.join(BUILD, "tests", "test_report")
        require(os.access(binary, os.X_OK), "%s not built (make %s)" % (binary, binary))
        d = tempfile.mkdtemp(prefix="corral-report-")
        atexit.register(shutil.rmtree, d, True)
        path = os.path.join(d, "report.html")
        p = run([binary], env={"CORRAL_REPORT_SAMPLE_OUT": path}, timeout=300)
        if p.returncode != 0 or not os.path.exists(path):
            raise AssertionError("test_report failed (%d): %s" % (
                p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")[-3000:]))
        with open(path, encoding="utf-8") as f:
            _sample["path"], _sample["html"] = path, f.read()
    return _sample["path"], _sample["html"]


def png_info(data):
    """(width, height) of a PNG whose signature, IHDR (with CRC) and IEND are valid."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise AssertionError("PNG signature missing")
    length, ctype = struct.unpack(">I4s", data[8:16])
    if length != 13 or ctype != b"IHDR":
        raise AssertionError("first chunk is not IHDR")
    if zlib.crc32(data[12:29]) != struct.unpack(">I", data[29:33])[0]:
        raise AssertionError("IHDR CRC mismatch")
    if data[-12:] != b"\x00\x00\x00\x00IEND\xaeB`\x82":
        raise AssertionError("IEND missing (truncated PNG)")
    w, h = struct.unpack(">II", data[16:24])
    if not (w and h):
        raise AssertionError("empty PNG")
    return w, h


class Collector(html.parser.HTMLParser):
    """Collects tags/attributes and checks nesting: every non-void start tag closed in order."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.tags, self.ids = [], [], [], []
        self.doctype = None
        self.style = []
        self._in_style = False

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))
        for k, v in attrs:
            if k == "id":
                self.ids.append(v)
        if tag not in VOID:
            self.stack.append(tag)
        self._in_style = tag == "style"

    def handle_startendtag(self, tag, attrs):
        self.errors.append("self-closing <%s/>" % tag)
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag):
        self._in_style = False
        if tag in VOID:
            self.errors.append("end tag for void element </%s>" % tag)
        elif not self.stack or self.stack[-1] != tag:
            self.errors.append("</%s> closes <%s>" % (tag, self.stack[-1] if self.stack else "-"))
        else:
            self.stack.pop()

    def handle_data(self, data):
        if self._in_style:
            self.style.append(data)


def parse(text):
    c = Collector()
    c.feed(text)
    c.close()
    return c


class ReportHtmlTest(unittest.TestCase):
    def test_well_formed_shell(self):
        _, text = sample()
        c = parse(text)
        self.assertEqual(c.errors, [])
        self.assertEqual(c.stack, [], "elements left open")
        self.assertEqual(c.doctype, "DOCTYPE html")
        names = [t for t, _ in c.tags]
        self.assertEqual(names[:3], ["html", "head", "meta"])
        self.assertEqual(dict(c.tags[0][1]).get("lang"), "en")
        self.assertEqual(c.tags[2][1], [("charset", "utf-8")])
        metas = [dict(a) for t, a in c.tags if t == "meta"]
        # The CSP comes right after the charset, before anything that could load.
        self.assertEqual(metas[1], {"http-equiv": "Content-Security-Policy", "content": CSP})
        self.assertIn({"name": "viewport", "content": "width=device-width, initial-scale=1"}, metas)
        for t in ("title", "style", "header", "main", "nav", "article", "footer"):
            self.assertEqual(names.count(t), 1, t)
        self.assertEqual(len(c.ids), len(set(c.ids)), "duplicate ids")

    def test_no_scripts_no_remote_references(self):
        _, text = sample()
        self.assertIsNone(re.search(r"https?://", text, re.I))
        self.assertIsNone(re.search(r"<script", text, re.I))
        self.assertIsNone(re.search(r"javascript:", text, re.I))
        c = parse(text)
        forbidden = {"script", "iframe", "object", "embed", "link", "base", "form", "input",
                     "frame", "frameset", "applet", "audio", "video", "source", "svg", "math"}
        for tag, attrs in c.tags:
            self.assertNotIn(tag, forbidden)
            for k, v in attrs:
                self.assertFalse(k.startswith("on"), "event handler %s on <%s>" % (k, tag))
                self.assertNotIn(k, ("srcset", "style", "background", "poster", "action",
                                     "formaction", "xlink:href"))
                if k == "href":
                    self.assertTrue(v.startswith("#"), v)
                    self.assertIn(v[1:], c.ids, "link to a missing id: %s" % v)
                if k == "src":
                    self.assertRegex(v, r"^data:image/(png|svg\+xml);base64,")
        css = "".join(c.style)
        self.assertNotIn("url(", css)
        self.assertNotIn("@import", css)
        self.assertIn("@media print", css)
        self.assertIn("--brand-primary:", css)

    def test_images_are_valid_pngs(self):
        _, text = sample()
        c = parse(text)
        imgs = [dict(a) for t, a in c.tags if t == "img"]
        self.assertEqual(len(imgs), 1 + len(FIGURES))  # logo + figures
        for img in imgs:
            src = img["src"]
            self.assertTrue(src.startswith("data:image/png;base64,"), src[:40])
            w, h = png_info(base64.b64decode(src.split(",", 1)[1], validate=True))
            self.assertIn("alt", img)
            if "width" in img:
                self.assertEqual((int(img["width"]), int(img["height"])), (w, h))
        # Every captured figure is present exactly once, with its image.
        for fid in FIGURES:
            self.assertEqual(text.count('id="figure-%s"' % fid), 1, fid)
            block = text.split('id="figure-%s"' % fid, 1)[1].split("</figure>", 1)[0]
            self.assertEqual(block.count("<img "), 1, fid)
        self.assertNotIn("[missing", text)
        self.assertIn('id="table-table-regions"', text)
        self.assertIn("Showing 200 of 48,213 rows.", text)


def check_page(tc, text, figures):
    """The static checks of a report: well formed, the fixed shell, nothing active or remote,
    every <img> a valid PNG, every figure id once.  tc: a TestCase."""
    c = parse(text)
    tc.assertEqual(c.errors, [])
    tc.assertEqual(c.stack, [], "elements left open")
    tc.assertEqual(c.doctype, "DOCTYPE html")
    metas = [dict(a) for t, a in c.tags if t == "meta"]
    tc.assertEqual(metas[1], {"http-equiv": "Content-Security-Policy", "content": CSP})
    names = [t for t, _ in c.tags]
    for t in ("title", "style", "header", "main", "nav", "article", "footer"):
        tc.assertEqual(names.count(t), 1, t)
    tc.assertEqual(len(c.ids), len(set(c.ids)), "duplicate ids")
    tc.assertIsNone(re.search(r"https?://", text, re.I))
    tc.assertIsNone(re.search(r"<script|javascript:|onerror|onload", text, re.I))
    for tag, attrs in c.tags:
        tc.assertNotIn(tag, ("script", "iframe", "object", "embed", "link", "base", "form"))
        for k, v in attrs:
            tc.assertFalse(k.startswith("on"), "event handler %s on <%s>" % (k, tag))
            if k == "href":
                tc.assertTrue(v.startswith("#") and v[1:] in c.ids, v)
            if k == "src":
                tc.assertRegex(v, r"^data:image/(png|svg\+xml);base64,")
    imgs = [dict(a) for t, a in c.tags if t == "img"]
    for img in imgs:
        if img["src"].startswith("data:image/png"):
            w, h = png_info(base64.b64decode(img["src"].split(",", 1)[1], validate=True))
            tc.assertEqual((int(img["width"]), int(img["height"])), (w, h))
        tc.assertTrue(img.get("alt"), img["src"][:40])
    for fid in figures:
        tc.assertEqual(text.count('id="figure-%s"' % fid), 1, fid)
    tc.assertNotIn("[missing", text)
    return c


def layout(tc, path, outdir):
    """report_layout.mjs on a file: the measured result (asserting what every report must)."""
    require(os.access(CHROMIUM, os.X_OK), "Debian's chromium is not installed (make deps)")
    require(os.access(NODE, os.X_OK), "node is not installed (make deps)")
    require(os.path.isdir(os.path.join(NODE_DIR, "node_modules", "playwright-core")),
            "tests/node/node_modules missing (make deps runs npm ci --prefix tests/node)")
    os.makedirs(outdir, exist_ok=True)
    p = run([NODE, os.path.join(NODE_DIR, "report_layout.mjs"), path, outdir],
            env={"CHROMIUM": CHROMIUM, "HOME": tempfile.gettempdir()}, timeout=300)
    try:
        r = json.loads(p.stdout)
    except ValueError:
        raise AssertionError("report_layout.mjs failed (%d): %s" % (
            p.returncode, p.stderr.decode("utf-8", "replace")[-3000:]))
    mobile, desktop = r["viewports"]["mobile"], r["viewports"]["desktop"]
    tc.assertEqual(mobile["clientWidth"], 375)
    tc.assertLessEqual(mobile["scrollWidth"], mobile["clientWidth"], mobile["offenders"])
    tc.assertEqual(mobile["offenders"], [])
    tc.assertLessEqual(desktop["scrollWidth"], desktop["clientWidth"], desktop["offenders"])
    for img in mobile["images"]:
        tc.assertTrue(img["complete"] and img["naturalWidth"] > 0, img)
        tc.assertLessEqual(img["width"], 375)
    tc.assertEqual(mobile["scripts"], 0)
    tc.assertEqual([u for u in r["requests"] if not u.startswith(("file://", "data:"))], [])
    tc.assertEqual(r["consoleMessages"], [])
    tc.assertEqual(r["pageErrors"], [])
    tc.assertFalse(r["inlineScriptRan"], "the CSP did not stop an injected script")
    for v in (mobile, desktop):
        with open(v["screenshot"], "rb") as f:
            w, h = png_info(f.read())
        tc.assertIn(w, (375, 1280))
        tc.assertGreater(h, 1000)  # the full page, not one screen
    with open(r["pdf"], "rb") as f:
        tc.assertTrue(f.read(5) == b"%PDF-")
    return r


def chromium_screenshot(path, out_png, width, height, tmp):
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp)
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
            "--user-data-dir=" + profile, "--window-size=%d,%d" % (width, height),
            "--screenshot=" + out_png, "file://" + path]
    return run(args, timeout=180)


class ReportChromiumTest(unittest.TestCase):
    def setUp(self):
        require(os.access(CHROMIUM, os.X_OK), "Debian's chromium is not installed (make deps)")
        os.makedirs(ARTIFACTS, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix="corral-chromium-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_screenshots_and_print(self):
        path, _ = sample()
        for name, w in (("desktop", 1280), ("mobile", 375)):
            out = os.path.join(ARTIFACTS, "report-%s.png" % name)
            if os.path.exists(out):
                os.unlink(out)
            p = chromium_screenshot(path, out, w, 2400, self.tmp)
            self.assertTrue(os.path.exists(out), "no screenshot (exit %d): %s" % (
                p.returncode, p.stderr.decode("utf-8", "replace")[-2000:]))
            with open(out, "rb") as f:
                self.assertEqual(png_info(f.read()), (w, 2400))
        pdf = os.path.join(ARTIFACTS, "report-print-chromium.pdf")
        profile = tempfile.mkdtemp(prefix="chromium-", dir=self.tmp)
        p = run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage", "--no-pdf-header-footer",
                 "--user-data-dir=" + profile, "--print-to-pdf=" + pdf, "file://" + path],
                timeout=180)
        self.assertTrue(os.path.exists(pdf), p.stderr.decode("utf-8", "replace")[-2000:])
        with open(pdf, "rb") as f:
            data = f.read()
        self.assertTrue(data.startswith(b"%PDF-"))
        self.assertGreater(len(re.findall(rb"/Type\s*/Page[^s]", data)), 1)


class ReportLayoutTest(unittest.TestCase):
    """Layout measured in the browser (playwright-core over Debian's Chromium)."""

    def test_mobile_layout_and_isolation(self):
        require(os.access(CHROMIUM, os.X_OK), "Debian's chromium is not installed (make deps)")
        require(os.access(NODE, os.X_OK), "node is not installed (make deps)")
        require(os.path.isdir(os.path.join(NODE_DIR, "node_modules", "playwright-core")),
                "tests/node/node_modules missing (make deps runs npm ci --prefix tests/node)")
        path, _ = sample()
        os.makedirs(ARTIFACTS, exist_ok=True)
        p = run([NODE, os.path.join(NODE_DIR, "report_layout.mjs"), path, ARTIFACTS],
                env={"CHROMIUM": CHROMIUM, "HOME": tempfile.gettempdir()}, timeout=300)
        try:
            r = json.loads(p.stdout)
        except ValueError:
            raise AssertionError("report_layout.mjs failed (%d): %s" % (
                p.returncode, p.stderr.decode("utf-8", "replace")[-3000:]))
        mobile, desktop = r["viewports"]["mobile"], r["viewports"]["desktop"]
        # No horizontal scroll on a phone: the page is exactly as wide as the viewport.
        self.assertEqual(mobile["clientWidth"], 375)
        self.assertLessEqual(mobile["scrollWidth"], mobile["clientWidth"], mobile["offenders"])
        self.assertEqual(mobile["offenders"], [])
        self.assertLessEqual(desktop["scrollWidth"], desktop["clientWidth"], desktop["offenders"])
        # Wide tables scroll inside their wrapper instead.
        self.assertTrue(any(w["scrollWidth"] > w["clientWidth"] for w in mobile["tableWraps"]))
        for img in mobile["images"]:
            self.assertTrue(img["complete"] and img["naturalWidth"] > 0, img)
            self.assertLessEqual(img["width"], 375)
        self.assertEqual(mobile["scripts"], 0)
        # Nothing but the file itself was requested (data: images need no request).
        self.assertEqual([u for u in r["requests"] if not u.startswith(("file://", "data:"))], [])
        self.assertEqual(r["consoleMessages"], [])
        self.assertEqual(r["pageErrors"], [])
        self.assertFalse(r["inlineScriptRan"], "the CSP did not stop an injected script")
        for v in (mobile, desktop):
            with open(v["screenshot"], "rb") as f:
                w, _ = png_info(f.read())
            self.assertIn(w, (375, 1280))
        with open(r["pdf"], "rb") as f:
            self.assertTrue(f.read(5) == b"%PDF-")


class AnalyzeReportTest(unittest.TestCase):
    """Reports written by `corral analyze` end to end (the real sandbox and renderer), checked
    as above and opened in Chromium."""

    def setUp(self):
        require(os.access(CORRAL, os.X_OK), "%s not built" % CORRAL)
        self.tmp = tempfile.mkdtemp(prefix="corral-analyze-report-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def analyze(self, args, env=None):
        out = os.path.join(self.tmp, "report.html")
        p = run([CORRAL, "analyze", "-o", out] + args, env=env, timeout=600)
        self.assertIn(p.returncode, (0, 2), p.stderr.decode("utf-8", "replace")[-3000:])
        with open(out, encoding="utf-8") as f:
            return out, f.read()

    def test_offline_demo_report_in_the_browser(self):
        path, text = self.analyze([os.path.join(ROOT, "data", "grunfeld.csv"), "-q",
                                   "Which firms are growing?"])
        figs = re.findall(r'id="figure-(fig-\d+)"', text)
        self.assertGreaterEqual(len(figs), 3)
        check_page(self, text, figs)
        self.assertIn("General Motors", text)
        r = layout(self, path, os.path.join(ARTIFACTS, "analyze-offline"))
        # the offline analyst's wide tables scroll inside their wrapper, never the page
        self.assertTrue(r["viewports"]["mobile"]["tableWraps"])

    def test_model_report_with_attacks_in_the_browser(self):
        from test_analyze import FIRST_CODE, ModelServer, openai, tool_call
        body = ("# Findings\n\n## Summary\n\nGeneral Motors invests the most.\n\n"
                "![Investment by firm](figure:fig-1)\n\n![Mean investment](table:table-1)\n\n"
                "## Attacks that must stay inert\n\n<script>alert(1)</script>\n\n"
                "<img src=x onerror=alert(1)> <b onmouseover=alert(2)>bold</b>\n\n"
                "[click](javascript:alert(1)) [JaVaScRiPt](JAVASCRIPT:alert(1)) "
                "[site](https://evil.example/x) ![remote](http://evil.example/a.png)\n\n"
                "<iframe src=\"https://evil.example\"></iframe>\n\n"
                "| " + " | ".join("column_%d" % i for i in range(14)) + " |\n|" + "---|" * 14 +
                "\n| " + " | ".join("value_%d_long_enough" % i for i in range(14)) + " |\n\n"
                "A very long word: " + "x" * 300 + "\n")
        srv = ModelServer([openai(calls=[tool_call(FIRST_CODE)]), openai(body)], self.tmp)
        try:
            path, text = self.analyze(
                [os.path.join(ROOT, "data", "grunfeld.csv"), "--provider", "openai", "--base-url",
                 "http://127.0.0.1:%d/v1" % srv.port, "--model", "gpt-5-mini"],
                env={"OPENAI_API_KEY": "sk-test-browser"})
        finally:
            srv.stop()
        check_page(self, text, ["fig-1"])
        self.assertIn("General Motors invests the most.", text)
        self.assertIn('id="table-table-1"', text)
        self.assertIsNone(re.search(r"<b[\s>]", text))  # the model's raw HTML is dropped
        layout(self, path, os.path.join(ARTIFACTS, "analyze-model"))


if __name__ == "__main__":
    unittest.main()
