/*
 * The contract of DESIGN.md §3b, checked from outside: built against the
 * *installed* dskvs (find_package and pkg-config, run.sh) with nothing but
 * <dskvs.h>. Exits 0 when every check holds.
 *
 *  1. counters: threads increment one hot counter and eight others with
 *     dskvs_update; each final value is the number of updates that
 *     returned DSKVS_OK, also after close and open;
 *  2. CAS: threads increment a counter with dskvs_get_seq +
 *     dskvs_put_if_seq loops; no increment is lost;
 *  3. put_if_absent: threads race to create the same members; exactly one
 *     wins each, the others get DSKVS_EEXIST and the winner's version;
 *  4. batches across kill -9: a child writes batches of five members (all
 *     set to the batch's number) with DSKVS_SYNC_ALWAYS and reports each one
 *     acknowledged; it is killed with SIGKILL; on reopen the five members
 *     hold one batch's number (all or none), at least the last one
 *     acknowledged;
 *  5. backup while writing: a writer sets 100 members to the round number,
 *     in order, round after round, while dskvs_backup runs; the copy opens,
 *     holds every round that finished before the call, and is a consistent
 *     cut: the values fall by at most one along the members, never rise.
 */
#define _GNU_SOURCE
#include <dskvs.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 4

static void die(const char *what, int rc)
{
	fprintf(stderr, "contract: %s: %s (%s)\n", what, dskvs_err_name(rc),
	        dskvs_errmsg(NULL));
	exit(1);
}

#define CHECK(cond, ...)                                               \
	do {                                                           \
		if (!(cond)) {                                         \
			fprintf(stderr, "contract: %s:%d: ", __FILE__, \
			        __LINE__);                             \
			fprintf(stderr, __VA_ARGS__);                  \
			fputc('\n', stderr);                           \
			exit(1);                                       \
		}                                                      \
	} while (0)

static dskvs *open_store(const char *dir, int mode)
{
	dskvs_options o;
	dskvs *s = NULL;
	dskvs_options_init(&o);
	o.sync_mode = mode;
	int rc = dskvs_open(dir, &o, &s);
	if (rc != DSKVS_OK)
		die(dir, rc);
	return s;
}

/* A counter is a uint64_t value (8 bytes); absent reads as 0. */
static uint64_t get_u64(dskvs *s, const char *key, uint64_t *version)
{
	uint64_t v = 0, seq = 0;
	size_t len = 0;
	int rc = dskvs_get_seq(s, key, &v, sizeof(v), &len, &seq);
	if (rc == DSKVS_NOTFOUND) {
		if (version)
			*version = 0;
		return 0;
	}
	if (rc != DSKVS_OK)
		die(key, rc);
	CHECK(len == sizeof(v), "%s: %zu bytes", key, len);
	if (version)
		*version = seq;
	return v;
}

/* ---- 1. counters ----------------------------------------------------------
 */

struct incr {
	uint64_t v; /* the new value, kept alive until dskvs_update returns */
};

static int incr_fn(const void *old, size_t old_len, int exists,
                   const void **new_val, size_t *new_len, void *arg)
{
	struct incr *in = arg;
	uint64_t v = 0;
	if (exists) {
		if (old_len != sizeof(v))
			return DSKVS_EINVAL;
		memcpy(&v, old, sizeof(v));
	}
	in->v = v + 1;
	*new_val = &in->v;
	*new_len = sizeof(in->v);
	return DSKVS_UPDATE_SET;
}

struct counters_arg {
	dskvs *s;
	int id;
	uint64_t ok_hot, ok_key[8];
};

