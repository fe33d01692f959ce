"""The offline analyst and the data profile (src/agent/py/), run for real in corral sessions.

Each run is what the C agent sends: one cell made of `CORRAL_PARAMS = {...}` (optional),
dataset.py, [trends.py, charts.py,] and the script (docs/OFFLINE_ANALYST.md), executed with
`corral exec --json --data FILE... --output DIR`. The tests check the report's Markdown (only
figure:/table: image references, every reference captured, no HTML), the numbers in the
narrative against pandas on the host, the 4 KiB profile cap, awkward inputs, a ~100 MB file's
peak memory, and that two runs give the same bytes.

The sessions come from a private `corral engine` (own socket, same binary as the client), so
a shared daemon left running by an older build cannot get in the way.
"""
import io
import json
import os
import re
import shutil
import sys
import tempfile
import unittest

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import CORRAL, ROOT, require, run  # noqa: E402

PY_DIR = os.path.join(ROOT, "src", "agent", "py")
DATA = os.path.join(ROOT, "data")
SCRIPTS = {"offline_analyst": ["dataset.py", "trends.py", "charts.py", "offline_analyst.py"],
           "profile": ["dataset.py", "profile.py"]}
MIB = 1 << 20
IMAGE_REF = re.compile(r"!\[((?:\\.|[^\]\\])*)\]\(([^)]*)\)")
HTML_TAG = re.compile(r"(?<!\\)<\s*/?\s*[A-Za-z!?]")


def build_cell(script, params=None):
    """The cell exactly as the C agent builds it (docs/OFFLINE_ANALYST.md)."""
    parts = ["CORRAL_PARAMS = %s\n" % json.dumps(params, ensure_ascii=False)] if params else []
    for name in SCRIPTS[script]:
        with open(os.path.join(PY_DIR, name), encoding="utf-8") as f:
            parts.append(f.read())
    return "\n".join(parts)


class Run:
    """One `corral exec --json` run: events, final event, stdout text, collected outputs."""

    def __init__(self, proc, outdir):
        self.exit = proc.returncode
        self.stderr = proc.stderr.decode("utf-8", "replace")
        self.raw = proc.stdout.decode("utf-8", "replace")
        self.events = [json.loads(line) for line in self.raw.splitlines() if line.strip()]
        self.final = self.events[-1] if self.events else {}
        self.stdout = "".join(e.get("text", "") for e in self.events if e["type"] == "stdout")
        self.errors = [e for e in self.events if e["type"] == "error"]
        shows = [e for e in self.events if e["type"] == "display"]
        self.figures = [e["id"] for e in shows if "image/png" in e["data"]]
        self.tables = [e["data"]["application/vnd.corral.table+json"] for e in shows
                       if "application/vnd.corral.table+json" in e["data"]]
        self.outdir = outdir
        path = os.path.join(outdir, "report.md")
        self.report = open(path, encoding="utf-8").read() if os.path.exists(path) else None

    def describe(self):
        return "exit %d, final %r\nstderr: %s\nerrors: %s\nstdout: %s" % (
            self.exit, self.final, self.stderr[-2000:], self.errors[:2], self.stdout[-2000:])


