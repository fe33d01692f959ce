/* tests/unit/test_cgroup.c -- the cgroup layer against FAKE trees in a temp dir.
 *
 * Each test gets <tmp>/proc (fake mountinfo + cgroup, passed as proc_dir) and <tmp>/cg (passed
 * as root; mountinfo mount points under /sys/fs/cgroup are rebased onto it).  mkdir in a fake
 * tree makes no interface files, so whatever the code writes can be read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/cgroup.h"
#include "sandbox/cgroup_internal.h"

struct fx {
	char dir[64], proc[96], root[96];
	char p[SBX_CG_PATH_MAX + 128]; /* scratch for path building */
};

static const char V2_MOUNTINFO[] =
	"22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/root rw\n"
	"24 22 0:22 / /proc rw,nosuid shared:12 - proc proc rw\n"
	"30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
	"rw,nsdelegate,memory_recursiveprot\n";

static const char HYBRID_MOUNTINFO[] =
	"22 1 259:1 / / rw,relatime - ext4 /dev/root rw\n"
	"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	"33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
	"35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
	"39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
	"40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
	"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

static const char HYBRID_CGROUP[] = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n"
				    "2:cpuacct:/\n1:cpu:/\n0::/\n";

static const struct sbx_limits LIM = {.memory_bytes = 64u << 20, .pids = 8, .cpus = 0.5};

/* ---- fake tree helpers ----------------------------------------------------------------- */

static void mkdir_p(const char *path)
{
	char tmp[SBX_CG_PATH_MAX + 128];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *s = tmp + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			mkdir(tmp, 0755);
			*s = '/';
		}
	mkdir(tmp, 0755);
}

