#!/bin/bash
# tests/fuzz/smoke.sh -- every libFuzzer harness (tests/fuzz/fuzz_*.c), built with clang
# (-fsanitize=fuzzer,address,undefined) and run for a bounded time.  TAP on stdout:
#   ok N - fuzz_x: M runs, no crash        not ok N - fuzz_x: <why> (log in build/fuzz-clang/)
#
#   tests/fuzz/smoke.sh                    every harness, FUZZ_SECONDS (default 30) each
#   FUZZ_SECONDS=300 tests/fuzz/smoke.sh fuzz_api_json
#
# The project's sources (src/ minus the cli and zygote programs) are compiled once with clang
# into build/fuzz-clang/libcorral-fuzz.a (recompiled when a source is newer); each harness
# links against it, so the linker takes only the objects the harness needs.  New inputs go
# to a scratch corpus under build/fuzz-clang/, never into tests/fuzz/corpus/ (the seeds);
# a crash leaves its reproducer next to the log: replay it with build/<v>/fuzz/fuzz_x FILE.
set -uo pipefail
cd "$(dirname "$0")/../.."

SECONDS_EACH=${FUZZ_SECONDS:-30}
CLANG=${CLANG:-clang}
OUT=build/fuzz-clang
mkdir -p "$OUT/obj"

if ! command -v "$CLANG" >/dev/null; then
	echo "1..0 # SKIP clang is not installed (make deps)"
	exit 0
fi

PKGS="jansson libseccomp libcurl libmicrohttpd libcmark-gfm python3-embed"
CFLAGS="-std=gnu11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer -Isrc -Itests \
	-fsanitize=fuzzer-no-link,address,undefined $(pkg-config --cflags $PKGS 2>/dev/null)"
LIBS="$(pkg-config --libs jansson libseccomp libcurl libmicrohttpd libcmark-gfm 2>/dev/null) \
	-lcmark-gfm-extensions -lm -ldl -lpthread"

# -- the library (incremental) --------------------------------------------------------------
srcs=$(ls src/core/*.c src/sandbox/*.c src/engine/*.c src/backend/*.c src/server/*.c \
	src/agent/*.c src/report/*.c 2>/dev/null)
objs=()
fail_build=0
for s in $srcs; do
	o="$OUT/obj/${s//\//_}.o"
	objs+=("$o")
	# rebuild when the source or any header under src/ is newer than the object
	if [ ! -f "$o" ] || [ "$s" -nt "$o" ] || [ -n "$(find src -name '*.h' -newer "$o" -print -quit)" ]; then
		if ! $CLANG $CFLAGS -c "$s" -o "$o" 2>>"$OUT/build.log"; then
			echo "# clang could not compile $s (see $OUT/build.log)"
			fail_build=1
		fi
	fi
done
# the seccomp program is generated at build time (tools/seccomp_gen.c), as in the Makefile
mkdir -p "$OUT/gen"
o="$OUT/obj/gen_seccomp_program.o"
objs+=("$o")
if ! { $CLANG -std=gnu11 -D_GNU_SOURCE -O1 -Isrc tools/seccomp_gen.c src/sandbox/seccomp_compile.c \
		src/sandbox/seccomp_policy.c $(pkg-config --libs libseccomp) -o "$OUT/seccomp_gen" &&
	"$OUT/seccomp_gen" > "$OUT/gen/seccomp_program.c" &&
	$CLANG $CFLAGS -c "$OUT/gen/seccomp_program.c" -o "$o"; } 2>>"$OUT/build.log"; then
	echo "# could not generate the seccomp program (see $OUT/build.log)"
	fail_build=1
fi
if [ $fail_build -ne 0 ]; then
	echo "1..1"
	echo "not ok 1 - building the sources with clang failed (see $OUT/build.log)"
	exit 1
fi
rm -f "$OUT/libcorral-fuzz.a"
ar rcs "$OUT/libcorral-fuzz.a" "${objs[@]}"

# -- each harness ---------------------------------------------------------------------------
harnesses=()
for f in tests/fuzz/fuzz_*.c; do
	name=$(basename "$f" .c)
	[ $# -gt 0 ] && [[ " $* " != *" $name "* ]] && continue
	harnesses+=("$name")
done
echo "1..${#harnesses[@]}"
n=0 bad=0
for name in "${harnesses[@]}"; do
	n=$((n + 1))
	bin="$OUT/$name"
	log="$OUT/$name.log"
	if ! $CLANG $CFLAGS -fsanitize=fuzzer "tests/fuzz/$name.c" "$OUT/libcorral-fuzz.a" $LIBS \
		$(pkg-config --libs python3-embed 2>/dev/null) -o "$bin" 2>"$log"; then
		echo "not ok $n - $name: does not build with clang (see $log)"
		bad=$((bad + 1))
		continue
	fi
	work="$OUT/corpus-$name"
	mkdir -p "$work"
	seeds="tests/fuzz/corpus/$name"
	[ -d "$seeds" ] || seeds=""
	# libFuzzer writes crash-*/leak-*/timeout-* files into the working directory
	(cd "$OUT" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		timeout $((SECONDS_EACH + 120)) "./$name" -max_total_time="$SECONDS_EACH" \
		-rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="$name-" \
		"corpus-$name" ${seeds:+"../../$seeds"}) >"$log" 2>&1
	rc=$?
	runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1 | grep -o '[0-9]*')
	if [ $rc -eq 0 ] && [ -n "$runs" ]; then
		echo "ok $n - $name: $runs runs, no crash"
	else
		why=$(grep -m1 -oE 'ERROR: [A-Za-z]+: [^(]*|runtime error: .*|SUMMARY: .*' "$log" | head -c 160)
		echo "not ok $n - $name: exit $rc ${why:+($why)} (see $log)"
		bad=$((bad + 1))
	fi
done
[ $bad -eq 0 ]
