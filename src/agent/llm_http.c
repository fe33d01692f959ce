/* agent/llm_http.c -- the client: libcurl transport, retries with backoff, llm_complete. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "agent/llm.h"
#include "agent/llm_wire.h"
#include "core/buf.h"
#include "core/log.h"

struct llm_client {
	struct llm_config cfg; /* strings below are the client's own copies (api_key borrowed) */
	char *model, *base_url, *prompt_cache_key, *anthropic_beta;
	char *url;             /* full endpoint */
	char *url_display;     /* without user, password, query: safe in messages */
	bool loopback;
	CURL *curl;
	uint64_t rng;
	unsigned long id_seq;
};

/* One HTTP attempt. */
struct attempt {
	struct cr_buf body;
	const struct llm_client *c;
	CURLcode cc;
	long status;
	bool too_big, oom, cancelled, idle;
	long t0_ms, last_io_ms;
	curl_off_t io_seen;
	char errbuf[CURL_ERROR_SIZE];
	char retry_after[64], retry_after_ms[64], should_retry[16], request_id[128];
};

int llm_global_init(struct cr_err *err)
{
	CURLcode cc = curl_global_init(CURL_GLOBAL_DEFAULT);
	if (cc != CURLE_OK)
		return cr_failx(err, EIO, "curl_global_init: %s", curl_easy_strerror(cc));
	return 0;
}

void llm_global_cleanup(void)
{
	curl_global_cleanup();
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- client ---------------------------------------------------------------------------------- */

static char *dup_opt(const char *s, bool *oom)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

static bool header_value_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static int make_url(struct llm_client *c, struct cr_err *err)
{
	const char *prov = llm_provider_name(c->cfg.provider);
	const char *base = c->cfg.base_url && *c->cfg.base_url
				   ? c->cfg.base_url
				   : (c->cfg.provider == LLM_ANTHROPIC ? "https://api.anthropic.com"
								     : "https://api.openai.com");
	const char *tail = c->cfg.provider == LLM_ANTHROPIC ? "/messages" : "/chat/completions";
	char q[128];
	llm_quote(q, sizeof q, base);
	int rc = 0;
	char *scheme = NULL, *host = NULL, *path = NULL, *np = NULL;
	CURLU *u = curl_url();
	if (!u)
		return cr_fail(err, ENOMEM, "%s: base URL", prov);
	if (curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcasecmp(scheme, "http") && strcasecmp(scheme, "https")) ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
		rc = cr_failx(err, EINVAL, "%s: base URL %s must be http(s)://host[:port][/path]",
			      prov, q);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
		path = NULL;
	size_t pl = path ? strlen(path) : 0;
	while (pl && path[pl - 1] == '/')
		pl--;
	bool has_v1 = pl >= 3 && !strncmp(path + pl - 3, "/v1", 3);
	if (!(np = malloc(pl + strlen(tail) + 4))) {
		rc = cr_fail(err, ENOMEM, "%s: base URL", prov);
		goto out;
	}
	snprintf(np, pl + strlen(tail) + 4, "%.*s%s%s", (int)pl, path ? path : "",
		 has_v1 ? "" : "/v1", tail);
	if (curl_url_set(u, CURLUPART_PATH, np, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &c->url, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_USER, NULL, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_QUERY, NULL, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &c->url_display, 0) != CURLUE_OK) {
		rc = cr_failx(err, EINVAL, "%s: base URL %s is not usable", prov, q);
		goto out;
	}
	c->loopback = !strcasecmp(host, "localhost") || !strncmp(host, "127.", 4) ||
		      !strcmp(host, "[::1]");
	if (!strcasecmp(scheme, "http") && !c->loopback && c->cfg.api_key && *c->cfg.api_key)
		cr_log(CR_LOG_WARN, "%s: the API key goes to %s over plain http", prov, host);
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(path);
	free(np);
	curl_url_cleanup(u);
	return rc;
}

void llm_client_free(struct llm_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->model);
	free(c->base_url);
	free(c->prompt_cache_key);
	free(c->anthropic_beta);
	curl_free(c->url);
	curl_free(c->url_display);
	free(c);
}

