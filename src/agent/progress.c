/* agent/progress.c -- what the user sees while an analysis runs, and the trace it leaves.
 *
 * Progress: one line per event on the progress stream ("[step 3/20] running code ..."); on a
 * terminal the same text rewrites a single status line.  Trace: JSON lines on trace_fd, one per
 * model call and per execution, and a summary at the end.  Neither ever contains the API key.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent_internal.h"

double agent_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void progress_start(struct progress *p, const struct agent_config *cfg, struct agent_run *run)
{
	p->cfg = cfg;
	p->run = run;
	p->t0 = agent_now();
	p->trace_fd = cfg->trace_fd;
}

void progress_say(struct progress *p, const char *fmt, ...)
{
	FILE *out = p->cfg->progress ? p->cfg->progress : stderr;
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	const struct agent_run *r = p->run;
	char spend[96] = "";
	if (p->cfg->provider != AGENT_OFFLINE) {
		if (r->cost_usd >= 0)
			snprintf(spend, sizeof spend, " | %.1fk in %.1fk out $%.4f",
				 (double)r->tokens_in / 1000, (double)r->tokens_out / 1000, r->cost_usd);
		else
			snprintf(spend, sizeof spend, " | %.1fk in %.1fk out",
				 (double)r->tokens_in / 1000, (double)r->tokens_out / 1000);
	}
	if (p->cfg->progress_tty)
		fprintf(out, "\r\033[K[%5.1fs] %s%s", agent_now() - p->t0, msg, spend);
	else
		fprintf(out, "corral: [%5.1fs] %s%s\n", agent_now() - p->t0, msg, spend);
	fflush(out);
}

void progress_end(struct progress *p)
{
	FILE *out = p->cfg->progress ? p->cfg->progress : stderr;
	if (p->cfg->progress_tty) {
		fputs("\r\033[K", out);
		fflush(out);
	}
}

void trace_write(struct progress *p, json_t *obj)
{
	if (!obj)
		return;
	if (p->trace_fd >= 0) {
		json_object_set_new(obj, "t", json_real(agent_now() - p->t0));
		char *s = json_dumps(obj, JSON_COMPACT);
		if (s) {
			size_t n = strlen(s);
			s[n] = '\n';
			(void)!write(p->trace_fd, s, n + 1);
			free(s);
		}
	}
	json_decref(obj);
}
