/*
 * Shared helpers of the durability tests (tests/durability/): checks that
 * work in forked children, seeded randomness, temporary directories, and a
 * model of the store that the tests compare recovered stores against.
 *
 * These tests are plain programs rather than Criterion suites because they
 * fork a lot: a child that finishes with exit() gets its own LeakSanitizer
 * pass, one that crashes on purpose uses _exit(), and neither may run a test
 * framework's exit handlers twice.
 *
 * The model. Keys come from a small fixed set: DT_NCOLL collections "c0".."c3"
 * with DT_NMEMB members "m0".."m7" each, so that writes collide and
 * DeleteAll has something to remove. A put stores a value derived from
 * (key, version), where the version is a number unique in the test; reading
 * a value back tells which write made it, and checks every byte of it. A
 * model state is one version per key (0 = absent).
 */
#ifndef DSKVS_DT_H
#define DSKVS_DT_H

#include <dskvs.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- checks -------------------------------------------------------------
 * A failed check prints where and why, then abort()s in the test process or
 * _exit(DT_FAIL_EXIT)s in a forked child (dt_in_child set), so no exit
 * handler of the parent's runs in the child. */
#define DT_FAIL_EXIT 99
extern bool dt_in_child;

void dt_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

#define DT_CHECK(cond, ...)                                               \
	do {                                                              \
		if (!(cond))                                              \
			dt_fail(__FILE__, __LINE__,                       \
			        "check failed: " #cond ": " __VA_ARGS__); \
	} while (0)

/* Expect a dskvs return code, naming both on failure. */
#define DT_RC(expr, want)                                                     \
	do {                                                                  \
		int dt_rc_ = (expr);                                          \
		if (dt_rc_ != (want))                                         \
			dt_fail(__FILE__, __LINE__,                           \
			        "%s returned %s, not %s (%s)", #expr,         \
			        dskvs_err_name(dt_rc_), dskvs_err_name(want), \
			        dskvs_errmsg(NULL));                          \
	} while (0)

/* ---- environment ------------------------------------------------------- */

/* DSKVS_LONG=1 selects the long variants. */
bool dt_long(void);
/* The test's base seed: DSKVS_SEED if set, else `dflt`. Printed, so a
 * failure can be replayed. */
uint64_t dt_seed(const char *test, uint64_t dflt);

/* ---- randomness (splitmix64: tiny, seedable, good enough) ------------- */

static inline uint64_t dt_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}
static inline uint64_t dt_rand(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ull;
	return dt_mix(*state);
}
/* Uniform in [0, n). */
static inline uint64_t dt_below(uint64_t *state, uint64_t n)
{
	return n ? dt_rand(state) % n : 0;
}

/* ---- files --------------------------------------------------------------
 */

