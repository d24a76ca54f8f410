/*
 * Versions (dskvs_get_seq), the conditional puts (dskvs_put_if_absent,
 * dskvs_put_if_seq) and read-modify-write (dskvs_update): their results and
 * error codes, races between threads, and versions across close/open,
 * compaction and rewrite.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(atomic, .init = tu_setup, .fini = tu_teardown, .timeout = 60);

static uint64_t version_of(dskvs *s, const char *key)
{
	char buf[64];
	size_t len;
	uint64_t v = 12345;
	int rc = dskvs_get_seq(s, key, buf, sizeof(buf), &len, &v);
	cr_assert(rc == DSKVS_OK || rc == DSKVS_NOTFOUND || rc == DSKVS_ERANGE,
	          "get_seq %s: %s", key, dskvs_err_name(rc));
	if (rc == DSKVS_NOTFOUND)
		cr_assert_eq(v, 0, "absent member has version 0");
	return v;
}

/* ---- versions ------------------------------------------------------------ */

Test(atomic, version_is_the_seq_of_the_write)
{
	dskvs *s = tu_open(tu_dir);
	uint64_t q1, q2, v;
	char buf[8];
	size_t len;

	cr_assert_eq(version_of(s, "c/a"), 0);
	cr_assert_eq(dskvs_put_seq(s, "c/a", "x", 1, NULL, NULL, &q1),
	             DSKVS_OK);
	cr_assert_gt(q1, 0);
	cr_assert_eq(version_of(s, "c/a"), q1);
	cr_assert_eq(dskvs_put_seq(s, "c/a", "yy", 2, NULL, NULL, &q2),
	             DSKVS_OK);
	cr_assert_gt(q2, q1);
	cr_assert_eq(version_of(s, "c/a"), q2);
	/* ERANGE still gives the version; seq may be NULL. */
	cr_assert_eq(dskvs_get_seq(s, "c/a", buf, 1, &len, &v), DSKVS_ERANGE);
	cr_assert_eq(v, q2);
	cr_assert_eq(len, 2);
	cr_assert_eq(dskvs_get_seq(s, "c/a", buf, sizeof(buf), &len, NULL),
	             DSKVS_OK);
	/* Delete: absent again, version 0; a new put gets a larger one. */
	cr_assert_eq(dskvs_delete(s, "c/a"), DSKVS_OK);
	cr_assert_eq(version_of(s, "c/a"), 0);
	cr_assert_eq(dskvs_put_seq(s, "c/a", "z", 1, NULL, NULL, &q1),
	             DSKVS_OK);
	cr_assert_gt(q1, q2);
	/* Errors zero *seq. */
	v = 7;
	cr_assert_eq(dskvs_get_seq(s, "c", buf, sizeof(buf), &len, &v),
	             DSKVS_EBADKEY);
	cr_assert_eq(v, 0);
	v = 7;
	cr_assert_eq(dskvs_get_seq(NULL, "c/a", buf, sizeof(buf), &len, &v),
	             DSKVS_EINVAL);
	cr_assert_eq(v, 0);
	cr_assert_eq(dskvs_get_seq(s, "c/a", NULL, 1, &len, &v), DSKVS_EINVAL);
	cr_assert_eq(dskvs_get_seq(s, "c/a", buf, 1, NULL, &v), DSKVS_EINVAL);
	tu_close(s);
}

