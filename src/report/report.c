/* report/report.c -- rpt_render: the fixed shell around the body (head with CSP and styles,
 * masthead, question, partial banner, table of contents, appendix, run details, footer), the
 * final self-check, and the atomic file write.  See report.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/text.h"
#include "report/internal.h"

const struct rpt_limits rpt_limits_default = {
	.markdown_max = 1 << 20,
	.figure_max = 8 << 20,
	.figures_total_max = 48 << 20,
	.table_rows_max = 200,
	.table_cols_max = 50,
	.md_table_rows_max = 500,
	.cell_max = 500,
	.output_max = 128 << 20,
};

#define CSP                                                                                   \
	"default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "      \
	"base-uri 'none'; form-action 'none'"

static const char DEFAULT_DISCLAIMER[] =
	"Generated automatically by corral from the data listed above. Figures and statements "
	"were produced by code that a language model wrote and should be checked before "
	"decisions are made.";

/* Ids the shell uses itself; headings that would take them get a suffix instead. */
static const char *const SHELL_IDS[] = {"top", "question", "partial", "contents", "appendix",
					"run-details"};

static void head(struct rpt_ctx *c, const char *title)
{
	rpt_put(c, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		   "<meta http-equiv=\"Content-Security-Policy\" content=\"" CSP "\">\n"
		   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
		   "<meta name=\"referrer\" content=\"no-referrer\">\n"
		   "<meta name=\"generator\" content=\"corral\">\n<title>");
	rpt_esc_clip(c, title, strlen(title), 300);
	rpt_put(c, " \xE2\x80\x94 ");
	rpt_esc_str(c, c->brand->name);
	rpt_put(c, "</title>\n<style>\n");
	rpt_css(c, c->brand);
	rpt_put(c, "</style>\n</head>\n<body>\n");
}

static void masthead(struct rpt_ctx *c)
{
	const struct rpt_brand *b = c->brand;
	rpt_put(c, "<header class=\"masthead\"><div class=\"wrap\">");
	if (b->logo) { /* checked by brand_check */
		size_t n;
		char *b64 = cr_base64_encode(b->logo, b->logo_len, &n);
		if (!b64) {
			c->rc = c->rc ? c->rc : -ENOMEM;
			return;
		}
		rpt_printf(c, "<img class=\"logo\" src=\"data:%s;base64,", b->logo_mime);
		rpt_putn(c, b64, n);
		rpt_put(c, "\" alt=\"\">");
		free(b64);
	}
	rpt_put(c, "<span class=\"brand-name\">");
	rpt_esc_str(c, b->name);
	rpt_put(c, "</span><span class=\"kind\">Analysis report</span></div></header>\n");
}

static void toc_link(struct rpt_ctx *c, const char *slug, const char *text)
{
	rpt_printf(c, "<li><a href=\"#%s\">", slug);
	rpt_esc_clip(c, text, strlen(text), 200);
	rpt_put(c, "</a>");
}

/* h2 entries with their h3 entries nested; an h3 before any h2 counts as top level. */
static void toc(struct rpt_ctx *c, bool appendix)
{
	if (!c->n_toc)
		return;
	rpt_put(c, "<nav class=\"toc\" aria-labelledby=\"contents\">\n<h2 id=\"contents\">Contents</h2>\n"
		   "<ol>\n");
	bool li = false, sub = false;
	for (size_t i = 0; i < c->n_toc; i++) {
		const struct rpt_toc_entry *e = &c->toc[i];
		if (e->level == 3 && li) {
			if (!sub)
				rpt_put(c, "<ol>\n");
			sub = true;
			toc_link(c, e->slug, e->text);
			rpt_put(c, "</li>\n");
			continue;
		}
		if (sub)
			rpt_put(c, "</ol>\n");
		if (li)
			rpt_put(c, "</li>\n");
		sub = false;
		toc_link(c, e->slug, e->text);
		li = true;
	}
	if (sub)
		rpt_put(c, "</ol>\n");
	if (li)
		rpt_put(c, "</li>\n");
	if (appendix)
		rpt_put(c, "<li><a href=\"#appendix\">Appendix: other figures and tables</a></li>\n");
	rpt_put(c, "<li><a href=\"#run-details\">Run details</a></li>\n</ol>\n</nav>\n");
}

