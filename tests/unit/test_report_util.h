/* tests/unit/test_report_util.h -- helpers shared by the report tests (header-only, static):
 * a tiny PNG writer (stored deflate blocks, so no zlib), simple charts drawn with it, and
 * string checks over rendered HTML. */
#ifndef CORRAL_TEST_REPORT_UTIL_H
#define CORRAL_TEST_REPORT_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "report/report.h"

static void tr_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t tr_crc(const uint8_t *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
	}
	return c ^ 0xFFFFFFFFu;
}

/* Appends one chunk (length, type, data, CRC) at *o. */
static void tr_chunk(uint8_t *buf, size_t *o, const char *type, const uint8_t *data, size_t n)
{
	tr_put32(buf + *o, (uint32_t)n);
	memcpy(buf + *o + 4, type, 4);
	if (n)
		memcpy(buf + *o + 8, data, n);
	tr_put32(buf + *o + 8 + n, tr_crc(buf + *o + 4, n + 4));
	*o += 12 + n;
}

/* RGB pixels (w*h*3) -> PNG bytes (malloc'd). */
static uint8_t *tr_png(const uint8_t *rgb, uint32_t w, uint32_t h, size_t *len)
{
	size_t raw_len = (size_t)h * (1 + 3 * (size_t)w);
	uint8_t *raw = malloc(raw_len);
	for (uint32_t y = 0; y < h; y++) {
		raw[y * (1 + 3 * (size_t)w)] = 0;
		memcpy(raw + y * (1 + 3 * (size_t)w) + 1, rgb + (size_t)y * w * 3, (size_t)w * 3);
	}
	size_t nblocks = raw_len / 65535 + 1;
	size_t z_len = 2 + raw_len + nblocks * 5 + 4;
	uint8_t *z = malloc(z_len);
	size_t zo = 0;
	z[zo++] = 0x78;
	z[zo++] = 0x01;
	uint32_t a = 1, b = 0;
	for (size_t off = 0, blk = 0; blk < nblocks; blk++) {
		size_t n = raw_len - off < 65535 ? raw_len - off : 65535;
		z[zo++] = blk + 1 == nblocks ? 1 : 0;
		z[zo++] = (uint8_t)n;
		z[zo++] = (uint8_t)(n >> 8);
		z[zo++] = (uint8_t)~n;
		z[zo++] = (uint8_t)(~n >> 8);
		memcpy(z + zo, raw + off, n);
		for (size_t i = 0; i < n; i++) {
			a = (a + raw[off + i]) % 65521;
			b = (b + a) % 65521;
		}
		zo += n;
		off += n;
	}
	tr_put32(z + zo, b << 16 | a);
	zo += 4;
	uint8_t *png = malloc(8 + 25 + 12 + zo + 12);
	size_t o = 8;
	memcpy(png, "\x89PNG\r\n\x1a\n", 8);
	uint8_t ihdr[13];
	tr_put32(ihdr, w);
	tr_put32(ihdr + 4, h);
	ihdr[8] = 8;  /* bit depth */
	ihdr[9] = 2;  /* RGB */
	ihdr[10] = ihdr[11] = ihdr[12] = 0;
	tr_chunk(png, &o, "IHDR", ihdr, 13);
	tr_chunk(png, &o, "IDAT", z, zo);
	tr_chunk(png, &o, "IEND", NULL, 0);
	free(raw);
	free(z);
	*len = o;
	return png;
}

static void tr_rect(uint8_t *rgb, uint32_t w, uint32_t h, int x0, int y0, int x1, int y1,
		    uint32_t color)
{
	for (int y = y0 < 0 ? 0 : y0; y < y1 && y < (int)h; y++)
		for (int x = x0 < 0 ? 0 : x0; x < x1 && x < (int)w; x++) {
			uint8_t *p = rgb + ((size_t)y * w + (size_t)x) * 3;
			p[0] = (uint8_t)(color >> 16);
			p[1] = (uint8_t)(color >> 8);
			p[2] = (uint8_t)color;
		}
}

