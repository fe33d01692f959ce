/* tests/unit/test_seccomp.c -- the seccomp filter on its own, proven as root.
 *
 * Inside a sandbox many denied calls would fail with EPERM anyway for lack of privilege, so
 * the in-sandbox probe cannot tell the filter from the capability check.  Here a forked child
 * running as root (all capabilities) loads only the filter and makes each call with arguments
 * that root would see fail differently (EFAULT, EBADF, EINVAL...).  The same calls without
 * the filter are run first, to prove the arguments really do distinguish.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/filter.h>

#include "sandbox/seccomp_policy.h"

#define WRONG 1L

struct call {
	const char *name;
	long nr;
	long a[6];
	int filtered_errno; /* what the filter must return */
};

/* Calls whose privilege check comes first for unprivileged users, but which root makes fail
 * on their arguments instead: exactly the ones the in-sandbox probe cannot distinguish. */
static const struct call CALLS[] = {
	{"pivot_root", SYS_pivot_root, {WRONG, WRONG}, EPERM},
	{"kexec_load", SYS_kexec_load, {0, 1, WRONG, 0xdead0000}, EPERM},
	{"init_module", SYS_init_module, {WRONG, 0, WRONG}, EPERM},
	{"finit_module", SYS_finit_module, {-1, WRONG, 0}, EPERM},
	{"delete_module", SYS_delete_module, {WRONG, 0}, EPERM},
	{"swapon", SYS_swapon, {WRONG, 0}, EPERM},
	{"swapoff", SYS_swapoff, {WRONG}, EPERM},
	{"acct", SYS_acct, {WRONG}, EPERM},
	{"open_by_handle_at", SYS_open_by_handle_at, {-1, WRONG, 0}, EPERM},
	{"fsopen", SYS_fsopen, {WRONG, 0}, EPERM},
	{"open_tree", SYS_open_tree, {-1, WRONG, 0}, EPERM},
	{"mount", SYS_mount, {WRONG, WRONG, WRONG, 0, WRONG}, EPERM},
	{"umount2", SYS_umount2, {WRONG, -1}, EPERM},
	{"chroot", SYS_chroot, {WRONG}, EPERM},
	{"unshare", SYS_unshare, {-1}, EPERM},
	{"setns", SYS_setns, {-1, 0}, EPERM},
	{"settimeofday", SYS_settimeofday, {WRONG, WRONG}, EPERM},
	{"clock_settime", SYS_clock_settime, {-1, WRONG}, EPERM},
	{"adjtimex", SYS_adjtimex, {WRONG}, EPERM},
	{"reboot", SYS_reboot, {0, 0, 0, 0}, EPERM},
	{"syslog", SYS_syslog, {3, WRONG, -1}, EPERM},
	{"perf_event_open", SYS_perf_event_open, {WRONG, 0, -1, -1, 0}, EPERM},
	{"bpf", SYS_bpf, {-1, WRONG, 0}, EPERM},
	{"userfaultfd", SYS_userfaultfd, {0x7fff0000}, EPERM},
	{"keyctl", SYS_keyctl, {-1}, EPERM},
	{"ptrace", SYS_ptrace, {0x7fff, 999999}, EPERM},
	{"process_vm_readv", SYS_process_vm_readv, {999999, WRONG, 1, WRONG, 1, 0}, EPERM},
	{"iopl", SYS_iopl, {4}, EPERM},
	{"ioperm", SYS_ioperm, {0, 1, 0x7fff}, EPERM},
	{"io_uring_setup", SYS_io_uring_setup, {1, WRONG}, EPERM},
	{"quotactl", SYS_quotactl, {-1, WRONG, 0, WRONG}, EPERM},
	{"mount_setattr", SYS_mount_setattr, {-1, WRONG, 0, WRONG, 0}, EPERM},
	{"clone3", SYS_clone3, {WRONG, 64}, ENOSYS},
	{"socket_inet", SYS_socket, {AF_INET, SOCK_STREAM, 0}, EAFNOSUPPORT},
	{"socket_netlink", SYS_socket, {AF_NETLINK, SOCK_RAW, 0}, EAFNOSUPPORT},
	{"personality_bsd", SYS_personality, {0x0006}, EPERM},
	{"personality_hi", SYS_personality, {0x100000000L}, EPERM},
	{"personality_addr_no_randomize", SYS_personality, {0x0040000}, EPERM},
};
#define N_CALLS (sizeof CALLS / sizeof *CALLS)

