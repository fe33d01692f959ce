/* core/buf.h -- a growable byte buffer whose maximum size is fixed at birth.
 *
 *   struct cr_buf b;
 *   cr_buf_init(&b, 1 << 20);               // max is mandatory: untrusted input never grows it past
 *   if (cr_buf_append(&b, data, n) == -E2BIG) ... // nothing past max is kept; see policy below
 *   use(b.data, b.len);                     // b.data is always NUL-terminated (not counted in len)
 *   cr_buf_free(&b);
 *
 * Two policies at the call site:
 *   cr_buf_append      all-or-nothing: returns -E2BIG and keeps the buffer as it was (reject).
 *   cr_buf_append_trunc keeps what fits, counts the rest in b.dropped (truncate and report).
 * The buffer owns b.data; cr_buf_steal hands it to the caller.
 */
#ifndef CORRAL_CORE_BUF_H
#define CORRAL_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct cr_buf {
	char *data;       /* NUL-terminated; NULL until the first append */
	size_t len;       /* bytes held */
	size_t cap;       /* bytes allocated (excluding the NUL) */
	size_t max;       /* hard limit on len */
	uint64_t dropped; /* bytes refused by cr_buf_append_trunc */
};

void cr_buf_init(struct cr_buf *b, size_t max);
void cr_buf_free(struct cr_buf *b);
void cr_buf_reset(struct cr_buf *b); /* len = 0, dropped = 0; keeps memory and max */
int cr_buf_append(struct cr_buf *b, const void *data, size_t n);     /* 0 | -E2BIG | -ENOMEM */
size_t cr_buf_append_trunc(struct cr_buf *b, const void *data, size_t n); /* returns bytes kept */
int cr_buf_puts(struct cr_buf *b, const char *s);
int cr_buf_printf(struct cr_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cr_buf_consume(struct cr_buf *b, size_t n); /* drop n bytes from the front */
char *cr_buf_steal(struct cr_buf *b, size_t *len_out); /* caller frees; b is reset to empty */

#endif
