/* sandbox/cgroup.c -- see cgroup.h: detection, names, sweep, and dispatch to cgroup_v1.c /
 * cgroup_v2.c.  File helpers live in cgroup_io.c. */
#include "sandbox/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "sandbox/cgroup_internal.h"

#define REAL_ROOT "/sys/fs/cgroup"
#define MOUNTINFO_MAX (1u << 20)
#define OWN_CGROUP_MAX (64u << 10)

/* ---- detection ------------------------------------------------------------------------- */

/* Per hierarchy (v1 controllers, then v2 at index SBX_CGI_NCTRL): mount root and own path. */
struct raw_hier {
	char mroot[SBX_CG_PATH_MAX];
	char own[SBX_CG_PATH_MAX];
};

static void unescape(char *s) /* mountinfo writes space, tab, newline, backslash as \ooo */
{
	char *w = s;
	for (char *r = s; *r;) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

/* A mount point as seen in mountinfo, moved under `root` when a fake root is injected. */
static int rebase(const char *root, const char *mp, char *out, size_t n)
{
	size_t rl = strlen(REAL_ROOT);
	int w;
	if (!root)
		w = snprintf(out, n, "%s", mp);
	else if (strncmp(mp, REAL_ROOT, rl) == 0 && (mp[rl] == '\0' || mp[rl] == '/'))
		w = snprintf(out, n, "%s%s", root, mp + rl);
	else
		return -ENOENT; /* with a fake root, mounts elsewhere are not ours to touch */
	return (w < 0 || (size_t)w >= n) ? -ENAMETOOLONG : 0;
}

static void record(char *dst_mount, char *dst_mroot, const char *dir, const char *mroot)
{
	snprintf(dst_mount, SBX_CG_PATH_MAX, "%s", dir);
	snprintf(dst_mroot, SBX_CG_PATH_MAX, "%s", mroot);
}

static void scan_mount_line(char *line, const char *root, struct sbx_cgi_scan *s,
			    struct raw_hier *raw)
{
	char *tok[48], *save = NULL, dir[SBX_CG_PATH_MAX];
	int nt = 0, sep = -1;
	for (char *t = strtok_r(line, " ", &save); t && nt < 48; t = strtok_r(NULL, " ", &save))
		tok[nt++] = t;
	for (int i = 6; i < nt && sep < 0; i++)
		if (strcmp(tok[i], "-") == 0)
			sep = i;
	if (sep < 0 || sep + 3 >= nt) /* fstype, source and super options must follow "-" */
		return;
	unescape(tok[3]);
	unescape(tok[4]);
	if (rebase(root, tok[4], dir, sizeof dir) < 0)
		return;
	if (strcmp(tok[sep + 1], "cgroup2") == 0 && !s->have_v2) {
		s->have_v2 = true;
		record(s->v2_mount, raw[SBX_CGI_NCTRL].mroot, dir, tok[3]);
	} else if (strcmp(tok[sep + 1], "cgroup") == 0) {
		for (int c = 0; c < SBX_CGI_NCTRL; c++)
			if (!s->have_v1[c] &&
			    sbx_cgi_has_word(tok[sep + 3], sbx_cgi_ctrl_name[c])) {
				s->have_v1[c] = true;
				record(s->v1_mount[c], raw[c].mroot, dir, tok[3]);
			}
	}
}

/* "/proc/self/cgroup": "ID:controllers:path"; the v2 line has no controllers. */
static void scan_own_line(char *line, struct raw_hier *raw)
{
	char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (!c2 || c2[1] != '/')
		return;
	*c2 = '\0';
	if (c1[1] == '\0') {
		snprintf(raw[SBX_CGI_NCTRL].own, SBX_CG_PATH_MAX, "%s", c2 + 1);
		return;
	}
	for (int c = 0; c < SBX_CGI_NCTRL; c++)
		if (sbx_cgi_has_word(c1 + 1, sbx_cgi_ctrl_name[c]))
			snprintf(raw[c].own, SBX_CG_PATH_MAX, "%s", c2 + 1);
}

/* Our cgroup path is relative to the hierarchy root; the mount shows the subtree at mroot. */
static void own_dir(const char *mount, const struct raw_hier *r, char *out)
{
	const char *rel = r->own[0] ? r->own : "/";
	if (strcmp(r->mroot, "/") != 0) {
		size_t l = strlen(r->mroot);
		bool under = strncmp(rel, r->mroot, l) == 0 && (rel[l] == '\0' || rel[l] == '/');
		rel = under ? rel + l : "";
	}
	/* "/../x" (outside our cgroup namespace) or garbage: use the top of the mount. */
	if (!sbx_cgi_rel_ok(rel) || strcmp(rel, "/") == 0)
		rel = "";
	int w = snprintf(out, SBX_CG_PATH_MAX, "%s%s", mount, rel);
	if (w < 0 || w >= SBX_CG_PATH_MAX)
		snprintf(out, SBX_CG_PATH_MAX, "%s", mount);
}

static int read_proc(const char *proc_dir, const char *file, size_t max, struct cr_buf *b)
{
	char path[SBX_CG_PATH_MAX + 64], chunk[8192];
	if (sbx_cgi_join(path, sizeof path, proc_dir, file) < 0)
		return -ENAMETOOLONG;
	CR_AUTOCLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	cr_buf_init(b, max);
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof chunk);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return cr_buf_puts(b, ""); /* data is never NULL afterwards */
		int a = cr_buf_append(b, chunk, (size_t)r);
		if (a < 0)
			return a;
	}
}

