/*
 * libFuzzer target: recovery of an arbitrary dskvs.log.
 *
 * Each input becomes the whole log file of a store directory. Then:
 *   1. dskvs_verify reads it (and every damage it reports lies in the file);
 *   2. dskvs_open (on 1, 2 or 3 replay threads) must agree with it:
 *      DSKVS_OK when verify calls the log healthy (a torn tail included),
 *      DSKVS_ECORRUPT or DSKVS_EVERSION when verify says so;
 *   3. when open succeeds, every collection listed can be walked, every
 *      member walked reads back through dskvs_get with the same value, and
 *      the member count matches the statistics;
 *   4. one put is appended and the store closed: the log it leaves must then
 *      verify clean (no torn tail, no damage): recovery cut the tail back
 *      to a record boundary and appended there.
 * Any disagreement abort()s, which libFuzzer reports as a crash. The
 * sanitizers catch bad accesses and leaks; libFuzzer's -rss_limit_mb and
 * -malloc_limit_mb catch unbounded allocation.
 *
 * Syncs are turned off through the I/O seam (dskvs_internal): they cost
 * milliseconds and the fuzzer does not crash the machine.
 *
 * Built as `fuzz_recover` (clang, -fsanitize=fuzzer) with -DDSKVS_FUZZ=ON;
 * scripts/fuzz.sh runs it. Built everywhere as `fuzz_recover_replay` with
 * replay_main.c, which runs the checked-in corpus under CTest.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static char log_path[96];
static char tmp_path[96];
static char lock_path[96];

#define FUZZ_CHECK(cond, ...)                                                  \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_recover: %s:%d: %s: ", __FILE__, \
			        __LINE__, #cond);                              \
			fprintf(stderr, __VA_ARGS__);                          \
			fprintf(stderr, " (last message: %s)\n",               \
			        dskvs_errmsg(NULL));                           \
			abort();                                               \
		}                                                              \
	} while (0)

static int no_sync(int fd)
{
	(void)fd;
	return 0;
}

static void cleanup(void)
{
	unlink(log_path);
	unlink(tmp_path);
	unlink(lock_path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *base = getenv("TMPDIR");
	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "%s/dskvs-fuzz-XXXXXX",
	         base && *base && strlen(base) < 40 ? base : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(log_path, sizeof(log_path), "%s/" DSKVS_LOG_NAME, dir);
	snprintf(tmp_path, sizeof(tmp_path), "%s/" DSKVS_LOG_TMP, dir);
	snprintf(lock_path, sizeof(lock_path), "%s/" DSKVS_LOCK_NAME, dir);
	atexit(cleanup);
	dskvs__io.fdatasync = no_sync;
	dskvs__io.fsync = no_sync;
	return 0;
}

static void write_log(const uint8_t *data, size_t size)
{
	int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t done = 0;
	FUZZ_CHECK(fd >= 0, "create %s: %s", log_path, strerror(errno));
	while (done < size) {
		ssize_t w = write(fd, data + done, size - done);
		FUZZ_CHECK(w > 0, "write: %s", strerror(errno));
		done += (size_t)w;
	}
	close(fd);
}

struct damage {
	uint64_t size, calls;
};

static void on_damage(const char *file, uint64_t offset, const char *what,
                      void *arg)
{
	struct damage *d = arg;
	FUZZ_CHECK(file != NULL && what != NULL && *what,
	           "damage report without a description");
	FUZZ_CHECK(offset <= d->size, "damage at %llu, past the end %llu",
	           (unsigned long long)offset, (unsigned long long)d->size);
	d->calls++;
}

struct walk {
	dskvs *s;
	const char *coll;
	size_t clen;
	uint64_t members;
	char *key;
	size_t key_cap;
};

static int visit_member(const char *member, size_t mlen, const void *val,
                        size_t vlen, void *arg)
{
	struct walk *w = arg;
	size_t need = w->clen + 1 + mlen + 1;
	void *got = NULL;
	size_t glen = 0;

	FUZZ_CHECK(mlen > 0 && strlen(member) == mlen, "bad member name");
	if (need > w->key_cap) {
		char *k = realloc(w->key, need);
		FUZZ_CHECK(k != NULL, "out of memory");
		w->key = k;
		w->key_cap = need;
	}
	memcpy(w->key, w->coll, w->clen);
	w->key[w->clen] = '/';
	memcpy(w->key + w->clen + 1, member, mlen + 1);
	int rc = dskvs_get_alloc(w->s, w->key, &got, &glen);
	FUZZ_CHECK(rc == DSKVS_OK, "get of a walked member: %s",
	           dskvs_err_name(rc));
	FUZZ_CHECK(glen == vlen && memcmp(got, val, vlen) == 0,
	           "get and walk disagree");
	free(got);
	w->members++;
	return 0;
}

static int visit_coll(const char *name, size_t len, uint64_t members,
                      uint64_t value_bytes, void *arg)
{
	struct walk *w = arg;
	char *coll = strndup(name, len);
	uint64_t before = w->members;
	(void)value_bytes;
	FUZZ_CHECK(coll != NULL && strlen(coll) == len && members > 0,
	           "bad collection listing");
	w->coll = coll;
	w->clen = len;
	int rc = dskvs_get_all(w->s, coll, visit_member, w);
	FUZZ_CHECK(rc == DSKVS_OK, "get_all: %s", dskvs_err_name(rc));
	FUZZ_CHECK(w->members - before == members,
	           "listing says %llu members, the walk saw %llu",
	           (unsigned long long)members,
	           (unsigned long long)(w->members - before));
	free(coll);
	return 0;
}

/* The directory is reused from input to input: drop the torn tails that
 * earlier opens moved aside, or names at a common offset run out
 * (dskvs.torn.<offset>.999) and open fails with DSKVS_EIO. */
