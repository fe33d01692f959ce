/* zygote/zygote.c -- corral-zygote: a warm Python interpreter that forks contained sessions.
 *
 * Theory of operation.  The engine manager starts this program by exec with an environment it
 * builds from scratch (it never holds a secret: no key, no token, nothing of the caller's
 * environment) and the control socket on fd 3.  We embed CPython, load the runner (compiled
 * into this binary), let it import the preload set (numpy, pandas, matplotlib/Agg, scipy when
 * present; font cache built in memory), freeze the GC so forks share pages, say READY, and wait.
 *
 * For each SPAWN request we clone straight into fresh namespaces, with CLONE_PARENT so the
 * manager -- not us -- is the parent that supervises and reaps.  The child runs the sandbox's
 * own checklist (sbx_contain: the same code as `corral run`), becomes the namespace's init,
 * forks the session process, which returns into Python: runner.serve(channel), and execs the
 * small static corral-init (init_blob.c, from a sealed memfd) to be PID 1 from then on.  No
 * user code ever runs in this process.
 *
 * The child borrows our memory (CLONE_VM, as vfork does) until that exec: a copy of this
 * address space -- ~600 mappings, ~90 MiB -- was the dearest part of a session's start and,
 * torn down again at init's exit, of its end (about a third of the kernel's work per session,
 * measured).  The session's fork is the one copy left.  One child at a time borrows it, on a
 * stack of its own, and we sleep -- every signal blocked -- until the kernel clears the
 * slot's futex word at its exec or exit: the discipline of vfork, except that we answer the
 * manager first (it may have to send the child GO).  Why one at a time and asleep: the child
 * runs on our thread's TLS, errno included, and the checklist decides on errno (ENOENT of an
 * optional system directory, EINTR, ...); with eight borrowers at once, a sibling's EINVAL
 * once turned a missing /libx32 into a failed session.  The checklist allocates nothing and
 * runs with every signal blocked (our handlers are Python's), so the heap and the interpreter
 * a session is forked with are at rest.  Under AddressSanitizer (which cannot follow a process on a borrowed stack) the child is a
 * copy instead, as a fork.
 *
 * Messages (SOCK_SEQPACKET, fixed layouts, from the manager only): see zygote/zygote_proto.h.
 */
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/zygote_proto.h"
#include "sandbox/cgroup.h"
#include "sandbox/contain.h"
#include "sandbox/seccomp_policy.h"

extern const char corral_runner_py[];
extern const unsigned int corral_runner_py_len;
extern const unsigned char corral_init_elf[];
extern const unsigned int corral_init_elf_len;

#ifdef SBX_UNDER_ASAN
#define SPAWN_BY_COPY 1
#endif

#define CTL 3
#define NS_FLAGS (CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | \
		  CLONE_NEWCGROUP)

static PyObject *runner; /* the corral_runner module */
static int init_exe = -1; /* sealed memfd holding corral-init (high fd: clear of dup2 targets) */
#define INIT_EXE_FD 100

/* What the child works from while it borrows our memory: its copy of the request, the fds'
 * numbers and the plan, and its own stack, on which the session forked from it keeps running
 * (its copy of it) -- as large as a main thread's.  The slot is free again when the kernel
 * clears `alive` at the child's exec or exit; spawn() waits for that before it returns. */
#ifndef SPAWN_BY_COPY
#define CHILD_STACK (8UL << 20)
#endif
struct spawn_slot {
	uint32_t alive; /* CLONE_CHILD_CLEARTID word */
	struct zyg_spawn req;
	int fds[ZYG_NFDS];
	struct sbx_plan *plan;
	char *stack_top;
};
static struct spawn_slot the_slot;

static void die(const char *what)
{
	fprintf(stderr, "corral-zygote: %s\n", what);
	if (PyErr_Occurred())
		PyErr_Print();
	_exit(1);
}

static void start_python(char *info, size_t infosz)
{
	PyConfig cfg;
	PyConfig_InitIsolatedConfig(&cfg); /* no PYTHON* variables, no user site */
	cfg.install_signal_handlers = 1;
	PyStatus st = PyConfig_SetBytesString(&cfg, &cfg.program_name, "/usr/bin/python3");
	if (PyStatus_Exception(st))
		die("PyConfig program_name");
	st = Py_InitializeFromConfig(&cfg);
	PyConfig_Clear(&cfg);
	if (PyStatus_Exception(st))
		die("Py_InitializeFromConfig");

	PyObject *code = Py_CompileString(corral_runner_py, "corral_runner", Py_file_input);
	if (!code)
		die("compiling the runner");
	runner = PyImport_ExecCodeModule("corral_runner", code);
	Py_DECREF(code);
	if (!runner)
		die("loading the runner");
	PyObject *res = PyObject_CallMethod(runner, "preload", NULL);
	if (!res)
		die("runner.preload()");
	PyObject *s = PyObject_Str(res);
	snprintf(info, infosz, "%s", s ? PyUnicode_AsUTF8(s) : "");
	Py_XDECREF(s);
	Py_DECREF(res);
	/* Everything imported so far is shared by all sessions: keep the collector off it. */
	PyObject *gc = PyImport_ImportModule("gc");
	if (gc) {
		PyObject *r = PyObject_CallMethod(gc, "freeze", NULL);
		Py_XDECREF(r);
		Py_DECREF(gc);
	}
	PyErr_Clear();
}

