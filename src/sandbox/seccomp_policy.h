/* sandbox/seccomp_policy.h -- the reviewed policy table (data) and its compiler.
 *
 *   sbx_seccomp_load(&ce);        // in the sandbox child, last step before exec
 *   sbx_seccomp_export_pfc(fd);   // `corral doctor --seccomp` prints the compiled policy
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

/* Compiles the filter once per process into a static buffer, so later loads in forked children
 * allocate nothing.  Call before cloning sandboxes. 0 or -errno. */
int sbx_seccomp_prepare(char *why, size_t whysz);
/* The prepared program (struct sock_filter[]), for a child cloned before it was compiled:
 * returns its size in bytes (0 before sbx_seccomp_prepare) and points *insns at it. */
#define SBX_SECCOMP_PROG_MAX 4096 /* instructions */
size_t sbx_seccomp_prepared(const void **insns);
/* Loads such a program into the calling thread (no_new_privs set). 0 or -errno. */
int sbx_seccomp_load_program(const void *insns, size_t bytes, char *why, size_t whysz);
/* Builds the filter (or uses the prepared one) and loads it into the calling thread (with no_new_privs already set).
 * Returns 0 or -errno; on failure step names what failed (no allocation on failure path
 * beyond libseccomp's own). */
int sbx_seccomp_load(char *why, size_t whysz);
/* Writes the compiled policy in libseccomp's pseudo-filter-code form to fd. */
int sbx_seccomp_export_pfc(int fd);

#endif
