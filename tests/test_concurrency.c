/*
 * Threads: self-checking values under concurrent readers and writers,
 * read-your-writes across threads, log order equal to memory order, a tiny
 * janitor queue, short-lived threads, and several stores in one process.
 *
 * Worker threads never assert (Criterion assertions unwind the test thread
 * only); they count failures and keep the first message, and the test thread
 * asserts after joining them.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(concurrency, .init = tu_setup, .fini = tu_teardown, .timeout = 30);

struct fail {
	atomic_int count;
	pthread_mutex_t mu;
	char first[256];
};

static struct fail fails = { .mu = PTHREAD_MUTEX_INITIALIZER };

__attribute__((format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
	if (atomic_fetch_add(&fails.count, 1) == 0) {
		va_list ap;
		pthread_mutex_lock(&fails.mu);
		va_start(ap, fmt);
		vsnprintf(fails.first, sizeof(fails.first), fmt, ap);
		va_end(ap);
		pthread_mutex_unlock(&fails.mu);
	}
}

static void assert_no_failures(void)
{
	int n = atomic_load(&fails.count);

	pthread_mutex_lock(&fails.mu);
	cr_assert_eq(n, 0, "%d failures in threads, first: %s", n, fails.first);
	pthread_mutex_unlock(&fails.mu);
}

static void spawn(pthread_t *t, void *(*fn)(void *), void *arg)
{
	cr_assert_eq(pthread_create(t, NULL, fn, arg), 0);
}

/* ---- self-checking values --------------------------------------------------
 *
 * A value is a header naming its owner thread, key and version, a body of
 * bytes derived from them, and a checksum over all of it. Its length changes
 * with the version, so a read that mixed two values fails the check.
 */
struct vhdr {
	uint32_t thread, key;
	uint64_t version;
	uint32_t len; /* whole value */
	uint32_t pad;
	uint64_t sum;
};

#define VMAX 600

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static size_t make_val(uint32_t thread, uint32_t key, uint64_t version,
                       unsigned char *buf)
{
	struct vhdr h = { thread, key, version, 0, 0, 0 };
	size_t len = sizeof(h) + (size_t)((version * 131 + key * 17) % 500);

	h.len = (uint32_t)len;
	for (size_t i = sizeof(h); i < len; i++)
		buf[i] = (unsigned char)(thread * 31 + key * 7 + version + i);
	memcpy(buf, &h, sizeof(h));
	h.sum = fnv(buf + sizeof(h), len - sizeof(h),
	            fnv(&h, offsetof(struct vhdr, sum), 0xcbf29ce484222325ull));
	memcpy(buf, &h, sizeof(h));
	return len;
}

/* 0 if val is a whole, untorn value; fills *h. */
static int check_val(const void *val, size_t len, struct vhdr *h)
{
	if (len < sizeof(*h))
		return -1;
	memcpy(h, val, sizeof(*h));
	if (h->len != len)
		return -2;
	uint64_t sum =
	    fnv((const char *)val + sizeof(*h), len - sizeof(*h),
	        fnv(h, offsetof(struct vhdr, sum), 0xcbf29ce484222325ull));
	return sum == h->sum ? 0 : -3;
}

/* ---- readers and writers ------------------------------------------------- */

#define NTHREADS 4
#define NKEYS    16
#define NITER    2000

struct rw {
	dskvs *s;
	uint32_t id;
	/* Version of the latest put of each key that has returned; written by
	 * the owner with release after dskvs_put returns, read by others with
	 * acquire before their get starts. */
	_Atomic uint64_t (*published)[NKEYS];
	uint64_t last[NKEYS]; /* owner's own view */
};

static int with_check(const void *val, size_t len, void *arg)
{
	struct vhdr *h = arg;

	return check_val(val, len, h) ? 1 : 0;
}

