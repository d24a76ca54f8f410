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
 * The same layout, with member == NULL at creation (no '/' after the
 * collection name, mlen == 0), carries the collection name of a DeleteAll
 * record through the queue.
 */
struct dskvs__blk {
	/* Once unpublished: the table's deferred reference drop. Only
	 * call_rcu writes it, after the block left the table. It has a field
	 * of its own (it used to share one with seq) because a reader inside
	 * a read-side section may still read seq of a block that a writer
	 * has just retired (dskvs_get_seq). */
	struct rcu_head rcu;
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
	uint16_t clen;
	uint16_t mlen;
	/* clen bytes, then '/' for a member's block or NUL for a DeleteAll
	 * record (which has no member, so that an empty member, mlen == 0,
	 * still has a key "coll/"), mlen bytes (any bytes, NUL included),
	 * NUL, vlen bytes */
	char key[];
};

static inline char *dskvs__blk_member(struct dskvs__blk *b)
{
	return b->key + b->clen + 1;
}
/* Length of the record key: "coll/member" for a member's block, "coll" for
 * a DeleteAll record. */
static inline size_t dskvs__blk_klen(const struct dskvs__blk *b)
{
	return b->key[b->clen] == '/' ? (size_t)b->clen + 1 + b->mlen : b->clen;
}
static inline char *dskvs__blk_val(struct dskvs__blk *b)
{
	return b->key + b->clen + 1 + b->mlen + 1;
}

/* A block holding coll/member and a copy of val, with `refs` references
 * and seq 0. member == NULL makes a DeleteAll record (mlen must be 0); a
 * member of mlen 0 is an empty member name. NULL when out of memory. */
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