Test(atomic, versions_survive_reopen_compact_and_rewrite)
{
	dskvs *s = tu_open(tu_dir);
	uint64_t va, vb, vc;
	char key[32];

	cr_assert_eq(dskvs_put_seq(s, "c/a", "1", 1, NULL, NULL, &va), 0);
	/* Garbage, so that the compaction has something to drop. */
	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "g/%d", i);
		tu_put_str(s, key, "garbage");
		cr_assert_eq(dskvs_delete(s, key), DSKVS_OK);
	}
	cr_assert_eq(dskvs_put_seq(s, "c/b", "2", 1, NULL, NULL, &vb), 0);
	cr_assert_eq(dskvs_put_seq(s, "d/c", "3", 1, NULL, NULL, &vc), 0);
	cr_assert_eq(dskvs_put_seq(s, "c/b", "22", 2, NULL, NULL, &vb), 0);

	tu_close(s);
	s = tu_open(tu_dir);
	cr_assert_eq(version_of(s, "c/a"), va);
	cr_assert_eq(version_of(s, "c/b"), vb);
	cr_assert_eq(version_of(s, "d/c"), vc);

	cr_assert_eq(dskvs_compact(s), DSKVS_OK);
	cr_assert_eq(version_of(s, "c/a"), va);
	cr_assert_eq(version_of(s, "c/b"), vb);
	tu_close(s);
	s = tu_open(tu_dir);
	cr_assert_eq(version_of(s, "c/a"), va);
	cr_assert_eq(version_of(s, "c/b"), vb);
	cr_assert_eq(version_of(s, "d/c"), vc);

	cr_assert_eq(dskvs_rewrite(s), DSKVS_OK);
	tu_close(s);
	s = tu_open(tu_dir);
	cr_assert_eq(version_of(s, "c/a"), va);
	cr_assert_eq(version_of(s, "c/b"), vb);
	cr_assert_eq(version_of(s, "d/c"), vc);
	/* A CAS on a version read before all of that still succeeds, and
	 * the new write is numbered after every old one. */
	uint64_t nv;
	cr_assert_eq(dskvs_put_if_seq(s, "c/a", "9", 1, va, &nv), DSKVS_OK);
	cr_assert_gt(nv, vc);
	tu_close(s);
}

/* ---- put_if_absent / put_if_seq ----------------------------------------- */

Test(atomic, put_if_absent_results)
{
	dskvs *s = tu_open(tu_dir);
	uint64_t q = 0, q2 = 0;

	cr_assert_eq(dskvs_put_if_absent(s, "c/m", "one", 3, &q), DSKVS_OK);
	cr_assert_gt(q, 0);
	cr_assert_eq(dskvs_put_if_absent(s, "c/m", "two", 3, &q2),
	             DSKVS_EEXIST);
	cr_assert_eq(q2, q, "EEXIST gives the current version");
	cr_assert_str_eq(dskvs_errmsg(NULL), "");
	tu_check_str(s, "c/m", "one");
	cr_assert_eq(dskvs_put_if_absent(s, "c/n", NULL, 0, NULL), DSKVS_OK);
	tu_check(s, "c/n", "", 0);
	/* Bad input. */
	cr_assert_eq(dskvs_put_if_absent(NULL, "c/x", "v", 1, NULL),
	             DSKVS_EINVAL);
	cr_assert_eq(dskvs_put_if_absent(s, NULL, "v", 1, NULL), DSKVS_EBADKEY);
	cr_assert_eq(dskvs_put_if_absent(s, "c", "v", 1, NULL), DSKVS_EBADKEY);
	cr_assert_eq(dskvs_put_if_absent(s, "/x", "v", 1, NULL), DSKVS_EBADKEY);
	cr_assert_eq(dskvs_put_if_absent(s, "c/x", NULL, 1, NULL),
	             DSKVS_EINVAL);
	cr_assert_eq(dskvs_put_if_absent(s, "c/x", "v",
	                                 (size_t)DSKVS_VALUE_MAX + 1, NULL),
	             DSKVS_ETOOBIG);
	char *big = tu_repeat('n', DSKVS_NAME_MAX + 1);
	char *key = tu_fmt("c/%s", big);
	cr_assert_eq(dskvs_put_if_absent(s, key, "v", 1, NULL), DSKVS_ETOOBIG);
	free(key);
	free(big);
	tu_check_absent(s, "c/x");
	tu_close(s);
}

