/*
 * dskvs_write_batch / dskvs_write_batch_bin: error codes, order and
 * versions, dskvs_get_all never seeing part of a batch, and crash
 * atomicity: a log cut at every byte offset inside a batch's records
 * reopens with all or none of it, damage inside a batch the log proves
 * synced is DSKVS_ECORRUPT, kill -9 during batches, and compaction
 * meanwhile.
 */
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

TestSuite(batch, .init = tu_setup, .fini = tu_teardown, .timeout = 60);

#define NM 10 /* members a batch writes */

static const char *mname(int i)
{
	static const char *names[NM] = { "m0", "m1", "m2", "m3", "m4",
		                         "m5", "m6", "m7", "m8", "m9" };
	return names[i];
}

/* A batch that sets every member of "c" to the 8-byte value k. */
static int put_all(dskvs *s, uint64_t k, uint64_t *seq)
{
	dskvs_batch_op ops[NM];
	static __thread uint64_t vals[NM];
	for (int i = 0; i < NM; i++) {
		vals[i] = k;
		ops[i] = (dskvs_batch_op){ mname(i), &vals[i], 8, 0 };
	}
	return dskvs_write_batch(s, "c", ops, NM, seq);
}

/* get_all of "c": how many members, and whether they all hold one value
 * (*k receives it). */
struct seen {
	int n;
	uint64_t k;
	bool mixed;
};
static int visit(const char *m, size_t ml, const void *v, size_t vl, void *arg)
{
	struct seen *sn = arg;
	uint64_t k;
	(void)m;
	(void)ml;
	cr_assert_eq(vl, 8);
	memcpy(&k, v, 8);
	if (sn->n++ == 0)
		sn->k = k;
	else if (k != sn->k)
		sn->mixed = true;
	return 0;
}
static struct seen look(dskvs *s)
{
	struct seen sn = { 0, 0, false };
	cr_assert_eq(dskvs_get_all(s, "c", visit, &sn), DSKVS_OK);
	return sn;
}

