/*
 * dskvs-bench: dskvs side by side with the limit of its own design and with
 * the stores people would pick instead. This file: the options and the
 * driver (engines opened and preloaded, each workload of workloads.c run
 * through the hooks of workload.h).
 *
 * DESIGN
 * - Every engine sits behind engine.h. All selected engines are opened and
 *   preloaded first; then, workload by workload and repetition by
 *   repetition, the engines take turns (engine A rep 1, engine B rep 1, ...,
 *   engine A rep 2, ...). On a shared, noisy machine this interleaving keeps
 *   a burst of noise from landing on one engine's runs only, which matters
 *   more than anything else when two engines are within 15% of each other.
 * - Random choices are made before the timed loop: the per-thread index
 *   streams once per workload and thread count, shared by every engine and
 *   repetition. So a zipfian pow() or an RNG step is never what is measured,
 *   and every engine sees the very same operations. Each key is formatted
 *   from its index, in the loop, into the worker's own buffer (key_at(),
 *   no snprintf), as db_bench does: a pre-built table of key strings cost
 *   two cache misses per operation at 1M keys. The null engine measures
 *   what is left of the harness, and each table prints it.
 * - Latency is sampled: one operation in lat_every (default 8) is timed with
 *   the TSC (two rdtsc, ~15 ns) into a log-bucket histogram (16 sub-buckets
 *   per power of two, ~6% resolution). Timing every operation would add
 *   ~20% to an ~80 ns read and blur the differences the bench exists to
 *   show; 1 in 8 keeps that under 3% and still gives millions of samples.
 * - Each figure is the median of --reps repetitions after one warm-up run.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "workload.h"

/* ---- configuration ------------------------------------------------------ */

struct bench_cfg cfg;

/* ---- engines ------------------------------------------------------------ */

const struct bench_engine *const all_engines[] = {
	&bench_engine_dskvs,      &bench_engine_ceiling,
	&bench_engine_ceiling_hs, &bench_engine_rwlock,
	&bench_engine_lfht,       &bench_engine_lmdb,
	&bench_engine_leveldb,    &bench_engine_rocksdb,
	&bench_engine_sqlite,     &bench_engine_kc_cache,
	&bench_engine_kc_hash,    &bench_engine_tkrzw_tiny,
	&bench_engine_tkrzw_hash, &bench_engine_null,
};
#define NENGINES (sizeof(all_engines) / sizeof(all_engines[0]))
const size_t nengines = NENGINES;

struct eslot slots[NENGINES];
int nslots;

/* ---- opening and preloading ---------------------------------------------- */

void *open_engine(const struct bench_engine *e, const char *dir, int sync_every,
                  int existing, int threads, size_t vsize, uint64_t nkeys)
{
	struct bench_open_cfg oc = { 0 };
	char err[512] = "";
	void *db;

	oc.dir = dir;
	oc.keys = nkeys;
	oc.colls = cfg.colls;
	oc.value_size = vsize;
	oc.sync_every = sync_every;
	oc.threads = threads;
	oc.existing = existing;
	if (!existing) {
		rm_rf(dir);
		mkdir(dir, 0700);
	}
	db = e->open(&oc, err, sizeof(err));
	if (db == NULL)
		fprintf(stderr, "  %s: open %s failed: %s\n", e->name, dir,
		        err);
	return db;
}

int max_threads(void)
{
	int m = 1;

	for (int i = 0; i < cfg.nthreads; i++)
		if (cfg.threads[i] > m)
			m = cfg.threads[i];
	return m;
}

static uint64_t *fill_rand_order;

