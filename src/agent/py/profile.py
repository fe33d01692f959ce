"""corral data profile -- the model's only view of the data (docs/OFFLINE_ANALYST.md).

Sent as one cell after dataset.py (optionally after `CORRAL_PARAMS = {...}`). Prints, for every
data file, a compact text of at most params["profile_bytes"] (<= 4096) UTF-8 bytes, the header
line and separators included (profile_bytes x files in all): file facts, one line per column
(dtype, kind, missing, summary statistics), a few sample rows with cells cut to 40
characters, and notes. It never prints the dataset: at most 40 columns get a line,
at most profile_rows rows are shown, and the text says when anything was capped.
"""

MAX_COLUMNS = 40
CELL = 40
COLUMN_LINE = 200
ROW_LINE = 300


def _num(x):
    """Compact, deterministic number text: 1486.7, 0.93, 2.71e+06, 1935."""
    if x is None or isinstance(x, float) and not math.isfinite(x):
        return "nan" if x is None or x != x else ("inf" if x > 0 else "-inf")
    if float(x) == int(x) and abs(x) < 1e15:
        return str(int(x))
    return "%.6g" % x if 1e-4 <= abs(x) < 1e6 else "%.4g" % x


def _when(t):
    t = pd.Timestamp(t)
    return t.strftime("%Y-%m-%d") if t == t.normalize() else t.strftime("%Y-%m-%d %H:%M:%S")


def _kind(c):
    return "time (%s)" % c.role if c.kind == "time" else c.kind


def column_line(ds, c):
    """'- name: dtype, kind; N missing; stats' capped at COLUMN_LINE characters."""
    parts = ["%s, %s" % (c.dtype, _kind(c)), "%d missing" % c.missing]
    if c.bad:
        parts[-1] += " (+%d unreadable)" % c.bad
    if c.kind == "empty":
        parts.append("all values missing")
    elif c.storage == "num":
        med = ds.sample[c.name].median()
        parts.append("min %s, median%s %s, mean %s, max %s" % (
            _num(c.min), "~" if ds.sampled else "", _num(med), _num(c.mean), _num(c.max)))
    elif c.storage == "date":
        parts.append("from %s to %s" % (_when(c.min), _when(c.max)))
    else:
        counts = c.top(3) if c.counts else list(
            ds.sample[c.name].value_counts().sort_index().sort_values(
                ascending=False, kind="mergesort").items())[:3]
        exact = "" if c.distinct_exact else ">="
        parts.append("%s%d unique" % (exact, c.distinct))
        if c.kind in ("categorical", "boolean"):
            parts.append("top: " + ", ".join("%s (%d)" % (short(v, 24), n) for v, n in counts))
        elif c.kind == "text":
            parts.append("mean length %d, max %d" % (c.len_sum // max(1, c.nonnull), c.len_max))
    if c.notes:
        parts.append("; ".join(c.notes))
    return short("- %s: %s" % (short(c.name, 60), "; ".join(parts)), COLUMN_LINE)


def sample_lines(ds, n, width):
    """The first n rows as CSV (as written in the file), cells cut to CELL characters, lines
    to width."""
    head = ds.head.iloc[:n, :MAX_COLUMNS]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow([short(x, CELL) for x in head.columns])
    for row in head.itertuples(index=False):
        w.writerow(["" if isinstance(v, float) and v != v else short(v, CELL) for v in row])
    return [short(line, width) for line in out.getvalue().splitlines()]


def _size(lines):
    return sum(len(x.encode("utf-8")) + 1 for x in lines)


def profile_text(ds, params):
    """The profile of one Dataset, at most params['profile_bytes'] bytes."""
    cap = params["profile_bytes"]
    title = "## %s" % ds.name
    if ds.status != "ok":
        facts = "%s, %s" % (ds.path, human_bytes(ds.size))
        return _fit([title, facts, ds.message] + ["note: " + n for n in ds.notes], cap)
    top = [title, "%s, %s, encoding %s, %s-delimited, %s%d rows x %d columns" % (
        ds.path, human_bytes(ds.size), ds.encoding, ds.delimiter_name,
        "" if ds.complete else "at least ", ds.rows, len(ds.columns))]
    if ds.sampled:
        top.append("medians and unique counts marked ~ or >= come from a sample of %d rows"
                   % len(ds.sample))
    notes = ["note: " + short(n, 240) for n in ds.notes[:5]]
    n = params["profile_rows"]    # sample rows get at most a quarter of the cap
    rows = sample_lines(ds, n, min(ROW_LINE, cap // 4 // (n + 1))) if n else []
    if rows:
        rows.insert(0, "first %d rows (CSV as in the file, cells cut to %d characters%s):" % (
            len(rows) - 1, CELL, ", first %d columns" % MAX_COLUMNS
            if len(ds.columns) > MAX_COLUMNS else ""))
    cols = ["columns (name: dtype, kind; missing; statistics):"]
    room = cap - _size(top) - _size(notes) - _size(rows) - 200
    shown = 0
    for c in ds.columns[:MAX_COLUMNS]:
        line = column_line(ds, c)
        if _size(cols + [line]) > room:
            break
        cols.append(line)
        shown += 1
    if shown < len(ds.columns):
        why = "profile capped at %d bytes" % cap if shown < min(MAX_COLUMNS, len(ds.columns)) \
            else "at most %d columns are described" % MAX_COLUMNS
        rest = ", ".join(short(c.name, 30) for c in ds.columns[shown:])
        cols.append(short("- ... %d more columns (%s): %s" % (
            len(ds.columns) - shown, why, rest), 190))
    return _fit(top + cols + rows + notes, cap)


def _fit(lines, cap):
    """Joins lines; if the text is over cap bytes, cuts it and says so."""
    text = "\n".join(lines) + "\n"
    data = text.encode("utf-8")
    if len(data) <= cap:
        return text
    note = "\n[profile capped at %d bytes]\n" % cap
    cut = data[:cap - len(note)].decode("utf-8", "ignore")
    return cut[:cut.rfind("\n") + 1 or len(cut)].rstrip("\n") + note


def profile_main():
    """Prints the header, then each file's profile and a blank line; the whole output stays
    within profile_bytes x files (the agent caps it so): the header and the separators are
    taken from the files' share."""
    params = corral_params()
    files = data_files(params)
    head = ["# corral data profile: %d file(s) in %s" % (len(files), short(params["data_dir"], 80))]
    head += ["note: " + short(n, 120) for n in params["notes"][:3]]
    if not files:
        head.append("No data files were given.")
    print("\n".join(head))
    n = max(len(files), 1)
    params["profile_bytes"] -= -(-(_size(head) + n) // n)      # ceil: header + separators
    for name, path, problem in files:
        text = "## %s\n%s\n" % (name, problem) if problem else \
            profile_text(load_dataset(path, params, name), params)
        print(text)


try:
    if __name__ == "__main__":
        with warnings.catch_warnings():     # numpy/pandas warnings would go to stderr
            warnings.simplefilter("ignore")
            profile_main()
finally:   # leave the session's namespace as we found it (CORRAL_PARAMS stays)
    for _name in [n for n in globals() if n not in _CORRAL_GLOBALS_BEFORE]:
        if _name != "_name":
            del globals()[_name]
    del _name
