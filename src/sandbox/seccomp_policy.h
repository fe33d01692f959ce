/* sandbox/seccomp_policy.h -- the reviewed policy table (data) and its compiler.
 *
 *   sbx_seccomp_load(why, n);     // in the sandbox child, last step before exec
 *   sbx_seccomp_export_pfc(fd);   // `corral doctor --seccomp` prints the compiled policy
 *
 * The table is compiled when corral is built (seccomp_compile.c, by tools/seccomp_gen.c);
 * sbx_seccomp_load loads that program.
 *
 * Beyond the table: socket() of any family but AF_UNIX fails with EAFNOSUPPORT;
 * personality() other than PER_LINUX (0) or a query (0xffffffff) fails with EPERM;
 * clone() with namespace flags fails with EPERM; foreign ABIs kill the process.
 */
#ifndef CORRAL_SANDBOX_SECCOMP_POLICY_H
#define CORRAL_SANDBOX_SECCOMP_POLICY_H

#include <stddef.h>

enum sbx_sc_action { SBX_SC_ERRNO, SBX_SC_KILL };

struct sbx_sc_rule {
	const char *name;          /* syscall name as libseccomp knows it */
	enum sbx_sc_action action;
	int errnum;                /* for SBX_SC_ERRNO */
	const char *why;           /* one-line reason; reviewed with the table */
};

extern const struct sbx_sc_rule sbx_seccomp_denied[];
extern const size_t sbx_seccomp_denied_count;
extern const unsigned long sbx_seccomp_clone_ns_flags[];
extern const size_t sbx_seccomp_clone_ns_flags_count;
extern const unsigned long sbx_seccomp_denied_ioctls[];
extern const size_t sbx_seccomp_denied_ioctls_count;

/* The program corral loads: compiled from this table when corral was built.  Returns its
 * size in bytes and points *insns at it (struct sock_filter[]). */
size_t sbx_seccomp_program(const void **insns);
/* Loads it into the calling thread (no_new_privs already set): one system call, nothing
 * allocated.  0 or -errno, why says what failed. */
int sbx_seccomp_load(char *why, size_t whysz);
/* Compiles the table with libseccomp into insns (cap bytes): *bytes is the program's size.
 * The build's generator, `corral doctor` and the tests; 0 or -errno. */
#define SBX_SECCOMP_PROG_MAX 4096 /* instructions */
int sbx_seccomp_compile(void *insns, size_t cap, size_t *bytes, char *why, size_t whysz);
/* Is the built-in program what sbx_seccomp_compile makes of the table now?  1 yes, 0 no,
 * -errno when it cannot compile (why says why); *built and *fresh get both sizes in
 * instructions.  For `corral doctor`. */
int sbx_seccomp_builtin_is_current(size_t *built, size_t *fresh, char *why, size_t whysz);
/* Writes the compiled policy in libseccomp's pseudo-filter-code form to fd. */
int sbx_seccomp_export_pfc(int fd);

#endif
