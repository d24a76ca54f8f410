/*
 * What survives dskvs_close + dskvs_open, what dskvs_sync puts on disk, file
 * permissions, compaction, and dskvs_verify on healthy stores.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(persist, .init = tu_setup, .fini = tu_teardown, .timeout = 10);

static dskvs *reopen(dskvs *s)
{
	tu_close(s);
	return tu_open(tu_dir);
}

/* Checks the store against the model, then again after a reopen; returns the
 * reopened handle. */
static dskvs *check_model_across_reopen(dskvs *s, struct tu_snap *model)
{
	struct tu_snap got;

	tu_snap_sort(model);
	tu_snap_take(s, &got);
	tu_snap_assert_eq(model, &got);
	tu_snap_free(&got);
	s = reopen(s);
	tu_snap_take(s, &got);
	tu_snap_assert_eq(model, &got);
	tu_snap_free(&got);
	return s;
}

Test(persist, puts_survive_reopen)
{
	dskvs *s = tu_open(tu_dir);

	tu_put_str(s, "artist/daft_punk", "discovery");
	tu_put_str(s, "artist/air", "moon safari");
	tu_put_str(s, "album/x/y/z", "deep");
	s = reopen(s);
	tu_check_str(s, "artist/daft_punk", "discovery");
	tu_check_str(s, "artist/air", "moon safari");
	tu_check_str(s, "album/x/y/z", "deep");
	tu_close(s);
}

Test(persist, overwrites_survive_reopen)
{
	dskvs *s = tu_open(tu_dir);
	char v[32];

	for (int i = 0; i < 50; i++) {
		snprintf(v, sizeof(v), "version %d", i);
		tu_put_str(s, "c/k", v);
		tu_put_str(s, "c/other", v);
	}
	tu_put_str(s, "c/other", "final");
	s = reopen(s);
	tu_check_str(s, "c/k", "version 49");
	tu_check_str(s, "c/other", "final");
	tu_close(s);
}

Test(persist, deletes_survive_reopen)
{
	dskvs *s = tu_open(tu_dir);

	tu_put_str(s, "c/a", "1");
	tu_put_str(s, "c/b", "2");
	tu_put_str(s, "d/a", "3");
	cr_assert_eq(dskvs_delete(s, "c/a"), DSKVS_OK);
	cr_assert_eq(dskvs_delete(s, "d/a"), DSKVS_OK);
	s = reopen(s);
	tu_check_absent(s, "c/a");
	tu_check_absent(s, "d/a");
	tu_check_str(s, "c/b", "2");
	cr_assert_eq(dskvs_delete_all(s, "d"), DSKVS_NOTFOUND);
	tu_close(s);
}

Test(persist, delete_then_put_again_survives_reopen)
{
	dskvs *s = tu_open(tu_dir);

	tu_put_str(s, "c/a", "1");
	cr_assert_eq(dskvs_delete(s, "c/a"), DSKVS_OK);
	tu_put_str(s, "c/a", "2");
	s = reopen(s);
	tu_check_str(s, "c/a", "2");
	tu_close(s);
}

Test(persist, delete_all_survives_reopen)
{
	dskvs *s = tu_open(tu_dir);

	tu_put_str(s, "c/a", "1");
	tu_put_str(s, "c/b", "2");
	tu_put_str(s, "keep/a", "3");
	cr_assert_eq(dskvs_delete_all(s, "c"), DSKVS_OK);
	s = reopen(s);
	tu_check_absent(s, "c/a");
	tu_check_absent(s, "c/b");
	tu_check_str(s, "keep/a", "3");
	cr_assert_eq(dskvs_delete_all(s, "c"), DSKVS_NOTFOUND);
	tu_close(s);
}

