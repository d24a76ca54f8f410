/*
 * lfht: liburcu's own lock-free, resizable hash table (cds_lfht), two levels
 * like dskvs (a table of collections, a table of members per collection).
 * Writers need no lock at all (cds_lfht_add_replace is lock-free), readers
 * run inside an RCU read-side section, replaced nodes go to call_rcu.
 *
 * Flavour: urcu-memb with lazy per-thread registration (the cheapest read
 * lock liburcu offers to a library that cannot ask its callers to register).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <urcu/urcu-memb.h>
#include <urcu/rculfhash.h>

#include "engine.h"

struct lnode {
	struct cds_lfht_node node;
	struct rcu_head rcu;
	uint32_t klen, vlen;
	char data[]; /* key, then value */
};

struct lcoll {
	struct cds_lfht_node node;
	struct cds_lfht *ht;
	uint32_t klen;
	char name[];
};

struct ldb {
	struct cds_lfht *colls;
	pthread_mutex_t create_mu;
};

struct lkey {
	const char *k;
	size_t kl;
};

static __thread int tl_registered;

static inline void ensure_registered(void)
{
	if (__builtin_expect(!tl_registered, 0)) {
		urcu_memb_register_thread();
		tl_registered = 1;
	}
}

static void lfht_thread_end(void *db, void *tctx)
{
	(void)db;
	(void)tctx;
	if (tl_registered) {
		urcu_memb_unregister_thread();
		tl_registered = 0;
	}
}

static int match_node(struct cds_lfht_node *n, const void *key)
{
	const struct lnode *x = caa_container_of(n, struct lnode, node);
	const struct lkey *k = key;

	return x->klen == k->kl && memcmp(x->data, k->k, k->kl) == 0;
}

static int match_coll(struct cds_lfht_node *n, const void *key)
{
	const struct lcoll *x = caa_container_of(n, struct lcoll, node);
	const struct lkey *k = key;

	return x->klen == k->kl && memcmp(x->name, k->k, k->kl) == 0;
}

static void free_node_rcu(struct rcu_head *h)
{
	free(caa_container_of(h, struct lnode, rcu));
}

static void *lfht_open(const struct bench_open_cfg *cfg, char *err,
                       size_t errlen)
{
	struct ldb *db = calloc(1, sizeof(*db));

	(void)cfg;
	ensure_registered();
	if (db)
		db->colls = cds_lfht_new_flavor(
		    16, 16, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
		    &urcu_memb_flavor, NULL);
	if (db == NULL || db->colls == NULL) {
		bench_errf(err, errlen, "cds_lfht_new failed");
		free(db);
		return NULL;
	}
	pthread_mutex_init(&db->create_mu, NULL);
	return db;
}

/* Call inside a read-side section. */
static struct lcoll *lcoll_find(struct ldb *db, const char *c, size_t cl,
                                uint64_t h)
{
	struct lkey k = { c, cl };
	struct cds_lfht_iter it;
	struct cds_lfht_node *n;

	cds_lfht_lookup(db->colls, h, match_coll, &k, &it);
	n = cds_lfht_iter_get_node(&it);
	return n ? caa_container_of(n, struct lcoll, node) : NULL;
}

/* Collections are created rarely: under a mutex, outside any read-side
 * section (cds_lfht_new must not run inside one). */
static struct lcoll *lcoll_create(struct ldb *db, const char *c, size_t cl,
                                  uint64_t h)
{
	struct lcoll *co;

	pthread_mutex_lock(&db->create_mu);
	urcu_memb_read_lock();
	co = lcoll_find(db, c, cl, h);
	urcu_memb_read_unlock();
	if (co == NULL) {
		co = calloc(1, sizeof(*co) + cl + 1);
		if (co == NULL)
			abort();
		co->ht = cds_lfht_new_flavor(
		    64, 64, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
		    &urcu_memb_flavor, NULL);
		if (co->ht == NULL)
			abort();
		co->klen = (uint32_t)cl;
		memcpy(co->name, c, cl);
		cds_lfht_node_init(&co->node);
		urcu_memb_read_lock();
		cds_lfht_add(db->colls, h, &co->node);
		urcu_memb_read_unlock();
	}
	pthread_mutex_unlock(&db->create_mu);
	return co;
}

static int lfht_get(void *d, void *t, const struct bkey *k, void *buf,
                    size_t cap, size_t *len)
{
	struct ldb *db = d;
	uint64_t ch = bench_hash64(k->full, k->coll_len);
	const char *m = bkey_member(k);
	size_t ml = bkey_member_len(k);
	struct lkey mk = { m, ml };
	uint64_t mh = bench_hash64(m, ml);
	struct cds_lfht_iter it;
	struct cds_lfht_node *n;
	struct lcoll *co;
	int rc = BENCH_NOTFOUND;

	(void)t;
	ensure_registered();
	urcu_memb_read_lock();
	co = lcoll_find(db, k->full, k->coll_len, ch);
	if (co) {
		cds_lfht_lookup(co->ht, mh, match_node, &mk, &it);
		n = cds_lfht_iter_get_node(&it);
		if (n) {
			struct lnode *x =
			    caa_container_of(n, struct lnode, node);
			*len = x->vlen;
			memcpy(buf, x->data + x->klen,
			       x->vlen < cap ? x->vlen : cap);
			rc = 0;
		}
	}
	urcu_memb_read_unlock();
	return rc;
}