/* A bar chart (line = 0) or a line chart of n values in [0, 1], as a PNG. */
static uint8_t *tr_chart(const double *v, int n, int line, uint32_t color, size_t *len)
{
	const uint32_t w = 640, h = 360;
	uint8_t *rgb = malloc((size_t)w * h * 3);
	memset(rgb, 0xFF, (size_t)w * h * 3);
	for (int g = 0; g <= 4; g++) /* grid */
		tr_rect(rgb, w, h, 50, 30 + g * 75, 620, 31 + g * 75, 0xE5E7EB);
	tr_rect(rgb, w, h, 50, 30, 52, 331, 0x374151); /* axes */
	tr_rect(rgb, w, h, 50, 329, 620, 331, 0x374151);
	int slot = 560 / n;
	for (int i = 0; i < n; i++) {
		int top = 330 - (int)(v[i] * 290);
		int x = 60 + i * slot;
		if (!line) {
			tr_rect(rgb, w, h, x + slot / 6, top, x + slot - slot / 6, 329, color);
			continue;
		}
		if (i + 1 < n) { /* straight segment to the next point, drawn as small squares */
			int nx = 60 + (i + 1) * slot, ny = 330 - (int)(v[i + 1] * 290);
			for (int s = 0; s <= 100; s++) {
				int px = x + (nx - x) * s / 100, py = top + (ny - top) * s / 100;
				tr_rect(rgb, w, h, px - 2, py - 2, px + 2, py + 2, color);
			}
		}
		tr_rect(rgb, w, h, x - 5, top - 5, x + 5, top + 5, 0x111827);
	}
	uint8_t *png = tr_png(rgb, w, h, len);
	free(rgb);
	return png;
}

/* Case-insensitive substring search. */
static const char *tr_stristr(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay; hay++)
		if (!strncasecmp(hay, needle, n))
			return hay;
	return NULL;
}

static size_t tr_count(const char *hay, const char *needle)
{
	size_t k = 0, n = strlen(needle);
	for (const char *p = hay; (p = strstr(p, needle)); p += n)
		k++;
	return k;
}

/* Renders and asserts success; returns the HTML (caller frees). */
static char *tr_render(const struct rpt_input *in, struct rpt_stats *st)
{
	struct cr_buf b;
	struct cr_err err = {0};
	int r = rpt_render(in, &b, st, &err);
	if (r != 0)
		fail_msg("rpt_render: %d %s", r, err.msg);
	char *s = cr_buf_steal(&b, NULL);
	cr_buf_free(&b);
	return s;
}

/* Every <tag> / <tag ...> has its </tag>. */
static void tr_assert_balanced(const char *html, const char *tag)
{
	char open1[32], open2[32], close[32];
	snprintf(open1, sizeof open1, "<%s>", tag);
	snprintf(open2, sizeof open2, "<%s ", tag);
	snprintf(close, sizeof close, "</%s>", tag);
	size_t o = tr_count(html, open1) + tr_count(html, open2), c = tr_count(html, close);
	if (o != c)
		fail_msg("<%s>: %zu opened, %zu closed", tag, o, c);
}

static void tr_assert_structure(const char *html)
{
	static const char *const tags[] = {"p", "figure", "table", "thead", "tbody", "tr", "td",
					   "th", "ul", "ol", "li", "blockquote", "a", "em", "strong",
					   "del", "code", "pre", "h2", "h3", "h4", "section", "div",
					   "span", "nav", "dl", "dt", "dd", "main", "header", "footer",
					   "article", "figcaption", "html", "head", "body", "title",
					   "style"};
	for (size_t i = 0; i < sizeof tags / sizeof *tags; i++)
		tr_assert_balanced(html, tags[i]);
}

/* The security invariants every rendered report must satisfy. */
static void tr_assert_safe(const char *html)
{
	static const char *const bad[] = {"<script", "javascript:", "vbscript:", "http://",
					  "https://", "<iframe", "<object", "<embed", "<svg",
					  "<base", "<form", "<input", "<link", "<meta http-equiv=\"refresh"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		if (tr_stristr(html, bad[i]))
			fail_msg("output contains '%s': ...%.80s", bad[i], tr_stristr(html, bad[i]));
	/* Only in-page links, only our own data: images, no event handlers. */
	for (const char *p = html; (p = strstr(p, "href=\"")); p += 6)
		if (p[6] != '#')
			fail_msg("non-fragment href: %.60s", p);
	for (const char *p = html; (p = strstr(p, "src=\"")); p += 5)
		if (strncmp(p + 5, "data:image/png;base64,", 22) &&
		    strncmp(p + 5, "data:image/svg+xml;base64,", 26))
			fail_msg("unexpected src: %.60s", p);
	/* Every literal '<' is our markup (text has &lt;), so a tag runs to the next '>'. */
	for (const char *t = strchr(html, '<'); t; t = strchr(t + 1, '<')) {
		const char *end = strchr(t, '>');
		assert_non_null(end);
		for (const char *p = t; p < end; p++) {
			if ((p[0] != ' ' && p[0] != '\t' && p[0] != '\n') || strncasecmp(p + 1, "on", 2))
				continue;
			const char *q = p + 3;
			while (q < end && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')))
				q++;
			if (q < end && *q == '=')
				fail_msg("event-handler attribute: %.60s", t);
		}
	}
	if (!strstr(html, "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src "
			  "'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
			  "base-uri 'none'; form-action 'none'\">"))
		fail_msg("CSP meta missing");
	tr_assert_structure(html);
}

#endif