static int scan_file(const char *proc_dir, const char *file, size_t max, const char *root,
		     struct sbx_cgi_scan *s, struct raw_hier *raw)
{
	struct cr_buf b = {0};
	int r = read_proc(proc_dir, file, max, &b);
	if (r == 0) {
		char *save = NULL;
		for (char *l = strtok_r(b.data, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			if (strcmp(file, "mountinfo") == 0)
				scan_mount_line(l, root, s, raw);
			else
				scan_own_line(l, raw);
		}
	}
	cr_buf_free(&b);
	return r;
}

/* The override as a cgroup path: a filesystem path inside one of our mounts loses the mount. */
static int override_rel(const struct sbx_cgi_scan *s, const char *ov, char *out, size_t n)
{
	const char *rel = ov;
	for (int i = 0; i <= SBX_CGI_NCTRL && rel == ov; i++) {
		bool have = i == SBX_CGI_NCTRL ? s->have_v2 : s->have_v1[i];
		const char *m = i == SBX_CGI_NCTRL ? s->v2_mount : s->v1_mount[i];
		size_t l = strlen(m);
		if (have && strncmp(ov, m, l) == 0 && (ov[l] == '\0' || ov[l] == '/'))
			rel = ov + l;
	}
	while (*rel == '/')
		rel++;
	if (!sbx_cgi_rel_ok(rel))
		return -EINVAL;
	int w = snprintf(out, n, "%s", rel);
	return (w < 0 || (size_t)w >= n) ? -ENAMETOOLONG : 0;
}

int sbx_cg_detect(const char *root, const char *proc_dir, const char *parent_override,
		  struct sbx_cg_host *host, struct cr_err *err)
{
	if (!host)
		return cr_failx(err, EINVAL, "cgroup detect: no host struct");
	memset(host, 0, sizeof *host);
	host->mode = SBX_CG_NONE;
	proc_dir = proc_dir ? proc_dir : "/proc/self";
	struct sbx_cgi_scan s;
	struct raw_hier raw[SBX_CGI_NCTRL + 1];
	char ov[SBX_CG_PATH_MAX];
	memset(&s, 0, sizeof s);
	memset(raw, 0, sizeof raw);

