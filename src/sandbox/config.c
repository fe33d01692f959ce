/* sandbox/config.c -- the defaults table, configuration, and the plan built from it.
 *
 * The plan is where host-side validation happens: every path is resolved and checked here,
 * before anything is created, so bad input changes nothing on the host.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "sandbox/contain.h"

/* THE defaults (mirrored in docs/SANDBOX.md). Closed by default; options open things up. */
const struct sbx_limits sbx_limits_default = {
	.memory_bytes = 512ULL << 20,
	.pids = 64,
	.cpus = 0,                      /* no quota: the whole machine's cores, shared fairly */
	.cpu_time_ms = 0,               /* no per-process CPU-time limit; the wall clock rules */
	.file_size_bytes = 64ULL << 20,
	.nofile = 256,
	.timeout_ms = 30000,
	.tmp_bytes = 64ULL << 20,
	.output_limit_bytes = 1ULL << 20,
	.outdir_bytes = 64ULL << 20,
	.outdir_files = 1000,
};

const char *const sbx_base_env[] = {
	"PATH=/usr/local/bin:/usr/bin:/bin",
	"HOME=/tmp",
	"LANG=C.UTF-8",
	"LC_ALL=C.UTF-8",
	"MPLBACKEND=Agg",
	"MPLCONFIGDIR=/tmp/.matplotlib",
	"PYTHONDONTWRITEBYTECODE=1",
	"OPENBLAS_NUM_THREADS=1",
	NULL,
};

/* Top-level names the sandbox builds itself; user mounts may not land on or under them. */
static const char *const RESERVED_TOP[] = {
	"proc", "dev", "sys", "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32",
	"etc", "output", "run", NULL,
};

const char *sbx_status_name(enum sbx_status s)
{
	switch (s) {
	case SBX_OK: return "ok";
	case SBX_NONZERO_EXIT: return "nonzero_exit";
	case SBX_SIGNALED: return "signaled";
	case SBX_TIMEOUT: return "timeout";
	case SBX_MEMORY_LIMIT: return "memory_limit";
	case SBX_PIDS_LIMIT: return "pids_limit";
	case SBX_OUTPUT_LIMIT: return "output_limit";
	case SBX_SANDBOX_ERROR: return "sandbox_error";
	}
	return "sandbox_error";
}

int sbx_result_exit_code(const struct sbx_result *res)
{
	switch (res->status) {
	case SBX_SANDBOX_ERROR:
		return 125;
	case SBX_TIMEOUT:
		return 124;
	default:
		break;
	}
	if (res->signal > 0)
		return 128 + res->signal;
	if (res->exit_code >= 0)
		return res->exit_code;
	return 125;
}

void sbx_config_init(struct sbx_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->limits = sbx_limits_default;
	cfg->uid = 65534; /* nobody: the program never runs as a real host user */
	cfg->gid = 65534;
}

int sbx_config_add_mount(struct sbx_config *cfg, const char *host, const char *dest,
			 bool writable, struct cr_err *err)
{
	if (cfg->n_mounts >= SBX_MAX_MOUNTS)
		return cr_failx(err, E2BIG, "too many mounts (at most %d)", SBX_MAX_MOUNTS);
	cfg->mounts[cfg->n_mounts++] = (struct sbx_mount){host, dest, writable};
	return 0;
}

int sbx_config_add_env(struct sbx_config *cfg, const char *kv, struct cr_err *err)
{
	const char *eq = strchr(kv, '=');
	if (!eq || eq == kv)
		return cr_failx(err, EINVAL, "environment entry '%s' is not K=V", kv);
	for (const char *p = kv; p < eq; p++)
		if (!(*p == '_' || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (p > kv && *p >= '0' && *p <= '9')))
			return cr_failx(err, EINVAL, "environment name in '%s' is invalid", kv);
	if (cfg->n_env >= SBX_MAX_ENV)
		return cr_failx(err, E2BIG, "too many environment entries (at most %d)", SBX_MAX_ENV);
	cfg->env[cfg->n_env++] = kv;
	return 0;
}

