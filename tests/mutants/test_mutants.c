/*
 * Tests written to kill the mutants of scripts/mutants/ in the normal
 * build, every run. Each case makes the moment a bug would show happen on
 * purpose: a test hook (dskvs__hook, src/base.h) or the I/O seam
 * (dskvs__io) holds the janitor or a writer at the right point, or watches
 * a rule where it is kept, instead of hoping a race goes the wrong way.
 *
 *  - log_order: every record is queued while its writer holds the lock of
 *    the record's collection, and a DeleteAll's before its collection
 *    leaves the table (DESIGN rule 5), checked at the moment of queueing.
 *  - grace: a block replaced, deleted or removed by DeleteAll is not freed
 *    while a read-side section that found it is open, and is freed after
 *    (the free hook; no sanitizer needed).
 *  - dead_check: a writer that found a collection and waits on its lock
 *    while a DeleteAll kills it must retry and write to a fresh one.
 *  - sync_gate: with the janitor held inside the fdatasync of a batch, the
 *    batch is not durable (dskvs_durable_seq, dskvs_wait_durable), a
 *    dskvs_sync waits, and a writer that fills the ring waits instead of
 *    dropping records; all of it is on disk after.
 *  - sticky: a failed fdatasync is sticky: EIO for sync, waits and writes;
 *    the janitor never syncs that log again.
 *  - compact_gather: writes made while a compaction gathers its snapshot
 *    (DeleteAlls, re-puts, overwrites, of collections seen and not yet
 *    seen) are all in the compacted log.
 *  - torn_cut_synced: open cuts a torn tail, then syncs the log before it
 *    writes to it or returns (the prefix it reports durable may be a batch
 *    whose writer was killed before its fdatasync).
 *  - crafted: hand-made logs: valid checksums over impossible content
 *    (a reserved bit, a malformed key) at the unsynced end are damage,
 *    not a torn tail; a sequence number that does not rise is refused.
 *  - nul_value: a value whose first byte is NUL replays, and so does a
 *    DeleteAll followed by a zeroed torn tail (the key check looks at the
 *    key's bytes only, never the byte after a DeleteAll's name).
 *  - map_grace: a members map replaced by a rebuild is not freed while a
 *    read-side section that could be probing it is open, and is freed
 *    after (the map free hook).
 *  - room: a put's insert never grows the members map, which was grown
 *    before its queue slot was reserved (the map the insert goes into is
 *    the one seen at the enqueue hook).
 *  - update_misuse: a dskvs_update callback that writes another
 *    collection or syncs the store is refused with DSKVS_EINVAL (calls
 *    that would not deadlock without the check).
 *  - batch_undo: a batch of writes whose k-th table insert fails (the
 *    member-set hook) changes nothing, in memory or in the log.
 * The gather hook of compact_gather also checks that the snapshot lets the
 * queue move only outside its read-side sections.
 *
 * Run one case: test_mutants <case>. CTest runs each as mutants_<case>.
 */
#include "dt.h"
#include "internal.h"

#include <ck_pr.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers -------------------------------------------------------------
 */

static void yield(void)
{
	usleep(100); /* polling only; no check depends on elapsed time */
}

static dskvs *open_store(const char *dir, unsigned queue_capacity)
{
	dskvs_options o;
	dskvs *s = NULL;
	dt_options(&o, DSKVS_SYNC_ASYNC);
	o.auto_compact = 0;
	if (queue_capacity)
		o.queue_capacity = queue_capacity;
	DT_RC(dskvs_open(dir, &o, &s), DSKVS_OK);
	return s;
}

static void put(dskvs *s, const char *key, const char *val)
{
	DT_RC(dskvs_put(s, key, val, strlen(val), NULL, NULL), DSKVS_OK);
}

static void expect(dskvs *s, const char *key, const char *val)
{
	char buf[256];
	size_t len = 0;
	int rc = dskvs_get(s, key, buf, sizeof(buf), &len);
	if (val == NULL) {
		DT_CHECK(rc == DSKVS_NOTFOUND, "%s: %s, want NOTFOUND", key,
		         dskvs_err_name(rc));
		return;
	}
	DT_CHECK(rc == DSKVS_OK, "%s: %s", key, dskvs_err_name(rc));
	DT_CHECK(len == strlen(val) && memcmp(buf, val, len) == 0,
	         "%s: \"%.*s\", want \"%s\"", key, (int)len, buf, val);
}

/* The whole store as sorted "coll/member=value" lines (malloc'd). */
struct dump {
	char **lines;
	size_t n, cap;
	const char *coll;
};

static void dump_add(struct dump *d, char *line)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 16;
		d->lines = realloc(d->lines, d->cap * sizeof(*d->lines));
		DT_CHECK(d->lines != NULL, "realloc");
	}
	d->lines[d->n++] = line;
}