struct llm_client *llm_client_new(const struct llm_config *cfg, struct cr_err *err)
{
	const char *prov = cfg ? llm_provider_name(cfg->provider) : "llm";
	if (!cfg || (cfg->provider != LLM_OPENAI && cfg->provider != LLM_ANTHROPIC)) {
		cr_failx(err, EINVAL, "llm: unknown provider");
		return NULL;
	}
	const char *bad = NULL;
	if (!cfg->model || !*cfg->model || !header_value_ok(cfg->model))
		bad = "a model name is required";
	else if (cfg->max_output_tokens == 0)
		bad = "max_output_tokens must be positive";
	else if (cfg->connect_timeout_ms < 0 || cfg->total_timeout_ms < 0 ||
		 cfg->idle_timeout_ms < 0 || cfg->backoff_base_ms < 0 || cfg->backoff_cap_ms < 0 ||
		 cfg->retry_after_cap_ms < 0)
		bad = "timeouts and delays must not be negative";
	else if (cfg->max_retries < 0 || cfg->max_retries > 100)
		bad = "max_retries must be between 0 and 100";
	else if (cfg->max_reply_bytes < 1024)
		bad = "max_reply_bytes must be at least 1024";
	else if (cfg->api_key && *cfg->api_key && !header_value_ok(cfg->api_key))
		bad = "the API key contains control or non-ASCII characters";
	else if (cfg->api_key && strchr(cfg->api_key, ' '))
		bad = "the API key contains spaces";
	else if (cfg->anthropic_beta && !header_value_ok(cfg->anthropic_beta))
		bad = "anthropic_beta contains control or non-ASCII characters";
	if (bad) {
		cr_failx(err, EINVAL, "%s: %s", prov, bad);
		return NULL;
	}
	struct llm_client *c = calloc(1, sizeof *c);
	if (!c) {
		cr_fail(err, ENOMEM, "%s client", prov);
		return NULL;
	}
	c->cfg = *cfg;
	bool oom = false;
	c->cfg.model = c->model = dup_opt(cfg->model, &oom);
	c->cfg.base_url = c->base_url = dup_opt(cfg->base_url, &oom);
	c->cfg.prompt_cache_key = c->prompt_cache_key = dup_opt(cfg->prompt_cache_key, &oom);
	c->cfg.anthropic_beta = c->anthropic_beta = dup_opt(cfg->anthropic_beta, &oom);
	if (oom || !(c->curl = curl_easy_init())) {
		cr_fail(err, ENOMEM, "%s client", prov);
		llm_client_free(c);
		return NULL;
	}
	if (make_url(c, err) < 0) {
		llm_client_free(c);
		return NULL;
	}
	if (!c->cfg.price.known)
		llm_price_lookup(c->cfg.model, &c->cfg.price);
	if (getrandom(&c->rng, sizeof c->rng, GRND_NONBLOCK) != sizeof c->rng)
		c->rng = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32);
	c->rng |= 1;
	return c;
}

const struct llm_config *llm_client_config(const struct llm_client *c)
{
	return &c->cfg;
}

/* ---- one attempt ----------------------------------------------------------------------------- */

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct attempt *a = ud;
	int r = cr_buf_append(&a->body, p, sz * n);
	if (r == -E2BIG)
		a->too_big = true;
	else if (r < 0)
		a->oom = true;
	return r < 0 ? 0 : sz * n; /* 0: curl aborts with CURLE_WRITE_ERROR */
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	(void)dltotal;
	(void)ultotal;
	struct attempt *a = ud;
	if (a->c->cfg.cancel && *a->c->cfg.cancel) {
		a->cancelled = true;
		return 1;
	}
	long t = now_ms();
	if (dlnow + ulnow != a->io_seen) {
		a->io_seen = dlnow + ulnow;
		a->last_io_ms = t;
	} else if (a->c->cfg.idle_timeout_ms > 0 && t - a->last_io_ms > a->c->cfg.idle_timeout_ms) {
		a->idle = true;
		return 1;
	}
	return 0;
}

