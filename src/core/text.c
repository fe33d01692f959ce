/* core/text.c -- see text.h. */
#include "core/text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Returns the length of the valid sequence at p (1..4) or 0 if invalid/incomplete. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	size_t len;
	uint32_t cp;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

bool cr_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		size_t l = utf8_seq(p + i, n - i);
		if (!l)
			return false;
		i += l;
	}
	return true;
}

char *cr_utf8_sanitize(const char *s, size_t n, size_t *out_len)
{
	const unsigned char *p = (const unsigned char *)s;
	if (n > (SIZE_MAX - 1) / 3)
		return NULL;
	char *o = malloc(n * 3 + 1); /* each bad byte becomes 3 bytes at most */
	if (!o)
		return NULL;
	size_t i = 0, k = 0;
	while (i < n) {
		size_t l = utf8_seq(p + i, n - i);
		if (l) {
			memcpy(o + k, p + i, l);
			k += l;
			i += l;
		} else {
			memcpy(o + k, "\xEF\xBF\xBD", 3);
			k += 3;
			i++;
		}
	}
	o[k] = '\0';
	*out_len = k;
	return o;
}

size_t cr_utf8_clip(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	/* Walk back over at most 3 continuation bytes to find a lead byte. */
	size_t i = n;
	size_t back = 0;
	while (i > 0 && back < 4 && (p[i - 1] & 0xC0) == 0x80) {
		i--;
		back++;
	}
	if (i == 0)
		return n;
	unsigned char lead = p[i - 1];
	size_t need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
	if (need > 1 && back + 1 < need)
		return i - 1;
	return n;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *cr_base64_encode(const void *data, size_t n, size_t *out_len)
{
	const unsigned char *p = data;
	if (n > (SIZE_MAX - 1) / 4 * 3 - 3)
		return NULL;
	size_t olen = (n + 2) / 3 * 4;
	char *o = malloc(olen + 1);
	if (!o)
		return NULL;
	size_t j = 0;
	size_t i = 0;
	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		o[j++] = B64[v >> 18];
		o[j++] = B64[(v >> 12) & 63];
		o[j++] = B64[(v >> 6) & 63];
		o[j++] = B64[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		o[j++] = B64[v >> 18];
		o[j++] = B64[(v >> 12) & 63];
		o[j++] = i + 1 < n ? B64[(v >> 6) & 63] : '=';
		o[j++] = '=';
	}
	o[j] = '\0';
	if (out_len)
		*out_len = j;
	return o;
}

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

void *cr_base64_decode(const char *s, size_t n, size_t *out_len)
{
	if (n % 4)
		return NULL;
	unsigned char *o = malloc(n / 4 * 3 + 1);
	if (!o)
		return NULL;
	size_t j = 0;
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		int pad = 0;
		for (int k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)s[i + k];
			if (c == '=' && i + 4 == n && k >= 2) {
				v[k] = 0;
				pad++;
			} else {
				if (pad)
					goto bad;
				v[k] = b64val(c);
				if (v[k] < 0)
					goto bad;
			}
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | v[3];
		o[j++] = (unsigned char)(w >> 16);
		if (pad < 2)
			o[j++] = (unsigned char)(w >> 8);
		if (pad < 1)
			o[j++] = (unsigned char)w;
	}
	o[j] = 0;
	if (out_len)
		*out_len = j;
	return o;
bad:
	free(o);
	return NULL;
}

bool cr_consttime_eq(const void *a, size_t an, const void *b, size_t bn)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char diff = an != bn;
	size_t n = an < bn ? an : bn;
	for (size_t i = 0; i < n; i++)
		diff |= x[i] ^ y[i];
	return diff == 0;
}