static int dump_member(const char *m, size_t mlen, const void *v, size_t vlen,
                       void *arg)
{
	struct dump *d = arg;
	dump_add(d, dt_fmt("%s/%.*s=%.*s", d->coll, (int)mlen, m, (int)vlen,
	                   (const char *)v));
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *dump_store(dskvs *s)
{
	struct dump d = { 0 };
	struct dskvs__coll **cv;
	size_t nc;
	/* White-box: the collections, then each one's members. */
	dskvs__rcu_read_lock();
	DT_RC(dskvs__colls_gather(&s->t, &cv, &nc), DSKVS_OK);
	char **names = calloc(nc + 1, sizeof(*names));
	for (size_t i = 0; i < nc; i++)
		names[i] = dt_fmt("%s", cv[i]->name.s);
	free(cv);
	dskvs__rcu_read_unlock();
	for (size_t i = 0; i < nc; i++) {
		d.coll = names[i];
		DT_RC(dskvs_get_all(s, names[i], dump_member, &d), DSKVS_OK);
	}
	qsort(d.lines, d.n, sizeof(*d.lines), cmp_str);
	size_t total = 1;
	for (size_t i = 0; i < d.n; i++)
		total += strlen(d.lines[i]) + 1;
	char *out = malloc(total), *p = out;
	*p = '\0';
	for (size_t i = 0; i < d.n; i++) {
		p += sprintf(p, "%s\n", d.lines[i]);
		free(d.lines[i]);
	}
	for (size_t i = 0; i < nc; i++)
		free(names[i]);
	free(names);
	free(d.lines);
	return out;
}

/* ---- the hooks -------------------------------------------------------------
 * One state for all cases; each case sets what it needs. */
static struct {
	dskvs *s;
	pthread_mutex_t mu;
	pthread_cond_t cv;

	/* log_order */
	bool check_order;
	unsigned enqueued, order_bad;
	char order_why[160];

	/* grace */
	const void *watch[3]; /* blocks to watch */
	bool freed[3];        /* atomic */

	/* dead_check: hold the DeleteAll at its enqueue */
	bool hold_delall, delall_held, delall_go;

	/* sync_gate / sticky: the janitor's fdatasync of the log */
	bool gate_armed, gate_closed, fail_sync;
	unsigned sync_entered, sync_bad;
	uint64_t synced_to; /* q.dequeued when the last fdatasync began */

	/* compact_gather */
	void (*on_gather)(void);
	unsigned gather_calls, gather_in_rcu;

	/* map_grace */
	const void *watch_map;
	bool map_freed; /* atomic */

	/* room: the members map at the enqueue of a put */
	bool check_room;
	const void *room_map;

	/* batch_publish: each move of the ring's p_tail */
	bool check_publish;
	unsigned published, publish_bad;

	/* get_all_locked: each gather of a collection's members */
	bool check_gather;
	unsigned gathers, gather_unlocked;

	/* batch_undo: the insert that fails (1 = the first from now) */
	unsigned fail_set_at, set_calls;

	/* backup_cut: a write made once the copy of the cut has begun */
	bool late_write;

	/* torn_cut_synced */
	int cut_fd; /* the log fd truncated and not synced since, or -1 */
	bool cut_seen;
	unsigned cut_bad;
} g = { .mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
	.cut_fd = -1 };

static void hook(int point, void *arg)
{
	if (point == DSKVS__HOOK_BLK_FREE) {
		for (int i = 0; i < 3; i++)
			if (g.watch[i] == arg)
				__atomic_store_n(&g.freed[i], true,
				                 __ATOMIC_SEQ_CST);
		return;
	}
	if (point == DSKVS__HOOK_MAP_FREE) {
		if (arg == g.watch_map)
			__atomic_store_n(&g.map_freed, true, __ATOMIC_SEQ_CST);
		return;
	}
	if (point == DSKVS__HOOK_PUBLISH) {
		/* The producer that just moved p_tail (the case has one):
		 * the last slot it published must not carry the group flag,
		 * or the janitor could drain part of a batch of writes. */
		if (!g.check_publish)
			return;
		struct dskvs__queue *q = arg;
		unsigned tail = ck_pr_load_uint(&q->ring.p_tail);
		void *last = q->ring_buf[(tail - 1) & q->ring.mask].value;
		pthread_mutex_lock(&g.mu);
		g.published++;
		if (dskvs__tag_grp(last))
			g.publish_bad++;
		pthread_mutex_unlock(&g.mu);
		return;
	}
	if (point == DSKVS__HOOK_MEMBER_SET) {
		if (g.fail_set_at && ++g.set_calls == g.fail_set_at)
			*(int *)arg = DSKVS_ENOMEM;
		return;
	}
	if (point == DSKVS__HOOK_MEMBERS_GATHER) {
		/* Its caller must hold the lock (a default mutex: trylock
		 * fails for its owner too). */
		struct dskvs__coll *c = arg;
		if (!g.check_gather)
			return;
		g.gathers++;
		if (pthread_mutex_trylock(&c->lock) == 0) {
			pthread_mutex_unlock(&c->lock);
			g.gather_unlocked++;
		}
		return;
	}
	if (point == DSKVS__HOOK_GATHER) {
		/* The janitor: a batch's fdatasync may follow, which must
		 * not hold up reclamation. */
		g.gather_calls++;
		if (dskvs__rcu_ongoing())
			g.gather_in_rcu++;
		void (*fn)(void) = g.on_gather;
		g.on_gather = NULL; /* once */
		if (fn)
			fn();
		return;
	}
	if (point != DSKVS__HOOK_ENQUEUE)
		return;
	unsigned op;
	const struct dskvs__rec_ref *rr = arg;
	const struct dskvs__name *nm = rr->name;
	(void)dskvs__untag(rr->p, &op);
	if (g.check_room && op == DSKVS_OP_PUT) {
		/* Inside the writer's read-side section, its lock held. */
		struct dskvs__coll *c =
		    dskvs__coll_lookup(&g.s->t, nm->s, nm->len);
		g.room_map = c ? ck_pr_load_ptr(&c->members.map) : NULL;
	}
	if (g.check_order) {
		/* The writer is inside a read-side section: the lookup is
		 * safe. Its collection must still be in the table and be
		 * locked (by the writer: the case has one writer). */
		struct dskvs__coll *c =
		    dskvs__coll_lookup(&g.s->t, nm->s, nm->len);
		pthread_mutex_lock(&g.mu);
		g.enqueued++;
		if (c == NULL) {
			g.order_bad++;
			snprintf(g.order_why, sizeof(g.order_why),
			         "op %u on %.*s queued after its collection "
			         "left the table",
			         op, (int)nm->len, nm->s);
		} else if (pthread_mutex_trylock(&c->lock) == 0) {
			pthread_mutex_unlock(&c->lock);
			g.order_bad++;
			snprintf(g.order_why, sizeof(g.order_why),
			         "op %u on %.*s queued without the collection "
			         "lock",
			         op, (int)nm->len, nm->s);
		}
		pthread_mutex_unlock(&g.mu);
	}
	if (op == DSKVS_OP_DELALL && g.hold_delall) {
		pthread_mutex_lock(&g.mu);
		g.delall_held = true;
		pthread_cond_broadcast(&g.cv);
		while (!g.delall_go)
			pthread_cond_wait(&g.cv, &g.mu);
		pthread_mutex_unlock(&g.mu);
	}
}

static int gate_fdatasync(int fd)
{
	if (!g.gate_armed || g.s == NULL || fd != g.s->j.logfd)
		return dskvs__io_libc.fdatasync(fd);
	/* The janitor, about to sync a batch: it has dequeued the batch, and
	 * none of it may be durable yet. */
	uint64_t deq = __atomic_load_n(&g.s->q.dequeued, __ATOMIC_ACQUIRE);
	uint64_t dur = __atomic_load_n(&g.s->q.durable, __ATOMIC_ACQUIRE);
	pthread_mutex_lock(&g.mu);
	if (dur >= deq)
		g.sync_bad++;
	g.sync_entered++;
	pthread_cond_broadcast(&g.cv);
	while (g.gate_closed)
		pthread_cond_wait(&g.cv, &g.mu);
	bool fail = g.fail_sync;
	pthread_mutex_unlock(&g.mu);
	if (fail) {
		errno = EIO;
		return -1;
	}
	int r = dskvs__io_libc.fdatasync(fd);
	pthread_mutex_lock(&g.mu);
	g.synced_to = deq;
	pthread_mutex_unlock(&g.mu);
	return r;
}

static void gate_open(void)
{
	pthread_mutex_lock(&g.mu);
	g.gate_closed = false;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
}

/* Wait until the janitor has entered the gated fdatasync `entered`
 * times. */
static void wait_in_sync(unsigned entered)
{
	for (;;) {
		pthread_mutex_lock(&g.mu);
		bool in = g.sync_entered >= entered;
		pthread_mutex_unlock(&g.mu);
		if (in)
			return;
		yield();
	}
}

/* ---- log_order ---------------------------------------------------------- */

static void case_log_order(const char *dir)
{
	dskvs *s = open_store(dir, 0);
	g.s = s;
	g.check_order = true;
	put(s, "c/a", "1");
	put(s, "c/b", "2");
	DT_RC(dskvs_delete(s, "c/a"), DSKVS_OK);
	DT_RC(dskvs_delete(s, "c/b"), DSKVS_OK); /* the last: c dropped */
	put(s, "c/a", "3");
	put(s, "d/a", "4");
	DT_RC(dskvs_delete_all(s, "c"), DSKVS_OK);
	g.check_order = false;
	DT_CHECK(g.enqueued == 7, "%u records seen queued", g.enqueued);
	DT_CHECK(g.order_bad == 0, "%u records out of order: %s", g.order_bad,
	         g.order_why);
	DT_RC(dskvs_close(s), DSKVS_OK);
}

/* ---- grace -------------------------------------------------------------- */

static void case_grace(const char *dir)
{
	dskvs *s = open_store(dir, 0);
	g.s = s;
	put(s, "c/a", "old-a");
	put(s, "c/b", "old-b");
	put(s, "e/x", "old-x");
	DT_RC(dskvs_sync(s), DSKVS_OK);

	dskvs__rcu_read_lock();
	struct dskvs__coll *c = dskvs__coll_lookup(&s->t, "c", 1);
	struct dskvs__coll *e = dskvs__coll_lookup(&s->t, "e", 1);
	DT_CHECK(c && e, "collections");
	g.watch[0] = dskvs__member_get(c, "a", 1);
	g.watch[1] = dskvs__member_get(c, "b", 1);
	g.watch[2] = dskvs__member_get(e, "x", 1);
	DT_CHECK(g.watch[0] && g.watch[1] && g.watch[2], "blocks");
	/* Replace, delete, DeleteAll, all inside this read-side section;
	 * then let the janitor write everything (and drop its references:
	 * it releases a batch before it takes the next). */
	put(s, "c/a", "new-a");
	DT_RC(dskvs_delete(s, "c/b"), DSKVS_OK);
	DT_RC(dskvs_delete_all(s, "e"), DSKVS_OK);
	DT_RC(dskvs_sync(s), DSKVS_OK);
	put(s, "f/y", "later");
	DT_RC(dskvs_sync(s), DSKVS_OK);
	static const char *what[3] = { "replaced", "deleted",
		                       "removed by DeleteAll" };
	for (int i = 0; i < 3; i++)
		DT_CHECK(!__atomic_load_n(&g.freed[i], __ATOMIC_SEQ_CST),
		         "a block %s was freed while a reader could see it",
		         what[i]);
	/* The blocks are still readable: the section holds them. */
	DT_CHECK(memcmp(dskvs__blk_val((struct dskvs__blk *)g.watch[0]),
	                "old-a", 5) == 0,
	         "replaced block changed");
	dskvs__rcu_read_unlock();
	dskvs__rcu_barrier();
	for (int i = 0; i < 3; i++)
		DT_CHECK(__atomic_load_n(&g.freed[i], __ATOMIC_SEQ_CST),
		         "a block %s was never freed", what[i]);
	memset(g.watch, 0, sizeof(g.watch));
	DT_RC(dskvs_close(s), DSKVS_OK);
}

/* ---- dead_check --------------------------------------------------------- */

static void *do_delall(void *arg)
{
	DT_RC(dskvs_delete_all(arg, "c"), DSKVS_OK);
	return NULL;
}

static void *do_put_x(void *arg)
{
	put(arg, "c/x", "after");
	return NULL;
}

/* Does a thread wait on m? glibc's lock word is 2 once a thread waits on
 * a locked mutex (1: locked, no waiter); the test needs no timing. */
static bool mutex_has_waiter(pthread_mutex_t *m)
{
#if defined(__GLIBC__)
	return __atomic_load_n(&m->__data.__lock, __ATOMIC_ACQUIRE) == 2;
#else
	(void)m;
	return true; /* unknown: the case still runs, without the proof */
#endif
}

static void case_dead_check(const char *dir)
{
	dskvs *s = open_store(dir, 0);
	pthread_t d, w;
	g.s = s;
	put(s, "c/a", "1");
	DT_RC(dskvs_sync(s), DSKVS_OK);

	g.hold_delall = true;
	DT_CHECK(pthread_create(&d, NULL, do_delall, s) == 0, "thread");
	pthread_mutex_lock(&g.mu);
	while (!g.delall_held)
		pthread_cond_wait(&g.cv, &g.mu);
	pthread_mutex_unlock(&g.mu);
	/* The DeleteAll holds c's lock and has not killed it yet: a writer
	 * now finds c in the table and waits on its lock. */
	dskvs__rcu_read_lock();
	struct dskvs__coll *c = dskvs__coll_lookup(&s->t, "c", 1);
	DT_CHECK(c != NULL, "collection c");
	DT_CHECK(pthread_create(&w, NULL, do_put_x, s) == 0, "thread");
	while (!mutex_has_waiter(&c->lock))
		yield();
	dskvs__rcu_read_unlock();
	pthread_mutex_lock(&g.mu);
	g.delall_go = true;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
	pthread_join(d, NULL);
	pthread_join(w, NULL);
	g.hold_delall = false;

	expect(s, "c/a", NULL);
	expect(s, "c/x", "after");
	DT_RC(dskvs_close(s), DSKVS_OK);
	s = open_store(dir, 0);
	expect(s, "c/a", NULL);
	expect(s, "c/x", "after");
	DT_RC(dskvs_close(s), DSKVS_OK);
}

/* ---- sync_gate ---------------------------------------------------------- */

static struct {
	dskvs *s;
	bool done; /* atomic */
	int rc;
} syncer, filler;

static void *do_sync(void *arg)
{
	(void)arg;
	syncer.rc = dskvs_sync(syncer.s);
	__atomic_store_n(&syncer.done, true, __ATOMIC_SEQ_CST);
	return NULL;
}

#define FILL 40

static void *do_fill(void *arg)
{
	(void)arg;
	char key[32];
	for (int i = 0; i < FILL; i++) {
		snprintf(key, sizeof(key), "r/%d", i);
		int rc = dskvs_put(filler.s, key, key, strlen(key), NULL, NULL);
		if (rc != DSKVS_OK && filler.rc == DSKVS_OK)
			filler.rc = rc;
	}
	__atomic_store_n(&filler.done, true, __ATOMIC_SEQ_CST);
	return NULL;
}

static void case_sync_gate(const char *dir)
{
	/* The smallest ring (16 slots), so a writer fills it quickly. */
	dskvs *s = open_store(dir, 16);
	pthread_t ts, tf;
	uint64_t seq;
	g.s = s;
	g.synced_to = 0;
	g.gate_closed = true;
	g.gate_armed = true;

	DT_RC(dskvs_put_seq(s, "k/1", "v1", 2, NULL, NULL, &seq), DSKVS_OK);
	/* The janitor writes the batch and stops in its fdatasync; it must
	 * not get there having skipped the fdatasync either. */
	for (;;) {
		pthread_mutex_lock(&g.mu);
		bool in = g.sync_entered >= 1;
		pthread_mutex_unlock(&g.mu);
		if (in)
			break;
		DT_CHECK(dskvs_durable_seq(s) < seq,
		         "record %llu durable without an fdatasync",
		         (unsigned long long)seq);
		yield();
	}
	DT_CHECK(g.sync_bad == 0, "durable published before the fdatasync");
	DT_CHECK(dskvs_durable_seq(s) < seq, "durable during the fdatasync");
	DT_RC(dskvs_wait_durable(s, seq, 0), DSKVS_ETIMEDOUT);

	/* dskvs_sync must wait: it returns, or waits on the durable count. */
	syncer.s = s;
	DT_CHECK(pthread_create(&ts, NULL, do_sync, NULL) == 0, "thread");
	while (!__atomic_load_n(&syncer.done, __ATOMIC_SEQ_CST) &&
	       __atomic_load_n(&s->q.durable_waiters, __ATOMIC_SEQ_CST) == 0)
		yield();
	DT_CHECK(!__atomic_load_n(&syncer.done, __ATOMIC_SEQ_CST),
	         "dskvs_sync returned while its record was being synced");

	/* A writer that fills the ring waits for room; drops nothing. */
	filler.s = s;
	DT_CHECK(pthread_create(&tf, NULL, do_fill, NULL) == 0, "thread");
	while (!__atomic_load_n(&filler.done, __ATOMIC_SEQ_CST) &&
	       __atomic_load_n(&s->q.space_waiters, __ATOMIC_SEQ_CST) == 0)
		yield();
	DT_CHECK(!__atomic_load_n(&filler.done, __ATOMIC_SEQ_CST),
	         "%d puts went through a full ring", FILL);

	gate_open();
	pthread_join(ts, NULL);
	DT_RC(syncer.rc, DSKVS_OK);
	pthread_mutex_lock(&g.mu);
	uint64_t synced = g.synced_to;
	pthread_mutex_unlock(&g.mu);
	DT_CHECK(s->q.seq_base + synced >= seq,
	         "dskvs_sync returned before the fdatasync of its record");
	pthread_join(tf, NULL);
	DT_RC(filler.rc, DSKVS_OK);
	DT_RC(dskvs_sync(s), DSKVS_OK);
	DT_CHECK(g.sync_bad == 0, "durable published before the fdatasync");
	g.gate_armed = false;
	DT_RC(dskvs_close(s), DSKVS_OK);

	s = open_store(dir, 0);
	expect(s, "k/1", "v1");
	char key[32];
	for (int i = 0; i < FILL; i++) {
		snprintf(key, sizeof(key), "r/%d", i);
		expect(s, key, key);
	}
	DT_RC(dskvs_close(s), DSKVS_OK);
}

/* ---- sticky ------------------------------------------------------------- */

static void case_sticky(const char *dir)
{
	dskvs *s = open_store(dir, 0);
	uint64_t seq1, seq2;
	g.s = s;
	g.gate_closed = true;
	g.fail_sync = true;
	g.gate_armed = true;

	DT_RC(dskvs_put_seq(s, "k/1", "v1", 2, NULL, NULL, &seq1), DSKVS_OK);
	wait_in_sync(1);
	/* Queued while the failing fdatasync runs: after the failure the
	 * janitor discards it; it never writes or syncs that log again. */
	DT_RC(dskvs_put_seq(s, "k/2", "v2", 2, NULL, NULL, &seq2), DSKVS_OK);
	gate_open();
	/* The failure becomes the sticky error; the record never durable. */
	while (__atomic_load_n(&s->q.err, __ATOMIC_ACQUIRE) == 0) {
		DT_CHECK(dskvs_durable_seq(s) < seq1,
		         "durable after a failed fdatasync");
		yield();
	}
	DT_RC(dskvs_wait_durable(s, seq1, 0), DSKVS_EIO);
	/* The janitor has dequeued k/2 once the queue is empty. */
	while (!dskvs__queue_empty(&s->q))
		yield();
	DT_RC(dskvs_wait_durable(s, seq2, 0), DSKVS_EIO);
	DT_RC(dskvs_sync(s), DSKVS_EIO);
	DT_RC(dskvs_put(s, "k/3", "v3", 2, NULL, NULL), DSKVS_EIO);
	DT_RC(dskvs_delete(s, "k/1"), DSKVS_EIO);
	DT_RC(dskvs_delete_all(s, "k"), DSKVS_EIO);
	expect(s, "k/1", "v1"); /* reads go on */
	DT_RC(dskvs_close(s), DSKVS_EIO);
	pthread_mutex_lock(&g.mu);
	unsigned entered = g.sync_entered;
	pthread_mutex_unlock(&g.mu);
	DT_CHECK(entered == 1,
	         "the log was fdatasync'ed %u times after a "
	         "failed fdatasync",
	         entered - 1);
	g.gate_armed = false;
	g.fail_sync = false;
}

/* ---- compact_gather ----------------------------------------------------- */

/* Made in the janitor thread, between two collections of the gather:
 * exactly one of g0 and g1 is already in the snapshot. Ten records, which
 * fill the 16-slot ring past half, so the gather drains them at once (they
 * are the records the compaction holds for its new file). */
static void gather_writes(void)
{
	dskvs *s = g.s;
	DT_RC(dskvs_delete_all(s, "g0"), DSKVS_OK);
	put(s, "g0/n", "new-0");
	put(s, "g0/m0", "again-0");
	DT_RC(dskvs_delete_all(s, "g1"), DSKVS_OK);
	put(s, "g1/n", "new-1");
	put(s, "g1/m1", "again-1");
	put(s, "g0/m1", "also-0");
	DT_RC(dskvs_delete(s, "g0/m0"), DSKVS_OK);
	put(s, "g1/n", "newer-1");
	put(s, "g2/z", "fresh");
}

static void case_compact_gather(const char *dir)
{
	dskvs *s = open_store(dir, 16);
	char key[32], val[32];
	g.s = s;
	g.gather_calls = g.gather_in_rcu = 0;
	for (int c = 0; c < 2; c++)
		for (int m = 0; m < 3; m++) {
			snprintf(key, sizeof(key), "g%d/m%d", c, m);
			snprintf(val, sizeof(val), "old-%d-%d", c, m);
			put(s, key, val);
		}
	DT_RC(dskvs_sync(s), DSKVS_OK);
	g.on_gather = gather_writes;
	DT_RC(dskvs_compact(s), DSKVS_OK);
	DT_CHECK(g.on_gather == NULL, "the gather hook did not run");
	DT_CHECK(g.gather_in_rcu == 0,
	         "%u of %u calls letting the queue move during the gather "
	         "were inside a read-side section",
	         g.gather_in_rcu, g.gather_calls);
	static const char want[] = "g0/m1=also-0\n"
	                           "g0/n=new-0\n"
	                           "g1/m1=again-1\n"
	                           "g1/n=newer-1\n"
	                           "g2/z=fresh\n";
	char *mem = dump_store(s);
	DT_CHECK(strcmp(mem, want) == 0, "memory:\n%s", mem);
	free(mem);
	DT_RC(dskvs_close(s), DSKVS_OK);
	s = open_store(dir, 0);
	char *got = dump_store(s);
	DT_CHECK(strcmp(got, want) == 0, "reopened:\n%swant:\n%s", got, want);
	free(got);
	DT_RC(dskvs_close(s), DSKVS_OK);
}

/* ---- torn_cut_synced ---------------------------------------------------- */

static int cut_ftruncate(int fd, off_t len)
{
	int r = dskvs__io_libc.ftruncate(fd, len);
	if (r == 0) {
		g.cut_fd = fd;
		g.cut_seen = true;
	}
	return r;
}

static int cut_fdatasync(int fd)
{
	int r = dskvs__io_libc.fdatasync(fd);
	if (r == 0 && fd == g.cut_fd)
		g.cut_fd = -1;
	return r;
}

static ssize_t cut_pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	if (fd == g.cut_fd)
		g.cut_bad++;
	return dskvs__io_libc.pwritev(fd, iov, cnt, off);
}

