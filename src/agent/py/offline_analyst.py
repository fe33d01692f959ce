"""corral offline analyst -- a fixed, standard analysis when no model is configured.

Sent as one cell after dataset.py, trends.py and charts.py (and an optional params prologue,
`CORRAL_PARAMS = {...}`); see
docs/OFFLINE_ANALYST.md for the contract. For every data file: overview, column kinds, missing
values, numeric distributions, top categories, correlations, a time trend and per-category
trends when the data has a time axis, then templated sentences with the actual numbers.
Writes the Markdown body to params["report_path"] (copied to /output/report.md when /output
exists), shows figures with display() in order (fig-N) and displays DataFrames (table-N).
Deterministic: same data, same Markdown and same figures.
"""
import json
import traceback

ROUNDING = {"first": 3, "last": 3, "change %": 1, "growth %/yr": 2, "trend growth %/yr": 2,
            "trend per yr": 3}
FIGURE_PRIORITY = ["time", "ranking", "dist", "corr", "cats", "lines", "missing"]
MAX_GROUPS = 20          # levels of a category for per-category trends
QUESTION_TOPICS = [
    ("growth", r"grow|growth|increas|decreas|declin|trend|over time|change|fastest|slowest|"
               r"rise|rising|fall|evolv"),
    ("correlation", r"correl|relat|associat|depend|driver|affect|impact|link|predict"),
    ("missing", r"missing|null|empty|incomplete|complete|quality|gap"),
    ("distribution", r"distribut|outlier|skew|spread|range|typical|average|mean|median"),
    ("categories", r"most common|frequen|categor|\btop\b|popular|share|largest group"),
]


def md(s):
    """Data text made safe inside Markdown: one line, punctuation that could mean markup escaped."""
    s = " ".join(str(s).split())
    return re.sub(r"([\\`*_\[\]<>#|!~&{}])", r"\\\1", s)


def fmt(x):
    """Deterministic number text for sentences: 1,234 / 133.3 / 5.31 / 0.0931."""
    if x is None or isinstance(x, float) and not math.isfinite(x):
        return "n/a"
    x = float(x)
    if x.is_integer() and abs(x) < 1e15:
        return "{:,}".format(int(x))
    a = abs(x)
    return ("{:,.0f}" if a >= 1000 else "{:.1f}" if a >= 100 else "{:.2f}" if a >= 1
            else "{:.3g}").format(x)


def pct(x, sign=False):
    if x is None or not math.isfinite(x):
        return "n/a"
    spec = ("+" if sign else "") + (",.0f" if abs(x) >= 1000 else ".1f")
    return format(x, spec) + "%"


def plural(n, word):
    return "%s %s%s" % (fmt(n), word, "" if n == 1 else "s")


class Report:
    """The Markdown body plus the figures and tables it refers to, numbered as shown."""

    def __init__(self, params):
        self.lines, self.params = [], params
        self.fig_no, self.table_no = params["first_figure"], params["first_table"]
        self.figures, self.tables = [], []
        self.show = globals().get("display")

    def add(self, *paragraphs):
        for p in paragraphs:
            if p:
                self.lines += [p, ""]

    def figure(self, fig, caption):
        fid = "fig-%d" % self.fig_no
        self.fig_no += 1
        if self.show is not None:
            self.show(fig)                  # the runner renders, numbers and closes it
        else:                               # outside corral: next to the report, for review
            fig.savefig(os.path.join(os.path.dirname(self.params["report_path"]), fid + ".png"))
        plt.close(fig)
        self.figures.append(fid)
        self.add("![%s](figure:%s)" % (md(caption), fid))

    def table(self, df, caption):
        tid = "table-%d" % self.table_no
        self.table_no += 1
        if self.show is not None:
            self.show(df.reset_index(drop=True))
        self.tables.append(tid)
        self.add("![%s](table:%s)" % (md(caption), tid))

    def text(self):
        return "\n".join(self.lines).rstrip() + "\n"


# ------------------------------------------------------------------------------- analysis

