/*
 * dskvs-bench workloads batch-*: write k members of one collection
 * (k = 10 or 100) as one dskvs_write_batch (one lock acquisition, one
 * group of records that recovery keeps whole) or as k single dskvs_put
 * calls, from every thread. Each thread writes its own collection "bt<t>"
 * of BT_MEMBERS members, batch after batch over consecutive members
 * (overwrites once the collection is full), values of --value-size bytes.
 * An op is a batch (or its k puts): ops/s are batches/s, p99 is per
 * batch, and the notes give members per second. dskvs only (r->db is the
 * dskvs handle).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dskvs.h"
#include "workload.h"

#define BT_MEMBERS 10000u /* per thread; a multiple of 10 and 100 */
#define BT_NAME    24

/* param: k | 1 << 16 for the single-put variant. */
static uint64_t loop_batch(struct worker *w, void *tctx)
{
	WL_LOOP_LOCALS(w);
	const uintptr_t mode = (uintptr_t)r->w->param;
	const unsigned int k = (unsigned int)(mode & 0xffff);
	const int single = (mode >> 16) != 0;
	dskvs *s = r->db;
	char coll[16];
	char(*full)[BT_NAME] = malloc(BT_MEMBERS * sizeof *full);
	dskvs_batch_op *ops = malloc(k * sizeof *ops);
	unsigned int next = 0;
	int rc = 0;

	(void)e;
	(void)tctx;
	if (!full || !ops) {
		note_err(w, DSKVS_ENOMEM);
		free(full);
		free(ops);
		return 0;
	}
	snprintf(coll, sizeof coll, "bt%d", w->id);
	/* full[i] = "bt<t>/m<i>"; a batch op's member points past the '/'. */
	size_t clen = strlen(coll);
	for (unsigned int i = 0; i < BT_MEMBERS; i++)
		snprintf(full[i], BT_NAME, "%s/m%05u", coll, i);
	memset(w->buf, 'b', r->vsize);
	while (!stopped(r)) {
		if (!single) {
			for (unsigned int j = 0; j < k; j++)
				ops[j] =
				    (dskvs_batch_op){ full[next + j] + clen + 1,
					              w->buf, r->vsize, 0 };
			TIMED(rc = dskvs_write_batch(s, coll, ops, k, NULL));
		} else {
			TIMED({
				for (unsigned int j = 0; j < k && !rc; j++)
					rc =
					    dskvs_put(s, full[next + j], w->buf,
					              r->vsize, NULL, NULL);
			});
		}
		if (rc != 0) {
			note_err(w, rc);
			rc = 0;
		}
		w->items += k;
		next = (next + k) % BT_MEMBERS;
	}
	free(full);
	free(ops);
	return n;
}

static void report_batch(struct result *res, struct cell *c)
{
	appendf(res->extra, sizeof(res->extra), "%smembers_per_s=%.0f",
	        res->extra[0] ? " " : "", median(c->items_s, c->n));
}

#define BATCH(var, nm, wh, mode)               \
	const struct bench_workload var = {    \
		.name = nm,                    \
		.what = wh,                    \
		.param = (const void *)(mode), \
		.engine_only = "dskvs",        \
		.loop = loop_batch,            \
		.report = report_batch,        \
	}

BATCH(wl_batch10, "batch10",
      "write 10 members of one collection with dskvs_write_batch", 10);
BATCH(wl_batch10_single, "batch10-single",
      "the same 10 members as 10 single dskvs_put", 10 | 1 << 16);
BATCH(wl_batch100, "batch100",
      "write 100 members of one collection with dskvs_write_batch", 100);
BATCH(wl_batch100_single, "batch100-single",
      "the same 100 members as 100 single dskvs_put", 100 | 1 << 16);
