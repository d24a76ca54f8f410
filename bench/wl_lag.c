/*
 * dskvs-bench workload lag: at a steady rate of puts (1k, 10k and 100k a
 * second, then unthrottled), how long after a put returns dskvs reports
 * it durable, beside the fdatasync latency that bounds it. dskvs only (the
 * other engines have no tickets).
 *
 * DESIGN
 * - One writer puts random keys (--value-size bytes) into a fresh async
 *   store on an absolute schedule: put j is due at t0 + j / rate. It sleeps
 *   to the due time with clock_nanosleep(TIMER_ABSTIME) on CLOCK_MONOTONIC,
 *   its timer slack cut from the default 50 us to 1 ns (prctl) so the sleep
 *   is not rounded up; when it is behind it puts back to back until it has
 *   caught up, so the mean rate holds (an open-loop schedule: a slow put
 *   does not lower the rate). It sleeps rather than spins because this
 *   machine has 2 cores and the janitor and the observer need the other.
 * - After each put returns, the writer stores its ticket (dskvs_put_seq's
 *   sequence number) and the time, then publishes the count (release).
 * - An observer thread waits on dskvs_durable_fd() with poll(). On each
 *   wake-up it reads the fd (clearing it), then dskvs_durable_seq() and the
 *   clock, then (acquire) the published puts: each one the durable seq
 *   covers gets lag = that time - its return time (0 if it returned after
 *   the seq was read: durable already). It repeats until the next put is
 *   not covered, so a put published just after the count was read is not
 *   left to the next advance. The observer's own wake-up is part of the
 *   lag: it is what a user waiting on the fd sees.
 * - The fdatasync p50, p99 and max are dskvs_stats_get()'s, over the
 *   store's last 1024 fdatasyncs, taken when the run ends. The max matters:
 *   one slow fdatasync holds every put that arrives while it runs, so
 *   whenever rate x max is more than 1% of the puts, those puts fill the
 *   top 1% and the lag p99 is set by that one stall, however fast the
 *   other fdatasyncs are.
 * - A last row is unthrottled: puts back to back, so the queue fills and
 *   its backlog sets the lag (DSKVS_BENCH_QUEUE_CAPACITY picks the queue's
 *   size, to weigh the default). put_max_us shows a writer's longest wait
 *   for room in the queue.
 * - Each rate: --reps runs of --seconds on a fresh store (no warm-up: a
 *   fresh store is its own); the figures are medians over the runs. The
 *   p50/p99/p999 columns are the put call's own latency. The goals (lag
 *   p50 <= 1.3x fdatasync p50, p99 <= 2x fdatasync p99, at every rate) are
 *   checked with the others, in report.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "dskvs.h"
#include "workload.h"

/* Paths are built into fixed buffers far larger than any real store path;
 * a truncated one just fails to open. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

/* 0: unthrottled, puts back to back (the queue's backlog sets the lag). */
static const uint64_t lag_rates[] = { 1000, 10000, 100000, 0 };
/* Most puts an unthrottled run records a second. */
#define UNTHROTTLED_MAX 2000000u
#define NRATES          (sizeof(lag_rates) / sizeof(lag_rates[0]))

