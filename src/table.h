/*
 * Layer 2: the tables. Collections (a ck_ht of members each) in a ck_ht of
 * collections; lock-free readers, one writer per table. See table.c for
 * the rules it keeps.
 */
#ifndef DSKVS_TABLE_H
#define DSKVS_TABLE_H

#include "base.h"
#include "blk.h"
#include "rcu.h"

#include <ck_ht.h>
#include <pthread.h>

/* ---- the shape of a map ------------------------------------------------
 * ck_ht's map is opaque and never sheds its tombstones, so the writer of
 * each table keeps what it needs to rebuild the map in time (table.c):
 * written and read only by that table's writer, under its lock. */
struct dskvs__ht_shape {
	uint64_t cap;     /* slots of the current map (a lower bound after a
	                     grow inside ck_ht that went past doubling) */
	uint64_t removed; /* removals since the map was built: a bound on its
	                     tombstones */
	const void *map;  /* the map these figures describe */
	bool held;        /* no rebuild on removal (dskvs__members_hold) */
};

/* ---- collections -------------------------------------------------------- */

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
	uint64_t count;     /* members */
	uint64_t vbytes;    /* sum of value lengths */
	uint64_t log_bytes; /* log bytes of the records of live members */
	/* Under `lock`, private to the writer: the shape of the current
	 * members map (table.c, "rebuilding a map"). */
	struct dskvs__ht_shape shape;
#if defined(DSKVS_DEBUG_CHECKS)
	pthread_t owner; /* thread holding `lock` (debug checks only) */
	bool owned;
#endif
	/* for the deferred destroy after removal */
	struct rcu_head rcu DSKVS_ALIGNED;
	struct dskvs__tables *t; /* constant */
	/* The sequence number of the last record queued for the collection
	 * (0: none): written under `lock` by the writer that queued it
	 * (dskvs__coll_note_record_locked); read by the destroy after
	 * removal, which the removal orders after every write of it. */
	uint64_t last_seq;
	struct dskvs__coll *zombie_next; /* under the tables' zombies_mu */
	/* Last: its bytes follow, NUL-terminated. The key of the table of
	 * collections points at name.s; queued records point at name. */
	struct dskvs__name name;
};

/* The table of collections: key = name inside the collection, value = the
 * collection. Written only under colls_lock; read lock-free. */
struct dskvs__tables {
	ck_ht_t colls;
	pthread_mutex_t colls_lock;
	struct dskvs__ht_shape colls_shape; /* under colls_lock */
	uint64_t seed;                      /* hash seed, constant after init */
	/* Retired and recycled blocks of this store (blk.h): its writers
	 * allocate from it and retire into it; the janitor flushes it. */
	struct dskvs__blk_pool pool;
	/* Replay's size hint (dskvs__replay_hint), or NULL: set by the
	 * opening thread before the replay threads start, cleared after
	 * they are joined; constant while they run. */
	const struct dskvs__replay_hint *hint;
	/* Collections and their records (below), all under zombies_mu:
	 * done_seq, raised by the janitor's sweep, read by the destroy of a
	 * removed collection; the removed collections whose records were
	 * still queued (the destroy pushes, the sweep frees), emptied of
	 * their members already. */
	pthread_mutex_t zombies_mu;
	uint64_t done_seq;
	struct dskvs__coll *zombies;
};

/* ---- collections and their records --------------------------------------
 * A queued record carries its collection's name by pointer, not a copy
 * (blk.h), so a collection must outlive its records: removed from the
 * table (DeleteAll, a delete of its last member), it is freed after a
 * grace period only once the janitor is done with the last record queued
 * for it, c->last_seq: done_seq, which the janitor raises where it holds
 * no record (the top of its loop: dskvs__colls_sweep), has reached it.
 * Until then the destroy leaves it on the zombies list, which the sweep
 * walks. Its members go at the destroy, a grace period after the removal
 * (each queued record holds its own block reference): a zombie keeps its
 * struct and name only. Replay queues nothing (last_seq 0). A compaction
 * runs on the janitor thread between two sweeps, so the collections of its
 * snapshot and of the records it holds stay alive until it returns (a
 * collection in the snapshot had members, and is removed only by a record,
 * a delete or a DeleteAll, queued after the snapshot's sweep); what it
 * costs is a struct for each collection removed meanwhile. */
