/* server/e2b_envd_json.c -- see e2b_json.h: envd's side of the E2B surface, pure -- Connect
 * RPC envelopes and codes, and the proto3 JSON messages of the process and filesystem
 * services (requests checked, events built with jansson). */
#include "server/e2b_json.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/text.h"
#include "server/api_json.h"
#include "server/e2b_internal.h"

/* -- Connect RPC ------------------------------------------------------------------------ */

const char *e2b_connect_code(unsigned s)
{
	switch (s) {
	case 400: return "invalid_argument";
	case 401: return "unauthenticated";
	case 403: return "permission_denied";
	case 404: return "not_found";
	case 408: return "deadline_exceeded";
	case 409: return "already_exists";
	case 412: return "failed_precondition";
	case 413: case 429: case 507: return "resource_exhausted";
	case 499: return "canceled";
	case 501: return "unimplemented";
	case 502: case 503: return "unavailable";
	case 504: return "deadline_exceeded";
	default: return s >= 500 ? "internal" : "unknown";
	}
}

int e2b_envelope_unwrap(const char *body, size_t len, const char **msg, size_t *msg_len,
			struct cr_err *err)
{
	if (len < 5)
		return cr_failx(err, EINVAL, "a streaming request needs one enveloped message");
	uint32_t n;
	memcpy(&n, body + 1, 4);
	n = ntohl(n);
	if ((unsigned char)body[0] != 0)
		return cr_failx(err, EINVAL, "compressed or end-of-stream request envelopes are "
				"not supported");
	if ((size_t)n != len - 5)
		return cr_failx(err, EINVAL, "the request holds %zu bytes after its envelope, "
				"which announces %u", len - 5, n);
	*msg = body + 5;
	*msg_len = n;
	return 0;
}

static int envelope(struct cr_buf *out, uint8_t flags, json_t *msg)
{
	char *s = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
	json_decref(msg);
	if (!s)
		return -ENOMEM;
	size_t n = strlen(s);
	uint32_t be = htonl((uint32_t)n);
	int r = cr_buf_append(out, &flags, 1);
	r = r < 0 ? r : cr_buf_append(out, &be, 4);
	r = r < 0 ? r : cr_buf_append(out, s, n);
	free(s);
	return r;
}

int e2b_envelope_put(struct cr_buf *out, json_t *msg)
{
	return envelope(out, 0, msg);
}

int e2b_end_stream(struct cr_buf *out, const char *code, const char *message)
{
	json_t *m = code ? json_pack("{s:{s:s, s:s}}", "error", "code", code, "message",
				     message ? message : "")
			 : json_object();
	return envelope(out, 0x02, m);
}

static json_t *parse_msg(const char *msg, size_t len, struct cr_err *err)
{
	return srv_json_object(msg, len, E2B_MESSAGE_MAX, err);
}

static bool env_name_ok(const char *k)
{
	return *k && !strchr(k, '=') && strlen(k) <= 256;
}

int e2b_session_path(const char *p, char *out, size_t n, struct cr_err *err)
{
	size_t l = strlen(p);
	if (l == 0)
		return cr_failx(err, EINVAL, "the path is empty");
	if (!cr_utf8_valid(p, l))
		return cr_failx(err, EILSEQ, "the path is not UTF-8");
	int w;
	if (p[0] == '/')
		w = snprintf(out, n, "%s", p);
	else if (p[0] == '~' && (p[1] == '/' || !p[1]))
		w = snprintf(out, n, "%s%s", E2B_HOME, p + 1);
	else
		w = snprintf(out, n, "%s/%s", E2B_HOME, p);
	if (w < 0 || (size_t)w >= n)
		return cr_failx(err, ENAMETOOLONG, "the path is longer than %zu bytes", n - 1);
	size_t k = (size_t)w;
	while (k > 1 && out[k - 1] == '/')
		out[--k] = '\0';
	return 0;
}