/* Runs every call in a child (optionally under the filter); errnos come back on a pipe. */
static void run_calls(bool filtered, int out[N_CALLS])
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		if (filtered) {
			char why[64];
			if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || sbx_seccomp_load(why, sizeof why) < 0)
				_exit(3);
		}
		for (size_t i = 0; i < N_CALLS; i++) {
			const struct call *c = &CALLS[i];
			errno = 0;
			long r = syscall(c->nr, c->a[0], c->a[1], c->a[2], c->a[3], c->a[4], c->a[5]);
			int e = r >= 0 ? 0 : errno;
			if (r >= 0 && c->nr == SYS_socket)
				close((int)r);
			if (write(p[1], &e, sizeof e) != sizeof e)
				_exit(4);
		}
		_exit(0);
	}
	close(p[1]);
	for (size_t i = 0; i < N_CALLS; i++)
		assert_int_equal(read(p[0], &out[i], sizeof out[i]), sizeof out[i]);
	close(p[0]);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_filter_denies_what_root_could_call(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		if (getenv("CORRAL_MUST_WORK"))
			fail_msg("this test needs root (CORRAL_MUST_WORK=1)");
		skip();
	}
	int plain[N_CALLS], filtered[N_CALLS];
	run_calls(false, plain);
	run_calls(true, filtered);
	for (size_t i = 0; i < N_CALLS; i++) {
		const struct call *c = &CALLS[i];
		if (filtered[i] != c->filtered_errno)
			fail_msg("%s: filtered call gave errno %d, want %d", c->name, filtered[i],
				 c->filtered_errno);
		/* proves the arguments distinguish: without the filter, root sees something else */
		if (plain[i] == c->filtered_errno)
			fail_msg("%s: unfiltered call also gave errno %d; the probe proves nothing",
				 c->name, plain[i]);
	}
}

static void test_policy_table_is_reviewed(void **state)
{
	(void)state;
	/* Every row names a syscall once and carries a reason. */
	for (size_t i = 0; i < sbx_seccomp_denied_count; i++) {
		assert_non_null(sbx_seccomp_denied[i].why);
		assert_true(strlen(sbx_seccomp_denied[i].why) > 5);
		for (size_t j = i + 1; j < sbx_seccomp_denied_count; j++)
			assert_string_not_equal(sbx_seccomp_denied[i].name, sbx_seccomp_denied[j].name);
	}
	/* The minimum list is in the table. */
	static const char *const must[] = {
		"mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "ptrace",
		"process_vm_readv", "process_vm_writev", "kexec_load", "kexec_file_load",
		"init_module", "finit_module", "delete_module", "bpf", "perf_event_open", "keyctl",
		"add_key", "request_key", "userfaultfd", "io_uring_setup", "io_uring_enter",
		"io_uring_register", "open_by_handle_at", "name_to_handle_at", "swapon", "swapoff",
		"reboot", "settimeofday", "clock_settime", "adjtimex", "acct", "quotactl",
	};
	for (size_t i = 0; i < sizeof must / sizeof *must; i++) {
		bool found = false;
		for (size_t j = 0; j < sbx_seccomp_denied_count; j++)
			found |= !strcmp(must[i], sbx_seccomp_denied[j].name);
		if (!found)
			fail_msg("%s missing from the policy table", must[i]);
	}
}

/* The program corral loads was compiled when it was built: it must be exactly what libseccomp
 * makes of the policy table now (a table edited without a rebuild, or a generator that wrote
 * something else, fails here). */
static void test_built_in_program_is_the_compiled_table(void **state)
{
	(void)state;
	static unsigned char fresh[SBX_SECCOMP_PROG_MAX * 8];
	size_t bytes = 0;
	char why[64] = "";
	assert_int_equal(sbx_seccomp_compile(fresh, sizeof fresh, &bytes, why, sizeof why), 0);
	const void *built = NULL;
	size_t built_bytes = sbx_seccomp_program(&built);
	assert_true(built_bytes > 100 * 8); /* a real program, not an empty stub */
	assert_int_equal(built_bytes, bytes);
	assert_memory_equal(built, fresh, bytes);
	size_t n_built = 0, n_fresh = 0; /* and corral doctor's check says so */
	assert_int_equal(sbx_seccomp_builtin_is_current(&n_built, &n_fresh, why, sizeof why), 1);
	assert_int_equal(n_built, bytes / sizeof(struct sock_filter));
	assert_int_equal(n_fresh, n_built);
}

static void test_allowed_calls_still_work(void **state)
{
	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char why[64];
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || sbx_seccomp_load(why, sizeof why) < 0)
			_exit(3);
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
			_exit(4);
		if (syscall(SYS_personality, 0xffffffffL) < 0 || syscall(SYS_personality, 0L) < 0)
			_exit(5);
		pid_t c = fork(); /* glibc fork uses clone without namespace flags */
		if (c < 0)
			_exit(6);
		if (c == 0)
			_exit(0);
		waitpid(c, NULL, 0);
		_exit(0);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_table_is_reviewed),
		cmocka_unit_test(test_built_in_program_is_the_compiled_table),
		cmocka_unit_test(test_filter_denies_what_root_could_call),
		cmocka_unit_test(test_allowed_calls_still_work),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