static size_t rec_op(unsigned char *p, uint32_t salt, unsigned op,
                     unsigned flags, uint32_t batch, const char *key,
                     const char *val, uint64_t seq)
{
	size_t kl = strlen(key), vl = strlen(val);
	dskvs__rec_hdr_encode(p, salt, op, flags, batch, key, kl, val, vl, seq);
	memcpy(p + DSKVS_REC_HDR, key, kl);
	memcpy(p + DSKVS_REC_HDR + kl, val, vl);
	return DSKVS_REC_HDR + kl + vl;
}

static size_t rec(unsigned char *p, uint32_t salt, unsigned flags,
                  uint32_t batch, const char *key, const char *val,
                  uint64_t seq)
{
	return rec_op(p, salt, DSKVS_REC_PUT, flags, batch, key, val, seq);
}

static void case_torn_cut_synced(const char *dir)
{
	/* Batch 1 (ended), then batch 2 that a killed writer never synced:
	 * c/b whole, c/c cut short. Open keeps c/b, reports it durable, and
	 * so must sync it before it writes anything or returns. */
	unsigned char buf[512] = { 0 };
	uint32_t salt = 0x5a17c0deu;
	size_t off = DSKVS_FILE_HDR;
	dskvs__file_hdr_encode(buf, salt, DSKVS_FILE_HDR);
	off += rec(buf + off, salt, DSKVS_REC_END, 1, "c/a", "value-a", 1);
	off += rec(buf + off, salt, 0, 2, "c/b", "value-b", 2);
	size_t r3 = off;
	off += rec(buf + off, salt, DSKVS_REC_END, 2, "c/c", "value-c", 3);
	mkdir(dir, 0700);
	char *log = dt_fmt("%s/" DSKVS_LOG_NAME, dir);
	dt_write_file(log, buf, r3 + 40);

	dskvs__io.ftruncate = cut_ftruncate;
	dskvs__io.fdatasync = cut_fdatasync;
	dskvs__io.pwritev = cut_pwritev;
	dskvs *s = NULL;
	DT_RC(dskvs_open(dir, NULL, &s), DSKVS_OK);
	DT_CHECK(g.cut_seen, "open did not cut the torn tail");
	DT_CHECK(g.cut_bad == 0, "open wrote to the log it cut before "
	                         "syncing it");
	DT_CHECK(g.cut_fd == -1, "open returned with the cut log unsynced");
	expect(s, "c/a", "value-a");
	expect(s, "c/b", "value-b");
	expect(s, "c/c", NULL);
	DT_RC(dskvs_close(s), DSKVS_OK);
	dskvs__io = dskvs__io_libc;
	DT_CHECK(dt_file_size(log) > 0, "log");
	free(log);
}