/* glibc's malloc keeps freed small chunks in fastbins and an unsorted list, and the first larger
 * request in a process consolidates and sorts them all -- writing to every page that holds one.
 * In a session that is a copy-on-write fault per page: measured, about half of a new session's
 * ~1300 faults (~2 ms of CPU and ~2 MiB of private memory each).  Do that work once, here: trim
 * (consolidates, gives whole free pages back) and one large request (sorts what is left). */
static void settle_heap(void)
{
	malloc_trim(0);
	/* below the mmap threshold: served from the heap's bins (volatile: the compiler would
	 * drop an unused malloc/free pair) */
	void *volatile p = malloc(64 << 10);
	free(p);
}

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
#define HUGE_2M (2UL << 20)

/* Every session and its init are forks of this process, so each copies our page tables (and
 * tears its copy down at the end): ~16k anonymous 4 KiB pages (numpy, pandas, matplotlib...).
 * Where our anonymous memory covers whole 2 MiB ranges, make it transparent huge pages: a fork
 * then copies one entry per 2 MiB instead of 512, and so does the exit.  A child that writes
 * into one gets that range split back into small pages (its copy-on-write stays 4 KiB).
 * MADV_COLLAPSE ignores the THP "madvise" setting and sets no flag on the mapping: what the
 * sessions allocate later stays in small pages.  Best effort: any error leaves things as they
 * were.  Reads /proc/self/maps with read(2) (no stdio: no malloc after settle_heap). */
static void collapse_anon(void)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	static char buf[8192];
	size_t have = 0;
	for (;;) {
		ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = '\0';
		char *line = buf, *nl;
		while ((nl = strchr(line, '\n'))) {
			*nl = '\0';
			unsigned long lo, hi;
			char perms[8] = "", path[64] = "";
			/* start-end perms offset dev inode [path] */
			if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %63s", &lo, &hi, perms, path) >= 3 &&
			    !strcmp(perms, "rw-p") && (!path[0] || !strcmp(path, "[heap]"))) {
				unsigned long a = (lo + HUGE_2M - 1) & ~(HUGE_2M - 1), b = hi & ~(HUGE_2M - 1);
				/* not the sanitizers' TiB-sized shadow reservations */
				if (b > a && b - a <= (1UL << 30))
					(void)madvise((void *)a, b - a, MADV_COLLAPSE);
			}
			line = nl + 1;
		}
		have = strlen(line);
		memmove(buf, line, have);
	}
	close(fd);
}

/* corral-init into a memfd: sealed (nothing can change it), mode 0111 (exec only: an init that
 * cannot read its own program is not dumpable after the exec, not for an instant), at a high
 * fd number, close-on-exec. */
