/* sandbox/cgroup_v2.c -- the unified hierarchy: one directory per sandbox (see cgroup.h).
 *
 * The parent ("corral") must have the controllers enabled in its cgroup.subtree_control, and so
 * must the cgroup above it; the no-internal-process rule forbids that in a cgroup holding
 * processes (except the root), which is why our own cgroup may refuse and we fall back to the
 * top level. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/cgroup_internal.h"

enum { C_MEM = 1, C_PIDS = 2, C_CPU = 4 };

static unsigned ctrls_at(const char *dir)
{
	char buf[SBX_CGI_SMALL];
	unsigned m = 0;
	if (sbx_cgi_read(dir, "cgroup.controllers", buf, sizeof buf) < 0)
		return 0;
	m |= sbx_cgi_has_word(buf, "memory") ? C_MEM : 0;
	m |= sbx_cgi_has_word(buf, "pids") ? C_PIDS : 0;
	m |= sbx_cgi_has_word(buf, "cpu") ? C_CPU : 0;
	return m;
}

/* Only what is available: one unknown name fails the whole write. */
static int enable(const char *dir, unsigned ctrls, struct cr_err *err)
{
	char v[32];
	snprintf(v, sizeof v, "%s%s%s", (ctrls & C_MEM) ? " +memory" : "",
		 (ctrls & C_PIDS) ? " +pids" : "", (ctrls & C_CPU) ? " +cpu" : "");
	return sbx_cgi_write(dir, "cgroup.subtree_control", v + 1, err);
}

/* above/subtree_control, mkdir parent, parent/subtree_control; undoes its mkdir on failure. */
static int make_parent(const char *above, unsigned ctrls, char *parent, struct cr_err *err)
{
	if (sbx_cgi_join(parent, SBX_CG_PATH_MAX, above, "corral") < 0)
		return cr_failx(err, ENAMETOOLONG, "cgroup path too long: %s", above);
	if (!ctrls)
		return cr_failx(err, ENOENT, "no memory, pids or cpu controller in %s", above);
	int r = enable(above, ctrls, err);
	if (r < 0)
		return r;
	bool made = mkdir(parent, 0755) == 0;
	if (!made && errno != EEXIST)
		return cr_fail(err, errno, "mkdir %s", parent);
	r = enable(parent, ctrls, err);
	if (r < 0 && made)
		rmdir(parent);
	return r;
}

void sbx_cg_v2_setup(const struct sbx_cgi_scan *s, struct sbx_cg_host *h)
{
	struct cr_err e = {0};
	char parent[SBX_CG_PATH_MAX] = "";
	unsigned ctrls;
	int r;
	if (s->override) {
		r = sbx_cgi_mkdirs(s->v2_mount, s->override, parent, sizeof parent, &e);
		ctrls = r < 0 ? 0 : ctrls_at(parent);
		if (r == 0 && !ctrls)
			r = cr_failx(&e, ENOENT, "no memory, pids or cpu controller in %s", parent);
		if (r == 0)
			r = enable(parent, ctrls, &e);
	} else {
		ctrls = ctrls_at(s->v2_own);
		r = make_parent(s->v2_own, ctrls, parent, &e);
		if (r < 0 && strcmp(s->v2_own, s->v2_mount) != 0) {
			/* Our cgroup holds processes or is not delegated to us: the top level. */
			ctrls = ctrls_at(s->v2_mount);
			r = make_parent(s->v2_mount, ctrls, parent, &e);
		}
	}
	if (r < 0) {
		snprintf(h->note, sizeof h->note, "cgroup v2: %s", e.msg);
		return;
	}
	h->mode = SBX_CG_V2;
	snprintf(h->v2_parent, sizeof h->v2_parent, "%s", parent);
	h->has_memory = ctrls & C_MEM;
	h->has_pids = ctrls & C_PIDS;
	h->has_cpu = ctrls & C_CPU;
	/* Children get the same interface files as the parent: swap accounting shows here. */
	h->has_memsw = h->has_memory && sbx_cgi_exists(parent, "memory.swap.max");
	sbx_cgi_note_missing(h, "cgroup v2");
}

static void limit_str(char *v, size_t n, uint64_t x)
{
	if (x)
		snprintf(v, n, "%llu", (unsigned long long)x);
	else
		snprintf(v, n, "max");
}

