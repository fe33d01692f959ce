/* sandbox/seccomp.c -- loads the seccomp program compiled at build time.
 *
 * The policy is fixed (seccomp_policy.c), so it is compiled once, when corral is built
 * (tools/seccomp_gen.c runs sbx_seccomp_compile and writes the program as C), not at every
 * sandbox start.  A unit test and `corral doctor` check that it is what libseccomp makes of
 * the table today.
 */
#include "sandbox/seccomp_policy.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* generated: build/<variant>/gen/seccomp_program.c */
extern const struct sock_filter sbx_seccomp_builtin[];
extern const size_t sbx_seccomp_builtin_len;

size_t sbx_seccomp_program(const void **insns)
{
	*insns = sbx_seccomp_builtin;
	return sbx_seccomp_builtin_len * sizeof *sbx_seccomp_builtin;
}

int sbx_seccomp_load(char *why, size_t whysz)
{
	/* one system call, no allocation: safe in a child that borrows another's memory */
	struct sock_fprog prog = {.len = (unsigned short)sbx_seccomp_builtin_len,
				  .filter = (struct sock_filter *)sbx_seccomp_builtin};
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) {
		snprintf(why, whysz, "seccomp(SET_MODE_FILTER)");
		return -errno;
	}
	return 0;
}

int sbx_seccomp_builtin_is_current(size_t *built, size_t *fresh, char *why, size_t whysz)
{
	static struct sock_filter insns[SBX_SECCOMP_PROG_MAX];
	size_t bytes = 0;
	const void *prog = NULL;
	size_t prog_bytes = sbx_seccomp_program(&prog);
	*built = prog_bytes / sizeof *insns;
	*fresh = 0;
	int r = sbx_seccomp_compile(insns, sizeof insns, &bytes, why, whysz);
	if (r < 0)
		return r;
	*fresh = bytes / sizeof *insns;
	return bytes == prog_bytes && !memcmp(insns, prog, bytes);
}