Test(atomic, put_if_seq_results)
{
	dskvs *s = tu_open(tu_dir);
	uint64_t v = 99, v2;

	/* expect 0: only if absent. */
	cr_assert_eq(dskvs_put_if_seq(s, "c/m", "a", 1, 5, &v),
	             DSKVS_ECONFLICT);
	cr_assert_eq(v, 0, "absent: current version 0");
	cr_assert_str_eq(dskvs_errmsg(NULL), "");
	tu_check_absent(s, "c/m");
	/* The refused write left no empty collection behind. */
	dskvs_stats st;
	cr_assert_eq(dskvs_stats_get(s, &st), DSKVS_OK);
	cr_assert_eq(st.collections, 0);
	cr_assert_eq(dskvs_put_if_seq(s, "c/m", "a", 1, 0, &v), DSKVS_OK);
	cr_assert_gt(v, 0);
	cr_assert_eq(dskvs_put_if_seq(s, "c/m", "b", 1, 0, &v2),
	             DSKVS_ECONFLICT);
	cr_assert_eq(v2, v);
	cr_assert_eq(dskvs_put_if_seq(s, "c/m", "b", 1, v + 1, &v2),
	             DSKVS_ECONFLICT);
	tu_check_str(s, "c/m", "a");
	cr_assert_eq(dskvs_put_if_seq(s, "c/m", "b", 1, v, &v2), DSKVS_OK);
	cr_assert_gt(v2, v);
	tu_check_str(s, "c/m", "b");
	/* A stale version after a delete and re-create conflicts. */
	cr_assert_eq(dskvs_delete(s, "c/m"), DSKVS_OK);
	tu_put_str(s, "c/m", "c");
	cr_assert_eq(dskvs_put_if_seq(s, "c/m", "d", 1, v2, NULL),
	             DSKVS_ECONFLICT);
	/* Bad input. */
	cr_assert_eq(dskvs_put_if_seq(NULL, "c/m", "v", 1, 0, NULL),
	             DSKVS_EINVAL);
	cr_assert_eq(dskvs_put_if_seq(s, "c/", "v", 1, 0, NULL), DSKVS_EBADKEY);
	cr_assert_eq(dskvs_put_if_seq(s, "", "v", 1, 0, NULL), DSKVS_EBADKEY);
	cr_assert_eq(dskvs_put_if_seq(s, "c/m", NULL, 2, 0, NULL),
	             DSKVS_EINVAL);
	cr_assert_eq(dskvs_put_if_seq(s, "c/m", "v",
	                              (size_t)DSKVS_VALUE_MAX + 1, 0, NULL),
	             DSKVS_ETOOBIG);
	tu_check_str(s, "c/m", "c");
	tu_close(s);
}

/* ---- races --------------------------------------------------------------- */

#define RACERS 4

struct race {
	dskvs *s;
	pthread_barrier_t *go;
	int id;
	int rounds;
	int wins, lost, errors;
};

static void *absent_racer(void *arg)
{
	struct race *r = arg;
	char key[32], val[8];
	snprintf(val, sizeof(val), "%d", r->id);
	for (int i = 0; i < r->rounds; i++) {
		snprintf(key, sizeof(key), "race/%d", i);
		pthread_barrier_wait(r->go);
		int rc = dskvs_put_if_absent(r->s, key, val, strlen(val), NULL);
		if (rc == DSKVS_OK)
			r->wins++;
		else if (rc == DSKVS_EEXIST)
			r->lost++;
		else
			r->errors++;
	}
	return NULL;
}

Test(atomic, put_if_absent_race_has_one_winner)
{
	dskvs *s = tu_open(tu_dir);
	pthread_barrier_t go;
	pthread_t th[RACERS];
	struct race r[RACERS];
	const int rounds = 200;
	int wins = 0, lost = 0;

	pthread_barrier_init(&go, NULL, RACERS);
	for (int i = 0; i < RACERS; i++) {
		r[i] = (struct race){ s, &go, i, rounds, 0, 0, 0 };
		pthread_create(&th[i], NULL, absent_racer, &r[i]);
	}
	for (int i = 0; i < RACERS; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(r[i].errors, 0);
		wins += r[i].wins;
		lost += r[i].lost;
	}
	pthread_barrier_destroy(&go);
	cr_assert_eq(wins, rounds, "exactly one winner per key");
	cr_assert_eq(lost, rounds * (RACERS - 1));
	/* The value is the winner's, and survives a reopen. */
	tu_close(s);
	s = tu_open(tu_dir);
	dskvs_stats st;
	cr_assert_eq(dskvs_stats_get(s, &st), DSKVS_OK);
	cr_assert_eq(st.entries, (uint64_t)rounds);
	tu_close(s);
}

