/* tests/probes/try_syscall.c -- runs inside a sandbox and reports what each syscall returned.
 *
 *   try_syscall NAME...      prints "NAME ERRNO_NAME" per line ("NAME ok" when it succeeded)
 *   try_syscall --i386       makes an int 0x80 (i386 ABI) getpid: must kill the process
 *   try_syscall --x32        makes an x32-ABI getpid: must kill the process
 *   try_syscall --list       names every case this probe knows
 *
 * Arguments are chosen so that an *allowed* call fails in a way that differs from a filtered
 * one wherever the kernel allows it (bad pointers give EFAULT, bad fds EBADF, pids that do
 * not exist ESRCH...).  Some calls check privileges before their arguments; for those the
 * seccomp layer is proven separately by tests/unit/test_seccomp.c, as root.
 * Static, no dependencies: it runs in any image.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define WRONG ((long)1) /* a pointer that always faults */

struct probe {
	const char *name;
	long nr;
	long a[6];
};

static const struct probe PROBES[] = {
	{"mount", SYS_mount, {WRONG, WRONG, WRONG, 0, WRONG}},
	{"umount2", SYS_umount2, {WRONG, -1}},
	{"pivot_root", SYS_pivot_root, {WRONG, WRONG}},
	{"chroot", SYS_chroot, {WRONG}},
	{"unshare", SYS_unshare, {-1}},
	{"setns", SYS_setns, {-1, 0}},
	{"ptrace", SYS_ptrace, {0x7fff, 999999}},
	{"process_vm_readv", SYS_process_vm_readv, {999999, WRONG, 1, WRONG, 1, 0}},
	{"process_vm_writev", SYS_process_vm_writev, {999999, WRONG, 1, WRONG, 1, 0}},
	{"kexec_load", SYS_kexec_load, {0, 1, WRONG, 0}},
	{"kexec_file_load", SYS_kexec_file_load, {-1, -1, 0, WRONG, 0}},
	{"init_module", SYS_init_module, {WRONG, 0, WRONG}},
	{"finit_module", SYS_finit_module, {-1, WRONG, 0}},
	{"delete_module", SYS_delete_module, {WRONG, 0}},
	{"bpf", SYS_bpf, {-1, WRONG, 0}},
	{"perf_event_open", SYS_perf_event_open, {WRONG, 0, -1, -1, 0}},
	{"keyctl", SYS_keyctl, {-1}},
	{"add_key", SYS_add_key, {WRONG, WRONG, WRONG, 0, 0}},
	{"request_key", SYS_request_key, {WRONG, WRONG, WRONG, 0}},
	{"userfaultfd", SYS_userfaultfd, {0x7fff0000}},
	{"io_uring_setup", SYS_io_uring_setup, {1, WRONG}},
	{"io_uring_enter", SYS_io_uring_enter, {-1, 0, 0, 0, 0, 0}},
	{"io_uring_register", SYS_io_uring_register, {-1, 0, 0, 0}},
	{"open_by_handle_at", SYS_open_by_handle_at, {-1, WRONG, 0}},
	{"name_to_handle_at", SYS_name_to_handle_at, {-1, WRONG, WRONG, WRONG, 0}},
	{"swapon", SYS_swapon, {WRONG, 0}},
	{"swapoff", SYS_swapoff, {WRONG}},
	{"reboot", SYS_reboot, {0, 0, 0, 0}},
	{"settimeofday", SYS_settimeofday, {WRONG, WRONG}},
	{"clock_settime", SYS_clock_settime, {-1, WRONG}},
	{"clock_adjtime", SYS_clock_adjtime, {-1, WRONG}},
	{"adjtimex", SYS_adjtimex, {WRONG}},
	{"acct", SYS_acct, {WRONG}},
	{"quotactl", SYS_quotactl, {-1, WRONG, 0, WRONG}},
	{"fsopen", SYS_fsopen, {WRONG, 0}},
	{"fsmount", SYS_fsmount, {-1, 0, 0}},
	{"move_mount", SYS_move_mount, {-1, WRONG, -1, WRONG, 0}},
	{"open_tree", SYS_open_tree, {-1, WRONG, 0}},
	{"mount_setattr", SYS_mount_setattr, {-1, WRONG, 0, WRONG, 0}},
	{"syslog", SYS_syslog, {3, WRONG, 10}},
	{"kcmp", SYS_kcmp, {999999, 999999, 0, 0, 0}},
	{"pidfd_getfd", SYS_pidfd_getfd, {-1, 0, 0}},
	{"iopl", SYS_iopl, {3}},
	{"ioperm", SYS_ioperm, {0, 1, 1}},
	{"clone3", SYS_clone3, {WRONG, 64}},
	/* argument-filtered calls: */
	{"personality_bsd", SYS_personality, {0x0006}},        /* PER_BSD: must be refused */
	{"personality_query", SYS_personality, {0xffffffff}},  /* allowed: returns persona */
	{"clone_newuser", SYS_clone, {0x10000000 | SIGCHLD, 0, 0, 0, 0}},
	{"clone_newnet", SYS_clone, {0x40000000 | SIGCHLD, 0, 0, 0, 0}},
	{"ioctl_tiocsti", SYS_ioctl, {0, TIOCSTI, WRONG}},
	{"socket_inet", SYS_socket, {AF_INET, SOCK_STREAM, 0}},
	{"socket_inet_dgram", SYS_socket, {AF_INET, SOCK_DGRAM, 0}},
	{"socket_inet6", SYS_socket, {AF_INET6, SOCK_STREAM, 0}},
	{"socket_raw", SYS_socket, {AF_INET, SOCK_RAW, 1}},
	{"socket_packet", SYS_socket, {AF_PACKET, SOCK_RAW, 0}},
	{"socket_netlink", SYS_socket, {AF_NETLINK, SOCK_RAW, 0}},
	{"socket_vsock", SYS_socket, {40 /* AF_VSOCK */, SOCK_STREAM, 0}},
	{"socket_unix", SYS_socket, {AF_UNIX, SOCK_STREAM, 0}},  /* allowed */
	{"getpid", SYS_getpid, {0}},                              /* allowed */
};

