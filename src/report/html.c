/* report/html.c -- output, escaping, heading slugs and number formatting (see internal.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/text.h"
#include "report/internal.h"

void rpt_putn(struct rpt_ctx *c, const char *s, size_t n)
{
	if (c->rc || !n)
		return;
	int r = cr_buf_append(c->out, s, n);
	if (r < 0)
		c->rc = r;
}

void rpt_put(struct rpt_ctx *c, const char *s)
{
	rpt_putn(c, s, strlen(s));
}

void rpt_printf(struct rpt_ctx *c, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	/* Only our own short fragments go through here; a longer one is a bug, not input. */
	if (n < 0 || (size_t)n >= sizeof tmp) {
		if (!c->rc)
			c->rc = -EOVERFLOW;
		return;
	}
	rpt_putn(c, tmp, (size_t)n);
}

/* Length of the UTF-8 sequence at p when it is valid and not a C1 control, else 0. */
static size_t utf8_ok(const unsigned char *p, size_t n)
{
	size_t len = p[0] >= 0xF0 ? 4 : p[0] >= 0xE0 ? 3 : p[0] >= 0xC2 ? 2 : 0;
	if (!len || len > n || !cr_utf8_valid((const char *)p, len))
		return 0;
	if (len == 2 && p[0] == 0xC2 && p[1] < 0xA0) /* U+0080..U+009F */
		return 0;
	return len;
}

void rpt_esc(struct rpt_ctx *c, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t run = 0; /* start of the pending run of bytes copied as they are */
	size_t i = 0;
	while (i < n && !c->rc) {
		unsigned char ch = p[i];
		const char *rep = NULL;
		size_t adv = 1;
		if (ch >= 0x80) {
			adv = utf8_ok(p + i, n - i);
			if (!adv) {
				rep = "\xEF\xBF\xBD";
				adv = 1;
			}
		} else {
			switch (ch) {
			case '&': rep = "&amp;"; break;
			case '<': rep = "&lt;"; break;
			case '>': rep = "&gt;"; break;
			case '"': rep = "&quot;"; break;
			case '\'': rep = "&#39;"; break;
			case ':': rep = "&#58;"; break;
			case '\t': case '\n': case '\r': break;
			default:
				if (ch < 0x20 || ch == 0x7F)
					rep = "\xEF\xBF\xBD";
			}
		}
		if (rep) {
			rpt_putn(c, s + run, i - run);
			rpt_put(c, rep);
			run = i + adv;
		}
		i += adv;
	}
	rpt_putn(c, s + run, n - run);
}

void rpt_esc_str(struct rpt_ctx *c, const char *s)
{
	if (s)
		rpt_esc(c, s, strlen(s));
}

void rpt_esc_clip(struct rpt_ctx *c, const char *s, size_t n, size_t max)
{
	if (n <= max) {
		rpt_esc(c, s, n);
		return;
	}
	rpt_esc(c, s, cr_utf8_clip(s, max));
	rpt_put(c, "\xE2\x80\xA6");
}

void rpt_problem(struct rpt_ctx *c, const char *fmt, ...)
{
	if (!c->st)
		return;
	char *p = c->st->problems;
	size_t sz = sizeof c->st->problems, used = strlen(p);
	if (used + 8 >= sz)
		return;
	if (used) {
		memcpy(p + used, "; ", 3);
		used += 2;
	}
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(p + used, sz - used, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n >= sz - used) /* cut: end on a marker, not half a word */
		memcpy(p + sz - 4, "...", 4);
	/* It quotes ids from the model, and callers may print it on a terminal. */
	for (size_t i = used; p[i]; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7F)
			p[i] = '?';
}

static bool id_taken(const struct rpt_ctx *c, const char *id)
{
	for (size_t i = 0; i < c->n_slugs; i++)
		if (!strcmp(c->slugs[i], id))
			return true;
	/* Figure and table elements own "figure-ID" / "table-ID". */
	if (!strncmp(id, "figure-", 7) && rpt_lookup(c, RPT_FIGURE, id + 7))
		return true;
	if (!strncmp(id, "table-", 6) && rpt_lookup(c, RPT_TABLE, id + 6))
		return true;
	return false;
}

bool rpt_id_reserve(struct rpt_ctx *c, const char *id)
{
	if (id_taken(c, id))
		return false;
	if (c->n_slugs == c->cap_slugs) {
		size_t ncap = c->cap_slugs ? c->cap_slugs * 2 : 32;
		char **p = realloc(c->slugs, ncap * sizeof *p);
		if (!p)
			return false;
		c->slugs = p;
		c->cap_slugs = ncap;
	}
	char *d = strdup(id);
	if (!d)
		return false;
	c->slugs[c->n_slugs++] = d;
	return true;
}

/* GitHub-like: letters and digits kept (ASCII lowercased; non-ASCII bytes kept as they are,
 * cmark has validated the UTF-8), '_' kept, runs of anything else become one '-'. */
