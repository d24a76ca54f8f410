/*
 * The public calls on data: get, get_all, put, delete, delete_all, sync,
 * durability tickets, compaction requests. Each write composes the layers
 * below ("acquire, set, enqueue, release"), and this is where the one rule
 * that couples them is kept:
 *
 *  - A write queues its log record while it holds its collection's lock,
 *    so the log order of a key equals its memory order (DESIGN rule 5). A
 *    DeleteAll marks the collection dead and queues its record before the
 *    collection leaves the table (dskvs__coll_kill_locked), so a writer
 *    re-creating it is ordered after the DeleteAll.
 *  - A replaced or removed block's table reference is retired through RCU
 *    after the lock is released; nothing here waits for a grace period.
 *  - Readers: one read-side section around lookup and copy; no lock.
 */
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- sticky error and argument checks ------------------------------------ */

static inline int refuse_if_failed(dskvs *s)
{
	return dskvs__queue_refuse(&s->q, "store refuses writes after an "
	                                  "earlier error");
}

static int key_error(int rc, const char *key)
{
	if (rc == DSKVS_ETOOBIG)
		return dskvs__fail(rc,
		                   "a name in the key is longer than %u "
		                   "bytes",
		                   DSKVS_NAME_MAX);
	return dskvs__fail(rc, "bad key \"%.64s\"", key ? key : "(null)");
}

static int after_write(dskvs *s, uint64_t seq, uint64_t *seq_out)
{
	if (seq_out)
		*seq_out = seq;
	if (s->opts.sync_mode == DSKVS_SYNC_ALWAYS)
		return dskvs__queue_wait_seq(&s->q, seq, -1);
	return DSKVS_OK;
}

/* ---- reads --------------------------------------------------------------- */

/* Find a member's block. Call inside a read-side section. */
static inline int find(dskvs *s, const char *key, struct dskvs__blk **out)
{
	struct dskvs__key k;
	int rc = dskvs__key_parse(key, 1, &k);
	if (DSKVS_UNLIKELY(rc != DSKVS_OK))
		return key_error(rc, key);
	struct dskvs__coll *c = dskvs__coll_lookup(&s->t, k.coll, k.clen);
	struct dskvs__blk *b =
	    c ? dskvs__member_get(c, k.member, k.mlen) : NULL;
	if (b == NULL) {
		dskvs__clear_detail(); /* no stale detail for a miss */
		return DSKVS_NOTFOUND;
	}
	*out = b;
	return DSKVS_OK;
}

int dskvs_get(dskvs *s, const char *key, void *buf, size_t cap, size_t *len)
{
	struct dskvs__blk *b = NULL;
	int rc;

	if (DSKVS_UNLIKELY(s == NULL || len == NULL ||
	                   (buf == NULL && cap > 0)))
		return dskvs__fail(DSKVS_EINVAL, "dskvs_get: NULL argument");
	dskvs__rcu_read_lock();
	rc = find(s, key, &b);
	if (DSKVS_LIKELY(rc == DSKVS_OK)) {
		size_t n = b->vlen < cap ? b->vlen : cap;
		*len = b->vlen;
		if (n)
			memcpy(buf, dskvs__blk_val(b), n);
		if (b->vlen > cap)
			rc = DSKVS_ERANGE;
	}
	dskvs__rcu_read_unlock();
	return rc;
}