Test(persist, recreated_collection_survives_reopen)
{
	dskvs *s = tu_open(tu_dir);

	tu_put_str(s, "c/old1", "1");
	tu_put_str(s, "c/old2", "2");
	tu_put_str(s, "c/both", "before");
	cr_assert_eq(dskvs_delete_all(s, "c"), DSKVS_OK);
	tu_put_str(s, "c/new", "3");
	tu_put_str(s, "c/both", "after");
	s = reopen(s);
	tu_check_absent(s, "c/old1");
	tu_check_absent(s, "c/old2");
	tu_check_str(s, "c/new", "3");
	tu_check_str(s, "c/both", "after");
	/* And a second round of the same, across another reopen. */
	cr_assert_eq(dskvs_delete_all(s, "c"), DSKVS_OK);
	tu_put_str(s, "c/third", "4");
	s = reopen(s);
	tu_check_absent(s, "c/new");
	tu_check_absent(s, "c/both");
	tu_check_str(s, "c/third", "4");
	tu_close(s);
}

Test(persist, many_reopen_cycles_accumulate)
{
	struct tu_snap model = { 0 };
	char key[32], val[32];
	dskvs *s = tu_open(tu_dir);

	for (int cycle = 0; cycle < 6; cycle++) {
		for (int i = 0; i < 20; i++) {
			snprintf(key, sizeof(key), "c%d/k%d", i % 3, i);
			snprintf(val, sizeof(val), "%d.%d", cycle, i);
			if ((i + cycle) % 7 == 0) {
				int rc = dskvs_delete(s, key);
				cr_assert(rc == DSKVS_OK ||
				          rc == DSKVS_NOTFOUND);
				tu_snap_del(&model, key);
			} else {
				tu_put_str(s, key, val);
				tu_snap_add(&model, key, val, strlen(val));
			}
		}
		s = check_model_across_reopen(s, &model);
	}
	tu_close(s);
	tu_snap_free(&model);
}

Test(persist, empty_and_binary_values_survive_reopen)
{
	dskvs *s = tu_open(tu_dir);
	unsigned char bin[300];

	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (unsigned char)(255 - i);
	bin[10] = 0;
	tu_put(s, "v/empty", "", 0);
	tu_put(s, "v/bin", bin, sizeof(bin));
	s = reopen(s);
	tu_check(s, "v/empty", "", 0);
	tu_check(s, "v/bin", bin, sizeof(bin));
	tu_close(s);
}

Test(persist, long_names_survive_reopen)
{
	char *coll = tu_repeat('c', DSKVS_NAME_MAX);
	char *member = tu_repeat('m', DSKVS_NAME_MAX);
	char *k1 = tu_fmt("%s/short", coll);
	char *k2 = tu_fmt("short/%s", member);
	dskvs *s = tu_open(tu_dir);

	tu_put_str(s, k1, "one");
	tu_put_str(s, k2, "two");
	s = reopen(s);
	tu_check_str(s, k1, "one");
	tu_check_str(s, k2, "two");
	tu_close(s);
	free(k1);
	free(k2);
	free(coll);
	free(member);
}

Test(persist, large_values_survive_reopen, .timeout = 30)
{
	const size_t sizes[] = { 1u << 20, 2u << 20, (4u << 20) + 13 };
	dskvs *s = tu_open(tu_dir);
	char key[16];

	for (size_t i = 0; i < 3; i++) {
		void *v = malloc(sizes[i]);
		cr_assert_not_null(v);
		tu_fill(v, sizes[i], i + 1);
		snprintf(key, sizeof(key), "big/%zu", i);
		tu_put(s, key, v, sizes[i]);
		free(v);
	}
	/* Overwrite one large value with another. */
	void *v = malloc(3u << 20);
	cr_assert_not_null(v);
	tu_fill(v, 3u << 20, 99);
	tu_put(s, "big/1", v, 3u << 20);
	s = reopen(s);
	tu_check(s, "big/1", v, 3u << 20);
	free(v);
	for (size_t i = 0; i < 3; i += 2) {
		v = malloc(sizes[i]);
		cr_assert_not_null(v);
		tu_fill(v, sizes[i], i + 1);
		snprintf(key, sizeof(key), "big/%zu", i);
		tu_check(s, key, v, sizes[i]);
		free(v);
	}
	tu_close(s);
}

