/*
 * ceiling and ceiling-hs: the physical limit of dskvs's design.
 *
 * The same two-level lookup dskvs does (a table of collections, then the
 * collection's table of members, Concurrency Kit hash tables read with no
 * lock) and the same value copy, with nothing else: no RCU read-side
 * section, no janitor queue, no log. What dskvs adds on top of this is the
 * price of being safe and persistent; the distance between the two is what
 * the goals bound.
 *
 * Memory retired by writers (replaced blocks, old ck_ht maps) is not safe to
 * free while readers may hold it, and with no RCU nothing says when it is:
 * it is parked on a per-thread list and freed by quiesce(), which the
 * harness calls between runs when no thread is inside. Maps of 2 MiB or
 * more are huge-page mappings, as dskvs's are (see ck_malloc_cb), and
 * blocks of up to SLAB_OBJ_MAX bytes come from the same slab allocator as
 * dskvs's (src/slab.c, compiled in: 2 MiB regions advised MADV_HUGEPAGE,
 * no header per block), one per thread shard under a mutex, as dskvs's.
 *
 * ceiling uses ck_ht in bytestring mode (what dskvs uses: a 32-byte slot that
 * holds key pointer, value pointer, key length and the full hash, so a probe
 * rejects a mismatch without touching the key). ceiling-hs uses ck_hs (an
 * 8-byte slot holding only the object pointer, so every probe dereferences
 * the object; Debian's libck has no pointer packing to keep hash bits in the
 * slot).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ck_hs.h>
#include <ck_ht.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "slab.h"

/* ---- retired memory ------------------------------------------------------ */

struct retired {
	void **p;
	size_t n, cap;
};

static pthread_mutex_t retire_mu = PTHREAD_MUTEX_INITIALIZER;
static struct retired retire_global;
static __thread struct retired *tl_retire;

static void retire_push(struct retired *r, void *p)
{
	if (r->n == r->cap) {
		size_t nc = r->cap ? r->cap * 2 : 1024;
		void **np = realloc(r->p, nc * sizeof(void *));
		if (np == NULL)
			abort();
		r->p = np;
		r->cap = nc;
	}
	r->p[r->n++] = p;
}

static void retire(void *p)
{
	if (tl_retire) {
		retire_push(tl_retire, p);
		return;
	}
	pthread_mutex_lock(&retire_mu);
	retire_push(&retire_global, p);
	pthread_mutex_unlock(&retire_mu);
}

static void free_retired(void *p);
static void cblk_release(void);

static void *ceil_thread_begin(void *db)
{
	(void)db;
	tl_retire = calloc(1, sizeof(*tl_retire));
	return tl_retire;
}

static void ceil_thread_end(void *db, void *tctx)
{
	struct retired *r = tctx;

	(void)db;
	pthread_mutex_lock(&retire_mu);
	for (size_t i = 0; i < r->n; i++)
		retire_push(&retire_global, r->p[i]);
	pthread_mutex_unlock(&retire_mu);
	free(r->p);
	free(r);
	tl_retire = NULL;
}

static void ceil_quiesce(void *db)
{
	(void)db;
	pthread_mutex_lock(&retire_mu);
	for (size_t i = 0; i < retire_global.n; i++)
		free_retired(retire_global.p[i]);
	retire_global.n = 0;
	pthread_mutex_unlock(&retire_mu);
	cblk_release();
}

/* Table maps as dskvs allocates them (src/table.c): a header in front
 * saying how; 2 MiB or more mapped on a huge-page boundary with
 * MADV_HUGEPAGE, so that the ceiling stays the honest limit of a design
 * whose tables ask for huge pages. A map is retired tagged with bit 0 (a
 * map pointer is 16-byte aligned), so quiesce() knows to unmap it. */
struct map_hdr {
	size_t len; /* of the mapping; 0: from malloc */
	void *base;
};
#define MAP_HUGE_MIN  ((size_t)2 << 20)
#define MAP_HUGE_PAGE ((size_t)2 << 20)

