/* cli/limits_opts.h -- the resource-limit options shared by run, exec and serve.
 *
 *   static const struct option OPTS[] = { ..., LIMITS_OPTIONS, {0} };
 *   default: if ((r = limits_opt_parse(c, optarg, &cfg.limits)) != 0) return r;
 *   limits_print_help(stdout);      // prints each option with its default from the table
 */
#ifndef CORRAL_CLI_LIMITS_OPTS_H
#define CORRAL_CLI_LIMITS_OPTS_H

#include <getopt.h>
#include <stdio.h>

#include "sandbox/sandbox.h"

enum {
	OPT_MEMORY = 1000, OPT_PIDS, OPT_CPUS, OPT_CPU_TIME, OPT_FILE_SIZE, OPT_NOFILE,
	OPT_TIMEOUT, OPT_OUTPUT_LIMIT, OPT_TMP_SIZE, OPT_OUTPUT_SIZE, OPT_OUTPUT_FILES,
};

#define LIMITS_OPTIONS                                                                   \
	{"memory", required_argument, NULL, OPT_MEMORY},                                 \
	{"pids", required_argument, NULL, OPT_PIDS},                                     \
	{"cpus", required_argument, NULL, OPT_CPUS},                                     \
	{"cpu-time", required_argument, NULL, OPT_CPU_TIME},                             \
	{"file-size", required_argument, NULL, OPT_FILE_SIZE},                           \
	{"nofile", required_argument, NULL, OPT_NOFILE},                                 \
	{"timeout", required_argument, NULL, OPT_TIMEOUT},                               \
	{"output-limit", required_argument, NULL, OPT_OUTPUT_LIMIT},                     \
	{"tmp-size", required_argument, NULL, OPT_TMP_SIZE},                             \
	{"output-size", required_argument, NULL, OPT_OUTPUT_SIZE},                       \
	{"output-files", required_argument, NULL, OPT_OUTPUT_FILES}

#define LIMITS_HELP "" /* printed by limits_print_help: the defaults come from the table */

/* Handles one limits option; returns 0, or the usage exit code after printing the error,
 * or -1 when c is not a limits option. */
int limits_opt_parse(int c, const char *arg, struct sbx_limits *l);
void limits_print_help(FILE *f);

#endif