Test(persist, many_keys_survive_reopen, .timeout = 30)
{
	struct tu_snap model = { 0 };
	char key[48], val[64];
	dskvs *s = tu_open(tu_dir);

	for (int i = 0; i < 10000; i++) {
		snprintf(key, sizeof(key), "coll%d/member-%d", i % 10, i);
		int n = snprintf(val, sizeof(val), "value %d %x", i, i * 7919);
		tu_put(s, key, val, (size_t)n);
		tu_snap_add(&model, key, val, (size_t)n);
	}
	s = reopen(s);
	struct tu_snap got;
	tu_snap_sort(&model);
	tu_snap_take(s, &got);
	tu_snap_assert_eq(&model, &got);
	tu_snap_free(&got);
	dskvs_stats stats;
	cr_assert_eq(dskvs_stats_get(s, &stats), DSKVS_OK);
	cr_assert_eq(stats.entries, 10000);
	cr_assert_eq(stats.collections, 10);
	tu_close(s);
	tu_snap_free(&model);
}

/* ---- replay on several threads ------------------------------------------
 * dskvs_open can replay a log on several threads, each applying the records
 * of its own collections (dskvs_options.recovery_threads). Whatever the
 * count, the store must come back exactly as one thread replays it. */

static dskvs *open_threads(unsigned threads, dskvs_log_fn fn, void *arg)
{
	dskvs_options o;
	dskvs_options_init(&o);
	o.recovery_threads = threads;
	o.log_fn = fn;
	o.log_arg = arg;
	return tu_open_opts(tu_dir, &o);
}

static void assert_reopens_as(unsigned threads, const struct tu_snap *model,
                              uint64_t colls)
{
	struct tu_snap got;
	dskvs_stats st;
	dskvs *s = open_threads(threads, NULL, NULL);

	tu_snap_take(s, &got);
	tu_snap_assert_eq(model, &got);
	tu_snap_free(&got);
	cr_assert_eq(dskvs_stats_get(s, &st), DSKVS_OK);
	cr_assert_eq(st.entries, model->n, "%u threads: %llu entries, want %zu",
	             threads, (unsigned long long)st.entries, model->n);
	cr_assert_eq(st.collections, colls, "%u threads: %llu collections",
	             threads, (unsigned long long)st.collections);
	tu_close(s);
}

Test(persist, random_history_replays_the_same_on_any_thread_count,
     .timeout = 60)
{
	struct tu_snap model = { 0 };
	uint64_t rng = 0x5eed;
	char key[32], val[200];
	dskvs *s = tu_open(tu_dir);

	/* Puts, overwrites, deletes and delete-alls over 24 collections, so
	 * that collections are emptied, dropped and created again; a
	 * compaction halfway puts a snapshot in front of later records. */
	for (int i = 0; i < 20000; i++) {
		uint64_t r = tu_rand(&rng);
		unsigned c = (unsigned)(r % 24), m = (unsigned)(r >> 8) % 150;
		unsigned what = (unsigned)(r >> 24) % 1000;
		if (i == 10000)
			cr_assert_eq(dskvs_compact(s), DSKVS_OK);
		if (what < 4) {
			snprintf(key, sizeof(key), "c%02u", c);
			int rc = dskvs_delete_all(s, key);
			cr_assert(rc == DSKVS_OK || rc == DSKVS_NOTFOUND);
			tu_snap_del_coll(&model, key);
			continue;
		}
		snprintf(key, sizeof(key), "c%02u/m%u", c, m);
		if (what < 250) {
			int rc = dskvs_delete(s, key);
			cr_assert(rc == DSKVS_OK || rc == DSKVS_NOTFOUND);
			tu_snap_del(&model, key);
			continue;
		}
		size_t len = (size_t)(r >> 40) % sizeof(val);
		tu_fill(val, len, r);
		tu_put(s, key, val, len);
		tu_snap_add(&model, key, val, len);
	}
	tu_close(s);
	tu_snap_sort(&model);
	uint64_t colls = 0;
	for (size_t i = 0; i < model.n; i++)
		if (i == 0 ||
		    strncmp(model.kv[i].key, model.kv[i - 1].key, 3) != 0)
			colls++;
	for (unsigned t = 1; t <= 5; t++)
		assert_reopens_as(t, &model, colls);
	assert_reopens_as(16, &model, colls);
	tu_snap_free(&model);
}

