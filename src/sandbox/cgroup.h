/* sandbox/cgroup.h -- cgroup v1 and v2 behind one small interface, detected once.
 *
 *   struct sbx_cg_host host;
 *   sbx_cg_detect(NULL, NULL, &host, &err);      // NULL: real /proc/self/{mountinfo,cgroup}
 *   struct sbx_cg cg;
 *   sbx_cg_create(&host, "1234.56789.0", &limits, &cg, &err); // one cgroup per sandbox
 *   fd = sbx_cg_clone_fd(&cg);                  // v2: dir fd for clone3(CLONE_INTO_CGROUP); else -1
 *   sbx_cg_attach(&cg, pid, &err);              // v1 (or v2 without clone3): move pid in
 *   ... program runs ...
 *   sbx_cg_stats(&cg, &stats);                  // peak memory, cpu time, oom kills, pids hits
 *   sbx_cg_kill(&cg);                           // every process in it, now
 *   sbx_cg_destroy(&cg);                        // kill + rmdir; safe to call twice
 *
 * Modes: SBX_CG_V2 (unified hierarchy with memory, pids and cpu controllers), SBX_CG_V1 (legacy
 * or hybrid: v1 memory, pids, cpu, cpuacct hierarchies), SBX_CG_NONE (nothing usable: limits are
 * reported as unenforced, never faked).
 *
 * Where: sandbox cgroups are created as <parent>/<name> where <parent> is, per hierarchy, our
 * own cgroup + "/corral" (v1; nesting keeps any limit placed on corral itself), or for v2 the
 * first of {own cgroup + "/corral" (if controllers can be enabled there), "<mount>/corral"}
 * that works.  `parent_override` (from --cgroup-parent / CORRAL_CGROUP_PARENT) replaces that.
 * Every path is built from the injectable `root` so unit tests run against fake trees.
 *
 * Names: "<owner pid>.<owner start time>.<seq>": sbx_cg_sweep removes cgroups whose owner is
 * gone (a crashed or SIGKILLed corral), killing anything still inside first.
 */
#ifndef CORRAL_SANDBOX_CGROUP_H
#define CORRAL_SANDBOX_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"
#include "sandbox/sandbox.h"

#define SBX_CG_PATH_MAX 512
#define SBX_CG_NSTAT 6 /* counter files read by sbx_cg_stats (v1: six; v2: four) */

enum sbx_cg_mode { SBX_CG_NONE = 0, SBX_CG_V1, SBX_CG_V2 };

/* What this host offers; filled by sbx_cg_detect. Plain data, no resources held. */
struct sbx_cg_host {
	enum sbx_cg_mode mode;
	/* v2: the directory under which sandbox cgroups are made (already exists after detect). */
	char v2_parent[SBX_CG_PATH_MAX];
	/* v1: one parent directory per controller ("" when that controller is unavailable). */
	char v1_memory[SBX_CG_PATH_MAX];
	char v1_pids[SBX_CG_PATH_MAX];
	char v1_cpu[SBX_CG_PATH_MAX];     /* cpu (cfs quota); may be a joint "cpu,cpuacct" mount */
	char v1_cpuacct[SBX_CG_PATH_MAX]; /* cpuacct.usage for cpu time */
	bool has_memory, has_pids, has_cpu, has_memsw;
	char note[160]; /* for NONE or partial support: what is missing and why (for doctor) */
};

/* One sandbox's cgroup(s).  Initialise with sbx_cg_init before use so destroy is always safe. */
struct sbx_cg {
	enum sbx_cg_mode mode;
	char v2_dir[SBX_CG_PATH_MAX];
	char v1_memory[SBX_CG_PATH_MAX], v1_pids[SBX_CG_PATH_MAX];
	char v1_cpu[SBX_CG_PATH_MAX], v1_cpuacct[SBX_CG_PATH_MAX];
	int v2_dir_fd; /* O_DIRECTORY fd on v2_dir, or -1 */
	bool created;
	/* The counter files sbx_cg_stats reads, kept open once read (an engine session reads them
	 * at every cell's start and end: opening them by path was ~40 % of the manager's CPU).
	 * -1 until read (sbx_cg_init); closed by sbx_cg_destroy / sbx_cg_stats_close. */
	int stat_fd[SBX_CG_NSTAT];
};

