/* sandbox/supervise.c -- sbx_run: build the plan, spawn the sandbox, hand it to the watch, clean up.
 *
 * The supervisor is corral itself.  It creates the cgroup and the channels, clones the init
 * into fresh namespaces (born inside its cgroup on v2 via clone3(CLONE_INTO_CGROUP); attached
 * before it may proceed on v1), sends GO with the network namespace it made meanwhile, and
 * then watches (watch.c: the event loop and the verdict) until init and everything under it
 * is gone.  Then it reads the cgroup's counters, collects /output and
 * removes the cgroup, so nothing can linger.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/log.h"
#include "sandbox/cgroup.h"
#include "sandbox/contain.h"
#include "sandbox/seccomp_policy.h"
#include "sandbox/supervise.h"

#define NS_FLAGS (CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | \
		  CLONE_NEWCGROUP)

uint64_t sbx_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Phase timings for `CORRAL_DEBUG=1 corral run ...` (where the milliseconds go). */
static uint64_t phase_t0_us;
void sbx_phase(const char *what)
{
	if (cr_log_get_level() == CR_LOG_DEBUG) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t us = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
		if (!what) {
			phase_t0_us = us;
			return;
		}
		cr_log(CR_LOG_DEBUG, "%6.2f ms  %s", (double)(us - phase_t0_us) / 1000, what);
	}
}

static const struct sbx_cg_host *cg_host(const char *parent_override)
{
	static struct sbx_cg_host host;
	static char done_for[SBX_CG_PATH_MAX];
	static int done;
	if (!parent_override)
		parent_override = getenv("CORRAL_CGROUP_PARENT");
	if (done && strcmp(done_for, parent_override ? parent_override : ""))
		done = 0; /* a different parent: detect again */
	if (!done) {
		snprintf(done_for, sizeof done_for, "%s", parent_override ? parent_override : "");
		struct cr_err e;
		if (sbx_cg_detect(NULL, NULL, parent_override, &host, &e) < 0) {
			host.mode = SBX_CG_NONE;
			snprintf(host.note, sizeof host.note, "%s", e.msg);
		}
		done = 1;
	}
	return &host;
}

void sbx_sweep_stale(void)
{
	const struct sbx_cg_host *h = cg_host(NULL);
	if (h->mode != SBX_CG_NONE)
		sbx_cg_sweep(h);
}

static char *wipe_start;
static size_t wipe_len;

void sbx_set_wipe_region(char *start, size_t len)
{
	wipe_start = start;
	wipe_len = len;
}

/* How the child is started.  overlap: it builds its namespaces and filesystem (making and
 * joining its own v1 cgroup first, from `host` and `cg_name`) while we make its network
 * namespace (sbx_contain_early).  steer: to really do both at once on two CPUs, the child
 * keeps the CPU we were on (it is cache-warm and needs no wake-up) and we move; `cpus` is the
 * affinity both return to. */
struct start {
	bool overlap, steer, child_makes_cg;
	cpu_set_t cpus;
	const struct sbx_cg_host *host;
	const char *cg_name;
};

/* The child side of clone: arrange fds, contain, start the payload, become init. */
static void __attribute__((noreturn))
child_main(const struct sbx_plan *plan, const struct sbx_cg *cg, const struct start *how, int ctl,
	   int out_w, int err_w)
{
	if (wipe_start)
		explicit_bzero(wipe_start, wipe_len); /* corral's argv and environment */
	if (how->steer)
		sched_setaffinity(0, sizeof how->cpus, &how->cpus); /* stays here until it moves */
	/* dup2 clears close-on-exec: set it again on the control socket, or the payload would
	 * inherit init's channel and could forge setup errors or statuses. */
	if (dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0 || dup2(ctl, 3) < 0 ||
	    fcntl(3, F_SETFD, FD_CLOEXEC) < 0)
		sbx_child_fail(ctl, "fds", errno, "dup2");
	const char *what = "";
	int r;
	if (how->overlap) {
		/* v1: make the cgroup and join it ourselves, first thing (joining is cheap this
		 * way; see sbx_cg_attach_self).  The supervisor removes it afterwards. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
			sbx_child_fail(3, "pdeathsig", errno, "PR_SET_PDEATHSIG");
		if (how->child_makes_cg) {
			struct sbx_cg mine;
			struct cr_err ce = {0};
			r = sbx_cg_create(how->host, how->cg_name, &plan->limits, &mine, &ce);
			if (r < 0) {
				/* the report adds ": <strerror>" itself */
				const char *why = strerror(-r);
				size_t n = strlen(ce.msg), m = strlen(why);
				if (n >= m + 2 && !strcmp(ce.msg + n - m, why))
					ce.msg[n - m - 2] = '\0';
				sbx_child_fail(3, "cgroup", -r, ce.msg);
			}
			r = sbx_cg_attach_self(&mine, &what);
			if (r < 0)
				sbx_child_fail(3, "cgroup-attach", -r, what);
		}
		struct sbx_go go;
		sbx_contain_early(plan, 3, &go);
		sbx_contain_late(plan, 3, &go);
	} else {
		/* v1: join the cgroup ourselves, first thing (cheap; see sbx_cg_attach_self). */
		r = cg->created ? sbx_cg_attach_self(cg, &what) : 0;
		if (r < 0)
			sbx_child_fail(3, "cgroup-attach", -r, what);
		sbx_contain(plan, 3);
	}
	sbx_init_loop(3, sbx_init_spawn(plan, 3));
}