Test(batch, every_error_code)
{
	dskvs *s = tu_open(tu_dir);
	dskvs_batch_op ok = { "a", "x", 1, 0 };
	dskvs_batch_op op;
	uint64_t seq = 77;

	cr_assert_eq(dskvs_write_batch(NULL, "c", &ok, 1, &seq), DSKVS_EINVAL);
	cr_assert_eq(dskvs_write_batch(s, "c", &ok, 0, &seq), DSKVS_EINVAL);
	cr_assert_eq(dskvs_write_batch(s, "c", NULL, 3, &seq), DSKVS_EINVAL);
	cr_assert_eq(dskvs_write_batch(s, NULL, &ok, 1, &seq), DSKVS_EBADKEY);
	cr_assert_eq(dskvs_write_batch(s, "", &ok, 1, &seq), DSKVS_EBADKEY);
	cr_assert_eq(dskvs_write_batch(s, "/c", &ok, 1, &seq), DSKVS_EBADKEY);
	cr_assert_eq(dskvs_write_batch(s, "c/a", &ok, 1, &seq), DSKVS_EBADKEY);
	op = (dskvs_batch_op){ NULL, "x", 1, 0 };
	cr_assert_eq(dskvs_write_batch(s, "c", &op, 1, &seq), DSKVS_EBADKEY);
	op = (dskvs_batch_op){ "", "x", 1, 0 };
	cr_assert_eq(dskvs_write_batch(s, "c", &op, 1, &seq), DSKVS_EBADKEY);
	char *big = tu_repeat('n', DSKVS_NAME_MAX + 1);
	dskvs_batch_op two[2] = { ok, { big, "x", 1, 0 } };
	cr_assert_eq(dskvs_write_batch(s, "c", two, 2, &seq), DSKVS_ETOOBIG);
	char *bigc = tu_repeat('c', DSKVS_NAME_MAX + 1);
	cr_assert_eq(dskvs_write_batch(s, bigc, &ok, 1, &seq), DSKVS_ETOOBIG);
	two[1] = (dskvs_batch_op){ "b", "x", (size_t)DSKVS_VALUE_MAX + 1, 0 };
	cr_assert_eq(dskvs_write_batch(s, "c", two, 2, &seq), DSKVS_ETOOBIG);
	two[1] = (dskvs_batch_op){ "b", NULL, 5, 0 };
	cr_assert_eq(dskvs_write_batch(s, "c", two, 2, &seq), DSKVS_EINVAL);
	/* A NULL value is fine for a delete, and for an empty put. */
	two[1] = (dskvs_batch_op){ "b", NULL, 5, 1 };
	cr_assert_eq(dskvs_write_batch(s, "c", two, 2, &seq), DSKVS_OK);
	two[1] = (dskvs_batch_op){ "b", NULL, 0, 0 };
	cr_assert_eq(dskvs_write_batch(s, "c", two, 2, &seq), DSKVS_OK);

	/* Too many ops: over batch_max_records (16384 by default). */
	size_t n = 16385;
	dskvs_batch_op *many = calloc(n, sizeof(*many));
	for (size_t i = 0; i < n; i++)
		many[i] = (dskvs_batch_op){ "m", "x", 1, 0 };
	cr_assert_eq(dskvs_write_batch(s, "d", many, n, &seq), DSKVS_EBATCH);
	cr_assert_eq(dskvs_write_batch(s, "d", many, n - 1, &seq), DSKVS_OK);
	/* Too many bytes: two values of 40 MiB each. */
	char *v = malloc(40u << 20);
	memset(v, 'v', 40u << 20);
	dskvs_batch_op fat[2] = { { "f1", v, 40u << 20, 0 },
		                  { "f2", v, 40u << 20, 0 } };
	cr_assert_eq(dskvs_write_batch(s, "e", fat, 2, &seq), DSKVS_EBATCH);
	/* The limit counts each record's copy of the collection's name: 16000
	 * one-byte puts into a collection of the longest name are 1 GiB of
	 * records. */
	char *lc = malloc(DSKVS_NAME_MAX + 1);
	memset(lc, 'l', DSKVS_NAME_MAX);
	lc[DSKVS_NAME_MAX] = '\0';
	cr_assert_eq(dskvs_write_batch(s, lc, many, 16000, &seq), DSKVS_EBATCH);
	free(lc);
	cr_assert_str_neq(dskvs_strerror(DSKVS_EBATCH),
	                  dskvs_strerror(DSKVS_ETOOBIG));
	cr_assert_str_eq(dskvs_err_name(DSKVS_EBATCH), "DSKVS_EBATCH");
	/* Nothing of the refused batches was applied. */
	tu_check_absent(s, "e/f1");
	tu_check_absent(s, "c/NULL");
	/* _bin: a NULL member with a length, and an empty member (valid). */
	dskvs_batch_op_bin bb = { NULL, 3, "x", 1, 0 };
	cr_assert_eq(dskvs_write_batch_bin(s, "b", 1, &bb, 1, &seq),
	             DSKVS_EBADKEY);
	cr_assert_eq(dskvs_write_batch_bin(s, "b/", 2, &bb, 1, &seq),
	             DSKVS_EBADKEY);
	bb = (dskvs_batch_op_bin){ NULL, 0, "e", 1, 0 };
	dskvs_batch_op_bin b2[2] = { bb, { "z\0z", 3, "nul", 3, 0 } };
	cr_assert_eq(dskvs_write_batch_bin(s, "b", 1, b2, 2, &seq), DSKVS_OK);
	char buf[8];
	size_t len;
	cr_assert_eq(dskvs_get_bin(s, "b", 1, "z\0z", 3, buf, 8, &len, NULL),
	             DSKVS_OK);
	cr_assert_eq(len, 3);
	cr_assert_eq(dskvs_get_bin(s, "b", 1, NULL, 0, buf, 8, &len, NULL),
	             DSKVS_OK);
	free(v);
	free(many);
	free(big);
	free(bigc);
	tu_close(s);
}

