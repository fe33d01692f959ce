/* tests/unit/test_report_brand.c -- the report renderer's inputs other than the body: brand
 * files (strict colours), figures (PNG/SVG validation), captured tables, limits, ids, and the
 * atomic file write. */
#include "test_report_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static uint8_t *g_png;
static size_t g_png_len;
static char g_dir[64];

static int setup(void **state)
{
	(void)state;
	static const double v[] = {0.5, 0.7};
	g_png = tr_chart(v, 2, 0, 0x0F766E, &g_png_len);
	snprintf(g_dir, sizeof g_dir, "/tmp/corral-report-test-XXXXXX");
	return mkdtemp(g_dir) ? 0 : -1;
}

static void put_file(const char *name, const void *data, size_t len)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s", g_dir, name);
	FILE *f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static int teardown(void **state)
{
	(void)state;
	free(g_png);
	DIR *d = opendir(g_dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char p[512];
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(g_dir);
	return 0;
}

static void test_color_valid(void **state)
{
	(void)state;
	assert_true(rpt_color_valid("#abc"));
	assert_true(rpt_color_valid("#A1b2C3"));
	static const char *const bad[] = {"red", "#ab", "#abcd", "#abcdefg", "#ggg", "abc",
					  "#abc;", "red;}</style><script>alert(1)</script>",
					  "#123456;background:url(x)", "", " #abc", "#abc ", "#1234567"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		if (rpt_color_valid(bad[i]))
			fail_msg("accepted colour '%s'", bad[i]);
	assert_false(rpt_color_valid(NULL));
}

static int parse(const char *json, struct rpt_brand *b, struct cr_err *err)
{
	return rpt_brand_parse(json, strlen(json), g_dir, b, err);
}

static void test_brand_rejects(void **state)
{
	(void)state;
	static const struct {
		const char *json, *msg;
	} cases[] = {
		{"{\"colors\": {\"primary\": \"red;}</style><script>alert(1)</script>\"}}",
		 "colors.primary must be \"#rgb\" or \"#rrggbb\""},
		{"{\"colors\": {\"primary\": 123}}", "colors.primary must be"},
		{"{\"colors\": {\"primry\": \"#123\"}}", "unknown colour 'primry'"},
		{"{\"colour\": {}}", "unknown key 'colour'"},
		{"{\"colors\": \"#123\"}", "'colors' must be an object"},
		{"{\"name\": \"\"}", "'name' must be 1 to 80 bytes"},
		{"{\"name\": \"line\\nbreak\"}", "'name' must be"},
		{"{\"name\": 5}", "'name' must be a string"},
		{"[1]", "must be a JSON object"},
		{"{\"name\": ", "invalid JSON at line"},
		{"{\"logo\": \"missing.png\"}", "logo: cannot open missing.png"},
		{"{\"logo\": \"not-an-image.png\"}", "logo not-an-image.png is not a valid PNG or SVG"},
		{"{\"logo\": \"big.png\"}", "big.png is larger than 512 KiB"},
		{"{\"logo\": \".\"}", ". is not a regular file"},
	};
	put_file("not-an-image.png", "GIF89a....", 10);
	char *big = calloc(1, RPT_LOGO_MAX + 1);
	put_file("big.png", big, RPT_LOGO_MAX + 1);
	free(big);
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct rpt_brand b;
		struct cr_err err = {0};
		assert_true(parse(cases[i].json, &b, &err) < 0);
		if (!strstr(err.msg, cases[i].msg))
			fail_msg("case %zu: '%s' does not contain '%s'", i, err.msg, cases[i].msg);
		/* Left with the defaults, nothing owned. */
		assert_string_equal(b.name, "corral");
		assert_null(b.logo);
		assert_null(b.disclaimer);
	}
	/* A long disclaimer is refused, not cut. */
	char *json = malloc(RPT_DISCLAIMER_MAX + 64);
	int n = snprintf(json, 32, "{\"disclaimer\": \"");
	memset(json + n, 'x', RPT_DISCLAIMER_MAX + 1);
	strcpy(json + n + RPT_DISCLAIMER_MAX + 1, "\"}");
	struct rpt_brand b;
	struct cr_err err = {0};
	assert_true(parse(json, &b, &err) < 0);
	assert_non_null(strstr(err.msg, "'disclaimer' is longer than"));
	free(json);
}

static void test_brand_load_and_render(void **state)
{
	(void)state;
	uint8_t px[16 * 16 * 3];
	memset(px, 0x40, sizeof px);
	size_t logo_len;
	uint8_t *logo = tr_png(px, 16, 16, &logo_len);
	put_file("logo.png", logo, logo_len);
	free(logo);
	static const char svg[] = "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
				  "width=\"10\" height=\"10\"><rect width=\"10\" height=\"10\"/></svg>";
	put_file("logo.svg", svg, sizeof svg - 1);
	static const char brand_json[] =
		"{\"name\": \"Acme <Analytics>\", \"logo\": \"logo.png\", \"colors\": {\"primary\": "
		"\"#ABCDEF\", \"accent\": \"#123\", \"background\": \"#fafafa\"}, \"disclaimer\": "
		"\"Check <everything>.\"}";
	put_file("brand.json", brand_json, sizeof brand_json - 1);
	char path[256];
	snprintf(path, sizeof path, "%s/brand.json", g_dir);
	struct rpt_brand b;
	struct cr_err err = {0};
	if (rpt_brand_load(path, &b, &err) < 0)
		fail_msg("%s", err.msg);
	assert_string_equal(b.logo_mime, "image/png");
	assert_int_equal(b.logo_len, logo_len);

	struct rpt_input in = {.markdown = "Body.", .brand = &b};
	char *html = tr_render(&in, NULL);
	tr_assert_safe(html);
	assert_non_null(strstr(html, ":root{--brand-primary:#abcdef;--brand-accent:#123;"
				     "--on-primary:#111111;")); /* light primary: dark masthead text */
	assert_non_null(strstr(html, "--bg:#fafafa;"));
	assert_non_null(strstr(html, "<span class=\"brand-name\">Acme &lt;Analytics&gt;</span>"));
	assert_non_null(strstr(html, "\xE2\x80\x94 Acme &lt;Analytics&gt;</title>"));
	assert_non_null(strstr(html, "<p>Check &lt;everything&gt;.</p>"));
	assert_null(strstr(html, "Generated automatically by corral"));
	assert_int_equal(tr_count(html, "<img class=\"logo\" src=\"data:image/png;base64,"), 1);
	free(html);
	rpt_brand_free(&b);

	/* An SVG logo is embedded as data too (its namespace URL is inside the base64). */
	assert_int_equal(parse("{\"logo\": \"logo.svg\"}", &b, &err), 0);
	assert_string_equal(b.logo_mime, "image/svg+xml");
	html = tr_render(&in, NULL);
	tr_assert_safe(html);
	assert_non_null(strstr(html, "<img class=\"logo\" src=\"data:image/svg+xml;base64,PD94bWwg"));
	free(html);
	rpt_brand_free(&b);

	/* A brand built by hand is checked too: nothing unvalidated reaches the CSS. */
	rpt_brand_default(&b);
	strcpy(b.accent, "red;}<");
	struct cr_buf out;
	assert_int_equal(rpt_render(&in, &out, NULL, &err), -EINVAL);
	cr_buf_free(&out);
	assert_non_null(strstr(err.msg, "brand colour"));
	rpt_brand_default(&b);
	b.logo = (void *)"GIF89a";
	b.logo_len = 6;
	b.logo_mime = "image/png\" onload=\"x";
	assert_int_equal(rpt_render(&in, &out, NULL, &err), -EINVAL);
	cr_buf_free(&out);
	assert_non_null(strstr(err.msg, "brand logo is not a valid PNG or SVG"));
	rpt_brand_default(&b);
	assert_string_equal(b.name, "corral");
	assert_int_equal(parse("{}", &b, &err), 0);
	assert_string_equal(b.primary, "#274060");
}

static void test_png_validation(void **state)
{
	(void)state;
	uint32_t w = 0, h = 0;
	assert_true(rpt_png_valid(g_png, g_png_len, &w, &h));
	assert_int_equal(w, 640);
	assert_int_equal(h, 360);
	uint8_t *bad = malloc(g_png_len);
	memcpy(bad, g_png, g_png_len);
	bad[20] ^= 1; /* height changed: IHDR CRC no longer matches */
	assert_false(rpt_png_valid(bad, g_png_len, NULL, NULL));
	memcpy(bad, g_png, g_png_len);
	bad[25] = 5; /* no such colour type (CRC fixed up so only the field is wrong) */
	tr_put32(bad + 29, tr_crc(bad + 12, 17));
	assert_false(rpt_png_valid(bad, g_png_len, NULL, NULL));
	assert_false(rpt_png_valid(g_png, g_png_len - 1, NULL, NULL)); /* truncated: no IEND */
	assert_false(rpt_png_valid(g_png, 20, NULL, NULL));
	assert_false(rpt_png_valid("GIF89a", 6, NULL, NULL));
	assert_false(rpt_png_valid(NULL, 0, NULL, NULL));

	/* A figure that is not what it claims is reported, not embedded. */
	static const char svg[] = "<svg xmlns=\"http://www.w3.org/2000/svg\"><circle r=\"4\"/></svg>";
	struct rpt_figure figs[4] = {
		{.id = "bad", .data = bad, .len = g_png_len, .mime = "image/png"},
		{.id = "gif", .data = "GIF89a", .len = 6, .mime = "image/gif"},
		{.id = "svg", .data = svg, .len = sizeof svg - 1, .mime = "image/svg+xml"},
		{.id = "sniffed", .data = g_png, .len = g_png_len}};
	struct rpt_input in = {.markdown = "![a](figure:bad)\n\n![b](figure:gif)\n\n![c](figure:svg)\n\n"
					   "![d](figure:sniffed)\n",
			       .figures = figs, .n_figures = 4};
	struct rpt_stats st;
	char *html = tr_render(&in, &st);
	tr_assert_safe(html);
	assert_int_equal(st.invalid_assets, 2);
	assert_int_equal(st.figures_embedded, 2);
	assert_non_null(strstr(html, "[figure bad could not be shown: not a valid PNG]"));
	assert_non_null(strstr(html, "[figure gif could not be shown: unsupported type (PNG or SVG only)]"));
	assert_non_null(strstr(html, "<img src=\"data:image/svg+xml;base64,"));
	assert_non_null(strstr(st.problems, "figure bad not a valid PNG"));
	free(html);
	free(bad);
}

static json_t *big_table(void)
{
	json_t *cols = json_array(), *dtypes = json_array(), *rows = json_array();
	for (int j = 0; j < 60; j++) {
		char name[16];
		snprintf(name, sizeof name, "c%d", j);
		json_array_append_new(cols, json_string(name));
		json_array_append_new(dtypes, json_string(j == 0 ? "object" : "float64"));
	}
	for (int i = 0; i < 250; i++) {
		json_t *r = json_array();
		json_array_append_new(r, json_string(i ? "<b>x</b>" : "javascript:alert(1) http://evil"));
		for (int j = 1; j < 60; j++)
			json_array_append_new(r, j == 1 ? json_null() : json_real(i + j / 10.0));
		json_array_append_new(rows, r);
	}
	return json_pack("{s o s o s o s i}", "columns", cols, "dtypes", dtypes, "rows", rows,
			 "total_rows", 1000);
}

static void test_captured_tables(void **state)
{
	(void)state;
	json_error_t je;
	json_t *big = big_table();
	char longcell[1200];
	memset(longcell, 'w', sizeof longcell - 1);
	longcell[sizeof longcell - 1] = '\0';
	json_t *mixed = json_pack("{s [s s s] s [[s i b] [n f o] [s i b]]}", "columns", "text",
				  "n", "flag", "rows", longcell, 42, 1, 0.1,
				  json_pack("{s i}", "nested", 1), "\xc3\xa9t\xc3\xa9", -7, 0);
	json_t *bad1 = json_loads("{\"columns\": [], \"rows\": []}", 0, &je);
	json_t *bad2 = json_loads("{\"columns\": [\"a\"], \"rows\": [1, 2]}", 0, &je);
	json_t *bad3 = json_loads("{\"columns\": [\"a\"], \"dtypes\": [\"x\", \"y\"], \"rows\": []}", 0, &je);
	struct rpt_table tabs[5] = {{.id = "big", .data = big}, {.id = "mixed", .data = mixed},
				    {.id = "b1", .data = bad1}, {.id = "b2", .data = bad2},
				    {.id = "b3", .data = bad3}};
	struct rpt_input in = {.markdown = "![Big one](table:big)\n\n![](table:mixed)\n\n"
					   "![x](table:b1)\n\n![y](table:b2)\n\n![z](table:b3)\n",
			       .tables = tabs, .n_tables = 5};
	struct rpt_stats st;
	char *html = tr_render(&in, &st);
	tr_assert_safe(html);
	assert_int_equal(st.tables_rendered, 2);
	assert_int_equal(st.invalid_assets, 3);
	assert_non_null(strstr(html, "<p class=\"note\">Showing 200 of 1,000 rows and 50 of 60 columns.</p>"));
	assert_int_equal(tr_count(html, "<th scope=\"col\""), 50 + 3);
	assert_non_null(strstr(html, "<th scope=\"col\" class=\"num\">c2<span class=\"dtype\">float64</span></th>"));
	assert_non_null(strstr(html, "<td>javascript&#58;alert(1) http&#58;//evil</td>"));
	assert_non_null(strstr(html, "<td>&lt;b&gt;x&lt;/b&gt;</td>"));
	assert_non_null(strstr(html, "<td class=\"num na\">\xE2\x80\x94</td><td class=\"num\">2.2</td>"));
	/* mixed: no dtypes, "n" is numeric because every value is a number */
	assert_non_null(strstr(html, "<th scope=\"col\" class=\"num\">n</th>"));
	assert_non_null(strstr(html, "<td class=\"num\">42</td><td>true</td>"));
	assert_non_null(strstr(html, "<td class=\"num\">0.1</td><td>{&quot;nested&quot;&#58;1}</td>"));
	assert_non_null(strstr(html, "www\xE2\x80\xA6</td>")); /* cut at 500 bytes */
	assert_null(strstr(html, "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww"
				 "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww"
				 "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww"
				 "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww"
				 "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww"
				 "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww"
				 "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww"
				 "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww"
				 "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww"
				 "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww" "wwwwwwwwww" "w"));
	assert_non_null(strstr(html, "[table b1 could not be shown: &#39;columns&#39; must be a non-empty array]"));
	assert_non_null(strstr(html, "[table b2 could not be shown: every row must be an array]"));
	assert_non_null(strstr(html, "[table b3 could not be shown: &#39;dtypes&#39; must be"));
	free(html);
	json_decref(big);
	json_decref(mixed);
	json_decref(bad1);
	json_decref(bad2);
	json_decref(bad3);
}

static void test_limits(void **state)
{
	(void)state;
	struct rpt_limits lim = rpt_limits_default;
	lim.markdown_max = 64;
	struct rpt_figure fig = {.id = "f", .data = g_png, .len = g_png_len};
	struct rpt_input in = {.markdown = "First line is short.\nSecond line goes past the "
					   "limit of sixty-four bytes.\n![x](figure:f)\n",
			       .figures = &fig, .n_figures = 1, .limits = &lim};
	struct rpt_stats st;
	char *html = tr_render(&in, &st);
	tr_assert_safe(html);
	assert_true(st.body_truncated);
	assert_non_null(strstr(html, "<p>First line is short.</p>")); /* cut at the line end */
	assert_non_null(strstr(html, "[The rest of the report body was cut"));
	assert_int_equal(st.in_appendix, 1); /* its reference was cut: the figure is not lost */
	free(html);

	lim = rpt_limits_default;
	lim.figure_max = g_png_len - 1;
	in.markdown = "![x](figure:f)";
	html = tr_render(&in, &st);
	assert_non_null(strstr(html, "[figure f could not be shown: too large]"));
	free(html);

	lim = rpt_limits_default;
	lim.output_max = 4096;
	struct cr_buf out;
	struct cr_err err = {0};
	assert_int_equal(rpt_render(&in, &out, NULL, &err), -E2BIG);
	assert_non_null(strstr(err.msg, "exceed 4096 bytes"));
	cr_buf_free(&out);
}

static void test_ids(void **state)
{
	(void)state;
	assert_true(rpt_id_valid("fig-1_A", 7));
	assert_false(rpt_id_valid("a b", 3));
	assert_false(rpt_id_valid("", 0));
	assert_false(rpt_id_valid("a\"", 2));
	char long_id[66];
	memset(long_id, 'a', 65);
	long_id[65] = '\0';
	assert_false(rpt_id_valid(long_id, 65));
	assert_true(rpt_id_valid(long_id, 64));

	struct rpt_figure figs[2] = {{.id = "same", .data = g_png, .len = g_png_len},
				     {.id = "same", .data = g_png, .len = g_png_len}};
	struct rpt_input in = {.markdown = "x", .figures = figs, .n_figures = 2};
	struct cr_buf out;
	struct cr_err err = {0};
	assert_int_equal(rpt_render(&in, &out, NULL, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "duplicate figure id 'same'"));
	cr_buf_free(&out);
	strcpy(figs[1].id, "x\"y");
	assert_int_equal(rpt_render(&in, &out, NULL, &err), -EINVAL);
	cr_buf_free(&out);
	/* A figure and a table may share an id: references say which one they mean. */
	json_error_t je;
	json_t *t = json_loads("{\"columns\": [\"a\"], \"rows\": [[1]]}", 0, &je);
	struct rpt_table tab = {.id = "same", .data = t};
	in.n_figures = 1;
	in.tables = &tab;
	in.n_tables = 1;
	in.markdown = "![f](figure:same) ![t](table:same)";
	struct rpt_stats st;
	char *html = tr_render(&in, &st);
	assert_int_equal(st.figures_embedded, 1);
	assert_int_equal(st.tables_rendered, 1);
	free(html);
	json_decref(t);
	assert_int_equal(rpt_render(NULL, &out, NULL, &err), -EINVAL);
	cr_buf_free(&out);
}

static void test_render_file(void **state)
{
	(void)state;
	char path[256];
	snprintf(path, sizeof path, "%s/report.html", g_dir);
	struct rpt_input in = {.title = "File", .markdown = "## A\n\ntext"};
	struct rpt_stats st;
	struct cr_err err = {0};
	put_file("report.html", "old", 3);
	assert_int_equal(rpt_render_file(&in, path, &st, &err), 0);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0644);
	assert_int_equal((size_t)sb.st_size, st.bytes);
	char *html = tr_render(&in, NULL);
	char *buf = malloc(st.bytes);
	int fd = open(path, O_RDONLY);
	assert_int_equal(read(fd, buf, st.bytes), (ssize_t)st.bytes);
	close(fd);
	assert_memory_equal(buf, html, st.bytes);
	free(buf);
	free(html);
	/* No temporary file is left behind, after success or failure. */
	snprintf(path, sizeof path, "%s/no-such-dir/report.html", g_dir);
	assert_int_equal(rpt_render_file(&in, path, NULL, &err), -ENOENT);
	DIR *d = opendir(g_dir);
	struct dirent *e;
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".tmp-"))
			fail_msg("left behind: %s", e->d_name);
	closedir(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_color_valid),
		cmocka_unit_test(test_brand_rejects),
		cmocka_unit_test(test_brand_load_and_render),
		cmocka_unit_test(test_png_validation),
		cmocka_unit_test(test_captured_tables),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_render_file),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
