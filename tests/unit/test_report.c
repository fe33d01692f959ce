/* tests/unit/test_report.c -- the report renderer: what the model writes cannot script,
 * load or link anything; figures/tables land once; the shell is complete and deterministic.
 * With CORRAL_REPORT_SAMPLE_OUT=path, test_sample_report also writes a realistic sample
 * report there (tests/integration/test_report_browser.py opens it in Chromium).
 * Brand files, limits and PNG checks: test_report_brand.c. */
#include "test_report_util.h"
#include "test_report_sample.h"

#include <stdio.h>

#include "core/json.h"

static uint8_t *g_png;
static size_t g_png_len;

static int setup(void **state)
{
	(void)state;
	static const double v[] = {0.3, 0.8, 0.55, 0.95, 0.4};
	g_png = tr_chart(v, 5, 0, 0x2563EB, &g_png_len);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(g_png);
	return 0;
}

static json_t *small_table(void)
{
	json_error_t je;
	return json_loads("{\"columns\":[\"name\",\"value\"],\"dtypes\":[\"object\",\"int64\"],"
			  "\"rows\":[[\"<b>bold</b>\",1],[\"<script>alert(1)</script>\",2],"
			  "[\"a & b\",null]]}", 0, &je);
}

static const char XSS_MD[] =
	"## Results \"><script>alert(1)</script>\n\n"
	"<script>alert(1)</script>\n\n"
	"Inline <script>alert(2)</script> and <img src=x onerror=alert(3)> here.\n\n"
	"<img src=x onerror=alert(4)>\n\n"
	"<IMG SRC=x OnError=alert(5)>\n\n"
	"<svg onload=alert(6)></svg>\n\n"
	"<iframe src=\"https://evil.example/\"></iframe>\n\n"
	"<!-- a comment <script>alert(7)</script> -->\n\n"
	"<a href=\"http://evil.example\">evil anchor</a>\n\n"
	"[one](javascript:alert(1)) [two](JaVaScRiPt:alert(1)) [three](&#106;avascript:alert(1))\n"
	"[four](jav&#x09;ascript:alert(1)) [five](vbscript:msgbox(1)) "
	"[six](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==) [seven](//evil.example/x)\n\n"
	"[eight](https://evil.example/page \"title\") <https://evil.example/auto> "
	"www.evil.example and https://evil.example/bare and HTTP://EVIL.EXAMPLE/up\n\n"
	"![remote](http://evil.example/x.png) ![remote2](https://evil.example/y.png) "
	"![proto](//evil.example/z.png) ![file](file:///etc/passwd) ![rel](x.png) "
	"![data](data:image/png;base64,iVBORw0KGgo=)\n\n"
	"&lt;script&gt;alert(8)&lt;/script&gt; &#60;script&#62;alert(9)&#60;/script&#62;\n\n"
	"`<script>alert(10)</script>`\n\n"
	"```html\n<script>alert(11)</script>\n```\n\n"
	"| a | b |\n|---|---|\n| <b>x</b> | <img src=x onerror=alert(12)> |\n\n"
	"![\"><script>alert(13)</script>](figure:fig-1)\n\n"
	"![cap](table:table-1)\n";

static struct rpt_input xss_input(struct rpt_figure *fig, struct rpt_table *tab)
{
	struct rpt_input in = {
		.title = "<script>alert('title')</script> https://evil.example",
		.question = "Is \"><script>alert(1)</script> javascript:alert(1) safe?",
		.markdown = XSS_MD,
		.figures = fig,
		.n_figures = 1,
		.tables = tab,
		.n_tables = 1,
		.meta = {.model = "<script>m</script>", .generated_at = 1767225600,
			 .sandbox = "<script>s</script> https://evil.example:7070, stateful"},
	};
	return in;
}

