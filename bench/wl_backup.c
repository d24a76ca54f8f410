/*
 * dskvs-bench workload backup: the cost of dskvs_backup() of a store of
 * --keys keys while a writer goes on, dskvs only (the hot-backup call is
 * dskvs's own; LMDB's mdb_env_copy is its peer, not measured here).
 *
 * One repetition, on a fresh store:
 * - fill --keys keys with --value-size values and sync (not timed);
 * - a writer thread puts random keys of the store, unthrottled, timing
 *   every put with the monotonic clock;
 * - after 1 s of writing (the baseline window), the main thread calls
 *   dskvs_backup() into an empty directory and times it;
 * - the writer goes on 1 s after the backup returns, then stops.
 * Reported: the backup's time, its size and rate (bytes of the copy over
 * its time), and the writer's put p50, p99 and maximum, and puts per
 * second, during the backup beside the baseline before it, and the
 * janitor's slowest fdatasync (dskvs_stats_get's fsync_max over its last
 * 1024) before the backup and after it. The p50/p99/
 * p999 columns of the table are those during the backup.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dskvs.h"
#include "workload.h"

/* Paths are built into fixed buffers far larger than any real store path;
 * a truncated one just fails to open. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

struct bk_run {
	dskvs *s;
	size_t vsize;
	/* Phase: 0 baseline, 1 during the backup, 2 after it, 3 stop.
	 * Written by the main thread (release), read by the writer. */
	atomic_int phase;
	/* The writer's alone until it is joined: put latencies per phase. */
	uint64_t *lat[2];
	uint64_t n[2], cap;
	double secs[2]; /* how long each phase lasted, s */
	uint64_t errs;
	int err_rc;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *writer_main(void *arg)
{
	struct bk_run *b = arg;
	struct keybuf kb;
	uint64_t rs = 0xbac0, j = 0;
	int ph, last = 0;
	uint64_t t_ph = mono_ns();

	while ((ph = atomic_load_explicit(&b->phase, memory_order_acquire)) <
	       3) {
		if (ph != last) {
			uint64_t t = mono_ns();
			if (last < 2)
				b->secs[last] = (double)(t - t_ph) / 1e9;
			t_ph = t;
			last = ph;
		}
		const struct bkey *k = key_at(&kb, rng_next(&rs) % cfg.keys, 0);
		uint64_t ta = mono_ns();
		int rc = dskvs_put(b->s, k->full, value_for(j++), b->vsize,
		                   NULL, NULL);
		uint64_t tb = mono_ns();
		if (rc != DSKVS_OK) {
			if (b->errs++ == 0)
				b->err_rc = rc;
			continue;
		}
		if (ph < 2 && b->n[ph] < b->cap)
			b->lat[ph][b->n[ph]++] = tb - ta;
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The q-quantile of v[0..n), sorted. */
static double q_of(const uint64_t *v, uint64_t n, double q)
{
	if (n == 0)
		return 0;
	uint64_t k = (uint64_t)(q * (double)(n - 1) + 0.5);
	return (double)v[k < n ? k : n - 1];
}

struct bk_fig {
	double backup_s, backup_bytes;
	double base50, base99, basemax, base_ops;
	double dur50, dur99, durmax, dur_ops;
	double fs_max_before, fs_max_after; /* dskvs_stats_get's fsync_max */
};

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s,
		               (long)((s - (double)(time_t)s) * 1e9) };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static struct measured backup_once(struct eslot *sl, size_t vsize,
                                   struct bk_fig *fig)
{
	struct measured m = { 0 };
	struct bk_run b = { 0 };
	char dir[4200], dest[4300];
	struct keybuf kb;
	pthread_t th;

	snprintf(dir, sizeof(dir), "%s/dskvs.backup", cfg.dir);
	snprintf(dest, sizeof(dest), "%s/dskvs.backup-copy", cfg.dir);
	rm_rf(dest);
	/* the workload is dskvs-only: the engine's handle is the dskvs * */
	b.s = open_engine(sl->e, dir, 0, 0, 1, vsize, cfg.keys);
	if (b.s == NULL) {
		m.errs = 1;
		return m;
	}
	b.vsize = vsize;
	for (uint64_t i = 0; i < cfg.keys; i++) {
		const struct bkey *k = key_at(&kb, i, 0);
		int rc =
		    dskvs_put(b.s, k->full, value_for(i), vsize, NULL, NULL);
		if (rc != DSKVS_OK)
			die("backup: fill: %s", dskvs_strerror(rc));
	}
	int rc = dskvs_sync(b.s);
	if (rc != DSKVS_OK)
		die("backup: sync: %s", dskvs_strerror(rc));
	b.cap = 4u << 20;
	b.lat[0] = xmalloc(b.cap * sizeof(uint64_t));
	b.lat[1] = xmalloc(b.cap * sizeof(uint64_t));
	if (pthread_create(&th, NULL, writer_main, &b) != 0)
		die("pthread_create failed");
	sleep_s(1.0);
	dskvs_stats st;
	dskvs_stats_get(b.s, &st);
	fig->fs_max_before = (double)st.fsync_max_ns;
	atomic_store_explicit(&b.phase, 1, memory_order_release);
	double t0 = now_s();
	rc = dskvs_backup(b.s, dest);
	double t = now_s() - t0;
	dskvs_stats_get(b.s, &st);
	fig->fs_max_after = (double)st.fsync_max_ns;
	atomic_store_explicit(&b.phase, 2, memory_order_release);
	sleep_s(1.0);
	atomic_store_explicit(&b.phase, 3, memory_order_release);
	pthread_join(th, NULL);
	if (rc != DSKVS_OK) {
		m.errs = 1;
		m.err_rc = rc;
	} else {
		fig->backup_s = t;
		fig->backup_bytes = (double)dir_bytes(dest);
	}
	sl->e->close(b.s);
	rm_rf(dir);
	rm_rf(dest);

	for (int p = 0; p < 2; p++)
		qsort(b.lat[p], b.n[p], sizeof(uint64_t), cmp_u64);
	fig->base50 = q_of(b.lat[0], b.n[0], 0.50);
	fig->base99 = q_of(b.lat[0], b.n[0], 0.99);
	fig->basemax = q_of(b.lat[0], b.n[0], 1.0);
	fig->base_ops = b.secs[0] > 0 ? (double)b.n[0] / b.secs[0] : 0;
	fig->dur50 = q_of(b.lat[1], b.n[1], 0.50);
	fig->dur99 = q_of(b.lat[1], b.n[1], 0.99);
	fig->durmax = q_of(b.lat[1], b.n[1], 1.0);
	fig->dur_ops = b.secs[1] > 0 ? (double)b.n[1] / b.secs[1] : 0;
	m.ops = b.n[1];
	m.secs = b.secs[1];
	m.p50 = fig->dur50;
	m.p99 = fig->dur99;
	m.p999 = q_of(b.lat[1], b.n[1], 0.999);
	m.errs += b.errs;
	if (m.err_rc == 0)
		m.err_rc = b.err_rc;
	free(b.lat[0]);
	free(b.lat[1]);
	return m;
}

static double bk_med(const struct bk_fig *f, int n, size_t off)
{
	double v[MAXREPS];

	for (int i = 0; i < n; i++)
		v[i] = *(const double *)((const char *)&f[i] + off);
	return median(v, n);
}

#define MED(field) bk_med(figs, c.n, offsetof(struct bk_fig, field))

static void tabulate_backup(const struct bench_workload *w, struct cell *cells,
                            int ncells)
{
	for (int ci = 0; ci < ncells; ci++) {
		if (cells[ci].skipped)
			continue;
		struct cell c = { .slot = cells[ci].slot, .threads = 1 };
		struct bk_fig figs[MAXREPS];

		for (int rep = 0; rep < cfg.reps; rep++) {
			memset(&figs[c.n], 0, sizeof(figs[c.n]));
			struct measured m =
			    backup_once(c.slot, cfg.value_size, &figs[c.n]);
			cell_add(&c, &m);
		}
		struct result *res =
		    cell_result(&c, w, cfg.value_size, cfg.keys);
		double bs = MED(backup_s), bb = MED(backup_bytes);
		appendf(res->extra, sizeof(res->extra),
		        "%sbackup_s=%.3f backup_MB=%.1f backup_MBps=%.1f "
		        "put_p50_us=%.2f/%.2f put_p99_us=%.2f/%.2f "
		        "put_max_us=%.0f/%.0f puts_per_s=%.0f/%.0f "
		        "fdatasync_max_us=%.0f/%.0f (before/during)",
		        res->extra[0] ? " " : "", bs, bb / 1e6,
		        bs > 0 ? bb / bs / 1e6 : 0, MED(base50) / 1e3,
		        MED(dur50) / 1e3, MED(base99) / 1e3, MED(dur99) / 1e3,
		        MED(basemax) / 1e3, MED(durmax) / 1e3, MED(base_ops),
		        MED(dur_ops), MED(fs_max_before) / 1e3,
		        MED(fs_max_after) / 1e3);
		fprintf(stderr,
		        "  %-12s backup of %" PRIu64 " keys: %.3f s, %.1f MB "
		        "(%.0f MB/s); writer p99 %.1f us before, %.1f us "
		        "during (max %.0f / %.0f us)\n",
		        res->engine, cfg.keys, bs, bb / 1e6,
		        bs > 0 ? bb / bs / 1e6 : 0, MED(base99) / 1e3,
		        MED(dur99) / 1e3, MED(basemax) / 1e3,
		        MED(durmax) / 1e3);
	}
}

const struct bench_workload wl_backup = {
	.name = "backup",
	.what = "dskvs_backup of the store while a writer puts: time, and "
	        "writer p99 before/during",
	.engine_only = "dskvs",
	.no_preload = 1,
	.no_chart = 1,
	.fixed_threads = 1,
	.tabulate = tabulate_backup,
};
