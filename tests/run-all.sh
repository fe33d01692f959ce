#!/bin/bash
# Runs every test layer and ends with one line: "N passed, M failed" (plus skips, with reasons).
#   tests/run-all.sh                 all layers, for build/debug (unit+integration) and
#                                    build/asan (unit + the sanitizer-relevant integration set)
#   tests/run-all.sh unit            only C unit tests (CORRAL_BUILD picks the build)
#   tests/run-all.sh integration     only integration tests
#   tests/run-all.sh integration test_run_basic.py   one file
# A skip must say why.  With CORRAL_MUST_WORK=1 (set by CI) a skip caused by a missing
# dependency or kernel feature is reported as a failure instead.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=/usr/bin/python3
layer=${1:-all}
only=${2:-}
pass=0 fail=0 skip=0
failed_names=() skipped_names=()
logdir=${CORRAL_TEST_LOGS:-build/test-logs}
mkdir -p "$logdir"

# Reads TAP on stdin, echoes it, and tallies. Lines: "ok N - name", "not ok N - name",
# "ok N - name # SKIP reason".
tally() {
	local prefix=$1 line
	while IFS= read -r line; do
		printf '%s\n' "$line"
		case "$line" in
		*"# SKIP"*|*"# skip"*)
			# cmocka prints a skip as "not ok N # SKIP"; we print "ok N - x # SKIP why"
			skip=$((skip + 1)); skipped_names+=("$prefix: ${line}") ;;
		"not ok"*) fail=$((fail + 1)); failed_names+=("$prefix: ${line#not ok }") ;;
		"ok"*) pass=$((pass + 1)) ;;
		esac
	done
}

run_unit() {
	local build=$1 t name
	for t in "$build"/tests/test_*; do
		[ -x "$t" ] || continue
		name="$(basename "$build")/$(basename "$t")"
		[ -n "$only" ] && [ "$(basename "$t")" != "$only" ] && continue
		echo "# unit $name"
		# cmocka's TAP output; a crash without TAP lines still counts as a failure.
		local out rc
		out=$(CMOCKA_MESSAGE_OUTPUT=TAP ASAN_OPTIONS=detect_leaks=1 timeout 300 "$t" 2>"$logdir/$(basename "$t").stderr")
		rc=$?
		tally "$name" < <(printf '%s\n' "$out" | grep -E '^(ok|not ok)')
		if [ $rc -ne 0 ] && ! printf '%s\n' "$out" | grep -q '^not ok'; then
			echo "not ok - $name exited with $rc (see $logdir/$(basename "$t").stderr)"
			[ $rc -eq 124 ] && echo "# timed out after 300 s, in the test after the last 'ok' above"
			tail -n 20 "$logdir/$(basename "$t").stderr" | sed 's/^/#   /'
			fail=$((fail + 1)); failed_names+=("$name: exit $rc")
		fi
	done
}

run_integration() {
	local build=$1 f
	for f in tests/integration/test_*.py; do
		[ -n "$only" ] && [ "$(basename "$f")" != "$only" ] && continue
		echo "# integration $(basename "$build") $(basename "$f")"
		tally "$(basename "$build")/$(basename "$f")" < <(CORRAL_BUILD=$build timeout 1800 "$PY" tests/integration/tap_runner.py "$f" 2>&1)
	done
}

# The fuzz harnesses built with gcc replay their saved corpus (TAP, one line per input).
run_fuzz_replay() {
	local build=$1 f name out rc
	for f in "$build"/fuzz/fuzz_*; do
		[ -x "$f" ] || continue
		name="$(basename "$build")/$(basename "$f")"
		echo "# fuzz replay $name"
		out=$(ASAN_OPTIONS=detect_leaks=1 timeout 300 "$f" 2>"$logdir/$(basename "$f").replay.stderr")
		rc=$?
		tally "$name" < <(printf '%s\n' "$out" | grep -E '^(ok|not ok)')
		if [ $rc -ne 0 ] && ! printf '%s\n' "$out" | grep -q '^not ok'; then
			echo "not ok - $name exited with $rc (see $logdir/$(basename "$f").replay.stderr)"
			fail=$((fail + 1)); failed_names+=("$name: exit $rc")
		fi
	done
}

# libFuzzer proper (clang), each harness for FUZZ_SECONDS: only in the `all` layer.
run_fuzz_smoke() {
	echo "# fuzz smoke (clang, ${FUZZ_SECONDS:-30}s each)"
	tally "fuzz-smoke" < <(tests/fuzz/smoke.sh 2>&1 | grep -E '^(ok|not ok)')
}

case "$layer" in
unit) run_unit "${CORRAL_BUILD:-build/debug}" ;;
integration) run_integration "${CORRAL_BUILD:-build/debug}" ;;
all)
	run_unit build/debug
	run_unit build/asan
	run_fuzz_replay build/debug
	run_fuzz_replay build/asan
	run_integration build/debug
	CORRAL_ASAN_SUBSET=1 run_integration build/asan
	run_fuzz_smoke
	;;
*) echo "usage: $0 [all|unit|integration] [file]" >&2; exit 2 ;;
esac

if [ ${#skipped_names[@]} -gt 0 ]; then
	echo "# skipped:"; printf '#   %s\n' "${skipped_names[@]}"
fi
if [ ${#failed_names[@]} -gt 0 ]; then
	echo "# failed:"; printf '#   %s\n' "${failed_names[@]}"
fi
total=$((pass + fail + skip))
if [ $total -eq 0 ]; then
	echo "0 passed, 1 failed (no tests ran)"
	exit 1
fi
if [ $skip -gt 0 ]; then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
[ $fail -eq 0 ]
