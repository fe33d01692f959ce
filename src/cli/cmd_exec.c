/* cli/cmd_exec.c -- `corral exec`: Python through the engine, in a session born warm.
 *
 * The CLI connects to the local engine daemon (starting it if needed) while it still has the
 * caller's privileges, then drops them (as root: to nobody, no_new_privs) before it reads a
 * single event: everything a session prints is parsed by an unprivileged process.  Writing
 * into --output is done by the engine (collect), which resolves paths with openat2.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/engine_daemon.h"
#include "core/json.h"
#include "core/parse.h"
#include "core/text.h"
#include "engine/engine.h"
#include "sandbox/sandbox.h"

static const char USAGE[] =
	"usage: corral exec [-c CODE | FILE | -] [OPTIONS]\n"
	"\n"
	"Runs Python in an isolated session that is born warm (numpy, pandas, matplotlib already\n"
	"imported).  Without --session the session is used once and destroyed.\n"
	"\n"
	"  -c CODE               the code to run (else FILE, or - for stdin)\n"
	"  --session NAME        keep a named session across invocations (created on first use)\n"
	"  --end-session         destroy the named session after this run\n"
	"  --stateless           each cell in a fresh fork of the warm interpreter\n"
	"  --context NAME        run in another independent namespace of the session\n"
	"  --data FILE           make FILE readable as /data/<basename> (repeatable)\n"
	"  --output DIR          copy figures and files written to /output into DIR\n"
	"  --json                print every event as one JSON object per line\n"
	"  --svg                 also render figures as SVG\n"
	"  --allow-imports LIST  refuse imports outside this comma-separated list\n"
	"  --memory SIZE --pids N --cpus F   session limits (defaults: 512M, 64, none)\n"
	"  --timeout DURATION    per-cell timeout (default 30s): KeyboardInterrupt, then kill\n"
	"\n"
	"Exit status: 0 ok, 1 the cell raised, 124 timeout, 137 memory limit or killed,\n"
	"125 bad input or engine failure.  Sessions live in the engine daemon (`corral engine`),\n"
	"reachable only by its owner (docs/ENGINE.md).\n";

struct render {
	bool json;
	const char *output_dir;
	struct eng_client *cl;
	uint64_t session;
	int figures;
	bool error_seen;
};

static void print_json_line(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	if (s) {
		fputs(s, stdout);
		fputc('\n', stdout);
		free(s);
	}
	json_decref(j);
}

/* Saves a PNG from a display event into the session's /output, for collect to bring home. */
static void save_figure(struct render *r, const char *b64, const char *id)
{
	size_t n;
	void *png = cr_base64_decode(b64, strlen(b64), &n);
	if (!png)
		return;
	char path[128];
	snprintf(path, sizeof path, "/output/%s.png", id && *id ? id : "figure");
	struct cr_err err = {0};
	if (eng_client_write_file(r->cl, r->session, path, png, n, &err) < 0)
		fprintf(stderr, "corral: could not save %s: %s\n", path, err.msg);
	free(png);
}

