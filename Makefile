# corral -- one non-recursive Makefile.  Variants build into build/$(VARIANT)/.
#   make                  debug build (-O0 -g)
#   make VARIANT=release  -O2 + hardening (what bench/ measures)
#   make VARIANT=asan     AddressSanitizer + UndefinedBehaviorSanitizer
#   make deps             install missing Debian packages (idempotent, quiet when all present)
#   make check            deps + build + every test layer; ends with "N passed, M failed"
#   make demo             the main job, end to end
#
# Layout of the link: the `corral` binary carries only the light layers (core, sandbox, engine)
# and their small libraries (libseccomp, jansson), because `corral run` start-up time is a
# product feature and libcurl alone costs ~7 ms of dynamic loading here (docs/BENCHMARKS.md).
# The heavy front-ends (serve, analyze: libmicrohttpd, libcurl, cmark-gfm) live in
# corral-ext.so next to the binary and are dlopen()ed only by the subcommands that need them.

VARIANT ?= debug
BUILD   := build/$(VARIANT)
CC      ?= gcc

PKGS_LIGHT := libseccomp jansson
PKGS_EXT   := libcurl libmicrohttpd libcmark-gfm
PY_EMBED   := python3-embed

CSTD  := -std=gnu11 -D_GNU_SOURCE
WARN  := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
         -Wformat-security -Wnull-dereference -Wimplicit-fallthrough -Wvla -Wpointer-arith \
         -Wundef -Wwrite-strings -Wno-missing-field-initializers -Wno-format-nonliteral -Wno-format-truncation
ifeq ($(WERROR),1)
WARN  += -Werror
endif

ifeq ($(VARIANT),release)
OPT   := -O2 -g -D_FORTIFY_SOURCE=3 -fstack-protector-strong -fstack-clash-protection \
         -fcf-protection
LDOPT := -Wl,-z,relro,-z,now,-z,noexecstack
else ifeq ($(VARIANT),asan)
OPT   := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDOPT := -fsanitize=address,undefined
else
OPT   := -O0 -g3
LDOPT :=
endif

CFLAGS_ALL = $(CSTD) $(WARN) $(OPT) -fPIC -Isrc -MMD -MP $(BLOB_DEFS) $(CFLAGS)
LIGHT_CFLAGS := $(shell pkg-config --cflags $(PKGS_LIGHT) 2>/dev/null)
LIGHT_LIBS   := $(shell pkg-config --libs $(PKGS_LIGHT) 2>/dev/null) -lm
# corral itself: libseccomp linked in (only `corral doctor` calls it) and no libm: two shared
# objects less to load at every `corral run` (corral-ext.so brings its own libm)
BIN_LIBS     := -Wl,-Bstatic -lseccomp -Wl,-Bdynamic $(filter-out -lseccomp -lm,$(LIGHT_LIBS))
EXT_CFLAGS   := $(shell pkg-config --cflags $(PKGS_EXT) 2>/dev/null)
EXT_LIBS     := $(shell pkg-config --libs $(PKGS_EXT) 2>/dev/null) -lcmark-gfm-extensions -lm
PY_CFLAGS    := $(shell pkg-config --cflags $(PY_EMBED) 2>/dev/null)
PY_LIBS      := $(shell pkg-config --libs $(PY_EMBED) 2>/dev/null)

LIGHT_DIRS := core sandbox engine
EXT_DIRS   := backend server agent report

