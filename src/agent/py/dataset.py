"""corral dataset loader -- shared by offline_analyst.py and profile.py (docs/OFFLINE_ANALYST.md).

Runs inside a corral session. The C agent sends ONE cell made of, in this order:
    [CORRAL_PARAMS = {...}]  +  dataset.py  +  (offline_analyst.py | profile.py)
so this file defines helpers only and imports nothing of ours.

    params = corral_params()                 # CORRAL_PARAMS merged with DEFAULTS
    for name, path, problem in data_files(params):
        ds = load_dataset(path, params, name)   # status: ok, empty, header_only, skipped, error

A text file is read twice: a probe of the first rows (as strings) decides how each column is
stored (number, date, boolean, string); then one pass in chunks computes exact counts and
running statistics, and keeps a deterministic uniform sample (seeded bottom-k keys) of at most
params["sample_rows"] rows for plots and correlations. Memory stays bounded by the chunk size
and the sample, whatever the file size. A collector (trends.py) may see every typed chunk.
"""
_CORRAL_GLOBALS_BEFORE = set(globals())   # names the cell leaves behind are removed at its end

import codecs
import contextlib
import csv
import io
import math
import os
import re
import time
import warnings

import numpy as np
import pandas as pd

DEFAULTS = {
    "files": None,              # basenames (or paths) under data_dir; None: every file there
    "question": "",
    "max_figures": 12,
    "max_categories": 10,
    "sample_rows": 20000,       # rows kept in memory for plots and correlations
    "profile_rows": 5,          # sample rows printed by profile.py
    "profile_bytes": 4096,      # cap per file of profile.py's text (at most 4096)
    "time_budget_s": 50,        # the full pass of each file stops early past this (whole cell)
    "data_dir": "/data",
    "report_path": "/home/user/report.md",
    "first_figure": 1,          # id number of the first figure this cell shows (fig-N)
    "first_table": 1,           # number of the first DataFrame this cell displays (table-N)
    "title": 1,                 # 0: no "# ..." title line (the renderer sets its own title)
}
SEED = 20240611
PROBE_CELLS = 400000            # strings held by the probe (rows x columns)
CHUNK_BYTES = 2 << 20           # CSV text per chunk of the full pass
COUNT_CAP = 5000                # distinct values counted per column before pruning
TEXT_KEEP = 300                 # characters of a text cell kept in the sample
BINARY_MAGIC = [
    (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive (e.g. .xlsx)"),
    (b"\x1f\x8b", "a gzip file"), (b"PAR1", "a Parquet file"), (b"BZh", "a bzip2 file"),
    (b"SQLite format 3", "an SQLite database"), (b"\xfd7zXZ", "an xz file"),
    (b"\x28\xb5\x2f\xfd", "a zstd file"), (b"\xd0\xcf\x11\xe0", "an old Office file (.xls)"),
]
NOT_TABULAR = {".json": "JSON", ".jsonl": "JSON lines", ".ndjson": "JSON lines", ".xml": "XML",
               ".html": "HTML", ".htm": "HTML", ".xlsx": "Excel", ".xls": "Excel",
               ".md": "Markdown", ".yaml": "YAML", ".yml": "YAML", ".py": "Python"}
DATE_FORMATS = [
    "%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%SZ", "%Y/%m/%d",
    "%m/%d/%Y", "%d/%m/%Y", "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M", "%m/%d/%y", "%d.%m.%Y",
    "%d-%m-%Y", "%d %b %Y", "%d %B %Y", "%b %d, %Y", "%B %d, %Y", "%b %Y", "%Y-%m",
]
BOOL_WORDS = [({"true", "false"}, "true"), ({"yes", "no"}, "yes"), ({"y", "n"}, "y"),
              ({"t", "f"}, "t")]
NUM_PLAIN = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
NUM_THOUSANDS = re.compile(r"^\s*[-+]?\d{1,3}(,\d{3})+(\.\d+)?\s*$")
NUM_DECIMAL_COMMA = re.compile(r"^\s*[-+]?\d{1,3}(\.\d{3})*,\d+\s*$")
ID_NAME = re.compile(r"(^|[_\s.-])(id|uuid|guid|key|code|no|nr|number)$|^(id|index|unnamed: 0)$",
                     re.I)
TIME_PARTS = [("year", re.compile(r"(^|_)(year|yr|yyyy)$", re.I), 1000, 2500),
              ("quarter", re.compile(r"^(quarter|qtr|q)$", re.I), 1, 4),
              ("month", re.compile(r"^(month|mon|mth|mm)$", re.I), 1, 12)]


def corral_params():
    """CORRAL_PARAMS (a dict, or a JSON string) merged over DEFAULTS; bad values -> defaults."""
    raw = globals().get("CORRAL_PARAMS") or {}
    if isinstance(raw, str):
        import json
        raw = json.loads(raw)
    p, notes = dict(DEFAULTS), []
    for key, value in dict(raw).items():
        if key not in DEFAULTS:
            notes.append("unknown parameter %r ignored" % key)
        elif key == "files":
            if value is None or isinstance(value, list) and all(isinstance(v, str) for v in value):
                p[key] = value
            else:
                notes.append("parameter 'files' must be a list of names; ignored")
        elif isinstance(DEFAULTS[key], str):
            p[key] = str(value) if value is not None else DEFAULTS[key]
        elif isinstance(value, (int, float)) and value >= 0:
            p[key] = int(value)      # true/false count as 1/0
        else:
            notes.append("parameter %r=%r is not a number; default used" % (key, value))
    p["max_categories"] = min(max(p["max_categories"], 2), 30)
    p["sample_rows"] = min(max(p["sample_rows"], 500), 200000)
    p["profile_bytes"] = min(max(p["profile_bytes"], 512), 4096)
    p["profile_rows"] = min(p["profile_rows"], 20)
    p["first_figure"], p["first_table"] = max(p["first_figure"], 1), max(p["first_table"], 1)
    p["notes"], p["deadline"] = notes, time.monotonic() + max(p["time_budget_s"], 1)
    return p


def data_files(params):
    """[(name, path, problem-or-None)] in a stable order: the named files, else all of data_dir."""
    root = params["data_dir"]
    if params["files"] is not None:
        names = list(params["files"])
    else:
        try:
            names = sorted(n for n in os.listdir(root) if not n.startswith("."))
        except OSError as e:
            return [(root, root, "cannot list %s: %s" % (root, e.strerror))]
    out = []
    for n in names:
        path = n if os.path.isabs(n) else os.path.join(root, n)
        base = os.path.basename(path) or n
        if not os.path.isfile(path):
            out.append((base, path, "not found" if not os.path.exists(path) else "not a file"))
        else:
            out.append((base, path, None))
    return out


def human_bytes(n):
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return "%d %s" % (n, unit) if unit == "bytes" else "%.1f %s" % (n, unit)
        n /= 1024.0


def short(value, n=40):
    """One-line text of a cell, at most n characters (newlines and tabs shown escaped)."""
    s = "" if value is None else str(value)
    s = s.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    return s if len(s) <= n else s[:n - 1] + "…"


class _BadLines:
    """Stands in for sys.stderr while pandas reads: counts 'Skipping line' notes, keeps 3."""

    def __init__(self):
        self.count, self.first = 0, []

    def write(self, s):
        for line in s.splitlines():
            if line.startswith("Skipping line"):
                self.count += 1
                if len(self.first) < 3:
                    self.first.append(line.strip())
        return len(s)

    def flush(self):
        pass


class Column:
    """One column: how it is stored (num/date/bool/str), its final kind and running stats."""

    def __init__(self, pos, name):
        self.pos, self.name = pos, name
        self.storage, self.style, self.kind, self.role = "str", None, "categorical", None
        self.nonnull = self.missing = self.bad = 0
        self.bad_examples = []
        self.n = 0
        self.mean = self.m2 = self.total = 0.0
        self.min = self.max = None
        self.all_int = True
        self.counts, self.count_values, self.counts_approx = {}, False, False
        self.len_sum, self.len_max = 0, 0
        self.format_counts = {}
        self.distinct, self.distinct_exact = None, False
        self.levels, self.probe_nonnull, self.notes = 0, 0, []

    @property
    def std(self):
        return math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else float("nan")

    @property
    def dtype(self):
        return {"num": "int64" if self.all_int and self.n else "float64",
                "date": "datetime64[ns]", "bool": "bool"}.get(self.storage, "object")

    def top(self, k):
        """[(value, count)] most frequent first, ties by value: deterministic."""
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:k]