static void *counters_main(void *p)
{
	struct counters_arg *a = p;
	char key[32];
	uint64_t r = 0x9e3779b97f4a7c15u * (uint64_t)(a->id + 1);
	for (int i = 0; i < 3000; i++) {
		struct incr in;
		if (i % 2 == 0) {
			if (dskvs_update(a->s, "ctr/hot", incr_fn, &in, NULL) ==
			    DSKVS_OK)
				a->ok_hot++;
			continue;
		}
		r ^= r << 13, r ^= r >> 7, r ^= r << 17;
		int k = (int)(r % 8);
		snprintf(key, sizeof(key), "ctr/k%d", k);
		if (dskvs_update(a->s, key, incr_fn, &in, NULL) == DSKVS_OK)
			a->ok_key[k]++;
	}
	return NULL;
}

static void check_counters(dskvs *s, const uint64_t *want_key,
                           uint64_t want_hot)
{
	char key[32];
	uint64_t hot = get_u64(s, "ctr/hot", NULL);
	CHECK(hot == want_hot, "ctr/hot: %" PRIu64 ", %" PRIu64 " updates", hot,
	      want_hot);
	for (int k = 0; k < 8; k++) {
		snprintf(key, sizeof(key), "ctr/k%d", k);
		uint64_t v = get_u64(s, key, NULL);
		CHECK(v == want_key[k], "%s: %" PRIu64 ", %" PRIu64 " updates",
		      key, v, want_key[k]);
	}
}

static void test_counters(const char *dir)
{
	dskvs *s = open_store(dir, DSKVS_SYNC_ASYNC);
	pthread_t th[THREADS];
	struct counters_arg a[THREADS];
	uint64_t want_key[8] = { 0 }, want_hot = 0;
	for (int i = 0; i < THREADS; i++) {
		a[i] = (struct counters_arg){ .s = s, .id = i };
		CHECK(pthread_create(&th[i], NULL, counters_main, &a[i]) == 0,
		      "pthread_create");
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		want_hot += a[i].ok_hot;
		for (int k = 0; k < 8; k++)
			want_key[k] += a[i].ok_key[k];
	}
	CHECK(want_hot == THREADS * 1500u, "%" PRIu64 " hot updates failed",
	      THREADS * 1500u - want_hot);
	check_counters(s, want_key, want_hot);
	int rc = dskvs_close(s);
	if (rc != DSKVS_OK)
		die("close", rc);
	s = open_store(dir, DSKVS_SYNC_ASYNC);
	check_counters(s, want_key, want_hot);
	if ((rc = dskvs_close(s)) != DSKVS_OK)
		die("close", rc);
	printf("contract: counters ok (%" PRIu64 " hot increments)\n",
	       want_hot);
}

/* ---- 2. CAS ---------------------------------------------------------------
 */

static void *cas_main(void *p)
{
	dskvs *s = p;
	for (int i = 0; i < 800; i++) {
		uint64_t ver = 0, v = get_u64(s, "cas/x", &ver), nv;
		int rc;
		/* On a conflict, ver is the current version: read the value
		 * of that version and try again. */
		for (;;) {
			nv = v + 1;
			rc = dskvs_put_if_seq(s, "cas/x", &nv, sizeof(nv), ver,
			                      &ver);
			if (rc != DSKVS_ECONFLICT)
				break;
			uint64_t ver2 = 0;
			v = get_u64(s, "cas/x", &ver2);
			ver = ver2;
		}
		if (rc != DSKVS_OK)
			die("put_if_seq", rc);
	}
	return NULL;
}

static void test_cas(const char *dir)
{
	dskvs *s = open_store(dir, DSKVS_SYNC_ASYNC);
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_create(&th[i], NULL, cas_main, s) == 0,
		      "pthread_create");
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	uint64_t v = get_u64(s, "cas/x", NULL);
	CHECK(v == THREADS * 800u, "cas/x: %" PRIu64 ", want %u", v,
	      THREADS * 800u);
	int rc = dskvs_close(s);
	if (rc != DSKVS_OK)
		die("close", rc);
	printf("contract: CAS ok (%" PRIu64 ")\n", v);
}

/* ---- 3. put_if_absent ------------------------------------------------------
 */

struct pia_arg {
	dskvs *s;
	int id;
	unsigned wins;
};

