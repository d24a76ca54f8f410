/*
 * Layer 2: the queue from writers to the janitor (queue.c has the design:
 * ordering, wakeups, durability, the sticky error).
 */
#ifndef DSKVS_QUEUE_H
#define DSKVS_QUEUE_H

#include "base.h"
#include "blk.h"

#include <ck_ring.h>
#include <pthread.h>

struct dskvs__queue {
	/* MPSC ring of tagged pointers (block | op), on ck_ring's layout
	 * with its protocol done in queue.c: producers reserve a slot under
	 * the collection lock of the write and commit in ticket order
	 * (p_tail, release); one consumer, the janitor, reads slots below
	 * p_tail (acquire) and frees them by moving c_head (release), which
	 * producers read (acquire) before reusing a slot. */
	ck_ring_t ring DSKVS_ALIGNED;
	ck_ring_buffer_t *ring_buf;
	/* Beside each ring slot, the name of its record's collection:
	 * written by the slot's producer before its commit, read by the
	 * consumer before it moves past the slot (drain); ordered like the
	 * slot itself, by p_tail and c_head. */
	const struct dskvs__name **ring_name;
	unsigned int ring_cap;

	/* A record at ring position p (64-bit, counting from 0 at open) has
	 * sequence number seq_base + p + 1. seq_base is the highest sequence
	 * number found in the log at open, constant afterwards. */
	uint64_t seq_base;
	/* Positions dequeued so far: written only by the consumer (release),
	 * read by producers (acquire) to widen 32-bit ring tickets. */
	uint64_t dequeued DSKVS_ALIGNED;
	/* Records known durable, counted like `dequeued`; written by the
	 * consumer with release order after fdatasync returned; read with
	 * acquire by sync waiters. */
	uint64_t durable;

	/* Sticky error: 0 or a DSKVS_E* code. Set by the consumer with a
	 * seq_cst store (under mu, with its detail); read by every writer
	 * before it changes anything. Cleared only by a successful rewrite. */
	int err DSKVS_ALIGNED;
	/* Flags the other side reads after a full fence (see queue.c). */
	int consumer_sleeping; /* the janitor is (about to be) asleep */
	int space_waiters;     /* producers waiting on space_cv */
	int durable_waiters;   /* threads waiting on durable_cv */

	/* The queue's sleep mutex: guards sleeping and waking on the three
	 * condition variables, the sticky error's detail, `closing`, and the
	 * janitor's compaction requests (janitor.h). */
	pthread_mutex_t mu DSKVS_ALIGNED;
	pthread_cond_t wake_cv;  /* the consumer waits here when idle */
	pthread_cond_t space_cv; /* producers wait here when the ring is full */
	pthread_cond_t durable_cv; /* sync waiters, compaction requesters */
	int err_errno;             /* under mu */
	char err_detail[256];      /* under mu */
	bool closing;              /* under mu */
	int efd; /* atomic: eventfd for dskvs_durable_fd, -1 until asked */

	/* Added to by every producer: a line of its own. Queued record bytes
	 * not yet durable. */
	uint64_t pending_bytes DSKVS_ALIGNED;
	char pending_pad[DSKVS_CACHELINE - sizeof(uint64_t)];
	/* Last time nothing was pending (monitoring): consumer writes. */
	uint64_t caught_up_ns;
	const struct dskvs__diag *diag; /* constant */
};

/* Ring entry ops. */
#define DSKVS_OP_PUT    1u
#define DSKVS_OP_DEL    2u
#define DSKVS_OP_DELALL 3u
#define DSKVS_OP_NOP    4u /* reserved slot whose write failed */
/* Flag, on a put or delete of a dskvs_write_batch (or a NOP slot of one):
 * more records of the same batch of writes follow in the ring (the last
 * one has it clear). A batch's records are committed to the ring at once
 * (reserve_n/commit_n) and dequeued whole (drain), so the janitor always
 * writes a batch of writes inside one of its own batches. */
#define DSKVS_OP_GRP  8u
#define DSKVS_OP_MASK 7u

/* A ring entry is a block pointer with a code in its low 3 bits (blocks
 * are 8-byte aligned: the slab's classes, slab.h): 1 to 4 an op alone,
 * 5 and 6 a put and a delete with DSKVS_OP_GRP, 7 a NOP with it. A
 * DeleteAll never carries the flag. */