static pid_t spawn(const struct sbx_plan *plan, const struct sbx_cg *cg, const struct start *how,
		   int *pidfd, bool *born_in_cgroup, int ctl, int out_w, int err_w)
{
	int cgfd = sbx_cg_clone_fd(cg);
	uint64_t flags = (how->overlap ? CLONE_NEWPID | CLONE_NEWCGROUP : NS_FLAGS) |
			 (plan->userns ? CLONE_NEWUSER : 0);
	struct clone_args args = {
		.flags = flags | CLONE_PIDFD | (cgfd >= 0 ? CLONE_INTO_CGROUP : 0),
		.pidfd = (uint64_t)(uintptr_t)pidfd,
		.exit_signal = SIGCHLD,
		.cgroup = cgfd >= 0 ? (uint64_t)cgfd : 0,
	};
	long pid = syscall(SYS_clone3, &args, sizeof args);
	*born_in_cgroup = pid >= 0 && cgfd >= 0;
	if (pid < 0 && (errno == ENOSYS || errno == E2BIG)) {
		/* Old kernel: plain clone, then a pidfd (the caller attaches the cgroup). */
		pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
		if (pid > 0)
			*pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	}
	if (pid == 0)
		child_main(plan, cg, how, ctl, out_w, err_w);
	return (pid_t)pid;
}

static int write_file(const char *path, const char *text)
{
	CR_AUTOCLOSE int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t n = strlen(text);
	return write(fd, text, n) == (ssize_t)n ? 0 : -errno;
}

/* Unprivileged mode: map our own uid/gid to SBX_INSIDE_UID in the child's user namespace. */
static int write_id_maps(pid_t pid, struct cr_err *err)
{
	char path[64], map[64];
	snprintf(path, sizeof path, "/proc/%d/setgroups", pid);
	int r = write_file(path, "deny");
	if (r < 0 && r != -ENOENT)
		return cr_fail(err, -r, "write %s", path);
	snprintf(path, sizeof path, "/proc/%d/uid_map", pid);
	snprintf(map, sizeof map, "%u %u 1\n", SBX_INSIDE_UID, (unsigned)geteuid());
	if ((r = write_file(path, map)) < 0)
		return cr_fail(err, -r, "write %s", path);
	snprintf(path, sizeof path, "/proc/%d/gid_map", pid);
	snprintf(map, sizeof map, "%u %u 1\n", SBX_INSIDE_UID, (unsigned)getegid());
	if ((r = write_file(path, map)) < 0)
		return cr_fail(err, -r, "write %s", path);
	return 0;
}

/* cfg->sweep_stale: sbx_sweep_stale() is still to do in this sbx_run. */
static bool sweep_pending;

/* cgroup: real limits where the host allows them; said plainly where it does not. */
static int make_cgroup(const struct sbx_cg_host *host, const char *name,
		       const struct sbx_config *cfg, const struct sbx_plan *plan,
		       struct sbx_result *res, struct sbx_cg *cg)
{
	if (host->mode == SBX_CG_NONE)
		return 0;
	struct cr_err e = {0};
	int cr = sbx_cg_create(host, name, &cfg->limits, cg, &e);
	if (cr < 0 && plan->userns && (cr == -EACCES || cr == -EPERM || cr == -EROFS)) {
		/* Unprivileged without a delegated cgroup: run, but say plainly that the
		 * memory, pids and cpu limits are not enforced. */
		snprintf(res->cgroup_note, sizeof res->cgroup_note,
			 "no writable cgroup for uid %u (%s); delegate one and set "
			 "CORRAL_CGROUP_PARENT", (unsigned)geteuid(), strerror(-cr));
	} else if (cr < 0) {
		sbx_setup_error(res, "cgroup", &e);
		return cr;
	} else {
		res->cgroup_enforced = true;
	}
	sbx_phase("cgroup step done");
	return 0;
}

/* A new network namespace for the child, made here while the child builds the rest: an fd of
 * it, and we return to our own. */