static void remove_torn(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "dskvs.torn.", 11) == 0)
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	dskvs_verify_report rep;
	dskvs_options o;
	dskvs_stats st;
	struct damage dmg = { .size = size };
	dskvs *s = NULL;

	write_log(data, size);
	unlink(tmp_path);
	remove_torn();

	int vrc = dskvs_verify(dir, on_damage, &dmg, &rep);
	FUZZ_CHECK(vrc == DSKVS_OK || vrc == DSKVS_ECORRUPT ||
	               vrc == DSKVS_EVERSION,
	           "verify: %s", dskvs_err_name(vrc));
	FUZZ_CHECK(rep.file_bytes == size && rep.valid_bytes <= size,
	           "verify: sizes %llu %llu of %zu",
	           (unsigned long long)rep.file_bytes,
	           (unsigned long long)rep.valid_bytes, size);
	FUZZ_CHECK(rep.records == rep.puts + rep.deletes + rep.delete_alls,
	           "verify: record counts do not add up");
	FUZZ_CHECK((vrc == DSKVS_ECORRUPT) == (rep.damaged > 0) ||
	               vrc == DSKVS_EVERSION,
	           "verify: %s with %llu damaged regions", dskvs_err_name(vrc),
	           (unsigned long long)rep.damaged);

	dskvs_options_init(&o);
	o.auto_compact = 0;
	/* The two-pass parallel replay too, on a third of the inputs each
	 * (chosen by size, so that a crash reproduces). */
	o.recovery_threads = 1 + (unsigned)(size % 3);
	int orc = dskvs_open(dir, &o, &s);
	FUZZ_CHECK(orc == vrc, "open says %s, verify %s", dskvs_err_name(orc),
	           dskvs_err_name(vrc));
	if (orc != DSKVS_OK)
		return 0;

	struct walk w = { .s = s };
	int rc = dskvs_list_collections(s, visit_coll, &w);
	FUZZ_CHECK(rc == DSKVS_OK, "list_collections: %s", dskvs_err_name(rc));
	free(w.key);
	FUZZ_CHECK(dskvs_stats_get(s, &st) == DSKVS_OK, "stats");
	FUZZ_CHECK(st.entries == w.members, "stats: %llu entries, walked %llu",
	           (unsigned long long)st.entries,
	           (unsigned long long)w.members);
	/* A few point reads of likely and unlikely keys. */
	char buf[16];
	size_t len;
	rc = dskvs_get(s, "a/b", buf, sizeof(buf), &len);
	FUZZ_CHECK(rc == DSKVS_OK || rc == DSKVS_NOTFOUND || rc == DSKVS_ERANGE,
	           "get: %s", dskvs_err_name(rc));

	rc = dskvs_put(s, "fuzz/appended", "x", 1, NULL, NULL);
	FUZZ_CHECK(rc == DSKVS_OK, "put after recovery: %s",
	           dskvs_err_name(rc));
	FUZZ_CHECK(dskvs_close(s) == DSKVS_OK, "close");

	dmg.size = (uint64_t)-1;
	vrc = dskvs_verify(dir, on_damage, &dmg, &rep);
	FUZZ_CHECK(vrc == DSKVS_OK && !rep.torn_tail && rep.damaged == 0 &&
	               rep.valid_bytes == rep.file_bytes,
	           "the log recovery left behind does not verify clean: %s, "
	           "torn %d, damaged %llu, valid %llu of %llu",
	           dskvs_err_name(vrc), rep.torn_tail,
	           (unsigned long long)rep.damaged,
	           (unsigned long long)rep.valid_bytes,
	           (unsigned long long)rep.file_bytes);
	return 0;
}
