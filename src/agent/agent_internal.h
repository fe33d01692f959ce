/* agent/agent_internal.h -- shared by the agent's files (agent.c, capture.c, progress.c). */
#ifndef CORRAL_AGENT_AGENT_INTERNAL_H
#define CORRAL_AGENT_AGENT_INTERNAL_H

#include <jansson.h>
#include <stdint.h>

#include "agent/agent.h"
#include "backend/backend.h"
#include "core/buf.h"
#include "report/report.h"

#define CAPTURE_MAX_BYTES (48u << 20) /* figures kept for the report, in total */
#define CAPTURE_MAX_ITEMS 200

struct cap_fig {
	char id[RPT_ID_MAX + 1];
	void *png;
	size_t len;
	uint32_t width, height;
	char *alt;
};
struct cap_tab {
	char id[RPT_ID_MAX + 1];
	json_t *data;
	char *caption;
};
struct capture {
	struct cap_fig *figs;
	size_t n_figs, cap_figs;
	struct cap_tab *tabs;
	size_t n_tabs, cap_tabs;
	size_t bytes;
};

void capture_init(struct capture *c);
void capture_free(struct capture *c);
/* Keeps the figures and tables of one execution and appends its observation (uncapped). */
void capture_observe(struct capture *c, const struct bk_result *r, struct cr_buf *obs);
json_t *capture_manifest(const struct capture *c);

/* progress.c: status lines on the progress stream, JSON lines on the trace fd. */
struct progress {
	const struct agent_config *cfg;
	struct agent_run *run;
	double t0;
	int trace_fd;
	const char *where; /* bk_describe of the sandbox */
};
void progress_start(struct progress *p, const struct agent_config *cfg, struct agent_run *run);
void progress_say(struct progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void progress_end(struct progress *p);
void trace_write(struct progress *p, json_t *obj); /* steals obj */
double agent_now(void);

/* The Python programs the agent runs in the sandbox (src/agent/py/, compiled in). */
extern const char agent_py_dataset[];
extern const char agent_py_trends[];
extern const char agent_py_charts[];
extern const char agent_py_profile[];
extern const char agent_py_offline[];

#endif