static int make_netns(struct cr_err *err)
{
	CR_AUTOCLOSE int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return cr_fail(err, errno, "open /proc/self/ns/net");
	if (unshare(CLONE_NEWNET) < 0)
		return cr_fail(err, errno, "unshare(CLONE_NEWNET)");
	int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int e = errno;
	if (setns(self, CLONE_NEWNET) < 0) {
		/* not fatal for us (we use no network), but say so: the run fails */
		if (fd >= 0)
			close(fd);
		return cr_fail(err, errno, "setns back to our network namespace");
	}
	return fd >= 0 ? fd : cr_fail(err, e, "open the new network namespace");
}

/* GO.  For sbx_contain_early (net_fd >= 0) with the network namespace attached (SCM_RIGHTS). */
static int send_go(int ctl, int net_fd, struct cr_err *err)
{
	struct sbx_msg go = {.type = SBX_MSG_GO};
	struct iovec iov = {.iov_base = &go, .iov_len = sizeof go};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	if (net_fd >= 0) {
		memset(&u, 0, sizeof u);
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof u.buf;
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &net_fd, sizeof(int));
	}
	return sendmsg(ctl, &mh, MSG_NOSIGNAL) < 0 ? cr_fail(err, errno, "start sandbox") : 0;
}

static int run_sandbox(const struct sbx_config *cfg, struct sbx_result *res, struct cr_err *err)
{
	CR_AUTOFREE struct sbx_plan *plan = malloc(sizeof *plan);
	if (!plan)
		return cr_fail(err, ENOMEM, "plan");
	int r = sbx_plan_build(cfg, plan, err);
	if (r < 0)
		return r;
	sbx_result_init(res, &cfg->limits);
	uint64_t t0 = sbx_now_ms();
	sbx_phase(NULL);
	/* As root, the child builds its namespaces and filesystem (a v1 cgroup first) while we
	 * make its network namespace, which travels with GO (sbx_contain_early).  Unprivileged,
	 * the id maps must be written before the child creates its first file: all of ours
	 * first. */
	static unsigned seq;
	const struct sbx_cg_host *host = cg_host(cfg->cgroup_parent);
	/* v1 without a CPU quota: the cpu hierarchy (when not joint with cpuacct, which gives
	 * cpu_ms) would hold a cgroup with nothing to enforce -- a mkdir, two writes, a join and
	 * an rmdir on the start and exit paths.  Leave it out. */
	struct sbx_cg_host host_here;
	if (host->mode == SBX_CG_V1 && !cfg->limits.cpus && host->v1_cpu[0] &&
	    strcmp(host->v1_cpu, host->v1_cpuacct)) {
		host_here = *host;
		host_here.v1_cpu[0] = '\0';
		host = &host_here;
	}
	struct start how = {.overlap = !plan->userns, .host = host};
	struct sbx_cg cg;
	sbx_cg_init(&cg);
	struct cr_err e = {0};
	char name[96] = "";
	if (host->mode != SBX_CG_NONE)
		sbx_cg_make_name(name, sizeof name, seq++);
	else
		snprintf(res->cgroup_note, sizeof res->cgroup_note, "%s", host->note);
	/* v2 children are born in their cgroup (clone3): then we make it, first */
	how.child_makes_cg = how.overlap && host->mode == SBX_CG_V1;
	how.cg_name = name;
	if (!how.child_makes_cg && make_cgroup(host, name, cfg, plan, res, &cg) < 0)
		return 0;
	if (how.child_makes_cg) {
		sbx_cg_plan(host, name, &cg); /* ours to read, kill and remove */
		cg.created = true;
		res->cgroup_enforced = true; /* or the child reports why not, and nothing runs */
	}

	int sv[2], outp[2], errp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		cr_fail(&e, errno, "socketpair");
		sbx_cg_destroy(&cg);
		sbx_setup_error(res, "channels", &e);
		return 0;
	}
	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		cr_fail(&e, errno, "pipe");
		close(sv[0]);
		close(sv[1]);
		sbx_cg_destroy(&cg);
		sbx_setup_error(res, "channels", &e);
		return 0;
	}
	int cpu = how.overlap ? sched_getcpu() : -1;
	cpu_set_t here;
	CPU_ZERO(&here);
	if (cpu >= 0 && cpu < CPU_SETSIZE) {
		CPU_SET(cpu, &here);
		how.steer = sched_getaffinity(0, sizeof how.cpus, &how.cpus) == 0 &&
			    CPU_ISSET(cpu, &how.cpus) && CPU_COUNT(&how.cpus) > 1 &&
			    sched_setaffinity(0, sizeof here, &here) == 0; /* the child starts here */
	}
	int pidfd = -1;
	CR_AUTOCLOSE int net_fd = -1;
	bool born_in_cgroup = false;
	pid_t pid = spawn(plan, &cg, &how, &pidfd, &born_in_cgroup, sv[1], outp[1], errp[1]);
	int spawn_errno = errno;
	if (how.steer) {
		/* ... and we leave: the rest of the CPUs (back to all of them once GO is sent) */
		cpu_set_t rest = how.cpus;
		CPU_CLR(cpu, &rest);
		if (pid < 0 || sched_setaffinity(0, sizeof rest, &rest) < 0)
			sched_setaffinity(0, sizeof how.cpus, &how.cpus);
	}
	close(sv[1]);
	close(outp[1]);
	close(errp[1]);
	struct sbx_watch w = {.out_r = outp[0], .err_r = errp[0], .ctl = sv[0], .pidfd = pidfd,
			  .cancel_fd = cfg->cancel_fd > 0 ? cfg->cancel_fd : -1, .output_fd = -1,
			  .t0 = t0, .sweep_pending = &sweep_pending};
	if (pid < 0 || pidfd < 0) {
		cr_fail(&e, pid < 0 ? spawn_errno : errno, "clone into new namespaces");
		sbx_setup_error(res, "clone", &e);
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		goto out;
	}
	sbx_phase("cloned");
	fcntl(outp[0], F_SETFL, O_NONBLOCK);
	fcntl(errp[0], F_SETFL, O_NONBLOCK);

	/* Our share while the child builds: its network namespace. */
	if (how.overlap && (net_fd = make_netns(&e)) < 0) {
		sbx_setup_error(res, "namespaces", &e);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		goto out;
	}
	/* Before GO: cgroup membership where the child could not be born in it (v2 without
	 * clone3; v1 children attach themselves) and, unprivileged, the id maps. */
	if (cg.created && cg.mode == SBX_CG_V2 && !born_in_cgroup &&
	    sbx_cg_attach(&cg, pid, &e) < 0) {
		sbx_setup_error(res, "cgroup-attach", &e);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		goto out;
	}
	if (plan->userns && write_id_maps(pid, &e) < 0) {
		sbx_setup_error(res, "id-maps", &e);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		goto out;
	}
	if ((r = send_go(sv[0], net_fd, &e)) < 0 &&
	    (!how.overlap || (r != -EPIPE && r != -ECONNRESET))) {
		sbx_setup_error(res, "go", &e);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		goto out;
	}
	/* (overlap: a child that stopped before GO left its setup error for the loop) */
	if (how.steer)
		sched_setaffinity(0, sizeof how.cpus, &how.cpus);

	sbx_phase("go sent");
	sbx_watch_loop(&w, cfg, pid, &cg, res, t0);
	sbx_phase("init exited, pipes drained");
	if (how.child_makes_cg && w.setup_failed && !strcmp(w.setup_error.step, "cgroup"))
		cg.created = false; /* the child's sbx_cg_create undid its own work, and a
				     * directory it found in the way is not ours to remove */
	int init_status = 0;
	struct rusage ru;
	memset(&ru, 0, sizeof ru);
	if (wait4(pid, &init_status, 0, &ru) < 0)
		init_status = -1;
	res->wall_ms = sbx_now_ms() - t0;

	struct sbx_cg_stats st;
	memset(&st, 0, sizeof st);
	if (cg.created)
		sbx_cg_stats(&cg, &st);
	res->cpu_ms = st.have_cpu ? st.cpu_usec / 1000
				  : (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
					    (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
	res->peak_memory_bytes = st.have_peak ? st.peak_memory_bytes : (uint64_t)ru.ru_maxrss * 1024;
	sbx_phase("reaped, stats read");
	sbx_decide(res, &w, &st, &cfg->limits, init_status);

	if (w.output_fd >= 0 && cfg->output_dir && res->status != SBX_SANDBOX_ERROR)
		sbx_collect_output(w.output_fd, cfg->output_dir, &cfg->limits, res);
out:
	if (how.steer)
		sched_setaffinity(0, sizeof how.cpus, &how.cpus); /* when we left before GO */
	if (w.output_fd >= 0)
		close(w.output_fd);
	if (w.out_r >= 0)
		close(w.out_r);
	if (w.err_r >= 0)
		close(w.err_r);
	if (pidfd >= 0)
		close(pidfd);
	close(sv[0]);
	sbx_cg_destroy(&cg);
	sbx_phase("cgroup destroyed");
	return 0;
}

int sbx_run(const struct sbx_config *cfg, struct sbx_result *res, struct cr_err *err)
{
	sweep_pending = cfg->sweep_stale;
	int r = run_sandbox(cfg, res, err);
	if (sweep_pending) { /* the program never started */
		sweep_pending = false;
		sbx_sweep_stale();
	}
	return r;
}
