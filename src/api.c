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
 *  - A put's block gets its sequence number (the value's version, which
 *    dskvs_get_seq reads lock-free) before it is published: the put
 *    reserves its queue slot, sets b->seq, publishes, then commits the
 *    slot (a NOP if publishing failed). The conditional puts and
 *    dskvs_update decide and write under the collection's lock, so two
 *    writers of one member can never both win.
 *
 * Every public call that takes a key comes in two forms: the string form
 * ("coll/member") parses it, the _bin form checks the parts given apart
 * with their lengths; both then call the same *_k function on a parsed
 * struct dskvs__key.
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

/* ---- update callbacks ------------------------------------------------------
 *
 * While a dskvs_update callback runs, its thread holds a collection's lock
 * and is inside a read-side section: a write, sync, compaction or close of
 * the same store from there would deadlock (or free the store under the
 * caller). Each running callback pushes a frame on a thread-local stack;
 * those entry points refuse with DSKVS_EINVAL when the calling thread is
 * inside a callback on that store. The stack is written and read only by
 * its own thread; a frame lives on the stack of dskvs_update.
 *
 * dskvs_get_all gathers under the collection's lock: from inside a
 * callback it walks the callback's own collection without taking the lock
 * its thread already holds, and refuses any other collection, of this
 * store or another (waiting for that lock while holding one would deadlock
 * against a callback doing the same the other way round).
 */
struct upd_frame {
	const dskvs *s;
	const struct dskvs__coll *c; /* locked by this callback's update */
	struct upd_frame *up;
};

static __thread struct upd_frame *upd_top;

/* The frame of a callback running on s in this thread, or NULL. */
static const struct upd_frame *upd_frame_of(const dskvs *s)
{
	for (const struct upd_frame *f = upd_top; f; f = f->up)
		if (f->s == s)
			return f;
	return NULL;
}

int dskvs__refuse_in_update(const dskvs *s, const char *what)
{
	for (const struct upd_frame *f = upd_top; f; f = f->up)
		if (f->s == s)
			return dskvs__fail(
			    DSKVS_EINVAL,
			    "%s called from inside a dskvs_update "
			    "callback on the same store",
			    what);
	return DSKVS_OK;
}

/* ---- reads --------------------------------------------------------------- */

/* Find a member's block. Call inside a read-side section. */
static inline int find(dskvs *s, const struct dskvs__key *k,
                       struct dskvs__blk **out)
{
	struct dskvs__coll *c = dskvs__coll_lookup(&s->t, k->coll, k->clen);
	struct dskvs__blk *b =
	    c ? dskvs__member_get(c, k->member, k->mlen) : NULL;
	if (b == NULL) {
		dskvs__clear_detail(); /* no stale detail for a miss */
		return DSKVS_NOTFOUND;
	}
	*out = b;
	return DSKVS_OK;
}

/* Parse a string member or collection key, with the detail on failure. */
static inline int parse(const char *key, int want_member, struct dskvs__key *k)
{
	int rc = dskvs__key_parse(key, want_member, k);
	if (DSKVS_UNLIKELY(rc != DSKVS_OK))
		return key_error(rc, key);
	return DSKVS_OK;
}

/* The same for the parts of a _bin call. */
static int make(const char *coll, size_t clen, const void *member, size_t mlen,
                int want_member, struct dskvs__key *k)
{
	int rc = dskvs__key_make(coll, clen, member, mlen, want_member, k);
	if (rc == DSKVS_ETOOBIG)
		return dskvs__fail(rc, "a name is longer than %u bytes",
		                   DSKVS_NAME_MAX);
	if (rc != DSKVS_OK)
		return dskvs__fail(rc,
		                   "bad name: the collection must be 1 .. %u "
		                   "bytes without '/' or NUL%s",
		                   DSKVS_NAME_MAX,
		                   want_member ? ", the member non-NULL when "
		                                 "its length is not 0"
		                               : "");
	return DSKVS_OK;
}

static int get_k(dskvs *s, const struct dskvs__key *k, void *buf, size_t cap,
                 size_t *len, uint64_t *seq)
{
	struct dskvs__blk *b = NULL;
	int rc;

	dskvs__rcu_read_lock();
	rc = find(s, k, &b);
	if (DSKVS_LIKELY(rc == DSKVS_OK)) {
		size_t n = b->vlen < cap ? b->vlen : cap;
		*len = b->vlen;
		if (seq)
			*seq = b->seq; /* set before b was published */
		if (n)
			memcpy(buf, dskvs__blk_val(b), n);
		if (b->vlen > cap)
			rc = DSKVS_ERANGE;
	}
	dskvs__rcu_read_unlock();
	return rc;
}

static inline int get_args_ok(dskvs *s, void *buf, size_t cap, size_t *len,
                              uint64_t *seq)
{
	if (seq)
		*seq = 0;
	if (DSKVS_UNLIKELY(s == NULL || len == NULL ||
	                   (buf == NULL && cap > 0)))
		return dskvs__fail(DSKVS_EINVAL, "dskvs_get: NULL argument");
	return DSKVS_OK;
}

int dskvs_get(dskvs *s, const char *key, void *buf, size_t cap, size_t *len)
{
	return dskvs_get_seq(s, key, buf, cap, len, NULL);
}

