/*
 * Key parsing: which keys each call accepts, the name and value limits, and
 * values with arbitrary bytes.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dskvs *st;

static void keys_setup(void)
{
	tu_setup();
	st = tu_open(tu_dir);
}

static void keys_teardown(void)
{
	if (st)
		dskvs_close(st);
	st = NULL;
	tu_teardown();
}

TestSuite(keys, .init = keys_setup, .fini = keys_teardown, .timeout = 10);

static int count_visit(const char *member, size_t member_len, const void *val,
                       size_t val_len, void *arg)
{
	(void)member;
	(void)member_len;
	(void)val;
	(void)val_len;
	++*(int *)arg;
	return 0;
}

/* Every call on a member key gives `want` for key k. */
static void member_calls_give(const char *k, int want)
{
	char buf[8];
	size_t len = 0;
	void *v = (void *)1;

	cr_assert_eq(dskvs_get(st, k, buf, sizeof(buf), &len), want,
	             "get(%.40s)", k ? k : "NULL");
	cr_assert_eq(dskvs_get_alloc(st, k, &v, &len), want, "get_alloc");
	cr_assert_null(v, "get_alloc must leave *val NULL on error");
	cr_assert_eq(dskvs_put(st, k, "v", 1, NULL, NULL), want, "put(%.40s)",
	             k ? k : "NULL");
	cr_assert_eq(dskvs_delete(st, k), want, "delete(%.40s)",
	             k ? k : "NULL");
}

/* Every call on a collection key gives `want` for key k. */
static void collection_calls_give(const char *k, int want)
{
	int calls = 0;

	cr_assert_eq(dskvs_get_all(st, k, count_visit, &calls), want,
	             "get_all(%.40s)", k ? k : "NULL");
	cr_assert_eq(calls, 0);
	cr_assert_eq(dskvs_delete_all(st, k), want, "delete_all(%.40s)",
	             k ? k : "NULL");
}

Test(keys, null_key_is_ebadkey)
{
	member_calls_give(NULL, DSKVS_EBADKEY);
	collection_calls_give(NULL, DSKVS_EBADKEY);
}

Test(keys, empty_key_is_ebadkey)
{
	member_calls_give("", DSKVS_EBADKEY);
	collection_calls_give("", DSKVS_EBADKEY);
}

Test(keys, leading_slash_is_ebadkey)
{
	tu_put_str(st, "x/y", "v");
	member_calls_give("/x", DSKVS_EBADKEY);
	member_calls_give("/x/y", DSKVS_EBADKEY);
	member_calls_give("/", DSKVS_EBADKEY);
	member_calls_give("//", DSKVS_EBADKEY);
	collection_calls_give("/x", DSKVS_EBADKEY);
	collection_calls_give("/", DSKVS_EBADKEY);
	/* Nothing was removed by the rejected calls. */
	tu_check_str(st, "x/y", "v");
}

Test(keys, collection_keys_rejected_by_member_calls)
{
	tu_put_str(st, "coll/a", "1");
	member_calls_give("coll", DSKVS_EBADKEY);
	member_calls_give("coll/", DSKVS_EBADKEY);
	tu_check_str(st, "coll/a", "1");
}

Test(keys, member_keys_rejected_by_collection_calls)
{
	tu_put_str(st, "coll/a", "1");
	collection_calls_give("coll/a", DSKVS_EBADKEY);
	collection_calls_give("coll/a/b", DSKVS_EBADKEY);
	tu_check_str(st, "coll/a", "1");
}

Test(keys, get_all_accepts_name_with_and_without_slash)
{
	tu_put_str(st, "coll/a", "1");
	tu_put_str(st, "coll/b", "2");
	int calls = 0;
	cr_assert_eq(dskvs_get_all(st, "coll", count_visit, &calls), 0);
	cr_assert_eq(calls, 2);
	calls = 0;
	cr_assert_eq(dskvs_get_all(st, "coll/", count_visit, &calls), 0);
	cr_assert_eq(calls, 2);
}

