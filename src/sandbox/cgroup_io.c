/* sandbox/cgroup_io.c -- the small file and process helpers of cgroup_internal.h. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "sandbox/cgroup_internal.h"

const char *const sbx_cgi_ctrl_name[SBX_CGI_NCTRL] = {"memory", "pids", "cpu", "cpuacct"};

int sbx_cgi_join(char *out, size_t n, const char *dir, const char *file)
{
	int r = snprintf(out, n, "%s/%s", dir, file);
	return (r < 0 || (size_t)r >= n) ? -ENAMETOOLONG : 0;
}

/* Reads fd from offset 0 into buf (at most cap-1 bytes, NUL-terminated): the length, -errno,
 * or -EFBIG when there is more.  pread: a kept cgroup file is re-read from its start, and a
 * seq_file read from offset 0 is generated afresh. */
static int read_from_start(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	while (len < cap - 1) {
		ssize_t r = pread(fd, buf + len, cap - 1 - len, (off_t)len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			buf[len] = '\0';
			return -errno;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	if (len == cap - 1) {
		char extra;
		ssize_t r;
		while ((r = pread(fd, &extra, 1, (off_t)len)) < 0 && errno == EINTR)
			;
		if (r > 0)
			return -EFBIG;
	}
	return (int)len;
}

static int open_file(const char *dir, const char *file)
{
	char path[SBX_CG_PATH_MAX + 64];
	if (sbx_cgi_join(path, sizeof path, dir, file) < 0)
		return -ENAMETOOLONG;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	return fd < 0 ? -errno : fd;
}

int sbx_cgi_read(const char *dir, const char *file, char *buf, size_t cap)
{
	return sbx_cgi_read_kept(NULL, dir, file, buf, cap);
}

int sbx_cgi_read_kept(int *keep, const char *dir, const char *file, char *buf, size_t cap)
{
	if (cap < 2 || cap > INT_MAX)
		return -EINVAL;
	buf[0] = '\0';
	if (keep && *keep >= 0)
		return read_from_start(*keep, buf, cap);
	CR_AUTOCLOSE int fd = open_file(dir, file);
	if (fd < 0)
		return fd;
	int r = read_from_start(fd, buf, cap);
	if (keep) { /* handed over: the caller's to close */
		*keep = fd;
		fd = -1;
	}
	return r;
}

int sbx_cgi_write(const char *dir, const char *file, const char *val, struct cr_err *err)
{
	char path[SBX_CG_PATH_MAX + 64];
	if (sbx_cgi_join(path, sizeof path, dir, file) < 0)
		return cr_failx(err, ENAMETOOLONG, "cgroup path too long: %s/%s", dir, file);
	CR_AUTOCLOSE int fd =
		open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return cr_fail(err, errno, "open %s", path);
	size_t n = strlen(val);
	ssize_t w;
	while ((w = write(fd, val, n)) < 0 && errno == EINTR)
		;
	if (w < 0)
		return cr_fail(err, errno, "write '%s' to %s", val, path);
	if ((size_t)w != n)
		return cr_failx(err, EIO, "short write to %s", path);
	return 0;
}

bool sbx_cgi_exists(const char *dir, const char *file)
{
	char path[SBX_CG_PATH_MAX + 64];
	return sbx_cgi_join(path, sizeof path, dir, file) == 0 && access(path, F_OK) == 0;
}

int sbx_cgi_parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	while (*s == ' ' || *s == '\t' || *s == '\n')
		s++;
	if (*s)
		return -EINVAL;
	*out = v;
	return 0;
}

int sbx_cgi_kv_u64(const char *text, const char *key, uint64_t *out)
{
	size_t kl = strlen(key);
	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t ll = nl ? (size_t)(nl - line) : strlen(line);
		if (ll > kl && strncmp(line, key, kl) == 0 && line[kl] == ' ') {
			char val[32];
			size_t vl = ll - kl - 1;
			if (vl == 0 || vl >= sizeof val)
				return -EINVAL;
			memcpy(val, line + kl + 1, vl);
			val[vl] = '\0';
			return sbx_cgi_parse_u64(val, out);
		}
		line = nl ? nl + 1 : NULL;
	}
	return -ENOENT;
}

int sbx_cgi_read_u64(int *keep, const char *dir, const char *file, uint64_t *out)
{
	char buf[64];
	int r = sbx_cgi_read_kept(keep, dir, file, buf, sizeof buf);
	return r < 0 ? (r == -EFBIG ? -EINVAL : r) : sbx_cgi_parse_u64(buf, out);
}

