/*
 * Layer 1: the value block, one allocation per entry, immutable once
 * published, reference-counted, reclaimed through RCU in batches, recycled
 * through a pool of free blocks.
 */
#ifndef DSKVS_BLK_H
#define DSKVS_BLK_H

#include "base.h"
#include "rcu.h"
#include "slab.h"

#include <pthread.h>

/* ---- value blocks -------------------------------------------------------
 *
 * One allocation holds a whole entry: header, the member name, a NUL,
 * then the value. The members table's key points at the member name, its
 * value at the block. A published block is immutable except for `refs`.
 * The collection's name is not in the block: a record that carries the
 * block carries its collection's name beside it (queue.h, struct
 * dskvs__rec_ref), and the collection lives until the janitor is done
 * with its last record (table.h, "collections and their records").
 *
 * References: the table holds one while the block is published; a queued log
 * record holds one until the janitor has written it; a compaction snapshot
 * holds one while it copies the block out. When the table drops it (replace
 * or delete) it does so after a grace period (dskvs__blk_retire, call_rcu
 * on a list of blocks), so readers that found the block inside a
 * read-side section can finish with it. The last reference frees (or, in
 * the RCU callback, recycles).
 *
 * A DeleteAll record's block has no member and no value (mlen == vlen ==
 * 0): its record is its collection's name alone.
 */
struct dskvs__blk {
	/* Once unpublished: the link of its shard's overflow list of retired
	 * blocks (dskvs__blk_retire, when every carrier is in flight),
	 * written under that shard's lock by the retiring writer, read by
	 * the RCU callback that releases it; once dead (no reference left),
	 * the link of a free list. Readers never read it: a reader inside a
	 * read-side section may still be reading the rest of a block just
	 * retired. It replaces a 16-byte rcu_head of its own: one call_rcu
	 * serves a whole carrier of blocks. */
	struct dskvs__blk *next;
	/* The sequence number of the write that made the block: the value's
	 * version. Written once, before the block is published (by the
	 * writer under the collection lock, from its reserved queue
	 * position; by replay), never afterwards; read by readers of the
	 * published block (the table's publication orders the write before
	 * them), by compaction's gather and by replay. 0 only for a block
	 * that is never published (a delete or DeleteAll record). */
	uint64_t seq;
	uint32_t refs; /* atomic */
	uint32_t vlen;
	uint16_t mlen;
	/* mlen bytes of member name (any bytes, NUL included), NUL, vlen
	 * bytes */
	char key[];
};

static inline char *dskvs__blk_member(struct dskvs__blk *b)
{
	return b->key;
}
static inline char *dskvs__blk_val(struct dskvs__blk *b)
{
	return b->key + b->mlen + 1;
}

/* A collection's name, where its collection keeps it (table.h). */
struct dskvs__name {
	uint16_t len;
	char s[];
};

/* A log record on its way to a log: its block tagged with its op
 * (queue.h's dskvs__tag), and the name of its collection, which the record
 * key starts with ("coll/member", or "coll" for a DeleteAll). Whoever holds
 * one keeps a reference on the block, and keeps the collection alive as
 * table.h says ("collections and their records"). */
struct dskvs__rec_ref {
	void *p;
	const struct dskvs__name *name;
};

