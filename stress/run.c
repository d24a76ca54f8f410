/*
 * The threaded run.
 *
 * DESIGN
 *
 * Keys. Each writer owns `keys` keys spread over `colls` collections of its
 * own; nobody else writes them, so the owner knows their exact state. All
 * writers also fight over the keys of one "shared" collection. Readers only
 * read. A maintenance thread calls dskvs_compact() now and then.
 *
 * Versions. Every operation of an owner on one of its keys (put, delete, and
 * delete_all for each key of the collection) takes the key's next version.
 * A put writes the value of that version (value.c), so its bytes say which
 * operation wrote it. Per key, the owner keeps three atomics, each stored by
 * the owner only:
 *   started      version of the newest operation it has begun (stored with
 *                release before calling dskvs, so a reader that sees a value
 *                and then loads `started` can bound it: no phantom versions);
 *   del_started  version of the newest delete / delete_all it has begun;
 *   pub          (version << 1 | present) of the newest operation that has
 *                returned, stored with release after the call returned.
 * A reader loads pub (acquire) before its read. The contract says a read that
 * starts after a write returned sees that write or a later one, so:
 *   value of version g:  pub.version <= g <= started   (else stale/phantom);
 *   not found:           allowed if pub says absent, or a delete began after
 *                        pub's operation (del_started > pub.version).
 * The owner itself reads back every write right after it returned and must
 * see exactly it (read-your-writes), and checks put's *old against the value
 * it knows was there.
 *
 * The shared collection has no single owner, so there is no exact model:
 * versions come from one global counter (unique across shared keys) and the
 * checks use dskvs_put()'s *old instead. The values of one key form a chain
 * in which each put replaces exactly one previous value, so:
 *   - a value may be returned as *old at most once; a second time means two
 *     puts both replaced it and one update was lost (lost_update);
 *   - once a put that replaced value o has returned, a read that starts
 *     later must not return o (stale). To order "returned" against "started"
 *     the replacing writer takes a ticket from the global `tick` after its
 *     put returned and stores it in o's slot; a reader loads `tick` before
 *     its read. slot(o).tick <= reader's tick means the replacing put
 *     returned before the read began.
 *   - a writer's own read after its own put returns must find a value (any
 *     not-yet-replaced one) unless a delete or delete_all of the shared
 *     collection was in flight at some point in between: writers count
 *     deletes begun (sdel_started) and finished (sdel_done); if
 *     sdel_started after the read equals sdel_done before the put, none was.
 *
 * Reopen checks. Every reopen_every seconds the main thread parks every
 * thread (between operations), compares the store with the model exactly
 * (every owned key, every walk, the stats and per-collection counts; shared
 * keys must hold values nobody has replaced), closes the store, reopens it
 * (switching the sync mode when --sync mixed) and compares again: the
 * reopened store must equal the model, the shared collection must equal what
 * it held before the close.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <unistd.h>

#include "stress.h"

#define PUB(v, present) (((v) << 1) | (uint64_t)(present))
#define PUB_VER(p)      ((p) >> 1)
#define PUB_PRESENT(p)  ((p)&1)

/* How long an acknowledged write may take to show up in the durable ticket
 * counter: generous, so a slow CI machine cannot cause a false alarm. */
#define DURABLE_WAIT_MS 5000

/* Shared-key slots: 2^16 chunks of 2^16 slots cover 2^32 versions, far more
 * than a run makes; a chunk (512 KiB) is allocated on first use. */
#define CHUNK_BITS 16
#define CHUNKS     (1u << 16)
#define CHUNK_SIZE (1u << CHUNK_BITS)

struct key_state {
	_Atomic uint64_t pub;
	_Atomic uint64_t started;
	_Atomic uint64_t del_started;
	/* Owner only; main reads them while every thread is parked. */
	uint64_t ver;     /* last version taken */
	uint64_t val_ver; /* version of the live value, 0 when absent */
};

enum role { ROLE_WRITER, ROLE_READER, ROLE_MAINT };

struct worker {
	pthread_t tid;
	enum role role;
	unsigned int idx;
	char who[16];
	uint64_t rng;
	/* Written by this thread only, read by main for the progress line. */
	_Atomic uint64_t ops[OP_NKINDS];
	_Atomic uint64_t ryw, members, compactions;
	_Atomic uint64_t churn, churn_born, churn_died; /* --churn steps */
	unsigned char *wbuf, *rbuf;
	unsigned char *bbuf; /* values of a batch (bat_buf_size) */
	uint64_t *snap;      /* per-member pub snapshot for a walk */
	unsigned char *seen; /* members visited by a walk */
	uint64_t last_seq;   /* sequence number of this thread's last write */
};

static struct {
	struct stress_opts *o;
	struct keyspace ks;
	struct key_state *st;
	const char *dir;
	dskvs *store; /* replaced by main only while every thread is parked */
	int sync_mode;
	unsigned int hot;

	_Atomic uint64_t shared_ctr; /* last shared version handed out */
	_Atomic uint64_t tick;
	_Atomic uint64_t sdel_started, sdel_done;
	_Atomic(_Atomic uint64_t *) chunks[CHUNKS];
	uint64_t *shared_snap; /* main only: shared state at the last pause */

	_Atomic int pause_req, stop;
	pthread_mutex_t mu;
	pthread_cond_t cv_parked, cv_resume;
	unsigned int parked;     /* under mu */
	unsigned long pause_gen; /* under mu */

	struct worker *w;
	unsigned int nthreads;

	_Atomic uint64_t
	    ticket_lag; /* acks that the ticket counter showed late */
	uint64_t reopens, keys_compared, persisted_base;
} R;

static inline void bump(_Atomic uint64_t *c)
{
	/* One writer per counter: no need for a locked add. */
	atomic_store_explicit(c,
	                      atomic_load_explicit(c, memory_order_relaxed) + 1,
	                      memory_order_relaxed);
}

static inline uint32_t owner_of(uint32_t k)
{
	return k / R.ks.keys;
}

/* ---- parking --------------------------------------------------------------
 */

static void park(void)
{
	pthread_mutex_lock(&R.mu);
	unsigned long gen = R.pause_gen;
	R.parked++;
	pthread_cond_signal(&R.cv_parked);
	while (R.pause_gen == gen)
		pthread_cond_wait(&R.cv_resume, &R.mu);
	R.parked--;
	pthread_mutex_unlock(&R.mu);
}

static void pause_all(void)
{
	atomic_store(&R.pause_req, 1);
	pthread_mutex_lock(&R.mu);
	while (R.parked < R.nthreads)
		pthread_cond_wait(&R.cv_parked, &R.mu);
	pthread_mutex_unlock(&R.mu);
}

static void resume_all(void)
{
	atomic_store(&R.pause_req, 0);
	pthread_mutex_lock(&R.mu);
	R.pause_gen++;
	pthread_cond_broadcast(&R.cv_resume);
	pthread_mutex_unlock(&R.mu);
}

/* ---- shared-key slots
 * --------------------------------------------------------- */

static _Atomic uint64_t *slot(uint64_t v, bool create)
{
	size_t c = (size_t)(v >> CHUNK_BITS);
	if (c >= CHUNKS)
		return NULL;
	_Atomic uint64_t *p =
	    atomic_load_explicit(&R.chunks[c], memory_order_acquire);
	if (!p && create) {
		_Atomic uint64_t *fresh = calloc(CHUNK_SIZE, sizeof *fresh);
		if (!fresh)
			return NULL;
		_Atomic uint64_t *expect = NULL;
		if (atomic_compare_exchange_strong(&R.chunks[c], &expect,
		                                   fresh)) {
			p = fresh;
		} else {
			free(fresh);
			p = expect;
		}
	}
	return p ? &p[v & (CHUNK_SIZE - 1)] : NULL;
}

/* ---- reading
 * ------------------------------------------------------------------ */

struct copy_ctx {
	unsigned char *buf;
	size_t cap, len;
};

static int copy_cb(const void *val, size_t len, void *arg)
{
	struct copy_ctx *c = arg;
	c->len = len;
	memcpy(c->buf, val, len < c->cap ? len : c->cap);
	return 0;
}

/*
 * Read `key` into w->rbuf with one of the three read calls, so each gets its
 * share of races. Returns the dskvs code; on DSKVS_OK *len is the full
 * length. A value longer than value_max is reported here (nobody writes one).
 */
static int read_key(struct worker *w, dskvs *s, uint32_t k, size_t *len)
{
	const char *key = R.ks.key[k];
	size_t cap = R.o->value_max;
	int rc;
	*len = 0;
	switch (rng_below(&w->rng, 4)) {
	case 0: {
		void *v = NULL;
		size_t l = 0;
		rc = dskvs_get_alloc(s, key, &v, &l);
		if (rc == DSKVS_OK) {
			if (!v) {
				violation(V_RC,
				          "%s get_alloc %s: DSKVS_OK with *val "
				          "NULL",
				          w->who, key);
				return DSKVS_EINVAL;
			}
			memcpy(w->rbuf, v, l < cap ? l : cap);
			*len = l;
		}
		free(v);
		break;
	}
	case 1: {
		struct copy_ctx c = { w->rbuf, cap, 0 };
		rc = dskvs_get_with(s, key, copy_cb, &c);
		if (rc == DSKVS_OK)
			*len = c.len;
		break;
	}
	default:
		rc = dskvs_get(s, key, w->rbuf, cap, len);
		if (rc == DSKVS_ERANGE)
			rc = DSKVS_OK; /* *len > cap, reported below */
		break;
	}
	if (rc == DSKVS_OK && *len > cap) {
		violation(V_TORN,
		          "%s get %s: a value of %zu bytes, longer than any "
		          "written (%zu)",
		          w->who, key, *len, cap);
		return DSKVS_EINVAL;
	}
	return rc;
}

/* A whole value of key k (and of its owner, for an owned key)? Reports torn
 * or misdirected values. */
static bool value_ok(const char *who, const char *what, uint32_t k,
                     const void *data, size_t len, struct sv_info *in)
{
	char why[256];
	if (!sv_check(R.o, data, len, in, why, sizeof why)) {
		violation(V_TORN, "%s %s %s: not a whole value: %s", who, what,
		          R.ks.key[k], why);
		return false;
	}
	if (in->key != k) {
		violation(V_MISDIRECTED,
		          "%s %s %s: expected a value of key id %" PRIu32
		          ", got a whole value of key id %" PRIu32
		          " (%s) writer %" PRIu32 " version %" PRIu64,
		          who, what, R.ks.key[k], k, in->key,
		          in->key < R.ks.owned + R.ks.shared ? R.ks.key[in->key]
		                                             : "?",
		          in->writer, in->version);
		return false;
	}
	if (k < R.ks.owned && in->writer != owner_of(k)) {
		violation(V_MISDIRECTED,
		          "%s %s %s: expected a value by writer %" PRIu32
		          ", got one by writer %" PRIu32 " version %" PRIu64,
		          who, what, R.ks.key[k], owner_of(k), in->writer,
		          in->version);
		return false;
	}
	return true;
}

/* Compare an observation with an exact expectation (want 0 = absent). */
static void expect_exact(const char *who, const char *what, uint32_t k,
                         uint64_t want, int rc, const void *data, size_t len)
{
	struct sv_info in;
	if (rc == DSKVS_NOTFOUND) {
		if (want)
			violation(V_LOST,
			          "%s %s %s: expected version %" PRIu64
			          ", got not found",
			          who, what, R.ks.key[k], want);
		return;
	}
	if (rc != DSKVS_OK) {
		violation(V_RC, "%s %s %s: expected %s, got %s", who, what,
		          R.ks.key[k], want ? "DSKVS_OK" : "DSKVS_NOTFOUND",
		          rc_name(rc));
		return;
	}
	if (!value_ok(who, what, k, data, len, &in))
		return;
	if (!want)
		violation(V_RESURRECTED,
		          "%s %s %s: expected absent, got version %" PRIu64,
		          who, what, R.ks.key[k], in.version);
	else if (in.version < want)
		violation(V_STALE,
		          "%s %s %s: expected version %" PRIu64
		          ", got older version %" PRIu64,
		          who, what, R.ks.key[k], want, in.version);
	else if (in.version > want)
		violation(V_PHANTOM,
		          "%s %s %s: expected version %" PRIu64
		          ", got version %" PRIu64 " that was never written",
		          who, what, R.ks.key[k], want, in.version);
}

/* A shared value of version g read by a read that began at ticket t0: it
 * must exist and must not have been replaced before the read began. */
static void shared_fresh(const char *who, const char *what, uint32_t k,
                         uint64_t g, uint64_t t0)
{
	uint64_t top = atomic_load(&R.shared_ctr);
	if (g > top) {
		violation(V_PHANTOM,
		          "%s %s %s: got version %" PRIu64 ", but only %" PRIu64
		          " shared versions were handed out",
		          who, what, R.ks.key[k], g, top);
		return;
	}
	_Atomic uint64_t *sl = slot(g, false);
	uint64_t x = sl ? atomic_load(sl) : 0;
	if (x && (x >> 32) <= t0)
		violation(
		    V_STALE,
		    "%s %s %s: got version %" PRIu64
		    ", which the put of version %" PRIu64
		    " had replaced before this read began (ticket %" PRIu64
		    " <= %" PRIu64 ")",
		    who, what, R.ks.key[k], g, x & 0xffffffffu, x >> 32, t0);
}

/* Wait (boundedly) for an acknowledged write to show in the ticket counter. */
static void check_durable(struct worker *w, dskvs *s, uint64_t seq,
                          const char *what, const char *key)
{
	if (!seq || dskvs_wait_durable(s, seq, 0) == DSKVS_OK)
		return;
	atomic_fetch_add(&R.ticket_lag, 1);
	int rc = dskvs_wait_durable(s, seq, DURABLE_WAIT_MS);
	if (rc != DSKVS_OK)
		violation(V_DURABILITY,
		          "%s %s %s: acknowledged as durable, but "
		          "dskvs_wait_durable(seq %" PRIu64 ", %d ms) gave %s "
		          "(durable_seq %" PRIu64 ")",
		          w->who, what, key, seq, DURABLE_WAIT_MS, rc_name(rc),
		          dskvs_durable_seq(s));
}

/* ---- walks
 * -------------------------------------------------------------------- */

struct walk {
	struct worker *w;
	unsigned int owner, coll; /* owned walks */
	bool exact;               /* the walker owns the collection */
	bool shared;
	uint64_t t0; /* shared walks: ticket before the walk */
	const uint64_t *expect_shared; /* parked: exact shared versions */
	const char *what;
	uint64_t visited;
};

static int walk_cb(const char *m, size_t mlen, const void *val, size_t vlen,
                   void *arg)
{
	struct walk *c = arg;
	struct worker *w = c->w;
	const char *coll =
	    c->shared ? "shared" : R.ks.coll[c->owner * R.ks.colls + c->coll];
	c->visited++;
	long i = c->shared ? parse_shared_member(&R.ks, m, mlen)
	                   : parse_owned_member(&R.ks, c->coll, m, mlen);
	if (i < 0) {
		violation(V_WALK,
		          "%s %s %s: visited member \"%.*s\" that the "
		          "harness never wrote",
		          w->who, c->what, coll, (int)(mlen < 64 ? mlen : 64),
		          m);
		return 0;
	}
	if (m[mlen] != '\0')
		violation(V_WALK, "%s %s %s: member name not NUL-terminated",
		          w->who, c->what, coll);
	size_t j = c->shared ? (size_t)i : (size_t)i / R.ks.colls;
	uint32_t k = c->shared ? R.ks.owned + (uint32_t)i
	                       : c->owner * R.ks.keys + (uint32_t)i;
	if (w->seen[j]) {
		violation(V_WALK, "%s %s %s: visited member %.*s twice", w->who,
		          c->what, coll, (int)mlen, m);
		return 0;
	}
	w->seen[j] = 1;
	struct sv_info in;
	if (!value_ok(w->who, c->what, k, val, vlen, &in))
		return 0;
	if (c->shared) {
		if (c->expect_shared)
			expect_exact(w->who, c->what, k, c->expect_shared[j],
			             DSKVS_OK, val, vlen);
		else
			shared_fresh(w->who, c->what, k, in.version, c->t0);
		return 0;
	}
	struct key_state *st = &R.st[k];
	if (c->exact) {
		expect_exact(w->who, c->what, k, st->val_ver, DSKVS_OK, val,
		             vlen);
		return 0;
	}
	uint64_t p = w->snap[j];
	uint64_t started =
	    atomic_load_explicit(&st->started, memory_order_acquire);
	if (in.version < PUB_VER(p))
		violation(V_STALE,
		          "%s %s %s: expected version >= %" PRIu64
		          " (published before the walk), got version %" PRIu64,
		          w->who, c->what, R.ks.key[k], PUB_VER(p), in.version);
	else if (in.version > started)
		violation(V_PHANTOM,
		          "%s %s %s: got version %" PRIu64
		          ", newer than any put begun (%" PRIu64 ")",
		          w->who, c->what, R.ks.key[k], in.version, started);
	return 0;
}