static int on_event(void *ctx, uint32_t type, const char *data, size_t len)
{
	struct render *r = ctx;
	if (type == ENG_EV_KEEPALIVE)
		return 0;
	if (type == ENG_EV_STDOUT || type == ENG_EV_STDERR) {
		if (r->json) {
			json_t *o = json_pack("{s:s}", "type", type == ENG_EV_STDOUT ? "stdout" : "stderr");
			cr_json_set_bytes(o, "text", "encoding", data, len);
			print_json_line(o);
		} else {
			fwrite(data, 1, len, type == ENG_EV_STDOUT ? stdout : stderr);
			fflush(type == ENG_EV_STDOUT ? stdout : stderr);
		}
		return 0;
	}
	struct cr_err err = {0};
	json_t *ev = cr_json_parse(data, len, ENG_MAX_RUNNER_FRAME, &err);
	if (!ev || !json_is_object(ev)) {
		fprintf(stderr, "corral: malformed event from the session: %s\n", err.msg);
		json_decref(ev);
		return 0;
	}
	const char *t = json_string_value(json_object_get(ev, "type"));
	json_t *bundle = json_object_get(ev, "data");
	const char *png = json_string_value(json_object_get(bundle, "image/png"));
	const char *id = json_string_value(json_object_get(ev, "id"));
	if (png && r->output_dir)
		save_figure(r, png, id);
	if (t && !strcmp(t, "error"))
		r->error_seen = true;
	if (r->json) {
		print_json_line(ev);
		return 0;
	}
	if (t && !strcmp(t, "error")) {
		const char *tb = json_string_value(json_object_get(ev, "traceback"));
		if (tb && *tb)
			fprintf(stderr, "%s%s", tb, tb[strlen(tb) - 1] == '\n' ? "" : "\n");
		else
			fprintf(stderr, "%s: %s\n", json_string_value(json_object_get(ev, "name")),
				json_string_value(json_object_get(ev, "value")));
	} else if (t && (!strcmp(t, "result") || !strcmp(t, "display"))) {
		if (png) {
			r->figures++;
			printf("[figure %s%s%s]\n", id ? id : "", r->output_dir ? " saved to " : "",
			       r->output_dir ? r->output_dir : "");
		} else {
			const char *txt = json_string_value(json_object_get(bundle, "text/plain"));
			if (txt)
				printf("%s\n", txt);
		}
	}
	fflush(stdout);
	json_decref(ev);
	return 0;
}

static int read_code(const char *file, char **out, struct cr_err *err)
{
	FILE *f = strcmp(file, "-") ? fopen(file, "rb") : stdin;
	if (!f)
		return cr_fail(err, errno, "%s", file);
	struct cr_buf b;
	cr_buf_init(&b, ENG_MAX_CODE);
	char chunk[65536];
	size_t n;
	int r = 0;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		if ((r = cr_buf_append(&b, chunk, n)) < 0)
			break;
	if (f != stdin)
		fclose(f);
	if (r < 0) {
		cr_buf_free(&b);
		return cr_failx(err, E2BIG, "%s is larger than %u bytes", file, ENG_MAX_CODE);
	}
	*out = cr_buf_steal(&b, NULL);
	return *out ? 0 : cr_fail(err, ENOMEM, "reading %s", file);
}

static int drop_privileges(void)
{
	if (geteuid() != 0)
		return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
	    setresuid(65534, 65534, 65534) < 0)
		return -1;
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

static int exit_code_for(const struct eng_final *f)
{
	switch (f->status) {
	case ENG_F_OK: return 0;
	case ENG_F_ERROR: return 1;
	case ENG_F_TIMEOUT: return 124;
	default: return 137;
	}
}