static void test_xss_does_not_survive(void **state)
{
	(void)state;
	json_t *tj = small_table();
	struct rpt_figure fig = {.id = "fig-1", .data = g_png, .len = g_png_len,
				 .mime = "image/png", .alt = "\" onerror=\"alert(1)"};
	struct rpt_table tab = {.id = "table-1", .data = tj, .caption = "<i>t</i>"};
	struct rpt_input in = xss_input(&fig, &tab);
	struct rpt_stats st;
	char *html = tr_render(&in, &st);

	tr_assert_safe(html);
	assert_null(tr_stristr(html, "onerror"));
	assert_null(tr_stristr(html, "onload"));
	assert_null(tr_stristr(html, "<img src=x"));
	assert_null(strstr(html, "raw HTML omitted")); /* not even cmark's placeholder comment */
	assert_null(strstr(html, "<!--"));
	/* The sandbox line of the run details is escaped text like every other field. */
	assert_non_null(strstr(html, "<dt>Sandbox</dt><dd>&lt;script&gt;s&lt;/script&gt; "
				     "https&#58;//evil.example&#58;7070, stateful</dd>"));
	/* Escaped text stays visible where it was text. */
	assert_non_null(strstr(html, "&lt;b&gt;bold&lt;/b&gt;"));
	assert_non_null(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;"));
	assert_non_null(strstr(html, "&lt;script&gt;alert(8)"));
	assert_non_null(strstr(html, "<code>&lt;script&gt;alert(10)"));
	assert_non_null(strstr(html, "<pre><code>&lt;script&gt;alert(11)"));
	/* Web links keep their words and show the address as plain text. */
	assert_non_null(strstr(html, "eight <span class=\"url\">(https&#58;//evil.example/page)</span>"));
	assert_non_null(strstr(html, "<span class=\"url\">https&#58;//evil.example/auto</span>"));
	assert_non_null(strstr(html, " www.evil.example and https&#58;//evil.example/bare and "));
	/* Other links lose their target but keep their words. */
	assert_non_null(strstr(html, "one two three"));
	/* Images that are not references become their alt text. */
	assert_non_null(strstr(html, "remote remote2 proto file rel data"));
	/* The heading keeps its text, escaped, and a clean id. */
	assert_non_null(strstr(html, "<h2 id=\"results-alert-1\">Results &quot;&gt;alert(1)</h2>"));
	/* The figure is there, with the model's caption escaped into alt and figcaption. */
	assert_int_equal(st.figures_embedded, 1);
	assert_non_null(strstr(html, "alt=\"&quot;&gt;alert(13)\""));
	assert_int_equal(st.tables_rendered, 1);
	assert_true(st.html_dropped >= 12);
	assert_int_equal(st.links_neutralised, 9);
	assert_int_equal(st.images_dropped, 6);
	assert_int_equal(st.missing_refs, 0);
	free(html);
	json_decref(tj);
}

/* Deliberately odd inputs: whatever the structure, the same invariants hold. */
static void test_hostile_structure(void **state)
{
	(void)state;
	static const char NUL_MD[] = "\x01\x02 bad \xff\xfe utf8 \xc0\x80 overlong <scr\x00ipt>"
				     "<script>alert(1)</script>";
	static const char *const mds[] = {
		"[![x](figure:fig-1)](https://evil.example) *![y](table:nope)* ~~![z](figure:fig-1)~~",
		"# ![h](figure:fig-1) heading\n\n| ![c](figure:fig-1) |\n|---|\n| <script> |\n",
		"- a\n  ![f](figure:fig-1)\n- [ ] todo\n- [x] <b>done</b>\n",
		"> quote ![f](figure:fig-1)\n> > nested <script>\n",
		"text\\\n<script>\nalert(1)\n</script>\nmore\n",
		"[ref]\n\n[ref]: javascript:alert(1)\n\n[ok][r2]\n\n[r2]: https://x.example\n",
		"![a](figure:fig-1 \"title\") ![b](FIGURE:fig-1) ![c](figure:fig-1%22onerror=x)\n",
		NUL_MD,
		"[x](#\" onmouseover=\"alert(1)) [y](#ok) [z](#javascript:alert(1))",
	};
	struct rpt_figure fig = {.id = "fig-1", .data = g_png, .len = g_png_len};
	for (size_t i = 0; i < sizeof mds / sizeof *mds; i++) {
		struct rpt_input in = {.markdown = mds[i], .markdown_len = mds[i] == NUL_MD ? sizeof NUL_MD - 1 : 0,
				       .figures = &fig, .n_figures = 1};
		struct rpt_stats st;
		char *html = tr_render(&in, &st);
		tr_assert_safe(html);
		assert_null(tr_stristr(html, "onmouseover=\""));
		assert_true(st.figures_embedded <= 1);
		assert_int_equal(tr_count(html, "<img "), st.figures_embedded);
		free(html);
	}
}

static void test_shell(void **state)
{
	(void)state;
	struct rpt_input in = {.title = "Q3 & <revenue>", .question = "Why?", .markdown = "Hello."};
	char *html = tr_render(&in, NULL);
	tr_assert_safe(html);
	assert_memory_equal(html, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
			    strlen("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"));
	assert_non_null(strstr(html, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"));
	assert_non_null(strstr(html, "<title>Q3 &amp; &lt;revenue&gt; \xE2\x80\x94 corral</title>"));
	assert_non_null(strstr(html, "<h1 id=\"top\">Q3 &amp; &lt;revenue&gt;</h1>"));
	assert_non_null(strstr(html, "<span class=\"q-label\">Question</span>Why?"));
	assert_non_null(strstr(html, "--brand-primary:#274060"));
	assert_non_null(strstr(html, "@media print"));
	assert_non_null(strstr(html, "overflow-wrap:anywhere"));
	assert_non_null(strstr(html, "id=\"run-details\""));
	assert_non_null(strstr(html, "Generated automatically by corral"));
	assert_non_null(strstr(html, "<time datetime=\"1970-01-01T00:00:00Z\">1970-01-01 00:00:00 UTC</time>"));
	assert_null(strstr(html, "Partial report"));
	assert_null(strstr(html, "<nav")); /* no headings, no TOC */
	assert_null(strstr(html, "id=\"appendix\""));
	free(html);
}

static void test_figure_inlined_once(void **state)
{
	(void)state;
	struct rpt_figure fig = {.id = "fig-1", .data = g_png, .len = g_png_len, .alt = "Revenue"};
	struct rpt_input in = {
		.markdown = "Before ![Revenue by month](figure:fig-1) after.\n\n"
			    "Again: ![again](figure:fig-1)\n\nSee [the chart](figure:fig-1).\n",
		.figures = &fig, .n_figures = 1};
	struct rpt_stats st;
	char *html = tr_render(&in, &st);
	tr_assert_safe(html);
	assert_int_equal(st.figures_embedded, 1);
	assert_int_equal(tr_count(html, "<img "), 1);
	assert_int_equal(tr_count(html, "data:image/png;base64,"), 1);
	/* The paragraph is split around the figure: no <figure> inside a <p>. */
	assert_non_null(strstr(html, "<p>Before </p>\n<figure class=\"fig\" id=\"figure-fig-1\">\n"
				     "<img src=\"data:image/png;base64,iVBORw0KGgo"));
	assert_non_null(strstr(html, "alt=\"Revenue by month\" width=\"640\" height=\"360\">"));
	assert_non_null(strstr(html, "<figcaption><span class=\"label\">Figure 1.</span> Revenue by month"
				     "</figcaption>\n</figure>\n<p> after.</p>"));
	assert_non_null(strstr(html, "(See <a href=\"#figure-fig-1\">Figure 1</a> above.)"));
	assert_non_null(strstr(html, "See <a href=\"#figure-fig-1\">the chart</a>."));
	assert_null(strstr(html, "<p></p>"));
	assert_int_equal(st.in_appendix, 0);
	free(html);
}

static void test_missing_reference(void **state)
{
	(void)state;
	struct rpt_input in = {.markdown = "![a](figure:nope)\n\n![b](table:gone)\n\n"
					   "![c](figure:../../etc/passwd)\n\n![d](figure:)\n\n"
					   "![e](<figure:\x1b[31mred>)\n"};
	struct rpt_stats st;
	char *html = tr_render(&in, &st);
	tr_assert_safe(html);
	assert_int_equal(st.missing_refs, 5);
	assert_non_null(strstr(html, "<p class=\"missing\" role=\"note\">[missing figure: nope]</p>"));
	assert_non_null(strstr(html, "[missing table: gone]"));
	assert_non_null(strstr(html, "[missing figure: ../../etc/passwd]"));
	assert_non_null(strstr(st.problems, "missing figure nope"));
	assert_non_null(strstr(st.problems, "missing table gone"));
	assert_non_null(strstr(st.problems, "missing figure ?[31mred"));
	assert_non_null(strstr(html, "[missing figure: \xEF\xBF\xBD[31mred]"));
	free(html);
}

static void test_appendix(void **state)
{
	(void)state;
	json_t *tj = small_table();
	struct rpt_figure figs[2] = {{.id = "fig-1", .data = g_png, .len = g_png_len},
				     {.id = "fig-2", .data = g_png, .len = g_png_len, .alt = "Unused"}};
	struct rpt_table tabs[1] = {{.id = "t1", .data = tj, .caption = "Leftover table"}};
	struct rpt_input in = {.markdown = "## Only\n\n![used](figure:fig-1)\n",
			       .figures = figs, .n_figures = 2, .tables = tabs, .n_tables = 1};
	struct rpt_stats st;
	char *html = tr_render(&in, &st);
	tr_assert_safe(html);
	assert_int_equal(st.in_appendix, 2);
	assert_int_equal(st.figures_embedded, 2);
	const char *app = strstr(html, "<section class=\"appendix\" id=\"appendix\">");
	assert_non_null(app);
	assert_non_null(strstr(app, "id=\"figure-fig-2\""));
	assert_non_null(strstr(app, "Figure 2.</span> Unused"));
	assert_non_null(strstr(app, "id=\"table-t1\""));
	assert_non_null(strstr(app, "Table 1.</span> Leftover table"));
	assert_null(strstr(app, "id=\"figure-fig-1\""));
	assert_non_null(strstr(html, "<li><a href=\"#appendix\">"));
	free(html);
	json_decref(tj);
}

static void test_toc_ids(void **state)
{
	(void)state;
	struct rpt_figure fig = {.id = "fig", .data = g_png, .len = g_png_len};
	struct rpt_input in = {
		.markdown = "# Top level\n\n## Results\n\n### Détails & *more*\n\n## Results\n\n"
			    "## Run details\n\n## Figure fig\n\n#### Deep\n\n## !!!\n\n"
			    "## \"><img src=x onerror=alert(1)>\n\n## <b></b>\n\n[back](#results-2)\n",
		.figures = &fig, .n_figures = 1};
	char *html = tr_render(&in, NULL);
	tr_assert_safe(html);
	assert_non_null(strstr(html, "<h2 id=\"top-level\">Top level</h2>"));
	assert_non_null(strstr(html, "<h2 id=\"results\">Results</h2>"));
	assert_non_null(strstr(html, "<h3 id=\"détails-more\">Détails &amp; <em>more</em></h3>"));
	assert_non_null(strstr(html, "<h2 id=\"results-2\">Results</h2>"));
	assert_non_null(strstr(html, "<h2 id=\"run-details-2\">Run details</h2>"));
	assert_non_null(strstr(html, "<h2 id=\"figure-fig-2\">Figure fig</h2>"));
	assert_non_null(strstr(html, "<h4 id=\"deep\">Deep</h4>"));
	assert_non_null(strstr(html, "<h2 id=\"section\">!!!</h2>"));
	assert_non_null(strstr(html, "<h2 id=\"section-2\">&quot;&gt;</h2>"));
	const char *nav = strstr(html, "<nav class=\"toc\"");
	assert_non_null(nav);
	assert_non_null(strstr(nav, "<li><a href=\"#results\">Results</a><ol>\n"
				    "<li><a href=\"#détails-more\">Détails &amp; more</a></li>\n</ol>\n</li>"));
	assert_null(strstr(nav, "#deep")); /* h4 is not in the TOC */
	assert_non_null(strstr(html, "<h2 id=\"section-3\"></h2>"));
	assert_null(strstr(nav, "#section-3")); /* nor a heading without text */
	assert_non_null(strstr(html, "<a href=\"#results-2\">back</a>"));
	assert_int_equal(tr_count(html, "id=\"results\""), 1);
	free(html);
}

static void test_gfm(void **state)
{
	(void)state;
	struct rpt_input in = {
		.markdown = "| Name | Count | Mid |\n|:-----|------:|:---:|\n| a | 10 | x |\n\n"
			    "~~old~~ **bold** _it_ `code`\n\n- [x] done\n- [ ] todo\n\n"
			    "1. one\n2. two\n\ntext\n\n3. three\n4. four\n\n---\n\n> quoted\n\nline  \nbreak\n"};
	char *html = tr_render(&in, NULL);
	tr_assert_safe(html);
	assert_non_null(strstr(html, "<div class=\"table-wrap\"><table>\n<thead>\n<tr><th>Name</th>"
				     "<th class=\"num\">Count</th><th class=\"center\">Mid</th></tr>"));
	assert_non_null(strstr(html, "<td class=\"num\">10</td>"));
	assert_non_null(strstr(html, "<del>old</del> <strong>bold</strong> <em>it</em> <code>code</code>"));
	assert_non_null(strstr(html, "<li class=\"task\"><span class=\"box\">\xE2\x98\x91</span> done</li>"));
	assert_non_null(strstr(html, "<li>one</li>")); /* tight list: no <p> */
	assert_non_null(strstr(html, "<ol start=\"3\">"));
	assert_non_null(strstr(html, "<hr>"));
	assert_non_null(strstr(html, "<blockquote>\n<p>quoted</p>\n</blockquote>"));
	assert_non_null(strstr(html, "line<br>\nbreak"));
	free(html);
}

static void test_deterministic(void **state)
{
	(void)state;
	json_t *tj = small_table();
	struct rpt_figure fig = {.id = "fig-1", .data = g_png, .len = g_png_len};
	struct rpt_table tab = {.id = "table-1", .data = tj};
	struct rpt_input in = xss_input(&fig, &tab);
	in.meta.cost_usd = 0.0123;
	in.meta.wall_s = 83.4;
	char *a = tr_render(&in, NULL);
	char *b = tr_render(&in, NULL);
	assert_int_equal(strlen(a), strlen(b));
	assert_memory_equal(a, b, strlen(a));
	free(a);
	free(b);
	json_decref(tj);
}

static void test_partial_banner(void **state)
{
	(void)state;
	struct rpt_input in = {.markdown = "Some findings.", .partial = true,
			       .partial_reason = "the step budget (30) ran out <now>"};
	char *html = tr_render(&in, NULL);
	tr_assert_safe(html);
	assert_non_null(strstr(html, "<div class=\"banner\" id=\"partial\" role=\"note\"><strong>"
				     "Partial report.</strong>"));
	assert_non_null(strstr(html, "(the step budget (30) ran out &lt;now&gt;)"));
	free(html);
}

/* Nesting and size bombs finish, stay balanced and within limits. */
static void test_pathological(void **state)
{
	(void)state;
	size_t n = 200000;
	char *md = malloc(n + 1);
	for (size_t i = 0; i < n; i += 2)
		memcpy(md + i, "> ", 2);
	md[n] = '\0';
	struct rpt_input in = {.markdown = md};
	char *html = tr_render(&in, NULL);
	assert_true(tr_count(html, "<blockquote>") <= 32);
	tr_assert_safe(html);
	free(html);
	for (size_t i = 0; i < n; i++)
		md[i] = "[!("[i % 3];
	html = tr_render(&in, NULL);
	tr_assert_safe(html);
	free(html);
	/* A wide GFM table with many short rows: cmark would pad every row to the header's
	 * width (columns x rows nodes); over the budget the table stays text. */
	struct rpt_stats st;
	size_t o = 0;
	for (size_t i = 0; i < 400; i++)
		o += (size_t)sprintf(md + o, "|c");
	o += (size_t)sprintf(md + o, "|\n");
	for (size_t i = 0; i < 400; i++)
		o += (size_t)sprintf(md + o, "|-");
	o += (size_t)sprintf(md + o, "|\n");
	while (o + 4 < n)
		o += (size_t)sprintf(md + o, "|x\r");
	md[o] = '\0';
	html = tr_render(&in, &st);
	tr_assert_safe(html);
	assert_null(strstr(html, "<table"));
	assert_non_null(strstr(st.problems, "1 oversized table shown as text"));
	free(html);
	/* Within the budget: rendered, with rows and columns capped. */
	o = 0;
	for (size_t i = 0; i < 60; i++)
		o += (size_t)sprintf(md + o, "|c%zu", i);
	o += (size_t)sprintf(md + o, "|\n");
	for (size_t i = 0; i < 60; i++)
		o += (size_t)sprintf(md + o, "|-");
	o += (size_t)sprintf(md + o, "|\n");
	for (size_t i = 0; i < 1000; i++)
		o += (size_t)sprintf(md + o, "|%zu|\n", i);
	html = tr_render(&in, &st);
	tr_assert_safe(html);
	assert_int_equal(tr_count(html, "<tr>"), 501);
	assert_int_equal(tr_count(html, "<th>"), 50);
	assert_non_null(strstr(html, "Showing 500 of 1,000 rows and only the first columns."));
	assert_string_equal(st.problems, "");
	free(html);
	free(md);
}

static void test_sample_report(void **state)
{
	(void)state;
	const char *path = getenv("CORRAL_REPORT_SAMPLE_OUT");
	tr_sample_render(path && *path ? path : NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xss_does_not_survive),
		cmocka_unit_test(test_hostile_structure),
		cmocka_unit_test(test_shell),
		cmocka_unit_test(test_figure_inlined_once),
		cmocka_unit_test(test_missing_reference),
		cmocka_unit_test(test_appendix),
		cmocka_unit_test(test_toc_ids),
		cmocka_unit_test(test_gfm),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_partial_banner),
		cmocka_unit_test(test_pathological),
		cmocka_unit_test(test_sample_report),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
