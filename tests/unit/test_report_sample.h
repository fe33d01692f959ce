/* tests/unit/test_report_sample.h -- a realistic sample report (brand with logo, three charts,
 * two captured tables, GFM, code, long words and URLs, a few inert attacks, partial banner),
 * rendered and checked by test_report.c; written to a file when asked, for the browser test
 * (tests/integration/test_report_browser.py) and for people to look at. */
#ifndef CORRAL_TEST_REPORT_SAMPLE_H
#define CORRAL_TEST_REPORT_SAMPLE_H

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_report_util.h"

static const char SAMPLE_MD[] =
	"## Summary\n\n"
	"Revenue grew **14.2%** quarter on quarter, driven mostly by *North-East* and *Pacific* "
	"(see [Figure 1](figure:fig-revenue)). Two regions shrank.\n\n"
	"![Revenue by region, Q3 2025 (million USD)](figure:fig-revenue)\n\n"
	"## Findings\n\n"
	"### Regions\n\n"
	"![Revenue by region with growth and order counts](table:table-regions)\n\n"
	"| Region | Growth | Comment |\n|:--|--:|:--|\n"
	"| North-East | 21.4% | new distributor since July |\n"
	"| Pacific | 18.9% | ~~flat~~ strong online sales |\n"
	"| Central | -3.1% | one large customer left |\n\n"
	"### Seasonality\n\n"
	"![Monthly revenue over the last 12 months](figure:fig-trend)\n\n"
	"Sales peak in **March** and **September**; the September peak is 9% higher than last "
	"year.\n\n"
	"## Method\n\n"
	"1. Loaded `sales.csv` (48,213 rows, 12 columns) and `regions.csv`.\n"
	"2. Dropped 112 rows with a missing amount.\n"
	"3. Grouped by region and month.\n\n"
	"```python\n"
	"df = pd.read_csv(\"sales.csv\", parse_dates=[\"date\"])\n"
	"q3 = df[df.date.dt.quarter == 3].groupby(\"region\")[\"amount\"].sum().sort_values(ascending=False)\n"
	"```\n\n"
	"A sample of the cleaned data:\n\n"
	"![First rows of the cleaned sales data](table:table-sample)\n\n"
	"## Caveats\n\n"
	"- [x] Currency converted at monthly average rates\n"
	"- [ ] Returns not yet netted out (the step budget ran out)\n"
	"- Exchange rates: https://www.ecb.europa.eu/stats/policy_and_exchange_rates/"
	"euro_reference_exchange_rates/html/index.en.html\n"
	"- A long identifier that must wrap on a phone: "
	"customer_segment_identifier_with_an_unreasonably_long_name_that_goes_on_and_on_2025_q3_final\n\n"
	"> Figures are rounded to one decimal. Jump back to the [summary](#summary).\n\n"
	"### Inert on purpose\n\n"
	"Text a hostile model might write; none of it may run or load anything: "
	"<script>alert(1)</script> <img src=x onerror=alert(1)> [click me](javascript:alert(1)) "
	"![tracking pixel](https://tracker.example/pixel.png) "
	"[a web page](https://example.com/some/page).\n";

static const char *const SAMPLE_REGIONS[] = {"North-East", "Pacific", "South", "Mountain",
					     "Midwest", "Central", "Atlantic", "Gulf"};

static json_t *sample_regions_table(void)
{
	static const double rev[] = {48.2, 41.7, 33.0, 27.5, 22.1, 18.4, 15.9, 9.3};
	static const double growth[] = {21.4, 18.9, 9.2, 7.5, 4.1, -3.1, 2.2, -0.8};
	json_t *rows = json_array();
	for (int i = 0; i < 8; i++)
		json_array_append_new(rows, json_pack("[s f f i s]", SAMPLE_REGIONS[i], rev[i],
						      growth[i], 1200 + i * 317,
						      i == 5 ? "<b>lost</b> one key account" : ""));
	return json_pack("{s [s s s s s] s [s s s s s] s o}", "columns", "region", "revenue_musd",
			 "growth_pct", "orders", "note", "dtypes", "object", "float64", "float64",
			 "int64", "object", "rows", rows);
}

