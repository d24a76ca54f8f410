/*
 * The value block (blk.h): allocation, references, retirement through RCU
 * in batches, and the pool that recycles dead blocks. Rules kept: a
 * published block is never written again (`next`, which readers never
 * read, only once it is unpublished); the table's reference is dropped
 * only after a grace period (dskvs__blk_retire hands lists to call_rcu),
 * so a reader that found the block inside a read-side section can finish
 * with it; the last reference frees or recycles; a recycled block is
 * reachable by nobody but its shard's free list until it is handed out
 * again.
 */
#include "blk.h"

#include <malloc.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The allocation size of a block of sz bytes: a multiple of 8, the slab's
 * classes (queue.h tags block pointers in their low 3 bits). */
static inline size_t blk_round(size_t sz)
{
	return (sz + SLAB_GRAIN - 1) & ~(size_t)(SLAB_GRAIN - 1);
}

static inline unsigned blk_class(size_t rounded)
{
	return (unsigned)(rounded / SLAB_GRAIN);
}

static void blk_fill(struct dskvs__blk *b, const char *member, size_t mlen,
                     const void *val, size_t vlen, uint32_t refs)
{
	b->next = NULL;
	b->seq = 0;
	b->refs = refs;
	b->vlen = (uint32_t)vlen;
	b->mlen = (uint16_t)mlen;
	if (mlen)
		memcpy(b->key, member, mlen);
	b->key[mlen] = '\0';
	if (vlen)
		memcpy(dskvs__blk_val(b), val, vlen);
}

static inline size_t blk_size(size_t mlen, size_t vlen)
{
	return offsetof(struct dskvs__blk, key) + mlen + 1 + vlen;
}

static inline size_t blk_rounded_size(const struct dskvs__blk *b)
{
	return blk_round(blk_size(b->mlen, b->vlen));
}

static inline struct dskvs__blk_shard *shard_of_slab(struct dskvs__slab *s)
{
	return caa_container_of(s, struct dskvs__blk_shard, slab);
}

/* Free a dead block of rounded size sz to its slab, under its shard's
 * lock: sh, held by the caller, or else taken here. */
static void slab_put(struct dskvs__blk_shard *held, struct dskvs__blk *b,
                     size_t sz)
{
	struct dskvs__slab *s = dskvs__slab_of(b);
	struct dskvs__blk_shard *sh = shard_of_slab(s);
	if (sh != held)
		pthread_mutex_lock(&sh->mu);
	dskvs__slab_free(s, b);
	/* Atomic only for the release's racy peek. */
	__atomic_store_n(&sh->slab_freed, sh->slab_freed + sz,
	                 __ATOMIC_RELAXED);
	if (sh != held)
		pthread_mutex_unlock(&sh->mu);
}

/* A large block back to malloc. Its own function, not inlined, so that
 * stress/tsan.supp can name this free (after a grace period TSan cannot
 * see) and nothing else. */
static __attribute__((noinline)) void blk_free_malloced(struct dskvs__blk *b)
{
	dskvs__note_freed(malloc_usable_size(b));
	free(b);
}

/* Free a dead block: to its slab (taking its shard's lock) or to malloc.
 * Holding no shard's lock. */
static void blk_free(struct dskvs__blk *b)
{
	size_t sz = blk_rounded_size(b);
	if (sz <= BLK_POOL_MAX_SIZE) {
		slab_put(NULL, b, sz);
		return;
	}
	blk_free_malloced(b);
}

/* The calling thread's shard: numbers dealt out on first use. */
static unsigned next_shard;
static __thread unsigned my_shard; /* 1 + number; 0: none yet */

static inline struct dskvs__blk_shard *shard_of(struct dskvs__blk_pool *p)
{
	if (DSKVS_UNLIKELY(my_shard == 0))
		my_shard =
		    1 + __atomic_fetch_add(&next_shard, 1, __ATOMIC_RELAXED);
	return &p->sh[(my_shard - 1) % BLK_SHARDS];
}

