#!/bin/sh
# `make demo`: the main job end to end -- the offline analyst reads a real public dataset
# (data/grunfeld.csv, public domain; see data/README.md) in a corral sandbox and writes one
# self-contained HTML report.  No model or account is needed.
set -eu
build=${1:-build/release}
out=build/demo
mkdir -p "$out"
echo "corral demo: analysing data/grunfeld.csv (Grunfeld investment data, 11 firms, 1935-1954)"
"$build/corral" analyze data/grunfeld.csv -q "Which firms are growing?" \
	-o "$out/report.html" --trace "$out/trace.jsonl"
echo "corral demo: open $out/report.html in a browser (one file, no external requests)"
