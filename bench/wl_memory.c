/*
 * dskvs-bench workload memory: no timed run of its own — the resident and
 * malloc'd bytes per entry, beyond its key and value bytes, that each
 * engine grew by over the preload.
 */
#include <stdio.h>

#include "workload.h"

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
		         "rss_per_entry_over_kv=%.1f "
		         "heap_per_entry_over_kv=%.1f%s%s",
		         (double)s->mem_rss / (double)cfg.keys - kv,
		         (double)s->mem_heap / (double)cfg.keys - kv,
		         s->mem_note[0] ? " " : "", s->mem_note);
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