static void *pia_main(void *p)
{
	struct pia_arg *a = p;
	char key[32];
	for (int k = 0; k < 300; k++) {
		snprintf(key, sizeof(key), "pia/k%d", k);
		uint64_t seq = 0;
		int rc =
		    dskvs_put_if_absent(a->s, key, &a->id, sizeof(a->id), &seq);
		if (rc == DSKVS_OK) {
			a->wins++;
		} else {
			CHECK(rc == DSKVS_EEXIST, "%s: %s", key,
			      dskvs_err_name(rc));
			CHECK(seq != 0, "%s: EEXIST without the version", key);
		}
	}
	return NULL;
}

static void test_put_if_absent(const char *dir)
{
	dskvs *s = open_store(dir, DSKVS_SYNC_ASYNC);
	pthread_t th[THREADS];
	struct pia_arg a[THREADS];
	unsigned wins = 0;
	for (int i = 0; i < THREADS; i++) {
		a[i] = (struct pia_arg){ .s = s, .id = i };
		CHECK(pthread_create(&th[i], NULL, pia_main, &a[i]) == 0,
		      "pthread_create");
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		wins += a[i].wins;
	}
	CHECK(wins == 300, "%u winners for 300 members", wins);
	int rc = dskvs_close(s);
	if (rc != DSKVS_OK)
		die("close", rc);
	printf("contract: put_if_absent ok\n");
}

/* ---- 4. batches across kill -9 --------------------------------------------
 */

static const char *const bmembers[5] = { "m0", "m1", "m2", "m3", "m4" };

static void batch_child(const char *dir, int ackfd)
{
	dskvs *s = open_store(dir, DSKVS_SYNC_ALWAYS);
	for (uint64_t i = 1;; i++) {
		dskvs_batch_op ops[5];
		for (int m = 0; m < 5; m++)
			ops[m] =
			    (dskvs_batch_op){ bmembers[m], &i, sizeof(i), 0 };
		int rc = dskvs_write_batch(s, "batch", ops, 5, NULL);
		if (rc != DSKVS_OK)
			_exit(3);
		if (write(ackfd, &i, sizeof(i)) != (ssize_t)sizeof(i))
			_exit(4);
	}
}

static void test_batches_kill9(const char *dir)
{
	int fds[2];
	CHECK(pipe(fds) == 0, "pipe: %s", strerror(errno));
	pid_t pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(fds[0]);
		batch_child(dir, fds[1]);
		_exit(0);
	}
	close(fds[1]);
	uint64_t acked = 0, v;
	/* Kill it somewhere after the 40th acknowledged batch. */
	while (acked < 40 && read(fds[0], &v, sizeof(v)) == (ssize_t)sizeof(v))
		acked = v;
	kill(pid, SIGKILL);
	/* Acknowledgements already in the pipe count too. */
	while (read(fds[0], &v, sizeof(v)) == (ssize_t)sizeof(v))
		acked = v;
	close(fds[0]);
	int st;
	waitpid(pid, &st, 0);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
	      "the batch writer ended with status %d before the kill", st);
	CHECK(acked >= 40, "only %" PRIu64 " batches acknowledged", acked);

	dskvs *s = open_store(dir, DSKVS_SYNC_ASYNC);
	uint64_t first = 0;
	for (int m = 0; m < 5; m++) {
		char key[32];
		snprintf(key, sizeof(key), "batch/%s", bmembers[m]);
		uint64_t x = get_u64(s, key, NULL);
		if (m == 0)
			first = x;
		CHECK(x == first,
		      "after kill -9: %s holds batch %" PRIu64 ", batch/m0 "
		      "holds %" PRIu64 " (a batch applied in part)",
		      key, x, first);
	}
	CHECK(first >= acked,
	      "after kill -9: batch %" PRIu64 " recovered, %" PRIu64
	      " was acknowledged",
	      first, acked);
	int rc = dskvs_close(s);
	if (rc != DSKVS_OK)
		die("close", rc);
	printf("contract: batches across kill -9 ok (acknowledged %" PRIu64
	       ", recovered %" PRIu64 ")\n",
	       acked, first);
}

