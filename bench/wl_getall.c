/*
 * dskvs-bench workload getall: scan a random whole collection of the
 * preloaded store (ops are scans; the notes give members per second).
 */
#include <stdio.h>

#include "workload.h"

static uint64_t loop_getall(struct worker *w, void *tctx)
{
	WL_LOOP_LOCALS(w);
	int rc;

	while (!stopped(r)) {
		char c[16];
		uint64_t items = 0, bytes = 0;
		unsigned int ci = w->idx[n & (IDX_PER_THR - 1)] % cfg.colls;
		snprintf(c, sizeof(c), "c%03u", ci);
		TIMED(rc = e->scan(r->db, tctx, c, 4, &items, &bytes));
		if (rc != 0)
			note_err(w, rc);
		w->items += items;
	}
	return n;
}

static void report_getall(struct result *res, struct cell *c)
{
	appendf(res->extra, sizeof(res->extra), "%smembers_per_s=%.0f",
	        res->extra[0] ? " " : "", median(c->items_s, c->n));
}

const struct bench_workload wl_getall = {
	.name = "getall",
	.what = "scan a random whole collection (ops = scans)",
	.in_quick = 1,
	.loop = loop_getall,
	.report = report_getall,
};
