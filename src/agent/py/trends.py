"""corral trends -- exact per-period aggregates and the trends of the offline analyst.

Sent after dataset.py and before charts.py and offline_analyst.py, in the same cell
(docs/OFFLINE_ANALYST.md). A TimeRollup is passed to load_dataset() as its collector: during
the chunked pass it sums every numeric column per time unit (and per level of up to two small
categorical columns), so trends use all rows, not the sample.

    roll = TimeRollup()
    ds = load_dataset(path, params, name, collector=roll)
    time = time_axis(ds, roll)                          # None: no usable time axis
    trend = period_trend(roll, time, metrics)
    by_group = group_trends(roll, time, group, metric)  # None: fewer than 2 levels with data
"""

MAX_UNITS = 4000        # time units kept per aggregate (days become months past it)


class TimeRollup:
    """Sums and counts per time unit: {None or group name: DataFrame indexed by the key(s)
    [and the group level], columns (sum|count, metric)} in self.tables after finish()."""

    def __init__(self):
        self.keys, self.metrics, self.groups = [], [], []
        self.parts, self.tables, self.unit = {}, {}, "D"

    def start(self, ds):
        """The key: integer year (+ quarter or month) columns by name, else the date column
        with most values in the probe. Metrics: the numeric columns (12 at most). Groups: up
        to 2 string columns with 2..20 values in the probe."""
        parts = {}
        for c in ds.columns:
            for role, pattern, lo, hi in TIME_PARTS:
                if c.storage == "num" and pattern.search(c.name) and role not in parts:
                    parts[role] = c
        dates = [c for c in ds.columns if c.storage == "date"]
        if "year" in parts:
            self.keys = [parts["year"]] + [parts[r] for r in ("quarter", "month") if r in parts][:1]
        elif dates:
            self.keys = [max(dates, key=lambda c: (c.probe_nonnull, -c.pos))]
        self.metrics = [c for c in ds.columns if c.storage == "num" and c not in self.keys][:12]
        self.groups = [c for c in ds.columns if c.storage == "str" and c.count_values
                       and 2 <= c.levels <= 20][:2]

    def add(self, typed):
        if not self.keys:
            return
        keys = [c.name for c in self.keys]
        frame = pd.DataFrame({n: typed[n] for n in dict.fromkeys(
            keys + [g.name for g in self.groups] + [m.name for m in self.metrics])})
        frame["_rows"] = 1.0
        if self.keys[0].storage == "date":
            frame[keys[0]] = frame[keys[0]].to_numpy().astype("datetime64[%s]" % self.unit)
        values = [m.name for m in self.metrics] + ["_rows"]
        for g in [None] + self.groups:
            grouped = frame.groupby(keys + ([g.name] if g else []))[values]
            self.parts.setdefault(g and g.name, []).append(
                pd.concat({"sum": grouped.sum(), "count": grouped.count()}, axis=1))
        if len(self.parts[None]) >= 16:
            self._merge()

    def _merge(self):
        """Sums the collected chunk aggregates. Past MAX_UNITS days the unit becomes the
        month; past MAX_UNITS months (or years) the aggregates are dropped."""
        for name, parts in self.parts.items():
            whole = pd.concat(parts)
            self.parts[name] = [whole.groupby(level=list(range(whole.index.nlevels))).sum()]
        if len(self.parts[None][0]) <= MAX_UNITS:
            return
        if self.keys[0].storage != "date" or self.unit == "M":
            self.keys, self.parts = [], {}
            return
        self.unit = "M"
        for name, (agg,) in self.parts.items():
            idx = [agg.index.get_level_values(i) for i in range(agg.index.nlevels)]
            idx[0] = idx[0].to_numpy().astype("datetime64[M]")
            self.parts[name] = [agg.groupby(idx).sum()]

    def finish(self):
        if self.keys and self.parts:
            self._merge()
        self.tables = {name: parts[0] for name, parts in self.parts.items()}
        self.parts = {}