LIGHT_SRCS := $(foreach d,$(LIGHT_DIRS),$(wildcard src/$(d)/*.c))
EXT_SRCS   := $(foreach d,$(EXT_DIRS),$(wildcard src/$(d)/*.c)) $(wildcard src/cli/ext/*.c)
CLI_SRCS   := $(wildcard src/cli/*.c)
ZYG_SRCS   := $(wildcard src/zygote/*.c)

# The seccomp program, compiled from the policy table at build time (tools/seccomp_gen.c)
SECCOMP_GEN  := $(BUILD)/tools/seccomp_gen
SECCOMP_PROG := $(BUILD)/gen/seccomp_program.c
LIGHT_OBJS := $(LIGHT_SRCS:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/seccomp_program.o
EXT_OBJS   := $(EXT_SRCS:%.c=$(BUILD)/obj/%.o)
CLI_OBJS   := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
ZYG_OBJS   := $(ZYG_SRCS:%.c=$(BUILD)/obj/%.o)

UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
PROBE_SRCS := $(wildcard tests/probes/*.c)
PROBE_BINS := $(PROBE_SRCS:tests/probes/%.c=$(BUILD)/probes/%)
FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
FUZZ_REPLAY:= $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)

LIB_LIGHT := $(BUILD)/libcorral.a
LIB_EXT   := $(BUILD)/libcorral-ext.a
BIN       := $(BUILD)/corral
EXT_SO    := $(BUILD)/corral-ext.so
ZYGOTE    := $(BUILD)/corral-zygote
INIT_BIN  := $(BUILD)/corral-init
INIT_SRCS := $(wildcard src/init/*.c) src/sandbox/init.c

.PHONY: all deps check unit itest demo clean bench fuzz-smoke lint install

all: $(BIN) $(EXT_SO) $(if $(ZYG_SRCS),$(ZYGOTE)) $(UNIT_BINS) $(PROBE_BINS) $(FUZZ_REPLAY) \
	$(BENCH_BINS)

deps:
	@tools/deps.sh

$(BUILD)/obj/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LIGHT_CFLAGS) $(EXT_CFLAGS) $(PY_CFLAGS) -c $< -o $@

$(BUILD)/obj/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LIGHT_CFLAGS) $(EXT_CFLAGS) -Itests -c $< -o $@

$(SECCOMP_GEN): tools/seccomp_gen.c $(BUILD)/obj/src/sandbox/seccomp_compile.o \
		$(BUILD)/obj/src/sandbox/seccomp_policy.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LIGHT_CFLAGS) $(LDOPT) -o $@ $^ $(LIGHT_LIBS)

$(SECCOMP_PROG): $(SECCOMP_GEN)
	@mkdir -p $(dir $@)
	$(SECCOMP_GEN) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/seccomp_program.o: $(SECCOMP_PROG)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(LIB_LIGHT): $(LIGHT_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIB_EXT): $(EXT_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN): $(CLI_OBJS) $(LIB_LIGHT)
	$(CC) $(LDOPT) -rdynamic -o $@ $(CLI_OBJS) -Wl,--whole-archive $(LIB_LIGHT) \
		-Wl,--no-whole-archive $(BIN_LIBS) -ldl

# The extension resolves core/sandbox/engine symbols from the corral binary (-rdynamic), so
# there is one copy of that code and of its globals at run time.
$(EXT_SO): $(LIB_EXT)
	$(CC) $(LDOPT) -shared -o $@ -Wl,--whole-archive $(LIB_EXT) -Wl,--no-whole-archive \
		$(EXT_LIBS)

# Python sources .incbin'ed into the binaries.
$(BUILD)/obj/src/agent/py_blob.o: $(wildcard src/agent/py/*.py)
# The runner's source and the corral-init program are .incbin'ed into the zygote.
$(BUILD)/obj/src/zygote/runner_blob.o: src/engine/runner.py
$(BUILD)/obj/src/zygote/init_blob.o: $(INIT_BIN)
$(BUILD)/obj/src/zygote/init_blob.o: BLOB_DEFS := -DCORRAL_INIT_BIN='"$(INIT_BIN)"'

# corral-init: PID 1 of an engine session once it is contained (src/init/main.c).  Static,
# stripped, no sanitizers: it runs in any image and holds next to nothing.
$(INIT_BIN): $(INIT_SRCS) $(wildcard src/sandbox/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -O2 -Wall -Wextra -Isrc -static -s -o $@ $(INIT_SRCS)

$(ZYGOTE): $(ZYG_OBJS) $(LIB_LIGHT)
	$(CC) $(LDOPT) -o $@ $(ZYG_OBJS) $(LIB_LIGHT) $(LIGHT_LIBS) $(PY_LIBS)

$(BUILD)/tests/test_%: $(BUILD)/obj/tests/unit/test_%.o $(LIB_EXT) $(LIB_LIGHT)
	@mkdir -p $(dir $@)
	$(CC) $(LDOPT) -o $@ $< $(LIB_EXT) $(LIB_LIGHT) $(EXT_LIBS) $(LIGHT_LIBS) -lcmocka -ldl

# Probes run inside sandboxes and rootfs images: static, no sanitizers.
$(BUILD)/probes/%: tests/probes/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -O1 -g -Wall -static -o $@ $<

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB_LIGHT)
	@mkdir -p $(dir $@)
	$(CC) $(LDOPT) -o $@ $^ $(LIGHT_LIBS) -lpthread

$(BUILD)/obj/bench/%.o: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LIGHT_CFLAGS) -c $< -o $@

# Fuzz harnesses built with gcc: their main() replays the corpus (tests/fuzz/corpus/<name>/).
$(BUILD)/fuzz/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(BUILD)/obj/tests/fuzz/replay_main.o \
		$(LIB_EXT) $(LIB_LIGHT)
	@mkdir -p $(dir $@)
	$(CC) $(LDOPT) -o $@ $^ $(EXT_LIBS) $(LIGHT_LIBS) -ldl

# CORRAL_MUST_WORK=1 by default: on a machine `make deps` prepared, a skip caused by a missing
# facility is a failure.  `CORRAL_MUST_WORK=0 make check` turns those back into skips.
check: deps
	@$(MAKE) --no-print-directory -j2 all VARIANT=debug WERROR=1
	@$(MAKE) --no-print-directory -j2 all VARIANT=asan WERROR=1
	@CORRAL_MUST_WORK=$${CORRAL_MUST_WORK:-1} tests/run-all.sh

unit: all
	@CORRAL_BUILD=$(BUILD) tests/run-all.sh unit

itest: all
	@CORRAL_BUILD=$(BUILD) tests/run-all.sh integration

demo: deps
	@$(MAKE) --no-print-directory all VARIANT=release
	@tools/demo.sh build/release

bench: deps
	@$(MAKE) --no-print-directory all VARIANT=release
	@bench/run.sh build/release

fuzz-smoke:
	@tests/fuzz/smoke.sh

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
