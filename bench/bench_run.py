#!/usr/bin/env python3
"""Cold start of one program: bare python3, the same under `corral run`, and under bubblewrap
with a comparable profile.  Interleaved (one of each per round, the order rotating from round
to round), >= 30 rounds, median and p90.

    bench/bench_run.py [--rounds N] [--corral build/release/corral]

bwrap profile: unshare everything, read-only /usr (+ /bin /lib* links), fresh /proc and /dev,
tmpfs /tmp, no capabilities, die with parent.  It sets no resource limits; corral's run sets its
full default profile (cgroup memory/pids, rlimits, seccomp, /etc, capped tmpfs...).
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import time

PY = "/usr/bin/python3"
CODE = "print(1)"


def spawn_wait(argv):
    devnull = os.open(os.devnull, os.O_WRONLY)
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, {"PATH": "/usr/bin:/bin"},
                         file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1),
                                       (os.POSIX_SPAWN_DUP2, devnull, 2)])
    _, status = os.waitpid(pid, 0)
    dt = (time.perf_counter_ns() - t0) / 1e6
    os.close(devnull)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("command failed: %r" % argv)
    return dt


def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--corral", default="build/release/corral")
    ap.add_argument("--json-out", default="build/bench/run.json")
    ap.add_argument("--code", default=CODE,
                    help="the Python program (default print(1); the targets are for that)")
    a = ap.parse_args()
    code = a.code
    bwrap = shutil.which("bwrap")
    cmds = {
        "bare": [PY, "-c", code],
        "corral": [os.path.abspath(a.corral), "run", "--", PY, "-c", code],
    }
    if bwrap:
        cmds["bwrap"] = [bwrap, "--unshare-all", "--ro-bind", "/usr", "/usr",
                         "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
                         "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/sbin", "/sbin",
                         "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
                         "--cap-drop", "ALL", "--die-with-parent", "--new-session",
                         PY, "-c", code]
        if code != CODE:  # what the data stack needs of /etc (corral's /etc has it too):
            # numpy's BLAS through the alternatives and ld.so.cache, Debian's matplotlibrc,
            # fontconfig's configuration, and a HOME to write matplotlib's cache in
            cmds["bwrap"][5:5] = [x for p in ("/etc/alternatives", "/etc/ld.so.cache",
                                              "/etc/matplotlibrc", "/etc/fonts")
                                  for x in ("--ro-bind", p, p)] + ["--setenv", "HOME", "/tmp"]
    for argv in cmds.values():  # warm the page cache, fail early
        for _ in range(3):
            spawn_wait(argv)
    times = {k: [] for k in cmds}
    order = list(cmds)
    for r in range(a.rounds):
        # Rotate who goes first: each run leaves work to the kernel after it exits (a network
        # namespace to dismantle, a memory cgroup to take offline) that lands on whoever runs
        # next; a fixed order would always hand the same command the same neighbour.
        k0 = r % len(order)
        for k in order[k0:] + order[:k0]:
            times[k].append(spawn_wait(cmds[k]))
    res = {"rounds": a.rounds, "date": time.strftime("%Y-%m-%d"), "kernel": platform.release(),
           "cpus": os.cpu_count(), "results": {}}
    for k, xs in times.items():
        res["results"][k] = {"median_ms": round(statistics.median(xs), 2),
                             "p90_ms": round(pct(xs, 0.9), 2)}
    b = res["results"]["bare"]["median_ms"]
    c = res["results"]["corral"]["median_ms"]
    res["corral_over_bare"] = round(c / b, 3)
    if "bwrap" in res["results"]:
        res["corral_over_bwrap"] = round(c / res["results"]["bwrap"]["median_ms"], 3)
    # The same ratios taken within each round (three runs a few ms apart), then the median:
    # on a shared machine whose background load drifts over a run, a second opinion that
    # compares each corral run with its neighbours rather than with the whole series.
    res["paired"] = {"corral_over_bare": round(statistics.median(
        x / y for x, y in zip(times["corral"], times["bare"])), 3)}
    if "bwrap" in times:
        res["paired"]["corral_over_bwrap"] = round(statistics.median(
            x / y for x, y in zip(times["corral"], times["bwrap"])), 3)
    os.makedirs(os.path.dirname(a.json_out), exist_ok=True)
    with open(a.json_out, "w") as f:
        json.dump(res, f, indent=1)
    print("| command | median ms | p90 ms |\n|---|---|---|")
    for k, v in res["results"].items():
        print("| %s | %.2f | %.2f |" % (" ".join(os.path.basename(x) if i == 0 else x
                                               for i, x in enumerate(cmds[k][:3])) + " ...",
                                      v["median_ms"], v["p90_ms"]))
    target = code == CODE
    print("\ncorral/bare = %.3f%s   [paired per round: %.3f]"
          % (res["corral_over_bare"], " (target <= 1.15)" if target else "",
             res["paired"]["corral_over_bare"]))
    if "corral_over_bwrap" in res:
        print("corral/bwrap = %.3f%s   [paired per round: %.3f]"
              % (res["corral_over_bwrap"], " (target <= 1.0)" if target else "",
                 res["paired"]["corral_over_bwrap"]))


if __name__ == "__main__":
    main()
