/* server/keys.c -- API keys: loading the --api-keys file, generating a key, checking one.
 *
 * A presented key is compared with every configured key in constant time per key and without
 * stopping at a match, so the time taken says nothing about which bytes matched.  Keys are
 * printable ASCII without blanks (they travel in HTTP headers), 16-256 bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/text.h"
#include "server/srv_internal.h"

static bool is_e2b_key(const char *k, size_t n)
{
	if (n <= 4 || strncmp(k, "e2b_", 4))
		return false;
	for (size_t i = 4; i < n; i++)
		if (!((k[i] >= '0' && k[i] <= '9') || (k[i] >= 'a' && k[i] <= 'f')))
			return false;
	return true;
}

int srv_keys_add(struct srv_keys *k, const char *key, size_t len, struct cr_err *err)
{
	if (len < SRV_KEY_MIN || len > SRV_KEY_MAX)
		return cr_failx(err, EINVAL, "an API key must be %d-%d characters long", SRV_KEY_MIN,
				SRV_KEY_MAX);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)key[i] <= 0x20 || (unsigned char)key[i] >= 0x7f)
			return cr_failx(err, EINVAL, "an API key must be printable ASCII without blanks");
	if (k->n >= SRV_KEYS_MAX)
		return cr_failx(err, E2BIG, "more than %d API keys", SRV_KEYS_MAX);
	struct srv_key *nv = realloc(k->v, (k->n + 1) * sizeof *nv);
	if (!nv)
		return cr_fail(err, ENOMEM, "keys");
	k->v = nv;
	char *copy = malloc(len + 1);
	if (!copy)
		return cr_fail(err, ENOMEM, "keys");
	memcpy(copy, key, len);
	copy[len] = '\0';
	k->v[k->n++] = (struct srv_key){.key = copy, .len = len, .e2b = is_e2b_key(key, len)};
	return 0;
}

void srv_keys_free(struct srv_keys *k)
{
	for (size_t i = 0; i < k->n; i++) {
		explicit_bzero(k->v[i].key, k->v[i].len);
		free(k->v[i].key);
	}
	free(k->v);
	k->v = NULL;
	k->n = 0;
}

int srv_keys_load(struct srv_keys *k, const char *path, struct cr_err *err)
{
	CR_AUTOCLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cr_fail(err, errno, "--api-keys %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return cr_fail(err, errno, "--api-keys %s", path);
	if (!S_ISREG(st.st_mode))
		return cr_failx(err, EINVAL, "--api-keys %s is not a regular file", path);
	if (st.st_mode & 077)
		return cr_failx(err, EPERM, "--api-keys %s can be read by others (mode %03o): run "
				"chmod 600 %s", path, (unsigned)(st.st_mode & 0777), path);
	struct cr_buf b;
	cr_buf_init(&b, SRV_KEYFILE_MAX);
	char chunk[4096];
	ssize_t n;
	int r = 0;
	while (r == 0 && (n = read(fd, chunk, sizeof chunk)) > 0)
		r = cr_buf_append(&b, chunk, (size_t)n);
	explicit_bzero(chunk, sizeof chunk);
	if (r < 0) {
		cr_buf_free(&b);
		return cr_failx(err, E2BIG, "--api-keys %s is larger than %u bytes", path,
				SRV_KEYFILE_MAX);
	}
	size_t line_no = 0;
	for (char *p = b.data, *next; r == 0 && p && *p; p = next) {
		line_no++;
		char *nl = strchr(p, '\n');
		next = nl ? nl + 1 : p + strlen(p);
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		while (len && (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		while (len && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		if (len == 0 || *p == '#')
			continue;
		if ((r = srv_keys_add(k, p, len, err)) < 0)
			cr_wrap(err, "--api-keys %s line %zu", path, line_no);
	}
	if (b.data)
		explicit_bzero(b.data, b.len);
	cr_buf_free(&b);
	if (r == 0 && k->n == 0)
		r = cr_failx(err, EINVAL, "--api-keys %s holds no key", path);
	return r;
}

int srv_key_generate(char *out, size_t n, struct cr_err *err)
{
	unsigned char rnd[16];
	if (n < 4 + 2 * sizeof rnd + 1)
		return cr_failx(err, ENOSPC, "key buffer too small");
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		return cr_fail(err, errno ? errno : EIO, "getrandom");
	memcpy(out, "e2b_", 4);
	for (size_t i = 0; i < sizeof rnd; i++)
		snprintf(out + 4 + 2 * i, 3, "%02x", rnd[i]);
	explicit_bzero(rnd, sizeof rnd);
	return 0;
}

int srv_keys_match(const struct srv_keys *k, const char *presented, size_t len, bool e2b_only)
{
	int found = -1;
	/* every key is compared: no early exit on a match */
	for (size_t i = 0; i < k->n; i++) {
		bool eq = cr_consttime_eq(presented, len, k->v[i].key, k->v[i].len);
		if (eq && (!e2b_only || k->v[i].e2b))
			found = (int)i;
	}
	return found;
}
