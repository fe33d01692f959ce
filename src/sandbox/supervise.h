/* sandbox/supervise.h -- internals shared by the supervisor's files. */
#ifndef CORRAL_SANDBOX_SUPERVISE_H
#define CORRAL_SANDBOX_SUPERVISE_H

#include "sandbox/sandbox.h"

/* Copies the regular files of the sandbox's /output tmpfs (dir fd `outfd`, already detached
 * from any process) into host directory `host_dir`, within the count and byte caps.  Symlinks,
 * FIFOs, sockets, devices and anything over a cap are listed with a reason, never followed.
 * Fills res->files / n_files / files_bytes / files_truncated.  Never fails the run: problems
 * become entries with a reason. */
void sbx_collect_output(int outfd, const char *host_dir, const struct sbx_limits *lim,
			struct sbx_result *res);

#endif
