/*
 * dskvs-bench: what the driver's files share — the configuration, the small
 * utilities, the keys and their streams, the latency histograms, the engine
 * slots and the results (each defined in the .c file its section names).
 */
#ifndef DSKVS_BENCH_BENCH_H
#define DSKVS_BENCH_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "engine.h"

#define MAXREPS     32
#define MAXTHREADS  256
#define HBUCKETS    1024
#define IDX_PER_THR (1u << 20) /* pre-drawn ops per thread, cycled */

/* ---- configuration (main.c) --------------------------------------------- */

struct bench_cfg {
	char *engines;
	char *workloads;
	int threads[32];
	int nthreads;
	int dthreads[32]; /* durable: 1..16 unless --threads given */
	int ndthreads;
	uint64_t keys;
	unsigned int colls;
	unsigned int key_size;
	size_t value_size;
	double seconds;
	int reps;
	int quick;
	const char *csv;
	const char *chart;
	const char *dir;
	unsigned int lat_every;
	int keep;
	double fill_cap;     /* most seconds a count-bounded run may take */
	uint64_t churn;      /* churn-*: pairs in all (0: keys) */
	uint64_t churn_live; /* churn-*: live keys (0: 10000) */
};

extern struct bench_cfg cfg;

/* ---- small utilities (util.c) ------------------------------------------- */

