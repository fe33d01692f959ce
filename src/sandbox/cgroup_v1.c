/* sandbox/cgroup_v1.c -- legacy/hybrid hierarchies: one directory per controller per sandbox
 * (see cgroup.h).  Parents nest under our own cgroup so limits placed on corral still apply. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/cgroup_internal.h"

void sbx_cg_v1_setup(const struct sbx_cgi_scan *s, struct sbx_cg_host *h)
{
	char *dst[SBX_CGI_NCTRL] = {h->v1_memory, h->v1_pids, h->v1_cpu, h->v1_cpuacct};
	struct cr_err e = {0};
	for (int c = 0; c < SBX_CGI_NCTRL; c++) {
		if (!s->have_v1[c])
			continue;
		const char *base = s->override ? s->v1_mount[c] : s->v1_own[c];
		const char *rel = s->override ? s->override : "corral";
		if (sbx_cgi_mkdirs(base, rel, dst[c], SBX_CG_PATH_MAX, &e) < 0)
			dst[c][0] = '\0';
	}
	h->has_memory = h->v1_memory[0];
	h->has_pids = h->v1_pids[0];
	h->has_cpu = h->v1_cpu[0];
	if (!h->has_memory && !h->has_pids && !h->has_cpu) {
		h->v1_cpuacct[0] = '\0';
		snprintf(h->note, sizeof h->note, "cgroup v1: %s",
			 e.code ? e.msg : "no memory, pids or cpu hierarchy");
		return;
	}
	h->mode = SBX_CG_V1;
	/* Children get the parent's interface files: swap accounting shows here. */
	h->has_memsw = h->has_memory && sbx_cgi_exists(h->v1_memory, "memory.memsw.limit_in_bytes");
	sbx_cgi_note_missing(h, "cgroup v1");
	if (!h->note[0] && e.code)
		snprintf(h->note, sizeof h->note, "cgroup v1: %s", e.msg);
}

static int write_limits(const struct sbx_cg_host *h, const struct sbx_cg *cg,
			const struct sbx_limits *lim, struct cr_err *err)
{
	char v[64];
	uint64_t quota = 0;
	int r = 0;
	sbx_cgi_cpu_quota(lim->cpus, &quota); /* validated by sbx_cg_create */
	if (cg->v1_memory[0]) {
		if (lim->memory_bytes)
			snprintf(v, sizeof v, "%llu", (unsigned long long)lim->memory_bytes);
		else
			snprintf(v, sizeof v, "-1");
		r = sbx_cgi_write(cg->v1_memory, "memory.limit_in_bytes", v, err);
		/* memory+swap = memory: swap cannot add room.  The kernel wants memsw >= memory, so
		 * this comes second (both start unlimited). */
		if (!r && h->has_memsw)
			r = sbx_cgi_write(cg->v1_memory, "memory.memsw.limit_in_bytes", v, err);
	}
	if (!r && cg->v1_pids[0]) {
		if (lim->pids)
			snprintf(v, sizeof v, "%u", (unsigned)lim->pids);
		else
			snprintf(v, sizeof v, "max");
		r = sbx_cgi_write(cg->v1_pids, "pids.max", v, err);
	}
	if (!r && cg->v1_cpu[0]) {
		snprintf(v, sizeof v, "%d", SBX_CGI_PERIOD_US);
		r = sbx_cgi_write(cg->v1_cpu, "cpu.cfs_period_us", v, err);
		if (quota)
			snprintf(v, sizeof v, "%llu", (unsigned long long)quota);
		else
			snprintf(v, sizeof v, "-1");
		if (!r)
			r = sbx_cgi_write(cg->v1_cpu, "cpu.cfs_quota_us", v, err);
	}
	return r;
}

int sbx_cg_v1_update(const struct sbx_cg_host *h, const struct sbx_cg *cg,
		     const struct sbx_limits *lim, struct cr_err *err)
{
	/* memsw must stay >= memory at every step: open it up first, then write both. */
	if (h->has_memsw && cg->v1_memory[0]) {
		int r = sbx_cgi_write(cg->v1_memory, "memory.memsw.limit_in_bytes", "-1", err);
		if (r < 0)
			return r;
	}
	return write_limits(h, cg, lim, err);
}

