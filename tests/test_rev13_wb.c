/*
 * rev13, white-box: a batch of writes that reallocates its collection's
 * map while it holds every producer of the store.
 *
 * api.c (batches of writes): "under it the members map is grown for all
 * the puts (the only allocation that could fail later), n consecutive
 * queue slots are reserved at once ... the apply is n table operations
 * with no allocation (the map has room) and no sleep." While the slots
 * are reserved every other producer of the store waits in its commit.
 * batch_undo_locked relies on the same: "Each restore puts back a member
 * that is in the map or just left its slot, which ck_ht refills without
 * growing."
 *
 * But a delete op goes through dskvs__member_remove_locked, whose
 * shape_note_remove rebuilds (shrinks) the map once the live count falls
 * far below its capacity. A batch that deletes most of a collection and
 * then puts new members therefore shrinks the map room_n had grown and
 * grows it again inside ck_ht_set_spmc, op by op, with the slots
 * reserved: allocations (and, for a big collection, rehashes of the whole
 * map) in the window where nothing may allocate, and a grow that can fail
 * with ENOMEM after deletes were applied -- the undo then re-inserts the
 * deleted members into the shrunk map, which needs the very grow that
 * just failed, and ignores the result ((void)dskvs__member_set_locked).
 */
#include "testutil.h"

#include "internal.h"

#include <stdio.h>
#include <string.h>

TestSuite(rev13_wb, .init = tu_setup, .fini = tu_teardown, .timeout = 60);

static struct {
	dskvs *s;
	int armed;
	int sets;
	int maps; /* distinct map pointers seen at the batch's inserts */
	const void *last;
} g;

static void hook(int point, void *arg)
{
	(void)arg;
	if (point != DSKVS__HOOK_MEMBER_SET || !g.armed)
		return;
	/* The batch's thread, holding c's lock, inside a read-side section. */
	struct dskvs__coll *c = dskvs__coll_lookup(&g.s->t, "c", 1);
	if (c == NULL)
		return;
	const void *m = c->members.map;
	if (g.sets++ == 0 || m != g.last)
		g.maps++;
	g.last = m;
}

#define OLD 400
#define NEW 400

Test(rev13_wb, batch_does_not_reallocate_the_map_with_slots_reserved)
{
	dskvs *s = tu_open(tu_dir);
	char key[32];
	for (int i = 0; i < OLD; i++) {
		snprintf(key, sizeof(key), "c/old%d", i);
		tu_put_str(s, key, "v");
	}
	static char names[OLD + NEW][16];
	dskvs_batch_op ops[OLD + NEW];
	size_t n = 0;
	for (int i = 0; i < OLD - 2; i++) { /* delete nearly everything */
		snprintf(names[n], 16, "old%d", i);
		ops[n] = (dskvs_batch_op){ names[n], NULL, 0, 1 };
		n++;
	}
	for (int i = 0; i < NEW; i++) { /* then put as many new members */
		snprintf(names[n], 16, "new%d", i);
		ops[n] = (dskvs_batch_op){ names[n], "n", 1, 0 };
		n++;
	}
	g.s = s;
	dskvs__hook = hook;
	g.armed = 1;
	int rc = dskvs_write_batch(s, "c", ops, n, NULL);
	g.armed = 0;
	dskvs__hook = NULL;
	cr_assert_eq(rc, DSKVS_OK, "%s", dskvs_errmsg(NULL));
	cr_assert_eq(g.sets, NEW);
	cr_assert_eq(g.maps, 1,
	             "the batch's %d inserts saw %d different maps: the map "
	             "was rebuilt (shrunk by the deletes, grown again by the "
	             "puts) while the batch held %zu queue slots reserved",
	             g.sets, g.maps, n);
	tu_close(s);
}

/* ---- ENOSPC and EIO in the middle of a backup's copy ----------------------
 *
 * A write of the copy fails with ENOSPC after the first chunk, or a read
 * of the source log fails with EIO: dskvs_backup returns DSKVS_EIO,
 * leaves nothing at dest, and the store is not hurt (no sticky error:
 * writes and a later backup work). (Held up in review: passes.)
 */
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *fail_under;
static int fail_errno;
static int fail_after; /* calls let through first */
static bool fd_under(int fd, const char *dir)
{
	char link[64], path[PATH_MAX];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0)
		return false;
	path[n] = '\0';
	size_t dl = strlen(dir);
	return strncmp(path, dir, dl) == 0 &&
	       (path[dl] == '/' || path[dl] == '\0');
}
static ssize_t bad_pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	if (fail_under && fd_under(fd, fail_under) && fail_after-- <= 0) {
		errno = fail_errno;
		return -1;
	}
	return pwritev(fd, iov, cnt, off);
}
static ssize_t bad_pread(int fd, void *buf, size_t n, off_t off)
{
	/* The source log, read by the backup's thread (the test's). */
	if (fail_under && fd_under(fd, fail_under) && off > 0 &&
	    fail_after-- <= 0) {
		errno = fail_errno;
		return -1;
	}
	return pread(fd, buf, n, off);
}

static void fill(dskvs *s, int n, size_t vlen)
{
	char key[32];
	char *v = malloc(vlen);
	memset(v, 'x', vlen);
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "f/%d", i);
		tu_put(s, key, v, vlen);
	}
	free(v);
	cr_assert_eq(dskvs_sync(s), DSKVS_OK);
}

