/*
 * Binary-safe member names (the _bin calls): NUL bytes, empty members and
 * the longest names, through every call, close/open (replay), compaction,
 * rewrite and dskvs_verify.
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

TestSuite(binkeys, .init = tu_setup, .fini = tu_teardown, .timeout = 60);

struct name {
	const char *coll;
	const char *member;
	size_t mlen;
	const char *val;
};

/* NUL inside, at the ends, only NUL, empty, a '/' and a NUL, and a member
 * that equals a string key's member up to its NUL. */
static const struct name names[] = {
	{ "b", "a\0b", 3, "v1" },   { "b", "\0", 1, "v2" },
	{ "b", "\0\0", 2, "v3" },   { "b", "", 0, "v4" },
	{ "b", "x/\0/y", 5, "v5" }, { "b", "a", 1, "v6" },
	{ "e", "", 0, "v7" },       { "b", "tail\0", 5, "v8" },
};
#define NNAMES (sizeof(names) / sizeof(names[0]))

static void put_all(dskvs *s)
{
	for (size_t i = 0; i < NNAMES; i++)
		cr_assert_eq(dskvs_put_bin(s, names[i].coll, 1, names[i].member,
		                           names[i].mlen, names[i].val,
		                           strlen(names[i].val), NULL, NULL,
		                           NULL),
		             DSKVS_OK, "put %zu", i);
}

static void check_all(dskvs *s)
{
	for (size_t i = 0; i < NNAMES; i++) {
		char buf[16];
		size_t len;
		cr_assert_eq(dskvs_get_bin(s, names[i].coll, 1, names[i].member,
		                           names[i].mlen, buf, sizeof(buf),
		                           &len, NULL),
		             DSKVS_OK, "get %zu", i);
		cr_assert_eq(len, strlen(names[i].val));
		cr_assert_eq(memcmp(buf, names[i].val, len), 0, "value %zu", i);
	}
	/* The string form sees "b/a" as the member "a" only. */
	tu_check_str(s, "b/a", "v6");
}

struct seen {
	size_t n;
	int found[NNAMES];
};

static int visit(const char *member, size_t mlen, const void *val, size_t vlen,
                 void *arg)
{
	struct seen *sn = arg;
	sn->n++;
	for (size_t i = 0; i < NNAMES; i++)
		if (names[i].coll[0] == 'b' && names[i].mlen == mlen &&
		    memcmp(names[i].member, member, mlen) == 0 &&
		    vlen == strlen(names[i].val) &&
		    memcmp(val, names[i].val, vlen) == 0)
			sn->found[i]++;
	return member[mlen] == '\0' ? 0 : -1; /* NUL follows the name */
}

static void check_walk(dskvs *s)
{
	struct seen sn = { 0 };
	cr_assert_eq(dskvs_get_all_bin(s, "b", 1, visit, &sn), DSKVS_OK);
	cr_assert_eq(sn.n, NNAMES - 1);
	for (size_t i = 0; i < NNAMES; i++)
		cr_assert_eq(sn.found[i], names[i].coll[0] == 'b' ? 1 : 0,
		             "member %zu seen %d times", i, sn.found[i]);
}

Test(binkeys, nul_and_empty_members_through_replay_and_compaction)
{
	dskvs *s = tu_open(tu_dir);
	dskvs_verify_report rep;

	put_all(s);
	check_all(s);
	check_walk(s);
	tu_close(s);
	cr_assert_eq(dskvs_verify(tu_dir, NULL, NULL, &rep), DSKVS_OK);
	cr_assert_eq(rep.puts, NNAMES);
	s = tu_open(tu_dir);
	check_all(s);
	check_walk(s);
	cr_assert_eq(dskvs_compact(s), DSKVS_OK);
	check_all(s);
	tu_close(s);
	cr_assert_eq(dskvs_verify(tu_dir, NULL, NULL, &rep), DSKVS_OK);
	s = tu_open(tu_dir);
	check_all(s);
	check_walk(s);
	cr_assert_eq(dskvs_rewrite(s), DSKVS_OK);
	tu_close(s);
	s = tu_open(tu_dir);
	check_all(s);
	/* Deletes of binary names are replayed too. */
	cr_assert_eq(dskvs_delete_bin(s, "b", 1, "a\0b", 3, NULL), DSKVS_OK);
	cr_assert_eq(dskvs_delete_bin(s, "e", 1, NULL, 0, NULL), DSKVS_OK);
	cr_assert_eq(dskvs_delete_bin(s, "e", 1, NULL, 0, NULL),
	             DSKVS_NOTFOUND);
	tu_close(s);
	s = tu_open(tu_dir);
	size_t len;
	char buf[8];
	cr_assert_eq(
	    dskvs_get_bin(s, "b", 1, "a\0b", 3, buf, sizeof(buf), &len, NULL),
	    DSKVS_NOTFOUND);
	cr_assert_eq(
	    dskvs_get_bin(s, "e", 1, "", 0, buf, sizeof(buf), &len, NULL),
	    DSKVS_NOTFOUND);
	cr_assert_eq(
	    dskvs_get_bin(s, "b", 1, "\0", 1, buf, sizeof(buf), &len, NULL),
	    DSKVS_OK);
	cr_assert_eq(dskvs_delete_all_bin(s, "b", 1, NULL), DSKVS_OK);
	tu_close(s);
	s = tu_open(tu_dir);
	dskvs_stats st;
	cr_assert_eq(dskvs_stats_get(s, &st), DSKVS_OK);
	cr_assert_eq(st.entries, 0);
	tu_close(s);
}

