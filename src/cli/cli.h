/* cli/cli.h -- what the subcommand files share.
 *
 * Each subcommand is `int cmd_NAME(int argc, char **argv)` (argv[0] is the subcommand name) and
 * returns the process exit code.  Bad input: one line on stderr via cli_usage_error, exit 125
 * (the sandbox-error code of timeout(1) conventions), nothing created on the host.
 */
#ifndef CORRAL_CLI_CLI_H
#define CORRAL_CLI_CLI_H

#define CLI_EXIT_USAGE 125

int cmd_run(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_engine(int argc, char **argv);

/* Prints "corral: <msg>" (one line) and returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Directory holding the running corral binary (for corral-zygote, corral-ext.so). */
const char *cli_self_dir(void);
/* Runs a subcommand that lives in corral-ext.so ("corral_ext_<name>"). */
int cli_run_ext(const char *name, int argc, char **argv);

#endif
