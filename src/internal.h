/*
 * Internal structures of dskvs. Nothing here is API.
 *
 * Every shared field below says who writes it, who reads it and what orders
 * the two. "Under X" means the field is only touched with lock X held.
 */
#ifndef DSKVS_INTERNAL_H
#define DSKVS_INTERNAL_H

#include "dskvs.h"
#include "rcu.h"

#include <ck_ht.h>
#include <ck_ring.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

#define DSKVS_LOCAL __attribute__((visibility("hidden")))

#if defined(DSKVS_DEBUG_CHECKS)
#include <stdio.h>
#include <stdlib.h>
#define DSKVS_CHECK(cond, what)                                           \
	do {                                                              \
		if (!(cond)) {                                            \
			fprintf(stderr,                                   \
			        "dskvs debug check failed: %s (%s:%d)\n", \
			        (what), __FILE__, __LINE__);              \
			abort();                                          \
		}                                                         \
	} while (0)
#else
#define DSKVS_CHECK(cond, what) ((void)0)
#endif

#define DSKVS_LIKELY(x)   __builtin_expect(!!(x), 1)
#define DSKVS_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- keys --------------------------------------------------------------- */

struct dskvs__key {
	const char *coll; /* points into the caller's string */
	size_t clen;
	const char *member; /* NULL for a collection key */
	size_t mlen;
};

/* want_member: 1 member key required, 0 collection key required. */
DSKVS_LOCAL int dskvs__key_parse(const char *key, int want_member,
                                 struct dskvs__key *k);

/* ---- value blocks -------------------------------------------------------
 *
 * One malloc holds a whole entry: header, the full key "coll/member", a NUL,
 * then the value. The members table's key points at the member part, its
 * value at the block. A published block is immutable except for `refs`.
 *
 * References: the table holds one while the block is published; a queued log
 * record holds one until the janitor has written it; a compaction snapshot
 * holds one while it copies the block out. When the table drops it (replace
 * or delete) it does so through call_rcu, so readers that found the block
 * inside a read-side section can finish with it. The last reference frees.
 *
 * The same layout, with mlen == 0 and no '/', carries the collection name of
 * a DeleteAll record through the queue.
 */
struct dskvs__blk {
	union {
		/* While published: the sequence number of the write that made
		 * the block; written by that writer under the collection lock
		 * before it unlocks, read under the lock (compaction's gather,
		 * which copies it) and by replay. */
		uint64_t seq;
		/* Once unpublished: the table's deferred reference drop. Only
		 * call_rcu writes it, after the block left the table, when
		 * nobody reads seq any more: readers never do, and the janitor
		 * takes a record's sequence number from its queue position. */
		struct rcu_head rcu;
	};
	uint32_t refs; /* atomic */
	uint32_t vlen;
	uint16_t clen;
	uint16_t mlen;
	char key[]; /* clen bytes, '/', mlen bytes, NUL, vlen bytes */
};

static inline char *dskvs__blk_member(struct dskvs__blk *b)
{
	return b->key + b->clen + 1;
}
static inline size_t dskvs__blk_klen(const struct dskvs__blk *b)
{
	return b->mlen ? (size_t)b->clen + 1 + b->mlen : b->clen;
}
static inline char *dskvs__blk_val(struct dskvs__blk *b)
{
	return b->key + b->clen + 1 + b->mlen + 1;
}

DSKVS_LOCAL struct dskvs__blk *dskvs__blk_new(const char *coll, size_t clen,
                                              const char *member, size_t mlen,
                                              const void *val, size_t vlen,
                                              uint32_t refs);
DSKVS_LOCAL void dskvs__blk_unref(struct dskvs__blk *b);
/* Drop the table's reference after a grace period. */
DSKVS_LOCAL void dskvs__blk_retire(struct dskvs__blk *b);

/* ---- collections -------------------------------------------------------- */

