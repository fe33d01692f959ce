/* bench/bench_engine.c -- the engine's speed and memory, measured against a running
 * `corral engine` (bench/run.sh starts a private one).
 *
 *   bench_engine SOCKET MANAGER_PID [--rounds N] [--json OUT]
 *
 * warm_claim   create a session (claimed from a full warm pool) and run print(1) in it: the
 *              latency a client sees from "I want a sandbox" to "the result is back"; claims
 *              that were not served from the pool are counted and printed
 * warm_claim_back_to_back  the same without waiting for the pool to refill (claims overlap
 *              with the previous rounds' refills and teardowns)
 * live_cell    print(1) in a live stateful session
 * stateless    print(1) in a stateless session (a fresh fork of the warm interpreter per cell),
 *              back to back, then with 20 ms between cells
 * idle_pss     50 idle sessions: proportional set size of all their processes together
 * churn        sessions created, used once and destroyed per second, 4 client threads, 10 s;
 *              the manager's RSS and open fds before and after
 * A benchmark, not a test: it prints figures; docs/BENCHMARKS.md records them.
 */
#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/engine.h"

static const char *sock;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
	qsort(v, (size_t)n, sizeof *v, cmp);
	double k = (n - 1) * p;
	int lo = (int)k, hi = lo + 1 < n ? lo + 1 : lo;
	return v[lo] + (v[hi] - v[lo]) * (k - lo);
}

static struct eng_client *conn(void)
{
	struct cr_err err = {0};
	struct eng_client *c = eng_client_connect(sock, &err);
	if (!c) {
		fprintf(stderr, "bench: %s\n", err.msg);
		exit(1);
	}
	return c;
}

