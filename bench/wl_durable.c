/*
 * dskvs-bench workload durable: overwrite random keys of a fresh store
 * opened with every write synced, over the --durable-threads list.
 */
#include "workload.h"

static struct measured run_durable(struct wl_round *r, struct eslot *s,
                                   struct cell *c)
{
	return wl_run_fresh(r, s, c, 1, NULL);
}

const struct bench_workload wl_durable = {
	.name = "durable",
	.what = "put random keys, every write synced (threads 1..16)",
	.in_quick = 1,
	.durable_threads = 1,
	.persistent_only = 1,
	.no_preload = 1,
	.quick_no_warmup = 1,
	.loop = wl_loop_overwrite,
	.run = run_durable,
};
