/*
 * dskvs-bench workloads overwrite, readrandom, readmissing and
 * readwhilewriting: time-bounded puts or gets of uniformly drawn keys on
 * the preloaded store. The overwrite loop is durable's and janitor's too.
 */
#include "workload.h"

uint64_t wl_loop_overwrite(struct worker *w, void *tctx)
{
	WL_LOOP_LOCALS(w);
	struct keybuf kb;
	int rc;

	while (!stopped(r)) {
		const struct bkey *k =
		    key_at(&kb, w->idx[n & (IDX_PER_THR - 1)], 0);
		TIMED(rc = e->put(r->db, tctx, k, value_for(n + w->id),
		                  r->vsize));
		if (rc != 0)
			note_err(w, rc);
	}
	return n;
}

/* readrandom; readwhilewriting's extra worker overwrites, unmeasured. */
static uint64_t loop_read(struct worker *w, void *tctx)
{
	WL_LOOP_LOCALS(w);
	struct keybuf kb;
	size_t len;
	int rc;

	if (w->writer) {
		while (!stopped(r)) {
			const struct bkey *k =
			    key_at(&kb, w->idx[n & (IDX_PER_THR - 1)], 0);
			rc = e->put(r->db, tctx, k, value_for(n), r->vsize);
			n++;
		}
		return n;
	}
	while (!stopped(r)) {
		const struct bkey *k =
		    key_at(&kb, w->idx[n & (IDX_PER_THR - 1)], 0);
		TIMED(rc = e->get(r->db, tctx, k, w->buf, w->cap, &len));
		if (rc != 0)
			note_err(w, rc);
	}
	return n;
}

static uint64_t loop_readmissing(struct worker *w, void *tctx)
{
	WL_LOOP_LOCALS(w);
	struct keybuf kb;
	size_t len;
	int rc;

	while (!stopped(r)) {
		const struct bkey *k =
		    key_at(&kb, w->idx[n & (IDX_PER_THR - 1)], 1);
		TIMED(rc = e->get(r->db, tctx, k, w->buf, w->cap, &len));
		if (rc != BENCH_NOTFOUND)
			note_err(w, rc);
	}
	return n;
}

const struct bench_workload wl_overwrite = {
	.name = "overwrite",
	.writes = 1,
	.what = "put random existing keys",
	.in_quick = 1,
	.loop = wl_loop_overwrite,
};

const struct bench_workload wl_readrandom = {
	.name = "readrandom",
	.what = "get random existing keys",
	.in_quick = 1,
	.loop = loop_read,
};

const struct bench_workload wl_readmissing = {
	.name = "readmissing",
	.what = "get absent keys",
	.in_quick = 1,
	.loop = loop_readmissing,
};

const struct bench_workload wl_readwhilewriting = {
	.name = "readwhilewriting",
	.what = "readrandom while one extra writer overwrites (readers "
	        "measured)",
	.in_quick = 1,
	.extra_writer = 1,
	.loop = loop_read,
};