static void rw_read_other(struct rw *w, uint32_t o, uint32_t k, int how)
{
	char key[32];
	unsigned char buf[VMAX];
	struct vhdr h;
	size_t len = 0;
	int rc;

	snprintf(key, sizeof(key), "t%u/k%u", o, k);
	uint64_t pub =
	    atomic_load_explicit(&w->published[o][k], memory_order_acquire);
	if (how == 0) {
		rc = dskvs_get(w->s, key, buf, sizeof(buf), &len);
		if (rc == 0 && check_val(buf, len, &h))
			return fail("torn read of %s (len %zu)", key, len);
	} else if (how == 1) {
		rc = dskvs_get_with(w->s, key, with_check, &h);
		if (rc == 1)
			return fail("torn zero-copy read of %s", key);
	} else {
		void *v = NULL;
		rc = dskvs_get_alloc(w->s, key, &v, &len);
		if (rc == 0 && check_val(v, len, &h)) {
			free(v);
			return fail("torn get_alloc of %s", key);
		}
		free(v);
	}
	if (rc == DSKVS_NOTFOUND) {
		if (pub != 0)
			fail("%s not found after version %llu returned", key,
			     (unsigned long long)pub);
		return;
	}
	if (rc != 0)
		return fail("get %s = %d", key, rc);
	if (h.thread != o || h.key != k)
		return fail("%s holds the value of t%u/k%u", key, h.thread,
		            h.key);
	if (h.version < pub)
		fail("%s: read version %llu after %llu returned", key,
		     (unsigned long long)h.version, (unsigned long long)pub);
}

static void *rw_thread(void *arg)
{
	struct rw *w = arg;
	unsigned char buf[VMAX];
	char key[32];

	for (uint32_t it = 0; it < NITER; it++) {
		uint32_t k = it % NKEYS;
		uint64_t v = ++w->last[k];
		size_t len = make_val(w->id, k, v, buf);
		snprintf(key, sizeof(key), "t%u/k%u", w->id, k);
		int rc = dskvs_put(w->s, key, buf, len, NULL, NULL);
		if (rc)
			return fail("put %s = %d", key, rc), NULL;
		atomic_store_explicit(&w->published[w->id][k], v,
		                      memory_order_release);
		/* Read-your-writes: only this thread writes the key. */
		unsigned char got[VMAX];
		size_t glen;
		struct vhdr h;
		rc = dskvs_get(w->s, key, got, sizeof(got), &glen);
		if (rc || check_val(got, glen, &h) || h.version != v)
			return fail("own read of %s: rc %d version %llu want "
			            "%llu",
			            key, rc, (unsigned long long)h.version,
			            (unsigned long long)v),
			       NULL;
		uint32_t o = (w->id + 1 + it % (NTHREADS - 1)) % NTHREADS;
		rw_read_other(w, o, (it * 7) % NKEYS, (int)(it % 3));
	}
	return NULL;
}

static void check_final(dskvs *s, struct rw *w)
{
	char key[32];
	unsigned char buf[VMAX];

	for (uint32_t t = 0; t < NTHREADS; t++) {
		for (uint32_t k = 0; k < NKEYS; k++) {
			snprintf(key, sizeof(key), "t%u/k%u", t, k);
			size_t len = make_val(t, k, w[t].last[k], buf);
			tu_check(s, key, buf, len);
		}
	}
}

Test(concurrency, readers_and_writers_self_checking_values)
{
	static _Atomic uint64_t published[NTHREADS][NKEYS];
	struct rw w[NTHREADS];
	pthread_t th[NTHREADS];
	dskvs *s = tu_open(tu_dir);

	for (uint32_t t = 0; t < NTHREADS; t++) {
		memset(&w[t], 0, sizeof(w[t]));
		w[t].s = s;
		w[t].id = t;
		w[t].published = published;
	}
	for (int t = 0; t < NTHREADS; t++)
		spawn(&th[t], rw_thread, &w[t]);
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	assert_no_failures();
	check_final(s, w);
	tu_close(s);
	s = tu_open(tu_dir);
	check_final(s, w);
	tu_close(s);
}

/* ---- get_all while members change -----------------------------------------
 */

struct walker {
	dskvs *s;
	atomic_int *stop;
	int walks;
};

static int walk_check(const char *member, size_t member_len, const void *val,
                      size_t val_len, void *arg)
{
	struct vhdr h;
	char want[32];

	(void)arg;
	if (strlen(member) != member_len)
		return fail("member name not NUL-terminated"), 1;
	if (check_val(val, val_len, &h))
		return fail("get_all saw a torn value of %s", member), 1;
	snprintf(want, sizeof(want), "w%u-%u", h.thread, h.key);
	if (strcmp(want, member) != 0)
		return fail("member %s holds %s's value", member, want), 1;
	return 0;
}

static void *walker_thread(void *arg)
{
	struct walker *w = arg;

	do {
		int rc = dskvs_get_all(w->s, "shared", walk_check, NULL);
		if (rc)
			return fail("get_all = %d", rc), NULL;
		w->walks++;
	} while (!atomic_load(w->stop));
	return NULL;
}