struct dskvs__blk *dskvs__blk_alloc(struct dskvs__blk_pool *p,
                                    const char *member, size_t mlen,
                                    const void *val, size_t vlen, uint32_t refs)
{
	size_t sz = blk_round(blk_size(mlen, vlen));
	struct dskvs__blk *b = NULL;

	if (sz <= BLK_POOL_MAX_SIZE) {
		struct dskvs__blk_shard *sh = shard_of(p);
		unsigned k = blk_class(sz);
		pthread_mutex_lock(&sh->mu);
		b = sh->free_list[k];
		if (b != NULL) {
			sh->free_list[k] = b->next;
			sh->pooled_bytes -= sz;
			/* The next pop reads the next block's link: a cache
			 * miss, taken now, in the background. */
			if (b->next != NULL)
				__builtin_prefetch(b->next);
		} else {
			b = dskvs__slab_alloc(&sh->slab, sz);
		}
		pthread_mutex_unlock(&sh->mu);
		if (b == NULL)
			return NULL;
	} else if ((b = malloc(sz)) == NULL) {
		return NULL;
	}
	blk_fill(b, member, mlen, val, vlen, refs);
	return b;
}

/* Drop a reference; true if it was the last (the block is dead, and the
 * caller frees or recycles it). Holding the only reference, nobody can
 * take another (blk.h), so refs == 1 needs no atomic decrement. */