/* A fresh directory /tmp/dskvs-<tag>-XXXXXX (malloc'd). */
char *dt_mkdtemp(const char *tag);
void dt_rmtree(const char *path);
/* Remove everything inside dir, keep dir. */
void dt_empty_dir(const char *dir);
/* Copy every regular file of src into dst (created if missing). */
void dt_copy_dir(const char *src, const char *dst);
/* malloc'd printf. */
char *dt_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Whole file (malloc'd, NUL-terminated); NULL if it cannot be read. */
unsigned char *dt_read_file(const char *path, size_t *len);
void dt_write_file(const char *path, const void *data, size_t len);
/* Size, or -1 when missing. */
long long dt_file_size(const char *path);

/* ---- the model ---------------------------------------------------------- */

#define DT_NCOLL 4
#define DT_NMEMB 8
#define DT_NKEYS (DT_NCOLL * DT_NMEMB)

struct dt_state {
	uint32_t ver[DT_NKEYS]; /* 0: absent */
};

enum dt_kind { DT_PUT = 1, DT_DEL = 2, DT_DELALL = 3 };

struct dt_op {
	enum dt_kind kind;
	uint32_t key; /* key index; for DT_DELALL, the collection index */
	uint32_t ver; /* DT_PUT only: the version written */
};

/* "c<k / DT_NMEMB>/m<k % DT_NMEMB>" and "c<c>". */
void dt_key_name(uint32_t key, char *buf, size_t cap);
void dt_coll_name(uint32_t coll, char *buf, size_t cap);

/* Value length of (key, ver): mostly tens to hundreds of bytes, one in
 * `big_one_in` (0: never) over 4 KiB so the janitor's separate-iovec path
 * is used too. */
size_t dt_value_len(uint32_t key, uint32_t ver, unsigned big_one_in);
/* Fill buf (dt_value_len bytes) with the value of (key, ver). */
void dt_value_fill(uint32_t key, uint32_t ver, unsigned char *buf, size_t len);
/* The version a value encodes, or 0 if the value is not exactly one that
 * dt_value_fill makes for `key` (any length the generator can produce). */
uint32_t dt_value_parse(uint32_t key, const void *val, size_t len);

/* Random op: mostly puts, some deletes, a few DeleteAlls. `ver` is the
 * version a put gets. */
struct dt_op dt_op_random(uint64_t *rng, uint32_t ver);

/* Apply op to a model state. Returns false when it changes nothing (the
 * store answers DSKVS_NOTFOUND then, and logs nothing). */
bool dt_apply(struct dt_state *st, const struct dt_op *op);

/* Perform op on the store; returns the store's code; *seq gets the write's
 * sequence number (0 if none). */
int dt_do(dskvs *s, const struct dt_op *op, unsigned big_one_in, uint64_t *seq);

/* Read the whole store into *st. Returns NULL when the store holds exactly
 * values the model can describe, else a static message (an unknown key or
 * collection, a damaged value). */
const char *dt_dump(dskvs *s, struct dt_state *st);

bool dt_state_eq(const struct dt_state *a, const struct dt_state *b);
/* "key: want v / got v" for the first difference, in a static buffer. */
const char *dt_state_diff(const struct dt_state *want,
                          const struct dt_state *got);

/*
 * Prefix check. Starting from `base`, applying ops[0..p) must give `got`
 * for some p in [lo, hi]. Returns that p (the smallest), or -1. Each op is
 * applied once, so this is linear in hi.
 */
long dt_match_prefix(const struct dt_state *base, const struct dt_op *ops,
                     size_t lo, size_t hi, const struct dt_state *got);

/* Open (default options, real I/O), dump, close, checking each step.
 * Returns the dskvs_open code; on success *st holds the state. */
int dt_open_dump(const char *dir, struct dt_state *st);

/*
 * Run fn(task, worker, arg) for every task in [0, ntasks), spread over
 * `workers` forked processes (task t goes to worker t % workers). Most of a
 * crash test's time is spent waiting (grace periods, janitor hand-offs), so
 * several workers help even on two cores. A worker that fails a check exits
 * non-zero; returns the number of workers that did. DSKVS_TEST_JOBS
 * overrides `workers`.
 */
unsigned dt_parallel(size_t ntasks, unsigned workers,
                     void (*fn)(size_t task, unsigned worker, void *arg),
                     void *arg);
/*
 * Run fn(arg) in a forked child and return its wait status (0: it returned
 * and exited cleanly). Tests do their dskvs work in such leaf processes when
 * they fork more later: a process that has started threads (liburcu's
 * call_rcu worker) and then forks leaves LeakSanitizer, in the child,
 * unable to scan those threads ("False leaks are possible").
 */
int dt_run_forked(void (*fn)(void *arg), void *arg);

/* The worker count dt_parallel will use for `dflt`. */
unsigned dt_jobs(unsigned dflt);

/* dskvs_options with the settings most tests want on top of the defaults. */
void dt_options(dskvs_options *o, int sync_mode);

#endif
