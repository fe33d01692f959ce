#!/bin/sh
# bench/bench_serve.sh [BUILD] -- `corral serve` under load on loopback (docs/BENCHMARKS.md).
#   1. execute of print(1) on warm sandboxes: wrk, 16 connections (32 sandboxes), NDJSON
#      streaming and aggregated (Accept: application/json); requests/s and p99 from wrk.
#   2. full create + execute + delete cycles per second (bench_serve.py, several threads).
#   3. the HTTP front's peak RSS (VmHWM) over all of it -- sandboxes not counted.
# BENCH_SECONDS (default 10) per measurement.  Needs root and wrk (make deps).
set -eu
build=${1:-build/release}
secs=${BENCH_SECONDS:-10}
conns=${BENCH_CONNECTIONS:-16}
# wrk threads: one a core (BENCH_WRK_THREADS).  Each sends a request only to a sandbox of its
# own that is free (bench_serve.lua); it owns two per connection, because wrk may ask for a
# request it then drops (a reconnect), and that sandbox is not handed back.
wrk_threads=${BENCH_WRK_THREADS:-$(nproc)}
sandboxes=$((2 * conns))
here=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
command -v wrk >/dev/null || { echo "bench_serve: wrk is not installed (make deps)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/corral-bench-serve.XXXXXX)
chmod 711 "$tmp" # the front runs as nobody and must reach the engine socket below
key="e2b_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n' "$key" > "$tmp/keys"
chmod 600 "$tmp/keys"
mkdir -m 711 "$tmp/run"
port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
"$build/corral" serve --listen "127.0.0.1:$port" --api-keys "$tmp/keys" --runtime-dir "$tmp/run" \
	--warm "${BENCH_WARM:-$sandboxes}" --max-sandboxes 256 2>"$tmp/serve.log" &
server=$!
cleanup() {
	kill -TERM "$server" 2>/dev/null || true
	wait "$server" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
for _ in $(seq 1 300); do
	curl -sf "$url/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done
front=$(grep -o 'front pid [0-9]*' "$tmp/serve.log" | grep -o '[0-9]*$')
# wait for the warm pool to fill
for _ in $(seq 1 300); do
	warm=$(curl -sf "$url/healthz" | $PY -c 'import json,sys; print(json.load(sys.stdin)["warm"])')
	[ "$warm" -ge "${BENCH_WARM:-$sandboxes}" ] && break
	sleep 0.1
done

echo "## corral serve ($(date +%F), $(nproc) cores, $(uname -r), load before: $(cut -d' ' -f1-3 /proc/loadavg))"
ids=$($PY "$here/bench_serve.py" sandboxes --url "$url" --key "$key" -n "$sandboxes")
for mode in ndjson json; do
	accept=""
	[ "$mode" = json ] && accept="application/json"
	# a short warm-up, then the measured run
	IDS="$ids" KEY="$key" THREADS="$wrk_threads" ACCEPT="$accept" wrk -t"$wrk_threads" -c"$conns" -d2s -s "$here/bench_serve.lua" \
		"$url" >/dev/null 2>&1 || true
	sleep 1 # cells the warm-up left running when it stopped end before the measured run
	line=$(IDS="$ids" KEY="$key" THREADS="$wrk_threads" ACCEPT="$accept" wrk -t"$wrk_threads" -c"$conns" -d"${secs}s" --latency \
		-s "$here/bench_serve.lua" "$url" | grep '^BENCH')
	echo "execute print(1), warm, $conns connections, $mode: ${line#BENCH }"
done
line=$($PY "$here/bench_serve.py" cycles --url "$url" --key "$key" \
	--threads "${BENCH_CYCLE_THREADS:-8}" --seconds "$secs" | grep '^BENCH')
echo "create + execute + delete cycles, ${BENCH_CYCLE_THREADS:-8} threads: ${line#BENCH }"
# The same operations as an E2B user's code sees them: the official SDK against this server.
if command -v node >/dev/null && [ -d "$here/../tests/node/node_modules/@e2b/code-interpreter" ]; then
	echo "E2B SDK (@e2b/code-interpreter), sequential, ${BENCH_E2B_ROUNDS:-30} rounds:"
	E2B_API_KEY="$key" E2B_API_URL="$url" E2B_SANDBOX_URL="$url" \
		node "$here/bench_e2b.mjs" "${BENCH_E2B_ROUNDS:-30}" | sed -n 's/^BENCH /  /p'
else
	echo "E2B SDK: not measured (node or tests/node modules missing: make deps)" >&2
	exit 1
fi
echo "HTTP front (pid $front): $(grep -E 'VmHWM|VmRSS' /proc/"$front"/status | tr -s ' \t' ' ' | tr '\n' ' ')"
echo "request log: $(wc -l < "$tmp/serve.log") lines ($(grep -c '"status":[45]' "$tmp/serve.log" || true) 4xx/5xx)"