/* Walk owned collection c of `owner`. Exact when the walker owns it. */
static void walk_owned(struct worker *w, dskvs *s, unsigned int owner,
                       unsigned int c, bool exact, const char *what)
{
	const char *coll = R.ks.coll[owner * R.ks.colls + c];
	unsigned int n = 0;
	for (unsigned int i = c; i < R.ks.keys; i += R.ks.colls, n++) {
		struct key_state *st = &R.st[owner * R.ks.keys + i];
		w->seen[n] = 0;
		w->snap[n] =
		    atomic_load_explicit(&st->pub, memory_order_acquire);
	}
	struct walk ctx = {
		.w = w, .owner = owner, .coll = c, .exact = exact, .what = what
	};
	int rc = dskvs_get_all(s, coll, walk_cb, &ctx);
	if (rc != DSKVS_OK) {
		violation(V_RC, "%s %s %s: expected DSKVS_OK, got %s", w->who,
		          what, coll, rc_name(rc));
		return;
	}
	atomic_fetch_add_explicit(&w->members, ctx.visited,
	                          memory_order_relaxed);
	n = 0;
	for (unsigned int i = c; i < R.ks.keys; i += R.ks.colls, n++) {
		if (w->seen[n])
			continue;
		uint32_t k = owner * R.ks.keys + i;
		struct key_state *st = &R.st[k];
		if (exact) {
			if (st->val_ver)
				violation(V_WALK,
				          "%s %s %s: member k%06u (version "
				          "%" PRIu64 ") not visited",
				          w->who, what, coll, i, st->val_ver);
			continue;
		}
		uint64_t p = w->snap[n];
		uint64_t started =
		    atomic_load_explicit(&st->started, memory_order_acquire);
		if (PUB_PRESENT(p) && started == PUB_VER(p))
			violation(
			    V_WALK,
			    "%s %s %s: member k%06u not visited, though it "
			    "held version %" PRIu64
			    " before the walk and nobody touched it during "
			    "the walk",
			    w->who, what, coll, i, PUB_VER(p));
	}
}

static void walk_shared(struct worker *w, dskvs *s, const char *what)
{
	memset(w->seen, 0, R.ks.shared);
	struct walk ctx = {
		.w = w, .shared = true, .t0 = atomic_load(&R.tick), .what = what
	};
	int rc = dskvs_get_all(s, "shared", walk_cb, &ctx);
	if (rc != DSKVS_OK)
		violation(V_RC, "%s %s shared: expected DSKVS_OK, got %s",
		          w->who, what, rc_name(rc));
	atomic_fetch_add_explicit(&w->members, ctx.visited,
	                          memory_order_relaxed);
}

/* ---- owned-key operations (writers) ---------------------------------------
 */

static unsigned int pick_key(struct worker *w)
{
	/* Half the accesses go to a few hot keys, so that reads and writes of
	 * one key really overlap. */
	if (R.hot && (rng_next(&w->rng) & 1))
		return (unsigned int)rng_below(&w->rng, R.hot);
	return (unsigned int)rng_below(&w->rng, R.ks.keys);
}

static void ryw_owned(struct worker *w, dskvs *s, uint32_t k, const char *what)
{
	size_t len;
	int rc = read_key(w, s, k, &len);
	bump(&w->ryw);
	expect_exact(w->who, what, k, R.st[k].val_ver, rc, w->rbuf, len);
}

static void check_old(struct worker *w, uint32_t k, uint64_t v, uint64_t prev,
                      void *old, size_t old_len)
{
	char what[64];
	snprintf(what, sizeof what, "put (version %" PRIu64 ") *old of", v);
	if (!prev) {
		if (old)
			violation(
			    V_BAD_OLD,
			    "%s %s %s: expected none (key absent), got %zu "
			    "bytes",
			    w->who, what, R.ks.key[k], old_len);
		return;
	}
	if (!old) {
		violation(V_BAD_OLD,
		          "%s %s %s: expected version %" PRIu64 ", got none",
		          w->who, what, R.ks.key[k], prev);
		return;
	}
	struct sv_info in;
	if (!value_ok(w->who, what, k, old, old_len, &in))
		return;
	if (in.version != prev)
		violation(V_BAD_OLD,
		          "%s %s %s: expected version %" PRIu64
		          ", got version %" PRIu64,
		          w->who, what, R.ks.key[k], prev, in.version);
}

static void op_put_owned(struct worker *w, dskvs *s)
{
	uint32_t k = w->idx * R.ks.keys + pick_key(w);
	struct key_state *st = &R.st[k];
	uint64_t prev = st->val_ver;
	uint64_t v = ++st->ver;
	atomic_store_explicit(&st->started, v, memory_order_release);
	size_t len = sv_len(R.o, k, v);
	sv_fill(w->wbuf, len, k, w->idx, v);
	bool want_old = rng_next(&w->rng) & 1;
	void *old = NULL;
	size_t old_len = 0;
	uint64_t seq = 0;
	int rc = dskvs_put_seq(s, R.ks.key[k], w->wbuf, len,
	                       want_old ? &old : NULL, &old_len, &seq);
	bump(&w->ops[OP_PUT]);
	if (rc != DSKVS_OK) {
		violation(V_RC, "%s put %s version %" PRIu64 ": got %s (%s)",
		          w->who, R.ks.key[k], v, rc_name(rc), dskvs_errmsg(s));
		return;
	}
	st->val_ver = v;
	atomic_store_explicit(&st->pub, PUB(v, 1), memory_order_release);
	w->last_seq = seq;
	if (want_old)
		check_old(w, k, v, prev, old, old_len);
	free(old);
	if (R.sync_mode == DSKVS_SYNC_ALWAYS)
		check_durable(w, s, seq, "put (sync always)", R.ks.key[k]);
	ryw_owned(w, s, k, "get after own put of");
}

static void op_delete_owned(struct worker *w, dskvs *s)
{
	uint32_t k = w->idx * R.ks.keys + pick_key(w);
	struct key_state *st = &R.st[k];
	uint64_t prev = st->val_ver;
	uint64_t v = ++st->ver;
	atomic_store_explicit(&st->started, v, memory_order_release);
	atomic_store_explicit(&st->del_started, v, memory_order_release);
	uint64_t seq = 0;
	int rc = dskvs_delete_seq(s, R.ks.key[k], &seq);
	bump(&w->ops[OP_DELETE]);
	if (prev && rc == DSKVS_NOTFOUND)
		violation(V_LOST,
		          "%s delete %s: expected DSKVS_OK (key holds version "
		          "%" PRIu64 "), got DSKVS_NOTFOUND",
		          w->who, R.ks.key[k], prev);
	else if (!prev && rc == DSKVS_OK)
		violation(V_RESURRECTED,
		          "%s delete %s: expected DSKVS_NOTFOUND (key absent), "
		          "got DSKVS_OK",
		          w->who, R.ks.key[k]);
	else if (rc != DSKVS_OK && rc != DSKVS_NOTFOUND)
		violation(V_RC, "%s delete %s: got %s (%s)", w->who,
		          R.ks.key[k], rc_name(rc), dskvs_errmsg(s));
	st->val_ver = 0;
	atomic_store_explicit(&st->pub, PUB(v, 0), memory_order_release);
	if (rc == DSKVS_OK) {
		w->last_seq = seq;
		if (R.sync_mode == DSKVS_SYNC_ALWAYS)
			check_durable(w, s, seq, "delete (sync always)",
			              R.ks.key[k]);
	}
	ryw_owned(w, s, k, "get after own delete of");
}

static void op_delete_all_owned(struct worker *w, dskvs *s)
{
	unsigned int c = (unsigned int)rng_below(&w->rng, R.ks.colls);
	const char *coll = R.ks.coll[w->idx * R.ks.colls + c];
	bool any = false;
	for (unsigned int i = c; i < R.ks.keys; i += R.ks.colls) {
		struct key_state *st = &R.st[w->idx * R.ks.keys + i];
		uint64_t v = ++st->ver;
		any |= st->val_ver != 0;
		atomic_store_explicit(&st->started, v, memory_order_release);
		atomic_store_explicit(&st->del_started, v,
		                      memory_order_release);
	}
	uint64_t seq = 0;
	int rc = dskvs_delete_all_seq(s, coll, &seq);
	bump(&w->ops[OP_DELETE_ALL]);
	if (any && rc == DSKVS_NOTFOUND)
		violation(V_LOST,
		          "%s delete_all %s: expected DSKVS_OK (collection has "
		          "members), got DSKVS_NOTFOUND",
		          w->who, coll);
	else if (!any && rc == DSKVS_OK)
		violation(
		    V_RESURRECTED,
		    "%s delete_all %s: expected DSKVS_NOTFOUND (collection "
		    "empty), got DSKVS_OK",
		    w->who, coll);
	else if (rc != DSKVS_OK && rc != DSKVS_NOTFOUND)
		violation(V_RC, "%s delete_all %s: got %s (%s)", w->who, coll,
		          rc_name(rc), dskvs_errmsg(s));
	for (unsigned int i = c; i < R.ks.keys; i += R.ks.colls) {
		struct key_state *st = &R.st[w->idx * R.ks.keys + i];
		st->val_ver = 0;
		atomic_store_explicit(&st->pub, PUB(st->ver, 0),
		                      memory_order_release);
	}
	if (rc == DSKVS_OK) {
		w->last_seq = seq;
		if (R.sync_mode == DSKVS_SYNC_ALWAYS)
			check_durable(w, s, seq, "delete_all (sync always)",
			              coll);
	}
	bump(&w->ryw);
	walk_owned(w, s, w->idx, c, true, "get_all after own delete_all of");
}

/* ---- owned-key reads by others --------------------------------------------
 */

static void op_get_other(struct worker *w, dskvs *s)
{
	unsigned int owner = (unsigned int)rng_below(&w->rng, R.ks.writers);
	uint32_t k = owner * R.ks.keys + pick_key(w);
	struct key_state *st = &R.st[k];
	uint64_t p = atomic_load_explicit(&st->pub, memory_order_acquire);
	size_t len;
	int rc = read_key(w, s, k, &len);
	bump(&w->ops[OP_GET]);
	uint64_t started =
	    atomic_load_explicit(&st->started, memory_order_acquire);
	uint64_t dels =
	    atomic_load_explicit(&st->del_started, memory_order_acquire);
	if (rc == DSKVS_NOTFOUND) {
		if (PUB_PRESENT(p) && dels <= PUB_VER(p))
			violation(V_LOST,
			          "%s get %s: expected version >= %" PRIu64
			          " (published before the get; no delete began "
			          "since), got not found",
			          w->who, R.ks.key[k], PUB_VER(p));
		return;
	}
	if (rc != DSKVS_OK) {
		violation(V_RC, "%s get %s: got %s", w->who, R.ks.key[k],
		          rc_name(rc));
		return;
	}
	struct sv_info in;
	if (!value_ok(w->who, "get", k, w->rbuf, len, &in))
		return;
	if (in.version < PUB_VER(p))
		violation(V_STALE,
		          "%s get %s: expected version >= %" PRIu64
		          " (published before the get), got version %" PRIu64,
		          w->who, R.ks.key[k], PUB_VER(p), in.version);
	else if (in.version > started)
		violation(V_PHANTOM,
		          "%s get %s: got version %" PRIu64
		          ", newer than any operation begun (%" PRIu64 ")",
		          w->who, R.ks.key[k], in.version, started);
}

/* ---- shared-collection operations
 * ---------------------------------------------- */

static uint32_t pick_shared(struct worker *w)
{
	return R.ks.owned + (uint32_t)rng_below(&w->rng, R.ks.shared);
}

static void op_put_shared(struct worker *w, dskvs *s)
{
	uint32_t k = pick_shared(w);
	uint64_t v = atomic_fetch_add(&R.shared_ctr, 1) + 1;
	uint64_t d0 = atomic_load(&R.sdel_done);
	size_t len = sv_len(R.o, k, v);
	sv_fill(w->wbuf, len, k, w->idx, v);
	void *old = NULL;
	size_t old_len = 0;
	uint64_t seq = 0;
	int rc =
	    dskvs_put_seq(s, R.ks.key[k], w->wbuf, len, &old, &old_len, &seq);
	bump(&w->ops[OP_PUT]);
	if (rc != DSKVS_OK) {
		violation(V_RC, "%s put %s version %" PRIu64 ": got %s (%s)",
		          w->who, R.ks.key[k], v, rc_name(rc), dskvs_errmsg(s));
		return;
	}
	w->last_seq = seq;
	struct sv_info in;
	if (old && value_ok(w->who, "put *old of", k, old, old_len, &in)) {
		/* Ticket taken after our put returned: see DESIGN. */
		uint64_t t = atomic_fetch_add(&R.tick, 1) + 1;
		_Atomic uint64_t *sl = slot(in.version, true);
		uint64_t mine = (t << 32) | (v & 0xffffffffu), prior = 0;
		if (sl && !atomic_compare_exchange_strong(sl, &prior, mine))
			violation(
			    V_LOST_UPDATE,
			    "%s put %s version %" PRIu64
			    ": *old is version %" PRIu64
			    ", which the put of version %" PRIu64
			    " had already replaced (two puts replaced the "
			    "same value)",
			    w->who, R.ks.key[k], v, in.version,
			    prior & 0xffffffffu);
	}
	free(old);
	if (R.sync_mode == DSKVS_SYNC_ALWAYS)
		check_durable(w, s, seq, "put (sync always)", R.ks.key[k]);

	/* Read-your-writes on a key others write too. */
	uint64_t t0 = atomic_load(&R.tick);
	rc = read_key(w, s, k, &len);
	bump(&w->ryw);
	if (rc == DSKVS_NOTFOUND) {
		if (atomic_load(&R.sdel_started) == d0)
			violation(
			    V_LOST,
			    "%s get after own put of %s: expected version "
			    "%" PRIu64
			    " or a later one, got not found (no delete of "
			    "the shared collection was in flight)",
			    w->who, R.ks.key[k], v);
		return;
	}
	if (rc != DSKVS_OK) {
		violation(V_RC, "%s get after own put of %s: got %s", w->who,
		          R.ks.key[k], rc_name(rc));
		return;
	}
	if (value_ok(w->who, "get after own put of", k, w->rbuf, len, &in) &&
	    in.version != v)
		shared_fresh(w->who, "get after own put of", k, in.version, t0);
}

static void op_delete_shared(struct worker *w, dskvs *s, bool all)
{
	uint32_t k = pick_shared(w);
	uint64_t seq = 0;
	atomic_fetch_add(&R.sdel_started, 1);
	int rc = all ? dskvs_delete_all_seq(s, "shared", &seq)
	             : dskvs_delete_seq(s, R.ks.key[k], &seq);
	atomic_fetch_add(&R.sdel_done, 1);
	bump(&w->ops[all ? OP_DELETE_ALL : OP_DELETE]);
	if (rc == DSKVS_OK)
		w->last_seq = seq;
	else if (rc != DSKVS_NOTFOUND)
		violation(V_RC, "%s %s %s: got %s (%s)", w->who,
		          all ? "delete_all" : "delete",
		          all ? "shared" : R.ks.key[k], rc_name(rc),
		          dskvs_errmsg(s));
}

static void op_get_shared(struct worker *w, dskvs *s)
{
	uint32_t k = pick_shared(w);
	uint64_t t0 = atomic_load(&R.tick);
	size_t len;
	int rc = read_key(w, s, k, &len);
	bump(&w->ops[OP_GET]);
	if (rc == DSKVS_NOTFOUND)
		return;
	if (rc != DSKVS_OK) {
		violation(V_RC, "%s get %s: got %s", w->who, R.ks.key[k],
		          rc_name(rc));
		return;
	}
	struct sv_info in;
	if (value_ok(w->who, "get", k, w->rbuf, len, &in))
		shared_fresh(w->who, "get", k, in.version, t0);
}

/* ---- threads
 * ---------------------------------------------------------------------- */

static void op_sync(struct worker *w, dskvs *s)
{
	uint64_t seq = w->last_seq;
	int rc = dskvs_sync(s);
	bump(&w->ops[OP_SYNC]);
	if (rc != DSKVS_OK)
		violation(V_RC, "%s sync: got %s (%s)", w->who, rc_name(rc),
		          dskvs_errmsg(s));
	else
		check_durable(w, s, seq, "sync after write", "(own writes)");
}

