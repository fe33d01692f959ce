"""A real pandas + numpy + matplotlib job: read a CSV, group, aggregate, plot, save a PNG.
Runs identically inside and outside the sandbox (paths from DATA and OUT, defaults for inside)."""
import os

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

data = os.environ.get("DATA", "/data/grunfeld.csv")
out = os.environ.get("OUT", "/output")

df = pd.read_csv(data)
by_firm = (df.groupby("firm")
             .agg(invest_mean=("invest", "mean"), invest_sum=("invest", "sum"),
                  value_max=("value", "max"), years=("year", "nunique"))
             .sort_values("invest_sum", ascending=False))
growth = (df.sort_values("year").groupby("firm")["invest"]
            .apply(lambda s: np.polyfit(np.arange(len(s)), s.to_numpy(), 1)[0])
            .rename("trend_per_year"))
table = by_firm.join(growth).round(2)
print(table.to_string())
print("corr(invest, value) = %.4f" % df["invest"].corr(df["value"]))

fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
for firm, g in df.groupby("firm"):
    ax.plot(g["year"], g["invest"], label=firm, linewidth=1.2)
ax.set_xlabel("year")
ax.set_ylabel("gross investment")
ax.set_title("Grunfeld investment by firm")
ax.legend(fontsize=6, ncol=2)
fig.tight_layout()
fig.savefig(os.path.join(out, "invest.png"), metadata={"Software": None})
print("saved invest.png with matplotlib", matplotlib.__version__)
