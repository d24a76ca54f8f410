/*
 * dskvs-bench: the small interface every engine sits behind.
 *
 * A key reaches an engine both as the full "collection/member" string (what
 * dskvs and the flat peers take) and split into its two names (what the
 * two-level engines take), so no engine pays for parsing that another one
 * does not. Keys are NUL-terminated; lengths exclude the NUL.
 *
 * Threads: open/close/quiesce run with no other call in flight. Every other
 * call may run from any number of threads at once, each thread between its
 * own thread_begin/thread_end (both optional) with the context they return.
 */
#ifndef DSKVS_BENCH_ENGINE_H
#define DSKVS_BENCH_ENGINE_H

#include <stddef.h>
#include <stdint.h>

struct bkey {
	const char *full; /* "coll/member" */
	size_t full_len;
	size_t coll_len; /* full[0..coll_len) is the collection */
	/* member is full + coll_len + 1, length full_len - coll_len - 1 */
};

static inline const char *bkey_member(const struct bkey *k)
{
	return k->full + k->coll_len + 1;
}

static inline size_t bkey_member_len(const struct bkey *k)
{
	return k->full_len - k->coll_len - 1;
}

struct bench_open_cfg {
	const char *dir;    /* an empty (or previously used) directory */
	uint64_t keys;      /* expected number of entries (sizing hints) */
	unsigned int colls; /* expected number of collections */
	size_t value_size;  /* typical value size */
	int sync_every;     /* every write must be durable when it returns */
	int threads;        /* most threads that will use it at once */
	int existing;       /* reopening a store to recover it */
};

/* Results: 0 ok, 1 not found, negative: error (engine-specific). */
#define BENCH_NOTFOUND 1

struct bench_engine {
	const char *name;
	const char *what; /* one line for --help and the README */
	int persistent;   /* has files on disk (recovery, durable apply) */
	const char *skip; /* non-NULL: why this engine is not built in */
	void *(*open)(const struct bench_open_cfg *cfg, char *err,
	              size_t errlen);
	void (*close)(void *db);
	void *(*thread_begin)(void *db);
	void (*thread_end)(void *db, void *tctx);
	int (*get)(void *db, void *tctx, const struct bkey *k, void *buf,
	           size_t cap, size_t *len);
	int (*put)(void *db, void *tctx, const struct bkey *k, const void *val,
	           size_t len);
	int (*del)(void *db, void *tctx, const struct bkey *k);
	/* Visit every member of a collection; *n receives how many, *bytes the
	 * sum of their value sizes (so the values are really touched). */
	int (*scan)(void *db, void *tctx, const char *coll, size_t coll_len,
	            uint64_t *n, uint64_t *bytes);
	/* Make every write that returned durable (may be NULL: nothing to do).
	 */
	int (*sync)(void *db);
	/* Called between measured runs with no thread inside: engines without
	 * safe memory reclamation free what they retired. May be NULL. */
	void (*quiesce)(void *db);
	/* Optional: a line describing where memory went (memory workload). */
	void (*mem_report)(void *db, char *out, size_t outlen);
};

/* Each eng_*.c defines one or more of these; a peer that was not found at
 * build time defines a stub with .skip set. */
extern const struct bench_engine bench_engine_dskvs;
extern const struct bench_engine bench_engine_ceiling;
extern const struct bench_engine bench_engine_ceiling_hs;
extern const struct bench_engine bench_engine_rwlock;
extern const struct bench_engine bench_engine_lfht;
extern const struct bench_engine bench_engine_lmdb;
extern const struct bench_engine bench_engine_leveldb;
extern const struct bench_engine bench_engine_rocksdb;
extern const struct bench_engine bench_engine_sqlite;
extern const struct bench_engine bench_engine_kc_cache;
extern const struct bench_engine bench_engine_kc_hash;
extern const struct bench_engine bench_engine_tkrzw_tiny;
extern const struct bench_engine bench_engine_tkrzw_hash;
extern const struct bench_engine bench_engine_null;

/* Shared helpers (common.c). */
uint64_t bench_hash64(const void *p, size_t n); /* FNV-1a 64 */
void bench_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
