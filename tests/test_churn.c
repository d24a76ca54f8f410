/*
 * Churn: keys and collections created and deleted while the live count stays
 * put (DESIGN.md section 4, rule 7). White-box: the tests look at the real
 * ck_ht maps of a store (struct dskvs, through src/internal.h) and count
 * their empty, tombstone and live slots, so what they check is the table's
 * shape, not the library's own bookkeeping of it and never a timing.
 *
 *  - An insert of a new key probes until it meets an empty slot, so the
 *    cost of a write stays bounded only while a fair share of the slots is
 *    empty: after any amount of churn, at least a quarter of every map must
 *    be empty, at both levels (member tables, the table of collections).
 *  - A table shrinks once its live count falls far below its capacity.
 *  - Readers never miss a key while the maps under them are rebuilt.
 */
#include "testutil.h"

#include "internal.h"

#include <ck_pr.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

/* ck_ht's map is opaque; this is its layout in ck 0.7.x (src/ck_ht.c,
 * without pointer packing). map_check() validates it against what ck_ht
 * reports, so a different layout fails loudly instead of lying. */
struct map_mirror {
	unsigned int mode;
	uint64_t deletions;
	uint64_t probe_maximum;
	uint64_t probe_length;
	uint64_t probe_limit;
	uint64_t size;
	uint64_t n_entries;
	uint64_t mask;
	uint64_t capacity;
	uint64_t step;
	void *probe_bound;
	struct ck_ht_entry *entries;
};

struct shape {
	uint64_t capacity, live, tombstones, empty;
};

/* Call inside a read-side section, with no writer on ht. */
static struct shape map_shape(ck_ht_t *ht)
{
	struct map_mirror *m = (void *)ck_pr_load_ptr(&ht->map);
	struct shape sh = { 0 };

	cr_assert(m->capacity >= 2 && (m->capacity & (m->capacity - 1)) == 0,
	          "ck_ht map layout differs from the mirror (capacity %llu)",
	          (unsigned long long)m->capacity);
	cr_assert_eq(m->mask, m->capacity - 1, "ck_ht map layout differs");
	cr_assert_eq(m->n_entries, ck_ht_count(ht), "ck_ht map layout differs");
	sh.capacity = m->capacity;
	for (uint64_t i = 0; i < m->capacity; i++) {
		uintptr_t k = m->entries[i].key;
		if (k == CK_HT_KEY_EMPTY)
			sh.empty++;
		else if (k == CK_HT_KEY_TOMBSTONE)
			sh.tombstones++;
		else
			sh.live++;
	}
	cr_assert_eq(sh.live, m->n_entries, "ck_ht map layout differs");
	return sh;
}

static struct shape members_shape(dskvs *s, const char *coll)
{
	dskvs__rcu_read_lock();
	struct dskvs__coll *c = dskvs__coll_lookup(&s->t, coll, strlen(coll));
	cr_assert_not_null(c, "collection %s missing", coll);
	struct shape sh = map_shape(&c->members);
	dskvs__rcu_read_unlock();
	return sh;
}

static struct shape colls_shape(dskvs *s)
{
	dskvs__rcu_read_lock();
	struct shape sh = map_shape(&s->t.colls);
	dskvs__rcu_read_unlock();
	return sh;
}

static void put_key(dskvs *s, const char *fmt, uint64_t i)
{
	char key[64];
	snprintf(key, sizeof(key), fmt, (unsigned long long)i);
	cr_assert_eq(dskvs_put(s, key, "v", 1, NULL, NULL), DSKVS_OK, "put %s",
	             key);
}

static void del_key(dskvs *s, const char *fmt, uint64_t i)
{
	char key[64];
	snprintf(key, sizeof(key), fmt, (unsigned long long)i);
	cr_assert_eq(dskvs_delete(s, key), DSKVS_OK, "delete %s", key);
}

static void report(const char *what, struct shape sh)
{
	cr_log_info(
	    "%s: capacity %llu, live %llu, tombstones %llu, empty "
	    "%llu",
	    what, (unsigned long long)sh.capacity, (unsigned long long)sh.live,
	    (unsigned long long)sh.tombstones, (unsigned long long)sh.empty);
}

#define LIVE  2000
#define STEPS 60000

TestSuite(churn, .init = tu_setup, .fini = tu_teardown, .timeout = 120);

