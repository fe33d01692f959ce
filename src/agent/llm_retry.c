/* agent/llm_retry.c -- retry arithmetic: which statuses, how long (Retry-After, backoff). */
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "agent/llm_wire.h"

bool llm_status_retryable(int status)
{
	return status == 408 || status == 409 || status == 429 || (status >= 500 && status <= 599);
}

uint64_t llm_rng_next(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

long llm_backoff_delay_ms(int retry, long base_ms, long cap_ms, uint64_t *rng)
{
	if (base_ms <= 0 || cap_ms <= 0)
		return 0;
	long upper = base_ms;
	for (int i = 0; i < retry && upper < cap_ms; i++)
		upper = upper > cap_ms / 2 ? cap_ms : upper * 2;
	if (upper > cap_ms)
		upper = cap_ms;
	return (long)(llm_rng_next(rng) % ((uint64_t)upper + 1));
}

static bool parse_number(const char *s, double *out)
{
	while (*s == ' ' || *s == '\t')
		s++;
	if (!(*s >= '0' && *s <= '9'))
		return false;
	char *end;
	errno = 0;
	double d = strtod(s, &end);
	while (*end == ' ' || *end == '\t')
		end++;
	if (errno || *end || !isfinite(d) || d < 0)
		return false;
	*out = d;
	return true;
}

long llm_parse_retry_after(const char *retry_after, const char *retry_after_ms, time_t now)
{
	const double limit = 1e12; /* ~30 years in ms: anything above is absurd, not a wait */
	double d;
	if (retry_after_ms && parse_number(retry_after_ms, &d))
		return (long)ceil(d < limit ? d : limit);
	if (!retry_after || !*retry_after)
		return -1;
	if (parse_number(retry_after, &d))
		return (long)ceil(d * 1000 < limit ? d * 1000 : limit);
	time_t t = curl_getdate(retry_after, NULL); /* HTTP-date (RFC 9110) */
	if (t == (time_t)-1)
		return -1;
	if (t <= now)
		return 0;
	double ms = difftime(t, now) * 1000;
	return (long)(ms < limit ? ms : limit);
}
