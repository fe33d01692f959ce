/* report/assets.c -- figures and captured tables: validation, numbering, placement where the
 * body refers to them, and the appendix for the ones it never mentions. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/text.h"
#include "report/internal.h"

bool rpt_id_valid(const char *id, size_t len)
{
	if (!id || len < 1 || len > RPT_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = id[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '-' || ch == '_'))
			return false;
	}
	return true;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Bitwise CRC-32 (PNG's polynomial): it only ever covers the 17 bytes of IHDR. */
static uint32_t crc32_png(const unsigned char *p, size_t n)
{
	uint32_t crc = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
	}
	return crc ^ 0xFFFFFFFFu;
}

bool rpt_png_valid(const void *data, size_t len, uint32_t *width, uint32_t *height)
{
	static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
	static const unsigned char iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
	const unsigned char *p = data;
	if (!p || len < 8 + 25 + 12 || memcmp(p, sig, 8) != 0)
		return false;
	if (be32(p + 8) != 13 || memcmp(p + 12, "IHDR", 4) != 0)
		return false;
	uint32_t w = be32(p + 16), h = be32(p + 20);
	unsigned depth = p[24], ctype = p[25];
	if (!w || !h || w > 0x7FFFFFFFu || h > 0x7FFFFFFFu || p[26] || p[27] || p[28] > 1)
		return false;
	bool ok;
	switch (ctype) {
	case 0: ok = depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16; break;
	case 3: ok = depth == 1 || depth == 2 || depth == 4 || depth == 8; break;
	case 2: case 4: case 6: ok = depth == 8 || depth == 16; break;
	default: ok = false;
	}
	if (!ok || be32(p + 29) != crc32_png(p + 12, 17))
		return false;
	/* A truncated capture (the sandbox was killed mid-write) has no IEND. */
	if (memcmp(p + len - 12, iend, 12) != 0)
		return false;
	if (width)
		*width = w;
	if (height)
		*height = h;
	return true;
}

/* In an <img>, SVG runs no script and loads nothing; we only make sure it is SVG text. */
bool rpt_svg_valid(const void *data, size_t len)
{
	if (!data || !len || memchr(data, 0, len) || !cr_utf8_valid(data, len))
		return false;
	return memmem(data, len < 4096 ? len : 4096, "<svg", 4) != NULL;
}

static int ref_cmp(const void *a, const void *b)
{
	const struct rpt_ref *x = a, *y = b;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return strcmp(x->id, y->id);
}

int rpt_index_build(struct rpt_ctx *c, struct cr_err *err)
{
	const struct rpt_input *in = c->in;
	size_t n = in->n_figures + in->n_tables;
	if (in->n_figures > (size_t)1 << 20 || in->n_tables > (size_t)1 << 20)
		return cr_failx(err, E2BIG, "too many figures or tables");
	c->index = calloc(n ? n : 1, sizeof *c->index);
	c->fig_num = calloc(in->n_figures ? in->n_figures : 1, sizeof *c->fig_num);
	c->tab_num = calloc(in->n_tables ? in->n_tables : 1, sizeof *c->tab_num);
	if (!c->index || !c->fig_num || !c->tab_num)
		return cr_fail(err, ENOMEM, "report index");
	for (size_t i = 0; i < n; i++) {
		bool fig = i < in->n_figures;
		struct rpt_ref *r = &c->index[i];
		r->kind = fig ? RPT_FIGURE : RPT_TABLE;
		r->idx = fig ? i : i - in->n_figures;
		r->id = fig ? in->figures[r->idx].id : in->tables[r->idx].id;
		if (!rpt_id_valid(r->id, strnlen(r->id, RPT_ID_MAX + 1)))
			return cr_failx(err, EINVAL, "%s %zu: id must match [A-Za-z0-9_-]{1,64}",
					fig ? "figure" : "table", r->idx);
	}
	qsort(c->index, n, sizeof *c->index, ref_cmp);
	for (size_t i = 1; i < n; i++)
		if (!ref_cmp(&c->index[i - 1], &c->index[i]))
			return cr_failx(err, EINVAL, "duplicate %s id '%s'",
					c->index[i].kind == RPT_FIGURE ? "figure" : "table", c->index[i].id);
	c->n_index = n;
	return 0;
}

const struct rpt_ref *rpt_lookup(const struct rpt_ctx *c, enum rpt_kind k, const char *id)
{
	struct rpt_ref key = {.id = id, .kind = k};
	if (!c->n_index)
		return NULL;
	return bsearch(&key, c->index, c->n_index, sizeof key, ref_cmp);
}

const char *rpt_ref_target(const char *url, enum rpt_kind *kind)
{
	if (rpt_has_prefix_ci(url, "figure:")) {
		*kind = RPT_FIGURE;
		return url + 7;
	}
	if (rpt_has_prefix_ci(url, "table:")) {
		*kind = RPT_TABLE;
		return url + 6;
	}
	return NULL;
}

static const char *kind_name(enum rpt_kind k)
{
	return k == RPT_FIGURE ? "figure" : "table";
}

/* Returns NULL when the figure can be embedded, else why not; sets *mime. */
static const char *figure_problem(struct rpt_ctx *c, const struct rpt_figure *f, const char **mime,
				  uint32_t *w, uint32_t *h)
{
	*w = *h = 0;
	if (!f->data || !f->len)
		return "no data";
	if (f->len > c->lim->figure_max)
		return "too large";
	if (f->len > c->lim->figures_total_max - c->figure_bytes)
		return "the report's total figure size was reached";
	bool png = rpt_png_valid(f->data, f->len, w, h);
	if (!f->mime)
		*mime = png ? "image/png" : rpt_svg_valid(f->data, f->len) ? "image/svg+xml" : NULL;
	else if (!strcmp(f->mime, "image/png"))
		*mime = png ? "image/png" : NULL;
	else if (!strcmp(f->mime, "image/svg+xml"))
		*mime = rpt_svg_valid(f->data, f->len) ? "image/svg+xml" : NULL;
	else
		return "unsupported type (PNG or SVG only)";
	if (!*mime)
		return f->mime && !strcmp(f->mime, "image/svg+xml") ? "not a valid SVG"
								     : "not a valid PNG";
	return NULL;
}

