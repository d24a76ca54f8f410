/*
 * dskvs-bench: dskvs side by side with the limit of its own design and with
 * the stores people would pick instead.
 *
 * DESIGN
 * - Every engine sits behind engine.h. All selected engines are opened and
 *   preloaded first; then, workload by workload and repetition by
 *   repetition, the engines take turns (engine A rep 1, engine B rep 1, ...,
 *   engine A rep 2, ...). On a shared, noisy machine this interleaving keeps
 *   a burst of noise from landing on one engine's runs only, which matters
 *   more than anything else when two engines are within 15% of each other.
 * - Keys and random choices are made before the timed loop: the key strings
 *   once for the whole run, the per-thread index streams once per workload
 *   and thread count, shared by every engine and repetition. So a zipfian
 *   pow(), a snprintf or an RNG step is never what is measured, and every
 *   engine sees the very same operations.
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
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "engine.h"

/* Paths are built into fixed buffers far larger than any real store path;
 * a truncated one just fails to open. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#define MAXREPS     32
#define MAXTHREADS  256
#define HBUCKETS    1024
#define IDX_PER_THR (1u << 20) /* pre-drawn ops per thread, cycled */

/* ---- configuration ------------------------------------------------------ */

static struct {
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
	double fill_cap; /* most seconds a count-bounded run may take */
} cfg;

/* ---- small utilities ---------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double ns_per_tick;

static void calibrate_tsc(void)
{
	double t0 = now_s();
	uint64_t c0 = __rdtsc();

	while (now_s() - t0 < 0.05)
		;
	ns_per_tick = (now_s() - t0) * 1e9 / (double)(__rdtsc() - c0);
}

static uint64_t rss_bytes(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = 0;
	fclose(f);
	return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "dskvs-bench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		die("out of memory (%zu bytes)", n);
	return p;
}

static void *xcalloc(size_t a, size_t b)
{
	void *p = calloc(a ? a : 1, b ? b : 1);

	if (p == NULL)
		die("out of memory");
	return p;
}

/* splitmix64: a fast, well-mixed stream for the pre-drawn choices. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s)
{
	return (rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static int rm_one(const char *p, const struct stat *st, int flag,
                  struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(p) : unlink(p);
}

/* rm -rf without forking (a fork of a process holding gigabytes of stores
 * costs more than the removal). */
static int rm_rf(const char *path)
{
	if (strlen(path) < 5 || strstr(path, "dskvs-bench") == NULL)
		return -1; /* never delete anything we did not create */
	return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Sum of the sizes of the regular files under dir (one level and below). */
static uint64_t dir_bytes(const char *dir)
{
	uint64_t total = 0;
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[4200];
	struct stat st;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (lstat(p, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode))
			total += dir_bytes(p);
		else if (S_ISREG(st.st_mode))
			total += (uint64_t)st.st_size;
	}
	closedir(d);
	return total;
}

/* Evict the files under dir from the page cache (only those files: other
 * users of the machine keep theirs), or read them all sequentially and
 * return the seconds it took. */
static double dir_walk(const char *dir, int read_them)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[4200];
	struct stat st;
	double t = 0;
	static char *buf;

	if (buf == NULL)
		buf = xmalloc(1 << 20);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (lstat(p, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			t += dir_walk(p, read_them);
			continue;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		int fd = open(p, O_RDONLY);
		if (fd < 0)
			continue;
		if (read_them) {
			double t0 = now_s();
			while (read(fd, buf, 1 << 20) > 0)
				;
			t += now_s() - t0;
		} else {
			fdatasync(fd);
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		}
		close(fd);
	}
	closedir(d);
	return t;
}

/* ---- histogram ---------------------------------------------------------- */

static inline unsigned int hbucket(uint64_t v)
{
	if (v < 16)
		return (unsigned int)v;
	unsigned int msb = 63 - __builtin_clzll(v);
	return (msb - 3) * 16 + (unsigned int)((v >> (msb - 4)) & 15);
}

static double hbucket_mid(unsigned int b)
{
	if (b < 16)
		return b;
	unsigned int msb = b / 16 + 3, sub = b % 16;
	double lo = ldexp(16 + sub, (int)msb - 4);
	return lo + ldexp(1, (int)msb - 4) / 2;
}

static double hpercentile(const uint64_t *h, double q)
{
	uint64_t total = 0, acc = 0;

	for (int i = 0; i < HBUCKETS; i++)
		total += h[i];
	if (total == 0)
		return 0;
	uint64_t want = (uint64_t)ceil(q * (double)total);
	if (want == 0)
		want = 1;
	for (int i = 0; i < HBUCKETS; i++) {
		acc += h[i];
		if (acc >= want)
			return hbucket_mid(i) * ns_per_tick;
	}
	return 0;
}

/* ---- keys --------------------------------------------------------------- */

static struct bkey *keys;    /* keys[0..cfg.keys) */
static struct bkey *missing; /* absent keys, nmissing of them */
static size_t nmissing;
static char *val_pool; /* random bytes; a value is a window into it */
#define VAL_POOL (1u << 20)

static unsigned int coll_of(uint64_t i)
{
	if (i < cfg.keys)
		return (unsigned int)(i * cfg.colls / cfg.keys);
	return (unsigned int)(i % cfg.colls);
}

/* Writes key i ("c007/000000000000123") into buf; returns its length.
 * Index order is the sorted order of the full keys, which is what fillseq
 * means for the ordered stores. */
static size_t key_format(uint64_t i, char *buf, size_t cap, int absent)
{
	int n = snprintf(buf, cap, "c%03u/%0*" PRIu64, coll_of(i),
	                 (int)cfg.key_size, i);
	if (absent)
		buf[5] = 'x'; /* same length and collection, never present */
	return (size_t)n;
}

static void build_keys(void)
{
	size_t stride = 5 + cfg.key_size + 1;
	char *mem;

	stride = (stride + 7) & ~(size_t)7;
	keys = xmalloc(cfg.keys * sizeof(*keys));
	mem = xmalloc(cfg.keys * stride);
	for (uint64_t i = 0; i < cfg.keys; i++) {
		char *p = mem + i * stride;
		keys[i].full = p;
		keys[i].full_len = key_format(i, p, stride, 0);
		keys[i].coll_len = 4;
	}
	nmissing = cfg.keys < IDX_PER_THR ? cfg.keys : IDX_PER_THR;
	missing = xmalloc(nmissing * sizeof(*missing));
	mem = xmalloc(nmissing * stride);
	uint64_t s = 42;
	for (size_t i = 0; i < nmissing; i++) {
		char *p = mem + i * stride;
		uint64_t k = rng_next(&s) % cfg.keys;
		missing[i].full = p;
		missing[i].full_len = key_format(k, p, stride, 1);
		missing[i].coll_len = 4;
	}
	val_pool = xmalloc(VAL_POOL + 65536 + 16384);
	for (size_t i = 0; i < VAL_POOL + 65536 + 16384; i++)
		val_pool[i] = (char)rng_next(&s);
}

static inline const char *value_for(uint64_t n)
{
	return val_pool + ((n * 64) & (VAL_POOL - 1));
}