static void put(const char *dir, const char *rel, const char *content)
{
	char path[SBX_CG_PATH_MAX + 128];
	snprintf(path, sizeof path, "%s/%s", dir, rel);
	char *slash = strrchr(path, '/');
	*slash = '\0';
	mkdir_p(path);
	*slash = '/';
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

/* Contents of dir/rel, or NULL when missing; static buffer. */
static const char *get(const char *dir, const char *rel)
{
	static char buf[8192];
	char path[SBX_CG_PATH_MAX + 128];
	snprintf(path, sizeof path, "%s/%s", dir, rel);
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static bool exists(const char *dir, const char *rel)
{
	char path[SBX_CG_PATH_MAX + 128];
	snprintf(path, sizeof path, "%s/%s", dir, rel);
	return access(path, F_OK) == 0;
}

static const char *P(struct fx *f, const char *rel)
{
	snprintf(f->p, sizeof f->p, "%s/%s", f->root, rel);
	return f->p;
}

static int rm_cb(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb, (void)type, (void)ftw;
	return remove(p);
}

/* Removes the interface files a fake cgroup dir got, so rmdir can work as on cgroupfs. */
static void empty_dir(const char *dir)
{
	nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	mkdir(dir, 0755);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/corral-cgtest.XXXXXX");
	if (!f || !mkdtemp(f->dir))
		return -1;
	snprintf(f->proc, sizeof f->proc, "%s/proc", f->dir);
	snprintf(f->root, sizeof f->root, "%s/cg", f->dir);
	mkdir(f->proc, 0755);
	mkdir(f->root, 0755);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void v2_tree(struct fx *f)
{
	put(f->proc, "mountinfo", V2_MOUNTINFO);
	put(f->proc, "cgroup", "0::/user.slice/app.service\n");
	put(f->root, "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
	put(f->root, "user.slice/app.service/cgroup.controllers", "cpu memory pids\n");
}

static void hybrid_tree(struct fx *f)
{
	put(f->proc, "mountinfo", HYBRID_MOUNTINFO);
	put(f->proc, "cgroup", HYBRID_CGROUP);
	mkdir_p(P(f, "memory/process_api/abc"));
	mkdir_p(P(f, "pids"));
	mkdir_p(P(f, "cpu"));
	mkdir_p(P(f, "cpuacct"));
	put(f->root, "unified/cgroup.controllers", "");
}

/* ---- (1) pure v2 ----------------------------------------------------------------------- */

static void test_v2_detect_and_limits(void **state)
{
	struct fx *f = *state;
	struct sbx_cg_host h;
	struct cr_err err = {0};
	v2_tree(f);
	put(f->root, "user.slice/app.service/corral/memory.swap.max", "max\n");
	put(f->root, "user.slice/app.service/corral/memory.oom.group", "0\n");
	assert_int_equal(sbx_cg_detect(f->root, f->proc, NULL, &h, &err), 0);
	assert_int_equal(h.mode, SBX_CG_V2);
	assert_string_equal(h.v2_parent, P(f, "user.slice/app.service/corral"));
	assert_true(h.has_memory && h.has_pids && h.has_cpu && h.has_memsw);
	assert_string_equal(h.note, "");
	assert_string_equal(get(f->root, "user.slice/app.service/cgroup.subtree_control"),
			    "+memory +pids +cpu");
	assert_string_equal(get(h.v2_parent, "cgroup.subtree_control"), "+memory +pids +cpu");

	struct sbx_cg cg;
	assert_int_equal(sbx_cg_create(&h, "1.2.3", &LIM, &cg, &err), 0);
	assert_int_equal(cg.mode, SBX_CG_V2);
	assert_string_equal(cg.v2_dir, P(f, "user.slice/app.service/corral/1.2.3"));
	assert_true(sbx_cg_clone_fd(&cg) >= 0);
	assert_string_equal(get(cg.v2_dir, "memory.max"), "67108864");
	assert_string_equal(get(cg.v2_dir, "memory.swap.max"), "0");
	assert_string_equal(get(cg.v2_dir, "memory.oom.group"), "1");
	assert_string_equal(get(cg.v2_dir, "pids.max"), "8");
	assert_string_equal(get(cg.v2_dir, "cpu.max"), "50000 100000");

	assert_int_equal(sbx_cg_attach(&cg, 4242, &err), 0);
	assert_string_equal(get(cg.v2_dir, "cgroup.procs"), "4242");
	put(cg.v2_dir, "cgroup.procs", ""); /* fake: nothing to kill */

	/* Fake dirs keep their files, so rmdir fails: destroy must tolerate it, twice. */
	char dir[SBX_CG_PATH_MAX];
	snprintf(dir, sizeof dir, "%s", cg.v2_dir);
	sbx_cg_destroy(&cg);
	sbx_cg_destroy(&cg);
	assert_int_equal(sbx_cg_clone_fd(&cg), -1);
	assert_true(exists(dir, "memory.max"));
	empty_dir(dir);

	/* Zero limits: knobs at "max", swap back to "max". */
	struct sbx_limits zero = {0};
	assert_int_equal(sbx_cg_create(&h, "1.2.4", &zero, &cg, &err), 0);
	assert_string_equal(get(cg.v2_dir, "memory.max"), "max");
	assert_string_equal(get(cg.v2_dir, "memory.swap.max"), "max");
	assert_string_equal(get(cg.v2_dir, "pids.max"), "max");
	assert_string_equal(get(cg.v2_dir, "cpu.max"), "max 100000");
	snprintf(dir, sizeof dir, "%s", cg.v2_dir);
	empty_dir(dir);
	sbx_cg_destroy(&cg); /* files gone: now the rmdir works */
	assert_false(exists(dir, ""));
}

static void test_v2_no_swap_file_no_swap_write(void **state)
{
	struct fx *f = *state;
	struct sbx_cg_host h;
	struct sbx_cg cg;
	v2_tree(f);
	assert_int_equal(sbx_cg_detect(f->root, f->proc, NULL, &h, NULL), 0);
	assert_false(h.has_memsw);
	assert_int_equal(sbx_cg_create(&h, "1.2.3", &LIM, &cg, NULL), 0);
	assert_false(exists(cg.v2_dir, "memory.swap.max"));
	assert_false(exists(cg.v2_dir, "memory.oom.group"));
	assert_string_equal(get(cg.v2_dir, "memory.max"), "67108864");
	sbx_cg_destroy(&cg);
}

/* Our own cgroup refuses controllers (here: subtree_control is a directory, so the write fails
 * as EBUSY would on a cgroup holding processes): fall back to <mount>/corral. */
static void test_v2_fallback_to_top(void **state)
{
	struct fx *f = *state;
	struct sbx_cg_host h;
	v2_tree(f);
	mkdir_p(P(f, "user.slice/app.service/cgroup.subtree_control"));
	assert_int_equal(sbx_cg_detect(f->root, f->proc, NULL, &h, NULL), 0);
	assert_int_equal(h.mode, SBX_CG_V2);
	assert_string_equal(h.v2_parent, P(f, "corral"));
	assert_string_equal(get(f->root, "cgroup.subtree_control"), "+memory +pids +cpu");
	assert_string_equal(get(h.v2_parent, "cgroup.subtree_control"), "+memory +pids +cpu");
	assert_false(exists(f->root, "user.slice/app.service/corral"));
}

/* ---- (2) hybrid, like the dev machines ------------------------------------------------- */

static void test_v1_hybrid(void **state)
{
	struct fx *f = *state;
	struct sbx_cg_host h;
	struct cr_err err = {0};
	hybrid_tree(f);
	put(f->root, "memory/process_api/abc/corral/memory.memsw.limit_in_bytes", "-1\n");
	assert_int_equal(sbx_cg_detect(f->root, f->proc, NULL, &h, &err), 0);
	assert_int_equal(h.mode, SBX_CG_V1);
	assert_string_equal(h.v1_memory, P(f, "memory/process_api/abc/corral"));
	assert_string_equal(h.v1_pids, P(f, "pids/corral"));
	assert_string_equal(h.v1_cpu, P(f, "cpu/corral"));
	assert_string_equal(h.v1_cpuacct, P(f, "cpuacct/corral"));
	assert_true(h.has_memory && h.has_pids && h.has_cpu && h.has_memsw);
	assert_string_equal(h.note, "");
	assert_false(exists(f->root, "unified/corral")); /* the empty cgroup2 is left alone */
	assert_false(exists(f->root, "unified/cgroup.subtree_control"));

	struct sbx_cg cg;
	assert_int_equal(sbx_cg_create(&h, "7.8.9", &LIM, &cg, &err), 0);
	assert_int_equal(cg.mode, SBX_CG_V1);
	assert_int_equal(sbx_cg_clone_fd(&cg), -1);
	assert_string_equal(cg.v1_memory, P(f, "memory/process_api/abc/corral/7.8.9"));
	assert_string_equal(get(cg.v1_memory, "memory.limit_in_bytes"), "67108864");
	assert_string_equal(get(cg.v1_memory, "memory.memsw.limit_in_bytes"), "67108864");
	assert_string_equal(get(cg.v1_pids, "pids.max"), "8");
	assert_string_equal(get(cg.v1_cpu, "cpu.cfs_period_us"), "100000");
	assert_string_equal(get(cg.v1_cpu, "cpu.cfs_quota_us"), "50000");
	assert_true(exists(cg.v1_cpuacct, ""));

	assert_int_equal(sbx_cg_attach(&cg, 4243, &err), 0);
	assert_string_equal(get(cg.v1_memory, "cgroup.procs"), "4243");
	assert_string_equal(get(cg.v1_pids, "cgroup.procs"), "4243");
	assert_string_equal(get(cg.v1_cpuacct, "cgroup.procs"), "4243");
	const char *dirs[] = {cg.v1_memory, cg.v1_pids, cg.v1_cpu, cg.v1_cpuacct};
	char saved[4][SBX_CG_PATH_MAX];
	for (int i = 0; i < 4; i++) {
		snprintf(saved[i], sizeof saved[i], "%s", dirs[i]);
		empty_dir(saved[i]);
	}
	sbx_cg_destroy(&cg);
	for (int i = 0; i < 4; i++)
		assert_false(exists(saved[i], ""));
}

static void test_v1_no_memsw_and_zero_limits(void **state)
{
	struct fx *f = *state;
	struct sbx_cg_host h;
	struct sbx_cg cg;
	struct sbx_limits zero = {0};
	hybrid_tree(f);
	assert_int_equal(sbx_cg_detect(f->root, f->proc, NULL, &h, NULL), 0);
	assert_false(h.has_memsw);
	assert_int_equal(sbx_cg_create(&h, "7.8.9", &zero, &cg, NULL), 0);
	assert_false(exists(cg.v1_memory, "memory.memsw.limit_in_bytes"));
	assert_string_equal(get(cg.v1_memory, "memory.limit_in_bytes"), "-1");
	assert_string_equal(get(cg.v1_pids, "pids.max"), "max");
	assert_string_equal(get(cg.v1_cpu, "cpu.cfs_quota_us"), "-1");
	sbx_cg_destroy(&cg);
}

static void test_v1_joint_cpu_cpuacct(void **state)
{
	struct fx *f = *state;
	struct sbx_cg_host h;
	struct sbx_cg cg;
	put(f->proc, "mountinfo",
	    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
	    "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n");
	put(f->proc, "cgroup", "3:cpu,cpuacct:/a\n4:memory:/a\n");
	mkdir_p(P(f, "cpu,cpuacct/a"));
	mkdir_p(P(f, "memory/a"));
	assert_int_equal(sbx_cg_detect(f->root, f->proc, NULL, &h, NULL), 0);
	assert_int_equal(h.mode, SBX_CG_V1);
	assert_string_equal(h.v1_cpu, P(f, "cpu,cpuacct/a/corral"));
	assert_string_equal(h.v1_cpu, h.v1_cpuacct);
	assert_false(h.has_pids);
	assert_non_null(strstr(h.note, "pids"));
	assert_int_equal(sbx_cg_create(&h, "1.1.1", &LIM, &cg, NULL), 0); /* one dir for both */
	assert_string_equal(cg.v1_cpu, cg.v1_cpuacct);
	assert_string_equal(get(cg.v1_cpu, "cpu.cfs_quota_us"), "50000");
	put(cg.v1_cpuacct, "cpuacct.usage", "3000000\n");
	struct sbx_cg_stats st;
	sbx_cg_stats(&cg, &st);
	assert_true(st.have_cpu);
	assert_int_equal(st.cpu_usec, 3000);
	sbx_cg_destroy(&cg);
}

/* ---- (3) and (4): nothing usable, or partial ------------------------------------------- */

static void test_none_without_mounts(void **state)
{
	struct fx *f = *state;
	struct sbx_cg_host h;
	struct sbx_cg cg;
	struct cr_err err = {0};
	put(f->proc, "mountinfo", "22 1 259:1 / / rw - ext4 /dev/root rw\n"
				  "24 22 0:22 / /proc rw - proc proc rw\n");
	assert_int_equal(sbx_cg_detect(f->root, f->proc, NULL, &h, &err), 0);
	assert_int_equal(h.mode, SBX_CG_NONE);
	assert_non_null(strstr(h.note, "no cgroup"));
	assert_int_equal(sbx_cg_create(&h, "1.2.3", &LIM, &cg, &err), -ENOTSUP);
	assert_non_null(strstr(err.msg, "unavailable"));
	assert_int_equal(sbx_cg_sweep(&h), 0);
	sbx_cg_destroy(&cg);

	char mi[128];
	snprintf(mi, sizeof mi, "%s/mountinfo", f->proc);
	unlink(mi); /* missing mountinfo: NONE too */
	assert_int_equal(sbx_cg_detect(f->root, f->proc, NULL, &h, &err), 0);
	assert_int_equal(h.mode, SBX_CG_NONE);
	assert_non_null(strstr(h.note, "mountinfo"));
}

static void test_v2_without_memory(void **state)
{
	struct fx *f = *state;
	struct sbx_cg_host h;
	struct sbx_cg cg;
	put(f->proc, "mountinfo", V2_MOUNTINFO);
	put(f->proc, "cgroup", "0::/\n");
	put(f->root, "cgroup.controllers", "cpu io pids\n");
	assert_int_equal(sbx_cg_detect(f->root, f->proc, NULL, &h, NULL), 0);
	assert_int_equal(h.mode, SBX_CG_V2);
	assert_false(h.has_memory);
	assert_true(h.has_pids && h.has_cpu);
	assert_non_null(strstr(h.note, "memory"));
	assert_null(strstr(h.note, "pids"));
	assert_string_equal(get(f->root, "cgroup.subtree_control"), "+pids +cpu");
	assert_int_equal(sbx_cg_create(&h, "1.2.3", &LIM, &cg, NULL), 0);
	assert_false(exists(cg.v2_dir, "memory.max"));
	assert_string_equal(get(cg.v2_dir, "pids.max"), "8");
	sbx_cg_destroy(&cg);
}

static void test_v2_without_any_controller(void **state)
{
	struct fx *f = *state;
	struct sbx_cg_host h;
	put(f->proc, "mountinfo", V2_MOUNTINFO);
	put(f->proc, "cgroup", "0::/a\n");
	put(f->root, "cgroup.controllers", "io\n");
	put(f->root, "a/cgroup.controllers", "");
	assert_int_equal(sbx_cg_detect(f->root, f->proc, NULL, &h, NULL), 0);
	assert_int_equal(h.mode, SBX_CG_NONE);
	assert_non_null(strstr(h.note, "controller"));
	assert_false(exists(f->root, "corral"));
}

/* ---- (5) stats ------------------------------------------------------------------------- */

static void test_stats_v2(void **state)
{
	struct fx *f = *state;
	struct sbx_cg cg;
	struct sbx_cg_stats st;
	sbx_cg_init(&cg);
	cg.mode = SBX_CG_V2;
	cg.created = true;
	snprintf(cg.v2_dir, sizeof cg.v2_dir, "%s", P(f, "s"));
	put(cg.v2_dir, "memory.peak", "123456\n");
	put(cg.v2_dir, "memory.events",
	    "low 0\nhigh 0\nmax 7\noom 2\noom_kill 1\noom_group_kill 0\n");
	put(cg.v2_dir, "pids.events", "max 3\n");
	put(cg.v2_dir, "cpu.stat", "usage_usec 4242\nuser_usec 4000\nsystem_usec 242\n");
	assert_int_equal(sbx_cg_stats(&cg, &st), 0);
	assert_true(st.have_peak && st.have_cpu);
	assert_int_equal(st.peak_memory_bytes, 123456);
	assert_int_equal(st.oom_kills, 1);
	assert_int_equal(st.memory_max_hits, 7);
	assert_int_equal(st.pids_max_hits, 3);
	assert_int_equal(st.cpu_usec, 4242);

	/* Older kernels: no memory.peak -- the rest still counts.  (Files read once stay open:
	 * start again from paths, as a cgroup of such a kernel would.) */
	sbx_cg_stats_close(&cg);
	unlink(P(f, "s/memory.peak"));
	assert_int_equal(sbx_cg_stats(&cg, &st), 0);
	assert_false(st.have_peak);
	assert_int_equal(st.cpu_usec, 4242);
}

/* A created v1 cgroup under f's tree (memory, pids and cpuacct dirs named <tag>m, <tag>p,
 * <tag>a) whose counter files say what the arguments say; memory.memsw.failcnt is absent. */
static void fake_v1_counters(struct fx *f, const char *tag, struct sbx_cg *cg, const char *peak,
			     int oom_kills, const char *failcnt, const char *pids_max,
			     const char *cpu_ns)
{
	char d[16], text[96];
	sbx_cg_init(cg);
	cg->mode = SBX_CG_V1;
	cg->created = true;
	snprintf(d, sizeof d, "%sm", tag);
	snprintf(cg->v1_memory, sizeof cg->v1_memory, "%s", P(f, d));
	snprintf(d, sizeof d, "%sp", tag);
	snprintf(cg->v1_pids, sizeof cg->v1_pids, "%s", P(f, d));
	snprintf(d, sizeof d, "%sa", tag);
	snprintf(cg->v1_cpuacct, sizeof cg->v1_cpuacct, "%s", P(f, d));
	snprintf(text, sizeof text, "%s\n", peak);
	put(cg->v1_memory, "memory.max_usage_in_bytes", text);
	/* "oom_kill_disable" must not be mistaken for "oom_kill" */
	snprintf(text, sizeof text, "oom_kill_disable 0\nunder_oom 0\noom_kill %d\n", oom_kills);
	put(cg->v1_memory, "memory.oom_control", text);
	snprintf(text, sizeof text, "%s\n", failcnt);
	put(cg->v1_memory, "memory.failcnt", text);
	snprintf(text, sizeof text, "max %s\n", pids_max);
	put(cg->v1_pids, "pids.events", text);
	snprintf(text, sizeof text, "%s\n", cpu_ns);
	put(cg->v1_cpuacct, "cpuacct.usage", text);
}

static void test_stats_v1(void **state)
{
	struct fx *f = *state;
	struct sbx_cg cg;
	struct sbx_cg_stats st;
	fake_v1_counters(f, "", &cg, "999424", 2, "5", "4", "5000000");
	assert_int_equal(sbx_cg_stats(&cg, &st), 0);
	assert_true(st.have_peak && st.have_cpu);
	assert_int_equal(st.peak_memory_bytes, 999424);
	assert_int_equal(st.oom_kills, 2);
	assert_int_equal(st.memory_max_hits, 5);
	assert_int_equal(st.pids_max_hits, 4);
	assert_int_equal(st.cpu_usec, 5000);
}

static int open_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* The counter files stay open after the first read; each later read starts from offset 0 and
 * sees what the file says now; nothing leaks; close gives every fd back. */
static void test_stats_keep_their_files_open(void **state)
{
	struct fx *f = *state;
	struct sbx_cg cg;
	struct sbx_cg_stats st;
	fake_v1_counters(f, "k", &cg, "4096", 0, "0", "0", "1000");
	int before = open_fds();
	assert_int_equal(sbx_cg_stats(&cg, &st), 0);
	int kept = open_fds() - before;
	assert_int_equal(kept, 5); /* memory.memsw.failcnt is absent: not kept, tried again */
	/* rewritten in place (as the kernel regenerates them): longer, then shorter values */
	put(cg.v1_memory, "memory.max_usage_in_bytes", "123456789\n");
	put(cg.v1_cpuacct, "cpuacct.usage", "7000\n");
	put(cg.v1_memory, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
	put(cg.v1_memory, "memory.memsw.failcnt", "2\n"); /* appears: now read, and kept */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(sbx_cg_stats(&cg, &st), 0);
		assert_int_equal(st.peak_memory_bytes, 123456789);
		assert_int_equal(st.cpu_usec, 7);
		assert_int_equal(st.oom_kills, 3);
		assert_int_equal(st.memory_max_hits, 2);
		assert_int_equal(open_fds() - before, 6);
	}
	put(cg.v1_memory, "memory.max_usage_in_bytes", "5\n");
	assert_int_equal(sbx_cg_stats(&cg, &st), 0);
	assert_int_equal(st.peak_memory_bytes, 5);
	/* a copy for another process names no fd of ours; closing ours gives them all back */
	struct sbx_cg copy = cg;
	sbx_cg_forget_fds(&copy);
	sbx_cg_stats_close(&copy);
	assert_int_equal(open_fds() - before, 6);
	sbx_cg_stats_close(&cg);
	assert_int_equal(open_fds(), before);
	sbx_cg_stats_close(&cg); /* twice: harmless */
}

/* ---- (6) names ------------------------------------------------------------------------- */

static unsigned long long own_start_time(void)
{
	const char *s = get("/proc/self", "stat");
	assert_non_null(s);
	const char *p = strrchr(s, ')');
	assert_non_null(p);
	p += 2; /* field 3 */
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		assert_non_null(p);
		p++;
	}
	return strtoull(p, NULL, 10);
}

static void test_make_name(void **state)
{
	(void)state;
	char name[64], expect[64];
	sbx_cg_make_name(name, sizeof name, 17);
	snprintf(expect, sizeof expect, "%ld.%llu.17", (long)getpid(), own_start_time());
	assert_string_equal(name, expect);
	char tiny[4];
	sbx_cg_make_name(tiny, sizeof tiny, 1); /* truncates, never overflows */
	assert_int_equal(strlen(tiny), 3);
}

/* ---- (7) sweep ------------------------------------------------------------------------- */

static void test_sweep_v2(void **state)
{
	struct fx *f = *state;
	struct sbx_cg_host h;
	char live[64], reused[64], path[SBX_CG_PATH_MAX + 64];
	v2_tree(f);
	assert_int_equal(sbx_cg_detect(f->root, f->proc, NULL, &h, NULL), 0);
	sbx_cg_make_name(live, sizeof live, 5);
	snprintf(reused, sizeof reused, "%ld.%llu.0", (long)getpid(), own_start_time() + 1);
	const char *keep[] = {live, "notours", "12.34", "1.2.3x", "0.1.2", ".hidden"};
	const char *gone[] = {"2147483647.1.0", reused};
	for (size_t i = 0; i < 6; i++) {
		snprintf(path, sizeof path, "%s/%s", h.v2_parent, keep[i]);
		mkdir(path, 0755);
	}
	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof path, "%s/%s", h.v2_parent, gone[i]);
		mkdir(path, 0755);
	}
	put(h.v2_parent, "2147483646.1.0", "a file, not a cgroup\n");
	assert_int_equal(sbx_cg_sweep(&h), 2);
	for (size_t i = 0; i < 6; i++)
		assert_true(exists(h.v2_parent, keep[i]));
	for (size_t i = 0; i < 2; i++)
		assert_false(exists(h.v2_parent, gone[i]));
	assert_true(exists(h.v2_parent, "2147483646.1.0"));
	assert_int_equal(sbx_cg_sweep(&h), 0);
}

static void test_sweep_v1_counts_names(void **state)
{
	struct fx *f = *state;
	struct sbx_cg_host h;
	char path[SBX_CG_PATH_MAX + 64];
	hybrid_tree(f);
	assert_int_equal(sbx_cg_detect(f->root, f->proc, NULL, &h, NULL), 0);
	const char *par[] = {h.v1_memory, h.v1_pids, h.v1_cpu, h.v1_cpuacct};
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof path, "%s/2147483647.5.1", par[i]);
		assert_int_equal(mkdir(path, 0755), 0);
	}
	snprintf(path, sizeof path, "%s/2147483647.5.2", h.v1_pids); /* only in one hierarchy */
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(sbx_cg_sweep(&h), 2);
	for (int i = 0; i < 4; i++)
		assert_false(exists(par[i], "2147483647.5.1"));
	assert_false(exists(h.v1_pids, "2147483647.5.2"));
}

