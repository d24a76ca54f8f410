/*
 * dskvs-bench workload go-original: the original Go library's concurrency
 * benchmark on a fresh store of its own.
 */
#include <stdio.h>
#include <stdlib.h>

#include "workload.h"

/* Paths are built into fixed buffers far larger than any real store path;
 * a truncated one just fails to open. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

/* The original Go library's concurrency benchmark: 100 goroutines, 8192
 * keys of one collection, 1000-byte values; every goroutine puts its share,
 * puts it again, gets it and deletes it, the phases one after the other. */
struct go_arg {
	const struct bench_engine *e;
	void *db;
	int id;
	pthread_barrier_t *bar;
	uint64_t *hist;
	uint64_t errs;
	struct bkey *k;
};

#define GO_KEYS    8192
#define GO_THREADS 100

static void *go_worker(void *p)
{
	struct go_arg *a = p;
	void *tctx = a->e->thread_begin ? a->e->thread_begin(a->db) : NULL;
	char buf[1024];
	size_t len;

	for (int phase = 0; phase < 4; phase++) {
		pthread_barrier_wait(a->bar);
		for (int i = a->id; i < GO_KEYS; i += GO_THREADS) {
			uint64_t t = __rdtsc();
			int rc;
			if (phase < 2)
				rc = a->e->put(a->db, tctx, &a->k[i],
				               value_for((uint64_t)i + phase),
				               1000);
			else if (phase == 2)
				rc = a->e->get(a->db, tctx, &a->k[i], buf,
				               sizeof(buf), &len);
			else
				rc = a->e->del(a->db, tctx, &a->k[i]);
			a->hist[hbucket(__rdtsc() - t)]++;
			if (rc != 0)
				a->errs++;
		}
		pthread_barrier_wait(a->bar);
	}
	if (a->e->thread_end)
		a->e->thread_end(a->db, tctx);
	return NULL;
}

static struct measured go_original(const struct bench_engine *e, void *db,
                                   double *phase)
{
	static struct bkey *k;
	static char *mem;
	pthread_t th[GO_THREADS];
	struct go_arg a[GO_THREADS];
	pthread_barrier_t bar;
	uint64_t *hist = xcalloc(HBUCKETS, sizeof(uint64_t));
	struct measured m = { 0 };

	if (k == NULL) {
		k = xmalloc(GO_KEYS * sizeof(*k));
		mem = xmalloc(GO_KEYS * 32);
		for (int i = 0; i < GO_KEYS; i++) {
			char *p = mem + i * 32;
			k[i].full = p;
			k[i].full_len = (size_t)snprintf(p, 32, "go/key%d", i);
			k[i].coll_len = 2;
		}
	}
	pthread_barrier_init(&bar, NULL, GO_THREADS + 1);
	for (int t = 0; t < GO_THREADS; t++) {
		a[t] = (struct go_arg){
			e, db, t, &bar, xcalloc(HBUCKETS, sizeof(uint64_t)),
			0, k
		};
		if (pthread_create(&th[t], NULL, go_worker, &a[t]) != 0)
			die("pthread_create failed");
	}
	double worst = 0, t0 = now_s();
	for (int phase = 0; phase < 4; phase++) {
		double p0 = now_s();
		pthread_barrier_wait(&bar); /* go */
		pthread_barrier_wait(&bar); /* done */
		double d = now_s() - p0;
		if (d > worst)
			worst = d;
	}
	m.secs = now_s() - t0;
	for (int t = 0; t < GO_THREADS; t++) {
		pthread_join(th[t], NULL);
		m.errs += a[t].errs;
		for (int b = 0; b < HBUCKETS; b++)
			hist[b] += a[t].hist[b];
		free(a[t].hist);
	}
	pthread_barrier_destroy(&bar);
	m.ops = 4 * GO_KEYS;
	m.p50 = hpercentile(hist, 0.5);
	m.p99 = hpercentile(hist, 0.99);
	m.p999 = hpercentile(hist, 0.999);
	*phase = worst;
	free(hist);
	return m;
}

/* ---- output ------------------------------------------------------------- */

static struct measured run_go(struct wl_round *r, struct eslot *s,
                              struct cell *c)
{
	const struct bench_engine *e = s->e;
	struct measured m = { 0 };
	char d[4200];

	(void)r;
	snprintf(d, sizeof(d), "%s/%s.run", cfg.dir, e->name);
	void *db = open_engine(e, d, 0, 0, GO_THREADS, 1000, GO_KEYS);
	if (db == NULL) {
		c->skipped = 1;
		return m;
	}
	/* aux holds the phase that took longest */
	m = go_original(e, db, &c->aux[c->n]);
	e->close(db);
	rm_rf(d);
	return m;
}

const struct bench_workload wl_go_original = {
	.name = "go-original",
	.what = "Go dskvs concurrency bench: 8192 keys, 1000 B, 100 threads",
	.in_quick = 1,
	.fixed_threads = GO_THREADS,
	.no_preload = 1,
	.quick_no_warmup = 1,
	.no_chart = 1,
	.result_keys = GO_KEYS,
	.result_vsize = 1000,
	.prepare = wl_prepare_nothing,
	.run = run_go,
};