int cmd_exec(int argc, char **argv)
{
	enum { O_SESSION = 300, O_END, O_STATELESS, O_CONTEXT, O_DATA, O_OUTPUT, O_JSON, O_SVG,
	       O_ALLOW, O_MEMORY, O_PIDS, O_CPUS, O_TIMEOUT, O_HELP };
	static const struct option opts[] = {
		{"session", required_argument, NULL, O_SESSION}, {"end-session", no_argument, NULL, O_END},
		{"stateless", no_argument, NULL, O_STATELESS}, {"context", required_argument, NULL, O_CONTEXT},
		{"data", required_argument, NULL, O_DATA}, {"output", required_argument, NULL, O_OUTPUT},
		{"json", no_argument, NULL, O_JSON}, {"svg", no_argument, NULL, O_SVG},
		{"allow-imports", required_argument, NULL, O_ALLOW},
		{"memory", required_argument, NULL, O_MEMORY}, {"pids", required_argument, NULL, O_PIDS},
		{"cpus", required_argument, NULL, O_CPUS}, {"timeout", required_argument, NULL, O_TIMEOUT},
		{"help", no_argument, NULL, O_HELP}, {0},
	};
	struct eng_req_create req;
	memset(&req, 0, sizeof req);
	struct eng_mount mounts[SBX_MAX_MOUNTS];
	const char *code_arg = NULL, *session = NULL, *context = "default", *output = NULL;
	bool end_session = false, json = false, svg = false;
	uint32_t timeout_ms = 0;
	struct cr_err err = {0};
	uint64_t v;
	double d;
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+c:", opts, NULL)) != -1) {
		switch (c) {
		case 'c': code_arg = optarg; break;
		case O_SESSION:
			if (!*optarg || strlen(optarg) >= ENG_NAME_MAX || strchr(optarg, '/'))
				return cli_usage_error("--session: a name of 1-63 characters without '/'");
			session = optarg;
			break;
		case O_END: end_session = true; break;
		case O_STATELESS: req.mode = ENG_STATELESS; break;
		case O_CONTEXT:
			if (!*optarg || strlen(optarg) >= ENG_NAME_MAX)
				return cli_usage_error("--context: a name of 1-63 characters");
			context = optarg;
			break;
		case O_DATA: {
			if (req.n_mounts >= SBX_MAX_MOUNTS)
				return cli_usage_error("too many --data files");
			char real[PATH_MAX];
			struct stat st;
			if (!realpath(optarg, real) || stat(real, &st) < 0 || !S_ISREG(st.st_mode))
				return cli_usage_error("--data %s: not a readable regular file", optarg);
			const char *base = strrchr(real, '/') + 1;
			struct eng_mount *m = &mounts[req.n_mounts++];
			memset(m, 0, sizeof *m);
			snprintf(m->host, sizeof m->host, "%s", real);
			snprintf(m->dest, sizeof m->dest, "/data/%s", base);
			break;
		}
		case O_OUTPUT: {
			struct stat st;
			if (stat(optarg, &st) < 0 || !S_ISDIR(st.st_mode))
				return cli_usage_error("--output %s: not a directory", optarg);
			output = optarg;
			req.want_output = 1;
			break;
		}
		case O_JSON: json = true; break;
		case O_SVG: svg = true; break;
		case O_ALLOW:
			if (strlen(optarg) >= sizeof req.allow_imports)
				return cli_usage_error("--allow-imports: list too long");
			snprintf(req.allow_imports, sizeof req.allow_imports, "%s", optarg);
			break;
		case O_MEMORY:
			if (cr_parse_size(optarg, &v, &err) < 0)
				return cli_usage_error("--memory: %s", err.msg);
			req.limits.memory_bytes = v;
			break;
		case O_PIDS:
			if (cr_parse_uint(optarg, 8, 1u << 20, &v, &err) < 0)
				return cli_usage_error("--pids: %s", err.msg);
			req.limits.pids = (uint32_t)v;
			break;
		case O_CPUS:
			if (cr_parse_double(optarg, 0.01, 1024, &d, &err) < 0)
				return cli_usage_error("--cpus: %s", err.msg);
			req.limits.cpus_milli = (uint32_t)(d * 1000);
			break;
		case O_TIMEOUT:
			if (cr_parse_duration(optarg, &v, &err) < 0 || v == 0 || v > 86400000)
				return cli_usage_error("--timeout: %s", err.code ? err.msg : "out of range");
			timeout_ms = (uint32_t)v;
			break;
		case O_HELP: fputs(USAGE, stdout); return 0;
		default:
			return cli_usage_error("exec: unknown or incomplete option '%s' (see corral exec --help)",
					       argv[optind - 1]);
		}
	}
	char *code = NULL;
	if (code_arg) {
		if (optind < argc)
			return cli_usage_error("exec: give either -c CODE or a FILE, not both");
		code = strdup(code_arg);
	} else if (optind < argc) {
		if (optind + 1 < argc)
			return cli_usage_error("exec: one FILE at a time");
		if (read_code(argv[optind], &code, &err) < 0)
			return cli_usage_error("%s", err.msg);
	} else if (!end_session) {
		return cli_usage_error("exec: no code (use -c CODE, a FILE, or - for stdin)");
	}
	if (code && !cr_utf8_valid(code, strlen(code))) {
		free(code);
		return cli_usage_error("exec: the code is not valid UTF-8");
	}

	struct eng_client *cl = engine_connect(true, &err);
	if (!cl) {
		free(code);
		return cli_usage_error("%s", err.msg);
	}
	/* figures and collect go over a second connection (the first is busy with the cell);
	 * both are opened while we still hold the caller's identity, which the engine trusts */
	struct eng_client *side = output ? engine_connect(false, &err) : NULL;
	if (output && !side) {
		free(code);
		eng_client_close(cl);
		return cli_usage_error("%s", err.msg);
	}
	if (drop_privileges() < 0) {
		free(code);
		eng_client_close(cl);
		eng_client_close(side);
		return cli_usage_error("cannot drop privileges: %s", strerror(errno));
	}

	int rc = 125;
	struct eng_rsp_created created;
	bool have = false;
	if (session && eng_client_lookup(cl, session, &created, &err) == 0) {
		have = true;
		if (req.n_mounts)
			fprintf(stderr, "corral: note: session '%s' exists; --data applies to new sessions "
					"only\n", session);
	} else if (session && err.code != ENOENT) {
		fprintf(stderr, "corral: %s\n", err.msg);
		goto out;
	}
	if (!have && end_session && !code) {
		fprintf(stderr, "corral: no session named '%s'\n", session ? session : "");
		goto out;
	}
	if (!have) {
		if (session)
			snprintf(req.name, sizeof req.name, "%s", session);
		else
			req.flags |= ENG_CREATE_EPHEMERAL;
		if (eng_client_create(cl, &req, req.n_mounts ? mounts : NULL, &created, &err) < 0) {
			fprintf(stderr, "corral: cannot create a session: %s\n", err.msg);
			goto out;
		}
	}
	if (code) {
		if (strcmp(context, "default"))
			eng_client_context(cl, created.session, context, true, &err); /* exists: fine */
		struct render r = {.json = json, .output_dir = output, .cl = side,
				   .session = created.session};
		struct eng_final fin;
		if (eng_client_execute(cl, created.session, code, context, timeout_ms,
				       svg ? ENG_EXEC_SVG : 0, on_event, &r, &fin, &err) < 0) {
			fprintf(stderr, "corral: %s\n", err.msg);
			goto out;
		}
		if (json) {
			json_t *f = json_pack("{s:s, s:s, s:b, s:I, s:f, s:f, s:I}", "type", "final",
					      "status", eng_final_status_name(fin.status), "session_alive",
					      fin.session_alive != 0, "cell", (json_int_t)fin.cell,
					      "duration_ms", (double)fin.duration_us / 1000, "cpu_ms",
					      (double)fin.cpu_us / 1000, "peak_memory_bytes",
					      (json_int_t)fin.peak_memory_bytes);
			json_t *hits = json_array();
			if (fin.limits_hit & ENG_HIT_MEMORY)
				json_array_append_new(hits, json_string("memory"));
			if (fin.limits_hit & ENG_HIT_PIDS)
				json_array_append_new(hits, json_string("pids"));
			if (fin.limits_hit & ENG_HIT_OUTPUT)
				json_array_append_new(hits, json_string("output"));
			json_object_set_new(f, "limits_hit", hits);
			json_object_set_new(f, "output_dropped_bytes", json_integer((json_int_t)fin.dropped_bytes));
			if (fin.status == ENG_F_KILLED) {
				json_object_set_new(f, "exit_code", fin.exit_code >= 0 ? json_integer(fin.exit_code) : json_null());
				json_object_set_new(f, "signal", fin.signal ? json_integer(fin.signal) : json_null());
			}
			print_json_line(f);
		} else if (fin.status != ENG_F_OK && fin.status != ENG_F_ERROR) {
			fprintf(stderr, "corral: cell %s%s\n", eng_final_status_name(fin.status),
				fin.session_alive ? "" : "; the session is gone");
		}
		if (output && side) {
			struct eng_dirent *ents = NULL;
			size_t n = 0;
			if (eng_client_collect(side, created.session, output, &ents, &n, &err) < 0)
				fprintf(stderr, "corral: collecting /output: %s\n", err.msg);
			for (size_t i = 0; i < n; i++)
				if (ents[i].reason[0])
					fprintf(stderr, "corral: /output/%s not copied: %s\n", ents[i].name,
						ents[i].reason);
			free(ents);
		}
		rc = exit_code_for(&fin);
	} else {
		rc = 0;
	}
	if (session && end_session && eng_client_destroy(cl, created.session, &err) < 0) {
		fprintf(stderr, "corral: %s\n", err.msg);
		rc = 125;
	}
out:
	fflush(stdout);
	free(code);
	eng_client_close(side);
	eng_client_close(cl); /* an ephemeral session dies with this connection */
	return rc;
}