Test(binkeys, name_length_limits)
{
	dskvs *s = tu_open(tu_dir);
	size_t max = DSKVS_NAME_MAX;
	char *m = malloc(max + 1);
	uint64_t q;

	for (size_t i = 0; i <= max; i++)
		m[i] = (char)(i % 7 == 0 ? '\0' : 'a' + i % 26);
	cr_assert_eq(max, 65535);
	cr_assert_eq(dskvs_put_bin(s, "c", 1, m, max, "big", 3, NULL, NULL, &q),
	             DSKVS_OK);
	cr_assert_eq(
	    dskvs_put_bin(s, "c", 1, m, max + 1, "x", 1, NULL, NULL, NULL),
	    DSKVS_ETOOBIG);
	cr_assert_eq(
	    dskvs_put_bin(s, "c", 1, m, max - 1, "m1", 2, NULL, NULL, NULL),
	    DSKVS_OK);
	/* The longest collection with the longest member. */
	char *c = tu_repeat('k', max + 1);
	cr_assert_eq(
	    dskvs_put_bin(s, c, max, m, max, "cc", 2, NULL, NULL, NULL),
	    DSKVS_OK);
	cr_assert_eq(
	    dskvs_put_bin(s, c, max + 1, m, 1, "x", 1, NULL, NULL, NULL),
	    DSKVS_ETOOBIG);
	cr_assert_eq(dskvs_compact(s), DSKVS_OK);
	tu_close(s);
	s = tu_open(tu_dir);
	void *v;
	size_t len;
	uint64_t ver;
	char buf[4];
	cr_assert_eq(dskvs_get_alloc_bin(s, "c", 1, m, max, &v, &len),
	             DSKVS_OK);
	cr_assert_eq(len, 3);
	cr_assert_eq(memcmp(v, "big", 3), 0);
	free(v);
	cr_assert_eq(
	    dskvs_get_bin(s, "c", 1, m, max, buf, sizeof(buf), &len, &ver),
	    DSKVS_OK);
	cr_assert_eq(ver, q, "version kept through compaction and replay");
	cr_assert_eq(
	    dskvs_get_bin(s, "c", 1, m, max - 1, buf, sizeof(buf), &len, NULL),
	    DSKVS_OK);
	cr_assert_eq(memcmp(buf, "m1", 2), 0);
	cr_assert_eq(
	    dskvs_get_bin(s, c, max, m, max, buf, sizeof(buf), &len, NULL),
	    DSKVS_OK);
	cr_assert_eq(memcmp(buf, "cc", 2), 0);
	tu_close(s);
	free(c);
	free(m);
}

static int read_fn(const void *val, size_t len, void *arg)
{
	return len == 2 && memcmp(val, "v4", 2) == 0 ? *(int *)arg : -1;
}

static int upd(const void *old, size_t old_len, int exists,
               const void **new_val, size_t *new_len, void *arg)
{
	(void)arg;
	*new_val = exists ? old : "first";
	*new_len = exists ? old_len : 5;
	return DSKVS_UPDATE_SET;
}