/* A counter as a decimal string. */
static long parse_count(const void *p, size_t n)
{
	char buf[32];
	cr_assert_lt(n, sizeof(buf));
	memcpy(buf, p, n);
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

struct cas {
	dskvs *s;
	int tries;
	int successes, conflicts, errors;
};

static void *cas_worker(void *arg)
{
	struct cas *c = arg;
	for (int i = 0; i < c->tries; i++) {
		char buf[32], nv[32];
		size_t len;
		uint64_t v;
		long n = 0;
		int rc = dskvs_get_seq(c->s, "ctr/x", buf, sizeof(buf) - 1,
		                       &len, &v);
		if (rc == DSKVS_OK) {
			buf[len] = '\0';
			n = strtol(buf, NULL, 10);
		} else if (rc != DSKVS_NOTFOUND) {
			c->errors++;
			continue;
		}
		snprintf(nv, sizeof(nv), "%ld", n + 1);
		rc = dskvs_put_if_seq(c->s, "ctr/x", nv, strlen(nv), v, NULL);
		if (rc == DSKVS_OK)
			c->successes++;
		else if (rc == DSKVS_ECONFLICT)
			c->conflicts++;
		else
			c->errors++;
	}
	return NULL;
}

Test(atomic, put_if_seq_cas_counter)
{
	dskvs *s = tu_open(tu_dir);
	pthread_t th[RACERS];
	struct cas c[RACERS];
	int succ = 0;

	for (int i = 0; i < RACERS; i++) {
		c[i] = (struct cas){ s, 500, 0, 0, 0 };
		pthread_create(&th[i], NULL, cas_worker, &c[i]);
	}
	for (int i = 0; i < RACERS; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(c[i].errors, 0);
		cr_assert_eq(c[i].successes + c[i].conflicts, 500);
		succ += c[i].successes;
	}
	void *val;
	size_t len;
	cr_assert_eq(dskvs_get_alloc(s, "ctr/x", &val, &len), DSKVS_OK);
	cr_assert_eq(parse_count(val, len), succ,
	             "final value == number of successful CAS");
	free(val);
	tu_close(s);
}

/* ---- dskvs_update -------------------------------------------------------- */

struct incr {
	char out[32];
	long by;
	int calls;
};

static int incr_fn(const void *old, size_t old_len, int exists,
                   const void **new_val, size_t *new_len, void *arg)
{
	struct incr *a = arg;
	long n = exists ? parse_count(old, old_len) : 0;
	a->calls++;
	snprintf(a->out, sizeof(a->out), "%ld", n + a->by);
	*new_val = a->out;
	*new_len = strlen(a->out);
	return DSKVS_UPDATE_SET;
}

/* parse_count asserts; the workers' copy must not. */
static int incr_fn_mt(const void *old, size_t old_len, int exists,
                      const void **new_val, size_t *new_len, void *arg)
{
	struct incr *a = arg;
	char buf[32] = "0";
	if (exists) {
		if (old_len >= sizeof(buf))
			return -1;
		memcpy(buf, old, old_len);
		buf[old_len] = '\0';
	}
	snprintf(a->out, sizeof(a->out), "%ld", strtol(buf, NULL, 10) + 1);
	*new_val = a->out;
	*new_len = strlen(a->out);
	return DSKVS_UPDATE_SET;
}

Test(atomic, update_set_keep_delete)
{
	dskvs *s = tu_open(tu_dir);
	struct incr a = { .by = 5 };
	uint64_t q = 0, v;

	cr_assert_eq(dskvs_update(s, "u/n", incr_fn, &a, &q), DSKVS_OK);
	cr_assert_eq(a.calls, 1);
	tu_check_str(s, "u/n", "5");
	v = version_of(s, "u/n");
	cr_assert_eq(q, v, "*seq is the version written");
	a.by = 2;
	cr_assert_eq(dskvs_update(s, "u/n", incr_fn, &a, NULL), DSKVS_OK);
	tu_check_str(s, "u/n", "7");
	cr_assert_gt(version_of(s, "u/n"), v);
	tu_close(s);
	s = tu_open(tu_dir);
	tu_check_str(s, "u/n", "7");
	tu_close(s);
}

static int ret_fn(const void *old, size_t old_len, int exists,
                  const void **new_val, size_t *new_len, void *arg)
{
	(void)old;
	(void)old_len;
	(void)exists;
	*new_val = "junk";
	*new_len = 4;
	return *(int *)arg;
}

Test(atomic, update_return_codes)
{
	dskvs *s = tu_open(tu_dir);
	uint64_t q, v;
	int r;

	tu_put_str(s, "u/k", "keep");
	v = version_of(s, "u/k");
	q = 42;
	r = DSKVS_UPDATE_KEEP;
	cr_assert_eq(dskvs_update(s, "u/k", ret_fn, &r, &q), DSKVS_OK);
	cr_assert_eq(q, 42, "KEEP leaves *seq");
	cr_assert_eq(version_of(s, "u/k"), v);
	tu_check_str(s, "u/k", "keep");
	/* Negative codes abort and come back as they are. */
	const int negs[] = { -1, DSKVS_ENOMEM, -31500, -100000 };
	for (size_t i = 0; i < sizeof(negs) / sizeof(negs[0]); i++) {
		r = negs[i];
		cr_assert_eq(dskvs_update(s, "u/k", ret_fn, &r, &q), negs[i]);
		cr_assert_eq(q, 42);
		tu_check_str(s, "u/k", "keep");
	}
	/* Garbage positive codes: DSKVS_EINVAL, nothing changed. */
	const int junk[] = { 3, 7, 1000, 0x7fffffff };
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		r = junk[i];
		cr_assert_eq(dskvs_update(s, "u/k", ret_fn, &r, &q),
		             DSKVS_EINVAL, "return %d", junk[i]);
		cr_assert_eq(version_of(s, "u/k"), v);
	}
	/* Aborts and KEEP on an absent member leave no collection. */
	r = DSKVS_UPDATE_KEEP;
	cr_assert_eq(dskvs_update(s, "new/k", ret_fn, &r, NULL), DSKVS_OK);
	r = -5;
	cr_assert_eq(dskvs_update(s, "new/k", ret_fn, &r, NULL), -5);
	dskvs_stats st;
	cr_assert_eq(dskvs_stats_get(s, &st), DSKVS_OK);
	cr_assert_eq(st.collections, 1);
	tu_check_absent(s, "new/k");
	/* DELETE: removes; absent is not an error. */
	r = DSKVS_UPDATE_DELETE;
	q = 0;
	cr_assert_eq(dskvs_update(s, "u/k", ret_fn, &r, &q), DSKVS_OK);
	cr_assert_gt(q, v);
	tu_check_absent(s, "u/k");
	q = 42;
	cr_assert_eq(dskvs_update(s, "u/k", ret_fn, &r, &q), DSKVS_OK);
	cr_assert_eq(q, 42);
	/* SET: "junk" */
	r = DSKVS_UPDATE_SET;
	cr_assert_eq(dskvs_update(s, "u/k", ret_fn, &r, &q), DSKVS_OK);
	tu_check_str(s, "u/k", "junk");
	cr_assert_eq(q, version_of(s, "u/k"));
	tu_close(s);
	s = tu_open(tu_dir);
	tu_check_str(s, "u/k", "junk");
	tu_check_absent(s, "new/k");
	tu_close(s);
}

