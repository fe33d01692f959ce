/* report/brand.c -- the brand file (--brand): name, logo, colours, disclaimer.
 *
 *   {"name": "Acme Analytics", "logo": "acme.svg",
 *    "colors": {"primary": "#123456", "accent": "#c05621", "text": "#1a202c",
 *               "muted": "#4a5568", "background": "#ffffff", "surface": "#f7fafc",
 *               "border": "#e2e8f0"},
 *    "disclaimer": "..."}
 *
 * Every key is optional; an unknown key is an error (a typo should not be silently ignored).
 * Colours go into CSS, so they are checked to be exactly #rgb or #rrggbb.  Error messages never
 * echo values from the file (they may hold terminal escapes). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/json.h"
#include "report/internal.h"

#define BRAND_FILE_MAX (64 * 1024)

void rpt_brand_default(struct rpt_brand *b)
{
	memset(b, 0, sizeof *b);
	strcpy(b->name, "corral");
	strcpy(b->primary, "#274060");
	strcpy(b->accent, "#1b6f6a");
	strcpy(b->text, "#1f2328");
	strcpy(b->muted, "#57606a");
	strcpy(b->background, "#ffffff");
	strcpy(b->surface, "#f6f8fa");
	strcpy(b->border, "#d0d7de");
}

void rpt_brand_free(struct rpt_brand *b)
{
	free(b->logo);
	free(b->disclaimer);
	b->logo = NULL;
	b->logo_len = 0;
	b->logo_mime = NULL;
	b->disclaimer = NULL;
}

bool rpt_color_valid(const char *s)
{
	if (!s || s[0] != '#')
		return false;
	size_t n = strlen(s + 1);
	if (n != 3 && n != 6)
		return false;
	for (size_t i = 1; i <= n; i++) {
		char ch = s[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')))
			return false;
	}
	return true;
}

/* Reads a whole regular file of at most max bytes. */
static int read_capped(int dirfd, const char *path, size_t max, char **out, size_t *len,
		       struct cr_err *err)
{
	CR_AUTOCLOSE int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return cr_fail(err, errno, "cannot open %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return cr_fail(err, errno, "cannot stat %s", path);
	if (!S_ISREG(st.st_mode))
		return cr_failx(err, EINVAL, "%s is not a regular file", path);
	if ((uint64_t)st.st_size > max)
		return cr_failx(err, EFBIG, "%s is larger than %zu KiB", path, max / 1024);
	CR_AUTOFREE char *buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return cr_fail(err, ENOMEM, "reading %s", path);
	size_t got = 0;
	while (got <= max) { /* the file may grow after fstat: read until EOF, never past max */
		ssize_t r = read(fd, buf + got, (size_t)st.st_size + 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return cr_fail(err, errno, "reading %s", path);
		if (r == 0)
			break;
		got += (size_t)r;
		if (got > (size_t)st.st_size)
			return cr_failx(err, EAGAIN, "%s changed while being read", path);
	}
	buf[got] = '\0';
	*out = cr_take_ptr(&buf);
	*len = got;
	return 0;
}

static int load_logo(struct rpt_brand *b, const char *dir, const char *path, struct cr_err *err)
{
	if (!*path)
		return 0;
	if (!dir && path[0] != '/')
		return cr_failx(err, EINVAL, "'logo' must be an absolute path here");
	CR_AUTOCLOSE int dfd = -1;
	if (path[0] != '/') {
		dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return cr_fail(err, errno, "cannot open directory %s", dir);
	}
	char *data = NULL;
	size_t len = 0;
	int r = read_capped(path[0] == '/' ? AT_FDCWD : dfd, path, RPT_LOGO_MAX, &data, &len, err);
	if (r < 0) {
		if (err)
			cr_wrap(err, "logo");
		return r;
	}
	if (rpt_png_valid(data, len, NULL, NULL)) {
		b->logo_mime = "image/png";
	} else if (rpt_svg_valid(data, len)) {
		b->logo_mime = "image/svg+xml";
	} else {
		free(data);
		return cr_failx(err, EINVAL, "logo %s is not a valid PNG or SVG file", path);
	}
	b->logo = data;
	b->logo_len = len;
	return 0;
}

static int parse_colors(struct rpt_brand *b, const json_t *colors, struct cr_err *err)
{
	struct {
		const char *key;
		char *dst;
	} map[] = {{"primary", b->primary}, {"accent", b->accent}, {"text", b->text},
		   {"muted", b->muted}, {"background", b->background}, {"surface", b->surface},
		   {"border", b->border}};
	if (!json_is_object(colors))
		return cr_failx(err, EINVAL, "'colors' must be an object");
	const char *key;
	const json_t *v;
	json_object_foreach((json_t *)colors, key, v) {
		size_t i = 0;
		while (i < sizeof map / sizeof *map && strcmp(map[i].key, key))
			i++;
		if (i == sizeof map / sizeof *map)
			return cr_failx(err, EINVAL,
					"unknown colour '%.32s' (known: primary, accent, text, muted, "
					"background, surface, border)", key);
		const char *s = json_string_value(v);
		if (!rpt_color_valid(s))
			return cr_failx(err, EINVAL, "colors.%s must be \"#rgb\" or \"#rrggbb\"", key);
		/* Lower case, so equal brands give equal bytes. */
		for (size_t k = 0; s[k]; k++)
			map[i].dst[k] = (char)(s[k] >= 'A' && s[k] <= 'F' ? s[k] - 'A' + 'a' : s[k]);
		map[i].dst[strlen(s)] = '\0';
	}
	return 0;
}

static bool printable_line(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7F)
			return false;
	return true;
}

static int parse(const json_t *j, const char *dir, struct rpt_brand *b, struct cr_err *err)
{
	if (!json_is_object(j))
		return cr_failx(err, EINVAL, "must be a JSON object");
	const char *key;
	const json_t *v;
	json_object_foreach((json_t *)j, key, v) {
		if (strcmp(key, "name") && strcmp(key, "logo") && strcmp(key, "colors") &&
		    strcmp(key, "disclaimer"))
			return cr_failx(err, EINVAL,
					"unknown key '%.32s' (known: name, logo, colors, disclaimer)", key);
	}
	const char *name = NULL, *logo = NULL, *disc = NULL;
	if (cr_json_get_str(j, "name", &name, err) < 0 || cr_json_get_str(j, "logo", &logo, err) < 0 ||
	    cr_json_get_str(j, "disclaimer", &disc, err) < 0)
		return -EINVAL;
	if (name) {
		size_t n = strlen(name);
		if (!n || n > RPT_BRAND_NAME_MAX || !printable_line(name))
			return cr_failx(err, EINVAL, "'name' must be 1 to %d bytes on one line",
					RPT_BRAND_NAME_MAX);
		memcpy(b->name, name, n + 1);
	}
	if (disc) {
		if (strlen(disc) > RPT_DISCLAIMER_MAX)
			return cr_failx(err, EINVAL, "'disclaimer' is longer than %d bytes",
					RPT_DISCLAIMER_MAX);
		if (!(b->disclaimer = strdup(disc)))
			return cr_fail(err, ENOMEM, "brand");
	}
	const json_t *colors = json_object_get(j, "colors");
	if (colors && !json_is_null(colors) && parse_colors(b, colors, err) < 0)
		return -EINVAL;
	if (logo)
		return load_logo(b, dir, logo, err);
	return 0;
}

int rpt_brand_parse(const char *text, size_t len, const char *dir, struct rpt_brand *b,
		    struct cr_err *err)
{
	rpt_brand_default(b);
	json_t *j = cr_json_parse(text, len, BRAND_FILE_MAX, err);
	if (!j)
		return -(err && err->code ? err->code : EINVAL);
	int r = parse(j, dir, b, err);
	json_decref(j);
	if (r < 0) {
		rpt_brand_free(b);
		rpt_brand_default(b);
	}
	return r;
}

int rpt_brand_load(const char *path, struct rpt_brand *b, struct cr_err *err)
{
	rpt_brand_default(b);
	char *text = NULL;
	size_t len = 0;
	int r = read_capped(AT_FDCWD, path, BRAND_FILE_MAX, &text, &len, err);
	if (r < 0) {
		if (err)
			cr_wrap(err, "brand file");
		return r;
	}
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, sizeof dir, ".");
	else if (slash == path)
		snprintf(dir, sizeof dir, "/");
	else
		snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	r = rpt_brand_parse(text, len, dir, b, err);
	free(text);
	if (r < 0 && err)
		cr_wrap(err, "brand file %s", path);
	return r;
}