Test(keys, delete_all_accepts_name_without_slash)
{
	tu_put_str(st, "coll/a", "1");
	cr_assert_eq(dskvs_delete_all(st, "coll"), DSKVS_OK);
	tu_check_absent(st, "coll/a");
}

Test(keys, delete_all_accepts_name_with_slash)
{
	tu_put_str(st, "coll/a", "1");
	cr_assert_eq(dskvs_delete_all(st, "coll/"), DSKVS_OK);
	tu_check_absent(st, "coll/a");
}

struct seen {
	char names[8][32];
	int n;
};

static int record_names(const char *member, size_t member_len, const void *val,
                        size_t val_len, void *arg)
{
	struct seen *s = arg;

	(void)val;
	(void)val_len;
	if (s->n < 8 && member_len < 32 && strlen(member) == member_len)
		memcpy(s->names[s->n], member, member_len + 1);
	else
		return -99;
	s->n++;
	return 0;
}

static int has_name(const struct seen *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->names[i], name) == 0)
			return 1;
	return 0;
}

Test(keys, member_may_contain_slashes)
{
	tu_put_str(st, "artist/daft_punk/discovery", "2001");
	tu_check_str(st, "artist/daft_punk/discovery", "2001");
	/* "artist/daft_punk" is a different member, which does not exist. */
	tu_check_absent(st, "artist/daft_punk");

	struct seen s = { 0 };
	cr_assert_eq(dskvs_get_all(st, "artist", record_names, &s), 0);
	cr_assert_eq(s.n, 1);
	cr_assert_str_eq(s.names[0], "daft_punk/discovery");
	/* The collection is everything before the FIRST '/'. */
	s.n = 0;
	cr_assert_eq(dskvs_get_all(st, "artist/daft_punk", record_names, &s),
	             DSKVS_EBADKEY);
	cr_assert_eq(s.n, 0);
}

Test(keys, trailing_and_doubled_slashes_are_part_of_the_member)
{
	tu_put_str(st, "c/x", "plain");
	tu_put_str(st, "c/x/", "trailing");
	tu_put_str(st, "c//x", "leading");
	tu_put_str(st, "c//", "slash");
	tu_check_str(st, "c/x", "plain");
	tu_check_str(st, "c/x/", "trailing");
	tu_check_str(st, "c//x", "leading");
	tu_check_str(st, "c//", "slash");

	struct seen s = { 0 };
	cr_assert_eq(dskvs_get_all(st, "c", record_names, &s), 0);
	cr_assert_eq(s.n, 4);
	cr_assert(has_name(&s, "x"));
	cr_assert(has_name(&s, "x/"));
	cr_assert(has_name(&s, "/x"));
	cr_assert(has_name(&s, "/"));
}

Test(keys, collections_sharing_a_prefix_are_distinct)
{
	tu_put_str(st, "a/x", "1");
	tu_put_str(st, "ab/x", "2");
	tu_put_str(st, "abc/y", "3");
	tu_check_str(st, "a/x", "1");
	tu_check_str(st, "ab/x", "2");
	int calls = 0;
	cr_assert_eq(dskvs_get_all(st, "a", count_visit, &calls), 0);
	cr_assert_eq(calls, 1);
	cr_assert_eq(dskvs_delete_all(st, "ab"), DSKVS_OK);
	tu_check_str(st, "a/x", "1");
	tu_check_str(st, "abc/y", "3");
	tu_check_absent(st, "ab/x");
}

Test(keys, same_member_in_two_collections_is_two_keys)
{
	tu_put_str(st, "one/k", "1");
	tu_put_str(st, "two/k", "2");
	tu_check_str(st, "one/k", "1");
	tu_check_str(st, "two/k", "2");
	cr_assert_eq(dskvs_delete(st, "one/k"), DSKVS_OK);
	tu_check_str(st, "two/k", "2");
}

