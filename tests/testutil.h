/*
 * Shared helpers for the Criterion suite.
 *
 * Every suite uses tu_setup/tu_teardown as its .init/.fini: each test gets a
 * fresh mkdtemp() directory under /tmp in tu_dir, removed afterwards even when
 * an assertion aborted the test (Criterion runs .fini after an abort).
 *
 * Helpers that assert (tu_open, tu_put, tu_check...) may only be called from
 * the test's own thread: a Criterion assertion unwinds with longjmp, which is
 * undefined from another thread or from a forked child.
 */
#ifndef DSKVS_TESTUTIL_H
#define DSKVS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <criterion/criterion.h>

#include <dskvs.h>

/* The log starts with a 32-byte file header; records follow (DESIGN 5).
 * A batch written while nothing else is queued is followed by a 32-byte
 * mark (the proof that it was synced; see README "Crashes"), so a write
 * followed by dskvs_sync grows the log by its record and one mark. */
#define TU_HEADER_SIZE 32u
#define TU_MARK_SIZE   32u

extern char *tu_dir;

void tu_setup(void);
/* Removes tu_dir, then (under ASan) checks for leaks: see testutil.c. */
void tu_teardown(void);
void tu_check_leaks(void);

/* A fresh directory /tmp/dskvs-test-XXXXXX (malloc'd). */
char *tu_mkdtemp(void);
/* A new directory tu_dir/name (malloc'd path), removed with tu_dir even when
 * the test fails. */
char *tu_subdir(const char *name);
/* Remove a directory tree; restores permissions on the way if needed. */
void tu_rmtree(const char *path);
/* malloc'd printf. */
char *tu_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* malloc'd "<dir>/dskvs.log". */
char *tu_log_path(const char *dir);

/* A string of n copies of c, NUL-terminated (malloc'd). */
char *tu_repeat(char c, size_t n);

dskvs *tu_open(const char *dir);
dskvs *tu_open_opts(const char *dir, const dskvs_options *opts);
void tu_close(dskvs *s);

void tu_put(dskvs *s, const char *key, const void *val, size_t len);
void tu_put_str(dskvs *s, const char *key, const char *val);
/* Asserts that key holds exactly val[0..len). */
void tu_check(dskvs *s, const char *key, const void *val, size_t len);
void tu_check_str(dskvs *s, const char *key, const char *val);
void tu_check_absent(dskvs *s, const char *key);

/* File helpers; they assert on failure. */
uint64_t tu_file_size(const char *path);
void *tu_read_file(const char *path, size_t *len);
void tu_write_file(const char *path, const void *data, size_t len);
mode_t tu_file_mode(const char *path);

/* Deterministic pseudo-random bytes (xorshift), so failures reproduce. */
uint64_t tu_rand(uint64_t *state);
void tu_fill(void *buf, size_t len, uint64_t seed);

/*
 * A snapshot of a whole store (every collection via dskvs_list_collections,
 * every member via dskvs_get_all), sorted by key, to compare stores with each
 * other or with a model built by tu_snap_add.
 */
struct tu_kv {
	char *key; /* "collection/member", NUL-terminated */
	size_t key_len;
	void *val;
	size_t val_len;
};
struct tu_snap {
	struct tu_kv *kv;
	size_t n, cap;
};
void tu_snap_take(dskvs *s, struct tu_snap *out);
/* Sets key to val in the model, replacing an older value. */
void tu_snap_add(struct tu_snap *m, const char *key, const void *val,
                 size_t len);
void tu_snap_del(struct tu_snap *m, const char *key);
/* Removes every member of collection coll. */
void tu_snap_del_coll(struct tu_snap *m, const char *coll);
void tu_snap_sort(struct tu_snap *m);
void tu_snap_assert_eq(const struct tu_snap *want, const struct tu_snap *got);
void tu_snap_free(struct tu_snap *m);

#endif
