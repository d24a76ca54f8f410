/*
 * dskvs-bench workload memory: no timed run of its own — the resident
 * bytes per entry beyond its key and value bytes, and the malloc'd bytes
 * per entry (all of them: dskvs and ceiling keep their value blocks
 * outside malloc, in their slab, so their heap figure is below the key
 * and value bytes), that each engine grew by over the preload; then what
 * a store gives back when a big collection empties.
 *
 * After deletion: in a fresh store (<dir>/<engine>.run) one collection
 * grows to --keys members (1M by default); RSS and the heap in use
 * (mallinfo2) are read at that peak; every member but one in 1000 is
 * deleted; then reclamation is let run: the engine's sync (dskvs_sync:
 * the janitor has taken every delete), its quiesce, with this thread out
 * (ceiling frees what it parked), and a 200 ms sleep (liburcu's call_rcu thread
 * frees what waited for a grace period). RSS and heap are read again, and RSS
 * once more after malloc_trim(0), which hands glibc's free pages back to the
 * kernel: what remains then is what the store still holds. Each figure is
 * the growth over the RSS / heap before the open, so the other stores the
 * process holds are not counted. Each phase is cut at --fill-cap seconds.
 */
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <time.h>

#include "workload.h"

static uint64_t heap_now(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static uint64_t grown(uint64_t now, uint64_t base)
{
	return now > base ? now - base : 0;
}

/* Grow, delete 99.9%, reclaim; the figures go into res->extra. */
static void after_delete(struct eslot *s, struct result *res)
{
	const struct bench_engine *e = s->e;
	uint64_t n = cfg.keys, cut = 0;
	char d[4200], kb[256];
	struct bkey k;

	malloc_trim(0);
	uint64_t r0 = rss_bytes(), h0 = heap_now();
	snprintf(d, sizeof(d), "%s/%s.run", cfg.dir, e->name);
	void *db = open_engine(e, d, 0, 0, 1, cfg.value_size, n);
	if (db == NULL)
		return;
	void *t = e->thread_begin ? e->thread_begin(db) : NULL;
	double t0 = now_s();
	for (uint64_t i = 0; i < n; i++) {
		int kl = snprintf(kb, sizeof(kb), "big/%0*" PRIu64,
		                  (int)cfg.key_size, i);
		k = (struct bkey){ kb, (size_t)kl, 3 };
		e->put(db, t, &k, value_for(i), cfg.value_size);
		if ((i & 4095) == 0 && now_s() - t0 > cfg.fill_cap) {
			n = i + 1, cut = 1;
			break;
		}
	}
	if (e->sync)
		e->sync(db);
	if (e->thread_end) /* quiesce wants no thread inside */
		e->thread_end(db, t);
	if (e->quiesce)
		e->quiesce(db);
	t = e->thread_begin ? e->thread_begin(db) : NULL;
	uint64_t rpk = grown(rss_bytes(), r0), hpk = grown(heap_now(), h0);
	t0 = now_s();
	for (uint64_t i = 0; i < n; i++) {
		if (i % 1000 == 0)
			continue; /* the 0.1% kept */
		int kl = snprintf(kb, sizeof(kb), "big/%0*" PRIu64,
		                  (int)cfg.key_size, i);
		k = (struct bkey){ kb, (size_t)kl, 3 };
		e->del(db, t, &k);
		if ((i & 4095) == 0 && now_s() - t0 > cfg.fill_cap) {
			cut = 1;
			break;
		}
	}
	if (e->sync)
		e->sync(db);
	if (e->thread_end) /* quiesce wants no thread inside */
		e->thread_end(db, t);
	if (e->quiesce)
		e->quiesce(db);
	t = e->thread_begin ? e->thread_begin(db) : NULL;
	struct timespec ts = { 0, 200000000 };
	nanosleep(&ts, NULL);
	uint64_t raf = grown(rss_bytes(), r0), haf = grown(heap_now(), h0);
	malloc_trim(0);
	uint64_t rtr = grown(rss_bytes(), r0);
	if (e->thread_end)
		e->thread_end(db, t);
	e->close(db);
	rm_rf(d);
	appendf(res->extra, sizeof(res->extra),
	        " del99.9%%_of_%" PRIu64 ": rss_peak=%.1fMiB "
	        "rss_after=%.1fMiB rss_after_trim=%.1fMiB heap_peak=%.1fMiB "
	        "heap_after=%.1fMiB%s",
	        n, (double)rpk / 1048576.0, (double)raf / 1048576.0,
	        (double)rtr / 1048576.0, (double)hpk / 1048576.0,
	        (double)haf / 1048576.0, cut ? " (cut at the time cap)" : "");
}

/* The engine's note may not fit; the line is cut then. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

static void tabulate_memory(const struct bench_workload *w, struct cell *cells,
                            int ncells)
{
	for (int i = 0; i < ncells; i++) {
		struct eslot *s = cells[i].slot;
		struct result *res;
		double kv = (double)(5 + cfg.key_size + cfg.value_size);
		if (cells[i].skipped)
			continue;
		res = add_result();
		res->engine = s->e->name;
		res->workload = w->name;
		res->threads = max_threads();
		res->keys = cfg.keys;
		res->value_size = cfg.value_size;
		res->ops = cfg.keys;
		res->seconds = s->preload_s;
		res->ops_s = (double)cfg.keys / s->preload_s;
		res->rss = s->mem_rss;
		snprintf(res->extra, sizeof(res->extra),
		         "rss_per_entry_over_kv=%.1f heap_per_entry=%.1f",
		         (double)s->mem_rss / (double)cfg.keys - kv,
		         (double)s->mem_heap / (double)cfg.keys);
		after_delete(s, res);
		if (s->mem_note[0])
			appendf(res->extra, sizeof(res->extra), " %s",
			        s->mem_note);
	}
}

const struct bench_workload wl_memory = {
	.name = "memory",
	.what = "resident bytes per entry beyond key and value bytes (preload)",
	.in_quick = 1,
	.fixed_threads = 1,
	.no_chart = 1,
	.tabulate = tabulate_memory,
};
