/* sandbox/cgroup_self.c -- a v1 child moving itself into its cgroup (see cgroup.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "sandbox/cgroup.h"

static int write_zero(const char *dir)
{
	char path[SBX_CG_PATH_MAX + 16];
	if (!dir[0])
		return 0;
	snprintf(path, sizeof path, "%s/tasks", dir);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, "0", 1);
	int e = errno;
	close(fd);
	return n == 1 ? 0 : -e;
}

int sbx_cg_attach_self(const struct sbx_cg *cg, const char **what)
{
	static const char *const names[] = {"memory", "pids", "cpu", "cpuacct"};
	const char *dirs[] = {cg->v1_memory, cg->v1_pids, cg->v1_cpu, cg->v1_cpuacct};
	if (cg->mode != SBX_CG_V1)
		return 0;
	for (int i = 0; i < 4; i++) {
		/* cpu and cpuacct may be one joint hierarchy: the second write is then a no-op */
		int r = write_zero(dirs[i]);
		if (r < 0) {
			*what = names[i];
			return r;
		}
	}
	return 0;
}

int sbx_cg_pids(const struct sbx_cg *cg, pid_t *out, size_t max)
{
	const char *dir = cg->mode == SBX_CG_V2 ? cg->v2_dir
			  : cg->v1_memory[0]      ? cg->v1_memory
						  : cg->v1_pids;
	if (!cg->created || !dir[0])
		return -ENOENT;
	char path[SBX_CG_PATH_MAX + 16], buf[4096];
	snprintf(path, sizeof path, "%s/cgroup.procs", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	size_t k = 0;
	for (char *p = buf; *p && k < max;) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p)
			break;
		if (v > 0)
			out[k++] = (pid_t)v;
		p = end;
		while (*p == '\n' || *p == ' ')
			p++;
	}
	return (int)k;
}
