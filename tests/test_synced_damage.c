/*
 * Damage to data the log proves was synced is refused, never truncated away;
 * a torn tail that recovery does cut off is kept in a file beside the log.
 *
 *  - A compacted log (synced whole before its rename) with a bit flipped in
 *    its first record: dskvs_verify and dskvs_open say DSKVS_ECORRUPT and
 *    the file is left exactly as it was.
 *  - A DSKVS_SYNC_ALWAYS store whose last record (acknowledged as durable,
 *    then a clean close) has a bit flipped: the same.
 *  - A log genuinely cut inside its last record: verify calls it a torn
 *    tail, open succeeds without the last write, and the cut bytes are in
 *    "dskvs.torn.<offset of the cut>" in the store's directory.
 *  - A damaged last record whose value holds an image of valid dskvs
 *    records (of another store, or of this store's own log): those records
 *    are data, not evidence that the damaged batch was synced, so the
 *    damage is a torn tail and the store opens without that record.
 *
 * Black-box: record positions come only from the log's size after
 * dskvs_sync (see tests/README.md), and the only layout relied on is the
 * 32-byte file header.
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TestSuite(synced_damage, .init = tu_setup, .fini = tu_teardown, .timeout = 30);

/* ---- helpers --------------------------------------------------------------
 */

static void flip_bit(const char *path, uint64_t off)
{
	size_t len;
	unsigned char *buf = tu_read_file(path, &len);

	cr_assert_lt(off, len, "offset %llu is past the end of %s (%zu bytes)",
	             (unsigned long long)off, path, len);
	buf[off] ^= 0x10;
	tu_write_file(path, buf, len);
	free(buf);
}

/* Asserts that path holds exactly want[0..len). */
static void assert_file_is(const char *path, const void *want, size_t len,
                           const char *what)
{
	size_t got_len;
	void *got = tu_read_file(path, &got_len);
	int same = got_len == len && memcmp(got, want, len) == 0;

	free(got);
	cr_expect(same, "%s: %s changed: %zu bytes, was %zu bytes%s", what,
	          path, got_len, len,
	          got_len == len ? " (contents differ)" : "");
}

/* dskvs_open of dir must fail with `want`; a handle it returns anyway is
 * closed. */
static void expect_open_fails(const char *dir, int want)
{
	dskvs *s = NULL;
	int rc = dskvs_open(dir, NULL, &s);

	cr_expect_eq(rc, want, "dskvs_open(%s) = %s, want %s (%s)", dir,
	             dskvs_err_name(rc), dskvs_err_name(want),
	             dskvs_errmsg(NULL));
	if (rc == DSKVS_OK)
		dskvs_close(s);
	else
		cr_expect_null(s);
}

/* Copy dir's log into a new store directory tu_dir/name (malloc'd path). */
static char *copy_store(const char *dir, const char *name)
{
	char *dst = tu_subdir(name);
	char *from = tu_log_path(dir), *to = tu_log_path(dst);
	size_t len;
	void *buf = tu_read_file(from, &len);

	tu_write_file(to, buf, len);
	free(buf);
	free(from);
	free(to);
	return dst;
}

static void truncate_to(const char *path, uint64_t len)
{
	cr_assert_eq(truncate(path, (off_t)len), 0, "truncate(%s, %llu): %s",
	             path, (unsigned long long)len, strerror(errno));
}

static void value_of(unsigned round, unsigned i, char *buf, size_t cap)
{
	snprintf(buf, cap, "value-%u-of-key-%04u-padded-to-some-length", round,
	         i);
}

/* ---- synced data, damaged -------------------------------------------------
 */

Test(synced_damage, bit_flip_in_compacted_log_is_ecorrupt_and_kept)
{
	char *log = tu_log_path(tu_dir);
	char key[32], val[64];
	dskvs *s = tu_open(tu_dir);

	for (unsigned round = 0; round < 3; round++)
		for (unsigned i = 0; i < 1000; i++) {
			snprintf(key, sizeof(key), "k/%04u", i);
			value_of(round, i, val, sizeof(val));
			tu_put_str(s, key, val);
		}
	cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	cr_assert_eq(dskvs_compact(s), DSKVS_OK, "compact: %s",
	             dskvs_errmsg(s));
	tu_close(s);

	/* Offset 40 of the first record: past its 32-byte header, inside
	 * its key and value. The compacted file was synced whole. */
	flip_bit(log, TU_HEADER_SIZE + 40);
	size_t len;
	void *damaged = tu_read_file(log, &len);

	dskvs_verify_report rep;
	int rc = dskvs_verify(tu_dir, NULL, NULL, &rep);
	cr_expect_eq(rc, DSKVS_ECORRUPT,
	             "dskvs_verify = %s (torn_tail %d, damaged %llu), want "
	             "DSKVS_ECORRUPT",
	             dskvs_err_name(rc), rep.torn_tail,
	             (unsigned long long)rep.damaged);
	cr_expect_geq(rep.damaged, 1, "verify found %llu damaged regions",
	              (unsigned long long)rep.damaged);
	assert_file_is(log, damaged, len, "after dskvs_verify");

	expect_open_fails(tu_dir, DSKVS_ECORRUPT);
	assert_file_is(log, damaged, len, "after dskvs_open");
	free(damaged);
	free(log);
}