/* ---- churn (--churn P)
 * ---------------------------------------------------------------------
 *
 * Short-lived keys and short-lived collections, so that names keep being
 * created and deleted and the store's tables see deletions of names that
 * never come back (DESIGN.md section 4, rule 7). Each writer owns
 * CHURN_KEYS key units and CHURN_COLLS collection units:
 *   key unit u:   one member "k<u>.<birth>" of the writer's collection
 *                 "w<w>q" (which dies whenever every key unit is dead);
 *   coll unit u:  the collection "w<w>z<u>.<birth>" with members
 *                 "m0".."m<CHURN_MEMBERS-1>".
 * A unit lives from its creation to its death (a delete of its member, or
 * of the collection's last member, or delete_all); the next creation takes
 * a new birth, so a name is never written again after its death. The
 * birth is the version of the creating put: each unit draws the versions
 * of all its members from one counter (owner only), so every value of a
 * life has a version >= its birth.
 *
 * Each churn key has a key_state like an owned key (same rules, same
 * owner-only model) and `pbirth`, the birth of its newest life, stored
 * (release) before `started` of that life's first operation. A reader
 * loads pub, then pbirth (acquire), and reads the name of that birth. When
 * pub's version >= pbirth, pub is of that life and the owned-key rules
 * hold; otherwise a newer life has begun since pub and its first put may
 * not have returned: "not found" is allowed, and a value must lie in
 * [pbirth, started]. The owner checks every answer exactly (read-your-
 * writes after each write, *old, walks of its own collections, and after a
 * death: get_all visits nothing, delete_all says DSKVS_NOTFOUND). The
 * reopen checks compare every live churn key with the model, check that
 * the last dead name of each key is absent, and count churn collections
 * in the stats and in dskvs_list_collections (a dead one listed is a
 * violation).
 */
#define CHURN_KEYS    16
#define CHURN_COLLS   8
#define CHURN_MEMBERS 3
#define CHURN_PER_W   (CHURN_KEYS + CHURN_COLLS * CHURN_MEMBERS)

struct churn_key {
	struct key_state k;
	_Atomic uint64_t pbirth; /* birth of the newest life (0: never) */
};

struct churn_unit {
	/* Owner only; main reads them while every thread is parked. */
	uint64_t ver;   /* last version taken by any member */
	uint64_t birth; /* birth of the current (or last) life, 0: never */
	bool alive;
};

static struct {
	struct churn_key *key;   /* writers * CHURN_PER_W */
	struct churn_unit *unit; /* writers * (CHURN_KEYS + CHURN_COLLS) */
	uint32_t base;           /* key id of writer 0's first churn key */
} CH;

/* Index within a writer: key units 0..CHURN_KEYS-1, then the members of
 * coll unit u at CHURN_KEYS + u * CHURN_MEMBERS + i. */
static inline uint32_t churn_id(unsigned int w, unsigned int ci)
{
	return CH.base + w * CHURN_PER_W + ci;
}

static inline struct churn_key *churn_key_of(unsigned int w, unsigned int ci)
{
	return &CH.key[w * CHURN_PER_W + ci];
}

static inline unsigned int churn_unit_of_ci(unsigned int ci)
{
	return ci < CHURN_KEYS ? ci
	                       : CHURN_KEYS + (ci - CHURN_KEYS) / CHURN_MEMBERS;
}

static inline struct churn_unit *churn_unit(unsigned int w, unsigned int u)
{
	return &CH.unit[w * (CHURN_KEYS + CHURN_COLLS) + u];
}

/* The collection name of unit u's life `birth`. */
static void churn_coll_name(char *buf, size_t cap, unsigned int w,
                            unsigned int u, uint64_t birth)
{
	if (u < CHURN_KEYS)
		snprintf(buf, cap, "w%02uq", w);
	else
		snprintf(buf, cap, "w%02uz%u.%" PRIu64, w, u - CHURN_KEYS,
		         birth);
}

/* The full key of churn key ci of writer w in life `birth`. */
static void churn_key_name(char *buf, size_t cap, unsigned int w,
                           unsigned int ci, uint64_t birth)
{
	if (ci < CHURN_KEYS)
		snprintf(buf, cap, "w%02uq/k%u.%" PRIu64, w, ci, birth);
	else
		snprintf(buf, cap, "w%02uz%u.%" PRIu64 "/m%u", w,
		         (ci - CHURN_KEYS) / CHURN_MEMBERS, birth,
		         (ci - CHURN_KEYS) % CHURN_MEMBERS);
}

static int churn_init(void)
{
	CH.base = R.ks.owned + R.ks.shared;
	CH.key = calloc((size_t)R.ks.writers * CHURN_PER_W, sizeof *CH.key);
	CH.unit = calloc((size_t)R.ks.writers * (CHURN_KEYS + CHURN_COLLS),
	                 sizeof *CH.unit);
	return CH.key && CH.unit ? 0 : -1;
}

static void churn_free(void)
{
	free(CH.key);
	free(CH.unit);
}

/* A whole value of churn key ci of writer w? */
static bool churn_value_ok(const char *who, const char *what, const char *key,
                           unsigned int w, unsigned int ci, const void *data,
                           size_t len, struct sv_info *in)
{
	char why[256];
	uint32_t id = churn_id(w, ci);
	if (!sv_check(R.o, data, len, in, why, sizeof why)) {
		violation(V_TORN, "%s %s %s: not a whole value: %s", who, what,
		          key, why);
		return false;
	}
	if (in->key != id || in->writer != w) {
		violation(V_MISDIRECTED,
		          "%s %s %s: expected a value of key id %" PRIu32
		          " by writer %u, got one of key id %" PRIu32
		          " by writer %" PRIu32 " version %" PRIu64,
		          who, what, key, id, w, in->key, in->writer,
		          in->version);
		return false;
	}
	return true;
}

/* Exact expectation for a churn key (want 0 = absent). */
static void churn_expect(const char *who, const char *what, const char *key,
                         unsigned int w, unsigned int ci, uint64_t want, int rc,
                         const void *data, size_t len)
{
	struct sv_info in;
	if (rc == DSKVS_NOTFOUND) {
		if (want)
			violation(V_LOST,
			          "%s %s %s: expected version %" PRIu64
			          ", got not found",
			          who, what, key, want);
		return;
	}
	if (rc != DSKVS_OK) {
		violation(V_RC, "%s %s %s: expected %s, got %s", who, what, key,
		          want ? "DSKVS_OK" : "DSKVS_NOTFOUND", rc_name(rc));
		return;
	}
	if (!churn_value_ok(who, what, key, w, ci, data, len, &in))
		return;
	if (!want)
		violation(V_RESURRECTED,
		          "%s %s %s: expected absent, got version %" PRIu64,
		          who, what, key, in.version);
	else if (in.version != want)
		violation(in.version < want ? V_STALE : V_PHANTOM,
		          "%s %s %s: expected version %" PRIu64
		          ", got version %" PRIu64,
		          who, what, key, want, in.version);
}

static int churn_get(dskvs *s, const char *key, unsigned char *buf, size_t *len)
{
	int rc = dskvs_get(s, key, buf, R.o->value_max, len);
	if (rc == DSKVS_ERANGE) {
		*len = R.o->value_max; /* too long: the check reports it */
		rc = DSKVS_OK;
	}
	return rc;
}

static void churn_ryw(struct worker *w, dskvs *s, unsigned int ci,
                      const char *what)
{
	struct churn_key *ck = churn_key_of(w->idx, ci);
	struct churn_unit *cu = churn_unit(w->idx, churn_unit_of_ci(ci));
	char key[KEY_NAME_MAX];
	size_t len = 0;
	churn_key_name(key, sizeof key, w->idx, ci, cu->birth);
	int rc = churn_get(s, key, w->rbuf, &len);
	bump(&w->ryw);
	churn_expect(w->who, what, key, w->idx, ci, ck->k.val_ver, rc, w->rbuf,
	             len);
}

/* Put churn key ci in the unit's current life (the unit's next version). */
static void churn_put(struct worker *w, dskvs *s, unsigned int ci)
{
	struct churn_key *ck = churn_key_of(w->idx, ci);
	struct churn_unit *cu = churn_unit(w->idx, churn_unit_of_ci(ci));
	uint32_t id = churn_id(w->idx, ci);
	uint64_t prev = ck->k.val_ver;
	uint64_t v = ++cu->ver;
	char key[KEY_NAME_MAX];
	if (atomic_load_explicit(&ck->pbirth, memory_order_relaxed) !=
	    cu->birth)
		atomic_store_explicit(&ck->pbirth, cu->birth,
		                      memory_order_release);
	ck->k.ver = v;
	atomic_store_explicit(&ck->k.started, v, memory_order_release);
	churn_key_name(key, sizeof key, w->idx, ci, cu->birth);
	size_t len = sv_len(R.o, id, v);
	sv_fill(w->wbuf, len, id, w->idx, v);
	void *old = NULL;
	size_t old_len = 0;
	uint64_t seq = 0;
	int rc = dskvs_put_seq(s, key, w->wbuf, len, &old, &old_len, &seq);
	bump(&w->ops[OP_PUT]);
	if (rc != DSKVS_OK) {
		violation(V_RC,
		          "%s churn put %s version %" PRIu64 ": got %s (%s)",
		          w->who, key, v, rc_name(rc), dskvs_errmsg(s));
		free(old);
		return;
	}
	ck->k.val_ver = v;
	atomic_store_explicit(&ck->k.pub, PUB(v, 1), memory_order_release);
	w->last_seq = seq;
	struct sv_info in;
	if (!prev && old)
		violation(V_BAD_OLD,
		          "%s churn put %s: expected no *old (absent), got %zu "
		          "bytes",
		          w->who, key, old_len);
	else if (prev && !old)
		violation(V_BAD_OLD,
		          "%s churn put %s: expected *old version %" PRIu64
		          ", got none",
		          w->who, key, prev);
	else if (prev &&
	         churn_value_ok(w->who, "churn put *old of", key, w->idx, ci,
	                        old, old_len, &in) &&
	         in.version != prev)
		violation(V_BAD_OLD,
		          "%s churn put %s: expected *old version %" PRIu64
		          ", got version %" PRIu64,
		          w->who, key, prev, in.version);
	free(old);
	if (R.sync_mode == DSKVS_SYNC_ALWAYS)
		check_durable(w, s, seq, "churn put (sync always)", key);
	churn_ryw(w, s, ci, "get after own churn put of");
}

/* Delete churn key ci (present or not: the model says which rc). */
static void churn_del(struct worker *w, dskvs *s, unsigned int ci)
{
	struct churn_key *ck = churn_key_of(w->idx, ci);
	struct churn_unit *cu = churn_unit(w->idx, churn_unit_of_ci(ci));
	uint64_t prev = ck->k.val_ver;
	uint64_t v = ++cu->ver;
	char key[KEY_NAME_MAX];
	ck->k.ver = v;
	atomic_store_explicit(&ck->k.started, v, memory_order_release);
	atomic_store_explicit(&ck->k.del_started, v, memory_order_release);
	churn_key_name(key, sizeof key, w->idx, ci, cu->birth);
	uint64_t seq = 0;
	int rc = dskvs_delete_seq(s, key, &seq);
	bump(&w->ops[OP_DELETE]);
	if (rc != (prev ? DSKVS_OK : DSKVS_NOTFOUND))
		violation(rc == DSKVS_OK         ? V_RESURRECTED
		          : rc == DSKVS_NOTFOUND ? V_LOST
		                                 : V_RC,
		          "%s churn delete %s: expected %s, got %s", w->who,
		          key, prev ? "DSKVS_OK" : "DSKVS_NOTFOUND",
		          rc_name(rc));
	ck->k.val_ver = 0;
	atomic_store_explicit(&ck->k.pub, PUB(v, 0), memory_order_release);
	if (rc == DSKVS_OK) {
		w->last_seq = seq;
		if (R.sync_mode == DSKVS_SYNC_ALWAYS)
			check_durable(w, s, seq, "churn delete (sync always)",
			              key);
	}
	churn_ryw(w, s, ci, "get after own churn delete of");
}

/* Start a new life of unit u: a new birth, stored in every member's
 * pbirth before the life's first operation. */
static void churn_birth(struct worker *w, unsigned int u)
{
	struct churn_unit *cu = churn_unit(w->idx, u);
	cu->birth = cu->ver + 1; /* the version of the creating put */
	cu->alive = true;
	bump(&w->churn_born);
}

struct churn_walk {
	struct worker *w;
	unsigned int owner; /* whose unit */
	unsigned int u;     /* the unit walked (key units: any, the "q" coll) */
	const char *coll;
	bool seen[CHURN_PER_W];
};

static int churn_walk_cb(const char *m, size_t mlen, const void *val,
                         size_t vlen, void *arg)
{
	struct churn_walk *c = arg;
	struct worker *w = c->w;
	unsigned int o = c->owner, ci = CHURN_PER_W, x = 0;
	uint64_t birth = 0;
	char back[KEY_NAME_MAX], key[KEY_NAME_MAX * 2];
	if (c->u < CHURN_KEYS) {
		if (sscanf(m, "k%u.%" SCNu64, &x, &birth) == 2 &&
		    x < CHURN_KEYS) {
			snprintf(back, sizeof back, "k%u.%" PRIu64, x, birth);
			if (strcmp(back, m) == 0 &&
			    churn_unit(o, x)->birth == birth)
				ci = x;
		}
	} else if (sscanf(m, "m%u", &x) == 1 && x < CHURN_MEMBERS) {
		snprintf(back, sizeof back, "m%u", x);
		if (strcmp(back, m) == 0)
			ci = CHURN_KEYS + (c->u - CHURN_KEYS) * CHURN_MEMBERS +
			     x;
	}
	(void)mlen;
	snprintf(key, sizeof key, "%s/%s", c->coll, m);
	if (ci == CHURN_PER_W) {
		violation(
		    V_WALK,
		    "%s churn get_all %s: visited member \"%s\" that is "
		    "not live in the model (a dead name, or never written)",
		    w->who, c->coll, m);
		return 0;
	}
	if (c->seen[ci]) {
		violation(V_WALK, "%s churn get_all %s: visited %s twice",
		          w->who, c->coll, m);
		return 0;
	}
	c->seen[ci] = true;
	churn_expect(w->who, "churn get_all", key, o, ci,
	             churn_key_of(o, ci)->k.val_ver, DSKVS_OK, val, vlen);
	return 0;
}

/* Walk the collection of unit u (key units: "w<w>q") exactly. */
static void churn_walk_of(struct worker *w, dskvs *s, unsigned int owner,
                          unsigned int u, const char *what)
{
	struct churn_walk c = { .w = w, .owner = owner, .u = u };
	char coll[KEY_NAME_MAX];
	churn_coll_name(coll, sizeof coll, owner, u,
	                churn_unit(owner, u)->birth);
	c.coll = coll;
	int rc = dskvs_get_all(s, coll, churn_walk_cb, &c);
	bump(&w->ryw);
	if (rc != DSKVS_OK) {
		violation(V_RC, "%s %s %s: expected DSKVS_OK, got %s", w->who,
		          what, coll, rc_name(rc));
		return;
	}
	unsigned int lo =
	    u < CHURN_KEYS ? 0 : CHURN_KEYS + (u - CHURN_KEYS) * CHURN_MEMBERS;
	unsigned int hi = u < CHURN_KEYS ? CHURN_KEYS : lo + CHURN_MEMBERS;
	for (unsigned int ci = lo; ci < hi; ci++)
		if (!c.seen[ci] && churn_key_of(owner, ci)->k.val_ver)
			violation(
			    V_WALK,
			    "%s %s %s: live member (churn key %u, version "
			    "%" PRIu64 ") not visited",
			    w->who, what, coll, ci,
			    churn_key_of(owner, ci)->k.val_ver);
}

static void churn_walk(struct worker *w, dskvs *s, unsigned int u,
                       const char *what)
{
	churn_walk_of(w, s, w->idx, u, what);
}

