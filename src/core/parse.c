/* core/parse.c -- see parse.h. */
#include "core/parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Parses "<digits>[.<digits>]" at *s, advancing it. Returns -1 when no digit is present. */
static int parse_decimal(const char **s, long double *out)
{
	const char *p = *s;
	long double v = 0;
	int digits = 0;
	while (isdigit((unsigned char)*p)) {
		v = v * 10 + (*p - '0');
		p++;
		digits++;
	}
	if (*p == '.') {
		p++;
		long double scale = 0.1L;
		int frac = 0;
		while (isdigit((unsigned char)*p)) {
			v += (*p - '0') * scale;
			scale /= 10;
			p++;
			frac++;
		}
		if (!frac)
			return -1;
	}
	if (!digits)
		return -1;
	*s = p;
	*out = v;
	return 0;
}

/* x >= 0 and below 2^64, rounded half up (without libm: corral run loads one library less) */
static uint64_t round_up_half(long double x)
{
	return (uint64_t)(x + 0.5L);
}

int cr_parse_size(const char *s, uint64_t *out, struct cr_err *err)
{
	if (!s || !*s)
		return cr_failx(err, EINVAL, "empty size");
	const char *p = s;
	long double v;
	if (parse_decimal(&p, &v) < 0)
		return cr_failx(err, EINVAL, "invalid size '%s' (expected e.g. 512M, 1G, 65536)", s);
	long double mult = 1;
	char c = (char)toupper((unsigned char)*p);
	if (c) {
		switch (c) {
		case 'B': mult = 1; break;
		case 'K': mult = 1024.0L; break;
		case 'M': mult = 1024.0L * 1024; break;
		case 'G': mult = 1024.0L * 1024 * 1024; break;
		case 'T': mult = 1024.0L * 1024 * 1024 * 1024; break;
		default:
			return cr_failx(err, EINVAL, "invalid size '%s': unknown unit", s);
		}
		p++;
		if (c != 'B') {
			if (*p == 'i' || *p == 'I')
				p++;
			if (*p == 'b' || *p == 'B')
				p++;
		}
		if (*p)
			return cr_failx(err, EINVAL, "invalid size '%s': unknown unit", s);
	}
	long double bytes = v * mult;
	if (mult == 1 && strchr(s, '.'))
		return cr_failx(err, EINVAL, "invalid size '%s': fractional bytes", s);
	if (bytes >= 18446744073709551615.0L)
		return cr_failx(err, ERANGE, "size '%s' is too large", s);
	*out = round_up_half(bytes);
	return 0;
}

int cr_parse_duration(const char *s, uint64_t *out_ms, struct cr_err *err)
{
	if (!s || !*s)
		return cr_failx(err, EINVAL, "empty duration");
	const char *p = s;
	long double v;
	if (parse_decimal(&p, &v) < 0)
		return cr_failx(err, EINVAL, "invalid duration '%s' (expected e.g. 30, 1.5s, 500ms)", s);
	long double mult;
	if (!*p || !strcmp(p, "s"))
		mult = 1000;
	else if (!strcmp(p, "ms"))
		mult = 1;
	else if (!strcmp(p, "m"))
		mult = 60000;
	else if (!strcmp(p, "h"))
		mult = 3600000;
	else
		return cr_failx(err, EINVAL, "invalid duration '%s': unknown unit", s);
	long double ms = v * mult;
	if (ms >= 9.2e18L)
		return cr_failx(err, ERANGE, "duration '%s' is too large", s);
	*out_ms = round_up_half(ms);
	return 0;
}

int cr_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out, struct cr_err *err)
{
	if (!s || !*s)
		return cr_failx(err, EINVAL, "empty number");
	for (const char *p = s; *p; p++)
		if (!isdigit((unsigned char)*p))
			return cr_failx(err, EINVAL, "invalid number '%s'", s);
	errno = 0;
	unsigned long long v = strtoull(s, NULL, 10);
	if (errno == ERANGE || v < min || v > max)
		return cr_failx(err, ERANGE, "number '%s' out of range [%llu, %llu]", s,
				(unsigned long long)min, (unsigned long long)max);
	*out = v;
	return 0;
}

int cr_parse_double(const char *s, double min, double max, double *out, struct cr_err *err)
{
	const char *p = s;
	long double v;
	if (!s || parse_decimal(&p, &v) < 0 || *p)
		return cr_failx(err, EINVAL, "invalid number '%s'", s ? s : "");
	if (v < min || v > max)
		return cr_failx(err, ERANGE, "number '%s' out of range [%g, %g]", s, min, max);
	*out = (double)v;
	return 0;
}

int cr_parse_mount_spec(const char *s, char **host, char **dest, struct cr_err *err)
{
	*host = *dest = NULL;
	if (!s || !*s)
		return cr_failx(err, EINVAL, "empty mount spec");
	const char *colon = strchr(s, ':');
	size_t hl = colon ? (size_t)(colon - s) : strlen(s);
	if (hl == 0)
		return cr_failx(err, EINVAL, "mount spec '%s' has no host path", s);
	if (colon && !colon[1])
		return cr_failx(err, EINVAL, "mount spec '%s' has an empty destination", s);
	*host = strndup(s, hl);
	*dest = strdup(colon ? colon + 1 : *host);
	if (!*host || !*dest) {
		free(*host);
		free(*dest);
		*host = *dest = NULL;
		return cr_fail(err, ENOMEM, "mount spec");
	}
	return 0;
}