Test(synced_damage, bit_flip_in_last_sync_always_record_is_ecorrupt_and_kept)
{
	char *log = tu_log_path(tu_dir);
	char key[32], val[64];
	dskvs_options o;

	dskvs_options_init(&o);
	o.sync_mode = DSKVS_SYNC_ALWAYS;
	dskvs *s = tu_open_opts(tu_dir, &o);
	for (unsigned i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "k/%u", i);
		value_of(0, i, val, sizeof(val));
		tu_put_str(s, key, val);
	}
	uint64_t p = tu_file_size(log);
	char *big = tu_repeat('L', 200);
	/* Returns once its record is fdatasync'ed: acknowledged durable. */
	tu_put_str(s, "k/last", big);
	cr_assert_gt(tu_file_size(log), p + 40 + 32);
	tu_close(s);

	flip_bit(log, p + 40);
	size_t len;
	void *damaged = tu_read_file(log, &len);

	expect_open_fails(tu_dir, DSKVS_ECORRUPT);
	assert_file_is(log, damaged, len, "after dskvs_open");

	dskvs_verify_report rep;
	int rc = dskvs_verify(tu_dir, NULL, NULL, &rep);
	cr_expect_eq(rc, DSKVS_ECORRUPT,
	             "dskvs_verify = %s (torn_tail %d, damaged %llu), want "
	             "DSKVS_ECORRUPT",
	             dskvs_err_name(rc), rep.torn_tail,
	             (unsigned long long)rep.damaged);
	assert_file_is(log, damaged, len, "after dskvs_verify");
	free(damaged);
	free(big);
	free(log);
}

/* ---- a genuine torn tail ----------------------------------------------------
 */

Test(synced_damage, torn_tail_opens_and_cut_bytes_are_kept)
{
	char *orig = tu_subdir("orig");
	char *log = tu_log_path(orig);
	char key[32], val[64];
	dskvs *s = tu_open(orig);

	for (unsigned i = 0; i < 6; i++) {
		snprintf(key, sizeof(key), "k/%u", i);
		value_of(1, i, val, sizeof(val));
		tu_put_str(s, key, val);
		cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	}
	uint64_t p = tu_file_size(log);
	char *last = tu_repeat('T', 100);
	tu_put_str(s, "k/last", last);
	cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	uint64_t q = tu_file_size(log);
	/* The record: 32-byte header, 6-byte key, 100-byte value. */
	cr_assert_geq(q, p + 32 + 6 + 100);
	tu_close(s);

	char *dir = copy_store(orig, "cut");
	char *cut_log = tu_log_path(dir);
	uint64_t cut = p + 40; /* inside the last record's key and value */
	size_t full_len;
	unsigned char *full = tu_read_file(cut_log, &full_len);
	cr_assert_gt(full_len, cut);
	truncate_to(cut_log, cut);

	dskvs_verify_report rep;
	int rc = dskvs_verify(dir, NULL, NULL, &rep);
	cr_expect_eq(rc, DSKVS_OK, "dskvs_verify of a torn tail = %s (%s)",
	             dskvs_err_name(rc), dskvs_errmsg(NULL));
	cr_expect_eq(rep.torn_tail, 1, "verify: torn_tail %d", rep.torn_tail);

	s = tu_open(dir);
	for (unsigned i = 0; i < 6; i++) {
		snprintf(key, sizeof(key), "k/%u", i);
		value_of(1, i, val, sizeof(val));
		tu_check_str(s, key, val);
	}
	tu_check_absent(s, "k/last");
	tu_close(s);

	char *torn = tu_fmt("%s/dskvs.torn.%llu", dir, (unsigned long long)p);
	cr_assert_eq(access(torn, F_OK), 0,
	             "the cut bytes are not kept in %s: %s", torn,
	             strerror(errno));
	assert_file_is(torn, full + p, (size_t)(cut - p), "the torn tail file");

	free(torn);
	free(full);
	free(cut_log);
	free(dir);
	free(last);
	free(log);
	free(orig);
}

/* ---- record images inside a damaged, unsynced record ------------------------
 */

#define BIG_LEN   16384u
#define BIG_KEY   "big/value"
#define IMAGE_OFF 12288u /* where the image sits inside the value */