/* Cache lines: readers touch a collection's `members` (first line) and
 * `name` (last); writers touch the lock line on every write. They are kept
 * apart so that a writer taking the lock does not evict what readers of the
 * same collection read. Collections and stores are allocated 64-aligned. */
#define DSKVS_CACHELINE 64
#define DSKVS_ALIGNED   __attribute__((aligned(DSKVS_CACHELINE)))

struct dskvs__coll {
	/* Members: key = member name inside the block, value = block.
	 * Written only under `lock`; read lock-free by readers in RCU
	 * read-side sections (ck_ht_get_spmc). */
	ck_ht_t members;
	/* The writer lock of `members`. Lock order: a collection's lock, then
	 * the store's colls_lock; never the reverse. */
	pthread_mutex_t lock DSKVS_ALIGNED;
	/* Set under `lock` by DeleteAll (and when an empty collection is
	 * dropped) before the collection leaves the table of collections;
	 * read under `lock` by writers, who retry from the top when set. */
	bool dead;
	/* Under `lock`; read racily (monitoring only) by stats and the
	 * janitor's compaction trigger. */
	uint64_t count;      /* members */
	uint64_t vbytes;     /* sum of value lengths */
	uint64_t log_bytes;  /* log bytes of the records of live members */
	uint32_t tombstones; /* removals since the last ck_ht_gc */
#if defined(DSKVS_DEBUG_CHECKS)
	pthread_t owner; /* thread holding `lock` (debug checks only) */
	bool owned;
#endif
	/* for the deferred destroy after removal */
	struct rcu_head rcu DSKVS_ALIGNED;
	uint16_t nlen;
	char name[]; /* key of the table of collections points here */
};

/* ---- the store ---------------------------------------------------------- */

struct dskvs__fsync_hist {
	uint64_t ns[1024]; /* ring of the last latencies */
	uint64_t n;
};

struct dskvs {
	/* Table of collections: key = name inside the collection, value =
	 * the collection. Written only under colls_lock; read lock-free. */
	ck_ht_t colls;
	pthread_mutex_t colls_lock;
	dskvs_options opts;
	uint64_t seed; /* hash seed, constant after open */

	/* ---- janitor queue ----
	 * MPSC ring of tagged pointers (block | op). Producers reserve a slot
	 * under the collection lock of the write, so a key's records are
	 * queued in memory order; ck_ring's commit publishes them in ticket
	 * order. The janitor is the only consumer. */
	ck_ring_t ring DSKVS_ALIGNED;
	ck_ring_buffer_t *ring_buf;
	unsigned int ring_cap;

	/* Sequence numbers. A record at ring position p (64-bit, counting
	 * from 0 at open) has sequence number seq_base + p + 1. seq_base is
	 * the highest sequence number found in the log at open, constant
	 * afterwards. */
	uint64_t seq_base;
	/* Records the janitor has dequeued; written only by the janitor,
	 * read by writers (atomic) to widen 32-bit ring tickets. */
	uint64_t jdone DSKVS_ALIGNED;
	/* Records known durable, counted like jdone; written by the janitor
	 * with release order after fdatasync returned; read with acquire by
	 * sync waiters. */
	uint64_t durable;

	/* Sticky error: 0 or a DSKVS_E* code. Set by the janitor (or a
	 * synchronous write) with a seq_cst store; read by every writer
	 * before it changes anything. Cleared only by dskvs_rewrite(). */
	int err DSKVS_ALIGNED;
	/* Flags every writer reads after queueing a record (see janitor.c:
	 * each is raised before its owner re-checks the ring, with a full
	 * fence between, and read by the other side after a full fence). */
	int jsleeping;       /* janitor is (about to be) asleep on jcv */
	int space_waiters;   /* writers waiting on space_cv */
	int durable_waiters; /* threads waiting on durable_cv */