/* One collection of LIVE members; each step adds a member and deletes the
 * oldest. */
Test(churn, member_table_keeps_empty_slots)
{
	dskvs *s = tu_open(tu_dir);
	for (uint64_t i = 0; i < LIVE; i++)
		put_key(s, "c/m%llu", i);
	struct shape before = members_shape(s, "c");
	for (uint64_t i = LIVE; i < LIVE + STEPS; i++) {
		put_key(s, "c/m%llu", i);
		del_key(s, "c/m%llu", i - LIVE);
		if (i % 5000 == 0) {
			struct shape sh = members_shape(s, "c");
			cr_assert_geq(
			    sh.empty * 4, sh.capacity,
			    "after %llu steps only %llu of %llu slots "
			    "are empty (%llu tombstones)",
			    (unsigned long long)(i - LIVE),
			    (unsigned long long)sh.empty,
			    (unsigned long long)sh.capacity,
			    (unsigned long long)sh.tombstones);
		}
	}
	struct shape after = members_shape(s, "c");
	report("members before", before);
	report("members after", after);
	cr_assert_eq(after.live, LIVE);
	cr_assert_geq(after.empty * 4, after.capacity,
	              "only %llu of %llu slots are empty (%llu tombstones)",
	              (unsigned long long)after.empty,
	              (unsigned long long)after.capacity,
	              (unsigned long long)after.tombstones);
	cr_assert_leq(after.capacity, 4 * before.capacity,
	              "capacity grew from %llu to %llu at a constant live set",
	              (unsigned long long)before.capacity,
	              (unsigned long long)after.capacity);
	tu_close(s);
}

/* LIVE collections of one member each; each step creates a collection and
 * drops the oldest by deleting its only member. */
Test(churn, collection_table_keeps_empty_slots)
{
	dskvs *s = tu_open(tu_dir);
	for (uint64_t i = 0; i < LIVE; i++)
		put_key(s, "c%llu/m", i);
	struct shape before = colls_shape(s);
	for (uint64_t i = LIVE; i < LIVE + STEPS; i++) {
		put_key(s, "c%llu/m", i);
		del_key(s, "c%llu/m", i - LIVE);
		if (i % 5000 == 0) {
			struct shape sh = colls_shape(s);
			cr_assert_geq(
			    sh.empty * 4, sh.capacity,
			    "after %llu steps only %llu of %llu slots "
			    "are empty (%llu tombstones)",
			    (unsigned long long)(i - LIVE),
			    (unsigned long long)sh.empty,
			    (unsigned long long)sh.capacity,
			    (unsigned long long)sh.tombstones);
		}
	}
	struct shape after = colls_shape(s);
	report("collections before", before);
	report("collections after", after);
	cr_assert_eq(after.live, LIVE);
	cr_assert_geq(after.empty * 4, after.capacity,
	              "only %llu of %llu slots are empty (%llu tombstones)",
	              (unsigned long long)after.empty,
	              (unsigned long long)after.capacity,
	              (unsigned long long)after.tombstones);
	cr_assert_leq(after.capacity, 4 * before.capacity);
	tu_close(s);
}

/* A DeleteAll-free mass delete: 100,000 members down to 100. */
Test(churn, member_table_shrinks)
{
	dskvs *s = tu_open(tu_dir);
	for (uint64_t i = 0; i < 100000; i++)
		put_key(s, "c/m%llu", i);
	struct shape peak = members_shape(s, "c");
	for (uint64_t i = 100; i < 100000; i++)
		del_key(s, "c/m%llu", i);
	struct shape after = members_shape(s, "c");
	report("members at the peak", peak);
	report("members after deletes", after);
	cr_assert_eq(after.live, 100);
	cr_assert_leq(after.capacity, 1024,
	              "100 members still hold %llu slots (%llu at the peak)",
	              (unsigned long long)after.capacity,
	              (unsigned long long)peak.capacity);
	for (uint64_t i = 0; i < 100; i++) {
		char key[64];
		snprintf(key, sizeof(key), "c/m%llu", (unsigned long long)i);
		tu_check_str(s, key, "v");
	}
	/* It grows again as needed. */
	for (uint64_t i = 100000; i < 110000; i++)
		put_key(s, "c/m%llu", i);
	cr_assert_eq(members_shape(s, "c").live, 10100);
	tu_close(s);
}