static inline bool blk_drop(struct dskvs__blk *b)
{
	if (__atomic_load_n(&b->refs, __ATOMIC_ACQUIRE) != 1 &&
	    __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return false;
	DSKVS_HOOK(DSKVS__HOOK_BLK_FREE, b);
	return true;
}

void dskvs__blk_unref(struct dskvs__blk *b)
{
	if (blk_drop(b))
		blk_free(b);
}

void dskvs__blk_discard(struct dskvs__blk *b)
{
	if (b != NULL)
		blk_free(b);
}

/* ---- batched retirement ------------------------------------------------ */

/* Drop the table reference of b; if it was the last, push b on *dead. */
static inline void release_one(struct dskvs__blk *b, struct dskvs__blk **dead)
{
	if (blk_drop(b)) {
		b->next = *dead;
		*dead = b;
	}
}

/* After a grace period: drop the table reference of each block of the
 * carrier; recycle the dead ones into the shard's free lists. */
static void carrier_cb(struct rcu_head *h)
{
	struct dskvs__blk_carrier *c =
	    caa_container_of(h, struct dskvs__blk_carrier, rcu);
	struct dskvs__blk_shard *sh = c->sh;
	struct dskvs__blk *dead = NULL, *spill = NULL, *b, *nx;

	/* Each block is a cache miss: prefetch ahead in the array. */
	for (unsigned i = 0; i < c->n; i++) {
		if (i + 8 < c->n)
			__builtin_prefetch(c->v[i + 8], 1);
		release_one(c->v[i], &dead);
	}
	for (b = c->overflow; b != NULL; b = nx) {
		nx = b->next;
		release_one(b, &dead);
	}
	pthread_mutex_lock(&sh->mu);
	c->n = 0;
	c->overflow = NULL;
	c->busy = false;
	if (sh->filling == NULL) {
		sh->filling = c;
	} else {
		c->idle = sh->idle;
		sh->idle = c;
	}
	for (b = dead; b != NULL; b = nx) {
		nx = b->next;
		size_t sz = blk_rounded_size(b);
		if (sz <= BLK_POOL_MAX_SIZE &&
		    sh->pooled_bytes + sz <= BLK_POOL_BYTES) {
			unsigned k = blk_class(sz);
			b->next = sh->free_list[k];
			sh->free_list[k] = b;
			sh->pooled_bytes += sz;
		} else if (sz <= BLK_POOL_MAX_SIZE &&
		           dskvs__slab_of(b) == &sh->slab) {
			slab_put(sh, b, sz); /* ours: under the lock held */
		} else {
			b->next = spill;
			spill = b;
		}
	}
	pthread_mutex_unlock(&sh->mu);
	for (b = spill; b != NULL; b = nx) {
		nx = b->next;
		blk_free(b);
	}
}

/* Hand the filling carrier over with what the shard has pending (the
 * overflow list too), and make the next free carrier the filling one.
 * Under sh->mu, with a filling carrier; the caller calls call_rcu on what
 * this returns, after unlocking. */
static struct dskvs__blk_carrier *shard_take_locked(struct dskvs__blk_shard *sh)
{
	struct dskvs__blk_carrier *c = sh->filling, *f = sh->idle;
	c->busy = true;
	c->overflow = sh->overflow;
	sh->overflow = NULL;
	__atomic_store_n(&sh->pending, 0, __ATOMIC_RELAXED);
	sh->pending_bytes = 0;
	if (f != NULL) {
		sh->idle = f->idle;
	} else if (sh->ncarriers < BLK_CARRIERS_MAX &&
	           (f = calloc(1, sizeof(*f))) != NULL) {
		/* Without memory for it, blocks wait on the overflow list
		 * until a carrier comes back. */
		f->sh = sh;
		f->extra = sh->extra;
		sh->extra = f;
		sh->ncarriers++;
	}
	sh->filling = f;
	return c;
}

void dskvs__blk_retire(struct dskvs__blk_pool *p, struct dskvs__blk *b)
{
	struct dskvs__blk_shard *sh = shard_of(p);
	struct dskvs__blk_carrier *c = NULL, *f;

	pthread_mutex_lock(&sh->mu);
	f = sh->filling;
	if (f != NULL && f->n < BLK_RETIRE_N) {
		f->v[f->n++] = b;
	} else {
		/* Every carrier in flight (or, past BLK_RETIRE_N, the
		 * filling one full and none other free). */
		b->next = sh->overflow;
		sh->overflow = b;
	}
	/* Atomic only for the flush's racy peek. */
	__atomic_store_n(&sh->pending, sh->pending + 1, __ATOMIC_RELAXED);
	sh->pending_bytes += b->vlen;
	if (f != NULL &&
	    (f->n >= BLK_RETIRE_N || sh->pending_bytes >= BLK_RETIRE_BYTES))
		c = shard_take_locked(sh);
	pthread_mutex_unlock(&sh->mu);
	if (c != NULL)
		dskvs__call_rcu(&c->rcu, carrier_cb);
}

void dskvs__blk_pool_flush(struct dskvs__blk_pool *p)
{
	for (unsigned i = 0; i < BLK_SHARDS; i++) {
		struct dskvs__blk_shard *sh = &p->sh[i];
		struct dskvs__blk_carrier *c = NULL;
		/* A racy peek (the lock decides): most shards are idle. */
		if (__atomic_load_n(&sh->pending, __ATOMIC_RELAXED) == 0 ||
		    pthread_mutex_trylock(&sh->mu) != 0)
			continue;
		if (sh->pending != 0 && sh->filling != NULL)
			c = shard_take_locked(sh);
		pthread_mutex_unlock(&sh->mu);
		if (c != NULL)
			dskvs__call_rcu(&c->rcu, carrier_cb);
	}
}

void dskvs__blk_pool_trim(struct dskvs__blk_pool *p)
{
	for (unsigned i = 0; i < BLK_SHARDS; i++) {
		struct dskvs__blk_shard *sh = &p->sh[i];
		struct dskvs__blk *others = NULL, *b, *nx;
		pthread_mutex_lock(&sh->mu);
		for (unsigned k = 0; k < BLK_POOL_CLASSES; k++) {
			for (b = sh->free_list[k]; b != NULL; b = nx) {
				nx = b->next;
				if (dskvs__slab_of(b) == &sh->slab) {
					slab_put(sh, b, (size_t)k * SLAB_GRAIN);
				} else {
					b->next = others;
					others = b;
				}
			}
			sh->free_list[k] = NULL;
		}
		sh->pooled_bytes = 0;
		pthread_mutex_unlock(&sh->mu);
		for (b = others; b != NULL; b = nx) {
			nx = b->next;
			blk_free(b);
		}
	}
	/* Every block freed first, so that a page emptied by a block of
	 * another shard's list is given back too. */
	(void)dskvs__blk_pool_release(p, 1);
}

/* Regions a shard's lock is held for at a time while releasing: at most
 * 4 x 127 x 2 madvise calls (a slab page in use gives back at most two
 * runs of system pages; an empty one joins its neighbours' run), a few
 * ms. Between chunks the releaser sleeps a moment with the lock free: an
 * unlock followed at once by a lock takes it back before a woken waiter
 * runs, so without the pause writers of the shard (and the RCU callbacks
 * that recycle into it) waited for the whole release. */
#define BLK_RELEASE_CHUNK    4
#define BLK_RELEASE_PAUSE_NS 20000

size_t dskvs__blk_pool_release(struct dskvs__blk_pool *p, size_t min_bytes)
{
	size_t given = 0, freed = 0;
	/* Racy peeks (the locks decide): a hint of what was freed. */
	for (unsigned i = 0; i < BLK_SHARDS; i++)
		freed +=
		    __atomic_load_n(&p->sh[i].slab_freed, __ATOMIC_RELAXED);
	if (freed < min_bytes || freed == 0)
		return 0;
	for (unsigned i = 0; i < BLK_SHARDS; i++) {
		struct dskvs__blk_shard *sh = &p->sh[i];
		if (__atomic_load_n(&sh->slab_freed, __ATOMIC_RELAXED) == 0)
			continue;
		pthread_mutex_lock(&sh->mu);
		unsigned n = sh->slab.nregions + 1; /* the spare too */
		__atomic_store_n(&sh->slab_freed, 0, __ATOMIC_RELAXED);
		for (unsigned done = 0;;) {
			given +=
			    dskvs__slab_release(&sh->slab, BLK_RELEASE_CHUNK);
			done += BLK_RELEASE_CHUNK;
			if (done >= n)
				break;
			pthread_mutex_unlock(&sh->mu);
			struct timespec ts = { 0, BLK_RELEASE_PAUSE_NS };
			nanosleep(&ts, NULL);
			pthread_mutex_lock(&sh->mu);
		}
		pthread_mutex_unlock(&sh->mu);
	}
	return given;
}

void dskvs__blk_pool_init(struct dskvs__blk_pool *p)
{
	memset(p, 0, sizeof(*p));
	for (unsigned i = 0; i < BLK_SHARDS; i++) {
		pthread_mutex_init(&p->sh[i].mu, NULL);
		struct dskvs__blk_shard *sh = &p->sh[i];
		dskvs__slab_init(&sh->slab);
		for (unsigned k = 0; k < BLK_CARRIERS; k++) {
			sh->carrier[k].sh = sh;
			if (k > 0) {
				sh->carrier[k].idle = sh->idle;
				sh->idle = &sh->carrier[k];
			}
		}
		sh->filling = &sh->carrier[0];
		sh->ncarriers = BLK_CARRIERS;
	}
}

void dskvs__blk_pool_destroy(struct dskvs__blk_pool *p)
{
	for (unsigned i = 0; i < BLK_SHARDS; i++) {
		struct dskvs__blk_shard *sh = &p->sh[i];
		struct dskvs__blk *b, *nx;
		/* No carrier is in flight (no callback pending): only the
		 * filling one holds blocks, and the overflow list. */
		if (sh->filling != NULL)
			for (unsigned m = 0; m < sh->filling->n; m++)
				dskvs__blk_unref(sh->filling->v[m]);
		for (struct dskvs__blk_carrier *c = sh->extra, *cn; c != NULL;
		     c = cn) {
			cn = c->extra;
			free(c);
		}
		for (b = sh->overflow; b != NULL; b = nx) {
			nx = b->next;
			dskvs__blk_unref(b);
		}
		for (unsigned k = 0; k < BLK_POOL_CLASSES; k++)
			for (b = sh->free_list[k]; b != NULL; b = nx) {
				nx = b->next;
				blk_free(b);
			}
	}
	/* Only now: a block above may have come from another shard's slab. */
	for (unsigned i = 0; i < BLK_SHARDS; i++) {
		dskvs__slab_destroy(&p->sh[i].slab);
		pthread_mutex_destroy(&p->sh[i].mu);
	}
	memset(p, 0, sizeof(*p));
}

void dskvs__blk_pool_fork_lock(struct dskvs__blk_pool *p, bool lock)
{
	for (unsigned i = 0; i < BLK_SHARDS; i++) {
		if (lock)
			pthread_mutex_lock(&p->sh[i].mu);
		else
			pthread_mutex_unlock(&p->sh[i].mu);
	}
}
