/*
 * The in-memory tables: two levels of ck_ht (collections, then members),
 * read lock-free inside RCU read-side sections, one writer lock per
 * collection and one for the table of collections. Also replay's
 * apply-if-newer and the compaction snapshot.
 *
 * Rules this file keeps (DESIGN.md section 4):
 *  - A ck_ht has exactly one writer at a time: members under the
 *    collection's `lock`, collections under `colls_lock`. The functions
 *    that write a members table are named _locked and check, in a
 *    debug-checks build, that the caller holds the lock and that the
 *    collection is not dead.
 *  - Readers take no lock: rcu_read_lock, two ck_ht_get_spmc, copy,
 *    rcu_read_unlock.
 *  - A replaced or deleted block is released through call_rcu
 *    (dskvs__blk_retire, by the caller), as is every map that ck_ht frees
 *    with defer == true, and every removed collection (dskvs__coll_retire).
 *  - Everything reached through a lock-free lookup (a collection, a block)
 *    is only used inside the read-side section of that lookup: that is what
 *    lets a removed collection be freed after one grace period even though
 *    writers may still be queued on its lock.
 *  - Lock order: collection lock, then colls_lock.
 *  - Nothing here waits for a grace period.
 *  - No map keeps its history (rule 7): a map is rebuilt fresh once its
 *    removals could have left a fifth of it in tombstones, and shrunk once
 *    its live count falls below a sixteenth of it ("rebuilding a map").
 * What this file does not know: the queue and the log. That a write queues
 * its record while it holds the collection's lock (so that log order is
 * memory order) is a rule of api.c, which composes the two.
 */
#include "table.h"
#include "format.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- ck_ht memory hooks -------------------------------------------------
 * Each allocation carries a header in front: an rcu_head, so that a map
 * ck_ht frees with defer == true (a reader may still be probing it) can
 * wait out a grace period, and how it was allocated. A map of
 * HT_MMAP_MIN bytes or more gets pages of its own (mmap), returned to the
 * system the moment it is freed: from the heap, glibc would carve each
 * rebuilt map out of it (its mmap threshold rises to the size of the first
 * mapped chunk freed), and the heap would keep every old map's hole
 * (measured: churn at 100,000 live members held 10 MB of RSS above the
 * heap in use, which malloc_trim could not give back). */
struct ht_hdr {
	struct rcu_head rcu;
	size_t len; /* length of the mapping; 0: from malloc */
	void *base; /* start of the mapping (the header may be further in) */
	size_t pad; /* keeps the allocation 16-byte aligned */
};
#define HT_MMAP_MIN (256u * 1024)
/* A map this large is placed on a huge-page boundary and advised
 * MADV_HUGEPAGE (Debian's default is transparent_hugepage=madvise): a
 * random lookup in it costs a TLB miss and a page walk less. */
#define HT_HUGE_MIN  (2u << 20)
#define HT_HUGE_PAGE (2u << 20)