/* ---- crafted ------------------------------------------------------------ */

/* Open a hand-made log `buf[0..len)` in a fresh store at dir; returns the
 * dskvs_open code (the store closed again if it opened). */
static int open_log(const char *dir, const unsigned char *buf, size_t len)
{
	dt_rmtree(dir);
	mkdir(dir, 0700);
	char *log = dt_fmt("%s/" DSKVS_LOG_NAME, dir);
	dt_write_file(log, buf, len);
	free(log);
	dskvs *s = NULL;
	int rc = dskvs_open(dir, NULL, &s);
	if (rc == DSKVS_OK)
		DT_RC(dskvs_close(s), DSKVS_OK);
	return rc;
}

static void case_crafted(const char *dir)
{
	unsigned char buf[512];
	uint32_t salt = 0x0dd5a17u;
	size_t off, r2;

	/* Valid checksums over impossible content, at the unsynced end of
	 * the log: a crash cannot write that, so it is damage, never a torn
	 * tail. A reserved header byte set (checksum made over it): */
	memset(buf, 0, sizeof(buf));
	dskvs__file_hdr_encode(buf, salt, DSKVS_FILE_HDR);
	off = DSKVS_FILE_HDR;
	off += rec(buf + off, salt, DSKVS_REC_END, 1, "c/a", "value-a", 1);
	r2 = off;
	off += rec(buf + off, salt, DSKVS_REC_END, 2, "c/b", "value-b", 2);
	buf[r2 + 10] = 1;
	uint32_t crc = dskvs__crc32c(salt, buf + r2 + 4, DSKVS_REC_HDR - 4);
	for (int i = 0; i < 4; i++)
		buf[r2 + i] = (unsigned char)(crc >> (8 * i));
	DT_RC(open_log(dir, buf, off), DSKVS_ECORRUPT);
	/* A malformed key (no '/' in a put's key), checksums valid: */
	memset(buf, 0, sizeof(buf));
	dskvs__file_hdr_encode(buf, salt, DSKVS_FILE_HDR);
	off = DSKVS_FILE_HDR;
	off += rec(buf + off, salt, DSKVS_REC_END, 1, "c/a", "value-a", 1);
	off += rec(buf + off, salt, DSKVS_REC_END, 2, "cb", "value-b", 2);
	DT_RC(open_log(dir, buf, off), DSKVS_ECORRUPT);

	/* Sequence numbers must rise outside the sealed part: a record that
	 * repeats the one before it is refused (a crash cannot write it). */
	memset(buf, 0, sizeof(buf));
	dskvs__file_hdr_encode(buf, salt, DSKVS_FILE_HDR);
	off = DSKVS_FILE_HDR;
	off += rec(buf + off, salt, DSKVS_REC_END, 1, "c/a", "value-a", 7);
	off += rec(buf + off, salt, DSKVS_REC_END, 2, "c/b", "value-b", 7);
	DT_RC(open_log(dir, buf, off), DSKVS_ECORRUPT);
	/* ... and one a step above opens. */
	memset(buf, 0, sizeof(buf));
	dskvs__file_hdr_encode(buf, salt, DSKVS_FILE_HDR);
	off = DSKVS_FILE_HDR;
	off += rec(buf + off, salt, DSKVS_REC_END, 1, "c/a", "value-a", 7);
	off += rec(buf + off, salt, DSKVS_REC_END, 2, "c/b", "value-b", 8);
	DT_RC(open_log(dir, buf, off), DSKVS_OK);
}