static void dt(struct rpt_ctx *c, const char *term)
{
	rpt_printf(c, "<dt>%s</dt><dd>", term);
}

static void run_details(struct rpt_ctx *c)
{
	const struct rpt_meta *m = &c->in->meta;
	char a[48], b[48], d[48];
	rpt_put(c, "<section class=\"meta\" id=\"run-details\">\n<h2>Run details</h2>\n<dl>\n");

	dt(c, "Data files");
	if (!m->n_files) {
		rpt_put(c, "none");
	} else {
		rpt_put(c, "<ul>");
		size_t shown = m->n_files < 100 ? m->n_files : 100;
		for (size_t i = 0; i < shown; i++) {
			rpt_put(c, "<li>");
			rpt_esc_clip(c, m->files[i].name ? m->files[i].name : "?",
				     m->files[i].name ? strlen(m->files[i].name) : 1, 300);
			rpt_printf(c, " <span class=\"note\">(%s)</span></li>",
				   rpt_fmt_bytes(a, sizeof a, m->files[i].size));
		}
		if (shown < m->n_files)
			rpt_printf(c, "<li>and %zu more</li>", m->n_files - shown);
		rpt_put(c, "</ul>");
	}
	rpt_put(c, "</dd>\n");

	dt(c, "Model");
	if (m->provider || m->model) {
		rpt_esc_clip(c, m->provider ? m->provider : "", m->provider ? strlen(m->provider) : 0, 100);
		rpt_put(c, m->provider && m->model ? " / " : "");
		rpt_esc_clip(c, m->model ? m->model : "", m->model ? strlen(m->model) : 0, 200);
	} else {
		rpt_put(c, "not recorded");
	}
	rpt_put(c, "</dd>\n");

	dt(c, "Steps");
	if (m->max_steps)
		rpt_printf(c, "%u of at most %u", m->steps, m->max_steps);
	else
		rpt_printf(c, "%u", m->steps);
	rpt_put(c, "</dd>\n");

	dt(c, "Tokens");
	rpt_printf(c, "%s in, %s out", rpt_fmt_group(a, sizeof a, m->tokens_in),
		   rpt_fmt_group(b, sizeof b, m->tokens_out));
	rpt_printf(c, " (%s cached)</dd>\n", rpt_fmt_group(a, sizeof a, m->tokens_cached));

	dt(c, "Estimated cost");
	if (m->cost_usd >= 0 && m->cost_usd < 1e9) {
		snprintf(a, sizeof a, m->cost_usd > 0 && m->cost_usd < 1 ? "%.4f" : "%.2f", m->cost_usd);
		for (char *p = a; *p; p++) /* a decimal comma from the host's locale */
			*p = *p == ',' ? '.' : *p;
		rpt_printf(c, "US$%s", a);
	} else {
		rpt_put(c, "not available");
	}
	rpt_put(c, "</dd>\n");

	if (m->sandbox) {
		dt(c, "Sandbox");
		rpt_esc_clip(c, m->sandbox, strlen(m->sandbox), 200);
		rpt_put(c, "</dd>\n");
	}

	dt(c, "Time");
	rpt_printf(c, "%s in all: model %s, sandbox %s</dd>\n", rpt_fmt_secs(a, sizeof a, m->wall_s),
		   rpt_fmt_secs(b, sizeof b, m->model_s), rpt_fmt_secs(d, sizeof d, m->sandbox_s));

	time_t t = (time_t)m->generated_at;
	struct tm tm;
	dt(c, "Generated");
	if (gmtime_r(&t, &tm) && strftime(a, sizeof a, "%Y-%m-%dT%H:%M:%SZ", &tm) &&
	    strftime(b, sizeof b, "%Y-%m-%d %H:%M:%S UTC", &tm))
		rpt_printf(c, "<time datetime=\"%s\">%s</time>", a, b);
	rpt_put(c, "</dd>\n");

	if (m->version) {
		dt(c, "corral version");
		rpt_esc_clip(c, m->version, strlen(m->version), 64);
		rpt_put(c, "</dd>\n");
	}
	rpt_put(c, "</dl>\n</section>\n");
}