static void *ck_malloc_cb(size_t n)
{
	struct map_hdr *h;
	size_t total = sizeof(*h) + n;

	if (total >= MAP_HUGE_MIN) {
		size_t maplen = total + MAP_HUGE_PAGE;
		void *m = mmap(NULL, maplen, PROT_READ | PROT_WRITE,
		               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			return NULL;
		h = (struct map_hdr *)(((uintptr_t)m + MAP_HUGE_PAGE - 1) &
		                       ~(uintptr_t)(MAP_HUGE_PAGE - 1));
		(void)madvise(h, total, MADV_HUGEPAGE);
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

static void map_free(void *p)
{
	struct map_hdr *h = (struct map_hdr *)p - 1;
	if (h->len)
		munmap(h->base, h->len);
	else
		free(h);
}

/* ---- blocks: dskvs's slab (src/slab.h) -----------------------------------
 * A shard per thread (dealt out in thread order), its slab under its
 * mutex; a block is freed to the slab its address names. Blocks over
 * SLAB_OBJ_MAX come from malloc, as in dskvs. */
struct cshard {
	pthread_mutex_t mu;
	struct dskvs__slab slab; /* zero is empty */
} __attribute__((aligned(64)));
#define CSHARDS 8
static struct cshard cshard[CSHARDS] = {
	[0 ... CSHARDS - 1] = { .mu = PTHREAD_MUTEX_INITIALIZER },
};
static unsigned cshard_next;
static __thread unsigned cshard_mine; /* 1 + number; 0: none yet */

static size_t cblk_round(size_t n)
{
	return (n + SLAB_GRAIN - 1) & ~(size_t)(SLAB_GRAIN - 1);
}

static void *cblk_alloc(size_t n)
{
	size_t sz = cblk_round(n);
	if (sz > SLAB_OBJ_MAX)
		return malloc(n);
	if (cshard_mine == 0)
		cshard_mine =
		    1 + __atomic_fetch_add(&cshard_next, 1, __ATOMIC_RELAXED);
	struct cshard *sh = &cshard[(cshard_mine - 1) % CSHARDS];
	pthread_mutex_lock(&sh->mu);
	void *p = dskvs__slab_alloc(&sh->slab, sz);
	pthread_mutex_unlock(&sh->mu);
	return p;
}

static void cblk_free_slab(void *p)
{
	struct dskvs__slab *s = dskvs__slab_of(p);
	struct cshard *sh =
	    (struct cshard *)((char *)s - offsetof(struct cshard, slab));
	pthread_mutex_lock(&sh->mu);
	dskvs__slab_free(s, p);
	pthread_mutex_unlock(&sh->mu);
}

/* The slabs' empty pages back to the system, as dskvs's janitor does. */
static void cblk_release(void)
{
	for (unsigned i = 0; i < CSHARDS; i++) {
		pthread_mutex_lock(&cshard[i].mu);
		(void)dskvs__slab_release(&cshard[i].slab, ~0u);
		pthread_mutex_unlock(&cshard[i].mu);
	}
}

/* Free a block of n bytes (n as allocated). */
static void cblk_free(void *p, size_t n)
{
	if (cblk_round(n) > SLAB_OBJ_MAX)
		free(p);
	else
		cblk_free_slab(p);
}

/* What a block occupies: its slab class, or malloc's chunk. */
static size_t cblk_usable(void *p, size_t n)
{
	return cblk_round(n) > SLAB_OBJ_MAX ? malloc_usable_size(p) + 8
	                                    : cblk_round(n);
}

/* Park a block of n bytes: slab blocks tagged with bit 1 (blocks are
 * 8-byte aligned). */
static void retire_blk(void *p, size_t n)
{
	retire(cblk_round(n) > SLAB_OBJ_MAX ? p : (void *)((uintptr_t)p | 2));
}

/* Free what retire() parked: a block (a slab one tagged with bit 1), or a
 * map tagged with bit 0. */
static void free_retired(void *p)
{
	if ((uintptr_t)p & 1)
		map_free((void *)((uintptr_t)p & ~(uintptr_t)1));
	else if ((uintptr_t)p & 2)
		cblk_free_slab((void *)((uintptr_t)p & ~(uintptr_t)2));
	else
		free(p);
}

static void ck_free_cb(void *p, size_t n, bool defer)
{
	(void)n;
	if (defer)
		retire((void *)((uintptr_t)p | 1));
	else
		map_free(p);
}

static void *ck_realloc_cb(void *p, size_t old, size_t n, bool defer)
{
	void *q = ck_malloc_cb(n);

	if (q == NULL)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	ck_free_cb(p, old, defer);
	return q;
}

static struct ck_malloc ck_alloc = { ck_malloc_cb, ck_realloc_cb, ck_free_cb };

/* A member: key and value in one block, so a put is one allocation and the
 * key bytes the table points to live exactly as long as the value. */
struct blk {
	uint32_t vlen;
	uint16_t klen;
	char data[]; /* key, then value */
};

static size_t blk_bytes(const struct blk *b)
{
	return sizeof(*b) + b->klen + b->vlen;
}

static struct blk *blk_new(const char *k, size_t kl, const void *v, size_t vl)
{
	struct blk *b = cblk_alloc(sizeof(*b) + kl + vl);

	if (b == NULL)
		return NULL;
	b->vlen = (uint32_t)vl;
	b->klen = (uint16_t)kl;
	memcpy(b->data, k, kl);
	memcpy(b->data + kl, v, vl);
	return b;
}

/* ---- ceiling: ck_ht ------------------------------------------------------ */

struct hcoll {
	ck_ht_t ht;
	pthread_mutex_t wlock; /* the single writer of ht */
	size_t nlen;
	char name[];
};

struct hdb {
	ck_ht_t colls;
	pthread_mutex_t wlock; /* the single writer of colls */
};

static void *ceil_open(const struct bench_open_cfg *cfg, char *err,
                       size_t errlen)
{
	struct hdb *db = calloc(1, sizeof(*db));

	(void)cfg;
	if (db == NULL || !ck_ht_init(&db->colls, CK_HT_MODE_BYTESTRING, NULL,
	                              &ck_alloc, 64, 0x9e3779b9)) {
		bench_errf(err, errlen, "ck_ht_init failed");
		free(db);
		return NULL;
	}
	pthread_mutex_init(&db->wlock, NULL);
	return db;
}

static struct hcoll *hcoll_find(struct hdb *db, const char *c, size_t cl)
{
	ck_ht_hash_t h;
	ck_ht_entry_t e;

	ck_ht_hash(&h, &db->colls, c, (uint16_t)cl);
	ck_ht_entry_key_set(&e, c, (uint16_t)cl);
	if (!ck_ht_get_spmc(&db->colls, h, &e))
		return NULL;
	return ck_ht_entry_value(&e);
}

static struct hcoll *hcoll_get_or_create(struct hdb *db, const char *c,
                                         size_t cl)
{
	struct hcoll *co = hcoll_find(db, c, cl);
	ck_ht_hash_t h;
	ck_ht_entry_t e;

	if (co)
		return co;
	pthread_mutex_lock(&db->wlock);
	co = hcoll_find(db, c, cl);
	if (co == NULL) {
		co = calloc(1, sizeof(*co) + cl + 1);
		if (co == NULL || !ck_ht_init(&co->ht, CK_HT_MODE_BYTESTRING,
		                              NULL, &ck_alloc, 64, 0x9e3779b9))
			abort();
		pthread_mutex_init(&co->wlock, NULL);
		memcpy(co->name, c, cl);
		co->nlen = cl;
		ck_ht_hash(&h, &db->colls, co->name, (uint16_t)cl);
		ck_ht_entry_set(&e, h, co->name, (uint16_t)cl, co);
		if (!ck_ht_put_spmc(&db->colls, h, &e))
			abort();
	}
	pthread_mutex_unlock(&db->wlock);
	return co;
}

static int ceil_get(void *d, void *t, const struct bkey *k, void *buf,
                    size_t cap, size_t *len)
{
	struct hdb *db = d;
	struct hcoll *co = hcoll_find(db, k->full, k->coll_len);
	ck_ht_hash_t h;
	ck_ht_entry_t e;
	const char *m = bkey_member(k);
	size_t ml = bkey_member_len(k);

	(void)t;
	if (co == NULL)
		return BENCH_NOTFOUND;
	ck_ht_hash(&h, &co->ht, m, (uint16_t)ml);
	ck_ht_entry_key_set(&e, m, (uint16_t)ml);
	if (!ck_ht_get_spmc(&co->ht, h, &e))
		return BENCH_NOTFOUND;
	struct blk *b = ck_ht_entry_value(&e);
	*len = b->vlen;
	memcpy(buf, b->data + b->klen, b->vlen < cap ? b->vlen : cap);
	return 0;
}

static int ceil_put(void *d, void *t, const struct bkey *k, const void *v,
                    size_t vl)
{
	struct hdb *db = d;
	struct hcoll *co = hcoll_get_or_create(db, k->full, k->coll_len);
	const char *m = bkey_member(k);
	size_t ml = bkey_member_len(k);
	struct blk *b = blk_new(m, ml, v, vl);
	ck_ht_hash_t h;
	ck_ht_entry_t e;

	(void)t;
	if (b == NULL)
		return -1;
	ck_ht_hash(&h, &co->ht, m, (uint16_t)ml);
	ck_ht_entry_set(&e, h, b->data, (uint16_t)ml, b);
	pthread_mutex_lock(&co->wlock);
	if (!ck_ht_set_spmc(&co->ht, h, &e)) {
		pthread_mutex_unlock(&co->wlock);
		cblk_free(b, blk_bytes(b));
		return -1;
	}
	pthread_mutex_unlock(&co->wlock);
	if (ck_ht_entry_value(&e) != NULL && ck_ht_entry_value(&e) != b) {
		struct blk *old = ck_ht_entry_value(&e);
		retire_blk(old, blk_bytes(old));
	}
	return 0;
}

static int ceil_del(void *d, void *t, const struct bkey *k)
{
	struct hdb *db = d;
	struct hcoll *co = hcoll_find(db, k->full, k->coll_len);
	const char *m = bkey_member(k);
	size_t ml = bkey_member_len(k);
	ck_ht_hash_t h;
	ck_ht_entry_t e;
	int rc = BENCH_NOTFOUND;

	(void)t;
	if (co == NULL)
		return BENCH_NOTFOUND;
	ck_ht_hash(&h, &co->ht, m, (uint16_t)ml);
	ck_ht_entry_key_set(&e, m, (uint16_t)ml);
	pthread_mutex_lock(&co->wlock);
	if (ck_ht_remove_spmc(&co->ht, h, &e)) {
		struct blk *old = ck_ht_entry_value(&e);
		retire_blk(old, blk_bytes(old));
		rc = 0;
	}
	pthread_mutex_unlock(&co->wlock);
	return rc;
}

static int ceil_scan(void *d, void *t, const char *c, size_t cl, uint64_t *n,
                     uint64_t *bytes)
{
	struct hdb *db = d;
	struct hcoll *co = hcoll_find(db, c, cl);
	ck_ht_iterator_t it = CK_HT_ITERATOR_INITIALIZER;
	ck_ht_entry_t *e;
	uint64_t cnt = 0, by = 0;

	(void)t;
	if (co == NULL)
		return 0;
	/* ck_ht_next is not safe against a concurrent writer; getall runs
	 * with readers only. */
	while (ck_ht_next(&co->ht, &it, &e)) {
		struct blk *b = ck_ht_entry_value(e);
		cnt++;
		by += b->vlen + (unsigned char)b->data[b->klen];
	}
	*n = cnt;
	*bytes = by;
	return 0;
}

static void ceil_close(void *d)
{
	struct hdb *db = d;
	ck_ht_iterator_t it = CK_HT_ITERATOR_INITIALIZER;
	ck_ht_entry_t *e;

	ceil_quiesce(db);
	while (ck_ht_next(&db->colls, &it, &e)) {
		struct hcoll *co = ck_ht_entry_value(e);
		ck_ht_iterator_t mi = CK_HT_ITERATOR_INITIALIZER;
		ck_ht_entry_t *me;
		while (ck_ht_next(&co->ht, &mi, &me)) {
			struct blk *b = ck_ht_entry_value(me);
			cblk_free(b, blk_bytes(b));
		}
		ck_ht_destroy(&co->ht);
		free(co);
	}
	ck_ht_destroy(&db->colls);
	free(db);
	ceil_quiesce(NULL);
}

/* ck_ht grows to twice its size when it becomes half full: the capacity of
 * a table that grew from `initial` to hold n entries. */
static uint64_t ht_capacity(uint64_t n, uint64_t initial)
{
	uint64_t cap = 1;

	while (cap < initial)
		cap <<= 1;
	while (n * 2 > cap)
		cap <<= 1;
	return cap;
}

static void ceil_mem_report(void *d, char *out, size_t outlen)
{
	struct hdb *db = d;
	ck_ht_iterator_t it = CK_HT_ITERATOR_INITIALIZER;
	ck_ht_entry_t *e;
	uint64_t n = 0, slots = 0, req = 0, usable = 0;

	while (ck_ht_next(&db->colls, &it, &e)) {
		struct hcoll *co = ck_ht_entry_value(e);
		ck_ht_iterator_t mi = CK_HT_ITERATOR_INITIALIZER;
		ck_ht_entry_t *me;
		uint64_t cn = 0;
		while (ck_ht_next(&co->ht, &mi, &me)) {
			struct blk *b = ck_ht_entry_value(me);
			req += blk_bytes(b);
			usable += cblk_usable(b, blk_bytes(b));
			cn++;
		}
		slots += ht_capacity(cn, 64) * sizeof(ck_ht_entry_t);
		n += cn;
	}
	if (n == 0)
		return;
	snprintf(out, outlen,
	         "slots=%.1fB/entry(%zuB each) block_header=%.1fB "
	         "alloc_overhead=%.1fB",
	         (double)slots / (double)n, sizeof(ck_ht_entry_t),
	         (double)sizeof(struct blk),
	         (double)(usable - req) / (double)n);
}

const struct bench_engine bench_engine_ceiling = {
	.name = "ceiling",
	.what = "two-level ck_ht (bytestring) + value copy; no RCU, queue or "
	        "log: the limit of dskvs's design",
	.open = ceil_open,
	.close = ceil_close,
	.thread_begin = ceil_thread_begin,
	.thread_end = ceil_thread_end,
	.get = ceil_get,
	.put = ceil_put,
	.del = ceil_del,
	.scan = ceil_scan,
	.quiesce = ceil_quiesce,
	.mem_report = ceil_mem_report,
};

/* ---- ceiling-hs: ck_hs -----------------------------------------------------
 */

/* Both stored objects and lookup keys start with this, so ck_hs's compare
 * callback can take either. The hash is kept to reject most mismatches
 * without comparing bytes. */
struct hkey {
	const char *kp;
	uint64_t hash;
	uint32_t klen;
};

struct hsblk {
	struct hkey k;
	uint32_t vlen;
	char data[];
};

static size_t hsblk_bytes(const void *p)
{
	const struct hsblk *b = p;
	return sizeof(*b) + b->k.klen + b->vlen;
}

struct hscoll {
	struct hkey k;
	ck_hs_t hs;
	pthread_mutex_t wlock;
	char name[];
};

struct hsdb {
	ck_hs_t colls;
	pthread_mutex_t wlock;
};

static unsigned long hs_hash_cb(const void *o, unsigned long seed)
{
	(void)seed;
	return ((const struct hkey *)o)->hash;
}

static bool hs_cmp_cb(const void *a, const void *b)
{
	const struct hkey *x = a, *y = b;

	return x->hash == y->hash && x->klen == y->klen &&
	       memcmp(x->kp, y->kp, x->klen) == 0;
}

static void *hs_open(const struct bench_open_cfg *cfg, char *err, size_t errlen)
{
	struct hsdb *db = calloc(1, sizeof(*db));

	(void)cfg;
	if (db == NULL ||
	    !ck_hs_init(&db->colls, CK_HS_MODE_OBJECT | CK_HS_MODE_SPMC,
	                hs_hash_cb, hs_cmp_cb, &ck_alloc, 64, 0)) {
		bench_errf(err, errlen, "ck_hs_init failed");
		free(db);
		return NULL;
	}
	pthread_mutex_init(&db->wlock, NULL);
	return db;
}

static struct hscoll *hscoll_find(struct hsdb *db, const char *c, size_t cl)
{
	struct hkey k = { c, bench_hash64(c, cl), (uint32_t)cl };

	return ck_hs_get(&db->colls, (unsigned long)k.hash, &k);
}

static struct hscoll *hscoll_get_or_create(struct hsdb *db, const char *c,
                                           size_t cl)
{
	struct hscoll *co = hscoll_find(db, c, cl);

	if (co)
		return co;
	pthread_mutex_lock(&db->wlock);
	co = hscoll_find(db, c, cl);
	if (co == NULL) {
		co = calloc(1, sizeof(*co) + cl + 1);
		if (co == NULL ||
		    !ck_hs_init(&co->hs, CK_HS_MODE_OBJECT | CK_HS_MODE_SPMC,
		                hs_hash_cb, hs_cmp_cb, &ck_alloc, 64, 0))
			abort();
		pthread_mutex_init(&co->wlock, NULL);
		memcpy(co->name, c, cl);
		co->k.kp = co->name;
		co->k.klen = (uint32_t)cl;
		co->k.hash = bench_hash64(c, cl);
		if (!ck_hs_put(&db->colls, (unsigned long)co->k.hash, co))
			abort();
	}
	pthread_mutex_unlock(&db->wlock);
	return co;
}

static int hs_get(void *d, void *t, const struct bkey *k, void *buf, size_t cap,
                  size_t *len)
{
	struct hscoll *co = hscoll_find(d, k->full, k->coll_len);
	const char *m = bkey_member(k);
	size_t ml = bkey_member_len(k);
	struct hkey key = { m, bench_hash64(m, ml), (uint32_t)ml };
	struct hsblk *b;

	(void)t;
	if (co == NULL)
		return BENCH_NOTFOUND;
	b = ck_hs_get(&co->hs, (unsigned long)key.hash, &key);
	if (b == NULL)
		return BENCH_NOTFOUND;
	*len = b->vlen;
	memcpy(buf, b->data + b->k.klen, b->vlen < cap ? b->vlen : cap);
	return 0;
}

static int hs_put(void *d, void *t, const struct bkey *k, const void *v,
                  size_t vl)
{
	struct hscoll *co = hscoll_get_or_create(d, k->full, k->coll_len);
	const char *m = bkey_member(k);
	size_t ml = bkey_member_len(k);
	struct hsblk *b = cblk_alloc(sizeof(*b) + ml + vl);
	void *prev = NULL;

	(void)t;
	if (b == NULL)
		return -1;
	memcpy(b->data, m, ml);
	memcpy(b->data + ml, v, vl);
	b->k.kp = b->data;
	b->k.klen = (uint32_t)ml;
	b->k.hash = bench_hash64(m, ml);
	b->vlen = (uint32_t)vl;
	pthread_mutex_lock(&co->wlock);
	if (!ck_hs_set(&co->hs, (unsigned long)b->k.hash, b, &prev)) {
		pthread_mutex_unlock(&co->wlock);
		cblk_free(b, hsblk_bytes(b));
		return -1;
	}
	pthread_mutex_unlock(&co->wlock);
	if (prev)
		retire_blk(prev, hsblk_bytes(prev));
	return 0;
}

static int hs_del(void *d, void *t, const struct bkey *k)
{
	struct hscoll *co = hscoll_find(d, k->full, k->coll_len);
	const char *m = bkey_member(k);
	size_t ml = bkey_member_len(k);
	struct hkey key = { m, bench_hash64(m, ml), (uint32_t)ml };
	void *prev;

	(void)t;
	if (co == NULL)
		return BENCH_NOTFOUND;
	pthread_mutex_lock(&co->wlock);
	prev = ck_hs_remove(&co->hs, (unsigned long)key.hash, &key);
	pthread_mutex_unlock(&co->wlock);
	if (prev == NULL)
		return BENCH_NOTFOUND;
	retire_blk(prev, hsblk_bytes(prev));
	return 0;
}

static int hs_scan(void *d, void *t, const char *c, size_t cl, uint64_t *n,
                   uint64_t *bytes)
{
	struct hscoll *co = hscoll_find(d, c, cl);
	ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
	void *o;
	uint64_t cnt = 0, by = 0;

	(void)t;
	if (co == NULL)
		return 0;
	while (ck_hs_next_spmc(&co->hs, &it, &o)) {
		struct hsblk *b = o;
		cnt++;
		by += b->vlen + (unsigned char)b->data[b->k.klen];
	}
	*n = cnt;
	*bytes = by;
	return 0;
}

static void hs_close(void *d)
{
	struct hsdb *db = d;
	ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
	void *o;

	ceil_quiesce(db);
	while (ck_hs_next(&db->colls, &it, &o)) {
		struct hscoll *co = o;
		ck_hs_iterator_t mi = CK_HS_ITERATOR_INITIALIZER;
		void *mo;
		while (ck_hs_next(&co->hs, &mi, &mo))
			cblk_free(mo, hsblk_bytes(mo));
		ck_hs_destroy(&co->hs);
		free(co);
	}
	ck_hs_destroy(&db->colls);
	free(db);
	ceil_quiesce(NULL);
}

static void hs_mem_report(void *d, char *out, size_t outlen)
{
	struct hsdb *db = d;
	ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
	void *o;
	uint64_t n = 0, req = 0, usable = 0;

	while (ck_hs_next(&db->colls, &it, &o)) {
		struct hscoll *co = o;
		ck_hs_iterator_t mi = CK_HS_ITERATOR_INITIALIZER;
		void *mo;
		while (ck_hs_next(&co->hs, &mi, &mo)) {
			struct hsblk *b = mo;
			req += hsblk_bytes(b);
			usable += cblk_usable(b, hsblk_bytes(b));
			n++;
		}
	}
	if (n == 0)
		return;
	snprintf(out, outlen, "block_header=%zuB alloc_overhead=%.1fB",
	         sizeof(struct hsblk), (double)(usable - req) / (double)n);
}

const struct bench_engine bench_engine_ceiling_hs = {
	.name = "ceiling-hs",
	.what = "ceiling on ck_hs (8-byte slots, hash kept in the object)",
	.open = hs_open,
	.close = hs_close,
	.thread_begin = ceil_thread_begin,
	.thread_end = ceil_thread_end,
	.get = hs_get,
	.put = hs_put,
	.del = hs_del,
	.scan = hs_scan,
	.quiesce = ceil_quiesce,
	.mem_report = hs_mem_report,
};