def write_awkward(d):
    """Small awkward inputs; returns {name: path}."""
    files = {}

    def put(name, data):
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
        files[name] = path

    put("empty.csv", b"")
    put("header_only.csv", "alpha,beta,gamma\n")
    put("one_column.csv", "value\n" + "".join("%d\n" % (i * 7 % 13) for i in range(50)))
    rng = np.random.default_rng(1)
    wide = pd.DataFrame(rng.normal(size=(120, 200)).round(3),
                        columns=["measurement_%03d" % i for i in range(200)])
    put("wide.csv", wide.to_csv(index=False))
    put("latin1.csv", ("name,city,amount\n" + "".join(
        "Jos\xe9 %d,Z\xfcrich,%d\n" % (i, i * 10) for i in range(30))).encode("latin-1"))
    put("quoted_newlines.csv", 'id,note,score\n1,"first line\nsecond line",3.5\n'
        '2,"a ""quoted"" word, and a comma",4.0\n3,"x\ny\nz",5.5\n')
    put("semicolon.csv", "region;price;units\n" + "".join(
        "%s;%d,%02d;%d\n" % (["Nord", "Sud", "Ost"][i % 3], 10 + i, i, i % 7) for i in range(40)))
    formats = ["%Y-%m-%d", "%d/%m/%Y", "%b %d, %Y"]
    days = pd.date_range("2021-01-13", periods=60, freq="7D")
    rows = ["id,empty,mixed,revenue,when,story,dup,dup"]
    for i, day in enumerate(days):
        rows.append('%d,,%s,"%s","%s","%s",%d,%s' % (
            i, "unknown" if i % 10 == 3 else str(i * 1.5), "{:,}".format(1000 + i * 12345),
            day.strftime(formats[i % 3]), ("long text %d " % i) * 60, i, "k%d" % (i % 3)))
    put("messy.csv", "\n".join(rows) + "\n")
    put("picture.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    return files


def write_big(path, target=100 * MIB):
    """~100 MB of CSV quickly (numpy + one to_csv per 200k rows); returns the row count."""
    rng = np.random.default_rng(7)
    regions = np.array(["north", "south", "east", "west", "central"])
    days = pd.date_range("2015-01-01", periods=3000, freq="D").strftime("%Y-%m-%d").to_numpy()
    n, start, written = 200000, 0, 0
    with open(path, "w") as f:
        f.write("id,date,region,amount,quantity,price,score,comment\n")
        while written < target:
            i = np.arange(start, start + n)
            df = pd.DataFrame({
                "id": i, "date": days[i // 700 % 3000], "region": regions[rng.integers(0, 5, n)],
                "amount": np.round(rng.lognormal(3, 1.2, n), 2), "quantity": rng.integers(1, 50, n),
                "price": np.round(rng.normal(100, 15, n), 2), "score": np.round(rng.random(n), 4),
                "comment": np.where(rng.random(n) < 0.1, "late delivery", "")})
            buf = io.StringIO()
            df.to_csv(buf, header=False, index=False)
            written += f.write(buf.getvalue())
            start += n
    return start


class AnalystTestCase(unittest.TestCase):
    engine = None
    tmp = None

    @classmethod
    def setUpClass(cls):
        require(os.path.exists(CORRAL), "corral is not built (%s)" % CORRAL)
        from engine_wire import EngineProcess
        try:
            cls.engine = EngineProcess(pool=2)
        except RuntimeError as e:
            require(False, "cannot start a private corral engine: %s" % e)
        cls.tmp = tempfile.mkdtemp(prefix="corral-offline-")
        os.chmod(cls.tmp, 0o755)

    @classmethod
    def tearDownClass(cls):
        if cls.engine is not None:
            cls.engine.stop()
        if cls.tmp:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_script(self, script, files, params=None, timeout=120):
        work = tempfile.mkdtemp(dir=self.tmp)
        cell = os.path.join(work, "cell.py")
        with open(cell, "w", encoding="utf-8") as f:
            f.write(build_cell(script, params))
        out = os.path.join(work, "out")
        os.mkdir(out)
        args = [CORRAL, "exec", "--json", "--output", out, "--timeout", str(timeout)]
        for path in files:
            args += ["--data", path]
        proc = run(args + [cell], env={"CORRAL_ENGINE": self.engine.path}, timeout=timeout + 60)
        r = Run(proc, out)
        self.assertEqual(r.final.get("type"), "final", r.describe())
        self.assertEqual(r.final.get("status"), "ok", r.describe())
        self.assertEqual(r.exit, 0, r.describe())
        self.assertEqual(r.errors, [], r.describe())
        return r

    def analyse(self, files, params=None):
        """Runs the analyst and checks the report's contract; returns the Run."""
        r = self.run_script("offline_analyst", files, params)
        md = r.report
        self.assertTrue(md and md.strip(), "no report.md in /output\n" + r.describe())
        lines = md.splitlines()
        self.assertTrue(lines[0].startswith("# "), lines[0])
        self.assertEqual(sum(x.startswith("# ") for x in lines), 1, "one # title")
        self.assertTrue(all(re.match(r"#{2,3} \S", x) for x in lines[1:] if x.startswith("#")))
        self.assertIsNone(HTML_TAG.search(md), "HTML in the Markdown: %r" % (
            HTML_TAG.search(md) and md[HTML_TAG.search(md).start():][:80]))
        refs = [target for _, target in IMAGE_REF.findall(md)]
        self.assertEqual(len(refs), md.count("!["), "every image is a well-formed reference")
        figs = [t[len("figure:"):] for t in refs if t.startswith("figure:")]
        tabs = [t[len("table:"):] for t in refs if t.startswith("table:")]
        self.assertEqual(len(figs) + len(tabs), len(refs), "only figure:/table: refs: %r" % refs)
        self.assertEqual(figs, r.figures, "figures referenced = figures displayed, in order")
        self.assertEqual(tabs, ["table-%d" % i for i in range(1, len(r.tables) + 1)])
        self.assertLessEqual(len(r.figures), (params or {}).get("max_figures", 12))
        for fid in r.figures:
            self.assertTrue(os.path.exists(os.path.join(r.outdir, fid + ".png")), fid)
        result = json.loads(r.stdout.split("CORRAL_OFFLINE_RESULT ", 1)[1].splitlines()[0])
        self.assertEqual(result["figures"], r.figures)
        self.assertEqual(result["tables"], tabs)
        self.assertEqual(result["report"], "/home/user/report.md")
        self.assertEqual(result["bytes"], len(md.encode("utf-8")))
        self.assertIn("No language model was used", md)
        return r

    def profile(self, files, params=None):
        """Runs the profile; returns {file name: its section}, each checked against the cap."""
        r = self.run_script("profile", files, params)
        sections = {}
        for part in re.split(r"^(?=## )", r.stdout, flags=re.M)[1:]:
            sections[part.splitlines()[0][3:]] = part
        cap = (params or {}).get("profile_bytes", 4096)
        for name, text in sections.items():
            self.assertLessEqual(len(text.encode("utf-8")), cap + 1, "%s: %d bytes" % (
                name, len(text.encode("utf-8"))))
        self.assertEqual(sorted(sections), sorted(os.path.basename(f) for f in files))
        self.assertLessEqual(len(r.stdout.encode("utf-8")), cap * len(files), "total cap")
        return sections


class RealData(AnalystTestCase):
    def test_grunfeld_numbers(self):
        path = os.path.join(DATA, "grunfeld.csv")
        r = self.analyse([path], {"question": "Which firms are growing fastest?"})
        md = r.report
        df = pd.read_csv(path)
        self.assertIn("The dataset has %d rows and %d columns" % df.shape, md)
        self.assertIn("No values are missing.", md)
        corr = df[["invest", "value", "capital"]].corr()
        pairs = sorted(((abs(corr.loc[a, b]), a, b) for a in corr for b in corr if a < b),
                       reverse=True)
        _, a, b = pairs[0]
        a, b = sorted([a, b], key=list(df.columns).index)
        self.assertIn("%s and %s are strongly correlated (r = %.2f)" % (a, b, corr.loc[a, b]), md)
        growth = {f: np.expm1(np.polyfit(g.year, np.log(g.invest), 1)[0]) * 100
                  for f, g in df.groupby("firm")}
        best = max(growth, key=growth.get)
        worst = min(growth, key=growth.get)
        self.assertIn("%s grew fastest (%+.1f%% per year)" % (best, growth[best]), md)
        self.assertIn("%s grew slowest (%+.1f%% per year)" % (worst, growth[worst]), md)
        answer = md.split("## About your question", 1)[1].split("\n## ", 1)[0]
        self.assertIn("%s grew fastest" % best, answer, "the question about growth is answered")
        self.assertEqual(len(r.tables[0]["rows"]), df.shape[1], "column-kinds table")
        self.assertGreaterEqual(len(r.figures), 5)

    def test_macrodata_time_trend(self):
        path = os.path.join(DATA, "macrodata.csv")
        md = self.analyse([path]).report
        df = pd.read_csv(path)
        self.assertIn("The dataset has %d rows and %d columns" % df.shape, md)
        first, last = df.iloc[0], df.iloc[-1]
        self.assertIn("The time axis is year + quarter: %dQ%d to %dQ%d (%d quarters)" % (
            first.year, first.quarter, last.year, last.quarter, len(df)), md)
        change = (last.realgdp / first.realgdp - 1) * 100
        self.assertRegex(md, r"realgdp rose from [\d,.]+ in 1959Q1 to [\d,.]+ in 2009Q3 "
                         r"\(%s" % re.escape("%+.1f%%" % change))
        num = df.drop(columns=["year", "quarter"]).corr()
        best = max(((abs(num.iat[i, j]), i, j) for i in range(len(num)) for j in range(i)))
        a, b = num.columns[best[2]], num.columns[best[1]]
        self.assertIn("%s and %s are strongly correlated (r = %.2f)" % (a, b, num.loc[a, b]), md)

    def test_trends_use_all_rows(self):
        """Distributions come from the sample; trends from exact sums over every row."""
        rng = np.random.default_rng(5)
        n = 6000
        day = pd.Timestamp("2018-01-01") + pd.to_timedelta(
            np.sort(rng.integers(0, 1826, n)), unit="D")
        df = pd.DataFrame({"date": day.strftime("%Y-%m-%d"),
                           "region": rng.choice(["north", "south", "east"], n),
                           "amount": (rng.uniform(100, 300, n) * (1 + np.arange(n) / n)).round(2)})
        path = os.path.join(self.tmp, "sales.csv")
        df.to_csv(path, index=False)
        md = self.analyse([path], {"sample_rows": 500}).report
        self.assertIn("uniform random sample of 500 of 6,000 rows", md)
        month = pd.to_datetime(df.date).dt.to_period("M")
        means = df.groupby(month).amount.mean()
        first, last = means.iloc[0], means.iloc[-1]
        self.assertIn("The mean amount per month rose from %.1f in %s to %.1f in %s (%+.1f%%" % (
            first, means.index[0], last, means.index[-1], (last / first - 1) * 100), md)
        rates = {}
        for region, g in df.groupby("region"):
            m = g.groupby(month[g.index]).amount.mean()
            t = m.index.year + (m.index.month - 1) / 12
            rates[region] = np.expm1(np.polyfit(t, np.log(m.to_numpy()), 1)[0]) * 100
        best = max(rates, key=rates.get)
        self.assertIn("%s grew fastest (%+.1f%% per year)" % (best, rates[best]), md)

    def test_deterministic(self):
        path = os.path.join(DATA, "grunfeld.csv")
        one, two = self.analyse([path]), self.analyse([path])
        self.assertEqual(one.report, two.report)
        for fid in one.figures:
            with open(os.path.join(one.outdir, fid + ".png"), "rb") as f1, \
                    open(os.path.join(two.outdir, fid + ".png"), "rb") as f2:
                self.assertEqual(f1.read(), f2.read(), "%s differs between runs" % fid)

    def test_params_files_and_figure_cap(self):
        files = [os.path.join(DATA, n) for n in ("grunfeld.csv", "macrodata.csv")]
        r = self.analyse(files, {"files": ["macrodata.csv"], "max_figures": 2})
        self.assertIn("# Offline analysis of macrodata.csv", r.report)
        self.assertNotIn("grunfeld", r.report)
        self.assertEqual(len(r.figures), 2)
        self.assertRegex(r.report, r"The figure limit \(2\) left out \d+ charts?\.")
        both = self.analyse(files)
        self.assertIn("## Dataset: grunfeld.csv", both.report)
        self.assertIn("## Dataset: macrodata.csv", both.report)

    def test_namespace_left_clean(self):
        """The profile runs in the model's session: it leaves only CORRAL_PARAMS behind."""
        work = tempfile.mkdtemp(dir=self.tmp)
        cell = os.path.join(work, "cell.py")
        with open(cell, "w") as f:
            f.write("import json as _corral_json\nCORRAL_PARAMS = _corral_json.loads(%s)\n%s"
                    % (json.dumps(json.dumps({"files": ["grunfeld.csv"]})), build_cell("profile")))
        env = {"CORRAL_ENGINE": self.engine.path}
        base = [CORRAL, "exec", "--session", "offline-ns-%d" % os.getpid()]
        p = run(base + ["--data", os.path.join(DATA, "grunfeld.csv"), cell], env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"## grunfeld.csv", p.stdout)
        p = run(base + ["--end-session", "-c",
                        "print(sorted(k for k in globals() if not k.startswith('__')))"], env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.decode().strip(), "['CORRAL_PARAMS', '_corral_json', 'display']")

    def test_profile_real(self):
        files = [os.path.join(DATA, n) for n in ("grunfeld.csv", "macrodata.csv")]
        p = self.profile(files)
        g = p["grunfeld.csv"]
        self.assertIn("utf-8, comma-delimited, 220 rows x 5 columns", g)
        self.assertIn("- invest: float64, numeric; 0 missing; min 0.93, median 52.365, "
                      "mean 133.312, max 1486.7", g)
        self.assertIn("- firm: object, categorical; 0 missing; 11 unique; top: "
                      "American Steel (20), Atlantic Refining (20), Chrysler (20)", g)
        self.assertIn("- year: int64, time (year)", g)
        self.assertIn("317.6,3078.5,2.8,General Motors,1935", g)
        self.assertEqual(sum(1 for line in g.splitlines() if "General Motors,19" in line), 5)
        self.assertIn("203 rows x 14 columns", p["macrodata.csv"])


class AwkwardInputs(AnalystTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.files = write_awkward(cls.tmp)

    def both(self, name):
        return self.analyse([self.files[name]]).report, self.profile([self.files[name]])[name]

    def test_empty_header_only_not_csv(self):
        md, prof = self.both("empty.csv")
        self.assertIn("the file is empty (0 bytes)", md)
        self.assertIn("the file is empty (0 bytes)", prof)
        md, prof = self.both("header_only.csv")
        self.assertIn("has a header (3 columns) but no data rows", md)
        self.assertIn("no data rows", prof)
        md, prof = self.both("picture.png")
        self.assertIn("skipped: this is a PNG image, not a delimited text file", md)
        self.assertIn("PNG image", prof)

    def test_one_column_and_wide(self):
        md, prof = self.both("one_column.csv")
        self.assertIn("The dataset has 50 rows and 1 column", md)
        self.assertIn("50 rows x 1 columns", prof)
        r = self.analyse([self.files["wide.csv"]])
        self.assertIn("The dataset has 120 rows and 200 columns", r.report)
        self.assertIn("(first 60 of 200 columns)", r.report)
        prof = self.profile([self.files["wide.csv"]])["wide.csv"]
        self.assertIn("120 rows x 200 columns", prof)
        self.assertRegex(prof, r"- \.\.\. \d+ more columns \((profile capped at \d+ bytes|"
                         r"at most 40 columns are described)\)")
        self.assertNotIn("measurement_199: ", prof)

    def test_encoding_quotes_delimiter(self):
        md, prof = self.both("latin1.csv")
        self.assertIn("not valid UTF-8", md)
        self.assertIn("Windows-1252 (cp1252)", prof)
        self.assertIn("José 0,Zürich,0", prof)
        md, prof = self.both("quoted_newlines.csv")
        self.assertIn("The dataset has 3 rows and 3 columns", md)
        self.assertIn('1,first line\\nsecond line,3.5', prof)
        md, prof = self.both("semicolon.csv")
        self.assertIn("semicolon-delimited", md)
        self.assertIn("- price: float64, numeric; 0 missing; min 10, ", prof)
        self.assertIn("decimal commas", prof)

    def test_messy_columns(self):
        md, prof = self.both("messy.csv")
        self.assertIn("duplicate column names were renamed: dup became dup.1", md)
        self.assertIn("- empty: object, empty; 60 missing; all values missing", prof)
        self.assertIn("- mixed: float64, numeric; 0 missing (+6 unreadable)", prof)
        self.assertIn("could not be read as numbers (e.g. 'unknown')", prof)
        self.assertIn("- revenue: int64, numeric; 0 missing; min 1000, ", prof)
        self.assertIn("thousands separators", prof)
        self.assertIn("- when: datetime64[ns], datetime; 0 missing; from 2021-01-13 to ", prof)
        self.assertIn("dates in 3 formats", prof)
        self.assertIn("- story: object, text;", prof)
        self.assertIn("Text columns (not charted): story", md)
        self.assertIn("Columns with no values at all: empty", md)
        self.assertIn("## Trend over time", md)

    def test_all_at_once(self):
        r = self.analyse(sorted(self.files.values()), {"max_figures": 6})
        self.assertIn("# Offline analysis of %d data files" % len(self.files), r.report)
        self.assertIn("- picture.png: skipped", r.report)
        self.assertIn("- empty.csv: the file is empty (0 bytes).", r.report)
        self.profile(sorted(self.files.values()))


class BigFile(AnalystTestCase):
    def test_100mb(self):
        path = os.path.join(self.tmp, "big.csv")
        rows = write_big(path)
        size = os.path.getsize(path)
        self.assertGreaterEqual(size, 100 * MIB)
        r = self.analyse([path])
        peak = r.final["peak_memory_bytes"]
        self.assertLess(peak, 512 * MIB, "peak %d MiB" % (peak // MIB))
        self.assertIn("The dataset has {:,} rows and 8 columns".format(rows), r.report)
        self.assertIn("uniform random sample of 20,000 of {:,} rows".format(rows), r.report)
        self.assertIn("Id-like columns (not charted): id", r.report)
        p = self.run_script("profile", [path])
        self.assertLess(p.final["peak_memory_bytes"], 512 * MIB)
        self.assertIn("{} rows x 8 columns".format(rows), p.stdout)
        self.assertLessEqual(len(p.stdout.split("## big.csv", 1)[1].encode()), 4096)
        short = self.run_script("profile", [path], {"time_budget_s": 1})
        self.assertRegex(short.stdout, r"at least \d+ rows x 8 columns")
        self.assertIn("the time budget ran out after", short.stdout)
        sys.stderr.write("# 100 MB: analyst %.1f s, peak %d MiB; profile %.1f s, peak %d MiB\n" % (
            r.final["duration_ms"] / 1000, peak // MIB, p.final["duration_ms"] / 1000,
            p.final["peak_memory_bytes"] // MIB))


if __name__ == "__main__":
    unittest.main()