int e2b_parse_process_start(const char *msg, size_t len, struct cr_buf *payload,
			    json_t **config, char *tag, size_t tag_n, struct cr_err *err)
{
	*config = NULL;
	if (tag_n)
		tag[0] = '\0';
	json_t *j = parse_msg(msg, len, err);
	if (!j)
		return -EINVAL;
	int r = 0;
	const char **argv = NULL, **env = NULL;
	char **envbuf = NULL;
	size_t n_env = 0;
	json_t *proc = json_object_get(j, "process"), *v;
	if (wants(json_object_get(j, "pty"))) {
		r = cr_failx(err, ENOSYS, "pseudo-terminals are not supported by corral");
		goto out;
	}
	if (!json_is_object(proc) || !json_is_string(v = json_object_get(proc, "cmd")) ||
	    !json_string_length(v)) {
		r = cr_failx(err, EINVAL, "'process.cmd' must be a non-empty string");
		goto out;
	}
	json_t *args = json_object_get(proc, "args"), *envs = json_object_get(proc, "envs");
	if (!is_null_or_absent(args) && !json_is_array(args)) {
		r = cr_failx(err, EINVAL, "'process.args' must be an array of strings");
		goto out;
	}
	if (!is_null_or_absent(envs) && !json_is_object(envs)) {
		r = cr_failx(err, EINVAL, "'process.envs' must be an object of strings");
		goto out;
	}
	size_t nargs = json_is_array(args) ? json_array_size(args) : 0;
	size_t nenv = json_is_object(envs) ? json_object_size(envs) : 0;
	if (nargs + 1 > ENG_CMD_ARGS_MAX || nenv > ENG_CMD_ENV_MAX) {
		r = cr_failx(err, EINVAL, "at most %u arguments and %u variables", ENG_CMD_ARGS_MAX - 1,
			     ENG_CMD_ENV_MAX);
		goto out;
	}
	argv = calloc(nargs + 2, sizeof *argv);
	env = calloc(nenv + 1, sizeof *env);
	envbuf = calloc(nenv + 1, sizeof *envbuf);
	if (!argv || !env || !envbuf) {
		r = cr_fail(err, ENOMEM, "command");
		goto out;
	}
	argv[0] = json_string_value(v);
	if (strlen(argv[0]) != json_string_length(v)) {
		r = cr_failx(err, EINVAL, "'process.cmd' holds a NUL byte");
		goto out;
	}
	for (size_t i = 0; i < nargs; i++) {
		json_t *a = json_array_get(args, i);
		if (!json_is_string(a) || strlen(json_string_value(a)) != json_string_length(a)) {
			r = cr_failx(err, EINVAL, "'process.args' must be strings without NUL bytes");
			goto out;
		}
		argv[i + 1] = json_string_value(a);
	}
	const char *k;
	json_t *ev;
	json_object_foreach(envs, k, ev) {
		if (!env_name_ok(k) || !json_is_string(ev) ||
		    strlen(json_string_value(ev)) != json_string_length(ev)) {
			r = cr_failx(err, EINVAL, "'process.envs': names without '=', string values "
				     "without NUL bytes");
			goto out;
		}
		if (asprintf(&envbuf[n_env], "%s=%s", k, json_string_value(ev)) < 0) {
			envbuf[n_env] = NULL;
			r = cr_fail(err, ENOMEM, "command");
			goto out;
		}
		env[n_env] = envbuf[n_env];
		n_env++;
	}
	char cwd[ENG_PATH_MAX] = "";
	json_t *c = json_object_get(proc, "cwd");
	if (!is_null_or_absent(c)) {
		if (!json_is_string(c) || strlen(json_string_value(c)) != json_string_length(c)) {
			r = cr_failx(err, EINVAL, "'process.cwd' must be a string");
			goto out;
		}
		if (json_string_length(c) &&
		    (r = e2b_session_path(json_string_value(c), cwd, sizeof cwd, err)) < 0)
			goto out;
	}
	json_t *t = json_object_get(j, "tag");
	if (json_is_string(t) && tag_n)
		snprintf(tag, tag_n, "%s", json_string_value(t));
	if ((r = eng_cmd_encode(cwd, argv, env, payload, err)) < 0)
		goto out;
	*config = json_pack("{s:s, s:o, s:o, s:s}", "cmd", argv[0], "args",
			    json_is_array(args) ? json_incref(args) : json_array(), "envs",
			    json_is_object(envs) ? json_incref(envs) : json_object(), "cwd",
			    cwd[0] ? cwd : E2B_HOME);
	if (!*config)
		r = cr_fail(err, ENOMEM, "command");
out:
	for (size_t i = 0; envbuf && i < n_env; i++)
		free(envbuf[i]);
	free(envbuf);
	free(env);
	free(argv);
	json_decref(j);
	return r;
}

int e2b_parse_process_selector(const char *msg, size_t len, uint32_t *pid, char *tag,
			       size_t tag_n, int *signal, struct cr_err *err)
{
	*pid = 0;
	if (tag_n)
		tag[0] = '\0';
	json_t *j = parse_msg(msg, len, err);
	if (!j)
		return -EINVAL;
	int r = 0;
	json_t *p = json_object_get(j, "process"), *v;
	if (json_is_object(p) && json_is_object(json_object_get(p, "selector")))
		p = json_object_get(p, "selector"); /* tolerate the oneof's wrapper */
	if (json_is_object(p) && json_is_integer(v = json_object_get(p, "pid")) &&
	    json_integer_value(v) > 0 && json_integer_value(v) <= INT32_MAX)
		*pid = (uint32_t)json_integer_value(v);
	else if (json_is_object(p) && json_is_string(v = json_object_get(p, "tag")) && tag_n)
		snprintf(tag, tag_n, "%s", json_string_value(v));
	else
		r = cr_failx(err, EINVAL, "'process' must select a pid or a tag");
	if (r == 0 && signal) {
		v = json_object_get(j, "signal");
		*signal = 0;
		if (json_is_integer(v))
			*signal = (int)json_integer_value(v);
		else if (json_is_string(v) && !strcmp(json_string_value(v), "SIGNAL_SIGKILL"))
			*signal = 9;
		else if (json_is_string(v) && !strcmp(json_string_value(v), "SIGNAL_SIGTERM"))
			*signal = 15;
		if (*signal != 9 && *signal != 15)
			r = cr_failx(err, EINVAL, "'signal' must be SIGNAL_SIGKILL or SIGNAL_SIGTERM");
	}
	json_decref(j);
	return r;
}