static int write_limits(const struct sbx_cg_host *h, const char *dir, const struct sbx_limits *lim,
			struct cr_err *err)
{
	char v[64];
	uint64_t quota = 0;
	int r = 0;
	sbx_cgi_cpu_quota(lim->cpus, &quota); /* validated by sbx_cg_create */
	if (h->has_memory) {
		limit_str(v, sizeof v, lim->memory_bytes);
		r = sbx_cgi_write(dir, "memory.max", v, err);
		/* Swap would let the program hold more than its memory limit. */
		if (!r && (h->has_memsw || sbx_cgi_exists(dir, "memory.swap.max")))
			r = sbx_cgi_write(dir, "memory.swap.max", lim->memory_bytes ? "0" : "max",
					  err);
		/* On OOM the whole sandbox dies together, not one arbitrary member of it. */
		if (!r && (sbx_cgi_exists(dir, "memory.oom.group") ||
			   sbx_cgi_exists(h->v2_parent, "memory.oom.group")))
			r = sbx_cgi_write(dir, "memory.oom.group", "1", err);
	}
	if (!r && h->has_pids) {
		limit_str(v, sizeof v, lim->pids);
		r = sbx_cgi_write(dir, "pids.max", v, err);
	}
	if (!r && h->has_cpu) {
		if (quota)
			snprintf(v, sizeof v, "%llu %d", (unsigned long long)quota,
				 SBX_CGI_PERIOD_US);
		else
			snprintf(v, sizeof v, "max %d", SBX_CGI_PERIOD_US);
		r = sbx_cgi_write(dir, "cpu.max", v, err);
	}
	return r;
}

int sbx_cg_v2_update(const struct sbx_cg_host *h, const struct sbx_cg *cg,
		     const struct sbx_limits *lim, struct cr_err *err)
{
	return write_limits(h, cg->v2_dir, lim, err);
}

int sbx_cg_v2_create(const struct sbx_cg_host *h, const char *name, const struct sbx_limits *lim,
		     struct sbx_cg *cg, struct cr_err *err)
{
	char dir[SBX_CG_PATH_MAX];
	if (sbx_cgi_join(dir, sizeof dir, h->v2_parent, name) < 0)
		return cr_failx(err, ENAMETOOLONG, "cgroup path too long: %s", h->v2_parent);
	if (mkdir(dir, 0755) < 0)
		return cr_fail(err, errno, "mkdir %s", dir);
	int fd = -1, r = write_limits(h, dir, lim, err);
	if (r == 0 && (fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		r = cr_fail(err, errno, "open %s", dir);
	if (r < 0) {
		rmdir(dir); /* real cgroupfs: goes with its files; nothing ran in it yet */
		return r;
	}
	cg->mode = SBX_CG_V2;
	snprintf(cg->v2_dir, sizeof cg->v2_dir, "%s", dir);
	cg->v2_dir_fd = fd;
	cg->created = true;
	return 0;
}

int sbx_cg_v2_attach(const struct sbx_cg *cg, pid_t pid, struct cr_err *err)
{
	char v[24];
	snprintf(v, sizeof v, "%ld", (long)pid);
	return sbx_cgi_write(cg->v2_dir, "cgroup.procs", v, err);
}

int sbx_cg_v2_stats(struct sbx_cg *cg, struct sbx_cg_stats *st)
{
	const char *d = cg->v2_dir;
	int bad = 0, got = 0, r;
	int *fd = cg->stat_fd;
	r = sbx_cgi_read_u64(&fd[0], d, "memory.peak", &st->peak_memory_bytes);
	st->have_peak = r == 0;
	sbx_cgi_tally(r, &bad, &got);
	char ev[SBX_CGI_SMALL]; /* memory.events: two counters from one read */
	r = sbx_cgi_read_kept(&fd[1], d, "memory.events", ev, sizeof ev);
	if (r >= 0) {
		sbx_cgi_tally(sbx_cgi_kv_u64(ev, "oom_kill", &st->oom_kills), &bad, &got);
		sbx_cgi_tally(sbx_cgi_kv_u64(ev, "max", &st->memory_max_hits), &bad, &got);
	} else {
		sbx_cgi_tally(r, &bad, &got);
	}
	sbx_cgi_tally(sbx_cgi_read_kv(&fd[2], d, "pids.events", "max", &st->pids_max_hits), &bad,
		      &got);
	r = sbx_cgi_read_kv(&fd[3], d, "cpu.stat", "usage_usec", &st->cpu_usec);
	st->have_cpu = r == 0;
	sbx_cgi_tally(r, &bad, &got);
	return bad ? bad : got ? 0 : -ENOENT;
}

int sbx_cg_v2_kill(const struct sbx_cg *cg)
{
	/* cgroup.kill (5.14+) takes the whole subtree at once, even while it forks. */
	if (sbx_cgi_exists(cg->v2_dir, "cgroup.kill") &&
	    sbx_cgi_write(cg->v2_dir, "cgroup.kill", "1", NULL) == 0)
		return 0;
	return sbx_cgi_kill_procs(cg->v2_dir);
}