double now_s(void);
uint64_t rss_bytes(void);
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void *xmalloc(size_t n);
void *xcalloc(size_t a, size_t b);
uint64_t rng_next(uint64_t *s);
double rng_unit(uint64_t *s);
int rm_rf(const char *path);
uint64_t dir_bytes(const char *dir);
double dir_walk(const char *dir, int read_them);
void appendf(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- keys, zipf and key streams (keys.c) -------------------------------- */

extern char *val_pool; /* random bytes; a value is a window into it */
#define VAL_POOL (1u << 20)

static inline const char *value_for(uint64_t n)
{
	return val_pool + ((n * 64) & (VAL_POOL - 1));
}

/* Key i is "cCCC/MMMM...": its collection i * colls / keys (i % colls past
 * --keys: YCSB D's inserts) in 3 digits, then i zero-padded to --key-size
 * digits (more when i needs more). Index order is key order. An absent key
 * has 'x' for its first member digit: same length and collection, never
 * present. */
size_t key_format(uint64_t i, char *buf, size_t cap, int absent);
void build_keys(void);

/* A worker formats each key from its index into a buffer of its own (on
 * its stack, so in cache), as db_bench does, instead of reading a
 * pre-built key table: at 1M keys that table costs every engine two cache
 * misses per operation (the slot, then the string) and pulls every ratio
 * toward 1. key_at() gives the same bytes as key_format() (build_keys()
 * checks it) with no snprintf: ~10 ns. */
#define KEYBUF_CAP (5 + 200 + 1) /* "cCCC/", --key-size <= 200, NUL */

struct keybuf {
	struct bkey k;
	char b[KEYBUF_CAP];
};

extern const char key_digits2[200]; /* "000102...99" */
extern double key_coll_scale;       /* cfg.colls / cfg.keys */
extern uint64_t key_fast_below;     /* key_at's fast path: i < 10^key_size */

static inline const struct bkey *key_at(struct keybuf *kb, uint64_t i,
                                        int absent)
{
	char *b = kb->b;

	kb->k.full = b;
	kb->k.coll_len = 4;
	if (__builtin_expect(i >= key_fast_below, 0)) {
		kb->k.full_len = key_format(i, b, sizeof(kb->b), absent);
		return &kb->k;
	}
	/* the collection, floor(i * colls / keys), without a division: the
	 * double product is within one of it, and the integers settle it */
	uint64_t p = i * cfg.colls;
	uint64_t c = (uint64_t)((double)i * key_coll_scale);
	if (__builtin_expect(i >= cfg.keys, 0))
		c = i % cfg.colls;
	else if ((c + 1) * cfg.keys <= p)
		c++;
	else if (c * cfg.keys > p)
		c--;
	b[0] = 'c';
	b[1] = (char)('0' + c / 100);
	b[2] = key_digits2[(c % 100) * 2];
	b[3] = key_digits2[(c % 100) * 2 + 1];
	b[4] = '/';
	size_t len = 5 + cfg.key_size;
	char *q = b + len;
	*q = 0;
	memset(b + 5, '0', cfg.key_size);
	while (i >= 100) {
		q -= 2;
		memcpy(q, key_digits2 + (i % 100) * 2, 2);
		i /= 100;
	}
	if (i >= 10)
		memcpy(q - 2, key_digits2 + i * 2, 2);
	else
		q[-1] = (char)('0' + i);
	if (absent)
		b[5] = 'x';
	kb->k.full_len = len;
	return &kb->k;
}

uint64_t *seq_order(uint64_t n);
uint64_t *rand_order(uint64_t n, uint64_t seed);

struct zipf {
	double n, theta, alpha, zetan, eta, half_pow_theta;
};

void zipf_init(struct zipf *z, uint64_t n, double theta, double zetan);
uint64_t zipf_next(const struct zipf *z, uint64_t *s);
uint64_t ycsb_fnv64(uint64_t v);

/* ScrambledZipfian: a zipfian over 10^10 items (YCSB's precomputed zeta),
 * hashed and taken mod n so the hot keys are spread over the key space. */
extern struct zipf zscr;
extern struct zipf zlatest;

/* Pre-drawn per-thread streams for a (workload, threads) pair, shared by
 * every engine and repetition. */
struct streams {
	int threads;
	uint32_t *idx[MAXTHREADS + 1];
	uint8_t *ops[MAXTHREADS + 1];
};

struct bench_workload;
void streams_free(struct streams *st);
void streams_draw(struct streams *st, const struct bench_workload *w,
                  int threads);

/* ---- latency histograms (hist.c) ---------------------------------------- */

extern double ns_per_tick;

void calibrate_tsc(void);

static inline unsigned int hbucket(uint64_t v)
{
	if (v < 16)
		return (unsigned int)v;
	unsigned int msb = 63 - __builtin_clzll(v);
	return (msb - 3) * 16 + (unsigned int)((v >> (msb - 4)) & 15);
}

double hpercentile(const uint64_t *h, double q);
double median(const double *v, int n);

/* ---- engines (main.c) ---------------------------------------------------- */

extern const struct bench_engine *const all_engines[];
extern const size_t nengines; /* entries of all_engines[] */

struct eslot {
	const struct bench_engine *e;
	void *db;
	char dir[4096];
	int broken; /* an error made us stop using it */
	double preload_s;
	uint64_t mem_rss;  /* RSS growth over the preload */
	uint64_t mem_heap; /* malloc'd bytes growth over the preload */
	char mem_note[512];
};

extern struct eslot slots[]; /* nslots of them, in use */
extern int nslots;

void *open_engine(const struct bench_engine *e, const char *dir, int sync_every,
                  int existing, int threads, size_t vsize, uint64_t nkeys);
int max_threads(void);

/* ---- results and their output (report.c) -------------------------------- */

struct result {
	const char *engine;
	const char *workload;
	int threads;
	uint64_t keys;
	size_t value_size;
	uint64_t ops;
	double seconds;
	double ops_s;
	double p50, p99, p999;
	uint64_t rss;
	double rep[MAXREPS];
	int nrep;
	double cpu_ns_op;  /* CPU time per op of the timed threads (median) */
	double pcpu_ns_op; /* process CPU time per op (median; write loads) */
	char extra[512];
};

extern struct result *results;
extern size_t nresults;

struct result *add_result(void);
void print_tables(FILE *f);
void print_goals(FILE *f);
void write_csv(const char *path);
void write_charts(const char *dir);

#endif
