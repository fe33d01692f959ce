/* sandbox/init.c -- what PID 1 of a sandbox does once the payload runs: reap every
 * process of the namespace, pass the supervisor's signals on to the payload's group, report
 * the payload's wait status, and exit (which makes the kernel kill whatever is left); and
 * the messages every step inside sends home (READY, SETUP_ERROR).
 *
 * Self-contained on purpose (libc only, no allocation): the same file is linked into corral,
 * where `corral run`'s init calls it, and into the static corral-init program (src/init/),
 * which the engine's inits exec so that they no longer hold a copy of the zygote's memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/contain.h"

static void copy_str(char *dst, size_t n, const char *src)
{
	size_t i = 0;
	for (; src && src[i] && i + 1 < n; i++)
		dst[i] = src[i];
	dst[i] = '\0';
}

void sbx_child_fail(int ctl, const char *step, int errnum, const char *detail)
{
	struct sbx_msg m;
	memset(&m, 0, sizeof m);
	m.type = SBX_MSG_SETUP_ERROR;
	m.errnum = errnum;
	copy_str(m.step, sizeof m.step, step);
	copy_str(m.detail, sizeof m.detail, detail);
	(void)!send(ctl, &m, sizeof m, MSG_NOSIGNAL);
	_exit(125);
}

void sbx_init_ready(int ctl, pid_t payload)
{
	struct sbx_msg m;
	memset(&m, 0, sizeof m);
	m.type = SBX_MSG_READY;
	m.pid = payload;
	(void)!send(ctl, &m, sizeof m, MSG_NOSIGNAL);
}

void sbx_init_loop(int ctl, pid_t payload)
{
	/* Not dumpable: the payload (same uid) cannot read our memory or take our fds. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		close(null);
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0)
		_exit(125);
	/* A child may already have exited before the signalfd existed: reap once up front. */
	for (;;) {
		int st;
		pid_t w;
		while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
			if (w == payload) {
				struct sbx_msg m;
				memset(&m, 0, sizeof m);
				m.type = SBX_MSG_STATUS;
				m.wstatus = st;
				(void)!send(ctl, &m, sizeof m, MSG_NOSIGNAL);
				_exit(0); /* the kernel now kills the rest of the namespace */
			}
		}
		struct pollfd pfd[2] = {{.fd = sfd, .events = POLLIN}, {.fd = ctl, .events = POLLIN}};
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			_exit(125);
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			(void)!read(sfd, &si, sizeof si);
		}
		if (pfd[1].revents & (POLLHUP | POLLERR | POLLIN)) {
			struct sbx_msg m;
			ssize_t n = recv(ctl, &m, sizeof m, MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
				_exit(125); /* supervisor gone: take everything down with us */
			if (n == (ssize_t)sizeof m && m.type == SBX_MSG_SIGNAL && m.errnum > 0 &&
			    m.errnum < 65 && m.errnum != SIGKILL)
				kill(-payload, m.errnum);
		}
	}
}
