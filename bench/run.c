/*
 * dskvs-bench: one measured run — the workers that run a workload's loop
 * between a start barrier and a stop flag (or through their slice of a
 * count-bounded order), the cells that collect the repetitions, and the
 * fresh-store run that the write workloads share.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "workload.h"

/* Paths are built into fixed buffers far larger than any real store path;
 * a truncated one just fails to open. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

void note_err(struct worker *w, int rc)
{
	w->errs++;
	if (w->r->err_rc == 0)
		w->r->err_rc = rc;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->r;
	const struct bench_engine *e = r->e;
	void *db = r->db;
	void *tctx = e->thread_begin ? e->thread_begin(db) : NULL;

	pthread_barrier_wait(&r->start);
	struct timespec c0, c1;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	w->t0 = now_s();
	w->n = r->w->loop(w, tctx);
	w->t1 = now_s();
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	w->cpu = (double)(c1.tv_sec - c0.tv_sec) +
	         (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
	if (e->thread_end)
		e->thread_end(db, tctx);
	atomic_fetch_add(&r->finished, 1);
	return NULL;
}

struct measured run_once(const struct bench_engine *e, void *db,
                         const struct bench_workload *w, int threads,
                         struct streams *st, const uint64_t *order,
                         uint64_t norder, size_t vsize, double secs)
{
	struct run r = { 0 };
	struct worker *ws;
	int extra = w->extra_writer ? 1 : 0;
	int nth = threads + extra;
	struct measured m = { 0 };
	uint64_t *hist = xcalloc(HBUCKETS, sizeof(uint64_t));

	r.e = e;
	r.db = db;
	r.w = w;
	r.vsize = vsize;
	r.order = order;
	r.lat_mask = cfg.lat_every - 1;
	atomic_store(&r.next_insert, cfg.keys);
	pthread_barrier_init(&r.start, NULL, (unsigned int)nth + 1);
	ws = xcalloc((size_t)nth, sizeof(*ws));
	for (int t = 0; t < nth; t++) {
		struct worker *wk = &ws[t];
		wk->r = &r;
		wk->id = t;
		wk->writer = t >= threads;
		wk->idx =
		    st ? st->idx[t < st->threads ? t : st->threads] : NULL;
		wk->ops =
		    st ? st->ops[t < st->threads ? t : st->threads] : NULL;
		if (order) {
			wk->lo = norder * (uint64_t)t / (uint64_t)threads;
			wk->hi = norder * (uint64_t)(t + 1) / (uint64_t)threads;
		}
		wk->hist = xcalloc(HBUCKETS, sizeof(uint64_t));
		wk->cap = vsize + 65536;
		wk->buf = xmalloc(wk->cap);
		if (pthread_create(&wk->th, NULL, worker_main, wk) != 0)
			die("pthread_create failed");
	}
	pthread_barrier_wait(&r.start);
	double t0 = now_s();
	struct timespec p0, p1 = { 0, 0 };
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &p0);
	if (order == NULL) {
		struct timespec ts = { (time_t)secs,
			               (long)((secs - (time_t)secs) * 1e9) };
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
		atomic_store(&r.stop, 1);
	} else {
		/* Count-bounded, but a slow engine is cut off at fill_cap
		 * seconds (reported as a partial run) so one store cannot
		 * hold the whole comparison up. */
		struct timespec ms = { 0, 1000000 };
		while (atomic_load(&r.finished) < nth) {
			if (now_s() - t0 > cfg.fill_cap) {
				atomic_store(&r.stop, 1);
				break;
			}
			nanosleep(&ms, NULL);
		}
	}
	for (int t = 0; t < nth; t++)
		pthread_join(ws[t].th, NULL);
	m.secs = now_s() - t0;
	if (w->writes) {
		/* What the writes cost until they are on disk: the engine's
		 * threads finish their share inside the sync. */
		if (e->sync)
			(void)e->sync(db);
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &p1);
	}
	if (order) {
		/* the workers' own span: a fast engine can be done before this
		 * thread, on a busy core, even reads t0 */
		double a = ws[0].t0, b = ws[0].t1;
		for (int t = 1; t < threads; t++) {
			a = ws[t].t0 < a ? ws[t].t0 : a;
			b = ws[t].t1 > b ? ws[t].t1 : b;
		}
		m.secs = b - a;
	}
	double cpu = 0;
	for (int t = 0; t < threads; t++) {
		cpu += ws[t].cpu;
		m.ops += ws[t].n;
		m.errs += ws[t].errs;
		m.items += ws[t].items;
		for (int b = 0; b < HBUCKETS; b++)
			hist[b] += ws[t].hist[b];
	}
	for (int t = 0; t < nth; t++) {
		free(ws[t].hist);
		free(ws[t].buf);
	}
	m.cpu_ns_op = m.ops ? cpu * 1e9 / (double)m.ops : 0;
	if (w->writes && m.ops)
		m.pcpu_ns_op = ((double)(p1.tv_sec - p0.tv_sec) * 1e9 +
		                (double)(p1.tv_nsec - p0.tv_nsec)) /
		               (double)m.ops;
	m.p50 = hpercentile(hist, 0.50);
	m.p99 = hpercentile(hist, 0.99);
	m.p999 = hpercentile(hist, 0.999);
	m.err_rc = r.err_rc;
	free(hist);
	free(ws);
	pthread_barrier_destroy(&r.start);
	return m;
}