/* ---- nul_value ---------------------------------------------------------- */

static void case_nul_value(const char *dir)
{
	dskvs *s = open_store(dir, 0);
	static const char v[3] = { 0, 1, 2 };
	DT_RC(dskvs_put(s, "z/k", v, 3, NULL, NULL), DSKVS_OK);
	DT_RC(dskvs_close(s), DSKVS_OK);
	s = NULL;
	DT_RC(dskvs_open(dir, NULL, &s), DSKVS_OK);
	char buf[8];
	size_t len = 0;
	DT_RC(dskvs_get(s, "z/k", buf, sizeof(buf), &len), DSKVS_OK);
	DT_CHECK(len == 3 && memcmp(buf, v, 3) == 0, "value");
	DT_RC(dskvs_close(s), DSKVS_OK);

	/* A DeleteAll (its key is the bare collection name) as the last
	 * record, then zeros: a torn tail to cut, with the byte right after
	 * the name a NUL that is not part of the key. */
	unsigned char log[256] = { 0 };
	uint32_t salt = 0x6e756c6cu;
	size_t off = DSKVS_FILE_HDR;
	dskvs__file_hdr_encode(log, salt, DSKVS_FILE_HDR);
	off += rec(log + off, salt, DSKVS_REC_END, 1, "d/a", "value-a", 1);
	off += rec(log + off, salt, DSKVS_REC_END, 2, "e/b", "value-b", 2);
	off += rec_op(log + off, salt, DSKVS_REC_DELALL, DSKVS_REC_END, 3, "d",
	              "", 3);
	DT_RC(open_log(dir, log, off + 40), DSKVS_OK);
	s = open_store(dir, 0);
	expect(s, "d/a", NULL);
	expect(s, "e/b", "value-b");
	DT_RC(dskvs_close(s), DSKVS_OK);
}