/* ---- the block pool: batched retirement and recycled blocks ------------
 *
 * A writer that replaced or removed a block hands the table's reference
 * to dskvs__blk_retire. Instead of one call_rcu per block, retired blocks
 * gather in the writer's shard, in the array of its filling carrier; once
 * that holds BLK_RETIRE_N blocks or BLK_RETIRE_BYTES value bytes, one
 * call_rcu releases them all after a grace period. The janitor hands
 * fuller-than-empty carriers over at each batch (dskvs__blk_pool_flush),
 * so a retired block waits at most until the next batch plus a grace
 * period. While every carrier of a shard is in flight, retired blocks
 * wait on the shard's overflow list (linked through `next`), which the
 * next carrier handed over takes along: retiring never allocates, never
 * fails and never waits.
 *
 * The RCU callback drops each block's table reference; a block whose last
 * reference that was goes onto its shard's free list of its size class
 * (sizes 8k, up to BLK_POOL_MAX_SIZE), while the shard keeps under
 * BLK_POOL_BYTES of them, or back to the slab that owns it.
 * dskvs__blk_alloc takes from the calling thread's shard first: in a
 * steady overwrite a put reuses a block that the same thread retired,
 * with no allocation and no free at all.
 *
 * Where blocks live: a block of up to BLK_POOL_MAX_SIZE bytes comes from
 * the slab (slab.h) of the allocating thread's shard, on 2 MiB regions
 * that ask for huge pages, packed at 8-byte granularity with no header;
 * a larger one from malloc. The size decides, so a block is freed to the
 * right place from its lengths alone: to malloc, or to the slab its
 * address names (dskvs__slab_of), under that slab's shard's lock. A
 * block's owner is the slab it came from, whichever shard's free list it
 * passes through. The janitor gives empty slab pages back to the system
 * (dskvs__blk_pool_trim once its store is idle, dskvs__blk_pool_release
 * under load), as malloc_trim does for the heap.
 *
 * Shards: a thread uses shard (its number mod BLK_SHARDS), numbers dealt
 * out in thread order on first use; two threads share a shard only past
 * BLK_SHARDS threads, and then take turns on its lock.
 * Each shard's fields are under its `mu`: the filling carrier, its array
 * and counts, the overflow list (written by retiring writers and the
 * janitor's flush), the carriers' `busy` flags (set by whoever hands a
 * carrier to call_rcu, cleared by its callback once it is done with the
 * carrier's array), the free lists and pooled_bytes (pushed by
 * callbacks, popped by allocating writers), the slab and
 * slab_freed (every call on the slab: allocating writers, callbacks and
 * any thread dropping a block's last reference). A carrier in flight is
 * its callback's alone. The lock is a leaf: nothing else is taken while it
 * is held, and nothing it protects is reached by readers.
 */
#define BLK_SHARDS 8
/* Carriers: BLK_CARRIERS in the shard itself, and up to BLK_CARRIERS_MAX
 * in all (the rest allocated on demand, kept until the store closes),
 * so that a busy writer has as many blocks in flight as a grace period
 * takes (measured: with 4 carriers per shard, overwrites at full speed
 * put most retired blocks on the overflow list, which the callback then
 * walks one dependent cache miss at a time). */
#define BLK_CARRIERS     2
#define BLK_CARRIERS_MAX 64
/* 256 blocks a call_rcu: the per-block cost of call_rcu's enqueue and
 * wakeup becomes noise, and a carrier's array is 2 KiB. */
#define BLK_RETIRE_N     256
#define BLK_RETIRE_BYTES (1u << 20)
/* Pooled and slab sizes: 8k bytes for 0 < k < BLK_POOL_CLASSES. 4 MiB a
 * shard covers the blocks one writer retires during a grace period at
 * full speed (about 300k puts/s of 150-byte blocks over several ms). */
#define BLK_POOL_CLASSES  SLAB_CLASSES
#define BLK_POOL_MAX_SIZE SLAB_OBJ_MAX
#define BLK_POOL_BYTES    (4u << 20)

struct dskvs__blk_shard;
struct dskvs__blk_carrier {
	struct rcu_head rcu;
	struct dskvs__blk_shard *sh;      /* constant */
	struct dskvs__blk_carrier *idle;  /* the shard's idle stack */
	struct dskvs__blk_carrier *extra; /* the shard's allocated ones */
	bool busy;                        /* under sh->mu */
	unsigned n;                       /* blocks in v */
	struct dskvs__blk *overflow;      /* taken from the shard */
	struct dskvs__blk *v[BLK_RETIRE_N];
};

struct dskvs__blk_shard {
	pthread_mutex_t mu;
	/* The carrier being filled (not busy), or NULL while all are busy;
	 * pending: retired blocks not handed over yet (in it, or on the
	 * overflow list); read racily by the flush as a hint. */
	struct dskvs__blk_carrier *filling;
	size_t pending, pending_bytes;
	struct dskvs__blk *overflow;
	struct dskvs__blk_carrier *idle;  /* neither filling nor busy */
	struct dskvs__blk_carrier *extra; /* allocated ones, for destroy */
	unsigned ncarriers;
	struct dskvs__blk_carrier carrier[BLK_CARRIERS];
	struct dskvs__blk *free_list[BLK_POOL_CLASSES];
	size_t pooled_bytes;
	struct dskvs__slab slab;
	size_t slab_freed; /* bytes freed to the slab since its release */
} DSKVS_ALIGNED;