struct sbx_cg_stats {
	uint64_t peak_memory_bytes; /* v2 memory.peak | v1 memory.max_usage_in_bytes; 0 unknown */
	uint64_t cpu_usec;          /* v2 cpu.stat usage_usec | v1 cpuacct.usage / 1000 */
	uint64_t oom_kills;         /* v2 memory.events oom_kill | v1 memory.oom_control oom_kill */
	uint64_t memory_max_hits;   /* v2 memory.events max | v1 memory.failcnt */
	uint64_t pids_max_hits;     /* pids.events "max" (v1 and v2) */
	bool have_peak, have_cpu;
};

/* root: the cgroup filesystem root ("/sys/fs/cgroup" when NULL).
 * proc_dir: where "mountinfo" and "cgroup" are read (NULL: "/proc/self"); for fake trees a test
 * points both at a temp dir holding fake files.  Never fails hard: on any problem the host is
 * SBX_CG_NONE with `note` saying why, and 0 is returned.  -errno only for invalid arguments. */
int sbx_cg_detect(const char *root, const char *proc_dir, const char *parent_override,
		  struct sbx_cg_host *host, struct cr_err *err);

void sbx_cg_init(struct sbx_cg *cg);
/* Creates the cgroup(s) and writes the limits (memory, memsw when present, pids, cpu quota with a
 * 100 ms period).  A limit of 0 leaves that knob at "max".  On failure nothing is left behind. */
int sbx_cg_create(const struct sbx_cg_host *host, const char *name, const struct sbx_limits *lim,
		  struct sbx_cg *cg, struct cr_err *err);
/* Rewrites the limits of an existing cgroup (the engine's warm sessions are claimed with the
 * limits their client asks for). Same knobs and rules as create. */
int sbx_cg_update(const struct sbx_cg_host *host, const struct sbx_cg *cg,
		  const struct sbx_limits *lim, struct cr_err *err);
int sbx_cg_clone_fd(const struct sbx_cg *cg);
/* Host pids currently in the cgroup (v2 dir, or the v1 memory/pids hierarchy).  Returns how
 * many were stored (at most max) or -errno. */
int sbx_cg_pids(const struct sbx_cg *cg, pid_t *out, size_t max);
int sbx_cg_attach(const struct sbx_cg *cg, pid_t pid, struct cr_err *err);
/* v1 only, called by the new child itself before it does anything else: moves the calling
 * (single-threaded) process by writing "0" to each hierarchy's `tasks` file.  Migrating
 * oneself this way skips the kernel's global threadgroup lock, whose write side waits for an
 * RCU grace period (8-14 ms on this kernel) -- the dominant cost of a cold `corral run` on v1
 * when the supervisor attaches the child by pid.  Allocation-free; returns 0 or -errno and
 * the failing file's controller name in *what. */
int sbx_cg_attach_self(const struct sbx_cg *cg, const char **what);
/* The directories sbx_cg_create(host, name, ...) makes, without making anything (created stays
 * false): for a supervisor whose child creates its own v1 cgroup (corral run as root), so that
 * it can still read, kill and remove it.  A path that would not fit is left empty. */
void sbx_cg_plan(const struct sbx_cg_host *host, const char *name, struct sbx_cg *cg);
/* The counters now.  Keeps the files it read open in cg (pread from 0 gives fresh values). */
int sbx_cg_stats(struct sbx_cg *cg, struct sbx_cg_stats *st);
/* Closes the files sbx_cg_stats keeps open (sbx_cg_destroy does it too). */
void sbx_cg_stats_close(struct sbx_cg *cg);
/* For a copy of cg sent to another process: forgets (does not close) every fd it names. */
void sbx_cg_forget_fds(struct sbx_cg *cg);
/* v2: cgroup.kill (fallback: SIGKILL every pid in cgroup.procs until empty);
 * v1: SIGKILL every pid in memory (or pids) cgroup.procs until empty. */
int sbx_cg_kill(const struct sbx_cg *cg);
/* Kills what is left, then rmdir (retrying briefly while the kernel finishes exits). */
void sbx_cg_destroy(struct sbx_cg *cg);

/* Builds the name for a new cgroup: "<getpid()>.<our start time>.<seq>". */
void sbx_cg_make_name(char *out, size_t n, unsigned seq);
/* Removes cgroups under the host's parent(s) whose owner process is gone. Returns how many. */
int sbx_cg_sweep(const struct sbx_cg_host *host);

#endif
