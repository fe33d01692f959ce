"""corral charts -- the figures of the offline analyst (docs/OFFLINE_ANALYST.md).

Sent after dataset.py and trends.py, before offline_analyst.py, in one cell. Every function
returns one matplotlib Figure (8 inches wide, 100 dpi, constrained layout) in the STYLE below;
the caller shows it and closes it. Inputs are the analyst's Analysis objects, so the drawing
is deterministic: same data, same pixels.
"""
import matplotlib as mpl
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker

FREQ_WORDS = {"A": "year", "Q": "quarter", "M": "month", "W": "week", "D": "day"}
PALETTE = ["#274060", "#1b6f6a", "#b45309", "#7c3aed", "#be123c", "#4d7c0f", "#0369a1",
           "#a16207", "#6b7280", "#db2777"]
STYLE = {
    "figure.figsize": (8, 4.5), "figure.dpi": 100, "savefig.dpi": 100,
    "figure.facecolor": "white", "savefig.facecolor": "white", "font.size": 9,
    "axes.titlesize": 10, "axes.titleweight": "bold", "axes.titlelocation": "left",
    "axes.labelsize": 9, "axes.edgecolor": "#9ca3af", "axes.linewidth": 0.8,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
    "axes.axisbelow": True, "grid.color": "#e5e7eb", "grid.linewidth": 0.8,
    "xtick.color": "#374151", "ytick.color": "#374151", "legend.frameon": False,
    "axes.prop_cycle": mpl.cycler(color=PALETTE), "svg.hashsalt": "corral",
}


def grid(n, ncols, row_height):
    ncols = min(n, ncols)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(8, row_height * nrows + 0.6),
                             layout="constrained", squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def fig_distributions(an, cols):
    fig, axes = grid(len(cols), 3, 2.2)
    for ax, c in zip(axes, cols):
        x = an.ds.sample[c.name].to_numpy(float)
        x = x[np.isfinite(x)]
        med, log = float(np.median(x)), is_heavy(x)
        if log:
            bins = np.logspace(np.log10(x.min()), np.log10(x.max()), 30)
            ax.set_xscale("log")
        elif c.all_int and x.max() - x.min() <= 400:      # whole numbers per bin, no gaps
            width = math.ceil((x.max() - x.min() + 1) / 50)
            bins = np.arange(x.min() - 0.5, x.max() + width, width)
        else:
            bins = int(min(max(len(np.histogram_bin_edges(x, bins="auto")) - 1, 10), 50))
        ax.hist(x, bins=bins, color=PALETTE[0], edgecolor="white", linewidth=0.4)
        ax.axvline(med, color=PALETTE[2], linestyle="--", linewidth=1)
        ax.set_title(short(c.name, 28) + (" (log scale)" if log else ""))
        ax.set_ylabel("rows" if ax.get_subplotspec().is_first_col() else "")
    return fig


def is_heavy(x):
    if len(x) < 20 or x.min() <= 0:
        return False
    q50, q99 = np.percentile(x, [50, 99])
    return bool(pd.Series(x).skew() > 2 and q50 > 0 and x.max() / q50 > 50)


def fig_categories(an, cols, k):
    fig, axes = grid(len(cols), 2, max(1.0, 0.22 * (k + 1) + 0.7))
    for ax, c in zip(axes, cols):
        top, other, nvals = top_values(an.ds, c, k)
        labels = [short(v, 22) for v, _ in top] + (
            ["Other (%s)" % plural(nvals, "value")] if other else [])
        counts = [n for _, n in top] + ([other] if other else [])
        pos = np.arange(len(counts))[::-1]
        ax.barh(pos, counts, color=[PALETTE[1]] * len(top) + [PALETTE[8]] * bool(other))
        ax.set_yticks(pos, labels, fontsize=8)
        ax.set_title(short(c.name, 36))
        ax.set_xlabel("rows")
        ax.xaxis.set_major_locator(mticker.MaxNLocator(integer=True))
        ax.grid(axis="y", visible=False)
    return fig


