/* agent/agent.c -- the analysis: profile the data in the sandbox, then either the bounded model
 * loop or the offline analyst, then render the report.
 *
 * The model loop: the model calls run_python(code) (or, for models without tool calling, puts
 * ```python blocks in its text); each call runs in the sandbox and its capped observation goes
 * back.  A reply without code is the report body.  Budgets (steps, tokens, money) are checked
 * before every model call, and the last call is kept for the report: max_steps counts every
 * model call, and another step is taken only when the token and money budgets have room for
 * it and for the report call after it (each estimated as large as the last call).  When a
 * budget runs out the model is asked once, without tools, for the report; if even that is not
 * affordable a report is assembled from what was captured.  Either way the result is marked
 * partial.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "agent/agent_internal.h"
#include "core/text.h"

#define PROFILE_TIMEOUT_MS 120000
#define OFFLINE_TIMEOUT_MS 600000
#define REPORT_PATH "/home/user/report.md"
#define MARKDOWN_MAX (1u << 20)

void agent_config_init(struct agent_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->max_steps = 20;
	cfg->cell_timeout_ms = 120000;
	cfg->trace_fd = -1;
}

void agent_run_free(struct agent_run *run)
{
	cr_buf_free(&run->html);
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

/* "CORRAL_PARAMS = {...}\n" followed by the given programs: one cell. */
static char *make_cell(const struct agent_config *cfg, const char *const *parts, size_t nparts,
		       json_t *extra)
{
	json_t *files = json_array();
	for (size_t i = 0; i < cfg->n_files; i++)
		json_array_append_new(files, json_string(base_name(cfg->files[i])));
	json_t *params = json_pack("{s:o, s:s, s:s}", "files", files, "question",
				   cfg->question ? cfg->question : "", "report_path", REPORT_PATH);
	if (extra)
		json_object_update(params, extra);
	char *pj = json_dumps(params, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(params);
	struct cr_buf b;
	cr_buf_init(&b, 4u << 20);
	/* json.loads of a JSON literal: no Python-literal pitfalls (true/false/null) */
	cr_buf_puts(&b, "import json as _corral_json\nCORRAL_PARAMS = _corral_json.loads(");
	json_t *lit = json_string(pj ? pj : "{}");
	char *litj = json_dumps(lit, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
	cr_buf_puts(&b, litj ? litj : "\"{}\"");
	cr_buf_puts(&b, ")\n");
	free(litj);
	json_decref(lit);
	free(pj);
	for (size_t i = 0; i < nparts; i++) {
		cr_buf_puts(&b, parts[i]);
		cr_buf_puts(&b, "\n");
	}
	return cr_buf_steal(&b, NULL);
}

/* Runs one cell, timing it into sandbox_s, and writes an execution record to the trace -- or
 * hands it to the caller (rec != NULL), who adds to it and writes it with trace_write. */
static int execute_rec(struct progress *p, struct bk *b, const char *code, uint32_t timeout_ms,
		       const char *purpose, struct bk_result *r, json_t **rec, struct cr_err *err)
{
	double t0 = agent_now();
	int rc = bk_execute(b, code, timeout_ms, r, err);
	double dt = agent_now() - t0;
	p->run->sandbox_s += dt;
	p->run->executions++;
	if (rc == 0 && r->status != BK_OK)
		p->run->exec_errors++;
	json_t *t = json_pack("{s:s, s:s, s:s, s:f, s:I, s:I, s:I}", "kind", "execution", "purpose",
			      purpose, "status", rc < 0 ? "engine_error" : bk_status_name(r->status),
			      "duration_s", dt, "stdout_bytes", (json_int_t)r->out.len,
			      "stderr_bytes", (json_int_t)r->err.len, "events",
			      (json_int_t)json_array_size(r->events));
	/* the cell's own run time as the session measured it: duration_s minus this is what
	 * the sandbox added (transport, scheduling, capture) */
	json_object_set_new(t, "cell_s", json_real(rc < 0 ? 0.0 : (double)r->duration_us / 1e6));
	json_object_set_new(t, "peak_memory_bytes", json_integer((json_int_t)r->peak_memory_bytes));
	if (p->cfg->provider != AGENT_OFFLINE)
		json_object_set_new(t, "step", json_integer(p->run->steps));
	json_object_set_new(t, "code", json_string(code));
	if (rc < 0)
		json_object_set_new(t, "error", json_string(err->msg));
	if (rec)
		*rec = t;
	else
		trace_write(p, t);
	return rc;
}

static int execute(struct progress *p, struct bk *b, const char *code, uint32_t timeout_ms,
		   const char *purpose, struct bk_result *r, struct cr_err *err)
{
	return execute_rec(p, b, code, timeout_ms, purpose, r, NULL, err);
}

/* Cuts an observation to AGENT_OBS_MAX bytes (on a character boundary) with a note. */
static void cap_observation(struct cr_buf *obs)
{
	static const char note[] = "\n[corral: this result was cut to %u bytes; print less]\n";
	if (obs->len <= AGENT_OBS_MAX)
		return;
	size_t keep = cr_utf8_clip(obs->data, AGENT_OBS_MAX - sizeof note - 8);
	obs->len = keep;
	obs->data[keep] = '\0';
	cr_buf_printf(obs, note, AGENT_OBS_MAX);
}

static int profile_data(struct progress *p, struct bk *b, struct cr_buf *profile,
			struct cr_err *err)
{
	const char *parts[] = {agent_py_dataset, agent_py_profile};
	char *code = make_cell(p->cfg, parts, sizeof parts / sizeof parts[0], NULL);
	if (!code)
		return cr_fail(err, ENOMEM, "profile cell");
	progress_say(p, "profiling %zu data file%s in the sandbox", p->cfg->n_files,
		     p->cfg->n_files == 1 ? "" : "s");
	struct bk_result r;
	bk_result_init(&r);
	json_t *rec = NULL;
	int rc = execute_rec(p, b, code, PROFILE_TIMEOUT_MS, "profile", &r, &rec, err);
	free(code);
	if (rc == 0 && r.status != BK_OK) {
		struct cr_buf obs;
		cr_buf_init(&obs, 1 << 16);
		struct capture c;
		capture_init(&c);
		capture_observe(&c, &r, &obs);
		rc = cr_failx(err, EIO, "profiling the data failed: %.200s", obs.data ? obs.data : "");
		capture_free(&c);
		cr_buf_free(&obs);
	}
	if (rc == 0) {
		size_t cap = AGENT_PROFILE_MAX * (p->cfg->n_files ? p->cfg->n_files : 1);
		cr_buf_init(profile, cap + 128);
		cr_buf_append_trunc(profile, r.out.data ? r.out.data : "", r.out.len);
		if (r.out.len > cap || r.out.dropped)
			cr_buf_printf(profile, "\n[profile cut to %zu bytes]\n", cap);
		json_object_set_new(rec, "observation_bytes", json_integer((json_int_t)profile->len));
	}
	trace_write(p, rec);
	bk_result_free(&r);
	return rc;
}

/* ---- the offline analyst ---------------------------------------------------------------- */

static int run_offline(struct progress *p, struct bk *b, struct capture *cap, struct cr_buf *md,
		       struct cr_err *err)
{
	const char *parts[] = {agent_py_dataset, agent_py_trends, agent_py_charts, agent_py_offline};
	char *code = make_cell(p->cfg, parts, sizeof parts / sizeof parts[0], NULL);
	if (!code)
		return cr_fail(err, ENOMEM, "offline cell");
	progress_say(p, "running the offline analysis (no model configured)");
	struct bk_result r;
	bk_result_init(&r);
	int rc = execute(p, b, code, OFFLINE_TIMEOUT_MS, "offline_analysis", &r, err);
	free(code);
	if (rc == 0) {
		struct cr_buf obs;
		cr_buf_init(&obs, 1 << 20);
		capture_observe(cap, &r, &obs);
		if (r.status != BK_OK)
			rc = cr_failx(err, EIO, "the offline analysis failed: %.300s",
				      obs.data ? obs.data : "");
		cr_buf_free(&obs);
	}
	bk_result_free(&r);
	if (rc < 0)
		return rc;
	cr_buf_init(md, MARKDOWN_MAX);
	rc = bk_download_file(b, REPORT_PATH, md, err);
	if (rc < 0)
		return cr_wrap(err, "reading the analyst's report");
	p->run->figures = (unsigned)cap->n_figs;
	p->run->tables = (unsigned)cap->n_tabs;
	return 0;
}

/* ---- the model loop ------------------------------------------------------------------------ */

static void add_usage(struct agent_run *run, const struct llm_reply *r)
{
	if (r->usage.known) {
		run->tokens_in += r->usage.input;
		run->tokens_out += r->usage.output;
		run->tokens_cached += r->usage.cache_read;
	}
	if (run->cost_usd >= 0) {
		if (r->cost_known)
			run->cost_usd += r->cost_usd;
		else
			run->cost_usd = -1; /* one unknown makes the total unknown */
	}
}

/* Which budget has no room for `calls` more model calls of the last call's size, or NULL. */
static const char *budget_exhausted(const struct agent_config *cfg, const struct agent_run *run,
				    unsigned calls, uint64_t last_tokens, double last_cost)
{
	if (cfg->max_tokens &&
	    run->tokens_in + run->tokens_out + calls * last_tokens >= cfg->max_tokens)
		return "the token budget";
	if (cfg->max_cost_usd > 0 && run->cost_usd >= 0 &&
	    run->cost_usd + calls * last_cost >= cfg->max_cost_usd)
		return "the cost budget";
	return NULL;
}

static char *task_message(const struct agent_config *cfg, const struct cr_buf *profile)
{
	struct cr_buf b;
	cr_buf_init(&b, 64u << 10);
	if (cfg->question && *cfg->question)
		cr_buf_printf(&b, "Question: %s\n\n", cfg->question);
	else
		cr_buf_puts(&b, "Task: analyse these data files and report the most useful findings.\n\n");
	cr_buf_puts(&b, "Data files (read-only):\n");
	for (size_t i = 0; i < cfg->n_files; i++)
		cr_buf_printf(&b, "- /data/%s\n", base_name(cfg->files[i]));
	if (cfg->max_steps > 1)
		cr_buf_printf(&b, "\nYou may call run_python at most %u times. Then write the report.\n",
			      cfg->max_steps - 1);
	else
		cr_buf_puts(&b, "\nNo code can run in this analysis: write the report from the profile "
				"below.\n");
	cr_buf_puts(&b, "\nProfile of the data, computed in the sandbox (you have not seen the data "
			"itself):\n\n");
	cr_buf_append_trunc(&b, profile->data ? profile->data : "", profile->len);
	return cr_buf_steal(&b, NULL);
}

/* Runs code for the model and returns its capped observation (owned by the caller). */
static char *run_for_model(struct progress *p, struct bk *b, struct capture *cap, const char *code,
			   struct cr_err *err)
{
	struct cr_buf obs;
	cr_buf_init(&obs, 1u << 20);
	struct bk_result r;
	bk_result_init(&r);
	progress_say(p, "step %u/%u: running code (%zu bytes)", p->run->steps, p->cfg->max_steps,
		     strlen(code));
	json_t *rec = NULL;
	if (execute_rec(p, b, code, p->cfg->cell_timeout_ms, "model_code", &r, &rec, err) < 0)
		cr_buf_printf(&obs, "status: error\nthe sandbox could not run the code: %s\n", err->msg);
	else
		capture_observe(cap, &r, &obs);
	bk_result_free(&r);
	size_t full = obs.len;
	cap_observation(&obs);
	p->run->bytes_to_model += obs.len;
	if (rec) { /* what the model gets back: the capped observation */
		json_object_set_new(rec, "observation_bytes", json_integer((json_int_t)obs.len));
		json_object_set_new(rec, "observation_capped", json_boolean(full > obs.len));
		trace_write(p, rec);
	}
	return cr_buf_steal(&obs, NULL);
}

static int complete(struct progress *p, struct llm_client *cl, struct llm_conv *conv, bool tools,
		    struct llm_reply *r, struct cr_err *err)
{
	double t0 = agent_now();
	int rc = llm_complete(cl, conv, tools ? &llm_tool_run_python : NULL, tools ? 1 : 0, r, err);
	p->run->model_s += agent_now() - t0;
	if (rc == 0)
		add_usage(p->run, r);
	json_t *t = llm_reply_to_trace_json(r);
	if (t) {
		json_object_set_new(t, "kind", json_string("model_call"));
		json_object_set_new(t, "step", json_integer(p->run->steps));
		if (rc < 0)
			json_object_set_new(t, "error", json_string(err->msg));
		trace_write(p, t);
	}
	return rc;
}

/* A body for when the model could not write one: what was captured, honestly labelled. */
static void fallback_body(const struct capture *cap, const char *why, struct cr_buf *md)
{
	cr_buf_init(md, MARKDOWN_MAX);
	cr_buf_printf(md, "# Partial analysis\n\n## What happened\n\nThe analysis stopped before the "
			  "model wrote its report (%s). The figures and tables it produced are shown "
			  "below without commentary.\n\n## Captured results\n\n", why);
	for (size_t i = 0; i < cap->n_figs; i++)
		cr_buf_printf(md, "![Figure %s](figure:%s)\n\n", cap->figs[i].id, cap->figs[i].id);
	for (size_t i = 0; i < cap->n_tabs; i++)
		cr_buf_printf(md, "![Table %s](table:%s)\n\n", cap->tabs[i].id, cap->tabs[i].id);
}

static int run_model(struct progress *p, struct bk *b, struct capture *cap,
		     const struct cr_buf *profile, struct cr_buf *md, struct cr_err *err)
{
	const struct agent_config *cfg = p->cfg;
	struct agent_run *run = p->run;
	struct llm_client *cl = llm_client_new(&cfg->llm, err);
	if (!cl)
		return -(err->code ? err->code : EINVAL);
	struct llm_conv *conv = llm_conv_new();
	char *task = task_message(cfg, profile);
	int rc = 0;
	if (!conv || !task || llm_conv_add_system(conv, agent_system_prompt(cfg->stateless), err) < 0 ||
	    llm_conv_add_user(conv, task, err) < 0)
		rc = cr_fail(err, ENOMEM, "conversation");
	run->bytes_to_model += profile->len;
	free(task);
	bool done = false;
	const char *stop = NULL;
	char model_error[256] = "";
	uint64_t last_tokens = 0; /* the last call's size: the estimate of the next one */
	double last_cost = 0;
	while (rc == 0 && !done) {
		if (run->steps + 1 >= cfg->max_steps) { /* the last one is for the report */
			stop = "the step budget";
			break;
		}
		if ((stop = budget_exhausted(cfg, run, 2, last_tokens, last_cost)))
			break;
		if (cfg->cancel && *cfg->cancel) {
			stop = "an interrupt";
			break;
		}
		run->steps++;
		progress_say(p, "step %u/%u: asking the model", run->steps, cfg->max_steps);
		struct llm_reply r;
		int c = complete(p, cl, conv, true, &r, err);
		if (c < 0) {
			llm_reply_free(&r);
			if (run->steps == 1) { /* nothing done yet: a clear error beats an empty report */
				rc = c;
				break;
			}
			snprintf(model_error, sizeof model_error, "the model call failed: %s", err->msg);
			stop = model_error;
			break;
		}
		if (r.usage.known)
			last_tokens = r.usage.input + r.usage.output;
		if (r.cost_known)
			last_cost = r.cost_usd;
		llm_conv_add_reply(conv, &r, err);
		if (r.n_calls > 0) {
			for (size_t i = 0; i < r.n_calls; i++) {
				const struct llm_reply_call *call = &r.calls[i];
				const char *code = json_string_value(json_object_get(call->arguments, "code"));
				char *obs = NULL;
				if (!call->arguments)
					llm_conv_add_tool_result(conv, call->id, call->arguments_error, true, err);
				else if (strcmp(call->name, "run_python") || !code)
					llm_conv_add_tool_result(conv, call->id,
								 "error: call run_python with a string "
								 "argument \"code\"", true, err);
				else if ((obs = run_for_model(p, b, cap, code, err)))
					llm_conv_add_tool_result(conv, call->id, obs, false, err);
				free(obs);
			}
		} else {
			struct llm_code_blocks blocks;
			llm_extract_code(r.text ? r.text : "", r.text ? strlen(r.text) : 0, &blocks, err);
			if (blocks.n > 0) {
				/* a model without tool calling: run its fenced code, reply as the user */
				struct cr_buf all;
				cr_buf_init(&all, 1u << 20);
				for (size_t i = 0; i < blocks.n; i++) {
					cr_buf_append_trunc(&all, blocks.v[i].code, blocks.v[i].len);
					cr_buf_puts(&all, "\n");
				}
				char *obs = run_for_model(p, b, cap, all.data ? all.data : "", err);
				char msg[AGENT_OBS_MAX + 256];
				snprintf(msg, sizeof msg, "Output of your code:\n%s\nContinue, or reply with "
							  "the report when you are done.", obs ? obs : "");
				llm_conv_add_user(conv, msg, err);
				free(obs);
				cr_buf_free(&all);
			} else if (r.text && *r.text) {
				cr_buf_init(md, MARKDOWN_MAX);
				cr_buf_append_trunc(md, r.text, strlen(r.text));
				done = true;
				if (r.finish == LLM_FINISH_LENGTH) {
					run->partial = true;
					snprintf(run->partial_reason, sizeof run->partial_reason,
						 "the model's reply hit its output token limit");
				}
			} else {
				llm_conv_add_user(conv, "Your reply was empty. Run code, or write the "
							"report in Markdown.", err);
			}
			llm_code_blocks_free(&blocks);
		}
		llm_reply_free(&r);
	}
	if (rc == 0 && !done) {
		run->partial = true;
		snprintf(run->partial_reason, sizeof run->partial_reason, "%s ran out", stop ? stop : "a budget");
		if (stop == model_error)
			snprintf(run->partial_reason, sizeof run->partial_reason, "%.150s", model_error);
		/* One last call without tools (the step kept for it), if money and tokens allow. */
		bool affordable = !budget_exhausted(cfg, run, 1, last_tokens, last_cost) &&
				  stop != model_error && !(cfg->cancel && *cfg->cancel);
		if (affordable) {
			bool first = run->steps == 0;
			run->steps++;
			progress_say(p, "step %u/%u: %s: asking the model for the report now", run->steps,
				     cfg->max_steps, run->partial_reason);
			if (!first)
				llm_conv_add_user(conv, "Your budget is spent: no more code can run. Write "
							"the final report now in Markdown from the results "
							"above, referring only to figures and tables that "
							"were captured.", err);
			struct llm_reply r;
			struct cr_err e2 = {0};
			int c = complete(p, cl, conv, false, &r, &e2);
			if (c == 0 && r.text && *r.text && r.n_calls == 0) {
				cr_buf_init(md, MARKDOWN_MAX);
				cr_buf_append_trunc(md, r.text, strlen(r.text));
				done = true;
			} else if (c < 0 && first) { /* nothing done yet: a clear error, as above */
				*err = e2;
				rc = c;
			}
			llm_reply_free(&r);
		}
		if (!done && rc == 0)
			fallback_body(cap, run->partial_reason, md);
	}
	llm_conv_free(conv);
	llm_client_free(cl);
	run->figures = (unsigned)cap->n_figs;
	run->tables = (unsigned)cap->n_tabs;
	return rc;
}

/* ---- the report ----------------------------------------------------------------------------- */

static int render(struct progress *p, const struct capture *cap, const struct cr_buf *md,
		  struct cr_err *err)
{
	const struct agent_config *cfg = p->cfg;
	struct agent_run *run = p->run;
	struct rpt_figure *figs = calloc(cap->n_figs + 1, sizeof *figs);
	struct rpt_table *tabs = calloc(cap->n_tabs + 1, sizeof *tabs);
	struct rpt_datafile files[AGENT_MAX_FILES];
	if (!figs || !tabs) {
		free(figs);
		free(tabs);
		return cr_fail(err, ENOMEM, "report");
	}
	for (size_t i = 0; i < cap->n_figs; i++) {
		snprintf(figs[i].id, sizeof figs[i].id, "%s", cap->figs[i].id);
		figs[i].data = cap->figs[i].png;
		figs[i].len = cap->figs[i].len;
		figs[i].mime = "image/png";
		figs[i].alt = cap->figs[i].id;
	}
	for (size_t i = 0; i < cap->n_tabs; i++) {
		snprintf(tabs[i].id, sizeof tabs[i].id, "%s", cap->tabs[i].id);
		tabs[i].data = cap->tabs[i].data;
	}
	for (size_t i = 0; i < cfg->n_files && i < AGENT_MAX_FILES; i++) {
		struct stat st;
		files[i].name = base_name(cfg->files[i]);
		if (cfg->file_sizes)
			files[i].size = cfg->file_sizes[i];
		else
			files[i].size = stat(cfg->files[i], &st) == 0 ? (uint64_t)st.st_size : 0;
	}
	char title[200];
	if (cfg->title)
		snprintf(title, sizeof title, "%s", cfg->title);
	else if (cfg->n_files == 1)
		snprintf(title, sizeof title, "Analysis of %s", base_name(cfg->files[0]));
	else
		snprintf(title, sizeof title, "Analysis of %zu data files", cfg->n_files);
	run->wall_s = agent_now() - p->t0;
	struct rpt_input in = {
		.title = title,
		.question = cfg->question && *cfg->question ? cfg->question : NULL,
		.markdown = md->data ? md->data : "",
		.markdown_len = md->len,
		.figures = figs,
		.n_figures = cap->n_figs,
		.tables = tabs,
		.n_tables = cap->n_tabs,
		.brand = cfg->brand,
		.partial = run->partial,
		.partial_reason = run->partial ? run->partial_reason : NULL,
	};
	in.meta.files = files;
	in.meta.n_files = cfg->n_files < AGENT_MAX_FILES ? cfg->n_files : AGENT_MAX_FILES;
	in.meta.provider = cfg->provider == AGENT_OFFLINE ? "offline analyst"
							  : llm_provider_name(cfg->llm.provider);
	in.meta.model = cfg->provider == AGENT_OFFLINE ? NULL : cfg->llm.model;
	in.meta.steps = run->steps;
	in.meta.max_steps = cfg->provider == AGENT_OFFLINE ? 0 : cfg->max_steps;
	in.meta.tokens_in = run->tokens_in;
	in.meta.tokens_out = run->tokens_out;
	in.meta.tokens_cached = run->tokens_cached;
	in.meta.cost_usd = cfg->provider == AGENT_OFFLINE ? 0 : run->cost_usd;
	in.meta.wall_s = run->wall_s;
	in.meta.model_s = run->model_s;
	in.meta.sandbox_s = run->sandbox_s;
	in.meta.generated_at = (int64_t)time(NULL);
	char where[200];
	snprintf(where, sizeof where, "%s, %s", p->where, cfg->stateless ? "stateless" : "stateful");
	in.meta.sandbox = where;
	in.meta.version = "corral 0.1.0";
	int rc = rpt_render(&in, &run->html, &run->render, err);
	free(figs);
	free(tabs);
	return rc;
}

int agent_run(const struct agent_config *cfg, struct bk *b, struct agent_run *run,
	      struct cr_err *err)
{
	memset(run, 0, sizeof *run);
	cr_buf_init(&run->html, 1);
	struct progress p;
	progress_start(&p, cfg, run);
	p.t0 -= cfg->sandbox_open_s; /* the run began when the sandbox was being opened */
	p.where = bk_describe(b);
	run->sandbox_s = cfg->sandbox_open_s;
	trace_write(&p, json_pack("{s:s, s:s, s:s, s:f}", "kind", "sandbox_open", "where", p.where,
				  "mode", cfg->stateless ? "stateless" : "stateful", "duration_s",
				  cfg->sandbox_open_s));
	struct capture cap;
	capture_init(&cap);
	struct cr_buf profile, md;
	cr_buf_init(&profile, 1);
	cr_buf_init(&md, MARKDOWN_MAX);
	int rc;
	if (cfg->provider == AGENT_OFFLINE) {
		rc = run_offline(&p, b, &cap, &md, err);
	} else {
		rc = profile_data(&p, b, &profile, err);
		if (rc == 0)
			rc = run_model(&p, b, &cap, &profile, &md, err);
	}
	if (rc == 0) {
		progress_say(&p, "rendering the report (%u figures, %u tables)", run->figures,
			     run->tables);
		rc = render(&p, &cap, &md, err);
	}
	progress_end(&p);
	json_t *sum = json_pack("{s:s, s:s, s:b, s:i, s:i, s:i, s:I, s:I, s:I, s:f, s:f, s:f, s:I}",
				"kind", "summary", "status", rc == 0 ? "ok" : "error", "partial",
				run->partial, "steps", run->steps, "executions", run->executions,
				"figures", run->figures, "tokens_in", (json_int_t)run->tokens_in,
				"tokens_out", (json_int_t)run->tokens_out, "tokens_cached",
				(json_int_t)run->tokens_cached, "wall_s", agent_now() - p.t0, "model_s",
				run->model_s, "sandbox_s", run->sandbox_s, "bytes_to_model",
				(json_int_t)run->bytes_to_model);
	json_object_set_new(sum, "cost_usd", run->cost_usd >= 0 ? json_real(run->cost_usd) : json_null());
	if (rc < 0)
		json_object_set_new(sum, "error", json_string(err->msg));
	trace_write(&p, sum);
	capture_free(&cap);
	cr_buf_free(&profile);
	cr_buf_free(&md);
	return rc;
}
