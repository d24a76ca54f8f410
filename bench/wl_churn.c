/*
 * dskvs-bench workloads churn-members and churn-colls: what a write costs,
 * and what the store holds in memory, when keys keep being created and
 * deleted while the live count stays put (DESIGN.md section 4, rule 7:
 * the cost of a write and the memory of a table depend on what it holds
 * now, never on its history).
 *
 * A fresh store is loaded with L live keys (--churn-live); then each step
 * puts a new key and deletes the oldest live one (a FIFO), so L keys stay
 * live, for T steps in all (--churn, default --keys). Two cases:
 *   churn-members  one collection ("churn") holding the L live members:
 *                  the member table sees the churn;
 *   churn-colls    L live collections of one member each: a step creates a
 *                  collection by putting its member and drops the oldest
 *                  one by deleting its only member: the table of
 *                  collections sees the churn.
 * The T steps are cut into 10 windows of T/10 steps, each timed on its own:
 * steps (put + delete pairs) per second, and the p99 of one step in
 * --lat-every, per window. A store whose cost grows with its history shows
 * it as windows that get slower. RSS is measured before the store is
 * opened, after the load (the "before" figure) and after the churn
 * ("after"), each after the engine's sync and quiesce, and once more a
 * second later ("idle": dskvs's janitor trims the heap when its store
 * goes quiet); the figures
 * reported are the store's (RSS minus the RSS before the open), with the
 * heap in use (mallinfo2) beside them, which glibc's retention of freed
 * pages does not blur.
 *
 * The key strings of a window are formatted before it is timed, into two
 * buffers allocated and touched before the first RSS figure. The run is
 * one thread, the caller's; between windows (untimed) the engine's quiesce
 * runs (the thread leaves and comes back), so ceiling's parked memory is freed
 * as the harness frees it between runs. A run that passes 10 x --fill-cap
 * seconds is cut there and reported partial (the windows never reached are
 * missing).
 */
#include <inttypes.h>
#include <unistd.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <x86intrin.h>

#include "workload.h"

#define WINDOWS 10
#define MAXSLOT 16 /* engines; nengines is checked against it */

struct churn_case {
	int colls; /* 0: members of one collection; 1: one-member colls */
};

/* One repetition of one engine, kept for the medians of report. */
struct churn_rep {
	int nwin; /* windows measured (fewer: cut at the cap) */
	double ops_s[WINDOWS], p99[WINDOWS];
	uint64_t rss_before, rss_after, rss_idle, heap_before, heap_after;
};

static struct churn_rep reps[2][MAXSLOT][MAXREPS];

static uint64_t churn_total(void)
{
	return cfg.churn ? cfg.churn : cfg.keys;
}

static uint64_t churn_live(void)
{
	return cfg.churn_live ? cfg.churn_live : 10000;
}

/* Key i of a case into p (cap bytes); sets *k. */
static void churn_key(const struct churn_case *cc, uint64_t i, char *p,
                      size_t cap, struct bkey *k)
{
	int n;

	if (cc->colls) {
		n = snprintf(p, cap, "k%0*" PRIu64 "/m", (int)cfg.key_size, i);
		k->coll_len = (size_t)n - 2;
	} else {
		n = snprintf(p, cap, "churn/%0*" PRIu64, (int)cfg.key_size, i);
		k->coll_len = 5;
	}
	k->full = p;
	k->full_len = (size_t)n;
}

/* Keys [first, first + n) into ks[] / mem (stride bytes each). */
static void churn_keys(const struct churn_case *cc, uint64_t first, uint64_t n,
                       struct bkey *ks, char *mem, size_t stride)
{
	for (uint64_t j = 0; j < n; j++)
		churn_key(cc, first + j, mem + j * stride, stride, &ks[j]);
}

static void note_m(struct measured *m, int rc)
{
	m->errs++;
	if (m->err_rc == 0)
		m->err_rc = rc;
}

static uint64_t heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

/* Sync, and let the engine free what it parked: quiesce wants no thread
 * inside, so this thread leaves (thread_end) and comes back. */
static void settle(const struct bench_engine *e, void *db, void **tctx,
                   int sync)
{
	if (sync && e->sync)
		e->sync(db);
	if (e->thread_end)
		e->thread_end(db, *tctx);
	if (e->quiesce)
		e->quiesce(db);
	*tctx = e->thread_begin ? e->thread_begin(db) : NULL;
}

