/* sandbox/contain.h -- the lower level of the sandbox: a validated plan, the child checklist,
 * and the tiny init that lives as PID 1 inside.  sbx_run (sandbox.h) is built from these, and
 * so is the engine's zygote: one implementation of containment.
 *
 *   struct sbx_plan *plan = malloc(sizeof *plan);
 *   sbx_plan_build(&cfg, plan, &err);                 // host side: validate, resolve, pack
 *   ... clone(CLONE_NEW{NS,PID,NET,IPC,UTS,CGROUP}[,USER]) ...
 *   // in the child (PID 1 of the new pid namespace), ctl = its end of the control socket:
 *   sbx_contain(plan, ctl);            // checklist; on failure reports and _exit()s
 *   pid = sbx_init_fork(plan, ctl);    // 0 in the payload process, >0 in init
 *   if (pid == 0) sbx_exec_payload(plan, ctl);        // or: return into a warm interpreter
 *   sbx_init_loop(ctl, pid);           // init: reap, report the payload's status, exit
 *
 * The plan is plain data (no pointers) so it can be copied into another process as bytes.
 * Control messages (struct sbx_msg) travel on a SOCK_SEQPACKET socketpair, close-on-exec in
 * the payload: EOF without an error record means exec happened.
 */
#ifndef CORRAL_SANDBOX_CONTAIN_H
#define CORRAL_SANDBOX_CONTAIN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sandbox/sandbox.h"
#include "sandbox/seccomp_policy.h"

#define SBX_PLAN_MAGIC 0x636f7232u /* "cor2": bump when the layout changes */
#define SBX_STRINGS_MAX 65536
#define SBX_INSIDE_UID 1000 /* uid/gid seen inside when corral is not root (user namespace) */

struct sbx_plan_mount {
	char src[SBX_PATH_MAX];  /* absolute host path (resolved, no symlinks) */
	char dest[SBX_PATH_MAX]; /* absolute path inside, validated */
	uint8_t writable;
	uint8_t is_dir;
};

struct sbx_plan {
	uint32_t magic;
	struct sbx_limits limits;
	char sysroot[SBX_PATH_MAX]; /* "" = host /, else the --rootfs directory (resolved) */
	struct sbx_plan_mount mounts[SBX_MAX_MOUNTS];
	uint32_t n_mounts;
	uint8_t want_output;         /* mount a capped tmpfs at /output and send its fd home */
	uint8_t userns;              /* corral is unprivileged: a user namespace provides caps */
	uint8_t send_root;           /* send an O_PATH fd of the new root home (engine file ops) */
	uint8_t keep_fds;            /* fds 4..3+keep_fds survive the checklist (engine channel) */
	uint8_t engine_dirs;         /* tmpfs /home/user (cwd, HOME) and /data (unless mounted) */
	uint8_t set_nice;            /* engine: the zygote spawns at low priority; the session */
	int8_t nice;                 /*   gets this nice value back before it runs any code */
	uint8_t init_exe;            /* engine: fd 4+keep_fds is the corral-init program, which
				      * init execs once the payload is forked (sbx_init_exec) */
	uint32_t uid, gid;           /* ids the program runs as (host ids when root) */
	char workdir[SBX_PATH_MAX];
	/* argv and envp, packed as NUL-terminated strings; offsets into strings[] */
	uint32_t argc, envc;
	uint32_t argv_off[SBX_MAX_ARGS];
	uint32_t envp_off[SBX_MAX_ENV + 8];
	uint32_t strings_len;
	char strings[SBX_STRINGS_MAX];
};

/* Host side: validate cfg (paths exist, destinations allowed, sizes sane) and fill plan.
 * Touches nothing on the host.  -errno with a one-line message naming the problem. */
int sbx_plan_build(const struct sbx_config *cfg, struct sbx_plan *plan, struct cr_err *err);

/* Control messages between the sandbox (init, payload) and its supervisor. */
enum sbx_msg_type {
	SBX_MSG_GO = 1,        /* supervisor -> init: cgroup and id maps are in place */
	SBX_MSG_SETUP_ERROR,   /* init/payload -> supervisor: a checklist step failed */
	SBX_MSG_OUTPUT_FD,     /* init -> supervisor: SCM_RIGHTS fd of the /output tmpfs */
	SBX_MSG_READY,         /* init -> supervisor: contained; the payload is starting */
	SBX_MSG_STATUS,        /* init -> supervisor: the payload's wait status */
	SBX_MSG_ROOT_FD,       /* init -> supervisor: SCM_RIGHTS O_PATH fd of the sandbox root */
	SBX_MSG_SIGNAL,        /* supervisor -> init: send signal `errnum` to the payload's group */
};