static json_t *sample_rows_table(void)
{
	static const char *const products[] = {"Widget", "Gadget Pro", "Sprocket", "Flux capacitor"};
	json_t *rows = json_array();
	for (int i = 0; i < 250; i++) {
		char date[16], cust[32];
		snprintf(date, sizeof date, "2025-%02d-%02d", 7 + i % 3, 1 + i % 28);
		snprintf(cust, sizeof cust, "C-%05d", 10007 * (i + 1) % 99991);
		double price = 4.99 + (i % 7) * 12.5;
		json_t *discount = i % 5 == 0 ? json_null() : json_real((i % 4) * 0.05);
		json_array_append_new(
			rows, json_pack("[i s s s s i f f s s o s]", 500000 + i, date,
					SAMPLE_REGIONS[i % 8], cust, products[i % 4], 1 + i % 9, price,
					price * (1 + i % 9), "USD", i % 3 ? "online" : "retail", discount,
					i % 17 == 0 ? "customer asked for invoice re-issue; see ticket "
						      "thread_2025_q3_invoice_reissue_request_00017"
						    : ""));
	}
	return json_pack("{s [s s s s s s s s s s s s] s [s s s s s s s s s s s s] s o s i}",
			 "columns", "order_id", "date", "region", "customer", "product", "quantity",
			 "unit_price", "amount", "currency", "channel", "discount", "comment",
			 "dtypes", "int64", "object", "object", "object", "object", "int64", "float64",
			 "float64", "object", "object", "float64", "object", "rows", rows,
			 "total_rows", 48213);
}

