/* sandbox/seccomp_policy.c -- THE seccomp policy: one reviewed table.
 *
 * Model: default allow, deny what untrusted code has no business calling.  A denied call
 * fails with an errno (EPERM; EAFNOSUPPORT for socket families; ENOSYS where a fallback
 * exists), as in Docker's default profile, so the program -- and the model reading its
 * traceback -- sees "Operation not permitted" instead of a mysterious kill.  Calls from
 * foreign ABIs (i386 via int 0x80, x32) kill the whole process: they are the classic way
 * around a filter written for x86_64 numbers (see seccomp.c).
 *
 * Every row has a reason.  Changing this table is a security review: add a probe case in
 * tests/probes/try_syscall.c and the expected verdict in tests/integration/test_abuse.py.
 */
#include "sandbox/seccomp_policy.h"

#include <errno.h>
#include <stddef.h>

#define DENY(name, why) {name, SBX_SC_ERRNO, EPERM, why}
#define NOSYS(name, why) {name, SBX_SC_ERRNO, ENOSYS, why}

const struct sbx_sc_rule sbx_seccomp_denied[] = {
	/* Filesystem namespace: the sandbox's view of files is fixed before exec. */
	DENY("mount", "could remount or cover what the sandbox sees"),
	DENY("umount2", "could uncover host paths beneath mounts"),
	DENY("pivot_root", "changes the root"),
	DENY("chroot", "changes the root"),
	DENY("fsopen", "new mount API"),
	DENY("fsconfig", "new mount API"),
	DENY("fsmount", "new mount API"),
	DENY("fspick", "new mount API"),
	DENY("move_mount", "new mount API"),
	DENY("open_tree", "new mount API: clones mounts"),
	DENY("mount_setattr", "could clear read-only flags"),
	/* Namespaces: no way out of, or into, another set. */
	DENY("unshare", "new namespaces expose kernel surface (user ns) and escape limits"),
	DENY("setns", "joining other namespaces"),
	/* Other processes' memory and descriptors. */
	DENY("ptrace", "reading or steering other processes"),
	DENY("process_vm_readv", "reads another process's memory"),
	DENY("process_vm_writev", "writes another process's memory"),
	DENY("kcmp", "probes other processes' kernel objects"),
	DENY("pidfd_getfd", "takes descriptors from other processes"),
	/* Kernel code and configuration. */
	DENY("kexec_load", "loads a new kernel"),
	DENY("kexec_file_load", "loads a new kernel"),
	DENY("init_module", "loads kernel modules"),
	DENY("finit_module", "loads kernel modules"),
	DENY("delete_module", "unloads kernel modules"),
	DENY("bpf", "large kernel attack surface"),
	DENY("perf_event_open", "side channels, large kernel attack surface"),
	DENY("lookup_dcookie", "kernel profiling internals"),
	DENY("syslog", "reads the kernel log"),
	DENY("acct", "process accounting is host configuration"),
	DENY("quotactl", "disk quotas are host configuration"),
	DENY("quotactl_fd", "disk quotas are host configuration"),
	DENY("swapon", "host swap configuration"),
	DENY("swapoff", "host swap configuration"),
	DENY("reboot", "host power state"),
	DENY("settimeofday", "host clock"),
	DENY("clock_settime", "host clock"),
	DENY("clock_adjtime", "host clock"),
	DENY("adjtimex", "host clock"),
	DENY("vhangup", "terminal hangup"),
	DENY("iopl", "raw port I/O"),
	DENY("ioperm", "raw port I/O"),
	DENY("uselib", "obsolete loader entry point"),
	DENY("nfsservctl", "obsolete"),
	DENY("fanotify_init", "watches the whole filesystem"),
	/* Keyrings are not namespaced. */
	DENY("keyctl", "kernel keyrings are shared with the host"),
	DENY("add_key", "kernel keyrings are shared with the host"),
	DENY("request_key", "kernel keyrings are shared with the host"),
	/* Frequent sources of kernel exploits, unneeded by data code. */
	DENY("userfaultfd", "classic exploit primitive (stalls kernel copies)"),
	DENY("io_uring_setup", "large attack surface; bypasses per-syscall filtering"),
	DENY("io_uring_enter", "large attack surface; bypasses per-syscall filtering"),
	DENY("io_uring_register", "large attack surface; bypasses per-syscall filtering"),
	DENY("open_by_handle_at", "opens files by handle, bypassing path checks (shocker)"),
	DENY("name_to_handle_at", "companion of open_by_handle_at"),
	/* clone3 passes flags in memory a filter cannot read; ENOSYS makes libc fall back to
	 * clone(), whose flags are checked below. */
	NOSYS("clone3", "flags unreadable by seccomp; libc falls back to clone"),
};
const size_t sbx_seccomp_denied_count = sizeof sbx_seccomp_denied / sizeof *sbx_seccomp_denied;

/* clone() flags that would create namespaces: each denied with EPERM. */
const unsigned long sbx_seccomp_clone_ns_flags[] = {
	0x00020000UL, /* CLONE_NEWNS */
	0x02000000UL, /* CLONE_NEWCGROUP */
	0x04000000UL, /* CLONE_NEWUTS */
	0x08000000UL, /* CLONE_NEWIPC */
	0x10000000UL, /* CLONE_NEWUSER */
	0x20000000UL, /* CLONE_NEWPID */
	0x40000000UL, /* CLONE_NEWNET */
};
const size_t sbx_seccomp_clone_ns_flags_count =
	sizeof sbx_seccomp_clone_ns_flags / sizeof *sbx_seccomp_clone_ns_flags;

/* ioctl requests denied on any descriptor (EPERM). */
const unsigned long sbx_seccomp_denied_ioctls[] = {
	0x5412UL, /* TIOCSTI: push bytes into a terminal's input (keystroke injection) */
	0x541CUL, /* TIOCLINUX: console selection tricks */
};
const size_t sbx_seccomp_denied_ioctls_count =
	sizeof sbx_seccomp_denied_ioctls / sizeof *sbx_seccomp_denied_ioctls;
