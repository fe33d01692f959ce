/* cli/cmd_doctor.c -- `corral doctor`: what this machine supports, and what to do about it.
 *
 * Each check prints one line: "ok", "warn" (works, with a caveat) or "FAIL" (and how to fix).
 * Exit status 0 only when everything the defaults need works.  Checks that need a process in
 * new namespaces run in a forked child, so doctor itself changes nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/path.h"
#include "sandbox/cgroup.h"
#include "sandbox/sandbox.h"
#include "sandbox/seccomp_policy.h"

static int failures, warnings;

static void line(const char *status, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void line(const char *status, const char *what, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	printf("%-5s %-18s %s\n", status, what, msg);
	if (!strcmp(status, "FAIL"))
		failures++;
	else if (!strcmp(status, "warn"))
		warnings++;
}

/* Runs fn in a forked child; returns the child's exit code (or 128+signal). */
static int in_child(int (*fn)(void *), void *arg)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		return 127;
	if (pid == 0)
		_exit(fn(arg));
	int st;
	if (waitpid(pid, &st, 0) < 0)
		return 127;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int try_unshare(void *arg)
{
	int flag = *(int *)arg;
	if (geteuid() != 0 && flag != CLONE_NEWUSER)
		flag |= CLONE_NEWUSER;
	return unshare(flag) == 0 ? 0 : errno;
}

static void check_namespaces(void)
{
	static const struct { int flag; const char *name; } NS[] = {
		{CLONE_NEWNS, "mount"}, {CLONE_NEWPID, "pid"}, {CLONE_NEWNET, "net"},
		{CLONE_NEWIPC, "ipc"},  {CLONE_NEWUTS, "uts"}, {CLONE_NEWCGROUP, "cgroup"},
		{CLONE_NEWUSER, "user"},
	};
	char ok[128] = "", bad[256] = "";
	bool user_ok = true, all_needed = true;
	for (size_t i = 0; i < sizeof NS / sizeof *NS; i++) {
		int flag = NS[i].flag;
		int r = in_child(try_unshare, &flag);
		char *dst = r == 0 ? ok : bad;
		size_t len = strlen(dst);
		snprintf(dst + len, (r == 0 ? sizeof ok : sizeof bad) - len, "%s%s%s%s",
			 len ? " " : "", NS[i].name, r ? ":" : "", r ? strerror(r) : "");
		if (r && flag == CLONE_NEWUSER)
			user_ok = false;
		else if (r)
			all_needed = false;
	}
	if (all_needed)
		line("ok", "namespaces", "%s", ok);
	else
		line("FAIL", "namespaces", "unavailable: %s (needs a kernel with namespaces; in a "
					   "container, run corral with --privileged or on the host)", bad);
	if (!user_ok && geteuid() != 0)
		line("FAIL", "user namespaces", "required when not root: enable with sysctl "
						"kernel.unprivileged_userns_clone=1 or run as root");
	else if (!user_ok)
		line("ok", "user namespaces", "unavailable, not needed as root");
}

static void check_cgroups(void)
{
	struct sbx_cg_host host;
	struct cr_err err = {0};
	if (sbx_cg_detect(NULL, NULL, getenv("CORRAL_CGROUP_PARENT"), &host, &err) < 0 ||
	    host.mode == SBX_CG_NONE) {
		line("FAIL", "cgroups", "no usable cgroup controllers: %s. Memory, pids and cpu "
					"limits cannot be enforced (run as root, or delegate a cgroup v2 "
					"subtree and set CORRAL_CGROUP_PARENT)",
		     host.mode == SBX_CG_NONE ? host.note : err.msg);
		return;
	}
	const char *mode = host.mode == SBX_CG_V2 ? "v2 (unified)" : "v1 (legacy/hybrid)";
	char where[SBX_CG_PATH_MAX + 8];
	snprintf(where, sizeof where, "%s", host.mode == SBX_CG_V2 ? host.v2_parent : host.v1_memory);
	/* Prove it: create and remove a cgroup with the default limits. */
	struct sbx_cg cg;
	sbx_cg_init(&cg);
	char name[96];
	sbx_cg_make_name(name, sizeof name, 999999);
	if (sbx_cg_create(&host, name, &sbx_limits_default, &cg, &err) < 0) {
		line("FAIL", "cgroups", "%s detected under %s, but creating one failed: %s", mode, where,
		     err.msg);
		return;
	}
	sbx_cg_destroy(&cg);
	if (!host.has_memory || !host.has_pids)
		line("FAIL", "cgroups", "%s: missing controller(s):%s%s", mode,
		     host.has_memory ? "" : " memory", host.has_pids ? "" : " pids");
	else
		line(host.has_cpu ? "ok" : "warn", "cgroups", "%s, memory pids%s%s under %s", mode,
		     host.has_cpu ? " cpu" : " (no cpu controller: --cpus unavailable)",
		     host.has_memsw || host.mode == SBX_CG_V2 ? "" : " (no memsw: swap not capped)",
		     where);
}

static int try_seccomp(void *arg)
{
	(void)arg;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return 1;
	char why[64];
	if (sbx_seccomp_load(why, sizeof why) < 0)
		return 2;
	/* the filter is live: a denied call must now fail with EPERM */
	return syscall(SYS_unshare, 0) < 0 && errno == EPERM ? 0 : 3;
}