/* Kill coll unit u: delete_all, or delete each live member in turn. */
static void churn_kill_coll(struct worker *w, dskvs *s, unsigned int u)
{
	struct churn_unit *cu = churn_unit(w->idx, u);
	unsigned int lo = CHURN_KEYS + (u - CHURN_KEYS) * CHURN_MEMBERS;
	char coll[KEY_NAME_MAX];
	churn_coll_name(coll, sizeof coll, w->idx, u, cu->birth);
	if (rng_next(&w->rng) & 1) {
		bool any = false;
		for (unsigned int ci = lo; ci < lo + CHURN_MEMBERS; ci++) {
			struct churn_key *ck = churn_key_of(w->idx, ci);
			uint64_t v = ++cu->ver;
			any |= ck->k.val_ver != 0;
			ck->k.ver = v;
			atomic_store_explicit(&ck->k.started, v,
			                      memory_order_release);
			atomic_store_explicit(&ck->k.del_started, v,
			                      memory_order_release);
		}
		uint64_t seq = 0;
		int rc = dskvs_delete_all_seq(s, coll, &seq);
		bump(&w->ops[OP_DELETE_ALL]);
		if (rc != (any ? DSKVS_OK : DSKVS_NOTFOUND))
			violation(rc == DSKVS_OK         ? V_RESURRECTED
			          : rc == DSKVS_NOTFOUND ? V_LOST
			                                 : V_RC,
			          "%s churn delete_all %s: expected %s, got %s",
			          w->who, coll,
			          any ? "DSKVS_OK" : "DSKVS_NOTFOUND",
			          rc_name(rc));
		for (unsigned int ci = lo; ci < lo + CHURN_MEMBERS; ci++) {
			struct churn_key *ck = churn_key_of(w->idx, ci);
			ck->k.val_ver = 0;
			atomic_store_explicit(&ck->k.pub, PUB(ck->k.ver, 0),
			                      memory_order_release);
		}
		if (rc == DSKVS_OK) {
			w->last_seq = seq;
			if (R.sync_mode == DSKVS_SYNC_ALWAYS)
				check_durable(w, s, seq,
				              "churn delete_all (sync always)",
				              coll);
		}
	} else {
		for (unsigned int ci = lo; ci < lo + CHURN_MEMBERS; ci++)
			if (churn_key_of(w->idx, ci)->k.val_ver)
				churn_del(w, s, ci);
	}
	cu->alive = false;
	bump(&w->churn_died);
	/* Dead: its walk visits nothing, and there is nothing to delete. */
	churn_walk(w, s, u, "churn get_all after death of");
	int rc = dskvs_delete_all(s, coll);
	if (rc != DSKVS_NOTFOUND)
		violation(rc == DSKVS_OK ? V_RESURRECTED : V_RC,
		          "%s churn delete_all %s after its death: expected "
		          "DSKVS_NOTFOUND, got %s",
		          w->who, coll, rc_name(rc));
}

static void churn_step(struct worker *w, dskvs *s)
{
	unsigned int u =
	    (unsigned int)rng_below(&w->rng, CHURN_KEYS + CHURN_COLLS);
	struct churn_unit *cu = churn_unit(w->idx, u);
	unsigned int r = (unsigned int)rng_below(&w->rng, 100);
	bump(&w->churn);
	if (u < CHURN_KEYS) { /* a short-lived key */
		if (!cu->alive) {
			churn_birth(w, u);
			churn_put(w, s, u);
		} else if (r < 35) {
			churn_put(w, s, u);
		} else if (r < 50) {
			churn_ryw(w, s, u, "churn get of own key");
		} else if (r < 60) {
			churn_walk(w, s, u, "churn get_all of own");
		} else {
			churn_del(w, s, u);
			cu->alive = false;
			bump(&w->churn_died);
		}
		return;
	}
	unsigned int lo = CHURN_KEYS + (u - CHURN_KEYS) * CHURN_MEMBERS;
	unsigned int ci = lo + (unsigned int)rng_below(&w->rng, CHURN_MEMBERS);
	if (!cu->alive) { /* a short-lived collection */
		churn_birth(w, u);
		for (unsigned int i = lo; i < lo + CHURN_MEMBERS; i++)
			churn_put(w, s, i);
		churn_walk(w, s, u, "churn get_all after creating");
	} else if (r < 30) {
		churn_put(w, s, ci);
	} else if (r < 45) {
		churn_ryw(w, s, ci, "churn get of own member");
	} else if (r < 60) {
		churn_walk(w, s, u, "churn get_all of own");
	} else if (r < 75) {
		churn_del(w, s, ci);
		bool any = false;
		for (unsigned int i = lo; i < lo + CHURN_MEMBERS; i++)
			any |= churn_key_of(w->idx, i)->k.val_ver != 0;
		if (!any) { /* its last member: the collection died */
			cu->alive = false;
			bump(&w->churn_died);
		}
	} else {
		churn_kill_coll(w, s, u);
	}
}

/* A reader's get of another writer's churn key: see the rules above. */
static void churn_read(struct worker *w, dskvs *s)
{
	unsigned int owner = (unsigned int)rng_below(&w->rng, R.ks.writers);
	unsigned int ci = (unsigned int)rng_below(&w->rng, CHURN_PER_W);
	struct churn_key *ck = churn_key_of(owner, ci);
	uint64_t p = atomic_load_explicit(&ck->k.pub, memory_order_acquire);
	uint64_t b = atomic_load_explicit(&ck->pbirth, memory_order_acquire);
	char key[KEY_NAME_MAX];
	size_t len = 0;
	bump(&w->churn);
	if (b == 0)
		return; /* never born */
	churn_key_name(key, sizeof key, owner, ci, b);
	int rc = churn_get(s, key, w->rbuf, &len);
	bump(&w->ops[OP_GET]);
	uint64_t started =
	    atomic_load_explicit(&ck->k.started, memory_order_acquire);
	uint64_t dels =
	    atomic_load_explicit(&ck->k.del_started, memory_order_acquire);
	bool same_life = PUB_VER(p) >= b;
	if (rc == DSKVS_NOTFOUND) {
		if (same_life && PUB_PRESENT(p) && dels <= PUB_VER(p))
			violation(
			    V_LOST,
			    "%s churn get %s: expected version >= %" PRIu64
			    " (published before the get; no delete began "
			    "since), got not found",
			    w->who, key, PUB_VER(p));
		return;
	}
	if (rc != DSKVS_OK) {
		violation(V_RC, "%s churn get %s: got %s", w->who, key,
		          rc_name(rc));
		return;
	}
	struct sv_info in;
	if (!churn_value_ok(w->who, "churn get", key, owner, ci, w->rbuf, len,
	                    &in))
		return;
	uint64_t floor = same_life ? PUB_VER(p) : b;
	if (in.version < floor)
		violation(V_STALE,
		          "%s churn get %s: expected version >= %" PRIu64
		          " (%s), got version %" PRIu64,
		          w->who, key, floor,
		          same_life ? "published before the get"
		                    : "the birth its name carries",
		          in.version);
	else if (in.version > started)
		violation(V_PHANTOM,
		          "%s churn get %s: got version %" PRIu64
		          ", newer than any operation begun (%" PRIu64 ")",
		          w->who, key, in.version, started);
}

/* ---- the atomic mix (--atomic P)
 * ---------------------------------------------------------------------
 *
 * P% of every writer's steps (and of every reader's) go to the calls of
 * issue 13 that decide and write under the collection's lock:
 *
 * Counters. NCTR_UPD counters incremented with dskvs_update() and NCTR_CAS
 * incremented with a dskvs_get_seq() + dskvs_put_if_seq() loop, by every
 * writer (stress.h). A counter only ever changes by +1, so its value is
 * the number of increments applied. Per counter two atomics: `begun`
 * (incremented, seq_cst, before an increment's call; taken back after a
 * call that changed nothing) and `done` (incremented after the call
 * returned DSKVS_OK). A read that loads `done` before it and `begun`
 * after it must see d0 <= value <= b1: every increment that returned
 * before the read began is applied (the read-your-writes rule of section
 * 3, for all threads), and no increment that had not begun by the end of
 * the read can be (else: a lost update shows as stale, a double-applied
 * one as phantom). Inside the update callback the value seen must obey
 * the same bounds (the callback runs at the increment's linearisation
 * point), and so must the value a CAS loop read. While every thread is
 * parked (reopen checks, the end) nothing is in flight: each counter must
 * equal `done` exactly, before the close and after the reopen, and its
 * version must be the same on both sides of the close (versions are
 * stable across close/open). One update call in 16 returns KEEP and one
 * in 16 aborts with our own code: both must leave the counter, and *seq,
 * unchanged (the exact count would show any change), and the abort code
 * must come back as is. A CAS that fails must report a current version
 * other than the one expected, and the next read must see a version at
 * least that one (versions grow); one that succeeds must give a version
 * above the one it replaced.
 *
 * put_if_absent races. Keys "pia/p<n>" of this epoch (an epoch ends at
 * each reopen check, which checks them and deletes the collection, so the
 * next epoch's keys are fresh again, over tombstones). `next` is the
 * frontier: a writer loads it, calls put_if_absent on key n and then
 * moves the frontier from n to n + 1 (a CAS: only the first mover moves
 * it). So every writer that loaded n before the first mover raced on the
 * same fresh key, and a writer attempts a key at most once. Exactly one
 * call may win per key: `wins[n]` counts DSKVS_OK answers (a second one
 * is a `winners` violation at once); the winner stores its id and the
 * version it got, a loser must get DSKVS_EEXIST with the version of the
 * value there, which a read must confirm (a whole value, not its own).
 * Parked: every key below the frontier has exactly one winner and holds
 * its value with its version (before the close and after the reopen);
 * the frontier key is absent. Readers read keys below the frontier: if a
 * winner was recorded before the read, they must see its value.
 *
 * Batches (dskvs_write_batch) and hot backup (dskvs_backup) come next:
 * each gets a subsection here (its own collection, its own per-thread
 * step in atomic_step(), its own parked check in verify_atomic()), and a
 * line in stress/README.md "The atomic mix".
 */
#define PIA_MAX                                                            \
	(1u << 16)            /* put_if_absent keys per epoch (the rest of \
	                       * an epoch reads counters instead) */
#define PIA_KID   0x70000000u /* key id base for pia values' self-check */
#define CAS_TRIES 1000000     /* a CAS loop this long is a livelock */

static struct {
	char key[NCTR][KEY_NAME_MAX];
	_Atomic uint64_t begun[NCTR], done[NCTR];
	uint64_t seq_snap[NCTR]; /* main only: versions before the close */
	/* put_if_absent races of this epoch; reset by main while parked. */
	_Atomic uint32_t next;
	_Atomic uint32_t *wins, *winner, *attempts; /* PIA_MAX each */
	_Atomic uint64_t *wseq;
	uint64_t epoch; /* version in this epoch's pia values; main writes
	                 * it while parked (the park mutex orders it) */
	/* totals, relaxed */
	_Atomic uint64_t upd, keep, abort, cas, conflicts, reads;
	_Atomic uint64_t pia, pia_won, pia_lost, pia_contested, pia_keys;
} AT;

