/*
 * dskvs-bench workload recovery: close the preloaded store, evict its
 * files from the page cache, time the reopen (and check a sample of keys),
 * then read the same files sequentially, cold; both as MB/s of the files.
 */
#include <stdio.h>

#include "workload.h"

static struct measured run_recovery(struct wl_round *r, struct eslot *s,
                                    struct cell *c)
{
	const struct bench_engine *e = s->e;
	struct measured m = { 0 };

	(void)r;
	if (e->sync)
		e->sync(s->db);
	e->close(s->db);
	s->db = NULL;
	uint64_t b = dir_bytes(s->dir);
	dir_walk(s->dir, 0);
	double t0 = now_s();
	s->db = open_engine(e, s->dir, 0, 1, max_threads(), cfg.value_size,
	                    cfg.keys);
	double to = now_s() - t0;
	if (s->db == NULL) {
		s->broken = 1;
		c->skipped = 1;
		snprintf(c->why, sizeof(c->why), "reopen failed");
		return m;
	}
	/* was everything there? */
	struct keybuf kb;
	size_t len;
	char vb[65536];
	uint64_t bad = 0;
	for (uint64_t k = 0; k < cfg.keys; k += cfg.keys / 97 + 1)
		if (e->get(s->db, NULL, key_at(&kb, k, 0), vb, sizeof(vb),
		           &len) != 0)
			bad++;
	dir_walk(s->dir, 0);
	double tr = dir_walk(s->dir, 1);
	m.ops = cfg.keys;
	m.secs = to;
	m.errs = bad;
	c->aux[c->n] = (double)b / to;
	c->aux2[c->n] = (double)b / tr;
	c->items_s[c->n] = (double)b;
	return m;
}

static void report_recovery(struct result *res, struct cell *c)
{
	appendf(res->extra, sizeof(res->extra),
	        "%sfile_bytes=%.0f open_MBps=%.1f seqread_MBps=%.1f",
	        res->extra[0] ? " " : "", median(c->items_s, c->n),
	        median(c->aux, c->n) / 1e6, median(c->aux2, c->n) / 1e6);
}

const struct bench_workload wl_recovery = {
	.name = "recovery",
	.what = "open a store of N keys (cold cache) vs reading its files",
	.in_quick = 1,
	.fixed_threads = 1,
	.persistent_only = 1,
	.no_chart = 1,
	.keeps_items = 1,
	.prepare = wl_prepare_nothing,
	.run = run_recovery,
	.report = report_recovery,
};