/* ---- (8) parent override --------------------------------------------------------------- */

static void test_override_v2(void **state)
{
	struct fx *f = *state;
	struct sbx_cg_host h;
	struct cr_err err = {0};
	char full[SBX_CG_PATH_MAX];
	v2_tree(f);
	put(f->root, "ci/corral-test/cgroup.controllers", "memory pids cpu\n");
	assert_int_equal(sbx_cg_detect(f->root, f->proc, "/ci/corral-test", &h, &err), 0);
	assert_int_equal(h.mode, SBX_CG_V2);
	assert_string_equal(h.v2_parent, P(f, "ci/corral-test"));
	assert_string_equal(get(h.v2_parent, "cgroup.subtree_control"), "+memory +pids +cpu");
	assert_false(exists(f->root, "user.slice/app.service/corral"));

	/* The same as a filesystem path under the (rebased) mount. */
	snprintf(full, sizeof full, "%s/ci/corral-test", f->root);
	assert_int_equal(sbx_cg_detect(f->root, f->proc, full, &h, &err), 0);
	assert_string_equal(h.v2_parent, P(f, "ci/corral-test"));

	/* An override without controllers: NONE, saying where. */
	assert_int_equal(sbx_cg_detect(f->root, f->proc, "/other", &h, &err), 0);
	assert_int_equal(h.mode, SBX_CG_NONE);
	assert_non_null(strstr(h.note, "other"));

	assert_int_equal(sbx_cg_detect(f->root, f->proc, "/ci/../../etc", &h, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "cgroup parent"));
}

