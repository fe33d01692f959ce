/* cli/engine_daemon.c -- where the local engine lives, and starting it on first use.
 *
 * The engine daemon (`corral engine`) listens on a unix socket only its owner can reach:
 *   root:   /run/corral/engine.sock           (directory 0700)
 *   others: $XDG_RUNTIME_DIR/corral/engine.sock, else /tmp/corral-<uid>/engine.sock
 * CORRAL_ENGINE overrides the path.  `corral exec` connects there and, if nothing answers,
 * starts the daemon by exec'ing itself with a clean environment (the daemon never holds the
 * caller's environment), detached in its own session; the daemon exits after 15 idle minutes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/engine_daemon.h"

void engine_socket_path(char *out, size_t n)
{
	const char *env = getenv("CORRAL_ENGINE");
	if (env && *env) {
		snprintf(out, n, "%s", env);
		return;
	}
	if (geteuid() == 0) {
		snprintf(out, n, "/run/corral/engine.sock");
		return;
	}
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (xdg && *xdg)
		snprintf(out, n, "%s/corral/engine.sock", xdg);
	else
		snprintf(out, n, "/tmp/corral-%u/engine.sock", (unsigned)geteuid());
}

static int start_daemon(const char *path, struct cr_err *err)
{
	char self[PATH_MAX];
	ssize_t l = readlink("/proc/self/exe", self, sizeof self - 1);
	if (l <= 0)
		return cr_fail(err, errno, "cannot find the corral binary");
	self[l] = '\0';
	pid_t pid = fork();
	if (pid < 0)
		return cr_fail(err, errno, "fork");
	if (pid == 0) {
		/* detach: own session, then a grandchild that init adopts */
		setsid();
		if (fork() != 0)
			_exit(0);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		/* stderr goes to a log next to the socket, for `corral doctor` and humans */
		char logp[PATH_MAX];
		snprintf(logp, sizeof logp, "%s.log", path);
		int log = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		dup2(log >= 0 ? log : null, 2);
		syscall(SYS_close_range, 3, ~0U, 0);
		char *argv[] = {(char *)"corral", (char *)"engine", (char *)"--socket", (char *)path,
				(char *)"--idle-exit", (char *)"900", NULL};
		char *envp[] = {(char *)"PATH=/usr/local/bin:/usr/bin:/bin", (char *)"LANG=C.UTF-8",
				NULL};
		execve(self, argv, envp);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
	return 0;
}

/* A daemon built from other sources (an upgrade happened while it ran) is told to stop. */
static void stop_stale_daemon(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct ucred cred;
	socklen_t cl = sizeof cred;
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0 && cred.uid == geteuid() &&
	    cred.pid > 1) {
		fprintf(stderr, "corral: the engine daemon (pid %d) is from another corral build; "
				"restarting it\n", (int)cred.pid);
		kill(cred.pid, SIGTERM);
		for (int i = 0; i < 200 && kill(cred.pid, 0) == 0; i++)
			usleep(25000);
	}
	if (fd >= 0)
		close(fd);
	unlink(path);
}

struct eng_client *engine_connect(bool autostart, struct cr_err *err)
{
	char path[PATH_MAX];
	engine_socket_path(path, sizeof path);
	struct eng_client *c = eng_client_connect(path, err);
	if (!c && autostart && err->code == EPROTO) {
		stop_stale_daemon(path);
		c = eng_client_connect(path, err);
	}
	if (c || !autostart || (err->code != ENOENT && err->code != ECONNREFUSED))
		return c;
	/* The directory must exist before the daemon's log can be opened in it. */
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			cr_fail(err, errno, "mkdir %s", dir);
			return NULL;
		}
	}
	if (start_daemon(path, err) < 0)
		return NULL;
	/* The socket appears at once; the zygote's preload (~1 s) happens behind it. */
	for (int i = 0; i < 200; i++) {
		struct timespec ts = {0, 25 * 1000 * 1000};
		nanosleep(&ts, NULL);
		c = eng_client_connect(path, err);
		if (c)
			return c;
	}
	cr_wrap(err, "the engine daemon did not start (see %s.log)", path);
	return NULL;
}