static void header_copy(CURL *curl, const char *name, char *out, size_t outsz)
{
	struct curl_header *h = NULL;
	out[0] = '\0';
	if (curl_easy_header(curl, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h->value)
		return;
	size_t j = 0;
	for (const char *s = h->value; *s && j + 1 < outsz; s++) /* printable ASCII only */
		if ((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f)
			out[j++] = *s;
	out[j] = '\0';
}

static void slist_free_wiped(struct curl_slist *l)
{
	for (struct curl_slist *p = l; p; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

static struct curl_slist *headers(const struct llm_client *c)
{
	struct curl_slist *l = NULL, *t;
	const char *fixed[] = {"Content-Type: application/json", "Accept: application/json",
			       "Expect:", c->cfg.provider == LLM_ANTHROPIC
					  ? "anthropic-version: 2023-06-01" : NULL};
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
		if (!fixed[i])
			continue;
		if (!(t = curl_slist_append(l, fixed[i])))
			goto oom;
		l = t;
	}
	char line[1024];
	const char *key = c->cfg.api_key;
	if (key && *key) {
		int n = snprintf(line, sizeof line, "%s%s",
				 c->cfg.provider == LLM_ANTHROPIC ? "x-api-key: "
								  : "Authorization: Bearer ",
				 key);
		t = n > 0 && (size_t)n < sizeof line ? curl_slist_append(l, line) : NULL;
		explicit_bzero(line, sizeof line);
		if (!t)
			goto oom;
		l = t;
	}
	if (c->cfg.provider == LLM_ANTHROPIC && c->cfg.anthropic_beta && *c->cfg.anthropic_beta) {
		snprintf(line, sizeof line, "anthropic-beta: %s", c->cfg.anthropic_beta);
		if (!(t = curl_slist_append(l, line)))
			goto oom;
		l = t;
	}
	return l;
oom:
	slist_free_wiped(l);
	return NULL;
}

static void perform(struct llm_client *c, const char *body, size_t body_len, struct attempt *a)
{
	cr_buf_reset(&a->body);
	a->cc = CURLE_OK;
	a->status = 0;
	a->too_big = a->oom = a->cancelled = a->idle = false;
	a->errbuf[0] = '\0';
	a->t0_ms = a->last_io_ms = now_ms();
	a->io_seen = 0;
	a->retry_after[0] = a->retry_after_ms[0] = a->should_retry[0] = a->request_id[0] = '\0';

	struct curl_slist *hdr = headers(c);
	if (!hdr) {
		a->oom = true;
		return;
	}
	CURL *h = c->curl;
	curl_easy_reset(h); /* keeps the connection cache */
	curl_easy_setopt(h, CURLOPT_URL, c->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* the key never leaves the base host */
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_USERAGENT, "corral-llm/1");
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->cfg.connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->cfg.total_timeout_ms);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, a->errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, a);
	if (c->loopback)
		curl_easy_setopt(h, CURLOPT_NOPROXY, "*"); /* a local server is never proxied */

	a->cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status);
	if (a->status > 0) {
		header_copy(h, "retry-after", a->retry_after, sizeof a->retry_after);
		header_copy(h, "retry-after-ms", a->retry_after_ms, sizeof a->retry_after_ms);
		header_copy(h, "x-should-retry", a->should_retry, sizeof a->should_retry);
		header_copy(h, c->cfg.provider == LLM_ANTHROPIC ? "request-id" : "x-request-id",
			    a->request_id, sizeof a->request_id);
		if (!a->request_id[0])
			header_copy(h, "x-request-id", a->request_id, sizeof a->request_id);
	}
	/* Drop our pointers to stack/heap data before they go away. */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	slist_free_wiped(hdr);
}

/* ---- errors ---------------------------------------------------------------------------------- */

/* Provider text is untrusted: never echo the key, then quote (escape) and truncate. */
static void quote_api(char *out, size_t outsz, const struct llm_api_error *e, const char *key)
{
	char msg[sizeof e->message];
	memcpy(msg, e->message, sizeof msg);
	size_t kl = key ? strlen(key) : 0;
	char *p;
	while (kl >= 4 && (p = strstr(msg, key)) != NULL) {
		memcpy(p, "[key]", 5);
		memmove(p + 5, p + kl, strlen(p + kl) + 1);
	}
	llm_quote(out, outsz, msg);
}

static bool mentions_model(const struct llm_api_error *e)
{
	return !strcmp(e->code, "model_not_found") || strcasestr(e->message, "model") != NULL;
}