static const char *errname(int e)
{
	static char buf[16];
	switch (e) {
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case ESRCH: return "ESRCH";
	case EIO: return "EIO";
	case EBADF: return "EBADF";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EINVAL: return "EINVAL";
	case ENOTTY: return "ENOTTY";
	case ENOSYS: return "ENOSYS";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EAFNOSUPPORT: return "EAFNOSUPPORT";
	case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
	case ENOKEY: return "ENOKEY";
	case ENOTDIR: return "ENOTDIR";
	case E2BIG: return "E2BIG";
	default:
		snprintf(buf, sizeof buf, "E%d", e);
		return buf;
	}
}

static void run(const struct probe *p)
{
	errno = 0;
	long r = syscall(p->nr, p->a[0], p->a[1], p->a[2], p->a[3], p->a[4], p->a[5]);
	if (r == 0 && (p->nr == SYS_clone)) /* an allowed clone made a child: let it go */
		_exit(0);
	printf("%s %s\n", p->name, r >= 0 ? "ok" : errname(errno));
	fflush(stdout);
	if (r > 0 && p->nr == SYS_socket)
		close((int)r);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--list")) {
		for (size_t i = 0; i < sizeof PROBES / sizeof *PROBES; i++)
			printf("%s\n", PROBES[i].name);
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "--i386")) {
		long ret;
		printf("before\n");
		fflush(stdout);
		/* eax = 20: getpid in the i386 table */
		__asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
		printf("survived %ld\n", ret);
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "--x32")) {
		printf("before\n");
		fflush(stdout);
		long r = syscall(0x40000000L | 39L); /* __X32_SYSCALL_BIT | getpid */
		printf("survived %ld\n", r);
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		int found = 0;
		for (size_t j = 0; j < sizeof PROBES / sizeof *PROBES; j++) {
			if (!strcmp(argv[i], PROBES[j].name) || !strcmp(argv[i], "all")) {
				run(&PROBES[j]);
				found = 1;
			}
		}
		if (!found) {
			printf("%s unknown\n", argv[i]);
			return 2;
		}
	}
	return 0;
}
