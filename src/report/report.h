/* report/report.h -- the deterministic report renderer: a Markdown body written by a model,
 * plus figures and tables captured in the sandbox, become ONE self-contained HTML file.
 *
 *   struct rpt_brand brand;
 *   if (rpt_brand_load("brand.json", &brand, &err) < 0) ...    // or rpt_brand_default(&brand)
 *   struct rpt_figure fig = { .id = "fig-1", .data = png, .len = n, .mime = "image/png",
 *                             .alt = "Monthly revenue" };
 *   struct rpt_table tab = { .id = "table-1", .data = json, .caption = "Top customers" };
 *   struct rpt_input in = { .title = "Revenue analysis", .question = q, .markdown = body,
 *                           .figures = &fig, .n_figures = 1, .tables = &tab, .n_tables = 1,
 *                           .meta = meta, .brand = &brand, .partial = false };
 *   struct rpt_stats st;
 *   if (rpt_render_file(&in, "out/report.html", &st, &err) < 0) ...  // atomic: tmp + rename
 *   if (st.missing_refs) ...   // the model referred to ids that were never captured
 *   rpt_brand_free(&brand);
 *
 *   struct cr_buf html;                     // or into memory; rpt_render initialises html
 *   int r = rpt_render(&in, &html, &st, &err);
 *   cr_buf_free(&html);                     // on failure too
 *
 * When a budget ran out, set .partial (and .partial_reason): the report gets a banner and is
 * otherwise rendered the same way, from whatever body the model managed to write.
 *
 * The Markdown contract for the model (docs/REPORT.md):
 *   ![caption](figure:ID)   a captured figure (PNG, or SVG), inlined as a data: URI
 *   ![caption](table:ID)    a captured table, rendered from its structured data, escaped
 *   [text](figure:ID)       an in-page link to it; [text](#heading-slug) to a section
 *   ID is [A-Za-z0-9_-]{1,64}.  GFM tables, strikethrough and task lists work (not GFM's
 *   bare-URL autolinks: a bare address simply stays text).
 *   Raw HTML is dropped (not even a comment reaches the output).  Any other image is replaced
 *   by its alt text.  Only in-page links (#section) stay links; a http(s) or mailto link shows
 *   its text and its address as plain text; every other link (javascript:, data:, relative...)
 *   keeps only its text.  "# Heading" is rendered as "##": the shell owns the <h1>.
 *
 * Properties (tested in tests/unit/test_report.c and tests/integration/test_report_browser.py):
 *   - no <script>, no event-handler attribute, no href other than "#fragment", no src other
 *     than our own data:image/png|svg+xml URIs; a CSP meta forbids scripts and remote loads;
 *   - every ':' in text that came from the caller or the model is written as "&#58;", so the
 *     file never contains the bytes "http://", "https://" or "javascript:" (a plain grep
 *     verifies the property) while the reader sees the same characters;
 *   - deterministic: the same input gives the same bytes (the time comes from meta);
 *   - every captured figure or table appears once: where it is referenced, or in the appendix.
 *
 * Ownership: rpt_render borrows everything in rpt_input; nothing is kept after it returns.
 * Untrusted sizes are capped by rpt_limits (defaults in rpt_limits_default, mirrored in
 * docs/REPORT.md): past a cap the report says what was left out instead of failing.
 * Thread safety: rpt_render may run in several threads at once (cmark's extension registry
 * is initialised once, under pthread_once).
 */
#ifndef CORRAL_REPORT_REPORT_H
#define CORRAL_REPORT_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define RPT_ID_MAX 64          /* figure/table ids: [A-Za-z0-9_-]{1,64} */
#define RPT_BRAND_NAME_MAX 80  /* bytes */
#define RPT_DISCLAIMER_MAX 1000 /* bytes */
#define RPT_LOGO_MAX (512 * 1024)

struct rpt_limits {
	size_t markdown_max;       /* body bytes rendered; the rest is cut with a visible note */
	size_t figure_max;         /* bytes of one figure; larger ones are reported, not embedded */
	size_t figures_total_max;  /* bytes of all embedded figures together */
	unsigned table_rows_max;   /* rows shown of a captured table ("showing N of M rows") */
	unsigned table_cols_max;   /* columns shown of a captured table */
	unsigned md_table_rows_max; /* rows shown of a GFM table written in the body */
	size_t cell_max;           /* bytes of one table cell's text (cut at a UTF-8 boundary) */
	size_t output_max;         /* whole HTML file; beyond it rpt_render fails with -E2BIG */
};
extern const struct rpt_limits rpt_limits_default;

/* Colours are validated "#rgb" or "#rrggbb" (they go into CSS); logo is PNG or SVG bytes. */
struct rpt_brand {
	char name[RPT_BRAND_NAME_MAX + 1];
	char primary[8], accent[8], text[8], muted[8], background[8], surface[8], border[8];
	void *logo;            /* owned (malloc); NULL = no logo */
	size_t logo_len;
	const char *logo_mime; /* "image/png" | "image/svg+xml" (static string) */
	char *disclaimer;      /* owned; NULL = the default disclaimer */
};