static void preload(struct eslot *s)
{
	int th = max_threads();
	struct mallinfo2 mi0, mi1;

	malloc_trim(0);
	mi0 = mallinfo2();
	uint64_t r0 = rss_bytes();
	double t0 = now_s();
	double cap = cfg.fill_cap;
	cfg.fill_cap = 1e12; /* the preload is never cut short */
	struct measured m =
	    run_once(s->e, s->db, &wl_fillrandom, th, NULL, fill_rand_order,
	             cfg.keys, cfg.value_size, 0);
	cfg.fill_cap = cap;
	if (s->e->sync)
		s->e->sync(s->db);
	s->preload_s = now_s() - t0;
	if (s->e->quiesce)
		s->e->quiesce(s->db);
	uint64_t r1 = rss_bytes();
	mi1 = mallinfo2();
	s->mem_rss = r1 > r0 ? r1 - r0 : 0;
	s->mem_heap =
	    mi1.uordblks + mi1.hblkhd > mi0.uordblks + mi0.hblkhd
	        ? (mi1.uordblks + mi1.hblkhd) - (mi0.uordblks + mi0.hblkhd)
	        : 0;
	if (s->e->mem_report)
		s->e->mem_report(s->db, s->mem_note, sizeof(s->mem_note));
	if (m.errs) {
		fprintf(stderr,
		        "  %s: preload: %" PRIu64 " errors (first %d)\n",
		        s->e->name, m.errs, m.err_rc);
		s->broken = 1;
	}
	fprintf(stderr, "  %s: preloaded %" PRIu64 " keys in %.2f s\n",
	        s->e->name, cfg.keys, s->preload_s);
}

/* ---- the workloads ------------------------------------------------------ */

/* ---- the driver ---------------------------------------------------------- */

static int applies(const struct eslot *s, const struct bench_workload *w,
                   char *why, size_t wl)
{
	if (s->broken) {
		snprintf(why, wl, "engine failed earlier");
		return 0;
	}
	if (w->persistent_only && !s->e->persistent) {
		snprintf(why, wl, "in-memory only");
		return 0;
	}
	if (w->engine_only && strcmp(s->e->name, w->engine_only) != 0) {
		snprintf(why, wl, "%s only", w->engine_only);
		return 0;
	}
	return 1;
}

static void run_workload(const struct bench_workload *w)
{
	const int *tl = cfg.threads;
	int ntl = cfg.nthreads;
	size_t vsize = cfg.value_size;
	struct streams st = { 0 };

	if (w->durable_threads)
		tl = cfg.dthreads, ntl = cfg.ndthreads;
	if (w->fixed_threads)
		tl = &w->fixed_threads, ntl = 1;
	if (w->setup)
		w->setup(w, &vsize);

	double wt0 = now_s();
	fprintf(stderr, "== %s: %s\n", w->name, w->what);
	for (int ti = 0; ti < ntl; ti++) {
		int th = tl[ti];
		struct cell cells[NENGINES];
		struct wl_round rd = {
			.w = w, .threads = th, .vsize = vsize, .st = &st
		};

		memset(cells, 0, sizeof(cells));
		for (int i = 0; i < nslots; i++) {
			cells[i].slot = &slots[i];
			cells[i].threads = th;
			cells[i].skipped = !applies(&slots[i], w, cells[i].why,
			                            sizeof(cells[i].why));
		}
		if (w->tabulate) {
			w->tabulate(w, cells, nslots);
			continue;
		}
		if (w->prepare)
			w->prepare(&rd);
		else
			streams_draw(&st, w, th);
		for (int i = 0; i < nslots; i++)
			cells[i].want = rd.order ? rd.norder : 0;
		/* --quick: a fresh store per run is its own warm-up */
		int first =
		    (cfg.quick && w->quick_no_warmup) || w->no_warmup ? 0 : -1;
		for (int rep = first; rep < cfg.reps; rep++) {
			rd.secs = rep < 0 ? cfg.seconds / 2 : cfg.seconds;
			for (int i = 0; i < nslots; i++) {
				struct eslot *s = &slots[i];
				struct cell *c = &cells[i];
				const struct bench_engine *e = s->e;
				struct measured m;

				if (c->skipped)
					continue;
				if (w->run)
					m = w->run(&rd, s, c);
				else
					m = run_once(e, s->db, w, th, &st, NULL,
					             0, vsize, rd.secs);
				if (c->skipped)
					continue;
				if (e->quiesce && s->db)
					e->quiesce(s->db);
				if (rep >= 0) {
					/* cell_add must not clobber what the
					 * run put in items_s */
					double it = c->items_s[c->n];
					cell_add(c, &m);
					if (w->keeps_items)
						c->items_s[c->n - 1] = it;
				}
			}
		}
		for (int i = 0; i < nslots; i++) {
			struct cell *c = &cells[i];
			struct result *res;
			uint64_t nk =
			    w->result_keys ? w->result_keys : cfg.keys;
			size_t vs = w->result_vsize ? w->result_vsize : vsize;

			if (c->skipped) {
				fprintf(stderr, "  %-12s skipped: %s\n",
				        c->slot->e->name, c->why);
				continue;
			}
			res = cell_result(c, w, vs, nk);
			if (w->report)
				w->report(res, c);
			fprintf(stderr,
			        "  %-12s t=%-3d %12.0f ops/s  p50 %8.0f ns  "
			        "p99 %9.0f ns %s\n",
			        res->engine, th, res->ops_s, res->p50, res->p99,
			        res->extra);
		}
		free(rd.order);
	}
	streams_free(&st);
	fprintf(stderr, "   (%s took %.1f s)\n", w->name, now_s() - wt0);
}

