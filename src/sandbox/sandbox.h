/* sandbox/sandbox.h -- isolation of one process tree, with an exact verdict.
 *
 *   struct sbx_config cfg;
 *   sbx_config_init(&cfg);                       // the defaults table (sbx_limits_default)
 *   cfg.argv = argv;                              // borrowed: must outlive sbx_run
 *   sbx_config_add_mount(&cfg, "/srv/data", "/data", false, &err);
 *   struct sbx_result res;
 *   if (sbx_run(&cfg, &res, &err) < 0)           // -errno: corral could not even try
 *       die(err.msg);
 *   ... res.status, res.out.data, res.files ...   // a failed *setup* is res.status ==
 *   sbx_result_free(&res);                        //   SBX_SANDBOX_ERROR, never a code failure
 *
 * Pure mechanism: knows nothing of Python or HTTP.  The same containment code serves
 * `corral run` (clone + exec) and the engine's zygote (fork of a warm interpreter, no exec):
 * see sandbox/contain.h for that lower level.
 *
 * Ownership: sbx_config borrows every string it is given (argv, env, paths); sbx_result owns
 * its buffers and file list until sbx_result_free.  Not thread-safe per config/result object;
 * separate runs may proceed in parallel from different threads.
 */
#ifndef CORRAL_SANDBOX_SANDBOX_H
#define CORRAL_SANDBOX_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"
#include "core/err.h"

#define SBX_MAX_MOUNTS 32
#define SBX_MAX_ENV 64
#define SBX_MAX_ARGS 256
#define SBX_PATH_MAX 1024

/* Verdicts.  Everything but SBX_SANDBOX_ERROR is about the user's program; SANDBOX_ERROR means
 * corral could not build the sandbox and the program never ran unconfined. */
enum sbx_status {
	SBX_OK = 0,
	SBX_NONZERO_EXIT,
	SBX_SIGNALED,
	SBX_TIMEOUT,
	SBX_MEMORY_LIMIT,
	SBX_PIDS_LIMIT,
	SBX_OUTPUT_LIMIT,
	SBX_SANDBOX_ERROR,
};
const char *sbx_status_name(enum sbx_status s);

/* Resource limits.  0 means "no limit" only where noted; the defaults live in one table. */
struct sbx_limits {
	uint64_t memory_bytes;      /* cgroup memory limit (and memsw where available) */
	uint32_t pids;              /* cgroup pids.max */
	double cpus;                /* cgroup cpu quota in cores; 0 = no quota */
	uint64_t cpu_time_ms;       /* RLIMIT_CPU; 0 = none */
	uint64_t file_size_bytes;   /* RLIMIT_FSIZE */
	uint32_t nofile;            /* RLIMIT_NOFILE */
	uint64_t timeout_ms;        /* wall clock; then the whole tree is killed; 0 = none */
	uint64_t tmp_bytes;         /* size of the /tmp tmpfs (and /dev/shm) */
	uint64_t output_limit_bytes;/* cap on captured stdout and on stderr, each */
	uint64_t outdir_bytes;      /* size of the /output tmpfs */
	uint32_t outdir_files;      /* max files collected from /output */
};
extern const struct sbx_limits sbx_limits_default;

struct sbx_mount {
	const char *host; /* existing host path (file or directory) */
	const char *dest; /* absolute path inside; NULL = same as host */
	bool writable;
};

struct sbx_config {
	struct sbx_limits limits;
	char *const *argv;          /* program and args; argv[0] resolved inside the sandbox */
	const char *env[SBX_MAX_ENV]; /* extra "K=V" on top of the fixed minimal set */
	size_t n_env;
	struct sbx_mount mounts[SBX_MAX_MOUNTS];
	size_t n_mounts;
	const char *rootfs;         /* image directory for /usr, /bin, /lib*, /etc; NULL = host */
	const char *output_dir;     /* host directory that receives /output; NULL = no /output */
	const char *workdir;        /* inside; default /tmp */
	const char *cgroup_parent;  /* override where sandbox cgroups are created; NULL = detect */
	bool passthrough;           /* also copy stdout/stderr to our own fds as they arrive */
	int cancel_fd;              /* > 0: when readable, the run is killed (status signaled,
				     * limit "cancelled"); e.g. a signalfd for SIGINT/SIGTERM */
	uid_t uid;                  /* host uid/gid the program runs as when corral is root */
	gid_t gid;
	bool sweep_stale;           /* also sbx_sweep_stale(), once the program has started
				     * (while it runs; at the end if it never started) */
};

void sbx_config_init(struct sbx_config *cfg);
/* Validates and appends a mount; strings are borrowed. */
int sbx_config_add_mount(struct sbx_config *cfg, const char *host, const char *dest,
			 bool writable, struct cr_err *err);
int sbx_config_add_env(struct sbx_config *cfg, const char *kv, struct cr_err *err);

/* A file collected from /output, or one that was refused (reason set). */
struct sbx_file {
	char *path;        /* relative to /output; owned */
	uint64_t bytes;
	const char *skipped; /* NULL = copied; else a static reason ("symlink", "cap", ...) */
};

struct sbx_result {
	enum sbx_status status;
	int exit_code;      /* valid when the program exited; -1 otherwise */
	int signal;         /* terminating signal; 0 if none */
	uint64_t wall_ms, cpu_ms, peak_memory_bytes;
	struct cr_buf out, err;       /* captured stdout / stderr (capped; see *.dropped) */
	bool stdout_truncated, stderr_truncated;
	struct sbx_file *files;       /* owned; n_files entries */
	size_t n_files;
	bool files_truncated;         /* count or byte cap reached while collecting */
	uint64_t files_bytes;
	const char *limit;            /* which limit produced the verdict, or NULL */
	bool cgroup_enforced;         /* false: memory/pids/cpus could not be enforced here */
	char cgroup_note[160];        /* why not, when !cgroup_enforced */
	/* SBX_SANDBOX_ERROR only: */
	char error_step[32];
	int error_errno;
	char error_msg[CR_ERR_MSG_MAX];
};

/* Builds the sandbox, runs cfg->argv in it, supervises it to the end, collects /output and
 * tears everything down.  Returns 0 when res is filled (whatever the verdict, including
 * SBX_SANDBOX_ERROR) and -errno only for invalid configuration (nothing was created). */
int sbx_run(const struct sbx_config *cfg, struct sbx_result *res, struct cr_err *err);
void sbx_result_free(struct sbx_result *res);

/* Process exit code for a result, following timeout(1): the program's code, 124 timeout,
 * 128+N signal, 125 sandbox error. */
int sbx_result_exit_code(const struct sbx_result *res);

/* Records the caller's argv+environ block (argv[0] up to the end of the last environment
 * string) so every sandbox init wipes its copy first thing: the init is a fork of corral and
 * must hold nothing of the caller's command line or environment. */
void sbx_set_wipe_region(char *start, size_t len);

/* Called once per process that owns sandboxes: removes cgroups left by dead predecessors.
 * corral run has sbx_run do it (sweep_stale), off its start-up path. */
void sbx_sweep_stale(void);

#endif
