/* report/markdown.c -- the model's Markdown body -> HTML, by walking cmark-gfm's AST.
 *
 * We do not call cmark's HTML renderer: this walker is an allowlist.  Each node type we know
 * becomes fixed markup plus escaped text; raw HTML nodes are dropped whole (not even cmark's
 * "raw HTML omitted" comment); links keep an href only for in-page fragments; images are
 * either our figure:/table: references or their alt text.  A node type we do not know (a
 * future extension) contributes its children's text and nothing of its own.
 *
 * A figure or table is a block, so a reference written inside a paragraph closes the <p>,
 * places the block and lets the paragraph resume (<p> is opened lazily, so no empty <p></p>).
 * A reference nested deeper (in a link, emphasis, heading or table cell) leaves its caption
 * in place and the block follows the enclosing paragraph, heading or table.
 *
 * Before parsing, rpt_tame_tables (tables_md.c) bounds what GFM tables can cost cmark-gfm.
 */
#include <cmark-gfm-core-extensions.h>
#include <cmark-gfm.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "report/internal.h"

#define PLAIN_MAX 4096 /* bytes of heading/caption/link text taken as plain text */

enum pstate { P_NONE, P_PENDING, P_OPEN };

struct deferred {
	enum rpt_kind kind;
	char *id, *caption;
};

struct walk {
	struct rpt_ctx *c;
	cmark_iter *it;
	enum pstate p;
	int depth; /* nested blockquotes and lists */
	unsigned headings;
	/* the current GFM table (they do not nest) */
	uint16_t ncols;
	const uint8_t *align;
	unsigned rows, rows_skipped, col;
	bool tbody, cols_skipped;
	struct deferred *defer;
	size_t n_defer, cap_defer;
};

static pthread_once_t ext_once = PTHREAD_ONCE_INIT;

static void ext_register(void)
{
	cmark_gfm_core_extensions_ensure_registered();
}

/* Concatenated text of n's descendants (formatting and raw HTML ignored); caller frees. */
static char *plain_text(cmark_node *n)
{
	struct cr_buf b;
	cr_buf_init(&b, PLAIN_MAX);
	cmark_iter *it = cmark_iter_new(n);
	cmark_event_type ev;
	while ((ev = cmark_iter_next(it)) != CMARK_EVENT_DONE) {
		cmark_node *x = cmark_iter_get_node(it);
		if (ev != CMARK_EVENT_ENTER)
			continue;
		switch (cmark_node_get_type(x)) {
		case CMARK_NODE_TEXT:
		case CMARK_NODE_CODE: {
			const char *s = cmark_node_get_literal(x);
			if (s)
				cr_buf_append_trunc(&b, s, strlen(s));
			break;
		}
		case CMARK_NODE_SOFTBREAK:
		case CMARK_NODE_LINEBREAK:
			cr_buf_append_trunc(&b, " ", 1);
			break;
		default:
			break;
		}
	}
	cmark_iter_free(it);
	if (!b.len) /* cr_buf_steal of a never-written buffer is not NUL-terminated */
		return strdup("");
	return cr_buf_steal(&b, NULL);
}