Test(batch, order_versions_and_reopen)
{
	dskvs *s = tu_open(tu_dir);
	uint64_t seq, v;
	tu_put_str(s, "c/old", "1");
	tu_put_str(s, "c/gone", "1");
	dskvs_batch_op ops[] = {
		{ "a", "first", 5, 0 }, { "a", "second", 6, 0 },
		{ "gone", NULL, 0, 1 }, { "never", NULL, 0, 1 },
		{ "b", "bee", 3, 0 },
	};
	cr_assert_eq(dskvs_write_batch(s, "c", ops, 5, &seq), DSKVS_OK);
	tu_check_str(s, "c/a", "second");
	tu_check_str(s, "c/b", "bee");
	tu_check_str(s, "c/old", "1");
	tu_check_absent(s, "c/gone");
	tu_check_absent(s, "c/never");
	/* Op i has seq - (n - 1) + i. */
	char buf[16];
	size_t len;
	cr_assert_eq(dskvs_get_seq(s, "c/a", buf, 16, &len, &v), DSKVS_OK);
	cr_assert_eq(v, seq - 4 + 1);
	cr_assert_eq(dskvs_get_seq(s, "c/b", buf, 16, &len, &v), DSKVS_OK);
	cr_assert_eq(v, seq);
	cr_assert_eq(dskvs_wait_durable(s, seq, 10000), DSKVS_OK);
	/* A batch that deletes everything drops the collection. */
	dskvs_batch_op del[] = { { "a", NULL, 0, 1 },
		                 { "b", NULL, 0, 1 },
		                 { "old", NULL, 0, 1 } };
	cr_assert_eq(dskvs_write_batch(s, "c", del, 3, NULL), DSKVS_OK);
	cr_assert_eq(dskvs_delete_all(s, "c"), DSKVS_NOTFOUND);
	cr_assert_eq(dskvs_write_batch(s, "c", ops, 5, &seq), DSKVS_OK);
	tu_close(s);
	s = tu_open(tu_dir);
	tu_check_str(s, "c/a", "second");
	cr_assert_eq(dskvs_get_seq(s, "c/b", buf, 16, &len, &v), DSKVS_OK);
	cr_assert_eq(v, seq);
	tu_check_absent(s, "c/old");
	cr_assert_eq(dskvs_compact(s), DSKVS_OK);
	tu_close(s);
	s = tu_open(tu_dir);
	cr_assert_eq(dskvs_get_seq(s, "c/b", buf, 16, &len, &v), DSKVS_OK);
	cr_assert_eq(v, seq);
	tu_close(s);
}

/* ---- readers never see part of a batch --------------------------------- */

#define ROUNDS 3000
struct rd {
	dskvs *s;
	int *done;
	long looks, bad;
};
static void *reader(void *arg)
{
	struct rd *r = arg;
	while (!__atomic_load_n(r->done, __ATOMIC_ACQUIRE)) {
		struct seen sn = look(r->s);
		r->looks++;
		if (sn.mixed || (sn.n != 0 && sn.n != NM))
			r->bad++;
	}
	return NULL;
}

Test(batch, get_all_sees_all_or_none, .timeout = 120)
{
	dskvs *s = tu_open(tu_dir);
	int done = 0;
	struct rd r[2] = { { s, &done, 0, 0 }, { s, &done, 0, 0 } };
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, reader, &r[i]);
	for (uint64_t k = 1; k <= ROUNDS; k++) {
		cr_assert_eq(put_all(s, k, NULL), DSKVS_OK);
		if (k % 3 == 1) { /* and sometimes all gone at once */
			dskvs_batch_op del[NM];
			for (int i = 0; i < NM; i++)
				del[i] =
				    (dskvs_batch_op){ mname(i), NULL, 0, 1 };
			cr_assert_eq(dskvs_write_batch(s, "c", del, NM, NULL),
			             DSKVS_OK);
		}
	}
	__atomic_store_n(&done, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(r[i].bad, 0, "reader %d: %ld of %ld partial", i,
		             r[i].bad, r[i].looks);
		cr_assert_gt(r[i].looks, 0);
	}
	struct seen sn = look(s);
	cr_assert_eq(sn.n, NM);
	cr_assert_eq(sn.k, ROUNDS);
	tu_close(s);
}

/* ---- crash atomicity ------------------------------------------------------
 */

/* A log cut at every offset from the batch's first byte to the end:
 * reopens with the batch whole or absent, never part of it. */
Test(batch, cut_at_every_byte_is_all_or_none, .timeout = 120)
{
	dskvs *s = tu_open(tu_dir);
	cr_assert_eq(put_all(s, 1, NULL), DSKVS_OK);
	tu_close(s);
	char *log = tu_log_path(tu_dir);
	uint64_t l0 = tu_file_size(log);
	s = tu_open(tu_dir);
	cr_assert_eq(put_all(s, 2, NULL), DSKVS_OK);
	tu_close(s);
	size_t l1;
	unsigned char *img = tu_read_file(log, &l1);
	cr_assert_gt(l1, l0 + NM * 32);
	int whole = 0, none = 0;
	for (uint64_t cut = l0; cut <= l1; cut++) {
		char *name = tu_fmt("cut%llu", (unsigned long long)cut);
		char *d = tu_subdir(name);
		char *dlog = tu_log_path(d);
		tu_write_file(dlog, img, (size_t)cut);
		dskvs *c = tu_open(d);
		struct seen sn = look(c);
		cr_assert_eq(sn.n, NM, "cut at %llu", (unsigned long long)cut);
		cr_assert(!sn.mixed, "cut at %llu: part of a batch",
		          (unsigned long long)cut);
		if (sn.k == 2)
			whole++;
		else
			none++;
		tu_close(c);
		tu_rmtree(d);
		free(dlog);
		free(d);
		free(name);
	}
	/* Only the cuts at the end of the batch's records or later keep it
	 * (its mark and the closing mark follow them). */
	cr_assert_gt(none, NM * 32);
	cr_assert_geq(whole, 1);
	cr_assert_leq(whole, 2 * 32 + 1);
	free(img);
	free(log);
}