def top_values(ds, c, k):
    """([(label, count)] top k, count of the rest, number of other values), ties by value."""
    if c.counts:
        items = c.top(len(c.counts))
    else:
        vc = ds.sample[c.name].value_counts()
        items = sorted(vc.items(), key=lambda kv: (-kv[1], str(kv[0])))
    if c.kind == "boolean" and c.storage == "num":
        items = [("1" if v == 1 else "0", n) for v, n in items]
    elif c.storage == "bool":          # the words of the file: yes/no, true/false, ...
        other = next(w for words, t in BOOL_WORDS if t == c.style for w in words if w != t)
        items = [(c.style if v else other, n) for v, n in items]
    return items[:k], sum(n for _, n in items[k:]), len(items[k:])


def fig_missing(an):
    cols = sorted(an.missing, key=lambda c: (-(c.missing + c.bad), c.pos))[:30]
    rows = max(an.ds.rows, 1)
    fig, ax = plt.subplots(figsize=(8, 0.25 * len(cols) + 1.2), layout="constrained")
    pos = np.arange(len(cols))[::-1]
    ax.barh(pos, [100.0 * (c.missing + c.bad) / rows for c in cols], color=PALETTE[4])
    ax.set_yticks(pos, [short(c.name, 30) for c in cols], fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_xlabel("missing values (% of rows)")
    ax.set_title("Missing values by column")
    ax.grid(axis="y", visible=False)
    return fig


def fig_corr(an):
    corr, n = an.corr, len(an.corr)
    side = min(6.8, 1.6 + 0.45 * n)
    fig, ax = plt.subplots(figsize=(side + 1.2, side), layout="constrained")
    im = ax.imshow(corr.to_numpy(float), cmap="RdBu_r", vmin=-1, vmax=1)
    labels = [short(x, 18) for x in corr.columns]
    ax.set_xticks(range(n), labels, rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center")
    ax.set_yticks(range(n), labels)
    ax.grid(False)
    if n <= 12:
        for i in range(n):
            for j in range(n):
                v = corr.iat[i, j]
                if math.isfinite(v):
                    ax.text(j, i, "%.2f" % v, ha="center", va="center", fontsize=8,
                            color="white" if abs(v) > 0.6 else "#1f2937")
    fig.colorbar(im, ax=ax, shrink=0.8, label="Pearson r")
    ax.set_title("Correlation between numeric columns")
    return fig


def fig_trend(an):
    tr = an.trend
    cols = list(tr["table"]["column"][:6]) if len(tr["table"]) else []
    panels = cols + (["rows"] if tr["uneven"] else [])
    fig, axes = grid(len(panels), 2 if len(panels) > 1 else 1, 2.3 if len(panels) > 1 else 3.6)
    x = tr["rows"].index.to_timestamp()
    for i, (ax, name) in enumerate(zip(axes, panels)):
        y = tr["rows"] if name == "rows" else tr["means"][name]
        ax.plot(x, y.to_numpy(float), color=PALETTE[i % len(PALETTE)], linewidth=1.6,
                marker="o" if len(x) <= 30 else None, markersize=3)
        ax.set_title("rows per %s" % FREQ_WORDS[tr["freq"]] if name == "rows" else
                     ("mean %s" % short(name, 30)) if tr["multi"] else short(name, 34))
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    return fig


def fig_ranking(an):
    g = an.groups
    t = g["table"]
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(t) + 1.2), layout="constrained")
    pos = np.arange(len(t))[::-1]
    vals = t["trend growth %/yr"].to_numpy(float)
    ax.barh(pos, vals, color=[PALETTE[1] if v >= 0 else PALETTE[4] for v in vals])
    ax.set_yticks(pos, [short(v, 28) for v in t[g["key"]]], fontsize=8)
    ax.axvline(0, color="#6b7280", linewidth=0.8)
    ax.set_xlabel("trend growth of %s (%% per year)" % short(g["metric"].name, 30))
    ax.set_title("Growth of %s by %s" % (short(g["metric"].name, 30), short(g["group"].name, 30)))
    ax.grid(axis="y", visible=False)
    return fig


def fig_lines(an):
    g = an.groups
    levels = list(g["table"][g["key"]][:12])
    fig, axes = grid(len(levels), 4, 1.7)
    for i, (ax, level) in enumerate(zip(axes, levels)):
        v = g["series"][level]
        ax.plot(v.index.to_timestamp(), v.to_numpy(float), color=PALETTE[i % len(PALETTE)],
                linewidth=1.4)
        ax.set_title(short(level, 24), fontsize=9)
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(maxticks=4))
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
        ax.tick_params(labelsize=7)
    return fig