static void test_override_v1(void **state)
{
	struct fx *f = *state;
	struct sbx_cg_host h;
	hybrid_tree(f);
	assert_int_equal(sbx_cg_detect(f->root, f->proc, "/ci/x", &h, NULL), 0);
	assert_int_equal(h.mode, SBX_CG_V1);
	assert_string_equal(h.v1_memory, P(f, "memory/ci/x"));
	assert_string_equal(h.v1_pids, P(f, "pids/ci/x"));
	assert_string_equal(h.v1_cpu, P(f, "cpu/ci/x"));
	assert_string_equal(h.v1_cpuacct, P(f, "cpuacct/ci/x"));
	assert_true(exists(h.v1_memory, ""));
	assert_false(exists(f->root, "memory/process_api/abc/corral"));
}

/* ---- (9) garbage and failures ---------------------------------------------------------- */

static void test_garbage_mountinfo(void **state)
{
	struct fx *f = *state;
	struct sbx_cg_host h;
	put(f->proc, "mountinfo", "garbage\n\n- - - -\n1 2 3 4 5 6 - cgroup2\n"
				  "1 2 3 \\777 /sys/fs/cgroup 6 - cgroup\n\x01\xff\n"
				  "1 2 3 / /elsewhere o - cgroup2 cgroup2 rw\n");
	put(f->proc, "cgroup", "::::\nnocolon\n0::relative\n");
	assert_int_equal(sbx_cg_detect(f->root, f->proc, NULL, &h, NULL), 0);
	assert_int_equal(h.mode, SBX_CG_NONE);
	assert_true(h.note[0] != '\0');

	/* Bigger than the 1 MiB cap: refused, not read forever. */
	char path[256];
	snprintf(path, sizeof path, "%s/mountinfo", f->proc);
	assert_int_equal(truncate(path, 2 << 20), 0);
	assert_int_equal(sbx_cg_detect(f->root, f->proc, NULL, &h, NULL), 0);
	assert_int_equal(h.mode, SBX_CG_NONE);
	assert_non_null(strstr(h.note, "1 MiB"));

	/* A garbled own-cgroup file: the hierarchy's top is used, never a path outside it. */
	put(f->proc, "mountinfo", V2_MOUNTINFO);
	put(f->root, "cgroup.controllers", "memory pids cpu\n");
	put(f->proc, "cgroup", "0::/../../../etc\n");
	assert_int_equal(sbx_cg_detect(f->root, f->proc, NULL, &h, NULL), 0);
	assert_int_equal(h.mode, SBX_CG_V2);
	assert_string_equal(h.v2_parent, P(f, "corral"));
	assert_int_equal(sbx_cg_detect(f->root, f->proc, NULL, NULL, NULL), -EINVAL);
}