Test(churn, collection_table_shrinks)
{
	dskvs *s = tu_open(tu_dir);
	for (uint64_t i = 0; i < 20000; i++)
		put_key(s, "c%llu/m", i);
	struct shape peak = colls_shape(s);
	for (uint64_t i = 10; i < 20000; i++)
		del_key(s, "c%llu/m", i);
	struct shape after = colls_shape(s);
	report("collections at the peak", peak);
	report("collections after deletes", after);
	cr_assert_eq(after.live, 10);
	cr_assert_leq(after.capacity, 256,
	              "10 collections still hold %llu slots (%llu at the peak)",
	              (unsigned long long)after.capacity,
	              (unsigned long long)peak.capacity);
	for (uint64_t i = 0; i < 10; i++) {
		char key[64];
		snprintf(key, sizeof(key), "c%llu/m", (unsigned long long)i);
		tu_check_str(s, key, "v");
	}
	tu_close(s);
}

/* The shrink rule on its own: a map just grown holds a quarter of its slots
 * live; deleting down to under a sixteenth takes fewer than a fifth of its
 * slots in removals, so the removal bound has not fired yet, and only the
 * shrink can give the memory back. */
Test(churn, member_table_shrinks_below_a_sixteenth)
{
	dskvs *s = tu_open(tu_dir);
	uint64_t n = 0;
	put_key(s, "c/m%llu", n++);
	uint64_t cap = members_shape(s, "c").capacity;
	/* Grow until a grow leaves at least 1024 slots. */
	for (;;) {
		put_key(s, "c/m%llu", n++);
		uint64_t now = members_shape(s, "c").capacity;
		if (now != cap && now >= 1024) {
			cap = now;
			break;
		}
		cap = now;
	}
	uint64_t removals = n - (cap / 16 - 1);
	cr_assert_lt(removals * 5, cap,
	             "%llu live after a grow to %llu slots: the removal "
	             "bound would fire first",
	             (unsigned long long)n, (unsigned long long)cap);
	uint64_t i = 0;
	for (; n - i > cap / 16; i++)
		del_key(s, "c/m%llu", i);
	cr_assert_eq(members_shape(s, "c").capacity, cap,
	             "shrunk at %llu live of %llu slots",
	             (unsigned long long)(n - i), (unsigned long long)cap);
	del_key(s, "c/m%llu", i++); /* live now under a sixteenth */
	struct shape after = members_shape(s, "c");
	cr_assert_eq(after.live, cap / 16 - 1);
	cr_assert_lt(
	    after.capacity, cap, "%llu live of %llu slots and no shrink",
	    (unsigned long long)after.live, (unsigned long long)after.capacity);
	tu_close(s);
}

/* A rebuild follows at least a fifth of the slots in removals (its cost is
 * amortised over them), also after ck_ht grew a map by itself: the table of
 * collections (ck_ht grows it inside the insert), and a members map grown
 * by replay. The map pointer changes with every rebuild. */
static const void *map_of(ck_ht_t *ht)
{
	return ck_pr_load_ptr(&ht->map);
}

Test(churn, no_rebuild_before_a_fifth_removed)
{
	dskvs *s = tu_open(tu_dir);
	for (uint64_t i = 0; i < 3000; i++) {
		put_key(s, "c%llu/m", i);
		put_key(s, "big/m%llu", i);
	}
	struct shape sh = colls_shape(s);
	dskvs__rcu_read_lock();
	const void *colls = map_of(&s->t.colls);
	dskvs__rcu_read_unlock();
	/* 3001 live: the last grow (at 2048 live) left 4096 slots or more,
	 * and live stays far above a sixteenth. */
	for (uint64_t i = 0; i < sh.capacity / 10; i++)
		del_key(s, "c%llu/m", i);
	dskvs__rcu_read_lock();
	cr_assert_eq(map_of(&s->t.colls), colls,
	             "the table of collections (%llu slots) was rebuilt "
	             "within %llu removals",
	             (unsigned long long)sh.capacity,
	             (unsigned long long)(sh.capacity / 10));
	dskvs__rcu_read_unlock();
	tu_close(s);

	s = tu_open(tu_dir); /* replay grows "big" inside ck_ht */
	sh = members_shape(s, "big");
	dskvs__rcu_read_lock();
	struct dskvs__coll *c = dskvs__coll_lookup(&s->t, "big", 3);
	cr_assert_not_null(c);
	const void *members = map_of(&c->members);
	dskvs__rcu_read_unlock();
	for (uint64_t i = 0; i < sh.capacity / 10; i++)
		del_key(s, "big/m%llu", i);
	dskvs__rcu_read_lock();
	c = dskvs__coll_lookup(&s->t, "big", 3);
	cr_assert_eq(map_of(&c->members), members,
	             "a replayed members map (%llu slots) was rebuilt within "
	             "%llu removals",
	             (unsigned long long)sh.capacity,
	             (unsigned long long)(sh.capacity / 10));
	dskvs__rcu_read_unlock();
	tu_close(s);
}

