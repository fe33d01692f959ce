/* core/buf.c -- see buf.h. */
#include "core/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cr_buf_init(struct cr_buf *b, size_t max)
{
	memset(b, 0, sizeof *b);
	b->max = max;
}

void cr_buf_free(struct cr_buf *b)
{
	free(b->data);
	size_t max = b->max;
	memset(b, 0, sizeof *b);
	b->max = max;
}

void cr_buf_reset(struct cr_buf *b)
{
	b->len = 0;
	b->dropped = 0;
	if (b->data)
		b->data[0] = '\0';
}

static int reserve(struct cr_buf *b, size_t need)
{
	if (need <= b->cap && b->data)
		return 0;
	size_t ncap = b->cap ? b->cap : 64;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	if (ncap > b->max)
		ncap = b->max;
	if (ncap < need)
		return -E2BIG;
	char *p = realloc(b->data, ncap + 1);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = ncap;
	b->data[b->len] = '\0'; /* the buffer is a valid C string from its first allocation on */
	return 0;
}

int cr_buf_append(struct cr_buf *b, const void *data, size_t n)
{
	if (n > b->max - b->len)
		return -E2BIG;
	int r = reserve(b, b->len + n);
	if (r < 0)
		return r;
	if (n)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

size_t cr_buf_append_trunc(struct cr_buf *b, const void *data, size_t n)
{
	size_t room = b->max - b->len;
	size_t keep = n < room ? n : room;
	if (keep && cr_buf_append(b, data, keep) < 0)
		keep = 0;
	b->dropped += n - keep;
	return keep;
}

int cr_buf_puts(struct cr_buf *b, const char *s)
{
	return cr_buf_append(b, s, strlen(s));
}

int cr_buf_printf(struct cr_buf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n < sizeof small)
		return cr_buf_append(b, small, (size_t)n);
	char *big = malloc((size_t)n + 1);
	if (!big)
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	int r = cr_buf_append(b, big, (size_t)n);
	free(big);
	return r;
}

void cr_buf_consume(struct cr_buf *b, size_t n)
{
	if (n >= b->len) {
		cr_buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

char *cr_buf_steal(struct cr_buf *b, size_t *len_out)
{
	if (!b->data && reserve(b, 0) < 0)
		return NULL;
	char *p = b->data;
	if (len_out)
		*len_out = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	b->dropped = 0;
	return p;
}
