/*
 * Layer 1: the value block, one malloc per entry, immutable once published,
 * reference-counted, reclaimed through RCU.
 */
#ifndef DSKVS_BLK_H
#define DSKVS_BLK_H

#include "base.h"
#include "rcu.h"

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
/* Drop one reference; the last one frees the block. Never call it for the
 * table's reference of a published block: readers may hold it (retire). */
DSKVS_LOCAL void dskvs__blk_unref(struct dskvs__blk *b);
/* Drop the table's reference after a grace period (call_rcu): for a block
 * just unpublished (replaced or removed). Never waits. */
DSKVS_LOCAL void dskvs__blk_retire(struct dskvs__blk *b);

#endif