	int r = scan_file(proc_dir, "mountinfo", MOUNTINFO_MAX, root, &s, raw);
	if (r < 0) {
		snprintf(host->note, sizeof host->note, "cannot read %s/mountinfo: %s", proc_dir,
			 r == -E2BIG ? "larger than 1 MiB" : strerror(-r));
		return 0;
	}
	if (parent_override && parent_override[0]) {
		if (override_rel(&s, parent_override, ov, sizeof ov) < 0)
			return cr_failx(err, EINVAL, "invalid cgroup parent '%s'", parent_override);
		s.override = ov;
	}
	scan_file(proc_dir, "cgroup", OWN_CGROUP_MAX, root, &s, raw); /* missing: use mount tops */
	bool any_v1 = false;
	for (int c = 0; c < SBX_CGI_NCTRL; c++) {
		if (s.have_v1[c])
			own_dir(s.v1_mount[c], &raw[c], s.v1_own[c]);
		any_v1 |= s.have_v1[c];
	}
	if (s.have_v2)
		own_dir(s.v2_mount, &raw[SBX_CGI_NCTRL], s.v2_own);

	/* Hybrid hosts mount an empty cgroup2 next to the v1 controllers: v2 counts only with
	 * controllers, or when it is all there is (its setup then says what is missing). */
	char ctl[SBX_CGI_SMALL];
	bool v2_ctrls = s.have_v2 &&
			sbx_cgi_read(s.v2_mount, "cgroup.controllers", ctl, sizeof ctl) >= 0 &&
			(sbx_cgi_has_word(ctl, "memory") || sbx_cgi_has_word(ctl, "pids") ||
			 sbx_cgi_has_word(ctl, "cpu"));
	if (v2_ctrls || (s.have_v2 && !any_v1))
		sbx_cg_v2_setup(&s, host);
	else if (any_v1)
		sbx_cg_v1_setup(&s, host);
	else
		snprintf(host->note, sizeof host->note,
			 "no cgroup or cgroup2 mount in %s/mountinfo", proc_dir);
	return 0;
}

/* ---- one sandbox's cgroup -------------------------------------------------------------- */

void sbx_cg_init(struct sbx_cg *cg)
{
	memset(cg, 0, sizeof *cg);
	cg->mode = SBX_CG_NONE;
	sbx_cg_forget_fds(cg);
}

static bool name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 64 || name[0] == '.')
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

int sbx_cg_create(const struct sbx_cg_host *host, const char *name, const struct sbx_limits *lim,
		  struct sbx_cg *cg, struct cr_err *err)
{
	uint64_t quota;
	if (!cg)
		return cr_failx(err, EINVAL, "cgroup create: no cgroup struct");
	sbx_cg_init(cg);
	if (!host || !lim || !name)
		return cr_failx(err, EINVAL, "cgroup create: missing argument");
	if (!name_ok(name))
		return cr_failx(err, EINVAL, "invalid cgroup name '%.64s'", name);
	if (sbx_cgi_cpu_quota(lim->cpus, &quota) < 0)
		return cr_failx(err, EINVAL, "invalid cpu limit %g", lim->cpus);
	switch (host->mode) {
	case SBX_CG_V1:
		return sbx_cg_v1_create(host, name, lim, cg, err);
	case SBX_CG_V2:
		return sbx_cg_v2_create(host, name, lim, cg, err);
	default:
		return cr_failx(err, ENOTSUP, "cgroups unavailable: %s", host->note);
	}
}

int sbx_cg_clone_fd(const struct sbx_cg *cg)
{
	return (cg && cg->mode == SBX_CG_V2) ? cg->v2_dir_fd : -1;
}

int sbx_cg_attach(const struct sbx_cg *cg, pid_t pid, struct cr_err *err)
{
	if (!cg || pid <= 0)
		return cr_failx(err, EINVAL, "cgroup attach: bad argument");
	if (!cg->created)
		return cr_failx(err, ENOTSUP, "cgroup attach: no cgroup");
	return cg->mode == SBX_CG_V2 ? sbx_cg_v2_attach(cg, pid, err)
				     : sbx_cg_v1_attach(cg, pid, err);
}