/* ---- map_grace ---------------------------------------------------------- */

static void case_map_grace(const char *dir)
{
	dskvs *s = open_store(dir, 0);
	char key[32];
	g.s = s;
	for (int i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "c/m%d", i);
		put(s, key, "v");
	}
	dskvs__rcu_read_lock();
	struct dskvs__coll *c = dskvs__coll_lookup(&s->t, "c", 1);
	DT_CHECK(c != NULL, "collection");
	const void *old = ck_pr_load_ptr(&c->members.map);
	g.watch_map = old;
	/* Delete until the removals rebuild the map (a fifth of 128 slots),
	 * all inside this read-side section, as a reader probing the old
	 * map would be. */
	int i = 0;
	while (i < 39 && ck_pr_load_ptr(&c->members.map) == old) {
		snprintf(key, sizeof(key), "c/m%d", i++);
		DT_RC(dskvs_delete(s, key), DSKVS_OK);
	}
	DT_CHECK(ck_pr_load_ptr(&c->members.map) != old,
	         "%d removals never rebuilt the map", i);
	DT_RC(dskvs_sync(s), DSKVS_OK);
	DT_CHECK(!__atomic_load_n(&g.map_freed, __ATOMIC_SEQ_CST),
	         "the replaced map was freed while a reader could probe it");
	dskvs__rcu_read_unlock();
	dskvs__rcu_barrier();
	DT_CHECK(__atomic_load_n(&g.map_freed, __ATOMIC_SEQ_CST),
	         "the replaced map was never freed");
	g.watch_map = NULL;
	for (int k = i; k < 40; k++) {
		snprintf(key, sizeof(key), "c/m%d", k);
		expect(s, key, "v");
	}
	DT_RC(dskvs_close(s), DSKVS_OK);
}

/* ---- room --------------------------------------------------------------- */

static void case_room(const char *dir)
{
	dskvs *s = open_store(dir, 0);
	char key[32];
	unsigned grew_inside = 0, grown = 0;
	g.s = s;
	g.check_room = true;
	const void *first = NULL;
	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "c/m%d", i);
		g.room_map = NULL;
		put(s, key, "v");
		dskvs__rcu_read_lock();
		struct dskvs__coll *c = dskvs__coll_lookup(&s->t, "c", 1);
		DT_CHECK(c != NULL, "collection");
		const void *now = ck_pr_load_ptr(&c->members.map);
		dskvs__rcu_read_unlock();
		if (now != g.room_map)
			grew_inside++;
		if (first == NULL)
			first = now;
		else if (now != first)
			grown++;
	}
	g.check_room = false;
	DT_CHECK(grown > 0, "300 members and the map never grew");
	DT_CHECK(grew_inside == 0,
	         "%u puts grew the members map after reserving their "
	         "queue slot",
	         grew_inside);
	DT_RC(dskvs_close(s), DSKVS_OK);
}

/* ---- update_misuse ------------------------------------------------------ */

static int misuse_fn(const void *old, size_t old_len, int exists,
                     const void **new_val, size_t *new_len, void *arg)
{
	int *rc = arg;
	(void)old;
	(void)old_len;
	(void)exists;
	(void)new_val;
	(void)new_len;
	/* Neither would deadlock without the check: another collection's
	 * lock, and a sync the janitor can serve. */
	rc[0] = dskvs_put(g.s, "other/k", "v", 1, NULL, NULL);
	rc[1] = dskvs_sync(g.s);
	return DSKVS_UPDATE_KEEP;
}

static void case_update_misuse(const char *dir)
{
	dskvs *s = open_store(dir, 0);
	int rc[2] = { 1, 1 };
	g.s = s;
	put(s, "u/k", "val");
	DT_RC(dskvs_update(s, "u/k", misuse_fn, rc, NULL), DSKVS_OK);
	DT_RC(rc[0], DSKVS_EINVAL);
	DT_RC(rc[1], DSKVS_EINVAL);
	expect(s, "other/k", NULL);
	expect(s, "u/k", "val");
	DT_RC(dskvs_close(s), DSKVS_OK);
}

/* ---- batches of writes -------------------------------------------------- */

/* A batch of three puts to "c" ("c/a", "c/b", "c/d", values of one byte:
 * 36-byte records), after one synced put. */
static const dskvs_batch_op three[3] = { { "a", "1", 1, 0 },
	                                 { "b", "2", 1, 0 },
	                                 { "d", "3", 1, 0 } };
#define THREE_REC ((uint64_t)DSKVS_REC_HDR + 3 + 1)

/* A log cut inside the last record of a batch: none of the batch is
 * applied, and the tail moved aside starts at the batch's first record. */
static void case_batch_torn(const char *dir)
{
	dskvs *s = open_store(dir, 0);
	put(s, "c/x", "0");
	DT_RC(dskvs_close(s), DSKVS_OK);
	char *log = dt_fmt("%s/" DSKVS_LOG_NAME, dir);
	uint64_t l0 = (uint64_t)dt_file_size(log);
	s = open_store(dir, 0);
	DT_RC(dskvs_write_batch(s, "c", three, 3, NULL), DSKVS_OK);
	DT_RC(dskvs_close(s), DSKVS_OK);
	size_t len;
	unsigned char *img = dt_read_file(log, &len);
	DT_CHECK(len >= l0 + 3 * THREE_REC, "log of %zu bytes", len);
	/* The batch's records follow the first open's log. */
	for (uint64_t cut = l0 + 2 * THREE_REC + 1; cut < l0 + 3 * THREE_REC;
	     cut += 17) {
		char *d = dt_fmt("%s.cut%llu", dir, (unsigned long long)cut);
		char *dlog = dt_fmt("%s/" DSKVS_LOG_NAME, d);
		mkdir(d, 0700);
		dt_write_file(dlog, img, (size_t)cut);
		dskvs *c = open_store(d, 0);
		expect(c, "c/x", "0");
		expect(c, "c/a", NULL);
		expect(c, "c/b", NULL);
		expect(c, "c/d", NULL);
		DT_RC(dskvs_close(c), DSKVS_OK);
		char *torn = dt_fmt("%s/" DSKVS_TORN_PREFIX "%llu", d,
		                    (unsigned long long)l0);
		struct stat st;
		DT_CHECK(stat(torn, &st) == 0,
		         "cut at %llu: no %s (the tail must start at the "
		         "batch's first record)",
		         (unsigned long long)cut, torn);
		DT_CHECK((uint64_t)st.st_size == cut - l0,
		         "cut at %llu: %lld bytes moved aside, want %llu",
		         (unsigned long long)cut, (long long)st.st_size,
		         (unsigned long long)(cut - l0));
		free(torn);
		free(dlog);
		free(d);
	}
	free(img);
	free(log);
}

/* The janitor held in a fdatasync while a record and a batch of
 * batch_max_records writes queue behind it: its next drain passes its
 * bound to take the batch whole, so the log reopens with all of it. */
