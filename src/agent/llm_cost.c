/* agent/llm_cost.c -- the price table, cost estimates and the trace record of one call. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/llm.h"

/* USD per 1M tokens, standard tier, short context (../shared/docs/llm-wire-formats.md section 3,
 * late 2026).  Estimates only: prices change; override with llm_config.price.  OpenAI models
 * without a cache-write price bill writes as input (they report 0 write tokens anyway). */
static const struct {
	const char *model;
	struct llm_price p; /* known, input, output, cache_read, cache_write */
} price_table[] = {
	{"gpt-4o-mini", {true, 0.15, 0.60, 0.075, 0.15}},
	{"gpt-4.1", {true, 2.00, 8.00, 0.50, 2.00}},
	{"gpt-5", {true, 1.25, 10.00, 0.125, 1.25}},
	{"gpt-5-mini", {true, 0.25, 2.00, 0.025, 0.25}},
	{"gpt-5-nano", {true, 0.05, 0.40, 0.005, 0.05}},
	{"gpt-5.4", {true, 2.50, 15.00, 0.25, 2.50}},
	{"gpt-6.1-sol", {true, 2.00, 10.00, 0.10, 2.50}},
	{"gpt-6.2-sol", {true, 2.00, 10.00, 0.10, 2.50}},
	{"claude-haiku-4-5", {true, 1.00, 5.00, 0.10, 1.25}},
	{"claude-sonnet-4-5", {true, 3.00, 15.00, 0.30, 3.75}},
	{"claude-sonnet-4-6", {true, 3.00, 15.00, 0.30, 3.75}},
	{"claude-sonnet-5", {true, 2.00, 10.00, 0.20, 2.50}},
	{"claude-opus-4-5", {true, 5.00, 25.00, 0.50, 6.25}},
	{"claude-opus-4-6", {true, 5.00, 25.00, 0.50, 6.25}},
	{"claude-opus-4-7", {true, 5.00, 25.00, 0.50, 6.25}},
	{"claude-opus-4-8", {true, 5.00, 25.00, 0.50, 6.25}},
	{"claude-opus-5", {true, 5.00, 25.00, 0.50, 6.25}},
};

/* "-2025-08-07" or "-20250929": a dash, then only digits and dashes, at least 8 digits. */
static bool date_suffix(const char *s)
{
	if (*s++ != '-')
		return false;
	int digits = 0;
	for (; *s; s++) {
		if (*s >= '0' && *s <= '9')
			digits++;
		else if (*s != '-')
			return false;
	}
	return digits >= 8;
}

int llm_price_lookup(const char *model, struct llm_price *out)
{
	memset(out, 0, sizeof *out);
	if (!model)
		return -ENOENT;
	for (size_t i = 0; i < sizeof price_table / sizeof price_table[0]; i++) {
		size_t n = strlen(price_table[i].model);
		if (strncmp(model, price_table[i].model, n) == 0 &&
		    (model[n] == '\0' || date_suffix(model + n))) {
			*out = price_table[i].p;
			return 0;
		}
	}
	return -ENOENT;
}

void llm_estimate_cost(const struct llm_config *cfg, const struct llm_usage *u, double *usd,
		       bool *known)
{
	struct llm_price p = cfg->price;
	*usd = 0;
	*known = false;
	if (!p.known && llm_price_lookup(cfg->model, &p) < 0)
		return;
	if (!u || !u->known)
		return;
	uint64_t cached = u->cache_read + u->cache_write;
	uint64_t fresh = u->input > cached ? u->input - cached : 0;
	uint64_t w1h = u->cache_write_1h < u->cache_write ? u->cache_write_1h : u->cache_write;
	double c = (double)fresh * p.input + (double)u->cache_read * p.cache_read +
		   (double)(u->cache_write - w1h) * p.cache_write + (double)w1h * 2.0 * p.input +
		   (double)u->output * p.output;
	*usd = c / 1e6;
	*known = true;
}

static int set(json_t *o, const char *k, json_t *v)
{
	return json_object_set_new(o, k, v);
}

json_t *llm_reply_to_trace_json(const struct llm_reply *r)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	int bad = 0;
	bad |= set(o, "provider", json_string(llm_provider_name(r->provider)));
	bad |= set(o, "model", json_string(r->model));
	bad |= set(o, "http_status", json_integer(r->http_status));
	bad |= set(o, "attempts", json_integer(r->attempts));
	bad |= set(o, "latency_ms", json_integer(r->latency_ms));
	bad |= set(o, "elapsed_ms", json_integer(r->elapsed_ms));
	bad |= set(o, "finish", json_string(llm_finish_name(r->finish)));
	bad |= set(o, "tool_calls", json_integer((json_int_t)r->n_calls));
	if (r->usage.known)
		bad |= set(o, "tokens",
			   json_pack("{s:I,s:I,s:I,s:I}", "in", (json_int_t)r->usage.input, "out",
				     (json_int_t)r->usage.output, "cached",
				     (json_int_t)r->usage.cache_read, "cache_write",
				     (json_int_t)r->usage.cache_write));
	else
		bad |= set(o, "tokens", json_null());
	bad |= set(o, "cost_usd", r->cost_known ? json_real(r->cost_usd) : json_null());
	bad |= set(o, "request_id", json_string(r->request_id));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}