int sbx_cg_update(const struct sbx_cg_host *host, const struct sbx_cg *cg,
		  const struct sbx_limits *lim, struct cr_err *err)
{
	uint64_t quota;
	if (!host || !cg || !lim || sbx_cgi_cpu_quota(lim->cpus, &quota) < 0)
		return cr_failx(err, EINVAL, "cgroup update: bad argument");
	if (!cg->created)
		return cr_failx(err, ENOTSUP, "cgroup update: no cgroup");
	return cg->mode == SBX_CG_V2 ? sbx_cg_v2_update(host, cg, lim, err)
				     : sbx_cg_v1_update(host, cg, lim, err);
}

int sbx_cg_stats(struct sbx_cg *cg, struct sbx_cg_stats *st)
{
	if (!st)
		return -EINVAL;
	memset(st, 0, sizeof *st);
	if (!cg || !cg->created)
		return -ENOTSUP;
	return cg->mode == SBX_CG_V2 ? sbx_cg_v2_stats(cg, st) : sbx_cg_v1_stats(cg, st);
}

int sbx_cg_kill(const struct sbx_cg *cg)
{
	if (!cg || !cg->created)
		return 0;
	return cg->mode == SBX_CG_V2 ? sbx_cg_v2_kill(cg) : sbx_cg_v1_kill(cg);
}

void sbx_cg_stats_close(struct sbx_cg *cg)
{
	if (!cg)
		return;
	for (int i = 0; i < SBX_CG_NSTAT; i++) {
		if (cg->stat_fd[i] >= 0)
			close(cg->stat_fd[i]);
		cg->stat_fd[i] = -1;
	}
}

void sbx_cg_forget_fds(struct sbx_cg *cg)
{
	cg->v2_dir_fd = -1;
	for (int i = 0; i < SBX_CG_NSTAT; i++)
		cg->stat_fd[i] = -1;
}

void sbx_cg_destroy(struct sbx_cg *cg)
{
	if (!cg)
		return;
	sbx_cg_stats_close(cg);
	sbx_cg_kill(cg);
	/* A joint cpu,cpuacct mount gives the same dir twice: the second rmdir sees ENOENT. */
	const char *dirs[] = {cg->v2_dir, cg->v1_memory, cg->v1_pids, cg->v1_cpu, cg->v1_cpuacct};
	if (cg->created)
		for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
			if (dirs[i][0])
				sbx_cgi_rmdir(dirs[i]); /* real cgroupfs dirs go with their files */
	if (cg->v2_dir_fd >= 0)
		close(cg->v2_dir_fd);
	sbx_cg_init(cg);
}

/* ---- names and the sweep --------------------------------------------------------------- */

/* Field 22 of /proc/<pid>/stat; the command (field 2) may hold spaces and parentheses. */
static int start_time(const char *pid, uint64_t *out)
{
	char dir[64], buf[SBX_CGI_SMALL];
	snprintf(dir, sizeof dir, "/proc/%s", pid);
	int r = sbx_cgi_read(dir, "stat", buf, sizeof buf);
	if (r < 0)
		return r;
	char *p = strrchr(buf, ')');
	if (!p)
		return -EINVAL;
	for (int field = 2; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -EINVAL;
	}
	char num[32];
	size_t n = strcspn(p + 1, " \n");
	if (n == 0 || n >= sizeof num)
		return -EINVAL;
	memcpy(num, p + 1, n);
	num[n] = '\0';
	return sbx_cgi_parse_u64(num, out);
}

void sbx_cg_make_name(char *out, size_t n, unsigned seq)
{
	uint64_t st = 0;
	start_time("self", &st);
	snprintf(out, n, "%ld.%llu.%u", (long)getpid(), (unsigned long long)st, seq);
}

/* Owners' start times read during one sweep: every sandbox of a live engine carries the same
 * pid, in each of up to four hierarchies, and /proc/<pid>/stat is not cheap to produce. */
struct owner_cache {
	struct {
		char pid[16];
		int r;
		uint64_t start;
	} e[32];
	int n;
};

