/* sandbox/contain.c -- the child's checklist, the payload's exec, and the init that reaps.
 *
 * Theory of operation (one sandbox = three kinds of process):
 *   supervisor   corral itself, outside; owns the cgroup, the pipes and the verdict.
 *   init         PID 1 of the new pid namespace.  Runs the checklist below, forks the payload,
 *                reaps every orphan, reports the payload's wait status and exits -- which makes
 *                the kernel kill everything left in the namespace (daemons, orphans).  It
 *                holds no secret, is not dumpable (no /proc/1/mem), and dies with its
 *                supervisor (PDEATHSIG + the control socket's hangup).
 *   payload      the user's program (exec) or, for the engine, a warm interpreter (no exec).
 *
 * The checklist is linear and ordered; seccomp is last because it also forbids the calls
 * the earlier steps make.  Any failure reports {step, errno, detail} on the control socket
 * and exits: nothing ever runs half-contained.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <grp.h>

#include "sandbox/contain.h"
#include "sandbox/mounts.h"
#include "sandbox/seccomp_policy.h"

#define CTL_FD 3

int sbx_send_fd(int ctl, uint32_t type, int fd)
{
	struct sbx_msg m;
	memset(&m, 0, sizeof m);
	m.type = type;
	struct iovec iov = {.iov_base = &m, .iov_len = sizeof m};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof u);
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof u.buf};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof fd);
	return sendmsg(ctl, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static void step_wait_go(int ctl)
{
	struct sbx_msg m;
	ssize_t n;
	do {
		n = recv(ctl, &m, sizeof m, 0);
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof m || m.type != SBX_MSG_GO)
		_exit(125); /* the supervisor is gone or refused: nothing to report to */
}

static void step_fds(const struct sbx_plan *p, int ctl)
{
	/* Keep 1, 2 (the supervisor's pipes), the control socket, the engine's channel fds and
	 * the init program; close everything else that may have been inherited.  stdin becomes
	 * /dev/null. */
	if (syscall(SYS_close_range, SBX_INIT_EXE_FD(p) + (p->init_exe ? 1 : 0), ~0U, 0) < 0)
		sbx_child_fail(ctl, "close-fds", errno, "close_range");
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0)
		sbx_child_fail(ctl, "stdin", errno, "/dev/null");
	close(null);
}

static void step_rlimits(const struct sbx_plan *p, int ctl)
{
	const struct sbx_limits *l = &p->limits;
	struct rlimit r;
	r.rlim_cur = r.rlim_max = l->nofile;
	if (l->nofile && setrlimit(RLIMIT_NOFILE, &r) < 0)
		sbx_child_fail(ctl, "rlimits", errno, "RLIMIT_NOFILE");
	r.rlim_cur = r.rlim_max = l->file_size_bytes ? l->file_size_bytes : RLIM_INFINITY;
	if (setrlimit(RLIMIT_FSIZE, &r) < 0)
		sbx_child_fail(ctl, "rlimits", errno, "RLIMIT_FSIZE");
	if (l->cpu_time_ms) {
		/* Soft limit sends SIGXCPU, the hard one a second later SIGKILL. */
		r.rlim_cur = (l->cpu_time_ms + 999) / 1000;
		r.rlim_max = r.rlim_cur + 1;
		if (setrlimit(RLIMIT_CPU, &r) < 0)
			sbx_child_fail(ctl, "rlimits", errno, "RLIMIT_CPU");
	}
	r.rlim_cur = r.rlim_max = 0;
	if (setrlimit(RLIMIT_CORE, &r) < 0)
		sbx_child_fail(ctl, "rlimits", errno, "RLIMIT_CORE");
}

static void step_drop_privileges(const struct sbx_plan *p, int ctl)
{
	/* Bounding set first: dropping it needs CAP_SETPCAP, which the uid change takes away. */
	for (int cap = 0; cap <= 63; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0)
			continue;
		if (errno == EINVAL && cap >= 32)
			break; /* past the kernel's last capability (every kernel has 32 and more) */
		sbx_child_fail(ctl, "drop-caps", errno, "bounding set");
	}
	if (!p->userns && setgroups(0, NULL) < 0)
		sbx_child_fail(ctl, "drop-ids", errno, "setgroups");
	if (setresgid(p->gid, p->gid, p->gid) < 0)
		sbx_child_fail(ctl, "drop-ids", errno, "setresgid");
	if (setresuid(p->uid, p->uid, p->uid) < 0)
		sbx_child_fail(ctl, "drop-ids", errno, "setresuid");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		sbx_child_fail(ctl, "drop-caps", errno, "ambient");
	/* In a user namespace the uid did not change, so the kernel kept our capabilities:
	 * clear permitted, effective and inheritable explicitly in every case. */
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof data);
	if (syscall(SYS_capset, &hdr, data) < 0)
		sbx_child_fail(ctl, "drop-caps", errno, "capset");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		sbx_child_fail(ctl, "no-new-privs", errno, "PR_SET_NO_NEW_PRIVS");
	/* The credential change cleared the parent-death signal: set it again. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		sbx_child_fail(ctl, "pdeathsig", errno, "PR_SET_PDEATHSIG");
}

/* Steps 3-8, between GO and the privileges. */
static void steps_root_to_priority(const struct sbx_plan *p, int ctl)
{
	/* 3. the filesystem: new root, system dirs read-only, /proc /dev /tmp /output, mounts */
	sbx_build_root(p, ctl);
	/* 4. descriptors: only stdio and the control socket survive */
	step_fds(p, ctl);
	/* 5. identity of the machine */
	if (sethostname("corral", 6) < 0 || setdomainname("corral", 6) < 0)
		sbx_child_fail(ctl, "hostname", errno, "sethostname");
	/* 6. resource limits the cgroup does not cover */
	step_rlimits(p, ctl);
	/* 7. own session: no controlling terminal, signals to our group stay inside */
	if (setsid() < 0)
		sbx_child_fail(ctl, "setsid", errno, "setsid");
	/* 8. priority: spawned in the background, run in the foreground (needs CAP_SYS_NICE) */
	if (p->set_nice && setpriority(PRIO_PROCESS, 0, p->nice) < 0 && !p->userns)
		sbx_child_fail(ctl, "priority", errno, "setpriority");
}

