/* cli/limits_opts.c -- see limits_opts.h. */
#include "cli/limits_opts.h"

#include <inttypes.h>

#include "cli/cli.h"
#include "core/parse.h"

int limits_opt_parse(int c, const char *arg, struct sbx_limits *l)
{
	struct cr_err err = {0};
	uint64_t v = 0;
	int r = 0;
	const char *name = "";
	switch (c) {
	case OPT_MEMORY: name = "--memory"; r = cr_parse_size(arg, &l->memory_bytes, &err); break;
	case OPT_PIDS:
		name = "--pids";
		r = cr_parse_uint(arg, 2, 1u << 22, &v, &err);
		l->pids = (uint32_t)v;
		break;
	case OPT_CPUS: name = "--cpus"; r = cr_parse_double(arg, 0.01, 1024, &l->cpus, &err); break;
	case OPT_CPU_TIME: name = "--cpu-time"; r = cr_parse_duration(arg, &l->cpu_time_ms, &err); break;
	case OPT_FILE_SIZE: name = "--file-size"; r = cr_parse_size(arg, &l->file_size_bytes, &err); break;
	case OPT_NOFILE:
		name = "--nofile";
		r = cr_parse_uint(arg, 8, 1u << 20, &v, &err);
		l->nofile = (uint32_t)v;
		break;
	case OPT_TIMEOUT: name = "--timeout"; r = cr_parse_duration(arg, &l->timeout_ms, &err); break;
	case OPT_OUTPUT_LIMIT:
		name = "--output-limit";
		r = cr_parse_size(arg, &l->output_limit_bytes, &err);
		break;
	case OPT_TMP_SIZE: name = "--tmp-size"; r = cr_parse_size(arg, &l->tmp_bytes, &err); break;
	case OPT_OUTPUT_SIZE: name = "--output-size"; r = cr_parse_size(arg, &l->outdir_bytes, &err); break;
	case OPT_OUTPUT_FILES:
		name = "--output-files";
		r = cr_parse_uint(arg, 1, 1u << 20, &v, &err);
		l->outdir_files = (uint32_t)v;
		break;
	default:
		return cli_usage_error("unknown option");
	}
	if (r < 0)
		return cli_usage_error("%s: %s", name, err.msg);
	return 0;
}

static void size_str(char *out, size_t n, uint64_t b)
{
	if (b && b % (1ULL << 30) == 0)
		snprintf(out, n, "%" PRIu64 "G", b >> 30);
	else if (b && b % (1ULL << 20) == 0)
		snprintf(out, n, "%" PRIu64 "M", b >> 20);
	else if (b && b % (1ULL << 10) == 0)
		snprintf(out, n, "%" PRIu64 "K", b >> 10);
	else
		snprintf(out, n, "%" PRIu64, b);
}

void limits_print_help(FILE *f)
{
	const struct sbx_limits *d = &sbx_limits_default;
	char mem[32], fs[32], out[32], tmp[32], os[32];
	size_str(mem, sizeof mem, d->memory_bytes);
	size_str(fs, sizeof fs, d->file_size_bytes);
	size_str(out, sizeof out, d->output_limit_bytes);
	size_str(tmp, sizeof tmp, d->tmp_bytes);
	size_str(os, sizeof os, d->outdir_bytes);
	fprintf(f,
		"  --memory SIZE         memory limit, cgroup (%s)\n"
		"  --pids N              process/thread limit, cgroup (%u)\n"
		"  --cpus F              CPU quota in cores, cgroup (none)\n"
		"  --cpu-time DURATION   CPU time per process, rlimit (none)\n"
		"  --file-size SIZE      largest file a process may write, rlimit (%s)\n"
		"  --nofile N            open files per process, rlimit (%u)\n"
		"  --timeout DURATION    wall clock, then the whole sandbox is killed (%gs)\n"
		"  --output-limit SIZE   stdout and stderr each; the rest is counted and dropped (%s)\n"
		"  --tmp-size SIZE       /tmp and /dev/shm tmpfs size (%s)\n"
		"  --output-size SIZE    /output tmpfs size (%s)\n"
		"  --output-files N      files collected from /output (%u)\n"
		"  SIZE: 65536, 64K, 512M, 1G.  DURATION: 30 (seconds), 1.5s, 500ms, 2m.\n",
		mem, d->pids, fs, d->nofile, (double)d->timeout_ms / 1000, out, tmp, os,
		d->outdir_files);
}