#define DSKVS_TAG_MASK ((uintptr_t)7)
#define DSKVS_TAG_GRP  5u /* the first code with the flag */

static inline void *dskvs__tag(struct dskvs__blk *b, unsigned op)
{
	unsigned code = op & DSKVS_OP_MASK;
	DSKVS_CHECK(((uintptr_t)b & DSKVS_TAG_MASK) == 0,
	            "ring entry: block not 8-byte aligned");
	DSKVS_CHECK(!(op & DSKVS_OP_GRP) || code != DSKVS_OP_DELALL,
	            "ring entry: a DeleteAll in a batch of writes");
	if (op & DSKVS_OP_GRP)
		code = code == DSKVS_OP_NOP ? 7u : code + 4u;
	return (void *)((uintptr_t)b | code);
}
static inline struct dskvs__blk *dskvs__untag(void *p, unsigned *op)
{
	unsigned code = (unsigned)((uintptr_t)p & DSKVS_TAG_MASK);
	*op = code == 7u              ? DSKVS_OP_NOP
	      : code >= DSKVS_TAG_GRP ? code - 4u
	                              : code;
	return (struct dskvs__blk *)((uintptr_t)p & ~DSKVS_TAG_MASK);
}

/* Does the entry carry DSKVS_OP_GRP (more of its batch follow)? */
static inline bool dskvs__tag_grp(const void *p)
{
	return ((uintptr_t)p & DSKVS_TAG_MASK) >= DSKVS_TAG_GRP;
}

/* The value length a record of this op carries. */
static inline size_t dskvs__op_vlen(const struct dskvs__blk *b, unsigned op)
{
	return op == DSKVS_OP_PUT ? b->vlen : 0;
}

/* The length of the record key: "coll/member", or "coll" for a DeleteAll. */
static inline size_t dskvs__op_klen(const struct dskvs__name *coll,
                                    const struct dskvs__blk *b, unsigned op)
{
	return op == DSKVS_OP_DELALL ? coll->len
	                             : (size_t)coll->len + 1 + b->mlen;
}

/* Set up a queue of at least `capacity` slots (a power of two). */
DSKVS_LOCAL int dskvs__queue_init(struct dskvs__queue *q, unsigned int capacity,
                                  const struct dskvs__diag *diag);
DSKVS_LOCAL void dskvs__queue_destroy(struct dskvs__queue *q);

/* ---- producers -------------------------------------------------------------
 * Queue a record of collection `coll` (the name its collection holds:
 * the collection must stay alive until the janitor is done with the
 * record, table.h); returns its sequence number. Call with the collection
 * lock of the record's key held: that is what makes log order equal memory
 * order (DESIGN rule 5). May sleep (not spin) while the ring is full; never
 * inside a read-side section's grace period wait (it waits on the consumer,
 * which never waits for a grace period). Sets a put's b->seq, so use it
 * only for a put whose block is not yet published, or for deletes. */
DSKVS_LOCAL uint64_t dskvs__queue_enqueue(struct dskvs__queue *q,
                                          const struct dskvs__name *coll,
                                          struct dskvs__blk *b, unsigned op);

/* The same in two steps, for a write that must know its sequence number
 * before readers can see it (a put sets b->seq, the value's version, then
 * publishes b, then commits):
 *   seq = dskvs__queue_reserve(q, &slot);   ... publish ...
 *   dskvs__queue_commit(q, &slot, coll, b, DSKVS_OP_PUT);
 * or, when the write failed after the reservation, commit with
 * DSKVS_OP_NOP (coll and b ignored): the slot is skipped by the janitor and its
 * sequence number is never used. Same lock rule as enqueue. Every reserve
 * is followed by exactly one commit, without sleeping in between: every
 * later producer (of any collection) waits for it, and the janitor sees
 * nothing past it. reserve may sleep while the ring is full. */
struct dskvs__slot {
	void **slot;
	unsigned int ticket;
};
DSKVS_LOCAL uint64_t dskvs__queue_reserve(struct dskvs__queue *q,
                                          struct dskvs__slot *sl);
DSKVS_LOCAL void dskvs__queue_commit(struct dskvs__queue *q,
                                     struct dskvs__slot *sl,
                                     const struct dskvs__name *coll,
                                     struct dskvs__blk *b, unsigned op);