/* Readers of keys that stay put, while the writer churns others in the same
 * collection and churns collections: every rebuild and shrink happens under
 * them, and none may make a live key look absent. */
struct reader {
	dskvs *s;
	int stop;
	uint64_t reads, misses;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	char key[64], buf[8];
	size_t len;
	uint64_t i = 0;
	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		if (i & 1)
			snprintf(key, sizeof(key), "c/stable%llu",
			         (unsigned long long)(i / 2 % 200));
		else
			snprintf(key, sizeof(key), "stable%llu/m",
			         (unsigned long long)(i / 2 % 200));
		if (dskvs_get(r->s, key, buf, sizeof(buf), &len) != DSKVS_OK)
			r->misses++;
		r->reads++;
		i++;
	}
	return NULL;
}

Test(churn, readers_never_miss_during_rebuilds)
{
	dskvs *s = tu_open(tu_dir);
	for (uint64_t i = 0; i < 200; i++) {
		put_key(s, "c/stable%llu", i);
		put_key(s, "stable%llu/m", i);
	}
	struct reader r[2] = { { .s = s }, { .s = s } };
	pthread_t th[2];
	for (int k = 0; k < 2; k++)
		cr_assert_eq(pthread_create(&th[k], NULL, reader_main, &r[k]),
		             0);
	/* Grow and shrink both tables several times, churning in between. */
	for (int round = 0; round < 4; round++) {
		for (uint64_t i = 0; i < 8000; i++) {
			put_key(s, "c/x%llu", i);
			put_key(s, "x%llu/m", i);
		}
		for (uint64_t i = 0; i < 8000; i++) {
			del_key(s, "c/x%llu", i);
			del_key(s, "x%llu/m", i);
		}
	}
	for (int k = 0; k < 2; k++) {
		__atomic_store_n(&r[k].stop, 1, __ATOMIC_RELEASE);
		pthread_join(th[k], NULL);
	}
	for (int k = 0; k < 2; k++) {
		cr_assert_gt(r[k].reads, 0);
		cr_assert_eq(r[k].misses, 0, "reader %d missed %llu of %llu", k,
		             (unsigned long long)r[k].misses,
		             (unsigned long long)r[k].reads);
	}
	cr_assert_eq(members_shape(s, "c").live, 200);
	cr_assert_eq(colls_shape(s).live, 201);
	tu_close(s);
}

/* ---- no read-side section spans an fsync ---------------------------------
 * The compaction's gather keeps batches moving while it walks the
 * collections; a batch's fdatasync inside the gather's read-side section
 * would hold up every reclamation (retired blocks, maps, collections) for
 * as long. The I/O seam checks each sync: the thread calling it must not
 * be inside a read-side section. */
static int syncs, syncs_in_rcu, compacting;

static int check_fdatasync(int fd)
{
	__atomic_add_fetch(&syncs, 1, __ATOMIC_RELAXED);
	if (dskvs__rcu_ongoing())
		__atomic_add_fetch(&syncs_in_rcu, 1, __ATOMIC_RELAXED);
	return dskvs__io_libc.fdatasync(fd);
}

static int check_fsync(int fd)
{
	if (dskvs__rcu_ongoing())
		__atomic_add_fetch(&syncs_in_rcu, 1, __ATOMIC_RELAXED);
	return dskvs__io_libc.fsync(fd);
}

static int watch_openat(int dirfd, const char *name, int flags, mode_t mode)
{
	if (strcmp(name, DSKVS_LOG_TMP) == 0)
		__atomic_store_n(&compacting, 1, __ATOMIC_RELEASE);
	return dskvs__io_libc.openat(dirfd, name, flags, mode);
}

