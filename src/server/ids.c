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

#include "server/srv_internal.h"

struct entry {
	struct srv_sandbox sb;
	struct entry *next;
};

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
			json_decref(e->sb.metadata);
			free(e);
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
		struct srv_sandbox *out, struct cr_err *err)
{
	struct entry *e = calloc(1, sizeof *e);
	if (!e)
		return cr_fail(err, ENOMEM, "id map");
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
		json_decref(e->sb.metadata);
		free(e);
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
	if (n)
		memcpy(sorted, sessions, n * sizeof *sorted);
	qsort(sorted, n, sizeof *sorted, cmp_u64);
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
			json_decref(e->sb.metadata);
			free(e);
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