struct churn {
	dskvs *s;
	uint32_t id;
};

static void *churn_thread(void *arg)
{
	struct churn *c = arg;
	unsigned char buf[VMAX];
	char key[32];

	for (uint32_t it = 0; it < NITER; it++) {
		uint32_t k = it % 32;
		snprintf(key, sizeof(key), "shared/w%u-%u", c->id, k);
		if (it % 5 == 4) {
			int rc = dskvs_delete(c->s, key);
			if (rc && rc != DSKVS_NOTFOUND)
				return fail("delete = %d", rc), NULL;
			continue;
		}
		size_t len = make_val(c->id, k, it, buf);
		int rc = dskvs_put(c->s, key, buf, len, NULL, NULL);
		if (rc)
			return fail("put = %d", rc), NULL;
	}
	return NULL;
}

Test(concurrency, get_all_during_writes_sees_whole_values)
{
	dskvs *s = tu_open(tu_dir);
	atomic_int stop = 0;
	struct walker wk = { s, &stop, 0 };
	struct churn c[3];
	pthread_t tw, tc[3];

	spawn(&tw, walker_thread, &wk);
	for (uint32_t i = 0; i < 3; i++) {
		c[i].s = s;
		c[i].id = i;
		spawn(&tc[i], churn_thread, &c[i]);
	}
	for (int i = 0; i < 3; i++)
		pthread_join(tc[i], NULL);
	atomic_store(&stop, 1);
	pthread_join(tw, NULL);
	assert_no_failures();
	cr_assert_geq(wk.walks, 1);
	tu_close(s);
}

/* ---- log order equals memory order ----------------------------------------
 */

struct mixed {
	dskvs *s;
	uint64_t seed;
};

static void *mixed_thread(void *arg)
{
	struct mixed *m = arg;
	char key[32], val[64];

	for (int it = 0; it < 3000; it++) {
		uint64_t r = tu_rand(&m->seed);
		int coll = (int)(r % 4);
		int member = (int)((r >> 8) % 8);
		int op = (int)((r >> 16) % 16);
		int rc;
		if (op == 0) {
			snprintf(key, sizeof(key), "c%d", coll);
			rc = dskvs_delete_all(m->s, key);
		} else if (op < 4) {
			snprintf(key, sizeof(key), "c%d/m%d", coll, member);
			rc = dskvs_delete(m->s, key);
		} else {
			snprintf(key, sizeof(key), "c%d/m%d", coll, member);
			int n = snprintf(val, sizeof(val), "%llx:%d",
			                 (unsigned long long)m->seed, it);
			rc = dskvs_put(m->s, key, val, (size_t)n, NULL, NULL);
		}
		if (rc && rc != DSKVS_NOTFOUND)
			return fail("op %d on %s = %d", op, key, rc), NULL;
	}
	return NULL;
}

Test(concurrency, replay_after_racing_writes_equals_memory)
{
	dskvs *s = tu_open(tu_dir);
	struct mixed m[NTHREADS];
	pthread_t th[NTHREADS];

	for (int t = 0; t < NTHREADS; t++) {
		m[t].s = s;
		m[t].seed = 1000 + (uint64_t)t;
		spawn(&th[t], mixed_thread, &m[t]);
	}
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	assert_no_failures();
	struct tu_snap mem, disk;
	tu_snap_take(s, &mem);
	tu_close(s);
	s = tu_open(tu_dir);
	tu_snap_take(s, &disk);
	tu_snap_assert_eq(&mem, &disk);
	tu_snap_free(&mem);
	tu_snap_free(&disk);
	tu_close(s);
}

/* ---- durability under concurrency -----------------------------------------
 */

struct always {
	dskvs *s;
	uint32_t id;
};

static void *always_thread(void *arg)
{
	struct always *a = arg;
	char key[32];

	for (int i = 0; i < 40; i++) {
		uint64_t seq = 0;
		snprintf(key, sizeof(key), "a%u/%d", a->id, i);
		int rc = dskvs_put_seq(a->s, key, key, strlen(key), NULL, NULL,
		                       &seq);
		if (rc)
			return fail("put_seq = %d", rc), NULL;
		uint64_t d = dskvs_durable_seq(a->s);
		if (d < seq)
			return fail("SYNC_ALWAYS put %s returned with seq %llu "
			            "but durable %llu",
			            key, (unsigned long long)seq,
			            (unsigned long long)d),
			       NULL;
	}
	return NULL;
}