/* Damage inside a batch that a later record proves synced: refused. */
Test(batch, damage_inside_synced_batch_is_corrupt)
{
	dskvs *s = tu_open(tu_dir);
	cr_assert_eq(put_all(s, 1, NULL), DSKVS_OK);
	tu_close(s);
	char *log = tu_log_path(tu_dir);
	uint64_t l0 = tu_file_size(log);
	s = tu_open(tu_dir);
	cr_assert_eq(put_all(s, 2, NULL), DSKVS_OK);
	cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	tu_put_str(s, "x/later", "proof");
	tu_close(s);
	size_t len;
	unsigned char *img = tu_read_file(log, &len);
	img[l0 + 3 * 32 + 10] ^= 0x40; /* inside the batch, past its start */
	tu_write_file(log, img, len);
	dskvs *c = NULL;
	cr_assert_eq(dskvs_open(tu_dir, NULL, &c), DSKVS_ECORRUPT, "%s",
	             dskvs_errmsg(NULL));
	free(img);
	free(log);
}

static void batches_forever(const char *dir)
{
	dskvs *s = NULL;
	if (dskvs_open(dir, NULL, &s) != DSKVS_OK)
		_exit(3);
	for (uint64_t k = 1;; k++)
		if (put_all(s, k, NULL) != DSKVS_OK)
			_exit(4);
}

Test(batch, kill_9_during_batches, .timeout = 120)
{
	for (int round = 0; round < 5; round++) {
		char *name = tu_fmt("kill%d", round);
		char *d = tu_subdir(name);
		pid_t pid = fork();
		cr_assert_neq(pid, -1);
		if (pid == 0)
			batches_forever(d);
		usleep(30000 + 20000 * (useconds_t)round);
		kill(pid, SIGKILL);
		int st;
		waitpid(pid, &st, 0);
		cr_assert(WIFSIGNALED(st), "child ended by itself: %d", st);
		dskvs *s = tu_open(d);
		struct seen sn = look(s);
		cr_assert(sn.n == 0 || sn.n == NM, "%d members", sn.n);
		cr_assert(!sn.mixed);
		tu_close(s);
		tu_rmtree(d);
		free(d);
		free(name);
	}
}

/* Batches while compactions run: the compacted log replays them whole. */
struct wr {
	dskvs *s;
	uint64_t last;
};
static void *writer(void *arg)
{
	struct wr *w = arg;
	for (uint64_t k = 1; k <= 2000; k++) {
		cr_assert_eq(put_all(w->s, k, NULL), DSKVS_OK);
		w->last = k;
	}
	return NULL;
}

Test(batch, compaction_keeps_batches_whole, .timeout = 120)
{
	dskvs_options o;
	dskvs_options_init(&o);
	o.batch_max_records = 16; /* small chunks: held records interleave */
	dskvs *s = tu_open_opts(tu_dir, &o);
	struct wr w = { s, 0 };
	pthread_t t;
	pthread_create(&t, NULL, writer, &w);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(dskvs_compact(s), DSKVS_OK);
	pthread_join(t, NULL);
	cr_assert_eq(dskvs_compact(s), DSKVS_OK);
	tu_close(s);
	s = tu_open_opts(tu_dir, &o);
	struct seen sn = look(s);
	cr_assert_eq(sn.n, NM);
	cr_assert(!sn.mixed);
	cr_assert_eq(sn.k, 2000);
	/* A batch over batch_max_records is refused with this option. */
	dskvs_batch_op ops[17];
	for (int i = 0; i < 17; i++)
		ops[i] = (dskvs_batch_op){ "m", "x", 1, 0 };
	cr_assert_eq(dskvs_write_batch(s, "c", ops, 17, NULL), DSKVS_EBATCH);
	cr_assert_eq(dskvs_write_batch(s, "c", ops, 16, NULL), DSKVS_OK);
	tu_close(s);
}
