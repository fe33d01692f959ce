#!/bin/sh
# `make bench`: every benchmark, side by side with the alternatives, in one run.
# Results: printed, and as JSON under build/bench/; figures are copied into docs/BENCHMARKS.md.
set -eu
build=${1:-build/release}
echo "## corral run: cold start of python3 -c 'print(1)' ($(date +%F), $(nproc) cores, $(uname -r))"
/usr/bin/python3 bench/bench_run.py --corral "$build/corral" --rounds "${BENCH_ROUNDS:-60}"
echo
sh bench/bench_serve.sh "$build"
echo
echo "## corral analyze: scripted scenario, 10 MB CSV, ${BENCH_MODEL_DELAY_MS:-1000} ms per model call ($(date +%F), $(nproc) cores, $(uname -r))"
/usr/bin/python3 bench/bench_analyze.py --corral "$build/corral" --delay-ms "${BENCH_MODEL_DELAY_MS:-1000}" \
	--rounds "${BENCH_ANALYZE_ROUNDS:-3}"