static void test_garbage_stats_and_procs(void **state)
{
	struct fx *f = *state;
	struct sbx_cg cg;
	struct sbx_cg_stats st;
	sbx_cg_init(&cg);
	cg.mode = SBX_CG_V2;
	cg.created = true;
	snprintf(cg.v2_dir, sizeof cg.v2_dir, "%s", P(f, "g"));
	mkdir_p(cg.v2_dir);
	assert_int_equal(sbx_cg_stats(&cg, &st), -ENOENT); /* nothing there at all */
	put(cg.v2_dir, "memory.peak", "12abc\n");
	put(cg.v2_dir, "cpu.stat", "usage_usec 10\n");
	assert_int_equal(sbx_cg_stats(&cg, &st), -EINVAL);
	assert_false(st.have_peak);
	assert_true(st.have_cpu); /* the good file is still read */
	put(cg.v2_dir, "memory.peak", "99999999999999999999999\n");
	assert_int_equal(sbx_cg_stats(&cg, &st), -ERANGE);
	put(cg.v2_dir, "memory.peak", "1\n");
	put(cg.v2_dir, "memory.events", "oom_kill x\n");
	assert_int_equal(sbx_cg_stats(&cg, &st), -EINVAL);
	put(cg.v2_dir, "memory.events", "oom_kill\n");
	assert_int_equal(sbx_cg_stats(&cg, &st), 0); /* key without value: absent */

	/* Nothing here may be signalled: not garbage, not pid 0/1/negative, not ourselves. */
	char procs[128];
	snprintf(procs, sizeof procs, "abc\n-3\n0\n1\n%ld\n99999999999999999999\n\n",
		 (long)getpid());
	put(cg.v2_dir, "cgroup.procs", procs);
	assert_int_equal(sbx_cg_kill(&cg), 0);

	sbx_cg_init(&cg); /* not created: every call is safe */
	assert_int_equal(sbx_cg_stats(&cg, &st), -ENOTSUP);
	assert_int_equal(sbx_cg_kill(&cg), 0);
	assert_true(sbx_cg_attach(&cg, 1234, NULL) < 0);
	assert_int_equal(sbx_cg_clone_fd(&cg), -1);
	sbx_cg_destroy(&cg);
	sbx_cg_destroy(NULL);
}