static void check_kernel_features(void)
{
	const struct scmp_version *v = seccomp_version();
	int r = in_child(try_seccomp, NULL);
	if (r == 0)
		line("ok", "seccomp", "filter loads and denies (libseccomp %u.%u.%u)", v->major,
		     v->minor, v->micro);
	else
		line("FAIL", "seccomp", "the filter could not be loaded or did not deny (code %d); "
					"a kernel with CONFIG_SECCOMP_FILTER is required", r);
	/* the program was compiled when corral was built: is it still the table's? */
	size_t built = 0, fresh = 0;
	char why[64] = "";
	int cur = sbx_seccomp_builtin_is_current(&built, &fresh, why, sizeof why);
	if (cur < 0)
		line("warn", "seccomp", "cannot compile the policy table to compare (%s)", why);
	else if (!cur)
		line("warn", "seccomp", "the built-in filter (%zu instructions) differs from what "
					"this libseccomp compiles (%zu): rebuild corral (make)",
		     built, fresh);
	else
		line("ok", "seccomp", "built-in filter (%zu instructions) is the policy table as "
				      "compiled here", built);
	if (cr_have_openat2())
		line("ok", "openat2", "RESOLVE_BENEATH path resolution available");
	else
		line("warn", "openat2", "missing (kernel < 5.6): the slower component walk is used");
	errno = 0;
	long m = syscall(SYS_mount_setattr, -1, "", 0, NULL, 0);
	if (m < 0 && errno == ENOSYS)
		line("FAIL", "mount_setattr", "missing (kernel < 5.12): required for read-only mounts");
	else
		line("ok", "mount_setattr", "available");
	errno = 0;
	long c = syscall(SYS_clone3, NULL, 0);
	if (c < 0 && errno == ENOSYS)
		line("warn", "clone3", "missing (kernel < 5.3): a cgroup is joined after clone");
	else
		line("ok", "clone3", "available (children are born inside their cgroup on v2)");
}

static void check_python(void)
{
	struct stat st;
	if (stat("/usr/bin/python3", &st) < 0) {
		line("FAIL", "python3", "/usr/bin/python3 missing: apt-get install python3 (or make deps)");
		return;
	}
	/* Through the real sandbox with the defaults: what the engine's image needs. */
	struct sbx_config cfg;
	sbx_config_init(&cfg);
	static char py[] = "/usr/bin/python3", dash_c[] = "-c";
	static char code[] =
			"import sys, numpy, pandas, matplotlib\n"
			"import matplotlib.pyplot as plt\n"
			"from matplotlib import font_manager as fm\n"
			"n = len(fm.fontManager.ttflist)\n"
			"try:\n    import scipy; s = scipy.__version__\nexcept ImportError:\n    s = 'absent'\n"
			"print('python %d.%d numpy %s pandas %s matplotlib %s scipy %s fonts %d' % ("
			"sys.version_info[0], sys.version_info[1], numpy.__version__, "
			"pandas.__version__, matplotlib.__version__, s, n))\n";
	char *argv[] = {py, dash_c, code, NULL};
	cfg.argv = argv;
	cfg.limits.timeout_ms = 60000;
	struct sbx_result res;
	struct cr_err err = {0};
	if (sbx_run(&cfg, &res, &err) < 0) {
		line("FAIL", "python image", "%s", err.msg);
		return;
	}
	if (res.status == SBX_OK) {
		char *nl = res.out.data ? strchr(res.out.data, '\n') : NULL;
		if (nl)
			*nl = '\0';
		line("ok", "python image", "in the sandbox: %s", res.out.data ? res.out.data : "");
	} else if (res.status == SBX_SANDBOX_ERROR) {
		line("FAIL", "python image", "the sandbox could not start: %s", res.error_msg);
	} else {
		char tail[200] = "";
		if (res.err.len) {
			const char *last = res.err.data + res.err.len - 1;
			while (last > res.err.data && last[-1] != '\n')
				last--;
			snprintf(tail, sizeof tail, "%s", last);
		}
		line("FAIL", "python image", "numpy/pandas/matplotlib not importable (%s): %s -- "
					     "apt-get install python3-numpy python3-pandas "
					     "python3-matplotlib (or make deps)",
		     sbx_status_name(res.status), tail);
	}
	sbx_result_free(&res);
}

int cmd_doctor(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--seccomp")) {
		fflush(stdout);
		return sbx_seccomp_export_pfc(1) < 0 ? 1 : 0;
	}
	if (argc > 1) {
		if (!strcmp(argv[1], "--help")) {
			puts("usage: corral doctor [--seccomp]\n\nChecks every facility the sandbox needs "
			     "and prints what works, what doesn't, and what to do.\n--seccomp prints the "
			     "compiled seccomp policy.");
			return 0;
		}
		return cli_usage_error("doctor: unknown option '%s'", argv[1]);
	}
	printf("corral doctor: %s, uid %u\n", geteuid() == 0 ? "running as root" : "unprivileged",
	       (unsigned)geteuid());
	check_namespaces();
	check_cgroups();
	check_kernel_features();
	check_python();
	printf("%s: %d failure(s), %d warning(s)\n", failures ? "not ready" : "ready", failures,
	       warnings);
	return failures ? 1 : 0;
}