	/* Janitor coordination, all under jmu unless marked atomic. */
	pthread_mutex_t jmu DSKVS_ALIGNED;
	pthread_cond_t jcv;        /* janitor waits here when idle */
	pthread_cond_t space_cv;   /* writers wait here when the ring is full */
	pthread_cond_t durable_cv; /* sync waiters, compaction requesters */
	int err_errno;             /* under jmu */
	char err_detail[256];      /* under jmu */
	bool closing;              /* under jmu */
	/* Compaction requests: callers bump compact_asked and wait for
	 * compact_done to reach their ticket; compact_kind is 2 if any
	 * waiting caller asked for a rewrite. All under jmu; compact_req is
	 * also read without it (atomic) by the janitor as a hint. */
	int compact_req;
	int compact_kind;
	uint64_t compact_asked, compact_done;
	int compact_rc;
	pthread_t janitor;
	bool janitor_started;
	int efd; /* atomic: eventfd for dskvs_durable_fd, -1 until asked */

	/* Files. dirfd/lockfd constant after open. logfd and log_size are
	 * owned by the janitor once it runs (open and close use them only
	 * while it is not running). */
	int dirfd;
	int lockfd;
	int logfd;
	uint64_t log_size;
	char *path;

	/* Janitor-private (open and recovery set them first): the format and
	 * salt of the log file, the number of the next batch written to it,
	 * whether what the log ends with is proven synced (a mark or the
	 * sealed part follows the last batch: tail_proven), and whether it
	 * ends with a mark not yet fdatasync'ed (mark_unsynced). */
	unsigned log_major;
	uint32_t log_salt;
	uint32_t batch_no;
	bool tail_proven;
	bool mark_unsynced;

	/* Janitor-private scratch. */
	void **batch; /* tagged record pointers */
	char *scratch;
	size_t scratch_cap;
	struct iovec *iov;
	size_t iov_cap;

	/* Statistics: written by the janitor under stats_mu, read under it. */
	pthread_mutex_t stats_mu;
	uint64_t st_batches, st_records, st_bytes;
	uint64_t st_last_batch_records, st_last_batch_bytes;
	uint64_t st_compactions;
	int64_t st_last_compaction_unix;
	uint64_t st_log_live_bytes; /* as of the last trigger check */
	uint64_t st_caught_up_ns;   /* last time nothing was pending */
	struct dskvs__fsync_hist hist;
	/* Added to by every writer: a line of its own. Queued record bytes
	 * not yet durable. */
	uint64_t pending_bytes DSKVS_ALIGNED;
	char pending_pad[DSKVS_CACHELINE - sizeof(uint64_t)];
	uint64_t next_check; /* janitor-private: log size of the next
	                        compaction check */
};

/* Ring entry tags (blocks are 16-byte aligned). */
#define DSKVS_OP_PUT    1u
#define DSKVS_OP_DEL    2u
#define DSKVS_OP_DELALL 3u
#define DSKVS_OP_NOP    4u /* reserved slot whose write failed */
#define DSKVS_TAG_MASK  ((uintptr_t)15)

static inline void *dskvs__tag(struct dskvs__blk *b, unsigned op)
{
	return (void *)((uintptr_t)b | op);
}
static inline struct dskvs__blk *dskvs__untag(void *p, unsigned *op)
{
	*op = (unsigned)((uintptr_t)p & DSKVS_TAG_MASK);
	return (struct dskvs__blk *)((uintptr_t)p & ~DSKVS_TAG_MASK);
}

/* ---- engine (engine.c) -------------------------------------------------- */

extern struct ck_malloc dskvs__ht_allocator;
DSKVS_LOCAL int dskvs__tables_init(dskvs *s);
/* Free every collection and block now; only when no other thread can touch
 * the store (open failure, close after the janitor stopped). */
DSKVS_LOCAL void dskvs__tables_destroy(dskvs *s);
DSKVS_LOCAL struct dskvs__coll *dskvs__coll_lookup(dskvs *s, const char *name,
                                                   size_t len);