static void test_create_refusals(void **state)
{
	struct fx *f = *state;
	struct sbx_cg_host h;
	struct sbx_cg cg;
	struct cr_err err = {0};
	v2_tree(f);
	assert_int_equal(sbx_cg_detect(f->root, f->proc, NULL, &h, NULL), 0);
	const char *bad[] = {"", ".", "..", "../x", "a/b", ".hidden", "x y"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(sbx_cg_create(&h, bad[i], &LIM, &cg, &err), -EINVAL);
	struct sbx_limits l = LIM;
	l.cpus = -1;
	assert_int_equal(sbx_cg_create(&h, "1.1.1", &l, &cg, &err), -EINVAL);
	l.cpus = NAN;
	assert_int_equal(sbx_cg_create(&h, "1.1.1", &l, &cg, &err), -EINVAL);
	assert_false(exists(h.v2_parent, "1.1.1"));

	/* A name already taken is never adopted nor removed. */
	put(h.v2_parent, "1.1.2/marker", "x");
	assert_int_equal(sbx_cg_create(&h, "1.1.2", &LIM, &cg, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "1.1.2"));
	assert_true(exists(h.v2_parent, "1.1.2/marker"));
	sbx_cg_destroy(&cg);
	assert_true(exists(h.v2_parent, "1.1.2/marker"));
	assert_int_equal(sbx_cg_attach(&cg, 0, &err), -EINVAL);
}

/* v1: a hierarchy that fails half way leaves nothing behind in the others. */
static void test_v1_create_undo(void **state)
{
	struct fx *f = *state;
	struct sbx_cg_host h;
	struct sbx_cg cg;
	struct cr_err err = {0};
	hybrid_tree(f);
	assert_int_equal(sbx_cg_detect(f->root, f->proc, NULL, &h, NULL), 0);
	assert_int_equal(rmdir(h.v1_cpu), 0);
	assert_int_equal(sbx_cg_create(&h, "3.3.3", &LIM, &cg, &err), -ENOENT);
	assert_false(exists(h.v1_memory, "3.3.3"));
	assert_false(exists(h.v1_pids, "3.3.3"));
	assert_int_equal(cg.mode, SBX_CG_NONE);
	assert_string_equal(cg.v1_memory, "");
}

static void test_helpers(void **state)
{
	(void)state;
	uint64_t v, q;
	assert_int_equal(sbx_cgi_kv_u64("oom_kill_disable 0\noom_kill 3", "oom_kill", &v), 0);
	assert_int_equal(v, 3);
	assert_int_equal(sbx_cgi_kv_u64("a 1\n", "b", &v), -ENOENT);
	assert_int_equal(sbx_cgi_kv_u64("", "b", &v), -ENOENT);
	assert_int_equal(sbx_cgi_parse_u64("18446744073709551615\n", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(sbx_cgi_parse_u64("18446744073709551616", &v), -ERANGE);
	assert_int_equal(sbx_cgi_parse_u64("", &v), -EINVAL);
	assert_int_equal(sbx_cgi_parse_u64(" 1", &v), -EINVAL);
	assert_int_equal(sbx_cgi_parse_u64("-1", &v), -EINVAL);
	assert_true(sbx_cgi_has_word("rw,cpu,cpuacct", "cpuacct"));
	assert_true(sbx_cgi_has_word("cpuset cpu io", "cpu"));
	assert_false(sbx_cgi_has_word("cpuset io", "cpu"));
	assert_false(sbx_cgi_has_word("", "cpu"));
	assert_int_equal(sbx_cgi_cpu_quota(0.5, &q), 0);
	assert_int_equal(q, 50000);
	assert_int_equal(sbx_cgi_cpu_quota(0.001, &q), 0);
	assert_int_equal(q, 1000); /* kernel minimum */
	assert_int_equal(sbx_cgi_cpu_quota(0, &q), 0);
	assert_int_equal(q, 0);
	assert_int_equal(sbx_cgi_cpu_quota(INFINITY, &q), -EINVAL);
	assert_true(sbx_cgi_rel_ok("a/b/c") && sbx_cgi_rel_ok("") && sbx_cgi_rel_ok("/a//b/"));
	assert_false(sbx_cgi_rel_ok("a/../b") || sbx_cgi_rel_ok("..") || sbx_cgi_rel_ok("./a"));
}

static void test_read_cap(void **state)
{
	struct fx *f = *state;
	char big[SBX_CGI_SMALL + 10], buf[SBX_CGI_SMALL];
	memset(big, '7', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	put(f->root, "big", big);
	assert_int_equal(sbx_cgi_read(f->root, "big", buf, sizeof buf), -EFBIG);
	assert_int_equal(strlen(buf), sizeof buf - 1);
	uint64_t v;
	assert_int_equal(sbx_cgi_read_u64(NULL, f->root, "big", &v), -EINVAL);
	assert_int_equal(sbx_cgi_read(f->root, "missing", buf, sizeof buf), -ENOENT);
	assert_int_equal(sbx_cgi_read(f->root, "big", buf, 1), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_v2_detect_and_limits),
		T(test_v2_no_swap_file_no_swap_write),
		T(test_v2_fallback_to_top),
		T(test_v1_hybrid),
		T(test_v1_no_memsw_and_zero_limits),
		T(test_v1_joint_cpu_cpuacct),
		T(test_none_without_mounts),
		T(test_v2_without_memory),
		T(test_v2_without_any_controller),
		T(test_stats_v2),
		T(test_stats_v1),
		T(test_stats_keep_their_files_open),
		T(test_make_name),
		T(test_sweep_v2),
		T(test_sweep_v1_counts_names),
		T(test_override_v2),
		T(test_override_v1),
		T(test_garbage_mountinfo),
		T(test_garbage_stats_and_procs),
		T(test_create_refusals),
		T(test_v1_create_undo),
		T(test_helpers),
		T(test_read_cap),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