static void case_batch_drain(const char *dir)
{
	dskvs_options o;
	dskvs *s = NULL;
	dt_options(&o, DSKVS_SYNC_ASYNC);
	o.auto_compact = 0;
	o.batch_max_records = 4;
	DT_RC(dskvs_open(dir, &o, &s), DSKVS_OK);
	g.s = s;
	g.sync_entered = 0;
	g.gate_closed = true;
	g.gate_armed = true;
	put(s, "k/1", "v1");
	wait_in_sync(1);
	put(s, "k/2", "v2");
	const dskvs_batch_op four[4] = { { "g0", "0", 1, 0 },
		                         { "g1", "1", 1, 0 },
		                         { "g2", "2", 1, 0 },
		                         { "g3", "3", 1, 0 } };
	DT_RC(dskvs_write_batch(s, "c", four, 4, NULL), DSKVS_OK);
	gate_open();
	DT_RC(dskvs_sync(s), DSKVS_OK);
	g.gate_armed = false;
	DT_RC(dskvs_close(s), DSKVS_OK);
	g.s = NULL;
	s = NULL;
	int rc = dskvs_open(dir, &o, &s);
	DT_CHECK(rc == DSKVS_OK,
	         "reopen: %s: %s (a batch split across two "
	         "of the janitor's batches)",
	         dskvs_err_name(rc), dskvs_errmsg(NULL));
	expect(s, "k/2", "v2");
	expect(s, "c/g0", "0");
	expect(s, "c/g3", "3");
	DT_RC(dskvs_close(s), DSKVS_OK);
}

/* Every move of the ring's p_tail publishes whole batches of writes. */
static void case_batch_publish(const char *dir)
{
	dskvs *s = open_store(dir, 0);
	g.check_publish = true;
	for (int i = 0; i < 20; i++) {
		DT_RC(dskvs_write_batch(s, "c", three, 3, NULL), DSKVS_OK);
		put(s, "k/1", "v");
		DT_RC(dskvs_write_batch(s, "c", three, 1, NULL), DSKVS_OK);
	}
	g.check_publish = false;
	DT_CHECK(g.published >= 60, "%u publications seen", g.published);
	DT_CHECK(g.publish_bad == 0,
	         "%u publications ended inside a batch of writes",
	         g.publish_bad);
	DT_RC(dskvs_close(s), DSKVS_OK);
}

/* The limit on the ops of one batch: batch_max_records. */
static void case_batch_limit(const char *dir)
{
	dskvs_options o;
	dskvs *s = NULL;
	dt_options(&o, DSKVS_SYNC_ASYNC);
	o.batch_max_records = 2;
	DT_RC(dskvs_open(dir, &o, &s), DSKVS_OK);
	DT_RC(dskvs_write_batch(s, "c", three, 3, NULL), DSKVS_EBATCH);
	expect(s, "c/a", NULL);
	DT_RC(dskvs_write_batch(s, "c", three, 2, NULL), DSKVS_OK);
	expect(s, "c/b", "2");
	DT_RC(dskvs_close(s), DSKVS_OK);
}

/* dskvs_get_all gathers under the collection's lock (so it sees a batch,
 * applied under that lock, all or none): the gather hook checks it, in the
 * gathering thread. */
static int ga_visit(const char *m, size_t ml, const void *v, size_t vl,
                    void *arg)
{
	(void)m, (void)ml, (void)v, (void)vl;
	(*(int *)arg)++;
	return 0;
}

static void case_get_all_locked(const char *dir)
{
	dskvs *s = open_store(dir, 0);
	int n = 0;
	DT_RC(dskvs_write_batch(s, "c", three, 3, NULL), DSKVS_OK);
	g.check_gather = true;
	DT_RC(dskvs_get_all(s, "c", ga_visit, &n), DSKVS_OK);
	g.check_gather = false;
	DT_CHECK(n == 3, "get_all saw %d members", n);
	DT_CHECK(g.gathers >= 1, "no gather seen");
	DT_CHECK(g.gather_unlocked == 0,
	         "dskvs_get_all gathered without the collection's lock");
	DT_RC(dskvs_close(s), DSKVS_OK);
}

/* ---- hot backup --------------------------------------------------------- */