static void footer(struct rpt_ctx *c)
{
	const char *disc = c->brand->disclaimer ? c->brand->disclaimer : DEFAULT_DISCLAIMER;
	rpt_put(c, "<footer><div class=\"wrap\"><p>");
	rpt_esc_clip(c, disc, strlen(disc), RPT_DISCLAIMER_MAX);
	rpt_put(c, "</p></div></footer>\n</body>\n</html>\n");
}

/* Defence in depth: sequences that escaping makes impossible.  Finding one means a bug in
 * this renderer, and the report is refused rather than written. */
static char lower(char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

static const char *forbidden(const char *s, size_t n)
{
	static const char *const bad[] = {"<script", "javascript:", "vbscript:", "http://",
					  "https://"};
	for (size_t i = 0; i < n; i++) {
		char ch = lower(s[i]);
		if (ch != '<' && ch != 'j' && ch != 'v' && ch != 'h')
			continue;
		for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
			size_t l = strlen(bad[k]), j = 0;
			while (j < l && i + j < n && lower(s[i + j]) == bad[k][j])
				j++;
			if (j == l)
				return bad[k];
		}
	}
	return NULL;
}

static int brand_check(const struct rpt_brand *b, struct cr_err *err)
{
	const char *cols[] = {b->primary, b->accent, b->text, b->muted, b->background, b->surface,
			      b->border};
	for (size_t i = 0; i < sizeof cols / sizeof *cols; i++)
		if (!rpt_color_valid(cols[i]))
			return cr_failx(err, EINVAL, "brand colour %zu is not #rgb or #rrggbb", i);
	if (!memchr(b->name, 0, sizeof b->name))
		return cr_failx(err, EINVAL, "brand name is not terminated");
	/* The mime type is written into the src attribute as it is: only our two strings. */
	if (b->logo && !(b->logo_len <= RPT_LOGO_MAX && b->logo_mime &&
			 ((!strcmp(b->logo_mime, "image/png") &&
			   rpt_png_valid(b->logo, b->logo_len, NULL, NULL)) ||
			  (!strcmp(b->logo_mime, "image/svg+xml") && rpt_svg_valid(b->logo, b->logo_len)))))
		return cr_failx(err, EINVAL, "brand logo is not a valid PNG or SVG of at most %d KiB",
				RPT_LOGO_MAX / 1024);
	return 0;
}

static int body(struct rpt_ctx *c, struct cr_buf *md_out, struct cr_buf *app_out,
		struct cr_err *err)
{
	const struct rpt_input *in = c->in;
	const char *md = in->markdown ? in->markdown : "";
	size_t len = in->markdown ? (in->markdown_len ? in->markdown_len : strlen(md)) : 0;
	if (len > c->lim->markdown_max) { /* cut on a line, never inside a character */
		size_t keep = cr_utf8_clip(md, c->lim->markdown_max);
		const char *nl = memrchr(md, '\n', keep);
		len = nl ? (size_t)(nl - md) + 1 : keep;
		c->st->body_truncated = true;
		rpt_problem(c, "report body cut at %zu bytes", c->lim->markdown_max);
	}
	c->out = md_out;
	int r = rpt_markdown(c, md, len, err);
	if (r < 0)
		return r;
	if (c->st->body_truncated)
		rpt_put(c, "<p class=\"missing\" role=\"note\">[The rest of the report body was cut: it "
			   "was longer than the renderer accepts.]</p>\n");
	c->out = app_out;
	rpt_emit_appendix(c);
	return c->rc ? cr_fail(err, -c->rc, "rendering the report") : 0;
}

int rpt_render(const struct rpt_input *in, struct cr_buf *out, struct rpt_stats *stats,
	       struct cr_err *err)
{
	const struct rpt_limits *lim = in && in->limits ? in->limits : &rpt_limits_default;
	struct rpt_stats local;
	struct rpt_brand defb;
	struct cr_buf md, app;
	cr_buf_init(out, lim->output_max);
	if (!stats)
		stats = &local;
	memset(stats, 0, sizeof *stats);
	if (!in)
		return cr_failx(err, EINVAL, "no report input");
	rpt_brand_default(&defb);
	struct rpt_ctx c = {.in = in, .lim = lim, .brand = in->brand ? in->brand : &defb,
			    .st = stats, .out = out};
	int r = brand_check(c.brand, err);
	if (r < 0)
		return r;
	cr_buf_init(&md, lim->output_max);
	cr_buf_init(&app, lim->output_max);
	if ((r = rpt_index_build(&c, err)) < 0)
		goto out;
	for (size_t i = 0; i < sizeof SHELL_IDS / sizeof *SHELL_IDS; i++)
		if (!rpt_id_reserve(&c, SHELL_IDS[i])) {
			r = cr_fail(err, ENOMEM, "report ids");
			goto out;
		}
	if ((r = body(&c, &md, &app, err)) < 0)
		goto out;