static char replay_msg[256];

static void keep_replay_msg(void *arg, int level, const char *msg)
{
	(void)arg;
	(void)level;
	if (strstr(msg, "replayed") != NULL)
		snprintf(replay_msg, sizeof(replay_msg), "%s", msg);
}

/* The default (0) takes several threads for a log of 8 MiB or more when the
 * machine has more than one CPU, and one thread below that. */
Test(persist, default_recovery_threads_follow_log_size, .timeout = 60)
{
	struct tu_snap model = { 0 };
	char key[32];
	char *val = tu_repeat('v', 4096);
	dskvs *s = tu_open(tu_dir);

	tu_put(s, "small/k", "x", 1);
	tu_close(s);
	s = open_threads(0, keep_replay_msg, NULL);
	cr_assert(strstr(replay_msg, ", 1 thread") != NULL, "%s", replay_msg);
	tu_snap_add(&model, "small/k", "x", 1);
	for (int i = 0; i < 2300; i++) { /* 9.4 MB of values */
		snprintf(key, sizeof(key), "c%d/m%d", i % 8, i);
		tu_fill(val, 4096, (uint64_t)i);
		tu_put(s, key, val, 4096);
		tu_snap_add(&model, key, val, 4096);
	}
	tu_close(s);
	replay_msg[0] = '\0';
	s = open_threads(0, keep_replay_msg, NULL);
	if (sysconf(_SC_NPROCESSORS_ONLN) > 1)
		cr_assert(strstr(replay_msg, ", 1 thread") == NULL &&
		              strstr(replay_msg, " threads") != NULL,
		          "%s", replay_msg);
	struct tu_snap got;
	tu_snap_sort(&model);
	tu_snap_take(s, &got);
	tu_snap_assert_eq(&model, &got);
	tu_snap_free(&got);
	tu_close(s);
	tu_snap_free(&model);
	free(val);
}

Test(persist, stats_survive_reopen)
{
	dskvs *s = tu_open(tu_dir);
	dskvs_stats a, b;

	tu_put_str(s, "c1/a", "xx");
	tu_put_str(s, "c1/b", "yyy");
	tu_put_str(s, "c2/a", "z");
	cr_assert_eq(dskvs_stats_get(s, &a), DSKVS_OK);
	s = reopen(s);
	cr_assert_eq(dskvs_stats_get(s, &b), DSKVS_OK);
	cr_assert_eq(b.entries, a.entries);
	cr_assert_eq(b.collections, a.collections);
	cr_assert_eq(b.live_bytes, a.live_bytes);
	tu_close(s);
}

/* ---- dskvs_sync puts data in the file ----------------------------------- */

/* Opens a copy of the live store's log in another directory: what a crash
 * right now would leave behind. */
static dskvs *open_copy_of_log(const char *copy_dir)
{
	char *src = tu_log_path(tu_dir);
	char *dst = tu_log_path(copy_dir);
	size_t len;
	void *data = tu_read_file(src, &len);

	tu_write_file(dst, data, len);
	free(data);
	free(src);
	free(dst);
	return tu_open(copy_dir);
}