Test(rev13_wb, backup_write_fails_with_enospc_mid_copy)
{
	char *store = tu_subdir("store");
	char *dest = tu_fmt("%s/copy", tu_dir);
	dskvs *s = tu_open(store);
	fill(s, 12, 1u << 20); /* 12 MiB: three 4 MiB chunks */
	fail_under = dest;
	fail_errno = ENOSPC;
	fail_after = 1;
	dskvs__io.pwritev = bad_pwritev;
	int rc = dskvs_backup(s, dest);
	dskvs__io = dskvs__io_libc;
	fail_under = NULL;
	cr_assert_eq(rc, DSKVS_EIO, "%s", dskvs_errmsg(NULL));
	struct stat st;
	cr_assert_neq(stat(dest, &st), 0, "a failed backup left %s", dest);
	tu_put_str(s, "a/after", "1");
	cr_assert_eq(dskvs_sync(s), DSKVS_OK);
	cr_assert_eq(dskvs_backup(s, dest), DSKVS_OK, "%s", dskvs_errmsg(NULL));
	tu_close(s);
	dskvs *b = tu_open(dest);
	tu_check_str(b, "a/after", "1");
	tu_close(b);
	free(store);
	free(dest);
}

Test(rev13_wb, backup_read_of_the_log_fails_with_eio)
{
	char *store = tu_subdir("store");
	char *dest = tu_fmt("%s/copy", tu_dir);
	dskvs *s = tu_open(store);
	fill(s, 12, 1u << 20);
	char *real = realpath(store, NULL);
	fail_under = real;
	fail_errno = EIO;
	fail_after = 1;
	dskvs__io.pread = bad_pread;
	int rc = dskvs_backup(s, dest);
	dskvs__io = dskvs__io_libc;
	fail_under = NULL;
	cr_assert_eq(rc, DSKVS_EIO, "%s", dskvs_errmsg(NULL));
	struct stat st;
	cr_assert_neq(stat(dest, &st), 0, "a failed backup left %s", dest);
	tu_put_str(s, "a/after", "1");
	cr_assert_eq(dskvs_sync(s), DSKVS_OK, "the store became sticky");
	tu_close(s);
	free(real);
	free(store);
	free(dest);
}

/* (The review's "get_all waits for the disk" is answered by the header:
 * dskvs_get_all gathers under the collection's lock, which a writer holds
 * while it waits for room in the janitor's queue.) */

/* ---- a version seen before a crash names another value after it ----------
 *
 * dskvs.h: "two values of one member never share a version". A put that
 * returned (DSKVS_SYNC_ASYNC) and whose value a reader saw with
 * dskvs_get_seq, but whose record never reached the disk, is lost by a
 * crash -- allowed. But the next open numbers from the last record on
 * disk, so the next put of that member gets the very version the lost
 * value had, and a CAS client that read the lost value (the header's
 * "across a network round trip" use) succeeds over a value it never saw.
 * Here the janitor's pwritev is held so the second put's record never
 * reaches the log, then the process is killed.
 */
#include <signal.h>
#include <sys/wait.h>

static ssize_t stuck_pwritev(int fd, const struct iovec *iov, int cnt,
                             off_t off)
{
	(void)fd, (void)iov, (void)cnt, (void)off;
	for (;;)
		pause();
	return -1;
}

Test(rev13_wb, version_of_a_lost_value_is_not_given_again, .timeout = 60)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		dskvs *s;
		uint64_t v[2] = { 0, 0 };
		size_t len;
		if (dskvs_open(tu_dir, NULL, &s))
			_exit(2);
		dskvs_put_seq(s, "c/y", "durable", 7, NULL, NULL, &v[0]);
		if (dskvs_sync(s))
			_exit(3);
		dskvs__io.pwritev = stuck_pwritev; /* nothing more is logged */
		dskvs_put(s, "c/y", "lost", 4, NULL, NULL);
		/* A client reads the value and its version. */
		if (dskvs_get_seq(s, "c/y", NULL, 0, &len, &v[1]) !=
		    DSKVS_ERANGE)
			_exit(4);
		if (write(p[1], v, sizeof(v)) != sizeof(v))
			_exit(5);
		for (;;)
			pause();
	}
	close(p[1]);
	uint64_t v[2];
	cr_assert_eq(read(p[0], v, sizeof(v)), (ssize_t)sizeof(v));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(p[0]);

	dskvs *s = tu_open(tu_dir);
	tu_check_str(s, "c/y", "durable"); /* the lost put is gone: fine */
	uint64_t nv;
	cr_assert_eq(dskvs_put_seq(s, "c/y", "other", 5, NULL, NULL, &nv), 0);
	/* The client that read "lost" at version v[1] tries its CAS. */
	int rc = dskvs_put_if_seq(s, "c/y", "cas", 3, v[1], NULL);
	tu_close(s);
	cr_assert_neq(nv, v[1],
	              "after the crash, c/y = \"other\" got version %llu, the "
	              "version \"lost\" had before it (CAS expecting it: rc "
	              "%d)",
	              (unsigned long long)nv, rc);
	cr_assert_eq(rc, DSKVS_ECONFLICT);
}
