/*
 * dskvs-bench workload deleterandom: delete N/8 random keys of the
 * preloaded store (count-bounded), then put them back, untimed.
 */
#include "workload.h"

static uint64_t loop_delete(struct worker *w, void *tctx)
{
	WL_LOOP_LOCALS(w);
	struct keybuf kb;
	int rc;

	for (uint64_t j = w->lo; j < w->hi && !stopped(r); j++) {
		const struct bkey *k = key_at(&kb, r->order[j], 0);
		TIMED(rc = e->del(r->db, tctx, k));
		if (rc != 0)
			note_err(w, rc);
	}
	return n;
}

static void prepare_delete(struct wl_round *r)
{
	r->order = rand_order(cfg.keys, 11);
	r->norder = cfg.keys / 8;
}

static struct measured run_delete(struct wl_round *r, struct eslot *s,
                                  struct cell *c)
{
	struct measured m;

	(void)c;
	m = run_once(s->e, s->db, r->w, r->threads, NULL, r->order, r->norder,
	             r->vsize, 0);
	/* put the keys back, untimed, all */
	double cap = cfg.fill_cap;
	cfg.fill_cap = 1e12;
	run_once(s->e, s->db, &wl_fillrandom, r->threads, NULL, r->order,
	         r->norder, r->vsize, 0);
	cfg.fill_cap = cap;
	return m;
}

const struct bench_workload wl_deleterandom = {
	.name = "deleterandom",
	.what = "delete N/8 random keys (put back untimed)",
	.in_quick = 1,
	.loop = loop_delete,
	.prepare = prepare_delete,
	.run = run_delete,
};