static void *compact_main(void *arg)
{
	return (void *)(intptr_t)dskvs_compact(arg);
}

Test(churn, gather_syncs_outside_read_side_sections)
{
	dskvs__io.fdatasync = check_fdatasync;
	dskvs__io.fsync = check_fsync;
	dskvs__io.openat = watch_openat;
	dskvs *s = tu_open(tu_dir);
	for (uint64_t i = 0; i < 100; i++)
		put_key(s, "c%llu/m", i);
	put_key(s, "busy/m%llu", 0);

	/* Hold one collection's writer lock, as a writer in the middle of a
	 * put would: the gather must wait for it, and meanwhile it keeps the
	 * queue moving (compact.c, snapshot_progress). */
	dskvs__rcu_read_lock();
	struct dskvs__coll *busy = dskvs__coll_lookup(&s->t, "busy", 4);
	cr_assert_not_null(busy);
	pthread_mutex_lock(&busy->lock);
	dskvs__rcu_read_unlock(); /* "busy" lives on: nobody deletes it */

	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, compact_main, s), 0);
	while (!__atomic_load_n(&compacting, __ATOMIC_ACQUIRE))
		sched_yield();
	/* The gather cannot end while "busy" is held, so each of these
	 * syncs is a batch written from inside it. */
	int before = __atomic_load_n(&syncs, __ATOMIC_RELAXED);
	for (uint64_t i = 0; i < 10; i++) {
		put_key(s, "c%llu/m", i);
		cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	}
	int during = __atomic_load_n(&syncs, __ATOMIC_RELAXED) - before;
	pthread_mutex_unlock(&busy->lock);
	void *rc;
	pthread_join(th, &rc);
	cr_assert_eq((intptr_t)rc, DSKVS_OK);
	cr_assert_geq(during, 10, "only %d syncs during the gather", during);
	cr_assert_eq(__atomic_load_n(&syncs_in_rcu, __ATOMIC_RELAXED), 0,
	             "%d syncs ran inside a read-side section", syncs_in_rcu);
	tu_close(s);
	dskvs__io = dskvs__io_libc;
}

/* ---- the janitor's memory stays within its options ----------------------
 * A drain with a record limit (the compaction's drain up to its cut) used
 * to ignore batch_max_bytes, so the scratch buffer grew to the limit's
 * worth of records. */
Test(churn, drain_with_limit_keeps_byte_bound)
{
	struct dskvs__queue q;
	static struct dskvs__blk_pool pool;
	static char val[4000];
	static const struct {
		uint16_t len;
		char s[2];
	} coll = { 1, "c" };
	struct dskvs__rec_ref batch[256];
	dskvs__blk_pool_init(&pool);
	cr_assert_eq(dskvs__queue_init(&q, 256, NULL), DSKVS_OK);
	for (int i = 0; i < 200; i++) {
		struct dskvs__blk *b =
		    dskvs__blk_alloc(&pool, "m", 1, val, sizeof(val), 1);
		cr_assert_not_null(b);
		dskvs__queue_enqueue(&q, (const struct dskvs__name *)&coll, b,
		                     DSKVS_OP_PUT);
	}
	size_t rec = dskvs__rec_size(3, sizeof(val)), max_bytes = 64 * 1024;
	size_t got = 0;
	while (got < 200) {
		size_t n = dskvs__queue_drain(&q, batch, 256, max_bytes, 150);
		cr_assert_gt(n, 0);
		cr_assert_leq(n * rec, max_bytes + rec,
		              "a drain of %zu records (%zu bytes) passed "
		              "batch_max_bytes %zu",
		              n, n * rec, max_bytes);
		dskvs__records_release(batch, n);
		got += n;
	}
	dskvs__queue_destroy(&q);
	dskvs__blk_pool_destroy(&pool);
}

/* ---- memory comes back after mass deletes --------------------------------
 * glibc keeps freed blocks in its heap; the janitor trims it once the store
 * goes quiet (src/trim.c). The wait below is a deadline for the janitor's
 * naps (100 ms each), far beyond them, not a measured time. ASan has its
 * own allocator, which malloc_trim does not reach. */