/* An inside path: absolute, canonical (no ., .., //, trailing /), not reserved. */
static int check_dest(const char *dest, struct cr_err *err)
{
	size_t n = strlen(dest);
	if (dest[0] != '/')
		return cr_failx(err, EINVAL, "destination '%s' must be an absolute path", dest);
	if (n == 1)
		return cr_failx(err, EINVAL, "destination '/' is not allowed");
	if (n >= SBX_PATH_MAX)
		return cr_failx(err, ENAMETOOLONG, "destination '%.64s...' is too long", dest);
	if (dest[n - 1] == '/')
		return cr_failx(err, EINVAL, "destination '%s' must not end with '/'", dest);
	const char *p = dest + 1;
	char first[64] = "";
	bool is_first = true;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == 0 || (l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
			return cr_failx(err, EINVAL, "destination '%s' is not canonical", dest);
		if (is_first) {
			snprintf(first, sizeof first, "%.*s", (int)(l < 63 ? l : 63), p);
			is_first = false;
		}
		p += l;
		if (*p == '/')
			p++;
	}
	for (size_t i = 0; RESERVED_TOP[i]; i++)
		if (!strcmp(first, RESERVED_TOP[i]))
			return cr_failx(err, EINVAL,
					"destination '%s' is inside /%s, which the sandbox provides",
					dest, first);
	if (!strcmp(dest, "/tmp"))
		return cr_failx(err, EINVAL, "destination '/tmp' would replace the sandbox's /tmp");
	return 0;
}

static int pack(struct sbx_plan *plan, const char *s, uint32_t *off, struct cr_err *err)
{
	size_t n = strlen(s) + 1;
	if (n > SBX_STRINGS_MAX - plan->strings_len)
		return cr_failx(err, E2BIG, "arguments and environment exceed %d bytes",
				SBX_STRINGS_MAX);
	memcpy(plan->strings + plan->strings_len, s, n);
	*off = plan->strings_len;
	plan->strings_len += (uint32_t)n;
	return 0;
}

static int check_limits(const struct sbx_limits *l, struct cr_err *err)
{
	if (l->memory_bytes && l->memory_bytes < (4ULL << 20))
		return cr_failx(err, EINVAL, "memory limit below 4 MiB cannot start a program");
	if (l->pids && l->pids < 2)
		return cr_failx(err, EINVAL, "pids limit must be at least 2 (init and the program)");
	if (l->nofile && l->nofile < 8)
		return cr_failx(err, EINVAL, "nofile limit must be at least 8");
	if (l->cpus < 0 || l->cpus > 1024)
		return cr_failx(err, EINVAL, "cpus must be between 0 and 1024");
	if (l->tmp_bytes < 4096 || l->outdir_bytes < 4096)
		return cr_failx(err, EINVAL, "tmp and output sizes must be at least 4 KiB");
	return 0;
}

