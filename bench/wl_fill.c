/*
 * dskvs-bench workloads fillseq and fillrandom: insert --keys keys into a
 * fresh store, in key order or in a random one (count-bounded, cut at
 * --fill-cap). fillrandom's loop is the preload's too.
 */
#include "workload.h"

uint64_t wl_loop_fill(struct worker *w, void *tctx)
{
	WL_LOOP_LOCALS(w);
	struct keybuf kb;
	int rc;

	for (uint64_t j = w->lo; j < w->hi && !stopped(r); j++) {
		const struct bkey *k = key_at(&kb, r->order[j], 0);
		TIMED(rc = e->put(r->db, tctx, k, value_for(j), r->vsize));
		if (rc != 0)
			note_err(w, rc);
	}
	return n;
}

static void prepare_seq(struct wl_round *r)
{
	r->order = seq_order(cfg.keys);
	r->norder = cfg.keys;
}

static void prepare_rand(struct wl_round *r)
{
	r->order = rand_order(cfg.keys, 7);
	r->norder = cfg.keys;
}

static struct measured run_fill(struct wl_round *r, struct eslot *s,
                                struct cell *c)
{
	return wl_run_fresh(r, s, c, 0, NULL);
}

const struct bench_workload wl_fillseq = {
	.name = "fillseq",
	.writes = 1,
	.what = "insert N keys in key order, fresh store",
	.in_quick = 1,
	.no_preload = 1,
	.quick_no_warmup = 1,
	.loop = wl_loop_fill,
	.prepare = prepare_seq,
	.run = run_fill,
};

const struct bench_workload wl_fillrandom = {
	.name = "fillrandom",
	.writes = 1,
	.what = "insert N keys in random order, fresh store",
	.in_quick = 1,
	.no_preload = 1,
	.quick_no_warmup = 1,
	.loop = wl_loop_fill,
	.prepare = prepare_rand,
	.run = run_fill,
};
