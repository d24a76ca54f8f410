/*
 * dskvs-bench: the interface every workload sits behind, and the measured
 * run they share (run.c).
 *
 * A workload is a struct bench_workload: a name, a line of help and the
 * hooks and fields that say how the driver runs it. Every hook may be NULL
 * for the common case, written next to it. The registry, in --help order,
 * is bench_workloads[] in workloads.c; adding a workload is a wl_*.c file
 * and a line there.
 *
 * The driver, per workload: setup once; then for each thread count, either
 * tabulate (no timed runs) or prepare, then the repetitions (a warm-up and
 * --reps measured ones), each engine in turn calling run; then report adds
 * the workload's notes to each engine's result.
 */
#ifndef DSKVS_BENCH_WORKLOAD_H
#define DSKVS_BENCH_WORKLOAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <x86intrin.h>

#include "bench.h"

/* ---- one measured run (run.c) ------------------------------------------- */

struct run;

struct worker {
	pthread_t th;
	struct run *r;
	int id;
	uint32_t *idx;   /* pre-drawn key indices (time-bounded) */
	uint8_t *ops;    /* pre-drawn op kinds (ycsb) */
	uint64_t lo, hi; /* slice of order[] (count-bounded) */
	uint64_t n, errs;
	uint64_t items; /* getall: members visited */
	uint64_t *hist;
	int writer;    /* readwhilewriting's extra writer: not measured */
	double t0, t1; /* its loop's start and end (count-bounded runs) */
	double cpu; /* the CPU time its loop used (CLOCK_THREAD_CPUTIME_ID) */
	char *buf;
	size_t cap;
};

struct run {
	const struct bench_engine *e;
	void *db;
	const struct bench_workload *w;
	size_t vsize;
	const uint64_t *order; /* count-bounded: which keys, in which order */
	pthread_barrier_t start;
	atomic_int stop;
	atomic_uint_fast64_t next_insert; /* ycsb-d */
	atomic_int finished;              /* workers done */
	unsigned int lat_mask;
	int err_rc;
};

/* In a loop hook: time one op in lat_every into the worker's histogram and
 * count it (needs locals n, lat_mask and w). */
#define TIMED(stmt)                                             \
	do {                                                    \
		if (__builtin_expect((n & lat_mask) == 0, 0)) { \
			uint64_t t_ = __rdtsc();                \
			stmt;                                   \
			w->hist[hbucket(__rdtsc() - t_)]++;     \
		} else {                                        \
			stmt;                                   \
		}                                               \
		n++;                                            \
	} while (0)

/* The locals of a loop hook: its run, engine, and what TIMED counts with. */
#define WL_LOOP_LOCALS(w)                    \
	struct run *r = (w)->r;              \
	const struct bench_engine *e = r->e; \
	unsigned int lat_mask = r->lat_mask; \
	uint64_t n = 0

static inline int stopped(struct run *r)
{
	return atomic_load_explicit(&r->stop, memory_order_relaxed);
}

void note_err(struct worker *w, int rc);

struct measured {
	uint64_t ops;
	double secs;
	double p50, p99, p999;
	uint64_t items;
	uint64_t errs;
	int err_rc;
	double cpu_ns_op; /* the measured workers' CPU time per op */
	/* w->writes: the process's CPU time (CLOCK_PROCESS_CPUTIME_ID) from
	 * the start barrier through the engine's sync after the loops, per
	 * op: the workers, and the engine's background threads (dskvs's
	 * janitor, its reclamation and compaction). 0 otherwise. */
	double pcpu_ns_op;
};

/* Run `threads` workers of w->loop on db; time-bounded for `secs` unless
 * order != NULL (then each worker does its slice). */
struct measured run_once(const struct bench_engine *e, void *db,
                         const struct bench_workload *w, int threads,
                         struct streams *st, const uint64_t *order,
                         uint64_t norder, size_t vsize, double secs);

/* Accumulates the repetitions of one engine x workload x threads cell. */
struct cell {
	struct eslot *slot;
	int threads;
	int n;
	double ops_s[MAXREPS], p50[MAXREPS], p99[MAXREPS], p999[MAXREPS];
	double secs[MAXREPS], items_s[MAXREPS], aux[MAXREPS], aux2[MAXREPS];
	double cpu_ns_op[MAXREPS];
	double pcpu_ns_op[MAXREPS];
	uint64_t ops[MAXREPS];
	uint64_t want; /* count-bounded: ops asked for */
	uint64_t errs;
	int err_rc;
	int skipped;
	char why[256];
};