static inline void bump_at(_Atomic uint64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static int amix_init(void)
{
	for (unsigned int i = 0; i < NCTR; i++)
		ctr_key(AT.key[i], sizeof AT.key[i], i);
	AT.wins = calloc(PIA_MAX, sizeof *AT.wins);
	AT.winner = calloc(PIA_MAX, sizeof *AT.winner);
	AT.attempts = calloc(PIA_MAX, sizeof *AT.attempts);
	AT.wseq = calloc(PIA_MAX, sizeof *AT.wseq);
	AT.epoch = 1;
	return AT.wins && AT.winner && AT.attempts && AT.wseq ? 0 : -1;
}

static void amix_free(void)
{
	free(AT.wins);
	free(AT.winner);
	free(AT.attempts);
	free(AT.wseq);
}

/*
 * Check a counter read (rc, buf[0..len), version seq) against
 * lo <= count <= hi. Returns true with *count set when it is a whole
 * counter value (or absent: count 0), whatever the bounds said.
 */
static bool ctr_read_ok(const char *who, const char *what, unsigned int i,
                        int rc, const void *buf, size_t len, uint64_t seq,
                        uint64_t lo, uint64_t hi, uint64_t *count)
{
	char why[200];
	*count = 0;
	if (rc == DSKVS_NOTFOUND) {
		if (seq != 0)
			violation(V_VERSION,
			          "%s %s %s: not found but version %" PRIu64,
			          who, what, AT.key[i], seq);
		if (lo > 0)
			violation(V_LOST,
			          "%s %s %s: not found, but %" PRIu64
			          " increments had returned before",
			          who, what, AT.key[i], lo);
		return true;
	}
	if (rc == DSKVS_ERANGE) {
		violation(V_TORN, "%s %s %s: %zu bytes, a counter has %u", who,
		          what, AT.key[i], len, CTR_LEN);
		return false;
	}
	if (rc != DSKVS_OK) {
		violation(V_RC, "%s %s %s: got %s (%s)", who, what, AT.key[i],
		          rc_name(rc), dskvs_errmsg(NULL));
		return false;
	}
	if (!ctr_check(buf, len, i, count, why, sizeof why)) {
		violation(V_TORN, "%s %s %s: %s", who, what, AT.key[i], why);
		return false;
	}
	if (seq == 0)
		violation(V_VERSION, "%s %s %s: a value with version 0", who,
		          what, AT.key[i]);
	if (*count < lo)
		violation(V_STALE,
		          "%s %s %s: count %" PRIu64 ", but %" PRIu64
		          " increments had returned before the read (a lost "
		          "update, or a stale read)",
		          who, what, AT.key[i], *count, lo);
	else if (*count > hi)
		violation(V_PHANTOM,
		          "%s %s %s: count %" PRIu64 ", but only %" PRIu64
		          " increments had begun by the end of the read",
		          who, what, AT.key[i], *count, hi);
	return true;
}

static void ctr_read(struct worker *w, dskvs *s, unsigned int i,
                     const char *what, uint64_t lo_own)
{
	unsigned char buf[CTR_LEN + 8];
	size_t len = 0;
	uint64_t seq = 0, c;
	uint64_t d0 = atomic_load(&AT.done[i]);
	if (d0 < lo_own)
		d0 = lo_own;
	int rc = dskvs_get_seq(s, AT.key[i], buf, sizeof buf, &len, &seq);
	uint64_t b1 = atomic_load(&AT.begun[i]);
	ctr_read_ok(w->who, what, i, rc, buf, len, seq, d0, b1, &c);
	atomic_fetch_add_explicit(&AT.reads, 1, memory_order_relaxed);
}

static void ctr_update(struct worker *w, dskvs *s, unsigned int i)
{
	unsigned int r = (unsigned int)rng_below(&w->rng, 16);
	struct ctr_incr a = { .id = i,
		              .mode = r == 0   ? CTR_KEEP
		                      : r == 1 ? CTR_ABORT
		                               : CTR_SET };
	const uint64_t none = UINT64_MAX;
	uint64_t seq = none;
	uint64_t d0 = atomic_load(&AT.done[i]);
	if (a.mode == CTR_SET)
		atomic_fetch_add(&AT.begun[i], 1);
	int rc = dskvs_update(s, AT.key[i], ctr_incr_fn, &a, &seq);
	uint64_t b1 = atomic_load(&AT.begun[i]);
	if (a.bad) {
		violation(V_TORN, "%s update %s: the callback saw %s", w->who,
		          AT.key[i], a.why);
	} else if (!a.called) {
		violation(V_RC, "%s update %s: callback not called, got %s",
		          w->who, AT.key[i], rc_name(rc));
	} else {
		if (!a.exists && d0 > 0)
			violation(V_LOST,
			          "%s update %s: the callback saw it absent, "
			          "but %" PRIu64 " increments had returned",
			          w->who, AT.key[i], d0);
		else if (a.old < d0 || a.old > b1 - (a.mode == CTR_SET))
			violation(a.old < d0 ? V_STALE : V_PHANTOM,
			          "%s update %s: the callback saw count "
			          "%" PRIu64 ", outside [%" PRIu64 ", %" PRIu64
			          "] (returned before, begun by the end)",
			          w->who, AT.key[i], a.old, d0,
			          b1 - (a.mode == CTR_SET));
	}
	int want = a.mode == CTR_ABORT || a.bad ? CTR_ABORT_RC : DSKVS_OK;
	if (rc != want)
		violation(V_RC, "%s update %s (%s): expected %s, got %s (%s)",
		          w->who, AT.key[i],
		          a.mode == CTR_SET    ? "set"
		          : a.mode == CTR_KEEP ? "keep"
		                               : "abort",
		          want == DSKVS_OK ? "DSKVS_OK" : "our abort code",
		          rc_name(rc), dskvs_errmsg(s));
	if (a.mode != CTR_SET || rc != DSKVS_OK) {
		if (a.mode == CTR_SET)
			atomic_fetch_sub(&AT.begun[i], 1); /* changed nothing */
		if (seq != none)
			violation(V_VERSION,
			          "%s update %s: changed nothing but set *seq "
			          "to %" PRIu64,
			          w->who, AT.key[i], seq);
		bump_at(a.mode == CTR_KEEP ? &AT.keep : &AT.abort);
		return;
	}
	atomic_fetch_add(&AT.done[i], 1);
	bump_at(&AT.upd);
	if (seq == none || seq == 0) {
		violation(V_VERSION, "%s update %s: set, but *seq is %" PRIu64,
		          w->who, AT.key[i], seq);
		return;
	}
	w->last_seq = seq;
	if (R.sync_mode == DSKVS_SYNC_ALWAYS)
		check_durable(w, s, seq, "update (sync always)", AT.key[i]);
	if (rng_below(&w->rng, 4) == 0)
		ctr_read(w, s, i, "get after own update of", a.old + 1);
}

static void ctr_cas(struct worker *w, dskvs *s, unsigned int i)
{
	unsigned char buf[CTR_LEN + 8], nv[CTR_LEN];
	uint64_t d0 = atomic_load(&AT.done[i]);
	atomic_fetch_add(&AT.begun[i], 1);
	uint64_t floor = 0; /* version the last conflict reported */
	for (unsigned long t = 0; t < CAS_TRIES; t++) {
		size_t len = 0;
		uint64_t q = 0, c, nq = 0;
		int rc = dskvs_get_seq(s, AT.key[i], buf, sizeof buf, &len, &q);
		uint64_t b1 = atomic_load(&AT.begun[i]);
		if (!ctr_read_ok(w->who, "CAS read of", i, rc, buf, len, q, d0,
		                 b1 - 1, &c))
			break;
		if (q < floor)
			violation(V_VERSION,
			          "%s CAS %s: read version %" PRIu64
			          ", older than the current version %" PRIu64
			          " a failed put_if_seq reported before",
			          w->who, AT.key[i], q, floor);
		ctr_fill(nv, i, c + 1);
		rc = dskvs_put_if_seq(s, AT.key[i], nv, CTR_LEN, q, &nq);
		if (rc == DSKVS_ECONFLICT) {
			bump_at(&AT.conflicts);
			if (nq == q)
				violation(V_VERSION,
				          "%s put_if_seq %s: DSKVS_ECONFLICT, "
				          "but the current version is the "
				          "expected %" PRIu64,
				          w->who, AT.key[i], q);
			floor = nq;
			continue;
		}
		if (rc != DSKVS_OK) {
			violation(V_RC, "%s put_if_seq %s: got %s (%s)", w->who,
			          AT.key[i], rc_name(rc), dskvs_errmsg(s));
			break;
		}
		atomic_fetch_add(&AT.done[i], 1);
		bump_at(&AT.cas);
		if (nq <= q)
			violation(V_VERSION,
			          "%s put_if_seq %s: new version %" PRIu64
			          " not above the replaced %" PRIu64,
			          w->who, AT.key[i], nq, q);
		w->last_seq = nq;
		if (R.sync_mode == DSKVS_SYNC_ALWAYS)
			check_durable(w, s, nq, "put_if_seq (sync always)",
			              AT.key[i]);
		if (rng_below(&w->rng, 4) == 0)
			ctr_read(w, s, i, "get after own put_if_seq of", c + 1);
		return;
	}
	atomic_fetch_sub(&AT.begun[i], 1); /* changed nothing */
}

static void pia_key(char *buf, size_t cap, uint32_t n)
{
	snprintf(buf, cap, "pia/p%" PRIu32, n);
}

/* Read pia key n: a whole value of this epoch; the winner's, with its
 * version, when `win` (winner id + 1) is known. Returns the value's writer
 * or -1. */
static long pia_check(const char *who, const char *what, dskvs *s,
                      unsigned char *buf, uint32_t n, uint32_t win,
                      uint64_t wseq, uint64_t *seq_out)
{
	char key[KEY_NAME_MAX], why[256];
	size_t len = 0;
	uint64_t q = 0;
	pia_key(key, sizeof key, n);
	int rc = dskvs_get_seq(s, key, buf, R.o->value_max, &len, &q);
	if (seq_out)
		*seq_out = q;
	if (rc == DSKVS_NOTFOUND) {
		if (win)
			violation(V_LOST,
			          "%s %s %s: not found, but writer %u created "
			          "it (version %" PRIu64 ")",
			          who, what, key, win - 1, wseq);
		return -1;
	}
	if (rc != DSKVS_OK) {
		violation(V_RC, "%s %s %s: got %s", who, what, key,
		          rc_name(rc));
		return -1;
	}
	struct sv_info in;
	if (!sv_check(R.o, buf, len, &in, why, sizeof why)) {
		violation(V_TORN, "%s %s %s: not a whole value: %s", who, what,
		          key, why);
		return -1;
	}
	if (in.key != PIA_KID + n || in.version != AT.epoch ||
	    in.writer >= R.ks.writers) {
		violation(V_MISDIRECTED,
		          "%s %s %s: a value of key id %" PRIu32
		          " writer %" PRIu32 " version %" PRIu64
		          ", expected key id %" PRIu32 " version %" PRIu64,
		          who, what, key, in.key, in.writer, in.version,
		          PIA_KID + n, AT.epoch);
		return -1;
	}
	if (win && (in.writer != win - 1 || q != wseq))
		violation(V_WINNERS,
		          "%s %s %s: the value of writer %" PRIu32
		          " version %" PRIu64
		          ", but writer %u won it with version %" PRIu64,
		          who, what, key, in.writer, q, win - 1, wseq);
	return in.writer;
}

static void pia_race(struct worker *w, dskvs *s)
{
	uint32_t n = atomic_load(&AT.next);
	if (n >= PIA_MAX) {
		ctr_read(w, s, (unsigned int)rng_below(&w->rng, NCTR), "get",
		         0);
		return;
	}
	char key[KEY_NAME_MAX];
	pia_key(key, sizeof key, n);
	uint32_t kid = PIA_KID + n;
	size_t len = sv_len(R.o, kid, AT.epoch);
	sv_fill(w->wbuf, len, kid, w->idx, AT.epoch);
	if (atomic_fetch_add(&AT.attempts[n], 1) == 1)
		bump_at(&AT.pia_contested);
	uint64_t q = 0;
	int rc = dskvs_put_if_absent(s, key, w->wbuf, len, &q);
	bump_at(&AT.pia);
	if (rc == DSKVS_OK) {
		bump_at(&AT.pia_won);
		uint32_t prior = atomic_fetch_add(&AT.wins[n], 1);
		if (prior)
			violation(V_WINNERS,
			          "%s put_if_absent %s: DSKVS_OK, but writer "
			          "%u had already won it",
			          w->who, key, atomic_load(&AT.winner[n]) - 1);
		atomic_store(&AT.wseq[n], q);
		atomic_store(&AT.winner[n], w->idx + 1);
		if (q == 0)
			violation(
			    V_VERSION,
			    "%s put_if_absent %s: DSKVS_OK with version 0",
			    w->who, key);
		w->last_seq = q;
		if (R.sync_mode == DSKVS_SYNC_ALWAYS)
			check_durable(w, s, q, "put_if_absent (sync always)",
			              key);
		pia_check(w->who, "get after own put_if_absent of", s, w->rbuf,
		          n, w->idx + 1, q, NULL);
	} else if (rc == DSKVS_EEXIST) {
		bump_at(&AT.pia_lost);
		uint64_t got = 0;
		long who = pia_check(w->who, "get after DSKVS_EEXIST on", s,
		                     w->rbuf, n, 0, 0, &got);
		if (who == (long)w->idx)
			violation(V_WINNERS,
			          "%s put_if_absent %s: DSKVS_EEXIST, but the "
			          "value is this writer's own (it never won)",
			          w->who, key);
		else if (who >= 0 && got != q)
			violation(V_VERSION,
			          "%s put_if_absent %s: DSKVS_EEXIST gave "
			          "version %" PRIu64 ", a read gives %" PRIu64,
			          w->who, key, q, got);
	} else {
		violation(V_RC, "%s put_if_absent %s: got %s (%s)", w->who, key,
		          rc_name(rc), dskvs_errmsg(s));
		return;
	}
	uint32_t expect = n;
	atomic_compare_exchange_strong(&AT.next, &expect, n + 1);
}

static void pia_read(struct worker *w, dskvs *s)
{
	uint32_t hi = atomic_load(&AT.next);
	if (!hi)
		return;
	uint32_t n = (uint32_t)rng_below(&w->rng, hi);
	uint32_t win = atomic_load(&AT.winner[n]);
	uint64_t wseq = atomic_load(&AT.wseq[n]);
	/* The winner stores wseq before winner: win != 0 means wseq is its. */
	pia_check(w->who, "get", s, w->rbuf, n, win, win ? wseq : 0, NULL);
	bump_at(&AT.reads);
}

/* ---- batches and hot backup (the atomic mix, continued) -------------------
 *
 * Batches (stress.h "batches"): owned collections "bo<w>" with an exact
 * model (only writer w writes bo<w>, so its batches apply in number
 * order: `ostarted` is stored before the call, `opub` after it returned)
 * and BAT_SHARED collections "bs<j>" that every writer writes (numbers
 * from one counter per collection, so they apply in any order).
 *
 * Every get_all of a batch collection (bat_walk) must see exactly one
 * batch: one batch number on every member visited, and the member set of
 * that batch's pattern. Sound because every batch writes every member of
 * its collection (puts or deletes), nothing else writes them, and
 * dskvs_get_all sees all of a batch or none of it: the state it sees is
 * the state after some whole batch. Which batch: owned, a batch in
 * [opub before the walk, ostarted after it] (the published-version rule
 * for a whole collection); shared, a number handed out by the end of the
 * walk. No member at all is allowed only where a batch that deletes every
 * member may be the one seen (owned: one numbered in that window, or 0;
 * shared: one begun by the end of the walk, or no batch returned before
 * it began). The owner reads its own batch right after it returned: it
 * must see exactly it. Rejected batches (DSKVS_EBATCH: more ops than the
 * limit; DSKVS_EINVAL: no ops) must change nothing: the owner's next walk
 * sees its last batch, and their values (version BAT_REJECT) never show.
 *
 * Parked (reopen checks, the end): each owned collection holds exactly
 * its last batch (walk and gets), before the close and after the reopen;
 * each shared one exactly the batch with the highest *seq among those
 * that returned (`top`): batches of one collection get their numbers
 * under its lock, so seq order is the order they were applied in, and
 * the last applied wins whole.
 *
 * Hot backup: see backup_step().
 */
#define BACKUP_EVERY 1.0    /* seconds between backups */
#define EBATCH_OPS   16385u /* over the default limit (16384) */

static struct {
	_Atomic uint64_t *opub, *ostarted; /* per writer */
	_Atomic uint64_t snext[BAT_SHARED], sret[BAT_SHARED];
	_Atomic int sdel_begun[BAT_SHARED];
	pthread_mutex_t mu; /* top_seq, top_b */
	uint64_t top_seq[BAT_SHARED], top_b[BAT_SHARED];
	pthread_mutex_t big_mu; /* big: one rejected batch at a time */
	dskvs_batch_op *big;
	_Atomic uint64_t next_backup_ms;
	_Atomic unsigned int backup_no;
	/* totals, relaxed */
	_Atomic uint64_t batches, batch_ops, rejected, walks, mixed_seen;
	_Atomic uint64_t backups, backup_keys;
} BT;

static int bt_init(void)
{
	BT.opub = calloc(R.ks.writers, sizeof *BT.opub);
	BT.ostarted = calloc(R.ks.writers, sizeof *BT.ostarted);
	BT.big = calloc(EBATCH_OPS, sizeof *BT.big);
	pthread_mutex_init(&BT.mu, NULL);
	pthread_mutex_init(&BT.big_mu, NULL);
	atomic_store(&BT.next_backup_ms,
	             (uint64_t)((now_s() + BACKUP_EVERY) * 1000));
	return BT.opub && BT.ostarted && BT.big ? 0 : -1;
}

static void bt_free(void)
{
	free(BT.opub);
	free(BT.ostarted);
	free(BT.big);
	pthread_mutex_destroy(&BT.mu);
	pthread_mutex_destroy(&BT.big_mu);
}

static bool any_all_del(uint64_t lo, uint64_t hi)
{
	for (uint64_t b = lo; b <= hi; b++)
		if (bat_all_del(b))
			return true;
	return false;
}

/* Check a walk of bo<ow> against the window [lo, hi]. */
static void bat_check_owned(const char *who, const char *what, dskvs *s,
                            unsigned int ow, uint64_t lo, uint64_t hi,
                            struct bat_seen *out)
{
	char coll[16];
	bat_coll_name(coll, sizeof coll, false, ow);
	if (!bat_walk(R.o, s, who, what, coll, ow, bat_k_owned(ow), out))
		return;
	if (!out->b) {
		if (!any_all_del(lo, hi))
			violation(V_BATCH,
			          "%s %s %s: no member, but every batch from "
			          "%" PRIu64 " to %" PRIu64 " puts some",
			          who, what, coll, lo, hi);
	} else if (out->b < lo) {
		violation(V_STALE,
		          "%s %s %s: batch %" PRIu64 ", but batch %" PRIu64
		          " had returned before",
		          who, what, coll, out->b, lo);
	} else if (out->b > hi) {
		violation(V_PHANTOM,
		          "%s %s %s: batch %" PRIu64 ", only %" PRIu64
		          " begun by the end",
		          who, what, coll, out->b, hi);
	}
}

/* Check a walk of bs<j>: empty_ok says whether no member is allowed, hi
 * is the last number handed out. live: s is the live store, so hi and
 * "a batch that deletes every member had begun" are loaded after the
 * walk (then hi is ignored). */
static void bat_check_shared(const char *who, const char *what, dskvs *s,
                             unsigned int j, uint64_t hi, bool empty_ok,
                             bool live, struct bat_seen *out)
{
	char coll[16];
	bat_coll_name(coll, sizeof coll, true, j);
	bool ok = bat_walk(R.o, s, who, what, coll, BAT_CI_SHARED + j,
	                   bat_k_shared(j), out);
	if (live) {
		hi = atomic_load(&BT.snext[j]);
		empty_ok = empty_ok || atomic_load(&BT.sdel_begun[j]);
	}
	if (!ok)
		return;
	if (!out->b && !empty_ok)
		violation(V_BATCH,
		          "%s %s %s: no member, but a batch had returned and "
		          "none that deletes every member had begun",
		          who, what, coll);
	else if (out->b > hi)
		violation(V_PHANTOM,
		          "%s %s %s: batch %" PRIu64 ", only %" PRIu64
		          " handed out by the end",
		          who, what, coll, out->b, hi);
}

static void bat_read(struct worker *w, dskvs *s)
{
	struct bat_seen out;
	unsigned int j =
	    (unsigned int)rng_below(&w->rng, R.ks.writers + BAT_SHARED);
	if (j < R.ks.writers) {
		uint64_t lo = atomic_load(&BT.opub[j]);
		/* bat_walk runs before hi is loaded: the walk's window. */
		char coll[16];
		bat_coll_name(coll, sizeof coll, false, j);
		struct bat_seen tmp;
		bool ok = bat_walk(R.o, s, w->who, "get_all", coll, j,
		                   bat_k_owned(j), &tmp);
		uint64_t hi = atomic_load(&BT.ostarted[j]);
		out = tmp;
		if (ok) {
			if (!out.b && !any_all_del(lo, hi))
				violation(V_BATCH,
				          "%s get_all %s: no member, but every "
				          "batch from %" PRIu64 " to %" PRIu64
				          " puts some",
				          w->who, coll, lo, hi);
			else if (out.b && out.b < lo)
				violation(V_STALE,
				          "%s get_all %s: batch %" PRIu64
				          ", but batch %" PRIu64
				          " had returned before",
				          w->who, coll, out.b, lo);
			else if (out.b > hi)
				violation(V_PHANTOM,
				          "%s get_all %s: batch %" PRIu64
				          ", only %" PRIu64 " begun by the end",
				          w->who, coll, out.b, hi);
		}
	} else {
		j -= R.ks.writers;
		uint64_t r0 = atomic_load(&BT.sret[j]);
		char coll[16];
		bat_coll_name(coll, sizeof coll, true, j);
		bool ok = bat_walk(R.o, s, w->who, "get_all", coll,
		                   BAT_CI_SHARED + j, bat_k_shared(j), &out);
		uint64_t hi = atomic_load(&BT.snext[j]);
		bool del = atomic_load(&BT.sdel_begun[j]);
		if (ok && !out.b && r0 && !del)
			violation(V_BATCH,
			          "%s get_all %s: no member, but a batch had "
			          "returned and none that deletes every member "
			          "had begun",
			          w->who, coll);
		else if (ok && out.b > hi)
			violation(V_PHANTOM,
			          "%s get_all %s: batch %" PRIu64
			          ", only %" PRIu64 " handed out by the end",
			          w->who, coll, out.b, hi);
	}
	bump_at(&BT.walks);
}

static int bat_write(struct worker *w, dskvs *s, const char *coll, uint32_t ci,
                     unsigned int k, uint64_t b, uint64_t *seq)
{
	dskvs_batch_op ops[BAT_KMAX + 1];
	char names[BAT_KMAX][8];
	size_t n = bat_ops(R.o, ops, names, w->bbuf, ci, k, b, w->idx);
	*seq = 0;
	int rc = dskvs_write_batch(s, coll, ops, n, seq);
	if (rc != DSKVS_OK) {
		violation(V_RC,
		          "%s write_batch %s (batch %" PRIu64 "): got %s (%s)",
		          w->who, coll, b, rc_name(rc), dskvs_errmsg(s));
		return rc;
	}
	bump_at(&BT.batches);
	atomic_fetch_add_explicit(&BT.batch_ops, n, memory_order_relaxed);
	if (*seq == 0)
		violation(V_VERSION, "%s write_batch %s: DSKVS_OK, *seq 0",
		          w->who, coll);
	w->last_seq = *seq;
	if (R.sync_mode == DSKVS_SYNC_ALWAYS && *seq)
		check_durable(w, s, *seq, "write_batch (sync always)", coll);
	return rc;
}

/* Batches that must be rejected whole: too many ops, no ops. */
static void bat_reject(struct worker *w, dskvs *s)
{
	char coll[16];
	bat_coll_name(coll, sizeof coll, false, w->idx);
	uint64_t v = BAT_REJECT | 1;
	size_t len = sv_len(R.o, bat_kid(w->idx, 0), v);
	sv_fill(w->wbuf, len, bat_kid(w->idx, 0), w->idx, v);
	pthread_mutex_lock(&BT.big_mu);
	for (unsigned int i = 0; i < EBATCH_OPS; i++)
		BT.big[i] = (dskvs_batch_op){ "m0", w->wbuf, len, 0 };
	uint64_t seq = 7;
	int rc = dskvs_write_batch(s, coll, BT.big, EBATCH_OPS, &seq);
	if (rc != DSKVS_EBATCH)
		violation(V_RC,
		          "%s write_batch %s of %u ops: expected DSKVS_EBATCH, "
		          "got %s",
		          w->who, coll, EBATCH_OPS, rc_name(rc));
	rc = dskvs_write_batch(s, coll, BT.big, 0, &seq);
	pthread_mutex_unlock(&BT.big_mu);
	if (rc != DSKVS_EINVAL)
		violation(V_RC,
		          "%s write_batch %s of 0 ops: expected DSKVS_EINVAL, "
		          "got %s",
		          w->who, coll, rc_name(rc));
	if (seq != 7)
		violation(
		    V_VERSION,
		    "%s write_batch %s: rejected, but *seq set to %" PRIu64,
		    w->who, coll, seq);
	bump_at(&BT.rejected);
	uint64_t b = atomic_load(&BT.opub[w->idx]);
	struct bat_seen out;
	bat_check_owned(w->who, "get_all after rejected batches of", s, w->idx,
	                b, b, &out);
}

static void bat_own(struct worker *w, dskvs *s)
{
	if (rng_below(&w->rng, 500) == 0) {
		bat_reject(w, s);
		return;
	}
	char coll[16];
	bat_coll_name(coll, sizeof coll, false, w->idx);
	uint64_t b = atomic_load(&BT.ostarted[w->idx]) + 1;
	atomic_store(&BT.ostarted[w->idx], b);
	uint64_t seq;
	if (bat_write(w, s, coll, w->idx, bat_k_owned(w->idx), b, &seq) !=
	    DSKVS_OK) {
		atomic_store(&BT.ostarted[w->idx], b - 1); /* no change */
		return;
	}
	atomic_store(&BT.opub[w->idx], b);
	struct bat_seen out;
	bat_check_owned(w->who, "get_all after own batch of", s, w->idx, b, b,
	                &out);
}

static void bat_shared(struct worker *w, dskvs *s)
{
	unsigned int j = (unsigned int)rng_below(&w->rng, BAT_SHARED);
	char coll[16];
	bat_coll_name(coll, sizeof coll, true, j);
	uint64_t b = atomic_fetch_add(&BT.snext[j], 1) + 1;
	if (bat_all_del(b))
		atomic_store(&BT.sdel_begun[j], 1);
	uint64_t seq;
	if (bat_write(w, s, coll, BAT_CI_SHARED + j, bat_k_shared(j), b,
	              &seq) != DSKVS_OK)
		return; /* reported; the parked check will say more */
	pthread_mutex_lock(&BT.mu);
	if (seq > BT.top_seq[j]) {
		BT.top_seq[j] = seq;
		BT.top_b[j] = b;
	}
	pthread_mutex_unlock(&BT.mu);
	atomic_fetch_add(&BT.sret[j], 1);
	struct bat_seen out;
	bat_check_shared(w->who, "get_all after own batch of", s, j, 0,
	                 bat_all_del(b), true, &out);
}

static void rm_cb_dir(const char *path)
{
	/* A backup directory: its files, then itself (no subdirectories). */
	DIR *d = opendir(path);
	if (d) {
		struct dirent *e;
		char p[4500];
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			snprintf(p, sizeof p, "%s/%s", path, e->d_name);
			if (unlink(p) != 0)
				fprintf(stderr,
				        "dskvs-stress: cannot remove %s\n", p);
		}
		closedir(d);
	}
	rmdir(path);
}

