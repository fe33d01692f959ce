/* sandbox/result_json.h -- encode a result as the documented JSON object.
 *   json_t *j = sbx_result_to_json(&res);   // new reference, caller decrefs; NULL on ENOMEM
 * stdout/stderr are lossless: UTF-8 text as is, anything else base64 with *_encoding saying so. */
#ifndef CORRAL_SANDBOX_RESULT_JSON_H
#define CORRAL_SANDBOX_RESULT_JSON_H

#include <jansson.h>

#include "sandbox/sandbox.h"

json_t *sbx_result_to_json(const struct sbx_result *res);

#endif