void cell_add(struct cell *c, const struct measured *m);
struct result *cell_result(struct cell *c, const struct bench_workload *w,
                           size_t vsize, uint64_t nkeys);

/* ---- the workload interface --------------------------------------------- */

/* One thread count of one workload: what prepare draws, what run reads. */
struct wl_round {
	const struct bench_workload *w;
	int threads;
	size_t vsize;       /* the value size of this workload's runs */
	struct streams *st; /* per-thread streams (time-bounded runs) */
	uint64_t *order;    /* count-bounded runs: keys in this order... */
	uint64_t norder;    /* ...this many (also the ops a cell wants) */
	double secs;        /* this repetition's time bound */
};

struct bench_workload {
	const char *name;
	const char *what;  /* one line for --help and the tables */
	int in_quick;      /* part of the --quick default set */
	const void *param; /* for the workload's own hooks */

	/* Threads: 0 the --threads list, else just this many. */
	int fixed_threads;
	int durable_threads; /* use the --durable-threads list instead */
	int extra_writer;    /* one more, unmeasured, worker (w->writer) */
	/* A write workload: also report the process's CPU time per op
	 * (every thread: workers, and the engine's own threads), from the
	 * start of the loops through the engine's sync after them. */
	int writes;
	int persistent_only;     /* skip engines without files */
	const char *engine_only; /* skip every other engine */
	int no_preload;          /* needs no preloaded store (fresh ones) */
	int quick_no_warmup;     /* --quick: a fresh store is its own warm-up */
	int no_warmup;           /* never a warm-up run (a fresh store each) */
	int no_chart;            /* no threads-vs-ops/s chart */
	int keeps_items;         /* run sets c->items_s itself */
	uint64_t result_keys;    /* reported keys (0: --keys) */
	size_t result_vsize;     /* reported value size (0: the round's) */

	/* A worker's loop (in run_once): returns the ops it did. */
	uint64_t (*loop)(struct worker *w, void *tctx);
	/* Stream drawing for one thread from seed *s (NULL: uniform keys). */
	void (*draw)(const struct bench_workload *w, uint64_t *s, uint32_t *idx,
	             uint8_t **ops);
	/* Once, before the thread counts: may change the value size. */
	void (*setup)(const struct bench_workload *w, size_t *vsize);
	/* No timed runs: add results straight from the cells' slots. */
	void (*tabulate)(const struct bench_workload *w, struct cell *cells,
	                 int ncells);
	/* Per thread count (NULL: draw the streams). */
	void (*prepare)(struct wl_round *r);
	/* One repetition on one engine (NULL: w->loop on the preloaded
	 * store for r->secs). May set c->skipped (and c->why). */
	struct measured (*run)(struct wl_round *r, struct eslot *s,
	                       struct cell *c);
	/* Add the workload's notes to a cell's result. */
	void (*report)(struct result *res, struct cell *c);
};

/* run.c: one repetition on a fresh store in <dir>/<engine>.run, synced on
 * every write if sync_every; after (may be NULL) runs before the close. */
struct measured wl_run_fresh(struct wl_round *r, struct eslot *s,
                             struct cell *c, int sync_every,
                             void (*after)(struct wl_round *r, void *db,
                                           const char *dir, struct cell *c,
                                           const struct measured *m));
void wl_prepare_nothing(struct wl_round *r);

/* The loops that several workloads share (wl_basic.c, wl_fill.c). */
uint64_t wl_loop_fill(struct worker *w, void *tctx);
uint64_t wl_loop_overwrite(struct worker *w, void *tctx);
extern const struct bench_workload wl_fillrandom; /* the preload's too */
/* wl_incr.c: its four cases (declared here so that the registry gains one
 * line only). */
extern const struct bench_workload wl_incr_update, wl_incr_mutex,
    wl_incr_hot_update, wl_incr_hot_mutex;
extern const struct bench_workload wl_lag;    /* wl_lag.c */
extern const struct bench_workload wl_backup; /* wl_backup.c */
/* wl_batch.c: its four cases (the same: one registry line). */
extern const struct bench_workload wl_batch10, wl_batch10_single, wl_batch100,
    wl_batch100_single;

/* ---- the registry (workloads.c) ------------------------------------------ */

extern const struct bench_workload *const bench_workloads[];
extern const size_t nworkloads;

size_t workload_index(const struct bench_workload *w);

#endif