struct sbx_msg {
	uint32_t type;
	int32_t errnum;   /* SETUP_ERROR */
	int32_t wstatus;  /* STATUS */
	int32_t pid;      /* READY: payload pid inside */
	char step[32];    /* SETUP_ERROR: checklist step */
	char detail[192]; /* SETUP_ERROR: what, e.g. the path */
};

/* The fd at which init finds the corral-init program when plan->init_exe: after the channel. */
#define SBX_INIT_EXE_FD(plan) (3 + 1 + (plan)->keep_fds)

/* AddressSanitizer cannot follow a process onto a stack it did not make: under it, children
 * that would borrow their parent's memory are plain copies instead. */
#if defined(__SANITIZE_ADDRESS__)
#define SBX_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SBX_UNDER_ASAN 1
#endif
#endif

/* Runs the containment checklist in the calling process, which must be PID 1 of fresh
 * namespaces.  Does not return on failure: sends SETUP_ERROR on ctl and _exit(125).
 * Allocation-free. */
void sbx_contain(const struct sbx_plan *plan, int ctl);

/* The same checklist while the supervisor works in parallel (corral run as root).  The child
 * is cloned into new pid and cgroup namespaces only (a v1 child then makes and joins its own
 * cgroup, first thing); sbx_contain_early makes the mount, ipc and uts namespaces and runs
 * steps 3-8 while the supervisor makes the network namespace -- the dearest, ~0.5 ms here --
 * then waits for GO, which carries it.  sbx_contain_late enters that network namespace, drops
 * the privileges and loads the filter.  Same steps, same failure reports, seccomp last.  Not
 * for a user namespace: its id maps must exist before the first file is created. */
struct sbx_go {
	struct sbx_msg msg; /* SBX_MSG_GO */
	int net_fd;         /* the new network namespace (SCM_RIGHTS, close-on-exec) */
};
void sbx_contain_early(const struct sbx_plan *plan, int ctl, struct sbx_go *go);
void sbx_contain_late(const struct sbx_plan *plan, int ctl, const struct sbx_go *go);

/* After sbx_contain: fork the payload (_Fork: no atfork handler runs, so a process that
 * borrows another's memory can call it).  In the payload (return 0) stdio is set up (stdin
 * /dev/null, stdout/stderr as received at fds 1/2), ctl is close-on-exec and the init
 * program's fd is closed. */
pid_t sbx_init_fork(const struct sbx_plan *plan, int ctl);
/* In init, after sbx_init_fork, when plan->init_exe: replace this process's image (a copy of,
 * or a borrower of, the zygote's memory) by the small static corral-init, which makes itself
 * non-dumpable, sends READY and runs sbx_init_loop for `payload` -- so nothing of the
 * payload's can run before init is that program.  Does not return; a failure is reported. */
void sbx_init_exec(const struct sbx_plan *plan, int ctl, pid_t payload)
	__attribute__((noreturn));
/* sbx_init_fork + sbx_exec_payload in one step, for a payload that execs at once (corral run):
 * the child shares init's memory until its execve (CLONE_VM | CLONE_VFORK).  Returns the
 * payload's pid, in init; an execve failure is reported by the child (SETUP_ERROR). */
pid_t sbx_init_spawn(const struct sbx_plan *plan, int ctl);
/* In the payload: execve argv with the plan's environment.  Never returns. */
void sbx_exec_payload(const struct sbx_plan *plan, int ctl) __attribute__((noreturn));
/* In init: reap everything; when `payload` ends, send STATUS and exit (which kills every
 * remaining process of the namespace).  Exits too if the supervisor goes away.  SIGNAL
 * messages are delivered to the payload's process group (the engine's cell interrupt). */
void sbx_init_loop(int ctl, pid_t payload) __attribute__((noreturn));

/* In init: READY to the supervisor (contained; the payload, pid inside, is starting). */
void sbx_init_ready(int ctl, pid_t payload);

/* Sends one control message with an fd attached (SCM_RIGHTS). Returns 0 or -errno. */
int sbx_send_fd(int ctl, uint32_t type, int fd);

/* Reports a failed step from inside (async-signal-safe), then _exit(125). */
void sbx_child_fail(int ctl, const char *step, int errnum, const char *detail)
	__attribute__((noreturn));

/* The fixed minimal environment every sandbox starts with (before --env additions). */
extern const char *const sbx_base_env[];

#endif