/*
 * Hot backup, taken by a writer (one every BACKUP_EVERY s) while every
 * other thread goes on. Before the call it loads, for every owned key,
 * `pub`; for the counters `done`; for the owned batch collections
 * `opub`; for the shared ones `sret`. After it returns it loads
 * `started`, `del_started`, `begun`, `ostarted`, `snext`, `sdel_begun`.
 * The backup is the state of the store at one moment M during the call,
 * so each thing in it is in the state some operation begun before M left
 * it, and no older than what the last operation that returned before
 * the call left: the window rules of the readers, with the whole call as
 * the read. So, opened: every owned key's version in [pub, started], and
 * absent only if pub says absent or a delete began after it; every
 * counter in [done, begun]; every batch collection exactly one whole
 * batch, owned in [opub, ostarted]; shared keys whole values of their key.
 * The writer's own keys (nothing in flight) and counters when no
 * increment ran are exact. Not checked: churn and put_if_absent keys.
 */
static void backup_step(struct worker *w, dskvs *s)
{
	uint32_t n = R.ks.owned;
	uint64_t *p0 = malloc(n * sizeof *p0), *s1 = malloc(n * sizeof *s1),
	         *d1 = malloc(n * sizeof *d1);
	uint64_t *olo = malloc(R.ks.writers * sizeof *olo),
	         *ohi = malloc(R.ks.writers * sizeof *ohi);
	uint64_t c0[NCTR], c1[NCTR], r0[BAT_SHARED], h1[BAT_SHARED];
	int del1[BAT_SHARED];
	char path[4200], what[64];
	if (!p0 || !s1 || !d1 || !olo || !ohi) {
		fprintf(stderr, "dskvs-stress: out of memory\n");
		exit(2);
	}
	unsigned int no = atomic_fetch_add(&BT.backup_no, 1);
	snprintf(path, sizeof path, "%s.bk%u", R.dir, no);
	snprintf(what, sizeof what, "backup %u: get", no);
	for (uint32_t k = 0; k < n; k++)
		p0[k] =
		    atomic_load_explicit(&R.st[k].pub, memory_order_acquire);
	for (unsigned int i = 0; i < NCTR; i++)
		c0[i] = atomic_load(&AT.done[i]);
	for (unsigned int j = 0; j < R.ks.writers; j++)
		olo[j] = atomic_load(&BT.opub[j]);
	for (unsigned int j = 0; j < BAT_SHARED; j++)
		r0[j] = atomic_load(&BT.sret[j]);
	int rc = dskvs_backup(s, path);
	for (uint32_t k = 0; k < n; k++) {
		s1[k] = atomic_load_explicit(&R.st[k].started,
		                             memory_order_acquire);
		d1[k] = atomic_load_explicit(&R.st[k].del_started,
		                             memory_order_acquire);
	}
	for (unsigned int i = 0; i < NCTR; i++)
		c1[i] = atomic_load(&AT.begun[i]);
	for (unsigned int j = 0; j < R.ks.writers; j++)
		ohi[j] = atomic_load(&BT.ostarted[j]);
	for (unsigned int j = 0; j < BAT_SHARED; j++) {
		h1[j] = atomic_load(&BT.snext[j]);
		del1[j] = atomic_load(&BT.sdel_begun[j]);
	}
	dskvs *b = NULL;
	if (rc != DSKVS_OK) {
		violation(V_BACKUP, "%s dskvs_backup(%s): got %s (%s)", w->who,
		          path, rc_name(rc), dskvs_errmsg(s));
		goto out;
	}
	dskvs_options opts;
	store_options(R.o, DSKVS_SYNC_ASYNC, &opts);
	rc = dskvs_open(path, &opts, &b);
	if (rc != DSKVS_OK) {
		violation(V_BACKUP, "%s dskvs_open of backup %s: got %s (%s)",
		          w->who, path, rc_name(rc), dskvs_errmsg(NULL));
		goto out;
	}
	for (uint32_t k = 0; k < n; k++) {
		size_t len = 0;
		rc = dskvs_get(b, R.ks.key[k], w->rbuf, R.o->value_max, &len);
		if (rc == DSKVS_NOTFOUND) {
			if (PUB_PRESENT(p0[k]) && d1[k] <= PUB_VER(p0[k]))
				violation(
				    V_BACKUP,
				    "%s %s: not found, but version %" PRIu64
				    " was written before the backup began "
				    "and no delete began by its end",
				    what, R.ks.key[k], PUB_VER(p0[k]));
			continue;
		}
		struct sv_info in;
		if (rc != DSKVS_OK) {
			violation(V_RC, "%s %s: got %s", what, R.ks.key[k],
			          rc_name(rc));
		} else if (value_ok(w->who, what, k, w->rbuf, len, &in)) {
			if (in.version < PUB_VER(p0[k]))
				violation(V_BACKUP,
				          "%s %s: version %" PRIu64
				          ", but version %" PRIu64
				          " had returned before the backup "
				          "began",
				          what, R.ks.key[k], in.version,
				          PUB_VER(p0[k]));
			else if (in.version > s1[k])
				violation(V_BACKUP,
				          "%s %s: version %" PRIu64
				          ", but only %" PRIu64
				          " had begun by its end",
				          what, R.ks.key[k], in.version, s1[k]);
		}
	}
	for (uint32_t j = 0; j < R.ks.shared; j++) {
		uint32_t k = R.ks.owned + j;
		size_t len = 0;
		struct sv_info in;
		rc = dskvs_get(b, R.ks.key[k], w->rbuf, R.o->value_max, &len);
		if (rc == DSKVS_OK)
			value_ok(w->who, what, k, w->rbuf, len, &in);
		else if (rc != DSKVS_NOTFOUND)
			violation(V_RC, "%s %s: got %s", what, R.ks.key[k],
			          rc_name(rc));
	}
	for (unsigned int i = 0; i < NCTR; i++) {
		unsigned char buf[CTR_LEN + 8];
		size_t len = 0;
		uint64_t q = 0, c;
		rc = dskvs_get_seq(b, AT.key[i], buf, sizeof buf, &len, &q);
		ctr_read_ok(w->who, what, i, rc, buf, len, q, c0[i], c1[i], &c);
	}
	for (unsigned int j = 0; j < R.ks.writers; j++) {
		struct bat_seen out;
		bat_check_owned(w->who, what, b, j, olo[j], ohi[j], &out);
	}
	for (unsigned int j = 0; j < BAT_SHARED; j++) {
		struct bat_seen out;
		bat_check_shared(w->who, what, b, j, h1[j],
		                 r0[j] == 0 || del1[j], false, &out);
	}
	rc = dskvs_close(b);
	if (rc != DSKVS_OK)
		violation(V_BACKUP, "%s dskvs_close of backup %s: got %s",
		          w->who, path, rc_name(rc));
	bump_at(&BT.backups);
	atomic_fetch_add_explicit(&BT.backup_keys, n + R.ks.shared + NCTR,
	                          memory_order_relaxed);
out:
	rm_cb_dir(path);
	free(p0);
	free(s1);
	free(d1);
	free(olo);
	free(ohi);
}

/* One writer at a time takes the backup that is due. */
static bool backup_due(void)
{
	uint64_t t = (uint64_t)(now_s() * 1000);
	uint64_t due = atomic_load(&BT.next_backup_ms);
	return t >= due && atomic_compare_exchange_strong(
	                       &BT.next_backup_ms, &due,
	                       t + (uint64_t)(BACKUP_EVERY * 1000));
}

static void atomic_step(struct worker *w, dskvs *s)
{
	unsigned int r = (unsigned int)rng_below(&w->rng, 10);
	if (w->role == ROLE_WRITER && backup_due()) {
		backup_step(w, s);
		return;
	}
	if (rng_below(&w->rng, 3) == 0) {
		/* Batches: a third of the atomic mix. */
		if (w->role != ROLE_WRITER || r < 3)
			bat_read(w, s);
		else if (r < 7)
			bat_own(w, s);
		else
			bat_shared(w, s);
		return;
	}
	if (w->role != ROLE_WRITER) {
		if (r < 7)
			ctr_read(w, s, (unsigned int)rng_below(&w->rng, NCTR),
			         "get", 0);
		else
			pia_read(w, s);
		return;
	}
	if (r < 4)
		ctr_update(w, s, (unsigned int)rng_below(&w->rng, NCTR_UPD));
	else if (r < 7)
		ctr_cas(w, s,
		        NCTR_UPD + (unsigned int)rng_below(&w->rng, NCTR_CAS));
	else if (r < 9)
		pia_race(w, s);
	else
		ctr_read(w, s, (unsigned int)rng_below(&w->rng, NCTR), "get",
		         0);
}

static void writer_step(struct worker *w, dskvs *s)
{
	const unsigned int all = (1u << OP_NKINDS) - 1;
	if (R.o->churn_pct && rng_below(&w->rng, 100) < R.o->churn_pct) {
		churn_step(w, s);
		return;
	}
	if (R.o->atomic_pct && rng_below(&w->rng, 100) < R.o->atomic_pct) {
		atomic_step(w, s);
		return;
	}
	int op = pick_op(R.o, all, &w->rng);
	bool shared = R.ks.shared && op != OP_SYNC &&
	              rng_below(&w->rng, 100) < R.o->shared_pct;
	switch (op) {
	case OP_GET:
		if (shared) {
			op_get_shared(w, s);
		} else {
			uint32_t k = w->idx * R.ks.keys + pick_key(w);
			size_t len;
			int rc = read_key(w, s, k, &len);
			bump(&w->ops[OP_GET]);
			expect_exact(w->who, "get of own key", k,
			             R.st[k].val_ver, rc, w->rbuf, len);
		}
		break;
	case OP_PUT:
		if (shared)
			op_put_shared(w, s);
		else
			op_put_owned(w, s);
		break;
	case OP_DELETE:
		if (shared)
			op_delete_shared(w, s, false);
		else
			op_delete_owned(w, s);
		break;
	case OP_GET_ALL:
		bump(&w->ops[OP_GET_ALL]);
		if (shared)
			walk_shared(w, s, "get_all");
		else
			walk_owned(w, s, w->idx,
			           (unsigned int)rng_below(&w->rng, R.ks.colls),
			           true, "get_all of own collection");
		break;
	case OP_DELETE_ALL:
		if (shared)
			op_delete_shared(w, s, true);
		else
			op_delete_all_owned(w, s);
		break;
	case OP_SYNC:
		op_sync(w, s);
		break;
	default:
		sleep_s(0.001); /* every weight is 0: idle */
		break;
	}
}

static void reader_step(struct worker *w, dskvs *s)
{
	const unsigned int mask = (1u << OP_GET) | (1u << OP_GET_ALL);
	if (R.o->churn_pct && rng_below(&w->rng, 100) < R.o->churn_pct) {
		churn_read(w, s);
		return;
	}
	if (R.o->atomic_pct && rng_below(&w->rng, 100) < R.o->atomic_pct) {
		atomic_step(w, s);
		return;
	}
	int op = pick_op(R.o, mask, &w->rng);
	bool shared = R.ks.shared && rng_below(&w->rng, 100) < R.o->shared_pct;
	if (op == OP_GET) {
		if (shared)
			op_get_shared(w, s);
		else
			op_get_other(w, s);
	} else if (op == OP_GET_ALL) {
		bump(&w->ops[OP_GET_ALL]);
		if (shared)
			walk_shared(w, s, "get_all");
		else
			walk_owned(
			    w, s,
			    (unsigned int)rng_below(&w->rng, R.ks.writers),
			    (unsigned int)rng_below(&w->rng, R.ks.colls), false,
			    "get_all");
	} else {
		sleep_s(0.001);
	}
}