static int bad_set_fn(const void *old, size_t old_len, int exists,
                      const void **new_val, size_t *new_len, void *arg)
{
	(void)old;
	(void)old_len;
	(void)exists;
	*new_val = arg == NULL ? NULL : "x";
	*new_len = arg == NULL ? 3 : (size_t)DSKVS_VALUE_MAX + 1;
	return DSKVS_UPDATE_SET;
}

Test(atomic, update_bad_input)
{
	dskvs *s = tu_open(tu_dir);
	int r = 0;

	cr_assert_eq(dskvs_update(NULL, "u/k", ret_fn, &r, NULL), DSKVS_EINVAL);
	cr_assert_eq(dskvs_update(s, "u/k", NULL, &r, NULL), DSKVS_EINVAL);
	cr_assert_eq(dskvs_update(s, NULL, ret_fn, &r, NULL), DSKVS_EBADKEY);
	cr_assert_eq(dskvs_update(s, "u", ret_fn, &r, NULL), DSKVS_EBADKEY);
	cr_assert_eq(dskvs_update(s, "/k", ret_fn, &r, NULL), DSKVS_EBADKEY);
	char *big = tu_repeat('n', DSKVS_NAME_MAX + 1);
	char *key = tu_fmt("%s/k", big);
	cr_assert_eq(dskvs_update(s, key, ret_fn, &r, NULL), DSKVS_ETOOBIG);
	free(key);
	free(big);
	/* SET of NULL with a length, and of an oversized value. */
	cr_assert_eq(dskvs_update(s, "u/k", bad_set_fn, NULL, NULL),
	             DSKVS_EINVAL);
	cr_assert_eq(dskvs_update(s, "u/k", bad_set_fn, "big", NULL),
	             DSKVS_ETOOBIG);
	tu_check_absent(s, "u/k");
	tu_close(s);
}

