/* agent/capture.c -- what the sandbox showed: figures and tables kept for the report, and the
 * capped observation the model gets back for each tool call.
 *
 * Figures keep the runner's ids (fig-N); tables are numbered here (table-N) in the order they
 * were displayed.  The observation is plain text, at most AGENT_OBS_MAX bytes, with a note when
 * something was cut; it names every captured item so the model can refer to it by id.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_internal.h"
#include "core/text.h"

void capture_init(struct capture *c)
{
	memset(c, 0, sizeof *c);
}

void capture_free(struct capture *c)
{
	for (size_t i = 0; i < c->n_figs; i++) {
		free(c->figs[i].png);
		free(c->figs[i].alt);
	}
	for (size_t i = 0; i < c->n_tabs; i++) {
		json_decref(c->tabs[i].data);
		free(c->tabs[i].caption);
	}
	free(c->figs);
	free(c->tabs);
	memset(c, 0, sizeof *c);
}

static bool grow(void **v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return true;
	size_t nc = *cap ? *cap * 2 : 8;
	void *p = realloc(*v, nc * size);
	if (!p)
		return false;
	*v = p;
	*cap = nc;
	return true;
}

/* Keeps a PNG figure; returns its id or NULL (dropped: invalid, duplicate or over the cap). */
static const char *keep_figure(struct capture *c, const char *id, const char *b64)
{
	size_t len;
	void *png = cr_base64_decode(b64, strlen(b64), &len);
	if (!png)
		return NULL;
	uint32_t w = 0, h = 0;
	if (!rpt_png_valid(png, len, &w, &h) || c->bytes + len > CAPTURE_MAX_BYTES ||
	    c->n_figs >= CAPTURE_MAX_ITEMS ||
	    !grow((void **)&c->figs, &c->cap_figs, c->n_figs, sizeof *c->figs)) {
		free(png);
		return NULL;
	}
	struct cap_fig *f = &c->figs[c->n_figs];
	memset(f, 0, sizeof *f);
	if (id && rpt_id_valid(id, strlen(id)))
		snprintf(f->id, sizeof f->id, "%s", id);
	else
		snprintf(f->id, sizeof f->id, "fig-x%zu", c->n_figs + 1);
	for (size_t i = 0; i < c->n_figs; i++)
		if (!strcmp(c->figs[i].id, f->id)) /* a new session restarted the numbering */
			snprintf(f->id, sizeof f->id, "fig-%zu-%zu", c->n_figs + 1, (size_t)w);
	f->png = png;
	f->len = len;
	f->width = w;
	f->height = h;
	c->bytes += len;
	c->n_figs++;
	return f->id;
}

static const char *keep_table(struct capture *c, json_t *table, size_t *rows, size_t *cols)
{
	json_t *columns = json_object_get(table, "columns"), *r = json_object_get(table, "rows");
	if (!json_is_array(columns) || !json_is_array(r) || c->n_tabs >= CAPTURE_MAX_ITEMS ||
	    !grow((void **)&c->tabs, &c->cap_tabs, c->n_tabs, sizeof *c->tabs))
		return NULL;
	struct cap_tab *t = &c->tabs[c->n_tabs++];
	memset(t, 0, sizeof *t);
	snprintf(t->id, sizeof t->id, "table-%zu", c->n_tabs);
	t->data = json_incref(table);
	json_t *total = json_object_get(table, "total_rows");
	*rows = json_is_integer(total) ? (size_t)json_integer_value(total) : json_array_size(r);
	*cols = json_array_size(columns);
	return t->id;
}