Test(concurrency, sync_always_concurrent_writers_each_durable)
{
	dskvs_options o;

	dskvs_options_init(&o);
	o.sync_mode = DSKVS_SYNC_ALWAYS;
	dskvs *s = tu_open_opts(tu_dir, &o);
	struct always a[NTHREADS];
	pthread_t th[NTHREADS];
	for (uint32_t t = 0; t < NTHREADS; t++) {
		a[t].s = s;
		a[t].id = t;
		spawn(&th[t], always_thread, &a[t]);
	}
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	assert_no_failures();
	tu_close(s);
}

struct bulk {
	dskvs *s;
	uint32_t id;
	int n;
};

static void *bulk_thread(void *arg)
{
	struct bulk *b = arg;
	char key[32];

	for (int i = 0; i < b->n; i++) {
		snprintf(key, sizeof(key), "b%u/%d", b->id, i);
		int rc = dskvs_put(b->s, key, key, strlen(key), NULL, NULL);
		if (rc)
			return fail("put %s = %d", key, rc), NULL;
	}
	return NULL;
}

Test(concurrency, tiny_queue_drops_nothing)
{
	dskvs_options o;

	dskvs_options_init(&o);
	o.queue_capacity = 16;
	dskvs *s = tu_open_opts(tu_dir, &o);
	dskvs_stats stats;
	struct bulk b[NTHREADS];
	pthread_t th[NTHREADS];
	for (uint32_t t = 0; t < NTHREADS; t++) {
		b[t] = (struct bulk){ s, t, 2000 };
		spawn(&th[t], bulk_thread, &b[t]);
	}
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	assert_no_failures();
	tu_close(s);
	s = tu_open(tu_dir);
	char key[32];
	for (uint32_t t = 0; t < NTHREADS; t++)
		for (int i = 0; i < 2000; i++) {
			snprintf(key, sizeof(key), "b%u/%d", t, i);
			tu_check(s, key, key, strlen(key));
		}
	cr_assert_eq(dskvs_stats_get(s, &stats), DSKVS_OK);
	cr_assert_eq(stats.entries, NTHREADS * 2000);
	tu_close(s);
}

/* ---- short-lived threads ---------------------------------------------------
 */

struct brief {
	dskvs *s;
	int id;
};

static int count_cb(const char *m, size_t ml, const void *v, size_t vl,
                    void *arg)
{
	(void)m;
	(void)ml;
	(void)v;
	(void)vl;
	++*(int *)arg;
	return 0;
}

static int nop_read(const void *v, size_t l, void *arg)
{
	(void)v;
	(void)l;
	(void)arg;
	return 0;
}

static void *brief_thread(void *arg)
{
	struct brief *b = arg;
	char key[32], val[32];
	size_t len;

	snprintf(key, sizeof(key), "short/%d", b->id);
	int rc = dskvs_get(b->s, key, NULL, 0, &len);
	if (rc != DSKVS_NOTFOUND)
		return fail("get %s = %d", key, rc), NULL;
	snprintf(val, sizeof(val), "from thread %d", b->id);
	rc = dskvs_put(b->s, key, val, strlen(val), NULL, NULL);
	if (rc)
		return fail("put %s = %d", key, rc), NULL;
	if (dskvs_get_with(b->s, key, nop_read, NULL) != 0)
		return fail("get_with %s", key), NULL;
	int n = 0;
	if (dskvs_get_all(b->s, "short", count_cb, &n) != 0 || n < 1)
		return fail("get_all short: %d members", n), NULL;
	/* Returning ends the thread: no goodbye call of any kind. */
	return NULL;
}

Test(concurrency, short_lived_threads_then_close)
{
	dskvs *s = tu_open(tu_dir);
	struct brief b[50];
	pthread_t th[10];

	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < 10; i++) {
			b[round * 10 + i] = (struct brief){ s, round * 10 + i };
			spawn(&th[i], brief_thread, &b[round * 10 + i]);
		}
		for (int i = 0; i < 10; i++)
			pthread_join(th[i], NULL);
	}
	assert_no_failures();
	tu_close(s);
	s = tu_open(tu_dir);
	char key[32], val[32];
	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "short/%d", i);
		snprintf(val, sizeof(val), "from thread %d", i);
		tu_check_str(s, key, val);
	}
	tu_close(s);
}

