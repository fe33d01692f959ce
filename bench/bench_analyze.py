#!/usr/bin/env python3
"""`corral analyze` on a fixed scripted scenario: where the tokens, the bytes and the time go.

    bench/bench_analyze.py [--corral build/release/corral] [--delay-ms 1000] [--rounds 3]
                           [--provider anthropic|openai] [--size-mb 10] [--keep DIR]

The real `corral analyze` (real sandbox, real renderer, real HTTP on loopback) talks to the
scripted model server (tests/mock/model_server.py), which stands in for the model API: it
answers every request after --delay-ms (the model's thinking time) and counts the tokens
itself from each request ("usage": "auto": ~4 bytes a token; Anthropic cache reads and writes
from the request's own cache_control breakpoints, OpenAI cached tokens from the byte prefix
shared with an earlier request).  The data is a generated, deterministic CSV of --size-mb MB.

The scenario (stateful session, as a model following the system prompt would work): the
profile; then three run_python calls -- load the CSV and describe it; monthly revenue by
region and growth (2 figures, 1 table); top products and correlations (1 table) -- then the
report body.  Figures:

  model round trips        HTTP requests the server received (and retries among them)
  prompt tokens per step   input + cache_creation + cache_read of each request (Anthropic) or
                           prompt_tokens (OpenAI), as the server counted them
  cache-read share         cache_read / prompt tokens, summed over the run
  dataset bytes to model   every distinct text block the model was sent that was computed
                           from the data: the profile part of the first user message and every
                           tool result (each counted once, although the conversation is resent
                           on every call).  An upper bound: it includes summary statistics and
                           the notes corral adds.  Also: CSV data lines that appear verbatim
                           (the profile's sample rows, any df.head() printed as CSV) and the
                           distinct values of the CSV's id and free-text columns found in it.
  wall time                from the trace summary: model (client side of each call, retries
                           and waits included), sandbox (every execution, profile included),
                           split further into the cells' own run time as the session measured
                           it and what corral added around it.

Results: printed (a Markdown table) and as JSON in --json-out.
"""
import argparse
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SERVER = os.path.join(ROOT, "tests", "mock", "model_server.py")
PY = "/usr/bin/python3"
QUESTION = "Which regions and products drive revenue growth?"

STEP1 = """import pandas as pd
df = pd.read_csv('/data/sales.csv', parse_dates=['date'])
print(df.shape)
print(df.dtypes.to_string())
print(df.describe().round(2).to_string())
print(df.isna().sum().to_string())
"""
STEP2 = """import matplotlib.pyplot as plt
m = df.set_index('date').groupby('region')['revenue'].resample('M').sum().unstack(0)
ax = m.plot(figsize=(8, 4), title='Monthly revenue by region')
ax.set_ylabel('revenue')
plt.show()
by_region = df.groupby('region')['revenue'].agg(['sum', 'mean', 'count'])
display(by_region.sort_values('sum', ascending=False).round(2))
growth = (m.iloc[-12:].sum() / m.iloc[:12].sum() - 1).sort_values()
ax = growth.plot.barh(title='Revenue growth, last 12 months vs first 12')
ax.set_xlabel('growth')
plt.show()
print(growth.round(3).to_string())
"""
STEP3 = """top = df.groupby('product')['revenue'].sum().nlargest(10).to_frame()
display(top.round(2))
print(df[['units', 'unit_price', 'discount', 'revenue']].corr().round(3).to_string())
print(df.groupby('channel')['revenue'].sum().round(2).to_string())
"""
REPORT = """# Revenue growth by region and product

## Summary

Revenue grew in every region; the fastest growth is shown in Figure 2.

![Monthly revenue by region](figure:fig-1)

![Revenue by region](table:table-1)

## Growth

![Revenue growth, last 12 months against the first 12](figure:fig-2)

## Products

![Top products by revenue](table:table-2)

## Caveats

Synthetic data; discounts and units are only weakly related to revenue per row.
"""

REGIONS = ["North", "South", "East", "West", "Central", "Coastal", "Highlands", "Islands"]
CHANNELS = ["online", "retail", "wholesale", "partner"]
WORDS = ("delivered late damaged box repeat customer promo bundle returned partial refund "
         "priority shipping gift wrap invoice corrected backorder loyalty").split()