/* Apply a replayed record during open (single-threaded, no queue). */
DSKVS_LOCAL int dskvs__replay_put(dskvs *s, const char *key, size_t klen,
                                  const void *val, size_t vlen, uint64_t seq,
                                  uint64_t rec_bytes);
DSKVS_LOCAL int dskvs__replay_del(dskvs *s, const char *key, size_t klen,
                                  uint64_t seq);
DSKVS_LOCAL int dskvs__replay_delall(dskvs *s, const char *name, size_t len,
                                     uint64_t seq);

/* Snapshot of the live set for compaction: every published block with a
 * reference taken, and its sequence number copied while its collection was
 * locked (the block may be retired right after, and retiring reuses that
 * field). *out and *seqs are malloc'd; the caller unrefs each block.
 * Collection locks are only tried: while one is busy, progress(s, arg) is
 * called (the janitor drains its queue there, since the lock holder may be a
 * writer waiting for queue space); a non-zero return aborts with
 * DSKVS_ENOMEM. */
DSKVS_LOCAL int dskvs__snapshot(dskvs *s, struct dskvs__blk ***out,
                                uint64_t **seqs, size_t *n,
                                int (*progress)(dskvs *, void *), void *arg);
DSKVS_LOCAL uint64_t dskvs__live_log_bytes(dskvs *s);
/* Totals for dskvs_stats_get (racy sums, monitoring only). */
DSKVS_LOCAL void dskvs__totals(dskvs *s, uint64_t *colls, uint64_t *entries,
                               uint64_t *live, uint64_t *log_live);

/* ---- janitor (janitor.c) ------------------------------------------------ */

DSKVS_LOCAL int dskvs__janitor_start(dskvs *s);
DSKVS_LOCAL int dskvs__janitor_stop(dskvs *s);
/* Queue a record; called under the collection lock. Waits (sleeping) while
 * the ring is full. Returns the record's sequence number. */
DSKVS_LOCAL uint64_t dskvs__enqueue(dskvs *s, struct dskvs__blk *b,
                                    unsigned op);