/* ---- zipfian (Gray et al., "Quickly generating billion-record synthetic
 * databases", SIGMOD 1994), as YCSB uses it ------------------------------- */

struct zipf {
	double n, theta, alpha, zetan, eta, half_pow_theta;
};

static double zeta(uint64_t n, double theta)
{
	double sum = 0;

	for (uint64_t i = 1; i <= n; i++)
		sum += 1.0 / pow((double)i, theta);
	return sum;
}

static void zipf_init(struct zipf *z, uint64_t n, double theta, double zetan)
{
	double zeta2 = zeta(2, theta);

	z->n = (double)n;
	z->theta = theta;
	z->alpha = 1.0 / (1.0 - theta);
	z->zetan = zetan > 0 ? zetan : zeta(n, theta);
	z->eta = (1 - pow(2.0 / (double)n, 1 - theta)) / (1 - zeta2 / z->zetan);
	z->half_pow_theta = 1 + pow(0.5, theta);
}

static uint64_t zipf_next(const struct zipf *z, uint64_t *s)
{
	double u = rng_unit(s);
	double uz = u * z->zetan;

	if (uz < 1.0)
		return 0;
	if (uz < z->half_pow_theta)
		return 1;
	return (uint64_t)(z->n * pow(z->eta * u - z->eta + 1, z->alpha));
}

/* YCSB's fnvhash64: FNV-1a over the 8 bytes of the value, low byte first,
 * then Math.abs of the signed result. */
static uint64_t ycsb_fnv64(uint64_t v)
{
	uint64_t h = 0xCBF29CE484222325ull;

	for (int i = 0; i < 8; i++) {
		h ^= v & 0xff;
		v >>= 8;
		h *= 1099511628211ull;
	}
	int64_t sh = (int64_t)h;
	return sh < 0 ? (uint64_t)(-(sh + 1)) + 1 : (uint64_t)sh;
}

/* ScrambledZipfian: a zipfian over 10^10 items (YCSB's precomputed zeta),
 * hashed and taken mod n so the hot keys are spread over the key space. */
static struct zipf zscr;
static struct zipf zlatest;

/* ---- workloads ---------------------------------------------------------- */

enum kind {
	W_FILL,
	W_OVERWRITE,
	W_READ,
	W_READMISSING,
	W_RWW,
	W_DELETE,
	W_GETALL,
	W_YCSB,
	W_DURABLE,
	W_JANITOR,
	W_GO,
	W_RECOVERY,
	W_MEMORY,
};

enum op { OP_READ, OP_UPDATE, OP_INSERT, OP_RMW };

struct wdef {
	const char *name;
	enum kind kind;
	int seq;      /* fill: in key order */
	char ycsb;    /* 'a' .. 'f' */
	int zipf;     /* ycsb key choice */
	int in_quick; /* part of the --quick default set */
	const char *what;
};

static const struct wdef wdefs[] = {
	{ "memory", W_MEMORY, 0, 0, 0, 1,
	  "resident bytes per entry beyond key and value bytes (preload)" },
	{ "fillseq", W_FILL, 1, 0, 0, 1,
	  "insert N keys in key order, fresh store" },
	{ "fillrandom", W_FILL, 0, 0, 0, 1,
	  "insert N keys in random order, fresh store" },
	{ "overwrite", W_OVERWRITE, 0, 0, 0, 1, "put random existing keys" },
	{ "readrandom", W_READ, 0, 0, 0, 1, "get random existing keys" },
	{ "readmissing", W_READMISSING, 0, 0, 0, 1, "get absent keys" },
	{ "readwhilewriting", W_RWW, 0, 0, 0, 1,
	  "readrandom while one extra writer overwrites (readers measured)" },
	{ "deleterandom", W_DELETE, 0, 0, 0, 1,
	  "delete N/8 random keys (put back untimed)" },
	{ "getall", W_GETALL, 0, 0, 0, 1,
	  "scan a random whole collection (ops = scans)" },
	{ "ycsb-a", W_YCSB, 0, 'a', 1, 1, "50% read, 50% update, zipfian" },
	{ "ycsb-b", W_YCSB, 0, 'b', 1, 1, "95% read, 5% update, zipfian" },
	{ "ycsb-c", W_YCSB, 0, 'c', 1, 1, "100% read, zipfian" },
	{ "ycsb-d", W_YCSB, 0, 'd', 1, 1, "95% read latest, 5% insert" },
	{ "ycsb-f", W_YCSB, 0, 'f', 1, 1,
	  "50% read, 50% read-modify-write, zipfian" },
	{ "ycsb-a-uni", W_YCSB, 0, 'a', 0, 0, "YCSB A, uniform keys" },
	{ "ycsb-b-uni", W_YCSB, 0, 'b', 0, 0, "YCSB B, uniform keys" },
	{ "ycsb-c-uni", W_YCSB, 0, 'c', 0, 0, "YCSB C, uniform keys" },
	{ "ycsb-d-uni", W_YCSB, 0, 'd', 0, 0,
	  "YCSB D, uniform reads, 5% insert" },
	{ "ycsb-f-uni", W_YCSB, 0, 'f', 0, 0, "YCSB F, uniform keys" },
	{ "durable", W_DURABLE, 0, 0, 0, 1,
	  "put random keys, every write synced (threads 1..16)" },
	{ "janitor", W_JANITOR, 0, 0, 0, 1,
	  "dskvs log bandwidth (4 KiB values) vs dd conv=fdatasync" },
	{ "go-original", W_GO, 0, 0, 0, 1,
	  "Go dskvs concurrency bench: 8192 keys, 1000 B, 100 threads" },
	{ "recovery", W_RECOVERY, 0, 0, 0, 1,
	  "open a store of N keys (cold cache) vs reading its files" },
};
#define NWDEFS (sizeof(wdefs) / sizeof(wdefs[0]))

/* ---- engines ------------------------------------------------------------ */

static const struct bench_engine *all_engines[] = {
	&bench_engine_dskvs,      &bench_engine_ceiling,
	&bench_engine_ceiling_hs, &bench_engine_rwlock,
	&bench_engine_lfht,       &bench_engine_lmdb,
	&bench_engine_leveldb,    &bench_engine_rocksdb,
	&bench_engine_sqlite,     &bench_engine_kc_cache,
	&bench_engine_kc_hash,    &bench_engine_tkrzw_tiny,
	&bench_engine_tkrzw_hash,
};
#define NENGINES (sizeof(all_engines) / sizeof(all_engines[0]))

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

static struct eslot slots[NENGINES];
static int nslots;

/* ---- results ------------------------------------------------------------ */

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
	char extra[512];
};

static struct result *results;
static size_t nresults, capresults;

static struct result *add_result(void)
{
	if (nresults == capresults) {
		capresults = capresults ? capresults * 2 : 256;
		results = realloc(results, capresults * sizeof(*results));
		if (results == NULL)
			die("out of memory");
	}
	memset(&results[nresults], 0, sizeof(results[0]));
	return &results[nresults++];
}

