/*
 * rwlock: the design of the original Go library. A map of collections behind
 * one reader-writer lock, each collection a map of members behind its own
 * reader-writer lock (Go's sync.RWMutex, which makes new readers wait once
 * a writer waits: hence the writer-preferring pthread kind). Readers take
 * two read locks per get; the lock word is shared by every reader of a
 * collection, so each read writes a cache line every other core also writes.
 * That line bouncing is what dskvs's lock-free readers exist to avoid.
 *
 * The map is a plain chained hash table (FNV-1a), doubled at load factor 1.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

struct ent {
	struct ent *next;
	uint64_t hash;
	uint32_t klen, vlen;
	void *ptr;   /* collections: the member map */
	char data[]; /* key, then value */
};

struct map {
	struct ent **b;
	size_t mask, n;
};

static int map_init(struct map *m, size_t cap)
{
	m->b = calloc(cap, sizeof(*m->b));
	m->mask = cap - 1;
	m->n = 0;
	return m->b ? 0 : -1;
}

static struct ent **map_slot(struct map *m, uint64_t h, const char *k,
                             size_t kl)
{
	struct ent **pp = &m->b[h & m->mask];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->klen == kl &&
		    memcmp((*pp)->data, k, kl) == 0)
			break;
	return pp;
}

static void map_grow(struct map *m)
{
	size_t nc = (m->mask + 1) * 2;
	struct ent **nb = calloc(nc, sizeof(*nb));

	if (nb == NULL)
		return;
	for (size_t i = 0; i <= m->mask; i++) {
		struct ent *e = m->b[i], *nx;
		for (; e; e = nx) {
			nx = e->next;
			e->next = nb[e->hash & (nc - 1)];
			nb[e->hash & (nc - 1)] = e;
		}
	}
	free(m->b);
	m->b = nb;
	m->mask = nc - 1;
}

struct rcoll {
	pthread_rwlock_t lock;
	struct map m;
};

struct rdb {
	pthread_rwlock_t lock;
	struct map colls;
};

