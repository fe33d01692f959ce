/* server/e2b_internal.h -- small helpers shared by e2b_json.c and e2b_envd_json.c (the two
 * halves of e2b_json.h's implementation); nothing else includes it. */
#ifndef CORRAL_SERVER_E2B_INTERNAL_H
#define CORRAL_SERVER_E2B_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/api_json.h"

static inline bool is_null_or_absent(const json_t *v)
{
	return !v || json_is_null(v);
}

static inline bool wants(const json_t *v)
{
	if (is_null_or_absent(v))
		return false;
	if (json_is_boolean(v))
		return json_is_true(v);
	if (json_is_object(v))
		return json_object_size(v) > 0;
	if (json_is_array(v))
		return json_array_size(v) > 0;
	if (json_is_string(v))
		return json_string_length(v) > 0;
	return true;
}

static inline void rfc3339(uint64_t ms, char *out, size_t n)
{
	srv_rfc3339(ms, out, n);
}

#endif
