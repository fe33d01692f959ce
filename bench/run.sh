#!/bin/sh
# `make bench`: every benchmark, side by side with the alternatives, in one run.
# Results: printed, and as JSON under build/bench/; figures are copied into docs/BENCHMARKS.md.
set -eu
build=${1:-build/release}
head() { echo "## $1 ($(date +%F), $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg))"; }

head "corral run: cold start of python3 -c 'print(1)'"
/usr/bin/python3 bench/bench_run.py --corral "$build/corral" --rounds "${BENCH_ROUNDS:-60}"
echo
head "cold path: python3 -c 'import pandas, numpy, matplotlib.pyplot'"
/usr/bin/python3 bench/bench_run.py --corral "$build/corral" --rounds "${BENCH_COLD_ROUNDS:-30}" \
	--code 'import pandas, numpy, matplotlib.pyplot' --json-out build/bench/run_cold.json
echo

# The engine, through a private `corral engine` (its socket in a temp dir).
head "engine: sessions born warm"
tmp=$(mktemp -d /tmp/corral-bench-engine.XXXXXX)
"$build/corral" engine --socket "$tmp/engine.sock" --pool "${BENCH_POOL:-4}" --max-sessions 128 \
	2>"$tmp/engine.log" &
engine=$!
trap 'kill -TERM $engine 2>/dev/null || true; wait $engine 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 1 300); do [ -S "$tmp/engine.sock" ] && break; sleep 0.1; done
mkdir -p build/bench
"$build/bench/bench_engine" "$tmp/engine.sock" "$engine" --rounds "${BENCH_ENGINE_ROUNDS:-200}" \
	--json build/bench/engine.json
kill -TERM $engine; wait $engine 2>/dev/null || true
trap - EXIT
rm -rf "$tmp"
echo

sh bench/bench_serve.sh "$build"
echo
head "corral analyze: scripted scenario, 10 MB CSV, ${BENCH_MODEL_DELAY_MS:-1000} ms per model call"
/usr/bin/python3 bench/bench_analyze.py --corral "$build/corral" --delay-ms "${BENCH_MODEL_DELAY_MS:-1000}" \
	--rounds "${BENCH_ANALYZE_ROUNDS:-3}"
