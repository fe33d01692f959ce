/* sandbox/result_json.c -- the documented JSON form of a result (docs/SANDBOX.md, "Result"). */
#include <jansson.h>

#include "core/json.h"
#include "sandbox/result_json.h"

json_t *sbx_result_to_json(const struct sbx_result *res)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "status", json_string(sbx_status_name(res->status)));
	json_object_set_new(o, "exit_code", res->exit_code >= 0 ? json_integer(res->exit_code)
								  : json_null());
	json_object_set_new(o, "signal", res->signal ? json_integer(res->signal) : json_null());
	json_object_set_new(o, "wall_ms", json_integer((json_int_t)res->wall_ms));
	json_object_set_new(o, "cpu_ms", json_integer((json_int_t)res->cpu_ms));
	json_object_set_new(o, "peak_memory_bytes", json_integer((json_int_t)res->peak_memory_bytes));
	if (cr_json_set_bytes(o, "stdout", "stdout_encoding", res->out.data, res->out.len) < 0 ||
	    cr_json_set_bytes(o, "stderr", "stderr_encoding", res->err.data, res->err.len) < 0) {
		json_decref(o);
		return NULL;
	}
	json_object_set_new(o, "stdout_truncated", json_boolean(res->stdout_truncated));
	json_object_set_new(o, "stderr_truncated", json_boolean(res->stderr_truncated));
	json_object_set_new(o, "stdout_dropped_bytes", json_integer((json_int_t)res->out.dropped));
	json_object_set_new(o, "stderr_dropped_bytes", json_integer((json_int_t)res->err.dropped));

	json_t *files = json_array(), *skipped = json_array();
	for (size_t i = 0; i < res->n_files; i++) {
		const struct sbx_file *f = &res->files[i];
		if (f->skipped)
			json_array_append_new(skipped, json_pack("{s:s, s:s}", "path", f->path,
								 "reason", f->skipped));
		else
			json_array_append_new(files, json_pack("{s:s, s:I}", "path", f->path,
							       "bytes", (json_int_t)f->bytes));
	}
	json_object_set_new(o, "files", files);
	json_object_set_new(o, "files_skipped", skipped);
	json_object_set_new(o, "files_truncated", json_boolean(res->files_truncated));
	json_object_set_new(o, "limit", res->limit ? json_string(res->limit) : json_null());
	json_object_set_new(o, "cgroup_limits_enforced", json_boolean(res->cgroup_enforced));
	if (!res->cgroup_enforced)
		json_object_set_new(o, "cgroup_note", json_string(res->cgroup_note));
	if (res->status == SBX_SANDBOX_ERROR)
		json_object_set_new(o, "error",
				    json_pack("{s:s, s:i, s:s, s:s}", "step", res->error_step,
					      "errno", res->error_errno, "errno_name",
					      cr_errno_name(res->error_errno), "message",
					      res->error_msg));
	else
		json_object_set_new(o, "error", json_null());
	return o;
}