static void maint_step(struct worker *w, dskvs *s)
{
	/* Sleep in short steps so a pause or the end is not held up. */
	double until = now_s() + R.o->compact_every;
	while (now_s() < until) {
		if (atomic_load_explicit(&R.pause_req, memory_order_relaxed) ||
		    atomic_load_explicit(&R.stop, memory_order_relaxed))
			return;
		sleep_s(0.02);
	}
	int rc = dskvs_compact(s);
	bump(&w->compactions);
	if (rc != DSKVS_OK)
		violation(V_RC, "%s compact: got %s (%s)", w->who, rc_name(rc),
		          dskvs_errmsg(s));
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	while (!atomic_load_explicit(&R.stop, memory_order_relaxed)) {
		if (atomic_load_explicit(&R.pause_req, memory_order_relaxed)) {
			park();
			continue;
		}
		dskvs *s = R.store;
		switch (w->role) {
		case ROLE_WRITER:
			writer_step(w, s);
			break;
		case ROLE_READER:
			reader_step(w, s);
			break;
		case ROLE_MAINT:
			maint_step(w, s);
			break;
		}
	}
	return NULL;
}

/* ---- verification while parked ----------------------------------------------
 */

struct coll_expect {
	uint64_t members, bytes;
	bool listed;
};

struct churn_coll_expect {
	char name[KEY_NAME_MAX];
	struct coll_expect e;
};

struct list_ctx {
	struct coll_expect *e; /* owned collections, then "shared" */
	const char *phase;
	struct churn_coll_expect *ce; /* live churn collections */
	size_t nce;
};

/*
 * Parked: every counter equals `done`, with the version it had before the
 * close (after_reopen) or recorded now; every pia key below the frontier
 * has one winner and its value; the frontier key is absent. Adds the
 * members to *entries and the two collections to ce[].
 */
static void verify_atomic(struct worker *m, dskvs *s, const char *phase,
                          bool after_reopen, uint64_t *entries,
                          struct churn_coll_expect *ce, size_t *nce)
{
	char what[64];
	struct churn_coll_expect *ac = &ce[(*nce)++];
	struct churn_coll_expect *pc = &ce[(*nce)++];
	snprintf(ac->name, sizeof ac->name, ATOMIC_COLL);
	snprintf(pc->name, sizeof pc->name, "pia");
	snprintf(what, sizeof what, "%s get", phase);
	for (unsigned int i = 0; i < NCTR; i++) {
		unsigned char buf[CTR_LEN + 8];
		size_t len = 0;
		uint64_t q = 0, c;
		uint64_t d = atomic_load(&AT.done[i]);
		if (atomic_load(&AT.begun[i]) != d)
			violation(
			    V_COUNT,
			    "%s %s: %" PRIu64 " increments begun, %" PRIu64
			    " done, with every thread parked (harness)",
			    what, AT.key[i], atomic_load(&AT.begun[i]), d);
		int rc = dskvs_get_seq(s, AT.key[i], buf, sizeof buf, &len, &q);
		if (!ctr_read_ok(m->who, what, i, rc, buf, len, q, d, d, &c))
			continue;
		if (after_reopen && q != AT.seq_snap[i])
			violation(V_VERSION,
			          "%s %s: version %" PRIu64
			          " after the reopen, "
			          "%" PRIu64 " before the close",
			          what, AT.key[i], q, AT.seq_snap[i]);
		AT.seq_snap[i] = q;
		if (rc == DSKVS_OK) {
			ac->e.members++;
			ac->e.bytes += CTR_LEN;
			(*entries)++;
		}
	}
	uint32_t hi = atomic_load(&AT.next);
	for (uint32_t n = 0; n < hi; n++) {
		uint32_t wins = atomic_load(&AT.wins[n]);
		uint32_t win = atomic_load(&AT.winner[n]);
		if (wins != 1) {
			char key[KEY_NAME_MAX];
			pia_key(key, sizeof key, n);
			violation(
			    V_WINNERS,
			    "%s %s: %" PRIu32 " put_if_absent calls won "
			    "it (%" PRIu32 " tried), expected exactly one",
			    what, key, wins, atomic_load(&AT.attempts[n]));
		}
		pia_check(m->who, what, s, m->rbuf, n, win,
		          atomic_load(&AT.wseq[n]), NULL);
		pc->e.members++;
		pc->e.bytes += sv_len(R.o, PIA_KID + n, AT.epoch);
		(*entries)++;
	}
	if (hi < PIA_MAX &&
	    pia_check(m->who, what, s, m->rbuf, hi, 0, 0, NULL) >= 0)
		violation(V_PHANTOM,
		          "%s pia/p%" PRIu32 ": present, but nobody has tried "
		          "to create it yet (the frontier)",
		          what, hi);
	R.keys_compared += NCTR + hi;
}

/*
 * Parked: every batch collection holds exactly its last batch (owned: the
 * last number; shared: the highest seq that returned). Walks and gets;
 * adds the non-empty collections to ce[] and their members to *entries.
 */
static void verify_batches(struct worker *m, dskvs *s, const char *phase,
                           uint64_t *entries, struct churn_coll_expect *ce,
                           size_t *nce)
{
	char what[64];
	snprintf(what, sizeof what, "%s get_all", phase);
	for (unsigned int j = 0; j < R.ks.writers + BAT_SHARED; j++) {
		bool sh = j >= R.ks.writers;
		unsigned int ix = sh ? j - R.ks.writers : j;
		uint32_t ci = sh ? BAT_CI_SHARED + ix : ix;
		unsigned int k = sh ? bat_k_shared(ix) : bat_k_owned(ix);
		uint64_t b;
		struct bat_seen out;
		if (sh) {
			b = BT.top_b[ix];
			if (atomic_load(&BT.sret[ix]) !=
			    atomic_load(&BT.snext[ix]))
				violation(V_COUNT,
				          "%s bs%u: %" PRIu64
				          " batches handed out, "
				          "%" PRIu64 " returned, all parked "
				          "(harness, or a failed batch)",
				          what, ix, atomic_load(&BT.snext[ix]),
				          atomic_load(&BT.sret[ix]));
		} else {
			b = atomic_load(&BT.opub[ix]);
		}
		struct churn_coll_expect *x = &ce[(*nce)++];
		bat_coll_name(x->name, sizeof x->name, sh, ix);
		if (bat_walk(R.o, s, m->who, what, x->name, ci, k, &out) &&
		    out.b != (bat_all_del(b) ? 0 : b))
			violation(out.b < b ? V_STALE : V_BATCH,
			          "%s %s: batch %#" PRIx64 " (0: no member), "
			          "expected exactly batch %" PRIu64 ", the %s",
			          what, x->name, out.b, b,
			          sh ? "one with the highest *seq" : "last");
		for (unsigned int i = 0; i < k; i++) {
			char key[KEY_NAME_MAX + 16];
			size_t len = 0;
			snprintf(key, sizeof key, "%.20s/m%u", x->name,
			         i % BAT_KMAX);
			int rc =
			    dskvs_get(s, key, m->rbuf, R.o->value_max, &len);
			struct sv_info in;
			char why[256];
			if (!bat_present(b, i)) {
				if (rc != DSKVS_NOTFOUND)
					violation(V_RESURRECTED,
					          "%s get %s: got %s, batch "
					          "%" PRIu64 " deleted it",
					          phase, key, rc_name(rc), b);
				continue;
			}
			if (rc != DSKVS_OK)
				violation(V_LOST,
				          "%s get %s: got %s, batch %" PRIu64
				          " put it",
				          phase, key, rc_name(rc), b);
			else if (!sv_check(R.o, m->rbuf, len, &in, why,
			                   sizeof why))
				violation(V_TORN, "%s get %s: %s", phase, key,
				          why);
			else if (in.key != bat_kid(ci, i) || in.version != b)
				violation(V_BATCH,
				          "%s get %s: key id %" PRIu32
				          " version %#" PRIx64
				          ", expected batch %" PRIu64,
				          phase, key, in.key, in.version, b);
			else {
				x->e.members++;
				x->e.bytes += len;
				(*entries)++;
			}
		}
	}
	R.keys_compared += (uint64_t)R.ks.writers + BAT_SHARED;
}

/* After the post-reopen check: end the put_if_absent epoch. Parked. */
static void atomic_new_epoch(dskvs *s)
{
	uint32_t hi = atomic_load(&AT.next);
	if (!hi)
		return;
	int rc = dskvs_delete_all(s, "pia");
	if (rc != DSKVS_OK)
		violation(V_RC,
		          "delete_all pia (%" PRIu32 " members): got %s (%s)",
		          hi, rc_name(rc), dskvs_errmsg(s));
	AT.pia_keys += hi;
	for (uint32_t n = 0; n < hi; n++) {
		atomic_store(&AT.wins[n], 0);
		atomic_store(&AT.winner[n], 0);
		atomic_store(&AT.attempts[n], 0);
		atomic_store(&AT.wseq[n], 0);
	}
	atomic_store(&AT.next, 0);
	AT.epoch++;
}

static int list_cb(const char *name, size_t len, uint64_t members,
                   uint64_t bytes, void *arg)
{
	struct list_ctx *c = arg;
	size_t n = (size_t)R.ks.writers * R.ks.colls, i;
	for (i = 0; i < n; i++)
		if (strlen(R.ks.coll[i]) == len &&
		    memcmp(R.ks.coll[i], name, len) == 0)
			break;
	if (i == n && !(len == 6 && memcmp(name, "shared", 6) == 0)) {
		for (size_t j = 0; j < c->nce; j++) {
			struct churn_coll_expect *x = &c->ce[j];
			if (strlen(x->name) != len ||
			    memcmp(x->name, name, len) != 0)
				continue;
			if (x->e.listed)
				violation(
				    V_COUNT,
				    "%s list_collections: %s listed twice",
				    c->phase, x->name);
			x->e.listed = true;
			if (members != x->e.members || bytes != x->e.bytes)
				violation(V_COUNT,
				          "%s list_collections %s: expected "
				          "%" PRIu64 " members / %" PRIu64
				          " value bytes, got %" PRIu64
				          " / %" PRIu64,
				          c->phase, x->name, x->e.members,
				          x->e.bytes, members, bytes);
			return 0;
		}
		violation(V_COUNT,
		          "%s list_collections: listed collection \"%.*s\" "
		          "that the harness never wrote (or a dead churn one)",
		          c->phase, (int)(len < 64 ? len : 64), name);
		return 0;
	}
	struct coll_expect *e = &c->e[i];
	const char *cname = i == n ? "shared" : R.ks.coll[i];
	if (e->listed)
		violation(V_COUNT, "%s list_collections: %s listed twice",
		          c->phase, cname);
	e->listed = true;
	if (members != e->members || bytes != e->bytes)
		violation(V_COUNT,
		          "%s list_collections %s: expected %" PRIu64
		          " members / %" PRIu64 " value bytes, got %" PRIu64
		          " / %" PRIu64,
		          c->phase, cname, e->members, e->bytes, members,
		          bytes);
	return 0;
}

/*
 * Compare the whole store with the model; every thread is parked or gone.
 * Without `use_snap` the shared collection is recorded into shared_snap
 * (its values must not have been replaced); with it, compared to it.
 */
static void verify_all(struct worker *m, dskvs *s, const char *phase,
                       bool use_snap)
{
	size_t ncoll = (size_t)R.ks.writers * R.ks.colls;
	struct coll_expect *e = calloc(ncoll + 1, sizeof *e);
	uint64_t entries = 0, nonempty = 0;
	char what[64];
	snprintf(what, sizeof what, "%s get", phase);
	if (!e) {
		fprintf(stderr, "dskvs-stress: out of memory\n");
		exit(2);
	}
	for (uint32_t k = 0; k < R.ks.owned; k++) {
		size_t len = 0;
		int rc =
		    dskvs_get(s, R.ks.key[k], m->rbuf, R.o->value_max, &len);
		if (rc == DSKVS_ERANGE)
			rc = DSKVS_OK, len = R.o->value_max + 1;
		expect_exact(m->who, what, k, R.st[k].val_ver, rc, m->rbuf,
		             len > R.o->value_max ? R.o->value_max : len);
		if (R.st[k].val_ver) {
			struct coll_expect *ce =
			    &e[owner_of(k) * R.ks.colls +
			       (k % R.ks.keys) % R.ks.colls];
			ce->members++;
			ce->bytes += sv_len(R.o, k, R.st[k].val_ver);
			entries++;
		}
	}
	for (uint32_t j = 0; j < R.ks.shared; j++) {
		uint32_t k = R.ks.owned + j;
		size_t len = 0;
		int rc =
		    dskvs_get(s, R.ks.key[k], m->rbuf, R.o->value_max, &len);
		if (use_snap) {
			expect_exact(m->who, what, k, R.shared_snap[j], rc,
			             m->rbuf, len);
		} else {
			struct sv_info in;
			R.shared_snap[j] = 0;
			if (rc == DSKVS_OK &&
			    value_ok(m->who, what, k, m->rbuf, len, &in)) {
				R.shared_snap[j] = in.version;
				_Atomic uint64_t *sl = slot(in.version, false);
				uint64_t x = sl ? atomic_load(sl) : 0;
				if (x)
					violation(
					    V_LOST_UPDATE,
					    "%s %s: live value is version "
					    "%" PRIu64
					    ", which the put of version "
					    "%" PRIu64 " replaced",
					    what, R.ks.key[k], in.version,
					    x & 0xffffffffu);
			} else if (rc != DSKVS_OK && rc != DSKVS_NOTFOUND) {
				violation(V_RC, "%s %s: got %s", what,
				          R.ks.key[k], rc_name(rc));
			}
		}
		if (R.shared_snap[j]) {
			e[ncoll].members++;
			e[ncoll].bytes += sv_len(R.o, k, R.shared_snap[j]);
			entries++;
		}
	}
	/* Walks: exact for owned collections (the model) and for "shared"
	 * (the snapshot just taken or kept). */
	snprintf(what, sizeof what, "%s get_all", phase);
	for (unsigned int w = 0; w < R.ks.writers; w++)
		for (unsigned int c = 0; c < R.ks.colls; c++)
			walk_owned(m, s, w, c, true, what);
	memset(m->seen, 0, R.ks.shared);
	struct walk ctx = { .w = m,
		            .shared = true,
		            .expect_shared = R.shared_snap,
		            .what = what };
	int rc = dskvs_get_all(s, "shared", walk_cb, &ctx);
	if (rc != DSKVS_OK)
		violation(V_RC, "%s shared: got %s", what, rc_name(rc));
	/* Visited members were compared in walk_cb; now the missing ones. */
	for (uint32_t j = 0; j < R.ks.shared; j++)
		if (!m->seen[j] && R.shared_snap[j])
			violation(V_WALK,
			          "%s shared: member s%04u (version %" PRIu64
			          ") not visited",
			          what, j, R.shared_snap[j]);

	/* Churn keys: every live one exactly, the last dead name of each
	 * absent; their walks exact; their collections counted. */
	struct churn_coll_expect *ce =
	    calloc((size_t)R.ks.writers * (2 + CHURN_COLLS) + 3 + BAT_SHARED,
	           sizeof *ce);
	size_t nce = 0;
	if (!ce) {
		fprintf(stderr, "dskvs-stress: out of memory\n");
		exit(2);
	}
	snprintf(what, sizeof what, "%s churn get", phase);
	char wwhat[64];
	snprintf(wwhat, sizeof wwhat, "%s churn get_all", phase);
	for (unsigned int w = 0; w < R.ks.writers; w++) {
		struct churn_coll_expect *q = &ce[nce++]; /* "w<w>q" */
		churn_coll_name(q->name, sizeof q->name, w, 0, 0);
		for (unsigned int u = 0; u < CHURN_KEYS + CHURN_COLLS; u++) {
			struct churn_unit *cu = churn_unit(w, u);
			struct churn_coll_expect *x = q;
			unsigned int lo =
			    u < CHURN_KEYS
			        ? u
			        : CHURN_KEYS + (u - CHURN_KEYS) * CHURN_MEMBERS;
			unsigned int hi =
			    u < CHURN_KEYS ? u + 1 : lo + CHURN_MEMBERS;
			if (!cu->birth)
				continue; /* never born */
			if (u >= CHURN_KEYS && cu->alive) {
				x = &ce[nce++];
				churn_coll_name(x->name, sizeof x->name, w, u,
				                cu->birth);
			}
			for (unsigned int ci = lo; ci < hi; ci++) {
				struct churn_key *ck = churn_key_of(w, ci);
				char key[KEY_NAME_MAX];
				size_t len = 0;
				churn_key_name(key, sizeof key, w, ci,
				               cu->birth);
				int rc = churn_get(s, key, m->rbuf, &len);
				churn_expect(m->who, what, key, w, ci,
				             ck->k.val_ver, rc, m->rbuf, len);
				if (!ck->k.val_ver)
					continue;
				x->e.members++;
				x->e.bytes +=
				    sv_len(R.o, churn_id(w, ci), ck->k.val_ver);
				entries++;
			}
			if (u >= CHURN_KEYS && cu->alive)
				churn_walk_of(m, s, w, u, wwhat);
		}
		churn_walk_of(m, s, w, 0, wwhat); /* the key units' "q" */
	}
	verify_atomic(m, s, phase, use_snap, &entries, ce, &nce);
	verify_batches(m, s, phase, &entries, ce, &nce);
	for (size_t j = 0; j < nce; j++)
		nonempty += ce[j].e.members != 0;
	for (size_t i = 0; i <= ncoll; i++)
		nonempty += e[i].members != 0;
	dskvs_stats st;
	rc = dskvs_stats_get(s, &st);
	if (rc != DSKVS_OK)
		violation(V_RC, "%s stats_get: got %s", phase, rc_name(rc));
	else if (st.entries != entries || st.collections != nonempty)
		violation(V_COUNT,
		          "%s stats: expected %" PRIu64 " entries in %" PRIu64
		          " collections, got %" PRIu64 " in %" PRIu64,
		          phase, entries, nonempty, st.entries, st.collections);
	struct list_ctx lc = { e, phase, ce, nce };
	rc = dskvs_list_collections(s, list_cb, &lc);
	if (rc != DSKVS_OK)
		violation(V_RC, "%s list_collections: got %s", phase,
		          rc_name(rc));
	for (size_t i = 0; i <= ncoll; i++)
		if (e[i].members && !e[i].listed)
			violation(V_COUNT,
			          "%s list_collections: %s (%" PRIu64
			          " members) not listed",
			          phase, i == ncoll ? "shared" : R.ks.coll[i],
			          e[i].members);
	for (size_t j = 0; j < nce; j++)
		if (ce[j].e.members && !ce[j].e.listed)
			violation(V_COUNT,
			          "%s list_collections: collection %s "
			          "(%" PRIu64 " members) not listed",
			          phase, ce[j].name, ce[j].e.members);
	R.keys_compared += R.ks.owned + R.ks.shared;
	R.keys_compared += (uint64_t)R.ks.writers * CHURN_PER_W;
	free(ce);
	free(e);
}