static void *ht_malloc(size_t n)
{
	struct ht_hdr *h;
	size_t total = sizeof(*h) + n;

	if (total >= HT_MMAP_MIN) {
		size_t pg = (size_t)sysconf(_SC_PAGESIZE);
		size_t len = (total + pg - 1) & ~(pg - 1);
		bool huge = len >= HT_HUGE_MIN;
		size_t maplen = huge ? len + HT_HUGE_PAGE : len;
		void *m = mmap(NULL, maplen, PROT_READ | PROT_WRITE,
		               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			return NULL;
		h = m;
		if (huge) {
			uintptr_t a = ((uintptr_t)m + HT_HUGE_PAGE - 1) &
			              ~(uintptr_t)(HT_HUGE_PAGE - 1);
			h = (struct ht_hdr *)a;
			(void)madvise(h, len, MADV_HUGEPAGE); /* advisory */
		}
		h->len = maplen;
		h->base = m;
	} else {
		h = malloc(total);
		if (h == NULL)
			return NULL;
		h->len = 0;
	}
	return h + 1;
}

static void ht_free_now(struct ht_hdr *h)
{
	DSKVS_HOOK(DSKVS__HOOK_MAP_FREE, h + 1);
	if (h->len) {
		munmap(h->base, h->len);
	} else {
		dskvs__note_freed(malloc_usable_size(h));
		free(h);
	}
}

static void ht_free_cb(struct rcu_head *r)
{
	ht_free_now(caa_container_of(r, struct ht_hdr, rcu));
}

static void ht_free(void *p, size_t n, bool defer)
{
	(void)n;
	if (p == NULL)
		return;
	struct ht_hdr *h = (struct ht_hdr *)p - 1;
	if (defer)
		dskvs__call_rcu(&h->rcu, ht_free_cb);
	else
		ht_free_now(h);
}

static void *ht_realloc(void *p, size_t old, size_t n, bool defer)
{
	void *q = ht_malloc(n);
	if (q == NULL)
		return NULL;
	if (p != NULL)
		memcpy(q, p, old < n ? old : n);
	ht_free(p, old, defer);
	return q;
}

struct ck_malloc dskvs__ht_allocator = {
	.malloc = ht_malloc,
	.realloc = ht_realloc,
	.free = ht_free,
};

/* Initial member-table size: most collections are small, and ck_ht doubles
 * as needed (load factor 1/2). */
#define MEMBERS_INITIAL 8
#define HT_MODE         (CK_HT_MODE_BYTESTRING | CK_HT_WORKLOAD_DELETE)
/* The table of collections never shrinks below this. */
#define COLLS_INITIAL 64

/* ---- rebuilding a map -------------------------------------------------------
 *
 * ck_ht turns a removed entry into a tombstone, and nothing turns a
 * tombstone back into an empty slot: ck_ht_gc only moves entries onto
 * them, and an insert of a new key probes past every tombstone until it
 * meets an empty slot. Under churn the empty slots run out and each insert
 * probes up to ck_ht's probe limit (measured: put+delete 1 us -> 104 us).
 * Only a fresh map sheds them, and ck_ht grows a map but never shrinks one.
 *
 * So the writer of each table keeps its shape (table.h): the map's slots
 * and the removals since the map was built, which bound its tombstones.
 *  - After a removal, once removals pass a fifth of the slots, the map is
 *    rebuilt at the size its live count needs; and once the live count
 *    falls below a sixteenth of the slots, it is rebuilt smaller (a
 *    shrink). Either way at least a quarter of the slots stays empty (live
 *    <= 1/2, ck_ht's load factor, plus tombstones <= 1/5), so an insert's
 *    probe stays short whatever passed through the table before.
 *  - A rebuilt map has room for twice its live count (load <= 1/2), so it
 *    grows again after the live count doubles and shrinks again only after
 *    it falls 4-8 times: no resizing back and forth at a boundary.
 *  - Cost: a rebuild visits the old map's slots and inserts the live
 *    entries once, and it follows at least cap/5 removals, or (a shrink) at
 *    least cap/16 removals since the map was last sized: O(1) amortised per
 *    removal. It runs under the table's writer lock and holds up that
 *    table's writers (never readers) for its duration (measured: 200 ms for
 *    1M entries in 2M slots, a quarter of it first-touch page faults).
 *
 * Publication is ck_ht's own way of replacing a map (ck_ht_grow_spmc): the
 * new map is filled while no reader can see it, a store fence orders its
 * contents before its pointer, the pointer is stored with ck_pr_store_ptr
 * (ck_ht_get_spmc loads it with ck_pr_load_ptr), and the old map is freed
 * through the allocator with defer == true, that is after a grace period
 * (ht_free): a reader still probing it finds what it held when it was
 * replaced, which is a state that was current during its read. Both maps
 * point to the same keys and blocks; only the slot array is new.
 *
 * ck_ht may still grow a map on its own (ck_ht_put_spmc/ck_ht_set_spmc at
 * load 1/2); the writer notices that by the map pointer and doubles its
 * figure (a lower bound if ck_ht had to go further), resetting the
 * removals, since a grow also sheds tombstones.
 */

static uint64_t pow2_at_least(uint64_t n)
{
	uint64_t p = 1;
	while (p < n)
		p <<= 1;
	return p;
}

/* A new map's slots for `live` entries: load at most 1/2 with one more. */
static uint64_t fit_cap(uint64_t live, uint64_t min)
{
	uint64_t c = pow2_at_least(2 * live + 2);
	return c < min ? min : c;
}

static void shape_reset(struct dskvs__ht_shape *sh, ck_ht_t *ht, uint64_t cap)
{
	sh->cap = cap;
	sh->removed = 0;
	sh->map = ht->map;
}

/* After an insert: account for a grow ck_ht did by itself. Writer only. */
static inline void shape_note_insert(struct dskvs__ht_shape *sh, ck_ht_t *ht)
{
	if (DSKVS_UNLIKELY((const void *)ht->map != sh->map))
		shape_reset(sh, ht, sh->cap * 2);
}

/* Rebuild ht into a fresh map of `cap` slots (see above). Writer only,
 * holding the table's lock; the table's readers may be probing it. Never
 * waits. False (nothing changed) if the map cannot be allocated. */
static bool ht_rebuild(ck_ht_t *ht, struct dskvs__ht_shape *sh, uint64_t cap)
{
	ck_ht_iterator_t it = CK_HT_ITERATOR_INITIALIZER;
	ck_ht_entry_t *e;
	ck_ht_t fresh;

	if (!ck_ht_init(&fresh, HT_MODE, NULL, ht->m, cap, ht->seed))
		return false;
	const void *first = fresh.map;
	while (ck_ht_next(ht, &it, &e)) {
		ck_ht_hash_t h;
		ck_ht_entry_t ne;
#ifdef CK_HT_PP
		ck_ht_hash(&h, ht, ck_ht_entry_key(e),
		           ck_ht_entry_key_length(e));
#else
		h.value = e->hash; /* memoised by ck_ht */
#endif
		ck_ht_entry_set(&ne, h, ck_ht_entry_key(e),
		                ck_ht_entry_key_length(e),
		                ck_ht_entry_value(e));
		if (!ck_ht_put_spmc(&fresh, h, &ne)) {
			ck_ht_destroy(&fresh);
			return false;
		}
	}
	if ((const void *)fresh.map != first)
		cap *= 2; /* ck_ht grew it while filling: a lower bound */
	void *old = ht->map;
	ck_pr_fence_store();
	ck_pr_store_ptr(&ht->map, fresh.map);
	ht->m->free(old, 0, true);
	shape_reset(sh, ht, cap);
	return true;
}

/* After a removal from ht, which now holds `live` entries: rebuild or
 * shrink when due (see above). Writer only. */
static void shape_note_remove(struct dskvs__ht_shape *sh, ck_ht_t *ht,
                              uint64_t live, uint64_t min)
{
	sh->removed++;
	if (sh->held)
		return; /* the check runs again when the hold ends */
	if ((sh->cap > min && live * 16 < sh->cap) || sh->removed * 5 > sh->cap)
		(void)ht_rebuild(ht, sh, fit_cap(live, min));
	/* On failure (no memory) the map stays as it was, still correct; the
	 * next removal tries again. */
}

/* ---- collections -------------------------------------------------------- */

static inline void coll_lock(struct dskvs__coll *c)
{
	pthread_mutex_lock(&c->lock);
#if defined(DSKVS_DEBUG_CHECKS)
	DSKVS_CHECK(!c->owned, "second writer on a members table");
	c->owner = pthread_self();
	c->owned = true;
#endif
}

static inline void coll_unlock(struct dskvs__coll *c)
{
#if defined(DSKVS_DEBUG_CHECKS)
	DSKVS_CHECK(
	    c->owned && pthread_equal(c->owner, pthread_self()),
	    "members table unlocked by a thread that is not its writer");
	c->owned = false;
#endif
	pthread_mutex_unlock(&c->lock);
}

#define CHECK_WRITER(c)                                                       \
	DSKVS_CHECK((c)->owned &&pthread_equal((c)->owner, pthread_self()) && \
	                !(c)->dead,                                           \
	            "members table written without its lock, or after death")

static struct dskvs__coll *coll_new(struct dskvs__tables *t, const char *name,
                                    size_t len, uint64_t cap)
{
	/* 64-aligned, as its DSKVS_ALIGNED fields require (calloc gives 16). */
	size_t sz =
	    (sizeof(struct dskvs__coll) + len + 1 + DSKVS_CACHELINE - 1) &
	    ~(size_t)(DSKVS_CACHELINE - 1);
	struct dskvs__coll *c = aligned_alloc(DSKVS_CACHELINE, sz);
	if (c == NULL)
		return NULL;
	memset(c, 0, sz);
	if (!ck_ht_init(&c->members, HT_MODE, NULL, &dskvs__ht_allocator, cap,
	                t->seed)) {
		free(c);
		return NULL;
	}
	shape_reset(&c->shape, &c->members, cap);
	pthread_mutex_init(&c->lock, NULL);
	c->t = t;
	c->name.len = (uint16_t)len;
	memcpy(c->name.s, name, len);
	c->name.s[len] = '\0';
	return c;
}

/* Drop a collection's members: the table's reference on each block, and
 * its map. Only once no reader can reach it: after a grace period, or
 * single-threaded. */
static void coll_empty(struct dskvs__coll *c)
{
	ck_ht_iterator_t it = CK_HT_ITERATOR_INITIALIZER;
	ck_ht_entry_t *e;
	while (ck_ht_next(&c->members, &it, &e))
		dskvs__blk_unref(ck_ht_entry_value(e));
	ck_ht_destroy(&c->members);
	pthread_mutex_destroy(&c->lock);
}

static void coll_free_struct(struct dskvs__coll *c)
{
	dskvs__note_freed(malloc_usable_size(c));
	free(c);
}

static void coll_free(struct dskvs__coll *c)
{
	coll_empty(c);
	coll_free_struct(c);
}

/* The destroy of a removed collection, a grace period after its removal.
 * Its members go at once (a queued record holds its own reference on its
 * block); the collection itself, which holds the name its records point
 * at, now or once the janitor is done with them ("collections and their
 * records", table.h). done_seq is read under zombies_mu, which the sweep
 * holds while it raises it: a destroy either sees the raise or is on the
 * list the sweep walks. */
static void coll_free_cb(struct rcu_head *h)
{
	struct dskvs__coll *c = caa_container_of(h, struct dskvs__coll, rcu);
	struct dskvs__tables *t = c->t;
	coll_empty(c);
	pthread_mutex_lock(&t->zombies_mu);
	bool done = c->last_seq <= t->done_seq;
	if (!done) {
		c->zombie_next = t->zombies;
		t->zombies = c;
	}
	pthread_mutex_unlock(&t->zombies_mu);
	if (done)
		coll_free_struct(c);
}

void dskvs__tables_fork_lock(struct dskvs__tables *t, bool lock)
{
	if (lock) {
		pthread_mutex_lock(&t->zombies_mu);
		dskvs__blk_pool_fork_lock(&t->pool, true);
	} else {
		dskvs__blk_pool_fork_lock(&t->pool, false);
		pthread_mutex_unlock(&t->zombies_mu);
	}
}

void dskvs__colls_sweep(struct dskvs__tables *t, uint64_t done_seq)
{
	struct dskvs__coll *keep = NULL, *gone = NULL, *nx;

	pthread_mutex_lock(&t->zombies_mu);
	t->done_seq = done_seq;
	for (struct dskvs__coll *c = t->zombies; c != NULL; c = nx) {
		nx = c->zombie_next;
		if (c->last_seq <= done_seq) {
			c->zombie_next = gone;
			gone = c;
		} else {
			c->zombie_next = keep;
			keep = c;
		}
	}
	t->zombies = keep;
	pthread_mutex_unlock(&t->zombies_mu);
	for (struct dskvs__coll *c = gone; c != NULL; c = nx) {
		nx = c->zombie_next;
		coll_free_struct(c);
	}
}

/* Call inside a read-side section. */
struct dskvs__coll *dskvs__coll_lookup(struct dskvs__tables *t,
                                       const char *name, size_t len)
{
	ck_ht_hash_t h;
	ck_ht_entry_t e;
	ck_ht_hash(&h, &t->colls, name, (uint16_t)len);
	ck_ht_entry_key_set(&e, name, (uint16_t)len);
	if (!ck_ht_get_spmc(&t->colls, h, &e))
		return NULL;
	return ck_ht_entry_value(&e);
}

/* Call inside a read-side section. */
struct dskvs__blk *dskvs__member_get(struct dskvs__coll *c, const char *name,
                                     size_t len)
{
	ck_ht_hash_t h;
	ck_ht_entry_t e;
	ck_ht_hash(&h, &c->members, name, (uint16_t)len);
	ck_ht_entry_key_set(&e, name, (uint16_t)len);
	if (!ck_ht_get_spmc(&c->members, h, &e))
		return NULL;
	return ck_ht_entry_value(&e);
}

/* Insert a new collection unless another writer did first. Call inside a
 * read-side section without holding any collection lock. */
static struct dskvs__coll *
coll_create(struct dskvs__tables *t, const char *name, size_t len, uint64_t cap)
{
	struct dskvs__coll *c, *fresh;
	ck_ht_hash_t h;
	ck_ht_entry_t e;

	pthread_mutex_lock(&t->colls_lock);
	c = dskvs__coll_lookup(t, name, len);
	if (c == NULL) {
		fresh = coll_new(t, name, len, cap);
		if (fresh != NULL) {
			ck_ht_hash(&h, &t->colls, fresh->name.s, (uint16_t)len);
			ck_ht_entry_set(&e, h, fresh->name.s, (uint16_t)len,
			                fresh);
			if (ck_ht_put_spmc(&t->colls, h, &e)) {
				shape_note_insert(&t->colls_shape, &t->colls);
				c = fresh;
			} else {
				coll_free(fresh);
			}
		}
	}
	pthread_mutex_unlock(&t->colls_lock);
	return c;
}

/* Take the collection out of the table of collections. Caller holds c->lock
 * and has marked it dead; it frees c through call_rcu after unlocking. */
static void coll_unlink(struct dskvs__tables *t, struct dskvs__coll *c)
{
	ck_ht_hash_t h;
	ck_ht_entry_t e;
	pthread_mutex_lock(&t->colls_lock);
	ck_ht_hash(&h, &t->colls, c->name.s, c->name.len);
	ck_ht_entry_key_set(&e, c->name.s, c->name.len);
	if (ck_ht_remove_spmc(&t->colls, h, &e))
		shape_note_remove(&t->colls_shape, &t->colls,
		                  ck_ht_count(&t->colls), COLLS_INITIAL);
	pthread_mutex_unlock(&t->colls_lock);
}

/* Find (or create) the live collection and lock it. Call inside a read-side
 * section. A dead collection is already out of the table when its lock is
 * released, so the retry finds the fresh one or none. */
int dskvs__coll_acquire(struct dskvs__tables *t, const struct dskvs__key *k,
                        bool create, struct dskvs__coll **out)
{
	for (;;) {
		struct dskvs__coll *c = dskvs__coll_lookup(t, k->coll, k->clen);
		if (c == NULL) {
			if (!create)
				return DSKVS_NOTFOUND;
			c = coll_create(t, k->coll, k->clen, MEMBERS_INITIAL);
			if (c == NULL)
				return DSKVS_ENOMEM;
		}
		coll_lock(c);
		if (DSKVS_LIKELY(!c->dead)) {
			*out = c;
			return DSKVS_OK;
		}
		coll_unlock(c);
	}
}

void dskvs__coll_release(struct dskvs__coll *c)
{
	coll_unlock(c);
}

void dskvs__coll_retire(struct dskvs__coll *c)
{
	dskvs__call_rcu(&c->rcu, coll_free_cb);
}

/* After a removal from c's members table (its lock held, or replay). */
static inline void members_note_remove(struct dskvs__coll *c)
{
	shape_note_remove(&c->shape, &c->members, c->count, MEMBERS_INITIAL);
}

void dskvs__members_hold(struct dskvs__coll *c, bool hold)
{
	CHECK_WRITER(c);
	c->shape.held = hold;
	if (!hold && c->shape.removed) {
		/* The check the removals made while held skipped. */
		c->shape.removed--;
		members_note_remove(c);
	}
}

int dskvs__tables_init(struct dskvs__tables *t, uint64_t seed)
{
	t->seed = seed;
	t->hint = NULL;
	t->done_seq = 0;
	t->zombies = NULL;
	pthread_mutex_init(&t->zombies_mu, NULL);
	dskvs__blk_pool_init(&t->pool);
	pthread_mutex_init(&t->colls_lock, NULL);
	if (!ck_ht_init(&t->colls, HT_MODE, NULL, &dskvs__ht_allocator,
	                COLLS_INITIAL, t->seed))
		return DSKVS_ENOMEM;
	shape_reset(&t->colls_shape, &t->colls, COLLS_INITIAL);
	return DSKVS_OK;
}

void dskvs__tables_destroy(struct dskvs__tables *t)
{
	ck_ht_iterator_t it = CK_HT_ITERATOR_INITIALIZER;
	ck_ht_entry_t *e;
	while (ck_ht_next(&t->colls, &it, &e))
		coll_free(ck_ht_entry_value(e));
	ck_ht_destroy(&t->colls);
	pthread_mutex_destroy(&t->colls_lock);
	/* Emptied already by their destroys. */
	for (struct dskvs__coll *c = t->zombies, *nx; c != NULL; c = nx) {
		nx = c->zombie_next;
		coll_free_struct(c);
	}
	t->zombies = NULL;
	pthread_mutex_destroy(&t->zombies_mu);
	dskvs__blk_pool_destroy(&t->pool);
}

/*
 * ck_ht_next is not safe against a concurrent writer (an entry being moved
 * can be seen twice or missed), so the walk gathers the blocks under the
 * collection's writer lock, releases it, and only then calls fn: fn never
 * runs with a lock held (it may call get_all itself), and every block
 * gathered stays valid until the read-side section ends even if it is
 * replaced meanwhile.
 */
int dskvs__coll_gather_locked(struct dskvs__coll *c, struct dskvs__blk ***out,
                              size_t *n, bool take_ref)
{
	ck_ht_iterator_t it = CK_HT_ITERATOR_INITIALIZER;
	ck_ht_entry_t *e;
	size_t i = 0;
	struct dskvs__blk **v;

	DSKVS_HOOK(DSKVS__HOOK_MEMBERS_GATHER, c);
	*out = NULL;
	*n = 0;
	if (c->count == 0)
		return DSKVS_OK;
	v = malloc(c->count * sizeof(*v));
	if (v == NULL)
		return DSKVS_ENOMEM;
	while (i < c->count && ck_ht_next(&c->members, &it, &e)) {
		v[i] = ck_ht_entry_value(e);
		if (take_ref)
			__atomic_add_fetch(&v[i]->refs, 1, __ATOMIC_RELAXED);
		i++;
	}
	*out = v;
	*n = i;
	return DSKVS_OK;
}

/* Gather the live collections under colls_lock. Call inside a read-side
 * section; the collections stay valid until it ends. */
int dskvs__colls_gather(struct dskvs__tables *t, struct dskvs__coll ***out,
                        size_t *n)
{
	ck_ht_iterator_t it = CK_HT_ITERATOR_INITIALIZER;
	ck_ht_entry_t *e;
	size_t cap, i = 0;
	struct dskvs__coll **v;

	pthread_mutex_lock(&t->colls_lock);
	cap = (size_t)ck_ht_count(&t->colls) + 1;
	v = malloc(cap * sizeof(*v));
	if (v != NULL)
		while (i < cap && ck_ht_next(&t->colls, &it, &e))
			v[i++] = ck_ht_entry_value(e);
	pthread_mutex_unlock(&t->colls_lock);
	*out = v;
	*n = i;
	return v ? DSKVS_OK : DSKVS_ENOMEM;
}

/* The names of the live collections, packed as (u16 length, bytes) in one
 * malloc'd buffer: what the snapshot walks, since the collections
 * themselves are only valid inside the read-side section that found them.
 * Takes colls_lock. DSKVS_ENOMEM. */
static int colls_names(struct dskvs__tables *t, char **out, size_t *bytes,
                       size_t *n)
{
	ck_ht_iterator_t it = CK_HT_ITERATOR_INITIALIZER;
	ck_ht_entry_t *e;
	size_t cap = 4096, len = 0, cnt = 0;
	char *buf = malloc(cap);

	if (buf == NULL)
		return DSKVS_ENOMEM;
	pthread_mutex_lock(&t->colls_lock);
	while (ck_ht_next(&t->colls, &it, &e)) {
		struct dskvs__coll *c = ck_ht_entry_value(e);
		if (len + 2 + c->name.len > cap) {
			char *p = realloc(buf, cap * 2 + c->name.len);
			if (p == NULL) {
				pthread_mutex_unlock(&t->colls_lock);
				free(buf);
				return DSKVS_ENOMEM;
			}
			buf = p;
			cap = cap * 2 + c->name.len;
		}
		memcpy(buf + len, &c->name.len, 2);
		memcpy(buf + len + 2, c->name.s, c->name.len);
		len += 2 + (size_t)c->name.len;
		cnt++;
	}
	pthread_mutex_unlock(&t->colls_lock);
	*out = buf;
	*bytes = len;
	*n = cnt;
	return DSKVS_OK;
}

/*
 * The gather walks the collections by name, each inside a read-side
 * section of its own that ends before progress() runs: progress writes and
 * fdatasyncs batches, and a read-side section across an fsync would hold
 * up every reclamation for that long. A collection dropped after the names
 * were taken is skipped; one re-created under the same name is gathered as
 * it is then; one created later is not in the list: all of its records
 * were dequeued after the gather began, so the compaction writes them after
 * the snapshot (compact.c).
 */
int dskvs__snapshot(struct dskvs__tables *t, struct dskvs__rec_ref **out,
                    size_t *nout, int (*progress)(void *, bool), void *arg)
{
	struct dskvs__rec_ref *all = NULL;
	char *names = NULL;
	size_t nbytes = 0, nc = 0, n = 0, cap = 0;
	int rc;

	rc = colls_names(t, &names, &nbytes, &nc);
	for (size_t off = 0; rc == DSKVS_OK && off < nbytes;) {
		uint16_t len;
		memcpy(&len, names + off, 2);
		const char *name = names + off + 2;
		off += 2 + (size_t)len;

		struct dskvs__coll *c;
		struct dskvs__blk **v;
		size_t m;
		/* Never block on a collection lock: see progress. */
		for (;;) {
			dskvs__rcu_read_lock();
			c = dskvs__coll_lookup(t, name, len);
			if (c == NULL || pthread_mutex_trylock(&c->lock) == 0)
				break;
			dskvs__rcu_read_unlock();
			if (progress(arg, true) != 0) {
				rc = DSKVS_ENOMEM;
				break;
			}
		}
		if (rc != DSKVS_OK)
			break;
		if (c == NULL) {
			dskvs__rcu_read_unlock();
			continue;
		}
#if defined(DSKVS_DEBUG_CHECKS)
		c->owner = pthread_self();
		c->owned = true;
#endif
		if (c->dead) {
			coll_unlock(c);
			dskvs__rcu_read_unlock();
			continue;
		}
		rc = dskvs__coll_gather_locked(c, &v, &m, true);
		if (rc == DSKVS_OK && n + m > cap) {
			size_t ncap = (n + m) * 2;
			void *p = realloc(all, ncap * sizeof(*all));
			if (p == NULL) {
				for (size_t j = 0; j < m; j++)
					dskvs__blk_unref(v[j]);
				free(v);
				rc = DSKVS_ENOMEM;
			} else {
				all = p;
				cap = ncap;
			}
		}
		if (rc == DSKVS_OK) {
			for (size_t j = 0; j < m; j++)
				all[n + j] =
				    (struct dskvs__rec_ref){ .p = v[j],
					                     .name = &c->name };
			n += m;
			free(v);
		}
		coll_unlock(c);
		dskvs__rcu_read_unlock();
		/* Between collections: let a batch through. */
		if (rc == DSKVS_OK && progress(arg, false) != 0)
			rc = DSKVS_ENOMEM;
	}
	free(names);
	if (rc != DSKVS_OK) {
		for (size_t j = 0; j < n; j++)
			dskvs__blk_unref(all[j].p);
		free(all);
		return rc;
	}
	*out = all;
	*nout = n;
	return DSKVS_OK;
}

/* Sum of the log bytes of live records; racy by design (monitoring and the
 * compaction trigger only). */
uint64_t dskvs__live_log_bytes(struct dskvs__tables *t)
{
	struct dskvs__coll **v;
	size_t n;
	uint64_t sum = 0;

	dskvs__rcu_read_lock();
	if (dskvs__colls_gather(t, &v, &n) == DSKVS_OK) {
		for (size_t i = 0; i < n; i++)
			sum +=
			    __atomic_load_n(&v[i]->log_bytes, __ATOMIC_RELAXED);
		free(v);
	}
	dskvs__rcu_read_unlock();
	return sum;
}

void dskvs__totals(struct dskvs__tables *t, uint64_t *colls, uint64_t *entries,
                   uint64_t *live, uint64_t *log_live)
{
	struct dskvs__coll **v;
	size_t n;

	*colls = *entries = *live = *log_live = 0;
	dskvs__rcu_read_lock();
	if (dskvs__colls_gather(t, &v, &n) == DSKVS_OK) {
		for (size_t i = 0; i < n; i++) {
			struct dskvs__coll *c = v[i];
			uint64_t cnt =
			    __atomic_load_n(&c->count, __ATOMIC_RELAXED);
			if (cnt == 0)
				continue;
			*colls += 1;
			*entries += cnt;
			/* log record bytes minus headers and the collection
			 * name and '/' of each key: member + value bytes */
			*live +=
			    __atomic_load_n(&c->log_bytes, __ATOMIC_RELAXED) -
			    cnt * (DSKVS_REC_HDR + c->name.len + 1);
			*log_live +=
			    __atomic_load_n(&c->log_bytes, __ATOMIC_RELAXED);
		}
		free(v);
	}
	dskvs__rcu_read_unlock();
}

/* The log bytes of a member's put record. */
static inline uint64_t blk_rec_bytes(const struct dskvs__coll *c,
                                     const struct dskvs__blk *b)
{
	return dskvs__rec_size((size_t)c->name.len + 1 + b->mlen, b->vlen);
}

/* Account for `nb` replacing `ob` (either may be NULL). Under c->lock. */
static inline void account(struct dskvs__coll *c, struct dskvs__blk *nb,
                           struct dskvs__blk *ob)
{
	uint64_t cnt = c->count, vb = c->vbytes, lb = c->log_bytes;
	if (nb) {
		cnt++;
		vb += nb->vlen;
		lb += blk_rec_bytes(c, nb);
	}
	if (ob) {
		cnt--;
		vb -= ob->vlen;
		lb -= blk_rec_bytes(c, ob);
	}
	/* Relaxed atomic stores: stats read these without the lock. */
	__atomic_store_n(&c->count, cnt, __ATOMIC_RELAXED);
	__atomic_store_n(&c->vbytes, vb, __ATOMIC_RELAXED);
	__atomic_store_n(&c->log_bytes, lb, __ATOMIC_RELAXED);
}

int dskvs__member_set_locked(struct dskvs__coll *c, struct dskvs__blk *b,
                             struct dskvs__blk **prev)
{
	ck_ht_hash_t h;
	ck_ht_entry_t e;
	int fail = DSKVS_OK;
	CHECK_WRITER(c);
	DSKVS_HOOK(DSKVS__HOOK_MEMBER_SET, &fail);
	if (DSKVS_UNLIKELY(fail != DSKVS_OK))
		return fail;
	ck_ht_hash(&h, &c->members, dskvs__blk_member(b), b->mlen);
	ck_ht_entry_set(&e, h, dskvs__blk_member(b), b->mlen, b);
	if (!ck_ht_set_spmc(&c->members, h, &e))
		return DSKVS_ENOMEM;
	shape_note_insert(&c->shape, &c->members);
	*prev = e.key == CK_HT_KEY_EMPTY ? NULL : ck_ht_entry_value(&e);
	account(c, b, *prev);
	return DSKVS_OK;
}

void dskvs__member_room_locked(struct dskvs__coll *c)
{
	CHECK_WRITER(c);
	if ((c->count + 1) * 2 > c->shape.cap)
		(void)ht_rebuild(&c->members, &c->shape, c->shape.cap * 2);
	/* On failure ck_ht tries the grow itself inside the insert. */
}

int dskvs__member_room_n_locked(struct dskvs__coll *c, uint64_t n)
{
	CHECK_WRITER(c);
	if ((c->count + n) * 2 <= c->shape.cap)
		return DSKVS_OK;
	uint64_t cap = c->shape.cap ? c->shape.cap : 8;
	while ((c->count + n) * 2 > cap)
		cap *= 2;
	return ht_rebuild(&c->members, &c->shape, cap) ? DSKVS_OK
	                                               : DSKVS_ENOMEM;
}

struct dskvs__blk *dskvs__member_remove_locked(struct dskvs__coll *c,
                                               const char *name, size_t len)
{
	ck_ht_hash_t h;
	ck_ht_entry_t e;
	CHECK_WRITER(c);
	ck_ht_hash(&h, &c->members, name, (uint16_t)len);
	ck_ht_entry_key_set(&e, name, (uint16_t)len);
	if (!ck_ht_remove_spmc(&c->members, h, &e))
		return NULL;
	struct dskvs__blk *prev = ck_ht_entry_value(&e);
	account(c, NULL, prev);
	members_note_remove(c);
	return prev;
}

/* The collection became empty: take it out of the table. Under c->lock; the
 * caller frees it with call_rcu after unlocking. */
void dskvs__coll_kill_locked(struct dskvs__tables *t, struct dskvs__coll *c)
{
	CHECK_WRITER(c);
	c->dead = true;
	coll_unlink(t, c);
}

/* ---- replay (open only: no readers, no janitor) --------------------------
 * One or several replay threads (log.c). A collection's members table and
 * its blocks are written and read by one of them only, so a block replaced
 * during replay is freed at once; the table of collections is shared (see
 * replay_drop). */

static int split_key(const char *key, size_t klen, struct dskvs__key *k)
{
	const char *slash = memchr(key, '/', klen);
	if (slash == NULL)
		return -1;
	k->coll = key;
	k->clen = (size_t)(slash - key);
	k->member = slash + 1;
	k->mlen = klen - k->clen - 1;
	return 0;
}

static struct dskvs__coll *
replay_coll(struct dskvs__tables *t, const char *name, size_t len, bool create)
{
	struct dskvs__coll *c = dskvs__coll_lookup(t, name, len);
	if (c == NULL && create) {
		uint64_t puts =
		    t->hint ? t->hint->puts(t->hint->arg, name, len) : 0;
		c = coll_create(t, name, len, fit_cap(puts, MEMBERS_INITIAL));
	}
	return c;
}

/* Take an emptied collection out. Another replay thread may be probing the
 * table of collections (log.c, parallel replay), so the free waits for a
 * grace period as at run time. */
static void replay_drop(struct dskvs__tables *t, struct dskvs__coll *c)
{
	coll_unlink(t, c);
	dskvs__call_rcu(&c->rcu, coll_free_cb);
}

/*
 * Replay applies a record only if it is newer than what the key holds:
 * entries carry the sequence number of their write. In a log written in
 * order this never skips anything; after a compaction the snapshot's entries
 * may be newer than the records that follow it (see janitor.c), and this
 * rule makes the replay equal to applying the history in order.
 */
int dskvs__replay_put(struct dskvs__tables *t, const char *key, size_t klen,
                      const void *val, size_t vlen, uint64_t seq)
{
	struct dskvs__key k;
	struct dskvs__coll *c;
	struct dskvs__blk *b, *prev;
	ck_ht_hash_t h;
	ck_ht_entry_t e;

	if (split_key(key, klen, &k) != 0)
		return DSKVS_ECORRUPT;
	dskvs__rcu_read_lock();
	c = replay_coll(t, k.coll, k.clen, true);
	if (c == NULL) {
		dskvs__rcu_read_unlock();
		return DSKVS_ENOMEM;
	}
	b = dskvs__blk_alloc(&t->pool, k.member, k.mlen, val, vlen, 1);
	if (b == NULL) {
		dskvs__rcu_read_unlock();
		return DSKVS_ENOMEM;
	}
	b->seq = seq;
	/* Set first and look at what it replaced: one probe instead of two
	 * in the common case of a log written in order. */
	ck_ht_hash(&h, &c->members, dskvs__blk_member(b), (uint16_t)k.mlen);
	ck_ht_entry_set(&e, h, dskvs__blk_member(b), (uint16_t)k.mlen, b);
	if (!ck_ht_set_spmc(&c->members, h, &e)) {
		dskvs__blk_discard(b);
		dskvs__rcu_read_unlock();
		return DSKVS_ENOMEM;
	}
	shape_note_insert(&c->shape, &c->members);
	prev = e.key == CK_HT_KEY_EMPTY ? NULL : ck_ht_entry_value(&e);
	if (prev && prev->seq >= seq) {
		/* The key already held a newer write (an entry of a
		 * compaction snapshot): put it back. Replacing an existing
		 * key allocates nothing. */
		ck_ht_entry_set(&e, h, dskvs__blk_member(prev),
		                (uint16_t)k.mlen, prev);
		ck_ht_set_spmc(&c->members, h, &e);
		dskvs__blk_discard(b);
		dskvs__rcu_read_unlock();
		return DSKVS_OK;
	}
	account(c, b, prev);
	if (prev)
		dskvs__blk_unref(prev);
	dskvs__rcu_read_unlock();
	return DSKVS_OK;
}

int dskvs__replay_del(struct dskvs__tables *t, const char *key, size_t klen,
                      uint64_t seq)
{
	struct dskvs__key k;
	struct dskvs__coll *c;
	struct dskvs__blk *prev;
	ck_ht_hash_t h;
	ck_ht_entry_t e;

	if (split_key(key, klen, &k) != 0)
		return DSKVS_ECORRUPT;
	dskvs__rcu_read_lock();
	c = replay_coll(t, k.coll, k.clen, false);
	prev = c ? dskvs__member_get(c, k.member, k.mlen) : NULL;
	if (prev && prev->seq < seq) {
		ck_ht_hash(&h, &c->members, k.member, (uint16_t)k.mlen);
		ck_ht_entry_key_set(&e, k.member, (uint16_t)k.mlen);
		ck_ht_remove_spmc(&c->members, h, &e);
		account(c, NULL, prev);
		dskvs__blk_unref(prev);
		members_note_remove(c);
		if (c->count == 0)
			replay_drop(t, c);
	}
	dskvs__rcu_read_unlock();
	return DSKVS_OK;
}

int dskvs__replay_delall(struct dskvs__tables *t, const char *name, size_t len,
                         uint64_t seq)
{
	struct dskvs__coll *c;
	struct dskvs__blk **v;
	size_t n;
	int rc = DSKVS_OK;

	dskvs__rcu_read_lock();
	c = replay_coll(t, name, len, false);
	if (c != NULL) {
		rc = dskvs__coll_gather_locked(c, &v, &n, false);
		if (rc == DSKVS_OK) {
			for (size_t i = 0; i < n; i++) {
				ck_ht_hash_t h;
				ck_ht_entry_t e;
				if (v[i]->seq >= seq)
					continue;
				ck_ht_hash(&h, &c->members,
				           dskvs__blk_member(v[i]), v[i]->mlen);
				ck_ht_entry_key_set(&e, dskvs__blk_member(v[i]),
				                    v[i]->mlen);
				ck_ht_remove_spmc(&c->members, h, &e);
				account(c, NULL, v[i]);
				dskvs__blk_unref(v[i]);
				members_note_remove(c);
			}
			free(v);
			if (c->count == 0)
				replay_drop(t, c);
		}
	}
	dskvs__rcu_read_unlock();
	return rc;
}

void dskvs__replay_set_hint(struct dskvs__tables *t,
                            const struct dskvs__replay_hint *h, uint64_t colls)
{
	t->hint = h;
	pthread_mutex_lock(&t->colls_lock);
	uint64_t cap = fit_cap(colls, COLLS_INITIAL);
	if (cap > t->colls_shape.cap)
		(void)ht_rebuild(&t->colls, &t->colls_shape, cap);
	/* On failure the table grows as it fills, as without a hint. */
	pthread_mutex_unlock(&t->colls_lock);
}

void dskvs__replay_finish(struct dskvs__tables *t)
{
	ck_ht_iterator_t it = CK_HT_ITERATOR_INITIALIZER;
	ck_ht_entry_t *e;

	t->hint = NULL;
	while (ck_ht_next(&t->colls, &it, &e)) {
		struct dskvs__coll *c = ck_ht_entry_value(e);
		uint64_t need = fit_cap(c->count, MEMBERS_INITIAL);
		if (c->shape.cap > 2 * need)
			(void)ht_rebuild(&c->members, &c->shape, need);
		/* On failure the map stays larger than it needs: correct. */
	}
}