/* The same for the n records of a dskvs_write_batch (1 <= n <= the
 * ring's capacity - 1): n consecutive slots, reserved at once (sleeping
 * while fewer than n are free) and committed at once, so that the janitor
 * sees all of them or none. Returns the sequence number of the first; slot
 * i has the first's + i. Set every slot with dskvs__queue_slot_set, then
 * commit_n. Same lock and no-sleep rule as reserve/commit. */
struct dskvs__slots {
	unsigned int ticket; /* of the first slot */
	unsigned int n;
};
DSKVS_LOCAL uint64_t dskvs__queue_reserve_n(struct dskvs__queue *q,
                                            struct dskvs__slots *sl,
                                            unsigned int n);
/* Set slot i of a reservation to b of collection coll with op
 * (DSKVS_OP_NOP: coll and b ignored; may carry DSKVS_OP_GRP). */
DSKVS_LOCAL void dskvs__queue_slot_set(struct dskvs__queue *q,
                                       const struct dskvs__slots *sl,
                                       unsigned int i,
                                       const struct dskvs__name *coll,
                                       struct dskvs__blk *b, unsigned op);
DSKVS_LOCAL void dskvs__queue_commit_n(struct dskvs__queue *q,
                                       const struct dskvs__slots *sl);
/* Sequence number of the latest committed record (any thread). */
DSKVS_LOCAL uint64_t dskvs__queue_committed_seq(struct dskvs__queue *q);
/* DSKVS_OK, or the sticky error with "what: detail" as the thread's
 * detail. */
DSKVS_LOCAL int dskvs__queue_refuse(struct dskvs__queue *q, const char *what);
/* Wait until `seq` is durable, at most timeout_ms (negative: no limit; 0:
 * just check). DSKVS_OK, DSKVS_ETIMEDOUT, or the sticky error. May sleep. */
DSKVS_LOCAL int dskvs__queue_wait_seq(struct dskvs__queue *q, uint64_t seq,
                                      int timeout_ms);
/* The eventfd of dskvs_durable_fd, made on first use; or DSKVS_ENOMEM. */
DSKVS_LOCAL int dskvs__queue_fd(struct dskvs__queue *q);
/* The sticky error and its errno (monitoring). */
DSKVS_LOCAL void dskvs__queue_error(struct dskvs__queue *q, int *code,
                                    int *errnum);

/* ---- the consumer (the janitor thread only) ------------------------------ */
DSKVS_LOCAL bool dskvs__queue_empty(struct dskvs__queue *q);
/* Dequeue into batch up to max_records records (at most `limit` if
 * non-zero) and max_bytes bytes (a single larger record still comes
 * whole); wakes producers waiting for room. A batch of writes (records
 * tagged DSKVS_OP_GRP, then one without) is never split: once its first
 * record is taken the rest follow past those bounds, so `batch` must have
 * room for 2 * max_records entries (a batch of writes has at most
 * max_records records: api.c's limit) and
 * `limit` must fall on the end of a batch of writes (a committed position
 * does: such a batch is committed at once). */
DSKVS_LOCAL size_t dskvs__queue_drain(struct dskvs__queue *q,
                                      struct dskvs__rec_ref *batch,
                                      size_t max_records, size_t max_bytes,
                                      uint64_t limit);
/* The position the ring's committed records reach. */
DSKVS_LOCAL uint64_t dskvs__queue_committed_pos(struct dskvs__queue *q);
/* Every record before position `count` is durable: wake its waiters. */
DSKVS_LOCAL void dskvs__queue_publish_durable(struct dskvs__queue *q,
                                              uint64_t count);
DSKVS_LOCAL void dskvs__queue_set_error(struct dskvs__queue *q, int code,
                                        int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
DSKVS_LOCAL void dskvs__queue_clear_error(struct dskvs__queue *q);
/* Sleep until a record is queued, the queue is closed, *more (an atomic
 * flag of the consumer's, read under mu) is set, or timeout_ns (0: none)
 * passed; returns true when it is closed and nothing is left to do. */
DSKVS_LOCAL bool dskvs__queue_sleep(struct dskvs__queue *q, const int *more,
                                    uint64_t timeout_ns);
/* Tell the consumer to finish (any thread; close). */
DSKVS_LOCAL void dskvs__queue_close(struct dskvs__queue *q);

#endif