static void make_init_exe(void)
{
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
	/* MFD_EXEC: exempt from vm.memfd_noexec=1 (kernels from 6.3; older ones refuse the flag) */
	int fd = memfd_create("corral-init", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
	if (fd < 0 && errno == EINVAL)
		fd = memfd_create("corral-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		die("memfd_create for corral-init");
	for (unsigned int off = 0; off < corral_init_elf_len;) {
		ssize_t n = write(fd, corral_init_elf + off, corral_init_elf_len - off);
		if (n <= 0)
			die("writing corral-init into its memfd");
		off += (unsigned int)n;
	}
	if (fchmod(fd, 0111) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		die("sealing corral-init's memfd");
	init_exe = fcntl(fd, F_DUPFD_CLOEXEC, INIT_EXE_FD);
	close(fd);
	if (init_exe < 0)
		die("moving corral-init's memfd");
}

static void make_slot(void)
{
	the_slot.plan = malloc(sizeof *the_slot.plan);
	if (!the_slot.plan)
		die("out of memory");
}

#ifndef SPAWN_BY_COPY
/* After collapse_anon: the stack stays in small pages (each session copies what it touches). */
static void make_slot_stack(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, CHILD_STACK + page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED || mprotect(p, page, PROT_NONE) < 0) /* guard page */
		die("mapping the spawn stack");
	(void)madvise(p, CHILD_STACK + page, MADV_NOHUGEPAGE);
	the_slot.stack_top = p + page + CHILD_STACK;
}
#endif

/* The session process: PID 2 of the sandbox, contained; returns into Python for good. */
static void __attribute__((noreturn)) session_main(int chan)
{
	/* The uid change made us non-dumpable, which also hands /proc/self files to root; an exec'd
	 * program would be dumpable again, and so is the session (init stays non-dumpable). */
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	PyOS_AfterFork_Child();
	/* Init's channel to the manager is not the session's business: the runner only sends
	 * ZYG_WARM on it once it has warmed up, and closes it before it reads START (before any
	 * user code can run here). */
	PyObject *r = PyObject_CallMethod(runner, "serve", "ii", chan, CTL);
	if (!r)
		PyErr_Print();
	Py_XDECREF(r);
	fflush(stdout);
	fflush(stderr);
	_exit(r ? 0 : 1);
}

/* The child: init of the new namespaces. */
static void __attribute__((noreturn)) child_main(const struct spawn_slot *slot)
{
	const int *fds = slot->fds;
	const struct sbx_plan *plan = slot->plan;
	/* the received fds are above 3 and below INIT_EXE_FD: none is a target before its use */
	if (dup2(fds[ZYG_FD_OUT], 1) < 0 || dup2(fds[ZYG_FD_ERR], 2) < 0 ||
	    dup2(fds[ZYG_FD_CTL], CTL) < 0 || dup2(fds[ZYG_FD_CHAN], CTL + 1) < 0 ||
	    dup2(init_exe, SBX_INIT_EXE_FD(plan)) < 0)
		sbx_child_fail(fds[ZYG_FD_CTL], "fds", errno, "dup2");
	const char *what = "";
	int r = slot->req.cg.created ? sbx_cg_attach_self(&slot->req.cg, &what) : 0;
	if (r < 0)
		sbx_child_fail(CTL, "cgroup-attach", -r, what);
	sbx_contain(plan, CTL); /* closes everything but 0-2, CTL, the channel and init_exe */
	pid_t pid = sbx_init_fork(plan, CTL);
	if (pid == 0)
		session_main(CTL + 1);
	sbx_init_exec(plan, CTL, pid);
}

#ifndef SPAWN_BY_COPY
static int child_on_our_memory(void *slot)
{
	child_main(slot);
}
#endif

static int recv_request(struct zyg_spawn *req, int fds[ZYG_NFDS], int *nfds)
{
	struct iovec iov = {.iov_base = req, .iov_len = sizeof *req};
	union {
		char buf[CMSG_SPACE(sizeof(int) * ZYG_NFDS)];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof u.buf};
	/* errno is shared with the children that borrow our memory: not to be trusted here.  The
	 * manager's end closing reads as 0; a failure is retried (EINTR), but not for ever. */
	ssize_t n;
	int tries = 0;
	do {
		n = recvmsg(CTL, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && ++tries < 1000);
	if (n <= 0)
		return -1; /* manager gone */
	*nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
			if (*nfds < ZYG_NFDS)
				fds[(*nfds)++] = fd;
			else
				close(fd);
		}
	}
	if (n != (ssize_t)sizeof *req || req->magic != ZYG_MAGIC)
		return 0; /* malformed: ignore (the manager will time out) */
	return 1;
}

static void reply(const struct zyg_spawned *rep, int pidfd)
{
	struct iovec iov = {.iov_base = (void *)rep, .iov_len = sizeof *rep};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	memset(&u, 0, sizeof u);
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (pidfd >= 0) {
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof u.buf;
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pidfd, sizeof pidfd);
	}
	(void)!sendmsg(CTL, &mh, MSG_NOSIGNAL);
}

/* Until the kernel clears the word at the child's exec or exit (a futex error then sets only
 * our errno: the child no longer runs on it). */
static void wait_until_free(struct spawn_slot *slot)
{
	while (__atomic_load_n(&slot->alive, __ATOMIC_ACQUIRE))
		syscall(SYS_futex, &slot->alive, FUTEX_WAIT, 1, NULL, NULL, 0);
}