static bool blank(const char *s)
{
	for (; s && *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			return false;
	return true;
}

static void oom(struct rpt_ctx *c)
{
	if (!c->rc)
		c->rc = -ENOMEM;
}

static void ensure_p(struct walk *w)
{
	if (w->p == P_PENDING) {
		rpt_put(w->c, "<p>");
		w->p = P_OPEN;
	}
}

static void defer(struct walk *w, enum rpt_kind k, const char *id, const char *caption)
{
	if (w->n_defer == w->cap_defer) {
		size_t ncap = w->cap_defer ? w->cap_defer * 2 : 4;
		struct deferred *p = realloc(w->defer, ncap * sizeof *p);
		if (!p)
			return oom(w->c);
		w->defer = p;
		w->cap_defer = ncap;
	}
	struct deferred *d = &w->defer[w->n_defer];
	d->kind = k;
	d->id = strndup(id, 2 * RPT_ID_MAX);
	d->caption = strdup(caption ? caption : "");
	if (!d->id || !d->caption) {
		free(d->id);
		free(d->caption);
		return oom(w->c);
	}
	w->n_defer++;
}

static void flush_deferred(struct walk *w)
{
	for (size_t i = 0; i < w->n_defer; i++) {
		rpt_emit_ref(w->c, w->defer[i].kind, w->defer[i].id, w->defer[i].caption);
		free(w->defer[i].id);
		free(w->defer[i].caption);
	}
	w->n_defer = 0;
}

static void skip_children(struct walk *w, cmark_node *n)
{
	cmark_iter_reset(w->it, n, CMARK_EVENT_EXIT);
}

static void image(struct walk *w, cmark_node *n)
{
	struct rpt_ctx *c = w->c;
	const char *url = cmark_node_get_url(n);
	enum rpt_kind k;
	const char *id = rpt_ref_target(url ? url : "", &k);
	char *alt = plain_text(n);
	if (!alt)
		return oom(c);
	skip_children(w, n);
	if (!id) { /* any other image would be a remote or local load: keep its words only */
		c->st->images_dropped++;
		if (!blank(alt)) {
			ensure_p(w);
			rpt_esc(c, alt, strlen(alt));
		}
	} else if (cmark_node_get_type(cmark_node_parent(n)) == CMARK_NODE_PARAGRAPH) {
		if (w->p == P_OPEN) {
			rpt_put(c, "</p>\n");
			w->p = P_PENDING;
		}
		rpt_emit_ref(c, k, id, alt);
	} else {
		if (!blank(alt)) {
			ensure_p(w);
			rpt_esc(c, alt, strlen(alt));
		}
		defer(w, k, id, alt);
	}
	free(alt);
}

static bool web_url(const char *url)
{
	return rpt_has_prefix_ci(url, "http://") || rpt_has_prefix_ci(url, "https://") ||
	       rpt_has_prefix_ci(url, "mailto:");
}

/* The address as shown: mailto: dropped, cut to a readable length. */
static void show_url(struct rpt_ctx *c, const char *url)
{
	if (rpt_has_prefix_ci(url, "mailto:"))
		url += 7;
	rpt_esc_clip(c, url, strlen(url), 300);
}

static void link(struct walk *w, cmark_node *n, bool enter)
{
	struct rpt_ctx *c = w->c;
	const char *url = cmark_node_get_url(n);
	url = url ? url : "";
	enum rpt_kind k;
	const char *id = rpt_ref_target(url, &k);
	const struct rpt_ref *ref = id && rpt_id_valid(id, strlen(id)) ? rpt_lookup(c, k, id) : NULL;

	if (url[0] == '#' || ref) { /* in-page: the only links that stay links */
		if (!enter) {
			rpt_put(c, "</a>");
			return;
		}
		ensure_p(w);
		if (ref) {
			rpt_printf(c, "<a href=\"#%s-%s\">", k == RPT_FIGURE ? "figure" : "table", ref->id);
		} else {
			rpt_put(c, "<a href=\"");
			rpt_esc_clip(c, url, strlen(url), 200);
			rpt_put(c, "\">");
		}
		return;
	}
	if (!web_url(url)) /* javascript:, data:, relative...: the words stay, the target goes */
		goto count;
	if (!enter) {
		ensure_p(w);
		rpt_put(c, " <span class=\"url\">(");
		show_url(c, url);
		rpt_put(c, ")</span>");
		return;
	}
	char *text = plain_text(n);
	if (!text)
		return oom(c);
	const char *bare = rpt_has_prefix_ci(url, "mailto:") ? url + 7
			   : rpt_has_prefix_ci(url, "http://") ? url + 7 : url;
	if (!strcmp(text, url) || !strcmp(text, bare)) { /* an autolink: the text is the address */
		ensure_p(w);
		rpt_put(c, "<span class=\"url\">");
		show_url(c, text);
		rpt_put(c, "</span>");
		skip_children(w, n);
	}
	free(text);
count:
	if (enter)
		c->st->links_neutralised++;
}

static void heading(struct walk *w, cmark_node *n, bool enter)
{
	struct rpt_ctx *c = w->c;
	int level = cmark_node_get_heading_level(n);
	level = level < 2 ? 2 : level; /* the shell owns <h1> */
	if (!enter) {
		rpt_printf(c, "</h%d>\n", level);
		flush_deferred(w);
		return;
	}
	if (w->headings >= RPT_TOC_MAX) {
		rpt_printf(c, "<h%d>", level);
		return;
	}
	w->headings++;
	char *text = plain_text(n);
	const char *slug = text ? rpt_slug(c, text) : NULL;
	if (!slug || (level <= 3 && !blank(text) && rpt_toc_add(c, level, slug, text) < 0)) {
		free(text);
		return oom(c);
	}
	rpt_printf(c, "<h%d id=\"%s\">", level, slug);
	free(text);
}

static bool tight_paragraph(cmark_node *n)
{
	cmark_node *item = cmark_node_parent(n);
	if (!item || cmark_node_get_type(item) != CMARK_NODE_ITEM)
		return false;
	cmark_node *list = cmark_node_parent(item);
	return list && cmark_node_get_list_tight(list);
}

static void table_part(struct walk *w, cmark_node *n, const char *ts, bool enter)
{
	struct rpt_ctx *c = w->c;
	if (!strcmp(ts, "table")) {
		if (enter) {
			w->ncols = cmark_gfm_extensions_get_table_columns(n);
			w->align = cmark_gfm_extensions_get_table_alignments(n);
			w->rows = w->rows_skipped = 0;
			w->tbody = w->cols_skipped = false;
			rpt_put(c, "<div class=\"table-wrap\"><table>\n");
			return;
		}
		rpt_put(c, w->tbody ? "</tbody>\n</table></div>\n" : "</table></div>\n");
		if (w->rows_skipped || w->cols_skipped) {
			char a[32], b[32];
			rpt_printf(c, "<p class=\"note\">Showing %s of %s rows%s.</p>\n",
				   rpt_fmt_group(a, sizeof a, w->rows),
				   rpt_fmt_group(b, sizeof b, (uint64_t)w->rows + w->rows_skipped),
				   w->cols_skipped ? " and only the first columns" : "");
		}
		flush_deferred(w);
	} else if (!strcmp(ts, "table_header")) {
		w->col = 0;
		rpt_put(c, enter ? "<thead>\n<tr>" : "</tr>\n</thead>\n");
	} else if (!strcmp(ts, "table_row")) {
		if (!enter) {
			rpt_put(c, "</tr>\n");
			return;
		}
		if (w->rows >= c->lim->md_table_rows_max) {
			w->rows_skipped++;
			skip_children(w, n);
			return;
		}
		if (!w->tbody)
			rpt_put(c, "<tbody>\n");
		w->tbody = true;
		w->rows++;
		w->col = 0;
		rpt_put(c, "<tr>");
	} else if (!strcmp(ts, "table_cell")) {
		bool head = cmark_gfm_extensions_get_table_row_is_header(cmark_node_parent(n));
		if (!enter) {
			rpt_put(c, head ? "</th>" : "</td>");
			w->col++;
			return;
		}
		if (w->col >= c->lim->table_cols_max) {
			w->cols_skipped = true;
			w->col++;
			skip_children(w, n);
			return;
		}
		uint8_t a = w->align && w->col < w->ncols ? w->align[w->col] : 0;
		const char *cls = a == 'r' ? " class=\"num\"" : a == 'c' ? " class=\"center\"" : "";
		rpt_printf(c, "<%s%s>", head ? "th" : "td", cls);
	}
}

static void node(struct walk *w, cmark_node *n, bool enter)
{
	struct rpt_ctx *c = w->c;
	const char *lit;
	switch (cmark_node_get_type(n)) {
	case CMARK_NODE_DOCUMENT:
		if (!enter)
			flush_deferred(w);
		return;
	case CMARK_NODE_BLOCK_QUOTE:
	case CMARK_NODE_LIST: {
		bool quote = cmark_node_get_type(n) == CMARK_NODE_BLOCK_QUOTE;
		if (enter)
			w->depth++;
		if (w->depth <= RPT_DEPTH_MAX) { /* deeper nesting keeps its text, loses its tags */
			bool ol = !quote && cmark_node_get_list_type(n) == CMARK_ORDERED_LIST;
			int start = ol ? cmark_node_get_list_start(n) : 1;
			if (!enter)
				rpt_put(c, quote ? "</blockquote>\n" : ol ? "</ol>\n" : "</ul>\n");
			else if (quote || !ol)
				rpt_put(c, quote ? "<blockquote>\n" : "<ul>\n");
			else if (start != 1)
				rpt_printf(c, "<ol start=\"%d\">\n", start);
			else
				rpt_put(c, "<ol>\n");
		}
		if (!enter)
			w->depth--;
		return;
	}
	case CMARK_NODE_ITEM:
		if (w->depth > RPT_DEPTH_MAX)
			return;
		if (!enter)
			rpt_put(c, "</li>\n");
		else if (!strcmp(cmark_node_get_type_string(n), "tasklist"))
			rpt_put(c, cmark_gfm_extensions_get_tasklist_item_checked(n)
					   ? "<li class=\"task\"><span class=\"box\">\xE2\x98\x91</span> "
					   : "<li class=\"task\"><span class=\"box\">\xE2\x98\x90</span> ");
		else
			rpt_put(c, "<li>");
		return;
	case CMARK_NODE_CODE_BLOCK:
		lit = cmark_node_get_literal(n);
		rpt_put(c, "<pre><code>");
		rpt_esc_str(c, lit);
		rpt_put(c, "</code></pre>\n");
		return;
	case CMARK_NODE_HTML_BLOCK:
	case CMARK_NODE_HTML_INLINE:
		c->st->html_dropped++;
		return;
	case CMARK_NODE_PARAGRAPH:
		if (enter) {
			w->p = tight_paragraph(n) ? P_NONE : P_PENDING;
			return;
		}
		if (w->p == P_OPEN)
			rpt_put(c, "</p>\n");
		w->p = P_NONE;
		flush_deferred(w);
		return;
	case CMARK_NODE_HEADING:
		return heading(w, n, enter);
	case CMARK_NODE_THEMATIC_BREAK:
		rpt_put(c, "<hr>\n");
		return;
	case CMARK_NODE_TEXT:
		lit = cmark_node_get_literal(n);
		if (w->p == P_PENDING && blank(lit))
			return;
		ensure_p(w);
		rpt_esc_str(c, lit);
		return;
	case CMARK_NODE_SOFTBREAK:
	case CMARK_NODE_LINEBREAK:
		if (w->p != P_PENDING)
			rpt_put(c, cmark_node_get_type(n) == CMARK_NODE_LINEBREAK ? "<br>\n" : "\n");
		return;
	case CMARK_NODE_CODE:
		ensure_p(w);
		rpt_put(c, "<code>");
		rpt_esc_str(c, cmark_node_get_literal(n));
		rpt_put(c, "</code>");
		return;
	case CMARK_NODE_EMPH:
		ensure_p(w);
		rpt_put(c, enter ? "<em>" : "</em>");
		return;
	case CMARK_NODE_STRONG:
		ensure_p(w);
		rpt_put(c, enter ? "<strong>" : "</strong>");
		return;
	case CMARK_NODE_LINK:
		return link(w, n, enter);
	case CMARK_NODE_IMAGE:
		return image(w, n);
	default:
		break;
	}
	const char *ts = cmark_node_get_type_string(n);
	if (!strncmp(ts, "table", 5)) {
		table_part(w, n, ts, enter);
	} else if (!strcmp(ts, "strikethrough")) {
		ensure_p(w);
		rpt_put(c, enter ? "<del>" : "</del>");
	}
}

int rpt_markdown(struct rpt_ctx *c, const char *md, size_t len, struct cr_err *err)
{
	/* Not "autolink": in this cmark-gfm it is quadratic ("www.a.com" and 1 MB of ")" ran for
	 * over 20 s), and we would unlink what it finds anyway; a bare address stays text. */
	static const char *const exts[] = {"table", "strikethrough", "tasklist"};
	pthread_once(&ext_once, ext_register);
	unsigned tamed;
	size_t tamed_len = 0;
	int terr;
	char *tamed_md = rpt_tame_tables(md, len, &tamed_len, &tamed, &terr);
	if (terr)
		return cr_fail(err, -terr, "markdown tables");
	if (tamed_md) {
		md = tamed_md;
		len = tamed_len;
		rpt_problem(c, "%u oversized table%s shown as text", tamed, tamed == 1 ? "" : "s");
	}
	/* No CMARK_OPT_UNSAFE (we never use cmark's renderer, but keep its safe mode anyway). */
	cmark_parser *parser = cmark_parser_new(CMARK_OPT_VALIDATE_UTF8);
	if (!parser) {
		free(tamed_md);
		return cr_fail(err, ENOMEM, "markdown parser");
	}
	for (size_t i = 0; i < sizeof exts / sizeof *exts; i++) {
		cmark_syntax_extension *e = cmark_find_syntax_extension(exts[i]);
		if (!e || !cmark_parser_attach_syntax_extension(parser, e)) {
			cmark_parser_free(parser);
			free(tamed_md);
			return cr_failx(err, ENOSYS, "cmark-gfm extension '%s' unavailable", exts[i]);
		}
	}
	cmark_parser_feed(parser, md, len);
	cmark_node *doc = cmark_parser_finish(parser);
	free(tamed_md);
	if (!doc) {
		cmark_parser_free(parser);
		return cr_fail(err, ENOMEM, "markdown parser");
	}
	struct walk w = {.c = c, .it = cmark_iter_new(doc)};
	cmark_event_type ev;
	while (!c->rc && (ev = cmark_iter_next(w.it)) != CMARK_EVENT_DONE)
		node(&w, cmark_iter_get_node(w.it), ev == CMARK_EVENT_ENTER);
	for (size_t i = 0; i < w.n_defer; i++) { /* left over only after a write error */
		free(w.defer[i].id);
		free(w.defer[i].caption);
	}
	free(w.defer);
	cmark_iter_free(w.it);
	cmark_node_free(doc);
	cmark_parser_free(parser);
	if (c->rc)
		return cr_fail(err, -c->rc, "rendering the report body");
	return 0;
}