int dskvs_get_seq(dskvs *s, const char *key, void *buf, size_t cap, size_t *len,
                  uint64_t *seq)
{
	struct dskvs__key k;
	int rc = get_args_ok(s, buf, cap, len, seq);
	if (DSKVS_LIKELY(rc == DSKVS_OK))
		rc = parse(key, 1, &k);
	return DSKVS_LIKELY(rc == DSKVS_OK) ? get_k(s, &k, buf, cap, len, seq)
	                                    : rc;
}

int dskvs_get_bin(dskvs *s, const char *coll, size_t clen, const void *member,
                  size_t mlen, void *buf, size_t cap, size_t *len,
                  uint64_t *seq)
{
	struct dskvs__key k;
	int rc = get_args_ok(s, buf, cap, len, seq);
	if (rc == DSKVS_OK)
		rc = make(coll, clen, member, mlen, 1, &k);
	return rc == DSKVS_OK ? get_k(s, &k, buf, cap, len, seq) : rc;
}

static int get_alloc_k(dskvs *s, const struct dskvs__key *k, void **val,
                       size_t *len)
{
	struct dskvs__blk *b = NULL;
	int rc;

	dskvs__rcu_read_lock();
	rc = find(s, k, &b);
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

int dskvs_get_alloc(dskvs *s, const char *key, void **val, size_t *len)
{
	struct dskvs__key k;
	int rc;

	if (val != NULL)
		*val = NULL;
	if (s == NULL || val == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_get_alloc: NULL argument");
	if ((rc = parse(key, 1, &k)) != DSKVS_OK)
		return rc;
	return get_alloc_k(s, &k, val, len);
}

int dskvs_get_alloc_bin(dskvs *s, const char *coll, size_t clen,
                        const void *member, size_t mlen, void **val,
                        size_t *len)
{
	struct dskvs__key k;
	int rc;

	if (val != NULL)
		*val = NULL;
	if (s == NULL || val == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_get_alloc_bin: NULL argument");
	if ((rc = make(coll, clen, member, mlen, 1, &k)) != DSKVS_OK)
		return rc;
	return get_alloc_k(s, &k, val, len);
}

static int get_with_k(dskvs *s, const struct dskvs__key *k, dskvs_read_fn fn,
                      void *arg)
{
	struct dskvs__blk *b = NULL;
	int rc;

	dskvs__rcu_read_lock();
	rc = find(s, k, &b);
	if (rc == DSKVS_OK)
		rc = fn(dskvs__blk_val(b), b->vlen, arg);
	dskvs__rcu_read_unlock();
	return rc;
}

int dskvs_get_with(dskvs *s, const char *key, dskvs_read_fn fn, void *arg)
{
	struct dskvs__key k;
	int rc;

	if (s == NULL || fn == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_get_with: NULL argument");
	if ((rc = parse(key, 1, &k)) != DSKVS_OK)
		return rc;
	return get_with_k(s, &k, fn, arg);
}

int dskvs_get_with_bin(dskvs *s, const char *coll, size_t clen,
                       const void *member, size_t mlen, dskvs_read_fn fn,
                       void *arg)
{
	struct dskvs__key k;
	int rc;

	if (s == NULL || fn == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_get_with_bin: NULL argument");
	if ((rc = make(coll, clen, member, mlen, 1, &k)) != DSKVS_OK)
		return rc;
	return get_with_k(s, &k, fn, arg);
}

static int get_all_k(dskvs *s, const struct dskvs__key *k, dskvs_visit_fn fn,
                     void *arg)
{
	struct dskvs__coll *c;
	struct dskvs__blk **v;
	size_t n;
	int rc;

	dskvs__rcu_read_lock();
	if (DSKVS_UNLIKELY(upd_top != NULL)) {
		/* Inside a dskvs_update callback, on this store or another
		 * (see "update callbacks"): only a collection whose lock this
		 * thread holds, walked without taking it again. */
		const struct upd_frame *f = upd_frame_of(s);
		c = f ? (struct dskvs__coll *)f->c : NULL;
		if (c == NULL || k->clen != c->name.len ||
		    memcmp(k->coll, c->name.s, k->clen) != 0) {
			dskvs__rcu_read_unlock();
			return dskvs__fail(
			    DSKVS_EINVAL,
			    "dskvs_get_all of another collection "
			    "from inside a dskvs_update callback");
		}
		rc = dskvs__coll_gather_locked(c, &v, &n, false);
		goto walk;
	}
	rc = dskvs__coll_acquire(&s->t, k, false, &c);
	if (rc != DSKVS_OK) {
		dskvs__rcu_read_unlock();
		return rc == DSKVS_NOTFOUND ? DSKVS_OK : rc;
	}
	rc = dskvs__coll_gather_locked(c, &v, &n, false);
	dskvs__coll_release(c);
walk:
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

int dskvs_get_all(dskvs *s, const char *collection, dskvs_visit_fn fn,
                  void *arg)
{
	struct dskvs__key k;
	int rc;

	if (s == NULL || fn == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_get_all: NULL argument");
	if ((rc = parse(collection, 0, &k)) != DSKVS_OK)
		return rc;
	return get_all_k(s, &k, fn, arg);
}

int dskvs_get_all_bin(dskvs *s, const char *coll, size_t clen,
                      dskvs_visit_fn fn, void *arg)
{
	struct dskvs__key k;
	int rc;

	if (s == NULL || fn == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_get_all_bin: NULL argument");
	if ((rc = make(coll, clen, NULL, 0, 0, &k)) != DSKVS_OK)
		return rc;
	return get_all_k(s, &k, fn, arg);
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
			    fn(v[i]->name.s, v[i]->name.len, cnt,
			       __atomic_load_n(&v[i]->vbytes, __ATOMIC_RELAXED),
			       arg);
		}
		free(v);
	}
	dskvs__rcu_read_unlock();
	return rc;
}

/* ---- writes ----------------------------------------------------------------
 */

/* When a put happens: always, only if absent, or only if the member's
 * version is `expect` (0: absent). */
enum put_mode { PUT_ALWAYS, PUT_IF_ABSENT, PUT_IF_SEQ };

/* Checks shared by every write before it touches the store. */
static inline int write_ok(dskvs *s, const char *what)
{
	int rc = dskvs__refuse_in_update(s, what);
	if (DSKVS_UNLIKELY(rc != DSKVS_OK))
		return rc;
	return refuse_if_failed(s);
}

static int value_ok(const void *val, size_t len, const char *what)
{
	if (val == NULL && len > 0)
		return dskvs__fail(DSKVS_EINVAL, "%s: NULL value of %zu bytes",
		                   what, len);
	if (len > DSKVS_VALUE_MAX)
		return dskvs__fail(DSKVS_ETOOBIG,
		                   "value of %zu bytes is over the %u-byte "
		                   "limit",
		                   len, DSKVS_VALUE_MAX);
	return DSKVS_OK;
}

/*
 * Publish b (one table reference and one queue reference made by the
 * caller) as the member's value and queue its record. Call with c's lock
 * held, inside a read-side section. The slot is reserved first so that
 * b->seq, the value's version, is set before any reader can see b; if
 * publishing fails (DSKVS_ENOMEM) the slot is committed as a NOP and
 * nothing changed. While the slot is reserved every other producer waits
 * (spinning, then yielding) in its commit, so only the table insert
 * happens in between: the members map is grown beforehand if the insert
 * could grow it (a grow of a 1M-member map takes 200 ms).
 * On success *prev is the replaced block (its table reference is the
 * caller's to retire after unlocking) and *seq the write's number.
 */
static int publish_locked(dskvs *s, struct dskvs__coll *c, struct dskvs__blk *b,
                          struct dskvs__blk **prev, uint64_t *seq)
{
	struct dskvs__slot sl;
	int rc;

	dskvs__member_room_locked(c);
	DSKVS_HOOK(DSKVS__HOOK_ENQUEUE,
	           (&(struct dskvs__rec_ref){ dskvs__tag(b, DSKVS_OP_PUT),
	                                      &c->name }));
	*seq = dskvs__queue_reserve(&s->q, &sl);
	b->seq = *seq;
	rc = dskvs__member_set_locked(c, b, prev);
	if (rc != DSKVS_OK) {
		dskvs__queue_commit(&s->q, &sl, NULL, NULL, DSKVS_OP_NOP);
		return rc;
	}
	/* Committed before the lock is released: log order is memory
	 * order. */
	dskvs__coll_note_record_locked(c, *seq);
	dskvs__queue_commit(&s->q, &sl, &c->name, b, DSKVS_OP_PUT);
	return DSKVS_OK;
}

/* An empty collection that a failed or refused first write created must
 * not stay in the table of collections. Call with c's lock held; the
 * caller releases, then retires c if this returned true. */
static bool drop_if_empty_locked(dskvs *s, struct dskvs__coll *c)
{
	if (c->count != 0)
		return false;
	dskvs__coll_kill_locked(&s->t, c);
	return true;
}

static int put_k(dskvs *s, const struct dskvs__key *k, const void *val,
                 size_t len, void **old, size_t *old_len, enum put_mode mode,
                 uint64_t expect, uint64_t *seq_out)
{
	struct dskvs__coll *c;
	struct dskvs__blk *b, *prev;
	void *copy = NULL;
	uint64_t seq = 0;
	bool dropped;
	int rc;

	if ((rc = value_ok(val, len, "dskvs_put")) != DSKVS_OK)
		return rc;
	if ((rc = write_ok(s, "dskvs_put")) != DSKVS_OK)
		return rc;
	/* Table reference + queue reference. */
	b = dskvs__blk_alloc(&s->t.pool, k->member, k->mlen, val, len, 2);
	if (b == NULL)
		return dskvs__fail(DSKVS_ENOMEM, "value block of %zu bytes",
		                   len);

	dskvs__rcu_read_lock();
	rc = dskvs__coll_acquire(&s->t, k, true, &c);
	if (rc != DSKVS_OK)
		goto fail_unlocked;
	/* The member cannot change while we hold the lock: what we decide
	 * on is what we replace. A plain put without the old value decides
	 * nothing: the set below finds what it replaces (one probe of the
	 * members map instead of two). */
	prev = mode == PUT_ALWAYS && old == NULL
	           ? NULL
	           : dskvs__member_get(c, k->member, k->mlen);
	if (mode == PUT_IF_ABSENT && prev != NULL) {
		seq = prev->seq;
		rc = DSKVS_EEXIST;
		goto refuse_locked;
	}
	if (mode == PUT_IF_SEQ && (prev ? prev->seq : 0) != expect) {
		seq = prev ? prev->seq : 0;
		rc = DSKVS_ECONFLICT;
		goto refuse_locked;
	}
	if (old && prev) {
		/* Allocate the copy before changing anything, so ENOMEM
		 * leaves the store as it was. */
		copy = malloc(prev->vlen ? prev->vlen : 1);
		if (copy == NULL) {
			rc = DSKVS_ENOMEM;
			goto fail_locked;
		}
	}
	if ((rc = publish_locked(s, c, b, &prev, &seq)) != DSKVS_OK)
		goto fail_locked;
	dskvs__coll_release(c);
	if (prev) {
		if (copy) {
			memcpy(copy, dskvs__blk_val(prev), prev->vlen);
			*old = copy;
			if (old_len)
				*old_len = prev->vlen;
		}
		dskvs__blk_retire(&s->t.pool, prev);
	}
	dskvs__rcu_read_unlock();
	return after_write(s, seq, seq_out);

refuse_locked:
	/* A refusal is an answer, not a failure: no detail. It may come
	 * from a collection this call just created (for PUT_IF_SEQ with a
	 * non-zero expect on a new collection). */
	dropped = drop_if_empty_locked(s, c);
	dskvs__coll_release(c);
	if (dropped)
		dskvs__coll_retire(c);
	dskvs__rcu_read_unlock();
	dskvs__blk_discard(b);
	if (seq_out)
		*seq_out = seq;
	dskvs__clear_detail();
	return rc;

fail_locked:
	dropped = drop_if_empty_locked(s, c);
	dskvs__coll_release(c);
	if (dropped)
		dskvs__coll_retire(c);
fail_unlocked:
	dskvs__rcu_read_unlock();
	free(copy);
	dskvs__blk_discard(b);
	return dskvs__fail(rc, "dskvs_put: %s", dskvs_strerror(rc));
}

static inline void put_clear_out(void **old, size_t *old_len)
{
	if (old)
		*old = NULL;
	if (old_len)
		*old_len = 0;
}

int dskvs_put_seq(dskvs *s, const char *key, const void *val, size_t len,
                  void **old, size_t *old_len, uint64_t *seq_out)
{
	struct dskvs__key k;
	int rc;

	put_clear_out(old, old_len);
	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL, "dskvs_put: NULL store");
	if ((rc = parse(key, 1, &k)) != DSKVS_OK)
		return rc;
	return put_k(s, &k, val, len, old, old_len, PUT_ALWAYS, 0, seq_out);
}

int dskvs_put(dskvs *s, const char *key, const void *val, size_t len,
              void **old, size_t *old_len)
{
	return dskvs_put_seq(s, key, val, len, old, old_len, NULL);
}

int dskvs_put_bin(dskvs *s, const char *coll, size_t clen, const void *member,
                  size_t mlen, const void *val, size_t len, void **old,
                  size_t *old_len, uint64_t *seq)
{
	struct dskvs__key k;
	int rc;

	put_clear_out(old, old_len);
	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL, "dskvs_put_bin: NULL store");
	if ((rc = make(coll, clen, member, mlen, 1, &k)) != DSKVS_OK)
		return rc;
	return put_k(s, &k, val, len, old, old_len, PUT_ALWAYS, 0, seq);
}

int dskvs_put_if_absent(dskvs *s, const char *key, const void *val, size_t len,
                        uint64_t *seq)
{
	struct dskvs__key k;
	int rc;

	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_put_if_absent: NULL store");
	if ((rc = parse(key, 1, &k)) != DSKVS_OK)
		return rc;
	return put_k(s, &k, val, len, NULL, NULL, PUT_IF_ABSENT, 0, seq);
}

int dskvs_put_if_absent_bin(dskvs *s, const char *coll, size_t clen,
                            const void *member, size_t mlen, const void *val,
                            size_t len, uint64_t *seq)
{
	struct dskvs__key k;
	int rc;

	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_put_if_absent_bin: NULL store");
	if ((rc = make(coll, clen, member, mlen, 1, &k)) != DSKVS_OK)
		return rc;
	return put_k(s, &k, val, len, NULL, NULL, PUT_IF_ABSENT, 0, seq);
}

int dskvs_put_if_seq(dskvs *s, const char *key, const void *val, size_t len,
                     uint64_t expect, uint64_t *seq)
{
	struct dskvs__key k;
	int rc;

	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_put_if_seq: NULL store");
	if ((rc = parse(key, 1, &k)) != DSKVS_OK)
		return rc;
	return put_k(s, &k, val, len, NULL, NULL, PUT_IF_SEQ, expect, seq);
}

int dskvs_put_if_seq_bin(dskvs *s, const char *coll, size_t clen,
                         const void *member, size_t mlen, const void *val,
                         size_t len, uint64_t expect, uint64_t *seq)
{
	struct dskvs__key k;
	int rc;

	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_put_if_seq_bin: NULL store");
	if ((rc = make(coll, clen, member, mlen, 1, &k)) != DSKVS_OK)
		return rc;
	return put_k(s, &k, val, len, NULL, NULL, PUT_IF_SEQ, expect, seq);
}

/* Remove the member whose block is prev from c and queue the delete.
 * Call with c's lock held, inside a read-side section. Returns the
 * record's number and sets *dropped when c became empty (and was
 * killed): the caller releases, retires prev's table reference and, if
 * dropped, c. */
static uint64_t remove_locked(dskvs *s, struct dskvs__coll *c,
                              const struct dskvs__key *k, bool *dropped)
{
	struct dskvs__blk *prev =
	    dskvs__member_remove_locked(c, k->member, k->mlen);
	/* The record carries the removed block's key: one more reference,
	 * dropped by the janitor. */
	__atomic_add_fetch(&prev->refs, 1, __ATOMIC_RELAXED);
	uint64_t seq =
	    dskvs__queue_enqueue(&s->q, &c->name, prev, DSKVS_OP_DEL);
	dskvs__coll_note_record_locked(c, seq);
	*dropped = drop_if_empty_locked(s, c);
	return seq;
}

static int delete_k(dskvs *s, const struct dskvs__key *k, uint64_t *seq_out)
{
	struct dskvs__coll *c;
	struct dskvs__blk *prev;
	uint64_t seq;
	bool dropped = false;
	int rc;

	if ((rc = write_ok(s, "dskvs_delete")) != DSKVS_OK)
		return rc;
	dskvs__rcu_read_lock();
	rc = dskvs__coll_acquire(&s->t, k, false, &c);
	if (rc != DSKVS_OK) {
		dskvs__rcu_read_unlock();
		dskvs__clear_detail();
		return rc;
	}
	prev = dskvs__member_get(c, k->member, k->mlen);
	if (prev == NULL) {
		dskvs__coll_release(c);
		dskvs__rcu_read_unlock();
		dskvs__clear_detail();
		return DSKVS_NOTFOUND;
	}
	seq = remove_locked(s, c, k, &dropped);
	dskvs__coll_release(c);
	dskvs__blk_retire(&s->t.pool, prev);
	if (dropped)
		dskvs__coll_retire(c);
	dskvs__rcu_read_unlock();
	return after_write(s, seq, seq_out);
}

int dskvs_delete_seq(dskvs *s, const char *key, uint64_t *seq_out)
{
	struct dskvs__key k;
	int rc;

	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL, "dskvs_delete: NULL store");
	if ((rc = parse(key, 1, &k)) != DSKVS_OK)
		return rc;
	return delete_k(s, &k, seq_out);
}

int dskvs_delete(dskvs *s, const char *key)
{
	return dskvs_delete_seq(s, key, NULL);
}

int dskvs_delete_bin(dskvs *s, const char *coll, size_t clen,
                     const void *member, size_t mlen, uint64_t *seq)
{
	struct dskvs__key k;
	int rc;

	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_delete_bin: NULL store");
	if ((rc = make(coll, clen, member, mlen, 1, &k)) != DSKVS_OK)
		return rc;
	return delete_k(s, &k, seq);
}

static int delete_all_k(dskvs *s, const struct dskvs__key *k, uint64_t *seq_out)
{
	struct dskvs__coll *c;
	struct dskvs__blk *rec;
	uint64_t seq;
	int rc;

	if ((rc = write_ok(s, "dskvs_delete_all")) != DSKVS_OK)
		return rc;
	/* The record, allocated first so that ENOMEM changes nothing. */
	rec = dskvs__blk_alloc(&s->t.pool, NULL, 0, NULL, 0, 1);
	if (rec == NULL)
		return dskvs__fail(DSKVS_ENOMEM, "dskvs_delete_all record");
	dskvs__rcu_read_lock();
	rc = dskvs__coll_acquire(&s->t, k, false, &c);
	if (rc != DSKVS_OK) {
		dskvs__rcu_read_unlock();
		dskvs__blk_unref(rec);
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
		dskvs__blk_unref(rec);
		dskvs__clear_detail();
		return DSKVS_NOTFOUND;
	}
	/* Dead first, record queued, then out of the table: a writer that
	 * re-creates the collection finds it gone only after the DeleteAll's
	 * record is in the queue, so its own record is ordered after it. */
	seq = dskvs__queue_enqueue(&s->q, &c->name, rec, DSKVS_OP_DELALL);
	dskvs__coll_note_record_locked(c, seq);
	dskvs__coll_kill_locked(&s->t, c);
	dskvs__coll_release(c);
	/* Readers inside a read-side section may still walk the members;
	 * the collection and its blocks go after a grace period. */
	dskvs__coll_retire(c);
	dskvs__rcu_read_unlock();
	return after_write(s, seq, seq_out);
}

int dskvs_delete_all_seq(dskvs *s, const char *collection, uint64_t *seq_out)
{
	struct dskvs__key k;
	int rc;

	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_delete_all: NULL store");
	if ((rc = parse(collection, 0, &k)) != DSKVS_OK)
		return rc;
	return delete_all_k(s, &k, seq_out);
}

int dskvs_delete_all(dskvs *s, const char *collection)
{
	return dskvs_delete_all_seq(s, collection, NULL);
}

int dskvs_delete_all_bin(dskvs *s, const char *coll, size_t clen, uint64_t *seq)
{
	struct dskvs__key k;
	int rc;

	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_delete_all_bin: NULL store");
	if ((rc = make(coll, clen, NULL, 0, 0, &k)) != DSKVS_OK)
		return rc;
	return delete_all_k(s, &k, seq);
}

/* ---- read-modify-write ----------------------------------------------------
 *
 * The callback runs with the collection's lock held (so no other writer of
 * the collection can change the member between the read and the write)
 * and inside a read-side section (so `old` stays valid). Readers never
 * wait for it; writers of that collection and memory reclamation do.
 */
static int update_k(dskvs *s, const struct dskvs__key *k, dskvs_update_fn fn,
                    void *arg, uint64_t *seq_out)
{
	struct dskvs__coll *c;
	struct dskvs__blk *cur, *b = NULL, *prev = NULL;
	struct upd_frame frame;
	const void *nv = NULL;
	size_t nl = 0;
	uint64_t seq = 0;
	bool dropped = false, wrote = false;
	int r, rc;

	if ((rc = write_ok(s, "dskvs_update")) != DSKVS_OK)
		return rc;
	dskvs__rcu_read_lock();
	rc = dskvs__coll_acquire(&s->t, k, true, &c);
	if (rc != DSKVS_OK) {
		dskvs__rcu_read_unlock();
		return dskvs__fail(rc, "dskvs_update: %s", dskvs_strerror(rc));
	}
	cur = dskvs__member_get(c, k->member, k->mlen);
	frame.s = s;
	frame.c = c;
	frame.up = upd_top;
	upd_top = &frame;
	r = fn(cur ? dskvs__blk_val(cur) : NULL, cur ? cur->vlen : 0,
	       cur != NULL, &nv, &nl, arg);
	upd_top = frame.up;

	if (r < 0) {
		rc = r; /* the callback's own code, as it gave it */
	} else if (r == DSKVS_UPDATE_KEEP) {
		rc = DSKVS_OK;
	} else if (r == DSKVS_UPDATE_SET) {
		rc = value_ok(nv, nl, "dskvs_update callback");
		if (rc == DSKVS_OK) {
			b = dskvs__blk_alloc(&s->t.pool, k->member, k->mlen, nv,
			                     nl, 2);
			rc = b ? publish_locked(s, c, b, &prev, &seq)
			       : DSKVS_ENOMEM;
			if (rc != DSKVS_OK) {
				dskvs__blk_discard(b);
				dskvs__fail(rc, "dskvs_update: %s",
				            dskvs_strerror(rc));
			}
			wrote = rc == DSKVS_OK;
		}
	} else if (r == DSKVS_UPDATE_DELETE) {
		rc = DSKVS_OK;
		if (cur) {
			/* cur is prev: remove_locked unpublishes it. */
			seq = remove_locked(s, c, k, &dropped);
			prev = cur;
			wrote = true;
		}
	} else {
		rc = dskvs__fail(DSKVS_EINVAL,
		                 "dskvs_update: the callback returned %d, "
		                 "which is neither DSKVS_UPDATE_KEEP, _SET, "
		                 "_DELETE nor a negative code",
		                 r);
	}
	if (!wrote)
		dropped = drop_if_empty_locked(s, c);
	dskvs__coll_release(c);
	if (prev)
		dskvs__blk_retire(&s->t.pool, prev);
	if (dropped)
		dskvs__coll_retire(c);
	dskvs__rcu_read_unlock();
	if (!wrote)
		return rc;
	return after_write(s, seq, seq_out);
}

int dskvs_update(dskvs *s, const char *key, dskvs_update_fn fn, void *arg,
                 uint64_t *seq)
{
	struct dskvs__key k;
	int rc;

	if (s == NULL || fn == NULL)
		return dskvs__fail(DSKVS_EINVAL, "dskvs_update: NULL argument");
	if ((rc = parse(key, 1, &k)) != DSKVS_OK)
		return rc;
	return update_k(s, &k, fn, arg, seq);
}

int dskvs_update_bin(dskvs *s, const char *coll, size_t clen,
                     const void *member, size_t mlen, dskvs_update_fn fn,
                     void *arg, uint64_t *seq)
{
	struct dskvs__key k;
	int rc;

	if (s == NULL || fn == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_update_bin: NULL argument");
	if ((rc = make(coll, clen, member, mlen, 1, &k)) != DSKVS_OK)
		return rc;
	return update_k(s, &k, fn, arg, seq);
}

/* ---- public calls
 * ------------------------------------------------------------ */

int dskvs_sync(dskvs *s)
{
	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL, "dskvs_sync: NULL store");
	int err = dskvs__refuse_in_update(s, "dskvs_sync");
	if (err)
		return err;
	err = dskvs__queue_refuse(&s->q, "not durable");
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
	int rc;
	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL,
		                   "dskvs_wait_durable: NULL store");
	if ((rc = dskvs__refuse_in_update(s, "dskvs_wait_durable")) != DSKVS_OK)
		return rc;
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
	int rc = dskvs__refuse_in_update(s, "dskvs_compact");
	if (rc)
		return rc;
	return dskvs__janitor_compact(&s->j, 1);
}

int dskvs_rewrite(dskvs *s)
{
	if (s == NULL)
		return dskvs__fail(DSKVS_EINVAL, "dskvs_rewrite: NULL store");
	int rc = dskvs__refuse_in_update(s, "dskvs_rewrite");
	if (rc)
		return rc;
	return dskvs__janitor_compact(&s->j, 2);
}

/* ---- batches of writes ------------------------------------------------------
 *
 * dskvs_write_batch: every op is checked and every block allocated before
 * the collection's lock is taken; under it the members map is grown for
 * all the puts (the only allocation that could fail later), n consecutive
 * queue slots are reserved at once (sequence numbers first .. first+n-1),
 * the ops are applied in order, and the n slots are committed at once. So:
 *  - log order is memory order (the lock is held across apply and commit);
 *  - the janitor sees the batch's records all together, dequeues them whole
 *    (queue.c) and writes them inside one of its batches, flagged as one
 *    group (DSKVS_OP_GRP -> DSKVS_REC_GRP: every record but the last), which
 *    recovery applies all or none (format.c);
 *  - dskvs_get_all gathers under the same lock, so it sees none or all.
 * While the slots are reserved every other producer waits in its commit,
 * as for a single put; the apply is n table operations with no allocation
 * (the map has room) and no sleep.
 */
struct bw {
	const char *member;
	size_t mlen;
	const void *val;
	size_t len;
	bool del;
	struct dskvs__blk *b;    /* a put's new block (table + queue refs) */
	struct dskvs__blk *prev; /* the block the op replaced or removed */
	unsigned op;             /* its slot: DSKVS_OP_PUT, _DEL or _NOP */
};

/* The most ops of one batch: the janitor's batch array holds one batch of
 * writes past its bound (queue.h), and the ring must hold it whole. */
static size_t batch_ops_max(const dskvs *s)
{
	size_t m = s->opts.batch_max_records;
	return m < s->q.ring_cap - 1 ? m : s->q.ring_cap - 1;
}

static void batch_free_blocks(struct bw *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dskvs__blk_discard(w[i].b);
}

/* Check every op, then allocate every put's block. Nothing shared is
 * touched. */
static int batch_prepare(dskvs *s, const struct dskvs__key *ck, struct bw *w,
                         size_t n)
{
	uint64_t bytes = 0;
	int rc;

	if (n > batch_ops_max(s))
		return dskvs__fail(DSKVS_EBATCH,
		                   "dskvs_write_batch: %zu ops, over the limit "
		                   "of %zu (batch_max_records and the queue's "
		                   "capacity)",
		                   n, batch_ops_max(s));
	for (size_t i = 0; i < n; i++) {
		if (w[i].mlen > DSKVS_NAME_MAX)
			return dskvs__fail(DSKVS_ETOOBIG,
			                   "op %zu: member name over %u bytes",
			                   i, DSKVS_NAME_MAX);
		/* Its log record: header, "coll/member", value. */
		bytes += DSKVS_REC_HDR + ck->clen + 1 + w[i].mlen;
		if (w[i].del)
			continue;
		if ((rc = value_ok(w[i].val, w[i].len, "dskvs_write_batch")) !=
		    DSKVS_OK)
			return dskvs__fail(rc, "op %zu: %s", i,
			                   dskvs_strerror(rc));
		bytes += w[i].len;
	}
	if (bytes > DSKVS_BATCH_BYTES_MAX)
		return dskvs__fail(DSKVS_EBATCH,
		                   "dskvs_write_batch: %llu bytes of log "
		                   "records, over the limit of %u",
		                   (unsigned long long)bytes,
		                   DSKVS_BATCH_BYTES_MAX);
	for (size_t i = 0; i < n; i++) {
		if (w[i].del)
			continue;
		w[i].b = dskvs__blk_alloc(&s->t.pool, w[i].member, w[i].mlen,
		                          w[i].val, w[i].len, 2);
		if (w[i].b == NULL) {
			batch_free_blocks(w, i);
			return dskvs__fail(DSKVS_ENOMEM,
			                   "op %zu: value block of %zu bytes",
			                   i, w[i].len);
		}
	}
	return DSKVS_OK;
}

/* Undo ops [0, upto) in reverse after a table insert failed (which the
 * grown map makes out of reach in practice). Each restore puts back a
 * member that is in the map or just left its slot, which ck_ht refills
 * without growing. Call with c's lock held; the slots are still reserved. */
static void batch_undo_locked(dskvs *s, struct dskvs__coll *c, struct bw *w,
                              size_t upto)
{
	for (size_t i = upto; i-- > 0;) {
		struct dskvs__blk *x = NULL;
		if (w[i].op == DSKVS_OP_PUT) {
			if (w[i].prev)
				(void)dskvs__member_set_locked(c, w[i].prev,
				                               &x);
			else
				(void)dskvs__member_remove_locked(
				    c, w[i].member, w[i].mlen);
			/* Published, so readers may hold it: the queue's
			 * reference now, the table's after a grace period. */
			dskvs__blk_unref(w[i].b);
			dskvs__blk_retire(&s->t.pool, w[i].b);
			w[i].b = NULL;
		} else if (w[i].op == DSKVS_OP_DEL) {
			__atomic_sub_fetch(&w[i].prev->refs, 1,
			                   __ATOMIC_RELAXED);
			(void)dskvs__member_set_locked(c, w[i].prev, &x);
		}
		w[i].prev = NULL;
	}
}

static int write_batch_k(dskvs *s, const struct dskvs__key *ck, struct bw *w,
                         size_t n, uint64_t *seq_out)
{
	struct dskvs__coll *c;
	struct dskvs__slots sl;
	size_t puts = 0, last = n;
	uint64_t first;
	bool dropped;
	int rc;

	if ((rc = write_ok(s, "dskvs_write_batch")) != DSKVS_OK)
		return rc;
	if ((rc = batch_prepare(s, ck, w, n)) != DSKVS_OK)
		return rc;
	for (size_t i = 0; i < n; i++)
		puts += !w[i].del;

	dskvs__rcu_read_lock();
	rc = dskvs__coll_acquire(&s->t, ck, true, &c);
	if (rc != DSKVS_OK) {
		dskvs__rcu_read_unlock();
		batch_free_blocks(w, n);
		return dskvs__fail(rc, "dskvs_write_batch: %s",
		                   dskvs_strerror(rc));
	}
	if (puts && (rc = dskvs__member_room_n_locked(c, puts)) != DSKVS_OK)
		goto fail_locked;

	/* No rebuild of the map while the slots are reserved (table.h). */
	dskvs__members_hold(c, true);
	first = dskvs__queue_reserve_n(&s->q, &sl, (unsigned)n);
	for (size_t i = 0; i < n; i++) {
		if (w[i].del) {
			w[i].prev = dskvs__member_remove_locked(c, w[i].member,
			                                        w[i].mlen);
			w[i].op = w[i].prev ? DSKVS_OP_DEL : DSKVS_OP_NOP;
			/* The record carries the removed block's key. */
			if (w[i].prev)
				__atomic_add_fetch(&w[i].prev->refs, 1,
				                   __ATOMIC_RELAXED);
			continue;
		}
		w[i].b->seq = first + i; /* before readers can see it */
		rc = dskvs__member_set_locked(c, w[i].b, &w[i].prev);
		if (rc != DSKVS_OK) {
			batch_undo_locked(s, c, w, i);
			for (unsigned k = 0; k < n; k++)
				dskvs__queue_slot_set(&s->q, &sl, k, NULL, NULL,
				                      DSKVS_OP_NOP);
			dskvs__queue_commit_n(&s->q, &sl);
			dskvs__members_hold(c, false);
			goto fail_locked;
		}
		w[i].op = DSKVS_OP_PUT;
	}
	/* Every record but the last carries the group flag; so does a NOP
	 * slot before the last record, so that the drain does not stop
	 * there (queue.h). */
	for (size_t i = 0; i < n; i++)
		if (w[i].op != DSKVS_OP_NOP)
			last = i;
	for (size_t i = 0; i < n; i++) {
		unsigned op =
		    w[i].op | (last != n && i < last ? DSKVS_OP_GRP : 0);
		dskvs__queue_slot_set(
		    &s->q, &sl, (unsigned)i, &c->name,
		    w[i].op == DSKVS_OP_PUT ? w[i].b : w[i].prev, op);
	}
	if (last != n)
		dskvs__coll_note_record_locked(c, first + last);
	/* Committed before the lock is released: log order is memory
	 * order. */
	dskvs__queue_commit_n(&s->q, &sl);
	dskvs__members_hold(c, false);
	dropped = drop_if_empty_locked(s, c);
	dskvs__coll_release(c);
	for (size_t i = 0; i < n; i++)
		if (w[i].prev)
			dskvs__blk_retire(&s->t.pool, w[i].prev);
	if (dropped)
		dskvs__coll_retire(c);
	dskvs__rcu_read_unlock();
	return after_write(s, first + n - 1, seq_out);

fail_locked:
	dropped = drop_if_empty_locked(s, c);
	dskvs__coll_release(c);
	if (dropped)
		dskvs__coll_retire(c);
	dskvs__rcu_read_unlock();
	batch_free_blocks(w, n);
	return dskvs__fail(rc, "dskvs_write_batch: %s", dskvs_strerror(rc));
}

/* Checks common to both forms; *w receives a zeroed work array. */
static int batch_start(dskvs *s, const void *ops, size_t n, struct bw **w)
{
	*w = NULL;
	if (s == NULL || ops == NULL || n == 0)
		return dskvs__fail(DSKVS_EINVAL, "dskvs_write_batch: %s",
		                   s == NULL ? "NULL store"
		                   : n == 0  ? "no ops (n == 0)"
		                             : "NULL ops");
	if (n > batch_ops_max(s))
		return dskvs__fail(DSKVS_EBATCH,
		                   "dskvs_write_batch: %zu ops, over the limit "
		                   "of %zu (batch_max_records and the queue's "
		                   "capacity)",
		                   n, batch_ops_max(s));
	*w = calloc(n, sizeof(**w));
	if (*w == NULL)
		return dskvs__fail(DSKVS_ENOMEM, "dskvs_write_batch: %zu ops",
		                   n);
	return DSKVS_OK;
}

int dskvs_write_batch(dskvs *s, const char *collection,
                      const dskvs_batch_op *ops, size_t n, uint64_t *seq)
{
	struct dskvs__key ck;
	struct bw *w;
	int rc;

	if ((rc = batch_start(s, ops, n, &w)) != DSKVS_OK)
		return rc;
	if ((rc = parse(collection, 0, &ck)) != DSKVS_OK)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const char *m = ops[i].member;
		if (m == NULL || m[0] == '\0') {
			rc =
			    dskvs__fail(DSKVS_EBADKEY, "op %zu: %s member name",
			                i, m ? "empty" : "NULL");
			goto out;
		}
		w[i].member = m;
		w[i].mlen = strnlen(m, (size_t)DSKVS_NAME_MAX + 1);
		w[i].val = ops[i].val;
		w[i].len = ops[i].len;
		w[i].del = ops[i].del != 0;
	}
	rc = write_batch_k(s, &ck, w, n, seq);
out:
	free(w);
	return rc;
}

int dskvs_write_batch_bin(dskvs *s, const char *coll, size_t clen,
                          const dskvs_batch_op_bin *ops, size_t n,
                          uint64_t *seq)
{
	struct dskvs__key ck;
	struct bw *w;
	int rc;

	if ((rc = batch_start(s, ops, n, &w)) != DSKVS_OK)
		return rc;
	if ((rc = make(coll, clen, NULL, 0, 0, &ck)) != DSKVS_OK)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (ops[i].member == NULL && ops[i].member_len > 0) {
			rc = dskvs__fail(DSKVS_EBADKEY,
			                 "op %zu: NULL member of %zu bytes", i,
			                 ops[i].member_len);
			goto out;
		}
		w[i].member = ops[i].member ? ops[i].member : "";
		w[i].mlen = ops[i].member_len;
		w[i].val = ops[i].val;
		w[i].len = ops[i].len;
		w[i].del = ops[i].del != 0;
	}
	rc = write_batch_k(s, &ck, w, n, seq);
out:
	free(w);
	return rc;
}