static void spawn(const struct zyg_spawn *req, int fds[ZYG_NFDS])
{
	struct zyg_spawned rep = {.magic = ZYG_MAGIC, .session = req->session};
	struct spawn_slot *slot = &the_slot; /* free: the last spawn() waited for its child */
	struct sbx_plan *plan = slot->plan;
	ssize_t n = pread(fds[ZYG_FD_PLAN], plan, sizeof *plan, 0);
	if (n != (ssize_t)sizeof *plan || plan->magic != SBX_PLAN_MAGIC) {
		rep.errnum = EINVAL;
		reply(&rep, -1);
		return;
	}
	plan->init_exe = 1;
	slot->req = *req;
	memcpy(slot->fds, fds, sizeof slot->fds);
	int pidfd = -1;
	/* The child never unblocks a signal: Python's handlers must not run in it. */
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
#ifdef SPAWN_BY_COPY
	int cgfd = fds[ZYG_FD_CGROUP];
	struct clone_args args = {
		.flags = NS_FLAGS | (plan->userns ? CLONE_NEWUSER : 0) | CLONE_PARENT | CLONE_PIDFD |
			 (cgfd >= 0 ? CLONE_INTO_CGROUP : 0),
		.pidfd = (uint64_t)(uintptr_t)&pidfd,
		.exit_signal = 0, /* CLONE_PARENT: the kernel uses our own exit signal (SIGCHLD) */
		.cgroup = cgfd >= 0 ? (uint64_t)cgfd : 0,
	};
	long pid = syscall(SYS_clone3, &args, sizeof args);
	if (pid == 0)
		child_main(slot);
	int e = errno;
	rep.born_in_cgroup = cgfd >= 0;
#else
	/* No CLONE_INTO_CGROUP with clone(): on v2 the manager moves the child before GO. */
	__atomic_store_n(&slot->alive, 1, __ATOMIC_SEQ_CST);
	long pid = clone(child_on_our_memory, slot->stack_top,
			 CLONE_VM | CLONE_CHILD_CLEARTID | CLONE_PARENT | CLONE_PIDFD | NS_FLAGS |
				 (plan->userns ? CLONE_NEWUSER : 0),
			 slot, &pidfd, NULL, &slot->alive);
	int e = errno; /* no child runs yet if this failed: errno is still ours */
	if (pid < 0)
		__atomic_store_n(&slot->alive, 0, __ATOMIC_SEQ_CST);
#endif
	if (pid < 0)
		rep.errnum = e;
	else
		rep.pid = (int32_t)pid;
	reply(&rep, pidfd);
	/* Asleep, signals still blocked, until the child no longer runs on our memory and TLS
	 * (see the top of this file).  Nothing between its clone and here sets errno but a failed
	 * reply, and then the manager is gone and the child with it. */
	wait_until_free(slot);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pidfd >= 0)
		close(pidfd);
}

int main(void)
{
	/* We are started with only what the manager chose; refuse to run if fd 3 is wrong. */
	int type;
	socklen_t tl = sizeof type;
	if (getsockopt(CTL, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_SEQPACKET) {
		fprintf(stderr, "corral-zygote: started by corral's engine only (fd 3 must be its "
				"control socket)\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	make_slot();
	char info[1024];
	start_python(info, sizeof info);
	/* Spawning is background work: it must not take CPU from cells that run now.  Each new
	 * session is put back to nice 0 by its checklist before it runs anything. */
	if (geteuid() == 0) /* only root can give a claimed session its priority back */
		setpriority(PRIO_PROCESS, 0, 10);
	make_init_exe();
	settle_heap(); /* last: nothing below allocates before the first fork */
	collapse_anon();
#ifndef SPAWN_BY_COPY
	make_slot_stack();
#endif

	struct zyg_ready ready = {.magic = ZYG_MAGIC, .pid = getpid()};
	snprintf(ready.python, sizeof ready.python, "%s", Py_GetVersion());
	char *sp = strchr(ready.python, ' ');
	if (sp)
		*sp = '\0';
	snprintf(ready.preload, sizeof ready.preload, "%s", info);
	if (send(CTL, &ready, sizeof ready, MSG_NOSIGNAL) < 0)
		return 1;

	for (;;) {
		struct zyg_spawn req;
		int fds[ZYG_NFDS], nfds = 0;
		for (int i = 0; i < ZYG_NFDS; i++)
			fds[i] = -1;
		int r = recv_request(&req, fds, &nfds);
		if (r < 0)
			break;
		if (r > 0 && nfds >= ZYG_NFDS - 1) {
			if (nfds == ZYG_NFDS - 1)
				fds[ZYG_FD_CGROUP] = -1; /* no v2 cgroup fd was sent */
			spawn(&req, fds);
		} else {
			struct zyg_spawned rep = {.magic = ZYG_MAGIC, .session = req.session,
						  .errnum = EINVAL};
			reply(&rep, -1);
		}
		for (int i = 0; i < ZYG_NFDS; i++)
			if (fds[i] >= 0)
				close(fds[i]);
	}
	return 0;
}