const char *rpt_slug(struct rpt_ctx *c, const char *text)
{
	char base[RPT_SLUG_MAX + 1];
	size_t n = 0;
	bool dash = false;
	for (const unsigned char *p = (const unsigned char *)text; *p && n < RPT_SLUG_MAX; p++) {
		unsigned char ch = *p;
		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch >= 0x80) {
			if (dash && n)
				base[n++] = '-';
			dash = false;
			if (n < RPT_SLUG_MAX)
				base[n++] = (char)ch;
		} else if (ch >= 'A' && ch <= 'Z') {
			if (dash && n)
				base[n++] = '-';
			dash = false;
			if (n < RPT_SLUG_MAX)
				base[n++] = (char)(ch - 'A' + 'a');
		} else {
			dash = true;
		}
	}
	n = cr_utf8_clip(base, n); /* the length cap may have cut a character */
	base[n] = '\0';
	if (!n)
		strcpy(base, "section");
	char cand[RPT_SLUG_MAX + 16];
	snprintf(cand, sizeof cand, "%s", base);
	for (unsigned k = 2; id_taken(c, cand); k++)
		snprintf(cand, sizeof cand, "%s-%u", base, k);
	if (!rpt_id_reserve(c, cand))
		return NULL;
	return c->slugs[c->n_slugs - 1];
}

int rpt_toc_add(struct rpt_ctx *c, int level, const char *slug, const char *text)
{
	if (c->n_toc == c->cap_toc) {
		size_t ncap = c->cap_toc ? c->cap_toc * 2 : 16;
		struct rpt_toc_entry *p = realloc(c->toc, ncap * sizeof *p);
		if (!p)
			return -ENOMEM;
		c->toc = p;
		c->cap_toc = ncap;
	}
	struct rpt_toc_entry *e = &c->toc[c->n_toc];
	e->level = level;
	e->slug = strdup(slug);
	e->text = strdup(text);
	if (!e->slug || !e->text) {
		free(e->slug);
		free(e->text);
		return -ENOMEM;
	}
	c->n_toc++;
	return 0;
}

void rpt_ctx_free(struct rpt_ctx *c)
{
	for (size_t i = 0; i < c->n_slugs; i++)
		free(c->slugs[i]);
	free(c->slugs);
	for (size_t i = 0; i < c->n_toc; i++) {
		free(c->toc[i].slug);
		free(c->toc[i].text);
	}
	free(c->toc);
	free(c->index);
	free(c->fig_num);
	free(c->tab_num);
}

const char *rpt_fmt_group(char *buf, size_t sz, uint64_t v)
{
	char digits[24];
	int n = snprintf(digits, sizeof digits, "%" PRIu64, v);
	size_t o = 0;
	for (int i = 0; i < n && o + 2 < sz; i++) {
		if (i && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

/* printf's %g follows LC_NUMERIC; a host program may have set a locale with a decimal comma,
 * and the report must not change with it. */
static void c_locale_point(char *s)
{
	for (; *s; s++)
		if (*s == ',')
			*s = '.';
}

const char *rpt_fmt_double(char *buf, size_t sz, double d)
{
	if (d != d) {
		snprintf(buf, sz, "NaN");
		return buf;
	}
	/* The shortest %.Ng that reads back as the same double ("0.1", not 0.10000000000000001),
	 * but at most 10 significant digits: 4.99 + 12.5 shows as 17.49, not 17.490000000000002.
	 * A table in a report is for reading; the data itself stays in the sandbox. */
	for (int prec = 1; prec <= 10; prec++) {
		snprintf(buf, sz, "%.*g", prec, d);
		c_locale_point(buf);
		if (strtod(buf, NULL) == d)
			break;
	}
	return buf;
}

const char *rpt_fmt_bytes(char *buf, size_t sz, uint64_t v)
{
	static const char *const unit[] = {"KiB", "MiB", "GiB", "TiB"};
	if (v < 1024) {
		snprintf(buf, sz, "%" PRIu64 " B", v);
		return buf;
	}
	double x = (double)v;
	int u = -1;
	while (x >= 1024 && u < 3) {
		x /= 1024;
		u++;
	}
	snprintf(buf, sz, "%.1f %s", x, unit[u]);
	c_locale_point(buf);
	return buf;
}

const char *rpt_fmt_secs(char *buf, size_t sz, double s)
{
	if (!(s >= 0))
		s = 0;
	if (s < 60) {
		snprintf(buf, sz, "%.1f s", s);
		c_locale_point(buf);
	} else if (s < 3600) {
		uint64_t t = (uint64_t)(s + 0.5);
		snprintf(buf, sz, "%" PRIu64 " min %02" PRIu64 " s", t / 60, t % 60);
	} else {
		uint64_t t = (uint64_t)(s / 60 + 0.5);
		snprintf(buf, sz, "%" PRIu64 " h %02" PRIu64 " min", t / 60, t % 60);
	}
	return buf;
}

bool rpt_has_prefix_ci(const char *s, const char *prefix)
{
	for (; *prefix; s++, prefix++) {
		char a = *s, b = *prefix;
		if (a >= 'A' && a <= 'Z')
			a = (char)(a - 'A' + 'a');
		if (a != b)
			return false;
	}
	return true;
}