void sbx_contain(const struct sbx_plan *p, int ctl)
{
	/* 1. die with the supervisor, from the first instant */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		sbx_child_fail(ctl, "pdeathsig", errno, "PR_SET_PDEATHSIG");
	/* 2. wait until the supervisor has put us in our cgroup (and written id maps) */
	step_wait_go(ctl);
	if (p->magic != SBX_PLAN_MAGIC)
		sbx_child_fail(ctl, "plan", EINVAL, "plan layout mismatch");
	steps_root_to_priority(p, ctl);
	/* 9. privileges: ids, capabilities, no_new_privs */
	step_drop_privileges(p, ctl);
	/* 10. seccomp, last: it also forbids mount, unshare and friends used above */
	char why[64] = "";
	int r = sbx_seccomp_load(why, sizeof why);
	if (r < 0)
		sbx_child_fail(ctl, "seccomp", -r, why);
}

/* GO for sbx_contain_early: the header and an fd of the network namespace made for us
 * (SCM_RIGHTS). */
static void recv_go(int ctl, struct sbx_go *go)
{
	struct iovec iov = {.iov_base = &go->msg, .iov_len = sizeof go->msg};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof u.buf};
	ssize_t n;
	do {
		n = recvmsg(ctl, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < (ssize_t)sizeof go->msg || go->msg.type != SBX_MSG_GO)
		_exit(125); /* the supervisor is gone or refused: nothing to report to */
	go->net_fd = -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
	    c->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&go->net_fd, CMSG_DATA(c), sizeof(int));
	if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || go->net_fd < 0)
		sbx_child_fail(ctl, "go", EPROTO, "malformed GO message");
}

void sbx_contain_early(const struct sbx_plan *p, int ctl, struct sbx_go *go)
{
	/* 1. die with the supervisor, from the first instant */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		sbx_child_fail(ctl, "pdeathsig", errno, "PR_SET_PDEATHSIG");
	if (p->magic != SBX_PLAN_MAGIC)
		sbx_child_fail(ctl, "plan", EINVAL, "plan layout mismatch");
	/* 2'. the namespaces clone did not make (it made pid and cgroup; the supervisor makes the
	 * network namespace meanwhile) */
	if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) < 0)
		sbx_child_fail(ctl, "namespaces", errno, "unshare");
	steps_root_to_priority(p, ctl);
	/* 2. GO: the network namespace is made */
	recv_go(ctl, go);
}

void sbx_contain_late(const struct sbx_plan *p, int ctl, const struct sbx_go *go)
{
	/* 2''. the new network namespace: nothing but lo */
	if (setns(go->net_fd, CLONE_NEWNET) < 0)
		sbx_child_fail(ctl, "namespaces", errno, "setns net");
	close(go->net_fd);
	/* 9. privileges: ids, capabilities, no_new_privs */
	step_drop_privileges(p, ctl);
	/* 10. seccomp, last: it also forbids mount, unshare and friends used above */
	char why[64] = "";
	int r = sbx_seccomp_load(why, sizeof why);
	if (r < 0)
		sbx_child_fail(ctl, "seccomp", -r, why);
}

/* Init's side of starting the payload, once it exists: its own group, READY to the supervisor. */
static void init_payload_started(const struct sbx_plan *p, int ctl, pid_t pid)
{
	setpgid(pid, pid); /* both sides, so a signal sent right away cannot miss */
	if (p->keep_fds) /* the channel belongs to the payload */
		syscall(SYS_close_range, CTL_FD + 1, CTL_FD + p->keep_fds, 0);
	if (!p->init_exe) /* else corral-init says it, once it is the init */
		sbx_init_ready(ctl, pid);
}

/* The payload's side: own process group (the engine's interrupt goes to the payload and
 * whatever it started, never to init), ctl close-on-exec, no blocked signals. */