/* ---- cells --------------------------------------------------------------- */

void cell_add(struct cell *c, const struct measured *m)
{
	int i = c->n++;

	c->ops_s[i] = m->secs > 0 ? (double)m->ops / m->secs : 0;
	c->p50[i] = m->p50;
	c->p99[i] = m->p99;
	c->p999[i] = m->p999;
	c->cpu_ns_op[i] = m->cpu_ns_op;
	c->pcpu_ns_op[i] = m->pcpu_ns_op;
	c->secs[i] = m->secs;
	c->ops[i] = m->ops;
	c->items_s[i] = m->secs > 0 ? (double)m->items / m->secs : 0;
	c->errs += m->errs;
	if (c->err_rc == 0)
		c->err_rc = m->err_rc;
}

struct result *cell_result(struct cell *c, const struct bench_workload *w,
                           size_t vsize, uint64_t nkeys)
{
	struct result *res = add_result();
	double med = median(c->ops_s, c->n);
	int mi = 0;

	for (int i = 0; i < c->n; i++)
		if (fabs(c->ops_s[i] - med) < fabs(c->ops_s[mi] - med))
			mi = i;
	res->engine = c->slot->e->name;
	res->workload = w->name;
	res->threads = c->threads;
	res->keys = nkeys;
	res->value_size = vsize;
	res->ops = c->ops[mi];
	res->seconds = c->secs[mi];
	res->ops_s = med;
	res->p50 = median(c->p50, c->n);
	res->p99 = median(c->p99, c->n);
	res->p999 = median(c->p999, c->n);
	res->cpu_ns_op = median(c->cpu_ns_op, c->n);
	res->pcpu_ns_op = median(c->pcpu_ns_op, c->n);
	if (res->pcpu_ns_op > 0)
		appendf(res->extra, sizeof(res->extra), "cpu_all=%.0fns/op ",
		        res->pcpu_ns_op);
	res->rss = rss_bytes();
	res->nrep = c->n;
	memcpy(res->rep, c->ops_s, sizeof(double) * (size_t)c->n);
	if (c->want && res->ops < c->want)
		appendf(res->extra, sizeof(res->extra),
		        "partial=%.0f%% (cut at the time cap) ",
		        100.0 * (double)res->ops / (double)c->want);
	if (c->errs)
		appendf(res->extra, sizeof(res->extra),
		        "errors=%" PRIu64 " (first %d)", c->errs, c->err_rc);
	return res;
}

struct measured wl_run_fresh(struct wl_round *r, struct eslot *s,
                             struct cell *c, int sync_every,
                             void (*after)(struct wl_round *r, void *db,
                                           const char *dir, struct cell *c,
                                           const struct measured *m))
{
	const struct bench_engine *e = s->e;
	struct measured m = { 0 };
	char d[4200];

	snprintf(d, sizeof(d), "%s/%s.run", cfg.dir, e->name);
	void *db =
	    open_engine(e, d, sync_every, 0, r->threads, r->vsize, cfg.keys);
	if (db == NULL) {
		c->skipped = 1;
		snprintf(c->why, sizeof(c->why), "open failed");
		return m;
	}
	if (r->order)
		m = run_once(e, db, r->w, r->threads, NULL, r->order, r->norder,
		             r->vsize, 0);
	else
		m = run_once(e, db, r->w, r->threads, r->st, NULL, 0, r->vsize,
		             r->secs);
	if (after)
		after(r, db, d, c, &m);
	double tc = now_s();
	e->close(db);
	rm_rf(d);
	if (getenv("BENCH_DEBUG"))
		fprintf(stderr, "    [%s run %.3f s, close+rm %.3f s]\n",
		        e->name, m.secs, now_s() - tc);
	return m;
}

void wl_prepare_nothing(struct wl_round *r)
{
	(void)r;
}