static void *detached_thread(void *arg)
{
	struct brief *b = arg;
	char key[32];
	size_t len;

	snprintf(key, sizeof(key), "gone/%d", b->id);
	if (dskvs_put(b->s, key, "x", 1, NULL, NULL) != 0 ||
	    dskvs_get(b->s, key, NULL, 0, &len) != DSKVS_ERANGE)
		fail("detached thread %d", b->id);
	return NULL;
}

Test(concurrency, threads_gone_before_close_leave_nothing_behind)
{
	/* Threads that used the store and are long gone when it closes, on a
	 * store that is then reopened in the same process. */
	for (int cycle = 0; cycle < 3; cycle++) {
		dskvs *s = tu_open(tu_dir);
		struct brief b[8];
		pthread_t th[8];
		for (int i = 0; i < 8; i++) {
			b[i] = (struct brief){ s, cycle * 8 + i };
			spawn(&th[i], detached_thread, &b[i]);
		}
		for (int i = 0; i < 8; i++)
			pthread_join(th[i], NULL);
		assert_no_failures();
		tu_close(s);
	}
	dskvs *s = tu_open(tu_dir);
	dskvs_stats stats;
	cr_assert_eq(dskvs_stats_get(s, &stats), DSKVS_OK);
	cr_assert_eq(stats.entries, 24);
	tu_close(s);
}

/* ---- several stores in one process ------------------------------------- */

Test(concurrency, several_stores_are_independent)
{
	char *dirs[3];
	dskvs *s[3];
	char val[32];

	for (int i = 0; i < 3; i++) {
		dirs[i] = tu_fmt("%s/store%d", tu_dir, i);
		s[i] = tu_open(dirs[i]);
	}
	for (int i = 0; i < 3; i++) {
		snprintf(val, sizeof(val), "store %d", i);
		tu_put_str(s[i], "same/key", val);
		tu_put_str(s[i], "coll/shared", val);
	}
	char own[16];
	snprintf(own, sizeof(own), "only/one");
	tu_put_str(s[1], own, "1");
	cr_assert_eq(dskvs_delete_all(s[0], "coll"), DSKVS_OK);
	for (int i = 0; i < 3; i++) {
		snprintf(val, sizeof(val), "store %d", i);
		tu_check_str(s[i], "same/key", val);
		if (i == 0)
			tu_check_absent(s[i], "coll/shared");
		else
			tu_check_str(s[i], "coll/shared", val);
	}
	tu_check_absent(s[0], "only/one");
	tu_check_absent(s[2], "only/one");
	tu_close(s[1]);
	/* The others keep working after one closed. */
	tu_put_str(s[2], "late/k", "2");
	tu_close(s[2]);
	tu_put_str(s[0], "late/k", "0");
	tu_close(s[0]);
	for (int i = 0; i < 3; i++) {
		s[i] = tu_open(dirs[i]);
		snprintf(val, sizeof(val), "store %d", i);
		tu_check_str(s[i], "same/key", val);
	}
	tu_check_absent(s[0], "coll/shared");
	tu_check_str(s[1], "only/one", "1");
	tu_check_str(s[0], "late/k", "0");
	tu_check_absent(s[1], "late/k");
	tu_check_str(s[2], "late/k", "2");
	for (int i = 0; i < 3; i++) {
		tu_close(s[i]);
		free(dirs[i]);
	}
}

Test(concurrency, several_stores_used_from_threads_at_once)
{
	char *dirs[NTHREADS];
	dskvs *s[NTHREADS];
	struct bulk b[NTHREADS];
	pthread_t th[NTHREADS];

	for (uint32_t i = 0; i < NTHREADS; i++) {
		dirs[i] = tu_fmt("%s/store%u", tu_dir, i);
		s[i] = tu_open(dirs[i]);
		/* Same keys in every store, one writer thread per store. */
		b[i] = (struct bulk){ s[i], 0, 1000 + 100 * (int)i };
		spawn(&th[i], bulk_thread, &b[i]);
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	assert_no_failures();
	for (int i = 0; i < NTHREADS; i++)
		tu_close(s[i]);
	for (int i = 0; i < NTHREADS; i++) {
		s[i] = tu_open(dirs[i]);
		dskvs_stats stats;
		cr_assert_eq(dskvs_stats_get(s[i], &stats), DSKVS_OK);
		cr_assert_eq(stats.entries, (uint64_t)(1000 + 100 * i));
		tu_close(s[i]);
		free(dirs[i]);
	}
}