static inline void dskvs__coll_note_record_locked(struct dskvs__coll *c,
                                                  uint64_t seq)
{
	c->last_seq = seq;
}
/* Take (lock) or give back (!lock) the leaf locks that a call_rcu
 * callback of these tables takes (zombies_mu, the pool's shard locks):
 * fork's handlers only (store.c), with the call_rcu threads paused, so
 * that a callback the child inherits from the parent never waits for a
 * lock that a thread of the parent held at fork. */
DSKVS_LOCAL void dskvs__tables_fork_lock(struct dskvs__tables *t, bool lock);
/* The janitor holds no record with a sequence number up to done_seq:
 * raise t->done_seq and free the removed collections that waited for it.
 * The janitor thread only, holding no record; takes zombies_mu. */
DSKVS_LOCAL void dskvs__colls_sweep(struct dskvs__tables *t, uint64_t done_seq);

extern struct ck_malloc dskvs__ht_allocator;
DSKVS_LOCAL int dskvs__tables_init(struct dskvs__tables *t, uint64_t seed);
/* Free every collection and block now; only when no other thread can touch
 * the tables (open failure, close after the janitor stopped, after an
 * rcu_barrier). */
DSKVS_LOCAL void dskvs__tables_destroy(struct dskvs__tables *t);

/* ---- lookups: call inside a read-side section; what they return stays
 * valid until it ends. */
DSKVS_LOCAL struct dskvs__coll *
dskvs__coll_lookup(struct dskvs__tables *t, const char *name, size_t len);
DSKVS_LOCAL struct dskvs__blk *dskvs__member_get(struct dskvs__coll *c,
                                                 const char *name, size_t len);

/* ---- writing a collection ----------------------------------------------
 * Find (or, with create, make) the live collection of k and lock it. Call
 * inside a read-side section, holding no collection lock; may sleep on the
 * lock. DSKVS_NOTFOUND (no such collection, create false), DSKVS_ENOMEM.
 * A dead collection is already out of the table when its lock is released,
 * so the retry inside finds the fresh one or none (DESIGN rule 6). */
DSKVS_LOCAL int dskvs__coll_acquire(struct dskvs__tables *t,
                                    const struct dskvs__key *k, bool create,
                                    struct dskvs__coll **out);
DSKVS_LOCAL void dskvs__coll_release(struct dskvs__coll *c);
/* Publish b (the table takes the reference the caller made for it),
 * replacing *prev (NULL if the member was new), whose table reference the
 * caller must then retire. Call with c's lock held. DSKVS_ENOMEM (nothing
 * changed). */
DSKVS_LOCAL int dskvs__member_set_locked(struct dskvs__coll *c,
                                         struct dskvs__blk *b,
                                         struct dskvs__blk **prev);
/* hold: removals from c's members map stop rebuilding it (a shrink, or a
 * rebuild that drops tombstones), so that a batch of writes, which holds
 * every other producer while its queue slots are reserved, never
 * reallocates the map it pre-grew (dskvs__member_room_n_locked) and its
 * undo finds room for what it puts back. !hold: the hold ends, and the
 * check the removals skipped runs once (may rebuild; no queue slot may be
 * reserved then). Call with c's lock held. */
DSKVS_LOCAL void dskvs__members_hold(struct dskvs__coll *c, bool hold);
/* Grow c's members map now if one more member could make the next
 * dskvs__member_set_locked grow it, so that a caller can keep that set
 * short (api.c sets inside a reserved queue slot, where every other
 * producer waits). Call with c's lock held. May allocate; never fails
 * (on failure the set grows the map itself, or reports DSKVS_ENOMEM). */
DSKVS_LOCAL void dskvs__member_room_locked(struct dskvs__coll *c);
/* The same for n more members at once (dskvs_write_batch): after
 * DSKVS_OK the map has room for count + n members below ck_ht's load
 * factor, so that those inserts do not grow it. DSKVS_ENOMEM (nothing
 * changed). Call with c's lock held. */
DSKVS_LOCAL int dskvs__member_room_n_locked(struct dskvs__coll *c, uint64_t n);
/* Unpublish a member; returns its block (the caller retires the table's
 * reference) or NULL if absent. Call with c's lock held. */
DSKVS_LOCAL struct dskvs__blk *
dskvs__member_remove_locked(struct dskvs__coll *c, const char *name,
                            size_t len);
/* Mark c dead and take it out of the table of collections. Call with c's
 * lock held (takes colls_lock inside: lock order). After releasing the
 * lock the caller retires c. */