/* ---- command line ------------------------------------------------------- */

static int parse_list_int(const char *s, int *out, int max)
{
	int n = 0;
	char *dup = strdup(s), *save = NULL;

	for (char *t = strtok_r(dup, ",", &save); t && n < max;
	     t = strtok_r(NULL, ",", &save)) {
		int v = atoi(t);
		if (v < 1 || v > MAXTHREADS)
			die("bad thread count '%s' (1..%d)", t, MAXTHREADS);
		out[n++] = v;
	}
	free(dup);
	return n;
}

static int in_list(const char *list, const char *name)
{
	size_t l = strlen(name);
	const char *p = list;

	if (list == NULL)
		return 1;
	while ((p = strstr(p, name)) != NULL) {
		if ((p == list || p[-1] == ',') && (p[l] == ',' || p[l] == 0))
			return 1;
		p += l;
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(
	    f, "usage: dskvs-bench [options]\n"
	       "  --engines LIST     comma-separated (default: every engine "
	       "built in)\n"
	       "  --workloads LIST   comma-separated (default: all; --quick: "
	       "the zipfian YCSB only)\n"
	       "  --threads LIST     e.g. 1,2,4 (default 1,2)\n"
	       "  --durable-threads LIST  (default 1,2,4,8,16; --quick 1,8)\n"
	       "  --keys N           (default 1000000; --quick 100000)\n"
	       "  --collections N    (default 16)\n"
	       "  --key-size N       member bytes (default 16)\n"
	       "  --value-size N     (default 100)\n"
	       "  --seconds S        per timed run (default 2; --quick 0.05)\n"
	       "  --reps N           repetitions, median reported (default 3)\n"
	       "  --quick            smaller, shorter: the whole set in < 2 "
	       "minutes\n"
	       "  --csv FILE         write the CSV ('-' for stdout)\n"
	       "  --chart DIR        write a gnuplot PNG per workload\n"
	       "  --dir DIR          where stores live (default "
	       "/tmp/dskvs-bench)\n"
	       "  --lat-every N      time one op in N (power of two, default "
	       "8)\n"
	       "  --fill-cap S       cut count-bounded runs (fills, deletes) "
	       "after S s\n"
	       "                     (default 60; --quick 0.2)\n"
	       "  --churn N          churn-*: put + delete pairs (default "
	       "--keys)\n"
	       "  --churn-live N     churn-*: live keys kept (default 10000)\n"
	       "  --help\n\nengines:\n");
	for (size_t i = 0; i < NENGINES; i++)
		fprintf(f, "  %-12s %s%s%s%s\n", all_engines[i]->name,
		        all_engines[i]->what,
		        all_engines[i]->skip ? "  [not built: " : "",
		        all_engines[i]->skip ? all_engines[i]->skip : "",
		        all_engines[i]->skip ? "]" : "");
	fprintf(f, "\nworkloads:\n");
	for (size_t i = 0; i < nworkloads; i++)
		fprintf(f, "  %-17s %s\n", bench_workloads[i]->name,
		        bench_workloads[i]->what);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "engines", required_argument, 0, 'e' },
		{ "workloads", required_argument, 0, 'w' },
		{ "threads", required_argument, 0, 't' },
		{ "durable-threads", required_argument, 0, 'D' },
		{ "keys", required_argument, 0, 'k' },
		{ "collections", required_argument, 0, 'c' },
		{ "key-size", required_argument, 0, 'K' },
		{ "value-size", required_argument, 0, 'v' },
		{ "seconds", required_argument, 0, 's' },
		{ "reps", required_argument, 0, 'r' },
		{ "quick", no_argument, 0, 'q' },
		{ "csv", required_argument, 0, 'C' },
		{ "chart", required_argument, 0, 'P' },
		{ "dir", required_argument, 0, 'd' },
		{ "lat-every", required_argument, 0, 'L' },
		{ "fill-cap", required_argument, 0, 'F' },
		{ "churn", required_argument, 0, 'X' },
		{ "churn-live", required_argument, 0, 'Y' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	int opt, got_keys = 0, got_secs = 0, got_dt = 0;
	double got_cap = 0;
	double t_start = now_s();

	cfg.keys = 1000000;
	cfg.colls = 16;
	cfg.key_size = 16;
	cfg.value_size = 100;
	cfg.seconds = 2;
	cfg.reps = 3;
	cfg.dir = "/tmp/dskvs-bench";
	cfg.lat_every = 8;
	cfg.threads[0] = 1, cfg.threads[1] = 2, cfg.nthreads = 2;
	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (opt) {
		case 'e':
			cfg.engines = optarg;
			break;
		case 'w':
			cfg.workloads = optarg;
			break;
		case 't':
			cfg.nthreads = parse_list_int(optarg, cfg.threads, 32);
			break;
		case 'D':
			cfg.ndthreads =
			    parse_list_int(optarg, cfg.dthreads, 32);
			got_dt = 1;
			break;
		case 'k':
			cfg.keys = strtoull(optarg, NULL, 10);
			got_keys = 1;
			break;
		case 'c':
			cfg.colls = (unsigned int)atoi(optarg);
			break;
		case 'K':
			cfg.key_size = (unsigned int)atoi(optarg);
			break;
		case 'v':
			cfg.value_size = strtoull(optarg, NULL, 10);
			break;
		case 's':
			cfg.seconds = atof(optarg);
			got_secs = 1;
			break;
		case 'r':
			cfg.reps = atoi(optarg);
			break;
		case 'q':
			cfg.quick = 1;
			break;
		case 'C':
			cfg.csv = optarg;
			break;
		case 'P':
			cfg.chart = optarg;
			break;
		case 'd':
			cfg.dir = optarg;
			break;
		case 'L':
			cfg.lat_every = (unsigned int)atoi(optarg);
			break;
		case 'F':
			got_cap = atof(optarg);
			break;
		case 'X':
			cfg.churn = strtoull(optarg, NULL, 10);
			break;
		case 'Y':
			cfg.churn_live = strtoull(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	cfg.fill_cap = got_cap > 0 ? got_cap : cfg.quick ? 0.2 : 60;
	if (cfg.quick) {
		if (!got_keys)
			cfg.keys = 100000;
		if (!got_secs)
			cfg.seconds = 0.05;
	}
	if (!got_dt) {
		static const int full[] = { 1, 2, 4, 8, 16 };
		static const int q[] = { 1, 8 };
		const int *src = cfg.quick ? q : full;
		cfg.ndthreads = cfg.quick ? 2 : 5;
		memcpy(cfg.dthreads, src, sizeof(int) * (size_t)cfg.ndthreads);
	}
	if (cfg.keys < 16 || cfg.keys > UINT32_MAX)
		die("--keys must be 16 .. 2^32-1");
	if (cfg.colls < 1 || cfg.colls > 999 || cfg.colls > cfg.keys)
		die("--collections must be 1 .. 999");
	if (cfg.key_size < 8 || cfg.key_size > 200)
		die("--key-size must be 8 .. 200 (members are zero-padded "
		    "numbers)");
	if (cfg.value_size > 65536)
		die("--value-size must be at most 65536");
	if (cfg.reps < 1 || cfg.reps > MAXREPS)
		die("--reps must be 1 .. %d", MAXREPS);
	if (cfg.lat_every < 1 || (cfg.lat_every & (cfg.lat_every - 1)))
		die("--lat-every must be a power of two");
	if (cfg.churn_live > 1000000000)
		die("--churn-live must be at most 10^9");
	if (cfg.nthreads < 1 || cfg.ndthreads < 1)
		die("empty thread list");

	calibrate_tsc();
	mkdir(cfg.dir, 0700);
	if (strstr(cfg.dir, "dskvs-bench") == NULL)
		die("--dir must contain 'dskvs-bench' in its name (it is "
		    "emptied)");

	/* engines */
	for (size_t i = 0; i < NENGINES; i++) {
		const struct bench_engine *e = all_engines[i];
		if (cfg.engines && !in_list(cfg.engines, e->name))
			continue;
		if (e->skip) {
			fprintf(stderr, "skipping engine %s: %s\n", e->name,
			        e->skip);
			continue;
		}
		slots[nslots++].e = e;
	}
	if (cfg.engines) {
		char *dup = strdup(cfg.engines), *save = NULL;
		for (char *t = strtok_r(dup, ",", &save); t;
		     t = strtok_r(NULL, ",", &save)) {
			int ok = 0;
			for (size_t i = 0; i < NENGINES; i++)
				ok |= !strcmp(all_engines[i]->name, t);
			if (!ok)
				die("unknown engine '%s' (see --help)", t);
		}
		free(dup);
	}
	if (cfg.workloads) {
		char *dup = strdup(cfg.workloads), *save = NULL;
		for (char *t = strtok_r(dup, ",", &save); t;
		     t = strtok_r(NULL, ",", &save)) {
			int ok = 0;
			for (size_t i = 0; i < nworkloads; i++)
				ok |= !strcmp(bench_workloads[i]->name, t);
			if (!ok)
				die("unknown workload '%s' (see --help)", t);
		}
		free(dup);
	}
	if (nslots == 0)
		die("no engine to run");

	fprintf(stderr,
	        "dskvs-bench: %" PRIu64 " keys in %u collections, %u-byte "
	        "members, %zu-byte values, %.2f s x %d reps (+ warm-up), "
	        "%ld CPUs\n",
	        cfg.keys, cfg.colls, cfg.key_size, cfg.value_size, cfg.seconds,
	        cfg.reps, sysconf(_SC_NPROCESSORS_ONLN));
	build_keys();
	zipf_init(&zscr, 10000000000ull, 0.99, 26.46902820178302);
	zipf_init(&zlatest, cfg.keys, 0.99, 0);
	fill_rand_order = rand_order(cfg.keys, 3);

	/* stores used by every workload that needs a preloaded store */
	int need_main = 0;
	for (size_t i = 0; i < nworkloads; i++) {
		const struct bench_workload *w = bench_workloads[i];
		int sel = cfg.workloads ? in_list(cfg.workloads, w->name)
		                        : (!cfg.quick || w->in_quick);
		if (!sel)
			continue;
		if (!w->no_preload)
			need_main = 1;
	}
	if (need_main) {
		fprintf(stderr, "== preload\n");
		for (int i = 0; i < nslots; i++) {
			struct eslot *s = &slots[i];
			snprintf(s->dir, sizeof(s->dir), "%s/%s", cfg.dir,
			         s->e->name);
			s->db = open_engine(s->e, s->dir, 0, 0, max_threads(),
			                    cfg.value_size, cfg.keys);
			if (s->db == NULL) {
				s->broken = 1;
				continue;
			}
			preload(s);
		}
	}
	for (size_t i = 0; i < nworkloads; i++) {
		const struct bench_workload *w = bench_workloads[i];
		int sel = cfg.workloads ? in_list(cfg.workloads, w->name)
		                        : (!cfg.quick || w->in_quick);
		if (sel)
			run_workload(w);
	}
	for (int i = 0; i < nslots; i++) {
		if (slots[i].db) {
			slots[i].e->close(slots[i].db);
			slots[i].db = NULL;
		}
		if (!cfg.keep)
			rm_rf(slots[i].dir);
	}

	printf("## dskvs-bench results\n\n%" PRIu64 " keys in %u collections, "
	       "%u-byte members, %zu-byte values; %.2f s per run, median of %d "
	       "after a warm-up; %ld CPUs.\n",
	       cfg.keys, cfg.colls, cfg.key_size, cfg.value_size, cfg.seconds,
	       cfg.reps, sysconf(_SC_NPROCESSORS_ONLN));
	print_tables(stdout);
	print_goals(stdout);
	printf("\n(total run time %.1f s)\n", now_s() - t_start);
	if (cfg.csv)
		write_csv(cfg.csv);
	if (cfg.chart)
		write_charts(cfg.chart);
	return 0;
}