int sbx_plan_build(const struct sbx_config *cfg, struct sbx_plan *plan, struct cr_err *err)
{
	memset(plan, 0, offsetof(struct sbx_plan, strings));
	plan->magic = SBX_PLAN_MAGIC;
	plan->limits = cfg->limits;
	int r = check_limits(&cfg->limits, err);
	if (r < 0)
		return r;

	if (!cfg->argv || !cfg->argv[0] || !cfg->argv[0][0])
		return cr_failx(err, EINVAL, "no program given (usage: corral run [OPTIONS] -- PROGRAM)");

	plan->userns = geteuid() != 0;
	plan->uid = plan->userns ? SBX_INSIDE_UID : cfg->uid;
	plan->gid = plan->userns ? SBX_INSIDE_UID : cfg->gid;
	if (!plan->userns && (cfg->uid == 0 || cfg->gid == 0))
		return cr_failx(err, EINVAL, "the sandboxed program may not run as root");

	if (cfg->rootfs) {
		char real[PATH_MAX];
		struct stat st;
		if (!realpath(cfg->rootfs, real))
			return cr_fail(err, errno, "--rootfs %s", cfg->rootfs);
		if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode))
			return cr_failx(err, ENOTDIR, "--rootfs %s is not a directory", cfg->rootfs);
		char usr[PATH_MAX + 8];
		snprintf(usr, sizeof usr, "%s/usr", real);
		if (stat(usr, &st) < 0 || !S_ISDIR(st.st_mode))
			return cr_failx(err, ENOENT, "--rootfs %s has no usr/ directory", cfg->rootfs);
		if (strlen(real) >= SBX_PATH_MAX)
			return cr_failx(err, ENAMETOOLONG, "--rootfs path is too long");
		if (!strcmp(real, "/"))
			real[0] = '\0';
		snprintf(plan->sysroot, sizeof plan->sysroot, "%s", real);
	}

	for (size_t i = 0; i < cfg->n_mounts; i++) {
		const struct sbx_mount *m = &cfg->mounts[i];
		const char *flag = m->writable ? "--rw" : "--ro";
		char real[PATH_MAX];
		struct stat st;
		if (!m->host || !*m->host)
			return cr_failx(err, EINVAL, "%s needs a host path", flag);
		if (!realpath(m->host, real))
			return cr_fail(err, errno, "%s %s", flag, m->host);
		if (stat(real, &st) < 0)
			return cr_fail(err, errno, "%s %s", flag, m->host);
		if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
			return cr_failx(err, EINVAL, "%s %s: only files and directories can be mounted",
					flag, m->host);
		const char *dest = m->dest ? m->dest : real;
		r = check_dest(dest, err);
		if (r < 0)
			return cr_wrap(err, "%s %s", flag, m->host);
		for (uint32_t j = 0; j < plan->n_mounts; j++)
			if (!strcmp(plan->mounts[j].dest, dest))
				return cr_failx(err, EINVAL, "%s: destination %s is used twice", flag,
						dest);
		if (strlen(real) >= SBX_PATH_MAX)
			return cr_failx(err, ENAMETOOLONG, "%s path is too long", flag);
		struct sbx_plan_mount *pm = &plan->mounts[plan->n_mounts++];
		snprintf(pm->src, sizeof pm->src, "%s", real);
		snprintf(pm->dest, sizeof pm->dest, "%s", dest);
		pm->writable = m->writable;
		pm->is_dir = S_ISDIR(st.st_mode);
	}

	if (cfg->output_dir) {
		struct stat st;
		if (stat(cfg->output_dir, &st) < 0)
			return cr_fail(err, errno, "--output %s", cfg->output_dir);
		if (!S_ISDIR(st.st_mode))
			return cr_failx(err, ENOTDIR, "--output %s is not a directory", cfg->output_dir);
		if (access(cfg->output_dir, W_OK) < 0)
			return cr_fail(err, errno, "--output %s", cfg->output_dir);
		plan->want_output = 1;
	}

	const char *wd = cfg->workdir ? cfg->workdir : "/tmp";
	if (wd[0] != '/' || strlen(wd) >= SBX_PATH_MAX || strstr(wd, "/../") ||
	    (strlen(wd) >= 3 && !strcmp(wd + strlen(wd) - 3, "/..")))
		return cr_failx(err, EINVAL, "--workdir '%s' must be an absolute path inside", wd);
	snprintf(plan->workdir, sizeof plan->workdir, "%s", wd);

	size_t argc = 0;
	while (cfg->argv[argc]) {
		if (argc >= SBX_MAX_ARGS - 1)
			return cr_failx(err, E2BIG, "too many arguments (at most %d)", SBX_MAX_ARGS - 1);
		r = pack(plan, cfg->argv[argc], &plan->argv_off[argc], err);
		if (r < 0)
			return r;
		argc++;
	}
	plan->argc = (uint32_t)argc;

	/* Environment: the fixed base set, overridden or extended by --env entries. */
	size_t envc = 0;
	for (size_t i = 0; sbx_base_env[i]; i++) {
		const char *b = sbx_base_env[i];
		size_t klen = (size_t)(strchr(b, '=') - b);
		bool overridden = false;
		for (size_t j = 0; j < cfg->n_env; j++)
			if (!strncmp(cfg->env[j], b, klen + 1))
				overridden = true;
		if (overridden)
			continue;
		r = pack(plan, b, &plan->envp_off[envc++], err);
		if (r < 0)
			return r;
	}
	for (size_t j = 0; j < cfg->n_env; j++) {
		r = pack(plan, cfg->env[j], &plan->envp_off[envc++], err);
		if (r < 0)
			return r;
	}
	plan->envc = (uint32_t)envc;
	return 0;
}