class Analysis:
    """Everything computed for one dataset before anything is written."""

    def __init__(self, ds, roll, params):
        self.ds, self.params, self.facts = ds, params, {}
        s, cols = ds.sample, ds.columns
        q = params["question"].lower()
        named = [c for c in cols if len(c.name) >= 3 and re.search(
            r"(?<![a-z0-9])" + re.escape(c.name.lower()), q)]
        self.numeric = [c for c in cols if c.kind == "numeric" and c.min != c.max]
        self.constant = [c for c in cols if c.nonnull and c.distinct == 1 or
                         c.kind == "numeric" and c.min == c.max]
        self.metrics = [c for c in named if c in self.numeric] + \
            [c for c in self.numeric if c not in named]
        self.cats = [c for c in cols if c.kind in ("categorical", "boolean") and c.distinct > 1]
        self.charted_cats = [c for c in self.cats if not uniform(ds, c)]
        self.missing = [c for c in cols if c.missing + c.bad]
        self.corr, self.pairs = None, []
        usable = [c.name for c in self.numeric if s[c.name].notna().sum() >= 3]
        if len(usable) >= 2:
            corr = s[usable].corr(min_periods=3)
            pairs = [(abs(corr.iat[i, j]), a, b, corr.iat[i, j])
                     for i, a in enumerate(usable) for j, b in enumerate(usable)
                     if i < j and math.isfinite(corr.iat[i, j])]
            pairs.sort(key=lambda t: (-t[0], t[1], t[2]))
            self.pairs = [(a, b, r) for _, a, b, r in pairs]
            strength = corr.abs().where(~np.eye(len(usable), dtype=bool)).max()
            keep = sorted(strength.fillna(0).sort_values(ascending=False, kind="mergesort")
                          .index[:20], key=usable.index)
            self.corr = corr.loc[keep, keep]
        self.time = time_axis(ds, roll)
        self.trend = self.groups = None
        if self.time is not None:
            rolled = [c for c in self.metrics if c.name in roll.tables[None]["sum"]]
            self.trend = period_trend(roll, self.time, rolled)
            groups = [c for c in named if c in self.cats] + [
                c for c in self.cats if c.kind == "categorical" and c.distinct_exact]
            group = next((c for c in groups if c.distinct <= MAX_GROUPS and c.name in roll.tables),
                         None)
            if group is not None and rolled:
                self.groups = group_trends(roll, self.time, group, rolled[0])

    def figure_kinds(self):
        have = {"time": self.trend is not None and (len(self.trend["table"]) > 0 or
                                                    self.trend["uneven"]),
                "dist": bool(self.numeric),
                "corr": self.corr is not None, "cats": bool(self.charted_cats),
                "missing": bool(self.missing), "ranking": self.groups is not None,
                "lines": self.groups is not None}
        return [k for k in FIGURE_PRIORITY if have[k]]


def uniform(ds, c):
    """True when every value of c has the same count (a bar chart would say nothing)."""
    items, _, _ = top_values(ds, c, 10 ** 6)
    return c.distinct_exact and len(set(n for _, n in items)) == 1


# -------------------------------------------------------------------------------- writing

KIND_WORDS = [("numeric", "numeric"), ("categorical", "categorical"), ("boolean", "boolean"),
              ("datetime", "date/time"), ("time", "time"), ("text", "text"), ("id", "id-like"),
              ("empty", "empty")]


def words(items):
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def period_text(p):
    return p.start_time.strftime("%Y-%m-%d") if p.freqstr[0] in "DW" else str(p)


def strength(r):
    a = abs(r)
    word = ("strongly" if a >= 0.7 else "moderately" if a >= 0.4 else "weakly" if a >= 0.2
            else "very weakly")
    return word + (" negatively" if r < 0 else "")


def change_text(what, first, last, p0, p1, change, rate):
    verb = "rose" if last > first else "fell" if last < first else "stayed"
    extra = [pct(change, True)] if math.isfinite(change) else []
    if math.isfinite(rate):
        extra.append("%s per year" % pct(rate, True))
    return "%s %s from %s in %s to %s in %s%s." % (
        what, verb, fmt(first), period_text(p0), fmt(last), period_text(p1),
        " (%s)" % ", ".join(extra) if extra else "")


def column_table(ds):
    rows = []
    for c in ds.columns[:60]:
        ex = ds.head[c.name].dropna() if c.name in ds.head else pd.Series(dtype=object)
        rows.append({"column": c.name, "kind": "time (%s)" % c.role if c.role else c.kind,
                     "dtype": c.dtype, "non-missing": c.nonnull,
                     "missing %": round(100.0 * (c.missing + c.bad) / max(ds.rows, 1), 1),
                     "distinct": ("" if c.distinct_exact else ">= ") + str(c.distinct),
                     "example": short(ex.iloc[0], 30) if len(ex) else ""})
    return pd.DataFrame(rows)