DSKVS_LOCAL void dskvs__coll_kill_locked(struct dskvs__tables *t,
                                         struct dskvs__coll *c);
/* Free a removed collection after a grace period. Never waits. */
DSKVS_LOCAL void dskvs__coll_retire(struct dskvs__coll *c);

/* ---- walks ----------------------------------------------------------------
 * ck_ht_next is not safe against a concurrent writer, so walks gather
 * pointers under the writer's lock and use them after releasing it. */
/* The blocks of c (*out malloc'd, *n of them), with a reference each if
 * take_ref. Call with c's lock held, inside a read-side section.
 * DSKVS_ENOMEM. */
DSKVS_LOCAL int dskvs__coll_gather_locked(struct dskvs__coll *c,
                                          struct dskvs__blk ***out, size_t *n,
                                          bool take_ref);
/* The live collections (*out malloc'd). Call inside a read-side section;
 * they stay valid until it ends. Takes colls_lock. DSKVS_ENOMEM. */
DSKVS_LOCAL int dskvs__colls_gather(struct dskvs__tables *t,
                                    struct dskvs__coll ***out, size_t *n);

/* Snapshot of the live set for compaction: every published block with a
 * reference taken (its seq, the version, was written once before it was
 * published, so it needs no copy), untagged, with its collection's name
 * (alive until the next dskvs__colls_sweep: above). *out is malloc'd; the
 * caller unrefs each block. The janitor thread only.
 * Collection locks are only tried: while one is busy, progress(arg, true)
 * is called (the janitor drains its queue there, since the lock holder may
 * be a writer waiting for queue space), and after each collection
 * progress(arg, false), so that batches go on being written during a long
 * gather; a non-zero return aborts with DSKVS_ENOMEM. Call outside any
 * read-side section: it opens one per collection and calls progress
 * outside them (progress may fsync). */
DSKVS_LOCAL int dskvs__snapshot(struct dskvs__tables *t,
                                struct dskvs__rec_ref **out, size_t *n,
                                int (*progress)(void *arg, bool busy),
                                void *arg);
/* Sum of the log bytes of live records; racy (monitoring and the
 * compaction trigger only). */
DSKVS_LOCAL uint64_t dskvs__live_log_bytes(struct dskvs__tables *t);
/* Totals for dskvs_stats_get (racy sums, monitoring only). */
DSKVS_LOCAL void dskvs__totals(struct dskvs__tables *t, uint64_t *colls,
                               uint64_t *entries, uint64_t *live,
                               uint64_t *log_live);

/* ---- replay (open only: no readers, no janitor) ---------------------------
 * Apply a replayed record if it is newer than what the key holds. Several
 * replay threads may run at once, each owning a share of the collections
 * (recover.c): the table of collections is shared, a members table never.
 * DSKVS_ENOMEM, DSKVS_ECORRUPT (a key that does not split). */
DSKVS_LOCAL int dskvs__replay_put(struct dskvs__tables *t, const char *key,
                                  size_t klen, const void *val, size_t vlen,
                                  uint64_t seq);
DSKVS_LOCAL int dskvs__replay_del(struct dskvs__tables *t, const char *key,
                                  size_t klen, uint64_t seq);
DSKVS_LOCAL int dskvs__replay_delall(struct dskvs__tables *t, const char *name,
                                     size_t len, uint64_t seq);

/* Pass 1 of a parallel replay counts the puts of each collection
 * (recover.c); a collection that replay creates gets a members map sized
 * for that many at once, instead of growing to it a doubling at a time.
 * puts() returns the count for a name, 0 when unknown (then the map
 * starts small and grows as before); an overwritten key makes it an
 * over-estimate, which dskvs__replay_finish corrects. */
struct dskvs__replay_hint {
	uint64_t (*puts)(const void *arg, const char *name, size_t len);
	const void *arg;
};
/* Install h (NULL: none) for the replay that follows, and size the table
 * of collections for `colls` of them. Open only, before the replay
 * threads start or after they were joined. */
DSKVS_LOCAL void dskvs__replay_set_hint(struct dskvs__tables *t,
                                        const struct dskvs__replay_hint *h,
                                        uint64_t colls);
/* After replay (all replay threads joined): rebuild every members map
 * more than twice the size its live count needs (an over-estimated
 * hint, or deletions late in the log). Open only. */
DSKVS_LOCAL void dskvs__replay_finish(struct dskvs__tables *t);

#endif