Test(keys, utf8_keys_round_trip)
{
	tu_put_str(st, "caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x8e\xb5", "ok");
	tu_check_str(st, "caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x8e\xb5", "ok");
	struct seen s = { 0 };
	cr_assert_eq(dskvs_get_all(st, "caf\xc3\xa9", record_names, &s), 0);
	cr_assert_eq(s.n, 1);
	cr_assert_str_eq(s.names[0], "\xe2\x82\xac/\xf0\x9f\x8e\xb5");
}

/* ---- name limits ---------------------------------------------------------
 */

static int check_long_member(const char *member, size_t member_len,
                             const void *val, size_t val_len, void *arg)
{
	size_t *want = arg;

	if (member_len != *want || strlen(member) != member_len)
		return -2;
	for (size_t i = 0; i < member_len; i++)
		if (member[i] != 'm')
			return -3;
	if (val_len != 2 || memcmp(val, "ok", 2) != 0)
		return -4;
	return 7;
}

Test(keys, collection_name_of_65535_bytes_is_accepted)
{
	char *coll = tu_repeat('c', DSKVS_NAME_MAX);
	char *key = tu_fmt("%s/m", coll);

	tu_put_str(st, key, "ok");
	tu_check_str(st, key, "ok");
	int calls = 0;
	cr_assert_eq(dskvs_get_all(st, coll, count_visit, &calls), 0);
	cr_assert_eq(calls, 1);
	cr_assert_eq(dskvs_delete(st, key), DSKVS_OK);
	tu_put_str(st, key, "ok");
	cr_assert_eq(dskvs_delete_all(st, coll), DSKVS_OK);
	tu_check_absent(st, key);
	free(key);
	free(coll);
}

Test(keys, collection_name_of_65536_bytes_is_etoobig)
{
	char *coll = tu_repeat('c', DSKVS_NAME_MAX + 1);
	char *key = tu_fmt("%s/m", coll);

	member_calls_give(key, DSKVS_ETOOBIG);
	collection_calls_give(coll, DSKVS_ETOOBIG);
	char *coll_slash = tu_fmt("%s/", coll);
	collection_calls_give(coll_slash, DSKVS_ETOOBIG);
	free(coll_slash);
	free(key);
	free(coll);
	dskvs_stats stats;
	cr_assert_eq(dskvs_stats_get(st, &stats), DSKVS_OK);
	cr_assert_eq(stats.entries, 0);
}

Test(keys, member_name_of_65535_bytes_is_accepted)
{
	char *member = tu_repeat('m', DSKVS_NAME_MAX);
	char *key = tu_fmt("c/%s", member);
	size_t want = DSKVS_NAME_MAX;

	tu_put_str(st, key, "ok");
	tu_check_str(st, key, "ok");
	cr_assert_eq(dskvs_get_all(st, "c", check_long_member, &want), 7);
	cr_assert_eq(dskvs_delete(st, key), DSKVS_OK);
	tu_check_absent(st, key);
	free(key);
	free(member);
}

Test(keys, member_name_of_65536_bytes_is_etoobig)
{
	char *member = tu_repeat('m', DSKVS_NAME_MAX + 1);
	char *key = tu_fmt("c/%s", member);

	member_calls_give(key, DSKVS_ETOOBIG);
	free(key);
	free(member);
	dskvs_stats stats;
	cr_assert_eq(dskvs_stats_get(st, &stats), DSKVS_OK);
	cr_assert_eq(stats.entries, 0);
}

Test(keys, both_names_at_the_limit)
{
	char *coll = tu_repeat('c', DSKVS_NAME_MAX);
	char *member = tu_repeat('m', DSKVS_NAME_MAX);
	char *key = tu_fmt("%s/%s", coll, member);
	size_t want = DSKVS_NAME_MAX;

	tu_put_str(st, key, "ok");
	tu_check_str(st, key, "ok");
	cr_assert_eq(dskvs_get_all(st, coll, check_long_member, &want), 7);
	free(key);
	free(member);
	free(coll);
}