/* ---- one measured run -----------------------------------------------------
 */

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
	int writer; /* readwhilewriting's extra writer: not measured */
	char *buf;
	size_t cap;
};

struct run {
	const struct bench_engine *e;
	void *db;
	const struct wdef *w;
	enum kind kind;
	size_t vsize;
	const uint64_t *order; /* count-bounded: which keys, in which order */
	pthread_barrier_t start;
	atomic_int stop;
	atomic_uint_fast64_t next_insert; /* ycsb-d */
	atomic_int finished;              /* workers done */
	unsigned int lat_mask;
	int err_rc;
};

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

static inline int stopped(struct run *r)
{
	return atomic_load_explicit(&r->stop, memory_order_relaxed);
}

static void note_err(struct worker *w, int rc)
{
	w->errs++;
	if (w->r->err_rc == 0)
		w->r->err_rc = rc;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->r;
	const struct bench_engine *e = r->e;
	void *db = r->db;
	void *tctx = e->thread_begin ? e->thread_begin(db) : NULL;
	unsigned int lat_mask = r->lat_mask;
	uint64_t n = 0;
	size_t len;
	int rc;

	pthread_barrier_wait(&r->start);
	switch (r->kind) {
	case W_FILL:
	case W_DELETE:
		for (uint64_t j = w->lo; j < w->hi && !stopped(r); j++) {
			const struct bkey *k = &keys[r->order[j]];
			if (r->kind == W_FILL)
				TIMED(rc = e->put(db, tctx, k, value_for(j),
				                  r->vsize));
			else
				TIMED(rc = e->del(db, tctx, k));
			if (rc != 0)
				note_err(w, rc);
		}
		break;
	case W_OVERWRITE:
	case W_DURABLE:
	case W_JANITOR:
		while (!stopped(r)) {
			const struct bkey *k =
			    &keys[w->idx[n & (IDX_PER_THR - 1)]];
			TIMED(rc = e->put(db, tctx, k, value_for(n + w->id),
			                  r->vsize));
			if (rc != 0)
				note_err(w, rc);
		}
		break;
	case W_READ:
	case W_RWW:
		if (w->writer) {
			while (!stopped(r)) {
				const struct bkey *k =
				    &keys[w->idx[n & (IDX_PER_THR - 1)]];
				rc =
				    e->put(db, tctx, k, value_for(n), r->vsize);
				n++;
			}
			break;
		}
		while (!stopped(r)) {
			const struct bkey *k =
			    &keys[w->idx[n & (IDX_PER_THR - 1)]];
			TIMED(rc = e->get(db, tctx, k, w->buf, w->cap, &len));
			if (rc != 0)
				note_err(w, rc);
		}
		break;
	case W_READMISSING:
		while (!stopped(r)) {
			const struct bkey *k =
			    &missing[w->idx[n & (IDX_PER_THR - 1)] % nmissing];
			TIMED(rc = e->get(db, tctx, k, w->buf, w->cap, &len));
			if (rc != BENCH_NOTFOUND)
				note_err(w, rc);
		}
		break;
	case W_GETALL:
		while (!stopped(r)) {
			char c[16];
			uint64_t items = 0, bytes = 0;
			unsigned int ci =
			    w->idx[n & (IDX_PER_THR - 1)] % cfg.colls;
			snprintf(c, sizeof(c), "c%03u", ci);
			TIMED(rc = e->scan(db, tctx, c, 4, &items, &bytes));
			if (rc != 0)
				note_err(w, rc);
			w->items += items;
		}
		break;
	case W_YCSB:
		while (!stopped(r)) {
			uint32_t j = n & (IDX_PER_THR - 1);
			uint64_t ki = w->idx[j];
			struct bkey tmp;
			char kb[64];
			const struct bkey *k;
			int op = w->ops[j];

			if (r->w->ycsb == 'd') {
				/* idx holds an offset back from the latest key
				 */
				uint64_t latest =
				    atomic_load_explicit(&r->next_insert,
				                         memory_order_relaxed) -
				    1;
				if (op == OP_INSERT)
					ki = atomic_fetch_add(&r->next_insert,
					                      1);
				else
					ki = ki > latest ? 0 : latest - ki;
			}
			if (ki < cfg.keys) {
				k = &keys[ki];
			} else {
				tmp.full = kb;
				tmp.full_len =
				    key_format(ki, kb, sizeof(kb), 0);
				tmp.coll_len = 4;
				k = &tmp;
			}
			switch (op) {
			case OP_READ:
				TIMED(rc = e->get(db, tctx, k, w->buf, w->cap,
				                  &len));
				break;
			case OP_UPDATE:
			case OP_INSERT:
				TIMED(rc = e->put(db, tctx, k, value_for(n),
				                  r->vsize));
				break;
			default: /* read-modify-write */
				TIMED(rc = e->get(db, tctx, k, w->buf, w->cap,
				                  &len);
				      if (rc == 0) rc =
				          e->put(db, tctx, k, w->buf, len));
				break;
			}
			if (rc != 0 && rc != BENCH_NOTFOUND)
				note_err(w, rc);
		}
		break;
	default:
		break;
	}
	w->n = n;
	if (e->thread_end)
		e->thread_end(db, tctx);
	atomic_fetch_add(&r->finished, 1);
	return NULL;
}

/* Pre-drawn per-thread streams for a (workload, threads) pair, shared by
 * every engine and repetition. */
struct streams {
	int threads;
	uint32_t *idx[MAXTHREADS + 1];
	uint8_t *ops[MAXTHREADS + 1];
};

static void streams_free(struct streams *st)
{
	for (int t = 0; t <= MAXTHREADS; t++) {
		free(st->idx[t]);
		free(st->ops[t]);
		st->idx[t] = NULL;
		st->ops[t] = NULL;
	}
}