static void place_figure(struct rpt_ctx *c, size_t idx, const char *caption)
{
	const struct rpt_figure *f = &c->in->figures[idx];
	unsigned num = c->fig_num[idx] = ++c->next_fig;
	const char *cap = caption && *caption ? caption : f->alt;
	const char *mime = NULL;
	uint32_t w, h;
	const char *why = figure_problem(c, f, &mime, &w, &h);

	rpt_printf(c, "<figure class=\"fig\" id=\"figure-%s\">\n", f->id);
	if (why) {
		c->st->invalid_assets++;
		rpt_problem(c, "figure %s %s", f->id, why);
		rpt_printf(c, "<p class=\"missing\" role=\"note\">[figure %s could not be shown: %s]</p>\n",
			   f->id, why);
	} else {
		size_t blen;
		char *b64 = cr_base64_encode(f->data, f->len, &blen);
		if (!b64) {
			if (!c->rc)
				c->rc = -ENOMEM;
			return;
		}
		rpt_printf(c, "<img src=\"data:%s;base64,", mime);
		rpt_putn(c, b64, blen);
		free(b64);
		rpt_put(c, "\" alt=\"");
		if (cap && *cap)
			rpt_esc_clip(c, cap, strlen(cap), 1000);
		else
			rpt_printf(c, "Figure %u", num);
		if (w)
			rpt_printf(c, "\" width=\"%u\" height=\"%u", w, h);
		rpt_put(c, "\">\n");
		c->figure_bytes += f->len;
		c->st->figures_embedded++;
	}
	rpt_printf(c, "<figcaption><span class=\"label\">Figure %u.</span>", num);
	if (cap && *cap) {
		rpt_put(c, " ");
		rpt_esc_clip(c, cap, strlen(cap), 1000);
	}
	rpt_put(c, "</figcaption>\n</figure>\n");
}

static void place_table(struct rpt_ctx *c, size_t idx, const char *caption)
{
	const struct rpt_table *t = &c->in->tables[idx];
	unsigned num = c->tab_num[idx] = ++c->next_tab;
	const char *cap = caption && *caption ? caption : t->caption;
	char why[128];

	rpt_printf(c, "<figure class=\"tbl\" id=\"table-%s\">\n", t->id);
	rpt_printf(c, "<figcaption><span class=\"label\">Table %u.</span>", num);
	if (cap && *cap) {
		rpt_put(c, " ");
		rpt_esc_clip(c, cap, strlen(cap), 1000);
	}
	rpt_put(c, "</figcaption>\n");
	if (rpt_table_html(c, t->data, why, sizeof why) < 0) {
		c->st->invalid_assets++;
		rpt_problem(c, "table %s %s", t->id, why);
		rpt_printf(c, "<p class=\"missing\" role=\"note\">[table %s could not be shown: ", t->id);
		rpt_esc_str(c, why);
		rpt_put(c, "]</p>\n");
	} else {
		c->st->tables_rendered++;
	}
	rpt_put(c, "</figure>\n");
}

void rpt_emit_ref(struct rpt_ctx *c, enum rpt_kind k, const char *id, const char *caption)
{
	const struct rpt_ref *r = rpt_id_valid(id, strlen(id)) ? rpt_lookup(c, k, id) : NULL;
	if (!r) {
		c->st->missing_refs++;
		rpt_problem(c, "missing %s %.64s", kind_name(k), id);
		rpt_printf(c, "<p class=\"missing\" role=\"note\">[missing %s: ", kind_name(k));
		rpt_esc_clip(c, id, strlen(id), RPT_ID_MAX);
		rpt_put(c, "]</p>\n");
		return;
	}
	unsigned num = k == RPT_FIGURE ? c->fig_num[r->idx] : c->tab_num[r->idx];
	if (num) { /* already shown: embed each figure once, point back to it */
		rpt_printf(c, "<p class=\"see-also\">(See <a href=\"#%s-%s\">%s %u</a> above.)</p>\n",
			   kind_name(k), r->id, k == RPT_FIGURE ? "Figure" : "Table", num);
		return;
	}
	if (k == RPT_FIGURE)
		place_figure(c, r->idx, caption);
	else
		place_table(c, r->idx, caption);
}

void rpt_emit_appendix(struct rpt_ctx *c)
{
	const struct rpt_input *in = c->in;
	unsigned left = 0;
	for (size_t i = 0; i < in->n_figures; i++)
		left += !c->fig_num[i];
	for (size_t i = 0; i < in->n_tables; i++)
		left += !c->tab_num[i];
	if (!left)
		return;
	c->st->in_appendix = left;
	rpt_put(c, "<section class=\"appendix\" id=\"appendix\">\n"
		   "<h2>Appendix: other figures and tables</h2>\n"
		   "<p class=\"note\">Captured during the run but not referred to in the text above.</p>\n");
	for (size_t i = 0; i < in->n_figures; i++)
		if (!c->fig_num[i])
			place_figure(c, i, NULL);
	for (size_t i = 0; i < in->n_tables; i++)
		if (!c->tab_num[i])
			place_table(c, i, NULL);
	rpt_put(c, "</section>\n");
}