# ------------------------------------------------------------------------- sniffing the file

def _binary_kind(head, name):
    for magic, what in BINARY_MAGIC:
        if head.startswith(magic):
            return what
    ext = os.path.splitext(name)[1].lower()
    if ext in NOT_TABULAR:
        return "a %s file" % NOT_TABULAR[ext]
    if b"\x00" in head[:8192] and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "a binary file (it contains NUL bytes)"
    return None


def _decodes(path, encoding):
    """None if the whole file decodes, else the offset of the first bad byte."""
    dec, pos = codecs.getincrementaldecoder(encoding)(), 0
    with open(path, "rb") as f:
        try:
            while True:
                block = f.read(1 << 20)
                dec.decode(block, final=not block)
                if not block:
                    return None
                pos += len(block)
        except UnicodeDecodeError as e:
            return pos + max(e.start, 0)


def detect_encoding(path, head):
    """(python codec, note or None): UTF-8 (BOM aware), else cp1252, else latin-1."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", None
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", None
    bad = _decodes(path, "utf-8")
    if bad is None:
        return "utf-8", None
    enc = "cp1252" if _decodes(path, "cp1252") is None else "latin-1"
    return enc, ("the file is not valid UTF-8 (first invalid byte at offset %d); it was read "
                 "as %s" % (bad, "Windows-1252 (cp1252)" if enc == "cp1252" else "latin-1"))


def sniff_delimiter(text):
    """csv.Sniffer over , ; tab | on the sample; else the candidate with the steadiest field
    count over 1; else ','."""
    try:
        d = csv.Sniffer().sniff(text, delimiters=",;\t|").delimiter
        if d in ",;\t|":
            return d
    except csv.Error:
        pass
    best, score = ",", 0.0
    for d in ",;\t|":
        counts = [len(r) for r, _ in zip(csv.reader(io.StringIO(text), delimiter=d), range(50))]
        if counts and counts[0] > 1:
            steady = sum(c == counts[0] for c in counts) / len(counts)
            if steady > score:
                best, score = d, steady
    return best


def _unique_names(header):
    names, seen, dups = [], set(), []
    for i, h in enumerate(header):
        base = h.strip() or "column_%d" % (i + 1)
        name, k = base, 1
        while name in seen:
            name, k = "%s.%d" % (base, k), k + 1
        if name != base:
            dups.append("%s became %s" % (base, name))
        seen.add(name)
        names.append(name)
    return names, dups


# ---------------------------------------------------------------------- deciding the storage

def _plan(col, s, delimiter):
    """Sets col.storage/col.style from the probe's strings (non-null, as read)."""
    if s.empty:
        col.storage = "str"
        return
    st = s.str.strip()
    low = set(st.str.lower().unique()[:3])
    for words, true in BOOL_WORDS:
        if len(low) == 2 and low == words:
            col.storage, col.style = "bool", true
            return
    n = float(len(st))
    frac = {"plain": st.str.match(NUM_PLAIN).sum() / n}
    frac["thousands"] = frac["plain"] + st.str.match(NUM_THOUSANDS).sum() / n
    if delimiter != ",":
        frac["decimal_comma"] = frac["plain"] + st.str.match(NUM_DECIMAL_COMMA).sum() / n
    style = max(sorted(frac), key=lambda k: frac[k])
    if frac[style] >= 0.9:
        col.storage = "num"
        col.style = "plain" if frac["plain"] >= frac[style] else style
        return
    if frac["plain"] >= 0.3:
        col.notes.append("mixed types: %.0f%% of its values look numeric" % (100 * frac["plain"]))
    head = st.iloc[:500]
    if head.str.contains(r"\d").mean() > 0.9 and head.str.len().between(6, 40).mean() > 0.9:
        few = head.iloc[:50]          # rank the formats on a few values (failures are slow)
        ranked = [(-pd.to_datetime(few, format=f, errors="coerce").notna().sum(), i, f)
                  for i, f in enumerate(DATE_FORMATS)]
        formats, left = [], head
        for fmt in [f for n, _, f in sorted(ranked) if n < 0] + DATE_FORMATS:
            ok = pd.to_datetime(left, format=fmt, errors="coerce").notna()
            if ok.any():
                formats.append(fmt)
                left = left[~ok]
            if len(left) <= 0.1 * len(head) or len(formats) == 4 or left.empty:
                break
        if len(left) <= 0.1 * len(head):
            col.storage, col.style = "date", formats
            return
    col.storage = "str"
    col.levels = s.nunique()
    col.count_values = col.levels <= 1000 or col.levels < 0.5 * len(s)