/* A callback that misuses the store: every write, sync, compaction and
 * close of that store is refused with DSKVS_EINVAL; reads work. */
struct misuse {
	dskvs *s;
	int rc[12];
	char got[8];
};

static int misuse_fn(const void *old, size_t old_len, int exists,
                     const void **new_val, size_t *new_len, void *arg)
{
	struct misuse *m = arg;
	size_t len;
	int k = 0;
	(void)old;
	(void)old_len;
	(void)exists;
	(void)new_val;
	(void)new_len;
	m->rc[k++] = dskvs_put(m->s, "u/k", "v", 1, NULL, NULL);
	m->rc[k++] = dskvs_put(m->s, "other/k", "v", 1, NULL, NULL);
	m->rc[k++] = dskvs_delete(m->s, "u/k");
	m->rc[k++] = dskvs_delete_all(m->s, "u");
	m->rc[k++] = dskvs_put_if_absent(m->s, "u/z", "v", 1, NULL);
	m->rc[k++] = dskvs_put_if_seq(m->s, "u/z", "v", 1, 0, NULL);
	m->rc[k++] = dskvs_update(m->s, "u/k", misuse_fn, m, NULL);
	m->rc[k++] = dskvs_sync(m->s);
	m->rc[k++] = dskvs_compact(m->s);
	m->rc[k++] = dskvs_rewrite(m->s);
	m->rc[k++] = dskvs_close(m->s);
	/* Reads are allowed. */
	m->rc[k++] = dskvs_get(m->s, "u/k", m->got, sizeof(m->got), &len);
	return DSKVS_UPDATE_KEEP;
}

Test(atomic, update_callback_cannot_write_sync_or_close)
{
	dskvs *s = tu_open(tu_dir);
	struct misuse m = { .s = s };

	tu_put_str(s, "u/k", "val");
	cr_assert_eq(dskvs_update(s, "u/k", misuse_fn, &m, NULL), DSKVS_OK);
	for (int i = 0; i < 11; i++)
		cr_assert_eq(m.rc[i], DSKVS_EINVAL, "call %d: %s", i,
		             dskvs_err_name(m.rc[i]));
	cr_assert_eq(m.rc[11], DSKVS_OK);
	cr_assert_eq(memcmp(m.got, "val", 3), 0);
	/* Nothing happened, and the store still works (close was refused). */
	tu_check_str(s, "u/k", "val");
	tu_check_absent(s, "other/k");
	tu_put_str(s, "u/k", "after");
	tu_close(s);
}

struct upd_worker {
	dskvs *s;
	int n;
	int errors;
};

static void *update_worker(void *arg)
{
	struct upd_worker *w = arg;
	struct incr a = { .by = 1 };
	for (int i = 0; i < w->n; i++)
		if (dskvs_update(w->s, "ctr/u", incr_fn_mt, &a, NULL) !=
		    DSKVS_OK)
			w->errors++;
	return NULL;
}

Test(atomic, update_increments_from_threads)
{
	dskvs *s = tu_open(tu_dir);
	pthread_t th[RACERS];
	struct upd_worker w[RACERS];

	for (int i = 0; i < RACERS; i++) {
		w[i] = (struct upd_worker){ s, 1000, 0 };
		pthread_create(&th[i], NULL, update_worker, &w[i]);
	}
	for (int i = 0; i < RACERS; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(w[i].errors, 0);
	}
	tu_check_str(s, "ctr/u", "4000");
	tu_close(s);
	s = tu_open(tu_dir);
	tu_check_str(s, "ctr/u", "4000");
	tu_close(s);
}
