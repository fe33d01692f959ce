/* cli/cmd_engine.c -- `corral engine`: the engine daemon in the foreground.
 * `corral exec` starts one on first use; run it yourself to choose its settings. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/engine_daemon.h"
#include "core/parse.h"
#include "engine/engine.h"

static const char USAGE[] =
	"usage: corral engine [--socket PATH] [--pool N] [--max-sessions N] [--idle-exit SEC]\n"
	"\n"
	"Runs the engine daemon in the foreground: the warm Python zygote, a pool of contained\n"
	"sessions, and named sessions for `corral exec --session`.  It listens on a unix socket\n"
	"only its owner can reach (default: /run/corral/engine.sock as root).\n";

int cmd_engine(int argc, char **argv)
{
	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'}, {"pool", required_argument, NULL, 'p'},
		{"max-sessions", required_argument, NULL, 'm'},
		{"idle-exit", required_argument, NULL, 'i'}, {"help", no_argument, NULL, 'h'},
		{0},
	};
	struct eng_config cfg;
	eng_config_init(&cfg);
	char path[PATH_MAX];
	engine_socket_path(path, sizeof path);
	struct cr_err err = {0};
	uint64_t v;
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case 's': snprintf(path, sizeof path, "%s", optarg); break;
		case 'p':
			if (cr_parse_uint(optarg, 0, 256, &v, &err) < 0)
				return cli_usage_error("--pool: %s", err.msg);
			cfg.pool_size = (unsigned)v;
			break;
		case 'm':
			if (cr_parse_uint(optarg, 1, 4096, &v, &err) < 0)
				return cli_usage_error("--max-sessions: %s", err.msg);
			cfg.max_sessions = (unsigned)v;
			break;
		case 'i':
			if (cr_parse_uint(optarg, 1, 86400 * 30, &v, &err) < 0)
				return cli_usage_error("--idle-exit: %s", err.msg);
			cfg.exit_when_idle = true;
			cfg.idle_exit_s = (unsigned)v;
			break;
		case 'h': fputs(USAGE, stdout); return 0;
		default:
			return cli_usage_error("engine: unknown or incomplete option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("engine: unexpected argument '%s'", argv[optind]);
	char zyg[PATH_MAX + 32];
	snprintf(zyg, sizeof zyg, "%s/corral-zygote", cli_self_dir());
	if (access(zyg, X_OK) < 0)
		return cli_usage_error("cannot find corral-zygote next to the corral binary (%s)", zyg);
	cfg.zygote_path = zyg;
	int lfd = eng_listen_unix(path, &err);
	if (lfd < 0)
		return cli_usage_error("%s", err.msg);
	int r = eng_manager_run(&cfg, lfd, &err);
	unlink(path);
	if (r < 0) {
		fprintf(stderr, "corral: engine: %s\n", err.msg);
		return 1;
	}
	return 0;
}