int sbx_cg_v1_create(const struct sbx_cg_host *h, const char *name, const struct sbx_limits *lim,
		     struct sbx_cg *cg, struct cr_err *err)
{
	const char *par[SBX_CGI_NCTRL] = {h->v1_memory, h->v1_pids, h->v1_cpu, h->v1_cpuacct};
	char *dst[SBX_CGI_NCTRL] = {cg->v1_memory, cg->v1_pids, cg->v1_cpu, cg->v1_cpuacct};
	int r = 0;
	cg->mode = SBX_CG_V1;
	for (int i = 0; i < SBX_CGI_NCTRL; i++) {
		if (!par[i][0])
			continue;
		if (sbx_cgi_join(dst[i], SBX_CG_PATH_MAX, par[i], name) < 0) {
			dst[i][0] = '\0';
			r = cr_failx(err, ENAMETOOLONG, "cgroup path too long: %s", par[i]);
			goto undo;
		}
		bool seen = false; /* "cpu,cpuacct" mounted together: one directory serves both */
		for (int j = 0; j < i; j++)
			seen |= strcmp(dst[i], dst[j]) == 0;
		if (!seen && mkdir(dst[i], 0755) < 0) {
			r = cr_fail(err, errno, "mkdir %s", dst[i]);
			dst[i][0] = '\0'; /* not ours (EEXIST) or not made: never remove it */
			goto undo;
		}
	}
	r = write_limits(h, cg, lim, err);
	if (r == 0) {
		cg->created = true;
		return 0;
	}
undo:
	for (int i = 0; i < SBX_CGI_NCTRL; i++)
		if (dst[i][0])
			rmdir(dst[i]); /* ENOENT for a shared one already gone */
	sbx_cg_init(cg);
	return r;
}

int sbx_cg_v1_attach(const struct sbx_cg *cg, pid_t pid, struct cr_err *err)
{
	const char *dirs[SBX_CGI_NCTRL] = {cg->v1_memory, cg->v1_pids, cg->v1_cpu, cg->v1_cpuacct};
	char v[24];
	snprintf(v, sizeof v, "%ld", (long)pid);
	for (int i = 0; i < SBX_CGI_NCTRL; i++) {
		if (!dirs[i][0] || (i > 0 && strcmp(dirs[i], dirs[i - 1]) == 0))
			continue;
		int r = sbx_cgi_write(dirs[i], "cgroup.procs", v, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int sbx_cg_v1_stats(struct sbx_cg *cg, struct sbx_cg_stats *st)
{
	int bad = 0, got = 0, r;
	int *fd = cg->stat_fd;
	if (cg->v1_memory[0]) {
		const char *d = cg->v1_memory;
		r = sbx_cgi_read_u64(&fd[0], d, "memory.max_usage_in_bytes", &st->peak_memory_bytes);
		st->have_peak = r == 0;
		sbx_cgi_tally(r, &bad, &got);
		r = sbx_cgi_read_kv(&fd[1], d, "memory.oom_control", "oom_kill", &st->oom_kills);
		sbx_cgi_tally(r, &bad, &got);
		r = sbx_cgi_read_u64(&fd[2], d, "memory.failcnt", &st->memory_max_hits);
		sbx_cgi_tally(r, &bad, &got);
		/* memsw is charged first: with memsw = memory, that is the counter that moves. */
		uint64_t sw = 0;
		r = sbx_cgi_read_u64(&fd[3], d, "memory.memsw.failcnt", &sw);
		st->memory_max_hits += sw;
		sbx_cgi_tally(r, &bad, &got);
	}
	if (cg->v1_pids[0]) {
		r = sbx_cgi_read_kv(&fd[4], cg->v1_pids, "pids.events", "max", &st->pids_max_hits);
		sbx_cgi_tally(r, &bad, &got);
	}
	if (cg->v1_cpuacct[0]) {
		uint64_t ns = 0;
		r = sbx_cgi_read_u64(&fd[5], cg->v1_cpuacct, "cpuacct.usage", &ns);
		st->cpu_usec = ns / 1000;
		st->have_cpu = r == 0;
		sbx_cgi_tally(r, &bad, &got);
	}
	return bad ? bad : got ? 0 : -ENOENT;
}

int sbx_cg_v1_kill(const struct sbx_cg *cg)
{
	/* Every sandbox process is attached to every hierarchy; one cgroup.procs lists them all. */
	const char *d = cg->v1_memory[0] ? cg->v1_memory
			: cg->v1_pids[0] ? cg->v1_pids
			: cg->v1_cpu[0]	 ? cg->v1_cpu
					 : cg->v1_cpuacct;
	return d[0] ? sbx_cgi_kill_procs(d) : 0;
}
