/* sandbox/cgroup_internal.h -- shared by cgroup.c, cgroup_v1.c and cgroup_v2.c only; the
 * helpers are implemented in cgroup_io.c.
 *
 *   char v[64];
 *   if (sbx_cgi_read(dir, "memory.peak", v, sizeof v) >= 0) ...   // capped, NUL-terminated
 *   sbx_cgi_write(dir, "pids.max", "8", &err);                     // one write(2): cgroupfs
 *   sbx_cgi_read_kv(NULL, dir, "memory.events", "oom_kill", &n);   // "key value" files
 *
 * detect (cgroup.c) scans mountinfo and /proc/self/cgroup into a struct sbx_cgi_scan, then the
 * v1 or v2 module turns it into a struct sbx_cg_host (creating the "corral" parent directories).
 * Nothing here holds resources past a call, except the counter fds a caller asks
 * sbx_cgi_read_kept to keep; all paths are caller-owned fixed buffers.
 */
#ifndef CORRAL_SANDBOX_CGROUP_INTERNAL_H
#define CORRAL_SANDBOX_CGROUP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "sandbox/cgroup.h"

#define SBX_CGI_SMALL 4096           /* cap for every cgroup interface file we read */
#define SBX_CGI_PERIOD_US 100000     /* cpu quota period: 100 ms */

enum sbx_cgi_ctrl { SBX_CGI_MEMORY, SBX_CGI_PIDS, SBX_CGI_CPU, SBX_CGI_CPUACCT, SBX_CGI_NCTRL };
extern const char *const sbx_cgi_ctrl_name[SBX_CGI_NCTRL];

/* Result of the scan.  *_own: absolute directory of our own cgroup in that hierarchy (under the
 * rebased mount).  override: the validated parent override as a path relative to each
 * hierarchy's root ("" = the root itself), or NULL when there is none. */
struct sbx_cgi_scan {
	bool have_v2;
	char v2_mount[SBX_CG_PATH_MAX], v2_own[SBX_CG_PATH_MAX];
	bool have_v1[SBX_CGI_NCTRL];
	char v1_mount[SBX_CGI_NCTRL][SBX_CG_PATH_MAX], v1_own[SBX_CGI_NCTRL][SBX_CG_PATH_MAX];
	const char *override;
};

/* "dir/file" into out; -ENAMETOOLONG when it does not fit. */
int sbx_cgi_join(char *out, size_t n, const char *dir, const char *file);
/* Reads dir/file into buf (at most cap-1 bytes, NUL-terminated). Returns the length, -errno, or
 * -EFBIG when the file is longer (buf then holds its first cap-1 bytes). */
int sbx_cgi_read(const char *dir, const char *file, char *buf, size_t cap);
/* Writes val to dir/file in a single write (creating it: fake trees have no interface files). */
int sbx_cgi_write(const char *dir, const char *file, const char *val, struct cr_err *err);
bool sbx_cgi_exists(const char *dir, const char *file);
/* Strict decimal: digits, then only trailing whitespace. -EINVAL / -ERANGE. */
int sbx_cgi_parse_u64(const char *s, uint64_t *out);
/* Value of the line "key N" in text; -ENOENT when absent, -EINVAL when N is not a number. */
int sbx_cgi_kv_u64(const char *text, const char *key, uint64_t *out);
/* sbx_cgi_read, from an fd kept in *keep when keep is not NULL: opened by path the first time
 * (a failure is not kept: the next call tries again), then pread from offset 0. */
int sbx_cgi_read_kept(int *keep, const char *dir, const char *file, char *buf, size_t cap);
int sbx_cgi_read_u64(int *keep, const char *dir, const char *file, uint64_t *out);
int sbx_cgi_read_kv(int *keep, const char *dir, const char *file, const char *key, uint64_t *out);
/* Stats bookkeeping: r == 0 counts as read, -ENOENT as absent, anything else as the error. */
void sbx_cgi_tally(int r, int *bad, int *got);
/* True when word is one of the tokens of list (separated by spaces, commas or newlines). */
bool sbx_cgi_has_word(const char *list, const char *word);
/* A relative cgroup path we are willing to build on: no "." or ".." components. */
bool sbx_cgi_rel_ok(const char *rel);
/* out = base/rel, creating each component of rel (base must exist; rel "" gives base). */
int sbx_cgi_mkdirs(const char *base, const char *rel, char *out, size_t n, struct cr_err *err);
/* SIGKILL every pid in dir/cgroup.procs until it is empty (bounded). 0 | -EBUSY | -errno. */
int sbx_cgi_kill_procs(const char *dir);
/* rmdir, retrying on EBUSY for about a second; ENOENT counts as done. 0 | -errno. */
int sbx_cgi_rmdir(const char *dir);
/* cpus -> quota in microseconds per SBX_CGI_PERIOD_US (0 = no quota); -EINVAL if not finite/<0. */
int sbx_cgi_cpu_quota(double cpus, uint64_t *quota_us);
/* Sets host->note to "<what>: no memory pids controller; ..." when a controller is missing. */
void sbx_cgi_note_missing(struct sbx_cg_host *h, const char *what);

/* Per-version halves.  setup fills host (mode, parents, has_*, note) and never fails. */
void sbx_cg_v1_setup(const struct sbx_cgi_scan *s, struct sbx_cg_host *host);
int sbx_cg_v1_create(const struct sbx_cg_host *host, const char *name,
		     const struct sbx_limits *lim, struct sbx_cg *cg, struct cr_err *err);
int sbx_cg_v1_update(const struct sbx_cg_host *host, const struct sbx_cg *cg,
		     const struct sbx_limits *lim, struct cr_err *err);
int sbx_cg_v1_attach(const struct sbx_cg *cg, pid_t pid, struct cr_err *err);
int sbx_cg_v1_stats(struct sbx_cg *cg, struct sbx_cg_stats *st);
int sbx_cg_v1_kill(const struct sbx_cg *cg);

void sbx_cg_v2_setup(const struct sbx_cgi_scan *s, struct sbx_cg_host *host);
int sbx_cg_v2_create(const struct sbx_cg_host *host, const char *name,
		     const struct sbx_limits *lim, struct sbx_cg *cg, struct cr_err *err);
int sbx_cg_v2_update(const struct sbx_cg_host *host, const struct sbx_cg *cg,
		     const struct sbx_limits *lim, struct cr_err *err);
int sbx_cg_v2_attach(const struct sbx_cg *cg, pid_t pid, struct cr_err *err);
int sbx_cg_v2_stats(struct sbx_cg *cg, struct sbx_cg_stats *st);
int sbx_cg_v2_kill(const struct sbx_cg *cg);

#endif