def render_dataset(rep, an, h, quota):
    ds, k = an.ds, an.params["max_categories"]
    allowed = set(an.figure_kinds()[:quota])
    an.skipped_figures = len(an.figure_kinds()) - len(allowed)
    n_cells = max(ds.rows * len(ds.columns), 1)
    kinds = [(w, sum(c.kind == kd for c in ds.columns)) for kd, w in KIND_WORDS]
    shape = "The dataset has %s%s and %s (%s)." % (
        "at least " if not ds.complete else "", plural(ds.rows, "row"),
        plural(len(ds.columns), "column"), ", ".join("%d %s" % (n, w) for w, n in kinds if n))
    miss = sum(c.missing + c.bad for c in ds.columns)
    if not miss:
        missing = "No values are missing."
    else:
        worst = max(an.missing, key=lambda c: (c.missing + c.bad, -c.pos))
        missing = "%s %s missing (%s of all cells); the most are in %s (%s, %s of rows)." % (
            fmt(miss), "value is" if miss == 1 else "values are", pct(100.0 * miss / n_cells),
            md(worst.name), plural(worst.missing + worst.bad, "row"),
            pct(100.0 * (worst.missing + worst.bad) / max(ds.rows, 1)))
    an.facts = {"shape": [shape + " " + missing], "missing": [missing]}

    rep.add("%s Overview" % h, shape + " " + missing)
    mem = ds.sample.memory_usage(deep=True).sum() * ds.rows / max(len(ds.sample), 1)
    facts = ["- File: %s, %s, encoding %s, %s-delimited." % (
        md(ds.name), human_bytes(ds.size), ds.encoding, ds.delimiter_name),
        "- In memory (pandas, %s): about %s." % ("estimated" if ds.sampled else "as loaded",
                                                 human_bytes(int(mem)))]
    facts += ["- Note: %s." % md(n.rstrip(".")) for n in ds.notes]
    for c in ds.columns:
        facts += ["- Column %s: %s." % (md(c.name), md(n)) for n in c.notes[:2]]
    rep.add("\n".join(facts[:25]))
    others = [("text", "Text columns (not charted)"), ("id", "Id-like columns (not charted)"),
              ("empty", "Columns with no values at all")]
    others = [(label, [c for c in ds.columns if c.kind == kd]) for kd, label in others]
    others.append(("Constant columns (one value, not charted)", an.constant))
    rep.add(" ".join("%s: %s." % (label, words([md(c.name) for c in cols]))
                     for label, cols in others if cols))
    rep.table(column_table(ds), "Column names, kinds and types" + (
        " (first 60 of %d columns)" % len(ds.columns) if len(ds.columns) > 60 else ""))
    head = ds.head.iloc[:5, :12].applymap(lambda v: "" if v != v else short(v, 30))
    rep.table(head, "First rows of %s, as written in the file%s" % (
        ds.name, " (first 12 columns)" if len(ds.columns) > 12 else ""))

    if an.missing:
        cols = sorted(an.missing, key=lambda c: (-(c.missing + c.bad), c.pos))
        rep.add("%s Missing values" % h, missing)
        rep.table(pd.DataFrame([{"column": c.name, "missing": c.missing, "unreadable": c.bad,
                                 "missing %": round(100.0 * (c.missing + c.bad) / ds.rows, 1)}
                                for c in cols[:60]]), "Columns with missing values")
        if "missing" in allowed:
            rep.figure(fig_missing(an), "Share of missing values per column")

    if an.numeric:
        s = ds.sample
        sents = ["%s ranges from %s to %s (median %s, mean %s)." % (
            md(c.name), fmt(c.min), fmt(c.max), fmt(s[c.name].median()), fmt(c.mean))
            for c in an.numeric[:4]]
        skews = [(float(s[c.name].skew()), c) for c in an.numeric]
        skews = [(v, c) for v, c in skews if math.isfinite(v) and abs(v) > 1]
        if skews:
            v, c = max(skews, key=lambda t: (abs(t[0]), -t[1].pos))
            sents.append("The most skewed is %s (skewness %.1f): its mean (%s) is %s its median "
                         "(%s)." % (md(c.name), v, fmt(c.mean), "above" if v > 0 else "below",
                                    fmt(s[c.name].median())))
        an.facts["distribution"] = sents
        rep.add("%s Numeric columns" % h, " ".join(sents))
        rep.table(pd.DataFrame([{
            "column": c.name, "count": c.nonnull, "missing": c.missing + c.bad,
            "mean": round(c.mean, 4), "std": round(c.std, 4), "min": c.min,
            "median": round(float(s[c.name].median()), 4), "max": c.max,
            "skewness": round(float(s[c.name].skew()), 2)} for c in an.numeric[:60]]),
            "Summary statistics of numeric columns")
        if "dist" in allowed:
            cols = an.numeric[:12]
            rep.figure(fig_distributions(an, cols), "Distributions of %s (dashed line: median%s)"
                       % ("numeric columns" if len(cols) == len(an.numeric) else
                          "the first %d of %d numeric columns" % (len(cols), len(an.numeric)),
                          "; log scale for heavy tails" if any(
                              is_heavy(s[c.name].dropna().to_numpy(float)) for c in cols) else ""))

    if an.cats:
        sents, rows = [], []
        for c in an.cats:
            top, other, nother = top_values(ds, c, k)
            total = max(c.nonnull, 1)
            if uniform(ds, c):
                sents.append("%s has %d values with %s each." % (
                    md(c.name), c.distinct, plural(top[0][1], "row")))
            else:
                sents.append("The most common %s is %s (%s, %s)." % (
                    md(c.name), md(short(top[0][0], 60)), plural(top[0][1], "row"),
                    pct(100.0 * top[0][1] / total)))
            rows.append({"column": c.name, "distinct": c.distinct,
                         "top value": short(top[0][0], 40), "top count": top[0][1],
                         "top %": round(100.0 * top[0][1] / total, 1),
                         "missing": c.missing})
        an.facts["categories"] = sents[:4]
        rep.add("%s Categorical columns" % h, " ".join(sents[:6]))
        rep.table(pd.DataFrame(rows[:60]), "Categorical columns and their most common value")
        if "cats" in allowed:
            cols = an.charted_cats[:6]
            rep.figure(fig_categories(an, cols, k), "Most common values of %s (top %d, the rest as "
                       "Other)" % (words([c.name for c in cols]), k))

    if an.corr is not None:
        a, b, r = an.pairs[0]
        if abs(r) >= 0.2:
            sents = ["%s and %s are %s correlated (r = %.2f)." % (md(a), md(b), strength(r), r)]
            more = [(x, y, v) for x, y, v in an.pairs[1:4] if abs(v) >= 0.3]
            if more:
                sents.append("Other notable pairs: %s." % words(
                    ["%s and %s (r = %.2f)" % (md(x), md(y), v) for x, y, v in more]))
        else:
            sents = ["No pair of numeric columns is more than very weakly correlated (largest: "
                     "%s and %s, r = %.2f)." % (md(a), md(b), r)]
        an.facts["correlation"] = sents
        rep.add("%s Correlations" % h, " ".join(sents))
        rep.table(pd.DataFrame([{"column A": x, "column B": y, "r": round(v, 3)}
                                for x, y, v in an.pairs[:10]]), "Strongest correlations (Pearson)")
        if "corr" in allowed:
            rep.figure(fig_corr(an), "Correlation matrix of numeric columns%s" % (
                "" if len(an.corr) == len(an.numeric) else
                " (the %d most correlated)" % len(an.corr)))

    if an.trend is not None:
        tr, unit = an.trend, FREQ_WORDS[an.trend["freq"]]
        rows = tr["rows"]
        sents = ["The time axis is %s: %s to %s (%s)." % (md(tr["label"]), period_text(
            rows.index[0]), period_text(rows.index[-1]), plural(len(rows), unit))]
        for row in tr["table"].head(3).itertuples(index=False):
            what = ("The mean %s per %s" % (md(row[0]), unit)) if tr["multi"] else md(row[0])
            v = tr["means"][row[0]].dropna()
            sents.append(change_text(what, row[1], row[2], v.index[0], v.index[-1], row[3], row[4]))
        if tr["uneven"]:
            sents.append(change_text("The number of rows per %s" % unit, rows.iloc[0],
                                     rows.iloc[-1], rows.index[0], rows.index[-1],
                                     float("nan"), float("nan"))[:-1] +
                         "; the most were in %s (%s)." % (period_text(rows.idxmax()),
                                                           fmt(rows.max())))
        an.facts["growth"] = sents[1:2]
        if not len(tr["table"]):
            sents.append("There are no numeric columns to follow over time.")
        rep.add("%s Trend over time" % h, " ".join(sents))
        if len(tr["table"]):
            rep.table(tr["table"].round(ROUNDING), "Change of each numeric column over time "
                      "(%s; %s per %s)" % (tr["label"], "mean" if tr["multi"] else "value", unit))
        if "time" in allowed:
            rep.figure(fig_trend(an), "%s per %s over time%s" % (
                "Mean of each numeric column" if tr["multi"] else "Numeric columns", unit,
                ", and the number of rows" if tr["uneven"] else ""))

    if an.groups is not None:
        g = an.groups
        t, gname, mname, key = g["table"], g["group"].name, g["metric"].name, g["key"]
        lv, rate = t[key].tolist(), t["trend growth %/yr"].tolist()
        how = ("the log-linear trend of %s per %s" if g["log"] else
               "the linear trend of %s per %s, relative to its mean") % (md(mname), md(gname))
        sent = "By %s, %s grew fastest (%s per year)" % (how, md(lv[0]), pct(rate[0], True))
        if len(lv) > 2:
            n = min(3, len(lv) - 1)
            sent += ", followed by %s" % words(["%s (%s)" % (md(x), pct(y, True))
                                                for x, y in zip(lv[1:n], rate[1:n])])
        sent += "; %s grew slowest (%s per year)." % (md(lv[-1]), pct(rate[-1], True))
        big = t.sort_values(["trend per yr", key], ascending=[False, True],
                            kind="mergesort").iloc[0]
        sent2 = "The largest absolute increase was at %s (%s%s %s per year)." % (
            md(big[key]), "+" if big["trend per yr"] > 0 else "", fmt(big["trend per yr"]),
            md(mname))
        an.facts.setdefault("growth", []).extend([sent, sent2])
        rep.add("%s Trends by %s" % (h, md(gname)), sent + " " + sent2)
        rep.table(t.round(ROUNDING), "Trend of %s for each %s, fastest growth first" % (
            mname, gname))
        if "ranking" in allowed:
            rep.figure(fig_ranking(an), "Trend growth of %s per year for each %s" % (mname, gname))
        if "lines" in allowed:
            rep.figure(fig_lines(an), "%s over time for each %s%s" % (
                mname, gname, "" if len(t) <= 12 else " (the 12 fastest growing)"))