/* ---- 5. backup while writing ----------------------------------------------
 */

#define BK_MEMBERS 100

struct bk_arg {
	dskvs *s;
	atomic_uint_fast64_t done_rounds; /* rounds whose puts all returned */
	atomic_int stop;
};

static void *bk_writer(void *p)
{
	struct bk_arg *a = p;
	char key[32];
	for (uint64_t r = 1; !atomic_load(&a->stop); r++) {
		for (int m = 0; m < BK_MEMBERS; m++) {
			snprintf(key, sizeof(key), "bk/k%03d", m);
			int rc =
			    dskvs_put(a->s, key, &r, sizeof(r), NULL, NULL);
			if (rc != DSKVS_OK)
				die("backup writer: put", rc);
		}
		atomic_store(&a->done_rounds, r);
	}
	return NULL;
}

static void test_backup(const char *dir, const char *dest)
{
	struct bk_arg a = { .s = open_store(dir, DSKVS_SYNC_ASYNC) };
	pthread_t th;
	CHECK(pthread_create(&th, NULL, bk_writer, &a) == 0, "pthread_create");
	while (atomic_load(&a.done_rounds) < 200)
		usleep(1000);
	uint64_t before = atomic_load(&a.done_rounds);
	int rc = dskvs_backup(a.s, dest);
	uint64_t after = atomic_load(&a.done_rounds);
	atomic_store(&a.stop, 1);
	pthread_join(th, NULL);
	if (rc != DSKVS_OK)
		die("dskvs_backup", rc);
	if ((rc = dskvs_close(a.s)) != DSKVS_OK)
		die("close", rc);

	dskvs *b = open_store(dest, DSKVS_SYNC_ASYNC);
	uint64_t prev = 0, hi = 0;
	for (int m = 0; m < BK_MEMBERS; m++) {
		char key[32];
		snprintf(key, sizeof(key), "bk/k%03d", m);
		uint64_t v = get_u64(b, key, NULL);
		if (m == 0)
			hi = v;
		CHECK(v >= before,
		      "backup: %s holds round %" PRIu64 "; round %" PRIu64
		      " returned before the call",
		      key, v, before);
		CHECK(v <= after + 1,
		      "backup: %s holds round %" PRIu64 ", from after the "
		      "call (%" PRIu64 ")",
		      key, v, after);
		CHECK(m == 0 || (v <= prev && v + 1 >= hi),
		      "backup: not a consistent cut: %s holds round %" PRIu64
		      " after %" PRIu64 " (first member: %" PRIu64 ")",
		      key, v, prev, hi);
		prev = v;
	}
	if ((rc = dskvs_close(b)) != DSKVS_OK)
		die("close backup", rc);
	printf("contract: backup while writing ok (rounds %" PRIu64
	       " .. %" PRIu64 " during the call, copy at %" PRIu64 ")\n",
	       before, after, hi);
}

int main(void)
{
	char tmpl[] = "/tmp/dskvs-contract-XXXXXX", path[4][600];
	const char *root = mkdtemp(tmpl);
	CHECK(root != NULL, "mkdtemp: %s", strerror(errno));
	static const char *const names[4] = { "s1", "s2", "s3", "bk" };
	for (int i = 0; i < 4; i++)
		snprintf(path[i], sizeof(path[i]), "%s/%s", root, names[i]);
	char dest[700];
	snprintf(dest, sizeof(dest), "%s/copy", root);

	test_counters(path[0]);
	test_cas(path[1]);
	test_put_if_absent(path[1]);
	test_batches_kill9(path[2]);
	test_backup(path[3], dest);

	char cmd[800];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "contract: could not remove %s\n", root);
	printf("contract: all ok\n");
	return 0;
}