Test(persist, sync_puts_writes_in_the_log)
{
	dskvs *s = tu_open(tu_dir);
	char *copy = tu_subdir("copy");

	tu_put_str(s, "c/a", "1");
	tu_put_str(s, "c/b", "2");
	cr_assert_eq(dskvs_delete(s, "c/a"), DSKVS_OK);
	tu_put_str(s, "d/x", "3");
	cr_assert_eq(dskvs_sync(s), DSKVS_OK);

	dskvs *c = open_copy_of_log(copy);
	tu_check_absent(c, "c/a");
	tu_check_str(c, "c/b", "2");
	tu_check_str(c, "d/x", "3");
	tu_close(c);
	tu_close(s);
	free(copy);
}

Test(persist, wait_durable_puts_write_in_the_log)
{
	dskvs *s = tu_open(tu_dir);
	char *copy = tu_subdir("copy");
	uint64_t seq = 0;

	tu_put_str(s, "c/a", "1");
	cr_assert_eq(dskvs_put_seq(s, "c/b", "2", 1, NULL, NULL, &seq),
	             DSKVS_OK);
	cr_assert_eq(dskvs_wait_durable(s, seq, -1), DSKVS_OK);
	dskvs *c = open_copy_of_log(copy);
	tu_check_str(c, "c/a", "1");
	tu_check_str(c, "c/b", "2");
	tu_close(c);
	tu_close(s);
	free(copy);
}

Test(persist, sync_with_nothing_pending_is_ok)
{
	dskvs *s = tu_open(tu_dir);

	cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	tu_put_str(s, "c/a", "1");
	cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	tu_close(s);
}

Test(persist, close_writes_pending_data)
{
	dskvs *s = tu_open(tu_dir);
	char key[32];

	/* Many quick writes, no sync: close must persist all of them. */
	for (int i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "c/%d", i);
		tu_put(s, key, key, strlen(key));
	}
	tu_close(s);
	char *copy = tu_subdir("copy");
	dskvs *c = open_copy_of_log(copy);
	for (int i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "c/%d", i);
		tu_check(c, key, key, strlen(key));
	}
	tu_close(c);
	free(copy);
}

/* ---- file permissions -----------------------------------------------------
 */

Test(persist, files_are_mode_0600)
{
	umask(0); /* only the library's choice of mode counts */
	dskvs *s = tu_open(tu_dir);
	tu_put_str(s, "c/a", "1");
	cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	char *log = tu_log_path(tu_dir);
	char *lock = tu_fmt("%s/dskvs.lock", tu_dir);
	cr_assert_eq(tu_file_mode(log), 0600, "dskvs.log mode %o",
	             tu_file_mode(log));
	cr_assert_eq(tu_file_mode(lock), 0600, "dskvs.lock mode %o",
	             tu_file_mode(lock));
	tu_close(s);
	cr_assert_eq(tu_file_mode(log), 0600);
	free(log);
	free(lock);
}

Test(persist, created_directory_is_mode_0700)
{
	umask(0);
	char *p = tu_fmt("%s/store", tu_dir);
	dskvs *s = tu_open(p);
	tu_close(s);
	cr_assert_eq(tu_file_mode(p), 0700, "directory mode %o",
	             tu_file_mode(p));
	free(p);
}

Test(persist, file_mode_option_applies_to_files_and_directory)
{
	umask(0);
	char *p = tu_fmt("%s/store", tu_dir);
	dskvs_options o;
	dskvs_options_init(&o);
	o.file_mode = 0640;
	dskvs *s = tu_open_opts(p, &o);
	tu_put_str(s, "c/a", "1");
	tu_close(s);
	char *log = tu_log_path(p);
	char *lock = tu_fmt("%s/dskvs.lock", p);
	cr_assert_eq(tu_file_mode(log), 0640, "dskvs.log mode %o",
	             tu_file_mode(log));
	cr_assert_eq(tu_file_mode(lock), 0640, "dskvs.lock mode %o",
	             tu_file_mode(lock));
	/* 0700 plus r-x for group, matching the group read bit. */
	cr_assert_eq(tu_file_mode(p), 0750, "directory mode %o",
	             tu_file_mode(p));
	free(log);
	free(lock);
	free(p);
}