/* ---- values ------------------------------------------------------------- */

Test(keys, value_over_max_is_etoobig_and_max_is_accepted, .timeout = 30)
{
	/* One 64 MiB + 1 buffer serves both calls; pages the library never
	 * reads stay untouched. */
	char *big = malloc((size_t)DSKVS_VALUE_MAX + 1);
	cr_assert_not_null(big);
	big[0] = 'a';
	big[DSKVS_VALUE_MAX - 1] = 'z';
	big[DSKVS_VALUE_MAX] = '!';

	cr_assert_eq(dskvs_put(st, "v/big", big, (size_t)DSKVS_VALUE_MAX + 1,
	                       NULL, NULL),
	             DSKVS_ETOOBIG);
	tu_check_absent(st, "v/big");

	cr_assert_eq(dskvs_put(st, "v/big", big, DSKVS_VALUE_MAX, NULL, NULL),
	             DSKVS_OK);
	free(big);
	char two[2];
	size_t len = 0;
	cr_assert_eq(dskvs_get(st, "v/big", two, 1, &len), DSKVS_ERANGE);
	cr_assert_eq(len, DSKVS_VALUE_MAX);
	cr_assert_eq(two[0], 'a');
	cr_assert_eq(dskvs_delete(st, "v/big"), DSKVS_OK);
}

Test(keys, value_over_max_does_not_replace_old_value)
{
	char *big = malloc((size_t)DSKVS_VALUE_MAX + 1);
	cr_assert_not_null(big);

	tu_put_str(st, "v/k", "small");
	cr_assert_eq(
	    dskvs_put(st, "v/k", big, (size_t)DSKVS_VALUE_MAX + 1, NULL, NULL),
	    DSKVS_ETOOBIG);
	free(big);
	tu_check_str(st, "v/k", "small");
}

Test(keys, empty_value_round_trip)
{
	cr_assert_eq(dskvs_put(st, "e/k", "", 0, NULL, NULL), DSKVS_OK);
	cr_assert_eq(dskvs_put(st, "e/n", NULL, 0, NULL, NULL), DSKVS_OK);

	size_t len = 99;
	cr_assert_eq(dskvs_get(st, "e/k", NULL, 0, &len), DSKVS_OK);
	cr_assert_eq(len, 0);
	len = 99;
	char buf[4] = "xyz";
	cr_assert_eq(dskvs_get(st, "e/n", buf, sizeof(buf), &len), DSKVS_OK);
	cr_assert_eq(len, 0);
	cr_assert_str_eq(buf, "xyz");

	void *v = NULL;
	len = 99;
	cr_assert_eq(dskvs_get_alloc(st, "e/k", &v, &len), DSKVS_OK);
	cr_assert_not_null(v, "get_alloc of an empty value must be non-NULL");
	cr_assert_eq(len, 0);
	free(v);
	int calls = 0;
	cr_assert_eq(dskvs_get_all(st, "e", count_visit, &calls), 0);
	cr_assert_eq(calls, 2);
}

Test(keys, value_null_with_nonzero_length_is_einval)
{
	cr_assert_eq(dskvs_put(st, "e/k", NULL, 1, NULL, NULL), DSKVS_EINVAL);
	tu_check_absent(st, "e/k");
}

Test(keys, binary_values_with_nul_bytes_round_trip)
{
	unsigned char v[512];

	for (size_t i = 0; i < sizeof(v); i++)
		v[i] = (unsigned char)(i * 7);
	v[0] = 0;
	v[100] = 0;
	v[511] = 0;
	tu_put(st, "bin/all", v, sizeof(v));
	tu_check(st, "bin/all", v, sizeof(v));
	const char nuls[4] = { 0, 0, 0, 0 };
	tu_put(st, "bin/nuls", nuls, sizeof(nuls));
	tu_check(st, "bin/nuls", nuls, sizeof(nuls));
}
