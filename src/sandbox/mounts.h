/* sandbox/mounts.h -- the sandbox filesystem (see mounts.c for the full list of what is seen).
 * Called only from sbx_contain, in the child, before privileges are dropped. */
#ifndef CORRAL_SANDBOX_MOUNTS_H
#define CORRAL_SANDBOX_MOUNTS_H

#include "sandbox/contain.h"

/* Builds the new root and chdirs to the workdir; on failure reports on ctl and _exit()s. */
void sbx_build_root(const struct sbx_plan *plan, int ctl);

#endif
