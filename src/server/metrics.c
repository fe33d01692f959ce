/* server/metrics.c -- counters of the front and the Prometheus text exposition (format 0.0.4).
 *
 * The front counts what only it sees (requests by route and status, refusals by reason, HTTP
 * latency); the engine's counters (sandboxes, executions, execution latency, warm pool) come
 * from eng_client_stats at scrape time.  Counters are lock-free atomics: a scrape never stalls
 * a request.  Metric names are listed in docs/API.md.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "server/srv_internal.h"

/* The statuses that get a label of their own; anything else counts as "other". */
static const unsigned STATUSES[] = {200, 201, 204, 400, 401, 403, 404, 405, 409, 411,
				    413, 415, 429, 500, 502, 503, 504, 507};
#define N_STATUS (sizeof STATUSES / sizeof *STATUSES + 1)

static const double HTTP_LE_S[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
				   0.5, 1, 2.5, 10, 60};
#define N_LE (sizeof HTTP_LE_S / sizeof *HTTP_LE_S)

static const char *const REFUSALS[SRV_REFUSED_N] = {"auth", "capacity", "too_large",
						    "bad_request"};

static struct {
	const struct srv_route *const *routes;
	unsigned n_routes;
	_Atomic uint64_t requests[SRV_MAX_ROUTES + 1][N_STATUS];
	_Atomic uint64_t refused[SRV_REFUSED_N];
	_Atomic uint64_t le[N_LE], count, sum_us;
	_Atomic int64_t streams;
} g;

void srv_metrics_set_routes(const struct srv_route *const *routes, unsigned n)
{
	g.routes = routes;
	g.n_routes = n;
}

void srv_metrics_request(unsigned route_idx, unsigned status, uint64_t duration_us)
{
	if (route_idx > SRV_MAX_ROUTES)
		route_idx = SRV_MAX_ROUTES;
	size_t s = N_STATUS - 1;
	for (size_t i = 0; i < N_STATUS - 1; i++)
		if (STATUSES[i] == status)
			s = i;
	g.requests[route_idx][s]++;
	double secs = (double)duration_us / 1e6;
	for (size_t i = 0; i < N_LE; i++)
		if (secs <= HTTP_LE_S[i])
			g.le[i]++;
	g.count++;
	g.sum_us += duration_us;
}

void srv_metrics_refused(enum srv_refusal why)
{
	if (why < SRV_REFUSED_N)
		g.refused[why]++;
}

void srv_metrics_stream(int delta)
{
	g.streams += delta;
}

#define P(...)                                                  \
	do {                                                    \
		if ((r = cr_buf_printf(out, __VA_ARGS__)) < 0) \
			return r;                               \
	} while (0)

static int render_http(struct cr_buf *out)
{
	int r;
	P("# HELP corral_http_requests_total HTTP requests by route and status.\n"
	  "# TYPE corral_http_requests_total counter\n");
	for (unsigned ri = 0; ri <= SRV_MAX_ROUTES; ri++) {
		const struct srv_route *rt = ri < g.n_routes ? g.routes[ri] : NULL;
		if (ri < SRV_MAX_ROUTES && !rt)
			continue;
		for (size_t s = 0; s < N_STATUS; s++) {
			uint64_t v = g.requests[ri][s];
			if (!v)
				continue;
			char st[8];
			if (s < N_STATUS - 1)
				snprintf(st, sizeof st, "%u", STATUSES[s]);
			else
				snprintf(st, sizeof st, "other");
			P("corral_http_requests_total{route=\"%s %s\",status=\"%s\"} %llu\n",
			  rt ? rt->method : "", rt ? rt->pattern : "unmatched", st,
			  (unsigned long long)v);
		}
	}
	P("# HELP corral_http_request_duration_seconds Time from request head to response.\n"
	  "# TYPE corral_http_request_duration_seconds histogram\n");
	for (size_t i = 0; i < N_LE; i++)
		P("corral_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n", HTTP_LE_S[i],
		  (unsigned long long)g.le[i]);
	P("corral_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
	  "corral_http_request_duration_seconds_sum %.6f\n"
	  "corral_http_request_duration_seconds_count %llu\n",
	  (unsigned long long)g.count, (double)g.sum_us / 1e6, (unsigned long long)g.count);
	P("# HELP corral_requests_refused_total Requests refused, by reason.\n"
	  "# TYPE corral_requests_refused_total counter\n");
	for (int i = 0; i < SRV_REFUSED_N; i++)
		P("corral_requests_refused_total{reason=\"%s\"} %llu\n", REFUSALS[i],
		  (unsigned long long)g.refused[i]);
	P("# HELP corral_http_streams_active Streaming executions in progress.\n"
	  "# TYPE corral_http_streams_active gauge\n"
	  "corral_http_streams_active %lld\n", (long long)g.streams);
	return 0;
}