	const char *title = in->title && *in->title ? in->title : "Analysis report";
	c.out = out;
	head(&c, title);
	masthead(&c);
	rpt_put(&c, "<main class=\"wrap\">\n<h1 id=\"top\">");
	rpt_esc_clip(&c, title, strlen(title), 300);
	rpt_put(&c, "</h1>\n");
	if (in->question && *in->question) {
		rpt_put(&c, "<p class=\"question\" id=\"question\"><span class=\"q-label\">Question</span>");
		rpt_esc_clip(&c, in->question, strlen(in->question), 4000);
		rpt_put(&c, "</p>\n");
	}
	if (in->partial) {
		rpt_put(&c, "<div class=\"banner\" id=\"partial\" role=\"note\"><strong>Partial report."
			    "</strong> The run stopped before the analysis was finished");
		if (in->partial_reason && *in->partial_reason) {
			rpt_put(&c, " (");
			rpt_esc_clip(&c, in->partial_reason, strlen(in->partial_reason), 300);
			rpt_put(&c, ")");
		}
		rpt_put(&c, ". This is the best report that could be written from the work done so far; "
			    "it may be incomplete.</div>\n");
	}
	toc(&c, app.len > 0);
	rpt_put(&c, "<article class=\"report-body\">\n");
	rpt_putn(&c, md.data, md.len);
	rpt_put(&c, "</article>\n");
	rpt_putn(&c, app.data, app.len);
	run_details(&c);
	rpt_put(&c, "</main>\n");
	footer(&c);
	if (c.rc) {
		r = cr_fail(err, -c.rc, "rendering the report");
		goto out;
	}
	const char *bad = forbidden(out->data, out->len);
	if (bad) {
		r = cr_failx(err, EPROTO, "internal error: rendered report contains '%s'", bad);
		goto out;
	}
	stats->bytes = out->len;
	r = 0;
out:
	if (r == -E2BIG) /* from whichever part hit the cap first */
		cr_failx(err, E2BIG, "the report would exceed %zu bytes", lim->output_max);
	cr_buf_free(&md);
	cr_buf_free(&app);
	rpt_ctx_free(&c);
	return r;
}

static int write_atomic(const char *path, const char *data, size_t len, struct cr_err *err)
{
	size_t pl = strlen(path);
	char *tmp = malloc(pl + 16);
	if (!tmp)
		return cr_fail(err, ENOMEM, "writing %s", path);
	snprintf(tmp, pl + 16, "%s.tmp-XXXXXX", path);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		int r = cr_fail(err, errno, "cannot create a temporary file next to %s", path);
		free(tmp);
		return r;
	}
	int r = 0;
	for (size_t off = 0; off < len && !r;) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0 && errno != EINTR)
			r = cr_fail(err, errno, "writing %s", tmp);
		else if (w > 0)
			off += (size_t)w;
	}
	/* mkostemp makes 0600; a report is a document to share, like any file written by cp. */
	if (!r && fchmod(fd, 0644) < 0)
		r = cr_fail(err, errno, "chmod %s", tmp);
	if (!r && fsync(fd) < 0)
		r = cr_fail(err, errno, "fsync %s", tmp);
	if (close(fd) < 0 && !r)
		r = cr_fail(err, errno, "closing %s", tmp);
	if (!r && rename(tmp, path) < 0)
		r = cr_fail(err, errno, "rename to %s", path);
	if (r)
		unlink(tmp);
	free(tmp);
	return r;
}

int rpt_render_file(const struct rpt_input *in, const char *path, struct rpt_stats *stats,
		    struct cr_err *err)
{
	struct cr_buf b;
	int r = rpt_render(in, &b, stats, err);
	if (r == 0)
		r = write_atomic(path, b.data ? b.data : "", b.len, err);
	cr_buf_free(&b);
	return r;
}