static void streams_draw(struct streams *st, const struct wdef *w, int threads)
{
	streams_free(st);
	st->threads = threads;
	for (int t = 0; t <= threads && t <= MAXTHREADS; t++) {
		uint64_t s = 0x5eed0000ull + (uint64_t)t * 7919 +
		             (uint64_t)(w - wdefs) * 104729;
		uint32_t *idx = xmalloc(IDX_PER_THR * sizeof(*idx));
		uint8_t *ops = NULL;
		double rprop = 1, uprop = 0, iprop = 0;

		if (w->kind == W_YCSB) {
			ops = xmalloc(IDX_PER_THR);
			switch (w->ycsb) {
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
		}
		for (uint32_t j = 0; j < IDX_PER_THR; j++) {
			uint64_t k;
			if (w->kind == W_YCSB && w->zipf) {
				if (w->ycsb == 'd')
					k = zipf_next(&zlatest, &s);
				else
					k = ycsb_fnv64(zipf_next(&zscr, &s)) %
					    cfg.keys;
			} else if (w->kind == W_YCSB && w->ycsb == 'd') {
				/* uniform variant of D: offset anywhere back */
				k = rng_next(&s) % cfg.keys;
			} else {
				k = rng_next(&s) % cfg.keys;
			}
			idx[j] = (uint32_t)k;
			if (ops) {
				double u = rng_unit(&s);
				if (u < rprop)
					ops[j] = OP_READ;
				else if (u < rprop + uprop)
					ops[j] = OP_UPDATE;
				else if (u < rprop + uprop + iprop)
					ops[j] = OP_INSERT;
				else
					ops[j] = OP_RMW;
			}
		}
		st->idx[t] = idx;
		st->ops[t] = ops;
	}
}

struct measured {
	uint64_t ops;
	double secs;
	double p50, p99, p999;
	uint64_t items;
	uint64_t errs;
	int err_rc;
};

/* Run `threads` workers of workload w on db; time-bounded for cfg.seconds
 * (or `secs`) unless order != NULL (then each worker does its slice). */
static struct measured run_once(const struct bench_engine *e, void *db,
                                const struct wdef *w, enum kind kind,
                                int threads, struct streams *st,
                                const uint64_t *order, uint64_t norder,
                                size_t vsize, double secs)
{
	struct run r = { 0 };
	struct worker *ws;
	int extra = kind == W_RWW ? 1 : 0;
	int nth = threads + extra;
	struct measured m = { 0 };
	uint64_t *hist = xcalloc(HBUCKETS, sizeof(uint64_t));

	r.e = e;
	r.db = db;
	r.w = w;
	r.kind = kind;
	r.vsize = vsize;
	r.order = order;
	r.lat_mask = cfg.lat_every - 1;
	atomic_store(&r.next_insert, cfg.keys);
	pthread_barrier_init(&r.start, NULL, (unsigned int)nth + 1);
	ws = xcalloc((size_t)nth, sizeof(*ws));
	for (int t = 0; t < nth; t++) {
		struct worker *wk = &ws[t];
		wk->r = &r;
		wk->id = t;
		wk->writer = t >= threads;
		wk->idx =
		    st ? st->idx[t < st->threads ? t : st->threads] : NULL;
		wk->ops =
		    st ? st->ops[t < st->threads ? t : st->threads] : NULL;
		if (order) {
			wk->lo = norder * (uint64_t)t / (uint64_t)threads;
			wk->hi = norder * (uint64_t)(t + 1) / (uint64_t)threads;
		}
		wk->hist = xcalloc(HBUCKETS, sizeof(uint64_t));
		wk->cap = vsize + 65536;
		wk->buf = xmalloc(wk->cap);
		if (pthread_create(&wk->th, NULL, worker_main, wk) != 0)
			die("pthread_create failed");
	}
	pthread_barrier_wait(&r.start);
	double t0 = now_s();
	if (order == NULL) {
		struct timespec ts = { (time_t)secs,
			               (long)((secs - (time_t)secs) * 1e9) };
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
		atomic_store(&r.stop, 1);
	} else {
		/* Count-bounded, but a slow engine is cut off at fill_cap
		 * seconds (reported as a partial run) so one store cannot
		 * hold the whole comparison up. */
		struct timespec ms = { 0, 1000000 };
		while (atomic_load(&r.finished) < nth) {
			if (now_s() - t0 > cfg.fill_cap) {
				atomic_store(&r.stop, 1);
				break;
			}
			nanosleep(&ms, NULL);
		}
	}
	for (int t = 0; t < nth; t++)
		pthread_join(ws[t].th, NULL);
	m.secs = now_s() - t0;
	for (int t = 0; t < threads; t++) {
		m.ops += ws[t].n;
		m.errs += ws[t].errs;
		m.items += ws[t].items;
		for (int b = 0; b < HBUCKETS; b++)
			hist[b] += ws[t].hist[b];
	}
	for (int t = 0; t < nth; t++) {
		free(ws[t].hist);
		free(ws[t].buf);
	}
	m.p50 = hpercentile(hist, 0.50);
	m.p99 = hpercentile(hist, 0.99);
	m.p999 = hpercentile(hist, 0.999);
	m.err_rc = r.err_rc;
	free(hist);
	free(ws);
	pthread_barrier_destroy(&r.start);
	return m;
}

/* ---- medians ------------------------------------------------------------ */

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
	double tmp[MAXREPS];

	if (n <= 0)
		return 0;
	memcpy(tmp, v, sizeof(double) * (size_t)n);
	qsort(tmp, (size_t)n, sizeof(double), cmp_d);
	return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

static void appendf(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Accumulates the repetitions of one engine x workload x threads cell. */
struct cell {
	struct eslot *slot;
	int threads;
	int n;
	double ops_s[MAXREPS], p50[MAXREPS], p99[MAXREPS], p999[MAXREPS];
	double secs[MAXREPS], items_s[MAXREPS], aux[MAXREPS], aux2[MAXREPS];
	uint64_t ops[MAXREPS];
	uint64_t want; /* count-bounded: ops asked for */
	uint64_t errs;
	int err_rc;
	int skipped;
	char why[256];
};

static void cell_add(struct cell *c, const struct measured *m)
{
	int i = c->n++;

	c->ops_s[i] = m->secs > 0 ? (double)m->ops / m->secs : 0;
	c->p50[i] = m->p50;
	c->p99[i] = m->p99;
	c->p999[i] = m->p999;
	c->secs[i] = m->secs;
	c->ops[i] = m->ops;
	c->items_s[i] = m->secs > 0 ? (double)m->items / m->secs : 0;
	c->errs += m->errs;
	if (c->err_rc == 0)
		c->err_rc = m->err_rc;
}

static struct result *cell_result(struct cell *c, const struct wdef *w,
                                  size_t vsize, uint64_t nkeys)
{
	struct result *res = add_result();
	double med = median(c->ops_s, c->n);
	int mi = 0;

	for (int i = 0; i < c->n; i++)
		if (fabs(c->ops_s[i] - med) < fabs(c->ops_s[mi] - med))
			mi = i;
	res->engine = c->slot->e->name;
	res->workload = w->name;
	res->threads = c->threads;
	res->keys = nkeys;
	res->value_size = vsize;
	res->ops = c->ops[mi];
	res->seconds = c->secs[mi];
	res->ops_s = med;
	res->p50 = median(c->p50, c->n);
	res->p99 = median(c->p99, c->n);
	res->p999 = median(c->p999, c->n);
	res->rss = rss_bytes();
	res->nrep = c->n;
	memcpy(res->rep, c->ops_s, sizeof(double) * (size_t)c->n);
	if (c->want && res->ops < c->want)
		appendf(res->extra, sizeof(res->extra),
		        "partial=%.0f%% (cut at the time cap) ",
		        100.0 * (double)res->ops / (double)c->want);
	if (c->errs)
		appendf(res->extra, sizeof(res->extra),
		        "errors=%" PRIu64 " (first %d)", c->errs, c->err_rc);
	return res;
}

static void appendf(char *buf, size_t cap, const char *fmt, ...)
{
	size_t l = strlen(buf);
	va_list ap;

	if (l >= cap)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + l, cap - l, fmt, ap);
	va_end(ap);
}

/* ---- opening and preloading ---------------------------------------------- */

static void *open_engine(const struct bench_engine *e, const char *dir,
                         int sync_every, int existing, int threads,
                         size_t vsize, uint64_t nkeys)
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

static int max_threads(void)
{
	int m = 1;

	for (int i = 0; i < cfg.nthreads; i++)
		if (cfg.threads[i] > m)
			m = cfg.threads[i];
	return m;
}

static uint64_t *seq_order(uint64_t n)
{
	uint64_t *o = xmalloc(n * sizeof(*o));

	for (uint64_t i = 0; i < n; i++)
		o[i] = i;
	return o;
}

static uint64_t *rand_order(uint64_t n, uint64_t seed)
{
	uint64_t *o = seq_order(n);

	for (uint64_t i = n - 1; i > 0; i--) {
		uint64_t j = rng_next(&seed) % (i + 1);
		uint64_t t = o[i];
		o[i] = o[j];
		o[j] = t;
	}
	return o;
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
	    run_once(s->e, s->db, &wdefs[0], W_FILL, th, NULL, fill_rand_order,
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

static int applies(const struct eslot *s, const struct wdef *w, char *why,
                   size_t wl)
{
	if (s->broken) {
		snprintf(why, wl, "engine failed earlier");
		return 0;
	}
	switch (w->kind) {
	case W_DURABLE:
	case W_RECOVERY:
		if (!s->e->persistent) {
			snprintf(why, wl, "in-memory only");
			return 0;
		}
		return 1;
	case W_JANITOR:
		if (strcmp(s->e->name, "dskvs") != 0) {
			snprintf(why, wl, "dskvs only");
			return 0;
		}
		return 1;
	default:
		return 1;
	}
}

static double dd_bw; /* bytes/s of write + fdatasync on the store's disk */

static double measure_dd(uint64_t bytes)
{
	char p[4200];
	char *buf = xmalloc(1 << 20);
	int fd;

	memset(buf, 0x5a, 1 << 20);
	snprintf(p, sizeof(p), "%s/ddtest", cfg.dir);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		free(buf);
		return 0;
	}
	double t0 = now_s();
	for (uint64_t w = 0; w < bytes; w += 1 << 20)
		if (write(fd, buf, 1 << 20) != 1 << 20)
			break;
	fdatasync(fd);
	double t = now_s() - t0;
	close(fd);
	unlink(p);
	free(buf);
	return (double)bytes / t;
}

static void run_workload(const struct wdef *w)
{
	const int *tl = cfg.threads;
	int ntl = cfg.nthreads;
	static const int one[1] = { 1 };
	static const int hundred[1] = { 100 };
	size_t vsize = cfg.value_size;
	struct streams st = { 0 };

	if (w->kind == W_DURABLE)
		tl = cfg.dthreads, ntl = cfg.ndthreads;
	if (w->kind == W_RECOVERY || w->kind == W_MEMORY)
		tl = one, ntl = 1;
	if (w->kind == W_GO)
		tl = hundred, ntl = 1;
	if (w->kind == W_JANITOR) {
		vsize = vsize > 4096 ? vsize : 4096;
		dd_bw = measure_dd(cfg.quick ? 64u << 20 : 256u << 20);
	}

	double wt0 = now_s();
	fprintf(stderr, "== %s: %s\n", w->name, w->what);
	for (int ti = 0; ti < ntl; ti++) {
		int th = tl[ti];
		struct cell cells[NENGINES];
		uint64_t *order = NULL;
		uint64_t norder = 0;

		memset(cells, 0, sizeof(cells));
		for (int i = 0; i < nslots; i++) {
			cells[i].slot = &slots[i];
			cells[i].threads = th;
			cells[i].want =
			    (w->kind == W_FILL || w->kind == W_DELETE)
			        ? (w->kind == W_FILL ? cfg.keys : cfg.keys / 8)
			        : 0;
			cells[i].skipped = !applies(&slots[i], w, cells[i].why,
			                            sizeof(cells[i].why));
		}
		if (w->kind == W_MEMORY) {
			for (int i = 0; i < nslots; i++) {
				struct eslot *s = &slots[i];
				struct result *res;
				double kv =
				    (double)(5 + cfg.key_size + cfg.value_size);
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
				snprintf(
				    res->extra, sizeof(res->extra),
				    "rss_per_entry_over_kv=%.1f "
				    "heap_per_entry_over_kv=%.1f%s%s",
				    (double)s->mem_rss / (double)cfg.keys - kv,
				    (double)s->mem_heap / (double)cfg.keys - kv,
				    s->mem_note[0] ? " " : "", s->mem_note);
			}
			continue;
		}
		if (w->kind == W_FILL) {
			order = w->seq ? seq_order(cfg.keys)
			               : rand_order(cfg.keys, 7);
			norder = cfg.keys;
		} else if (w->kind == W_DELETE) {
			order = rand_order(cfg.keys, 11);
			norder = cfg.keys / 8;
		} else if (w->kind != W_GO && w->kind != W_RECOVERY) {
			streams_draw(&st, w, th);
		}
		/* --quick: a fresh store per run is its own warm-up */
		int first =
		    cfg.quick && (w->kind == W_FILL || w->kind == W_DURABLE ||
		                  w->kind == W_GO)
		        ? 0
		        : -1;
		for (int rep = first; rep < cfg.reps; rep++) {
			double secs = rep < 0 ? cfg.seconds / 2 : cfg.seconds;
			for (int i = 0; i < nslots; i++) {
				struct eslot *s = &slots[i];
				struct cell *c = &cells[i];
				const struct bench_engine *e = s->e;
				struct measured m = { 0 };
				char d[4200];

				if (c->skipped)
					continue;
				switch (w->kind) {
				case W_FILL:
				case W_DURABLE:
				case W_JANITOR: {
					snprintf(d, sizeof(d), "%s/%s.run",
					         cfg.dir, e->name);
					void *db = open_engine(
					    e, d, w->kind == W_DURABLE, 0, th,
					    vsize, cfg.keys);
					if (db == NULL) {
						c->skipped = 1;
						snprintf(c->why, sizeof(c->why),
						         "open failed");
						break;
					}
					if (w->kind == W_FILL) {
						m = run_once(e, db, w, W_FILL,
						             th, NULL, order,
						             norder, vsize, 0);
					} else {
						m = run_once(e, db, w, w->kind,
						             th, &st, NULL, 0,
						             vsize, secs);
					}
					if (w->kind == W_JANITOR) {
						double t0 = now_s();
						if (e->sync)
							e->sync(db);
						double ts = now_s() - t0;
						uint64_t b = dir_bytes(d);
						c->aux[c->n] =
						    (double)b / (m.secs + ts);
						c->aux2[c->n] = ts;
					}
					double tc = now_s();
					e->close(db);
					rm_rf(d);
					if (getenv("BENCH_DEBUG"))
						fprintf(stderr,
						        "    [%s run %.3f s, "
						        "close+rm "
						        "%.3f s]\n",
						        e->name, m.secs,
						        now_s() - tc);
					break;
				}
				case W_DELETE:
					m = run_once(e, s->db, w, W_DELETE, th,
					             NULL, order, norder, vsize,
					             0);
					/* put the keys back, untimed, all */
					double cap = cfg.fill_cap;
					cfg.fill_cap = 1e12;
					run_once(e, s->db, w, W_FILL, th, NULL,
					         order, norder, vsize, 0);
					cfg.fill_cap = cap;
					break;
				case W_GO: {
					snprintf(d, sizeof(d), "%s/%s.run",
					         cfg.dir, e->name);
					void *db = open_engine(e, d, 0, 0, 100,
					                       1000, 8192);
					if (db == NULL) {
						c->skipped = 1;
						break;
					}
					extern struct measured go_original(
					    const struct bench_engine *e,
					    void *db, double *phase);
					m = go_original(e, db, &c->aux[c->n]);
					e->close(db);
					rm_rf(d);
					break;
				}
				case W_RECOVERY: {
					if (e->sync)
						e->sync(s->db);
					e->close(s->db);
					s->db = NULL;
					uint64_t b = dir_bytes(s->dir);
					dir_walk(s->dir, 0);
					double t0 = now_s();
					s->db = open_engine(
					    e, s->dir, 0, 1, max_threads(),
					    cfg.value_size, cfg.keys);
					double to = now_s() - t0;
					if (s->db == NULL) {
						s->broken = 1;
						c->skipped = 1;
						snprintf(c->why, sizeof(c->why),
						         "reopen failed");
						break;
					}
					/* was everything there? */
					size_t len;
					char vb[65536];
					uint64_t bad = 0;
					for (uint64_t k = 0; k < cfg.keys;
					     k += cfg.keys / 97 + 1)
						if (e->get(s->db, NULL,
						           &keys[k], vb,
						           sizeof(vb),
						           &len) != 0)
							bad++;
					dir_walk(s->dir, 0);
					double tr = dir_walk(s->dir, 1);
					m.ops = cfg.keys;
					m.secs = to;
					m.errs = bad;
					c->aux[c->n] = (double)b / to;
					c->aux2[c->n] = (double)b / tr;
					c->items_s[c->n] = (double)b;
					break;
				}
				default:
					m = run_once(e, s->db, w, w->kind, th,
					             &st, NULL, 0, vsize, secs);
					break;
				}
				if (c->skipped)
					continue;
				if (e->quiesce && s->db)
					e->quiesce(s->db);
				if (rep >= 0) {
					/* cell_add must not clobber aux slots
					 */
					double a = c->aux[c->n],
					       a2 = c->aux2[c->n];
					double it = c->items_s[c->n];
					cell_add(c, &m);
					if (w->kind == W_RECOVERY ||
					    w->kind == W_JANITOR ||
					    w->kind == W_GO) {
						c->aux[c->n - 1] = a;
						c->aux2[c->n - 1] = a2;
					}
					if (w->kind == W_RECOVERY)
						c->items_s[c->n - 1] = it;
				}
			}
		}
		for (int i = 0; i < nslots; i++) {
			struct cell *c = &cells[i];
			struct result *res;
			uint64_t nk = w->kind == W_GO ? 8192 : cfg.keys;
			size_t vs = w->kind == W_GO ? 1000 : vsize;

			if (c->skipped) {
				fprintf(stderr, "  %-12s skipped: %s\n",
				        c->slot->e->name, c->why);
				continue;
			}
			res = cell_result(c, w, vs, nk);
			if (w->kind == W_GETALL)
				appendf(res->extra, sizeof(res->extra),
				        "%smembers_per_s=%.0f",
				        res->extra[0] ? " " : "",
				        median(c->items_s, c->n));
			if (w->kind == W_RECOVERY)
				appendf(res->extra, sizeof(res->extra),
				        "%sfile_bytes=%.0f open_MBps=%.1f "
				        "seqread_MBps=%.1f",
				        res->extra[0] ? " " : "",
				        median(c->items_s, c->n),
				        median(c->aux, c->n) / 1e6,
				        median(c->aux2, c->n) / 1e6);
			if (w->kind == W_JANITOR)
				appendf(
				    res->extra, sizeof(res->extra),
				    "%slog_MBps=%.1f dd_fdatasync_MBps=%.1f "
				    "final_sync_s=%.3f",
				    res->extra[0] ? " " : "",
				    median(c->aux, c->n) / 1e6, dd_bw / 1e6,
				    median(c->aux2, c->n));
			if (w->kind == W_GO) {
				/* aux holds the phase that took longest */
			}
			fprintf(stderr,
			        "  %-12s t=%-3d %12.0f ops/s  p50 %8.0f ns  "
			        "p99 %9.0f ns %s\n",
			        res->engine, th, res->ops_s, res->p50, res->p99,
			        res->extra);
		}
		free(order);
	}
	streams_free(&st);
	fprintf(stderr, "   (%s took %.1f s)\n", w->name, now_s() - wt0);
}

/* The original Go library's concurrency benchmark: 100 goroutines, 8192
 * keys of one collection, 1000-byte values; every goroutine puts its share,
 * puts it again, gets it and deletes it, the phases one after the other. */
struct go_arg {
	const struct bench_engine *e;
	void *db;
	int id;
	pthread_barrier_t *bar;
	uint64_t *hist;
	uint64_t errs;
	struct bkey *k;
};

#define GO_KEYS    8192
#define GO_THREADS 100

static void *go_worker(void *p)
{
	struct go_arg *a = p;
	void *tctx = a->e->thread_begin ? a->e->thread_begin(a->db) : NULL;
	char buf[1024];
	size_t len;

	for (int phase = 0; phase < 4; phase++) {
		pthread_barrier_wait(a->bar);
		for (int i = a->id; i < GO_KEYS; i += GO_THREADS) {
			uint64_t t = __rdtsc();
			int rc;
			if (phase < 2)
				rc = a->e->put(a->db, tctx, &a->k[i],
				               value_for((uint64_t)i + phase),
				               1000);
			else if (phase == 2)
				rc = a->e->get(a->db, tctx, &a->k[i], buf,
				               sizeof(buf), &len);
			else
				rc = a->e->del(a->db, tctx, &a->k[i]);
			a->hist[hbucket(__rdtsc() - t)]++;
			if (rc != 0)
				a->errs++;
		}
		pthread_barrier_wait(a->bar);
	}
	if (a->e->thread_end)
		a->e->thread_end(a->db, tctx);
	return NULL;
}

struct measured go_original(const struct bench_engine *e, void *db,
                            double *phase)
{
	static struct bkey *k;
	static char *mem;
	pthread_t th[GO_THREADS];
	struct go_arg a[GO_THREADS];
	pthread_barrier_t bar;
	uint64_t *hist = xcalloc(HBUCKETS, sizeof(uint64_t));
	struct measured m = { 0 };

	if (k == NULL) {
		k = xmalloc(GO_KEYS * sizeof(*k));
		mem = xmalloc(GO_KEYS * 32);
		for (int i = 0; i < GO_KEYS; i++) {
			char *p = mem + i * 32;
			k[i].full = p;
			k[i].full_len = (size_t)snprintf(p, 32, "go/key%d", i);
			k[i].coll_len = 2;
		}
	}
	pthread_barrier_init(&bar, NULL, GO_THREADS + 1);
	for (int t = 0; t < GO_THREADS; t++) {
		a[t] = (struct go_arg){
			e, db, t, &bar, xcalloc(HBUCKETS, sizeof(uint64_t)),
			0, k
		};
		if (pthread_create(&th[t], NULL, go_worker, &a[t]) != 0)
			die("pthread_create failed");
	}
	double worst = 0, t0 = now_s();
	for (int phase = 0; phase < 4; phase++) {
		double p0 = now_s();
		pthread_barrier_wait(&bar); /* go */
		pthread_barrier_wait(&bar); /* done */
		double d = now_s() - p0;
		if (d > worst)
			worst = d;
	}
	m.secs = now_s() - t0;
	for (int t = 0; t < GO_THREADS; t++) {
		pthread_join(th[t], NULL);
		m.errs += a[t].errs;
		for (int b = 0; b < HBUCKETS; b++)
			hist[b] += a[t].hist[b];
		free(a[t].hist);
	}
	pthread_barrier_destroy(&bar);
	m.ops = 4 * GO_KEYS;
	m.p50 = hpercentile(hist, 0.5);
	m.p99 = hpercentile(hist, 0.99);
	m.p999 = hpercentile(hist, 0.999);
	*phase = worst;
	free(hist);
	return m;
}

/* ---- output ------------------------------------------------------------- */

static const char *human(double v, char *buf, size_t n)
{
	if (v >= 1e9)
		snprintf(buf, n, "%.2fG", v / 1e9);
	else if (v >= 1e6)
		snprintf(buf, n, "%.2fM", v / 1e6);
	else if (v >= 1e4)
		snprintf(buf, n, "%.1fk", v / 1e3);
	else
		snprintf(buf, n, "%.0f", v);
	return buf;
}

static const char *human_ns(double ns, char *buf, size_t n)
{
	if (ns >= 1e9)
		snprintf(buf, n, "%.2fs", ns / 1e9);
	else if (ns >= 1e6)
		snprintf(buf, n, "%.2fms", ns / 1e6);
	else if (ns >= 1e4)
		snprintf(buf, n, "%.1fus", ns / 1e3);
	else
		snprintf(buf, n, "%.0fns", ns);
	return buf;
}

static const struct result *find(const char *eng, const char *wl, int th)
{
	for (size_t i = 0; i < nresults; i++)
		if (strcmp(results[i].engine, eng) == 0 &&
		    strcmp(results[i].workload, wl) == 0 &&
		    (th == 0 || results[i].threads == th))
			return &results[i];
	return NULL;
}

static void print_tables(FILE *f)
{
	for (size_t wi = 0; wi < NWDEFS; wi++) {
		const struct wdef *w = &wdefs[wi];
		int any = 0;

		for (size_t i = 0; i < nresults; i++)
			if (strcmp(results[i].workload, w->name) == 0)
				any = 1;
		if (!any)
			continue;
		fprintf(f, "\n### %s: %s\n\n", w->name, w->what);
		fprintf(f,
		        "| engine | threads | ops/s | vs dskvs | p50 | p99 | "
		        "p999 | notes |\n");
		fprintf(f, "|---|--:|--:|--:|--:|--:|--:|---|\n");
		for (size_t i = 0; i < nresults; i++) {
			const struct result *r = &results[i];
			const struct result *d;
			char a[32], b[32], c[32], e[32], x[32] = "";

			if (strcmp(r->workload, w->name) != 0)
				continue;
			d = find("dskvs", r->workload, r->threads);
			if (d && d->ops_s > 0)
				snprintf(x, sizeof(x), "%.2fx",
				         r->ops_s / d->ops_s);
			fprintf(
			    f, "| %s | %d | %s | %s | %s | %s | %s | %s |\n",
			    r->engine, r->threads, human(r->ops_s, a, 32), x,
			    human_ns(r->p50, b, 32), human_ns(r->p99, c, 32),
			    human_ns(r->p999, e, 32), r->extra);
		}
	}
}

static void write_csv(const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");

	if (f == NULL) {
		fprintf(stderr, "dskvs-bench: cannot write %s: %s\n", path,
		        strerror(errno));
		return;
	}
	fprintf(f, "engine,workload,threads,keys,value_size,ops,seconds,"
	           "ops_per_sec,p50_ns,p99_ns,p999_ns,rss_bytes,reps_ops_per_"
	           "sec,extra\n");
	for (size_t i = 0; i < nresults; i++) {
		const struct result *r = &results[i];
		fprintf(f,
		        "%s,%s,%d,%" PRIu64 ",%zu,%" PRIu64
		        ",%.6f,%.1f,%.0f,%.0f,%.0f,%" PRIu64 ",",
		        r->engine, r->workload, r->threads, r->keys,
		        r->value_size, r->ops, r->seconds, r->ops_s, r->p50,
		        r->p99, r->p999, r->rss);
		for (int j = 0; j < r->nrep; j++)
			fprintf(f, "%s%.0f", j ? " " : "", r->rep[j]);
		fprintf(f, ",\"%s\"\n", r->extra);
	}
	if (f != stdout)
		fclose(f);
}

static void write_charts(const char *dir)
{
	char p[4200];

	mkdir(dir, 0755);
	for (size_t wi = 0; wi < NWDEFS; wi++) {
		const struct wdef *w = &wdefs[wi];
		const char *engs[NENGINES];
		int ne = 0;
		FILE *f;

		if (w->kind == W_MEMORY || w->kind == W_RECOVERY ||
		    w->kind == W_GO)
			continue;
		for (size_t i = 0; i < nresults; i++) {
			int seen = 0;
			if (strcmp(results[i].workload, w->name) != 0)
				continue;
			for (int j = 0; j < ne; j++)
				if (strcmp(engs[j], results[i].engine) == 0)
					seen = 1;
			if (!seen && ne < (int)NENGINES)
				engs[ne++] = results[i].engine;
		}
		if (ne == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s.gp", dir, w->name);
		f = fopen(p, "w");
		if (f == NULL)
			continue;
		fprintf(
		    f,
		    "set terminal pngcairo size 900,560 noenhanced\n"
		    "set output '%s/%s.png'\n"
		    "set title '%s: %s (%" PRIu64 " keys, %zu-byte values)'\n"
		    "set xlabel 'threads'\nset ylabel 'ops/s'\n"
		    "set logscale y\nset grid\nset key outside right\n"
		    "set xtics 1\n",
		    dir, w->name, w->name, w->what, cfg.keys, cfg.value_size);
		fprintf(f, "$data << EOD\n");
		for (int j = 0; j < ne; j++) {
			for (size_t i = 0; i < nresults; i++)
				if (strcmp(results[i].workload, w->name) == 0 &&
				    strcmp(results[i].engine, engs[j]) == 0)
					fprintf(f, "%d %.1f\n",
					        results[i].threads,
					        results[i].ops_s > 0
					            ? results[i].ops_s
					            : 1);
			fprintf(f, "\n\n");
		}
		fprintf(f, "EOD\nplot ");
		for (int j = 0; j < ne; j++)
			fprintf(
			    f,
			    "%s$data index %d with linespoints lw 2 title '%s'",
			    j ? ", " : "", j, engs[j]);
		fprintf(f, "\n");
		fclose(f);
		char cmd[8500];
		snprintf(cmd, sizeof(cmd), "gnuplot '%s' 2>&1", p);
		if (system(cmd) != 0)
			fprintf(stderr,
			        "dskvs-bench: gnuplot failed for %s "
			        "(apt-get install gnuplot-nox)\n",
			        p);
	}
}

/* The goals of the issue, checked against this run's figures. */
static void print_goals(FILE *f)
{
	const struct result *d, *o;
	char a[32], b[32];

	fprintf(f, "\n### Goals\n\n");
	for (int th = 1; th <= 2; th++) {
		d = find("dskvs", "readrandom", th);
		if (!d)
			continue;
		const char *peers[] = { "ceiling", "ceiling-hs", "lmdb",
			                "leveldb", "rocksdb" };
		const double want[] = { 0.85, 0.85, 3, 10, 10 };
		for (int i = 0; i < 5; i++) {
			o = find(peers[i], "readrandom", th);
			if (!o || o->ops_s <= 0)
				continue;
			double x = d->ops_s / o->ops_s;
			fprintf(f,
			        "- readrandom t=%d: dskvs %s vs %s %s ops/s = "
			        "%.2fx (goal >= %.2fx): %s\n",
			        th, human(d->ops_s, a, 32), peers[i],
			        human(o->ops_s, b, 32), x, want[i],
			        x >= want[i] ? "met" : "MISSED");
		}
		for (size_t i = 0; i < nresults; i++) {
			const struct result *r = &results[i];
			if (strcmp(r->workload, "readrandom") ||
			    r->threads != th || !strcmp(r->engine, "dskvs") ||
			    !strncmp(r->engine, "ceiling", 7))
				continue;
			if (r->ops_s >= d->ops_s)
				fprintf(
				    f,
				    "- readrandom t=%d: %s (%s) is ahead of "
				    "dskvs: MISSED\n",
				    th, r->engine, human(r->ops_s, a, 32));
		}
	}
	d = find("dskvs", "readrandom", 1);
	o = find("dskvs", "readrandom", 2);
	if (d && o)
		fprintf(f,
		        "- read scaling: 2 threads / 1 thread = %.2fx (goal >= "
		        "1.85x): %s\n",
		        o->ops_s / d->ops_s,
		        o->ops_s / d->ops_s >= 1.85 ? "met" : "MISSED");
	for (int th = 1; th <= 2; th++) {
		d = find("dskvs", "readrandom", th);
		o = find("dskvs", "readwhilewriting", th);
		if (d && o)
			fprintf(
			    f,
			    "- readwhilewriting t=%d: readers keep %.2fx of "
			    "readrandom (goal >= 0.90x): %s\n",
			    th, o->ops_s / d->ops_s,
			    o->ops_s / d->ops_s >= 0.9 ? "met" : "MISSED");
	}
	const char *wr[] = { "fillrandom", "overwrite" };
	for (int wi = 0; wi < 2; wi++)
		for (int ti = 0; ti < cfg.nthreads; ti++) {
			int th = cfg.threads[ti];
			d = find("dskvs", wr[wi], th);
			if (!d)
				continue;
			const char *best = NULL;
			double bv = 0;
			for (size_t i = 0; i < nresults; i++) {
				const struct result *r = &results[i];
				if (strcmp(r->workload, wr[wi]) ||
				    r->threads != th ||
				    !strcmp(r->engine, "dskvs") ||
				    !strncmp(r->engine, "ceiling", 7) ||
				    !strcmp(r->engine, "rwlock") ||
				    !strcmp(r->engine, "lfht"))
					continue;
				if (r->ops_s > bv)
					bv = r->ops_s, best = r->engine;
			}
			if (best)
				fprintf(
				    f,
				    "- %s t=%d: dskvs %s vs best peer %s %s "
				    "(goal: ahead): %s\n",
				    wr[wi], th, human(d->ops_s, a, 32), best,
				    human(bv, b, 32),
				    d->ops_s > bv ? "met" : "MISSED");
		}
	d = find("dskvs", "janitor", 0);
	if (d)
		fprintf(f,
		        "- janitor: %s (goal: log_MBps >= 0.8 x "
		        "dd_fdatasync_MBps)\n",
		        d->extra);
	d = find("dskvs", "durable", 1);
	o = find("dskvs", "durable", 8);
	if (d && o)
		fprintf(f,
		        "- durable: 8 threads %s synced writes/s vs 1 thread "
		        "%s = %.2fx (goal >= 4x): %s\n",
		        human(o->ops_s, a, 32), human(d->ops_s, b, 32),
		        o->ops_s / d->ops_s,
		        o->ops_s / d->ops_s >= 4 ? "met" : "MISSED");
	d = find("dskvs", "recovery", 0);
	if (d) {
		double open_mb = 0, read_mb = 0;
		const char *p = strstr(d->extra, "open_MBps=");
		if (p)
			open_mb = atof(p + 10);
		p = strstr(d->extra, "seqread_MBps=");
		if (p)
			read_mb = atof(p + 13);
		fprintf(
		    f,
		    "- recovery: %" PRIu64 " keys open in %.3f s (goal < 1 s "
		    "at 1M: %s); %.1f MB/s vs sequential read %.1f MB/s "
		    "= %.2fx (goal >= 0.5x): %s\n",
		    d->keys, d->seconds, d->seconds < 1 ? "met" : "MISSED",
		    open_mb, read_mb, read_mb > 0 ? open_mb / read_mb : 0,
		    read_mb > 0 && open_mb / read_mb >= 0.5 ? "met" : "MISSED");
	}
	d = find("dskvs", "memory", 0);
	if (d)
		fprintf(f,
		        "- memory: dskvs %s (Redis 7: ~76 B by used_memory, "
		        "~91 B by RSS per 1M keys/100-byte values)\n",
		        d->extra);
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
	       "  --help\n\nengines:\n");
	for (size_t i = 0; i < NENGINES; i++)
		fprintf(f, "  %-12s %s%s%s%s\n", all_engines[i]->name,
		        all_engines[i]->what,
		        all_engines[i]->skip ? "  [not built: " : "",
		        all_engines[i]->skip ? all_engines[i]->skip : "",
		        all_engines[i]->skip ? "]" : "");
	fprintf(f, "\nworkloads:\n");
	for (size_t i = 0; i < NWDEFS; i++)
		fprintf(f, "  %-17s %s\n", wdefs[i].name, wdefs[i].what);
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
			for (size_t i = 0; i < NWDEFS; i++)
				ok |= !strcmp(wdefs[i].name, t);
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
	for (size_t i = 0; i < NWDEFS; i++) {
		const struct wdef *w = &wdefs[i];
		int sel = cfg.workloads ? in_list(cfg.workloads, w->name)
		                        : (!cfg.quick || w->in_quick);
		if (!sel)
			continue;
		if (w->kind != W_FILL && w->kind != W_DURABLE &&
		    w->kind != W_JANITOR && w->kind != W_GO)
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
	for (size_t i = 0; i < NWDEFS; i++) {
		const struct wdef *w = &wdefs[i];
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
