/* cli/main.c -- `corral SUBCOMMAND ...`: parse nothing but the subcommand, dispatch. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "sandbox/sandbox.h"

extern char **environ;

static const char USAGE[] =
	"usage: corral COMMAND [OPTIONS]\n"
	"\n"
	"  run      -- PROGRAM [ARGS]   run one program in a fresh, locked-down sandbox\n"
	"  exec     [-c CODE | FILE]    run Python in a session born warm (pandas etc. imported)\n"
	"  serve                        sandboxes over HTTP (native API + E2B-compatible)\n"
	"  analyze  DATA [-q QUESTION]  data in, a self-contained HTML report out\n"
	"  doctor                       check what this machine supports, and what to fix\n"
	"  engine                       the engine daemon (exec starts it on first use)\n"
	"\n"
	"`corral COMMAND --help` describes each command.\n";

struct subcommand {
	const char *name;
	int (*fn)(int argc, char **argv); /* NULL: lives in corral-ext.so */
};

static const struct subcommand COMMANDS[] = {
	{"run", cmd_run},
	{"doctor", cmd_doctor},
	{"exec", cmd_exec},
	{"engine", cmd_engine},
	{"serve", NULL},
	{"analyze", NULL},
};

int cli_usage_error(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "corral: %s\n", msg);
	return CLI_EXIT_USAGE;
}

const char *cli_self_dir(void)
{
	static char dir[PATH_MAX];
	if (dir[0])
		return dir;
	ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
	if (n <= 0) {
		strcpy(dir, ".");
		return dir;
	}
	dir[n] = '\0';
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir)
		*slash = '\0';
	return dir;
}

int cli_run_ext(const char *name, int argc, char **argv)
{
	char path[PATH_MAX + 64];
	const char *candidates[] = {"%s/corral-ext.so", "%s/../lib/corral/corral-ext.so"};
	void *h = NULL;
	char first_error[512] = "";
	for (size_t i = 0; i < sizeof candidates / sizeof *candidates && !h; i++) {
		snprintf(path, sizeof path, candidates[i], cli_self_dir());
		if (access(path, F_OK) < 0)
			continue;
		h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		if (!h && !first_error[0])
			snprintf(first_error, sizeof first_error, "%s", dlerror());
	}
	if (!h)
		return cli_usage_error("cannot load corral-ext.so next to %s: %s", cli_self_dir(),
				       first_error[0] ? first_error : "not found");
	char sym[64];
	snprintf(sym, sizeof sym, "corral_ext_%s", name);
	int (*fn)(int, char **);
	*(void **)&fn = dlsym(h, sym);
	if (!fn)
		return cli_usage_error("'%s' is not available in this build", name);
	return fn(argc, argv);
}

/* The argv strings and then the environment strings are one block on Linux's initial stack. */
static void note_wipe_region(int argc, char **argv)
{
	char *start = argv[0], *end = argv[argc - 1] + strlen(argv[argc - 1]) + 1;
	for (char **e = environ; e && *e; e++)
		if (*e >= end && *e <= end + 1)
			end = *e + strlen(*e) + 1;
	sbx_set_wipe_region(start, (size_t)(end - start));
}

int main(int argc, char **argv)
{
	note_wipe_region(argc, argv);
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(USAGE, argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : 0;
	}
	if (!strcmp(argv[1], "--version")) {
		puts("corral 0.1.0");
		return 0;
	}
	for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++) {
		if (strcmp(argv[1], COMMANDS[i].name))
			continue;
		if (COMMANDS[i].fn)
			return COMMANDS[i].fn(argc - 1, argv + 1);
		return cli_run_ext(COMMANDS[i].name, argc - 1, argv + 1);
	}
	return cli_usage_error("unknown command '%s' (see corral --help)", argv[1]);
}
