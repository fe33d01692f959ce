/* report/tables.c -- a captured table's structured data (columns, dtypes, rows) -> <table>.
 * Every cell is escaped text; numbers are right-aligned; rows and columns past the limits are
 * left out with a "showing N of M" note. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "report/internal.h"

#define LONG_CELL 40 /* bytes of text past which a cell may wrap (CSS class "long") */

static bool numeric_dtype(const char *d)
{
	static const char *const pfx[] = {"int", "uint", "float", "double", "decimal", "number",
					  "numeric", "bigint", "smallint", "real"};
	for (size_t i = 0; i < sizeof pfx / sizeof *pfx; i++)
		if (rpt_has_prefix_ci(d, pfx[i]))
			return true;
	return false;
}

static int invalid(char *why, size_t whylen, const char *msg)
{
	snprintf(why, whylen, "%s", msg);
	return -EINVAL;
}

/* Checks the shape before anything is written, so a bad table leaves no half-made markup. */
static int check(const json_t *d, char *why, size_t whylen)
{
	if (!json_is_object(d))
		return invalid(why, whylen, "its data is not a JSON object");
	const json_t *cols = json_object_get(d, "columns");
	if (!json_is_array(cols) || !json_array_size(cols))
		return invalid(why, whylen, "'columns' must be a non-empty array");
	size_t i;
	const json_t *v;
	json_array_foreach(cols, i, v)
		if (!json_is_string(v))
			return invalid(why, whylen, "column names must be strings");
	const json_t *dt = json_object_get(d, "dtypes");
	if (dt && !json_is_null(dt)) {
		if (!json_is_array(dt) || json_array_size(dt) != json_array_size(cols))
			return invalid(why, whylen, "'dtypes' must be an array as long as 'columns'");
		json_array_foreach(dt, i, v)
			if (!json_is_string(v))
				return invalid(why, whylen, "dtypes must be strings");
	}
	const json_t *rows = json_object_get(d, "rows");
	if (!json_is_array(rows))
		return invalid(why, whylen, "'rows' must be an array");
	json_array_foreach(rows, i, v)
		if (!json_is_array(v))
			return invalid(why, whylen, "every row must be an array");
	const json_t *tot = json_object_get(d, "total_rows");
	if (tot && !json_is_null(tot) && (!json_is_integer(tot) || json_integer_value(tot) < 0))
		return invalid(why, whylen, "'total_rows' must be a non-negative integer");
	return 0;
}

static void cell(struct rpt_ctx *c, const json_t *v, bool num)
{
	char buf[64];
	const char *cls = num ? " class=\"num\"" : "";
	if (!v) {
		rpt_printf(c, "<td%s></td>", cls);
	} else if (json_is_null(v)) {
		rpt_printf(c, "<td class=\"%sna\">\xE2\x80\x94</td>", num ? "num " : "");
	} else if (json_is_string(v)) {
		rpt_printf(c, "<td%s>", json_string_length(v) > LONG_CELL ? " class=\"long\"" : cls);
		rpt_esc_clip(c, json_string_value(v), json_string_length(v), c->lim->cell_max);
		rpt_put(c, "</td>");
	} else if (json_is_integer(v)) {
		rpt_printf(c, "<td%s>%" JSON_INTEGER_FORMAT "</td>", cls, json_integer_value(v));
	} else if (json_is_real(v)) {
		rpt_printf(c, "<td%s>%s</td>", cls, rpt_fmt_double(buf, sizeof buf, json_real_value(v)));
	} else if (json_is_boolean(v)) {
		rpt_printf(c, "<td%s>%s</td>", cls, json_is_true(v) ? "true" : "false");
	} else {
		char *s = cr_json_dump(v);
		if (!s) {
			if (!c->rc)
				c->rc = -ENOMEM;
			return;
		}
		rpt_printf(c, "<td%s>", strlen(s) > LONG_CELL ? " class=\"long\"" : cls);
		rpt_esc_clip(c, s, strlen(s), c->lim->cell_max);
		rpt_put(c, "</td>");
		free(s);
	}
}

int rpt_table_html(struct rpt_ctx *c, const json_t *d, char *why, size_t whylen)
{
	int r = check(d, why, whylen);
	if (r < 0)
		return r;
	const json_t *cols = json_object_get(d, "columns");
	const json_t *dt = json_object_get(d, "dtypes");
	const json_t *rows = json_object_get(d, "rows");
	const json_t *tot = json_object_get(d, "total_rows");
	size_t ncols = json_array_size(cols), nrows = json_array_size(rows);
	size_t show_c = ncols < c->lim->table_cols_max ? ncols : c->lim->table_cols_max;
	size_t show_r = nrows < c->lim->table_rows_max ? nrows : c->lim->table_rows_max;
	unsigned long long total = nrows;
	if (json_is_integer(tot) && (unsigned long long)json_integer_value(tot) > total)
		total = (unsigned long long)json_integer_value(tot);
	if (!show_c)
		return invalid(why, whylen, "no column can be shown");

	bool *num = calloc(show_c, sizeof *num);
	if (!num)
		return invalid(why, whylen, "out of memory");
	/* A column is numeric when its dtype says so or, without dtypes, when every shown value
	 * that is not null is a number. */
	for (size_t j = 0; j < show_c; j++) {
		if (json_is_array(dt)) {
			num[j] = numeric_dtype(json_string_value(json_array_get(dt, j)));
			continue;
		}
		bool any = false, all = true;
		for (size_t i = 0; i < show_r; i++) {
			const json_t *v = json_array_get(json_array_get(rows, i), j);
			if (!v || json_is_null(v))
				continue;
			any = true;
			all = all && json_is_number(v);
		}
		num[j] = any && all;
	}

	rpt_put(c, "<div class=\"table-wrap\"><table class=\"data\">\n<thead><tr>");
	for (size_t j = 0; j < show_c; j++) {
		const json_t *name = json_array_get(cols, j);
		rpt_printf(c, "<th scope=\"col\"%s>", num[j] ? " class=\"num\"" : "");
		rpt_esc_clip(c, json_string_value(name), json_string_length(name), c->lim->cell_max);
		if (json_is_array(dt)) {
			const json_t *t = json_array_get(dt, j);
			rpt_put(c, "<span class=\"dtype\">");
			rpt_esc_clip(c, json_string_value(t), json_string_length(t), 64);
			rpt_put(c, "</span>");
		}
		rpt_put(c, "</th>");
	}
	rpt_put(c, "</tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < show_r && !c->rc; i++) {
		const json_t *row = json_array_get(rows, i);
		rpt_put(c, "<tr>");
		for (size_t j = 0; j < show_c; j++)
			cell(c, json_array_get(row, j), num[j]);
		rpt_put(c, "</tr>\n");
	}
	rpt_put(c, "</tbody></table></div>\n");
	free(num);

	char a[32], b[32];
	if (show_r < total || show_c < ncols) {
		rpt_printf(c, "<p class=\"note\">Showing %s of %s rows", rpt_fmt_group(a, sizeof a, show_r),
			   rpt_fmt_group(b, sizeof b, total));
		if (show_c < ncols)
			rpt_printf(c, " and %zu of %zu columns", show_c, ncols);
		rpt_put(c, ".</p>\n");
	}
	return 0;
}
