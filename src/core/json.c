/* core/json.c -- see json.h. */
#include "core/json.h"

#include <errno.h>
#include <stdlib.h>

#include "core/text.h"

int cr_json_set_bytes(json_t *obj, const char *key, const char *enc_key, const char *data,
		      size_t len)
{
	json_t *v;
	const char *enc;
	if (cr_utf8_valid(data ? data : "", len)) {
		v = json_stringn(data ? data : "", len);
		enc = "utf-8";
	} else {
		size_t blen;
		char *b = cr_base64_encode(data, len, &blen);
		if (!b)
			return -ENOMEM;
		v = json_stringn(b, blen);
		free(b);
		enc = "base64";
	}
	if (!v || json_object_set_new(obj, key, v) < 0)
		return -ENOMEM;
	if (enc_key && json_object_set_new(obj, enc_key, json_string(enc)) < 0)
		return -ENOMEM;
	return 0;
}

char *cr_json_dump(const json_t *j)
{
	return json_dumps(j, JSON_COMPACT);
}

json_t *cr_json_parse(const char *text, size_t len, size_t max, struct cr_err *err)
{
	if (len > max) {
		cr_failx(err, E2BIG, "JSON body of %zu bytes exceeds the %zu byte limit", len, max);
		return NULL;
	}
	json_error_t je;
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		cr_failx(err, EINVAL, "invalid JSON at line %d column %d: %s", je.line, je.column,
			 je.text);
	return j;
}

int cr_json_get_str(const json_t *o, const char *key, const char **out, struct cr_err *err)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return cr_failx(err, EINVAL, "'%s' must be a string", key);
	*out = json_string_value(v);
	return 0;
}

int cr_json_get_uint(const json_t *o, const char *key, unsigned long long max,
		     unsigned long long *out, struct cr_err *err)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);
		if (i < 0 || (unsigned long long)i > max)
			return cr_failx(err, ERANGE, "'%s' must be between 0 and %llu", key, max);
		*out = (unsigned long long)i;
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (d < 0 || d > (double)max || d != (double)(unsigned long long)d)
			return cr_failx(err, ERANGE, "'%s' must be a whole number between 0 and %llu",
					key, max);
		*out = (unsigned long long)d;
		return 0;
	}
	return cr_failx(err, EINVAL, "'%s' must be a number", key);
}

int cr_json_get_num(const json_t *o, const char *key, double *out, struct cr_err *err)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_number(v))
		return cr_failx(err, EINVAL, "'%s' must be a number", key);
	*out = json_number_value(v);
	return 0;
}

int cr_json_get_bool(const json_t *o, const char *key, int *out, struct cr_err *err)
{
	json_t *v = json_object_get(o, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return cr_failx(err, EINVAL, "'%s' must be true or false", key);
	*out = json_is_true(v);
	return 0;
}