static int http_error(const struct llm_client *c, long status, const struct llm_api_error *e,
		      struct cr_err *err)
{
	const char *p = llm_provider_name(c->cfg.provider);
	char q[128] = "";
	if (e->present)
		quote_api(q, sizeof q, e, c->cfg.api_key);
	const char *sep = q[0] ? ": " : "";
	switch (status) {
	case 401:
		return cr_failx(err, EACCES,
				"%s: authentication failed (HTTP 401): check %s or the key file", p,
				llm_key_env_name(c->cfg.provider));
	case 402:
		return cr_failx(err, EDQUOT, "%s: payment required (HTTP 402)%s%s", p, sep, q);
	case 403:
		return cr_failx(err, EPERM, "%s: permission denied (HTTP 403)%s%s", p, sep, q);
	case 404:
		if (e->present && mentions_model(e))
			return cr_failx(err, ENOENT, "%s: unknown model '%.64s' (HTTP 404)%s%s", p,
					c->cfg.model, sep, q); /* model: printable ASCII, checked */
		return cr_failx(err, ENOENT, "%s: not found (HTTP 404) at %s: check the base URL%s%s",
				p, c->url_display, sep, q);
	case 413:
		return cr_failx(err, E2BIG, "%s: request too large (HTTP 413)%s%s", p, sep, q);
	case 400:
	case 422:
		return cr_failx(err, EINVAL, "%s: request rejected (HTTP %ld)%s%s", p, status, sep,
				q);
	case 429:
		if (e->no_retry)
			return cr_failx(err, EDQUOT,
					"%s: out of quota or over the spend limit (HTTP 429)%s%s", p,
					sep, q);
		break;
	default:
		if (status >= 300 && status < 400)
			return cr_failx(err, EINVAL,
					"%s: redirect (HTTP %ld) not followed: check the base URL %s",
					p, status, c->url_display);
	}
	const char *kind = e->code[0] ? e->code : e->type;
	return cr_failx(err, EIO, "%s: HTTP %ld%s%s%s%s", p, status, kind[0] ? " " : "", kind, sep,
			q);
}

static bool transport_retryable(CURLcode cc)
{
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_COULDNT_CONNECT:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
}

static int transport_errno(const struct attempt *a)
{
	if (a->idle)
		return ETIMEDOUT;
	switch (a->cc) {
	case CURLE_OPERATION_TIMEDOUT: return ETIMEDOUT;
	case CURLE_COULDNT_CONNECT: return ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY: return EHOSTUNREACH;
	default: return EIO;
	}
}

static void describe_transport(const struct llm_client *c, const struct attempt *a, char *out,
			       size_t outsz)
{
	if (a->idle)
		snprintf(out, outsz, "no data for %ld ms (idle timeout)", c->cfg.idle_timeout_ms);
	else if (a->cc == CURLE_OPERATION_TIMEDOUT)
		snprintf(out, outsz, "timeout (%s)", a->errbuf[0] ? a->errbuf : "no reply in time");
	else
		snprintf(out, outsz, "%s: %s", c->url_display,
			 a->errbuf[0] ? a->errbuf : curl_easy_strerror(a->cc));
}

/* Sleeps ms, waking early (false) when *cancel is set. */
static bool wait_ms(const struct llm_client *c, long ms)
{
	long end = now_ms() + ms;
	for (;;) {
		if (c->cfg.cancel && *c->cfg.cancel)
			return false;
		long left = end - now_ms();
		if (left <= 0)
			return true;
		if (left > 100)
			left = 100;
		struct timespec ts = {left / 1000, (left % 1000) * 1000000};
		nanosleep(&ts, NULL);
	}
}

/* ---- llm_complete ---------------------------------------------------------------------------- */

