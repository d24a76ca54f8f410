/*
 * dskvs-bench workloads ycsb-a .. ycsb-f (zipfian keys, as YCSB draws
 * them) and their -uni variants (uniform keys): a pre-drawn mix of reads,
 * updates, inserts and read-modify-writes on the preloaded store.
 */
#include <stdatomic.h>

#include "workload.h"

enum op { OP_READ, OP_UPDATE, OP_INSERT, OP_RMW };

struct ycsb {
	char mix; /* 'a' .. 'f' */
	int zipf; /* zipfian key choice (else uniform) */
};

static void draw_ycsb(const struct bench_workload *w, uint64_t *s,
                      uint32_t *idx, uint8_t **opsp)
{
	const struct ycsb *y = w->param;
	uint8_t *ops = xmalloc(IDX_PER_THR);
	double rprop = 1, uprop = 0, iprop = 0;

	switch (y->mix) {
	case 'a':
		rprop = 0.5, uprop = 0.5;
		break;
	case 'b':
		rprop = 0.95, uprop = 0.05;
		break;
	case 'c':
		break;
	case 'd':
		rprop = 0.95, iprop = 0.05;
		break;
	case 'f':
		rprop = 0.5; /* the rest read-modify-write */
		break;
	}
	for (uint32_t j = 0; j < IDX_PER_THR; j++) {
		uint64_t k;
		if (y->zipf) {
			if (y->mix == 'd')
				k = zipf_next(&zlatest, s);
			else
				k = ycsb_fnv64(zipf_next(&zscr, s)) % cfg.keys;
		} else {
			/* uniform; for D an offset anywhere back */
			k = rng_next(s) % cfg.keys;
		}
		idx[j] = (uint32_t)k;
		double u = rng_unit(s);
		if (u < rprop)
			ops[j] = OP_READ;
		else if (u < rprop + uprop)
			ops[j] = OP_UPDATE;
		else if (u < rprop + uprop + iprop)
			ops[j] = OP_INSERT;
		else
			ops[j] = OP_RMW;
	}
	*opsp = ops;
}

static uint64_t loop_ycsb(struct worker *w, void *tctx)
{
	struct run *r = w->r;
	const struct bench_engine *e = r->e;
	const struct ycsb *y = r->w->param;
	void *db = r->db;
	unsigned int lat_mask = r->lat_mask;
	uint64_t n = 0;
	struct keybuf kb;
	size_t len;
	int rc;

	while (!stopped(r)) {
		uint32_t j = n & (IDX_PER_THR - 1);
		uint64_t ki = w->idx[j];
		const struct bkey *k;
		int op = w->ops[j];

		if (y->mix == 'd') {
			/* idx holds an offset back from the latest key */
			uint64_t latest =
			    atomic_load_explicit(&r->next_insert,
			                         memory_order_relaxed) -
			    1;
			if (op == OP_INSERT)
				ki = atomic_fetch_add(&r->next_insert, 1);
			else
				ki = ki > latest ? 0 : latest - ki;
		}
		k = key_at(&kb, ki, 0);
		switch (op) {
		case OP_READ:
			TIMED(rc = e->get(db, tctx, k, w->buf, w->cap, &len));
			break;
		case OP_UPDATE:
		case OP_INSERT:
			TIMED(rc = e->put(db, tctx, k, value_for(n), r->vsize));
			break;
		default: /* read-modify-write */
			TIMED(rc = e->get(db, tctx, k, w->buf, w->cap, &len);
			      if (rc == 0) rc =
			          e->put(db, tctx, k, w->buf, len));
			break;
		}
		if (rc != 0 && rc != BENCH_NOTFOUND)
			note_err(w, rc);
	}
	return n;
}

#define YCSB(id, nm, m, z, quick, help)                \
	static const struct ycsb ycsb_##id = { m, z }; \
	const struct bench_workload wl_ycsb_##id = {   \
		.name = nm,                            \
		.what = help,                          \
		.in_quick = quick,                     \
		.param = &ycsb_##id,                   \
		.loop = loop_ycsb,                     \
		.draw = draw_ycsb,                     \
	}

YCSB(a, "ycsb-a", 'a', 1, 1, "50% read, 50% update, zipfian");
YCSB(b, "ycsb-b", 'b', 1, 1, "95% read, 5% update, zipfian");
YCSB(c, "ycsb-c", 'c', 1, 1, "100% read, zipfian");
YCSB(d, "ycsb-d", 'd', 1, 1, "95% read latest, 5% insert");
YCSB(f, "ycsb-f", 'f', 1, 1, "50% read, 50% read-modify-write, zipfian");
YCSB(a_uni, "ycsb-a-uni", 'a', 0, 0, "YCSB A, uniform keys");
YCSB(b_uni, "ycsb-b-uni", 'b', 0, 0, "YCSB B, uniform keys");
YCSB(c_uni, "ycsb-c-uni", 'c', 0, 0, "YCSB C, uniform keys");
YCSB(d_uni, "ycsb-d-uni", 'd', 0, 0, "YCSB D, uniform reads, 5% insert");
YCSB(f_uni, "ycsb-f-uni", 'f', 0, 0, "YCSB F, uniform keys");
