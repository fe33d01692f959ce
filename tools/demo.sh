#!/bin/sh
# `make demo`: the main job end to end on a real public dataset (data/grunfeld.csv).
# Until `corral analyze` lands this runs a real pandas + matplotlib script under `corral run`.
set -eu
build=${1:-build/release}
out=build/demo
mkdir -p "$out"
echo "corral demo: pandas + matplotlib on data/grunfeld.csv inside a fresh sandbox"
"$build/corral" run --ro "$PWD/data/grunfeld.csv:/data/grunfeld.csv" \
	--ro "$PWD/tests/data/compat_grunfeld.py:/job/analysis.py" \
	--output "$out" --memory 512M --timeout 60 -- /usr/bin/python3 /job/analysis.py
echo "corral demo: figure written to $out/invest.png"