static int lfht_put(void *d, void *t, const struct bkey *k, const void *v,
                    size_t vl)
{
	struct ldb *db = d;
	uint64_t ch = bench_hash64(k->full, k->coll_len);
	const char *m = bkey_member(k);
	size_t ml = bkey_member_len(k);
	struct lkey mk = { m, ml };
	uint64_t mh = bench_hash64(m, ml);
	struct lnode *x = malloc(sizeof(*x) + ml + vl);
	struct cds_lfht_node *old;
	struct lcoll *co;

	(void)t;
	if (x == NULL)
		return -1;
	x->klen = (uint32_t)ml;
	x->vlen = (uint32_t)vl;
	memcpy(x->data, m, ml);
	memcpy(x->data + ml, v, vl);
	cds_lfht_node_init(&x->node);
	ensure_registered();
	urcu_memb_read_lock();
	co = lcoll_find(db, k->full, k->coll_len, ch);
	if (co == NULL) {
		urcu_memb_read_unlock();
		lcoll_create(db, k->full, k->coll_len, ch);
		urcu_memb_read_lock();
		co = lcoll_find(db, k->full, k->coll_len, ch);
	}
	old = cds_lfht_add_replace(co->ht, mh, match_node, &mk, &x->node);
	urcu_memb_read_unlock();
	if (old)
		urcu_memb_call_rcu(
		    &caa_container_of(old, struct lnode, node)->rcu,
		    free_node_rcu);
	return 0;
}

static int lfht_del(void *d, void *t, const struct bkey *k)
{
	struct ldb *db = d;
	uint64_t ch = bench_hash64(k->full, k->coll_len);
	const char *m = bkey_member(k);
	size_t ml = bkey_member_len(k);
	struct lkey mk = { m, ml };
	uint64_t mh = bench_hash64(m, ml);
	struct cds_lfht_iter it;
	struct cds_lfht_node *n;
	struct lcoll *co;
	int rc = BENCH_NOTFOUND;

	(void)t;
	ensure_registered();
	urcu_memb_read_lock();
	co = lcoll_find(db, k->full, k->coll_len, ch);
	if (co) {
		cds_lfht_lookup(co->ht, mh, match_node, &mk, &it);
		n = cds_lfht_iter_get_node(&it);
		if (n && cds_lfht_del(co->ht, n) == 0) {
			urcu_memb_call_rcu(
			    &caa_container_of(n, struct lnode, node)->rcu,
			    free_node_rcu);
			rc = 0;
		}
	}
	urcu_memb_read_unlock();
	return rc;
}

static int lfht_scan(void *d, void *t, const char *c, size_t cl, uint64_t *n,
                     uint64_t *bytes)
{
	struct ldb *db = d;
	uint64_t ch = bench_hash64(c, cl);
	struct cds_lfht_iter it;
	struct lnode *x;
	struct lcoll *co;
	uint64_t cnt = 0, by = 0;

	(void)t;
	ensure_registered();
	urcu_memb_read_lock();
	co = lcoll_find(db, c, cl, ch);
	if (co) {
		cds_lfht_for_each_entry(co->ht, &it, x, node)
		{
			cnt++;
			by += x->vlen + (unsigned char)x->data[x->klen];
		}
	}
	urcu_memb_read_unlock();
	*n = cnt;
	*bytes = by;
	return 0;
}

static void lfht_close(void *d)
{
	struct ldb *db = d;
	struct cds_lfht_iter it, mit;
	struct lcoll *co;
	struct lnode *x;
	struct lcoll **cs = NULL;
	size_t ncs = 0;

	ensure_registered();
	urcu_memb_read_lock();
	cds_lfht_for_each_entry(db->colls, &it, co, node)
	{
		cds_lfht_for_each_entry(co->ht, &mit, x, node)
		{
			if (cds_lfht_del(co->ht, &x->node) == 0)
				urcu_memb_call_rcu(&x->rcu, free_node_rcu);
		}
		cds_lfht_del(db->colls, &co->node);
		cs = realloc(cs, (ncs + 1) * sizeof(*cs));
		cs[ncs++] = co;
	}
	urcu_memb_read_unlock();
	urcu_memb_barrier(); /* every call_rcu callback has run */
	for (size_t i = 0; i < ncs; i++) {
		cds_lfht_destroy(cs[i]->ht, NULL);
		free(cs[i]);
	}
	free(cs);
	cds_lfht_destroy(db->colls, NULL);
	free(db);
}

const struct bench_engine bench_engine_lfht = {
	.name = "lfht",
	.what = "liburcu's lock-free resizable hash table (cds_lfht), two "
	        "levels, urcu-memb",
	.open = lfht_open,
	.close = lfht_close,
	.thread_end = lfht_thread_end,
	.get = lfht_get,
	.put = lfht_put,
	.del = lfht_del,
	.scan = lfht_scan,
};
