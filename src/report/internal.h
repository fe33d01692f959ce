/* report/internal.h -- shared by the files of src/report/; not part of the API.
 *
 * One struct rpt_ctx lives for one rpt_render call.  Output goes through rpt_put* and
 * rpt_esc*: the first failure (-E2BIG past output_max, -ENOMEM) is kept in ctx->rc and every
 * later write is a no-op, so emitters need no error checks; rpt_render looks at rc once.
 *
 * Escaping rule (the one place that makes model text safe): rpt_esc writes & < > " ' as
 * entities, ':' as "&#58;" (so no scheme such as "http:" or "javascript:" ever appears as
 * bytes), and replaces invalid UTF-8 and control characters by U+FFFD.  Its output is safe in
 * element content, in double-quoted attribute values and in <title>.  It is never used inside
 * <style>: nothing from the model goes there, and brand colours are validated instead.
 */
#ifndef CORRAL_REPORT_INTERNAL_H
#define CORRAL_REPORT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "report/report.h"

#define RPT_TOC_MAX 300   /* headings that get an id (slug de-duplication is quadratic) */
#define RPT_SLUG_MAX 60   /* bytes of a heading slug before de-duplication */
#define RPT_DEPTH_MAX 32  /* nested blockquotes/lists that still get their tags */

enum rpt_kind { RPT_FIGURE, RPT_TABLE };

struct rpt_toc_entry {
	int level; /* 2 or 3 */
	char *slug;
	char *text;
};

/* An id index entry: kind + position in in->figures / in->tables, sorted by id. */
struct rpt_ref {
	const char *id;
	enum rpt_kind kind;
	size_t idx;
};

struct rpt_ctx {
	const struct rpt_input *in;
	const struct rpt_limits *lim;
	const struct rpt_brand *brand;
	struct rpt_stats *st;
	struct cr_buf *out; /* where rpt_put* write now */
	int rc;             /* first write error; sticky */

	struct rpt_ref *index; /* figures then tables, sorted by (kind, id) */
	size_t n_index;
	unsigned *fig_num, *tab_num; /* 0 = not placed yet, else its "Figure N" number */
	unsigned next_fig, next_tab;
	size_t figure_bytes; /* embedded so far (figures_total_max) */

	char **slugs; /* ids handed out to headings and reserved by the shell */
	size_t n_slugs, cap_slugs;
	struct rpt_toc_entry *toc;
	size_t n_toc, cap_toc;
};

/* html.c: output, escaping, slugs, number formatting */
void rpt_putn(struct rpt_ctx *c, const char *s, size_t n);
void rpt_put(struct rpt_ctx *c, const char *s);
void rpt_printf(struct rpt_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rpt_esc(struct rpt_ctx *c, const char *s, size_t n);
void rpt_esc_str(struct rpt_ctx *c, const char *s); /* NULL writes nothing */
/* Escapes at most max bytes of s (cut at a UTF-8 boundary) and adds "…" when cut. */
void rpt_esc_clip(struct rpt_ctx *c, const char *s, size_t n, size_t max);
void rpt_problem(struct rpt_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Registers an id verbatim (shell ids); returns false when taken or out of memory. */
bool rpt_id_reserve(struct rpt_ctx *c, const char *id);
/* Makes a unique, registered slug from heading text; NULL when out of memory. */
const char *rpt_slug(struct rpt_ctx *c, const char *text);
int rpt_toc_add(struct rpt_ctx *c, int level, const char *slug, const char *text);
void rpt_ctx_free(struct rpt_ctx *c);
/* Locale-independent, deterministic number formatting into buf (>= 32 bytes). */
const char *rpt_fmt_group(char *buf, size_t sz, uint64_t v); /* 1,234,567 */
const char *rpt_fmt_double(char *buf, size_t sz, double d);   /* shortest, <= 10 digits */
const char *rpt_fmt_bytes(char *buf, size_t sz, uint64_t v);  /* 1.2 MiB */
const char *rpt_fmt_secs(char *buf, size_t sz, double s);     /* 4.2 s, 3 min 07 s */
bool rpt_has_prefix_ci(const char *s, const char *prefix);

/* assets.c: figures and captured tables, wherever they are placed */
const struct rpt_ref *rpt_lookup(const struct rpt_ctx *c, enum rpt_kind k, const char *id);
/* For "figure:ID" / "table:ID" (scheme case-insensitive): sets kind, returns the ID part (not
 * yet validated).  NULL when url is not a reference. */
const char *rpt_ref_target(const char *url, enum rpt_kind *kind);
/* Emits the block for a reference written in the body: the figure/table the first time, a
 * "see above" link after that, a visible note for unknown or malformed ids.  caption may be
 * "" or NULL. */
void rpt_emit_ref(struct rpt_ctx *c, enum rpt_kind k, const char *id, const char *caption);
/* Emits every figure/table never placed, as the appendix section (nothing when none). */
void rpt_emit_appendix(struct rpt_ctx *c);
bool rpt_svg_valid(const void *data, size_t len);
int rpt_index_build(struct rpt_ctx *c, struct cr_err *err);

/* tables.c: a captured table's structured data -> <table>; -EINVAL with why when malformed
 * (nothing written then). */
int rpt_table_html(struct rpt_ctx *c, const json_t *data, char *why, size_t whylen);

/* tables_md.c: returns a copy of md in which every GFM table whose worst case (columns x
 * following non-blank lines) would exceed the parse budget starts its delimiter row with a
 * backslash, so it stays text; NULL when nothing had to change, or on allocation failure
 * (*err = -ENOMEM).  Rows are over-counted, never under-counted.  Caller frees. */
char *rpt_tame_tables(const char *md, size_t len, size_t *out_len, unsigned *tamed, int *err);

/* markdown.c: the model's body -> HTML into c->out, TOC entries into c->toc. */
int rpt_markdown(struct rpt_ctx *c, const char *md, size_t len, struct cr_err *err);

/* style.c: the inline stylesheet (brand colours must be valid already). */
void rpt_css(struct rpt_ctx *c, const struct rpt_brand *b);

#endif