static struct measured run_churn(struct wl_round *r, struct eslot *s,
                                 struct cell *c)
{
	const struct churn_case *cc = r->w->param;
	const struct bench_engine *e = s->e;
	struct measured m = { 0 };
	uint64_t total = churn_total(), live = churn_live();
	uint64_t per = total / WINDOWS;
	size_t stride = (cfg.key_size + 16 + 7) & ~(size_t)7;
	size_t si = (size_t)(s - slots);
	struct churn_rep *rp = &reps[cc->colls][si][c->n];
	uint64_t *hist = xcalloc(HBUCKETS, sizeof(uint64_t));
	uint64_t *whist = xcalloc(HBUCKETS, sizeof(uint64_t));
	uint64_t maxw = per + total % WINDOWS;
	uint64_t nbuf = maxw > live ? maxw : live;
	struct bkey *pk = xcalloc(nbuf, sizeof(*pk));
	struct bkey *dk = xcalloc(nbuf, sizeof(*dk));
	char *pmem = xcalloc(nbuf, stride), *dmem = xcalloc(nbuf, stride);
	unsigned int lat_mask = cfg.lat_every - 1;
	char d[4200];
	int rc;

	memset(rp, 0, sizeof(*rp));
	if (si >= MAXSLOT) {
		c->skipped = 1;
		snprintf(c->why, sizeof(c->why), "more engines than MAXSLOT");
		goto out;
	}
	/* the buffers are touched (calloc'd and written once) before rss0 */
	churn_keys(cc, 0, nbuf, pk, pmem, stride);
	churn_keys(cc, 0, nbuf, dk, dmem, stride);
	malloc_trim(0);
	uint64_t rss0 = rss_bytes(), heap0 = heap_bytes();
	snprintf(d, sizeof(d), "%s/%s.run", cfg.dir, e->name);
	void *db = open_engine(e, d, 0, 0, 1, r->vsize, live);
	if (db == NULL) {
		c->skipped = 1;
		snprintf(c->why, sizeof(c->why), "open failed");
		goto out;
	}
	void *tctx = e->thread_begin ? e->thread_begin(db) : NULL;

	/* the live set: keys [0, live) */
	for (uint64_t j = 0; j < live; j++)
		if ((rc = e->put(db, tctx, &pk[j], value_for(j), r->vsize)))
			note_m(&m, rc);
	settle(e, db, &tctx, 1);
	rp->rss_before = rss_bytes() - rss0;
	rp->heap_before = heap_bytes() - heap0;

	/* step j puts key live + j and deletes key j */
	double cap = 10 * cfg.fill_cap, t_start = now_s();
	uint64_t done = 0;
	for (int wi = 0; wi < WINDOWS; wi++) {
		uint64_t n = wi == WINDOWS - 1 ? per + total % WINDOWS : per;
		uint64_t lo = (uint64_t)wi * per, j = 0;
		int cut = 0;

		churn_keys(cc, live + lo, n, pk, pmem, stride);
		churn_keys(cc, lo, n, dk, dmem, stride);
		memset(whist, 0, HBUCKETS * sizeof(uint64_t));
		double t0 = now_s();
		for (j = 0; j < n; j++) {
			const char *v = value_for(live + lo + j);
			if (__builtin_expect((j & lat_mask) == 0, 0)) {
				uint64_t t = __rdtsc();
				rc = e->put(db, tctx, &pk[j], v, r->vsize);
				int rd = e->del(db, tctx, &dk[j]);
				whist[hbucket(__rdtsc() - t)]++;
				if (rd)
					note_m(&m, rd);
				/* the clock, once in a while: the cap */
				if ((j & 4095) == 0 && now_s() - t_start > cap)
					cut = 1;
			} else {
				rc = e->put(db, tctx, &pk[j], v, r->vsize);
				int rd = e->del(db, tctx, &dk[j]);
				if (rd)
					note_m(&m, rd);
			}
			if (rc)
				note_m(&m, rc);
			if (cut) {
				j++;
				break;
			}
		}
		double t = now_s() - t0;
		done += j;
		m.secs += t;
		for (int b = 0; b < HBUCKETS; b++)
			hist[b] += whist[b];
		rp->ops_s[wi] = t > 0 ? (double)j / t : 0;
		rp->p99[wi] = hpercentile(whist, 0.99);
		rp->nwin = wi + 1;
		fprintf(stderr,
		        "    %-10s %s window %2d/%d: %9.0f pairs/s  p99 %7.0f "
		        "ns%s\n",
		        e->name, r->w->name, wi + 1, WINDOWS, rp->ops_s[wi],
		        rp->p99[wi], cut ? "  (cut at the time cap)" : "");
		if (cut)
			break;
		settle(e, db, &tctx, 0);
	}
	settle(e, db, &tctx, 1);
	rp->rss_after = rss_bytes() - rss0;
	rp->heap_after = heap_bytes() - heap0;
	/* And once the store has been idle a second: dskvs's janitor gives
	 * freed pages back then (README, "Memory over time"). */
	sleep(1);
	rp->rss_idle = rss_bytes() - rss0;
	if (e->thread_end)
		e->thread_end(db, tctx);
	e->close(db);
	rm_rf(d);
	m.ops = done;
	m.p50 = hpercentile(hist, 0.50);
	m.p99 = hpercentile(hist, 0.99);
	m.p999 = hpercentile(hist, 0.999);
	c->want = total;
out:
	free(hist);
	free(whist);
	free(pk);
	free(dk);
	free(pmem);
	free(dmem);
	return m;
}