/* A 96x96 logo: rounded tile with three white bars. */
static uint8_t *sample_logo(size_t *len)
{
	const uint32_t s = 96;
	uint8_t *rgb = malloc((size_t)s * s * 3);
	memset(rgb, 0xFF, (size_t)s * s * 3);
	for (int y = 0; y < (int)s; y++)
		for (int x = 0; x < (int)s; x++) {
			int dx = x < 16 ? 16 - x : x > 79 ? x - 79 : 0;
			int dy = y < 16 ? 16 - y : y > 79 ? y - 79 : 0;
			if (dx * dx + dy * dy <= 256)
				tr_rect(rgb, s, s, x, y, x + 1, y + 1, 0xF59E0B);
		}
	tr_rect(rgb, s, s, 22, 52, 34, 76, 0xFFFFFF);
	tr_rect(rgb, s, s, 42, 36, 54, 76, 0xFFFFFF);
	tr_rect(rgb, s, s, 62, 20, 74, 76, 0xFFFFFF);
	uint8_t *png = tr_png(rgb, s, s, len);
	free(rgb);
	return png;
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Renders the sample, checks it, and writes it to out_path when not NULL. */
static void tr_sample_render(const char *out_path)
{
	char dir[] = "/tmp/corral-report-brand-XXXXXX", path[128];
	assert_non_null(mkdtemp(dir));
	size_t logo_len;
	uint8_t *logo = sample_logo(&logo_len);
	snprintf(path, sizeof path, "%s/logo.png", dir);
	write_file(path, logo, logo_len);
	free(logo);
	static const char brand_json[] =
		"{\"name\": \"Acme Analytics\", \"logo\": \"logo.png\", \"colors\": {\"primary\": "
		"\"#1E3A5F\", \"accent\": \"#B45309\"}, \"disclaimer\": \"Prepared automatically by "
		"Acme Analytics with corral. Figures and statements come from code written by a "
		"language model; check them before making decisions.\"}";
	snprintf(path, sizeof path, "%s/brand.json", dir);
	write_file(path, brand_json, sizeof brand_json - 1);
	struct rpt_brand brand;
	struct cr_err err = {0};
	if (rpt_brand_load(path, &brand, &err) < 0)
		fail_msg("brand: %s", err.msg);

	static const double bars[] = {0.96, 0.83, 0.66, 0.55, 0.44, 0.37, 0.32, 0.19};
	static const double trend[] = {0.42, 0.48, 0.71, 0.55, 0.5, 0.46, 0.52, 0.6, 0.82, 0.64, 0.58,
				       0.61};
	static const double extra[] = {0.2, 0.5, 0.9};
	struct rpt_figure figs[3] = {
		{.id = "fig-revenue", .mime = "image/png", .alt = "Bar chart of revenue by region"},
		{.id = "fig-trend", .mime = "image/png", .alt = "Line chart of monthly revenue"},
		{.id = "fig-extra", .mime = "image/png", .alt = "Orders by channel (not discussed)"}};
	figs[0].data = tr_chart(bars, 8, 0, 0x1E3A5F, &figs[0].len);
	figs[1].data = tr_chart(trend, 12, 1, 0xB45309, &figs[1].len);
	figs[2].data = tr_chart(extra, 3, 0, 0x0F766E, &figs[2].len);
	json_t *t1 = sample_regions_table(), *t2 = sample_rows_table();
	assert_non_null(t1);
	assert_non_null(t2);
	struct rpt_table tabs[2] = {{.id = "table-regions", .data = t1, .caption = "Regions"},
				    {.id = "table-sample", .data = t2, .caption = "Sample rows"}};
	struct rpt_datafile files[2] = {{"sales.csv", 2345678}, {"regions.csv", 1024}};
	struct rpt_input in = {
		.title = "Which regions drove Q3 revenue growth?",
		.question = "Which regions drove the revenue growth in Q3 2025, and is the growth "
			    "seasonal or structural?",
		.markdown = SAMPLE_MD,
		.figures = figs, .n_figures = 3, .tables = tabs, .n_tables = 2,
		.meta = {.files = files, .n_files = 2, .provider = "openai", .model = "gpt-4.1-mini",
			 .steps = 30, .max_steps = 30, .tokens_in = 182340, .tokens_out = 9812,
			 .tokens_cached = 120000, .cost_usd = 0.1234, .wall_s = 214.5,
			 .model_s = 131.2, .sandbox_s = 61.8, .generated_at = 1767225600,
			 .version = "0.1.0", .sandbox = "local engine (python 3.11.2), stateful"},
		.brand = &brand,
		.partial = true,
		.partial_reason = "the step budget (30 steps) ran out",
	};
	struct rpt_stats st;
	char *html = tr_render(&in, &st);
	tr_assert_safe(html);
	assert_int_equal(st.figures_embedded, 3);
	assert_int_equal(st.tables_rendered, 2);
	assert_int_equal(st.in_appendix, 1);
	assert_int_equal(st.missing_refs, 0);
	assert_int_equal(st.invalid_assets, 0);
	assert_non_null(strstr(html, "Showing 200 of 48,213 rows."));
	assert_non_null(strstr(html, "--brand-primary:#1e3a5f"));
	assert_non_null(strstr(html, "<img class=\"logo\" src=\"data:image/png;base64,"));
	assert_non_null(strstr(html, "Partial report."));
	assert_non_null(strstr(html, "Prepared automatically by Acme Analytics"));
	assert_non_null(strstr(html, "<td class=\"num na\">\xE2\x80\x94</td>"));
	if (out_path) {
		struct stats_file { char *data; size_t len; } got = {0};
		if (rpt_render_file(&in, out_path, NULL, &err) < 0)
			fail_msg("rpt_render_file: %s", err.msg);
		FILE *f = fopen(out_path, "rb");
		assert_non_null(f);
		got.data = malloc(st.bytes + 1);
		got.len = fread(got.data, 1, st.bytes + 1, f);
		fclose(f);
		assert_int_equal(got.len, st.bytes);
		assert_memory_equal(got.data, html, st.bytes);
		free(got.data);
	}
	free(html);
	for (int i = 0; i < 3; i++)
		free((void *)figs[i].data);
	json_decref(t1);
	json_decref(t2);
	rpt_brand_free(&brand);
	snprintf(path, sizeof path, "%s/logo.png", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/brand.json", dir);
	unlink(path);
	rmdir(dir);
}

#endif