/* Fills b with corral's defaults (name "corral", neutral palette, no logo). */
void rpt_brand_default(struct rpt_brand *b);
/* Loads a brand JSON file (format in docs/REPORT.md) over the defaults; the logo path is
 * relative to the brand file's directory.  On error b holds the defaults and err one line. */
int rpt_brand_load(const char *path, struct rpt_brand *b, struct cr_err *err);
/* Same, from JSON text; relative logo paths resolve against dir (NULL: logos refused). */
int rpt_brand_parse(const char *text, size_t len, const char *dir, struct rpt_brand *b,
		    struct cr_err *err);
/* "#abc" or "#a1b2c3" (any case); nothing else. */
bool rpt_color_valid(const char *s);
void rpt_brand_free(struct rpt_brand *b);

struct rpt_figure {
	char id[RPT_ID_MAX + 1];
	const void *data;
	size_t len;
	const char *mime; /* "image/png" | "image/svg+xml"; NULL = sniff the bytes */
	const char *alt;  /* used when the reference gives no caption, and in the appendix */
};

/* data: {"columns": ["a", ...], "dtypes": ["int64", ...] (optional),
 *        "rows": [[1, "x", null, true], ...], "total_rows": N (optional: rows before capture
 *        capped them)}.  Cells may be strings, numbers, booleans or null (anything else is
 *        shown as compact JSON). */
struct rpt_table {
	char id[RPT_ID_MAX + 1];
	const json_t *data;
	const char *caption;
};

struct rpt_datafile {
	const char *name;
	uint64_t size; /* bytes */
};

struct rpt_meta {
	const struct rpt_datafile *files;
	size_t n_files;
	const char *provider, *model; /* NULL = not shown */
	unsigned steps, max_steps;    /* max_steps 0 = unknown */
	uint64_t tokens_in, tokens_out, tokens_cached;
	double cost_usd;              /* < 0 = unknown */
	double wall_s, model_s, sandbox_s;
	int64_t generated_at;         /* Unix time, shown in UTC; the renderer never reads a clock */
	const char *sandbox;          /* where the code ran, e.g. "local engine (python 3.11.2),
				       * stateful"; NULL = not shown */
	const char *version;          /* corral version; NULL = not shown */
};

struct rpt_input {
	const char *title;    /* NULL = "Analysis report" */
	const char *question; /* NULL = not shown */
	const char *markdown; /* the model's body; NULL = empty */
	size_t markdown_len;  /* 0 = strlen(markdown) */
	const struct rpt_figure *figures;
	size_t n_figures;
	const struct rpt_table *tables;
	size_t n_tables;
	struct rpt_meta meta;
	const struct rpt_brand *brand;     /* NULL = rpt_brand_default */
	bool partial;                      /* a budget ran out: show the "Partial report" banner */
	const char *partial_reason;        /* e.g. "the step budget (30) ran out"; may be NULL */
	const struct rpt_limits *limits;   /* NULL = rpt_limits_default */
};

/* What the renderer did; the caller decides what is an error (e.g. missing_refs > 0). */
struct rpt_stats {
	unsigned figures_embedded;   /* <img> elements with a figure (each figure at most once) */
	unsigned tables_rendered;    /* captured tables rendered */
	unsigned missing_refs;       /* figure:/table: references to unknown or malformed ids */
	unsigned invalid_assets;     /* figures not a valid PNG/SVG or too big; malformed tables */
	unsigned in_appendix;        /* captured but never referenced */
	unsigned html_dropped;       /* raw HTML blocks/inlines written by the model */
	unsigned links_neutralised;  /* links that lost their href */
	unsigned images_dropped;     /* non-figure images replaced by their alt text */
	bool body_truncated;         /* markdown longer than markdown_max */
	size_t bytes;                /* size of the HTML */
	char problems[512];          /* "missing figure fig-9; ..." (first few, for the model) */
};

/* Renders the whole file into out, which rpt_render initialises (max = limits->output_max);
 * the caller cr_buf_free()s it, on failure too.  0 | -EINVAL (caller bug: malformed or
 * duplicate ids, NULL in) | -E2BIG (output too large) | -ENOMEM.  stats may be NULL. */
int rpt_render(const struct rpt_input *in, struct cr_buf *out, struct rpt_stats *stats,
	       struct cr_err *err);
/* Renders and writes path atomically (same-directory temp file, fsync, rename; 0644). */
int rpt_render_file(const struct rpt_input *in, const char *path, struct rpt_stats *stats,
		    struct cr_err *err);

/* True when data is a PNG whose signature, IHDR (with CRC) and final IEND chunk are valid;
 * width/height receive the IHDR size (may be NULL). */
bool rpt_png_valid(const void *data, size_t len, uint32_t *width, uint32_t *height);
/* True when id matches [A-Za-z0-9_-]{1,64}. */
bool rpt_id_valid(const char *id, size_t len);

#endif