/* ---- main thread
 * ------------------------------------------------------------------ */

static int sync_for_epoch(unsigned long epoch)
{
	switch (R.o->sync) {
	case SYNC_ALWAYS:
		return DSKVS_SYNC_ALWAYS;
	case SYNC_ASYNC:
		return DSKVS_SYNC_ASYNC;
	default:
		return epoch & 1 ? DSKVS_SYNC_ALWAYS : DSKVS_SYNC_ASYNC;
	}
}

static dskvs *open_store(int sync_mode, const char *phase)
{
	dskvs_options opts;
	store_options(R.o, sync_mode, &opts);
	dskvs *s = NULL;
	int rc = dskvs_open(R.dir, &opts, &s);
	if (rc != DSKVS_OK) {
		violation(V_OPEN, "%s: dskvs_open(%s) gave %s: %s", phase,
		          R.dir, rc_name(rc), dskvs_errmsg(NULL));
		return NULL;
	}
	return s;
}

static void close_store(dskvs *s, const char *phase)
{
	dskvs_stats st;
	if (dskvs_stats_get(s, &st) == DSKVS_OK)
		R.persisted_base += st.bytes_written;
	int rc = dskvs_close(s);
	if (rc != DSKVS_OK)
		violation(V_OPEN, "%s: dskvs_close gave %s: %s", phase,
		          rc_name(rc), dskvs_errmsg(NULL));
}

static void sum_ops(uint64_t out[OP_NKINDS + 3])
{
	memset(out, 0, sizeof(uint64_t) * (OP_NKINDS + 3));
	for (unsigned int i = 0; i < R.nthreads; i++) {
		struct worker *w = &R.w[i];
		for (int k = 0; k < OP_NKINDS; k++)
			out[k] += atomic_load_explicit(&w->ops[k],
			                               memory_order_relaxed);
		out[OP_NKINDS] +=
		    atomic_load_explicit(&w->ryw, memory_order_relaxed);
		out[OP_NKINDS + 1] +=
		    atomic_load_explicit(&w->members, memory_order_relaxed);
		out[OP_NKINDS + 2] +=
		    atomic_load_explicit(&w->compactions, memory_order_relaxed);
	}
}

static void fmt_rate(char *b, size_t n, double r)
{
	if (r >= 1e6)
		snprintf(b, n, "%.2fM", r / 1e6);
	else if (r >= 1e4)
		snprintf(b, n, "%.1fk", r / 1e3);
	else
		snprintf(b, n, "%.0f", r);
}

static void progress(uint64_t prev[OP_NKINDS + 3], double *prev_t)
{
	uint64_t cur[OP_NKINDS + 3];
	double t = now_s();
	sum_ops(cur);
	double dt = t - *prev_t;
	char line[512];
	int off =
	    snprintf(line, sizeof line, "[%5.1fs %s]", t,
	             R.sync_mode == DSKVS_SYNC_ALWAYS ? "always" : "async");
	for (int k = 0; k < OP_NKINDS; k++) {
		char r[16];
		fmt_rate(r, sizeof r,
		         dt > 0 ? (double)(cur[k] - prev[k]) / dt : 0);
		off += snprintf(line + off, sizeof line - (size_t)off,
		                " %s %s/s", op_name[k], r);
	}
	dskvs_stats st;
	if (dskvs_stats_get(R.store, &st) == DSKVS_OK)
		off += snprintf(
		    line + off, sizeof line - (size_t)off,
		    " | queue %" PRIu64 " lag %.1fms | persisted "
		    "%.1fMiB log %.1fMiB compactions %" PRIu64,
		    st.queue_depth, (double)st.oldest_pending_ns / 1e6,
		    (double)(R.persisted_base + st.bytes_written) / 1048576.0,
		    (double)st.log_bytes / 1048576.0, st.compactions);
	if (R.o->churn_pct) {
		uint64_t cd = 0;
		for (unsigned int i = 0; i < R.nthreads; i++)
			cd += atomic_load_explicit(&R.w[i].churn_died,
			                           memory_order_relaxed);
		off += snprintf(line + off, sizeof line - (size_t)off,
		                " | churn deaths %" PRIu64, cd);
	}
	snprintf(line + off, sizeof line - (size_t)off,
	         " | violations %" PRIu64, violations_total());
	printf("%s\n", line);
	fflush(stdout);
	memcpy(prev, cur, sizeof cur);
	*prev_t = t;
}

static void reopen_check(struct worker *m, unsigned long epoch)
{
	char phase[64];
	snprintf(phase, sizeof phase, "reopen %lu: before close,", epoch);
	verify_all(m, R.store, phase, false);
	snprintf(phase, sizeof phase, "reopen %lu", epoch);
	close_store(R.store, phase);
	R.store = NULL;
	R.sync_mode = sync_for_epoch(epoch);
	snprintf(phase, sizeof phase, "reopen %lu: after reopen,", epoch);
	R.store = open_store(R.sync_mode, phase);
	if (!R.store)
		return;
	verify_all(m, R.store, phase, true);
	atomic_new_epoch(R.store);
	R.reopens++;
}

static int alloc_worker(struct worker *w, enum role role, unsigned int idx)
{
	w->role = role;
	w->idx = idx;
	snprintf(w->who, sizeof w->who, "%s %u",
	         role == ROLE_WRITER   ? "writer"
	         : role == ROLE_READER ? "reader"
	                               : "compactor",
	         idx);
	w->rng = mix64(R.o->seed ^ ((uint64_t)role << 56) ^ idx);
	unsigned int nseen =
	    R.ks.per_coll_max > R.ks.shared ? R.ks.per_coll_max : R.ks.shared;
	w->wbuf = malloc(R.o->value_max);
	w->rbuf = malloc(R.o->value_max);
	w->bbuf = malloc(bat_buf_size(R.o));
	w->snap = calloc(R.ks.per_coll_max + 1, sizeof *w->snap);
	w->seen = calloc(nseen + 1, 1);
	return w->wbuf && w->rbuf && w->bbuf && w->snap && w->seen ? 0 : -1;
}

static void free_worker(struct worker *w)
{
	free(w->wbuf);
	free(w->rbuf);
	free(w->bbuf);
	free(w->snap);
	free(w->seen);
}

int run_main(struct stress_opts *o, const char *store_dir)
{
	R.o = o;
	R.dir = store_dir;
	R.hot = o->keys < 8 ? o->keys : 8;
	pthread_mutex_init(&R.mu, NULL);
	pthread_cond_init(&R.cv_parked, NULL);
	pthread_cond_init(&R.cv_resume, NULL);
	if (keyspace_init(&R.ks, o) != 0)
		return 2;
	R.st = calloc(R.ks.owned ? R.ks.owned : 1, sizeof *R.st);
	R.shared_snap = calloc(R.ks.shared + 1, sizeof *R.shared_snap);
	if (churn_init() != 0 || amix_init() != 0 || bt_init() != 0)
		return 2;
	R.nthreads = o->writers + o->readers + (o->compact_every > 0);
	R.w = calloc(R.nthreads + 1, sizeof *R.w);
	if (!R.st || !R.shared_snap || !R.w)
		return 2;
	unsigned int n = 0;
	for (unsigned int i = 0; i < o->writers; i++)
		if (alloc_worker(&R.w[n++], ROLE_WRITER, i))
			return 2;
	for (unsigned int i = 0; i < o->readers; i++)
		if (alloc_worker(&R.w[n++], ROLE_READER, i))
			return 2;
	if (o->compact_every > 0 && alloc_worker(&R.w[n++], ROLE_MAINT, 0))
		return 2;
	struct worker *m = &R.w[R.nthreads]; /* the main thread's buffers */
	if (alloc_worker(m, ROLE_READER, 0))
		return 2;
	snprintf(m->who, sizeof m->who, "main");

	unsigned long epoch = 0;
	R.sync_mode = sync_for_epoch(epoch);
	R.store = open_store(R.sync_mode, "initial open");
	if (!R.store)
		return 1;
	for (unsigned int i = 0; i < R.nthreads; i++)
		if (pthread_create(&R.w[i].tid, NULL, worker_main, &R.w[i])) {
			fprintf(stderr,
			        "dskvs-stress: pthread_create failed\n");
			exit(2);
		}

	uint64_t prev[OP_NKINDS + 3];
	double start = now_s(), prev_t = start;
	double end = start + o->seconds;
	double next_progress = start + 1;
	double next_reopen =
	    o->reopen_every > 0 ? start + o->reopen_every : end + 1;
	sum_ops(prev);
	while (R.store) {
		double t = now_s();
		if (t >= end)
			break;
		if (t >= next_progress) {
			if (!o->quiet)
				progress(prev, &prev_t);
			next_progress += 1;
			if (next_progress < t)
				next_progress = t + 1;
		}
		if (t >= next_reopen) {
			if (end - t > 0.5) {
				pause_all();
				reopen_check(m, ++epoch);
				if (!R.store) /* reopen failed: nothing to run
				                 on */
					atomic_store(&R.stop, 1);
				resume_all();
				next_reopen = now_s() + o->reopen_every;
			} else {
				next_reopen =
				    end + 1; /* the final check follows */
			}
		}
		double wake =
		    next_progress < next_reopen ? next_progress : next_reopen;
		if (wake > end)
			wake = end;
		t = now_s();
		sleep_s(wake - t > 0.1 ? 0.1 : wake - t);
	}
	atomic_store(&R.stop, 1);
	/* A thread may be parking right now (pause_req is only set while
	 * main waits); nothing is parked here, so joining is safe. */
	for (unsigned int i = 0; i < R.nthreads; i++)
		pthread_join(R.w[i].tid, NULL);
	double elapsed = now_s() - start;
	if (R.store) {
		reopen_check(m, ++epoch);
		if (R.store) {
			close_store(R.store, "final close");
			R.store = NULL;
		}
	}

	uint64_t tot[OP_NKINDS + 3];
	sum_ops(tot);
	printf("\ndskvs-stress summary: %.1f s, seed %" PRIu64
	       ", %u writers, %u readers, %u keys/writer in %u collections, "
	       "%u shared keys, values %zu..%zu bytes, sync %s\n",
	       elapsed, o->seed, o->writers, o->readers, o->keys, o->colls,
	       o->shared_keys, o->value_min, o->value_max,
	       o->sync == SYNC_MIXED    ? "mixed"
	       : o->sync == SYNC_ALWAYS ? "always"
	                                : "async");
	printf("  operations:");
	uint64_t all = 0;
	for (int k = 0; k < OP_NKINDS; k++) {
		printf(" %s %" PRIu64, op_name[k], tot[k]);
		all += tot[k];
	}
	printf("\n              read-your-writes checks %" PRIu64
	       ", get_all members checked %" PRIu64 ", compact calls %" PRIu64
	       ", %.0f ops/s overall\n",
	       tot[OP_NKINDS], tot[OP_NKINDS + 1], tot[OP_NKINDS + 2],
	       elapsed > 0 ? (double)all / elapsed : 0.0);
	if (o->churn_pct) {
		uint64_t cs = 0, cb = 0, cd = 0;
		for (unsigned int i = 0; i < R.nthreads; i++) {
			cs += atomic_load(&R.w[i].churn);
			cb += atomic_load(&R.w[i].churn_born);
			cd += atomic_load(&R.w[i].churn_died);
		}
		printf("  churn (%u%% of steps): %" PRIu64 " steps, %" PRIu64
		       " lives begun (keys and collections), %" PRIu64
		       " ended\n",
		       o->churn_pct, cs, cb, cd);
	}
	if (o->atomic_pct)
		printf("  atomic mix (%u%% of steps): dskvs_update %" PRIu64
		       " increments (+%" PRIu64 " KEEP, %" PRIu64
		       " aborted), CAS %" PRIu64 " increments (%" PRIu64
		       " conflicts), counter and pia reads %" PRIu64
		       "; put_if_absent %" PRIu64 " calls on %" PRIu64
		       " fresh keys (%" PRIu64 " contested): %" PRIu64
		       " won, %" PRIu64 " DSKVS_EEXIST\n",
		       o->atomic_pct, atomic_load(&AT.upd),
		       atomic_load(&AT.keep), atomic_load(&AT.abort),
		       atomic_load(&AT.cas), atomic_load(&AT.conflicts),
		       atomic_load(&AT.reads), atomic_load(&AT.pia),
		       atomic_load(&AT.pia_keys),
		       atomic_load(&AT.pia_contested), atomic_load(&AT.pia_won),
		       atomic_load(&AT.pia_lost));
	if (o->atomic_pct)
		printf("  batches: %" PRIu64 " written (%" PRIu64
		       " ops), %" PRIu64 " rejected pairs (DSKVS_EBATCH + "
		       "DSKVS_EINVAL), %" PRIu64 " batch walks by others; "
		       "hot backups: %" PRIu64 " taken and checked (%" PRIu64
		       " key states)\n",
		       atomic_load(&BT.batches), atomic_load(&BT.batch_ops),
		       atomic_load(&BT.rejected), atomic_load(&BT.walks),
		       atomic_load(&BT.backups), atomic_load(&BT.backup_keys));
	printf("  reopen checks: %" PRIu64
	       " (close + reopen + compare, %" PRIu64
	       " key states compared), crash cycles: 0\n",
	       R.reopens, R.keys_compared);
	printf("  persisted: %.1f MiB written by the janitor; acks that the "
	       "durable ticket showed late: %" PRIu64 "\n",
	       (double)R.persisted_base / 1048576.0,
	       atomic_load(&R.ticket_lag));
	report_summary(stdout);

	for (unsigned int i = 0; i <= R.nthreads; i++)
		free_worker(&R.w[i]);
	for (size_t c = 0; c < CHUNKS; c++)
		free(atomic_load(&R.chunks[c]));
	free(R.w);
	free(R.st);
	free(R.shared_snap);
	churn_free();
	amix_free();
	bt_free();
	keyspace_free(&R.ks);
	return violations_total() ? 1 : 0;
}