static struct {
	dskvs *s;
	const char *dest;
	int rc, done;
} bk;
static void *do_backup(void *arg)
{
	(void)arg;
	bk.rc = dskvs_backup(bk.s, bk.dest);
	__atomic_store_n(&bk.done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* A write that returned before dskvs_backup is in the copy even when the
 * janitor is inside the fdatasync of an earlier batch when it is called:
 * the backup waits for it to be durable before it asks for the cut. */
static void case_backup_wait(const char *dir)
{
	dskvs *s = open_store(dir, 0);
	pthread_t t;
	char *dest = dt_fmt("%s.copy", dir);
	g.s = s;
	g.sync_entered = 0;
	g.gate_closed = true;
	g.gate_armed = true;
	put(s, "k/1", "v1");
	wait_in_sync(1);
	put(s, "k/2", "v2"); /* returned, queued behind the held batch */
	bk.s = s;
	bk.dest = dest;
	DT_CHECK(pthread_create(&t, NULL, do_backup, NULL) == 0, "thread");
	/* It waits for k/2 to be durable, or asked for its cut already. */
	while (__atomic_load_n(&s->q.durable_waiters, __ATOMIC_SEQ_CST) == 0 &&
	       !__atomic_load_n(&s->j.compact_req, __ATOMIC_SEQ_CST) &&
	       !__atomic_load_n(&bk.done, __ATOMIC_SEQ_CST))
		yield();
	gate_open();
	pthread_join(t, NULL);
	g.gate_armed = false;
	DT_RC(bk.rc, DSKVS_OK);
	DT_RC(dskvs_close(s), DSKVS_OK);
	g.s = NULL;
	dskvs *b = open_store(dest, 0);
	expect(b, "k/1", "v1");
	expect(b, "k/2", "v2");
	DT_RC(dskvs_close(b), DSKVS_OK);
	free(dest);
}

/* The copy holds the cut, not the log as it is when the copy is made: a
 * write synced once the copy's file exists is not in it. */
static int late_openat(int dfd, const char *name, int flags, mode_t mode)
{
	int fd = dskvs__io_libc.openat(dfd, name, flags, mode);
	if (g.late_write && strcmp(name, DSKVS_LOG_TMP) == 0) {
		g.late_write = false;
		put(g.s, "late/x", "after the cut");
		DT_RC(dskvs_sync(g.s), DSKVS_OK);
	}
	return fd;
}

static void case_backup_cut(const char *dir)
{
	dskvs *s = open_store(dir, 0);
	char *dest = dt_fmt("%s.copy", dir);
	g.s = s;
	put(s, "k/1", "v1");
	DT_RC(dskvs_sync(s), DSKVS_OK);
	g.late_write = true;
	dskvs__io.openat = late_openat;
	DT_RC(dskvs_backup(s, dest), DSKVS_OK);
	dskvs__io.openat = dskvs__io_libc.openat;
	DT_CHECK(!g.late_write, "the copy's file was never opened");
	expect(s, "late/x", "after the cut");
	DT_RC(dskvs_close(s), DSKVS_OK);
	g.s = NULL;
	dskvs *b = open_store(dest, 0);
	expect(b, "k/1", "v1");
	expect(b, "late/x", NULL);
	DT_RC(dskvs_close(b), DSKVS_OK);
	free(dest);
}

/* dskvs_backup_path on a store whose janitor is inside the fdatasync of a
 * batch: that batch is in the file but not proven synced, so it is not
 * copied. */
static void case_backup_path_unproven(const char *dir)
{
	dskvs *s = open_store(dir, 0);
	char *dest = dt_fmt("%s.copy", dir);
	g.s = s;
	put(s, "k/1", "v1");
	DT_RC(dskvs_sync(s), DSKVS_OK);
	g.sync_entered = 0;
	g.gate_closed = true;
	g.gate_armed = true;
	put(s, "k/2", "v2");
	wait_in_sync(1); /* k/2 is written, its fdatasync held */
	dskvs_backup_report rep;
	int rc = dskvs_backup_path(dir, dest, &rep);
	gate_open();
	g.gate_armed = false;
	DT_CHECK(rc == DSKVS_OK, "dskvs_backup_path: %s: %s",
	         dskvs_err_name(rc), dskvs_errmsg(NULL));
	DT_CHECK(rep.bytes < rep.file_bytes,
	         "copied %llu of %llu bytes: the unsynced batch too",
	         (unsigned long long)rep.bytes,
	         (unsigned long long)rep.file_bytes);
	DT_RC(dskvs_close(s), DSKVS_OK);
	g.s = NULL;
	dskvs *b = open_store(dest, 0);
	expect(b, "k/1", "v1");
	expect(b, "k/2", NULL);
	DT_RC(dskvs_close(b), DSKVS_OK);
	free(dest);
}

/* ---- main --------------------------------------------------------------- */

/* A batch of writes whose k-th insert fails (out of memory for the map,
 * made to happen by the hook) changes nothing, for every k: the members it
 * had replaced or deleted are back with their values and versions, those
 * it had added are gone, a collection it created is gone, nothing reaches
 * the log, and the store takes writes after. */
static uint64_t version(dskvs *s, const char *key)
{
	uint64_t v = 0;
	size_t len = 0;
	char buf[64];
	int rc = dskvs_get_seq(s, key, buf, sizeof(buf), &len, &v);
	DT_CHECK(rc == DSKVS_OK || rc == DSKVS_NOTFOUND, "%s: %s", key,
	         dskvs_err_name(rc));
	return rc == DSKVS_OK ? v : 0;
}

static void case_batch_undo(const char *dir)
{
	static const char *const keys[] = { "c/a", "c/b", "c/d",
		                            "c/e", "c/f", "c/zz" };
	const dskvs_batch_op ops[] = {
		{ "a", "A2", 2, 0 },  { "b", NULL, 0, 1 }, { "e", "E", 1, 0 },
		{ "zz", NULL, 0, 1 }, { "d", "D2", 2, 0 }, { "a", "A3", 2, 0 },
		{ "f", "F", 1, 0 },
	};
	const dskvs_batch_op fresh[] = { { "x", "1", 1, 0 },
		                         { "y", "2", 1, 0 } };
	const size_t nops = sizeof(ops) / sizeof(ops[0]);
	uint64_t before[6], seq = 0;
	dskvs *s = open_store(dir, 0);
	g.s = s;
	put(s, "c/a", "1");
	put(s, "c/b", "2");
	put(s, "c/d", "4");
	put(s, "other/k", "v");
	for (int i = 0; i < 6; i++)
		before[i] = version(s, keys[i]);
	char *want = dump_store(s);
	/* Five puts: fail each of their inserts in turn. */
	for (unsigned k = 1; k <= 5; k++) {
		g.set_calls = 0;
		g.fail_set_at = k;
		int rc = dskvs_write_batch(s, "c", ops, nops, &seq);
		g.fail_set_at = 0;
		DT_CHECK(rc == DSKVS_ENOMEM, "insert %u failed: batch says %s",
		         k, dskvs_err_name(rc));
		char *now = dump_store(s);
		DT_CHECK(strcmp(now, want) == 0,
		         "insert %u failed: the store is\n%s\nnot\n%s", k, now,
		         want);
		free(now);
		for (int i = 0; i < 6; i++)
			DT_CHECK(version(s, keys[i]) == before[i],
			         "insert %u failed: %s has version %llu, was "
			         "%llu",
			         k, keys[i],
			         (unsigned long long)version(s, keys[i]),
			         (unsigned long long)before[i]);
	}
	/* A batch that creates its collection, failing at its second put. */
	g.set_calls = 0;
	g.fail_set_at = 2;
	DT_RC(dskvs_write_batch(s, "fresh", fresh, 2, NULL), DSKVS_ENOMEM);
	g.fail_set_at = 0;
	expect(s, "fresh/x", NULL);
	char *now = dump_store(s);
	DT_CHECK(strcmp(now, want) == 0, "after the failed fresh batch:\n%s",
	         now);
	free(now);
	/* The store goes on, and only what succeeded is in the log. */
	DT_RC(dskvs_write_batch(s, "c", ops, nops, &seq), DSKVS_OK);
	expect(s, "c/a", "A3");
	DT_RC(dskvs_close(s), DSKVS_OK);
	g.s = NULL;
	s = open_store(dir, 0);
	expect(s, "c/a", "A3");
	expect(s, "c/b", NULL);
	expect(s, "c/d", "D2");
	expect(s, "c/e", "E");
	expect(s, "c/f", "F");
	expect(s, "fresh/x", NULL);
	expect(s, "other/k", "v");
	DT_CHECK(version(s, "c/f") == seq, "c/f: version %llu, batch %llu",
	         (unsigned long long)version(s, "c/f"),
	         (unsigned long long)seq);
	DT_RC(dskvs_close(s), DSKVS_OK);
	free(want);
}

static const struct {
	const char *name;
	void (*fn)(const char *dir);
} cases[] = {
	{ "log_order", case_log_order },
	{ "grace", case_grace },
	{ "dead_check", case_dead_check },
	{ "sync_gate", case_sync_gate },
	{ "sticky", case_sticky },
	{ "compact_gather", case_compact_gather },
	{ "torn_cut_synced", case_torn_cut_synced },
	{ "crafted", case_crafted },
	{ "nul_value", case_nul_value },
	{ "map_grace", case_map_grace },
	{ "room", case_room },
	{ "update_misuse", case_update_misuse },
	{ "batch_torn", case_batch_torn },
	{ "batch_drain", case_batch_drain },
	{ "batch_publish", case_batch_publish },
	{ "batch_limit", case_batch_limit },
	{ "get_all_locked", case_get_all_locked },
	{ "backup_wait", case_backup_wait },
	{ "backup_cut", case_backup_cut },
	{ "backup_path_unproven", case_backup_path_unproven },
	{ "batch_undo", case_batch_undo },
};

int main(int argc, char **argv)
{
	int ran = 0;
	dskvs__hook = hook;
	dskvs__io.fdatasync = gate_fdatasync;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (argc > 1 && strcmp(argv[1], cases[i].name) != 0)
			continue;
		char *base = dt_mkdtemp("mutants");
		char *dir = dt_fmt("%s/store", base);
		printf("mutants/%s\n", cases[i].name);
		fflush(stdout);
		cases[i].fn(dir);
		g.s = NULL;
		dskvs__io = dskvs__io_libc;
		dskvs__io.fdatasync = gate_fdatasync;
		dt_rmtree(base);
		free(dir);
		free(base);
		ran++;
	}
	if (ran == 0) {
		fprintf(stderr, "test_mutants: no case \"%s\"\n", argv[1]);
		return 2;
	}
	dskvs__hook = NULL;
	return 0;
}
