/* sandbox/supervise.h -- internals shared by the supervisor's files. */
#ifndef CORRAL_SANDBOX_SUPERVISE_H
#define CORRAL_SANDBOX_SUPERVISE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sandbox/cgroup.h"
#include "sandbox/contain.h"
#include "sandbox/sandbox.h"

/* Copies the regular files of the sandbox's /output tmpfs (dir fd `outfd`, already detached
 * from any process) into host directory `host_dir`, within the count and byte caps.  Symlinks,
 * FIFOs, sockets, devices and anything over a cap are listed with a reason, never followed.
 * Fills res->files / n_files / files_bytes / files_truncated.  Never fails the run: problems
 * become entries with a reason. */
void sbx_collect_output(int outfd, const char *host_dir, const struct sbx_limits *lim,
			struct sbx_result *res);

/* What the supervisor knows of a running sandbox (watch.c).  The fds are the supervisor's; the
 * loop closes out_r/err_r at their EOF and sets them to -1, the rest stay open for the caller. */
struct sbx_watch {
	int out_r, err_r, ctl, pidfd, cancel_fd;
	bool out_eof, err_eof, ctl_eof, exited, timed_out, cancelled;
	bool have_status, setup_failed;
	bool started; /* READY seen: the program has exec'd */
	int wstatus;
	int output_fd;
	struct sbx_msg setup_error;
	uint64_t t0;
	bool *sweep_pending; /* the stale-cgroup sweep waits for the program's start */
};

/* The event loop: returns when init has exited and both pipes are drained (or 2 s after the
 * exit, whichever is first).  Kills init and the cgroup on the deadline or on cancel. */
void sbx_watch_loop(struct sbx_watch *w, const struct sbx_config *cfg, pid_t pid,
		    struct sbx_cg *cg, struct sbx_result *res, uint64_t t0);
/* Exactly one status for the run, from what the loop saw and the cgroup's counters. */
void sbx_decide(struct sbx_result *res, const struct sbx_watch *w, const struct sbx_cg_stats *st,
		const struct sbx_limits *lim, int init_status);
/* res zeroed, output buffers capped at the limit (free with sbx_result_free). */
void sbx_result_init(struct sbx_result *res, const struct sbx_limits *lim);
/* res becomes sandbox_error at `step`, with e's errno and message. */
void sbx_setup_error(struct sbx_result *res, const char *step, const struct cr_err *e);

/* CLOCK_MONOTONIC in ms; sbx_phase: timings for `CORRAL_DEBUG=1 corral run` (NULL restarts). */
uint64_t sbx_now_ms(void);
void sbx_phase(const char *what);

#endif