def make_csv(path, size):
    """A deterministic sales table of about `size` bytes; returns (rows, bytes)."""
    rng = random.Random(20261202)
    products = ["P-%03d %s" % (i, rng.choice(["widget", "gadget", "tool", "kit", "part"]))
                for i in range(60)]
    growth = {r: 1 + 0.05 * i for i, r in enumerate(REGIONS)}
    rows = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("date,region,product,channel,customer_id,units,unit_price,discount,revenue,note\n")
        written = f.tell()
        while written < size:
            day = rows // 70  # ~70 orders a day
            y, d = 2020 + day // 365, day % 365
            region = rng.choice(REGIONS)
            units = rng.randint(1, 40)
            price = round(rng.uniform(2, 250), 2)
            disc = rng.choice([0, 0, 0, 0.05, 0.1, 0.15])
            rev = round(units * price * (1 - disc) * growth[region] ** (day / 365), 2)
            note = " ".join(rng.sample(WORDS, rng.randint(0, 4)))
            line = "%04d-%02d-%02d,%s,%s,%s,C%06d,%d,%.2f,%.2f,%.2f,%s\n" % (
                y, 1 + d // 31 % 12, 1 + d % 28, region, rng.choice(products),
                rng.choice(CHANNELS), rng.randint(0, 999999), units, price, disc, rev, note)
            f.write(line)
            written += len(line)
            rows += 1
    return rows, written


def script(provider):
    kind = "anthropic" if provider == "anthropic" else "openai"

    def call(code, i):
        if kind == "anthropic":
            return {kind: {"tool_calls": [{"id": "toolu_%02d" % i, "name": "run_python",
                                           "input": {"code": code}}], "usage": "auto"}}
        return {kind: {"tool_calls": [{"id": "call_%d" % i, "name": "run_python",
                                       "arguments": {"code": code}}], "usage": "auto"}}
    return [call(STEP1, 1), call(STEP2, 2), call(STEP3, 3), {kind: {"text": REPORT,
                                                                   "usage": "auto"}}]


def texts_of(body, provider):
    """[(kind, text)] of every text block of a request: system, tool, user, assistant, result."""
    out = []
    if provider == "anthropic":
        sys_ = body.get("system")
        for b in (sys_ if isinstance(sys_, list) else [{"text": sys_ or ""}]):
            out.append(("system", b.get("text", "")))
        for t in body.get("tools", []):
            out.append(("tool", json.dumps(t, sort_keys=True)))
        for m in body["messages"]:
            content = m["content"]
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
            for b in blocks:
                if b.get("type") == "text":
                    out.append((m["role"], b["text"]))
                elif b.get("type") == "tool_result":
                    c = b.get("content")
                    out.append(("result", c if isinstance(c, str) else
                                "".join(x.get("text", "") for x in c)))
                elif b.get("type") == "tool_use":
                    out.append(("assistant", json.dumps(b.get("input"))))
    else:
        for t in body.get("tools", []):
            out.append(("tool", json.dumps(t, sort_keys=True)))
        for m in body["messages"]:
            role = {"tool": "result"}.get(m["role"], m["role"])
            out.append((role, m.get("content") or ""))
            for c in m.get("tool_calls") or []:
                out.append(("assistant", c["function"]["arguments"]))
    return out


def prompt_tokens(u, provider):
    if provider == "anthropic":
        return (u["input_tokens"] + u["cache_creation_input_tokens"] +
                u["cache_read_input_tokens"], u["cache_read_input_tokens"],
                u["cache_creation_input_tokens"])
    return u["prompt_tokens"], u["prompt_tokens_details"]["cached_tokens"], 0