/* Sequence number of the latest committed record. */
DSKVS_LOCAL uint64_t dskvs__committed_seq(dskvs *s);
DSKVS_LOCAL int dskvs__wait_seq(dskvs *s, uint64_t seq, int timeout_ms);
DSKVS_LOCAL int dskvs__request_compact(dskvs *s, int kind);
DSKVS_LOCAL void dskvs__set_error(dskvs *s, int code, int errnum,
                                  const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
DSKVS_LOCAL void dskvs__log(dskvs *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
DSKVS_LOCAL uint64_t dskvs__now_ns(void);

/* ---- log format (format.c) ----------------------------------------------
 * The layout and the rules that tell a torn tail from damage are described
 * at the top of format.c. */

#define DSKVS_LOG_NAME  "dskvs.log"
#define DSKVS_LOG_TMP   "dskvs.log.tmp"
#define DSKVS_LOCK_NAME "dskvs.lock"
/* Bytes cut off a torn tail are kept in "dskvs.torn.<offset>" (then
 * ".<offset>.1", ".2", ... if that name is taken). */
#define DSKVS_TORN_PREFIX  "dskvs.torn."
#define DSKVS_FORMAT_MAJOR 2
#define DSKVS_FORMAT_MINOR 0
#define DSKVS_FILE_HDR     32
#define DSKVS_REC_HDR      32
/* A record's key: "coll/member" or a collection name. */
#define DSKVS_KEY_MAX (2 * (size_t)DSKVS_NAME_MAX + 1)
/* Largest sequence number the format allows: 2^62, so that no count of
 * writes a store can see in its life comes near a wrap. */
#define DSKVS_SEQ_MAX (UINT64_C(1) << 62)

/* Record types in the file (1..3 equal the ring's DSKVS_OP_*). */
#define DSKVS_REC_PUT    1u
#define DSKVS_REC_DEL    2u
#define DSKVS_REC_DELALL 3u
#define DSKVS_REC_MARK   4u /* format 2: opens a batch, no data */
/* Record header flag: the last record of a batch. */
#define DSKVS_REC_END 1u

static inline size_t dskvs__rec_size(size_t klen, size_t vlen)
{
	return DSKVS_REC_HDR + klen + vlen;
}

/* A format-2 file header with the given salt and sealed length. */
DSKVS_LOCAL void dskvs__file_hdr_encode(unsigned char out[DSKVS_FILE_HDR],
                                        uint32_t salt, uint64_t sealed);
/* A record header; `salt` is the file's (0 for format 1). */
DSKVS_LOCAL void dskvs__rec_hdr_encode(unsigned char out[DSKVS_REC_HDR],
                                       uint32_t salt, unsigned op,
                                       unsigned flags, uint32_t batch,
                                       const char *key, size_t klen,
                                       const void *val, size_t vlen,
                                       uint64_t seq);

/* A read window over the log: a buffer refilled with pread (through the
 * I/O seam, so a media error is an error code, never a signal), or a
 * caller's buffer. Owned by one thread. */
#define DSKVS_WIN_BYTES ((size_t)8 << 20)
struct dskvs__win {
	int fd;                   /* -1 for a memory source */
	const unsigned char *mem; /* memory source, or NULL */
	uint64_t size;            /* bytes in the source */
	unsigned char *buf;       /* pread buffer */
	size_t cap;
	uint64_t start; /* buf (or mem) holds [start, start + len) */
	size_t len;
	int err;          /* -errno of the failed read, or 0 */
	uint64_t err_off; /* where it failed */
};
DSKVS_LOCAL void dskvs__win_init_fd(struct dskvs__win *w, int fd,
                                    uint64_t size);
DSKVS_LOCAL void dskvs__win_init_mem(struct dskvs__win *w, const void *buf,
                                     uint64_t size);
DSKVS_LOCAL void dskvs__win_free(struct dskvs__win *w);
/* Bytes [off, off + n) of the source, valid until the next call on w; NULL
 * when they are not all there (w->err == 0: the source ends first; else
 * the read failed). */
DSKVS_LOCAL const unsigned char *dskvs__win_fill(struct dskvs__win *w,
                                                 uint64_t off, size_t n);
static inline const unsigned char *dskvs__win_get(struct dskvs__win *w,
                                                  uint64_t off, size_t n)
{
	if (DSKVS_LIKELY(off >= w->start && n <= w->len &&
	                 off - w->start <= w->len - n))
		return (w->mem ? w->mem : w->buf) + (off - w->start);
	return dskvs__win_fill(w, off, n);
}

/* One decoded record; key and val point into the window (valid until the
 * next scanner call). */
struct dskvs__rec {
	unsigned op, flags;
	uint32_t batch;
	const char *key;
	size_t klen;
	const void *val;
	size_t vlen;
	uint64_t seq;
	uint64_t off;  /* offset of the record in the file */
	uint64_t size; /* header + key + value */
};

/*
 * The scanner: walks a log's records in file order and decides, at the
 * first damage, between a torn tail and damage to synced data (format.c).
 * Set up `w` with dskvs__win_init_*, then dskvs__scan_header, then
 * dskvs__scan_next until it stops returning DSKVS__SCAN_REC.
 */
struct dskvs__scan {
	struct dskvs__win w;
	unsigned major, minor;
	uint32_t salt;
	uint64_t sealed; /* end of the part known synced whole */
	uint64_t off;    /* next record */
	uint64_t max_seq;
	uint32_t last_batch;
	bool last_ended;
	bool ordered;   /* sequence numbers must rise from here on */
	bool in_sealed; /* the last damage lies in the sealed part */
	uint64_t records;
	/* After a result other than DSKVS__SCAN_REC: */
	const char *why;    /* what is wrong, a phrase */
	uint64_t bad_off;   /* where (the record, or the failed read) */
	uint64_t proof_off; /* CORRUPT: the record that proves the batch
	                       was synced, or 0 */
	uint64_t work;      /* bytes checksummed (tests: linear time) */
};
enum {
	DSKVS__SCAN_REC = 1,     /* *r holds the next record */
	DSKVS__SCAN_END,         /* clean end of the file */
	DSKVS__SCAN_TORN,        /* [off, size) is a torn tail */
	DSKVS__SCAN_CORRUPT,     /* damage at bad_off, or impossible record */
	DSKVS__SCAN_EIO,         /* read failed at bad_off */
	DSKVS__SCAN_TORN_HEADER, /* header: a file cut short while created */
};
/* Check the file header; returns DSKVS_OK, DSKVS__SCAN_TORN_HEADER, or a
 * DSKVS_E* code with the thread's detail set (names `file`). */
DSKVS_LOCAL int dskvs__scan_header(struct dskvs__scan *sc, const char *file);
DSKVS_LOCAL int dskvs__scan_next(struct dskvs__scan *sc, struct dskvs__rec *r);
/* After DSKVS__SCAN_CORRUPT (verify only): move to the next whole valid
 * record after the damage; returns its offset, or the size of the source
 * if there is none. */
DSKVS_LOCAL uint64_t dskvs__scan_resync(struct dskvs__scan *sc);

/* ---- the log file (log.c) ------------------------------------------------ */

/* Replay the log of an opened store into its tables; moves a torn tail
 * aside and truncates it. Sets the store's log state and seq_base. */
DSKVS_LOCAL int dskvs__log_recover(dskvs *s);
/* Create a fresh log file at `name` holding only a file header with the
 * given salt (sealed length: the header); returns an fd or a DSKVS_E*
 * code. */
DSKVS_LOCAL int dskvs__log_create(dskvs *s, const char *name, uint32_t salt);
/* A random salt for a new log file. */
DSKVS_LOCAL uint32_t dskvs__new_salt(void);

/* ---- CRC32C (crc32c.c) -------------------------------------------------- */

DSKVS_LOCAL uint32_t dskvs__crc32c(uint32_t crc, const void *buf, size_t len);

/* ---- errors (error.c) --------------------------------------------------- */

/* Set the calling thread's error detail; returns code. */
DSKVS_LOCAL int dskvs__fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
DSKVS_LOCAL void dskvs__clear_detail(void);

/* ---- file I/O seam (io.c) -----------------------------------------------
 *
 * Every file operation of the library goes through dskvs__io so that tests
 * can inject faults or simulate power loss. Production uses libc.
 */
struct dskvs__io_ops {
	int (*openat)(int dirfd, const char *name, int flags, mode_t mode);
	int (*close)(int fd);
	ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
	ssize_t (*pwritev)(int fd, const struct iovec *iov, int cnt, off_t off);
	int (*fdatasync)(int fd);
	int (*fsync)(int fd);
	int (*ftruncate)(int fd, off_t len);
	int (*renameat)(int olddir, const char *oldname, int newdir,
	                const char *newname);
	int (*unlinkat)(int dirfd, const char *name, int flags);
	int (*fstat)(int fd, struct stat *st);
};
extern struct dskvs__io_ops dskvs__io;
extern const struct dskvs__io_ops dskvs__io_libc;

/* pwritev the whole iovec (looping on short writes). Returns 0 or -errno
 * (-EIO for a write that makes no progress). */
DSKVS_LOCAL int dskvs__write_all(int fd, struct iovec *iov, int cnt, off_t off);
/* Read exactly n bytes (short file: returns bytes read). -errno on error. */
DSKVS_LOCAL ssize_t dskvs__read_all(int fd, void *buf, size_t n, off_t off);

#endif