static int print1(struct eng_client *c, uint64_t sid)
{
	struct eng_final f;
	struct cr_err err = {0};
	if (eng_client_execute(c, sid, "print(1)", NULL, 0, 0, NULL, NULL, &f, &err) < 0 ||
	    f.status != ENG_F_OK) {
		fprintf(stderr, "bench: execute: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static uint64_t create(struct eng_client *c, uint32_t mode, uint32_t *pooled)
{
	struct eng_req_create req;
	memset(&req, 0, sizeof req);
	req.mode = mode;
	struct eng_rsp_created out;
	struct cr_err err = {0};
	if (eng_client_create(c, &req, NULL, &out, &err) < 0) {
		fprintf(stderr, "bench: create: %s\n", err.msg);
		exit(1);
	}
	if (pooled)
		*pooled = out.pooled;
	return out.session;
}

/* Waits until the warm pool holds at least n ready sessions (n = 0: the whole pool, i.e. every
 * refill has finished).  "Ready" is the engine's pool_ready: contained and with its runner warm
 * and waiting.  Returns false if that did not happen within 10 s. */
static bool wait_pool(struct eng_client *c, uint64_t n)
{
	for (int i = 0; i < 5000; i++) {
		struct eng_stats st;
		struct cr_err err;
		if (eng_client_stats(c, &st, &err) == 0 && st.pool_ready >= (n ? n : st.pool_target))
			return true;
		usleep(2000);
	}
	return false;
}

static void report(const char *name, double *v, int n, FILE *js, const char *target)
{
	double med = pct(v, n, 0.5), p90 = pct(v, n, 0.9), p99 = pct(v, n, 0.99);
	printf("| %-34s | %8.3f | %8.3f | %8.3f | %5d | %s |\n", name, med, p90, p99, n, target);
	fprintf(js, "  \"%s\": {\"median_ms\": %.4f, \"p90_ms\": %.4f, \"p99_ms\": %.4f, \"n\": %d},\n",
		name, med, p90, p99, n);
}

/* PSS (kB) of every process in the engine's session cgroups, plus the zygote's. */
static long pss_kb(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/smaps_rollup", pid);
	FILE *f = fopen(path, "r");
	long v = 0;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "Pss:", 4))
			v = strtol(line + 4, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static pid_t ppid_of(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	char *rp = strrchr(buf, ')');
	int pp = 0;
	if (rp)
		sscanf(rp + 2, "%*c %d", &pp);
	return pp;
}

/* PSS of this engine's sessions: their inits are the manager's children (CLONE_PARENT); the
 * rest of each session descends from its init.  Other engines on the machine are not counted. */
static long sessions_pss_kb(pid_t mgr, int *nproc, long *zygote_kb)
{
	long total = 0;
	*nproc = 0;
	*zygote_kb = 0;
	pid_t inits[4096];
	int ninit = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		pid_t pid = atoi(e->d_name);
		if (pid > 0 && ppid_of(pid) == mgr && ninit < 4096)
			inits[ninit++] = pid;
	}
	if (d)
		closedir(d);
	d = opendir("/proc");
	while (d && (e = readdir(d))) {
		pid_t pid = atoi(e->d_name);
		if (pid <= 0)
			continue;
		pid_t pp = ppid_of(pid);
		bool mine = false, is_init = false;
		for (int i = 0; i < ninit; i++) {
			if (pid == inits[i])
				mine = is_init = true;
			if (pp == inits[i])
				mine = true;
		}
		char path[64];
		snprintf(path, sizeof path, "/proc/%d", pid);
		struct stat st;
		if (is_init && stat(path, &st) == 0 && st.st_uid == 0) {
			*zygote_kb = pss_kb(pid); /* the zygote is the manager's child too, as root */
			continue;
		}
		if (mine) {
			total += pss_kb(pid);
			(*nproc)++;
		}
	}
	if (d)
		closedir(d);
	return total;
}

struct churn_arg {
	double until;
	long done;
};

static void *churn_thread(void *p)
{
	struct churn_arg *a = p;
	struct eng_client *c = conn();
	while (now_ms() < a->until) {
		uint64_t sid = create(c, ENG_STATEFUL, NULL);
		if (print1(c, sid) < 0)
			break;
		struct cr_err err;
		eng_client_destroy(c, sid, &err);
		a->done++;
	}
	eng_client_close(c);
	return NULL;
}

static long proc_status(pid_t pid, const char *key)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	long v = -1;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, key, strlen(key)))
			v = strtol(line + strlen(key), NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static int count_fds(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/fd", pid);
	DIR *d = opendir(path);
	int n = 0;
	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n - 2;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_engine SOCKET MANAGER_PID [--rounds N] [--json OUT] "
				"[--churn-only]\n");
		return 2;
	}
	sock = argv[1];
	pid_t mgr = atoi(argv[2]);
	int rounds = 200;
	const char *json = "build/bench/engine.json";
	bool churn_only = false;
	for (int i = 3; i < argc; i++)
		if (!strcmp(argv[i], "--churn-only"))
			churn_only = true;
	for (int i = 3; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--rounds"))
			rounds = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--json"))
			json = argv[i + 1];
	}
	FILE *js = fopen(json, "w");
	if (!js) {
		perror(json);
		return 1;
	}
	fprintf(js, "{\n");
	struct eng_client *c = conn();
	double *v = calloc((size_t)rounds * 4 + 64, sizeof *v);
	if (churn_only) /* for profiling the spawn path: the churn figure alone */
		goto churn;
	printf("| measure | median ms | p90 ms | p99 ms | n | target |\n|---|---|---|---|---|---|\n");

	/* warm claim -> first print(1), from a filled warm pool: every round waits until the pool
	 * is full again (the previous claim's refill done), then claims.  Rounds whose claim was not
	 * served from the pool are counted and reported, not silently dropped. */
	int n = 0, cold = 0, unfilled = 0;
	for (int i = 0; i < rounds; i++) {
		if (!wait_pool(c, 0))
			unfilled++;
		uint32_t pooled = 0;
		double t0 = now_ms();
		uint64_t sid = create(c, ENG_STATEFUL, &pooled);
		if (print1(c, sid) < 0)
			return 1;
		double dt = now_ms() - t0;
		struct cr_err err;
		eng_client_destroy(c, sid, &err);
		if (pooled)
			v[n++] = dt;
		else
			cold++;
	}
	report("warm_claim_then_print1", v, n, js, "median <= 2, p99 <= 10");
	if (cold || unfilled)
		printf("  (%d of %d claims were not served from the pool; the pool was not full before "
		       "%d rounds)\n", cold, rounds, unfilled);
	fprintf(js, "  \"warm_claim_not_pooled\": %d,\n", cold);

	/* the same, back to back: each claim as soon as one pooled session is ready, so claims
	 * overlap with the refills and teardowns of the previous rounds (a busy server) */
	n = cold = 0;
	for (int i = 0; i < rounds; i++) {
		wait_pool(c, 1);
		uint32_t pooled = 0;
		double t0 = now_ms();
		uint64_t sid = create(c, ENG_STATEFUL, &pooled);
		if (print1(c, sid) < 0)
			return 1;
		double dt = now_ms() - t0;
		struct cr_err err;
		eng_client_destroy(c, sid, &err);
		if (pooled)
			v[n++] = dt;
		else
			cold++;
	}
	report("warm_claim_back_to_back", v, n, js, "(no target: claims during refills)");
	if (cold)
		printf("  (%d of %d claims were not served from the pool)\n", cold, rounds);
	wait_pool(c, 0);

	/* live stateful print(1) */
	uint64_t sid = create(c, ENG_STATEFUL, NULL);
	print1(c, sid);
	for (int i = 0; i < rounds * 4; i++) {
		double t0 = now_ms();
		print1(c, sid);
		v[i] = now_ms() - t0;
	}
	report("live_stateful_print1", v, rounds * 4, js, "median <= 0.5");
	struct cr_err err;
	eng_client_destroy(c, sid, &err);

	/* stateless print(1) */
	sid = create(c, ENG_STATELESS, NULL);
	print1(c, sid);
	for (int i = 0; i < rounds; i++) {
		double t0 = now_ms();
		print1(c, sid);
		v[i] = now_ms() - t0;
	}
	report("stateless_print1", v, rounds, js, "median <= 5");
	/* the same with 20 ms between cells, as when a person or a model writes them */
	for (int i = 0; i < rounds; i++) {
		usleep(20000);
		double t0 = now_ms();
		print1(c, sid);
		v[i] = now_ms() - t0;
	}
	report("stateless_print1_spaced", v, rounds, js, "(no target: 20 ms between cells)");
	eng_client_destroy(c, sid, &err);

	/* 50 idle sessions */
	uint64_t ids[50];
	for (int i = 0; i < 50; i++) {
		ids[i] = create(c, ENG_STATEFUL, NULL);
		print1(c, ids[i]);
	}
	sleep(1);
	int nproc = 0;
	long zyg = 0;
	long pss = sessions_pss_kb(mgr, &nproc, &zyg);
	printf("\nidle sessions: 50 (+ the warm pool), processes %d, PSS together %.1f MiB, with the "
	       "zygote %.1f MiB (target <= 400 MiB)\n", nproc, pss / 1024.0, (pss + zyg) / 1024.0);
	fprintf(js, "  \"idle50_pss_mib\": %.1f,\n  \"idle50_pss_with_zygote_mib\": %.1f,\n"
		    "  \"idle50_processes\": %d,\n", pss / 1024.0, (pss + zyg) / 1024.0, nproc);
	for (int i = 0; i < 50; i++)
		eng_client_destroy(c, ids[i], &err);
	sleep(1);

churn:;
	long rss0 = proc_status(mgr, "VmRSS:"), fds0 = count_fds(mgr);
	struct churn_arg a[4];
	pthread_t th[4];
	double t0 = now_ms();
	for (int i = 0; i < 4; i++) {
		a[i] = (struct churn_arg){.until = t0 + 10000};
		pthread_create(&th[i], NULL, churn_thread, &a[i]);
	}
	long total = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		total += a[i].done;
	}
	double secs = (now_ms() - t0) / 1000;
	sleep(2);
	long rss1 = proc_status(mgr, "VmRSS:"), fds1 = count_fds(mgr);
	printf("churn: %.0f sessions/s (create + print(1) + destroy, 4 clients, %.1f s; target >= 200)\n",
	       total / secs, secs);
	printf("manager: RSS %ld -> %ld kB, fds %ld -> %ld\n", rss0, rss1, fds0, fds1);
	fprintf(js, "  \"churn_per_s\": %.1f,\n  \"manager_rss_kb\": [%ld, %ld],\n"
		    "  \"manager_fds\": [%ld, %ld]\n}\n", total / secs, rss0, rss1, fds0, fds1);
	fclose(js);
	eng_client_close(c);
	free(v);
	return 0;
}