def one_round(a, d, csv, rows, csv_bytes):
    log = os.path.join(d, "requests.jsonl")
    if os.path.exists(log):
        os.unlink(log)
    steps = os.path.join(d, "script.json")
    with open(steps, "w") as f:
        json.dump(script(a.provider), f)
    srv = subprocess.Popen([PY, SERVER, "--script", steps, "--log", log, "--delay-ms",
                            str(a.delay_ms)], stdout=subprocess.PIPE)
    port = int(srv.stdout.readline())
    base = "http://127.0.0.1:%d%s" % (port, "/v1" if a.provider == "openai" else "")
    model = "claude-sonnet-4-5" if a.provider == "anthropic" else "gpt-5-mini"
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
           ("ANTHROPIC_API_KEY" if a.provider == "anthropic" else "OPENAI_API_KEY"): "sk-bench"}
    trace = os.path.join(d, "trace.jsonl")
    out = os.path.join(d, "report.html")
    t0 = time.monotonic()
    p = subprocess.run([os.path.abspath(a.corral), "analyze", csv, "-q", QUESTION, "-o", out,
                        "--trace", trace, "--provider", a.provider, "--base-url", base,
                        "--model", model], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=900)
    process_s = time.monotonic() - t0
    srv.terminate()
    srv.wait(10)
    srv.stdout.close()
    if p.returncode != 0:
        raise SystemExit("corral analyze failed (%d):\n%s" % (p.returncode, p.stderr.decode()))
    with open(trace) as f:
        tr = [json.loads(l) for l in f]
    with open(log) as f:
        reqs = [json.loads(l) for l in f]
    with open(out, encoding="utf-8") as f:
        html = f.read()
    if 'id="figure-fig-2"' not in html or 'id="table-table-2"' not in html or \
            "missing figure" in html:
        raise SystemExit("the report lacks its figures: the scenario did not run as scripted")
    summary = tr[-1]
    execs = [t for t in tr if t["kind"] == "execution"]
    calls = [t for t in tr if t["kind"] == "model_call"]

    per_step, cached, written = [], 0, 0
    for r in reqs:
        total, read, wrote = prompt_tokens(r["usage"], a.provider)
        per_step.append(total)
        cached += read
        written += wrote

    # what the model was sent, each distinct block once
    seen, derived, own = set(), 0, 0
    for r in reqs:
        for kind, text in texts_of(r["body"], a.provider):
            if (kind, text) in seen:
                continue
            seen.add((kind, text))
            n = len(text.encode())
            if kind == "result":
                derived += n
            elif kind == "user" and "Profile of the data" in text:
                prof = text.split("Profile of the data", 1)[1]
                derived += len(prof.encode())
                own += n - len(prof.encode())
            else:
                own += n
    visible = "\n".join(t for _, t in seen)
    lines_seen = set(visible.splitlines())
    verbatim_rows, verbatim_bytes, ids, notes = 0, 0, set(), set()
    note_hits = 0
    with open(csv, encoding="utf-8") as f:
        next(f)
        for line in f:
            line = line.rstrip("\n")
            if line in lines_seen:
                verbatim_rows += 1
                verbatim_bytes += len(line.encode()) + 1
            cells = line.split(",")
            ids.add(cells[4])
            if len(cells[9]) >= 12:
                notes.add(cells[9])
    id_hits = len(ids & set(re.findall(r"C\d{6}", visible)))
    for v in notes:
        if v in visible:
            note_hits += 1
    cell_s = sum(e.get("cell_s", 0.0) for e in execs)
    return {
        "round_trips": len(reqs), "model_calls": len(calls),
        "retries": sum(c["attempts"] for c in calls) - len(calls),
        "prompt_tokens_per_step": per_step, "prompt_tokens": sum(per_step),
        "cache_read_tokens": cached, "cache_write_tokens": written,
        "cache_read_share": cached / sum(per_step) if per_step else 0.0,
        "request_bytes": [r["bytes"] for r in reqs],
        "dataset_bytes_to_model": derived, "own_text_bytes": own,
        "trace_bytes_to_model": summary["bytes_to_model"],
        "verbatim_rows": verbatim_rows, "verbatim_row_bytes": verbatim_bytes,
        "distinct_ids_seen": id_hits, "distinct_ids": len(ids),
        "distinct_notes_seen": note_hits, "distinct_notes": len(notes),
        "wall_s": summary["wall_s"], "model_s": summary["model_s"],
        "sandbox_s": summary["sandbox_s"], "cell_s": cell_s,
        "process_s": process_s, "executions": len(execs),
        "exec_s": [round(e["duration_s"], 3) for e in execs],
        "tokens_in_trace": summary["tokens_in"], "tokens_cached_trace": summary["tokens_cached"],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corral", default="build/release/corral")
    ap.add_argument("--delay-ms", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--provider", choices=("anthropic", "openai"), default="anthropic")
    ap.add_argument("--size-mb", type=float, default=10)
    ap.add_argument("--json-out", default="build/bench/analyze.json")
    ap.add_argument("--keep", help="keep the data, trace, log and report in this directory")
    a = ap.parse_args()
    d = a.keep or tempfile.mkdtemp(prefix="corral-bench-analyze-")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    try:
        csv = os.path.join(d, "sales.csv")
        rows, csv_bytes = make_csv(csv, int(a.size_mb * 1e6))
        runs = [one_round(a, d, csv, rows, csv_bytes) for _ in range(a.rounds)]
    finally:
        if not a.keep:
            shutil.rmtree(d, ignore_errors=True)
    first = runs[0]
    for r in runs[1:]:  # the scenario is deterministic: the same tokens every round
        if r["prompt_tokens_per_step"] != first["prompt_tokens_per_step"]:
            print("note: prompt tokens differ between rounds: %r vs %r" % (
                first["prompt_tokens_per_step"], r["prompt_tokens_per_step"]), file=sys.stderr)
    # times: the round with the median wall time, so that its parts add up
    mid = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
    med = {k: mid[k] for k in ("wall_s", "model_s", "sandbox_s", "cell_s", "process_s")}
    med["wall_s_all"] = [round(r["wall_s"], 3) for r in runs]
    res = {"date": time.strftime("%Y-%m-%d"), "kernel": platform.release(),
           "cpus": os.cpu_count(), "provider": a.provider, "delay_ms": a.delay_ms,
           "rounds": a.rounds, "csv_bytes": csv_bytes, "csv_rows": rows, "first_round": first,
           "median": med, "rounds_detail": runs}
    os.makedirs(os.path.dirname(a.json_out) or ".", exist_ok=True)
    with open(a.json_out, "w") as f:
        json.dump(res, f, indent=1)

    wall = med["wall_s"]
    other = wall - med["model_s"] - med["sandbox_s"]
    over = med["sandbox_s"] - med["cell_s"]
    pct = lambda x, tot: 100.0 * x / tot if tot else 0.0
    print("scenario: profile + 3 run_python calls + report, %s (usage counted by the scripted "
          "server), %d ms per model call, %s-byte CSV (%s rows); times: the median of %d rounds"
          % (a.provider, a.delay_ms, format(csv_bytes, ","), format(rows, ","), a.rounds))
    print("| figure | value |\n|---|---|")
    print("| model round trips | %d (%d model calls, %d retries) |"
          % (first["round_trips"], first["model_calls"], first["retries"]))
    print("| prompt tokens per step | %s |" % " / ".join(format(x, ",")
                                                        for x in first["prompt_tokens_per_step"]))
    print("| cache-read share of prompt tokens | %.1f %% (read %s of %s; written %s) |"
          % (100 * first["cache_read_share"], format(first["cache_read_tokens"], ","),
             format(first["prompt_tokens"], ","), format(first["cache_write_tokens"], ",")))
    print("| dataset-derived bytes sent to the model | %s B = %.3f %% of the CSV (target <= 1 %%) |"
          % (format(first["dataset_bytes_to_model"], ","),
             pct(first["dataset_bytes_to_model"], csv_bytes)))
    print("| CSV rows sent verbatim | %d of %s (%s B = %.4f %%) |"
          % (first["verbatim_rows"], format(rows, ","), format(first["verbatim_row_bytes"], ","),
             pct(first["verbatim_row_bytes"], csv_bytes)))
    print("| distinct ids / notes seen by the model | %d of %s / %d of %s |"
          % (first["distinct_ids_seen"], format(first["distinct_ids"], ","),
             first["distinct_notes_seen"], format(first["distinct_notes"], ",")))
    print("| wall time (trace) | %.2f s: model %.2f s (%.1f %%), sandbox %.2f s (%.1f %%), "
          "other %.2f s |" % (wall, med["model_s"], pct(med["model_s"], wall), med["sandbox_s"],
                              pct(med["sandbox_s"], wall), other))
    print("| sandbox: cells' own time + corral's overhead | %.3f s + %.3f s (overhead %.2f %% "
          "of the total; target <= 2 %%) |" % (med["cell_s"], over, pct(over, wall)))
    print("| model: server delay + client overhead | %.2f s + %.3f s |"
          % (first["round_trips"] * a.delay_ms / 1000.0,
             med["model_s"] - first["round_trips"] * a.delay_ms / 1000.0))
    print("| whole process (fork, engine connect, render) | %.2f s |" % med["process_s"])


if __name__ == "__main__":
    main()