int sbx_cgi_read_kv(int *keep, const char *dir, const char *file, const char *key,
		    uint64_t *out)
{
	char buf[SBX_CGI_SMALL];
	int r = sbx_cgi_read_kept(keep, dir, file, buf, sizeof buf);
	return r < 0 ? r : sbx_cgi_kv_u64(buf, key, out);
}

void sbx_cgi_tally(int r, int *bad, int *got)
{
	if (r == 0)
		(*got)++;
	else if (r != -ENOENT && *bad == 0)
		*bad = r;
}

bool sbx_cgi_has_word(const char *list, const char *word)
{
	size_t wl = strlen(word);
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, " ,\n\t");
		if (n == wl && strncmp(p, word, wl) == 0)
			return true;
		p += n;
		if (*p)
			p++;
	}
	return false;
}

bool sbx_cgi_rel_ok(const char *rel)
{
	for (const char *p = rel; *p;) {
		size_t n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += n;
		if (*p)
			p++;
	}
	return true;
}

int sbx_cgi_mkdirs(const char *base, const char *rel, char *out, size_t n, struct cr_err *err)
{
	int w = snprintf(out, n, "%s", base);
	if (w < 0 || (size_t)w >= n)
		return cr_failx(err, ENAMETOOLONG, "cgroup path too long: %s", base);
	size_t len = (size_t)w;
	for (const char *p = rel; *p;) {
		size_t c = strcspn(p, "/");
		if (c > 0) {
			if (len + 1 + c >= n)
				return cr_failx(err, ENAMETOOLONG, "cgroup path too long: %s/%s",
						base, rel);
			out[len++] = '/';
			memcpy(out + len, p, c);
			len += c;
			out[len] = '\0';
			if (mkdir(out, 0755) < 0 && errno != EEXIST)
				return cr_fail(err, errno, "mkdir %s", out);
		}
		p += c;
		if (*p)
			p++;
	}
	return 0;
}

int sbx_cgi_kill_procs(const char *dir)
{
	const struct timespec pause_ts = {0, 5 * 1000 * 1000};
	pid_t self = getpid();
	/* Bounded: a fork bomb is capped by pids.max, so each round shrinks what is left. */
	for (int round = 0; round < 200; round++) {
		char buf[SBX_CGI_SMALL];
		int r = sbx_cgi_read(dir, "cgroup.procs", buf, sizeof buf);
		if (r == -ENOENT)
			return 0; /* the cgroup is gone: nothing left to kill */
		if (r < 0 && r != -EFBIG)
			return r;
		if (r == -EFBIG) { /* drop a partial last line; the next round sees the rest */
			char *nl = strrchr(buf, '\n');
			if (nl)
				nl[1] = '\0';
		}
		int found = 0;
		char *save = NULL;
		for (char *t = strtok_r(buf, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
			uint64_t pid;
			if (sbx_cgi_parse_u64(t, &pid) < 0 || pid <= 1 || pid > INT_MAX ||
			    (pid_t)pid == self)
				continue;
			if (kill((pid_t)pid, SIGKILL) == 0)
				found++;
		}
		if (found == 0)
			return 0;
		nanosleep(&pause_ts, NULL);
	}
	return -EBUSY;
}

int sbx_cgi_rmdir(const char *dir)
{
	const struct timespec pause_ts = {0, 10 * 1000 * 1000};
	for (int i = 0; i < 100; i++) { /* ~1 s: the kernel may still be finishing exits */
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -errno;
		nanosleep(&pause_ts, NULL);
	}
	return -EBUSY;
}

int sbx_cgi_cpu_quota(double cpus, uint64_t *quota_us)
{
	if (!isfinite(cpus) || cpus < 0 || cpus > 1e6)
		return -EINVAL;
	uint64_t q = (uint64_t)(cpus * SBX_CGI_PERIOD_US + 0.5);
	if (cpus > 0 && q < 1000)
		q = 1000; /* the kernel's minimum quota is 1 ms */
	*quota_us = q;
	return 0;
}

void sbx_cgi_note_missing(struct sbx_cg_host *h, const char *what)
{
	if (h->has_memory && h->has_pids && h->has_cpu)
		return;
	snprintf(h->note, sizeof h->note, "%s: no%s%s%s controller; those limits are not enforced",
		 what, h->has_memory ? "" : " memory", h->has_pids ? "" : " pids",
		 h->has_cpu ? "" : " cpu");
}