static long rss_kb(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%ld %ld", &pages, &rss), 2);
	fclose(f);
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

Test(churn, memory_comes_back_after_mass_deletes)
{
#if defined(__SANITIZE_ADDRESS__)
	cr_skip_test("ASan's allocator keeps freed memory by design");
#endif
	static char val[200];
	char key[64];
	dskvs *s = tu_open(tu_dir);
	long start = rss_kb();
	for (uint64_t i = 0; i < 200000; i++) {
		snprintf(key, sizeof(key), "c/m%llu", (unsigned long long)i);
		cr_assert_eq(dskvs_put(s, key, val, sizeof(val), NULL, NULL),
		             DSKVS_OK);
	}
	cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	long peak = rss_kb();
	for (uint64_t i = 0; i < 200000; i++)
		if (i % 1000 != 0)
			del_key(s, "c/m%llu", i);
	cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	long after = rss_kb();
	for (int k = 0; k < 100 && after - start > (peak - start) / 4; k++) {
		usleep(100000);
		after = rss_kb();
	}
	cr_log_info("RSS: %ld KB at the start, %ld at the peak, %ld after "
	            "deleting 99.9%%",
	            start, peak, after);
	cr_assert_leq(after - start, (peak - start) / 4,
	              "RSS %ld KB at the peak, still %ld after deleting "
	              "99.9%% (start %ld)",
	              peak, after, start);
	tu_close(s);
}

/* ---- the block pool: batched retirement keeps its grace period ----------
 * Blocks retired while a read-side section is open must all survive it,
 * however many: past every carrier (64 a shard, 256 blocks each) they wait
 * on the shard's overflow list. After the section ends and the janitor's
 * flush (called here) hands them over, every one of them is released:
 * recycled into the shard's free lists up to its bound, the rest freed.
 * ASan checks that none was freed early and none leaks. */
static unsigned pool_freed;
static void pool_hook(int point, void *arg)
{
	(void)arg;
	if (point == DSKVS__HOOK_BLK_FREE)
		__atomic_add_fetch(&pool_freed, 1, __ATOMIC_RELAXED);
}

Test(churn, pool_retire_waits_for_readers_past_every_carrier)
{
	enum { N = BLK_CARRIERS_MAX * BLK_RETIRE_N + 1000 };
	static struct dskvs__blk_pool pool;
	static struct dskvs__blk *v[N];
	char val[100];

	memset(val, 'v', sizeof(val));
	dskvs__blk_pool_init(&pool);
	for (int i = 0; i < N; i++) {
		v[i] = dskvs__blk_alloc(&pool, "m", 1, val, sizeof(val), 1);
		cr_assert_not_null(v[i]);
	}
	dskvs__hook = pool_hook;
	dskvs__rcu_read_lock();
	for (int i = 0; i < N; i++)
		dskvs__blk_retire(&pool, v[i]);
	dskvs__blk_pool_flush(&pool);
	/* Give the call_rcu thread every chance to run too early. */
	usleep(20000);
	cr_assert_eq(__atomic_load_n(&pool_freed, __ATOMIC_RELAXED), 0,
	             "%u blocks released inside a read-side section",
	             pool_freed);
	for (int i = 0; i < N; i += 997)
		cr_assert_eq(memcmp(dskvs__blk_val(v[i]), val, sizeof(val)), 0);
	dskvs__rcu_read_unlock();
	/* The carriers in flight come back; the overflow goes with the next
	 * ones. Each round hands over what it can. */
	for (int r = 0; r < 4; r++) {
		dskvs__rcu_barrier();
		dskvs__blk_pool_flush(&pool);
	}
	dskvs__rcu_barrier();
	cr_assert_eq(__atomic_load_n(&pool_freed, __ATOMIC_RELAXED), N,
	             "%u of %d retired blocks released", pool_freed, N);
	dskvs__hook = NULL;
	size_t pooled = 0;
	for (unsigned i = 0; i < BLK_SHARDS; i++)
		pooled += pool.sh[i].pooled_bytes;
	cr_assert_leq(pooled, (size_t)BLK_SHARDS * BLK_POOL_BYTES);
	cr_assert_gt(pooled, 0, "nothing recycled");
	/* A recycled block comes back for the next allocation of its size. */
	struct dskvs__blk *b =
	    dskvs__blk_alloc(&pool, "m", 1, val, sizeof(val), 1);
	bool reused = false;
	for (int i = 0; i < N && !reused; i++)
		reused = v[i] == b;
	cr_assert(reused, "a free block of the size was not reused");
	dskvs__blk_unref(b);
	dskvs__blk_pool_destroy(&pool);
}
