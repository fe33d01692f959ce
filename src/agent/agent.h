/* agent/agent.h -- `corral analyze`: data in, a report out, with a model or without one.
 *
 *   struct agent_config cfg; agent_config_init(&cfg);
 *   cfg.files = paths; cfg.n_files = n; cfg.question = "Which regions are growing?";
 *   cfg.provider = AGENT_OFFLINE;           // or AGENT_OPENAI / AGENT_ANTHROPIC + cfg.llm
 *   struct agent_run run;
 *   int r = agent_run(&cfg, backend, &run, &err);   // the sandbox is a tool, via backend.h
 *   ... run.html (the rendered report), run.partial, run.steps, run.tokens_in, ...
 *   agent_run_free(&run);
 *
 * The agent runs on the host with the keys; the sandbox gets code and data, never keys.  The
 * model never reads the dataset: it gets a profile computed in the sandbox (schema, row count,
 * a few sample rows, summary statistics) and every tool result is capped (AGENT_OBS_MAX) with a
 * note saying so.  The loop is bounded by steps, tokens and money; when a budget runs out the
 * report is still written, marked partial.  The model writes only a Markdown body; the
 * renderer (report/report.h) makes the HTML.
 *
 * Ownership: the config borrows its strings; agent_run owns what it returns until
 * agent_run_free.  Progress goes to cfg.progress (stderr by default), the trace (JSON lines)
 * to cfg.trace_fd when >= 0.
 */
#ifndef CORRAL_AGENT_AGENT_H
#define CORRAL_AGENT_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "agent/llm.h"
#include "backend/backend.h"
#include "core/buf.h"
#include "core/err.h"
#include "report/report.h"

#define AGENT_MAX_FILES BK_MAX_DATA_FILES
#define AGENT_OBS_MAX 4096       /* bytes of one tool result sent back to the model */
#define AGENT_PROFILE_MAX 4096   /* bytes of data profile per file */

enum agent_provider { AGENT_OFFLINE = 0, AGENT_OPENAI, AGENT_ANTHROPIC };

struct agent_config {
	const char *const *files;    /* host paths of the data files; /data/<basename> in the sandbox */
	const uint64_t *file_sizes;  /* bytes of each, for the report; NULL: stat() the paths */
	size_t n_files;
	const char *question;        /* NULL: a general analysis */
	enum agent_provider provider;
	struct llm_config llm;       /* for OPENAI / ANTHROPIC (key borrowed) */
	unsigned max_steps;          /* model calls; default 20 */
	uint64_t max_tokens;         /* prompt + completion over the run; 0 = unlimited */
	double max_cost_usd;         /* 0 = unlimited */
	bool stateless;              /* each tool call in a fresh fork: nothing persists */
	double sandbox_open_s;       /* time the caller spent opening b (session, uploads): counted
				      * as sandbox time and in the wall time */
	uint32_t cell_timeout_ms;    /* per tool call; default 120 s */
	const struct rpt_brand *brand;
	const char *title;           /* NULL: from the question or the file names */
	FILE *progress;              /* NULL: stderr */
	int trace_fd;                /* JSON lines; -1 = none */
	bool progress_tty;           /* rewrite one status line instead of printing lines */
	volatile sig_atomic_t *cancel;
};
void agent_config_init(struct agent_config *cfg);

struct agent_run {
	struct cr_buf html;          /* the rendered report */
	bool partial;
	char partial_reason[160];
	unsigned steps, executions, exec_errors;
	uint64_t tokens_in, tokens_out, tokens_cached;
	double cost_usd;             /* < 0: unknown */
	double wall_s, model_s, sandbox_s;
	uint64_t bytes_to_model;     /* dataset-derived bytes sent to the model (profile + obs) */
	unsigned figures, tables;
	struct rpt_stats render;
};
void agent_run_free(struct agent_run *run);

/* Runs the whole analysis in an open sandbox (backend b, with the data under /data) and renders
 * the report into run->html.  -errno only when no report could be produced at all (e.g. the
 * model's key is refused on the first call, or the sandbox is broken); budget exhaustion and
 * code errors still produce a report. */
int agent_run(const struct agent_config *cfg, struct bk *b, struct agent_run *run,
	      struct cr_err *err);

/* The system prompt for a mode (prompt.c); static text, byte-stable for prompt caching. */
const char *agent_system_prompt(bool stateless);

#endif