/* A log image: the records of a store after `rounds` put + sync rounds
 * (each its own batch), without the file header (malloc'd). */
static unsigned char *other_store_records(unsigned rounds, size_t *len)
{
	char *dir = tu_subdir("other");
	char *log = tu_log_path(dir);
	char key[32], val[64];
	dskvs *s = tu_open(dir);

	for (unsigned i = 0; i < rounds; i++) {
		snprintf(key, sizeof(key), "o/%u", i);
		value_of(7, i, val, sizeof(val));
		tu_put_str(s, key, val);
		cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	}
	tu_close(s);
	size_t n;
	unsigned char *all = tu_read_file(log, &n);
	cr_assert_gt(n, TU_HEADER_SIZE);
	*len = n - TU_HEADER_SIZE;
	unsigned char *rec = malloc(*len);
	cr_assert_not_null(rec);
	memcpy(rec, all + TU_HEADER_SIZE, *len);
	free(all);
	free(log);
	free(dir);
	return rec;
}

/*
 * Write NEARLY keys with a sync each into tu_dir/"store", then the big value
 * (16 KiB, an image of records at IMAGE_OFF) with a sync. own_image: the
 * image is this store's own log before the big put, else `image`. Then cut
 * a copy of the log right after the big record and zero a 4 KiB page of the
 * value before the image, and open it.
 */
#define NEARLY 10
static void damaged_value_with_image(const unsigned char *image,
                                     size_t image_len, bool own_image)
{
	char *orig = tu_subdir("store");
	char *log = tu_log_path(orig);
	char key[32], val[128];
	unsigned char *big = malloc(BIG_LEN), *own = NULL;
	dskvs *s = tu_open(orig);

	cr_assert_not_null(big);
	for (unsigned i = 0; i < NEARLY; i++) {
		snprintf(key, sizeof(key), "e/%u", i);
		value_of(3, i, val, sizeof(val));
		tu_put_str(s, key, val);
		cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	}
	uint64_t p = tu_file_size(log);
	if (own_image) {
		size_t n;
		unsigned char *all = tu_read_file(log, &n);
		cr_assert_eq(n, p);
		own = malloc(n - TU_HEADER_SIZE);
		cr_assert_not_null(own);
		memcpy(own, all + TU_HEADER_SIZE, n - TU_HEADER_SIZE);
		image = own;
		image_len = n - TU_HEADER_SIZE;
		free(all);
	}
	cr_assert_leq(IMAGE_OFF + image_len, BIG_LEN, "image of %zu bytes",
	              image_len);
	tu_fill(big, BIG_LEN, 42);
	memcpy(big + IMAGE_OFF, image, image_len);
	tu_put(s, BIG_KEY, big, BIG_LEN);
	cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	tu_close(s);

	char *dir = copy_store(orig, "cut");
	char *cut_log = tu_log_path(dir);
	uint64_t vstart = p + 32 + strlen(BIG_KEY);
	uint64_t end = vstart + BIG_LEN;
	cr_assert_geq(tu_file_size(cut_log), end);
	truncate_to(cut_log, end);

	/* Zero the first file page (4 KiB, aligned) that lies inside the
	 * value, well before the image. */
	size_t len;
	unsigned char *buf = tu_read_file(cut_log, &len);
	uint64_t page = (vstart + 4095) / 4096 * 4096;
	cr_assert_leq(page + 4096, vstart + IMAGE_OFF);
	memset(buf + page, 0, 4096);
	tu_write_file(cut_log, buf, len);
	free(buf);

	dskvs *t = NULL;
	int rc = dskvs_open(dir, NULL, &t);
	cr_assert_eq(rc, DSKVS_OK,
	             "dskvs_open of a damaged unsynced last record whose value "
	             "holds %s = %s (%s)",
	             own_image ? "an image of its own log"
	                       : "an image of another store's log",
	             dskvs_err_name(rc), dskvs_errmsg(NULL));
	for (unsigned i = 0; i < NEARLY; i++) {
		snprintf(key, sizeof(key), "e/%u", i);
		value_of(3, i, val, sizeof(val));
		tu_check_str(t, key, val);
	}
	tu_check_absent(t, BIG_KEY);
	/* Nothing of the image was replayed as records. */
	tu_check_absent(t, "o/0");
	tu_close(t);

	free(cut_log);
	free(dir);
	free(own);
	free(big);
	free(log);
	free(orig);
}

Test(synced_damage, damaged_value_holding_another_logs_records_is_torn_tail)
{
	size_t len;
	unsigned char *image = other_store_records(30, &len);

	cr_assert_geq(len, 2048, "image of %zu bytes", len);
	damaged_value_with_image(image, len, false);
	free(image);
}

Test(synced_damage, damaged_value_holding_its_own_log_is_torn_tail)
{
	damaged_value_with_image(NULL, 0, true);
}
