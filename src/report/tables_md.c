/* report/tables_md.c -- a guard run on the model's Markdown before cmark-gfm parses it.
 *
 * cmark-gfm 0.29.0.gfm.6 (Debian 12) pads every table row to the header's width, so a wide
 * delimiter row followed by many one-cell lines costs columns x rows nodes: 200 KB of input
 * took 11 s and 6 GB.  So each table's worst case is charged to a budget first, and a
 * table over the budget gets a backslash before its delimiter row, which makes the whole
 * table ordinary text; nothing else in the input changes. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "report/internal.h"

#define TABLE_CELL_BUDGET 250000

static bool blank_n(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			return false;
	return true;
}

struct line {
	size_t start, end; /* end excludes the line ending */
};

/* Splits like cmark does: "\n", "\r\n" and a lone "\r" all end a line. */
static struct line *split_lines(const char *s, size_t n, size_t *count)
{
	size_t k = 1;
	for (size_t i = 0; i < n; i++)
		k += s[i] == '\n' || (s[i] == '\r' && (i + 1 == n || s[i + 1] != '\n'));
	struct line *v = malloc(k * sizeof *v);
	if (!v)
		return NULL;
	size_t j = 0, start = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\n' && s[i] != '\r')
			continue;
		v[j++] = (struct line){start, i};
		if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
			i++;
		start = i + 1;
	}
	v[j++] = (struct line){start, n};
	*count = j;
	return v;
}

/* Columns of a GFM delimiter row ("| --- | :-: |"), after block-quote and list-marker
 * prefixes (whose length goes to *prefix); 0 when the line cannot be one. */
static size_t delimiter_cols(const char *s, size_t n, size_t *prefix)
{
	size_t i = 0;
	for (;;) {
		while (i < n && (s[i] == ' ' || s[i] == '\t'))
			i++;
		if (i < n && s[i] == '>') {
			i++;
			continue;
		}
		size_t j = i;
		while (j < n && s[j] >= '0' && s[j] <= '9')
			j++;
		if (j > i && j < n && (s[j] == '.' || s[j] == ')'))
			j++;
		else if (j == i && i < n && (s[i] == '-' || s[i] == '+' || s[i] == '*'))
			j++;
		if (j > i && j < n && (s[j] == ' ' || s[j] == '\t')) {
			i = j;
			continue;
		}
		break;
	}
	*prefix = i;
	size_t cols = 0;
	bool pipe = false;
	for (size_t k = i; k < n; k++) {
		if (s[k] == '|')
			pipe = true;
		else if (s[k] == '-')
			cols += k == i || s[k - 1] != '-';
		else if (s[k] != ':' && s[k] != ' ' && s[k] != '\t')
			return 0;
	}
	return pipe ? cols : 0;
}

char *rpt_tame_tables(const char *md, size_t len, size_t *out_len, unsigned *tamed, int *err)
{
	size_t nl, budget = TABLE_CELL_BUDGET;
	*tamed = 0;
	*err = 0;
	struct line *l = split_lines(md, len, &nl);
	if (!l) {
		*err = -ENOMEM;
		return NULL;
	}
	size_t *mark = NULL, n_mark = 0;
	size_t rows = 0; /* non-blank lines from this one to the next blank line */
	size_t *rows_after = malloc(nl * sizeof *rows_after);
	if (!rows_after)
		goto oom;
	for (size_t i = nl; i-- > 0;) {
		rows = blank_n(md + l[i].start, l[i].end - l[i].start) ? 0 : rows + 1;
		rows_after[i] = rows;
	}
	for (size_t i = 0; i < nl; i++) {
		size_t prefix, cols = delimiter_cols(md + l[i].start, l[i].end - l[i].start, &prefix);
		if (!cols)
			continue;
		size_t cells = cols * (rows_after[i] + 1);
		if (cols <= budget && cells / cols == rows_after[i] + 1 && cells <= budget) {
			budget -= cells;
			continue;
		}
		if (!mark && !(mark = malloc(nl * sizeof *mark)))
			goto oom;
		mark[n_mark++] = l[i].start + prefix;
	}
	free(rows_after);
	free(l);
	if (!n_mark)
		return NULL;
	char *out = malloc(len + n_mark + 1);
	if (!out) {
		free(mark);
		*err = -ENOMEM;
		return NULL;
	}
	size_t o = 0, from = 0;
	for (size_t k = 0; k < n_mark; k++) {
		memcpy(out + o, md + from, mark[k] - from);
		o += mark[k] - from;
		out[o++] = '\\';
		from = mark[k];
	}
	memcpy(out + o, md + from, len - from);
	o += len - from;
	out[o] = '\0';
	free(mark);
	*out_len = o;
	*tamed = (unsigned)n_mark;
	return out;
oom:
	free(rows_after);
	free(l);
	*err = -ENOMEM;
	return NULL;
}

