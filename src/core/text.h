/* core/text.h -- byte-level text helpers: UTF-8 validation and base64 (RFC 4648).
 *
 *   if (!cr_utf8_valid(p, n)) { char *b = cr_base64_encode(p, n, &blen); ... free(b); }
 *
 * Returned strings are malloc'd and owned by the caller; NULL means out of memory (or, for
 * decode, invalid input).
 */
#ifndef CORRAL_CORE_TEXT_H
#define CORRAL_CORE_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF.  NUL bytes are valid. */
bool cr_utf8_valid(const char *p, size_t n);
/* Length of the longest prefix of p[0..n) that ends on a complete UTF-8 sequence boundary
 * (used to cut capped text without splitting a character). */
size_t cr_utf8_clip(const char *p, size_t n);

/* A copy of p[0..n) with every byte that does not start a valid sequence replaced by U+FFFD
 * (lossy; for protocols that carry text only).  NUL-terminated; *out_len excludes the NUL. */
char *cr_utf8_sanitize(const char *p, size_t n, size_t *out_len);

char *cr_base64_encode(const void *data, size_t n, size_t *out_len);
/* Accepts padded standard base64; ignores no characters (whitespace is an error). */
void *cr_base64_decode(const char *s, size_t n, size_t *out_len);

/* Constant-time comparison of two byte strings (length leaks, content does not). */
bool cr_consttime_eq(const void *a, size_t an, const void *b, size_t bn);

#endif
