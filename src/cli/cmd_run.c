/* cli/cmd_run.c -- `corral run [OPTIONS] -- PROGRAM [ARGS...]`: parse, sbx_run, map the verdict. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/limits_opts.h"
#include "core/cleanup.h"
#include "core/json.h"
#include "core/parse.h"
#include "sandbox/result_json.h"
#include "sandbox/sandbox.h"

static const char USAGE[] =
	"usage: corral run [OPTIONS] -- PROGRAM [ARGS...]\n"
	"\n"
	"Runs PROGRAM in a fresh sandbox: new namespaces (mount, pid, net with only lo, ipc, uts,\n"
	"cgroup), a read-only system, no capabilities, a seccomp filter, resource limits, and an\n"
	"empty environment.  Every trace of it is gone afterwards.\n"
	"\n"
	"Filesystem:\n"
	"  --ro HOST[:DEST]      bind HOST read-only at DEST (default: the same path)\n"
	"  --rw HOST[:DEST]      bind HOST read-write at DEST\n"
	"  --output DIR          give the program a capped /output; its files are copied to DIR\n"
	"  --rootfs DIR          take /usr, /bin, /lib*, /etc files from an image directory\n"
	"  --workdir DIR         working directory inside (default /tmp)\n"
	"Environment:\n"
	"  --env K=V             add a variable (the base set is PATH, HOME=/tmp, LANG, MPLBACKEND)\n"
	"Limits (defaults in parentheses):\n";
static const char USAGE2[] =
	"Output:\n"
	"  --json                print one JSON result object on stdout (docs/SANDBOX.md)\n"
	"\n"
	"Exit status follows timeout(1): the program's code, 124 timeout, 128+N killed by signal N,\n"
	"125 when the sandbox could not be set up or the command line is wrong.\n";

enum { OPT_RO = 256, OPT_RW, OPT_OUTPUT, OPT_ROOTFS, OPT_WORKDIR, OPT_ENV, OPT_JSON,
       OPT_CGROUP_PARENT, OPT_HELP };

static const struct option OPTS[] = {
	{"ro", required_argument, NULL, OPT_RO},
	{"rw", required_argument, NULL, OPT_RW},
	{"output", required_argument, NULL, OPT_OUTPUT},
	{"rootfs", required_argument, NULL, OPT_ROOTFS},
	{"workdir", required_argument, NULL, OPT_WORKDIR},
	{"env", required_argument, NULL, OPT_ENV},
	{"json", no_argument, NULL, OPT_JSON},
	{"cgroup-parent", required_argument, NULL, OPT_CGROUP_PARENT},
	{"help", no_argument, NULL, OPT_HELP},
	LIMITS_OPTIONS,
	{0},
};

/* Strings split from --ro/--rw specs live until exit; the config borrows them. */
static char *keep[2 * SBX_MAX_MOUNTS];
static size_t n_keep;

static void free_kept(void)
{
	for (size_t i = 0; i < n_keep; i++)
		free(keep[i]);
	n_keep = 0;
}

static int add_mount(struct sbx_config *cfg, const char *spec, bool writable)
{
	struct cr_err err = {0};
	char *host, *dest;
	if (cr_parse_mount_spec(spec, &host, &dest, &err) < 0)
		return cli_usage_error("%s %s: %s", writable ? "--rw" : "--ro", spec, err.msg);
	if (n_keep + 2 > sizeof keep / sizeof *keep) {
		free(host);
		free(dest);
		return cli_usage_error("too many mounts (at most %d)", SBX_MAX_MOUNTS);
	}
	keep[n_keep++] = host;
	keep[n_keep++] = dest;
	if (sbx_config_add_mount(cfg, host, dest, writable, &err) < 0)
		return cli_usage_error("%s", err.msg);
	return 0;
}