static void payload_started(const struct sbx_plan *p, int ctl)
{
	setpgid(0, 0);
	if (p->init_exe) /* init's program is init's */
		close(SBX_INIT_EXE_FD(p));
	/* The channel is init's; whatever the payload execs must not hold it. */
	fcntl(ctl, F_SETFD, FD_CLOEXEC);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

pid_t sbx_init_fork(const struct sbx_plan *p, int ctl)
{
	pid_t pid = _Fork();
	if (pid < 0)
		sbx_child_fail(ctl, "fork-payload", errno, "fork");
	if (pid == 0) {
		payload_started(p, ctl);
		return 0;
	}
	init_payload_started(p, ctl, pid);
	return pid;
}

/* Looks a name up in the plan's PATH, like execvpe but with the sandbox's own PATH. */
static void exec_search(const char *file, char *const argv[], char *const envp[])
{
	if (strchr(file, '/')) {
		execve(file, argv, envp);
		return;
	}
	const char *path = "/usr/local/bin:/usr/bin:/bin";
	for (size_t i = 0; envp[i]; i++)
		if (!strncmp(envp[i], "PATH=", 5))
			path = envp[i] + 5;
	int saved = ENOENT;
	char buf[SBX_PATH_MAX];
	while (*path) {
		const char *colon = strchr(path, ':');
		size_t dl = colon ? (size_t)(colon - path) : strlen(path);
		size_t fl = strlen(file);
		if (dl + fl + 2 <= sizeof buf && dl > 0) {
			memcpy(buf, path, dl);
			buf[dl] = '/';
			memcpy(buf + dl + 1, file, fl + 1);
			execve(buf, argv, envp);
			if (errno == EACCES || errno == ENOEXEC || errno == ETXTBSY)
				saved = errno;
		}
		path += dl;
		if (*path == ':')
			path++;
	}
	errno = saved;
}

/* Ignored signals survive exec (corral ignores SIGPIPE): give the program the defaults.
 * Only for an exec -- a warm interpreter that does not exec keeps its own dispositions. */
static void default_signals(void)
{
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
}

static void __attribute__((noreturn)) exec_payload(const struct sbx_plan *p, int ctl)
{
	char *argv[SBX_MAX_ARGS + 1];
	char *envp[SBX_MAX_ENV + 9];
	for (uint32_t i = 0; i < p->argc; i++)
		argv[i] = (char *)p->strings + p->argv_off[i];
	argv[p->argc] = NULL;
	for (uint32_t i = 0; i < p->envc; i++)
		envp[i] = (char *)p->strings + p->envp_off[i];
	envp[p->envc] = NULL;
	exec_search(argv[0], argv, envp);
	sbx_child_fail(ctl, "execve", errno, argv[0]);
}

void sbx_exec_payload(const struct sbx_plan *p, int ctl)
{
	default_signals();
	exec_payload(p, ctl);
}

#ifdef SBX_UNDER_ASAN
#define SPAWN_BY_FORK 1
#endif

#ifndef SPAWN_BY_FORK
struct spawn_arg {
	const struct sbx_plan *plan;
	int ctl;
};

static int spawn_child(void *a)
{
	const struct spawn_arg *sa = a;
	/* Dispositions first, while every signal is still blocked: no handler of init's may
	 * ever run on this borrowed memory. */
	default_signals();
	payload_started(sa->plan, sa->ctl);
	exec_payload(sa->plan, sa->ctl);
}
#endif

pid_t sbx_init_spawn(const struct sbx_plan *p, int ctl)
{
#ifdef SPAWN_BY_FORK
	/* AddressSanitizer does not know a stack it did not make (it warns on the program's
	 * stderr and may report false positives afterwards): a plain fork there. */
	pid_t pid = sbx_init_fork(p, ctl);
	if (pid == 0)
		sbx_exec_payload(p, ctl);
	return pid;
#else
	/* CLONE_VM | CLONE_VFORK, as posix_spawn does: the child runs on init's memory, on a
	 * stack of its own, until its execve, and init sleeps until then.  No page table is
	 * copied and neither side takes copy-on-write faults afterwards: a plain fork of init (a
	 * copy of corral) cost 0.1-1.4 ms here before the payload ran its first instruction. */
	static char stack[64 * 1024] __attribute__((aligned(64)));
	struct spawn_arg sa = {.plan = p, .ctl = ctl};
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid_t pid = clone(spawn_child, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &sa);
	int e = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0)
		sbx_child_fail(ctl, "fork-payload", e, "clone");
	init_payload_started(p, ctl, pid); /* its setpgid fails once the child has exec'd: fine */
	return pid;
#endif
}

void sbx_init_exec(const struct sbx_plan *p, int ctl, pid_t payload)
{
	char pid[16];
	snprintf(pid, sizeof pid, "%d", (int)payload);
	char *argv[] = {(char *)"corral-init", pid, NULL};
	char *envp[] = {NULL};
	/* The fd is close-on-exec: fine for an ELF program (only a script would need it open). */
	int exe = SBX_INIT_EXE_FD(p);
	fcntl(exe, F_SETFD, FD_CLOEXEC);
	syscall(SYS_execveat, exe, "", argv, envp, AT_EMPTY_PATH);
	sbx_child_fail(ctl, "init-exec", errno, "execveat corral-init");
}
