/* core/parse.h -- strict parsers for command-line and API values.
 *
 *   uint64_t bytes; if (cr_parse_size("512M", &bytes, &err) < 0) ...   // 536870912
 *   uint64_t ms;    cr_parse_duration("1.5s", &ms, &err);              // 1500
 *
 * Every parser rejects the whole input on any stray character, sign, overflow or emptiness,
 * and names the offending text in err (no strerror suffix: the problem is the input).
 */
#ifndef CORRAL_CORE_PARSE_H
#define CORRAL_CORE_PARSE_H

#include <stdint.h>

#include "core/err.h"

/* Sizes: "1048576", "64K", "512M", "1G", "2T"; suffixes are binary (K = 1024) and may be
 * written K, KB, KiB (any case). Fractions allowed with a suffix ("1.5G"). No negatives. */
int cr_parse_size(const char *s, uint64_t *out, struct cr_err *err);
/* Durations to milliseconds: "30" (seconds), "1.5s", "500ms", "2m", "1h". */
int cr_parse_duration(const char *s, uint64_t *out_ms, struct cr_err *err);
/* Unsigned integer in [min, max], decimal only. */
int cr_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out, struct cr_err *err);
/* Non-negative finite decimal number in [min, max]. */
int cr_parse_double(const char *s, double min, double max, double *out, struct cr_err *err);
/* Splits "HOST[:DEST]" into malloc'd host and dest (dest = host when absent). */
int cr_parse_mount_spec(const char *s, char **host, char **dest, struct cr_err *err);

#endif