static int render_engine(struct cr_buf *out, const struct eng_stats *st)
{
	int r;
	P("# HELP corral_engine_up Whether the engine manager answered this scrape.\n"
	  "# TYPE corral_engine_up gauge\ncorral_engine_up %d\n", st ? 1 : 0);
	if (!st)
		return 0;
	P("# HELP corral_sandboxes_live Sandboxes alive now (warm pool excluded).\n"
	  "# TYPE corral_sandboxes_live gauge\ncorral_sandboxes_live %llu\n"
	  "# HELP corral_sandboxes_created_total Sandboxes created.\n"
	  "# TYPE corral_sandboxes_created_total counter\ncorral_sandboxes_created_total %llu\n"
	  "# HELP corral_sandboxes_destroyed_total Sandboxes ended (deleted, expired or dead).\n"
	  "# TYPE corral_sandboxes_destroyed_total counter\n"
	  "corral_sandboxes_destroyed_total %llu\n"
	  "# HELP corral_sandboxes_expired_total Sandboxes ended by their timeout or idleness.\n"
	  "# TYPE corral_sandboxes_expired_total counter\ncorral_sandboxes_expired_total %llu\n",
	  (unsigned long long)st->sessions_live, (unsigned long long)st->sessions_created,
	  (unsigned long long)st->sessions_destroyed, (unsigned long long)st->sessions_expired);
	P("# HELP corral_warm_sessions_ready Contained sessions waiting in the warm pool.\n"
	  "# TYPE corral_warm_sessions_ready gauge\ncorral_warm_sessions_ready %llu\n"
	  "# HELP corral_warm_sessions_target Size the warm pool is kept at.\n"
	  "# TYPE corral_warm_sessions_target gauge\ncorral_warm_sessions_target %llu\n",
	  (unsigned long long)st->pool_ready, (unsigned long long)st->pool_target);
	P("# HELP corral_engine_refused_capacity_total Creates the engine refused at capacity.\n"
	  "# TYPE corral_engine_refused_capacity_total counter\n"
	  "corral_engine_refused_capacity_total %llu\n",
	  (unsigned long long)st->refused_capacity);
	const struct {
		const char *name;
		uint64_t v;
	} ex[] = {{"ok", st->exec_ok}, {"error", st->exec_error}, {"timeout", st->exec_timeout},
		  {"memory_limit", st->exec_memory_limit}, {"killed", st->exec_killed}};
	P("# HELP corral_executions_total Cells run, by final status.\n"
	  "# TYPE corral_executions_total counter\n");
	for (size_t i = 0; i < sizeof ex / sizeof *ex; i++)
		P("corral_executions_total{status=\"%s\"} %llu\n", ex[i].name,
		  (unsigned long long)ex[i].v);
	/* the engine's buckets are already cumulative (a cell counts in every bucket >= it) */
	P("# HELP corral_execution_duration_seconds Wall time of cells, in the engine.\n"
	  "# TYPE corral_execution_duration_seconds histogram\n");
	for (int i = 0; i < 12; i++)
		P("corral_execution_duration_seconds_bucket{le=\"%g\"} %llu\n",
		  eng_latency_le_ms[i] / 1000.0, (unsigned long long)st->latency_buckets[i]);
	P("corral_execution_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
	  "corral_execution_duration_seconds_sum %.6f\n"
	  "corral_execution_duration_seconds_count %llu\n",
	  (unsigned long long)st->latency_count, (double)st->latency_sum_us / 1e6,
	  (unsigned long long)st->latency_count);
	return 0;
}

int srv_metrics_render(struct cr_buf *out, const struct eng_stats *st)
{
	int r = render_http(out);
	if (r == 0)
		r = render_engine(out, st);
	if (r == 0)
		r = cr_buf_printf(out, "# HELP corral_sandbox_ids Sandbox ids the front maps.\n"
				  "# TYPE corral_sandbox_ids gauge\ncorral_sandbox_ids %zu\n",
				  srv_ids_count());
	return r;
}