/* Appends s (at most max bytes of it, cut on a UTF-8 boundary) to obs, noting a cut. */
static void put_capped(struct cr_buf *obs, const char *label, const char *s, size_t n, size_t max)
{
	if (!n)
		return;
	cr_buf_printf(obs, "%s:\n", label);
	if (n <= max) {
		cr_buf_append_trunc(obs, s, n);
	} else {
		/* head and tail: errors and totals tend to be at the end */
		size_t head = cr_utf8_clip(s, max / 2);
		cr_buf_append_trunc(obs, s, head);
		cr_buf_printf(obs, "\n[... %zu bytes cut from the middle ...]\n", n - max);
		size_t start = n - (max - head);
		while (start < n && ((unsigned char)s[start] & 0xC0) == 0x80)
			start++;
		cr_buf_append_trunc(obs, s + start, n - start);
	}
	if (n && s[n - 1] != '\n')
		cr_buf_puts(obs, "\n");
}

void capture_observe(struct capture *c, const struct bk_result *r, struct cr_buf *obs)
{
	/* The observation buffer is a little larger than what the model gets; agent.c cuts it to
	 * AGENT_OBS_MAX with a note. */
	cr_buf_printf(obs, "status: %s\n", bk_status_name(r->status));
	if (r->status == BK_TIMEOUT)
		cr_buf_puts(obs, "(the cell hit its time limit and was interrupted)\n");
	else if (r->status == BK_MEMORY_LIMIT)
		cr_buf_puts(obs, "(the cell ran out of memory; work on smaller pieces or sample)\n");
	if (!r->session_alive)
		cr_buf_puts(obs, "(the Python session was lost: variables from earlier calls are gone; "
				 "reload what you need)\n");
	put_capped(obs, "stdout", r->out.data ? r->out.data : "", r->out.len, 1500);
	if (r->out.dropped)
		cr_buf_printf(obs, "[%llu more bytes of stdout were dropped]\n",
			      (unsigned long long)r->out.dropped);
	put_capped(obs, "stderr", r->err.data ? r->err.data : "", r->err.len, 800);
	size_t n = json_array_size(r->events);
	for (size_t i = 0; i < n; i++) {
		json_t *ev = json_array_get(r->events, i);
		const char *type = json_string_value(json_object_get(ev, "type"));
		json_t *data = json_object_get(ev, "data");
		if (!type)
			continue;
		if (!strcmp(type, "error")) {
			const char *tb = json_string_value(json_object_get(ev, "traceback"));
			const char *name = json_string_value(json_object_get(ev, "name"));
			const char *val = json_string_value(json_object_get(ev, "value"));
			cr_buf_printf(obs, "error: %s: %.300s\n", name ? name : "Error", val ? val : "");
			if (tb)
				put_capped(obs, "traceback", tb, strlen(tb), 1200);
			continue;
		}
		const char *png = json_string_value(json_object_get(data, "image/png"));
		json_t *table = json_object_get(data, "application/vnd.corral.table+json");
		const char *text = json_string_value(json_object_get(data, "text/plain"));
		if (png) {
			const char *id = keep_figure(c, json_string_value(json_object_get(ev, "id")), png);
			if (id) {
				const struct cap_fig *f = &c->figs[c->n_figs - 1];
				cr_buf_printf(obs, "captured figure %s (%ux%u PNG)\n", id, f->width, f->height);
			} else {
				cr_buf_puts(obs, "a figure could not be captured (invalid or over the cap)\n");
			}
			continue;
		}
		if (table) {
			size_t rows = 0, cols = 0;
			const char *id = keep_table(c, table, &rows, &cols);
			if (id)
				cr_buf_printf(obs, "captured table %s (%zu rows x %zu columns)\n", id, rows, cols);
		}
		if (text)
			put_capped(obs, !strcmp(type, "result") ? "result" : "display", text, strlen(text), 800);
	}
}

json_t *capture_manifest(const struct capture *c)
{
	json_t *m = json_object(), *figs = json_array(), *tabs = json_array();
	for (size_t i = 0; i < c->n_figs; i++)
		json_array_append_new(figs, json_string(c->figs[i].id));
	for (size_t i = 0; i < c->n_tabs; i++)
		json_array_append_new(tabs, json_string(c->tabs[i].id));
	json_object_set_new(m, "figures", figs);
	json_object_set_new(m, "tables", tabs);
	return m;
}
