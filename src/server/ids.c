/* server/ids.c -- the front's map from public sandbox ids to engine sessions.
 *
 * Public ids are "sb_" + 16 random hex digits (getrandom): unguessable, so an id seen in a log
 * grants nothing, and every lookup also checks the owner (the caller's key): another key's
 * sandbox is "not found", exactly like one that never existed.  The engine's session numbers
 * are small counters and never leave this file's callers.  One mutex; the table is a chained
 * hash with a fixed bucket array and a hard cap on entries (refused with -EAGAIN past it).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/text.h"
#include "server/e2b_json.h"
#include "server/srv_internal.h"

struct entry {
	struct srv_sandbox sb;
	json_t *contexts;        /* array of names, or NULL */
	uint32_t pid;            /* the running E2B command, 0 = none */
	char tag[SRV_TAG_MAX];
	json_t *process;
	struct entry *next;
};

static void entry_free(struct entry *e)
{
	json_decref(e->sb.metadata);
	json_decref(e->contexts);
	json_decref(e->process);
	free(e);
}

static struct {
	pthread_mutex_t lock;
	struct entry **buckets;
	size_t n_buckets, n, cap;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

int srv_ids_init(size_t capacity, struct cr_err *err)
{
	g.cap = capacity;
	g.n_buckets = 64;
	while (g.n_buckets < capacity && g.n_buckets < (1u << 20))
		g.n_buckets <<= 1;
	g.buckets = calloc(g.n_buckets, sizeof *g.buckets);
	return g.buckets ? 0 : cr_fail(err, ENOMEM, "id map");
}

void srv_ids_free(void)
{
	pthread_mutex_lock(&g.lock);
	for (size_t i = 0; g.buckets && i < g.n_buckets; i++) {
		for (struct entry *e = g.buckets[i], *next; e; e = next) {
			next = e->next;
			entry_free(e);
		}
	}
	free(g.buckets);
	g.buckets = NULL;
	g.n = 0;
	pthread_mutex_unlock(&g.lock);
}

/* The id's hex digits are random: they are their own hash. */
static size_t bucket_of(const char *id)
{
	size_t h = 0;
	for (const char *p = id; *p; p++)
		h = h * 31 + (unsigned char)*p;
	return h & (g.n_buckets - 1);
}

static bool id_wellformed(const char *id)
{
	if (!id || strlen(id) != SRV_ID_LEN || strncmp(id, "sb_", 3))
		return false;
	for (const char *p = id + 3; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static struct entry *find(const char *id)
{
	for (struct entry *e = g.buckets[bucket_of(id)]; e; e = e->next)
		if (!strcmp(e->sb.id, id))
			return e;
	return NULL;
}

static void copy_out(const struct entry *e, struct srv_sandbox *out)
{
	*out = e->sb;
	json_incref(out->metadata);
}

int srv_ids_add(int owner, uint64_t session, uint32_t mode, json_t *metadata,
		const char *template_id, struct srv_sandbox *out, struct cr_err *err)
{
	struct entry *e = calloc(1, sizeof *e);
	if (!e)
		return cr_fail(err, ENOMEM, "id map");
	unsigned char tok[SRV_TOKEN_LEN / 2];
	if (getrandom(tok, sizeof tok, 0) != (ssize_t)sizeof tok) {
		free(e);
		return cr_fail(err, EIO, "getrandom");
	}
	for (size_t i = 0; i < sizeof tok; i++)
		snprintf(e->sb.token + 2 * i, 3, "%02x", tok[i]);
	snprintf(e->sb.template_id, sizeof e->sb.template_id, "%s",
		 template_id ? template_id : "base");
	e->sb.session = session;
	e->sb.owner = owner;
	e->sb.mode = mode;
	e->sb.created_unix_ms = srv_unix_ms();
	e->sb.added_mono_ms = srv_now_us() / 1000;
	e->sb.metadata = json_incref(metadata);
	pthread_mutex_lock(&g.lock);
	if (g.n >= g.cap) {
		pthread_mutex_unlock(&g.lock);
		json_decref(e->sb.metadata);
		free(e);
		return cr_failx(err, EAGAIN, "the id map is full");
	}
	for (int tries = 0;; tries++) {
		unsigned char rnd[8];
		if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd || tries > 8) {
			pthread_mutex_unlock(&g.lock);
			json_decref(e->sb.metadata);
			free(e);
			return cr_fail(err, EIO, "getrandom");
		}
		snprintf(e->sb.id, sizeof e->sb.id, "sb_%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0],
			 rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
		if (!find(e->sb.id))
			break;
	}
	size_t b = bucket_of(e->sb.id);
	e->next = g.buckets[b];
	g.buckets[b] = e;
	g.n++;
	copy_out(e, out);
	pthread_mutex_unlock(&g.lock);
	return 0;
}

int srv_ids_get(const char *id, int owner, struct srv_sandbox *out)
{
	if (!id_wellformed(id))
		return -ENOENT;
	pthread_mutex_lock(&g.lock);
	struct entry *e = find(id);
	int r = -ENOENT;
	if (e && e->sb.owner == owner) {
		copy_out(e, out);
		r = 0;
	}
	pthread_mutex_unlock(&g.lock);
	return r;
}

int srv_ids_get_by_token(const char *id, const char *token, struct srv_sandbox *out)
{
	if (!id_wellformed(id))
		return -ENOENT;
	pthread_mutex_lock(&g.lock);
	struct entry *e = find(id);
	int r = -ENOENT;
	if (e) {
		r = -EACCES;
		if (token && cr_consttime_eq(token, strlen(token), e->sb.token, SRV_TOKEN_LEN)) {
			copy_out(e, out);
			r = 0;
		}
	}
	pthread_mutex_unlock(&g.lock);
	return r;
}

/* The entry of a well-formed id, under the lock (NULL: none); the caller unlocks. */
static struct entry *locked(const char *id)
{
	if (!id_wellformed(id))
		return NULL;
	pthread_mutex_lock(&g.lock);
	struct entry *e = find(id);
	if (!e)
		pthread_mutex_unlock(&g.lock);
	return e;
}

static ssize_t ctx_index(const struct entry *e, const char *ctx)
{
	size_t i;
	json_t *v;
	json_array_foreach(e->contexts, i, v)
		if (!strcmp(json_string_value(v), ctx))
			return (ssize_t)i;
	return -1;
}

int srv_ids_ctx_add(const char *id, const char *ctx)
{
	struct entry *e = locked(id);
	if (!e)
		return -ENOENT;
	int r = 0;
	if (!e->contexts && !(e->contexts = json_array()))
		r = -ENOMEM;
	else if (!strcmp(ctx, "default") || ctx_index(e, ctx) >= 0)
		r = -EEXIST;
	else if (json_array_size(e->contexts) + 1 >= E2B_CONTEXTS_MAX)
		r = -ENOSPC;
	else if (json_array_append_new(e->contexts, json_string(ctx)) < 0)
		r = -ENOMEM;
	pthread_mutex_unlock(&g.lock);
	return r;
}

int srv_ids_ctx_remove(const char *id, const char *ctx)
{
	struct entry *e = locked(id);
	if (!e)
		return -ENOENT;
	ssize_t i = e->contexts ? ctx_index(e, ctx) : -1;
	if (i >= 0)
		json_array_remove(e->contexts, (size_t)i);
	pthread_mutex_unlock(&g.lock);
	return i >= 0 ? 0 : -ENOENT;
}

bool srv_ids_ctx_has(const char *id, const char *ctx)
{
	if (!strcmp(ctx, "default"))
		return true;
	struct entry *e = locked(id);
	if (!e)
		return false;
	bool has = e->contexts && ctx_index(e, ctx) >= 0;
	pthread_mutex_unlock(&g.lock);
	return has;
}

json_t *srv_ids_ctx_list(const char *id)
{
	struct entry *e = locked(id);
	if (!e)
		return NULL;
	json_t *a = e->contexts ? json_deep_copy(e->contexts) : json_array();
	pthread_mutex_unlock(&g.lock);
	return a;
}

int srv_ids_set_process(const char *id, uint32_t pid, const char *tag, json_t *config)
{
	struct entry *e = locked(id);
	if (!e) {
		json_decref(config);
		return -ENOENT;
	}
	json_decref(e->process);
	e->process = pid ? config : NULL;
	if (!pid)
		json_decref(config);
	e->pid = pid;
	snprintf(e->tag, sizeof e->tag, "%s", pid && tag ? tag : "");
	pthread_mutex_unlock(&g.lock);
	return 0;
}

int srv_ids_get_process(const char *id, uint32_t *pid, char *tag, size_t tag_n,
			json_t **config)
{
	struct entry *e = locked(id);
	if (!e)
		return -ENOENT;
	int r = -ENOENT;
	if (e->pid) {
		*pid = e->pid;
		if (tag_n)
			snprintf(tag, tag_n, "%s", e->tag);
		if (config)
			*config = json_incref(e->process);
		r = 0;
	}
	pthread_mutex_unlock(&g.lock);
	return r;
}

int srv_ids_remove(const char *id, int owner)
{
	if (!id_wellformed(id))
		return -ENOENT;
	pthread_mutex_lock(&g.lock);
	struct entry **pp = &g.buckets[bucket_of(id)];
	int r = -ENOENT;
	for (; *pp; pp = &(*pp)->next) {
		struct entry *e = *pp;
		if (strcmp(e->sb.id, id) || e->sb.owner != owner)
			continue;
		*pp = e->next;
		g.n--;
		entry_free(e);
		r = 0;
		break;
	}
	pthread_mutex_unlock(&g.lock);
	return r;
}

int srv_ids_list(int owner, struct srv_sandbox **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&g.lock);
	struct srv_sandbox *v = g.n ? calloc(g.n, sizeof *v) : NULL;
	if (g.n && !v) {
		pthread_mutex_unlock(&g.lock);
		return -ENOMEM;
	}
	size_t k = 0;
	for (size_t i = 0; i < g.n_buckets; i++)
		for (struct entry *e = g.buckets[i]; e; e = e->next)
			if (e->sb.owner == owner)
				copy_out(e, &v[k++]);
	pthread_mutex_unlock(&g.lock);
	*out = v;
	*n = k;
	return 0;
}

void srv_ids_release(struct srv_sandbox *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_decref(v[i].metadata);
	free(v);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

size_t srv_ids_prune(const uint64_t *sessions, size_t n, uint64_t snapshot_mono_ms)
{
	uint64_t *sorted = n ? malloc(n * sizeof *sorted) : NULL;
	if (n && !sorted)
		return 0;
	if (n) { /* (qsort of NULL is undefined even for 0 elements: UBSan aborts on it) */
		memcpy(sorted, sessions, n * sizeof *sorted);
		qsort(sorted, n, sizeof *sorted, cmp_u64);
	}
	size_t removed = 0;
	pthread_mutex_lock(&g.lock);
	for (size_t i = 0; i < g.n_buckets; i++) {
		struct entry **pp = &g.buckets[i];
		while (*pp) {
			struct entry *e = *pp;
			bool live = n && bsearch(&e->sb.session, sorted, n, sizeof *sorted, cmp_u64);
			if (live || e->sb.added_mono_ms >= snapshot_mono_ms) {
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			g.n--;
			entry_free(e);
			removed++;
		}
	}
	pthread_mutex_unlock(&g.lock);
	free(sorted);
	return removed;
}

size_t srv_ids_count(void)
{
	pthread_mutex_lock(&g.lock);
	size_t n = g.n;
	pthread_mutex_unlock(&g.lock);
	return n;
}