int cmd_run(int argc, char **argv)
{
	struct sbx_config cfg;
	sbx_config_init(&cfg);
	bool json = false;
	int sfd = -1;
	struct cr_err err = {0};
	int c, r;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+", OPTS, NULL)) != -1) {
		switch (c) {
		case OPT_RO:
		case OPT_RW:
			if ((r = add_mount(&cfg, optarg, c == OPT_RW)) != 0)
				goto usage_fail;
			break;
		case OPT_OUTPUT: cfg.output_dir = optarg; break;
		case OPT_ROOTFS: cfg.rootfs = optarg; break;
		case OPT_WORKDIR: cfg.workdir = optarg; break;
		case OPT_CGROUP_PARENT: cfg.cgroup_parent = optarg; break;
		case OPT_ENV:
			if (sbx_config_add_env(&cfg, optarg, &err) < 0) {
				r = cli_usage_error("--env: %s", err.msg);
				goto usage_fail;
			}
			break;
		case OPT_JSON: json = true; break;
		case OPT_HELP:
			fputs(USAGE, stdout);
			limits_print_help(stdout);
			fputs(USAGE2, stdout);
			free_kept();
			return 0;
		case '?':
			r = cli_usage_error("run: unknown or incomplete option '%s' (see corral run --help)",
					    argv[optind - 1]);
			goto usage_fail;
		default:
			if ((r = limits_opt_parse(c, optarg, &cfg.limits)) != 0)
				goto usage_fail;
		}
	}
	if (optind >= argc) {
		r = cli_usage_error("run: no program given (usage: corral run [OPTIONS] -- PROGRAM)");
		goto usage_fail;
	}
	cfg.argv = argv + optind;
	cfg.passthrough = !json;

	/* SIGINT/SIGTERM/SIGHUP to corral: kill the sandbox, report, then die of that signal. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	cfg.cancel_fd = sfd;
	signal(SIGPIPE, SIG_IGN);

	cfg.sweep_stale = true; /* by sbx_run, while the program runs */
	struct sbx_result res;
	if (sbx_run(&cfg, &res, &err) < 0) {
		r = cli_usage_error("%s", err.msg);
		if (sfd >= 0)
			close(sfd);
		goto usage_fail;
	}
	free_kept();

	if (!res.cgroup_enforced)
		fprintf(stderr, "corral: warning: memory, pids and cpu limits are not enforced here: %s\n",
			res.cgroup_note);
	if (json) {
		json_t *j = sbx_result_to_json(&res);
		char *s = j ? cr_json_dump(j) : NULL;
		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(j);
		fflush(stdout);
	} else {
		if (res.status == SBX_SANDBOX_ERROR)
			fprintf(stderr, "corral: sandbox setup failed: %s\n", res.error_msg);
		if (res.stdout_truncated || res.stderr_truncated)
			fprintf(stderr, "corral: output truncated at %llu bytes per stream "
					"(%llu + %llu bytes dropped)\n",
				(unsigned long long)cfg.limits.output_limit_bytes,
				(unsigned long long)res.out.dropped,
				(unsigned long long)res.err.dropped);
		if (res.status == SBX_TIMEOUT)
			fprintf(stderr, "corral: killed: %s limit reached\n", res.limit);
		else if (res.status == SBX_MEMORY_LIMIT || res.status == SBX_PIDS_LIMIT)
			fprintf(stderr, "corral: %s limit reached\n", res.limit);
		if (res.files_truncated)
			fprintf(stderr, "corral: /output collection stopped at a cap\n");
	}
	int code = sbx_result_exit_code(&res);
	bool cancelled = res.limit && !strcmp(res.limit, "cancelled");
	sbx_result_free(&res);
	if (cancelled && sfd >= 0) {
		struct signalfd_siginfo si;
		if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
			signal((int)si.ssi_signo, SIG_DFL);
			sigprocmask(SIG_UNBLOCK, &sigs, NULL);
			raise((int)si.ssi_signo);
		}
	}
	if (sfd >= 0)
		close(sfd);
	return code;

usage_fail:
	free_kept();
	return r;
}