struct dskvs__blk_pool {
	struct dskvs__blk_shard sh[BLK_SHARDS];
};

DSKVS_LOCAL void dskvs__blk_pool_init(struct dskvs__blk_pool *p);
/* Drop what the pool still holds: the retired blocks not handed over
 * (their table references, at once) and the free lists. Only when no
 * other thread can reach the pool's blocks and no callback of it is
 * pending: after an rcu_barrier, at close or on open failure. */
DSKVS_LOCAL void dskvs__blk_pool_destroy(struct dskvs__blk_pool *p);
/* Take (lock) or give back (!lock) every shard's lock, in shard order:
 * fork's prepare and parent/child handlers only (store.c), so that no lock
 * of the pool is held at fork by a thread the child does not have. The
 * shard locks are leaves: taking them all waits only for their holders'
 * short critical sections. */
DSKVS_LOCAL void dskvs__blk_pool_fork_lock(struct dskvs__blk_pool *p,
                                           bool lock);
/* Hand the retired blocks of every shard to call_rcu (each shard whose
 * lock is free and that has a free carrier). Any thread (the janitor, at each
 * batch); never waits. */
DSKVS_LOCAL void dskvs__blk_pool_flush(struct dskvs__blk_pool *p);

/* Give the free lists' blocks back to their slabs (or malloc), then the
 * slabs' garbage back to the system (dskvs__blk_pool_release). May sleep;
 * takes each shard's lock in turn, never two. The janitor, once its store
 * is idle. */
DSKVS_LOCAL void dskvs__blk_pool_trim(struct dskvs__blk_pool *p);
/* Once at least min_bytes (and at least 1) were freed to the pool's slabs
 * since their last release, give back the empty pages of every slab that
 * had some (dskvs__slab_release, under its shard's lock, taken for a few
 * regions at a time, with a pause between). May sleep; not while holding a
 * shard's lock: the janitor, at idle and, under load, at most every second
 * or so. Returns the bytes given back (madvised: an upper bound of what
 * was resident). */
DSKVS_LOCAL size_t dskvs__blk_pool_release(struct dskvs__blk_pool *p,
                                           size_t min_bytes);

/* A block holding member and a copy of val, with `refs` references and
 * seq 0 (member NULL with mlen 0 for a DeleteAll record). From the calling
 * thread's shard of p: its free list, else its slab, else (over
 * BLK_POOL_MAX_SIZE) malloc. NULL when out of memory. Any thread; takes
 * the shard's lock. */
DSKVS_LOCAL struct dskvs__blk *dskvs__blk_alloc(struct dskvs__blk_pool *p,
                                                const char *member, size_t mlen,
                                                const void *val, size_t vlen,
                                                uint32_t refs);
/* Drop one reference; the last one frees the block (to its slab, under
 * the owning shard's lock, or to malloc): not while holding a shard's
 * lock. Never call it for the
 * table's reference of a published block: readers may hold it (retire).
 * A new reference is only ever taken by a thread that holds one already
 * (the table's, under the collection's lock, or a queued record's), so a
 * holder that reads refs == 1 holds the block alone and frees it without
 * an atomic read-modify-write. */
DSKVS_LOCAL void dskvs__blk_unref(struct dskvs__blk *b);
/* Free a block that was never published nor queued, whatever its refs
 * say (the caller's own, from dskvs__blk_alloc, on a path that gave up).
 * NULL is a no-op. Not while holding a shard's lock. */
DSKVS_LOCAL void dskvs__blk_discard(struct dskvs__blk *b);
/* Drop the table's reference after a grace period (batched through p,
 * see above): for a block just unpublished (replaced or removed). Any
 * thread, inside a read-side section or not; never waits, never fails. */
DSKVS_LOCAL void dskvs__blk_retire(struct dskvs__blk_pool *p,
                                   struct dskvs__blk *b);

#endif
