/* core/json.h -- small helpers over jansson (the JSON library; we never parse JSON by hand).
 *
 *   json_t *o = json_object();
 *   cr_json_set_bytes(o, "stdout", "stdout_encoding", data, len);  // "utf-8" text or base64
 *   char *s = cr_json_dump(o);   // compact, one line, caller frees
 *   json_decref(o);
 *
 * Ownership follows jansson: *_new / json_object() return a new reference the caller owns.
 */
#ifndef CORRAL_CORE_JSON_H
#define CORRAL_CORE_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "core/err.h"

/* Stores bytes under `key` as a JSON string: the text itself when it is valid UTF-8 (enc
 * "utf-8"), else its base64 (enc "base64"); enc_key receives the encoding name. 0 | -ENOMEM. */
int cr_json_set_bytes(json_t *obj, const char *key, const char *enc_key, const char *data,
		      size_t len);
/* Compact single-line dump; caller frees. NULL on allocation failure. */
char *cr_json_dump(const json_t *j);
/* Parses at most max bytes of JSON text into a new reference; error names line/column. */
json_t *cr_json_parse(const char *text, size_t len, size_t max, struct cr_err *err);
/* Typed getters with defaults; return 0, or -EINVAL (with err) when present but mistyped. */
int cr_json_get_str(const json_t *o, const char *key, const char **out, struct cr_err *err);
int cr_json_get_uint(const json_t *o, const char *key, unsigned long long max,
		     unsigned long long *out, struct cr_err *err);
int cr_json_get_num(const json_t *o, const char *key, double *out, struct cr_err *err);
int cr_json_get_bool(const json_t *o, const char *key, int *out, struct cr_err *err);

#endif