def time_axis(ds, roll):
    """(label, frequency, function: aggregate index -> PeriodIndex) or None."""
    keys, agg = roll.keys, roll.tables.get(None)
    if not keys or agg is None:
        return None
    k0 = keys[0]
    level0 = agg.index.get_level_values(0)
    if k0.storage == "date":
        days = pd.DatetimeIndex(level0).unique().sort_values()
        if k0.kind != "datetime" or len(days) < 3:
            return None
        span = max((days[-1] - days[0]).days, 1)
        gap = pd.Series(days).diff().dt.days.median()       # the data's own spacing
        freq = next((f for f, d in (("D", 1), ("W", 7), ("M", 28), ("Q", 89))
                     if gap < d * 1.9 and span / d <= 150), "A")
        return k0.name, freq, lambda idx: pd.DatetimeIndex(
            idx.get_level_values(0)).to_period(freq)
    if k0.kind != "time" or level0.nunique() < 2 and len(keys) == 1:
        return None
    sub = keys[1] if len(keys) > 1 and keys[1].kind == "time" else None

    def periods(idx):
        year = idx.get_level_values(0).to_numpy().astype(int)
        if sub is None:
            return pd.PeriodIndex(year=year, month=np.ones(len(year), int), freq="A")
        part = idx.get_level_values(1).to_numpy().astype(int)
        return pd.PeriodIndex(year=year, freq=sub.role[0].upper(), **{sub.role: part})
    return ("%s + %s" % (k0.name, sub.name) if sub else k0.name,
            sub.role[0].upper() if sub else "A", periods)


def per_period(roll, time, group=None):
    """Exact means per period (and per level of group) and rows per period."""
    agg = roll.tables[group.name if group else None]
    by = [time[2](agg.index)]
    if group is not None:
        by.append(agg.index.get_level_values(len(roll.keys)))
    sums = agg["sum"].groupby(by).sum().sort_index()
    counts = agg["count"].groupby(by).sum().sort_index()
    return sums / counts.where(counts > 0), sums["_rows"]


def years_of(periods):
    """Time in years for trend slopes (annual data: the year itself)."""
    idx = pd.PeriodIndex(periods)
    if idx.freqstr.startswith(("A", "Y")):
        return idx.year.to_numpy(float)
    if idx.freqstr.startswith("Q"):
        return idx.year.to_numpy(float) + (idx.quarter.to_numpy(float) - 1) / 4
    if idx.freqstr.startswith("M"):
        return idx.year.to_numpy(float) + (idx.month.to_numpy(float) - 1) / 12
    return (idx.start_time - pd.Timestamp("1970-01-01")).days.to_numpy(float) / 365.25


def growth(first, last, years):
    """(% change, compound % per year or NaN when the span is under a year)."""
    change = (last - first) / abs(first) * 100 if first else float("nan")
    rate = ((last / first) ** (1 / years) - 1) * 100 if first > 0 and last > 0 and years >= 1 \
        else float("nan")
    return change, rate


def period_trend(roll, time, metrics):
    means, rows = per_period(roll, time)
    table = []
    for c in metrics:
        v = means[c.name].dropna()
        if len(v) < 2:
            continue
        y = years_of(v.index)
        change, rate = growth(v.iloc[0], v.iloc[-1], y[-1] - y[0])
        table.append({"column": c.name, "first": v.iloc[0], "last": v.iloc[-1],
                      "change %": change, "growth %/yr": rate,
                      "trend per yr": float(np.polyfit(y, v.to_numpy(float), 1)[0])})
    names = [t["column"] for t in table]
    return {"label": time[0], "freq": time[1], "means": means[names], "rows": rows,
            "table": pd.DataFrame(table), "multi": bool(rows.max() > 1),
            "uneven": bool(rows.max() > 1 and rows.std() > 0.05 * rows.mean())}


def group_trends(roll, time, group, metric):
    """Per level of `group`: the metric's trend over time (log-linear growth when every value
    is positive, else the linear slope relative to the mean); fastest first."""
    means = per_period(roll, time, group)[0][metric.name]
    out, series = [], {}
    key = group.name if group.name not in ("periods", "first", "last", "change %") else "group"
    for level in sorted(means.index.get_level_values(1).unique(), key=str):
        v = means.xs(level, level=1).dropna()
        if len(v) < 3:
            continue
        t, y = years_of(v.index), v.to_numpy(float)
        slope = float(np.polyfit(t, y, 1)[0])
        rate = float(np.expm1(np.polyfit(t, np.log(y), 1)[0]) * 100) if (y > 0).all() \
            else slope / abs(y.mean()) * 100 if y.mean() else float("nan")
        out.append({key: level, "periods": len(v), "first": y[0], "last": y[-1],
                    "change %": growth(y[0], y[-1], t[-1] - t[0])[0],
                    "trend growth %/yr": rate, "trend per yr": slope})
        series[level] = v
    if len(out) < 2:
        return None
    table = pd.DataFrame(out).sort_values(["trend growth %/yr", key],
                                          ascending=[False, True], kind="mergesort")
    return {"group": group, "key": key, "metric": metric, "table": table.reset_index(drop=True),
            "series": series, "log": all((s > 0).all() for s in series.values())}