def answer(params, analyses):
    q = params["question"].strip()
    if not q:
        return []
    topics = [name for name, rx in QUESTION_TOPICS if re.search(rx, q, re.I)]
    found = []
    for an in analyses:
        for topic in topics:
            found += ["- %s" % s for s in an.facts.get(topic, [])]
    out = ["## About your question", "You asked: %s" % md(q)]
    if found:
        out.append("What the standard analysis can say about it:\n\n" + "\n".join(found))
    else:
        out.append("The standard offline analysis cannot answer this question directly; the "
                   "sections below describe the data.")
    out.append("No language model was used: the question was only matched against a few "
               "keywords (growth, correlation, missing values, distributions, categories).")
    return out


def analyst_main():
    missing = [n for n in ("load_dataset", "TimeRollup", "fig_trend") if n not in globals()]
    if missing:
        raise RuntimeError("the cell must be dataset.py + trends.py + charts.py + "
                           "offline_analyst.py, in this order (docs/OFFLINE_ANALYST.md); "
                           "not defined: " + ", ".join(missing))
    params = corral_params()
    rep = Report(params)
    files = data_files(params)
    names = [n for n, _, _ in files]
    title = "Offline analysis of %s" % (md(names[0]) if len(names) == 1 else
                                         "%d data files" % len(names))
    rep.add("# " + title if params["title"] else "",
            "This report was produced by corral's offline analyst: a fixed, standard analysis "
            "with templated sentences. No language model was used.")
    at, analyses, problems, results = len(rep.lines), [], [], []
    ok = [(n, p) for n, p, why in files if not why]
    problems += ["%s: %s." % (md(n), why) for n, _, why in files if why]
    budget = params["max_figures"]
    for i, (name, path) in enumerate(ok):
        roll = TimeRollup()
        ds = load_dataset(path, params, name, collector=roll)
        results.append({"name": name, "status": ds.status, "rows": ds.rows,
                        "columns": len(ds.columns), "seconds": round(ds.seconds, 2)})
        h = "##" if len(ok) == 1 else "###"
        if len(ok) > 1:
            rep.add("## Dataset: %s" % md(name))
        if ds.status != "ok":
            if len(ok) == 1:
                rep.add("## Not analysed")
            rep.add("%s: %s." % (md(name), md(ds.message)))
            problems.append("%s: %s." % (md(name), md(ds.message)))
            continue
        before = len(rep.figures)
        try:
            an = Analysis(ds, roll, params)
            with plt.rc_context(STYLE):
                render_dataset(rep, an, h, budget // max(1, len(ok) - i))
            analyses.append(an)
        except Exception as e:   # keep what was written; never leave a figure open
            plt.close("all")
            traceback.print_exc(limit=4)
            why = "the analysis stopped early (%s: %s)" % (type(e).__name__, short(e, 200))
            rep.add("%s: %s." % (md(name), md(why)))
            problems.append("%s: %s." % (md(name), md(why)))
        budget -= len(rep.figures) - before
    summary = []
    if analyses:
        summary = ["## Summary", "\n".join("- %s%s" % (
            "" if len(analyses) == 1 else "%s: " % md(an.ds.name), s) for an in analyses
            for s in (an.facts["shape"] + an.facts.get("correlation", [])[:1] +
                      an.facts.get("growth", [])[:2] + an.facts.get("categories", [])[:1]))]
    elif not ok:
        summary = ["## Summary", "No data file could be analysed." if files else
                   "No data files were found in %s." % md(params["data_dir"])]
    rep.lines[at:at] = [x for p in summary + answer(params, analyses) for x in (p, "")]
    limits = ["## About this analysis",
              "Kinds of columns are inferred from their values: numbers, dates (a few common "
              "formats), booleans, time parts (year, quarter, month columns by name), id-like "
              "and free-text columns. Correlations are Pearson coefficients over pairs of "
              "non-missing values. Growth per year is the compound rate between the first and "
              "last period; trend growth is exp(b) - 1 for a least-squares fit of log(value) "
              "on time in years."]
    limits += ["%s: distributions, medians and correlations are based on a uniform random "
               "sample of %s of %s rows (seeded, so reruns give the same result); counts, "
               "missing values, means, minima, maxima and trends over time use all rows "
               "read." % (
                   md(an.ds.name), fmt(len(an.ds.sample)), fmt(an.ds.rows))
               for an in analyses if an.ds.sampled]
    dropped = sum(getattr(an, "skipped_figures", 0) for an in analyses)
    if dropped:
        limits.append("The figure limit (%d) left out %s." % (
            params["max_figures"], plural(dropped, "chart")))
    if problems:
        limits.append("Files not analysed:\n\n" + "\n".join("- " + p for p in problems))
    limits += ["Note: " + md(n) + "." for n in params["notes"]]
    rep.add(*limits)
    text = rep.text()
    os.makedirs(os.path.dirname(params["report_path"]) or ".", exist_ok=True)
    with open(params["report_path"], "w", encoding="utf-8") as f:
        f.write(text)
    if os.path.isdir("/output") and os.access("/output", os.W_OK):
        with open("/output/report.md", "w", encoding="utf-8") as f:
            f.write(text)
    for r in results:
        print("corral offline analyst: %s: %s, %d rows x %d columns (%.2f s)" % (
            r["name"], r["status"], r["rows"], r["columns"], r["seconds"]))
    print("CORRAL_OFFLINE_RESULT " + json.dumps({
        "report": params["report_path"], "bytes": len(text.encode("utf-8")),
        "figures": rep.figures, "tables": rep.tables, "files": results}, sort_keys=True))


try:
    if __name__ == "__main__":
        with warnings.catch_warnings():     # numpy/pandas warnings would go to stderr
            warnings.simplefilter("ignore")
            analyst_main()
finally:   # leave the session's namespace as we found it (CORRAL_PARAMS stays)
    for _name in [n for n in globals() if n not in _CORRAL_GLOBALS_BEFORE]:
        if _name != "_name":
            del globals()[_name]
    del _name