int dskvs_get_alloc(dskvs *s, const char *key, void **val, size_t *len)
{
	struct dskvs__blk *b = NULL;
	int rc;

	if (val != NULL)
		*val = NULL;
	if (s == NULL || val == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_get_alloc: NULL argument");
	dskvs__rcu_read_lock();
	rc = find(s, key, &b);
	if (rc == DSKVS_OK) {
		void *p = malloc(b->vlen ? b->vlen : 1);
		if (p == NULL) {
			rc = dskvs__fail(DSKVS_ENOMEM, "copy of %u bytes",
			                 b->vlen);
		} else {
			memcpy(p, dskvs__blk_val(b), b->vlen);
			*val = p;
			if (len)
				*len = b->vlen;
		}
	}
	dskvs__rcu_read_unlock();
	return rc;
}

int dskvs_get_with(dskvs *s, const char *key, dskvs_read_fn fn, void *arg)
{
	struct dskvs__blk *b = NULL;
	int rc;

	if (s == NULL || fn == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_get_with: NULL argument");
	dskvs__rcu_read_lock();
	rc = find(s, key, &b);
	if (rc == DSKVS_OK)
		rc = fn(dskvs__blk_val(b), b->vlen, arg);
	dskvs__rcu_read_unlock();
	return rc;
}
int dskvs_get_all(dskvs *s, const char *collection, dskvs_visit_fn fn,
                  void *arg)
{
	struct dskvs__key k;
	struct dskvs__coll *c;
	struct dskvs__blk **v;
	size_t n;
	int rc;

	if (s == NULL || fn == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_get_all: NULL argument");
	rc = dskvs__key_parse(collection, 0, &k);
	if (rc != DSKVS_OK)
		return key_error(rc, collection);
	dskvs__rcu_read_lock();
	rc = dskvs__coll_acquire(&s->t, &k, false, &c);
	if (rc != DSKVS_OK) {
		dskvs__rcu_read_unlock();
		return rc == DSKVS_NOTFOUND ? DSKVS_OK : rc;
	}
	rc = dskvs__coll_gather_locked(c, &v, &n, false);
	dskvs__coll_release(c);
	if (rc == DSKVS_OK) {
		for (size_t i = 0; i < n && rc == 0; i++)
			rc = fn(dskvs__blk_member(v[i]), v[i]->mlen,
			        dskvs__blk_val(v[i]), v[i]->vlen, arg);
		free(v);
	} else {
		rc = dskvs__fail(rc, "dskvs_get_all: no memory for the walk");
	}
	dskvs__rcu_read_unlock();
	return rc;
}

int dskvs_list_collections(dskvs *s, dskvs_collection_fn fn, void *arg)
{
	struct dskvs__coll **v;
	size_t n;
	int rc;

	if (s == NULL || fn == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_list_collections: NULL argument");
	dskvs__rcu_read_lock();
	rc = dskvs__colls_gather(&s->t, &v, &n);
	if (rc == DSKVS_OK) {
		for (size_t i = 0; i < n && rc == 0; i++) {
			uint64_t cnt =
			    __atomic_load_n(&v[i]->count, __ATOMIC_RELAXED);
			if (cnt == 0)
				continue;
			rc =
			    fn(v[i]->name, v[i]->nlen, cnt,
			       __atomic_load_n(&v[i]->vbytes, __ATOMIC_RELAXED),
			       arg);
		}
		free(v);
	}
	dskvs__rcu_read_unlock();
	return rc;
}

int dskvs_put_seq(dskvs *s, const char *key, const void *val, size_t len,
                  void **old, size_t *old_len, uint64_t *seq_out)
{
	struct dskvs__key k;
	struct dskvs__coll *c;
	struct dskvs__blk *b, *prev;
	void *copy = NULL;
	uint64_t seq;
	int rc;

	if (old)
		*old = NULL;
	if (old_len)
		*old_len = 0;
	if (s == NULL || (val == NULL && len > 0))
		return dskvs__fail(DSKVS_EINVAL, "dskvs_put: NULL argument");
	rc = dskvs__key_parse(key, 1, &k);
	if (rc != DSKVS_OK)
		return key_error(rc, key);
	if (len > DSKVS_VALUE_MAX)
		return dskvs__fail(DSKVS_ETOOBIG,
		                   "value of %zu bytes is over the %u-byte "
		                   "limit",
		                   len, DSKVS_VALUE_MAX);
	if ((rc = refuse_if_failed(s)) != DSKVS_OK)
		return rc;
	/* Table reference + queue reference. */
	b = dskvs__blk_new(k.coll, k.clen, k.member, k.mlen, val, len, 2);
	if (b == NULL)
		return dskvs__fail(DSKVS_ENOMEM, "value block of %zu bytes",
		                   len);

	dskvs__rcu_read_lock();
	rc = dskvs__coll_acquire(&s->t, &k, true, &c);
	if (rc != DSKVS_OK)
		goto fail_unlocked;
	if (old) {
		/* Allocate the copy before changing anything, so ENOMEM
		 * leaves the store as it was. The old value cannot change
		 * while we hold the lock. */
		prev = dskvs__member_get(c, k.member, k.mlen);
		if (prev) {
			copy = malloc(prev->vlen ? prev->vlen : 1);
			if (copy == NULL) {
				rc = DSKVS_ENOMEM;
				goto fail_locked;
			}
		}
	}
	if ((rc = dskvs__member_set_locked(c, b, &prev)) != DSKVS_OK)
		goto fail_locked;
	/* Queued before the lock is released: log order is memory order. */
	seq = dskvs__queue_enqueue(&s->q, b, DSKVS_OP_PUT);
	dskvs__coll_release(c);
	if (prev) {
		if (copy) {
			memcpy(copy, dskvs__blk_val(prev), prev->vlen);
			*old = copy;
			if (old_len)
				*old_len = prev->vlen;
		}
		dskvs__blk_retire(prev);
	}
	dskvs__rcu_read_unlock();
	return after_write(s, seq, seq_out);

fail_locked:
	dskvs__coll_release(c);
fail_unlocked:
	dskvs__rcu_read_unlock();
	free(copy);
	free(b);
	return dskvs__fail(rc, "dskvs_put: %s", dskvs_strerror(rc));
}

int dskvs_put(dskvs *s, const char *key, const void *val, size_t len,
              void **old, size_t *old_len)
{
	return dskvs_put_seq(s, key, val, len, old, old_len, NULL);
}

int dskvs_delete_seq(dskvs *s, const char *key, uint64_t *seq_out)
{
	struct dskvs__key k;
	struct dskvs__coll *c;
	struct dskvs__blk *prev;
	uint64_t seq;
	bool dropped = false;
	int rc;

	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL, "dskvs_delete: NULL store");
	rc = dskvs__key_parse(key, 1, &k);
	if (rc != DSKVS_OK)
		return key_error(rc, key);
	if ((rc = refuse_if_failed(s)) != DSKVS_OK)
		return rc;
	dskvs__rcu_read_lock();
	rc = dskvs__coll_acquire(&s->t, &k, false, &c);
	if (rc != DSKVS_OK) {
		dskvs__rcu_read_unlock();
		dskvs__clear_detail();
		return rc;
	}
	prev = dskvs__member_remove_locked(c, k.member, k.mlen);
	if (prev == NULL) {
		dskvs__coll_release(c);
		dskvs__rcu_read_unlock();
		dskvs__clear_detail();
		return DSKVS_NOTFOUND;
	}
	/* The record carries the removed block's key: one more reference,
	 * dropped by the janitor. */
	__atomic_add_fetch(&prev->refs, 1, __ATOMIC_RELAXED);
	seq = dskvs__queue_enqueue(&s->q, prev, DSKVS_OP_DEL);
	if (c->count == 0) {
		dskvs__coll_kill_locked(&s->t, c);
		dropped = true;
	}
	dskvs__coll_release(c);
	dskvs__blk_retire(prev);
	if (dropped)
		dskvs__coll_retire(c);
	dskvs__rcu_read_unlock();
	return after_write(s, seq, seq_out);
}

int dskvs_delete(dskvs *s, const char *key)
{
	return dskvs_delete_seq(s, key, NULL);
}

int dskvs_delete_all_seq(dskvs *s, const char *collection, uint64_t *seq_out)
{
	struct dskvs__key k;
	struct dskvs__coll *c;
	struct dskvs__blk *rec;
	uint64_t seq;
	int rc;

	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_delete_all: NULL store");
	rc = dskvs__key_parse(collection, 0, &k);
	if (rc != DSKVS_OK)
		return key_error(rc, collection);
	if ((rc = refuse_if_failed(s)) != DSKVS_OK)
		return rc;
	/* The record, allocated first so that ENOMEM changes nothing. */
	rec = dskvs__blk_new(k.coll, k.clen, NULL, 0, NULL, 0, 1);
	if (rec == NULL)
		return dskvs__fail(DSKVS_ENOMEM, "dskvs_delete_all record");
	dskvs__rcu_read_lock();
	rc = dskvs__coll_acquire(&s->t, &k, false, &c);
	if (rc != DSKVS_OK) {
		dskvs__rcu_read_unlock();
		free(rec);
		dskvs__clear_detail();
		return rc;
	}
	if (c->count == 0) {
		/* Only possible after a failed first put: no member, so
		 * the collection does not exist for the caller. */
		dskvs__coll_kill_locked(&s->t, c);
		dskvs__coll_release(c);
		dskvs__coll_retire(c);
		dskvs__rcu_read_unlock();
		free(rec);
		dskvs__clear_detail();
		return DSKVS_NOTFOUND;
	}
	/* Dead first, record queued, then out of the table: a writer that
	 * re-creates the collection finds it gone only after the DeleteAll's
	 * record is in the queue, so its own record is ordered after it. */
	seq = dskvs__queue_enqueue(&s->q, rec, DSKVS_OP_DELALL);
	dskvs__coll_kill_locked(&s->t, c);
	dskvs__coll_release(c);
	/* Readers inside a read-side section may still walk the members;
	 * the collection and its blocks go after a grace period. */
	dskvs__coll_retire(c);
	dskvs__rcu_read_unlock();
	return after_write(s, seq, seq_out);
}

int dskvs_delete_all(dskvs *s, const char *collection)
{
	return dskvs_delete_all_seq(s, collection, NULL);
}

/* ---- public calls
 * ------------------------------------------------------------ */

int dskvs_sync(dskvs *s)
{
	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL, "dskvs_sync: NULL store");
	int err = dskvs__queue_refuse(&s->q, "not durable");
	if (err)
		return err;
	return dskvs__queue_wait_seq(&s->q, dskvs__queue_committed_seq(&s->q),
	                             -1);
}

uint64_t dskvs_durable_seq(dskvs *s)
{
	if (s == NULL)
		return 0;
	return s->q.seq_base + __atomic_load_n(&s->q.durable, __ATOMIC_ACQUIRE);
}

int dskvs_wait_durable(dskvs *s, uint64_t seq, int timeout_ms)
{
	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_wait_durable: NULL store");
	if (seq > dskvs__queue_committed_seq(&s->q))
		return dskvs__fail(DSKVS_EINVAL,
		                   "sequence %llu was never handed out",
		                   (unsigned long long)seq);
	return dskvs__queue_wait_seq(&s->q, seq, timeout_ms);
}

int dskvs_durable_fd(dskvs *s)
{
	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_durable_fd: NULL store");
	return dskvs__queue_fd(&s->q);
}

int dskvs_compact(dskvs *s)
{
	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL, "dskvs_compact: NULL store");
	return dskvs__janitor_compact(&s->j, 1);
}

int dskvs_rewrite(dskvs *s)
{
	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL, "dskvs_rewrite: NULL store");
	return dskvs__janitor_compact(&s->j, 2);
}