struct lag_run {
	dskvs *s;
	int fd;
	/* written by the writer before it publishes npub (release), read by
	 * the observer after it loads npub (acquire) */
	uint64_t *seq;   /* ticket of put j */
	uint64_t *t_ret; /* when put j returned, ns */
	atomic_uint_fast64_t npub;
	atomic_int done; /* the writer is done (relaxed: a poll timeout) */
	/* the observer's alone until it is joined */
	uint64_t *lag; /* lag of put j, ns */
	uint64_t nlag;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *observer_main(void *arg)
{
	struct lag_run *lr = arg;
	struct pollfd p = { .fd = lr->fd, .events = POLLIN };
	uint64_t i = 0, done_at = 0;

	for (;;) {
		if (atomic_load_explicit(&lr->done, memory_order_relaxed)) {
			/* done is stored after the last publication */
			uint64_t np = atomic_load_explicit(
			    &lr->npub, memory_order_acquire);
			if (i == np)
				break;
			if (done_at == 0)
				done_at = now_ns();
			else if (now_ns() - done_at > 5000000000u)
				break; /* 5 s: counted as never durable */
		}
		/* 5 ms: only to notice that the writer is done */
		if (poll(&p, 1, 5) < 0 && errno != EINTR)
			break;
		uint64_t v;
		if (read(lr->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			break;
		for (;;) {
			uint64_t d = dskvs_durable_seq(lr->s);
			uint64_t t = now_ns();
			uint64_t np = atomic_load_explicit(
			    &lr->npub, memory_order_acquire);
			uint64_t i0 = i;
			while (i < np && lr->seq[i] <= d) {
				lr->lag[i] =
				    t > lr->t_ret[i] ? t - lr->t_ret[i] : 0;
				i++;
			}
			if (i == i0 || i == np)
				break;
		}
	}
	lr->nlag = i;
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The q-quantile of v[0..n) (sorts v). */
static double quantile(uint64_t *v, uint64_t n, double q)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	uint64_t k = (uint64_t)(q * (double)(n - 1) + 0.5);
	return (double)v[k < n ? k : n - 1];
}

struct lag_fig {
	double lag50, lag99, lagmax, fs50, fs99, fsmax, batches, qcap, putmax;
};

/* One run at `rate` puts/s for `secs` on a fresh store in dir. */
static struct measured lag_once(struct eslot *sl, uint64_t rate, double secs,
                                size_t vsize, struct lag_fig *fig)
{
	struct measured m = { 0 };
	struct lag_run lr = { 0 };
	char dir[4200];
	uint64_t cap =
	    (uint64_t)((double)(rate ? rate : UNTHROTTLED_MAX) * secs) + 16;
	uint64_t *put_ns = xmalloc(cap * sizeof(uint64_t));
	pthread_t obs;
	dskvs_stats st0, st;
	struct keybuf kb;
	uint64_t rs = 0x1a9 + rate, j, errs = 0;

	snprintf(dir, sizeof(dir), "%s/dskvs.lag", cfg.dir);
	/* the workload is dskvs-only: the engine's handle is the dskvs * */
	lr.s = open_engine(sl->e, dir, 0, 0, 1, vsize, cfg.keys);
	if (lr.s == NULL) {
		free(put_ns);
		m.errs = 1;
		return m;
	}
	lr.fd = dskvs_durable_fd(lr.s);
	if (lr.fd < 0)
		die("dskvs_durable_fd: %s", dskvs_strerror(lr.fd));
	lr.seq = xmalloc(cap * sizeof(uint64_t));
	lr.t_ret = xmalloc(cap * sizeof(uint64_t));
	lr.lag = xmalloc(cap * sizeof(uint64_t));
	dskvs_stats_get(lr.s, &st0);
	if (pthread_create(&obs, NULL, observer_main, &lr) != 0)
		die("pthread_create failed");

	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(secs * 1e9);
	uint64_t tlast = t0;
	for (j = 0; j < cap; j++) {
		uint64_t due = rate ? t0 + j * 1000000000u / rate : now_ns();
		if (due >= end)
			break;
		if (rate && now_ns() < due) {
			struct timespec ts = { (time_t)(due / 1000000000u),
				               (long)(due % 1000000000u) };
			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME,
			                       &ts, NULL) == EINTR)
				;
		}
		const struct bkey *k = key_at(&kb, rng_next(&rs) % cfg.keys, 0);
		uint64_t ta = now_ns(), seq = 0;
		int rc = dskvs_put_seq(lr.s, k->full, value_for(j), vsize, NULL,
		                       NULL, &seq);
		uint64_t tb = now_ns();
		if (rc != DSKVS_OK) {
			errs++;
			if (m.err_rc == 0)
				m.err_rc = rc;
			break;
		}
		put_ns[j] = tb - ta;
		lr.seq[j] = seq;
		lr.t_ret[j] = tb;
		atomic_store_explicit(&lr.npub, j + 1, memory_order_release);
		tlast = tb;
	}
	prctl(PR_SET_TIMERSLACK, 50000UL, 0, 0, 0);
	atomic_store_explicit(&lr.done, 1, memory_order_release);
	pthread_join(obs, NULL);
	dskvs_stats_get(lr.s, &st);
	sl->e->close(lr.s);
	rm_rf(dir);

	m.ops = j;
	m.secs = (double)(tlast - t0) / 1e9;
	m.errs = errs + (j - lr.nlag); /* puts never seen durable */
	fig->fs50 = (double)st.fsync_p50_ns;
	fig->fs99 = (double)st.fsync_p99_ns;
	fig->fsmax = (double)st.fsync_max_ns;
	fig->qcap = (double)st.queue_capacity;
	fig->batches = (double)(st.batches - st0.batches);
	fig->lagmax = quantile(lr.lag, lr.nlag, 1.0);
	fig->lag99 = quantile(lr.lag, lr.nlag, 0.99);
	fig->lag50 = quantile(lr.lag, lr.nlag, 0.50);
	fig->putmax = quantile(put_ns, j, 1.0);
	m.p999 = quantile(put_ns, j, 0.999);
	m.p99 = quantile(put_ns, j, 0.99);
	m.p50 = quantile(put_ns, j, 0.50);
	free(put_ns);
	free(lr.seq);
	free(lr.t_ret);
	free(lr.lag);
	return m;
}

static double med_of(const struct lag_fig *f, int n, size_t off)
{
	double v[MAXREPS];

	for (int i = 0; i < n; i++)
		v[i] = *(const double *)((const char *)&f[i] + off);
	return median(v, n);
}

#define MED(field) med_of(figs, c.n, offsetof(struct lag_fig, field))

static void tabulate_lag(const struct bench_workload *w, struct cell *cells,
                         int ncells)
{
	for (int ci = 0; ci < ncells; ci++) {
		if (cells[ci].skipped)
			continue;
		for (size_t ri = 0; ri < NRATES; ri++) {
			struct cell c = { .slot = cells[ci].slot,
				          .threads = 1 };
			struct lag_fig figs[MAXREPS];
			uint64_t rate = lag_rates[ri];

			for (int rep = 0; rep < cfg.reps; rep++) {
				struct measured m =
				    lag_once(c.slot, rate, cfg.seconds,
				             cfg.value_size, &figs[c.n]);
				cell_add(&c, &m);
			}
			struct result *res =
			    cell_result(&c, w, cfg.value_size, cfg.keys);
			double l50 = MED(lag50), l99 = MED(lag99),
			       f50 = MED(fs50), f99 = MED(fs99);
			appendf(res->extra, sizeof(res->extra),
			        "%srate=%" PRIu64 " lag_p50_us=%.1f "
			        "lag_p99_us=%.1f lag_max_us=%.1f "
			        "fdatasync_p50_us=%.1f fdatasync_p99_us=%.1f "
			        "fdatasync_max_us=%.1f batches_per_s=%.0f "
			        "queue_capacity=%.0f put_max_us=%.1f",
			        res->extra[0] ? " " : "", rate, l50 / 1e3,
			        l99 / 1e3, MED(lagmax) / 1e3, f50 / 1e3,
			        f99 / 1e3, MED(fsmax) / 1e3,
			        MED(batches) / cfg.seconds, MED(qcap),
			        MED(putmax) / 1e3);
			fprintf(stderr,
			        "  %-12s rate=%-6" PRIu64
			        " got %8.0f puts/s  lag p50 %7.1f us (%.2fx "
			        "fdatasync p50)  p99 %7.1f us (%.2fx fdatasync "
			        "p99)\n",
			        res->engine, rate, res->ops_s, l50 / 1e3,
			        f50 > 0 ? l50 / f50 : 0, l99 / 1e3,
			        f99 > 0 ? l99 / f99 : 0);
		}
	}
}

const struct bench_workload wl_lag = {
	.name = "lag",
	.what = "put -> durable lag (durable eventfd) at 1k, 10k, 100k puts/s "
	        "and unthrottled, vs fdatasync",
	.in_quick = 1,
	.engine_only = "dskvs",
	.no_preload = 1,
	.no_chart = 1,
	.fixed_threads = 1,
	.tabulate = tabulate_lag,
};