static const char *mib(uint64_t b, char *buf, size_t n)
{
	snprintf(buf, n, "%.1fMiB", (double)b / 1048576.0);
	return buf;
}

static void report_churn(struct result *res, struct cell *c)
{
	const struct churn_case *cc = NULL;
	size_t si = (size_t)(c->slot - slots);
	double v[MAXREPS], ops[WINDOWS], p99[WINDOWS];
	double rb, ra, hb, ha;
	int nwin = WINDOWS;
	char a[32], b[32], x[32], y[32], z[32];

	for (size_t i = 0; i < nworkloads; i++)
		if (strcmp(bench_workloads[i]->name, res->workload) == 0)
			cc = bench_workloads[i]->param;
	if (cc == NULL || si >= MAXSLOT || c->n == 0)
		return;
	struct churn_rep *rp = reps[cc->colls][si];
	for (int i = 0; i < c->n; i++)
		if (rp[i].nwin < nwin)
			nwin = rp[i].nwin;
	for (int wi = 0; wi < nwin; wi++) {
		for (int i = 0; i < c->n; i++)
			v[i] = rp[i].ops_s[wi];
		ops[wi] = median(v, c->n);
		for (int i = 0; i < c->n; i++)
			v[i] = rp[i].p99[wi];
		p99[wi] = median(v, c->n);
	}
#define MED(f)                                  \
	({                                      \
		for (int i = 0; i < c->n; i++)  \
			v[i] = (double)rp[i].f; \
		median(v, c->n);                \
	})
	rb = MED(rss_before);
	ra = MED(rss_after);
	double ri = MED(rss_idle);
	hb = MED(heap_before);
	ha = MED(heap_after);
#undef MED
	appendf(res->extra, sizeof(res->extra),
	        "%slive=%" PRIu64 " win_ops_s=", res->extra[0] ? " " : "",
	        churn_live());
	for (int wi = 0; wi < nwin; wi++)
		appendf(res->extra, sizeof(res->extra), "%s%.0f", wi ? "," : "",
		        ops[wi]);
	appendf(res->extra, sizeof(res->extra), " win_p99_ns=");
	for (int wi = 0; wi < nwin; wi++)
		appendf(res->extra, sizeof(res->extra), "%s%.0f", wi ? "," : "",
		        p99[wi]);
	if (nwin == WINDOWS && ops[0] > 0)
		appendf(res->extra, sizeof(res->extra), " last_vs_first=%.2f",
		        ops[WINDOWS - 1] / ops[0]);
	appendf(res->extra, sizeof(res->extra),
	        " rss_before=%s rss_after=%s rss_idle=%s rss_ratio=%.2f "
	        "rss_idle_ratio=%.2f heap_before=%s heap_after=%s",
	        mib((uint64_t)rb, a, 32), mib((uint64_t)ra, b, 32),
	        mib((uint64_t)ri, z, 32), rb > 0 ? ra / rb : 0,
	        rb > 0 ? ri / rb : 0, mib((uint64_t)hb, x, 32),
	        mib((uint64_t)ha, y, 32));
}

static void setup_churn(const struct bench_workload *w, size_t *vsize)
{
	(void)vsize;
	if (nengines > MAXSLOT)
		die("%s: more engines than MAXSLOT", w->name);
	if (churn_total() < WINDOWS)
		die("--churn must be at least %d", WINDOWS);
	fprintf(stderr,
	        "  %s: %" PRIu64 " live keys, %" PRIu64
	        " churned (put + delete pairs) in %d windows\n",
	        w->name, churn_live(), churn_total(), WINDOWS);
}

static const struct churn_case case_members = { 0 }, case_colls = { 1 };

const struct bench_workload wl_churn_members = {
	.name = "churn-members",
	.what = "key churn in one collection: put new + delete oldest, live "
	        "count constant (ops = pairs)",
	.param = &case_members,
	.fixed_threads = 1,
	.no_preload = 1,
	.no_warmup = 1,
	.no_chart = 1,
	.setup = setup_churn,
	.prepare = wl_prepare_nothing,
	.run = run_churn,
	.report = report_churn,
};

const struct bench_workload wl_churn_colls = {
	.name = "churn-colls",
	.what = "collection churn: one-member collections created and dropped, "
	        "live count constant (ops = pairs)",
	.param = &case_colls,
	.fixed_threads = 1,
	.no_preload = 1,
	.no_warmup = 1,
	.no_chart = 1,
	.setup = setup_churn,
	.prepare = wl_prepare_nothing,
	.run = run_churn,
	.report = report_churn,
};