def _convert(col, raw):
    """(typed Series, bad count) of one chunk's raw column per the plan."""
    if col.storage == "num":
        if raw.dtype.kind in "ifu":
            return raw.astype("float64"), 0
        s = raw.astype(str)          # NaN -> "nan" -> NaN again; numbers -> their text
        if col.style == "thousands":
            s = s.str.replace(",", "", regex=False)
        elif col.style == "decimal_comma":
            s = s.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
        out = pd.to_numeric(s.str.strip(), errors="coerce")
        return out.astype("float64"), int((out.isna() & raw.notna()).sum())
    if col.storage == "date":
        out = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
        left = raw.dropna()
        for fmt in col.style + [None] + col.style:      # None: retry the rest stripped
            if left.empty:
                break
            if fmt is None:
                left = left.str.strip()
                continue
            got = pd.to_datetime(left, format=fmt, errors="coerce")
            ok = got.notna()
            out[left.index[ok.to_numpy()]] = got[ok]
            col.format_counts[fmt] = col.format_counts.get(fmt, 0) + int(ok.sum())
            left = left[~ok]
        return out, len(left)
    if col.storage == "bool":
        words = next(w for w, t in BOOL_WORDS if t == col.style)
        low = raw.str.strip().str.lower()
        out = low.map({v: v == col.style for v in words})
        return out, int((out.isna() & raw.notna()).sum())
    return raw, 0