static int owner_start_time(struct owner_cache *c, const char *pid, uint64_t *out)
{
	for (int i = 0; i < c->n; i++)
		if (!strcmp(c->e[i].pid, pid)) {
			*out = c->e[i].start;
			return c->e[i].r;
		}
	uint64_t st = 0;
	int r = start_time(pid, &st);
	if (c->n < (int)(sizeof c->e / sizeof c->e[0])) {
		snprintf(c->e[c->n].pid, sizeof c->e[c->n].pid, "%s", pid);
		c->e[c->n].r = r;
		c->e[c->n].start = st;
		c->n++;
	}
	*out = st;
	return r;
}

/* "<pid>.<start>.<seq>" whose process is gone (or is another process with a reused pid). */
static bool stale_name(struct owner_cache *c, const char *name)
{
	char pid[16], start[24], seq[16];
	uint64_t v, owner_start, now_start;
	int end = -1;
	if (sscanf(name, "%15[0-9].%23[0-9].%15[0-9]%n", pid, start, seq, &end) != 3 ||
	    end < 0 || name[end] != '\0')
		return false;
	if (sbx_cgi_parse_u64(pid, &v) < 0 || v == 0 || v > INT_MAX ||
	    sbx_cgi_parse_u64(start, &owner_start) < 0)
		return false;
	int r = owner_start_time(c, pid, &now_start);
	if (r == -ENOENT || r == -ESRCH)
		return true;
	return r == 0 && now_start != owner_start; /* unreadable for another reason: keep it */
}

void sbx_cg_plan(const struct sbx_cg_host *h, const char *name, struct sbx_cg *cg)
{
	sbx_cg_init(cg);
	cg->mode = h->mode;
	if (h->mode == SBX_CG_V2) {
		sbx_cgi_join(cg->v2_dir, sizeof cg->v2_dir, h->v2_parent, name);
		return;
	}
	const char *par[] = {h->v1_memory, h->v1_pids, h->v1_cpu, h->v1_cpuacct};
	char *dst[] = {cg->v1_memory, cg->v1_pids, cg->v1_cpu, cg->v1_cpuacct};
	for (int i = 0; i < 4; i++)
		if (par[i][0] && sbx_cgi_join(dst[i], SBX_CG_PATH_MAX, par[i], name) < 0)
			dst[i][0] = '\0';
}

static void paths_for(const struct sbx_cg_host *h, const char *name, struct sbx_cg *cg)
{
	sbx_cg_plan(h, name, cg);
	cg->created = true;
}

int sbx_cg_sweep(const struct sbx_cg_host *host)
{
	if (!host || host->mode == SBX_CG_NONE)
		return 0;
	const char *parents[] = {host->v2_parent, host->v1_memory, host->v1_pids, host->v1_cpu,
				 host->v1_cpuacct};
	int removed = 0;
	struct owner_cache owners = {.n = 0};
	for (size_t i = 0; i < sizeof parents / sizeof parents[0]; i++) {
		if (!parents[i][0] || (i == 0) != (host->mode == SBX_CG_V2))
			continue;
		CR_AUTOCLOSEDIR DIR *d = opendir(parents[i]);
		struct dirent *de;
		while (d && (de = readdir(d)) != NULL) {
			struct stat sb;
			bool is_dir = de->d_type == DT_DIR ||
				      (de->d_type == DT_UNKNOWN &&
				       fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0
				       && S_ISDIR(sb.st_mode));
			if (!is_dir || !stale_name(&owners, de->d_name))
				continue;
			struct sbx_cg cg;
			char dir[SBX_CG_PATH_MAX];
			paths_for(host, de->d_name, &cg);
			sbx_cg_destroy(&cg); /* kills what is left inside, then the dirs */
			if (sbx_cgi_join(dir, sizeof dir, parents[i], de->d_name) == 0 &&
			    access(dir, F_OK) < 0)
				removed++;
		}
	}
	return removed;
}