Test(persist, nothing_outside_the_directory)
{
	char *p = tu_fmt("%s/store", tu_dir);
	dskvs *s = tu_open(p);

	tu_put_str(s, "c/a", "1");
	tu_close(s);
	/* tu_dir holds only the store directory. */
	char *other = tu_fmt("ls -A '%s' | grep -qv '^store$'", tu_dir);
	cr_assert_neq(system(other), 0, "files created next to the store");
	free(other);
	free(p);
}

/* ---- compaction and rewrite ---------------------------------------------- */

Test(persist, compact_shrinks_log_and_keeps_data, .timeout = 30)
{
	dskvs *s = tu_open(tu_dir);
	char *log = tu_log_path(tu_dir);
	char val[256];
	struct tu_snap model = { 0 };

	memset(val, 'g', sizeof(val));
	for (int i = 0; i < 2000; i++)
		tu_put(s, "c/hot", val, sizeof(val));
	tu_put_str(s, "c/hot", "final");
	tu_put_str(s, "c/cold", "cold");
	tu_put_str(s, "gone/x", "x");
	cr_assert_eq(dskvs_delete_all(s, "gone"), DSKVS_OK);
	tu_snap_add(&model, "c/hot", "final", 5);
	tu_snap_add(&model, "c/cold", "cold", 4);
	cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	uint64_t before = tu_file_size(log);
	cr_assert_gt(before, 2000 * 256);

	cr_assert_eq(dskvs_compact(s), DSKVS_OK);
	uint64_t after = tu_file_size(log);
	cr_assert_lt(after, 4096, "log is %llu bytes after compaction",
	             (unsigned long long)after);
	dskvs_stats stats;
	cr_assert_eq(dskvs_stats_get(s, &stats), DSKVS_OK);
	cr_assert_geq(stats.compactions, 1);
	/* Writes after compaction go on the new file. */
	tu_put_str(s, "c/late", "late");
	tu_snap_add(&model, "c/late", "late", 4);
	s = check_model_across_reopen(s, &model);
	tu_close(s);
	cr_assert_eq(dskvs_verify(tu_dir, NULL, NULL, NULL), DSKVS_OK);
	struct stat sb;
	char *tmp = tu_fmt("%s/dskvs.log.tmp", tu_dir);
	cr_assert_neq(stat(tmp, &sb), 0, "dskvs.log.tmp left behind");
	free(tmp);
	free(log);
	tu_snap_free(&model);
}

Test(persist, rewrite_without_error_is_ok_and_keeps_data)
{
	dskvs *s = tu_open(tu_dir);
	struct tu_snap model = { 0 };

	tu_put_str(s, "c/a", "1");
	tu_put_str(s, "c/b", "2");
	cr_assert_eq(dskvs_delete(s, "c/a"), DSKVS_OK);
	tu_snap_add(&model, "c/b", "2", 1);
	cr_assert_eq(dskvs_rewrite(s), DSKVS_OK);
	tu_put_str(s, "c/c", "3");
	tu_snap_add(&model, "c/c", "3", 1);
	s = check_model_across_reopen(s, &model);
	tu_close(s);
	tu_snap_free(&model);
}

Test(persist, leftover_compaction_temp_file_is_ignored)
{
	dskvs *s = tu_open(tu_dir);

	tu_put_str(s, "c/a", "real");
	tu_close(s);
	/* A crash in the middle of a compaction leaves a partial temp file. */
	char *tmp = tu_fmt("%s/dskvs.log.tmp", tu_dir);
	tu_write_file(tmp, "DSKVS garbage, half a compaction", 32);
	s = tu_open(tu_dir);
	tu_check_str(s, "c/a", "real");
	tu_put_str(s, "c/b", "more");
	tu_close(s);
	s = tu_open(tu_dir);
	tu_check_str(s, "c/a", "real");
	tu_check_str(s, "c/b", "more");
	tu_close(s);
	free(tmp);
}