static void rw_init(pthread_rwlock_t *l)
{
	pthread_rwlockattr_t a;

	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(
	    &a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(l, &a);
	pthread_rwlockattr_destroy(&a);
}

static void *rwl_open(const struct bench_open_cfg *cfg, char *err,
                      size_t errlen)
{
	struct rdb *db = calloc(1, sizeof(*db));

	(void)cfg;
	if (db == NULL || map_init(&db->colls, 16)) {
		bench_errf(err, errlen, "out of memory");
		free(db);
		return NULL;
	}
	rw_init(&db->lock);
	return db;
}

static struct rcoll *rcoll_find(struct rdb *db, const char *c, size_t cl,
                                int create)
{
	uint64_t h = bench_hash64(c, cl);
	struct ent **pp, *e;
	struct rcoll *co = NULL;

	pthread_rwlock_rdlock(&db->lock);
	e = *map_slot(&db->colls, h, c, cl);
	pthread_rwlock_unlock(&db->lock);
	if (e || !create)
		return e ? e->ptr : NULL;
	pthread_rwlock_wrlock(&db->lock);
	pp = map_slot(&db->colls, h, c, cl);
	if (*pp == NULL) {
		e = calloc(1, sizeof(*e) + cl);
		co = calloc(1, sizeof(*co));
		if (e == NULL || co == NULL || map_init(&co->m, 16))
			abort();
		rw_init(&co->lock);
		e->hash = h;
		e->klen = (uint32_t)cl;
		memcpy(e->data, c, cl);
		e->ptr = co;
		*pp = e;
		if (++db->colls.n > db->colls.mask)
			map_grow(&db->colls);
	}
	co = (*map_slot(&db->colls, h, c, cl))->ptr;
	pthread_rwlock_unlock(&db->lock);
	return co;
}

static int rwl_get(void *d, void *t, const struct bkey *k, void *buf,
                   size_t cap, size_t *len)
{
	struct rcoll *co = rcoll_find(d, k->full, k->coll_len, 0);
	const char *m = bkey_member(k);
	size_t ml = bkey_member_len(k);
	uint64_t h = bench_hash64(m, ml);
	struct ent *e;

	(void)t;
	if (co == NULL)
		return BENCH_NOTFOUND;
	pthread_rwlock_rdlock(&co->lock);
	e = *map_slot(&co->m, h, m, ml);
	if (e) {
		*len = e->vlen;
		memcpy(buf, e->data + e->klen, e->vlen < cap ? e->vlen : cap);
	}
	pthread_rwlock_unlock(&co->lock);
	return e ? 0 : BENCH_NOTFOUND;
}

static int rwl_put(void *d, void *t, const struct bkey *k, const void *v,
                   size_t vl)
{
	struct rcoll *co = rcoll_find(d, k->full, k->coll_len, 1);
	const char *m = bkey_member(k);
	size_t ml = bkey_member_len(k);
	uint64_t h = bench_hash64(m, ml);
	struct ent *ne = malloc(sizeof(*ne) + ml + vl), **pp, *old;

	(void)t;
	if (ne == NULL)
		return -1;
	ne->hash = h;
	ne->klen = (uint32_t)ml;
	ne->vlen = (uint32_t)vl;
	ne->ptr = NULL;
	memcpy(ne->data, m, ml);
	memcpy(ne->data + ml, v, vl);
	pthread_rwlock_wrlock(&co->lock);
	pp = map_slot(&co->m, h, m, ml);
	old = *pp;
	ne->next = old ? old->next : NULL;
	*pp = ne;
	if (old == NULL && ++co->m.n > co->m.mask)
		map_grow(&co->m);
	pthread_rwlock_unlock(&co->lock);
	free(old); /* no reader can hold it: they hold the read lock */
	return 0;
}

static int rwl_del(void *d, void *t, const struct bkey *k)
{
	struct rcoll *co = rcoll_find(d, k->full, k->coll_len, 0);
	const char *m = bkey_member(k);
	size_t ml = bkey_member_len(k);
	uint64_t h = bench_hash64(m, ml);
	struct ent **pp, *old;

	(void)t;
	if (co == NULL)
		return BENCH_NOTFOUND;
	pthread_rwlock_wrlock(&co->lock);
	pp = map_slot(&co->m, h, m, ml);
	old = *pp;
	if (old) {
		*pp = old->next;
		co->m.n--;
	}
	pthread_rwlock_unlock(&co->lock);
	free(old);
	return old ? 0 : BENCH_NOTFOUND;
}

static int rwl_scan(void *d, void *t, const char *c, size_t cl, uint64_t *n,
                    uint64_t *bytes)
{
	struct rcoll *co = rcoll_find(d, c, cl, 0);
	uint64_t cnt = 0, by = 0;

	(void)t;
	if (co == NULL)
		return 0;
	pthread_rwlock_rdlock(&co->lock);
	for (size_t i = 0; i <= co->m.mask; i++)
		for (struct ent *e = co->m.b[i]; e; e = e->next) {
			cnt++;
			by += e->vlen + (unsigned char)e->data[e->klen];
		}
	pthread_rwlock_unlock(&co->lock);
	*n = cnt;
	*bytes = by;
	return 0;
}

static void map_free(struct map *m, int colls)
{
	for (size_t i = 0; i <= m->mask; i++) {
		struct ent *e = m->b[i], *nx;
		for (; e; e = nx) {
			nx = e->next;
			if (colls) {
				struct rcoll *co = e->ptr;
				map_free(&co->m, 0);
				pthread_rwlock_destroy(&co->lock);
				free(co);
			}
			free(e);
		}
	}
	free(m->b);
}

static void rwl_close(void *d)
{
	struct rdb *db = d;

	map_free(&db->colls, 1);
	pthread_rwlock_destroy(&db->lock);
	free(db);
}

const struct bench_engine bench_engine_rwlock = {
	.name = "rwlock",
	.what = "hash maps behind pthread_rwlock_t per collection: the design "
	        "of the original Go library",
	.open = rwl_open,
	.close = rwl_close,
	.get = rwl_get,
	.put = rwl_put,
	.del = rwl_del,
	.scan = rwl_scan,
};