def _update(col, s, bad, raw):
    nn = s.notna()
    k = int(nn.sum())
    col.nonnull += k
    col.missing += int(len(s) - k) - bad
    col.bad += bad
    if bad and len(col.bad_examples) < 3:
        for v in raw[raw.notna() & ~nn].unique()[:3]:
            if short(v, 30) not in col.bad_examples and len(col.bad_examples) < 3:
                col.bad_examples.append(short(v, 30))
    if not k:
        return
    v = s[nn]
    if col.storage == "num":
        x = v.to_numpy(dtype="float64")
        fin = x[np.isfinite(x)]
        if fin.size:
            m, m2 = float(fin.mean()), float(((fin - fin.mean()) ** 2).sum())
            n = col.n + fin.size
            d = m - col.mean
            col.m2 += m2 + d * d * col.n * fin.size / n      # Chan et al.: merge two runs
            col.mean += d * fin.size / n
            col.n, col.total = n, col.total + float(fin.sum())
            col.all_int = col.all_int and bool(np.all(fin == np.floor(fin)))
        lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
    elif col.storage == "date":
        lo, hi = v.min(), v.max()
    else:
        lo = hi = None
        if col.storage == "str":
            lens = v.str.len()
            col.len_sum += int(lens.sum())
            col.len_max = max(col.len_max, int(lens.max()))
        if col.count_values or col.storage == "bool":
            for key, c in v.value_counts(sort=False).items():
                col.counts[key] = col.counts.get(key, 0) + int(c)
            if len(col.counts) > COUNT_CAP:
                col.counts, col.counts_approx = dict(col.top(COUNT_CAP // 2)), True
    if lo is not None:
        col.min = lo if col.min is None else min(col.min, lo)
        col.max = hi if col.max is None else max(col.max, hi)


def _finish_kind(col, sample, complete):
    """The column's kind once every row has been seen."""
    s = sample[col.name] if col.name in sample else pd.Series(dtype=object)
    if col.storage == "bool" or col.count_values and not col.counts_approx:
        col.distinct, col.distinct_exact = len(col.counts), True
    else:
        col.distinct, col.distinct_exact = int(s.nunique()), complete
    if col.nonnull == 0:
        col.kind = "empty"
    elif col.storage == "num":
        col.kind = "numeric"
        for role, pattern, lo, hi in TIME_PARTS:
            if pattern.search(col.name) and col.all_int and lo <= col.min and col.max <= hi:
                col.kind, col.role = "time", role
                return
        if col.all_int and col.min == 0 and col.max == 1:
            col.kind = "boolean"
            ones = int(round(col.total))
            col.counts, col.distinct, col.distinct_exact = {1: ones, 0: col.n - ones}, 2, True
        elif col.all_int and s.notna().sum() >= 20 and s.nunique() == s.notna().sum() and (
                ID_NAME.search(col.name) or col.max - col.min + 1 == col.nonnull):
            col.kind = "id"          # unique integers named like an id, or a row number
    elif col.storage == "date":
        col.kind = "datetime"
    elif col.storage == "bool":
        col.kind = "boolean"
    else:
        mean_len = col.len_sum / float(col.nonnull)
        ratio = (col.distinct / float(col.nonnull) if col.distinct_exact
                 else s.nunique() / float(max(1, s.notna().sum())))
        if mean_len >= 40 or col.len_max > 200 and ratio > 0.5:
            col.kind = "text"
        elif ratio >= 0.95 and col.nonnull >= 20 and (ID_NAME.search(col.name) or mean_len <= 40):
            col.kind = "id"
        else:
            col.kind = "categorical"


# ------------------------------------------------------------------------------- the loader

class Dataset:
    def __init__(self, name, path):
        self.name, self.path = name, path
        self.size = os.path.getsize(path)
        self.status, self.message = "ok", ""
        self.encoding, self.delimiter, self.notes = None, None, []
        self.rows, self.complete, self.bad_lines = 0, True, 0
        self.columns, self.head = [], pd.DataFrame()
        self.sample, self.sampled = pd.DataFrame(), False
        self.seconds = 0.0

    @property
    def delimiter_name(self):
        return {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(
            self.delimiter, repr(self.delimiter))

    def col(self, name):
        return next(c for c in self.columns if c.name == name)


def load_dataset(path, params, name=None, collector=None):
    """Reads one file into a Dataset (never raises for bad input: status/message say why).
    collector: an object with start(ds) (columns planned, before the pass), add(typed) (each
    chunk: {column name: numpy array of typed values}) and finish()."""
    t0 = time.monotonic()
    ds = Dataset(name or os.path.basename(path), path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _load(ds, params, collector)
    except MemoryError:
        ds.status, ds.message = "error", "the file could not be read: out of memory"
    except Exception as e:   # a file we cannot parse must not end the whole analysis
        ds.status, ds.message = "error", "the file could not be read as a table (%s: %s)" % (
            type(e).__name__, short(e, 200))
    ds.seconds = time.monotonic() - t0
    return ds


def _load(ds, params, collector):
    if ds.size == 0:
        ds.status, ds.message = "empty", "the file is empty (0 bytes)"
        return
    with open(ds.path, "rb") as f:
        head = f.read(64 << 10)
    what = _binary_kind(head, ds.name)
    if what:
        ds.status, ds.message = "skipped", "skipped: this is %s, not a delimited text file" % what
        return
    ds.encoding, note = detect_encoding(ds.path, head)
    if note:
        ds.notes.append(note)
    text = head.decode(ds.encoding, "replace")
    if len(head) < ds.size and "\n" in text:
        text = text[:text.rindex("\n") + 1]
    ds.delimiter = sniff_delimiter(text)
    records = csv.reader(io.StringIO(text), delimiter=ds.delimiter)
    header = next((r for r in records if any(h.strip() for h in r)), None)
    if header is None:
        ds.status, ds.message = "empty", "the file has no header row (only blank lines)"
        return
    names, dups = _unique_names(header)
    if dups:
        ds.notes.append("duplicate column names were renamed: " + ", ".join(dups[:5]) +
                        (" and %d more" % (len(dups) - 5) if len(dups) > 5 else ""))
    ds.columns = [Column(i, n) for i, n in enumerate(names)]
    opts = dict(sep=ds.delimiter, header=0, names=list(range(len(names))), index_col=False,
                encoding=ds.encoding, encoding_errors="replace", on_bad_lines="warn",
                engine="c", skip_blank_lines=True)
    bad = _BadLines()
    with contextlib.redirect_stderr(bad):
        probe = pd.read_csv(ds.path, dtype=str, nrows=max(200, PROBE_CELLS // len(names)), **opts)
    if probe.empty:
        ds.status = "header_only"
        ds.message = "the file has a header (%d columns) but no data rows" % len(names)
        return
    for c in ds.columns:
        _plan(c, probe[c.pos].dropna(), ds.delimiter)
    ds.head = probe.iloc[:20].rename(columns={c.pos: c.name for c in ds.columns})
    for c in ds.columns:
        c.probe_nonnull = int(probe[c.pos].notna().sum())
    row_bytes = max(1.0, len(text.encode(ds.encoding, "replace")) / max(1, text.count("\n")))
    del probe
    chunk = int(min(max(CHUNK_BYTES / row_bytes, 1000), 200000))
    keep = int(max(500, min(params["sample_rows"], 1000000 // len(names))))
    dtype = {c.pos: str for c in ds.columns if not (c.storage == "num" and c.style == "plain")}
    rng, threshold, sample = np.random.default_rng(SEED), 1.0, None
    if collector is not None:
        collector.start(ds)
    bad = _BadLines()
    with contextlib.redirect_stderr(bad):
        for raw in pd.read_csv(ds.path, dtype=dtype, chunksize=chunk, **opts):
            n = len(raw)
            keys = rng.random(n)
            typed = {"_row": np.arange(ds.rows, ds.rows + n), "_key": keys}
            for c in ds.columns:
                s, nbad = _convert(c, raw[c.pos])
                _update(c, s, nbad, raw[c.pos])
                if c.storage == "str" and c.len_max > TEXT_KEEP:
                    s = s.str.slice(0, TEXT_KEEP)
                typed[c.name] = s.to_numpy()
            if collector is not None:
                collector.add(typed)
            frame = pd.DataFrame(typed).loc[keys < threshold]
            sample = frame if sample is None else pd.concat([sample, frame], ignore_index=True)
            if len(sample) > keep:
                sample = sample.nsmallest(keep, "_key")
                threshold = float(sample["_key"].max())
            ds.rows += n
            if time.monotonic() > params["deadline"]:
                ds.complete = False
                break
    if collector is not None:
        collector.finish()
    ds.bad_lines = bad.count
    if bad.count:
        ds.notes.append("%d malformed line(s) were skipped (e.g. %s)" % (bad.count, bad.first[0]))
    if sample is None:
        sample = pd.DataFrame({k: [] for k in ["_row", "_key"] + names})
    sample = sample.sort_values("_row").drop(columns=["_key"]).reset_index(drop=True)
    ds.sampled = len(sample) < ds.rows or not ds.complete
    for c in ds.columns:
        if c.storage == "date":
            sample[c.name] = pd.to_datetime(sample[c.name])
        elif c.storage == "num":
            sample[c.name] = sample[c.name].astype("float64")
        elif c.storage == "bool":
            sample[c.name] = sample[c.name].astype(object)
        _finish_kind(c, sample, ds.complete and not ds.sampled)
        if c.storage == "num" and c.style != "plain":
            c.notes.append("numbers written with %s" % (
                "thousands separators" if c.style == "thousands" else "decimal commas"))
        if c.storage == "date" and len(c.style) > 1:
            used = [f for f in c.style if c.format_counts.get(f)]
            c.notes.append("dates in %d formats (%s)" % (len(used), ", ".join(
                "%s: %d" % (f, c.format_counts[f]) for f in used)))
        if c.bad:
            c.notes.append("%d value(s) could not be read as %s (e.g. %s); treated as missing" % (
                c.bad, {"num": "numbers", "date": "dates", "bool": "booleans"}[c.storage],
                ", ".join(repr(v) for v in c.bad_examples)))
    ds.sample = sample.set_index("_row")
    if not ds.complete:
        ds.notes.append("the time budget ran out after %d rows; later rows were not read "
                        "(about %d rows in total, estimated from the file size)"
                        % (ds.rows, int(ds.size / row_bytes)))