/* ---- verify on healthy stores -------------------------------------------- */

struct damage {
	int calls;
	uint64_t first_offset;
	char file[64];
};

static void on_damage(const char *file, uint64_t offset, const char *what,
                      void *arg)
{
	struct damage *d = arg;

	(void)what;
	if (d->calls++ == 0) {
		d->first_offset = offset;
		snprintf(d->file, sizeof(d->file), "%s", file ? file : "");
	}
}

Test(persist, verify_healthy_store_counts_records)
{
	dskvs *s = tu_open(tu_dir);

	for (int i = 0; i < 5; i++) {
		char key[16];
		snprintf(key, sizeof(key), "c/%d", i);
		tu_put_str(s, key, "v");
	}
	tu_put_str(s, "d/x", "v");
	cr_assert_eq(dskvs_delete(s, "c/0"), DSKVS_OK);
	cr_assert_eq(dskvs_delete(s, "c/1"), DSKVS_OK);
	cr_assert_eq(dskvs_delete_all(s, "d"), DSKVS_OK);
	dskvs_stats stats;
	cr_assert_eq(dskvs_stats_get(s, &stats), DSKVS_OK);
	tu_close(s);

	struct damage d = { 0 };
	dskvs_verify_report rep;
	memset(&rep, 0xff, sizeof(rep));
	cr_assert_eq(dskvs_verify(tu_dir, on_damage, &d, &rep), DSKVS_OK);
	cr_assert_eq(d.calls, 0);
	cr_assert_eq(rep.puts, 6);
	cr_assert_eq(rep.deletes, 2);
	cr_assert_eq(rep.delete_alls, 1);
	cr_assert_geq(rep.records, 9);
	char *log = tu_log_path(tu_dir);
	cr_assert_eq(rep.file_bytes, tu_file_size(log));
	cr_assert_eq(rep.valid_bytes, rep.file_bytes);
	cr_assert_eq(rep.damaged, 0);
	cr_assert_eq(rep.torn_tail, 0);
	cr_assert_eq(rep.format_major, stats.format_major);
	cr_assert_eq(rep.format_minor, stats.format_minor);
	free(log);
}

Test(persist, verify_while_open_and_with_null_fn_and_report)
{
	dskvs *s = tu_open(tu_dir);

	tu_put_str(s, "c/a", "1");
	cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	cr_assert_eq(dskvs_verify(tu_dir, NULL, NULL, NULL), DSKVS_OK);
	dskvs_verify_report rep;
	cr_assert_eq(dskvs_verify(tu_dir, NULL, NULL, &rep), DSKVS_OK);
	cr_assert_eq(rep.puts, 1);
	/* verify took no lock: the store still works and closes cleanly. */
	tu_put_str(s, "c/b", "2");
	tu_close(s);
}

Test(persist, verify_does_not_change_the_file)
{
	dskvs *s = tu_open(tu_dir);

	tu_put_str(s, "c/a", "1");
	tu_close(s);
	char *log = tu_log_path(tu_dir);
	size_t n1, n2;
	void *before = tu_read_file(log, &n1);
	cr_assert_eq(dskvs_verify(tu_dir, NULL, NULL, NULL), DSKVS_OK);
	void *after = tu_read_file(log, &n2);
	cr_assert_eq(n1, n2);
	cr_assert_eq(memcmp(before, after, n1), 0);
	free(before);
	free(after);
	free(log);
}

Test(persist, verify_of_a_regular_file_is_epath)
{
	char *f = tu_fmt("%s/file", tu_dir);

	tu_write_file(f, "x", 1);
	cr_assert_eq(dskvs_verify(f, NULL, NULL, NULL), DSKVS_EPATH);
	free(f);
}