Test(binkeys, every_bin_call_and_its_errors)
{
	dskvs *s = tu_open(tu_dir);
	uint64_t q, q2;
	int tag = 77;
	void *v;
	size_t len;
	char buf[8];

	put_all(s);
	cr_assert_eq(dskvs_get_with_bin(s, "b", 1, "", 0, read_fn, &tag), 77);
	cr_assert_eq(dskvs_put_if_absent_bin(s, "b", 1, "", 0, "x", 1, &q),
	             DSKVS_EEXIST);
	cr_assert_eq(dskvs_put_if_absent_bin(s, "n", 1, "\0z", 2, "x", 1, &q),
	             DSKVS_OK);
	cr_assert_eq(
	    dskvs_put_if_seq_bin(s, "n", 1, "\0z", 2, "y", 1, q + 1, &q2),
	    DSKVS_ECONFLICT);
	cr_assert_eq(q2, q);
	cr_assert_eq(dskvs_put_if_seq_bin(s, "n", 1, "\0z", 2, "y", 1, q, &q2),
	             DSKVS_OK);
	cr_assert_eq(dskvs_update_bin(s, "n", 1, "", 0, upd, NULL, &q),
	             DSKVS_OK);
	cr_assert_eq(dskvs_get_alloc_bin(s, "n", 1, NULL, 0, &v, &len),
	             DSKVS_OK);
	cr_assert_eq(len, 5);
	free(v);
	cr_assert_eq(dskvs_update_bin(s, "n", 1, "\0z", 2, upd, NULL, NULL),
	             DSKVS_OK);
	void *old = NULL;
	size_t old_len = 0;
	cr_assert_eq(
	    dskvs_put_bin(s, "n", 1, "\0z", 2, "w", 1, &old, &old_len, NULL),
	    DSKVS_OK);
	cr_assert_eq(old_len, 1);
	cr_assert_eq(memcmp(old, "y", 1), 0);
	free(old);

	/* Bad collections: NULL, empty, '/', NUL; NULL member with a length. */
	cr_assert_eq(
	    dskvs_put_bin(s, NULL, 1, "m", 1, "v", 1, NULL, NULL, NULL),
	    DSKVS_EBADKEY);
	cr_assert_eq(dskvs_put_bin(s, "c", 0, "m", 1, "v", 1, NULL, NULL, NULL),
	             DSKVS_EBADKEY);
	cr_assert_eq(
	    dskvs_put_bin(s, "a/b", 3, "m", 1, "v", 1, NULL, NULL, NULL),
	    DSKVS_EBADKEY);
	cr_assert_eq(
	    dskvs_put_bin(s, "a\0b", 3, "m", 1, "v", 1, NULL, NULL, NULL),
	    DSKVS_EBADKEY);
	cr_assert_eq(
	    dskvs_put_bin(s, "c", 1, NULL, 1, "v", 1, NULL, NULL, NULL),
	    DSKVS_EBADKEY);
	cr_assert_eq(
	    dskvs_put_bin(NULL, "c", 1, "m", 1, "v", 1, NULL, NULL, NULL),
	    DSKVS_EINVAL);
	cr_assert_eq(
	    dskvs_put_bin(s, "c", 1, "m", 1, NULL, 1, NULL, NULL, NULL),
	    DSKVS_EINVAL);
	cr_assert_eq(dskvs_put_bin(s, "c", 1, "m", 1, "v",
	                           (size_t)DSKVS_VALUE_MAX + 1, NULL, NULL,
	                           NULL),
	             DSKVS_ETOOBIG);
	cr_assert_eq(
	    dskvs_get_bin(s, "a/b", 3, "m", 1, buf, sizeof(buf), &len, NULL),
	    DSKVS_EBADKEY);
	cr_assert_eq(dskvs_get_bin(s, "c", 1, "m", 1, NULL, 1, &len, NULL),
	             DSKVS_EINVAL);
	cr_assert_eq(dskvs_get_alloc_bin(s, "", 0, "m", 1, &v, &len),
	             DSKVS_EBADKEY);
	cr_assert_null(v);
	cr_assert_eq(dskvs_get_alloc_bin(s, "c", 1, "m", 1, NULL, &len),
	             DSKVS_EINVAL);
	cr_assert_eq(dskvs_get_with_bin(s, "c", 1, "m", 1, NULL, NULL),
	             DSKVS_EINVAL);
	cr_assert_eq(dskvs_get_all_bin(s, "a\0", 2, visit, NULL),
	             DSKVS_EBADKEY);
	cr_assert_eq(dskvs_get_all_bin(s, "c", 1, NULL, NULL), DSKVS_EINVAL);
	cr_assert_eq(dskvs_get_all_bin(s, "zz", 2, visit, NULL), DSKVS_OK);
	cr_assert_eq(dskvs_delete_bin(s, "/", 1, "m", 1, NULL), DSKVS_EBADKEY);
	cr_assert_eq(dskvs_delete_bin(s, "c", 1, "m", 1, NULL), DSKVS_NOTFOUND);
	cr_assert_eq(dskvs_delete_all_bin(s, "zz", 2, NULL), DSKVS_NOTFOUND);
	cr_assert_eq(dskvs_delete_all_bin(NULL, "zz", 2, NULL), DSKVS_EINVAL);
	cr_assert_eq(dskvs_put_if_absent_bin(s, "", 0, "m", 1, "v", 1, NULL),
	             DSKVS_EBADKEY);
	cr_assert_eq(dskvs_put_if_seq_bin(s, "c", 1, NULL, 2, "v", 1, 0, NULL),
	             DSKVS_EBADKEY);
	cr_assert_eq(dskvs_update_bin(s, "c", 1, "m", 1, NULL, NULL, NULL),
	             DSKVS_EINVAL);
	cr_assert_eq(dskvs_update_bin(s, "c/", 2, "m", 1, upd, NULL, NULL),
	             DSKVS_EBADKEY);
	tu_close(s);
}