int e2b_process_start_event(struct cr_buf *out, uint32_t pid)
{
	return envelope(out, 0, json_pack("{s:{s:{s:I}}}", "event", "start", "pid",
					  (json_int_t)pid));
}

int e2b_process_data_event(struct cr_buf *out, bool is_stderr, const char *data, size_t len)
{
	size_t bl;
	char *b = cr_base64_encode(data, len, &bl);
	if (!b)
		return -ENOMEM;
	json_t *m = json_pack("{s:{s:{s:s%}}}", "event", "data", is_stderr ? "stderr" : "stdout",
			      b, bl);
	free(b);
	return envelope(out, 0, m);
}

int e2b_process_keepalive_event(struct cr_buf *out)
{
	return envelope(out, 0, json_pack("{s:{s:{}}}", "event", "keepalive"));
}

static const char *signal_text(int sig)
{
	switch (sig) {
	case 1: return "hangup";
	case 2: return "interrupt";
	case 6: return "aborted";
	case 9: return "killed";
	case 11: return "segmentation fault";
	case 13: return "broken pipe";
	case 15: return "terminated";
	default: return NULL;
	}
}

int e2b_process_end_event(struct cr_buf *out, const struct eng_final *f)
{
	char status[64];
	const char *error = NULL;
	int code = -1;
	bool exited = false;
	if (f->status == ENG_F_OK && f->exit_code >= 0) {
		code = f->exit_code;
		exited = true;
		snprintf(status, sizeof status, "exit status %d", code);
	} else if (f->status == ENG_F_OK && f->signal > 0) {
		const char *t = signal_text(f->signal);
		if (t)
			snprintf(status, sizeof status, "signal: %s", t);
		else
			snprintf(status, sizeof status, "signal: %d", f->signal);
	} else {
		snprintf(status, sizeof status, "signal: killed");
		error = f->status == ENG_F_MEMORY_LIMIT ? "the sandbox's memory limit was reached"
		      : f->status == ENG_F_TIMEOUT	 ? "the command ran past its timeout"
							 : "the sandbox ended the command";
	}
	json_t *end = json_pack("{s:i, s:b, s:s}", "exitCode", code, "exited", exited, "status",
				status);
	if (end && error)
		json_object_set_new(end, "error", json_string(error));
	return envelope(out, 0, end ? json_pack("{s:{s:o}}", "event", "end", end) : NULL);
}

int e2b_parse_path(const char *msg, size_t len, const char *key, char *out, size_t n,
		   struct cr_err *err)
{
	json_t *j = parse_msg(msg, len, err);
	if (!j)
		return -EINVAL;
	json_t *v = json_object_get(j, key);
	int r;
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
		r = cr_failx(err, EINVAL, "'%s' must be a string", key);
	else
		r = e2b_session_path(json_string_value(v), out, n, err);
	json_decref(j);
	return r;
}

int e2b_parse_depth(const char *msg, size_t len, unsigned *depth, struct cr_err *err)
{
	json_t *j = parse_msg(msg, len, err);
	if (!j)
		return -EINVAL;
	json_t *v = json_object_get(j, "depth");
	int r = 0;
	*depth = 1;
	if (!is_null_or_absent(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 8)
			r = cr_failx(err, EINVAL, "'depth' must be 1..8");
		else if (json_integer_value(v) > 0)
			*depth = (unsigned)json_integer_value(v);
	}
	json_decref(j);
	return r;
}

json_t *e2b_entry_json(const char *dir, const struct eng_dirent *e)
{
	static const char *const TYPES[] = {"FILE_TYPE_UNSPECIFIED", "FILE_TYPE_FILE",
					    "FILE_TYPE_DIRECTORY", "FILE_TYPE_SYMLINK",
					    "FILE_TYPE_UNSPECIFIED"};
	char path[ENG_PATH_MAX + 300], mt[32];
	snprintf(path, sizeof path, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", e->name);
	rfc3339(e->mtime > 0 ? (uint64_t)e->mtime * 1000 : 0, mt, sizeof mt);
	/* mode and permissions are not in the engine's listing: left out rather than made up */
	return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s}", "name", e->name, "type",
			 TYPES[e->type < 5 ? e->type : 0], "path", path, "size",
			 (json_int_t)e->size, "owner", "user", "group", "user", "modifiedTime", mt);
}