static int complete(struct llm_client *c, const char *body, size_t body_len, struct attempt *a,
		    struct llm_reply *out, struct cr_err *err)
{
	const char *p = llm_provider_name(c->cfg.provider);
	char last[200] = "";
	for (int retry = 0;; retry++) {
		if (c->cfg.cancel && *c->cfg.cancel)
			return cr_failx(err, ECANCELED, "%s: cancelled", p);
		out->attempts++;
		perform(c, body, body_len, a);
		out->latency_ms = now_ms() - a->t0_ms;
		cr_log(CR_LOG_DEBUG, "%s: POST %s (%zu bytes): %s, HTTP %ld, %zu bytes in %ld ms", p,
		       c->url_display, body_len, curl_easy_strerror(a->cc), a->status, a->body.len,
		       out->latency_ms);
		out->http_status = (int)a->status;
		if (a->request_id[0])
			llm_copy_clip(out->request_id, sizeof out->request_id, a->request_id);
		if (a->cancelled)
			return cr_failx(err, ECANCELED, "%s: cancelled", p);
		if (a->oom)
			return cr_fail(err, ENOMEM, "%s: reply", p);
		if (a->too_big)
			return cr_failx(err, EMSGSIZE,
					"%s: reply larger than the %zu-byte limit (max_reply_bytes)", p,
					c->cfg.max_reply_bytes);
		long delay;
		if (a->cc != CURLE_OK || a->status == 0) {
			describe_transport(c, a, last, sizeof last);
			if (!a->idle && !transport_retryable(a->cc))
				return cr_failx(err, transport_errno(a), "%s: %s", p, last);
			delay = llm_backoff_delay_ms(retry, c->cfg.backoff_base_ms,
						     c->cfg.backoff_cap_ms, &c->rng);
		} else if (a->status >= 200 && a->status < 300) {
			int rc = llm_parse_reply(c->cfg.provider, a->body.data, a->body.len,
						 &c->id_seq, out, err);
			if (rc < 0)
				return cr_wrap(err, "%s", p);
			return 0;
		} else {
			struct llm_api_error e;
			llm_parse_error_body(a->body.data, a->body.len, &e);
			bool again = llm_status_retryable((int)a->status) && !e.no_retry;
			if (!strcasecmp(a->should_retry, "true"))
				again = true;
			else if (!strcasecmp(a->should_retry, "false"))
				again = false;
			if (!again)
				return http_error(c, a->status, &e, err);
			char q[120] = "";
			if (e.present)
				quote_api(q, sizeof q, &e, c->cfg.api_key);
			const char *kind = e.code[0] ? e.code : e.type;
			snprintf(last, sizeof last, "HTTP %ld%s%s%s%s", a->status, kind[0] ? " " : "",
				 kind, q[0] ? ": " : "", q);
			long ra = llm_parse_retry_after(a->retry_after, a->retry_after_ms, time(NULL));
			if (ra > c->cfg.retry_after_cap_ms)
				return cr_failx(err, EAGAIN,
						"%s: HTTP %ld: the server asks to wait %ld s, more "
						"than the %ld s limit (retry_after_cap_ms)",
						p, a->status, (ra + 999) / 1000,
						c->cfg.retry_after_cap_ms / 1000);
			delay = ra >= 0 ? ra
					: llm_backoff_delay_ms(retry, c->cfg.backoff_base_ms,
							       c->cfg.backoff_cap_ms, &c->rng);
		}
		if (retry >= c->cfg.max_retries) {
			if (out->attempts == 1) /* max_retries 0 */
				return cr_failx(err, EAGAIN, "%s: %s", p, last);
			return cr_failx(err, EAGAIN, "%s: gave up after %d attempts: %s", p,
					out->attempts, last);
		}
		cr_log(CR_LOG_WARN, "%s: %s; retry %d of %d in %ld ms", p, last, retry + 1,
		       c->cfg.max_retries, delay);
		if (!wait_ms(c, delay))
			return cr_failx(err, ECANCELED, "%s: cancelled", p);
	}
}

int llm_complete(struct llm_client *c, const struct llm_conv *conv, const struct llm_tool *tools,
		 size_t n_tools, struct llm_reply *out, struct cr_err *err)
{
	llm_reply_init(out, c ? c->cfg.provider : LLM_OPENAI);
	if (!c || !conv || (n_tools && !tools))
		return cr_failx(err, EINVAL, "llm_complete: bad arguments");
	llm_copy_clip(out->model, sizeof out->model, c->cfg.model);
	long t0 = now_ms();
	char *body = llm_request_body(&c->cfg, conv, tools, n_tools, err);
	if (!body)
		return cr_wrap(err, "%s", llm_provider_name(c->cfg.provider));
	struct attempt a = {.c = c};
	cr_buf_init(&a.body, c->cfg.max_reply_bytes);
	int rc = complete(c, body, strlen(body), &a, out, err);
	cr_buf_free(&a.body);
	free(body);
	out->elapsed_ms = now_ms() - t0;
	if (rc == 0)
		llm_estimate_cost(&c->cfg, &out->usage, &out->cost_usd, &out->cost_known);
	return rc;
}
