/* init/main.c -- corral-init: PID 1 of an engine session, after the checklist.
 *
 * The zygote's child runs the sandbox checklist on the zygote's own memory (or a copy of it),
 * forks the session, and execs this program from a sealed memfd (sbx_init_exec): init then
 * holds a few pages instead of the interpreter's whole address space, and the zygote is free
 * again the moment the exec happens.  Linked statically so it runs in any image.
 *
 *   corral-init PAYLOAD_PID       fd 3: the control socket to the engine manager
 *
 * Everything the checklist set survives the exec: namespaces, cgroup, rlimits, ids, no
 * capabilities, no_new_privs, the seccomp filter, the parent-death signal, the blocked signals.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sandbox/contain.h"

#define CTL 3

int main(int argc, char **argv)
{
	/* First: an exec makes a process dumpable again (the program's mode 0111 already keeps
	 * it not, this says so twice), and the payload runs under the same uid. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	int type;
	socklen_t tl = sizeof type;
	if (argc != 2 || getsockopt(CTL, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
	    type != SOCK_SEQPACKET || getpid() != 1)
		return 125; /* started by hand: not an init of corral's */
	char *end;
	long payload = strtol(argv[1], &end, 10);
	if (*end || payload < 2)
		sbx_child_fail(CTL, "init-exec", EINVAL, "corral-init payload pid");
	sbx_init_ready(CTL, (pid_t)payload);
	sbx_init_loop(CTL, (pid_t)payload);
}
